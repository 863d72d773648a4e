// Admission control's trigger (pure, unit-tested without EAL).  A backlog
// on a worker's receive queue means more arrives than the lcore completes:
// kOverloadPolls full bursts in a row start it; a poll that comes back less
// than half full ends it.  While it lasts the client role opens nothing,
// and the worker drops new SYNs before any lookup (--syn-admission) past
// the first kAdmitPerBacklog of the episode: a queue that is full because
// one bulk transfer arrived during a stall does not cost the next client a
// SYN retransmission, while a SYN flood or an overload is refused early.
#pragma once
#include <cstdint>

namespace tcpterm::dp {

class Backlog {
 public:
  static constexpr unsigned kOverloadPolls = 8;
  explicit Backlog(unsigned burst) : burst_(burst) {}
  // One receive poll returned n frames; true when this poll starts a backlog.
  bool note_poll(unsigned n) {
    if (n == burst_) {
      if (++full_polls_ >= kOverloadPolls && !on_) {
        syns_ = 0;
        return on_ = true;
      }
    } else if (n < burst_ / 2) {
      full_polls_ = 0;
      on_ = false;
    }
    return false;
  }
  bool on() const { return on_; }
  static constexpr unsigned kAdmitPerBacklog = 32;
  // A new SYN arrived: whether it is refused.
  bool refuse_syn() { return on_ && ++syns_ > kAdmitPerBacklog; }

 private:
  unsigned burst_;
  unsigned full_polls_ = 0;
  bool on_ = false;
  unsigned syns_ = 0;  // SYNs seen in this backlog
};

}  // namespace tcpterm::dp
