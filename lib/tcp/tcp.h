// The RFC 9293 state machine, decided in the core and acted upon at the edge.
//
// Every entry point takes the TCB, an Env (configuration, counters, buffer
// pools, the current lcore time) and an Out, and fills Out with what to do:
// segments to emit, application events, and what becomes of the flow
// (keep, convert to a TIME-WAIT record, free).  Nothing here reads a clock,
// allocates, or touches DPDK.
//
// The edge calls, per event:   on_segment / on_timer / app call
//                              -> application callbacks (may send / close)
//                              -> output()    (data, FIN, owed ACK)
//                              -> re-arm the flow's wheel entry at next_deadline()
//
// Data segments in Out carry only a length: their bytes are those of the
// send queue at position (seg.seq - tcb.snd_una), to be copied by the edge
// right after the call returns.
#pragma once
#include <array>
#include <cstdint>
#include <span>

#include "tcp/buffer.h"
#include "tcp/config.h"
#include "tcp/stats.h"
#include "tcp/tcb.h"
#include "wire/wire.h"

namespace tcpterm::tcp {

inline constexpr uint16_t kMinMss = 216;  // MSS clamp floor (FreeBSD net.inet.tcp.minmss)
inline constexpr uint8_t kMaxWscale = 14;  // RFC 7323 2.3
inline constexpr uint8_t kMaxBackoffShift = 20;  // RTO << 20 is far beyond rto_max_ms

struct Env {
  const Config& cfg;
  Stats& st;
  ChunkPool& chunks;
  OooPool& ooo;
  uint32_t now = 0;  // lcore clock, milliseconds (TSval = now + the TCB's ts_offset)
  uint32_t ts_offset = 0;  // for open_*(): the new connection's RFC 7323 7.1 offset
  bool v6 = false;  // for open_*(): the new connection is over IPv6 (Tcb kNet6)
  // The flow table is nearly full (lib/stack): an orphan whose FIN has
  // already been retransmitted once gives up at its next timeout (RST)
  // instead of waiting out orphan_retries (Linux: tcp_out_of_resources).
  bool flow_pressure = false;
  // The event's caller delivers in-order text from the segment itself
  // (Out::held) and keeps what the application leaves (keep_held): set by
  // lib/stack for segment events only.
  bool rcv_in_place = false;
  // Buffer chunks promised to bytes held in place (keep_held may still
  // need them): send_space() does not offer them.
  uint32_t reserved_chunks = 0;
};

// Chunks needed for n bytes in a fresh queue (plus one for a partial tail).
inline uint32_t chunks_for(uint32_t n) { return n / ChunkPool::kChunk + 2; }

// The MSS we offer and accept: Config::mss is IPv4's on the link MTU; an
// IPv6 header is 20 bytes longer (1500 -> 1440).
inline constexpr uint16_t kIpv6HeaderExtra = 20;
inline uint16_t our_mss(const Tcb& t, const Config& c) {
  return uint16_t(c.mss - (t.has(kNet6) ? kIpv6HeaderExtra : 0));
}

inline constexpr uint32_t kPressureWindowSegs = 4;  // Linux: rcv_ssthresh clamped to 4*advmss under pressure
inline constexpr uint32_t kPawsIdleMs = 24u * 86400u * 1000u;  // RFC 7323 5.5: TS.Recent invalid after 24 days idle
inline constexpr uint32_t kMinSynTimeoutRtoMs = 3000;           // RFC 6298 5.7

enum class FlowOp : uint8_t { Keep, ToTimeWait, Free };

// Application-visible events raised by a call.
namespace ev {
inline constexpr uint8_t Established = 1, Readable = 2, PeerFin = 4, Reset = 8, Writable = 16,
                         Closed = 32, TimedOut = 64;
}

struct OutSeg {
  wire::TcpRepr h;        // ports left zero: the edge fills them from the flow key
  uint32_t data_len = 0;  // bytes from the send queue at (h.seq - snd_una)
};

struct Out {
  static constexpr int kMax = 64;
  std::array<OutSeg, kMax> seg;
  uint8_t n = 0;
  uint8_t events = 0;
  FlowOp op = FlowOp::Keep;
  bool more = false;  // output() stopped at kMax segments: call it again
  // In-order text read in place (Env::rcv_in_place): already received
  // (RCV.NXT covers it), not yet in the receive queue, ahead of anything
  // queued.  It lives in the segment, so only until the event ends.
  const uint8_t* held = nullptr;
  uint32_t held_len = 0;

