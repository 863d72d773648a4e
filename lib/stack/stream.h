// The stream interface between the per-lcore stack and its applications
// (echo, discard, http today; the load-balancer proxy later).
//
// An application is one object per listener (or per active-open profile); a
// flow is handed to it as a Stream, a cheap handle valid only during the
// callback.  Callbacks never re-enter: whatever the application does (send,
// close, abort) is applied by the stack after the callback returns.
//
// Events, in the order the stack delivers them for one segment or timer:
//   on_open      the connection is ESTABLISHED (passive or active open)
//   on_data      bytes are readable (peek / consume them, or leave them: the
//                receive window shrinks until they are consumed)
//   on_peer_close the peer sent FIN: nothing more will be readable
//   on_writable  acknowledged data freed send space
//   on_reset     the connection was reset or timed out; the stream is dead
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
  Stream(Stack& s, uint32_t flow) : stack_(&s), flow_(flow) {}

  const flow::FlowKey4& key() const;
  AppState& app();
  bool alive() const;    // not reset or closed underneath
  bool can_send() const; // ESTABLISHED or CLOSE-WAIT and not closed by us
  bool peer_closed() const;

  size_t readable() const;
  size_t peek(uint8_t* dst, size_t n, size_t offset = 0) const;
  void consume(size_t n);
  size_t send_space() const;
  size_t send(std::span<const uint8_t> data);
  // Moves up to n readable bytes straight into the send queue (echo).
  size_t forward_to_send(size_t n);
  void close();
  void abort();

 private:
  Stack* stack_;
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
