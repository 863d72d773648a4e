// Issue 9 (hardening): one test per defect found in the TCP core, each
// written against the behaviour of commit 4f69f80 (which it fails) and the
// RFC text (which it checks).
#include "tcp_harness.h"

#include "flow/time_wait.h"

using namespace tcptest;

namespace {
// ESTABLISHED with timestamps negotiated: peer TSval 1000 in its SYN.
void established_ts(H& h) {
  h.cfg.timestamps = true;
  TcpRepr syn = S(299, 0, F::SYN);
  syn.opt.mss = 1460;
  syn.opt.has_ts = true;
  syn.opt.ts_val = 1000;
  h.out.reset();
  Env e = h.env();
  e.ts_offset = 0;
  open_passive(h.t, syn, 99, e, h.out);
  TcpRepr ack = S(300, 100, F::ACK);
  ack.opt.has_ts = true;
  ack.opt.ts_val = 1001;
  ack.opt.ts_ecr = h.t.ts_now(h.now);
  h.seg(ack);
  REQUIRE(h.t.state == TcpState::Established);
  REQUIRE(h.t.ts_recent == 1001u);
}
TcpRepr TS(TcpRepr s, uint32_t val, uint32_t ecr = 0) {
  s.opt.has_ts = true;
  s.opt.ts_val = val;
  s.opt.ts_ecr = ecr;
  return s;
}
}  // namespace

// ------------------------------------------------------------ item 3 ---
TEST_CASE("zero window: a probe at RCV.NXT into a zero window is ACKed", "[hardening][zero-window]") {
  // RFC 1122 4.2.2.17, RFC 9293 3.10.7.4.  The old code accepted it silently.
  H h;
  h.cfg.rcv_buf = 4;
  established(h);
  h.seg(S(300, 100, F::ACK | F::PSH, "abcd"));  // fills the window, unread
  REQUIRE(h.rcvq().len == 4);
  Out& o = h.seg(S(304, 100, F::ACK, "e"));  // the peer's one-byte probe
  REQUIRE(o.n == 1);
  expect_seg(o.seg[0], 100, 304, F::ACK);
  CHECK(o.seg[0].h.window == 0);
  CHECK(h.st.zero_window_probes_in == 1);
}

TEST_CASE("zero window: an RTO while the peer's window is zero retransmits at SND.UNA",
          "[hardening][zero-window][rto]") {
  // The old RTO path went back to SND.UNA and called output(), which the
  // closed window silenced: nothing was sent and a retry was counted.
  H h;
  established(h);
  h.app_send("hello");
  expect_one(h.flush(), 100, 300, F::ACK | F::PSH, 5);
  // The peer ACKs nothing new and shrinks its window to zero (a window update
  // without acknowledging: SEG.ACK = SND.UNA, window 0, but our data is
  // still in flight).
  TcpRepr upd = S(300, 100, F::ACK, {}, 0);
  h.seg(upd);
  Out& o = h.at(h.deadline());
  REQUIRE(o.n >= 1);
  CHECK(o.seg[0].h.seq == 100u);
  CHECK(o.seg[0].data_len >= 1);
}

TEST_CASE("zero window: the first RTO with the window open still sends the head, once",
          "[hardening][rto]") {
  H h;
  established(h);
  h.app_send("hello");
  h.flush();
  Out& o = h.at(h.deadline());
  expect_one(o, 100, 300, F::ACK | F::PSH, 5);
  CHECK(h.st.retransmits == 1);
}

// ------------------------------------------------------------ item 8 ---
TEST_CASE("retransmitted FINs are always ACKed, not rate-limited like bare ACKs",
          "[hardening][close-wait][rfc5961]") {
  H h;
  close_wait(h);  // the peer's FIN <SEQ=300> is ACKed (RCV.NXT 301)
  int acks = 0;
  for (int i = 0; i < 3; i++) acks += h.seg(S(300, 100, F::FIN | F::ACK)).n;
  CHECK(acks == 3);  // old code: one, then the out-of-window limit swallowed the rest
}

TEST_CASE("TS.Recent is not updated by an RST that only earns a challenge ACK",
          "[hardening][timestamps][rfc5961]") {
  H h;
  established_ts(h);
  Out& o = h.seg(TS(S(305, 0, F::RST), 5000));  // in window, not at RCV.NXT
  REQUIRE(o.n == 1);  // the challenge ACK
  CHECK(h.t.ts_recent == 1001u);  // old code: 5000, and the real peer's next segments fail PAWS
  CHECK(o.seg[0].h.opt.ts_ecr == 1001u);
}

TEST_CASE("TS.Recent is not updated by a SYN or an unacceptable ACK", "[hardening][timestamps]") {
  H h;
  established_ts(h);
  h.seg(TS(S(300, 0, F::SYN), 6000));          // challenge ACK
  h.seg(TS(S(300, 5000, F::ACK), 7000));       // ACK of data never sent
  CHECK(h.t.ts_recent == 1001u);
  h.seg(TS(S(300, 100, F::ACK), 1002));        // the real peer continues
  CHECK(h.t.ts_recent == 1002u);
  CHECK(h.st.paws_rejected == 0);
}

