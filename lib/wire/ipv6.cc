// lib/wire: IPv6 and ICMPv6.  See wire.h for the contract and the
// extension-header policy.
#include <cstdio>

#include "wire/wire.h"

namespace tcpterm::wire {

// ------------------------------------------------------------ addresses ---
std::string ip6_to_string(const Ip6& a) {
  uint16_t g[8];
  for (int i = 0; i < 8; i++) g[i] = load16(a.data() + 2 * i);
  char buf[48];
  // RFC 5952 5: ::ffff:a.b.c.d for IPv4-mapped addresses.
  if (g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xffff) {
    std::snprintf(buf, sizeof buf, "::ffff:%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
    return buf;
  }
  // RFC 5952 4.2: the longest run of two or more zero groups (the first
  // when tied) becomes "::".
  int best = -1, best_len = 1;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      i++;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) j++;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  std::string s;
  for (int i = 0; i < 8; i++) {
    if (i == best) {
      s += "::";
      i += best_len - 1;
      continue;
    }
    if (!s.empty() && s.back() != ':') s += ':';
    std::snprintf(buf, sizeof buf, "%x", g[i]);  // 4.1: no leading zeros; 4.3: lowercase
    s += buf;
  }
  return s;
}

bool parse_ip6(std::string_view s, Ip6& out) {
  // Up to 8 groups; "::" once; a dotted quad may end the address in place
  // of the last two groups.
  uint16_t head[8], tail[8];
  int nh = 0, nt = 0;
  bool gap = false;
  size_t i = 0;
  if (s.size() < 2) return false;
  if (s[0] == ':') {
    if (s[1] != ':') return false;
    gap = true;
    i = 2;
  }
  auto push = [&](uint16_t v) {
    if (gap) tail[nt++] = v;
    else head[nh++] = v;
  };
  while (i < s.size()) {
    if (nh + nt >= 8) return false;
    size_t j = i;
    while (j < s.size() && s[j] != ':' && s[j] != '.') j++;
    if (j < s.size() && s[j] == '.') {  // dotted quad tail
      uint32_t v4;
      if (nh + nt > 6 || !parse_ip(s.substr(i), v4)) return false;
      push(uint16_t(v4 >> 16));
      push(uint16_t(v4));
      i = s.size();
      break;
    }
    if (j == i || j - i > 4) return false;
    unsigned v = 0;
    for (size_t k = i; k < j; k++) {
      char c = s[k];
      unsigned d;
      if (c >= '0' && c <= '9') d = unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') d = unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = unsigned(c - 'A' + 10);
      else return false;
      v = v << 4 | d;
    }
    push(uint16_t(v));
    i = j;
    if (i == s.size()) break;
    // s[i] == ':'
    if (i + 1 < s.size() && s[i + 1] == ':') {
      if (gap) return false;  // a second "::"
      gap = true;
      i += 2;
    } else {
      i += 1;
      if (i == s.size()) return false;  // trailing single ':'
    }
  }
  if (nh + nt > 8 || (!gap && nh != 8) || (gap && nh + nt == 8)) return false;
  out.fill(0);
  for (int k = 0; k < nh; k++) store16(out.data() + 2 * k, head[k]);
  for (int k = 0; k < nt; k++) store16(out.data() + 2 * (8 - nt + k), tail[k]);
  return true;
}

Ip6 solicited_node(const Ip6& a) {
  Ip6 g{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, a[13], a[14], a[15]};
  return g;
}

Mac multicast_mac(const Ip6& group) { return Mac{0x33, 0x33, group[12], group[13], group[14], group[15]}; }

bool ip6_martian_source(const Ip6& a) {
  static constexpr Ip6 kLoopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (ip6_is_zero(a) || a == kLoopback || ip6_is_multicast(a)) return true;
  bool mapped = a[10] == 0xff && a[11] == 0xff;
  for (int i = 0; i < 10 && mapped; i++) mapped = a[i] == 0;
  return mapped;
}

Ip6 ip6_masked(const Ip6& a, unsigned len) {
  Ip6 m = a;
  for (unsigned b = len; b < 128; b++) m[b / 8] &= uint8_t(~(0x80u >> (b % 8)));
  return m;
}

bool ip6_prefix_match(const Ip6& a, const Ip6& b, unsigned len) {
  if (len > 128) len = 128;
  unsigned bytes = len / 8, bits = len % 8;
  if (std::memcmp(a.data(), b.data(), bytes) != 0) return false;
  if (bits == 0) return true;
  uint8_t mask = uint8_t(0xff << (8 - bits));
  return ((a[bytes] ^ b[bytes]) & mask) == 0;
}

uint32_t pseudo_sum6(const Ip6& src, const Ip6& dst, uint8_t proto, uint32_t len) {
  uint32_t acc = sum_bytes(src.data(), 16);
  acc = sum_bytes(dst.data(), 16, acc);
  return acc + (len >> 16) + (len & 0xffff) + proto;
}

// ----------------------------------------------------------------- IPv6 ---
namespace {
enum : uint8_t { kHopByHop = 0, kRouting = 43, kFragment = 44, kDestOpts = 60 };

// The options of a hop-by-hop or destination options header (RFC 8200
// 4.2): Pad1 and PadN are skipped, an unknown option is skipped only when
// its action bits are 00.
Drop walk_options(const uint8_t* o, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t type = o[i];
    if (type == 0) {  // Pad1
      i++;
      continue;
    }
    if (i + 2 > n || i + 2 + o[i + 1] > n) return Drop::Ipv6ExtHeader;
    if (type != 1 && (type >> 6) != 0) return Drop::Ipv6Option;  // 01, 10, 11: discard
    i += 2 + size_t(o[i + 1]);
  }
  return Drop::None;
}
}  // namespace

