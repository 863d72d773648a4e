#include "cli/cli.h"

#include "telemetry.h"

#include <cmdline_socket.h>
#include <rte_cycles.h>

#include <cstdio>
#include <poll.h>
#include <unistd.h>

extern volatile int g_signal;  // main.cc

namespace tcpterm::app {

CliState g_cli;

void out(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

const std::vector<cmdline_parse_inst_t*>& command_list() {
  static std::vector<cmdline_parse_inst_t*> v = [] {
    std::vector<cmdline_parse_inst_t*> c;
    register_control(c);
    register_port(c);
    register_tcp(c);
    register_config(c);
    register_pool(c);
    return c;
  }();
  return v;
}

cmdline_parse_ctx_t* commands() {
  static std::vector<cmdline_parse_inst_t*> ctx = [] {
    auto c = command_list();
    c.push_back(nullptr);
    return c;
  }();
  return ctx.data();
}

void run_interactive() {
  cmdline* cl = cmdline_stdin_new(commands(), "tcpterm> ");
  if (!cl) {
    std::fprintf(stderr, "tcpterm: cannot start the CLI\n");
    return;
  }
  g_cli.cl = cl;
  // Poll so that a signal or `quit` ends the loop even while stdin is idle;
  // rare data-plane events are reported about once a second meanwhile.
  uint64_t last_report = rte_get_timer_cycles();
  for (;;) {
    if (g_signal || g_cli.quit) break;
    if (rte_get_timer_cycles() - last_report > rte_get_timer_hz()) {
      report_events(*g_cli.dp);
      last_report = rte_get_timer_cycles();
    }
    pollfd p{STDIN_FILENO, POLLIN, 0};
    int r = poll(&p, 1, 200);
    if (r < 0) continue;
    if (r == 0) continue;
    if (cmdline_poll(cl) < 0) break;  // RDLINE_EXITED: EOF on stdin
    if (p.revents & (POLLHUP | POLLERR) && !(p.revents & POLLIN)) break;
  }
  g_cli.cl = nullptr;
  cmdline_stdin_exit(cl);
  std::printf("\n");
}

bool run_file(const std::string& path) {
  cmdline* cl = cmdline_file_new(commands(), "tcpterm> ", path.c_str());
  if (!cl) return false;
  g_cli.cl = cl;
  cmdline_interact(cl);
  g_cli.cl = nullptr;
  cmdline_free(cl);
  return true;
}

}  // namespace tcpterm::app
