//! Keeps the DHCP host file (`net::dhcp`) in step with the leases. Every write that changes
//! which leases VMs hold records one `Dhcp` intent in its own commit (`core::outbox`); this
//! worker carries them out after the commit, outside the writer lock, one file write at a
//! time: it takes every intent queued, reads the committed leases (which include all of
//! theirs), writes the whole file atomically and marks them all done in one commit. A crash
//! before that commit leaves the intents in the outbox; the next start writes the file again
//! (the same leases give the same file, so the replay is harmless).
//!
//! The file is written after the call that changed the leases has answered. What must see it
//! first waits for it explicitly: a guest is booted only once the file lists the leases
//! committed before its step ([`wait_before_boot`], called by `workers::lcm`).

use crate::core::outbox::{Lane, Pending};
use crate::core::Core;
use crate::net::dhcp::DhcpHostsFile;
use std::sync::Arc;
use std::time::Duration;

/// How long a file that could not be written waits before it is tried again (new lease
/// changes try at once).
const RETRY: Duration = Duration::from_secs(5);

/// How long a boot waits for the DHCP file to list the leases committed before it. Past that
/// (the file cannot be written: a log line says why every time) the guest boots anyway and
/// gets its address once the file is written.
const BOOT_WAIT: Duration = Duration::from_secs(10);

/// The intents taken but not yet carried out, and whether the file on disk may lag behind
/// the leases (its last write failed).
#[derive(Debug, Default)]
pub struct Unwritten {
    intents: Vec<Pending>,
    stale: bool,
}

/// Takes the queued intents and, if there are any (or the file is stale), writes the file
/// from the committed leases, then marks the intents done.
fn pass(core: &Core, file: &DhcpHostsFile, unwritten: &mut Unwritten) {
    unwritten
        .intents
        .extend(core.outbox().take(Lane::Dhcp, usize::MAX));
    if unwritten.intents.is_empty() && !unwritten.stale {
        return;
    }
    // Every intent queued so far was queued after its commit was applied to the state read
    // next, so the file written from that state carries them all out.
    let through = core.outbox().queued_through(Lane::Dhcp);
    let leases = core.held_leases();
    match file.write(&leases) {
        Ok(()) => {
            unwritten.stale = false;
            core.outbox().carried_through(Lane::Dhcp, through);
            let ids: Vec<_> = unwritten.intents.drain(..).map(|p| p.id).collect();
            if let Err(e) = core.intents_done(&ids) {
                // The file is right; the entries are carried out again at the next start.
                tracing::error!(error = %e, "DHCP intents not marked done");
            }
        }
        Err(e) => {
            unwritten.stale = true;
            tracing::error!(error = %e, "DHCP host file not updated; retrying");
        }
    }
}

/// The start-up write (before the daemon serves): the file is written from the leases
/// whether or not intents were left, since leases may have changed while the daemon was down
/// (an import) or the file may be lost; the intents a crash left are marked done with it.
pub fn write_at_start(core: &Core, file: &DhcpHostsFile) -> Unwritten {
    let mut unwritten = Unwritten {
        intents: Vec::new(),
        stale: true,
    };
    pass(core, file, &mut unwritten);
    if !unwritten.stale {
        tracing::info!(file = %file.path().display(), "DHCP host file written");
    }
    unwritten
}

/// Starts the worker on the tokio runtime; the writes run on the blocking pool, one at a
/// time.
pub fn spawn(core: Arc<Core>, file: Arc<DhcpHostsFile>, mut unwritten: Unwritten) {
    tokio::spawn(async move {
        loop {
            if unwritten.stale {
                tokio::select! {
                    _ = core.outbox().wait(Lane::Dhcp) => {}
                    _ = tokio::time::sleep(RETRY) => {}
                }
            } else {
                core.outbox().wait(Lane::Dhcp).await;
            }
            let (c, f) = (Arc::clone(&core), Arc::clone(&file));
            unwritten = match tokio::task::spawn_blocking(move || {
                pass(&c, &f, &mut unwritten);
                unwritten
            })
            .await
            {
                Ok(u) => u,
                Err(e) => {
                    // The intents it held stay in the database; the file is written again
                    // from the leases at the next pass.
                    tracing::error!(error = %e, "DHCP host file writer panicked");
                    Unwritten {
                        intents: Vec::new(),
                        stale: true,
                    }
                }
            };
        }
    });
}

