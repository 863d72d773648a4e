#include "tcp/buffer.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace tcpterm::tcp {

ChunkPool::ChunkPool(uint32_t chunks, uint32_t queues)
    : mem_(size_t(chunks) * kChunk), next_(chunks), refs_(chunks), qs_(queues) {
  for (uint32_t i = 0; i < chunks; i++) next_[i] = i + 1 < chunks ? i + 1 : kNil;
  free_head_ = chunks ? 0 : kNil;
}

ChunkPool::~ChunkPool() = default;

uint32_t ChunkPool::queues_alloc() {
  uint32_t q = q_free_;
  if (q != kNil) q_free_ = qs_[q].ooo;  // the free list links through `ooo`
  else if (q_bump_ < qs_.size()) q = q_bump_++;
  else return kNil;
  qs_[q] = FlowQueues{};
  if (++q_in_use_ > q_high_) q_high_ = q_in_use_;
  return q;
}

void ChunkPool::queues_free(uint32_t q) {
  qs_[q].owner = FlowQueues::kFree;
  qs_[q].ooo = q_free_;
  q_free_ = q;
  q_in_use_--;
}

uint32_t ChunkPool::alloc() {
  uint32_t c = free_head_;
  if (c == kNil) {
    ++failures_;
    return kNil;
  }
  free_head_ = next_[c];
  next_[c] = kNil;
  refs_[c] = 1;
  if (++in_use_ > high_water_) high_water_ = in_use_;
  return c;
}

void ChunkPool::free(uint32_t c) {
  assert(refs_[c] > 0);
  if (--refs_[c] > 0) return;  // the other queue at a splice seam keeps it
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
  // nchunks, not the links: a send queue's tail at a splice seam links on
  // into the receive queue that shares it.
  uint32_t c = q.head;
  for (uint32_t i = 0; i < q.nchunks; i++) {
    uint32_t nx = pool.next(c);
    pool.free(c);
    c = nx;
  }
  q = ByteQueue{};
}

namespace {
// Position of the queue's end inside its tail chunk (0: at a boundary).
uint32_t end_pos(const ByteQueue& q) { return uint32_t((q.off + q.len) % ChunkPool::kChunk); }
bool at_boundary(const ByteQueue& q) { return q.covered() == q.len; }

// Misaligned splice: when `to`'s last chunk T holds few enough bytes to sit
// just before `from`'s first byte in `from`'s first chunk (whose room
// before that byte is spent), move them there and let the two queues share
// that chunk: one copy of at most a chunk, then every splice hands over.
bool rebase(ByteQueue& from, ByteQueue& to, ChunkPool& pool) {
  const uint32_t K = ChunkPool::kChunk;
  uint32_t T = to.tail, c0 = from.head;
  if (T == kNil || c0 == kNil || T == c0 || pool.shared(T) || pool.shared(c0)) return false;
  uint32_t pe = end_pos(to) ? end_pos(to) : K;
  bool single = to.head == T;
  uint32_t s0 = single ? to.off : 0;
  uint32_t L = pe - s0;
  uint32_t o = from.off;
  // A lone chunk can start anywhere; a later one must start at 0.
  uint32_t at;
  if (single && o >= L) at = o - L;
  else if (!single && o == pe) at = 0;
  else return false;
  std::memmove(pool.data(c0) + at, pool.data(T) + s0, L);
  if (single) {
    to.head = c0;
    to.off = uint16_t(at);
  } else {
    uint32_t p = to.head;
    while (pool.next(p) != T) p = pool.next(p);
    pool.next(p) = c0;
  }
  to.tail = c0;
  pool.free(T);
  pool.share(c0);
  return true;
}

}  // namespace

bool bq_put_before_splice(ByteQueue& q, ChunkPool& pool, const uint8_t* p, size_t n) {
  if (q.nchunks != 0 || q.len != 0 || n == 0 || n > ChunkPool::kChunk) return false;
  uint32_t c = pool.alloc();
  if (c == kNil) return false;
  std::memcpy(pool.data(c) + (ChunkPool::kChunk - n), p, n);
  q.head = q.tail = c;
  q.off = uint16_t(ChunkPool::kChunk - n);
  q.nchunks = 1;
  q.len = uint32_t(n);
  return true;
}

bool bq_unshare_tail(ByteQueue& q, ChunkPool& pool) {
  if (q.tail == kNil || !pool.shared(q.tail)) return true;
  uint32_t c = pool.alloc();
  if (c == kNil) return false;
  // The bytes this queue owns in its tail: from 0 (or off, if the tail is
  // also the head) to the end; the room after them is the other queue's.
  uint32_t from = q.head == q.tail ? q.off : 0;
  uint32_t to = end_pos(q) ? end_pos(q) : ChunkPool::kChunk;
  std::memcpy(pool.data(c) + from, pool.data(q.tail) + from, to - from);
  uint32_t old = q.tail;
  if (q.head == old) {
    q.head = c;
  } else {
    uint32_t p = q.head;
    while (pool.next(p) != old) p = pool.next(p);
    pool.next(p) = c;
  }
  pool.next(c) = kNil;
  q.tail = c;
  pool.free(old);
  return true;
}

