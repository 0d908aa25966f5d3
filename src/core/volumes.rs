//! The persistent volumes of the built-in pdisk service: who may see, change, delete and use a
//! volume, its users (mounts), the quarantine, and the VMs that use volumes as disks. Every
//! change is one write of the core, so a volume and the VMs using it never disagree, also after
//! a crash. The data itself is made and removed by `storage::volumes`, around these writes.
//!
//! Messages and statuses are pdisk's where pdisk had them (its resources in
//! `StratusLab/storage: pdisk-server`); the others are stratusd's own, listed in
//! `docs/compatibility.md`.

use super::command::Answer;
use super::{Change, Command, Core, Shared, State, Tx};
use crate::model::vm::{LcmState, VmState};
use crate::model::volume::{
    Backing, Mount, Visibility, Volume, VolumeState, VolumeType, MAX_USERS, SIZE_MAX_GIB,
    SIZE_MIN_GIB, STATIC_TARGET, SUPERUSER,
};
use crate::model::{Host, Oid, Vm};

/// Who asks: the user name the front door authenticated, and whether it is pdisk's
/// super-user (pdisk itself, or oneadmin), who sees and may change every volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeUser {
    pub name: String,
    pub superuser: bool,
}

impl VolumeUser {
    pub fn new(name: &str) -> VolumeUser {
        VolumeUser {
            name: name.to_string(),
            superuser: name == SUPERUSER || name == "oneadmin",
        }
    }
}

/// A refused or failed volume request, with the HTTP status pdisk answered it with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

impl VolumeError {
    pub fn status(&self) -> u16 {
        match self {
            VolumeError::BadRequest(_) => 400,
            VolumeError::Forbidden(_) => 403,
            VolumeError::NotFound(_) => 404,
            VolumeError::Conflict(_) => 409,
            VolumeError::Internal(_) => 500,
        }
    }
}

impl From<super::Error> for VolumeError {
    fn from(e: super::Error) -> Self {
        match e {
            super::Error::Internal(detail) => {
                VolumeError::Internal(format!("Internal Error: {detail}"))
            }
            other => VolumeError::Internal(other.to_string()),
        }
    }
}

pub type VolumeResult<T> = std::result::Result<T, VolumeError>;

/// Restlet's description of a 404 for a resource that does not exist (a mount id that is not
/// a mount), which pdisk sent as the message.
pub const RESOURCE_NOT_FOUND: &str = "The server has not found anything matching the request URI";

/// Longest tag accepted (the client allows 40 characters; pdisk had no limit).
pub const TAG_MAX_BYTES: usize = 1024;

/// pdisk's "user count": the VMs using the volume, or for an origin its snapshots.
pub fn user_count(state: &State, v: &Volume) -> usize {
    if v.kind == VolumeType::MachineImageOrigin {
        let snapshot = format!("snapshot:{}", v.uuid);
        state
            .volumes
            .values()
            .filter(|o| o.identifier == snapshot && o.state != VolumeState::Deleting)
            .count()
    } else {
        v.mounts.len()
    }
}

fn can_view(who: &VolumeUser, v: &Volume) -> bool {
    who.superuser || who.name == v.owner || v.visibility == Visibility::Public
}

fn can_edit(who: &VolumeUser, v: &Volume) -> bool {
    who.superuser || who.name == v.owner
}

/// The volume as `who` may know it: a volume being made or removed, or in quarantine (for all
/// but the super-user), does not exist.
fn existing<'a>(state: &'a State, who: &VolumeUser, uuid: &str) -> Option<&'a Volume> {
    state
        .volumes
        .get(uuid)
        .filter(|v| v.is_ready() && (who.superuser || !v.in_quarantine()))
}

/// The volume `who` may change, as `PUT` and `DELETE /disks/<uuid>/` find it, or pdisk's
/// refusal in the order it checked: unknown (404), not visible (403), not the owner's (403,
/// "insufficient rights to <verb> disk"), a cached image's origin (409, "can't be <done>").
fn editable<'a>(
    state: &'a State,
    who: &VolumeUser,
    uuid: &str,
    verb: &str,
    done: &str,
) -> Result<&'a Volume, VolumeError> {
    let v = existing(state, who, uuid)
        .ok_or_else(|| VolumeError::NotFound(format!("disk ({uuid}) does not exist")))?;
    if !can_view(who, v) {
        return Err(VolumeError::Forbidden(format!(
            "insufficient access rights to view disk ({uuid})"
        )));
    }
    if !can_edit(who, v) {
        return Err(VolumeError::Forbidden(format!(
            "insufficient rights to {verb} disk ({uuid})"
        )));
    }
    if v.cached {
        return Err(cached_refusal(v, done));
    }
    Ok(v)
}

/// pdisk's `processWebForm`: the properties a create or update form sets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VolumeForm {
    pub size: Option<u64>,
    pub visibility: Option<Visibility>,
    pub tag: Option<String>,
    pub owner: Option<String>,
    pub quarantine: Option<String>,
    pub identifier: Option<String>,
    pub kind: Option<VolumeType>,
    pub seed: bool,
    /// `url`, `bytes`, `sha1`: the content of a new volume, from a URL.
    pub url: Option<String>,
    pub bytes: Option<String>,
    pub sha1: Option<String>,
}

fn first<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Java's `Long.parseLong` message for a value it refuses.
fn parse_size(text: &str) -> VolumeResult<u64> {
    let refused =
        || VolumeError::BadRequest(format!("Error parsing size: For input string: \"{text}\""));
    let value: i64 = text.parse().map_err(|_| refused())?;
    // A negative size parses in Java and is refused by the range check.
    Ok(u64::try_from(value).unwrap_or(0))
}

