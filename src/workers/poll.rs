//! VM monitoring: every VM_POLLING_INTERVAL each running VM on a libvirt host is polled, one
//! batch (and one transaction) per host. The first pass runs at start-up for the VMs whose
//! LAST_POLL is older than the interval (oned's `last_poll <= now - interval`), so a VM whose
//! domain disappeared while the daemon was down is found at once, and one polled just before a
//! restart (or imported from oned) keeps its figures until it is due.

use crate::core::lifecycle::Polled;
use crate::core::Core;
use crate::driver::Drivers;
use crate::driver::PollResult;
use crate::model::host::HostState;
use crate::model::vm::{LcmState, VmState};
use crate::model::{Host, Oid, Vm};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The running (and UNKNOWN) VMs of each host with a libvirt driver that is not in ERROR: a
/// host that does not answer its monitoring is not asked about each of its VMs, and its VMs
/// are polled again once it answers.
fn running_by_host(
    core: &Core,
    drivers: &Drivers,
    due_only: Option<Duration>,
) -> Vec<(Host, Vec<Vm>)> {
    let state = core.read();
    let mut by_host: HashMap<Oid, Vec<Vm>> = HashMap::new();
    for vm in state.vms.values() {
        let due = due_only.is_none_or(|i| super::monitor::stored_time_due(vm.last_poll, i));
        let polled = matches!(vm.lcm_state, LcmState::Running | LcmState::Unknown);
        if vm.state == VmState::Active && polled && due {
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
            (host.state != HostState::Error).then(|| (host.clone(), vms))
        })
        .collect()
}

/// An UNKNOWN VM whose domain the poll did not find (its host came back without it, or the
/// guest powered itself off) is told once in its log; it stays UNKNOWN for `restart` or
/// `delete`, as 3.2 left it.
fn report_vanished(
    drivers: &Drivers,
    host: &Host,
    vms: &[Vm],
    batch: &[Polled],
    reported: &mut HashSet<Oid>,
) {
    for vm in vms {
        let gone = batch
            .iter()
            .any(|p| p.vm == vm.id && matches!(p.result, PollResult::Gone));
        if vm.lcm_state != LcmState::Unknown {
            reported.remove(&vm.id);
        } else if gone && reported.insert(vm.id) {
            let message = format!(
                "The domain one-{} is not on host {}: the VM stays UNKNOWN (restart deploys it again, delete ends it)",
                vm.id, host.name
            );
            tracing::warn!(vm = vm.id, host = %host.name, "{message}");
            drivers.storage().log.append(
                vm.id,
                crate::vmlog::Module::Hypervisor,
                crate::vmlog::Level::Warning,
                &message,
            );
        }
    }
}

/// Hosts polled at the same time: a host that does not answer holds up one of them for at most
/// `[nodes] libvirt_timeout`, not the whole pass.
const POLL_WORKERS: usize = 4;

/// Polls one host's VMs; after the first question the host leaves unanswered its other VMs are
/// not asked (each would wait as long), and keep their state until the next pass.
fn poll_host(drivers: &Drivers, host: &Host, vms: &[Vm]) -> Vec<Polled> {
    let Ok(vmm) = drivers.vmm(&host.vm_mad) else {
        return Vec::new();
    };
    let timer = crate::metrics::Timer::start();
    let mut batch = Vec::with_capacity(vms.len());
    for vm in vms {
        let Some(result) = vmm.poll(vm, host) else {
            continue;
        };
        let silent = matches!(result, PollResult::Unreachable(_));
        batch.push(Polled {
            vm: vm.id,
            host: host.id,
            result,
        });
        if silent {
            tracing::warn!(host = %host.name, "host does not answer: its other VMs are not polled in this pass");
            break;
        }
    }
    let ok = !batch
        .iter()
        .any(|p| matches!(p.result, PollResult::Error(_) | PollResult::Unreachable(_)));
    crate::metrics::metrics().driver("vmm", "poll", &host.name, timer.elapsed(), ok);
    batch
}

/// Polls the running VMs (with `due_only`, only those whose LAST_POLL is that old);
/// `reported` holds the UNKNOWN VMs already reported missing. Hosts are polled by up to
/// [`POLL_WORKERS`] threads, each host's VMs in one batch.
pub fn poll_once(
    core: &Core,
    drivers: &Drivers,
    due_only: Option<Duration>,
    reported: &mut HashSet<Oid>,
) {
    let hosts = Mutex::new(running_by_host(core, drivers, due_only).into_iter());
    let shared = Mutex::new(std::mem::take(reported));
    let workers = POLL_WORKERS.min(hosts.lock().map(|h| h.len()).unwrap_or(0));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let next = hosts.lock().ok().and_then(|mut h| h.next());
                let Some((host, vms)) = next else {
                    return;
                };
                let batch = poll_host(drivers, &host, &vms);
                if let Ok(mut reported) = shared.lock() {
                    report_vanished(drivers, &host, &vms, &batch, &mut reported);
                }
                if let Err(e) = core.vms_polled(batch) {
                    tracing::error!(host = %host.name, error = %e, "could not record VM polls");
                }
            });
        }
    });
    *reported = shared.into_inner().unwrap_or_default();
}

pub fn spawn(core: Arc<Core>, drivers: Arc<Drivers>) {
    let interval = Duration::from_secs_f64(core.settings.vm_polling_interval.max(1.0));
    tokio::spawn(async move {
        let mut due_only = Some(interval);
        let mut reported = HashSet::new();
        loop {
            let (c, d) = (Arc::clone(&core), Arc::clone(&drivers));
            let pass = due_only.take();
            let polled = tokio::task::spawn_blocking(move || {
                poll_once(&c, &d, pass, &mut reported);
                reported
            })
            .await;
            match polled {
                Ok(kept) => reported = kept,
                Err(e) => {
                    tracing::error!(error = %e, "VM poll pass panicked");
                    reported = HashSet::new();
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
}
