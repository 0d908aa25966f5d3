//! The core: the in-memory pools (served to readers without touching SQLite), the single
//! writer that persists every change in one SQLite transaction before applying it, and the
//! operations of every object family.
//!
//! One owner thread ([`owner`]) holds the store and applies every write, a typed [`Command`],
//! one at a time: it computes the command's changes against the current state, commits them
//! to SQLite, then swaps them into memory. A failed commit changes nothing, so memory and
//! database never disagree.

pub mod acls;
pub mod auth;
pub mod authz;
pub mod command;
pub mod disk_usage;
pub mod error;
pub mod groups;
pub mod hosts;
pub mod images;
pub mod lifecycle;
pub mod messages;
pub mod outbox;
pub mod owned;
pub mod owner;
pub mod state;
pub mod templates;
pub mod transitions;
pub mod users;
pub mod vm_documents;
pub mod vms;
pub mod vnets;
pub mod volumes;

pub use command::Command;
pub use error::{Error, Result};
pub use state::State;

use crate::config::Settings;
use crate::model::volume::Volume;
use crate::model::{AclRule, Group, Host, Image, Kind, Oid, User, VNet, Vm, VmTemplate};
use crate::store::{Store, StoreOp};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One object to write or delete.
#[derive(Debug, Clone)]
pub enum Change {
    User(User),
    Group(Group),
    Acl(AclRule),
    Template(VmTemplate),
    Vm(Vm),
    Host(Host),
    VNet(VNet),
    Image(Image),
    Delete(Kind, Oid),
    /// A persistent volume of the built-in pdisk service (not one of oned's pools).
    Volume(Volume),
    DeleteVolume(String),
}

impl Change {
    /// The oned pool this change writes to; `None` for volumes.
    pub fn kind(&self) -> Option<Kind> {
        Some(match self {
            Change::User(_) => Kind::User,
            Change::Group(_) => Kind::Group,
            Change::Acl(_) => Kind::Acl,
            Change::Template(_) => Kind::Template,
            Change::Vm(_) => Kind::Vm,
            Change::Host(_) => Kind::Host,
            Change::VNet(_) => Kind::Net,
            Change::Image(_) => Kind::Image,
            Change::Delete(kind, _) => *kind,
            Change::Volume(_) | Change::DeleteVolume(_) => return None,
        })
    }
}

/// The changes of one write, in order. Later changes of the same object win.
#[derive(Debug, Default)]
pub struct Tx {
    changes: Vec<Change>,
    allocated: Vec<(Kind, Oid)>,
    /// Effects to carry out once this write is committed (see [`outbox`]).
    intents: Vec<outbox::Intent>,
    /// Outbox entries this write marks carried out.
    done: Vec<outbox::IntentId>,
    /// Outbox entries this write rewrites (an effect that records its progress).
    updated: Vec<(outbox::IntentId, outbox::Intent)>,
}

impl Tx {
    /// Records an effect, carried out after the commit (never if the commit fails).
    pub fn intend(&mut self, intent: outbox::Intent) {
        self.intents.push(intent);
    }

    /// Marks an outbox entry carried out, in the same commit as the changes it made.
    pub fn intent_done(&mut self, id: outbox::IntentId) {
        self.done.push(id);
    }

    /// Rewrites a committed outbox entry (its effect's progress), in this write's commit.
    pub fn intent_update(&mut self, id: outbox::IntentId, intent: outbox::Intent) {
        self.updated.push((id, intent));
    }

    pub fn put(&mut self, change: Change) {
        self.changes.push(change);
    }

    pub fn delete(&mut self, kind: Kind, oid: Oid) {
        self.changes.push(Change::Delete(kind, oid));
    }

    /// The next id of a pool, also counting ids already taken in this write.
    pub fn alloc_id(&mut self, state: &State, kind: Kind) -> Oid {
        let taken = self
            .allocated
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, id)| *id)
            .max();
        let id = match taken {
            Some(t) => t + 1,
            None => state.next_id(kind),
        };
        self.allocated.push((kind, id));
        id
    }

    /// The VM as changed earlier in this write, if it was.
    pub fn pending_vm(&self, id: Oid) -> Option<&Vm> {
        self.changes.iter().rev().find_map(|c| match c {
            Change::Vm(vm) if vm.id == id => Some(vm),
            _ => None,
        })
    }

    pub fn pending_vnet(&self, id: Oid) -> Option<&VNet> {
        self.changes.iter().rev().find_map(|c| match c {
            Change::VNet(n) if n.id == id => Some(n),
            _ => None,
        })
    }

    pub fn pending_host(&self, id: Oid) -> Option<&Host> {
        self.changes.iter().rev().find_map(|c| match c {
            Change::Host(h) if h.id == id => Some(h),
            _ => None,
        })
    }

    /// The volume as changed earlier in this write: `Some(None)` when it was deleted.
    pub fn pending_volume(&self, uuid: &str) -> Option<Option<&Volume>> {
        self.changes.iter().rev().find_map(|c| match c {
            Change::Volume(v) if v.uuid == uuid => Some(Some(v)),
            Change::DeleteVolume(u) if u == uuid => Some(None),
            _ => None,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.intents.is_empty()
            && self.done.is_empty()
            && self.updated.is_empty()
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))
}

