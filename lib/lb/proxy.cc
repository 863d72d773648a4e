#include "lb/proxy.h"

#include <cstring>
#include <string_view>

#include "lb/proxy_protocol.h"
#include "wire/wire.h"

namespace tcpterm::lb {

using stack::FlowRef;
using stack::Stream;

namespace {
constexpr uint64_t kNoFlow = 0xffffffff00000000ull;  // FlowRef{}.pack()
FlowRef peer_of(Stream& s) { return FlowRef::unpack(s.app().a); }
// The client's address as the balancer hashes it: an IPv6 key holds an id
// that may differ between connections from one client, so fold the
// address itself.
uint32_t client_addr_key(Stream& c) {
  const flow::FlowKey4& k = c.key();
  return flow::is_v6(k) ? fold_ip6(c.stack().addr6(k.raddr)) : k.raddr;
}
constexpr std::string_view k503 =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 20\r\n"
    "Connection: close\r\n\r\nno backend answered\n";
}  // namespace

Backend* Proxy::backend_of(Stream& s) {
  uint32_t b = s.app().b;
  Pool& p = bal_.pool(int(b >> 16));
  size_t i = b & 0xffff;
  return i < p.backends.size() ? &p.backends[i] : nullptr;
}

// ----------------------------------------------------------- client side ---
void Proxy::on_open(Stream& s) {
  if (s.app().kind == kBackend) {
    // The backend answered: PROXY header first, then what the client sent.
    s.app().flags |= kOpen;
    Backend* b = backend_of(s);
    Pool& p = bal_.pool(pool_);
    if (b) bal_.connect_ok(p, *b);
    Stream c = s.other(peer_of(s));
    if (!c.alive()) {
      s.abort();
      return;
    }
    if (p.conf.proxy_protocol != ProxyProto::Off) {
      ProxyAddrs pa{c.key().raddr, c.key().laddr, c.key().rport, c.key().lport};
      if (flow::is_v6(c.key())) {  // the client's own family, whatever the backend's
        pa.v6 = true;
        pa.src6 = c.stack().addr6(c.key().raddr);
        pa.dst6 = c.stack().addr6(c.key().laddr);
      }
      uint8_t hdr[kProxyV1Max];
      size_t n = p.conf.proxy_protocol == ProxyProto::V1 ? build_proxy_v1(pa, hdr) : build_proxy_v2(pa, hdr);
      if (!s.send_before_splice({hdr, n})) {  // an empty send queue: fails only if the pool is dry
        s.abort();
        c.abort();
        return;
      }
    }
    relay(c, s);
    return;
  }
  // A client connection: ESTABLISHED before any backend is asked.
  s.app().kind = kClient;
  s.app().a = kNoFlow;
  s.app().c = 0;
  bal_.pool(pool_).c.proxied++;
  connect_backend(s, -1);
}

void Proxy::connect_backend(Stream& c, int avoid) {
  Pool& p = bal_.pool(pool_);
  uint32_t slot = c.app().b;  // the ring position of the previous attempt (retries)
  int bi = bal_.select(p, client_addr_key(c), c.key().rport, avoid, slot);
  if (bi < 0) {
    p.c.no_backend++;
    give_up(c);
    return;
  }
  Backend& b = p.backends[size_t(bi)];
  c.app().c++;
  flow::FlowKey4 key;
  if (!bal_.source_tuple(c.stack(), p, b, key)) {  // counted: backend_no_source_port
    give_up(c);
    return;
  }
  FlowRef r = c.connect(key, this, p.conf.connect_timeout_ms);
  if (flow::is_v6(key)) c.stack().release_key6(key);  // the flow holds its own
  if (!r.valid()) {  // the flow table is full
    bal_.connect_failed(p, b, false);
    give_up(c);
    return;
  }
  Stream be = c.other(r);
  be.app().kind = kBackend;
  be.app().a = c.ref().pack();
  be.app().b = uint32_t(pool_) << 16 | uint32_t(bi);
  be.app().flags = kCounted;
  b.st.active++;
  c.app().a = r.pack();
  // Client side: b keeps the Maglev slot (for the next retry); the backend
  // index lives on the backend flow.
  c.app().b = p.conf.balance == Balance::Maglev ? slot : uint32_t(bi);
}

void Proxy::give_up(Stream& c) {
  Pool& p = bal_.pool(pool_);
  c.app().a = kNoFlow;
  if (p.conf.mode == Mode::Http && c.can_send()) {
    c.consume(c.readable());
    c.send({reinterpret_cast<const uint8_t*>(k503.data()), k503.size()});
    c.close();
    p.c.http_503_sent++;
  } else {
    c.abort();
    p.c.client_resets_sent++;
  }
}

// -------------------------------------------------------------- the relay ---
void Proxy::relay(Stream& from, Stream& to) {
  // `from` may be ending gracefully (its last bytes are still readable).
  if (!from.valid() || !to.alive()) return;
  // `to` must be open for data: a backend in SYN-SENT is not yet.
  size_t n = to.can_send() ? from.splice_to(to, ~size_t(0)) : 0;
  if (n) {
    Stream& be = from.app().kind == kBackend ? from : to;
    if (Backend* b = backend_of(be)) (&from == &be ? b->st.bytes_in : b->st.bytes_out) += n;
  }
  // The FIN follows the last byte.
  uint8_t& f = from.app().flags;
  if ((f & kFinIn) && !(f & kFinRelayed) && from.readable() == 0 && to.can_send()) {
    to.shutdown();
    f |= kFinRelayed;
  }
}

void Proxy::on_data(Stream& s) {
  Stream o = s.other(peer_of(s));
  relay(s, o);
}

void Proxy::on_peer_close(Stream& s) {
  s.app().flags |= kFinIn;
  Stream o = s.other(peer_of(s));
  relay(s, o);
}

void Proxy::on_writable(Stream& s) {
  // Room on this side: pull from the other one.
  Stream o = s.other(peer_of(s));
  relay(o, s);
}

// ------------------------------------------------------------- endings ---
void Proxy::on_reset(Stream& s) {
  Stream o = s.other(peer_of(s));
  if (s.app().kind == kBackend && !(s.app().flags & kOpen)) {
    // The backend refused or did not answer in time: try the next one.
    Pool& p = bal_.pool(pool_);
    Backend* b = backend_of(s);
    if (b) bal_.connect_failed(p, *b, s.timed_out());
    s.app().a = kNoFlow;
    if (!o.alive()) return;
    if (o.app().c <= p.conf.retries) {
      p.c.connect_retries++;
      connect_backend(o, int(s.app().b & 0xffff));
    } else {
      give_up(o);
    }
    return;
  }
  // An RST (or a timeout) on one side: the other side is reset too.
  if (o.alive()) {
    o.app().a = kNoFlow;
    o.abort();
    Pool& p = bal_.pool(pool_);
    (s.app().kind == kBackend ? p.c.client_resets_sent : p.c.backend_resets_sent)++;
  }
  s.app().a = kNoFlow;
}

void Proxy::on_closed(Stream& s) {
  if (s.app().kind == kBackend && (s.app().flags & kCounted)) {
    s.app().flags &= uint8_t(~kCounted);
    if (Backend* b = backend_of(s)) b->st.active--;
  }
  Stream o = s.other(peer_of(s));
  s.app().a = kNoFlow;
  if (!o.alive()) return;
  // This side ended.  If both directions were complete (each FIN carried
  // across), the other side finishes its own close; otherwise (an idle
  // timeout, a close with data unread) it is reset.
  bool mine_done = (s.app().flags & kFinRelayed) != 0;
  bool theirs_done = (o.app().flags & kFinRelayed) != 0;
  o.app().a = kNoFlow;
  if (!(mine_done && theirs_done)) {
    o.abort();
    Pool& p = bal_.pool(pool_);
    (s.app().kind == kBackend ? p.c.client_resets_sent : p.c.backend_resets_sent)++;
  }
}

// ------------------------------------------------------- health checks ---
void HealthChecker::decide(Stream& s, bool ok) {
  if (s.app().flags & kDecided) return;
  s.app().flags |= kDecided;
  bal_.check_result(int(s.app().a >> 32), int(uint32_t(s.app().a)), ok);
}

void HealthChecker::on_open(Stream& s) {
  if (s.app().kind != uint8_t(Check::Http)) {
    decide(s, true);  // check=tcp: the handshake is the answer
    s.abort();        // RST: a check leaves no FIN-WAIT or TIME-WAIT on either side (as HAProxy's)
    return;
  }
  const PoolConf& pc = bal_.pool(int(s.app().a >> 32)).conf;
  std::string host = flow::is_v6(s.key()) ? "[" + wire::ip6_to_string(s.stack().addr6(s.key().raddr)) + "]"
                                           : wire::ip_to_string(s.key().raddr);
  std::string req = "GET " + pc.check_path + " HTTP/1.0\r\nHost: " + host +
                    "\r\nUser-Agent: tcpterm-check\r\nConnection: close\r\n\r\n";
  s.send({reinterpret_cast<const uint8_t*>(req.data()), req.size()});
}

void HealthChecker::on_data(Stream& s) {
  if (!(s.app().flags & kDecided)) {
    uint8_t buf[16];
    size_t n = s.peek(buf, sizeof buf);
    if (n < 12) return;  // "HTTP/1.x NNN"
    std::string_view line(reinterpret_cast<const char*>(buf), n);
    bool ok = line.substr(0, 7) == "HTTP/1." && line[8] == ' ' &&
              line.substr(9, 3) == std::to_string(bal_.pool(int(s.app().a >> 32)).conf.check_expect);
    decide(s, ok);
    s.abort();
    return;
  }
  s.consume(s.readable());
}

void HealthChecker::on_peer_close(Stream& s) {
  decide(s, false);  // closed before a status line
  s.abort();
}

void HealthChecker::on_closed(Stream& s) { decide(s, false); }

}  // namespace tcpterm::lb
