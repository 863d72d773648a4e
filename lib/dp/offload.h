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

// A frame received on an in-memory link (PortInfo::virtual_wire) still
// carries the transmit offload flags it was sent with: the checksums it asked
// for were never computed, and need not be, since the frame never left memory
// (Linux veth: CHECKSUM_PARTIAL sent, CHECKSUM_UNNECESSARY received).  Its
// receive flags say so (NONE: not correct, integrity verified).  A frame
// that asked for nothing is verified in software as usual.
inline uint64_t virtual_wire_rx(uint64_t ol_flags) {
  uint64_t rx = 0;
  if (ol_flags & RTE_MBUF_F_TX_IP_CKSUM) rx |= RTE_MBUF_F_RX_IP_CKSUM_NONE;
  if ((ol_flags & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_TCP_CKSUM) rx |= RTE_MBUF_F_RX_L4_CKSUM_NONE;
  return rx;
}

}  // namespace tcpterm::dp
