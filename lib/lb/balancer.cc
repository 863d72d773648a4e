#include "lb/balancer.h"

#include <algorithm>

#include "lb/proxy.h"
#include "wire/wire.h"

namespace tcpterm::lb {

const char* to_string(BackendState s) {
  switch (s) {
    case BackendState::Up: return "up";
    case BackendState::Down: return "down";
    case BackendState::Drain: return "drain";
  }
  return "?";
}

Balancer::Balancer(Edge edge) : edge_(std::move(edge)), checker_(std::make_unique<HealthChecker>(*this)) {}
Balancer::~Balancer() = default;

namespace {
uint32_t first_port(const Pool& p, const BackendConf& b);
}

bool Balancer::add_pool(const PoolConf& pc, std::string& err) {
  if (find_pool(pc.name) >= 0) {
    err = "pool " + pc.name + " defined twice";
    return false;
  }
  pools_.emplace_back(pc);
  Pool& p = pools_.back();
  for (const auto& b : pc.backends) {
    Backend be;
    be.conf = b;
    be.port_cursor = first_port(p, b);
    p.backends.push_back(be);
  }
  p.conf.backends.clear();  // the runtime list is the truth from now on
  rebuild(p);
  return true;
}

int Balancer::find_pool(std::string_view name) const {
  for (size_t i = 0; i < pools_.size(); i++)
    if (pools_[i].conf.name == name) return int(i);
  return -1;
}

namespace {
// Where a backend's source-port cursor starts: spread by pool and backend,
// so that pools sharing a backend do not walk the same ports in step.
uint32_t first_port(const Pool& p, const BackendConf& b) {
  return uint32_t(flow_hash(b.addr_key(), b.port, true) ^ std::hash<std::string>{}(p.conf.name));
}

Backend* find_backend(Pool& p, const BackendConf& bc) {
  for (auto& b : p.backends)
    if (!b.removed && b.conf.same(bc)) return &b;
  return nullptr;
}
}  // namespace

bool Balancer::add_backend(std::string_view pool, const BackendConf& bc, std::string& err) {
  int pi = find_pool(pool);
  if (pi < 0) {
    err = "no pool " + std::string(pool);
    return false;
  }
  Pool& p = pools_[size_t(pi)];
  if (Backend* b = find_backend(p, bc)) {
    b->conf.weight = bc.weight;
    b->draining = false;
  } else {
    // Reuse the slot of a removed backend whose flows are all gone.
    Backend* slot = nullptr;
    for (auto& b : p.backends)
      if (b.removed && b.st.active == 0) {
        slot = &b;
        break;
      }
    if (!slot) {
      if (p.backends.size() >= kMaxBackends) {
        err = "pool " + std::string(pool) + " is full (256 backends)";
        return false;
      }
      p.backends.emplace_back();
      slot = &p.backends.back();
    }
    *slot = Backend{};
    slot->conf = bc;
    slot->port_cursor = first_port(p, bc);
  }
  p.dirty = true;
  return true;
}

Backend* Balancer::existing(std::string_view pool, const BackendConf& bc, std::string& err) {
  int pi = find_pool(pool);
  Backend* b = pi < 0 ? nullptr : find_backend(pools_[size_t(pi)], bc);
  if (!b) err = "no backend " + bc.endpoint() + " in pool " + std::string(pool);
  else pools_[size_t(pi)].dirty = true;  // the caller changes its eligibility
  return b;
}

bool Balancer::del_backend(std::string_view pool, const BackendConf& bc, std::string& err) {
  Backend* b = existing(pool, bc, err);
  if (b) b->removed = true;  // its flows keep going; new ones go elsewhere
  return b != nullptr;
}

bool Balancer::drain_backend(std::string_view pool, const BackendConf& bc, std::string& err) {
  Backend* b = existing(pool, bc, err);
  if (b) b->draining = true;
  return b != nullptr;
}

void Balancer::rebuild(Pool& p) {
  std::vector<Maglev::Entry> e(p.backends.size());
  for (size_t i = 0; i < p.backends.size(); i++) {
    e[i].id = p.backends[i].conf.id();
    e[i].weight = p.backends[i].eligible() ? p.backends[i].conf.weight : 0;
  }
  if (p.conf.balance == Balance::Maglev) {
    // The first table at once (there is no other to serve meanwhile);
    // later ones in steps (tick), the current table serving until then.
    if (p.maglev.table().empty()) p.maglev.build(e);
    else p.maglev.begin(e);
  }
  p.dirty = false;
}

int Balancer::pick_maglev(Pool& p, uint32_t caddr, uint16_t cport, int avoid, uint32_t& slot) {
  int b;
  if (avoid < 0) {
    slot = p.maglev.slot_of(flow_hash(caddr, cport, p.conf.hash == HashOn::SrcPort));
    b = p.maglev.table().empty() ? -1 : p.maglev.table()[slot];
  } else {
    // A retry: the next backend along the ring.
    b = p.maglev.next_other(slot, avoid, slot);
  }
  // While a new table is being built the current one may still name a
  // backend that is no longer eligible: the next one along the ring that
  // is (a few slots away: the entries interleave).
  for (size_t tries = 0; b >= 0 && (!p.backends[size_t(b)].eligible() || b == avoid); tries++) {
    if (tries > p.backends.size()) return -1;
    b = p.maglev.next_other(slot, b, slot);
  }
  return b;
}

int Balancer::select(Pool& p, uint32_t caddr, uint16_t cport, int avoid, uint32_t& slot) {
  if (p.dirty) rebuild(p);
  switch (p.conf.balance) {
    case Balance::Maglev: {
      const uint32_t start = slot;
      int b = pick_maglev(p, caddr, cport, avoid, slot);
      if (b < 0 && p.maglev.building()) {
        // The current table holds no eligible backend at all (the whole
        // set changed): the new one now, rather than refuse the client.
        p.maglev.step(UINT64_MAX);
        slot = start;
        b = pick_maglev(p, caddr, cport, avoid, slot);
      }
      return b;
    }
    case Balance::Wrr: {
      // Smooth weighted round robin (nginx): every eligible backend gains
      // its weight, the richest is picked and pays the total.
      int best = -1;
      int64_t total = 0;
      for (size_t i = 0; i < p.backends.size(); i++) {
        Backend& b = p.backends[i];
        if (!b.eligible() || int(i) == avoid) continue;
        b.wrr_current += b.conf.weight;
        total += b.conf.weight;
        if (best < 0 || b.wrr_current > p.backends[size_t(best)].wrr_current) best = int(i);
      }
      if (best >= 0) p.backends[size_t(best)].wrr_current -= total;
      return best;
    }
    case Balance::LeastConn: {
      // Fewest active flows per unit of weight; ties go round robin.
      int best = -1;
      size_t n = p.backends.size();
      for (size_t k = 0; k < n; k++) {
        size_t i = (slot + 1 + k) % n;
        const Backend& b = p.backends[i];
        if (!b.eligible() || int(i) == avoid) continue;
        if (best < 0 || b.st.active * p.backends[size_t(best)].conf.weight <
                            p.backends[size_t(best)].st.active * b.conf.weight)
          best = int(i);
      }
      if (best >= 0) slot = uint32_t(best);
      return best;
    }
  }
  return -1;
}

bool Balancer::source_tuple(stack::Stack& s, Pool& p, Backend& b, flow::FlowKey4& key) {
  if (b.conf.v6) return source_tuple6(s, p, b, key);
  key.raddr = b.conf.addr;
  key.rport = b.conf.port;
  uint32_t first = p.conf.src_first, last = p.conf.src_last;
  if (!first) {
    first = last = edge_.source_for ? edge_.source_for(b.conf.addr) : 0;
    if (!first) {
      p.c.backend_no_source_port++;
      return false;
    }
  }
  const uint32_t naddr = last - first + 1;
  const uint32_t nport = uint32_t(p.conf.sport_hi) - p.conf.sport_lo + 1;
  // Bounded search: a few hundred candidates.  Ports rotate per backend, so
  // a tuple comes back only after the whole range was used (the TIME-WAIT
  // arithmetic in docs/load-balancer.md).
  for (uint32_t tries = 0; tries < 512; tries++) {
    uint32_t a = first + (b.src_cursor % naddr);
    uint16_t port = uint16_t(p.conf.sport_lo + b.port_cursor % nport);
    if (++b.port_cursor % nport == 0) b.src_cursor++;
    key.laddr = a;
    key.lport = port;
    if (edge_.steer_ok && !edge_.steer_ok(a, port, b.conf.addr, b.conf.port)) continue;
    if (s.in_use(key)) continue;
    return true;
  }
  p.c.backend_no_source_port++;
  return false;
}

bool Balancer::source_tuple6(stack::Stack& s, Pool& p, Backend& b, flow::FlowKey4& key) {
  // An IPv6 backend: one source address (the appliance's on the port that
  // reaches it; src= ranges are IPv4), ports as for IPv4.  The key's ids
  // are held here and released by the caller (release_key6) once the
  // connection holds its own.
  wire::Ip6 src{};
  if (!edge_.source_for6 || !edge_.source_for6(b.conf.addr6, src)) {
    p.c.backend_no_source_port++;
    return false;
  }
  flow::FlowKey4 k;
  if (!s.key6(src, 0, b.conf.addr6, b.conf.port, k)) {
    p.c.backend_no_source_port++;
    return false;
  }
  const uint32_t nport = uint32_t(p.conf.sport_hi) - p.conf.sport_lo + 1;
  for (uint32_t tries = 0; tries < 512; tries++) {
    uint16_t port = uint16_t(p.conf.sport_lo + b.port_cursor++ % nport);
    k.lport = port;
    if (edge_.steer_ok6 && !edge_.steer_ok6(src, port, b.conf.addr6, b.conf.port)) continue;
    if (s.in_use(k)) continue;
    key = k;
    return true;
  }
  s.release_key6(k);
  p.c.backend_no_source_port++;
  return false;
}

void Balancer::set_healthy(Pool& p, Backend& b, bool up) {
  if (b.healthy == up) return;
  b.healthy = up;
  (up ? b.st.marked_up : b.st.marked_down)++;
  b.rise_run = b.fall_run = 0;
  p.dirty = true;
}

void Balancer::connect_failed(Pool& p, Backend& b, bool timeout) {
  b.st.connects_failed++;
  (timeout ? b.st.connect_timeouts : b.st.connect_refused)++;
  if (b.connect_fail_run < 255) b.connect_fail_run++;
  if (b.connect_fail_run >= p.conf.fall) set_healthy(p, b, false);
}

void Balancer::connect_ok(Pool&, Backend& b) {
  b.st.connects_ok++;
  b.connect_fail_run = 0;
}

void Balancer::check_result(int pi, int bi, bool ok) {
  if (pi < 0 || size_t(pi) >= pools_.size()) return;
  Pool& p = pools_[size_t(pi)];
  if (bi < 0 || size_t(bi) >= p.backends.size()) return;
  Backend& b = p.backends[size_t(bi)];
  b.check = stack::FlowRef{};
  (ok ? b.st.checks_ok : b.st.checks_failed)++;
  if (ok) {
    b.fall_run = 0;
    if (b.rise_run < 255) b.rise_run++;
    if (!b.healthy && b.rise_run >= p.conf.rise) {
      set_healthy(p, b, true);
      b.connect_fail_run = 0;
    }
  } else {
    b.rise_run = 0;
    if (b.fall_run < 255) b.fall_run++;
    if (b.healthy && b.fall_run >= p.conf.fall) set_healthy(p, b, false);
  }
}

void Balancer::tick(stack::Stack& s, uint64_t now) {
  for (Pool& p : pools_)
    if (p.maglev.building()) p.maglev.step(kMaglevStep);
  if (now < next_tick_ms_) return;
  next_tick_ms_ = now + 10;
  for (size_t pi = 0; pi < pools_.size(); pi++) {
    Pool& p = pools_[pi];
    for (size_t bi = 0; bi < p.backends.size(); bi++) {
      Backend& b = p.backends[bi];
      if (b.removed) continue;
      // Checks run when configured; with check=none only while a backend is
      // down (after passive marking), so that it can come back.
      bool want = p.conf.check != Check::None || !b.healthy;
      if (b.check.valid()) {
        // In flight: bounded by the interval (HAProxy's `timeout check`).
        uint64_t limit = std::max<uint64_t>(p.conf.interval_ms, p.conf.connect_timeout_ms);
        if (now - b.check_started_ms >= limit) {
          // The abort ends the flow; its on_closed records the failure.
          if (!s.act(b.check, [](stack::Stream& st) { st.abort(); })) check_result(int(pi), int(bi), false);
        }
        continue;
      }
      if (!want || now < b.next_check_ms) continue;
      b.next_check_ms = now + p.conf.interval_ms;
      flow::FlowKey4 key;
      if (!source_tuple(s, p, b, key)) {
        check_result(int(pi), int(bi), false);
        continue;
      }
      Check kind = p.conf.check == Check::None ? Check::Tcp : p.conf.check;
      stack::FlowRef r = s.open(key, checker_.get(), p.conf.connect_timeout_ms);
      if (flow::is_v6(key)) s.release_key6(key);  // the flow holds its own
      if (!r.valid()) {
        check_result(int(pi), int(bi), false);
        continue;
      }
      b.check_started_ms = now;
      b.check = r;
      s.act(r, [&](stack::Stream& st) {
        st.app().a = uint64_t(pi) << 32 | bi;
        st.app().kind = uint8_t(kind);
      });
    }
  }
}

std::vector<BackendSnapshot> Balancer::backends_snapshot() const {
  std::vector<BackendSnapshot> v;
  for (const auto& p : pools_)
    for (const auto& b : p.backends) {
      if (b.removed && b.st.active == 0) continue;
      v.push_back({p.conf.name, b.conf.addr, b.conf.port, b.conf.endpoint(), b.conf.weight, b.state(), b.removed, b.st});
    }
  return v;
}

std::vector<PoolSnapshot> Balancer::pools_snapshot() const {
  std::vector<PoolSnapshot> v;
  for (const auto& p : pools_) {
    PoolSnapshot ps{p.conf.name, p.conf.describe(), p.c, 0, 0};
    for (const auto& b : p.backends) {
      if (b.removed) continue;
      ps.total++;
      if (b.eligible()) ps.up++;
    }
    v.push_back(ps);
  }
  return v;
}

}  // namespace tcpterm::lb
