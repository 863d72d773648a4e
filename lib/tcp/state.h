// The eleven TCP states of RFC 9293 3.3.2, spelled as the RFC spells them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tcpterm::tcp {

enum class TcpState : uint8_t {
  Closed, Listen, SynSent, SynReceived, Established, FinWait1, FinWait2, CloseWait, Closing,
  LastAck, TimeWait
};
inline constexpr size_t kStateCount = 11;

constexpr std::string_view to_string(TcpState s) {
  constexpr std::string_view names[kStateCount] = {
      "CLOSED",     "LISTEN",     "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED", "FIN-WAIT-1",
      "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING",  "LAST-ACK",     "TIME-WAIT"};
  return names[size_t(s)];
}
// Parses the RFC spelling (case-insensitive, '_' accepted for '-').
bool parse_state(std::string_view s, TcpState& out);

// RFC 9293 3.3.2: a connection is synchronized once both SYNs are exchanged.
constexpr bool synchronized(TcpState s) { return s >= TcpState::Established; }
// States in which we have not yet sent our FIN (data may still flow out).
constexpr bool can_send(TcpState s) { return s == TcpState::Established || s == TcpState::CloseWait; }
// States in which the peer may still send data.
constexpr bool can_receive(TcpState s) {
  return s == TcpState::Established || s == TcpState::FinWait1 || s == TcpState::FinWait2;
}

}  // namespace tcpterm::tcp
