// lib/stack + lib/apps: two stacks joined by an in-memory wire (with loss and
// reordering simulated here, as tc netem is not available), a client role on
// one side and echo / discard / http on the other.
#include <catch2/catch.hpp>

#include <deque>
#include <random>
#include <string>

#include "apps/apps.h"
#include "stack/stack.h"

using namespace tcpterm;
using stack::Stack;
using stack::StackConfig;
using tcp::TcpState;

namespace {

constexpr uint32_t kClientIp = 0xC6120001, kServerIp = 0xC6120002;

struct Pkt {
  wire::Ipv4Repr ip;
  wire::TcpRepr h;
  std::vector<uint8_t> data;
};

struct WireSink : stack::TxSink {
  std::deque<Pkt> q;
  void tcp_out(const flow::FlowKey4& key, const wire::TcpRepr& h, const stack::Payload& p) override {
    Pkt k;
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
  std::mt19937 rng{7};
  uint64_t dropped = 0;

  explicit Net(StackConfig c = small()) : cfg(c) {
    client = std::make_unique<Stack>(cfg, to_server, now);
    server = std::make_unique<Stack>(cfg, to_client, now);
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
    for (Pkt& p : batch) {
      if (loss > 0 && std::uniform_real_distribution<>(0, 1)(rng) < loss) {
        dropped++;
        continue;
      }
      p.h.payload = std::span<const uint8_t>(p.data);
      to.input(p.ip, p.h);
    }
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
  int64_t state(Stack& s, TcpState st) { return s.tcp_stats().states[size_t(st)]; }
};

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 r(seed);
  for (auto& c : s) c = char('a' + r() % 26);
  return s;
}

}  // namespace

TEST_CASE("stack: echo of 1 MiB is byte-exact; client closes first, server holds no TIME-WAIT",
          "[stack][echo]") {
  Net n;
  apps::Echo echo;
  REQUIRE(n.server->add_listener(kServerIp, 7, &echo));
  Client c;
  c.request = pattern(1 << 20, 1);
  c.close_after = c.request.size();
  REQUIRE(n.open(c, 40000, 7));
  n.run(n.now + 30000);
  CHECK(c.opened);
  CHECK(c.got == c.request);
  CHECK(n.server->tcp_stats().closed_passive == 1);  // CLOSE-WAIT -> LAST-ACK -> CLOSED
  CHECK(n.server->tcp_stats().entered[size_t(TcpState::LastAck)] == 1);
  CHECK(n.server->tcp_stats().tw_entered == 0);
  CHECK(n.client->tcp_stats().tw_expired == 1);  // the client's TIME-WAIT ran out
  CHECK(n.server->flows() == 0);
  CHECK(n.client->flows() == 0);
  CHECK(n.server->chunks().in_use() == 0);
  CHECK(n.client->chunks().in_use() == 0);
}

TEST_CASE("stack: echo survives 5% loss and reordering", "[stack][echo][loss]") {
  Net n;
  n.loss = 0.05;
  n.reorder = true;
  apps::Echo echo;
  n.server->add_listener(kServerIp, 7, &echo);
  Client c;
  c.request = pattern(200000, 2);
  c.close_after = c.request.size();
  REQUIRE(n.open(c, 40001, 7));
  n.run(n.now + 600000);
  CHECK(n.dropped > 0);
  CHECK(c.got == c.request);
  CHECK(n.client->tcp_stats().retransmits + n.server->tcp_stats().retransmits > 0);
  CHECK(n.server->flows() == 0);
  CHECK(n.client->flows() == 0);
  CHECK(n.server->chunks().in_use() == 0);
}

TEST_CASE("stack: discard takes an upload and closes when the peer does", "[stack][discard]") {
  Net n;
  apps::Discard discard;
  n.server->add_listener(0, 9, &discard);  // any owned address
  Client c;
  c.request = pattern(300000, 3);
  REQUIRE(n.open(c, 40002, 9));
  n.run(n.now + 5000);
  CHECK(n.server->tcp_stats().bytes_in == c.request.size());
  // The client closes; discard closes in turn.
  n.client->advance(n.now);
  auto flows = n.client->dump_flows(10);
  REQUIRE(flows.size() == 1);
  CHECK(flows[0].state == TcpState::Established);
}

TEST_CASE("stack: http keep-alive then Connection: close; the server holds TIME-WAIT for 2*MSL",
          "[stack][http][time-wait]") {
  Net n;
  apps::Http http(100);
  n.server->add_listener(kServerIp, 80, &http);
  Client c;
  c.request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
              "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
              "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  REQUIRE(n.open(c, 40003));
  n.run(n.now + 500);
  CHECK(http.requests() == 3);
  size_t first = c.got.find("HTTP/1.1 200 OK\r\n");
  CHECK(first == 0);
  CHECK(c.got.find("Content-Length: 100\r\n") != std::string::npos);
  CHECK(c.got.find("Connection: close\r\n") != std::string::npos);
  CHECK(c.peer_closed);
  // The server closed first: it sits in TIME-WAIT, the client does not.
  CHECK(n.state(*n.server, TcpState::TimeWait) == 1);
  CHECK(n.server->time_wait_records() == 1);
  CHECK(n.client->tcp_stats().tw_entered == 0);
  n.run(n.now + 2 * n.cfg.tcp.msl_ms + 10);
  CHECK(n.state(*n.server, TcpState::TimeWait) == 0);
  CHECK(n.server->tcp_stats().tw_expired == 1);
  CHECK(n.server->table().size() == 0);
}

TEST_CASE("stack: HTTP/1.0 and malformed requests", "[stack][http]") {
  Net n;
  apps::Http http(10);
  n.server->add_listener(kServerIp, 80, &http);
  Client c10;
  c10.request = "GET / HTTP/1.0\r\n\r\n";
  Client bad;
  bad.request = "NOT A REQUEST\r\n\r\n";
  REQUIRE(n.open(c10, 41000));
  REQUIRE(n.open(bad, 41001));
  n.run(n.now + 500);
  CHECK(c10.got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(c10.got.size() > 10);
  CHECK(c10.got.substr(c10.got.size() - 10) == "tcpterm sa");
  CHECK(c10.peer_closed);
  CHECK(bad.got.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  CHECK(bad.peer_closed);
  CHECK(http.bad_requests() == 1);
  CHECK(n.state(*n.server, TcpState::TimeWait) == 2);
}

TEST_CASE("http: request head parsing", "[http]") {
  apps::Http::Request r;
  CHECK(apps::Http::parse_head("GET / HTTP/1.1\r\nHost: a\r\n\r\n", r));
  CHECK(r.keep_alive);
  CHECK(apps::Http::parse_head("GET / HTTP/1.1\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", r));
  CHECK_FALSE(r.keep_alive);
  r = {};
  CHECK(apps::Http::parse_head("POST /x HTTP/1.1\r\nContent-Length: 12\r\n\r\n", r));
  CHECK(r.content_length == 12);
  r = {};
  CHECK(apps::Http::parse_head("HEAD / HTTP/1.0\r\n\r\n", r));
  CHECK(r.head_method);
  CHECK_FALSE(r.keep_alive);
  CHECK_FALSE(apps::Http::parse_head("GET / HTTP/2.0\r\n\r\n", r));
  CHECK_FALSE(apps::Http::parse_head("GET  HTTP/1.1\r\n\r\n", r));
  CHECK_FALSE(apps::Http::parse_head("G(T / HTTP/1.1\r\n\r\n", r));
  CHECK_FALSE(apps::Http::parse_head("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", r));
  CHECK_FALSE(apps::Http::parse_head("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", r));
  CHECK_FALSE(apps::Http::parse_head("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", r));
}

TEST_CASE("stack: a SYN to a port nobody listens on gets RST,ACK", "[stack][closed]") {
  Net n;
  Client c;
  REQUIRE(n.open(c, 42000, 81));
  n.run(n.now + 100);
  CHECK(c.reset);
  CHECK(n.server->stats().no_listener == 1);
  CHECK(n.client->flows() == 0);
}

TEST_CASE("stack: a new SYN in TIME-WAIT opens a new incarnation (RFC 6191)",
          "[stack][time-wait][rfc6191]") {
  StackConfig cfg = Net::small();
  cfg.tcp.msl_ms = 30000;
  Net n(cfg);
  apps::Http http(5);
  n.server->add_listener(kServerIp, 80, &http);
  Client a;
  a.request = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
  REQUIRE(n.open(a, 43000));
  n.run(n.now + 100);
  REQUIRE(n.server->time_wait_records() == 1);
  // Same 4-tuple again, with a fresh (random, here much higher) ISN.
  n.now += 5000;
  n.client->advance(n.now);
  n.server->advance(n.now);
  Client b;
  b.request = a.request;
  REQUIRE(n.open(b, 43000));
  n.run(n.now + 100);
  CHECK(b.got.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(n.server->tcp_stats().tw_syn_reopened + n.server->tcp_stats().tw_syn_rejected >= 1);
}

TEST_CASE("stack: the TIME-WAIT cap recycles the oldest, counted", "[stack][time-wait][cap]") {
  StackConfig cfg = Net::small();
  cfg.max_time_wait = 4;
  Net n(cfg);
  apps::Http http(5);
  n.server->add_listener(kServerIp, 80, &http);
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < 10; i++) {
    cs.push_back(std::make_unique<Client>());
    cs.back()->request = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    REQUIRE(n.open(*cs.back(), uint16_t(44000 + i)));
    n.run(n.now + 50);
  }
  CHECK(n.server->time_wait_records() == 4);
  CHECK(n.server->tcp_stats().tw_recycled == 6);
  CHECK(n.state(*n.server, TcpState::TimeWait) == 4);

  StackConfig skip = Net::small();
  skip.max_time_wait = 2;
  skip.tcp.tw_cap_policy = tcp::TwCapPolicy::Skip;
  Net m(skip);
  m.server->add_listener(kServerIp, 80, &http);
  for (int i = 0; i < 5; i++) {
    cs.push_back(std::make_unique<Client>());
    cs.back()->request = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    REQUIRE(m.open(*cs.back(), uint16_t(45000 + i)));
    m.run(m.now + 50);
  }
  CHECK(m.server->time_wait_records() == 2);
  CHECK(m.server->tcp_stats().tw_cap_skipped == 3);
  CHECK(m.state(*m.server, TcpState::TimeWait) == 2);
}

TEST_CASE("stack: a full flow table refuses SYNs and counts them", "[stack][exhaustion]") {
  Net n;
  StackConfig cfg = Net::small();
  cfg.max_flows = 2;
  cfg.syncookies = stack::SynCookieMode::Off;  // with cookies the handshake would complete statelessly
  n.server = std::make_unique<Stack>(cfg, n.to_client, n.now);  // only the server is small
  apps::Discard discard;
  n.server->add_listener(kServerIp, 9, &discard);
  Client a, b, c;
  n.open(a, 46000, 9);
  n.open(b, 46001, 9);
  n.open(c, 46002, 9);
  n.run(n.now + 100);
  CHECK(a.opened);
  CHECK(b.opened);
  CHECK_FALSE(c.opened);
  CHECK(n.server->stats().flow_table_full >= 1);
  CHECK(n.server->flows() == 2);
}

TEST_CASE("stack: a client that vanishes after our FIN is reclaimed", "[stack][fin-wait-2]") {
  StackConfig cfg = Net::small();
  cfg.tcp.fin_wait_2_timeout_ms = 2000;
  Net n(cfg);
  apps::Http http(5);
  n.server->add_listener(kServerIp, 80, &http);
  struct Silent : Client {
    void on_peer_close(stack::Stream&) override { peer_closed = true; }  // never closes
  } c;
  c.request = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
  n.open(c, 47000);
  // Deliver until the server's FIN has been ACKed, then cut the client off.
  for (int i = 0; i < 10; i++) {
    n.deliver(n.to_server, *n.server);
    n.deliver(n.to_client, *n.client);
    if (n.state(*n.server, TcpState::FinWait2) == 1) break;
  }
  REQUIRE(n.state(*n.server, TcpState::FinWait2) == 1);
  n.to_server.q.clear();
  n.to_client.q.clear();
  n.client = std::make_unique<Stack>(n.cfg, n.to_server, n.now);  // the client is gone
  n.now += 1999;
  n.server->advance(n.now);
  CHECK(n.state(*n.server, TcpState::FinWait2) == 1);
  n.now += 1;
  n.server->advance(n.now);
  CHECK(n.state(*n.server, TcpState::FinWait2) == 0);
  CHECK(n.server->tcp_stats().timeout_fin_wait_2 == 1);
  CHECK(n.server->flows() == 0);
  CHECK(n.server->chunks().in_use() == 0);
}

// (True simultaneous closes, through CLOSING on both sides, are in the
// "generator: simultaneous close" test below.)
TEST_CASE("stack: a client that closes in on_open: client TIME-WAIT, server LAST-ACK",
          "[stack][closing]") {
  Net n;
  apps::Discard discard;
  n.server->add_listener(kServerIp, 9, &discard);
  struct Closer : Client {
    void on_open(stack::Stream& s) override { opened = true; s.close(); }
  } c;
  REQUIRE(n.open(c, 48000, 9));
  n.run(n.now + 1000);
  CHECK(c.opened);
  CHECK(n.client->tcp_stats().tw_entered == 1);
  CHECK(n.server->tcp_stats().closed_passive == 1);
}

TEST_CASE("syncookie: round trip, wrong ISN, expiry, MSS and window scale encoded",
          "[syncookie]") {
  tcp::SynCookies c(1, 2);
  tcp::CookieData d{1460, 7}, out;
  uint64_t t = 10 * tcp::kCookiePeriodMs + 5;
  uint32_t k = c.make(kServerIp, 80, kClientIp, 40000, 12345, d, t);
  REQUIRE(c.check(kServerIp, 80, kClientIp, 40000, 12345, k, t, out));
  CHECK(out.mss == 1460);
  CHECK(out.wscale == 7);
  CHECK(c.check(kServerIp, 80, kClientIp, 40000, 12345, k, t + tcp::kCookiePeriodMs, out));
  CHECK_FALSE(c.check(kServerIp, 80, kClientIp, 40000, 12345, k, t + 2 * tcp::kCookiePeriodMs, out));
  CHECK_FALSE(c.check(kServerIp, 80, kClientIp, 40000, 12346, k, t, out));
  CHECK_FALSE(c.check(kServerIp, 80, kClientIp, 40001, 12345, k, t, out));
  CHECK_FALSE(c.check(kServerIp, 80, kClientIp, 40000, 12345, k ^ 0x20, t, out));  // MSS bits are MACed
  tcp::CookieData small{1000, 0xff};
  uint32_t k2 = c.make(kServerIp, 80, kClientIp, 40000, 1, small, t);
  REQUIRE(c.check(kServerIp, 80, kClientIp, 40000, 1, k2, t, out));
  CHECK(out.mss == 536);  // the largest table entry not above 1000
  CHECK(out.wscale == 0xff);
  // Random guesses almost never pass (24-bit MAC).
  int passed = 0;
  for (uint32_t g = 0; g < 100000; g++) passed += c.check(kServerIp, 80, kClientIp, 40000, 1, g * 2654435761u & ~1u, t, out);
  CHECK(passed <= 1);
}

TEST_CASE("stack: with SYN cookies on, no state is kept before the ACK and HTTP works",
          "[stack][syncookie]") {
  StackConfig cfg = Net::small();
  cfg.syncookies = stack::SynCookieMode::On;
  Net n(cfg);
  apps::Http http(20);
  n.server->add_listener(kServerIp, 80, &http);
  Client c;
  c.request = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
  REQUIRE(n.open(c, 49000));
  n.deliver(n.to_server, *n.server);  // the SYN
  CHECK(n.server->flows() == 0);
  CHECK(n.state(*n.server, TcpState::SynReceived) == 0);
  CHECK(n.server->stats().syncookies_sent == 1);
  n.run(n.now + 1000);
  CHECK(n.server->stats().syncookies_ok == 1);
  CHECK(c.got.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(c.peer_closed);
  CHECK(n.server->time_wait_records() == 1);
}

TEST_CASE("stack: an ACK with a forged cookie gets RST and is counted", "[stack][syncookie]") {
  StackConfig cfg = Net::small();
  cfg.syncookies = stack::SynCookieMode::On;
  Net n(cfg);
  apps::Http http(20);
  n.server->add_listener(kServerIp, 80, &http);
  Client c;
  REQUIRE(n.open(c, 49001));
  n.deliver(n.to_server, *n.server);  // a real cookie is outstanding now
  wire::Ipv4Repr ip;
  ip.src = kClientIp;
  ip.dst = kServerIp;
  wire::TcpRepr forged;
  forged.src_port = 50000;
  forged.dst_port = 80;
  forged.seq = 7;
  forged.ack = 0x12345678;
  forged.flags = wire::flag::ACK;
  forged.window = 1000;
  n.to_client.q.clear();
  n.server->input(ip, forged);
  CHECK(n.server->stats().syncookies_failed == 1);
  REQUIRE(n.to_client.q.size() == 1);
  CHECK(n.to_client.q.front().h.flags == wire::flag::RST);
  CHECK(n.to_client.q.front().h.seq == 0x12345678);
  CHECK(n.server->flows() == 0);
}

TEST_CASE("stack: auto mode engages when SYN-RECEIVED reaches the backlog", "[stack][syncookie]") {
  StackConfig cfg = Net::small();
  cfg.syn_backlog = 3;
  Net n(cfg);
  apps::Discard d;
  n.server->add_listener(kServerIp, 9, &d);
  wire::Ipv4Repr ip;
  ip.src = 0xC6120063;  // a spoofed source that never answers
  ip.dst = kServerIp;
  for (uint16_t i = 0; i < 10; i++) {
    wire::TcpRepr syn;
    syn.src_port = uint16_t(1000 + i);
    syn.dst_port = 9;
    syn.seq = 1000u * i;
    syn.flags = wire::flag::SYN;
    syn.window = 1000;
    n.server->input(ip, syn);
  }
  CHECK(n.state(*n.server, TcpState::SynReceived) == 3);
  CHECK(n.server->stats().syncookies_sent == 7);
  CHECK(n.server->syncookies_engaged());
  // The half-open flows time out after their SYN-ACK retries; then cookies disengage.
  n.run(n.now + 200000);
  CHECK(n.state(*n.server, TcpState::SynReceived) == 0);
  CHECK(n.server->flows() == 0);
  CHECK_FALSE(n.server->syncookies_engaged());
}

TEST_CASE("stack: under chunk exhaustion every request is still answered, no byte refused",
          "[stack][exhaustion]") {
  Net n;
  StackConfig cfg = Net::small();
  cfg.chunks = 8;  // 16 KiB for the whole server: far less than 20 responses need
  n.server = std::make_unique<Stack>(cfg, n.to_client, n.now);
  apps::Http http(5000);  // three chunks per response
  n.server->add_listener(kServerIp, 80, &http);
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < 20; i++) {
    cs.push_back(std::make_unique<Client>());
    cs.back()->request = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    REQUIRE(n.open(*cs.back(), uint16_t(50000 + i)));
  }
  // Requests that arrive while the pool is dry are not ACKed and come back
  // with RTO backoff: allow virtual minutes, still below the 300 s idle
  // timeout that would otherwise be the only way out for a starved flow.
  n.run(n.now + 240000);
  for (auto& c : cs) {
    CHECK(c->got.size() > 5000);
    CHECK(c->peer_closed);
  }
  CHECK(http.requests() == 20);
  CHECK(n.server->tcp_stats().snd_pool_exhausted == 0);  // never accepted bytes it could not hold
  CHECK(n.server->chunks().in_use() == 0);
}

namespace {
// Sends `n` bytes all or nothing as soon as the connection opens, then closes.
struct Writer : stack::App {
  size_t n;
  bool sent = false;
  explicit Writer(size_t bytes) : n(bytes) {}
  const char* name() const override { return "writer"; }
  void on_open(stack::Stream& s) override { try_send(s); }
  void on_writable(stack::Stream& s) override { try_send(s); }
  void on_data(stack::Stream& s) override { s.consume(s.readable()); }
  void try_send(stack::Stream& s) {
    if (s.app().flags || s.send_space() < n) return;
    std::string b(n, 'w');
    s.send(std::span(reinterpret_cast<const uint8_t*>(b.data()), n));
    s.app().flags = 1;
    s.close();
  }
};
}  // namespace

TEST_CASE("stack: a flow starved of buffer chunks is woken when chunks free up",
          "[stack][exhaustion]") {
  Net n;
  StackConfig cfg = Net::small();
  cfg.chunks = 4;  // 8 KiB: room for one 6000-byte message at a time
  n.server = std::make_unique<Stack>(cfg, n.to_client, n.now);
  Writer w(6000);
  n.server->add_listener(kServerIp, 80, &w);
  Client a, b;
  REQUIRE(n.open(a, 51000));
  REQUIRE(n.open(b, 51001));
  // b opens while a's 6000 bytes hold 3 of the 4 chunks: b has nothing in
  // flight, so only the wake-up can get it going again (well before the
  // 300 s idle timeout).
  n.run(n.now + 10000);
  CHECK(a.got.size() == 6000);
  CHECK(b.got.size() == 6000);
  CHECK(n.server->chunks().in_use() == 0);
}

// ====================================================== the client role ===
#include "apps/generator.h"

namespace {
// One millisecond per step: the generator opens, the wire drains, timers run.
void drive(Net& n, apps::Generator& gen, int max_steps, bool until_done) {
  for (int step = 0; step < max_steps && (!until_done || !gen.done() || gen.stats().active); step++) {
    gen.tick(*n.client, n.now, n.now * 1000, 1);
    while (!n.to_server.q.empty() || !n.to_client.q.empty()) {
      n.deliver(n.to_server, *n.server);
      n.deliver(n.to_client, *n.client);
    }
    n.now++;
    n.client->advance(n.now);
    n.server->advance(n.now);
  }
}

struct GenRun {
  uint64_t completed = 0, client_tw = 0, server_tw = 0, server_passive = 0, client_passive = 0,
           closing_client = 0, closing_server = 0, failed = 0, aborts = 0;
};
GenRun run_generator(apps::CloseMode mode, uint64_t count, bool close_on_open_server = false) {
  Net n;
  apps::Http http(300);
  apps::Discard closer(true);
  if (close_on_open_server) n.server->add_listener(kServerIp, 80, &closer);
  else n.server->add_listener(kServerIp, 80, &http);
  apps::GeneratorConfig gc;
  gc.dst = kServerIp;
  gc.src = {{kClientIp, kClientIp}};
  gc.port_lo = 20000;
  gc.port_hi = 20999;
  gc.count = count;
  gc.concurrency = 16;
  gc.mode = mode;
  apps::Generator gen(gc);
  drive(n, gen, 100000, true);
  GenRun r;
  r.completed = gen.stats().gen_completed;
  r.failed = gen.stats().gen_reset + gen.stats().gen_failed_connect + gen.stats().gen_timed_out;
  r.aborts = gen.stats().gen_aborts;
  r.client_tw = n.client->tcp_stats().tw_entered;
  r.server_tw = n.server->tcp_stats().tw_entered;
  r.server_passive = n.server->tcp_stats().closed_passive;
  r.client_passive = n.client->tcp_stats().closed_passive;
  r.closing_client = n.client->tcp_stats().entered[size_t(TcpState::Closing)];
  r.closing_server = n.server->tcp_stats().entered[size_t(TcpState::Closing)];
  REQUIRE(n.client->check_invariants());
  REQUIRE(n.server->check_invariants());
  return r;
}
}  // namespace

TEST_CASE("generator: server closes first -> TIME-WAIT on the terminator", "[generator]") {
  GenRun r = run_generator(apps::CloseMode::Server, 200);
  CHECK(r.completed == 200);
  CHECK(r.failed == 0);
  CHECK(r.server_tw == 200);
  CHECK(r.client_passive == 200);
  CHECK(r.client_tw == 0);
}

TEST_CASE("generator: client closes first -> TIME-WAIT on the generator", "[generator]") {
  GenRun r = run_generator(apps::CloseMode::Client, 200);
  CHECK(r.completed == 200);
  CHECK(r.client_tw == 200);
  CHECK(r.server_passive == 200);
  CHECK(r.server_tw == 0);
}

TEST_CASE("generator: rst aborts after the response", "[generator]") {
  GenRun r = run_generator(apps::CloseMode::Rst, 100);
  CHECK(r.completed == 100);
  CHECK(r.aborts == 100);
  CHECK(r.client_tw == 0);
  CHECK(r.server_tw == 0);
}

TEST_CASE("generator: simultaneous close goes through CLOSING on both sides", "[generator][closing]") {
  GenRun r = run_generator(apps::CloseMode::Simultaneous, 100, true);
  CHECK(r.completed == 100);
  CHECK(r.closing_client == 100);
  CHECK(r.closing_server == 100);
  CHECK(r.client_tw == 100);
  CHECK(r.server_tw == 100);
}

TEST_CASE("generator: the rate limit holds", "[generator]") {
  Net n;
  apps::Http http(10);
  n.server->add_listener(kServerIp, 80, &http);
  apps::GeneratorConfig gc;
  gc.dst = kServerIp;
  gc.src = {{kClientIp, kClientIp + 3}};
  gc.rate = 500;
  gc.concurrency = 1000;
  gc.duration_ms = 2000;
  apps::Generator gen(gc);
  drive(n, gen, 2500, false);
  CHECK(gen.stats().gen_opened >= 950);
  CHECK(gen.stats().gen_opened <= 1051);
}

TEST_CASE("generator: a tuple filter (RSS steering) picks only the ports it accepts", "[generator]") {
  Net n;
  apps::Http http(10);
  n.server->add_listener(kServerIp, 80, &http);
  apps::GeneratorConfig gc;
  gc.dst = kServerIp;
  gc.src = {{kClientIp, kClientIp}};
  gc.port_lo = 30000;
  gc.port_hi = 30999;
  gc.count = 100;
  gc.concurrency = 10;
  gc.accept = [](uint32_t, uint16_t port) { return port % 4 == 1; };  // "this lcore's queue"
  apps::Generator gen(gc);
  drive(n, gen, 100000, true);
  CHECK(gen.stats().gen_completed == 100);
  CHECK(gen.stats().gen_tuples_steered_away >= 290);
  // Every flow the server saw came from an accepted port.
  for (const auto& f : n.server->dump_flows(1000)) CHECK(f.key.rport % 4 == 1);
  CHECK(n.server->time_wait_records() == 100);
}