  bool full() const { return n == kMax; }
  OutSeg& push() { return seg[n++]; }
  void reset() { n = 0; events = 0; op = FlowOp::Keep; more = false; held_len = 0; }
};

// ------------------------------------------------------------- opening ---
// LISTEN + SYN (RFC 9293 3.10.7.2): the new TCB goes to SYN-RECEIVED and a
// SYN-ACK is emitted.
void open_passive(Tcb& t, const wire::TcpRepr& syn, uint32_t iss, Env& e, Out& out);
// LISTEN + an ACK returning a valid SYN cookie (RFC 4987): the TCB starts in
// ESTABLISHED from what the cookie and the ACK carry.  The caller then runs
// on_segment() with the same ACK for its text or FIN.
void open_from_cookie(Tcb& t, const wire::TcpRepr& ack, uint16_t peer_mss, uint8_t peer_wscale,
                      Env& e, Out& out);
// The stateless <SYN,ACK> answering `syn` with ISS = cookie.
wire::TcpRepr cookie_syn_ack(const wire::TcpRepr& syn, uint32_t cookie, const Config& c, uint32_t tsval,
                             bool v6 = false);
// OPEN call, active (RFC 9293 3.10.1): SYN-SENT, SYN emitted.  With
// syn_timeout_ms, the open fails (TimedOut, CLOSED) if not ESTABLISHED by
// then, whatever the SYN retries would allow (a proxy's connect timeout).
void open_active(Tcb& t, uint32_t iss, Env& e, Out& out, uint32_t syn_timeout_ms = 0);

// ------------------------------------------------------------- events ---
// SEGMENT ARRIVES (RFC 9293 3.10.7.3 / 3.10.7.4) for a TCB in any state
// other than CLOSED, LISTEN and TIME-WAIT (see time_wait.h for the latter).
void on_segment(Tcb& t, const wire::TcpRepr& seg, Env& e, Out& out);
// Handles every deadline that has been reached (RFC 9293 3.10.8).
void on_timer(Tcb& t, Env& e, Out& out);
// Sends what the windows allow: data, FIN, an owed ACK.
void output(Tcb& t, Env& e, Out& out);

// ------------------------------------------------------- user calls ---
// SEND (RFC 9293 3.10.2): queues up to data.size() bytes, bounded by
// Config::snd_buf and the chunk pool; returns bytes queued.
size_t send(Tcb& t, std::span<const uint8_t> data, Env& e);
// SEND of bytes the application lends (its constant data, such as a
// prepared response): when the send queue is empty and all of them fit,
// the queue refers to them instead of copying them into chunks
// (FlowQueues::snd_lent); they are read from there for every
// (re)transmission until acknowledged.  Otherwise as send().  The bytes
// must stay valid and unchanged until the flow ends.  Returns bytes queued.
size_t send_lent(Tcb& t, std::span<const uint8_t> data, Env& e);
size_t send_space(const Tcb& t, const Env& e);
// The application consumed n bytes of the receive queue (RECEIVE); may owe a
// window update.
void consume(Tcb& t, size_t n, Env& e);
// The same for bytes held in place (Out::held, n <= held_len): the window
// opens as if they had been queued.
void consume_held(Tcb& t, size_t n, Env& e, Out& out);
// The held bytes the application left go into the receive queue (they are
// already received).  False if the chunk pool could not take them: by
// construction it can (process_text holds bytes in place only when the pool
// has room for them, and lib/stack moves them before anything of the event
// allocates), so the caller treats false as an error.
bool keep_held(Tcb& t, Env& e, Out& out);
// Moves up to n received bytes of `from` to the send queue of `to` by
// handing over buffer chunks (ByteQueue splice): bounded by what `to` may
// queue; `from`'s window opens as with consume().  Returns bytes moved.
// `all`: ignore `to`'s send space (`from` is ending: what it holds moves,
// which adds nothing to the memory the two flows hold).
size_t splice(Tcb& from, Tcb& to, size_t n, Env& e, bool all = false);
// CLOSE as a half-close (RFC 9293 3.10.4 "I have no more to send"): the FIN
// follows the queued data and the application keeps reading (a proxy
// relaying a FIN).  No effect outside SYN-RECEIVED, ESTABLISHED, CLOSE-WAIT.
void shutdown_send(Tcb& t, Env& e);
// CLOSE (RFC 9293 3.10.4), a full close: the application reads no more
// (RFC 1122 4.2.2.13: unread or later data is answered with RST).
void close(Tcb& t, Env& e, Out& out);
// ABORT (RFC 9293 3.10.5): RST in synchronized states, then free.
void abort(Tcb& t, Env& e, Out& out);
// Returns buffers and out-of-order state to their pools (before freeing or
// converting the TCB).
void release(Tcb& t, Env& e);

// Single writer of Tcb::state; keeps the per-state gauges.
void set_state(Tcb& t, TcpState s, Stats& st);

// The earliest armed deadline; false when no timer is armed.
bool next_deadline(const Tcb& t, uint32_t& at);
// Every state but CLOSED and LISTEN has a timer armed, and the sequence
// variables are ordered (SND.UNA <= SND.NXT <= SND.MAX).
bool check_invariants(const Tcb& t, const ChunkPool& chunks);

// RFC 9293 3.10.7.1: the reply to a segment that matches no connection (or
// reaches a LISTEN with ACK set); false when none is due (an RST).
bool reset_for(const wire::TcpRepr& in, wire::TcpRepr& rst);

// The window field for segments we send.
uint16_t window_field(Tcb& t, const Env& e);

}  // namespace tcpterm::tcp
