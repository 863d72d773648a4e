#!/usr/bin/env bash
# scripts/build-pgo.sh [--seconds S] [--dir DIR]
#
# A profile-guided build of tcpterm for a deployment or a benchmark: GCC
# lays out branches and inlines by what the packet path really does.
#   1. DIR (default build-pgo) is configured with -Db_pgo=generate, no
#      tests, and the binary built with instrumentation;
#   2. that binary runs scripts/bench-teardown.sh twice, server first and
#      client first, S seconds each (default 6): the loopback's generator
#      and terminator write their branch and call counts (*.gcda) next to
#      the objects when the process exits;
#   3. DIR is reconfigured with -Db_pgo=use and rebuilt from those counts.
# Ends with the line:  pgo: DIR/app/tcpterm
# Run it through the benchmark with `scripts/bench-teardown.sh --bin
# DIR/app/tcpterm`, or compare it with scripts/bench-ab.sh.  The plain
# build (`meson setup build`) stays as it is: it needs no training run.
# A training run that fails, or writes no counts, stops the script (exit 1)
# before the second build.
set -u
start_dir=$PWD
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
seconds=6 dir=build-pgo
usage() { echo "usage: $0 [--seconds S] [--dir DIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) [ $# -ge 2 ] || usage; seconds=$2; shift 2 ;;
    --dir) [ $# -ge 2 ] || usage; case $2 in /*) dir=$2 ;; *) dir=$start_dir/$2 ;; esac; shift 2 ;;
    *) echo "$0: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case $seconds in ''|*[!0-9]*|0) echo "$0: --seconds: '$seconds' is not a positive integer" >&2; exit 2 ;; esac
shown=${dir#"$TCPTERM_TOP"/}  # as printed: relative to the tree when inside it
ensure_packages "${TCPTERM_BUILD_PKGS[@]}" >/dev/null || exit 1

# 1. The instrumented binary.  A directory configured before keeps its
# other options; only b_pgo changes.
if [ -f "$dir/build.ninja" ]; then
  meson configure "$dir" -Db_pgo=generate >/dev/null || exit 1
else
  meson setup "$dir" -Dtests=false -Db_pgo=generate >/dev/null || { meson setup "$dir" -Dtests=false -Db_pgo=generate; exit 1; }
fi
find "$dir" -name '*.gcda' -delete  # counts of an earlier training, or of older code
ninja -C "$dir" -j "$(nproc)" app/tcpterm >/dev/null || { ninja -C "$dir" -j "$(nproc)" app/tcpterm; exit 1; }
echo "instrumented: $shown/app/tcpterm"

# 2. Training: both close modes, so both lifecycles' branches are counted.
for mode in server client; do
  out=$(scripts/bench-teardown.sh --bin "$dir/app/tcpterm" --mode "$mode" --seconds "$seconds" --out "$dir/train" 2>&1)
  rc=$?
  line=$(grep -E '^  failed:' <<<"$out")
  echo "training, $mode first, ${seconds}s: $(grep -E '^  cps:' <<<"$out" | tr -s ' ') ${line# }"
  if [ $rc -ne 0 ] || [ -z "$line" ]; then
    echo "$0: the training run ($mode first) failed (exit $rc)" >&2
    tail -20 <<<"$out" >&2
    exit 1
  fi
done
n=$(find "$dir" -name '*.gcda' | wc -l)
if [ "$n" -eq 0 ]; then echo "$0: the training runs wrote no profile counts" >&2; exit 1; fi
echo "profile: $n count files"

# 3. The binary built from the counts.
meson configure "$dir" -Db_pgo=use >/dev/null || exit 1
ninja -C "$dir" -j "$(nproc)" app/tcpterm >/dev/null || { ninja -C "$dir" -j "$(nproc)" app/tcpterm; exit 1; }
echo "pgo: $shown/app/tcpterm"
