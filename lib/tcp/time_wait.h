// TIME-WAIT as a compact record's decision (RFC 9293 3.10.7.4, RFC 1337,
// RFC 6191, RFC 7323).  When a flow enters TIME-WAIT its TCB is released and
// only this state (plus the key and expiry, see lib/flow/time_wait.h) remains
// for 2*MSL.  The check is a flat list of early returns.
#pragma once
#include <cstdint>

#include "tcp/config.h"
#include "tcp/seq.h"
#include "tcp/stats.h"
#include "tcp/tcb.h"
#include "wire/wire.h"

namespace tcpterm::tcp {

struct TwState {
  Seq snd_nxt, rcv_nxt;
  uint32_t ts_recent = 0;
  bool ts_ok = false;
  bool ws_ok = false;
};

enum class TwAction : uint8_t {
  Drop,        // nothing to do
  Ack,         // send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
  AckRestart,  // retransmitted FIN: ACK it and restart the 2MSL timer
  Close,       // RST accepted (tw_rst = Close): the record ends now
  Reopen,      // RFC 6191: a new incarnation; open from LISTEN with tw_reopen_iss()
};

TwState tw_from_tcb(const Tcb& t);
TwAction tw_on_segment(const TwState& tw, const wire::TcpRepr& seg, const Config& c, Stats& st);
// RFC 6191 / RFC 9293 3.4.1: the new incarnation's ISS lies above the old
// SND.NXT by more than a maximum window.
inline uint32_t tw_reopen_iss(const TwState& tw) { return (tw.snd_nxt + 65535u + 2u).v; }
// The ACK a record sends (ports left for the edge to fill); `tsval` is the
// lcore clock plus the connection's timestamp offset (RFC 7323 7.1).
wire::TcpRepr tw_ack(const TwState& tw, const Config& c, uint32_t tsval);

}  // namespace tcpterm::tcp
