//! VM hooks as oned's `VM_HOOK`: a command run when a VM enters a state (CREATE, PROLOG,
//! RUNNING, SHUTDOWN, STOP, DONE, FAILED), with `$VMID` and `$TEMPLATE` (base64 of the VM
//! document) substituted in its arguments. The core records each event in its outbox in the
//! commit of the change; hooks run after it, in the background: their outcome is logged and
//! never blocks or changes the life cycle.

use crate::core::outbox::{Intent, IntentId, Lane};
use crate::core::Core;
use crate::model::Oid;
use base64::Engine;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One `[[vm_hook]]` of the config file (the attributes of oned's `VM_HOOK` vector).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct HookConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub on: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub arguments: String,
    /// `YES` runs the command on the VM's host over ssh.
    #[serde(default)]
    pub remote: String,
}

/// The hook points (oned's `ON=`), decided by the core in the commit of the change.
pub use crate::core::outbox::HookPoint as HookOn;

#[derive(Debug, Clone)]
pub struct Hook {
    pub name: String,
    pub on: HookOn,
    pub command: PathBuf,
    pub arguments: String,
    pub remote: bool,
}

/// Validates the configured hooks with oned's warnings; relative commands are looked up in
/// `hooks_dir` (oned's `<remotes>/hooks/`).
pub fn load(configs: &[HookConfig], hooks_dir: &Path) -> Vec<Hook> {
    let mut hooks = Vec::new();
    for c in configs {
        if c.on.trim().is_empty() || c.command.trim().is_empty() {
            tracing::warn!("Empty ON or COMMAND attribute in VM_HOOK. Hook not registered!");
            continue;
        }
        let Some(on) = HookOn::parse(&c.on) else {
            // (sic) oned's spelling.
            tracing::warn!(
                "Unkown VM_HOOK {}. Hook not registered!",
                c.on.trim().to_ascii_uppercase()
            );
            continue;
        };
        let command = PathBuf::from(c.command.trim());
        let command = if command.is_absolute() {
            command
        } else {
            hooks_dir.join(command)
        };
        let name = if c.name.is_empty() {
            c.command.clone()
        } else {
            c.name.clone()
        };
        hooks.push(Hook {
            name,
            on,
            command,
            arguments: c.arguments.clone(),
            remote: c.remote.eq_ignore_ascii_case("yes"),
        });
    }
    hooks
}

/// `$VMID` and `$TEMPLATE`, only their first occurrence, as 3.2 replaced them.
pub fn substitute(arguments: &str, vmid: Oid, template_b64: impl FnOnce() -> String) -> String {
    let mut out = arguments.replacen("$VMID", &vmid.to_string(), 1);
    if out.contains("$TEMPLATE") {
        out = out.replacen("$TEMPLATE", &template_b64(), 1);
    }
    out
}

/// Hook processes running at once: a burst of events queues in the outbox, not in processes.
const CONCURRENT_HOOKS: usize = 8;
/// Events taken from the outbox at a time (one commit marks them done).
const BATCH: usize = 256;

async fn run(hook: Hook, vmid: Oid, event: IntentId, args: String, host: Option<String>) {
    let argv: Vec<&str> = args.split_whitespace().collect();
    let mut cmd = if hook.remote {
        let Some(host) = host else {
            // Remote hooks run only for VMs that have a host.
            return;
        };
        let mut c = tokio::process::Command::new("ssh");
        c.arg("-o")
            .arg("BatchMode=yes")
            // A host name is never read as an option.
            .arg("--")
            .arg(host)
            .arg(format!("STRATUSD_EVENT_ID={event}"))
            .arg(&hook.command)
            .args(&argv);
        c
    } else {
        let mut c = tokio::process::Command::new(&hook.command);
        c.args(&argv);
        c
    };
    cmd.env("STRATUSD_EVENT_ID", event.to_string())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    match cmd.output().await {
        Ok(out) if out.status.success() => {
            tracing::info!(vm = vmid, event, hook = %hook.name, "EXECUTE SUCCESS {vmid} {}: {}", hook.name, String::from_utf8_lossy(&out.stdout).trim());
        }
        Ok(out) => {
            tracing::warn!(vm = vmid, event, hook = %hook.name, status = ?out.status.code(), "EXECUTE FAILURE {vmid} {}: {}", hook.name, String::from_utf8_lossy(&out.stderr).trim());
        }
        Err(e) => {
            tracing::warn!(vm = vmid, event, hook = %hook.name, "EXECUTE FAILURE {vmid} {}: {e}", hook.name)
        }
    }
}

