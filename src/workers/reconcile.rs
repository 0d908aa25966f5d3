//! Start-up reconciliation of the database with what libvirt runs (restart safety, also after
//! `kill -9`): simulated hosts come back with the domains they ran (their domain files, see
//! `driver::hypervisor`), or, without such a record, with the domains of their placed VMs; on
//! every libvirt host a `one-<vid>` domain that no VM placed there accounts for is an orphan and
//! is destroyed. Domains that should run but do
//! not are left to the first VM poll, which reports them as oned did (UNKNOWN).
//!
//! This is also the first start after `stratusd import`: the `one-<vid>` domains oned deployed
//! are adopted as they run (nothing is re-created or restarted), and the steps oned had under
//! way are run again by the life-cycle worker, each completing from what the host already did
//! (a migration that arrived, a save whose checkpoint oned wrote).

use crate::core::Core;
use crate::driver::hypervisor::HostKind;
use crate::driver::spec::domain_name;
use crate::driver::Drivers;
use crate::model::vm::{LcmState, VmState};
use crate::model::Vm;
use std::collections::HashSet;

/// States in which a VM has (or is about to have) a domain on its host.
fn holds_domain(state: VmState, lcm: LcmState) -> bool {
    use LcmState::*;
    state == VmState::Active
        && matches!(
            lcm,
            Running
                | Migrate
                | SaveStop
                | SaveSuspend
                | SaveMigrate
                | Shutdown
                | Cancel
                | Unknown
                | Boot
        )
}

pub fn reconcile(core: &Core, drivers: &Drivers) {
    let (hosts, vms) = {
        let state = core.read();
        (
            state.hosts.values().cloned().collect::<Vec<_>>(),
            state.vms.values().cloned().collect::<Vec<_>>(),
        )
    };
    for host in hosts {
        let Some(hv) = drivers.hypervisor(&host.vm_mad) else {
            continue;
        };
        let placed: Vec<_> = vms
            .iter()
            .filter(|vm| {
                vm.last_history().map(|h| h.hid) == Some(host.id)
                    && holds_domain(vm.state, vm.lcm_state)
            })
            .collect();
        if hv.kind() == HostKind::Simulated && !hv.simulated_domains_recorded(&host) {
            // A simulated host keeps its domains in its domain files, like a real hypervisor
            // across a daemon restart. One without them (a database imported or written by an
            // older stratusd) gets the domains of its placed VMs back; BOOT and MIGRATE steps
            // are re-run by the life-cycle worker.
            // A cold migration's save runs on the host the VM leaves: its domain is there.
            let runs_here = |vm: &&Vm| {
                let n = vm.history.len();
                let hid = if vm.lcm_state == LcmState::SaveMigrate && n >= 2 {
                    Some(vm.history[n - 2].hid)
                } else {
                    vm.last_history().map(|h| h.hid)
                };
                hid == Some(host.id)
                    && holds_domain(vm.state, vm.lcm_state)
                    && vm.lcm_state != LcmState::Boot
                    && vm.lcm_state != LcmState::Unknown
            };
            for vm in vms.iter().filter(runs_here) {
                if let Err(e) = hv.recreate(vm, &host) {
                    tracing::warn!(vm = vm.id, host = %host.name, error = %e, "could not restore the simulated domain");
                }
            }
        }
        // A migrating VM's domain may still be on the host it leaves (a cold migration saves
        // it there, a live one moves it): not an orphan, its step is run again.
        let leaving = vms.iter().filter(|vm| {
            matches!(vm.lcm_state, LcmState::Migrate | LcmState::SaveMigrate)
                && vm.state == VmState::Active
                && vm.history.len() >= 2
                && vm.history[vm.history.len() - 2].hid == host.id
        });
        let expected: HashSet<String> = placed
            .iter()
            .copied()
            .chain(leaving)
            .map(domain_name)
            .collect();
        let running = match hv.list_domains(&host) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(host = %host.name, error = %e, "cannot list the domains of the host");
                continue;
            }
        };
        for name in running {
            if name.starts_with("one-") && !expected.contains(&name) {
                tracing::warn!(host = %host.name, "destroying orphan domain {name}");
                if let Err(e) = hv.destroy_domain(&host, &name) {
                    tracing::warn!(host = %host.name, error = %e, "could not destroy orphan domain {name}");
                }
            }
        }
    }
}
