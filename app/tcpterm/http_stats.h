// The management HTTP endpoint (--http-stats IP:PORT): /metrics in the
// Prometheus text exposition format, /stats.json, / (a self-contained
// live stats page that polls /stats.json) and /healthz (health.h: 200 or
// 503, for a router's or an orchestrator's probe).
//
// Control plane only: one thread beside the CLI, pinned to the main lcore's
// CPUs, an ordinary kernel socket on a management address, never the DPDK
// data path or a worker's core.  It reads the
// same per-lcore snapshots as the CLI, through the control channel, at most
// once per kMinIntervalMs however many clients scrape (a cached snapshot
// answers in between).  Hostile clients cannot stall it or lock others out:
// at most kMaxPerSource connections from one address and kMaxConns in all;
// a connection beyond either closes the oldest one of that address (or the
// oldest of all) still waiting for its request (failing that, the oldest
// being answered), so idle connections held open cannot make a probe fail
// (a refused probe would take the appliance out of ECMP: health.h).  At
// most kMaxRequest bytes of request head (431), kTimeoutMs to send a
// request and to take the answer; one request per connection.  Bad requests
// get 400, other methods 405, other paths 404.  What the limits did is
// counted (tcpterm_http_stats_* in /metrics).
#pragma once
#include <array>
#include <atomic>
#include <deque>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "render.h"

namespace tcpterm::app {

// What one scrape shows, taken through the control channel.
struct StatsView {
  Totals t;
  LbTotals lb;
  struct Port {
    uint16_t id = 0;
    uint64_t ipackets = 0, ibytes = 0, opackets = 0, obytes = 0, imissed = 0, ierrors = 0, oerrors = 0,
             rx_nombuf = 0;
    bool link_up = false;
  };
  std::vector<Port> ports;
  std::vector<unsigned> lcores;  // lcore id of each worker, in t.per_worker order
  uint64_t mbufs_in_use = 0;
  bool running = false;           // the worker lcores run (not stopped with `stop`)
  bool pools_configured = false;  // --pool given (then lb should have answered)
  double taken_at = 0;  // seconds (steady clock)
};
StatsView take_view(dp::Dataplane& dp);
std::string render_metrics(const StatsView& v);
// The per-state history the page draws (one sample a second).
struct StateSample {
  double t = 0;
  std::array<int64_t, tcp::kStateCount> states{};
};
// prev: the view before (for rates), may be null; history: appended as
// "history" when given.
std::string render_stats_json(const StatsView& v, const StatsView* prev,
                              const std::deque<StateSample>* history = nullptr);
std::string_view stats_page();

class StatsServer {
 public:
  static constexpr size_t kMaxConns = 64;
  static constexpr size_t kMaxPerSource = 8;
  // What the endpoint's own limits did (read by /metrics).
  struct Counters {
    uint64_t accepted = 0;
    uint64_t evicted_per_source = 0;  // closed for a newer one from the same address
    uint64_t evicted_full = 0;        // closed for a newer one, all kMaxConns in use
    uint64_t timed_out = 0;           // no request, or the answer not taken, within kTimeoutMs
    uint64_t too_large = 0;           // 431
  };
  static constexpr size_t kMaxRequest = 8192;
  static constexpr int kTimeoutMs = 5000;
  static constexpr int kMinIntervalMs = 500;
  static constexpr size_t kHistory = 600;  // seconds of per-state history kept for the page

  explicit StatsServer(dp::Dataplane& dp) : dp_(dp) {}
  ~StatsServer() { stop(); }
  // Binds and listens on addr:port and starts the thread; false + err if
  // the socket cannot be had.
  bool start(uint32_t addr, uint16_t port, std::string& err);
  void stop();
  // Answers a complete request head (pure; tests and the thread).
  std::string answer(std::string_view head);

 private:
  void loop();
  const StatsView& view();  // the cached snapshot, refreshed when old
  dp::Dataplane& dp_;
  int listen_fd_ = -1, wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  StatsView cur_, prev_;
  bool have_cur_ = false, have_prev_ = false;
  // One sample a second, taken by the thread itself, so that a page opened
  // in the middle of a run shows the run so far.
  std::deque<StateSample> history_;
  double last_sample_ = 0;
  Counters c_;  // the thread's own (answer() reads them on that thread)
  void sample();
};

}  // namespace tcpterm::app
