//! The libvirt domain description of a VM, laid out as OpenNebula 3.2's KVM driver wrote it
//! (`stratuslab-hooks.md` §10): the same elements in the same order, tabs and single quotes, so
//! that a deployment file stratusd keeps reads like the one 3.2 kept.
//!
//! [`DomainSpec`] is plain data, already resolved by the caller: template values with the
//! `vmm_exec_kvm.conf` defaults applied (`arch = x86_64`, `boot = hd`, `driver = raw`,
//! `cache = default`, `ACPI = yes`), disk paths made absolute (`<rdir>/disk.<i>`), the context disk
//! appended as one more [`DiskSpec`], and only the `RAW` vectors whose TYPE is `kvm` kept.
//! Every value is escaped; only [`DomainSpec::raw`] reaches the document unescaped, because
//! pasting it verbatim is what `RAW` is for.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::xml::{escape_attr, escape_text};

/// Namespace 3.2 declared on every domain so that `RAW` data may use `<qemu:commandline>`.
const QEMU_NAMESPACE: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

/// Everything needed to write one domain description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainSpec {
    /// Domain name: `one-<vid>` (the pdisk hot-plug scripts address the domain by it).
    pub name: String,
    /// The template's `UUID` attribute when present; libvirt generates one otherwise.
    pub uuid: Option<String>,
    /// `kvm` in production, `qemu` (TCG) for real guests in tests, `test` for libvirt's test
    /// driver.
    pub domain_type: String,
    /// `TEMPLATE/VCPU`; no `<vcpu>` element when absent (libvirt then gives one vCPU).
    pub vcpu: Option<u32>,
    /// `TEMPLATE/MEMORY` in MiB; written in KiB.
    pub memory_mib: u64,
    pub os: OsSpec,
    /// In template order, the context disk last.
    pub disks: Vec<DiskSpec>,
    pub nics: Vec<NicSpec>,
    /// VNC console; 3.2 wrote nothing for other GRAPHICS types.
    pub graphics: Option<GraphicsSpec>,
    pub features: FeaturesSpec,
    /// `DATA` of each `RAW` vector with `TYPE=kvm`, pasted verbatim before `</domain>`.
    pub raw: Vec<String>,
    /// A `<serial type='file'>` console written to this file (tests read a guest's console here).
    pub serial_file: Option<PathBuf>,
    /// `<emulator>` path (3.2: `/usr/bin/qemu-kvm`); absent lets libvirt pick its default.
    pub emulator: Option<String>,
    /// A virtio RNG fed from the host's `/dev/urandom` (the site's `guest_rng`): guests start
    /// their SSH servers without waiting minutes for entropy.
    pub rng: bool,
}

/// The template's `OS` vector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsSpec {
    /// `<type arch=…>` (3.2 refused a VM without one; the caller applies the default).
    pub arch: String,
    /// Direct kernel boot; `initrd`, `root` and `cmdline` are only written along with it.
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    /// `KERNEL_CMD`: appended after `root=/dev/<root>`.
    pub cmdline: Option<String>,
    /// `ROOT` device name without `/dev/`, e.g. `vda`.
    pub root: Option<String>,
    /// `<boot dev=…>`, e.g. `hd`, `cdrom`, `network`.
    pub boot: Option<String>,
}

/// How the disk's source is reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DiskKind {
    /// `<disk type='file'>` with `<source file=…>` (also a symlink to a block device, as the
    /// Marketplace root disk is).
    #[default]
    File,
    /// `<disk type='block'>` with `<source dev=…>` (`TYPE=block`).
    Block,
}

/// What the guest sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DiskDevice {
    #[default]
    Disk,
    Cdrom,
}

/// One `DISK` (or the context disk).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskSpec {
    pub source: PathBuf,
    pub kind: DiskKind,
    pub device: DiskDevice,
    /// `<target dev=…>`, e.g. `vda`, `hdd`.
    pub target: String,
    /// `<target bus=…>`, e.g. `virtio`, `ide`.
    pub bus: Option<String>,
    /// Image format for `<driver name='qemu' type=…>`, e.g. `raw`, `qcow2`.
    pub driver: Option<String>,
    /// `<driver cache=…>`, e.g. `default`, `none`, `writethrough`.
    pub cache: Option<String>,
    pub readonly: bool,
    /// The file's backing chain is one the transfer manager made (a snapshot overlay of a
    /// cached image whose own header was checked): libvirt reads it from the file. Otherwise
    /// the disk is declared without a backing file (`<backingStore/>`), so that a backing file
    /// named in a header the guest's owner wrote is never opened.
    pub own_backing_chain: bool,
    /// `<serial>`: what the guest reads as the disk's serial number (a volume's UUID).
    pub serial: Option<String>,
}

