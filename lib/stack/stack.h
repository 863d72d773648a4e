// The per-lcore TCP endpoint: flow table, TCB pool, timer wheel, TIME-WAIT
// records, listeners and applications, glued around the pure state machine.
//
// One Stack per worker lcore, single-threaded, no locks, no allocation after
// construction.  The edge (lib/dp, or a test) hands in parsed segments and
// the time; the stack hands segments out through a TxSink.  Memory per lcore
// is fixed at construction from StackConfig.
//
// Ownership: a flow's slot index (into the TCB pool) is also its timer id in
// the wheel; the flow table maps keys to refs that are either a slot index or
// kTwRef | record index.
//
// Next hops: every flow carries the edge's next-hop id, taken when the flow
// is created (for a passive open, the MAC its SYN arrived from; for an
// active open, the route's) and held (nh_acquire / nh_release) until the flow
// is freed, so timer-driven sends (RTO, delayed ACK, persist, FIN) reach the
// peer however many other peers come and go.  Replies that answer a segment
// (RST, SYN-ACK cookie, TIME-WAIT ACK) go back the way the segment came.
//
// Secrets (docs/security.md): the ISS key, the per-connection timestamp
// offsets, the SYN-cookie secrets and the flow-table hash seed are drawn
// from StackConfig::rng (getrandom) when the stack is built; the cookie
// secret is redrawn every cookie period.
//
// Gauges: per-state counts of TCBs change only in tcp::set_state(); the
// TIME-WAIT count decreases only in tw_gone().
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "flow/addr6.h"
#include "flow/key.h"
#include "flow/pool.h"
#include "flow/table.h"
#include "flow/time_wait.h"
#include "stack/stream.h"
#include "tcp/buffer.h"
#include "tcp/config.h"
#include "tcp/iss.h"
#include "tcp/random.h"
#include "tcp/stats.h"
#include "tcp/syncookie.h"
#include "tcp/tcp.h"
#include "timer/wheel.h"
#include "wire/wire.h"

namespace tcpterm::stack {

enum class SynCookieMode : uint8_t { Off, On, Auto };

struct StackConfig {
  tcp::Config tcp;
  // RFC 4987 SYN cookies: Auto engages when SYN-RECEIVED reaches syn_backlog
  // or fewer than 1/16 of the TCB slots are free.
  SynCookieMode syncookies = SynCookieMode::Auto;
  // Defaults sized for the rate one lcore is rated for (about 700 000
  // lifecycles a second, docs/benchmarks.md): SYN-RECEIVED reaches
  // rate x handshake RTT, a few thousand at a few milliseconds, so cookies
  // engage only under a flood (or when 1/16 of the TCBs are left); the
  // table holds what lingers (orphans, slow peers) for a second at that
  // rate; buffer chunks are mapped lazily, so their cap costs nothing until
  // used (one request chunk per established flow, 65 536 of them).
  uint32_t syn_backlog = 16384;
  uint32_t max_flows = 262144;     // full TCBs per lcore
  uint32_t max_time_wait = 262144; // TIME-WAIT records per lcore
  uint32_t chunks = 65536;         // 2 KiB buffer chunks per lcore (128 MiB, mapped as used)
  uint32_t ooo_states = 4096;      // flows with out-of-order data at once
  // The flow table on transparent huge pages, committed when the stack is
  // built (--table-hugepages on): fewer TLB misses on its random lookups,
  // for an appliance that may hold its whole table's memory.
  bool table_hugepages = false;
  // --prefault on: the TIME-WAIT records committed when the stack is built
  // (on THP where offered), so no page fault lands on the data path.
  bool prefault = false;
  uint32_t tw_expire_budget = 8192; // records examined per advance()
  uint32_t reclaim_interval_ms = 100;  // memory reclaim scans at most this often (under pressure only)
  tcp::RandomFn rng = tcp::random_bytes;  // the source of every secret (tests may fix it)
};

// A next hop as the edge knows it (an index into its neighbour table);
// kNoNextHop: none yet, the edge resolves the route at send time.
inline constexpr uint32_t kNoNextHop = 0xffffffffu;

// Stack-level counters (`show tcp stats` prints them after the TCP ones).
#define TCPTERM_STACK_COUNTERS(X)                                                       \
  X(flow_table_full) X(flow_alloc_failed) X(no_listener) X(rst_to_unknown)              \
  X(ack_to_listener) X(tw_hits) X(tw_reopen_failed) X(tw_restart_in_place) X(flows_opened) \
  X(flows_freed) X(connect_failed) X(syncookies_sent) X(syncookies_ok) X(syncookies_failed) \
  X(syncookie_rotations) X(mem_pressure_entered) X(mem_reclaim_scans) X(mem_reclaimed_orphans) \
  X(mem_reclaimed_stalled) X(mem_reclaimed_bytes) X(chunk_alloc_failures) X(addr6_table_full) \
  X(pmtu_lowered) X(pmtu_ignored) X(forgot_time_wait) X(forgot_segments)

struct StackStats {
#define X(n) uint64_t n = 0;
  TCPTERM_STACK_COUNTERS(X)
#undef X
  std::array<uint64_t, wire::kDropCount> drops{};  // malformed input by reason

