// lib/wire: checked views of Ethernet, ARP, IPv4, ICMP echo, IPv6 (with its
// extension headers), ICMPv6 (echo, neighbour discovery, Packet Too Big)
// and TCP.
//
// parse_*() read a byte span and fill a plain "repr" struct, or return the
// reason the input is malformed; they never read past the span they are
// given.  emit_*() write a repr into a caller-provided buffer of sufficient
// size (the *_len() helpers say how much).  Multi-byte fields in reprs are
// host order; addresses are host-order uint32_t (198.18.0.2 == 0xC6120002).
//
// No DPDK here: the data plane hands in rte_pktmbuf_mtod() spans, the unit
// tests hand in arrays.
#pragma once

#include <bit>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace tcpterm::wire {

// ---------------------------------------------------------------- bytes ---
inline uint16_t load16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t load32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
// Stores in network order as one store each (the byte-wise form was not
// always merged by the compiler: a word with constant bytes became byte
// stores and loads of the constants).
inline void store16(uint8_t* p, uint16_t v) {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
  std::memcpy(p, &v, 2);
}
inline void store32(uint8_t* p, uint32_t v) {
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}

using Mac = std::array<uint8_t, 6>;
inline constexpr Mac kBroadcastMac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

std::string ip_to_string(uint32_t addr);
// Parses dotted-quad "a.b.c.d"; false on anything else.
bool parse_ip(std::string_view s, uint32_t& out);
// Parses a decimal number in [lo, hi] (the whole string, no sign): the one
// number parser of the command line and the pool syntax.
template <class T>
bool parse_num(std::string_view s, T& out, uint64_t lo, uint64_t hi) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v < lo || v > hi) return false;
  out = T(v);
  return true;
}
// RFC 1812 5.3.7 / RFC 6890: source addresses no packet may carry from a
// peer: "this network" 0/8, loopback 127/8, multicast 224/4 and the
// reserved 240/4 block (which holds the limited broadcast).  Such packets
// are dropped (Drop::Ipv4BadAddr) before anything answers them.
constexpr bool martian_source(uint32_t a) {
  uint8_t top = uint8_t(a >> 24);
  return top == 0 || top == 127 || top >= 224;
}
std::string mac_to_string(const Mac& m);

// --------------------------------------------------------- drop reasons ---
// Every way a frame can be refused, for per-reason drop counters.
#define TCPTERM_DROP_REASONS(X)                                            \
  X(None, "none")                                                          \
  X(EthShort, "eth_short")                                                 \
  X(EthType, "eth_unknown_type")                                           \
  X(ArpMalformed, "arp_malformed")                                         \
  X(Ipv4Short, "ipv4_short")                                               \
  X(Ipv4Version, "ipv4_bad_version")                                       \
  X(Ipv4Ihl, "ipv4_bad_ihl")                                               \
  X(Ipv4TotalLength, "ipv4_bad_total_length")                              \
  X(Ipv4Checksum, "ipv4_bad_checksum")                                     \
  X(Ipv4Fragment, "ipv4_fragment")                                         \
  X(Ipv4Proto, "ipv4_unknown_proto")                                       \
  X(Ipv4BadAddr, "ipv4_bad_address")                                       \
  X(IcmpShort, "icmp_short")                                               \
  X(IcmpChecksum, "icmp_bad_checksum")                                     \
  X(IcmpType, "icmp_unhandled_type")                                       \
  X(TcpShort, "tcp_short")                                                 \
  X(TcpDataOffset, "tcp_bad_data_offset")                                  \
  X(TcpChecksum, "tcp_bad_checksum")                                       \
  X(TcpOption, "tcp_bad_option")                                           \
  X(TcpFlags, "tcp_bad_flags")                                             \
  X(TcpPort, "tcp_bad_port")                                               \
  X(Ipv6Short, "ipv6_short")                                               \
  X(Ipv6Version, "ipv6_bad_version")                                       \
  X(Ipv6PayloadLength, "ipv6_bad_payload_length")                          \
  X(Ipv6BadAddr, "ipv6_bad_address")                                       \
  X(Ipv6ExtHeader, "ipv6_bad_ext_header")                                  \
  X(Ipv6ExtChain, "ipv6_ext_chain_too_long")                               \
  X(Ipv6RoutingHeader, "ipv6_routing_header")                              \
  X(Ipv6Fragment, "ipv6_fragment")                                         \
  X(Ipv6Option, "ipv6_unknown_option")                                     \
  X(Ipv6Proto, "ipv6_unknown_proto")                                       \
  X(Icmp6Short, "icmp6_short")                                             \
  X(Icmp6Checksum, "icmp6_bad_checksum")                                   \
  X(Icmp6Type, "icmp6_unhandled_type")                                     \
  X(NdMalformed, "nd_malformed")

