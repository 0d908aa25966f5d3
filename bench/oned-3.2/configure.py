#!/usr/bin/env python3
"""Turn an installed oned 3.2 oned.conf/sched.conf into the baseline's set-up.

The set-up is the one of ../../../shared/perf/oned-3.2-baseline.md section 1: SQLite, dummy IM/VMM/TM
drivers, AUTH_MAD "--authz quota --authn default,dummy,plain", DEBUG_LEVEL 3, mm_sched every 10 s.
Usage: configure.py ONE_LOCATION PORT
"""
import re
import sys

one_location, port = sys.argv[1], int(sys.argv[2])
conf = f"{one_location}/etc/oned.conf"
dist = conf + ".dist"
try:
    text = open(dist).read()
except FileNotFoundError:
    text = open(conf).read()
    open(dist, "w").write(text)

# Drop every active driver block that the baseline replaces; comments stay as they are.
out, skipping = [], False
for line in text.splitlines():
    if not skipping and re.match(r"^(IM_MAD|VM_MAD|TM_MAD|AUTH_MAD)\s*=", line):
        skipping = "]" not in line
        continue
    if skipping:
        skipping = "]" not in line
        continue
    out.append(line)
text = "\n".join(out) + "\n"

def setting(name, value):
    global text
    text, n = re.subn(rf"^{name}\s*=.*$", f"{name} = {value}", text, count=1, flags=re.M)
    if n != 1:
        raise SystemExit(f"{conf}: no {name} line")

setting("PORT", str(port))
setting("DEBUG_LEVEL", "3")
setting("DB", '[ backend = "sqlite" ]')
text += """
# --- stratusd bench/oned-3.2/configure.py: the baseline's drivers ---
IM_MAD = [ name = "im_dummy", executable = "one_im_dummy" ]
VM_MAD = [ name = "vmm_dummy", executable = "one_vmm_dummy", type = "xml" ]
TM_MAD = [ name = "tm_dummy", executable = "one_tm", arguments = "tm_dummy/tm_dummy.conf" ]
AUTH_MAD = [ executable = "one_auth_mad", arguments = "--authz quota --authn default,dummy,plain" ]
"""
open(conf, "w").write(text)

sched = f"{one_location}/etc/sched.conf"
s = open(sched).read()
s = re.sub(r"^ONED_PORT\s*=.*$", f"ONED_PORT = {port}", s, flags=re.M)
s = re.sub(r"^SCHED_INTERVAL\s*=.*$", "SCHED_INTERVAL = 10", s, flags=re.M)
open(sched, "w").write(s)

# The recorded server's quota defaults (shared/recorded/oned-3.2/README.md): CPU 20, MEMORY 1048576 KB.
quota = f"{one_location}/etc/auth/quota.conf"
q = open(quota).read()
q = re.sub(r"^:defaults:\n(  :\w+:.*\n?)*", "", q, flags=re.M)
q = q.rstrip("\n") + "\n:defaults:\n  :CPU: 20\n  :MEMORY: 1048576\n  :NUM_VMS:\n  :STORAGE:\n"
open(quota, "w").write(q)
