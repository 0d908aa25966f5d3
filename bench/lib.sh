# What the benchmarks share; sourced by bench/dashboard.sh and bench/metrics.sh (from the
# repository's root): a release build, a throw-away work directory removed at exit together with
# the daemon, free ports, starting a daemon and filling it with bench/dashboard-fill.py.

# bench_init NAME: builds release; sets target, work (with oneadmin's one_auth) and pid.
bench_init() {
  cargo build --release --quiet --bin stratusd
  target="${CARGO_TARGET_DIR:-target}"
  work=$(mktemp -d "${TMPDIR:-/tmp}/stratusd-$1-bench.XXXXXX")
  pid=""
  trap bench_cleanup EXIT
  echo "oneadmin:password" >"$work/one_auth"
}

bench_cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_daemon PORT ARGS...: `stratusd serve` on $work/data with ARGS (log in
# $work/daemon.log); returns once PORT accepts connections.
start_daemon() {
  local port=$1
  shift
  ONE_AUTH="$work/one_auth" "$target/release/stratusd" serve --data-dir "$work/data" "$@" \
    --log-level warn >"$work/daemon.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
}

# fill RPC_PORT VMS USERS HOSTS RUNNING: the machine and its load, then the fill and its time.
fill() {
  echo "bench: machine: $(nproc) CPUs; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  local start
  start=$(date +%s)
  python3 bench/dashboard-fill.py "http://127.0.0.1:$1/RPC2" "$2" "$3" "$4" "$5"
  echo "bench: filled in $(($(date +%s) - start)) s"
}