enum class Drop : uint8_t {
#define X(name, str) name,
  TCPTERM_DROP_REASONS(X)
#undef X
      Count
};
const char* to_string(Drop d);
inline constexpr size_t kDropCount = size_t(Drop::Count);

// ------------------------------------------------------------- checksum ---
// RFC 1071 one's-complement sum, folded lazily.  `sum_bytes` may be chained
// over several pieces provided every piece but the last has even length.
uint32_t sum_bytes(const uint8_t* p, size_t n, uint32_t acc = 0);
inline uint16_t fold(uint32_t acc) {
  acc = (acc & 0xffff) + (acc >> 16);
  acc = (acc & 0xffff) + (acc >> 16);
  return uint16_t(~acc & 0xffff);
}
inline uint16_t checksum(const uint8_t* p, size_t n) { return fold(sum_bytes(p, n)); }
// What a device's TCP checksum offload wants in the checksum field: the
// pseudo-header's sum folded, not complemented (DPDK's rte_ipv4_phdr_cksum
// and rte_ipv6_phdr_cksum), stored with store16.  Taken from the fields,
// never read back from the header just written: a wide load over the
// narrower stores that wrote it cannot be forwarded and waits for them.
inline uint16_t offload_phdr(uint32_t pseudo_partial) { return uint16_t(~fold(pseudo_partial)); }
// A 32-bit partial sum folded to at most 17 bits (so more may be added).
inline uint32_t fold32(uint32_t acc) { return (acc & 0xffff) + (acc >> 16); }
// The sum of bytes that follow `prior` bytes already summed, of any parity
// (an odd `prior` puts this piece's bytes in the other half of each word).
inline uint32_t sum_more(uint32_t acc, const uint8_t* p, size_t n, size_t prior) {
  uint32_t s = sum_bytes(p, n);
  if (prior & 1) {
    s = fold32(fold32(s));
    s = ((s & 0xff) << 8) | (s >> 8);
  }
  return fold32(acc) + s;
}
// IPv4 pseudo-header (RFC 9293 3.1) partial sum.
inline uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

// ------------------------------------------------------------- Ethernet ---
inline constexpr size_t kEthHdrLen = 14;
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86DD;

struct EthRepr {
  Mac dst{}, src{};
  uint16_t ethertype = 0;
};
Drop parse_eth(std::span<const uint8_t> f, EthRepr& out);
void emit_eth(uint8_t* p, const EthRepr& e);

// ------------------------------------------------------------------ ARP ---
inline constexpr size_t kArpLen = 28;
enum class ArpOp : uint16_t { Request = 1, Reply = 2 };
struct ArpRepr {
  ArpOp op = ArpOp::Request;
  Mac sha{}, tha{};
  uint32_t spa = 0, tpa = 0;
};
// Accepts only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, hlen 6, plen 4).
Drop parse_arp(std::span<const uint8_t> p, ArpRepr& out);
void emit_arp(uint8_t* p, const ArpRepr& a);

