//! The commands of the core: every write it does, as data. A command carries everything
//! applying it needs (the caller, the parsed template, a driver's outcome, a generated UUID);
//! [`Stamped`] adds the time it was made. [`apply`] is a function of the command and the
//! current state alone (the time is the stamped one), so applying the same commands in the same
//! order to the same state always gives the same state: what a replicated log needs.
//!
//! Each command's validation runs in the order and with the messages of the 3.2 method it
//! implements; a refusal commits nothing, except where 3.2 kept an id used
//! ([`Answer::Refused`]).

use super::auth::Caller;
use super::lifecycle::{Polled, StepOutcome};
use super::outbox::{Intent, IntentId};
use super::vnets::LeaseOp;
use super::volumes::{
    AttachPlan, CachedOrigin, CopyPlans, Deleted, OwnedTakeRequest, VolumeForm, VolumeResult,
    VolumeUser,
};
use super::{Error, Result, Shared, State, Tx};
use crate::model::monitoring::MonitorResult;
use crate::model::vm::{DiskSize, LcmState, VmState};
use crate::model::volume::{Mount, Volume};
use crate::model::{Image, Kind, Oid, User, VNet, Vm, VmTemplate};
use crate::template::Template;

/// A command and the time it was made (nanoseconds since the epoch), which is the only time
/// applying it reads.
#[derive(Debug, Clone)]
pub struct Stamped {
    pub nanos: i64,
    pub command: Command,
}

impl Stamped {
    /// `command`, stamped with the clock now.
    pub fn now(command: Command) -> Stamped {
        Stamped {
            nanos: crate::model::wall_clock_nanos(),
            command,
        }
    }
}

