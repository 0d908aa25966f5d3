#!/bin/sh
# Prints the test guest's recipe: a hash of everything that builds it. scripts/setup-qemu.sh
# rebuilds target/test-guest when it changes; the QEMU tests and scripts/demo-site.sh refuse a
# guest built from another recipe (an old guest fails in ways that look like regressions).
set -eu
cd "$(dirname "$0")/../.."
cat scripts/test-guest/init scripts/test-guest/power-button scripts/test-guest/udhcpc.script \
  scripts/test-guest/recipe.sh scripts/setup-qemu.sh | sha256sum | cut -d' ' -f1
