// lib/wire: known checksum vectors, round trips, and every malformed input
// returning its reason code.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "wire/wire.h"

using namespace tcpterm::wire;
using Bytes = std::vector<uint8_t>;

namespace {

// A valid IPv4/TCP segment (with options and payload), built by emit.
Bytes make_tcp_packet(const TcpRepr& t, uint32_t src = 0xC6120001, uint32_t dst = 0xC6120002) {
  size_t hl = tcp_header_len(t);
  Bytes p(kIpv4MinHdr + hl + t.payload.size());
  Ipv4Repr ip;
  ip.src = src;
  ip.dst = dst;
  ip.proto = kProtoTcp;
  ip.payload_len = uint16_t(hl + t.payload.size());
  emit_ipv4(p.data(), ip);
  std::copy(t.payload.begin(), t.payload.end(), p.begin() + kIpv4MinHdr + hl);
  emit_tcp_header(p.data() + kIpv4MinHdr, t, &ip, t.payload.size());
  return p;
}

Drop parse_packet(const Bytes& p, TcpRepr& t) {
  Ipv4Repr ip;
  if (Drop d = parse_ipv4(p, ip); d != Drop::None) return d;
  return parse_tcp(std::span(p).subspan(ip.hdr_len, ip.payload_len), t, &ip);
}

void fix_ip_checksum(Bytes& p) {
  store16(p.data() + 10, 0);
  store16(p.data() + 10, checksum(p.data(), size_t(p[0] & 15) * 4));
}

}  // namespace

TEST_CASE("checksum: RFC 1071 example and a known IPv4 header", "[wire][checksum]") {
  // RFC 1071 4.1: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
  const uint8_t v[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(checksum(v, sizeof v) == uint16_t(~0xddf2));
  // A classic IPv4 header whose checksum field is 0xb861.
  uint8_t h[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  CHECK(checksum(h, sizeof h) == 0xb861);
  h[10] = 0xb8;
  h[11] = 0x61;
  CHECK(checksum(h, sizeof h) == 0);
  // Odd length pads with a zero byte.
  const uint8_t odd[] = {0x12, 0x34, 0x56};
  CHECK(checksum(odd, 3) == uint16_t(~(0x1234 + 0x5600)));
  // Chained sums over even pieces equal the one-shot sum.
  Bytes big(1501);
  std::mt19937 rng(7);
  for (auto& b : big) b = uint8_t(rng());
  uint32_t acc = sum_bytes(big.data(), 600);
  acc = sum_bytes(big.data() + 600, 901, acc);
  CHECK(fold(acc) == checksum(big.data(), big.size()));
}

TEST_CASE("checksum: the word-at-a-time sum equals RFC 1071's 16-bit loop", "[wire]") {
  auto reference = [](const uint8_t* p, size_t n, uint32_t acc) {
    uint64_t s = acc;
    for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i]) << 8 | p[i + 1];
    if (n & 1) s += uint32_t(p[n - 1]) << 8;
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return uint16_t(~s & 0xffff);
  };
  std::mt19937 rng(11);
  Bytes buf(2100);
  for (int round = 0; round < 4; round++) {
    for (auto& b : buf) b = round == 3 ? 0xff : uint8_t(rng());  // all-ones: every carry
    for (size_t off = 0; off < 4; off++)  // unaligned starts
      for (size_t n = 0; n <= 300; n++) {
        uint32_t acc = round == 0 ? 0 : rng() % 0x20000;
        INFO("round " << round << " off " << off << " n " << n << " acc " << acc);
        REQUIRE(fold(sum_bytes(buf.data() + off, n, acc)) == reference(buf.data() + off, n, acc));
      }
    REQUIRE(fold(sum_bytes(buf.data() + 1, 2099, 5)) == reference(buf.data() + 1, 2099, 5));
  }
}

