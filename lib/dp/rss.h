// Which lcore owns a flow, from a received segment's tuple?  Two answers:
//  - the NIC's: its Toeplitz hash (its RSS key) of the IPv4/TCP tuple,
//    through its redirection table, names the RX queue, and so the lcore;
//  - software steering, on a multi-queue port whose queue choice cannot be
//    predicted (a TAP, where the kernel spreads frames by its own hash, a
//    memif whose peer picks the queue): a keyed hash of the tuple names the
//    owning lcore, and the lcore that received a frame hands it to its owner
//    (Worker::steer).
// Either way the client role and the proxy pick source ports whose replies
// land on the lcore that opened the connection (no cross-lcore flow state).
// Arguments are the received frame's: src is the peer, dst is ours.
#pragma once
#include <rte_thash.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace tcpterm::dp {

class RssSteer {
 public:
  RssSteer(std::vector<uint8_t> key, std::vector<uint16_t> reta) : key_(std::move(key)), reta_(std::move(reta)) {
    key_.resize(std::max<size_t>(key_.size(), 40), 0);
  }
  // Software steering over `lcores` owners, keyed by a secret `seed` (a
  // peer that cannot compute the owner cannot aim its flows at one lcore).
  RssSteer(uint16_t lcores, uint64_t seed) : sw_lcores_(lcores), seed_(seed) {}
  bool software() const { return sw_lcores_ != 0; }
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
    if (sw_lcores_) return sw_owner((uint64_t(src) << 32 | dst), 0, sport, dport);
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
    return queue6_bytes(src.data(), dst.data(), sport, dport);
  }
  uint16_t queue6_bytes(const uint8_t* src, const uint8_t* dst, uint16_t sport, uint16_t dport) const {
    if (sw_lcores_) {
      uint64_t w[4];
      std::memcpy(w, src, 16);
      std::memcpy(w + 2, dst, 16);
      return sw_owner(w[0] ^ mix(w[1]), w[2] ^ mix(w[3]), sport, dport);
    }
    return reta_.empty() ? 0 : reta_[hash6(src, dst, sport, dport) % reta_.size()];
  }

 private:
  static uint64_t mix(uint64_t x) {  // MurmurHash3's 64-bit finaliser
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
  }
  uint16_t sw_owner(uint64_t a, uint64_t b, uint16_t sport, uint16_t dport) const {
    uint64_t h = mix(mix(a ^ seed_) ^ b ^ (uint64_t(sport) << 16 | dport));
    return uint16_t((h >> 32) * sw_lcores_ >> 32);
  }
  std::vector<uint8_t> key_;
  std::vector<uint16_t> reta_;
  uint16_t sw_lcores_ = 0;
  uint64_t seed_ = 0;
};

}  // namespace tcpterm::dp
