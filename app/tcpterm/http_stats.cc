#include "http_stats.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstring>
#include <sstream>
#include <vector>

#include "health.h"

namespace tcpterm::app {

namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ------------------------------------------------------------ /metrics ---
// Prometheus text exposition format 0.0.4: HELP and TYPE once per family,
// then its samples.
class Metrics {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    o_ << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  }
  void sample(std::string_view name, std::string_view labels, double v) {
    o_ << name;
    if (!labels.empty()) o_ << "{" << labels << "}";
    char b[32];
    std::snprintf(b, sizeof b, "%.17g", v);
    o_ << " " << b << "\n";
  }
  void sample(std::string_view name, std::string_view labels, uint64_t v) {
    o_ << name;
    if (!labels.empty()) o_ << "{" << labels << "}";
    o_ << " " << v << "\n";
  }
  std::string str() const { return o_.str(); }

 private:
  std::ostringstream o_;
};

std::string lbl(std::string_view k, std::string_view v) { return std::string(k) + "=\"" + std::string(v) + "\""; }
std::string lcore_lbl(unsigned l) { return lbl("lcore", std::to_string(l)); }

// Counter help texts: the counter's own name says what it counts; the
// family notes where it comes from.
void per_lcore_counters(Metrics& m, const StatsView& v, std::string_view prefix, std::string_view help,
                        auto get) {
  // Families in the order of the first worker's counters.
  std::vector<std::pair<std::string, std::vector<uint64_t>>> fam;
  for (size_t w = 0; w < v.t.per_worker.size(); w++) {
    size_t i = 0;
    get(*v.t.per_worker[w], [&](std::string_view n, uint64_t val) {
      if (w == 0) fam.push_back({std::string(n), {}});
      if (i < fam.size()) fam[i].second.push_back(val);
      i++;
    });
  }
  for (const auto& [n, vals] : fam) {
    // Prometheus reads a trailing "_us" as microseconds.
    std::string base = n == "not_for_us" ? "foreign_destination_frames" : n;
    std::string name = std::string(prefix) + base + "_total";
    m.family(name, "counter", std::string(help) + " (" + n + ")");
    for (size_t w = 0; w < vals.size() && w < v.lcores.size(); w++) m.sample(name, lcore_lbl(v.lcores[w]), vals[w]);
  }
}

