// show config, set msl|fin-wait-2-timeout|idle-timeout, listen, unlisten,
// show health, set health drain on|off.
#include <charconv>
#include <sstream>

#include "apps/apps.h"
#include "cli/cli.h"
#include "health.h"
#include "http_stats.h"
#include "render.h"

namespace tcpterm::app {
namespace {

struct ShowConfig {
  cmdline_fixed_string_t show, config;
};
void show_config_parsed(void*, cmdline*, void*) { out(render_config(*g_cli.dp)); }
cmdline_parse_token_string_t tok_show = TOKEN_STRING_INITIALIZER(ShowConfig, show, "show");
cmdline_parse_token_string_t tok_config = TOKEN_STRING_INITIALIZER(ShowConfig, config, "config");
cmdline_parse_inst_t cmd_show_config = {
    show_config_parsed, nullptr, "show config: the effective configuration, MSL and timeouts included",
    {TCPTERM_TOK(tok_show), TCPTERM_TOK(tok_config), nullptr}};

struct SetTimeout {
  cmdline_fixed_string_t set, what;
  uint32_t ms;
};
void set_parsed(void* res, cmdline*, void*) {
  auto* r = static_cast<SetTimeout*>(res);
  std::string what = r->what;
  dp::Request::Kind k;
  // The same bounds as the command line: deadlines are 32-bit milliseconds.
  const std::string max = std::to_string(config::kMaxTimeoutMs);
  if (what == "msl") {
    if (r->ms < 1 || r->ms > config::kMaxMslMs) return out("error: msl must be 1..3600000 ms\n");
    k = dp::Request::Kind::SetMsl;
  } else if (what == "fin-wait-2-timeout") {
    if (r->ms < 1 || r->ms > config::kMaxTimeoutMs)
      return out("error: fin-wait-2-timeout must be 1.." + max + " ms\n");
    k = dp::Request::Kind::SetFinWait2;
  } else {
    if (r->ms > config::kMaxTimeoutMs) return out("error: idle-timeout must be 0.." + max + " ms\n");
    k = dp::Request::Kind::SetIdle;
  }
  auto rs = g_cli.dp->query_all(k, r->ms);
  if (rs.empty()) return out("error: a worker did not answer\n");
  out(what + " set to " + std::to_string(r->ms) + " ms (applies to timers armed from now on)\n");
}
cmdline_parse_token_string_t tok_set = TOKEN_STRING_INITIALIZER(SetTimeout, set, "set");
cmdline_parse_token_string_t tok_swhat =
    TOKEN_STRING_INITIALIZER(SetTimeout, what, "msl#fin-wait-2-timeout#idle-timeout");
cmdline_parse_token_num_t tok_sms = TOKEN_NUM_INITIALIZER(SetTimeout, ms, RTE_UINT32);
cmdline_parse_inst_t cmd_set = {
    set_parsed, nullptr, "set msl|fin-wait-2-timeout|idle-timeout MS: change a timeout at run time",
    {TCPTERM_TOK(tok_set), TCPTERM_TOK(tok_swhat), TCPTERM_TOK(tok_sms), nullptr}};

// set syncookies on|off|auto
struct SetCookies {
  cmdline_fixed_string_t set, syncookies, mode;
};
void set_cookies_parsed(void* res, cmdline*, void*) {
  std::string m = static_cast<SetCookies*>(res)->mode;
  uint32_t v = m == "off" ? 0 : m == "on" ? 1 : 2;
  auto rs = g_cli.dp->query_all(dp::Request::Kind::SetSyncookies, v);
  out(rs.empty() ? "error: a worker did not answer\n" : "syncookies " + m + "\n");
}
cmdline_parse_token_string_t tok_cset = TOKEN_STRING_INITIALIZER(SetCookies, set, "set");
cmdline_parse_token_string_t tok_ccookies = TOKEN_STRING_INITIALIZER(SetCookies, syncookies, "syncookies");
cmdline_parse_token_string_t tok_cmode = TOKEN_STRING_INITIALIZER(SetCookies, mode, "on#off#auto");
cmdline_parse_inst_t cmd_set_cookies = {
    set_cookies_parsed, nullptr, "set syncookies on|off|auto: RFC 4987 SYN cookies (auto: under SYN flood or a full table)",
    {TCPTERM_TOK(tok_cset), TCPTERM_TOK(tok_ccookies), TCPTERM_TOK(tok_cmode), nullptr}};

// listen IPV4|IPV6 PORT APP[,key=value...]
struct Listen {
  cmdline_fixed_string_t listen, ip;
  uint16_t port;
  cmdline_fixed_string_t app;
};
void listen_parsed(void* res, cmdline*, void*) {
  auto* r = static_cast<Listen*>(res);
  config::ListenSpec spec;
  std::string ip = r->ip;
  if (ip.find(':') != std::string::npos && ip[0] != '[') ip = "[" + ip + "]";
  std::string text = ip + ":" + std::to_string(r->port) + "/" + r->app;
  if (auto e = config::parse_listen(text, spec)) return out("error: " + *e + "\n");
  auto rs = g_cli.dp->query_each([&](dp::Request& req, size_t) {
    std::string err;
    req.kind = dp::Request::Kind::Listen;
    req.addr = spec.addr;
    req.v6 = spec.v6;
    req.addr6 = spec.addr6;
    req.port = spec.port;
    if (spec.app == "proxy") req.pool = spec.params.at("pool");  // built by the worker (its balancer)
    else req.app = apps::make_app(spec.app, spec.params, err);  // allocated here, not on the worker
  });
  if (rs.empty()) return out("error: a worker did not answer\n");
  if (!rs[0]->err.empty()) return out("error: " + rs[0]->err + "\n");
  out(rs[0]->ok ? "listening on " + text + "\n" : "error: already listening on that address and port\n");
}
cmdline_parse_token_string_t tok_listen = TOKEN_STRING_INITIALIZER(Listen, listen, "listen");
cmdline_parse_token_string_t tok_lip = TOKEN_STRING_INITIALIZER(Listen, ip, nullptr);
cmdline_parse_token_num_t tok_lport = TOKEN_NUM_INITIALIZER(Listen, port, RTE_UINT16);
cmdline_parse_token_string_t tok_lapp = TOKEN_STRING_INITIALIZER(Listen, app, nullptr);
cmdline_parse_inst_t cmd_listen = {
    listen_parsed, nullptr, "listen IPV4|IPV6 PORT APP[,key=value...]: add a listener (echo, discard, http, proxy,pool=NAME)",
    {TCPTERM_TOK(tok_listen), TCPTERM_TOK(tok_lip), TCPTERM_TOK(tok_lport), TCPTERM_TOK(tok_lapp), nullptr}};

struct Unlisten {
  cmdline_fixed_string_t unlisten, ip;
  uint16_t port;
};
void unlisten_parsed(void* res, cmdline*, void*) {
  auto* r = static_cast<Unlisten*>(res);
  uint32_t addr = 0;
  wire::Ip6 a6{};
  std::string ip = r->ip;
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  bool v6 = ip.find(':') != std::string::npos;
  if (v6 ? !wire::parse_ip6(ip, a6) : !wire::parse_ip(ip, addr))
    return out(std::string("error: bad IP address '") + r->ip + "'\n");
  auto rs = g_cli.dp->query_each([&](dp::Request& req, size_t) {
    req.kind = dp::Request::Kind::Unlisten;
    req.v6 = v6;
    req.addr6 = a6;
    req.addr = addr;
    req.port = r->port;
  });
  if (rs.empty()) return out("error: a worker did not answer\n");
  out(rs[0]->ok ? "listener removed (open flows continue)\n" : "error: no such listener\n");
}
cmdline_parse_token_string_t tok_unlisten = TOKEN_STRING_INITIALIZER(Unlisten, unlisten, "unlisten");
cmdline_parse_token_string_t tok_uip = TOKEN_STRING_INITIALIZER(Unlisten, ip, nullptr);
cmdline_parse_token_num_t tok_uport = TOKEN_NUM_INITIALIZER(Unlisten, port, RTE_UINT16);
cmdline_parse_inst_t cmd_unlisten = {
    unlisten_parsed, nullptr, "unlisten IPV4|IPV6 PORT: remove a listener",
    {TCPTERM_TOK(tok_unlisten), TCPTERM_TOK(tok_uip), TCPTERM_TOK(tok_uport), nullptr}};

// show health: the verdict /healthz serves, and its checks (health.h).
struct ShowHealth {
  cmdline_fixed_string_t show, health;
};
void show_health_parsed(void*, cmdline*, void*) {
  out(render_health(evaluate_health(take_view(*g_cli.dp))));
}
cmdline_parse_token_string_t tok_hshow = TOKEN_STRING_INITIALIZER(ShowHealth, show, "show");
cmdline_parse_token_string_t tok_health = TOKEN_STRING_INITIALIZER(ShowHealth, health, "health");
cmdline_parse_inst_t cmd_show_health = {
    show_health_parsed, nullptr, "show health: healthy or not, as /healthz says, and the checks behind it",
    {TCPTERM_TOK(tok_hshow), TCPTERM_TOK(tok_health), nullptr}};

// set health drain on|off: report unhealthy (a router withdraws the
// appliance) while serving on; off: back to the checks' verdict.
struct SetDrain {
  cmdline_fixed_string_t set, health, drain, mode;
};
void set_drain_parsed(void* res, cmdline*, void*) {
  bool on = std::string(static_cast<SetDrain*>(res)->mode) == "on";
  set_health_drain(on);
  out(on ? "health drain on: /healthz answers 503; what still reaches this appliance is served\n"
         : "health drain off: /healthz follows the checks again\n");
}
cmdline_parse_token_string_t tok_dset = TOKEN_STRING_INITIALIZER(SetDrain, set, "set");
cmdline_parse_token_string_t tok_dhealth = TOKEN_STRING_INITIALIZER(SetDrain, health, "health");
cmdline_parse_token_string_t tok_ddrain = TOKEN_STRING_INITIALIZER(SetDrain, drain, "drain");
cmdline_parse_token_string_t tok_dmode = TOKEN_STRING_INITIALIZER(SetDrain, mode, "on#off");
cmdline_parse_inst_t cmd_set_drain = {
    set_drain_parsed, nullptr,
    "set health drain on|off: report unhealthy so routers withdraw this appliance (it serves what still reaches it)",
    {TCPTERM_TOK(tok_dset), TCPTERM_TOK(tok_dhealth), TCPTERM_TOK(tok_ddrain), TCPTERM_TOK(tok_dmode), nullptr}};

}  // namespace

void register_config(std::vector<cmdline_parse_inst_t*>& v) {
  v.insert(v.end(), {&cmd_show_config, &cmd_set, &cmd_set_cookies, &cmd_listen, &cmd_unlisten,
                            &cmd_show_health, &cmd_set_drain});
}

}  // namespace tcpterm::app
