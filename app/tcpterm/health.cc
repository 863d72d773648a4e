#include "health.h"

#include <algorithm>
#include <sstream>

namespace tcpterm::app {

namespace {
std::atomic<bool> g_drained{false};
}

void set_health_drain(bool on) { g_drained.store(on); }

Health evaluate_health(const StatsView& v) {
  const bool drained = g_drained.load();
  Health h;
  size_t workers = v.lcores.size();
  if (!v.running)
    h.checks.push_back({"dataplane", false, "worker lcores stopped; the CLI's start resumes them"});
  else if (!v.t.ok)
    h.checks.push_back({"dataplane", false, "a worker lcore did not answer its control query in time"});
  else
    h.checks.push_back({"dataplane", true, std::to_string(workers) + " worker lcore(s) polling and answering"});
  for (const StatsView::Port& p : v.ports)
    h.checks.push_back({"port " + std::to_string(p.id), p.link_up, p.link_up ? "link up" : "link down"});
  if (v.lb.ok) {
    for (const lb::PoolSnapshot& p : v.lb.pools)
      h.checks.push_back({"pool " + p.name, p.up > 0,
                          std::to_string(p.up) + " of " + std::to_string(p.total) + " backends up"});
  } else if (v.pools_configured) {
    h.checks.push_back({"pools", false, "the workers' pool state could not be read"});
  }
  h.checks.push_back({"operator", !drained, drained ? "drained by the operator; set health drain off ends it" : "not drained"});
  h.ok = std::all_of(h.checks.begin(), h.checks.end(), [](const HealthCheck& c) { return c.ok; });
  return h;
}

std::string render_health(const Health& h) {
  std::ostringstream o;
  o << (h.ok ? "healthy" : "unhealthy") << "\n";
  for (const HealthCheck& c : h.checks) o << "  " << c.name << ": " << (c.ok ? "ok" : "FAIL") << " (" << c.detail << ")\n";
  return o.str();
}

}  // namespace tcpterm::app
