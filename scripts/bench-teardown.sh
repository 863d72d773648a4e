#!/usr/bin/env bash
# scripts/bench-teardown.sh [--mode client|server|simultaneous|rst] [--seconds S]
#                           [--rate R] [--msl-ms MS] [--concurrency N] [--out DIR]
#                           [--http-stats IP:PORT] [--ipv6] [--memif]
#                           [--ring-cksum offload|software] [--bin PATH]
#
# The loopback teardown benchmark: one tcpterm process, a generator (client
# role) and a terminator (http) on two lcores joined by a pair of net_ring
# ports -- no NIC, no kernel, no hugetlbfs pages (the flow tables on
# transparent huge pages: --table-hugepages on; the TIME-WAIT records
# committed at start: --prefault on).  Prints a progress line every
# second, writes DIR/teardown.csv (connections per state per role, rates)
# and renders DIR/teardown.png, then ends with the summary: CPS, teardowns/s,
# teardown latency p50/p99, cycles per lifecycle per role, bytes per flow and
# per TIME-WAIT record, mbufs in use.  --ipv6: the same over IPv6
# (2001:2::2, clients from 32 768 addresses 2001:2::1:0-2001:2::1:7fff).
# --memif: two processes, as two machines: the terminator (worker on CPU 1)
# and the generator (worker on CPU 0) are separate tcpterm processes joined
# by net_memif (the terminator the memif server); the summary merges the
# generator's figures (CPS, failures, latency) with the terminator's
# (cycles, TIME-WAIT).  --mode forgetful makes the generator forget each
# connection at close (no TIME-WAIT, no RST, challenge ACKs unanswered).
# --ring-cksum: the ring pair carries checksums as offload requests, as
# Linux's veth does (offload, the default: neither lcore computes them,
# docs/config.md), or both lcores compute and verify every one (software,
# as over a device without offload).  memif offers no offload: there both
# processes always do.  --bin: the tcpterm binary to run (default: this
# tree's build/app/tcpterm, built first); scripts/bench-ab.sh passes two.
set -u
start_dir=$PWD  # a relative --bin is the caller's
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
mode=server seconds=20 rate=0 msl=5000 conc=256 out=build/bench stats=() ipv6=0 memif=0 term_extra=() rcksum=offload bin=
while [ $# -gt 0 ]; do
  case $1 in
    --mode) mode=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --msl-ms) msl=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --http-stats) stats=(--http-stats "$2"); shift 2 ;;  # watch it live: docs/observability.md
    --ipv6) ipv6=1; shift ;;
    --memif) memif=1; shift ;;
    --ring-cksum) rcksum=$2; shift 2 ;;
    --bin) case $2 in /*) bin=$2 ;; *) bin=$start_dir/$2 ;; esac; shift 2 ;;
    --term-opt) term_extra+=("$2"); shift 2 ;;  # an extra terminator option (repeatable), e.g. --max-flows=65536
    *) echo "usage: $0 [--mode client|server|simultaneous|rst] [--seconds S] [--rate R] [--msl-ms MS] [--concurrency N] [--out DIR] [--http-stats IP:PORT] [--ipv6] [--memif] [--ring-cksum offload|software] [--bin PATH]" >&2; exit 2 ;;
  esac
done
case $rcksum in offload|software) ;; *) echo "$0: --ring-cksum: bad value '$rcksum' (offload, software)" >&2; exit 2 ;; esac
if [ -n "$bin" ] && [ ! -x "$bin" ]; then echo "$0: --bin: '$bin' is not an executable" >&2; exit 2; fi
ensure_packages "${TCPTERM_BUILD_PKGS[@]}" gnuplot-nox >/dev/null || exit 1
build build || exit 1  # bench/phase, and the default binary
[ -n "$bin" ] || bin=./build/app/tcpterm
echo "binary: $bin"
mkdir -p "$out"
# The machine's phase (bench/phase.cc): core clock, the round trip of a cache
# line between the two benchmark CPUs and a memory miss, in TSC cycles.  On a
# shared VM they move by a factor of two or three within minutes, and the
# cycles per lifecycle with them: printed before and after every run, so a
# figure can be read against the machine it was measured on.
phase() { ./build/bench/phase 0 1 2>/dev/null | sed "s/^machine_phase:/  machine_phase_$1:/"; }
# TIME-WAIT must hold CPS x 2*MSL records on each side that keeps them.
cps_guess=$([ "$rate" -gt 0 ] && echo "$rate" || echo 1200000)
tw=$(( cps_guess * 2 * msl / 1000 * 12 / 10 + 65536 ))
app=http
[ "$mode" = simultaneous ] && app="discard,close=open"
# Hugepages when the machine has them (faster), --no-huge otherwise.
mem="--no-huge -m 2048"
[ "$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)" -ge 512 ] && mem="-m 1024"
if [ "$memif" = 1 ]; then
  # Two processes joined by net_memif: each its own EAL, port, pool, stack.
  sock=/run/tcpterm-bench-$$.sock
  rm -f "$sock"
  # Whatever happens, nothing is left behind: a process still running (the
  # script interrupted, or one side stuck) is killed, and a process that did
  # not exit cleanly leaves its EAL runtime directory, removed here.
  trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$sock" /var/run/dpdk/benchT$$ /var/run/dpdk/benchG$$' EXIT
  echo "command: $0 --memif --mode $mode --seconds $seconds --rate $rate --msl-ms $msl --concurrency $conc ${term_extra[*]}"
  echo "terminator: its own process, worker on cpu 1 (memif server); generator: its own process, worker on cpu 0 (memif client)"
  before=$(phase before)
  "$bin" --lcores 0@0,1@1 $mem --no-pci --file-prefix "benchT$$" --log-level warn \
    --vdev "net_memif0,role=server,socket=$sock" -- --addr 198.18.0.2/16 --listen "198.18.0.2:80/$app" \
    --run-seconds $((seconds + 60)) --msl-ms "$msl" --max-time-wait "$tw" --max-flows 262144 --table-hugepages on --prefault on \
    --bench-csv "$out/terminator.csv" "${term_extra[@]}" "${stats[@]}" >"$out/terminator.log" 2>&1 &
  tpid=$!
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  "$bin" --lcores 0@0,1@0 $mem --no-pci --file-prefix "benchG$$" --log-level warn \
    --vdev "net_memif0,role=client,socket=$sock" -- --addr 198.18.128.1-198.18.255.254/16 \
    --connect "198.18.0.2:80,close=$mode,concurrency=$conc,rate=$rate,duration=$seconds" \
    --run-seconds $((seconds + 60)) --msl-ms "$msl" --max-time-wait "$tw" --max-flows 1048576 --table-hugepages on --prefault on \
    --bench-csv "$out/teardown.csv" >"$out/generator.log" 2>&1 &
  gpid=$!
  # The generator opens for $seconds; a second later (its own clock: its
  # progress line for that second) both stop polling (SIGUSR1) before either
  # closes its port (SIGINT): DPDK 22.11's memif unmaps the shared rings from
  # its interrupt thread when the peer leaves, and a worker preempted inside
  # a burst then faults (seen once beside a CPU hog: the terminator crashed
  # as the generator exited).  The --run-seconds above are only a backstop.
  for _ in $(seq $(( (seconds + 30) * 10 ))); do
    grep -qE "^t= *$((seconds + 1))s" "$out/generator.log" 2>/dev/null && break
    kill -0 "$gpid" 2>/dev/null || break
    sleep 0.1
  done
  kill -USR1 "$gpid" "$tpid" 2>/dev/null
  for _ in $(seq 100); do
    grep -q '^quiesced' "$out/generator.log" && grep -q '^quiesced' "$out/terminator.log" && break
    kill -0 "$gpid" 2>/dev/null && kill -0 "$tpid" 2>/dev/null || break
    sleep 0.1
  done
  kill -INT "$gpid" 2>/dev/null
  wait "$gpid"
  grc=$?
  kill -INT "$tpid" 2>/dev/null
  wait "$tpid"
  trc=$?
  rm -f "$sock"
  grep -E "^t=" "$out/generator.log"
  # The bench summary block of each process (not the shutdown lines after it).
  block() { sed -n '/^==== teardown benchmark summary/,/^====/p' "$1"; }
  echo "==== teardown benchmark summary (two processes, memif) ===="
  block "$out/generator.log" | grep -E "^  (seconds|connections_opened|connections_completed|failed|cps|teardowns_per_s|teardown_latency_p50_us|teardown_latency_p99_us):"
  block "$out/terminator.log" | grep -E "^  (terminator_lifecycles|terminator_cycles_per_lifecycle|terminator_busy_percent|time_wait_records):"
  block "$out/generator.log" | grep -E "^  terminator_cycles_per_lifecycle:" | sed 's/terminator_cycles_per_lifecycle/generator_process_cycles_per_lifecycle/'
  block "$out/generator.log" | grep -E "^  tx_dropped_frames:" | sed 's/tx_dropped_frames/generator_tx_dropped_frames/'
  block "$out/terminator.log" | grep -E "^  (tx_dropped_frames|syn_dropped_overload|orphans_reclaimed|limits_hit):" | sed 's/^  /  terminator_/'
  echo "  terminator_$(grep -o 'mbufs: [0-9]*/[0-9]* back' "$out/terminator.log")"
  echo "  generator_$(grep -o 'mbufs: [0-9]*/[0-9]* back' "$out/generator.log")"
  echo "$before"
  phase after
  [ $grc -eq 0 ] && [ $trc -eq 0 ]
  exit