// ----------------------------------------------------------- the page ---
constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tcpterm</title>
<meta name="viewport" content="width=device-width">
<style>
body{font:14px system-ui,sans-serif;margin:16px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:18px 0 6px}
.sub{color:#666;margin-bottom:12px}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
#chart{background:#fff;border:1px solid #ddd}
.grid{display:flex;flex-wrap:wrap;gap:18px}.up{color:#080}.down{color:#b00}.drain{color:#a60}
#status{color:#b00}#health.ok{color:#080}#health.fail{color:#b00;font-weight:bold}
</style></head><body>
<h1>tcpterm</h1><div class="sub">live from <code>/stats.json</code>, every second &middot; <span id="updated">waiting</span> <span id="status"></span> &middot; <span id="health">health: waiting</span></div>
<canvas id="chart" width="960" height="300"></canvas>
<div class="grid">
<div><h2>Connections per state</h2><table id="states"><tr><th>state</th><th>now</th></tr></table></div>
<div><h2>Rates (per second)</h2><table id="rates"><tr><th>rate</th><th>/s</th></tr></table></div>
<div><h2>Drops by reason</h2><table id="drops"><tr><th>reason</th><th>total</th></tr></table></div>
</div>
<h2>Lcores</h2><table id="lcores"><tr><th>lcore</th><th>busy %</th><th>flows</th><th>TIME-WAIT</th><th>rx packets</th><th>tx packets</th><th>chunks</th></tr></table>
<div id="pools" hidden><h2>Backends</h2><table id="backends"><tr><th>pool</th><th>backend</th><th>state</th><th>weight</th><th>active</th><th>connects ok</th><th>failed</th><th>bytes in</th><th>bytes out</th></tr></table></div>
<script>
"use strict";
const STATES=["SYN-SENT","SYN-RECEIVED","ESTABLISHED","FIN-WAIT-1","FIN-WAIT-2","CLOSE-WAIT","CLOSING","LAST-ACK","TIME-WAIT"];
const COLORS=["#999","#c9f","#1a7","#e80","#fb0","#09c","#c00","#a40","#33c"];
const hist=[];const N=300;
function rows(id,list){const t=document.getElementById(id);while(t.rows.length>1)t.deleteRow(1);
 for(const r of list){const tr=t.insertRow();r.cells.forEach((c,i)=>{const td=tr.insertCell();td.textContent=c;
 if(r.ids&&r.ids[i])td.id=r.ids[i];if(r.cls&&r.cls[i])td.className=r.cls[i];});}}
function fmt(x){return x>=1e6?(x/1e6).toFixed(2)+"M":x>=1e4?(x/1e3).toFixed(1)+"k":String(Math.round(x));}
function draw(){const c=document.getElementById("chart"),g=c.getContext("2d"),W=c.width,H=c.height,L=60,B=20;
 g.clearRect(0,0,W,H);let max=1;for(const h of hist)for(const s of STATES)max=Math.max(max,h.states[s]||0);
 const top=Math.pow(10,Math.ceil(Math.log10(max+1)));const y=v=>H-B-(H-B-10)*Math.log10(1+v)/Math.log10(1+top);
 g.strokeStyle="#eee";g.fillStyle="#666";g.font="11px sans-serif";
 for(let d=1;d<=top;d*=10){g.beginPath();g.moveTo(L,y(d));g.lineTo(W-120,y(d));g.stroke();g.fillText(fmt(d),4,y(d)+4);}
 const x=i=>L+(W-120-L)*i/(N-1);
 STATES.forEach((s,k)=>{g.strokeStyle=COLORS[k];g.lineWidth=s=="TIME-WAIT"||s=="ESTABLISHED"?2:1;g.beginPath();
  hist.forEach((h,i)=>{const p=[x(N-hist.length+i),y(h.states[s]||0)];i?g.lineTo(...p):g.moveTo(...p);});g.stroke();
  g.fillStyle=COLORS[k];g.fillText(s,W-112,14+k*14);});
 g.fillStyle="#666";g.fillText("connections per state (log scale), last "+N+" s",L,12);}
let first=true;
async function tick(){try{const r=await fetch(first?"stats.json?history=1":"stats.json",{cache:"no-store"});const d=await r.json();
 if(first&&d.history){for(const h of d.history.slice(-N)){const st={};STATES.forEach((s,i)=>st[s]=h[i+1]);hist.push({states:st});}}
 first=false;
 hist.push(d);if(hist.length>N)hist.shift();
 rows("states",STATES.concat(["LISTEN"]).map(s=>({cells:[s,d.states[s]],ids:["","state-"+s]})));
 rows("rates",Object.entries(d.rates).map(([k,v])=>({cells:[k,fmt(v)],ids:["","rate-"+k]})));
 rows("drops",Object.entries(d.drops).filter(([k,v])=>v>0).map(([k,v])=>({cells:[k,v],ids:["","drop-"+k]})));
 rows("lcores",d.lcores.map(l=>({cells:[l.lcore,l.busy_percent.toFixed(1),l.flows,l.time_wait,l.rx_packets,l.tx_packets,l.chunks_in_use]})));
 document.getElementById("pools").hidden=!d.backends.length;
 rows("backends",d.backends.map(b=>({cells:[b.pool,b.backend,b.state,b.weight,b.active,b.connects_ok,b.connects_failed,b.bytes_in,b.bytes_out],cls:["","",b.state]})));
 const hl=document.getElementById("health");
 hl.className=d.health.ok?"ok":"fail";
 hl.textContent=d.health.ok?"healthy":"unhealthy: "+d.health.checks.filter(c=>!c.ok).map(c=>c.name+" ("+c.detail+")").join("; ");
 document.getElementById("updated").textContent="updated "+new Date().toLocaleTimeString();
 document.getElementById("status").textContent="";draw();
}catch(e){document.getElementById("status").textContent="no answer: "+e;}}
tick();setInterval(tick,1000);
</script></body></html>
)HTML";

// ------------------------------------------------------------ requests ---
std::string response(int code, std::string_view reason, std::string_view type, std::string_view body,
                     bool head_only = false) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + std::string(reason) +
                  "\r\nContent-Type: " + std::string(type) + "\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
  if (!head_only) r += body;
  return r;
}
std::string error(int code, std::string_view reason) {
  return response(code, reason, "text/plain; charset=utf-8", std::to_string(code) + " " + std::string(reason) + "\n");
}

}  // namespace

