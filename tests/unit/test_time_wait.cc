// TIME-WAIT: the record's decisions (RFC 9293, RFC 1337, RFC 6191, RFC 7323)
// and the classic teardown sequence ending in CLOSED after exactly 2*MSL.
#include "tcp_harness.h"

#include "flow/time_wait.h"
#include <algorithm>
#include <vector>

using namespace tcptest;
using tcpterm::flow::FlowKey4;
using tcpterm::flow::TimeWaitTable;

namespace {
TwState tw_of(H& h) {
  time_wait(h);
  return tw_from_tcb(h.t);
}
}  // namespace

TEST_CASE("TIME-WAIT: the teardown example ends CLOSED after exactly 2*MSL",
          "[tcp][time-wait][timer]") {
  H h;
  h.cfg.msl_ms = 30000;
  TwState s = tw_of(h);
  CHECK(s.snd_nxt == Seq(101));
  CHECK(s.rcv_nxt == Seq(301));
  CHECK(h.chunks.in_use() == 0);  // the full TCB's buffers are gone
  TimeWaitTable tw(16);
  FlowKey4 key{0xC6120002, 0xC6120001, 80, 40000};
  uint32_t rec = tw.add(key, s, h.now + h.cfg.two_msl_ms());
  REQUIRE(rec != TimeWaitTable::kNil);
  int closed = 0;
  CHECK(tw.expire(h.now + 59999, 100, [&](uint32_t) { closed++; }) == 0);
  CHECK(tw.size() == 1);
  CHECK(tw.expire(h.now + 60000, 100, [&](uint32_t i) {
          CHECK(i == rec);
          closed++;
        }) == 1);
  CHECK(closed == 1);
  CHECK(tw.size() == 0);
}

TEST_CASE("TIME-WAIT: a retransmitted FIN is re-ACKed and restarts 2MSL",
          "[tcp][time-wait]") {
  H h;
  TwState s = tw_of(h);
  // The peer did not get our ACK: FIN <SEQ=300><ACK=101> again.
  CHECK(tw_on_segment(s, S(300, 101, F::FIN | F::ACK), h.cfg, h.st) == TwAction::AckRestart);
  CHECK(h.st.tw_fin_reacked == 1);
  TcpRepr ack = tw_ack(s, h.cfg, h.now);
  CHECK(ack.seq == 101);
  CHECK(ack.ack == 301);
  CHECK(ack.flags == F::ACK);
  CHECK(ack.window > 0);
  // Restart in the FIFO: not at the old time, exactly at the new one.
  TimeWaitTable tw(4);
  uint32_t rec = tw.add(FlowKey4{1, 2, 3, 4}, s, 1000 + 60000);
  tw.restart(rec, 20000 + 60000);
  int n = 0;
  CHECK(tw.expire(61000, 10, [&](uint32_t) { n++; }) == 0);
  CHECK(tw.expire(79999, 10, [&](uint32_t) { n++; }) == 0);
  CHECK(tw.expire(80000, 10, [&](uint32_t) { n++; }) == 1);
}

TEST_CASE("TIME-WAIT: RST is ignored by default (RFC 1337), configurable",
          "[tcp][time-wait][rfc1337]") {
  H h;
  TwState s = tw_of(h);
  CHECK(tw_on_segment(s, S(301, 0, F::RST), h.cfg, h.st) == TwAction::Drop);
  CHECK(h.st.tw_rst_ignored == 1);
  h.cfg.tw_rst = TwRstPolicy::Close;
  CHECK(tw_on_segment(s, S(300, 0, F::RST), h.cfg, h.st) == TwAction::Drop);  // not exact
  CHECK(tw_on_segment(s, S(301, 0, F::RST), h.cfg, h.st) == TwAction::Close);
  CHECK(h.st.tw_rst_closed == 1);
}

