#include "render.h"

#include <rte_ethdev.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <sstream>

namespace tcpterm::app {

namespace {
std::string ip(uint32_t a) { return wire::ip_to_string(a); }
void line(std::ostringstream& o, std::string_view name, uint64_t v) {
  o << "  " << name << ": " << v << "\n";
}
}  // namespace

Totals snapshot(dp::Dataplane& dp) {
  Totals t;
  t.per_worker = dp.query_all(dp::Request::Kind::Snapshot);
  if (t.per_worker.empty()) return t;
  t.ok = true;
  for (auto& r : t.per_worker) {
    t.tcp += r->tcp;
    t.sst += r->sst;
#define X(n) t.wc.n += r->wc.n;
    TCPTERM_WORKER_COUNTERS(X)
#undef X
    t.flows += r->flows;
    t.time_wait += r->time_wait;
    t.time_wait_cap += r->time_wait_cap;
    t.chunks_in_use += r->chunks_in_use;
    t.memory += r->memory;
    t.addr6 += r->addr6_held;
  }
  // Every worker holds every listener: count them once.
  t.listeners = t.per_worker[0]->tcp.states[size_t(tcp::TcpState::Listen)];
  t.tcp.states[size_t(tcp::TcpState::Listen)] = t.listeners;
  return t;
}

std::string render_states(const Totals& t) {
  std::ostringstream o;
  for (size_t s = size_t(tcp::TcpState::Listen); s < tcp::kStateCount; s++)
    o << tcp::to_string(tcp::TcpState(s)) << ": " << t.tcp.states[s] << "\n";
  return o.str();
}

std::string render_tcp_stats(const Totals& t) {
  std::ostringstream o;
  t.tcp.for_each_counter([&](std::string_view n, uint64_t v) { line(o, n, v); });
  t.sst.for_each_counter([&](std::string_view n, uint64_t v) { line(o, n, v); });
  for (size_t s = size_t(tcp::TcpState::SynSent); s < tcp::kStateCount; s++)
    line(o, "entered_" + std::string(tcp::to_string(tcp::TcpState(s))), t.tcp.entered[s]);
  for (size_t i = 1; i < wire::kDropCount; i++)
    line(o, std::string("drop_") + wire::to_string(wire::Drop(i)), t.sst.drops[i]);
  line(o, "drop_not_for_us", t.wc.not_for_us);
  // The send path's next-hop outcomes (tx.cc).
  line(o, "tx_no_neighbor", t.wc.tx_no_neighbor);
  line(o, "tx_no_route", t.wc.tx_no_route);
  line(o, "arp_requests_out", t.wc.arp_requests_out);
  line(o, "arp_not_on_link", t.wc.arp_not_on_link);
  line(o, "arp_held", t.wc.arp_held);  // frames that waited for an ARP answer
  line(o, "arp_held_sent", t.wc.arp_held_sent);
  line(o, "arp_held_dropped", t.wc.arp_held_dropped);
  line(o, "nexthop_table_full", t.wc.nexthop_table_full);
  line(o, "rx_martian", t.wc.rx_martian);
  // Admission control (dp/dataplane.h): SYNs refused while the rx queue is backlogged.
  line(o, "syn_dropped_overload", t.wc.syn_dropped_overload);
  line(o, "overload_entered", t.wc.overload_entered);
  // Software steering on a multi-queue port (dp/rss.h): frames received
  // by one lcore for another's flow, handed over through its ring.
  line(o, "steered_out", t.wc.steered_out);
  line(o, "steered_in", t.wc.steered_in);
  line(o, "steer_fanout", t.wc.steer_fanout);
  line(o, "steer_dropped", t.wc.steer_dropped);
  // IPv6: neighbour discovery and ICMPv6 (ipv6.cc).
  line(o, "rx_ipv6", t.wc.rx_ipv6);
  line(o, "nd_solicitations_in", t.wc.nd_solicitations_in);
  line(o, "nd_advertisements_out", t.wc.nd_advertisements_out);
  line(o, "nd_solicitations_out", t.wc.nd_solicitations_out);
  line(o, "nd_advertisements_in", t.wc.nd_advertisements_in);
  line(o, "nd_bad_hop_limit", t.wc.nd_bad_hop_limit);
  line(o, "nd_not_on_link", t.wc.nd_not_on_link);
  line(o, "nd_dad_probes_for_ours", t.wc.nd_dad_probes_for_ours);
  line(o, "icmp6_echo_replies", t.wc.icmp6_echo_replies);
  line(o, "icmp6_packet_too_big", t.wc.icmp6_packet_too_big);
  line(o, "icmp6_ignored", t.wc.icmp6_ignored);
  for (const auto& r : t.per_worker)  // the client role, where one runs
    if (r->has_generator) {
      r->gen.for_each_counter([&](std::string_view n, uint64_t v) { line(o, n, v); });
      line(o, "gen_active", r->gen.active);
    }
  return o.str();
}

std::string render_timewait(const Totals& t, const dp::Dataplane& dp) {
  std::ostringstream o;
  line(o, "records", t.time_wait);
  line(o, "cap", t.time_wait_cap);
  line(o, "record_bytes", sizeof(flow::TwRecord));
  line(o, "memory_bytes", t.time_wait_cap * sizeof(flow::TwRecord));
  // IPv6 records keep address ids: one entry per distinct address held
  // (flow/addr6.h); a record whose peer shares none costs ipv6_record_bytes.
  line(o, "ipv6_addresses", t.addr6);
  line(o, "ipv6_record_bytes", flow::kTimeWait6Bytes);
  line(o, "msl_ms", dp.workers().empty() ? 0 : dp.workers()[0]->stack().tcp_config().msl_ms);
  line(o, "entered", t.tcp.tw_entered);
  line(o, "expired", t.tcp.tw_expired);
  line(o, "recycled", t.tcp.tw_recycled);
  line(o, "cap_skipped", t.tcp.tw_cap_skipped);
  line(o, "fin_reacked", t.tcp.tw_fin_reacked);
  line(o, "syn_reopened", t.tcp.tw_syn_reopened);
  line(o, "rst_ignored", t.tcp.tw_rst_ignored);
  const tcp::Config& tc = dp.stack_config().tcp;
  o << "  policy: " << (tc.tw_cap_policy == tcp::TwCapPolicy::RecycleOldest ? "recycle-oldest" : "skip")
    << ", rst " << (tc.tw_rst == tcp::TwRstPolicy::Ignore ? "ignore (RFC 1337)" : "close") << "\n";
  return o.str();
}

std::string render_lcores(const Totals& t, const dp::Dataplane& dp) {
  std::ostringstream o;
  auto& ws = dp.workers();
  for (size_t i = 0; i < t.per_worker.size() && i < ws.size(); i++) {
    const auto& r = *t.per_worker[i];
    double busy = r.wc.total_cycles ? 100.0 * double(r.wc.busy_cycles) / double(r.wc.total_cycles) : 0;
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", busy);
    o << "lcore " << ws[i]->lcore() << " (queue " << ws[i]->queue() << "):\n";
    line(o, "rx_packets", r.wc.rx_packets);
    line(o, "tx_packets", r.wc.tx_packets);
    if (ws[i]->inbox()) {  // software steering (dp/rss.h): frames handed to and from other lcores
      line(o, "steered_out", r.wc.steered_out);
      line(o, "steered_in", r.wc.steered_in);
    }
    line(o, "flows", r.flows);
    line(o, "time_wait", r.time_wait);
    o << "  busy_percent: " << b << "\n";
    line(o, "longest_poll_us", r.longest_poll_us);
    line(o, "socket", uint64_t(ws[i]->socket()));
    // Where the lcore's memory lives: its stack was built (first touch) on
    // this lcore, so on its socket.
    o << "  memory_placed_by: lcore " << ws[i]->built_on_lcore()
      << (ws[i]->built_on_lcore() == int(ws[i]->lcore()) ? " (first touch, local)" : " (REMOTE)") << "\n";
    line(o, "memory_bytes", r.memory);
    line(o, "chunks_in_use", r.chunks_in_use);
    line(o, "chunks_high_water", r.chunks_high_water);
    line(o, "nexthops", r.nexthops);
    line(o, "nexthop_refs", r.nexthop_refs);
    line(o, "neighbors", r.neighbors);
  }
  return o.str();
}

std::string render_timers(const Totals& t, const dp::Dataplane& dp) {
  std::ostringstream o;
  auto& ws = dp.workers();
  for (size_t i = 0; i < t.per_worker.size() && i < ws.size(); i++) {
    const auto& r = *t.per_worker[i];
    o << "lcore " << ws[i]->lcore() << ":\n";
    size_t total = 0;
    for (size_t l = 0; l < r.wheel.size(); l++) {
      total += r.wheel[l];
      line(o, l + 1 < r.wheel.size() ? "level_" + std::to_string(l) : std::string("overflow"), r.wheel[l]);
    }
    line(o, "armed", total);
    line(o, "time_wait_fifo", r.time_wait);
  }
  return o.str();
}

std::string render_port_stats(int port) {
  std::ostringstream o;
  uint16_t p;
  RTE_ETH_FOREACH_DEV(p) {
    if (port >= 0 && p != port) continue;
    rte_eth_stats s{};
    rte_eth_stats_get(p, &s);
    o << "  ######## NIC statistics for port " << p << " ########\n";
    line(o, "RX-packets", s.ipackets);
    line(o, "RX-bytes", s.ibytes);
    line(o, "RX-errors", s.ierrors);
    line(o, "RX-missed", s.imissed);
    line(o, "RX-nombuf", s.rx_nombuf);
    line(o, "TX-packets", s.opackets);
    line(o, "TX-bytes", s.obytes);
    line(o, "TX-errors", s.oerrors);
  }
  return o.str();
}

std::string render_port_xstats(int port) {
  std::ostringstream o;
  uint16_t p;
  RTE_ETH_FOREACH_DEV(p) {
    if (port >= 0 && p != port) continue;
    int n = rte_eth_xstats_get_names(p, nullptr, 0);
    if (n <= 0) continue;
    std::vector<rte_eth_xstat_name> names(static_cast<size_t>(n));
    std::vector<rte_eth_xstat> vals(static_cast<size_t>(n));
    rte_eth_xstats_get_names(p, names.data(), unsigned(n));
    int m = rte_eth_xstats_get(p, vals.data(), unsigned(n));
    o << "  ######## NIC extended statistics for port " << p << " ########\n";
    for (int i = 0; i < m; i++) line(o, names[vals[size_t(i)].id].name, vals[size_t(i)].value);
  }
  return o.str();
}

std::string render_port_info(const dp::Dataplane& dp) {
  std::ostringstream o;
  for (const auto& p : dp.ports()) {
    rte_eth_link link{};
    rte_eth_link_get_nowait(p.id, &link);
    o << "  ******** Infos for port " << p.id << " ********\n";
    o << "  Name: " << p.name << "\n  Driver: " << p.driver << "\n";
    char mac[RTE_ETHER_ADDR_FMT_SIZE];
    rte_ether_format_addr(mac, sizeof mac, &p.mac);
    o << "  MAC address: " << mac << "\n";
    o << "  Socket: " << p.socket << "\n";
    o << "  Queues: " << p.queues << " rx, " << p.queues << " tx\n";
    o << "  Link status: " << (link.link_status ? "up" : "down") << "\n";
    o << "  Link speed: " << link.link_speed << " Mbps\n";
    o << "  RSS: " << (p.rss ? "on" : "off") << "\n";
    // Which lcore owns a flow (dp/rss.h): the queue the NIC picks by its RSS
    // hash, or software steering by a keyed hash of the tuple.
    o << "  Flow steering: "
      << (p.queues <= 1 ? "one queue" : p.sw_steer ? "software (keyed tuple hash; frames handed between lcores)"
          : p.has_peer_mac ? "fixed (the ring pair joins queues to lcores)" : "RSS (the NIC's Toeplitz hash)")
      << "\n";
    if (p.virtual_wire)
      o << "  Checksum offload: in-memory link (sent as offload requests, received as verified; --ring-cksum)\n";
    else
      o << "  Checksum offload: rx ip " << (p.rx_ip_cksum ? "on" : "off") << ", rx tcp "
        << (p.rx_tcp_cksum ? "on" : "off") << ", tx ip/tcp " << (p.tx_tcp_cksum ? "on" : "off") << "\n";
    o << "  Addresses:";
    for (const auto& a : p.addrs) o << " " << ip(a.addr) << "/" << int(a.prefix);
    for (const auto& a : p.addrs6) o << " " << wire::ip6_to_string(a.addr) << "/" << int(a.prefix);
    o << "\n";
  }
  return o.str();
}

LbTotals lb_snapshot(dp::Dataplane& dp) {
  LbTotals t;
  auto rs = dp.query_all(dp::Request::Kind::Pools);
  if (rs.empty()) return t;
  t.ok = true;
  for (const auto& r : rs) {
    for (const auto& p : r->pools) {
      auto it = std::find_if(t.pools.begin(), t.pools.end(), [&](const auto& x) { return x.name == p.name; });
      if (it == t.pools.end()) {
        t.pools.push_back(p);
      } else {
        it->c += p.c;
        it->up = std::min(it->up, p.up);  // up on every lcore
      }
    }
    for (const auto& b : r->backends) {
      auto it = std::find_if(t.backends.begin(), t.backends.end(), [&](const auto& x) {
        return x.pool == b.pool && x.endpoint == b.endpoint;
      });
      if (it == t.backends.end()) {
        t.backends.push_back(b);
      } else {
        it->st += b.st;
        // A backend is up only where every lcore sees it up.
        if (b.state != lb::BackendState::Up && it->state == lb::BackendState::Up) it->state = b.state;
      }
    }
  }
  return t;
}

std::string render_pools(const LbTotals& t) {
  std::ostringstream o;
  if (t.pools.empty()) return "no pools (start with --pool NAME=IP:PORT,...)\n";
  for (const auto& p : t.pools) {
    o << "pool " << p.name << ": " << p.up << "/" << p.total << " backends up\n";
    o << "  " << p.describe << "\n";
    uint64_t active = 0;
    for (const auto& b : t.backends)
      if (b.pool == p.name) active += b.st.active;
    line(o, "active", active);
    p.c.for_each_counter([&](std::string_view n, uint64_t v) { line(o, n, v); });
  }
  return o.str();
}

std::string render_backends(const LbTotals& t, const std::string& pool) {
  std::ostringstream o;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%-8s %-21s %-6s %6s %8s %10s %10s %14s %14s\n", "pool", "backend", "state",
                "weight", "active", "conn_ok", "conn_fail", "bytes_in", "bytes_out");
  o << buf;
  size_t n = 0;
  for (const auto& b : t.backends) {
    if (!pool.empty() && b.pool != pool) continue;
    n++;
    const std::string& ep = b.endpoint;
    std::string state = std::string(lb::to_string(b.state)) + (b.removed ? "*" : "");
    std::snprintf(buf, sizeof buf, "%-8s %-21s %-6s %6u %8llu %10llu %10llu %14llu %14llu\n", b.pool.c_str(),
                  ep.c_str(), state.c_str(), b.weight, (unsigned long long)b.st.active,
                  (unsigned long long)b.st.connects_ok, (unsigned long long)b.st.connects_failed,
                  (unsigned long long)b.st.bytes_in, (unsigned long long)b.st.bytes_out);
    o << buf;
  }
  if (!n) return pool.empty() ? "no backends\n" : "no backends in pool " + pool + "\n";
  o << "(bytes_in: from the backend; bytes_out: to it; * removed, finishing its flows)\n";
  return o.str();
}

