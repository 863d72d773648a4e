#!/usr/bin/env bash
# scripts/bench-ab.sh [--pairs N] [--mode server|client] [--seconds S]
#                     [--msl-ms MS] [--memif] A B
#
# Which of two versions costs the terminator fewer cycles per lifecycle, on
# a machine whose speed moves by a factor of two within minutes (docs/
# benchmarks.md, section 2, "The eighth pass").  A and B are each a tcpterm
# binary or a git revision of this tree (built once, without tests, under
# build/ab/).  Each pair runs scripts/bench-teardown.sh once with each,
# in alternating order (A first in odd pairs, B first in even ones), and
# takes the ratio B/A of the terminator's busy cycles per lifecycle.
#
# A pair counts only if the machine held one phase through it: the four
# machine_phase lines of its two runs (bench/phase) agree on the placement
# of the two vCPUs -- the cross-core round trip within a factor of 1.5 and
# the neighbour share within 0.15 -- and both runs completed every
# connection.  Prints each pair, then the median ratio of the pairs that
# count, how many favour B, and a two-sided sign test:
#   RESULT pairs=K/N median_ratio=R b_faster=F sign_p=P
# A ratio below 1 means B costs fewer cycles.  Not a test: no thresholds.
set -u
start_dir=$PWD
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
pairs=8 mode=server seconds=6 msl=5000 memif=()
usage() { echo "usage: $0 [--pairs N] [--mode server|client] [--seconds S] [--msl-ms MS] [--memif] A B" >&2; exit 2; }
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --pairs) pairs=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --msl-ms) msl=$2; shift 2 ;;
    --memif) memif=(--memif); shift ;;
    -*) echo "$0: unknown option '$1'" >&2; exit 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 2 ] || usage
for v in "$pairs" "$seconds" "$msl"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "$0: '$v' is not a positive count" >&2; exit 2; }
done
case $mode in server|client) ;; *) echo "$0: --mode: bad value '$mode' (server, client)" >&2; exit 2 ;; esac
# A binary as given, or a revision built once into build/ab/<commit>.
resolve() {
  local x=$1 p
  case $x in /*) p=$x ;; *) p=$start_dir/$x ;; esac
  if [ -f "$p" ] && [ -x "$p" ]; then echo "$p"; return 0; fi
  local c
  c=$(git rev-parse --verify --quiet "$x^{commit}") || { echo "$0: '$x' is neither a binary nor a revision" >&2; return 1; }
  local src=build/ab/src-$c dir=build/ab/$c
  if [ ! -x "$dir/app/tcpterm" ]; then
    echo "building $x ($c) in $dir" >&2
    rm -rf "$src"
    git archive --prefix="$src/" "$c" | tar -x || return 1
    (meson setup "$dir" "$src" -Dtests=false >/dev/null && ninja -C "$dir" -j "$(nproc)" app/tcpterm >/dev/null) ||
      { echo "$0: building $x failed" >&2; return 1; }
  fi
  echo "$PWD/$dir/app/tcpterm"
}
ensure_packages "${TCPTERM_BUILD_PKGS[@]}" >/dev/null || exit 1
build build || exit 1
A=$(resolve "${args[0]}") || exit 2
B=$(resolve "${args[1]}") || exit 2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "command: $0 --pairs $pairs --mode $mode --seconds $seconds --msl-ms $msl ${memif[*]} ${args[*]}"
echo "A: $A"
echo "B: $B"
# One run: prints "BUSY FAILED RTT1 SHARE1 RTT2 SHARE2" (phase before, after).
run() {
  local o busy failed ph
  o=$(scripts/bench-teardown.sh "${memif[@]}" --bin "$1" --mode "$mode" --seconds "$seconds" --msl-ms "$msl" --out "$out/run" 2>&1)
  busy=$(sed -n 's/^  terminator_cycles_per_lifecycle: \([0-9]*\) (busy).*/\1/p' <<<"$o" | head -1)
  failed=$(sed -n 's/^  failed: \([0-9]*\).*/\1/p' <<<"$o" | head -1)
  ph=$(grep -E '^  machine_phase_(before|after):' <<<"$o" | sed -E 's/.*cross_core_rtt_tsc=([0-9]+) neighbour_share=([0-9.]+).*/\1 \2/' | tr '\n' ' ')
  echo "${busy:-0} ${failed:-1} ${ph:-0 0 0 0}"
}
ratios=() faster=0 kept=0
printf '%-5s %-8s %10s %10s %7s  %s\n' pair order "A busy" "B busy" "B/A" "phase (rtt share, four probes)"
for i in $(seq "$pairs"); do
  if [ $((i % 2)) = 1 ]; then ra=$(run "$A"); rb=$(run "$B"); order=AB
  else rb=$(run "$B"); ra=$(run "$A"); order=BA; fi
  read -r ab af a1 as1 a2 as2 <<<"$ra"
  read -r bb bf b1 bs1 b2 bs2 <<<"$rb"
  verdict=$(awk -v ab="$ab" -v bb="$bb" -v af="$af" -v bf="$bf" -v r="$a1 $a2 $b1 $b2" -v s="$as1 $as2 $bs1 $bs2" 'BEGIN {
    n = split(r, R, " "); split(s, S, " ")
    lo = hi = R[1]; slo = shi = S[1]
    for (k = 2; k <= n; k++) { if (R[k] < lo) lo = R[k]; if (R[k] > hi) hi = R[k]; if (S[k] < slo) slo = S[k]; if (S[k] > shi) shi = S[k] }
    if (ab <= 0 || bb <= 0 || af != 0 || bf != 0) { print "failed"; exit }
    if (lo <= 0 || hi > 1.5 * lo || shi - slo > 0.15) { print "phase-changed"; exit }
    printf "%.3f", bb / ab }')
  printf '%-5s %-8s %10s %10s %7s  %s | %s\n' "$i" "$order" "$ab" "$bb" "$verdict" "$a1 $as1, $a2 $as2" "$b1 $bs1, $b2 $bs2"
  if [[ $verdict =~ ^[0-9.]+$ ]]; then
    ratios+=("$verdict")
    kept=$((kept + 1))
    awk -v r="$verdict" 'BEGIN { exit !(r < 1) }' && faster=$((faster + 1))
  fi
done
if [ "$kept" -eq 0 ]; then
  echo "RESULT pairs=0/$pairs median_ratio=- b_faster=0 sign_p=-"
  exit 0
fi
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2] + a[NR/2+1]) / 2 }')
# Two-sided sign test: P(at least this lopsided | no difference), binomial(kept, 1/2).
p=$(awk -v n="$kept" -v k="$faster" 'BEGIN {
  m = (k < n - k) ? k : n - k; t = 0; c = 1
  for (j = 0; j <= m; j++) { if (j > 0) c = c * (n - j + 1) / j; t += c }
  p = 2 * t / 2 ^ n; if (p > 1) p = 1; printf "%.3f", p }')
echo "RESULT pairs=$kept/$pairs median_ratio=$median b_faster=$faster sign_p=$p"