  template <class F>
  void for_each_counter(F&& f) const {
#define X(n) f(std::string_view(#n), n);
    TCPTERM_STACK_COUNTERS(X)
#undef X
  }
  StackStats& operator+=(const StackStats& o) {
#define X(n) n += o.n;
    TCPTERM_STACK_COUNTERS(X)
#undef X
    for (size_t i = 0; i < drops.size(); i++) drops[i] += o.drops[i];
    return *this;
  }
};

// Payload bytes of an outgoing segment, copied by the sink.
struct Payload {
  const tcp::ChunkPool* pool = nullptr;
  const tcp::ByteQueue* queue = nullptr;
  uint32_t offset = 0, len = 0;
  // Lent bytes (tcp::send_lent): the payload is bytes[offset, offset + len),
  // not in the queue's chunks.
  const uint8_t* bytes = nullptr;
  void copy_to(uint8_t* dst) const {
    if (bytes) std::memcpy(dst, bytes + offset, len);
    else if (len) tcp::bq_copy_out(*queue, *pool, offset, dst, len);
  }
  // Copies and returns the bytes' one's-complement sum (wire::sum_bytes),
  // taken from the chunks as they are read: the checksum never reads the
  // frame back.
  uint32_t copy_to_sum(uint8_t* dst) const {
    if (bytes) {
      std::memcpy(dst, bytes + offset, len);
      return wire::sum_bytes(bytes + offset, len);
    }
    uint32_t acc = 0;
    size_t done = 0;
    if (len)
      tcp::bq_for_each(*queue, *pool, offset, len, [&](std::span<const uint8_t> piece) {
        std::memcpy(dst + done, piece.data(), piece.size());
        acc = wire::sum_more(acc, piece.data(), piece.size(), done);
        done += piece.size();
      });
    return acc;
  }
};

// The edge: builds and transmits an IPv4/TCP segment from (key, header,
// payload) towards next hop `nh` (kNoNextHop: the edge routes by address).
// Ports in `h` are already set from the key.  An IPv6 key (flow::is_v6)
// holds address ids: the edge reads the addresses with Stack::addr6().
class TxSink {
 public:
  virtual ~TxSink() = default;
  virtual void tcp_out(const flow::FlowKey4& key, uint32_t nh, const wire::TcpRepr& h,
                       const Payload& p) = 0;
  // A flow starts holding next hop nh (returns what the flow keeps).
  virtual uint32_t nh_acquire(uint32_t nh) { return nh; }
  // A flow stops holding it.
  virtual void nh_release(uint32_t) {}
  // A held next hop for a flow that has none (an active open), found by
  // route and neighbour cache; kNoNextHop while unresolved.
  virtual uint32_t nh_resolve(const flow::FlowKey4&) { return kNoNextHop; }
};

struct Listener {
  uint32_t addr = 0;  // 0: any owned address (both families); an IPv6 listener: its address id
  uint16_t port = 0;
  App* app = nullptr;
  uint64_t accepted = 0;
};

struct FlowInfo;
// A flow listing taken in steps: each Stack::dump_flows_step() examines at
// most a budget of flow slots and TIME-WAIT records, so a listing of tens
// of millions of records never stalls the lcore's packets for long (its
// worker takes one step per poll).  Flows that come and go between steps
// may be missed or listed twice: it is a live view.
struct FlowDump {
  size_t max = 20;
  int state_filter = -1;
  uint32_t addr_filter = 0;
  // Progress.
  uint32_t next_slot = 0;      // next flow slot to examine
  bool in_time_wait = false;   // the flow slots are done: walking the records
  uint32_t next_record = 0;    // the next record of the walk
  uint64_t walked = 0;         // records walked from the head
  uint64_t departed_at = 0;    // the table's departed() when the walk began
  bool cut = false;            // the walk's place left the FIFO under it: stopped early
  uint64_t examined = 0;       // slots and records examined, in all
  std::vector<FlowInfo>* out = nullptr;
};

struct FlowInfo {
  flow::FlowKey4 key;  // IPv4 addresses, or address ids of an IPv6 flow (then v6, l6, r6)
  tcp::TcpState state;
  bool v6 = false;
  wire::Ip6 l6{}, r6{};
  // "198.18.0.2:80" or "[2001:2::2]:80" (RFC 5952 6).
  std::string local() const;
  std::string remote() const;
};

// The owner of one event (see stream.h): the flow whose segment, timer or
// action it is, and the output collected for it.
class EventScope {
 public:
  EventScope(Stack& s, uint32_t owner, tcp::Out& out) : stack_(s), owner_(owner), out_(out) {}
  Stack& stack() const { return stack_; }
  uint32_t owner() const { return owner_; }
  tcp::Out& out() const { return out_; }

