// lib/dp/neighbor.h: next hops held by flows, the aging neighbour cache,
// routes.  Pure: no EAL.
#include <catch2/catch.hpp>

#include "dp/neighbor.h"

using namespace tcpterm;
using namespace tcpterm::dp;

namespace {
wire::Mac mac(uint8_t i) { return wire::Mac{2, 0, 0, 0, 0, i}; }
}  // namespace

TEST_CASE("next hops: one router MAC is one entry however many flows hold it", "[dp][nexthop]") {
  NextHops t(4);
  uint32_t a = t.find_or_add(0, mac(1), 10);
  for (int i = 0; i < 10000; i++) t.acquire(t.find_or_add(0, mac(1), 10));
  CHECK(t.find_or_add(0, mac(1), 11) == a);
  CHECK(t.refs_total() == 10000);
  CHECK(t.in_use() == 1);
}

TEST_CASE("next hops: a referenced entry is never evicted; a full set says so", "[dp][nexthop]") {
  NextHops t(1);  // one set of kWays
  std::vector<uint32_t> held;
  for (uint8_t i = 0; i < NextHops::kWays; i++) {
    uint32_t h = t.find_or_add(0, mac(i), i);
    REQUIRE(h != kNoHop);
    t.acquire(h);
    held.push_back(h);
  }
  CHECK(t.find_or_add(0, mac(99), 100) == kNoHop);  // all ways referenced
  CHECK(t.full() == 1);
  t.release(held[2]);
  uint32_t n = t.find_or_add(0, mac(99), 101);
  CHECK(n == held[2]);  // the unreferenced way is reused
  for (uint8_t i = 0; i < NextHops::kWays; i++)
    if (i != 2) CHECK(t[held[i]].mac == mac(i));
}

TEST_CASE("neighbour cache: set-associative, aging, ARP rate-limited per address", "[dp][neighbor]") {
  NeighborCache c(2);
  bool ask = false;
  CHECK(c.lookup(0xC6120005, 1000, ask) == nullptr);
  CHECK(ask);  // a miss asks once
  CHECK(c.lookup(0xC6120005, 1500, ask) == nullptr);
  CHECK_FALSE(ask);  // not again within a second
  CHECK(c.lookup(0xC6120005, 2000, ask) == nullptr);
  CHECK(ask);
  c.learn(0xC6120005, 0, mac(5), 2100);
  const auto* e = c.lookup(0xC6120005, 2200, ask);
  REQUIRE(e);
  CHECK(e->mac == mac(5));
  CHECK_FALSE(ask);
  // Stale: still used, refreshed by a request.
  e = c.lookup(0xC6120005, 2100 + NeighborCache::kStaleMs, ask);
  CHECK(e);
  CHECK(ask);
  // Expired: gone.
  CHECK(c.lookup(0xC6120005, 2100 + NeighborCache::kExpireMs, ask) == nullptr);
  // Eight addresses in two sets of four ways: all held at once.
  for (uint32_t i = 0; i < 8; i++) c.learn(0xC6120100 + i * 2, 0, mac(uint8_t(i)), 5000);
  CHECK(c.resolved() >= 6);  // hashing may put five in one set: at most one or two evicted
}

TEST_CASE("routes: longest prefix first, on-link from the addresses", "[dp][route]") {
  Routes r;
  r.add(Route{0xC6120000, 24, 0, 0});           // 198.18.0.0/24 on-link
  r.add(Route{0, 0, 0xC6120001, 0});            // default via 198.18.0.1
  r.add(Route{0xC6130000, 16, 0xC61200FE, 0});  // 198.19/16 via .254
  CHECK(r.on_link(0, 0xC6120009));
  CHECK_FALSE(r.on_link(0, 0xC6130009));
  CHECK(r.lookup(0xC6130009)->gateway == 0xC61200FE);
  CHECK(r.lookup(0x08080808)->gateway == 0xC6120001);
  CHECK(r.lookup(0xC6120009)->gateway == 0);
}

TEST_CASE("wire: martian source addresses are dropped with a reason", "[wire][martian]") {
  for (uint32_t src : {0x00000000u, 0x7f000001u, 0xe0000001u, 0xffffffffu, 0xf0000001u}) CHECK(wire::martian_source(src));
  for (uint32_t src : {0xC6120001u, 0x0a000001u, 0x08080808u}) CHECK_FALSE(wire::martian_source(src));
  // A full IPv4 header from 127.0.0.1: parse_ipv4 says Ipv4BadAddr (old code: accepted).
  uint8_t h[20] = {0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 198, 18, 0, 2};
  wire::Ipv4Repr ip;
  CHECK(wire::parse_ipv4(std::span<const uint8_t>(h, 20), ip, true) == wire::Drop::Ipv4BadAddr);
}

