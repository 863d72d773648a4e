// IPv6 addresses in 32 bits: the per-lcore address table.
//
// The flow table, the TCB pool and the 32-byte TIME-WAIT record keep one
// key type, FlowKey4 (12 bytes).  An IPv6 flow's key holds, in place of its
// two addresses, the ids of those addresses in this table: kV6Base | index.
// That range (224.0.0.0/3 as IPv4) is never a TCP peer or one of our own
// IPv4 addresses (multicast and reserved sources are dropped on input,
// --addr and connects refuse them), so a key's family is its address range
// and an IPv4 key, its hash and its record are exactly what they were.
//
// Each holder (a flow, a TIME-WAIT record, a listener, a segment being
// processed) holds a reference on both of its ids; an address lives while
// one is held.  Memory: a 24-byte entry per distinct address plus a 4-byte
// bucket head, so a TIME-WAIT record of an IPv6 peer that shares no address
// with any other flow costs 32 + 24 + 4 = 60 bytes in all (target: <= 64,
// see kTimeWait6Bytes); clients behind one address share one entry.
//
// Hash chains over a power-of-two bucket array, keyed with the stack's
// secret seed (an attacker choosing addresses cannot aim them at one
// chain); entries come from a lazily mapped array by bump index, then a
// free list.  Single writer (the lcore).
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>

#include "flow/key.h"
#include "tcp/lazy_mem.h"
#include "wire/wire.h"

namespace tcpterm::flow {

inline constexpr uint32_t kV6Base = 0xE0000000u;
inline constexpr uint32_t kV6IndexMask = 0x1FFFFFFFu;
constexpr bool is_v6_id(uint32_t a) { return a >= kV6Base; }
constexpr bool is_v6(const FlowKey4& k) { return is_v6_id(k.laddr); }

class Addr6Table {
 public:
  static constexpr uint32_t kNone = 0;  // never a valid id (ids are >= kV6Base)
  struct Entry {
    wire::Ip6 addr;
    uint32_t refs;
    uint32_t next;  // chain: index + 1 (0: end); free list when refs == 0
  };
  static_assert(sizeof(Entry) == 24);

  explicit Addr6Table(uint32_t capacity, uint64_t seed = 0)
      : cap_(capacity < 16 ? 16 : (capacity > kV6IndexMask ? kV6IndexMask : capacity)),
        nb_(std::bit_ceil(cap_)),
        seed_(seed),
        e_(cap_),
        heads_(nb_) {}

  // The id of `a` with one more reference, created when new; kNone when
  // the table is full.
  uint32_t acquire(const wire::Ip6& a) {
    uint32_t b = bucket(a);
    for (uint32_t i = heads_[b]; i; i = e_[i - 1].next) {
      Entry& x = e_[i - 1];
      if (x.addr == a) {
        x.refs++;
        return kV6Base | (i - 1);
      }
    }
    uint32_t i;
    if (free_) {
      i = free_ - 1;
      free_ = e_[i].next;
    } else if (bump_ < cap_) {
      i = bump_++;
    } else {
      full_++;
      return kNone;
    }
    e_[i] = Entry{a, 1, heads_[b]};
    heads_[b] = i + 1;
    size_++;
    return kV6Base | i;
  }
  // The id of `a` without a reference; kNone when absent.
  uint32_t find(const wire::Ip6& a) const {
    for (uint32_t i = heads_[bucket(a)]; i; i = e_[i - 1].next)
      if (e_[i - 1].addr == a) return kV6Base | (i - 1);
    return kNone;
  }
  void hold(uint32_t id) { e_[id & kV6IndexMask].refs++; }
  void release(uint32_t id) {
    uint32_t i = id & kV6IndexMask;
    if (--e_[i].refs) return;
    uint32_t* p = &heads_[bucket(e_[i].addr)];
    while (*p != i + 1) p = &e_[*p - 1].next;
    *p = e_[i].next;
    e_[i].next = free_;
    free_ = i + 1;
    size_--;
  }
  const wire::Ip6& addr(uint32_t id) const { return e_[id & kV6IndexMask].addr; }
  uint32_t refs(uint32_t id) const { return e_[id & kV6IndexMask].refs; }
  uint32_t size() const { return size_; }
  uint32_t capacity() const { return cap_; }
  uint64_t full_count() const { return full_; }
  size_t memory_bytes() const { return e_.bytes() + heads_.bytes(); }
  size_t touched_bytes() const { return size_t(bump_) * sizeof(Entry); }

 private:
  uint32_t bucket(const wire::Ip6& a) const {
    uint64_t w[2];
    std::memcpy(w, a.data(), 16);
    // Two rounds of a bijective mixer with the secret folded in before the
    // first: two addresses collide only through the seed.
    uint64_t h = mix64(mix64(w[0] ^ seed_) ^ w[1]);
    return uint32_t(h) & (nb_ - 1);
  }
  static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  uint32_t cap_, nb_;
  uint64_t seed_;
  tcp::LazyArray<Entry> e_;
  tcp::LazyArray<uint32_t> heads_;
  uint32_t bump_ = 0, free_ = 0, size_ = 0;
  uint64_t full_ = 0;
};

// What an IPv6 TIME-WAIT record costs when its peer shares no address: the
// record, one table entry and one bucket head.
inline constexpr size_t kTimeWait6Bytes = 32 + sizeof(Addr6Table::Entry) + sizeof(uint32_t);
static_assert(kTimeWait6Bytes <= 64, "an IPv6 TIME-WAIT record stays within 64 bytes");

}  // namespace tcpterm::flow
