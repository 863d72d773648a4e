// Admission control's trigger (pure, unit-tested without EAL).  A backlog
// on a worker's receive queue means more arrives than the lcore completes:
// kOverloadPolls full bursts in a row start it (2 048 frames: more than a
// memif ring holds, so the catch-up after a stall, which drains the ring in
// fewer polls, does not), as many polls less than half full in a row end it
// (one dip inside an overload does not).  While it lasts the client role
// opens nothing, and with --syn-admission on (off by default) the worker
// admits new SYNs only as fast as its connections finish: each flow that
// leaves the table (closed, or into TIME-WAIT) earns one SYN, up to
// kMaxCredit saved.  The rest are dropped before any lookup.  So an overloaded worker keeps taking new connections
// at the rate it completes them (its capacity, not less), a queue that is
// full because one bulk transfer arrived during a stall does not cost the
// next client a SYN retransmission (the saved credit admits it), and a SYN
// flood, which completes nothing, is refused early.
#pragma once
#include <algorithm>
#include <cstdint>

namespace tcpterm::dp {

class Backlog {
 public:
  static constexpr unsigned kOverloadPolls = 64;
  explicit Backlog(unsigned burst) : burst_(burst) {}
  // One receive poll returned n frames; true when this poll starts a backlog.
  bool note_poll(unsigned n) {
    if (n == burst_) {
      light_polls_ = 0;
      if (++full_polls_ >= kOverloadPolls && !on_) return on_ = true;
    } else if (n < burst_ / 2) {
      full_polls_ = 0;
      if (++light_polls_ >= kOverloadPolls) on_ = false;
    }
    return false;
  }
  bool on() const { return on_; }
  // Flows that finished since the last call (each earns one SYN).
  static constexpr uint32_t kMaxCredit = 64;
  void completed(uint64_t flows) {
    credit_ = flows >= kMaxCredit ? kMaxCredit : std::min<uint32_t>(kMaxCredit, credit_ + uint32_t(flows));
  }
  // A new SYN arrived: whether it is refused.
  bool refuse_syn() {
    if (!on_) return false;
    if (credit_ == 0) return true;
    credit_--;
    return false;
  }
  uint32_t credit() const { return credit_; }

 private:
  unsigned burst_;
  unsigned full_polls_ = 0, light_polls_ = 0;
  bool on_ = false;
  uint32_t credit_ = kMaxCredit;
};

}  // namespace tcpterm::dp
