// The client role: a connection generator on the same engine (issue: the
// teardown benchmark).  It opens connections at a target rate with a
// concurrency cap, sends an HTTP request, reads the response, and tears the
// connection down in one of four ways:
//   client        the client closes first after the response (client TIME-WAIT)
//   server        the request says Connection: close; the server closes first
//   simultaneous  both close right after the response without waiting for the
//                 other's FIN (the server with Connection: close, the client as
//                 soon as the response is complete)
//   rst           the client aborts after the response (RST)
//   none          keep-alive: the connection stays ESTABLISHED (scale runs)
//   forgetful     as client (a keep-alive request, the client closes first),
//                 on a stack that forgets (tcp::Config::forgetful): no
//                 TIME-WAIT, later segments for the connection silently
//                 dropped, challenge ACKs unanswered -- the fast DPDK
//                 generators' behaviour, to reproduce what they do to a server
// Source tuples cycle through the configured address ranges and a port
// range.  Every failure (refused, reset, timed out, tuple busy) is counted.
#pragma once
#include <array>
#include <functional>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "stack/stack.h"

namespace tcpterm::apps {

enum class CloseMode : uint8_t { Client, Server, Simultaneous, Rst, None, Forgetful };
bool parse_close_mode(std::string_view s, CloseMode& out);
const char* to_string(CloseMode m);

struct GeneratorConfig {
  // IPv6 (v6): dst6, and sources src6 with its low 32 bits taken from `src`.
  bool v6 = false;
  wire::Ip6 dst6{}, src6{};
  std::function<bool(const wire::Ip6&, uint16_t)> accept6;
  uint32_t dst = 0;
  uint16_t dport = 80;
  std::vector<std::pair<uint32_t, uint32_t>> src;  // inclusive address ranges
  uint16_t port_lo = 1024, port_hi = 65535;
  uint64_t rate = 0;            // connections per second; 0: as fast as the cap allows
  uint32_t concurrency = 1000;  // connections open at once
  uint64_t count = 0;           // total to open; 0: unlimited
  uint64_t duration_ms = 0;     // stop opening after; 0: unlimited
  uint32_t request_bytes = 0;   // extra request header bytes (padding)
  CloseMode mode = CloseMode::Server;
  // Optional: accept a source (address, port) only if the reply will reach
  // this lcore (RSS steering); tuples it refuses are skipped.
  std::function<bool(uint32_t, uint16_t)> accept;
};

#define TCPTERM_GEN_COUNTERS(X)                                                       \
  X(gen_opened) X(gen_established) X(gen_completed) X(gen_failed_connect)             \
  X(gen_reset) X(gen_timed_out) X(gen_tuple_busy) X(gen_bad_response)                \
  X(gen_client_closes) X(gen_server_closes) X(gen_simultaneous_closes) X(gen_aborts)        \
  X(gen_tuples_steered_away) X(gen_backoffs)

struct GeneratorStats {
#define X(n) uint64_t n = 0;
  TCPTERM_GEN_COUNTERS(X)
#undef X
  uint64_t active = 0;
  // Teardown latency, first FIN (or our RST) to CLOSED / TIME-WAIT entry:
  // buckets of 1 us up to 4 ms, then one overflow bucket.
  static constexpr size_t kBuckets = 4096;
  std::array<uint32_t, kBuckets + 1> latency_us{};
  template <class F>
  void for_each_counter(F&& f) const {
#define X(n) f(std::string_view(#n), n);
    TCPTERM_GEN_COUNTERS(X)
#undef X
  }
  // Percentile in microseconds (kBuckets for the overflow bucket).
  double percentile(double p) const;
};

class Generator final : public stack::App {
 public:
  explicit Generator(GeneratorConfig c);
  const char* name() const override { return "generator"; }
  // Opens what the rate and the cap allow; `now_ms` is the stack clock,
  // `now_cycles` and `cycles_per_us` time the teardowns.
  // `hold`: the lcore is backlogged; open nothing this time (gen_backoffs).
  void tick(stack::Stack& s, uint64_t now_ms, uint64_t now_cycles, uint64_t cycles_per_us, bool hold = false);
  bool done() const;
  const GeneratorStats& stats() const { return st_; }
  GeneratorStats& stats() { return st_; }
  const GeneratorConfig& config() const { return cfg_; }

  void on_open(stack::Stream& s) override;
  void on_writable(stack::Stream& s) override;
  void on_data(stack::Stream& s) override;
  void on_peer_close(stack::Stream& s) override;
  void on_reset(stack::Stream& s) override;
  void on_closed(stack::Stream& s) override;

 private:
  // AppState use: a = cycles at the first FIN, b = response bytes still
  // expected (0xffffffff: headers not parsed yet), flags below.
  static constexpr uint8_t kEstablished = 1, kResponded = 2, kWeClosed = 4, kPeerClosed = 8,
                           kFailed = 16, kRequestPending = 32;
  void send_request(stack::Stream& s);
  void finish_response(stack::Stream& s);
  void mark_fin(stack::Stream& s);
  bool next_tuple(uint32_t& addr, uint16_t& port);
  // next_tuple() past the tuples whose replies the NIC would steer to
  // another lcore; false if 1024 in a row would be.
  bool next_accepted(uint32_t& addr, uint16_t& port);
  // The tuple to open next.  kAhead tuples are drawn in advance and the
  // flow-table bucket of each is prefetched when it is drawn (IPv4): the
  // table is sized for millions of TIME-WAIT records, so the lookup that
  // connect() makes for a new tuple is otherwise a cache miss, one at a time
  // (a quarter of the generator lcore's samples before).
  bool take_tuple(stack::Stack& s, uint32_t& addr, uint16_t& port);
  wire::Ip6 src6(uint32_t lo) const {
    wire::Ip6 a = cfg_.src6;
    wire::store32(a.data() + 12, lo);
    return a;
  }

  GeneratorConfig cfg_;
  GeneratorStats st_;
  std::string request_;
  uint64_t start_ms_ = 0;
  double tokens_ = 0;
  uint64_t last_ms_ = 0;
  uint64_t now_cycles_ = 0, cycles_per_us_ = 1;
  size_t range_ = 0;
  uint32_t addr_ = 0;
  uint32_t port_ = 0;
  static constexpr unsigned kAhead = 8;
  std::array<std::pair<uint32_t, uint16_t>, kAhead> ahead_{};
  unsigned ahead_i_ = 0, ahead_n_ = 0;
};

}  // namespace tcpterm::apps
