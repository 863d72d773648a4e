#!/usr/bin/env bash
# scripts/bench-micro.sh [RUNS] [N...]: the timer wheel and flow table against
# DPDK's rte_timer and rte_hash (bench/micro.cc), RUNS times (default 3),
# printing the median ns/op of each side and their ratio.  Needs ~6 GiB of
# memory at N = 10M (DPDK heap without hugepages).
set -u
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
ensure_packages "${TCPTERM_BUILD_PKGS[@]}" >/dev/null || exit 1
build build || exit 1
runs=${1:-3}
shift || true
sizes=${*:-1000000 10000000}
tmp=$(mktemp)
for i in $(seq 1 "$runs"); do
  echo "run $i/$runs..." >&2
  ./build/bench/micro -l 0 --no-huge -m 6144 --no-pci --file-prefix "micro$$" --log-level=error -- $sizes \
    2>/dev/null | grep -E '^(timer|flow table) ' >>"$tmp"
done
echo "command: scripts/bench-micro.sh $runs $sizes   ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
/usr/bin/python3 - "$tmp" <<'PY'
import collections, statistics, sys
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    parts = line.split()
    if parts[0] == "flow":
        parts = ["flow table"] + parts[2:]
    struct, n, rest = parts[0], parts[1], parts[2:]
    # operation words, then two numbers and a ratio (memory rows: one number)
    nums = [p for p in rest if p.replace(".", "", 1).isdigit()]
    op = " ".join(p for p in rest if p not in nums and p != "-")
    rows.setdefault((struct, n, op), []).append([float(x) for x in nums[:2]])
print(f"{'structure':<11} {'N':>9}  {'operation':<18} {'tcpterm ns':>10} {'dpdk ns':>9} {'dpdk/tcpterm':>12}")
for (struct, n, op), vals in rows.items():
    ours = statistics.median(v[0] for v in vals)
    if len(vals[0]) > 1:
        theirs = statistics.median(v[1] for v in vals)
        print(f"{struct:<11} {int(n):>9}  {op:<18} {ours:>10.1f} {theirs:>9.1f} {theirs / ours:>12.2f}")
    else:
        print(f"{struct:<11} {int(n):>9}  {op:<18} {ours:>10.1f} {'-':>9}   (table + keys)")
PY
rm -f "$tmp"
