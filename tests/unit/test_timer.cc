// lib/timer: exact firing at the boundary, cancel, re-arm from a callback,
// timeouts beyond the span, and a randomised run against std::multimap.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "timer/wheel.h"

using tcpterm::timer::Wheel;

TEST_CASE("wheel: nothing at N-1, exactly once at N, at every level", "[timer]") {
  for (Wheel::Tick delay : {1ull, 2ull, 63ull, 64ull, 65ull, 4095ull, 4096ull, 4097ull, 60000ull,
                            262144ull, 300001ull, 16777216ull + 5}) {
    for (Wheel::Tick start : {0ull, 17ull, 63ull, 4095ull, 123456789ull}) {
      Wheel w(4, start);
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

TEST_CASE("wheel: stepping one tick at a time fires at N", "[timer]") {
  Wheel w(2, 0);
  w.arm(0, 5000);
  Wheel::Tick when = 0;
  for (Wheel::Tick t = 1; t <= 6000; t++) w.advance(t, [&](Wheel::Id) { when = t; });
  CHECK(when == 5000);
}

TEST_CASE("wheel: cancel is O(1) and idempotent; re-arm moves the timer", "[timer]") {
  Wheel w(3, 100);
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

TEST_CASE("wheel: a deadline in the past fires at the next advance, never early", "[timer]") {
  Wheel w(1, 1000);
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

TEST_CASE("wheel: callbacks may re-arm themselves and cancel others", "[timer]") {
  Wheel w(3, 0);
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

TEST_CASE("wheel: next_expiry is a lower bound, exact on level 0", "[timer]") {
  Wheel w(4, 0);
  CHECK(w.next_expiry() == Wheel::kNever);
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

TEST_CASE("wheel: randomised against std::multimap", "[timer][random]") {
  const uint32_t kIds = 512;
  std::mt19937_64 rng(42);
  Wheel w(kIds, 1000);
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
