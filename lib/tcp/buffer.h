// Per-flow byte queues built from fixed-size chunks of a per-lcore pool.
//
// A flow holds chunks only while it holds bytes: an idle established flow
// owns none, so its footprint is the TCB alone.  The send queue holds bytes
// from SND.UNA on (unacknowledged, then unsent); the receive queue holds
// in-order bytes the application has not read yet and, beyond them,
// out-of-order bytes written at their sequence offset (the ranges live in an
// OooState taken from a small pool only while there is a hole).
//
// Invariants: a ByteQueue with no chunks has head == tail == kNil and off ==
// 0; the chunks cover [0, nchunks * kChunk - off) bytes from the queue start,
// which is >= len.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tcp/seq.h"

namespace tcpterm::tcp {

inline constexpr uint32_t kNil = 0xffffffffu;

class ChunkPool {
 public:
  static constexpr uint32_t kChunk = 2048;  // bytes per chunk

  explicit ChunkPool(uint32_t chunks);
  uint32_t alloc();  // kNil when exhausted (counted in alloc_failures)
  void free(uint32_t c);
  uint8_t* data(uint32_t c) { return &mem_[size_t(c) * kChunk]; }
  const uint8_t* data(uint32_t c) const { return &mem_[size_t(c) * kChunk]; }
  uint32_t& next(uint32_t c) { return next_[c]; }
  uint32_t next(uint32_t c) const { return next_[c]; }
  uint32_t capacity() const { return uint32_t(next_.size()); }
  uint32_t in_use() const { return in_use_; }
  uint64_t alloc_failures() const { return failures_; }

 private:
  std::vector<uint8_t> mem_;
  std::vector<uint32_t> next_;
  uint32_t free_head_ = kNil;
  uint32_t in_use_ = 0;
  uint64_t failures_ = 0;
};

struct ByteQueue {
  uint32_t head = kNil, tail = kNil;
  uint32_t len = 0;      // valid bytes from the start
  uint16_t off = 0;      // offset of byte 0 inside the head chunk
  uint16_t nchunks = 0;

  bool empty() const { return len == 0; }
  size_t covered() const { return size_t(nchunks) * ChunkPool::kChunk - off; }
};

// Appends up to n bytes (stops at pool exhaustion); returns bytes appended.
size_t bq_append(ByteQueue& q, ChunkPool& pool, const uint8_t* p, size_t n);
// Writes n bytes at byte position pos (>= len allowed: out-of-order data),
// allocating chunks as needed; does not change len.  False if the pool ran dry.
bool bq_write_at(ByteQueue& q, ChunkPool& pool, size_t pos, const uint8_t* p, size_t n);
// Copies n bytes from position pos (pos + n <= covered()).
void bq_copy_out(const ByteQueue& q, const ChunkPool& pool, size_t pos, uint8_t* dst, size_t n);
// Calls f(std::span<const uint8_t>) for the contiguous pieces of [pos, pos+n).
template <class F>
void bq_for_each(const ByteQueue& q, const ChunkPool& pool, size_t pos, size_t n, F&& f) {
  uint32_t c = q.head;
  size_t at = pos + q.off;
  while (at >= ChunkPool::kChunk) {
    c = pool.next(c);
    at -= ChunkPool::kChunk;
  }
  while (n) {
    size_t take = ChunkPool::kChunk - at;
    if (take > n) take = n;
    f(std::span<const uint8_t>(pool.data(c) + at, take));
    n -= take;
    at = 0;
    c = pool.next(c);
  }
}
// Drops n bytes from the front, freeing chunks no longer covered.  When the
// queue becomes empty and `release_tail` is set, every chunk is returned.
void bq_consume(ByteQueue& q, ChunkPool& pool, size_t n, bool release_tail = true);
void bq_clear(ByteQueue& q, ChunkPool& pool);

// Out-of-order ranges [start, end) above RCV.NXT, sorted, disjoint and not
// adjacent.  Four holes is what tcpterm keeps per flow; a segment that would
// need a fifth range is dropped (counted) and the peer retransmits.
struct OooState {
  static constexpr int kMaxRanges = 4;
  Seq start[kMaxRanges], end[kMaxRanges];
  uint8_t count = 0;
  uint32_t next_free = kNil;
};

class OooPool {
 public:
  explicit OooPool(uint32_t n);
  uint32_t alloc();  // kNil when exhausted
  void free(uint32_t i);
  OooState& operator[](uint32_t i) { return v_[i]; }
  uint32_t in_use() const { return in_use_; }
  uint32_t capacity() const { return uint32_t(v_.size()); }

 private:
  std::vector<OooState> v_;
  uint32_t free_head_ = kNil;
  uint32_t in_use_ = 0;
};

}  // namespace tcpterm::tcp
