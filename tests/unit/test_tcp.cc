// lib/tcp: one group per state, exact segments in and out, timing at the
// boundary on a virtual clock.
#include "tcp_harness.h"

#include <random>
#include <string>

using namespace tcptest;

// ================================================================ CLOSED ===
TEST_CASE("CLOSED: segments to no connection get the RFC 9293 3.10.7.1 reset",
          "[tcp][closed]") {
  TcpRepr rst;
  // ACK set: <SEQ=SEG.ACK><CTL=RST>.
  REQUIRE(reset_for(S(5, 777, F::ACK), rst));
  CHECK(rst.seq == 777);
  CHECK(rst.flags == F::RST);
  CHECK(rst.src_port == 80);
  CHECK(rst.dst_port == 40000);
  // ACK clear: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>; SYN and FIN count.
  REQUIRE(reset_for(S(1000, 0, F::SYN), rst));
  CHECK(rst.seq == 0);
  CHECK(rst.ack == 1001);
  CHECK(rst.flags == (F::RST | F::ACK));
  REQUIRE(reset_for(S(1000, 0, F::FIN | F::PSH, "abc"), rst));
  CHECK(rst.ack == 1004);
  // Never a reset in answer to a reset.
  CHECK_FALSE(reset_for(S(1, 2, F::RST), rst));
  CHECK_FALSE(reset_for(S(1, 2, F::RST | F::ACK), rst));
}

// ================================================================ LISTEN ===
TEST_CASE("LISTEN: SYN opens SYN-RECEIVED with <SEQ=ISS><ACK=RCV.NXT><SYN,ACK>",
          "[tcp][listen]") {
  H h;
  listen_syn(h);
  CHECK(h.t.rcv_nxt == Seq(300));  // IRS + 1
  CHECK(h.t.rcv_nxt == Seq(300));
  CHECK(h.t.snd_una == Seq(99));
  CHECK(h.t.snd_nxt == Seq(100));
  CHECK(h.out.seg[0].h.opt.mss == 1460);
  CHECK(h.st.passive_opens == 1);
  CHECK(h.st.states[size_t(TcpState::SynReceived)] == 1);
  CHECK(h.t.timers & kTmRtx);
}

// ============================================================== SYN-SENT ===
TEST_CASE("SYN-SENT: <SYN,ACK> completes the active open", "[tcp][syn-sent]") {
  H h;
  syn_sent(h);
  TcpRepr sa = S(299, 100, F::SYN | F::ACK);
  sa.opt.mss = 1400;
  Out& o = h.seg(sa);
  expect_one(o, 100, 300, F::ACK);
  CHECK((o.events & ev::Established));
  CHECK(h.t.state == TcpState::Established);
  CHECK(h.t.snd_mss == 1400);
  CHECK(h.st.active_opens == 1);
}

TEST_CASE("SYN-SENT: the handshake's ACK rides on data sent in answer to on_open; alone before a FIN",
          "[tcp][syn-sent]") {
  // The application's on_open runs inside the event of the <SYN,ACK>, before
  // output(): a request sent there carries the ACK (one segment, as Linux
  // sends when data is waiting), ...
  {
    H h;
    syn_sent(h);
    Out& o = h.step([&](Env& e) {
      on_segment(h.t, S(299, 100, F::SYN | F::ACK), e, h.out);
      REQUIRE((h.out.events & ev::Established));
      send(h.t, std::span(reinterpret_cast<const uint8_t*>("GET"), 3), e);
    });
    expect_one(o, 100, 300, F::ACK | F::PSH, 3);
  }
  // ... a close alone does not: the ACK goes first, then the FIN, so a FIN
  // sent at once can still cross the peer's (a simultaneous close) ...
  {
    H h;
    syn_sent(h);
    Out& o = h.step([&](Env& e) {
      on_segment(h.t, S(299, 100, F::SYN | F::ACK), e, h.out);
      close(h.t, e, h.out);
    });
    REQUIRE(int(o.n) == 2);
    expect_seg(o.seg[0], 100, 300, F::ACK);
    expect_seg(o.seg[1], 100, 300, F::FIN | F::ACK);
  }
  // ... and data the window cannot take yet leaves the ACK alone too.
  {
    H h;
    syn_sent(h);
    Out& o = h.step([&](Env& e) {
      on_segment(h.t, S(299, 100, F::SYN | F::ACK, {}, 0), e, h.out);
      send(h.t, std::span(reinterpret_cast<const uint8_t*>("GET"), 3), e);
    });
    expect_one(o, 100, 300, F::ACK);
  }
}

TEST_CASE("SYN-SENT: an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST>", "[tcp][syn-sent]") {
  H h;
  syn_sent(h);
  expect_one(h.seg(S(299, 5000, F::SYN | F::ACK)), 5000, 0, F::RST);
  CHECK(h.t.state == TcpState::SynSent);
  expect_one(h.seg(S(299, 99, F::ACK)), 99, 0, F::RST);  // SEG.ACK =< ISS
  // ... but never in answer to an RST.
  expect_none(h.seg(S(299, 5000, F::RST | F::ACK)));
  CHECK(h.t.state == TcpState::SynSent);
}

TEST_CASE("SYN-SENT: RST with an acceptable ACK resets; without ACK it is ignored",
          "[tcp][syn-sent]") {
  H h;
  syn_sent(h);
  expect_none(h.seg(S(0, 0, F::RST)));
  CHECK(h.t.state == TcpState::SynSent);
  CHECK(h.st.resets_ignored == 1);
  Out& o = h.seg(S(0, 100, F::RST | F::ACK));
  expect_none(o);
  CHECK(o.op == FlowOp::Free);
  CHECK((o.events & ev::Reset));
  CHECK(h.t.state == TcpState::Closed);
}

TEST_CASE("SYN-SENT: a bare SYN is a simultaneous open", "[tcp][syn-sent][syn-received]") {
  H h;
  syn_sent(h);
  // SYN-SENT -> SYN-RECEIVED, <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>.
  expect_one(h.seg(S(299, 0, F::SYN)), 99, 300, F::SYN | F::ACK);
  CHECK(h.t.state == TcpState::SynReceived);
  // Their <SYN,ACK> crosses ours: the ACK part completes the handshake.
  Out& o = h.seg(S(300, 100, F::ACK));
  CHECK(h.t.state == TcpState::Established);
  CHECK((o.events & ev::Established));
}

TEST_CASE("SYN-SENT: SYN retransmitted at RTO with backoff, then gives up",
          "[tcp][syn-sent][timer]") {
  H h;
  h.cfg.syn_retries = 2;
  syn_sent(h);
  uint32_t t0 = h.now;
  expect_none(h.at(t0 + 999));
  expect_one(h.at(t0 + 1000), 99, 0, F::SYN);
  expect_none(h.at(t0 + 1000 + 1999));
  expect_one(h.at(t0 + 3000), 99, 0, F::SYN);
  expect_none(h.at(t0 + 3000 + 3999));
  Out& o = h.at(t0 + 7000);
  expect_none(o);  // no RST: nothing is synchronized
  CHECK(o.op == FlowOp::Free);
  CHECK((o.events & ev::TimedOut));
  CHECK(h.st.timeout_syn_sent == 1);
  CHECK(h.st.syn_retransmits == 2);
}

// ========================================================== SYN-RECEIVED ===
TEST_CASE("SYN-RECEIVED: the ACK of our SYN establishes", "[tcp][syn-received]") {
  H h;
  established(h);
  CHECK(h.st.established == 1);
  CHECK(h.st.states[size_t(TcpState::Established)] == 1);
  CHECK(h.st.states[size_t(TcpState::SynReceived)] == 0);
  CHECK(h.t.snd_una == Seq(100));
  CHECK(h.t.snd_wnd == 65535);
  CHECK((h.t.timers & kTmLife));
  CHECK(!(h.t.timers & kTmRtx));
}

