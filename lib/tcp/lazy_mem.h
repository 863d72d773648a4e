// Large per-lcore arrays (flow-table buckets, TIME-WAIT records, buffer
// chunks) come from anonymous mappings: zero pages that the kernel faults in
// on first touch.  So a capacity sized for the worst case costs address
// space, not memory, until it is used, and the pages land on the NUMA node
// of the lcore that first writes them (the worker that owns the structure).
// Page-aligned, hence cache-line aligned.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <new>

namespace tcpterm::tcp {

template <class T>
class LazyArray {
 public:
  LazyArray() = default;
  explicit LazyArray(size_t n) : n_(n) {
    if (n == 0) return;
    void* p = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
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
