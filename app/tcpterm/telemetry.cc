#include "telemetry.h"

#include <rte_telemetry.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <charconv>
#include <mutex>

#include "health.h"
#include "http_stats.h"
#include "render.h"

namespace tcpterm::app {

namespace {
std::mutex g_mu;  // guards g_dp against shutdown
dp::Dataplane* g_dp = nullptr;

int tel_states(const char*, const char*, rte_tel_data* d) {
  std::lock_guard<std::mutex> l(g_mu);
  if (!g_dp) return -1;
  Totals t = snapshot(*g_dp);
  if (!t.ok) return -1;
  rte_tel_data_start_dict(d);
  // Telemetry names allow letters, digits and '_' only: SYN_RECEIVED etc.
  for (size_t s = size_t(tcp::TcpState::Listen); s < tcp::kStateCount; s++) {
    std::string name(tcp::to_string(tcp::TcpState(s)));
    for (char& c : name)
      if (c == '-') c = '_';
    rte_tel_data_add_dict_int(d, name.c_str(), int(t.tcp.states[s]));
  }
  return 0;
}

int tel_stats(const char*, const char*, rte_tel_data* d) {
  std::lock_guard<std::mutex> l(g_mu);
  if (!g_dp) return -1;
  Totals t = snapshot(*g_dp);
  if (!t.ok) return -1;
  rte_tel_data_start_dict(d);
  auto add = [&](std::string_view n, uint64_t v) { rte_tel_data_add_dict_u64(d, std::string(n).c_str(), v); };
  t.tcp.for_each_counter(add);
  t.sst.for_each_counter(add);
  for (size_t i = 1; i < wire::kDropCount; i++)
    add(std::string("drop_") + wire::to_string(wire::Drop(i)), t.sst.drops[i]);
  add("drop_not_for_us", t.wc.not_for_us);
  add("flows", t.flows);
  add("time_wait_records", t.time_wait);
  return 0;
}

int tel_flows(const char*, const char* params, rte_tel_data* d) {
  std::lock_guard<std::mutex> l(g_mu);
  if (!g_dp) return -1;
  size_t n = 100;
  if (params && *params) {
    std::string_view p(params);
    auto [e, ec] = std::from_chars(p.data(), p.data() + p.size(), n);
    if (ec != std::errc() || n > 500) return -1;
  }
  auto rs = g_dp->query_each([&](dp::Request& r, size_t) {
    r.kind = dp::Request::Kind::DumpFlows;
    r.max = n;
  });
  if (rs.empty()) return -1;
  rte_tel_data_start_array(d, RTE_TEL_STRING_VAL);
  size_t shown = 0;
  for (size_t i = 0; i < rs.size(); i++)
    for (const auto& f : rs[i]->dump) {
      if (shown++ >= n) break;
      std::string s = std::to_string(g_dp->workers()[i]->lcore()) + " " +
                      f.local() + " " + f.remote() + " " +
                      std::string(tcp::to_string(f.state));
      rte_tel_data_add_array_string(d, s.c_str());
    }
  return 0;
}

int tel_config(const char*, const char*, rte_tel_data* d) {
  std::lock_guard<std::mutex> l(g_mu);
  if (!g_dp) return -1;
  const tcp::Config& c = g_dp->workers().empty() ? g_dp->stack_config().tcp
                                                 : g_dp->workers()[0]->stack().tcp_config();
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_u64(d, "msl_ms", c.msl_ms);
  rte_tel_data_add_dict_u64(d, "time_wait_ms", c.two_msl_ms());
  rte_tel_data_add_dict_u64(d, "fin_wait_2_timeout_ms", c.fin_wait_2_timeout_ms);
  rte_tel_data_add_dict_u64(d, "idle_timeout_ms", c.idle_timeout_ms);
  rte_tel_data_add_dict_u64(d, "orphan_retries", c.orphan_retries);
  rte_tel_data_add_dict_u64(d, "max_flows", g_dp->stack_config().max_flows);
  rte_tel_data_add_dict_u64(d, "max_time_wait", g_dp->stack_config().max_time_wait);
  rte_tel_data_add_dict_u64(d, "workers", g_dp->workers().size());
  rte_tel_data_add_dict_string(d, "tw_cap_policy",
                               c.tw_cap_policy == tcp::TwCapPolicy::RecycleOldest ? "recycle-oldest" : "skip");
  rte_tel_data_add_dict_string(d, "tw_rst", c.tw_rst == tcp::TwRstPolicy::Ignore ? "ignore" : "close");
  return 0;
}

// One dict per backend (every lcore added up): pool, backend, state, weight,
// active, and the backend counters; pool counters under "pools".
int tel_backends(const char*, const char*, rte_tel_data* d) {
  std::lock_guard<std::mutex> l(g_mu);
  if (!g_dp) return -1;
  LbTotals t = lb_snapshot(*g_dp);
  if (!t.ok) return -1;
  rte_tel_data_start_dict(d);
  for (const auto& b : t.backends) {
    rte_tel_data* x = rte_tel_data_alloc();
    if (!x) return -1;
    rte_tel_data_start_dict(x);
    rte_tel_data_add_dict_string(x, "pool", b.pool.c_str());
    rte_tel_data_add_dict_string(x, "state", lb::to_string(b.state));
    rte_tel_data_add_dict_u64(x, "weight", b.weight);
    rte_tel_data_add_dict_u64(x, "active", b.st.active);
    b.st.for_each_counter([&](std::string_view n, uint64_t v) { rte_tel_data_add_dict_u64(x, std::string(n).c_str(), v); });
    // Keys allow letters, digits and '_': pool_a_b_c_d_port.
    // pool_ADDRESS_PORT (an IPv6 address in brackets).
    std::string ep = b.endpoint;
    size_t colon = ep.rfind(':');
    std::string key = b.pool + "_" + ep.substr(0, colon) + "_" + ep.substr(colon + 1);
    for (char& c : key)
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    rte_tel_data_add_dict_container(d, key.c_str(), x, 0);
  }
  return 0;
}

// {"healthy": 0|1, "<check>": "ok: why" or "FAIL: why", ...}: health.h's verdict.
int tel_health(const char*, const char*, rte_tel_data* d) {
  std::lock_guard<std::mutex> l(g_mu);
  if (!g_dp) return -1;
  Health h = evaluate_health(take_view(*g_dp));
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_int(d, "healthy", h.ok ? 1 : 0);
  for (const HealthCheck& c : h.checks) {
    std::string name = c.name;  // telemetry names: letters, digits and '_'
    for (char& ch : name)
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    rte_tel_data_add_dict_string(d, name.c_str(), ((c.ok ? "ok: " : "FAIL: ") + c.detail).c_str());
  }
  return 0;
}

// Previous totals of the counters report_events() watches.
struct Watched {
  uint64_t flow_table_full = 0, tw_recycled = 0, tw_cap_skipped = 0, tx_nombuf = 0, tx_dropped = 0,
           snd_pool_exhausted = 0, rcv_buf_full = 0, ooo_dropped = 0, tx_no_neighbor = 0;
};
Watched g_prev;
}  // namespace

void telemetry_register(dp::Dataplane* dp) {
  {
    std::lock_guard<std::mutex> l(g_mu);
    g_dp = dp;
  }
  rte_telemetry_register_cmd("/tcpterm/states", tel_states, "Flows per RFC 9293 state, all lcores summed");
  rte_telemetry_register_cmd("/tcpterm/stats", tel_stats, "TCP event counters and drops by reason");
  rte_telemetry_register_cmd("/tcpterm/flows", tel_flows, "Up to N flows (default 100): lcore local remote state. Parameters: int N");
  rte_telemetry_register_cmd("/tcpterm/config", tel_config, "The effective configuration");
  rte_telemetry_register_cmd("/tcpterm/backends", tel_backends,
                             "Load-balancer backends: pool, state, weight, active flows, connects, bytes each way");
  rte_telemetry_register_cmd("/tcpterm/health", tel_health,
                             "Healthy or not (as /healthz), and each check: dataplane, ports, pools, operator");
}

void telemetry_unregister() {
  std::lock_guard<std::mutex> l(g_mu);
  g_dp = nullptr;
}

void report_events(dp::Dataplane& dp) {
  Totals t = snapshot(dp);
  if (!t.ok) {
    spdlog::warn("a worker did not answer a statistics request within 2 s");
    return;
  }
  Watched now{t.sst.flow_table_full, t.tcp.tw_recycled, t.tcp.tw_cap_skipped, t.wc.tx_nombuf,
              t.wc.tx_dropped, t.tcp.snd_pool_exhausted, t.tcp.rcv_buf_full, t.tcp.ooo_dropped,
              t.wc.tx_no_neighbor};
  auto say = [](const char* what, uint64_t cur, uint64_t prev) {
    if (cur > prev) spdlog::warn("{}: {} since the last report ({} in total)", what, cur - prev, cur);
  };
  say("flow table full, SYNs refused", now.flow_table_full, g_prev.flow_table_full);
  say("TIME-WAIT cap reached, oldest records recycled", now.tw_recycled, g_prev.tw_recycled);
  say("TIME-WAIT cap reached, flows closed without TIME-WAIT", now.tw_cap_skipped, g_prev.tw_cap_skipped);
  say("mbuf pool exhausted on transmit", now.tx_nombuf, g_prev.tx_nombuf);
  say("TX queue full, packets dropped", now.tx_dropped, g_prev.tx_dropped);
  say("buffer chunk pool exhausted on send", now.snd_pool_exhausted, g_prev.snd_pool_exhausted);
  say("receive buffer or chunk pool full, segments dropped", now.rcv_buf_full, g_prev.rcv_buf_full);
  say("out-of-order segments dropped (reassembly bound)", now.ooo_dropped, g_prev.ooo_dropped);
  say("no neighbour for a reply", now.tx_no_neighbor, g_prev.tx_no_neighbor);
  g_prev = now;
}

}  // namespace tcpterm::app
