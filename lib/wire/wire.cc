// lib/wire: parsing and emitting.  See wire.h for the contract.
#include "wire/wire.h"

#include <bit>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace tcpterm::wire {

const char* to_string(Drop d) {
  switch (d) {
#define X(name, str) \
  case Drop::name:   \
    return str;
    TCPTERM_DROP_REASONS(X)
#undef X
    case Drop::Count:
      break;
  }
  return "?";
}

std::string ip_to_string(uint32_t a) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
                a & 255);
  return buf;
}

bool parse_ip(std::string_view s, uint32_t& out) {
  uint32_t v = 0;
  const char* p = s.data();
  const char* end = s.data() + s.size();
  for (int i = 0; i < 4; i++) {
    unsigned octet = 0;
    auto [next, ec] = std::from_chars(p, end, octet);
    if (ec != std::errc() || next == p || next - p > 3 || octet > 255) return false;
    v = v << 8 | octet;
    p = next;
    if (i < 3) {
      if (p == end || *p != '.') return false;
      ++p;
    }
  }
  if (p != end) return false;
  out = v;
  return true;
}

std::string mac_to_string(const Mac& m) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02X:%02X:%02X:%02X:%02X:%02X", m[0], m[1], m[2], m[3], m[4],
                m[5]);
  return buf;
}

uint32_t sum_bytes(const uint8_t* p, size_t n, uint32_t acc) {
  // RFC 1071 2(B): the one's complement sum does not depend on byte order.
  // Sum native 32-bit words (two accumulators, no carries lost below 2^32
  // words), fold to 16 bits, then swap once into network order.
  uint64_t s0 = 0, s1 = 0;
  while (n >= 16) {
    uint32_t w[4];
    std::memcpy(w, p, 16);
    s0 += uint64_t(w[0]) + w[1];
    s1 += uint64_t(w[2]) + w[3];
    p += 16;
    n -= 16;
  }
  uint64_t s = s0 + s1;  // < 2^62: no overflow
  while (n >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    s += w;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    s += w;
    p += 2;
    n -= 2;
  }
  if (n) s += p[0];  // the odd byte is the high byte of a network-order word
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  uint64_t r = acc;
  if constexpr (std::endian::native == std::endian::little) r += uint16_t((s >> 8) | (s << 8));
  else r += s;
  while (r >> 32) r = (r & 0xffffffff) + (r >> 32);
  // Fold to 17 bits at most so callers may keep adding 16-bit words.
  r = (r & 0xffff) + (r >> 16);
  r = (r & 0xffff) + (r >> 16);
  return uint32_t(r);
}

// ------------------------------------------------------------- Ethernet ---
Drop parse_eth(std::span<const uint8_t> f, EthRepr& out) {
  if (f.size() < kEthHdrLen) return Drop::EthShort;
  std::memcpy(out.dst.data(), f.data(), 6);
  std::memcpy(out.src.data(), f.data() + 6, 6);
  out.ethertype = load16(f.data() + 12);
  return Drop::None;
}

void emit_eth(uint8_t* p, const EthRepr& e) {
  std::memcpy(p, e.dst.data(), 6);
  std::memcpy(p + 6, e.src.data(), 6);
  store16(p + 12, e.ethertype);
}

// ------------------------------------------------------------------ ARP ---
Drop parse_arp(std::span<const uint8_t> p, ArpRepr& out) {
  if (p.size() < kArpLen) return Drop::ArpMalformed;
  const uint8_t* b = p.data();
  if (load16(b) != 1 || load16(b + 2) != kEtherTypeIpv4 || b[4] != 6 || b[5] != 4)
    return Drop::ArpMalformed;
  uint16_t op = load16(b + 6);
  if (op != 1 && op != 2) return Drop::ArpMalformed;
  out.op = ArpOp(op);
  std::memcpy(out.sha.data(), b + 8, 6);
  out.spa = load32(b + 14);
  std::memcpy(out.tha.data(), b + 18, 6);
  out.tpa = load32(b + 24);
  return Drop::None;
}

void emit_arp(uint8_t* b, const ArpRepr& a) {
  store16(b, 1);
  store16(b + 2, kEtherTypeIpv4);
  b[4] = 6;
  b[5] = 4;
  store16(b + 6, uint16_t(a.op));
  std::memcpy(b + 8, a.sha.data(), 6);
  store32(b + 14, a.spa);
  std::memcpy(b + 18, a.tha.data(), 6);
  store32(b + 24, a.tpa);
}

