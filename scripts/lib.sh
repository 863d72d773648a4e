#!/usr/bin/env bash
# Shared helpers for tcpterm's scripts: dependency installation and the build.
# Sourced, not run.

TCPTERM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian packages the build needs (SPEC.md) and the test tools the suites use.
TCPTERM_BUILD_PKGS=(dpdk libdpdk-dev meson ninja-build pkg-config g++ libboost-dev
                    libspdlog-dev catch2)
TCPTERM_TEST_PKGS=(clang libclang-rt-14-dev dpdk-dev iproute2 iputils-ping curl python3 python3-scapy tshark tcpdump iptables procps
                   psmisc socat chromium prometheus bird2 frr)

# ensure_packages PKG...: installs whichever are missing (root, apt-get).
ensure_packages() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages (${missing[*]}) and not root" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer once.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  apt-get update -qq >/dev/null || return 1
  # Daemons among them (bird2, frr) are installed, not started on the host: the
  # tests start their own, inside their namespaces (policy-rc.d, 101:
  # "action forbidden"), unless the machine already has a policy.
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
  fi
  local rc=0
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=1
  [ -n "$policy" ] && rm -f "$policy"
  return $rc
}

# build [BUILDDIR] [meson options...]: configures once, then builds.
build() {
  local dir=${1:-build}
  shift || true
  cd "$TCPTERM_TOP" || return 1
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || { meson setup "$dir" "$@"; return 1; }
  fi
  ninja -C "$dir" -j "$(nproc)" >/dev/null || { ninja -C "$dir" -j "$(nproc)"; return 1; }
}
