// The data plane.  Path of a packet: rte_eth_rx_burst -> Worker::rx_burst
// (Ethernet, ARP, IPv4, ICMP handled here; TCP parsed and batched) ->
// Stack::input_burst (staged lookup, state machine, applications) ->
// Worker::tcp_out (mbuf built, checksums by NIC or software) ->
// rte_eth_tx_buffer -> flushed once per loop iteration.
#include "dp/dataplane.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>
#include <rte_eth_ring.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "dp/rss.h"
#include "wire/wire.h"

namespace tcpterm::dp {

namespace {
constexpr uint16_t kRxDesc = 1024, kTxDesc = 1024;
constexpr unsigned kPoolCache = 256;

int worker_main(void* arg) { return static_cast<Worker*>(arg)->run(); }

void tx_drop_cb(rte_mbuf** pkts, uint16_t unsent, void* userdata) {
  *static_cast<uint64_t*>(userdata) += unsent;
  for (uint16_t i = 0; i < unsent; i++) rte_pktmbuf_free(pkts[i]);
}

wire::Mac to_mac(const rte_ether_addr& a) {
  wire::Mac m;
  std::memcpy(m.data(), a.addr_bytes, 6);
  return m;
}
}  // namespace

// ================================================================ Worker ===
Worker::Worker(Dataplane& dp, unsigned lcore, uint16_t queue, rte_mempool* pool)
    : dp_(dp), lcore_(lcore), queue_(queue), pool_(pool), neigh_(kNeighbors) {
  uint64_t now_ms = rte_get_tsc_cycles() / dp.tsc_per_ms();
  stack::StackConfig cfg = dp.stack_config();
  cfg.iss_k0 ^= uint64_t(lcore) * 0x9E3779B97F4A7C15ull;
  stack_ = std::make_unique<stack::Stack>(cfg, *this, now_ms);
  apps_.reserve(256);
}

bool Worker::init_tx() {
  for (size_t p = txbuf_.size(); p < dp_.ports().size(); p++) {
    auto* b = static_cast<rte_eth_dev_tx_buffer*>(
        rte_zmalloc_socket("txbuf", RTE_ETH_TX_BUFFER_SIZE(kBurst), 0, rte_lcore_to_socket_id(lcore_)));
    if (!b) return false;
    rte_eth_tx_buffer_init(b, kBurst);
    rte_eth_tx_buffer_set_err_callback(b, tx_drop_cb, &c_.tx_dropped);
    txbuf_.push_back(b);
  }
  return true;
}

Worker::~Worker() {
  for (auto* b : txbuf_) rte_free(b);
}

void Worker::flush_tx() {
  for (uint16_t p = 0; p < txbuf_.size(); p++) rte_eth_tx_buffer_flush(p, queue_, txbuf_[p]);
}

int Worker::run() {
  const uint64_t per_ms = dp_.tsc_per_ms();
  const uint32_t sleep_us = dp_.idle_sleep_us();
  const uint16_t nports = uint16_t(dp_.ports().size());
  rte_mbuf* pkts[kBurst];
  while (!dp_.stopping()) {
    uint64_t t0 = rte_rdtsc();
    stack_->set_time(t0 / per_ms);  // one clock read per iteration
    bool work = false;
    for (uint16_t p = 0; p < nports; p++) {
      uint16_t n = rte_eth_rx_burst(p, queue_, pkts, kBurst);
      if (n) {
        work = true;
        rx_burst(p, pkts, n);
      }
    }
    stack_->advance(t0 / per_ms);
    if (gen_) gen_->tick(*stack_, t0 / per_ms, t0, per_ms / 1000);
    flush_tx();
    Request* r;
    while (requests.pop(r)) {
      execute(*r);
      replies.push(r);
    }
    uint64_t t1 = rte_rdtsc();
    c_.iterations++;
    c_.total_cycles += t1 - t0;
    if (work) c_.busy_cycles += t1 - t0;
    else if (sleep_us) rte_delay_us_sleep(sleep_us);
  }
  flush_tx();
  return 0;
}

void Worker::learn(uint32_t ip, const rte_ether_addr& mac) {
  Neighbor& n = neigh_[flow::mix32(ip) & (kNeighbors - 1)];
  // Called for every received packet: write only when something changed.
  if (n.ip == ip && rte_is_same_ether_addr(&n.mac, &mac)) return;
  n.ip = ip;
  n.mac = mac;
}

const rte_ether_addr* Worker::neighbor(uint32_t ip) const {
  const Neighbor& n = neigh_[flow::mix32(ip) & (kNeighbors - 1)];
  return n.ip == ip ? &n.mac : nullptr;
}

void Worker::send_frame(uint16_t port, rte_mbuf* m) {
  c_.tx_packets++;
  c_.tx_bytes += m->pkt_len;
  rte_eth_tx_buffer(port, queue_, txbuf_[port], m);
}

void Worker::rx_burst(uint16_t port, rte_mbuf** pkts, uint16_t n) {
  wire::Ipv4Repr ips[kBurst];
  wire::TcpRepr segs[kBurst];
  rte_mbuf* held[kBurst];
  unsigned k = 0;
  auto& drops = stack_->stats().drops;
  const PortInfo& pi = dp_.ports()[port];
  // Stage 0: prefetch every frame's headers, so the first touch of packet
  // memory (often written by another core or the NIC) overlaps.
  for (uint16_t i = 0; i < n; i++) rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void*));
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    c_.rx_packets++;
    c_.rx_bytes += m->pkt_len;
    if (m->nb_segs != 1) {
      c_.rx_multiseg++;
      rte_pktmbuf_free(m);
      continue;
    }
    const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
    std::span<const uint8_t> frame(d, m->data_len);
    wire::EthRepr eth;
    wire::Drop why = wire::parse_eth(frame, eth);
    if (why != wire::Drop::None) {
      drops[size_t(why)]++;
      rte_pktmbuf_free(m);
      continue;
    }
    rte_ether_addr src;
    std::memcpy(src.addr_bytes, eth.src.data(), 6);
    bool to_us = std::memcmp(eth.dst.data(), pi.mac.addr_bytes, 6) == 0 || eth.dst == wire::kBroadcastMac;
    if (!to_us) {
      c_.not_for_us++;
      rte_pktmbuf_free(m);
      continue;
    }
    auto l3 = frame.subspan(wire::kEthHdrLen);
    if (eth.ethertype == wire::kEtherTypeArp) {
      handle_arp(port, l3.data(), l3.size());
      rte_pktmbuf_free(m);
      continue;
    }
    if (eth.ethertype != wire::kEtherTypeIpv4) {
      drops[size_t(wire::Drop::EthType)]++;
      rte_pktmbuf_free(m);
      continue;
    }
    uint64_t ipf = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
    uint64_t l4f = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
    wire::Ipv4Repr ip;
    why = ipf == RTE_MBUF_F_RX_IP_CKSUM_BAD ? wire::Drop::Ipv4Checksum
                                            : wire::parse_ipv4(l3, ip, ipf == RTE_MBUF_F_RX_IP_CKSUM_GOOD);
    if (why == wire::Drop::None && !dp_.owns(port, ip.dst)) {
      c_.not_for_us++;
      rte_pktmbuf_free(m);
      continue;
    }
    if (why == wire::Drop::None) {
      learn(ip.src, src);
      auto l4 = l3.subspan(ip.hdr_len, ip.payload_len);
      if (ip.proto == wire::kProtoIcmp) {
        handle_icmp(port, src, ip, l4);
        rte_pktmbuf_free(m);
        continue;
      }
      if (ip.proto != wire::kProtoTcp) {
        why = wire::Drop::Ipv4Proto;
      } else if (l4f == RTE_MBUF_F_RX_L4_CKSUM_BAD) {
        why = wire::Drop::TcpChecksum;
      } else {
        why = wire::parse_tcp(l4, segs[k], &ip, l4f == RTE_MBUF_F_RX_L4_CKSUM_GOOD);
        if (why == wire::Drop::None) {
          ips[k] = ip;
          held[k++] = m;
          continue;
        }
      }
    }
    drops[size_t(why)]++;
    rte_pktmbuf_free(m);
  }
  if (k) stack_->input_burst(ips, segs, k);
  rte_pktmbuf_free_bulk(held, k);
}

