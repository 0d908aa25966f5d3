//! A VM's template → the libvirt domain description, as oned 3.2's KVM driver wrote it. Disk
//! sources always point into the VM's own directory (`<vm_dir>/<vid>/images/disk.<i>`), never at
//! a template's `SOURCE`: the transfer manager is what puts a disk there, so no template value
//! can make a host path a guest disk. The format of a disk is the one the transfer manager
//! recorded for it (a qcow2 snapshot must be declared qcow2), else the template's DRIVER —
//! never probed from the file, whose content the guest controls.

use super::libvirt::{
    DiskDevice, DiskKind, DiskSpec, DomainSpec, FeaturesSpec, GraphicsSpec, NicSpec, OsSpec,
};
use crate::model::Vm;
use crate::storage::layout::DiskKind as RecordedKind;
use crate::template::vector_get;
use std::path::{Path, PathBuf};

/// `OS/ARCH` when the template has none (3.2's `vmm_exec_kvm.conf` default).
pub const DEFAULT_ARCH: &str = "x86_64";

pub fn domain_name(vm: &Vm) -> String {
    format!("one-{}", vm.id)
}

/// `<vm_dir>/<vid>/images`, where the transfer manager puts the VM's disks.
pub fn images_dir(vm_dir: &Path, vm: &Vm) -> PathBuf {
    vm_dir.join(vm.id.to_string()).join("images")
}

fn yes(v: Option<&str>) -> Option<bool> {
    v.map(|v| v.eq_ignore_ascii_case("yes"))
}

/// Where a hypervisor puts a VM: the VM directory root, the domain type, an optional serial
/// console file and the site's NIC model.
pub struct Placement<'a> {
    /// The VM directory root as the host sees it (a node may have its own).
    pub vm_dir: &'a Path,
    /// The front-end's VM directory root, where `disks.json` says what each disk holds.
    pub record_dir: &'a Path,
    pub domain_type: &'a str,
    pub console_log: Option<PathBuf>,
    /// The NIC model for NICs that name none (3.2's `vmm_exec_kvm.conf` NIC default).
    pub default_nic_model: Option<&'a str>,
    /// Give the guest a virtio RNG (`guest_rng`).
    pub rng: bool,
}