fi
net=(--addr 1@198.18.0.2/24 --addr 0@198.18.128.1-198.18.255.254/17 --listen "198.18.0.2:80/$app"
     --connect "198.18.0.2:80,close=$mode,concurrency=$conc,rate=$rate,duration=$seconds")
[ "$ipv6" = 1 ] && net=(--addr 1@2001:2::2/64 --addr 0@2001:2::1:0-2001:2::1:7fff/64 --listen "[2001:2::2]:80/$app"
     --connect "[2001:2::2]:80,close=$mode,concurrency=$conc,rate=$rate,duration=$seconds")
echo "command: $0 --mode $mode --seconds $seconds --rate $rate --msl-ms $msl --concurrency $conc --ring-cksum $rcksum$([ "$ipv6" = 1 ] && echo " --ipv6")"
echo "terminator: lcore 1 (cpu 1); generator: lcore 2 (cpu 0, shared with the idle CLI lcore)"
trap 'rm -rf /var/run/dpdk/bench$$' EXIT  # left behind only if tcpterm did not exit cleanly
before=$(phase before)
"$bin" --lcores 0@0,1@1,2@0 $mem --no-pci --file-prefix "bench$$" --log-level warn -- \
  --ring-pair --ring-cksum "$rcksum" "${net[@]}" \
  --run-seconds $((seconds + 1)) --msl-ms "$msl" --max-time-wait "$tw" --max-flows 262144 --table-hugepages on --prefault on \
  --bench-csv "$out/teardown.csv" "${stats[@]}" | tee "$out/teardown.log" | grep -v -E '^(LISTEN|SYN|ESTAB|FIN|CLOSE|CLOSING|LAST|TIME)' 
