//! The outbox: effects a write decides on — hook runs, VM log lines, moving a saved disk into
//! the image repository — are recorded as intents in the same SQLite transaction as the write
//! (table `outbox`), and carried out after the commit, outside the writer, by bounded
//! workers. A crash between the commit and the effect loses nothing: the rows are read back at
//! start-up and carried out then. Each effect is idempotent or fenced, so carrying one out
//! twice (a crash after the effect, before its row was deleted) is safe:
//!
//! * a hook runs at least once per event; the intent's id is the event id, given to the hook
//!   in `$STRATUSD_EVENT_ID`;
//! * VM log lines carry the commit time; a replayed entry whose lines are already at the end
//!   of the log is not written again;
//! * a saved disk is moved only while its image is still LOCKED; found already at its
//!   destination, the move is done;
//! * the DHCP host file is regenerated whole from the committed leases and renamed into
//!   place, so writing it again is harmless; one `Dhcp` intent per write that changes leases,
//!   and the worker writes once for all the intents it finds queued (the newest state covers
//!   them all);
//! * an image copy into the repository (`one.image.allocate` with a PATH) is run from scratch
//!   into a temporary file that is renamed into place, only while its image is still LOCKED,
//!   with the source checked again at every run; its outcome is committed with the intent
//!   marked done, so a half-written file is never taken for the image;
//! * a driver step (deploy, shutdown, save, migrate, transfer, cleanup, reboot) is fenced by
//!   the VM's STATE/LCM_STATE pair and history sequence it was recorded for: carried out only
//!   while the VM still has them, its outcome committed with the intent marked done, so a
//!   replayed step whose VM moved on is dropped (and each step completes from what the host
//!   already did, `workers::reconcile`).

use crate::model::vm::{LcmState, VmState};
use crate::model::{Oid, Vm};
pub use crate::vmlog::LogLine;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;

/// Id of an intent (the outbox row); never reused.
pub type IntentId = i64;

/// oned's `VM_HOOK` points (`ON=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HookPoint {
    Create,
    Prolog,
    Running,
    Shutdown,
    Stop,
    Done,
    Failed,
}

impl HookPoint {
    pub fn parse(text: &str) -> Option<HookPoint> {
        Some(match text.trim().to_ascii_uppercase().as_str() {
            "CREATE" => HookPoint::Create,
            "PROLOG" => HookPoint::Prolog,
            "RUNNING" => HookPoint::Running,
            "SHUTDOWN" => HookPoint::Shutdown,
            "STOP" => HookPoint::Stop,
            "DONE" => HookPoint::Done,
            "FAILED" => HookPoint::Failed,
            _ => return None,
        })
    }

    /// The hook point a VM reaches when it enters this state pair (3.2 `VirtualMachineHook`).
    pub fn entered(state: VmState, lcm: LcmState, created: bool) -> Option<HookPoint> {
        if created {
            return Some(HookPoint::Create);
        }
        Some(match (state, lcm) {
            (VmState::Active, LcmState::Prolog) => HookPoint::Prolog,
            (VmState::Active, LcmState::Running) => HookPoint::Running,
            (VmState::Active, LcmState::Epilog) => HookPoint::Shutdown,
            (VmState::Stopped, _) => HookPoint::Stop,
            (VmState::Done, _) => HookPoint::Done,
            (VmState::Failed, _) => HookPoint::Failed,
            _ => return None,
        })
    }
}

