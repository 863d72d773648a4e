// IPv6: address text (RFC 4291 / RFC 5952), the header and extension-header
// walk with every malformed input returning its reason, ICMPv6 and ND
// messages, the address-id table, and the stack over IPv6 (handshake,
// TIME-WAIT, SYN cookies, ISS over the whole address, Packet Too Big).
#include <catch2/catch.hpp>

#include <vector>

#include "apps/apps.h"
#include "flow/addr6.h"
#include "stack/stack.h"
#include "stack_net.h"
#include "wire/wire.h"

using namespace tcpterm;
using namespace tcpterm::wire;
using namespace tcpterm::testing;
using Bytes = std::vector<uint8_t>;

namespace {

Ip6 ip6(const char* s) {
  Ip6 a{};
  REQUIRE(parse_ip6(s, a));
  return a;
}

// An IPv6 packet: header, then `ext` (already encoded extension headers,
// the first one's type in `first`), then an upper layer of type `proto`.
Bytes v6_packet(const Bytes& upper, uint8_t proto, const Bytes& ext = {}, uint8_t first = 0xff,
                const char* src = "2001:2::1", const char* dst = "2001:2::2") {
  Bytes p(kIpv6HdrLen + ext.size() + upper.size());
  Ipv6Repr ip;
  ip.src = ip6(src);
  ip.dst = ip6(dst);
  ip.proto = ext.empty() ? proto : first;
  ip.payload_len = uint16_t(ext.size() + upper.size());
  emit_ipv6(p.data(), ip);
  std::copy(ext.begin(), ext.end(), p.begin() + kIpv6HdrLen);
  std::copy(upper.begin(), upper.end(), p.begin() + kIpv6HdrLen + ext.size());
  return p;
}

// A TCP segment with a valid checksum over the IPv6 pseudo-header.
Bytes tcp6(const TcpRepr& t, const char* src = "2001:2::1", const char* dst = "2001:2::2") {
  Ipv6Repr ip;
  ip.src = ip6(src);
  ip.dst = ip6(dst);
  Bytes b(tcp_header_len(t) + t.payload.size());
  std::copy(t.payload.begin(), t.payload.end(), b.begin() + tcp_header_len(t));
  emit_tcp_header6(b.data(), t, ip, t.payload.size());
  return b;
}

TcpRepr syn(uint16_t sport = 40000, uint16_t dport = 80) {
  TcpRepr t;
  t.src_port = sport;
  t.dst_port = dport;
  t.seq = 1000;
  t.flags = flag::SYN;
  t.window = 65535;
  t.opt.mss = 1440;
  return t;
}

// An options header (hop-by-hop or destination options) of 8 bytes:
// next header, length 0, then 6 bytes of options.
Bytes opts_hdr(uint8_t next, std::vector<uint8_t> opts = {1, 4, 0, 0, 0, 0}) {
  Bytes h{next, 0};
  h.insert(h.end(), opts.begin(), opts.end());
  return h;
}

}  // namespace