// -------------------------------------------------------------- views ---
StatsView take_view(dp::Dataplane& dp) {
  StatsView v;
  v.running = dp.running();
  v.t = snapshot(dp);
  v.pools_configured = !dp.options().pools.empty();
  if (v.pools_configured) v.lb = lb_snapshot(dp);
  for (const auto& w : dp.workers()) v.lcores.push_back(w->lcore());
  uint16_t p;
  RTE_ETH_FOREACH_DEV(p) {
    rte_eth_stats s{};
    rte_eth_stats_get(p, &s);
    rte_eth_link link{};
    rte_eth_link_get_nowait(p, &link);
    v.ports.push_back({p, s.ipackets, s.ibytes, s.opackets, s.obytes, s.imissed, s.ierrors, s.oerrors, s.rx_nombuf,
                       link.link_status == RTE_ETH_LINK_UP});
  }
  for (rte_mempool* mp : dp.pools())
    if (mp) v.mbufs_in_use += rte_mempool_in_use_count(mp);
  v.taken_at = seconds_now();
  return v;
}

std::string render_metrics(const StatsView& v) {
  Metrics m;
  m.family("tcpterm_up", "gauge", "1 when every worker answered this scrape");
  m.sample("tcpterm_up", "", uint64_t(v.t.ok ? 1 : 0));
  m.family("tcpterm_healthy", "gauge", "1 when /healthz answers 200 (workers, links, pools, not drained)");
  m.sample("tcpterm_healthy", "", uint64_t(evaluate_health(v).ok ? 1 : 0));
  m.family("tcpterm_port_link_up", "gauge", "1 when the port's link is up");
  for (const auto& port : v.ports) m.sample("tcpterm_port_link_up", lbl("port", std::to_string(port.id)), uint64_t(port.link_up));
  if (!v.t.ok) return m.str();
  const auto& ws = v.t.per_worker;
  m.family("tcpterm_tcp_connections", "gauge",
           "Connections per RFC 9293 state and lcore (LISTEN counts listeners; TIME-WAIT counts records)");
  for (size_t w = 0; w < ws.size() && w < v.lcores.size(); w++)
    for (size_t s = size_t(tcp::TcpState::Listen); s < tcp::kStateCount; s++)
      m.sample("tcpterm_tcp_connections",
               lbl("state", tcp::to_string(tcp::TcpState(s))) + "," + lcore_lbl(v.lcores[w]),
               uint64_t(std::max<int64_t>(0, ws[w]->tcp.states[s])));
  m.family("tcpterm_tcp_state_entered_total", "counter", "Entries into each RFC 9293 state");
  for (size_t w = 0; w < ws.size() && w < v.lcores.size(); w++)
    for (size_t s = size_t(tcp::TcpState::SynSent); s < tcp::kStateCount; s++)
      m.sample("tcpterm_tcp_state_entered_total",
               lbl("state", tcp::to_string(tcp::TcpState(s))) + "," + lcore_lbl(v.lcores[w]), ws[w]->tcp.entered[s]);
  per_lcore_counters(m, v, "tcpterm_tcp_", "TCP event counter",
                     [](const dp::Request& r, auto f) { r.tcp.for_each_counter(f); });
  per_lcore_counters(m, v, "tcpterm_stack_", "Stack counter",
                     [](const dp::Request& r, auto f) { r.sst.for_each_counter(f); });
  m.family("tcpterm_drops_total", "counter", "Malformed or unwanted input dropped, by reason");
  for (size_t w = 0; w < ws.size() && w < v.lcores.size(); w++) {
    for (size_t i = 1; i < wire::kDropCount; i++)
      m.sample("tcpterm_drops_total", lbl("reason", wire::to_string(wire::Drop(i))) + "," + lcore_lbl(v.lcores[w]),
               ws[w]->sst.drops[i]);
    m.sample("tcpterm_drops_total", lbl("reason", "not_for_us") + "," + lcore_lbl(v.lcores[w]), ws[w]->wc.not_for_us);
  }
  per_lcore_counters(m, v, "tcpterm_lcore_", "Worker counter",
                     [](const dp::Request& r, auto f) { r.wc.for_each(f); });
  m.family("tcpterm_lcore_busy_ratio", "gauge", "Share of the lcore's cycles spent on bursts that found work, since start");
  for (size_t w = 0; w < ws.size() && w < v.lcores.size(); w++)
    m.sample("tcpterm_lcore_busy_ratio", lcore_lbl(v.lcores[w]),
             ws[w]->wc.total_cycles ? double(ws[w]->wc.busy_cycles) / double(ws[w]->wc.total_cycles) : 0.0);
  m.family("tcpterm_lcore_longest_poll_seconds", "gauge",
           "The lcore's longest poll since start or clear tcp stats: how long its packets may have waited");
  for (size_t w = 0; w < ws.size() && w < v.lcores.size(); w++)
    m.sample("tcpterm_lcore_longest_poll_seconds", lcore_lbl(v.lcores[w]), double(ws[w]->longest_poll_us) / 1e6);
  struct G {
    const char* name;
    const char* help;
    uint64_t (*get)(const dp::Request&);
  };
  static const G gauges[] = {
      {"tcpterm_flows", "Full TCBs in use", [](const dp::Request& r) { return uint64_t(r.flows); }},
      {"tcpterm_time_wait_records", "TIME-WAIT records held", [](const dp::Request& r) { return uint64_t(r.time_wait); }},
      {"tcpterm_time_wait_records_capacity", "TIME-WAIT records the lcore may hold",
       [](const dp::Request& r) { return uint64_t(r.time_wait_cap); }},
      {"tcpterm_buffer_chunks_in_use", "2 KiB buffer chunks holding bytes", [](const dp::Request& r) { return uint64_t(r.chunks_in_use); }},
      {"tcpterm_memory_reserved_bytes", "Memory reserved by the lcore's stack (lazily mapped)",
       [](const dp::Request& r) { return uint64_t(r.memory); }},
      {"tcpterm_nexthops", "Next hops held by flows", [](const dp::Request& r) { return uint64_t(r.nexthops); }},
  };
  for (const G& g : gauges) {
    m.family(g.name, "gauge", g.help);
    for (size_t w = 0; w < ws.size() && w < v.lcores.size(); w++) m.sample(g.name, lcore_lbl(v.lcores[w]), g.get(*ws[w]));
  }
  m.family("tcpterm_mbufs_in_use", "gauge", "Packet buffers taken from the mbuf pools");
  m.sample("tcpterm_mbufs_in_use", "", v.mbufs_in_use);
  struct P {
    const char* name;
    const char* help;
    uint64_t StatsView::Port::*field;
  };
  static const P pc[] = {
      {"tcpterm_port_received_packets_total", "Packets received by the port", &StatsView::Port::ipackets},
      {"tcpterm_port_received_bytes_total", "Bytes received by the port", &StatsView::Port::ibytes},
      {"tcpterm_port_transmitted_packets_total", "Packets sent by the port", &StatsView::Port::opackets},
      {"tcpterm_port_transmitted_bytes_total", "Bytes sent by the port", &StatsView::Port::obytes},
      {"tcpterm_port_missed_packets_total", "Packets the port dropped for lack of room (imissed)", &StatsView::Port::imissed},
      {"tcpterm_port_receive_errors_total", "Erroneous packets received", &StatsView::Port::ierrors},
      {"tcpterm_port_transmit_errors_total", "Packets the port failed to send", &StatsView::Port::oerrors},
      {"tcpterm_port_receive_nombuf_total", "Receive failures for lack of mbufs", &StatsView::Port::rx_nombuf},
  };
  for (const P& p : pc) {
    m.family(p.name, "counter", p.help);
    for (const auto& port : v.ports) m.sample(p.name, lbl("port", std::to_string(port.id)), port.*(p.field));
  }
  if (v.lb.ok && !v.lb.backends.empty()) {
    auto bl = [](const lb::BackendSnapshot& b) {
      return lbl("pool", b.pool) + "," + lbl("backend", b.endpoint);
    };
    m.family("tcpterm_backend_up", "gauge", "1 when the backend takes new flows on every lcore (up), 0 when down or draining");
    for (const auto& b : v.lb.backends) m.sample("tcpterm_backend_up", bl(b), uint64_t(b.state == lb::BackendState::Up));
    m.family("tcpterm_backend_state", "gauge", "1 for the backend's state word (up, down, drain)");
    for (const auto& b : v.lb.backends)
      for (auto s : {lb::BackendState::Up, lb::BackendState::Down, lb::BackendState::Drain})
        m.sample("tcpterm_backend_state", bl(b) + "," + lbl("state", lb::to_string(s)), uint64_t(b.state == s));
    m.family("tcpterm_backend_weight", "gauge", "The backend's weight");
    for (const auto& b : v.lb.backends) m.sample("tcpterm_backend_weight", bl(b), uint64_t(b.weight));
    m.family("tcpterm_backend_active_flows", "gauge", "Proxied connections to the backend now");
    for (const auto& b : v.lb.backends) m.sample("tcpterm_backend_active_flows", bl(b), b.st.active);
    m.family("tcpterm_backend_connects_total", "counter", "Connections opened to the backend, by result");
    for (const auto& b : v.lb.backends) {
      m.sample("tcpterm_backend_connects_total", bl(b) + ",result=\"ok\"", b.st.connects_ok);
      m.sample("tcpterm_backend_connects_total", bl(b) + ",result=\"refused\"", b.st.connect_refused);
      m.sample("tcpterm_backend_connects_total", bl(b) + ",result=\"timeout\"", b.st.connect_timeouts);
    }
    m.family("tcpterm_backend_received_bytes_total", "counter", "Bytes from the backend, carried to clients");
    for (const auto& b : v.lb.backends) m.sample("tcpterm_backend_received_bytes_total", bl(b), b.st.bytes_in);
    m.family("tcpterm_backend_sent_bytes_total", "counter", "Bytes from clients, carried to the backend");
    for (const auto& b : v.lb.backends) m.sample("tcpterm_backend_sent_bytes_total", bl(b), b.st.bytes_out);
    m.family("tcpterm_backend_checks_total", "counter", "Health checks of the backend, by result");
    for (const auto& b : v.lb.backends) {
      m.sample("tcpterm_backend_checks_total", bl(b) + ",result=\"ok\"", b.st.checks_ok);
      m.sample("tcpterm_backend_checks_total", bl(b) + ",result=\"failed\"", b.st.checks_failed);
    }
    std::vector<std::pair<std::string, std::vector<std::pair<std::string, uint64_t>>>> pf;
    for (const auto& p : v.lb.pools) {
      size_t i = 0;
      p.c.for_each_counter([&](std::string_view n, uint64_t val) {
        if (pf.size() <= i) pf.push_back({std::string(n), {}});
        pf[i++].second.push_back({p.name, val});
      });
    }
    for (const auto& [n, vals] : pf) {
      std::string name = "tcpterm_pool_" + n + "_total";
      m.family(name, "counter", "Pool counter (" + n + ")");
      for (const auto& [pool, val] : vals) m.sample(name, lbl("pool", pool), val);
    }
  }
  return m.str();
}