pub fn domain_spec(vm: &Vm, at: Placement<'_>) -> DomainSpec {
    let Placement {
        vm_dir,
        record_dir,
        domain_type,
        console_log,
        default_nic_model,
        rng,
    } = at;
    let t = &vm.template;
    let images = images_dir(vm_dir, vm);
    let os = t.get_vector("OS").unwrap_or(&[]);
    let os = OsSpec {
        arch: vector_get(os, "ARCH").unwrap_or(DEFAULT_ARCH).to_string(),
        kernel: vector_get(os, "KERNEL").map(PathBuf::from),
        initrd: vector_get(os, "INITRD").map(PathBuf::from),
        cmdline: vector_get(os, "KERNEL_CMD").map(str::to_string),
        root: vector_get(os, "ROOT").map(str::to_string),
        boot: vector_get(os, "BOOT").map(str::to_string),
    };
    let recorded = crate::storage::layout::VmPaths::new(record_dir, vm.id).read_record();
    let mut disks = Vec::new();
    for (i, d) in t.vectors("DISK").enumerate() {
        let index = vector_get(d, "DISK_ID")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(i);
        let dtype = vector_get(d, "TYPE").unwrap_or("").to_ascii_lowercase();
        let target = vector_get(d, "TARGET").unwrap_or("").to_string();
        disks.push(DiskSpec {
            source: images.join(format!("disk.{index}")),
            kind: match recorded.disks.get(&index).map(|r| &r.kind) {
                Some(RecordedKind::Pdisk {
                    block: Some(block), ..
                }) => {
                    if *block {
                        DiskKind::Block
                    } else {
                        DiskKind::File
                    }
                }
                _ if dtype == "block" => DiskKind::Block,
                _ => DiskKind::File,
            },
            device: if dtype == "cdrom" {
                DiskDevice::Cdrom
            } else {
                DiskDevice::Disk
            },
            target,
            bus: vector_get(d, "BUS").map(str::to_string),
            driver: recorded
                .disks
                .get(&index)
                .and_then(|r| r.format.clone())
                .or_else(|| vector_get(d, "DRIVER").map(str::to_string)),
            cache: vector_get(d, "CACHE").map(str::to_string),
            readonly: yes(vector_get(d, "READONLY")).unwrap_or(false) || dtype == "cdrom",
            // The transfer manager's snapshot overlays and the built-in volume service's own
            // volumes (`block` known) have chains stratusd made; an external pdisk's volume
            // does not.
            own_backing_chain: matches!(
                recorded.disks.get(&index).map(|r| &r.kind),
                Some(RecordedKind::Snapshot { .. } | RecordedKind::Pdisk { block: Some(_), .. })
            ),
            // A persistent volume shows its UUID to the guest, as a hot-plugged one does.
            serial: match recorded.disks.get(&index).map(|r| &r.kind) {
                Some(RecordedKind::Pdisk { uuid, .. }) => Some(uuid.clone()),
                _ => None,
            },
        });
    }
    if let Some(ctx) = t.get_vector("CONTEXT") {
        let n = t.vectors("DISK").count();
        // StratusLab's cloud-init-context-device.patch: the VFAT config drive is a writable
        // disk, the ISO a read-only CD-ROM. Both are raw files stratusd wrote (3.2 declared the
        // ISO `raw` too).
        let cloud_init = vector_get(ctx, "CONTEXT_METHOD") == Some("cloud-init");
        disks.push(DiskSpec {
            source: images.join(format!("disk.{n}")),
            kind: DiskKind::File,
            device: if cloud_init {
                DiskDevice::Disk
            } else {
                DiskDevice::Cdrom
            },
            target: vector_get(ctx, "TARGET").unwrap_or("hdb").to_string(),
            readonly: !cloud_init,
            driver: Some("raw".to_string()),
            ..DiskSpec::default()
        });
    }
    // Volumes hot-plugged into the running domain come back when it is made again.
    for h in crate::storage::layout::VmPaths::new(record_dir, vm.id).hotplugged() {
        disks.push(hotplug_disk_spec(vm_dir, vm, &h));
    }
    let nics = t
        .vectors("NIC")
        .map(|n| NicSpec {
            bridge: vector_get(n, "BRIDGE").map(str::to_string),
            mac: vector_get(n, "MAC").map(str::to_string),
            model: vector_get(n, "MODEL")
                .or(default_nic_model)
                .map(str::to_string),
            target: vector_get(n, "TARGET").map(str::to_string),
            script: vector_get(n, "SCRIPT").map(str::to_string),
        })
        .collect();
    let graphics = t.get_vector("GRAPHICS").and_then(|g| {
        vector_get(g, "TYPE")
            .filter(|ty| ty.eq_ignore_ascii_case("vnc"))
            .map(|_| GraphicsSpec {
                // The core already gave a GRAPHICS without PORT `VNC_BASE_PORT + id`; `-1`
                // (what the StratusLab client sends) is libvirt's autoport, as 3.2's KVM
                // driver passed it on (a port under 5900 is refused by libvirt).
                port: vector_get(g, "PORT")
                    .and_then(|p| p.trim().parse::<i64>().ok())
                    .map(|p| i32::try_from(p).unwrap_or(-1)),
                listen: vector_get(g, "LISTEN").map(str::to_string),
                passwd: vector_get(g, "PASSWD").map(str::to_string),
                keymap: vector_get(g, "KEYMAP").map(str::to_string),
            })
    });
    let features = t.get_vector("FEATURES").unwrap_or(&[]);
    let features = FeaturesSpec {
        // 3.2's KVM defaults had ACPI on; QEMU 10 needs it.
        acpi: yes(vector_get(features, "ACPI")).unwrap_or(true),
        pae: yes(vector_get(features, "PAE")).unwrap_or(false),
    };
    let raw = t
        .vectors("RAW")
        .filter(|r| vector_get(r, "TYPE").is_some_and(|ty| ty.eq_ignore_ascii_case("kvm")))
        .filter_map(|r| vector_get(r, "DATA").map(str::to_string))
        .collect();
    DomainSpec {
        name: domain_name(vm),
        uuid: t.get("UUID").map(str::to_string),
        domain_type: domain_type.to_string(),
        vcpu: t.get("VCPU").and_then(|v| v.trim().parse().ok()),
        memory_mib: vm.template_memory().max(1) as u64,
        os,
        disks,
        nics,
        graphics,
        features,
        raw,
        serial_file: console_log,
        emulator: None,
        rng,
    }
}

