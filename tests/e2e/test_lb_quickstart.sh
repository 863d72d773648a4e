#!/usr/bin/env bash
# docs/load-balancer.md's quick start, as a new user pastes it: the bash
# block after <!-- quickstart --> runs (in a namespace of its own name) and
# the six curls must be answered by the three backends; then its clean-up.
set -u
cd "$(dirname "$0")/../.."
ns="lbq$$"
block=$(awk '/<!-- quickstart -->/{f=1; next} f && /^```bash/{g=1; next} g && /^```/{exit} g' docs/load-balancer.md)
cleanup=$(awk '/To clean up:/{f=1; next} f && /^```bash/{g=1; next} g && /^```/{exit} g' docs/load-balancer.md)
[ -n "$block" ] && [ -n "$cleanup" ] || { echo "FAIL: no quick start block in docs/load-balancer.md"; exit 1; }
# A unique namespace, DPDK prefix, TAP and directory names for this run.
block=${block//lbdemo/$ns}
block=${block//lb0/${ns}t}
cleanup=${cleanup//lbdemo/$ns}
trap 'bash -c "$cleanup" >/dev/null 2>&1; rm -rf /tmp/${ns}1[123] /tmp/$ns.log /var/run/dpdk/$ns' EXIT
out=$(bash -c "$block" 2>&1)
echo "$out"
n=$(grep -c '^backend 1[123]$' <<<"$out")
distinct=$(grep '^backend 1[123]$' <<<"$out" | sort -u | wc -l)
if [ "$n" -eq 6 ] && [ "$distinct" -ge 2 ]; then
  echo "ok: the quick start's six curls were answered by $distinct backends"
else
  echo "FAIL: the quick start gave $n answers from $distinct backends"
  tail -20 "/tmp/$ns.log"
  exit 1
fi
bash -c "$cleanup" >/dev/null 2>&1
trap - EXIT
rm -rf /tmp/${ns}1[123] "/tmp/$ns.log"
ip netns list | grep -q "^$ns" && { echo "FAIL: namespace left behind"; exit 1; }
echo "ok: the clean-up leaves no namespace"
# tcpterm, ended by a signal, removed its own DPDK runtime directory (once
# it has finished exiting: a busy machine may take longer than the sleep).
for _ in $(seq 100); do pgrep -f "[f]ile-prefix $ns" >/dev/null || break; sleep 0.1; done
[ -e "/var/run/dpdk/$ns" ] && { echo "FAIL: /var/run/dpdk/$ns left behind"; exit 1; }
echo "ok: tcpterm removed /var/run/dpdk/$ns when it exited"
echo "all ok"
