// The terminator's stack alone, on one core, with no DPDK and no second core:
// a generator stack and a terminator stack (the http app) in one thread,
// joined by real frames (Ethernet, IPv4, TCP with options and checksums,
// built and verified as dp/tx.cc and dp/worker.cc do), in bursts of up to 32.
// Checksums are left to the link by default, as the loopback's ring pair
// does with --ring-cksum offload (a NIC with checksum offload, Linux's veth);
// `software` computes and verifies every one, as on a device without it.
// It times only the terminator's share -- parsing its frames (checksums
// verified in software mode), Stack::input_burst (lookup, state machine, the http app, the
// frames it sends), and its timers and TIME-WAIT expiry -- so what the stack
// costs can be told apart from what the loopback benchmark's cross-core
// rings and mbufs cost.  Under valgrind --tool=callgrind
// --toggle-collect='*terminator_turn*' the same span is the only part
// collected, which gives exact instruction counts per lifecycle, free of
// the machine's noise (scripts/bench-lifecycle.sh --callgrind).
//
//   build/bench/lifecycle [LIFECYCLES] [server|client] [MSL_MS] [offload|software]
//     -> terminator_cycles_per_lifecycle=N instructions=... (callgrind: see
//        scripts/bench-lifecycle.sh)
//
// The simulated clock advances one millisecond per `kPerMs` lifecycles
// (500 000 a second), so TIME-WAIT holds CPS x 2 MSL records as in the
// loopback benchmark.
#include <x86intrin.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>


#include "apps/apps.h"
#include "apps/generator.h"
#include "stack/stack.h"
#include "wire/wire.h"

using namespace tcpterm;