/// Called on a blocking thread before a guest boots: waits until the DHCP file lists every
/// lease committed so far (at once when no file is kept), at most [`BOOT_WAIT`].
pub fn wait_before_boot(core: &Core, vm: crate::model::Oid) {
    let through = core.outbox().queued_through(Lane::Dhcp);
    if !core.outbox().wait_carried(Lane::Dhcp, through, BOOT_WAIT) {
        tracing::warn!(
            vm,
            "the DHCP host file does not list the VM's leases yet; booting it anyway"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::core::auth::Caller;
    use crate::core::outbox::{Effects, Intent};
    use crate::net::dhcp::DhcpFormat;
    use crate::store::Store;
    use std::path::{Path, PathBuf};

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "stratusd-dhcp-worker-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn open(dir: &Path) -> Core {
        let settings = Settings {
            data_dir: dir.to_path_buf(),
            ..Settings::default()
        };
        let store = Store::open(&settings.database_path()).unwrap();
        let mut core = Core::open(store, settings, "password").unwrap();
        core.set_effects(Effects {
            dhcp: true,
            ..Effects::default()
        });
        core
    }

    const NET: &str = "NAME = pub\nTYPE = FIXED\nBRIDGE = br0\n\
        LEASES = [ IP = 192.168.1.1 ]\nLEASES = [ IP = 192.168.1.2 ]\n";

    fn vm_with_nic(core: &Core) -> i32 {
        core.vm_allocate(
            &Caller::oneadmin(),
            "NAME=a\nMEMORY=64\nCPU=0.1\nNIC=[NETWORK=pub]\nNIC=[NETWORK=pub]",
        )
        .unwrap()
    }

    #[test]
    fn a_lease_change_is_one_intent_and_the_file_follows_after_a_crash() {
        let dir = temp_dir("intent");
        let core = open(&dir);
        let admin = Caller::oneadmin();
        core.vn_allocate(&admin, NET).unwrap();
        // A network without leases held by VMs: nothing for the file.
        assert_eq!(core.outbox().queued(Lane::Dhcp), 0);
        // Two leases taken in one write: one intent.
        let vm = vm_with_nic(&core);
        let queued = core.outbox().take(Lane::Dhcp, usize::MAX);
        assert_eq!(
            queued.iter().map(|p| &p.intent).collect::<Vec<_>>(),
            [&Intent::Dhcp]
        );
        // A write that changes no lease records none.
        core.vm_action(&admin, "hold", vm).unwrap();
        assert_eq!(core.outbox().queued(Lane::Dhcp), 0);
        // Killed before the worker wrote the file: the next start writes it and marks the
        // intent done.
        drop(core);
        let core = open(&dir);
        assert_eq!(core.outbox().queued(Lane::Dhcp), 1);
        let file = DhcpHostsFile::new(dir.join("hosts"), DhcpFormat::Dnsmasq);
        let left = write_at_start(&core, &file);
        assert!(left.intents.is_empty() && !left.stale);
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(text.contains(&format!(",192.168.1.1,one-{vm}\n")), "{text}");
        assert!(
            text.contains(&format!(",192.168.1.2,one-{vm}-1\n")),
            "{text}"
        );
        // The boot fence is open: everything queued is carried out.
        assert!(core.outbox().wait_carried(
            Lane::Dhcp,
            core.outbox().queued_through(Lane::Dhcp),
            Duration::ZERO
        ));
        drop(core);
        let core = open(&dir);
        assert_eq!(core.outbox().queued(Lane::Dhcp), 0);
        // Giving the leases back is a change too; a file that cannot be written keeps its
        // intents until it can.
        core.vm_action(&admin, "finalize", vm).unwrap();
        let bad = DhcpHostsFile::new(dir.join("missing").join("hosts"), DhcpFormat::Dnsmasq);
        let mut unwritten = Unwritten::default();
        pass(&core, &bad, &mut unwritten);
        assert!(unwritten.stale);
        assert_eq!(unwritten.intents.len(), 1);
        assert!(!core.outbox().wait_carried(
            Lane::Dhcp,
            core.outbox().queued_through(Lane::Dhcp),
            Duration::ZERO
        ));
        pass(&core, &file, &mut unwritten);
        assert!(!unwritten.stale && unwritten.intents.is_empty());
        assert!(!std::fs::read_to_string(file.path())
            .unwrap()
            .contains("192.168.1"));
        drop(core);
        assert_eq!(open(&dir).outbox().queued(Lane::Dhcp), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