/// An effect decided by a committed write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "intent", rename_all = "snake_case")]
pub enum Intent {
    /// Run the hooks of `on` for VM `vm`.
    Hook { vm: Oid, on: HookPoint },
    /// Append `lines` to VM `vm`'s log, stamped `time` (the commit's time).
    VmLog {
        vm: Oid,
        time: i64,
        lines: Vec<LogLine>,
    },
    /// Move VM `vm`'s disk `from` to `to` in the repository, making image `image` READY (or
    /// ERROR when there is nothing to move). `moving`: the move was started (committed before
    /// the first byte moved), so a disk gone from `from` after a crash was moved.
    SaveDisk {
        vm: Oid,
        image: Oid,
        from: String,
        to: String,
        #[serde(default)]
        moving: bool,
    },
    /// Remove deleted image `image`'s file `source` from the repository (decided only for a
    /// file inside it). Removing a file already gone is done, so a replay is harmless.
    RemoveImageFile { image: Oid, source: String },
    /// Copy image `image`'s PATH `from` into the repository file `to` (an empty `from`: a new
    /// empty datablock file), making the image READY with its SOURCE and SIZE, or ERROR.
    /// `confined`: the allocating user was not in oneadmin's group, so `from` must be a
    /// regular file under the site's import directories, reached without a symbolic link —
    /// checked again at every run against the settings of that run. Each run starts over into
    /// [`copy_temporary`]`(to)` and renames it to `to`, so a half-written copy is never taken
    /// for the image.
    CopyImage {
        image: Oid,
        from: String,
        to: String,
        confined: bool,
    },
    /// Rewrite the DHCP host file from the committed leases (the write changed which leases
    /// VMs hold).
    Dhcp,
    /// Run the driver step of VM `vm` for the pair `state`/`lcm` and history record `seq`
    /// (the fence: see [`Intent::step_for`]).
    Step {
        vm: Oid,
        state: VmState,
        lcm: LcmState,
        seq: i32,
    },
}

/// The temporary file a copy to `to` writes before renaming it to `to` (`<to>.part`, in the
/// same directory, so the rename is atomic).
pub fn copy_temporary(to: &std::path::Path) -> std::path::PathBuf {
    let mut name = to.as_os_str().to_os_string();
    name.push(".part");
    std::path::PathBuf::from(name)
}

/// Whether a VM in this state waits for a driver step: the transitional LCM states, and a
/// RUNNING VM with a reboot requested. (`workers::lcm` maps each to its driver operation.)
pub fn has_step(vm: &Vm) -> bool {
    use LcmState::*;
    vm.state == VmState::Active
        && match vm.lcm_state {
            Running => vm.reboot_requested,
            Prolog | PrologResume | PrologMigrate | Boot | Migrate | SaveMigrate | SaveStop
            | SaveSuspend | Shutdown | Cancel | Epilog | EpilogStop | Cleanup => true,
            LcmInit | Unknown | Failure => false,
        }
}

fn history_seq(vm: &Vm) -> i32 {
    vm.last_history().map_or(-1, |h| h.seq)
}

impl Intent {
    /// The step `vm` waits for, if it waits for one.
    pub fn step_for(vm: &Vm) -> Option<Intent> {
        has_step(vm).then(|| Intent::Step {
            vm: vm.id,
            state: vm.state,
            lcm: vm.lcm_state,
            seq: history_seq(vm),
        })
    }

    /// For a `Step`: whether `vm` (the VM as committed now) is still the one it was recorded
    /// for; a step whose VM moved on is dropped.
    pub fn fences(&self, vm: Option<&Vm>) -> bool {
        match (self, vm) {
            (Intent::Step { .. }, Some(vm)) => Intent::step_for(vm).as_ref() == Some(self),
            _ => false,
        }
    }
}

/// The workers that carry intents out, one queue each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Hooks,
    VmLog,
    Disks,
    Dhcp,
    Steps,
    /// Image copies into the repository (`workers::copies`).
    Copies,
}

const LANES: usize = 6;

impl Lane {
    const ALL: [Lane; LANES] = [
        Lane::Hooks,
        Lane::VmLog,
        Lane::Disks,
        Lane::Dhcp,
        Lane::Steps,
        Lane::Copies,
    ];

    fn index(self) -> usize {
        match self {
            Lane::Hooks => 0,
            Lane::VmLog => 1,
            Lane::Disks => 2,
            Lane::Dhcp => 3,
            Lane::Steps => 4,
            Lane::Copies => 5,
        }
    }
}

impl Intent {
    pub fn lane(&self) -> Lane {
        match self {
            Intent::Hook { .. } => Lane::Hooks,
            Intent::VmLog { .. } => Lane::VmLog,
            Intent::SaveDisk { .. } | Intent::RemoveImageFile { .. } => Lane::Disks,
            Intent::Dhcp => Lane::Dhcp,
            Intent::Step { .. } => Lane::Steps,
            Intent::CopyImage { .. } => Lane::Copies,
        }
    }
}

