// The per-lcore stack: dispatch of segments to flows, TIME-WAIT records and
// listeners; application events; TIME-WAIT conversion and expiry.
#include "stack/stack.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "tcp/time_wait.h"

namespace tcpterm::stack {

using flow::FlowKey4;
using tcp::FlowOp;
using tcp::TcpState;

namespace {
uint64_t draw(tcp::RandomFn rng) {
  uint64_t v;
  rng(&v, sizeof v);
  return v;
}

// A burst's keys: storage, not kMax default-constructed (zeroed) keys per
// burst, since each key is written before it is read.  (FlowKey4 is an
// aggregate, so the bytes hold keys once written: C++20's implicit object
// creation.)
constexpr unsigned kBurstKeys = 64;
struct BurstKeys {
  alignas(FlowKey4) unsigned char room[kBurstKeys * sizeof(FlowKey4)];
  FlowKey4* get() { return reinterpret_cast<FlowKey4*>(room); }
};
}  // namespace

Stack::Stack(const StackConfig& cfg, TxSink& sink, uint64_t now_ms)
    : cfg_(cfg),
      sink_(sink),
      now_(now_ms),
      chunks_(cfg.chunks, cfg.max_flows),
      ooo_(cfg.ooo_states),
      pool_(cfg.max_flows),
      table_(cfg.max_flows + cfg.max_time_wait, cfg.table_hugepages),
      tw_(std::min(cfg.max_time_wait, flow::TimeWaitTable::kMaxCapacity), cfg.prefault),
      // Every IPv6 holder holds two ids; distinct addresses are at most the
      // local ones plus one per flow or record.
      addr6_(uint32_t(std::min<uint64_t>(2ull * cfg.max_flows + cfg.max_time_wait + 1024, flow::kV6IndexMask)),
             draw(cfg.rng)),
      wheel_(cfg.max_flows, now_ms),
      iss_(draw(cfg.rng), draw(cfg.rng)),
      cookies_(cfg.rng),
      out_(std::make_unique<tcp::Out>()) {
  hash_seed_ = draw(cfg.rng);
  starved_.reserve(cfg.max_flows);
  touched_.reserve(cfg.max_flows);
}

Stack::~Stack() = default;

// ------------------------------------------------------------ listeners ---
bool Stack::add_listener(uint32_t addr, uint16_t port, App* app) {
  for (auto& l : listeners_)
    if (l.addr == addr && l.port == port) return false;
  listeners_.push_back(Listener{addr, port, app, 0});
  st_.states[size_t(TcpState::Listen)]++;
  return true;
}

bool Stack::remove_listener(uint32_t addr, uint16_t port) {
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if (it->addr == addr && it->port == port) {
      listeners_.erase(it);
      st_.states[size_t(TcpState::Listen)]--;
      return true;
    }
  }
  return false;
}

bool Stack::add_listener6(const wire::Ip6& addr, uint16_t port, App* app) {
  if (wire::ip6_is_zero(addr)) return add_listener(0, port, app);
  uint32_t id = addr6_.acquire(addr);  // held while the listener lives
  if (id == flow::Addr6Table::kNone) return false;
  if (!add_listener(id, port, app)) {
    addr6_.release(id);
    return false;
  }
  return true;
}

bool Stack::remove_listener6(const wire::Ip6& addr, uint16_t port) {
  if (wire::ip6_is_zero(addr)) return remove_listener(0, port);
  uint32_t id = addr6_.find(addr);
  if (id == flow::Addr6Table::kNone || !remove_listener(id, port)) return false;
  addr6_.release(id);
  return true;
}

bool Stack::key6(const wire::Ip6& l, uint16_t lport, const wire::Ip6& r, uint16_t rport, FlowKey4& out) {
  uint32_t li = addr6_.acquire(l);
  if (li == flow::Addr6Table::kNone) {
    sst_.addr6_table_full++;
    return false;
  }
  uint32_t ri = addr6_.acquire(r);
  if (ri == flow::Addr6Table::kNone) {
    addr6_.release(li);
    sst_.addr6_table_full++;
    return false;
  }
  out = FlowKey4{li, ri, lport, rport};
  return true;
}

Listener* Stack::find_listener(uint32_t addr, uint16_t port) {
  Listener* any = nullptr;
  for (auto& l : listeners_) {
    if (l.port != port) continue;
    if (l.addr == addr) return &l;
    if (l.addr == 0) any = &l;
  }
  return any;
}

// --------------------------------------------------------------- lookup ---
uint32_t Stack::lookup(const FlowKey4& key, uint32_t hash) {
  return table_.find(hash, [&](uint32_t ref) {
    return (ref & kTwRef) ? tw_[ref & ~kTwRef].key == key : pool_[ref].key == key;
  });
}

uint32_t Stack::ref_hash(uint32_t ref) const {
  return hash((ref & kTwRef) ? tw_[ref & ~kTwRef].key : pool_[ref].key);
}

void Stack::input(const wire::Ipv4Repr& ip, const wire::TcpRepr& seg, uint32_t nh) {
  cur_nh_ = nh;
  FlowKey4 key{ip.dst, ip.src, seg.dst_port, seg.src_port};
  uint32_t hash = this->hash(key);
  uint32_t ref = lookup(key, hash);
  if (ref == flow::FlowTable::kNotFound) on_new_segment(key, hash, seg, 0, false);
  else if (ref & kTwRef) on_time_wait_segment(ref & ~kTwRef, key, hash, seg);
  else on_flow_segment(ref, seg);
}

void Stack::input6(const wire::Ipv6Repr& ip, const wire::TcpRepr& seg, uint32_t nh) {
  input6_burst(&ip, &seg, &nh, 1);
}

