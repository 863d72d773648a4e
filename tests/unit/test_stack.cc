// lib/stack + lib/apps: two stacks joined by an in-memory wire (with loss and
// reordering simulated here, as tc netem is not available), a client role on
// one side and echo / discard / http on the other.
#include <catch2/catch.hpp>

#include <charconv>

#include <deque>
#include <map>
#include <set>
#include <random>
#include <string>

#include "apps/apps.h"
#include "stack/stack.h"
#include "stack_net.h"

using namespace tcpterm;
using stack::Stack;
using stack::StackConfig;
using tcp::TcpState;

using namespace tcpterm::testing;

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
  CHECK(n.server->chunks().queues_in_use() == 0);
  CHECK(n.client->chunks().queues_in_use() == 0);
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

TEST_CASE("stack: http answers with the same bytes whether a response goes in one send or in pieces",
          "[stack][http]") {
  // A small body's response is formatted whole once and sent with one
  // send(); a large one (or a send buffer too small for the whole) goes
  // head first, then the body in pieces.  Either way the client gets
  // exactly the head and the pattern.
  auto fetch = [](uint64_t body, uint32_t snd_buf) {
    StackConfig cfg = Net::small();
    if (snd_buf) cfg.tcp.snd_buf = snd_buf;
    Net n(cfg);
    apps::Http http(body);
    n.server->add_listener(kServerIp, 80, &http);
    Client c;
    c.request = "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    REQUIRE(n.open(c, 40020));
    n.run(n.now + 5000);
    CHECK(http.requests() == 2);
    CHECK(c.peer_closed);
    return c.got;
  };
  const std::string pattern = "tcpterm says hello\n";
  for (uint64_t body : {0ull, 1ull, 14ull, 100ull, 4096ull, 4097ull, 10000ull}) {
    std::string b;
    for (uint64_t i = 0; i < body; i++) b += pattern[i % pattern.size()];
    std::string head = "HTTP/1.1 200 OK\r\nServer: tcpterm\r\nContent-Type: text/plain\r\nContent-Length: " +
                       std::to_string(body) + "\r\n";
    std::string expect = head + "\r\n" + b + head + "Connection: close\r\n\r\n" + b;
    for (uint32_t snd_buf : {0u, 256u}) {  // 256: room for a head, not for a head and 4 KiB
      INFO("body " << body << " snd_buf " << snd_buf);
      CHECK(fetch(body, snd_buf) == expect);
    }
  }
}

TEST_CASE("stack: http's lent responses arrive intact over a lossy, reordering wire, in several segments each",
          "[stack][http][lent]") {
  // The whole response is lent to the send queue (tcp::send_lent): its
  // segments and every retransmission read it in place, at their offsets.
  // Half the clients pipeline two requests: the second response finds the
  // first still queued, which is then copied into chunks with it behind.
  // Each client must get exactly its responses' bytes.
  StackConfig cfg = Net::small();
  cfg.tcp.mss = 300;  // a 1 000-byte body's response takes four segments
  Net n(cfg);
  n.loss = 0.2;
  n.reorder = true;
  apps::Http http(1000);
  n.server->add_listener(kServerIp, 80, &http);
  const std::string pattern = "tcpterm says hello\n";
  std::string body;
  for (size_t i = 0; i < 1000; i++) body += pattern[i % pattern.size()];
  const std::string head = "HTTP/1.1 200 OK\r\nServer: tcpterm\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n";
  const std::string close_only = head + "Connection: close\r\n\r\n" + body;
  const std::string both = head + "\r\n" + body + close_only;
  std::vector<std::unique_ptr<Client>> cs;
  for (uint16_t i = 0; i < 40; i++) {
    cs.push_back(std::make_unique<Client>());
    cs.back()->request = i % 2 ? "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                               : "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    REQUIRE(n.open(*cs.back(), uint16_t(41000 + i)));
  }
  n.run(n.now + 120000);
  CHECK(n.dropped > 50);
  CHECK(n.server->tcp_stats().retransmits > 0);
  // Each client's first response was lent (a pipelined second is copied).
  CHECK(n.server->tcp_stats().snd_lent_bytes == 20 * close_only.size() + 20 * (both.size() - close_only.size()));
  for (size_t i = 0; i < cs.size(); i++) {
    INFO("client " << i);
    CHECK(cs[i]->got == (i % 2 ? both : close_only));
    CHECK(cs[i]->peer_closed);
  }
  n.run(n.now + 2 * n.cfg.tcp.msl_ms + 10);
  CHECK(n.server->chunks().queues_in_use() == 0);
  CHECK(n.server->chunks().in_use() == 0);
}

TEST_CASE("stack: an idle established flow holds no queue headers; a busy one holds one until drained",
          "[stack][http][memory]") {
  Net n;
  apps::Http http(100);
  n.server->add_listener(kServerIp, 80, &http);
  Client c;
  c.request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";  // keep-alive: the flow stays open
  REQUIRE(n.open(c, 40010));
  n.run(n.now + 500);
  CHECK(http.requests() == 1);
  CHECK(c.got.find("Content-Length: 100\r\n") != std::string::npos);
  // Request read, response acknowledged: both ends ESTABLISHED, nothing held.
  CHECK(n.state(*n.server, TcpState::Established) == 1);
  CHECK(n.state(*n.client, TcpState::Established) == 1);
  CHECK(n.server->chunks().queues_in_use() == 0);
  CHECK(n.client->chunks().queues_in_use() == 0);
  CHECK(n.server->chunks().queues_high_water() == 1);  // it held one while busy
  CHECK(n.server->check_invariants());
  static_assert(sizeof(Stack::Flow) == 160);
}

