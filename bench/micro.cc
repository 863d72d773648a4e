// Micro-benchmarks, one run, side by side on the same data:
//   timer wheel (arm, cancel, expire) vs DPDK rte_timer: N timers due within
//   200 ms; half cancelled; after 200 ms one advance()/rte_timer_manage()
//   expires the rest (per-timer cost of expiry, cascades included)
//   flow table (insert, lookup hit / miss, burst lookup, erase) vs DPDK rte_hash
// Both tables get the same precomputed 32-bit hashes (the *_with_hash calls),
// so the comparison is of the structures, not of hash functions.
//
//   build/bench/micro [EAL options] -- [N ...]     (default N: 1000000 10000000)
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_hash.h>
#include <rte_lcore.h>
#include <rte_timer.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "flow/key.h"
#include "flow/table.h"
#include "timer/wheel.h"

using tcpterm::flow::FlowKey4;
using tcpterm::flow::FlowTable;
using tcpterm::timer::Wheel;

namespace {

double ns_per(uint64_t cycles, uint64_t ops) {
  return ops ? double(cycles) * 1e9 / double(rte_get_tsc_hz()) / double(ops) : 0;
}

void row(const char* what, uint64_t n, const char* op, double ours, double theirs) {
  std::printf("%-12s %10" PRIu64 "  %-18s %10.1f %10.1f %8.2f\n", what, n, op, ours, theirs,
              ours > 0 ? theirs / ours : 0);
  std::fflush(stdout);
}

// ------------------------------------------------------------- timers ---
uint64_t g_fired = 0;
void rte_cb(rte_timer*, void*) { g_fired++; }

void bench_timers(uint64_t n) {
  std::mt19937_64 rng(42);
  const uint64_t hz = rte_get_tsc_hz();
  const uint64_t span_ms = 200;  // every deadline within 200 ms of arming
  std::vector<uint32_t> delay_ms(n);
  for (auto& d : delay_ms) d = uint32_t(rng() % span_ms) + 1;

  // --- ours: time is milliseconds from the TSC, as in the lcore loop.
  uint64_t ours_arm, ours_cancel, ours_expire;
  {
    auto now_ms = [&] { return rte_rdtsc() / (hz / 1000); };
    Wheel w(uint32_t(n), now_ms());
    uint64_t t0 = rte_rdtsc();
    uint64_t base = now_ms();
    for (uint64_t i = 0; i < n; i++) w.arm(uint32_t(i), base + delay_ms[i]);
    ours_arm = rte_rdtsc() - t0;
    t0 = rte_rdtsc();
    for (uint64_t i = 0; i < n; i += 2) w.cancel(uint32_t(i));
    ours_cancel = rte_rdtsc() - t0;
    // Let every deadline pass, then expire all in one call (cascades included).
    rte_delay_ms(span_ms + 2);
    uint64_t fired = 0;
    uint64_t a = rte_rdtsc();
    w.advance(now_ms(), [&](Wheel::Id) { fired++; });
    ours_expire = rte_rdtsc() - a;
    if (fired != n / 2) std::fprintf(stderr, "wheel: fired %" PRIu64 "\n", fired);
  }
  // --- rte_timer: ticks are TSC cycles.
  uint64_t dpdk_arm, dpdk_cancel, dpdk_expire;
  {
    std::vector<rte_timer> tims(n);
    for (auto& t : tims) rte_timer_init(&t);
    unsigned lc = rte_lcore_id();
    uint64_t t0 = rte_rdtsc();
    for (uint64_t i = 0; i < n; i++)
      rte_timer_reset(&tims[i], delay_ms[i] * (hz / 1000), SINGLE, lc, rte_cb, nullptr);
    dpdk_arm = rte_rdtsc() - t0;
    t0 = rte_rdtsc();
    for (uint64_t i = 0; i < n; i += 2) rte_timer_stop(&tims[i]);
    dpdk_cancel = rte_rdtsc() - t0;
    g_fired = 0;
    rte_delay_ms(span_ms + 2);
    uint64_t a = rte_rdtsc();
    rte_timer_manage();
    dpdk_expire = rte_rdtsc() - a;
    if (g_fired != n / 2) std::fprintf(stderr, "rte_timer: fired %" PRIu64 "\n", g_fired);
  }
  row("timer", n, "arm", ns_per(ours_arm, n), ns_per(dpdk_arm, n));
  row("timer", n, "cancel", ns_per(ours_cancel, n / 2), ns_per(dpdk_cancel, n / 2));
  row("timer", n, "expire", ns_per(ours_expire, n / 2), ns_per(dpdk_expire, n / 2));
}

// --------------------------------------------------------- flow table ---
void bench_tables(uint64_t n) {
  std::mt19937 rng(7);
  std::vector<FlowKey4> keys(n), miss(n);
  std::vector<uint32_t> h(n), hm(n);
  for (uint64_t i = 0; i < n; i++) {
    // Client addresses from 198.18.0.0/15, ports from the ephemeral range.
    keys[i] = FlowKey4{0xC6120002, 0xC6120000 | uint32_t(i >> 15), 80, uint16_t(32768 + (i & 0x7fff))};
    miss[i] = FlowKey4{0xC6120002, 0xC7120000 | uint32_t(rng()), 443, uint16_t(rng())};
    h[i] = tcpterm::flow::hash_key(keys[i]);
    hm[i] = tcpterm::flow::hash_key(miss[i]);
  }
  std::vector<uint32_t> order(n);
  for (uint64_t i = 0; i < n; i++) order[i] = uint32_t(i);
  std::shuffle(order.begin(), order.end(), rng);
  double o_ins, o_hit, o_miss, o_burst, o_del, d_ins, d_hit, d_miss, d_burst, d_del;
  size_t ours_bytes, dpdk_bytes = 0;
  uint64_t sink = 0;  // printed below so that no lookup is optimised away
  {
    FlowTable t(static_cast<uint32_t>(n));
    auto eq = [&](uint64_t i) { return [&, i](uint32_t ref) { return keys[ref] == keys[i]; }; };
    uint64_t t0 = rte_rdtsc();
    for (uint64_t i = 0; i < n; i++) t.insert(h[i], uint32_t(i));
    o_ins = ns_per(rte_rdtsc() - t0, n);
    t0 = rte_rdtsc();
    for (uint64_t k = 0; k < n; k++) {
      uint32_t i = order[k];
      sink += t.find(h[i], eq(i));
    }
    o_hit = ns_per(rte_rdtsc() - t0, n);
    t0 = rte_rdtsc();
    for (uint64_t i = 0; i < n; i++) sink += t.find(hm[i], [&](uint32_t ref) { return keys[ref] == miss[i]; });
    o_miss = ns_per(rte_rdtsc() - t0, n);
    t0 = rte_rdtsc();
    uint32_t hb[32], out[32];
    for (uint64_t k = 0; k + 32 <= n; k += 32) {
      for (int j = 0; j < 32; j++) hb[j] = h[order[k + j]];
      t.find_burst(hb, 32, out, [&](unsigned j, uint32_t ref) { return keys[ref] == keys[order[k + j]]; });
      sink += out[0];
    }
    o_burst = ns_per(rte_rdtsc() - t0, n / 32 * 32);
    ours_bytes = t.memory_bytes() + n * sizeof(FlowKey4);
    t0 = rte_rdtsc();
    for (uint64_t k = 0; k < n; k++) t.erase(h[order[k]], order[k]);
    o_del = ns_per(rte_rdtsc() - t0, n);
  }
  {
    rte_hash_parameters p{};
    std::string name = "bench" + std::to_string(n);
    p.name = name.c_str();
    p.entries = uint32_t(n);
    p.key_len = sizeof(FlowKey4);
    p.socket_id = int(rte_socket_id());
    p.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;  // never refuse an insert
    rte_hash* hs = rte_hash_create(&p);
    if (!hs) {
      std::printf("rte_hash_create failed for %" PRIu64 " entries (more -m memory?)\n", n);
      return;
    }
    uint64_t t0 = rte_rdtsc();
    for (uint64_t i = 0; i < n; i++) rte_hash_add_key_with_hash(hs, &keys[i], h[i]);
    d_ins = ns_per(rte_rdtsc() - t0, n);
    t0 = rte_rdtsc();
    for (uint64_t k = 0; k < n; k++) sink += uint64_t(rte_hash_lookup_with_hash(hs, &keys[order[k]], h[order[k]]));
    d_hit = ns_per(rte_rdtsc() - t0, n);
    t0 = rte_rdtsc();
    for (uint64_t i = 0; i < n; i++) sink += uint64_t(rte_hash_lookup_with_hash(hs, &miss[i], hm[i]));
    d_miss = ns_per(rte_rdtsc() - t0, n);
    t0 = rte_rdtsc();
    const void* kb[32];
    hash_sig_t sb[32];
    int32_t pos[32];
    for (uint64_t k = 0; k + 32 <= n; k += 32) {
      for (int j = 0; j < 32; j++) {
        kb[j] = &keys[order[k + j]];
        sb[j] = h[order[k + j]];
      }
      rte_hash_lookup_with_hash_bulk(hs, kb, sb, 32, pos);
      sink += uint64_t(pos[0]);
    }
    d_burst = ns_per(rte_rdtsc() - t0, n / 32 * 32);
    t0 = rte_rdtsc();
    for (uint64_t k = 0; k < n; k++) rte_hash_del_key_with_hash(hs, &keys[order[k]], h[order[k]]);
    d_del = ns_per(rte_rdtsc() - t0, n);
    rte_hash_free(hs);
  }
  row("flow table", n, "insert", o_ins, d_ins);
  row("flow table", n, "lookup hit", o_hit, d_hit);
  row("flow table", n, "lookup miss", o_miss, d_miss);
  row("flow table", n, "burst lookup x32", o_burst, d_burst);
  row("flow table", n, "erase", o_del, d_del);
  std::printf("%-12s %10" PRIu64 "  %-18s %10.1f %10s\n", "flow table",
              n, "bytes/flow", double(ours_bytes) / double(n), "-");
  (void)dpdk_bytes;
  std::fprintf(stderr, "(checksum %" PRIu64 ")\n", sink);
}

}  // namespace

int main(int argc, char** argv) {
  int r = rte_eal_init(argc, argv);
  if (r < 0) {
    std::fprintf(stderr, "EAL init failed\n");
    return 2;
  }
  argc -= r;
  argv += r;
  std::vector<uint64_t> sizes;
  for (int i = 1; i < argc; i++) sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  if (sizes.empty()) sizes = {1000000, 10000000};
  rte_timer_subsystem_init();
  std::printf("TSC %.2f GHz; ns per operation (lower is better); ratio = dpdk / tcpterm\n",
              double(rte_get_tsc_hz()) / 1e9);
  std::printf("%-12s %10s  %-18s %10s %10s %8s\n", "structure", "N", "operation", "tcpterm", "dpdk", "ratio");
  for (uint64_t n : sizes) {
    bench_timers(n);
    bench_tables(n);
  }
  rte_eal_cleanup();
  return 0;
}
