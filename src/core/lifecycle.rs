//! The 3.2 VM life cycle: which API action is valid in which state, the transitional states
//! an action enters, and how each driver step completes (success or failure). The drivers
//! themselves run outside the core (see `lcm`); they report back through `step_done`.

use super::auth::Caller;
use super::authz::AuthItem;
use super::command::Answer;
use super::messages::{AllocDetail, DriverReason, EventError, Refusal};
use super::outbox::{Intent, IntentId, Lane, Pending};
use super::owned::get;
use super::transitions::{self, Target, Trigger, VmAction};
use super::{Change, Command, Core, Error, Result, Shared, State, Tx};
use crate::config::Settings;
use crate::model::acl::Op;
use crate::model::host::HostState;
use crate::model::image::{ImageState, ImageType};
use crate::model::monitoring::PollResult;
use crate::model::vm::{FailedStep, History, LcmState, Reason, VmState};
use crate::model::vnet::parse_ip;
use crate::model::{now, Host, Image, Kind, Oid, Permissions, Vm};
use crate::template::Template;

/// What a driver step reported.
#[derive(Debug, Clone)]
pub enum StepOutcome {
    Ok {
        deploy_id: Option<String>,
    },
    /// The driver answered FAILURE with this message.
    Failed(String),
    /// The host names a driver this daemon does not have. 3.2 only logs this ("error getting
    /// driver …"); unlike a driver's FAILURE answer it leaves no TEMPLATE/ERROR.
    DriverMissing(String),
}

pub use crate::model::ctime;

/// `ERROR = [ MESSAGE, TIMESTAMP ]`, replacing any previous one.
pub fn set_template_error(tmpl: &mut Template, message: &EventError) {
    tmpl.remove("ERROR");
    tmpl.push(crate::template::Attribute::vector(
        "ERROR",
        [
            ("MESSAGE", message.to_string()),
            ("TIMESTAMP", ctime(now())),
        ],
    ));
}

fn cpu_share(vm: &Vm) -> i64 {
    (vm.template_cpu() * 100.0) as i64
}

fn mem_share(vm: &Vm) -> i64 {
    vm.template_memory() * 1024
}

/// Adds (or with `sign` -1 removes) the VM's capacity on the host it is placed on.
fn account_host(state: &State, tx: &mut Tx, hid: Oid, vm: &Vm, sign: i64) {
    let host = tx
        .pending_host(hid)
        .cloned()
        .or_else(|| state.hosts.get(&hid).cloned());
    if let Some(mut host) = host {
        host.share.cpu_usage = (host.share.cpu_usage + sign * cpu_share(vm)).max(0);
        host.share.mem_usage = (host.share.mem_usage + sign * mem_share(vm)).max(0);
        host.share.running_vms = (host.share.running_vms + sign).max(0);
        tx.put(Change::Host(host));
    }
}

/// 3.2's `deploy_failure_action` for a live migration and `save_failure_action` for a cold
/// one (catalogue §14.4: "an extra history record"): the destination's record ends in ERROR,
/// the source's ends (USER, its running time too), and a new record copies the source's host:
/// the VM runs there again from `t`.
fn migration_failed(vm: &mut Vm, t: i64) {
    let n = vm.history.len();
    if n < 2 {
        return;
    }
    let destination = &mut vm.history[n - 1];
    destination.etime = t;
    destination.reason = Reason::Error;
    let source = &mut vm.history[n - 2];
    source.etime = t;
    source.retime = t;
    source.reason = Reason::User;
    let source = source.clone();
    vm.history.push(History {
        seq: n as i32,
        stime: t,
        etime: 0,
        pstime: 0,
        petime: 0,
        rstime: t,
        retime: 0,
        estime: 0,
        eetime: 0,
        reason: Reason::None,
        ..source
    });
}

/// The VM and the host of a deploy or migrate request, as 3.2 checks them: the host looked
/// up first, then the VM, then ADMIN on the VM and MANAGE on the host.
fn vm_and_host_to_place_on<'s>(
    state: &'s State,
    caller: &Caller,
    id: Oid,
    hid: Oid,
) -> Result<(&'s Vm, &'s Host)> {
    let host = super::hosts::get(state, hid)?;
    let vm = get::<Vm>(state, id)?;
    state.authorize(
        caller,
        &[
            AuthItem::on(Kind::Vm, Op::Admin, super::owned::Owned::obj_ref(vm)),
            AuthItem::on(Kind::Host, Op::Manage, super::hosts::host_ref(hid)),
        ],
    )?;
    Ok((vm, host))
}

fn new_history(vm: &Vm, host: &Host, vm_dir: &str, t: i64) -> History {
    History {
        seq: vm.history.len() as i32,
        hostname: host.name.clone(),
        vm_dir: vm_dir.to_string(),
        hid: host.id,
        stime: t,
        etime: 0,
        vmm_mad: host.vm_mad.clone(),
        vnm_mad: host.vn_mad.clone(),
        tm_mad: host.tm_mad.clone(),
        pstime: 0,
        petime: 0,
        rstime: 0,
        retime: 0,
        estime: 0,
        eetime: 0,
        reason: Reason::None,
    }
}

/// The leases of a VM that reached DONE go back to their networks (only those it holds).
fn release_leases(state: &State, tx: &mut Tx, vm: &Vm) {
    let mut nets: Vec<crate::model::VNet> = Vec::new();
    for nic in vm.template.vectors("NIC") {
        let get = |k: &str| nic.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(nid), Some(ip)) = (
            get("NETWORK_ID").and_then(|n| n.parse::<Oid>().ok()),
            get("IP"),
        ) else {
            continue;
        };
        let Some(ipn) = parse_ip(ip) else { continue };
        let idx = match nets.iter().position(|n| n.id == nid) {
            Some(i) => i,
            None => match tx
                .pending_vnet(nid)
                .cloned()
                .or_else(|| state.vnets.get(&nid).cloned())
            {
                Some(n) => {
                    nets.push(n);
                    nets.len() - 1
                }
                None => continue,
            },
        };
        let net = &mut nets[idx];
        if net.leases.get(&ipn).is_some_and(|l| l.vid == vm.id) {
            net.release(ipn);
            tracing::info!(vm = vm.id, network = %net.name, "released lease (IP={ip}, MAC={})", get("MAC").unwrap_or(""));
        }
    }
    for net in nets {
        tx.put(Change::VNet(net));
    }
}

