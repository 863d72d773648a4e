// bench/phase: the machine's phase, measured in a second or so, so that a
// benchmark figure in TSC cycles can be read against the machine it ran on.
//
//   phase [CPU_A CPU_B]      (default 0 1: the loopback's two lcores)
//
// Prints one line:
//   machine_phase: core_clock_ghz=G tsc_ghz=T cross_core_rtt_tsc=R neighbour_share=S dram_tsc=D
//
// - core_clock_ghz: a chain of dependent adds (one per core cycle) timed by
//   the TSC on CPU_B: what a TSC cycle buys in core cycles right now.
// - cross_core_rtt_tsc: one cache line bounced between CPU_A and CPU_B
//   (each side waits for the other's write, then writes): the round trip of
//   a line between the two cores, in TSC cycles, the median of 7 trials.
//   Every frame of the loopback crosses between those two cores (docs/
//   benchmarks.md, section 2, "The eighth pass").
// - neighbour_share: this CPU's add throughput while CPU_A runs the same
//   adds, as a share of it alone.  About 1: two cores.  Well below 1: the
//   host runs the two vCPUs as hardware threads of one core, and the
//   loopback's generator, always busy on CPU_A, slows the terminator.
// - dram_tsc: a random pointer chase over 256 MiB on transparent huge pages
//   (no TLB misses to speak of), on CPU_B: the latency of one miss to
//   memory, the cost of a flow-table bucket no cache holds.
//
// On a shared VM these move by a factor of two or three from minute to
// minute (the host moves the vCPUs); the script prints them before and
// after each run.
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <x86intrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

namespace {

bool pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  return pthread_setaffinity_np(pthread_self(), sizeof s, &s) == 0;
}

double tsc_ghz() {
  using clk = std::chrono::steady_clock;
  const auto w0 = clk::now();
  const uint64_t t0 = __rdtsc();
  while (clk::now() - w0 < std::chrono::milliseconds(100)) {
  }
  const uint64_t t1 = __rdtsc();
  const double ns = double(std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now() - w0).count());
  return double(t1 - t0) / ns;
}

// Core cycles per TSC cycle: 4 dependent adds per iteration, 1 cycle each;
// the loop's own counter and branch run beside them.  The best of 20.
double core_per_tsc() {
  uint64_t best = ~0ull;
  for (int r = 0; r < 20; r++) {
    uint64_t x = 1;
    const uint64_t t0 = __rdtsc();
    for (long i = 0; i < 2000000; i++)
      asm volatile("add $1,%0\n\tadd $1,%0\n\tadd $1,%0\n\tadd $1,%0" : "+r"(x));
    best = std::min<uint64_t>(best, __rdtsc() - t0);
  }
  return 8e6 / double(best);
}

// Independent adds a TSC cycle on this CPU: six chains, so the core's issue
// width, not a dependency, bounds it.  The best of 10.
double add_throughput() {
  uint64_t best = ~0ull;
  for (int r = 0; r < 10; r++) {
    uint64_t x0 = 1, x1 = 2, x2 = 3, x3 = 4, x4 = 5, x5 = 6;
    const uint64_t t0 = __rdtsc();
    for (long i = 0; i < 1000000; i++)
      asm volatile(
          "add $1,%0\n\tadd $1,%1\n\tadd $1,%2\n\tadd $1,%3\n\tadd $1,%4\n\tadd $1,%5\n\t"
          "add $1,%0\n\tadd $1,%1\n\tadd $1,%2\n\tadd $1,%3\n\tadd $1,%4\n\tadd $1,%5"
          : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3), "+r"(x4), "+r"(x5));
    best = std::min<uint64_t>(best, __rdtsc() - t0);
  }
  return 12e6 / double(best);
}

