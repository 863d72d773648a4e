// start / stop / quit / help.
#include <cstring>

#include "cli/cli.h"

namespace tcpterm::app {
namespace {

struct OneWord {
  cmdline_fixed_string_t word;
};

void start_parsed(void*, cmdline*, void*) {
  if (g_cli.dp->running()) return out("workers already running\n");
  g_cli.dp->start();
  out("workers started\n");
}
cmdline_parse_token_string_t tok_start = TOKEN_STRING_INITIALIZER(OneWord, word, "start");
cmdline_parse_inst_t cmd_start = {start_parsed, nullptr, "start: start the data-plane lcores",
                                  {TCPTERM_TOK(tok_start), nullptr}};

void stop_parsed(void*, cmdline*, void*) {
  if (!g_cli.dp->running()) return out("workers already stopped\n");
  g_cli.dp->stop();
  out("workers stopped (flows kept; timers resume on start)\n");
}
cmdline_parse_token_string_t tok_stop = TOKEN_STRING_INITIALIZER(OneWord, word, "stop");
cmdline_parse_inst_t cmd_stop = {stop_parsed, nullptr, "stop: stop the data-plane lcores",
                                 {TCPTERM_TOK(tok_stop), nullptr}};

void quit_parsed(void*, cmdline* cl, void*) {
  g_cli.quit = true;
  cmdline_quit(cl);
}
cmdline_parse_token_string_t tok_quit = TOKEN_STRING_INITIALIZER(OneWord, word, "quit");
cmdline_parse_inst_t cmd_quit = {quit_parsed, nullptr, "quit: stop everything cleanly and exit",
                                 {TCPTERM_TOK(tok_quit), nullptr}};

void help_all() {
  std::string s = "Commands (tab completes):\n";
  for (auto* c : command_list()) s += std::string("  ") + c->help_str + "\n";
  out(s);
}
void help_parsed(void*, cmdline*, void*) { help_all(); }
cmdline_parse_token_string_t tok_help = TOKEN_STRING_INITIALIZER(OneWord, word, "help");
cmdline_parse_inst_t cmd_help = {help_parsed, nullptr, "help [COMMAND]: list commands, or those starting with COMMAND",
                                 {TCPTERM_TOK(tok_help), nullptr}};

struct HelpWord {
  cmdline_fixed_string_t help;
  cmdline_multi_string_t what;
};
void help_word_parsed(void* res, cmdline*, void*) {
  std::string what = static_cast<HelpWord*>(res)->what;
  std::string s;
  for (auto* c : command_list())
    if (std::strncmp(c->help_str, what.c_str(), what.size()) == 0) s += std::string("  ") + c->help_str + "\n";
  out(s.empty() ? "no command starts with '" + what + "'\n" : s);
}
cmdline_parse_token_string_t tok_help2 = TOKEN_STRING_INITIALIZER(HelpWord, help, "help");
cmdline_parse_token_string_t tok_help_what = TOKEN_STRING_INITIALIZER(HelpWord, what, TOKEN_STRING_MULTI);
cmdline_parse_inst_t cmd_help_word = {help_word_parsed, nullptr, "help COMMAND: help for one command",
                                      {TCPTERM_TOK(tok_help2), TCPTERM_TOK(tok_help_what), nullptr}};

// debug stall MS: every worker sleeps MS ms inside a control request, so a
// query times out (tests of the control channel: replies are matched to
// their requests, late ones freed).
struct Stall {
  cmdline_fixed_string_t debug, stall;
  uint32_t ms;
};
void stall_parsed(void* res, cmdline*, void*) {
  uint32_t ms = static_cast<Stall*>(res)->ms;
  if (ms > 10000) return out("error: at most 10000 ms\n");
  auto rs = g_cli.dp->query_each(
      [&](dp::Request& r, size_t) {
        r.kind = dp::Request::Kind::Stall;
        r.value = ms;
      },
      200);
  out(rs.empty() ? "stall: the workers did not answer within 200 ms (as intended)\n"
                 : "stall: the workers answered in time\n");
}
cmdline_parse_token_string_t tok_dbg = TOKEN_STRING_INITIALIZER(Stall, debug, "debug");
cmdline_parse_token_string_t tok_stall = TOKEN_STRING_INITIALIZER(Stall, stall, "stall");
cmdline_parse_token_num_t tok_stall_ms = TOKEN_NUM_INITIALIZER(Stall, ms, RTE_UINT32);
cmdline_parse_inst_t cmd_stall = {stall_parsed, nullptr,
                                  "debug stall MS: make every worker sleep MS ms in a control request (tests)",
                                  {TCPTERM_TOK(tok_dbg), TCPTERM_TOK(tok_stall), TCPTERM_TOK(tok_stall_ms), nullptr}};

}  // namespace

void register_control(std::vector<cmdline_parse_inst_t*>& v) {
  v.insert(v.end(), {&cmd_help, &cmd_help_word, &cmd_start, &cmd_stop, &cmd_quit, &cmd_stall});
}

}  // namespace tcpterm::app