/// One `NIC`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NicSpec {
    /// `<interface type='bridge'>` with this bridge; `type='ethernet'` without one.
    pub bridge: Option<String>,
    pub mac: Option<String>,
    /// `<model type=…>`, e.g. `virtio`, `e1000`.
    pub model: Option<String>,
    /// Host-side device name `<target dev=…>`.
    pub target: Option<String>,
    /// `<script path=…>` run to set the interface up.
    pub script: Option<String>,
}

/// A VNC console (`GRAPHICS` with `TYPE=vnc`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GraphicsSpec {
    /// TCP port; `-1` asks libvirt to pick a free one.
    pub port: Option<i32>,
    pub listen: Option<String>,
    pub passwd: Option<String>,
    pub keymap: Option<String>,
}

/// The template's `FEATURES` vector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeaturesSpec {
    /// Required by QEMU 10 with libvirt 9.0, which no longer passes `-no-acpi`.
    pub acpi: bool,
    pub pae: bool,
}

/// Writes `spec` as a libvirt domain description.
pub fn domain_xml(spec: &DomainSpec) -> String {
    let mut xml = String::with_capacity(2048);
    push_line(
        &mut xml,
        0,
        &format!(
            "<domain type='{}' xmlns:qemu='{QEMU_NAMESPACE}'>",
            escape_attr(&spec.domain_type)
        ),
    );
    push_line(
        &mut xml,
        1,
        &format!("<name>{}</name>", escape_text(&spec.name)),
    );
    if let Some(uuid) = &spec.uuid {
        push_line(&mut xml, 1, &format!("<uuid>{}</uuid>", escape_text(uuid)));
    }
    if let Some(vcpu) = spec.vcpu {
        push_line(&mut xml, 1, &format!("<vcpu>{vcpu}</vcpu>"));
    }
    push_line(
        &mut xml,
        1,
        &format!("<memory>{}</memory>", spec.memory_mib.saturating_mul(1024)),
    );
    push_os(&mut xml, &spec.os);

    push_line(&mut xml, 1, "<devices>");
    if let Some(emulator) = &spec.emulator {
        push_line(
            &mut xml,
            2,
            &format!("<emulator>{}</emulator>", escape_text(emulator)),
        );
    }
    for disk in &spec.disks {
        push_disk(&mut xml, disk);
    }
    for nic in &spec.nics {
        push_nic(&mut xml, nic);
    }
    if let Some(graphics) = &spec.graphics {
        push_graphics(&mut xml, graphics);
    }
    if spec.rng {
        push_line(&mut xml, 2, "<rng model='virtio'>");
        push_line(
            &mut xml,
            3,
            "<backend model='random'>/dev/urandom</backend>",
        );
        push_line(&mut xml, 2, "</rng>");
    }
    if let Some(serial_file) = &spec.serial_file {
        push_line(&mut xml, 2, "<serial type='file'>");
        push_line(
            &mut xml,
            3,
            &format!("<source path='{}'/>", path_attr(serial_file)),
        );
        push_line(&mut xml, 3, "<target port='0'/>");
        push_line(&mut xml, 2, "</serial>");
    }
    push_line(&mut xml, 1, "</devices>");

    if spec.features.acpi || spec.features.pae {
        push_line(&mut xml, 1, "<features>");
        if spec.features.pae {
            push_line(&mut xml, 2, "<pae/>");
        }
        if spec.features.acpi {
            push_line(&mut xml, 2, "<acpi/>");
        }
        push_line(&mut xml, 1, "</features>");
    }
    for raw in &spec.raw {
        push_line(&mut xml, 1, raw);
    }
    push_line(&mut xml, 0, "</domain>");
    xml
}

fn push_line(xml: &mut String, depth: usize, line: &str) {
    for _ in 0..depth {
        xml.push('\t');
    }
    xml.push_str(line);
    xml.push('\n');
}

