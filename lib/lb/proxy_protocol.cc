#include "lb/proxy_protocol.h"

#include <charconv>
#include <cstring>
#include <string_view>

#include "wire/wire.h"

namespace tcpterm::lb {

namespace {
constexpr uint8_t kSig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// Decimal 0..65535 without a leading zero (the specification: "no leading zero").
bool port_field(std::string_view v, uint16_t& out) {
  if (v.empty() || v.size() > 5 || (v.size() > 1 && v[0] == '0')) return false;
  unsigned x = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || x > 65535) return false;
  out = uint16_t(x);
  return true;
}
}  // namespace

size_t build_proxy_v1(const ProxyAddrs& a, uint8_t* out) {
  std::string s = a.v6 ? "PROXY TCP6 " + wire::ip6_to_string(a.src6) + " " + wire::ip6_to_string(a.dst6) + " "
                       : "PROXY TCP4 " + wire::ip_to_string(a.src) + " " + wire::ip_to_string(a.dst) + " ";
  s += std::to_string(a.sport) + " " + std::to_string(a.dport) + "\r\n";
  std::memcpy(out, s.data(), s.size());
  return s.size();
}

size_t build_proxy_v2(const ProxyAddrs& a, uint8_t* out) {
  std::memcpy(out, kSig, 12);
  out[12] = 0x21;  // version 2, PROXY
  if (a.v6) {
    out[13] = 0x21;  // AF_INET6, STREAM
    wire::store16(out + 14, 36);
    std::memcpy(out + 16, a.src6.data(), 16);
    std::memcpy(out + 32, a.dst6.data(), 16);
    wire::store16(out + 48, a.sport);
    wire::store16(out + 50, a.dport);
    return kProxyV2Len6;
  }
  out[13] = 0x11;  // AF_INET, STREAM
  wire::store16(out + 14, 12);
  wire::store32(out + 16, a.src);
  wire::store32(out + 20, a.dst);
  wire::store16(out + 24, a.sport);
  wire::store16(out + 26, a.dport);
  return kProxyV2Len;
}

long parse_proxy(std::span<const uint8_t> in, ProxyAddrs& a, int& version, bool& local) {
  local = false;
  a = ProxyAddrs{};
  if (in.size() >= 1 && in[0] == kSig[0]) {
    // Version 2: need the 16-byte fixed part, then len bytes.
    size_t n = std::min<size_t>(in.size(), 12);
    if (std::memcmp(in.data(), kSig, n) != 0) return -1;
    if (in.size() < 16) return 0;
    version = 2;
    uint8_t ver = in[12] >> 4, cmd = in[12] & 0xf;
    if (ver != 2 || cmd > 1) return -1;
    size_t len = wire::load16(in.data() + 14);
    if (in.size() < 16 + len) return 0;
    if (cmd == 0) {  // LOCAL: the proxy's own connection (health checks)
      local = true;
      return long(16 + len);
    }
    uint8_t fam = in[13];
    if (fam == 0x11) {  // TCP over IPv4
      if (len < 12) return -1;
      a.src = wire::load32(in.data() + 16);
      a.dst = wire::load32(in.data() + 20);
      a.sport = wire::load16(in.data() + 24);
      a.dport = wire::load16(in.data() + 26);
    } else if (fam == 0x00) {
      local = true;  // UNSPEC: addresses to be ignored
    } else if (fam == 0x21) {  // TCP over IPv6
      if (len < 36) return -1;
      a.v6 = true;
      std::memcpy(a.src6.data(), in.data() + 16, 16);
      std::memcpy(a.dst6.data(), in.data() + 32, 16);
      a.sport = wire::load16(in.data() + 48);
      a.dport = wire::load16(in.data() + 50);
    } else {
      return -1;
    }
    return long(16 + len);
  }
  // Version 1: one line of at most 107 bytes + CRLF.
  static constexpr std::string_view kPrefix = "PROXY ";
  size_t n = std::min(in.size(), kPrefix.size());
  if (std::memcmp(in.data(), kPrefix.data(), n) != 0) return -1;
  size_t end = 0;
  for (size_t i = 0; i + 1 < in.size() && i < kProxyV1Max; i++)
    if (in[i] == '\r' && in[i + 1] == '\n') {
      end = i;
      break;
    }
  if (!end) return in.size() >= kProxyV1Max ? -1 : 0;
  version = 1;
  std::string_view line(reinterpret_cast<const char*>(in.data()), end);
  line.remove_prefix(kPrefix.size());
  std::string_view f[5];
  int nf = 0;
  while (!line.empty() && nf < 5) {
    size_t sp = line.find(' ');
    f[nf++] = line.substr(0, sp);
    line = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
  }
  if (nf >= 1 && f[0] == "UNKNOWN") {
    local = true;
    return long(end + 2);
  }
  if (nf != 5 || !line.empty() || (f[0] != "TCP4" && f[0] != "TCP6")) return -1;
  if (f[0] == "TCP6") {
    a.v6 = true;
    if (!wire::parse_ip6(f[1], a.src6) || !wire::parse_ip6(f[2], a.dst6)) return -1;
  } else if (!wire::parse_ip(f[1], a.src) || !wire::parse_ip(f[2], a.dst)) {
    return -1;
  }
  if (!port_field(f[3], a.sport) || !port_field(f[4], a.dport)) return -1;
  return long(end + 2);
}

}  // namespace tcpterm::lb
