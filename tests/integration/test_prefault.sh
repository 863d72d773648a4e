#!/usr/bin/env bash
# --prefault on commits each worker's TIME-WAIT record array when the worker
# starts (docs/config.md): the records' bytes are resident before the first
# connection.  With --prefault off (the default) they are mapped as records
# are used.  Measured from outside, as an operator would: the process's
# VmRSS with each setting, nothing else changed, no traffic at all.
set -u
bin=${TCPTERM_BIN:-build/app/tcpterm}
records=4000000                       # 32 bytes each: 128 000 000 bytes
want_kb=$((records * 32 / 1024 * 9 / 10))
fail=0
pids=()
trap 'kill -9 "${pids[@]}" 2>/dev/null; rm -rf /var/run/dpdk/ttpf$$on /var/run/dpdk/ttpf$$off' EXIT
start() {  # start on|off: runs tcpterm for 30 s; sets pid
  "$bin" --lcores 0@0,1@1 --no-huge -m 256 --no-pci --file-prefix "ttpf$$$1" --log-level warn \
    --vdev net_null0 -- --addr 198.18.0.2/24 --max-time-wait "$records" --prefault "$1" \
    --run-seconds 30 </dev/null >/dev/null 2>&1 &
  pid=$!
  pids+=("$pid")
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
stop() { kill -INT "$1" 2>/dev/null; wait "$1" 2>/dev/null; }
# Off first: its resident size once it has settled (two equal readings a
# second apart, at most 30 s) is the baseline.
start off
off=$pid
prev=-1 base=0
for _ in $(seq 30); do
  sleep 1
  base=$(rss_kb "$off")
  [ "$base" -gt 0 ] && [ "$base" = "$prev" ] && break
  prev=$base
done
stop "$off"
# On: the records are committed when the worker starts; allow a loaded
# machine up to 30 s to get there.
start on
on=$pid
got=0
for _ in $(seq 60); do
  sleep 0.5
  got=$(rss_kb "$on")
  [ $((got - base)) -ge "$want_kb" ] && break
done
stop "$on"
if [ "$base" -gt 0 ] && [ $((got - base)) -ge "$want_kb" ]; then
  echo "ok: --prefault on: $((got - base)) kB more resident than off (${base} kB) before any connection; $records records need $((records * 32 / 1024)) kB"
else
  echo "FAIL: --prefault on: VmRSS $got kB, off $base kB: fewer than $want_kb kB of $records TIME-WAIT records resident"
  fail=1
fi
[ -e "/var/run/dpdk/ttpf$$on" ] || [ -e "/var/run/dpdk/ttpf$$off" ] && { echo "FAIL: an EAL runtime directory was left"; fail=1; }
exit $fail
