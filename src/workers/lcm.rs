//! Runs the driver step of every VM in a transitional state (PROLOG, BOOT, SHUTDOWN, ...) and
//! reports the outcome to the core, like oned's LifeCycle/Dispatch managers and their MADs.

use crate::core::lifecycle::StepOutcome;
use crate::core::{Core, Event};
use crate::driver::{DriverError, Drivers, TmOp, VmmOp};
use crate::model::vm::{LcmState, Reason, VmState};
use crate::model::{Host, Oid, Vm};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

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
        Boot => {
            let n = vm.history.len();
            let restoring = n >= 2 && vm.history[n - 2].reason == Reason::StopResume;
            Step::Vmm(if restoring {
                VmmOp::Restore
            } else {
                VmmOp::Deploy
            })
        }
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
    let result: Result<Option<String>, DriverError> = match step {
        Step::Tm(op) => drivers
            .tm(&host.tm_mad)
            .and_then(|tm| tm.execute(*op, vm, host))
            .map(|_| None),
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
                .and_then(|tm| tm.execute(TmOp::Delete, vm, host))
                .map(|_| None)
        }
    };
    match result {
        Ok(deploy_id) => StepOutcome::Ok { deploy_id },
        Err(DriverError::Unknown(driver)) => StepOutcome::DriverMissing(driver),
        Err(e) => StepOutcome::Failed(e.to_string()),
    }
}

/// Starts the worker on the tokio runtime; driver calls run on the blocking pool.
pub fn spawn(core: Arc<Core>, drivers: Arc<Drivers>) {
    // One driver step per VM at a time: a step for a newer state waits until the step in
    // progress (e.g. a reboot when a shutdown comes) has finished.
    let in_flight: Arc<Mutex<HashSet<Oid>>> = Arc::default();
    let mut events = core.subscribe();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                ev = events.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = ev {
                        return;
                    }
                    if !matches!(ev, Ok(Event::VmChanged(_)) | Err(_)) {
                        continue;
                    }
                }
                _ = tokio::time::sleep(super::TICK) => {}
            }
            let jobs: Vec<(Vm, Host, Option<Host>, Step)> = {
                let state = core.read();
                let busy = in_flight.lock().map(|s| s.clone()).unwrap_or_default();
                state
                    .vms
                    .values()
                    .filter(|vm| !busy.contains(&vm.id))
                    .filter_map(|vm| {
                        let step = step_for(vm)?;
                        let host = state.hosts.get(&vm.last_history()?.hid)?;
                        let n = vm.history.len();
                        let prev = (n >= 2)
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
                let (core, drivers, in_flight) = (
                    Arc::clone(&core),
                    Arc::clone(&drivers),
                    Arc::clone(&in_flight),
                );
                tokio::task::spawn_blocking(move || {
                    let outcome = run_step(&drivers, &step, &vm, &host, prev.as_ref());
                    if let Err(e) = core.step_done(vm.id, (vm.state, vm.lcm_state), outcome) {
                        tracing::error!(vm = vm.id, error = %e, "could not record a life-cycle step");
                    }
                    if let Ok(mut s) = in_flight.lock() {
                        s.remove(&key);
                    }
                });
            }
        }
    });
}