void Stack::input6_burst(const wire::Ipv6Repr* ips, const wire::TcpRepr* segs, const uint32_t* nhs,
                         unsigned n) {
  // As input_burst, with the address ids found (not held) in stage 1.
  constexpr unsigned kMax = kBurstKeys;
  BurstKeys room;
  FlowKey4* keys = room.get();
  uint32_t hashes[kMax];
  while (n) {
    unsigned m = std::min(n, kMax);
    for (unsigned i = 0; i < m; i++) {
      keys[i] = FlowKey4{addr6_.find(ips[i].dst), addr6_.find(ips[i].src), segs[i].dst_port, segs[i].src_port};
      if (keys[i].laddr != flow::Addr6Table::kNone && keys[i].raddr != flow::Addr6Table::kNone) {
        hashes[i] = hash(keys[i]);
        table_.prefetch(hashes[i]);
      }
    }
    for (unsigned i = 0; i < m; i++) {
      cur_nh_ = nhs ? nhs[i] : kNoNextHop;
      const FlowKey4& k = keys[i];
      // An earlier segment of the burst may have ended the last holder of
      // an id (and the id been given to another address): check before use.
      bool known = k.laddr != flow::Addr6Table::kNone && k.raddr != flow::Addr6Table::kNone &&
                   addr6_.refs(k.laddr) && addr6_.refs(k.raddr) && addr6_.addr(k.laddr) == ips[i].dst &&
                   addr6_.addr(k.raddr) == ips[i].src;
      uint32_t ref = known ? lookup(k, hashes[i]) : flow::FlowTable::kNotFound;
      // A live flow holds both ids, and nothing after its event reads the
      // key: no hold is taken.
      if (ref != flow::FlowTable::kNotFound && !(ref & kTwRef)) {
        on_flow_segment(ref, segs[i]);
        continue;
      }
      // Otherwise (a TIME-WAIT record, a listener, nothing) the segment
      // holds its two ids while it is processed: a record may end and a new
      // flow take the same key (RFC 6191), and an address nobody holds
      // afterwards leaves the table.  Known ids are the ones acquire()
      // returns, so the lookup above stands; new ones need their own.
      FlowKey4 key;
      if (!key6(ips[i].dst, segs[i].dst_port, ips[i].src, segs[i].src_port, key)) continue;
      uint32_t h = known ? hashes[i] : hash(key);
      if (!known) ref = lookup(key, h);
      if (ref == flow::FlowTable::kNotFound) on_new_segment(key, h, segs[i], 0, false);
      else if (ref & kTwRef) on_time_wait_segment(ref & ~kTwRef, key, h, segs[i]);
      else on_flow_segment(ref, segs[i]);
      release_key6(key);
    }
    ips += m;
    segs += m;
    if (nhs) nhs += m;
    n -= m;
  }
}

void Stack::packet_too_big6(std::span<const uint8_t> q, uint32_t mtu) {
  // The quoted packet is ours: IPv6 header (no extension headers: we send
  // none) and at least the first 8 bytes of TCP (ports, sequence number).
  if (q.size() < wire::kIpv6HdrLen + 8 || (q[0] >> 4) != 6 || q[6] != wire::kProtoTcp) {
    sst_.pmtu_ignored++;
    return;
  }
  wire::Ip6 src, dst;
  std::memcpy(src.data(), q.data() + 8, 16);
  std::memcpy(dst.data(), q.data() + 24, 16);
  const uint8_t* t = q.data() + wire::kIpv6HdrLen;
  uint32_t li = addr6_.find(src), ri = addr6_.find(dst);
  if (li == flow::Addr6Table::kNone || ri == flow::Addr6Table::kNone) {
    sst_.pmtu_ignored++;
    return;
  }
  FlowKey4 key{li, ri, wire::load16(t), wire::load16(t + 2)};
  uint32_t ref = lookup(key, hash(key));
  if (ref == flow::FlowTable::kNotFound || (ref & kTwRef)) {
    sst_.pmtu_ignored++;
    return;
  }
  tcp::Tcb& tcb = pool_[ref].tcb;
  tcp::Seq seq(wire::load32(t + 4));
  // RFC 5927 5.2: only a sequence number in flight (SND.UNA <= seq < SND.NXT)
  // proves the sender saw our segment.
  if (!(seq >= tcb.snd_una && seq < tcb.snd_max)) {
    sst_.pmtu_ignored++;
    return;
  }
  // RFC 8201 4: a reported MTU below 1280 is raised to 1280.
  uint32_t path = std::max<uint32_t>(mtu, wire::icmp6::kMinMtu);
  uint16_t mss = uint16_t(std::min<uint32_t>(path - wire::kIpv6HdrLen - wire::kTcpMinHdr, 0xffff));
  if (mss >= tcb.snd_mss) {
    sst_.pmtu_ignored++;
    return;
  }
  tcb.snd_mss = mss;
  sst_.pmtu_lowered++;
}

void Stack::input_burst(const wire::Ipv4Repr* ips, const wire::TcpRepr* segs, const uint32_t* nhs,
                        unsigned n) {
  // Stage 1: hash every key and prefetch its home bucket.  Stage 2: look
  // each up right before processing it (a segment may insert or erase the
  // flow of a later one in the same burst, so lookups are not batched
  // ahead of processing; the prefetch has already paid the cache miss).
  constexpr unsigned kMax = kBurstKeys;
  BurstKeys room;
  FlowKey4* keys = room.get();
  uint32_t hashes[kMax];
  while (n) {
    unsigned m = std::min(n, kMax);
    for (unsigned i = 0; i < m; i++) {
      keys[i] = FlowKey4{ips[i].dst, ips[i].src, segs[i].dst_port, segs[i].src_port};
      hashes[i] = hash(keys[i]);
      table_.prefetch(hashes[i]);
    }
    for (unsigned i = 0; i < m; i++) {
      cur_nh_ = nhs ? nhs[i] : kNoNextHop;
      uint32_t ref = lookup(keys[i], hashes[i]);
      if (ref == flow::FlowTable::kNotFound) on_new_segment(keys[i], hashes[i], segs[i], 0, false);
      else if (ref & kTwRef) on_time_wait_segment(ref & ~kTwRef, keys[i], hashes[i], segs[i]);
      else on_flow_segment(ref, segs[i]);
    }
    ips += m;
    segs += m;
    if (nhs) nhs += m;
    n -= m;
  }
}