impl VolumeForm {
    /// Reads a decoded `application/x-www-form-urlencoded` body as pdisk did (first value of
    /// each key; unknown keys ignored).
    pub fn parse(form: &[(String, String)]) -> VolumeResult<VolumeForm> {
        let mut out = VolumeForm::default();
        if let Some(size) = first(form, "size") {
            out.size = Some(parse_size(size)?);
        }
        if let Some(v) = first(form, "visibility") {
            out.visibility = Some(Visibility::parse(v).ok_or_else(|| {
                VolumeError::BadRequest(format!(
                    "Invalid value for form element visibility: No enum constant \
                     eu.stratuslab.storage.disk.resources.BaseResource.DiskVisibility.{}",
                    v.to_uppercase()
                ))
            })?);
        }
        if let Some(tag) = first(form, "tag") {
            if tag.len() > TAG_MAX_BYTES {
                return Err(VolumeError::BadRequest(format!(
                    "Tags must have less than {TAG_MAX_BYTES} characters"
                )));
            }
            out.tag = Some(tag.to_string());
        }
        out.owner = first(form, "owner").map(str::to_string);
        out.quarantine = first(form, "quarantine").map(str::to_string);
        out.identifier = first(form, "identifier").map(str::to_string);
        if let Some(t) = first(form, "type") {
            out.kind = Some(VolumeType::parse(t).ok_or_else(|| {
                VolumeError::BadRequest(format!(
                    "No enum constant eu.stratuslab.storage.persistence.Disk.DiskType.{t}"
                ))
            })?);
        }
        out.seed = first(form, "seed") == Some("on");
        out.url = first(form, "url").map(str::to_string);
        out.bytes = first(form, "bytes").map(str::to_string);
        out.sha1 = first(form, "sha1").map(str::to_string);
        for text in [&out.owner, &out.identifier, &out.quarantine]
            .into_iter()
            .flatten()
        {
            if text.len() > TAG_MAX_BYTES {
                return Err(VolumeError::BadRequest(format!(
                    "values must have less than {TAG_MAX_BYTES} characters"
                )));
            }
        }
        Ok(out)
    }
}

/// pdisk's `validateNewDisk` size rule.
pub fn check_new_size(size: Option<u64>) -> VolumeResult<u64> {
    match size {
        Some(s) if (SIZE_MIN_GIB..=SIZE_MAX_GIB).contains(&s) => Ok(s),
        _ => Err(VolumeError::BadRequest(format!(
            "Size must be an integer between {SIZE_MIN_GIB} and {SIZE_MAX_GIB}"
        ))),
    }
}

/// A volume to create: everything but the data, which is made after the record is written.
pub struct NewVolume {
    pub uuid: String,
    pub owner: String,
    pub size: u64,
    pub tag: String,
    pub visibility: Visibility,
    pub kind: VolumeType,
    pub identifier: String,
    pub seed: bool,
    pub base: Option<String>,
    pub backing: Backing,
}

/// What a hot-plug needs once the core has registered it.
#[derive(Debug, Clone)]
pub struct AttachPlan {
    pub volume: Volume,
    pub vm: Vm,
    pub host: Host,
    pub target: String,
}

/// What a hot-unplug needs.
#[derive(Debug, Clone)]
pub struct DetachPlan {
    pub volume: Volume,
    pub mount: Mount,
    /// `None` for a mount whose VM is gone from the pool (nothing to unplug).
    pub vm: Option<Vm>,
    pub host: Option<Host>,
}

/// A `pdisk:` disk of a VM's template, as its prolog asks for it.
#[derive(Debug, Clone)]
pub struct TakeRequest<'a> {
    pub uuid: &'a str,
    pub vm_id: Oid,
    /// The VM owner's user name (`UNAME`).
    pub owner: &'a str,
    /// The owner is oneadmin or in its group.
    pub privileged: bool,
    /// Which DISK of the template (0 is the boot disk).
    pub disk_index: usize,
    pub node: &'a str,
}

impl TakeRequest<'_> {
    /// The request as data a command carries.
    pub fn to_owned_request(&self) -> OwnedTakeRequest {
        OwnedTakeRequest {
            uuid: self.uuid.to_string(),
            vm_id: self.vm_id,
            owner: self.owner.to_string(),
            privileged: self.privileged,
            disk_index: self.disk_index,
            node: self.node.to_string(),
        }
    }
}

/// A [`TakeRequest`] that owns its strings (in [`super::Command::VolumeTake`]).
#[derive(Debug, Clone)]
pub struct OwnedTakeRequest {
    pub uuid: String,
    pub vm_id: Oid,
    pub owner: String,
    pub privileged: bool,
    pub disk_index: usize,
    pub node: String,
}

impl OwnedTakeRequest {
    pub fn as_request(&self) -> TakeRequest<'_> {
        TakeRequest {
            uuid: &self.uuid,
            vm_id: self.vm_id,
            owner: &self.owner,
            privileged: self.privileged,
            disk_index: self.disk_index,
            node: &self.node,
        }
    }
}

/// Where the data of a copy (`POST /disks/<uuid>`) goes, planned by the caller from the
/// source's backing before the command is sent, for both outcomes: a copy-on-write snapshot
/// of an origin, or the rebase of a live snapshot. Which one applies is decided under the
/// state, from the source's type.
#[derive(Debug, Clone)]
pub struct CopyPlans {
    /// The backing of the source the plans were made from (`None`: no such volume then).
    pub source: Option<Backing>,
    pub snapshot: std::result::Result<Backing, String>,
    pub rebase: std::result::Result<Backing, String>,
}