void Worker::handle_arp(uint16_t port, const uint8_t* data, size_t len) {
  wire::ArpRepr a;
  wire::Drop why = wire::parse_arp({data, len}, a);
  if (why != wire::Drop::None) {
    stack_->stats().drops[size_t(why)]++;
    return;
  }
  rte_ether_addr sha;
  std::memcpy(sha.addr_bytes, a.sha.data(), 6);
  if (a.spa) learn(a.spa, sha);
  if (a.op != wire::ArpOp::Request || !dp_.owns(port, a.tpa)) return;
  c_.arp_requests_in++;
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (!m) {
    c_.tx_nombuf++;
    return;
  }
  uint8_t* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, wire::kEthHdrLen + wire::kArpLen));
  const PortInfo& pi = dp_.ports()[port];
  wire::emit_eth(d, {a.sha, to_mac(pi.mac), wire::kEtherTypeArp});
  wire::ArpRepr r{wire::ArpOp::Reply, to_mac(pi.mac), a.sha, a.tpa, a.spa};
  wire::emit_arp(d + wire::kEthHdrLen, r);
  c_.arp_replies_out++;
  send_frame(port, m);
}

void Worker::handle_icmp(uint16_t port, const rte_ether_addr& peer, const wire::Ipv4Repr& ip,
                         std::span<const uint8_t> l4) {
  wire::IcmpEchoRepr e;
  wire::Drop why = wire::parse_icmp_echo(l4, e);
  if (why != wire::Drop::None || e.type != 8) {
    stack_->stats().drops[size_t(why == wire::Drop::None ? wire::Drop::IcmpType : why)]++;
    return;
  }
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (!m) {
    c_.tx_nombuf++;
    return;
  }
  size_t total = wire::kEthHdrLen + wire::kIpv4MinHdr + wire::kIcmpHdrLen + e.data.size();
  uint8_t* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(total)));
  if (!d) {
    rte_pktmbuf_free(m);
    return;
  }
  const PortInfo& pi = dp_.ports()[port];
  wire::emit_eth(d, {to_mac(peer), to_mac(pi.mac), wire::kEtherTypeIpv4});
  wire::Ipv4Repr r;
  r.src = ip.dst;
  r.dst = ip.src;
  r.proto = wire::kProtoIcmp;
  r.id = ip_id_++;
  r.payload_len = uint16_t(wire::kIcmpHdrLen + e.data.size());
  wire::emit_ipv4(d + wire::kEthHdrLen, r);
  wire::IcmpEchoRepr reply{0, e.ident, e.seq, e.data};
  wire::emit_icmp_echo(d + wire::kEthHdrLen + wire::kIpv4MinHdr, reply);
  c_.icmp_echo_replies++;
  send_frame(port, m);
}

