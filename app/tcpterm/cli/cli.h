// The interactive CLI on DPDK's cmdline library (testpmd's command shape:
// result struct, parsed callback, tokens, cmdline_parse_inst_t with a
// help_str), one file per command family.  The CLI runs on the main lcore
// and reaches workers only through Dataplane::query().
#pragma once
#include <cmdline.h>
#include <cmdline_parse.h>
#include <cmdline_parse_num.h>
#include <cmdline_parse_string.h>

#include <string>
#include <vector>

#include "dp/dataplane.h"

namespace tcpterm::app {

struct CliState {
  dp::Dataplane* dp = nullptr;
  bool quit = false;
  cmdline* cl = nullptr;
};
extern CliState g_cli;

#define TCPTERM_TOK(t) reinterpret_cast<cmdline_parse_token_hdr_t*>(&(t))

// Prints and flushes (the CLI is often driven through a pipe).
void out(const std::string& s);

void register_control(std::vector<cmdline_parse_inst_t*>& v);
void register_port(std::vector<cmdline_parse_inst_t*>& v);
void register_tcp(std::vector<cmdline_parse_inst_t*>& v);
void register_config(std::vector<cmdline_parse_inst_t*>& v);
void register_pool(std::vector<cmdline_parse_inst_t*>& v);

// All commands, null-terminated (the cmdline context).
cmdline_parse_ctx_t* commands();
const std::vector<cmdline_parse_inst_t*>& command_list();

// Runs commands from stdin (interactive or a pipe) until quit / EOF / signal.
void run_interactive();
// Runs the commands in a file (--cmdline-file).
bool run_file(const std::string& path);

}  // namespace tcpterm::app
