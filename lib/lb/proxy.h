// The load-balancer proxy: an application on the stream interface that
// splices every client connection to a backend connection on the same lcore.
//
//   client ──► [client flow C] ══ chunks ══► [backend flow B] ──► backend
//   client ◄── [client flow C] ◄══ chunks ══ [backend flow B] ◄── backend
//
// * The client is accepted first (the SYN-ACK never waits for a backend);
//   on ESTABLISHED the proxy picks a backend and opens B from the pool's
//   source tuple.  Bytes the client sends meanwhile wait in C's receive
//   queue, whose window closes when it is full.
// * Bytes move by handing buffer chunks from one flow's receive queue to
//   the other's send queue (Stream::splice_to), never beyond what the
//   destination may queue: a side that does not drain closes the other
//   side's window.  Memory per proxied connection is bounded by
//   2 x (rcv_buf + snd_buf) (1 MiB with the defaults), whatever the
//   transfer size.
// * FIN is carried across once the bytes before it are (a half-close:
//   shutdown), RST is carried across (abort), and a side that times out
//   (idle timeout) takes the other one down with it.
// * A backend that refuses or does not answer within connect-timeout-ms is
//   retried on the next backend of the ring (up to `retries`), then the
//   client gets an RST, or `503` in mode=http.
// * PROXY protocol v1/v2 (per pool) goes first on B.
//
// Per-flow state (AppState, 16 bytes): a = the other flow (FlowRef), b =
// pool << 16 | backend index, c = connection attempts, flags, kind.
#pragma once
#include <cstdint>

#include "lb/balancer.h"
#include "stack/stack.h"  // Stream and its inline accessors

namespace tcpterm::lb {

class Proxy final : public stack::App {
 public:
  Proxy(Balancer& b, int pool) : bal_(b), pool_(pool) {}
  const char* name() const override { return "proxy"; }
  int pool_index() const { return pool_; }

  void on_open(stack::Stream& s) override;
  void on_data(stack::Stream& s) override;
  void on_peer_close(stack::Stream& s) override;
  void on_writable(stack::Stream& s) override;
  void on_reset(stack::Stream& s) override;
  void on_closed(stack::Stream& s) override;

  static constexpr uint8_t kClient = 1, kBackend = 2;

 private:
  // AppState::flags
  static constexpr uint8_t kFinIn = 1,       // this flow's peer sent FIN
      kFinRelayed = 2,                       // ...and it was carried to the other flow
      kOpen = 4,                             // backend flow: ESTABLISHED once
      kCounted = 8;                          // backend flow: counted in its backend's active gauge
  void connect_backend(stack::Stream& c, int avoid);
  void relay(stack::Stream& from, stack::Stream& to);
  void give_up(stack::Stream& c);
  Backend* backend_of(stack::Stream& s);
  Balancer& bal_;
  int pool_;
};

// Health checks: active opens from the lcore's own stack; `check=tcp`
// succeeds on ESTABLISHED, `check=http` on a status line with the expected
// code.  Per-flow state: a = pool << 32 | backend, flags: decided.
class HealthChecker final : public stack::App {
 public:
  explicit HealthChecker(Balancer& b) : bal_(b) {}
  const char* name() const override { return "check"; }
  void on_open(stack::Stream& s) override;
  void on_data(stack::Stream& s) override;
  void on_peer_close(stack::Stream& s) override;
  void on_closed(stack::Stream& s) override;

 private:
  static constexpr uint8_t kDecided = 1;
  void decide(stack::Stream& s, bool ok);
  Balancer& bal_;
};

}  // namespace tcpterm::lb
