// The per-lcore load balancer: backend pools, their runtime state, backend
// selection (Maglev, smooth weighted round robin, least connections),
// source tuples for backend connections, and health checks.
//
// One Balancer per worker lcore, single-threaded like its Stack.  Every
// change (pool add/del/drain from the CLI) reaches it as a control request
// between bursts; nothing is shared between lcores.  Each lcore checks its
// backends itself (active opens on its own stack): with W workers a backend
// sees W checks per interval, and each lcore's view of health is its own,
// which keeps a flow's backend a decision of the lcore that owns the flow.
//
// Backend states (show backends): up, down (failed health checks or
// consecutive connect failures), drain (no new flows; existing ones end
// on their own).  Removed backends keep their slot (flows still refer to it
// by index) and are hidden once their last flow ends.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lb/maglev.h"
#include "lb/pool.h"
#include "stack/stack.h"

namespace tcpterm::lb {

#define TCPTERM_BACKEND_COUNTERS(X)                                                             \
  X(connects_ok) X(connects_failed) X(connect_timeouts) X(connect_refused) X(bytes_in) X(bytes_out) \
  X(checks_ok) X(checks_failed) X(marked_down) X(marked_up)

struct BackendStats {
  uint64_t active = 0;  // flows to this backend now (gauge)
#define X(n) uint64_t n = 0;
  TCPTERM_BACKEND_COUNTERS(X)
#undef X
  template <class F>
  void for_each_counter(F&& f) const {
#define X(n) f(std::string_view(#n), n);
    TCPTERM_BACKEND_COUNTERS(X)
#undef X
  }
  BackendStats& operator+=(const BackendStats& o) {
    active += o.active;
#define X(n) n += o.n;
    TCPTERM_BACKEND_COUNTERS(X)
#undef X
    return *this;
  }
};

#define TCPTERM_POOL_COUNTERS(X)                                                        \
  X(proxied) X(no_backend) X(backend_no_source_port) X(connect_retries) X(client_resets_sent) \
  X(http_503_sent) X(backend_resets_sent)

struct PoolCounters {
#define X(n) uint64_t n = 0;
  TCPTERM_POOL_COUNTERS(X)
#undef X
  template <class F>
  void for_each_counter(F&& f) const {
#define X(n) f(std::string_view(#n), n);
    TCPTERM_POOL_COUNTERS(X)
#undef X
  }
  PoolCounters& operator+=(const PoolCounters& o) {
#define X(n) n += o.n;
    TCPTERM_POOL_COUNTERS(X)
#undef X
    return *this;
  }
};

enum class BackendState : uint8_t { Up, Down, Drain };
const char* to_string(BackendState s);

struct Backend {
  BackendConf conf;
  bool removed = false, draining = false, healthy = true;
  uint8_t rise_run = 0, fall_run = 0;  // consecutive check results
  uint8_t connect_fail_run = 0;        // consecutive connect failures (passive check)
  uint32_t port_cursor = 0, src_cursor = 0;
  int64_t wrr_current = 0;
  stack::FlowRef check;  // the health check in flight
  uint64_t check_started_ms = 0, next_check_ms = 0;
  BackendStats st;
  bool eligible() const { return !removed && !draining && healthy && conf.weight > 0; }
  BackendState state() const {
    return draining ? BackendState::Drain : healthy ? BackendState::Up : BackendState::Down;
  }
};

struct Pool {
  PoolConf conf;
  std::vector<Backend> backends;
  Maglev maglev;
  bool dirty = true;  // eligibility changed: rebuild the table before the next pick
  PoolCounters c;
  explicit Pool(const PoolConf& pc) : conf(pc), maglev(pc.table_size) {}
};

// What `show pools` / `show backends` / telemetry read (one lcore's view;
// the CLI adds them up).
struct BackendSnapshot {
  std::string pool;
  uint32_t addr = 0;
  uint16_t port = 0;
  std::string endpoint;  // BackendConf::endpoint()
  uint32_t weight = 0;
  BackendState state = BackendState::Up;
  bool removed = false;
  BackendStats st;
};
struct PoolSnapshot {
  std::string name, describe;
  PoolCounters c;
  uint32_t up = 0, total = 0;
};

class HealthChecker;

class Balancer {
 public:
  // What the edge provides: the appliance address that reaches `dst` (0:
  // none), and whether the backend's replies to (src, sport) RSS-steer to
  // this lcore.  Both may be empty (tests): any owned source, any port.
  struct Edge {
    std::function<uint32_t(uint32_t dst)> source_for;
    std::function<bool(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport)> steer_ok;
    // The same for IPv6 backends (source_for6 false: none reaches dst).
    std::function<bool(const wire::Ip6& dst, wire::Ip6& src)> source_for6;
    std::function<bool(const wire::Ip6& src, uint16_t sport, const wire::Ip6& dst, uint16_t dport)> steer_ok6;
  };
  explicit Balancer(Edge edge = {});
  ~Balancer();