std::string render_stats_json(const StatsView& v, const StatsView* prev, const std::deque<StateSample>* history) {
  std::ostringstream o;
  o << "{\"ok\":" << (v.t.ok ? "true" : "false");
  o << ",\"states\":{";
  for (size_t s = size_t(tcp::TcpState::Listen); s < tcp::kStateCount; s++)
    o << (s > size_t(tcp::TcpState::Listen) ? "," : "") << "\"" << tcp::to_string(tcp::TcpState(s))
      << "\":" << (v.t.ok ? v.t.tcp.states[s] : 0);
  o << "}";
  // Rates since the previous snapshot.
  auto opened = [](const Totals& t) { return t.tcp.passive_opens + t.tcp.active_opens; };
  auto closed = [](const Totals& t) {
    return t.tcp.tw_entered + t.tcp.closed_passive + t.tcp.closed_reset + t.tcp.closed_abort + t.tcp.closed_timeout;
  };
  double dt = prev && prev->t.ok && v.t.ok ? v.taken_at - prev->taken_at : 0;
  auto rate = [&](uint64_t now, uint64_t before) { return dt > 0 && now >= before ? double(now - before) / dt : 0.0; };
  o << ",\"rates\":{";
  if (dt > 0) {
    o << "\"connections_opened\":" << rate(opened(v.t), opened(prev->t))
      << ",\"connections_closed\":" << rate(closed(v.t), closed(prev->t))
      << ",\"time_wait_entered\":" << rate(v.t.tcp.tw_entered, prev->t.tcp.tw_entered)
      << ",\"time_wait_expired\":" << rate(v.t.tcp.tw_expired, prev->t.tcp.tw_expired)
      << ",\"segments_in\":" << rate(v.t.tcp.segs_in, prev->t.tcp.segs_in)
      << ",\"segments_out\":" << rate(v.t.tcp.segs_out, prev->t.tcp.segs_out)
      << ",\"retransmits\":" << rate(v.t.tcp.retransmits, prev->t.tcp.retransmits);
  }
  o << "}";
  o << ",\"counters\":{";
  bool first = true;
  auto kv = [&](std::string_view n, uint64_t val) {
    o << (first ? "" : ",") << "\"" << n << "\":" << val;
    first = false;
  };
  if (v.t.ok) {
    v.t.tcp.for_each_counter(kv);
    v.t.sst.for_each_counter(kv);
  }
  o << "},\"drops\":{";
  first = true;
  if (v.t.ok) {
    for (size_t i = 1; i < wire::kDropCount; i++) kv(wire::to_string(wire::Drop(i)), v.t.sst.drops[i]);
    kv("not_for_us", v.t.wc.not_for_us);
  }
  o << "},\"lcores\":[";
  for (size_t w = 0; v.t.ok && w < v.t.per_worker.size() && w < v.lcores.size(); w++) {
    const auto& r = *v.t.per_worker[w];
    double busy = r.wc.total_cycles ? 100.0 * double(r.wc.busy_cycles) / double(r.wc.total_cycles) : 0;
    o << (w ? "," : "") << "{\"lcore\":" << v.lcores[w] << ",\"busy_percent\":" << busy << ",\"flows\":" << r.flows
      << ",\"time_wait\":" << r.time_wait << ",\"rx_packets\":" << r.wc.rx_packets << ",\"tx_packets\":"
      << r.wc.tx_packets << ",\"chunks_in_use\":" << r.chunks_in_use << "}";
  }
  o << "],\"backends\":[";
  for (size_t i = 0; v.lb.ok && i < v.lb.backends.size(); i++) {
    const auto& b = v.lb.backends[i];
    o << (i ? "," : "") << "{\"pool\":\"" << b.pool << "\",\"backend\":\"" << b.endpoint
      << "\",\"state\":\"" << lb::to_string(b.state) << "\",\"weight\":" << b.weight
      << ",\"active\":" << b.st.active << ",\"connects_ok\":" << b.st.connects_ok
      << ",\"connects_failed\":" << b.st.connects_failed << ",\"bytes_in\":" << b.st.bytes_in
      << ",\"bytes_out\":" << b.st.bytes_out << "}";
  }
  o << "],\"mbufs_in_use\":" << v.mbufs_in_use;
  // The /healthz verdict (health.h), for the page's header.
  auto str = [&](std::string_view t) {
    o << '"';
    for (char c : t) {
      if (c == '"' || c == '\\') o << '\\';
      o << c;
    }
    o << '"';
  };
  Health h = evaluate_health(v);
  o << ",\"health\":{\"ok\":" << (h.ok ? "true" : "false") << ",\"checks\":[";
  for (size_t i = 0; i < h.checks.size(); i++) {
    o << (i ? "," : "") << "{\"name\":";
    str(h.checks[i].name);
    o << ",\"ok\":" << (h.checks[i].ok ? "true" : "false") << ",\"detail\":";
    str(h.checks[i].detail);
    o << "}";
  }
  o << "]}";
  if (history) {
    // [[seconds ago, count per state in STATES order (SYN-SENT .. TIME-WAIT)], ...]
    o << ",\"history\":[";
    bool f = true;
    for (const StateSample& h : *history) {
      o << (f ? "" : ",") << "[" << std::max(0.0, v.taken_at - h.t);
      for (size_t s = size_t(tcp::TcpState::SynSent); s < tcp::kStateCount; s++) o << "," << h.states[s];
      o << "]";
      f = false;
    }
    o << "]";
  }
  o << "}\n";
  return o.str();
}

