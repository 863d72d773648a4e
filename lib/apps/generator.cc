#include "apps/generator.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace tcpterm::apps {

bool parse_close_mode(std::string_view s, CloseMode& out) {
  if (s == "client") out = CloseMode::Client;
  else if (s == "server") out = CloseMode::Server;
  else if (s == "simultaneous") out = CloseMode::Simultaneous;
  else if (s == "rst") out = CloseMode::Rst;
  else if (s == "none") out = CloseMode::None;
  else if (s == "forgetful") out = CloseMode::Forgetful;
  else return false;
  return true;
}

const char* to_string(CloseMode m) {
  switch (m) {
    case CloseMode::Client: return "client";
    case CloseMode::Server: return "server";
    case CloseMode::Simultaneous: return "simultaneous";
    case CloseMode::Rst: return "rst";
    case CloseMode::None: return "none";
    case CloseMode::Forgetful: return "forgetful";
  }
  return "?";
}

double GeneratorStats::percentile(double p) const {
  uint64_t total = 0;
  for (uint32_t v : latency_us) total += v;
  if (!total) return 0;
  uint64_t want = uint64_t(p / 100.0 * double(total - 1)) + 1, seen = 0;
  for (size_t i = 0; i < latency_us.size(); i++) {
    seen += latency_us[i];
    if (seen >= want) return double(i);
  }
  return double(kBuckets);
}

Generator::Generator(GeneratorConfig c) : cfg_(std::move(c)) {
  request_ = "GET / HTTP/1.1\r\nHost: tcpterm\r\n";
  if (cfg_.mode == CloseMode::Server || cfg_.mode == CloseMode::Simultaneous)
    request_ += "Connection: close\r\n";
  if (cfg_.request_bytes) request_ += "X-Pad: " + std::string(cfg_.request_bytes, 'p') + "\r\n";
  request_ += "\r\n";
  if (!cfg_.src.empty()) addr_ = cfg_.src[0].first;
  port_ = cfg_.port_lo;
}

bool Generator::done() const {
  if (cfg_.count && st_.gen_opened >= cfg_.count) return true;
  return cfg_.duration_ms && last_ms_ >= start_ms_ + cfg_.duration_ms;
}

bool Generator::next_tuple(uint32_t& addr, uint16_t& port) {
  if (cfg_.src.empty()) return false;
  addr = addr_;
  port = uint16_t(port_);
  // Ports first, then the next address, then the next range.
  if (++port_ > cfg_.port_hi) {
    port_ = cfg_.port_lo;
    if (addr_++ == cfg_.src[range_].second) {
      range_ = (range_ + 1) % cfg_.src.size();
      addr_ = cfg_.src[range_].first;
    }
  }
  return true;
}

bool Generator::next_accepted(uint32_t& addr, uint16_t& port) {
  if (!next_tuple(addr, port)) return false;
  if (!(cfg_.v6 ? bool(cfg_.accept6) : bool(cfg_.accept))) return true;
  // Skip tuples whose replies the NIC would steer to another lcore.
  int tries = 0;
  while (!(cfg_.v6 ? cfg_.accept6(src6(addr), port) : cfg_.accept(addr, port)) && ++tries < 1024) {
    st_.gen_tuples_steered_away++;
    next_tuple(addr, port);
  }
  return tries < 1024;
}

bool Generator::take_tuple(stack::Stack& s, uint32_t& addr, uint16_t& port) {
  while (ahead_n_ < kAhead) {
    uint32_t a;
    uint16_t p;
    if (!next_accepted(a, p)) break;
    ahead_[(ahead_i_ + ahead_n_) % kAhead] = {a, p};
    ahead_n_++;
    if (!cfg_.v6) s.prefetch_key(flow::FlowKey4{a, cfg_.dst, p, cfg_.dport});
  }
  if (ahead_n_ == 0) return false;
  addr = ahead_[ahead_i_].first;
  port = ahead_[ahead_i_].second;
  ahead_i_ = (ahead_i_ + 1) % kAhead;
  ahead_n_--;
  return true;
}

void Generator::tick(stack::Stack& s, uint64_t now_ms, uint64_t now_cycles, uint64_t cycles_per_us, bool hold) {
  now_cycles_ = now_cycles;
  cycles_per_us_ = cycles_per_us ? cycles_per_us : 1;
  if (start_ms_ == 0) start_ms_ = last_ms_ = now_ms ? now_ms : 1;
  // Token bucket at `rate` per second, at most 1/10 s of burst.
  if (cfg_.rate) {
    tokens_ += double(now_ms - last_ms_) * double(cfg_.rate) / 1000.0;
    tokens_ = std::min(tokens_, std::max(1.0, double(cfg_.rate) / 10.0));
  }
  last_ms_ = now_ms;
  if (done()) return;
  if (hold) {
    st_.gen_backoffs++;
    return;
  }
  // At most a burst's worth per loop iteration keeps the loop responsive.
  for (int burst = 0; burst < 64; burst++) {
    if (st_.active >= cfg_.concurrency || done()) break;
    if (cfg_.rate && tokens_ < 1.0) break;
    uint32_t addr;
    uint16_t port;
    if (!take_tuple(s, addr, port)) break;
    bool ok;
    if (cfg_.v6) {
      // The key holds address ids while it is used here; the flow holds its own.
      flow::FlowKey4 k;
      ok = s.key6(src6(addr), port, cfg_.dst6, cfg_.dport, k);
      if (ok) {
        ok = s.connect(k, this);
        s.release_key6(k);
      }
    } else {
      ok = s.connect(flow::FlowKey4{addr, cfg_.dst, port, cfg_.dport}, this);
    }
    if (!ok) {
      st_.gen_tuple_busy++;  // still in use (e.g. our own TIME-WAIT), or the table is full
      if (cfg_.rate) tokens_ -= 1.0;
      continue;
    }
    if (cfg_.rate) tokens_ -= 1.0;
    st_.gen_opened++;
    st_.active++;
  }
}