TEST_CASE("ipv6: text forms parse (RFC 4291 2.2) and print in RFC 5952 form", "[wire][ipv6]") {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"2001:db8::1", "2001:db8::1"},
      {"2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},  // 4.1 no leading zeros, 4.3 lowercase
      {"::", "::"},
      {"::1", "::1"},
      {"1::", "1::"},
      {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},  // 4.2.3: the first of equal runs
      {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},        // 4.2.3: the longest run
      {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},  // 4.2.2: one zero group stays
      {"::ffff:192.0.2.1", "::ffff:192.0.2.1"},        // 5: IPv4-mapped
      {"64:ff9b::192.0.2.33", "64:ff9b::c000:221"},
      {"2001:2::2", "2001:2::2"},
  };
  for (const auto& c : cases) {
    INFO(c.in);
    Ip6 a;
    REQUIRE(parse_ip6(c.in, a));
    CHECK(ip6_to_string(a) == c.out);
    Ip6 b;
    REQUIRE(parse_ip6(ip6_to_string(a), b));
    CHECK(a == b);
  }
  for (const char* bad : {"", ":", ":::", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7",
                          "g::", "1:", ":1", "1:2:3:4:5:6:7:8::", "::1.2.3", "1.2.3.4", "::ffff:1.2.3.4.5",
                          "1:2:3:4:5:6:7:1.2.3.4", "[::1]"}) {
    INFO(bad);
    Ip6 a;
    CHECK_FALSE(parse_ip6(bad, a));
  }
  CHECK(ip6_to_string(solicited_node(ip6("2001:2::abcd:1234"))) == "ff02::1:ffcd:1234");
  CHECK(multicast_mac(ip6("ff02::1:ffcd:1234")) == Mac{0x33, 0x33, 0xff, 0xcd, 0x12, 0x34});
  CHECK(ip6_masked(ip6("2001:2:0:1:ffff::1"), 48) == ip6("2001:2::"));
  CHECK(ip6_masked(ip6("2001:2::ff"), 121) == ip6("2001:2::80"));
  CHECK(ip6_to_string(ip6_mapped(0xC6120002)) == "::ffff:198.18.0.2");
  CHECK(ip6_martian_source(ip6_mapped(0xC6120002)));  // never a peer's IPv6 address
  CHECK(ip6_prefix_match(ip6("2001:2::1"), ip6("2001:2::"), 64));
  CHECK(ip6_prefix_match(ip6("2001:2:0:1::1"), ip6("2001:2::"), 48));
  CHECK_FALSE(ip6_prefix_match(ip6("2001:2:0:1::1"), ip6("2001:2::"), 64));
  CHECK(ip6_prefix_match(ip6("2001:2::81"), ip6("2001:2::80"), 121));
  CHECK_FALSE(ip6_prefix_match(ip6("2001:2::81"), ip6("2001:2::80"), 128));
}

TEST_CASE("ipv6: a TCP segment parses, its checksum covers the pseudo-header", "[wire][ipv6]") {
  TcpRepr t = syn();
  const char* hello = "hello";
  t.flags = flag::ACK | flag::PSH;
  t.payload = std::span(reinterpret_cast<const uint8_t*>(hello), 5);
  Bytes p = v6_packet(tcp6(t), kProtoTcp);
  p.resize(p.size() + 6, 0);  // Ethernet padding after the payload is allowed
  Ipv6Repr ip;
  REQUIRE(parse_ipv6(p, ip) == Drop::None);
  CHECK(ip.proto == kProtoTcp);
  CHECK(ip.hdr_len == 40);
  CHECK(ip.payload_len == 20 + 4 + 5);
  CHECK(ip6_to_string(ip.src) == "2001:2::1");
  TcpRepr u;
  auto l4 = std::span<const uint8_t>(p).subspan(ip.hdr_len, ip.payload_len);
  REQUIRE(parse_tcp6(l4, u, ip) == Drop::None);
  CHECK(u.payload.size() == 5);
  CHECK(u.opt.mss == 1440);
  // The pseudo-header holds both addresses: another source fails the sum.
  Ipv6Repr other = ip;
  other.src[15] ^= 1;
  CHECK(parse_tcp6(l4, u, other) == Drop::TcpChecksum);
  CHECK(parse_tcp6(l4, u, other, true) == Drop::None);  // the port vouched for it
  Bytes bad(l4.begin(), l4.end());
  bad[bad.size() - 1] ^= 0x40;
  CHECK(parse_tcp6(bad, u, ip) == Drop::TcpChecksum);
}

