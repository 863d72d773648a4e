#include "lb/maglev.h"

#include <algorithm>

namespace tcpterm::lb {

namespace {
uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
}  // namespace

uint64_t flow_hash(uint32_t addr, uint16_t port, bool with_port) {
  return mix((uint64_t(addr) << 16 | (with_port ? port : 0)) ^ 0x6d61676c6576ull);
}

bool Maglev::is_prime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; uint64_t(d) * d <= n; d++)
    if (n % d == 0) return false;
  return true;
}

void Maglev::begin(std::span<const Entry> entries) {
  const uint32_t m = size_;
  prefs_.clear();
  wmax_ = 0;
  for (size_t i = 0; i < entries.size(); i++) {
    if (!entries[i].weight) continue;
    uint64_t h1 = mix(entries[i].id), h2 = mix(entries[i].id ^ 0xa5a5a5a5a5a5a5a5ull);
    prefs_.push_back({uint32_t(h2 % (m - 1)) + 1, uint32_t(h1 % m), entries[i].weight, int(i)});
    wmax_ = std::max(wmax_, entries[i].weight);
  }
  if (prefs_.empty()) {  // nothing to place: the table is empty now
    table_.reset();
    n_ = 0;
    entries_ = 0;
    next_.reset();
    building_ = false;
    return;
  }
  if (!next_) next_.reset(new int32_t[m]);  // cleared in steps (a 16 M table is 64 MB)
  cleared_ = filled_ = 0;
  round_ = 0;
  turn_ = 0;
  building_ = true;
}

bool Maglev::step(uint64_t budget) {
  if (!building_) return true;
  const uint32_t m = size_;
  int32_t* t = next_.get();
  while (cleared_ < m) {
    if (!budget) return false;
    uint32_t k = uint32_t(std::min<uint64_t>(budget, m - cleared_));
    std::fill(t + cleared_, t + cleared_ + k, -1);
    cleared_ += k;
    budget -= k;
  }
  for (; filled_ < m; round_++, turn_ = 0) {
    for (; turn_ < prefs_.size(); turn_++) {
      Pref& b = prefs_[turn_];
      // Weighted turns: this round counts for b when its scaled count steps.
      if ((round_ + 1) * b.weight / wmax_ == round_ * b.weight / wmax_) continue;
      // The backend's permutation, (offset + skip * j) mod M: one addition
      // a probe (skip < M, so one subtraction wraps it).  A step may end
      // between two probes (the last free slots take up to ~M probes to
      // find): the next one resumes this backend's turn at b.pos.
      uint32_t c;
      for (;;) {
        if (!budget) return false;
        budget--;
        c = b.pos;
        b.pos += b.skip;
        if (b.pos >= m) b.pos -= m;
        if (t[c] < 0) break;
      }
      t[c] = b.idx;
      if (++filled_ == m) break;
    }
    if (filled_ == m) break;
  }
  table_.swap(next_);
  n_ = m;
  entries_ = prefs_.size();
  building_ = false;
  return true;
}

int Maglev::next_other(uint32_t slot, int not_this, uint32_t& at) const {
  if (!n_) return -1;
  if (entries_ == 1) {  // one entry holds every slot: no need to go round the ring to learn it
    uint32_t s = (slot + 1) % size_;
    if (table_[s] == not_this) return -1;
    at = s;
    return table_[s];
  }
  for (uint32_t i = 1; i < size_; i++) {
    uint32_t s = (slot + i) % size_;
    if (table_[s] != not_this) {
      at = s;
      return table_[s];
    }
  }
  return -1;
}

}  // namespace tcpterm::lb