size_t bq_splice(ByteQueue& from, ByteQueue& to, ChunkPool& pool, size_t n) {
  assert(n <= from.len);
  if (!n) return 0;
  const uint32_t K = ChunkPool::kChunk;
  bool empty_to = to.nchunks == 0;
  bool continues = !empty_to && to.tail == from.head && end_pos(to) == from.off;
  bool boundary = !empty_to && at_boundary(to) && end_pos(to) == 0 && from.off == 0 && to.tail != from.head;
  if (!empty_to && !continues && !boundary && rebase(from, to, pool)) continues = true;
  if (!empty_to && !continues && !boundary) {
    // Misaligned (bytes reached `to` by copy before): copy this once, then
    // align the two queues at the seam so that later splices hand over.
    if (!bq_unshare_tail(to, pool)) return SIZE_MAX;
    size_t done = 0;
    bool ok = true;
    bq_for_each(from, pool, 0, n, [&](std::span<const uint8_t> piece) {
      if (ok) {
        size_t d = bq_append(to, pool, piece.data(), piece.size());
        done += d;
        ok = d == piece.size();
      }
    });
    if (!ok) {
      // Undo the partial append (the pool ran dry): nothing moves.
      to.len -= uint32_t(done);
      return SIZE_MAX;
    }
    bq_consume(from, pool, n);
    if (from.len == 0 && from.nchunks == 0 && end_pos(to) != 0 && !at_boundary(to)) {
      // The receive queue continues in the room of the send queue's tail.
      from.head = from.tail = to.tail;
      from.off = uint16_t(end_pos(to));
      from.nchunks = 1;
      pool.share(to.tail);
    }
    return n;
  }
  // Handover.  The chunks of `from` that hold bytes [0, n): c0 .. ck.
  // Each queue holding a chunk holds one reference: chunks c0..ck pass from
  // `from` to `to` with their references, except c0 when `to` holds it
  // already (the previous seam: `from` lets go of it unless it stays the
  // seam) and ck when `from` keeps it too (the new seam: one more).
  const uint32_t c0 = from.head;
  uint32_t last_pos = uint32_t((from.off + n - 1) % K);  // position of byte n-1 in ck
  uint32_t span = uint32_t((from.off + n - 1) / K);      // chunks after c0 up to ck
  uint32_t ck = c0;
  for (uint32_t i = 0; i < span; i++) ck = pool.next(ck);
  bool seam = last_pos + 1 < K;  // ck has room or bytes after byte n-1: both keep it
  uint32_t after = pool.next(ck);
  uint32_t first = continues ? pool.next(c0) : c0;  // c0 is `to`'s tail already when continuing
  uint32_t added = span + 1 - (continues ? 1u : 0u);
  if (empty_to) {
    to.head = c0;
    to.off = from.off;
  } else if (added) {
    pool.next(to.tail) = first;  // `to`'s tail is private here (boundary) or c0 (continues)
  }
  if (added) to.tail = ck;
  to.nchunks = uint16_t(to.nchunks + added);
  to.len += uint32_t(n);
  if (continues && !(seam && span == 0)) pool.free(c0);
  if (seam && !(continues && span == 0)) pool.share(ck);
  from.len -= uint32_t(n);
  if (seam) {
    // `from` goes on from ck; `to` ends inside ck and never follows its link.
    from.nchunks = uint16_t(from.nchunks - span);
    from.head = ck;
    from.off = uint16_t(last_pos + 1);
  } else {
    pool.next(ck) = kNil;  // `to` ends exactly at ck's end
    from.nchunks = uint16_t(from.nchunks - span - 1);
    from.head = after;
    from.off = 0;
    if (from.nchunks == 0) from.head = from.tail = kNil;
  }
  return 0;
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

bool lend_to_chunks(FlowQueues& q, ChunkPool& pool) {
  if (!q.snd_lent) return true;
  const uint8_t* p = q.snd_lent;
  const uint32_t n = q.snd.len;
  if (pool.available() < (n + ChunkPool::kChunk - 1) / ChunkPool::kChunk) return false;
  q.snd = ByteQueue{};
  q.snd_lent = nullptr;
  bq_append(q.snd, pool, p, n);  // room was checked: all of it
  return true;
}

void snd_consume(FlowQueues& q, ChunkPool& pool, size_t n) {
  if (!q.snd_lent) return bq_consume(q.snd, pool, n);
  q.snd_lent += n;
  q.snd.len -= uint32_t(n);
  if (q.snd.len == 0) q.snd_lent = nullptr;
}

}  // namespace tcpterm::tcp
