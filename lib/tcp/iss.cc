#include "tcp/iss.h"

#include <cstring>

namespace tcpterm::tcp {

namespace {
inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
inline void sipround(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
  v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
  v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
  v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
}
}  // namespace

uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t* in, size_t len) {
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
  size_t full = len & ~size_t(7);
  for (size_t i = 0; i < full; i += 8) {
    uint64_t m;
    std::memcpy(&m, in + i, 8);  // little-endian hosts (x86, arm64)
    v3 ^= m;
    sipround(v0, v1, v2, v3);
    sipround(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t b = uint64_t(len) << 56;
  for (size_t i = 0; i < (len & 7); i++) b |= uint64_t(in[full + i]) << (8 * i);
  v3 ^= b;
  sipround(v0, v1, v2, v3);
  sipround(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  for (int i = 0; i < 4; i++) sipround(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

TupleSecret IssGenerator::tuple(uint32_t laddr, uint16_t lport, uint32_t raddr,
                               uint16_t rport) const {
  uint8_t buf[12];
  std::memcpy(buf, &laddr, 4);
  std::memcpy(buf + 4, &raddr, 4);
  std::memcpy(buf + 8, &lport, 2);
  std::memcpy(buf + 10, &rport, 2);
  uint64_t h = siphash24(k0_, k1_, buf, sizeof buf);
  return TupleSecret{uint32_t(h), uint32_t(h >> 32)};
}

TupleSecret IssGenerator::tuple6(const uint8_t* laddr, uint16_t lport, const uint8_t* raddr,
                                 uint16_t rport) const {
  uint8_t buf[36];
  std::memcpy(buf, laddr, 16);
  std::memcpy(buf + 16, raddr, 16);
  std::memcpy(buf + 32, &lport, 2);
  std::memcpy(buf + 34, &rport, 2);
  uint64_t h = siphash24(k0_, k1_, buf, sizeof buf);
  return TupleSecret{uint32_t(h), uint32_t(h >> 32)};
}

}  // namespace tcpterm::tcp
