// The load-balancer front end: chunk splicing (lib/tcp), the event scope
// (lib/stack), Maglev, pools, the PROXY protocol and the proxy itself
// (lib/lb), with the proxy on one stack and clients and backends on the
// other, joined by the in-memory wire of stack_net.h.
#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <random>
#include <set>

#include "apps/apps.h"
#include "lb/balancer.h"
#include "lb/maglev.h"
#include "lb/pool.h"
#include "lb/proxy.h"
#include "lb/proxy_protocol.h"
#include "stack_net.h"

using namespace tcpterm;
using namespace tcpterm::testing;

// ------------------------------------------------------------ splicing ---
namespace {
std::string contents(const tcp::ByteQueue& q, const tcp::ChunkPool& p) {
  std::string s(q.len, '\0');
  if (q.len) tcp::bq_copy_out(q, p, 0, reinterpret_cast<uint8_t*>(s.data()), q.len);
  return s;
}
}  // namespace

TEST_CASE("splice: bytes move from a receive queue to a send queue by chunk handover", "[proxy][splice]") {
  tcp::ChunkPool pool(512);
  std::mt19937 rng(11);
  for (int round = 0; round < 20; round++) {
    tcp::ByteQueue rq, sq;
    std::string rm, sm;  // models
    uint64_t copied = 0, moved = 0, sends = 0;
    for (int step = 0; step < 400; step++) {
      int op = int(rng() % 10);
      if (op < 4) {  // a segment arrives (tcp writes at len, then advances len)
        size_t n = 1 + rng() % 3000;
        std::string d = pattern(n, rng());
        if (tcp::bq_write_at(rq, pool, rq.len, reinterpret_cast<const uint8_t*>(d.data()), n)) {
          rq.len += uint32_t(n);
          rm += d;
        }
      } else if (op < 7 && rq.len) {  // the proxy splices some or all of it
        size_t n = rng() % 2 ? rq.len : 1 + rng() % rq.len;
        size_t c = tcp::bq_splice(rq, sq, pool, n);
        REQUIRE(c != SIZE_MAX);
        copied += c;
        moved += n;
        sm += rm.substr(0, n);
        rm.erase(0, n);
      } else if (op < 9 && sq.len) {  // the peer acknowledges some of the send queue
        size_t n = 1 + rng() % sq.len;
        tcp::bq_consume(sq, pool, n);
        sm.erase(0, n);
      } else if (op == 9 && rng() % 4 == 0) {  // the application writes into the send queue itself
        std::string d = pattern(1 + rng() % 100, rng());
        REQUIRE(tcp::bq_unshare_tail(sq, pool));
        size_t k = tcp::bq_append(sq, pool, reinterpret_cast<const uint8_t*>(d.data()), d.size());
        sm += d.substr(0, k);
        sends++;
      }
      REQUIRE(contents(rq, pool) == rm);
      REQUIRE(contents(sq, pool) == sm);
      REQUIRE(rq.len <= rq.covered());
      REQUIRE(sq.len <= sq.covered());
    }
    // Copies happen only while the queues are misaligned after the
    // application wrote into the send queue itself (here: on purpose, at
    // random); they stop once either side drains or can be rebased.
    INFO("copied " << copied << " of " << moved << " with " << sends << " sends");
    CHECK(copied <= moved / 2);
    tcp::bq_clear(rq, pool);
    tcp::bq_clear(sq, pool);
    REQUIRE(pool.in_use() == 0);  // shared seams are freed exactly once
  }
}

TEST_CASE("splice: bulk transfer in segment-sized pieces copies nothing", "[proxy][splice]") {
  tcp::ChunkPool pool(256);
  tcp::ByteQueue rq, sq;
  std::string all = pattern(200000, 5), out;
  size_t copied = 0;
  for (size_t at = 0; at < all.size(); at += 1448) {
    size_t n = std::min<size_t>(1448, all.size() - at);
    REQUIRE(tcp::bq_write_at(rq, pool, rq.len, reinterpret_cast<const uint8_t*>(all.data() + at), n));
    rq.len += uint32_t(n);
    copied += tcp::bq_splice(rq, sq, pool, rq.len);  // the proxy drains every segment
    if (sq.len > 60000) {  // acknowledgements free the front
      out += contents(sq, pool).substr(0, 50000);
      tcp::bq_consume(sq, pool, 50000);
    }
  }
  out += contents(sq, pool);
  CHECK(out == all);
  CHECK(copied == 0);
  // At most the seam chunk beyond what the two queues hold.
  CHECK(pool.in_use() <= (sq.len + rq.len) / tcp::ChunkPool::kChunk + 3);
  tcp::bq_clear(rq, pool);
  tcp::bq_clear(sq, pool);
  CHECK(pool.in_use() == 0);
}

