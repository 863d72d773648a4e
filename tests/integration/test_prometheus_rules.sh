#!/usr/bin/env bash
# The fleet's alerting rules (docs/tcpterm-alerts.yml): promtool accepts
# them, and they fire -- and stay quiet -- as prometheus-alerts-test.yml
# expects on synthetic series (promtool test rules).  That every metric
# they name exists is checked against a live appliance in
# tests/e2e/test_health.py.
set -u
cd "$(dirname "$0")"
fail=0
if promtool check rules ../../docs/tcpterm-alerts.yml; then echo "ok: promtool check rules"; else echo "FAIL: promtool check rules"; fail=1; fi
if promtool test rules prometheus-alerts-test.yml; then echo "ok: promtool test rules"; else echo "FAIL: promtool test rules"; fail=1; fi
exit $fail
