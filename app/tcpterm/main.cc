// tcpterm: EAL -> ports -> workers -> CLI (or a stats loop) -> clean stop.
//
//   tcpterm [EAL options] -- [options]      (testpmd convention)
//
// Application options are parsed before EAL starts, so a bad option exits
// with status 2 and one line naming it before anything is initialised.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_pdump.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli.h"
#include "config/options.h"
#include "dp/dataplane.h"
#include "bench.h"
#include "render.h"
#include "http_stats.h"
#include "telemetry.h"

volatile int g_signal = 0;
volatile std::sig_atomic_t g_quiesce = 0;

namespace {

void on_signal(int sig) { g_signal = sig; }
void on_quiesce(int) { g_quiesce = 1; }

void setup_logging(const tcpterm::config::Options& o) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (!o.log_file.empty())
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(o.log_file, true));
  auto lg = std::make_shared<spdlog::logger>("tcpterm", sinks.begin(), sinks.end());
  lg->set_level(spdlog::level::from_str(o.log_level));
  lg->set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  spdlog::set_default_logger(lg);
}

// Non-interactive: run until a signal (or --run-seconds), printing a stats
// block every --stats-period seconds.
void run_loop(tcpterm::dp::Dataplane& dp) {
  using clock = std::chrono::steady_clock;
  const auto& o = dp.options();
  auto start = clock::now();
  auto last = start;
  auto last_report = start;
  auto last_bench = start;
  auto stopped = start;  // when SIGUSR1 stopped the workers
  std::unique_ptr<tcpterm::app::BenchReporter> bench;
  if (!o.bench_csv.empty()) {
    bench = std::make_unique<tcpterm::app::BenchReporter>(dp, o.bench_csv);
    if (!bench->ok()) spdlog::error("cannot write {}", o.bench_csv);
    else bench->sample(0, 0);
  }
  tcpterm::app::Totals prev = tcpterm::app::snapshot(dp);
  while (!g_signal) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_quiesce && dp.running()) {
      // SIGUSR1: the workers stop polling; the ports stay open until SIGINT.
      // Two processes joined by net_memif stop this way first, so that
      // neither polls while the other closes: DPDK 22.11's memif unmaps the
      // shared rings from its interrupt thread when the peer leaves, with
      // nothing to hold off a worker inside a burst.
      dp.stop();
      stopped = clock::now();  // the run's length ends here, not at SIGINT
      tcpterm::app::out("quiesced: workers stopped, ports open until SIGINT\n");
    }
    auto now = clock::now();
    if (now - last_report >= std::chrono::seconds(1)) {
      tcpterm::app::report_events(dp);
      last_report = now;
    }
    double up = std::chrono::duration<double>(now - start).count();
    if (o.run_seconds && up >= o.run_seconds) break;
    if (!dp.running()) continue;  // quiesced: nothing moves, nothing to sample
    if (bench && bench->ok() && now - last_bench >= std::chrono::seconds(1)) {
      bench->sample(up, std::chrono::duration<double>(now - last_bench).count());
      last_bench = now;
    }
    double since = std::chrono::duration<double>(now - last).count();
    if (o.stats_period_s && since >= o.stats_period_s) {
      tcpterm::app::Totals t = tcpterm::app::snapshot(dp);
      if (t.ok) {
        tcpterm::app::out(tcpterm::app::render_period(t, prev, since, up));
        prev = std::move(t);
      }
      last = now;
    }
  }
  if (bench && bench->ok())
    tcpterm::app::out(bench->summary(
        std::chrono::duration<double>((dp.running() ? clock::now() : stopped) - start).count()));
}

}  // namespace

// EAL cleanup, then the process's runtime directory (/var/run/dpdk/PREFIX):
// a primary that exits cleanly leaves nothing behind.
static void cleanup_eal() {
  std::string dir = rte_eal_get_runtime_dir();
  rte_eal_cleanup();
  std::error_code ec;
  if (!dir.empty() && dir.find("/dpdk/") != std::string::npos) std::filesystem::remove_all(dir, ec);
}