/// Moves a disk the VM leaves on the front-end (`<vm dir>/<vid>/disk.<i>`) onto an image's
/// file, as 3.2's `fs` image driver MV did: a rename, or a copy when the repository is on
/// another file system. Returns the size in MB.
fn move_disk(from: &str, to: &str) -> std::io::Result<i64> {
    match std::fs::rename(from, to) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            std::fs::copy(from, to)?;
            std::fs::remove_file(from)?;
        }
        other => other?,
    }
    Ok((std::fs::metadata(to)?.len() / (1024 * 1024)) as i64)
}

/// VM to DONE now: end the history record, give back host capacity and everything else.
fn to_done(settings: &Settings, state: &State, tx: &mut Tx, vm: &mut Vm, t: i64) {
    let was_on_host = vm.state == VmState::Active || vm.state == VmState::Suspended;
    if was_on_host {
        if let Some(h) = vm.last_history_mut() {
            if h.etime == 0 {
                h.etime = t;
            }
        }
        if let Some(hid) = vm.last_history().map(|h| h.hid) {
            account_host(state, tx, hid, vm, -1);
        }
    }
    vm.state = VmState::Done;
    vm.lcm_state = LcmState::LcmInit;
    vm.etime = t;
    release_leases(state, tx, vm);
    release_images(settings, state, tx, vm);
    super::volumes::release_vm_mounts(state, tx, vm);
}

/// The images of a VM that reached DONE, as 3.2's ImageManager releases them (catalogue
/// §14.5). Each DISK gives back one use of its image. A disk to save (SAVE=YES) is then moved
/// from the VM's directory on the front-end, where the epilog left it: a persistent image's
/// disk onto the image's SOURCE, a `one.vm.savedisk` disk into a new repository file of the
/// image made for it. The image is READY (SIZE refreshed) when the move works, ERROR with
/// `TEMPLATE/ERROR` "Error saving image to the repository: Could not move …" when it does not,
/// e.g. on hosts whose transfer driver leaves no disk (tm_dummy), as with 3.2. A VM that was
/// never deployed gives its persistent image straight back (its savedisk images fail: their
/// disk would be `/disk.<i>`); a persistent image linked in place (tm_shared) needs no move.
fn release_images(settings: &Settings, state: &State, tx: &mut Tx, vm: &Vm) {
    let deployed = vm.last_history();
    let vm_home = match deployed {
        Some(_) => format!("{}{}", settings.vm_dir(), vm.id),
        None => String::new(),
    };
    let linked_in_place = deployed.is_some_and(|h| h.tm_mad == "tm_shared");
    fn slot(images: &mut Vec<Image>, state: &State, iid: Oid) -> Option<usize> {
        if let Some(i) = images.iter().position(|i| i.id == iid) {
            return Some(i);
        }
        images.push(state.images.get(&iid)?.clone());
        Some(images.len() - 1)
    }
    let mut images: Vec<Image> = Vec::new();
    let mut saved: Vec<(usize, String, String)> = Vec::new();
    for disk in vm.template.vectors("DISK") {
        let get = |k: &str| crate::template::vector_get(disk, k);
        let yes = |k: &str| get(k).is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"));
        let from = format!("{vm_home}/disk.{}", get("DISK_ID").unwrap_or("0"));
        if let Some(target) = get("SAVE_AS").and_then(|v| v.trim().parse::<Oid>().ok()) {
            if let Some(k) = slot(&mut images, state, target) {
                let to = settings
                    .image_repo_dir()
                    .join(super::images::repository_name(target))
                    .to_string_lossy()
                    .to_string();
                saved.push((k, from.clone(), to));
            }
        }
        let Some(k) = get("IMAGE_ID")
            .and_then(|v| v.trim().parse::<Oid>().ok())
            .and_then(|iid| slot(&mut images, state, iid))
        else {
            continue;
        };
        let img = &mut images[k];
        img.running_vms = (img.running_vms - 1).max(0);
        if img.running_vms > 0 || img.state != ImageState::Used {
            continue;
        }
        let in_place =
            linked_in_place && get("CLONE").is_some_and(|v| v.eq_ignore_ascii_case("no"));
        if img.persistent
            && yes("SAVE")
            && get("SAVE_AS").is_none()
            && deployed.is_some()
            && !in_place
        {
            let to = img.source.clone();
            saved.push((k, from, to));
        } else {
            img.state = ImageState::Ready;
        }
    }
    for (k, from, to) in saved {
        let img = &mut images[k];
        if deployed.is_none() {
            // No VM directory: nothing to move (and no path outside it is ever tried).
            let message = EventError::SaveImage(DriverReason::Move { from, to });
            tracing::warn!(image = img.id, vm = vm.id, "{message}");
            set_template_error(&mut img.template, &message);
            img.state = ImageState::Error;
            continue;
        }
        // The move is an outbox intent, carried out once this write is committed
        // ([`Core::carry_out_disk_intents`]); the image stays LOCKED until then.
        img.state = ImageState::Locked;
        tx.intend(Intent::SaveDisk {
            vm: vm.id,
            image: img.id,
            from,
            to,
            moving: false,
        });
    }
    for img in images {
        tx.put(Change::Image(img));
    }
}

impl Core {
    pub fn vm_action(&self, caller: &Caller, action: &str, id: Oid) -> Result<Oid> {
        self.execute(Command::VmAction {
            caller: caller.clone(),
            action: action.into(),
            vm: id,
        })
        .and_then(Answer::id)
    }

    pub fn vm_deploy(&self, caller: &Caller, id: Oid, hid: Oid) -> Result<Oid> {
        self.execute(Command::VmDeploy {
            caller: caller.clone(),
            vm: id,
            host: hid,
        })
        .and_then(Answer::id)
    }

    /// Scheduler placement; a VM that changed meanwhile is skipped.
    pub fn sched_deploy(&self, id: Oid, hid: Oid) -> Result<()> {
        self.execute(Command::SchedDeploy { vm: id, host: hid })
            .and_then(Answer::done)
    }

    pub fn vm_migrate(&self, caller: &Caller, id: Oid, hid: Oid, live: bool) -> Result<Oid> {
        self.execute(Command::VmMigrate {
            caller: caller.clone(),
            vm: id,
            host: hid,
            live,
        })
        .and_then(Answer::id)
    }

