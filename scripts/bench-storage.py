#!/usr/bin/env python3
"""Measures tm_stratuslab on a simulated host with a release stratusd, all on loopback:
download + verify throughput of a SIZE image (plain and gzipped) against dd's raw write speed,
and the start time of a VM whose image is already cached (overlay creation).

Usage: scripts/bench-storage.py [--size-mib 1024] [--keep]
(build first: cargo build --release; needs python3, gzip, dd)."""

import argparse, hashlib, os, re, shutil, socket, subprocess, sys, tempfile, time
import xmlrpc.client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("STRATUSD", os.path.join(ROOT, "target/release/stratusd"))

MANIFEST = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:dcterms="http://purl.org/dc/terms/" xmlns:slreq="http://mp.stratuslab.eu/slreq#"
 xmlns:slterms="http://mp.stratuslab.eu/slterms#"><rdf:Description>
 <dcterms:identifier>{id}</dcterms:identifier><slreq:bytes>{bytes}</slreq:bytes>
 <slreq:checksum><slreq:algorithm>SHA-1</slreq:algorithm><slreq:value>{sha1}</slreq:value></slreq:checksum>
 <slreq:endorsement><dcterms:created>2013-01-24T09:59:42Z</dcterms:created>
 <slreq:endorser><slreq:email>images@stratuslab.eu</slreq:email></slreq:endorser></slreq:endorsement>
 <dcterms:type>machine</dcterms:type><dcterms:valid>2030-07-23T10:59:42Z</dcterms:valid>
 <dcterms:description>bench</dcterms:description><dcterms:compression>gz</dcterms:compression>
 <dcterms:format>raw</dcterms:format><slterms:location>{location}</slterms:location>
 <slterms:version>1.0</slterms:version><slterms:os>linux</slterms:os>
 <slterms:os-version>1</slterms:os-version><slterms:os-arch>x86_64</slterms:os-arch>
</rdf:Description></rdf:RDF></metadata>
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(cmd):
    print("$", cmd, flush=True)
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="stratusd-bench-", dir=os.environ.get("BENCH_DIR", "/tmp"))
    mp = os.path.join(work, "mp")
    os.makedirs(os.path.join(mp, "metadata"))
    os.makedirs(os.path.join(mp, "images"))
    img = os.path.join(mp, "images", "big.img")
    size = args.size_mib * 1024 * 1024
    # Random data: nothing to compress, no holes — the worst case for the cache.
    run(f"head -c {size} /dev/urandom > {img}")
    run(f"gzip -1 -c {img} > {img}.gz")
    sha1 = hashlib.sha1()
    with open(img, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            sha1.update(chunk)
    sha1 = sha1.hexdigest()
    def dd(when):
        out = run(f"dd if=/dev/zero of={work}/dd.img bs=4M count={size >> 22} conv=fdatasync 2>&1")
        print(f"dd raw write ({when}):", out.stdout.strip().splitlines()[-1])
        os.remove(f"{work}/dd.img")

    dd("before")

    mp_port, rpc_port = free_port(), free_port()
    http = subprocess.Popen([sys.executable, "-m", "http.server", str(mp_port), "--bind",
                             "127.0.0.1", "-d", mp], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ids = {"plain": "PlainPlainPlainPlainPlainPl", "gz": "GzipGzipGzipGzipGzipGzipGzi"}
    for kind, mid in ids.items():
        loc = f"http://127.0.0.1:{mp_port}/images/big.img" + (".gz" if kind == "gz" else "")
        with open(os.path.join(mp, "metadata", mid), "w") as f:
            f.write(MANIFEST.format(id=mid, bytes=size, sha1=sha1, location=loc))
    data = os.path.join(work, "data")
    os.makedirs(data)
    with open(os.path.join(work, "one_auth"), "w") as f:
        f.write("oneadmin:pw\n")
    env = dict(os.environ, ONE_AUTH=os.path.join(work, "one_auth"))
    daemon = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{rpc_port}", "--data-dir",
                               data], env=env, stderr=open(os.path.join(work, "daemon.log"), "w"))
    try:
        rpc = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{rpc_port}/RPC2")
        for _ in range(200):
            try:
                rpc.one.hostpool.info("oneadmin:pw")
                break
            except OSError:
                time.sleep(0.05)
        hid = rpc.one.host.allocate("oneadmin:pw", "bench1", "im_dummy", "vmm_dummy", "dummy",
                                    "tm_stratuslab")[1]
        while "<STATE>2</STATE>" not in rpc.one.host.info("oneadmin:pw", hid)[1]:
            time.sleep(0.05)

        def start(mid):
            t = (f'NAME=b\nCPU=0.1\nMEMORY=64\nDISK=[SOURCE="http://127.0.0.1:{mp_port}/metadata/'
                 f'{mid}",TARGET=vda]\nCONTEXT=[PUBLIC_KEY="k",TARGET=hdd]\n')
            t0 = time.monotonic()
            ok, vid = rpc.one.vm.allocate("oneadmin:pw", t)[:2]
            assert ok, vid
            while True:
                doc = rpc.one.vm.info("oneadmin:pw", vid)[1]
                st = re.search(r"<STATE>(\d+)</STATE><LCM_STATE>(\d+)</LCM_STATE>", doc)
                if st and st.groups() == ("3", "3"):
                    return vid, time.monotonic() - t0
                if st and st.group(1) == "7":
                    raise SystemExit(f"VM {vid} failed: {doc}")
                time.sleep(0.005)

        for kind in ("plain", "gz"):
            vid, secs = start(ids[kind])
            log = open(os.path.join(data, f"{vid}.log")).read()
            line = [l for l in log.splitlines() if "Downloaded and verified" in l][0]
            print(f"download+verify ({kind}): {line.split(': ', 1)[1]}; VM RUNNING after {secs:.2f} s")
        for n in range(3):
            vid, secs = start(ids["plain"])
            log = open(os.path.join(data, f"{vid}.log")).read()
            snap = [l for l in log.splitlines() if "Created the disk snapshot" in l][0]
            ms = re.search(r"in (\d+) ms", snap).group(1)
            print(f"cached start #{n + 1}: allocate -> RUNNING {secs * 1000:.0f} ms "
                  f"(overlay creation {ms} ms)")
        dd("after")
    finally:
        daemon.terminate()
        http.terminate()
        daemon.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