 private:
  Stack& stack_;
  uint32_t owner_;
  tcp::Out& out_;
};

class Stack {
 public:
  Stack(const StackConfig& cfg, TxSink& sink, uint64_t now_ms = 0);
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // ---- configuration --------------------------------------------------
  bool add_listener(uint32_t addr, uint16_t port, App* app);
  bool remove_listener(uint32_t addr, uint16_t port);
  // A listener on one IPv6 address (`::` is any address of both families).
  bool add_listener6(const wire::Ip6& addr, uint16_t port, App* app);
  bool remove_listener6(const wire::Ip6& addr, uint16_t port);
  const std::vector<Listener>& listeners() const { return listeners_; }
  tcp::Config& tcp_config() { return cfg_.tcp; }
  void set_syncookies(SynCookieMode m) { cfg_.syncookies = m; }
  bool syncookies_engaged() const;
  const StackConfig& config() const { return cfg_; }

  // ---- the data path --------------------------------------------------
  // Sets the clock (milliseconds, monotonic) without running timers.
  void set_time(uint64_t now_ms) { now_ = now_ms; }
  uint64_t now() const { return now_; }
  // One segment addressed to us (dst address already checked by the edge),
  // arrived from next hop `nh`.
  void input(const wire::Ipv4Repr& ip, const wire::TcpRepr& seg, uint32_t nh = kNoNextHop);
  // A burst: hashes, prefetch, staged lookup, then the state machine.  nhs
  // may be null (every segment from kNoNextHop).
  void input_burst(const wire::Ipv4Repr* ips, const wire::TcpRepr* segs, const uint32_t* nhs,
                   unsigned n);
  // One segment over IPv6 (dst owned, checked by the edge).
  void input6(const wire::Ipv6Repr& ip, const wire::TcpRepr& seg, uint32_t nh = kNoNextHop);
  // A burst over IPv6: address ids found, keys hashed and home buckets
  // prefetched first, then each segment as input6 (nhs may be null).
  void input6_burst(const wire::Ipv6Repr* ips, const wire::TcpRepr* segs, const uint32_t* nhs, unsigned n);
  // ICMPv6 Packet Too Big for a segment we sent (RFC 8201): `invoking` is
  // the start of our packet as quoted.  Lowers the flow's MSS to
  // mtu - 60, never below 1220 (the 1280 minimum MTU), when the quoted
  // sequence number is one we have sent and not had acknowledged (RFC
  // 5927 5.2); the smaller segments go out from the next retransmission.
  void packet_too_big6(std::span<const uint8_t> invoking, uint32_t mtu);
  // The address behind an IPv6 id of a key (flow::is_v6_id).
  const wire::Ip6& addr6(uint32_t id) const { return addr6_.addr(id); }
  const flow::Addr6Table& addr6_table() const { return addr6_; }
  // Runs due timers and expires TIME-WAIT records.
  void advance(uint64_t now_ms);
  // Earliest time advance() has work, as a lower bound (for idle sleeping).
  uint64_t next_event() const;