/// Paths come from UTF-8 templates and configuration; a non-UTF-8 byte could not have been
/// written in either, so the lossy form only matters for paths that never occur.
fn path_attr(path: &Path) -> String {
    escape_attr(&path.to_string_lossy())
}

fn path_text(path: &Path) -> String {
    escape_text(&path.to_string_lossy())
}

fn push_os(xml: &mut String, os: &OsSpec) {
    push_line(xml, 1, "<os>");
    push_line(
        xml,
        2,
        &format!("<type arch='{}'>hvm</type>", escape_attr(&os.arch)),
    );
    if let Some(kernel) = &os.kernel {
        push_line(xml, 2, &format!("<kernel>{}</kernel>", path_text(kernel)));
        if let Some(initrd) = &os.initrd {
            push_line(xml, 2, &format!("<initrd>{}</initrd>", path_text(initrd)));
        }
        let cmdline = match (&os.root, &os.cmdline) {
            (Some(root), Some(extra)) => Some(format!("root=/dev/{root} {extra}")),
            (Some(root), None) => Some(format!("root=/dev/{root}")),
            (None, Some(extra)) => Some(extra.clone()),
            (None, None) => None,
        };
        if let Some(cmdline) = cmdline {
            push_line(
                xml,
                2,
                &format!("<cmdline>{}</cmdline>", escape_text(&cmdline)),
            );
        }
    }
    if let Some(boot) = &os.boot {
        push_line(xml, 2, &format!("<boot dev='{}'/>", escape_attr(boot)));
    }
    push_line(xml, 1, "</os>");
}

