// Text renderings shared by the CLI, --stats-period and the exit summary.
// Counter lines use the shape `NAME: VALUE` (SPEC.md).
#pragma once
#include <string>
#include <vector>

#include "dp/dataplane.h"

namespace tcpterm::app {

// Every worker's snapshot, summed (and kept per worker for `show lcores`).
struct Totals {
  bool ok = false;
  tcp::Stats tcp;
  stack::StackStats sst;
  dp::WorkerCounters wc;
  uint64_t flows = 0, time_wait = 0, time_wait_cap = 0, chunks_in_use = 0, memory = 0, addr6 = 0;
  int64_t listeners = 0;
  std::vector<std::unique_ptr<dp::Request>> per_worker;
};

Totals snapshot(dp::Dataplane& dp);
std::string render_states(const Totals& t);
std::string render_tcp_stats(const Totals& t);
std::string render_timewait(const Totals& t, const dp::Dataplane& dp);
std::string render_lcores(const Totals& t, const dp::Dataplane& dp);
std::string render_timers(const Totals& t, const dp::Dataplane& dp);
std::string render_port_stats(int port);  // -1: all
std::string render_port_xstats(int port);
std::string render_port_info(const dp::Dataplane& dp);
std::string render_config(const dp::Dataplane& dp);
// Pools and backends, every worker's view added up (state: worker 0's, or
// "mixed" words joined when workers disagree).  Empty `pool`: all pools.
struct LbTotals {
  bool ok = false;
  std::vector<lb::PoolSnapshot> pools;
  std::vector<lb::BackendSnapshot> backends;
};
LbTotals lb_snapshot(dp::Dataplane& dp);
std::string render_pools(const LbTotals& t);
std::string render_backends(const LbTotals& t, const std::string& pool);
std::string render_flows(dp::Dataplane& dp, size_t max, int state, uint32_t addr);
// The compact --stats-period block; `prev` is the previous snapshot's totals.
std::string render_period(const Totals& now, const Totals& prev, double seconds, double uptime);

}  // namespace tcpterm::app