// ----------------------------------------------------------------- IPv4 ---
inline constexpr size_t kIpv4MinHdr = 20;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
struct Ipv4Repr {
  uint32_t src = 0, dst = 0;
  uint8_t proto = 0;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t id = 0;
  uint16_t hdr_len = kIpv4MinHdr;  // parsed IHL*4; emit always writes 20
  uint16_t payload_len = 0;         // total length - header length
};
// Checks version, IHL (options skipped by length), total length against the
// span (trailing Ethernet padding is allowed), the header checksum unless
// `csum_ok` says hardware verified it, and refuses fragments (MF or offset).
Drop parse_ipv4(std::span<const uint8_t> p, Ipv4Repr& out, bool csum_verified = false);
// Writes a 20-byte header with checksum; payload_len must be set.
void emit_ipv4(uint8_t* p, const Ipv4Repr& ip, bool fill_checksum = true);
// The sum of the header emit_ipv4() writes (checksum field 0), from the fields.
uint32_t ipv4_header_sum(const Ipv4Repr& ip);

// ------------------------------------------------------------ ICMP echo ---
inline constexpr size_t kIcmpHdrLen = 8;
struct IcmpEchoRepr {
  uint8_t type = 8;  // 8 request, 0 reply
  uint16_t ident = 0, seq = 0;
  std::span<const uint8_t> data;
};
Drop parse_icmp_echo(std::span<const uint8_t> p, IcmpEchoRepr& out);
size_t emit_icmp_echo(uint8_t* p, const IcmpEchoRepr& e);  // returns bytes written

// ------------------------------------------------------------------ TCP ---
inline constexpr size_t kTcpMinHdr = 20;
inline constexpr size_t kTcpMaxHdr = 60;
namespace flag {
inline constexpr uint8_t FIN = 0x01, SYN = 0x02, RST = 0x04, PSH = 0x08, ACK = 0x10,
                         URG = 0x20, ECE = 0x40, CWR = 0x80;
}

struct SackBlock {
  uint32_t left = 0, right = 0;
};

struct TcpOptions {
  uint16_t mss = 0;          // 0: absent
  uint8_t wscale = 0xff;     // 0xff: absent; otherwise as received (clamped later)
  bool sack_permitted = false;
  bool has_ts = false;
  uint32_t ts_val = 0, ts_ecr = 0;
  uint8_t sack_count = 0;    // at most 4 blocks kept
  std::array<SackBlock, 4> sack{};
  bool has_wscale() const { return wscale != 0xff; }
};

struct TcpRepr {
  uint16_t src_port = 0, dst_port = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;  // raw field, unscaled
  uint16_t urgent = 0;
  TcpOptions opt;
  std::span<const uint8_t> payload;

  bool syn() const { return flags & flag::SYN; }
  bool fin() const { return flags & flag::FIN; }
  bool rst() const { return flags & flag::RST; }
  bool has_ack() const { return flags & flag::ACK; }
  // Sequence space the segment occupies (RFC 9293 3.4: SYN and FIN count).
  uint32_t seg_len() const { return uint32_t(payload.size()) + syn() + fin(); }
};

// ----------------------------------------------------------------- IPv6 ---
// Addresses are 16 bytes in network order.
using Ip6 = std::array<uint8_t, 16>;
inline constexpr size_t kIpv6HdrLen = 40;
inline constexpr uint8_t kProtoIcmp6 = 58;
// At most this many extension headers before the upper layer (RFC 8504 5.3
// lets a node bound the chain; Linux allows 8 options headers too).
inline constexpr unsigned kIpv6MaxExtHeaders = 8;

