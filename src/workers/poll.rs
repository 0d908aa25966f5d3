//! VM monitoring: every VM_POLLING_INTERVAL each running VM on a libvirt host is polled, one
//! batch (and one transaction) per host. The first pass runs at start-up for the VMs whose
//! LAST_POLL is older than the interval (oned's `last_poll <= now - interval`), so a VM whose
//! domain disappeared while the daemon was down is found at once, and one polled just before a
//! restart (or imported from oned) keeps its figures until it is due.

use crate::core::lifecycle::Polled;
use crate::core::Core;
use crate::driver::Drivers;
use crate::model::vm::{LcmState, VmState};
use crate::model::{Host, Oid, Vm};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The running VMs of each host with a libvirt driver.
fn running_by_host(
    core: &Core,
    drivers: &Drivers,
    due_only: Option<Duration>,
) -> Vec<(Host, Vec<Vm>)> {
    let state = core.read();
    let mut by_host: HashMap<Oid, Vec<Vm>> = HashMap::new();
    for vm in state.vms.values() {
        let due = due_only.is_none_or(|i| super::monitor::stored_time_due(vm.last_poll, i));
        if vm.state == VmState::Active && vm.lcm_state == LcmState::Running && due {
            if let Some(h) = vm.last_history() {
                by_host.entry(h.hid).or_default().push(vm.clone());
            }
        }
    }
    by_host
        .into_iter()
        .filter_map(|(hid, vms)| {
            let host = state.hosts.get(&hid)?;
            drivers.hypervisor(&host.vm_mad)?;
            Some((host.clone(), vms))
        })
        .collect()
}

/// Polls the running VMs (with `due_only`, only those whose LAST_POLL is that old).
pub fn poll_once(core: &Core, drivers: &Drivers, due_only: Option<Duration>) {
    for (host, vms) in running_by_host(core, drivers, due_only) {
        let Ok(vmm) = drivers.vmm(&host.vm_mad) else {
            continue;
        };
        let timer = crate::metrics::Timer::start();
        let batch: Vec<Polled> = vms
            .iter()
            .filter_map(|vm| {
                vmm.poll(vm, &host).map(|result| Polled {
                    vm: vm.id,
                    host: host.id,
                    result,
                })
            })
            .collect();
        let ok = !batch
            .iter()
            .any(|p| matches!(p.result, crate::driver::PollResult::Error(_)));
        crate::metrics::metrics().driver("vmm", "poll", &host.name, timer.elapsed(), ok);
        if let Err(e) = core.vms_polled(batch) {
            tracing::error!(host = %host.name, error = %e, "could not record VM polls");
        }
    }
}

pub fn spawn(core: Arc<Core>, drivers: Arc<Drivers>) {
    let interval = Duration::from_secs_f64(core.settings.vm_polling_interval.max(1.0));
    tokio::spawn(async move {
        let mut due_only = Some(interval);
        loop {
            let (c, d) = (Arc::clone(&core), Arc::clone(&drivers));
            let pass = due_only.take();
            if let Err(e) = tokio::task::spawn_blocking(move || poll_once(&c, &d, pass)).await {
                tracing::error!(error = %e, "VM poll pass panicked");
            }
            tokio::time::sleep(interval).await;
        }
    });
}