// -------------------------------------------------------- segment paths ---
void Stack::on_flow_segment(uint32_t fi, const wire::TcpRepr& seg) {
  tcp::Out& out = *out_;
  out.reset();
  tcp::Env e = env();
  e.rcv_in_place = true;
  tcp::on_segment(pool_[fi].tcb, seg, e, out);
  finish_event(fi, out);
}

void Stack::on_time_wait_segment(uint32_t ti, const FlowKey4& key, uint32_t hash,
                                 const wire::TcpRepr& seg) {
  sst_.tw_hits++;
  tcp::TwState s = tw_.state(ti);
  switch (tcp::tw_on_segment(s, seg, cfg_.tcp, st_)) {
    case tcp::TwAction::Drop:
      return;
    case tcp::TwAction::Ack:
      send_reply(key, tcp::tw_ack(s, cfg_.tcp, uint32_t(now_) + ts_offset(key)));
      return;
    case tcp::TwAction::AckRestart: {
      // RFC 7323 4.3: the retransmitted FIN's timestamp becomes TS.Recent
      // (it passed PAWS in tw_on_segment), and the ACK echoes it.
      if (s.ts_ok && seg.opt.has_ts) s.ts_recent = seg.opt.ts_val;
      send_reply(key, tcp::tw_ack(s, cfg_.tcp, uint32_t(now_) + ts_offset(key)));
      // Restart 2MSL: unlink and append, so the FIFO stays sorted by expiry.
      uint32_t expires = uint32_t(now_) + cfg_.tcp.two_msl_ms();
      uint32_t nti = tw_.relink(ti, expires, s.ts_recent);
      if (nti != flow::TimeWaitTable::kNil) {
        table_.replace(hash, kTwRef | ti, kTwRef | nti);
      } else {
        tw_.set_ts_recent(ti, s.ts_recent);
        tw_.restart(ti, expires);
        sst_.tw_restart_in_place++;
      }
      return;
    }
    case tcp::TwAction::Close:
      tw_gone(ti);
      tw_.kill(ti);
      return;
    case tcp::TwAction::Reopen: {
      // RFC 6191: the record ends only once the new incarnation has a TCB;
      // without one (flow table full) the record stays and the SYN is dropped.
      if (pool_.size() >= pool_.capacity()) {
        sst_.tw_reopen_failed++;
        sst_.flow_table_full++;
        return;
      }
      uint32_t iss = tcp::tw_reopen_iss(s);
      tw_gone(ti);
      tw_.kill(ti);
      on_new_segment(key, hash, seg, iss, true);
      return;
    }
  }
}

void Stack::tw_gone(uint32_t ti) {
  if (ti != flow::TimeWaitTable::kNil) {
    table_.erase(hash(tw_[ti].key), kTwRef | ti);
    drop_key(tw_[ti].key);  // the record's hold on an IPv6 key's addresses
  }
  st_.states[size_t(TcpState::TimeWait)]--;
}

void Stack::send_reply(const FlowKey4& key, wire::TcpRepr h) {
  h.src_port = key.lport;
  h.dst_port = key.rport;
  st_.segs_out++;
  sink_.tcp_out(key, cur_nh_, h, Payload{});  // back the way the segment came
}

bool Stack::syncookies_engaged() const {
  switch (cfg_.syncookies) {
    case SynCookieMode::Off: return false;
    case SynCookieMode::On: return true;
    case SynCookieMode::Auto: break;
  }
  return st_.states[size_t(TcpState::SynReceived)] >= int64_t(cfg_.syn_backlog) ||
         pool_.size() + cfg_.max_flows / 16 >= cfg_.max_flows;
}

uint32_t Stack::app_id(App* a) {
  if (a == last_app_) return last_app_id_;
  auto it = std::find(apps_.begin(), apps_.end(), a);
  uint32_t id = uint32_t(it - apps_.begin());
  if (it == apps_.end()) apps_.push_back(a);
  last_app_ = a;
  last_app_id_ = id;
  return id;
}

uint32_t Stack::open_flow(const FlowKey4& key, uint32_t hash, App* app, uint32_t nh) {
  uint32_t fi = pool_.alloc();
  if (fi == flow::kNoIndex) {
    sst_.flow_table_full++;  // like a full backlog: the peer retries
    return flow::kNoIndex;
  }
  if (!table_.insert(hash, fi)) {
    pool_.free(fi);
    sst_.flow_table_full++;
    return flow::kNoIndex;
  }
  Flow& f = pool_[fi];
  hold_key(key);
  f.key = key;
  f.nh = nh == kNoNextHop ? kNoNextHop : sink_.nh_acquire(nh);
  f.pending = 0;
  f.open_timeout_ms = 0;
  f.app = app_id(app);
  f.app_state = AppState{};
  sst_.flows_opened++;
  return fi;
}

bool Stack::try_cookie(const FlowKey4& key, uint32_t hash, App* app, const wire::TcpRepr& seg) {
  // Only while cookies may be outstanding (sent in this or the last period).
  if (cfg_.syncookies == SynCookieMode::Off || last_cookie_ms_ == 0 ||
      now_ - last_cookie_ms_ > 2 * tcp::kCookiePeriodMs)
    return false;
  tcp::CookieData d;
  if (!cookies_.check(cookie_tuple(key), seg.seq - 1, seg.ack - 1, now_, d)) {
    sst_.syncookies_failed++;
    return false;  // answered like any ACK to a listener: RST
  }
  uint32_t fi = open_flow(key, hash, app, cur_nh_);
  if (fi == flow::kNoIndex) return true;
  sst_.syncookies_ok++;
  tcp::Out& out = *out_;
  out.reset();
  tcp::Env e = env();
  e.ts_offset = ts_offset(key);
  e.v6 = flow::is_v6(key);
  tcp::Tcb& t = pool_[fi].tcb;
  tcp::open_from_cookie(t, seg, d.mss, d.wscale, e, out);
  e.rcv_in_place = true;
  if (!seg.payload.empty() || seg.fin()) tcp::on_segment(t, seg, e, out);  // text or FIN with it
  finish_event(fi, out);
  return true;
}