/// One disk as a device description of its own (`virsh attach-device`).
pub fn disk_xml(disk: &DiskSpec) -> String {
    let mut xml = String::new();
    push_disk(&mut xml, disk);
    // The device at the top level, not indented as inside <devices>.
    xml.lines()
        .map(|l| l.strip_prefix("\t\t").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

fn push_disk(xml: &mut String, disk: &DiskSpec) {
    let (disk_type, source_attribute) = match disk.kind {
        DiskKind::File => ("file", "file"),
        DiskKind::Block => ("block", "dev"),
    };
    let device = match disk.device {
        DiskDevice::Disk => "disk",
        DiskDevice::Cdrom => "cdrom",
    };
    push_line(
        xml,
        2,
        &format!("<disk type='{disk_type}' device='{device}'>"),
    );
    push_line(
        xml,
        3,
        &format!("<source {source_attribute}='{}'/>", path_attr(&disk.source)),
    );
    let mut target = format!("<target dev='{}'", escape_attr(&disk.target));
    if let Some(bus) = &disk.bus {
        let _ = write!(target, " bus='{}'", escape_attr(bus));
    }
    target.push_str("/>");
    push_line(xml, 3, &target);
    if !disk.own_backing_chain {
        push_line(xml, 3, "<backingStore/>");
    }
    if disk.readonly {
        push_line(xml, 3, "<readonly/>");
    }
    if let Some(serial) = &disk.serial {
        push_line(xml, 3, &format!("<serial>{}</serial>", escape_text(serial)));
    }
    if disk.driver.is_some() || disk.cache.is_some() {
        let mut driver = String::from("<driver name='qemu'");
        if let Some(format) = &disk.driver {
            let _ = write!(driver, " type='{}'", escape_attr(format));
        }
        if let Some(cache) = &disk.cache {
            let _ = write!(driver, " cache='{}'", escape_attr(cache));
        }
        driver.push_str("/>");
        push_line(xml, 3, &driver);
    }
    push_line(xml, 2, "</disk>");
}

fn push_nic(xml: &mut String, nic: &NicSpec) {
    match &nic.bridge {
        Some(bridge) => {
            push_line(xml, 2, "<interface type='bridge'>");
            push_line(
                xml,
                3,
                &format!("<source bridge='{}'/>", escape_attr(bridge)),
            );
        }
        None => push_line(xml, 2, "<interface type='ethernet'>"),
    }
    if let Some(mac) = &nic.mac {
        push_line(xml, 3, &format!("<mac address='{}'/>", escape_attr(mac)));
    }
    if let Some(target) = &nic.target {
        push_line(xml, 3, &format!("<target dev='{}'/>", escape_attr(target)));
    }
    if let Some(script) = &nic.script {
        push_line(xml, 3, &format!("<script path='{}'/>", escape_attr(script)));
    }
    if let Some(model) = &nic.model {
        push_line(xml, 3, &format!("<model type='{}'/>", escape_attr(model)));
    }
    push_line(xml, 2, "</interface>");
}

fn push_graphics(xml: &mut String, graphics: &GraphicsSpec) {
    let mut element = String::from("<graphics type='vnc'");
    if let Some(listen) = &graphics.listen {
        let _ = write!(element, " listen='{}'", escape_attr(listen));
    }
    if let Some(port) = graphics.port {
        let _ = write!(element, " port='{port}'");
        // libvirt still reads port -1 as "pick one"; saying it outright costs nothing.
        if port == -1 {
            element.push_str(" autoport='yes'");
        }
    }
    if let Some(passwd) = &graphics.passwd {
        let _ = write!(element, " passwd='{}'", escape_attr(passwd));
    }
    if let Some(keymap) = &graphics.keymap {
        let _ = write!(element, " keymap='{}'", escape_attr(keymap));
    }
    element.push_str("/>");
    push_line(xml, 2, &element);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base_spec() -> DomainSpec {
        DomainSpec {
            name: "one-42".into(),
            domain_type: "kvm".into(),
            vcpu: Some(1),
            memory_mib: 1536,
            os: OsSpec {
                arch: "x86_64".into(),
                boot: Some("hd".into()),
                ..OsSpec::default()
            },
            features: FeaturesSpec {
                acpi: true,
                pae: false,
            },
            ..DomainSpec::default()
        }
    }

    fn raw_disk(index: usize, target: &str) -> DiskSpec {
        DiskSpec {
            source: PathBuf::from(format!("/var/lib/one/42/images/disk.{index}")),
            target: target.into(),
            driver: Some("raw".into()),
            cache: Some("default".into()),
            ..DiskSpec::default()
        }
    }

    /// The VM of `xmlrpc-api.md` §6.5 gives, line for line, the document of
    /// `stratuslab-hooks.md` §10 (plus the explicit `autoport`, and `<backingStore/>` on disks
    /// whose backing chain the transfer manager did not make: docs/security.md).
    #[test]
    fn reference_vm_matches_the_3_2_document() {
        let spec = DomainSpec {
            disks: vec![
                raw_disk(0, "vda"),
                raw_disk(1, "vdb"),
                DiskSpec {
                    source: PathBuf::from("/var/lib/one/42/images/disk.2"),
                    device: DiskDevice::Cdrom,
                    target: "hdd".into(),
                    readonly: true,
                    driver: Some("raw".into()),
                    ..DiskSpec::default()
                },
            ],
            nics: vec![NicSpec {
                bridge: Some("br0".into()),
                mac: Some("02:00:86:9e:4b:2a".into()),
                ..NicSpec::default()
            }],
            graphics: Some(GraphicsSpec {
                port: Some(-1),
                ..GraphicsSpec::default()
            }),
            emulator: Some("/usr/bin/qemu-kvm".into()),
            ..base_spec()
        };
        let expected = "\
<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
\t<name>one-42</name>
\t<vcpu>1</vcpu>
\t<memory>1572864</memory>
\t<os>
\t\t<type arch='x86_64'>hvm</type>
\t\t<boot dev='hd'/>
\t</os>
\t<devices>
\t\t<emulator>/usr/bin/qemu-kvm</emulator>
\t\t<disk type='file' device='disk'>
\t\t\t<source file='/var/lib/one/42/images/disk.0'/>
\t\t\t<target dev='vda'/>
\t\t\t<backingStore/>
\t\t\t<driver name='qemu' type='raw' cache='default'/>
\t\t</disk>
\t\t<disk type='file' device='disk'>
\t\t\t<source file='/var/lib/one/42/images/disk.1'/>
\t\t\t<target dev='vdb'/>
\t\t\t<backingStore/>
\t\t\t<driver name='qemu' type='raw' cache='default'/>
\t\t</disk>
\t\t<disk type='file' device='cdrom'>
\t\t\t<source file='/var/lib/one/42/images/disk.2'/>
\t\t\t<target dev='hdd'/>
\t\t\t<backingStore/>
\t\t\t<readonly/>
\t\t\t<driver name='qemu' type='raw'/>
\t\t</disk>
\t\t<interface type='bridge'>
\t\t\t<source bridge='br0'/>
\t\t\t<mac address='02:00:86:9e:4b:2a'/>
\t\t</interface>
\t\t<graphics type='vnc' port='-1' autoport='yes'/>
\t</devices>
\t<features>
\t\t<acpi/>
\t</features>
</domain>
";
        assert_eq!(domain_xml(&spec), expected);
    }

    #[test]
    fn uuid_is_passed_through_and_vcpu_omitted_when_absent() {
        let spec = DomainSpec {
            uuid: Some("6a3c7b1e-0d5f-4f5e-9c4d-2b8e1f0a9c7d".into()),
            vcpu: None,
            ..base_spec()
        };
        let xml = domain_xml(&spec);
        assert!(xml.contains("\t<uuid>6a3c7b1e-0d5f-4f5e-9c4d-2b8e1f0a9c7d</uuid>\n"));
        assert!(!xml.contains("<vcpu>"));
        let without_uuid = domain_xml(&base_spec());
        assert!(!without_uuid.contains("<uuid>"));
    }

    #[test]
    fn domain_type_is_a_field() {
        let spec = DomainSpec {
            domain_type: "qemu".into(),
            ..base_spec()
        };
        assert!(domain_xml(&spec).starts_with("<domain type='qemu' "));
    }

    #[test]
    fn kernel_boot_writes_initrd_and_root_before_the_kernel_command() {
        let spec = DomainSpec {
            os: OsSpec {
                arch: "i686".into(),
                kernel: Some("/boot/vmlinuz".into()),
                initrd: Some("/boot/initrd.img".into()),
                root: Some("vda1".into()),
                cmdline: Some("console=ttyS0 ro".into()),
                boot: Some("hd".into()),
            },
            ..base_spec()
        };
        let xml = domain_xml(&spec);
        assert!(xml.contains(
            "\t<os>\n\t\t<type arch='i686'>hvm</type>\n\t\t<kernel>/boot/vmlinuz</kernel>\n\
             \t\t<initrd>/boot/initrd.img</initrd>\n\
             \t\t<cmdline>root=/dev/vda1 console=ttyS0 ro</cmdline>\n\t\t<boot dev='hd'/>\n\t</os>\n"
        ));
    }

    #[test]
    fn cmdline_forms_without_root_or_without_command() {
        let only_root = OsSpec {
            arch: "x86_64".into(),
            kernel: Some("/k".into()),
            root: Some("sda".into()),
            ..OsSpec::default()
        };
        let xml = domain_xml(&DomainSpec {
            os: only_root,
            ..base_spec()
        });
        assert!(xml.contains("<cmdline>root=/dev/sda</cmdline>"));
        assert!(!xml.contains("<boot"));

        let only_command = OsSpec {
            arch: "x86_64".into(),
            kernel: Some("/k".into()),
            cmdline: Some("console=ttyS0".into()),
            ..OsSpec::default()
        };
        let xml = domain_xml(&DomainSpec {
            os: only_command,
            ..base_spec()
        });
        assert!(xml.contains("<cmdline>console=ttyS0</cmdline>"));
    }

    #[test]
    fn initrd_and_cmdline_need_a_kernel() {
        let spec = DomainSpec {
            os: OsSpec {
                arch: "x86_64".into(),
                initrd: Some("/boot/initrd.img".into()),
                root: Some("vda".into()),
                cmdline: Some("quiet".into()),
                boot: Some("cdrom".into()),
                ..OsSpec::default()
            },
            ..base_spec()
        };
        let xml = domain_xml(&spec);
        assert!(!xml.contains("<initrd>"));
        assert!(!xml.contains("<cmdline>"));
        assert!(xml.contains("<boot dev='cdrom'/>"));
    }

    #[test]
    fn block_disk_uses_source_dev_and_bus() {
        let spec = DomainSpec {
            disks: vec![DiskSpec {
                source: "/var/lib/one/42/images/disk.3".into(),
                kind: DiskKind::Block,
                target: "vdc".into(),
                bus: Some("virtio".into()),
                driver: Some("raw".into()),
                cache: Some("none".into()),
                ..DiskSpec::default()
            }],
            ..base_spec()
        };
        let xml = domain_xml(&spec);
        assert!(xml.contains(
            "\t\t<disk type='block' device='disk'>\n\
             \t\t\t<source dev='/var/lib/one/42/images/disk.3'/>\n\
             \t\t\t<target dev='vdc' bus='virtio'/>\n\
             \t\t\t<backingStore/>\n\
             \t\t\t<driver name='qemu' type='raw' cache='none'/>\n\t\t</disk>\n"
        ));
    }

    #[test]
    fn readonly_disk_and_cloud_init_context_disk() {
        let spec = DomainSpec {
            disks: vec![
                DiskSpec {
                    readonly: true,
                    ..raw_disk(0, "hda")
                },
                DiskSpec {
                    source: "/var/lib/one/42/images/disk.1".into(),
                    target: "hdd".into(),
                    driver: Some("raw".into()),
                    ..DiskSpec::default()
                },
            ],
            ..base_spec()
        };
        let xml = domain_xml(&spec);
        assert!(xml.contains(
            "\t\t\t<target dev='hda'/>\n\t\t\t<backingStore/>\n\t\t\t<readonly/>\n\
             \t\t\t<driver name='qemu' type='raw' cache='default'/>\n"
        ));
        assert!(xml.contains(
            "\t\t<disk type='file' device='disk'>\n\
             \t\t\t<source file='/var/lib/one/42/images/disk.1'/>\n\
             \t\t\t<target dev='hdd'/>\n\t\t\t<backingStore/>\n\t\t\t<driver name='qemu' type='raw'/>\n\t\t</disk>\n"
        ));
        assert_eq!(xml.matches("<readonly/>").count(), 1);
    }

    #[test]
    fn disk_without_driver_or_cache_has_no_driver_element() {
        let spec = DomainSpec {
            disks: vec![DiskSpec {
                source: "/images/a.qcow2".into(),
                target: "vda".into(),
                ..DiskSpec::default()
            }],
            ..base_spec()
        };
        assert!(!domain_xml(&spec).contains("<driver"));
        let only_cache = DomainSpec {
            disks: vec![DiskSpec {
                source: "/images/a.qcow2".into(),
                target: "vda".into(),
                cache: Some("writeback".into()),
                ..DiskSpec::default()
            }],
            ..base_spec()
        };
        assert!(domain_xml(&only_cache).contains("<driver name='qemu' cache='writeback'/>"));
    }

    #[test]
    fn block_cdrom_combines_kind_and_device() {
        let spec = DomainSpec {
            disks: vec![DiskSpec {
                source: "/dev/sr0".into(),
                kind: DiskKind::Block,
                device: DiskDevice::Cdrom,
                target: "hdc".into(),
                bus: Some("ide".into()),
                readonly: true,
                ..DiskSpec::default()
            }],
            ..base_spec()
        };
        let xml = domain_xml(&spec);
        assert!(xml.contains("<disk type='block' device='cdrom'>"));
        assert!(xml.contains("<source dev='/dev/sr0'/>"));
    }

    #[test]
    fn nic_with_every_option_in_3_2_order() {
        let spec = DomainSpec {
            nics: vec![NicSpec {
                bridge: Some("br0".into()),
                mac: Some("02:00:0a:00:00:05".into()),
                model: Some("virtio".into()),
                target: Some("one-42-0".into()),
                script: Some("/etc/qemu-ifup".into()),
            }],
            ..base_spec()
        };
        assert!(domain_xml(&spec).contains(
            "\t\t<interface type='bridge'>\n\t\t\t<source bridge='br0'/>\n\
             \t\t\t<mac address='02:00:0a:00:00:05'/>\n\t\t\t<target dev='one-42-0'/>\n\
             \t\t\t<script path='/etc/qemu-ifup'/>\n\t\t\t<model type='virtio'/>\n\
             \t\t</interface>\n"
        ));
    }

    #[test]
    fn nic_without_bridge_is_ethernet() {
        let spec = DomainSpec {
            nics: vec![NicSpec {
                mac: Some("02:00:0a:00:00:06".into()),
                ..NicSpec::default()
            }],
            ..base_spec()
        };
        assert!(domain_xml(&spec).contains(
            "\t\t<interface type='ethernet'>\n\t\t\t<mac address='02:00:0a:00:00:06'/>\n\
             \t\t</interface>\n"
        ));
    }

    #[test]
    fn vnc_with_fixed_port_listen_password_and_keymap() {
        let spec = DomainSpec {
            graphics: Some(GraphicsSpec {
                port: Some(5942),
                listen: Some("0.0.0.0".into()),
                passwd: Some("s3cret".into()),
                keymap: Some("fr".into()),
            }),
            ..base_spec()
        };
        assert!(domain_xml(&spec).contains(
            "\t\t<graphics type='vnc' listen='0.0.0.0' port='5942' passwd='s3cret' keymap='fr'/>\n"
        ));
        let bare = DomainSpec {
            graphics: Some(GraphicsSpec::default()),
            ..base_spec()
        };
        assert!(domain_xml(&bare).contains("\t\t<graphics type='vnc'/>\n"));
    }

    #[test]
    fn features_pae_and_acpi_or_none() {
        let both = DomainSpec {
            features: FeaturesSpec {
                acpi: true,
                pae: true,
            },
            ..base_spec()
        };
        assert!(
            domain_xml(&both).contains("\t<features>\n\t\t<pae/>\n\t\t<acpi/>\n\t</features>\n")
        );
        let neither = DomainSpec {
            features: FeaturesSpec::default(),
            ..base_spec()
        };
        assert!(!domain_xml(&neither).contains("<features>"));
    }

    #[test]
    fn raw_data_is_pasted_verbatim_before_the_end() {
        let raw = "<qemu:commandline><qemu:arg value='-no-hpet'/></qemu:commandline>";
        let spec = DomainSpec {
            raw: vec![raw.into(), "<on_crash>preserve</on_crash>".into()],
            ..base_spec()
        };
        let xml = domain_xml(&spec);
        assert!(xml.ends_with(&format!(
            "\t</features>\n\t{raw}\n\t<on_crash>preserve</on_crash>\n</domain>\n"
        )));
    }

    #[test]
    fn serial_file_console_and_emulator() {
        let spec = DomainSpec {
            serial_file: Some("/tmp/vm 1/console.log".into()),
            emulator: Some("/usr/bin/qemu-system-x86_64".into()),
            ..base_spec()
        };
        let xml = domain_xml(&spec);
        assert!(xml.contains("\t<devices>\n\t\t<emulator>/usr/bin/qemu-system-x86_64</emulator>\n"));
        assert!(xml.contains(
            "\t\t<serial type='file'>\n\t\t\t<source path='/tmp/vm 1/console.log'/>\n\
             \t\t\t<target port='0'/>\n\t\t</serial>\n"
        ));
    }

    /// Every template-supplied value lands escaped: the only `<evil` in the document would be
    /// one that was parsed as an element, and there is none.
    #[test]
    fn hostile_values_are_escaped_everywhere() {
        let hostile = "'/><evil/>\"&";
        let spec = DomainSpec {
            name: hostile.into(),
            uuid: Some(hostile.into()),
            domain_type: hostile.into(),
            os: OsSpec {
                arch: hostile.into(),
                kernel: Some(hostile.into()),
                initrd: Some(hostile.into()),
                cmdline: Some(hostile.into()),
                root: Some(hostile.into()),
                boot: Some(hostile.into()),
            },
            disks: vec![DiskSpec {
                source: hostile.into(),
                kind: DiskKind::Block,
                target: hostile.into(),
                bus: Some(hostile.into()),
                driver: Some(hostile.into()),
                cache: Some(hostile.into()),
                ..DiskSpec::default()
            }],
            nics: vec![NicSpec {
                bridge: Some(hostile.into()),
                mac: Some(hostile.into()),
                model: Some(hostile.into()),
                target: Some(hostile.into()),
                script: Some(hostile.into()),
            }],
            graphics: Some(GraphicsSpec {
                port: Some(1),
                listen: Some(hostile.into()),
                passwd: Some(hostile.into()),
                keymap: Some(hostile.into()),
            }),
            serial_file: Some(hostile.into()),
            emulator: Some(hostile.into()),
            ..base_spec()
        };
        let xml = domain_xml(&spec);
        assert!(!xml.contains("<evil"), "{xml}");
        assert!(!xml.contains("'/>\""), "{xml}");
        assert!(xml.contains("&apos;/&gt;&lt;evil/&gt;&quot;&amp;"));
        // Text content escapes markup; quotes are harmless there.
        assert!(xml.contains("<name>'/&gt;&lt;evil/&gt;\"&amp;</name>"));
    }
}
