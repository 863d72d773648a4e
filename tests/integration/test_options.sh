#!/usr/bin/env bash
# A bad option or value: exit status 2, exactly one line on stderr naming the
# option, and nothing starts (no EAL: no /var/run/dpdk/<prefix> appears).
set -u
bin=${TCPTERM_BIN:-build/app/tcpterm}
fail=0
expect_bad() {  # expect_bad WORD args...
  local word=$1
  shift
  local err rc
  err=$("$bin" --no-huge -m 64 --no-pci --file-prefix ttopt -- "$@" 2>&1 >/dev/null)
  rc=$?
  local lines
  lines=$(printf '%s\n' "$err" | grep -c .)
  if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$word" <<<"$err"; then
    echo "FAIL: [$*] rc=$rc lines=$lines: $err"
    fail=1
  else
    echo "ok: [$*] -> $err"
  fi
}
expect_bad "--bogus" --bogus
expect_bad "--msl-ms" --msl-ms abc
expect_bad "--msl-ms" --msl-ms 0
expect_bad "--msl-ms" --msl-ms
expect_bad "--max-flows" --max-flows -5
expect_bad "--idle-timeout-ms" --idle-timeout-ms 99999999999
expect_bad "--addr" --addr 198.18.0.300/24
expect_bad "--addr" --addr 198.18.0.2
expect_bad "--listen" --listen 198.18.0.2:80/nosuchapp
expect_bad "--listen" --listen 198.18.0.2:99999/http
expect_bad "--listen" --listen 198.18.0.2:80/http,body=lots
expect_bad "--listen" --listen 198.18.0.2:80/echo,x=1
expect_bad "--cmdline-file" --cmdline-file /nonexistent/file
expect_bad "--stats-period" -i --stats-period 1
expect_bad "--tw-rst" --tw-rst maybe
expect_bad "--table-hugepages" --table-hugepages maybe
expect_bad "--prefault" --prefault yes
expect_bad "--ring-cksum" --ring-cksum none
expect_bad "--log-level" --log-level loud
expect_bad "--http-stats" --http-stats 127.0.0.1
expect_bad "--http-stats" --http-stats 127.0.0.1:0
expect_bad "--pool" --pool web=198.18.0.11
expect_bad "--pool" --pool web=198.18.0.11:80,balance=random
expect_bad "--pool" --pool web=198.18.0.11:80,src=10.0.0.1
expect_bad "--listen" --listen 198.18.0.2:80/proxy,pool=nosuch
expect_bad "--listen" --listen 198.18.0.2:80/proxy
# IPv6 (and 224.0.0.0/3, which carries IPv6 address ids in flow keys).
expect_bad "--addr" --addr 2001:2::2
expect_bad "--addr" --addr 2001:2::2/129
expect_bad "--addr" --addr 2001:2:::2/64
expect_bad "--addr" --addr ::1/128
expect_bad "--addr" --addr fe80::1/64
expect_bad "--addr" --addr ff02::1/64
expect_bad "--addr" --addr 2001:2::1-2001:3::1/64
expect_bad "--addr" --addr 224.0.0.1/24
expect_bad "--addr" --addr 240.0.0.1/24
expect_bad "--listen" --listen "[2001:2::2:80/http"
expect_bad "--listen" --listen "[2001:2::2]80/http"
expect_bad "--listen" --listen "[2001:2::2]:0/http"
expect_bad "--listen" --listen "[ff02::1]:80/http"
expect_bad "--route" --route 2001:2:1::/48
expect_bad "--route" --route 2001:2:1::1/48,via=2001:2::1
expect_bad "--route" --route 2001:2:1::/48,via=ff02::1
expect_bad "--route" --route 2001:2:1::/129,via=2001:2::1
expect_bad "--connect" --connect "[2001:2::2]"
expect_bad "--connect" --connect "[2001:2::2]:80,src=2001:2::9-2001:2:1::9"
expect_bad "--connect" --connect 230.1.2.3:80
expect_bad "--pool" --pool "web=[::1]:80"
expect_bad "--pool" --pool "web=[2001:2::11]"
expect_bad "--syn-admission" --syn-admission maybe
expect_bad "--connect" --connect "198.18.0.2:80,close=amnesiac"
[ -e /var/run/dpdk/ttopt ] && { echo "FAIL: EAL ran for a bad option"; fail=1; }
# A good invocation without a worker lcore fails with a clear message (exit 1).
err=$(timeout 30 "$bin" -l 0 --no-huge -m 256 --no-pci --file-prefix ttopt1 --vdev net_null0 -- 2>&1)
rc=$?
if [ $rc -ne 1 ] || ! grep -q "worker lcore" <<<"$err"; then echo "FAIL: -l 0: rc=$rc $err"; fail=1; else echo "ok: -l 0 refused: no worker lcore"; fi
exit $fail