TEST_CASE("ipv6: malformed headers and extension chains return their reasons", "[wire][ipv6]") {
  Bytes seg = tcp6(syn());
  Ipv6Repr ip;
  auto parse = [&](const Bytes& p) { return parse_ipv6(p, ip); };

  Bytes ok = v6_packet(seg, kProtoTcp);
  REQUIRE(parse(ok) == Drop::None);
  CHECK(parse(Bytes(ok.begin(), ok.begin() + 39)) == Drop::Ipv6Short);
  Bytes v = ok;
  v[0] = 0x45;
  CHECK(parse(v) == Drop::Ipv6Version);
  Bytes len = ok;
  store16(len.data() + 4, uint16_t(seg.size() + 1));  // longer than the frame
  CHECK(parse(len) == Drop::Ipv6PayloadLength);
  store16(len.data() + 4, 0);  // a jumbogram
  CHECK(parse(len) == Drop::Ipv6PayloadLength);
  for (const char* src : {"::1", "ff02::1", "::ffff:198.18.0.1"}) {
    INFO(src);
    CHECK(parse(v6_packet(seg, kProtoTcp, {}, 0xff, src)) == Drop::Ipv6BadAddr);
  }
  // The unspecified source passes the parser (ND's DAD uses it); the worker
  // refuses it for everything but neighbour discovery.
  CHECK(parse(v6_packet(seg, kProtoTcp, {}, 0xff, "::")) == Drop::None);

  // Hop-by-hop then destination options then TCP: walked.
  Bytes chain = opts_hdr(60);
  Bytes d = opts_hdr(kProtoTcp);
  chain.insert(chain.end(), d.begin(), d.end());
  REQUIRE(parse(v6_packet(seg, kProtoTcp, chain, 0)) == Drop::None);
  CHECK(ip.proto == kProtoTcp);
  CHECK(ip.hdr_len == 56);
  CHECK(ip.payload_len == seg.size());
  // Hop-by-hop anywhere but first (RFC 8200 4.1).
  Bytes late = opts_hdr(0);
  Bytes hbh = opts_hdr(kProtoTcp);
  late.insert(late.end(), hbh.begin(), hbh.end());
  CHECK(parse(v6_packet(seg, kProtoTcp, late, 60)) == Drop::Ipv6ExtHeader);
  // Options: Pad1 and PadN skipped, an unknown option with action 00
  // skipped, one with any other action refused (RFC 8200 4.2).
  CHECK(parse(v6_packet(seg, kProtoTcp, opts_hdr(kProtoTcp, {0, 0, 0x1e, 2, 0, 0}), 60)) == Drop::None);
  CHECK(parse(v6_packet(seg, kProtoTcp, opts_hdr(kProtoTcp, {0x5e, 4, 0, 0, 0, 0}), 60)) == Drop::Ipv6Option);
  CHECK(parse(v6_packet(seg, kProtoTcp, opts_hdr(kProtoTcp, {0xc2, 4, 0, 0, 0, 0}), 0)) == Drop::Ipv6Option);
  // An option running past its header.
  CHECK(parse(v6_packet(seg, kProtoTcp, opts_hdr(kProtoTcp, {1, 5, 0, 0, 0, 0}), 60)) == Drop::Ipv6ExtHeader);
  // A header whose length runs past the packet.
  Bytes longh = opts_hdr(kProtoTcp);
  longh[1] = 200;
  CHECK(parse(v6_packet(seg, kProtoTcp, longh, 60)) == Drop::Ipv6ExtHeader);
  // Routing: type 0 refused (RFC 5095); type 4 with segments left refused
  // (we forward nothing); with none left, skipped.
  Bytes rh0{kProtoTcp, 0, 0, 0, 0, 0, 0, 0};
  CHECK(parse(v6_packet(seg, kProtoTcp, rh0, 43)) == Drop::Ipv6RoutingHeader);
  Bytes rh4{kProtoTcp, 2, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(parse(v6_packet(seg, kProtoTcp, rh4, 43)) == Drop::Ipv6RoutingHeader);
  rh4[3] = 0;
  CHECK(parse(v6_packet(seg, kProtoTcp, rh4, 43)) == Drop::None);
  // Fragments are refused, first or later in the chain.
  Bytes frag{kProtoTcp, 0, 0, 1, 0, 0, 0, 42};
  CHECK(parse(v6_packet(seg, kProtoTcp, frag, 44)) == Drop::Ipv6Fragment);
  Bytes df = opts_hdr(44);
  df.insert(df.end(), frag.begin(), frag.end());
  CHECK(parse(v6_packet(seg, kProtoTcp, df, 60)) == Drop::Ipv6Fragment);
  // A chain of more than kIpv6MaxExtHeaders headers.
  Bytes many;
  for (unsigned i = 0; i < kIpv6MaxExtHeaders + 1; i++) {
    Bytes h = opts_hdr(i == kIpv6MaxExtHeaders ? kProtoTcp : 60);
    many.insert(many.end(), h.begin(), h.end());
  }
  CHECK(parse(v6_packet(seg, kProtoTcp, many, 60)) == Drop::Ipv6ExtChain);
  many.resize(8 * kIpv6MaxExtHeaders);
  many[many.size() - 8] = kProtoTcp;
  CHECK(parse(v6_packet(seg, kProtoTcp, many, 60)) == Drop::None);
  // A header cut short by the payload's end.
  Bytes cut{kProtoTcp, 0, 1, 4};
  CHECK(parse(v6_packet({}, kProtoTcp, cut, 60)) == Drop::Ipv6ExtHeader);
}

TEST_CASE("icmpv6: echo, NS, NA and Packet Too Big round-trip; malformed ND is refused", "[wire][ipv6][nd]") {
  Ipv6Repr ip;
  ip.src = ip6("2001:2::1");
  ip.dst = ip6("2001:2::2");
  auto make = [&](const Icmp6Repr& m) {
    Bytes b(icmp6_len(m));
    emit_icmp6(b.data(), m, ip);
    return b;
  };
  Icmp6Repr echo;
  echo.type = icmp6::kEchoRequest;
  echo.ident = 7;
  echo.seq = 9;
  const uint8_t data[] = {1, 2, 3};
  echo.data = data;
  Bytes e = make(echo);
  Icmp6Repr m;
  REQUIRE(parse_icmp6(e, ip, m) == Drop::None);
  CHECK(m.type == icmp6::kEchoRequest);
  CHECK(m.ident == 7);
  CHECK(m.seq == 9);
  CHECK(m.data.size() == 3);
  e[10] ^= 1;
  CHECK(parse_icmp6(e, ip, m) == Drop::Icmp6Checksum);
  CHECK(parse_icmp6(Bytes(4), ip, m) == Drop::Icmp6Short);

  Icmp6Repr ns;
  ns.type = icmp6::kNeighborSolicit;
  ns.target = ip6("2001:2::2");
  ns.has_lladdr = true;
  ns.lladdr = Mac{2, 0, 0, 0, 0, 1};
  Bytes b = make(ns);
  CHECK(b.size() == 32);
  REQUIRE(parse_icmp6(b, ip, m) == Drop::None);
  CHECK(m.target == ns.target);
  CHECK(m.has_lladdr);
  CHECK(m.lladdr == ns.lladdr);
  // An option of length 0 (RFC 4861 7.1.1), a multicast target, a code.
  Bytes z = b;
  z[25] = 0;
  store16(z.data() + 2, 0);
  store16(z.data() + 2, fold(sum_bytes(z.data(), z.size(), pseudo_sum6(ip.src, ip.dst, kProtoIcmp6, uint32_t(z.size())))));
  CHECK(parse_icmp6(z, ip, m) == Drop::NdMalformed);
  Icmp6Repr mc = ns;
  mc.target = ip6("ff02::1");
  CHECK(parse_icmp6(make(mc), ip, m) == Drop::NdMalformed);
  Icmp6Repr code = ns;
  code.code = 1;
  CHECK(parse_icmp6(make(code), ip, m) == Drop::NdMalformed);
  // A DAD probe (from ::) must not carry a source link-layer option.
  Ipv6Repr dad = ip;
  dad.src = Ip6{};
  Bytes db(icmp6_len(ns));
  emit_icmp6(db.data(), ns, dad);
  CHECK(parse_icmp6(db, dad, m) == Drop::NdMalformed);
  Icmp6Repr ns_bare = ns;
  ns_bare.has_lladdr = false;
  Bytes db2(icmp6_len(ns_bare));
  emit_icmp6(db2.data(), ns_bare, dad);
  CHECK(parse_icmp6(db2, dad, m) == Drop::None);

  Icmp6Repr na;
  na.type = icmp6::kNeighborAdvert;
  na.na_flags = icmp6::kNaSolicited | icmp6::kNaOverride;
  na.target = ip6("2001:2::2");
  na.has_lladdr = true;
  na.lladdr = Mac{2, 0, 0, 0, 0, 2};
  REQUIRE(parse_icmp6(make(na), ip, m) == Drop::None);
  CHECK(m.na_flags == (icmp6::kNaSolicited | icmp6::kNaOverride));
  CHECK(m.lladdr == na.lladdr);
  // An NS's option is the source link-layer address; an NA's the target's:
  // the other kind is skipped, not learned.
  Bytes wrong = make(na);
  wrong[24] = icmp6::kOptSourceLinkAddr;
  store16(wrong.data() + 2, 0);
  store16(wrong.data() + 2, fold(sum_bytes(wrong.data(), wrong.size(), pseudo_sum6(ip.src, ip.dst, kProtoIcmp6, uint32_t(wrong.size())))));
  REQUIRE(parse_icmp6(wrong, ip, m) == Drop::None);
  CHECK_FALSE(m.has_lladdr);

  Icmp6Repr ptb;
  ptb.type = icmp6::kPacketTooBig;
  ptb.mtu = 1280;
  Bytes quoted(48, 0x60);
  ptb.data = quoted;
  REQUIRE(parse_icmp6(make(ptb), ip, m) == Drop::None);
  CHECK(m.mtu == 1280);
  CHECK(m.data.size() == 48);

  Icmp6Repr ra;
  ra.type = icmp6::kRouterAdvert;
  CHECK(parse_icmp6(make(ra), ip, m) == Drop::Icmp6Type);
  CHECK(m.type == icmp6::kRouterAdvert);
}

TEST_CASE("addr6 table: ids, references, reuse and a bound", "[flow][ipv6]") {
  flow::Addr6Table t(16, 12345);
  uint32_t a = t.acquire(ip6("2001:2::1"));
  REQUIRE(flow::is_v6_id(a));
  CHECK(t.acquire(ip6("2001:2::1")) == a);  // the same address, one more reference
  CHECK(t.refs(a) == 2);
  CHECK(t.find(ip6("2001:2::1")) == a);
  CHECK(t.find(ip6("2001:2::9")) == flow::Addr6Table::kNone);
  t.release(a);
  CHECK(t.find(ip6("2001:2::1")) == a);
  t.release(a);
  CHECK(t.find(ip6("2001:2::1")) == flow::Addr6Table::kNone);
  CHECK(t.size() == 0);
  // Fill it: 16 addresses, then none; every one is found, and released
  // ones are reused.
  std::vector<uint32_t> ids;
  for (int i = 0; i < 16; i++) {
    Ip6 x = ip6("2001:2::");
    x[15] = uint8_t(i);
    x[8] = uint8_t(i * 37);
    ids.push_back(t.acquire(x));
    REQUIRE(ids.back() != flow::Addr6Table::kNone);
  }
  CHECK(t.acquire(ip6("2001:2::ffff")) == flow::Addr6Table::kNone);
  CHECK(t.full_count() == 1);
  for (int i = 0; i < 16; i++) {
    Ip6 x = ip6("2001:2::");
    x[15] = uint8_t(i);
    x[8] = uint8_t(i * 37);
    CHECK(t.find(x) == ids[size_t(i)]);
    CHECK(t.addr(ids[size_t(i)]) == x);
  }
  for (int i = 0; i < 16; i += 2) t.release(ids[size_t(i)]);  // chains lose middle entries
  for (int i = 1; i < 16; i += 2) {
    Ip6 x = ip6("2001:2::");
    x[15] = uint8_t(i);
    x[8] = uint8_t(i * 37);
    CHECK(t.find(x) == ids[size_t(i)]);
  }
  CHECK(t.acquire(ip6("2001:2::ffff")) != flow::Addr6Table::kNone);
  CHECK(flow::kTimeWait6Bytes <= 64);
}

TEST_CASE("stack over IPv6: echo with loss, MSS 1440, the server's TIME-WAIT, addresses released",
          "[stack][ipv6]") {
  Net n;
  n.loss = 0.03;
  n.reorder = true;
  apps::Echo echo;
  REQUIRE(n.server->add_listener6(kServer6, 7, &echo));
  CHECK(n.server->addr6_table().size() == 1);  // the listener's address
  Client c;
  c.request = pattern(300000, 5);
  c.close_after = c.request.size();
  uint16_t syn_mss = 0;
  n.drop_if = [&](const Pkt& p) {
    if (p.v6 && p.h.syn() && !p.h.has_ack()) syn_mss = p.h.opt.mss;
    return false;
  };
  REQUIRE(n.open6(c, 41000, 7));
  n.run(n.now + 600000);
  CHECK(syn_mss == 1440);  // 1460 less the 20 more bytes of an IPv6 header
  CHECK(c.got == c.request);
  CHECK(n.server->flows() == 0);
  CHECK(n.client->flows() == 0);
  CHECK(n.client->tcp_stats().tw_expired == 1);
  // Nothing holds the client's addresses any more; the server keeps its
  // listener's.
  CHECK(n.client->addr6_table().size() == 0);
  CHECK(n.server->addr6_table().size() == 1);
  // IPv4 beside it is untouched.
  REQUIRE(n.server->add_listener(kServerIp, 7, &echo));
  Client c4;
  c4.request = "four";
  c4.close_after = 4;
  REQUIRE(n.open(c4, 41001, 7));
  n.run(n.now + 60000);
  CHECK(c4.got == "four");
}

TEST_CASE("stack over IPv6: http closes first, TIME-WAIT holds its addresses for 2*MSL and shows them",
          "[stack][ipv6][time-wait]") {
  Net n;
  apps::Params p{{"close", "always"}};
  std::string err;
  auto http = apps::make_app("http", p, err);
  REQUIRE(http);
  REQUIRE(n.server->add_listener6(Ip6{}, 80, http.get()));  // :: is any address
  Client c;
  c.request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(n.open6(c, 42000, 80));
  n.run(n.now + 100);
  CHECK(c.got.find("200 OK") != std::string::npos);
  CHECK(n.server->time_wait_records() == 1);
  CHECK(n.server->addr6_table().size() == 2);  // both addresses, held by the record
  auto fl = n.server->dump_flows(10);
  REQUIRE(fl.size() == 1);
  CHECK(fl[0].v6);
  CHECK(fl[0].local() == "[2001:2::2]:80");
  CHECK(fl[0].remote() == "[2001:2::1]:42000");
  CHECK(fl[0].state == TcpState::TimeWait);
  // A retransmitted FIN in TIME-WAIT is answered and restarts 2*MSL.
  n.run(n.now + n.cfg.tcp.two_msl_ms() + 1000);
  CHECK(n.server->time_wait_records() == 0);
  CHECK(n.server->tcp_stats().tw_expired == 1);
  CHECK(n.server->addr6_table().size() == 0);
}

TEST_CASE("stack over IPv6: SYN cookies bind the whole address; ISS differs in any address bit",
          "[stack][ipv6][syncookies]") {
  Net n;
  n.server->set_syncookies(stack::SynCookieMode::On);
  apps::Echo echo;
  REQUIRE(n.server->add_listener6(kServer6, 7, &echo));
  Client c;
  c.request = "cookie";
  c.close_after = 6;
  REQUIRE(n.open6(c, 43000, 7));
  n.run(n.now + 10000);
  CHECK(c.got == "cookie");
  CHECK(n.server->stats().syncookies_sent == 1);
  CHECK(n.server->stats().syncookies_ok == 1);

  // A cookie made for 2001:2::1 is refused from an address that differs
  // only in its top bits (a MAC over a 32-bit fold would not see them).
  stack::Stack& s = *n.server;
  WireSink& out = n.to_client;
  out.q.clear();
  TcpRepr t = syn(44000, 7);
  t.opt = {};
  Ipv6Repr ip;
  ip.src = kClient6;
  ip.dst = kServer6;
  ip.proto = kProtoTcp;
  s.input6(ip, t);
  REQUIRE(out.q.size() == 1);
  uint32_t cookie = out.q[0].h.seq;
  CHECK(out.q[0].h.opt.mss == 1440);
  out.q.clear();
  TcpRepr ack;
  ack.src_port = 44000;
  ack.dst_port = 7;
  ack.seq = t.seq + 1;
  ack.ack = cookie + 1;
  ack.flags = flag::ACK;
  ack.window = 1000;
  Ipv6Repr other = ip;
  other.src[0] ^= 0x80;  // 2001:... -> a001:...
  uint64_t failed = s.stats().syncookies_failed;
  s.input6(other, ack);
  CHECK(s.stats().syncookies_failed == failed + 1);
  CHECK(s.stats().syncookies_ok == 1);
  s.input6(ip, ack);
  CHECK(s.stats().syncookies_ok == 2);

  flow::FlowKey4 k1, k2;
  Ip6 far = kClient6;
  far[0] ^= 0x40;
  REQUIRE(s.key6(kServer6, 80, kClient6, 5000, k1));
  REQUIRE(s.key6(kServer6, 80, far, 5000, k2));
  CHECK(s.iss_for(k1) != s.iss_for(k2));
  s.release_key6(k1);
  s.release_key6(k2);
  CHECK(s.check_invariants());
}

TEST_CASE("stack over IPv6: Packet Too Big lowers the MSS only for a sequence number in flight",
          "[stack][ipv6][pmtu]") {
  Net n;
  apps::Discard discard;
  REQUIRE(n.server->add_listener6(kServer6, 9, &discard));
  Client c;
  c.request = pattern(20000, 9);
  REQUIRE(n.open6(c, 45000, 9));
  // The handshake goes through; the client's data segments are held.
  bool hold = true;
  std::vector<Pkt> held;
  n.drop_if = [&](const Pkt& p) {
    if (hold && p.v6 && !p.data.empty()) {
      held.push_back(p);
      return true;
    }
    return false;
  };
  n.run(n.now + 50);
  REQUIRE(!held.empty());
  CHECK(held[0].data.size() == 1440 - 12);  // the MSS less the timestamps option
  // The quoted packet: our IPv6 header and the first TCP bytes.
  auto quote = [&](uint32_t seq) {
    Bytes q(48);
    Ipv6Repr ip;
    ip.src = kClient6;
    ip.dst = kServer6;
    ip.proto = kProtoTcp;
    ip.payload_len = 1460;
    emit_ipv6(q.data(), ip);
    store16(q.data() + 40, 45000);
    store16(q.data() + 42, 9);
    store32(q.data() + 44, seq);
    return q;
  };
  uint64_t ignored = n.client->stats().pmtu_ignored;
  n.client->packet_too_big6(quote(held[0].h.seq + 7000000), 1400);  // not in flight: forged
  CHECK(n.client->stats().pmtu_ignored == ignored + 1);
  n.client->packet_too_big6(quote(held[0].h.seq), 1000);  // below 1280: the floor
  CHECK(n.client->stats().pmtu_lowered == 1);
  n.client->packet_too_big6(quote(held[0].h.seq), 1400);  // not lower than now: ignored
  CHECK(n.client->stats().pmtu_lowered == 1);
  held.clear();
  n.run(n.now + 5000);  // the retransmission timer fires
  REQUIRE(!held.empty());
  for (const Pkt& p : held) CHECK(p.data.size() <= 1280 - 60);
  CHECK(held[0].data.size() == 1220 - 12);
}

TEST_CASE("stack over IPv6: a new SYN in TIME-WAIT reopens (RFC 6191); a blind RST earns a challenge ACK (RFC 5961)",
          "[stack][ipv6][rfc6191][rfc5961]") {
  StackConfig cfg = Net::small();
  cfg.tcp.msl_ms = 30000;
  Net n(cfg);
  apps::Http http(5);
  REQUIRE(n.server->add_listener6(kServer6, 80, &http));
  Client a;
  a.request = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
  REQUIRE(n.open6(a, 43000));
  n.run(n.now + 100);
  REQUIRE(n.server->time_wait_records() == 1);
  n.now += 5000;
  n.client->advance(n.now);
  n.server->advance(n.now);
  Client b;
  b.request = a.request;
  REQUIRE(n.open6(b, 43000));  // the same 4-tuple, a newer incarnation
  n.run(n.now + 100);
  CHECK(b.got.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(n.server->tcp_stats().tw_syn_reopened == 1);
  CHECK(n.server->time_wait_records() == 1);  // the new one's

  apps::Echo echo;
  REQUIRE(n.server->add_listener6(kServer6, 7, &echo));
  Client c;
  c.request = "abc";
  uint32_t next_seq = 0;
  n.drop_if = [&](const Pkt& p) {
    if (p.v6 && p.h.dst_port == 7) next_seq = p.h.seq + p.h.seg_len();
    return false;
  };
  REQUIRE(n.open6(c, 43001, 7));
  n.run(n.now + 100);
  REQUIRE(c.got == "abc");
  uint64_t challenges = n.server->tcp_stats().challenge_acks;
  n.to_client.q.clear();
  wire::TcpRepr rst;
  rst.src_port = 43001;
  rst.dst_port = 7;
  rst.seq = next_seq + 100;  // in the window, not at RCV.NXT
  rst.flags = flag::RST;
  wire::Ipv6Repr ip;
  ip.src = kClient6;
  ip.dst = kServer6;
  ip.proto = kProtoTcp;
  n.server->input6(ip, rst);
  CHECK(n.server->tcp_stats().challenge_acks == challenges + 1);
  REQUIRE(n.to_client.q.size() == 1);
  CHECK(n.to_client.q[0].v6);
  CHECK(n.to_client.q[0].h.has_ack());
  CHECK(n.state(*n.server, TcpState::Established) == 1);  // it survives
  rst.seq = next_seq;  // exactly RCV.NXT: the connection is reset
  n.server->input6(ip, rst);
  CHECK(n.state(*n.server, TcpState::Established) == 0);
  CHECK(n.server->check_invariants());
}