// RFC 5952 text form (lowercase, longest run of zero groups as "::",
// IPv4-mapped as ::ffff:a.b.c.d).
std::string ip6_to_string(const Ip6& a);
// RFC 4291 2.2 text forms, including "::" and a dotted-quad tail.
bool parse_ip6(std::string_view s, Ip6& out);
constexpr bool ip6_is_zero(const Ip6& a) {
  for (uint8_t b : a)
    if (b) return false;
  return true;
}
constexpr bool ip6_is_multicast(const Ip6& a) { return a[0] == 0xff; }
constexpr bool ip6_is_link_local(const Ip6& a) { return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; }
// RFC 4291 2.7.1: ff02::1:ffXX:XXXX, the solicited-node group of `a`.
Ip6 solicited_node(const Ip6& a);
// RFC 2464 7: the Ethernet address of an IPv6 multicast group, 33:33 + low 32 bits.
Mac multicast_mac(const Ip6& group);
// Sources no packet may carry from a peer (RFC 4291 2.5.2/2.5.3/2.7, RFC
// 4038 4.2): the unspecified address (except a DAD solicitation, which the
// ND code checks itself), loopback, multicast, IPv4-mapped.
bool ip6_martian_source(const Ip6& a);
// ::ffff:a.b.c.d, the IPv4-mapped form (RFC 4291 2.5.5.2) of a host-order
// IPv4 address: one 16-byte key for either family (never a peer's IPv6
// address: those are refused as martian).
inline Ip6 ip6_mapped(uint32_t v4) {
  Ip6 a{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  store32(a.data() + 12, v4);
  return a;
}
// `a` with every bit after the first `len` cleared (the prefix of a route).
Ip6 ip6_masked(const Ip6& a, unsigned len);
// True when the first `len` bits of a and b agree.
bool ip6_prefix_match(const Ip6& a, const Ip6& b, unsigned len);

struct Ipv6Repr {
  Ip6 src{}, dst{};
  uint8_t proto = 0;          // the upper-layer protocol after the extension headers
  uint8_t hop_limit = 64;
  uint8_t tclass = 0;
  uint32_t flow_label = 0;
  uint16_t hdr_len = kIpv6HdrLen;  // 40 + extension headers (emit writes 40)
  uint16_t payload_len = 0;        // upper-layer bytes (after the extension headers)
};
// Checks the version and the payload length against the span (Ethernet
// padding allowed), refuses martian sources and walks the extension headers:
//  - hop-by-hop (only first), destination options: their options are
//    walked (Pad1/PadN skipped; an unknown option whose action bits say
//    "discard" (RFC 8200 4.2) drops the packet, Ipv6Option);
//  - routing: type 0 is refused (RFC 5095, Ipv6RoutingHeader), as is any
//    routing header with segments left (we are an end host and forward
//    nothing); with none left it is skipped (RFC 8200 4.4);
//  - fragment: refused (Ipv6Fragment): TCP here never needs fragments;
//  - more than kIpv6MaxExtHeaders headers: Ipv6ExtChain;
//  - a header running past the payload: Ipv6ExtHeader.
// On success `proto` and `payload_len` describe the upper layer, which
// starts `hdr_len` bytes into the span.  `proto` may be anything else
// (ESP, No Next Header...): the caller refuses what it does not handle.
Drop parse_ipv6(std::span<const uint8_t> p, Ipv6Repr& out);
// Writes a 40-byte header (next header = proto, payload length = payload_len).
void emit_ipv6(uint8_t* p, const Ipv6Repr& ip);
// IPv6 pseudo-header (RFC 8200 8.1) partial sum.
uint32_t pseudo_sum6(const Ip6& src, const Ip6& dst, uint8_t proto, uint32_t len);

// ---------------------------------------------------------------- ICMPv6 ---
namespace icmp6 {
inline constexpr uint8_t kDestUnreach = 1, kPacketTooBig = 2, kTimeExceeded = 3, kParamProblem = 4,
                         kEchoRequest = 128, kEchoReply = 129, kRouterSolicit = 133,
                         kRouterAdvert = 134, kNeighborSolicit = 135, kNeighborAdvert = 136,
                         kRedirect = 137;
inline constexpr uint8_t kOptSourceLinkAddr = 1, kOptTargetLinkAddr = 2;
// Neighbor Advertisement flags (RFC 4861 4.4).
inline constexpr uint8_t kNaRouter = 0x80, kNaSolicited = 0x40, kNaOverride = 0x20;
inline constexpr uint16_t kMinMtu = 1280;  // RFC 8200 5
}  // namespace icmp6

struct Icmp6Repr {
  uint8_t type = 0, code = 0;
  // Echo
  uint16_t ident = 0, seq = 0;
  // Neighbour discovery (NS, NA)
  Ip6 target{};
  uint8_t na_flags = 0;
  bool has_lladdr = false;  // the source (NS) or target (NA) link-layer address option
  Mac lladdr{};
  // Packet Too Big
  uint32_t mtu = 0;
  // Echo data, or the invoking packet of an error message.
  std::span<const uint8_t> data;
};
// Verifies the checksum over the pseudo-header and decodes echo request and
// reply, NS, NA (RFC 4861 7.1.1 / 7.1.2 checks: code 0, length, no
// multicast target, options with non-zero length) and Packet Too Big.  The
// hop limit of ND messages (255) is the caller's check: it is in the IP
// header.  Other types: Icmp6Type, with `type` set.
Drop parse_icmp6(std::span<const uint8_t> p, const Ipv6Repr& ip, Icmp6Repr& out);
// Writes echo request/reply, NS (with a source link-layer option when
// has_lladdr), NA (target link-layer option when has_lladdr) with its
// checksum over ip's addresses.  Returns the bytes written; icmp6_len()
// says how many in advance.
size_t icmp6_len(const Icmp6Repr& m);
size_t emit_icmp6(uint8_t* p, const Icmp6Repr& m, const Ipv6Repr& ip);

// Parses a TCP segment of exactly `p.size()` bytes (the IPv4 payload).  When
// `ip` is given and `csum_verified` is false the checksum is verified over the
// pseudo-header.  Refuses impossible flag sets (SYN+FIN, SYN+RST, no flags at
// all), data offsets below 5 or past the segment, options running past the
// header, and port 0.
Drop parse_tcp(std::span<const uint8_t> p, TcpRepr& out, const Ipv4Repr* ip = nullptr,
               bool csum_verified = false);
// The same over IPv6: the checksum (mandatory, RFC 8200 8.1) over the
// IPv6 pseudo-header unless `csum_verified`.
Drop parse_tcp6(std::span<const uint8_t> p, TcpRepr& out, const Ipv6Repr& ip, bool csum_verified = false);
// Options parsing alone (used by parse_tcp; exposed for fuzzing and tests).
Drop parse_tcp_options(std::span<const uint8_t> opts, TcpOptions& out);
// Header length (20 + options, padded to 4) that emit_tcp_header will write
// (inline: every transmitted segment asks twice).
inline size_t tcp_header_len(const TcpRepr& t) {
  size_t n = kTcpMinHdr;
  if (t.opt.mss) n += 4;
  if (t.opt.has_wscale()) n += 4;                     // NOP + 3
  if (t.opt.sack_permitted && !t.opt.has_ts) n += 4;  // NOP NOP + 2
  if (t.opt.has_ts) n += 12;                          // (SACK-perm + TS) or (NOP NOP + TS)
  return n;
}
// Writes the header (with options) and, when `ip` is given, the checksum over
// pseudo-header + header + `payload_len` bytes of payload already stored right
// after the header.  Returns the header length.
size_t emit_tcp_header(uint8_t* p, const TcpRepr& t, const Ipv4Repr* ip, size_t payload_len);
// The same with the payload's sum already known (summed from where it was
// copied from: nothing of the frame is read back).
size_t emit_tcp_header(uint8_t* p, const TcpRepr& t, const Ipv4Repr* ip, size_t payload_len,
                       uint32_t payload_sum);
// The sum of the header words emit_tcp_header() writes (checksum field 0).
uint32_t tcp_fields_sum(const TcpRepr& t);
// The same with the checksum over the IPv6 pseudo-header.
size_t emit_tcp_header6(uint8_t* p, const TcpRepr& t, const Ipv6Repr& ip, size_t payload_len);
size_t emit_tcp_header6(uint8_t* p, const TcpRepr& t, const Ipv6Repr& ip, size_t payload_len,
                        uint32_t payload_sum);

}  // namespace tcpterm::wire
