// lib/dp: the only DPDK-heavy library, along the packet's path (as l3fwd):
//   port.cc     ports, pools, workers and listeners; start / stop / shutdown
//   worker.cc   the lcore loop, RX parsing (Ethernet, ARP, IPv4, ICMP), and
//               control requests executed between bursts
//   tx.cc       every frame is built here: alloc_frame() serves ARP, ICMP
//               and TCP; next hops, routes and ARP resolution for sends
//   control.cc  the control channel (requests matched to replies by sequence)
//   neighbor.h  next hops, neighbour cache, routes (pure, unit-tested)
//
// Memory and threads: the main lcore owns the Dataplane object and runs the
// CLI; each worker lcore owns one Worker (its Stack, TX buffers, neighbour
// cache and counters) and is the only writer of it while running.  The CLI
// reaches a running worker only through its request queue (Boost.Lockfree
// spsc_queue) and reads results from the request object the worker hands
// back; a worker never waits for the CLI.  When workers are stopped, the main
// lcore executes requests itself.
#pragma once
#include <rte_ether.h>

#include <array>
#include <atomic>
#include <boost/lockfree/spsc_queue.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "apps/apps.h"
#include "apps/generator.h"
#include "config/options.h"
#include "dp/admission.h"
#include "dp/neighbor.h"
#include "dp/rss.h"
#include "lb/balancer.h"
#include "stack/stack.h"

struct rte_mempool;
struct rte_mbuf;
struct rte_ring;
struct rte_eth_dev_tx_buffer;