int main(int argc, char** argv) {
  // Split at "--": EAL options before, ours after.
  int split = argc;
  for (int i = 1; i < argc; i++)
    if (std::strcmp(argv[i], "--") == 0) {
      split = i;
      break;
    }
  std::vector<char*> app_args{argv[0]};
  for (int i = split + 1; i < argc; i++) app_args.push_back(argv[i]);
  tcpterm::config::Options opts;
  if (auto err = tcpterm::config::parse_options(int(app_args.size()), app_args.data(), opts)) {
    std::fprintf(stderr, "tcpterm: %s\n", err->c_str());
    return 2;
  }
  setup_logging(opts);

  int eal_argc = split;
  if (rte_eal_init(eal_argc, argv) < 0) {
    std::fprintf(stderr, "tcpterm: EAL initialisation failed: %s\n", rte_strerror(rte_errno));
    return 2;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGUSR1, on_quiesce);
  // Lets dpdk-dumpcap / dpdk-pdump capture tcpterm's ports.
  if (rte_pdump_init() != 0) spdlog::warn("pdump unavailable: {}", rte_strerror(rte_errno));

  int rc = 0;
  {
    tcpterm::dp::Dataplane dp(opts);
    std::string err;
    if (!dp.init(err)) {
      spdlog::error("{}", err);
      std::fprintf(stderr, "tcpterm: %s\n", err.c_str());
      bool leak;
      dp.shutdown(leak);
      cleanup_eal();
      return 1;
    }
    for (const auto& p : dp.ports())
      spdlog::info("port {} ({}, {}): {} queue(s), rss {}{}, tx checksum offload {}", p.id, p.name,
                   p.driver, p.queues, p.rss ? "on" : "off", p.sw_steer ? ", software flow steering" : "",
                   p.virtual_wire ? "on (in-memory link)" : p.tx_tcp_cksum ? "on" : "off");
    spdlog::info("{} worker lcore(s), {} listener(s), MSL {} ms", dp.workers().size(),
                 opts.listens.size(), opts.stack.tcp.msl_ms);
    dp.start();
    tcpterm::app::g_cli.dp = &dp;
    tcpterm::app::telemetry_register(&dp);
    tcpterm::app::StatsServer stats(dp);
    if (opts.http_stats_port && !stats.start(opts.http_stats_addr, opts.http_stats_port, err)) {
      spdlog::error("{}", err);
      std::fprintf(stderr, "tcpterm: %s\n", err.c_str());
      tcpterm::app::g_cli.quit = true;
      rc = 1;
    }
    if (!opts.cmdline_file.empty()) tcpterm::app::run_file(opts.cmdline_file);
    if (opts.interactive && !tcpterm::app::g_cli.quit) tcpterm::app::run_interactive();
    else if (!tcpterm::app::g_cli.quit) run_loop(dp);

    tcpterm::app::Totals t = tcpterm::app::snapshot(dp);
    if (t.ok) {
      tcpterm::app::out("==== tcpterm summary ====\n" + tcpterm::app::render_states(t));
      std::printf("  connections_opened: %llu\n  connections_established: %llu\n"
                  "  time_wait_entered: %llu\n  time_wait_expired: %llu\n",
                  (unsigned long long)(t.tcp.passive_opens + t.tcp.active_opens),
                  (unsigned long long)t.tcp.established, (unsigned long long)t.tcp.tw_entered,
                  (unsigned long long)t.tcp.tw_expired);
    }
    stats.stop();  // before the dataplane goes: the server reads through it
    tcpterm::app::telemetry_unregister();
    rte_pdump_uninit();
    bool leak = false;
    std::string s = dp.shutdown(leak);
    std::printf("%s\n", s.c_str());
    std::fflush(stdout);
    if (leak) {
      spdlog::error("mbufs were not all returned to their pools");
      rc = 1;
    }
  }
  cleanup_eal();
  return rc;
}
