#!/usr/bin/env bash
# tcpterm's test entry point (SPEC.md): installs what is missing, builds with
# meson, runs every suite, and ends with one line `tests: N passed, M failed`.
#
#   scripts/test.sh            all suites
#   SUITES="unit" scripts/test.sh   a subset (unit integration e2e)
set -u
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"

SUITES=${SUITES:-"unit integration e2e asan fuzz"}
PASSED=0
FAILED=0
FAILED_NAMES=()
LOGDIR=${LOGDIR:-$TCPTERM_TOP/build/test-logs}

record() {  # record NAME STATUS
  if [ "$2" -eq 0 ]; then PASSED=$((PASSED + 1)); echo "PASS $1"
  else FAILED=$((FAILED + 1)); FAILED_NAMES+=("$1"); echo "FAIL $1"; fi
}

finish() {
  if [ ${#FAILED_NAMES[@]} -gt 0 ]; then
    echo "failed: ${FAILED_NAMES[*]} (logs in $LOGDIR)"
  fi
  echo "tests: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
  exit $?
}

if ! ensure_packages "${TCPTERM_BUILD_PKGS[@]}" "${TCPTERM_TEST_PKGS[@]}"; then
  record "install-dependencies" 1
  finish
fi
if ! build build; then
  record "build" 1
  finish
fi
mkdir -p "$LOGDIR"

# Catch2 suites: every test case counts.  The console reporter's summary is
# "All tests passed (A assertions in N test cases)" or
# "test cases: N | P passed | F failed".
run_catch() {  # run_catch NAME BINARY [args]
  local name=$1 bin=$2
  shift 2
  local log="$LOGDIR/$name.log"
  timeout 1200 "$bin" "$@" >"$log" 2>&1
  local rc=$?
  local line p f
  line=$(grep -E "^(All tests passed|test cases:)" "$log" | tail -1)
  if [[ $line =~ ^All\ tests\ passed.*in\ ([0-9]+)\ test\ case ]]; then
    p=${BASH_REMATCH[1]}; f=0
  elif [[ $line =~ test\ cases:\ *([0-9]+)\ \|\ *([0-9]+)\ passed\ \|\ *([0-9]+)\ failed ]]; then
    p=${BASH_REMATCH[2]}; f=${BASH_REMATCH[3]}
  else
    p=0; f=1
  fi
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  [ "$f" -gt 0 ] && FAILED_NAMES+=("$name") && grep -B2 -A12 "FAILED" "$log" | head -60
  echo "$name: $p passed, $f failed"
}

# Script suites: each executable tests/<suite>/test_*.sh or .py is one test.
run_scripts() {  # run_scripts DIR
  local dir=$1 t name
  for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    name="$(basename "$dir")/$(basename "$t")"
    local log="$LOGDIR/$(basename "$dir")_$(basename "$t").log"
    TCPTERM_BIN="$TCPTERM_TOP/build/app/tcpterm" timeout 900 "$t" >"$log" 2>&1
    local rc=$?
    record "$name" $rc
    [ $rc -ne 0 ] && tail -30 "$log"
  done
}

for suite in $SUITES; do
  case $suite in
    unit) run_catch unit build/tests/unit/unit_tests ;;
    integration) [ -x build/tests/integration/integration_tests ] &&
        run_catch integration build/tests/integration/integration_tests
      run_scripts tests/integration ;;
    e2e) run_scripts tests/e2e ;;
    asan)
      # The unit tests and the tcpterm binary under AddressSanitizer and
      # UndefinedBehaviorSanitizer; the binary then takes the injection test.
      if build build-asan -Db_sanitize=address,undefined -Dbuildtype=debug -Db_lundef=false -Db_lto=false; then
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 run_catch unit-asan build-asan/tests/unit/unit_tests
        for t in tests/integration/test_pcap_injection.py tests/integration/test_options.sh tests/e2e/test_control_channel.py \
                 tests/e2e/test_proxy.py tests/e2e/test_ipv6.py tests/e2e/test_multiqueue.py; do
          log="$LOGDIR/asan_$(basename "$t").log"
          UBSAN_OPTIONS=halt_on_error=1 ASAN_OPTIONS=detect_leaks=0 TCPTERM_BIN="$TCPTERM_TOP/build-asan/app/tcpterm" \
            timeout 600 "$t" >"$log" 2>&1
          rc=$?
          record "asan/$(basename "$t")" $rc
          [ $rc -ne 0 ] && tail -30 "$log"
        done
      else
        record "asan-build" 1
      fi ;;
    fuzz)
      # Short bounded libFuzzer runs of each target (scripts/fuzz.sh runs longer).
      for t in wire tcp proxy; do
        log="$LOGDIR/fuzz_$t.log"
        "$TCPTERM_TOP/scripts/fuzz.sh" "${FUZZ_SECONDS:-20}" "$t" >"$log" 2>&1
        rc=$?
        record "fuzz/$t" $rc
        [ $rc -ne 0 ] && tail -30 "$log"
      done ;;
    *) echo "unknown suite $suite"; record "suite-$suite" 1 ;;
  esac
done
finish