namespace tcpterm::dp {

inline constexpr unsigned kBurst = 64;  // frames per rte_eth_rx_burst (docs/benchmarks.md, eighth pass)
inline constexpr unsigned kInbox = 4096;  // software steering's ring per lcore

#define TCPTERM_WORKER_COUNTERS(X)                                                       \
  X(rx_packets) X(rx_bytes) X(tx_packets) X(tx_bytes) X(tx_nombuf) X(tx_dropped)         \
  X(tx_no_neighbor) X(tx_no_route) X(arp_requests_in) X(arp_replies_out) X(icmp_echo_replies) \
  X(not_for_us) X(rx_multiseg) X(rx_martian) X(arp_requests_out) X(arp_not_on_link)          \
  X(nexthop_table_full) X(arp_held) X(arp_held_sent) X(arp_held_dropped) X(iterations) X(busy_iterations) X(busy_cycles) \
  X(total_cycles) X(rx_ipv6) X(nd_solicitations_in) X(nd_advertisements_out) X(nd_solicitations_out) X(nd_advertisements_in) X(nd_bad_hop_limit) X(nd_not_on_link) \
  X(icmp6_echo_replies) X(icmp6_packet_too_big) X(icmp6_ignored) X(nd_dad_probes_for_ours) \
  X(syn_dropped_overload) X(overload_entered) X(steered_out) X(steered_in) X(steer_fanout) X(steer_dropped)

struct alignas(64) WorkerCounters {
#define X(n) uint64_t n = 0;
  TCPTERM_WORKER_COUNTERS(X)
#undef X
  template <class F>
  void for_each(F&& f) const {
#define X(n) f(std::string_view(#n), n);
    TCPTERM_WORKER_COUNTERS(X)
#undef X
  }
};

struct PortInfo {
  uint16_t id = 0;
  std::string name, driver;
  rte_ether_addr mac{};
  int socket = 0;
  uint16_t queues = 0;
  bool rx_ip_cksum = false, rx_tcp_cksum = false, tx_ip_cksum = false, tx_tcp_cksum = false;
  bool rss = false;
  // Software steering (dp/rss.h): set on a multi-queue port whose queue
  // choice cannot be predicted; each frame goes to the lcore its tuple names.
  std::shared_ptr<RssSteer> sw_steer;
  bool has_peer_mac = false;  // a point-to-point link (the ring pair): no ARP needed
  // An in-memory link (the ring pair with --ring-cksum offload): a frame
  // never leaves this process's memory, so, as Linux's veth does, its
  // checksums travel as offload requests (tx_*_cksum set) and the frame is
  // received as one whose integrity is known (offload.h, virtual_wire_rx).
  bool virtual_wire = false;
  rte_ether_addr peer_mac{};
  std::vector<config::AddrSpec> addrs;
  std::vector<config::Addr6Spec> addrs6;
};

// A control-plane request, executed by a worker between bursts.  Its
// sequence number matches the reply to the query that sent it (control.cc).
struct Request {
  enum class Kind { Snapshot, DumpFlows, SetMsl, SetFinWait2, SetIdle, SetSyncookies, Listen, Unlisten,
                    ClearTcp, Stall, PoolAdd, PoolDel, PoolDrain, Pools };
  Kind kind = Kind::Snapshot;
  uint64_t seq = 0;
  uint32_t value = 0;
  uint32_t addr = 0;
  uint16_t port = 0;
  int state_filter = -1;
  uint32_t addr_filter = 0;
  size_t max = 20;
  std::unique_ptr<stack::App> app;  // Listen: built by the CLI, owned by the worker after
  std::string pool;                 // Pool*: the pool's name; Listen: the proxy's pool
  lb::BackendConf backend;          // Pool*: the backend (weight in value)
  bool v6 = false;                  // Listen, Unlisten: an IPv6 address (addr6)
  wire::Ip6 addr6{};
  std::string err;                  // a refused request says why
  // Results.
  bool ok = true;
  tcp::Stats tcp;
  stack::StackStats sst;
  WorkerCounters wc;
  uint32_t flows = 0, time_wait = 0, time_wait_cap = 0, chunks_in_use = 0, chunks_high_water = 0;
  uint64_t longest_poll_us = 0;  // the worker's longest poll since start or `clear tcp stats`
  std::array<size_t, 7> wheel{};
  bool has_generator = false;
  apps::GeneratorStats gen;
  size_t memory = 0;
  uint32_t nexthops = 0, nexthop_refs = 0, neighbors = 0;
  uint32_t addr6_held = 0;  // IPv6 addresses held by flows, records and listeners
  bool syncookies_engaged = false;
  std::vector<stack::FlowInfo> dump;
  stack::FlowDump listing;      // DumpFlows: its progress (examined, cut) into `dump`
  unsigned dump_steps = 0;      // DumpFlows: polls it took (one step each)
  std::vector<lb::PoolSnapshot> pools;        // Pools
  std::vector<lb::BackendSnapshot> backends;  // Pools
};

class Dataplane;

class Worker final : public stack::TxSink {
 public:
  Worker(Dataplane& dp, unsigned lcore, uint16_t queue, rte_mempool* pool);
  ~Worker() override;
  // Builds the stack (flow table, TCB pool, wheel, TIME-WAIT records, chunk
  // pool).  Called on the worker's own lcore, so that first touch places its
  // memory on the lcore's NUMA socket.
  void build(const stack::StackConfig& cfg);
  unsigned lcore() const { return lcore_; }
  uint16_t queue() const { return queue_; }
  int socket() const { return socket_; }
  int built_on_lcore() const { return built_on_; }
  const stack::StackConfig& dp_config() const;
  stack::Stack& stack() { return *stack_; }
  const WorkerCounters& counters() const { return c_; }

  int run();  // the lcore loop, until Dataplane::stop()
  // Frees frames still waiting for ARP (shutdown).
  void drop_held() { expire_held(0, true); }
  void execute(Request& r);  // a control request (worker thread, or main when stopped)
  // A flow listing (Request::Kind::DumpFlows) from the request's max and
  // filters, then its steps: true when done.
  static constexpr uint64_t kDumpStep = 8192;  // slots and records per poll (tens of µs)
  static void begin_dump(Request& r);
  bool step_dump(Request& r, uint64_t budget = kDumpStep);
  void flush_tx();
  bool init_tx();  // one TX buffer per port, once ports exist
  void add_app(std::unique_ptr<stack::App> app) { apps_.push_back(std::move(app)); }
  void set_generator(std::unique_ptr<apps::Generator> g) {
    gen_ = g.get();
    apps_.push_back(std::move(g));
  }
  apps::Generator* generator() { return gen_; }
  lb::Balancer* balancer() { return bal_.get(); }
  void set_balancer(std::unique_ptr<lb::Balancer> b) { bal_ = std::move(b); }

  boost::lockfree::spsc_queue<Request*, boost::lockfree::capacity<64>> requests, replies;

  // Software steering (dp/rss.h): frames other lcores received for this
  // lcore's flows, and their copies of ARP replies and Neighbor
  // Advertisements (every lcore keeps its own neighbour cache).
  void set_inbox(rte_ring* r) { inbox_ = r; }
  rte_ring* inbox() const { return inbox_; }

