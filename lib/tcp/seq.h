// Sequence numbers with modular (RFC 1982-style) comparison.  Raw uint32_t
// sequence numbers are never compared with < directly anywhere in tcpterm.
#pragma once
#include <cstdint>

namespace tcpterm::tcp {

struct Seq {
  uint32_t v = 0;
  constexpr Seq() = default;
  constexpr explicit Seq(uint32_t x) : v(x) {}
  constexpr Seq operator+(uint32_t n) const { return Seq(v + n); }
  constexpr Seq operator-(uint32_t n) const { return Seq(v - n); }
  constexpr Seq& operator+=(uint32_t n) { v += n; return *this; }
  // Signed distance a - b; meaningful while |a - b| < 2^31.
  constexpr int32_t operator-(Seq b) const { return int32_t(v - b.v); }
  constexpr bool operator==(const Seq&) const = default;
  constexpr bool operator<(Seq b) const { return *this - b < 0; }
  constexpr bool operator<=(Seq b) const { return *this - b <= 0; }
  constexpr bool operator>(Seq b) const { return *this - b > 0; }
  constexpr bool operator>=(Seq b) const { return *this - b >= 0; }
};

constexpr Seq max(Seq a, Seq b) { return a < b ? b : a; }
constexpr Seq min(Seq a, Seq b) { return a < b ? a : b; }
// lo <= x < hi, modulo 2^32.
constexpr bool in_range(Seq lo, Seq x, Seq hi) { return lo <= x && x < hi; }

// 32-bit millisecond times stored in TCBs and TIME-WAIT records compare the
// same way (valid for deadlines less than 24 days away).
constexpr bool time_reached(uint32_t now, uint32_t deadline) { return int32_t(now - deadline) >= 0; }

}  // namespace tcpterm::tcp