TEST_CASE("SYN-RECEIVED: an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST>",
          "[tcp][syn-received]") {
  H h;
  listen_syn(h);
  expect_one(h.seg(S(300, 4242, F::ACK)), 4242, 0, F::RST);
  CHECK(h.t.state == TcpState::SynReceived);
}

TEST_CASE("SYN-RECEIVED: RST returns to LISTEN (the TCB is freed)", "[tcp][syn-received]") {
  H h;
  listen_syn(h);
  Out& o = h.seg(S(300, 0, F::RST));
  CHECK(o.op == FlowOp::Free);
  CHECK((o.events & ev::Reset) == 0);  // no application ever saw it
  CHECK(h.st.syn_received_dropped == 1);
  CHECK(h.st.states[size_t(TcpState::SynReceived)] == 0);
}

TEST_CASE("SYN-RECEIVED: a retransmitted SYN gets our SYN-ACK again", "[tcp][syn-received]") {
  H h;
  listen_syn(h);
  expect_one(h.seg(S(299, 0, F::SYN)), 99, 300, F::SYN | F::ACK);
  CHECK(h.t.state == TcpState::SynReceived);
}

TEST_CASE("SYN-RECEIVED: SYN-ACK retransmitted, then the half-open flow is dropped",
          "[tcp][syn-received][timer]") {
  H h;
  h.cfg.synack_retries = 1;
  listen_syn(h);
  uint32_t t0 = h.now;
  expect_none(h.at(t0 + 999));
  expect_one(h.at(t0 + 1000), 99, 300, F::SYN | F::ACK);
  expect_none(h.at(t0 + 2999));
  Out& o = h.at(t0 + 3000);
  expect_none(o);
  CHECK(o.op == FlowOp::Free);
  CHECK(h.st.timeout_syn_received == 1);
}

TEST_CASE("SYN-RECEIVED: over IPv6 the retransmitted SYN-ACK offers the IPv6 MSS, as the first did",
          "[tcp][syn-received][ipv6]") {
  // kNet6 is read again at every SYN-ACK: nothing in between (output() runs
  // after each event) may clear it.  (kHandshakeAck once shared its bit.)
  H h;
  TcpRepr syn = S(299, 0, F::SYN);
  syn.opt.mss = 1460;
  h.out.reset();
  Env e = h.env();
  e.v6 = true;
  open_passive(h.t, syn, 99, e, h.out);
  REQUIRE(int(h.out.n) == 1);
  const uint16_t v6_mss = uint16_t(h.cfg.mss - kIpv6HeaderExtra);
  CHECK(h.out.seg[0].h.opt.mss == v6_mss);
  uint32_t t0 = h.now;
  h.flush();  // the stack's output() after the event
  Out& o = h.at(t0 + 1000);
  REQUIRE(int(o.n) == 1);
  CHECK(int(o.seg[0].h.flags) == int(F::SYN | F::ACK));
  CHECK(o.seg[0].h.opt.mss == v6_mss);
}

TEST_CASE("SYN-RECEIVED: ACK with FIN establishes and moves on to CLOSE-WAIT",
          "[tcp][syn-received][close-wait]") {
  H h;
  listen_syn(h);
  Out& o = h.seg(S(300, 100, F::ACK | F::FIN));
  expect_one(o, 100, 301, F::ACK);
  CHECK(h.t.state == TcpState::CloseWait);
  CHECK((o.events & ev::Established));
  CHECK((o.events & ev::PeerFin));
}

// =========================================================== ESTABLISHED ===
TEST_CASE("ESTABLISHED: in-order data is ACKed after the delayed-ACK time",
          "[tcp][established][timer]") {
  H h;
  established(h);
  Out& o = h.seg(S(300, 100, F::ACK | F::PSH, "hello"));
  expect_none(o);
  CHECK((o.events & ev::Readable));
  CHECK(h.received() == "hello");
  uint32_t t0 = h.now;
  expect_none(h.at(t0 + 39));
  expect_one(h.at(t0 + 40), 100, 305, F::ACK);
  CHECK(h.st.delayed_acks == 1);
}

TEST_CASE("ESTABLISHED: every second segment is ACKed at once", "[tcp][established]") {
  H h;
  established(h);
  expect_none(h.seg(S(300, 100, F::ACK, "aaaa")));
  expect_one(h.seg(S(304, 100, F::ACK, "bbbb")), 100, 308, F::ACK);
  CHECK(!(h.t.timers & kTmDelAck));
}

TEST_CASE("ESTABLISHED: a reply piggybacks the ACK", "[tcp][established]") {
  H h;
  established(h);
  h.seg(S(300, 100, F::ACK | F::PSH, "ping"));
  h.read_all();
  REQUIRE(h.app_send("pong") == 4);
  Out& o = h.flush();
  expect_one(o, 100, 304, F::ACK | F::PSH, 4);
  CHECK(h.sent_data(o.seg[0]) == "pong");
  CHECK(!(h.t.timers & kTmDelAck));
  CHECK((h.t.timers & kTmRtx));
}

TEST_CASE("ESTABLISHED: out-of-order data gets a duplicate ACK; the hole fill ACKs all",
          "[tcp][established][reassembly]") {
  H h;
  established(h);
  expect_one(h.seg(S(305, 100, F::ACK, "world")), 100, 300, F::ACK);
  CHECK(h.st.ooo_segments == 1);
  expect_one(h.seg(S(315, 100, F::ACK, "!!")), 100, 300, F::ACK);
  CHECK(h.rcvq().len == 0);
  expect_one(h.seg(S(300, 100, F::ACK, "hello")), 100, 310, F::ACK);
  CHECK(h.received() == "helloworld");
  // Bridging the second hole.
  expect_one(h.seg(S(310, 100, F::ACK, "12345")), 100, 317, F::ACK);
  CHECK(h.received() == "helloworld12345!!");
  CHECK(h.ooo_index() == kNil);
  CHECK(h.ooo.in_use() == 0);
}

TEST_CASE("ESTABLISHED: overlapping out-of-order data keeps the first copy",
          "[tcp][established][reassembly]") {
  H h;
  established(h);
  h.seg(S(302, 100, F::ACK, "AAAA"));  // 302..305
  h.seg(S(304, 100, F::ACK, "bbbb"));  // 304..307, overlaps 304..305
  h.seg(S(300, 100, F::ACK, "xx"));
  CHECK(h.received() == "xxAAAAbb");
}

TEST_CASE("ESTABLISHED: a fifth hole is refused and counted", "[tcp][established][reassembly]") {
  H h;
  established(h);
  for (uint32_t i = 0; i < 4; i++) h.seg(S(302 + 4 * i, 100, F::ACK, "z"));
  CHECK(h.st.ooo_dropped == 0);
  h.seg(S(330, 100, F::ACK, "z"));
  CHECK(h.st.ooo_dropped == 1);
  // Merging into an existing range still works.
  h.seg(S(303, 100, F::ACK, "y"));
  CHECK(h.st.ooo_dropped == 1);
}

TEST_CASE("ESTABLISHED: sequence acceptability, all four cases", "[tcp][established][seq]") {
  H h;
  established(h);
  // len 0, window > 0: RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND.
  expect_none(h.seg(S(300, 100, F::ACK)));
  expect_one(h.seg(S(299, 100, F::ACK)), 100, 300, F::ACK);  // left of the window
  uint32_t wnd = uint32_t(h.t.rcv_adv - h.t.rcv_nxt);
  h.now += h.cfg.challenge_ack_interval_ms;  // replies to pure ACKs are rate limited
  expect_one(h.seg(S(300 + wnd, 100, F::ACK)), 100, 300, F::ACK);  // right of it
  CHECK(h.st.unacceptable_segments == 2);
  // len > 0, window > 0: either end inside.  Data overlapping the left edge is trimmed.
  expect_none(h.seg(S(298, 100, F::ACK, "xxab")));
  CHECK(h.received() == "ab");
  // Entirely old data is a duplicate: ACK it.
  expect_one(h.seg(S(290, 100, F::ACK, "old")), 100, 302, F::ACK);
}

