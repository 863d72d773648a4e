// The lcore clock: milliseconds from TSC cycles without a 64-bit division
// in every poll (~40 cycles).  inv = floor(2^64 / cycles per ms) makes the
// product's high half at most one below the exact quotient, and only just
// after a millisecond boundary (within tsc / 2^64 of a millisecond: a
// sixteenth for a TSC below 2^60): the clock is never ahead, so no timer
// fires early.  Pure (unit-tested without EAL).
#pragma once
#include <cstdint>

namespace tcpterm::dp {

class MsClock {
 public:
  explicit MsClock(uint64_t cycles_per_ms) : inv_(~0ull / (cycles_per_ms ? cycles_per_ms : 1)) {}
  uint64_t ms(uint64_t tsc) const { return uint64_t(((unsigned __int128)tsc * inv_) >> 64); }

 private:
  uint64_t inv_;
};

}  // namespace tcpterm::dp
