#!/usr/bin/env bash
# The loopback teardown benchmark path works end to end (not a speed test):
# the ring pair joins generator and terminator, every close mode completes
# connections with no failure, the expected side holds TIME-WAIT, the CSV
# has a row a second, and every mbuf comes back.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TCPTERM_BIN:-$top/build/app/tcpterm}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for mode in server client simultaneous rst; do
  app=http
  [ $mode = simultaneous ] && app="discard,close=open"
  out=$(timeout 60 "$bin" --lcores 0@0,1@1,2@0 --no-huge -m 1024 --no-pci --file-prefix "lbt$$" --log-level warn -- \
    --ring-pair --addr 1@198.18.0.2/24 --addr 0@198.18.128.1-198.18.255.254/17 --listen "198.18.0.2:80/$app" \
    --connect "198.18.0.2:80,close=$mode,concurrency=64,rate=20000,duration=2" --run-seconds 3 \
    --msl-ms 1000 --max-time-wait 200000 --bench-csv "$tmp/$mode.csv" 2>&1)
  rc=$?
  completed=$(sed -n 's/^ *connections_completed: \([0-9]*\)$/\1/p' <<<"$out")
  failed=$(sed -n 's/^ *failed: \([0-9]*\) .*/\1/p' <<<"$out")
  rows=$(($(wc -l <"$tmp/$mode.csv") - 1))
  tw=$(sed -n 's/^ *time_wait_entered: \([0-9]*\)$/\1/p' <<<"$out" | tail -1)
  if [ $rc -eq 0 ] && [ "${completed:-0}" -ge 20000 ] && [ "${failed:-1}" -eq 0 ] && [ "$rows" -ge 2 ] &&
     grep -Eq "mbufs: ([0-9]+)/\1 back" <<<"$out"; then
    echo "ok: $mode: $completed completed, 0 failed, $rows CSV rows, TIME-WAIT entered $tw"
  else
    echo "FAIL: $mode rc=$rc completed=$completed failed=$failed rows=$rows"; tail -20 <<<"$out"; fail=1
  fi
  case $mode in
    rst) [ "${tw:-1}" -eq 0 ] || { echo "FAIL: rst mode entered TIME-WAIT"; fail=1; } ;;
    *) [ "${tw:-0}" -ge 20000 ] || { echo "FAIL: $mode: TIME-WAIT entered $tw"; fail=1; } ;;
  esac
done
exit $fail