TEST_CASE("ESTABLISHED: zero receive window accepts only <SEQ=RCV.NXT> control",
          "[tcp][established][seq]") {
  H h;
  h.cfg.rcv_buf = 4;
  established(h);  // advertised 4 bytes
  h.seg(S(300, 100, F::ACK, "abcd"));
  CHECK(h.received() == "abcd");
  CHECK(uint32_t(h.t.rcv_adv - h.t.rcv_nxt) == 0);
  // len 0, window 0: acceptable only at RCV.NXT.
  expect_none(h.seg(S(304, 100, F::ACK)));
  expect_one(h.seg(S(305, 100, F::ACK)), 100, 304, F::ACK);
  // len > 0, window 0: not acceptable -- but its ACK is processed.
  h.app_send("Z");
  h.flush();
  Out& o = h.seg(S(304, 101, F::ACK, "e"));
  (void)o;
  CHECK(h.t.snd_una == Seq(101));
  CHECK(h.received() == "abcd");
}

TEST_CASE("ESTABLISHED: exact RST resets; in-window RST gets a challenge ACK",
          "[tcp][established][rfc5961]") {
  H h;
  established(h);
  expect_one(h.seg(S(301, 0, F::RST)), 100, 300, F::ACK);
  CHECK(h.st.challenge_acks == 1);
  CHECK(h.t.state == TcpState::Established);
  // Rate limited per flow.
  expect_none(h.seg(S(302, 0, F::RST)));
  CHECK(h.st.challenge_acks_suppressed == 1);
  h.now += h.cfg.challenge_ack_interval_ms;
  expect_one(h.seg(S(303, 0, F::RST)), 100, 300, F::ACK);
  // Out of window: silently dropped.
  expect_none(h.seg(S(299, 0, F::RST)));
  CHECK(h.t.state == TcpState::Established);
  // Exact: reset.
  Out& o = h.seg(S(300, 0, F::RST));
  expect_none(o);
  CHECK(o.op == FlowOp::Free);
  CHECK((o.events & ev::Reset));
  CHECK(h.st.resets_in == 1);
}

TEST_CASE("ESTABLISHED: any SYN gets a challenge ACK", "[tcp][established][rfc5961]") {
  H h;
  established(h);
  expect_one(h.seg(S(310, 0, F::SYN)), 100, 300, F::ACK);
  CHECK(h.t.state == TcpState::Established);
  CHECK(h.st.challenge_acks == 1);
}

TEST_CASE("ESTABLISHED: ACKs of unsent data and too-old ACKs are answered and dropped",
          "[tcp][established][rfc5961]") {
  H h;
  established(h);
  expect_one(h.seg(S(300, 200, F::ACK, "data")), 100, 300, F::ACK);
  CHECK(h.st.acks_future == 1);
  CHECK(h.rcvq().len == 0);  // the text was dropped with it
  expect_one(h.seg(S(300, 100 - 70000, F::ACK)), 100, 300, F::ACK);
  CHECK(h.st.acks_too_old == 1);
}

TEST_CASE("ESTABLISHED: sending respects the peer window and segments by MSS",
          "[tcp][established][send]") {
  H h;
  established(h);
  h.t.snd_wnd = 3000;
  h.t.cwnd = 100000;
  std::string big(5000, 'x');
  REQUIRE(h.app_send(big) == 5000);
  Out& o = h.flush();
  REQUIRE(int(o.n) == 2);
  expect_seg(o.seg[0], 100, 300, F::ACK, 1460);
  expect_seg(o.seg[1], 1560, 300, F::ACK, 1460);
  // The window has 80 bytes left: sender SWS avoidance holds them back.
  expect_none(h.flush());
  // The peer ACKs and opens the window.
  Out& o2 = h.seg(S(300, 3020, F::ACK, {}, 65535));
  REQUIRE(int(o2.n) == 2);
  expect_seg(o2.seg[0], 3020, 300, F::ACK, 1460);
  expect_seg(o2.seg[1], 4480, 300, F::ACK | F::PSH, 620);
  CHECK((o2.events & ev::Writable));
}

TEST_CASE("ESTABLISHED: RTO retransmits from SND.UNA with exponential backoff",
          "[tcp][established][timer][rto]") {
  H h;
  established(h);
  h.app_send("hello");
  uint32_t t0 = h.now;
  expect_one(h.flush(), 100, 300, F::ACK | F::PSH, 5);
  uint32_t rto = h.t.rto_ms;
  CHECK(rto >= h.cfg.rto_min_ms);
  expect_none(h.at(t0 + rto - 1));
  expect_one(h.at(t0 + rto), 100, 300, F::ACK | F::PSH, 5);
  CHECK(h.st.retransmits == 1);
  CHECK(h.t.cwnd == h.t.snd_mss);
  expect_none(h.at(t0 + rto + 2 * rto - 1));
  expect_one(h.at(t0 + 3 * rto), 100, 300, F::ACK | F::PSH, 5);
  // The ACK ends it.
  h.seg(S(300, 105, F::ACK));
  CHECK(!(h.t.timers & kTmRtx));
  CHECK(h.t.retries == 0);
}

TEST_CASE("ESTABLISHED: an ACK sent while retransmitting carries SND.MAX, so the peer takes it",
          "[tcp][established][timer][rto]") {
  // Both ends retransmitting at once: we sent 3 000 bytes (the peer got them,
  // its ACK was lost) and our RTO went back to SND.UNA; the peer, whose own
  // data we got, retransmits it too.  Our reply to its old segment must be
  // sequenced at SND.MAX (= the peer's RCV.NXT): at SND.NXT (back at 1 560)
  // the peer would drop it as a duplicate, ACK field and all, and both ends
  // would retransmit until a timeout (seen in the IPv6 echo-under-loss test).
  H h;
  established(h);
  std::string data(3000, 'x');
  REQUIRE(h.app_send(data) == data.size());
  uint32_t t0 = h.now;
  Out& first = h.flush();
  REQUIRE(first.n >= 2);
  REQUIRE(h.t.snd_max.v == 3100);
  // The peer's data arrives (its ACK of ours was lost); our ACK of it (delayed)
  // is lost too.
  h.seg(S(300, 100, F::ACK | F::PSH, "peer"));
  REQUIRE(h.t.rcv_nxt.v == 304);
  // Our RTO: go back to SND.UNA, one segment.
  Out& rtx = h.at(t0 + h.t.rto_ms);
  REQUIRE(rtx.n == 1);
  CHECK(rtx.seg[0].h.seq == 100);
  CHECK(h.t.snd_nxt.v < h.t.snd_max.v);
  // The peer retransmits its (old) data: the duplicate is answered with an
  // ACK sequenced at SND.MAX, not at the rewound SND.NXT.
  expect_one(h.seg(S(300, 100, F::ACK | F::PSH, "peer")), 3100, 304, F::ACK);
  // The peer's ACK of everything ends the retransmission.
  h.seg(S(304, 3100, F::ACK));
  CHECK(h.t.snd_una.v == 3100);
  CHECK(!(h.t.timers & kTmRtx));
}

TEST_CASE("ESTABLISHED: data retries are bounded, then RST and free",
          "[tcp][established][timer][rto]") {
  H h;
  h.cfg.data_retries = 3;
  h.cfg.rto_max_ms = 2000;
  established(h);
  h.app_send("x");
  h.flush();
  Out* o = nullptr;
  for (int i = 0; i < 10 && (!o || o->op == FlowOp::Keep); i++) o = &h.at(h.deadline());
  REQUIRE(o->op == FlowOp::Free);
  expect_one(*o, 101, 0, F::RST);  // <SEQ=SND.NXT>: the byte was (re)sent
  CHECK(h.st.timeout_established == 1);
  CHECK(h.st.retransmits == 3);
}

