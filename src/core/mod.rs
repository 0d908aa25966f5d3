//! The core: the in-memory pools (served to readers without touching SQLite), the single
//! writer that persists every change in one SQLite transaction before applying it, and the
//! operations of every object family.
//!
//! Writers are serialised by the store mutex; each write computes its changes against a
//! consistent read view, commits them to SQLite, then swaps them into memory. A failed commit
//! changes nothing, so memory and database never disagree.

pub mod acls;
pub mod auth;
pub mod authz;
pub mod disk_usage;
pub mod error;
pub mod groups;
pub mod hosts;
pub mod images;
pub mod lifecycle;
pub mod messages;
pub mod outbox;
pub mod owned;
pub mod state;
pub mod templates;
pub mod transitions;
pub mod users;
pub mod vm_documents;
pub mod vms;
pub mod vnets;
pub mod volumes;

pub use error::{Error, Result};
pub use state::State;

use crate::config::Settings;
use crate::model::volume::Volume;
use crate::model::{AclRule, Group, Host, Image, Kind, Oid, User, VNet, Vm, VmTemplate};
use crate::store::{Store, StoreOp};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

pub struct Core {
    state: RwLock<State>,
    store: Mutex<Store>,
    pub settings: Settings,
    events: tokio::sync::broadcast::Sender<Event>,
    after_commit: Vec<AfterCommit>,
    /// Which VM effects writes record (hooks, VM log lines); none until the daemon says.
    effects: outbox::Effects,
    outbox: outbox::Outbox,
    /// The last outbox id handed out; changed only under the store lock.
    last_intent: std::sync::atomic::AtomicI64,
}

impl Core {
    /// Opens the core over a store, bootstrapping an empty database like oned's first start.
    pub fn open(store: Store, settings: Settings, oneadmin_password: &str) -> Result<Core> {
        let (events, _) = tokio::sync::broadcast::channel(4096);
        let fresh = store.is_empty()?;
        let core = Core {
            state: RwLock::new(State::default()),
            store: Mutex::new(store),
            settings,
            events,
            after_commit: Vec::new(),
            effects: outbox::Effects::default(),
            outbox: outbox::Outbox::default(),
            last_intent: std::sync::atomic::AtomicI64::new(0),
        };
        if fresh {
            core.bootstrap(oneadmin_password)?;
        } else {
            core.load()?;
        }
        Ok(core)
    }

    fn load(&self) -> Result<()> {
        let snap = self.lock_store()?.load()?;
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
        self.last_intent
            .store(snap.last_intent, std::sync::atomic::Ordering::SeqCst);
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
        Ok(())
    }

    /// Which VM effects writes record from now on; the daemon sets this (before serving) to
    /// what its workers carry out.
    pub fn set_effects(&mut self, effects: outbox::Effects) {
        self.effects = effects;
    }

    /// The committed effects waiting for their workers.
    pub fn outbox(&self) -> &outbox::Outbox {
        &self.outbox
    }

    /// Marks outbox entries carried out (one commit).
    pub fn intents_done(&self, ids: &[outbox::IntentId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(|_, tx| {
            tx.done.extend_from_slice(ids);
            Ok(())
        })
    }

    /// The VM effects of the changes in `tx`: for each VM entering a new state pair, its log
    /// lines and the hook point it reaches, decided from the change alone.
    fn record_vm_effects(&self, view: &State, tx: &mut Tx) {
        if !self.effects.vm_log && self.effects.hook_points.is_empty() {
            return;
        }
        let t = crate::model::now();
        let mut entered: std::collections::HashMap<
            Oid,
            (crate::model::vm::VmState, crate::model::vm::LcmState),
        > = std::collections::HashMap::new();
        let mut intents = Vec::new();
        for change in &tx.changes {
            let Change::Vm(vm) = change else { continue };
            let before = match entered.get(&vm.id) {
                Some(pair) => Some(*pair),
                None => view.vms.get(&vm.id).map(|o| (o.state, o.lcm_state)),
            };
            let now_pair = (vm.state, vm.lcm_state);
            entered.insert(vm.id, now_pair);
            if before == Some(now_pair) {
                continue;
            }
            if self.effects.vm_log {
                let lines = crate::vmlog::lines_for(vm, vm.state, vm.lcm_state);
                if !lines.is_empty() {
                    intents.push(outbox::Intent::VmLog {
                        vm: vm.id,
                        time: t,
                        lines,
                    });
                }
            }
            if let Some(on) = outbox::HookPoint::entered(vm.state, vm.lcm_state, before.is_none()) {
                if self.effects.hook_points.contains(&on) {
                    intents.push(outbox::Intent::Hook { vm: vm.id, on });
                }
            }
        }
        tx.intents.extend(intents);
    }

    /// One `Dhcp` intent for a write that changes which leases VMs hold (however many
    /// networks it wrote): the file is regenerated whole from the committed leases.
    fn record_lease_effects(&self, view: &State, tx: &mut Tx) {
        if self.effects.dhcp && vnets::changes_leases(view, &tx.changes) {
            tx.intents.push(outbox::Intent::Dhcp);
        }
    }

    /// A `Step` intent for each VM this write leaves waiting for a driver step it was not
    /// waiting for before (a new STATE/LCM_STATE pair, a new history record, a reboot
    /// requested), fenced by that pair and record.
    fn record_step_effects(&self, view: &State, tx: &mut Tx) {
        if !self.effects.steps {
            return;
        }
        let mut last: std::collections::HashMap<Oid, &Vm> = std::collections::HashMap::new();
        let mut order = Vec::new();
        for change in &tx.changes {
            if let Change::Vm(vm) = change {
                if last.insert(vm.id, vm).is_none() {
                    order.push(vm.id);
                }
            }
        }
        let mut intents = Vec::new();
        for id in order {
            let Some(step) = outbox::Intent::step_for(last[&id]) else {
                continue;
            };
            if view.vms.get(&id).and_then(outbox::Intent::step_for) != Some(step.clone()) {
                intents.push(step);
            }
        }
        tx.intents.extend(intents);
    }

    fn bootstrap(&self, oneadmin_password: &str) -> Result<()> {
        self.write(|state, tx| state::bootstrap(state, tx, oneadmin_password))?;
        // Group ids of users' groups start at 100, as oned reserves 0..99.
        self.lock_store()?.commit(&[StoreOp::Counter {
            kind: Kind::Group,
            last_oid: 99,
        }])?;
        self.write_state().set_counter(Kind::Group, 99);
        Ok(())
    }

    fn lock_store(&self) -> Result<std::sync::MutexGuard<'_, Store>> {
        self.store
            .lock()
            .map_err(|_| Error::Internal("store lock poisoned".into()))
    }