  // ---- the client role ------------------------------------------------
  // Active open from key.laddr:lport to key.raddr:rport (the next hop is
  // resolved by the edge); false if the key is in use or the table is full.
  bool connect(const flow::FlowKey4& key, App* app) { return open(key, app).valid(); }
  // The same, returning the new flow (invalid on failure); syn_timeout_ms
  // bounds the handshake.  From outside any callback (a callback uses
  // Stream::connect).
  FlowRef open(const flow::FlowKey4& key, App* app, uint32_t syn_timeout_ms = 0);
  // Whether a key is held by a flow or a TIME-WAIT record (source-port choice).
  bool in_use(const flow::FlowKey4& key);
  // Starts loading the flow-table bucket of a key a later lookup will need
  // (a client drawing its next tuples ahead).
  void prefetch_key(const flow::FlowKey4& key) const { table_.prefetch(hash(key)); }
  // An event of the application's own on flow r, from outside a callback
  // (a timer of its own, a control request): f(Stream&) runs in a scope
  // owned by r, then output goes out as for any event.  False if r is gone.
  template <class F>
  bool act(FlowRef r, F&& f) {
    if (!live(r)) return false;
    tcp::Out& out = *out_;
    out.reset();
    EventScope sc(*this, r.slot, out);
    Stream s(sc, r.slot);
    f(s);
    finish_event(r.slot, out);
    return true;
  }
  bool live(FlowRef r) const {
    return r.valid() && r.slot < pool_.capacity() && pool_.in_use(r.slot) && pool_.generation(r.slot) == r.gen;
  }
  FlowRef ref_of(uint32_t slot) const { return FlowRef{slot, pool_.generation(slot)}; }
  // The flow-table hash of a key (keyed with this stack's secret seed).
  uint32_t hash(const flow::FlowKey4& k) const { return flow::hash_key(k, hash_seed_); }
  // This stack's RFC 6528 ISS for a key at the current time (tests, tools).
  uint32_t iss_for(const flow::FlowKey4& k) const {
    return tcp::IssGenerator::iss(tuple_secret(k), now_ * 1000);
  }
  // A key for an IPv6 4-tuple, its ids held by the caller (release with
  // release_key6); false when the address table is full.
  bool key6(const wire::Ip6& l, uint16_t lport, const wire::Ip6& r, uint16_t rport, flow::FlowKey4& out);
  void release_key6(const flow::FlowKey4& k) {
    addr6_.release(k.laddr);
    addr6_.release(k.raddr);
  }