void Worker::tcp_out(const flow::FlowKey4& key, const wire::TcpRepr& h, const stack::Payload& p) {
  int port = dp_.port_of(key.laddr);
  if (port < 0) {
    c_.tx_no_neighbor++;
    return;
  }
  const PortInfo& pinfo = dp_.ports()[port];
  const rte_ether_addr* mac = pinfo.has_peer_mac ? &pinfo.peer_mac : neighbor(key.raddr);
  if (!mac) {
    // Unknown neighbour (an active open): ask, at most once per ms per
    // address; the segment is dropped and its retransmission finds the answer.
    c_.tx_no_neighbor++;
    uint64_t now = stack_->now();
    if (now == last_arp_ms_ && last_arp_ip_ == key.raddr) return;
    last_arp_ms_ = now;
    last_arp_ip_ = key.raddr;
    rte_mbuf* a = rte_pktmbuf_alloc(pool_);
    if (!a) {
      c_.tx_nombuf++;
      return;
    }
    uint8_t* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(a, wire::kEthHdrLen + wire::kArpLen));
    wire::emit_eth(d, {wire::kBroadcastMac, to_mac(pinfo.mac), wire::kEtherTypeArp});
    wire::emit_arp(d + wire::kEthHdrLen, {wire::ArpOp::Request, to_mac(pinfo.mac), {}, key.laddr, key.raddr});
    c_.arp_requests_out++;
    send_frame(uint16_t(port), a);
    return;
  }
  rte_mbuf* m = rte_pktmbuf_alloc(pool_);
  if (!m) {
    c_.tx_nombuf++;
    return;
  }
  size_t hl = wire::tcp_header_len(h);
  size_t total = wire::kEthHdrLen + wire::kIpv4MinHdr + hl + p.len;
  uint8_t* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, uint16_t(total)));
  if (!d) {
    c_.tx_nombuf++;
    rte_pktmbuf_free(m);
    return;
  }
  const PortInfo& pi = pinfo;
  wire::emit_eth(d, {to_mac(*mac), to_mac(pi.mac), wire::kEtherTypeIpv4});
  wire::Ipv4Repr ip;
  ip.src = key.laddr;
  ip.dst = key.raddr;
  ip.proto = wire::kProtoTcp;
  ip.id = ip_id_++;
  ip.payload_len = uint16_t(hl + p.len);
  uint8_t* l3 = d + wire::kEthHdrLen;
  uint8_t* l4 = l3 + wire::kIpv4MinHdr;
  p.copy_to(l4 + hl);
  bool offload = pi.tx_ip_cksum && pi.tx_tcp_cksum;
  wire::emit_ipv4(l3, ip, !offload);
  if (offload) {
    wire::emit_tcp_header(l4, h, nullptr, p.len);
    m->l2_len = wire::kEthHdrLen;
    m->l3_len = wire::kIpv4MinHdr;
    m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM;
    uint16_t ph = rte_ipv4_phdr_cksum(reinterpret_cast<const rte_ipv4_hdr*>(l3), m->ol_flags);
    std::memcpy(l4 + 16, &ph, 2);
  } else {
    wire::emit_tcp_header(l4, h, &ip, p.len);
  }
  send_frame(uint16_t(port), m);
}