void Stack::on_new_segment(const FlowKey4& key, uint32_t hash, const wire::TcpRepr& seg,
                           uint32_t iss_override, bool has_iss) {
  if (seg.rst()) {
    st_.resets_ignored++;  // RFC 9293 3.10.7.1/2: an RST to nothing is dropped
    return;
  }
  Listener* l = find_listener(key.laddr, key.lport);
  if (l && seg.has_ack() && !seg.syn() && try_cookie(key, hash, l->app, seg)) {
    l->accepted++;
    return;
  }
  if (!l && cfg_.tcp.forgetful) {
    sst_.forgot_segments++;  // a forgotten connection's segment: silence
    return;
  }
  if (!l || seg.has_ack()) {
    // CLOSED (no listener), or LISTEN receiving an ACK: reset.
    if (l) sst_.ack_to_listener++;
    else sst_.no_listener++;
    wire::TcpRepr rst;
    if (tcp::reset_for(seg, rst)) {
      sst_.rst_to_unknown++;
      st_.resets_out++;
      send_reply(key, rst);
    }
    return;
  }
  if (!seg.syn()) return;  // LISTEN: any other text or control is dropped
  if (!has_iss && syncookies_engaged()) {
    // RFC 4987: answer statelessly; the ISS is the cookie.
    tcp::CookieData d;
    d.mss = seg.opt.mss ? seg.opt.mss : 536;
    d.wscale = cfg_.tcp.window_scaling && seg.opt.has_wscale() ? seg.opt.wscale : 0xff;
    uint32_t cookie = cookies_.make(cookie_tuple(key), seg.seq, d, now_);
    send_reply(key, tcp::cookie_syn_ack(seg, cookie, cfg_.tcp, uint32_t(now_) + ts_offset(key), flow::is_v6(key)));
    sst_.syncookies_sent++;
    sst_.syncookie_rotations = cookies_.rotations();
    last_cookie_ms_ = now_ ? now_ : 1;
    return;
  }
  uint32_t fi = open_flow(key, hash, l->app, cur_nh_);
  if (fi == flow::kNoIndex) return;
  l->accepted++;
  tcp::TupleSecret ts = tuple_secret(key);
  uint32_t iss = has_iss ? iss_override : tcp::IssGenerator::iss(ts, now_ * 1000);
  tcp::Out& out = *out_;
  out.reset();
  tcp::Env e = env();
  e.ts_offset = ts.ts_offset;
  e.v6 = flow::is_v6(key);
  tcp::open_passive(pool_[fi].tcb, seg, iss, e, out);
  finish_event(fi, out);
}

bool Stack::in_use(const FlowKey4& key) {
  uint32_t h = hash(key);
  return table_.find(h, [&](uint32_t ref) {
    return (ref & kTwRef) ? tw_[ref & ~kTwRef].key == key : pool_[ref].key == key;
  }) != flow::FlowTable::kNotFound;
}

FlowRef Stack::open_deferred(const FlowKey4& key, App* app, uint32_t syn_timeout_ms) {
  uint32_t hash = this->hash(key);
  uint32_t fi = lookup(key, hash) == flow::FlowTable::kNotFound ? open_flow(key, hash, app, kNoNextHop)
                                                                : flow::kNoIndex;
  if (fi == flow::kNoIndex) {
    sst_.connect_failed++;
    return FlowRef{};
  }
  pool_[fi].tcb = tcp::Tcb{};  // CLOSED until its own event sends the SYN
  pool_[fi].open_timeout_ms = uint16_t(std::min<uint32_t>(syn_timeout_ms, 0xffff));
  touch(fi, kPendOpen);
  return ref_of(fi);
}

FlowRef Stack::open(const FlowKey4& key, App* app, uint32_t syn_timeout_ms) {
  FlowRef r = open_deferred(key, app, syn_timeout_ms);
  if (r.valid() && !draining_) drain_touched();
  return r;
}

void Stack::touch(uint32_t fi, uint8_t ops) {
  Flow& f = pool_[fi];
  bool queued = f.pending & kPendTouched;
  f.pending |= uint8_t(ops | kPendTouched);
  if (!queued) touched_.push_back({fi, pool_.generation(fi)});  // each flow at most once
}

void Stack::flush_touched(uint32_t fi) {
  Flow& f = pool_[fi];
  uint8_t ops = f.pending;
  f.pending = 0;
  tcp::Out& out = *out_;
  out.reset();
  tcp::Env e = env();
  if (ops & kPendOpen) {
    tcp::TupleSecret ts = tuple_secret(f.key);
    e.ts_offset = ts.ts_offset;
    e.v6 = flow::is_v6(f.key);
    tcp::open_active(f.tcb, tcp::IssGenerator::iss(ts, now_ * 1000), e, out, f.open_timeout_ms);
  }
  if (ops & kPendAbort) tcp::abort(f.tcb, e, out);
  else if (ops & kPendClose) tcp::close(f.tcb, e, out);
  finish_event(fi, out);
}

void Stack::drain_touched() {
  // Each touched flow gets one event; events may touch more flows (a flow
  // is queued at most once at a time).  A pass is bounded; the rest waits
  // for the next advance().
  draining_ = true;
  size_t budget = 4 * size_t(pool_.capacity()) + 64;
  while (touched_head_ < touched_.size() && budget--) {
    auto [fi, gen] = touched_[touched_head_++];
    if (!pool_.in_use(fi) || pool_.generation(fi) != gen) continue;
    flush_touched(fi);
  }
  if (touched_head_ == touched_.size()) {
    touched_.clear();
    touched_head_ = 0;
  }
  draining_ = false;
}

// ------------------------------------------------------ after an event ---
void Stack::deliver_events(uint32_t fi, tcp::Out& out) {
  Flow& f = pool_[fi];
  uint8_t ev = out.events;
  App* app = app_of(f);
  if (!app || !ev) return;
  EventScope scope(*this, fi, out);
  Stream s(scope, fi);
  namespace E = tcp::ev;
  if (ev & E::Established) app->on_open(s);
  // A graceful end (TIME-WAIT, or CLOSED from LAST-ACK) keeps the bytes not
  // yet read for this event: the application still gets them, and the FIN
  // that ended a FIN-WAIT-2.
  if ((ev & E::Readable) && (s.alive() || s.readable())) app->on_data(s);
  if ((ev & E::PeerFin) && (s.alive() || f.tcb.state == TcpState::TimeWait)) app->on_peer_close(s);
  if ((ev & E::Writable) && s.alive()) app->on_writable(s);
  if ((ev & E::Reset) || ((ev & E::TimedOut) && f.tcb.state == TcpState::Closed))
    app->on_reset(s);
  // Last: the flow ended in this event, by the peer, a timer, or the
  // application itself inside one of the callbacks above.
  if (f.tcb.state == TcpState::Closed || f.tcb.state == TcpState::TimeWait) app->on_closed(s);
}

