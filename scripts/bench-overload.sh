#!/usr/bin/env bash
# scripts/bench-overload.sh [--rates "R1 R2 ..."] [--runs N] [--seconds S]
#                           [--squeeze] [--admission on|off|both] [--out DIR]
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
# --admission on|off runs the terminator with SYN admission control on or
# off; both (the default) runs each point with it on and then off,
# interleaved, so that the machine's drift hits both alike.  Writes
# DIR/overload.csv and DIR/overload.png.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
rates="250000 500000 750000 1000000 1500000 2000000" runs=3 seconds=5 squeeze=0 adm=both out=build/bench-overload
while [ $# -gt 0 ]; do
  case $1 in
    --rates) rates=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --squeeze) squeeze=1; shift ;;
    --admission) adm=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--rates \"R1 R2 ...\"] [--runs N] [--seconds S] [--squeeze] [--admission on|off|both] [--out DIR]" >&2; exit 2 ;;
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
# --admission both: for each rate, each run goes once with admission control
# on and once off, interleaved, so that the machine's drift hits both alike.
modes=$adm
[ "$adm" = both ] && modes="on off"
echo "offered,admission,opened_per_s,completed_per_s,completed_share,syn_dropped_overload,orphans_reclaimed,completed_min,completed_max" >"$out/overload.csv"
printf "%10s %4s %14s %16s %10s %14s %10s %20s\n" offered adm opened/s completed/s completed syn_dropped orphans_rc "completed min-max"
for r in $rates; do
  declare -A o=() c=() s=() d=() rc=()
  for i in $(seq "$runs"); do
    for m in $modes; do
      log="$out/run-$r-$m-$i.log"
      scripts/bench-teardown.sh --memif --mode forgetful --rate "$r" --seconds "$seconds" --concurrency 1000000 \
        --msl-ms 1000 --term-opt "--syn-admission=$m" --out "$out/r$r-$m-$i" >"$log" 2>&1
      secs=$(sed -n 's/^  seconds: \([0-9.]*\)$/\1/p' "$log" | head -1)
      op=$(sed -n 's/^  connections_opened: \([0-9]*\)$/\1/p' "$log" | head -1)
      co=$(sed -n 's/^  connections_completed: \([0-9]*\)$/\1/p' "$log" | head -1)
      o[$m]+="$(awk -v a="${op:-0}" -v s="${secs:-1}" 'BEGIN {printf "%.0f", a / s}') "
      c[$m]+="$(awk -v a="${co:-0}" -v s="${secs:-1}" 'BEGIN {printf "%.0f", a / s}') "
      s[$m]+="$(awk -v a="${co:-0}" -v b="${op:-0}" 'BEGIN {printf "%.4f", b ? a / b : 0}') "
      dd=$(sed -n 's/^  terminator_syn_dropped_overload: \([0-9]*\) .*/\1/p' "$log" | head -1)
      rr=$(sed -n 's/^  terminator_orphans_reclaimed: \([0-9]*\)$/\1/p' "$log" | head -1)
      d[$m]+="${dd:-0} " rc[$m]+="${rr:-0} "
    done
  done
  for m in $modes; do
    mo=$(printf '%s\n' ${o[$m]} | median) mc=$(printf '%s\n' ${c[$m]} | median)
    ms=$(printf '%s\n' ${s[$m]} | median) md=$(printf '%s\n' ${d[$m]} | median)
    mr=$(printf '%s\n' ${rc[$m]} | median)
    lo=$(printf '%s\n' ${c[$m]} | sort -n | head -1) hi=$(printf '%s\n' ${c[$m]} | sort -n | tail -1)
    printf "%10s %4s %14s %16s %9.2f%% %14s %10s %20s\n" "$r" "$m" "$mo" "$mc" "$(awk -v x="$ms" 'BEGIN {print 100 * x}')" "$md" "$mr" "$lo-$hi"
    echo "$r,$m,$mo,$mc,$ms,$md,$mr,$lo,$hi" >>"$out/overload.csv"
  done
  unset o c s d rc
done
if command -v gnuplot >/dev/null; then
  gnuplot <<GP
set datafile separator ","
set terminal pngcairo size 1000,650 noenhanced
set output "$out/overload.png"
set title "tcpterm under offered load (memif, forgetful generator$([ $squeeze = 1 ] && echo ", terminator on half a core"), admission $adm)"
set xlabel "offered connections per second"
set ylabel "connections per second"
set y2label "completed / opened"
set yrange [0:*]
set y2range [0:1.05]
set y2tics
set ytics nomirror
set key below
plot for [m in "$modes"] "< grep ,".m.", $out/overload.csv" using 1:3 with linespoints title "opened, admission ".m, \
     for [m in "$modes"] "< grep ,".m.", $out/overload.csv" using 1:4 with linespoints lw 2 title "completed, admission ".m, \
     for [m in "$modes"] "< grep ,".m.", $out/overload.csv" using 1:5 axes x1y2 with linespoints dt 2 title "completed share (right), admission ".m
GP
  echo "plot: $out/overload.png   csv: $out/overload.csv"
fi