  // ---- observation ----------------------------------------------------
  const tcp::Stats& tcp_stats() const { return st_; }
  tcp::Stats& tcp_stats() { return st_; }
  const StackStats& stats() const { return sst_; }
  StackStats& stats() { return sst_; }
  void clear_stats();
  uint32_t flows() const { return pool_.size(); }
  uint32_t time_wait_records() const { return tw_.size(); }
  const flow::FlowTable& table() const { return table_; }
  const timer::Wheel32& wheel() const { return wheel_; }
  const flow::TimeWaitTable& time_wait() const { return tw_; }
  const tcp::ChunkPool& chunks() const { return chunks_; }
  // Up to max flows (TCBs, then TIME-WAIT records), optionally one state.
  std::vector<FlowInfo> dump_flows(size_t max, int state_filter = -1, uint32_t addr_filter = 0) const;
  // One step of a listing (FlowDump): at most `budget` slots and records
  // examined; true when the listing is complete.
  bool dump_flows_step(FlowDump& d, uint64_t budget) const;
  // Bytes of memory per structure, for `show tcp timewait` and benchmarks.
  size_t memory_bytes() const;
  // Full consistency check (tests, debug): every flow has a timer, table
  // and pools agree.  O(flows).
  bool check_invariants() const;
  // Frees every flow and record (shutdown); counts nothing.
  void clear_all();

  // ---- for Stream ------------------------------------------------------
  // Operations on a flow other than an event's owner, applied in its own
  // event right after the owner's (Flow::pending).
  enum Pending : uint8_t { kPendTouched = 1, kPendOpen = 2, kPendClose = 4, kPendAbort = 8 };
  // One established flow: 160 bytes (+ a 16-byte timer node and 9.1 bytes
  // of flow table).  The table hash is recomputed from the key when the
  // flow leaves (cheaper than 4 bytes per flow), the application is an
  // index, and the byte queues live outside the TCB while bytes are held.
  struct Flow {
    flow::FlowKey4 key;
    uint32_t app = 0;          // apps_[app] gets the events (0: none)
    AppState app_state;
    uint32_t nh = kNoNextHop;  // the edge's next hop, held while the flow lives
    uint8_t pending = 0;       // Pending bits
    uint8_t pad_ = 0;
    uint16_t open_timeout_ms = 0;  // kPendOpen: the handshake bound
    tcp::Tcb tcb;
  };
  static_assert(sizeof(Flow) == 160, "an established flow: 160 bytes");
  Flow& flow_at(uint32_t i) { return pool_[i]; }
  // What a dead Stream reads and writes (its key and app state): scratch.
  Flow& dead_flow() { return dead_; }
  const Flow& flow_at(uint32_t i) const { return pool_[i]; }
  tcp::Env env() { return tcp::Env{cfg_.tcp, st_, chunks_, ooo_, uint32_t(now_)}; }
  // A flow whose application found no buffer space because the chunk pool
  // ran dry: it gets on_writable again once chunks are free.
  void starved(uint32_t flow);
  // Flow `fi` was acted on from another flow's event: it gets an event of
  // its own (output, deferred close/abort/open, callbacks) after the owner's.
  void touch(uint32_t fi, uint8_t ops = kPendTouched);
  // The bytes flow `fi` holds in place in its event (out.held) into its
  // receive queue: the application is about to take buffer chunks (or left
  // them, finish_event).  False if the pool could not take them (it can, by
  // construction: tcp::keep_held) and the flow was aborted (RST): bytes
  // RCV.NXT covers can be neither kept nor received again.
  bool keep_held(uint32_t fi, tcp::Out& out);
  // An active open from within a callback: the flow exists at once, its SYN
  // goes out in its own event after the caller's.
  FlowRef open_deferred(const flow::FlowKey4& key, App* app, uint32_t syn_timeout_ms);

 private:
  static constexpr uint32_t kTwRef = 0x80000000u;

