// show port stats|xstats|info, clear port stats.
#include <rte_ethdev.h>

#include <charconv>

#include "cli/cli.h"
#include "render.h"

namespace tcpterm::app {
namespace {

// "all" -> -1, a port number -> it, anything else -> -2.
int port_arg(const char* s) {
  std::string_view v(s);
  if (v == "all") return -1;
  unsigned p = 0;
  auto [e, ec] = std::from_chars(v.data(), v.data() + v.size(), p);
  if (ec != std::errc() || e != v.data() + v.size() || !rte_eth_dev_is_valid_port(uint16_t(p))) return -2;
  return int(p);
}

struct ShowPort {
  cmdline_fixed_string_t show, port, what, which;
};
void show_port_parsed(void* res, cmdline*, void*) {
  auto* r = static_cast<ShowPort*>(res);
  std::string what = r->what;
  int p = port_arg(r->which);
  if (p == -2) return out(std::string("error: no port '") + r->which + "' (a port number or all)\n");
  if (what == "stats") out(render_port_stats(p));
  else if (what == "xstats") out(render_port_xstats(p));
  else out(render_port_info(*g_cli.dp));
}
cmdline_parse_token_string_t tok_show = TOKEN_STRING_INITIALIZER(ShowPort, show, "show");
cmdline_parse_token_string_t tok_port = TOKEN_STRING_INITIALIZER(ShowPort, port, "port");
cmdline_parse_token_string_t tok_what = TOKEN_STRING_INITIALIZER(ShowPort, what, "stats#xstats#info");
cmdline_parse_token_string_t tok_which = TOKEN_STRING_INITIALIZER(ShowPort, which, nullptr);
cmdline_parse_inst_t cmd_show_port = {
    show_port_parsed, nullptr,
    "show port stats|xstats|info all|N: RX/TX counters, extended counters, or driver, MAC, queues, link, addresses",
    {TCPTERM_TOK(tok_show), TCPTERM_TOK(tok_port), TCPTERM_TOK(tok_what), TCPTERM_TOK(tok_which), nullptr}};

struct ClearPort {
  cmdline_fixed_string_t clear, port, stats, which;
};
void clear_port_parsed(void* res, cmdline*, void*) {
  auto* r = static_cast<ClearPort*>(res);
  int p = port_arg(r->which);
  if (p == -2) return out(std::string("error: no port '") + r->which + "'\n");
  uint16_t id;
  RTE_ETH_FOREACH_DEV(id) {
    if (p >= 0 && id != p) continue;
    rte_eth_stats_reset(id);
    rte_eth_xstats_reset(id);
  }
  out("port statistics cleared\n");
}
cmdline_parse_token_string_t tok_clear = TOKEN_STRING_INITIALIZER(ClearPort, clear, "clear");
cmdline_parse_token_string_t tok_cport = TOKEN_STRING_INITIALIZER(ClearPort, port, "port");
cmdline_parse_token_string_t tok_cstats = TOKEN_STRING_INITIALIZER(ClearPort, stats, "stats");
cmdline_parse_token_string_t tok_cwhich = TOKEN_STRING_INITIALIZER(ClearPort, which, nullptr);
cmdline_parse_inst_t cmd_clear_port = {
    clear_port_parsed, nullptr, "clear port stats all|N: reset port counters",
    {TCPTERM_TOK(tok_clear), TCPTERM_TOK(tok_cport), TCPTERM_TOK(tok_cstats), TCPTERM_TOK(tok_cwhich), nullptr}};

}  // namespace

void register_port(std::vector<cmdline_parse_inst_t*>& v) {
  v.insert(v.end(), {&cmd_show_port, &cmd_clear_port});
}

}  // namespace tcpterm::app