TEST_CASE("stack: http close=always closes first after a keep-alive request; close=never never does",
          "[stack][http]") {
  for (auto mode : {apps::Http::Close::Always, apps::Http::Close::Never}) {
    Net n;
    apps::Http http(10, mode);
    n.server->add_listener(kServerIp, 80, &http);
    Client c;
    c.request = mode == apps::Http::Close::Always ? "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                                                   : "GET / HTTP/1.0\r\nConnection: close\r\n\r\n";
    if (mode == apps::Http::Close::Never) c.close_after = 1;  // the client ends it once answered
    REQUIRE(n.open(c, 40050));
    n.run(n.now + 500);
    CHECK(http.requests() == 1);
    bool says_close = c.got.find("Connection: close\r\n") != std::string::npos;
    if (mode == apps::Http::Close::Always) {
      CHECK(says_close);
      CHECK(c.peer_closed);
      CHECK(n.server->time_wait_records() == 1);  // the appliance closed first
    } else {
      CHECK_FALSE(says_close);
      CHECK(n.server->time_wait_records() == 0);
      CHECK(n.server->tcp_stats().closed_passive == 1);  // the client closed first
    }
  }
  std::string err;
  CHECK(apps::make_app("http", {{"close", "sometimes"}}, err) == nullptr);
  CHECK(err.find("close must be auto, always or never") != std::string::npos);
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

namespace {
// The request-head parser as it was before the single pass (find the empty
// line, then split lines with find), kept as the reference the new one is
// checked against.
namespace ref {
constexpr char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c + ('a' - 'A')) : c; }
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}
std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
  return v;
}
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t c = value.find(',');
    if (iequals(trim(value.substr(0, c)), token)) return true;
    if (c == std::string_view::npos) break;
    value.remove_prefix(c + 1);
  }
  return false;
}
bool tchar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool parse_head(std::string_view head, apps::Http::Request& r) {
  size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) return false;
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  if (sp1 == 0 || sp1 == std::string_view::npos) return false;
  std::string_view method = line.substr(0, sp1);
  for (char c : method)
    if (!tchar(c)) return false;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return false;
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  for (char c : target)
    if (c <= ' ' || c == 127) return false;
  std::string_view version = line.substr(sp2 + 1);
  bool v11;
  if (version == "HTTP/1.1") v11 = true;
  else if (version == "HTTP/1.0") v11 = false;
  else return false;
  r.head_method = method == "HEAD";
  bool conn_close = false, chunked = false, have_len = false;
  std::string_view rest = head.substr(eol + 2);
  while (!rest.empty()) {
    size_t e = rest.find("\r\n");
    std::string_view h = rest.substr(0, e);
    rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e + 2);
    if (h.empty()) break;
    size_t colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view name = h.substr(0, colon);
    for (char c : name)
      if (!tchar(c)) return false;
    std::string_view value = trim(h.substr(colon + 1));
    if (iequals(name, "connection")) {
      conn_close |= has_token(value, "close");
    } else if (iequals(name, "content-length")) {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size() || n > apps::Http::kMaxBody) return false;
      if (have_len && n != r.content_length) return false;
      have_len = true;
      r.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      chunked = true;
    }
  }
  if (chunked) return false;
  r.keep_alive = v11 && !conn_close;
  return true;
}
// What pump() did with a buffer: 0 wait, -1 bad, else the head's length.
long parse(std::string_view buf, apps::Http::Request& r) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) return 0;
  return parse_head(buf.substr(0, end + 4), r) ? long(end + 4) : -1;
}
}  // namespace ref
}  // namespace

TEST_CASE("http: the single-pass request parser decides as the find-based one did, on mutated requests",
          "[http]") {
  const std::vector<std::string> seeds = {
      "GET / HTTP/1.1\r\nHost: tcpterm\r\nConnection: close\r\n\r\n",
      "GET /index.html HTTP/1.0\r\n\r\n",
      "HEAD / HTTP/1.1\r\nconnection: Keep-Alive, CLOSE\r\nX: y\r\n\r\nGET / HTTP/1.1\r\n\r\n",
      "POST /x HTTP/1.1\r\nContent-Length: 12\r\ncontent-length:12\r\n\r\nhello world!",
      "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length:  7 \t\r\nHost:\r\n\r\n",
      // Values of every length around a word (the CR LF search takes eight
      // bytes at a time), a CR alone inside one, whitespace at both ends.
      "GET / HTTP/1.1\r\nHost: a.example.com.internal\r\nConnection:close\r\nX-A: 1234567\r\n"
      "X-B: 12345678\r\nX-C: 123456789\r\nX-D: 12\r3456\r7\r\n\r\n",
      "GET / HTTP/1.1\r\nConnection: \t close\t \r\r\nHost:       x\r\n\r\n",
  };
  const std::string alphabet = " \r\n:,\t/.GETHPOST1.0cClosek-AaZz\x7f\x80\xff^~_`@[{\x0d\x2d\x4d\x6d";
  std::mt19937 rng(21);
  long ok = 0, bad = 0, wait = 0;
  for (int i = 0; i < 200000; i++) {
    std::string s = seeds[size_t(rng()) % seeds.size()];
    int edits = int(rng() % 4);
    for (int k = 0; k < edits && !s.empty(); k++) {
      size_t at = rng() % s.size();
      char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 4) {
        case 0: s[at] = c; break;
        case 1: s.insert(s.begin() + long(at), c); break;
        case 2: s.erase(at, 1); break;
        case 3: s.resize(at); break;  // a request cut short
      }
    }
    apps::Http::Request a, b;
    long got = apps::Http::parse_request(s, a), want = ref::parse(s, b);
    INFO("input: " << s);
    REQUIRE(got == want);
    if (got > 0) {
      REQUIRE(a.keep_alive == b.keep_alive);
      REQUIRE(a.head_method == b.head_method);
      REQUIRE(a.content_length == b.content_length);
    }
    (got > 0 ? ok : got < 0 ? bad : wait)++;
  }
  CHECK(ok > 1000);  // every outcome was exercised
  CHECK(bad > 1000);
  CHECK(wait > 1000);
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
  tcp::SynCookies c;
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
  for (uint32_t g = 0; g < 100000; g++) passed += c.check(kServerIp, 80, kClientIp, 40000, 1, g * 2654435761u, t, out);
  CHECK(passed <= 1);
}

// ---- secrets nobody can compute (RFC 6528, RFC 4987, RFC 7323 7.1) ----
namespace {
uint64_t g_draws = 0;
void counting_rng(void* p, size_t n) {
  g_draws++;
  tcp::random_bytes(p, n);
}
}  // namespace