/// Every write of the core.
#[derive(Debug, Clone)]
pub enum Command {
    // Users, groups, ACLs.
    /// StratusLab's default driver registering an unknown user at first contact.
    UserRegister {
        name: String,
        secret: String,
    },
    UserAllocate {
        caller: Caller,
        name: String,
        password: String,
        driver: String,
    },
    UserDelete {
        caller: Caller,
        id: Oid,
    },
    UserUpdate {
        caller: Caller,
        id: Oid,
        text: String,
    },
    UserPasswd {
        caller: Caller,
        id: Oid,
        password: String,
    },
    UserChgrp {
        caller: Caller,
        id: Oid,
        gid: Oid,
    },
    UserChauth {
        caller: Caller,
        id: Oid,
        driver: String,
        password: String,
    },
    GroupAllocate {
        caller: Caller,
        name: String,
    },
    GroupDelete {
        caller: Caller,
        id: Oid,
    },
    AclAddRule {
        caller: Caller,
        user: String,
        resource: String,
        rights: String,
    },
    AclDelRule {
        caller: Caller,
        id: Oid,
    },
    // Objects with an owner.
    Chown {
        caller: Caller,
        kind: Kind,
        id: Oid,
        uid: Oid,
        gid: Oid,
    },
    Chmod {
        caller: Caller,
        kind: Kind,
        id: Oid,
        bits: [i32; 9],
    },
    // Templates.
    TemplateAllocate {
        caller: Caller,
        template: Template,
    },
    TemplateUpdate {
        caller: Caller,
        id: Oid,
        text: String,
    },
    TemplateDelete {
        caller: Caller,
        id: Oid,
    },
    TemplateInstantiate {
        caller: Caller,
        template: Oid,
        name: String,
    },
    // Virtual networks.
    VnAllocate {
        caller: Caller,
        template: Template,
    },
    VnDelete {
        caller: Caller,
        id: Oid,
    },
    VnUpdate {
        caller: Caller,
        id: Oid,
        text: String,
    },
    VnLeases {
        caller: Caller,
        id: Oid,
        text: String,
        op: LeaseOp,
    },
    // Images.
    ImageAllocate {
        caller: Caller,
        template: Template,
    },
    /// The repository copy of `CopyImage` intent `intent` finished (`outcome`: bytes copied,
    /// or the error); the intent is done in the same commit.
    ImageCopied {
        intent: IntentId,
        image: Oid,
        from: String,
        to: String,
        outcome: std::result::Result<u64, String>,
    },
    ImageDelete {
        caller: Caller,
        id: Oid,
    },
    ImageUpdate {
        caller: Caller,
        id: Oid,
        text: String,
    },
    ImagePersistent {
        caller: Caller,
        id: Oid,
        persistent: bool,
    },
    ImageEnable {
        caller: Caller,
        id: Oid,
        enable: bool,
    },
    ImageChtype {
        caller: Caller,
        id: Oid,
        type_name: String,
    },
    // Hosts.
    HostAllocate {
        caller: Caller,
        name: String,
        im: String,
        vmm: String,
        vnm: String,
        tm: String,
    },
    HostDelete {
        caller: Caller,
        id: Oid,
    },
    HostUpdate {
        caller: Caller,
        id: Oid,
        text: String,
    },
    HostEnable {
        caller: Caller,
        id: Oid,
        enable: bool,
    },
    /// A monitoring pass of a host.
    HostMonitored {
        host: Oid,
        result: MonitorResult,
    },
    // Virtual machines.
    VmAllocate {
        caller: Caller,
        template: Template,
    },
    VmAction {
        caller: Caller,
        action: String,
        vm: Oid,
    },
    VmDeploy {
        caller: Caller,
        vm: Oid,
        host: Oid,
    },
    /// The scheduler's placement (skipped if the VM or host moved on).
    SchedDeploy {
        vm: Oid,
        host: Oid,
    },
    VmMigrate {
        caller: Caller,
        vm: Oid,
        host: Oid,
        live: bool,
    },
    VmSaveDisk {
        caller: Caller,
        vm: Oid,
        disk: i32,
        name: String,
        image_type: String,
    },
    /// A driver finished the step of the VM's transitional state `from`.
    StepDone {
        vm: Oid,
        from: (VmState, LcmState),
        outcome: StepOutcome,
    },
    /// A `Step` intent for every VM that waits for a step none of `known` is (at start: a
    /// database imported from oned, or written before steps were intents).
    MissingSteps {
        known: Vec<Intent>,
    },
    /// The outcome of the driver step a `Step` outbox intent asked for.
    StepCarriedOut {
        intent: IntentId,
        step: Intent,
        outcome: StepOutcome,
    },
    /// A batch of VM polls.
    VmsPolled {
        polls: Vec<Polled>,
    },
    /// The sizes of the disks a VM's prolog made (stratusd-only, for accounting).
    VmDisksSized {
        vm: Oid,
        disks: Vec<DiskSize>,
    },
    // The outbox.
    /// Outbox entries carried out.
    IntentsDone {
        ids: Vec<IntentId>,
    },
    /// A committed outbox entry rewritten (an effect recording its progress).
    IntentUpdate {
        intent: IntentId,
        body: Intent,
    },
    /// A saved disk's move finished (`outcome`: the size in MiB, or the error; `None`
    /// when the image was already decided), and its outbox entry is done.
    DiskSaved {
        intent: IntentId,
        vm: Oid,
        image: Oid,
        from: String,
        to: String,
        outcome: Option<std::result::Result<i64, String>>,
    },
    // Persistent volumes (the built-in pdisk service).
    VolumeCreate {
        volume: Volume,
    },
    VolumeReady {
        uuid: String,
        size: Option<u64>,
    },
    VolumeForget {
        uuid: String,
    },
    VolumeCachedOrigin {
        image: CachedOrigin,
        new_uuid: String,
    },
    VolumeCopy {
        who: VolumeUser,
        uuid: String,
        new_uuid: String,
        plans: CopyPlans,
    },
    VolumeUpdate {
        who: VolumeUser,
        uuid: String,
        form: VolumeForm,
    },
    VolumeDelete {
        who: VolumeUser,
        uuid: String,
    },
    VolumesToPurge {
        now: i64,
        period_secs: f64,
    },
    VolumeTake {
        request: OwnedTakeRequest,
    },
    VolumeAttach {
        who: VolumeUser,
        uuid: String,
        vm: Oid,
        register_only: bool,
    },
    VolumeUnmount {
        uuid: String,
        vm: Oid,
    },
    VolumeMountFound {
        uuid: String,
        mount: Mount,
    },
}