void Worker::execute(Request& r) {
  stack::Stack& s = *stack_;
  switch (r.kind) {
    case Request::Kind::Snapshot: {
      r.tcp = s.tcp_stats();
      r.sst = s.stats();
      r.wc = c_;
      r.flows = s.flows();
      r.time_wait = s.time_wait_records();
      r.time_wait_cap = s.time_wait().capacity();
      r.chunks_in_use = s.chunks().in_use();
      r.wheel = s.wheel().occupancy();
      r.memory = s.memory_bytes();
      r.syncookies_engaged = s.syncookies_engaged();
      r.has_generator = gen_ != nullptr;
      if (gen_) r.gen = gen_->stats();
      break;
    }
    case Request::Kind::DumpFlows:
      r.dump = s.dump_flows(r.max, r.state_filter, r.addr_filter);
      break;
    case Request::Kind::SetMsl:
      s.tcp_config().msl_ms = r.value;
      break;
    case Request::Kind::SetFinWait2:
      s.tcp_config().fin_wait_2_timeout_ms = r.value;
      break;
    case Request::Kind::SetIdle:
      s.tcp_config().idle_timeout_ms = r.value;
      break;
    case Request::Kind::SetSyncookies:
      s.set_syncookies(stack::SynCookieMode(r.value));
      break;
    case Request::Kind::Listen:
      r.ok = s.add_listener(r.addr, r.port, r.app.get());
      if (r.ok) apps_.push_back(std::move(r.app));
      break;
    case Request::Kind::Unlisten:
      // The App object stays alive: existing flows still use it.
      r.ok = s.remove_listener(r.addr, r.port);
      break;
    case Request::Kind::ClearTcp:
      s.clear_stats();
      c_ = WorkerCounters{};
      if (gen_) {
        uint64_t active = gen_->stats().active;
        gen_->stats() = apps::GeneratorStats{};
        gen_->stats().active = active;
      }
      break;
  }
}

