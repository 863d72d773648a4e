// Per-lcore TCP configuration: every timeout and limit the state machine
// uses, with units in the names and the source of each default.
#pragma once
#include <cstdint>

namespace tcpterm::tcp {

// What a TIME-WAIT record does with an RST (RFC 1337 "TIME-WAIT assassination").
enum class TwRstPolicy : uint8_t { Ignore, Close };
// What happens when the per-lcore TIME-WAIT record cap is reached.
enum class TwCapPolicy : uint8_t {
  RecycleOldest,  // the record closest to expiry ends early; the new one is kept
  Skip,           // the closing flow skips TIME-WAIT (Linux tw_bucket overflow)
};

struct Config {
  uint32_t msl_ms = 30000;                 // TIME-WAIT = 2 * MSL (RFC 9293 3.4.2)
  uint32_t fin_wait_2_timeout_ms = 60000;  // orphaned FIN-WAIT-2 (Linux tcp_fin_timeout)
  uint32_t idle_timeout_ms = 300000;       // ESTABLISHED / CLOSE-WAIT idle close; 0: keep-alive
  uint32_t rto_initial_ms = 1000;          // RFC 6298 2.1
  uint32_t rto_min_ms = 200;               // RFC 6298 2.4 allows below 1 s (Linux: 200 ms)
  uint32_t rto_max_ms = 60000;             // RFC 6298 2.5: a maximum of at least 60 s
  uint8_t syn_retries = 6;                 // SYN-SENT
  uint8_t synack_retries = 5;              // SYN-RECEIVED
  uint8_t data_retries = 15;               // R2 of RFC 9293 3.8.3 (Linux tcp_retries2)
  uint8_t orphan_retries = 8;              // after the application closed (FIN-WAIT-1, CLOSING, LAST-ACK)
  uint32_t delack_ms = 40;                 // RFC 9293 3.8.6.3: less than 0.5 s
  uint32_t keepalive_idle_ms = 7200000;    // RFC 9293 3.8.4: no less than two hours
  uint32_t keepalive_intvl_ms = 75000;
  uint8_t keepalive_probes = 9;
  uint32_t challenge_ack_interval_ms = 500;  // RFC 5961 7: per flow, not host-global (CVE-2016-5696)
  uint16_t mss = 1460;                     // our MSS (Ethernet, IPv4, no options)
  uint32_t rcv_buf = 256 * 1024;           // receive buffer (window) per flow, bytes
  uint32_t snd_buf = 256 * 1024;           // send queue bound per flow, bytes
  bool timestamps = true;                  // offer/accept RFC 7323 timestamps
  bool window_scaling = true;              // offer/accept RFC 7323 window scale
  TwRstPolicy tw_rst = TwRstPolicy::Ignore;
  TwCapPolicy tw_cap_policy = TwCapPolicy::RecycleOldest;
  // The client role's "forgetful" peer (a generator as the fast DPDK
  // clients behave; never for a terminator): no TIME-WAIT, segments for
  // connections it does not know are dropped without an RST, and in
  // SYN-SENT an unacceptable ACK (a challenge ACK) is dropped too.
  bool forgetful = false;

  uint32_t two_msl_ms() const { return 2 * msl_ms; }
  // Smallest shift that fits rcv_buf in the 16-bit window field (RFC 7323 2.3, at most 14).
  uint8_t rcv_wscale() const {
    uint8_t s = 0;
    while (s < 14 && (rcv_buf >> s) > 65535) s++;
    return s;
  }
};

}  // namespace tcpterm::tcp
