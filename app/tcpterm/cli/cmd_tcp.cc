// show tcp states|stats|timewait, clear tcp stats, show flows, show lcores,
// show timers.
#include <charconv>
#include <sstream>

#include "cli/cli.h"
#include "render.h"

namespace tcpterm::app {
namespace {

Totals snap() {
  Totals t = snapshot(*g_cli.dp);
  if (!t.ok) out("error: a worker did not answer\n");
  return t;
}

struct ShowTcp {
  cmdline_fixed_string_t show, tcp, what;
};
void show_tcp_parsed(void* res, cmdline*, void*) {
  std::string what = static_cast<ShowTcp*>(res)->what;
  Totals t = snap();
  if (!t.ok) return;
  if (what == "states") out(render_states(t));
  else if (what == "stats") out(render_tcp_stats(t));
  else out(render_timewait(t, *g_cli.dp));
}
cmdline_parse_token_string_t tok_show = TOKEN_STRING_INITIALIZER(ShowTcp, show, "show");
cmdline_parse_token_string_t tok_tcp = TOKEN_STRING_INITIALIZER(ShowTcp, tcp, "tcp");
cmdline_parse_token_string_t tok_what = TOKEN_STRING_INITIALIZER(ShowTcp, what, "states#stats#timewait");
cmdline_parse_inst_t cmd_show_tcp = {
    show_tcp_parsed, nullptr,
    "show tcp states|stats|timewait: flows per RFC 9293 state, event counters, TIME-WAIT records and policy",
    {TCPTERM_TOK(tok_show), TCPTERM_TOK(tok_tcp), TCPTERM_TOK(tok_what), nullptr}};

struct ClearTcp {
  cmdline_fixed_string_t clear, tcp, stats;
};
void clear_tcp_parsed(void*, cmdline*, void*) {
  auto rs = g_cli.dp->query_all(dp::Request::Kind::ClearTcp);
  out(rs.empty() ? "error: a worker did not answer\n" : "tcp statistics cleared\n");
}
cmdline_parse_token_string_t tok_clear = TOKEN_STRING_INITIALIZER(ClearTcp, clear, "clear");
cmdline_parse_token_string_t tok_ctcp = TOKEN_STRING_INITIALIZER(ClearTcp, tcp, "tcp");
cmdline_parse_token_string_t tok_cstats = TOKEN_STRING_INITIALIZER(ClearTcp, stats, "stats");
cmdline_parse_inst_t cmd_clear_tcp = {
    clear_tcp_parsed, nullptr, "clear tcp stats: reset TCP counters (gauges stay)",
    {TCPTERM_TOK(tok_clear), TCPTERM_TOK(tok_ctcp), TCPTERM_TOK(tok_cstats), nullptr}};

// show flows [STATE] [N] [IPV4]: any order, each optional.  N is bounded:
// every line is built in memory first (and the workers list them).
constexpr size_t kMaxFlowsShown = 100000;
void flows(const std::string& args) {
  size_t n = 20;
  int state = -1;
  uint32_t addr = 0;
  std::istringstream in(args);
  std::string w;
  while (in >> w) {
    tcp::TcpState s;
    size_t v = 0;
    auto [e, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
    if (tcp::parse_state(w, s)) state = int(s);
    else if (ec == std::errc() && e == w.data() + w.size()) {
      if (v > kMaxFlowsShown)
        return out("error: show flows prints at most " + std::to_string(kMaxFlowsShown) +
                   " (narrow it with a STATE or an IPV4 address)\n");
      n = v;
    }
    else if (wire::parse_ip(w, addr)) {
    } else
      return out("error: '" + w + "' is not a TCP state (e.g. TIME-WAIT), a count or an IPv4 address\n");
  }
  out(render_flows(*g_cli.dp, n, state, addr));
}
struct ShowFlows {
  cmdline_fixed_string_t show, flows;
};
void show_flows_parsed(void*, cmdline*, void*) { flows(""); }
cmdline_parse_token_string_t tok_fshow = TOKEN_STRING_INITIALIZER(ShowFlows, show, "show");
cmdline_parse_token_string_t tok_flows = TOKEN_STRING_INITIALIZER(ShowFlows, flows, "flows");
cmdline_parse_inst_t cmd_show_flows = {
    show_flows_parsed, nullptr, "show flows [STATE] [N] [IPV4]: up to N flows (default 20) with lcore, addresses, state",
    {TCPTERM_TOK(tok_fshow), TCPTERM_TOK(tok_flows), nullptr}};
struct ShowFlowsArgs {
  cmdline_fixed_string_t show, flows;
  cmdline_multi_string_t args;
};
void show_flows_args_parsed(void* res, cmdline*, void*) { flows(static_cast<ShowFlowsArgs*>(res)->args); }
cmdline_parse_token_string_t tok_fshow2 = TOKEN_STRING_INITIALIZER(ShowFlowsArgs, show, "show");
cmdline_parse_token_string_t tok_flows2 = TOKEN_STRING_INITIALIZER(ShowFlowsArgs, flows, "flows");
cmdline_parse_token_string_t tok_fargs = TOKEN_STRING_INITIALIZER(ShowFlowsArgs, args, TOKEN_STRING_MULTI);
cmdline_parse_inst_t cmd_show_flows_args = {
    show_flows_args_parsed, nullptr, "show flows STATE|N|IPV4 ...: filtered",
    {TCPTERM_TOK(tok_fshow2), TCPTERM_TOK(tok_flows2), TCPTERM_TOK(tok_fargs), nullptr}};

struct ShowLc {
  cmdline_fixed_string_t show, what;
};
void show_lc_parsed(void* res, cmdline*, void*) {
  std::string what = static_cast<ShowLc*>(res)->what;
  Totals t = snap();
  if (!t.ok) return;
  out(what == "lcores" ? render_lcores(t, *g_cli.dp) : render_timers(t, *g_cli.dp));
}
cmdline_parse_token_string_t tok_lshow = TOKEN_STRING_INITIALIZER(ShowLc, show, "show");
cmdline_parse_token_string_t tok_lwhat = TOKEN_STRING_INITIALIZER(ShowLc, what, "lcores#timers");
cmdline_parse_inst_t cmd_show_lc = {
    show_lc_parsed, nullptr, "show lcores|timers: per worker rx/tx, flows, busy share; timer wheel occupancy",
    {TCPTERM_TOK(tok_lshow), TCPTERM_TOK(tok_lwhat), nullptr}};

}  // namespace

void register_tcp(std::vector<cmdline_parse_inst_t*>& v) {
  v.insert(v.end(), {&cmd_show_tcp, &cmd_clear_tcp, &cmd_show_flows, &cmd_show_flows_args, &cmd_show_lc});
}

}  // namespace tcpterm::app