bool Stack::keep_held(uint32_t fi, tcp::Out& out) {
  Flow& f = pool_[fi];
  if (f.pending & kPendAbort) {
    out.held_len = 0;  // discarded with the queue
    return true;
  }
  tcp::Env e = env();
  if (tcp::keep_held(f.tcb, e, out)) return true;
  // A flow that ended gracefully in this event loses only its last unread
  // bytes (counted).  A live one received bytes (RCV.NXT covers them) that
  // are not ACKed yet but can be neither kept nor received again: it cannot
  // go on.
  if (f.tcb.state == TcpState::Closed || f.tcb.state == TcpState::TimeWait) return true;
  tcp::abort(f.tcb, e, out);
  return false;
}

void Stack::finish_event(uint32_t fi, tcp::Out& out) {
  Flow& f = pool_[fi];
  deliver_events(fi, out);
  if (out.held_len) {
    if (f.tcb.state == TcpState::Closed || f.tcb.state == TcpState::TimeWait) {
      out.held_len = 0;  // the flow ended: its unread bytes go with it, as its queue does
    } else if (!keep_held(fi, out)) {
      out.events = tcp::ev::Reset;  // the application's last events for it
      deliver_events(fi, out);
    }
  }
  if (f.tcb.q != tcp::kNil) chunks_.queues(f.tcb.q).owner = fi;
  tcp::Env e = env();
  if (out.op == FlowOp::Keep && f.tcb.state != TcpState::Closed) {
    for (;;) {
      tcp::output(f.tcb, e, out);
      if (!out.more) break;
      transmit(fi, out);
      out.n = 0;
      out.more = false;
    }
  }
  transmit(fi, out);
  switch (out.op) {
    case FlowOp::Keep:
      tcp::queues_trim(f.tcb, chunks_);  // queue headers only while bytes are held
      rearm(fi);
#ifdef TCPTERM_CHECK_INVARIANTS
      assert(tcp::check_invariants(f.tcb, chunks_));
#endif
      break;
    case FlowOp::ToTimeWait:
      to_time_wait(fi);
      break;
    case FlowOp::Free:
      free_flow(fi);
      break;
  }
  // Flows acted on from this event get theirs now.
  if (!draining_ && touched_head_ < touched_.size()) drain_touched();
}

void Stack::transmit(uint32_t fi, tcp::Out& out) {
  Flow& f = pool_[fi];
  if (out.n && f.nh == kNoNextHop) f.nh = sink_.nh_resolve(f.key);
  for (unsigned i = 0; i < out.n; i++) {
    tcp::OutSeg& s = out.seg[i];
    wire::TcpRepr& h = s.h;  // the ports are the edge's to fill, in place
    h.src_port = f.key.lport;
    h.dst_port = f.key.rport;
    Payload p;
    if (s.data_len) {
      uint32_t off = uint32_t(tcp::Seq(h.seq) - f.tcb.snd_una);
      // Data queued and then aborted in the same event: the queue is gone.
      const tcp::FlowQueues& fq = tcp::queues(f.tcb, chunks_);
      const tcp::ByteQueue& sndq = fq.snd;
      if (uint64_t(off) + s.data_len > sndq.len) continue;
      p = Payload{&chunks_, &sndq, off, s.data_len, fq.snd_lent};
    }
    sink_.tcp_out(f.key, f.nh, h, p);
  }
}

void Stack::rearm(uint32_t fi) {
  uint32_t d;
  if (!tcp::next_deadline(pool_[fi].tcb, d)) {
    wheel_.cancel(fi);
    return;
  }
  int32_t delta = int32_t(d - uint32_t(now_));
  uint64_t at = delta <= 0 ? now_ : now_ + uint64_t(delta);
  if (!wheel_.armed(fi) || wheel_.deadline(fi) != at) wheel_.arm(fi, at);
}

void Stack::release_leftover(Flow& f) {
  // A graceful end kept the bytes the application had not read for its
  // last event (tcp: release_for_close); they go now, with the queue
  // headers.  Everything else was released when the TCB ended.
  if (f.tcb.q == tcp::kNil) return;
  tcp::Env e = env();
  tcp::release(f.tcb, e);
}

void Stack::to_time_wait(uint32_t fi) {
  Flow& f = pool_[fi];
  release_leftover(f);
  if (cfg_.tcp.forgetful) {
    // A forgetful client keeps nothing after its last ACK.
    sst_.forgot_time_wait++;
    tw_gone(flow::TimeWaitTable::kNil);
    free_flow(fi);
    return;
  }
  tcp::TwState s = tcp::tw_from_tcb(f.tcb);
  uint32_t ti = flow::TimeWaitTable::kNil;
  if (tw_.full() && cfg_.tcp.tw_cap_policy == tcp::TwCapPolicy::RecycleOldest) {
    if (tw_.evict_oldest([&](uint32_t old) { tw_gone(old); })) st_.tw_recycled++;
  }
  if (!tw_.full()) ti = tw_.add(f.key, s, uint32_t(now_) + cfg_.tcp.two_msl_ms());
  if (ti == flow::TimeWaitTable::kNil) {
    // The Skip policy (or nothing left to recycle): no TIME-WAIT.
    st_.tw_cap_skipped++;
    tw_gone(flow::TimeWaitTable::kNil);
    free_flow(fi);
    return;
  }
  table_.replace(hash(f.key), fi, kTwRef | ti);
  wheel_.cancel(fi);
  sink_.nh_release(f.nh);
  f.nh = kNoNextHop;
  pool_.free(fi);
  sst_.flows_freed++;
}