// ----------------------------------------------------------------- IPv4 ---
namespace {
// A 20-byte header (no options, the usual case) verifies when its
// one's-complement sum is all ones: five words added in 64 bits and folded,
// without a call and loop tail (RFC 1071; the byte order of all ones is moot).
bool header20_sums_to_ones(const uint8_t* b) {
  uint32_t w[5];
  std::memcpy(w, b, 20);
  uint64_t s = uint64_t(w[0]) + w[1] + w[2] + w[3] + w[4];
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return s == 0xffff;
}
}  // namespace

Drop parse_ipv4(std::span<const uint8_t> p, Ipv4Repr& out, bool csum_verified) {
  if (p.size() < kIpv4MinHdr) return Drop::Ipv4Short;
  const uint8_t* b = p.data();
  if ((b[0] >> 4) != 4) return Drop::Ipv4Version;
  size_t ihl = size_t(b[0] & 0x0f) * 4;
  if (ihl < kIpv4MinHdr || ihl > p.size()) return Drop::Ipv4Ihl;
  uint16_t total = load16(b + 2);
  if (total < ihl || total > p.size()) return Drop::Ipv4TotalLength;
  if (!csum_verified && (ihl == kIpv4MinHdr ? !header20_sums_to_ones(b) : checksum(b, ihl) != 0))
    return Drop::Ipv4Checksum;
  uint16_t frag = load16(b + 6);
  if (frag & 0x3fff) return Drop::Ipv4Fragment;  // MF set or offset non-zero
  out.tos = b[1];
  out.id = load16(b + 4);
  out.ttl = b[8];
  out.proto = b[9];
  out.src = load32(b + 12);
  out.dst = load32(b + 16);
  if (martian_source(out.src)) return Drop::Ipv4BadAddr;
  out.hdr_len = uint16_t(ihl);
  out.payload_len = uint16_t(total - ihl);
  return Drop::None;
}

void emit_ipv4(uint8_t* b, const Ipv4Repr& ip, bool fill_checksum) {
  b[0] = 0x45;
  b[1] = ip.tos;
  store16(b + 2, uint16_t(kIpv4MinHdr + ip.payload_len));
  store16(b + 4, ip.id);
  store16(b + 6, 0x4000);  // DF
  b[8] = ip.ttl;
  b[9] = ip.proto;
  store16(b + 10, 0);
  store32(b + 12, ip.src);
  store32(b + 16, ip.dst);
  if (fill_checksum) store16(b + 10, fold(ipv4_header_sum(ip)));
}

uint32_t ipv4_header_sum(const Ipv4Repr& ip) {
  // The header's words from the fields, not read back from the frame just
  // written (a load over several narrower stores waits for them to retire).
  uint32_t s = 0x4500u + ip.tos + uint16_t(kIpv4MinHdr + ip.payload_len) + ip.id + 0x4000u +
               (uint32_t(ip.ttl) << 8 | ip.proto) + (ip.src >> 16) + (ip.src & 0xffff) + (ip.dst >> 16) +
               (ip.dst & 0xffff);
  return s;
}

// ------------------------------------------------------------ ICMP echo ---
Drop parse_icmp_echo(std::span<const uint8_t> p, IcmpEchoRepr& out) {
  if (p.size() < kIcmpHdrLen) return Drop::IcmpShort;
  if (checksum(p.data(), p.size()) != 0) return Drop::IcmpChecksum;
  if ((p[0] != 8 && p[0] != 0) || p[1] != 0) return Drop::IcmpType;
  out.type = p[0];
  out.ident = load16(p.data() + 4);
  out.seq = load16(p.data() + 6);
  out.data = p.subspan(kIcmpHdrLen);
  return Drop::None;
}

size_t emit_icmp_echo(uint8_t* b, const IcmpEchoRepr& e) {
  b[0] = e.type;
  b[1] = 0;
  store16(b + 2, 0);
  store16(b + 4, e.ident);
  store16(b + 6, e.seq);
  if (!e.data.empty()) std::memmove(b + kIcmpHdrLen, e.data.data(), e.data.size());
  size_t n = kIcmpHdrLen + e.data.size();
  store16(b + 2, checksum(b, n));
  return n;
}

// ------------------------------------------------------------------ TCP ---
namespace {
enum : uint8_t { kOptEol = 0, kOptNop = 1, kOptMss = 2, kOptWscale = 3, kOptSackPerm = 4,
                 kOptSack = 5, kOptTs = 8 };
}