TEST_CASE("IPv4: a 20-byte header's checksum is verified as RFC 1071's loop verifies it", "[wire][ipv4][checksum]") {
  // parse_ipv4 checks the usual 20-byte header without sum_bytes: every
  // checksum value (valid or not), over random headers and the all-ones
  // and all-zero corner cases, is judged as checksum() judges it.
  std::mt19937 rng(5);
  Bytes h(20);
  for (int round = 0; round < 3000; round++) {
    for (auto& b : h) b = round == 0 ? 0xff : uint8_t(rng());
    h[0] = 0x45;
    store16(h.data() + 2, 20);
    store16(h.data() + 6, 0);  // not a fragment
    if (round == 1) {
      std::fill(h.begin() + 1, h.end(), 0);
      store16(h.data() + 2, 20);
    }
    for (int k = 0; k < 3; k++) {
      if (k == 0) fix_ip_checksum(h);                            // valid
      if (k == 1) store16(h.data() + 10, uint16_t(rng()));        // almost surely wrong
      if (k == 2) store16(h.data() + 10, uint16_t(~load16(h.data() + 10)));
      Ipv4Repr ip;
      bool ok = checksum(h.data(), 20) == 0;
      INFO("round " << round << " k " << k);
      CHECK((parse_ipv4(h, ip) != Drop::Ipv4Checksum) == ok);
    }
  }
}

TEST_CASE("checksum: headers summed from their fields equal the bytes written; pieces of any parity chain",
          "[wire]") {
  std::mt19937 rng(5);
  for (int i = 0; i < 2000; i++) {
    TcpRepr t;
    t.src_port = uint16_t(rng() | 1);  // never 0 (parse_tcp refuses it)
    t.dst_port = uint16_t(rng() | 1);
    t.seq = rng();
    t.ack = rng();
    t.flags = uint8_t(0x10 | (rng() & 0x28));  // ACK, maybe PSH/URG: flags parse_tcp accepts
    t.window = uint16_t(rng());
    t.urgent = uint16_t(rng() % 3 == 0 ? rng() : 0);
    if (rng() % 2) t.opt.mss = uint16_t(rng() | 1);
    if (rng() % 2) t.opt.wscale = uint8_t(rng() % 15);
    t.opt.has_ts = rng() % 2;
    t.opt.ts_val = rng();
    t.opt.ts_ecr = rng();
    t.opt.sack_permitted = rng() % 2;
    Bytes b(60 + 300);
    size_t payload = rng() % 300;
    for (size_t k = 0; k < payload; k++) b[tcp_header_len(t) + k] = uint8_t(rng());
    Ipv4Repr ip;
    ip.src = rng();
    ip.dst = rng();
    ip.proto = kProtoTcp;
    ip.id = uint16_t(rng());
    ip.ttl = uint8_t(rng());
    ip.tos = uint8_t(rng());
    ip.payload_len = uint16_t(tcp_header_len(t) + payload);
    // The header's field sum is the sum of the bytes emitted.
    size_t hl = emit_tcp_header(b.data(), t, nullptr, payload);
    INFO("iteration " << i);
    REQUIRE(fold(tcp_fields_sum(t)) == fold(sum_bytes(b.data(), hl)));
    // Both emitters produce a segment that verifies.
    uint32_t psum = 0;
    size_t done = 0;
    for (size_t at = 0; at < payload;) {  // the payload in pieces of odd and even sizes
      size_t n = std::min<size_t>(payload - at, 1 + rng() % 7);
      psum = sum_more(psum, b.data() + hl + at, n, done);
      done += n;
      at += n;
    }
    REQUIRE(fold(psum) == fold(sum_bytes(b.data() + hl, payload)));
    emit_tcp_header(b.data(), t, &ip, payload, psum);
    TcpRepr back;
    REQUIRE(parse_tcp(std::span<const uint8_t>(b.data(), hl + payload), back, &ip) == Drop::None);
    // ...and every field reads back as it was given.
    CHECK(back.src_port == t.src_port);
    CHECK(back.dst_port == t.dst_port);
    CHECK(back.seq == t.seq);
    CHECK(back.ack == t.ack);
    CHECK(back.flags == t.flags);
    CHECK(back.window == t.window);
    CHECK(back.urgent == t.urgent);
    CHECK(back.opt.mss == t.opt.mss);
    CHECK(back.opt.has_wscale() == t.opt.has_wscale());
    if (t.opt.has_wscale()) CHECK(back.opt.wscale == t.opt.wscale);
    CHECK(back.opt.sack_permitted == t.opt.sack_permitted);
    CHECK(back.opt.has_ts == t.opt.has_ts);
    if (t.opt.has_ts) CHECK((back.opt.ts_val == t.opt.ts_val && back.opt.ts_ecr == t.opt.ts_ecr));
    CHECK(back.payload.size() == payload);
    Bytes h(kIpv4MinHdr);
    emit_ipv4(h.data(), ip);
    REQUIRE(checksum(h.data(), h.size()) == 0);
  }
}

