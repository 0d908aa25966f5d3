//! Runs the driver step of every VM in a transitional state (PROLOG, BOOT, SHUTDOWN, ...) and
//! reports the outcome to the core, like oned's LifeCycle/Dispatch managers and their MADs.
//! The steps are the core's `Step` outbox intents, recorded in the commit that moved the VM
//! into its state and fenced by that state pair and the VM's history sequence: a crash
//! between the commit and the step, or between the step and its outcome, replays the intent
//! at the next start; a replayed intent whose VM moved on is dropped.

use crate::core::lifecycle::StepOutcome;
use crate::core::outbox::{Intent, IntentId, Lane, Pending};
use crate::core::Core;
use crate::driver::{DriverError, Drivers, TmOp, VmmOp};
use crate::model::vm::{LcmState, VmState};
use crate::model::{Host, Oid, Vm};
use std::collections::{BTreeMap, HashSet};
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

/// How long a step whose outcome could not be committed waits before it runs again.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// What the worker shares with its jobs.
#[derive(Default)]
struct Shared {
    /// VMs whose step runs now: one driver step per VM at a time (a step for a newer state
    /// waits until the step in progress, e.g. a reboot when a shutdown comes, has finished).
    in_flight: Mutex<HashSet<Oid>>,
    /// Steps whose outcome could not be committed, and when: their intents run again
    /// [`RETRY`] later.
    failed: Mutex<Vec<(std::time::Instant, Pending)>>,
    /// A job finished: intents held back for its VM may run now.
    finished: Notify,
}

/// A step ready to run: its intent, the VM as committed, its host and the host it leaves.
struct Job {
    intent: Pending,
    vm: Vm,
    host: Host,
    prev: Option<Host>,
    step: Step,
}

/// The job for a `Step` intent that still fences its VM, or `None` when the intent is stale
/// (the VM moved on, or has no host to run on).
fn job_for(state: &crate::core::State, intent: &Pending) -> Option<(Vm, Host, Option<Host>, Step)> {
    let Intent::Step { vm, .. } = &intent.intent else {
        return None;
    };
    let vm = state.vms.get(vm)?;
    if !intent.intent.fences(Some(vm)) {
        return None;
    }
    let step = step_for(vm)?;
    let host = state.hosts.get(&vm.last_history()?.hid)?;
    // Only a migration acts on the host the VM leaves (the domain is there, and the VM
    // directory of a node that shares nothing, which PROLOG_MIGRATE moves); every other step
    // on the host it is placed on.
    let n = vm.history.len();
    let migrating = matches!(
        vm.lcm_state,
        LcmState::Migrate | LcmState::SaveMigrate | LcmState::PrologMigrate
    );
    let prev = (n >= 2 && migrating)
        .then(|| state.hosts.get(&vm.history[n - 2].hid).cloned())
        .flatten();
    Some((vm.clone(), host.clone(), prev, step))
}

/// A `Step` intent's fence, as a set key.
type StepKey = (Oid, VmState, LcmState, i32);

fn step_key(intent: &Intent) -> Option<StepKey> {
    match intent {
        Intent::Step {
            vm,
            state,
            lcm,
            seq,
        } => Some((*vm, *state, *lcm, *seq)),
        _ => None,
    }
}

/// Records a `Step` intent for every VM that waits for a step none of `known` names (a
/// database imported from oned, or written by a stratusd that did not record steps).
fn record_missing_steps(core: &Core, known: &HashSet<StepKey>) {
    let known = known
        .iter()
        .map(|&(vm, state, lcm, seq)| Intent::Step {
            vm,
            state,
            lcm,
            seq,
        })
        .collect();
    let result = core.record_missing_steps(known);
    if let Err(e) = result {
        tracing::error!(error = %e, "could not record the steps of VMs waiting for one");
    }
}