impl Command {
    /// The command's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::UserRegister { .. } => "UserRegister",
            Command::UserAllocate { .. } => "UserAllocate",
            Command::UserDelete { .. } => "UserDelete",
            Command::UserUpdate { .. } => "UserUpdate",
            Command::UserPasswd { .. } => "UserPasswd",
            Command::UserChgrp { .. } => "UserChgrp",
            Command::UserChauth { .. } => "UserChauth",
            Command::GroupAllocate { .. } => "GroupAllocate",
            Command::GroupDelete { .. } => "GroupDelete",
            Command::AclAddRule { .. } => "AclAddRule",
            Command::AclDelRule { .. } => "AclDelRule",
            Command::Chown { .. } => "Chown",
            Command::Chmod { .. } => "Chmod",
            Command::TemplateAllocate { .. } => "TemplateAllocate",
            Command::TemplateUpdate { .. } => "TemplateUpdate",
            Command::TemplateDelete { .. } => "TemplateDelete",
            Command::TemplateInstantiate { .. } => "TemplateInstantiate",
            Command::VnAllocate { .. } => "VnAllocate",
            Command::VnDelete { .. } => "VnDelete",
            Command::VnUpdate { .. } => "VnUpdate",
            Command::VnLeases { .. } => "VnLeases",
            Command::ImageAllocate { .. } => "ImageAllocate",
            Command::ImageCopied { .. } => "ImageCopied",
            Command::ImageDelete { .. } => "ImageDelete",
            Command::ImageUpdate { .. } => "ImageUpdate",
            Command::ImagePersistent { .. } => "ImagePersistent",
            Command::ImageEnable { .. } => "ImageEnable",
            Command::ImageChtype { .. } => "ImageChtype",
            Command::HostAllocate { .. } => "HostAllocate",
            Command::HostDelete { .. } => "HostDelete",
            Command::HostUpdate { .. } => "HostUpdate",
            Command::HostEnable { .. } => "HostEnable",
            Command::HostMonitored { .. } => "HostMonitored",
            Command::VmAllocate { .. } => "VmAllocate",
            Command::VmAction { .. } => "VmAction",
            Command::VmDeploy { .. } => "VmDeploy",
            Command::SchedDeploy { .. } => "SchedDeploy",
            Command::VmMigrate { .. } => "VmMigrate",
            Command::VmSaveDisk { .. } => "VmSaveDisk",
            Command::StepDone { .. } => "StepDone",
            Command::MissingSteps { .. } => "MissingSteps",
            Command::StepCarriedOut { .. } => "StepCarriedOut",
            Command::VmsPolled { .. } => "VmsPolled",
            Command::VmDisksSized { .. } => "VmDisksSized",
            Command::IntentsDone { .. } => "IntentsDone",
            Command::IntentUpdate { .. } => "IntentUpdate",
            Command::DiskSaved { .. } => "DiskSaved",
            Command::VolumeCreate { .. } => "VolumeCreate",
            Command::VolumeReady { .. } => "VolumeReady",
            Command::VolumeForget { .. } => "VolumeForget",
            Command::VolumeCachedOrigin { .. } => "VolumeCachedOrigin",
            Command::VolumeCopy { .. } => "VolumeCopy",
            Command::VolumeUpdate { .. } => "VolumeUpdate",
            Command::VolumeDelete { .. } => "VolumeDelete",
            Command::VolumesToPurge { .. } => "VolumesToPurge",
            Command::VolumeTake { .. } => "VolumeTake",
            Command::VolumeAttach { .. } => "VolumeAttach",
            Command::VolumeUnmount { .. } => "VolumeUnmount",
            Command::VolumeMountFound { .. } => "VolumeMountFound",
        }
    }
}

