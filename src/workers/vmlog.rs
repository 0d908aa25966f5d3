//! Writes the life-cycle lines of each VM's log (`<vm_log_dir>/<vid>.log`): oned's `New VM
//! state is …` lines, StratusLab's security-audit lines (hooks §12: the ACTIVE line with id,
//! uid and user name, the acquired/released lease lines) and the error that failed a VM. The
//! core decides the lines in the commit that changes the VM's state ([`crate::vmlog::lines_for`])
//! and records them in its outbox; this worker appends them after the commit, in commit
//! order, and replays what a crash left unwritten. Transfer progress is written by the storage
//! drivers themselves.

use crate::core::outbox::{Intent, Lane};
use crate::core::Core;
use crate::vmlog::VmLogDir;
use std::sync::Arc;

/// Entries written per batch (one commit marks them done).
const BATCH: usize = 1024;

pub fn spawn(core: Arc<Core>, log: VmLogDir) {
    tokio::spawn(async move {
        loop {
            core.outbox().wait(Lane::VmLog).await;
            let batch = core.outbox().take(Lane::VmLog, BATCH);
            if batch.is_empty() {
                continue;
            }
            let (c, log) = (Arc::clone(&core), log.clone());
            let written = tokio::task::spawn_blocking(move || {
                let mut ids = Vec::with_capacity(batch.len());
                for p in &batch {
                    if let Intent::VmLog { vm, time, lines } = &p.intent {
                        log.append_lines(*vm, *time, lines, p.replayed);
                    }
                    ids.push(p.id);
                }
                c.intents_done(&ids)
            })
            .await;
            match written {
                Ok(Ok(())) => {}
                // The lines are in the log; their entries stay and are checked again at the
                // next start (fenced, so not written twice).
                Ok(Err(e)) => tracing::error!(error = %e, "VM log entries not marked done"),
                Err(e) => tracing::error!(error = %e, "VM log writer panicked"),
            }
        }
    });
}
