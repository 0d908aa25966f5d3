#!/usr/bin/env bash
# Page times of the dashboard on a large site: builds release, starts a stratusd with its HTTPS
# front door on a fresh data directory (a throw-away self-signed certificate and password
# file), fills it with bench/dashboard-fill.py (default 10,000 VMs of 100 users, 2,000 of them
# running on 50 simulated hosts, the rest held), signs in as oneadmin and as one user with the
# sign-in form, and times each page with curl over one kept-alive connection: from the
# request sent to the last byte received, median and slowest of the runs.
#
# Usage: bench/dashboard.sh [VMS [USERS [HOSTS [RUNNING [RUNS]]]]]
# It only measures: nothing here checks a figure against a target.
set -euo pipefail
cd "$(dirname "$0")/.."
vms=${1:-10000}
users=${2:-100}
hosts=${3:-50}
running=${4:-2000}
runs=${5:-20}

. bench/lib.sh
bench_init dashboard
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" \
  -days 1 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null
printf 'oneadmin=password,cloud-access\nuser7=pw,cloud-access\n' >"$work/passwords"
rpc=$(free_port)
https=$(free_port)
start_daemon "$https" --listen "127.0.0.1:$rpc" --frontdoor-listen "127.0.0.1:$https" \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --password-file "$work/passwords"
fill "$rpc" "$vms" "$users" "$hosts" "$running"

base="https://127.0.0.1:$https"
curl_tls=(--silent --show-error --cacert "$work/cert.pem")

# Signs in with the form (anti-forgery cookie and field) and prints the session cookie.
sign_in() {
  local jar="$work/jar-$1"
  local page
  page=$(curl "${curl_tls[@]}" -c "$jar" "$base/dashboard/login")
  local token
  token=$(printf '%s' "$page" | grep -o 'name="csrf" value="[^"]*"' | head -1 | cut -d'"' -f4)
  curl "${curl_tls[@]}" -b "$jar" -c "$jar" -o /dev/null \
    --data-urlencode "csrf=$token" --data-urlencode "user=$1" --data-urlencode "password=$2" \
    "$base/dashboard/login"
  grep -o '__Host-stratusd-session[[:space:]]*[^[:space:]]*' "$jar" | awk '{print $1"="$2}'
}

# Times PATH RUNS times on one connection; prints median and slowest in ms, and the size.
measure() {
  local who=$1 cookie=$2 path=$3
  local urls=()
  # curl's -o applies to one URL: each URL gets its own, or the bodies reach the timing lines.
  for _ in $(seq "$runs"); do urls+=(-o /dev/null "$base$path"); done
  curl "${curl_tls[@]}" -H "Cookie: $cookie" \
    -w '%{http_code} %{time_pretransfer} %{time_total} %{size_download}\n' "${urls[@]}" |
    awk -v who="$who" -v path="$path" '
      { if ($1 != 200) bad = $1; t[NR] = ($3 - $2) * 1000; size = $4 }
      END {
        n = asort(t)
        printf "| %-8s | %-44s | %8.1f | %8.1f | %9d |%s\n", who, path, t[int((n + 1) / 2)], t[n], size,
          (bad ? " HTTP " bad : "")
      }'
}

admin=$(sign_in oneadmin password)
user=$(sign_in user7 pw)
[ -n "$admin" ] && [ -n "$user" ] || { echo "bench: sign-in failed" >&2; exit 1; }
mid=$((vms / 2))
echo
echo "Dashboard pages, $vms VMs ($running running on $hosts hosts), $users users; $runs runs each, one connection"
echo
echo "| viewer   | page                                         | median ms | slowest ms | bytes     |"
echo "|----------|----------------------------------------------|----------:|-----------:|----------:|"
for path in /dashboard/ /dashboard/vms "/dashboard/vms?page=100" "/dashboard/vms?state=all&page=200" \
  "/dashboard/vms?state=running&owner=user7" "/dashboard/vms?name=bench-99" "/dashboard/vms/$mid" \
  /dashboard/hosts /dashboard/users /dashboard/networks /dashboard/networks/0; do
  measure oneadmin "$admin" "$path"
done
for path in /dashboard/ /dashboard/vms "/dashboard/vms/7"; do
  measure user7 "$user" "$path"
done
echo
echo "bench: load after: $(cut -d' ' -f1-3 /proc/loadavg)"
