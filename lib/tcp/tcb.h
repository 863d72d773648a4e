// The Transmission Control Block (RFC 9293 3.3.1), with the RFC's names.
//
// Timers are data: up to four deadlines (32-bit milliseconds of the lcore
// clock) and a bitmask of which are armed.  The engine keeps one wheel entry
// per flow, armed at next_deadline(); the TCB never holds a pointer to the
// wheel.  The flow key and application state live beside the TCB in the flow
// record (lib/stack), not in it.
#pragma once
#include <bit>
#include <cstdint>

#include "tcp/buffer.h"
#include "tcp/seq.h"
#include "tcp/state.h"

namespace tcpterm::tcp {

// Armed timers (Tcb::timers).  Retransmission and persist share rtx_at: a
// zero-window probe is only due when nothing is in flight.
enum TimerBit : uint8_t {
  kTmRtx = 1,      // SYN / SYN-ACK / data / FIN retransmission (RFC 6298)
  kTmPersist = 2,  // zero-window probe (RFC 9293 3.8.6.1)
  kTmDelAck = 4,   // delayed ACK (RFC 9293 3.8.6.3)
  kTmLife = 8,     // idle timeout or keep-alive (ESTABLISHED, CLOSE-WAIT), FIN-WAIT-2 timeout
};

enum TcbFlag : uint16_t {
  kTsOk = 1 << 0,        // RFC 7323 timestamps negotiated
  kWsOk = 1 << 1,        // RFC 7323 window scaling negotiated
  kFinQueued = 1 << 2,   // CLOSE issued: FIN follows the queued data
  kFinSent = 1 << 3,     // our FIN has been sent at least once (SND.MAX covers it)
  kAckNow = 1 << 4,      // an ACK is owed without delay
  kPassive = 1 << 5,     // opened from LISTEN (RFC 9293: SYN-RECEIVED returns to LISTEN)
  kOrphan = 1 << 6,      // the application has closed: no more reads
  kInRecovery = 1 << 7,  // NewReno fast recovery (RFC 6582)
  kRttTiming = 1 << 8,   // timing one segment for an RTT sample (no timestamps)
  kNet6 = 1 << 9,        // over IPv6 (the MSS: tcp.h our_mss)
  kHandshakeAck = 1 << 10,  // our active open's closing ACK is owed (output() decides: with data or alone)
};
// Every flag its own bit (two once shared one: clearing the handshake's ACK
// cleared kNet6 and a retransmitted IPv6 SYN-ACK offered the IPv4 MSS).
static_assert(std::popcount(unsigned(kTsOk | kWsOk | kFinQueued | kFinSent | kAckNow | kPassive | kOrphan |
                                     kInRecovery | kRttTiming | kNet6 | kHandshakeAck)) == 11,
              "TcbFlag values must be distinct bits");

struct Tcb {
  TcpState state = TcpState::Closed;
  uint8_t timers = 0;       // TimerBit
  uint16_t flags = 0;       // TcbFlag
  uint8_t snd_wscale = 0;   // shift applied to the peer's window field
  uint8_t rcv_wscale = 0;   // shift the peer applies to ours
  uint8_t retries = 0;      // consecutive RTO expiries or persist probes (the backoff shift)
  uint8_t probes = 0;       // zero-window probes not answered (reset by an ACK unless orphaned)
  uint8_t dupacks = 0;
  uint8_t ka_probes = 0;    // unanswered keep-alive probes
  uint8_t delack_segs = 0;  // in-order segments received and not yet ACKed
  uint16_t snd_mss = 536;   // RFC 9293 3.7.1: 536 without an MSS option

  // ISS and IRS are not kept: while our SYN is unacknowledged SND.UNA is
  // the ISS, and in SYN-RECEIVED (where a SYN's text is never accepted)
  // RCV.NXT - 1 is the IRS; no later state needs either.
  Seq snd_una, snd_nxt, snd_max;  // SND.MAX: highest sequence ever sent (+1)
  Seq snd_wl1, snd_wl2;
  Seq rcv_nxt;
  Seq rcv_adv;                    // right edge of the window we advertised
  Seq recover;                    // RFC 6582
  Seq last_ack_sent;              // RFC 7323 4.3
  Seq rtt_seq;
  uint32_t snd_wnd = 0, max_snd_wnd = 0;
  uint32_t cwnd = 0, ssthresh = 0;
  uint32_t srtt8 = 0, rttvar4 = 0, rto_ms = 0;  // RFC 6298, scaled by 8 and 4
  uint32_t rtt_start = 0;
  uint32_t ts_recent = 0;
  uint32_t ts_offset = 0;   // RFC 7323 7.1: our TSval = lcore clock + a per-connection offset

  uint32_t rtx_at = 0, delack_at = 0, life_at = 0;
  uint32_t last_rcv = 0;        // time of the last segment received (idle, keep-alive)
  uint32_t last_challenge = 0;  // RFC 5961 7 rate limit, per flow

  uint32_t q = kNil;  // the flow's queues (FlowQueues in the ChunkPool), kNil while it holds no bytes

  bool has(uint16_t f) const { return flags & f; }
  bool fin_acked() const { return has(kFinSent) && snd_una == snd_max; }
  uint32_t in_flight() const { return uint32_t(snd_nxt - snd_una); }
  // RFC 5681 FlightSize: everything sent and not yet acknowledged (SND.MAX,
  // not SND.NXT, which an RTO rewinds).
  uint32_t flight_size() const { return uint32_t(snd_max - snd_una); }
  uint32_t ts_now(uint32_t now) const { return now + ts_offset; }
};

inline constexpr FlowQueues kNoQueues{};
// The flow's queues to read: empty ones when it holds none.
inline const FlowQueues& queues(const Tcb& t, const ChunkPool& p) {
  return t.q == kNil ? kNoQueues : p.queues(t.q);
}
// The flow's queues to write: the headers are taken on first use (the pool
// holds one per flow of the stack, so a flow always gets them).
FlowQueues& queues_w(Tcb& t, ChunkPool& p);
// Gives the headers back once nothing is queued (the stack calls it after
// each event of the flow).
inline void queues_trim(Tcb& t, ChunkPool& p) {
  if (t.q != kNil && p.queues(t.q).idle()) {
    p.queues_free(t.q);
    t.q = kNil;
  }
}

}  // namespace tcpterm::tcp
