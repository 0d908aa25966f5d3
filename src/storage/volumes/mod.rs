//! The data of persistent volumes (the built-in pdisk service): where a new volume goes, and
//! making, copying, reading, filling and removing it. Two back ends, as pdisk had:
//!
//! * [`files`]: one file per volume under the volume directory, sparse raw (default) or qcow2;
//!   a copy-on-write snapshot is a qcow2 overlay of its origin;
//! * [`lvm`]: one logical volume per volume in a configured volume group; a snapshot is an LVM
//!   snapshot. LVs are zeroed before they are removed, so no user reads another's old data.
//!
//! Which back end holds an existing volume is part of its record ([`Backing`]); the configured
//! back end only decides where new volumes go. Nothing but a volume UUID (checked by
//! [`crate::model::volume::is_uuid`]) ever becomes part of a path or of a tool's argument.
//!
//! [`VolumeBroker`] is what the transfer driver asks when a VM's template names a `pdisk:`
//! volume; the daemon installs the built-in service's broker.

pub mod files;
pub mod lvm;

use super::{Result, StorageError};
use crate::model::volume::{is_uuid, Backing};
use crate::model::Oid;
use std::io::Read;
use std::path::{Path, PathBuf};

pub const GIB: u64 = 1024 * 1024 * 1024;

/// Where new volumes go (`[volumes]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendKind {
    Files { dir: PathBuf, format: String },
    Lvm { vg: String },
}

/// What the prolog of a VM gets for a `pdisk:` disk: where the volume is and how to declare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeAccess {
    pub uuid: String,
    pub path: PathBuf,
    /// `raw` or `qcow2`.
    pub format: String,
    /// A block device (an LV) rather than a file.
    pub block: bool,
    /// The provisioned size.
    pub bytes: u64,
}

impl VolumeAccess {
    /// `size_gib`: the volume's provisioned size.
    pub fn of(uuid: &str, backing: &Backing, size_gib: u64) -> VolumeAccess {
        VolumeAccess {
            uuid: uuid.to_string(),
            path: backing.path(),
            format: backing.format().to_string(),
            block: backing.is_block(),
            bytes: size_gib.saturating_mul(1 << 30),
        }
    }
}

/// The built-in volume service as the transfer driver sees it: a VM's prolog takes a user
/// of the volume of a `pdisk:` disk (checked and recorded at once), and gets its location.
pub trait VolumeBroker: Send + Sync {
    /// Disk `disk_index` of VM `vm_id` (owner `owner`, on `node`) is volume `uuid`.
    fn take(
        &self,
        uuid: &str,
        vm_id: Oid,
        owner: &str,
        privileged: bool,
        disk_index: usize,
        node: &str,
    ) -> Result<VolumeAccess>;
}

/// The volume data of this site.
#[derive(Debug, Clone)]
pub struct VolumeBackend {
    pub kind: BackendKind,
    /// The file back end's directory (also where downloads and uploads are staged).
    pub dir: PathBuf,
}

impl VolumeBackend {
    pub fn new(kind: BackendKind, dir: PathBuf) -> VolumeBackend {
        VolumeBackend { kind, dir }
    }

    /// Where a new (empty, or filled from content) volume `uuid` goes. Content always lands in
    /// a raw volume (only empty file volumes may be qcow2).
    pub fn plan(&self, uuid: &str, for_content: bool) -> Result<Backing> {
        check_uuid(uuid)?;
        Ok(match &self.kind {
            BackendKind::Files { dir, format } => {
                let format = if for_content { "raw" } else { format.as_str() };
                files::backing(dir, uuid, format)
            }
            BackendKind::Lvm { vg } => Backing::Lvm {
                vg: vg.clone(),
                lv: uuid.to_string(),
            },
        })
    }

    /// Where a copy of `source` goes: a copy-on-write snapshot stays with its origin's back
    /// end (an overlay file next to a file, an LVM snapshot in the origin's group); a full copy
    /// (rebase) goes where new volumes go.
    pub fn plan_copy(&self, source: &Backing, uuid: &str, cow: bool) -> Result<Backing> {
        check_uuid(uuid)?;
        if !cow {
            return self.plan(uuid, true);
        }
        Ok(match source {
            Backing::File { .. } => files::backing(&self.dir, uuid, "qcow2"),
            Backing::Lvm { vg, .. } => Backing::Lvm {
                vg: vg.clone(),
                lv: uuid.to_string(),
            },
        })
    }

    /// Makes an empty volume of `size_gib` GiB.
    pub fn create(&self, backing: &Backing, size_gib: u64) -> Result<()> {
        match backing {
            Backing::File { path, format } => files::create(Path::new(path), format, size_gib),
            Backing::Lvm { vg, lv } => lvm::create(vg, lv, size_gib),
        }
    }

    /// Makes `new` a copy-on-write snapshot of `origin`.
    pub fn create_snapshot(&self, origin: &Backing, new: &Backing, size_gib: u64) -> Result<()> {
        match (origin, new) {
            (Backing::File { path, format }, Backing::File { path: to, .. }) => {
                super::cow::create_overlay(Path::new(path), format, Path::new(to))
            }
            (Backing::Lvm { vg, lv }, Backing::Lvm { vg: to_vg, lv: to }) if vg == to_vg => {
                lvm::snapshot(vg, lv, to, size_gib)
            }
            _ => Err(StorageError::BadValue(
                "a snapshot stays in its origin's back end".into(),
            )),
        }
    }

