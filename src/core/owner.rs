//! The owner of the store: one named thread (`core-owner`) that holds the SQLite [`Store`]
//! and is the only code that commits. Every write reaches it as a typed [`Command`] over a
//! bounded queue ([`COMMAND_QUEUE`]) and is applied strictly one at a time, in queue order:
//! the command's changes are computed from the command and the current state, committed in
//! one SQLite transaction (with the outbox intents they decide), swapped into the shared
//! state, and answered. A full queue makes senders wait (backpressure), it never refuses.
//!
//! Applying a command reads nothing but the command and the state: the time is the one
//! stamped on the command when it was made ([`crate::model::at_command_time`]), so the same
//! sequence of commands always gives the same state.
//!
//! Tests that make changes no command makes (`Core::write`, a closure computing changes) are
//! served by lending the owner to the calling thread for the duration of that one write: it
//! stays serialised with the commands, in queue order.

use super::command::{self, Stamped};
use super::{outbox, store_op, AfterCommit, Change, Committed, Error, Event, Result, Shared};
use super::{State, Tx};
use crate::model::Oid;
use crate::store::{Store, StoreOp};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// How many commands may wait for the owner. Each waiting command holds its parameters (at
/// most a request body), so the queue bounds that memory; a sender that finds it full waits
/// for room, as SQLite would have made it wait for the lock.
pub const COMMAND_QUEUE: usize = 1024;

/// The settings the daemon gives the owner before serving.
pub(crate) enum Setup {
    Effects(outbox::Effects),
    Observer(AfterCommit),
    /// Keep every command applied from now on ([`Handle::recorded`]).
    Record,
}

/// What one applied command gives its sender.
pub struct Applied {
    pub answer: Result<command::Answer>,
    /// The commit recorded saved-disk moves, which the sender carries out (off the owner).
    pub moves_disks: bool,
}

// The queue's slots are as large as the largest command; 1,024 of them are a few hundred KiB.
#[allow(clippy::large_enum_variant)]
enum Message {
    Apply {
        stamped: Stamped,
        reply: flume::Sender<Applied>,
    },
    /// Hands the owner to the sender (`lend`) until it comes back on `back` (tests' writes).
    #[cfg(test)]
    Lend {
        lend: flume::Sender<Owner>,
        back: flume::Receiver<Owner>,
    },
    Setup(Setup),
    Fingerprint(flume::Sender<Result<String>>),
    Recorded(flume::Sender<Vec<Stamped>>),
    Stop,
}

/// What only the owner touches.
pub struct Owner {
    store: Store,
    /// Which VM effects writes record (hooks, VM log lines); none until the daemon says.
    effects: outbox::Effects,
    after_commit: Vec<AfterCommit>,
    /// The last outbox id handed out.
    last_intent: outbox::IntentId,
    /// The commands applied, when recording.
    journal: Option<Vec<Stamped>>,
}

/// The senders' side: the queue, and the thread to join when the core goes.
pub struct Handle {
    commands: flume::Sender<Message>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn stopped() -> Error {
    Error::Internal("the core's owner thread has stopped".into())
}

impl Handle {
    pub(crate) fn start(
        shared: Arc<Shared>,
        store: Store,
        last_intent: outbox::IntentId,
    ) -> Result<Handle> {
        let (commands, queue) = flume::bounded(COMMAND_QUEUE);
        let owner = Owner {
            store,
            effects: outbox::Effects::default(),
            after_commit: Vec::new(),
            last_intent,
            journal: None,
        };
        let thread = std::thread::Builder::new()
            .name("core-owner".into())
            .spawn(move || run(&shared, owner, queue))
            .map_err(|e| Error::Internal(format!("starting the core's owner thread: {e}")))?;
        Ok(Handle {
            commands,
            thread: Some(thread),
        })
    }

    pub(crate) fn setup(&self, setup: Setup) {
        if self.commands.send(Message::Setup(setup)).is_err() {
            tracing::error!("the core's owner thread has stopped: setting not applied");
        }
    }

    /// Sends `stamped` and waits for its answer, blocking this thread.
    pub(crate) fn execute(&self, stamped: Stamped) -> Result<Applied> {
        let (reply, answer) = flume::bounded(1);
        self.commands
            .send(Message::Apply { stamped, reply })
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())
    }

