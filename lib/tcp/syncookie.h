// SYN cookies (RFC 4987 3.6): under a SYN flood the listener keeps no state
// for a SYN; its SYN-ACK's ISS encodes what the handshake needs, and only an
// ACK that returns a valid cookie creates the connection.
//
// Cookie layout (the ISS we send):
//   bits 31..8  MAC: SipHash-2-4(secret[g]; local/remote address and port,
//               the peer's ISN, the 64-second period, bits 7..0) & 0xffffff
//   bits  7..5  MSS index into kCookieMss (the largest <= the peer's MSS)
//   bits  4..1  peer window scale 0..14, 15 = none offered
//   bit   0     g: the secret generation, the parity of the period
// Secrets rotate: each period draws a fresh 128-bit secret from the OS
// random source into the slot of its parity, so two generations are live
// (the current period's and the previous one's) and a cookie is accepted in
// the period it was made and the next one (64 to 128 s), never later: its
// slot has been overwritten by then.  Timestamps need no bit: the ACK
// carries them when both offered them.  SACK is not offered by tcpterm.
#pragma once
#include <array>
#include <cstdint>

#include "tcp/random.h"

namespace tcpterm::tcp {

inline constexpr std::array<uint16_t, 8> kCookieMss = {216, 536, 1024, 1200, 1360, 1400, 1440, 1460};
inline constexpr uint64_t kCookiePeriodMs = 64000;

struct CookieData {
  uint16_t mss = 536;
  uint8_t wscale = 0xff;  // 0xff: the peer offered none
};

// The connection a cookie is bound to: 4-byte (IPv4, host order as stored)
// or 16-byte (IPv6) addresses and the ports.
struct CookieTuple {
  const uint8_t* laddr = nullptr;
  const uint8_t* raddr = nullptr;
  uint8_t alen = 4;
  uint16_t lport = 0, rport = 0;
};

class SynCookies {
 public:
  explicit SynCookies(RandomFn rng = random_bytes) : rng_(rng) {}
  // Makes a cookie, first rotating the secret of this period if needed.
  uint32_t make(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport, uint32_t peer_isn,
                const CookieData& d, uint64_t now_ms);
  // `cookie` is SEG.ACK - 1 and `peer_isn` SEG.SEQ - 1 of the returning ACK.
  bool check(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport, uint32_t peer_isn,
             uint32_t cookie, uint64_t now_ms, CookieData& out) const;
  // The same for any family.
  uint32_t make(const CookieTuple& t, uint32_t peer_isn, const CookieData& d, uint64_t now_ms);
  bool check(const CookieTuple& t, uint32_t peer_isn, uint32_t cookie, uint64_t now_ms, CookieData& out) const;
  uint64_t rotations() const { return rotations_; }

 private:
  struct Generation {
    uint64_t period = ~0ull;  // the period this secret belongs to (~0: none yet)
    uint64_t k0 = 0, k1 = 0;
  };
  uint32_t mac(const Generation& g, const CookieTuple& t, uint32_t peer_isn, uint8_t low) const;
  RandomFn rng_;
  std::array<Generation, 2> gen_{};
  uint64_t rotations_ = 0;
};

}  // namespace tcpterm::tcp
