// Compact TIME-WAIT records and their per-lcore FIFO.
//
// Entering TIME-WAIT frees the full TCB; what must survive 2*MSL fits in 32
// bytes: the key, SND.NXT, RCV.NXT, TS.Recent, the expiry and one link word.
// Every record lives 2*MSL, so appending at the tail keeps the FIFO sorted by
// expiry and expiry is a walk from the head.  A restart (retransmitted FIN)
// is "unlink and append": the stack appends a copy at the tail (the latest
// expiry, so the FIFO stays sorted) and marks the old record dead.  Only when
// no record is free does restart() rewrite the expiry in place and flag it;
// such a record is moved to the tail when it reaches the head (it may then
// wait behind younger records: late, never early -- and counted).
// A record closed early (RST under the RFC 9293 policy, or a new incarnation
// under RFC 6191) is marked dead and reclaimed when it reaches the head.
//
// Records come from a lazily mapped array (tcp/lazy_mem.h) handed out by a
// bump index before the free list: an unused capacity costs no memory
// (unless committed up front: --prefault on).
//
// The link word: bits 0..26 next index (so at most 2^27-1 = 134 M records
// per lcore), bit 27 restarted, bit 28 ts_ok, bit 29 ws_ok, bit 30 live.
//
// If `set msl` shortens 2*MSL at run time, records armed afterwards may wait
// behind older, longer ones: they expire late, never early.
#pragma once
#include <cstdint>
#include <vector>

#include "flow/key.h"
#include "tcp/lazy_mem.h"
#include "tcp/seq.h"
#include "tcp/time_wait.h"

namespace tcpterm::flow {

struct TwRecord {
  FlowKey4 key;
  uint32_t snd_nxt;
  uint32_t rcv_nxt;
  uint32_t ts_recent;
  uint32_t expires;  // lcore clock, milliseconds (low 32 bits)
  uint32_t link;
};
static_assert(sizeof(TwRecord) == 32, "TIME-WAIT record: 32 bytes");

class TimeWaitTable {
 public:
  static constexpr uint32_t kNil = (1u << 27) - 1;
  static constexpr uint32_t kMaxCapacity = kNil;
  static constexpr uint32_t kRestarted = 1u << 27, kTsOk = 1u << 28, kWsOk = 1u << 29,
                            kLive = 1u << 30;

  // commit: every record's memory committed now (tcp::Huge::Commit), not as
  // the records are first handed out.
  explicit TimeWaitTable(uint32_t capacity, bool commit = false)
      : recs_(capacity, commit ? tcp::Huge::Commit : tcp::Huge::No) {}

  uint32_t capacity() const { return uint32_t(recs_.size()); }
  uint32_t size() const { return live_; }      // live records
  uint32_t occupied() const { return used_; }  // live + dead awaiting the head
  bool full() const { return free_ == kNil && bump_ == recs_.size(); }
  size_t memory_bytes() const { return recs_.bytes(); }
  // Bytes of records ever handed out (an upper bound of what is faulted in).
  size_t touched_bytes() const { return size_t(bump_) * sizeof(TwRecord); }

  TwRecord& operator[](uint32_t i) { return recs_[i]; }
  const TwRecord& operator[](uint32_t i) const { return recs_[i]; }
  bool live(uint32_t i) const { return recs_[i].link & kLive; }

  // Appends a record expiring at `expires`; kNil when full.
  uint32_t add(const FlowKey4& key, const tcp::TwState& s, uint32_t expires) {
    uint32_t i = free_;
    if (i != kNil) {
      free_ = recs_[i].link & kNil;
    } else if (bump_ < recs_.size()) {
      i = bump_++;
    } else {
      return kNil;
    }
    TwRecord& r = recs_[i];
    r.key = key;
    r.snd_nxt = s.snd_nxt.v;
    r.rcv_nxt = s.rcv_nxt.v;
    r.ts_recent = s.ts_recent;
    r.expires = expires;
    r.link = kLive | (s.ts_ok ? kTsOk : 0) | (s.ws_ok ? kWsOk : 0) | kNil;
    append(i);
    used_++;
    live_++;
    return i;
  }

  tcp::TwState state(uint32_t i) const {
    const TwRecord& r = recs_[i];
    return tcp::TwState{tcp::Seq(r.snd_nxt), tcp::Seq(r.rcv_nxt), r.ts_recent,
                        bool(r.link & kTsOk), bool(r.link & kWsOk)};
  }