TEST_CASE("splice: a header put before the spliced bytes costs no copy", "[proxy][splice]") {
  tcp::ChunkPool pool(256);
  tcp::ByteQueue rq, sq;
  std::string hdr = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", all = pattern(100000, 6);
  REQUIRE(tcp::bq_put_before_splice(sq, pool, reinterpret_cast<const uint8_t*>(hdr.data()), hdr.size()));
  CHECK_FALSE(tcp::bq_put_before_splice(sq, pool, reinterpret_cast<const uint8_t*>(hdr.data()), hdr.size()));
  size_t copied = 0;
  for (size_t at = 0; at < all.size(); at += 1000) {
    size_t n = std::min<size_t>(1000, all.size() - at);
    REQUIRE(tcp::bq_write_at(rq, pool, rq.len, reinterpret_cast<const uint8_t*>(all.data() + at), n));
    rq.len += uint32_t(n);
    if (at % 3000 == 0) copied += tcp::bq_splice(rq, sq, pool, rq.len / 2 + 1);  // partial splices too
  }
  copied += tcp::bq_splice(rq, sq, pool, rq.len);
  CHECK(copied == 0);
  CHECK(contents(sq, pool) == hdr + all);
  tcp::bq_clear(rq, pool);
  tcp::bq_clear(sq, pool);
  CHECK(pool.in_use() == 0);
}

// -------------------------------------------------------------- Maglev ---
TEST_CASE("maglev: removing one of N backends moves only its flows; adding one moves ~1/(N+1)",
          "[proxy][maglev]") {
  const uint32_t N = 10;
  std::vector<lb::Maglev::Entry> e(N + 1);
  for (uint32_t i = 0; i <= N; i++) e[i] = {0xC6120000ull << 16 | (100 + i) << 16 | 8080, i < N ? 1u : 0u};
  lb::Maglev before, removed, added;
  before.build(e);
  auto e2 = e;
  e2[3].weight = 0;  // backend 3 leaves
  removed.build(e2);
  auto e3 = e;
  e3[N].weight = 1;  // backend N joins
  added.build(e3);
  // Over a million client (address, port) keys.
  uint64_t keys = 0, moved_rm = 0, moved_other = 0, moved_add = 0, to_new = 0;
  std::map<int, uint64_t> share;
  for (uint32_t a = 0; a < 1000; a++)
    for (uint32_t p = 0; p < 1000; p++) {
      uint64_t h = lb::flow_hash(0xC6130000 + a, uint16_t(20000 + p), true);
      int b = before.lookup(h), r = removed.lookup(h), d = added.lookup(h);
      keys++;
      share[b]++;
      if (b != r) {
        moved_rm++;
        if (b != 3) moved_other++;
      }
      if (b != d) {
        moved_add++;
        if (d == int(N)) to_new++;
      }
    }
  double f_rm = double(moved_rm) / double(keys), f_add = double(moved_add) / double(keys);
  INFO("removal moved " << f_rm << ", of which not on the removed backend " << moved_other
                        << "; addition moved " << f_add);
  CHECK(f_rm == Approx(1.0 / N).margin(0.01));
  // Flows that were not on the removed backend stay where they were (the
  // paper's minimal disruption: a small fraction of the table may shift).
  CHECK(double(moved_other) / double(keys) < 0.01);
  CHECK(f_add == Approx(1.0 / (N + 1)).margin(0.015));
  CHECK(double(to_new) / double(moved_add) > 0.9);  // what moves, moves to the new backend
  for (auto& [b, n] : share) CHECK(double(n) / double(keys) == Approx(1.0 / N).margin(0.01));
}

TEST_CASE("maglev: weights set the share; the table is prime-sized and full", "[proxy][maglev]") {
  std::vector<lb::Maglev::Entry> e = {{1, 1}, {2, 2}, {3, 1}};
  lb::Maglev m(65537);
  m.build(e);
  std::map<int, uint64_t> n;
  for (int32_t v : m.table()) n[v]++;
  CHECK(n.count(-1) == 0);
  CHECK(double(n[1]) / 65537 == Approx(0.5).margin(0.01));
  CHECK(double(n[0]) / 65537 == Approx(0.25).margin(0.01));
  CHECK(lb::Maglev::is_prime(65537));
  CHECK_FALSE(lb::Maglev::is_prime(65536));
  lb::Maglev empty;
  empty.build({});
  CHECK(empty.lookup(12345) == -1);
}

