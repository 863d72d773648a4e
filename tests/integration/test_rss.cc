// RssSteer against the Microsoft RSS verification suite (the Toeplitz key
// and IPv4/TCP vectors every NIC vendor tests with).  DPDK headers, no EAL.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#include <rte_ip.h>

#include <cstring>
#include <random>

#include "dp/offload.h"
#include "dp/rss.h"
#include "wire/wire.h"

using tcpterm::dp::RssSteer;

namespace {
const std::vector<uint8_t> kKey = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
                                   0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
                                   0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};
uint32_t ipv4(const char* s) {
  uint32_t a = 0;
  tcpterm::wire::parse_ip(s, a);
  return a;
}
}  // namespace

TEST_CASE("RSS: Microsoft verification vectors, IPv4 with TCP ports", "[rss]") {
  RssSteer r(kKey, {});
  CHECK(r.hash(ipv4("66.9.149.187"), ipv4("161.142.100.80"), 2794, 1766) == 0x51ccc178);
  CHECK(r.hash(ipv4("199.92.111.2"), ipv4("65.69.140.83"), 14230, 4739) == 0xc626b0ea);
  CHECK(r.hash(ipv4("24.19.198.95"), ipv4("12.22.207.184"), 12898, 38024) == 0x5c2b394a);
  CHECK(r.hash(ipv4("38.27.205.30"), ipv4("209.142.163.6"), 48228, 2217) == 0xafc7327f);
  CHECK(r.hash(ipv4("153.39.163.191"), ipv4("202.188.127.2"), 44251, 1303) == 0x10e828a2);
}

TEST_CASE("RSS: Microsoft verification vectors, IPv6 with TCP ports", "[rss][ipv6]") {
  RssSteer r(kKey, {});
  auto h = [&](const char* src, const char* dst, uint16_t sport, uint16_t dport) {
    tcpterm::wire::Ip6 s{}, d{};
    REQUIRE(tcpterm::wire::parse_ip6(src, s));
    REQUIRE(tcpterm::wire::parse_ip6(dst, d));
    return r.hash6(s.data(), d.data(), sport, dport);
  };
  CHECK(h("3ffe:2501:200:1fff::7", "3ffe:2501:200:3::1", 2794, 1766) == 0x40207d3d);
  CHECK(h("3ffe:501:8::260:97ff:fe40:efab", "ff02::1", 14230, 4739) == 0xdde51bbf);
  CHECK(h("3ffe:1900:4545:3:200:f8ff:fe21:67cf", "fe80::200:f8ff:fe21:67cf", 44251, 38024) == 0x02d1feef);
}

TEST_CASE("RSS: the redirection table maps hashes to queues", "[rss]") {
  RssSteer r(kKey, {0, 1, 0, 1, 1, 0, 1, 0});
  uint32_t h = r.hash(ipv4("66.9.149.187"), ipv4("161.142.100.80"), 2794, 1766);
  CHECK(r.queue(ipv4("66.9.149.187"), ipv4("161.142.100.80"), 2794, 1766) == std::vector<uint16_t>{0, 1, 0, 1, 1, 0, 1, 0}[h % 8]);
  // About half of the source ports of a flow steer to each of two queues.
  int q1 = 0;
  for (uint16_t p = 10000; p < 12000; p++) q1 += r.queue(ipv4("198.18.0.2"), ipv4("198.18.128.1"), 80, p);
  CHECK(q1 > 800);
  CHECK(q1 < 1200);
}

// ---- receive checksum flags (lib/dp/offload.h) ----

TEST_CASE("rx checksum flags: NONE means verified data (virtio), UNKNOWN is checked, BAD drops",
          "[offload]") {
  using tcpterm::dp::Cksum;
  // Old code: L4_CKSUM_NONE was treated as unverified, so a virtio frame with
  // a partial checksum was verified in software and wrongly dropped.
  CHECK(tcpterm::dp::rx_l4_cksum(RTE_MBUF_F_RX_L4_CKSUM_NONE) == Cksum::Trusted);
  CHECK(tcpterm::dp::rx_l4_cksum(RTE_MBUF_F_RX_L4_CKSUM_GOOD) == Cksum::Trusted);
  CHECK(tcpterm::dp::rx_l4_cksum(RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN) == Cksum::Verify);
  CHECK(tcpterm::dp::rx_l4_cksum(RTE_MBUF_F_RX_L4_CKSUM_BAD) == Cksum::Bad);
  CHECK(tcpterm::dp::rx_ip_cksum(RTE_MBUF_F_RX_IP_CKSUM_NONE) == Cksum::Trusted);
  CHECK(tcpterm::dp::rx_ip_cksum(RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN) == Cksum::Verify);
  CHECK(tcpterm::dp::rx_ip_cksum(RTE_MBUF_F_RX_IP_CKSUM_BAD) == Cksum::Bad);
}

