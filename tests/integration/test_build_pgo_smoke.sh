#!/usr/bin/env bash
# Smoke run of scripts/build-pgo.sh (no timing: a profile-guided binary is
# measured by scripts/bench-ab.sh, not by a test): one-second training runs
# in a directory of its own.  The two training runs complete every
# connection, they leave profile counts, the binary built from them exists
# and runs, and nothing is left in /var/run/dpdk.  Bad arguments exit 2
# with one line.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
fail=0
dir=build-pgo-smoke$$
trap 'rm -rf "$top/$dir"' EXIT
out=$(timeout 900 scripts/build-pgo.sh --seconds 1 --dir "$dir" 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -qx "pgo: $dir/app/tcpterm" <<<"$out" && [ -x "$dir/app/tcpterm" ]; then
  echo "ok: build-pgo.sh built $dir/app/tcpterm"
else
  echo "FAIL: build-pgo.sh rc=$rc"; tail -20 <<<"$out"; fail=1
fi
n=$(grep -c '^training, \(server\|client\) first, 1s: .* failed: 0 ' <<<"$out")
if [ "$n" -eq 2 ]; then echo "ok: two training runs, every connection completed"
else echo "FAIL: $n of 2 training runs completed every connection"; grep '^training' <<<"$out"; fail=1; fi
if grep -qE '^profile: [1-9][0-9]* count files$' <<<"$out" && [ -n "$(find "$dir" -name '*.gcda' | head -1)" ]; then
  echo "ok: $(grep '^profile:' <<<"$out")"
else
  echo "FAIL: no profile counts"; fail=1
fi
# Built from the counts: the configuration says so, and the binary parses
# its options as the plain build does.
if meson configure "$dir" 2>/dev/null | grep -qE '^ *b_pgo +use '; then echo "ok: $dir configured with b_pgo=use"
else echo "FAIL: $dir is not configured with b_pgo=use"; fail=1; fi
"$dir/app/tcpterm" --no-huge -m 64 --no-pci --file-prefix pgosmoke$$ --log-level error -- --frobnicate >/dev/null 2>&1
rc=$?
rm -rf /var/run/dpdk/pgosmoke$$
if [ $rc -eq 2 ]; then echo "ok: the profile-guided binary refuses a bad flag with exit 2"
else echo "FAIL: the profile-guided binary: bad flag gave exit $rc"; fail=1; fi
for bad in "--seconds 0" "--seconds x" "--dir" "--frobnicate"; do
  # shellcheck disable=SC2086
  err=$(scripts/build-pgo.sh $bad 2>&1 >/dev/null)
  rc=$?
  if [ $rc -eq 2 ] && [ "$(grep -c . <<<"$err")" -eq 1 ]; then echo "ok: build-pgo.sh $bad -> $err"
  else echo "FAIL: build-pgo.sh $bad: rc=$rc: $err"; fail=1; fi
done
ls -d /var/run/dpdk/bench* 2>/dev/null && { echo "FAIL: an EAL runtime directory was left"; fail=1; }
exit $fail
