#!/usr/bin/env bash
# scripts/bench-scale.sh [FLOWS] [SECONDS] [RAMP_CPS]: scale runs on the loopback ring pair.
#  1. hold FLOWS (default 10 000 000) concurrently ESTABLISHED connections
#     (the generator keeps each open after its response) and report the bytes
#     per flow, from the structures and from the process RSS.  The ramp is
#     paced at RAMP_CPS (default 200 000/s): unpaced, the generator overruns
#     the pair's 4096-entry rings and handshakes fall into SYN backoff; at
#     300 000/s the terminator falls behind once its tables leave the cache
#     on a busy machine, and the flows whose ACKs were lost are reclaimed
#     under memory pressure (docs/benchmarks.md 3b);
#  2. run SECONDS (default 70) at the top rate, server closes first, with the
#     default MSL of 30 s (TIME-WAIT 60 s), so tens of millions of TIME-WAIT
#     records are held at once, and report their memory.
# Each phase prints the capacity it was configured with.  Needs ~12 GiB.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
flows=${1:-10000000}
secs=${2:-70}
ramp=${3:-200000}
ensure_packages "${TCPTERM_BUILD_PKGS[@]}" gnuplot-nox >/dev/null || exit 1
build build || exit 1
cap=$((flows + flows / 8 + 65536))
echo "== phase 1: $flows established flows (both roles hold them: 2 x $flows TCBs); capacity $cap flows per lcore"
out=$(./build/app/tcpterm --lcores 0@0,1@1,2@0 --no-huge -m 2048 --no-pci --file-prefix "scale$$" --log-level warn -- \
  --ring-pair --addr 1@198.18.0.2/24 --addr 0@198.18.128.1-198.18.255.254/17 --listen 198.18.0.2:80/http \
  --connect "198.18.0.2:80,close=none,count=$flows,concurrency=$flows,rate=$ramp" \
  --max-flows "$cap" --max-time-wait 65536 --buffer-chunks 65536 --run-seconds "$((flows / ramp + 15))" \
  --bench-csv "build/scale-established.csv" 2>&1)
echo "$out" | grep -E '^t=' | tail -3
echo "$out" | grep -E '^\s+(connections_opened|connections_completed|failed|flows_now|configured_capacity|reserved_memory|process_rss|bytes_per_flow):'
held=$(echo "$out" | sed -n 's/^ *flows_now: \([0-9]*\) (established \([0-9]*\)).*/\2/p')
rss=$(echo "$out" | sed -n 's/^ *process_rss_bytes: \([0-9]*\)$/\1/p')
[ -n "$held" ] && [ "$held" -gt 0 ] && awk -v r="$rss" -v h="$held" 'BEGIN { printf "  rss_per_established_flow: %.0f bytes (process RSS / flows held, both roles)\n", r / h }'
echo "$out" | grep -E '^shutdown:'
echo "== phase 2: ${secs}s at the top rate, server closes first, MSL 30000 ms (TIME-WAIT 60 s)"
./scripts/bench-teardown.sh --mode server --seconds "$secs" --msl-ms 30000 --out build/scale-timewait 2>&1 |
  grep -E '^\s+(seconds|cps|failed|time_wait_records|bytes_per_time_wait_record|reserved_memory|process_rss|configured_capacity|terminator_cycles):|^shutdown:|plot:'
