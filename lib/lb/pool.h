// Backend pools: their configuration, as parsed from `--pool` (and changed
// at run time by `pool add/del/drain`).  Pure, unit-tested.
//
//   --pool NAME=IP:PORT[,weight=W][,IP:PORT[,weight=W]...][,key=value...]
//
// A `weight=` follows the backend it weighs.  Pool keys (defaults):
//   balance=maglev|wrr|leastconn   (maglev)   hash=src-port|src  (src-port)
//   table=M            Maglev table size, prime          (65537)
//   check=tcp|http|none, path=/P, expect=CODE, interval=MS, rise=N, fall=N
//                      (tcp, /, 200, 2000, 2, 3)
//   connect-timeout-ms=MS (1000)   retries=N (2)
//   proxy-protocol=off|v1|v2 (off)  mode=tcp|http (tcp: on failure, RST;
//                      http: 503 and close)
//   src=FIRST[-LAST]   backend-side source addresses (default: the
//                      appliance's own address on the port reaching the backend)
//   sport=LO-HI        backend-side source ports (1024-65535)
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "wire/wire.h"

namespace tcpterm::lb {

enum class Balance : uint8_t { Maglev, Wrr, LeastConn };
enum class HashOn : uint8_t { SrcPort, Src };
enum class Check : uint8_t { None, Tcp, Http };
enum class ProxyProto : uint8_t { Off, V1, V2 };
enum class Mode : uint8_t { Tcp, Http };

const char* to_string(Balance b);
const char* to_string(HashOn h);
const char* to_string(Check c);
const char* to_string(ProxyProto p);
const char* to_string(Mode m);

inline constexpr size_t kMaxBackends = 256;  // per pool, including removed ones

// An IPv6 address folded to 32 bits, for hashing and spreading only (a
// client's Maglev key, a backend's port cursor): never an identity.
inline uint32_t fold_ip6(const wire::Ip6& a) {
  uint32_t h = 0;
  for (int i = 0; i < 16; i += 4) h = h * 0x9E3779B1u ^ wire::load32(a.data() + i);
  return h;
}

struct BackendConf {
  uint32_t addr = 0;  // IPv4 (v6 false)
  uint16_t port = 0;
  uint32_t weight = 1;  // 1..256
  bool v6 = false;      // [IPV6]:PORT: addr6
  wire::Ip6 addr6{};
  // A 32-bit name of the address: the IPv4 address, or a fold of the IPv6
  // one (hashing and spreading only; identity is same()).
  uint32_t addr_key() const { return v6 ? fold_ip6(addr6) : addr; }
  uint64_t id() const { return uint64_t(addr_key()) << 16 | port | (v6 ? 1ull << 48 : 0); }
  bool same(const BackendConf& o) const {
    return v6 == o.v6 && port == o.port && (v6 ? addr6 == o.addr6 : addr == o.addr);
  }
  // "198.18.1.1:80" or "[2001:2::10]:80".
  std::string endpoint() const {
    return (v6 ? "[" + wire::ip6_to_string(addr6) + "]" : wire::ip_to_string(addr)) + ":" + std::to_string(port);
  }
};

struct PoolConf {
  std::string name;
  std::vector<BackendConf> backends;
  Balance balance = Balance::Maglev;
  HashOn hash = HashOn::SrcPort;
  uint32_t table_size = 65537;
  Check check = Check::Tcp;
  std::string check_path = "/";
  uint16_t check_expect = 200;
  uint32_t interval_ms = 2000;
  uint8_t rise = 2, fall = 3;
  uint32_t connect_timeout_ms = 1000;
  uint8_t retries = 2;
  ProxyProto proxy_protocol = ProxyProto::Off;
  Mode mode = Mode::Tcp;
  uint32_t src_first = 0, src_last = 0;  // 0: automatic
  uint16_t sport_lo = 1024, sport_hi = 65535;
  std::string text;  // as given
  std::string describe() const;  // one line, every key (show pools, show config)
};

// `--pool NAME=...`; an error naming the bad part, or nothing.
std::optional<std::string> parse_pool(std::string_view s, PoolConf& out);
// "IP:PORT" or "[IPV6]:PORT" (a backend); false when malformed or port 0 /
// address 0.
bool parse_backend(std::string_view s, BackendConf& out);

}  // namespace tcpterm::lb
