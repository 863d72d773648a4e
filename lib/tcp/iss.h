// RFC 6528 initial sequence numbers: ISN = M + F(4-tuple, secret), M a
// 4-microsecond clock, F SipHash-2-4 keyed by a per-process secret.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tcpterm::tcp {

uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t* data, size_t len);

// F(4-tuple, secret) once per connection: its low half is the ISS's hash
// term, its high half the connection's RFC 7323 7.1 timestamp offset (so the
// same 4-tuple keeps a monotonic TSval across incarnations, which RFC 6191
// relies on, while different 4-tuples reveal nothing about each other).
struct TupleSecret {
  uint32_t iss_hash = 0, ts_offset = 0;
};

class IssGenerator {
 public:
  IssGenerator(uint64_t k0, uint64_t k1) : k0_(k0), k1_(k1) {}
  TupleSecret tuple(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport) const;
  // The same over an IPv6 tuple (16-byte addresses, network order).
  TupleSecret tuple6(const uint8_t* laddr, uint16_t lport, const uint8_t* raddr, uint16_t rport) const;
  // RFC 6528: ISN = M + F, M a 4-microsecond clock.
  static uint32_t iss(const TupleSecret& f, uint64_t now_us) { return uint32_t(now_us / 4) + f.iss_hash; }
  uint32_t operator()(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport,
                      uint64_t now_us) const {
    return iss(tuple(laddr, lport, raddr, rport), now_us);
  }

 private:
  uint64_t k0_, k1_;
};

}  // namespace tcpterm::tcp