impl CopyPlans {
    /// The plan for a copy of `src`, if one was made for it.
    pub fn plan(&self, src: &Volume, cow: bool) -> std::result::Result<Backing, String> {
        if self.source.as_ref() != Some(&src.backing) {
            return Err("no place for the copy".into());
        }
        if cow {
            self.snapshot.clone()
        } else {
            self.rebase.clone()
        }
    }

    /// The new volume's backing: the plan, or the source's own when planning failed (the
    /// caller then removes nothing of it).
    fn backing(&self, src: &Volume, cow: bool) -> Backing {
        self.plan(src, cow).unwrap_or_else(|_| src.backing.clone())
    }
}

/// What deleting did.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// Into the quarantine: purged when its period is over.
    Quarantined,
    /// Marked for removal now (the super-user deleting a quarantined volume): remove the
    /// data, then [`Core::volume_forget`].
    Remove(Box<Volume>),
}

fn vm_of(state: &State, vm_id: Oid) -> Option<&Vm> {
    state.vms.get(&vm_id).filter(|vm| vm.state != VmState::Done)
}

/// Targets a VM's domain already uses: its template's disks and context disk, and the
/// volumes hot-plugged into it.
fn used_targets(state: &State, vm: &Vm) -> Vec<String> {
    let mut used: Vec<String> = vm
        .template
        .vectors("DISK")
        .filter_map(|d| crate::template::vector_get(d, "TARGET").map(str::to_string))
        .collect();
    if let Some(ctx) = vm.template.get_vector("CONTEXT") {
        if let Some(t) = crate::template::vector_get(ctx, "TARGET") {
            used.push(t.to_string());
        }
    }
    for v in state.volumes.values() {
        for m in &v.mounts {
            if m.vm_id == vm.id && m.is_hotplug() {
                used.push(m.device.clone());
            }
        }
    }
    used
}

/// pdisk's `nextDiskTarget`: the first free `vd<letter>` from `vdz` down, so that hot-plugged
/// volumes never take a name the template's disks use.
pub fn next_target(used: &[String]) -> Option<String> {
    ('a'..='z')
        .rev()
        .map(|letter| format!("vd{letter}"))
        .find(|t| !used.iter().any(|u| u.trim() == t))
}

/// pdisk's quarantine stamp for now.
fn quarantine_now(t: i64) -> String {
    crate::storage::pdisk::quarantine_stamp(t)
}

/// Gives back every volume a VM used and quarantines its root volume when it was a snapshot
/// (stratuslab-hooks.md §8): called when the VM reaches DONE, in the same write.
pub fn release_vm_mounts(state: &State, tx: &mut Tx, vm: &Vm) {
    let t = crate::model::now();
    for v in state.volumes.values() {
        let current = match tx.pending_volume(&v.uuid) {
            Some(Some(p)) => p.clone(),
            Some(None) => continue,
            None => v.clone(),
        };
        let Some(mount) = current.mount_of(vm.id).cloned() else {
            continue;
        };
        let mut changed = current;
        changed.mounts.retain(|m| m.vm_id != vm.id);
        if mount.disk_index == Some(0)
            && changed.identifier.contains("snapshot")
            && !changed.in_quarantine()
        {
            changed.owner = SUPERUSER.to_string();
            changed.quarantine = quarantine_now(t);
            changed.quarantined_at = Some(t);
            tracing::info!(vm = vm.id, volume = %changed.uuid, "root snapshot volume quarantined");
        }
        tracing::info!(vm = vm.id, volume = %changed.uuid, "volume given back by the VM");
        tx.put(Change::Volume(changed));
    }
}

/// A Marketplace image of the image cache, as the volume service offers it: an origin whose
/// copy-on-write snapshots users may take (pdisk kept its cached images as origin volumes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedOrigin {
    /// The Marketplace id (the origin's identifier).
    pub id: String,
    /// The cached image file and its format (`raw` or a qcow2 without backing file).
    pub path: String,
    pub format: String,
    pub bytes: u64,
    /// The cache's owner of the image (`pdisk` for the site's downloads) and whether anyone
    /// may use it.
    pub owner: String,
    pub public: bool,
}

/// The refusal of a change to a cached image's origin volume.
fn cached_refusal(v: &Volume, what: &str) -> VolumeError {
    VolumeError::Conflict(format!(
        "disk ({}) is the image cache's copy of Marketplace image {} and can't be {what}",
        v.uuid, v.identifier
    ))
}

impl Core {
    /// Every volume `who` may list: their own (everything for the super-user), newest first,
    /// as pdisk's `allDisksByUser`.
    pub fn volumes_of(&self, who: &VolumeUser) -> Vec<(Volume, usize)> {
        let state = self.read();
        let mut list: Vec<(Volume, usize)> = state
            .volumes
            .values()
            .filter(|v| v.is_ready())
            .filter(|v| {
                if who.superuser {
                    true
                } else {
                    v.owner == who.name && !v.in_quarantine()
                }
            })
            .map(|v| (v.clone(), user_count(&state, v)))
            .collect();
        list.sort_by(|a, b| b.0.created.cmp(&a.0.created).then(a.0.uuid.cmp(&b.0.uuid)));
        list
    }

    /// Every ready volume, for the daemon's own work (reconciliation, dashboards as oneadmin).
    pub fn all_volumes(&self) -> Vec<Volume> {
        self.read().volumes.values().cloned().collect()
    }