TEST_CASE("maglev: a table built in steps is the table built at once; the old one serves until it is done",
          "[proxy][maglev]") {
  for (uint32_t m : {7u, 251u, 65537u}) {
    std::vector<lb::Maglev::Entry> before = {{11, 1}, {22, 3}, {33, 1}, {44, 2}};
    std::vector<lb::Maglev::Entry> after = before;
    after[1].weight = 0;  // one leaves
    after[3].weight = 5;  // one is re-weighted
    lb::Maglev once(m), stepped(m);
    once.build(after);
    stepped.build(before);
    std::vector<int32_t> old(stepped.table().begin(), stepped.table().end());
    stepped.begin(after);
    int steps = 0;
    const uint64_t budget = 100;
    while (!stepped.step(budget)) {
      steps++;
      // Meanwhile the previous table answers, unchanged.
      if (steps % 50 == 0) CHECK(std::equal(old.begin(), old.end(), stepped.table().begin()));
    }
    INFO("M = " << m << ", " << steps << " steps of " << budget);
    CHECK_FALSE(stepped.building());
    CHECK(std::equal(once.table().begin(), once.table().end(), stepped.table().begin(), stepped.table().end()));
    // At least a probe a slot, `budget` a step: the work was spread out.
    if (m == 65537u) CHECK(steps >= int(65537 / budget));
    // One entry: a retry avoiding it finds none, at once (not by going
    // round the whole ring); avoiding another, it is the one.
    std::vector<lb::Maglev::Entry> one = {{11, 0}, {22, 4}};
    stepped.build(one);
    uint32_t at = 0;
    CHECK(stepped.next_other(3, 1, at) == -1);
    CHECK(stepped.next_other(3, 0, at) == 1);
    CHECK(at == 4 % m);
    // A rebuild with no entry of weight empties the table at once.
    std::vector<lb::Maglev::Entry> none = {{11, 0}};
    stepped.begin(none);
    CHECK_FALSE(stepped.building());
    CHECK(stepped.lookup(42) == -1);
  }
}

