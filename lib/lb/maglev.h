// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, section 3.4).
//
// Each backend has a preference list, a permutation of the M table slots
// given by an offset and a skip drawn from two hashes of its identity; the
// table is filled by letting backends take turns claiming their next
// preferred free slot.  With M prime, every skip in [1, M-1] walks all
// slots.  Removing a backend only reassigns its own slots (and a few
// others, the paper's "disruption"); adding one takes ~M/(N+1) slots.
//
// Weights: a backend of weight w takes a turn in round n when
// floor((n+1)*w/wmax) > floor(n*w/wmax), so its share of the table is
// w / sum(w) (the scheme Envoy and Katran use).
//
// The identity hash is seeded by nothing secret: every lcore, and every
// appliance behind the same ECMP router, builds the same table from the
// same backends, so a client lands on the same backend wherever its
// packets go.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace tcpterm::lb {

class Maglev {
 public:
  static constexpr uint32_t kDefaultSize = 65537;  // prime
  struct Entry {
    uint64_t id = 0;      // stable identity (address and port)
    uint32_t weight = 1;  // 0: not in the table
  };
  explicit Maglev(uint32_t size = kDefaultSize) : size_(size) {}
  // Rebuilds the table at once; entries keep their index (lookup returns it).
  void build(std::span<const Entry> entries) {
    begin(entries);
    step(UINT64_MAX);
  }
  // The same in steps, for a worker that must keep polling: filling a table
  // takes about M ln M probes (1-2 ms at 65 537 slots, ~20 ms at 655 373,
  // seconds at 16 M).  begin() takes the entries; each step() clears or
  // probes at most `budget` slots and returns true once the new table is
  // complete and in use.  Until then the previous table stays in use
  // (lookup() and table() read it).  With no entry of weight, the table is
  // empty at once.
  void begin(std::span<const Entry> entries);
  bool step(uint64_t budget);
  bool building() const { return building_; }
  // The entry index for a flow hash; -1 when no entry has weight.
  int lookup(uint64_t hash) const { return n_ ? table_[hash % size_] : -1; }
  // The entry at a slot, and the next slot of the ring held by another
  // entry than `not_this` (retries go round the ring); -1 if none.
  uint32_t slot_of(uint64_t hash) const { return uint32_t(hash % size_); }
  int next_other(uint32_t slot, int not_this, uint32_t& at) const;
  uint32_t size() const { return size_; }
  std::span<const int32_t> table() const { return {table_.get(), n_}; }
  static bool is_prime(uint32_t n);

 private:
  struct Pref {
    uint32_t skip;
    uint32_t pos;  // (offset + skip * j) mod M for the backend's next j, from the offset on
    uint32_t weight;
    int idx;
  };
  uint32_t size_;
  std::unique_ptr<int32_t[]> table_;  // in use: n_ slots (0 or size_)
  size_t n_ = 0;
  size_t entries_ = 0;  // distinct entries in the table in use
  // The build in progress.
  bool building_ = false;
  std::unique_ptr<int32_t[]> next_;
  std::vector<Pref> prefs_;
  uint32_t cleared_ = 0, filled_ = 0, wmax_ = 0;
  uint64_t round_ = 0;
  size_t turn_ = 0;  // the backend whose turn it is in round_
};

// The flow hash Maglev looks up: client address, and port unless hash=src.
uint64_t flow_hash(uint32_t addr, uint16_t port, bool with_port);

}  // namespace tcpterm::lb