/// The row a change writes (the JSON body of the object), as the import also writes them.
pub fn store_op(change: &Change) -> Result<StoreOp> {
    let put = |kind, oid, name: &str, uid, gid, body| StoreOp::Put {
        kind,
        oid,
        name: name.to_string(),
        uid,
        gid,
        body,
    };
    Ok(match change {
        Change::User(o) => put(Kind::User, o.id, &o.name, o.id, o.gid, json(o)?),
        Change::Group(o) => put(Kind::Group, o.id, &o.name, 0, o.id, json(o)?),
        Change::Acl(o) => put(Kind::Acl, o.id, "", 0, 0, json(o)?),
        Change::Template(o) => put(Kind::Template, o.id, &o.name, o.uid, o.gid, json(o)?),
        Change::Vm(o) => put(Kind::Vm, o.id, &o.name, o.uid, o.gid, json(o)?),
        Change::Host(o) => put(Kind::Host, o.id, &o.name, 0, 0, json(o)?),
        Change::VNet(o) => put(Kind::Net, o.id, &o.name, o.uid, o.gid, json(o)?),
        Change::Image(o) => put(Kind::Image, o.id, &o.name, o.uid, o.gid, json(o)?),
        Change::Delete(kind, oid) => StoreOp::Delete {
            kind: *kind,
            oid: *oid,
        },
        Change::Volume(v) => StoreOp::PutVolume {
            uuid: v.uuid.clone(),
            owner: v.owner.clone(),
            body: json(v)?,
        },
        Change::DeleteVolume(uuid) => StoreOp::DeleteVolume { uuid: uuid.clone() },
    })
}

/// Events the core publishes after a write, for the background workers (scheduler, monitor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    VmChanged(Oid),
    HostChanged(Oid),
    /// A VM entered a new STATE/LCM_STATE pair (published once per change, in order).
    VmEntered {
        id: Oid,
        state: crate::model::vm::VmState,
        lcm: crate::model::vm::LcmState,
    },
}

/// What one commit wrote, as [`AfterCommit`] observers see it.
#[derive(Debug, Default)]
pub struct Committed {
    /// The oned pools written, each once.
    pub kinds: Vec<Kind>,
    /// The objects written or deleted, each once (look them up in the state: a deleted one is
    /// gone).
    pub objects: Vec<(Kind, Oid)>,
    /// The UUIDs of the volumes written or deleted, each once.
    pub volumes: Vec<String>,
}

impl Committed {
    fn of(changes: &[Change]) -> Committed {
        let mut c = Committed::default();
        let mut seen = std::collections::HashSet::new();
        for change in changes {
            if let Some(kind) = change.kind() {
                if !c.kinds.contains(&kind) {
                    c.kinds.push(kind);
                }
            }
            let object = match change {
                Change::User(o) => (Kind::User, o.id),
                Change::Group(o) => (Kind::Group, o.id),
                Change::Acl(o) => (Kind::Acl, o.id),
                Change::Template(o) => (Kind::Template, o.id),
                Change::Vm(o) => (Kind::Vm, o.id),
                Change::Host(o) => (Kind::Host, o.id),
                Change::VNet(o) => (Kind::Net, o.id),
                Change::Image(o) => (Kind::Image, o.id),
                Change::Delete(kind, oid) => (*kind, *oid),
                Change::Volume(v) => {
                    if !c.volumes.contains(&v.uuid) {
                        c.volumes.push(v.uuid.clone());
                    }
                    continue;
                }
                Change::DeleteVolume(uuid) => {
                    if !c.volumes.contains(uuid) {
                        c.volumes.push(uuid.clone());
                    }
                    continue;
                }
            };
            if seen.insert(object) {
                c.objects.push(object);
            }
        }
        c
    }
}

/// Called after every commit with the new state and what the commit wrote, before the API
/// call that made it answers. It runs under the writer lock, so calls come one at a time in
/// commit order and always see the state of their own commit; it must be quick and must not
/// write through the core.
pub type AfterCommit = Box<dyn Fn(&State, &Committed) + Send + Sync>;

