#!/usr/bin/env bash
# Every virtual driver profile in drivers-config/ starts, runs, stops cleanly
# (exit 0, every mbuf back in its pool) through scripts/run.sh.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; ip netns del ttprof 2>/dev/null; ip link del veth-tt 2>/dev/null' EXIT
check() {  # check NAME OUTPUT RC
  if [ "$3" -eq 0 ] && grep -Eq "mbufs: ([0-9]+)/\1 back" <<<"$2"; then
    echo "ok: $1 ($(grep -o 'mbufs: [0-9/]* back' <<<"$2"))"
  else
    echo "FAIL: $1 rc=$3"; tail -5 <<<"$2"; fail=1
  fi
}
for p in null ring memif; do
  out=$(cd "$tmp" && timeout -k 5 60 "$top/scripts/run.sh" "$p" --run-seconds 1 2>&1)
  check "$p" "$out" $?
done
# pcap: an empty capture in, replies out.
/usr/bin/python3 -c "from scapy.all import wrpcap, Ether, ARP; wrpcap('$tmp/in.pcap', [Ether(dst='ff:ff:ff:ff:ff:ff')/ARP(pdst='198.18.0.2', psrc='198.18.0.1')])"
out=$(cd "$tmp" && timeout -k 5 60 "$top/scripts/run.sh" pcap 2>&1)
check pcap "$out" $?
# tap, in a namespace of its own.
ip netns add ttprof
out=$(timeout -k 5 60 ip netns exec ttprof "$top/scripts/run.sh" tap --run-seconds 1 2>&1)
check tap "$out" $?
# af_packet on a veth whose peer sits in the namespace.
ip link add veth-tt type veth peer name veth-tt-ns
ip link set veth-tt-ns netns ttprof
ip link set veth-tt up
out=$(timeout -k 5 60 "$top/scripts/run.sh" af_packet --run-seconds 1 2>&1)
check af_packet "$out" $?
# SIGTERM (and SIGINT) stop it cleanly: exit 0, every mbuf back.
for sig in TERM INT; do
  (cd "$tmp" && exec "$top/scripts/run.sh" null >"$tmp/sig.out" 2>&1) &
  pid=$!
  sleep 3
  kill -$sig $pid
  ( sleep 30; kill -9 $pid 2>/dev/null ) &  # a shutdown that hangs fails, not stalls
  watchdog=$!
  wait $pid
  rc=$?
  kill $watchdog 2>/dev/null
  check "SIG$sig" "$(cat "$tmp/sig.out")" $rc
done
exit $fail