std::string render_config(const dp::Dataplane& dp) {
  std::ostringstream o;
  const auto& opt = dp.options();
  const tcp::Config& c = dp.workers().empty()
                             ? dp.stack_config().tcp
                             : dp.workers()[0]->stack().tcp_config();
  line(o, "msl_ms", c.msl_ms);
  line(o, "time_wait_ms", c.two_msl_ms());
  line(o, "fin_wait_2_timeout_ms", c.fin_wait_2_timeout_ms);
  line(o, "idle_timeout_ms", c.idle_timeout_ms);
  line(o, "rto_initial_ms", c.rto_initial_ms);
  line(o, "rto_min_ms", c.rto_min_ms);
  line(o, "rto_max_ms", c.rto_max_ms);
  line(o, "syn_retries", c.syn_retries);
  line(o, "synack_retries", c.synack_retries);
  line(o, "data_retries", c.data_retries);
  line(o, "orphan_retries", c.orphan_retries);
  line(o, "delack_ms", c.delack_ms);
  line(o, "mss", c.mss);
  line(o, "rcv_buf", c.rcv_buf);
  line(o, "snd_buf", c.snd_buf);
  line(o, "max_flows", dp.stack_config().max_flows);
  line(o, "max_time_wait", dp.stack_config().max_time_wait);
  line(o, "buffer_chunks", dp.stack_config().chunks);
  o << "  table_hugepages: " << (dp.stack_config().table_hugepages ? "on" : "off") << "\n";
  o << "  prefault: " << (dp.stack_config().prefault ? "on" : "off") << "\n";
  line(o, "workers", dp.workers().size());
  o << "  tw_rst: " << (c.tw_rst == tcp::TwRstPolicy::Ignore ? "ignore" : "close") << "\n";
  o << "  tw_cap_policy: "
    << (c.tw_cap_policy == tcp::TwCapPolicy::RecycleOldest ? "recycle-oldest" : "skip") << "\n";
  const char* sc[] = {"off", "on", "auto"};
  const auto& ws = dp.workers();
  o << "  syncookies: " << sc[size_t(ws.empty() ? dp.stack_config().syncookies : ws[0]->stack().config().syncookies)] << "\n";
  line(o, "syn_backlog", dp.stack_config().syn_backlog);
  o << "  timestamps: " << (c.timestamps ? "on" : "off") << "\n";
  o << "  window_scaling: " << (c.window_scaling ? "on" : "off") << "\n";
  for (const auto& a : opt.addrs)
    o << "  addr: " << a.port << "@" << ip(a.addr) << "/" << int(a.prefix) << "\n";
  for (const auto& a : opt.addrs6)
    o << "  addr: " << a.port << "@" << wire::ip6_to_string(a.addr) << "/" << int(a.prefix) << "\n";
  for (const auto& p : opt.pools) o << "  pool: " << p.name << " " << p.describe() << "\n";
  for (const auto& r : dp.routes().all())
    o << "  route: " << ip(r.prefix) << "/" << int(r.len) << " "
      << (r.gateway ? "via " + ip(r.gateway) : std::string("on-link")) << " port " << r.port << "\n";
  for (const auto& r : dp.routes6().all())
    o << "  route: " << wire::ip6_to_string(r.prefix) << "/" << int(r.len) << " "
      << (r.has_gateway ? "via " + wire::ip6_to_string(r.gateway) : std::string("on-link")) << " port " << r.port
      << "\n";
  if (!dp.workers().empty()) {
    const stack::Stack& st = dp.workers()[0]->stack();
    for (const auto& l : st.listeners()) {
      std::string a = flow::is_v6_id(l.addr) ? "[" + wire::ip6_to_string(st.addr6(l.addr)) + "]" : ip(l.addr);
      o << "  listen: " << a << ":" << l.port << "/" << l.app->name() << "\n";
    }
  }
  return o.str();
}