/// What a command answers when it was applied (a refusal is the `Err` of the result). An
/// answer makes one hop, so its size does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    Done,
    /// The object's id, as most oned methods answer.
    Id(Oid),
    /// Committed (an id was used), yet answered with this refusal (3.2's savedisk).
    Refused(Error),
    User(User),
    /// A deleted image's SOURCE.
    Source(String),
    Volume(Volume),
    Volumes(Vec<Volume>),
    VolumeCreated(VolumeResult<()>),
    VolumeCopy(VolumeResult<(Volume, Volume)>),
    VolumeUpdated(VolumeResult<Volume>),
    VolumeDeleted(VolumeResult<Deleted>),
    Attach(VolumeResult<AttachPlan>),
    Taken(std::result::Result<Volume, String>),
    Flag(bool),
}

fn unexpected(answer: Answer) -> Error {
    match answer {
        Answer::Refused(e) => e,
        other => Error::Internal(format!("unexpected answer of the core: {other:?}")),
    }
}

macro_rules! getters {
    ($($getter:ident: $variant:ident($($field:ident),+) -> $ty:ty => $value:expr;)*) => {
        impl Answer {
            $(
                pub fn $getter(self) -> Result<$ty> {
                    match self {
                        Answer::$variant($($field),+) => Ok($value),
                        other => Err(unexpected(other)),
                    }
                }
            )*
        }
    };
}

getters! {
    id: Id(id) -> Oid => id;
    user: User(user) -> User => user;
    source: Source(source) -> String => source;
    volume: Volume(v) -> Volume => v;
    volumes: Volumes(v) -> Vec<Volume> => v;
    volume_created: VolumeCreated(v) -> VolumeResult<()> => v;
    volume_copy: VolumeCopy(v) -> VolumeResult<(Volume, Volume)> => v;
    volume_update: VolumeUpdated(v) -> VolumeResult<Volume> => v;
    volume_deleted: VolumeDeleted(v) -> VolumeResult<Deleted> => v;
    attach: Attach(v) -> VolumeResult<AttachPlan> => v;
    taken: Taken(v) -> std::result::Result<Volume, String> => v;
    flag: Flag(v) -> bool => v;
}

