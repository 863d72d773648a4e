#include "tcp/syncookie.h"

#include <cstring>

#include "tcp/iss.h"

namespace tcpterm::tcp {

uint32_t SynCookies::mac(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport,
                         uint32_t peer_isn, uint64_t period, uint8_t low) const {
  uint8_t b[25];
  std::memcpy(b, &laddr, 4);
  std::memcpy(b + 4, &raddr, 4);
  std::memcpy(b + 8, &lport, 2);
  std::memcpy(b + 10, &rport, 2);
  std::memcpy(b + 12, &peer_isn, 4);
  std::memcpy(b + 16, &period, 8);
  b[24] = low;
  return uint32_t(siphash24(k0_, k1_, b, sizeof b)) & 0xffffffu;
}

uint32_t SynCookies::make(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport,
                          uint32_t peer_isn, const CookieData& d, uint64_t now_ms) const {
  uint8_t mss_idx = 0;
  for (uint8_t i = 0; i < kCookieMss.size(); i++)
    if (kCookieMss[i] <= d.mss) mss_idx = i;
  uint8_t ws = d.wscale == 0xff ? 15 : (d.wscale > 14 ? 14 : d.wscale);
  uint8_t low = uint8_t(mss_idx << 5 | ws << 1);
  return mac(laddr, lport, raddr, rport, peer_isn, now_ms / kCookiePeriodMs, low) << 8 | low;
}

bool SynCookies::check(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport,
                       uint32_t peer_isn, uint32_t cookie, uint64_t now_ms, CookieData& out) const {
  uint8_t low = uint8_t(cookie & 0xff);
  if (low & 1) return false;
  uint64_t period = now_ms / kCookiePeriodMs;
  for (uint64_t p : {period, period - 1}) {
    if (mac(laddr, lport, raddr, rport, peer_isn, p, low) == cookie >> 8) {
      out.mss = kCookieMss[low >> 5];
      uint8_t ws = (low >> 1) & 0xf;
      out.wscale = ws == 15 ? 0xff : ws;
      return true;
    }
  }
  return false;
}

}  // namespace tcpterm::tcp