    /// Sends `stamped` and waits for its answer without blocking the runtime.
    pub(crate) async fn submit(&self, stamped: Stamped) -> Result<Applied> {
        let (reply, answer) = flume::bounded(1);
        self.commands
            .send_async(Message::Apply { stamped, reply })
            .await
            .map_err(|_| stopped())?;
        answer.recv_async().await.map_err(|_| stopped())
    }

    /// Runs `f` with the owner lent to this thread, in queue order with the commands.
    #[cfg(test)]
    pub(crate) fn with_owner<T>(&self, f: impl FnOnce(&mut Owner) -> Result<T>) -> Result<T> {
        let (lend, lent) = flume::bounded(1);
        let (give_back, back) = flume::bounded(1);
        self.commands
            .send(Message::Lend { lend, back })
            .map_err(|_| stopped())?;
        let mut owner = lent.recv().map_err(|_| stopped())?;
        let result = catch_unwind(AssertUnwindSafe(|| f(&mut owner)));
        // Given back even when `f` panicked: the owner serves the next command.
        let _ = give_back.send(owner);
        match result {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// How many messages wait in the queue now (at most [`COMMAND_QUEUE`]).
    pub(crate) fn queued(&self) -> usize {
        self.commands.len()
    }

    pub(crate) fn fingerprint(&self) -> Result<String> {
        let (reply, answer) = flume::bounded(1);
        self.commands
            .send(Message::Fingerprint(reply))
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }

    pub(crate) fn recorded(&self) -> Result<Vec<Stamped>> {
        let (reply, answer) = flume::bounded(1);
        self.commands
            .send(Message::Recorded(reply))
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())
    }
}

impl Drop for Handle {
    /// The owner applies what is queued, closes the store and ends before the core is gone
    /// (a test that reopens the database finds it closed).
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if thread.thread().id() == std::thread::current().id() {
            // The last reference went on the owner thread itself: it ends on its own.
            return;
        }
        if self.commands.send(Message::Stop).is_ok() && thread.join().is_err() {
            tracing::error!("the core's owner thread panicked");
        }
    }
}

fn run(shared: &Shared, mut owner: Owner, queue: flume::Receiver<Message>) {
    while let Ok(message) = queue.recv() {
        match message {
            Message::Apply { stamped, reply } => {
                let applied = catch_unwind(AssertUnwindSafe(|| owner.apply(shared, &stamped)))
                    .unwrap_or_else(|_| {
                        tracing::error!(
                            command = stamped.command.name(),
                            "applying a command panicked"
                        );
                        Applied {
                            answer: Err(Error::Internal("applying the command failed".into())),
                            moves_disks: false,
                        }
                    });
                if let Some(journal) = &mut owner.journal {
                    journal.push(stamped);
                }
                // A sender that gave up waiting is no reason to stop.
                let _ = reply.send(applied);
            }
            #[cfg(test)]
            Message::Lend { lend, back } => {
                owner = match lend.send(owner) {
                    Err(flume::SendError(kept)) => kept,
                    Ok(()) => match back.recv() {
                        Ok(returned) => returned,
                        Err(_) => {
                            tracing::error!("the core's owner was not given back; no more writes");
                            return;
                        }
                    },
                };
            }
            Message::Setup(Setup::Effects(effects)) => owner.effects = effects,
            Message::Setup(Setup::Observer(observer)) => owner.after_commit.push(observer),
            Message::Setup(Setup::Record) => owner.journal = Some(Vec::new()),
            Message::Fingerprint(reply) => {
                let _ = reply.send(owner.store.fingerprint().map_err(Error::from));
            }
            Message::Recorded(reply) => {
                let _ = reply.send(owner.journal.clone().unwrap_or_default());
            }
            Message::Stop => return,
        }
    }
}

impl Owner {
    /// Applies one command at the time it was stamped with.
    fn apply(&mut self, shared: &Shared, stamped: &Stamped) -> Applied {
        crate::model::at_command_time(stamped.nanos, || {
            match self.write(shared, |state, tx| {
                command::apply(shared, state, tx, &stamped.command)
            }) {
                Ok((answer, moves_disks)) => Applied {
                    answer: Ok(answer),
                    moves_disks,
                },
                Err(e) => Applied {
                    answer: Err(e),
                    moves_disks: false,
                },
            }
        })
    }

