#include "bench.h"

#include <rte_cycles.h>
#include <rte_mempool.h>

#include <fstream>
#include <sstream>

namespace tcpterm::app {

namespace {
const tcp::TcpState kStates[] = {tcp::TcpState::SynSent,   tcp::TcpState::SynReceived, tcp::TcpState::Established,
                                 tcp::TcpState::FinWait1,  tcp::TcpState::FinWait2,    tcp::TcpState::CloseWait,
                                 tcp::TcpState::Closing,   tcp::TcpState::LastAck,     tcp::TcpState::TimeWait};

uint64_t lifecycles(const tcp::Stats& s) {
  return s.tw_entered + s.closed_passive + s.closed_reset + s.closed_abort + s.closed_timeout;
}
uint64_t mbufs_in_use(dp::Dataplane& dp) {
  uint64_t n = 0;
  for (rte_mempool* mp : dp.pools())
    if (mp) n += rte_mempool_in_use_count(mp);
  return n;
}
uint64_t drops(const Totals& t) {
  uint64_t d = 0;
  for (size_t i = 1; i < wire::kDropCount; i++) d += t.sst.drops[i];
  return d + t.wc.tx_dropped + t.wc.tx_nombuf;
}
uint64_t rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string k;
  uint64_t v = 0;
  while (f >> k)
    if (k == "VmRSS:") {
      f >> v;
      return v * 1024;
    }
  return 0;
}
}  // namespace

BenchReporter::BenchReporter(dp::Dataplane& dp, const std::string& path) : dp_(dp) {
  csv_ = std::fopen(path.c_str(), "w");
  if (!csv_) return;
  std::fprintf(csv_, "t");
  for (const char* role : {"term", "gen"})
    for (tcp::TcpState s : kStates) {
      std::string n(tcp::to_string(s));
      for (char& c : n)
        if (c == '-') c = '_';
      std::fprintf(csv_, ",%s_%s", role, n.c_str());
    }
  std::fprintf(csv_, ",cps,teardowns_per_s,client_closes_per_s,server_closes_per_s,time_wait_total,drops,mbufs_in_use\n");
  std::fflush(csv_);
}

BenchReporter::~BenchReporter() {
  if (csv_) std::fclose(csv_);
}

void BenchReporter::sample(double t, double dt) {
  Totals now = snapshot(dp_);
  if (!now.ok) return;
  if (!have_prev_) {
    prev_ = std::move(now);
    have_prev_ = true;
    return;
  }
  const dp::Request& term = *now.per_worker.front();
  const dp::Request& gen = *now.per_worker.back();
  const dp::Request& gprev = *prev_.per_worker.back();
  auto rate = [&](uint64_t a, uint64_t b) { return dt > 0 ? double(a - b) / dt : 0; };
  double cps = rate(gen.gen.gen_opened, gprev.gen.gen_opened);
  double td = rate(gen.gen.gen_completed, gprev.gen.gen_completed);
  double cc = rate(gen.gen.gen_client_closes, gprev.gen.gen_client_closes);
  double sc = rate(gen.gen.gen_server_closes, gprev.gen.gen_server_closes);
  uint64_t tw = now.time_wait;
  uint64_t dr = drops(now) - drops(prev_);
  uint64_t mb = mbufs_in_use(dp_);
  std::fprintf(csv_, "%.0f", t);
  for (const dp::Request* r : {&term, &gen})
    for (tcp::TcpState s : kStates) std::fprintf(csv_, ",%lld", (long long)r->tcp.states[size_t(s)]);
  std::fprintf(csv_, ",%.0f,%.0f,%.0f,%.0f,%llu,%llu,%llu\n", cps, td, cc, sc, (unsigned long long)tw,
               (unsigned long long)dr, (unsigned long long)mb);
  std::fflush(csv_);
  std::printf("t=%3.0fs cps=%9.0f teardowns/s=%9.0f (client-first %.0f, server-first %.0f) established=%lld "
              "time_wait=%llu drops=%llu\n",
              t, cps, td, cc, sc, (long long)(term.tcp.states[size_t(tcp::TcpState::Established)] +
                                            gen.tcp.states[size_t(tcp::TcpState::Established)]),
              (unsigned long long)tw, (unsigned long long)dr);
  std::fflush(stdout);
  prev_ = std::move(now);
}