// The throughput above while CPU a runs the same loop, as a share of it
// alone: near 1 when the two CPUs are separate cores, near 0.5-0.7 when the
// host runs them as two hardware threads of one core (then the loopback's
// generator takes issue slots from the terminator).
double neighbour_share(int a) {
  const double alone = add_throughput();
  std::atomic<bool> stop{false}, ready{false};
  std::thread busy([&] {
    pin(a);
    ready.store(true);
    while (!stop.load(std::memory_order_relaxed)) add_throughput();
  });
  while (!ready.load()) {
  }
  const double shared = add_throughput();
  stop.store(true);
  busy.join();
  return shared / alone;
}

struct alignas(64) Line {
  std::atomic<uint64_t> v{0};
};

// One trial: kRounds round trips of a line between the two CPUs.
double bounce(int a) {
  constexpr uint64_t kRounds = 200000;
  static Line line;
  line.v.store(0);
  std::atomic<bool> ready{false};
  std::thread other([&] {
    pin(a);
    ready.store(true);
    for (uint64_t i = 1; i < 2 * kRounds; i += 2) {
      while (line.v.load(std::memory_order_acquire) != i) {
      }
      line.v.store(i + 1, std::memory_order_release);
    }
  });
  while (!ready.load()) {
  }
  const uint64_t t0 = __rdtsc();
  for (uint64_t i = 0; i < 2 * kRounds; i += 2) {
    line.v.store(i + 1, std::memory_order_release);
    while (line.v.load(std::memory_order_acquire) != i + 2) {
    }
  }
  const uint64_t t1 = __rdtsc();
  other.join();
  return double(t1 - t0) / double(kRounds);
}

double dram_latency() {
  constexpr size_t kBytes = size_t(256) << 20, kLines = kBytes / 64;
  void* mem = std::aligned_alloc(size_t(2) << 20, kBytes);
  if (!mem) return 0;
  madvise(mem, kBytes, MADV_HUGEPAGE);
  auto* a = static_cast<uint64_t*>(mem);
  // One cycle through every line in random order.
  std::vector<uint32_t> order(kLines);
  for (size_t i = 0; i < kLines; i++) order[i] = uint32_t(i);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
  for (size_t i = 0; i < kLines; i++) a[size_t(order[i]) * 8] = uint64_t(order[(i + 1) % kLines]) * 8;
  uint64_t x = uint64_t(order[0]) * 8;
  for (int i = 0; i < 100000; i++) x = a[x];  // warm the page tables
  constexpr int kSteps = 500000;
  const uint64_t t0 = __rdtsc();
  for (int i = 0; i < kSteps; i++) x = a[x];
  const uint64_t t1 = __rdtsc();
  asm volatile("" ::"r"(x));
  std::free(mem);
  return double(t1 - t0) / kSteps;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 1 && argc != 3) {
    std::fprintf(stderr, "usage: %s [CPU_A CPU_B]\n", argv[0]);
    return 2;
  }
  int cpu[2] = {0, 1};
  for (int i = 1; i < argc; i++) {
    char* end = nullptr;
    const long v = std::strtol(argv[i], &end, 10);
    if (end == argv[i] || *end || v < 0 || v >= CPU_SETSIZE) {
      std::fprintf(stderr, "%s: bad cpu '%s'\n", argv[0], argv[i]);
      return 2;
    }
    cpu[i - 1] = int(v);
  }
  const int a = cpu[0], b = cpu[1];
  for (int c : {a, b})
    if (!pin(c)) {
      std::fprintf(stderr, "%s: cannot run on cpu %d\n", argv[0], c);
      return 2;
    }
  const double tsc = tsc_ghz();
  const double core = core_per_tsc() * tsc;
  std::vector<double> rtt;
  for (int i = 0; i < 7; i++) rtt.push_back(bounce(a));  // this thread is on b
  std::sort(rtt.begin(), rtt.end());
  const double share = neighbour_share(a);
  const double dram = dram_latency();
  std::printf(
      "machine_phase: core_clock_ghz=%.2f tsc_ghz=%.3f cross_core_rtt_tsc=%.0f neighbour_share=%.2f dram_tsc=%.0f (cpus %d,%d)\n",
      core, tsc, rtt[3], share, dram, a, b);
  return 0;
}