std::string_view stats_page() { return kPage; }

// ------------------------------------------------------------- server ---
const StatsView& StatsServer::view() {
  double now = seconds_now();
  if (!have_cur_ || now - cur_.taken_at >= kMinIntervalMs / 1000.0) {
    if (have_cur_) {
      prev_ = std::move(cur_);
      have_prev_ = true;
    }
    cur_ = take_view(dp_);
    have_cur_ = true;
  }
  return cur_;
}

void StatsServer::sample() {
  const StatsView& v = view();
  if (!v.t.ok) return;
  StateSample h;
  h.t = v.taken_at;
  h.states = v.t.tcp.states;
  if (!history_.empty() && history_.back().t == h.t) return;  // the same snapshot
  history_.push_back(h);
  if (history_.size() > kHistory) history_.pop_front();
}

namespace {
// The endpoint's own limits at work (a scrape of a scrape endpoint: seen
// even when the workers did not answer).
std::string render_endpoint_metrics(const StatsServer::Counters& c) {
  Metrics m;
  m.family("tcpterm_http_stats_connections_total", "counter", "Connections the --http-stats endpoint accepted");
  m.sample("tcpterm_http_stats_connections_total", "", c.accepted);
  m.family("tcpterm_http_stats_evicted_total", "counter",
           "Older connections closed to serve a newer one (per_source: more than 8 from one address; full: 64 in all)");
  m.sample("tcpterm_http_stats_evicted_total", lbl("reason", "per_source"), c.evicted_per_source);
  m.sample("tcpterm_http_stats_evicted_total", lbl("reason", "full"), c.evicted_full);
  m.family("tcpterm_http_stats_timeouts_total", "counter", "Connections closed for sending no request (or not taking the answer) in 5 s");
  m.sample("tcpterm_http_stats_timeouts_total", "", c.timed_out);
  m.family("tcpterm_http_stats_too_large_total", "counter", "Requests answered 431 (a head over 8 KiB)");
  m.sample("tcpterm_http_stats_too_large_total", "", c.too_large);
  return m.str();
}
}  // namespace

