#!/usr/bin/env bash
# The stratusd benchmark: installs wrk (Debian package) if missing, builds release, and runs
# stratusd-bench, which starts a stratusd on a fresh data directory on loopback, fills it over
# XML-RPC and prints the table of shared/perf/oned-3.2-baseline.md with the oned figure and
# the ratio next to each row (see docs/performance.md).
#
# Usage: bench/run.sh [stratusd-bench flags]     e.g. bench/run.sh --seconds 5 --runs 1
# The data directory is a new one under ${TMPDIR:-/tmp} unless --data-dir is given.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
  echo "bench: installing wrk"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk
fi

cargo build --release --quiet --bin stratusd --bin stratusd-bench
target="${CARGO_TARGET_DIR:-target}"

data_dir=""
for arg in "$@"; do
  [ "$arg" = "--data-dir" ] && data_dir="given"
done
extra=()
if [ -z "$data_dir" ]; then
  extra=(--data-dir "$(mktemp -d "${TMPDIR:-/tmp}/stratusd-bench.XXXXXX")/data")
fi

echo "bench: machine: $(nproc) CPUs; uptime before: $(uptime)"
"$target/release/stratusd-bench" \
  --stratusd "$target/release/stratusd" \
  --script bench/xmlrpc-post.lua \
  --status-script bench/xmlrpc-post-status.lua \
  --bodies bench/bodies \
  "${extra[@]}" "$@"
echo "bench: uptime after: $(uptime)"
