#!/usr/bin/env bash
# scripts/bench-proxy.sh [--runs N] [--seconds S] [--concurrency C] [--out DIR]
#
# The load-balancer front end side by side with HAProxy 2.6 (Debian, mode
# tcp on the kernel), same clients, same Linux backends, one run:
#
#   namespace NS: client 198.18.0.1 (ab, iperf3), backends 198.18.0.11-13
#                 (nginx-light with a 14-byte page, iperf3 -s)
#     --- veth --- tcpterm 198.18.0.2 (net_af_packet on the veth's far end)
#     --- veth --- namespace NSh: haproxy 198.18.0.3 (the kernel's TCP)
#   Both proxies sit behind the same kind of link and see the same
#   1500-byte frames: both veth pairs have TSO, GSO, GRO and checksum
#   offload off (DPDK's af_packet PMD has none), so neither side gets 64 KiB
#   super-frames and HAProxy's path is not a local delivery.  (net_af_packet
#   with PACKET_MMAP rings moves ~3.8x the bytes of net_tap, which makes one
#   syscall per packet, on this machine.)
#
#   1. proxied connections per second: ab, one short HTTP request/response
#      lifecycle per connection (no keep-alive), through (a) tcpterm's proxy
#      and (b) HAProxy -- median of N runs each
#   2. bulk throughput: iperf3 (one stream, S seconds) through each, to one
#      backend
#   3. loopback, no kernel in the path: the generator (with the backends, an
#      http listener) on one lcore and the proxy on another, joined by the
#      ring pair; proxied CPS and cycles per proxied connection, beside the
#      same run without the proxy (generator -> terminator)
#
# Ends with:
#   RESULT proxy_cps=N haproxy_cps=N ratio=R
#   RESULT proxy_mbps=N haproxy_mbps=N ratio=R
#   RESULT loopback_proxy_cps=N cycles_per_proxied_connection=N terminator_cps=N cycles_per_connection=N
set -u
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
runs=3 seconds=5 conc=32 out=build/bench
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--seconds S] [--concurrency C] [--out DIR]" >&2; exit 2 ;;
  esac
done
ensure_packages "${TCPTERM_BUILD_PKGS[@]}" iproute2 ethtool haproxy nginx-light apache2-utils iperf3 curl >/dev/null || exit 1
build build || exit 1
mkdir -p "$out"
ns="bpx$$"
tap="${ns}k"  # the kernel end of tcpterm's veth pair
work=$(mktemp -d)
tt_pid=""
cleanup() {
  [ -n "$tt_pid" ] && kill "$tt_pid" 2>/dev/null && wait "$tt_pid" 2>/dev/null
  ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  sleep 0.5
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns pids "${ns}h" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  ip netns del "${ns}h" 2>/dev/null
  rm -rf "$work" "/var/run/dpdk/$ns"
}
trap cleanup EXIT
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print 0}'; }
B=(198.18.0.11 198.18.0.12 198.18.0.13)
echo "command: $0 --runs $runs --seconds $seconds --concurrency $conc"

ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
# tcpterm's link: a veth pair inside NS, tcpterm on one end (no address).
ip netns exec "$ns" ip link add "$tap" type veth peer name "${ns}d"
for i in "$tap" "${ns}d"; do
  ip netns exec "$ns" ethtool -K "$i" tso off gso off gro off tx off rx off >/dev/null 2>&1
  ip netns exec "$ns" ip link set "$i" up
done
# tcpterm: worker on CPU 1; the main lcore (CPU 0) only runs the control plane.
ip netns exec "$ns" ./build/app/tcpterm -l 0,1 --no-huge -m 1024 --no-pci --file-prefix "$ns" --log-level warn \
  --vdev "net_af_packet0,iface=${ns}d,qpairs=1,blocksz=4096,framesz=2048,framecnt=4096" -- \
  --pool "web=${B[0]}:8080,${B[1]}:8080,${B[2]}:8080,check=tcp" \
  --pool "bulk=${B[0]}:5201,check=none" \
  --listen 198.18.0.2:80/proxy,pool=web --listen 198.18.0.2:5201/proxy,pool=bulk \
  --max-flows 262144 --max-time-wait 1048576 --msl-ms 30000 >"$work/tcpterm.log" 2>&1 &
tt_pid=$!
sleep 2
ip netns exec "$ns" ip addr add 198.18.0.1/24 dev "$tap"
for b in "${B[@]}"; do ip netns exec "$ns" ip addr add "$b/24" dev "$tap"; done
# HAProxy's namespace, joined by a veth pair with every offload off.
ip netns add "${ns}h"
ip netns exec "${ns}h" ip link set lo up
ip link add "${ns}a" netns "$ns" type veth peer name "${ns}b" netns "${ns}h"
ip netns exec "$ns" ip link set "${ns}a" up
ip netns exec "${ns}h" ip addr add 198.18.0.3/32 dev "${ns}b"
ip netns exec "${ns}h" ip link set "${ns}b" up
ip netns exec "${ns}h" ip route add 198.18.0.0/24 dev "${ns}b"
ip netns exec "$ns" ip route add 198.18.0.3/32 dev "${ns}a"
for side in "$ns ${ns}a" "${ns}h ${ns}b"; do
  set -- $side
  ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off rx off >/dev/null 2>&1
