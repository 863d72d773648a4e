// RFC 6528 initial sequence numbers: ISN = M + F(4-tuple, secret), M a
// 4-microsecond clock, F SipHash-2-4 keyed by a per-process secret.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tcpterm::tcp {

uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t* data, size_t len);

class IssGenerator {
 public:
  IssGenerator(uint64_t k0, uint64_t k1) : k0_(k0), k1_(k1) {}
  uint32_t operator()(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport,
                      uint64_t now_us) const;

 private:
  uint64_t k0_, k1_;
};

}  // namespace tcpterm::tcp
