#!/usr/bin/env bash
# The loopback teardown benchmark path works end to end (not a speed test):
# the ring pair joins generator and terminator, every close mode completes
# connections with no failure, the expected side holds TIME-WAIT, the CSV
# has a row a second, an idle worker holds no mbuf, and every mbuf comes back.  Then the same over IPv6
# (bench-teardown.sh --ipv6's setup), server and client close.  Last,
# `show flows` over some 200 000 TIME-WAIT records is taken in slices.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TCPTERM_BIN:-$top/build/app/tcpterm}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for mode in server client simultaneous rst; do
  app=http
  [ $mode = simultaneous ] && app="discard,close=open"
  out=$(timeout 60 "$bin" --lcores 0@0,1@1,2@0 --no-huge -m 1024 --no-pci --file-prefix "lbt$$" --log-level warn -- \
    --ring-pair --addr 1@198.18.0.2/24 --addr 0@198.18.128.1-198.18.255.254/17 --listen "198.18.0.2:80/$app" \
    --connect "198.18.0.2:80,close=$mode,concurrency=64,rate=20000,duration=2" --run-seconds 3 \
    --msl-ms 1000 --max-time-wait 200000 --bench-csv "$tmp/$mode.csv" 2>&1)
  rc=$?
  completed=$(sed -n 's/^ *connections_completed: \([0-9]*\)$/\1/p' <<<"$out")
  failed=$(sed -n 's/^ *failed: \([0-9]*\) .*/\1/p' <<<"$out")
  rows=$(($(wc -l <"$tmp/$mode.csv") - 1))
  tw=$(sed -n 's/^ *time_wait_entered: \([0-9]*\)$/\1/p' <<<"$out" | tail -1)
  # The summary is read while the workers still run, a second after the
  # load stopped: an idle worker has given its transmit stash back.
  inuse=$(sed -n 's/^ *mbufs_in_use: \([0-9]*\)$/\1/p' <<<"$out")
  if [ $rc -eq 0 ] && [ "${completed:-0}" -ge 20000 ] && [ "${failed:-1}" -eq 0 ] && [ "$rows" -ge 2 ] &&
     [ "${inuse:-1}" -eq 0 ] && grep -Eq "mbufs: ([0-9]+)/\1 back" <<<"$out"; then
    echo "ok: $mode: $completed completed, 0 failed, $rows CSV rows, TIME-WAIT entered $tw"
  else
    echo "FAIL: $mode rc=$rc completed=$completed failed=$failed rows=$rows mbufs_in_use=$inuse"; tail -20 <<<"$out"; fail=1
  fi
  # Room for every record: the summary says none was cut short.
  grep -q "limits_hit: .*tw_recycled 0, tw_cap_skipped 0" <<<"$out" ||
    { echo "FAIL: $mode: the summary does not report 0 TIME-WAIT records recycled and skipped"; fail=1; }
  case $mode in
    rst) [ "${tw:-1}" -eq 0 ] || { echo "FAIL: rst mode entered TIME-WAIT"; fail=1; } ;;
    *) [ "${tw:-0}" -ge 20000 ] || { echo "FAIL: $mode: TIME-WAIT entered $tw"; fail=1; } ;;
  esac
done
# The ring pair with software checksums (--ring-cksum software): both ends
# compute and verify every checksum, as over a device without offload; a
# wrong sum on either side would drop every frame (counted in the summary's
# drops by reason, and the connections would fail).
out=$(timeout 60 "$bin" --lcores 0@0,1@1,2@0 --no-huge -m 1024 --no-pci --file-prefix "lbts$$" --log-level info -- \
  --ring-pair --ring-cksum software --addr 1@198.18.0.2/24 --addr 0@198.18.128.1-198.18.255.254/17 \
  --listen "198.18.0.2:80/http" --connect "198.18.0.2:80,close=server,concurrency=64,rate=20000,duration=2" \
  --run-seconds 3 --msl-ms 1000 --max-time-wait 200000 --bench-csv "$tmp/sw.csv" 2>&1)
rc=$?
completed=$(sed -n 's/^ *connections_completed: \([0-9]*\)$/\1/p' <<<"$out")
failed=$(sed -n 's/^ *failed: \([0-9]*\) .*/\1/p' <<<"$out")
if [ $rc -eq 0 ] && [ "${completed:-0}" -ge 20000 ] && [ "${failed:-1}" -eq 0 ] &&
   grep -q "net_ring.*tx checksum offload off" <<<"$out"; then
  echo "ok: --ring-cksum software: $completed completed, 0 failed, no offload on the ring pair"
