#!/usr/bin/env bash
# scripts/bench-proxy.sh still runs end to end (a smoke test, not a speed
# test: one short run of each figure, no threshold on any number): HAProxy
# and the proxy both answer, and the three RESULT lines come out with
# figures in them.  It leaves no namespace and no DPDK runtime directory.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$(timeout 300 bash "$top/scripts/bench-proxy.sh" --runs 1 --seconds 1 2>&1)
rc=$?
echo "$out" | tail -6
fail=0
[ $rc -eq 0 ] || { echo "FAIL: bench-proxy.sh exited $rc"; fail=1; }
grep -Eq '^RESULT proxy_cps=[1-9][0-9]* haproxy_cps=[1-9][0-9]* ratio=[0-9.]+$' <<<"$out" ||
  { echo "FAIL: no proxied-CPS RESULT line with figures"; fail=1; }
grep -Eq '^RESULT proxy_mbps=[1-9][0-9]* haproxy_mbps=[1-9][0-9]* ratio=[0-9.]+$' <<<"$out" ||
  { echo "FAIL: no throughput RESULT line with figures"; fail=1; }
grep -Eq '^RESULT loopback_proxy_cps=[1-9][0-9]* cycles_per_proxied_connection=[1-9][0-9]* terminator_cps=[1-9][0-9]* cycles_per_connection=[1-9][0-9]*$' <<<"$out" ||
  { echo "FAIL: no loopback RESULT line with figures"; fail=1; }
left=$(ip netns list | grep -c '^bpx' || true)
[ "$left" -eq 0 ] || { echo "FAIL: $left namespaces left behind"; fail=1; }
ls /var/run/dpdk 2>/dev/null | grep -q '^bpx' && { echo "FAIL: a DPDK runtime directory left behind"; fail=1; }
[ $fail -eq 0 ] && echo "ok: bench-proxy.sh ran and printed its three RESULT lines"
exit $fail
