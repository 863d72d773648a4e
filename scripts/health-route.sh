#!/usr/bin/env bash
# scripts/health-route.sh --url URL --up CMD --down CMD [--interval S] [--rise N] [--fall N]
#                         [--timeout S] [--max-polls N]
#
# Ties a route to the appliance's health, for ECMP scale-out behind BGP
# routers: polls tcpterm's /healthz (--http-stats) and runs --up CMD after
# RISE answers of 200 in a row, --down CMD after FALL polls in a row that
# are anything else (503, no answer within --timeout, a refused
# connection).  Each command runs once per change of state, and once at
# the start, when the first verdict is reached.  Typical commands announce
# and withdraw the service address through the local BGP speaker:
#
#   BIRD 2:  --up 'birdc enable vip'   --down 'birdc disable vip'
#            (protocol static vip { ipv4; route 198.18.1.10/32 blackhole; },
#             exported to the BGP sessions: docs/observability.md)
#   FRR:     --up "vtysh -c 'conf t' -c 'router bgp 65001' -c 'address-family ipv4 unicast' -c 'network 198.18.1.10/32'"
#            --down "vtysh -c 'conf t' -c 'router bgp 65001' -c 'address-family ipv4 unicast' -c 'no network 198.18.1.10/32'"
#            (with bgp network import-check on, bgpd announces a network
#             only once zebra's RIB holds the route)
#   Both are exercised by tests/e2e/test_health.py.
#
# Prints one line per change (time, verdict, the failing checks).  Exits on
# SIGTERM/SIGINT without running a command (a stopped watcher leaves the
# route as it was: stop the BGP speaker to withdraw everything), or after
# --max-polls polls (tests).  A bad flag: exit 2 and a line naming it.
set -u
url="" up="" down="" interval=1 rise=2 fall=2 timeout=2 max=0
usage() { echo "$0: $1 (usage: --url URL --up CMD --down CMD [--interval S] [--rise N] [--fall N] [--timeout S] [--max-polls N])" >&2; exit 2; }
num() {  # num FLAG VALUE: a positive number (seconds)
  [[ "$2" =~ ^[0-9]+([.][0-9]+)?$ ]] && [[ "$2" =~ [1-9] ]] || { echo "$0: $1 needs a number above 0, not '$2'" >&2; exit 2; }
}
int() {  # int FLAG VALUE: a whole number from 1
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] 2>/dev/null || { echo "$0: $1 needs a whole number from 1, not '$2'" >&2; exit 2; }
}
while [ $# -gt 0 ]; do
  case $1 in
    --url|--up|--down|--interval|--rise|--fall|--timeout|--max-polls)
      [ $# -ge 2 ] || { echo "$0: $1 needs a value" >&2; exit 2; } ;;
  esac
  case $1 in
    --url) url=$2 ;;
    --up) up=$2 ;;
    --down) down=$2 ;;
    --interval) num "$1" "$2"; interval=$2 ;;
    --rise) int "$1" "$2"; rise=$2 ;;
    --fall) int "$1" "$2"; fall=$2 ;;
    --timeout) num "$1" "$2"; timeout=$2 ;;
    --max-polls) int "$1" "$2"; max=$2 ;;
    *) usage "unknown option '$1'" ;;
  esac
  shift 2
done
[ -n "$url" ] && [ -n "$up" ] && [ -n "$down" ] || usage "--url, --up and --down are all needed"
command -v curl >/dev/null || { echo "$0: curl is needed" >&2; exit 1; }

trap 'exit 0' TERM INT
state=unknown ok_run=0 bad_run=0 polls=0
while :; do
  body=$(curl -s -m "$timeout" -w '\n%{http_code}' "$url" 2>/dev/null)
  code=${body##*$'\n'}
  if [ "$code" = 200 ]; then ok_run=$((ok_run + 1)) bad_run=0; else bad_run=$((bad_run + 1)) ok_run=0; fi
  if [ "$state" != up ] && [ "$ok_run" -ge "$rise" ]; then
    state=up
    echo "$(date +%T) healthy: running the up command"
    bash -c "$up" || echo "$(date +%T) the up command failed (exit $?)"
  elif [ "$state" != down ] && [ "$bad_run" -ge "$fall" ]; then
    state=down
    why=$(printf '%s\n' "$body" | grep 'FAIL' | sed 's/^ *//' | paste -sd ';' -)
    echo "$(date +%T) unhealthy (HTTP ${code:-none}${why:+: $why}): running the down command"
    bash -c "$down" || echo "$(date +%T) the down command failed (exit $?)"
  fi
  polls=$((polls + 1))
  [ "$max" -gt 0 ] && [ "$polls" -ge "$max" ] && exit 0
  sleep "$interval" &
  wait $!
done
