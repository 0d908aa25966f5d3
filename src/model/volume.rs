//! Persistent volumes of StratusLab's persistent disk service (pdisk), served by stratusd itself:
//! what the service knew about a disk (stratuslab-hooks.md §4, §9) and which VMs use it.

use super::Oid;
use serde::{Deserialize, Serialize};

/// pdisk's super-user (`persistent_disk_cloud_service_user`): it owns the site's cached images
/// and quarantined volumes.
pub const SUPERUSER: &str = "pdisk";

/// The device name pdisk recorded for a mount made by a VM's prolog (`register_only`), as
/// opposed to a hot-plugged one.
pub const STATIC_TARGET: &str = "static";

/// How many VMs may use one volume at a time: the client refuses at this count.
pub const MAX_USERS: usize = 10;

/// Smallest and largest size of a new volume, GiB (pdisk's `DISK_SIZE_MIN`/`DISK_SIZE_MAX`).
pub const SIZE_MIN_GIB: u64 = 1;
pub const SIZE_MAX_GIB: u64 = 1024;

/// pdisk's `DiskType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VolumeType {
    /// A cached machine image: the origin of copy-on-write snapshots, never booted itself.
    MachineImageOrigin,
    /// A copy-on-write snapshot of an origin: booted as a VM's root disk.
    MachineImageLive,
    DataImageOrigin,
    DataImageLive,
    /// A user's data volume that VMs may share, read-only.
    DataImageRawReadonly,
    /// A user's data volume, one VM at a time (the default).
    DataImageRawReadWrite,
}

impl VolumeType {
    pub const ALL: [VolumeType; 6] = [
        VolumeType::MachineImageOrigin,
        VolumeType::MachineImageLive,
        VolumeType::DataImageOrigin,
        VolumeType::DataImageLive,
        VolumeType::DataImageRawReadonly,
        VolumeType::DataImageRawReadWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VolumeType::MachineImageOrigin => "MACHINE_IMAGE_ORIGIN",
            VolumeType::MachineImageLive => "MACHINE_IMAGE_LIVE",
            VolumeType::DataImageOrigin => "DATA_IMAGE_ORIGIN",
            VolumeType::DataImageLive => "DATA_IMAGE_LIVE",
            VolumeType::DataImageRawReadonly => "DATA_IMAGE_RAW_READONLY",
            VolumeType::DataImageRawReadWrite => "DATA_IMAGE_RAW_READ_WRITE",
        }
    }

    /// Java's `DiskType.valueOf`: the exact constant name.
    pub fn parse(text: &str) -> Option<VolumeType> {
        VolumeType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// Several VMs may use it at once (read-only); every other type is one VM's at a time.
    pub fn shareable(self) -> bool {
        self == VolumeType::DataImageRawReadonly
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Visibility {
    Private,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "PRIVATE",
            Visibility::Public => "PUBLIC",
        }
    }

    /// pdisk's `DiskVisibility.valueOf(value.toUpperCase())`.
    pub fn parse(text: &str) -> Option<Visibility> {
        match text.to_uppercase().as_str() {
            "PRIVATE" => Some(Visibility::Private),
            "PUBLIC" => Some(Visibility::Public),
            _ => None,
        }
    }
}

/// Where a volume's data lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "backend")]
pub enum Backing {
    /// A file under the volume directory: sparse raw, or qcow2 (always for copy-on-write
    /// snapshots, whose backing file is `base`).
    File { path: String, format: String },
    /// A logical volume `/dev/<vg>/<lv>`; a snapshot volume is an LVM snapshot.
    Lvm { vg: String, lv: String },
}

impl Backing {
    /// The path a hypervisor opens (a file, or the LV's device node).
    pub fn path(&self) -> std::path::PathBuf {
        match self {
            Backing::File { path, .. } => std::path::PathBuf::from(path),
            Backing::Lvm { vg, lv } => std::path::PathBuf::from(format!("/dev/{vg}/{lv}")),
        }
    }

    /// The disk format to declare to the hypervisor.
    pub fn format(&self) -> &str {
        match self {
            Backing::File { format, .. } => format,
            Backing::Lvm { .. } => "raw",
        }
    }

    pub fn is_block(&self) -> bool {
        matches!(self, Backing::Lvm { .. })
    }

    /// pdisk's transport URL of the volume (`GET /disks/<uuid>/turl/`): nodes reach the
    /// volume through the file system the front-end shares with them.
    pub fn turl(&self) -> String {
        format!("file://{}", self.path().display())
    }
}

