//! What the persistent disk service does for a request, around the core's volume records: the
//! data (made after the record says `Creating`, removed after it says `Deleting`), hot-plugging
//! through libvirt, downloads and uploads, the quarantine purge, and the start-up
//! reconciliation. Every method blocks: the REST layer calls them on the blocking pool.

use crate::core::volumes::{
    check_new_size, CachedOrigin, CopyPlans, Deleted, NewVolume, TakeRequest, VolumeError,
    VolumeForm, VolumeResult, VolumeUser,
};
use crate::core::Core;
use crate::driver::libvirt::DiskSpec;
use crate::driver::Drivers;
use crate::model::volume::{
    is_uuid, new_uuid, Backing, Mount, Visibility, Volume, VolumeState, VolumeType, SUPERUSER,
};
use crate::model::{Host, Oid, Vm};
use crate::storage::cache::ImageCache;
use crate::storage::layout::{HotplugDisk, VmPaths};
use crate::storage::marketplace::MarketplaceClient;
use crate::storage::volumes::{VolumeAccess, VolumeBackend, VolumeBroker, GIB};
use crate::storage::StorageError;
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a guest may take to release a hot-unplugged disk.
const DETACH_WAIT: Duration = Duration::from_secs(30);

pub struct VolumeService {
    pub core: Arc<Core>,
    pub backend: VolumeBackend,
    drivers: Arc<Drivers>,
    vm_dir: PathBuf,
    marketplace: MarketplaceClient,
    /// The Marketplace image cache (read only here): its images are origins users may clone.
    cache: ImageCache,
    /// Volumes with an attach or detach in progress: a second one is refused at once.
    busy: Mutex<HashSet<String>>,
    quarantine_period: f64,
}

/// Marks a volume busy for the length of one attach or detach.
struct Busy<'a> {
    set: &'a Mutex<HashSet<String>>,
    uuid: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.uuid);
        }
    }
}

fn internal(what: &str) -> impl Fn(StorageError) -> VolumeError + '_ {
    move |e| VolumeError::Internal(format!("{what}: {e}"))
}

impl VolumeService {
    pub fn new(core: Arc<Core>, drivers: Arc<Drivers>, backend: VolumeBackend) -> VolumeService {
        let settings = &core.settings;
        VolumeService {
            vm_dir: settings.data_dir.clone(),
            marketplace: MarketplaceClient::new(Duration::from_secs_f64(
                settings.storage.http_timeout.max(1.0),
            )),
            quarantine_period: settings.storage.volume_quarantine_period,
            cache: ImageCache::new(settings.cache_dir()),
            busy: Mutex::new(HashSet::new()),
            core,
            drivers,
            backend,
        }
    }

