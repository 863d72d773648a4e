#include "tcp/syncookie.h"

#include <cstring>

#include "tcp/iss.h"

namespace tcpterm::tcp {

uint32_t SynCookies::mac(const Generation& g, const CookieTuple& t, uint32_t peer_isn, uint8_t low) const {
  uint8_t b[49];
  size_t a = t.alen;
  std::memcpy(b, t.laddr, a);
  std::memcpy(b + a, t.raddr, a);
  std::memcpy(b + 2 * a, &t.lport, 2);
  std::memcpy(b + 2 * a + 2, &t.rport, 2);
  std::memcpy(b + 2 * a + 4, &peer_isn, 4);
  std::memcpy(b + 2 * a + 8, &g.period, 8);
  b[2 * a + 16] = low;
  return uint32_t(siphash24(g.k0, g.k1, b, 2 * a + 17)) & 0xffffffu;
}

uint32_t SynCookies::make(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport,
                          uint32_t peer_isn, const CookieData& d, uint64_t now_ms) {
  CookieTuple t{reinterpret_cast<const uint8_t*>(&laddr), reinterpret_cast<const uint8_t*>(&raddr), 4, lport, rport};
  return make(t, peer_isn, d, now_ms);
}

bool SynCookies::check(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport,
                       uint32_t peer_isn, uint32_t cookie, uint64_t now_ms, CookieData& out) const {
  CookieTuple t{reinterpret_cast<const uint8_t*>(&laddr), reinterpret_cast<const uint8_t*>(&raddr), 4, lport, rport};
  return check(t, peer_isn, cookie, now_ms, out);
}

uint32_t SynCookies::make(const CookieTuple& t, uint32_t peer_isn, const CookieData& d, uint64_t now_ms) {
  uint64_t period = now_ms / kCookiePeriodMs;
  Generation& g = gen_[period & 1];
  if (g.period != period) {
    // A new period: a fresh secret replaces the one of two periods ago.
    uint64_t k[2];
    rng_(k, sizeof k);
    g = Generation{period, k[0], k[1]};
    rotations_++;
  }
  uint8_t mss_idx = 0;
  for (uint8_t i = 0; i < kCookieMss.size(); i++)
    if (kCookieMss[i] <= d.mss) mss_idx = i;
  uint8_t ws = d.wscale == 0xff ? 15 : (d.wscale > 14 ? 14 : d.wscale);
  uint8_t low = uint8_t(mss_idx << 5 | ws << 1 | (period & 1));
  return mac(g, t, peer_isn, low) << 8 | low;
}

bool SynCookies::check(const CookieTuple& t, uint32_t peer_isn, uint32_t cookie, uint64_t now_ms,
                       CookieData& out) const {
  uint8_t low = uint8_t(cookie & 0xff);
  uint64_t period = now_ms / kCookiePeriodMs;
  const Generation& g = gen_[low & 1];
  // Only this period's secret or the previous one's, and only if it is still
  // the secret of that period (not rotated away, not never drawn).
  if (g.period != period && g.period + 1 != period) return false;
  if (mac(g, t, peer_isn, low) != cookie >> 8) return false;
  out.mss = kCookieMss[low >> 5];
  uint8_t ws = (low >> 1) & 0xf;
  out.wscale = ws == 15 ? 0xff : ws;
  return true;
}

}  // namespace tcpterm::tcp
