// Per-flow byte queues built from fixed-size chunks of a per-lcore pool.
//
// A flow holds chunks only while it holds bytes: an idle established flow
// owns none, so its footprint is the TCB alone.  The send queue holds bytes
// from SND.UNA on (unacknowledged, then unsent); the receive queue holds the
// in-order bytes the application has not read yet.  Out-of-order bytes are
// stored sparsely: each range above RCV.NXT has its own queue (an OooState
// taken from a small pool only while there is a hole), so one byte far to
// the right of the window costs one chunk, not a chain up to it.
//
// Memory pressure (Linux tcp_mem): the pool enters pressure at 3/4 in use
// and leaves it below 1/2.  Under pressure advertised windows stop growing
// beyond a few segments, send queues are capped, new out-of-order data that
// would be the farthest from RCV.NXT is not kept, and the farthest ranges of
// any flow are pruned first when chunks are needed; above 7/8 the stack
// reclaims orphans and stalled flows holding the most (lib/stack).
//
// Invariants: a ByteQueue with no chunks has head == tail == kNil and off ==
// 0; the chunks cover [0, nchunks * kChunk - off) bytes from the queue start,
// which is >= len.
//
// Splicing (the proxy): bytes move from one flow's receive queue to
// another's send queue by handing over chunks (bq_splice), not by copying.
// The chunk where a splice ends may be shared by both queues: the send
// queue owns its bytes up to the seam, the receive queue the room after it
// (where the next segment lands, so the next splice continues in the same
// chunk).  Chunks carry a reference count; a send queue never writes into a
// shared tail (bq_unshare_tail copies it first).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "tcp/lazy_mem.h"

#include "tcp/seq.h"

namespace tcpterm::tcp {

inline constexpr uint32_t kNil = 0xffffffffu;

struct FlowQueues;

class ChunkPool {
 public:
  static constexpr uint32_t kChunk = 2048;  // bytes per chunk

  // `queues`: how many flows may hold queue headers at once (one per flow).
  explicit ChunkPool(uint32_t chunks, uint32_t queues = 1024);
  ~ChunkPool();  // out of line: FlowQueues is complete there
  uint32_t alloc();  // kNil when exhausted (counted in alloc_failures)
  // Drops one reference; the chunk returns to the pool with the last.
  void free(uint32_t c);
  // One more queue holds chunk c (a splice seam).
  void share(uint32_t c) { refs_[c]++; }
  bool shared(uint32_t c) const { return refs_[c] > 1; }
  uint32_t available() const { return capacity() - in_use_; }
  // Pressure with hysteresis: on at 3/4 in use, off below 1/2.
  bool under_pressure() {
    if (pressure_) pressure_ = in_use_ * 2 >= capacity();
    else if (in_use_ * 4 >= capacity() * 3) {
      pressure_ = true;
      pressure_entered_++;
    }
    return pressure_;
  }
  bool critical() const { return uint64_t(in_use_) * 8 >= uint64_t(capacity()) * 7; }
  uint64_t pressure_entered() const { return pressure_entered_; }
  uint32_t high_water() const { return high_water_; }
  uint8_t* data(uint32_t c) { return &mem_[size_t(c) * kChunk]; }
  const uint8_t* data(uint32_t c) const { return &mem_[size_t(c) * kChunk]; }
  uint32_t& next(uint32_t c) { return next_[c]; }
  uint32_t next(uint32_t c) const { return next_[c]; }
  uint32_t capacity() const { return uint32_t(next_.size()); }
  uint32_t in_use() const { return in_use_; }
  uint64_t alloc_failures() const { return failures_; }

  // Queue headers (FlowQueues), one per flow that holds bytes: taken when a
  // flow first queues a byte, returned when its queues are empty again.
  uint32_t queues_alloc();  // kNil when all are taken
  void queues_free(uint32_t q);
  FlowQueues& queues(uint32_t q);
  const FlowQueues& queues(uint32_t q) const;
  uint32_t queues_in_use() const { return q_in_use_; }
  // Headers ever handed out: every header taken now is below this index.
  uint32_t queues_touched() const { return q_bump_; }
  uint32_t queues_capacity() const { return uint32_t(qs_.size()); }
  uint32_t queues_high_water() const { return q_high_; }

 private:
  LazyArray<uint8_t> mem_;
  std::vector<uint32_t> next_;
  std::vector<uint8_t> refs_;  // queues holding each chunk (at most 2)
  uint32_t free_head_ = kNil;
  uint32_t in_use_ = 0, high_water_ = 0;
  uint64_t failures_ = 0, pressure_entered_ = 0;
  bool pressure_ = false;
  LazyArray<FlowQueues> qs_;  // lazily mapped like the chunks: only headers ever taken are touched
  uint32_t q_free_ = kNil, q_bump_ = 0, q_in_use_ = 0, q_high_ = 0;
};

struct ByteQueue {
  uint32_t head = kNil, tail = kNil;
  uint32_t len = 0;      // valid bytes from the start
  uint16_t off = 0;      // offset of byte 0 inside the head chunk
  uint16_t nchunks = 0;