TEST_CASE("ESTABLISHED: three duplicate ACKs trigger fast retransmit (NewReno)",
          "[tcp][established][congestion]") {
  H h;
  established(h);
  h.t.cwnd = 10 * 1460;
  std::string big(5 * 1460, 'y');
  h.app_send(big);
  REQUIRE(int(h.flush().n) == 5);
  expect_none(h.seg(S(300, 100, F::ACK)));
  expect_none(h.seg(S(300, 100, F::ACK)));
  Out& o = h.seg(S(300, 100, F::ACK));
  REQUIRE(int(o.n) >= 1);
  expect_seg(o.seg[0], 100, 300, F::ACK, 1460);
  CHECK(h.st.fast_retransmits == 1);
  CHECK(h.t.has(kInRecovery));
  CHECK(h.t.ssthresh == 5 * 1460 / 2);
  // A partial ACK retransmits the next hole and stays in recovery.
  Out& p = h.seg(S(300, 100 + 1460, F::ACK));
  REQUIRE(int(p.n) >= 1);
  expect_seg(p.seg[0], 1560, 300, F::ACK, 1460);
  CHECK(h.t.has(kInRecovery));
  // The full ACK ends recovery with cwnd = min(ssthresh, flight + MSS).
  h.seg(S(300, 100 + 5 * 1460, F::ACK));
  CHECK(!h.t.has(kInRecovery));
  CHECK(h.t.cwnd <= h.t.ssthresh);
}

TEST_CASE("ESTABLISHED: a zero window is probed with backoff; opening it resumes",
          "[tcp][established][persist][timer]") {
  H h;
  established(h);
  h.seg(S(300, 100, F::ACK, {}, 0));
  CHECK(h.t.snd_wnd == 0);
  h.app_send("abc");
  expect_none(h.flush());
  REQUIRE((h.t.timers & kTmPersist));
  uint32_t first = h.deadline();
  Out& p = h.at(first);
  expect_one(p, 100, 300, F::ACK, 1);  // one octet of new data beyond the window
  CHECK(h.st.persist_probes == 1);
  CHECK(h.t.snd_nxt == Seq(100));
  uint32_t second = h.deadline();
  CHECK(second - first == 2 * h.t.rto_ms);  // the interval doubled
  // The window opens: all data goes.
  Out& o = h.seg(S(300, 100, F::ACK, {}, 1000));
  expect_one(o, 100, 300, F::ACK | F::PSH, 3);
  CHECK(!(h.t.timers & kTmPersist));
}

TEST_CASE("ESTABLISHED: an ACK sent while a probe's octet is outstanding is sequenced at the window edge",
          "[tcp][established][persist][zero-window]") {
  // SND.MAX covers the probe's octet, which a zero-window peer did not take;
  // an ACK sequenced there would fail its acceptability test (with a zero
  // window only RCV.NXT is acceptable), so it carries SND.UNA + SND.WND.
  H h;
  established(h);
  h.seg(S(300, 100, F::ACK, {}, 0));
  h.app_send("abc");
  h.flush();
  Out& p = h.at(h.deadline());
  expect_one(p, 100, 300, F::ACK, 1);  // the probe
  REQUIRE(h.t.snd_max == Seq(101));
  // The peer, window still zero, sends data and then repeats it (its ACK of
  // ours lost): the duplicate gets an immediate ACK at <SEQ=100>.
  h.seg(S(300, 100, F::ACK | F::PSH, "hi", 0));
  expect_one(h.seg(S(300, 100, F::ACK | F::PSH, "hi", 0)), 100, 302, F::ACK);
}

TEST_CASE("ESTABLISHED: a live reader that ACKs every probe keeps its zero window as long as it likes",
          "[tcp][established][persist][timer][zero-window]") {
  // RFC 1122 4.2.2.17: probing continues while the receiver ACKs the probes.
  // (On the old code the 5th unanswered-looking probe killed the flow.)
  H h;
  h.cfg.data_retries = 4;
  h.cfg.rto_max_ms = 5000;
  established(h);
  h.seg(S(300, 100, F::ACK, {}, 0));
  h.app_send("abc");
  h.flush();
  for (int i = 0; i < 40; i++) {
    Out& o = h.at(h.deadline());
    REQUIRE(o.op == FlowOp::Keep);
    REQUIRE(o.n == 1);  // a one-byte probe beyond the window
    CHECK(o.seg[0].data_len == 1);
    h.seg(S(300, 100, F::ACK, {}, 0));  // every probe answered with a zero window
  }
  CHECK(h.st.persist_probes == 40);
  CHECK(h.st.dup_acks_in == 0);  // probe replies are not duplicate ACKs
  CHECK(h.st.fast_retransmits == 0);
  CHECK(h.st.timeout_persist == 0);
}

TEST_CASE("ESTABLISHED: a zero-window peer that stops answering is dropped after the retries",
          "[tcp][established][persist][timer][zero-window]") {
  H h;
  h.cfg.data_retries = 4;
  h.cfg.rto_max_ms = 5000;
  established(h);
  h.seg(S(300, 100, F::ACK, {}, 0));
  h.app_send("abc");
  h.flush();
  Out* o = nullptr;
  for (int i = 0; i < 20; i++) {
    o = &h.at(h.deadline());
    if (o->op != FlowOp::Keep) break;
  }
  REQUIRE(o->op == FlowOp::Free);
  CHECK(h.st.timeout_persist == 1);
}

TEST_CASE("LAST-ACK: an orphan facing a zero window is bounded even if the peer ACKs every probe",
          "[tcp][last-ack][persist][zero-window][orphan]") {
  // FreeBSD-SA-15:13: probes of an orphan never reset its count.
  H h;
  h.cfg.orphan_retries = 3;
  h.cfg.rto_max_ms = 5000;
  established(h);
  h.app_send("abc");
  h.flush();
  h.seg(S(300, 100, F::ACK | F::FIN, {}, 0));  // the peer closes, window shut, nothing of ours acked
  h.app_close();
  REQUIRE(h.t.state == TcpState::LastAck);
  Out* o = nullptr;
  int rounds = 0;
  for (; rounds < 50; rounds++) {
    o = &h.at(h.deadline());
    if (o->op != FlowOp::Keep) break;
    h.seg(S(301, 100, F::ACK, {}, 0));
  }
  REQUIRE(o->op == FlowOp::Free);
  CHECK(rounds <= 6);
}

TEST_CASE("ESTABLISHED: idle timeout closes gracefully at N, not N-1",
          "[tcp][established][timer][idle]") {
  H h;
  h.cfg.idle_timeout_ms = 5000;
  established(h);
  uint32_t t0 = h.now;
  h.now = t0 + 3000;
  h.seg(S(300, 100, F::ACK, "k"));  // traffic postpones the timeout
  expect_one(h.at(t0 + 3040), 100, 301, F::ACK);
  expect_none(h.at(t0 + 5000));
  CHECK(h.t.state == TcpState::Established);
  expect_none(h.at(t0 + 7999));
  h.read_all();
  Out& o = h.at(t0 + 8000);
  expect_one(o, 100, 301, F::FIN | F::ACK);
  CHECK(h.t.state == TcpState::FinWait1);
  CHECK(h.st.timeout_idle == 1);
}

