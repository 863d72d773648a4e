// The per-lcore flow table: a hash index from a flow key to a 32-bit ref
// (tcpterm: a TCB slot, or a TIME-WAIT record with the top bit set).
//
// One writer (the lcore), no locks.  Open addressing over 64-byte buckets:
//
//   bytes  0..15  tag[8]    16-bit tags (hash >> 16), compared 8 at a time (SSE2)
//   bytes 16..47  ref[8]    32-bit refs
//   byte  48      used      occupancy bitmap
//   bytes 50..51  overflow  entries homed at or before this bucket that were
//                           placed after it (F14's outbound overflow count);
//                           saturates at 65535 and then stays (sticky: the
//                           bucket is always probed past, never wrongly not)
//   bytes 52..63  padding
//
// A lookup reads the home bucket, compares tags, then keys (through the
// caller's callback, so the table never stores keys: records already do);
// it moves to the next bucket only while `overflow` says something homed
// here lives further on.  Insert takes the first bucket with a free slot,
// counting overflow on the full ones it passes; erase undoes those counts.
// No tombstones, so probe lengths do not degrade with churn.
//
// Sizing: buckets = next power of two >= capacity / 7 (at most 7 of 8 slots
// used on average at full capacity, i.e. <= 87.5 % load), so 64 bytes per 7
// flows (~9.1 bytes per flow) at capacity, more below it.
#pragma once
#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tcp/lazy_mem.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace tcpterm::flow {

// Loads the cache line at p ahead of use.  An asm statement, not
// __builtin_prefetch: GCC 12 at -O3 deleted the builtin from
// TimeWaitTable::expire's look-ahead walk (whose only effect it is), so
// expiry paid every bucket miss in full.
inline void prefetch_line(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p);
#endif
}

class FlowTable {
 public:
  static constexpr uint32_t kNotFound = 0xffffffffu;
  static constexpr unsigned kWays = 8;
  static constexpr uint16_t kOverflowSticky = 0xffff;

  struct alignas(64) Bucket {
    uint16_t tag[kWays];
    uint32_t ref[kWays];
    uint8_t used;
    uint8_t pad0;
    uint16_t overflow;
    uint8_t pad1[12];
  };
  static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");

  struct Counters {
    uint64_t lookups = 0, hits = 0, buckets_probed = 0, tag_false_positives = 0;
    uint64_t inserts = 0, insert_failures = 0, erases = 0;
    uint32_t max_probe = 0;  // buckets visited by the longest insert
  };

  // huge_pages: back the buckets with transparent huge pages, committed at
  // once (LazyArray): lookups at random over tens of MiB then rarely miss
  // the TLB.
  explicit FlowTable(uint32_t capacity, bool huge_pages = false) : capacity_(capacity) {
    uint32_t want = capacity / 7 + 1;
    nbuckets_ = std::bit_ceil(want < 2 ? 2u : want);
    mask_ = nbuckets_ - 1;
    // Zero pages, faulted in by the first writer (the lcore that runs the
    // table, so its memory lands on that lcore's NUMA node), and only as
    // buckets are used (tcp/lazy_mem.h); on huge pages, all at once.
    buckets_ = tcp::LazyArray<Bucket>(nbuckets_, huge_pages ? tcp::Huge::Yes : tcp::Huge::No);
  }

  uint32_t size() const { return size_; }
  uint32_t capacity() const { return capacity_; }
  uint32_t bucket_count() const { return nbuckets_; }
  size_t memory_bytes() const { return size_t(nbuckets_) * sizeof(Bucket); }
  const Counters& counters() const { return c_; }
  Counters& counters() { return c_; }

  static uint16_t tag_of(uint32_t hash) { return uint16_t(hash >> 16); }

  void prefetch(uint32_t hash) const { prefetch_line(&buckets_[hash & mask_]); }

  // Returns the ref whose key matches (eq(ref) true), or kNotFound.
  template <class Eq>
  uint32_t find(uint32_t hash, Eq&& eq) {
    c_.lookups++;
    uint16_t tag = tag_of(hash);
    uint32_t b = hash & mask_;
    for (uint32_t probes = 0; probes < nbuckets_; probes++) {
      const Bucket& bk = buckets_[b];
      c_.buckets_probed++;
      for (unsigned m = match(bk, tag); m; m &= m - 1) {
        unsigned i = unsigned(std::countr_zero(m));
        if (eq(bk.ref[i])) {
          c_.hits++;
          return bk.ref[i];
        }
        c_.tag_false_positives++;
      }
      if (bk.overflow == 0) break;
      b = (b + 1) & mask_;
    }
    return kNotFound;
  }

  // Burst lookup in stages: prefetch every home bucket, then match.  out[i]
  // receives the ref for hashes[i] (eq(i, ref) compares key i).
  template <class Eq>
  void find_burst(const uint32_t* hashes, unsigned n, uint32_t* out, Eq&& eq) {
    for (unsigned i = 0; i < n; i++) prefetch(hashes[i]);
    for (unsigned i = 0; i < n; i++)
      out[i] = find(hashes[i], [&](uint32_t ref) { return eq(i, ref); });
  }

