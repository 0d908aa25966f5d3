#!/usr/bin/env python3
"""Same-day comparison of one call across several servers, as shared/perf/oned-3.2-baseline.md
section 0 measured it: each stratusd on a fresh data directory holding 1,000 VMs allocated by
oneadmin then put on HOLD, plus one held VM of the ordinary StratusLab user alice (1,001 VMs);
then `wrk -t2 -c4 -d5s --timeout 30s` with the baseline's `wrk-xmlrpc-post.lua` (every answer
checked: HTTP 200 and <boolean>1</boolean>), runs interleaved across the servers (run 1 of
every server, then run 2, ...), 1 s apart, medians reported with the load average before each
run and the server's CPU.

  bench/same-day.py --stratusd old=/path/to/old/stratusd --stratusd new=target/release/stratusd \
      [--oned oned=/work/oned-3.2/one] [--url static=http://127.0.0.1:PORT/RPC2,PID] \
      [--body FILE ...] [--runs 3] [--seconds 5] [--connections 4]

--oned LABEL=ONE_LOCATION adds a real oned 3.2 built by bench/oned-3.2/build.sh: its database is
made afresh (ONE_LOCATION/var/one.db and onequota.db are removed), oned and mm_sched are started
on a free port with the same 1,001 VMs, and both are stopped at the end.

--body may be given several times: every run goes through every body, then every server.

--url adds a server that is already running (e.g. examples/static_answer.rs serving the same
answer: URL,PID); it is measured with the same script and body. Only measures: prints the figures.
"""

import argparse
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import xmlrpc.client

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "perf"))
ADMIN = "oneadmin:password"
ALICE = "alice:s3cret"
TEMPLATE = 'NAME = "perf-vm"\nCPU = 1\nVCPU = 1\nMEMORY = 256\n'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_seconds(pid):
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ok(answer, what):
    if not answer[0]:
        raise SystemExit(f"{what} failed: {answer[1]}")
    return answer[1]


class Server:
    def __init__(self, label, url, pid=None, proc=None, tmp=None, helpers=()):
        self.label, self.url, self.pid, self.proc, self.tmp = label, url, pid, proc, tmp
        # Processes started with the server and stopped before it (oned's mm_sched).
        self.helpers = list(helpers)
        self.runs = {}
        self.fill = None

    def stop(self):
        for proc in self.helpers + ([self.proc] if self.proc is not None else []):
            if proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.proc is not None and self.tmp is None:
            # oned was started in its own process group with its Ruby drivers: none may outlive it.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def start(label, binary, vms):
    tmp = tempfile.mkdtemp(prefix=f"same-day-{label}-")
    data = os.path.join(tmp, "data")
    os.makedirs(data)
    one_auth = os.path.join(data, "one_auth")
    with open(one_auth, "w") as f:
        f.write(ADMIN + "\n")
    port = free_port()
    log = open(os.path.join(data, "stratusd.log"), "w")
    proc = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
        env=dict(os.environ, ONE_AUTH=one_auth),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}/RPC2"
    server = Server(label, url, proc.pid, proc, tmp)
    deadline = time.time() + 30
    if not wait_port(port, proc, deadline):
        server.stop()
        raise SystemExit(f"{label}: stratusd did not start (see its log)")
    fill(server, vms)
    return server


def fill(server, vms):
    """Section 0's pool: `vms` VMs allocated by oneadmin (one Python client, sequential, as the
    baseline's allocation row), then held, then alice's own held VM."""
    rpc = xmlrpc.client.ServerProxy(server.url)
    started = time.time()
    ok(rpc.one.user.info(ALICE, -1), "alice's first call")
    t0 = time.time()
    ids = [ok(rpc.one.vm.allocate(ADMIN, TEMPLATE), "allocate") for _ in range(vms)]
    t1 = time.time()
    for vid in ids:
        ok(rpc.one.vm.action(ADMIN, "hold", vid), "hold")
    t2 = time.time()
    own = ok(rpc.one.vm.allocate(ALICE, TEMPLATE), "alice's allocate")
    ok(rpc.one.vm.action(ALICE, "hold", own), "alice's hold")
    server.fill = {"allocs_per_s": vms / (t1 - t0), "holds_per_s": vms / (t2 - t1), "load": load()}
    print(f"[{server.label}] {vms} VMs + alice's VM {own} in {time.time() - started:.1f} s: "
          f"{server.fill['allocs_per_s']:.0f} allocations/s, {server.fill['holds_per_s']:.0f} holds/s "
          f"(sequential, one client), load {server.fill['load']}", file=sys.stderr)