TEST_CASE("ESTABLISHED: with no idle timeout, keep-alive probes then reset",
          "[tcp][established][timer][keepalive]") {
  H h;
  h.cfg.idle_timeout_ms = 0;
  h.cfg.keepalive_idle_ms = 10000;
  h.cfg.keepalive_intvl_ms = 1000;
  h.cfg.keepalive_probes = 2;
  established(h);
  uint32_t t0 = h.now;
  expect_none(h.at(t0 + 9999));
  expect_one(h.at(t0 + 10000), 99, 300, F::ACK);  // <SEQ=SND.NXT-1>
  expect_one(h.at(t0 + 11000), 99, 300, F::ACK);
  Out& o = h.at(t0 + 12000);
  expect_one(o, 100, 0, F::RST);
  CHECK(o.op == FlowOp::Free);
  CHECK(h.st.timeout_keepalive == 1);
  CHECK(h.st.keepalive_probes == 2);
}

TEST_CASE("ESTABLISHED: a keep-alive answer keeps the flow", "[tcp][established][keepalive]") {
  H h;
  h.cfg.idle_timeout_ms = 0;
  h.cfg.keepalive_idle_ms = 10000;
  h.cfg.keepalive_intvl_ms = 1000;
  established(h);
  uint32_t t0 = h.now;
  h.at(t0 + 10000);
  h.seg(S(300, 100, F::ACK));
  CHECK(h.t.ka_probes == 0);
  expect_none(h.at(t0 + 19999));
  expect_one(h.at(t0 + 20000), 99, 300, F::ACK);
}

TEST_CASE("ESTABLISHED: URG is delivered inline and counted", "[tcp][established]") {
  H h;
  established(h);
  TcpRepr u = S(300, 100, F::ACK | F::URG, "!");
  u.urgent = 1;
  h.seg(u);
  CHECK(h.received() == "!");
  CHECK(h.st.urg_ignored == 1);
}

TEST_CASE("ESTABLISHED: ABORT sends <SEQ=SND.NXT><CTL=RST>", "[tcp][established]") {
  H h;
  established(h);
  Out& o = h.app_abort();
  expect_one(o, 100, 0, F::RST);
  CHECK(o.op == FlowOp::Free);
  CHECK(h.st.states[size_t(TcpState::Established)] == 0);
}

TEST_CASE("ESTABLISHED: CLOSE with unread data resets (RFC 1122 4.2.2.13)",
          "[tcp][established]") {
  H h;
  established(h);
  h.seg(S(300, 100, F::ACK, "unread"));
  Out& o = h.app_close();
  expect_one(o, 100, 0, F::RST);
  CHECK(o.op == FlowOp::Free);
}

// ============================================================ FIN-WAIT-1 ===
TEST_CASE("FIN-WAIT-1: the ACK of our FIN -> FIN-WAIT-2", "[tcp][fin-wait-1]") {
  H h;
  fin_wait_2(h);
  CHECK(h.st.states[size_t(TcpState::FinWait2)] == 1);
  CHECK((h.t.timers & kTmLife));
  CHECK(!(h.t.timers & kTmRtx));
}

TEST_CASE("FIN-WAIT-1: FIN that also ACKs ours -> TIME-WAIT", "[tcp][fin-wait-1][time-wait]") {
  H h;
  fin_wait_1(h);
  Out& o = h.seg(S(300, 101, F::FIN | F::ACK));
  expect_one(o, 101, 301, F::ACK);
  CHECK(o.op == FlowOp::ToTimeWait);
  CHECK(h.st.tw_entered == 1);
  CHECK(h.chunks.in_use() == 0);
}

TEST_CASE("FIN-WAIT-1: FIN without the ACK of ours -> CLOSING", "[tcp][fin-wait-1][closing]") {
  H h;
  closing(h);
  CHECK(h.st.states[size_t(TcpState::Closing)] == 1);
}

TEST_CASE("FIN-WAIT-1: the FIN follows queued data", "[tcp][fin-wait-1]") {
  H h;
  established(h);
  h.app_send("bye");
  Out& o = h.app_close();
  expect_one(o, 100, 300, F::ACK | F::PSH | F::FIN, 3);
  CHECK(h.t.snd_nxt == Seq(104));
  h.seg(S(300, 103, F::ACK));  // data acknowledged, FIN not yet
  CHECK(h.t.state == TcpState::FinWait1);
  h.seg(S(300, 104, F::ACK));
  CHECK(h.t.state == TcpState::FinWait2);
}

TEST_CASE("FIN-WAIT-1: FIN retransmitted at RTO; an orphan gives up after its retries",
          "[tcp][fin-wait-1][timer]") {
  H h;
  h.cfg.orphan_retries = 2;
  fin_wait_1(h);
  uint32_t t0 = h.now, rto = h.t.rto_ms;
  expect_none(h.at(t0 + rto - 1));
  expect_one(h.at(t0 + rto), 100, 300, F::FIN | F::ACK);
  expect_none(h.at(t0 + 3 * rto - 1));
  expect_one(h.at(t0 + 3 * rto), 100, 300, F::FIN | F::ACK);
  Out& o = h.at(t0 + 7 * rto);
  expect_one(o, 101, 0, F::RST);
  CHECK(o.op == FlowOp::Free);
  CHECK(h.st.timeout_fin_wait_1 == 1);
}

TEST_CASE("FIN-WAIT-1: data arriving after CLOSE is answered with RST",
          "[tcp][fin-wait-1]") {
  H h;
  fin_wait_1(h);
  Out& o = h.seg(S(300, 101, F::ACK, "late"));
  expect_one(o, 101, 0, F::RST);
  CHECK(o.op == FlowOp::Free);
}

// ============================================================ FIN-WAIT-2 ===
TEST_CASE("FIN-WAIT-2: the peer's FIN -> TIME-WAIT with <SEQ=101><ACK=301>",
          "[tcp][fin-wait-2][time-wait]") {
  H h;
  time_wait(h);
  CHECK(h.st.states[size_t(TcpState::TimeWait)] == 1);
  CHECK(h.st.states[size_t(TcpState::FinWait2)] == 0);
}

TEST_CASE("FIN-WAIT-2: orphan timeout at N, not N-1", "[tcp][fin-wait-2][timer]") {
  H h;
  h.cfg.fin_wait_2_timeout_ms = 60000;
  fin_wait_2(h);
  uint32_t t0 = h.now;
  expect_none(h.at(t0 + 59999));
  CHECK(h.t.state == TcpState::FinWait2);
  Out& o = h.at(t0 + 60000);
  expect_none(o);
  CHECK(o.op == FlowOp::Free);
  CHECK(h.st.timeout_fin_wait_2 == 1);
  CHECK(h.st.states[size_t(TcpState::FinWait2)] == 0);
}

TEST_CASE("FIN-WAIT-2 after a half-close: the peer may keep sending; the bound is on silence",
          "[tcp][fin-wait-2][timer][half-close]") {
  H h;
  h.cfg.fin_wait_2_timeout_ms = 60000;
  established(h);
  expect_one(h.step([&](Env& e) { shutdown_send(h.t, e); }), 100, 300, F::FIN | F::ACK);
  REQUIRE(h.t.state == TcpState::FinWait1);
  expect_none(h.seg(S(300, 101, F::ACK)));
  REQUIRE(h.t.state == TcpState::FinWait2);
  uint32_t t0 = h.now;
  // Data after our FIN is taken (not answered with RST, as after CLOSE).
  h.now = t0 + 40000;
  h.seg(S(300, 101, F::ACK, "still talking"));
  CHECK(h.received() == "still talking");
  CHECK(h.st.closed_abort == 0);
  h.read_all();
  // 60 s after entering FIN-WAIT-2 the peer spoke 20 s ago: kept.
  h.at(t0 + 60000);
  CHECK(h.t.state == TcpState::FinWait2);
  // 60 s of silence: reclaimed.
  expect_none(h.at(t0 + 40000 + 59999));
  CHECK(h.t.state == TcpState::FinWait2);
  Out& o = h.at(t0 + 40000 + 60000);
  CHECK(o.op == FlowOp::Free);
  CHECK(h.st.timeout_fin_wait_2 == 1);
}