impl Answer {
    pub fn done(self) -> Result<()> {
        match self {
            Answer::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The id, or the refusal of a command that still committed.
    pub fn outcome(self) -> Result<Oid> {
        self.id()
    }
}

/// Applies `command` to `state`, recording its changes and intents in `tx`.
pub(super) fn apply(
    core: &Shared,
    state: &State,
    tx: &mut Tx,
    command: &Command,
) -> Result<Answer> {
    use Answer::{Done, Id};
    Ok(match command {
        Command::UserRegister { name, secret } => {
            Answer::User(core.apply_user_register(state, tx, name, secret)?)
        }
        Command::UserAllocate {
            caller,
            name,
            password,
            driver,
        } => Id(core.apply_user_allocate(state, tx, caller, name, password, driver)?),
        Command::UserDelete { caller, id } => Id(core.apply_user_delete(state, tx, caller, *id)?),
        Command::UserUpdate { caller, id, text } => {
            Id(core.apply_user_update(state, tx, caller, *id, text)?)
        }
        Command::UserPasswd {
            caller,
            id,
            password,
        } => Id(core.apply_user_passwd(state, tx, caller, *id, password)?),
        Command::UserChgrp { caller, id, gid } => {
            Id(core.apply_user_chgrp(state, tx, caller, *id, *gid)?)
        }
        Command::UserChauth {
            caller,
            id,
            driver,
            password,
        } => Id(core.apply_user_chauth(state, tx, caller, *id, driver, password)?),
        Command::GroupAllocate { caller, name } => {
            Id(core.apply_group_allocate(state, tx, caller, name)?)
        }
        Command::GroupDelete { caller, id } => Id(core.apply_group_delete(state, tx, caller, *id)?),
        Command::AclAddRule {
            caller,
            user,
            resource,
            rights,
        } => Id(core.apply_acl_addrule(state, tx, caller, user, resource, rights)?),
        Command::AclDelRule { caller, id } => Id(core.apply_acl_delrule(state, tx, caller, *id)?),
        Command::Chown {
            caller,
            kind,
            id,
            uid,
            gid,
        } => Id(match kind {
            Kind::Vm => core.apply_chown::<Vm>(state, tx, caller, *id, *uid, *gid)?,
            Kind::Template => core.apply_chown::<VmTemplate>(state, tx, caller, *id, *uid, *gid)?,
            Kind::Net => core.apply_chown::<VNet>(state, tx, caller, *id, *uid, *gid)?,
            Kind::Image => core.apply_chown::<Image>(state, tx, caller, *id, *uid, *gid)?,
            other => return Err(Error::Internal(format!("chown of {other:?}"))),
        }),
        Command::Chmod {
            caller,
            kind,
            id,
            bits,
        } => Id(match kind {
            Kind::Vm => core.apply_chmod::<Vm>(state, tx, caller, *id, *bits)?,
            Kind::Template => core.apply_chmod::<VmTemplate>(state, tx, caller, *id, *bits)?,
            Kind::Net => core.apply_chmod::<VNet>(state, tx, caller, *id, *bits)?,
            Kind::Image => core.apply_chmod::<Image>(state, tx, caller, *id, *bits)?,
            other => return Err(Error::Internal(format!("chmod of {other:?}"))),
        }),
        Command::TemplateAllocate { caller, template } => {
            Id(core.apply_template_allocate(state, tx, caller, template)?)
        }
        Command::TemplateUpdate { caller, id, text } => {
            Id(core.apply_template_update(state, tx, caller, *id, text)?)
        }
        Command::TemplateDelete { caller, id } => {
            Id(core.apply_template_delete(state, tx, caller, *id)?)
        }
        Command::TemplateInstantiate {
            caller,
            template,
            name,
        } => Id(core.apply_template_instantiate(state, tx, caller, *template, name)?),
        Command::VnAllocate { caller, template } => {
            Id(core.apply_vn_allocate(state, tx, caller, template)?)
        }
        Command::VnDelete { caller, id } => Id(core.apply_vn_delete(state, tx, caller, *id)?),
        Command::VnUpdate { caller, id, text } => {
            Id(core.apply_vn_update(state, tx, caller, *id, text)?)
        }
        Command::VnLeases {
            caller,
            id,
            text,
            op,
        } => Id(core.apply_vn_leases(state, tx, caller, *id, text, *op)?),
        Command::ImageAllocate { caller, template } => {
            Id(core.apply_image_allocate(state, tx, caller, template)?)
        }
        Command::ImageCopied {
            intent,
            image,
            from,
            to,
            outcome,
        } => {
            core.apply_image_copied(state, tx, *intent, *image, from, to, outcome)?;
            Done
        }
        Command::ImageDelete { caller, id } => {
            Answer::Source(core.apply_image_delete(state, tx, caller, *id)?)
        }
        Command::ImageUpdate { caller, id, text } => {
            Id(core.apply_image_update(state, tx, caller, *id, text)?)
        }
        Command::ImagePersistent {
            caller,
            id,
            persistent,
        } => Id(core.apply_image_persistent(state, tx, caller, *id, *persistent)?),
        Command::ImageEnable { caller, id, enable } => {
            Id(core.apply_image_enable(state, tx, caller, *id, *enable)?)
        }
        Command::ImageChtype {
            caller,
            id,
            type_name,
        } => Id(core.apply_image_chtype(state, tx, caller, *id, type_name)?),
        Command::HostAllocate {
            caller,
            name,
            im,
            vmm,
            vnm,
            tm,
        } => Id(core.apply_host_allocate(state, tx, caller, name, im, vmm, vnm, tm)?),
        Command::HostDelete { caller, id } => Id(core.apply_host_delete(state, tx, caller, *id)?),
        Command::HostUpdate { caller, id, text } => {
            Id(core.apply_host_update(state, tx, caller, *id, text)?)
        }
        Command::HostEnable { caller, id, enable } => {
            Id(core.apply_host_enable(state, tx, caller, *id, *enable)?)
        }
        Command::HostMonitored { host, result } => {
            core.apply_host_monitored(state, tx, *host, result)?;
            Done
        }
        Command::VmAllocate { caller, template } => {
            Id(core.apply_vm_allocate(state, tx, caller, template)?)
        }
        Command::VmAction { caller, action, vm } => {
            Id(core.apply_vm_action(state, tx, caller, action, *vm)?)
        }
        Command::VmDeploy { caller, vm, host } => {
            Id(core.apply_vm_deploy(state, tx, caller, *vm, *host)?)
        }
        Command::SchedDeploy { vm, host } => {
            core.apply_sched_deploy(state, tx, *vm, *host)?;
            Done
        }
        Command::VmMigrate {
            caller,
            vm,
            host,
            live,
        } => Id(core.apply_vm_migrate(state, tx, caller, *vm, *host, *live)?),
        Command::VmSaveDisk {
            caller,
            vm,
            disk,
            name,
            image_type,
        } => match core.apply_vm_savedisk(state, tx, caller, *vm, *disk, name, image_type)? {
            Ok(id) => Id(id),
            Err(refusal) => Answer::Refused(refusal),
        },
        Command::StepDone { vm, from, outcome } => {
            core.apply_step_done(state, tx, *vm, *from, outcome)?;
            Done
        }
        Command::MissingSteps { known } => {
            core.apply_missing_steps(state, tx, known);
            Done
        }
        Command::StepCarriedOut {
            intent,
            step,
            outcome,
        } => {
            core.apply_step_carried_out(state, tx, *intent, step, outcome)?;
            Done
        }
        Command::VmsPolled { polls } => {
            core.apply_vms_polled(state, tx, polls)?;
            Done
        }
        Command::VmDisksSized { vm, disks } => {
            core.apply_vm_disks_sized(state, tx, *vm, disks)?;
            Done
        }
        Command::IntentsDone { ids } => {
            for id in ids {
                tx.intent_done(*id);
            }
            Done
        }
        Command::IntentUpdate { intent, body } => {
            tx.intent_update(*intent, body.clone());
            Done
        }
        Command::DiskSaved {
            intent,
            vm,
            image,
            from,
            to,
            outcome,
        } => {
            core.apply_disk_saved(state, tx, *intent, *vm, *image, from, to, outcome)?;
            Done
        }
        Command::VolumeCreate { volume } => {
            Answer::VolumeCreated(core.apply_volume_create(state, tx, volume)?)
        }
        Command::VolumeReady { uuid, size } => {
            Answer::Volume(core.apply_volume_ready(state, tx, uuid, *size)?)
        }
        Command::VolumeForget { uuid } => {
            core.apply_volume_forget(state, tx, uuid)?;
            Done
        }
        Command::VolumeCachedOrigin { image, new_uuid } => {
            Answer::Volume(core.apply_volume_cached_origin(state, tx, image, new_uuid)?)
        }
        Command::VolumeCopy {
            who,
            uuid,
            new_uuid,
            plans,
        } => Answer::VolumeCopy(core.apply_volume_copy(state, tx, who, uuid, new_uuid, plans)?),
        Command::VolumeUpdate { who, uuid, form } => {
            Answer::VolumeUpdated(core.apply_volume_update(state, tx, who, uuid, form)?)
        }
        Command::VolumeDelete { who, uuid } => {
            Answer::VolumeDeleted(core.apply_volume_delete(state, tx, who, uuid)?)
        }
        Command::VolumesToPurge { now, period_secs } => {
            Answer::Volumes(core.apply_volumes_to_purge(state, tx, *now, *period_secs)?)
        }
        Command::VolumeTake { request } => {
            Answer::Taken(core.apply_volume_take(state, tx, &request.as_request())?)
        }
        Command::VolumeAttach {
            who,
            uuid,
            vm,
            register_only,
        } => Answer::Attach(core.apply_volume_attach(state, tx, who, uuid, *vm, *register_only)?),
        Command::VolumeUnmount { uuid, vm } => {
            core.apply_volume_unmount(state, tx, uuid, *vm)?;
            Done
        }
        Command::VolumeMountFound { uuid, mount } => {
            Answer::Flag(core.apply_volume_mount_found(state, tx, uuid, mount)?)
        }
    })
}
