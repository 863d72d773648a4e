// lib/timer: a hierarchical timing wheel with exact expiry.
//
// Timers are identified by a dense 32-bit id (tcpterm uses the flow index);
// the wheel owns one intrusive node per id, preallocated, so arm/cancel never
// allocate.  Time is an argument: advance(now) fires every timer whose
// deadline is <= now, in deadline order, and never one whose deadline is
// later ("never early").  Ticks are whatever unit the caller uses (tcpterm:
// milliseconds).
//
//   level | slots | granularity (ticks) | span (ticks)   | at 1 ms/tick
//   ------+-------+---------------------+----------------+-------------
//     0   |  64   | 1                   | 64             | 64 ms
//     1   |  64   | 64                  | 4 096          | 4.1 s
//     2   |  64   | 4 096               | 262 144        | 4.4 min
//     3   |  64   | 262 144             | 16 777 216     | 4.7 h
//     4   |  64   | 16 777 216          | 1 073 741 824  | 12.4 d
//     5   |  64   | 1 073 741 824       | 68 719 476 736 | 2.2 y
//   beyond level 5: an overflow list, re-examined each time level 5 wraps.
//
// Placement: a timer goes to the level of the highest 6-bit digit in which
// its deadline differs from the wheel's current time, in the slot named by
// that digit.  When the current time reaches the start of that slot (all
// lower digits zero), the slot cascades: its timers are re-placed relative to
// the new time and so land on lower levels, finally on level 0 in the slot of
// their exact tick.  Hence firing is exact, with no rounding.
//
// Cost: arm O(1); cancel O(1) and idempotent; advance O(timers fired +
// timers cascaded + pending slots passed), idle stretches skipped in one step
// via next_expiry(), which is O(levels) from the pending-slot bitmaps.  A callback may arm or cancel any timer, its own included.
//
// Node size: BasicWheel<uint64_t> (`Wheel`) stores each deadline in full (a
// 24-byte node) and takes any deadline.  BasicWheel<uint32_t> (`Wheel32`,
// the flow timers) stores the low 32 bits (a 16-byte node) and rebuilds the
// deadline from the wheel's time, so every armed deadline must lie within
// 2^31 - 1 ticks of it: the stack's deadlines are 32-bit milliseconds already
// (24 days ahead at most), and an overdue timer fires at the next advance().
// A 32-bit wheel caps a later deadline at that bound (the caller re-arms).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

namespace tcpterm::timer {

template <class Stored>
class BasicWheel {
  static_assert(std::is_same_v<Stored, uint64_t> || std::is_same_v<Stored, uint32_t>);

 public:
  using Tick = uint64_t;
  // The farthest deadline ahead of now() the wheel keeps exactly.
  static constexpr Tick kMaxAhead =
      sizeof(Stored) == 8 ? std::numeric_limits<Tick>::max() : Tick(0x7fffffff);
  using Id = uint32_t;
  static constexpr unsigned kBits = 6;
  static constexpr unsigned kSlots = 1u << kBits;
  static constexpr unsigned kLevels = 6;
  static constexpr Tick kNever = std::numeric_limits<Tick>::max();

  explicit BasicWheel(uint32_t capacity, Tick now = 0) : nodes_(capacity), now_(now) {
    heads_.fill(kNil);
  }

  uint32_t capacity() const { return uint32_t(nodes_.size()); }
  Tick now() const { return now_; }
  size_t size() const { return count_; }
  bool armed(Id id) const { return nodes_[id].where != kNone; }
  Tick deadline(Id id) const { return full(nodes_[id].expires); }
  static constexpr size_t kNodeBytes = sizeof(Stored) == 8 ? 24 : 16;

  // Arms (or re-arms) timer `id` for `expires`.  A deadline at or before the
  // current time fires at the next advance() past it.
  void arm(Id id, Tick expires) {
    cancel(id);
    if constexpr (sizeof(Stored) < 8) {
      if (expires > now_ && expires - now_ > kMaxAhead) expires = now_ + kMaxAhead;
    }
    nodes_[id].expires = Stored(expires);
    Tick e = std::max(expires, now_ + 1);
    place(id, e, now_);
    ++count_;
  }

