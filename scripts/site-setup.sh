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
#   The binary: $STRATUSD_BIN, else target/release/stratusd (built if missing), else the
#   stratusd on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${STRATUSD_BIN:-}"
if [ -z "$bin" ]; then
  if [ -x target/release/stratusd ]; then
    bin=target/release/stratusd
  elif command -v stratusd >/dev/null 2>&1; then
    bin=$(command -v stratusd)
  else
    cargo build --release --quiet
    bin=target/release/stratusd
  fi
fi

given() { local f="$1"; shift; for a in "$@"; do case "$a" in "$f"|"$f"=*) return 0;; esac; done; return 1; }

defaults=()
given --endpoint "$@" || defaults+=(--endpoint "${STRATUSD_ENDPOINT:-http://127.0.0.1:2633/RPC2}")
given --oneadmin-auth "$@" || defaults+=(--oneadmin-auth "${ONE_AUTH:-var/one_auth}")
given --private-network "$@" || defaults+=(--private-network "${PRIVATE_NETWORK:-172.16.0.0/16}")

exec "$bin" site-setup "${defaults[@]}" "$@"
