#!/usr/bin/env bash
# scripts/run.sh PROFILE [tcpterm options...]
# Starts tcpterm with the EAL and port settings of drivers-config/PROFILE.conf;
# extra options are appended after the profile's (later ones win for single
# values, add for repeatable ones such as --listen).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -lt 1 ] || [ ! -f "$top/drivers-config/$1.conf" ]; then
  echo "usage: $0 PROFILE [options]   (profiles: $(cd "$top/drivers-config" && ls *.conf | sed 's/\.conf//' | tr '\n' ' '))" >&2
  exit 2
fi
profile=$1
shift
# shellcheck disable=SC1090
. "$top/drivers-config/$profile.conf"
bin=${TCPTERM_BIN:-$top/build/app/tcpterm}
[ -x "$bin" ] || { echo "$bin not built: meson setup build && ninja -C build" >&2; exit 1; }
# shellcheck disable=SC2086
exec "$bin" $EAL_ARGS -- $APP_ARGS "$@"