/// Runs the hooks of the events the core recorded in its outbox (at least once per event:
/// an event is marked done only after its hooks ran, so a crash runs them again at the next
/// start), at most [`CONCURRENT_HOOKS`] processes at a time. The event's id is in the hook's
/// environment as `STRATUSD_EVENT_ID` (oned had none; a hook that must act once can use it).
pub fn spawn(core: Arc<Core>, hooks: Vec<Hook>) {
    tokio::spawn(async move {
        let hooks = Arc::new(hooks);
        loop {
            core.outbox().wait(Lane::Hooks).await;
            let batch = core.outbox().take(Lane::Hooks, BATCH);
            if batch.is_empty() {
                continue;
            }
            let mut ids = Vec::with_capacity(batch.len());
            let mut running = tokio::task::JoinSet::new();
            for p in batch {
                ids.push(p.id);
                let Intent::Hook { vm: id, on } = p.intent else {
                    continue;
                };
                let (doc, host) = {
                    let st = core.read();
                    let Some(vm) = st.vms.get(&id) else { continue };
                    let mut doc = String::new();
                    vm.write_xml(&mut doc, true);
                    (doc, vm.last_history().map(|h| h.hostname.clone()))
                };
                for hook in hooks.iter().filter(|h| h.on == on) {
                    let args = substitute(&hook.arguments, id, || {
                        base64::engine::general_purpose::STANDARD.encode(&doc)
                    });
                    while running.len() >= CONCURRENT_HOOKS {
                        running.join_next().await;
                    }
                    running.spawn(run(hook.clone(), id, p.id, args, host.clone()));
                }
            }
            while running.join_next().await.is_some() {}
            let c = Arc::clone(&core);
            match tokio::task::spawn_blocking(move || c.intents_done(&ids)).await {
                Ok(Ok(())) => {}
                // They run again at the next start: at least once.
                Ok(Err(e)) => tracing::error!(error = %e, "hook events not marked done"),
                Err(e) => tracing::error!(error = %e, "marking hook events done panicked"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::vm::{LcmState, VmState};

    #[test]
    fn only_first_occurrence_is_replaced() {
        assert_eq!(
            substitute("$VMID $VMID $TEMPLATE", 7, || "T".into()),
            "7 $VMID T"
        );
        assert_eq!(substitute("none", 7, || panic!("not needed")), "none");
    }

    #[test]
    fn invalid_hooks_are_not_registered() {
        let cfg = |on: &str, cmd: &str| HookConfig {
            name: String::new(),
            on: on.into(),
            command: cmd.into(),
            arguments: String::new(),
            remote: String::new(),
        };
        let hooks = load(
            &[
                cfg("", "x"),
                cfg("RUNNING", ""),
                cfg("BOGUS", "x"),
                cfg("running", "notify.sh"),
                cfg("DONE", "/bin/true"),
            ],
            Path::new("/hooks"),
        );
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[0].on, HookOn::Running);
        assert_eq!(hooks[0].command, PathBuf::from("/hooks/notify.sh"));
        assert_eq!(hooks[0].name, "notify.sh");
        assert_eq!(hooks[1].command, PathBuf::from("/bin/true"));
    }

    #[test]
    fn hook_points() {
        assert_eq!(
            HookOn::entered(VmState::Pending, LcmState::LcmInit, true),
            Some(HookOn::Create)
        );
        assert_eq!(
            HookOn::entered(VmState::Active, LcmState::Epilog, false),
            Some(HookOn::Shutdown)
        );
        assert_eq!(
            HookOn::entered(VmState::Active, LcmState::Boot, false),
            None
        );
    }
}
