// The worker lcore: run-to-completion loop, RX parsing, control requests.
// Path of a packet: rte_eth_rx_burst -> Worker::rx_burst (Ethernet, ARP,
// IPv4, ICMP handled here; the sender's next hop found and held for the
// burst; TCP parsed and batched) -> Stack::input_burst (staged lookup, state
// machine, applications) -> Worker::tcp_out (tx.cc) -> rte_eth_tx_buffer ->
// flushed once per loop iteration.
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

#include <cstring>

#include "dp/clock.h"
#include "dp/dataplane.h"
#include "lb/proxy.h"
#include "dp/offload.h"
#include "wire/wire.h"

namespace tcpterm::dp {

namespace {
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

Worker::Worker(Dataplane& dp, unsigned lcore, uint16_t queue, rte_mempool* pool)
    : dp_(dp),
      lcore_(lcore),
      queue_(queue),
      socket_(int(rte_lcore_to_socket_id(lcore))),
      pool_(pool),
      data_offset_(sizeof(rte_mbuf) + rte_pktmbuf_priv_size(pool) + RTE_PKTMBUF_HEADROOM) {
  apps_.reserve(256);
}

void Worker::build(const stack::StackConfig& cfg) {
  admission_ = dp_.options().syn_admission;
  uint64_t now_ms = MsClock(dp_.tsc_per_ms()).ms(rte_get_tsc_cycles());  // as run() counts
  built_on_ = int(rte_lcore_id());
  stack_ = std::make_unique<stack::Stack>(cfg, *this, now_ms);
}

bool Worker::init_tx() {
  for (size_t p = txbuf_.size(); p < dp_.ports().size(); p++) {
    auto* b = static_cast<rte_eth_dev_tx_buffer*>(
        rte_zmalloc_socket("txbuf", RTE_ETH_TX_BUFFER_SIZE(kBurst), 0, socket_));
    if (!b) return false;
    rte_eth_tx_buffer_init(b, kBurst);
    rte_eth_tx_buffer_set_err_callback(b, tx_drop_cb, &c_.tx_dropped);
    txbuf_.push_back(b);
  }
  return true;
}

Worker::~Worker() {
  if (inbox_) {  // the workers have stopped: nothing is added any more
    rte_mbuf* m;
    while (rte_ring_sc_dequeue(inbox_, reinterpret_cast<void**>(&m)) == 0) rte_pktmbuf_free(m);
    rte_ring_free(inbox_);
  }
  drop_stash();
  stack_.reset();  // flows release their next hops first
  for (auto* b : txbuf_) rte_free(b);
}

void Worker::flush_tx() {
  for (uint16_t p = 0; p < txbuf_.size(); p++) rte_eth_tx_buffer_flush(p, queue_, txbuf_[p]);
}

int Worker::run() {
  const uint64_t per_ms = dp_.tsc_per_ms();
  const MsClock clock(per_ms);  // dp/clock.h: no division per poll
  const uint32_t sleep_us = dp_.idle_sleep_us();
  const uint16_t nports = uint16_t(dp_.ports().size());
  rte_mbuf* pkts[kBurst];
  Request* dumping = nullptr;  // a flow listing in progress (see below)
  uint64_t last_busy_ms = 0;
  uint64_t last_freed = stack_->stats().flows_freed;
  while (!dp_.stopping()) {
    uint64_t t0 = rte_rdtsc();
    const uint64_t now_ms = clock.ms(t0);
    stack_->set_time(now_ms);  // one clock read per iteration
    bool work = false;
    if (admission_) {
      // Admission control's credit: one SYN per flow finished since the last poll.
      const uint64_t freed = stack_->stats().flows_freed;
      backlog_.completed(freed - last_freed);  // a cleared counter wraps: full credit
      last_freed = freed;
    }
    // Frames handed over by other lcores first: they arrived earlier than
    // what this lcore's own queue holds now (a flow's frames can switch
    // queues: a TAP moves a flow to the queue its replies leave from).
    if (inbox_ && !rte_ring_empty(inbox_)) {
      work = true;
      rx_inbox(pkts);
    }
    for (uint16_t p = 0; p < nports; p++) {
      uint16_t n = rte_eth_rx_burst(p, queue_, pkts, kBurst);
      note_poll(n);
      if (n) {
        work = true;
        const PortInfo& pi = dp_.ports()[p];
        if (pi.sw_steer) n = steer(pi, pkts, n);
        if (n) rx_burst(p, pkts, n);
      }
    }
    stack_->advance(now_ms);
    if (!held_.empty()) expire_held(now_ms);
    if (gen_) gen_->tick(*stack_, now_ms, t0, per_ms / 1000, backlog_.on());
    if (bal_) bal_->tick(*stack_, now_ms);
    flush_tx();
    // Control requests, in order.  A flow listing is taken one step per
    // poll (kDumpStep slots and records: tens of millions of TIME-WAIT
    // records would otherwise stop this lcore's packets for a long time);
    // its reply, and the requests behind it, wait until it is complete.
    if (dumping && step_dump(*dumping)) {
      while (!replies.push(dumping)) rte_pause();
      dumping = nullptr;
    }
    Request* r;
    while (!dumping && requests.pop(r)) {
      if (r->kind == Request::Kind::DumpFlows) {
        begin_dump(*r);
        if (!step_dump(*r)) {
          dumping = r;
          break;
        }
      } else {
        execute(*r);
      }
      while (!replies.push(r)) rte_pause();  // the control side always drains it
    }
    uint64_t t1 = rte_rdtsc();
    c_.iterations++;
    c_.total_cycles += t1 - t0;
    // The longest poll: how long this lcore's packets may have waited
    // behind one (a burst, a control request, a TIME-WAIT expiry run).
    if (t1 - t0 > longest_poll_) longest_poll_ = t1 - t0;
    if (work) {
      c_.busy_cycles += t1 - t0;
      c_.busy_iterations++;
      last_busy_ms = now_ms;
    } else {
      // Idle for a millisecond: the transmit stash goes back to the pool,
      // so an idle worker holds no mbuf (the in-use gauge reads true).
      if (stash_i_ < stash_n_ && now_ms - last_busy_ms >= 1) drop_stash();
      if (sleep_us) rte_delay_us_sleep(sleep_us);
    }
  }
  flush_tx();
  drop_held();   // frames still waiting for ARP go back to the pool
  drop_stash();  // and the transmit mbufs taken ahead
  return 0;
}

void Worker::rx_burst(uint16_t port, rte_mbuf** pkts, uint16_t n) {
  wire::Ipv4Repr* ips = rx4_.ips;
  wire::TcpRepr* segs = rx4_.segs;
  uint32_t nhs[kBurst];
  rte_mbuf* queued[kBurst];  // frames whose segments the stack reads in this burst
  unsigned k = 0, nq = 0;
  // IPv6 segments of the burst: members, so an IPv4-only burst does not
  // construct them.
  wire::Ipv6Repr* ips6 = rx6_.ips;
  wire::TcpRepr* segs6 = rx6_.segs;
  uint32_t* nhs6 = rx6_.nhs;
  unsigned k6 = 0;
  auto& drops = stack_->stats().drops;
  const PortInfo& pi = dp_.ports()[port];
  const uint64_t now = stack_->now();
  // The sender's next hop, found once per run of frames from one MAC (a
  // router sends them all) and held until the burst is processed, so no
  // later frame of the burst can evict it.
  wire::Mac last_src{};
  uint32_t last_nh = kNoHop;
  bool have_last = false;
  // Stage 0: prefetch every frame's headers, so the first touch of packet
  // memory (often written by another core or the NIC) overlaps.
  // A segment with text spans a second line (an HTTP request: ~130 bytes).
  for (uint16_t i = 0; i < n; i++) {
    const uint8_t* d = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
    rte_prefetch0(d);
    if (pkts[i]->data_len > RTE_CACHE_LINE_SIZE) rte_prefetch0(d + RTE_CACHE_LINE_SIZE);
  }
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
    bool to_us = std::memcmp(eth.dst.data(), pi.mac.addr_bytes, 6) == 0 || eth.dst == wire::kBroadcastMac ||
                 (eth.dst[0] == 0x33 && eth.dst[1] == 0x33 && !pi.addrs6.empty());  // IPv6 multicast (ND)
    if (!to_us) {
      c_.not_for_us++;
      rte_pktmbuf_free(m);
      continue;
    }
    auto l3 = frame.subspan(wire::kEthHdrLen);
    const uint64_t olf = pi.virtual_wire ? virtual_wire_rx(m->ol_flags) : m->ol_flags;
    if (eth.ethertype == wire::kEtherTypeArp) {
      handle_arp(port, l3.data(), l3.size());
      rte_pktmbuf_free(m);
      continue;
    }
    if (eth.ethertype == wire::kEtherTypeIpv6 && !pi.addrs6.empty()) {
      if (rx_ipv6(port, eth, l3, olf, ips6[k6], segs6[k6], nhs6[k6])) {
        if (refuse_syn(segs6[k6])) {  // admission control (dataplane.h)
          nh_release(nhs6[k6]);
          rte_pktmbuf_free(m);
          continue;
        }
        k6++;
        queued[nq++] = m;
      } else {
        rte_pktmbuf_free(m);
      }
      continue;
    }
    if (eth.ethertype != wire::kEtherTypeIpv4) {
      drops[size_t(wire::Drop::EthType)]++;
      rte_pktmbuf_free(m);
      continue;
    }
    Cksum ipc = rx_ip_cksum(olf), l4c = rx_l4_cksum(olf);
    wire::Ipv4Repr& ip = ips[k];  // parsed in place: kept if the segment is (k < n <= kBurst)
    why = ipc == Cksum::Bad ? wire::Drop::Ipv4Checksum : wire::parse_ipv4(l3, ip, ipc == Cksum::Trusted);
    if (why == wire::Drop::None && !dp_.owns(port, ip.dst)) {
      c_.not_for_us++;
      rte_pktmbuf_free(m);
      continue;
    }
    if (why == wire::Drop::None && dp_.owns(port, ip.src)) {
      c_.rx_martian++;  // our own address as the source (LAND, reflection)
      why = wire::Drop::Ipv4BadAddr;
    }
    if (why == wire::Drop::None) {
      // RFC 1122 2.3.2.1: learn the neighbour only for on-link senders; a
      // routed client's MAC is its router's, held as a next hop below.
      if (dp_.routes().on_link(port, ip.src)) {
        neighbors_.learn(ip.src, port, eth.src, now);
        if (!held_.empty()) release_held(wire::ip6_mapped(ip.src), eth.src);
      }
      if (!have_last || eth.src != last_src) {
        if (have_last) nh_release(last_nh);
        last_src = eth.src;
        have_last = true;
        last_nh = nexthops_.find_or_add(port, eth.src, now);
        if (last_nh == kNoHop) c_.nexthop_table_full++;
        nh_acquire(last_nh);
      }
      auto l4 = l3.subspan(ip.hdr_len, ip.payload_len);
      if (ip.proto == wire::kProtoIcmp) {
        handle_icmp(port, last_nh, ip, l4);
        rte_pktmbuf_free(m);
        continue;
      }
      if (ip.proto != wire::kProtoTcp) {
        why = wire::Drop::Ipv4Proto;
      } else if (l4c == Cksum::Bad) {
        why = wire::Drop::TcpChecksum;
      } else {
        why = wire::parse_tcp(l4, segs[k], &ip, l4c == Cksum::Trusted);
        if (why == wire::Drop::None && refuse_syn(segs[k])) {  // admission control (dataplane.h)
          rte_pktmbuf_free(m);
          continue;
        }
        if (why == wire::Drop::None) {
          nhs[k++] = nh_acquire(last_nh);  // held by the burst until processed
          queued[nq++] = m;
          continue;
        }
      }
    }
    drops[size_t(why)]++;
    rte_pktmbuf_free(m);
  }
  if (have_last) nh_release(last_nh);
  if (k) stack_->input_burst(ips, segs, nhs, k);
  if (k6) stack_->input6_burst(ips6, segs6, nhs6, k6);
  for (unsigned i = 0; i < k; i++) nh_release(nhs[i]);
  for (unsigned i = 0; i < k6; i++) nh_release(nhs6[i]);
  free_rx(queued, nq);
}

// Software steering (dp/rss.h).  Which lcore owns each frame: a TCP
// segment's owner is named by its tuple, after any IPv6 extension headers
// (an IPv4 fragment, or a frame the owner would refuse, stays: it is
// dropped here as it would be there); an ICMPv6 Packet Too Big goes to the
// owner of the segment it quotes (PMTU; ICMPv4 errors are not acted on,
// so they stay); an ARP reply or a Neighbor Advertisement goes to every
// lcore, each of which keeps its own neighbour cache and may be the one
// waiting for the answer; anything else (ARP requests, pings, ND
// solicitations) is answered where it arrived.
uint16_t Worker::steer(const PortInfo& pi, rte_mbuf** pkts, uint16_t n) {
  constexpr uint16_t kHere = 0xffff, kAll = 0xfffe;
  const RssSteer& s = *pi.sw_steer;
  const uint16_t nw = uint16_t(dp_.workers().size());
  uint16_t keep = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
    const size_t len = m->data_len;
    uint16_t to = kHere;
    if (m->nb_segs == 1 && len >= wire::kEthHdrLen + 28) {
      const uint16_t et = wire::load16(d + 12);
      const uint8_t* l3 = d + wire::kEthHdrLen;
      const size_t l3len = len - wire::kEthHdrLen;
      if (et == wire::kEtherTypeArp) {
        if (wire::load16(l3 + 6) == 2) to = kAll;  // a reply
      } else if (et == wire::kEtherTypeIpv4) {
        const size_t ihl = size_t(l3[0] & 0x0f) * 4;
        const bool whole = (wire::load16(l3 + 6) & 0x3fff) == 0;
        if (whole && ihl >= 20 && l3len >= ihl + 4 && l3[9] == wire::kProtoTcp) {
          const uint8_t* l4 = l3 + ihl;
          to = s.queue(wire::load32(l3 + 12), wire::load32(l3 + 16), wire::load16(l4), wire::load16(l4 + 2));
        }
      } else if (et == wire::kEtherTypeIpv6 && l3len >= 40 + 4) {
        uint8_t proto = l3[6];
        size_t off = 40;
        if (proto != wire::kProtoTcp && proto != wire::kProtoIcmp6) {
          // Extension headers: walked as the owner will walk them (a SYN
          // behind destination options belongs with the rest of its flow).
          wire::Ipv6Repr ip6;
          if (wire::parse_ipv6({l3, l3len}, ip6) == wire::Drop::None) {
            proto = ip6.proto;
            off = ip6.hdr_len;
          }
        }
        const uint8_t* l4 = l3 + off;
        if (l3len < off + 4) {
          // too short for ports or an ICMPv6 type: dropped where it is
        } else if (proto == wire::kProtoTcp) {
          to = s.queue6_bytes(l3 + 8, l3 + 24, wire::load16(l4), wire::load16(l4 + 2));
        } else if (proto == wire::kProtoIcmp6 && l4[0] == wire::icmp6::kNeighborAdvert) {
          to = kAll;
        } else if (proto == wire::kProtoIcmp6 && l4[0] == wire::icmp6::kPacketTooBig &&
                   l3len >= off + 8 + 40 + 4 && l4[8 + 6] == wire::kProtoTcp) {
          const uint8_t* q = l4 + 8;  // it quotes our segment, which has no extension headers
          to = s.queue6_bytes(q + 24, q + 8, wire::load16(q + 40 + 2), wire::load16(q + 40));
        }
      }
    }
    if (to == kAll) {
      m->port = pi.id;
      rte_mbuf_refcnt_update(m, int16_t(nw - 1));  // each lcore frees its reference
      for (uint16_t w = 0; w < nw; w++)
        if (w != queue_) hand_to(w, m);
      c_.steer_fanout++;
      to = kHere;
    }
    if (to == kHere || to == queue_ || to >= nw) {
      pkts[keep++] = m;
    } else {
      m->port = pi.id;
      hand_to(to, m);
      c_.steered_out++;
    }
  }
  return keep;
}

