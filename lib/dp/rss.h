// Which RX queue will a reply land on?  The NIC's Toeplitz hash (its RSS key)
// of the reply's IPv4/TCP tuple, through its redirection table.  Used by the
// client role to pick source ports so that replies come back to the lcore
// that opened the connection (no cross-lcore flow state).
#pragma once
#include <rte_thash.h>

#include <cstdint>
#include <vector>

namespace tcpterm::dp {

class RssSteer {
 public:
  RssSteer(std::vector<uint8_t> key, std::vector<uint16_t> reta) : key_(std::move(key)), reta_(std::move(reta)) {
    key_.resize(std::max<size_t>(key_.size(), 40), 0);
  }
  // Toeplitz hash of (src, dst, sport, dport), host byte order (rte_softrss).
  uint32_t hash(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) const {
    rte_ipv4_tuple t;
    t.src_addr = src;
    t.dst_addr = dst;
    t.sport = sport;
    t.dport = dport;
    return rte_softrss(reinterpret_cast<uint32_t*>(&t), RTE_THASH_V4_L4_LEN, key_.data());
  }
  uint16_t queue(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) const {
    return reta_.empty() ? 0 : reta_[hash(src, dst, sport, dport) % reta_.size()];
  }
  // The IPv6/TCP tuple (rte_softrss over rte_ipv6_tuple, addresses as
  // 32-bit words in host order, as rte_thash_load_v6_addrs leaves them).
  uint32_t hash6(const uint8_t* src, const uint8_t* dst, uint16_t sport, uint16_t dport) const {
    rte_ipv6_tuple t;
    for (int i = 0; i < 4; i++) {
      t.src_addr[4 * i] = src[4 * i + 3];  // one 32-bit word, byte-swapped
      t.src_addr[4 * i + 1] = src[4 * i + 2];
      t.src_addr[4 * i + 2] = src[4 * i + 1];
      t.src_addr[4 * i + 3] = src[4 * i];
      t.dst_addr[4 * i] = dst[4 * i + 3];
      t.dst_addr[4 * i + 1] = dst[4 * i + 2];
      t.dst_addr[4 * i + 2] = dst[4 * i + 1];
      t.dst_addr[4 * i + 3] = dst[4 * i];
    }
    t.sport = sport;
    t.dport = dport;
    return rte_softrss(reinterpret_cast<uint32_t*>(&t), RTE_THASH_V6_L4_LEN, key_.data());
  }
  template <class A>
  uint16_t queue6(const A& src, const A& dst, uint16_t sport, uint16_t dport) const {
    return reta_.empty() ? 0 : reta_[hash6(src.data(), dst.data(), sport, dport) % reta_.size()];
  }

 private:
  std::vector<uint8_t> key_;
  std::vector<uint16_t> reta_;
};

}  // namespace tcpterm::dp