else
  echo "FAIL: --ring-cksum software rc=$rc completed=$completed failed=$failed"; tail -20 <<<"$out"; fail=1
fi
for mode in server client; do
  out=$(timeout 60 "$bin" --lcores 0@0,1@1,2@0 --no-huge -m 1024 --no-pci --file-prefix "lbt6$$" --log-level warn -- \
    --ring-pair --addr 1@2001:2::2/64 --addr 0@2001:2::1:0-2001:2::1:7fff/64 --listen "[2001:2::2]:80/http" \
    --connect "[2001:2::2]:80,close=$mode,concurrency=64,rate=20000,duration=2" --run-seconds 3 \
    --msl-ms 1000 --max-time-wait 200000 --bench-csv "$tmp/v6$mode.csv" 2>&1)
  rc=$?
  completed=$(sed -n 's/^ *connections_completed: \([0-9]*\)$/\1/p' <<<"$out")
  failed=$(sed -n 's/^ *failed: \([0-9]*\) .*/\1/p' <<<"$out")
  tw=$(sed -n 's/^ *time_wait_entered: \([0-9]*\)$/\1/p' <<<"$out" | tail -1)
  if [ $rc -eq 0 ] && [ "${completed:-0}" -ge 20000 ] && [ "${failed:-1}" -eq 0 ] && [ "${tw:-0}" -ge 20000 ] &&
     grep -q "ipv6_record_bytes\|ipv6_addresses_held" <<<"$out" && grep -Eq "mbufs: ([0-9]+)/\1 back" <<<"$out"; then
    echo "ok: IPv6 $mode: $completed completed, 0 failed, TIME-WAIT entered $tw"
  else
    echo "FAIL: IPv6 $mode rc=$rc completed=$completed failed=$failed tw=$tw"; tail -20 <<<"$out"; fail=1
  fi
done
# `show flows` on an lcore holding about 200 000 TIME-WAIT records, asked
# for an address that matches none of them: the whole FIFO is walked, a
# slice per poll (Worker::kDumpStep records), while the lcore keeps
# polling; and N is bounded.
out=$( (sleep 4; echo "show flows 198.18.9.9"; echo "show flows TIME-WAIT 3"; echo "show flows 100001"; echo quit) |
  timeout 60 "$bin" --lcores 0@0,1@1,2@0 --no-huge -m 1024 --no-pci --file-prefix "lbtf$$" --log-level warn -- \
    --ring-pair --addr 1@198.18.0.2/24 --addr 0@198.18.128.1-198.18.255.254/17 --listen "198.18.0.2:80/http" \
    --connect "198.18.0.2:80,close=server,concurrency=64,rate=100000,duration=2" \
    --msl-ms 30000 --max-time-wait 400000 -i 2>&1)
rc=$?
none=$(grep -m1 '^flows shown: 0 ' <<<"$out")
examined=$(sed -n 's/^flows shown: 0 (\([0-9]*\) slots and records.*/\1/p' <<<"$out" | head -1)
polls=$(sed -n 's/^flows shown: 0 .* in at most \([0-9]*\) poll.*/\1/p' <<<"$out" | head -1)
tw_lines=$(grep -c 'TIME-WAIT$' <<<"$out")
if [ $rc -eq 0 ] && [ -n "$none" ] && [ "${examined:-0}" -ge 150000 ] && [ "${polls:-0}" -ge 3 ] &&
   [ "$tw_lines" -eq 3 ] && grep -q "error: show flows prints at most 100000" <<<"$out" &&
   grep -Eq "mbufs: ([0-9]+)/\1 back" <<<"$out"; then
  echo "ok: show flows walked $examined slots and records in $polls polls, 3 TIME-WAIT lines on request, N bounded"
else
  echo "FAIL: show flows rc=$rc examined=$examined polls=$polls tw_lines=$tw_lines"; tail -20 <<<"$out"; fail=1
fi
rm -rf /var/run/dpdk/lbt$$ /var/run/dpdk/lbt6$$ /var/run/dpdk/lbtf$$
exit $fail