/// A committed intent waiting for its worker. `replayed`: read back at start-up (its effect
/// may already have happened before the crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: IntentId,
    pub intent: Intent,
    pub replayed: bool,
}

/// Which effects this daemon records (nothing unless the daemon says so: a core without
/// workers, as in unit tests, records no hook or log intents).
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// Points that have at least one hook.
    pub hook_points: Vec<HookPoint>,
    /// VM log lines are written.
    pub vm_log: bool,
    /// A DHCP host file is kept (writes that change leases record a `Dhcp` intent).
    pub dhcp: bool,
    /// Driver steps are carried out (`workers::lcm`): a write that moves a VM into a state
    /// with a step records a `Step` intent.
    pub steps: bool,
}

/// The committed, not yet carried out intents, by lane, in commit order.
#[derive(Default)]
pub struct Outbox {
    lanes: [Mutex<VecDeque<Pending>>; LANES],
    wake: [tokio::sync::Notify; LANES],
    /// Per lane, the newest intent id queued so far.
    queued_through: [std::sync::atomic::AtomicI64; LANES],
    /// Per lane, the id through which every intent's effect is carried out (set by a worker
    /// that carries its lane out in order; see [`Outbox::carried_through`]).
    carried: Mutex<[IntentId; LANES]>,
    carried_changed: std::sync::Condvar,
}

impl Outbox {
    fn lane(&self, lane: Lane) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        match self.lanes[lane.index()].lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Queues committed intents and wakes their workers.
    pub(crate) fn push(&self, pending: impl IntoIterator<Item = Pending>) {
        let mut woken = [false; LANES];
        for p in pending {
            let lane = p.intent.lane();
            self.queued_through[lane.index()].fetch_max(p.id, std::sync::atomic::Ordering::SeqCst);
            self.lane(lane).push_back(p);
            woken[lane.index()] = true;
        }
        for lane in Lane::ALL {
            if woken[lane.index()] {
                self.wake[lane.index()].notify_one();
            }
        }
    }

    /// Takes up to `max` intents of `lane`, oldest first. Taken intents stay in the database
    /// until [`crate::core::Core::intents_done`]: a crash meanwhile replays them.
    pub fn take(&self, lane: Lane, max: usize) -> Vec<Pending> {
        let mut q = self.lane(lane);
        let n = max.min(q.len());
        q.drain(..n).collect()
    }

    /// Waits until `lane` may have intents (returns at once if some are queued).
    pub async fn wait(&self, lane: Lane) {
        let notified = self.wake[lane.index()].notified();
        if !self.lane(lane).is_empty() {
            return;
        }
        notified.await;
    }

    /// Intents queued in `lane` (not taken).
    pub fn queued(&self, lane: Lane) -> usize {
        self.lane(lane).len()
    }

    /// The newest intent id queued in `lane` so far (0: none). Every write committed before
    /// the caller looked at the state has its intents at or below it.
    pub fn queued_through(&self, lane: Lane) -> IntentId {
        self.queued_through[lane.index()].load(std::sync::atomic::Ordering::SeqCst)
    }

    fn carried(&self) -> std::sync::MutexGuard<'_, [IntentId; LANES]> {
        match self.carried.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A worker that carries `lane` out whole (every intent up to `id` has its effect) says
    /// so, waking [`Outbox::wait_carried`].
    pub fn carried_through(&self, lane: Lane, id: IntentId) {
        let mut carried = self.carried();
        if carried[lane.index()] < id {
            carried[lane.index()] = id;
            self.carried_changed.notify_all();
        }
    }

