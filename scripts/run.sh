#!/usr/bin/env bash
# Sets up and runs stratusd on its embedded defaults: state under var/ of this checkout (SQLite
# file var/stratusd.db, oneadmin's password generated into var/one_auth), XML-RPC on
# 127.0.0.1:2633, and one simulated host `localhost` registered on the first start. Works from
# any directory; extra arguments go to `stratusd serve` (e.g. --listen 127.0.0.1:2700).
# The build goes where cargo puts it ($CARGO_TARGET_DIR or target/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --bin stratusd
mkdir -p var
# stratusd makes --data-dir absolute itself; cargo run replaces itself with the daemon, so
# SIGTERM and Ctrl-C reach it directly.
exec cargo run --release --quiet --bin stratusd -- serve --data-dir var --default-host localhost "$@"