// ============================================================= Dataplane ===
Dataplane::Dataplane(const config::Options& o) : opts_(o) {
  scfg_.max_flows = o.max_flows;
  scfg_.max_time_wait = o.max_time_wait;
  scfg_.chunks = o.buffer_chunks;
  scfg_.ooo_states = std::max<uint32_t>(64, o.max_flows / 16);
  scfg_.tcp.msl_ms = o.msl_ms;
  scfg_.tcp.fin_wait_2_timeout_ms = o.fin_wait_2_timeout_ms;
  scfg_.tcp.idle_timeout_ms = o.idle_timeout_ms;
  scfg_.tcp.orphan_retries = uint8_t(o.orphan_retries);
  scfg_.tcp.synack_retries = uint8_t(o.synack_retries);
  scfg_.syn_backlog = o.syn_backlog;
  scfg_.syncookies = o.syncookies == "on"    ? stack::SynCookieMode::On
                     : o.syncookies == "off" ? stack::SynCookieMode::Off
                                             : stack::SynCookieMode::Auto;
  scfg_.tcp.tw_rst = o.rfc1337 ? tcp::TwRstPolicy::Ignore : tcp::TwRstPolicy::Close;
  scfg_.tcp.tw_cap_policy = o.tw_recycle_oldest ? tcp::TwCapPolicy::RecycleOldest : tcp::TwCapPolicy::Skip;
}

Dataplane::~Dataplane() = default;

int Dataplane::port_of(uint32_t addr) const {
  for (const PortInfo& p : ports_)
    for (const auto& a : p.addrs)
      if (a.contains(addr)) return p.id;
  return -1;
}

bool Dataplane::owns(uint16_t port, uint32_t addr) const {
  for (const auto& a : ports_[port].addrs)
    if (a.contains(addr)) return true;
  return false;
}

