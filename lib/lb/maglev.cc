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

void Maglev::build(std::span<const Entry> entries) {
  const uint32_t m = size_;
  struct Pref {
    uint32_t offset, skip, next;
    uint32_t weight;
    int idx;
  };
  std::vector<Pref> p;
  uint32_t wmax = 0;
  for (size_t i = 0; i < entries.size(); i++) {
    if (!entries[i].weight) continue;
    uint64_t h1 = mix(entries[i].id), h2 = mix(entries[i].id ^ 0xa5a5a5a5a5a5a5a5ull);
    p.push_back({uint32_t(h1 % m), uint32_t(h2 % (m - 1)) + 1, 0, entries[i].weight, int(i)});
    wmax = std::max(wmax, entries[i].weight);
  }
  table_.assign(p.empty() ? 0 : m, -1);
  if (p.empty()) return;
  uint32_t filled = 0;
  for (uint64_t round = 0; filled < m; round++) {
    for (Pref& b : p) {
      // Weighted turns: this round counts for b when its scaled count steps.
      if ((round + 1) * b.weight / wmax == round * b.weight / wmax) continue;
      uint32_t c;
      do {
        c = uint32_t((b.offset + uint64_t(b.skip) * b.next) % m);
        b.next++;
      } while (table_[c] >= 0);
      table_[c] = b.idx;
      if (++filled == m) break;
    }
  }
}

int Maglev::next_other(uint32_t slot, int not_this, uint32_t& at) const {
  if (table_.empty()) return -1;
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