void Stack::starved(uint32_t fi) {
  std::pair<uint32_t, uint32_t> e{fi, pool_.generation(fi)};
  if (starved_.size() > starved_head_ && starved_.back() == e) return;  // asked already
  if (starved_.size() < starved_.capacity()) starved_.push_back(e);
}

void Stack::retry_starved() {
  // Wake the flows waiting when this pass began (a flow that still finds too
  // little re-registers for the next pass, so a pass always ends).
  size_t end = starved_.size();
  while (starved_head_ < end && chunks_.in_use() < chunks_.capacity()) {
    auto [fi, gen] = starved_[starved_head_++];
    if (!pool_.in_use(fi) || pool_.generation(fi) != gen) continue;  // freed since
    tcp::Out& out = *out_;
    out.reset();
      out.events = tcp::ev::Writable;
    finish_event(fi, out);
  }
  if (starved_head_ == starved_.size()) {
    starved_.clear();
    starved_head_ = 0;
  }
}

void Stack::free_flow(uint32_t fi) {
  Flow& f = pool_[fi];
  release_leftover(f);
  table_.erase(hash(f.key), fi);
  drop_key(f.key);
  wheel_.cancel(fi);
  sink_.nh_release(f.nh);
  f.nh = kNoNextHop;
  f.app = 0;
  f.pending = 0;
  pool_.free(fi);
  sst_.flows_freed++;
}

// ---------------------------------------------------------------- timers ---
void Stack::advance(uint64_t now_ms) {
  if (now_ms > now_) now_ = now_ms;
  if (starved_head_ < starved_.size()) retry_starved();
  if (touched_head_ < touched_.size()) drain_touched();
  if (chunks_.critical() && now_ - last_reclaim_ms_ >= cfg_.reclaim_interval_ms) {
    last_reclaim_ms_ = now_;
    reclaim_memory();
  }
  // The chunk pool's own counters, as stack counters (since the last clear).
  sst_.mem_pressure_entered = chunks_.pressure_entered() - pressure_base_;
  sst_.chunk_alloc_failures = chunks_.alloc_failures() - alloc_fail_base_;
  // Flow-table pressure (7/8 of the TCBs in use): orphans stop waiting out
  // their retries (tcp::Env::flow_pressure).
  const bool pressure = pool_.size() + cfg_.max_flows / 8 >= cfg_.max_flows;
  wheel_.advance(now_, [&](timer::Wheel32::Id fi) {
    if (!pool_.in_use(fi)) return;
    tcp::Out& out = *out_;
    out.reset();
    tcp::Env e = env();
    e.flow_pressure = pressure;
    tcp::on_timer(pool_[fi].tcb, e, out);
    finish_event(fi, out);
  });
  tw_.expire(
      uint32_t(now_), cfg_.tw_expire_budget,
      [&](uint32_t ti) {
        tw_gone(ti);
        st_.tw_expired++;
      },
      [&](uint32_t ahead) { table_.prefetch(hash(tw_[ahead].key)); });
}

void Stack::reclaim_memory() {
  // Linux tcp_out_of_memory / orphan reaping, in the order the costs say:
  // out-of-order data went first (tcp::ooo_store prunes it on demand); now
  // orphans (the application is gone: nobody waits for their bytes), then
  // stalled flows (nothing received for a second, or a zero window) holding
  // the most chunks.  One scan per reclaim_interval_ms, only while the pool
  // is critical, of the queue headers taken -- every flow holding a chunk
  // holds one, and there are no more of them than chunks and out-of-order
  // states -- not of every flow slot (tens of millions with a large
  // --max-flows: a scan that long, every 100 ms, would stall the lcore
  // the pressure came from).
  sst_.mem_reclaim_scans++;
  struct Cand {
    uint32_t fi;
    uint32_t chunks;
    bool orphan;
  };
  std::vector<Cand> c;
  for (uint32_t qi = 0; qi < chunks_.queues_touched(); qi++) {
    const uint32_t i = chunks_.queues(qi).owner;
    // Free, not yet on record, or a record that no longer holds (stale).
    if (i >= pool_.capacity() || !pool_.in_use(i) || pool_[i].tcb.q != qi) continue;
    const tcp::Tcb& t = pool_[i].tcb;
    const tcp::FlowQueues& q = tcp::queues(t, chunks_);
    uint32_t held = uint32_t(q.snd.nchunks) + q.rcv.nchunks;
    if (q.ooo != tcp::kNil)
      for (int r = 0; r < ooo_[q.ooo].count; r++) held += ooo_[q.ooo].q[r].nchunks;
    if (!held) continue;
    bool orphan = t.has(tcp::kOrphan);
    bool stalled = (t.timers & tcp::kTmPersist) || t.snd_wnd == 0 || uint32_t(now_) - t.last_rcv >= 1000;
    if (orphan || stalled) c.push_back({i, held, orphan});
  }
  std::sort(c.begin(), c.end(), [](const Cand& a, const Cand& b) {
    return a.orphan != b.orphan ? a.orphan : a.chunks > b.chunks;
  });
  for (const Cand& k : c) {
    if (!chunks_.under_pressure()) break;
    if (!pool_.in_use(k.fi)) continue;
    tcp::Out& out = *out_;
    out.reset();
      tcp::Env e = env();
    tcp::abort(pool_[k.fi].tcb, e, out);  // RST: the peer learns at once
    out.events |= tcp::ev::Reset;
    (k.orphan ? sst_.mem_reclaimed_orphans : sst_.mem_reclaimed_stalled)++;
    sst_.mem_reclaimed_bytes += uint64_t(k.chunks) * tcp::ChunkPool::kChunk;
    finish_event(k.fi, out);
  }
}

uint64_t Stack::next_event() const {
  uint64_t n = wheel_.next_expiry();
  uint32_t at;
  if (tw_.next_expiry(at)) {
    int32_t delta = int32_t(at - uint32_t(now_));
    n = std::min<uint64_t>(n, delta <= 0 ? now_ : now_ + uint64_t(delta));
  }
  return n;
}