TEST_CASE("TS.Recent is invalid after 24 days idle (RFC 7323 5.5)", "[hardening][timestamps][paws]") {
  H h;
  h.cfg.idle_timeout_ms = 0;
  established_ts(h);
  h.now += kPawsIdleMs + 1000;
  // The peer's clock wrapped or restarted: an older TSval after 25 days idle.
  Out& o = h.seg(TS(S(300, 100, F::ACK | F::PSH, "x"), 10));
  CHECK(h.st.paws_rejected == 0);  // old code: rejected forever
  CHECK(h.rcvq().len == 1);
  CHECK(h.t.ts_recent == 10u);
  (void)o;
}

TEST_CASE("an RTT sample from a TSecr we never sent is ignored", "[hardening][timestamps][rtt]") {
  H h;
  established_ts(h);
  uint32_t rto = h.t.rto_ms;
  h.app_send("abc");
  h.flush();
  // ACK of the data echoing a TSval from our future (forged or corrupted).
  h.seg(TS(S(300, 103, F::ACK), 1002, h.t.ts_now(h.now) + 100000));
  CHECK(h.t.rto_ms == rto);  // old code: an RTT of ~4 billion ms -> RTO at its maximum
  CHECK(h.st.ts_ecr_invalid == 1);
}

TEST_CASE("NewReno: duplicate ACKs of data sent before an RTO do not trigger fast retransmit",
          "[hardening][newreno][rfc6582]") {
  H h;
  h.cfg.rcv_buf = 65535;
  established(h);
  std::string data(1460 * 4, 'x');
  h.app_send(data);
  h.flush();
  Out& r = h.at(h.deadline());  // RTO: recover = SND.MAX
  REQUIRE(r.n >= 1);
  uint32_t fr = h.st.fast_retransmits;
  for (int i = 0; i < 4; i++) h.seg(S(300, 100, F::ACK));  // duplicates of the old flight
  CHECK(h.st.fast_retransmits == fr);  // RFC 6582 3.2 (1): ack <= recover
}

TEST_CASE("RTO: ssthresh uses FlightSize (SND.MAX) and is held on a repeated timeout",
          "[hardening][rto][rfc5681]") {
  H h;
  h.cfg.rcv_buf = 65535;
  established(h);
  h.seg(S(300, 100, F::ACK, {}, 65535));
  std::string data(1460 * 3, 'x');  // initial window: 3 segments in flight
  h.app_send(data);
  h.flush();
  REQUIRE(h.t.flight_size() == 1460u * 3);
  h.at(h.deadline());
  CHECK(h.t.ssthresh == 2920u);  // max(4380 / 2, 2 * 1460)
  h.at(h.deadline());  // the retransmission times out too
  CHECK(h.t.ssthresh == 2920u);  // held (RFC 5681 3.1): not recomputed from one segment
}

TEST_CASE("RFC 6298 5.7: after a SYN timeout the RTO is 3 s once the connection is established",
          "[hardening][rto][syn-sent]") {
  H h;
  syn_sent(h);
  h.at(h.deadline());  // the SYN is retransmitted
  h.seg(S(299, 100, F::SYN | F::ACK));
  REQUIRE(h.t.state == TcpState::Established);
  CHECK(h.t.rto_ms == 3000u);  // old code: 1000
}

TEST_CASE("RFC 6298 5.7: after a SYN-ACK timeout too", "[hardening][rto][syn-received]") {
  H h;
  listen_syn(h);
  h.at(h.deadline());  // SYN-ACK retransmitted
  h.seg(S(300, 100, F::ACK));
  REQUIRE(h.t.state == TcpState::Established);
  CHECK(h.t.rto_ms == 3000u);
}

TEST_CASE("a SYN-cookie connection records Last.ACK.sent, so TS.Recent follows the peer",
          "[hardening][syncookie][timestamps]") {
  H h;
  h.cfg.timestamps = true;
  TcpRepr ack = TS(S(300, 100, F::ACK), 1000, 50);
  h.out.reset();
  Env e = h.env();
  open_from_cookie(h.t, ack, 1460, 0xff, e, h.out);
  REQUIRE(h.t.state == TcpState::Established);
  CHECK(h.t.last_ack_sent == Seq(300));  // old code: 0
  h.seg(TS(S(300, 100, F::ACK | F::PSH, "hi"), 1005));
  CHECK(h.t.ts_recent == 1005u);
}

TEST_CASE("TIME-WAIT: RFC 6191 accepts an equal timestamp with a higher sequence number",
          "[hardening][time-wait][rfc6191]") {
  TwState s{Seq(101), Seq(301), 4000, true, false};
  Config c;
  Stats st;
  CHECK(tw_on_segment(s, TS(S(500, 0, F::SYN), 4000), c, st) == TwAction::Reopen);  // old: rejected
  CHECK(tw_on_segment(s, TS(S(200, 0, F::SYN), 4000), c, st) == TwAction::Ack);
  CHECK(tw_on_segment(s, TS(S(500, 0, F::SYN), 3999), c, st) == TwAction::Ack);
}

TEST_CASE("TIME-WAIT with --tw-rst close: an in-window RST not at RCV.NXT gets a challenge ACK",
          "[hardening][time-wait][rfc5961]") {
  TwState s{Seq(101), Seq(301), 0, false, false};
  Config c;
  c.tw_rst = TwRstPolicy::Close;
  Stats st;
  CHECK(tw_on_segment(s, S(305, 0, F::RST), c, st) == TwAction::Ack);  // old: dropped silently
  CHECK(st.tw_rst_challenged == 1);
  CHECK(tw_on_segment(s, S(301, 0, F::RST), c, st) == TwAction::Close);
  CHECK(tw_on_segment(s, S(301 + 10000000, 0, F::RST), c, st) == TwAction::Drop);
}