  // stack::TxSink (tx.cc)
  void tcp_out(const flow::FlowKey4& key, uint32_t nh, const wire::TcpRepr& h,
               const stack::Payload& p) override;
  uint32_t nh_acquire(uint32_t nh) override;
  void nh_release(uint32_t nh) override;
  uint32_t nh_resolve(const flow::FlowKey4& key) override;
  const NextHops& nexthops() const { return nexthops_; }

 private:
  void rx_burst(uint16_t port, rte_mbuf** pkts, uint16_t n);
  // Software steering: hands the burst's frames owned by other lcores to
  // them; returns how many stay (compacted at the front of pkts).
  uint16_t steer(const PortInfo& pi, rte_mbuf** pkts, uint16_t n);
  void hand_to(uint16_t worker, rte_mbuf* m);
  void rx_inbox(rte_mbuf** pkts);
  rte_ring* inbox_ = nullptr;
  void handle_arp(uint16_t port, const uint8_t* data, size_t len);
  void handle_icmp(uint16_t port, uint32_t nh, const wire::Ipv4Repr& ip, std::span<const uint8_t> l4);
  // An IPv6 frame (after Ethernet): ND, ICMPv6, or a TCP segment for the
  // stack (ipv6.cc).
  // True when it leaves a TCP segment in (ip, seg, nh) for the burst (the
  // caller keeps the frame until the stack has read it, then releases nh).
  bool rx_ipv6(uint16_t port, const wire::EthRepr& eth, std::span<const uint8_t> l3, uint64_t ol_flags,
               wire::Ipv6Repr& ip, wire::TcpRepr& seg, uint32_t& nh);
  void handle_icmp6(uint16_t port, const wire::EthRepr& eth, const wire::Ipv6Repr& ip, std::span<const uint8_t> l4);
  // A Neighbor Solicitation for `target` from `src` (ours), to its
  // solicited-node group (RFC 4861 7.2.2).
  void nd_solicit(uint16_t port, const wire::Ip6& src, const wire::Ip6& target);
  // Where a frame from src to dst goes (IPv6): as resolve().
  bool resolve6(const wire::Ip6& src, const wire::Ip6& dst, uint16_t& port, wire::Mac& mac,
                bool* pending = nullptr, wire::Ip6* pending_hop = nullptr);
  // An IPv6 frame (ip's addresses, proto and payload_len set):
  // Ethernet filled and the header emitted; `l4` at the payload.
  rte_mbuf* alloc_ipv6(uint16_t port, const wire::Mac& mac, const wire::Ipv6Repr& ip, uint8_t*& l4);
  void tcp_out6(const flow::FlowKey4& key, uint32_t nh, const wire::TcpRepr& h, const stack::Payload& p);
  // tx.cc: one place builds frames.  Returns the mbuf with Ethernet filled
  // and `l3` pointing at l3_len writable bytes after it; null (counted) when
  // the pool is dry.
  rte_mbuf* alloc_frame(uint16_t port, const wire::Mac& dst, uint16_t ethertype, size_t l3_len, uint8_t*& l3);
  void send_frame(uint16_t port, rte_mbuf* m);
  void arp_request(uint16_t port, uint32_t src_ip, uint32_t target);
  // Where a frame to `dst` goes: port and MAC, by route and neighbour
  // cache; false (counted, an ARP request sent when due) when unknown.
  bool resolve(uint32_t src, uint32_t dst, uint16_t& port, wire::Mac& mac, uint32_t* pending_hop = nullptr);
  // The same for a sender that may hold a next hop: nh when it has one.
  bool out_hop(uint32_t nh, uint32_t src, uint32_t dst, uint16_t& port, wire::Mac& mac,
               uint32_t* pending_hop = nullptr);
  // An IPv4 frame for `ip` (src, dst, proto, payload_len set; the id is
  // drawn here): Ethernet filled, l3 at the header still to be emitted.
  rte_mbuf* alloc_ipv4(uint16_t port, const wire::Mac& mac, wire::Ipv4Repr& ip, uint8_t*& l3);
  // Frames waiting for an ARP answer (Linux's unres_qlen): at most
  // kHeldPerHop per next hop and kHeldMax in all, sent when the answer is
  // learned, dropped (counted) after kHeldMs or when the worker stops.
  static constexpr size_t kHeldMax = 256, kHeldPerHop = 4;
  static constexpr uint64_t kHeldMs = 1000;
  // A held frame's next hop: an IPv6 address, or an IPv4 one in its
  // IPv4-mapped form (wire::ip6_mapped).
  struct Held {
    rte_mbuf* m;
    wire::Ip6 hop;
    uint16_t port;
    uint64_t since;
  };
  std::vector<Held> held_;
  struct Rx6 {
    wire::Ipv6Repr ips[kBurst];
    wire::TcpRepr segs[kBurst];
    uint32_t nhs[kBurst];
  } rx6_;
  // The same for IPv4: members, so a burst does not zero 3 KiB of
  // representations that the parsers write whole (a memset per burst).
  struct Rx4 {
    wire::Ipv4Repr ips[kBurst];
    wire::TcpRepr segs[kBurst];
  } rx4_;
  void hold(uint16_t port, const wire::Ip6& hop, rte_mbuf* m);
  void release_held(const wire::Ip6& hop, const wire::Mac& mac);
  void expire_held(uint64_t now, bool all = false);

