// Next hops, neighbours and routes: where a frame for a flow goes.  Pure C++
// (no DPDK), one instance per worker lcore (single writer), unit-tested
// without EAL.
//
//  - NextHops: the (port, MAC) pairs frames are sent to, each with a
//    reference count.  A flow takes a reference when it is created (the MAC
//    its SYN came from, or its route's) and holds it until it is freed, so
//    an entry a flow uses is never evicted: 10 000 clients behind one router
//    are one entry with 10 000 references.  Set-associative (kWays per set,
//    hashed by port and MAC); an unreferenced entry is replaced, oldest first.
//  - NeighborCache: IPv4 -> MAC for on-link addresses only (RFC 826 / RFC
//    1122 2.3.2.1), learned from ARP and from on-link senders, set-associative
//    with aging: an entry older than kStaleMs is still used but refreshed by
//    an ARP request; older than kExpireMs it is gone.  A miss records an
//    incomplete entry so requests are rate-limited per address.
//  - Routes: longest-prefix match over --route entries; on-link prefixes
//    come from --addr.  Without a route an off-link address is unreachable
//    (counted, no ARP for it).
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "wire/wire.h"

namespace tcpterm::dp {

inline constexpr uint32_t kNoHop = 0xffffffffu;

inline uint32_t mix_mac(uint16_t port, const wire::Mac& m) {
  uint64_t v = uint64_t(port) << 48;
  for (int i = 0; i < 6; i++) v |= uint64_t(m[i]) << (8 * i);
  v *= 0x9E3779B97F4A7C15ull;
  return uint32_t(v >> 32);
}

class NextHops {
 public:
  static constexpr uint32_t kWays = 4;
  struct Entry {
    wire::Mac mac{};
    uint16_t port = 0;
    bool valid = false;
    uint32_t refs = 0;
    uint64_t last_used = 0;
  };
  explicit NextHops(uint32_t sets = 256) : sets_(sets), e_(size_t(sets) * kWays) {}

  // The entry for (port, mac), created if needed; kNoHop when its set is
  // full of referenced entries (the caller then routes by address).
  uint32_t find_or_add(uint16_t port, const wire::Mac& mac, uint64_t now) {
    uint32_t base = (mix_mac(port, mac) % sets_) * kWays;
    uint32_t victim = kNoHop;
    for (uint32_t w = 0; w < kWays; w++) {
      Entry& x = e_[base + w];
      if (x.valid && x.port == port && x.mac == mac) {
        x.last_used = now;
        return base + w;
      }
      if (x.refs == 0 && (victim == kNoHop || !x.valid ||
                          (e_[victim].valid && x.last_used < e_[victim].last_used)))
        victim = base + w;
    }
    if (victim == kNoHop) {
      full_++;
      return kNoHop;
    }
    if (e_[victim].valid) evicted_++;
    e_[victim] = Entry{mac, port, true, 0, now};
    return victim;
  }
  void acquire(uint32_t i) { e_[i].refs++; }
  void release(uint32_t i) { e_[i].refs--; }
  const Entry& operator[](uint32_t i) const { return e_[i]; }
  uint32_t capacity() const { return uint32_t(e_.size()); }
  uint32_t in_use() const {
    uint32_t n = 0;
    for (const Entry& x : e_) n += x.valid;
    return n;
  }
  uint64_t refs_total() const {
    uint64_t n = 0;
    for (const Entry& x : e_) n += x.refs;
    return n;
  }
  uint64_t full() const { return full_; }
  uint64_t evicted() const { return evicted_; }

 private:
  uint32_t sets_;
  std::vector<Entry> e_;
  uint64_t full_ = 0, evicted_ = 0;
};

// IPv4 -> MAC (ARP) or IPv6 -> MAC (neighbour discovery, RFC 4861): one
// cache per family, the same policy.  A = uint32_t or wire::Ip6; A{} is
// never a neighbour's address, so it marks a free way.
template <class A>
class BasicNeighborCache {
 public:
  static constexpr uint32_t kWays = 4;
  static constexpr uint64_t kStaleMs = 60000;        // refresh by ARP after a minute (Linux: ~30 s reachable)
  static constexpr uint64_t kExpireMs = 20 * 60000;  // forget after 20 minutes unconfirmed
  static constexpr uint64_t kRequestIntervalMs = 1000;  // ARP requests per address (RFC 1122 2.3.2.1)
  struct Entry {
    A ip{};  // A{}: free
    uint16_t port = 0;
    bool resolved = false;
    wire::Mac mac{};
    uint64_t confirmed = 0;  // when the MAC was last learned
    uint64_t requested = 0;  // when we last asked (0: never)
  };
  explicit BasicNeighborCache(uint32_t sets = 1024) : sets_(sets), e_(size_t(sets) * kWays) {}

