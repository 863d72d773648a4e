// lib/flow: the flow table against std::unordered_map, the slot pool, and
// the TIME-WAIT FIFO's timing (N-1 / N), restart, kill and eviction.
#include <sys/mman.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <random>
#include <unordered_map>
#include <vector>

#include "flow/key.h"
#include "flow/pool.h"
#include "flow/table.h"
#include "flow/time_wait.h"

using namespace tcpterm::flow;
using tcpterm::tcp::Seq;
using tcpterm::tcp::TwState;

namespace {
struct KeyHash {
  size_t operator()(const FlowKey4& k) const { return hash_key(k); }
};
FlowKey4 random_key(std::mt19937& rng, uint32_t space) {
  uint32_t r = rng() % space;
  return FlowKey4{0xC6120002, 0xC6120000 | (r >> 16), 80, uint16_t(1024 + (r & 0xffff) % 60000)};
}
}  // namespace

TEST_CASE("flow table: randomised against std::unordered_map", "[flow][random]") {
  const uint32_t kCap = 5000;
  FlowTable table(kCap);
  SlotPool<FlowKey4> keys(kCap);  // refs index this pool, as TCB slots do
  std::unordered_map<FlowKey4, uint32_t, KeyHash> model;
  std::mt19937 rng(99);
  auto eq_for = [&](const FlowKey4& k) { return [&keys, k](uint32_t ref) { return keys[ref] == k; }; };
  for (int step = 0; step < 200000; step++) {
    FlowKey4 k = random_key(rng, 20000);
    uint32_t h = hash_key(k);
    uint32_t found = table.find(h, eq_for(k));
    auto it = model.find(k);
    REQUIRE((found == FlowTable::kNotFound) == (it == model.end()));
    if (it != model.end()) REQUIRE(found == it->second);
    if (rng() % 2) {
      if (it == model.end()) {
        uint32_t ref = keys.alloc();
        if (ref == kNoIndex) {
          CHECK(model.size() == kCap);
          CHECK_FALSE(table.insert(h, 0));
          continue;
        }
        keys[ref] = k;
        REQUIRE(table.insert(h, ref));
        model[k] = ref;
      }
    } else if (it != model.end()) {
      REQUIRE(table.erase(h, it->second));
      keys.free(it->second);
      model.erase(it);
    }
    REQUIRE(table.size() == model.size());
    if (step % 20000 == 0)
      REQUIRE(table.check_invariants([&](uint32_t ref) { return hash_key(keys[ref]); }));
  }
  REQUIRE(table.check_invariants([&](uint32_t ref) { return hash_key(keys[ref]); }));
  // Every model entry is still found; probe lengths stay short.
  for (auto& [k, ref] : model) CHECK(table.find(hash_key(k), eq_for(k)) == ref);
  CHECK(table.counters().max_probe <= 8);
}

TEST_CASE("flow table: full table refuses, burst lookup, replace in place", "[flow]") {
  FlowTable table(100);
  std::vector<FlowKey4> keys;
  for (uint32_t i = 0; i < 100; i++) {
    keys.push_back(FlowKey4{1, 2, 80, uint16_t(1000 + i)});
    REQUIRE(table.insert(hash_key(keys.back()), i));
  }
  CHECK_FALSE(table.insert(hash_key(FlowKey4{1, 2, 80, 9}), 100));
  CHECK(table.counters().insert_failures == 1);
  uint32_t hashes[8], out[8];
  for (int i = 0; i < 8; i++) hashes[i] = hash_key(keys[i * 10]);
  hashes[7] = hash_key(FlowKey4{9, 9, 9, 9});
  table.find_burst(hashes, 8, out, [&](unsigned i, uint32_t ref) {
    return i < 7 ? keys[ref] == keys[i * 10] : false;
  });
  for (int i = 0; i < 7; i++) CHECK(out[i] == uint32_t(i * 10));
  CHECK(out[7] == FlowTable::kNotFound);
  // Replace: the TCB -> TIME-WAIT record conversion keeps the slot.
  uint32_t h = hash_key(keys[5]);
  REQUIRE(table.replace(h, 5, 0x80000005));
  CHECK(table.find(h, [&](uint32_t ref) { return ref == 0x80000005; }) == 0x80000005);
  CHECK(table.size() == 100);
}

TEST_CASE("flow table: a bucket is one cache line", "[flow]") {
  STATIC_REQUIRE(sizeof(FlowTable::Bucket) == 64);
  STATIC_REQUIRE(alignof(FlowTable::Bucket) == 64);
  FlowTable t(7000);
  CHECK(t.bucket_count() == 1024);
}

