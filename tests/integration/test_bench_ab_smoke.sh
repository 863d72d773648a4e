#!/usr/bin/env bash
# Smoke run of scripts/bench-ab.sh (no thresholds: a machine's speed is
# not a test): the same binary as A and B, two short pairs.  Each pair gets
# its line (a ratio, or why it does not count), the summary line has its
# fields, and bad arguments exit 2 with one line.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
fail=0
out=$(timeout 300 scripts/bench-ab.sh --pairs 2 --seconds 1 --msl-ms 1000 build/app/tcpterm build/app/tcpterm 2>&1)
rc=$?
lines=$(grep -cE '^[12] +(AB|BA) +[0-9]+ +[0-9]+ +([0-9]+\.[0-9]{3}|phase-changed|failed) ' <<<"$out")
if [ $rc -eq 0 ] && [ "$lines" -eq 2 ] &&
   grep -qE '^RESULT pairs=[0-2]/2 median_ratio=([0-9]+\.[0-9]+|-) b_faster=[0-2] sign_p=([0-9]\.[0-9]{3}|-)$' <<<"$out"; then
  echo "ok: bench-ab.sh: two pairs in alternating order, $(grep '^RESULT' <<<"$out")"
else
  echo "FAIL: bench-ab.sh rc=$rc pair-lines=$lines"; tail -20 <<<"$out"; fail=1
fi
# The same binary both sides: a pair that counts has run both to completion.
grep -qE '^[12] .* failed ' <<<"$out" && { echo "FAIL: a pair's run did not complete every connection"; fail=1; }
for bad in "--pairs 0 a b" "--mode rst a b" "--pairs 1 build/app/tcpterm" "--pairs 1 no-such-revision build/app/tcpterm" "--frobnicate a b"; do
  # shellcheck disable=SC2086
  err=$(scripts/bench-ab.sh $bad 2>&1 >/dev/null)
  rc=$?
  if [ $rc -eq 2 ] && [ "$(grep -c . <<<"$err")" -eq 1 ]; then echo "ok: bench-ab.sh $bad -> $err"
  else echo "FAIL: bench-ab.sh $bad: rc=$rc: $err"; fail=1; fi
done
ls -d /var/run/dpdk/bench* 2>/dev/null && { echo "FAIL: an EAL runtime directory was left"; fail=1; }
exit $fail