// ----------------------------------------------------------- observation ---
void Stack::clear_stats() {
  st_.clear_counters();
  sst_ = StackStats{};
  pressure_base_ = chunks_.pressure_entered();
  alloc_fail_base_ = chunks_.alloc_failures();
}

std::vector<FlowInfo> Stack::dump_flows(size_t max, int state_filter, uint32_t addr_filter) const {
  std::vector<FlowInfo> v;
  FlowDump d;
  d.max = max;
  d.state_filter = state_filter;
  d.addr_filter = addr_filter;
  d.out = &v;
  dump_flows_step(d, UINT64_MAX);
  return v;
}

bool Stack::dump_flows_step(FlowDump& d, uint64_t budget) const {
  std::vector<FlowInfo>& v = *d.out;
  auto match = [&](const FlowKey4& k, TcpState s) {
    if (d.state_filter >= 0 && int(s) != d.state_filter) return false;
    if (d.addr_filter && k.raddr != d.addr_filter && k.laddr != d.addr_filter) return false;
    return true;
  };
  auto add = [&](const FlowKey4& k, TcpState s) {
    FlowInfo fi{k, s};
    if (flow::is_v6(k)) {
      fi.v6 = true;
      fi.l6 = addr6_.addr(k.laddr);
      fi.r6 = addr6_.addr(k.raddr);
    }
    v.push_back(fi);
  };
  // A TCB never rests in TIME-WAIT (it becomes a record): that listing
  // starts with the records.
  if (!d.in_time_wait && d.state_filter == int(TcpState::TimeWait)) d.next_slot = pool_.capacity();
  if (!d.in_time_wait) {
    for (; d.next_slot < pool_.capacity() && v.size() < d.max; d.next_slot++) {
      if (!budget) return false;
      budget--;
      d.examined++;
      if (!pool_.in_use(d.next_slot)) continue;
      const Flow& f = pool_[d.next_slot];
      if (match(f.key, f.tcb.state)) add(f.key, f.tcb.state);
    }
    if (v.size() >= d.max || (d.state_filter >= 0 && d.state_filter != int(TcpState::TimeWait))) return true;
    d.in_time_wait = true;
    d.next_record = tw_.first();
    d.departed_at = tw_.departed();
    d.walked = 0;
  }
  // The walk's place is gone when more records left the head since it
  // began than it has walked past (they leave in FIFO order).
  if (tw_.departed() - d.departed_at > d.walked) {
    d.cut = true;
    return true;
  }
  for (uint32_t i = d.next_record; i != flow::TimeWaitTable::kNil && v.size() < d.max;
       i = tw_.after(i), d.walked++) {
    if (!budget) {
      d.next_record = i;
      return false;
    }
    budget--;
    d.examined++;
    if (tw_.live(i) && match(tw_[i].key, TcpState::TimeWait)) add(tw_[i].key, TcpState::TimeWait);
  }
  return true;
}

size_t Stack::memory_bytes() const {
  return size_t(pool_.capacity()) * sizeof(Flow) + table_.memory_bytes() + tw_.memory_bytes() +
         size_t(wheel_.capacity()) * timer::Wheel32::kNodeBytes + size_t(chunks_.capacity()) * tcp::ChunkPool::kChunk +
         size_t(chunks_.queues_capacity()) * sizeof(tcp::FlowQueues);
}

bool Stack::check_invariants() const {
  uint32_t live = 0;
  std::array<int64_t, tcp::kStateCount> per_state{};
  for (uint32_t i = 0; i < pool_.capacity(); i++) {
    if (!pool_.in_use(i)) continue;
    live++;
    const Flow& f = pool_[i];
    per_state[size_t(f.tcb.state)]++;
    if (!tcp::check_invariants(f.tcb, chunks_)) return false;
    if (!wheel_.armed(i) && !(f.pending & kPendOpen)) return false;
    // Between events every holder of queue headers is on record (memory
    // reclaim finds the flows holding chunks through it).
    if (f.tcb.q != tcp::kNil && chunks_.queues(f.tcb.q).owner != i) return false;
  }
  if (live + tw_.size() != table_.size()) return false;
  // The gauges agree with a recount: one TCB per state count, one record per
  // TIME-WAIT count.
  per_state[size_t(TcpState::TimeWait)] += tw_.size();
  for (size_t st = size_t(TcpState::SynSent); st < tcp::kStateCount; st++)
    if (per_state[st] != st_.states[st]) return false;
  return table_.check_invariants([&](uint32_t ref) { return ref_hash(ref); });
}

void Stack::clear_all() {
  for (uint32_t i = 0; i < pool_.capacity(); i++) {
    if (!pool_.in_use(i)) continue;
    tcp::Env e = env();
    tcp::release(pool_[i].tcb, e);
    tcp::set_state(pool_[i].tcb, TcpState::Closed, st_);
    free_flow(i);
  }
  tw_.expire(uint32_t(now_) + 0x7fffffffu, 0xffffffffu, [&](uint32_t ti) { tw_gone(ti); });
}

std::string FlowInfo::local() const {
  return (v6 ? "[" + wire::ip6_to_string(l6) + "]" : wire::ip_to_string(key.laddr)) + ":" + std::to_string(key.lport);
}
std::string FlowInfo::remote() const {
  return (v6 ? "[" + wire::ip6_to_string(r6) + "]" : wire::ip_to_string(key.raddr)) + ":" + std::to_string(key.rport);
}

// ---------------------------------------------------------------- Stream ---
// Operations on the scope's owner go into its output; on another flow they
// touch it, so that it gets its own event after the owner's.
namespace {
constexpr uint32_t kDead = 0xffffffffu;
}