TEST_CASE("ip: dotted quads parse and print", "[wire]") {
  uint32_t a;
  REQUIRE(parse_ip("198.18.0.2", a));
  CHECK(a == 0xC6120002);
  CHECK(ip_to_string(a) == "198.18.0.2");
  CHECK_FALSE(parse_ip("198.18.0", a));
  CHECK_FALSE(parse_ip("198.18.0.256", a));
  CHECK_FALSE(parse_ip("198.18.0.2x", a));
  CHECK_FALSE(parse_ip("", a));
  CHECK_FALSE(parse_ip("1..2.3", a));
}

TEST_CASE("ethernet and ARP round trip; malformed ARP refused", "[wire][arp]") {
  Bytes f(kEthHdrLen + kArpLen);
  EthRepr e{kBroadcastMac, {2, 0, 0, 0, 0, 1}, kEtherTypeArp};
  emit_eth(f.data(), e);
  ArpRepr a{ArpOp::Request, {2, 0, 0, 0, 0, 1}, {}, 0xC6120001, 0xC6120002};
  emit_arp(f.data() + kEthHdrLen, a);
  EthRepr e2;
  REQUIRE(parse_eth(f, e2) == Drop::None);
  CHECK(e2.ethertype == kEtherTypeArp);
  CHECK(e2.dst == kBroadcastMac);
  ArpRepr a2;
  REQUIRE(parse_arp(std::span(f).subspan(kEthHdrLen), a2) == Drop::None);
  CHECK(a2.op == ArpOp::Request);
  CHECK(a2.spa == 0xC6120001);
  CHECK(a2.tpa == 0xC6120002);
  CHECK(a2.sha == a.sha);

  CHECK(parse_eth(std::span(f).first(13), e2) == Drop::EthShort);
  CHECK(parse_arp(std::span(f).subspan(kEthHdrLen, 27), a2) == Drop::ArpMalformed);
  Bytes bad = f;
  bad[kEthHdrLen + 4] = 8;  // hlen 8
  CHECK(parse_arp(std::span(bad).subspan(kEthHdrLen), a2) == Drop::ArpMalformed);
  bad = f;
  bad[kEthHdrLen + 7] = 9;  // op 9
  CHECK(parse_arp(std::span(bad).subspan(kEthHdrLen), a2) == Drop::ArpMalformed);
}

TEST_CASE("ICMP echo: round trip, bad checksum, other types", "[wire][icmp]") {
  const uint8_t data[] = {1, 2, 3, 4, 5};
  Bytes p(kIcmpHdrLen + sizeof data);
  IcmpEchoRepr e{8, 0x1234, 7, data};
  CHECK(emit_icmp_echo(p.data(), e) == p.size());
  IcmpEchoRepr r;
  REQUIRE(parse_icmp_echo(p, r) == Drop::None);
  CHECK(r.type == 8);
  CHECK(r.ident == 0x1234);
  CHECK(r.seq == 7);
  CHECK(r.data.size() == 5);
  p[9] ^= 1;
  CHECK(parse_icmp_echo(p, r) == Drop::IcmpChecksum);
  CHECK(parse_icmp_echo(std::span(p).first(7), r) == Drop::IcmpShort);
  Bytes unreach(8, 0);
  unreach[0] = 3;
  store16(unreach.data() + 2, checksum(unreach.data(), 8));
  CHECK(parse_icmp_echo(unreach, r) == Drop::IcmpType);
}

