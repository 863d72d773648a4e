#include "tcp/time_wait.h"

#include <algorithm>

namespace tcpterm::tcp {

namespace F = wire::flag;

TwState tw_from_tcb(const Tcb& t) {
  return TwState{t.snd_nxt, t.rcv_nxt, t.ts_recent, t.has(kTsOk), t.has(kWsOk)};
}

TwAction tw_on_segment(const TwState& tw, const wire::TcpRepr& seg, const Config& c, Stats& st) {
  st.segs_in++;
  Seq seq(seg.seq);
  // RST: RFC 1337 -- ignoring it protects the 2MSL quarantine against
  // "TIME-WAIT assassination"; the RFC 9293 behaviour is configurable.
  if (seg.rst()) {
    if (c.tw_rst == TwRstPolicy::Ignore) {
      st.tw_rst_ignored++;
      return TwAction::Drop;
    }
    if (seq != tw.rcv_nxt) {
      // RFC 5961 3.2: an RST in the window but not at RCV.NXT gets a
      // challenge ACK (a true peer answers it with the exact RST).
      if (in_range(tw.rcv_nxt, seq, tw.rcv_nxt + c.rcv_buf)) {
        st.tw_rst_challenged++;
        st.tw_acks_sent++;
        return TwAction::Ack;
      }
      return TwAction::Drop;
    }
    st.resets_in++;
    st.tw_rst_closed++;
    return TwAction::Close;
  }
  // SYN: RFC 6191 2 -- a new incarnation is accepted when its timestamp is
  // newer (both sides use timestamps), or equal with a higher sequence
  // number, or (no timestamps) when its sequence number is higher.
  if (seg.syn() && !seg.has_ack()) {
    bool newer;
    if (tw.ts_ok && seg.opt.has_ts) {
      int32_t d = int32_t(seg.opt.ts_val - tw.ts_recent);
      newer = d > 0 || (d == 0 && seq > tw.rcv_nxt);
    } else {
      newer = seq > tw.rcv_nxt;
    }
    if (newer) {
      st.tw_syn_reopened++;
      return TwAction::Reopen;
    }
    st.tw_syn_rejected++;
    st.tw_acks_sent++;
    return TwAction::Ack;  // RFC 5961 4.2: challenge ACK
  }
  // RFC 7323 5.3: PAWS.
  if (tw.ts_ok && seg.opt.has_ts && int32_t(seg.opt.ts_val - tw.ts_recent) < 0) {
    st.paws_rejected++;
    st.tw_acks_sent++;
    return TwAction::Ack;
  }
  // The only thing that can arrive: a retransmission of the remote FIN.
  // Acknowledge it, and restart the 2 MSL timeout.
  if (seg.fin() && seq + uint32_t(seg.payload.size()) + 1 == tw.rcv_nxt) {
    st.tw_fin_reacked++;
    st.tw_acks_sent++;
    return TwAction::AckRestart;
  }
  // Anything else: acceptable only as a bare ACK at RCV.NXT (the window is
  // closed); an unacceptable segment gets an ACK.
  if (seq == tw.rcv_nxt && seg.seg_len() == 0) return TwAction::Drop;
  st.unacceptable_segments++;
  st.tw_acks_sent++;
  return TwAction::Ack;
}

wire::TcpRepr tw_ack(const TwState& tw, const Config& c, uint32_t tsval) {
  wire::TcpRepr h;
  h.seq = tw.snd_nxt.v;
  h.ack = tw.rcv_nxt.v;
  h.flags = F::ACK;
  uint32_t w = tw.ws_ok ? (c.rcv_buf >> c.rcv_wscale()) : c.rcv_buf;
  h.window = uint16_t(std::min<uint32_t>(w, 65535));
  if (tw.ts_ok) {
    h.opt.has_ts = true;
    h.opt.ts_val = tsval;
    h.opt.ts_ecr = tw.ts_recent;
  }
  return h;
}

}  // namespace tcpterm::tcp
