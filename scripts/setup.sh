#!/usr/bin/env bash
# Installs what stratusd needs to build and test on Debian 12, idempotently.
# Usage: scripts/setup.sh [--test]   (--test adds what the test suites need, including the
# StratusLab clients of scripts/setup-stratuslab-client.sh)
set -euo pipefail

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# qemu-utils: qemu-img makes the per-VM qcow2 snapshots and flattens disks for saving;
# e2fsprogs: mkfs for MKIMAGE disks.
apt_pkgs=(pkg-config libvirt-dev qemu-utils e2fsprogs)
if [ "$want_test" = 1 ]; then
  # libvirt tests use libvirt's in-process test driver (in libvirt0); tests/dhcp_dnsmasq.rs
  # runs a real, loopback-only dnsmasq on the DHCP host file.
  apt_pkgs+=(dnsmasq-base)
  # libvirt suites use the in-process test driver (in libvirt0). The front-door suite makes
  # its PKI with the openssl command, runs a real OpenLDAP server (slapd, with slapadd) and
  # checks that Python's ssl module talks to it.
  apt_pkgs+=(openssl slapd python3)
  # test suites use libvirt's in-process test driver (in libvirt0); isoinfo (genisoimage)
  # cross-checks the context ISO stratusd writes.
  apt_pkgs+=(genisoimage)
  # tests/migrate.rs imports from and exports to a real MariaDB server it starts itself (own
  # data directory, socket and port), as StratusLab's oned ran on MySQL.
  apt_pkgs+=(mariadb-server mariadb-client)
  # tests/prometheus.rs: a real Prometheus server scrapes stratusd's /metrics on loopback.
  apt_pkgs+=(prometheus)
  # tests/dashboard drives Debian's headless Chromium through chromedriver; certutil and
  # pk12util put the test CA and a client certificate into the browser's NSS database.
  apt_pkgs+=(chromium chromium-driver libnss3-tools)
  # scripts/fuzz.sh (run by scripts/test.sh): libfuzzer-sys compiles libFuzzer with a C++
  # compiler. tests/security.rs lowers a running daemon's descriptor limit with prlimit.
  apt_pkgs+=(g++ util-linux)
  # tests/volumes/lvm.rs makes a real LVM volume group on a loop device (losetup is in mount,
  # blkdiscard in util-linux, both essential).
  apt_pkgs+=(lvm2)
  # tests/readme.rs copies the checkout with git and runs the README's commands in a network
  # namespace of their own (ip brings its loopback up).
  apt_pkgs+=(git iproute2)
fi

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi

if [ "$want_test" = 1 ]; then
  # Headless Chromium cannot answer a certificate prompt: this policy has it present the test
  # PKI's client certificate (issuer CN "Test CA", O "StratusLab", made by the tests) to
  # https://127.0.0.1 on any port, and nothing else (tests/dashboard).
  chromium_policy=/etc/chromium/policies/managed/stratusd-dashboard-test.json
  policy_text='{"AutoSelectCertificateForUrls": ["{\"pattern\":\"https://127.0.0.1:*\",\"filter\":{\"ISSUER\":{\"CN\":\"Test CA\",\"O\":\"StratusLab\"}}}"]}'
  if [ "$(cat "$chromium_policy" 2>/dev/null)" != "$policy_text" ]; then
    echo "setup: installing $chromium_policy"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO mkdir -p "$(dirname "$chromium_policy")"
    printf '%s\n' "$policy_text" | $SUDO tee "$chromium_policy" >/dev/null
  fi
  # tests/dashboard checks its pages against WCAG 2.1 AA with axe-core (npm registry, pinned).
  axe_dir="$(cd "$(dirname "$0")/.." && pwd)/target/axe-core"
  if [ ! -s "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      SUDO=""
      [ "$(id -u)" -ne 0 ] && SUDO="sudo"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm
    fi
    echo "setup: installing axe-core into $axe_dir"
    mkdir -p "$axe_dir"
    npm install --prefix "$axe_dir" --no-audit --no-fund --loglevel=error axe-core@4.14.1
  fi
  # The StratusLab client suite (cargo test --test client) runs the real Python 2.7 clients.
  "$(dirname "$0")/setup-stratuslab-client.sh"
fi
