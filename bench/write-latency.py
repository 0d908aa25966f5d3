#!/usr/bin/env python3
"""Sequential one.vm.allocate, one.vm.action (hold then release) and one.vm.info against a
stratusd binary on a fresh data directory: python3 bench/write-latency.py target/release/stratusd 500
(compares builds, e.g. before and after the core's owner; run them in alternation: the machine is shared)."""
import os, subprocess, sys, tempfile, time, socket, xmlrpc.client, shutil
binary, n = sys.argv[1], int(sys.argv[2])
work = tempfile.mkdtemp(prefix="durability-bench-")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
open(f"{work}/one_auth", "w").write("oneadmin:password\n")
env = dict(os.environ, ONE_AUTH=f"{work}/one_auth")
p = subprocess.Popen([binary, "serve", "--data-dir", f"{work}/data", "--listen", f"127.0.0.1:{port}", "--log-level", "warn"],
                     env=env, stdout=open(f"{work}/log", "w"), stderr=subprocess.STDOUT)
try:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close(); break
        except OSError:
            time.sleep(0.1)
    c = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2")
    S = "oneadmin:password"
    t = time.time(); ids = []
    for _ in range(n):
        r = c.one.vm.allocate(S, "NAME=b\nCPU=0.1\nMEMORY=8\n"); assert r[0], r; ids.append(r[1])
    alloc = n / (time.time() - t)
    t = time.time()
    for i in ids:
        assert c.one.vm.action(S, "hold", i)[0]
        assert c.one.vm.action(S, "release", i)[0]
    act = 2 * n / (time.time() - t)
    t = time.time()
    for _ in range(n):
        assert c.one.vm.info(S, ids[0])[0]
    info = n / (time.time() - t)
    print(f"{os.path.basename(binary)}: allocate {alloc:.0f}/s, action {act:.0f}/s, vm.info {info:.0f}/s")
finally:
    p.terminate(); p.wait(); shutil.rmtree(work, ignore_errors=True)
