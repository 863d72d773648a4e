// What the receive checksum flags of an mbuf let us skip (DPDK 22.11
// rte_mbuf_core.h).  GOOD: the device verified the checksum.  NONE: "the
// checksum in the packet is not correct, but the integrity of the data is
// verified" (virtio with VIRTIO_NET_HDR_F_DATA_VALID, a local peer that left
// the checksum partial): verifying it in software would wrongly drop the
// frame.  UNKNOWN: not checked, verify it ourselves.  BAD: drop.
#pragma once
#include <rte_mbuf_core.h>

#include <cstdint>

namespace tcpterm::dp {

enum class Cksum : uint8_t { Verify, Trusted, Bad };

inline Cksum rx_ip_cksum(uint64_t ol_flags) {
  switch (ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
    case RTE_MBUF_F_RX_IP_CKSUM_GOOD:
    case RTE_MBUF_F_RX_IP_CKSUM_NONE: return Cksum::Trusted;
    case RTE_MBUF_F_RX_IP_CKSUM_BAD: return Cksum::Bad;
    default: return Cksum::Verify;
  }
}

inline Cksum rx_l4_cksum(uint64_t ol_flags) {
  switch (ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) {
    case RTE_MBUF_F_RX_L4_CKSUM_GOOD:
    case RTE_MBUF_F_RX_L4_CKSUM_NONE: return Cksum::Trusted;
    case RTE_MBUF_F_RX_L4_CKSUM_BAD: return Cksum::Bad;
    default: return Cksum::Verify;
  }
}

}  // namespace tcpterm::dp