    /// A read view of all pools. Readers never touch SQLite; a writer waits only for readers
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

    /// Adds a commit observer (see [`AfterCommit`]); the daemon adds them before serving.
    pub fn add_after_commit(&mut self, observer: AfterCommit) {
        self.after_commit.push(observer);
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Runs one write: `f` computes changes from the current state; they are committed to
    /// SQLite and only then become visible. An error from `f` or from SQLite changes nothing.
    /// A write inside a [`ReadOnlySection`] (a runtime worker serving a call inline) is
    /// refused: it would block the worker on SQLite, so it is a routing bug.
    pub fn write<T>(&self, f: impl FnOnce(&State, &mut Tx) -> Result<T>) -> Result<T> {
        if in_read_only_section() {
            tracing::error!("a write was attempted on the read-only path; refused");
            return Err(Error::Internal(
                "write attempted on the read-only path".into(),
            ));
        }
        let mut store = self.lock_store()?;
        let mut tx = Tx::default();
        // The store mutex keeps other writers out, so the state cannot change between this
        // read view and the apply below.
        let value = {
            let view = self.read();
            let value = f(&view, &mut tx)?;
            self.record_vm_effects(&view, &mut tx);
            self.record_lease_effects(&view, &mut tx);
            self.record_step_effects(&view, &mut tx);
            value
        };
        // Nothing written, and no id used (a refused one.vm.savedisk uses an image id).
        if tx.is_empty() && tx.allocated.is_empty() {
            return Ok(value);
        }
        let mut ops = Vec::with_capacity(
            tx.changes.len()
                + tx.allocated.len()
                + tx.intents.len()
                + tx.done.len()
                + tx.updated.len(),
        );
        for change in &tx.changes {
            ops.push(store_op(change)?);
        }
        for (kind, id) in &tx.allocated {
            ops.push(StoreOp::Counter {
                kind: *kind,
                last_oid: *id,
            });
        }
        let mut last_intent = self.last_intent.load(std::sync::atomic::Ordering::SeqCst);
        let mut committed = Vec::with_capacity(tx.intents.len());
        for intent in std::mem::take(&mut tx.intents) {
            last_intent += 1;
            ops.push(StoreOp::Intent {
                id: last_intent,
                body: json(&intent)?,
            });
            committed.push(outbox::Pending {
                id: last_intent,
                intent,
                replayed: false,
            });
        }
        for (id, intent) in &tx.updated {
            ops.push(StoreOp::IntentUpdate {
                id: *id,
                body: json(intent)?,
            });
        }
        for id in &tx.done {
            ops.push(StoreOp::IntentDone { id: *id });
        }
        store.commit(&ops)?;
        self.last_intent
            .store(last_intent, std::sync::atomic::Ordering::SeqCst);
        let written = if self.after_commit.is_empty() {
            Committed::default()
        } else {
            Committed::of(&tx.changes)
        };
        let mut events = Vec::new();
        {
            let mut state = self.write_state();
            for (kind, id) in &tx.allocated {
                state.raise_counter(*kind, *id);
            }
            for change in tx.changes {
                match &change {
                    Change::Vm(vm) => {
                        let before = state.vms.get(&vm.id).map(|old| (old.state, old.lcm_state));
                        if before != Some((vm.state, vm.lcm_state)) {
                            events.push(Event::VmEntered {
                                id: vm.id,
                                state: vm.state,
                                lcm: vm.lcm_state,
                            });
                        }
                        events.push(Event::VmChanged(vm.id));
                    }
                    Change::Host(h) => events.push(Event::HostChanged(h.id)),
                    _ => {}
                }
                state.apply(change);
            }
        }
        if !self.after_commit.is_empty() {
            let state = self.read();
            for observer in &self.after_commit {
                observer(&state, &written);
            }
        }
        let moves_disks = committed
            .iter()
            .any(|p| p.intent.lane() == outbox::Lane::Disks);
        // Workers see the committed state when they take the entries, in commit order.
        self.outbox.push(committed);
        drop(store);
        for e in events {
            // No receiver yet is fine: workers pick the state up on their next pass.
            let _ = self.events.send(e);
        }
        if moves_disks {
            // Saved disks move now, on this (blocking) thread, after the commit and outside
            // the store lock: the caller sees the images' outcome when the write returns.
            self.carry_out_disk_intents();
        }
        Ok(value)
    }

    /// Digest of the database rows (tests of "bad input changes nothing").
    pub fn store_fingerprint(&self) -> Result<String> {
        Ok(self.lock_store()?.fingerprint()?)
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