TEST_CASE("TCP: emit then parse keeps every field and option", "[wire][tcp]") {
  const uint8_t payload[] = {'h', 'e', 'l', 'l', 'o'};
  TcpRepr t;
  t.src_port = 40000;
  t.dst_port = 80;
  t.seq = 0xfffffff0;
  t.ack = 12345;
  t.flags = flag::SYN | flag::ACK;
  t.window = 29200;
  t.opt.mss = 1460;
  t.opt.wscale = 7;
  t.opt.sack_permitted = true;
  t.opt.has_ts = true;
  t.opt.ts_val = 111;
  t.opt.ts_ecr = 222;
  t.payload = payload;
  CHECK(tcp_header_len(t) == 40);
  Bytes p = make_tcp_packet(t);
  TcpRepr r;
  REQUIRE(parse_packet(p, r) == Drop::None);
  CHECK(r.src_port == 40000);
  CHECK(r.dst_port == 80);
  CHECK(r.seq == 0xfffffff0);
  CHECK(r.ack == 12345);
  CHECK(r.flags == (flag::SYN | flag::ACK));
  CHECK(r.window == 29200);
  CHECK(r.opt.mss == 1460);
  CHECK(r.opt.wscale == 7);
  CHECK(r.opt.sack_permitted);
  CHECK(r.opt.has_ts);
  CHECK(r.opt.ts_val == 111);
  CHECK(r.opt.ts_ecr == 222);
  CHECK(r.payload.size() == 5);
  CHECK(r.seg_len() == 6);  // SYN + 5 bytes

  // Every option layout emits a parseable header.
  for (int mask = 0; mask < 16; mask++) {
    TcpRepr u;
    u.src_port = 1;
    u.dst_port = 2;
    u.flags = flag::ACK;
    if (mask & 1) u.opt.mss = 536;
    if (mask & 2) u.opt.wscale = 14;
    if (mask & 4) u.opt.sack_permitted = true;
    if (mask & 8) { u.opt.has_ts = true; u.opt.ts_val = 5; }
    Bytes q = make_tcp_packet(u);
    TcpRepr v;
    REQUIRE(parse_packet(q, v) == Drop::None);
    CHECK(v.opt.mss == u.opt.mss);
    CHECK(v.opt.wscale == u.opt.wscale);
    CHECK(v.opt.sack_permitted == u.opt.sack_permitted);
    CHECK(v.opt.has_ts == u.opt.has_ts);
  }
}

TEST_CASE("IPv4: malformed headers return their reason", "[wire][ipv4][malformed]") {
  TcpRepr t;
  t.src_port = 1;
  t.dst_port = 2;
  t.flags = flag::ACK;
  Bytes good = make_tcp_packet(t);
  Ipv4Repr ip;
  REQUIRE(parse_ipv4(good, ip) == Drop::None);

  CHECK(parse_ipv4(std::span(good).first(19), ip) == Drop::Ipv4Short);
  Bytes p = good;
  p[0] = 0x65;
  CHECK(parse_ipv4(p, ip) == Drop::Ipv4Version);
  p = good;
  p[0] = 0x44;  // IHL 4 < 5
  CHECK(parse_ipv4(p, ip) == Drop::Ipv4Ihl);
  p = good;
  p[0] = 0x4f;  // IHL 15 = 60 bytes > 40-byte packet
  CHECK(parse_ipv4(p, ip) == Drop::Ipv4Ihl);
  p = good;
  store16(p.data() + 2, uint16_t(p.size() + 1));  // total length past the frame
  fix_ip_checksum(p);
  CHECK(parse_ipv4(p, ip) == Drop::Ipv4TotalLength);
  p = good;
  store16(p.data() + 2, 19);  // total length below the header
  fix_ip_checksum(p);
  CHECK(parse_ipv4(p, ip) == Drop::Ipv4TotalLength);
  p = good;
  p[12] ^= 1;
  CHECK(parse_ipv4(p, ip) == Drop::Ipv4Checksum);
  CHECK(parse_ipv4(p, ip, /*csum_verified=*/true) == Drop::None);
  p = good;
  store16(p.data() + 6, 0x2000);  // MF
  fix_ip_checksum(p);
  CHECK(parse_ipv4(p, ip) == Drop::Ipv4Fragment);
  p = good;
  store16(p.data() + 6, 0x0010);  // offset
  fix_ip_checksum(p);
  CHECK(parse_ipv4(p, ip) == Drop::Ipv4Fragment);

  // Ethernet padding after the datagram is fine; the payload stops at total length.
  p = good;
  p.resize(p.size() + 6, 0);
  REQUIRE(parse_ipv4(p, ip) == Drop::None);
  CHECK(ip.payload_len == 20);

  // IP options are skipped by IHL.
  Bytes o(good.size() + 4);
  std::copy(good.begin(), good.begin() + 20, o.begin());
  o[0] = 0x46;
  store16(o.data() + 2, uint16_t(o.size()));
  o[20] = 1; o[21] = 1; o[22] = 1; o[23] = 0;  // NOP NOP NOP EOL
  std::copy(good.begin() + 20, good.end(), o.begin() + 24);
  fix_ip_checksum(o);
  REQUIRE(parse_ipv4(o, ip) == Drop::None);
  CHECK(ip.hdr_len == 24);
  TcpRepr r;
  CHECK(parse_tcp(std::span(o).subspan(24, ip.payload_len), r, &ip) == Drop::None);
}