// Two ring ports, A (the generator's side) and B (the terminator's), joined
// crosswise so that what worker q sends on one port is received by worker
// n-1-q on the other: with two workers, the generator on worker 1 talks to
// the terminator on worker 0, each on its own lcore.
bool Dataplane::create_ring_pair(std::string& err) {
  unsigned n = unsigned(workers_.size());
  std::vector<rte_ring*> a2b(n), b2a(n);
  for (unsigned q = 0; q < n; q++) {
    std::string an = "tt_a2b_" + std::to_string(q), bn = "tt_b2a_" + std::to_string(q);
    a2b[q] = rte_ring_create(an.c_str(), 4096, int(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
    b2a[q] = rte_ring_create(bn.c_str(), 4096, int(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!a2b[q] || !b2a[q]) {
      err = "cannot create the ring pair's rings: " + std::string(rte_strerror(rte_errno));
      return false;
    }
  }
  std::vector<rte_ring*> a_rx(n), a_tx(n), b_rx(n), b_tx(n);
  for (unsigned q = 0; q < n; q++) {
    a_tx[q] = a2b[q];
    b_rx[q] = a2b[n - 1 - q];
    b_tx[q] = b2a[q];
    a_rx[q] = b2a[n - 1 - q];
  }
  if (rte_eth_from_rings("tt_ring_a", a_rx.data(), n, a_tx.data(), n, rte_socket_id()) < 0 ||
      rte_eth_from_rings("tt_ring_b", b_rx.data(), n, b_tx.data(), n, rte_socket_id()) < 0) {
    err = "cannot create the ring pair ports: " + std::string(rte_strerror(rte_errno));
    return false;
  }
  return true;
}

bool Dataplane::init_port(uint16_t port, std::string& err) {
  PortInfo pi;
  pi.id = port;
  pi.queues = uint16_t(workers_.empty() ? rte_lcore_count() - 1 : workers_.size());
  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) {
    err = "port " + std::to_string(port) + ": rte_eth_dev_info_get failed: " + rte_strerror(-rc);
    return false;
  }
  pi.driver = info.driver_name ? info.driver_name : "?";
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(port, name);
  pi.name = name;
  if (pi.queues > info.max_rx_queues || pi.queues > info.max_tx_queues) {
    err = "port " + std::to_string(port) + " (" + pi.driver + ") has " +
          std::to_string(info.max_rx_queues) + " rx queues, " + std::to_string(pi.queues) +
          " workers need one each";
    return false;
  }
  rte_eth_conf conf{};
  if (pi.queues > 1 && info.flow_type_rss_offloads) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf =
        (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP) & info.flow_type_rss_offloads;
    pi.rss = conf.rx_adv_conf.rss_conf.rss_hf != 0;
  }
  // Enable an offload only when the device reports it.
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
    pi.rx_ip_cksum = true;
  }
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) {
    conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
    pi.rx_tcp_cksum = true;
  }
  if ((info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) &&
      (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_TCP_CKSUM)) {
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
    pi.tx_ip_cksum = pi.tx_tcp_cksum = true;
  }
  if (int rc = rte_eth_dev_configure(port, pi.queues, pi.queues, &conf); rc != 0) {
    err = "port " + std::to_string(port) + ": configure failed: " + rte_strerror(-rc);
    return false;
  }
  uint16_t nrx = kRxDesc, ntx = kTxDesc;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx); rc != 0) {
    err = "port " + std::to_string(port) + ": descriptor counts refused: " + rte_strerror(-rc);
    return false;
  }
  pi.socket = rte_eth_dev_socket_id(port);
  if (pi.socket < 0) pi.socket = 0;
  rte_eth_rxconf rxc = info.default_rxconf;
  rxc.offloads = conf.rxmode.offloads;
  rte_eth_txconf txc = info.default_txconf;
  txc.offloads = conf.txmode.offloads;
  for (uint16_t q = 0; q < pi.queues; q++) {
    unsigned lc = workers_[q]->lcore();
    int sock = int(rte_lcore_to_socket_id(lc));
    rte_mempool* pool = pools_[size_t(sock) < pools_.size() && pools_[size_t(sock)] ? sock : 0];
    if (rte_eth_rx_queue_setup(port, q, nrx, unsigned(pi.socket), &rxc, pool) < 0 ||
        rte_eth_tx_queue_setup(port, q, ntx, unsigned(pi.socket), &txc) < 0) {
      err = "port " + std::to_string(port) + ": queue " + std::to_string(q) + " setup failed";
      return false;
    }
  }
  if (int rc = rte_eth_dev_start(port); rc != 0) {
    err = "port " + std::to_string(port) + ": start failed: " + rte_strerror(-rc);
    return false;
  }
  rte_eth_macaddr_get(port, &pi.mac);
  for (const auto& a : opts_.addrs)
    if (a.port == port) pi.addrs.push_back(a);
  ports_.push_back(pi);
  return true;
}

