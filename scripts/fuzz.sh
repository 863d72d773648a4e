#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] [TARGET...]: builds the libFuzzer targets with
# clang (fuzzer + address + undefined sanitizers) and runs each for SECONDS
# (default 300) on a copy of its seed corpus (tests/fuzz/corpus/<target>).
# New interesting inputs stay in build-fuzz/corpus/; crashes land in
# build-fuzz/ as crash-* and fail the run.  scripts/test.sh runs it briefly.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(wire tcp proxy)
out=$top/build-fuzz
mkdir -p "$out"
CXX=${CXX_FUZZ:-clang++}
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I"$top/lib")
srcs=("$top/lib/wire/wire.cc" "$top/lib/wire/ipv6.cc" "$top/lib/tcp/state.cc" "$top/lib/tcp/buffer.cc" "$top/lib/tcp/tcp.cc"
      "$top/lib/tcp/time_wait.cc" "$top/lib/tcp/iss.cc" "$top/lib/tcp/syncookie.cc" "$top/lib/tcp/random.cc"
      "$top/lib/flow/flow.cc" "$top/lib/timer/wheel.cc" "$top/lib/stack/stack.cc"
      "$top/lib/lb/maglev.cc" "$top/lib/lb/pool.cc" "$top/lib/lb/proxy_protocol.cc" "$top/lib/lb/balancer.cc"
      "$top/lib/lb/proxy.cc" "$top/lib/apps/apps.cc")
rc=0
for t in "${targets[@]}"; do
  bin=$out/fuzz_$t
  if [ ! -x "$bin" ] || [ -n "$(find "$top/lib" "$top/tests/fuzz" -newer "$bin" -name '*.[ch]*' | head -1)" ]; then
    "$CXX" "${flags[@]}" "$top/tests/fuzz/fuzz_$t.cc" "${srcs[@]}" -o "$bin" || { echo "fuzz_$t: build failed"; rc=1; continue; }
  fi
  mkdir -p "$out/corpus/$t"
  cp -n "$top/tests/fuzz/corpus/$t/"* "$out/corpus/$t/" 2>/dev/null
  (cd "$out" && "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 "$out/corpus/$t" \
      >"$out/fuzz_$t.log" 2>&1)
  r=$?
  runs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$out/fuzz_$t.log" | grep -o '[0-9]*$')
  if [ $r -eq 0 ]; then echo "fuzz_$t: ok, ${runs:-?} inputs in ${secs}s"
  else echo "fuzz_$t: FAILED (see $out/fuzz_$t.log)"; tail -30 "$out/fuzz_$t.log"; rc=1; fi
done
exit $rc
