// Flow keys.  The table (table.h) is key-agnostic: it stores 32-bit refs and
// compares keys through a callback, so an IPv6 key (FlowKey6, 36 bytes) will
// get its own table instance and record pools without touching the table.
#pragma once
#include <cstdint>
#include <cstring>


namespace tcpterm::flow {

// An IPv4 connection seen from the appliance: (local, remote), host order.
struct FlowKey4 {
  uint32_t laddr = 0, raddr = 0;
  uint16_t lport = 0, rport = 0;
  bool operator==(const FlowKey4&) const = default;
};
static_assert(sizeof(FlowKey4) == 12);

inline uint32_t mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x7feb352d;
  h ^= h >> 15;
  h *= 0x846ca68b;
  h ^= h >> 16;
  return h;
}

// Software hash of a key: three multiplications folded by one finaliser so
// that both the low bits (bucket) and the high bits (tag) are well spread.
// Deliberately free of ISA-specific intrinsics: the pure cores and the DPDK
// edge are compiled with different -march flags and must agree.
inline uint32_t hash_key(const FlowKey4& k, uint32_t seed = 0x9e3779b9) {
  uint64_t h = seed;
  h ^= uint64_t(k.laddr) * 0x9E3779B97F4A7C15ull;
  h ^= uint64_t(k.raddr) * 0xC2B2AE3D27D4EB4Full;
  h ^= (uint64_t(k.lport) << 16 | k.rport) * 0x165667B19E3779F9ull;
  return mix32(uint32_t(h ^ (h >> 32)));
}

}  // namespace tcpterm::flow