rc=${PIPESTATUS[0]}
echo "$before"
phase after
if command -v gnuplot >/dev/null && [ -s "$out/teardown.csv" ]; then
  gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 1200,700 noenhanced
set output "$out/teardown.png"
set title "tcpterm loopback teardown benchmark: $mode close, MSL $msl ms (TIME-WAIT plateau = CPS x 2 MSL)"
set xlabel "seconds"
set ylabel "connections in state"
set y2label "per second"
set y2tics
set ytics nomirror
set key outside right
set logscale y
plot "$out/teardown.csv" using 1:(column("term_TIME_WAIT")+column("gen_TIME_WAIT")+1) with lines lw 2 title "TIME-WAIT (both roles)", \
     "" using 1:(column("term_ESTABLISHED")+column("gen_ESTABLISHED")+1) with lines title "ESTABLISHED", \
     "" using 1:(column("term_SYN_RECEIVED")+1) with lines title "SYN-RECEIVED", \
     "" using 1:(column("term_FIN_WAIT_1")+column("gen_FIN_WAIT_1")+1) with lines title "FIN-WAIT-1", \
     "" using 1:(column("term_LAST_ACK")+column("gen_LAST_ACK")+1) with lines title "LAST-ACK", \
     "" using 1:(column("term_CLOSING")+column("gen_CLOSING")+1) with lines title "CLOSING", \
     "" using 1:"cps" axes x1y2 with lines dt 2 title "CPS (right axis)"
GP
  echo "plot: $out/teardown.png   csv: $out/teardown.csv"
fi
exit "$rc"
