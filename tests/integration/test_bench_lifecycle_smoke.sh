#!/usr/bin/env bash
# Smoke runs of scripts/bench-lifecycle.sh (not a speed test, no thresholds
# on cycles): the stack-only harness completes every lifecycle with no
# failure in both close modes and prints both sides' cycles; --pair runs
# two engines at once; with valgrind present, --callgrind prints an
# instruction count and its functions.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
fail=0
# Both close modes, with checksums left to the link and computed in
# software (every frame's sums verified: a wrong one aborts the harness).
for mode in server client; do
  for ck in offload software; do
    out=$(timeout 300 ./build/bench/lifecycle 30000 "$mode" 50 "$ck" 2>&1)
    rc=$?
    if [ $rc -eq 0 ] && grep -q "cksum=$ck mode=$mode lifecycles=30000 completed=30000 failed=0" <<<"$out" &&
       grep -qE "terminator_cycles_per_lifecycle=[1-9]" <<<"$out" && grep -qE "generator_cycles_per_lifecycle=[1-9]" <<<"$out"; then
      echo "ok: bench/lifecycle $mode $ck: 30000 lifecycles, none failed"
    else
      echo "FAIL: bench/lifecycle $mode $ck rc=$rc"; echo "$out" | tail -10; fail=1
    fi
  done
done
out=$(./build/bench/lifecycle 100 server 50 none 2>&1)
[ $? -eq 2 ] && grep -q "offload or software" <<<"$out" && echo "ok: a bad checksum mode exits 2" ||
  { echo "FAIL: bench/lifecycle with checksum mode 'none': $out"; fail=1; }
# The scripts refuse a bad checksum mode before building or running anything.
for cmd in "scripts/bench-lifecycle.sh --cksum none" "scripts/bench-teardown.sh --ring-cksum none"; do
  out=$(timeout 30 $cmd 2>&1)
  rc=$?
  if [ $rc -eq 2 ] && [ "$(wc -l <<<"$out")" -eq 1 ] && grep -q "bad value 'none' (offload, software)" <<<"$out"; then
    echo "ok: $cmd exits 2 with one line"
  else
    echo "FAIL: $cmd: rc=$rc: $out"; fail=1
  fi
done
out=$(timeout 300 scripts/bench-lifecycle.sh --runs 1 --lifecycles 20000 2>&1)
if grep -qE "^terminator_cycles_per_lifecycle: [1-9]" <<<"$out" && grep -qE "^generator_cycles_per_lifecycle: [1-9]" <<<"$out"; then
  echo "ok: scripts/bench-lifecycle.sh prints both medians"
else
  echo "FAIL: scripts/bench-lifecycle.sh"; echo "$out" | tail -10; fail=1
fi
if [ "$(nproc)" -ge 2 ]; then
  out=$(timeout 300 scripts/bench-lifecycle.sh --pair --runs 1 --lifecycles 20000 2>&1)
  if grep -qE "^two_core_scaling: [0-9.]+x" <<<"$out"; then
    echo "ok: --pair runs two engines at once ($(grep -o 'two_core_scaling: .*' <<<"$out"))"
  else
    echo "FAIL: --pair"; echo "$out" | tail -10; fail=1
  fi
fi
if command -v valgrind >/dev/null; then
  out=$(timeout 600 scripts/bench-lifecycle.sh --callgrind --lifecycles 5000 2>&1)
  if grep -qE "^terminator_instructions_per_lifecycle: [1-9][0-9]{3,}" <<<"$out" && grep -q "on_segment" <<<"$out"; then
    echo "ok: --callgrind counts the terminator's instructions ($(grep -o 'lifecycle: [0-9]*' <<<"$out" | head -1))"
  else
    echo "FAIL: --callgrind"; echo "$out" | tail -10; fail=1
  fi
else
  echo "skip: --callgrind (valgrind not installed; the script installs it when run by hand)"
fi
exit $fail