// ------------------------------------------------------ PROXY protocol ---
TEST_CASE("proxy protocol: v1 and v2 as the specification writes them", "[proxy][pp]") {
  uint8_t buf[lb::kProxyV1Max];
  // The specification's longest TCP4 line (2.1): 56 bytes.
  lb::ProxyAddrs max{0xffffffff, 0xffffffff, 65535, 65535};
  size_t n = lb::build_proxy_v1(max, buf);
  CHECK(std::string(reinterpret_cast<char*>(buf), n) ==
        "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n");
  CHECK(n == 56);
  lb::ProxyAddrs a{0xC0A80001, 0xC0A8000B, 56324, 443}, got;
  int ver;
  bool local;
  n = lb::build_proxy_v1(a, buf);
  CHECK(std::string(reinterpret_cast<char*>(buf), n) == "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
  CHECK(lb::parse_proxy({buf, n}, got, ver, local) == long(n));
  CHECK((ver == 1 && got.src == a.src && got.dst == a.dst && got.sport == a.sport && got.dport == a.dport));
  // v2: the 12-byte signature, 0x21 (v2, PROXY), 0x11 (TCP over IPv4), 12 bytes of addresses.
  n = lb::build_proxy_v2(a, buf);
  const uint8_t sig[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C};
  CHECK(n == 28);
  CHECK(std::memcmp(buf, sig, sizeof sig) == 0);
  CHECK(lb::parse_proxy({buf, n}, got, ver, local) == 28);
  CHECK((ver == 2 && got.src == a.src && got.dport == 443));
  CHECK(lb::parse_proxy({buf, 10}, got, ver, local) == 0);  // more bytes needed
  // Malformed: leading zero in a port, a bad family, garbage.
  const char* bad1 = "PROXY TCP4 1.2.3.4 5.6.7.8 0443 80\r\n";
  CHECK(lb::parse_proxy({reinterpret_cast<const uint8_t*>(bad1), std::strlen(bad1)}, got, ver, local) == -1);
  const char* unk = "PROXY UNKNOWN\r\n";
  CHECK(lb::parse_proxy({reinterpret_cast<const uint8_t*>(unk), std::strlen(unk)}, got, ver, local) == 15);
  CHECK(local);
  const char* junk = "GET / HTTP/1.0\r\n";
  CHECK(lb::parse_proxy({reinterpret_cast<const uint8_t*>(junk), std::strlen(junk)}, got, ver, local) == -1);
  buf[13] = 0x31;  // AF_UNIX: not for us
  CHECK(lb::parse_proxy({buf, 28}, got, ver, local) == -1);
}

// --------------------------------------------------------------- pools ---
TEST_CASE("pools: --pool parses backends, weights and keys; errors name the part", "[proxy][pool]") {
  lb::PoolConf p;
  REQUIRE_FALSE(lb::parse_pool("web=198.18.0.11:80,weight=3,198.18.0.12:80,balance=leastconn,check=http,"
                               "path=/health,expect=204,interval=500,rise=1,fall=2,connect-timeout-ms=300,"
                               "retries=1,proxy-protocol=v2,mode=http,src=198.18.0.2-198.18.0.3,sport=2000-3000",
                               p));
  CHECK(p.name == "web");
  REQUIRE(p.backends.size() == 2);
  CHECK(p.backends[0].weight == 3);
  CHECK(p.backends[1].weight == 1);
  CHECK(p.balance == lb::Balance::LeastConn);
  CHECK(p.check == lb::Check::Http);
  CHECK(p.check_path == "/health");
  CHECK(p.check_expect == 204);
  CHECK(p.proxy_protocol == lb::ProxyProto::V2);
  CHECK(p.mode == lb::Mode::Http);
  CHECK(p.sport_lo == 2000);
  lb::PoolConf d;
  REQUIRE_FALSE(lb::parse_pool("a=10.0.0.1:1", d));
  CHECK((d.balance == lb::Balance::Maglev && d.hash == lb::HashOn::SrcPort && d.check == lb::Check::Tcp &&
         d.interval_ms == 2000 && d.rise == 2 && d.fall == 3 && d.connect_timeout_ms == 1000 && d.retries == 2 &&
         d.table_size == 65537));
  for (const char* bad : {"web", "=1.2.3.4:80", "web=", "web=1.2.3.4", "web=1.2.3.4:0", "web=weight=2",
                          "web=1.2.3.4:80,weight=0", "web=1.2.3.4:80,balance=random", "web=1.2.3.4:80,table=65536",
                          "web=1.2.3.4:80,1.2.3.4:80", "web=1.2.3.4:80,frob=1", "w b=1.2.3.4:80"}) {
    lb::PoolConf x;
    INFO(bad);
    CHECK(lb::parse_pool(bad, x).has_value());
  }
}

// --------------------------------------------------- the proxy, end to end ---
namespace {

constexpr uint16_t kProxyPort = 80;

// The proxy on the server stack; clients and backends on the client stack
// (backends listen on kClientIp, ports 9001...).
struct ProxyNet {
  Net n;
  lb::Balancer bal;
  std::unique_ptr<lb::Proxy> proxy;
  explicit ProxyNet(const std::string& pool, StackConfig c = Net::small())
      : n(c),
        bal(lb::Balancer::Edge{[](uint32_t) { return kServerIp; }, nullptr,
                               [](const wire::Ip6&, wire::Ip6& src) {
                                 src = kServer6;
                                 return true;
                               },
                               nullptr}) {
    lb::PoolConf pc;
    auto err = lb::parse_pool(pool, pc);
    REQUIRE_FALSE(err.has_value());
    std::string e;
    REQUIRE(bal.add_pool(pc, e));
    proxy = std::make_unique<lb::Proxy>(bal, 0);
    REQUIRE(n.server->add_listener(kServerIp, kProxyPort, proxy.get()));
    REQUIRE(n.server->add_listener6(kServer6, kProxyPort, proxy.get()));
  }
  void run(uint64_t ms) {
    // Health checks tick with the clock.
    uint64_t until = n.now + ms;
    while (n.now < until) {
      n.run(std::min(until, n.now + 10));
      bal.tick(*n.server, n.now);
    }
  }
  const lb::Backend& backend(size_t i) { return bal.pool(0).backends[i]; }
  void no_leaks() {
    CHECK(n.server->flows() == 0);
    CHECK(n.client->flows() == 0);
    CHECK(n.server->chunks().in_use() == 0);
    CHECK(n.client->chunks().in_use() == 0);
    for (const auto& b : bal.pool(0).backends) CHECK(b.st.active == 0);
  }
};

// A client that half-closes once its request is queued and reads until the
// peer closes.
struct HalfCloser : Client {
  void on_open(stack::Stream& s) override {
    Client::on_open(s);
    if (sent == request.size()) s.shutdown();
  }
  void on_writable(stack::Stream& s) override {
    bool before = sent == request.size();
    Client::on_writable(s);
    if (!before && sent == request.size()) s.shutdown();
  }
};

// A backend that accepts and never reads.
struct Stall : stack::App {
  const char* name() const override { return "stall"; }
  void on_data(stack::Stream&) override {}
};

// A backend that resets the connection once it has some bytes.
struct Resetter : stack::App {
  const char* name() const override { return "resetter"; }
  void on_data(stack::Stream& s) override { s.abort(); }
};

}  // namespace

TEST_CASE("proxy: 4 MiB both ways through a backend echo is byte-exact, by chunk handover", "[proxy][e2e]") {
  ProxyNet p("web=198.18.0.1:9001,check=none");
  apps::Echo echo;
  REQUIRE(p.n.client->add_listener(kClientIp, 9001, &echo));
  Client c;
  c.request = pattern(4 << 20, 21);
  c.close_after = c.request.size();
  REQUIRE(p.n.open(c, 41000, kProxyPort));
  p.run(60000);
  CHECK(c.got == c.request);
  const auto& st = p.n.server->tcp_stats();
  CHECK(st.spliced_bytes == 2 * c.request.size());
  CHECK(st.splice_copied_bytes == 0);
  CHECK(p.backend(0).st.connects_ok == 1);
  CHECK(p.backend(0).st.bytes_out == c.request.size());
  CHECK(p.backend(0).st.bytes_in == c.request.size());
  p.run(5000);
  p.no_leaks();
}

TEST_CASE("proxy: a client half-close reaches the backend after the bytes; the echo comes back whole",
          "[proxy][e2e]") {
  ProxyNet p("web=198.18.0.1:9001,check=none");
  apps::Echo echo;
  REQUIRE(p.n.client->add_listener(kClientIp, 9001, &echo));
  HalfCloser c;
  c.request = pattern(300000, 22);
  REQUIRE(p.n.open(c, 41001, kProxyPort));
  p.run(30000);
  INFO("got " << c.got.size() << " sent " << c.sent << " of " << c.request.size());
  for (auto* st : {p.n.server.get(), p.n.client.get()})
    for (auto& f : st->dump_flows(10)) INFO(tcp::to_string(f.state) << " " << f.key.lport << "->" << f.key.rport);
  CHECK(c.got == c.request);
  CHECK(c.peer_closed);  // the backend's FIN came across after its echo
  p.run(5000);
  p.no_leaks();
}

TEST_CASE("proxy: the client is accepted before the backend answers; its bytes wait", "[proxy][e2e]") {
  ProxyNet p("web=198.18.0.1:9001,check=none,connect-timeout-ms=5000");
  apps::Echo echo;
  REQUIRE(p.n.client->add_listener(kClientIp, 9001, &echo));
  // The backend's first SYN-ACK is lost: the backend connects a second later.
  int synacks = 0;
  p.n.drop_if = [&](const Pkt& k) { return k.h.syn() && k.h.has_ack() && k.h.src_port == 9001 && synacks++ == 0; };
  Client c;
  c.request = "hello before the backend";
  c.close_after = c.request.size();
  REQUIRE(p.n.open(c, 41002, kProxyPort));
  p.n.run(p.n.now + 200);
  CHECK(c.opened);  // ESTABLISHED with the proxy while the backend is still SYN-SENT
  CHECK(p.n.server->tcp_stats().states[size_t(TcpState::SynSent)] == 1);
  p.run(10000);
  CHECK(c.got == c.request);
  p.run(5000);
  p.no_leaks();
}

TEST_CASE("proxy: a refused backend is retried on the next one; all refused: RST, or 503 in mode=http",
          "[proxy][e2e]") {
  SECTION("retry") {
    ProxyNet p("web=198.18.0.1:9009,198.18.0.1:9001,balance=wrr,check=none");
    apps::Echo echo;
    REQUIRE(p.n.client->add_listener(kClientIp, 9001, &echo));  // 9009: nobody listens (RST)
    Client c;
    c.request = "retry me";
    c.close_after = c.request.size();
    REQUIRE(p.n.open(c, 41003, kProxyPort));
    p.run(10000);
    CHECK(c.got == c.request);
    CHECK(p.backend(0).st.connect_refused == 1);
    CHECK(p.backend(1).st.connects_ok == 1);
    CHECK(p.bal.pool(0).c.connect_retries == 1);
    p.run(5000);
    p.no_leaks();
  }
  SECTION("rst") {
    ProxyNet p("web=198.18.0.1:9009,198.18.0.1:9008,check=none,retries=2");
    Client c;
    c.request = "nobody home";
    REQUIRE(p.n.open(c, 41004, kProxyPort));
    p.run(10000);
    CHECK(c.reset);
    CHECK(p.bal.pool(0).c.client_resets_sent == 1);
    CHECK(p.backend(0).st.connects_failed + p.backend(1).st.connects_failed == 3);  // 1 + 2 retries
    p.run(5000);
    p.no_leaks();
  }
  SECTION("503") {
    ProxyNet p("web=198.18.0.1:9009,check=none,retries=0,mode=http");
    Client c;
    c.request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    REQUIRE(p.n.open(c, 41005, kProxyPort));
    p.run(10000);
    CHECK(c.got.rfind("HTTP/1.1 503 ", 0) == 0);
    CHECK(c.peer_closed);
    CHECK(p.bal.pool(0).c.http_503_sent == 1);
    p.run(5000);
    p.no_leaks();
  }
}

TEST_CASE("proxy: a backend that never answers times out (connect-timeout-ms) and is retried",
          "[proxy][e2e]") {
  ProxyNet p("web=198.18.0.1:9010,198.18.0.1:9001,balance=wrr,check=none,connect-timeout-ms=700");
  apps::Echo echo;
  REQUIRE(p.n.client->add_listener(kClientIp, 9001, &echo));
  p.n.drop_if = [](const Pkt& k) { return k.h.dst_port == 9010; };  // a black hole
  Client c;
  c.request = "are you there";
  c.close_after = c.request.size();
  REQUIRE(p.n.open(c, 41006, kProxyPort));
  uint64_t t0 = p.n.now;
  p.run(600);
  CHECK(c.got.empty());
  p.run(5000);
  CHECK(c.got == c.request);
  CHECK(p.backend(0).st.connect_timeouts == 1);
  CHECK(p.n.server->tcp_stats().timeout_syn_sent == 1);
  CHECK(p.n.now - t0 >= 700);
  p.run(5000);
  p.no_leaks();
}

TEST_CASE("proxy: a backend that does not read holds the proxy's memory at its bound", "[proxy][e2e]") {
  ProxyNet p("web=198.18.0.1:9001,check=none");
  Stall stall;
  REQUIRE(p.n.client->add_listener(kClientIp, 9001, &stall));
  Client c;
  c.request = pattern(8 << 20, 23);  // 8 MiB into a backend that reads nothing
  REQUIRE(p.n.open(c, 41007, kProxyPort));
  uint32_t high = 0;
  for (int i = 0; i < 40; i++) {
    p.run(250);
    high = std::max(high, p.n.server->chunks().in_use());
  }
  const auto& cfg = p.n.cfg.tcp;
  // The client side's receive queue and the backend side's send queue, in
  // chunks, plus a seam chunk: the bound of one direction.
  uint32_t bound = (cfg.rcv_buf + cfg.snd_buf) / tcp::ChunkPool::kChunk + 2;
  INFO("high water " << high << " chunks, bound " << bound);
  CHECK(high <= bound);
  CHECK(high >= bound / 2);  // it did fill up: the windows closed, nothing was dropped
  CHECK(c.sent < c.request.size());
  CHECK(p.n.server->tcp_stats().rcv_buf_full + p.n.server->tcp_stats().ooo_dropped == 0);
}

TEST_CASE("proxy: an RST from either side arrives on the other", "[proxy][e2e]") {
  SECTION("backend resets") {
    ProxyNet p("web=198.18.0.1:9001,check=none");
    Resetter r;
    REQUIRE(p.n.client->add_listener(kClientIp, 9001, &r));
    Client c;
    c.request = "provoke";
    REQUIRE(p.n.open(c, 41008, kProxyPort));
    p.run(5000);
    CHECK(c.reset);
    CHECK(p.bal.pool(0).c.client_resets_sent == 1);
    p.run(5000);
    p.no_leaks();
  }
  SECTION("client resets") {
    ProxyNet p("web=198.18.0.1:9001,check=none");
    Stall stall;
    REQUIRE(p.n.client->add_listener(kClientIp, 9001, &stall));
    Client c;
    c.request = "then go away";
    REQUIRE(p.n.open(c, 41009, kProxyPort));
    p.run(2000);
    REQUIRE(p.n.client->flows() == 2);  // the client, and the backend's side of the proxy's connection
    // The client aborts (from outside a callback: an event of its own).
    flow::FlowKey4 key{kClientIp, kServerIp, 41009, kProxyPort};
    bool done = false;
    for (uint32_t i = 0; i < p.n.client->config().max_flows && !done; i++) {
      if (!p.n.client->live(p.n.client->ref_of(i))) continue;
      if (p.n.client->flow_at(i).key == key)
        done = p.n.client->act(p.n.client->ref_of(i), [](stack::Stream& s) { s.abort(); });
    }
    REQUIRE(done);
    p.run(5000);
    CHECK(p.bal.pool(0).c.backend_resets_sent == 1);
    CHECK(p.n.client->tcp_stats().resets_in == 1);  // the backend got the RST the proxy carried over
    p.run(5000);
    p.no_leaks();
  }
}

TEST_CASE("proxy: PROXY v1 and v2 go first on the backend connection", "[proxy][e2e][pp]") {
  for (const char* v : {"v1", "v2"}) {
    ProxyNet p(std::string("web=198.18.0.1:9001,check=none,proxy-protocol=") + v);
    apps::Echo echo;
    REQUIRE(p.n.client->add_listener(kClientIp, 9001, &echo));
    Client c;
    c.request = "payload";
    c.close_after = 7;
    REQUIRE(p.n.open(c, 41010, kProxyPort));
    p.run(5000);
    lb::ProxyAddrs a;
    int ver = 0;
    bool local;
    long n = lb::parse_proxy({reinterpret_cast<const uint8_t*>(c.got.data()), c.got.size()}, a, ver, local);
    INFO(v);
    REQUIRE(n > 0);
    CHECK(ver == (v[1] == '1' ? 1 : 2));
    CHECK(a.src == kClientIp);
    CHECK(a.sport == 41010);
    CHECK(a.dst == kServerIp);
    CHECK(a.dport == kProxyPort);
    CHECK(c.got.substr(size_t(n), 7) == "payload");  // the echo of header + payload
  }
}

TEST_CASE("proxy protocol: TCP6 and AF_INET6 carry an IPv6 client", "[proxy][pp][ipv6]") {
  uint8_t buf[lb::kProxyV1Max];
  lb::ProxyAddrs a, got;
  a.v6 = true;
  REQUIRE(wire::parse_ip6("2001:db8::1", a.src6));
  REQUIRE(wire::parse_ip6("2001:db8::2", a.dst6));
  a.sport = 56324;
  a.dport = 443;
  int ver;
  bool local;
  size_t n = lb::build_proxy_v1(a, buf);
  CHECK(std::string(reinterpret_cast<char*>(buf), n) == "PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n");
  REQUIRE(lb::parse_proxy({buf, n}, got, ver, local) == long(n));
  CHECK((got.v6 && got.src6 == a.src6 && got.dst6 == a.dst6 && got.sport == 56324 && got.dport == 443));
  // The longest TCP6 line (the specification, 2.1: 104 bytes) fits.
  lb::ProxyAddrs max;
  max.v6 = true;
  max.src6.fill(0xff);
  max.dst6.fill(0xff);
  max.sport = max.dport = 65535;
  CHECK(lb::build_proxy_v1(max, buf) == 104);
  n = lb::build_proxy_v2(a, buf);
  CHECK(n == lb::kProxyV2Len6);
  CHECK((buf[12] == 0x21 && buf[13] == 0x21 && buf[14] == 0 && buf[15] == 36));
  REQUIRE(lb::parse_proxy({buf, n}, got, ver, local) == 52);
  CHECK((ver == 2 && got.v6 && got.src6 == a.src6 && got.dst6 == a.dst6 && got.sport == 56324 && got.dport == 443));
  const char* bad = "PROXY TCP6 2001:db8::1 1.2.3.4 1 2\r\n";
  CHECK(lb::parse_proxy({reinterpret_cast<const uint8_t*>(bad), std::strlen(bad)}, got, ver, local) == -1);
  lb::PoolConf pc;
  REQUIRE_FALSE(lb::parse_pool("v6=[2001:2::10]:80,weight=2,198.18.0.10:80,[2001:2::11]:8080", pc));
  REQUIRE(pc.backends.size() == 3);
  CHECK((pc.backends[0].v6 && pc.backends[0].weight == 2 && pc.backends[0].endpoint() == "[2001:2::10]:80"));
  CHECK(pc.backends[1].endpoint() == "198.18.0.10:80");
  CHECK(pc.backends[2].port == 8080);
  for (const char* x : {"v6=[2001:2::10]", "v6=[2001:2::10:80", "v6=[::1]:80", "v6=[fe80::1]:80",
                        "v6=[2001:2::10]:80,[2001:2::10]:80", "v6=[ff02::1]:80"}) {
    lb::PoolConf y;
    INFO(x);
    CHECK(lb::parse_pool(x, y).has_value());
  }
}

TEST_CASE("proxy across families: an IPv6 client to an IPv4 backend and the reverse, PROXY headers in the client's family",
          "[proxy][e2e][pp][ipv6]") {
  for (const char* v : {"v1", "v2"}) {
    // IPv6 client -> IPv4 backend.
    ProxyNet p(std::string("web=198.18.0.1:9001,check=none,proxy-protocol=") + v);
    apps::Echo echo;
    REQUIRE(p.n.client->add_listener(kClientIp, 9001, &echo));
    Client c;
    c.request = pattern(100000, 3);
    c.close_after = 0;
    REQUIRE(p.n.open6(c, 41020, kProxyPort));
    p.run(5000);
    lb::ProxyAddrs a;
    int ver = 0;
    bool local;
    long n = lb::parse_proxy({reinterpret_cast<const uint8_t*>(c.got.data()), c.got.size()}, a, ver, local);
    INFO(v);
    REQUIRE(n > 0);
    CHECK(a.v6);
    CHECK(a.src6 == kClient6);
    CHECK(a.dst6 == kServer6);
    CHECK(a.sport == 41020);
    CHECK(a.dport == kProxyPort);
    CHECK(c.got.substr(size_t(n)) == c.request);
  }
  // IPv4 client -> IPv6 backend (and an IPv6 client to it too).
  ProxyNet p("web=[2001:2::1]:9001,check=tcp,interval=100,rise=1,proxy-protocol=v2");
  apps::Echo echo;
  REQUIRE(p.n.client->add_listener6(kClient6, 9001, &echo));
  p.run(500);  // a health check over IPv6
  CHECK(p.backend(0).st.checks_ok >= 1);
  Client c4, c6;
  c4.request = "four";
  c6.request = "six!";
  REQUIRE(p.n.open(c4, 41030, kProxyPort));
  REQUIRE(p.n.open6(c6, 41031, kProxyPort));
  p.run(5000);
  lb::ProxyAddrs a;
  int ver = 0;
  bool local;
  long n = lb::parse_proxy({reinterpret_cast<const uint8_t*>(c4.got.data()), c4.got.size()}, a, ver, local);
  REQUIRE(n == long(lb::kProxyV2Len));
  CHECK((!a.v6 && a.src == kClientIp && a.sport == 41030));
  CHECK(c4.got.substr(size_t(n)) == "four");
  n = lb::parse_proxy({reinterpret_cast<const uint8_t*>(c6.got.data()), c6.got.size()}, a, ver, local);
  REQUIRE(n == long(lb::kProxyV2Len6));
  CHECK((a.v6 && a.src6 == kClient6 && a.sport == 41031));
  CHECK(c6.got.substr(size_t(n)) == "six!");
  CHECK(p.backend(0).st.connects_ok >= 2);
}

TEST_CASE("proxy: health checks take a dead backend out of the table and bring it back", "[proxy][health]") {
  ProxyNet p("web=198.18.0.1:9001,198.18.0.1:9002,check=tcp,interval=200,rise=2,fall=2");
  apps::Echo e1, e2;
  REQUIRE(p.n.client->add_listener(kClientIp, 9001, &e1));
  REQUIRE(p.n.client->add_listener(kClientIp, 9002, &e2));
  p.run(1000);
  CHECK(p.backend(0).healthy);
  CHECK(p.backend(1).healthy);
  CHECK(p.backend(1).st.checks_ok >= 2);
  p.n.client->remove_listener(kClientIp, 9002);  // backend 2 dies (its port refuses)
  p.run(1000);
  CHECK_FALSE(p.backend(1).healthy);
  CHECK(p.backend(1).st.marked_down == 1);
  // Every new client now lands on backend 1.
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < 20; i++) {
    cs.push_back(std::make_unique<Client>());
    cs.back()->request = "x";
    cs.back()->close_after = 1;
    REQUIRE(p.n.open(*cs.back(), uint16_t(42000 + i), kProxyPort));
  }
  p.run(3000);
  for (auto& c : cs) CHECK(c->got == "x");
  CHECK(p.backend(0).st.connects_ok == 20);
  REQUIRE(p.n.client->add_listener(kClientIp, 9002, &e2));  // back
  p.run(1000);
  CHECK(p.backend(1).healthy);
  CHECK(p.backend(1).st.marked_up == 1);
  p.run(5000);
}

