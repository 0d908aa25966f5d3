//! The transfer drivers that really put disks in VM directories: `tm_stratuslab` (StratusLab's
//! TM: Marketplace cache, copy-on-write snapshots, context disks, save-as-new-image, quarantine)
//! and 3.2's stock `tm_ssh`/`tm_shared` (registered image files copied or linked). The VM
//! directory root is shared by the front-end and the (simulated or local) hosts, so the MV of
//! stop/resume/migrate has nothing to move.
//!
//! Each operation runs the steps of oned's transfer script in order and stops at the first
//! failure; the failure text is `<program>: <message>` with StratusLab's program names, which the
//! life cycle turns into `Error excuting image transfer script: …` and FAILED.

use super::{DriverError, Tm, TmOp};
use crate::model::{Host, Vm};
use crate::storage::cache::{copy_hashing, FetchRequest};
use crate::storage::context::{self, ContextMethod, ExtraFile};
use crate::storage::layout::{self, DiskKind, DiskRecord, VmPaths};
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

    fn prolog(&self, vm: &Vm, host: &Host, report: &Reporter) -> StepResult {
        let paths = VmPaths::new(&self.site.vm_dir, vm.id);
        std::fs::create_dir_all(paths.images())
            .map_err(StorageError::io(format!(
                "cannot create {}",
                paths.images().display()
            )))
            .map_err(self.fail(Step::Clone))?;
        let disks: Vec<&[(String, String)]> = vm.template.vectors("DISK").collect();
        for (position, disk) in disks.iter().enumerate() {
            let index = disk_index(disk, position);
            let dtype = vector_get(disk, "TYPE").unwrap_or("").to_ascii_uppercase();
            match dtype.as_str() {
                "SWAP" => self.make_swap(&paths, index, disk, report)?,
                "FS" => self.make_fs(&paths, index, disk, report)?,
                _ => self.clone_disk(vm, host, &paths, index, disk, report)?,
            }
        }
        if let Some(ctx) = vm.template.get_vector("CONTEXT") {
            self.context(vm, &paths, disks.len(), ctx, report)
                .map_err(self.fail(Step::Context))?;
        }
        Ok(())
    }

    fn make_swap(
        &self,
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
        report.info(&format!("MKSWAP {size} {}", paths.disk(index).display()));
        volatile::make_swap(&paths.disk(index), size).map_err(&fail)?;
        paths
            .record_disk(index, DiskRecord::raw(DiskKind::Swap))
            .map_err(&fail)
    }

    fn make_fs(
        &self,
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
            paths.disk(index).display()
        ));
        volatile::make_filesystem(&paths.disk(index), size, format).map_err(&fail)?;
        paths
            .record_disk(index, DiskRecord::raw(DiskKind::Filesystem))
            .map_err(&fail)
    }

    fn clone_disk(
        &self,
        vm: &Vm,
        host: &Host,
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
                .clone_marketplace(vm, paths, index, &endpoint, &id, report)
                .map_err(self.fail(Step::Clone)),
            (Flavor::StratusLab, DiskSource::Pdisk { uuid }) => self
                .attach_pdisk(vm, host, paths, index, source_text, &uuid, report)
                .map_err(self.fail(Step::Clone)),
            (_, DiskSource::HostFile(_)) => {
                let path = source::authorize_host_file(vm, disk, source_text).map_err(&fail)?;
                let target = paths.disk(index);
                if link && self.flavor == Flavor::Shared {
                    report.info(&format!("LN {} {}", path.display(), target.display()));
                    link_file(&path, &target).map_err(&fail)?;
                    paths.record_disk(index, DiskRecord::plain(DiskKind::Link))
                } else {
                    report.info(&format!("CLONE {} {}", path.display(), target.display()));
                    copy_file(&path, &target, report).map_err(&fail)?;
                    paths.record_disk(index, DiskRecord::plain(DiskKind::Copy))
                }
                .map_err(&fail)
            }
            (_, DiskSource::Pdisk { uuid }) => Err(fail(StorageError::BadValue(format!(
                "persistent disk {uuid}: pdisk sources need the tm_stratuslab driver"
            )))),
            (_, DiskSource::Marketplace { .. }) => self
                .download_plain(vm, paths, index, source_text, report)
                .map_err(&fail),
        }
    }

    /// hooks §3.2: the cached image (downloaded and verified on a miss), the owner check, and
    /// the VM's own snapshot of it.
    fn clone_marketplace(
        &self,
        vm: &Vm,
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
        let target = paths.disk(index);
        let started = std::time::Instant::now();
        cow::create_overlay(&self.site.cache.image_path(id), &image.format, &target)?;
        let recorded = paths.record_disk(
            index,
            DiskRecord {
                kind: DiskKind::Snapshot { image: id.into() },
                format: Some("qcow2".into()),
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
        let Some(client) = self.site.pdisk.as_ref() else {
            return Err(StorageError::PdiskUnavailable(uuid.to_string()));
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
                }),
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

    /// Stock 3.2: an `http://` SOURCE is fetched as is (only for oneadmin's VMs: an ordinary
    /// user could otherwise make the front-end fetch any internal URL into a disk).
    fn download_plain(
        &self,
        vm: &Vm,
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
        let target = paths.disk(index);
        report.info(&format!("CLONE {url} {}", target.display()));
        let mut body =
            self.site
                .client
                .open_image(url)
                .map_err(|reason| StorageError::Download {
                    url: url.to_string(),
                    reason,
                })?;
        let tmp = layout::temp_path(&target);
        let result = std::fs::File::create(&tmp)
            .and_then(|mut f| copy_hashing(&mut body, &mut f, None, "Downloading", Some(report)))
            .map_err(|e| StorageError::Download {
                url: url.to_string(),
                reason: e.to_string(),
            })
            .and_then(|_| layout::set_mode(&tmp, 0o660))
            .and_then(|_| {
                std::fs::rename(&tmp, &target).map_err(StorageError::io(format!(
                    "cannot place {}",
                    target.display()
                )))
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result?;
        paths.record_disk(index, DiskRecord::plain(DiskKind::Copy))
    }

    fn context(
        &self,
        vm: &Vm,
        paths: &VmPaths,
        index: usize,
        ctx: &[(String, String)],
        report: &Reporter,
    ) -> crate::storage::Result<()> {
        let text = context::context_sh(ctx);
        layout::write_atomically(&paths.context_sh(), text.as_bytes())?;
        let extra = self.context_files(vm, vector_get(ctx, "FILES").unwrap_or(""))?;
        let target = paths.disk(index);
        let now = crate::model::now();
        let (bytes, kind, mode) = match context::method(&text) {
            ContextMethod::OpenNebula => {
                report.info(&format!(
                    "CONTEXT {} (ISO 9660, _STRATUSLAB)",
                    target.display()
                ));
                (
                    context::context_iso(&text, &extra, now),
                    DiskKind::ContextIso,
                    0o660,
                )
            }
            ContextMethod::CloudInit => {
                report.info(&format!(
                    "CONTEXT {} (cloud-init VFAT, _CLOUD_INIT)",
                    target.display()
                ));
                let data = cloud_init::from_context_sh(&text)?;
                (cloud_init::build(&data)?, DiskKind::ContextVfat, 0o664)
            }
        };
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

    fn epilog(&self, vm: &Vm, report: &Reporter) -> StepResult {
        let paths = VmPaths::new(&self.site.vm_dir, vm.id);
        let record = paths.read_record();
        let mut keep = Vec::new();
        for (position, disk) in vm.template.vectors("DISK").enumerate() {
            if !yes(vector_get(disk, "SAVE")) {
                continue;
            }
            let index = disk_index(disk, position);
            let fail = self.fail(Step::Mv);
            let this = record.disks.get(&index);
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
        self.delete(vm, &keep, report)
    }

    /// DELETE: tm_stratuslab quarantines the VM directory; the stock drivers remove the disks.
    /// `keep` are files of the VM directory the front-end still has to pick up (saved disks).
    fn delete(&self, vm: &Vm, keep: &[String], report: &Reporter) -> StepResult {
        let paths = VmPaths::new(&self.site.vm_dir, vm.id);
        let fail = self.fail(Step::Delete);
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
                let moved = self
                    .site
                    .quarantine
                    .admit(&paths.home, vm.id, volumes, keep)
                    .map_err(&fail)?;
                if let Some(to) = moved {
                    report.info(&format!("Moved the VM directory to {}", to.display()));
                }
                Ok(())
            }
            Flavor::Ssh | Flavor::Shared => {
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

/// `<ldir>/disk.<i>` from `<rdir>/disk.<i>`: an overlay is written out whole (its backing
/// image stays in the cache), anything else is moved.
fn move_to_front_end(disk: &Path, format: Option<&str>, to: &Path) -> crate::storage::Result<()> {
    let tmp = layout::temp_path(to);
    let result = if format == Some("qcow2") {
        cow::flatten_to_raw(disk, "qcow2", &tmp)
    } else {
        std::fs::rename(disk, &tmp)
            .map_err(StorageError::io(format!("cannot move {}", disk.display())))
    }
    .and_then(|_| {
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

impl Tm for DiskTm {
    fn execute(&self, op: TmOp, vm: &Vm, host: &Host) -> Result<(), DriverError> {
        let report = Reporter {
            vid: vm.id,
            log: &self.site.log,
        };
        let result = match op {
            TmOp::Prolog => self.prolog(vm, host, &report),
            TmOp::Epilog => self.epilog(vm, &report),
            TmOp::Stop | TmOp::Resume | TmOp::Migrate => {
                report.info("MV: the VM directory is shared with the front-end, nothing to move");
                Ok(())
            }
            TmOp::Delete => self.delete(vm, &[], &report),
        };
        result.map_err(|e| {
            let text = e.to_string();
            report.error(&text);
            DriverError::Failed(text)
        })
    }
}