/// Where a volume is in its life: creation and deletion of the data are recorded before they
/// start, so that a restart (or `kill -9`) in the middle finishes or undoes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VolumeState {
    /// The data is being made; not usable, not listed.
    Creating,
    Ready,
    /// The data is being removed; the record goes once it is.
    Deleting,
}

/// A VM using the volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub vm_id: Oid,
    /// The host the VM runs on (pdisk's `node`).
    pub node: String,
    /// [`STATIC_TARGET`] for a disk of the VM's template, else the hot-plug target (`vdz`…).
    pub device: String,
    /// Which DISK of the template it is (static mounts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_index: Option<usize>,
    pub since: i64,
}

impl Mount {
    /// pdisk's mount id `<uuid>_<vmid>`.
    pub fn id(&self, uuid: &str) -> String {
        format!("{uuid}_{}", self.vm_id)
    }

    pub fn is_hotplug(&self) -> bool {
        self.device != STATIC_TARGET
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub uuid: String,
    /// The user name (the OpenNebula user name of the front door identity).
    pub owner: String,
    pub tag: String,
    /// GiB.
    pub size: u64,
    #[serde(rename = "type")]
    pub kind: VolumeType,
    pub visibility: Visibility,
    /// Marketplace id of an origin, `snapshot:<origin uuid>` of a snapshot, or what users set.
    pub identifier: String,
    /// pdisk's quarantine stamp (`YYYY-MM-DD HH:MM:SS.ffffff`), empty when not in quarantine.
    pub quarantine: String,
    /// When it entered the quarantine (epoch seconds), for the purge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined_at: Option<i64>,
    /// An origin made by a save (pdisk's `seed`): never removed automatically.
    pub seed: bool,
    /// The volume a copy-on-write snapshot is based on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    pub created: i64,
    pub backing: Backing,
    pub state: VolumeState,
    pub mounts: Vec<Mount>,
    /// The image cache's copy of a Marketplace image offered as an origin (pdisk's cached
    /// images): its data belongs to the cache, so the volume service never changes or
    /// removes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

impl Volume {
    pub fn is_ready(&self) -> bool {
        self.state == VolumeState::Ready
    }

    pub fn in_quarantine(&self) -> bool {
        !self.quarantine.is_empty()
    }

    pub fn mount_of(&self, vm_id: Oid) -> Option<&Mount> {
        self.mounts.iter().find(|m| m.vm_id == vm_id)
    }
}

/// A new volume id: a random (version 4) UUID, as pdisk's `UUID.randomUUID()`.
pub fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A UUID in its canonical text form (8-4-4-4-12 hexadecimal digits). Everything that names a
/// volume on disk or on the command line of a tool is one: nothing else reaches a path.
pub fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        let u = new_uuid();
        assert!(is_uuid(&u), "{u}");
        assert_eq!(&u[14..15], "4");
        assert_ne!(new_uuid(), u);
        assert!(!is_uuid("../../../../etc/passwd-0000-0000-000000"));
        assert!(!is_uuid("48ac4190-9a11-4a06-8bef-03fd97080eb"));
        assert!(is_uuid("48ac4190-9a11-4a06-8bef-03fd97080eba"));
    }

    #[test]
    fn types_and_visibility_parse_as_pdisk() {
        for t in VolumeType::ALL {
            assert_eq!(VolumeType::parse(t.as_str()), Some(t));
        }
        assert_eq!(VolumeType::parse("data_image_raw_readonly"), None);
        assert_eq!(Visibility::parse("public"), Some(Visibility::Public));
        assert_eq!(Visibility::parse("Private"), Some(Visibility::Private));
        assert_eq!(Visibility::parse("restricted"), None);
        assert!(VolumeType::DataImageRawReadonly.shareable());
        assert!(!VolumeType::DataImageRawReadWrite.shareable());
    }

    #[test]
    fn backings() {
        let f = Backing::File {
            path: "/var/lib/stratusd/volumes/x".into(),
            format: "raw".into(),
        };
        assert_eq!(f.turl(), "file:///var/lib/stratusd/volumes/x");
        assert!(!f.is_block());
        let l = Backing::Lvm {
            vg: "pdisk".into(),
            lv: "x".into(),
        };
        assert_eq!(l.path(), std::path::Path::new("/dev/pdisk/x"));
        assert_eq!(l.format(), "raw");
        assert!(l.is_block());
    }
}