/// The device of a hot-plugged volume: a virtio disk at its link in the VM directory, with the
/// volume's UUID as the serial number the guest sees.
pub fn hotplug_disk_spec(
    vm_dir: &Path,
    vm: &Vm,
    disk: &crate::storage::layout::HotplugDisk,
) -> DiskSpec {
    DiskSpec {
        source: crate::storage::layout::VmPaths::new(vm_dir, vm.id).hotplug_link(&disk.uuid),
        kind: if disk.block {
            DiskKind::Block
        } else {
            DiskKind::File
        },
        device: DiskDevice::Disk,
        target: disk.target.clone(),
        bus: Some("virtio".into()),
        driver: Some(disk.format.clone()),
        cache: None,
        readonly: disk.readonly,
        // The volume service made this file or device and its chain (an empty volume, a copy,
        // or an overlay of a volume or of a checked cached image): its guest writes only the
        // contents, never the header that names a backing file.
        own_backing_chain: true,
        serial: Some(disk.uuid.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::vm::{LcmState, VmState};
    use crate::model::Permissions;
    use crate::storage::layout::{DiskKind as RecordedKind, DiskRecord, VmPaths};
    use crate::template::Template;

    fn vm(text: &str) -> Vm {
        Vm {
            id: 42,
            uid: 5,
            gid: 1,
            uname: "jdoe".into(),
            gname: "users".into(),
            name: "one-42".into(),
            perms: Permissions::default(),
            last_poll: 0,
            state: VmState::Active,
            lcm_state: LcmState::Boot,
            stime: 0,
            etime: 0,
            deploy_id: String::new(),
            memory: 0,
            cpu: 0,
            net_tx: 0,
            net_rx: 0,
            template: Template::parse(text).unwrap(),
            history: Vec::new(),
            reboot_requested: false,
            resubmit_after_cleanup: false,
            boot_restores: false,
            disk_sizes: None,
        }
    }

    fn place(dir: &Path) -> Placement<'_> {
        Placement {
            vm_dir: dir,
            record_dir: dir,
            domain_type: "kvm",
            console_log: None,
            default_nic_model: None,
            rng: false,
        }
    }

    #[test]
    fn disks_live_in_the_vm_directory_whatever_the_source() {
        let v = vm("MEMORY=1536\nVCPU=2\nDISK=[SOURCE=\"/etc/shadow\",TARGET=vda,DRIVER=raw,DISK_ID=0]\n\
                    DISK=[TYPE=swap,SIZE=1536,TARGET=vdb,DISK_ID=1]\nCONTEXT=[TARGET=hdd,PUBLIC_KEY=k]\n\
                    GRAPHICS=[TYPE=vnc,PORT=-1]\nNIC=[BRIDGE=br0,MAC=\"02:00:86:9e:4b:2a\"]\nUUID=abc");
        let spec = domain_spec(&v, place(Path::new("/var/lib/one")));
        assert_eq!(spec.name, "one-42");
        assert_eq!(spec.uuid.as_deref(), Some("abc"));
        assert_eq!(spec.memory_mib, 1536);
        assert_eq!(spec.vcpu, Some(2));
        let sources: Vec<_> = spec
            .disks
            .iter()
            .map(|d| d.source.display().to_string())
            .collect();
        assert_eq!(
            sources,
            [
                "/var/lib/one/42/images/disk.0",
                "/var/lib/one/42/images/disk.1",
                "/var/lib/one/42/images/disk.2"
            ]
        );
        assert_eq!(spec.disks[2].target, "hdd");
        assert_eq!(spec.disks[2].device, DiskDevice::Cdrom);
        assert_eq!(spec.graphics.as_ref().and_then(|g| g.port), Some(-1));
        assert_eq!(spec.nics[0].bridge.as_deref(), Some("br0"));
        assert!(spec.features.acpi);
        let xml = crate::driver::libvirt::domain_xml(&spec);
        assert!(!xml.contains("/etc/shadow"));
    }

    #[test]
    fn explicit_vnc_port_is_kept() {
        let v = vm("MEMORY=64\nGRAPHICS=[TYPE=vnc,PORT=5901,LISTEN=0.0.0.0]");
        let spec = domain_spec(&v, place(Path::new("/d")));
        assert_eq!(spec.graphics.as_ref().and_then(|g| g.port), Some(5901));
    }

    #[test]
    fn recorded_formats_win_over_the_template_driver() {
        let dir = std::env::temp_dir().join(format!("spec-test-{}", std::process::id()));
        let v = vm("MEMORY=64\nDISK=[SOURCE=x,TARGET=vda,DRIVER=raw,DISK_ID=0]\nDISK=[TYPE=swap,SIZE=1,TARGET=vdb,DISK_ID=1]\nCONTEXT=[TARGET=hdd,CONTEXT_METHOD=\"cloud-init\"]");
        VmPaths::new(&dir, 42)
            .record_disk(
                0,
                DiskRecord {
                    kind: RecordedKind::Snapshot { image: "X".into() },
                    format: Some("qcow2".into()),
                    bytes: None,
                },
            )
            .unwrap();
        let spec = domain_spec(&v, place(&dir));
        assert_eq!(spec.disks[0].driver.as_deref(), Some("qcow2"));
        assert_eq!(spec.disks[1].driver, None);
        // Only the snapshot overlay the transfer manager made keeps its backing chain; every
        // other disk is declared without one, whatever its header says.
        assert!(spec.disks[0].own_backing_chain);
        assert!(!spec.disks[1].own_backing_chain);
        assert!(!spec.disks[2].own_backing_chain);
        // The cloud-init config drive is a writable disk.
        assert_eq!(spec.disks[2].device, DiskDevice::Disk);
        assert!(!spec.disks[2].readonly);
        // A swap file stratusd made is raw, whatever DRIVER the template gives it.
        let swap = vm("MEMORY=64\nDISK=[TYPE=swap,SIZE=1,TARGET=vdb,DRIVER=qcow2,DISK_ID=0]");
        VmPaths::new(&dir, 42)
            .record_disk(0, DiskRecord::raw(RecordedKind::Swap))
            .unwrap();
        assert_eq!(
            domain_spec(&swap, place(&dir)).disks[0].driver.as_deref(),
            Some("raw")
        );
        let _ = std::fs::remove_dir_all(&dir);
        let iso = domain_spec(&vm("MEMORY=64\nCONTEXT=[TARGET=hdd]"), place(&dir));
        assert_eq!(iso.disks[0].device, DiskDevice::Cdrom);
        assert!(iso.disks[0].readonly);
        assert_eq!(iso.disks[0].driver.as_deref(), Some("raw"));
    }

    #[test]
    fn a_node_of_its_own_gets_its_paths_and_the_site_nic_model() {
        let v = vm("MEMORY=64\nDISK=[SOURCE=x,TARGET=vda,DISK_ID=0]\n\
                    NIC=[BRIDGE=br0,MAC=\"02:00:0a:00:00:05\"]\nNIC=[BRIDGE=br0,MODEL=e1000]");
        let front = std::env::temp_dir().join(format!("spec-node-{}", std::process::id()));
        VmPaths::new(&front, 42)
            .record_disk(
                0,
                DiskRecord {
                    kind: RecordedKind::Snapshot { image: "X".into() },
                    format: Some("qcow2".into()),
                    bytes: None,
                },
            )
            .unwrap();
        let spec = domain_spec(
            &v,
            Placement {
                vm_dir: Path::new("/srv/node/vms"),
                record_dir: &front,
                domain_type: "qemu",
                console_log: None,
                default_nic_model: Some("virtio"),
                rng: true,
            },
        );
        // Paths on the node, format from the front-end's record.
        assert_eq!(
            spec.disks[0].source,
            Path::new("/srv/node/vms/42/images/disk.0")
        );
        assert_eq!(spec.disks[0].driver.as_deref(), Some("qcow2"));
        assert_eq!(spec.nics[0].model.as_deref(), Some("virtio"));
        assert_eq!(spec.nics[1].model.as_deref(), Some("e1000"));
        let xml = crate::driver::libvirt::domain_xml(&spec);
        assert!(
            xml.contains("<backend model='random'>/dev/urandom</backend>"),
            "{xml}"
        );
        let _ = std::fs::remove_dir_all(&front);
    }
}
