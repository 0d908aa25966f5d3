#!/usr/bin/env bash
# Sets up and runs every test suite: unit tests, integration tests, and the compatibility
# replay of the recorded oned 3.2 sessions, and the real StratusLab clients against stratusd,
# over plain HTTP and through the HTTPS front door (compat-tests/client). The same command runs
# in CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# QEMU, libvirt's QEMU driver, the tiny guest that tests/qemu_guest.rs and tests/qemu_storage.rs
# boot and the Marketplace image of the latter.
scripts/setup-qemu.sh
# The recorded sessions register this file as an image (see fixtures/oned-3.2/README.md).
if [ ! -s /srv/cloud/images/ttylinux.img ]; then
  mkdir -p /srv/cloud/images
  head -c 65536 /dev/zero > /srv/cloud/images/ttylinux.img
fi
cargo build --quiet --all-targets
# --no-fail-fast: one failing suite does not hide the results of the others.
cargo test --quiet --no-fail-fast -- --test-threads=2
# A short run of every fuzz target (docs/security.md "Fuzzing"): a crash fails the run.
scripts/fuzz.sh --seconds 5
