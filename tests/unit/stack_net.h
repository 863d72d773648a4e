// Two stacks joined by an in-memory wire (loss and reordering simulated
// here, as tc netem is not available), and a scripted client application:
// shared by the stack and proxy unit tests.
#pragma once
#include <catch2/catch.hpp>

#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "stack/stack.h"

namespace tcpterm::testing {

using stack::Stack;
using stack::StackConfig;
using tcp::TcpState;

constexpr uint32_t kClientIp = 0xC6120001, kServerIp = 0xC6120002;
// 2001:2::1 and 2001:2::2 (RFC 5180's benchmarking range).
constexpr wire::Ip6 kClient6{0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
constexpr wire::Ip6 kServer6{0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

struct Pkt {
  bool v6 = false;
  wire::Ipv6Repr ip6;
  wire::Ipv4Repr ip;
  wire::TcpRepr h;
  std::vector<uint8_t> data;
};

struct WireSink : stack::TxSink {
  std::deque<Pkt> q;
  Stack* owner = nullptr;  // the sending stack (an IPv6 key's addresses are its ids)
  void tcp_out(const flow::FlowKey4& key, uint32_t, const wire::TcpRepr& h, const stack::Payload& p) override {
    Pkt k;
    if (flow::is_v6(key)) {
      k.v6 = true;
      k.ip6.src = owner->addr6(key.laddr);
      k.ip6.dst = owner->addr6(key.raddr);
      k.ip6.proto = wire::kProtoTcp;
    }
    k.ip.src = key.laddr;
    k.ip.dst = key.raddr;
    k.ip.proto = wire::kProtoTcp;
    k.h = h;
    k.data.resize(p.len);
    p.copy_to(k.data.data());
    q.push_back(std::move(k));
  }
};

// A scripted client: sends `request` on open, collects what comes back,
// closes after `close_after` bytes (0: never by itself), closes when the peer does.
struct Client : stack::App {
  std::string request, got;
  size_t close_after = 0;
  size_t sent = 0;
  bool opened = false, reset = false, peer_closed = false;
  const char* name() const override { return "client"; }
  void on_open(stack::Stream& s) override {
    opened = true;
    push(s);
  }
  void push(stack::Stream& s) {
    while (sent < request.size() && s.can_send()) {
      size_t n = s.send(std::span(reinterpret_cast<const uint8_t*>(request.data()) + sent,
                                  request.size() - sent));
      if (!n) break;
      sent += n;
    }
  }
  void on_writable(stack::Stream& s) override { push(s); }
  void on_data(stack::Stream& s) override {
    size_t n = s.readable();
    std::string b(n, '\0');
    s.peek(reinterpret_cast<uint8_t*>(b.data()), n);
    s.consume(n);
    got += b;
    if (close_after && got.size() >= close_after) s.close();
  }
  void on_peer_close(stack::Stream& s) override {
    peer_closed = true;
    s.close();
  }
  void on_reset(stack::Stream&) override { reset = true; }
};

struct Net {
  StackConfig cfg;
  WireSink to_server, to_client;  // what each side transmits
  std::unique_ptr<Stack> client, server;
  uint64_t now = 1000;
  double loss = 0;
  bool reorder = false;
  std::function<bool(const Pkt&)> drop_if;  // a black hole (e.g. a backend that never answers)
  std::mt19937 rng{7};
  uint64_t dropped = 0;

  explicit Net(StackConfig c = small()) : cfg(c) {
    client = std::make_unique<Stack>(cfg, to_server, now);
    server = std::make_unique<Stack>(cfg, to_client, now);
    to_server.owner = client.get();
    to_client.owner = server.get();
  }
  static StackConfig small() {
    StackConfig c;
    c.max_flows = 256;
    c.max_time_wait = 256;
    c.chunks = 2048;
    c.ooo_states = 64;
    c.tcp.msl_ms = 1000;
    return c;
  }
  void deliver(WireSink& from, Stack& to) {
    std::deque<Pkt> batch;
    batch.swap(from.q);
    if (reorder && batch.size() > 1)
      for (size_t i = 0; i + 1 < batch.size(); i += 3) std::swap(batch[i], batch[i + 1]);
    // IPv4 one by one; IPv6 as one burst after them (Stack::input6_burst:
    // ids found and buckets prefetched ahead, rechecked before use).
    std::vector<wire::Ipv6Repr> ip6;
    std::vector<wire::TcpRepr> seg6;
    for (Pkt& p : batch) {
      if ((loss > 0 && std::uniform_real_distribution<>(0, 1)(rng) < loss) || (drop_if && drop_if(p))) {
        dropped++;
        continue;
      }
      p.h.payload = std::span<const uint8_t>(p.data);
      if (p.v6) {
        ip6.push_back(p.ip6);
        seg6.push_back(p.h);
      } else {
        to.input(p.ip, p.h);
      }
    }
    if (!ip6.empty()) to.input6_burst(ip6.data(), seg6.data(), nullptr, unsigned(ip6.size()));
  }
  // Runs until both wires are quiet and no timer is due before `until`.
  void run(uint64_t until) {
    for (int guard = 0; guard < 2000000; guard++) {
      while (!to_server.q.empty() || !to_client.q.empty()) {
        deliver(to_server, *server);
        deliver(to_client, *client);
      }
      uint64_t next = std::min(client->next_event(), server->next_event());
      if (next > until) break;
      now = std::max(now + 1, next);
      client->advance(now);
      server->advance(now);
    }
    now = std::max(now, until);
    client->advance(now);
    server->advance(now);
    REQUIRE(client->check_invariants());
    REQUIRE(server->check_invariants());
  }
  bool open(Client& c, uint16_t lport, uint16_t rport = 80) {
    return client->connect(flow::FlowKey4{kClientIp, kServerIp, lport, rport}, &c);
  }
  // The same over IPv6, 2001:2::1 -> 2001:2::2.
  bool open6(Client& c, uint16_t lport, uint16_t rport = 80) {
    flow::FlowKey4 k;
    if (!client->key6(kClient6, lport, kServer6, rport, k)) return false;
    bool ok = client->connect(k, &c);
    client->release_key6(k);
    return ok;
  }
  int64_t state(Stack& s, TcpState st) { return s.tcp_stats().states[size_t(st)]; }
};

inline std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 r(seed);
  for (auto& c : s) c = char('a' + r() % 26);
  return s;
}


}  // namespace tcpterm::testing
