// TCP event counters and per-state gauges, one instance per lcore, plain
// integers written only by their lcore (readers on other cores tolerate
// torn-free 64-bit loads, as DPDK's own stats do).
#pragma once
#include <array>
#include <cstdint>
#include <string_view>

#include "tcp/state.h"

namespace tcpterm::tcp {

// X(name): every counter, printed as `name: value` in this order.
#define TCPTERM_TCP_COUNTERS(X)                                                              \
  X(passive_opens) X(active_opens) X(syn_received_dropped) X(established)                    \
  X(segs_in) X(segs_out) X(bytes_in) X(bytes_out)                                             \
  X(resets_in) X(resets_out) X(resets_ignored) X(challenge_acks) X(challenge_acks_suppressed) X(oow_acks_suppressed) \
  X(unacceptable_segments) X(acks_future) X(acks_too_old) X(paws_rejected) X(dup_acks_in)     \
  X(syn_retransmits) X(synack_retransmits) X(retransmits) X(fast_retransmits)                 \
  X(rto_expired) X(persist_probes) X(delayed_acks) X(window_updates)                          \
  X(ooo_segments) X(ooo_dropped) X(ooo_pressure_dropped) X(ooo_pruned_ranges) X(ooo_pruned_bytes) X(rcv_buf_full) X(snd_pool_exhausted) X(snd_lent_bytes) X(spliced_bytes) X(splice_copied_bytes) X(syn_data_ignored)    \
  X(urg_ignored) X(orphans_reclaimed) X(keepalive_probes) X(zero_window_probes_in) X(ts_ecr_invalid)                                                          \
  X(timeout_syn_sent) X(timeout_syn_received) X(timeout_established) X(timeout_fin_wait_1)    \
  X(timeout_fin_wait_2) X(timeout_close_wait) X(timeout_closing) X(timeout_last_ack)          \
  X(timeout_idle) X(timeout_keepalive) X(timeout_persist)                                     \
  X(closed_active) X(closed_passive) X(closed_reset) X(closed_abort) X(closed_timeout)        \
  X(tw_entered) X(tw_expired) X(tw_fin_reacked) X(tw_acks_sent) X(tw_rst_ignored)             \
  X(tw_rst_closed) X(tw_rst_challenged) X(tw_syn_reopened) X(tw_syn_rejected) X(tw_recycled) X(tw_cap_skipped)

struct Stats {
#define X(n) uint64_t n = 0;
  TCPTERM_TCP_COUNTERS(X)
#undef X
  // Gauges: flows currently in each state (LISTEN counts listeners).
  std::array<int64_t, kStateCount> states{};
  // Entries into each state since start.
  std::array<uint64_t, kStateCount> entered{};

  template <class F>
  void for_each_counter(F&& f) const {
#define X(n) f(std::string_view(#n), n);
    TCPTERM_TCP_COUNTERS(X)
#undef X
  }
  void clear_counters() {
    auto st = states;
    *this = Stats{};
    states = st;
  }
  Stats& operator+=(const Stats& o) {
#define X(n) n += o.n;
    TCPTERM_TCP_COUNTERS(X)
#undef X
    for (size_t i = 0; i < kStateCount; i++) {
      states[i] += o.states[i];
      entered[i] += o.entered[i];
    }
    return *this;
  }
};

}  // namespace tcpterm::tcp