void Generator::on_open(stack::Stream& s) {
  auto& a = s.app();
  a.flags |= kEstablished;
  a.b = 0xffffffffu;
  st_.gen_established++;
  if (cfg_.mode == CloseMode::Simultaneous) {
    // Close at once; a server that also closes on open makes the FINs cross.
    mark_fin(s);
    a.flags |= kWeClosed;
    s.close();
    return;
  }
  a.flags |= kRequestPending;
  send_request(s);
}

// All or nothing: a request that does not fit waits for on_writable (the
// stack wakes flows starved of buffer chunks once chunks are free).
void Generator::send_request(stack::Stream& s) {
  auto& a = s.app();
  if (!(a.flags & kRequestPending) || s.send_space() < request_.size()) return;
  s.send_lent(std::span(reinterpret_cast<const uint8_t*>(request_.data()), request_.size()));  // built once
  a.flags &= uint8_t(~kRequestPending);
}

void Generator::on_writable(stack::Stream& s) { send_request(s); }

void Generator::mark_fin(stack::Stream& s) {
  if (s.app().a == 0) s.app().a = now_cycles_ ? now_cycles_ : 1;
}

void Generator::on_data(stack::Stream& s) {
  auto& a = s.app();
  size_t n = s.readable();
  if (a.b == 0xffffffffu) {
    // Parse the head: Content-Length tells how much body follows.
    // In place when the bytes lie in one chunk, else copied out.
    uint8_t buf[1024];
    std::span<const uint8_t> in = s.peek_view(buf, std::min(n, sizeof buf));
    const char* head = reinterpret_cast<const char*>(in.data());
    const size_t k = in.size();
    std::string_view v(head, k);
    size_t end = v.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (k == sizeof buf) {
        st_.gen_bad_response++;
        a.flags |= kFailed;
        s.abort();
      }
      return;
    }
    if (v.rfind("HTTP/1.1 200", 0) != 0) st_.gen_bad_response++;
    uint64_t len = 0;
    size_t cl = v.find("Content-Length: ");
    if (cl != std::string_view::npos && cl < end) {
      const char* p = head + cl + 16;
      std::from_chars(p, head + end, len);
    }
    s.consume(end + 4);
    n -= end + 4;
    a.b = uint32_t(len);
  }
  size_t take = std::min<size_t>(n, a.b);
  s.consume(n);  // anything beyond the body is dropped too
  a.b -= uint32_t(take);
  if (a.b == 0 && !(a.flags & kResponded)) {
    a.flags |= kResponded;
    finish_response(s);
  }
}

void Generator::finish_response(stack::Stream& s) {
  auto& a = s.app();
  switch (cfg_.mode) {
    case CloseMode::Client:
    case CloseMode::Forgetful:
      if (!(a.flags & kPeerClosed)) {
        mark_fin(s);
        a.flags |= kWeClosed;
        s.close();
      }
      break;
    case CloseMode::Rst:
      mark_fin(s);
      st_.gen_aborts++;
      a.flags |= kWeClosed;
      s.abort();
      break;
    case CloseMode::Server:
    case CloseMode::Simultaneous:
      break;  // the server's FIN comes (or came with the data)
    case CloseMode::None:
      st_.gen_completed++;  // a held connection counts once it has its response
      break;
  }
}

void Generator::on_peer_close(stack::Stream& s) {
  auto& a = s.app();
  a.flags |= kPeerClosed;
  mark_fin(s);
  if (!(a.flags & kWeClosed)) {
    a.flags |= kWeClosed;
    s.close();
  }
}

void Generator::on_reset(stack::Stream& s) {
  auto& a = s.app();
  a.flags |= kFailed;
  if (!(a.flags & kEstablished)) st_.gen_failed_connect++;
  else st_.gen_reset++;
}

void Generator::on_closed(stack::Stream& s) {
  auto& a = s.app();
  st_.active--;
  if (a.flags & kFailed) return;  // counted in on_reset (reset or timed out)
  // Ended by the FIN exchange (or our own RST in rst mode): a completed
  // connection.  (A flow that reaches TIME-WAIT gets no on_peer_close.)
  if (cfg_.mode == CloseMode::None) return;  // counted when its response came
  st_.gen_completed++;
  if (cfg_.mode == CloseMode::Client || cfg_.mode == CloseMode::Forgetful) st_.gen_client_closes++;
  else if (cfg_.mode == CloseMode::Server) st_.gen_server_closes++;
  else if (cfg_.mode == CloseMode::Simultaneous) st_.gen_simultaneous_closes++;
  if (a.a) {
    uint64_t us = (now_cycles_ - a.a) / cycles_per_us_;
    st_.latency_us[std::min<uint64_t>(us, GeneratorStats::kBuckets)]++;
  }
}

}  // namespace tcpterm::apps
