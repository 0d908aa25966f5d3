//! The transfer drivers that really put disks in VM directories: `tm_stratuslab` (StratusLab's
//! TM: Marketplace cache, copy-on-write snapshots, context disks, save-as-new-image, quarantine)
//! and 3.2's stock `tm_ssh`/`tm_shared` (registered image files copied or linked).
//!
//! A host either sees the front-end's VM directory root (local or NFS: the MV of stop, resume
//! and migrate has nothing to move) or has its own, reached over SSH (`storage::node`): then
//! the prolog sends what the node needs (the cached image into the node's cache, verified by
//! SHA-1, the snapshot made there, copied files, the context disk), the epilog brings
//! `SAVE=yes` disks back, stop/resume/migrate move the VM directory, and DELETE quarantines on
//! the node.
//!
//! Each operation runs the steps of oned's transfer script in order and stops at the first
//! failure; the failure text is `<program>: <message>` with StratusLab's program names, which the
//! life cycle turns into `Error excuting image transfer script: …` and FAILED.

use super::{DriverError, Tm, TmOp};
use crate::model::{Host, Oid, Vm};
use crate::storage::cache::{copy_hashing, FetchRequest};
use crate::storage::context::{self, ContextMethod, ExtraFile};
use crate::storage::layout::{self, DiskKind, DiskRecord, VmPaths};
use crate::storage::node::{snapshot_disks, NodeStorage, Place, RemoteNode};
use crate::storage::quarantine::NodeCopy;
use crate::storage::save::{self, CreateImage, SaveRequest};
use crate::storage::site::StorageSite;
use crate::storage::source::{self, DiskSource};
use crate::storage::{cloud_init, cow, mib, pdisk, volatile, Reporter, StorageError};
use crate::template::vector_get;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `tm_ssh`: CLONE and LN copy the file.
    Ssh,
    /// `tm_shared`: CLONE copies, LN links.
    Shared,
    /// `tm_stratuslab`.
    StratusLab,
}

/// The transfer operations of oned's scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Clone,
    Ln,
    MkSwap,
    MkImage,
    Context,
    Mv,
    Delete,
}

/// A failed step: which program would have reported it, and what it said.
#[derive(Debug)]
struct StepError {
    program: Option<&'static str>,
    error: StorageError,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.program {
            Some(p) => write!(f, "{p}: {}", self.error),
            None => write!(f, "{}", self.error),
        }
    }
}

type StepResult<T = ()> = Result<T, StepError>;

/// Largest CONTEXT/FILES entry copied into a context disk.
const CONTEXT_FILE_LIMIT: u64 = 64 * 1024 * 1024;

pub struct DiskTm {
    flavor: Flavor,
    site: Arc<StorageSite>,
}

fn yes(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("yes"))
}

fn disk_index(disk: &[(String, String)], position: usize) -> usize {
    vector_get(disk, "DISK_ID")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(position)
}

impl DiskTm {
    pub fn new(flavor: Flavor, site: Arc<StorageSite>) -> Self {
        DiskTm { flavor, site }
    }

