#!/usr/bin/env bash
# scripts/bench-vs-linux.sh [SECONDS]: the same connection lifecycle (connect,
# small request, small response, server closes first) on the Linux kernel
# over loopback (bench/linux_lifecycle: an epoll client and server, one CPU
# each, in a namespace of its own) and on tcpterm's loopback teardown
# benchmark (one terminator and one generator lcore), one after the other in
# this invocation.  The machine's phase (bench/phase: how the host placed
# the two vCPUs) is printed before and after the tcpterm run.  Ends with:  RESULT tcpterm_cps=X linux_cps=Y ratio=Z
set -u
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
secs=${1:-10}
ensure_packages "${TCPTERM_BUILD_PKGS[@]}" gnuplot-nox >/dev/null || exit 1
build build || exit 1
ns="ttlinux$$"
ip netns add "$ns" || exit 1
trap 'ip netns del "$ns" 2>/dev/null' EXIT
ip netns exec "$ns" ip link set lo up
echo "== Linux $(uname -r), loopback, ${secs}s (kernel defaults in a fresh namespace; TIME-WAIT 60 s, capped by tcp_max_tw_buckets=$(ip netns exec "$ns" sysctl -n net.ipv4.tcp_max_tw_buckets))"
lin=$(ip netns exec "$ns" ./build/bench/linux_lifecycle "$secs" 256)
echo "$lin"
echo "== tcpterm, loopback ring pair, ${secs}s"
tt=$(./scripts/bench-teardown.sh --mode server --seconds "$secs" --out build/bench-vs-linux 2>&1)
echo "$tt" | grep -E '^\s+(cps|teardown_latency_p[0-9]+_us|terminator_cycles_per_lifecycle|failed|machine_phase_[a-z]+):'
l=$(sed -n 's/.*linux_cps=\([0-9]*\).*/\1/p' <<<"$lin")
t=$(echo "$tt" | sed -n 's/^ *cps: \([0-9]*\)$/\1/p' | head -1)
ratio=$(awk -v a="$t" -v b="$l" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }')
echo "RESULT tcpterm_cps=$t linux_cps=$l ratio=$ratio"