    /// One write: `f` computes changes from the current state; they are committed to SQLite
    /// and only then become visible. An error from `f` or from SQLite changes nothing. Also
    /// answers whether the commit recorded saved-disk moves.
    pub(crate) fn write<T>(
        &mut self,
        shared: &Shared,
        f: impl FnOnce(&State, &mut Tx) -> Result<T>,
    ) -> Result<(T, bool)> {
        let mut tx = Tx::default();
        // Only the owner changes the state, so it cannot change between this read view and
        // the swap below.
        let value = {
            let view = shared.read();
            let value = f(&view, &mut tx)?;
            self.record_vm_effects(&view, &mut tx);
            self.record_lease_effects(&view, &mut tx);
            self.record_step_effects(&view, &mut tx);
            value
        };
        // Nothing written, and no id used (a refused one.vm.savedisk uses an image id).
        if tx.is_empty() && tx.allocated.is_empty() {
            return Ok((value, false));
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
        let mut last_intent = self.last_intent;
        let mut committed = Vec::with_capacity(tx.intents.len());
        for intent in std::mem::take(&mut tx.intents) {
            last_intent += 1;
            ops.push(StoreOp::Intent {
                id: last_intent,
                body: super::json(&intent)?,
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
                body: super::json(intent)?,
            });
        }
        for id in &tx.done {
            ops.push(StoreOp::IntentDone { id: *id });
        }
        self.store.commit(&ops)?;
        self.last_intent = last_intent;
        let written = if self.after_commit.is_empty() {
            Committed::default()
        } else {
            Committed::of(&tx.changes)
        };
        let mut events = Vec::new();
        {
            let mut state = shared.write_state();
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
            let state = shared.read();
            for observer in &self.after_commit {
                observer(&state, &written);
            }
        }
        let moves_disks = committed
            .iter()
            .any(|p| p.intent.lane() == outbox::Lane::Disks);
        // Workers see the committed state when they take the entries, in commit order.
        shared.outbox.push(committed);
        for e in events {
            // No receiver yet is fine: workers pick the state up on their next pass.
            let _ = shared.events.send(e);
        }
        Ok((value, moves_disks))
    }

    /// One `Dhcp` intent for a write that changes which leases VMs hold (however many
    /// networks it wrote): the file is regenerated whole from the committed leases.
    fn record_lease_effects(&self, view: &State, tx: &mut Tx) {
        if self.effects.dhcp && super::vnets::changes_leases(view, &tx.changes) {
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
        let mut last: HashMap<Oid, &crate::model::Vm> = HashMap::new();
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

    /// The VM effects of the changes in `tx`: for each VM entering a new state pair, its log
    /// lines and the hook point it reaches, decided from the change alone.
    fn record_vm_effects(&self, view: &State, tx: &mut Tx) {
        if !self.effects.vm_log && self.effects.hook_points.is_empty() {
            return;
        }
        let t = crate::model::now();
        let mut entered: HashMap<Oid, (crate::model::vm::VmState, crate::model::vm::LcmState)> =
            HashMap::new();
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
                let lines = crate::vmlog::lines_for(vm, before, vm.state, vm.lcm_state);
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
}

#[cfg(test)]
mod tests {
    use super::COMMAND_QUEUE;
    use crate::config::Settings;
    use crate::core::auth::Caller;
    use crate::core::hosts::MonitorResult;
    use crate::core::lifecycle::StepOutcome;
    use crate::core::Core;
    use crate::model::{Image, VNet, Vm};
    use crate::store::Store;
    use std::sync::Arc;

    fn core() -> Core {
        Core::open(Store::open_in_memory().unwrap(), Settings::default(), "pw").unwrap()
    }

    /// Every pool's document as an unrestricted caller lists it (serveradmin's random
    /// password aside: bootstrap, not a command, draws it).
    fn documents(core: &Core) -> Vec<String> {
        let admin = Caller::oneadmin();
        let mut users = core.userpool_info(&admin);
        let state = core.read();
        if let Some(serveradmin) = state.users.get(&1) {
            users = users.replace(&serveradmin.password, "");
        }
        drop(state);
        vec![
            core.vmpool_info(&admin, -2, -1, -1, -2).unwrap().to_text(),
            core.hostpool_info(&admin),
            core.vnpool_info(&admin, -2, -1, -1).unwrap(),
            core.imagepool_info(&admin, -2, -1, -1).unwrap(),
            core.templatepool_info(&admin, -2, -1, -1).unwrap(),
            core.grouppool_info(&admin),
            core.acl_info(&admin).unwrap(),
            users,
        ]
    }

    /// The same commands applied to two fresh cores give the same pools, document for
    /// document: applying one reads only the command (its stamped time included) and the
    /// state, which a replicated log needs.
    #[test]
    fn replaying_the_commands_of_a_scenario_gives_the_same_state() {
        let a = core();
        a.record_commands();
        let admin = Caller::oneadmin();
        let h = a
            .host_allocate(&admin, "node0", "im_kvm", "vmm_kvm", "dummy", "tm_dummy")
            .unwrap();
        let values = [
            ("TOTALCPU", "800"),
            ("FREECPU", "800"),
            ("TOTALMEMORY", "1048576"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec();
        a.host_monitored(h, MonitorResult::Ok(values)).unwrap();
        let uid = a.user_allocate(&admin, "alice", "secret", "").unwrap();
        let alice = a.authenticate("alice:secret").unwrap();
        assert_eq!(alice.uid, uid);
        a.authenticate("bob:whatever").unwrap();
        a.vn_allocate(
            &admin,
            "NAME = net\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_SIZE = 16\nNETWORK_ADDRESS = 10.0.0.0\nPUBLIC = YES\n",
        )
        .unwrap();
        a.chmod::<VNet>(&admin, 0, [1, 1, 0, 1, 0, 0, 1, 0, 0])
            .unwrap();
        a.image_allocate(&admin, "NAME = img\nSOURCE = /images/img\nTYPE = OS\n")
            .unwrap();
        a.chmod::<Image>(&admin, 0, [1, 1, 0, 1, 0, 0, 1, 0, 0])
            .unwrap();
        let tmpl = a
            .template_allocate(
                &alice,
                "NAME = t\nCPU = 1\nMEMORY = 64\nNIC = [ NETWORK_ID = 0 ]\n",
            )
            .unwrap();
        let vms: Vec<_> = (0..4)
            .map(|k| {
                a.vm_allocate(
                    &alice,
                    &format!("NAME = vm{k}\nCPU = 1\nMEMORY = 64\nNIC = [ NETWORK_ID = 0 ]\nDISK = [ IMAGE_ID = 0 ]\n"),
                )
                .unwrap()
            })
            .collect();
        a.template_instantiate(&alice, tmpl, "from-template")
            .unwrap();
        a.vm_action(&alice, "hold", vms[1]).unwrap();
        a.vm_action(&alice, "finalize", vms[2]).unwrap();
        assert!(a.vm_action(&alice, "resume", vms[3]).is_err());
        a.vm_deploy(&admin, vms[0], h).unwrap();
        for _ in 0..2 {
            let pair = {
                let s = a.read();
                (s.vms[&vms[0]].state, s.vms[&vms[0]].lcm_state)
            };
            a.step_done(
                vms[0],
                pair,
                StepOutcome::Ok {
                    deploy_id: Some("one-0".into()),
                },
            )
            .unwrap();
        }
        a.vm_savedisk(&alice, vms[0], 0, "saved", "").unwrap();
        a.chown::<Vm>(&admin, vms[3], 0, 0).unwrap();
        let commands = a.recorded_commands().unwrap();
        assert!(commands.len() > 20, "{} commands", commands.len());

        // Replayed a second later: a command that read the clock would show it (STIME, the
        // history's times, repository names).
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = core();
        b.replay(commands).unwrap();
        let (da, db) = (documents(&a), documents(&b));
        for (x, y) in da.iter().zip(&db) {
            assert_eq!(x, y);
        }
        assert!(da[0].contains("<NAME>vm0</NAME>") && da[0].contains("<STIME>"));
    }

    /// A flood of writers three times the queue, all sending at once: every write is
    /// answered (none refused) and the queue never holds more than its bound; the others
    /// wait for room.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_writers_waits_for_room_and_is_all_answered() {
        use crate::core::Command;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let core = Arc::new(core());
        let writers = 3 * COMMAND_QUEUE;
        let most = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (core, most, done) = (Arc::clone(&core), Arc::clone(&most), Arc::clone(&done));
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    most.fetch_max(core.queued_commands(), Ordering::SeqCst);
                    std::thread::yield_now();
                }
            })
        };
        let template = crate::template::parse("CPU = 0.1\nMEMORY = 8\n").unwrap();
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let core = Arc::clone(&core);
                let command = Command::VmAllocate {
                    caller: Caller::oneadmin(),
                    template: template.clone(),
                };
                tokio::spawn(async move { core.submit(command).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().expect("answered").id().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        watcher.join().unwrap();
        assert_eq!(core.read().vms.len(), writers);
        let most = most.load(Ordering::SeqCst);
        assert!(most <= COMMAND_QUEUE, "{most} queued");
    }
}