    /// `one.vm.savedisk` as 3.2's VirtualMachineSaveDisk: authorization (MANAGE on the VM,
    /// CREATE IMAGE), then the new image (the caller's, named and typed as the generated
    /// template `NAME="<name>"` … `TYPE=<type>` reads), then the VM's checks. A failure after
    /// the image was made drops it but keeps its id used, as 3.2's pool did.
    pub fn vm_savedisk(
        &self,
        caller: &Caller,
        id: Oid,
        disk_id: i32,
        name: &str,
        itype: &str,
    ) -> Result<Oid> {
        self.execute(Command::VmSaveDisk {
            caller: caller.clone(),
            vm: id,
            disk: disk_id,
            name: name.into(),
            image_type: itype.into(),
        })?
        .outcome()
    }

    /// The outcome of the driver step a `Step` outbox intent asked for, committed with the
    /// intent marked done. A VM that no longer matches the intent's fence (it moved on
    /// meanwhile) is left as it is. A VM the outcome leaves waiting for the same step again
    /// gets a new intent, so that the step is not lost.
    pub fn step_carried_out(
        &self,
        intent: IntentId,
        step: &Intent,
        outcome: StepOutcome,
    ) -> Result<()> {
        self.execute(Command::StepCarriedOut {
            intent,
            step: step.clone(),
            outcome,
        })?
        .done()
    }

    /// Records a `Step` intent for every VM that waits for a step none of `known` is.
    pub fn record_missing_steps(&self, known: Vec<Intent>) -> Result<()> {
        self.execute(Command::MissingSteps { known })?.done()
    }

    /// A driver finished the step of the VM's current transitional state `from`.
    pub fn step_done(
        &self,
        id: Oid,
        from: (VmState, LcmState),
        outcome: StepOutcome,
    ) -> Result<()> {
        self.execute(Command::StepDone {
            vm: id,
            from,
            outcome,
        })
        .and_then(Answer::done)
    }

    /// Carries out the disk moves of the outbox (saved disks into the repository), on the
    /// calling thread, after the commit that decided them. Each outcome (the image READY with
    /// its SIZE, or ERROR) is committed together with the entry's removal. Idempotent: an
    /// image no longer LOCKED was already decided; a move that had started before a crash
    /// (the entry was marked `moving` in its own commit first) and whose disk is gone from the
    /// VM directory is complete. Returns how many entries were carried out.
    pub fn carry_out_disk_intents(&self) -> usize {
        let mut carried = 0;
        loop {
            let batch = self.outbox().take(Lane::Disks, 16);
            if batch.is_empty() {
                return carried;
            }
            for p in batch {
                let done = match p.intent {
                    Intent::RemoveImageFile { .. } => self.remove_image_file(&p),
                    _ => self.save_disk(&p),
                };
                if let Err(e) = done {
                    // The entry stays in the database: the next start carries it out again.
                    tracing::error!(intent = p.id, error = %e, "a repository file's outcome not recorded");
                }
                carried += 1;
            }
        }
    }

    fn save_disk(&self, p: &Pending) -> Result<()> {
        let Intent::SaveDisk {
            vm,
            image,
            from,
            to,
            moving,
        } = &p.intent
        else {
            return Ok(());
        };
        let (vm, image) = (*vm, *image);
        let pending = self
            .read()
            .images
            .get(&image)
            .is_some_and(|img| img.state == ImageState::Locked);
        let outcome: Option<std::io::Result<i64>> = if !pending {
            None
        } else if std::path::Path::new(from).exists() {
            if !moving {
                // Fence: a restart that finds the disk gone knows it was moved.
                let marked = Intent::SaveDisk {
                    vm,
                    image,
                    from: from.clone(),
                    to: to.clone(),
                    moving: true,
                };
                self.execute(Command::IntentUpdate {
                    intent: p.id,
                    body: marked,
                })?
                .done()?;
            }
            Some(
                std::fs::create_dir_all(self.settings.image_repo_dir())
                    .and_then(|_| move_disk(from, to)),
            )
        } else if *moving {
            // Moved before a crash that came before the commit of the outcome.
            Some(std::fs::metadata(to).map(|m| (m.len() / (1024 * 1024)) as i64))
        } else {
            Some(Err(std::io::ErrorKind::NotFound.into()))
        };
        self.execute(Command::DiskSaved {
            intent: p.id,
            vm,
            image,
            from: from.clone(),
            to: to.clone(),
            outcome: outcome.map(|r| r.map_err(|e| e.to_string())),
        })?
        .done()?;
        // A transfer driver that quarantined the VM directory left only the saved disks in it;
        // once they are moved the directory is empty and goes (fails harmlessly otherwise).
        let vm_home = format!("{}{}", self.settings.vm_dir(), vm);
        if std::path::Path::new(from).parent() == Some(std::path::Path::new(&vm_home)) {
            let _ = std::fs::remove_dir(&vm_home);
        }
        Ok(())
    }
}

/// What one poll of a running VM found, for [`Core::vms_polled`].
#[derive(Debug, Clone)]
pub struct Polled {
    pub vm: Oid,
    pub host: Oid,
    pub result: crate::model::monitoring::PollResult,
}

impl Core {
    /// Records a batch of VM polls in one transaction (3.2's VM monitoring): usage figures for
    /// running domains; ACTIVE/UNKNOWN for a domain that vanished (a guest that powered itself
    /// off); SUSPENDED for one paused outside stratusd; FAILED for a crashed one.
    pub fn vms_polled(&self, batch: Vec<Polled>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.execute(Command::VmsPolled { polls: batch })
            .and_then(Answer::done)
    }
}