// ============================================================ CLOSE-WAIT ===
TEST_CASE("CLOSE-WAIT: CLOSE sends FIN -> LAST-ACK", "[tcp][close-wait]") {
  H h;
  last_ack(h);
  CHECK(h.st.states[size_t(TcpState::LastAck)] == 1);
}

TEST_CASE("CLOSE-WAIT: a retransmitted FIN is ACKed again", "[tcp][close-wait]") {
  H h;
  close_wait(h);
  expect_one(h.seg(S(300, 100, F::FIN | F::ACK)), 100, 301, F::ACK);
  CHECK(h.t.state == TcpState::CloseWait);
}

TEST_CASE("CLOSE-WAIT: the application may still send before closing", "[tcp][close-wait]") {
  H h;
  close_wait(h);
  h.app_send("last words");
  expect_one(h.flush(), 100, 301, F::ACK | F::PSH, 10);
  expect_one(h.app_close(), 110, 301, F::ACK | F::FIN);
}

TEST_CASE("CLOSE-WAIT: idle timeout closes it too", "[tcp][close-wait][timer]") {
  H h;
  h.cfg.idle_timeout_ms = 1000;
  close_wait(h);
  uint32_t t0 = h.now;
  expect_none(h.at(t0 + 999));
  expect_one(h.at(t0 + 1000), 100, 301, F::FIN | F::ACK);
  CHECK(h.t.state == TcpState::LastAck);
}

// =============================================================== CLOSING ===
TEST_CASE("CLOSING: the ACK of our FIN -> TIME-WAIT", "[tcp][closing][time-wait]") {
  H h;
  closing(h);
  Out& o = h.seg(S(301, 101, F::ACK));
  expect_none(o);
  CHECK(o.op == FlowOp::ToTimeWait);
}

TEST_CASE("CLOSING: FIN retransmitted at RTO, bounded", "[tcp][closing][timer]") {
  H h;
  h.cfg.orphan_retries = 1;
  closing(h);
  uint32_t t0 = h.now, rto = h.t.rto_ms;  // the FIN went out at fin_wait_1(), same clock
  expect_none(h.at(t0 + rto - 1));
  expect_one(h.at(t0 + rto), 100, 301, F::FIN | F::ACK);
  Out& o = h.at(t0 + 3 * rto);
  expect_one(o, 101, 0, F::RST);
  CHECK(o.op == FlowOp::Free);
  CHECK(h.st.timeout_closing == 1);
}

// ============================================================== LAST-ACK ===
TEST_CASE("LAST-ACK: the ACK of our FIN -> CLOSED", "[tcp][last-ack]") {
  H h;
  last_ack(h);
  Out& o = h.seg(S(301, 101, F::ACK));
  expect_none(o);
  CHECK(o.op == FlowOp::Free);
  CHECK(h.st.closed_passive == 1);
  CHECK(h.st.states[size_t(TcpState::LastAck)] == 0);
  CHECK(h.st.tw_entered == 0);  // the passive closer holds no TIME-WAIT
}

TEST_CASE("LAST-ACK: a zero-window peer cannot hold it forever (FreeBSD-SA-15:13)",
          "[tcp][last-ack][timer]") {
  H h;
  h.cfg.orphan_retries = 3;
  close_wait(h);
  h.seg(S(301, 100, F::ACK, {}, 0));  // the peer shuts its window
  h.app_send("unsent");
  h.app_close();
  REQUIRE(h.t.state == TcpState::LastAck);
  Out* o = nullptr;
  for (int i = 0; i < 30; i++) {
    o = &h.at(h.deadline());
    if (o->op != FlowOp::Keep) break;
    h.seg(S(301, 100, F::ACK, {}, 0));
  }
  REQUIRE(o->op == FlowOp::Free);
  CHECK(h.st.timeout_persist + h.st.timeout_last_ack >= 1);
}

TEST_CASE("LAST-ACK: FIN retransmitted, then given up", "[tcp][last-ack][timer]") {
  H h;
  h.cfg.orphan_retries = 1;
  last_ack(h);
  uint32_t t0 = h.now, rto = h.t.rto_ms;
  expect_none(h.at(t0 + rto - 1));
  expect_one(h.at(t0 + rto), 100, 301, F::FIN | F::ACK);
  Out& o = h.at(t0 + 3 * rto);
  expect_one(o, 101, 0, F::RST);
  CHECK(o.op == FlowOp::Free);
  CHECK(h.st.timeout_last_ack == 1);
}

// ================================================ options and wrap-around ===
TEST_CASE("options: MSS clamped, window scale clamped to 14, timestamps echoed",
          "[tcp][options]") {
  H h;
  h.cfg.timestamps = true;
  h.cfg.window_scaling = true;
  TcpRepr syn = S(299, 0, F::SYN);
  syn.opt.mss = 1;  // absurd: clamped to kMinMss
  syn.opt.wscale = 20;
  syn.opt.has_ts = true;
  syn.opt.ts_val = 5000;
  h.out.reset();
  Env e = h.env();
  open_passive(h.t, syn, 99, e, h.out);
  REQUIRE(int(h.out.n) == 1);
  const auto& sa = h.out.seg[0].h;
  CHECK(sa.opt.wscale == h.cfg.rcv_wscale());
  CHECK(sa.opt.has_ts);
  CHECK(sa.opt.ts_ecr == 5000);
  CHECK(h.t.snd_mss == kMinMss);
  CHECK(h.t.snd_wscale == 14);
  TcpRepr ack = S(300, 100, F::ACK, {}, 100);
  ack.opt.has_ts = true;
  ack.opt.ts_val = 5001;
  ack.opt.ts_ecr = h.now;
  h.seg(ack);
  CHECK(h.t.snd_wnd == (100u << 14));
  CHECK(h.t.ts_recent == 5001);
  // PAWS: an older timestamp is refused with an ACK.
  TcpRepr old = S(300, 100, F::ACK, "x", 100);
  old.opt.has_ts = true;
  old.opt.ts_val = 4000;
  Out& o = h.seg(old);
  REQUIRE(int(o.n) == 1);
  CHECK(o.seg[0].h.opt.ts_ecr == 5001);
  CHECK(h.st.paws_rejected == 1);
  CHECK(h.rcvq().len == 0);
  // A segment without timestamps once negotiated is dropped (RFC 7323 3.2).
  expect_none(h.seg(S(300, 100, F::ACK, "y", 100)));
  CHECK(h.rcvq().len == 0);
}

TEST_CASE("options: no window scaling unless both sides offer it", "[tcp][options]") {
  H h;
  h.cfg.window_scaling = true;
  TcpRepr syn = S(299, 0, F::SYN);
  h.out.reset();
  Env e = h.env();
  open_passive(h.t, syn, 99, e, h.out);
  CHECK_FALSE(h.out.seg[0].h.opt.has_wscale());
  CHECK(h.t.snd_mss == 536);  // RFC 9293 3.7.1 default
  CHECK(h.t.rcv_wscale == 0);
}

TEST_CASE("sequence numbers wrap around 2^32 through a whole connection",
          "[tcp][wrap]") {
  H h;
  TcpRepr syn = S(0xfffffff0u, 0, F::SYN);
  syn.opt.mss = 1460;
  h.out.reset();
  Env e = h.env();
  open_passive(h.t, syn, 0xfffffffau, e, h.out);
  expect_one(h.out, 0xfffffffau, 0xfffffff1u, F::SYN | F::ACK);
  h.seg(S(0xfffffff1u, 0xfffffffbu, F::ACK));
  REQUIRE(h.t.state == TcpState::Established);
  // 32 bytes in each direction across the wrap.
  std::string d(32, 'w');
  expect_none(h.seg(S(0xfffffff1u, 0xfffffffbu, F::ACK, d)));
  CHECK(h.t.rcv_nxt == Seq(0x11u));
  h.read_all();
  h.app_send(d);
  expect_one(h.flush(), 0xfffffffbu, 0x11u, F::ACK | F::PSH, 32);
  h.seg(S(0x11u, 0x1bu, F::ACK));
  CHECK(h.t.snd_una == Seq(0x1bu));
  expect_one(h.app_close(), 0x1bu, 0x11u, F::FIN | F::ACK);
  h.seg(S(0x11u, 0x1cu, F::ACK));
  CHECK(h.t.state == TcpState::FinWait2);
  Out& o = h.seg(S(0x11u, 0x1cu, F::FIN | F::ACK));
  expect_one(o, 0x1cu, 0x12u, F::ACK);
  CHECK(o.op == FlowOp::ToTimeWait);
}