    fn hold(&self, uuid: &str) -> VolumeResult<Busy<'_>> {
        let mut set = self
            .busy
            .lock()
            .map_err(|_| VolumeError::Internal("lock poisoned".into()))?;
        if !set.insert(uuid.to_string()) {
            return Err(VolumeError::Conflict(format!(
                "disk ({uuid}) is being attached or detached by another request"
            )));
        }
        Ok(Busy {
            set: &self.busy,
            uuid: uuid.to_string(),
        })
    }

    /// `POST /disks/` with a form: an empty volume, or (pdisk's super-user only: the server
    /// fetches the URL) one filled from `url` and checked against `bytes` and `sha1`.
    pub fn create(&self, who: &VolumeUser, form: &VolumeForm) -> VolumeResult<Volume> {
        if form.url.is_some() && !who.superuser {
            return Err(VolumeError::Forbidden(format!(
                "only {SUPERUSER} may create a disk from a URL"
            )));
        }
        let size = check_new_size(form.size)?;
        if form
            .identifier
            .as_deref()
            .is_some_and(|id| !id.is_empty() && self.identifier_taken(id))
        {
            return Err(VolumeError::Forbidden("Disk already registered".into()));
        }
        let uuid = new_uuid();
        let started = Instant::now();
        let backing = self
            .backend
            .plan(&uuid, form.url.is_some())
            .map_err(internal("cannot place the volume"))?;
        let volume = self.core.volume_create_begin(NewVolume {
            uuid: uuid.clone(),
            owner: who.name.clone(),
            size,
            tag: form.tag.clone().unwrap_or_default(),
            visibility: form.visibility.unwrap_or(Visibility::Private),
            kind: form.kind.unwrap_or(VolumeType::DataImageRawReadWrite),
            identifier: form.identifier.clone().unwrap_or_default(),
            seed: form.seed,
            base: None,
            backing: backing.clone(),
        })?;
        let made = match &form.url {
            None => self
                .backend
                .create(&backing, size)
                .map_err(|e| VolumeError::Internal(e.to_string())),
            Some(url) => self.fill_from_url(&backing, size, url, form),
        };
        if let Err(e) = made {
            let _ = self.backend.remove(&backing);
            let _ = self.core.volume_forget(&uuid);
            tracing::warn!(volume = %uuid, error = %e, "volume not created");
            return Err(e);
        }
        let volume = self.core.volume_created(&volume.uuid, None)?;
        tracing::info!(volume = %uuid, owner = %who.name, size_gib = size, backing = ?backing, elapsed = ?started.elapsed(), "volume created");
        Ok(volume)
    }

    fn identifier_taken(&self, identifier: &str) -> bool {
        self.core
            .read()
            .volumes
            .values()
            .any(|v| v.identifier == identifier && v.state != VolumeState::Deleting)
    }

    /// pdisk's `initializeContents`: the URL's content (gunzipped when the URL ends in `.gz`),
    /// its size and SHA-1 checked.
    fn fill_from_url(
        &self,
        backing: &Backing,
        size: u64,
        url: &str,
        form: &VolumeForm,
    ) -> VolumeResult<()> {
        let failed =
            || VolumeError::BadRequest(format!("error initializing disk contents from {url}"));
        let body = self.marketplace.open_image(url).map_err(|e| {
            tracing::warn!(%url, error = %e, "volume content not fetched");
            failed()
        })?;
        let content: Box<dyn Read + Send> = if url.ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(body))
        } else {
            body
        };
        // Filling a volume from a URL is long work: its progress is logged and published.
        let expected = form
            .bytes
            .as_deref()
            .and_then(|b| b.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let mut content = crate::metrics::ProgressReader::new(
            content,
            "volume_fill",
            &format!("volume {}", backing.path().display()),
            expected,
        );
        let (bytes, sha1) = self
            .backend
            .fill(backing, size, &mut content)
            .map_err(|e| {
                tracing::warn!(%url, error = %e, "volume content not written");
                failed()
            })?;
        if let Some(expected) = &form.bytes {
            if expected.trim() != bytes.to_string() {
                return Err(VolumeError::BadRequest(format!(
                    "size mismatch: {bytes} (found) != {} (expected)",
                    expected.trim()
                )));
            }
        }
        if let Some(expected) = &form.sha1 {
            let expected = expected.trim();
            if crate::storage::identifier::sha1_bytes(&expected.to_ascii_lowercase()).is_none() {
                return Err(VolumeError::BadRequest(format!(
                    "invalid SHA-1 checksum: {expected}"
                )));
            }
            let expected_dec = crate::storage::identifier::sha1_decimal(expected);
            let found_dec = crate::storage::identifier::sha1_decimal(&sha1);
            if expected_dec != found_dec {
                return Err(VolumeError::BadRequest(format!(
                    "checksum mismatch: {found_dec} (found) != {expected_dec} (expected)"
                )));
            }
        }
        Ok(())
    }

    /// `POST /disks/<uuid>`: a copy-on-write snapshot of an origin (type
    /// `MACHINE_IMAGE_LIVE`), or the rebase of a live snapshot into a new origin.
    ///
    /// `<uuid>` may also be the Marketplace id of an image in the image cache (which the
    /// caller may start): its origin volume is recorded if it is not yet, and snapshotted.
    pub fn copy(&self, who: &VolumeUser, uuid: &str) -> VolumeResult<Volume> {
        let origin;
        let uuid = if !is_uuid(uuid) && crate::storage::identifier::is_safe_image_id(uuid) {
            origin = self.cached_origin(who, uuid)?;
            origin.uuid.as_str()
        } else {
            uuid
        };
        let new_uuid = new_uuid();
        // Where the copy's data goes is planned here, from the source's backing (which never
        // changes), for both kinds of copy; the core picks one under the state.
        let source_backing = self
            .core
            .read()
            .volumes
            .get(uuid)
            .map(|v| v.backing.clone());
        let plan = |cow| match &source_backing {
            Some(b) => self
                .backend
                .plan_copy(b, &new_uuid, cow)
                .map_err(|e| e.to_string()),
            None => Err("no place for the copy".to_string()),
        };
        let plans = CopyPlans {
            snapshot: plan(true),
            rebase: plan(false),
            source: source_backing.clone(),
        };
        let (source, new) = self
            .core
            .volume_copy_begin(who, uuid, &new_uuid, plans.clone())?;
        let started = Instant::now();
        let cow = new.kind == VolumeType::MachineImageLive;
        let made = match plans.plan(&source, cow) {
            Ok(_) if cow => self
                .backend
                .create_snapshot(&source.backing, &new.backing, source.size)
                .map_err(|e| e.to_string()),
            Ok(_) => self
                .backend
                .copy(&source.backing, &new.backing, source.size)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = made {
            // Only the data this request made: a planning failure left the source's backing
            // in the record, which must not be removed.
            if new.backing != source.backing {
                let _ = self.backend.remove(&new.backing);
            }
            let _ = self.core.volume_forget(&new.uuid);
            return Err(VolumeError::Internal(format!(
                "cannot {} disk {uuid}: {e}",
                if cow { "make a copy of" } else { "rebase" }
            )));
        }
        let new = self.core.volume_created(&new.uuid, None)?;
        tracing::info!(volume = %new.uuid, from = %uuid, cow, elapsed = ?started.elapsed(), "volume copied");
        Ok(new)
    }

    /// The origin volume of cached Marketplace image `id`, for a caller who may start it.
    fn cached_origin(&self, who: &VolumeUser, id: &str) -> VolumeResult<Volume> {
        let missing = || VolumeError::NotFound(format!("Disk {id} doesn't exists"));
        let image = self.cache.lookup(id).ok_or_else(missing)?;
        if !who.superuser && image.authorize(&who.name).is_err() {
            return Err(VolumeError::Forbidden(format!(
                "insufficient access rights to view disk ({id})"
            )));
        }
        if !crate::storage::cache::valid_format(&image.format) {
            return Err(missing());
        }
        let origin = CachedOrigin {
            id: image.id.clone(),
            path: self.cache.image_path(&image.id).display().to_string(),
            format: image.format.clone(),
            bytes: image.bytes,
            owner: image.owner.clone(),
            // The site's downloads are anyone's to start (the cache's rule), whatever their
            // recorded visibility.
            public: image.visibility == crate::storage::cache::Visibility::Public
                || image.owner == crate::storage::cache::SITE_OWNER,
        };
        let v = self.core.volume_cached_origin(&origin, &new_uuid())?;
        tracing::info!(volume = %v.uuid, image = %id, "cached Marketplace image offered as an origin volume");
        Ok(v)
    }

    /// `DELETE /disks/<uuid>/`.
    pub fn delete(&self, who: &VolumeUser, uuid: &str) -> VolumeResult<()> {
        match self.core.volume_delete(who, uuid)? {
            Deleted::Quarantined => {
                tracing::info!(volume = %uuid, by = %who.name, "volume deleted into the quarantine");
                Ok(())
            }
            Deleted::Remove(v) => self.remove_now(&v),
        }
    }

    fn remove_now(&self, v: &Volume) -> VolumeResult<()> {
        self.backend
            .remove(&v.backing)
            .map_err(internal("cannot remove the volume"))?;
        self.core.volume_forget(&v.uuid)?;
        tracing::info!(volume = %v.uuid, "volume removed");
        Ok(())
    }

    /// Removes the volumes whose quarantine is over; returns how many.
    pub fn purge(&self, now: i64) -> usize {
        let due = match self.core.volumes_to_purge(now, self.quarantine_period) {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "volume quarantine purge failed");
                return 0;
            }
        };
        let mut removed = 0;
        for v in due {
            match self.remove_now(&v) {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(volume = %v.uuid, error = %e, "cannot purge the volume"),
            }
        }
        removed
    }

    fn hypervisor_of(&self, host: &Host) -> VolumeResult<&crate::driver::hypervisor::Hypervisor> {
        self.drivers.hypervisor(&host.vm_mad).ok_or_else(|| {
            VolumeError::Conflict(format!(
                "host {} ({}) cannot hot-plug disks",
                host.name, host.vm_mad
            ))
        })
    }

    fn hotplug_disk(v: &Volume, target: &str) -> HotplugDisk {
        HotplugDisk {
            uuid: v.uuid.clone(),
            target: target.to_string(),
            format: v.backing.format().to_string(),
            block: v.backing.is_block(),
            readonly: v.kind == VolumeType::DataImageRawReadonly,
        }
    }

    fn device_of(&self, vm: &Vm, disk: &HotplugDisk) -> DiskSpec {
        crate::driver::spec::hotplug_disk_spec(&self.vm_dir, vm, disk)
    }

    /// Records in the VM directory which volumes its domain has hot-plugged, from the store.
    fn write_hotplug_record(&self, vm_id: Oid) -> Result<(), StorageError> {
        let state = self.core.read();
        let disks: Vec<HotplugDisk> = state
            .volumes
            .values()
            .filter_map(|v| {
                v.mount_of(vm_id)
                    .filter(|m| m.is_hotplug())
                    .map(|m| Self::hotplug_disk(v, &m.device))
            })
            .collect();
        drop(state);
        let paths = VmPaths::new(&self.vm_dir, vm_id);
        if disks.is_empty() && !paths.hotplug_record_path().exists() {
            return Ok(());
        }
        paths.record_hotplugged(&disks)
    }

    /// Makes the VM directory's link to the volume (what the domain's disk points at).
    fn link(&self, vm_id: Oid, v: &Volume) -> Result<PathBuf, StorageError> {
        let paths = VmPaths::new(&self.vm_dir, vm_id);
        let link = paths.hotplug_link(&v.uuid);
        std::fs::create_dir_all(paths.images()).map_err(StorageError::io(format!(
            "cannot create {}",
            paths.images().display()
        )))?;
        let tmp = crate::storage::layout::temp_path(&link);
        std::os::unix::fs::symlink(v.backing.path(), &tmp)
            .and_then(|_| std::fs::rename(&tmp, &link))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                StorageError::Io {
                    what: format!("cannot link {}", link.display()),
                    source: e,
                }
            })?;
        Ok(link)
    }

    /// `POST /disks/<uuid>/mounts/`: registers the mount and (unless `register_only`)
    /// hot-plugs the volume into the VM's running domain as a virtio disk. Returns the target
    /// and the time spent in libvirt.
    pub fn attach(
        &self,
        who: &VolumeUser,
        uuid: &str,
        vm_id: Oid,
        node: &str,
        register_only: bool,
    ) -> VolumeResult<(String, Duration)> {
        let _busy = self.hold(uuid)?;
        let plan = self
            .core
            .volume_attach_begin(who, uuid, vm_id, register_only)?;
        if plan.host.name != node {
            tracing::info!(vm = vm_id, node, host = %plan.host.name, "attach: the client named another node than the VM's host; the VM's host is used");
        }
        if register_only {
            return Ok((plan.target, Duration::ZERO));
        }
        let started = Instant::now();
        let attached = (|| {
            let shared = crate::storage::node::NodeStorage::of(&plan.host, &self.vm_dir)
                .map(|n| n.remote().is_none())
                .unwrap_or(false);
            if !shared {
                return Err(VolumeError::Conflict(format!(
                    "Unable to attach persistent disk {uuid}: host {} does not share the VM directory",
                    plan.host.name
                )));
            }
            let hv = self.hypervisor_of(&plan.host)?;
            if plan.volume.backing.is_block() {
                if let Backing::Lvm { vg, lv } = &plan.volume.backing {
                    crate::storage::volumes::lvm::activate(vg, lv)
                        .map_err(internal("Unable to attach persistent disk"))?;
                }
            }
            self.link(vm_id, &plan.volume)
                .map_err(internal("Unable to attach persistent disk"))?;
            let disk = Self::hotplug_disk(&plan.volume, &plan.target);
            let spec = self.device_of(&plan.vm, &disk);
            hv.attach_disk(&plan.vm, &plan.host, &spec).map_err(|e| {
                VolumeError::Internal(format!("Unable to attach persistent disk: {e}"))
            })
        })();
        let in_libvirt = started.elapsed();
        if let Err(e) = attached {
            let _ = self.core.volume_unmount(uuid, vm_id);
            let _ = std::fs::remove_file(VmPaths::new(&self.vm_dir, vm_id).hotplug_link(uuid));
            tracing::warn!(volume = %uuid, vm = vm_id, error = %e, "hot-plug failed");
            return Err(e);
        }
        if let Err(e) = self.write_hotplug_record(vm_id) {
            tracing::warn!(vm = vm_id, error = %e, "cannot record the hot-plugged volumes");
        }
        tracing::info!(volume = %uuid, vm = vm_id, target = %plan.target, in_libvirt = ?in_libvirt, "volume hot-plugged");
        Ok((plan.target, in_libvirt))
    }

    /// `DELETE /disks/<uuid>/mounts/<uuid>_<vmid>`: unplugs a hot-plugged volume (waiting for
    /// the guest to let it go) and removes the mount. Returns the mount and the time spent in
    /// libvirt.
    pub fn detach(
        &self,
        who: &VolumeUser,
        uuid: &str,
        mount_id: &str,
    ) -> VolumeResult<(Mount, Duration)> {
        let _busy = self.hold(uuid)?;
        let plan = self.core.volume_detach_begin(who, uuid, mount_id)?;
        let started = Instant::now();
        if plan.mount.is_hotplug() {
            if let (Some(vm), Some(host)) = (&plan.vm, &plan.host) {
                let hv = self.hypervisor_of(host)?;
                let disk = Self::hotplug_disk(&plan.volume, &plan.mount.device);
                let spec = self.device_of(vm, &disk);
                hv.detach_disk(vm, host, &spec, DETACH_WAIT).map_err(|e| {
                    VolumeError::Internal(format!("Unable to detach persistent disk: {e}"))
                })?;
            }
        }
        let in_libvirt = started.elapsed();
        self.core.volume_unmount(uuid, plan.mount.vm_id)?;
        let _ =
            std::fs::remove_file(VmPaths::new(&self.vm_dir, plan.mount.vm_id).hotplug_link(uuid));
        if let Err(e) = self.write_hotplug_record(plan.mount.vm_id) {
            tracing::warn!(vm = plan.mount.vm_id, error = %e, "cannot record the hot-plugged volumes");
        }
        tracing::info!(volume = %uuid, vm = plan.mount.vm_id, target = %plan.mount.device, in_libvirt = ?in_libvirt, "volume detached");
        Ok((plan.mount, in_libvirt))
    }

    /// `GET /disks/<uuid>/` with `Accept: application/x-gzip`: the raw content of the volume
    /// in a staging file (the caller gzips it to the client and removes it).
    pub fn export(&self, who: &VolumeUser, uuid: &str) -> VolumeResult<PathBuf> {
        let (v, _) = self
            .core
            .volume_view(who, uuid, &|u| format!("disk ({u}) does not exist"))?;
        self.backend
            .export_raw(&v.backing)
            .map_err(internal("cannot read the volume"))
    }

    /// `POST /disks/` multipart: a gzipped image (already in `staged`) becomes a new read-only
    /// data volume whose identifier is the Marketplace id of its content (pdisk's upload).
    ///
    /// The image may expand to at most `max_expanded` bytes (a small gzip of zeros must not
    /// keep the service decompressing for hours).
    pub fn upload(
        &self,
        who: &VolumeUser,
        staged: &Path,
        max_expanded: u64,
    ) -> VolumeResult<Volume> {
        let result = self.upload_staged(who, staged, max_expanded);
        let _ = std::fs::remove_file(staged);
        result
    }

    fn upload_staged(
        &self,
        who: &VolumeUser,
        staged: &Path,
        max_expanded: u64,
    ) -> VolumeResult<Volume> {
        let no_file = || VolumeError::BadRequest("no valid file uploaded".into());
        // The size decides the volume: count the uncompressed bytes first, up to the bound.
        let bytes = {
            let f = std::fs::File::open(staged).map_err(|_| no_file())?;
            let decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
            std::io::copy(
                &mut std::io::Read::take(decoder, max_expanded.saturating_add(1)),
                &mut std::io::sink(),
            )
            .map_err(|_| no_file())?
        };
        if bytes > max_expanded {
            return Err(VolumeError::BadRequest(format!(
                "the uploaded image expands to more than {max_expanded} bytes"
            )));
        }
        if bytes == 0 {
            return Err(VolumeError::BadRequest("empty file uploaded".into()));
        }
        let size = bytes.div_ceil(GIB).max(1);
        check_new_size(Some(size))?;
        let uuid = new_uuid();
        let backing = self
            .backend
            .plan(&uuid, true)
            .map_err(internal("cannot place the volume"))?;
        self.core.volume_create_begin(NewVolume {
            uuid: uuid.clone(),
            owner: who.name.clone(),
            size,
            tag: String::new(),
            visibility: Visibility::Private,
            kind: VolumeType::DataImageRawReadonly,
            identifier: String::new(),
            seed: true,
            base: None,
            backing: backing.clone(),
        })?;
        let filled = std::fs::File::open(staged)
            .map_err(StorageError::io("cannot read the upload"))
            .and_then(|f| {
                let mut decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f));
                self.backend.fill(&backing, size, &mut decoder)
            });
        let sha1 = match filled {
            Ok((_, sha1)) => sha1,
            Err(e) => {
                let _ = self.backend.remove(&backing);
                let _ = self.core.volume_forget(&uuid);
                return Err(VolumeError::BadRequest(format!(
                    "no valid file uploaded: {e}"
                )));
            }
        };
        let identifier = crate::storage::identifier::from_sha1(&sha1).unwrap_or_default();
        if self.identifier_taken(&identifier) {
            let _ = self.backend.remove(&backing);
            let _ = self.core.volume_forget(&uuid);
            return Err(VolumeError::Forbidden("Disk already registered".into()));
        }
        self.core.volume_created(&uuid, Some(size))?;
        let form = VolumeForm {
            identifier: Some(identifier),
            seed: true,
            ..VolumeForm::default()
        };
        let owner = VolumeUser::new(&who.name);
        let v = self.core.volume_update(&owner, &uuid, &form)?;
        tracing::info!(volume = %uuid, owner = %who.name, bytes, "image uploaded into a volume");
        Ok(v)
    }

    /// At start-up: finishes what a crash interrupted (volumes being made are removed, volumes
    /// being removed are removed), reports volume data no record names, and brings the mounts
    /// of hot-plugged volumes in line with the domains libvirt reports.
    pub fn reconcile(&self) {
        self.backend.clean_staging();
        for v in self.core.all_volumes() {
            match v.state {
                VolumeState::Ready => {}
                VolumeState::Creating | VolumeState::Deleting => {
                    let what = if v.state == VolumeState::Creating {
                        "creation"
                    } else {
                        "removal"
                    };
                    match self.backend.remove(&v.backing) {
                        Ok(()) => {
                            let _ = self.core.volume_forget(&v.uuid);
                            tracing::warn!(volume = %v.uuid, "interrupted volume {what} finished: the volume is gone");
                        }
                        Err(e) => {
                            tracing::warn!(volume = %v.uuid, error = %e, "interrupted volume {what}: cannot remove its data")
                        }
                    }
                }
            }
        }
        let known: HashSet<String> = self
            .core
            .all_volumes()
            .into_iter()
            .map(|v| v.uuid)
            .collect();
        for path in self.backend.unknown_volumes(&|uuid| known.contains(uuid)) {
            tracing::warn!(%path, "volume data that no volume record names (left in place)");
        }
        self.reconcile_mounts();
    }

    fn reconcile_mounts(&self) {
        let (vms, hosts, volumes) = {
            let state = self.core.read();
            (
                state.vms.clone(),
                state.hosts.clone(),
                state.volumes.values().cloned().collect::<Vec<_>>(),
            )
        };
        // Mounts of VMs that ended while the daemon was down (the DONE write released them).
        let mut vms_with_hotplug: HashSet<Oid> = HashSet::new();
        for v in &volumes {
            for m in &v.mounts {
                let gone = vms
                    .get(&m.vm_id)
                    .is_none_or(|vm| vm.state == crate::model::vm::VmState::Done);
                if gone {
                    tracing::warn!(volume = %v.uuid, vm = m.vm_id, "mount of a VM that no longer runs released");
                    let _ = self.core.volume_unmount(&v.uuid, m.vm_id);
                } else if m.is_hotplug() {
                    vms_with_hotplug.insert(m.vm_id);
                }
            }
        }
        for vm in vms.values() {
            let running = vm.state == crate::model::vm::VmState::Active;
            let Some(host) = vm.last_history().and_then(|h| hosts.get(&h.hid)) else {
                continue;
            };
            let Some(hv) = self.drivers.hypervisor(&host.vm_mad) else {
                continue;
            };
            if !running && !vms_with_hotplug.contains(&vm.id) {
                continue;
            }
            let disks = match hv.domain_disks(vm, host) {
                Ok(Some(d)) => d,
                // Simulated hosts keep no devices; a missing domain is the VM poll's business.
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(vm = vm.id, error = %e, "cannot read the domain's disks");
                    continue;
                }
            };
            let paths = VmPaths::new(&self.vm_dir, vm.id);
            // Hot-plug mounts whose device libvirt does not show: the attach never completed,
            // or the detach did and the daemon died before recording it.
            for v in &volumes {
                if let Some(m) = v.mount_of(vm.id).filter(|m| m.is_hotplug()) {
                    let present = disks.iter().any(|(t, _)| t == &m.device);
                    if !present {
                        tracing::warn!(volume = %v.uuid, vm = vm.id, target = %m.device, "hot-plugged volume not in the domain: mount removed");
                        let _ = self.core.volume_unmount(&v.uuid, vm.id);
                    }
                }
            }
            // Devices libvirt shows at a volume link that no mount records: recorded again.
            for (target, source) in &disks {
                let Some(uuid) = source
                    .as_deref()
                    .and_then(|s| Path::new(s).strip_prefix(paths.images()).ok())
                    .and_then(|rel| rel.to_str())
                    .filter(|rel| is_uuid(rel))
                else {
                    continue;
                };
                let recorded = volumes
                    .iter()
                    .any(|v| v.uuid == uuid && v.mount_of(vm.id).is_some());
                if !recorded {
                    let mount = Mount {
                        vm_id: vm.id,
                        node: host.name.clone(),
                        device: target.clone(),
                        disk_index: None,
                        since: crate::model::now(),
                    };
                    match self.core.volume_mount_found(uuid, mount) {
                        Ok(true) => {
                            tracing::warn!(volume = %uuid, vm = vm.id, %target, "volume found attached in the domain: mount recorded")
                        }
                        _ => {
                            tracing::warn!(volume = %uuid, vm = vm.id, %target, "volume attached in the domain cannot be recorded")
                        }
                    }
                }
            }
            if let Err(e) = self.write_hotplug_record(vm.id) {
                tracing::warn!(vm = vm.id, error = %e, "cannot record the hot-plugged volumes");
            }
        }
    }
}