TEST_CASE("proxy: drain and delete keep existing flows, new ones go elsewhere", "[proxy][pool]") {
  ProxyNet p("web=198.18.0.1:9001,198.18.0.1:9002,check=none");
  apps::Echo e1, e2;
  REQUIRE(p.n.client->add_listener(kClientIp, 9001, &e1));
  REQUIRE(p.n.client->add_listener(kClientIp, 9002, &e2));
  std::string err;
  REQUIRE(p.bal.drain_backend("web", lb::BackendConf{kClientIp, 9002}, err));
  std::vector<std::unique_ptr<Client>> cs;
  for (int i = 0; i < 20; i++) {
    cs.push_back(std::make_unique<Client>());
    cs.back()->request = "y";
    cs.back()->close_after = 1;
    REQUIRE(p.n.open(*cs.back(), uint16_t(43000 + i), kProxyPort));
  }
  p.run(3000);
  CHECK(p.backend(0).st.connects_ok == 20);
  CHECK(p.backend(1).st.connects_ok == 0);
  CHECK(p.backend(1).state() == lb::BackendState::Drain);
  REQUIRE(p.bal.add_backend("web", lb::BackendConf{kClientIp, 9002, 1}, err));  // undrained
  REQUIRE(p.bal.del_backend("web", lb::BackendConf{kClientIp, 9001}, err));
  CHECK_FALSE(p.bal.del_backend("web", lb::BackendConf{kClientIp, 9001}, err));
  CHECK(err.find("no backend") != std::string::npos);
  Client c;
  c.request = "z";
  c.close_after = 1;
  REQUIRE(p.n.open(c, 43100, kProxyPort));
  p.run(3000);
  CHECK(c.got == "z");
  CHECK(p.backend(1).st.connects_ok == 1);
}