namespace {

constexpr unsigned kBurst = 32;
constexpr unsigned kPerMs = 500;
constexpr size_t kFrameRoom = 2048;
const wire::Mac kTermMac{0x02, 0, 0, 0, 0, 2}, kGenMac{0x02, 0, 0, 0, 0, 1};

// A transmit queue of frames in a fixed arena (as mbufs would be).
struct FrameSink : stack::TxSink {
  std::vector<uint8_t> arena;
  std::vector<uint16_t> len;
  size_t n = 0;
  wire::Mac src, dst;
  uint16_t ip_id = 0;
  bool offload;  // checksums left to the link, as on the ring pair with --ring-cksum offload
  FrameSink(wire::Mac s, wire::Mac d, bool o)
      : arena(size_t(1) << 22), len(arena.size() / kFrameRoom), src(s), dst(d), offload(o) {}
  void tcp_out(const flow::FlowKey4& key, uint32_t, const wire::TcpRepr& h, const stack::Payload& p) override {
    if (n == len.size()) std::abort();
    uint8_t* d = arena.data() + n * kFrameRoom;
    size_t hl = wire::tcp_header_len(h);
    wire::Ipv4Repr ip;
    ip.src = key.laddr;
    ip.dst = key.raddr;
    ip.proto = wire::kProtoTcp;
    ip.payload_len = uint16_t(hl + p.len);
    ip.id = ip_id++;
    wire::emit_eth(d, {dst, src, wire::kEtherTypeIpv4});
    uint8_t* l3 = d + wire::kEthHdrLen;
    uint8_t* l4 = l3 + wire::kIpv4MinHdr;
    if (offload) {  // dp/tx.cc's offload path: the pseudo-header's sum in the TCP checksum field
      wire::emit_ipv4(l3, ip, false);
      p.copy_to(l4 + hl);
      wire::emit_tcp_header(l4, h, nullptr, p.len, 0);
      wire::store16(l4 + 16, wire::offload_phdr(wire::pseudo_sum(ip.src, ip.dst, ip.proto, ip.payload_len)));
    } else {
      wire::emit_ipv4(l3, ip, true);
      wire::emit_tcp_header(l4, h, &ip, p.len, p.copy_to_sum(l4 + hl));
    }
    len[n++] = uint16_t(wire::kEthHdrLen + wire::kIpv4MinHdr + hl + p.len);
  }
};

// The receive side of dp/worker.cc, reduced to what a TCP frame takes:
// Ethernet, IPv4 (checksum verified), TCP (checksum verified; both trusted
// when the sender left them to the link, as dp/offload.h's virtual_wire_rx),
// then the burst.
void receive(stack::Stack& s, const FrameSink& from, size_t count) {
  // Not zeroed per call: the parsers write them whole (dp::Worker::rx4_).
  static wire::Ipv4Repr ips[kBurst];
  static wire::TcpRepr segs[kBurst];
  unsigned k = 0;
  for (size_t i = 0; i < count; i++) {
    std::span<const uint8_t> f(from.arena.data() + i * kFrameRoom, from.len[i]);
    wire::EthRepr eth;
    if (wire::parse_eth(f, eth) != wire::Drop::None) std::abort();
    auto l3 = f.subspan(wire::kEthHdrLen);
    if (wire::parse_ipv4(l3, ips[k], from.offload) != wire::Drop::None) std::abort();
    auto l4 = l3.subspan(ips[k].hdr_len, ips[k].payload_len);
    if (wire::parse_tcp(l4, segs[k], &ips[k], from.offload) != wire::Drop::None) std::abort();
    if (++k == kBurst) {
      s.input_burst(ips, segs, nullptr, k);
      k = 0;
    }
  }
  if (k) s.input_burst(ips, segs, nullptr, k);
}

// The terminator's turn: its frames received, its timers run (the span
// timed, and the one callgrind collects).
__attribute__((noinline)) void terminator_turn(stack::Stack& term, const FrameSink& in, size_t n, uint64_t now) {
  term.set_time(now);
  receive(term, in, n);
  term.advance(now);
}

// The generator's turns (opening, and its frames received): timed too, and
// collected with --toggle-collect='*generator_turn*'.
__attribute__((noinline)) void generator_turn_open(apps::Generator& app, stack::Stack& gen, uint64_t now) {
  gen.set_time(now);
  app.tick(gen, now, 0, 1);
  gen.advance(now);
}
__attribute__((noinline)) void generator_turn_receive(stack::Stack& gen, const FrameSink& in, size_t n) {
  receive(gen, in, n);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t lifecycles = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 300000;
  std::string mode = argc > 2 ? argv[2] : "server";
  uint32_t msl = argc > 3 ? uint32_t(std::strtoul(argv[3], nullptr, 10)) : 1000;
  std::string cksum = argc > 4 ? argv[4] : "offload";
  if (cksum != "offload" && cksum != "software") {
    std::fprintf(stderr, "checksums: offload or software\n");
    return 2;
  }
  const bool offload = cksum == "offload";
  const uint32_t term_ip = 0xC6120002, gen_first = 0xC6128001, gen_last = 0xC612FFFE;

  stack::StackConfig cfg;
  cfg.tcp.msl_ms = msl;
  cfg.max_time_wait = uint32_t(std::min<uint64_t>(uint64_t(kPerMs) * 2 * msl * 12 / 10 + 65536, 1u << 30));
  FrameSink to_gen(kTermMac, kGenMac, offload), to_term(kGenMac, kTermMac, offload);
  uint64_t now = 1000;
  stack::Stack term(cfg, to_gen, now), gen(cfg, to_term, now);
  apps::Http http(64, apps::Http::Close::Auto);
  term.add_listener(term_ip, 80, &http);
  apps::GeneratorConfig gc;
  gc.dst = term_ip;
  gc.src = {{gen_first, gen_last}};
  gc.concurrency = 256;
  gc.count = lifecycles;
  if (!apps::parse_close_mode(mode, gc.mode)) {
    std::fprintf(stderr, "mode: server or client\n");
    return 2;
  }
  apps::Generator app(gc);

  uint64_t term_cycles = 0, gen_cycles = 0, term_done = 0, loops = 0;
  const uint64_t warm = lifecycles / 10;
  bool timing = false;
  while (!app.done() || app.stats().active) {
    // The clock: one millisecond per kPerMs lifecycles opened.
    uint64_t want = 1000 + app.stats().gen_opened / kPerMs;
    if (want > now) now = want;
    uint64_t g0 = __rdtsc();
    generator_turn_open(app, gen, now);
    if (timing) gen_cycles += __rdtsc() - g0;
    // Generator -> terminator.
    size_t n = to_term.n;
    to_term.n = 0;
    if (!timing && app.stats().gen_completed >= warm) {
      timing = true;
      term_done = term.stats().flows_freed;
    }
    uint64_t t0 = __rdtsc();
    terminator_turn(term, to_term, n, now);
    if (timing) term_cycles += __rdtsc() - t0;
    // Terminator -> generator.
    size_t m = to_gen.n;
    to_gen.n = 0;
    g0 = __rdtsc();
    generator_turn_receive(gen, to_gen, m);
    if (timing) gen_cycles += __rdtsc() - g0;
    if (++loops > 100 * lifecycles + 1000000) {
      std::fprintf(stderr, "stuck: opened %llu completed %llu active %llu\n",
                   (unsigned long long)app.stats().gen_opened, (unsigned long long)app.stats().gen_completed,
                   (unsigned long long)app.stats().active);
      return 1;
    }
    if (n == 0 && m == 0 && app.done()) {
      now += 10;  // let timers run out what is left
      if (now > 1000 + lifecycles + 600000) break;
    }
  }
  uint64_t measured = term.stats().flows_freed - term_done;
  const auto& g = app.stats();
  std::printf("cksum=%s mode=%s lifecycles=%llu completed=%llu failed=%llu measured=%llu time_wait=%llu\n", cksum.c_str(), mode.c_str(),
              (unsigned long long)lifecycles, (unsigned long long)g.gen_completed,
              (unsigned long long)(g.gen_reset + g.gen_failed_connect + g.gen_timed_out),
              (unsigned long long)measured, (unsigned long long)term.tcp_stats().states[size_t(tcp::TcpState::TimeWait)]);
  std::printf("terminator_cycles_per_lifecycle=%.0f (after a warm-up of %llu)\n",
              measured ? double(term_cycles) / double(measured) : 0.0, (unsigned long long)warm);
  std::printf("generator_cycles_per_lifecycle=%.0f\n", measured ? double(gen_cycles) / double(measured) : 0.0);
  // Every lifecycle the terminator finished, warm-up included (what a
  // callgrind run of the whole of terminator_turn divides by).
  std::printf("terminator_lifecycles_total=%llu\n", (unsigned long long)term.stats().flows_freed);
  if (std::getenv("LIFECYCLE_STATS")) {
    term.tcp_stats().for_each_counter([](std::string_view k, uint64_t v) {
      if (v) std::printf("  term %.*s %llu\n", int(k.size()), k.data(), (unsigned long long)v);
    });
    gen.tcp_stats().for_each_counter([](std::string_view k, uint64_t v) {
      if (v) std::printf("  gen %.*s %llu\n", int(k.size()), k.data(), (unsigned long long)v);
    });
  }
  return g.gen_completed == lifecycles ? 0 : 1;
}