void Worker::hand_to(uint16_t worker, rte_mbuf* m) {
  if (rte_ring_mp_enqueue(dp_.workers()[worker]->inbox(), m) != 0) {
    c_.steer_dropped++;  // the owner is that far behind: as a full RX queue would
    rte_pktmbuf_free(m);
  }
}

void Worker::rx_inbox(rte_mbuf** pkts) {
  unsigned n = rte_ring_sc_dequeue_burst(inbox_, reinterpret_cast<void**>(pkts), kBurst, nullptr);
  c_.steered_in += n;
  // Runs of frames from one port, each as one burst.
  for (unsigned i = 0; i < n;) {
    unsigned j = i + 1;
    while (j < n && pkts[j]->port == pkts[i]->port) j++;
    const uint16_t port = pkts[i]->port;
    if (port < dp_.ports().size()) {
      rx_burst(port, pkts + i, uint16_t(j - i));
    } else {
      rte_pktmbuf_free_bulk(pkts + i, j - i);
    }
    i = j;
  }
}

void Worker::handle_arp(uint16_t port, const uint8_t* data, size_t len) {
  wire::ArpRepr a;
  wire::Drop why = wire::parse_arp({data, len}, a);
  if (why != wire::Drop::None) {
    stack_->stats().drops[size_t(why)]++;
    return;
  }
  // RFC 826 merge: learn (or refresh) the sender when it is on-link here.
  if (a.spa && !wire::martian_source(a.spa)) {
    if (dp_.routes().on_link(port, a.spa)) {
      neighbors_.learn(a.spa, port, a.sha, stack_->now());
      if (!held_.empty()) release_held(wire::ip6_mapped(a.spa), a.sha);
    } else {
      c_.arp_not_on_link++;
    }
  }
  if (a.op != wire::ArpOp::Request || !dp_.owns(port, a.tpa)) return;
  c_.arp_requests_in++;
  uint8_t* l3;
  rte_mbuf* m = alloc_frame(port, a.sha, wire::kEtherTypeArp, wire::kArpLen, l3);
  if (!m) return;
  wire::Mac me = to_mac(dp_.ports()[port].mac);
  wire::emit_arp(l3, wire::ArpRepr{wire::ArpOp::Reply, me, a.sha, a.tpa, a.spa});
  c_.arp_replies_out++;
  send_frame(port, m);
}