  uint32_t lookup(const flow::FlowKey4& key, uint32_t hash);
  void on_flow_segment(uint32_t fi, const wire::TcpRepr& seg);
  void on_time_wait_segment(uint32_t ti, const flow::FlowKey4& key, uint32_t hash,
                            const wire::TcpRepr& seg);
  void on_new_segment(const flow::FlowKey4& key, uint32_t hash, const wire::TcpRepr& seg,
                      uint32_t iss_override, bool has_iss);
  // An ACK to a listener: true when it returned a valid SYN cookie (the flow
  // is created and the segment processed).
  bool try_cookie(const flow::FlowKey4& key, uint32_t hash, App* app, const wire::TcpRepr& seg);
  // Allocates a flow slot and its table entry; kNoIndex (counted) when full.
  uint32_t open_flow(const flow::FlowKey4& key, uint32_t hash, App* app, uint32_t nh);
  // After the state machine ran for a flow: application events, output,
  // transmission, then the flow operation.
  void finish_event(uint32_t fi, tcp::Out& out);
  void deliver_events(uint32_t fi, tcp::Out& out);
  // Runs the events of touched flows until none is left (bounded per call;
  // what is left runs at the next advance()).
  void drain_touched();
  void flush_touched(uint32_t fi);
  std::vector<std::pair<uint32_t, uint32_t>> touched_;  // {slot, generation}
  size_t touched_head_ = 0;
  bool draining_ = false;
  void transmit(uint32_t fi, tcp::Out& out);
  void to_time_wait(uint32_t fi);
  void release_leftover(Flow& f);
  void free_flow(uint32_t fi);
  void rearm(uint32_t fi);
  void send_reply(const flow::FlowKey4& key, wire::TcpRepr h);
  // Flows name their application by index (Flow::app); apps live as long as
  // the worker that made them, so an index never dangles.
  uint32_t app_id(App* a);
  App* app_of(const Flow& f) const { return apps_[f.app]; }
  std::vector<App*> apps_{nullptr};
  App* last_app_ = nullptr;
  uint32_t last_app_id_ = 0;
  Listener* find_listener(uint32_t addr, uint16_t port);
  uint32_t ref_hash(uint32_t ref) const;
  // TIME-WAIT gauge: +1 in tcp::set_state() when a TCB enters TIME-WAIT
  // (its record inherits the count), -1 only here, when a record leaves (its
  // table entry is erased here; the caller kills or expires the record) or
  // when no record could be kept (ti == kNil).
  void tw_gone(uint32_t ti);
  // RFC 6528 F() over the true addresses (an IPv6 key's ids are looked up).
  tcp::TupleSecret tuple_secret(const flow::FlowKey4& k) const {
    if (flow::is_v6(k))
      return iss_.tuple6(addr6_.addr(k.laddr).data(), k.lport, addr6_.addr(k.raddr).data(), k.rport);
    return iss_.tuple(k.laddr, k.lport, k.raddr, k.rport);
  }
  uint32_t ts_offset(const flow::FlowKey4& k) const { return tuple_secret(k).ts_offset; }
  tcp::CookieTuple cookie_tuple(const flow::FlowKey4& k) const {
    if (flow::is_v6(k))
      return {addr6_.addr(k.laddr).data(), addr6_.addr(k.raddr).data(), 16, k.lport, k.rport};
    return {reinterpret_cast<const uint8_t*>(&k.laddr), reinterpret_cast<const uint8_t*>(&k.raddr), 4,
            k.lport, k.rport};
  }
  // Each holder of an IPv6 key holds its address ids (flow/addr6.h).
  void hold_key(const flow::FlowKey4& k) {
    if (flow::is_v6(k)) {
      addr6_.hold(k.laddr);
      addr6_.hold(k.raddr);
    }
  }
  void drop_key(const flow::FlowKey4& k) {
    if (flow::is_v6(k)) release_key6(k);
  }
  // Memory pressure: aborts orphans, then stalled flows, holding the most
  // chunks, until the pool is out of pressure.
  void reclaim_memory();
  uint64_t last_reclaim_ms_ = 0;
  uint64_t pressure_base_ = 0, alloc_fail_base_ = 0;
  uint64_t hash_seed_ = 0;
  uint32_t cur_nh_ = kNoNextHop;  // next hop of the segment being processed

