// A preallocated slab of T with stable 32-bit indices and generations.
// alloc()/free() are O(1) and never allocate; a freed slot's generation is
// bumped, so a stale {index, generation} handle is detected.
#pragma once
#include <cstdint>
#include <vector>

namespace tcpterm::flow {

inline constexpr uint32_t kNoIndex = 0xffffffffu;

template <class T>
class SlotPool {
 public:
  explicit SlotPool(uint32_t capacity) : items_(capacity), gen_(capacity), next_(capacity) {
    for (uint32_t i = 0; i < capacity; i++) next_[i] = i + 1 < capacity ? i + 1 : kNoIndex;
    free_ = capacity ? 0 : kNoIndex;
  }
  uint32_t alloc() {
    uint32_t i = free_;
    if (i == kNoIndex) return kNoIndex;
    free_ = next_[i];
    next_[i] = kInUse;
    ++used_;
    return i;
  }
  void free(uint32_t i) {
    gen_[i]++;
    next_[i] = free_;
    free_ = i;
    --used_;
  }
  bool in_use(uint32_t i) const { return next_[i] == kInUse; }
  T& operator[](uint32_t i) { return items_[i]; }
  const T& operator[](uint32_t i) const { return items_[i]; }
  uint32_t generation(uint32_t i) const { return gen_[i]; }
  uint32_t capacity() const { return uint32_t(items_.size()); }
  uint32_t size() const { return used_; }
  T* data() { return items_.data(); }

 private:
  static constexpr uint32_t kInUse = 0xfffffffeu;
  std::vector<T> items_;
  std::vector<uint32_t> gen_;
  std::vector<uint32_t> next_;
  uint32_t free_ = kNoIndex;
  uint32_t used_ = 0;
};

}  // namespace tcpterm::flow