TEST_CASE("secrets: two stacks built alike choose different ISNs for the same 4-tuple at the same time",
          "[security][iss]") {
  // On the old code the keys were compile-time constants: same config, same ISN.
  StackConfig cfg = Net::small();
  WireSink a, b;
  Stack s1(cfg, a, 5000), s2(cfg, b, 5000);
  flow::FlowKey4 k{kServerIp, kClientIp, 80, 40000};
  CHECK(s1.iss_for(k) != s2.iss_for(k));
  CHECK(s1.hash(k) != s2.hash(k));  // and a different flow-table seed
}

TEST_CASE("secrets: the SYN-ACK's TSval is not the appliance clock, and differs per connection",
          "[security][timestamps]") {
  StackConfig cfg = Net::small();
  WireSink out;
  Stack s(cfg, out, 777000);
  REQUIRE(s.add_listener(kServerIp, 80, nullptr) == true);
  for (uint16_t port : {40000, 40001}) {
    wire::Ipv4Repr ip;
    ip.src = kClientIp;
    ip.dst = kServerIp;
    wire::TcpRepr syn;
    syn.src_port = port;
    syn.dst_port = 80;
    syn.seq = 1000;
    syn.flags = wire::flag::SYN;
    syn.window = 65535;
    syn.opt.mss = 1460;
    syn.opt.has_ts = true;
    syn.opt.ts_val = 5;
    s.input(ip, syn);
  }
  REQUIRE(out.q.size() == 2);
  REQUIRE(out.q[0].h.opt.has_ts);
  CHECK(out.q[0].h.opt.ts_val != 777000u);             // old code: the raw millisecond clock
  CHECK(out.q[0].h.opt.ts_val != out.q[1].h.opt.ts_val);  // per-connection offset
  CHECK(out.q[0].h.opt.ts_ecr == 5u);
}