    /// One volume `who` may see, with its user count. `missing` words the 404 of the resource.
    pub fn volume_view(
        &self,
        who: &VolumeUser,
        uuid: &str,
        missing: &dyn Fn(&str) -> String,
    ) -> VolumeResult<(Volume, usize)> {
        let state = self.read();
        let v = existing(&state, who, uuid).ok_or_else(|| VolumeError::NotFound(missing(uuid)))?;
        if !can_view(who, v) {
            return Err(VolumeError::Forbidden(format!(
                "insufficient access rights to view disk ({uuid})"
            )));
        }
        Ok((v.clone(), user_count(&state, v)))
    }

    /// Records a new volume in state `Creating`; the caller makes its data, then calls
    /// [`Core::volume_created`].
    pub fn volume_create_begin(&self, new: NewVolume) -> VolumeResult<Volume> {
        let volume = Volume {
            uuid: new.uuid,
            owner: new.owner,
            tag: new.tag,
            size: new.size,
            kind: new.kind,
            visibility: new.visibility,
            identifier: new.identifier,
            quarantine: String::new(),
            quarantined_at: None,
            seed: new.seed,
            base: new.base,
            created: crate::model::now(),
            backing: new.backing,
            state: VolumeState::Creating,
            mounts: Vec::new(),
            cached: false,
        };
        self.execute(Command::VolumeCreate {
            volume: volume.clone(),
        })
        .and_then(Answer::volume_created)??;
        Ok(volume)
    }

    /// The data of a new volume is there: it becomes usable. `size` corrects the size when
    /// the content decided it (uploads).
    pub fn volume_created(&self, uuid: &str, size: Option<u64>) -> VolumeResult<Volume> {
        Ok(self
            .execute(Command::VolumeReady {
                uuid: uuid.into(),
                size,
            })
            .and_then(Answer::volume)?)
    }

    /// The data could not be made (or is removed): the record goes.
    pub fn volume_forget(&self, uuid: &str) -> VolumeResult<()> {
        Ok(self
            .execute(Command::VolumeForget { uuid: uuid.into() })
            .and_then(Answer::done)?)
    }

    /// The origin volume of a cached Marketplace image, recorded the first time it is asked
    /// for (one per image: the same record afterwards). Its data is the cache's file.
    pub fn volume_cached_origin(
        &self,
        image: &CachedOrigin,
        new_uuid: &str,
    ) -> VolumeResult<Volume> {
        Ok(self
            .execute(Command::VolumeCachedOrigin {
                image: image.clone(),
                new_uuid: new_uuid.into(),
            })
            .and_then(Answer::volume)?)
    }

    /// `POST /disks/<uuid>`: the new copy-on-write snapshot of an origin, or the rebase of a
    /// live snapshot into a new origin. Returns the source volume; the new one is recorded
    /// `Creating` with the backing `plans` gives it.
    pub fn volume_copy_begin(
        &self,
        who: &VolumeUser,
        uuid: &str,
        new_uuid: &str,
        plans: CopyPlans,
    ) -> VolumeResult<(Volume, Volume)> {
        self.execute(Command::VolumeCopy {
            who: who.clone(),
            uuid: uuid.into(),
            new_uuid: new_uuid.into(),
            plans,
        })
        .and_then(Answer::volume_copy)?
    }

    /// `PUT /disks/<uuid>`: the properties the form sets. Owners may change the tag, the
    /// visibility, the type, the identifier and the seed flag; the owner and the quarantine
    /// are the super-user's (the quarantine hook acted as pdisk).
    pub fn volume_update(
        &self,
        who: &VolumeUser,
        uuid: &str,
        form: &VolumeForm,
    ) -> VolumeResult<Volume> {
        self.execute(Command::VolumeUpdate {
            who: who.clone(),
            uuid: uuid.into(),
            form: form.clone(),
        })
        .and_then(Answer::volume_update)?
    }

    /// `DELETE /disks/<uuid>/`: the volume goes into the quarantine (hidden from its owner,
    /// purged after the volume quarantine period); the super-user deleting a volume already
    /// in quarantine removes it now.
    pub fn volume_delete(&self, who: &VolumeUser, uuid: &str) -> VolumeResult<Deleted> {
        self.execute(Command::VolumeDelete {
            who: who.clone(),
            uuid: uuid.into(),
        })
        .and_then(Answer::volume_deleted)?
    }

    /// Volumes whose quarantine is over (and which nothing uses or is based on) are marked for
    /// removal and returned; the caller removes their data and then forgets them.
    pub fn volumes_to_purge(&self, now: i64, period_secs: f64) -> VolumeResult<Vec<Volume>> {
        Ok(self
            .execute(Command::VolumesToPurge { now, period_secs })
            .and_then(Answer::volumes)?)
    }

    /// `GET /disks/<uuid>/mounts/`.
    pub fn volume_mounts(&self, who: &VolumeUser, uuid: &str) -> VolumeResult<Vec<Mount>> {
        let state = self.read();
        let v = existing(&state, who, uuid)
            .ok_or_else(|| VolumeError::NotFound(format!("Unknown disk: {uuid}")))?;
        if !can_view(who, v) {
            return Err(VolumeError::Forbidden(format!(
                "insufficient access rights to view disk ({uuid})"
            )));
        }
        Ok(v.mounts.clone())
    }

