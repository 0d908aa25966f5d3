#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets (committed; rerun only to change them):
# a small grid PKI for cert_chain (CA, user, RFC 3820 and legacy proxies, EC P-256 keys),
# XML-RPC requests and templates from the recorded oned 3.2 sessions, expressions, manifests,
# network templates.
set -euo pipefail
cd "$(dirname "$0")"
seeds=seeds
rm -rf "$seeds/cert_chain" "$seeds/cert_chain_ca"
mkdir -p "$seeds/cert_chain" "$seeds/cert_chain_ca"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > ext.cnf <<'CNF'
[ca]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[user]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
[rfc3820]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
proxyCertInfo = critical,language:id-ppl-inheritAll
[legacy]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
CNF
key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }
key ca
# Valid for ten years from today: fuzz_targets/cert_chain.rs's NOW must fall inside.
openssl req -new -x509 -key ca.key -subj "/DC=org/DC=example/CN=Fuzz CA" -days 3650 \
  -set_serial 1 -config ext.cnf -extensions ca -out ca.pem
sign() { # name subject issuer extension serial
  key "$1"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -set_serial "$5" -days 3650 \
    -extfile ext.cnf -extensions "$4" -out "$1.pem" 2>/dev/null
}
sign user "/DC=org/DC=example/CN=Alice Fuzz" ca user 2
sign proxy "/DC=org/DC=example/CN=Alice Fuzz/CN=12345" user rfc3820 12345
sign legacy "/DC=org/DC=example/CN=Alice Fuzz/CN=proxy" user legacy 3
for c in ca user proxy legacy; do openssl x509 -in "$c.pem" -outform DER -out "$c.der"; done
hash=$(openssl x509 -hash -noout -in ca.pem)
cd - >/dev/null
cp "$work/ca.pem" "$seeds/cert_chain_ca/$hash.0"
python3 - "$work" "$seeds/cert_chain" <<'PY'
import struct, sys, os
work, out = sys.argv[1], sys.argv[2]
der = {n: open(os.path.join(work, n + ".der"), "rb").read() for n in ("ca", "user", "proxy", "legacy")}
def chain(*names):
    return bytes([len(names)]) + b"".join(struct.pack(">H", len(der[n])) + der[n] for n in names)
for name, names in {"user": ("user",), "user_ca": ("user", "ca"), "proxy": ("proxy", "user"),
                    "legacy": ("legacy", "user"), "proxy_ca": ("proxy", "user", "ca")}.items():
    open(os.path.join(out, name), "wb").write(chain(*names))
PY
echo "seeds written under $(pwd)/$seeds"
python3 - "$seeds" <<'PY'
import glob, json, os, re, sys, html
out = sys.argv[1]
# The recorded oned 3.2 sessions (the project's reference material).
root = "/work/shared/recorded/oned-3.2"
for t in ("xmlrpc_decode", "template_parse", "sched_expr", "marketplace_manifest", "vnet_leases"):
    os.makedirs(os.path.join(out, t), exist_ok=True)
requests, templates, exprs = set(), set(), set()
for f in sorted(glob.glob(os.path.join(root, "*.jsonl"))):
    for line in open(f):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        req = r.get("request", "")
        if "<methodCall>" not in req:
            continue
        requests.add(req)
        for s in re.findall(r"<string>(.*?)</string>", req, re.S):
            s = html.unescape(s)
            if "=" in s and ":" not in s.split("\n")[0][:20]:
                templates.add(s)
            for m in re.findall(r'(?:REQUIREMENTS|RANK)\s*=\s*"((?:[^"\\]|\\.)*)"', s):
                exprs.add(m)
def write(target, items, limit):
    for i, item in enumerate(sorted(items, key=len)[:limit]):
        open(os.path.join(out, target, "r%03d" % i), "w").write(item)
write("xmlrpc_decode", requests, 60)
write("template_parse", templates, 60)
exprs |= {'HOSTNAME = "node*"', 'FREECPU > 100 & TOTALMEMORY >= 1048576',
          '!(HYPERVISOR = "xen") | CPUSPEED > 2', "FREECPU", "- FREEMEMORY * 2 + 10 / 3",
          'ARCH = "x86_64" & (HOSTNAME != "bad" | FREECPU > 1.5e2)'}
write("sched_expr", exprs, 60)
manifest = open(os.path.join(out, "..", "..", "tests", "common", "marketplace.rs")).read() \
    if os.path.exists(os.path.join(out, "..", "..", "tests", "common", "marketplace.rs")) else ""
m = re.search(r'r##"(.*?)"##', manifest, re.S)
if m:
    doc = m.group(1)
    for i, (ident, size) in enumerate([("BN1EEkPiBx87_uLj2-sdybSI-Xb", "1048576"), ("X", "0")]):
        text = doc.replace("{id}", ident).replace("{bytes}", size).replace(
            "{sha1}", "da39a3ee5e6b4b0d3255bfef95601890afd80709").replace(
            "{endorser}", "images@stratuslab.eu").replace("{location}", "http://mp/x.img.gz")
        open(os.path.join(out, "marketplace_manifest", "m%d" % i), "w").write(text)
nets = [
    ("NAME=n\nTYPE=RANGED\nBRIDGE=br0\nNETWORK_ADDRESS=192.168.1.0\nNETWORK_SIZE=C",
     "LEASES=[IP=192.168.1.7]", "IP=192.168.1.9"),
    ("NAME=f\nTYPE=FIXED\nBRIDGE=br1\nLEASES=[IP=10.0.0.1,MAC=02:00:0a:00:00:01]\nLEASES=[IP=10.0.0.2]",
     "LEASES=[IP=10.0.0.3,MAC=02:00:0a:00:00:03]", "MAC=02:00:0a:00:00:02"),
    ("NAME=c\nTYPE=RANGED\nBRIDGE=br2\nNETWORK_ADDRESS=172.16.0.0/30", "LEASES=[IP=172.16.0.1]", ""),
]
for i, (n, l, nic) in enumerate(nets):
    open(os.path.join(out, "vnet_leases", "n%d" % i), "w").write(n + "\0" + l + "\0" + nic)
forms = [
    # What the client's PersistentDisk.py sends (urlencode of its dicts).
    "size=1&tag=my+data&visibility=private",
    "size=10&tag=&visibility=public&type=DATA_IMAGE_RAW_READWRITE",
    "tag=%22%7D%2C+%7B%22owner%22%3A+%22root%22+%3Cx%3E%26",
    "node=10.0.0.2&vm_id=42&register_only=true",
    "owner=alice&identifier=BN1EEkPiBx87_uLj2-sdybSI-Xb&quarantine=2026-12-07+04%3A00%3A00.000000",
    "size=-1&visibility=PUBLIC&seed=on&url=http%3A%2F%2Fmp%2Fx.img.gz&bytes=1048576&sha1=da39",
]
os.makedirs(os.path.join(out, "pdisk_form"), exist_ok=True)
for i, form in enumerate(forms):
    open(os.path.join(out, "pdisk_form", "f%d" % i), "w").write(form)
PY