std::string StatsServer::answer(std::string_view head) {
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' '), sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (eol == std::string_view::npos || sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0)
    return error(400, "Bad Request");
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) return error(405, "Method Not Allowed");
  bool with_history = target.find("history=1") != std::string_view::npos;
  target = target.substr(0, target.find('?'));
  if (target == "/metrics")
    return response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", render_metrics(view()) + render_endpoint_metrics(c_),
                    head_only);
  if (target == "/stats.json") {
    const StatsView& v = view();
    return response(200, "OK", "application/json",
                    render_stats_json(v, have_prev_ ? &prev_ : nullptr, with_history ? &history_ : nullptr),
                    head_only);
  }
  if (target == "/healthz") {
    Health h = evaluate_health(view());
    return h.ok ? response(200, "OK", "text/plain; charset=utf-8", render_health(h), head_only)
                : response(503, "Service Unavailable", "text/plain; charset=utf-8", render_health(h), head_only);
  }
  if (target == "/" || target == "/index.html")
    return response(200, "OK", "text/html; charset=utf-8", stats_page(), head_only);
  return error(404, "Not Found");
}

bool StatsServer::start(uint32_t addr, uint16_t port, std::string& err) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) {
    err = std::string("--http-stats: socket: ") + std::strerror(errno);
    return false;
  }
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(addr);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(listen_fd_, 64) != 0) {
    err = "--http-stats: cannot listen on " + wire::ip_to_string(addr) + ":" + std::to_string(port) + ": " +
          std::strerror(errno);
    close(listen_fd_);
    listen_fd_ = -1;
    return false;
  }
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  thread_ = std::thread([this] { loop(); });
  // On the main lcore's CPUs, beside the CLI: never on a worker's core.
  rte_cpuset_t cpus = rte_lcore_cpuset(rte_get_main_lcore());
  pthread_setaffinity_np(thread_.native_handle(), sizeof cpus, &cpus);
  pthread_setname_np(thread_.native_handle(), "tcpterm-stats");
  spdlog::info("stats: http://{}:{}/ (/metrics, /stats.json, /healthz)", wire::ip_to_string(addr), port);
  return true;
}

