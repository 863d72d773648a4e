// A TCB under test with a virtual clock, and fixture builders per state, each
// built from the previous one (the RFC 9293 3.6 example numbering: our ISS
// is 99 and the peer's 299, so in ESTABLISHED SND.NXT = 100, RCV.NXT = 300).
#pragma once
#include <catch2/catch.hpp>

#include <cstring>
#include <string_view>

#include "tcp/tcp.h"
#include "tcp/time_wait.h"

namespace tcptest {

using namespace tcpterm::tcp;
using tcpterm::wire::TcpRepr;
namespace F = tcpterm::wire::flag;

inline TcpRepr S(uint32_t seq, uint32_t ack, uint8_t flags, std::string_view data = {},
                 uint16_t win = 65535) {
  TcpRepr r;
  r.src_port = 40000;
  r.dst_port = 80;
  r.seq = seq;
  r.ack = ack;
  r.flags = flags;
  r.window = win;
  r.payload = std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  return r;
}

struct H {
  Config cfg;
  Stats st;
  ChunkPool chunks{4096};
  OooPool ooo{64};
  uint32_t now = 10000;
  Tcb t;
  Out out;

  H() {
    cfg.timestamps = false;
    cfg.window_scaling = false;
  }
  Env env() { return Env{cfg, st, chunks, ooo, now}; }

  template <class Fn>
  Out& step(Fn&& fn) {
    out.reset();
    Env e = env();
    fn(e);
    if (out.op == FlowOp::Keep && t.state != TcpState::Closed) output(t, e, out);
    if (out.op == FlowOp::Keep) {
      queues_trim(t, chunks);  // as the stack does after each event
      INFO("state " << to_string(t.state) << " timers " << int(t.timers) << " una " << t.snd_una.v
                    << " nxt " << t.snd_nxt.v << " max " << t.snd_max.v
                    << " sndq " << sndq().len << " flags " << t.flags);
      REQUIRE(check_invariants(t, chunks));
    }
    return out;
  }
  Out& seg(const TcpRepr& s) { return step([&](Env& e) { on_segment(t, s, e, out); }); }
  // Advances the virtual clock to `ms` and runs the timer if it is due.
  Out& at(uint32_t ms) {
    now = ms;
    return step([&](Env& e) {
      uint32_t d;
      if (next_deadline(t, d) && time_reached(now, d)) on_timer(t, e, out);
    });
  }
  Out& app_close() { return step([&](Env& e) { close(t, e, out); }); }
  Out& app_abort() { return step([&](Env& e) { abort(t, e, out); }); }
  size_t app_send(std::string_view s) {
    Env e = env();
    return send(t, std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()), e);
  }
  size_t app_send_lent(std::string_view s) {
    Env e = env();
    return send_lent(t, std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()), e);
  }
  Out& flush() { return step([](Env&) {}); }
  void queues_trim_now() { queues_trim(t, chunks); }
  uint32_t deadline() {
    uint32_t d = 0;
    REQUIRE(next_deadline(t, d));
    return d;
  }
  const ByteQueue& sndq() const { return queues(t, chunks).snd; }
  const ByteQueue& rcvq() const { return queues(t, chunks).rcv; }
  uint32_t ooo_index() const { return queues(t, chunks).ooo; }
  // A data segment's bytes, read as the stack's transmit reads them (lent
  // bytes in place, else the queue's chunks).
  std::string sent_data(const OutSeg& s) {
    std::string r(s.data_len, '\0');
    uint32_t off = uint32_t(Seq(s.h.seq) - t.snd_una);
    if (const uint8_t* lent = queues(t, chunks).snd_lent)
      std::memcpy(r.data(), lent + off, s.data_len);
    else
      bq_copy_out(sndq(), chunks, off, reinterpret_cast<uint8_t*>(r.data()), s.data_len);
    return r;
  }
  std::string received() {
    std::string r(rcvq().len, '\0');
    bq_copy_out(rcvq(), chunks, 0, reinterpret_cast<uint8_t*>(r.data()), r.size());
    return r;
  }
  void read_all() {
    Env e = env();
    consume(t, rcvq().len, e);
  }
};

inline void expect_seg(const OutSeg& s, uint32_t seq, uint32_t ack, uint8_t flags,
                       uint32_t len = 0) {
  INFO("got <SEQ=" << s.h.seq << "><ACK=" << s.h.ack << "><CTL=" << int(s.h.flags)
                   << "> len " << s.data_len);
  CHECK(s.h.seq == seq);
  if (flags & F::ACK) CHECK(s.h.ack == ack);
  CHECK(int(s.h.flags) == int(flags));
  CHECK(s.data_len == len);
}

inline void expect_one(const Out& o, uint32_t seq, uint32_t ack, uint8_t flags, uint32_t len = 0) {
  REQUIRE(int(o.n) == 1);
  expect_seg(o.seg[0], seq, ack, flags, len);
}

inline void expect_none(const Out& o) { CHECK(int(o.n) == 0); }

// ------------------------------------------------------------ builders ---
inline void listen_syn(H& h) {
  TcpRepr syn = S(299, 0, F::SYN);
  syn.opt.mss = 1460;
  h.out.reset();
  Env e = h.env();
  open_passive(h.t, syn, 99, e, h.out);
  REQUIRE(h.t.state == TcpState::SynReceived);
  expect_one(h.out, 99, 300, F::SYN | F::ACK);
}
inline void established(H& h) {
  listen_syn(h);
  expect_none(h.seg(S(300, 100, F::ACK)));
  REQUIRE(h.t.state == TcpState::Established);
}
// A sends FIN <SEQ=100><ACK=300>.
inline void fin_wait_1(H& h) {
  established(h);
  expect_one(h.app_close(), 100, 300, F::FIN | F::ACK);
  REQUIRE(h.t.state == TcpState::FinWait1);
}
// B ACKs <SEQ=300><ACK=101>.
inline void fin_wait_2(H& h) {
  fin_wait_1(h);
  expect_none(h.seg(S(300, 101, F::ACK)));
  REQUIRE(h.t.state == TcpState::FinWait2);
}
// B's FIN <SEQ=300><ACK=101>; A's final ACK <SEQ=101><ACK=301>.
inline void time_wait(H& h) {
  fin_wait_2(h);
  Out& o = h.seg(S(300, 101, F::FIN | F::ACK));
  expect_one(o, 101, 301, F::ACK);
  REQUIRE(o.op == FlowOp::ToTimeWait);
  REQUIRE(h.t.state == TcpState::TimeWait);
}
// The peer closes first: FIN <SEQ=300><ACK=100>, we ACK <SEQ=100><ACK=301>.
inline void close_wait(H& h) {
  established(h);
  expect_one(h.seg(S(300, 100, F::FIN | F::ACK)), 100, 301, F::ACK);
  REQUIRE(h.t.state == TcpState::CloseWait);
}
inline void last_ack(H& h) {
  close_wait(h);
  expect_one(h.app_close(), 100, 301, F::FIN | F::ACK);
  REQUIRE(h.t.state == TcpState::LastAck);
}
// Simultaneous close: our FIN is out, theirs arrives before the ACK of ours.
inline void closing(H& h) {
  fin_wait_1(h);
  expect_one(h.seg(S(300, 100, F::FIN | F::ACK)), 101, 301, F::ACK);
  REQUIRE(h.t.state == TcpState::Closing);
}
inline void syn_sent(H& h) {
  h.out.reset();
  Env e = h.env();
  open_active(h.t, 99, e, h.out);
  REQUIRE(h.t.state == TcpState::SynSent);
  expect_one(h.out, 99, 0, F::SYN);
}

}  // namespace tcptest