done
# Backends: nginx-light (one worker per core) with a 14-byte page, iperf3 -s.
mkdir -p "$work/www"
printf 'hello, world\n!' >"$work/www/index.html"
{
  echo "worker_processes 2; pid $work/nginx.pid; error_log $work/nginx.err; daemon on;"
  echo "events { worker_connections 8192; }"
  echo "http { access_log off; keepalive_timeout 0;"
  for b in "${B[@]}"; do echo "  server { listen $b:8080 backlog=4096; root $work/www; }"; done
  echo "}"
} >"$work/nginx.conf"
ip netns exec "$ns" nginx -c "$work/nginx.conf" || { echo "nginx failed" >&2; exit 1; }
ip netns exec "$ns" iperf3 -s -B "${B[0]}" -D --logfile "$work/iperf3.log"
# HAProxy 2.6, mode tcp, the same backends, the same balancing by source.
cat >"$work/haproxy.cfg" <<EOF
global
  maxconn 9000
  nbthread 2
defaults
  mode tcp
  timeout connect 1s
  timeout client 30s
  timeout server 30s
frontend web
  bind 198.18.0.3:80
  default_backend web
frontend bulk
  bind 198.18.0.3:5201
  default_backend bulk
backend web
  balance source
  server b1 ${B[0]}:8080 check
  server b2 ${B[1]}:8080 check
  server b3 ${B[2]}:8080 check
backend bulk
  server b1 ${B[0]}:5201
EOF
ip netns exec "${ns}h" haproxy -D -f "$work/haproxy.cfg" -p "$work/haproxy.pid" || { echo "haproxy failed" >&2; exit 1; }
# Every path answers before measuring (health checks need two rounds).
for _ in $(seq 60); do
  a=$(ip netns exec "$ns" curl -s -m 2 http://198.18.0.2/) && b=$(ip netns exec "$ns" curl -s -m 2 http://198.18.0.3/) &&
    [ "$a" = "$b" ] && [ -n "$a" ] && break
  sleep 0.5
done
[ -n "${a:-}" ] || { echo "error: the proxy does not answer"; tail "$work/tcpterm.log"; exit 1; }

cps() {  # VIP -> connections per second (ab, no keep-alive)
  ip netns exec "$ns" ab -q -c "$conc" -t "$seconds" -n 10000000 "http://$1/" 2>/dev/null |
    awk '/^Requests per second/ {print int($4)} /^Failed requests/ {if ($3 > 0) print "failed " $3 > "/dev/stderr"}'
}
mbps() {  # VIP -> Mbit/s received (iperf3, one stream)
  ip netns exec "$ns" iperf3 -c "$1" -t "$seconds" -J 2>/dev/null |
    python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e6))'
}
measure() {  # measure FN LABEL: N runs of FN through each proxy, "tcpterm haproxy" per line in $work/FN
  : >"$work/$1"
  for r in $(seq "$runs"); do
    p=$($1 198.18.0.2); h=$($1 198.18.0.3)
    echo "run $r: $2: tcpterm $p, haproxy $h"
    echo "$p $h" >>"$work/$1"
  done
}
measure cps "proxied connections/s"
measure mbps "bulk Mbit/s"
pc=$(awk '{print $1}' "$work/cps" | median); hc=$(awk '{print $2}' "$work/cps" | median)
pm=$(awk '{print $1}' "$work/mbps" | median); hm=$(awk '{print $2}' "$work/mbps" | median)
kill "$tt_pid"; wait "$tt_pid" 2>/dev/null; tt_pid=""
grep -E "error|FAIL" "$work/tcpterm.log" | head -5

# ---- loopback: no kernel in the path -----------------------------------
loop() {  # extra listen/pool args -> "cps cycles_per_connection"
  ./build/app/tcpterm --lcores 0@0,1@1,2@0 --no-huge -m 2048 --no-pci --file-prefix "${ns}l" --log-level warn -- \
    --ring-pair --addr 1@198.18.0.2-198.18.0.10/24 --addr 0@198.18.128.1-198.18.255.254/17 "$@" \
    --connect "198.18.0.2:80,close=server,concurrency=256,duration=$seconds" \
    --run-seconds $((seconds + 1)) --msl-ms 2000 --max-flows 262144 --max-time-wait 4194304 \
    --bench-csv "$work/loop.csv" 2>&1 |
    awk '/^  cps:/ {c=$2} /terminator_cycles_per_connection:/ {k=$2} END {print c+0, k+0}'
  rm -rf "/var/run/dpdk/${ns}l"
}
: >"$work/loop"
for r in $(seq "$runs"); do
  p=$(loop --pool "be=198.18.0.10:8080,check=none,src=198.18.128.1-198.18.128.8" \
           --listen 198.18.0.2:80/proxy,pool=be --listen 198.18.0.10:8080/http)
  t=$(loop --listen 198.18.0.2:80/http)
  echo "run $r: loopback: proxy $p (cps cycles/connection), terminator alone $t"
  echo "$p $t" >>"$work/loop"
done
lpc=$(awk '{print $1}' "$work/loop" | median); lpk=$(awk '{print $2}' "$work/loop" | median)
ltc=$(awk '{print $3}' "$work/loop" | median); ltk=$(awk '{print $4}' "$work/loop" | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }
echo "RESULT proxy_cps=$pc haproxy_cps=$hc ratio=$(ratio "$pc" "$hc")"
echo "RESULT proxy_mbps=$pm haproxy_mbps=$hm ratio=$(ratio "$pm" "$hm")"
echo "RESULT loopback_proxy_cps=$lpc cycles_per_proxied_connection=$lpk terminator_cps=$ltc cycles_per_connection=$ltk"