Drop parse_tcp_options(std::span<const uint8_t> o, TcpOptions& out) {
  // RFC 7323 Appendix A's layout, which every segment after the handshake
  // of a timestamped connection carries: NOP, NOP, TS (Linux's fast path,
  // tcp_parse_aligned_timestamp).  Same result as the loop below.
  if (o.size() == 12 && load32(o.data()) == 0x0101080au) {
    out.has_ts = true;
    out.ts_val = load32(o.data() + 4);
    out.ts_ecr = load32(o.data() + 8);
    return Drop::None;
  }
  size_t i = 0;
  while (i < o.size()) {
    uint8_t kind = o[i];
    if (kind == kOptEol) break;
    if (kind == kOptNop) {
      ++i;
      continue;
    }
    if (i + 1 >= o.size()) return Drop::TcpOption;  // no room for the length byte
    uint8_t len = o[i + 1];
    if (len < 2 || i + len > o.size()) return Drop::TcpOption;
    const uint8_t* v = o.data() + i + 2;
    switch (kind) {
      case kOptMss:
        if (len != 4) return Drop::TcpOption;
        out.mss = load16(v);
        break;
      case kOptWscale:
        if (len != 3) return Drop::TcpOption;
        out.wscale = v[0];
        break;
      case kOptSackPerm:
        if (len != 2) return Drop::TcpOption;
        out.sack_permitted = true;
        break;
      case kOptSack: {
        if ((len - 2) % 8 != 0) return Drop::TcpOption;
        size_t n = (len - 2) / 8;
        out.sack_count = 0;
        for (size_t k = 0; k < n && k < out.sack.size(); k++) {
          out.sack[k] = {load32(v + 8 * k), load32(v + 8 * k + 4)};
          out.sack_count++;
        }
        break;
      }
      case kOptTs:
        if (len != 10) return Drop::TcpOption;
        out.has_ts = true;
        out.ts_val = load32(v);
        out.ts_ecr = load32(v + 4);
        break;
      default:
        break;  // unknown options are skipped by their length (RFC 9293 3.2)
    }
    i += len;
  }
  return Drop::None;
}

namespace {
// The checks after the checksum, shared by both families.
Drop parse_tcp_fields(std::span<const uint8_t> p, TcpRepr& out, size_t doff) {
  const uint8_t* b = p.data();
  out.src_port = load16(b);
  out.dst_port = load16(b + 2);
  if (out.src_port == 0 || out.dst_port == 0) return Drop::TcpPort;
  out.seq = load32(b + 4);
  out.ack = load32(b + 8);
  out.flags = b[13];
  out.window = load16(b + 14);
  out.urgent = load16(b + 18);
  uint8_t f = out.flags;
  // Impossible combinations: nothing set, SYN with FIN or RST.
  if ((f & (flag::SYN | flag::FIN | flag::RST | flag::ACK | flag::PSH | flag::URG)) == 0)
    return Drop::TcpFlags;
  if ((f & flag::SYN) && (f & (flag::FIN | flag::RST))) return Drop::TcpFlags;
  out.opt = TcpOptions{};
  if (Drop d = parse_tcp_options(p.subspan(kTcpMinHdr, doff - kTcpMinHdr), out.opt);
      d != Drop::None)
    return d;
  out.payload = p.subspan(doff);
  return Drop::None;
}
}  // namespace

Drop parse_tcp(std::span<const uint8_t> p, TcpRepr& out, const Ipv4Repr* ip,
               bool csum_verified) {
  if (p.size() < kTcpMinHdr) return Drop::TcpShort;
  const uint8_t* b = p.data();
  size_t doff = size_t(b[12] >> 4) * 4;
  if (doff < kTcpMinHdr || doff > p.size()) return Drop::TcpDataOffset;
  if (ip && !csum_verified) {
    uint32_t acc = pseudo_sum(ip->src, ip->dst, kProtoTcp, uint16_t(p.size()));
    if (fold(sum_bytes(b, p.size(), acc)) != 0) return Drop::TcpChecksum;
  }
  return parse_tcp_fields(p, out, doff);
}

Drop parse_tcp6(std::span<const uint8_t> p, TcpRepr& out, const Ipv6Repr& ip, bool csum_verified) {
  if (p.size() < kTcpMinHdr) return Drop::TcpShort;
  const uint8_t* b = p.data();
  size_t doff = size_t(b[12] >> 4) * 4;
  if (doff < kTcpMinHdr || doff > p.size()) return Drop::TcpDataOffset;
  if (!csum_verified) {
    uint32_t acc = pseudo_sum6(ip.src, ip.dst, kProtoTcp, uint32_t(p.size()));
    if (fold(sum_bytes(b, p.size(), acc)) != 0) return Drop::TcpChecksum;
  }
  return parse_tcp_fields(p, out, doff);
}

