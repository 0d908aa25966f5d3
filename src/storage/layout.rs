//! Where a VM's storage lives. The layout is oned's and StratusLab's (hooks §0): the VM
//! directory `<vm_dir>/<vid>/` (oned's `<ldir>`, holding context.sh), its disks
//! `images/disk.<i>` (`<rdir>`), the context disk `images/disk.<N>`. Next to them stratusd keeps
//! `disks.json`, its record of what it put at each disk path: the hypervisor reads the disk
//! format from it (a qcow2 overlay must be declared qcow2, and probing a guest-written raw disk
//! for a format would let the guest choose), quarantine reads which disks are snapshots.

use super::{Result, StorageError};
use crate::model::Oid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a disk path holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DiskKind {
    /// A private copy-on-write overlay of the cached Marketplace image `image`.
    Snapshot {
        image: String,
    },
    /// A copy of a registered image file.
    Copy,
    /// A link to a registered (persistent) image file.
    Link,
    /// A link to the device of a pdisk volume.
    Pdisk {
        uuid: String,
        /// Whether the volume is a block device (an LV) or a file; `None` (a volume of an
        /// external pdisk): as the template's TYPE says. The volume's own kind wins over the
        /// client's `TYPE=block`, which a file volume cannot be opened as.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block: Option<bool>,
    },
    Swap,
    Filesystem,
    ContextIso,
    ContextVfat,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRecord {
    #[serde(flatten)]
    pub kind: DiskKind,
    /// Format to declare to the hypervisor (`qcow2` for overlays); `None`: the template's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The disk's size as the guest sees it (its virtual size), for accounting: a Marketplace
    /// image's, the copied or linked file's, the volume's, DISK/SIZE of swap and file systems;
    /// `None` for the context disk and records written before sizes were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl DiskRecord {
    /// A disk whose format is whatever the template says (raw by default).
    pub fn plain(kind: DiskKind) -> Self {
        DiskRecord {
            kind,
            format: None,
            bytes: None,
        }
    }

    /// A raw file stratusd made itself (swap, a fresh file system): declared raw whatever the
    /// template's DRIVER says, as the guest writes it.
    pub fn raw(kind: DiskKind) -> Self {
        DiskRecord {
            kind,
            format: Some("raw".into()),
            bytes: None,
        }
    }

    /// The same record with the disk's size (see [`DiskRecord::bytes`]).
    pub fn sized(self, bytes: Option<u64>) -> Self {
        DiskRecord { bytes, ..self }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisksRecord {
    pub disks: BTreeMap<usize, DiskRecord>,
}

impl DisksRecord {
    /// The disks whose size was recorded, in index order (the context disk has none).
    pub fn sizes(&self) -> Vec<crate::model::vm::DiskSize> {
        self.disks
            .iter()
            .filter_map(|(&disk_id, r)| {
                let kind = match r.kind {
                    DiskKind::Snapshot { .. } => "snapshot",
                    DiskKind::Copy => "copy",
                    DiskKind::Link => "link",
                    DiskKind::Pdisk { .. } => "pdisk",
                    DiskKind::Swap => "swap",
                    DiskKind::Filesystem => "fs",
                    DiskKind::ContextIso | DiskKind::ContextVfat => return None,
                };
                Some(crate::model::vm::DiskSize {
                    disk_id,
                    kind: kind.into(),
                    bytes: r.bytes?,
                })
            })
            .collect()
    }
}

/// Paths of one VM under the VM directory root.
#[derive(Debug, Clone)]
pub struct VmPaths {
    pub home: PathBuf,
}

impl VmPaths {
    pub fn new(vm_dir: &Path, vid: Oid) -> Self {
        VmPaths {
            home: vm_dir.join(vid.to_string()),
        }
    }

    pub fn images(&self) -> PathBuf {
        self.home.join("images")
    }

    pub fn disk(&self, index: usize) -> PathBuf {
        self.images().join(format!("disk.{index}"))
    }

    /// The front-end copy of a disk after MV (`<ldir>/disk.<i>`), picked up by savedisk.
    pub fn saved_disk(&self, index: usize) -> PathBuf {
        self.home.join(format!("disk.{index}"))
    }

    pub fn context_sh(&self) -> PathBuf {
        self.home.join("context.sh")
    }

    pub fn record_path(&self) -> PathBuf {
        self.home.join("disks.json")
    }

    pub fn read_record(&self) -> DisksRecord {
        std::fs::read(self.record_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Records what disk `index` holds (atomically: written aside, then renamed).
    pub fn record_disk(&self, index: usize, record: DiskRecord) -> Result<()> {
        let mut all = self.read_record();
        all.disks.insert(index, record);
        let text = serde_json::to_vec_pretty(&all)
            .map_err(|e| StorageError::BadValue(format!("cannot encode disks.json: {e}")))?;
        write_atomically(&self.record_path(), &text)
    }
}

/// A volume hot-plugged into the VM's domain (`<vid>/hotplug.json`): a domain made again from
/// the template (resume after stop, a re-created simulated domain) gets it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotplugDisk {
    pub uuid: String,
    pub target: String,
    pub format: String,
    /// A block device (an LV) rather than a file.
    pub block: bool,
    pub readonly: bool,
}

impl VmPaths {
    /// Where a hot-plugged volume is linked from (StratusLab's `<vm dir>/<vid>/images/<uuid>`,
    /// the path pdisk's node script gave `virsh attach-disk`).
    pub fn hotplug_link(&self, uuid: &str) -> PathBuf {
        self.images().join(uuid)
    }

    pub fn hotplug_record_path(&self) -> PathBuf {
        self.home.join("hotplug.json")
    }

    pub fn hotplugged(&self) -> Vec<HotplugDisk> {
        std::fs::read(self.hotplug_record_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Replaces the record of hot-plugged volumes (atomically).
    pub fn record_hotplugged(&self, disks: &[HotplugDisk]) -> Result<()> {
        let text = serde_json::to_vec_pretty(disks)
            .map_err(|e| StorageError::BadValue(format!("cannot encode hotplug.json: {e}")))?;
        write_atomically(&self.hotplug_record_path(), &text)
    }
}

/// The format stratusd declared for each disk of a VM (absent: the template's DRIVER).
pub fn disk_formats(vm_dir: &Path, vid: Oid) -> BTreeMap<usize, String> {
    VmPaths::new(vm_dir, vid)
        .read_record()
        .disks
        .into_iter()
        .filter_map(|(i, r)| Some((i, r.format?)))
        .collect()
}

/// A temporary name next to `path` (same file system, so the final rename is atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let n: u32 = rand::random();
    path.with_file_name(format!(".{name}.{}.{n:08x}.tmp", std::process::id()))
}

/// Whether `name` is one of [`temp_path`]'s names (of a process other than this one).
fn is_leftover_temp(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let mut parts = inner.rsplitn(3, '.');
    let (Some(_n), Some(pid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    pid.parse::<u32>().is_ok_and(|p| p != std::process::id())
}

/// Removes the temporary files that processes killed while writing left under `root` (down to
/// `depth` directory levels): at start-up, before anything writes, a write in progress can
/// only be one of a process that is gone. Returns how many were removed.
pub fn remove_leftover_temps(root: &Path, depth: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if depth > 0 {
                removed += remove_leftover_temps(&path, depth - 1);
            }
        } else if is_leftover_temp(&entry.file_name().to_string_lossy())
            && std::fs::remove_file(&path).is_ok()
        {
            tracing::info!(file = %path.display(), "removed a temporary file left by a stopped process");
            removed += 1;
        }
    }
    removed
}

/// Writes `bytes` to `path` so that readers see either the old file or the whole new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(StorageError::io(format!("cannot create {}", dir.display())))?;
    }
    let tmp = temp_path(path);
    let result = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(StorageError::io(format!("cannot write {}", path.display())))
}

/// Sets a file's permission bits (StratusLab removed world access from VM disks).
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(StorageError::io(
        format!("cannot set the permissions of {}", path.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_oned() {
        let p = VmPaths::new(Path::new("/var/lib/one"), 42);
        assert_eq!(p.disk(0), Path::new("/var/lib/one/42/images/disk.0"));
        assert_eq!(p.context_sh(), Path::new("/var/lib/one/42/context.sh"));
        assert_eq!(p.saved_disk(1), Path::new("/var/lib/one/42/disk.1"));
    }

    #[test]
    fn leftover_temporaries_of_other_processes_are_removed() {
        let dir = std::env::temp_dir().join(format!("layout-temps-{}", std::process::id()));
        let images = dir.join("7/images");
        std::fs::create_dir_all(&images).unwrap();
        let old = images.join(".disk.0.1.0000abcd.tmp");
        std::fs::write(&old, b"x").unwrap();
        let mine = temp_path(&images.join("disk.1"));
        std::fs::write(&mine, b"x").unwrap();
        let other = images.join("disk.0");
        std::fs::write(&other, b"x").unwrap();
        assert_eq!(remove_leftover_temps(&dir, 3), 1);
        assert!(!old.exists() && mine.exists() && other.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn record_round_trip() {
        let dir = std::env::temp_dir().join(format!("layout-test-{}", std::process::id()));
        let p = VmPaths::new(&dir, 3);
        p.record_disk(
            0,
            DiskRecord {
                kind: DiskKind::Snapshot { image: "X".into() },
                format: Some("qcow2".into()),
                bytes: None,
            },
        )
        .unwrap();
        p.record_disk(2, DiskRecord::plain(DiskKind::ContextIso))
            .unwrap();
        let f = disk_formats(&dir, 3);
        assert_eq!(f.get(&0).map(String::as_str), Some("qcow2"));
        assert_eq!(f.get(&2), None);
        assert_eq!(p.read_record().disks.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