impl Shared {
    fn vm_for_action<'a>(
        &self,
        state: &'a State,
        caller: &Caller,
        id: Oid,
        op: Op,
    ) -> Result<&'a Vm> {
        let vm = get::<Vm>(state, id)?;
        state.authorize(
            caller,
            &[AuthItem::on(Kind::Vm, op, super::owned::Owned::obj_ref(vm))],
        )?;
        Ok(vm)
    }

    /// Places a PENDING VM on a host (`one.vm.deploy` and the scheduler).
    fn place(&self, state: &State, tx: &mut Tx, vm: &Vm, host: &Host) -> Result<()> {
        transitions::request(vm.id, vm.state, vm.lcm_state, Trigger::Deploy)?;
        let t = now();
        let mut vm = vm.clone();
        // A VM stopped earlier resumes its saved state instead of a fresh prolog.
        let resume = vm
            .last_history()
            .is_some_and(|h| h.reason == Reason::StopResume)
            && !vm.history.is_empty();
        let mut h = new_history(&vm, host, &self.settings.vm_dir(), t);
        h.pstime = t;
        vm.history.push(h);
        vm.state = VmState::Active;
        vm.lcm_state = if resume {
            LcmState::PrologResume
        } else {
            LcmState::Prolog
        };
        account_host(state, tx, host.id, &vm, 1);
        tracing::info!(vm = vm.id, host = %host.name, "New VM state is ACTIVE ({}, {}, {})", vm.id, vm.uid, vm.uname);
        tx.put(Change::Vm(vm));
        Ok(())
    }

    /// The bookkeeping of a finished step (history times, host capacity), then the move to
    /// the table's `target`.
    fn step_succeeded(&self, state: &State, tx: &mut Tx, vm: &mut Vm, t: i64, target: Target) {
        use LcmState::*;
        match (vm.state, vm.lcm_state) {
            (VmState::Active, Prolog | PrologResume | PrologMigrate) => {
                if let Some(h) = vm.last_history_mut() {
                    h.petime = t;
                    h.rstime = t;
                }
                // A stopped VM resumes, a cold migration ends, from the checkpoint.
                vm.boot_restores = vm.lcm_state != Prolog;
            }
            (VmState::Active, Boot) => {
                // The driver's first poll comes with the deploy answer.
                vm.last_poll = t;
                vm.boot_restores = false;
            }
            (VmState::Active, Migrate) => {
                let n = vm.history.len();
                if n >= 2 {
                    let prev = &mut vm.history[n - 2];
                    prev.retime = t;
                    prev.etime = t;
                }
            }
            (VmState::Active, SaveMigrate) => {
                let n = vm.history.len();
                if n >= 2 {
                    let prev = &mut vm.history[n - 2];
                    prev.retime = t;
                    prev.etime = t;
                }
                if let Some(h) = vm.last_history_mut() {
                    h.pstime = t;
                }
            }
            (VmState::Active, Shutdown | Cancel) => {
                let cancelled = vm.lcm_state == Cancel;
                if let Some(h) = vm.last_history_mut() {
                    h.retime = t;
                    h.estime = t;
                    if cancelled {
                        h.reason = Reason::Cancel;
                    }
                }
            }
            (VmState::Active, Epilog) => {
                if let Some(h) = vm.last_history_mut() {
                    h.eetime = t;
                }
            }
            (VmState::Active, SaveStop) => {
                if let Some(h) = vm.last_history_mut() {
                    h.retime = t;
                    h.estime = t;
                    h.reason = Reason::StopResume;
                }
            }
            (VmState::Active, EpilogStop) => {
                if let Some(h) = vm.last_history_mut() {
                    h.eetime = t;
                    h.etime = t;
                }
                if let Some(hid) = vm.last_history().map(|h| h.hid) {
                    account_host(state, tx, hid, vm, -1);
                }
            }
            (VmState::Active, SaveSuspend) => {
                if let Some(h) = vm.last_history_mut() {
                    h.retime = t;
                    h.etime = t;
                    h.reason = Reason::StopResume;
                }
            }
            (VmState::Active, Cleanup) => {
                // 3.2's delete action ends the placement as a user request.
                if let Some(h) = vm.last_history_mut() {
                    h.reason = Reason::User;
                    if h.retime == 0 {
                        h.retime = t;
                    }
                }
            }
            (VmState::Active, Failure) => {
                if let Some(hid) = vm.last_history().map(|h| h.hid) {
                    account_host(state, tx, hid, vm, -1);
                }
                if let Some(h) = vm.last_history_mut() {
                    h.etime = t;
                }
                vm.etime = t;
            }
            _ => {}
        }
        match target {
            Target::To(next_state, next_lcm) => {
                vm.state = next_state;
                vm.lcm_state = next_lcm;
            }
            Target::Done => to_done(&self.settings, state, tx, vm, t),
            Target::AfterCleanup if vm.resubmit_after_cleanup => {
                vm.resubmit_after_cleanup = false;
                if let Some(h) = vm.last_history_mut() {
                    h.etime = t;
                }
                if let Some(hid) = vm.last_history().map(|h| h.hid) {
                    account_host(state, tx, hid, vm, -1);
                }
                vm.state = VmState::Pending;
                vm.lcm_state = LcmInit;
            }
            Target::AfterCleanup => to_done(&self.settings, state, tx, vm, t),
            Target::Stay | Target::Reboot | Target::Prolog => {}
        }
    }

    /// A driver step failed: `driver_message` is the driver's FAILURE text, `None` when the
    /// driver does not exist (3.2 then sets no TEMPLATE/ERROR).
    fn step_failed(
        &self,
        state: &State,
        tx: &mut Tx,
        vm: &mut Vm,
        t: i64,
        driver_message: Option<&str>,
        target: Target,
    ) {
        use LcmState::*;
        if let Some(message) = driver_message {
            let message = message.to_string();
            let text = match FailedStep::of(vm.lcm_state, vm.boot_restores) {
                Some(step) => Some(EventError::Step(step, message)),
                // 3.2 only logs the failures of other steps (the cleanup of finalize).
                None => {
                    tracing::warn!(vm = vm.id, "{message}");
                    None
                }
            };
            if let Some(text) = text {
                tracing::warn!(vm = vm.id, "{text}");
                set_template_error(&mut vm.template, &text);
            }
        }
        match target {
            // The VM keeps running when the hypervisor refuses to stop or move it.
            Target::To(VmState::Active, Running) => {
                // 3.2's deploy_failure_action (MIGRATE) and save_failure_action (SAVE_MIGRATE)
                // do the same: the destination's record ends in ERROR, the source's with USER,
                // and a new record on the source starts now.
                if matches!(vm.lcm_state, Migrate | SaveMigrate) {
                    if let Some(hid) = vm.last_history().map(|h| h.hid) {
                        account_host(state, tx, hid, vm, -1);
                    }
                    migration_failed(vm, t);
                    if let Some(hid) = vm.last_history().map(|h| h.hid) {
                        account_host(state, tx, hid, vm, 1);
                    }
                }
                vm.lcm_state = Running;
            }
            Target::To(next_state, next_lcm) => {
                let prolog = matches!(vm.lcm_state, Prolog | PrologResume | PrologMigrate);
                if let Some(h) = vm.last_history_mut() {
                    // 3.2's prolog_failure_action closes the prolog before failure_action.
                    if prolog {
                        h.petime = t;
                    }
                    h.reason = Reason::Error;
                    h.etime = t;
                }
                if let Some(hid) = vm.last_history().map(|h| h.hid) {
                    account_host(state, tx, hid, vm, -1);
                }
                vm.state = next_state;
                vm.lcm_state = next_lcm;
                // 3.2's DispatchManager::failed_action sets the VM's exit time.
                vm.etime = t;
            }
            Target::Stay
            | Target::Reboot
            | Target::Done
            | Target::Prolog
            | Target::AfterCleanup => {}
        }
    }

    /// [`Command::DiskSaved`]: the image READY with its SIZE, or ERROR with 3.2's message,
    /// and the outbox entry done, in one commit.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_disk_saved(
        &self,
        state: &State,
        tx: &mut Tx,
        intent: IntentId,
        vm: Oid,
        image: Oid,
        from: &str,
        to: &str,
        outcome: &Option<std::result::Result<i64, String>>,
    ) -> Result<()> {
        let outcome = outcome.clone();
        tx.intent_done(intent);
        let (Some(result), Some(img)) = (outcome, state.images.get(&image)) else {
            return Ok(());
        };
        if img.state != ImageState::Locked {
            return Ok(());
        }
        let mut img = img.clone();
        match result {
            Ok(size) => {
                if img.source.is_empty() || img.source == "-" {
                    img.source = to.to_string();
                }
                img.size = size;
                img.state = ImageState::Ready;
                tracing::info!(image, vm, "disk saved into the image repository");
            }
            Err(e) => {
                let message = EventError::SaveImage(DriverReason::Move {
                    from: from.to_string(),
                    to: to.to_string(),
                });
                tracing::warn!(image, vm, error = %e, "{message}");
                set_template_error(&mut img.template, &message);
                img.state = ImageState::Error;
            }
        }
        tx.put(Change::Image(img));
        Ok(())
    }

    pub(super) fn apply_vm_action(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        action: &str,
        id: Oid,
    ) -> Result<Oid> {
        let vm = self.vm_for_action(state, caller, id, Op::Manage)?;
        let Some(action) = VmAction::parse(action) else {
            return Err(Error::request(Refusal::ActionResultUndefined));
        };
        let target = transitions::request(id, vm.state, vm.lcm_state, Trigger::Action(action))?;
        let mut vm = vm.clone();
        let t = now();
        match target {
            Target::Stay => return Ok(id),
            Target::Reboot => {
                // The hypervisor reboots it in place; the VM stays RUNNING.
                tracing::info!(vm = id, "reboot requested");
                vm.reboot_requested = true;
            }
            Target::Done => {
                to_done(&self.settings, state, tx, &mut vm, t);
                tracing::info!(vm = id, "VM finalized");
            }
            Target::To(VmState::Active, LcmState::Boot) if vm.state == VmState::Suspended => {
                // resume: RESTORE on the host it was suspended on.
                let hid = vm.last_history().map(|h| h.hid).ok_or(Error::WrongState)?;
                let host = state.hosts.get(&hid).ok_or(Error::WrongState)?;
                let mut h = new_history(&vm, host, &self.settings.vm_dir(), t);
                h.rstime = t;
                vm.history.push(h);
                vm.state = VmState::Active;
                vm.lcm_state = LcmState::Boot;
                vm.boot_restores = true;
            }
            Target::To(next_state, next_lcm) => {
                if action == VmAction::Restart {
                    // 3.2 resends DEPLOY, not RESTORE: the VM boots from its disks.
                    vm.boot_restores = false;
                }
                if action == VmAction::Resubmit && next_state == VmState::Active {
                    // Remember that the cleanup ends in PENDING, not DONE.
                    vm.resubmit_after_cleanup = true;
                }
                vm.state = next_state;
                vm.lcm_state = next_lcm;
            }
            Target::Prolog | Target::AfterCleanup => {
                return Err(Error::Internal(format!(
                    "life-cycle table: {target:?} for {}",
                    action.name()
                )))
            }
        }
        if vm.lcm_state != LcmState::Running || vm.state != VmState::Active {
            // A reboot still waiting for the hypervisor is moot once the VM moves on.
            vm.reboot_requested = false;
        }
        tx.put(Change::Vm(vm));
        Ok(id)
    }

    pub(super) fn apply_vm_deploy(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        hid: Oid,
    ) -> Result<Oid> {
        let (vm, host) = vm_and_host_to_place_on(state, caller, id, hid)?;
        self.place(state, tx, vm, host)?;
        Ok(id)
    }

    pub(super) fn apply_sched_deploy(
        &self,
        state: &State,
        tx: &mut Tx,
        id: Oid,
        hid: Oid,
    ) -> Result<()> {
        let (Some(vm), Some(host)) = (state.vms.get(&id), state.hosts.get(&hid)) else {
            return Ok(());
        };
        // A VM that moved on meanwhile (held, finalized) is skipped.
        if transitions::next(vm.state, vm.lcm_state, Trigger::Deploy).is_none()
            || host.state == HostState::Disabled
        {
            return Ok(());
        }
        self.place(state, tx, vm, host)
    }

    pub(super) fn apply_vm_migrate(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        hid: Oid,
        live: bool,
    ) -> Result<Oid> {
        let (vm, host) = vm_and_host_to_place_on(state, caller, id, hid)?;
        let target = transitions::request(id, vm.state, vm.lcm_state, Trigger::Migrate { live })?;
        // 3.2's second refusal: a previous history record whose reason is still NONE (a
        // migration requested just before that oned had not processed yet; a VM imported
        // in that moment) answers as a wrong state.
        let n = vm.history.len();
        if n >= 2 && vm.history[n - 2].reason == Reason::None {
            return Err(transitions::refused(
                id,
                vm.state,
                vm.lcm_state,
                Trigger::Migrate { live },
            ));
        }
        let t = now();
        let mut vm = vm.clone();
        let prev_hid = vm.last_history().map(|h| h.hid);
        if let Some(prev) = vm.last_history_mut() {
            prev.reason = Reason::User;
        }
        let mut h = new_history(&vm, host, &self.settings.vm_dir(), t);
        if live {
            h.rstime = t;
        }
        if let Target::To(next_state, next_lcm) = target {
            vm.state = next_state;
            vm.lcm_state = next_lcm;
        }
        vm.history.push(h);
        if let Some(prev) = prev_hid {
            account_host(state, tx, prev, &vm, -1);
        }
        account_host(state, tx, hid, &vm, 1);
        tx.put(Change::Vm(vm));
        Ok(id)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_vm_savedisk(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        disk_id: i32,
        name: &str,
        itype: &str,
    ) -> Result<Result<Oid>> {
        let vm = state.vms.get(&id);
        if !caller.is_privileged() {
            let vm = vm.ok_or(Error::NoExists { kind: Kind::Vm, id })?;
            state.authorize(
                caller,
                &[
                    AuthItem::on(Kind::Vm, Op::Manage, super::owned::Owned::obj_ref(vm)),
                    AuthItem::create(Kind::Image),
                ],
            )?;
        }
        // The name goes between quotes in the generated template, so an empty one is the
        // two-character name `""`; the type is cut at its first blank.
        let name = if name.is_empty() { "\"\"" } else { name };
        let itype = itype.split([' ', '\t']).next().unwrap_or("");
        let taken = (state.images.values()).find(|i| i.uid == caller.uid && i.name == name);
        Error::check_new_name(Kind::Image, "IMAGE", name, taken.map(|i| i.id))?;
        let image_type = if itype.is_empty() {
            ImageType::Os
        } else {
            ImageType::parse(itype)
                .ok_or_else(|| Error::alloc(Kind::Image, AllocDetail::IncorrectImageType))?
        };
        let user = super::users::get(state, caller.uid)?;
        let img_id = tx.alloc_id(state, Kind::Image);
        // From here on a refusal keeps the image id used (the write commits the counter).
        let Some(vm) = vm else {
            return Ok(Err(Error::NoExists { kind: Kind::Vm, id }));
        };
        let refuse = |r: Refusal| Ok(Err(Error::request(r)));
        if matches!(vm.state, VmState::Done | VmState::Failed) {
            return refuse(Refusal::SaveAsFinished);
        }
        let mut vm = vm.clone();
        let disk_key = disk_id.to_string();
        let Some(disk) = vm
            .template
            .vectors_mut("DISK")
            .find(|d| d.iter().any(|(k, v)| k == "DISK_ID" && *v == disk_key))
        else {
            return refuse(Refusal::SaveAsNoDisk {
                disk: disk_id,
                vm: id,
            });
        };
        if disk.iter().any(|(k, _)| k == "SAVE_AS") {
            return refuse(Refusal::SaveAsAlready(disk_id));
        }
        if disk
            .iter()
            .any(|(k, v)| k == "PERSISTENT" && v.eq_ignore_ascii_case("YES"))
        {
            return refuse(Refusal::SaveAsPersistent(disk_id));
        }
        let mut tmpl = Template::new();
        tmpl.set_single("DEV_PREFIX", &self.settings.default_device_prefix);
        tmpl.set_single("PUBLIC", "NO");
        tmpl.set_single("SAVED_DISK_ID", disk_id.to_string());
        tmpl.set_single("SAVED_VM_ID", id.to_string());
        crate::template::vector_set(disk, "SAVE", "YES");
        crate::template::vector_set(disk, "SAVE_AS", img_id.to_string());
        tx.put(Change::Image(Image {
            id: img_id,
            uid: caller.uid,
            gid: user.gid,
            uname: user.name.clone(),
            gname: user.gname.clone(),
            name: name.to_string(),
            perms: Permissions::default(),
            image_type,
            persistent: false,
            regtime: now(),
            source: "-".into(),
            path: String::new(),
            fstype: String::new(),
            size: 0,
            state: ImageState::Locked,
            running_vms: 0,
            template: tmpl,
        }));
        tx.put(Change::Vm(vm));
        Ok(Ok(img_id))
    }

    /// [`Command::MissingSteps`].
    pub(super) fn apply_missing_steps(&self, state: &State, tx: &mut Tx, known: &[Intent]) {
        for vm in state.vms.values() {
            if let Some(step) = Intent::step_for(vm) {
                if !known.contains(&step) {
                    tx.intend(step);
                }
            }
        }
    }

    /// [`Command::StepCarriedOut`].
    pub(super) fn apply_step_carried_out(
        &self,
        state: &State,
        tx: &mut Tx,
        intent: IntentId,
        step: &Intent,
        outcome: &StepOutcome,
    ) -> Result<()> {
        tx.intent_done(intent);
        let Intent::Step {
            vm, state: s, lcm, ..
        } = step
        else {
            return Ok(());
        };
        if !step.fences(state.vms.get(vm)) {
            return Ok(());
        }
        self.apply_step_done(state, tx, *vm, (*s, *lcm), outcome)?;
        if step.fences(tx.pending_vm(*vm).or(state.vms.get(vm))) {
            tx.intend(step.clone());
        }
        Ok(())
    }

    pub(super) fn apply_step_done(
        &self,
        state: &State,
        tx: &mut Tx,
        id: Oid,
        from: (VmState, LcmState),
        outcome: &StepOutcome,
    ) -> Result<()> {
        let outcome = outcome.clone();

        let Some(vm) = state.vms.get(&id) else {
            return Ok(());
        };
        if (vm.state, vm.lcm_state) != from {
            // Something else (a finalize) moved the VM on meanwhile.
            return Ok(());
        }
        let mut vm = vm.clone();
        let t = now();
        if vm.lcm_state == LcmState::Running && vm.reboot_requested {
            vm.reboot_requested = false;
            if let StepOutcome::Failed(message) = outcome {
                let text = EventError::Reboot(message);
                tracing::warn!(vm = vm.id, "{text}");
                set_template_error(&mut vm.template, &text);
            }
            tx.put(Change::Vm(vm));
            return Ok(());
        }
        let trigger = match outcome {
            StepOutcome::Ok { .. } => Trigger::StepDone,
            _ => Trigger::StepFailed,
        };
        let Some(target) = transitions::next(vm.state, vm.lcm_state, trigger) else {
            tracing::debug!(
                vm = id,
                step = trigger.name(),
                "a step's answer that no longer applies"
            );
            return Ok(());
        };
        match outcome {
            StepOutcome::Failed(message) => {
                self.step_failed(state, tx, &mut vm, t, Some(&message), target)
            }
            StepOutcome::DriverMissing(driver) => {
                tracing::warn!(vm = id, "error getting driver {driver}");
                self.step_failed(state, tx, &mut vm, t, None, target)
            }
            StepOutcome::Ok { deploy_id } => {
                // Only a DEPLOY writes DEPLOY_ID: a RESTORE (resume, the end of a cold
                // migration) and a live migration keep the first deployment's, even on
                // another host, as 3.2 does.
                let deployed = vm.lcm_state == LcmState::Boot && !vm.boot_restores;
                if let (true, Some(d)) = (deployed, deploy_id) {
                    vm.deploy_id = d;
                }
                self.step_succeeded(state, tx, &mut vm, t, target);
            }
        }
        tx.put(Change::Vm(vm));
        Ok(())
    }

    pub(super) fn apply_vms_polled(
        &self,
        state: &State,
        tx: &mut Tx,
        batch: &[Polled],
    ) -> Result<()> {
        let batch = batch.to_vec();

        let t = now();
        for p in batch {
            let Some(vm) = state.vms.get(&p.vm) else {
                continue;
            };
            // Only a VM still on the polled host is concerned.
            if vm.last_history().map(|h| h.hid) != Some(p.host) {
                continue;
            }
            let trigger = match &p.result {
                PollResult::Running { .. } => Trigger::PollRunning,
                PollResult::Gone => Trigger::PollGone,
                PollResult::Paused => Trigger::PollPaused,
                PollResult::Crashed => Trigger::PollCrashed,
                PollResult::Error(message) | PollResult::Unreachable(message) => {
                    tracing::warn!(vm = vm.id, "Error monitoring VM: {message}");
                    continue;
                }
            };
            let Some(target) = transitions::next(vm.state, vm.lcm_state, trigger) else {
                continue;
            };
            if trigger == Trigger::PollGone && target == Target::Stay {
                // Still missing: nothing new to record.
                continue;
            }
            let mut vm = vm.clone();
            match p.result {
                PollResult::Running {
                    cpu,
                    memory_kib,
                    net_tx,
                    net_rx,
                } => {
                    vm.last_poll = t;
                    vm.cpu = cpu;
                    vm.memory = memory_kib;
                    vm.net_tx = net_tx;
                    vm.net_rx = net_rx;
                    if target != Target::Stay {
                        // As 3.2's poll did: the domain is there again (its host is back).
                        tracing::info!(
                            vm = vm.id,
                            "VM was found running again: new state is RUNNING"
                        );
                    }
                }
                PollResult::Gone => {
                    tracing::warn!(vm = vm.id, "VM running but it was not found. Restart and delete actions available or try to recover it manually");
                    vm.last_poll = t;
                }
                PollResult::Paused => {
                    if let Some(h) = vm.last_history_mut() {
                        h.retime = t;
                        h.etime = t;
                        h.reason = Reason::StopResume;
                    }
                }
                PollResult::Crashed => {
                    set_template_error(
                        &mut vm.template,
                        &EventError::MonitorVm("the domain crashed".into()),
                    );
                    if let Some(h) = vm.last_history_mut() {
                        h.reason = Reason::Error;
                        h.etime = t;
                    }
                    if let Some(hid) = vm.last_history().map(|h| h.hid) {
                        account_host(state, tx, hid, &vm, -1);
                    }
                }
                PollResult::Error(_) | PollResult::Unreachable(_) => continue,
            }
            if let Target::To(next_state, next_lcm) = target {
                vm.state = next_state;
                vm.lcm_state = next_lcm;
            }
            tx.put(Change::Vm(vm));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::core::hosts::MonitorResult;
    use crate::store::Store;

    fn host(core: &Core, name: &str) -> Oid {
        let admin = Caller::oneadmin();
        let h = core
            .host_allocate(&admin, name, "im_kvm", "vmm_kvm", "dummy", "tm_dummy")
            .unwrap();
        let values = [
            ("TOTALCPU", "800"),
            ("FREECPU", "800"),
            ("TOTALMEMORY", "1048576"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec();
        core.host_monitored(h, MonitorResult::Ok(values)).unwrap();
        h
    }

    fn step(core: &Core, vm: Oid) {
        let pair = {
            let r = core.read();
            (r.vms[&vm].state, r.vms[&vm].lcm_state)
        };
        core.step_done(vm, pair, StepOutcome::Ok { deploy_id: None })
            .unwrap();
    }

    /// 3.2's deploy_failure_action (catalogue §14.4) and save_failure_action (§12: a failed
    /// save of a cold migration goes back to RUNNING): a failed live or cold migration leaves
    /// the VM RUNNING on the source host with an extra history record, and the hosts' usage as
    /// before.
    #[test]
    fn a_failed_migration_runs_on_the_source_again_with_an_extra_record() {
        for (live, migrating) in [(true, LcmState::Migrate), (false, LcmState::SaveMigrate)] {
            failed_migration_runs_on_the_source_again(live, migrating);
        }
    }

    /// A core that records VM log lines (and no other effect).
    fn core_with_vm_log() -> Core {
        let mut core =
            Core::open(Store::open_in_memory().unwrap(), Settings::default(), "pw").unwrap();
        core.set_effects(crate::core::outbox::Effects {
            hook_points: vec![],
            vm_log: true,
            dhcp: false,
            steps: false,
        });
        core
    }

    /// The lines of the last VM log intent recorded, as the file shows them after the time.
    fn last_vm_log_lines(core: &Core) -> Vec<String> {
        use crate::core::outbox::{Intent, Lane};
        core.outbox()
            .take(Lane::VmLog, usize::MAX)
            .into_iter()
            .filter_map(|p| match p.intent {
                Intent::VmLog { lines, .. } => Some(lines),
                _ => None,
            })
            .next_back()
            .unwrap_or_default()
            .iter()
            .map(|l| crate::vmlog::format_line(0, l.module, l.level, &l.text)[25..].to_string())
            .collect()
    }

    /// 3.2 logs a failed deploy or restore as the hypervisor manager's error, then the FAILED
    /// state (VirtualMachineManagerDriver's log_error, then failure_action).
    #[test]
    fn a_failed_boot_is_logged_as_the_hypervisor_managers_error() {
        let core = core_with_vm_log();
        let admin = Caller::oneadmin();
        let h0 = host(&core, "node0");
        for restoring in [false, true] {
            let vm = core.vm_allocate(&admin, "CPU = 1\nMEMORY = 64\n").unwrap();
            core.vm_deploy(&admin, vm, h0).unwrap();
            step(&core, vm);
            if restoring {
                step(&core, vm);
                core.vm_action(&admin, "suspend", vm).unwrap();
                step(&core, vm);
                core.vm_action(&admin, "resume", vm).unwrap();
            }
            core.step_done(
                vm,
                (VmState::Active, LcmState::Boot),
                StepOutcome::Failed("no hypervisor".into()),
            )
            .unwrap();
            assert_eq!(core.read().vms[&vm].state, VmState::Failed);
            let error = if restoring {
                "Error restoring VM"
            } else {
                "Error deploying virtual machine"
            };
            assert_eq!(
                last_vm_log_lines(&core),
                [
                    format!("[VMM][E]: {error}: no hypervisor"),
                    "[DiM][I]: New VM state is FAILED".to_string(),
                ]
            );
        }
    }

    fn failed_migration_runs_on_the_source_again(live: bool, migrating: LcmState) {
        let core = core_with_vm_log();
        let admin = Caller::oneadmin();
        let (h0, h1) = (host(&core, "node0"), host(&core, "node1"));
        let vm = core.vm_allocate(&admin, "CPU = 1\nMEMORY = 64\n").unwrap();
        core.vm_deploy(&admin, vm, h0).unwrap();
        step(&core, vm);
        step(&core, vm);
        let usage = |core: &Core| {
            let r = core.read();
            (
                r.hosts[&h0].share.running_vms,
                r.hosts[&h1].share.running_vms,
            )
        };
        assert_eq!(usage(&core), (1, 0));
        core.vm_migrate(&admin, vm, h1, live).unwrap();
        assert_eq!(usage(&core), (0, 1));
        core.step_done(
            vm,
            (VmState::Active, migrating),
            StepOutcome::Failed("migration refused".into()),
        )
        .unwrap();
        // The VM log as 3.2's managers wrote it: the hypervisor manager's error, then the
        // life-cycle manager's assumption (no "New VM state is RUNNING").
        let logged = last_vm_log_lines(&core);
        let (error, assumption) = if live {
            ("Error live migrating VM", "Fail to life migrate VM.")
        } else {
            (
                "Error saving VM state",
                "Fail to save VM state while migrating.",
            )
        };
        assert_eq!(
            logged,
            [
                format!("[VMM][E]: {error}: migration refused"),
                format!(
                    "[LCM][I]: {assumption} Assuming that the VM is still RUNNING (will poll VM)."
                ),
            ]
        );
        let v = core.read().vms[&vm].clone();
        assert_eq!(
            (v.state, v.lcm_state),
            (VmState::Active, LcmState::Running),
            "{migrating:?}"
        );
        assert_eq!(usage(&core), (1, 0));
        let h = &v.history;
        assert_eq!(h.len(), 3, "{h:?}");
        let t = h[2].stime;
        assert_eq!(
            (h[0].hid, h[0].reason, h[0].etime, h[0].retime),
            (h0, Reason::User, t, t)
        );
        assert_eq!(
            (h[1].hid, h[1].reason, h[1].etime, h[1].retime),
            (h1, Reason::Error, t, 0)
        );
        assert_eq!(
            (
                h[2].seq,
                h[2].hid,
                &h[2].hostname,
                h[2].rstime,
                h[2].etime,
                h[2].reason
            ),
            (2, h0, &h[0].hostname, t, 0, Reason::None)
        );
        // The previous record's reason is ERROR, not NONE: the VM may be migrated again.
        core.vm_migrate(&admin, vm, h1, live).unwrap();
        step(&core, vm);
        assert_eq!(core.read().vms[&vm].last_history().map(|h| h.hid), Some(h1));
    }

    /// 3.2 (RequestManagerVirtualMachine.cc, catalogue §4.3 and §14.4): a RUNNING VM whose
    /// previous history record's reason is still NONE cannot be migrated, with the same
    /// answer as a VM that is not RUNNING.
    #[test]
    fn migrate_is_refused_while_the_previous_history_reason_is_none() {
        let core = Core::open(Store::open_in_memory().unwrap(), Settings::default(), "pw").unwrap();
        let admin = Caller::oneadmin();
        let (h0, h1) = (host(&core, "node0"), host(&core, "node1"));
        let vm = core.vm_allocate(&admin, "CPU = 1\nMEMORY = 64\n").unwrap();
        core.vm_deploy(&admin, vm, h0).unwrap();
        step(&core, vm);
        step(&core, vm);
        // A migration that completed leaves its previous record's reason USER: the next one
        // is accepted.
        core.vm_migrate(&admin, vm, h1, true).unwrap();
        step(&core, vm);
        assert_eq!(core.read().vms[&vm].lcm_state, LcmState::Running);
        assert_eq!(core.read().vms[&vm].history[0].reason, Reason::User);
        core.vm_migrate(&admin, vm, h0, true).unwrap();
        step(&core, vm);
        assert_eq!(core.read().vms[&vm].lcm_state, LcmState::Running);
        // As oned left a VM whose migration it had not processed yet (and an import brings it
        // over so): RUNNING, with the previous record's reason NONE.
        core.write(|state, tx| {
            let mut v = state.vms[&vm].clone();
            let n = v.history.len();
            v.history[n - 2].reason = Reason::None;
            tx.put(Change::Vm(v));
            Ok(())
        })
        .unwrap();
        let before = core.store_fingerprint().unwrap();
        for live in [true, false] {
            let err = core.vm_migrate(&admin, vm, h1, live).unwrap_err();
            assert!(matches!(err, Error::WrongState), "{err:?}");
            assert_eq!(
                (err.message(), err.code()),
                ("Wrong state to perform action".to_string(), 0x800)
            );
        }
        assert_eq!(core.store_fingerprint().unwrap(), before);
        let v = &core.read().vms[&vm];
        assert_eq!((v.state, v.lcm_state), (VmState::Active, LcmState::Running));
    }
}