  // Admission control (dp/admission.h, --syn-admission on; off by
  // default, see docs/benchmarks.md 3f): while the receive queue is
  // backlogged, new SYNs beyond the credit finished flows earned are
  // dropped before any lookup (counted: syn_dropped_overload); the peers
  // retransmit their SYNs.  The client role backs off whatever the option:
  // while its own queue is backlogged the generator opens nothing
  // (gen_backoffs), so a stall never becomes a storm of new SYNs on top of
  // the replies it has not read.
  Backlog backlog_{kBurst};
  bool admission_ = false;
  void note_poll(uint16_t n) { c_.overload_entered += backlog_.note_poll(n); }
  bool refuse_syn(const wire::TcpRepr& t) {
    if (!admission_ || !t.syn() || t.has_ack() || !backlog_.refuse_syn()) return false;
    c_.syn_dropped_overload++;
    return true;
  }
  Dataplane& dp_;
  unsigned lcore_;
  uint16_t queue_;
  int socket_ = 0;
  int built_on_ = -1;
  rte_mempool* pool_;
  // Transmit mbufs are taken from the pool kStash at a time, and the lines
  // the next ones will be written at (the mbuf's two and the frame's first
  // two) are prefetched for writing kStashAhead frames early: a pool mbuf
  // was last written by the core that freed it (the peer, on a ring pair),
  // and a write to it otherwise stalls on that line's transfer.
  static constexpr unsigned kStash = 32, kStashAhead = 8;
  rte_mbuf* take_mbuf();
  void warm_mbuf(const rte_mbuf* m) const;
  // The device's offload lengths of a TCP frame (not on an in-memory link).
  static void set_tx_offload(rte_mbuf* m, const PortInfo& pi, uint64_t l2_len, uint64_t l3_len);
  void free_rx(rte_mbuf** ms, unsigned n);  // received frames back to their pool
  void drop_stash();  // back to the pool (on stop)
  rte_mbuf* stash_[kStash];
  unsigned stash_n_ = 0, stash_i_ = 0;
  size_t data_offset_;  // from an mbuf to its data (rte_pktmbuf_init's layout), the same for the whole pool
  std::unique_ptr<stack::Stack> stack_;
  std::vector<std::unique_ptr<stack::App>> apps_;
  std::vector<rte_eth_dev_tx_buffer*> txbuf_;
  NextHops nexthops_;
  NeighborCache neighbors_;
  NeighborCache6 neighbors6_;
  uint16_t ip_id_ = 0;
  apps::Generator* gen_ = nullptr;
  std::unique_ptr<lb::Balancer> bal_;  // pools and health checks (--pool); null without pools
  WorkerCounters c_;
  uint64_t longest_poll_ = 0;  // cycles of the longest poll since start or `clear tcp stats`
};

class Dataplane {
 public:
  explicit Dataplane(const config::Options& o);
  ~Dataplane();
  // After rte_eal_init: pools, ports, workers, listeners.  False + err on failure.
  bool init(std::string& err);
  void start();  // launch the workers
  void stop();   // ask them to return and wait
  bool running() const { return running_.load(); }
  bool stopping() const { return stop_.load(std::memory_order_relaxed); }
  // Stops everything, frees every flow, stops and closes ports, and checks
  // that every mbuf is back in its pool.  Returns a summary line.
  std::string shutdown(bool& leak);

