// libFuzzer target: the input is a program of segments, timer jumps and
// application calls run against one TCB (starting from LISTEN+SYN, or an
// active open).  After every step the TCB invariants must hold (every flow
// outside CLOSED/LISTEN has a timer, sequence variables ordered); when the
// flow ends its buffers must all be back in the pools; TIME-WAIT decisions
// are exercised on the record the flow leaves.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tcp/tcp.h"
#include "tcp/time_wait.h"

using namespace tcpterm;
using namespace tcpterm::tcp;

namespace {
struct Reader {
  const uint8_t* p;
  size_t n;
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = v << 8 | u8();
    return v;
  }
  uint16_t u16() { return uint16_t(u8() << 8 | u8()); }
  uint8_t u8() {
    if (!n) return 0;
    n--;
    return *p++;
  }
};
const uint8_t kText[256] = {'x'};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ChunkPool chunks(512);
  static OooPool ooo(16);
  Reader r{data, size};
  Config cfg;
  cfg.timestamps = r.u8() & 1;
  cfg.window_scaling = r.u8() & 1;
  cfg.rcv_buf = 1024u << (r.u8() % 8);
  cfg.idle_timeout_ms = r.u8() & 1 ? 0 : 5000;
  Stats st;
  uint32_t now = r.u32();
  Tcb t;
  Out out;
  auto env = [&]() { return Env{cfg, st, chunks, ooo, now}; };
  uint32_t peer_seq = r.u32();
  {
    Env e = env();
    out.reset();
    if (r.u8() & 1) {
      wire::TcpRepr syn;
      syn.seq = peer_seq;
      syn.flags = wire::flag::SYN;
      syn.window = r.u16();
      syn.opt.mss = r.u16();
      syn.opt.wscale = r.u8();
      syn.opt.has_ts = r.u8() & 1;
      syn.opt.ts_val = r.u32();
      open_passive(t, syn, r.u32(), e, out);
    } else {
      open_active(t, r.u32(), e, out);
    }
  }
  while (r.n && t.state != TcpState::Closed && t.state != TcpState::TimeWait) {
    out.reset();
    Env e = env();
    uint8_t op = r.u8() % 8;
    if (op < 4) {
      // A segment near the interesting sequence numbers.
      wire::TcpRepr s;
      uint8_t fl = r.u8();
      if ((fl & wire::flag::SYN) && (fl & (wire::flag::FIN | wire::flag::RST))) fl &= uint8_t(~wire::flag::SYN);
      s.flags = fl;
      s.seq = (r.u8() & 1 ? t.rcv_nxt.v : peer_seq) + uint32_t(int16_t(r.u16()));
      s.ack = (r.u8() & 1 ? t.snd_nxt.v : t.snd_una.v) + uint32_t(int16_t(r.u16()));
      s.window = r.u16();
      s.opt.has_ts = r.u8() & 1;
      s.opt.ts_val = r.u32();
      s.opt.ts_ecr = now;
      s.payload = std::span<const uint8_t>(kText, r.u8());
      on_segment(t, s, e, out);
    } else if (op == 4) {
      now += r.u16() * (r.u8() & 1 ? 64u : 1u);
      e.now = now;
      uint32_t d;
      if (next_deadline(t, d) && time_reached(now, d)) on_timer(t, e, out);
    } else if (op == 5) {
      // Copied into chunks, or lent (kText is constant): either may follow the other.
      bool lent = r.u8() & 1;
      std::span<const uint8_t> d(kText, r.u8());
      if (lent) send_lent(t, d, e);
      else send(t, d, e);
    } else if (op == 6) {
      consume(t, r.u16(), e);
    } else {
      if (r.u8() % 4 == 0) abort(t, e, out);
      else close(t, e, out);
    }
    if (out.op == FlowOp::Keep && t.state != TcpState::Closed) output(t, e, out);
    if (out.op == FlowOp::Keep) queues_trim(t, chunks);  // as the stack does after each event
    if (out.op == FlowOp::Keep && !check_invariants(t, chunks)) std::abort();
    if (out.op != FlowOp::Keep) break;
  }
  if (t.state == TcpState::TimeWait) {
    TwState tw = tw_from_tcb(t);
    while (r.n) {
      wire::TcpRepr s;
      s.flags = r.u8();
      s.seq = tw.rcv_nxt.v + uint32_t(int16_t(r.u16()));
      s.opt.has_ts = r.u8() & 1;
      s.opt.ts_val = r.u32();
      tw_on_segment(tw, s, cfg, st);
    }
  }
  Env e = env();
  release(t, e);
  if (chunks.in_use() != 0 || ooo.in_use() != 0 || chunks.queues_in_use() != 0) std::abort();  // nothing leaks
  return 0;
}
