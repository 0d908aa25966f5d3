#!/bin/sh
# Sample VM hook for stratusd (oned's VM_HOOK): appends "<time> <event> <vmid>" to a log file.
# Configure it in the stratusd config file, e.g.
#   [[vm_hook]]
#   name = "log_running"
#   on = "RUNNING"
#   command = "/usr/share/stratusd/hooks/log-vm-state.sh"
#   arguments = "RUNNING $VMID"
# $VMID is the VM id and $TEMPLATE the base64 VM document (first occurrence of each).
set -eu
log="${STRATUSD_HOOK_LOG:-/var/log/stratusd/vm-hooks.log}"
mkdir -p "$(dirname "$log")"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*" >> "$log"
