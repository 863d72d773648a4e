#!/usr/bin/env bash
# Smoke run of scripts/bench-listing.sh (not a speed test, no threshold on
# the poll time): one short run prints the terminator's longest poll and
# what the listing examined, and the RESULT line; a bad flag is exit 2 with
# one line naming it.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
fail=0
out=$(timeout 120 scripts/bench-listing.sh --runs 1 --seconds 4 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -qE "^run 1: terminator longest_poll_us: [0-9]+ .*last listing: [0-9]+ slots and records examined" <<<"$out" &&
   grep -qE "^RESULT longest_poll_us_median=[0-9]+ " <<<"$out"; then
  echo "ok: bench-listing.sh: $(grep '^run 1' <<<"$out")"
else
  echo "FAIL: bench-listing.sh rc=$rc"; tail -10 <<<"$out"; fail=1
fi
err=$(scripts/bench-listing.sh --runs x 2>&1)
rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l <<<"$err")" -eq 1 ] && grep -q -- "--runs" <<<"$err"; then
  echo "ok: a bad flag: exit 2, one line ($err)"
else
  echo "FAIL: a bad flag: rc=$rc ($err)"; fail=1
fi
exit $fail