TEST_CASE("TCP: malformed segments return their reason", "[wire][tcp][malformed]") {
  TcpRepr t;
  t.src_port = 1000;
  t.dst_port = 80;
  t.flags = flag::ACK;
  t.opt.mss = 1460;
  Bytes good = make_tcp_packet(t);
  auto reparse = [](Bytes p, auto&& mutate, bool fix_sum = true) {
    mutate(p);
    if (fix_sum) {
      Ipv4Repr ip;
      parse_ipv4(p, ip, true);
      uint8_t* th = p.data() + 20;
      store16(th + 16, 0);
      uint32_t acc = pseudo_sum(ip.src, ip.dst, kProtoTcp, uint16_t(p.size() - 20));
      store16(th + 16, fold(sum_bytes(th, p.size() - 20, acc)));
    }
    TcpRepr r;
    return parse_packet(p, r);
  };
  CHECK(reparse(good, [](Bytes&) {}) == Drop::None);
  CHECK(reparse(good, [](Bytes& p) { p[20 + 12] = 0x40; }) == Drop::TcpDataOffset);  // 16 < 20
  CHECK(reparse(good, [](Bytes& p) { p[20 + 12] = 0xf0; }) == Drop::TcpDataOffset);  // 60 > 24
  CHECK(reparse(good, [](Bytes& p) { p[30] ^= 0x55; }, false) == Drop::TcpChecksum);
  CHECK(reparse(good, [](Bytes& p) { p[20 + 13] = flag::SYN | flag::FIN; }) == Drop::TcpFlags);
  CHECK(reparse(good, [](Bytes& p) { p[20 + 13] = flag::SYN | flag::RST; }) == Drop::TcpFlags);
  CHECK(reparse(good, [](Bytes& p) { p[20 + 13] = 0; }) == Drop::TcpFlags);  // null scan
  CHECK(reparse(good, [](Bytes& p) { p[20 + 13] = flag::ECE | flag::CWR; }) == Drop::TcpFlags);
  CHECK(reparse(good, [](Bytes& p) { store16(p.data() + 20, 0); }) == Drop::TcpPort);
  // An option whose length runs past the header.
  CHECK(reparse(good, [](Bytes& p) { p[41] = 8; }) == Drop::TcpOption);
  // An option with length below 2.
  CHECK(reparse(good, [](Bytes& p) { p[41] = 1; }) == Drop::TcpOption);
  // MSS with the wrong length.
  CHECK(reparse(good, [](Bytes& p) { p[41] = 2; }) == Drop::TcpOption);
  // A kind byte with no room for its length.
  CHECK(reparse(good, [](Bytes& p) { p[40] = 1; p[41] = 1; p[42] = 1; p[43] = 30; }) ==
        Drop::TcpOption);
  // An unknown option is skipped by its length.
  CHECK(reparse(good, [](Bytes& p) { p[40] = 99; p[41] = 4; }) == Drop::None);
  // EOL ends option parsing.
  CHECK(reparse(good, [](Bytes& p) { p[40] = 0; p[41] = 77; }) == Drop::None);
  // Too short for a TCP header.
  TcpRepr r;
  CHECK(parse_tcp(std::span(good).subspan(20, 19), r) == Drop::TcpShort);
}

