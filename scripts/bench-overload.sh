#!/usr/bin/env bash
# scripts/bench-overload.sh [--rates "R1 R2 ..."] [--runs N] [--seconds S]
#                           [--squeeze] [--admission on|off] [--out DIR]
#
# Offered versus completed connections per second, two processes joined by
# net_memif (scripts/bench-teardown.sh --memif), the generator forgetful
# (no TIME-WAIT, segments for forgotten connections silently dropped,
# challenge ACKs unanswered: the fast DPDK generators' behaviour).  For each
# offered rate, N runs; the table gives medians of: connections opened per
# second, completed per second, and the share of opened connections that
# completed.  --squeeze runs a busy loop on the terminator's CPU (1) during
# every run, so that this 2-CPU machine's generator can offer well beyond the
# terminator's capacity (here the terminator gets about half a core).
# --admission off disables the terminator's SYN admission control (to show
# what it changes).  Writes DIR/overload.csv and DIR/overload.png.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
rates="250000 500000 750000 1000000 1500000 2000000" runs=3 seconds=5 squeeze=0 adm=on out=build/bench-overload
while [ $# -gt 0 ]; do
  case $1 in
    --rates) rates=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --squeeze) squeeze=1; shift ;;
    --admission) adm=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--rates \"R1 R2 ...\"] [--runs N] [--seconds S] [--squeeze] [--admission on|off] [--out DIR]" >&2; exit 2 ;;
  esac
done
ensure_packages "${TCPTERM_BUILD_PKGS[@]}" gnuplot-nox >/dev/null || exit 1
build build || exit 1
mkdir -p "$out"
echo "command: $0 --rates \"$rates\" --runs $runs --seconds $seconds$([ $squeeze = 1 ] && echo " --squeeze") --admission $adm"
hog=
if [ "$squeeze" = 1 ]; then
  taskset -c 1 python3 -c 'while True: pass' &
  hog=$!
fi
trap '[ -n "$hog" ] && kill $hog 2>/dev/null' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }
echo "offered,opened_per_s,completed_per_s,completed_share,syn_dropped_overload,orphans_reclaimed" >"$out/overload.csv"
printf "%10s %14s %16s %10s %14s %10s\n" offered opened/s completed/s completed syn_dropped orphans_rc
for r in $rates; do
  o=() c=() s=() d=() rc=()
  for i in $(seq "$runs"); do
    log="$out/run-$r-$i.log"
    scripts/bench-teardown.sh --memif --mode forgetful --rate "$r" --seconds "$seconds" --concurrency 1000000 \
      --msl-ms 1000 --term-opt "--syn-admission=$adm" --out "$out/r$r-$i" >"$log" 2>&1
    secs=$(sed -n 's/^  seconds: \([0-9.]*\)$/\1/p' "$log" | head -1)
    op=$(sed -n 's/^  connections_opened: \([0-9]*\)$/\1/p' "$log" | head -1)
    co=$(sed -n 's/^  connections_completed: \([0-9]*\)$/\1/p' "$log" | head -1)
    o+=("$(awk -v a="${op:-0}" -v s="${secs:-1}" 'BEGIN {printf "%.0f", a / s}')")
    c+=("$(awk -v a="${co:-0}" -v s="${secs:-1}" 'BEGIN {printf "%.0f", a / s}')")
    s+=("$(awk -v a="${co:-0}" -v b="${op:-0}" 'BEGIN {printf "%.4f", b ? a / b : 0}')")
    d+=("$(sed -n 's/^  terminator_syn_dropped_overload: \([0-9]*\) .*/\1/p' "$log" | head -1)")
    rc+=("$(sed -n 's/^  terminator_orphans_reclaimed: \([0-9]*\)$/\1/p' "$log" | head -1)")
  done
  mo=$(printf '%s\n' "${o[@]}" | median) mc=$(printf '%s\n' "${c[@]}" | median)
  ms=$(printf '%s\n' "${s[@]}" | median) md=$(printf '%s\n' "${d[@]:-0}" | median)
  mr=$(printf '%s\n' "${rc[@]:-0}" | median)
  printf "%10s %14s %16s %9.2f%% %14s %10s\n" "$r" "$mo" "$mc" "$(awk -v x="$ms" 'BEGIN {print 100 * x}')" "$md" "$mr"
  echo "$r,$mo,$mc,$ms,$md,$mr" >>"$out/overload.csv"
done
if command -v gnuplot >/dev/null; then
  gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 1000,600 noenhanced
set output "$out/overload.png"
set title "tcpterm under offered load (memif, forgetful generator$([ $squeeze = 1 ] && echo ", terminator on half a core"), admission $adm)"
set xlabel "offered connections per second"
set ylabel "connections per second"
set y2label "completed / opened"
set y2range [0:1.05]
set y2tics
set ytics nomirror
set key left top
plot "$out/overload.csv" using 1:2 skip 1 with linespoints title "opened", \
     "" using 1:3 skip 1 with linespoints lw 2 title "completed", \
     "" using 1:4 skip 1 axes x1y2 with linespoints dt 2 title "completed share (right)"
GP
  echo "plot: $out/overload.png   csv: $out/overload.csv"
fi