TEST_CASE("TIME-WAIT: a SYN with a higher sequence opens a new incarnation (RFC 6191)",
          "[tcp][time-wait][rfc6191]") {
  H h;
  TwState s = tw_of(h);
  CHECK(tw_on_segment(s, S(100000, 0, F::SYN), h.cfg, h.st) == TwAction::Reopen);
  CHECK(h.st.tw_syn_reopened == 1);
  CHECK(Seq(tw_reopen_iss(s)) > s.snd_nxt + 65535);
  // An old SYN is answered with an ACK, nothing else.
  CHECK(tw_on_segment(s, S(200, 0, F::SYN), h.cfg, h.st) == TwAction::Ack);
  CHECK(h.st.tw_syn_rejected == 1);
}

TEST_CASE("TIME-WAIT: with timestamps, a newer TSval decides the new incarnation",
          "[tcp][time-wait][rfc6191]") {
  H h;
  TwState s = tw_of(h);
  s.ts_ok = true;
  s.ts_recent = 1000;
  TcpRepr syn = S(10, 0, F::SYN);  // lower sequence number...
  syn.opt.has_ts = true;
  syn.opt.ts_val = 1001;  // ...but a newer timestamp
  CHECK(tw_on_segment(s, syn, h.cfg, h.st) == TwAction::Reopen);
  syn.opt.ts_val = 999;
  syn.seq = 100000;
  CHECK(tw_on_segment(s, syn, h.cfg, h.st) == TwAction::Ack);
  // The ACK carries our clock and echoes TS.Recent.
  TcpRepr a = tw_ack(s, h.cfg, 4242);
  CHECK(a.opt.has_ts);
  CHECK(a.opt.ts_val == 4242);
  CHECK(a.opt.ts_ecr == 1000);
}

TEST_CASE("TIME-WAIT: a bare ACK is dropped; data or old segments get an ACK",
          "[tcp][time-wait]") {
  H h;
  TwState s = tw_of(h);
  CHECK(tw_on_segment(s, S(301, 101, F::ACK), h.cfg, h.st) == TwAction::Drop);
  CHECK(tw_on_segment(s, S(301, 101, F::ACK, "data"), h.cfg, h.st) == TwAction::Ack);
  CHECK(tw_on_segment(s, S(250, 101, F::ACK), h.cfg, h.st) == TwAction::Ack);
  TcpRepr old = S(301, 101, F::ACK);
  s.ts_ok = true;
  s.ts_recent = 50;
  old.opt.has_ts = true;
  old.opt.ts_val = 10;
  CHECK(tw_on_segment(s, old, h.cfg, h.st) == TwAction::Ack);
  CHECK(h.st.paws_rejected == 1);
}

TEST_CASE("TIME-WAIT: expiry with look-ahead expires the same records and looks only at live ones",
          "[time-wait]") {
  TimeWaitTable a(64), b(64);
  TwState s{};
  std::vector<uint32_t> killed;
  for (uint32_t i = 0; i < 40; i++) {
    uint32_t ra = a.add(FlowKey4{i, 2, 3, 4}, s, 1000 + i * 10);
    uint32_t rb = b.add(FlowKey4{i, 2, 3, 4}, s, 1000 + i * 10);
    REQUIRE(ra == rb);
    if (i % 7 == 3) {  // some die early (a new incarnation took them)
      a.kill(ra);
      b.kill(rb);
      killed.push_back(ra);
    }
  }
  std::vector<uint32_t> ea, eb, looked;
  // Nothing due: no look-ahead at all.
  a.expire(999, 1000, [&](uint32_t i) { ea.push_back(i); }, [&](uint32_t i) { looked.push_back(i); });
  CHECK(ea.empty());
  CHECK(looked.empty());
  for (uint32_t now : {1005u, 1100u, 1250u, 2000u}) {
    a.expire(now, 1000, [&](uint32_t i) { ea.push_back(i); }, [&](uint32_t i) {
      CHECK(a.live(i));
      looked.push_back(i);
    });
    b.expire(now, 1000, [&](uint32_t i) { eb.push_back(i); });
    CHECK(ea == eb);
    CHECK(a.size() == b.size());
  }
  CHECK(ea.size() == 40 - killed.size());
  CHECK(a.size() == 0);
  for (uint32_t k : killed) CHECK(std::find(looked.begin(), looked.end(), k) == looked.end());
  // Every expired record was looked at before it went (the prefetch had time).
  for (uint32_t e : ea) CHECK(std::find(looked.begin(), looked.end(), e) != looked.end());
}