  void cancel(Id id) {
    Node& n = nodes_[id];
    if (n.where == kNone) return;
    unlink(id);
    --count_;
  }

  // Fires, in deadline order, every timer with deadline <= t; `fire(id)` is
  // called after the timer is disarmed.
  template <class F>
  void advance(Tick t, F&& fire) {
    while (now_ < t) {
      // Skip idle time: nothing fires or cascades before the earliest
      // pending slot start, so the clock may jump to just before it.
      unsigned d0 = unsigned(now_ & (kSlots - 1));
      if (d0 == kSlots - 1 || !(pending_[0] >> (d0 + 1))) {
        Tick ne = next_expiry();
        if (ne > t) {
          now_ = t;
          break;
        }
        if (ne - 1 > now_) now_ = ne - 1;
      }
      Tick block_end = now_ | (kSlots - 1);
      Tick stop = std::min(t, block_end);
      // Level-0 slots for ticks in (now_, stop].
      for (;;) {
        unsigned lo = unsigned(now_ & (kSlots - 1)) + 1;
        if (lo >= kSlots) break;
        unsigned hi = unsigned(stop & (kSlots - 1));
        if (hi < lo) break;
        uint64_t mask = (hi == 63 ? ~0ull : ((1ull << (hi + 1)) - 1)) & ~((1ull << lo) - 1);
        uint64_t m = pending_[0] & mask;
        if (!m) break;
        unsigned s = unsigned(std::countr_zero(m));
        now_ = (now_ & ~Tick(kSlots - 1)) | s;
        fire_slot(s, fire);
      }
      now_ = stop;
      if (now_ == t) break;
      // Cross into the next level-0 rotation: cascade, then fire its tick 0.
      now_ = stop + 1;
      cascade();
      fire_slot(unsigned(now_ & (kSlots - 1)), fire);
    }
  }

  // A lower bound of the earliest deadline (exact when it sits on level 0),
  // kNever when nothing is armed.
  Tick next_expiry() const {
    if (count_ == 0) return kNever;
    for (unsigned l = 0; l < kLevels; l++) {
      unsigned shift = l * kBits;
      unsigned digit = unsigned((now_ >> shift) & (kSlots - 1));
      uint64_t above = digit == 63 ? 0 : pending_[l] & (~0ull << (digit + 1));
      if (l == 0 && digit == 63) above = 0;
      if (above) {
        unsigned s = unsigned(std::countr_zero(above));
        Tick base = (now_ >> (shift + kBits)) << (shift + kBits);
        return base | (Tick(s) << shift);
      }
    }
    // Only the overflow list: the next wrap of the top level.
    unsigned top = kLevels * kBits;
    return ((now_ >> top) + 1) << top;
  }

  // Timers per level (index kLevels: overflow), for `show timers`.  O(1):
  // kept up to date by place() and unlink().
  std::array<size_t, kLevels + 1> occupancy() const { return per_level_; }

  // Debug check: lists, bitmaps and placements are consistent.  O(capacity).
  bool check_invariants() const {
    size_t seen = 0;
    std::array<size_t, kLevels + 1> counted{};
    for (unsigned w = 0; w < kLevels * kSlots + 1; w++) {
      Id prev = kNil;
      for (Id id = heads_[w]; id != kNil; id = nodes_[id].next) {
        const Node& n = nodes_[id];
        if (n.where != w || n.prev != prev) return false;
        Tick e = std::max(full(n.expires), now_ + 1);
        if (w != kOverflow) {
          unsigned l = w / kSlots, s = w % kSlots;
          if (((e >> (l * kBits)) & (kSlots - 1)) != s) return false;
          if (l + 1 < kLevels && (e >> ((l + 1) * kBits)) != (now_ >> ((l + 1) * kBits)))
            return false;
          if (!(pending_[l] >> s & 1)) return false;
        }
        prev = id;
        ++seen;
        counted[w == kOverflow ? kLevels : w / kSlots]++;
      }
      if (w != kOverflow && heads_[w] == kNil && (pending_[w / kSlots] >> (w % kSlots) & 1))
        return false;
    }
    return seen == count_ && counted == per_level_;
  }

