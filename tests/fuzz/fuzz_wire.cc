// libFuzzer target: every wire parser on arbitrary bytes (never reads out
// of bounds: ASan), and a round trip: a TCP header that parses is emitted
// again and parses to the same fields, over IPv4 and IPv6 (with its
// extension-header walk and ICMPv6/ND).
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "wire/wire.h"

using namespace tcpterm::wire;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  EthRepr eth;
  ArpRepr arp;
  IcmpEchoRepr icmp;
  TcpOptions opts;
  parse_eth(in, eth);
  parse_arp(in, arp);
  parse_icmp_echo(in, icmp);
  parse_tcp_options(in, opts);
  for (bool verified : {false, true}) {
    Ipv4Repr ip;
    if (parse_ipv4(in, ip, verified) != Drop::None) continue;
    if (size_t(ip.hdr_len) + ip.payload_len > size) abort();
    auto l4 = in.subspan(ip.hdr_len, ip.payload_len);
    TcpRepr t;
    if (parse_tcp(l4, t, &ip, verified) != Drop::None) continue;
    if (t.payload.data() + t.payload.size() > data + size) abort();
    // Round trip through emit.
    std::vector<uint8_t> out(tcp_header_len(t) + t.payload.size());
    std::copy(t.payload.begin(), t.payload.end(), out.begin() + tcp_header_len(t));
    emit_tcp_header(out.data(), t, &ip, t.payload.size());
    TcpRepr u;
    if (parse_tcp(out, u, &ip, false) != Drop::None) abort();
    if (u.seq != t.seq || u.ack != t.ack || u.flags != t.flags || u.window != t.window ||
        u.opt.mss != t.opt.mss || u.opt.has_ts != t.opt.has_ts || u.payload.size() != t.payload.size())
      abort();
  }
  // IPv6: the header walk leaves the upper layer inside the input; ICMPv6
  // and TCP parse from there; an NS/NA that parses re-emits and re-parses.
  Ipv6Repr ip6;
  if (parse_ipv6(in, ip6) == Drop::None) {
    if (size_t(ip6.hdr_len) + ip6.payload_len > size) abort();
    auto l4 = in.subspan(ip6.hdr_len, ip6.payload_len);
    Icmp6Repr m;
    if (parse_icmp6(l4, ip6, m) == Drop::None) {
      if (m.data.data() && m.data.data() + m.data.size() > data + size) abort();
      if (m.type == icmp6::kNeighborSolicit || m.type == icmp6::kNeighborAdvert ||
          m.type == icmp6::kEchoRequest) {
        std::vector<uint8_t> out(icmp6_len(m));
        emit_icmp6(out.data(), m, ip6);
        Icmp6Repr n;
        if (parse_icmp6(out, ip6, n) != Drop::None || n.type != m.type || n.target != m.target)
          abort();
      }
    }
    for (bool verified : {false, true}) {
      TcpRepr t;
      if (parse_tcp6(l4, t, ip6, verified) != Drop::None) continue;
      std::vector<uint8_t> out(tcp_header_len(t) + t.payload.size());
      std::copy(t.payload.begin(), t.payload.end(), out.begin() + tcp_header_len(t));
      emit_tcp_header6(out.data(), t, ip6, t.payload.size());
      TcpRepr u;
      if (parse_tcp6(out, u, ip6, false) != Drop::None || u.seq != t.seq || u.flags != t.flags) abort();
    }
  }
  // Address text: whatever parses prints in RFC 5952 form and parses back
  // to the same address.
  if (size <= 64) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    Ip6 a;
    if (parse_ip6(text, a)) {
      Ip6 b;
      if (!parse_ip6(ip6_to_string(a), b) || a != b) abort();
    }
  }
  return 0;
}