  // Sends one request to every worker (or runs them itself when stopped)
  // and waits for all replies; empty when a worker did not answer within
  // timeout_ms.  The requests are owned by the control channel until their
  // replies come back: an abandoned one (timed out) is freed when its late
  // reply arrives or when the workers stop, never handed to another query.
  std::vector<std::unique_ptr<Request>> query(std::vector<std::unique_ptr<Request>> rs,
                                              unsigned timeout_ms = 2000);
  // One request per worker, prepared by `init(request, worker index)`.
  template <class Init>
  std::vector<std::unique_ptr<Request>> query_each(Init&& init, unsigned timeout_ms = 2000) {
    std::vector<std::unique_ptr<Request>> rs;
    for (size_t i = 0; i < workers_.size(); i++) {
      rs.push_back(std::make_unique<Request>());
      init(*rs.back(), i);
    }
    return query(std::move(rs), timeout_ms);
  }
  uint64_t abandoned_requests() const { return abandoned_total_; }
  std::vector<std::unique_ptr<Request>> query_all(Request::Kind kind, uint32_t value = 0) {
    return query_each([&](Request& r, size_t) {
      r.kind = kind;
      r.value = value;
    });
  }

  const config::Options& options() const { return opts_; }
  config::Options& options() { return opts_; }
  const std::vector<PortInfo>& ports() const { return ports_; }
  std::vector<std::unique_ptr<Worker>>& workers() { return workers_; }
  const std::vector<std::unique_ptr<Worker>>& workers() const { return workers_; }
  const stack::StackConfig& stack_config() const { return opts_.stack; }
  const Routes& routes() const { return routes_; }
  // Which port owns `addr` (-1: none); is `addr` owned on `port`?
  int port_of(uint32_t addr) const;
  int port_of6(const wire::Ip6& addr) const;
  bool owns6(uint16_t port, const wire::Ip6& addr) const;
  // Is `a` the solicited-node group of one of port's addresses?
  bool owns_solicited6(uint16_t port, const wire::Ip6& a) const;
  const Routes6& routes6() const { return routes6_; }
  // The appliance's IPv6 address on the port that reaches dst (by route).
  bool source_for6(const wire::Ip6& dst, wire::Ip6& out) const;
  // The appliance's address on the port that reaches dst (by route): the
  // default source of backend connections; 0 when nothing reaches it.
  uint32_t source_for(uint32_t dst) const;
  // Inline: asked twice for every IPv4 frame received.
  bool owns(uint16_t port, uint32_t addr) const {
    for (const auto& a : ports_[port].addrs)
      if (a.contains(addr)) return true;
    return false;
  }
  uint32_t idle_sleep_us() const { return opts_.idle_sleep_us; }
  uint64_t tsc_per_ms() const { return tsc_per_ms_; }
  std::vector<rte_mempool*>& pools() { return pools_; }

 private:
  bool init_port(uint16_t port, std::string& err);
  bool create_ring_pair(std::string& err);
  bool init_routes(std::string& err);
  bool init_balancers(std::string& err);
  // Which queue a reply lands on (the NIC's RSS), when the port spreads
  // over several queues; null when every reply reaches every worker's queue.
  std::shared_ptr<RssSteer> steer_for(int port) const;
  void size_time_wait();
  void drain_requests();  // control.cc: workers stopped, free what is left
  config::Options opts_;
  std::vector<PortInfo> ports_;
  std::vector<rte_mempool*> pools_;  // per NUMA socket
  std::vector<std::unique_ptr<Worker>> workers_;
  Routes routes_;
  Routes6 routes6_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  // The request queues are single-producer: the CLI and the telemetry
  // thread take turns (control plane only; workers never lock).  start(),
  // stop() and query() all hold this lock, so a query never races a stop.
  std::mutex query_mu_;
  uint64_t next_seq_ = 1;
  // Requests sent and not yet answered, by sequence number; those whose
  // query gave up are marked abandoned and freed when they come back.
  struct Pending {
    std::unique_ptr<Request> req;
    bool abandoned = false;
  };
  std::vector<std::vector<Pending>> pending_;  // per worker
  uint64_t abandoned_total_ = 0;
  uint64_t tsc_per_ms_ = 1;
};

inline const stack::StackConfig& Worker::dp_config() const { return dp_.stack_config(); }

}  // namespace tcpterm::dp
