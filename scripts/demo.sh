#!/usr/bin/env bash
# tcpterm demo (SPEC.md): on a fresh machine, installs what is missing, builds,
# and runs the appliance on the embedded default -- a namespace with a TAP,
# 198.18.0.1 (Linux) <-> 198.18.0.2 (tcpterm) -- terminating real Linux TCP
# connections (curl, a connection-churn client, a bulk echo) with a live view
# of connections per state.  It ends by itself (well within two minutes),
# prints a summary and removes the namespace.
set -u
. "$(dirname "$0")/lib.sh"
cd "$TCPTERM_TOP"
ensure_packages "${TCPTERM_BUILD_PKGS[@]}" "${TCPTERM_TEST_PKGS[@]}" || exit 1
echo "building..."
build build || exit 1
exec /usr/bin/python3 "$TCPTERM_TOP/scripts/demo.py" "$@"
