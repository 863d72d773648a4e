#!/usr/bin/env bash
# Smoke runs of the two-process benchmark modes (not speed tests, no
# thresholds on rates): scripts/bench-teardown.sh --memif (server close and
# the forgetful generator) and one point of scripts/bench-overload.sh.
# Each must complete connections, print its merged summary, and get every
# mbuf back in both processes.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for mode in server forgetful; do
  out=$(timeout 120 scripts/bench-teardown.sh --memif --mode "$mode" --seconds 2 --rate 20000 --msl-ms 1000 --out "$tmp/$mode" 2>&1)
  rc=$?
  completed=$(sed -n 's/^  connections_completed: \([0-9]*\)$/\1/p' <<<"$out" | head -1)
  backs=$(grep -cE "mbufs: ([0-9]+)/\1 back" <<<"$out")
  if [ $rc -eq 0 ] && [ "${completed:-0}" -ge 10000 ] && [ "$backs" -eq 2 ] &&
     grep -q "terminator_cycles_per_lifecycle" <<<"$out"; then
    echo "ok: --memif --mode $mode: $completed completed; both processes returned every mbuf"
    if grep -q '^quiesced' "$tmp/$mode/generator.log" && grep -q '^quiesced' "$tmp/$mode/terminator.log"; then
      echo "ok: --mode $mode: both processes stopped polling (SIGUSR1) before either closed its port"
    else
      echo "FAIL: --mode $mode: a process did not report 'quiesced' before its shutdown"; fail=1
    fi
  else
    echo "FAIL: --memif --mode $mode rc=$rc completed=$completed mbufs-back-lines=$backs"; tail -30 <<<"$out"; fail=1
  fi
  # The machine's phase (bench/phase) beside the run, before and after it.
  re="core_clock_ghz=[0-9]+\.[0-9]+ tsc_ghz=[0-9]+\.[0-9]+ cross_core_rtt_tsc=[1-9][0-9]* neighbour_share=[0-9]+\.[0-9]+ dram_tsc=[1-9][0-9]*"
  if grep -qE "^  machine_phase_before: $re" <<<"$out" && grep -qE "^  machine_phase_after: $re" <<<"$out"; then
    echo "ok: --mode $mode: the machine's phase printed before and after the run"
  else
    echo "FAIL: --mode $mode: no machine_phase lines"; grep machine_phase <<<"$out"; fail=1
  fi
  if [ "$mode" = forgetful ]; then
    tw=$(sed -n 's/^  time_wait_records: \([0-9]*\) .*/\1/p' <<<"$out" | head -1)
    [ "${tw:-1}" -eq 0 ] && echo "ok: forgetful: no TIME-WAIT on the terminator (it closed passively)" ||
      { echo "FAIL: forgetful: terminator TIME-WAIT $tw"; fail=1; }
  fi
done
out=$(timeout 300 scripts/bench-overload.sh --rates 20000 --runs 1 --seconds 2 --admission both --out "$tmp/ov" 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/ov/overload.csv")" -eq 3 ] && [ "$(grep -cE "^ +20000 +(on|off) " <<<"$out")" -eq 2 ] && [ -s "$tmp/ov/overload.png" ]; then
  echo "ok: bench-overload.sh --admission both: one point, a CSV row and a table row per mode, the PNG"
else
  echo "FAIL: bench-overload.sh rc=$rc"; tail -20 <<<"$out"; fail=1
fi
build/bench/phase 0 >/dev/null 2>&1; [ $? -eq 2 ] && echo "ok: bench/phase with one CPU: usage, exit 2" ||
  { echo "FAIL: bench/phase 0 did not exit 2"; fail=1; }
ls /run/tcpterm-bench-*.sock 2>/dev/null && { echo "FAIL: a memif socket was left behind"; fail=1; }
exit $fail