    /// Blocks (a blocking thread) until every intent of `lane` up to `id` is carried out, or
    /// `timeout` passed; true when they are.
    pub fn wait_carried(&self, lane: Lane, id: IntentId, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut carried = self.carried();
        while carried[lane.index()] < id {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            carried = match self.carried_changed.wait_timeout(carried, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::core::auth::Caller;
    use crate::core::lifecycle::StepOutcome;
    use crate::core::{Core, Error};
    use crate::model::image::ImageState;
    use crate::store::Store;
    use std::path::{Path, PathBuf};

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "stratusd-outbox-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A core over the database in `dir`, as a daemon with a CREATE hook and VM logs opens it.
    fn open(dir: &Path) -> Core {
        let settings = Settings {
            data_dir: dir.to_path_buf(),
            ..Settings::default()
        };
        let store = Store::open(&settings.database_path()).unwrap();
        let mut core = Core::open(store, settings, "password").unwrap();
        core.set_effects(Effects {
            hook_points: vec![HookPoint::Create, HookPoint::Done],
            vm_log: true,
            dhcp: false,
            steps: false,
        });
        core
    }

    fn all(core: &Core, lane: Lane) -> Vec<Pending> {
        core.outbox().take(lane, usize::MAX)
    }

    #[test]
    fn effects_are_committed_with_the_change_and_replayed_until_done() {
        let dir = temp_dir("replay");
        let core = open(&dir);
        let id = core
            .vm_allocate(&Caller::oneadmin(), "NAME=a\nMEMORY=64\nCPU=0.1")
            .unwrap();
        let hooks = all(&core, Lane::Hooks);
        assert_eq!(
            hooks.iter().map(|p| &p.intent).collect::<Vec<_>>(),
            [&Intent::Hook {
                vm: id,
                on: HookPoint::Create
            }]
        );
        assert!(!hooks[0].replayed);
        let logs = all(&core, Lane::VmLog);
        let Some(Intent::VmLog { vm, lines, .. }) = logs.first().map(|p| &p.intent) else {
            panic!("no VM log entry: {logs:?}");
        };
        assert_eq!(*vm, id);
        assert_eq!(lines[0].text, "New VM state is PENDING");
        // Taken but not done when the daemon dies: the next start has them again.
        drop(core);
        let core = open(&dir);
        let replayed = all(&core, Lane::Hooks);
        assert_eq!(replayed.len(), 1);
        assert_eq!(replayed[0].id, hooks[0].id);
        assert!(replayed[0].replayed);
        let replayed_logs = all(&core, Lane::VmLog);
        assert_eq!(replayed_logs.len(), 1);
        core.intents_done(&[replayed[0].id, replayed_logs[0].id])
            .unwrap();
        // New entries never reuse an id, even once the table is empty.
        let second = core
            .vm_allocate(&Caller::oneadmin(), "NAME=b\nMEMORY=64\nCPU=0.1")
            .unwrap();
        let next = all(&core, Lane::Hooks);
        assert!(next[0].id > replayed_logs[0].id.max(replayed[0].id));
        core.intents_done(&[next[0].id]).unwrap();
        drop(core);
        let core = open(&dir);
        // Only the second VM's log entry is still to be written.
        assert!(all(&core, Lane::Hooks).is_empty());
        let left = all(&core, Lane::VmLog);
        assert_eq!(left.len(), 1);
        assert!(matches!(left[0].intent, Intent::VmLog { vm, .. } if vm == second));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failed_write_records_no_effect() {
        let dir = temp_dir("failed");
        let core = open(&dir);
        let before = core.store_fingerprint().unwrap();
        let r: crate::core::Result<()> = core.write(|_, tx| {
            tx.intend(Intent::Hook {
                vm: 0,
                on: HookPoint::Create,
            });
            Err(Error::WrongState)
        });
        assert!(r.is_err());
        assert_eq!(core.outbox().queued(Lane::Hooks), 0);
        drop(core);
        let core = open(&dir);
        assert_eq!(core.outbox().queued(Lane::Hooks), 0);
        assert_eq!(core.store_fingerprint().unwrap(), before);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn steps(core: &Core) -> Vec<Pending> {
        all(core, Lane::Steps)
    }

    fn step(vm: Oid, lcm: LcmState, seq: i32) -> Intent {
        Intent::Step {
            vm,
            state: VmState::Active,
            lcm,
            seq,
        }
    }

    #[test]
    fn a_driver_step_is_an_intent_done_with_its_outcome_and_dropped_once_moot() {
        let dir = temp_dir("steps");
        let mut core = open(&dir);
        core.set_effects(Effects {
            steps: true,
            ..Effects::default()
        });
        let admin = Caller::oneadmin();
        let host = core
            .host_allocate(&admin, "h", "im_dummy", "vmm_dummy", "dummy", "tm_dummy")
            .unwrap();
        let vm = core
            .vm_allocate(&admin, "NAME=s\nMEMORY=64\nCPU=0.1")
            .unwrap();
        assert!(steps(&core).is_empty(), "PENDING waits for no driver");
        core.vm_deploy(&admin, vm, host).unwrap();
        let prolog = steps(&core);
        assert_eq!(prolog.len(), 1);
        assert_eq!(prolog[0].intent, step(vm, LcmState::Prolog, 0));
        // Its outcome commits with the intent done, and the next step's intent.
        let ok = || StepOutcome::Ok { deploy_id: None };
        core.step_carried_out(prolog[0].id, &prolog[0].intent, ok())
            .unwrap();
        let boot = steps(&core);
        assert_eq!(boot.len(), 1);
        assert_eq!(boot[0].intent, step(vm, LcmState::Boot, 0));
        core.step_carried_out(boot[0].id, &boot[0].intent, ok())
            .unwrap();
        assert!(steps(&core).is_empty(), "RUNNING waits for no driver");
        // A reboot is a step of a RUNNING VM; a second request while it waits is the same.
        core.vm_action(&admin, "reboot", vm).unwrap();
        core.vm_action(&admin, "reboot", vm).unwrap();
        let reboot = steps(&core);
        assert_eq!(reboot.len(), 1);
        assert_eq!(reboot[0].intent, step(vm, LcmState::Running, 0));
        // Killed before the reboot ran: replayed at the next start.
        drop(core);
        let mut core = open(&dir);
        core.set_effects(Effects {
            steps: true,
            ..Effects::default()
        });
        let replayed = steps(&core);
        assert_eq!(replayed.len(), 1);
        assert!(replayed[0].replayed);
        // The VM moved on (a shutdown) before the reboot ran: the reboot is moot, and
        // carrying it out only marks it done.
        core.vm_action(&admin, "shutdown", vm).unwrap();
        let shutdown = steps(&core);
        assert_eq!(shutdown.len(), 1);
        assert!(!replayed[0].intent.fences(core.read().vms.get(&vm)));
        core.step_carried_out(replayed[0].id, &replayed[0].intent, ok())
            .unwrap();
        assert_eq!(core.read().vms[&vm].lcm_state, LcmState::Shutdown);
        assert!(shutdown[0].intent.fences(core.read().vms.get(&vm)));
        drop(core);
        // Only the shutdown is left to carry out.
        let core = open(&dir);
        let left = steps(&core);
        assert_eq!(
            left.iter().map(|p| &p.intent).collect::<Vec<_>>(),
            [&step(vm, LcmState::Shutdown, 0)]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A VM with one disk, running on a simulated host, its disk 0 to be saved as a new image.
    fn running_vm_saving_its_disk(core: &Core) -> (i32, i32) {
        let admin = Caller::oneadmin();
        let host = core
            .host_allocate(&admin, "h", "im_dummy", "vmm_dummy", "dummy", "tm_dummy")
            .unwrap();
        let vm = core
            .vm_allocate(
                &admin,
                "NAME=s\nMEMORY=64\nCPU=0.1\nDISK=[SOURCE=\"/nonexistent/disk.img\",TARGET=hda]",
            )
            .unwrap();
        core.vm_deploy(&admin, vm, host).unwrap();
        for from in [LcmState::Prolog, LcmState::Boot] {
            core.step_done(
                vm,
                (VmState::Active, from),
                StepOutcome::Ok { deploy_id: None },
            )
            .unwrap();
        }
        let image = core.vm_savedisk(&admin, vm, 0, "saved", "").unwrap();
        core.vm_action(&admin, "shutdown", vm).unwrap();
        core.step_done(
            vm,
            (VmState::Active, LcmState::Shutdown),
            StepOutcome::Ok { deploy_id: None },
        )
        .unwrap();
        (vm, image)
    }

    #[test]
    fn the_epilog_moves_the_saved_disk_after_its_commit() {
        let dir = temp_dir("savedisk");
        let core = open(&dir);
        let (vm, image) = running_vm_saving_its_disk(&core);
        let disk = dir.join(format!("{vm}/disk.0"));
        std::fs::create_dir_all(disk.parent().unwrap()).unwrap();
        std::fs::write(&disk, b"guest data").unwrap();
        core.step_done(
            vm,
            (VmState::Active, LcmState::Epilog),
            StepOutcome::Ok { deploy_id: None },
        )
        .unwrap();
        let img = core.read().images[&image].clone();
        assert_eq!(img.state, ImageState::Ready);
        assert_eq!(std::fs::read(&img.source).unwrap(), b"guest data");
        assert!(!disk.exists());
        assert_eq!(core.read().vms[&vm].state, VmState::Done);
        assert_eq!(core.outbox().queued(Lane::Disks), 0);
        drop(core);
        // Nothing is left to replay.
        let core = open(&dir);
        assert_eq!(core.outbox().queued(Lane::Disks), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Leaves `intent` in the outbox table of the database in `dir` (no daemon open), as a
    /// daemon killed after committing it and before carrying it out would have.
    fn leave_in_outbox(dir: &Path, id: IntentId, intent: &Intent) {
        let settings = Settings {
            data_dir: dir.to_path_buf(),
            ..Settings::default()
        };
        let conn = rusqlite::Connection::open(settings.database_path()).unwrap();
        conn.execute(
            "INSERT OR REPLACE INTO outbox (id, body) VALUES (?1, ?2)",
            rusqlite::params![id, serde_json::to_string(intent).unwrap()],
        )
        .unwrap();
    }

    #[test]
    fn a_disk_move_interrupted_by_a_crash_completes_at_the_next_start() {
        let dir = temp_dir("savedisk-crash");
        let core = open(&dir);
        let (vm, image) = running_vm_saving_its_disk(&core);
        let disk = dir.join(format!("{vm}/disk.0"));
        std::fs::create_dir_all(disk.parent().unwrap()).unwrap();
        std::fs::write(&disk, b"guest data").unwrap();
        let to = core
            .settings
            .image_repo_dir()
            .join(crate::core::images::repository_name(image));
        let save = |moving| Intent::SaveDisk {
            vm,
            image,
            from: disk.to_string_lossy().to_string(),
            to: to.to_string_lossy().to_string(),
            moving,
        };
        let lock = |core: &Core| {
            core.write(|state, tx| {
                let mut img = state.images[&image].clone();
                img.state = ImageState::Locked;
                img.source = "-".into();
                tx.put(crate::core::Change::Image(img));
                Ok(())
            })
            .unwrap();
        };
        // The commit of the VM's end, then the daemon dies before the move.
        drop(core);
        leave_in_outbox(&dir, 1000, &save(false));
        let core = open(&dir);
        assert_eq!(core.read().images[&image].state, ImageState::Locked);
        assert_eq!(core.carry_out_disk_intents(), 1);
        assert_eq!(core.read().images[&image].state, ImageState::Ready);
        assert_eq!(std::fs::read(&to).unwrap(), b"guest data");
        // The move started (the entry was marked moving) and the disk moved, then the daemon
        // was killed before the outcome was committed: the disk gone from the VM directory
        // means it was moved.
        lock(&core);
        drop(core);
        leave_in_outbox(&dir, 1001, &save(true));
        let core = open(&dir);
        assert_eq!(core.carry_out_disk_intents(), 1);
        let img = core.read().images[&image].clone();
        assert_eq!(img.state, ImageState::Ready);
        assert_eq!(img.source, to.to_string_lossy());
        assert_eq!(std::fs::read(&to).unwrap(), b"guest data");
        // Never started and no disk to move (a transfer driver that leaves none): ERROR, as
        // 3.2 — even though the destination exists (a persistent image's SOURCE does).
        lock(&core);
        drop(core);
        leave_in_outbox(&dir, 1002, &save(false));
        let core = open(&dir);
        assert_eq!(core.carry_out_disk_intents(), 1);
        let img = core.read().images[&image].clone();
        assert_eq!(img.state, ImageState::Error);
        assert!(img
            .template
            .to_xml()
            .contains("Error saving image to the repository: Could not move"));
        drop(core);
        assert_eq!(open(&dir).outbox().queued(Lane::Disks), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A deleted image's file goes after the commit that deleted the image, before the call
    /// answers; a daemon killed in between removes it at the next start.
    #[test]
    fn a_deleted_images_file_goes_after_the_commit_and_after_a_crash() {
        let dir = temp_dir("image-delete");
        let core = open(&dir);
        let admin = crate::core::auth::Caller::oneadmin();
        let repo = core.settings.image_repo_dir();
        std::fs::create_dir_all(&repo).unwrap();
        let image_with_file = |core: &Core, name: &str| {
            let id = core
                .image_allocate(
                    &admin,
                    &format!("NAME = {name}\nTYPE = DATABLOCK\nSIZE = 1\nFSTYPE = raw\n"),
                )
                .unwrap();
            assert_eq!(core.carry_out_copy_intents(), 1);
            let source = core.read().images[&id].source.clone();
            assert!(std::path::Path::new(&source).exists(), "{source}");
            (id, source)
        };
        let (first, source) = image_with_file(&core, "first");
        core.image_delete(&admin, first).unwrap();
        assert!(!std::path::Path::new(&source).exists());
        assert_eq!(core.outbox().queued(Lane::Disks), 0);
        // Killed after the commit, before the file went: the next start removes it.
        let (second, source) = image_with_file(&core, "second");
        core.write(|_, tx| {
            tx.delete(crate::model::Kind::Image, second);
            Ok(())
        })
        .unwrap();
        drop(core);
        leave_in_outbox(
            &dir,
            1000,
            &Intent::RemoveImageFile {
                image: second,
                source: source.clone(),
            },
        );
        let core = open(&dir);
        assert!(std::path::Path::new(&source).exists());
        assert_eq!(core.carry_out_disk_intents(), 1);
        assert!(!std::path::Path::new(&source).exists());
        // Carried out again (killed before its done was committed): nothing to do, done.
        drop(core);
        leave_in_outbox(
            &dir,
            1001,
            &Intent::RemoveImageFile {
                image: second,
                source,
            },
        );
        let core = open(&dir);
        assert_eq!(core.carry_out_disk_intents(), 1);
        drop(core);
        assert_eq!(open(&dir).outbox().queued(Lane::Disks), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A core over the database in `dir` whose users may import images from `dir/import`.
    fn open_importing(dir: &Path) -> Core {
        let settings = Settings {
            data_dir: dir.to_path_buf(),
            image_import_dirs: vec![dir.join("import")],
            ..Settings::default()
        };
        let store = Store::open(&settings.database_path()).unwrap();
        Core::open(store, settings, "password").unwrap()
    }

    fn copies(core: &Core) -> Vec<Pending> {
        all(core, Lane::Copies)
    }

    fn repository_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("images"))
            .map(|it| {
                it.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// `one.image.allocate`'s copy is an intent committed with the LOCKED image; a daemon
    /// killed mid-copy runs it again from scratch at the next start (its half-written
    /// temporary file removed), twice is harmless, a copy whose image went is dropped, and
    /// the replay checks the source and the destination again.
    #[test]
    fn an_image_copy_is_an_intent_run_again_after_a_crash_and_dropped_once_moot() {
        let dir = temp_dir("image-copy");
        let import = dir.join("import");
        std::fs::create_dir_all(&import).unwrap();
        let bytes: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(import.join("a.img"), &bytes).unwrap();
        let core = open_importing(&dir);
        let admin = Caller::oneadmin();
        core.user_allocate(&admin, "alice", "pw", "").unwrap();
        let alice = core.authenticate("alice:pw").unwrap();
        let allocate = |core: &Core, name: &str, path: &Path| {
            core.image_allocate(
                &alice,
                &format!("NAME = {name}\nPATH = \"{}\"\n", path.display()),
            )
            .unwrap()
        };
        let a = allocate(&core, "a", &import.join("a.img"));
        assert_eq!(core.read().images[&a].state, ImageState::Locked);
        let recorded = copies(&core);
        let [copy] = recorded.as_slice() else {
            panic!("one copy intent expected: {recorded:?}");
        };
        let Intent::CopyImage {
            image,
            from,
            to,
            confined,
        } = &copy.intent
        else {
            panic!("{copy:?}");
        };
        assert_eq!(
            (*image, from.as_str(), *confined),
            (a, import.join("a.img").to_str().unwrap(), true)
        );
        let to = PathBuf::from(to);
        assert_eq!(to.parent(), Some(dir.join("images").as_path()));
        // Killed mid-copy: a half-written temporary file, the image LOCKED, the intent left.
        drop(core);
        std::fs::create_dir_all(dir.join("images")).unwrap();
        std::fs::write(copy_temporary(&to), &bytes[..1000]).unwrap();
        let core = open_importing(&dir);
        assert_eq!(core.read().images[&a].state, ImageState::Locked);
        assert_eq!(core.remove_copy_temporaries(), 1);
        assert!(repository_files(&dir).is_empty());
        assert_eq!(core.carry_out_copy_intents(), 1);
        let img = core.read().images[&a].clone();
        assert_eq!(img.state, ImageState::Ready);
        assert_eq!(img.source, to.to_string_lossy());
        assert_eq!(img.size, 3);
        assert_eq!(std::fs::read(&to).unwrap(), bytes);
        assert_eq!(repository_files(&dir).len(), 1);
        // Killed after the copy's commit but with its intent replayed anyway (twice): the image
        // is no longer LOCKED, so the copy is dropped and nothing changes.
        drop(core);
        leave_in_outbox(&dir, 1000, &copy.intent);
        std::fs::write(copy_temporary(&to), b"half").unwrap();
        let core = open_importing(&dir);
        assert_eq!(core.carry_out_copy_intents(), 1);
        let mut same = String::new();
        img.write_xml(&mut same);
        let mut now = String::new();
        core.read().images[&a].write_xml(&mut now);
        assert_eq!(now, same);
        assert_eq!(std::fs::read(&to).unwrap(), bytes);
        assert!(!copy_temporary(&to).exists());
        // Deleted (LOCKED) before its copy ran: the copy is dropped, no file is made.
        let b = allocate(&core, "b", &import.join("a.img"));
        let [copy_b] = copies(&core).try_into().unwrap();
        core.image_delete(&alice, b).unwrap();
        core.carry_out_copy(&copy_b).unwrap();
        assert_eq!(repository_files(&dir).len(), 1);
        // Deleted while its copy ran: the copied file goes after the outcome's commit.
        let c = allocate(&core, "c", &import.join("a.img"));
        let [copy_c] = copies(&core).try_into().unwrap();
        let Intent::CopyImage { from, to: to_c, .. } = copy_c.intent.clone() else {
            panic!()
        };
        std::fs::write(&to_c, &bytes).unwrap();
        core.image_delete(&alice, c).unwrap();
        core.execute(crate::core::Command::ImageCopied {
            intent: copy_c.id,
            image: c,
            from,
            to: to_c.clone(),
            outcome: Ok(bytes.len() as u64),
        })
        .unwrap();
        assert!(!Path::new(&to_c).exists());
        assert_eq!(repository_files(&dir).len(), 1);
        // The replay checks the source again: a.img replaced by a link to a file outside the
        // import directory meanwhile is refused (ERROR), and nothing of it is copied.
        let d = allocate(&core, "d", &import.join("a.img"));
        drop(core);
        std::fs::write(dir.join("secret"), b"SECRET").unwrap();
        std::fs::remove_file(import.join("a.img")).unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), import.join("a.img")).unwrap();
        let core = open_importing(&dir);
        assert_eq!(core.carry_out_copy_intents(), 1);
        let img = core.read().images[&d].clone();
        assert_eq!(img.state, ImageState::Error);
        assert!(img
            .template
            .to_xml()
            .contains("Error copying image in the repository"));
        // And the destination: an entry rewritten to name a file outside the repository
        // writes nothing there.
        std::fs::remove_file(import.join("a.img")).unwrap();
        std::fs::write(import.join("a.img"), &bytes).unwrap();
        let e = allocate(&core, "e", &import.join("a.img"));
        let [copy_e] = copies(&core).try_into().unwrap();
        drop(core);
        let Intent::CopyImage { from, confined, .. } = copy_e.intent else {
            panic!()
        };
        let outside = dir.join("outside.img");
        leave_in_outbox(
            &dir,
            copy_e.id,
            &Intent::CopyImage {
                image: e,
                from,
                to: outside.to_string_lossy().to_string(),
                confined,
            },
        );
        let core = open_importing(&dir);
        assert_eq!(core.carry_out_copy_intents(), 1);
        assert_eq!(core.read().images[&e].state, ImageState::Error);
        assert!(!outside.exists());
        assert_eq!(repository_files(&dir).len(), 1);
        drop(core);
        assert_eq!(open_importing(&dir).outbox().queued(Lane::Copies), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