void StatsServer::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof one) < 0) {
  }
  thread_.join();
  close(listen_fd_);
  close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
}

void StatsServer::loop() {
  struct Conn {
    int fd;
    uint32_t src;  // the peer's address (the per-source limit)
    std::string in, out;
    size_t sent = 0;
    double deadline;
    bool lingering = false;  // answered; reading what the client still sends until it closes
  };
  std::vector<Conn> conns;  // in accept order
  // The first match is the oldest.  One still
  // waiting for its request goes first; one being answered (or lingering
  // after its answer) only when every match is.
  auto evict_oldest = [&](auto&& which) {
    Conn* victim = nullptr;
    for (Conn& c : conns) {
      if (c.fd < 0 || !which(c)) continue;
      if (c.out.empty()) {
        victim = &c;
        break;
      }
      if (!victim) victim = &c;
    }
    if (victim) {
      close(victim->fd);
      victim->fd = -1;
    }
  };
  std::vector<pollfd> pfd;
  while (!stop_.load()) {
    pfd.clear();
    pfd.push_back({wake_fd_, POLLIN, 0});
    pfd.push_back({listen_fd_, POLLIN, 0});
    for (const Conn& c : conns) pfd.push_back({c.fd, short(c.out.empty() || c.lingering ? POLLIN : POLLOUT), 0});
    if (poll(pfd.data(), pfd.size(), 250) < 0 && errno != EINTR) break;
    double now = seconds_now();
    if (now - last_sample_ >= 1.0) {
      last_sample_ = now;
      sample();
    }
    if (pfd[1].revents & POLLIN) {
      for (;;) {
        sockaddr_in peer{};
        socklen_t plen = sizeof peer;
        int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        uint32_t src = ntohl(peer.sin_addr.s_addr);
        size_t live = 0, same = 0;
        for (const Conn& c : conns) {
          live += c.fd >= 0;
          same += c.fd >= 0 && c.src == src;
        }
        // Full: the newcomer is served and the oldest goes (held-open idle
        // connections cannot lock a probe out; refusing the newcomer did).
        if (same >= kMaxPerSource) {
          evict_oldest([&](const Conn& c) { return c.src == src; });
          c_.evicted_per_source++;
        } else if (live >= kMaxConns) {
          evict_oldest([](const Conn&) { return true; });
          c_.evicted_full++;
        }
        c_.accepted++;
        conns.push_back({fd, src, {}, {}, 0, now + kTimeoutMs / 1000.0});
      }
    }
    // Connections accepted just now have no poll entry yet: only their
    // deadline applies this round.
    const size_t polled = pfd.size() - 2;
    for (size_t i = 0; i < conns.size(); i++) {
      Conn& c = conns[i];
      if (c.fd < 0) continue;  // evicted above
      static const pollfd kNone{-1, 0, 0};
      const pollfd& p = i < polled ? pfd[i + 2] : kNone;
      bool done = false;
      if (c.lingering && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
        // After the answer: discard what the client still sends (closing
        // with unread bytes would reset the connection and lose the answer).
        char buf[4096];
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) done = true;
      } else if (c.out.empty() && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
        char buf[4096];
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n <= 0) {
          done = !(n < 0 && (errno == EAGAIN || errno == EINTR));
        } else {
          c.in.append(buf, size_t(n));
          size_t end = c.in.find("\r\n\r\n");
          if (end != std::string::npos) c.out = answer(std::string_view(c.in).substr(0, end + 2));
          else if (c.in.size() > kMaxRequest) {
            c.out = error(431, "Request Header Fields Too Large");
            c_.too_large++;
          }
          if (!c.out.empty()) c.deadline = now + kTimeoutMs / 1000.0;  // time to take the answer
        }
      } else if (!c.lingering && !c.out.empty() && (p.revents & (POLLOUT | POLLHUP | POLLERR))) {
        ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
        if (n > 0) c.sent += size_t(n);
        else if (!(n < 0 && (errno == EAGAIN || errno == EINTR))) done = true;
        if (c.sent == c.out.size()) {
          shutdown(c.fd, SHUT_WR);
          c.lingering = true;
          c.deadline = std::min(c.deadline, now + 1.0);
        }
      }
      if (!done && now >= c.deadline) {  // slow or silent: dropped
        done = true;
        if (!c.lingering) c_.timed_out++;
      }
      if (done) {
        close(c.fd);
        c.fd = -1;
      }
    }
    std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
  }
  for (Conn& c : conns) close(c.fd);
}

}  // namespace tcpterm::app
