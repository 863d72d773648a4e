// The RFC 9293 state machine.  SEGMENT ARRIVES follows the RFC's order of
// checks and says so at each step; each transition arm opens with one
// sentence.  Congestion control is NewReno (RFC 5681, RFC 6582), the
// retransmission timer RFC 6298, options RFC 7323, blind-attack defences
// RFC 5961.
//
// Trade-offs, stated once:
//  - No Nagle (every application write goes out when the windows allow), but
//    sender silly-window avoidance (RFC 9293 3.8.6.2.1) with the persist timer
//    as the override timeout.
//  - SACK is parsed but not offered; recovery is NewReno.
//  - Out-of-order data is kept (up to four holes, first copy of a byte wins);
//    an out-of-order FIN is dropped and awaits its retransmission.
//  - A bare FIN is sent even into a zero window: it needs no buffer space at
//    the receiver and this keeps closing flows from waiting on the window.
#include "tcp/tcp.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>

namespace tcpterm::tcp {

using wire::TcpRepr;
namespace F = wire::flag;

namespace {

// ------------------------------------------------------------ helpers ---
uint32_t eff_mss(const Tcb& t) { return t.snd_mss - (t.has(kTsOk) ? 12u : 0u); }

void arm(Tcb& t, uint8_t bit, uint32_t at) {
  t.timers |= bit;
  if (bit == kTmDelAck) t.delack_at = at;
  else if (bit == kTmLife) t.life_at = at;
  else t.rtx_at = at;  // kTmRtx, kTmPersist
}
void disarm(Tcb& t, uint8_t bits) { t.timers &= uint8_t(~bits); }

// `extra`: received bytes held outside the queue (Out::held).
uint32_t rcv_window_avail(const Tcb& t, const Config& c, const ChunkPool& chunks, uint32_t extra = 0) {
  uint32_t held = queues(t, chunks).rcv.len + extra;
  return c.rcv_buf > held ? c.rcv_buf - held : 0;
}

// Timeouts counted per state (RFC names in the counters).
void count_timeout(TcpState s, Stats& st) {
  switch (s) {
    case TcpState::SynSent: st.timeout_syn_sent++; break;
    case TcpState::SynReceived: st.timeout_syn_received++; break;
    case TcpState::Established: st.timeout_established++; break;
    case TcpState::FinWait1: st.timeout_fin_wait_1++; break;
    case TcpState::FinWait2: st.timeout_fin_wait_2++; break;
    case TcpState::CloseWait: st.timeout_close_wait++; break;
    case TcpState::Closing: st.timeout_closing++; break;
    case TcpState::LastAck: st.timeout_last_ack++; break;
    default: break;
  }
}

// Fills the common part of an outgoing segment: <SEQ=seq><ACK=RCV.NXT>,
// window, timestamps.
OutSeg& make_seg(Tcb& t, Env& e, Out& out, Seq seq, uint8_t flags) {
  OutSeg& s = out.push();
  // Every field set, the SACK blocks aside (no segment we send carries
  // any, sack_count says so): a slot reused from an earlier event is not
  // zeroed whole, 96 bytes per segment.
  static_assert(sizeof(wire::TcpRepr) == 88, "a TcpRepr field was added: set it here too");
  s.h.src_port = s.h.dst_port = 0;
  s.h.ack = 0;
  s.h.window = 0;
  s.h.urgent = 0;
  s.h.opt.mss = 0;
  s.h.opt.wscale = 0xff;
  s.h.opt.sack_permitted = false;
  s.h.opt.has_ts = false;
  s.h.opt.ts_val = s.h.opt.ts_ecr = 0;
  s.h.opt.sack_count = 0;
  s.h.payload = {};
  s.data_len = 0;
  s.h.seq = seq.v;
  s.h.flags = flags;
  if (flags & F::ACK) {
    s.h.ack = t.rcv_nxt.v;
    s.h.window = window_field(t, e);
    t.last_ack_sent = t.rcv_nxt;
    t.flags &= uint16_t(~kAckNow);
    t.delack_segs = 0;
    disarm(t, kTmDelAck);
  }
  if (t.has(kTsOk) && !(flags & F::RST)) {
    s.h.opt.has_ts = true;
    s.h.opt.ts_val = t.ts_now(e.now);
    s.h.opt.ts_ecr = t.ts_recent;
  }
  e.st.segs_out++;
  return s;
}

// A segment without text, SYN or FIN carries SND.MAX, not SND.NXT: after a
// retransmission timeout SND.NXT goes back to SND.UNA (go-back-N), and an
// ACK sequenced there lies left of the peer's RCV.NXT, where the peer's
// acceptability test drops it, ACK field and all (RFC 9293 3.10.7.4).  If
// both ends are retransmitting at once, neither then hears the other's ACK
// and both retransmit until a timeout ends the connection.  (BSD's
// tcp_output: "for ACK only packets ... use snd_max".)  SND.MAX may lie
// past the peer's window -- a zero-window probe's octet it did not take --
// and then the window's right edge is used, as Linux's tcp_acceptable_seq
// does: with a zero window the peer accepts only RCV.NXT = SND.UNA.
void emit_ack(Tcb& t, Env& e, Out& out) {
  if (out.full()) return;
  Seq edge = t.snd_una + t.snd_wnd;
  make_seg(t, e, out, t.snd_max <= edge ? t.snd_max : edge, F::ACK);
}

// RFC 5961 7: challenge ACKs are limited per flow (never a host-global
// counter, CVE-2016-5696).
void challenge_ack(Tcb& t, Env& e, Out& out) {
  if (t.last_challenge != 0 && !time_reached(e.now, t.last_challenge + e.cfg.challenge_ack_interval_ms)) {
    e.st.challenge_acks_suppressed++;
    return;
  }
  t.last_challenge = e.now ? e.now : 1;  // 0 means "never"
  e.st.challenge_acks++;
  emit_ack(t, e, out);
}

// Replies to unacceptable segments without text (pure ACKs, SYNs) share the
// per-flow limit of challenge ACKs, so a blind flood of out-of-window ACKs
// or a duplicate-ACK storm gets at most one reply per interval (Linux
// tcp_invalid_ratelimit).  Segments with text or a FIN are always answered:
// the peer needs the ACK to recover (a retransmitted FIN whose ACK was lost
// would otherwise wait out the limit for each retransmission).
void oow_ack(Tcb& t, Env& e, Out& out, const TcpRepr& seg) {
  if (seg.payload.empty() && !seg.fin()) {
    if (t.last_challenge != 0 &&
        !time_reached(e.now, t.last_challenge + e.cfg.challenge_ack_interval_ms)) {
      e.st.oow_acks_suppressed++;
      return;
    }
    t.last_challenge = e.now ? e.now : 1;
  }
  emit_ack(t, e, out);
}

void emit_rst(Tcb& t, Env& e, Out& out, Seq seq) {
  if (out.full()) return;
  make_seg(t, e, out, seq, F::RST);
  e.st.resets_out++;
}

void emit_syn(Tcb& t, Env& e, Out& out, bool with_ack) {
  if (out.full()) return;
  // Only while the SYN is unacknowledged: SND.UNA is the ISS.
  OutSeg& s = make_seg(t, e, out, t.snd_una, F::SYN | (with_ack ? F::ACK : 0));
  s.h.window = uint16_t(std::min<uint32_t>(e.cfg.rcv_buf, 65535));  // RFC 7323 2.2: unscaled
  s.h.opt.mss = our_mss(t, e.cfg);
  bool offer_ws = e.cfg.window_scaling && (!with_ack || t.has(kWsOk));
  if (offer_ws) s.h.opt.wscale = e.cfg.rcv_wscale();
  bool offer_ts = e.cfg.timestamps && (!with_ack || t.has(kTsOk));
  s.h.opt.has_ts = offer_ts;
  s.h.opt.ts_val = t.ts_now(e.now);
  s.h.opt.ts_ecr = with_ack ? t.ts_recent : 0;
}

// Frees everything and reports the flow gone.
// A graceful end keeps the in-order bytes not yet read: the application
// gets them in this event (a proxy carries them to the other side); the
// stack frees them when it converts or frees the flow.  An orphan reads no
// more: everything goes now.
void release_for_close(Tcb& t, Env& e) {
  if (t.has(kOrphan)) {
    release(t, e);
    return;
  }
  if (t.q == kNil) return;
  FlowQueues& q = e.chunks.queues(t.q);
  snd_clear(q, e.chunks);
  if (q.ooo != kNil) {
    e.ooo.free(q.ooo, e.chunks);
    q.ooo = kNil;
  }
}

void finish(Tcb& t, Env& e, Out& out, uint8_t events, bool graceful = false) {
  if (graceful) release_for_close(t, e);
  else release(t, e);
  if (!graceful || t.has(kOrphan)) out.held_len = 0;  // the text held in place goes with the queue
  set_state(t, TcpState::Closed, e.st);
  t.timers = 0;
  out.events |= events | ev::Closed;
  out.op = FlowOp::Free;
}

void enter_time_wait(Tcb& t, Env& e, Out& out) {
  // The final ACK goes out before the TCB is reduced to a record.
  if (t.has(kAckNow)) emit_ack(t, e, out);
  release_for_close(t, e);
  if (t.has(kOrphan)) out.held_len = 0;  // (released with the queue)
  set_state(t, TcpState::TimeWait, e.st);
  t.timers = 0;  // the TIME-WAIT record carries its own 2MSL expiry
  e.st.tw_entered++;
  e.st.closed_active++;
  out.events |= ev::Closed;
  out.op = FlowOp::ToTimeWait;
}

void arm_life(Tcb& t, Env& e) {
  const Config& c = e.cfg;
  switch (t.state) {
    case TcpState::Established:
    case TcpState::CloseWait:
      arm(t, kTmLife, e.now + (c.idle_timeout_ms ? c.idle_timeout_ms : c.keepalive_idle_ms));
      break;
    case TcpState::FinWait2:
      arm(t, kTmLife, e.now + c.fin_wait_2_timeout_ms);
      break;
    default:
      disarm(t, kTmLife);
  }
}

// RFC 6298 2.2 / 2.3, with srtt and rttvar scaled by 8 and 4 (clock
// granularity G = 1 ms).
void rtt_sample(Tcb& t, const Config& c, uint32_t r) {
  if (t.srtt8 == 0) {
    t.srtt8 = (r << 3) | 1;  // never 0 after the first sample
    t.rttvar4 = r << 1;      // R/2, scaled by 4
  } else {
    int32_t delta = int32_t(r) - int32_t(t.srtt8 >> 3);
    int32_t adelta = delta < 0 ? -delta : delta;
    t.rttvar4 = uint32_t(int32_t(t.rttvar4) + adelta - int32_t(t.rttvar4 >> 2));
    t.srtt8 = uint32_t(int32_t(t.srtt8) + delta);
  }
  uint32_t rto = (t.srtt8 >> 3) + std::max<uint32_t>(1, t.rttvar4);
  t.rto_ms = std::clamp(rto, c.rto_min_ms, c.rto_max_ms);
}

uint32_t backoff(const Tcb& t, const Config& c) {
  uint64_t r = uint64_t(t.rto_ms) << std::min<uint8_t>(t.retries, 20);
  return uint32_t(std::min<uint64_t>(r, c.rto_max_ms));
}

// RFC 9293 3.7.1 MSS and RFC 7323 option negotiation from the peer's SYN.
void negotiate(Tcb& t, const TcpRepr& syn, const Config& c, bool we_offered) {
  uint16_t peer_mss = syn.opt.mss ? syn.opt.mss : 536;
  t.snd_mss = std::max(kMinMss, std::min(our_mss(t, c), peer_mss));
  if (c.window_scaling && syn.opt.has_wscale() && we_offered) {
    t.flags |= kWsOk;
    t.snd_wscale = std::min(syn.opt.wscale, kMaxWscale);  // RFC 7323 2.3: clamp to 14
    t.rcv_wscale = c.rcv_wscale();
  }
  if (c.timestamps && syn.opt.has_ts) {
    t.flags |= kTsOk;
    t.ts_recent = syn.opt.ts_val;
  }
}

void init_send_side(Tcb& t, uint32_t iss, const Config& c) {
  t.snd_una = Seq(iss);  // the ISS, until our SYN is acknowledged
  t.snd_nxt = t.snd_una + 1;
  t.snd_max = t.snd_nxt;
  t.recover = t.snd_una;
  t.rto_ms = c.rto_initial_ms;
}

// RFC 5681 3.1: IW = min(4*SMSS, max(2*SMSS, 4380)).
void init_cwnd(Tcb& t) {
  uint32_t m = eff_mss(t);
  t.cwnd = std::min(4 * m, std::max(2 * m, 4380u));
  t.ssthresh = 0x7fffffff;
}

// Sends len bytes of the send queue starting at seq (plus FIN when asked).
void emit_data(Tcb& t, Env& e, Out& out, Seq seq, uint32_t len, bool fin, bool push) {
  uint8_t fl = F::ACK | (push ? F::PSH : 0) | (fin ? F::FIN : 0);
  OutSeg& s = make_seg(t, e, out, seq, fl);
  s.data_len = len;
  e.st.bytes_out += len;
  if (seq < t.snd_max) e.st.retransmits++;
}

// ----------------------------------------------------- receive window ---
// RFC 9293 3.8.6.2.2 receiver SWS avoidance: the right edge moves only by at
// least min(RCV.BUFF/2, MSS); it never moves left.
// Under memory pressure the window offered beyond RCV.NXT stops growing past
// kPressureWindowSegs segments (it never moves left: see max() below).
Seq window_edge(const Tcb& t, const Config& c, ChunkPool& chunks, uint32_t extra = 0) {
  uint32_t avail = rcv_window_avail(t, c, chunks, extra);
  if (chunks.under_pressure()) avail = std::min<uint32_t>(avail, kPressureWindowSegs * t.snd_mss);
  Seq edge = t.rcv_nxt + avail;
  uint32_t step = std::min<uint32_t>(c.rcv_buf / 2, t.snd_mss);
  if (edge > t.rcv_adv && uint32_t(edge - t.rcv_adv) < step) edge = t.rcv_adv;
  return max(edge, t.rcv_adv);
}

// ---------------------------------------------------------- receiving ---
// Appends the bytes of `from` (a range's queue) to `to`: a copy, made only
// when reordering is repaired, never on the in-order path.
bool bq_append_queue(ByteQueue& to, const ByteQueue& from, ChunkPool& chunks, uint32_t skip = 0) {
  bool ok = true;
  bq_for_each(from, chunks, skip, from.len - skip, [&](std::span<const uint8_t> piece) {
    if (ok && bq_append(to, chunks, piece.data(), piece.size()) != piece.size()) ok = false;
  });
  return ok;
}

// Out-of-order data (RFC 9293 3.10.7.4 seventh, "queue for later"): keeps
// [s, end) as a range with its own queue, merging it with the ranges it
// touches; only bytes no range holds yet are taken from the segment (the
// first copy of a byte wins).  False when a fifth hole would be needed or
// memory is short (the segment is dropped: nothing of it was acknowledged).
bool ooo_store(Tcb& t, Env& e, Seq s, std::span<const uint8_t> data, uint32_t self) {
  Seq end = s + uint32_t(data.size());
  FlowQueues& fq = queues_w(t, e.chunks);
  if (fq.ooo == kNil) {
    fq.ooo = e.ooo.alloc();
    if (fq.ooo == kNil) return false;
  }
  OooState& o = e.ooo[fq.ooo];
  int first = -1, last = -1;
  for (int i = 0; i < o.count; i++)
    if (o.start[i] <= end && s <= o.end[i]) {
      if (first < 0) first = i;
      last = i;
    }
  // Under memory pressure, data farther from RCV.NXT than everything held
  // is the first to go: do not take it.
  bool farthest = o.count == 0 || s > o.end[o.count - 1];
  if (farthest && first < 0 && e.chunks.under_pressure()) {
    e.st.ooo_pressure_dropped++;
    return false;
  }
  int merged = first < 0 ? 0 : last - first + 1;
  if (o.count - merged + 1 > OooState::kMaxRanges) return false;
  Seq ns = first < 0 ? s : min(s, o.start[first]);
  Seq ne = first < 0 ? end : max(end, o.end[last]);
  uint32_t need = chunks_for(uint32_t(ne - ns));
  if (e.chunks.available() < need) {
    // Make room from the farthest ranges: this flow's own beyond the new
    // data first, then other flows' (Linux tcp_prune_ofo_queue).
    while (o.count > (last >= 0 ? last + 1 : 0) && o.start[o.count - 1] > end &&
           e.chunks.available() < need) {
      e.st.ooo_pruned_bytes += OooPool::drop_last(o, e.chunks);
      e.st.ooo_pruned_ranges++;
    }
    if (e.chunks.available() < need)
      e.st.ooo_pruned_ranges += e.ooo.prune(e.chunks, need, self, e.st.ooo_pruned_bytes);
    if (e.chunks.available() < need) return false;
    for (int i = 0; i < o.count; i++)  // the pruning may have changed the indices
      if (o.start[i] <= end && s <= o.end[i]) last = i;
  }
  if (first < 0) {
    // A new range of its own.
    int at = 0;
    while (at < o.count && o.start[at] < s) at++;
    for (int i = o.count; i > at; i--) {
      o.start[i] = o.start[i - 1];
      o.end[i] = o.end[i - 1];
      o.q[i] = o.q[i - 1];
    }
    o.q[at] = ByteQueue{};
    bq_append(o.q[at], e.chunks, data.data(), data.size());
    o.start[at] = s;
    o.end[at] = end;
    o.count++;
    return true;
  }
  // Merge [s, end) with ranges first..last into range `first`.
  auto take = [&](ByteQueue& q, Seq a, Seq b) {  // segment bytes [a, b)
    if (a < b) bq_append(q, e.chunks, data.data() + uint32_t(a - s), uint32_t(b - a));
  };
  ByteQueue q;
  if (s < o.start[first]) {
    take(q, s, o.start[first]);  // new bytes in front: a fresh queue, then the range
    bq_append_queue(q, o.q[first], e.chunks);
    bq_clear(o.q[first], e.chunks);
  } else {
    q = o.q[first];
  }
  Seq cur = o.end[first];
  for (int i = first + 1; i <= last; i++) {
    take(q, cur, o.start[i]);
    bq_append_queue(q, o.q[i], e.chunks);
    bq_clear(o.q[i], e.chunks);
    cur = o.end[i];
  }
  take(q, max(cur, s), end);
  o.q[first] = q;
  o.start[first] = ns;
  o.end[first] = ne;
  int gone = last - first;
  for (int i = last + 1; i < o.count; i++) {
    o.start[i - gone] = o.start[i];
    o.end[i - gone] = o.end[i];
    o.q[i - gone] = o.q[i];
  }
  o.count = uint8_t(o.count - gone);
  return true;
}

// After RCV.NXT advanced: ranges that became in-order move to the receive
// queue (a copy; if the pool cannot take it now, the range stays and is
// retried at the next in-order arrival or pruned).
bool ooo_absorb(Tcb& t, Env& e) {
  if (t.q == kNil) return false;
  FlowQueues& fq = e.chunks.queues(t.q);
  if (fq.ooo == kNil) return false;
  OooState& o = e.ooo[fq.ooo];
  bool moved = false;
  while (o.count && o.start[0] <= t.rcv_nxt) {
    if (o.end[0] > t.rcv_nxt) {
      uint32_t skip = uint32_t(t.rcv_nxt - o.start[0]);
      uint32_t n = o.q[0].len - skip;
      if (e.chunks.available() < chunks_for(n)) break;
      bq_append_queue(fq.rcv, o.q[0], e.chunks, skip);
      t.rcv_nxt = o.end[0];
    }
    bq_clear(o.q[0], e.chunks);
    for (int i = 1; i < o.count; i++) {
      o.start[i - 1] = o.start[i];
      o.end[i - 1] = o.end[i];
      o.q[i - 1] = o.q[i];
    }
    o.q[o.count - 1] = ByteQueue{};
    o.count--;
    moved = true;
  }
  if (o.count == 0) {
    e.ooo.free(fq.ooo, e.chunks);
    fq.ooo = kNil;
  }
  return moved;
}

// RFC 9293 3.10.7.4 seventh: segment text (already trimmed to the window).
void process_text(Tcb& t, Env& e, Out& out, Seq seq, std::span<const uint8_t> data) {
  if (seq == t.rcv_nxt) {
    if (e.chunks.available() < chunks_for(uint32_t(data.size()))) {
      // Make room from out-of-order data (never acknowledged) before refusing
      // in-order data.
      e.st.ooo_pruned_ranges += e.ooo.prune(e.chunks, chunks_for(uint32_t(data.size())), kNil,
                                            e.st.ooo_pruned_bytes);
    }
    const FlowQueues& fq = queues(t, e.chunks);
    if (e.rcv_in_place && !out.held_len && fq.rcv.len == 0 && fq.ooo == kNil &&
        e.chunks.available() >= chunks_for(uint32_t(data.size()))) {
      // Nothing queued ahead of it and nothing to absorb behind it: the
      // application reads it from the segment, and only what it leaves is
      // copied (keep_held), into chunks the pool has now.
      out.held = data.data();
      out.held_len = uint32_t(data.size());
    } else {
      ByteQueue& rcvq = queues_w(t, e.chunks).rcv;
      if (!bq_write_at(rcvq, e.chunks, rcvq.len, data.data(), data.size())) {
        e.st.rcv_buf_full++;  // pool exhausted: not acknowledged, the peer retransmits
        return;
      }
      rcvq.len += uint32_t(data.size());
    }
    t.rcv_nxt += uint32_t(data.size());
    e.st.bytes_in += data.size();
    out.events |= ev::Readable;
    // RFC 5681 4.2: ACK at once when a segment fills a hole.
    if (ooo_absorb(t, e)) t.flags |= kAckNow;
    // RFC 9293 3.8.6.3: ACK at least every second full-sized segment.
    if (++t.delack_segs >= 2) t.flags |= kAckNow;
    else if (!(t.timers & kTmDelAck)) arm(t, kTmDelAck, e.now + e.cfg.delack_ms);
  } else {
    e.st.ooo_segments++;
    if (!ooo_store(t, e, seq, data, queues(t, e.chunks).ooo)) e.st.ooo_dropped++;
    t.flags |= kAckNow;  // RFC 5681 4.2: a duplicate ACK at once
  }
}

// ----------------------------------------------------- ACK processing ---
// RFC 9293 3.10.7.4 fifth, for the synchronized states: SND.UNA, the
// retransmission timer, RTT, congestion window, send window.
void process_ack(Tcb& t, const TcpRepr& seg, Env& e, Out& out) {
  Seq ack(seg.ack);
  Seq sseq(seg.seq);
  const uint32_t mss = eff_mss(t);
  if (ack > t.snd_una) {
    // New data acknowledged: drop it from the queue, restart the timer.
    uint32_t acked = uint32_t(ack - t.snd_una);
    uint32_t data_acked = std::min(acked, queues(t, e.chunks).snd.len);
    if (data_acked) {
      snd_consume(e.chunks.queues(t.q), e.chunks, data_acked);
      out.events |= ev::Writable;
    }
    t.snd_una = ack;
    if (t.snd_nxt < t.snd_una) t.snd_nxt = t.snd_una;
    // RTT: RFC 7323 4.1 (timestamps) or one timed segment (Karn).
    if (t.has(kTsOk) && seg.opt.has_ts && seg.opt.ts_ecr != 0) {
      // RFC 7323 4.1 / 4.3: the echoed TSval must be one we sent: not in our
      // future, and no older than any plausible RTT (a forged or corrupted
      // TSecr would otherwise set the RTO to its maximum, or to its minimum).
      uint32_t r = t.ts_now(e.now) - seg.opt.ts_ecr;
      if (int32_t(r) >= 0 && r <= e.cfg.rto_max_ms) rtt_sample(t, e.cfg, r);
      else e.st.ts_ecr_invalid++;
    } else if (t.has(kRttTiming) && ack > t.rtt_seq) {
      rtt_sample(t, e.cfg, e.now - t.rtt_start);
    }
    if (ack > t.rtt_seq) t.flags &= uint16_t(~kRttTiming);
    t.retries = 0;
    t.probes = 0;
    // Congestion control.
    if (t.has(kInRecovery)) {
      if (ack >= t.recover) {
        // RFC 6582 3.2 (3): full ACK ends recovery.
        t.cwnd = std::min(t.ssthresh, t.in_flight() + mss);
        t.flags &= uint16_t(~kInRecovery);
        t.dupacks = 0;
      } else {
        // RFC 6582 3.2 (4): partial ACK, retransmit the next hole, deflate.
        uint32_t len = std::min<uint32_t>(mss, queues(t, e.chunks).snd.len);
        if (len && !out.full()) {
          emit_data(t, e, out, t.snd_una, len, false, false);
          e.st.fast_retransmits++;
        }
        t.cwnd = t.cwnd > acked ? t.cwnd - acked : 0;
        if (acked >= mss) t.cwnd += mss;
        t.cwnd = std::max(t.cwnd, mss);
      }
    } else {
      t.dupacks = 0;
      if (t.cwnd < t.ssthresh) t.cwnd += std::min(acked, mss);          // slow start
      else t.cwnd += std::max<uint32_t>(1, uint32_t(uint64_t(mss) * mss / t.cwnd));  // CA
    }
    // RFC 6298 5.2 / 5.3.
    if (t.snd_una == t.snd_max) disarm(t, kTmRtx);
    else if (!(t.timers & kTmPersist)) arm(t, kTmRtx, e.now + t.rto_ms);
  } else if (ack == t.snd_una && t.snd_max > t.snd_una && seg.payload.empty() && !seg.fin() &&
             (uint32_t(seg.window) << t.snd_wscale) == t.snd_wnd && t.snd_wnd != 0 &&
             !(t.timers & kTmPersist)) {
    // (Replies to zero-window probes are not duplicate ACKs: the window is
    // closed and the probe was sent beyond it.)
    // RFC 5681 2: a duplicate ACK.
    e.st.dup_acks_in++;
    if (++t.dupacks == 3 && !t.has(kInRecovery) && t.snd_una > t.recover) {
      // RFC 5681 3.2 / RFC 6582 3.2 (1): fast retransmit, enter fast recovery,
      // but only when the cumulative ACK covers more than `recover` (after an
      // RTO, duplicate ACKs of data sent before it must not trigger it).
      t.ssthresh = std::max(t.flight_size() / 2, 2 * mss);
      t.recover = t.snd_max;
      uint32_t len = std::min<uint32_t>(mss, queues(t, e.chunks).snd.len);
      if (len && !out.full()) {
        emit_data(t, e, out, t.snd_una, len, false, false);
        e.st.fast_retransmits++;
      }
      t.cwnd = t.ssthresh + 3 * mss;
      t.flags |= kInRecovery;
      t.flags &= uint16_t(~kRttTiming);
    } else if (t.dupacks > 3 || t.has(kInRecovery)) {
      t.cwnd += mss;  // inflate for each segment that left the network
    }
  }
  // Window update (RFC 9293 3.10.7.4, ESTABLISHED).
  if (t.snd_wl1 < sseq || (t.snd_wl1 == sseq && t.snd_wl2 <= ack)) {
    t.snd_wnd = uint32_t(seg.window) << t.snd_wscale;
    t.snd_wl1 = sseq;
    t.snd_wl2 = ack;
    t.max_snd_wnd = std::max(t.max_snd_wnd, t.snd_wnd);
    if (t.snd_wnd > 0 && (t.timers & kTmPersist)) {
      disarm(t, kTmPersist);
      t.retries = 0;
      t.probes = 0;
    }
  }
  // RFC 9293 3.8.6.1 / RFC 1122 4.2.2.17: the peer is alive and its window
  // is closed.  What lies beyond the window is not in flight: probe it on
  // the persist timer (keeping the backoff) instead of retransmitting on the
  // RTO and counting retries toward giving up.  An acceptable ACK of a probe
  // proves a live reader and resets the probe count; an orphan keeps its
  // count, so it is bounded whatever the peer does (FreeBSD-SA-15:13).
  if (t.snd_wnd == 0 && ack == t.snd_una && t.snd_max > t.snd_una && synchronized(t.state)) {
    if (t.timers & kTmRtx) {
      disarm(t, kTmRtx);
      t.snd_nxt = t.snd_una;
      arm(t, kTmPersist, e.now + backoff(t, e.cfg));
    }
    if (!t.has(kOrphan)) t.probes = 0;
  }
}

// The shared path for timeouts: an RST in synchronized states, then free.
void drop_on_timeout(Tcb& t, Env& e, Out& out) {
  count_timeout(t.state, e.st);
  e.st.closed_timeout++;
  if (synchronized(t.state)) emit_rst(t, e, out, t.snd_nxt);
  finish(t, e, out, ev::TimedOut);
}

}  // namespace

// =================================================================== API ===

void set_state(Tcb& t, TcpState s, Stats& st) {
  if (t.state == s) return;
  if (t.state != TcpState::Closed) st.states[size_t(t.state)]--;
  if (s != TcpState::Closed) st.states[size_t(s)]++;
  st.entered[size_t(s)]++;
  t.state = s;
}

uint16_t window_field(Tcb& t, const Env& e) {
  Seq edge = window_edge(t, e.cfg, e.chunks);
  uint32_t w = uint32_t(edge - t.rcv_nxt) >> t.rcv_wscale;
  w = std::min<uint32_t>(w, 65535);
  t.rcv_adv = max(t.rcv_adv, t.rcv_nxt + (w << t.rcv_wscale));
  return uint16_t(w);
}

void open_passive(Tcb& t, const TcpRepr& syn, uint32_t iss, Env& e, Out& out) {
  // LISTEN + SYN -> SYN-RECEIVED: record the peer's ISN, send <SYN,ACK>.
  t = Tcb{};
  t.ts_offset = e.ts_offset;
  if (e.v6) t.flags |= kNet6;
  set_state(t, TcpState::SynReceived, e.st);
  t.flags |= kPassive;
  t.rcv_nxt = Seq(syn.seq) + 1;  // IRS + 1
  t.rcv_adv = t.rcv_nxt + std::min<uint32_t>(e.cfg.rcv_buf, 65535);
  init_send_side(t, iss, e.cfg);
  negotiate(t, syn, e.cfg, true);
  init_cwnd(t);
  t.snd_wnd = syn.window;  // RFC 7323 2.2: the window of a SYN is never scaled
  t.max_snd_wnd = t.snd_wnd;
  t.snd_wl1 = Seq(syn.seq);
  t.last_rcv = e.now;
  t.rtt_start = e.now;
  if (!syn.payload.empty()) e.st.syn_data_ignored++;  // not acknowledged: retransmitted later
  e.st.passive_opens++;
  emit_syn(t, e, out, true);
  arm(t, kTmRtx, e.now + t.rto_ms);
}

void open_from_cookie(Tcb& t, const TcpRepr& ack, uint16_t peer_mss, uint8_t peer_wscale,
                      Env& e, Out& out) {
  // LISTEN + ACK of a valid cookie -> ESTABLISHED: SYN-RECEIVED was never kept.
  t = Tcb{};
  t.ts_offset = e.ts_offset;
  if (e.v6) t.flags |= kNet6;
  set_state(t, TcpState::Established, e.st);
  t.flags |= kPassive;
  t.rcv_nxt = Seq(ack.seq);
  t.rcv_adv = t.rcv_nxt + std::min<uint32_t>(e.cfg.rcv_buf, 65535);  // our SYN-ACK's window
  init_send_side(t, ack.ack - 1, e.cfg);
  t.snd_una = t.snd_nxt;
  t.snd_mss = std::max(kMinMss, std::min(our_mss(t, e.cfg), peer_mss));
  if (e.cfg.window_scaling && peer_wscale != 0xff) {
    t.flags |= kWsOk;
    t.snd_wscale = std::min(peer_wscale, kMaxWscale);
    t.rcv_wscale = e.cfg.rcv_wscale();
  }
  if (e.cfg.timestamps && ack.opt.has_ts) {
    t.flags |= kTsOk;
    t.ts_recent = ack.opt.ts_val;
  }
  // The right edge as the passive path leaves it after its SYN-ACK (whose
  // segment builder computed the scaled window): without this, the first
  // read of a cookie connection's request flagged a window update for the
  // difference between the SYN-ACK's unscaled 65535 and the scaled window.
  window_field(t, e);
  init_cwnd(t);
  t.snd_wnd = uint32_t(ack.window) << t.snd_wscale;
  t.max_snd_wnd = t.snd_wnd;
  t.snd_wl1 = Seq(ack.seq);
  t.snd_wl2 = Seq(ack.ack);
  t.last_ack_sent = t.rcv_nxt;  // our SYN-ACK acknowledged up to here (RFC 7323 4.3)
  t.last_rcv = e.now;
  e.st.passive_opens++;
  e.st.established++;
  arm_life(t, e);
  out.events |= ev::Established;
}

TcpRepr cookie_syn_ack(const TcpRepr& syn, uint32_t cookie, const Config& c, uint32_t tsval, bool v6) {
  TcpRepr h;
  h.src_port = syn.dst_port;
  h.dst_port = syn.src_port;
  h.seq = cookie;
  h.ack = syn.seq + 1;
  h.flags = F::SYN | F::ACK;
  h.window = uint16_t(std::min<uint32_t>(c.rcv_buf, 65535));
  h.opt.mss = uint16_t(c.mss - (v6 ? kIpv6HeaderExtra : 0));
  if (c.window_scaling && syn.opt.has_wscale()) h.opt.wscale = c.rcv_wscale();
  if (c.timestamps && syn.opt.has_ts) {
    h.opt.has_ts = true;
    h.opt.ts_val = tsval;
    h.opt.ts_ecr = syn.opt.ts_val;
  }
  return h;
}

void open_active(Tcb& t, uint32_t iss, Env& e, Out& out, uint32_t syn_timeout_ms) {
  // OPEN -> SYN-SENT: send <SYN> with every option we support.
  t = Tcb{};
  t.ts_offset = e.ts_offset;
  if (e.v6) t.flags |= kNet6;
  set_state(t, TcpState::SynSent, e.st);
  init_send_side(t, iss, e.cfg);
  t.last_rcv = e.now;
  t.rtt_start = e.now;
  e.st.active_opens++;
  emit_syn(t, e, out, false);
  arm(t, kTmRtx, e.now + t.rto_ms);
  if (syn_timeout_ms) arm(t, kTmLife, e.now + syn_timeout_ms);  // ESTABLISHED re-arms it (arm_life)
}

namespace {

// RFC 6298 5.7: when our SYN (or SYN-ACK) had to be retransmitted and no
// RTT sample exists, the RTO is re-initialised to 3 s once data transfer begins.
void syn_timed_out(Tcb& t) {
  if (t.srtt8 == 0 && t.rto_ms < kMinSynTimeoutRtoMs) t.rto_ms = kMinSynTimeoutRtoMs;
}

// RFC 9293 3.10.7.3: SEGMENT ARRIVES in SYN-SENT.
void syn_sent_arrives(Tcb& t, const TcpRepr& seg, Env& e, Out& out) {
  Seq ack(seg.ack);
  bool ack_ok = false;
  // First, check the ACK bit.
  if (seg.has_ack()) {
    if (ack <= t.snd_una || ack > t.snd_max) {  // SND.UNA is the ISS in SYN-SENT
      if (!seg.rst() && !e.cfg.forgetful) {
        make_seg(t, e, out, ack, F::RST);  // <SEQ=SEG.ACK><CTL=RST>
        e.st.resets_out++;
      }
      return;
    }
    ack_ok = t.snd_una < ack && ack <= t.snd_max;
  }
  // Second, check the RST bit: only an RST that acknowledges our SYN resets.
  if (seg.rst()) {
    if (ack_ok) {
      e.st.resets_in++;
      e.st.closed_reset++;
      finish(t, e, out, ev::Reset);
    } else {
      e.st.resets_ignored++;
    }
    return;
  }
  // Fourth, check the SYN bit (third, security, does not apply).
  if (!seg.syn()) return;  // fifth: neither SYN nor RST, drop
  t.rcv_nxt = Seq(seg.seq) + 1;  // IRS + 1
  t.rcv_adv = t.rcv_nxt + std::min<uint32_t>(e.cfg.rcv_buf, 65535);  // our SYN's window
  t.last_rcv = e.now;
  negotiate(t, seg, e.cfg, true);
  init_cwnd(t);
  t.snd_wnd = seg.window;  // RFC 7323 2.2: unscaled in <SYN,ACK>
  t.max_snd_wnd = t.snd_wnd;
  t.snd_wl1 = Seq(seg.seq);
  if (!seg.payload.empty()) e.st.syn_data_ignored++;
  if (ack_ok) {
    // <SYN,ACK> acknowledging our SYN: SYN-SENT -> ESTABLISHED, send <ACK>.
    t.snd_una = ack;
    t.snd_wl2 = ack;
    if (t.retries == 0) rtt_sample(t, e.cfg, e.now - t.rtt_start);
    else syn_timed_out(t);
    t.retries = 0;
    disarm(t, kTmRtx);
    set_state(t, TcpState::Established, e.st);
    e.st.established++;
    arm_life(t, e);
    // The ACK is owed, not sent here: output() after the event sends it on
    // the request the application answers on_open with, or alone if it
    // sends no data -- one segment fewer per connection for a client that
    // speaks first, as Linux does when data is already waiting at the
    // handshake (tcp_rcv_synsent_state_process).
    t.flags |= kAckNow | kHandshakeAck;
    out.events |= ev::Established;
  } else {
    // A bare SYN: simultaneous open, SYN-SENT -> SYN-RECEIVED, send <SYN,ACK>.
    set_state(t, TcpState::SynReceived, e.st);
    if (!t.has(kWsOk)) t.rcv_wscale = 0;
    emit_syn(t, e, out, true);
    arm(t, kTmRtx, e.now + t.rto_ms);
  }
}

// RFC 9293 3.10.7.4, first check: is the segment acceptable?  Trims it to
// the window; returns false when it must be dropped.
bool check_sequence(Tcb& t, const TcpRepr& seg, Env& e, Out& out, Seq& seq,
                    std::span<const uint8_t>& data, bool& fin) {
  uint32_t wnd = t.rcv_adv > t.rcv_nxt ? uint32_t(t.rcv_adv - t.rcv_nxt) : 0;
  uint32_t len = seg.seg_len();
  Seq s(seg.seq);
  bool ok;
  if (len == 0) ok = wnd == 0 ? s == t.rcv_nxt : in_range(t.rcv_nxt, s, t.rcv_nxt + wnd);
  else ok = wnd != 0 && (in_range(t.rcv_nxt, s, t.rcv_nxt + wnd) ||
                         in_range(t.rcv_nxt, s + (len - 1), t.rcv_nxt + wnd));
  if (!ok && wnd == 0 && s == t.rcv_nxt) {
    // RFC 9293 3.10.7.4: with a zero window, still process ACK, URG and RST
    // of a segment at RCV.NXT; its text and FIN are not accepted.
    // RFC 1122 4.2.2.17 / RFC 9293 3.8.6.2.2: a zero-window probe (text at
    // RCV.NXT) is acknowledged, or the prober cannot tell a live reader from
    // a dead one.
    seq = s;
    data = {};
    fin = false;
    if (len) {
      e.st.zero_window_probes_in++;
      t.flags |= kAckNow;
    }
    return true;
  }
  if (!ok) {
    e.st.unacceptable_segments++;
    if (seg.rst()) return false;
    if (t.state == TcpState::SynReceived && seg.syn() && s + 1 == t.rcv_nxt) {  // the IRS
      // The peer retransmitted its SYN: our <SYN,ACK> was lost, resend it.
      e.st.synack_retransmits++;
      emit_syn(t, e, out, true);
      return false;
    }
    oow_ack(t, e, out, seg);
    return false;
  }
  // Trim to the window: the front (already received), then the tail.
  seq = s;
  data = seg.payload;
  fin = seg.fin();
  if (seg.syn()) seq += 1;  // text starts after the SYN
  if (seq < t.rcv_nxt) {
    uint32_t skip = std::min<uint32_t>(uint32_t(t.rcv_nxt - seq), uint32_t(data.size()));
    data = data.subspan(skip);
    seq += skip;
  }
  Seq edge = t.rcv_nxt + wnd;
  if (seq + uint32_t(data.size()) > edge) {
    data = data.subspan(0, seq < edge ? uint32_t(edge - seq) : 0);
    fin = false;  // the FIN lies beyond the window
  }
  return true;
}

}  // namespace

void on_segment(Tcb& t, const TcpRepr& seg, Env& e, Out& out) {
  e.st.segs_in++;
  if (t.state == TcpState::SynSent) return syn_sent_arrives(t, seg, e, out);
  assert(t.state != TcpState::Closed && t.state != TcpState::Listen &&
         t.state != TcpState::TimeWait);

  // RFC 7323 5.3 (PAWS), before the sequence check: an older timestamp makes
  // the segment unacceptable.  RFC 7323 3.2: once negotiated, a non-RST
  // segment without timestamps is dropped.
  // RFC 7323 5.5: after 24 days idle TS.Recent is invalid and not checked.
  bool ts_recent_valid = uint32_t(e.now - t.last_rcv) < kPawsIdleMs;
  if (t.has(kTsOk) && !seg.rst()) {
    if (!seg.opt.has_ts) {
      e.st.paws_rejected++;
      return;
    }
    if (ts_recent_valid && int32_t(seg.opt.ts_val - t.ts_recent) < 0) {
      e.st.paws_rejected++;
      oow_ack(t, e, out, seg);
      return;
    }
  }

  // RFC 9293 3.10.7.4: first, check sequence number.
  Seq seq;
  std::span<const uint8_t> data;
  bool fin;
  if (!check_sequence(t, seg, e, out, seq, data, fin)) return;
  t.ka_probes = 0;

  // Second, check the RST bit (RFC 5961 3.2: only an exact match resets).
  if (seg.rst()) {
    if (Seq(seg.seq) != t.rcv_nxt) {
      challenge_ack(t, e, out);
      return;
    }
    e.st.resets_in++;
    if (t.state == TcpState::SynReceived && t.has(kPassive)) {
      // RST in a passive SYN-RECEIVED: return to LISTEN (the listener stays).
      e.st.syn_received_dropped++;
      finish(t, e, out, 0);
      return;
    }
    // RST in any other state: the connection is reset, CLOSED.
    e.st.closed_reset++;
    finish(t, e, out, ev::Reset);
    return;
  }

  // Fourth, check the SYN bit (third, security, does not apply).
  if (seg.syn()) {
    if (t.state == TcpState::SynReceived && t.has(kPassive)) {
      // A new SYN in a passive SYN-RECEIVED: return to LISTEN (RFC 9293).
      e.st.syn_received_dropped++;
      finish(t, e, out, 0);
      return;
    }
    // RFC 5961 4.2: any SYN in a synchronized state gets a challenge ACK.
    challenge_ack(t, e, out);
    return;
  }

  // Fifth, check the ACK field.
  if (!seg.has_ack()) return;
  Seq ack(seg.ack);
  if (t.state == TcpState::SynReceived) {
    if (!(t.snd_una < ack && ack <= t.snd_max)) {
      // An unacceptable ACK in SYN-RECEIVED: <SEQ=SEG.ACK><CTL=RST>.
      emit_rst(t, e, out, ack);
      return;
    }
    if (t.retries == 0) rtt_sample(t, e.cfg, e.now - t.rtt_start);  // the SYN-ACK was not retransmitted
    else syn_timed_out(t);
    t.retries = 0;
    t.snd_wl1 = Seq(seg.seq) - 1;  // so the window update below takes this segment
    t.snd_wl2 = ack;
    e.st.established++;
    if (t.has(kFinQueued)) {
      // The ACK of our SYN after a CLOSE in SYN-RECEIVED: the queued FIN can
      // go now, SYN-RECEIVED -> FIN-WAIT-1 (RFC 9293 3.10.4).
      set_state(t, TcpState::FinWait1, e.st);
    } else {
      // The ACK of our SYN: SYN-RECEIVED -> ESTABLISHED.
      set_state(t, TcpState::Established, e.st);
      arm_life(t, e);
      out.events |= ev::Established;
    }
  }
  // RFC 5961 5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT].
  if (ack > t.snd_max) {
    e.st.acks_future++;
    oow_ack(t, e, out, seg);
    return;
  }
  if (ack < t.snd_una - t.max_snd_wnd) {
    e.st.acks_too_old++;
    challenge_ack(t, e, out);
    return;
  }
  // The segment is accepted (no RST, no SYN, an acceptable ACK): only now
  // may it touch the idle clock and TS.Recent.  RFC 7323 4.3: remember the
  // timestamp of the segment at the left edge of the window.
  t.last_rcv = e.now;
  if (t.has(kTsOk) && seg.opt.has_ts && Seq(seg.seq) <= t.last_ack_sent &&
      (!ts_recent_valid || int32_t(seg.opt.ts_val - t.ts_recent) >= 0))
    t.ts_recent = seg.opt.ts_val;
  process_ack(t, seg, e, out);
  switch (t.state) {
    case TcpState::FinWait1:
      if (t.fin_acked()) {
        // Our FIN is acknowledged: FIN-WAIT-1 -> FIN-WAIT-2.
        disarm(t, kTmRtx | kTmPersist);
        set_state(t, TcpState::FinWait2, e.st);
        arm_life(t, e);
      }
      break;
    case TcpState::Closing:
      if (t.fin_acked()) {
        // Our FIN is acknowledged in CLOSING: -> TIME-WAIT.
        enter_time_wait(t, e, out);
        return;
      }
      break;
    case TcpState::LastAck:
      if (t.fin_acked()) {
        // Our FIN is acknowledged in LAST-ACK: -> CLOSED.
        e.st.closed_passive++;
        finish(t, e, out, 0, true);
        return;
      }
      break;
    default:
      break;
  }

  // Sixth, check the URG bit: urgent data is delivered inline.
  if (seg.flags & F::URG) e.st.urg_ignored++;

  // Seventh, process the segment text.
  if (!data.empty()) {
    if (!can_receive(t.state)) {
      // CLOSE-WAIT, CLOSING, LAST-ACK: the peer already sent its FIN.
    } else if (t.has(kOrphan)) {
      // RFC 1122 4.2.2.13: data after a full CLOSE is answered with RST.
      e.st.closed_abort++;
      emit_rst(t, e, out, t.snd_nxt);
      finish(t, e, out, ev::Reset);
      return;
    } else {
      process_text(t, e, out, seq, data);
    }
  }

  // Eighth, check the FIN bit (only a FIN that is next in sequence; a FIN
  // behind a hole is dropped and retransmitted by the peer).
  if (!fin || seq + uint32_t(data.size()) != t.rcv_nxt) return;
  switch (t.state) {
    case TcpState::SynReceived:
    case TcpState::Established:
      // FIN in ESTABLISHED: -> CLOSE-WAIT.
      t.rcv_nxt += 1;
      t.flags |= kAckNow;
      out.events |= ev::PeerFin;
      set_state(t, TcpState::CloseWait, e.st);
      arm_life(t, e);
      break;
    case TcpState::FinWait1:
      t.rcv_nxt += 1;
      t.flags |= kAckNow;
      out.events |= ev::PeerFin;
      if (t.fin_acked()) {
        // FIN that also acknowledges ours: FIN-WAIT-1 -> TIME-WAIT.
        enter_time_wait(t, e, out);
        return;
      }
      // FIN before the ACK of ours: simultaneous close, FIN-WAIT-1 -> CLOSING.
      set_state(t, TcpState::Closing, e.st);
      break;
    case TcpState::FinWait2:
      // FIN in FIN-WAIT-2: -> TIME-WAIT.
      t.rcv_nxt += 1;
      t.flags |= kAckNow;
      out.events |= ev::PeerFin;
      enter_time_wait(t, e, out);
      return;
    default:
      // CLOSE-WAIT, CLOSING, LAST-ACK: the FIN was already consumed; a
      // retransmission of it failed the sequence check and was ACKed there.
      break;
  }
}

namespace {
// The send buffer's room (0 where SEND is refused): what lent bytes need.
size_t send_room(const Tcb& t, const Env& e) {
  if (!can_send(t.state) || t.has(kFinQueued)) return 0;
  // Under memory pressure a flow may queue at most 1/8 of its send buffer.
  uint32_t limit = e.chunks.under_pressure() ? e.cfg.snd_buf / 8 : e.cfg.snd_buf;
  uint32_t queued = queues(t, e.chunks).snd.len;
  return limit > queued ? limit - queued : 0;
}
}  // namespace

size_t send_space(const Tcb& t, const Env& e) {
  size_t by_window = send_room(t, e);
  if (!by_window) return 0;
  const FlowQueues& fq = queues(t, e.chunks);
  const ByteQueue& sndq = fq.snd;
  // Never promise bytes the lcore's chunk pool cannot hold.
  uint32_t free = e.chunks.capacity() - e.chunks.in_use();
  free -= std::min(free, e.reserved_chunks);
  size_t by_pool;
  if (fq.snd_lent) {  // what appending leaves once the lent bytes are in chunks (lend_to_chunks)
    uint32_t need = (sndq.len + ChunkPool::kChunk - 1) / ChunkPool::kChunk;
    by_pool = free >= need ? size_t(free) * ChunkPool::kChunk - sndq.len : 0;
  } else {
    by_pool = (sndq.covered() - sndq.len) + size_t(free) * ChunkPool::kChunk;
  }
  return std::min(by_window, by_pool);
}

size_t send(Tcb& t, std::span<const uint8_t> data, Env& e) {
  size_t n = std::min(data.size(), send_space(t, e));
  if (!n) return 0;
  FlowQueues& fq = queues_w(t, e.chunks);
  ByteQueue& sndq = fq.snd;
  if (!lend_to_chunks(fq, e.chunks) || !bq_unshare_tail(sndq, e.chunks)) {  // a splice seam: the room is the receiver's
    e.st.snd_pool_exhausted++;
    return 0;
  }
  size_t done = bq_append(sndq, e.chunks, data.data(), n);
  if (done < n) e.st.snd_pool_exhausted++;
  return done;
}

size_t send_lent(Tcb& t, std::span<const uint8_t> data, Env& e) {
  // Only into an empty queue, and only whole: the queue then holds just
  // these bytes (a later send copies them into chunks first).  They take
  // no chunk, so only the send buffer's room bounds them.
  const FlowQueues& now = queues(t, e.chunks);
  if (data.empty() || data.size() > send_room(t, e) || now.snd.len != 0 || now.snd.nchunks != 0)
    return send(t, data, e);
  FlowQueues& fq = queues_w(t, e.chunks);
  fq.snd_lent = data.data();
  fq.snd.len = uint32_t(data.size());
  e.st.snd_lent_bytes += data.size();
  return data.size();
}

namespace {
// Bytes left the receive queue (read or spliced): RFC 9293 3.8.6.2.2, announce
// a window that opened by 2*MSS or half the buffer.
bool worth_update(const Tcb& t, const Env& e, Seq after) {
  return synchronized(t.state) &&
         uint32_t(after - t.rcv_adv) >= std::min<uint32_t>(2u * t.snd_mss, e.cfg.rcv_buf / 2);
}
void window_update(Tcb& t, Env& e) {
  t.flags |= kAckNow;
  e.st.window_updates++;
}
void window_opened(Tcb& t, Env& e, Seq before) {
  Seq after = window_edge(t, e.cfg, e.chunks);
  if (after != before && worth_update(t, e, after)) window_update(t, e);
}
}  // namespace

void consume(Tcb& t, size_t n, Env& e) {
  n = std::min<size_t>(n, queues(t, e.chunks).rcv.len);
  if (!n) return;
  Seq before = window_edge(t, e.cfg, e.chunks);
  bq_consume(e.chunks.queues(t.q).rcv, e.chunks, n);
  window_opened(t, e, before);
}

void consume_held(Tcb& t, size_t n, Env& e, Out& out) {
  n = std::min<size_t>(n, out.held_len);
  if (!n) return;
  out.held += n;
  out.held_len -= uint32_t(n);
  // As window_opened(), the edge before found only when it matters: nothing
  // of the pool changed, so it is the edge with the n bytes still held.
  Seq after = window_edge(t, e.cfg, e.chunks, out.held_len);
  if (worth_update(t, e, after) && after != window_edge(t, e.cfg, e.chunks, out.held_len + uint32_t(n)))
    window_update(t, e);
}

bool keep_held(Tcb& t, Env& e, Out& out) {
  if (!out.held_len) return true;
  ByteQueue& rcvq = queues_w(t, e.chunks).rcv;
  assert(rcvq.len == 0);  // held bytes come first, and nothing else arrived in the event
  bool ok = bq_write_at(rcvq, e.chunks, rcvq.len, out.held, out.held_len);
  if (ok) rcvq.len += out.held_len;
  else e.st.rcv_buf_full++;
  out.held_len = 0;  // (held_len says whether there are any, as Out::reset leaves it)
  return ok;
}

size_t splice(Tcb& from, Tcb& to, size_t n, Env& e, bool all) {
  const ByteQueue& held = queues(from, e.chunks).rcv;
  n = std::min({n, size_t(held.len), all ? size_t(held.len) : send_space(to, e)});
  if (all && !can_send(to.state)) n = 0;
  if (!n) {
    // Nothing to move: an empty receive queue holding only the seam chunk
    // that the send side has since released lets it go (an idle proxied
    // flow holds no memory).
    if (held.len == 0 && held.nchunks == 1 && !e.chunks.shared(held.head))
      bq_clear(e.chunks.queues(from.q).rcv, e.chunks);
    return 0;
  }
  Seq before = window_edge(from, e.cfg, e.chunks);
  FlowQueues& tofq = queues_w(to, e.chunks);  // before `from`'s: may take headers
  size_t copied = lend_to_chunks(tofq, e.chunks) ? bq_splice(e.chunks.queues(from.q).rcv, tofq.snd, e.chunks, n)
                                                 : SIZE_MAX;
  if (copied == SIZE_MAX) {
    e.st.snd_pool_exhausted++;
    return 0;
  }
  e.st.spliced_bytes += n;
  e.st.splice_copied_bytes += copied;
  window_opened(from, e, before);
  return n;
}

namespace {
// The FIN transitions of CLOSE (RFC 9293 3.10.4): ESTABLISHED -> FIN-WAIT-1,
// CLOSE-WAIT -> LAST-ACK, the FIN after the queued data; false elsewhere.
bool queue_fin(Tcb& t, Env& e) {
  TcpState next;
  if (t.state == TcpState::Established) next = TcpState::FinWait1;
  else if (t.state == TcpState::CloseWait) next = TcpState::LastAck;
  else return false;
  t.flags |= kFinQueued;
  disarm(t, kTmLife);
  set_state(t, next, e.st);
  return true;
}
}  // namespace

void shutdown_send(Tcb& t, Env& e) { queue_fin(t, e); }

void output(Tcb& t, Env& e, Out& out) {
  bool sending = t.state == TcpState::Established || t.state == TcpState::CloseWait ||
                 t.state == TcpState::FinWait1 || t.state == TcpState::Closing ||
                 t.state == TcpState::LastAck;
  const uint32_t mss = eff_mss(t);
  if (t.has(kHandshakeAck)) {
    // The handshake's ACK (syn_sent_arrives): it rides on data the
    // application queued in on_open; with none (nothing, or only a FIN)
    // it goes out alone first, so a FIN sent at once still crosses the
    // peer's (a simultaneous close) instead of arriving with the ACK.
    t.flags &= uint16_t(~kHandshakeAck);
    if (t.has(kAckNow) && queues(t, e.chunks).snd.len == 0) emit_ack(t, e, out);
  }
  while (sending) {
    if (out.full()) {
      out.more = true;
      return;
    }
    const uint32_t queued = queues(t, e.chunks).snd.len;
    uint32_t sent_data = std::min(t.in_flight(), queued);
    uint32_t unsent = queued - sent_data;
    uint32_t wnd = std::min(t.snd_wnd, t.cwnd);
    uint32_t usable = wnd > t.in_flight() ? wnd - t.in_flight() : 0;
    bool fin_due = t.has(kFinQueued) && unsent == 0 && t.snd_nxt == t.snd_una + queued &&
                   (!t.has(kFinSent) || t.snd_nxt < t.snd_max);
    if (unsent > 0) {
      uint32_t len = std::min({unsent, mss, usable});
      // RFC 9293 3.8.6.2.1: send a full segment, all that is queued, or at
      // least half the largest window the peer offered.
      bool ok = len > 0 && (len == mss || len == unsent || len >= t.max_snd_wnd / 2);
      if (!ok) {
        if (!(t.timers & (kTmRtx | kTmPersist)) && t.in_flight() == 0)
          arm(t, kTmPersist, e.now + backoff(t, e.cfg));
        break;
      }
      bool fin = t.has(kFinQueued) && len == unsent;
      if (!t.has(kRttTiming) && !t.has(kTsOk) && t.snd_nxt == t.snd_max) {
        t.flags |= kRttTiming;
        t.rtt_seq = t.snd_nxt;
        t.rtt_start = e.now;
      }
      emit_data(t, e, out, t.snd_nxt, len, fin, len == unsent);
      t.snd_nxt += len + (fin ? 1 : 0);
      if (fin) t.flags |= kFinSent;
      t.snd_max = max(t.snd_max, t.snd_nxt);
      if (!(t.timers & kTmRtx)) {
        disarm(t, kTmPersist);
        arm(t, kTmRtx, e.now + backoff(t, e.cfg));
      }
      continue;
    }
    if (fin_due) {
      // A bare FIN (see the note at the top about zero windows).
      emit_data(t, e, out, t.snd_nxt, 0, true, false);
      t.snd_nxt += 1;
      t.flags |= kFinSent;
      t.snd_max = max(t.snd_max, t.snd_nxt);
      if (!(t.timers & kTmRtx)) {
        disarm(t, kTmPersist);
        arm(t, kTmRtx, e.now + backoff(t, e.cfg));
      }
      continue;
    }
    break;
  }
  if (t.has(kAckNow) && t.state != TcpState::SynSent && t.state != TcpState::Closed) emit_ack(t, e, out);
}

void on_timer(Tcb& t, Env& e, Out& out) {
  const Config& c = e.cfg;
  // Delayed ACK (RFC 9293 3.8.6.3).
  if ((t.timers & kTmDelAck) && time_reached(e.now, t.delack_at)) {
    disarm(t, kTmDelAck);
    e.st.delayed_acks++;
    t.flags |= kAckNow;
  }
  // Retransmission (RFC 6298 5.4-5.7) and zero-window probes (RFC 9293 3.8.6.1).
  if ((t.timers & (kTmRtx | kTmPersist)) && time_reached(e.now, t.rtx_at)) {
    bool persist = t.timers & kTmPersist;
    disarm(t, kTmRtx | kTmPersist);
    uint8_t limit = t.state == TcpState::SynSent       ? c.syn_retries
                    : t.state == TcpState::SynReceived ? c.synack_retries
                    : t.has(kOrphan)                   ? c.orphan_retries
                                                       : c.data_retries;
    if (e.flow_pressure && t.has(kOrphan) && limit > 1) {
      limit = 1;
      if (t.retries >= 1) e.st.orphans_reclaimed++;
    }
    // Retransmissions count toward giving up in `retries`; zero-window probes
    // in `probes` (an ACK of a probe resets it for a live reader), while
    // `retries` keeps growing as the backoff shift.
    bool give_up = persist ? ++t.probes > limit : ++t.retries > limit;
    if (persist && t.retries < kMaxBackoffShift) t.retries++;
    if (give_up) {
      if (persist) e.st.timeout_persist++;
      if (t.state == TcpState::SynReceived && t.has(kPassive)) {
        // The handshake never completed: back to LISTEN, silently.
        e.st.timeout_syn_received++;
        e.st.syn_received_dropped++;
        finish(t, e, out, 0);
        return;
      }
      drop_on_timeout(t, e, out);
      return;
    }
    if (persist) {
      // Probe with (at least) one octet of new data beyond the window; with
      // no data left, the FIN is the probe.
      e.st.persist_probes++;
      const uint32_t queued = queues(t, e.chunks).snd.len;
      uint32_t unsent = queued - std::min(t.in_flight(), queued);
      uint32_t wnd = std::min(t.snd_wnd, t.cwnd);
      uint32_t usable = wnd > t.in_flight() ? wnd - t.in_flight() : 0;
      uint32_t len = std::min({unsent, eff_mss(t), std::max<uint32_t>(usable, 1)});
      if (len) {
        emit_data(t, e, out, t.snd_nxt, len, false, len == unsent);
        if (usable >= len) {
          t.snd_nxt += len;  // the window had room: a real (SWS-override) send
          t.snd_max = max(t.snd_max, t.snd_nxt);
        } else {
          t.snd_max = max(t.snd_max, t.snd_nxt + len);  // the peer may accept the probe
        }
      } else if (t.has(kFinQueued) && !t.fin_acked() && !out.full()) {
        Seq fin_seq = t.snd_una + queued;
        emit_data(t, e, out, fin_seq, 0, true, false);
        t.flags |= kFinSent;
        t.snd_max = max(t.snd_max, fin_seq + 1);
      }
      if (t.in_flight() > 0) arm(t, kTmRtx, e.now + backoff(t, c));
      else arm(t, kTmPersist, e.now + backoff(t, c));
    } else {
      e.st.rto_expired++;
      t.flags &= uint16_t(~kRttTiming);  // Karn: no sample from a retransmission
      if (t.state == TcpState::SynSent) {
        e.st.syn_retransmits++;
        emit_syn(t, e, out, false);
      } else if (t.state == TcpState::SynReceived) {
        e.st.synack_retransmits++;
        emit_syn(t, e, out, true);
      } else {
        // RFC 5681 3.1 (4): ssthresh = max(FlightSize/2, 2*SMSS) on the first
        // timeout of a segment (held constant when it times out again),
        // cwnd = 1 SMSS; go back to SND.UNA.
        uint32_t mss = eff_mss(t);
        if (t.retries == 1) t.ssthresh = std::max(t.flight_size() / 2, 2 * mss);
        t.cwnd = mss;
        t.flags &= uint16_t(~kInRecovery);
        t.dupacks = 0;
        t.recover = t.snd_max;
        t.snd_nxt = t.snd_una;
        arm(t, kTmRtx, e.now + backoff(t, c));  // before output(): keep the backoff
        // The segment at SND.UNA is retransmitted whatever the peer's window
        // says (a closed window must not silence the timer: the reply tells a
        // live peer from a dead one); output() then sends what the window allows.
        const uint32_t queued = queues(t, e.chunks).snd.len;
        uint32_t len = std::min(mss, queued);
        bool fin = t.has(kFinSent) && len == queued;
        if ((len || fin) && !out.full()) {
          emit_data(t, e, out, t.snd_una, len, fin, len > 0 && len == queued);
          t.snd_nxt += len + (fin ? 1 : 0);
          t.snd_max = max(t.snd_max, t.snd_nxt);
        }
        output(t, e, out);
        return;
      }
      arm(t, kTmRtx, e.now + backoff(t, c));
    }
  }
  // Idle timeout, keep-alive, FIN-WAIT-2 timeout.
  if ((t.timers & kTmLife) && time_reached(e.now, t.life_at)) {
    disarm(t, kTmLife);
    if (t.state == TcpState::SynSent) {
      // The opener's connect timeout (open_active with syn_timeout_ms).
      e.st.timeout_syn_sent++;
      e.st.closed_timeout++;
      finish(t, e, out, ev::TimedOut);
      return;
    }
    if (t.state == TcpState::FinWait2 && !t.has(kOrphan) &&
        e.now - t.last_rcv < c.fin_wait_2_timeout_ms) {
      // A half-close (shutdown_send) whose peer is still sending: the
      // bound is on silence, not on the length of the reply.
      arm(t, kTmLife, t.last_rcv + c.fin_wait_2_timeout_ms);
    } else if (t.state == TcpState::FinWait2) {
      // An orphaned FIN-WAIT-2 is reclaimed (Linux tcp_fin_timeout, FreeBSD
      // tcp_finwait2_timeout): no RST, the peer may already be gone.
      e.st.timeout_fin_wait_2++;
      e.st.closed_timeout++;
      finish(t, e, out, ev::TimedOut);
      return;
    }
    if (t.state == TcpState::Established || t.state == TcpState::CloseWait) {
      uint32_t idle = e.now - t.last_rcv;
      if (c.idle_timeout_ms) {
        if (idle >= c.idle_timeout_ms) {
          // The load balancer's client timeout: close gracefully.
          e.st.timeout_idle++;
          close(t, e, out);
          out.events |= ev::TimedOut;
        } else {
          arm(t, kTmLife, t.last_rcv + c.idle_timeout_ms);
        }
      } else if (idle < c.keepalive_idle_ms && t.ka_probes == 0) {
        arm(t, kTmLife, t.last_rcv + c.keepalive_idle_ms);
      } else if (t.ka_probes >= c.keepalive_probes) {
        e.st.timeout_keepalive++;
        drop_on_timeout(t, e, out);
        return;
      } else {
        // RFC 9293 3.8.4: a keep-alive probe is <SEQ=SND.NXT-1> with no data.
        t.ka_probes++;
        e.st.keepalive_probes++;
        if (!out.full()) make_seg(t, e, out, t.snd_una - 1, F::ACK);
        arm(t, kTmLife, e.now + c.keepalive_intvl_ms);
      }
    }
  }
  if (t.state != TcpState::Closed) output(t, e, out);
}

void close(Tcb& t, Env& e, Out& out) {
  t.flags |= kOrphan;
  switch (t.state) {
    case TcpState::SynSent:
      // CLOSE in SYN-SENT: delete the TCB.
      e.st.closed_abort++;
      finish(t, e, out, 0);
      return;
    case TcpState::SynReceived:
      // CLOSE in SYN-RECEIVED: our SYN is not acknowledged yet, so the FIN is
      // queued "for processing after entering ESTABLISHED" (RFC 9293 3.10.4)
      // and the SYN-ACK keeps its retransmission timer.
      t.flags |= kFinQueued;
      return;
    case TcpState::Established:
      // CLOSE in ESTABLISHED: queue a FIN, -> FIN-WAIT-1.
      if (queues(t, e.chunks).rcv.len > 0) {
        // RFC 1122 4.2.2.13: unread data at CLOSE is answered with RST.
        abort(t, e, out);
        return;
      }
      queue_fin(t, e);  // -> FIN-WAIT-1
      break;
    case TcpState::CloseWait:
      // CLOSE in CLOSE-WAIT: queue a FIN, -> LAST-ACK.
      queue_fin(t, e);
      break;
    default:
      return;  // already closing
  }
  output(t, e, out);
}

void abort(Tcb& t, Env& e, Out& out) {
  // ABORT: RST in the synchronized states and SYN-RECEIVED, then CLOSED.
  if (t.state >= TcpState::SynReceived) emit_rst(t, e, out, t.snd_nxt);
  e.st.closed_abort++;
  finish(t, e, out, 0);
}

void release(Tcb& t, Env& e) {
  if (t.q == kNil) return;
  FlowQueues& q = e.chunks.queues(t.q);
  snd_clear(q, e.chunks);
  bq_clear(q.rcv, e.chunks);
  if (q.ooo != kNil) {
    e.ooo.free(q.ooo, e.chunks);
    q.ooo = kNil;
  }
  e.chunks.queues_free(t.q);
  t.q = kNil;
}

FlowQueues& queues_w(Tcb& t, ChunkPool& p) {
  if (t.q == kNil) {
    t.q = p.queues_alloc();
    if (t.q == kNil) {
      std::fprintf(stderr, "tcpterm: queue headers exhausted (sized to the flow table)\n");
      std::abort();
    }
  }
  return p.queues(t.q);
}

bool next_deadline(const Tcb& t, uint32_t& at) {
  bool any = false;
  auto take = [&](uint8_t bit, uint32_t d) {
    if (!(t.timers & bit)) return;
    if (!any || int32_t(d - at) < 0) at = d;
    any = true;
  };
  take(kTmRtx | kTmPersist, t.rtx_at);
  take(kTmDelAck, t.delack_at);
  take(kTmLife, t.life_at);
  return any;
}

bool check_invariants(const Tcb& t, const ChunkPool& chunks) {
  if (t.state == TcpState::Closed || t.state == TcpState::Listen ||
      t.state == TcpState::TimeWait)
    return true;
  if (t.timers == 0) return false;
  if ((t.timers & kTmRtx) && (t.timers & kTmPersist)) return false;
  if (!(t.snd_una <= t.snd_nxt && t.snd_nxt <= t.snd_max)) return false;
  // Everything sent is accounted for: our SYN (until acknowledged), the
  // queued bytes, our FIN.
  uint32_t syn_unacked = t.state == TcpState::SynSent || t.state == TcpState::SynReceived ? 1 : 0;
  if (t.snd_una + syn_unacked + queues(t, chunks).snd.len + (t.has(kFinSent) ? 1 : 0) < t.snd_max)
    return false;
  // Lent bytes: the queue holds them alone, with no chunk.
  const FlowQueues& fq = queues(t, chunks);
  if (fq.snd_lent && (fq.snd.nchunks != 0 || fq.snd.len == 0 || fq.snd.head != kNil || fq.snd.off != 0))
    return false;
  // Something in flight is always covered by the retransmission timer.
  if (t.snd_una < t.snd_max && !(t.timers & (kTmRtx | kTmPersist))) return false;
  return true;
}

bool reset_for(const TcpRepr& in, TcpRepr& rst) {
  if (in.rst()) return false;  // never answer an RST
  rst = TcpRepr{};
  rst.src_port = in.dst_port;
  rst.dst_port = in.src_port;
  if (in.has_ack()) {
    // <SEQ=SEG.ACK><CTL=RST>
    rst.seq = in.ack;
    rst.flags = F::RST;
  } else {
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    rst.seq = 0;
    rst.ack = in.seq + in.seg_len();
    rst.flags = F::RST | F::ACK;
  }
  return true;
}

}  // namespace tcpterm::tcp
