// lib/timer: exact firing at the boundary, cancel, re-arm from a callback,
// timeouts beyond the span, and a randomised run against std::multimap;
// each for both node sizes (64-bit and 32-bit stored deadlines).
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "timer/wheel.h"

using tcpterm::timer::Wheel;
using tcpterm::timer::Wheel32;

TEMPLATE_TEST_CASE("wheel: nothing at N-1, exactly once at N, at every level", "[timer]", Wheel, Wheel32) {
  for (Wheel::Tick delay : {1ull, 2ull, 63ull, 64ull, 65ull, 4095ull, 4096ull, 4097ull, 60000ull,
                            262144ull, 300001ull, 16777216ull + 5}) {
    for (Wheel::Tick start : {0ull, 17ull, 63ull, 4095ull, 123456789ull}) {
      TestType w(4, start);
      w.arm(1, start + delay);
      int fired = 0;
      auto f = [&](Wheel::Id id) { CHECK(id == 1); fired++; };
      w.advance(start + delay - 1, f);
      INFO("delay " << delay << " start " << start);
      CHECK(fired == 0);
      CHECK(w.armed(1));
      CHECK(w.check_invariants());
      w.advance(start + delay, f);
      CHECK(fired == 1);
      CHECK_FALSE(w.armed(1));
      w.advance(start + delay + 100000, f);
      CHECK(fired == 1);
    }
  }
}

TEMPLATE_TEST_CASE("wheel: stepping one tick at a time fires at N", "[timer]", Wheel, Wheel32) {
  TestType w(2, 0);
  w.arm(0, 5000);
  Wheel::Tick when = 0;
  for (Wheel::Tick t = 1; t <= 6000; t++) w.advance(t, [&](Wheel::Id) { when = t; });
  CHECK(when == 5000);
}

TEMPLATE_TEST_CASE("wheel: cancel is O(1) and idempotent; re-arm moves the timer", "[timer]", Wheel, Wheel32) {
  TestType w(3, 100);
  w.arm(0, 200);
  w.arm(1, 300);
  w.cancel(0);
  w.cancel(0);
  CHECK(w.size() == 1);
  w.arm(1, 150);  // re-arm earlier
  CHECK(w.size() == 1);
  std::vector<Wheel::Id> fired;
  w.advance(1000, [&](Wheel::Id id) { fired.push_back(id); });
  CHECK(fired == std::vector<Wheel::Id>{1});
  CHECK(w.size() == 0);
  CHECK(w.check_invariants());
}

TEMPLATE_TEST_CASE("wheel: a deadline in the past fires at the next advance, never early", "[timer]", Wheel, Wheel32) {
  TestType w(1, 1000);
  w.arm(0, 10);
  int fired = 0;
  w.advance(1000, [&](Wheel::Id) { fired++; });
  CHECK(fired == 0);
  w.advance(1001, [&](Wheel::Id) { fired++; });
  CHECK(fired == 1);
}

TEST_CASE("wheel: beyond the span (overflow list) still fires exactly", "[timer]") {
  Wheel w(1, 5);
  Wheel::Tick far = (1ull << 37) + 12345;
  w.arm(0, far);
  CHECK(w.occupancy()[Wheel::kLevels] == 1);
  int fired = 0;
  w.advance(far - 1, [&](Wheel::Id) { fired++; });
  CHECK(fired == 0);
  CHECK(w.check_invariants());
  w.advance(far, [&](Wheel::Id) { fired++; });
  CHECK(fired == 1);
}

TEMPLATE_TEST_CASE("wheel: callbacks may re-arm themselves and cancel others", "[timer]", Wheel, Wheel32) {
  TestType w(3, 0);
  w.arm(0, 10);
  w.arm(1, 10);
  w.arm(2, 20);
  std::vector<std::pair<Wheel::Id, Wheel::Tick>> log;
  int rearm = 0;
  w.advance(100, [&](Wheel::Id id) {
    log.push_back({id, w.now()});
    if (id == 0 || id == 1) w.cancel(1 - id);  // the first of 0/1 cancels the other
    if (id == 2 && rearm++ < 3) w.arm(2, w.now() + 7);
  });
  REQUIRE(log.size() == 5);
  CHECK(log[0].second == 10);
  CHECK(log[1] == std::pair<Wheel::Id, Wheel::Tick>{2, 20});
  CHECK(log[2] == std::pair<Wheel::Id, Wheel::Tick>{2, 27});
  CHECK(log[4] == std::pair<Wheel::Id, Wheel::Tick>{2, 41});
}