  StackConfig cfg_;
  TxSink& sink_;
  uint64_t now_;
  tcp::Stats st_;
  StackStats sst_;
  tcp::ChunkPool chunks_;
  tcp::OooPool ooo_;
  flow::SlotPool<Flow> pool_;
  flow::FlowTable table_;
  flow::TimeWaitTable tw_;
  flow::Addr6Table addr6_;
  timer::Wheel32 wheel_;
  tcp::IssGenerator iss_;
  tcp::SynCookies cookies_;
  uint64_t last_cookie_ms_ = 0;  // when we last sent one (0: never)
  std::vector<Listener> listeners_;
  // Flows waiting for buffer chunks, as {slot, generation}; bounded by the
  // flow capacity and retried in advance() while chunks are free.
  std::vector<std::pair<uint32_t, uint32_t>> starved_;
  size_t starved_head_ = 0;
  void retry_starved();
  std::unique_ptr<tcp::Out> out_;  // scratch, reused for every event
  Flow dead_;
};

// ------------------------------------------- Stream's accessors, inline ---
// (called several times per event by every application)
inline Stack& Stream::stack() const { return scope_->stack(); }
inline const flow::FlowKey4& Stream::key() const {
  return valid() ? stack().flow_at(flow_).key : stack().dead_flow().key;
}
inline AppState& Stream::app() {
  return valid() ? stack().flow_at(flow_).app_state : stack().dead_flow().app_state;
}
inline bool Stream::alive() const {
  if (!valid()) return false;
  const Stack::Flow& f = stack().flow_at(flow_);
  tcp::TcpState s = f.tcb.state;
  return s != tcp::TcpState::Closed && s != tcp::TcpState::TimeWait && !(f.pending & Stack::kPendAbort);
}
inline bool Stream::can_send() const {
  if (!alive()) return false;
  const tcp::Tcb& t = stack().flow_at(flow_).tcb;
  return tcp::can_send(t.state) && !t.has(tcp::kFinQueued);
}
inline bool Stream::peer_closed() const {
  if (!valid()) return true;
  tcp::TcpState s = stack().flow_at(flow_).tcb.state;
  return s == tcp::TcpState::CloseWait || s == tcp::TcpState::LastAck || s == tcp::TcpState::Closing ||
         s == tcp::TcpState::TimeWait;
}
// Readable while alive, and in the event that ends a flow gracefully (its
// last bytes); never after.
inline uint32_t Stream::held() const { return flow_ == scope_->owner() ? scope_->out().held_len : 0; }
inline size_t Stream::readable() const {
  if (!valid() || (stack().flow_at(flow_).pending & Stack::kPendAbort)) return 0;
  return tcp::queues(stack().flow_at(flow_).tcb, stack().chunks()).rcv.len + held();
}
inline std::span<const uint8_t> Stream::view() const {
  size_t n = readable();
  if (!n) return {};
  if (uint32_t h = held()) return {scope_->out().held, h};
  const tcp::ByteQueue& q = tcp::queues(stack().flow_at(flow_).tcb, stack().chunks()).rcv;
  return {stack().chunks().data(q.head) + q.off, std::min<size_t>(n, tcp::ChunkPool::kChunk - q.off)};
}
inline std::span<const uint8_t> Stream::peek_view(uint8_t* buf, size_t n) const {
  std::span<const uint8_t> in = view();
  if (in.size() >= n) return in.first(n);
  return {buf, peek(buf, n)};
}

}  // namespace tcpterm::stack