    /// A `pdisk:` disk of a VM's template, at its prolog (stratuslab-hooks.md §3.4): the type
    /// the disk index allows, the owner's right to use it, and a free place among its users.
    /// The VM becomes a user of the volume (a mount with target `static`). Asking again for the
    /// same VM (a prolog run again after a restart) changes nothing.
    pub fn volume_take(&self, req: &TakeRequest<'_>) -> Result<Volume, String> {
        let taken = self
            .execute(Command::VolumeTake {
                request: req.to_owned_request(),
            })
            .and_then(Answer::taken);
        match taken {
            Ok(result) => result,
            Err(e) => Err(e.to_string()),
        }
    }

    /// `POST /disks/<uuid>/mounts/` (hot-plug, or `register_only`): checks the volume and the
    /// VM, picks the target and records the mount; the caller then attaches the device and,
    /// if that fails, calls [`Core::volume_unmount`].
    pub fn volume_attach_begin(
        &self,
        who: &VolumeUser,
        uuid: &str,
        vm_id: Oid,
        register_only: bool,
    ) -> VolumeResult<AttachPlan> {
        self.execute(Command::VolumeAttach {
            who: who.clone(),
            uuid: uuid.into(),
            vm: vm_id,
            register_only,
        })
        .and_then(Answer::attach)?
    }

    /// Removes the mount of `vm_id` (after a failed attach, or a completed detach).
    pub fn volume_unmount(&self, uuid: &str, vm_id: Oid) -> VolumeResult<()> {
        Ok(self
            .execute(Command::VolumeUnmount {
                uuid: uuid.into(),
                vm: vm_id,
            })
            .and_then(Answer::done)?)
    }

    /// Records a mount that libvirt shows but the store lost (reconciliation at start).
    pub fn volume_mount_found(&self, uuid: &str, mount: Mount) -> VolumeResult<bool> {
        Ok(self
            .execute(Command::VolumeMountFound {
                uuid: uuid.into(),
                mount,
            })
            .and_then(Answer::flag)?)
    }

    /// `DELETE /disks/<uuid>/mounts/<uuid>_<vmid>`: checks; the caller unplugs the device
    /// and then calls [`Core::volume_unmount`].
    pub fn volume_detach_begin(
        &self,
        who: &VolumeUser,
        uuid: &str,
        mount_id: &str,
    ) -> VolumeResult<DetachPlan> {
        let state = self.read();
        let Some(v) = existing(&state, who, uuid) else {
            return Err(VolumeError::NotFound(format!("unknown disk: {uuid}")));
        };
        let Some(mount) = v.mounts.iter().find(|m| m.id(uuid) == mount_id).cloned() else {
            return Err(VolumeError::NotFound(RESOURCE_NOT_FOUND.into()));
        };
        if !can_view(who, v) {
            return Err(VolumeError::Forbidden(
                "insufficient rights to detach disk".into(),
            ));
        }
        let vm = vm_of(&state, mount.vm_id).cloned();
        if let Some(vm) = &vm {
            if !who.superuser && vm.uname != who.name {
                return Err(VolumeError::Forbidden(format!(
                    "insufficient rights to detach disk from VM {}",
                    vm.id
                )));
            }
        } else if !who.superuser && v.owner != who.name {
            return Err(VolumeError::Forbidden(
                "insufficient rights to detach disk".into(),
            ));
        }
        if !mount.is_hotplug() && !who.superuser && vm.is_some() {
            return Err(VolumeError::Conflict(format!(
                "disk ({uuid}) is a disk of VM {}'s template: it is given back when the VM ends",
                mount.vm_id
            )));
        }
        let host = vm
            .as_ref()
            .and_then(|vm| vm.last_history())
            .and_then(|h| state.hosts.get(&h.hid))
            .cloned();
        Ok(DetachPlan {
            volume: v.clone(),
            mount,
            vm,
            host,
        })
    }
}

/// The refusal of `size` more GiB for `owner` when it would take them past the per-user
/// quota (`[volumes] user_quota_gib`; 0: none; the super-user has none). Volumes in the
/// quarantine, being removed, or the image cache's origins do not count.
fn over_quota(state: &State, owner: &str, size: u64, quota: u64) -> Option<VolumeError> {
    if quota == 0 || VolumeUser::new(owner).superuser {
        return None;
    }
    let used: u64 = state
        .volumes
        .values()
        .filter(|v| {
            v.owner == owner && v.state != VolumeState::Deleting && !v.in_quarantine() && !v.cached
        })
        .map(|v| v.size)
        .sum();
    (used.saturating_add(size) > quota).then(|| {
        VolumeError::Forbidden(format!(
            "volume quota exceeded: {owner} has {used} GiB of volumes, {size} GiB more would pass the limit of {quota} GiB"
        ))
    })
}

/// Why the volume cannot take one more user, if it cannot.
fn refuse_new_user(v: &Volume) -> Option<String> {
    if v.mounts.len() >= MAX_USERS {
        return Some(format!(
            "disk ({}) has reached its maximum of {MAX_USERS} users",
            v.uuid
        ));
    }
    if !v.kind.shareable() {
        if let Some(other) = v.mounts.first() {
            return Some(format!(
                "disk ({}) is in use by VM {} and can't be used by another VM",
                v.uuid, other.vm_id
            ));
        }
    }
    None
}

impl Shared {
    pub(super) fn apply_volume_create(
        &self,
        state: &State,
        tx: &mut Tx,
        volume: &Volume,
    ) -> super::Result<VolumeResult<()>> {
        let quota = self.settings.volumes.user_quota_gib;

        if state.volumes.contains_key(&volume.uuid) {
            return Err(super::Error::Internal("volume id taken".into()));
        }
        if let Some(refusal) = over_quota(state, &volume.owner, volume.size, quota) {
            return Ok(Err(refusal));
        }
        tx.put(Change::Volume(volume.clone()));
        Ok(Ok(()))
    }