namespace {
// The header as 32-bit words, each written once and added once: a 32-bit
// word adds to the one's-complement sum what its two 16-bit halves add
// (2^16 = 1 modulo 0xffff), so the sum needs no splitting.  The checksum
// field is written 0 (the caller stores it).  Returns the header length;
// `sum` gets the words' plain sum (below 2^36; fold_sum() reduces it).
size_t emit_tcp_fields(uint8_t* b, const TcpRepr& t, uint64_t& sum) {
  size_t hl = tcp_header_len(t);
  const uint32_t ports = uint32_t(t.src_port) << 16 | t.dst_port;
  const uint32_t off_flags_win = (uint32_t((hl / 4) << 12) | t.flags) << 16 | t.window;
  store32(b, ports);
  store32(b + 4, t.seq);
  store32(b + 8, t.ack);
  store32(b + 12, off_flags_win);
  store32(b + 16, t.urgent);  // checksum 0, urgent pointer
  uint64_t s = uint64_t(ports) + t.seq + t.ack + off_flags_win + t.urgent;
  uint8_t* o = b + kTcpMinHdr;
  if (t.opt.mss) {
    uint32_t w = uint32_t(kOptMss) << 24 | 4u << 16 | t.opt.mss;
    store32(o, w);
    s += w;
    o += 4;
  }
  if (t.opt.has_wscale()) {
    uint32_t w = uint32_t(kOptNop) << 24 | uint32_t(kOptWscale) << 16 | 3u << 8 | t.opt.wscale;
    store32(o, w);
    s += w;
    o += 4;
  }
  if (t.opt.has_ts) {
    uint32_t w = (t.opt.sack_permitted ? uint32_t(kOptSackPerm) << 24 | 2u << 16
                                       : uint32_t(kOptNop) << 24 | uint32_t(kOptNop) << 16) |
                 uint32_t(kOptTs) << 8 | 10u;
    store32(o, w);
    store32(o + 4, t.opt.ts_val);
    store32(o + 8, t.opt.ts_ecr);
    s += uint64_t(w) + t.opt.ts_val + t.opt.ts_ecr;
  } else if (t.opt.sack_permitted) {
    uint32_t w = uint32_t(kOptNop) << 24 | uint32_t(kOptNop) << 16 | uint32_t(kOptSackPerm) << 8 | 2u;
    store32(o, w);
    s += w;
  }
  sum = s;
  return hl;
}

// A plain sum of 16- and 32-bit words (below 2^48) folded to at most 17
// bits, so that more words may be added to it: 2^32 and 2^16 are 1 modulo
// 0xffff.
uint32_t fold_sum(uint64_t s) {
  s = (s & 0xffffffff) + (s >> 32);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return uint32_t(s);
}
}  // namespace

uint32_t tcp_fields_sum(const TcpRepr& t) {
  uint8_t scratch[kTcpMaxHdr];
  uint64_t s;
  emit_tcp_fields(scratch, t, s);
  return fold_sum(s);
}

size_t emit_tcp_header(uint8_t* b, const TcpRepr& t, const Ipv4Repr* ip, size_t payload_len) {
  size_t hl = tcp_header_len(t);
  return emit_tcp_header(b, t, ip, payload_len, ip ? sum_bytes(b + hl, payload_len) : 0);
}

size_t emit_tcp_header(uint8_t* b, const TcpRepr& t, const Ipv4Repr* ip, size_t payload_len,
                       uint32_t payload_sum) {
  uint64_t fields;
  size_t hl = emit_tcp_fields(b, t, fields);
  if (ip) {
    uint16_t len = uint16_t(hl + payload_len);
    // The pseudo-header's words as 32-bit addresses: fold_sum() splits them.
    uint64_t acc = uint64_t(ip->src) + ip->dst + kProtoTcp + len + fields + payload_sum;
    store16(b + 16, fold(fold_sum(acc)));
  }
  return hl;
}

size_t emit_tcp_header6(uint8_t* b, const TcpRepr& t, const Ipv6Repr& ip, size_t payload_len) {
  size_t hl = tcp_header_len(t);
  return emit_tcp_header6(b, t, ip, payload_len, sum_bytes(b + hl, payload_len));
}

size_t emit_tcp_header6(uint8_t* b, const TcpRepr& t, const Ipv6Repr& ip, size_t payload_len,
                        uint32_t payload_sum) {
  uint64_t fields;
  size_t hl = emit_tcp_fields(b, t, fields);
  uint32_t len = uint32_t(hl + payload_len);
  uint64_t acc = uint64_t(pseudo_sum6(ip.src, ip.dst, kProtoTcp, len)) + fields + payload_sum;
  store16(b + 16, fold(fold_sum(acc)));
  return hl;
}

}  // namespace tcpterm::wire
