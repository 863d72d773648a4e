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
//
// The seed is a per-process random 64-bit secret (lib/stack draws it from
// getrandom at start-up): without it an attacker who has read this file can
// choose spoofed 4-tuples that all land in one bucket chain.  This is a fast
// keyed mix, not a PRF: it raises the cost of a collision attack from "read
// the source" to "recover the seed from timing", and the table's probe
// counters (`show tcp timewait`) make a chain attack visible.
inline uint32_t hash_key(const FlowKey4& k, uint64_t seed = 0x9e3779b97f4a7c15ull) {
  uint64_t h = seed;
  h ^= uint64_t(k.laddr) * 0x9E3779B97F4A7C15ull;
  h ^= uint64_t(k.raddr) * 0xC2B2AE3D27D4EB4Full;
  h ^= (uint64_t(k.lport) << 16 | k.rport) * 0x165667B19E3779F9ull;
  h ^= seed >> 29;
  h *= 0xbf58476d1ce4e5b9ull;  // splitmix64 finaliser: every seed bit reaches every output bit
  h ^= h >> 31;
  return mix32(uint32_t(h ^ (h >> 32)));
}

}  // namespace tcpterm::flow