bool Dataplane::init(std::string& err) {
  tsc_per_ms_ = std::max<uint64_t>(1, rte_get_tsc_hz() / 1000);
  std::vector<unsigned> lcores;
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) lcores.push_back(lc);
  if (lcores.empty()) {
    err = "no worker lcore: give EAL at least two, e.g. -l 0,1 (the main lcore runs the CLI)";
    return false;
  }
  if (opts_.ring_pair && lcores.size() < 2) {
    err = "--ring-pair needs two worker lcores (generator and terminator), e.g. --lcores 0@0,1@1,2@0";
    return false;
  }
  uint16_t nports = uint16_t(rte_eth_dev_count_avail() + (opts_.ring_pair ? 2 : 0));
  if (nports == 0) {
    err = "no Ethernet ports: add a device, e.g. --vdev net_tap0,iface=tt0";
    return false;
  }
  for (const auto& a : opts_.addrs)
    if (a.port >= nports) {
      err = "--addr: port " + std::to_string(a.port) + " does not exist (" + std::to_string(nports) + " ports)";
      return false;
    }
  // One mbuf pool per NUMA socket in use.
  unsigned per_queue = kRxDesc + kTxDesc + 2 * kBurst + kPoolCache;
  unsigned n = std::max(8191u, nports * unsigned(lcores.size()) * per_queue + 4096) ;
  for (unsigned l : lcores) {
    unsigned sock = rte_lcore_to_socket_id(l);
    if (pools_.size() <= sock) pools_.resize(sock + 1, nullptr);
    if (pools_[sock]) continue;
    std::string name = "tcpterm_mbuf_s" + std::to_string(sock);
    pools_[sock] = rte_pktmbuf_pool_create(name.c_str(), n, kPoolCache, 0,
                                           RTE_MBUF_DEFAULT_BUF_SIZE, int(sock));
    if (!pools_[sock]) {
      err = "cannot create mbuf pool on socket " + std::to_string(sock) + ": " + rte_strerror(rte_errno);
      return false;
    }
  }
  for (size_t q = 0; q < lcores.size(); q++) {
    unsigned sock = rte_lcore_to_socket_id(lcores[q]);
    workers_.push_back(std::make_unique<Worker>(*this, lcores[q], uint16_t(q), pools_[sock]));
  }
  if (opts_.ring_pair && !create_ring_pair(err)) return false;
  for (uint16_t p = 0; p < nports; p++)
    if (!init_port(p, err)) return false;
  for (auto& w : workers_)
    if (!w->init_tx()) {
      err = "cannot allocate TX buffers";
      return false;
    }
  if (opts_.ring_pair) {
    // The last two ports are the pair: each one's peer is the other.
    PortInfo& a = ports_[nports - 2];
    PortInfo& b = ports_[nports - 1];
    a.has_peer_mac = b.has_peer_mac = true;
    a.peer_mac = b.mac;
    b.peer_mac = a.mac;
  }
  // The client role runs on the last worker (with --ring-pair: the one whose
  // queue the pair joins to the terminator on worker 0).
  for (const auto& c : opts_.connects) {
    apps::GeneratorConfig g;
    g.dst = c.addr;
    g.dport = c.port;
    g.src = {{c.src_first, c.src_last}};
    g.port_lo = c.sport_lo;
    g.port_hi = c.sport_hi;
    g.rate = c.rate;
    g.concurrency = c.concurrency;
    g.count = c.count;
    g.duration_ms = c.duration_ms;
    g.request_bytes = c.request;
    apps::parse_close_mode(c.close, g.mode);
    // With RSS over several queues, keep only source ports whose replies the
    // NIC steers back to the generator's own queue (Toeplitz, rte_softrss).
    int gp = port_of(c.src_first);
    if (gp >= 0 && ports_[size_t(gp)].rss && ports_[size_t(gp)].queues > 1) {
      rte_eth_dev_info info;
      rte_eth_dev_info_get(uint16_t(gp), &info);
      std::vector<uint8_t> key(info.hash_key_size ? info.hash_key_size : 40);
      rte_eth_rss_conf rc{};
      rc.rss_key = key.data();
      rc.rss_key_len = uint8_t(key.size());
      std::vector<uint16_t> reta(info.reta_size ? info.reta_size : 128);
      std::vector<rte_eth_rss_reta_entry64> conf((reta.size() + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE);
      for (auto& e : conf) e.mask = ~0ull;
      if (rte_eth_dev_rss_hash_conf_get(uint16_t(gp), &rc) == 0 &&
          rte_eth_dev_rss_reta_query(uint16_t(gp), conf.data(), uint16_t(reta.size())) == 0) {
        for (size_t i = 0; i < reta.size(); i++)
          reta[i] = conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
        auto steer = std::make_shared<RssSteer>(key, reta);
        uint16_t own = workers_.back()->queue();
        uint32_t dst = c.addr;
        uint16_t dport = c.port;
        g.accept = [steer, own, dst, dport](uint32_t src, uint16_t sport) {
          return steer->queue(dst, src, dport, sport) == own;  // the reply's tuple
        };
      }
    }
    workers_.back()->set_generator(std::make_unique<apps::Generator>(g));
  }
  // Listeners: one application object per listener per worker.
  for (const auto& l : opts_.listens) {
    for (auto& w : workers_) {
      std::string e;
      auto app = apps::make_app(l.app, l.params, e);
      if (!app) {
        err = e;
        return false;
      }
      w->stack().add_listener(l.addr, l.port, app.get());
      w->add_app(std::move(app));
    }
  }
  return true;
}

