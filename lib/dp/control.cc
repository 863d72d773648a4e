// The control channel: the CLI and the telemetry thread (taking turns under
// query_mu_) send requests to the workers over one Boost.Lockfree spsc_queue
// per worker and read the replies from another.
//
// Every request carries a sequence number and stays owned here (pending_)
// until its reply comes back.  A query that times out marks its requests
// abandoned: their late replies are recognised by sequence and freed, never
// taken as the answer to a later query, and a request is never freed while
// a worker may still run it.  stop() takes the same lock, so it never races
// a query, and after the workers have returned it drains both queues.
#include <chrono>
#include <thread>

#include "dp/dataplane.h"

namespace tcpterm::dp {

std::vector<std::unique_ptr<Request>> Dataplane::query(std::vector<std::unique_ptr<Request>> rs,
                                                       unsigned timeout_ms) {
  std::lock_guard<std::mutex> lock(query_mu_);
  const size_t n = workers_.size();
  if (rs.size() != n) return {};
  if (!running_.load()) {
    for (size_t i = 0; i < n; i++) workers_[i]->execute(*rs[i]);
    return rs;
  }
  pending_.resize(n);
  std::vector<uint64_t> want(n);
  for (size_t i = 0; i < n; i++) {
    rs[i]->seq = next_seq_++;
    want[i] = rs[i]->seq;
    Request* raw = rs[i].get();
    pending_[i].push_back(Pending{std::move(rs[i]), false});
    // The queue holds at most 64: only abandoned requests of a stalled
    // worker can fill it; give up on this query then.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!workers_[i]->requests.push(raw)) {
      if (std::chrono::steady_clock::now() > deadline) {
        pending_[i].pop_back();
        want[i] = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  std::vector<std::unique_ptr<Request>> got(n);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t answered = 0;
  for (size_t i = 0; i < n; i++)
    if (want[i] == 0) answered = n + 1;  // could not even send: fail below
  while (answered < n) {
    for (size_t i = 0; i < n; i++) {
      Request* r;
      while (workers_[i]->replies.pop(r)) {
        auto& pend = pending_[i];
        for (auto it = pend.begin(); it != pend.end(); ++it) {
          if (it->req.get() != r) continue;
          if (!it->abandoned && r->seq == want[i]) {
            got[i] = std::move(it->req);
            answered++;
          } else {
            abandoned_total_++;  // a late reply to a query that gave up: freed here
          }
          pend.erase(it);
          break;
        }
      }
    }
    if (answered >= n) break;
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  if (answered == n) return got;
  // Timed out: what is still pending for this query is abandoned.
  for (size_t i = 0; i < n; i++)
    for (auto& p : pending_[i])
      if (p.req && p.req->seq == want[i]) p.abandoned = true;
  return {};
}

void Dataplane::drain_requests() {
  // Workers are stopped: nothing runs a request any more.  Requests still
  // queued were abandoned (their query gave up); replies likewise.
  for (size_t i = 0; i < workers_.size(); i++) {
    Request* r;
    while (workers_[i]->requests.pop(r)) {}
    while (workers_[i]->replies.pop(r)) {}
    if (i < pending_.size()) {
      abandoned_total_ += pending_[i].size();
      pending_[i].clear();
    }
  }
}

}  // namespace tcpterm::dp