  void learn(const A& ip, uint16_t port, const wire::Mac& mac, uint64_t now) {
    // Called for received frames: no write when nothing changed within a
    // second (the packet path must not dirty a cache line per packet).
    if (Entry* y = find(ip); y && y->resolved && y->port == port && y->mac == mac && now - y->confirmed < 1000)
      return;
    Entry* x = slot(ip, now);
    x->ip = ip;
    x->port = port;
    x->resolved = true;
    x->mac = mac;
    x->confirmed = now;
  }
  // A resolved, unexpired entry or null.  `refresh` is set when the entry is
  // stale or missing and an ARP request is due now (at most once per
  // kRequestIntervalMs per address).
  const Entry* lookup(const A& ip, uint64_t now, bool& refresh) {
    refresh = false;
    Entry* x = find(ip);
    if (x && x->resolved && now - x->confirmed >= kExpireMs) x->resolved = false;
    bool usable = x && x->resolved;
    bool stale = usable && now - x->confirmed >= kStaleMs;
    if (!usable || stale) {
      if (!x) x = slot(ip, now);
      if (x->ip != ip) {
        *x = Entry{};
        x->ip = ip;
      }
      if (x->requested == 0 || now - x->requested >= kRequestIntervalMs) {
        x->requested = now ? now : 1;
        refresh = true;
      }
    }
    return usable ? x : nullptr;
  }
  uint32_t capacity() const { return uint32_t(e_.size()); }
  uint32_t resolved() const {
    uint32_t n = 0;
    for (const Entry& x : e_) n += x.ip != A{} && x.resolved;
    return n;
  }

 private:
  Entry* find(const A& ip) {
    uint32_t base = (mix(ip) % sets_) * kWays;
    for (uint32_t w = 0; w < kWays; w++)
      if (e_[base + w].ip == ip) return &e_[base + w];
    return nullptr;
  }
  // The entry for ip, or the way to replace: a free one, else the least
  // recently confirmed (an unresolved one first).
  Entry* slot(const A& ip, uint64_t) {
    if (Entry* x = find(ip)) return x;
    uint32_t base = (mix(ip) % sets_) * kWays;
    Entry* best = &e_[base];
    for (uint32_t w = 0; w < kWays; w++) {
      Entry& x = e_[base + w];
      if (x.ip == A{}) return &x;
      auto rank = [](const Entry& y) { return y.resolved ? y.confirmed + (1ull << 62) : y.requested; };
      if (rank(x) < rank(*best)) best = &x;
    }
    return best;
  }
  static uint32_t mix(uint32_t h) {
    h ^= h >> 16;
    h *= 0x7feb352d;
    h ^= h >> 15;
    h *= 0x846ca68b;
    return h ^ (h >> 16);
  }
  static uint32_t mix(const wire::Ip6& a) {
    // Neighbours share the link's prefix: the interface identifier decides.
    return mix(wire::load32(a.data() + 8) * 31 ^ wire::load32(a.data() + 12));
  }
  uint32_t sets_;
  std::vector<Entry> e_;
};
using NeighborCache = BasicNeighborCache<uint32_t>;
using NeighborCache6 = BasicNeighborCache<wire::Ip6>;

struct Route {
  uint32_t prefix = 0;
  uint8_t len = 0;
  uint32_t gateway = 0;  // 0: on-link
  uint16_t port = 0;
  bool contains(uint32_t a) const {
    return len == 0 || ((a ^ prefix) >> (32 - len)) == 0;
  }
};

// The routing table: on-link prefixes (from --addr) and --route entries,
// longest prefix first.
class Routes {
 public:
  void add(const Route& r) {
    rs_.push_back(r);
    std::stable_sort(rs_.begin(), rs_.end(), [](const Route& a, const Route& b) { return a.len > b.len; });
  }
  // The route for dst, or null.
  const Route* lookup(uint32_t dst) const {
    for (const Route& r : rs_)
      if (r.contains(dst)) return &r;
    return nullptr;
  }
  // Is a on-link (within an --addr prefix) on port?
  bool on_link(uint16_t port, uint32_t a) const {
    for (const Route& r : rs_)
      if (r.gateway == 0 && r.port == port && r.contains(a)) return true;
    return false;
  }
  const std::vector<Route>& all() const { return rs_; }

 private:
  std::vector<Route> rs_;
};

// IPv6 routes: on-link prefixes from --addr, --route entries through a
// gateway; longest prefix first (as Routes).
struct Route6 {
  wire::Ip6 prefix{};
  uint8_t len = 0;
  bool has_gateway = false;
  wire::Ip6 gateway{};
  uint16_t port = 0;
  bool contains(const wire::Ip6& a) const { return wire::ip6_prefix_match(a, prefix, len); }
};

class Routes6 {
 public:
  void add(const Route6& r) {
    rs_.push_back(r);
    std::stable_sort(rs_.begin(), rs_.end(), [](const Route6& a, const Route6& b) { return a.len > b.len; });
  }
  const Route6* lookup(const wire::Ip6& dst) const {
    for (const Route6& r : rs_)
      if (r.contains(dst)) return &r;
    return nullptr;
  }
  // On-link: within an --addr prefix on port, or link-local (fe80::/10 is
  // on every link, RFC 4291 2.5.6).
  bool on_link(uint16_t port, const wire::Ip6& a) const {
    if (wire::ip6_is_link_local(a)) return true;
    for (const Route6& r : rs_)
      if (!r.has_gateway && r.port == port && r.contains(a)) return true;
    return false;
  }
  const std::vector<Route6>& all() const { return rs_; }

 private:
  std::vector<Route6> rs_;
};

}  // namespace tcpterm::dp