void Dataplane::start() {
  if (running_) return;
  stop_.store(false);
  for (auto& w : workers_) rte_eal_remote_launch(worker_main, w.get(), w->lcore());
  running_ = true;
}

void Dataplane::stop() {
  if (!running_) return;
  stop_.store(true);
  for (auto& w : workers_) rte_eal_wait_lcore(w->lcore());
  running_ = false;
}

bool Dataplane::query(const std::vector<Request*>& per_worker, unsigned timeout_ms) {
  std::lock_guard<std::mutex> lock(query_mu_);
  if (!running_) {
    for (size_t i = 0; i < workers_.size(); i++) workers_[i]->execute(*per_worker[i]);
    return true;
  }
  for (size_t i = 0; i < workers_.size(); i++)
    while (!workers_[i]->requests.push(per_worker[i])) std::this_thread::sleep_for(std::chrono::microseconds(50));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t got = 0;
  std::vector<bool> done(workers_.size(), false);
  while (got < workers_.size()) {
    for (size_t i = 0; i < workers_.size(); i++) {
      Request* r;
      if (!done[i] && workers_[i]->replies.pop(r)) {
        done[i] = true;
        got++;
      }
    }
    if (got == workers_.size()) break;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

std::string Dataplane::shutdown(bool& leak) {
  stop();
  size_t flows = 0, tw = 0;
  for (auto& w : workers_) {
    flows += w->stack().flows();
    tw += w->stack().time_wait_records();
    w->stack().clear_all();
    w->flush_tx();
  }
  // Frames still in flight (in RX rings, or between the ring pair's ports)
  // go back to their pool before the ports close.  Bounded: some PMDs
  // (net_null) never run dry; the pair's rings hold at most 4096 each.
  constexpr int kDrainBursts = 4096 / int(kBurst) + 1;
  for (const PortInfo& p : ports_)
    for (uint16_t q = 0; q < p.queues; q++) {
      rte_mbuf* pk[kBurst];
      for (int b = 0; b < kDrainBursts; b++) {
        uint16_t got = rte_eth_rx_burst(p.id, q, pk, kBurst);
        if (!got) break;
        rte_pktmbuf_free_bulk(pk, got);
      }
    }
  for (const PortInfo& p : ports_) {
    rte_eth_dev_stop(p.id);
    rte_eth_dev_close(p.id);
  }
  workers_.clear();  // frees TX buffers
  std::string s = "shutdown: released " + std::to_string(flows) + " flows and " +
                  std::to_string(tw) + " TIME-WAIT records";
  leak = false;
  for (rte_mempool* mp : pools_) {
    if (!mp) continue;
    unsigned in_use = rte_mempool_in_use_count(mp);
    s += "; mbufs: " + std::to_string(mp->size - in_use) + "/" + std::to_string(mp->size) +
         " back in " + mp->name;
    if (in_use) leak = true;
    rte_mempool_free(mp);
  }
  pools_.clear();
  return s;
}

}  // namespace tcpterm::dp