 private:
  static constexpr Id kNil = std::numeric_limits<Id>::max();
  static constexpr uint16_t kNone = 0xffff;
  static constexpr uint16_t kOverflow = kLevels * kSlots;

  struct Node {
    Id next = kNil, prev = kNil;
    Stored expires = 0;
    uint16_t where = kNone;  // level * 64 + slot, kOverflow, or kNone
  };
  static_assert(sizeof(Node) == kNodeBytes);

  // The deadline a node stores, in full: a 32-bit one is within 2^31 ticks
  // of now_ (either side: overdue timers wait for the next advance()).
  Tick full(Stored s) const {
    if constexpr (sizeof(Stored) == 8) return s;
    else return now_ + Tick(int64_t(int32_t(uint32_t(s) - uint32_t(now_))));
  }

  void place(Id id, Tick e, Tick base) {
    unsigned where;
    if (e == base) {
      where = unsigned(base & (kSlots - 1));
    } else {
      unsigned l = unsigned(63 - std::countl_zero(e ^ base)) / kBits;
      where = l >= kLevels ? kOverflow
                           : l * kSlots + unsigned((e >> (l * kBits)) & (kSlots - 1));
    }
    Node& n = nodes_[id];
    n.where = uint16_t(where);
    n.prev = kNil;
    n.next = heads_[where];
    if (n.next != kNil) nodes_[n.next].prev = id;
    heads_[where] = id;
    per_level_[where == kOverflow ? kLevels : where / kSlots]++;
    if (where != kOverflow) pending_[where / kSlots] |= 1ull << (where % kSlots);
  }

  void unlink(Id id) {
    Node& n = nodes_[id];
    per_level_[n.where == kOverflow ? kLevels : n.where / kSlots]--;
    if (n.prev != kNil) nodes_[n.prev].next = n.next;
    else heads_[n.where] = n.next;
    if (n.next != kNil) nodes_[n.next].prev = n.prev;
    if (heads_[n.where] == kNil && n.where != kOverflow)
      pending_[n.where / kSlots] &= ~(1ull << (n.where % kSlots));
    n.where = kNone;
    n.next = n.prev = kNil;
  }

  template <class F>
  void fire_slot(unsigned s, F& fire) {
    while (heads_[s] != kNil) {
      Id id = heads_[s];
      unlink(id);
      --count_;
      fire(id);
    }
  }

  // now_ has just reached a multiple of 64: move down every slot whose start
  // is now_ (levels 1.. while the lower digits are all zero).
  void cascade() {
    for (unsigned l = 1; l < kLevels; l++) {
      unsigned s = unsigned((now_ >> (l * kBits)) & (kSlots - 1));
      move_all(l * kSlots + s);
      if (s != 0) return;
    }
    move_all(kOverflow);
  }

  // Detaches the whole list first: overflow timers may land in it again.
  void move_all(unsigned where) {
    Id id = heads_[where];
    heads_[where] = kNil;
    if (where != kOverflow) pending_[where / kSlots] &= ~(1ull << (where % kSlots));
    while (id != kNil) {
      Id next = nodes_[id].next;
      per_level_[where == kOverflow ? kLevels : where / kSlots]--;
      place(id, std::max(full(nodes_[id].expires), now_), now_);
      id = next;
    }
  }

  std::vector<Node> nodes_;
  std::array<Id, kLevels * kSlots + 1> heads_{};
  std::array<uint64_t, kLevels> pending_{};
  std::array<size_t, kLevels + 1> per_level_{};
  Tick now_ = 0;
  size_t count_ = 0;
};

using Wheel = BasicWheel<uint64_t>;
using Wheel32 = BasicWheel<uint32_t>;

}  // namespace tcpterm::timer