    /// Makes `new` an independent copy of everything `source` holds (pdisk's rebase of a
    /// live snapshot into a new origin).
    pub fn copy(&self, source: &Backing, new: &Backing, size_gib: u64) -> Result<()> {
        match new {
            Backing::File { path, .. } => {
                files::flatten(&source.path(), source.format(), Path::new(path))
            }
            Backing::Lvm { vg, lv } => {
                lvm::create(vg, lv, size_gib)?;
                let filled = lvm::with_active(vg, lv, |device| {
                    files::copy_into_device(&source.path(), source.format(), device, &self.dir)
                });
                if filled.is_err() {
                    let _ = lvm::remove(vg, lv);
                }
                filled
            }
        }
    }

    /// Fills a new volume from `content` (raw bytes: uploads are gunzipped before), checking
    /// it fits in `size_gib`; returns the bytes written and their SHA-1.
    pub fn fill(
        &self,
        backing: &Backing,
        size_gib: u64,
        content: &mut (dyn Read + Send),
    ) -> Result<(u64, String)> {
        match backing {
            Backing::File { path, .. } => files::fill(Path::new(path), size_gib, content),
            Backing::Lvm { vg, lv } => {
                lvm::create(vg, lv, size_gib)?;
                let filled = lvm::with_active(vg, lv, |device| {
                    lvm::zero(device)?;
                    files::write_device(device, size_gib, content)
                });
                if filled.is_err() {
                    let _ = lvm::remove(vg, lv);
                }
                filled
            }
        }
    }

    /// Removes a volume's data; a volume already gone is not an error.
    pub fn remove(&self, backing: &Backing) -> Result<()> {
        match backing {
            Backing::File { path, .. } => files::remove(Path::new(path)),
            Backing::Lvm { vg, lv } => lvm::wipe_and_remove(vg, lv),
        }
    }

    /// Whether the volume's data is there.
    pub fn exists(&self, backing: &Backing) -> bool {
        match backing {
            Backing::File { path, .. } => Path::new(path).is_file(),
            Backing::Lvm { vg, lv } => lvm::exists(vg, lv),
        }
    }

    /// Writes the raw content of a volume (a snapshot with its origin's data) into a new file
    /// under the volume directory, for a download; the caller removes it.
    pub fn export_raw(&self, backing: &Backing) -> Result<PathBuf> {
        std::fs::create_dir_all(self.staging_dir()).map_err(StorageError::io(format!(
            "cannot create {}",
            self.staging_dir().display()
        )))?;
        let to = self
            .staging_dir()
            .join(format!("export-{:016x}.raw", rand::random::<u64>()));
        let result = match backing {
            Backing::File { format, path } if format == "raw" => {
                // A raw file is read as it is, through a hard link that a concurrent delete
                // cannot take away; a reflink or copy is not needed.
                std::fs::hard_link(path, &to)
                    .map_err(StorageError::io(format!("cannot read {path}")))
            }
            Backing::Lvm { vg, lv } => lvm::with_active(vg, lv, |device| {
                super::cow::flatten_to_raw(device, "raw", &to)
            }),
            other => super::cow::flatten_to_raw(&other.path(), other.format(), &to),
        };
        if result.is_err() {
            let _ = std::fs::remove_file(&to);
        }
        result.map(|_| to)
    }

    /// A new file under the staging directory (uploads, downloads).
    pub fn staging_file(&self, what: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(self.staging_dir()).map_err(StorageError::io(format!(
            "cannot create {}",
            self.staging_dir().display()
        )))?;
        Ok(self
            .staging_dir()
            .join(format!("{what}-{:016x}", rand::random::<u64>())))
    }

    fn staging_dir(&self) -> PathBuf {
        self.dir.join(".staging")
    }

    /// Empties the staging directory (at start-up: what was staged belonged to requests that
    /// died with the previous process).
    pub fn clean_staging(&self) {
        if let Ok(entries) = std::fs::read_dir(self.staging_dir()) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Volume data on disk that no record names (left by a crash, or put there by hand): only
    /// reported, never removed automatically.
    pub fn unknown_volumes(&self, known: &dyn Fn(&str) -> bool) -> Vec<String> {
        let mut found = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let uuid = name.strip_suffix(".qcow2").unwrap_or(&name);
                if is_uuid(uuid) && !known(uuid) {
                    found.push(e.path().display().to_string());
                }
            }
        }
        if let BackendKind::Lvm { vg } = &self.kind {
            for lv in lvm::list(vg).unwrap_or_default() {
                if is_uuid(&lv) && !known(&lv) {
                    found.push(format!("/dev/{vg}/{lv}"));
                }
            }
        }
        found
    }
}

fn check_uuid(uuid: &str) -> Result<()> {
    if is_uuid(uuid) {
        Ok(())
    } else {
        Err(StorageError::BadValue(format!("invalid volume id {uuid}")))
    }
}