  // ---- configuration (start-up, then control requests) ----
  bool add_pool(const PoolConf& pc, std::string& err);
  int find_pool(std::string_view name) const;
  // pool add: a new backend, or an existing one re-weighted (and undrained).
  bool add_backend(std::string_view pool, const BackendConf& b, std::string& err);
  bool del_backend(std::string_view pool, const BackendConf& b, std::string& err);
  bool drain_backend(std::string_view pool, const BackendConf& b, std::string& err);

  // ---- the data path ----
  Pool& pool(int i) { return pools_[size_t(i)]; }
  const std::vector<Pool>& pools() const { return pools_; }
  // A backend for a client (addr, port), not `avoid` (a retry); -1 if none
  // is eligible (counted by the caller).  `slot` carries the Maglev ring
  // position across retries.
  int select(Pool& p, uint32_t caddr, uint16_t cport, int avoid, uint32_t& slot);
  // A free source tuple towards backend b: key.laddr/lport chosen, never a
  // tuple this stack holds (in use or TIME-WAIT); false when the range is
  // exhausted (counted: backend_no_source_port).
  // An IPv6 backend's key holds address ids the caller releases
  // (Stack::release_key6) after connecting.
  bool source_tuple(stack::Stack& s, Pool& p, Backend& b, flow::FlowKey4& key);
  bool source_tuple6(stack::Stack& s, Pool& p, Backend& b, flow::FlowKey4& key);
  // A backend connection failed (refused or timed out) / succeeded:
  // passive health marking.
  void connect_failed(Pool& p, Backend& b, bool timeout);
  void connect_ok(Pool& p, Backend& b);
  // Health checks: starts the due ones, times out the stuck ones; and a
  // step of each Maglev table being rebuilt.  Cheap when nothing is due
  // (called every loop iteration).
  void tick(stack::Stack& s, uint64_t now_ms);
  // Maglev slots cleared or probed per tick while a table is rebuilt (a
  // backend came up, went down, was added or removed): some tens of
  // microseconds, so a rebuild never holds a worker's packets up.
  static constexpr uint64_t kMaglevStep = 16384;
  // A health check finished (HealthChecker calls it).
  void check_result(int pool, int backend, bool ok);

  // ---- observation ----
  std::vector<BackendSnapshot> backends_snapshot() const;
  std::vector<PoolSnapshot> pools_snapshot() const;

 private:
  void set_healthy(Pool& p, Backend& b, bool up);
  // A backend of a pool by address (marks the pool for a rebuild); null and
  // err set when there is none.
  Backend* existing(std::string_view pool, const BackendConf& b, std::string& err);
  void rebuild(Pool& p);
  // One Maglev pick from the table in use, skipping backends no longer
  // eligible (select() finishes a rebuild if it finds none).
  int pick_maglev(Pool& p, uint32_t caddr, uint16_t cport, int avoid, uint32_t& slot);
  Edge edge_;
  std::vector<Pool> pools_;
  std::unique_ptr<HealthChecker> checker_;
  uint64_t next_tick_ms_ = 0;
};

}  // namespace tcpterm::lb