FlowRef Stream::ref() const { return valid() ? stack().ref_of(flow_) : FlowRef{}; }
Stream Stream::other(FlowRef r) const {
  return Stream(*scope_, stack().live(r) ? r.slot : kDead);
}
FlowRef Stream::connect(const FlowKey4& key, App* app, uint32_t syn_timeout_ms) {
  return stack().open_deferred(key, app, syn_timeout_ms);
}
bool Stream::timed_out() const {
  return flow_ == scope_->owner() && (scope_->out().events & tcp::ev::TimedOut);
}
void Stream::settle() const {
  if (scope_->out().held_len) stack().keep_held(scope_->owner(), scope_->out());
}
size_t Stream::peek(uint8_t* dst, size_t n, size_t offset) const {
  size_t have = readable();
  if (offset >= have) return 0;
  n = std::min(n, have - offset);
  size_t done = 0;
  if (size_t h = held(); offset < h) {  // the held bytes come first
    done = std::min(n, h - offset);
    std::memcpy(dst, scope_->out().held + offset, done);
    offset = 0;
  } else {
    offset -= h;
  }
  if (done < n)
    tcp::bq_copy_out(tcp::queues(stack().flow_at(flow_).tcb, stack().chunks()).rcv, stack().chunks(), offset,
                     dst + done, n - done);
  return n;
}
void Stream::consume(size_t n) {
  if (uint32_t h = held()) {  // (the owner's, so no touch; an abort drops them)
    tcp::Env e = stack().env();
    tcp::consume_held(stack().flow_at(flow_).tcb, std::min<size_t>(n, h), e, scope_->out());
    if (n <= h) return;
    n -= h;
  }
  if (!readable()) return;
  tcp::Env e = stack().env();
  tcp::consume(stack().flow_at(flow_).tcb, n, e);
  if (flow_ != scope_->owner()) stack().touch(flow_);
}
size_t Stream::send_space() const {
  if (!alive()) return 0;
  tcp::Env e = stack().env();
  // What a send() would leave after it keeps the owner's held bytes.
  if (uint32_t h = scope_->out().held_len) e.reserved_chunks = tcp::chunks_for(h);
  const tcp::Tcb& t = stack().flow_at(flow_).tcb;
  size_t n = tcp::send_space(t, e);
  // Limited by the lcore's chunk pool, not by the flow's own send buffer:
  // the flow may have nothing in flight to bring an on_writable, so ask to
  // be woken when chunks free up.
  uint32_t queued = tcp::queues(t, e.chunks).snd.len;
  size_t own = e.cfg.snd_buf > queued ? e.cfg.snd_buf - queued : 0;
  if (n < own && tcp::can_send(t.state)) stack().starved(flow_);
  return n;
}
size_t Stream::send(std::span<const uint8_t> data) { return queue_send(data, false); }
size_t Stream::send_lent(std::span<const uint8_t> data) { return queue_send(data, true); }
size_t Stream::queue_send(std::span<const uint8_t> data, bool lent) {
  if (!alive()) return 0;
  settle();
  tcp::Env e = stack().env();
  tcp::Tcb& t = stack().flow_at(flow_).tcb;
  size_t n = lent ? tcp::send_lent(t, data, e) : tcp::send(t, data, e);
  if (n && flow_ != scope_->owner()) stack().touch(flow_);
  return n;
}
bool Stream::send_before_splice(std::span<const uint8_t> data) {
  if (!can_send()) return false;
  settle();
  tcp::Tcb& t = stack().flow_at(flow_).tcb;
  tcp::Env e = stack().env();
  if (!tcp::bq_put_before_splice(tcp::queues_w(t, e.chunks).snd, e.chunks, data.data(), data.size()))
    return false;
  if (flow_ != scope_->owner()) stack().touch(flow_);
  return true;
}
size_t Stream::forward_to_send(size_t n) {
  if (!alive()) return 0;
  settle();
  if (!alive()) return 0;
  tcp::Tcb& t = stack().flow_at(flow_).tcb;
  const tcp::ByteQueue& rcvq = tcp::queues(t, stack().chunks()).rcv;
  n = std::min({n, size_t(rcvq.len), send_space()});
  if (!n) return 0;
  size_t moved = 0;
  tcp::Env e = stack().env();
  tcp::bq_for_each(rcvq, stack().chunks(), 0, n, [&](std::span<const uint8_t> piece) {
    moved += tcp::send(t, piece, e);
  });
  tcp::consume(t, moved, e);
  if (moved && flow_ != scope_->owner()) stack().touch(flow_);
  return moved;
}
size_t Stream::splice_to(Stream& to, size_t n) {
  if (!valid() || !to.alive() || to.flow_ == flow_) return 0;
  settle();
  if (!valid() || !to.alive()) return 0;
  tcp::Env e = stack().env();
  if (readable() == 0) {
    if (alive()) tcp::splice(stack().flow_at(flow_).tcb, stack().flow_at(to.flow_).tcb, 0, e);  // lets an idle seam go
    return 0;
  }
  // A flow ending gracefully hands over all it holds (no more will come, and
  // the bytes are already counted against the bound); else `to`'s send
  // space limits the move (back-pressure).
  size_t moved = tcp::splice(stack().flow_at(flow_).tcb, stack().flow_at(to.flow_).tcb, n, e, !alive());
  if (!moved) {
    // The destination is full: wake this flow's application when chunks
    // free up if the pool (not the destination's own bound) is the limit.
    (void)to.send_space();
    return 0;
  }
  if (flow_ != scope_->owner()) stack().touch(flow_);
  if (to.flow_ != scope_->owner()) stack().touch(to.flow_);
  return moved;
}
void Stream::shutdown() {
  if (!alive()) return;
  tcp::Env e = stack().env();
  tcp::shutdown_send(stack().flow_at(flow_).tcb, e);
  if (flow_ != scope_->owner()) stack().touch(flow_);
}
void Stream::close() {
  if (!alive()) return;
  if (flow_ != scope_->owner()) {
    stack().touch(flow_, Stack::kPendClose);
    return;
  }
  settle();  // unread bytes make it an RST (tcp::close)
  if (!alive()) return;
  tcp::Env e = stack().env();
  tcp::close(stack().flow_at(flow_).tcb, e, scope_->out());
}
void Stream::abort() {
  if (!alive()) return;
  if (flow_ != scope_->owner()) {
    stack().touch(flow_, Stack::kPendAbort);
    return;
  }
  scope_->out().held_len = 0;  // discarded with the queue
  tcp::Env e = stack().env();
  tcp::abort(stack().flow_at(flow_).tcb, e, scope_->out());
}

}  // namespace tcpterm::stack