  // Inserts ref under hash; the caller has checked the key is absent.
  // False when the table is at capacity.
  bool insert(uint32_t hash, uint32_t ref) {
    if (size_ >= capacity_) {
      c_.insert_failures++;
      return false;
    }
    uint32_t b = hash & mask_;
    for (uint32_t probes = 0; probes < nbuckets_; probes++) {
      Bucket& bk = buckets_[b];
      if (bk.used != 0xff) {
        unsigned i = unsigned(std::countr_zero(unsigned(uint8_t(~bk.used))));
        bk.tag[i] = tag_of(hash);
        bk.ref[i] = ref;
        bk.used |= uint8_t(1u << i);
        // Count the overflow on every full bucket passed.
        for (uint32_t k = hash & mask_; k != b; k = (k + 1) & mask_)
          if (buckets_[k].overflow != kOverflowSticky) buckets_[k].overflow++;
        if (probes + 1 > c_.max_probe) c_.max_probe = probes + 1;
        size_++;
        c_.inserts++;
        return true;
      }
      b = (b + 1) & mask_;
    }
    c_.insert_failures++;
    return false;
  }

  // Removes the entry holding `ref` under `hash`; false if absent.
  bool erase(uint32_t hash, uint32_t ref) {
    uint16_t tag = tag_of(hash);
    uint32_t home = hash & mask_;
    uint32_t b = home;
    for (uint32_t probes = 0; probes < nbuckets_; probes++) {
      Bucket& bk = buckets_[b];
      for (unsigned m = match(bk, tag); m; m &= m - 1) {
        unsigned i = unsigned(std::countr_zero(m));
        if (bk.ref[i] == ref) {
          bk.used &= uint8_t(~(1u << i));
          for (uint32_t k = home; k != b; k = (k + 1) & mask_)
            if (buckets_[k].overflow != kOverflowSticky) buckets_[k].overflow--;
          size_--;
          c_.erases++;
          return true;
        }
      }
      if (bk.overflow == 0) return false;
      b = (b + 1) & mask_;
    }
    return false;
  }

  // Replaces the ref of an entry in place (TCB -> TIME-WAIT record).
  bool replace(uint32_t hash, uint32_t old_ref, uint32_t new_ref) {
    uint16_t tag = tag_of(hash);
    uint32_t b = hash & mask_;
    for (uint32_t probes = 0; probes < nbuckets_; probes++) {
      Bucket& bk = buckets_[b];
      for (unsigned m = match(bk, tag); m; m &= m - 1) {
        unsigned i = unsigned(std::countr_zero(m));
        if (bk.ref[i] == old_ref) {
          bk.ref[i] = new_ref;
          return true;
        }
      }
      if (bk.overflow == 0) return false;
      b = (b + 1) & mask_;
    }
    return false;
  }

  // Debug check: `used` popcounts sum to size, overflow counts match a
  // recount from every entry's home.  O(buckets).
  template <class HashOf>
  bool check_invariants(HashOf&& hash_of) const {
    std::vector<uint32_t> over(nbuckets_, 0);
    uint32_t n = 0;
    for (uint32_t b = 0; b < nbuckets_; b++) {
      const Bucket& bk = buckets_[b];
      for (unsigned i = 0; i < kWays; i++) {
        if (!(bk.used >> i & 1)) continue;
        n++;
        uint32_t h = hash_of(bk.ref[i]);
        if (bk.tag[i] != tag_of(h)) return false;
        for (uint32_t k = h & mask_; k != b; k = (k + 1) & mask_) over[k]++;
      }
    }
    if (n != size_) return false;
    for (uint32_t b = 0; b < nbuckets_; b++)
      if (over[b] != buckets_[b].overflow && buckets_[b].overflow != kOverflowSticky) return false;
    return true;
  }

 private:
  static unsigned match(const Bucket& bk, uint16_t tag) {
#if defined(__SSE2__)
    __m128i tags = _mm_load_si128(reinterpret_cast<const __m128i*>(bk.tag));
    __m128i eq = _mm_cmpeq_epi16(tags, _mm_set1_epi16(short(tag)));
    unsigned m = unsigned(_mm_movemask_epi8(_mm_packs_epi16(eq, _mm_setzero_si128())));
    return m & bk.used;
#else
    unsigned m = 0;
    for (unsigned i = 0; i < kWays; i++) m |= unsigned(bk.tag[i] == tag) << i;
    return m & bk.used;
#endif
  }

  uint32_t capacity_;
  uint32_t nbuckets_, mask_;
  tcp::LazyArray<Bucket> buckets_;
  uint32_t size_ = 0;
  Counters c_;
};

}  // namespace tcpterm::flow
