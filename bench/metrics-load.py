"""Measures /metrics on a filled stratusd for bench/metrics.sh.

1. SCRAPES scrapes, back to back over one kept-alive connection: time from the request sent to
   the last byte, and what the text holds (VM and host series, bytes).
2. XML-RPC latency for SECONDS seconds without scraping, then SECONDS seconds with a scrape
   every second (from another process, as Prometheus would): a read (`one.vm.info` of a random
   VM) and a write (`one.template.update`, a committed SQLite transaction), alternately, from
   one client on a kept-alive connection.

Usage: metrics-load.py RPC_URL METRICS_URL VMS SCRAPES SECONDS
It only measures and prints; nothing here checks a figure against a target.
"""
import http.client
import multiprocessing
import random
import statistics
import sys
import time
import urllib.parse
import xmlrpc.client

rpc_url, metrics_url = sys.argv[1], sys.argv[2]
vms, scrapes, seconds = map(int, sys.argv[3:6])
admin = "oneadmin:password"
target = urllib.parse.urlsplit(metrics_url)


def scrape(conn):
    start = time.perf_counter()
    conn.request("GET", target.path)
    resp = conn.getresponse()
    body = resp.read()
    elapsed = time.perf_counter() - start
    if resp.status != 200:
        sys.exit(f"GET {metrics_url}: {resp.status}")
    return elapsed, body


def percentiles(values):
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]
    return (f"n={len(values)} median {statistics.median(values) * 1000:.2f} ms, "
            f"p90 {pick(0.9) * 1000:.2f} ms, p99 {pick(0.99) * 1000:.2f} ms, "
            f"max {values[-1] * 1000:.2f} ms")


def sample(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
times = []
body = b""
for _ in range(scrapes):
    elapsed, body = scrape(conn)
    times.append(elapsed)
text = body.decode()
vm_series = sum(1 for l in text.splitlines() if l.startswith("opennebula_vm_state{"))
host_series = sum(1 for l in text.splitlines() if l.startswith("opennebula_host_state{"))
print(f"metrics: one scrape is {len(body) / 1e6:.2f} MB, {len(text.splitlines())} lines, "
      f"{vm_series} VMs, {host_series} hosts")
print(f"metrics: scrape time seen by the client (request to last byte): {percentiles(times)}")
for name in ["stratusd_metrics_scrape_duration_seconds", "stratusd_metrics_snapshot_duration_seconds"]:
    total, count = sample(text, name + "_sum"), sample(text, name + "_count")
    if total is not None and count:
        print(f"metrics: {name}: mean {total / count * 1000:.2f} ms over {int(count)} scrapes")
conn.close()


def scraper(stop_at):
    c = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
    tick = time.monotonic()
    while time.monotonic() < stop_at:
        scrape(c)
        tick += 1.0
        time.sleep(max(0.0, tick - time.monotonic()))


server = xmlrpc.client.ServerProxy(rpc_url)


def ok(answer, what):
    if not answer[0]:
        sys.exit(f"{what}: {answer[1]}")
    return answer[1]


template_id = ok(server.one.template.allocate(admin, 'NAME="metrics-bench"\nCPU="1"\nMEMORY="64"\n'),
                 "template")


def load(label):
    reads, writes = [], []
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        start = time.perf_counter()
        ok(server.one.vm.info(admin, random.randrange(vms)), "vm.info")
        reads.append(time.perf_counter() - start)
        start = time.perf_counter()
        ok(server.one.template.update(admin, template_id,
                                      f'NAME="metrics-bench"\nCPU="1"\nMEMORY="64"\nN="{n}"\n'),
           "template.update")
        writes.append(time.perf_counter() - start)
        n += 1
    print(f"api {label}: one.vm.info {percentiles(reads)}")
    print(f"api {label}: one.template.update {percentiles(writes)}")


load("without scraping")
stop_at = time.monotonic() + seconds
p = multiprocessing.Process(target=scraper, args=(stop_at,))
p.start()
load("while scraping once a second")
p.join()
