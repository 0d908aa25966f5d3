//! Runs the driver step of every VM in a transitional state (PROLOG, BOOT, SHUTDOWN, ...) and
//! reports the outcome to the core, like oned's LifeCycle/Dispatch managers and their MADs.

use super::changes::{ChangeFeed, Changes};
use crate::core::lifecycle::StepOutcome;
use crate::core::Core;
use crate::driver::{DriverError, Drivers, TmOp, VmmOp};
use crate::model::vm::{LcmState, VmState};
use crate::model::{Host, Oid, Vm};
use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

enum Step {
    Tm(TmOp),
    Vmm(VmmOp),
    /// Destroy the domain, then clean the VM directory (finalize/resubmit of an ACTIVE VM).
    Cleanup,
}

fn step_for(vm: &Vm) -> Option<Step> {
    if vm.state != VmState::Active {
        return None;
    }
    use LcmState::*;
    Some(match vm.lcm_state {
        Running if vm.reboot_requested => Step::Vmm(VmmOp::Reboot),
        Prolog => Step::Tm(TmOp::Prolog),
        PrologResume => Step::Tm(TmOp::Resume),
        PrologMigrate => Step::Tm(TmOp::Migrate),
        Boot => Step::Vmm(if vm.boot_restores {
            VmmOp::Restore
        } else {
            VmmOp::Deploy
        }),
        Migrate => Step::Vmm(VmmOp::Migrate),
        SaveMigrate | SaveStop | SaveSuspend => Step::Vmm(VmmOp::Save),
        Shutdown => Step::Vmm(VmmOp::Shutdown),
        Cancel => Step::Vmm(VmmOp::Cancel),
        Epilog => Step::Tm(TmOp::Epilog),
        EpilogStop => Step::Tm(TmOp::Stop),
        Cleanup => Step::Cleanup,
        _ => return None,
    })
}

fn run_step(
    drivers: &Drivers,
    step: &Step,
    vm: &Vm,
    host: &Host,
    prev: Option<&Host>,
) -> StepOutcome {
    let timer = crate::metrics::Timer::start();
    let (driver, operation) = match step {
        Step::Tm(op) => ("tm", op.name()),
        Step::Vmm(op) => ("vmm", op.name()),
        Step::Cleanup => ("vmm", "cleanup"),
    };
    let result: Result<Option<String>, DriverError> = match step {
        Step::Tm(op) => drivers
            .tm(&host.tm_mad)
            .and_then(|tm| tm.execute(*op, vm, host, prev))
            .map(|_| None),
        Step::Vmm(VmmOp::Migrate) => live_migrate(drivers, vm, host, prev),
        Step::Vmm(op) => drivers
            .vmm(&host.vm_mad)
            .and_then(|vmm| vmm.execute(*op, vm, host, prev)),
        Step::Cleanup => {
            // A missing domain is fine here: cleanup only has to make sure nothing is left.
            if let Ok(vmm) = drivers.vmm(&host.vm_mad) {
                if let Err(e) = vmm.execute(VmmOp::Cancel, vm, host, prev) {
                    tracing::info!(vm = vm.id, error = %e, "cleanup: cancel of the domain failed");
                }
            }
            drivers
                .tm(&host.tm_mad)
                .and_then(|tm| tm.execute(TmOp::Delete, vm, host, None))
                .map(|_| None)
        }
    };
    crate::metrics::metrics().driver(
        driver,
        operation,
        &host.name,
        timer.elapsed(),
        result.is_ok(),
    );
    match result {
        Ok(deploy_id) => StepOutcome::Ok { deploy_id },
        Err(DriverError::Unknown(driver)) => StepOutcome::DriverMissing(driver),
        Err(e) => StepOutcome::Failed(e.to_string()),
    }
}

/// After a prolog: the disk sizes the transfer driver recorded (`disks.json`, kept on the
/// front-end also for nodes of their own) go to the VM's row, for accounting. Transfer
/// drivers that record nothing (`tm_dummy`) leave the VM without sizes.
fn record_disk_sizes(core: &Core, drivers: &Drivers, vm: &Vm) {
    let record =
        crate::storage::layout::VmPaths::new(&drivers.storage().vm_dir, vm.id).read_record();
    if record.disks.is_empty() {
        return;
    }
    if let Err(e) = core.vm_disks_sized(vm.id, record.sizes()) {
        tracing::warn!(vm = vm.id, error = %e, "could not record the disk sizes");
    }
}

/// A live migration: the destination's transfer driver prepares what the hypervisor does not
/// copy (disks on a node without the shared VM directory), the hypervisor moves the running
/// guest, and the side it left is cleaned up.
fn live_migrate(
    drivers: &Drivers,
    vm: &Vm,
    host: &Host,
    prev: Option<&Host>,
) -> Result<Option<String>, DriverError> {
    let vmm = drivers.vmm(&host.vm_mad)?;
    let Some(prev) = prev else {
        return vmm.execute(VmmOp::Migrate, vm, host, None);
    };
    let tm = drivers.tm(&host.tm_mad)?;
    tm.prepare_live_migration(vm, host, prev)?;
    let migrated = vmm.execute(VmmOp::Migrate, vm, host, Some(prev));
    if let Err(e) = tm.finish_live_migration(vm, host, prev, migrated.is_ok()) {
        // The guest runs where the migration left it; a leftover copy is only logged.
        tracing::warn!(vm = vm.id, error = %e, "cleanup after the live migration failed");
    }
    migrated
}