def wait_port(port, proc, deadline):
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                return False
            time.sleep(0.05)


def start_oned(label, one_location, vms):
    """A real oned 3.2 (bench/oned-3.2/build.sh) on a fresh database, with mm_sched; `vms` VMs as
    `fill` makes them (None: an empty database, as the recordings start from)."""
    one_location = os.path.abspath(one_location)
    var = os.path.join(one_location, "var")
    oned = os.path.join(one_location, "bin", "oned")
    if not os.access(oned, os.X_OK):
        raise SystemExit(f"{oned} missing: build it with bench/oned-3.2/build.sh")
    for name in ("oned.pid", "sched.pid"):
        path = os.path.join(var, name)
        if os.path.exists(path):
            raise SystemExit(f"{path} exists: is an oned already running from {one_location}?")
    for name in ("one.db", "onequota.db", "oned.log", "sched.log", "one_xmlrpc.log"):
        try:
            os.remove(os.path.join(var, name))
        except FileNotFoundError:
            pass
    port = free_port()
    subprocess.run([sys.executable, os.path.join(HERE, "oned-3.2", "configure.py"), one_location,
                    str(port)], check=True)
    one_auth = os.path.join(var, "one_auth")
    with open(one_auth, "w") as f:
        f.write(ADMIN + "\n")
    url = f"http://127.0.0.1:{port}/RPC2"
    env = dict(os.environ, ONE_LOCATION=one_location, ONE_AUTH=one_auth, ONE_XMLRPC=url)
    log = open(os.path.join(var, "oned.stdout"), "w")
    # Its own process group: oned's Ruby drivers are its children and go with it.
    proc = subprocess.Popen([oned, "-f"], cwd=var, env=env, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(label, url, proc.pid, proc)
    if not wait_port(port, proc, time.time() + 30):
        server.stop()
        raise SystemExit(f"{label}: oned did not start (see {var}/oned.log)")
    # The drivers load a few seconds after the port answers; until the auth driver is there a
    # non-oneadmin call fails with "User couldn't be authenticated" (and an image allocation
    # before the image driver). oned logs each as loaded; the last ones are these two.
    deadline = time.time() + 60
    oned_log = os.path.join(var, "oned.log")
    while True:
        try:
            with open(oned_log) as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        if "Auth Manager loaded" in text and "Image Manager loaded" in text:
            break
        if proc.poll() is not None or time.time() > deadline:
            server.stop()
            raise SystemExit(f"{label}: oned's drivers did not load (see {oned_log})")
        time.sleep(0.2)
    sched = subprocess.Popen([os.path.join(one_location, "bin", "mm_sched")], cwd=var, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    server.helpers.append(sched)
    try:
        if vms is not None:
            fill(server, vms)
    except BaseException:
        server.stop()
        raise
    return server


def check_answer(server, body):
    req = urllib.request.Request(server.url, data=body, headers={"Content-Type": "text/xml"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer = resp.read()
    if b"<boolean>1</boolean>" not in answer:
        raise SystemExit(f"{server.label}: the body is not answered with success: {answer[:300]!r}")
    return len(answer)


def wrk(server, script, body_file, connections, seconds):
    threads = 1 if connections == 1 else 2
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
           "-s", script, server.url]
    before_load = load()
    before_cpu = cpu_seconds(server.pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    done = subprocess.run(cmd, env=dict(os.environ, WRK_BODY=body_file), capture_output=True,
                          text=True, check=True)
    out = done.stdout
    elapsed = time.time() - t0
    cpu = (cpu_seconds(server.pid) - before_cpu) / elapsed * 100
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) / elapsed * 100
    line = next((l for l in out.splitlines() if l.startswith("RESULT")), None)
    if line is None:
        # Seen once at the first run against a freshly filled oned: say what wrk printed.
        sys.exit(f"wrk printed no RESULT line for {server.url}:\n{out[-2000:]}\n{done.stderr[-2000:]}")
    fields = dict(kv.split("=") for kv in line.split()[1:])
    failures = sum(int(fields[k]) for k in ("xmlrpc_fail", "non200", "err_connect", "err_read",
                                            "err_write", "err_timeout", "err_status"))
    return {
        "rps": float(fields["rps"]),
        "p99": float(fields["lat_p99_ms"]),
        "failures": failures,
        "load": before_load,
        "load_after": load(),
        "cpu": cpu,
        "wrk_cpu": wrk_cpu,
        "server_ms_per_req": cpu / 100 * elapsed / max(1, int(fields["requests"])) * 1000,
        "bytes_per_req": int(fields["bytes"]) / max(1, int(fields["requests"])),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stratusd", action="append", default=[], metavar="LABEL=BINARY")
    ap.add_argument("--oned", action="append", default=[], metavar="LABEL=ONE_LOCATION",
                    help="a real oned 3.2 installed by bench/oned-3.2/build.sh (started afresh, stopped after)")
    ap.add_argument("--url", action="append", default=[], metavar="LABEL=URL[,PID]",
                    help="a server already running (its CPU is read from /proc/PID)")
    ap.add_argument("--script", default=os.path.join(SHARED, "wrk-xmlrpc-post.lua"))
    ap.add_argument("--body", action="append", default=[],
                    help="request body (default: the baseline's vmpool.info-all.xml); repeatable")
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    bodies = args.body or [os.path.join(SHARED, "bodies", "vmpool.info-all.xml")]
    servers = []
    try:
        for spec in args.oned:
            label, one_location = spec.split("=", 1)
            servers.append(start_oned(label, one_location, args.vms))
        for spec in args.stratusd:
            label, binary = spec.split("=", 1)
            servers.append(start(label, binary, args.vms))
        for spec in args.url:
            label, url = spec.split("=", 1)
            url, _, pid = url.partition(",")
            servers.append(Server(label, url, int(pid) if pid else None))
        for body in bodies:
            with open(body, "rb") as f:
                data = f.read()
            for s in servers:
                size = check_answer(s, data)
                print(f"[{s.label}] {os.path.basename(body)}: answer {size} bytes", file=sys.stderr)
        time.sleep(1)
        for run in range(args.runs):
            for body in bodies:
                name = os.path.basename(body)
                for s in servers:
                    r = wrk(s, args.script, body, args.connections, args.seconds)
                    s.runs.setdefault(name, []).append(r)
                    print(f"[{s.label}] {name} run {run + 1}: {r['rps']:.0f} req/s, p99 {r['p99']:.2f} ms, "
                          f"server CPU {r['cpu']:.0f} % ({r['server_ms_per_req']:.3f} ms/req), wrk CPU "
                          f"{r['wrk_cpu']:.0f} %, failures {r['failures']}, load before {r['load']}, "
                          f"after {r['load_after']}", file=sys.stderr)
                    time.sleep(1)
    finally:
        for s in servers:
            s.stop()
    print(f"{args.connections} connections, {args.seconds} s per run, {args.runs} runs interleaved; "
          f"{args.vms} VMs + alice's")
    for body in bodies:
        name = os.path.basename(body)
        print(f"\n{name}\n")
        print("| server | runs | req/s median (min–max) | p99 ms median | server CPU % | server CPU ms per request | wrk CPU % | failures | load before each run | load after each run |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for s in servers:
            runs = s.runs.get(name, [])
            rps = [r["rps"] for r in runs]
            print(f"| {s.label} | {len(rps)} | {statistics.median(rps):.0f} ({min(rps):.0f}–{max(rps):.0f}) | "
                  f"{statistics.median(r['p99'] for r in runs):.2f} | "
                  f"{statistics.median(r['cpu'] for r in runs):.0f} | "
                  f"{statistics.median(r['server_ms_per_req'] for r in runs):.3f} | "
                  f"{statistics.median(r['wrk_cpu'] for r in runs):.0f} | {sum(r['failures'] for r in runs)} | "
                  f"{'; '.join(r['load'].split()[0] for r in runs)} | "
                  f"{'; '.join(r['load_after'].split()[0] for r in runs)} |")
        # Every other server against each oned (or against the first server when no oned ran).
        refs = [s for s in servers if s.tmp is None and s.proc is not None] or servers[:1]
        for ref in refs:
            for s in servers:
                if s is ref or s in refs:
                    continue
                a = [r["rps"] for r in s.runs[name]]
                b = [r["rps"] for r in ref.runs[name]]
                pairs = "; ".join(f"{x / y:.1f}" for x, y in zip(a, b))
                print(f"\n{s.label} / {ref.label}: {statistics.median(a) / statistics.median(b):.1f}x "
                      f"(ratio of medians; run by run: {pairs})")
    for s in servers:
        if s.fill:
            print(f"\n{s.label}: sequential one.vm.allocate {s.fill['allocs_per_s']:.0f}/s, hold "
                  f"{s.fill['holds_per_s']:.0f}/s ({args.vms} VMs, one Python client), load {s.fill['load']}")


if __name__ == "__main__":
    main()
