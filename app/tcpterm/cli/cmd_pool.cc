// pool add|del|drain, show pools, show backends [NAME]: the load-balancer
// front end's pools, changed through the control channel (each worker
// applies the change between bursts; no lock on the data path).
#include <charconv>

#include "cli/cli.h"
#include "render.h"

namespace tcpterm::app {
namespace {

void pool_change(dp::Request::Kind k, const std::string& pool, const std::string& ep, uint32_t weight) {
  lb::BackendConf b;
  if (!lb::parse_backend(ep, b)) return out("error: '" + ep + "' is not IPV4:PORT or [IPV6]:PORT\n");
  if (weight < 1 || weight > 256) return out("error: weight must be 1..256\n");
  auto rs = g_cli.dp->query_each([&](dp::Request& r, size_t) {
    r.kind = k;
    r.pool = pool;
    r.backend = b;
    r.value = weight;
  });
  if (rs.empty()) return out("error: a worker did not answer\n");
  for (const auto& r : rs)
    if (!r->ok) return out("error: " + r->err + "\n");
  const char* what = k == dp::Request::Kind::PoolAdd   ? "added to"
                     : k == dp::Request::Kind::PoolDel ? "removed from (its flows finish)"
                                                       : "draining in (no new flows)";
  out("backend " + ep + " " + what + " pool " + pool + "\n");
}

// pool add NAME IP:PORT [weight W]
struct PoolCmd {
  cmdline_fixed_string_t pool, op, name, ep;
};
void pool_parsed(void* res, cmdline*, void*) {
  auto* r = static_cast<PoolCmd*>(res);
  std::string op = r->op;
  dp::Request::Kind k = op == "add" ? dp::Request::Kind::PoolAdd
                        : op == "del" ? dp::Request::Kind::PoolDel
                                      : dp::Request::Kind::PoolDrain;
  pool_change(k, r->name, r->ep, 1);
}
cmdline_parse_token_string_t tok_pool = TOKEN_STRING_INITIALIZER(PoolCmd, pool, "pool");
cmdline_parse_token_string_t tok_op = TOKEN_STRING_INITIALIZER(PoolCmd, op, "add#del#drain");
cmdline_parse_token_string_t tok_name = TOKEN_STRING_INITIALIZER(PoolCmd, name, nullptr);
cmdline_parse_token_string_t tok_ep = TOKEN_STRING_INITIALIZER(PoolCmd, ep, nullptr);
cmdline_parse_inst_t cmd_pool = {
    pool_parsed, nullptr, "pool add|del|drain NAME IP:PORT: add a backend, remove it, or stop new flows to it",
    {TCPTERM_TOK(tok_pool), TCPTERM_TOK(tok_op), TCPTERM_TOK(tok_name), TCPTERM_TOK(tok_ep), nullptr}};

struct PoolAddW {
  cmdline_fixed_string_t pool, add, name, ep, weight;
  uint32_t w;
};
void pool_add_w_parsed(void* res, cmdline*, void*) {
  auto* r = static_cast<PoolAddW*>(res);
  pool_change(dp::Request::Kind::PoolAdd, r->name, r->ep, r->w);
}
cmdline_parse_token_string_t tok_wpool = TOKEN_STRING_INITIALIZER(PoolAddW, pool, "pool");
cmdline_parse_token_string_t tok_wadd = TOKEN_STRING_INITIALIZER(PoolAddW, add, "add");
cmdline_parse_token_string_t tok_wname = TOKEN_STRING_INITIALIZER(PoolAddW, name, nullptr);
cmdline_parse_token_string_t tok_wep = TOKEN_STRING_INITIALIZER(PoolAddW, ep, nullptr);
cmdline_parse_token_string_t tok_wweight = TOKEN_STRING_INITIALIZER(PoolAddW, weight, "weight");
cmdline_parse_token_num_t tok_ww = TOKEN_NUM_INITIALIZER(PoolAddW, w, RTE_UINT32);
cmdline_parse_inst_t cmd_pool_add_w = {
    pool_add_w_parsed, nullptr, "pool add NAME IP:PORT weight W: add (or re-weight) a backend",
    {TCPTERM_TOK(tok_wpool), TCPTERM_TOK(tok_wadd), TCPTERM_TOK(tok_wname), TCPTERM_TOK(tok_wep),
     TCPTERM_TOK(tok_wweight), TCPTERM_TOK(tok_ww), nullptr}};

// show pools | show backends
struct ShowLb {
  cmdline_fixed_string_t show, what;
};
void show_lb_parsed(void* res, cmdline*, void*) {
  std::string what = static_cast<ShowLb*>(res)->what;
  LbTotals t = lb_snapshot(*g_cli.dp);
  if (!t.ok) return out("error: a worker did not answer\n");
  out(what == "pools" ? render_pools(t) : render_backends(t, ""));
}
cmdline_parse_token_string_t tok_sshow = TOKEN_STRING_INITIALIZER(ShowLb, show, "show");
cmdline_parse_token_string_t tok_swhat = TOKEN_STRING_INITIALIZER(ShowLb, what, "pools#backends");
cmdline_parse_inst_t cmd_show_lb = {
    show_lb_parsed, nullptr, "show pools|backends: load-balancer pools (settings, counters) / every backend",
    {TCPTERM_TOK(tok_sshow), TCPTERM_TOK(tok_swhat), nullptr}};

struct ShowBackends {
  cmdline_fixed_string_t show, backends, name;
};
void show_backends_parsed(void* res, cmdline*, void*) {
  LbTotals t = lb_snapshot(*g_cli.dp);
  if (!t.ok) return out("error: a worker did not answer\n");
  out(render_backends(t, static_cast<ShowBackends*>(res)->name));
}
cmdline_parse_token_string_t tok_bshow = TOKEN_STRING_INITIALIZER(ShowBackends, show, "show");
cmdline_parse_token_string_t tok_bb = TOKEN_STRING_INITIALIZER(ShowBackends, backends, "backends");
cmdline_parse_token_string_t tok_bname = TOKEN_STRING_INITIALIZER(ShowBackends, name, nullptr);
cmdline_parse_inst_t cmd_show_backends = {
    show_backends_parsed, nullptr, "show backends NAME: the backends of one pool (state, weight, flows, connects, bytes)",
    {TCPTERM_TOK(tok_bshow), TCPTERM_TOK(tok_bb), TCPTERM_TOK(tok_bname), nullptr}};

}  // namespace

void register_pool(std::vector<cmdline_parse_inst_t*>& v) {
  v.insert(v.end(), {&cmd_pool, &cmd_pool_add_w, &cmd_show_lb, &cmd_show_backends});
}

}  // namespace tcpterm::app