    pub(super) fn apply_volume_ready(
        &self,
        state: &State,
        tx: &mut Tx,
        uuid: &str,
        size: Option<u64>,
    ) -> super::Result<Volume> {
        let mut v = state
            .volumes
            .get(uuid)
            .cloned()
            .ok_or_else(|| super::Error::Internal(format!("volume {uuid} vanished")))?;
        v.state = VolumeState::Ready;
        if let Some(s) = size {
            v.size = s;
        }
        tx.put(Change::Volume(v.clone()));
        Ok(v)
    }

    pub(super) fn apply_volume_forget(
        &self,
        state: &State,
        tx: &mut Tx,
        uuid: &str,
    ) -> super::Result<()> {
        if state.volumes.contains_key(uuid) {
            tx.put(Change::DeleteVolume(uuid.to_string()));
        }
        Ok(())
    }

    pub(super) fn apply_volume_cached_origin(
        &self,
        state: &State,
        tx: &mut Tx,
        image: &CachedOrigin,
        new_uuid: &str,
    ) -> super::Result<Volume> {
        let known = state.volumes.values().find(|v| {
            v.cached
                && v.identifier == image.id
                && v.backing.path().as_os_str() == image.path.as_str()
        });
        if let Some(v) = known {
            return Ok(v.clone());
        }
        let v = Volume {
            uuid: new_uuid.to_string(),
            owner: image.owner.clone(),
            tag: String::new(),
            size: image.bytes.div_ceil(1 << 30).max(1),
            kind: VolumeType::MachineImageOrigin,
            visibility: if image.public {
                Visibility::Public
            } else {
                Visibility::Private
            },
            identifier: image.id.clone(),
            quarantine: String::new(),
            quarantined_at: None,
            seed: true,
            base: None,
            created: crate::model::now(),
            backing: Backing::File {
                path: image.path.clone(),
                format: image.format.clone(),
            },
            state: VolumeState::Ready,
            mounts: Vec::new(),
            cached: true,
        };
        if state.volumes.contains_key(&v.uuid) {
            return Err(super::Error::Internal("volume id taken".into()));
        }
        tx.put(Change::Volume(v.clone()));
        Ok(v)
    }

    pub(super) fn apply_volume_copy(
        &self,
        state: &State,
        tx: &mut Tx,
        who: &VolumeUser,
        uuid: &str,
        new_uuid: &str,
        plans: &CopyPlans,
    ) -> super::Result<VolumeResult<(Volume, Volume)>> {
        let quota = self.settings.volumes.user_quota_gib;

        let Some(src) = existing(state, who, uuid) else {
            return Ok(Err(VolumeError::NotFound(format!(
                "Disk {uuid} doesn't exists"
            ))));
        };
        let cow = match src.kind {
            VolumeType::MachineImageOrigin => true,
            VolumeType::MachineImageLive => false,
            other => {
                return Ok(Err(VolumeError::Conflict(format!(
                    "Invalid disk state: {}. Cannot create copy or save as new image.",
                    other.as_str()
                ))))
            }
        };
        // pdisk checked nothing here; stratusd: a snapshot needs the right to use the
        // origin, a rebase the right to change the live volume.
        let allowed = if cow {
            can_view(who, src)
        } else {
            can_edit(who, src)
        };
        if !allowed {
            return Ok(Err(VolumeError::Forbidden(format!(
                "insufficient access rights to view disk ({uuid})"
            ))));
        }
        if let Some(refusal) = over_quota(state, &who.name, src.size, quota) {
            return Ok(Err(refusal));
        }
        let new = Volume {
            uuid: new_uuid.to_string(),
            owner: who.name.clone(),
            tag: String::new(),
            size: src.size,
            kind: if cow {
                VolumeType::MachineImageLive
            } else {
                VolumeType::MachineImageOrigin
            },
            visibility: Visibility::Private,
            identifier: if cow {
                format!("snapshot:{uuid}")
            } else {
                src.identifier.clone()
            },
            quarantine: String::new(),
            quarantined_at: None,
            seed: !cow,
            base: cow.then(|| uuid.to_string()),
            created: crate::model::now(),
            backing: plans.backing(src, cow),
            state: VolumeState::Creating,
            mounts: Vec::new(),
            cached: false,
        };
        tx.put(Change::Volume(new.clone()));
        Ok(Ok((src.clone(), new)))
    }

