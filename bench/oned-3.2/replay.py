#!/usr/bin/env python3
"""Is the oned built by build.sh the oned 3.2 of the recordings? Replays recorded sessions
(shared/recorded/oned-3.2/*.jsonl, each from an empty database) against it, request bytes as
recorded, and compares every answer with the recorded one after masking what differs from run to
run: epoch times, serveradmin's random password, and image repository hashes.

  bench/oned-3.2/replay.py /work/oned-3.2/one [FILE.jsonl ...]   # default: every recording

Prints one line per session (answers identical / compared) and each difference. Only checks a
build of oned; stratusd's own replay tests are in tests/.
"""

import http.client
import importlib.util
import json
import os
import re
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDED = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "recorded", "oned-3.2"))

sys.dont_write_bytecode = True  # no __pycache__ in bench/
spec = importlib.util.spec_from_file_location("same_day", os.path.join(HERE, "..", "same-day.py"))
same_day = importlib.util.module_from_spec(spec)
spec.loader.exec_module(same_day)


def mask(text):
    text = re.sub(r"\b1[0-9]{9}\b", "<TIME>", text)
    text = re.sub(r"\b[0-9a-f]{40}\b", "<SHA1>", text)
    text = re.sub(r"\b[0-9a-f]{32}\b", "<MD5>", text)
    return text


def post(url, body):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("POST", u.path, body=body.encode(), headers={"Content-Type": "text/xml"})
    resp = conn.getresponse()
    data = resp.read().decode(errors="replace")
    conn.close()
    return resp.status, data


def replay(one_location, path):
    server = same_day.start_oned("oned", one_location, None)
    same, diffs = 0, []
    try:
        for line in open(path):
            rec = json.loads(line)
            status, body = post(server.url, rec["request"])
            if status == rec["status"] and mask(body) == mask(rec["response"]):
                same += 1
            else:
                diffs.append((rec["seq"], rec["method"], rec["status"], rec["response"], status, body))
            if rec["method"] in ("one.host.allocate", "one.vm.deploy", "one.vm.migrate"):
                # The recorder's clock: monitoring and the dummy drivers answer within a second.
                time.sleep(1)
    finally:
        server.stop()
    return same, diffs


def main():
    one_location = sys.argv[1]
    files = sys.argv[2:] or sorted(
        os.path.join(RECORDED, f) for f in os.listdir(RECORDED) if f.endswith(".jsonl"))
    total_same = total = 0
    for path in files:
        same, diffs = replay(one_location, path)
        n = same + len(diffs)
        total_same += same
        total += n
        print(f"{os.path.basename(path)}: {same}/{n} answers identical (times and hashes masked)")
        for seq, method, rstatus, rbody, status, body in diffs:
            a, b = mask(rbody), mask(body)
            at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            start = max(0, at - 60)
            print(f"  #{seq} {method}: recorded {rstatus} …{a[start:at + 100]!r}")
            print(f"  {' ' * len(str(seq))}  {' ' * len(method)}  got      {status} …{b[start:at + 100]!r}")
    print(f"total: {total_same}/{total} answers identical")


if __name__ == "__main__":
    main()