std::string render_flows(dp::Dataplane& dp, size_t max, int state, uint32_t addr) {
  auto rs = dp.query_each([&](dp::Request& r, size_t) {
    r.kind = dp::Request::Kind::DumpFlows;
    r.max = max;
    r.state_filter = state;
    r.addr_filter = addr;
  });
  if (rs.empty()) return "error: a worker did not answer\n";
  std::ostringstream o;
  size_t shown = 0;
  o << "lcore  local                  remote                 state\n";
  for (size_t i = 0; i < rs.size(); i++) {
    for (const auto& f : rs[i]->dump) {
      if (shown >= max) break;
      char b[160];
      std::string l = f.local(), r = f.remote();
      std::snprintf(b, sizeof b, "%-6u %-22s %-22s %s\n", dp.workers()[i]->lcore(), l.c_str(),
                    r.c_str(), std::string(tcp::to_string(f.state)).c_str());
      o << b;
      shown++;
    }
  }
  uint64_t examined = 0;
  unsigned polls = 0;
  for (const auto& r : rs) {
    examined += r->listing.examined;
    polls = std::max(polls, r->dump_steps);
  }
  // What the listing cost the workers: slots and records examined, and the
  // most polls one lcore spread them over (Worker::kDumpStep per poll).
  // (No state name on this line: operators grep the rows by state.)
  o << "flows shown: " << shown << " (" << examined << " slots and records examined, in at most " << polls
    << (polls == 1 ? " poll" : " polls") << " per lcore)\n";
  for (size_t i = 0; i < rs.size(); i++)
    if (rs[i]->listing.cut)
      o << "(lcore " << dp.workers()[i]->lcore()
        << ": partial, records expired past the listing's place while it was taken)\n";
  return o.str();
}