std::string BenchReporter::summary(double seconds) {
  Totals t = snapshot(dp_);
  std::ostringstream o;
  if (!t.ok) return "benchmark summary unavailable: a worker did not answer\n";
  const dp::Request& term = *t.per_worker.front();
  const dp::Request& gen = *t.per_worker.back();
  const apps::GeneratorStats& g = gen.gen;
  uint64_t term_n = lifecycles(term.tcp);
  double ns_per_cycle = 1e9 / double(rte_get_tsc_hz());
  auto per = [](uint64_t a, uint64_t b) { return b ? double(a) / double(b) : 0.0; };
  const auto& sc = dp_.stack_config();
  double table_per_slot = 64.0 / 7.0;  // one 64-byte bucket per 7 entries at capacity
  char b[2048];
  std::snprintf(b, sizeof b,
                "==== teardown benchmark summary ====\n"
                "  seconds: %.1f\n"
                "  connections_opened: %llu\n"
                "  connections_completed: %llu\n"
                "  failed: %llu (refused %llu, reset %llu, timed out %llu, tuple busy %llu)\n"
                "  cps: %.0f\n"
                "  teardowns_per_s: %.0f\n"
                "  teardown_latency_p50_us: %.0f\n"
                "  teardown_latency_p99_us: %.0f\n"
                "  terminator_lifecycles: %llu\n"
                "  terminator_cycles_per_lifecycle: %.0f (busy), %.0f (all)\n"
                "  terminator_cycles_per_connection: %.0f (busy; a proxy: both of its flows)\n"
                "  generator_cycles_per_lifecycle: %.0f (busy), %.0f (all)\n"
                "  terminator_busy_percent: %.1f\n"
                "  time_wait_records: %llu (cap %llu per lcore, MSL %u ms)\n"
                "  bytes_per_time_wait_record: %zu (+%.1f table)\n"
                "  bytes_per_flow: %zu TCB+key+app, %d timer node, %.1f table = %.1f\n"
                "  mbufs_in_use: %llu\n"
                "  ns_per_cycle: %.3f\n",
                seconds, (unsigned long long)g.gen_opened, (unsigned long long)g.gen_completed,
                (unsigned long long)(g.gen_failed_connect + g.gen_reset + g.gen_timed_out),
                (unsigned long long)g.gen_failed_connect, (unsigned long long)g.gen_reset,
                (unsigned long long)g.gen_timed_out, (unsigned long long)g.gen_tuple_busy,
                seconds > 0 ? double(g.gen_opened) / seconds : 0, seconds > 0 ? double(g.gen_completed) / seconds : 0,
                g.percentile(50), g.percentile(99), (unsigned long long)term_n,
                per(term.wc.busy_cycles, term_n), per(term.wc.total_cycles, term_n),
                per(term.wc.busy_cycles, g.gen_completed),
                per(gen.wc.busy_cycles, g.gen_completed), per(gen.wc.total_cycles, g.gen_completed),
                term.wc.total_cycles ? 100.0 * double(term.wc.busy_cycles) / double(term.wc.total_cycles) : 0,
                (unsigned long long)t.time_wait, (unsigned long long)sc.max_time_wait, sc.tcp.msl_ms,
                sizeof(flow::TwRecord), table_per_slot, sizeof(stack::Stack::Flow), int(timer::Wheel32::kNodeBytes), table_per_slot,
                double(sizeof(stack::Stack::Flow)) + double(timer::Wheel32::kNodeBytes) + table_per_slot, (unsigned long long)mbufs_in_use(dp_),
                ns_per_cycle);
  o << b;
  // Where the terminator's cycles go, coarsely: frames per lifecycle and how
  // many arrive per busy poll (the fixed cost of a poll is shared by them).
  std::snprintf(b, sizeof b,
                "  terminator_frames_per_lifecycle: %.2f rx, %.2f tx; %.1f rx frames per busy poll\n",
                per(term.wc.rx_packets, term_n), per(term.wc.tx_packets, term_n),
                per(term.wc.rx_packets, term.wc.busy_iterations));
  o << b;
  uint64_t est = 0;
  for (const auto& r : t.per_worker) est += uint64_t(r->tcp.states[size_t(tcp::TcpState::Established)]);
  uint64_t rss = rss_bytes();
  std::snprintf(b, sizeof b,
                "  flows_now: %llu (established %llu) + time_wait %llu\n"
                "  configured_capacity_per_lcore: %u flows, %u TIME-WAIT records, %u buffer chunks\n"
                "  reserved_memory_bytes: %llu (all lcores' stacks, preallocated)\n"
                "  process_rss_bytes: %llu\n"
                "  tx_dropped_frames: %llu\n"
                "  syn_dropped_overload: %llu (overload entered %llu times)\n"
                "  orphans_reclaimed: %llu\n"
                "  limits_hit: syncookies_sent %llu, flow_table_full %llu, rcv_buf_full %llu, "
                "tw_recycled %llu, tw_cap_skipped %llu\n"
                "  ipv6_addresses_held: %llu (an IPv6 TIME-WAIT record whose peer shares no address: %zu bytes)\n",
                (unsigned long long)t.flows, (unsigned long long)est, (unsigned long long)t.time_wait,
                sc.max_flows, sc.max_time_wait, sc.chunks, (unsigned long long)t.memory,
                (unsigned long long)rss, (unsigned long long)t.wc.tx_dropped,
                (unsigned long long)t.wc.syn_dropped_overload, (unsigned long long)t.wc.overload_entered,
                (unsigned long long)t.tcp.orphans_reclaimed, (unsigned long long)t.sst.syncookies_sent,
                (unsigned long long)t.sst.flow_table_full, (unsigned long long)t.tcp.rcv_buf_full,
                (unsigned long long)t.tcp.tw_recycled, (unsigned long long)t.tcp.tw_cap_skipped,
                (unsigned long long)t.addr6,
                flow::kTimeWait6Bytes);
  o << b;
  return o.str();
}

}  // namespace tcpterm::app
