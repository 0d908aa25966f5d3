"""Fills a fresh stratusd for bench/dashboard.sh over XML-RPC: VMS virtual machines of USERS
StratusLab users (registered on first contact), of which all but RUNNING are held, and the
rest placed on simulated hosts; one network the users share.

Usage: dashboard-fill.py URL VMS USERS HOSTS RUNNING
"""
import sys
import time
import xmlrpc.client

url, vms, users, hosts, running = sys.argv[1], *map(int, sys.argv[2:6])
admin = "oneadmin:password"
server = xmlrpc.client.ServerProxy(url)
secret = "a" * 40


def ok(answer, what):
    if not answer[0]:
        sys.exit(f"{what}: {answer[1]}")
    return answer[1]


ok(server.one.vn.allocate(admin, 'NAME="public"\nTYPE="RANGED"\nBRIDGE="br0"\n'
                          'NETWORK_ADDRESS="10.0.0.0"\nNETWORK_SIZE="B"\n'), "network")
ok(server.one.vn.chmod(admin, 0, -1, -1, -1, 1, -1, -1, 1, -1, -1), "network chmod")


def template(i):
    return (f'NAME="bench-{i}"\nCPU="0.05"\nMEMORY="32"\nNIC=[NETWORK_ID="0"]\n'
            'DISK=[TYPE="fs",SIZE="64",FORMAT="ext3"]\nGRAPHICS=[TYPE="vnc",LISTEN="0.0.0.0"]\n')


def allocate(first, count):
    """Allocates in batches of 200 (system.multicall), round robin over the users."""
    ids = []
    start = time.time()
    for base in range(first, first + count, 200):
        calls = xmlrpc.client.MultiCall(server)
        for i in range(base, min(base + 200, first + count)):
            calls.one.vm.allocate(f"user{i % users}:{secret}", template(i))
        for answer in calls():
            ids.append(ok(answer, "allocate"))
        if len(ids) % 2000 == 0:
            print(f"fill: {len(ids) + first} VMs ({time.time() - start:.0f} s)", flush=True)
    return ids


# First the VMs that stay held: no host yet, so they are PENDING until held.
held = allocate(0, vms - running)
for base in range(0, len(held), 500):
    calls = xmlrpc.client.MultiCall(server)
    for vid in held[base:base + 500]:
        calls.one.vm.action(admin, "hold", vid)
    for answer in calls():
        ok(answer, "hold")
for h in range(hosts):
    ok(server.one.host.allocate(admin, f"node-{h:03d}", "im_dummy", "vmm_dummy", "dummy",
                                "tm_dummy"), "host")
placed = allocate(vms - running, running)
deadline = time.time() + 600
while True:
    pool = server.one.vmpool.info(admin, -2, placed[0], placed[-1], 3)
    count = pool[1].count("<LCM_STATE>3</LCM_STATE>")
    if count >= len(placed):
        break
    if time.time() > deadline:
        sys.exit(f"only {count} of {len(placed)} VMs reached RUNNING")
    time.sleep(1)
print(f"fill: {vms} VMs ({running} running on {hosts} hosts, the rest held), {users} users",
      flush=True)
