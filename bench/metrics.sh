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

. bench/lib.sh
bench_init metrics
rpc=$(free_port)
metrics=$(free_port)
start_daemon "$metrics" --listen "127.0.0.1:$rpc" --metrics-listen "127.0.0.1:$metrics"
fill "$rpc" "$vms" "$users" "$hosts" "$running"
python3 bench/metrics-load.py "http://127.0.0.1:$rpc/RPC2" "http://127.0.0.1:$metrics/metrics" \
  "$vms" "$scrapes" "$seconds"
echo "bench: daemon RSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status"); load after: $(cut -d' ' -f1-3 /proc/loadavg)"
