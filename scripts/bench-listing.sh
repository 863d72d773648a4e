#!/usr/bin/env bash
# scripts/bench-listing.sh [--runs N] [--seconds S] [--query CMD]
#
# What an operator's CLI command costs the data path.  The loopback ring
# pair runs at full rate (a generator and a terminator lcore, MSL 30 s, so
# TIME-WAIT records pile up); after S-2 seconds the CLI clears the
# counters, asks CMD five times (default: `show flows 198.18.9.9`, an
# address that matches nothing, so every flow slot and TIME-WAIT record is
# walked), then reads `show lcores`.  Per run it prints the terminator
# lcore's longest poll (longest_poll_us: how long its packets waited behind
# one poll) and what the last listing examined; then the median.
# --query 'show tcp states' gives the floor (this machine's preemption).
set -u
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
runs=3 secs=8 query="show flows 198.18.9.9"
usage() { echo "$0: $1 (usage: [--runs N] [--seconds S>=4] [--query CMD])" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --runs) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage "--runs needs a whole number from 1, not '${2:-}'"; runs=$2 ;;
    --seconds) [[ ${2:-} =~ ^[0-9]+$ ]] && [ "$2" -ge 4 ] || usage "--seconds needs a whole number from 4, not '${2:-}'"; secs=$2 ;;
    --query) [ -n "${2:-}" ] || usage "--query needs a CLI command"; query=$2 ;;
    *) usage "unknown option '$1'" ;;
  esac
  shift 2
done
ensure_packages "${TCPTERM_BUILD_PKGS[@]}" >/dev/null || exit 1
build build || exit 1
echo "command: $0 --runs $runs --seconds $secs --query '$query'   (commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
prefix="benchL$$"
trap 'rm -rf "/var/run/dpdk/$prefix"' EXIT
longest=()
for i in $(seq "$runs"); do
  out=$( (sleep $((secs - 2)); echo "clear tcp stats"; for k in 1 2 3 4 5; do echo "$query"; sleep 0.3; done
          sleep 0.3; echo "show lcores"; echo quit) |
    timeout $((secs + 30)) ./build/app/tcpterm --lcores 0@0,1@1,2@0 --no-huge -m 1024 --no-pci --file-prefix "$prefix" \
      --log-level warn -- --ring-pair --addr 1@198.18.0.2/24 --addr 0@198.18.128.1-198.18.255.254/17 \
      --listen "198.18.0.2:80/http" --connect "198.18.0.2:80,close=server,concurrency=256,duration=$secs" \
      --msl-ms 30000 --max-time-wait 12000000 -i 2>&1)
  # show lcores: the terminator (lcore 1) comes first.
  lp=$(grep -m1 'longest_poll_us' <<<"$out" | awk '{print $2}')
  seen=$(grep 'flows shown' <<<"$out" | tail -1 | sed -n 's/.*(\(.*\))$/\1/p')
  tw=$(sed -n 's/^TIME-WAIT: \([0-9]*\)$/\1/p' <<<"$out" | tail -1)
  if [ -z "$lp" ]; then
    echo "run $i: no answer from show lcores"; tail -20 <<<"$out"; exit 1
  fi
  echo "run $i: terminator longest_poll_us: $lp   TIME-WAIT records at the end: ${tw:-?}   last listing: ${seen:-n/a}"
  longest+=("$lp")
done
median=$(printf '%s\n' "${longest[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "RESULT longest_poll_us_median=$median query='$query' runs=$runs"