/// Starts the worker on the tokio runtime. It carries out the core's `Step` outbox intents
/// (recorded by the write that moved a VM into a state with a driver step), in commit order,
/// one step per VM at a time; the driver calls run on the blocking pool, at most
/// [`crate::workpool::DRIVER_STEPS_AT_ONCE`] at a time (more wait their turn). A step's
/// outcome is committed with its intent marked done ([`Core::step_carried_out`]); an intent
/// whose VM moved on (its fence no longer matches) is dropped.
pub fn spawn(core: Arc<Core>, drivers: Arc<Drivers>) {
    let shared: Arc<Shared> = Arc::default();
    let steps = crate::workpool::Limit::new("driver steps", crate::workpool::DRIVER_STEPS_AT_ONCE);
    tokio::spawn(async move {
        // The intents replayed after a restart, and those for VMs that wait without one.
        let mut waiting: BTreeMap<IntentId, Pending> = core
            .outbox()
            .take(Lane::Steps, usize::MAX)
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let known: HashSet<StepKey> = waiting
            .values()
            .filter_map(|p| step_key(&p.intent))
            .collect();
        let c = Arc::clone(&core);
        if let Err(e) = tokio::task::spawn_blocking(move || record_missing_steps(&c, &known)).await
        {
            tracing::error!(error = %e, "recording missing steps panicked");
        }
        loop {
            let retry = shared.failed.lock().map(|f| !f.is_empty()).unwrap_or(false);
            tokio::select! {
                _ = core.outbox().wait(Lane::Steps) => {}
                _ = shared.finished.notified() => {}
                _ = tokio::time::sleep(RETRY), if retry => {}
            }
            if let Ok(mut failed) = shared.failed.lock() {
                let now = std::time::Instant::now();
                let (due, later): (Vec<_>, Vec<_>) = failed
                    .drain(..)
                    .partition(|(at, _)| now.duration_since(*at) >= RETRY);
                *failed = later;
                waiting.extend(due.into_iter().map(|(_, p)| (p.id, p)));
            }
            waiting.extend(
                core.outbox()
                    .take(Lane::Steps, usize::MAX)
                    .into_iter()
                    .map(|p| (p.id, p)),
            );
            let mut stale = Vec::new();
            let mut jobs = Vec::new();
            {
                let state = core.read();
                let mut busy = shared
                    .in_flight
                    .lock()
                    .map(|s| s.clone())
                    .unwrap_or_default();
                for (id, intent) in &waiting {
                    let Intent::Step { vm, .. } = &intent.intent else {
                        stale.push(*id);
                        continue;
                    };
                    if busy.contains(vm) {
                        // Looked at again when the VM's step in progress has finished.
                        continue;
                    }
                    match job_for(&state, intent) {
                        Some((vm, host, prev, step)) => {
                            busy.insert(vm.id);
                            jobs.push(Job {
                                intent: intent.clone(),
                                vm,
                                host,
                                prev,
                                step,
                            });
                        }
                        None => stale.push(*id),
                    }
                }
            }
            for id in &stale {
                waiting.remove(id);
            }
            for job in &jobs {
                waiting.remove(&job.intent.id);
            }
            if !stale.is_empty() {
                let c = Arc::clone(&core);
                // Dropped: a failure leaves them to be dropped again at the next start.
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = c.intents_done(&stale) {
                        tracing::error!(error = %e, "stale step intents not marked done");
                    }
                });
            }
            for job in jobs {
                let key = job.vm.id;
                if let Ok(mut s) = shared.in_flight.lock() {
                    s.insert(key);
                }
                let (core, drivers, shared) =
                    (Arc::clone(&core), Arc::clone(&drivers), Arc::clone(&shared));
                steps.spawn(move || {
                    let Job {
                        intent,
                        vm,
                        host,
                        prev,
                        step,
                    } = job;
                    let current = core.read().vms.get(&vm.id).cloned();
                    let recorded = if !intent.intent.fences(current.as_ref()) {
                        // The VM moved on while its step waited its turn: the step is moot.
                        core.intents_done(&[intent.id])
                    } else {
                        if matches!(step, Step::Vmm(VmmOp::Deploy | VmmOp::Restore)) {
                            // The guest asks for its address as it boots: the DHCP host file
                            // (written after the commits, by its worker) lists its leases first.
                            super::dhcp::wait_before_boot(&core, vm.id);
                        }
                        let outcome = run_step(&drivers, &step, &vm, &host, prev.as_ref());
                        if let (
                            Step::Tm(TmOp::Prolog | TmOp::Resume | TmOp::Migrate),
                            StepOutcome::Ok { .. },
                        ) = (&step, &outcome)
                        {
                            record_disk_sizes(&core, &drivers, &vm);
                        }
                        core.step_carried_out(intent.id, &intent.intent, outcome)
                    };
                    // No longer busy before the worker looks again, or it would hold it back.
                    if let Ok(mut s) = shared.in_flight.lock() {
                        s.remove(&key);
                    }
                    if let Err(e) = recorded {
                        tracing::error!(vm = key, error = %e, "could not record a life-cycle step");
                        if let Ok(mut failed) = shared.failed.lock() {
                            failed.push((std::time::Instant::now(), intent));
                        }
                    }
                    shared.finished.notify_one();
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

    /// The core records a `Step` intent exactly where this worker has a driver step to run.
    #[test]
    fn the_core_records_a_step_exactly_where_the_worker_has_one() {
        use crate::core::transitions::{LCM_STATES, STATES};
        let core = Core::open(Store::open_in_memory().unwrap(), Settings::default(), "pw").unwrap();
        let vm = core
            .vm_allocate(&Caller::oneadmin(), "CPU = 1\nMEMORY = 64\n")
            .unwrap();
        let mut vm = core.read().vms[&vm].clone();
        for state in STATES {
            for lcm in LCM_STATES {
                for reboot in [false, true] {
                    vm.state = state;
                    vm.lcm_state = lcm;
                    vm.reboot_requested = reboot;
                    assert_eq!(
                        crate::core::outbox::has_step(&vm),
                        step_for(&vm).is_some(),
                        "{state:?} {lcm:?} reboot {reboot}"
                    );
                }
            }
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
