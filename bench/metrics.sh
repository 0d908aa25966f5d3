#!/usr/bin/env bash
# /metrics on a large site: builds release, starts a stratusd with --metrics-listen on a fresh
# data directory, fills it with bench/dashboard-fill.py (default 10,000 VMs of 100 users, 2,000
# of them running on 1,000 simulated hosts, the rest held), then bench/metrics-load.py times
# back-to-back scrapes and the XML-RPC latency of a read and a write without scraping and while
# scraping once a second.
#
# Usage: bench/metrics.sh [VMS [HOSTS [RUNNING [USERS [SCRAPES [SECONDS]]]]]]
# It only measures: nothing here checks a figure against a target.
set -euo pipefail
cd "$(dirname "$0")/.."
vms=${1:-10000}
hosts=${2:-1000}
running=${3:-2000}
users=${4:-100}
scrapes=${5:-50}
seconds=${6:-30}

cargo build --release --quiet --bin stratusd
target="${CARGO_TARGET_DIR:-target}"
work=$(mktemp -d "${TMPDIR:-/tmp}/stratusd-metrics-bench.XXXXXX")
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

echo "oneadmin:password" >"$work/one_auth"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rpc=$(free_port)
metrics=$(free_port)
ONE_AUTH="$work/one_auth" "$target/release/stratusd" serve --data-dir "$work/data" \
  --listen "127.0.0.1:$rpc" --metrics-listen "127.0.0.1:$metrics" \
  --log-level warn >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$metrics") 2>/dev/null && break
  sleep 0.1
done

echo "bench: machine: $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
python3 bench/dashboard-fill.py "http://127.0.0.1:$rpc/RPC2" "$vms" "$users" "$hosts" "$running"
echo "bench: filled in $(($(date +%s) - start)) s"
python3 bench/metrics-load.py "http://127.0.0.1:$rpc/RPC2" "http://127.0.0.1:$metrics/metrics" \
  "$vms" "$scrapes" "$seconds"
echo "bench: daemon RSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status"); load after: $(cut -d' ' -f1-3 /proc/loadavg)"
