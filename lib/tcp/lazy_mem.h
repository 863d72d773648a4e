// Large per-lcore arrays (flow-table buckets, TIME-WAIT records, buffer
// chunks) come from anonymous mappings: zero pages that the kernel faults in
// on first touch.  So a capacity sized for the worst case costs address
// space, not memory, until it is used, and the pages land on the NUMA node
// of the lcore that first writes them (the worker that owns the structure).
// Page-aligned, hence cache-line aligned.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>

namespace tcpterm::tcp {

// Huge::Yes (the flow table, --table-hugepages on): the mapping is 2 MiB-
// aligned, asks for transparent huge pages and is touched once per 2 MiB
// here, by the constructing thread (the worker lcore: NUMA-local).  A hash
// table's buckets are reached at random, so with 4 KiB pages nearly every
// lookup in a table of tens of MiB also misses the TLB (and a prefetch of
// the bucket waits for the page walk).  Committed up front, because random
// hashing would commit it 2 MiB at a time anyway, each first touch a fault
// that zeroes 2 MiB on the data path (4-6 ms each on this project's VM:
// 10 000 new flows in a 1.2 GiB table dropped SYNs).  Where THP is off,
// the hint does nothing and the touches commit one 4 KiB page per 2 MiB.
// Huge::Commit (the TIME-WAIT records, --prefault on): the same, and every
// page is committed (MADV_POPULATE_WRITE; else a write to each 4 KiB), THP
// or not: an array filled in order, whose first touches would otherwise be
// page faults on the data path for its first 2*MSL.
enum class Huge : uint8_t { No, Yes, Commit };

template <class T>
class LazyArray {
 public:
  static constexpr size_t kHugePage = size_t(2) << 20;
  LazyArray() = default;
  explicit LazyArray(size_t n, Huge huge = Huge::No) : n_(n) {
    if (n == 0) return;
    const bool h = huge != Huge::No && bytes() >= kHugePage;
    const size_t len = h ? bytes() + kHugePage : bytes();
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    if (h) {
      // Keep the 2 MiB-aligned part; give back the slack on either side.
      char* base = static_cast<char*>(p);
      char* aligned = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(base) + kHugePage - 1) & ~(kHugePage - 1));
      if (aligned > base) ::munmap(base, size_t(aligned - base));
      char* end = aligned + bytes();
      if (end < base + len) ::munmap(end, size_t(base + len - end));
      p = aligned;
#ifdef MADV_HUGEPAGE
      ::madvise(p, bytes(), MADV_HUGEPAGE);
#endif
      for (size_t off = 0; off < bytes(); off += kHugePage) static_cast<volatile char*>(p)[off] = 0;
    }
    if (huge == Huge::Commit) {
#ifdef MADV_POPULATE_WRITE
      if (::madvise(p, bytes(), MADV_POPULATE_WRITE) != 0)
#endif
        for (size_t off = 0; off < bytes(); off += 4096) static_cast<volatile char*>(p)[off] = 0;
    }
    p_ = static_cast<T*>(p);
  }
  ~LazyArray() {
    if (p_) ::munmap(p_, bytes());
  }
  LazyArray(const LazyArray&) = delete;
  LazyArray& operator=(const LazyArray&) = delete;
  LazyArray(LazyArray&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  LazyArray& operator=(LazyArray&& o) noexcept {
    if (this != &o) {
      this->~LazyArray();
      p_ = o.p_; n_ = o.n_;
      o.p_ = nullptr; o.n_ = 0;
    }
    return *this;
  }
  T& operator[](size_t i) { return p_[i]; }
  const T& operator[](size_t i) const { return p_[i]; }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace tcpterm::tcp
