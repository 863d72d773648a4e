#include "tcp/buffer.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace tcpterm::tcp {

ChunkPool::ChunkPool(uint32_t chunks) : mem_(size_t(chunks) * kChunk), next_(chunks) {
  for (uint32_t i = 0; i < chunks; i++) next_[i] = i + 1 < chunks ? i + 1 : kNil;
  free_head_ = chunks ? 0 : kNil;
}

uint32_t ChunkPool::alloc() {
  uint32_t c = free_head_;
  if (c == kNil) {
    ++failures_;
    return kNil;
  }
  free_head_ = next_[c];
  next_[c] = kNil;
  if (++in_use_ > high_water_) high_water_ = in_use_;
  return c;
}

void ChunkPool::free(uint32_t c) {
  next_[c] = free_head_;
  free_head_ = c;
  --in_use_;
}

namespace {
bool grow(ByteQueue& q, ChunkPool& pool) {
  uint32_t c = pool.alloc();
  if (c == kNil) return false;
  if (q.tail == kNil) q.head = c;
  else pool.next(q.tail) = c;
  q.tail = c;
  q.nchunks++;
  return true;
}
}  // namespace

bool bq_write_at(ByteQueue& q, ChunkPool& pool, size_t pos, const uint8_t* p, size_t n) {
  while (q.covered() < pos + n)
    if (!grow(q, pool)) return false;
  bq_for_each(q, pool, pos, n, [&](std::span<const uint8_t> piece) {
    std::memcpy(const_cast<uint8_t*>(piece.data()), p, piece.size());
    p += piece.size();
  });
  return true;
}

size_t bq_append(ByteQueue& q, ChunkPool& pool, const uint8_t* p, size_t n) {
  size_t done = 0;
  while (done < n) {
    if (q.covered() == q.len && !grow(q, pool)) break;
    size_t room = q.covered() - q.len;
    size_t take = std::min(room, n - done);
    bq_write_at(q, pool, q.len, p + done, take);
    q.len += uint32_t(take);
    done += take;
  }
  return done;
}

void bq_copy_out(const ByteQueue& q, const ChunkPool& pool, size_t pos, uint8_t* dst, size_t n) {
  bq_for_each(q, pool, pos, n, [&](std::span<const uint8_t> piece) {
    std::memcpy(dst, piece.data(), piece.size());
    dst += piece.size();
  });
}

void bq_consume(ByteQueue& q, ChunkPool& pool, size_t n, bool release_tail) {
  assert(n <= q.len);
  q.len -= uint32_t(n);
  size_t off = q.off + n;
  while (off >= ChunkPool::kChunk && q.head != kNil) {
    uint32_t c = q.head;
    q.head = pool.next(c);
    pool.free(c);
    q.nchunks--;
    off -= ChunkPool::kChunk;
  }
  if (q.head == kNil) {
    q.tail = kNil;
    off = 0;
  }
  q.off = uint16_t(off);
  if (q.len == 0 && release_tail) bq_clear(q, pool);
}

void bq_clear(ByteQueue& q, ChunkPool& pool) {
  for (uint32_t c = q.head; c != kNil;) {
    uint32_t nx = pool.next(c);
    pool.free(c);
    c = nx;
  }
  q = ByteQueue{};
}

OooPool::OooPool(uint32_t n) : v_(n) {
  for (uint32_t i = 0; i < n; i++) v_[i].next_free = i + 1 < n ? i + 1 : kNil;
  free_head_ = n ? 0 : kNil;
}

uint32_t OooPool::alloc() {
  uint32_t i = free_head_;
  if (i == kNil) return kNil;
  free_head_ = v_[i].next_free;
  v_[i] = OooState{};
  v_[i].next_free = kInUse;
  ++in_use_;
  return i;
}

void OooPool::free(uint32_t i, ChunkPool& chunks) {
  OooState& o = v_[i];
  for (int r = 0; r < o.count; r++) bq_clear(o.q[r], chunks);
  o.count = 0;
  o.next_free = free_head_;
  free_head_ = i;
  --in_use_;
}

uint32_t OooPool::drop_last(OooState& o, ChunkPool& chunks) {
  if (!o.count) return 0;
  o.count--;
  uint32_t n = uint32_t(o.end[o.count] - o.start[o.count]);
  bq_clear(o.q[o.count], chunks);
  return n;
}

uint32_t OooPool::prune(ChunkPool& chunks, uint32_t want, uint32_t except, uint64_t& bytes) {
  uint32_t dropped = 0;
  // Two sweeps at most: each drops at most one range per flow, farthest first.
  for (uint32_t seen = 0; seen < 2 * v_.size() && chunks.available() < want; seen++) {
    uint32_t i = cursor_;
    cursor_ = cursor_ + 1 < v_.size() ? cursor_ + 1 : 0;
    OooState& o = v_[i];
    if (i == except || o.next_free != kInUse || !o.count) continue;
    bytes += drop_last(o, chunks);
    dropped++;
  }
  return dropped;
}

}  // namespace tcpterm::tcp