void Worker::handle_icmp(uint16_t port, uint32_t nh, const wire::Ipv4Repr& ip, std::span<const uint8_t> l4) {
  wire::IcmpEchoRepr e;
  wire::Drop why = wire::parse_icmp_echo(l4, e);
  if (why != wire::Drop::None || e.type != 8) {
    stack_->stats().drops[size_t(why == wire::Drop::None ? wire::Drop::IcmpType : why)]++;
    return;
  }
  // The reply goes back the way the request came.
  uint16_t out_port = port;
  wire::Mac mac;
  if (!out_hop(nh, ip.dst, ip.src, out_port, mac)) return;
  wire::Ipv4Repr r;
  r.src = ip.dst;
  r.dst = ip.src;
  r.proto = wire::kProtoIcmp;
  r.payload_len = uint16_t(wire::kIcmpHdrLen + e.data.size());
  uint8_t* l3;
  rte_mbuf* m = alloc_ipv4(out_port, mac, r, l3);
  if (!m) return;
  wire::emit_ipv4(l3, r);
  wire::IcmpEchoRepr reply{0, e.ident, e.seq, e.data};
  wire::emit_icmp_echo(l3 + wire::kIpv4MinHdr, reply);
  c_.icmp_echo_replies++;
  send_frame(out_port, m);
}