/// What readers and the owner share: the in-memory pools (read-locked by readers, swapped by
/// the owner after each commit), the settings, the events and the outbox queues. Every method
/// of the core that only reads is defined here; [`Core`] dereferences to it.
pub struct Shared {
    state: RwLock<State>,
    pub settings: Settings,
    events: tokio::sync::broadcast::Sender<Event>,
    outbox: outbox::Outbox,
}

/// The core: the shared read side, and the sending end of the bounded queue of [`Command`]s
/// that its owner thread (see [`owner`]) applies one at a time, the only code that writes to
/// the store.
pub struct Core {
    shared: Arc<Shared>,
    owner: owner::Handle,
}

impl std::ops::Deref for Core {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl Core {
    /// Opens the core over a store, bootstrapping an empty database like oned's first start,
    /// and starts its owner thread, which owns the store from then on.
    pub fn open(mut store: Store, settings: Settings, oneadmin_password: &str) -> Result<Core> {
        let (events, _) = tokio::sync::broadcast::channel(4096);
        let shared = Arc::new(Shared {
            state: RwLock::new(State::default()),
            settings,
            events,
            outbox: outbox::Outbox::default(),
        });
        let last_intent = if store.is_empty()? {
            shared.bootstrap(&mut store, oneadmin_password)?;
            0
        } else {
            shared.load(&store)?
        };
        let owner = owner::Handle::start(Arc::clone(&shared), store, last_intent)?;
        Ok(Core { shared, owner })
    }

    /// Which VM effects writes record from now on; the daemon sets this (before serving) to
    /// what its workers carry out.
    pub fn set_effects(&mut self, effects: outbox::Effects) {
        self.owner.setup(owner::Setup::Effects(effects));
    }

    /// Adds a commit observer (see [`AfterCommit`]); the daemon adds them before serving.
    pub fn add_after_commit(&mut self, observer: AfterCommit) {
        self.owner.setup(owner::Setup::Observer(observer));
    }

    /// Marks outbox entries carried out (one commit).
    pub fn intents_done(&self, ids: &[outbox::IntentId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.execute(Command::IntentsDone { ids: ids.to_vec() })?
            .done()
    }

    /// Applies `command` (see [`command`]) and waits for its answer, on a thread that may
    /// block (a worker, the pdisk service, a tool; never a runtime worker serving a call,
    /// where [`Core::submit`] is awaited instead). Saved disks the command decided to move
    /// are moved before this returns, on this thread.
    pub fn execute(&self, command: Command) -> Result<command::Answer> {
        if in_read_only_section() {
            tracing::error!("a command was sent from the read-only path; refused");
            return Err(Error::Internal(
                "write attempted on the read-only path".into(),
            ));
        }
        let applied = self.owner.execute(command::Stamped::now(command))?;
        if applied.moves_disks {
            self.carry_out_disk_intents();
        }
        applied.answer
    }

    /// [`Core::execute`] for async callers: waits (without blocking the runtime) for room in
    /// the queue and for the answer; saved disks are moved on the blocking pool.
    pub async fn submit(self: &Arc<Self>, command: Command) -> Result<command::Answer> {
        let applied = self.owner.submit(command::Stamped::now(command)).await?;
        if applied.moves_disks {
            let core = Arc::clone(self);
            tokio::task::spawn_blocking(move || core.carry_out_disk_intents())
                .await
                .map_err(|e| Error::Internal(format!("moving saved disks: {e}")))?;
        }
        applied.answer
    }

    /// Runs one write whose changes `f` computes from the current state, for tests that make
    /// changes no command makes: the owner lends itself to this thread for the duration, so
    /// writes stay one at a time, in queue order. An error from `f` or from SQLite changes
    /// nothing.
    #[cfg(test)]
    pub fn write<T>(&self, f: impl FnOnce(&State, &mut Tx) -> Result<T>) -> Result<T> {
        if in_read_only_section() {
            tracing::error!("a write was attempted on the read-only path; refused");
            return Err(Error::Internal(
                "write attempted on the read-only path".into(),
            ));
        }
        let (value, moves_disks) = self
            .owner
            .with_owner(|owner| owner.write(&self.shared, f))?;
        if moves_disks {
            // Saved disks move now, on this (blocking) thread, after the commit and outside
            // the owner: the caller sees the images' outcome when the write returns.
            self.carry_out_disk_intents();
        }
        Ok(value)
    }

    /// How many commands wait for the owner now (at most [`owner::COMMAND_QUEUE`]).
    pub fn queued_commands(&self) -> usize {
        self.owner.queued()
    }

    /// Digest of the database rows (tests of "bad input changes nothing").
    pub fn store_fingerprint(&self) -> Result<String> {
        self.owner.fingerprint()
    }

    /// From now on, the owner keeps every command it applies (the determinism test replays
    /// them into another core).
    pub fn record_commands(&self) {
        self.owner.setup(owner::Setup::Record);
    }

    /// The commands applied since [`Core::record_commands`], in order.
    pub fn recorded_commands(&self) -> Result<Vec<command::Stamped>> {
        self.owner.recorded()
    }

    /// Applies commands recorded from another core, each at the time it was stamped with.
    pub fn replay(&self, commands: Vec<command::Stamped>) -> Result<()> {
        for stamped in commands {
            let applied = self.owner.execute(stamped)?;
            if applied.moves_disks {
                self.carry_out_disk_intents();
            }
        }
        Ok(())
    }
}

impl Shared {
    /// Fills the pools from the store; returns the last outbox id handed out.
    fn load(&self, store: &Store) -> Result<outbox::IntentId> {
        let snap = store.load()?;
        let mut state = State::default();
        for (kind, body) in &snap.rows {
            state.load_row(*kind, body).map_err(Error::Internal)?;
        }
        for (kind, last) in snap.counters {
            state.set_counter(kind, last);
        }
        for body in &snap.user_quotas {
            let q: crate::model::quota::UserQuota = serde_json::from_str(body)
                .map_err(|e| Error::Internal(format!("corrupt user_quota row: {e}")))?;
            state.user_quotas.insert(q.uid, q);
        }
        for body in &snap.volumes {
            state.load_volume(body).map_err(Error::Internal)?;
        }
        *self.write_state() = state;
        let mut replayed = Vec::with_capacity(snap.intents.len());
        for (id, body) in &snap.intents {
            match serde_json::from_str(body) {
                Ok(intent) => replayed.push(outbox::Pending {
                    id: *id,
                    intent,
                    replayed: true,
                }),
                // Kept in the table for a later version that may understand it.
                Err(e) => tracing::error!(id, error = %e, "unreadable outbox entry left as is"),
            }
        }
        if !replayed.is_empty() {
            tracing::info!(
                entries = replayed.len(),
                "outbox entries of before the restart are carried out again"
            );
        }
        self.outbox.push(replayed);
        Ok(snap.last_intent)
    }