TEST_CASE("lazy arrays: a huge-page array is 2 MiB-aligned, whole and zeroed; a small one is plain",
          "[flow][memory]") {
  {
    // 5 MiB and a bit: not a multiple of 2 MiB, so both ends were trimmed.
    tcpterm::tcp::LazyArray<uint64_t> a((size_t(5) << 20) / 8 + 3, tcpterm::tcp::Huge::Yes);
    CHECK(reinterpret_cast<uintptr_t>(a.data()) % (size_t(2) << 20) == 0);
    // Committed when built: the first page of every 2 MiB is resident
    // before anything is written (the worker pays the faults at start).
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    size_t resident = 0, huge_pages = 0;
    for (size_t off = 0; off < a.bytes(); off += size_t(2) << 20, huge_pages++) {
      unsigned char v = 0;
      REQUIRE(mincore(reinterpret_cast<char*>(a.data()) + off, page, &v) == 0);
      resident += v & 1;
    }
    CHECK(resident == huge_pages);
    CHECK(a[0] == 0);
    CHECK(a[a.size() - 1] == 0);
    for (size_t i = 0; i < a.size(); i += 4096 / 8) a[i] = i;  // every page writable
    a[a.size() - 1] = 7;
    size_t bad = 0;
    for (size_t i = 0; i < a.size(); i += 4096 / 8) bad += a[i] != i;
    CHECK(bad == 0);
    CHECK(a[a.size() - 1] == 7);
  }
  tcpterm::tcp::LazyArray<uint64_t> small(100, tcpterm::tcp::Huge::Yes);  // under 2 MiB: no huge page
  small[99] = 1;
  CHECK(small[0] == 0);
  CHECK(small[99] == 1);
  // The table works the same either way.
  for (bool huge : {false, true}) {
    FlowTable t(1u << 20, huge);
    for (uint32_t i = 0; i < 1000; i++) REQUIRE(t.insert(i * 2654435761u, i));
    uint32_t found = 0;
    for (uint32_t i = 0; i < 1000; i++)
      found += t.find(i * 2654435761u, [&](uint32_t ref) { return ref == i; }) == i;
    CHECK(found == 1000);
  }
}

TEST_CASE("lazy array: Huge::Commit makes every page resident before the first write (--prefault)",
          "[flow][memory]") {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  auto resident_pages = [&](const void* p, size_t bytes) {
    std::vector<unsigned char> v((bytes + page - 1) / page);
    REQUIRE(mincore(const_cast<void*>(p), bytes, v.data()) == 0);
    size_t n = 0;
    for (unsigned char c : v) n += c & 1;
    return std::pair<size_t, size_t>(n, v.size());
  };
  for (size_t n : {size_t(100), (size_t(5) << 20) / 8 + 3}) {  // under 2 MiB (4 KiB pages), and over
    tcpterm::tcp::LazyArray<uint64_t> lazy(n), committed(n, tcpterm::tcp::Huge::Commit);
    auto [lr, lt] = resident_pages(lazy.data(), lazy.bytes());
    auto [cr, ct] = resident_pages(committed.data(), committed.bytes());
    INFO("elements " << n);
    CHECK(lr == 0);   // lazy: nothing until touched
    CHECK(cr == ct);  // committed: every page
    CHECK(committed[0] == 0);
    CHECK(committed[n - 1] == 0);
    committed[n - 1] = 9;
    CHECK(committed[n - 1] == 9);
  }
  // The TIME-WAIT records, committed or not, hold the same.
  for (bool commit : {false, true}) {
    TimeWaitTable tw(100000, commit);
    auto [r, t] = resident_pages(&tw[0], tw.memory_bytes());
    CHECK((commit ? r == t : r == 0));
    FlowKey4 k{1, 2, 3, 4};
    uint32_t i = tw.add(k, tcpterm::tcp::TwState{}, 1000);
    REQUIRE(i != TimeWaitTable::kNil);
    CHECK(tw[i].key == k);
    CHECK(tw.size() == 1);
  }
}

TEST_CASE("slot pool: stable indices and generations", "[flow]") {
  SlotPool<int> p(2);
  uint32_t a = p.alloc(), b = p.alloc();
  CHECK(p.alloc() == kNoIndex);
  uint32_t g = p.generation(a);
  p.free(a);
  CHECK(p.generation(a) == g + 1);
  CHECK_FALSE(p.in_use(a));
  CHECK(p.in_use(b));
  CHECK(p.alloc() == a);
  CHECK(p.size() == 2);
}

namespace {
TwState tw(uint32_t snd, uint32_t rcv) { return TwState{Seq(snd), Seq(rcv), 0, false, false}; }
}  // namespace

TEST_CASE("TIME-WAIT: a record is 32 bytes", "[flow][time-wait]") {
  STATIC_REQUIRE(sizeof(TwRecord) == 32);
}

