// libFuzzer target: the proxy between two hostile peers.  The input is a
// program run against one Stack with a proxy listener and a pool of two
// backends, and an http listener beside it (whose whole responses are lent
// to the send queue, tcp::send_lent): segments from four proxy clients, two
// http clients (their text a run of valid requests, cut anywhere) and from
// the backends (with sequence
// numbers near those the stack last used, so that they land in windows),
// clock jumps (timers, connect timeouts, health checks), and pool changes.
// After every step the stack's invariants must hold (every flow has a timer,
// table and pools agree, gauges recount); at the end, once every flow is
// freed, no buffer chunk may be left (splice seams included).
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <tuple>
#include <vector>
#include <cstring>

#include "apps/apps.h"
#include "lb/balancer.h"
#include "lb/proxy.h"
#include "stack/stack.h"

using namespace tcpterm;

namespace {
constexpr uint32_t kVip = 0xC6120002, kClient = 0xC6130001, kB1 = 0xC612000B, kB2 = 0xC612000C;

struct Reader {
  const uint8_t* p;
  size_t n;
  uint8_t u8() {
    if (!n) return 0;
    n--;
    return *p++;
  }
  uint16_t u16() { return uint16_t(u8() << 8 | u8()); }
  uint32_t u32() { return uint32_t(u16()) << 16 | u16(); }
};

// What the stack last said on each 4-tuple (seen from the peer): the next
// sequence number it will send and the one it expects.
struct Seen {
  uint32_t our_next = 0, their_next = 0;
};

struct KeyLess {
  bool operator()(const flow::FlowKey4& a, const flow::FlowKey4& b) const {
    return std::tie(a.laddr, a.raddr, a.lport, a.rport) < std::tie(b.laddr, b.raddr, b.lport, b.rport);
  }
};

struct Sink : stack::TxSink {
  std::map<flow::FlowKey4, Seen, KeyLess> seen;
  std::vector<flow::FlowKey4> to_backends;  // recent tuples towards a backend
  void tcp_out(const flow::FlowKey4& k, uint32_t, const wire::TcpRepr& h, const stack::Payload& p) override {
    Seen& s = seen[k];
    s.our_next = h.seq + p.len + (h.syn() ? 1 : 0) + (h.fin() ? 1 : 0);
    if (h.has_ack()) s.their_next = h.ack;
    if ((k.raddr == kB1 || k.raddr == kB2) && (to_backends.empty() || !(to_backends.back() == k))) {
      to_backends.push_back(k);
      if (to_backends.size() > 8) to_backends.erase(to_backends.begin());
    }
    if (seen.size() > 4096) seen.clear();  // bounded
  }
};

const uint8_t kText[1500] = {'y'};
// Pipelined requests, some closing: what an http client sends, cut anywhere.
const std::string kRequests = [] {
  std::string r;
  for (int i = 0; r.size() < 1500; i++)
    r += i % 3 != 2 ? "GET / HTTP/1.1\r\nHost: f\r\n\r\n" : "GET /x HTTP/1.1\r\nConnection: close\r\n\r\n";
  return r;
}();
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r{data, size};
  stack::StackConfig cfg;
  cfg.max_flows = 64;
  cfg.max_time_wait = 64;
  cfg.chunks = 256;
  cfg.ooo_states = 8;
  cfg.syncookies = r.u8() & 1 ? stack::SynCookieMode::Auto : stack::SynCookieMode::Off;
  cfg.tcp.rcv_buf = 4096u << (r.u8() % 6);
  cfg.tcp.snd_buf = 4096u << (r.u8() % 6);
  cfg.rng = [](void* p, size_t n) { std::memset(p, 0x5a, n); };  // reproducible
  Sink sink;
  uint64_t now = 1000;
  stack::Stack s(cfg, sink, now);
  lb::Balancer bal(lb::Balancer::Edge{[](uint32_t) { return kVip; }, nullptr});
  lb::PoolConf pc;
  std::string spec = "p=198.18.0.11:80,198.18.0.12:80,connect-timeout-ms=300,interval=500,retries=1";
  uint8_t mode = r.u8();
  if (mode & 1) spec += ",proxy-protocol=v2";
  if (mode & 2) spec += ",mode=http";
  if (mode & 4) spec += ",balance=leastconn";
  if (mode & 8) spec += ",check=http";
  if (lb::parse_pool(spec, pc)) std::abort();
  std::string err;
  bal.add_pool(pc, err);
  lb::Proxy proxy(bal, 0);
  s.add_listener(kVip, 80, &proxy);
  apps::Http http(r.u8() & 1 ? 64 : 3000);  // a response in one segment, or in three
  s.add_listener(kVip, 81, &http);

  while (r.n) {
    uint8_t op = r.u8() % 12;
    if (op < 6 || op >= 10) {
      // A segment: from a proxy client (0-3), from a backend to one of the
      // stack's backend-side tuples (4-5), or from an http client (10-11).
      flow::FlowKey4 k;
      const bool to_http = op >= 10;
      if (to_http) {
        k = flow::FlowKey4{kVip, kClient + 2, 81, uint16_t(41000 + (op & 1))};
      } else if (op < 4) {
        k = flow::FlowKey4{kVip, kClient + (op & 1), 80, uint16_t(40000 + (op >> 1))};
      } else {
        // One of the recent tuples towards a backend, if any.
        if (sink.to_backends.empty()) continue;
        k = sink.to_backends[r.u8() % sink.to_backends.size()];
      }
      const Seen& sn = sink.seen[k];
      wire::Ipv4Repr ip;
      ip.src = k.raddr;
      ip.dst = k.laddr;
      ip.proto = wire::kProtoTcp;
      wire::TcpRepr h;
      h.src_port = k.rport;
      h.dst_port = k.lport;
      uint8_t fl = r.u8();
      if ((fl & wire::flag::SYN) && (fl & (wire::flag::FIN | wire::flag::RST))) fl &= uint8_t(~wire::flag::SYN);
      h.flags = fl;
      int16_t ds = int16_t(r.u16()), da = int16_t(r.u16());
      h.seq = (r.u8() & 1 ? sn.their_next : r.u32()) + uint32_t(ds % 64);
      h.ack = sn.our_next + uint32_t(da % 64);
      h.window = r.u16();
      h.opt.mss = r.u8() & 1 ? r.u16() : 0;
      h.opt.has_ts = r.u8() & 1;
      h.opt.ts_val = r.u32();
      h.opt.ts_ecr = r.u32();
      size_t len = r.u8() % 4 == 0 ? r.u16() % sizeof kText : 0;
      h.payload = to_http ? std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(kRequests.data()), len)
                          : std::span<const uint8_t>(kText, len);
      s.input(ip, h);
    } else if (op < 8) {
      now += r.u16() % 5000;
      s.advance(now);
      bal.tick(s, now);
    } else {
      uint8_t c = r.u8();
      uint32_t addr = c & 1 ? kB1 : kB2;
      if (c & 2) bal.drain_backend("p", lb::BackendConf{addr, 80}, err);
      else if (c & 4) bal.del_backend("p", lb::BackendConf{addr, 80}, err);
      else bal.add_backend("p", lb::BackendConf{addr, 80, uint32_t(1 + (c >> 4))}, err);
    }
    if (!s.check_invariants()) std::abort();
  }
  s.clear_all();
  if (s.chunks().in_use() != 0) std::abort();  // every chunk back, seams included
  return 0;
}
