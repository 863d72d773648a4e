// tcpterm's application options (after `--`, testpmd convention).  Pure: the
// parser is unit-tested without EAL.  Any bad option or value yields one
// line naming it; the caller exits with status 2 before anything starts.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "apps/apps.h"
#include "lb/pool.h"
#include "stack/stack.h"

namespace tcpterm::config {

inline constexpr uint32_t kMaxMslMs = 3600000;
// Deadlines are 32-bit milliseconds compared modulo 2^32 (valid below 2^31,
// 24 days): every timeout, from the command line or the CLI, stays below a day.
inline constexpr uint32_t kMaxTimeoutMs = 86400000;

struct AddrSpec {
  uint16_t port = 0;
  uint32_t addr = 0;  // first address owned
  uint32_t last = 0;  // last address owned (== addr unless a range FIRST-LAST)
  uint8_t prefix = 24;
  bool contains(uint32_t a) const { return a >= addr && a <= last; }
};

// --addr [PORT@]IPV6[-IPV6]/PREFIX: IPv6 addresses owned on a port; a range
// (the client role's sources) varies in the low 32 bits only.
struct Addr6Spec {
  uint16_t port = 0;
  wire::Ip6 addr{};      // the first address
  uint32_t last_lo = 0;  // low 32 bits of the last address (== the first's unless a range)
  uint8_t prefix = 64;
  uint32_t first_lo() const { return wire::load32(addr.data() + 12); }
  bool contains(const wire::Ip6& a) const {
    if (std::memcmp(a.data(), addr.data(), 12) != 0) return false;
    uint32_t lo = wire::load32(a.data() + 12);
    return lo >= first_lo() && lo <= last_lo;
  }
};

// --connect IPV4:PORT[,key=value...]: the client role.
struct ConnectSpec {
  bool v6 = false;  // [IPV6]:PORT: addr6, sources src6 + low 32 bits in src_first..src_last
  wire::Ip6 addr6{}, src6{};
  uint32_t addr = 0;
  uint16_t port = 0;
  uint32_t src_first = 0, src_last = 0;  // default: the first --addr range not holding addr
  uint16_t sport_lo = 1024, sport_hi = 65535;
  uint64_t rate = 0, count = 0, duration_ms = 0;
  uint32_t concurrency = 1000, request = 0;
  std::string close = "server";
  std::string text;
};

// --route PREFIX/LEN,via=GATEWAY (0.0.0.0/0: the default gateway).
// --route PREFIX6/LEN,via=GATEWAY6 for IPv6 (v6 set, prefix6/gateway6).
struct RouteSpec {
  uint32_t prefix = 0;
  uint8_t len = 0;
  uint32_t gateway = 0;
  bool v6 = false;
  wire::Ip6 prefix6{}, gateway6{};
  std::string text;
};

struct ListenSpec {
  uint32_t addr = 0;  // 0.0.0.0 (or [::]): every owned address of both families
  bool v6 = false;    // [IPV6]:PORT/APP: addr6 (unless it is ::)
  wire::Ip6 addr6{};
  uint16_t port = 0;
  std::string app;
  apps::Params params;
  std::string text;  // as given, for show config
};

struct Options {
  std::vector<AddrSpec> addrs;
  std::vector<Addr6Spec> addrs6;
  std::vector<ListenSpec> listens;
  std::vector<ConnectSpec> connects;
  bool ring_pair = false;  // two net_ring ports joined to each other (loopback benchmark)
  // --ring-cksum offload|software: whether the ring pair acts as an
  // in-memory link that carries checksums as offload requests (Linux veth's
  // CHECKSUM_PARTIAL; a NIC's offload) or has both ends compute and verify
  // them in software.
  bool ring_cksum_offload = true;
  std::string bench_csv;   // non-interactive: per-second CSV of states and rates
  std::vector<RouteSpec> routes;
  std::vector<lb::PoolConf> pools;  // --pool (the load-balancer front end)
  // --http-stats IP:PORT: the management HTTP endpoint (0: off).
  uint32_t http_stats_addr = 0;
  uint16_t http_stats_port = 0;
  // Everything the per-lcore stack uses, parsed straight into its own
  // structure (timeouts, limits, policies as enums): one set of defaults,
  // the stack's.  max_time_wait == 0 means auto (sized at start-up from
  // the machine's memory, see lib/dp).
  stack::StackConfig stack = default_stack();
  bool interactive = false;
  std::string cmdline_file;
  uint32_t stats_period_s = 0;
  uint32_t idle_sleep_us = 0;  // sleep when a poll finds nothing (shared machines)
  bool syn_admission = false;  // pace new SYNs by completions while the receive queue is backlogged (lib/dp, docs/benchmarks.md 3f)
  uint32_t run_seconds = 0;    // non-interactive: stop after S seconds (0: until a signal)
  std::string log_level = "info";
  std::string log_file;

  static stack::StackConfig default_stack() {
    stack::StackConfig c;
    c.max_time_wait = 0;  // auto
    return c;
  }
};

// Parses argv[0..argc) (argv[0] is the program name).  Returns an error
// message naming the option, or nothing on success.
std::optional<std::string> parse_options(int argc, char** argv, Options& o);
std::string usage();

// "[PORT@]IPV4/PREFIX" (or IPV6/PREFIX) and "IPV4:PORT/APP[,key=value...]"
// (or [IPV6]:PORT/APP...).
std::optional<std::string> parse_addr(const std::string& s, AddrSpec& out);
std::optional<std::string> parse_addr6(const std::string& s, Addr6Spec& out);
std::optional<std::string> parse_listen(const std::string& s, ListenSpec& out);
std::optional<std::string> parse_connect(const std::string& s, ConnectSpec& out);
std::optional<std::string> parse_route(const std::string& s, RouteSpec& out);

}  // namespace tcpterm::config