TEST_CASE("an in-memory link: a frame sent with checksum offload is received as verified, any other is checked",
          "[offload]") {
  using tcpterm::dp::Cksum;
  using tcpterm::dp::virtual_wire_rx;
  // What dp/tx.cc sets on an IPv4 TCP frame, and dp/ipv6.cc on an IPv6 one.
  uint64_t v4 = RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM;
  CHECK(tcpterm::dp::rx_ip_cksum(virtual_wire_rx(v4)) == Cksum::Trusted);
  CHECK(tcpterm::dp::rx_l4_cksum(virtual_wire_rx(v4)) == Cksum::Trusted);
  uint64_t v6 = RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_TCP_CKSUM;
  CHECK(tcpterm::dp::rx_l4_cksum(virtual_wire_rx(v6)) == Cksum::Trusted);
  // A frame that asked for nothing (an ICMP reply, an ARP, a frame some
  // other sender put on the ring) carries its own checksums: verified.
  CHECK(tcpterm::dp::rx_ip_cksum(virtual_wire_rx(0)) == Cksum::Verify);
  CHECK(tcpterm::dp::rx_l4_cksum(virtual_wire_rx(0)) == Cksum::Verify);
  CHECK(tcpterm::dp::rx_l4_cksum(virtual_wire_rx(RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM)) == Cksum::Verify);
  // UDP or SCTP offload does not vouch for a TCP checksum.
  CHECK(tcpterm::dp::rx_l4_cksum(virtual_wire_rx(RTE_MBUF_F_TX_UDP_CKSUM)) == Cksum::Verify);
  CHECK(tcpterm::dp::rx_l4_cksum(virtual_wire_rx(RTE_MBUF_F_TX_SCTP_CKSUM)) == Cksum::Verify);
  // Receive flags a driver may have left are not carried over: only what
  // the sender asked for counts.
  CHECK(tcpterm::dp::rx_l4_cksum(virtual_wire_rx(RTE_MBUF_F_RX_L4_CKSUM_GOOD)) == Cksum::Verify);
}

TEST_CASE("TX checksum offload: the pseudo-header sum from the fields is DPDK's, read from the header",
          "[offload]") {
  // What a NIC adds the segment's sum to: a wrong value is a wrong checksum
  // on every frame sent with offload.  Old code read the header back
  // (rte_ipv4_phdr_cksum); the fields give the same bytes without the
  // store-forwarding stall.
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; i++) {
    tcpterm::wire::Ipv4Repr ip;
    ip.src = uint32_t(rng());
    ip.dst = uint32_t(rng());
    ip.proto = tcpterm::wire::kProtoTcp;
    ip.payload_len = uint16_t(20 + rng() % 1461);
    alignas(8) uint8_t b[64] = {};
    tcpterm::wire::emit_ipv4(b, ip, true);
    uint16_t want = rte_ipv4_phdr_cksum(reinterpret_cast<const rte_ipv4_hdr*>(b),
                                        RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM);
    uint8_t got[2];
    tcpterm::wire::store16(got, tcpterm::wire::offload_phdr(
                                    tcpterm::wire::pseudo_sum(ip.src, ip.dst, tcpterm::wire::kProtoTcp, ip.payload_len)));
    REQUIRE(std::memcmp(got, &want, 2) == 0);

    tcpterm::wire::Ipv6Repr ip6;
    for (auto& x : ip6.src) x = uint8_t(rng());
    for (auto& x : ip6.dst) x = uint8_t(rng());
    ip6.proto = tcpterm::wire::kProtoTcp;
    ip6.payload_len = uint16_t(20 + rng() % 1461);
    tcpterm::wire::emit_ipv6(b, ip6);
    want = rte_ipv6_phdr_cksum(reinterpret_cast<const rte_ipv6_hdr*>(b), RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_TCP_CKSUM);
    tcpterm::wire::store16(got, tcpterm::wire::offload_phdr(tcpterm::wire::pseudo_sum6(
                                    ip6.src, ip6.dst, tcpterm::wire::kProtoTcp, ip6.payload_len)));
    REQUIRE(std::memcmp(got, &want, 2) == 0);
  }
}

TEST_CASE("RSS: software steering names one owner per tuple, spread evenly", "[rss]") {
  for (uint16_t n : {2, 3, 4, 16}) {
    RssSteer s(n, 0x0123456789abcdefull), same(n, 0x0123456789abcdefull), other(n, 0xfedcba9876543210ull);
    CHECK(s.software());
    std::vector<unsigned> per(n);
    unsigned moved = 0;
    const unsigned kTuples = 64000;
    for (unsigned i = 0; i < kTuples; i++) {
      // One client address, its ports in turn: the hardest case to spread.
      uint32_t src = ipv4("198.18.0.1") + (i >> 14), dst = ipv4("198.18.0.2");
      uint16_t sport = uint16_t(1024 + (i & 0x3fff)), dport = 80;
      uint16_t o = s.queue(src, dst, sport, dport);
      REQUIRE(o < n);
      CHECK(o == same.queue(src, dst, sport, dport));  // the same key, the same owner
      moved += o != other.queue(src, dst, sport, dport);
      per[o]++;
    }
    for (unsigned c : per) {  // within 5 % of an even share
      CHECK(c > kTuples / n * 95 / 100);
      CHECK(c < kTuples / n * 105 / 100);
    }
    // Another key is another assignment: about (n-1)/n of the tuples move.
    CHECK(moved > kTuples * (n - 1) / n * 9 / 10);
  }
}

TEST_CASE("RSS: software steering of IPv6 tuples", "[rss][ipv6]") {
  RssSteer s(2, 42);
  tcpterm::wire::Ip6 src{}, dst{};
  REQUIRE(tcpterm::wire::parse_ip6("2001:2::1", src));
  REQUIRE(tcpterm::wire::parse_ip6("2001:2::2", dst));
  unsigned zero = 0;
  for (unsigned p = 1024; p < 1024 + 20000; p++) {
    uint16_t o = s.queue6(src, dst, uint16_t(p), 80);
    REQUIRE(o < 2);
    CHECK(o == s.queue6_bytes(src.data(), dst.data(), uint16_t(p), 80));
    zero += o == 0;
  }
  CHECK(zero > 9500);
  CHECK(zero < 10500);
  // Every part of the tuple counts: the last address byte and either port.
  unsigned differ = 0;
  for (unsigned i = 0; i < 256; i++) {
    tcpterm::wire::Ip6 a = src;
    a[15] = uint8_t(i);
    differ += s.queue6(a, dst, 5000, 80) != s.queue6(src, dst, 5000, 80);
  }
  CHECK(differ > 64);
}