    /// The objects of oned's first start, committed before the owner starts.
    fn bootstrap(&self, store: &mut Store, oneadmin_password: &str) -> Result<()> {
        let mut tx = Tx::default();
        state::bootstrap(&self.read(), &mut tx, oneadmin_password)?;
        let mut ops = Vec::with_capacity(tx.changes.len() + tx.allocated.len() + 1);
        for change in &tx.changes {
            ops.push(store_op(change)?);
        }
        for (kind, id) in &tx.allocated {
            ops.push(StoreOp::Counter {
                kind: *kind,
                last_oid: *id,
            });
        }
        // Group ids of users' groups start at 100, as oned reserves 0..99.
        ops.push(StoreOp::Counter {
            kind: Kind::Group,
            last_oid: 99,
        });
        store.commit(&ops)?;
        let mut state = self.write_state();
        for (kind, id) in &tx.allocated {
            state.raise_counter(*kind, *id);
        }
        for change in tx.changes {
            state.apply(change);
        }
        state.set_counter(Kind::Group, 99);
        Ok(())
    }

    /// The committed effects waiting for their workers.
    pub fn outbox(&self) -> &outbox::Outbox {
        &self.outbox
    }

    /// A read view of all pools. Readers never touch SQLite; the owner waits only for readers
    /// in progress while it swaps its committed changes in.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic in another thread cannot leave the state half-changed (changes are applied
        // only after they are built and committed), so a poisoned lock is still consistent.
        match self.state.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        match self.state.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

thread_local! {
    static READ_ONLY_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn in_read_only_section() -> bool {
    READ_ONLY_DEPTH.with(|d| d.get() > 0)
}

/// While alive, [`Core::write`] on this thread fails instead of committing: the front end
/// holds one while it serves a call inline on a runtime worker, so a call it wrongly took for
/// a read is caught instead of blocking the worker on SQLite.
pub struct ReadOnlySection(());

impl ReadOnlySection {
    pub fn enter() -> ReadOnlySection {
        READ_ONLY_DEPTH.with(|d| d.set(d.get() + 1));
        ReadOnlySection(())
    }
}

impl Drop for ReadOnlySection {
    fn drop(&mut self) {
        READ_ONLY_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}