TEST_CASE("secrets: the SYN-cookie secret is drawn anew every period; two generations live",
          "[security][syncookie]") {
  g_draws = 0;
  tcp::SynCookies c(counting_rng);
  tcp::CookieData d{1460, 7}, out;
  uint64_t t = 100 * tcp::kCookiePeriodMs;
  uint32_t k0 = c.make(kServerIp, 80, kClientIp, 40000, 1, d, t);
  CHECK(g_draws == 1);
  c.make(kServerIp, 80, kClientIp, 40000, 1, d, t + 10);  // same period: same secret
  CHECK(g_draws == 1);
  uint32_t k1 = c.make(kServerIp, 80, kClientIp, 40000, 1, d, t + tcp::kCookiePeriodMs);
  CHECK(g_draws == 2);
  CHECK((k0 & 1) != (k1 & 1));  // the generation bit
  // Both generations are valid during the second period...
  CHECK(c.check(kServerIp, 80, kClientIp, 40000, 1, k0, t + tcp::kCookiePeriodMs + 5, out));
  CHECK(c.check(kServerIp, 80, kClientIp, 40000, 1, k1, t + tcp::kCookiePeriodMs + 5, out));
  // ...and once the third period's secret replaces the first, k0 is dead for good.
  c.make(kServerIp, 80, kClientIp, 40000, 1, d, t + 2 * tcp::kCookiePeriodMs);
  CHECK(g_draws == 3);
  CHECK_FALSE(c.check(kServerIp, 80, kClientIp, 40000, 1, k0, t + 2 * tcp::kCookiePeriodMs, out));
  CHECK(c.check(kServerIp, 80, kClientIp, 40000, 1, k1, t + 2 * tcp::kCookiePeriodMs, out));
  // Two instances never share a secret.
  tcp::SynCookies other;
  CHECK_FALSE(other.check(kServerIp, 80, kClientIp, 40000, 1, k1, t + tcp::kCookiePeriodMs, out));
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

// A generator from the client's one address to the server's port 80.
apps::GeneratorConfig client_gen(uint16_t port_lo, uint16_t port_hi, uint64_t count, uint32_t concurrency,
                                 apps::CloseMode mode = apps::CloseMode::Server) {
  apps::GeneratorConfig gc;
  gc.dst = kServerIp;
  gc.src = {{kClientIp, kClientIp}};
  gc.port_lo = port_lo;
  gc.port_hi = port_hi;
  gc.count = count;
  gc.concurrency = concurrency;
  gc.mode = mode;
  return gc;
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
  apps::Generator gen(client_gen(20000, 20999, count, 16, mode));
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
  apps::GeneratorConfig gc = client_gen(30000, 30999, 100, 10);
  gc.accept = [](uint32_t, uint16_t port) { return port % 4 == 1; };  // "this lcore's queue"
  apps::Generator gen(gc);
  drive(n, gen, 100000, true);
  CHECK(gen.stats().gen_completed == 100);
  CHECK(gen.stats().gen_tuples_steered_away >= 290);
  // Every flow the server saw came from an accepted port, and none was
  // passed over: the first 100 accepted ports, drawn ahead of use.
  std::set<uint16_t> ports, want;
  for (const auto& f : n.server->dump_flows(1000)) {
    CHECK(f.key.rport % 4 == 1);
    ports.insert(f.key.rport);
  }
  for (uint16_t p = 30001; want.size() < 100; p += 4) want.insert(p);
  CHECK(ports == want);
  CHECK(n.server->time_wait_records() == 100);
}

// ================================================= issue 9: hardening ===
namespace {
// A peer made of raw segments, against one server stack.
struct Raw {
  StackConfig cfg;
  WireSink out;
  std::unique_ptr<Stack> s;
  uint64_t now = 1000;
  std::map<uint16_t, uint32_t> una;  // per source port: our ISS + 1 (ack 0 below means this)
  explicit Raw(StackConfig c) : cfg(c) { s = std::make_unique<Stack>(cfg, out, now); }
  wire::Ipv4Repr ip() const {
    wire::Ipv4Repr r;
    r.src = kClientIp;
    r.dst = kServerIp;
    r.proto = wire::kProtoTcp;
    return r;
  }
  void send(uint16_t sport, uint32_t seq, uint32_t ack, uint8_t flags, std::string_view data = {},
            uint16_t win = 65535, uint32_t tsval = 0, uint32_t src = kClientIp) {
    wire::TcpRepr h;
    h.src_port = sport;
    h.dst_port = 80;
    h.seq = seq;
    h.ack = ack == 0 && (flags & wire::flag::ACK) && una.count(sport) ? una[sport] : ack;
    h.flags = flags;
    h.window = win;
    if (tsval) {
      h.opt.has_ts = true;
      h.opt.ts_val = tsval;
    }
    h.payload = std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    wire::Ipv4Repr r = ip();
    r.src = src;
    s->input(r, h);
  }
  // Handshake from sport (peer ISN 1000, no options); returns our ISS + 1.
  uint32_t open(uint16_t sport, uint16_t win = 65535) {
    out.q.clear();
    send(sport, 1000, 0, wire::flag::SYN, {}, win);
    REQUIRE(out.q.size() == 1);
    uint32_t iss = out.q[0].h.seq;
    out.q.clear();
    una[sport] = iss + 1;
    send(sport, 1001, iss + 1, wire::flag::ACK, {}, win);
    return iss + 1;
  }
  void at(uint64_t t) {
    now = t;
    s->advance(now);
  }
};
}  // namespace

TEST_CASE("hardening: one out-of-order byte at the right edge costs one chunk, not a chain",
          "[stack][hardening][memory]") {
  StackConfig cfg = Net::small();
  Raw r(cfg);
  apps::Discard discard;
  r.s->add_listener(kServerIp, 80, &discard);
  r.open(40000);
  uint32_t before = r.s->chunks().in_use();
  r.send(40000, 1001 + 65000, 0, wire::flag::ACK, "x");  // near the right edge of the window
  r.send(40000, 1001 + 40000, 0, wire::flag::ACK, "y");
  CHECK(r.s->chunks().in_use() - before == 2);  // old code: 32 chunks for the first byte alone
  CHECK(r.s->tcp_stats().ooo_segments == 2);
  // The hole fills byte by byte... the ranges stay apart and nothing is lost.
  std::string fill(100000, 'a');
  r.send(40000, 1001, 0, wire::flag::ACK, fill.substr(0, 1400));
  CHECK(r.s->check_invariants());
}

TEST_CASE("hardening: reassembly merges ranges and delivers them byte-exact", "[stack][hardening][ooo]") {
  StackConfig cfg = Net::small();
  Raw r(cfg);
  struct Sink : stack::App {
    std::string got;
    const char* name() const override { return "sink"; }
    void on_data(stack::Stream& s) override {
      std::string b(s.readable(), '\0');
      s.peek(reinterpret_cast<uint8_t*>(b.data()), b.size());
      s.consume(b.size());
      got += b;
    }
  } app;
  r.s->add_listener(kServerIp, 80, &app);
  r.open(40000);
  std::string data = pattern(9000, 9);
  auto seg = [&](uint32_t off, uint32_t len) {
    r.send(40000, 1001 + off, 0, wire::flag::ACK, std::string_view(data).substr(off, len));
  };
  seg(6000, 1000);  // ranges: [6000,7000)
  seg(2000, 1500);  // [2000,3500) [6000,7000)
  seg(3400, 2700);  // bridges both: [2000,7000)
  seg(8000, 1000);  // [2000,7000) [8000,9000)
  seg(1500, 600);   // extends the first at the front: [1500,7000)
  seg(7000, 1000);  // joins: [1500,9000)
  CHECK(app.got.empty());
  seg(0, 1500);  // the hole at RCV.NXT
  CHECK(app.got == data);
  CHECK(r.s->check_invariants());
}

TEST_CASE("hardening: under chunk pressure out-of-order data is pruned before in-order data is refused",
          "[stack][hardening][memory][pressure]") {
  StackConfig cfg = Net::small();
  cfg.chunks = 64;  // 128 KiB
  Raw r(cfg);
  apps::Discard discard;
  r.s->add_listener(kServerIp, 80, &discard);
  // 30 attacker flows park out-of-order bytes far to the right (2 ranges each).
  for (uint16_t p = 0; p < 30; p++) {
    r.open(41000 + p);
    r.send(41000 + p, 1001 + 60000, 0, wire::flag::ACK, "x");
    r.send(41000 + p, 1001 + 30000, 0, wire::flag::ACK, "y");
  }
  CHECK(r.s->chunks().in_use() >= 40);
  // A real client's in-order data still gets in: the farthest ranges go first.
  r.open(40000);
  std::string big(1400, 'b');
  for (int i = 0; i < 20; i++) r.send(40000, 1001 + 1400 * i, 0, wire::flag::ACK, big);
  CHECK(r.s->tcp_stats().rcv_buf_full == 0);
  CHECK(r.s->tcp_stats().bytes_in >= 20u * 1400);
  CHECK((r.s->tcp_stats().ooo_pruned_ranges > 0 || r.s->tcp_stats().ooo_pressure_dropped > 0));
  CHECK(r.s->check_invariants());
}

TEST_CASE("hardening: flows stalled on a zero window holding the most memory are reclaimed",
          "[stack][hardening][memory][reclaim]") {
  // The same with 4 M flow slots: reclaim finds the holders through the
  // queue headers on record, not by scanning every slot.
  for (uint32_t max_flows : {256u, 1u << 22}) {
    INFO("max_flows " << max_flows);
    StackConfig cfg = Net::small();
    cfg.chunks = 64;
    cfg.max_flows = max_flows;
    Raw r(cfg);
    apps::Echo echo;
    r.s->add_listener(kServerIp, 80, &echo);
    // Readers that never read: each sends 6 KiB and keeps its window shut,
    // so the echo holds it all in the send queue.
    std::string blob(1400, 'z');
    for (uint16_t p = 0; p < 20; p++) {
      r.open(42000 + p, 0);
      for (int i = 0; i < 5; i++) r.send(42000 + p, 1001 + 1400 * i, 0, wire::flag::ACK, blob, 0);
    }
    REQUIRE(r.s->chunks().critical());
    r.at(r.now + cfg.reclaim_interval_ms + 1);
    CHECK(r.s->stats().mem_reclaimed_stalled > 0);
    CHECK_FALSE(r.s->chunks().critical());
    CHECK(r.s->check_invariants());
  }
}

TEST_CASE("hardening: a restarted TIME-WAIT record expires 2*MSL after the restart, not later",
          "[stack][hardening][time-wait]") {
  // Old code: the restarted record was moved behind younger ones when it
  // reached the head and expired with the youngest.
  StackConfig cfg = Net::small();  // 2*MSL = 2000 ms
  Raw r(cfg);
  apps::Http http(5);
  r.s->add_listener(kServerIp, 80, &http);
  auto close_one = [&](uint16_t sport) {
    uint32_t una = r.open(sport);
    std::string req = "GET / HTTP/1.0\r\n\r\n";
    r.out.q.clear();
    r.send(sport, 1001, una, wire::flag::ACK | wire::flag::PSH, req, 65535);
    // The response and our FIN: ACK them all, then send the peer's FIN.
    uint32_t fin_end = 0;
    for (auto& p : r.out.q) fin_end = p.h.seq + uint32_t(p.data.size()) + (p.h.fin() ? 1 : 0);
    REQUIRE(fin_end != 0);
    r.send(sport, 1001 + uint32_t(req.size()), fin_end, wire::flag::ACK | wire::flag::FIN);
    return std::pair<uint32_t, uint32_t>(1001 + uint32_t(req.size()), fin_end);
  };
  uint64_t t0 = r.now;
  auto [a_seq, a_ack] = close_one(43000);
  REQUIRE(r.s->time_wait_records() == 1);
  r.at(t0 + 1000);
  r.send(43000, a_seq, a_ack, wire::flag::ACK | wire::flag::FIN);  // retransmitted FIN: restart
  CHECK(r.s->tcp_stats().tw_fin_reacked == 1);
  r.at(t0 + 1900);
  close_one(43001);  // a younger record, expires at t0 + 3900
  REQUIRE(r.s->time_wait_records() == 2);
  r.at(t0 + 2999);
  CHECK(r.s->tcp_stats().tw_expired == 0);
  r.at(t0 + 3001);
  CHECK(r.s->tcp_stats().tw_expired == 1);  // the restarted record, on time
  r.at(t0 + 3901);
  CHECK(r.s->tcp_stats().tw_expired == 2);
  CHECK(r.s->check_invariants());
}

TEST_CASE("hardening: a retransmitted FIN in TIME-WAIT refreshes TS.Recent", "[stack][hardening][time-wait]") {
  StackConfig cfg = Net::small();
  Raw r(cfg);
  apps::Http http(5);
  r.s->add_listener(kServerIp, 80, &http);
  r.out.q.clear();
  r.send(44000, 1000, 0, wire::flag::SYN, {}, 65535, 100);
  uint32_t iss = r.out.q.at(0).h.seq;
  r.send(44000, 1001, iss + 1, wire::flag::ACK, {}, 65535, 101);
  r.out.q.clear();
  std::string req = "GET / HTTP/1.0\r\n\r\n";
  r.send(44000, 1001, iss + 1, wire::flag::ACK | wire::flag::PSH, req, 65535, 102);
  uint32_t fin_end = 0;
  for (auto& p : r.out.q) fin_end = p.h.seq + uint32_t(p.data.size()) + (p.h.fin() ? 1 : 0);
  uint32_t seq = 1001 + uint32_t(req.size());
  r.send(44000, seq, fin_end, wire::flag::ACK | wire::flag::FIN, {}, 65535, 103);
  REQUIRE(r.s->time_wait_records() == 1);
  r.out.q.clear();
  r.send(44000, seq, fin_end, wire::flag::ACK | wire::flag::FIN, {}, 65535, 200);  // retransmitted
  REQUIRE(r.out.q.size() == 1);
  CHECK(r.out.q[0].h.opt.ts_ecr == 200u);
  r.out.q.clear();
  r.send(44000, seq, fin_end, wire::flag::ACK | wire::flag::FIN, {}, 65535, 150);  // older: PAWS
  CHECK(r.s->tcp_stats().paws_rejected == 1);  // old code: TS.Recent stayed 103, this passed
}

TEST_CASE("hardening: a new incarnation that cannot get a TCB leaves the TIME-WAIT record alone",
          "[stack][hardening][time-wait][rfc6191]") {
  StackConfig cfg = Net::small();
  cfg.max_flows = 2;
  cfg.syncookies = stack::SynCookieMode::Off;
  Raw r(cfg);
  apps::Http http(5);
  r.s->add_listener(kServerIp, 80, &http);
  uint32_t una = r.open(45000);
  std::string req = "GET / HTTP/1.0\r\n\r\n";
  r.out.q.clear();
  r.send(45000, 1001, una, wire::flag::ACK | wire::flag::PSH, req);
  uint32_t fin_end = 0;
  for (auto& p : r.out.q) fin_end = p.h.seq + uint32_t(p.data.size()) + (p.h.fin() ? 1 : 0);
  r.send(45000, 1001 + uint32_t(req.size()), fin_end, wire::flag::ACK | wire::flag::FIN);
  REQUIRE(r.s->time_wait_records() == 1);
  r.open(45001);
  r.open(45002);  // the table is full
  REQUIRE(r.s->flows() == 2);
  r.send(45000, 900000, 0, wire::flag::SYN);  // higher sequence: RFC 6191 would reopen
  CHECK(r.s->stats().tw_reopen_failed == 1);  // old code: never counted, record gone
  CHECK(r.s->time_wait_records() == 1);
  CHECK(r.s->check_invariants());
}

TEST_CASE("stack: a forgetful client keeps no TIME-WAIT, sends no RST for what it forgot, ignores challenge ACKs",
          "[stack][forgetful]") {
  Net n;
  n.client->tcp_config().forgetful = true;
  apps::Http http(5);
  REQUIRE(n.server->add_listener(kServerIp, 80, &http));
  Client c;
  c.request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";  // keep-alive: the client closes first
  c.close_after = 1;
  REQUIRE(n.open(c, 44000));
  n.run(n.now + 1000);
  CHECK(c.got.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(n.client->stats().forgot_time_wait == 1);
  CHECK(n.client->time_wait_records() == 0);
  CHECK(n.client->flows() == 0);
  CHECK(n.server->flows() == 0);  // LAST-ACK ended with the client's last ACK
  // A segment for the forgotten connection: silence, no RST.
  wire::Ipv4Repr ip;
  ip.src = kServerIp;
  ip.dst = kClientIp;
  wire::TcpRepr fin;
  fin.src_port = 80;
  fin.dst_port = 44000;
  fin.seq = 12345;
  fin.ack = 678;
  fin.flags = wire::flag::FIN | wire::flag::ACK;
  n.to_server.q.clear();
  n.client->input(ip, fin);
  CHECK(n.to_server.q.empty());
  CHECK(n.client->stats().forgot_segments == 1);
  // In SYN-SENT, an ACK that does not acknowledge our SYN (a challenge ACK
  // from the server's old incarnation) is dropped, not reset.
  n.drop_if = [](const Pkt&) { return true; };  // nothing reaches the server
  Client d;
  REQUIRE(n.open(d, 44001));
  n.to_server.q.clear();
  wire::TcpRepr chal;
  chal.src_port = 80;
  chal.dst_port = 44001;
  chal.seq = 999;
  chal.ack = 5;  // not our ISS + 1
  chal.flags = wire::flag::ACK;
  uint64_t rst_before = n.client->tcp_stats().resets_out;
  n.client->input(ip, chal);
  CHECK(n.client->tcp_stats().resets_out == rst_before);
  CHECK(n.to_server.q.empty());
}

TEST_CASE("stack: under flow-table pressure, orphans give up after one FIN retransmission",
          "[stack][orphans][pressure]") {
  StackConfig cfg = Net::small();
  cfg.max_flows = 16;
  Net n(cfg);
  apps::Http http(5);
  REQUIRE(n.server->add_listener(kServerIp, 80, &http));
  // Clients that send a request and vanish: nothing the server sends
  // after the handshake arrives, so its FINs are never acknowledged
  // (FIN-WAIT-1 orphans: http closes after its response).
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < 15; i++) {
    cs.push_back(std::make_unique<Client>());
    cs.back()->request = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    REQUIRE(n.open(*cs.back(), uint16_t(45000 + i)));
  }
  n.drop_if = [](const Pkt& p) { return p.h.src_port == 80 && !p.h.syn(); };
  n.run(n.now + 30000);
  CHECK(n.server->tcp_stats().orphans_reclaimed >= 1);
  CHECK(n.server->flows() == 0);
}

TEST_CASE("stack: a connection opened by a SYN cookie sends no extra window update", "[stack][syncookies]") {
  for (bool cookies : {false, true}) {
    Net n;
    n.server->set_syncookies(cookies ? stack::SynCookieMode::On : stack::SynCookieMode::Off);
    apps::Http http(5);
    REQUIRE(n.server->add_listener(kServerIp, 80, &http));
    Client c;
    c.request = "GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    uint64_t server_segs = 0;
    n.drop_if = [&](const Pkt& p) {
      if (p.h.src_port == 80) server_segs++;
      return false;
    };
    REQUIRE(n.open(c, 46000));
    n.run(n.now + 1000);
    INFO("cookies " << cookies);
    CHECK(c.got.rfind("HTTP/1.1 200 OK", 0) == 0);
    CHECK(n.server->tcp_stats().window_updates == 0);
    // SYN-ACK, the response with FIN (or response, FIN), the ACK of the client's FIN.
    CHECK(server_segs <= 4);
  }
}

TEST_CASE("generator: a backlogged lcore opens nothing (hold), then resumes", "[stack][generator][backoff]") {
  Net n;
  apps::Http http(10);
  REQUIRE(n.server->add_listener(kServerIp, 80, &http));
  apps::GeneratorConfig gc;
  gc.dst = kServerIp;
  gc.src = {{kClientIp, kClientIp}};
  gc.port_lo = 21000;
  gc.port_hi = 21999;
  gc.count = 10;
  gc.mode = apps::CloseMode::Server;
  apps::Generator gen(gc);
  for (int i = 0; i < 5; i++) gen.tick(*n.client, n.now + uint64_t(i), 0, 1, /*hold=*/true);
  CHECK(gen.stats().gen_opened == 0);
  CHECK(gen.stats().gen_backoffs == 5);
  CHECK(n.client->flows() == 0);
  drive(n, gen, 10000, true);
  CHECK(gen.stats().gen_opened == 10);
  CHECK(gen.stats().gen_completed == 10);
}

TEST_CASE("payload: copy_to_sum copies across chunks and sums what it copied, at any offset",
          "[stack][checksum]") {
  tcp::ChunkPool chunks(8);
  tcp::ByteQueue q;
  std::string data = pattern(5000, 9);  // three chunks
  REQUIRE(tcp::bq_append(q, chunks, reinterpret_cast<const uint8_t*>(data.data()), data.size()) == data.size());
  q.len = uint32_t(data.size());
  for (uint32_t off : {0u, 1u, 2047u, 2048u, 2049u, 4000u})
    for (uint32_t len : {1u, 2u, 3u, 1460u, 1461u, 999u}) {
      if (off + len > data.size()) continue;
      stack::Payload p{&chunks, &q, off, len};
      std::vector<uint8_t> out(len);
      uint32_t sum = p.copy_to_sum(out.data());
      INFO("off " << off << " len " << len);
      CHECK(std::memcmp(out.data(), data.data() + off, len) == 0);
      CHECK(wire::fold(sum) == wire::checksum(out.data(), len));
    }
  tcp::bq_clear(q, chunks);
}

TEST_CASE("stream: view() is the readable bytes in place, up to the end of their chunk",
          "[stack][stream]") {
  StackConfig cfg = Net::small();
  Raw r(cfg);
  struct Viewer : stack::App {
    std::vector<std::pair<size_t, size_t>> seen;  // (readable, view size)
    size_t take = 0;                              // bytes to consume per event
    bool same = true;
    const char* name() const override { return "viewer"; }
    void on_data(stack::Stream& s) override {
      std::span<const uint8_t> v = s.view();
      std::string all(s.readable(), '\0');
      s.peek(reinterpret_cast<uint8_t*>(all.data()), all.size());
      same = same && std::string_view(reinterpret_cast<const char*>(v.data()), v.size()) ==
                         std::string_view(all).substr(0, v.size());
      seen.emplace_back(all.size(), v.size());
      s.consume(std::min(take, all.size()));
    }
  } app;
  r.s->add_listener(kServerIp, 80, &app);
  r.open(40000);
  std::string data = pattern(3000, 3);
  app.take = 100;
  r.send(40000, 1001, 0, wire::flag::ACK, std::string_view(data).substr(0, 1400));
  r.send(40000, 1001 + 1400, 0, wire::flag::ACK, std::string_view(data).substr(1400, 1000));
  r.send(40000, 1001 + 2400, 0, wire::flag::ACK, std::string_view(data).substr(2400, 600));
  REQUIRE(app.seen.size() == 3);
  CHECK(app.same);
  // The first segment is read in place, from the frame: all of it.
  CHECK(app.seen[0] == std::pair<size_t, size_t>{1400, 1400});
  // 100 consumed: the 1300 left were kept from the start of a chunk, and the
  // next 1000 appended; the chunk holds them up to its end (2048).
  CHECK(app.seen[1] == std::pair<size_t, size_t>{2300, 2048});
  // 100 more consumed: from offset 100 to the chunk's end.
  CHECK(app.seen[2] == std::pair<size_t, size_t>{2800, 1948});
  CHECK(r.s->check_invariants());
}

namespace {
// Takes `take` bytes per event (all with take = SIZE_MAX), checking what it
// reads against the stream's bytes; notes whether the first readable byte
// was read from the segment itself.
struct Taker : stack::App {
  std::string_view seg;  // the segment being delivered (set by the test)
  std::string got;
  size_t take = SIZE_MAX;
  std::vector<bool> in_place;
  std::vector<size_t> readable;
  bool consistent = true;
  bool close_unread = false;
  const char* name() const override { return "taker"; }
  void on_data(stack::Stream& s) override {
    std::span<const uint8_t> v = s.view();
    in_place.push_back(v.data() == reinterpret_cast<const uint8_t*>(seg.data()));
    readable.push_back(s.readable());
    std::string all(s.readable(), '\0');
    consistent = consistent && s.peek(reinterpret_cast<uint8_t*>(all.data()), all.size()) == all.size();
    // peek() at every offset across the held bytes and the queue
    for (size_t off = 0; off < all.size(); off += 97) {
      char c;
      consistent = consistent && s.peek(reinterpret_cast<uint8_t*>(&c), 1, off) == 1 && c == all[off];
    }
    consistent = consistent && std::string_view(reinterpret_cast<const char*>(v.data()), v.size()) ==
                                   std::string_view(all).substr(0, v.size());
    if (close_unread) {
      s.close();
      return;
    }
    size_t k = std::min(take, all.size());
    got += all.substr(0, k);
    s.consume(k);
  }
};
}  // namespace

TEST_CASE("stream: in-order text is read in place from its segment; what is left is kept, in order",
          "[stack][stream]") {
  StackConfig cfg = Net::small();
  cfg.tcp.rcv_buf = 8192;  // a window the held bytes visibly narrow
  Raw r(cfg);
  Taker app;
  r.s->add_listener(kServerIp, 80, &app);
  r.open(40000);
  const uint32_t base = r.s->chunks().in_use();
  std::string data = pattern(4400, 5);
  auto seg = [&](uint32_t off, uint32_t len) {
    app.seg = std::string_view(data).substr(off, len);
    r.send(40000, 1001 + off, 0, wire::flag::ACK, app.seg);
  };
  // 1. Taken whole in its event: read from the frame, never copied.
  seg(0, 1400);
  CHECK(app.in_place.back());
  CHECK(r.s->chunks().in_use() == base);
  // 2. Nothing taken: the 1400 bytes are kept in a chunk, and the delayed
  // ACK's window counts them.
  app.take = 0;
  r.out.q.clear();
  seg(1400, 1400);
  CHECK(app.in_place.back());
  CHECK(r.s->chunks().in_use() > base);
  r.at(r.now + 1000);
  REQUIRE(!r.out.q.empty());
  CHECK(r.out.q.back().h.ack == 1001 + 2800);
  CHECK(uint32_t(r.out.q.back().h.ack + r.out.q.back().h.window) == 1001 + 1400 + 8192);
  // 3. Queued bytes come first: the next segment is appended, not held.
  app.take = 100;
  seg(2800, 1000);
  CHECK(!app.in_place.back());
  CHECK(app.readable.back() == 2400);
  // 4. All taken; the chunks go back.
  app.take = SIZE_MAX;
  seg(3800, 300);
  CHECK(!app.in_place.back());
  CHECK(app.readable.back() == 2600);
  CHECK(r.s->chunks().in_use() == base);
  // 5. With the queue empty again, the next text is in place.
  seg(4100, 300);
  CHECK(app.in_place.back());
  CHECK(r.s->chunks().in_use() == base);
  CHECK(app.got == data);
  CHECK(app.consistent);
  // 6. Text and FIN, nothing taken: the FIN's immediate ACK, sent in the
  // same event, counts the held bytes in its window (8192 - 1400, one
  // sequence number for the FIN; the peer's MSS is the default 536, so not
  // counting them would announce 8192).
  r.open(40001);
  std::string last = pattern(1400, 9);
  app.take = 0;
  app.seg = last;
  r.out.q.clear();
  r.send(40001, 1001, 0, wire::flag::ACK | wire::flag::FIN, last);
  CHECK(app.in_place.back());
  REQUIRE(!r.out.q.empty());
  CHECK(r.out.q.back().h.ack == 1001 + 1400 + 1);
  CHECK(r.out.q.back().h.window == 8192 - 1400 - 1);
  CHECK(r.s->tcp_stats().rcv_buf_full == 0);
  CHECK(r.s->check_invariants());
}

TEST_CASE("stream: CLOSE with text still held in place resets (RFC 1122 4.2.2.13)", "[stack][stream]") {
  StackConfig cfg = Net::small();
  Raw r(cfg);
  Taker app;
  app.close_unread = true;
  r.s->add_listener(kServerIp, 80, &app);
  r.open(40000);
  r.out.q.clear();
  std::string data = pattern(500, 6);
  app.seg = data;
  r.send(40000, 1001, 0, wire::flag::ACK, data);
  CHECK(app.in_place.back());
  REQUIRE(!r.out.q.empty());
  CHECK((r.out.q.back().h.flags & wire::flag::RST));
  CHECK(r.s->tcp_stats().closed_abort == 1);
  CHECK(r.s->check_invariants());
}

TEST_CASE("stream: a send before the held text is read leaves the pool room to keep it",
          "[stack][stream][memory]") {
  // The application fills the send queue from a nearly dry pool before it
  // reads: send_space() must not offer the chunks the held bytes will need,
  // so that the send takes all it was offered and no byte is lost.
  StackConfig cfg = Net::small();
  cfg.chunks = 24;
  Raw r(cfg);
  struct SendFirst : stack::App {
    std::string_view seg;
    size_t offered = 0, sent = 0, later = 0;
    bool in_place = false;
    const char* name() const override { return "send-first"; }
    void on_data(stack::Stream& s) override {
      if (!offered) {
        in_place = s.view().data() == reinterpret_cast<const uint8_t*>(seg.data());
        offered = s.send_space();
        std::string junk(offered, 'j');
        sent = s.send(std::span(reinterpret_cast<const uint8_t*>(junk.data()), junk.size()));
        return;  // the text is left for later
      }
      later = s.readable();
    }
  } app;
  r.s->add_listener(kServerIp, 80, &app);
  r.open(40000);
  std::string data = pattern(1400, 7);
  app.seg = data;
  r.send(40000, 1001, 0, wire::flag::ACK, data);
  CHECK(app.in_place);
  CHECK(app.offered > 0);
  CHECK(app.sent == app.offered);
  CHECK(r.s->tcp_stats().rcv_buf_full == 0);
  CHECK(r.s->tcp_stats().closed_abort == 0);
  // The held bytes were kept: a byte more makes them readable again.
  app.seg = "x";
  r.send(40000, 1001 + 1400, 0, wire::flag::ACK, "x");
  CHECK(app.later == 1401);
  CHECK(r.s->check_invariants());
}

TEST_CASE("stack: http parses a request head that crosses a buffer chunk (copied out, not viewed)",
          "[stack][http][stream]") {
  Net n;
  apps::Http http(10);
  n.server->add_listener(kServerIp, 80, &http);
  Client c;
  // The first head is 2030 bytes, so the second starts 18 bytes before the
  // end of the first chunk and ends in the second.
  std::string first = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
  first += std::string(2030 - first.size() - 4, 'p') + "\r\n\r\n";
  REQUIRE(first.size() == 2030);
  c.request = first + "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  REQUIRE(n.open(c, 40030));
  n.run(n.now + 500);
  CHECK(http.requests() == 2);
  CHECK(http.bad_requests() == 0);
  CHECK(c.peer_closed);
}

TEST_CASE("stack: a flow listing taken in steps is the whole listing; it stops at N and when its place expires",
          "[stack][dump]") {
  StackConfig cfg = Net::small();
  cfg.max_time_wait = 4096;
  cfg.tcp.msl_ms = 100000;  // the records stay while they are listed
  Net n(cfg);
  apps::Http http(10);
  n.server->add_listener(kServerIp, 80, &http);
  apps::Generator gen(client_gen(20000, 23999, 3000, 16));
  drive(n, gen, 100000, true);
  REQUIRE(n.server->time_wait_records() == 3000);
  const Stack& s = *n.server;
  const std::vector<stack::FlowInfo> whole = s.dump_flows(100000);
  REQUIRE(whole.size() == 3000);

  auto start = [](std::vector<stack::FlowInfo>& out, size_t max, uint32_t addr = 0) {
    stack::FlowDump d;
    d.max = max;
    d.addr_filter = addr;
    d.out = &out;
    return d;
  };
  // In steps of 100 slots or records: the same listing, in the same order.
  std::vector<stack::FlowInfo> v;
  stack::FlowDump d = start(v, 100000);
  int steps = 1;
  while (!s.dump_flows_step(d, 100)) steps++;
  CHECK(steps == int((256 + 3000) / 100 + 1));
  REQUIRE(v.size() == whole.size());
  bool same = true;
  for (size_t i = 0; i < v.size(); i++) same = same && v[i].key == whole[i].key && v[i].state == whole[i].state;
  CHECK(same);
  CHECK(!d.cut);
  CHECK(d.examined == 256 + 3000);

  // N reached: nothing more is examined (the walk used to go on to the end).
  std::vector<stack::FlowInfo> few;
  stack::FlowDump d20 = start(few, 20);
  CHECK(s.dump_flows_step(d20, UINT64_MAX));
  CHECK(few.size() == 20);
  CHECK(d20.examined == 256 + 20);

  // TIME-WAIT only: the records alone are examined (no TCB rests in it).
  std::vector<stack::FlowInfo> tw5;
  stack::FlowDump dtw = start(tw5, 5);
  dtw.state_filter = int(TcpState::TimeWait);
  CHECK(s.dump_flows_step(dtw, UINT64_MAX));
  CHECK(tw5.size() == 5);
  CHECK(dtw.examined == 5);

  // An address that matches nothing: every record is examined, none listed.
  std::vector<stack::FlowInfo> none;
  stack::FlowDump dn = start(none, 100000, 0x01020304);
  CHECK(s.dump_flows_step(dn, UINT64_MAX));
  CHECK(none.empty());
  CHECK(dn.examined == 256 + 3000);

  // The records expire under a walk in progress: it stops, marked partial,
  // instead of following a record that went back to the free list.
  std::vector<stack::FlowInfo> part;
  stack::FlowDump dp = start(part, 100000);
  CHECK(!s.dump_flows_step(dp, 256 + 1000));
  CHECK(part.size() == 1000);
  n.now += 2 * cfg.tcp.msl_ms + 10;
  n.server->advance(n.now);
  REQUIRE(n.server->time_wait_records() == 0);
  CHECK(s.dump_flows_step(dp, UINT64_MAX));
  CHECK(dp.cut);
  CHECK(part.size() == 1000);
  CHECK(n.server->check_invariants());
}
