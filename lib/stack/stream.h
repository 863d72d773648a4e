// The stream interface between the per-lcore stack and its applications
// (echo, discard, http, the load-balancer proxy, health checks).
//
// An application is one object per listener (or per active-open profile); a
// flow is handed to it as a Stream, a cheap handle valid only during the
// callback.  Callbacks never re-enter.
//
// Event scope: every event (a segment, a timer, an application's own action
// from outside a callback) has one owner flow and one EventScope, which a
// Stream carries.  What an application does to the owner is collected in the
// scope's output and sent when the callback returns.  It may also act on any
// other flow of the lcore (Stream::other, by a FlowRef kept in its state) and
// open connections (Stream::connect): those flows are marked in the scope and
// each gets its own event, with its own callbacks, right after the owner's
// (a proxy writing into the backend flow while handling the client's data).
//
// Events, in the order the stack delivers them for one segment or timer:
//   on_open      the connection is ESTABLISHED (passive or active open)
//   on_data      bytes are readable (peek / consume / splice them, or leave
//                them: the receive window shrinks until they are taken).
//                In-order text with nothing queued before it is read from
//                the segment itself (view() points into the frame); what
//                the application leaves is copied into the receive queue
//                when the event ends, or before anything of the event
//                takes buffer chunks (send, splice).  Consuming a request
//                before sending its answer saves that copy.
//   on_peer_close the peer sent FIN: nothing more will be readable
//   on_writable  acknowledged data freed send space
//   on_reset     the connection was reset, refused or timed out; dead
//   on_closed    the flow is gone: CLOSED, or a TIME-WAIT record (always
//                the last event; key() and app() are still readable)
// Per-flow application state lives in Stream::app() (16 bytes).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

#include "flow/key.h"

namespace tcpterm::stack {

class Stack;
class EventScope;
class App;

// A flow named across events: slot and generation (a freed slot's
// generation moves on, so a stale reference finds nothing).
struct FlowRef {
  uint32_t slot = 0xffffffffu;
  uint32_t gen = 0;
  bool valid() const { return slot != 0xffffffffu; }
  uint64_t pack() const { return uint64_t(slot) << 32 | gen; }
  static FlowRef unpack(uint64_t v) { return FlowRef{uint32_t(v >> 32), uint32_t(v)}; }
  friend bool operator==(const FlowRef&, const FlowRef&) = default;
};

struct AppState {
  uint64_t a = 0;
  uint32_t b = 0;
  uint16_t c = 0;
  uint8_t flags = 0;
  uint8_t kind = 0;
};
static_assert(sizeof(AppState) == 16);

class Stream {
 public:
  Stream(EventScope& scope, uint32_t flow) : scope_(&scope), flow_(flow) {}

  // This flow, to be found again from another flow's event.
  FlowRef ref() const;
  // Another flow of this lcore in the same scope; a dead stream (alive()
  // false, every call a no-op) if it is gone.
  Stream other(FlowRef r) const;
  // Active open from within a callback (the next hop is the route's); the
  // flow's events go to `app`.  syn_timeout_ms > 0 bounds the handshake
  // (on_reset when it expires).  An invalid ref when the tuple is in use
  // or the table is full.
  FlowRef connect(const flow::FlowKey4& key, App* app, uint32_t syn_timeout_ms = 0);
  Stack& stack() const;

  bool valid() const { return flow_ != 0xffffffffu; }  // names a live slot
  // In on_reset: the flow ended by a timer of ours (a connect timeout, the
  // retries running out), not by the peer's RST.
  bool timed_out() const;
  const flow::FlowKey4& key() const;
  AppState& app();
  bool alive() const;    // not reset or closed underneath
  bool can_send() const; // ESTABLISHED or CLOSE-WAIT and not closed by us
  bool peer_closed() const;

  size_t readable() const;
  size_t peek(uint8_t* dst, size_t n, size_t offset = 0) const;
  // The readable bytes from the first on, as far as they lie contiguous in
  // one buffer chunk: read in place, no copy (valid until the next call
  // that consumes, sends or closes).  Empty when nothing is readable.
  std::span<const uint8_t> view() const;
  // The first n readable bytes (n <= readable()): view() when they lie in
  // one chunk, else copied into buf (room for n), as peek() does.
  std::span<const uint8_t> peek_view(uint8_t* buf, size_t n) const;
  void consume(size_t n);
  size_t send_space() const;
  size_t send(std::span<const uint8_t> data);
  // send() of bytes the application lends instead of copying (tcp::send_lent):
  // its constant data, valid and unchanged for as long as any flow it was
  // sent on lives (an application's member that is never modified).
  size_t send_lent(std::span<const uint8_t> data);
  // Into an empty send queue, bytes that spliced bytes will follow (a PROXY
  // header, at most a chunk): placed so that later splices hand chunks
  // over.  False if the queue is not empty or memory is short.
  bool send_before_splice(std::span<const uint8_t> data);
  // Moves up to n readable bytes straight into the send queue (echo).
  size_t forward_to_send(size_t n);
  // Moves up to n readable bytes into `to`'s send queue by handing over
  // buffer chunks (the proxy); bounded by `to`'s send space.
  size_t splice_to(Stream& to, size_t n);
  // Half-close: FIN after the queued bytes; reading goes on.
  void shutdown();
  // Full close (RFC 1122 4.2.2.13: unread data makes it an RST).
  void close();
  void abort();

 private:
  // Bytes of this flow's segment held in place (tcp::Out::held): only the
  // scope's owner has any, and only during its segment's event.
  uint32_t held() const;
  // The owner's held bytes into its receive queue, before anything of the
  // event takes buffer chunks (so the pool still has the room
  // tcp::process_text saw for them).
  void settle() const;
  // send() and send_lent().
  size_t queue_send(std::span<const uint8_t> data, bool lent);

  EventScope* scope_;
  uint32_t flow_;
};

class App {
 public:
  virtual ~App() = default;
  virtual const char* name() const = 0;
  virtual void on_open(Stream&) {}
  virtual void on_data(Stream&) = 0;
  virtual void on_peer_close(Stream&) {}
  virtual void on_writable(Stream&) {}
  virtual void on_reset(Stream&) {}
  virtual void on_closed(Stream&) {}
};

}  // namespace tcpterm::stack
