//! Storage housekeeping: purges the quarantine when its periods run out (StratusLab's cron
//! jobs, done by the daemon), and runs the transfer DELETE for VMs that reach DONE without one
//! (finalize of a FAILED, SUSPENDED or STOPPED VM), so their directories are quarantined too;
//! at start-up also for the finished VMs whose DELETE a crash interrupted.

use crate::core::{Core, Event};
use crate::driver::{Drivers, TmOp};
use crate::model::vm::VmState;
use std::sync::Arc;
use std::time::Duration;

pub fn spawn(core: Arc<Core>, drivers: Arc<Drivers>) {
    let site = Arc::clone(drivers.storage());
    let interval = Duration::from_secs_f64(site.quarantine.purge_interval());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let site = Arc::clone(&site);
            let purged = tokio::task::spawn_blocking(move || {
                site.quarantine.purge(crate::model::now(), false, &|copy| {
                    site.nodes.purge(&copy.target, &copy.path)
                })
            })
            .await;
            if let Err(e) = purged {
                tracing::error!(error = %e, "quarantine purge panicked");
            }
        }
    });
    let mut events = core.subscribe();
    let cleanups = crate::workpool::Limit::new("cleanups", crate::workpool::CLEANUPS_AT_ONCE);
    tokio::spawn(async move {
        // At start (work a crash interrupted) and after missed events: every finished VM whose
        // files are still in its directory.
        let leftover = |home: &std::path::Path| {
            home.join("images").exists() || home.join("disks.json").exists()
        };
        let mut rescan = true;
        loop {
            let ids: Vec<crate::model::Oid> = if rescan {
                rescan = false;
                let st = core.read();
                st.vms
                    .values()
                    .filter(|vm| vm.state == VmState::Done)
                    .filter(|vm| leftover(&core.settings.data_dir.join(vm.id.to_string())))
                    .map(|vm| vm.id)
                    .collect()
            } else {
                match events.recv().await {
                    Ok(Event::VmEntered {
                        id,
                        state: VmState::Done,
                        ..
                    }) => vec![id],
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        rescan = true;
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            };
            for id in ids {
                let job = {
                    let st = core.read();
                    st.vms.get(&id).and_then(|vm| {
                        let host = st.hosts.get(&vm.last_history()?.hid)?;
                        Some((vm.clone(), host.clone()))
                    })
                };
                let Some((vm, host)) = job else { continue };
                let home = core.settings.data_dir.join(vm.id.to_string());
                let drivers = Arc::clone(&drivers);
                cleanups.spawn(move || {
                    // A normal epilog already ran DELETE (it moved the VM directory, disks.json
                    // and all, away); only leftovers are cleaned here, also on the VM's node.
                    if !leftover(&home) {
                        return;
                    }
                    if let Ok(tm) = drivers.tm(&host.tm_mad) {
                        if let Err(e) = tm.execute(TmOp::Delete, &vm, &host, None) {
                            tracing::warn!(vm = vm.id, error = %e, "cleanup of a finished VM failed");
                        }
                    }
                });
            }
        }
    });
}
