// The PROXY protocol, versions 1 and 2 (HAProxy, "The PROXY protocol",
// haproxy.org/download/2.6/doc/proxy-protocol.txt): the first bytes a
// backend receives tell it the client's address and port.  Builders for the
// proxy, and a parser (tests, and any backend-side tool).
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "wire/wire.h"

namespace tcpterm::lb {

struct ProxyAddrs {
  uint32_t src = 0, dst = 0;  // client address, the address it connected to
  uint16_t sport = 0, dport = 0;
  bool v6 = false;            // an IPv6 client: src6, dst6 (TCP6, AF_INET6)
  wire::Ip6 src6{}, dst6{};
};

// Version 1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" (at most 56 bytes
// for TCP4, 104 for TCP6).  Returns the length written into out (>= 108 bytes).
size_t build_proxy_v1(const ProxyAddrs& a, uint8_t* out);
// Version 2: the 12-byte signature, PROXY command, AF_INET/STREAM and 12
// bytes of addresses (28 bytes in all), or AF_INET6/STREAM and 36 (52).
size_t build_proxy_v2(const ProxyAddrs& a, uint8_t* out);
inline constexpr size_t kProxyV2Len = 28;
inline constexpr size_t kProxyV2Len6 = 52;
inline constexpr size_t kProxyV1Max = 108;

// Parses a header at the start of `in` (either version).  Returns the
// header length, 0 when more bytes are needed, -1 when malformed.
// `local` is set for v1 "UNKNOWN" and v2 LOCAL (no addresses).
long parse_proxy(std::span<const uint8_t> in, ProxyAddrs& a, int& version, bool& local);

}  // namespace tcpterm::lb
