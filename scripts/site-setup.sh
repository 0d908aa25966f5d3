#!/usr/bin/env bash
# StratusLab site set-up: creates in a running stratusd what StratusLab's installer created
# in oned (networks public/local FIXED and private RANGED, owned by oneadmin; the ACL rules
# `* NET/#<id> USE` per network and `* VM+IMAGE+TEMPLATE/* USE+CREATE`), and optionally
# registers nodes. Idempotent: run it again after any change, nothing is created twice.
# See docs/networks.md.
#
# Usage: scripts/site-setup.sh --public-leases FILE --local-leases FILE [flags...]
#   Leases files: one `IP MAC` per line (`#` comments); the MACs must be those of the site's
#   DHCP server. Every flag of `stratusd site-setup --help` may be given; these defaults
#   apply unless given:
#     --endpoint        $STRATUSD_ENDPOINT  or http://127.0.0.1:2633/RPC2
#     --oneadmin-auth   $ONE_AUTH           or var/one_auth (what scripts/run.sh generates)
#     --private-network $PRIVATE_NETWORK    or 172.16.0.0/16 (StratusLab's default)
#   Nodes: --host NAME (repeatable) --host-drivers IM,VMM,VNM,TM
#   (default im_kvm,vmm_kvm,dummy,tm_stratuslab, as stratus-register-node).
#   Relative paths are relative to the directory the script is run from.
#   The binary: $STRATUSD_BIN, else this checkout's release build (`cargo run --release`,
#   as scripts/run.sh), else the stratusd on PATH.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

if [ -n "${STRATUSD_BIN:-}" ]; then
  bin=("$STRATUSD_BIN")
elif command -v cargo >/dev/null 2>&1; then
  bin=(cargo run --release --quiet --manifest-path "$repo/Cargo.toml" --bin stratusd --)
elif command -v stratusd >/dev/null 2>&1; then
  bin=("$(command -v stratusd)")
else
  echo "site-setup: no stratusd: set STRATUSD_BIN, install Rust (cargo) or put stratusd on PATH" >&2
  exit 1
fi

given() { local f="$1"; shift; for a in "$@"; do case "$a" in "$f"|"$f"=*) return 0;; esac; done; return 1; }

defaults=()
given --endpoint "$@" || defaults+=(--endpoint "${STRATUSD_ENDPOINT:-http://127.0.0.1:2633/RPC2}")
given --oneadmin-auth "$@" || defaults+=(--oneadmin-auth "${ONE_AUTH:-$repo/var/one_auth}")
given --private-network "$@" || defaults+=(--private-network "${PRIVATE_NETWORK:-172.16.0.0/16}")

exec "${bin[@]}" site-setup "${defaults[@]}" "$@"