std::string render_period(const Totals& now, const Totals& prev, double secs, double uptime) {
  std::ostringstream o;
  auto rate = [&](uint64_t a, uint64_t b) { return secs > 0 ? uint64_t(double(a - b) / secs + 0.5) : 0; };
  uint64_t opens = now.tcp.passive_opens + now.tcp.active_opens;
  uint64_t opens0 = prev.tcp.passive_opens + prev.tcp.active_opens;
  auto teardowns = [](const Totals& t) {
    return t.tcp.tw_entered + t.tcp.closed_passive + t.tcp.closed_reset + t.tcp.closed_abort +
           t.tcp.closed_timeout;
  };
  uint64_t drops = 0, drops0 = 0;
  for (size_t i = 1; i < wire::kDropCount; i++) {
    drops += now.sst.drops[i];
    drops0 += prev.sst.drops[i];
  }
  char head[96];
  std::snprintf(head, sizeof head, "---- tcpterm stats at %.0f s ----\n", uptime);
  o << head;
  o << render_states(now);
  line(o, "cps", rate(opens, opens0));
  line(o, "teardowns_per_s", rate(teardowns(now), teardowns(prev)));
  line(o, "rx_pps", rate(now.wc.rx_packets, prev.wc.rx_packets));
  line(o, "tx_pps", rate(now.wc.tx_packets, prev.wc.tx_packets));
  line(o, "drops", drops - drops0);
  return o.str();
}

}  // namespace tcpterm::app