/// How long the worker waits for change events before it looks again at the VMs whose step
/// result could not be recorded (their step then runs again).
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// VMs to look at again although no change event names them.
#[derive(Default)]
struct Recheck {
    /// A step finished: the VM may have a next step that was held back while it ran.
    finished: Mutex<BTreeSet<Oid>>,
    /// The outcome could not be committed: tried again on the next wake-up, not at once.
    failed: Mutex<BTreeSet<Oid>>,
    wake: Notify,
}

/// Starts the worker on the tokio runtime; driver calls run on the blocking pool, at most
/// [`crate::workpool::DRIVER_STEPS_AT_ONCE`] at a time (more wait their turn). It looks at
/// the VMs that change events name (every VM at start and after missed events) and at those
/// whose step just finished, never at the whole pool on each event.
pub fn spawn(core: Arc<Core>, drivers: Arc<Drivers>) {
    // One driver step per VM at a time: a step for a newer state waits until the step in
    // progress (e.g. a reboot when a shutdown comes) has finished.
    let in_flight: Arc<Mutex<HashSet<Oid>>> = Arc::default();
    let recheck: Arc<Recheck> = Arc::default();
    let mut feed = ChangeFeed::subscribe(&core);
    let steps = crate::workpool::Limit::new("driver steps", crate::workpool::DRIVER_STEPS_AT_ONCE);
    tokio::spawn(async move {
        loop {
            let mut changes = tokio::select! {
                changes = feed.next(Some(RETRY)) => match changes {
                    Some(c) => c,
                    None => return,
                },
                _ = recheck.wake.notified() => Changes::default(),
            };
            for set in [&recheck.finished, &recheck.failed] {
                if let Ok(mut ids) = set.lock() {
                    changes.vms.append(&mut ids);
                }
            }
            let jobs: Vec<(Vm, Host, Option<Host>, Step)> = {
                let state = core.read();
                let busy = in_flight.lock().map(|s| s.clone()).unwrap_or_default();
                let candidates: Box<dyn Iterator<Item = &Vm>> = if changes.everything {
                    Box::new(state.vms.values())
                } else {
                    Box::new(changes.vms.iter().filter_map(|id| state.vms.get(id)))
                };
                candidates
                    .filter(|vm| !busy.contains(&vm.id))
                    .filter_map(|vm| {
                        let step = step_for(vm)?;
                        let host = state.hosts.get(&vm.last_history()?.hid)?;
                        // Only a migration acts on the host the VM leaves (the domain is
                        // there, and the VM directory of a node that shares nothing, which
                        // PROLOG_MIGRATE moves); every other step on the host it is placed on.
                        let n = vm.history.len();
                        let migrating = matches!(
                            vm.lcm_state,
                            LcmState::Migrate | LcmState::SaveMigrate | LcmState::PrologMigrate
                        );
                        let prev = (n >= 2 && migrating)
                            .then(|| state.hosts.get(&vm.history[n - 2].hid).cloned())
                            .flatten();
                        Some((vm.clone(), host.clone(), prev, step))
                    })
                    .collect()
            };
            for (vm, host, prev, step) in jobs {
                let key = vm.id;
                if let Ok(mut s) = in_flight.lock() {
                    s.insert(key);
                }
                let (core, drivers, in_flight, recheck) = (
                    Arc::clone(&core),
                    Arc::clone(&drivers),
                    Arc::clone(&in_flight),
                    Arc::clone(&recheck),
                );
                steps.spawn(move || {
                    let waited = core
                        .read()
                        .vms
                        .get(&vm.id)
                        .map(|v| (v.state, v.lcm_state, v.reboot_requested));
                    if waited != Some((vm.state, vm.lcm_state, vm.reboot_requested)) {
                        // The VM moved on while its step waited its turn: look at it again.
                        if let Ok(mut s) = in_flight.lock() {
                            s.remove(&key);
                        }
                        if let Ok(mut ids) = recheck.finished.lock() {
                            ids.insert(key);
                        }
                        recheck.wake.notify_one();
                        return;
                    }
                    if matches!(step, Step::Vmm(VmmOp::Deploy | VmmOp::Restore)) {
                        // The guest asks for its address as it boots: the DHCP host file
                        // (written after the commits, by its worker) lists its leases first.
                        super::dhcp::wait_before_boot(&core, vm.id);
                    }
                    let outcome = run_step(&drivers, &step, &vm, &host, prev.as_ref());
                    if let (Step::Tm(TmOp::Prolog | TmOp::Resume | TmOp::Migrate), StepOutcome::Ok { .. }) = (&step, &outcome) {
                        record_disk_sizes(&core, &drivers, &vm);
                    }
                    let recorded = core.step_done(vm.id, (vm.state, vm.lcm_state), outcome);
                    // No longer busy before it is queued again, or it would be skipped.
                    if let Ok(mut s) = in_flight.lock() {
                        s.remove(&key);
                    }
                    match recorded {
                        Ok(()) => {
                            if let Ok(mut ids) = recheck.finished.lock() {
                                ids.insert(key);
                            }
                            recheck.wake.notify_one();
                        }
                        Err(e) => {
                            tracing::error!(vm = vm.id, error = %e, "could not record a life-cycle step");
                            if let Ok(mut ids) = recheck.failed.lock() {
                                ids.insert(key);
                            }
                        }
                    }
                });
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::{step_for, Step};
    use crate::config::Settings;
    use crate::core::auth::Caller;
    use crate::core::hosts::MonitorResult;
    use crate::core::lifecycle::StepOutcome;
    use crate::core::Core;
    use crate::driver::VmmOp;
    use crate::model::vm::{LcmState, VmState};
    use crate::model::Oid;
    use crate::store::Store;

    fn boot_op(core: &Core, vm: Oid) -> Option<VmmOp> {
        let vm = &core.read().vms[&vm];
        assert_eq!((vm.state, vm.lcm_state), (VmState::Active, LcmState::Boot));
        match step_for(vm) {
            Some(Step::Vmm(op)) => Some(op),
            _ => None,
        }
    }

    /// Runs the steps from the VM's state until it is in `until`.
    fn steps(core: &Core, vm: Oid, until: LcmState) {
        loop {
            let (state, lcm) = {
                let r = core.read();
                (r.vms[&vm].state, r.vms[&vm].lcm_state)
            };
            if lcm == until {
                return;
            }
            let done = StepOutcome::Ok {
                deploy_id: Some(format!("one-{vm}")),
            };
            core.step_done(vm, (state, lcm), done).unwrap();
        }
    }

    /// As 3.2: BOOT deploys afresh after a prolog and after `restart`, and restores the saved
    /// checkpoint after a cold migration and after a resume (a guest is not rebooted by them).
    #[test]
    fn boot_restores_after_cold_migration_and_resume_and_deploys_otherwise() {
        let core = Core::open(Store::open_in_memory().unwrap(), Settings::default(), "pw").unwrap();
        let admin = Caller::oneadmin();
        let hosts: Vec<Oid> = ["node1", "node2"]
            .iter()
            .map(|name| {
                let h = core
                    .host_allocate(&admin, name, "im_kvm", "vmm_kvm", "dummy", "tm_dummy")
                    .unwrap();
                let values = [
                    ("TOTALCPU", "800"),
                    ("FREECPU", "800"),
                    ("TOTALMEMORY", "1048576"),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .to_vec();
                core.host_monitored(h, MonitorResult::Ok(values)).unwrap();
                h
            })
            .collect();
        let vm = core.vm_allocate(&admin, "CPU = 1\nMEMORY = 64\n").unwrap();
        core.vm_deploy(&admin, vm, hosts[0]).unwrap();
        steps(&core, vm, LcmState::Boot);
        assert_eq!(boot_op(&core, vm), Some(VmmOp::Deploy), "after a prolog");
        steps(&core, vm, LcmState::Running);

        core.vm_migrate(&admin, vm, hosts[1], false).unwrap();
        steps(&core, vm, LcmState::Boot);
        assert_eq!(
            boot_op(&core, vm),
            Some(VmmOp::Restore),
            "after a cold migration"
        );
        steps(&core, vm, LcmState::Running);

        core.vm_action(&admin, "suspend", vm).unwrap();
        steps(&core, vm, LcmState::LcmInit);
        assert_eq!(core.read().vms[&vm].state, VmState::Suspended);
        core.vm_action(&admin, "resume", vm).unwrap();
        assert_eq!(
            boot_op(&core, vm),
            Some(VmmOp::Restore),
            "after a suspension"
        );
        steps(&core, vm, LcmState::Running);

        core.vm_action(&admin, "stop", vm).unwrap();
        steps(&core, vm, LcmState::LcmInit);
        assert_eq!(core.read().vms[&vm].state, VmState::Stopped);
        core.vm_action(&admin, "resume", vm).unwrap();
        core.vm_deploy(&admin, vm, hosts[0]).unwrap();
        steps(&core, vm, LcmState::Boot);
        assert_eq!(boot_op(&core, vm), Some(VmmOp::Restore), "after a stop");
        // `restart` of a VM whose restore did not finish (or an UNKNOWN one) deploys afresh.
        core.vm_action(&admin, "restart", vm).unwrap();
        assert_eq!(boot_op(&core, vm), Some(VmmOp::Deploy), "after a restart");
    }
}