TEST_CASE("TCP options: SACK blocks kept (at most 4), wrong sizes refused", "[wire][tcp]") {
  TcpOptions o;
  uint8_t sack[2 + 8 * 5] = {5, 2 + 8 * 5};
  for (int i = 0; i < 5; i++) store32(sack + 2 + 8 * i, uint32_t(i * 100)), store32(sack + 6 + 8 * i, uint32_t(i * 100 + 50));
  REQUIRE(parse_tcp_options(sack, o) == Drop::None);
  CHECK(o.sack_count == 4);
  CHECK(o.sack[3].left == 300);
  uint8_t bad[] = {5, 7, 0, 0, 0, 0, 0};
  CHECK(parse_tcp_options(bad, o) == Drop::TcpOption);
  uint8_t ts_bad[] = {8, 9, 0, 0, 0, 0, 0, 0, 0};
  CHECK(parse_tcp_options(ts_bad, o) == Drop::TcpOption);
  uint8_t ws_bad[] = {3, 4, 0, 0};
  CHECK(parse_tcp_options(ws_bad, o) == Drop::TcpOption);
}

TEST_CASE("TCP options: the aligned timestamp (NOP, NOP, TS) parses as any other layout of it", "[wire][tcp]") {
  // parse_tcp_options takes RFC 7323 Appendix A's 12 bytes without its
  // loop: the result must be the loop's, which the other layouts still use.
  std::mt19937 rng(3);
  for (int i = 0; i < 1000; i++) {
    uint32_t val = uint32_t(rng()), ecr = uint32_t(rng());
    uint8_t aligned[12] = {1, 1, 8, 10};
    store32(aligned + 4, val);
    store32(aligned + 8, ecr);
    uint8_t trailing[12] = {8, 10};  // TS first, NOPs after: the loop
    store32(trailing + 2, val);
    store32(trailing + 6, ecr);
    trailing[10] = trailing[11] = 1;
    TcpOptions a, b;
    REQUIRE(parse_tcp_options(aligned, a) == Drop::None);
    REQUIRE(parse_tcp_options(trailing, b) == Drop::None);
    CHECK(a.has_ts);
    CHECK(a.ts_val == val);
    CHECK(a.ts_ecr == ecr);
    CHECK((a.has_ts == b.has_ts && a.ts_val == b.ts_val && a.ts_ecr == b.ts_ecr && a.mss == b.mss &&
           a.wscale == b.wscale && a.sack_permitted == b.sack_permitted && a.sack_count == b.sack_count));
  }
  // The same 12 bytes with a wrong TS length is refused by the loop, as before.
  uint8_t bad[12] = {1, 1, 8, 11};
  TcpOptions o;
  CHECK(parse_tcp_options(bad, o) == Drop::TcpOption);
}

TEST_CASE("parsers never read past random input", "[wire][random]") {
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 20000; iter++) {
    size_t n = rng() % 80;
    // The input lives at the end of a heap block so an over-read would leave it.
    std::vector<uint8_t> buf(n);
    for (auto& b : buf) b = uint8_t(rng());
    if (n > 0 && (iter & 1)) buf[0] = 0x45;
    Ipv4Repr ip;
    TcpRepr t;
    EthRepr e;
    ArpRepr a;
    IcmpEchoRepr ic;
    parse_eth(buf, e);
    parse_arp(buf, a);
    parse_icmp_echo(buf, ic);
    if (parse_ipv4(buf, ip, iter & 2) == Drop::None) {
      CHECK(ip.hdr_len + ip.payload_len <= n);
    }
    Drop d = parse_tcp(buf, t, nullptr, true);
    if (d == Drop::None) CHECK(t.payload.data() + t.payload.size() <= buf.data() + n);
  }
}

TEST_CASE("drop reasons all have names", "[wire]") {
  for (size_t i = 0; i < kDropCount; i++) CHECK(std::string(to_string(Drop(i))) != "?");
}