void Worker::begin_dump(Request& r) {
  r.listing = stack::FlowDump{};
  r.listing.max = r.max;
  r.listing.state_filter = r.state_filter;
  r.listing.addr_filter = r.addr_filter;
  r.listing.out = &r.dump;
}

bool Worker::step_dump(Request& r, uint64_t budget) {
  r.dump_steps++;
  return stack_->dump_flows_step(r.listing, budget);
}

void Worker::execute(Request& r) {
  stack::Stack& s = *stack_;
  switch (r.kind) {
    case Request::Kind::Snapshot: {
      r.tcp = s.tcp_stats();
      r.sst = s.stats();
      r.wc = c_;
      r.longest_poll_us = longest_poll_ * 1000 / dp_.tsc_per_ms();
      r.flows = s.flows();
      r.time_wait = s.time_wait_records();
      r.time_wait_cap = s.time_wait().capacity();
      r.chunks_in_use = s.chunks().in_use();
      r.chunks_high_water = s.chunks().high_water();
      r.wheel = s.wheel().occupancy();
      r.memory = s.memory_bytes();
      r.syncookies_engaged = s.syncookies_engaged();
      r.nexthops = nexthops_.in_use();
      r.nexthop_refs = uint32_t(nexthops_.refs_total());
      r.neighbors = neighbors_.resolved() + neighbors6_.resolved();
      r.addr6_held = s.addr6_table().size();
      r.has_generator = gen_ != nullptr;
      if (gen_) r.gen = gen_->stats();
      break;
    }
    case Request::Kind::DumpFlows:  // workers stopped: all at once
      begin_dump(r);
      step_dump(r, UINT64_MAX);
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
      if (!r.app && !r.pool.empty()) {
        // A proxy listener: its application needs this worker's balancer.
        int pi = bal_ ? bal_->find_pool(r.pool) : -1;
        if (pi < 0) {
          r.ok = false;
          r.err = "no pool " + r.pool;
          break;
        }
        r.app = std::make_unique<lb::Proxy>(*bal_, pi);
      }
      r.ok = r.v6 ? s.add_listener6(r.addr6, r.port, r.app.get()) : s.add_listener(r.addr, r.port, r.app.get());
      if (r.ok) apps_.push_back(std::move(r.app));
      break;
    case Request::Kind::Unlisten:
      // The App object stays alive: existing flows still use it.
      r.ok = r.v6 ? s.remove_listener6(r.addr6, r.port) : s.remove_listener(r.addr, r.port);
      break;
    case Request::Kind::ClearTcp:
      s.clear_stats();
      c_ = WorkerCounters{};
      longest_poll_ = 0;
      if (gen_) {
        uint64_t active = gen_->stats().active;
        gen_->stats() = apps::GeneratorStats{};
        gen_->stats().active = active;
      }
      break;
    case Request::Kind::PoolAdd:
    case Request::Kind::PoolDel:
    case Request::Kind::PoolDrain: {
      if (!bal_) {
        r.ok = false;
        r.err = "no pools (start with --pool)";
        break;
      }
      lb::BackendConf b = r.backend;
      b.weight = r.value ? r.value : 1;
      r.ok = r.kind == Request::Kind::PoolAdd   ? bal_->add_backend(r.pool, b, r.err)
             : r.kind == Request::Kind::PoolDel ? bal_->del_backend(r.pool, b, r.err)
                                                : bal_->drain_backend(r.pool, b, r.err);
      break;
    }
    case Request::Kind::Pools:
      if (bal_) {
        r.pools = bal_->pools_snapshot();
        r.backends = bal_->backends_snapshot();
      }
      break;
    case Request::Kind::Stall:
      // `debug stall`: a worker that does not answer in time (tests the
      // control channel's time-outs); bounded by the CLI to 10 s.
      rte_delay_us_sleep(r.value * 1000u);
      break;
  }
}

}  // namespace tcpterm::dp
