#!/usr/bin/env bash
# Builds and runs stratusd's coverage-guided fuzz targets (libFuzzer, fuzz/): the XML-RPC
# decoder, the template parser, the scheduler expressions, the certificate/proxy chain
# verifier, the Marketplace manifest reader and the network lease / DHCP file path.
#
#   scripts/fuzz.sh                      # every target, 10 s each
#   scripts/fuzz.sh --seconds 600 xmlrpc_decode template_parse
#   scripts/fuzz.sh --list
#
# The stable toolchain builds the targets: sanitizer-coverage is a stable codegen pass, and
# libfuzzer-sys compiles libFuzzer itself with the machine's C++ compiler. Each run starts
# from the committed seeds (fuzz/seeds/<target>) plus what earlier runs found
# (fuzz/corpus/<target>, not committed). A crash leaves its input in fuzz/artifacts/<target>/
# and fails the script: turn it into a regression test (docs/security.md "Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=10
targets=()
list_targets() { sed -n 's/^name = "\([a-z_]*\)"$/\1/p' Cargo.toml | grep -v '^stratusd_fuzz$'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --list) list_targets; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(list_targets)
fi
if ! command -v c++ >/dev/null; then
  echo "fuzzing needs a C++ compiler for libFuzzer: apt-get install g++ (scripts/setup.sh --test)" >&2
  exit 1
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
# The flags cargo-fuzz passes; --target keeps them off build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
cargo build --quiet --release --target "$triple" --target-dir target $(printf -- '--bin %s ' "${targets[@]}")
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log="artifacts/$t/last-run.log"
  if ! "target/$triple/release/$t" "corpus/$t" "seeds/$t" -max_total_time="$seconds" \
      -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
    echo "FUZZ $t: crash or failure, input and log in fuzz/artifacts/$t/" >&2
    tail -30 "$log" >&2
    status=1
    continue
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "fuzz $t: $execs executions in ${seconds} s, $cov, no crash"
done
exit $status
