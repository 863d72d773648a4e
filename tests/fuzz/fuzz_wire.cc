// libFuzzer target: every wire parser on arbitrary bytes (never reads out
// of bounds: ASan), and a round trip: a TCP header that parses is emitted
// again and parses to the same fields.
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
  return 0;
}
