// IPv6 on the worker: receive (extension headers walked by lib/wire),
// neighbour discovery (RFC 4861), ICMPv6 echo and Packet Too Big (RFC 4443,
// RFC 8201), and the IPv6 side of the send path.  Same rules as IPv4:
// every frame is built by alloc_frame(), a flow's frames go to its held
// next hop, everything else is routed and resolved here.
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include <cstring>

#include "dp/dataplane.h"
#include "dp/offload.h"
#include "wire/wire.h"

namespace tcpterm::dp {

namespace {
wire::Mac to_mac(const rte_ether_addr& a) {
  wire::Mac m;
  std::memcpy(m.data(), a.addr_bytes, 6);
  return m;
}
constexpr wire::Ip6 kAllNodes{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
constexpr uint8_t kNdHopLimit = 255;  // RFC 4861: ND messages are never forwarded
constexpr uint8_t kHopLimit = 64;
}  // namespace

bool Worker::rx_ipv6(uint16_t port, const wire::EthRepr& eth, std::span<const uint8_t> l3, uint64_t ol_flags,
                     wire::Ipv6Repr& ip, wire::TcpRepr& seg, uint32_t& nh) {
  auto& drops = stack_->stats().drops;
  c_.rx_ipv6++;
  wire::Drop why = wire::parse_ipv6(l3, ip);
  if (why != wire::Drop::None) {
    drops[size_t(why)]++;
    return false;
  }
  auto l4 = l3.subspan(ip.hdr_len, ip.payload_len);
  if (!dp_.owns6(port, ip.dst)) {
    // Multicast we take part in: the solicited-node groups of our addresses
    // (neighbour solicitations) and all-nodes (advertisements).
    bool group = ip.proto == wire::kProtoIcmp6 && (ip.dst == kAllNodes || dp_.owns_solicited6(port, ip.dst));
    if (!group) {
      c_.not_for_us++;
      return false;
    }
  }
  if (dp_.owns6(port, ip.src)) {
    c_.rx_martian++;  // our own address as the source (LAND, reflection)
    drops[size_t(wire::Drop::Ipv6BadAddr)]++;
    return false;
  }
  if (ip.proto == wire::kProtoIcmp6) {
    handle_icmp6(port, eth, ip, l4);
    return false;
  }
  // Only neighbour discovery may come from the unspecified address.
  if (wire::ip6_is_zero(ip.src)) {
    drops[size_t(wire::Drop::Ipv6BadAddr)]++;
    return false;
  }
  if (ip.proto != wire::kProtoTcp) {
    drops[size_t(wire::Drop::Ipv6Proto)]++;
    return false;
  }
  Cksum l4c = rx_l4_cksum(ol_flags);
  why = l4c == Cksum::Bad ? wire::Drop::TcpChecksum : wire::parse_tcp6(l4, seg, ip, l4c == Cksum::Trusted);
  if (why != wire::Drop::None) {
    drops[size_t(why)]++;
    return false;
  }
  const uint64_t now = stack_->now();
  // As IPv4: learn on-link senders; the sender's MAC becomes the flow's
  // next hop (a routed client's MAC is its router's).
  if (dp_.routes6().on_link(port, ip.src)) {
    neighbors6_.learn(ip.src, port, eth.src, now);
    if (!held_.empty()) release_held(ip.src, eth.src);
  }
  nh = nexthops_.find_or_add(port, eth.src, now);
  if (nh == kNoHop) c_.nexthop_table_full++;
  nh_acquire(nh);  // held by the burst until processed
  return true;
}

void Worker::handle_icmp6(uint16_t port, const wire::EthRepr& eth, const wire::Ipv6Repr& ip,
                          std::span<const uint8_t> l4) {
  auto& drops = stack_->stats().drops;
  wire::Icmp6Repr m;
  wire::Drop why = wire::parse_icmp6(l4, ip, m);
  if (why == wire::Drop::Icmp6Type) {
    // Router solicitations and advertisements (addresses and routes are
    // configured, RFC 4861 6.3.4 does not apply), MLD, redirects: ignored.
    c_.icmp6_ignored++;
    return;
  }
  if (why != wire::Drop::None) {
    drops[size_t(why)]++;
    return;
  }
  const uint64_t now = stack_->now();
  const wire::Mac me = to_mac(dp_.ports()[port].mac);
  bool nd = m.type == wire::icmp6::kNeighborSolicit || m.type == wire::icmp6::kNeighborAdvert;
  if (nd && ip.hop_limit != kNdHopLimit) {
    // RFC 4861 7.1: an ND message that crossed a router is forged.
    c_.nd_bad_hop_limit++;
    drops[size_t(wire::Drop::NdMalformed)]++;
    return;
  }
  if (!nd && wire::ip6_is_zero(ip.src)) {
    drops[size_t(wire::Drop::Ipv6BadAddr)]++;
    return;
  }
  switch (m.type) {
    case wire::icmp6::kNeighborSolicit: {
      if (!dp_.owns6(port, m.target)) {
        c_.icmp6_ignored++;  // someone else's address
        return;
      }
      // RFC 4861 7.1.1: a DAD probe goes to the solicited-node group.
      bool dad = wire::ip6_is_zero(ip.src);
      if (dad && ip.dst != wire::solicited_node(m.target)) {
        drops[size_t(wire::Drop::NdMalformed)]++;
        return;
      }
      c_.nd_solicitations_in++;
      wire::Ipv6Repr r;
      r.src = m.target;
      r.hop_limit = kNdHopLimit;
      r.proto = wire::kProtoIcmp6;
      wire::Icmp6Repr na;
      na.type = wire::icmp6::kNeighborAdvert;
      na.target = m.target;
      na.has_lladdr = true;
      na.lladdr = me;
      wire::Mac dst_mac;
      if (dad) {
        // 7.2.4: the address is ours and in use; tell all nodes, not solicited.
        c_.nd_dad_probes_for_ours++;
        r.dst = kAllNodes;
        na.na_flags = wire::icmp6::kNaOverride;
        dst_mac = wire::multicast_mac(kAllNodes);
      } else {
        // 7.2.3: the source link-layer option updates (or creates) the
        // sender's entry; the answer is unicast to it.
        if (m.has_lladdr) {
          if (dp_.routes6().on_link(port, ip.src)) {
            neighbors6_.learn(ip.src, port, m.lladdr, now);
            if (!held_.empty()) release_held(ip.src, m.lladdr);
          } else {
            c_.nd_not_on_link++;
          }
        }
        r.dst = ip.src;
        na.na_flags = wire::icmp6::kNaSolicited | wire::icmp6::kNaOverride;
        dst_mac = m.has_lladdr ? m.lladdr : eth.src;
      }
      r.payload_len = uint16_t(wire::icmp6_len(na));
      uint8_t* l4o;
      rte_mbuf* f = alloc_ipv6(port, dst_mac, r, l4o);
      if (!f) return;
      wire::emit_icmp6(l4o, na, r);
      c_.nd_advertisements_out++;
      send_frame(port, f);
      return;
    }
    case wire::icmp6::kNeighborAdvert: {
      c_.nd_advertisements_in++;
      // 7.1.2: a solicited advertisement never goes to a multicast group.
      if ((m.na_flags & wire::icmp6::kNaSolicited) && wire::ip6_is_multicast(ip.dst)) {
        drops[size_t(wire::Drop::NdMalformed)]++;
        return;
      }
      if (!m.has_lladdr) return;  // nothing to learn (we never send without the option)
      if (!dp_.routes6().on_link(port, m.target)) {
        c_.nd_not_on_link++;
        return;
      }
      neighbors6_.learn(m.target, port, m.lladdr, now);
      if (!held_.empty()) release_held(m.target, m.lladdr);
      return;
    }
    case wire::icmp6::kEchoRequest: {
      if (!dp_.owns6(port, ip.dst)) return;  // not to a group
      wire::Ipv6Repr r;
      r.src = ip.dst;
      r.dst = ip.src;
      r.proto = wire::kProtoIcmp6;
      r.hop_limit = kHopLimit;
      wire::Icmp6Repr e = m;
      e.type = wire::icmp6::kEchoReply;
      e.code = 0;
      r.payload_len = uint16_t(wire::icmp6_len(e));
      uint8_t* l4o;
      // Back the way it came: the sender's MAC (its router's, if routed).
      rte_mbuf* f = alloc_ipv6(port, eth.src, r, l4o);
      if (!f) return;
      wire::emit_icmp6(l4o, e, r);
      c_.icmp6_echo_replies++;
      send_frame(port, f);
      return;
    }
    case wire::icmp6::kEchoReply:
      c_.icmp6_ignored++;
      return;
    case wire::icmp6::kPacketTooBig:
      if (!dp_.owns6(port, ip.dst)) return;
      c_.icmp6_packet_too_big++;
      stack_->packet_too_big6(m.data, m.mtu);
      return;
    default:
      c_.icmp6_ignored++;
      return;
  }
}

rte_mbuf* Worker::alloc_ipv6(uint16_t port, const wire::Mac& mac, const wire::Ipv6Repr& ip, uint8_t*& l4) {
  uint8_t* l3;
  rte_mbuf* m = alloc_frame(port, mac, wire::kEtherTypeIpv6, wire::kIpv6HdrLen + ip.payload_len, l3);
  if (!m) return nullptr;
  wire::emit_ipv6(l3, ip);
  l4 = l3 + wire::kIpv6HdrLen;
  return m;
}

void Worker::nd_solicit(uint16_t port, const wire::Ip6& src, const wire::Ip6& target) {
  wire::Ipv6Repr r;
  r.src = src;
  r.dst = wire::solicited_node(target);
  r.proto = wire::kProtoIcmp6;
  r.hop_limit = kNdHopLimit;
  wire::Icmp6Repr ns;
  ns.type = wire::icmp6::kNeighborSolicit;
  ns.target = target;
  ns.has_lladdr = true;
  ns.lladdr = to_mac(dp_.ports()[port].mac);
  r.payload_len = uint16_t(wire::icmp6_len(ns));
  uint8_t* l4;
  rte_mbuf* m = alloc_ipv6(port, wire::multicast_mac(r.dst), r, l4);
  if (!m) return;
  wire::emit_icmp6(l4, ns, r);
  c_.nd_solicitations_out++;
  send_frame(port, m);
}

bool Worker::resolve6(const wire::Ip6& src, const wire::Ip6& dst, uint16_t& port, wire::Mac& mac, bool* pending,
                      wire::Ip6* pending_hop) {
  int p = dp_.port_of6(src);
  if (p < 0) {
    c_.tx_no_route++;
    return false;
  }
  port = uint16_t(p);
  const PortInfo& pi = dp_.ports()[port];
  if (pi.has_peer_mac) {
    mac = to_mac(pi.peer_mac);
    return true;
  }
  wire::Ip6 hop = dst;
  if (!dp_.routes6().on_link(port, dst)) {
    const Route6* r = dp_.routes6().lookup(dst);
    if (!r || !r->has_gateway || r->port != port) {
      c_.tx_no_route++;
      return false;
    }
    hop = r->gateway;
  }
  bool ask = false;
  const NeighborCache6::Entry* e = neighbors6_.lookup(hop, stack_->now(), ask);
  if (ask) nd_solicit(port, src, hop);
  if (!e) {
    c_.tx_no_neighbor++;
    if (pending) {
      *pending = true;
      *pending_hop = hop;
    }
    return false;
  }
  mac = e->mac;
  return true;
}

void Worker::tcp_out6(const flow::FlowKey4& key, uint32_t nh, const wire::TcpRepr& h, const stack::Payload& p) {
  wire::Ipv6Repr ip;
  ip.src = stack_->addr6(key.laddr);
  ip.dst = stack_->addr6(key.raddr);
  ip.proto = wire::kProtoTcp;
  ip.hop_limit = kHopLimit;
  uint16_t port;
  wire::Mac mac{};
  bool pending = false;
  wire::Ip6 hop{};
  if (nh != kNoHop) {
    port = nexthops_[nh].port;
    mac = nexthops_[nh].mac;
  } else if (!resolve6(ip.src, ip.dst, port, mac, &pending, &hop) && !pending) {
    return;  // no route (counted)
  }
  const PortInfo& pi = dp_.ports()[port];
  size_t hl = wire::tcp_header_len(h);
  ip.payload_len = uint16_t(hl + p.len);
  uint8_t* l4;
  rte_mbuf* m = alloc_ipv6(port, mac, ip, l4);
  if (!m) return;
  if (pi.tx_tcp_cksum) {
    p.copy_to(l4 + hl);
    wire::emit_tcp_header(l4, h, nullptr, p.len, 0);  // no checksum: the device sums
    set_tx_offload(m, pi, wire::kEthHdrLen, wire::kIpv6HdrLen);
    m->ol_flags |= RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_TCP_CKSUM;
    wire::store16(l4 + 16, wire::offload_phdr(wire::pseudo_sum6(ip.src, ip.dst, wire::kProtoTcp, ip.payload_len)));
  } else {
    wire::emit_tcp_header6(l4, h, ip, p.len, p.copy_to_sum(l4 + hl));
  }
  if (pending) hold(port, hop, m);
  else send_frame(port, m);
}

}  // namespace tcpterm::dp