  // Restarts the 2MSL wait in place (RFC 9293: retransmitted FIN in
  // TIME-WAIT) when no record is free for relink() (see the note above).
  void restart(uint32_t i, uint32_t expires) {
    recs_[i].expires = expires;
    recs_[i].link |= kRestarted;
  }
  // Unlink and append: a copy of record i with a new expiry and TS.Recent
  // goes to the tail, i is marked dead.  Returns the new index (kNil when
  // no record is free: the caller falls back to restart()).
  uint32_t relink(uint32_t i, uint32_t expires, uint32_t ts_recent) {
    tcp::TwState s = state(i);
    s.ts_recent = ts_recent;
    uint32_t j = add(recs_[i].key, s, expires);
    if (j != kNil) kill(i);
    return j;
  }
  void set_ts_recent(uint32_t i, uint32_t ts) { recs_[i].ts_recent = ts; }

  // Ends a record before its time; the caller removes it from the flow table.
  void kill(uint32_t i) {
    recs_[i].link &= ~kLive;
    live_--;
  }

  // Expires records whose time has come, oldest first, calling
  // on_expire(index) for each live one (before it is reused); at most
  // `budget` records are examined.  Returns the number expired.
  template <class F>
  uint32_t expire(uint32_t now, uint32_t budget, F&& on_expire) {
    return expire(now, budget, on_expire, [](uint32_t) {});
  }
  // The same, calling ahead(index) for each live record kAhead places
  // behind the one being expired, so the caller can prefetch what expiring
  // it will touch (its flow-table bucket) while earlier ones are processed.
  static constexpr unsigned kAhead = 8;
  template <class F, class A>
  uint32_t expire(uint32_t now, uint32_t budget, F&& on_expire, A&& ahead) {
    uint32_t n = 0;
    if (head_ == kNil) return 0;
    if (const TwRecord& h = recs_[head_];
        (h.link & kLive) && !(h.link & kRestarted) && !tcp::time_reached(now, h.expires))
      return 0;  // nothing due: no look-ahead either
    uint32_t la = head_;
    auto step = [&] {
      if (la == kNil) return;
      la = recs_[la].link & kNil;
      if (la != kNil && (recs_[la].link & kLive)) ahead(la);
    };
    if (la != kNil && (recs_[la].link & kLive)) ahead(la);
    for (unsigned k = 0; k < kAhead; k++) step();
    while (head_ != kNil && budget--) {
      step();
      TwRecord& r = recs_[head_];
      if (r.link & kLive) {
        if (r.link & kRestarted) {
          r.link &= ~kRestarted;
          uint32_t i = pop();
          append(i);
          continue;
        }
        if (!tcp::time_reached(now, r.expires)) break;
      }
      uint32_t i = pop();
      if (recs_[i].link & kLive) {
        on_expire(i);
        live_--;
        n++;
      }
      release(i);
    }
    return n;
  }

  // Removes the oldest live record early (the RecycleOldest cap policy),
  // calling on_evict(index) first.  False when there is none.
  template <class F>
  bool evict_oldest(F&& on_evict) {
    while (head_ != kNil) {
      uint32_t i = pop();
      bool was_live = recs_[i].link & kLive;
      if (was_live) {
        on_evict(i);
        live_--;
      }
      release(i);
      if (was_live) return true;
    }
    return false;
  }

  // The expiry of the head record (for "when is the next expiry").
  bool next_expiry(uint32_t& at) const {
    if (head_ == kNil) return false;
    at = recs_[head_].expires;
    return true;
  }

  template <class F>
  void for_each_live(F&& f) const {
    for (uint32_t i = head_; i != kNil; i = recs_[i].link & kNil)
      if (recs_[i].link & kLive) f(i, recs_[i]);
  }

  // A walk taken in steps (a listing spread over several polls of the
  // lcore): the FIFO's first record, the one after i, and how many records
  // have left the head so far.  A record r places behind the head when a
  // walk reached it is still linked as long as fewer than r + 1 records
  // have left the head since (they leave in order).
  uint32_t first() const { return head_; }
  uint32_t after(uint32_t i) const { return recs_[i].link & kNil; }
  uint64_t departed() const { return departed_; }

 private:
  void append(uint32_t i) {
    recs_[i].link = (recs_[i].link & ~kNil) | kNil;
    if (tail_ == kNil) head_ = i;
    else recs_[tail_].link = (recs_[tail_].link & ~kNil) | i;
    tail_ = i;
  }
  uint32_t pop() {
    uint32_t i = head_;
    departed_++;
    head_ = recs_[i].link & kNil;
    if (head_ == kNil) tail_ = kNil;
    return i;
  }
  void release(uint32_t i) {
    recs_[i].link = free_;
    free_ = i;
    used_--;
  }

  tcp::LazyArray<TwRecord> recs_;
  uint32_t bump_ = 0;  // records [bump_, capacity) were never handed out
  uint32_t head_ = kNil, tail_ = kNil, free_ = kNil;
  uint32_t used_ = 0, live_ = 0;
  uint64_t departed_ = 0;  // records popped from the head, ever
};

}  // namespace tcpterm::flow