// ---- admission control's trigger (dp/admission.h) ----
#include "dp/admission.h"

TEST_CASE("backlog: kOverloadPolls full polls in a row start it, as many light ones end it", "[dp][admission]") {
  using tcpterm::dp::Backlog;
  const int k = int(Backlog::kOverloadPolls);
  Backlog b(32);
  for (int i = 0; i < k - 1; i++) CHECK_FALSE(b.note_poll(32));
  CHECK_FALSE(b.on());
  CHECK(b.note_poll(32));  // the k-th: it starts (reported once)
  CHECK(b.on());
  CHECK_FALSE(b.note_poll(32));
  CHECK_FALSE(b.note_poll(20));  // more than half full: still backlogged
  CHECK(b.on());
  // One light poll does not end it (a dip inside an overload); k in a row do.
  b.note_poll(15);
  CHECK(b.on());
  b.note_poll(32);  // the light streak starts over
  for (int i = 0; i < k - 1; i++) b.note_poll(3);
  CHECK(b.on());
  b.note_poll(0);
  CHECK_FALSE(b.on());
  // A full streak broken by a light poll starts again from zero: a stall's
  // backlog (a ring drained in fewer polls than k) never turns it on.
  for (int i = 0; i < k - 1; i++) b.note_poll(32);
  b.note_poll(10);
  for (int i = 0; i < k - 1; i++) b.note_poll(32);
  CHECK_FALSE(b.on());
  // SYNs are refused only while backlogged, and then only past the credit
  // that finished flows earned.
  CHECK_FALSE(b.refuse_syn());  // not backlogged
  b.note_poll(32);
  REQUIRE(b.on());
  // A bulk transfer's backlog: the saved credit lets the next clients in.
  for (unsigned i = 0; i < tcpterm::dp::Backlog::kMaxCredit; i++) CHECK_FALSE(b.refuse_syn());
  CHECK(b.refuse_syn());  // a flood, which finishes nothing: refused
  CHECK(b.refuse_syn());
  // Overload: new connections are admitted as fast as old ones finish.
  b.completed(3);
  CHECK_FALSE(b.refuse_syn());
  CHECK_FALSE(b.refuse_syn());
  CHECK_FALSE(b.refuse_syn());
  CHECK(b.refuse_syn());
  // Credit saves up to a bound while not backlogged.
  for (int i = 0; i < k; i++) b.note_poll(0);
  CHECK_FALSE(b.on());
  b.completed(1000000);
  CHECK(b.credit() == tcpterm::dp::Backlog::kMaxCredit);
  b.completed(~0ull);  // a cleared counter's wrap
  CHECK(b.credit() == tcpterm::dp::Backlog::kMaxCredit);
}

// ---- the lcore clock (dp/clock.h) ----
#include <random>

#include "dp/clock.h"

TEST_CASE("clock: milliseconds by a multiply are never ahead, at most one behind just after a boundary", "[dp][clock]") {
  std::mt19937_64 rng(3);
  for (uint64_t per_ms : {1ull, 1000ull, 2600000ull, 2599999ull, 3000000000ull, 123457ull}) {
    tcpterm::dp::MsClock c(per_ms);
    for (int i = 0; i < 20000; i++) {
      uint64_t tsc = i < 10 ? per_ms * uint64_t(i) : rng() >> (rng() % 40);
      uint64_t exact = tsc / per_ms, got = c.ms(tsc);
      INFO("per_ms " << per_ms << " tsc " << tsc);
      REQUIRE(got <= exact);
      REQUIRE(got + 1 >= exact);
      // Behind only just after a boundary: by less than tsc / 2^64 of a millisecond.
      if (got != exact) REQUIRE(double(tsc % per_ms) / double(per_ms) <= double(tsc) / 0x1p64 + 1e-9);
    }
    // Monotonic across a boundary.
    uint64_t b = per_ms * 1000003ull;
    CHECK(c.ms(b - 1) <= c.ms(b));
    CHECK(c.ms(b) <= c.ms(b + 1));
  }
}
