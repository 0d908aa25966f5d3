# What StratusLab's sysadmin command stratus-register-node does, through the same client
# library calls. That command ships in the StratusLab RPMs, not on PyPI, so the suite cannot
# run it; its library, stratuslab.Registrar, needs the installer package that PyPI lacks too.
# This script makes the calls Registrar makes: register a node (OneConnector.hostCreate, 7
# parameters), find it by name in the host list (Monitor.listNodes: one.hostpool.info, as
# --remove does), show it (Monitor.nodeDetail: one.host.info) and remove it
# (OneConnector.hostRemove: one.host.delete).
#
# usage: python register_node.py ENDPOINT USER PASSWORD NODE-NAME   (Python 2, client 14.6.0)
import sys

from stratuslab.ConfigHolder import ConfigHolder
from stratuslab.Monitor import Monitor


def main(endpoint, username, password, node_name):
    monitor = Monitor(ConfigHolder({'endpoint': endpoint,
                                    'username': username,
                                    'password': password,
                                    'verboseLevel': 0}))
    cloud = monitor.cloud
    host_id = cloud.hostCreate(node_name, 'im_dummy', 'vmm_dummy', 'tm_dummy')
    print 'registered %s as host %s' % (node_name, host_id)
    found = [node for node in monitor.listNodes() if node.name == node_name]
    if len(found) != 1:
        print 'host list: %d entries named %s' % (len(found), node_name)
        return 1
    print 'host list: %s is host %s' % (node_name, found[0].id)
    detail = monitor.nodeDetail([found[0].id])[0]
    print 'host %s: name %s, im %s, vmm %s, tm %s' % (
        detail.id, detail.name, detail.im_mad, detail.vm_mad, detail.tm_mad)
    cloud.hostRemove(int(found[0].id))
    print 'removed host %s' % found[0].id
    return 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:5]))