TEST_CASE("TIME-WAIT: records expire at exactly 2MSL, in order", "[flow][time-wait]") {
  const uint32_t two_msl = 60000;
  TimeWaitTable t(8);
  uint32_t a = t.add(FlowKey4{1, 2, 3, 4}, tw(101, 301), 1000 + two_msl);
  uint32_t b = t.add(FlowKey4{1, 2, 3, 5}, tw(7, 8), 1500 + two_msl);
  CHECK(t.size() == 2);
  std::vector<uint32_t> gone;
  auto cb = [&](uint32_t i) { gone.push_back(i); };
  CHECK(t.expire(1000 + two_msl - 1, 100, cb) == 0);
  CHECK(t.expire(1000 + two_msl, 100, cb) == 1);
  CHECK(gone == std::vector<uint32_t>{a});
  CHECK(t.expire(1500 + two_msl - 1, 100, cb) == 0);
  CHECK(t.expire(1500 + two_msl, 100, cb) == 1);
  CHECK(gone == std::vector<uint32_t>{a, b});
  CHECK(t.size() == 0);
  CHECK(t.occupied() == 0);
}

TEST_CASE("TIME-WAIT: restart moves a record behind the others", "[flow][time-wait]") {
  TimeWaitTable t(4);
  uint32_t a = t.add(FlowKey4{1, 2, 3, 4}, tw(1, 2), 100);
  uint32_t b = t.add(FlowKey4{1, 2, 3, 5}, tw(1, 2), 200);
  t.restart(a, 250);  // retransmitted FIN at t=190 with 2MSL=60
  std::vector<uint32_t> gone;
  auto cb = [&](uint32_t i) { gone.push_back(i); };
  CHECK(t.expire(199, 10, cb) == 0);  // a is not expired at its old time
  CHECK(t.expire(200, 10, cb) == 1);
  CHECK(gone == std::vector<uint32_t>{b});
  CHECK(t.expire(249, 10, cb) == 0);
  CHECK(t.expire(250, 10, cb) == 1);
  CHECK(gone == std::vector<uint32_t>{b, a});
}

TEST_CASE("TIME-WAIT: killed records are reclaimed silently; eviction takes the oldest",
          "[flow][time-wait]") {
  TimeWaitTable t(3);
  uint32_t a = t.add(FlowKey4{1, 2, 3, 4}, tw(1, 2), 100);
  uint32_t b = t.add(FlowKey4{1, 2, 3, 5}, tw(1, 2), 110);
  uint32_t c = t.add(FlowKey4{1, 2, 3, 6}, tw(1, 2), 120);
  CHECK(t.full());
  CHECK(t.add(FlowKey4{9, 9, 9, 9}, tw(1, 2), 130) == TimeWaitTable::kNil);
  t.kill(a);
  CHECK(t.size() == 2);
  std::vector<uint32_t> evicted;
  REQUIRE(t.evict_oldest([&](uint32_t i) { evicted.push_back(i); }));
  CHECK(evicted == std::vector<uint32_t>{b});  // a was dead: skipped and freed
  CHECK(t.occupied() == 1);
  std::vector<uint32_t> gone;
  CHECK(t.expire(1000, 10, [&](uint32_t i) { gone.push_back(i); }) == 1);
  CHECK(gone == std::vector<uint32_t>{c});
  CHECK(t.occupied() == 0);
}

TEST_CASE("TIME-WAIT: expiry works across the 32-bit clock wrap", "[flow][time-wait]") {
  TimeWaitTable t(2);
  uint32_t start = 0xffffff00u;
  t.add(FlowKey4{1, 2, 3, 4}, tw(1, 2), start + 60000);  // wraps
  int n = 0;
  CHECK(t.expire(start + 59999, 10, [&](uint32_t) { n++; }) == 0);
  CHECK(t.expire(start + 60000, 10, [&](uint32_t) { n++; }) == 1);
}

TEST_CASE("flow table: a chain longer than 65535 entries saturates the overflow count, lookups still work",
          "[flow][security]") {
  // On the old code the 16-bit overflow count wrapped to 0 at 65536 and the
  // entries past it became unreachable.
  const uint32_t n = 70000;
  FlowTable table(n + 1000);
  uint32_t mask = table.bucket_count() - 1;
  std::vector<uint32_t> hashes(n);
  for (uint32_t i = 0; i < n; i++) {
    hashes[i] = (i << 16 & ~mask) | 5;  // every entry homed at bucket 5, tags differ
    REQUIRE(table.insert(hashes[i], i));
  }
  for (uint32_t i = 0; i < n; i += 997) CHECK(table.find(hashes[i], [&](uint32_t r) { return r == i; }) == i);
  CHECK(table.find(hashes[n - 1], [&](uint32_t r) { return r == n - 1; }) == n - 1);
  for (uint32_t i = 0; i < n; i++) REQUIRE(table.erase(hashes[i], i));
  CHECK(table.size() == 0);
  REQUIRE(table.check_invariants([&](uint32_t ref) { return hashes[ref]; }));
}

TEST_CASE("flow key hash: the seed changes every bucket and tag", "[flow][security]") {
  FlowKey4 k{0xC6120002, 0xC6130001, 80, 40000};
  int same = 0;
  for (uint64_t seed = 1; seed < 200; seed++) same += hash_key(k, seed * 0x9E3779B97F4A7C15ull) == hash_key(k, 0x1234);
  CHECK(same <= 1);
}