TEST_CASE("proxy: a backend that goes down is never chosen while the new Maglev table is built in steps",
          "[proxy][maglev][pool]") {
  ProxyNet p("web=198.18.0.1:9001,198.18.0.1:9002,198.18.0.1:9003,check=none,table=655373");
  lb::Pool& pool = p.bal.pool(0);
  uint32_t slot = 0;
  REQUIRE(p.bal.select(pool, 1, 1, -1, slot) >= 0);  // the first table, built at once
  REQUIRE_FALSE(pool.maglev.building());
  std::string err;
  REQUIRE(p.bal.drain_backend("web", lb::BackendConf{kClientIp, 9002}, err));
  std::map<int, int> chosen;
  for (uint32_t c = 0; c < 3000; c++) chosen[p.bal.select(pool, 0xC6130000 + c, uint16_t(c), -1, slot)]++;
  CHECK(pool.maglev.building());  // the new table is not there yet: the old one served
  CHECK(chosen.count(1) == 0);    // ...but never with the drained backend
  CHECK(chosen.count(-1) == 0);
  CHECK(chosen[0] > 1000);
  CHECK(chosen[2] > 1000);
  int ticks = 0;
  while (pool.maglev.building()) {
    p.bal.tick(*p.n.server, p.n.now);
    ticks++;
  }
  // 655 373 slots, some 9 M probes, 16 384 a tick.
  CHECK(ticks > 100);
  for (int32_t v : pool.maglev.table()) {
    if (v == 1) {
      FAIL("the drained backend is still in the new table");
      break;
    }
  }
  // The whole set changed at once (no backend of the current table is
  // eligible): the new table is finished there and then, no client refused.
  REQUIRE(p.bal.add_backend("web", lb::BackendConf{kClientIp, 9002, 1}, err));  // undrained
  REQUIRE(p.bal.del_backend("web", lb::BackendConf{kClientIp, 9001}, err));
  REQUIRE(p.bal.del_backend("web", lb::BackendConf{kClientIp, 9003}, err));
  CHECK(p.bal.select(pool, 7, 7, -1, slot) == 1);
  CHECK_FALSE(pool.maglev.building());
}