Drop parse_ipv6(std::span<const uint8_t> p, Ipv6Repr& out) {
  if (p.size() < kIpv6HdrLen) return Drop::Ipv6Short;
  const uint8_t* b = p.data();
  if ((b[0] >> 4) != 6) return Drop::Ipv6Version;
  uint32_t plen = load16(b + 4);
  // Jumbograms (payload length 0 with a hop-by-hop jumbo option) never fit
  // an Ethernet frame: refused with the rest.
  if (plen == 0 || kIpv6HdrLen + plen > p.size()) return Drop::Ipv6PayloadLength;
  out.tclass = uint8_t((load16(b) >> 4) & 0xff);
  out.flow_label = load32(b) & 0xfffff;
  out.hop_limit = b[7];
  std::memcpy(out.src.data(), b + 8, 16);
  std::memcpy(out.dst.data(), b + 24, 16);
  // The unspecified source is legal only in a DAD solicitation, which the
  // ND code recognises; everything else martian is refused here.
  if (!ip6_is_zero(out.src) && ip6_martian_source(out.src)) return Drop::Ipv6BadAddr;
  uint8_t next = b[6];
  size_t off = kIpv6HdrLen;
  const size_t end = kIpv6HdrLen + plen;
  unsigned count = 0;
  for (;;) {
    if (next != kHopByHop && next != kDestOpts && next != kRouting && next != kFragment) break;
    if (++count > kIpv6MaxExtHeaders) return Drop::Ipv6ExtChain;
    if (next == kHopByHop && off != kIpv6HdrLen) return Drop::Ipv6ExtHeader;  // RFC 8200 4.1
    if (next == kFragment) return Drop::Ipv6Fragment;
    if (off + 8 > end) return Drop::Ipv6ExtHeader;
    const uint8_t* h = b + off;
    size_t len = (size_t(h[1]) + 1) * 8;
    if (off + len > end) return Drop::Ipv6ExtHeader;
    if (next == kRouting) {
      // RFC 5095: type 0 is deprecated and refused whatever its segments
      // left; any other type with segments left asks us to forward.
      if (h[2] == 0 || h[3] != 0) return Drop::Ipv6RoutingHeader;
    } else if (Drop d = walk_options(h + 2, len - 2); d != Drop::None) {
      return d;
    }
    next = h[0];
    off += len;
  }
  out.proto = next;
  out.hdr_len = uint16_t(off);
  out.payload_len = uint16_t(end - off);
  return Drop::None;
}

void emit_ipv6(uint8_t* b, const Ipv6Repr& ip) {
  store32(b, 6u << 28 | uint32_t(ip.tclass) << 20 | (ip.flow_label & 0xfffff));
  store16(b + 4, ip.payload_len);
  b[6] = ip.proto;
  b[7] = ip.hop_limit;
  std::memcpy(b + 8, ip.src.data(), 16);
  std::memcpy(b + 24, ip.dst.data(), 16);
}

