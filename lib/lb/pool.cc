#include "lb/pool.h"

#include <cctype>
#include <charconv>

#include "lb/maglev.h"
#include "wire/wire.h"

namespace tcpterm::lb {

const char* to_string(Balance b) {
  switch (b) {
    case Balance::Maglev: return "maglev";
    case Balance::Wrr: return "wrr";
    case Balance::LeastConn: return "leastconn";
  }
  return "?";
}
const char* to_string(HashOn h) { return h == HashOn::Src ? "src" : "src-port"; }
const char* to_string(Check c) {
  switch (c) {
    case Check::None: return "none";
    case Check::Tcp: return "tcp";
    case Check::Http: return "http";
  }
  return "?";
}
const char* to_string(ProxyProto p) {
  switch (p) {
    case ProxyProto::Off: return "off";
    case ProxyProto::V1: return "v1";
    case ProxyProto::V2: return "v2";
  }
  return "?";
}
const char* to_string(Mode m) { return m == Mode::Http ? "http" : "tcp"; }

using wire::parse_num;

bool parse_backend(std::string_view s, BackendConf& out) {
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    out.v6 = true;
    return wire::parse_ip6(s.substr(1, close - 1), out.addr6) && !wire::ip6_martian_source(out.addr6) &&
           !wire::ip6_is_link_local(out.addr6) && parse_num(s.substr(close + 2), out.port, 1, 65535);
  }
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  return wire::parse_ip(s.substr(0, colon), out.addr) && out.addr != 0 && !wire::martian_source(out.addr) &&
         parse_num(s.substr(colon + 1), out.port, 1, 65535);
}

std::optional<std::string> parse_pool(std::string_view s, PoolConf& out) {
  out.text = std::string(s);
  size_t eq = s.find('=');
  if (eq == std::string_view::npos || eq == 0) return "'" + std::string(s) + "' is not NAME=IP:PORT[,...]";
  out.name = std::string(s.substr(0, eq));
  for (char c : out.name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
      return "bad pool name '" + out.name + "' (letters, digits, - and _)";
  std::string_view rest = s.substr(eq + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    size_t e = item.find('=');
    if (e == std::string_view::npos) {
      BackendConf b;
      if (!parse_backend(item, b))
        return "bad backend '" + std::string(item) + "' (IP:PORT or [IPV6]:PORT) in pool " + out.name;
      for (const auto& o : out.backends)
        if (o.same(b)) return "backend " + std::string(item) + " twice in pool " + out.name;
      if (out.backends.size() >= kMaxBackends) return "more than 256 backends in pool " + out.name;
      out.backends.push_back(b);
      continue;
    }
    std::string_view k = item.substr(0, e), v = item.substr(e + 1);
    bool ok = true;
    if (k == "weight") {
      if (out.backends.empty()) return "weight= before any backend in pool " + out.name;
      ok = parse_num(v, out.backends.back().weight, 1, 256);
    } else if (k == "balance") {
      if (v == "maglev") out.balance = Balance::Maglev;
      else if (v == "wrr") out.balance = Balance::Wrr;
      else if (v == "leastconn") out.balance = Balance::LeastConn;
      else ok = false;
    } else if (k == "hash") {
      if (v == "src-port") out.hash = HashOn::SrcPort;
      else if (v == "src") out.hash = HashOn::Src;
      else ok = false;
    } else if (k == "table") {
      ok = parse_num(v, out.table_size, 7, 1u << 24) && Maglev::is_prime(out.table_size);
    } else if (k == "check") {
      if (v == "tcp") out.check = Check::Tcp;
      else if (v == "http") out.check = Check::Http;
      else if (v == "none") out.check = Check::None;
      else ok = false;
    } else if (k == "path") {
      ok = !v.empty() && v[0] == '/' && v.size() < 200 && v.find_first_of(" \r\n") == std::string_view::npos;
      out.check_path = std::string(v);
    } else if (k == "expect") {
      ok = parse_num(v, out.check_expect, 100, 599);
    } else if (k == "interval") {
      ok = parse_num(v, out.interval_ms, 100, 3600000);
    } else if (k == "rise") {
      ok = parse_num(v, out.rise, 1, 100);
    } else if (k == "fall") {
      ok = parse_num(v, out.fall, 1, 100);
    } else if (k == "connect-timeout-ms") {
      ok = parse_num(v, out.connect_timeout_ms, 10, 60000);
    } else if (k == "retries") {
      ok = parse_num(v, out.retries, 0, 10);
    } else if (k == "proxy-protocol") {
      if (v == "v1") out.proxy_protocol = ProxyProto::V1;
      else if (v == "v2") out.proxy_protocol = ProxyProto::V2;
      else if (v == "off") out.proxy_protocol = ProxyProto::Off;
      else ok = false;
    } else if (k == "mode") {
      if (v == "tcp") out.mode = Mode::Tcp;
      else if (v == "http") out.mode = Mode::Http;
      else ok = false;
    } else if (k == "src") {
      size_t d = v.find('-');
      ok = wire::parse_ip(v.substr(0, d), out.src_first) && out.src_first != 0;
      out.src_last = out.src_first;
      if (ok && d != std::string_view::npos)
        ok = wire::parse_ip(v.substr(d + 1), out.src_last) && out.src_last >= out.src_first;
    } else if (k == "sport") {
      size_t d = v.find('-');
      ok = d != std::string_view::npos && parse_num(v.substr(0, d), out.sport_lo, 1, 65535) &&
           parse_num(v.substr(d + 1), out.sport_hi, 1, 65535) && out.sport_lo <= out.sport_hi;
    } else {
      return "unknown key '" + std::string(k) + "' in pool " + out.name +
             " (weight, balance, hash, table, check, path, expect, interval, rise, fall, "
             "connect-timeout-ms, retries, proxy-protocol, mode, src, sport)";
    }
    if (!ok) return "bad value for " + std::string(k) + " in pool " + out.name + ": '" + std::string(v) + "'";
  }
  if (out.backends.empty()) return "pool " + out.name + " has no backend";
  return std::nullopt;
}

std::string PoolConf::describe() const {
  std::string s = std::string("balance=") + to_string(balance) + " hash=" + to_string(hash) +
                  " table=" + std::to_string(table_size) + " check=" + to_string(check);
  if (check == Check::Http) s += " path=" + check_path + " expect=" + std::to_string(check_expect);
  s += " interval=" + std::to_string(interval_ms) + " rise=" + std::to_string(rise) +
       " fall=" + std::to_string(fall) + " connect-timeout-ms=" + std::to_string(connect_timeout_ms) +
       " retries=" + std::to_string(retries) + " proxy-protocol=" + to_string(proxy_protocol) +
       " mode=" + to_string(mode);
  if (src_first) s += " src=" + wire::ip_to_string(src_first) + "-" + wire::ip_to_string(src_last);
  else s += " src=auto";
  s += " sport=" + std::to_string(sport_lo) + "-" + std::to_string(sport_hi);
  return s;
}

}  // namespace tcpterm::lb
