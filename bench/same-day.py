#!/usr/bin/env python3
"""Same-day comparison of one call across several servers, as shared/perf/oned-3.2-baseline.md
section 0 measured it: each stratusd on a fresh data directory holding 1,000 VMs allocated by
oneadmin then put on HOLD, plus one held VM of the ordinary StratusLab user alice (1,001 VMs);
then `wrk -t2 -c4 -d5s --timeout 30s` with the baseline's `wrk-xmlrpc-post.lua` (every answer
checked: HTTP 200 and <boolean>1</boolean>), runs interleaved across the servers (run 1 of
every server, then run 2, ...), 1 s apart, medians reported with the load average before each
run and the server's CPU.

  bench/same-day.py --stratusd old=/path/to/old/stratusd --stratusd new=target/release/stratusd \
      [--url static=http://127.0.0.1:PORT/RPC2,PID] [--runs 3] [--seconds 5] [--connections 4]

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
    def __init__(self, label, url, pid=None, proc=None, tmp=None):
        self.label, self.url, self.pid, self.proc, self.tmp = label, url, pid, proc, tmp
        self.runs = []

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
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
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                server.stop()
                raise SystemExit(f"{label}: stratusd did not start (see its log)")
            time.sleep(0.05)
    rpc = xmlrpc.client.ServerProxy(url)
    started = time.time()
    ok(rpc.one.user.info(ALICE, -1), "alice's first call")
    ids = [ok(rpc.one.vm.allocate(ADMIN, TEMPLATE), "allocate") for _ in range(vms)]
    for vid in ids:
        ok(rpc.one.vm.action(ADMIN, "hold", vid), "hold")
    own = ok(rpc.one.vm.allocate(ALICE, TEMPLATE), "alice's allocate")
    ok(rpc.one.vm.action(ALICE, "hold", own), "alice's hold")
    print(f"[{label}] {vms} VMs + alice's VM {own} in {time.time() - started:.1f} s", file=sys.stderr)
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
    out = subprocess.run(cmd, env=dict(os.environ, WRK_BODY=body_file), capture_output=True,
                         text=True, check=True).stdout
    elapsed = time.time() - t0
    cpu = (cpu_seconds(server.pid) - before_cpu) / elapsed * 100
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) / elapsed * 100
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    fields = dict(kv.split("=") for kv in line.split()[1:])
    failures = sum(int(fields[k]) for k in ("xmlrpc_fail", "non200", "err_connect", "err_read",
                                            "err_write", "err_timeout", "err_status"))
    return {
        "rps": float(fields["rps"]),
        "p99": float(fields["lat_p99_ms"]),
        "failures": failures,
        "load": before_load,
        "cpu": cpu,
        "wrk_cpu": wrk_cpu,
        "server_ms_per_req": cpu / 100 * elapsed / max(1, int(fields["requests"])) * 1000,
        "bytes_per_req": int(fields["bytes"]) / max(1, int(fields["requests"])),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stratusd", action="append", default=[], metavar="LABEL=BINARY")
    ap.add_argument("--url", action="append", default=[], metavar="LABEL=URL[,PID]",
                    help="a server already running (its CPU is read from /proc/PID)")
    ap.add_argument("--script", default=os.path.join(SHARED, "wrk-xmlrpc-post.lua"))
    ap.add_argument("--body", default=os.path.join(SHARED, "bodies", "vmpool.info-all.xml"))
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    with open(args.body, "rb") as f:
        body = f.read()
    servers = []
    try:
        for spec in args.stratusd:
            label, binary = spec.split("=", 1)
            servers.append(start(label, binary, args.vms))
        for spec in args.url:
            label, url = spec.split("=", 1)
            url, _, pid = url.partition(",")
            servers.append(Server(label, url, int(pid) if pid else None))
        for s in servers:
            size = check_answer(s, body)
            print(f"[{s.label}] answer {size} bytes", file=sys.stderr)
        time.sleep(1)
        for run in range(args.runs):
            for s in servers:
                r = wrk(s, args.script, args.body, args.connections, args.seconds)
                s.runs.append(r)
                print(f"[{s.label}] run {run + 1}: {r['rps']:.0f} req/s, p99 {r['p99']:.2f} ms, "
                      f"server CPU {r['cpu']:.0f} % ({r['server_ms_per_req']:.3f} ms/req), wrk CPU {r['wrk_cpu']:.0f} %, failures {r['failures']}, load before {r['load']}",
                      file=sys.stderr)
                time.sleep(1)
    finally:
        for s in servers:
            s.stop()
    print("| server | runs | req/s median (min–max) | p99 ms median | server CPU % | server CPU ms per request | wrk CPU % | failures | load before each run |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for s in servers:
        rps = [r["rps"] for r in s.runs]
        print(f"| {s.label} | {len(rps)} | {statistics.median(rps):.0f} ({min(rps):.0f}–{max(rps):.0f}) | "
              f"{statistics.median(r['p99'] for r in s.runs):.2f} | "
              f"{statistics.median(r['cpu'] for r in s.runs):.0f} | "
              f"{statistics.median(r['server_ms_per_req'] for r in s.runs):.3f} | "
              f"{statistics.median(r['wrk_cpu'] for r in s.runs):.0f} | {sum(r['failures'] for r in s.runs)} | "
              f"{'; '.join(r['load'].split()[0] for r in s.runs)} |")


if __name__ == "__main__":
    main()
