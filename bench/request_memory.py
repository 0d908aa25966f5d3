#!/usr/bin/env python3
"""Peak RSS of stratusd while N clients each send a request body of the largest accepted size
(issue 12: under 300 MB for 16 clients at the default 16 MiB limit).

    bench/request_memory.py [--binary target/release/stratusd] [--clients 16] [--kind all]

Starts its own daemon on a free port in a temporary directory, sends the bodies from N threads
at once (every answer is checked), and reads the daemon's VmHWM (peak RSS) from /proc. Kinds of
body, each just under the limit:
  string    one huge string parameter (a template text)
  ints      an array of <value><i4>1</i4></value>
  empty     an array of <value></value> (the smallest value)
  elements  <x/> elements where a value belongs (refused after parsing, fault -503)
"""
import argparse, os, socket, subprocess, sys, tempfile, threading, time

LIMIT = 16 * 1024 * 1024

def body(kind, limit):
    head = b"<?xml version='1.0'?><methodCall><methodName>one.user.info</methodName><params>" \
           b"<param><value><string>oneadmin:password</string></value></param>" \
           b"<param><value><i4>-1</i4></value></param><param><value>"
    if kind == "string":
        head = b"<?xml version='1.0'?><methodCall><methodName>one.user.info</methodName><params><param><value><string>"
        tail = b"</string></value></param></params></methodCall>"
        unit = b"x" * 4096
        open_, close = b"", b""
    else:
        tail = b"</value></param></params></methodCall>"
        open_, close = b"<array><data>", b"</data></array>"
        unit = {"ints": b"<value><i4>1</i4></value>", "empty": b"<value></value>",
                "elements": b"<x/>"}[kind]
    room = limit - len(head) - len(tail) - len(open_) - len(close)
    n = room // len(unit)
    return head + open_ + unit * n + close + tail

def post(port, data, results, i):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=600)
        s.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(data))
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        results[i] = (head.split(b" ")[1], rest[:300])
        s.close()
    except Exception as e:  # noqa: BLE001 - reported with the results
        results[i] = ("error", str(e).encode())

def hwm(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0

def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0

def run(binary, kind, clients, limit):
    d = tempfile.mkdtemp(prefix="stratusd-mem-")
    with open(os.path.join(d, "one_auth"), "w") as f:
        f.write("oneadmin:password\n")
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    env = dict(os.environ, ONE_AUTH=os.path.join(d, "one_auth"))
    p = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", d,
                          "--max-body-bytes", str(limit), "--log-level", "warn"],
                         env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "log"), "w"))
    try:
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", port)).close(); break
            except OSError:
                time.sleep(0.05)
        data = body(kind, limit)
        idle = rss(p.pid)
        results = [None] * clients
        threads = [threading.Thread(target=post, args=(port, data, results, i)) for i in range(clients)]
        t0 = time.time()
        for t in threads: t.start()
        for t in threads: t.join()
        elapsed = time.time() - t0
        peak = hwm(p.pid)
        ok = all(r and r[0] == b"200" for r in results)
        sample = results[0][1][:160] if results[0] else b""
        return idle, peak, elapsed, ok, len(data), sample
    finally:
        p.terminate(); p.wait()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/stratusd")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--limit", type=int, default=LIMIT)
    ap.add_argument("--kind", default="all")
    a = ap.parse_args()
    kinds = ["string", "ints", "empty", "elements"] if a.kind == "all" else [a.kind]
    worst = 0.0
    for kind in kinds:
        idle, peak, elapsed, ok, size, sample = run(a.binary, kind, a.clients, a.limit)
        worst = max(worst, peak)
        print(f"{kind:9} {a.clients} x {size/1048576:.1f} MiB: idle {idle:.0f} MB, peak RSS {peak:.0f} MB, "
              f"{elapsed:.1f} s, all answered 200: {ok}  ({sample!r})")
    print(f"worst peak RSS {worst:.0f} MB")
    return 0 if worst < 300 else 1

if __name__ == "__main__":
    sys.exit(main())
