// The send path: every frame the appliance emits is built by alloc_frame()
// (ARP, ICMP and TCP alike), and every destination MAC comes from a next hop
// (a flow's, held since it was created) or from the route and the neighbour
// cache (active opens before their first reply, ARP, ICMP).
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <cstring>

#include "dp/dataplane.h"
#include "wire/wire.h"

namespace tcpterm::dp {

namespace {
wire::Mac to_mac(const rte_ether_addr& a) {
  wire::Mac m;
  std::memcpy(m.data(), a.addr_bytes, 6);
  return m;
}
}  // namespace

void Worker::warm_mbuf(const rte_mbuf* m) const {
  // The addresses follow from the mbuf's own: nothing of it is read here.
  // The mbuf's second line is not among them: take_mbuf() does not write it.
  const char* p = reinterpret_cast<const char*>(m);
#if defined(__x86_64__)
  asm volatile("prefetchw %0" ::"m"(*p));
  asm volatile("prefetchw %0" ::"m"(*(p + data_offset_)));
  asm volatile("prefetchw %0" ::"m"(*(p + data_offset_ + RTE_CACHE_LINE_SIZE)));
#else
  __builtin_prefetch(p, 1, 3);
  __builtin_prefetch(p + data_offset_, 1, 3);
  __builtin_prefetch(p + data_offset_ + RTE_CACHE_LINE_SIZE, 1, 3);
#endif
}

rte_mbuf* Worker::take_mbuf() {
  if (stash_i_ == stash_n_) {
    stash_i_ = stash_n_ = 0;
    if (rte_mempool_get_bulk(pool_, reinterpret_cast<void**>(stash_), kStash) != 0)
      return rte_pktmbuf_alloc(pool_);  // fewer than kStash left: one at a time
    stash_n_ = kStash;
    for (unsigned k = 0; k < kStashAhead; k++) warm_mbuf(stash_[k]);
  }
  rte_mbuf* m = stash_[stash_i_++];
  if (stash_i_ + kStashAhead - 1 < stash_n_) warm_mbuf(stash_[stash_i_ + kStashAhead - 1]);
  // As rte_pktmbuf_reset(), but only the fields of the mbuf's first line.
  // A pool mbuf has refcnt 1, one segment and no next (DPDK's invariant for
  // a free mbuf, which free_rx() keeps); tx_offload, the second line's
  // other field, is written whole by set_tx_offload() when a device will
  // read it.  So a frame on the ring pair never writes the second line, and
  // that line does not travel between the pair's two cores with every frame.
  m->pkt_len = 0;
  m->data_len = 0;
  m->vlan_tci = 0;
  m->vlan_tci_outer = 0;
  m->nb_segs = 1;
  m->port = RTE_MBUF_PORT_INVALID;
  m->ol_flags &= RTE_MBUF_F_EXTERNAL;
  m->packet_type = 0;
  rte_pktmbuf_reset_headroom(m);
  return m;
}

void Worker::set_tx_offload(rte_mbuf* m, const PortInfo& pi, uint64_t l2_len, uint64_t l3_len) {
  // The in-memory link reads only the flags (virtual_wire_rx); a device
  // reads the lengths, and no stale bit of an earlier use may reach it.
  if (!pi.virtual_wire) m->tx_offload = rte_mbuf_tx_offload(l2_len, l3_len, 0, 0, 0, 0, 0);
}

// Received frames back to their pool.  What rx_burst queues is one segment,
// direct and held once, all read from the mbuf's first line; such a frame
// goes straight back to its pool, in runs per pool, as rte_pktmbuf_free_bulk
// would put it but without reading `next` in the second line (NULL for a
// single segment: DPDK's invariant), which on a ring pair the sending core
// wrote last.  Anything else takes rte_pktmbuf_free().
void Worker::free_rx(rte_mbuf** ms, unsigned n) {
  void* run[kBurst];
  unsigned k = 0;
  rte_mempool* pool = nullptr;
  for (unsigned i = 0; i < n; i++) {
    rte_mbuf* m = ms[i];
    if (rte_mbuf_refcnt_read(m) != 1 || !RTE_MBUF_DIRECT(m) || m->nb_segs != 1) {
      rte_pktmbuf_free(m);
      continue;
    }
    if (m->pool != pool || k == kBurst) {
      if (k) rte_mempool_put_bulk(pool, run, k);
      pool = m->pool;
      k = 0;
    }
    run[k++] = m;
  }
  if (k) rte_mempool_put_bulk(pool, run, k);
}

void Worker::drop_stash() {
  if (stash_i_ < stash_n_)
    rte_mempool_put_bulk(pool_, reinterpret_cast<void**>(stash_ + stash_i_), stash_n_ - stash_i_);
  stash_i_ = stash_n_ = 0;
}

rte_mbuf* Worker::alloc_frame(uint16_t port, const wire::Mac& dst, uint16_t ethertype, size_t l3_len,
                              uint8_t*& l3) {
  rte_mbuf* m = take_mbuf();
  if (!m) {
    c_.tx_nombuf++;
    return nullptr;
  }
  // rte_pktmbuf_append() without its walk to the last segment (a read of
  // `next`, the second line): a fresh mbuf is its own last segment.
  const size_t len = wire::kEthHdrLen + l3_len;
  if (len > rte_pktmbuf_tailroom(m)) {
    c_.tx_nombuf++;
    rte_pktmbuf_free(m);
    return nullptr;
  }
  uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
  m->data_len = uint16_t(len);
  m->pkt_len = uint32_t(len);
  wire::emit_eth(d, {dst, to_mac(dp_.ports()[port].mac), ethertype});
  l3 = d + wire::kEthHdrLen;
  return m;
}

void Worker::send_frame(uint16_t port, rte_mbuf* m) {
  c_.tx_packets++;
  c_.tx_bytes += m->pkt_len;
  rte_eth_tx_buffer(port, queue_, txbuf_[port], m);
}

void Worker::arp_request(uint16_t port, uint32_t src_ip, uint32_t target) {
  uint8_t* l3;
  rte_mbuf* m = alloc_frame(port, wire::kBroadcastMac, wire::kEtherTypeArp, wire::kArpLen, l3);
  if (!m) return;
  wire::emit_arp(l3, {wire::ArpOp::Request, to_mac(dp_.ports()[port].mac), {}, src_ip, target});
  c_.arp_requests_out++;
  send_frame(port, m);
}

bool Worker::resolve(uint32_t src, uint32_t dst, uint16_t& port, wire::Mac& mac, uint32_t* pending_hop) {
  int p = dp_.port_of(src);
  if (p < 0) {
    c_.tx_no_route++;
    return false;
  }
  port = uint16_t(p);
  const PortInfo& pi = dp_.ports()[port];
  if (pi.has_peer_mac) {  // a point-to-point link (the ring pair)
    mac = to_mac(pi.peer_mac);
    return true;
  }
  // The next hop's address: dst itself when on-link on this port, else the
  // gateway of the longest matching route.  ARP only ever asks for on-link
  // addresses.
  uint32_t hop = dst;
  if (!dp_.routes().on_link(port, dst)) {
    const Route* r = dp_.routes().lookup(dst);
    if (!r || r->gateway == 0 || r->port != port) {
      c_.tx_no_route++;
      return false;
    }
    hop = r->gateway;
  }
  bool ask = false;
  const NeighborCache::Entry* e = neighbors_.lookup(hop, stack_->now(), ask);
  if (ask) arp_request(port, src, hop);
  if (!e) {
    c_.tx_no_neighbor++;
    if (pending_hop) *pending_hop = hop;
    return false;
  }
  mac = e->mac;
  return true;
}

bool Worker::out_hop(uint32_t nh, uint32_t src, uint32_t dst, uint16_t& port, wire::Mac& mac,
                     uint32_t* pending_hop) {
  if (nh == kNoHop) return resolve(src, dst, port, mac, pending_hop);
  port = nexthops_[nh].port;
  mac = nexthops_[nh].mac;
  return true;
}

rte_mbuf* Worker::alloc_ipv4(uint16_t port, const wire::Mac& mac, wire::Ipv4Repr& ip, uint8_t*& l3) {
  ip.id = ip_id_++;
  return alloc_frame(port, mac, wire::kEtherTypeIpv4, wire::kIpv4MinHdr + ip.payload_len, l3);
}

uint32_t Worker::nh_acquire(uint32_t nh) {
  if (nh != kNoHop) nexthops_.acquire(nh);
  return nh;
}

void Worker::nh_release(uint32_t nh) {
  if (nh != kNoHop) nexthops_.release(nh);
}

uint32_t Worker::nh_resolve(const flow::FlowKey4& key) {
  uint16_t port;
  wire::Mac mac;
  bool ok = flow::is_v6(key) ? resolve6(stack_->addr6(key.laddr), stack_->addr6(key.raddr), port, mac)
                             : resolve(key.laddr, key.raddr, port, mac);
  if (!ok) return kNoHop;
  uint32_t nh = nexthops_.find_or_add(port, mac, stack_->now());
  if (nh == kNoHop) {
    c_.nexthop_table_full++;
    return kNoHop;
  }
  nexthops_.acquire(nh);
  return nh;
}

void Worker::tcp_out(const flow::FlowKey4& key, uint32_t nh, const wire::TcpRepr& h, const stack::Payload& p) {
  if (flow::is_v6(key)) return tcp_out6(key, nh, h, p);
  uint16_t port;
  wire::Mac mac{};
  uint32_t pending = 0;
  if (!out_hop(nh, key.laddr, key.raddr, port, mac, &pending) && !pending) return;  // no route (counted)
  const PortInfo& pi = dp_.ports()[port];
  size_t hl = wire::tcp_header_len(h);
  wire::Ipv4Repr ip;
  ip.src = key.laddr;
  ip.dst = key.raddr;
  ip.proto = wire::kProtoTcp;
  ip.payload_len = uint16_t(hl + p.len);
  uint8_t* l3;
  rte_mbuf* m = alloc_ipv4(port, mac, ip, l3);
  if (!m) return;
  uint8_t* l4 = l3 + wire::kIpv4MinHdr;
  bool offload = pi.tx_ip_cksum && pi.tx_tcp_cksum;
  wire::emit_ipv4(l3, ip, !offload);
  if (offload) {
    p.copy_to(l4 + hl);
    wire::emit_tcp_header(l4, h, nullptr, p.len, 0);  // no checksum: the device sums
    set_tx_offload(m, pi, wire::kEthHdrLen, wire::kIpv4MinHdr);
    m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM;
    wire::store16(l4 + 16, wire::offload_phdr(wire::pseudo_sum(ip.src, ip.dst, wire::kProtoTcp, ip.payload_len)));
  } else {
    wire::emit_tcp_header(l4, h, &ip, p.len, p.copy_to_sum(l4 + hl));
  }
  // Unresolved (the ARP request is out): the frame waits for the answer
  // (the first SYN to a backend does not wait for its retransmission).
  if (pending) hold(port, wire::ip6_mapped(pending), m);
  else send_frame(port, m);
}

void Worker::hold(uint16_t port, const wire::Ip6& hop, rte_mbuf* m) {
  size_t same = 0;
  for (const Held& h : held_) same += h.hop == hop;
  if (held_.size() >= kHeldMax || same >= kHeldPerHop) {
    c_.arp_held_dropped++;
    rte_pktmbuf_free(m);
    return;
  }
  c_.arp_held++;
  held_.push_back({m, hop, port, stack_->now()});
}

void Worker::release_held(const wire::Ip6& hop, const wire::Mac& mac) {
  size_t k = 0;
  for (Held& h : held_) {
    if (h.hop == hop) {
      std::memcpy(rte_pktmbuf_mtod(h.m, uint8_t*), mac.data(), 6);  // the Ethernet destination
      c_.arp_held_sent++;
      send_frame(h.port, h.m);
    } else {
      held_[k++] = h;
    }
  }
  held_.resize(k);
}

void Worker::expire_held(uint64_t now, bool all) {
  size_t k = 0;
  for (Held& h : held_) {
    if (all || now - h.since >= kHeldMs) {
      c_.arp_held_dropped++;
      rte_pktmbuf_free(h.m);
    } else {
      held_[k++] = h;
    }
  }
  held_.resize(k);
}

}  // namespace tcpterm::dp
