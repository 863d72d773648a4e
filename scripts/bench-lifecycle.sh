#!/usr/bin/env bash
# scripts/bench-lifecycle.sh [--runs N] [--lifecycles N] [--mode server|client] [--msl-ms MS] [--cksum offload|software] [--callgrind] [--pair]
#
# The terminator's stack alone on one core (bench/lifecycle.cc): a generator
# stack and a terminator stack in one thread, joined by real frames built and
# verified as the dataplane does, no DPDK, no second core.  Prints the median
# of N runs of the terminator's cycles per lifecycle.  --callgrind instead
# counts the instructions of the terminator's turn exactly (valgrind), per
# lifecycle, with the functions that execute them: a figure the machine's
# noise cannot move, for comparing two versions of the code.  --pair: each
# run also runs two instances at once, on CPUs 0 and 1 (two share-nothing
# engines side by side, each with its own TIME-WAIT records), and prints
# how the per-lifecycle cost on two busy cores compares with one alone.
# --cksum: checksums left to the link (offload, the default, as the
# loopback's ring pair) or computed and verified by both stacks (software).
set -u
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
runs=5 n=1000000 mode=server msl=250 cg=0 pair=0 cksum=offload
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --lifecycles) n=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --msl-ms) msl=$2; shift 2 ;;
    --callgrind) cg=1; shift ;;
    --pair) pair=1; shift ;;
    --cksum) cksum=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--lifecycles N] [--mode server|client] [--msl-ms MS] [--cksum offload|software] [--callgrind] [--pair]" >&2; exit 2 ;;
  esac
done
case $cksum in offload|software) ;; *) echo "$0: --cksum: bad value '$cksum' (offload, software)" >&2; exit 2 ;; esac
ensure_packages "${TCPTERM_BUILD_PKGS[@]}" >/dev/null || exit 1
build build || exit 1
echo "command: $0 --runs $runs --lifecycles $n --mode $mode --msl-ms $msl --cksum $cksum$([ $cg = 1 ] && echo ' --callgrind')$([ $pair = 1 ] && echo ' --pair')   (commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { grep -o "$1=[0-9]*" | cut -d= -f2; }  # a NAME=N figure of bench/lifecycle's output (stdin)
cyc() { field terminator_cycles_per_lifecycle <"$1"; }
if [ "$cg" = 1 ]; then
  ensure_packages valgrind >/dev/null || exit 1
  out=$(mktemp -d)
  [ "$n" -gt 200000 ] && n=200000  # callgrind runs ~50x slower; instruction counts do not need more
  valgrind --tool=callgrind --toggle-collect='*terminator_turn*' --callgrind-out-file="$out/cg" \
    ./build/bench/lifecycle "$n" "$mode" "$msl" "$cksum" >"$out/log" 2>&1 || { cat "$out/log"; rm -rf "$out"; exit 1; }
  total=$(field terminator_lifecycles_total <"$out/log")
  ir=$(grep -o 'Collected : [0-9]*' "$out/log" | awk '{print $3}')
  echo "terminator_instructions_per_lifecycle: $((ir / total)) ($mode closes first, $total lifecycles)"
  echo "by function (instructions per lifecycle, self):"
  callgrind_annotate --threshold=95 "$out/cg" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | grep -v TOTALS | head -30 |
    awk -v m="$total" '{c=$1; gsub(",", "", c); sub(/^ *[0-9,]+ \([ 0-9.]+%\) +/, ""); sub(/^\?\?\?:/, ""); gsub(/\(anonymous namespace\)/, "{anon}"); sub(/\(.*/, ""); printf "  %6.0f  %s\n", c / m, $0}'
  rm -rf "$out"
  exit 0
fi
if [ "$pair" = 1 ]; then
  [ "$(nproc)" -ge 2 ] || { echo "--pair needs two CPUs" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  solo=() p0=() p1=()
  for i in $(seq "$runs"); do
    taskset -c 1 ./build/bench/lifecycle "$n" "$mode" "$msl" "$cksum" >"$tmp/s" || { cat "$tmp/s"; exit 1; }
    taskset -c 0 ./build/bench/lifecycle "$n" "$mode" "$msl" "$cksum" >"$tmp/a" &
    taskset -c 1 ./build/bench/lifecycle "$n" "$mode" "$msl" "$cksum" >"$tmp/b"
    wait
    solo+=("$(cyc "$tmp/s")") p0+=("$(cyc "$tmp/a")") p1+=("$(cyc "$tmp/b")")
    echo "run $i: alone on cpu 1: ${solo[-1]}   both at once: cpu 0 ${p0[-1]}, cpu 1 ${p1[-1]}"
  done
  s=$(median "${solo[@]}") a=$(median "${p0[@]}") b=$(median "${p1[@]}")
  echo "terminator_cycles_per_lifecycle alone: $s; two at once: $a (cpu 0), $b (cpu 1) (medians of $runs)"
  echo "two_core_scaling: $(awk -v s="$s" -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", s / a + s / b}')x one core's lifecycles per second"
  exit 0
fi
vals=() gvals=()
for i in $(seq "$runs"); do
  out=$(./build/bench/lifecycle "$n" "$mode" "$msl" "$cksum")
  v=$(field terminator_cycles_per_lifecycle <<<"$out")
  g=$(field generator_cycles_per_lifecycle <<<"$out")
  [ -n "$v" ] && [ -n "$g" ] || { echo "run $i failed: $out" >&2; exit 1; }
  vals+=("$v")
  gvals+=("$g")
done
echo "terminator_cycles_per_lifecycle: $(median "${vals[@]}") (median of $runs; runs: $(printf '%s\n' "${vals[@]}" | sort -n | tr '\n' ' '))"
echo "generator_cycles_per_lifecycle: $(median "${gvals[@]}") (the client side of the same lifecycles)"
