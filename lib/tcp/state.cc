#include "tcp/state.h"

#include <cctype>

namespace tcpterm::tcp {

bool parse_state(std::string_view s, TcpState& out) {
  for (size_t i = 0; i < kStateCount; i++) {
    std::string_view name = to_string(TcpState(i));
    if (name.size() != s.size()) continue;
    bool eq = true;
    for (size_t k = 0; k < s.size() && eq; k++) {
      char c = char(std::toupper(static_cast<unsigned char>(s[k])));
      if (c == '_') c = '-';
      eq = c == name[k];
    }
    if (eq) {
      out = TcpState(i);
      return true;
    }
  }
  return false;
}

}  // namespace tcpterm::tcp