TEST_CASE("Seq compares modulo 2^32", "[tcp][wrap]") {
  CHECK(Seq(0xffffffffu) < Seq(0));
  CHECK(Seq(0) - Seq(0xffffffffu) == 1);
  CHECK(Seq(5) > Seq(0xfffffff0u));
  CHECK(in_range(Seq(0xfffffff0u), Seq(3), Seq(10)));
  CHECK_FALSE(in_range(Seq(0xfffffff0u), Seq(10), Seq(10)));
}

TEST_CASE("state names follow RFC 9293", "[tcp]") {
  CHECK(to_string(TcpState::SynReceived) == "SYN-RECEIVED");
  CHECK(to_string(TcpState::TimeWait) == "TIME-WAIT");
  CHECK(to_string(TcpState::FinWait1) == "FIN-WAIT-1");
  TcpState s;
  REQUIRE(parse_state("time_wait", s));
  CHECK(s == TcpState::TimeWait);
  CHECK_FALSE(parse_state("TIMEWAIT", s));
}

// ============================================ randomised: invariants hold ===
TEST_CASE("random segments never break the TCB invariants or leak buffers",
          "[tcp][random][invariants]") {
  std::mt19937 rng(2024);
  static const char junk[64] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!";
  for (int run = 0; run < 300; run++) {
    H h;
    h.cfg.timestamps = run & 1;
    established(h);
    for (int step = 0; step < 200 && h.t.state != TcpState::Closed &&
                       h.t.state != TcpState::TimeWait;
         step++) {
      unsigned what = rng() % 12;
      Out* o;
      if (what < 7) {
        uint8_t fl = uint8_t(rng() & 0x3f);
        if ((fl & F::SYN) && (fl & (F::FIN | F::RST))) fl &= uint8_t(~F::SYN);
        uint32_t seq = h.t.rcv_nxt.v + uint32_t(int32_t(rng() % 400) - 200);
        uint32_t ack = h.t.snd_una.v + uint32_t(int32_t(rng() % 400) - 100);
        size_t len = rng() % 3 == 0 ? rng() % 40 : 0;
        TcpRepr s = S(seq, ack, fl, std::string_view(junk, len), uint16_t(rng() % 3 ? 65535 : rng() % 100));
        if (h.cfg.timestamps) {
          s.opt.has_ts = rng() % 8 != 0;
          s.opt.ts_val = uint32_t(step * 10 + int(rng() % 20) - 10);
        }
        o = &h.seg(s);
      } else if (what < 9) {
        o = &h.at(h.now + uint32_t(rng() % 3000));
      } else if (what == 9) {
        // Copied or lent (the junk is static): either may follow the other.
        if (rng() & 1) h.app_send(std::string_view(junk, rng() % 64));
        else h.app_send_lent(std::string_view(junk, rng() % 64));
        o = &h.flush();
      } else if (what == 10) {
        h.read_all();
        o = &h.flush();
      } else {
        o = &h.app_close();
      }
      if (o->op == FlowOp::Free) CHECK(h.t.state == TcpState::Closed);
    }
    if (h.t.state != TcpState::Closed && h.t.state != TcpState::TimeWait) {
      Env e = h.env();
      release(h.t, e);
    }
    REQUIRE(h.chunks.in_use() == 0);
    REQUIRE(h.ooo.in_use() == 0);
    h.queues_trim_now();
    REQUIRE(h.chunks.queues_in_use() == 0);
  }
}

// ================================================== lent bytes (send_lent) ===
namespace {
const std::string kLent = [] {
  std::string r = "HTTP/1.1 200 OK\r\nServer: tcpterm\r\nContent-Length: 300\r\n\r\n";
  for (int i = 0; r.size() < 400; i++) r += char('a' + i % 26);
  return r;
}();
}  // namespace

TEST_CASE("send_lent: the queue refers to the bytes, takes no chunk, retransmits from them, and lets go when ACKed",
          "[tcp][lent]") {
  H h;
  established(h);
  REQUIRE(h.app_send_lent(kLent) == kLent.size());
  CHECK(h.chunks.in_use() == 0);
  CHECK(queues(h.t, h.chunks).snd_lent == reinterpret_cast<const uint8_t*>(kLent.data()));
  CHECK(h.st.snd_lent_bytes == kLent.size());
  uint32_t t0 = h.now;
  Out& o = h.flush();
  expect_one(o, 100, 300, F::ACK | F::PSH, uint32_t(kLent.size()));
  CHECK(h.sent_data(o.seg[0]) == kLent);
  // A partial ACK: the rest stays lent, from the right place.
  h.now += 5;
  expect_none(h.seg(S(300, 100 + 120, F::ACK)));
  CHECK(h.sndq().len == kLent.size() - 120);
  CHECK(queues(h.t, h.chunks).snd_lent == reinterpret_cast<const uint8_t*>(kLent.data()) + 120);
  // The retransmission timeout sends the rest again, read from the lent bytes.
  Out& r = h.at(h.now + h.t.rto_ms + 1);
  (void)t0;
  expect_one(r, 220, 300, F::ACK | F::PSH, uint32_t(kLent.size() - 120));
  CHECK(h.sent_data(r.seg[0]) == kLent.substr(120));
  CHECK(h.chunks.in_use() == 0);
  // All ACKed: the queue lets go of the bytes and the flow of its headers.
  expect_none(h.seg(S(300, 100 + uint32_t(kLent.size()), F::ACK)));
  CHECK(h.sndq().len == 0);
  CHECK(h.t.q == kNil);
  CHECK(h.chunks.queues_in_use() == 0);
}

TEST_CASE("send_lent: a send after lent bytes copies them into chunks first; lent bytes after queued ones are copied",
          "[tcp][lent]") {
  H h;
  established(h);
  REQUIRE(h.app_send_lent(std::string_view(kLent).substr(0, 50)) == 50);
  REQUIRE(h.app_send("XYZ") == 3);
  CHECK(queues(h.t, h.chunks).snd_lent == nullptr);
  CHECK(h.chunks.in_use() == 1);
  Out& o = h.flush();
  expect_one(o, 100, 300, F::ACK | F::PSH, 53);
  CHECK(h.sent_data(o.seg[0]) == kLent.substr(0, 50) + "XYZ");
  // A queue that holds bytes already takes lent ones by copy, in order.
  H g;
  established(g);
  REQUIRE(g.app_send("123") == 3);
  REQUIRE(g.app_send_lent(std::string_view(kLent).substr(0, 10)) == 10);
  CHECK(queues(g.t, g.chunks).snd_lent == nullptr);
  CHECK(g.st.snd_lent_bytes == 0);
  Out& p = g.flush();
  expect_one(p, 100, 300, F::ACK | F::PSH, 13);
  CHECK(g.sent_data(p.seg[0]) == "123" + kLent.substr(0, 10));
}

