// The appliance's health as a router or an orchestrator needs it: one
// verdict, and the checks behind it.  Served as /healthz by --http-stats
// (200 healthy, 503 not), printed by `show health`, exported as the
// tcpterm_healthy gauge.  scripts/health-route.sh turns it into a route
// announced or withdrawn by BIRD or FRR (ECMP scale-out: docs/observability.md).
//
// Healthy means all of:
//   dataplane  the worker lcores run (not stopped with `stop`) and every one
//              answered this snapshot's control query in time;
//   port N     the link of every port is up;
//   pool NAME  every pool has at least one backend up (a front end whose
//              pool is empty cannot serve that service);
//   operator   not drained (`set health drain on`: leave ECMP before
//              maintenance; it still serves whatever reaches it).
#pragma once
#include <atomic>
#include <string>
#include <vector>

#include "http_stats.h"

namespace tcpterm::app {

struct HealthCheck {
  std::string name;    // "dataplane", "port 0", "pool web", "operator"
  bool ok = false;
  std::string detail;  // why, in a few words
};
struct Health {
  bool ok = false;
  std::vector<HealthCheck> checks;
};

// From a view taken by take_view, and the drain flag as it is now.
Health evaluate_health(const StatsView& v);
// "healthy" or "unhealthy", then one `NAME: ok|FAIL (detail)` line per check.
std::string render_health(const Health& h);

// The operator's drain flag (`set health drain on|off`).
void set_health_drain(bool on);

}  // namespace tcpterm::app