/// The dashboard's volumes page acts through the service, as the REST API does.
impl crate::dashboard::VolumeActions for VolumeService {
    fn delete(&self, who: &VolumeUser, uuid: &str) -> VolumeResult<()> {
        VolumeService::delete(self, who, uuid)
    }

    fn detach(&self, who: &VolumeUser, uuid: &str, vm: Oid) -> VolumeResult<String> {
        self.detach(who, uuid, &format!("{uuid}_{vm}"))
            .map(|(mount, _)| mount.device)
    }
}

/// The transfer driver's view of the service: a VM's prolog takes a user of a `pdisk:` volume.
pub struct Broker {
    pub core: Arc<Core>,
}

impl VolumeBroker for Broker {
    fn take(
        &self,
        uuid: &str,
        vm_id: Oid,
        owner: &str,
        privileged: bool,
        disk_index: usize,
        node: &str,
    ) -> crate::storage::Result<VolumeAccess> {
        let v = self
            .core
            .volume_take(&TakeRequest {
                uuid,
                vm_id,
                owner,
                privileged,
                disk_index,
                node,
            })
            .map_err(StorageError::BadValue)?;
        if let Backing::Lvm { vg, lv } = &v.backing {
            crate::storage::volumes::lvm::activate(vg, lv)?;
        }
        Ok(VolumeAccess::of(&v.uuid, &v.backing, v.size))
    }
}