    fn program(&self, step: Step) -> &'static str {
        let stratuslab = self.flavor == Flavor::StratusLab;
        match step {
            Step::Clone if stratuslab => "tm_clone_cache.py",
            Step::Clone => "tm_clone.sh",
            Step::Ln => "tm_ln.sh",
            Step::MkSwap => "tm_mkswap.sh",
            Step::MkImage => "tm_mkimage.sh",
            Step::Context if stratuslab => "tm_context.py",
            Step::Context => "tm_context.sh",
            Step::Mv if stratuslab => "tm_save_cache.py",
            Step::Mv => "tm_mv.sh",
            Step::Delete if stratuslab => "tm_quarantine.py",
            Step::Delete => "tm_delete.sh",
        }
    }

    fn fail(&self, step: Step) -> impl Fn(StorageError) -> StepError + '_ {
        move |error| StepError {
            program: Some(self.program(step)),
            error,
        }
    }

    /// Where `host` keeps VM files; a bad host attribute fails the step as `step`.
    fn node_storage(&self, host: &Host, step: Step) -> StepResult<NodeStorage> {
        NodeStorage::of(host, &self.site.vm_dir).map_err(self.fail(step))
    }

    /// Where a disk of the VM is, as the VM log shows it (`node:path` on a remote node).
    fn disk_location(&self, node: &NodeStorage, paths: &VmPaths, vid: Oid, index: usize) -> String {
        match node.remote() {
            Some(r) => format!("{}:{}", r.target, r.disk(vid, index).display()),
            None => paths.disk(index).display().to_string(),
        }
    }

    fn prolog(&self, vm: &Vm, host: &Host, report: &Reporter) -> StepResult {
        let node = self.node_storage(host, Step::Clone)?;
        let paths = VmPaths::new(&self.site.vm_dir, vm.id);
        // The front-end keeps context.sh and disks.json; the disks are on the node when it
        // does not share the VM directory.
        let local = if node.remote().is_some() {
            paths.home.clone()
        } else {
            paths.images()
        };
        std::fs::create_dir_all(&local)
            .map_err(StorageError::io(format!(
                "cannot create {}",
                local.display()
            )))
            .map_err(self.fail(Step::Clone))?;
        if let Some(remote) = node.remote() {
            report.info(&format!(
                "Host {} does not share the VM directory: the disks go to {}:{} over SSH",
                host.name,
                remote.target,
                remote.images(vm.id).display()
            ));
            self.site
                .nodes
                .prepare(remote, vm.id)
                .map_err(self.fail(Step::Clone))?;
        }
        let disks: Vec<&[(String, String)]> = vm.template.vectors("DISK").collect();
        for (position, disk) in disks.iter().enumerate() {
            let index = disk_index(disk, position);
            let dtype = vector_get(disk, "TYPE").unwrap_or("").to_ascii_uppercase();
            match dtype.as_str() {
                "SWAP" => self.make_swap(vm.id, &node, &paths, index, disk, report)?,
                "FS" => self.make_fs(vm.id, &node, &paths, index, disk, report)?,
                _ => self.clone_disk(vm, host, &node, &paths, index, disk, report)?,
            }
        }
        if let Some(ctx) = vm.template.get_vector("CONTEXT") {
            self.context(vm, &node, &paths, disks.len(), ctx, report)
                .map_err(self.fail(Step::Context))?;
        }
        Ok(())
    }

    fn make_swap(
        &self,
        vid: Oid,
        node: &NodeStorage,
        paths: &VmPaths,
        index: usize,
        disk: &[(String, String)],
        report: &Reporter,
    ) -> StepResult {
        let Some(size) = vector_get(disk, "SIZE") else {
            report.warn("No size in swap image, skipping");
            return Ok(());
        };
        let fail = self.fail(Step::MkSwap);
        let size = volatile::parse_size_mib(size).map_err(&fail)?;
        report.info(&format!(
            "MKSWAP {size} {}",
            self.disk_location(node, paths, vid, index)
        ));
        match node.remote() {
            Some(r) => {
                self.site
                    .nodes
                    .make_swap(r, vid, index, size, &volatile::new_swap_header(size))
            }
            None => volatile::make_swap(&paths.disk(index), size),
        }
        .map_err(&fail)?;
        paths
            .record_disk(
                index,
                DiskRecord::raw(DiskKind::Swap).sized(Some(size << 20)),
            )
            .map_err(&fail)
    }

    fn make_fs(
        &self,
        vid: Oid,
        node: &NodeStorage,
        paths: &VmPaths,
        index: usize,
        disk: &[(String, String)],
        report: &Reporter,
    ) -> StepResult {
        let (Some(size), Some(format)) = (vector_get(disk, "SIZE"), vector_get(disk, "FORMAT"))
        else {
            report.warn("No size or format in plain FS image, skipping");
            return Ok(());
        };
        let fail = self.fail(Step::MkImage);
        let size = volatile::parse_size_mib(size).map_err(&fail)?;
        report.info(&format!(
            "MKIMAGE {size} {format} {}",
            self.disk_location(node, paths, vid, index)
        ));
        match node.remote() {
            Some(r) => volatile::check_filesystem(format)
                .and_then(|fs| self.site.nodes.make_filesystem(r, vid, index, size, &fs)),
            None => volatile::make_filesystem(&paths.disk(index), size, format),
        }
        .map_err(&fail)?;
        paths
            .record_disk(
                index,
                DiskRecord::raw(DiskKind::Filesystem).sized(Some(size << 20)),
            )
            .map_err(&fail)
    }

    #[allow(clippy::too_many_arguments)]
    fn clone_disk(
        &self,
        vm: &Vm,
        host: &Host,
        node: &NodeStorage,
        paths: &VmPaths,
        index: usize,
        disk: &[(String, String)],
        report: &Reporter,
    ) -> StepResult {
        let source_text = vector_get(disk, "SOURCE").unwrap_or("").trim();
        if source_text.is_empty() {
            return Err(StepError {
                program: None,
                error: StorageError::BadValue(
                    "prolog, undefined source disk image in VM template".into(),
                ),
            });
        }
        let link = vector_get(disk, "CLONE").is_some_and(|v| v.trim().eq_ignore_ascii_case("no"));
        let step = if link { Step::Ln } else { Step::Clone };
        let fail = self.fail(step);
        let local = &self.site.settings.marketplace_endpoint_local;
        match (self.flavor, source::classify(source_text, local)) {
            (Flavor::StratusLab, DiskSource::Marketplace { endpoint, id }) => self
                .clone_marketplace(vm, node, paths, index, &endpoint, &id, report)
                .map_err(self.fail(Step::Clone)),
            (Flavor::StratusLab, DiskSource::Pdisk { uuid }) if node.remote().is_some() => {
                Err(fail(StorageError::BadValue(format!(
                    "Unable to attach persistent disk {uuid}: host {} does not share the VM directory",
                    host.name
                ))))
            }
            (Flavor::StratusLab, DiskSource::Pdisk { uuid }) => self
                .attach_pdisk(vm, host, paths, index, source_text, &uuid, report)
                .map_err(self.fail(Step::Clone)),
            (_, DiskSource::HostFile(_)) if node.remote().is_some() => {
                // 3.2's ssh driver copied for LN too: a node cannot link to a front-end file.
                let path = source::authorize_host_file(vm, disk, source_text).map_err(&fail)?;
                let remote = node.remote().ok_or_else(|| fail(StorageError::BadValue("no node".into())))?;
                let target = remote.disk(vm.id, index);
                report.info(&format!(
                    "CLONE {} {}:{}",
                    path.display(),
                    remote.target,
                    target.display()
                ));
                let mut file = std::fs::File::open(&path)
                    .map_err(StorageError::io(format!("Error copying {}", path.display())))
                    .map_err(&fail)?;
                let bytes = self
                    .site
                    .nodes
                    .put(
                        remote,
                        &mut file,
                        &target,
                        0o660,
                        &format!("Copying {} to node {}", path.display(), remote.target),
                        Some(report),
                    )
                    .map_err(&fail)?;
                paths
                    .record_disk(index, DiskRecord::plain(DiskKind::Copy).sized(Some(bytes)))
                    .map_err(&fail)
            }
            (_, DiskSource::HostFile(_)) => {
                let path = source::authorize_host_file(vm, disk, source_text).map_err(&fail)?;
                let target = paths.disk(index);
                let bytes = std::fs::metadata(&path).ok().map(|m| m.len());
                if link && self.flavor == Flavor::Shared {
                    report.info(&format!("LN {} {}", path.display(), target.display()));
                    link_file(&path, &target).map_err(&fail)?;
                    paths.record_disk(index, DiskRecord::plain(DiskKind::Link).sized(bytes))
                } else {
                    report.info(&format!("CLONE {} {}", path.display(), target.display()));
                    copy_file(&path, &target, report).map_err(&fail)?;
                    paths.record_disk(index, DiskRecord::plain(DiskKind::Copy).sized(bytes))
                }
                .map_err(&fail)
            }
            (_, DiskSource::Pdisk { uuid }) => Err(fail(StorageError::BadValue(format!(
                "persistent disk {uuid}: pdisk sources need the tm_stratuslab driver"
            )))),
            (_, DiskSource::Marketplace { .. }) => self
                .download_plain(vm, node, paths, index, source_text, report)
                .map_err(&fail),
        }
    }

    /// hooks §3.2: the cached image (downloaded and verified on a miss), the owner check, and
    /// the VM's own snapshot of it.
    #[allow(clippy::too_many_arguments)]
    fn clone_marketplace(
        &self,
        vm: &Vm,
        node: &NodeStorage,
        paths: &VmPaths,
        index: usize,
        endpoint: &str,
        id: &str,
        report: &Reporter,
    ) -> crate::storage::Result<()> {
        source::check_image_id(id)?;
        let request = FetchRequest {
            id,
            endpoint,
            policy: &self.site.settings.policy,
        };
        let image = self
            .site
            .cache
            .get_or_fetch(&request, &self.site.client, report)?;
        image.authorize(&vm.uname)?;
        // Checked at download; again here for images cached before that check existed.
        cow::check_no_backing_file(&self.site.cache.image_path(id), &image.format)?;
        // What the guest sees (the overlay has its backing image's size), for accounting.
        let bytes = cow::virtual_size(&self.site.cache.image_path(id), &image.format)
            .unwrap_or(image.bytes);
        if let Some(remote) = node.remote() {
            // hooks §3.2 on a node of its own: its cache gets the verified image once, the
            // VM's snapshot is made there.
            self.site
                .nodes
                .ensure_image(remote, &self.site.cache, &image, report)?;
            let started = std::time::Instant::now();
            self.site
                .nodes
                .create_overlay(remote, vm.id, index, id, &image.format)?;
            paths.record_disk(
                index,
                DiskRecord {
                    kind: DiskKind::Snapshot { image: id.into() },
                    format: Some("qcow2".into()),
                    bytes: Some(bytes),
                },
            )?;
            report.info(&format!(
                "Created the disk snapshot {}:{} of image {id} in {:.0} ms",
                remote.target,
                remote.disk(vm.id, index).display(),
                started.elapsed().as_secs_f64() * 1000.0
            ));
            return Ok(());
        }
        let target = paths.disk(index);
        let started = std::time::Instant::now();
        cow::create_overlay(&self.site.cache.image_path(id), &image.format, &target)?;
        let recorded = paths.record_disk(
            index,
            DiskRecord {
                kind: DiskKind::Snapshot { image: id.into() },
                format: Some("qcow2".into()),
                bytes: Some(bytes),
            },
        );
        if let Err(e) = recorded {
            // The snapshot is not usable without its record.
            let _ = std::fs::remove_file(&target);
            return Err(e);
        }
        report.info(&format!(
            "Created the disk snapshot {} of image {id} in {:.0} ms",
            target.display(),
            started.elapsed().as_secs_f64() * 1000.0
        ));
        Ok(())
    }

    /// hooks §3.4/§3.5: a pdisk volume used directly as disk `index`.
    #[allow(clippy::too_many_arguments)]
    fn attach_pdisk(
        &self,
        vm: &Vm,
        host: &Host,
        paths: &VmPaths,
        index: usize,
        source_text: &str,
        uuid: &str,
        report: &Reporter,
    ) -> crate::storage::Result<()> {
        let source_text = pdisk::single_volume_uri(source_text)?;
        let Some(client) = self.site.pdisk.as_ref() else {
            // No external pdisk service: the daemon's own volumes.
            let Some(broker) = self.site.volume_broker() else {
                return Err(StorageError::PdiskUnavailable(uuid.to_string()));
            };
            return self.attach_volume(
                broker.as_ref(),
                vm,
                host,
                paths,
                index,
                source_text,
                uuid,
                report,
            );
        };
        let volume = client.volume(uuid)?;
        // A mount of this VM is its own: the prolog ran before a restart, and is redone
        // without registering or counting the volume twice.
        let own = format!("{uuid}_{}", vm.id);
        let mounts = client.mounts(uuid)?;
        let again = mounts.iter().any(|m| m.to_string().contains(&own));
        let mut as_before = volume.clone();
        if again {
            as_before.count = volume.user_count().saturating_sub(1).to_string();
        }
        pdisk::check_volume(
            &as_before,
            index,
            &vm.uname,
            source::owner_is_privileged(vm),
        )?;
        let device = pdisk::device_of(&client.turl(uuid)?)?;
        if mounts.iter().any(|m| !m.to_string().contains(&own)) {
            return Err(StorageError::BadValue(format!(
                "Unable to attach persistent disk {uuid}: it is mounted by another VM"
            )));
        }
        if !again {
            client.register_mount(uuid, &host.name, vm.id)?;
        }
        let registered = pdisk::registered(&paths.home)
            .iter()
            .any(|u| u == source_text);
        let attached = (if registered {
            Ok(())
        } else {
            pdisk::register(&paths.home, source_text)
        })
        .and_then(|_| link_file(&device, &paths.disk(index)))
        .and_then(|_| {
            if again {
                return Ok(());
            }
            client.update(uuid, &[("count", &(volume.user_count() + 1).to_string())])
        })
        .and_then(|_| {
            paths.record_disk(
                index,
                DiskRecord::plain(DiskKind::Pdisk {
                    uuid: uuid.to_string(),
                    block: None,
                })
                .sized(volume.size_bytes()),
            )
        });
        if let Err(e) = attached {
            let _ = client.unregister_mount(uuid, vm.id);
            return Err(e);
        }
        report.info(&format!(
            "Attached persistent disk {uuid} ({}) as {}",
            device.display(),
            paths.disk(index).display()
        ));
        Ok(())
    }

    /// A volume of the built-in persistent disk service as disk `index`: the VM becomes one of
    /// its users (checked and recorded by the service at once), `images/disk.<i>` links to the
    /// volume, the registration file lists it (site scripts read it) and the disk record says
    /// how to open it. The volume is given back when the VM ends.
    #[allow(clippy::too_many_arguments)]
    fn attach_volume(
        &self,
        broker: &dyn crate::storage::volumes::VolumeBroker,
        vm: &Vm,
        host: &Host,
        paths: &VmPaths,
        index: usize,
        source_text: &str,
        uuid: &str,
        report: &Reporter,
    ) -> crate::storage::Result<()> {
        let access = broker.take(
            uuid,
            vm.id,
            &vm.uname,
            source::owner_is_privileged(vm),
            index,
            &host.name,
        )?;
        if !pdisk::registered(&paths.home)
            .iter()
            .any(|u| u == source_text)
        {
            pdisk::register(&paths.home, source_text)?;
        }
        link_file(&access.path, &paths.disk(index))?;
        paths.record_disk(
            index,
            DiskRecord {
                kind: DiskKind::Pdisk {
                    uuid: uuid.to_string(),
                    block: Some(access.block),
                },
                format: Some(access.format.clone()),
                bytes: Some(access.bytes),
            },
        )?;
        report.info(&format!(
            "Attached persistent disk {uuid} ({}, {}) as {}",
            access.path.display(),
            access.format,
            paths.disk(index).display()
        ));
        Ok(())
    }

    /// Stock 3.2: an `http://` SOURCE is fetched as is (only for oneadmin's VMs: an ordinary
    /// user could otherwise make the front-end fetch any internal URL into a disk).
    fn download_plain(
        &self,
        vm: &Vm,
        node: &NodeStorage,
        paths: &VmPaths,
        index: usize,
        url: &str,
        report: &Reporter,
    ) -> crate::storage::Result<()> {
        let lower = url.to_ascii_lowercase();
        let is_url = lower.starts_with("http://") || lower.starts_with("https://");
        if !is_url || !source::owner_is_privileged(vm) {
            return Err(StorageError::HostPathRefused {
                user: vm.uname.clone(),
                path: url.to_string(),
            });
        }
        report.info(&format!(
            "CLONE {url} {}",
            self.disk_location(node, paths, vm.id, index)
        ));
        let mut body =
            self.site
                .client
                .open_image(url)
                .map_err(|reason| StorageError::Download {
                    url: url.to_string(),
                    reason,
                })?;
        if let Some(remote) = node.remote() {
            let bytes = self.site.nodes.put(
                remote,
                &mut body,
                &remote.disk(vm.id, index),
                0o660,
                &format!("Downloading {url} to node {}", remote.target),
                Some(report),
            )?;
            return paths.record_disk(index, DiskRecord::plain(DiskKind::Copy).sized(Some(bytes)));
        }
        let target = paths.disk(index);
        let tmp = layout::temp_path(&target);
        let result = std::fs::File::create(&tmp)
            .and_then(|mut f| copy_hashing(&mut body, &mut f, None, "Downloading", Some(report)))
            .map_err(|e| StorageError::Download {
                url: url.to_string(),
                reason: e.to_string(),
            })
            .and_then(|copied| {
                layout::set_mode(&tmp, 0o660)?;
                std::fs::rename(&tmp, &target).map_err(StorageError::io(format!(
                    "cannot place {}",
                    target.display()
                )))?;
                Ok(copied)
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        let copied = result?;
        paths.record_disk(
            index,
            DiskRecord::plain(DiskKind::Copy).sized(Some(copied.bytes)),
        )
    }

    fn context(
        &self,
        vm: &Vm,
        node: &NodeStorage,
        paths: &VmPaths,
        index: usize,
        ctx: &[(String, String)],
        report: &Reporter,
    ) -> crate::storage::Result<()> {
        let text = context::context_sh(ctx);
        layout::write_atomically(&paths.context_sh(), text.as_bytes())?;
        let extra = self.context_files(vm, vector_get(ctx, "FILES").unwrap_or(""))?;
        let target = paths.disk(index);
        let location = self.disk_location(node, paths, vm.id, index);
        let now = crate::model::now();
        let (bytes, kind, mode) = match context::method(&text) {
            ContextMethod::OpenNebula => {
                report.info(&format!("CONTEXT {location} (ISO 9660, _STRATUSLAB)"));
                (
                    context::context_iso(&text, &extra, now),
                    DiskKind::ContextIso,
                    0o660,
                )
            }
            ContextMethod::CloudInit => {
                report.info(&format!(
                    "CONTEXT {location} (cloud-init VFAT, _CLOUD_INIT)"
                ));
                let data = cloud_init::from_context_sh(&text)?;
                (cloud_init::build(&data)?, DiskKind::ContextVfat, 0o664)
            }
        };
        if let Some(remote) = node.remote() {
            self.site.nodes.put(
                remote,
                &mut bytes.as_slice(),
                &remote.disk(vm.id, index),
                mode,
                "Sending the context disk",
                None,
            )?;
            return paths.record_disk(index, DiskRecord::plain(kind));
        }
        let tmp = layout::temp_path(&target);
        let placed = std::fs::write(&tmp, &bytes)
            .map_err(StorageError::io(format!("cannot write {}", tmp.display())))
            .and_then(|_| layout::set_mode(&tmp, mode))
            .and_then(|_| {
                std::fs::rename(&tmp, &target).map_err(StorageError::io(format!(
                    "cannot place {}",
                    target.display()
                )))
            });
        if placed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        placed?;
        paths.record_disk(index, DiskRecord::plain(kind))
    }

    /// CONTEXT/FILES: local paths or URLs, only from VMs of oneadmin (a user's FILES would put
    /// any front-end file, or any URL the front-end can reach, into the guest).
    fn context_files(&self, vm: &Vm, files: &str) -> crate::storage::Result<Vec<ExtraFile>> {
        let mut out = Vec::new();
        for item in files.split_whitespace() {
            if !source::owner_is_privileged(vm) {
                return Err(StorageError::ContextFileRefused {
                    user: vm.uname.clone(),
                    path: item.to_string(),
                });
            }
            let name = context::extra_file_name(item)?;
            let lower = item.to_ascii_lowercase();
            let mut data = Vec::new();
            if lower.starts_with("http://") || lower.starts_with("https://") {
                self.site
                    .client
                    .open_image(item)
                    .map_err(|reason| StorageError::Download {
                        url: item.to_string(),
                        reason,
                    })?
                    .take(CONTEXT_FILE_LIMIT)
                    .read_to_end(&mut data)
                    .map_err(StorageError::io(format!("cannot read {item}")))?;
            } else {
                std::fs::File::open(item)
                    .and_then(|f| f.take(CONTEXT_FILE_LIMIT).read_to_end(&mut data))
                    .map_err(StorageError::io(format!("cannot read {item}")))?;
            }
            out.push(ExtraFile { name, data });
        }
        Ok(out)
    }

    /// A SAVE=yes disk on a node without the shared VM directory comes to the front-end's
    /// `images/disk.<i>` first; a snapshot is pointed at the front-end's copy of its image.
    fn bring_back(
        &self,
        remote: &RemoteNode,
        vm: &Vm,
        paths: &VmPaths,
        index: usize,
        record: Option<&DiskRecord>,
        report: &Reporter,
    ) -> crate::storage::Result<()> {
        std::fs::create_dir_all(paths.images()).map_err(StorageError::io(format!(
            "cannot create {}",
            paths.images().display()
        )))?;
        let local = paths.disk(index);
        report.info(&format!(
            "MV {}:{} {}",
            remote.target,
            remote.disk(vm.id, index).display(),
            local.display()
        ));
        self.site
            .nodes
            .fetch(remote, &remote.disk(vm.id, index), &local, report)?;
        if let Some(DiskKind::Snapshot { image }) = record.map(|r| &r.kind) {
            let cached = self.site.cache.lookup(image).ok_or_else(|| {
                StorageError::BadValue(format!("image {image} is no longer cached"))
            })?;
            cow::rebase_unsafe(&local, &self.site.cache.image_path(image), &cached.format)?;
        }
        Ok(())
    }

    fn epilog(&self, vm: &Vm, host: &Host, report: &Reporter) -> StepResult {
        let node = self.node_storage(host, Step::Mv)?;
        let paths = VmPaths::new(&self.site.vm_dir, vm.id);
        if node.remote().is_none() && !paths.images().exists() {
            // Run before, up to the quarantine (a daemon crash kept its outcome from being
            // recorded): only the saved disks may still have to come back from there.
            return self.delete(vm, host, &saved_disk_names(vm), report);
        }
        let record = paths.read_record();
        let mut keep = Vec::new();
        for (position, disk) in vm.template.vectors("DISK").enumerate() {
            if !yes(vector_get(disk, "SAVE")) {
                continue;
            }
            let index = disk_index(disk, position);
            let fail = self.fail(Step::Mv);
            let this = record.disks.get(&index);
            if let Some(remote) = node.remote() {
                self.bring_back(remote, vm, &paths, index, this, report)
                    .map_err(&fail)?;
            }
            let create_image = vm.template.get_vector("CREATE_IMAGE");
            match (self.flavor, create_image) {
                (Flavor::StratusLab, Some(create)) if index == 0 => {
                    let origin = match this.map(|r| &r.kind) {
                        Some(DiskKind::Snapshot { image }) => Some(image.as_str()),
                        _ => None,
                    };
                    let format = this
                        .and_then(|r| r.format.clone())
                        .unwrap_or_else(|| "raw".into());
                    let request = SaveRequest {
                        disk: &paths.disk(index),
                        disk_format: &format,
                        origin_id: origin,
                        source: vector_get(disk, "SOURCE").unwrap_or(""),
                        owner: &vm.uname,
                        vid: vm.id,
                        create: CreateImage::from_pairs(create),
                        marketplace_local: &self.site.settings.marketplace_endpoint_local,
                        validity_days: self.site.settings.built_image_validity_days,
                        upload: self.site.settings.upload_saved_manifests,
                    };
                    save::save_as_new_image(&self.site.cache, &self.site.client, &request, report)
                        .map_err(&fail)?;
                }
                _ => {
                    if matches!(this.map(|r| &r.kind), Some(DiskKind::Link)) {
                        // A linked (persistent) image was written in place.
                        continue;
                    }
                    let to = paths.saved_disk(index);
                    if !paths.disk(index).exists() && to.exists() {
                        // Moved by an earlier run of this epilog.
                        keep.push(format!("disk.{index}"));
                        continue;
                    }
                    report.info(&format!(
                        "MV {} {}",
                        paths.disk(index).display(),
                        to.display()
                    ));
                    let format = this.and_then(|r| r.format.clone());
                    move_to_front_end(&paths.disk(index), format.as_deref(), &to).map_err(&fail)?;
                    keep.push(format!("disk.{index}"));
                }
            }
        }
        self.delete(vm, host, &keep, report)
    }

    /// DELETE: tm_stratuslab quarantines the VM directory; the stock drivers remove the disks.
    /// `keep` are files of the VM directory the front-end still has to pick up (saved disks).
    /// On a node without the shared VM directory the same happens there.
    fn delete(&self, vm: &Vm, host: &Host, keep: &[String], report: &Reporter) -> StepResult {
        let paths = VmPaths::new(&self.site.vm_dir, vm.id);
        let fail = self.fail(Step::Delete);
        let node = self.node_storage(host, Step::Delete)?;
        match self.flavor {
            Flavor::StratusLab => {
                if let Some(client) = self.site.pdisk.as_ref() {
                    if !pdisk::registered(&paths.home).is_empty() {
                        let detached =
                            pdisk::detach_all(client, &paths.home, vm.id, crate::model::now())
                                .map_err(&fail)?;
                        for uuid in detached {
                            report.info(&format!("Detached persistent disk {uuid}"));
                        }
                    }
                }
                let volumes: Vec<String> = paths
                    .read_record()
                    .disks
                    .iter()
                    .filter(|(_, r)| matches!(r.kind, DiskKind::Snapshot { .. }))
                    .map(|(i, _)| format!("images/disk.{i}"))
                    .collect();
                let node_copy = match node.remote() {
                    Some(remote) => self
                        .site
                        .nodes
                        .quarantine_vm(remote, vm.id, crate::model::now())
                        .map_err(&fail)?
                        .map(|path| {
                            report.info(&format!(
                                "Moved the VM directory on node {} to {}",
                                remote.target,
                                path.display()
                            ));
                            NodeCopy {
                                target: remote.target.clone(),
                                path,
                            }
                        }),
                    None => None,
                };
                let moved = self
                    .site
                    .quarantine
                    .admit(&paths.home, vm.id, volumes, keep, node_copy)
                    .map_err(&fail)?;
                if let Some(to) = moved {
                    report.info(&format!("Moved the VM directory to {}", to.display()));
                }
                Ok(())
            }
            Flavor::Ssh | Flavor::Shared => {
                if let Some(remote) = node.remote() {
                    report.info(&format!(
                        "DELETE {}:{}",
                        remote.target,
                        remote.images(vm.id).display()
                    ));
                    self.site.nodes.remove_vm(remote, vm.id).map_err(&fail)?;
                }
                // stratusd's own record goes with the disks it describes.
                let _ = std::fs::remove_file(paths.record_path());
                report.info(&format!("DELETE {}", paths.images().display()));
                match std::fs::remove_dir_all(paths.images()) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(fail(StorageError::Io {
                            what: format!("cannot remove {}", paths.images().display()),
                            source: e,
                        }))
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

/// The names of the disks an epilog moves to the front-end (`disk.<i>` of the VM directory).
fn saved_disk_names(vm: &Vm) -> Vec<String> {
    vm.template
        .vectors("DISK")
        .enumerate()
        .filter(|(_, d)| yes(vector_get(d, "SAVE")))
        .map(|(position, d)| format!("disk.{}", disk_index(d, position)))
        .collect()
}

/// `<ldir>/disk.<i>` from `<rdir>/disk.<i>`: an overlay is written out whole (its backing
/// image stays in the cache), anything else is moved. Either way the disk is at one of its two
/// places at every moment (never only under a temporary name), so an epilog interrupted here
/// finds it again.
fn move_to_front_end(disk: &Path, format: Option<&str>, to: &Path) -> crate::storage::Result<()> {
    if format != Some("qcow2") {
        return std::fs::rename(disk, to)
            .map_err(StorageError::io(format!("cannot move {}", disk.display())));
    }
    let tmp = layout::temp_path(to);
    let result = cow::flatten_to_raw(disk, "qcow2", &tmp).and_then(|_| {
        std::fs::rename(&tmp, to)
            .map_err(StorageError::io(format!("cannot place {}", to.display())))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Copies a registered image file into the VM directory (sparse, with progress).
fn copy_file(from: &Path, to: &Path, report: &Reporter) -> crate::storage::Result<()> {
    let mut src = std::fs::File::open(from).map_err(StorageError::io(format!(
        "Error copying {}",
        from.display()
    )))?;
    let tmp = layout::temp_path(to);
    let started = std::time::Instant::now();
    let result = std::fs::File::create(&tmp)
        .and_then(|mut out| copy_hashing(&mut src, &mut out, None, "Copying", Some(report)))
        .map_err(StorageError::io(format!(
            "Error copying {} to {}",
            from.display(),
            to.display()
        )))
        .and_then(|copied| {
            layout::set_mode(&tmp, 0o660)?;
            std::fs::rename(&tmp, to)
                .map_err(StorageError::io(format!("cannot place {}", to.display())))?;
            Ok(copied)
        });
    match result {
        Ok(copied) => {
            report.info(&format!(
                "Copied {} in {:.1} s",
                mib(copied.bytes),
                started.elapsed().as_secs_f64()
            ));
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn link_file(from: &Path, to: &Path) -> crate::storage::Result<()> {
    let tmp = layout::temp_path(to);
    std::os::unix::fs::symlink(from, &tmp)
        .and_then(|_| std::fs::rename(&tmp, to))
        .map_err(StorageError::io(format!("cannot link {}", from.display())))
}

impl DiskTm {
    /// The MV of stop (to the front-end), resume (from it) and cold migration (between
    /// hosts): the VM directory moves when either side does not share it, and the snapshots
    /// are pointed at the image cache of the side they arrive on.
    fn move_vm(
        &self,
        vm: &Vm,
        from: &NodeStorage,
        to: &NodeStorage,
        report: &Reporter,
    ) -> StepResult {
        let fail = self.fail(Step::Mv);
        let front_end = self.site.vm_dir.as_path();
        if from == to && from.remote().is_none() {
            report.info("MV: the VM directory is shared with the front-end, nothing to move");
            return Ok(());
        }
        if from == to {
            report.info("MV: the VM stays on the same node, nothing to move");
            return Ok(());
        }
        let paths = VmPaths::new(front_end, vm.id);
        let snapshots = snapshot_disks(&paths.read_record(), &self.site.cache).map_err(&fail)?;
        let vid = vm.id.to_string();
        // From the front-end only the disks (and a checkpoint) go; from a node, everything
        // the node has of the VM.
        let members: Vec<String> = match from {
            NodeStorage::Shared => ["images", "checkpoint"]
                .iter()
                .filter(|m| paths.home.join(m).exists())
                .map(|m| format!("{vid}/{m}"))
                .collect(),
            NodeStorage::Remote(_) => vec![vid.clone()],
        };
        if let Some(dest) = to.remote() {
            for s in &snapshots {
                let image = self.site.cache.lookup(&s.image).ok_or_else(|| {
                    fail(StorageError::BadValue(format!(
                        "image {} is no longer cached",
                        s.image
                    )))
                })?;
                self.site
                    .nodes
                    .ensure_image(dest, &self.site.cache, &image, report)
                    .map_err(&fail)?;
            }
        }
        report.info(&format!(
            "MV {} to {}",
            describe(from, front_end, vm.id),
            describe(to, front_end, vm.id)
        ));
        self.site
            .nodes
            .copy_vm(
                place(from, front_end),
                place(to, front_end),
                &members,
                report,
            )
            .map_err(&fail)?;
        match to {
            NodeStorage::Remote(dest) => self.site.nodes.rebase_snapshots(dest, vm.id, &snapshots),
            NodeStorage::Shared => snapshots.iter().try_for_each(|s| {
                cow::rebase_unsafe(
                    &paths.disk(s.index),
                    &self.site.cache.image_path(&s.image),
                    &s.format,
                )
            }),
        }
        .map_err(&fail)?;
        // The copy is complete: the source's goes.
        match from {
            NodeStorage::Remote(source) => self.site.nodes.remove_vm(source, vm.id),
            NodeStorage::Shared => {
                let _ = std::fs::remove_file(paths.home.join("checkpoint"));
                match std::fs::remove_dir_all(paths.images()) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::Io {
                        what: format!("cannot remove {}", paths.images().display()),
                        source: e,
                    }),
                    _ => Ok(()),
                }
            }
        }
        .map_err(&fail)
    }
}

fn place<'a>(n: &'a NodeStorage, front_end: &'a Path) -> Place<'a> {
    match n {
        NodeStorage::Shared => Place::FrontEnd(front_end),
        NodeStorage::Remote(r) => Place::Node(r),
    }
}

fn describe(n: &NodeStorage, front_end: &Path, vid: Oid) -> String {
    match n {
        NodeStorage::Shared => front_end.join(vid.to_string()).display().to_string(),
        NodeStorage::Remote(r) => format!("{}:{}", r.target, r.home(vid).display()),
    }
}

impl Tm for DiskTm {
    fn execute(
        &self,
        op: TmOp,
        vm: &Vm,
        host: &Host,
        prev: Option<&Host>,
    ) -> Result<(), DriverError> {
        let report = Reporter {
            vid: vm.id,
            log: &self.site.log,
        };
        let result = match op {
            TmOp::Prolog => self.prolog(vm, host, &report),
            TmOp::Epilog => self.epilog(vm, host, &report),
            // EPILOG_STOP: from the host to the front-end.
            TmOp::Stop => self
                .node_storage(host, Step::Mv)
                .and_then(|n| self.move_vm(vm, &n, &NodeStorage::Shared, &report)),
            // PROLOG_RESUME: from the front-end to the (new) host.
            TmOp::Resume => self
                .node_storage(host, Step::Mv)
                .and_then(|n| self.move_vm(vm, &NodeStorage::Shared, &n, &report)),
            // PROLOG_MIGRATE: from the previous host to the new one.
            TmOp::Migrate => {
                let from = match prev {
                    Some(p) => self.node_storage(p, Step::Mv),
                    None => Ok(NodeStorage::Shared),
                };
                from.and_then(|from| {
                    let to = self.node_storage(host, Step::Mv)?;
                    self.move_vm(vm, &from, &to, &report)
                })
            }
            TmOp::Delete => self.delete(vm, host, &[], &report),
        };
        result.map_err(|e| {
            let text = e.to_string();
            report.error(&text);
            DriverError::Failed(text)
        })
    }

    fn prepare_live_migration(&self, vm: &Vm, host: &Host, prev: &Host) -> Result<(), DriverError> {
        let report = Reporter {
            vid: vm.id,
            log: &self.site.log,
        };
        let result = (|| {
            let from = self.node_storage(prev, Step::Mv)?;
            let to = self.node_storage(host, Step::Mv)?;
            match (&from, &to) {
                (NodeStorage::Shared, NodeStorage::Shared) => Ok(()),
                (NodeStorage::Remote(a), NodeStorage::Remote(b)) if a == b => Ok(()),
                (NodeStorage::Remote(a), NodeStorage::Remote(b)) => {
                    if a.vm_dir != b.vm_dir {
                        return Err(self.fail(Step::Mv)(StorageError::BadValue(format!(
                            "a live migration needs the same VM_DIR on both hosts ({} on {}, {} on {})",
                            a.vm_dir.display(),
                            a.target,
                            b.vm_dir.display(),
                            b.target
                        ))));
                    }
                    report.info(&format!(
                        "Preparing the disks of the live migration on node {}",
                        b.target
                    ));
                    let record = VmPaths::new(&self.site.vm_dir, vm.id).read_record();
                    self.site
                        .nodes
                        .prepare_live_migration(a, b, vm.id, &record, &self.site.cache, &report)
                        .map_err(self.fail(Step::Mv))
                }
                _ => Err(self.fail(Step::Mv)(StorageError::BadValue(format!(
                    "hosts {} and {} do not both share the VM directory: migrate without --live",
                    prev.name, host.name
                )))),
            }
        })();
        result.map_err(|e| {
            let text = e.to_string();
            report.error(&text);
            DriverError::Failed(text)
        })
    }

    fn finish_live_migration(
        &self,
        vm: &Vm,
        host: &Host,
        prev: &Host,
        migrated: bool,
    ) -> Result<(), DriverError> {
        let fail = |e: StorageError| DriverError::Failed(e.to_string());
        let from = NodeStorage::of(prev, &self.site.vm_dir).map_err(fail)?;
        let to = NodeStorage::of(host, &self.site.vm_dir).map_err(fail)?;
        if let (NodeStorage::Remote(a), NodeStorage::Remote(b)) = (&from, &to) {
            if a != b {
                let left = if migrated { a } else { b };
                self.site.nodes.remove_vm(left, vm.id).map_err(fail)?;
            }
        }
        Ok(())
    }
}