TEMPLATE_TEST_CASE("wheel: next_expiry is a lower bound, exact on level 0", "[timer]", Wheel, Wheel32) {
  TestType w(4, 0);
  CHECK(w.next_expiry() == TestType::kNever);
  w.arm(0, 50);
  CHECK(w.next_expiry() == 50);
  w.arm(1, 10);
  CHECK(w.next_expiry() == 10);
  w.cancel(1);
  w.cancel(0);
  w.arm(2, 100000);
  Wheel::Tick lb = w.next_expiry();
  CHECK(lb <= 100000);
  CHECK(lb > 0);
}

TEMPLATE_TEST_CASE("wheel: randomised against std::multimap", "[timer][random]", Wheel, Wheel32) {
  const uint32_t kIds = 512;
  std::mt19937_64 rng(42);
  TestType w(kIds, 1000);
  std::map<Wheel::Id, Wheel::Tick> model;  // id -> deadline
  Wheel::Tick now = 1000;
  for (int step = 0; step < 40000; step++) {
    unsigned op = unsigned(rng() % 10);
    Wheel::Id id = Wheel::Id(rng() % kIds);
    if (op < 5) {
      // Deadlines spread over every level, sometimes in the past.
      static const Wheel::Tick spans[] = {3, 70, 5000, 300000, 20000000};
      Wheel::Tick d = now + rng() % spans[rng() % 5];
      if (rng() % 20 == 0) d = now - rng() % 50;
      w.arm(id, d);
      model[id] = d;
    } else if (op < 7) {
      w.cancel(id);
      model.erase(id);
    } else {
      Wheel::Tick to = now + (rng() % 4 == 0 ? rng() % 2000000 : rng() % 300);
      std::multimap<Wheel::Tick, Wheel::Id> due;
      for (auto [i, d] : model)
        if (std::max(d, now + 1) <= to) due.insert({std::max(d, now + 1), i});
      std::vector<std::pair<Wheel::Tick, Wheel::Id>> fired;
      w.advance(to, [&](Wheel::Id i) { fired.push_back({w.now(), i}); });
      REQUIRE(fired.size() == due.size());
      // In deadline order, each at its own tick, and exactly the due ones.
      std::set<Wheel::Id> want, got;
      for (auto [d, i] : due) want.insert(i);
      Wheel::Tick prev = 0;
      for (auto [t, i] : fired) {
        got.insert(i);
        CHECK(t >= prev);
        CHECK(t == std::max(model[i], now + 1));
        prev = t;
      }
      CHECK(got == want);
      for (auto i : want) model.erase(i);
      now = to;
    }
    if (step % 500 == 0) REQUIRE(w.check_invariants());
    REQUIRE(w.size() == model.size());
  }
}

TEST_CASE("wheel32: 16-byte nodes; deadlines rebuilt across the 32-bit wrap", "[timer]") {
  static_assert(Wheel32::kNodeBytes == 16 && Wheel::kNodeBytes == 24);
  // The wheel's time crosses 2^32 while timers are armed on every side of it.
  Wheel32::Tick start = (1ull << 32) - 3000;
  Wheel32 w(4, start);
  w.arm(0, start + 1000);             // before the wrap
  w.arm(1, start + 3000);             // exactly at 2^32
  w.arm(2, start + 70000);            // after it, on level 2
  w.arm(3, start - 5);                // overdue: the next advance
  CHECK(w.deadline(1) == (1ull << 32));
  CHECK(w.deadline(2) == start + 70000);
  std::vector<std::pair<Wheel32::Id, Wheel32::Tick>> log;
  for (Wheel32::Tick t = start + 1; t <= start + 80000; t += 7)
    w.advance(t, [&](Wheel32::Id id) { log.push_back({id, t}); });
  REQUIRE(log.size() == 4);
  CHECK(log[0].first == 3);
  CHECK(log[1] == std::pair<Wheel32::Id, Wheel32::Tick>{0, start + 1 + 7 * ((1000 + 6) / 7)});
  CHECK(log[2].first == 1);
  CHECK(log[2].second >= (1ull << 32));
  CHECK(log[3].first == 2);
  CHECK(log[3].second >= start + 70000);
  CHECK(log[3].second < start + 70007);
  CHECK(w.check_invariants());
}

TEST_CASE("wheel32: a deadline past 2^31 - 1 ticks is capped, never lost", "[timer]") {
  Wheel32 w(1, 100);
  w.arm(0, 100 + (1ull << 40));
  CHECK(w.deadline(0) == 100 + Wheel32::kMaxAhead);
  int fired = 0;
  w.advance(100 + Wheel32::kMaxAhead - 1, [&](Wheel32::Id) { fired++; });
  CHECK(fired == 0);
  w.advance(100 + Wheel32::kMaxAhead, [&](Wheel32::Id) { fired++; });
  CHECK(fired == 1);
}