// ---------------------------------------------------------------- ICMPv6 ---
Drop parse_icmp6(std::span<const uint8_t> p, const Ipv6Repr& ip, Icmp6Repr& out) {
  if (p.size() < 8) return Drop::Icmp6Short;
  const uint8_t* b = p.data();
  uint32_t acc = pseudo_sum6(ip.src, ip.dst, kProtoIcmp6, uint32_t(p.size()));
  if (fold(sum_bytes(b, p.size(), acc)) != 0) return Drop::Icmp6Checksum;
  out.type = b[0];
  out.code = b[1];
  switch (out.type) {
    case icmp6::kEchoRequest:
    case icmp6::kEchoReply:
      out.ident = load16(b + 4);
      out.seq = load16(b + 6);
      out.data = p.subspan(8);
      return Drop::None;
    case icmp6::kPacketTooBig:
      out.mtu = load32(b + 4);
      out.data = p.subspan(8);
      return Drop::None;
    case icmp6::kNeighborSolicit:
    case icmp6::kNeighborAdvert: {
      // RFC 4861 7.1.1 / 7.1.2: code 0, at least 24 bytes, target not
      // multicast, every option with a non-zero length inside the message.
      if (out.code != 0 || p.size() < 24) return Drop::NdMalformed;
      out.na_flags = out.type == icmp6::kNeighborAdvert ? b[4] : 0;
      std::memcpy(out.target.data(), b + 8, 16);
      if (ip6_is_multicast(out.target)) return Drop::NdMalformed;
      out.has_lladdr = false;
      uint8_t want = out.type == icmp6::kNeighborSolicit ? icmp6::kOptSourceLinkAddr : icmp6::kOptTargetLinkAddr;
      size_t i = 24;
      while (i < p.size()) {
        if (i + 2 > p.size()) return Drop::NdMalformed;
        size_t len = size_t(b[i + 1]) * 8;
        if (len == 0 || i + len > p.size()) return Drop::NdMalformed;
        if (b[i] == want && len == 8) {
          out.has_lladdr = true;
          std::memcpy(out.lladdr.data(), b + i + 2, 6);
        }
        i += len;
      }
      // 7.1.1: a DAD solicitation (unspecified source) carries no
      // source link-layer option.
      if (out.type == icmp6::kNeighborSolicit && ip6_is_zero(ip.src) && out.has_lladdr)
        return Drop::NdMalformed;
      return Drop::None;
    }
    default:
      return Drop::Icmp6Type;
  }
}

size_t icmp6_len(const Icmp6Repr& m) {
  switch (m.type) {
    case icmp6::kNeighborSolicit:
    case icmp6::kNeighborAdvert:
      return 24 + (m.has_lladdr ? 8 : 0);
    case icmp6::kPacketTooBig:
      return 8 + m.data.size();
    default:
      return 8 + m.data.size();
  }
}

size_t emit_icmp6(uint8_t* b, const Icmp6Repr& m, const Ipv6Repr& ip) {
  size_t n = icmp6_len(m);
  b[0] = m.type;
  b[1] = m.code;
  store16(b + 2, 0);
  switch (m.type) {
    case icmp6::kNeighborSolicit:
    case icmp6::kNeighborAdvert:
      store32(b + 4, 0);
      if (m.type == icmp6::kNeighborAdvert) b[4] = m.na_flags;
      std::memcpy(b + 8, m.target.data(), 16);
      if (m.has_lladdr) {
        b[24] = m.type == icmp6::kNeighborSolicit ? icmp6::kOptSourceLinkAddr : icmp6::kOptTargetLinkAddr;
        b[25] = 1;
        std::memcpy(b + 26, m.lladdr.data(), 6);
      }
      break;
    case icmp6::kPacketTooBig:
      store32(b + 4, m.mtu);
      if (!m.data.empty()) std::memmove(b + 8, m.data.data(), m.data.size());
      break;
    default:  // echo
      store16(b + 4, m.ident);
      store16(b + 6, m.seq);
      if (!m.data.empty()) std::memmove(b + 8, m.data.data(), m.data.size());
      break;
  }
  uint32_t acc = pseudo_sum6(ip.src, ip.dst, kProtoIcmp6, uint32_t(n));
  store16(b + 2, fold(sum_bytes(b, n, acc)));
  return n;
}

}  // namespace tcpterm::wire
