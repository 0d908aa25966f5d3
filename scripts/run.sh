#!/usr/bin/env bash
# Sets up and runs stratusd on its embedded defaults: state under ./var (SQLite file
# var/stratusd.db, oneadmin's password generated into var/one_auth), XML-RPC on
# 127.0.0.1:2633, and one simulated host `localhost` registered on the first start.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
mkdir -p var
exec target/release/stratusd serve --data-dir var --default-host localhost "$@"