    pub(super) fn apply_volume_update(
        &self,
        state: &State,
        tx: &mut Tx,
        who: &VolumeUser,
        uuid: &str,
        form: &VolumeForm,
    ) -> super::Result<VolumeResult<Volume>> {
        let v = match editable(state, who, uuid, "update", "changed") {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if !who.superuser && (form.owner.is_some() || form.quarantine.is_some()) {
            return Ok(Err(VolumeError::Forbidden(format!(
                "only {SUPERUSER} may change the owner or the quarantine of disk ({uuid})"
            ))));
        }
        if form.size.is_some_and(|s| s != v.size) {
            return Ok(Err(VolumeError::BadRequest(format!(
                "the size of disk ({uuid}) cannot be changed"
            ))));
        }
        let mut changed = v.clone();
        if let Some(t) = &form.tag {
            changed.tag = t.clone();
        }
        if let Some(vis) = form.visibility {
            changed.visibility = vis;
        }
        if let Some(owner) = &form.owner {
            changed.owner = owner.clone();
        }
        if let Some(q) = &form.quarantine {
            changed.quarantine = q.trim().to_string();
            changed.quarantined_at = if changed.quarantine.is_empty() {
                None
            } else {
                Some(crate::model::now())
            };
        }
        if let Some(id) = &form.identifier {
            changed.identifier = id.clone();
        }
        if let Some(kind) = form.kind {
            if kind != changed.kind && !changed.mounts.is_empty() {
                return Ok(Err(VolumeError::Conflict(format!(
                    "disk ({uuid}) is in use and its type can't be changed"
                ))));
            }
            changed.kind = kind;
        }
        // pdisk: the form sends seed only when it is set.
        changed.seed = form.seed;
        tx.put(Change::Volume(changed.clone()));
        Ok(Ok(changed))
    }

    pub(super) fn apply_volume_delete(
        &self,
        state: &State,
        tx: &mut Tx,
        who: &VolumeUser,
        uuid: &str,
    ) -> super::Result<VolumeResult<Deleted>> {
        let v = match editable(state, who, uuid, "delete", "deleted") {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if !v.mounts.is_empty() {
            return Ok(Err(VolumeError::Conflict(format!(
                "disk ({uuid}) is in use and can't be deleted"
            ))));
        }
        if v.kind == VolumeType::MachineImageOrigin && user_count(state, v) > 0 {
            return Ok(Err(VolumeError::Conflict(format!(
                "disk ({uuid}) has snapshots and can't be deleted"
            ))));
        }
        let mut changed = v.clone();
        if v.in_quarantine() && who.superuser {
            changed.state = VolumeState::Deleting;
            tx.put(Change::Volume(changed.clone()));
            return Ok(Ok(Deleted::Remove(Box::new(changed))));
        }
        let t = crate::model::now();
        changed.quarantine = quarantine_now(t);
        changed.quarantined_at = Some(t);
        tx.put(Change::Volume(changed));
        Ok(Ok(Deleted::Quarantined))
    }

    pub(super) fn apply_volumes_to_purge(
        &self,
        state: &State,
        tx: &mut Tx,
        now: i64,
        period_secs: f64,
    ) -> super::Result<Vec<Volume>> {
        let mut due = Vec::new();
        for v in state.volumes.values() {
            let Some(at) = v.quarantined_at else { continue };
            if !v.is_ready() || !v.mounts.is_empty() {
                continue;
            }
            if (now - at) as f64 <= period_secs {
                continue;
            }
            let has_snapshots = state
                .volumes
                .values()
                .any(|o| o.base.as_deref() == Some(v.uuid.as_str()));
            if has_snapshots {
                continue;
            }
            let mut changed = v.clone();
            changed.state = VolumeState::Deleting;
            tx.put(Change::Volume(changed.clone()));
            due.push(changed);
        }
        Ok(due)
    }

    pub(super) fn apply_volume_take(
        &self,
        state: &State,
        tx: &mut Tx,
        req: &TakeRequest<'_>,
    ) -> super::Result<std::result::Result<Volume, String>> {
        let uuid = req.uuid;

        let Some(v) = state.volumes.get(uuid).filter(|v| v.is_ready()) else {
            return Ok(Err(format!("persistent disk {uuid} does not exist")));
        };
        let owner_sees = req.privileged
            || v.owner == req.owner
            || (v.visibility == Visibility::Public && !v.in_quarantine());
        if !owner_sees || (v.in_quarantine() && !req.privileged) {
            return Ok(Err(format!(
                "User {} is not authorized to use persistent disk {uuid}",
                req.owner
            )));
        }
        if let Some(own) = v.mount_of(req.vm_id) {
            if own.is_hotplug() {
                return Ok(Err(format!(
                    "persistent disk {uuid} is already attached to VM {}",
                    req.vm_id
                )));
            }
            return Ok(Ok(v.clone()));
        }
        if req.disk_index == 0 {
            if v.kind != VolumeType::MachineImageLive {
                return Ok(Err("Only a live persistent disk can be booted from.".into()));
            }
            if user_count(state, v) != 0 {
                return Ok(Err(
                    "User count must be zero on the live disk to boot from.".into(),
                ));
            }
        } else if !matches!(
            v.kind,
            VolumeType::DataImageRawReadonly | VolumeType::DataImageRawReadWrite
        ) {
            return Ok(Err(
                    "Only DATA_IMAGE_RAW_READONLY, DATA_IMAGE_RAW_READ_WRITE type disks can be attached as extra disks".into(),
                ));
        }
        if let Some(refusal) = refuse_new_user(v) {
            return Ok(Err(refusal));
        }
        let mut changed = v.clone();
        changed.mounts.push(Mount {
            vm_id: req.vm_id,
            node: req.node.to_string(),
            device: STATIC_TARGET.to_string(),
            disk_index: Some(req.disk_index),
            since: crate::model::now(),
        });
        tx.put(Change::Volume(changed.clone()));
        Ok(Ok(changed))
    }

    pub(super) fn apply_volume_attach(
        &self,
        state: &State,
        tx: &mut Tx,
        who: &VolumeUser,
        uuid: &str,
        vm_id: Oid,
        register_only: bool,
    ) -> super::Result<VolumeResult<AttachPlan>> {
        let Some(v) = existing(state, who, uuid) else {
            return Ok(Err(VolumeError::NotFound(format!("Unknown disk: {uuid}"))));
        };
        if !can_view(who, v) {
            return Ok(Err(VolumeError::Forbidden(
                "Not enough rights to attach disk".into(),
            )));
        }
        let Some(vm) = vm_of(state, vm_id) else {
            return Ok(Err(VolumeError::NotFound(format!(
                "VM {vm_id} does not exist"
            ))));
        };
        if !who.superuser && vm.uname != who.name {
            return Ok(Err(VolumeError::Forbidden(format!(
                "Not enough rights to attach disk to VM {vm_id}"
            ))));
        }
        if v.mount_of(vm_id).is_some() {
            return Ok(Err(VolumeError::Forbidden(format!(
                "Mount already exists for: {vm_id} and {uuid}"
            ))));
        }
        if v.in_quarantine() {
            return Ok(Err(VolumeError::Conflict(format!(
                "disk ({uuid}) is in quarantine"
            ))));
        }
        if matches!(
            v.kind,
            VolumeType::MachineImageOrigin | VolumeType::DataImageOrigin
        ) {
            return Ok(Err(VolumeError::Conflict(format!(
                "Invalid disk state: {}. Cannot attach an origin.",
                v.kind.as_str()
            ))));
        }
        if let Some(refusal) = refuse_new_user(v) {
            return Ok(Err(VolumeError::Conflict(refusal)));
        }
        let running = vm.state == VmState::Active && vm.lcm_state == LcmState::Running;
        if !register_only && !running {
            return Ok(Err(VolumeError::Conflict(format!(
                "VM {vm_id} is not in running state"
            ))));
        }
        let Some(host) = vm
            .last_history()
            .and_then(|h| state.hosts.get(&h.hid))
            .cloned()
        else {
            return Ok(Err(VolumeError::Conflict(format!(
                "VM {vm_id} is not placed on a host"
            ))));
        };
        let target = if register_only {
            STATIC_TARGET.to_string()
        } else {
            match next_target(&used_targets(state, vm)) {
                Some(t) => t,
                None => {
                    return Ok(Err(VolumeError::Conflict(
                        "no free devices available".into(),
                    )))
                }
            }
        };
        let mut changed = v.clone();
        changed.mounts.push(Mount {
            vm_id,
            node: host.name.clone(),
            device: target.clone(),
            disk_index: None,
            since: crate::model::now(),
        });
        tx.put(Change::Volume(changed.clone()));
        Ok(Ok(AttachPlan {
            volume: changed,
            vm: vm.clone(),
            host,
            target,
        }))
    }

    pub(super) fn apply_volume_unmount(
        &self,
        state: &State,
        tx: &mut Tx,
        uuid: &str,
        vm_id: Oid,
    ) -> super::Result<()> {
        if let Some(v) = state.volumes.get(uuid) {
            if v.mount_of(vm_id).is_some() {
                let mut changed = v.clone();
                changed.mounts.retain(|m| m.vm_id != vm_id);
                tx.put(Change::Volume(changed));
            }
        }
        Ok(())
    }

    pub(super) fn apply_volume_mount_found(
        &self,
        state: &State,
        tx: &mut Tx,
        uuid: &str,
        mount: &Mount,
    ) -> super::Result<bool> {
        let mount = mount.clone();

        let Some(v) = state.volumes.get(uuid).filter(|v| v.is_ready()) else {
            return Ok(false);
        };
        if v.mount_of(mount.vm_id).is_some() || refuse_new_user(v).is_some() {
            return Ok(false);
        }
        let mut changed = v.clone();
        changed.mounts.push(mount);
        tx.put(Change::Volume(changed));
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn forms_parse_as_pdisk_did() {
        let f = VolumeForm::parse(&form(&[
            ("size", "10"),
            ("tag", "<x a=\"1\">'"),
            ("visibility", "public"),
        ]))
        .unwrap();
        assert_eq!(f.size, Some(10));
        assert_eq!(f.tag.as_deref(), Some("<x a=\"1\">'"));
        assert_eq!(f.visibility, Some(Visibility::Public));
        assert_eq!(
            VolumeForm::parse(&form(&[("size", "abc")])).unwrap_err(),
            VolumeError::BadRequest("Error parsing size: For input string: \"abc\"".into())
        );
        assert_eq!(
            VolumeForm::parse(&form(&[("size", "99999999999999999999999")]))
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            check_new_size(Some(0)).unwrap_err().to_string(),
            "Size must be an integer between 1 and 1024"
        );
        assert!(check_new_size(Some(1025)).is_err());
        assert!(check_new_size(None).is_err());
        assert_eq!(check_new_size(Some(1024)).unwrap(), 1024);
        let neg = VolumeForm::parse(&form(&[("size", "-5")])).unwrap();
        assert!(check_new_size(neg.size).is_err());
        assert!(VolumeForm::parse(&form(&[("visibility", "secret")]))
            .unwrap_err()
            .to_string()
            .ends_with("DiskVisibility.SECRET"));
        assert_eq!(
            VolumeForm::parse(&form(&[("type", "FLOPPY")]))
                .unwrap_err()
                .status(),
            400
        );
        assert!(VolumeForm::parse(&form(&[("seed", "on")])).unwrap().seed);
        let long = "x".repeat(TAG_MAX_BYTES + 1);
        assert!(VolumeForm::parse(&form(&[("tag", &long)])).is_err());
    }

    #[test]
    fn targets_come_from_the_end_of_the_alphabet() {
        assert_eq!(next_target(&[]).as_deref(), Some("vdz"));
        assert_eq!(
            next_target(&["vdz".into(), "vda".into()]).as_deref(),
            Some("vdy")
        );
        let all: Vec<String> = ('a'..='z').map(|c| format!("vd{c}")).collect();
        assert_eq!(next_target(&all), None);
    }

    #[test]
    fn superusers() {
        assert!(VolumeUser::new("pdisk").superuser);
        assert!(VolumeUser::new("oneadmin").superuser);
        assert!(!VolumeUser::new("alice").superuser);
    }
}