  bool empty() const { return len == 0; }
  size_t covered() const { return size_t(nchunks) * ChunkPool::kChunk - off; }
};

// A flow's byte queues, kept out of the TCB: an established flow with no
// bytes queued holds none (its TCB has only the index, Tcb::q), so the
// per-flow footprint of a million idle or request/response flows is not 36
// bytes of empty queue headers each.
struct FlowQueues {
  static constexpr uint32_t kFree = kNil - 1;  // `owner` of a header in the free list
  ByteQueue snd;        // bytes from SND.UNA
  ByteQueue rcv;        // in-order unread bytes
  uint32_t ooo = kNil;  // out-of-order ranges (OooPool), kNil without a hole
  // The flow slot holding these headers, as the stack last recorded it
  // (after each event), so that memory reclaim visits the holders of
  // chunks without scanning every flow; kNil until recorded, kFree when
  // the header is not taken.  A reader checks the flow still holds it.
  uint32_t owner = kNil;
  // Lent bytes (tcp::send_lent): the send queue's snd.len bytes lie here,
  // from SND.UNA on, in the application's own memory, and the queue holds
  // no chunk (head == tail == kNil, off == 0, nchunks == 0).  Null when the
  // queue's bytes, if any, are in chunks.  Nothing is copied until a later
  // send or splice appends to the queue (lend_to_chunks).
  const uint8_t* snd_lent = nullptr;
  // Nothing held: the headers can go back to the pool.
  bool idle() const { return snd.nchunks == 0 && !snd_lent && rcv.nchunks == 0 && ooo == kNil; }
};
static_assert(sizeof(FlowQueues) == 48);

inline FlowQueues& ChunkPool::queues(uint32_t q) { return qs_[q]; }
inline const FlowQueues& ChunkPool::queues(uint32_t q) const { return qs_[q]; }

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

// Moves the first n bytes (n <= from.len) of `from` (a receive queue) to the
// end of `to` (a send queue).  Chunks are handed over whenever the two
// queues meet at a chunk boundary or share the seam chunk, which a splice
// arranges for the next one; otherwise (the first splice after `to` got
// bytes by copy) the bytes are copied once and the queues are aligned for
// the next splice.  Returns the bytes copied (0 on the handover path), or
// SIZE_MAX when the pool ran dry for a copy (nothing moved).
size_t bq_splice(ByteQueue& from, ByteQueue& to, ChunkPool& pool, size_t n);
// Into an empty send queue, n <= kChunk bytes that spliced bytes will
// follow (a PROXY protocol header): placed at the end of their chunk, so
// that the queue ends on a chunk boundary and the splices that follow hand
// chunks over.  False if the queue is not empty (chunks or lent bytes) or
// the pool is dry.
bool bq_put_before_splice(ByteQueue& q, ChunkPool& pool, const uint8_t* p, size_t n);
// Before a send queue appends: if its tail chunk is shared with a receive
// queue, replace it by a private copy.  False if the pool is dry.
bool bq_unshare_tail(ByteQueue& q, ChunkPool& pool);
// Before a send queue holding lent bytes (FlowQueues::snd_lent) appends or
// takes a splice: the lent bytes copied into chunks.  False (nothing
// changed) if the pool cannot hold them.
bool lend_to_chunks(FlowQueues& q, ChunkPool& pool);
// The send queue's bytes go: chunks returned, lent bytes forgotten.
inline void snd_clear(FlowQueues& q, ChunkPool& pool) {
  bq_clear(q.snd, pool);
  q.snd_lent = nullptr;
}
// Drops n bytes (n <= snd.len) from the front of the send queue.
void snd_consume(FlowQueues& q, ChunkPool& pool, size_t n);

// Out-of-order ranges [start, end) above RCV.NXT, sorted, disjoint and not
// adjacent, each with its own queue of exactly its bytes.  Four holes is
// what tcpterm keeps per flow; a segment that would need a fifth range is
// dropped (counted) and the peer retransmits.  Nothing here was ever
// acknowledged (no SACK), so dropping a range is always safe.
struct OooState {
  static constexpr int kMaxRanges = 4;
  Seq start[kMaxRanges], end[kMaxRanges];
  ByteQueue q[kMaxRanges];
  uint8_t count = 0;
  uint32_t next_free = kNil;  // kInUse while allocated
};

class OooPool {
 public:
  static constexpr uint32_t kInUse = 0xfffffffeu;
  explicit OooPool(uint32_t n);
  uint32_t alloc();  // kNil when exhausted
  void free(uint32_t i, ChunkPool& chunks);  // returns the ranges' chunks too
  OooState& operator[](uint32_t i) { return v_[i]; }
  uint32_t in_use() const { return in_use_; }
  uint32_t capacity() const { return uint32_t(v_.size()); }
  // Drops the farthest range of one flow (its chunks return to the pool);
  // returns the bytes dropped.
  static uint32_t drop_last(OooState& o, ChunkPool& chunks);
  // Pressure: drops the farthest range of flow after flow (round robin over
  // the pool, skipping `except`) until `want` chunks are free or nothing is
  // left; returns the ranges dropped.
  uint32_t prune(ChunkPool& chunks, uint32_t want, uint32_t except, uint64_t& bytes);

 private:
  std::vector<OooState> v_;
  uint32_t free_head_ = kNil;
  uint32_t in_use_ = 0;
  uint32_t cursor_ = 0;
};

}  // namespace tcpterm::tcp