TEST_CASE("send_lent: with no chunk free for them, a later send takes nothing and the lent bytes stay whole",
          "[tcp][lent]") {
  H h;
  established(h);
  std::vector<uint32_t> taken;
  for (uint32_t c; (c = h.chunks.alloc()) != kNil;) taken.push_back(c);
  // Lending needs no chunk at all.
  REQUIRE(h.app_send_lent(kLent) == kLent.size());
  // Appending would first copy them: no room is offered, nothing is taken.
  {
    Env e = h.env();
    CHECK(send_space(h.t, e) == 0);
  }
  CHECK(h.app_send("more") == 0);
  CHECK(queues(h.t, h.chunks).snd_lent == reinterpret_cast<const uint8_t*>(kLent.data()));
  CHECK(h.sndq().len == kLent.size());
  // One chunk free: enough for the 400 lent bytes and 1 648 more.
  h.chunks.free(taken.back());
  taken.pop_back();
  {
    Env e = h.env();
    CHECK(send_space(h.t, e) == ChunkPool::kChunk - kLent.size());
  }
  CHECK(h.app_send("more") == 4);
  CHECK(queues(h.t, h.chunks).snd_lent == nullptr);
  Out& o = h.flush();
  expect_one(o, 100, 300, F::ACK | F::PSH, uint32_t(kLent.size() + 4));
  CHECK(h.sent_data(o.seg[0]) == kLent + "more");
  for (uint32_t c : taken) h.chunks.free(c);
}

TEST_CASE("send_lent: CLOSE sends the FIN after the lent bytes; ABORT and TIME-WAIT let go of them",
          "[tcp][lent]") {
  {
    H h;
    established(h);
    REQUIRE(h.app_send_lent(kLent) == kLent.size());
    Out& o = h.app_close();
    expect_one(o, 100, 300, F::ACK | F::PSH | F::FIN, uint32_t(kLent.size()));
    CHECK(h.sent_data(o.seg[0]) == kLent);
    // The peer ACKs all and closes: TIME-WAIT, the headers gone.
    uint32_t end = 100 + uint32_t(kLent.size()) + 1;
    h.seg(S(300, end, F::ACK));
    Out& tw = h.seg(S(300, end, F::FIN | F::ACK));
    CHECK(tw.op == FlowOp::ToTimeWait);
    CHECK(h.t.q == kNil);
    CHECK(h.chunks.queues_in_use() == 0);
  }
  {
    H h;
    established(h);
    REQUIRE(h.app_send_lent(kLent) == kLent.size());
    h.flush();
    Out& o = h.app_abort();
    CHECK(o.op == FlowOp::Free);
    CHECK(h.t.q == kNil);
    CHECK(h.chunks.queues_in_use() == 0);
  }
}

TEST_CASE("lent bytes: copied into chunks for a splice; a PROXY header is not put before them; the invariants see them",
          "[tcp][lent]") {
  ChunkPool pool(16);
  FlowQueues q;
  q.snd_lent = reinterpret_cast<const uint8_t*>(kLent.data());
  q.snd.len = uint32_t(kLent.size());
  CHECK(!q.idle());
  CHECK(!bq_put_before_splice(q.snd, pool, reinterpret_cast<const uint8_t*>("PROXY"), 5));
  REQUIRE(lend_to_chunks(q, pool));
  CHECK(q.snd_lent == nullptr);
  CHECK(q.snd.len == kLent.size());
  std::string back(kLent.size(), '\0');
  bq_copy_out(q.snd, pool, 0, reinterpret_cast<uint8_t*>(back.data()), back.size());
  CHECK(back == kLent);
  // The consumption of lent bytes moves the pointer; the last byte lets go.
  FlowQueues r;
  r.snd_lent = reinterpret_cast<const uint8_t*>(kLent.data());
  r.snd.len = 10;
  snd_consume(r, pool, 4);
  CHECK(r.snd_lent == reinterpret_cast<const uint8_t*>(kLent.data()) + 4);
  snd_consume(r, pool, 6);
  CHECK(r.snd_lent == nullptr);
  CHECK(r.idle());
  snd_clear(q, pool);
  CHECK(pool.in_use() == 0);
  // A TCB whose queue claims lent bytes and chunks at once is refused.
  H h;
  established(h);
  REQUIRE(h.app_send("abc") == 3);
  FlowQueues& bad = h.chunks.queues(h.t.q);
  bad.snd_lent = reinterpret_cast<const uint8_t*>(kLent.data());
  CHECK(!check_invariants(h.t, h.chunks));
  bad.snd_lent = nullptr;
  CHECK(check_invariants(h.t, h.chunks));
}

// ================================================ CLOSE before ESTABLISHED ===
TEST_CASE("SYN-SENT: CLOSE deletes the TCB", "[tcp][syn-sent]") {
  H h;
  syn_sent(h);
  Out& o = h.app_close();
  expect_none(o);
  CHECK(o.op == FlowOp::Free);
  CHECK(h.st.states[size_t(TcpState::SynSent)] == 0);
}

TEST_CASE("SYN-RECEIVED: CLOSE queues the FIN; the SYN-ACK is still retransmitted; the FIN follows the ACK",
          "[tcp][syn-received][fin-wait-1]") {
  // RFC 9293 3.10.4: the FIN waits for ESTABLISHED.  On the old code the
  // flow jumped to FIN-WAIT-1 and its RTO sent a FIN at the ISS instead of
  // the SYN-ACK.
  H h;
  listen_syn(h);
  expect_none(h.app_close());
  CHECK(h.t.state == TcpState::SynReceived);
  Out& r = h.at(h.deadline());
  REQUIRE(r.n == 1);
  CHECK(r.seg[0].h.flags == (F::SYN | F::ACK));
  CHECK(r.seg[0].h.seq == 99u);
  // The handshake's ACK arrives: the FIN goes out <SEQ=100><ACK=300>.
  expect_one(h.seg(S(300, 100, F::ACK)), 100, 300, F::FIN | F::ACK);
  CHECK(h.t.state == TcpState::FinWait1);
  expect_none(h.seg(S(300, 101, F::ACK)));
  CHECK(h.t.state == TcpState::FinWait2);
}

TEST_CASE("ESTABLISHED: a storm of out-of-window ACKs gets one reply per interval",
          "[tcp][established][rfc5961][dupack]") {
  H h;
  established(h);
  int replies = 0;
  for (int i = 0; i < 100; i++) replies += h.seg(S(100000 + i, 100, F::ACK)).n;
  CHECK(replies == 1);
  CHECK(h.st.oow_acks_suppressed == 99);
  // Text is always answered: the peer needs the ACK to recover.
  expect_one(h.seg(S(200, 100, F::ACK, "dup")), 100, 300, F::ACK);
  h.now += h.cfg.challenge_ack_interval_ms;
  expect_one(h.seg(S(100000, 100, F::ACK)), 100, 300, F::ACK);
}

TEST_CASE("LISTEN: an ACK returning a SYN cookie opens ESTABLISHED directly", "[tcp][syncookie]") {
  H h;
  h.cfg.timestamps = true;
  h.cfg.window_scaling = true;
  TcpRepr ack = S(300, 1000, F::ACK, {}, 512);
  ack.opt.has_ts = true;
  ack.opt.ts_val = 77;
  ack.opt.ts_ecr = 5;
  h.out.reset();
  Env e = h.env();
  open_from_cookie(h.t, ack, 1400, 7, e, h.out);
  CHECK(h.t.state == TcpState::Established);
  CHECK((h.out.events & ev::Established));
  CHECK(h.t.snd_una == Seq(1000));
  CHECK(h.t.snd_nxt == Seq(1000));
  CHECK(h.t.rcv_nxt == Seq(300));
  CHECK(h.t.snd_mss == 1400);
  CHECK(h.t.snd_wnd == (512u << 7));
  CHECK(h.t.has(kTsOk));
  CHECK(h.t.ts_recent == 77);
  REQUIRE(check_invariants(h.t, h.chunks));
  // Then the same ACK's text, as the stack does.
  TcpRepr data = S(300, 1000, F::ACK | F::PSH, "GET", 512);
  data.opt.has_ts = true;
  data.opt.ts_val = 77;
  h.seg(data);
  CHECK(h.received() == "GET");
}
