//! Writes the life-cycle lines of each VM's log (`<vm_log_dir>/<vid>.log`) as VMs change
//! state: oned's `New VM state is …` lines, StratusLab's security-audit lines (hooks §12: the
//! ACTIVE line with id, uid and user name, the acquired/released lease lines) and the error
//! that failed a VM. Transfer progress is written by the storage drivers themselves.

use crate::core::{Core, Event};
use crate::model::vm::{LcmState, VmState};
use crate::model::Vm;
use crate::template::vector_get;
use crate::vmlog::{Level, Module, VmLogDir};
use std::sync::Arc;

fn lease_lines(vm: &Vm, verb: &str) -> Vec<String> {
    vm.template
        .vectors("NIC")
        .filter_map(|nic| {
            let ip = vector_get(nic, "IP")?;
            let mac = vector_get(nic, "MAC").unwrap_or("");
            Some(format!("{verb} lease (IP={ip}, MAC={mac})"))
        })
        .collect()
}

/// The lines a VM's log gets when it enters `(state, lcm)`.
pub fn lines_for(vm: &Vm, state: VmState, lcm: LcmState) -> Vec<(Module, Level, String)> {
    let dim = |m: String| (Module::DispatchManager, Level::Info, m);
    let lcm_line = |m: String| (Module::LifeCycle, Level::Info, m);
    let vmm = |m: String| (Module::Hypervisor, Level::Info, m);
    let mut out = Vec::new();
    match (state, lcm) {
        (VmState::Pending, _) => out.push(dim("New VM state is PENDING".into())),
        (VmState::Hold, _) => out.push(dim("New VM state is HOLD".into())),
        (VmState::Active, LcmState::Prolog) => {
            out.push(dim(format!(
                "New VM state is ACTIVE ({}, {}, {})",
                vm.id, vm.uid, vm.uname
            )));
            out.extend(lease_lines(vm, "acquired").into_iter().map(vmm));
            out.push(lcm_line("New VM state is PROLOG.".into()));
        }
        (VmState::Active, l) => out.push(lcm_line(format!("New VM state is {}", l.name()))),
        (VmState::Stopped, _) => out.push(dim("New VM state is STOPPED".into())),
        (VmState::Suspended, _) => out.push(dim("New VM state is SUSPENDED".into())),
        (VmState::Done, _) => {
            out.extend(lease_lines(vm, "released").into_iter().map(vmm));
            out.push(dim("New VM state is DONE".into()));
        }
        (VmState::Failed, _) => {
            if let Some(msg) = vm
                .template
                .get_vector("ERROR")
                .and_then(|e| vector_get(e, "MESSAGE"))
            {
                out.push((Module::LifeCycle, Level::Error, msg.to_string()));
            }
            out.push(dim("New VM state is FAILED".into()));
        }
        (VmState::Init, _) => {}
    }
    out
}

pub fn spawn(core: Arc<Core>, log: VmLogDir) {
    // One writer thread: lines reach each file in the order the VM changed state.
    let (tx, rx) = std::sync::mpsc::channel::<(crate::model::Oid, Vec<(Module, Level, String)>)>();
    std::thread::spawn(move || {
        for (id, lines) in rx {
            for (module, level, text) in lines {
                log.append(id, module, level, &text);
            }
        }
    });
    let mut events = core.subscribe();
    tokio::spawn(async move {
        loop {
            let (id, state, lcm) = match events.recv().await {
                Ok(Event::VmEntered { id, state, lcm }) => (id, state, lcm),
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("VM logs missed {n} state changes (event queue overflow)");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let lines = {
                let st = core.read();
                let Some(vm) = st.vms.get(&id) else { continue };
                lines_for(vm, state, lcm)
            };
            if tx.send((id, lines)).is_err() {
                return;
            }
        }
    });
}
