// lib/wire: checked views of Ethernet, ARP, IPv4, ICMP echo and TCP.
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
inline void store16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8); p[1] = uint8_t(v); }
inline void store32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24); p[1] = uint8_t(v >> 16); p[2] = uint8_t(v >> 8); p[3] = uint8_t(v);
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
  X(TcpPort, "tcp_bad_port")

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
// IPv4 pseudo-header (RFC 9293 3.1) partial sum.
inline uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint16_t len) {
  return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

// ------------------------------------------------------------- Ethernet ---
inline constexpr size_t kEthHdrLen = 14;
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;

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

// Parses a TCP segment of exactly `p.size()` bytes (the IPv4 payload).  When
// `ip` is given and `csum_verified` is false the checksum is verified over the
// pseudo-header.  Refuses impossible flag sets (SYN+FIN, SYN+RST, no flags at
// all), data offsets below 5 or past the segment, options running past the
// header, and port 0.
Drop parse_tcp(std::span<const uint8_t> p, TcpRepr& out, const Ipv4Repr* ip = nullptr,
               bool csum_verified = false);
// Options parsing alone (used by parse_tcp; exposed for fuzzing and tests).
Drop parse_tcp_options(std::span<const uint8_t> opts, TcpOptions& out);
// Header length (20 + options, padded to 4) that emit_tcp_header will write.
size_t tcp_header_len(const TcpRepr& t);
// Writes the header (with options) and, when `ip` is given, the checksum over
// pseudo-header + header + `payload_len` bytes of payload already stored right
// after the header.  Returns the header length.
size_t emit_tcp_header(uint8_t* p, const TcpRepr& t, const Ipv4Repr* ip, size_t payload_len);

}  // namespace tcpterm::wire
