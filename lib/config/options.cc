#include "config/options.h"

#include <charconv>
#include <cstring>
#include <fstream>

#include "wire/wire.h"

namespace tcpterm::config {

namespace {

constexpr uint64_t kMaxMsl = kMaxMslMs;

using wire::parse_num;

// A numeric option writes straight into the field it configures.
struct NumOpt {
  const char* name;
  bool (*set)(Options&, std::string_view);
  const char* what;
};
template <class T>
bool set_num(T& field, std::string_view v, uint64_t lo, uint64_t hi) {
  return parse_num(v, field, lo, hi);
}

const NumOpt kNumOpts[] = {
    {"--msl-ms", [](Options& o, std::string_view v) { return set_num(o.stack.tcp.msl_ms, v, 1, kMaxMsl); },
     "milliseconds, 1..3600000"},
    {"--fin-wait-2-timeout-ms",
     [](Options& o, std::string_view v) { return set_num(o.stack.tcp.fin_wait_2_timeout_ms, v, 1, kMaxTimeoutMs); },
     "milliseconds, 1..86400000"},
    {"--idle-timeout-ms",
     [](Options& o, std::string_view v) { return set_num(o.stack.tcp.idle_timeout_ms, v, 0, kMaxTimeoutMs); },
     "milliseconds, 0 (disabled) ..86400000"},
    {"--max-flows", [](Options& o, std::string_view v) { return set_num(o.stack.max_flows, v, 1, 1u << 26); },
     "a flow count, 1..67108864"},
    {"--max-time-wait",
     [](Options& o, std::string_view v) {
       if (v == "auto") {
         o.stack.max_time_wait = 0;
         return true;
       }
       return set_num(o.stack.max_time_wait, v, 1, (1u << 27) - 1);
     },
     "auto or a record count, 1..134217727"},
    {"--buffer-chunks", [](Options& o, std::string_view v) { return set_num(o.stack.chunks, v, 16, 1u << 24); },
     "2 KiB chunks, 16..16777216"},
    {"--stats-period", [](Options& o, std::string_view v) { return set_num(o.stats_period_s, v, 1, 86400); },
     "seconds, 1..86400"},
    {"--orphan-retries",
     [](Options& o, std::string_view v) { return set_num(o.stack.tcp.orphan_retries, v, 1, 30); },
     "a retry count, 1..30"},
    {"--synack-retries",
     [](Options& o, std::string_view v) { return set_num(o.stack.tcp.synack_retries, v, 0, 30); },
     "a retry count, 0..30"},
    {"--syn-backlog", [](Options& o, std::string_view v) { return set_num(o.stack.syn_backlog, v, 1, 1u << 26); },
     "a count, 1..67108864"},
    {"--idle-sleep-us", [](Options& o, std::string_view v) { return set_num(o.idle_sleep_us, v, 0, 100000); },
     "microseconds, 0..100000"},
    {"--run-seconds", [](Options& o, std::string_view v) { return set_num(o.run_seconds, v, 0, 31536000); },
     "seconds"},
};

}  // namespace

// "[PORT@]REST": the port number (0 when absent) is taken off v.
static bool take_port(std::string_view& v, uint16_t& port) {
  size_t at = v.find('@');
  if (at == std::string_view::npos) return true;
  if (!parse_num(v.substr(0, at), port, 0, 1023)) return false;
  v.remove_prefix(at + 1);
  return true;
}

std::optional<std::string> parse_addr(const std::string& s, AddrSpec& out) {
  std::string_view v = s;
  if (!take_port(v, out.port)) return "bad port in '" + s + "'";
  size_t slash = v.find('/');
  if (slash == std::string_view::npos) return "'" + s + "' needs /PREFIX (e.g. 198.18.0.2/24)";
  std::string_view addrs = v.substr(0, slash);
  size_t dash = addrs.find('-');
  if (!wire::parse_ip(addrs.substr(0, dash), out.addr) || out.addr == 0)
    return "bad IPv4 address in '" + s + "'";
  out.last = out.addr;
  if (dash != std::string_view::npos &&
      (!wire::parse_ip(addrs.substr(dash + 1), out.last) || out.last < out.addr))
    return "bad address range in '" + s + "' (FIRST-LAST, FIRST <= LAST)";
  if (!parse_num(v.substr(slash + 1), out.prefix, 1, 32)) return "bad prefix in '" + s + "'";
  // 0/8, 127/8, multicast and 240/4 are never a host's address (and
  // 224/3 carries IPv6 address ids inside flow keys: flow/addr6.h).
  if (wire::martian_source(out.addr) || wire::martian_source(out.last))
    return "'" + s + "' is not a unicast host address";
  return std::nullopt;
}

std::optional<std::string> parse_addr6(const std::string& s, Addr6Spec& out) {
  std::string_view v = s;
  if (!take_port(v, out.port)) return "bad port in '" + s + "'";
  size_t slash = v.find('/');
  if (slash == std::string_view::npos) return "'" + s + "' needs /PREFIX (e.g. 2001:2::2/64)";
  std::string_view addrs = v.substr(0, slash);
  size_t dash = addrs.find('-');
  if (!wire::parse_ip6(addrs.substr(0, dash), out.addr) || wire::ip6_is_zero(out.addr) ||
      wire::ip6_martian_source(out.addr) || wire::ip6_is_link_local(out.addr))
    return "bad IPv6 address in '" + s + "' (a global unicast address, e.g. 2001:2::2)";
  out.last_lo = out.first_lo();
  if (dash != std::string_view::npos) {
    wire::Ip6 last;
    if (!wire::parse_ip6(addrs.substr(dash + 1), last) || std::memcmp(last.data(), out.addr.data(), 12) != 0 ||
        wire::load32(last.data() + 12) < out.first_lo())
      return "bad IPv6 address range in '" + s + "' (FIRST-LAST differing in the last 32 bits, FIRST <= LAST)";
    out.last_lo = wire::load32(last.data() + 12);
  }
  if (!parse_num(v.substr(slash + 1), out.prefix, 1, 128)) return "bad prefix in '" + s + "'";
  return std::nullopt;
}

// "[IPV6]:PORT" ending at `end`.
static std::optional<std::string> parse_endpoint6(const std::string& s, size_t end, bool allow_any,
                                                  wire::Ip6& addr, uint16_t& port) {
  std::string_view v = std::string_view(s).substr(0, end);
  size_t close = v.find(']');
  if (v.empty() || v[0] != '[' || close == std::string_view::npos || close + 1 >= v.size() || v[close + 1] != ':')
    return "'" + s + "' does not start with [IPV6]:PORT";
  if (!wire::parse_ip6(v.substr(1, close - 1), addr) || (!allow_any && wire::ip6_is_zero(addr)) ||
      (!wire::ip6_is_zero(addr) && wire::ip6_martian_source(addr)))
    return "bad IPv6 address in '" + s + "'";
  if (!parse_num(v.substr(close + 2), port, 1, 65535)) return "bad port in '" + s + "'";
  return std::nullopt;
}

// "IPV4:PORT" ending at `end` (the first character after the port).
static std::optional<std::string> parse_endpoint(const std::string& s, size_t end, bool allow_any,
                                          uint32_t& addr, uint16_t& port) {
  std::string_view v = std::string_view(s).substr(0, end);
  size_t colon = v.find(':');
  if (colon == std::string_view::npos) return "'" + s + "' does not start with IPV4:PORT";
  if (!wire::parse_ip(v.substr(0, colon), addr) || (!allow_any && addr == 0))
    return "bad IPv4 address in '" + s + "'";
  if (!parse_num(v.substr(colon + 1), port, 1, 65535)) return "bad port in '" + s + "'";
  return std::nullopt;
}

std::optional<std::string> parse_listen(const std::string& s, ListenSpec& out) {
  out.text = s;
  std::string_view v = s;
  size_t slash = v.find('/');
  if (!s.empty() && s[0] == '[') {
    // The address may hold no '/', so the application starts after "]:PORT".
    size_t close = v.find(']');
    slash = close == std::string_view::npos ? close : v.find('/', close);
    if (slash == std::string_view::npos) return "'" + s + "' is not [IPV6]:PORT/APP[,key=value...]";
    out.v6 = true;
    if (auto e = parse_endpoint6(s, slash, true, out.addr6, out.port)) return e;
  } else {
    if (slash == std::string_view::npos) return "'" + s + "' is not IPV4:PORT/APP[,key=value...]";
    if (auto e = parse_endpoint(s, slash, true, out.addr, out.port)) return e;
  }
  std::string_view rest = v.substr(slash + 1);
  size_t comma = rest.find(',');
  out.app = std::string(rest.substr(0, comma));
  while (comma != std::string_view::npos) {
    rest.remove_prefix(comma + 1);
    comma = rest.find(',');
    std::string_view kv = rest.substr(0, comma);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) return "bad key=value '" + std::string(kv) + "' in '" + s + "'";
    out.params[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  if (out.app == "proxy") {
    // The pool is checked against --pool once every option is read.
    if (out.params.size() != 1 || !out.params.count("pool"))
      return "the proxy takes one parameter, pool=NAME, in '" + s + "'";
    return std::nullopt;
  }
  std::string err;
  if (!apps::make_app(out.app, out.params, err)) return err + " in '" + s + "'";
  return std::nullopt;
}

std::optional<std::string> parse_connect(const std::string& s, ConnectSpec& out) {
  out.text = s;
  std::string_view v = s;
  size_t comma = v.find(',');
  if (!s.empty() && s[0] == '[') {
    out.v6 = true;
    size_t close = v.find(']');
    comma = close == std::string_view::npos ? close : v.find(',', close);
    if (auto e = parse_endpoint6(s, comma, false, out.addr6, out.port)) return e;
  } else {
    if (auto e = parse_endpoint(s, comma, false, out.addr, out.port)) return e;
    if (wire::martian_source(out.addr)) return "'" + s + "' does not name a unicast host";
  }
  while (comma != std::string_view::npos) {
    v.remove_prefix(comma + 1);
    comma = v.find(',');
    std::string_view kv = v.substr(0, comma);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos) return "bad key=value '" + std::string(kv) + "' in '" + s + "'";
    std::string_view k = kv.substr(0, eq), val = kv.substr(eq + 1);
    bool ok = true;
    if (k == "rate") ok = parse_num(val, out.rate, 0, 1000000000);
    else if (k == "concurrency") ok = parse_num(val, out.concurrency, 1, 1u << 26);
    else if (k == "count") ok = parse_num(val, out.count, 0, ~0ull);
    else if (k == "duration") {
      uint64_t sec = 0;
      ok = parse_num(val, sec, 0, 31536000);
      out.duration_ms = sec * 1000;
    } else if (k == "request") ok = parse_num(val, out.request, 0, 60000);
    else if (k == "close") {
      ok = val == "client" || val == "server" || val == "simultaneous" || val == "rst" || val == "none" ||
           val == "forgetful";
      out.close = std::string(val);
    } else if (k == "src" && out.v6) {
      size_t d = val.find('-');
      ok = wire::parse_ip6(val.substr(0, d), out.src6) && !wire::ip6_martian_source(out.src6);
      out.src_first = out.src_last = ok ? wire::load32(out.src6.data() + 12) : 0;
      if (ok && d != std::string_view::npos) {
        wire::Ip6 last;
        ok = wire::parse_ip6(val.substr(d + 1), last) && std::memcmp(last.data(), out.src6.data(), 12) == 0 &&
             wire::load32(last.data() + 12) >= out.src_first;
        if (ok) out.src_last = wire::load32(last.data() + 12);
      }
    } else if (k == "src") {
      size_t d = val.find('-');
      ok = wire::parse_ip(val.substr(0, d), out.src_first);
      out.src_last = out.src_first;
      if (ok && d != std::string_view::npos) ok = wire::parse_ip(val.substr(d + 1), out.src_last) && out.src_last >= out.src_first;
    } else if (k == "sport") {
      size_t d = val.find('-');
      ok = d != std::string_view::npos && parse_num(val.substr(0, d), out.sport_lo, 1, 65535) &&
           parse_num(val.substr(d + 1), out.sport_hi, 1, 65535) && out.sport_lo <= out.sport_hi;
    } else {
      return "unknown key '" + std::string(k) + "' in '" + s +
             "' (rate, concurrency, count, duration, request, close, src, sport)";
    }
    if (!ok) return "bad value for " + std::string(k) + " in '" + s + "'";
  }
  return std::nullopt;
}

std::optional<std::string> parse_route(const std::string& s, RouteSpec& out) {
  out.text = s;
  std::string_view v = s;
  size_t comma = v.find(',');
  std::string_view pfx = v.substr(0, comma);
  size_t slash = pfx.find('/');
  if (slash == std::string_view::npos) return "'" + s + "' is not PREFIX/LEN,via=GATEWAY";
  if (pfx.substr(0, slash).find(':') != std::string_view::npos) {
    out.v6 = true;
    if (!wire::parse_ip6(pfx.substr(0, slash), out.prefix6)) return "bad IPv6 prefix in '" + s + "'";
    if (!parse_num(pfx.substr(slash + 1), out.len, 0, 128)) return "bad prefix length in '" + s + "'";
    if (wire::ip6_masked(out.prefix6, out.len) != out.prefix6) return "'" + std::string(pfx) + "' has host bits set";
    if (comma == std::string_view::npos) return "'" + s + "' needs via=GATEWAY";
    std::string_view kv6 = v.substr(comma + 1);
    if (kv6.rfind("via=", 0) != 0 || !wire::parse_ip6(kv6.substr(4), out.gateway6) ||
        wire::ip6_is_zero(out.gateway6) || wire::ip6_is_multicast(out.gateway6))
      return "bad gateway in '" + s + "' (via=IPV6)";
    return std::nullopt;
  }
  if (!wire::parse_ip(pfx.substr(0, slash), out.prefix)) return "bad IPv4 prefix in '" + s + "'";
  if (!parse_num(pfx.substr(slash + 1), out.len, 0, 32)) return "bad prefix length in '" + s + "'";
  if (out.len < 32 && (out.len == 0 ? out.prefix != 0 : (out.prefix << out.len) != 0))
    return "'" + std::string(pfx) + "' has host bits set";
  if (comma == std::string_view::npos) return "'" + s + "' needs via=GATEWAY";
  std::string_view kv = v.substr(comma + 1);
  if (kv.rfind("via=", 0) != 0 || !wire::parse_ip(kv.substr(4), out.gateway) || out.gateway == 0)
    return "bad gateway in '" + s + "' (via=IPV4)";
  return std::nullopt;
}

std::string usage() {
  return "usage: tcpterm [EAL options] -- [--addr [PORT@]IPV4/PREFIX|[PORT@]IPV6/PREFIX]... "
         "[--listen IPV4:PORT/APP[,key=value...]|[IPV6]:PORT/APP[,...]]... [--msl-ms N] "
         "[--fin-wait-2-timeout-ms N] [--idle-timeout-ms N] [--max-flows N] "
         "[--max-time-wait N] [--buffer-chunks N] [--orphan-retries N] [--synack-retries N] [--syncookies on|off|auto] [--syn-backlog N] [-i|--interactive] [--cmdline-file FILE] "
         "[--connect IPV4:PORT[,key=value...]] [--ring-pair] [--ring-cksum offload|software] [--bench-csv FILE] [--stats-period S] [--run-seconds S] [--idle-sleep-us N] [--log-level L] "
         "[--log-file F] [--syn-admission on|off] [--tw-rst ignore|close] [--tw-cap-policy recycle-oldest|skip] [--table-hugepages on|off] [--prefault on|off] [--route PREFIX/LEN,via=GATEWAY]... "
         "[--pool NAME=IP:PORT[,weight=W][,IP:PORT...][,key=value...]]... [--http-stats IP:PORT]";
}

std::optional<std::string> parse_options(int argc, char** argv, Options& o) {
  auto need = [&](int& i, const char* name, std::string& val) -> std::optional<std::string> {
    if (i + 1 >= argc) return std::string(name) + " needs a value";
    val = argv[++i];
    return std::nullopt;
  };
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    std::string val;
    // --name=value is accepted too.
    size_t eq = a.find('=');
    bool inline_val = a.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_val) {
      val = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto value = [&]() -> std::optional<std::string> {
      if (inline_val) return std::nullopt;
      return need(i, a.c_str(), val);
    };
    bool matched = false;
    for (const NumOpt& n : kNumOpts) {
      if (a != n.name) continue;
      matched = true;
      if (auto e = value()) return e;
      if (!n.set(o, val))
        return std::string(n.name) + ": bad value '" + val + "' (" + n.what + ")";
    }
    if (matched) continue;
    if (a == "--addr") {
      if (auto e = value()) return e;
      AddrSpec s;
      std::string_view host = val;
      if (size_t at = host.find('@'); at != std::string_view::npos) host.remove_prefix(at + 1);
      if (host.find(':') != std::string_view::npos) {
        Addr6Spec s6;
        if (auto e = parse_addr6(val, s6)) return "--addr: " + *e;
        o.addrs6.push_back(s6);
        continue;
      }
      if (auto e = parse_addr(val, s)) return "--addr: " + *e;
      o.addrs.push_back(s);
    } else if (a == "--listen") {
      if (auto e = value()) return e;
      ListenSpec l;
      if (auto e = parse_listen(val, l)) return "--listen: " + *e;
      o.listens.push_back(l);
    } else if (a == "--connect") {
      if (auto e = value()) return e;
      ConnectSpec c;
      if (auto e = parse_connect(val, c)) return "--connect: " + *e;
      o.connects.push_back(c);
    } else if (a == "--ring-pair") {
      if (inline_val) return a + " takes no value";
      o.ring_pair = true;
    } else if (a == "--ring-cksum") {
      if (auto e = value()) return e;
      if (val == "offload") o.ring_cksum_offload = true;
      else if (val == "software") o.ring_cksum_offload = false;
      else return "--ring-cksum: bad value '" + val + "' (offload, software)";
    } else if (a == "--bench-csv") {
      if (auto e = value()) return e;
      o.bench_csv = val;
    } else if (a == "-i" || a == "--interactive") {
      if (inline_val) return a + " takes no value";
      o.interactive = true;
    } else if (a == "--cmdline-file") {
      if (auto e = value()) return e;
      std::ifstream f(val);
      if (!f) return "--cmdline-file: cannot read '" + val + "'";
      o.cmdline_file = val;
    } else if (a == "--log-level") {
      if (auto e = value()) return e;
      static const char* levels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
      bool ok = false;
      for (auto* l : levels) ok |= val == l;
      if (!ok) return "--log-level: bad value '" + val + "' (trace, debug, info, warn, error, critical, off)";
      o.log_level = val;
    } else if (a == "--log-file") {
      if (auto e = value()) return e;
      o.log_file = val;
    } else if (a == "--http-stats") {
      if (auto e = value()) return e;
      if (auto e = parse_endpoint(val, val.size(), true, o.http_stats_addr, o.http_stats_port))
        return "--http-stats: " + *e;
    } else if (a == "--pool") {
      if (auto e = value()) return e;
      lb::PoolConf p;
      if (auto e = lb::parse_pool(val, p)) return "--pool: " + *e;
      for (const auto& q : o.pools)
        if (q.name == p.name) return "--pool: pool " + p.name + " defined twice";
      o.pools.push_back(p);
    } else if (a == "--route") {
      if (auto e = value()) return e;
      RouteSpec r;
      if (auto e = parse_route(val, r)) return "--route: " + *e;
      o.routes.push_back(r);
    } else if (a == "--syn-admission") {
      if (auto e = value()) return e;
      if (val == "on") o.syn_admission = true;
      else if (val == "off") o.syn_admission = false;
      else return "--syn-admission: bad value '" + val + "' (on, off)";
    } else if (a == "--tw-rst") {
      if (auto e = value()) return e;
      if (val == "ignore") o.stack.tcp.tw_rst = tcp::TwRstPolicy::Ignore;
      else if (val == "close") o.stack.tcp.tw_rst = tcp::TwRstPolicy::Close;
      else return "--tw-rst: bad value '" + val + "' (ignore, close)";
    } else if (a == "--syncookies") {
      if (auto e = value()) return e;
      if (val == "on") o.stack.syncookies = stack::SynCookieMode::On;
      else if (val == "off") o.stack.syncookies = stack::SynCookieMode::Off;
      else if (val == "auto") o.stack.syncookies = stack::SynCookieMode::Auto;
      else return "--syncookies: bad value '" + val + "' (on, off, auto)";
    } else if (a == "--table-hugepages") {
      if (auto e = value()) return e;
      if (val == "on") o.stack.table_hugepages = true;
      else if (val == "off") o.stack.table_hugepages = false;
      else return "--table-hugepages: bad value '" + val + "' (on, off)";
    } else if (a == "--prefault") {
      if (auto e = value()) return e;
      if (val == "on") o.stack.prefault = true;
      else if (val == "off") o.stack.prefault = false;
      else return "--prefault: bad value '" + val + "' (on, off)";
    } else if (a == "--tw-cap-policy") {
      if (auto e = value()) return e;
      if (val == "recycle-oldest") o.stack.tcp.tw_cap_policy = tcp::TwCapPolicy::RecycleOldest;
      else if (val == "skip") o.stack.tcp.tw_cap_policy = tcp::TwCapPolicy::Skip;
      else return "--tw-cap-policy: bad value '" + val + "' (recycle-oldest, skip)";
    } else if (a == "-h" || a == "--help") {
      return usage();
    } else {
      return "unknown option '" + std::string(argv[i]) + "'";
    }
  }
  if (o.interactive && o.stats_period_s) return "--stats-period: only without -i (non-interactive mode)";
  if (o.addrs.empty() && o.addrs6.empty())
    o.addrs.push_back(AddrSpec{0, 0xC6120002, 0xC6120002, 24});  // SPEC default topology
  for (auto& c : o.connects) {
    if (c.v6) {
      if (!wire::ip6_is_zero(c.src6)) continue;
      for (const auto& a : o.addrs6)
        if (!a.contains(c.addr6)) {
          c.src6 = a.addr;
          c.src_first = a.first_lo();
          c.src_last = a.last_lo;
          break;
        }
      if (wire::ip6_is_zero(c.src6)) return "--connect: no IPv6 --addr to connect from (add one, or src=FIRST-LAST)";
      continue;
    }
    if (c.src_first) continue;
    for (const auto& a : o.addrs)
      if (!a.contains(c.addr)) {
        c.src_first = a.addr;
        c.src_last = a.last;
        break;
      }
    if (!c.src_first) return "--connect: no --addr to connect from (add one, or src=FIRST-LAST)";
  }
  for (const auto& l : o.listens) {
    if (l.app != "proxy") continue;
    const std::string& name = l.params.at("pool");
    bool found = false;
    for (const auto& p : o.pools) found |= p.name == name;
    if (!found) return "--listen: no --pool " + name + " for '" + l.text + "'";
  }
  for (const auto& p : o.pools) {
    // Backend-side source addresses must be ours: the replies come to them.
    if (!p.src_first) continue;
    for (uint32_t a : {p.src_first, p.src_last}) {
      bool owned = false;
      for (const auto& s : o.addrs) owned |= s.contains(a);
      if (!owned)
        return "--pool: src " + wire::ip_to_string(a) + " of pool " + p.name + " is not an --addr of the appliance";
    }
  }
  return std::nullopt;
}

}  // namespace tcpterm::config
