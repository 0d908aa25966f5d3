//! The trust model: which template attributes reach the hypervisor, a driver, a program or a
//! file of the front end or a node, and who may set them (docs/security.md holds the same table,
//! kept equal by a test). The core refuses restricted attributes; the drivers check what they
//! are handed (libvirt URIs, domain types) again before use.

use crate::config::LibvirtUriSettings;

/// Who may set an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setter {
    /// Anybody who may create or manage the object; what it reaches is validated.
    Anyone,
    /// Only oneadmin and the oneadmin group: others are refused when they set it.
    OneadminGroup,
    /// Anybody may write it, but it is only acted on for a VM of the oneadmin group (or for
    /// the values the core wrote itself): checked where it is used.
    OneadminGroupAtUse,
}

/// One row of the trust table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// `VM`, `HOST`, `IMAGE` or `NET`.
    pub object: &'static str,
    /// `NAME` or `VECTOR/KEY`.
    pub attribute: &'static str,
    pub reaches: &'static str,
    pub setter: Setter,
}

const fn row(
    object: &'static str,
    attribute: &'static str,
    reaches: &'static str,
    setter: Setter,
) -> Row {
    Row {
        object,
        attribute,
        reaches,
        setter,
    }
}

use Setter::{Anyone, OneadminGroup, OneadminGroupAtUse};

/// Every template attribute that reaches the hypervisor, a driver, a program or a file. For
/// VMs the restricted rows are checked in this order (3.2's list first: its message names the
/// first one found).
pub const TABLE: &[Row] = &[
    row("VM", "NIC/VLAN_ID", "802.1Q tag of the VM's interface on the node (3.2's restricted list)", OneadminGroup),
    row("VM", "OS/KERNEL", "a file of the node that QEMU reads and boots", OneadminGroup),
    row("VM", "OS/INITRD", "a file of the node that QEMU reads", OneadminGroup),
    row("VM", "OS/BOOTLOADER", "a program the hypervisor runs (Xen's pygrub)", OneadminGroup),
    row("VM", "NIC/SCRIPT", "a program libvirt runs as root on the node to set the interface up", OneadminGroup),
    row("VM", "RAW", "verbatim libvirt domain XML: any device, host path or emulator", OneadminGroup),
    row("VM", "DISK/SOURCE", "a front-end file, a URL the front end fetches, a Marketplace image or a pdisk volume, made the VM's disk", OneadminGroupAtUse),
    row("VM", "CONTEXT/FILES", "front-end files and URLs copied into the context disk", OneadminGroupAtUse),
    row("VM", "DISK/IMAGE", "a registered image (USE permission; its SOURCE replaces the template's)", Anyone),
    row("VM", "DISK/IMAGE_ID", "a registered image (USE permission; its SOURCE replaces the template's)", Anyone),
    row("VM", "DISK/TYPE", "`swap` and `fs` run mkswap/mkfs on the node (a file in the VM directory)", Anyone),
    row("VM", "DISK/SIZE", "size of a volatile disk file (at most 16 TiB)", Anyone),
    row("VM", "DISK/FORMAT", "mkfs file system type, one of ext2, ext3, ext4, xfs, vfat, btrfs", Anyone),
    row("VM", "DISK/DRIVER", "format QEMU reads the disk in: raw or qcow2 (others fail the deploy); a disk never gets a backing file the transfer manager did not make", Anyone),
    row("VM", "DISK/CLONE", "copy or link of a front-end file (set from the image for registered images)", Anyone),
    row("VM", "DISK/SAVE", "disk moved back to the front end at shutdown (set from the image for registered images)", Anyone),
    row("VM", "DISK/TARGET", "guest device name (libvirt checks it)", Anyone),
    row("VM", "DISK/BUS", "guest bus (libvirt checks it)", Anyone),
    row("VM", "DISK/CACHE", "QEMU cache mode (libvirt checks it)", Anyone),
    row("VM", "DISK/READONLY", "read-only disk", Anyone),
    row("VM", "NIC/NETWORK", "a lease of a network the owner may USE", Anyone),
    row("VM", "NIC/NETWORK_ID", "a lease of a network the owner may USE", Anyone),
    row("VM", "NIC/BRIDGE", "the node bridge the interface joins (replaced by the network's for a NIC with a network)", Anyone),
    row("VM", "NIC/MAC", "the interface's MAC (replaced by the lease's for a NIC with a network)", Anyone),
    row("VM", "NIC/TARGET", "name of the tap device on the node (libvirt refuses an existing one)", Anyone),
    row("VM", "NIC/MODEL", "emulated NIC model (libvirt checks it)", Anyone),
    row("VM", "GRAPHICS/LISTEN", "address the VM's VNC server listens on, on the node", Anyone),
    row("VM", "GRAPHICS/PORT", "VNC port on the node (libvirt: 5900 and up, or -1 for VNC_BASE_PORT + id)", Anyone),
    row("VM", "GRAPHICS/PASSWD", "VNC password", Anyone),
    row("VM", "CONTEXT", "every other key: text in context.sh on the VM's own context disk", Anyone),
    row("VM", "CREATE_IMAGE", "manifest fields of a saved image sent to the Marketplace (escaped)", Anyone),
    row("VM", "UUID", "libvirt domain UUID", Anyone),
    row("VM", "MEMORY", "guest memory (quota)", Anyone),
    row("VM", "VCPU", "guest CPUs", Anyone),
    row("HOST", "LIBVIRT_URI", "the libvirt connection the driver opens as root (`ext` transports run a program); also checked against the site's URI allow-list", OneadminGroup),
    row("HOST", "DOMAIN_TYPE", "the hypervisor libvirt starts the VMs with: `kvm` or `qemu`", OneadminGroup),
    row("HOST", "CONSOLE_LOG", "a serial console file `<vm_dir>/<vid>/console.log` written on the node", OneadminGroup),
    row(
        "HOST",
        "VM_DIR",
        "the node directory the daemon writes VM disks into and quarantines or purges over ssh as root (a node without a shared VM directory)",
        OneadminGroup,
    ),
    row(
        "HOST",
        "VM_DIR_SHARED",
        "whether disks are made on the front end or over ssh on the node",
        OneadminGroup,
    ),
    row("HOST", "NAME", "the node libvirt connects to (`qemu+ssh://<name>/system`) and remote hooks ssh to (CREATE HOST: the oneadmin group unless an ACL grants it)", Anyone),
    row("IMAGE", "PATH", "a front-end file copied into the repository: for others than the oneadmin group, only a regular file under an import directory, reached without a symbolic link", Anyone),
    row("IMAGE", "SOURCE", "a front-end file used as the image without a copy (3.2's restricted attribute)", OneadminGroup),
    row("IMAGE", "DRIVER", "copied into DISK/DRIVER of the VMs that use the image", Anyone),
    row("NET", "BRIDGE", "the node bridge of the network's VMs (CREATE NET: 3.2's bootstrap ACL gives it to the users group)", Anyone),
    row("NET", "LEASES", "IP and MAC written to the DHCP server's host file (both parsed; nothing else is written)", Anyone),
];

fn restricted(object: &'static str) -> impl Iterator<Item = &'static str> {
    TABLE
        .iter()
        .filter(move |r| r.object == object && r.setter == OneadminGroup)
        .map(|r| r.attribute)
}

/// The restricted attributes of a VM template, in the order they are checked: `(vector,
/// key)` for `VECTOR/KEY`, `(name, "")` for a whole attribute.
pub fn vm_restricted() -> impl Iterator<Item = (&'static str, &'static str)> {
    restricted("VM").map(|a| a.split_once('/').unwrap_or((a, "")))
}

/// Host template attributes only the oneadmin group may set, change or remove.
pub fn host_restricted() -> impl Iterator<Item = &'static str> {
    restricted("HOST")
}

/// Disk formats QEMU may be told to read (`DISK/DRIVER`, Marketplace images): formats that
/// can name other files (vmdk extents, …) are not among them, and a qcow2 image's backing file
/// is never taken from a header the transfer manager did not write.
pub const DISK_FORMATS: &[&str] = &["raw", "qcow2"];

pub fn disk_format_allowed(format: &str) -> bool {
    DISK_FORMATS.contains(&format)
}

/// Domain types a KVM host may ask for.
pub const DOMAIN_TYPES: &[&str] = &["kvm", "qemu"];

pub fn domain_type_allowed(domain_type: &str) -> bool {
    DOMAIN_TYPES.contains(&domain_type)
}

/// libvirt transports (`qemu+<transport>://`) allowed without site configuration: none of
/// them runs a program of the URI's choosing (`ext` does).
pub const DEFAULT_TRANSPORTS: &[&str] = &["ssh", "libssh", "libssh2", "tls", "tcp", "unix"];
/// URI parameters allowed without site configuration: none names a program, a socket or a
/// file (`command`, `netcat`, `socket`, `root`, `keyfile`, `pkipath`, `known_hosts`, `name`
/// … need `[libvirt_uri] allow_params`).
pub const DEFAULT_PARAMS: &[&str] = &["no_verify", "no_tty", "sshauth", "mode"];
/// The connection paths of libvirt's QEMU driver.
const PATHS: &[&str] = &["/system", "/session", "/embed"];

/// Why a libvirt URI is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriRefusal {
    #[error("it is not a libvirt URI")]
    Malformed,
    #[error("it contains a character libvirt URIs of this site may not have")]
    Character,
    #[error("driver {0} is not QEMU's")]
    Driver(String),
    #[error("transport {0} is not allowed")]
    Transport(String),
    #[error("path {0} is not one of QEMU's (/system, /session, /embed)")]
    Path(String),
    #[error("parameter {0} is not allowed")]
    Param(String),
}

/// Checks the libvirt URI of a KVM host against the defaults and the site's additions.
pub fn check_libvirt_uri(uri: &str, site: &LibvirtUriSettings) -> Result<(), UriRefusal> {
    if uri
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '%' | '#' | '\\'))
    {
        return Err(UriRefusal::Character);
    }
    let (scheme, rest) = uri.split_once("://").ok_or(UriRefusal::Malformed)?;
    let (driver, transport) = match scheme.split_once('+') {
        Some((d, t)) => (d, Some(t)),
        None => (scheme, None),
    };
    if driver != "qemu" {
        return Err(UriRefusal::Driver(driver.to_string()));
    }
    if let Some(t) = transport {
        let allowed =
            DEFAULT_TRANSPORTS.contains(&t) || site.allow_transports.iter().any(|a| a == t);
        if !allowed {
            return Err(UriRefusal::Transport(t.to_string()));
        }
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => return Err(UriRefusal::Malformed),
    };
    let authority_ok = authority
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '@' | '[' | ']'));
    if !authority_ok || authority.starts_with('-') {
        return Err(UriRefusal::Character);
    }
    if !PATHS.contains(&path) {
        return Err(UriRefusal::Path(path.to_string()));
    }
    for param in query
        .unwrap_or("")
        .split(['&', ';'])
        .filter(|p| !p.is_empty())
    {
        let name = param.split_once('=').map_or(param, |(n, _)| n);
        let allowed = DEFAULT_PARAMS.contains(&name) || site.allow_params.iter().any(|a| a == name);
        if !allowed {
            return Err(UriRefusal::Param(name.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(transports: &[&str], params: &[&str]) -> LibvirtUriSettings {
        LibvirtUriSettings {
            allow_transports: transports.iter().map(|s| s.to_string()).collect(),
            allow_params: params.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn ordinary_uris_pass() {
        let none = site(&[], &[]);
        for uri in [
            "qemu:///system",
            "qemu+ssh://node1.example.org/system",
            "qemu+ssh://root@node-2:2222/system?no_verify=1&no_tty=1",
            "qemu+tls://[2001:db8::1]/system",
            "qemu+unix:///system",
            "qemu+tcp://10.0.0.5:16509/system",
        ] {
            assert_eq!(check_libvirt_uri(uri, &none), Ok(()), "{uri}");
        }
    }

    #[test]
    fn programs_sockets_and_files_need_the_site() {
        let none = site(&[], &[]);
        let refused = [
            (
                "qemu+ext:///system?command=/tmp/x",
                UriRefusal::Transport("ext".into()),
            ),
            (
                "qemu+ssh://h/system?command=/tmp/x",
                UriRefusal::Param("command".into()),
            ),
            (
                "qemu+ssh://h/system?netcat=/tmp/nc",
                UriRefusal::Param("netcat".into()),
            ),
            (
                "qemu+unix:///system?socket=/tmp/s",
                UriRefusal::Param("socket".into()),
            ),
            (
                "qemu+ssh://h/system?no_tty=1;keyfile=/etc/shadow",
                UriRefusal::Param("keyfile".into()),
            ),
            (
                "qemu:///embed?root=/tmp/r",
                UriRefusal::Param("root".into()),
            ),
            ("qemu+ssh://h/system?name=qemu%2Bext", UriRefusal::Character),
            ("qemu+ssh://-oProxyCommand=x/system", UriRefusal::Character),
            (
                "qemu+ssh://h/system?no_tty=1 command=x",
                UriRefusal::Character,
            ),
            ("test:///etc/shadow", UriRefusal::Driver("test".into())),
            ("xen:///system", UriRefusal::Driver("xen".into())),
            ("qemu:///etc/shadow", UriRefusal::Path("/etc/shadow".into())),
            ("qemu:system", UriRefusal::Malformed),
            ("qemu://host", UriRefusal::Malformed),
        ];
        for (uri, why) in refused {
            assert_eq!(check_libvirt_uri(uri, &none), Err(why), "{uri}");
        }
        let embed = site(&["ext"], &["root"]);
        assert_eq!(
            check_libvirt_uri("qemu:///embed?root=/tmp/r", &embed),
            Ok(())
        );
        assert_eq!(check_libvirt_uri("qemu+ext:///system", &embed), Ok(()));
    }

    #[test]
    fn the_restricted_lists_come_from_the_table() {
        let vm: Vec<_> = vm_restricted().collect();
        assert_eq!(vm[0], ("NIC", "VLAN_ID"), "3.2's own first");
        assert!(vm.contains(&("NIC", "SCRIPT")));
        assert!(vm.contains(&("RAW", "")));
        let host: Vec<_> = host_restricted().collect();
        assert_eq!(
            host,
            [
                "LIBVIRT_URI",
                "DOMAIN_TYPE",
                "CONSOLE_LOG",
                "VM_DIR",
                "VM_DIR_SHARED"
            ]
        );
    }

    /// docs/security.md shows the same table: one row per entry, same setter.
    #[test]
    fn the_documented_table_is_this_table() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/security.md"))
            .expect("docs/security.md");
        let rows: Vec<Vec<String>> = doc
            .lines()
            .map(|l| {
                l.split('|')
                    .map(|c| c.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|cells| {
                cells.len() == 6 && ["VM", "HOST", "IMAGE", "NET"].contains(&cells[1].as_str())
            })
            .collect();
        for r in TABLE {
            let attribute = format!("`{}`", r.attribute);
            let found = rows.iter().find(|cells| {
                cells.get(1).map(String::as_str) == Some(r.object)
                    && cells.get(2) == Some(&attribute)
            });
            let Some(cells) = found else {
                panic!(
                    "docs/security.md has no row for {} {}",
                    r.object, r.attribute
                );
            };
            let who = match r.setter {
                Anyone => "anyone",
                OneadminGroup => "oneadmin group",
                OneadminGroupAtUse => "oneadmin group, checked at use",
            };
            assert_eq!(
                cells.get(4).map(String::as_str),
                Some(who),
                "{} {}",
                r.object,
                r.attribute
            );
        }
        assert_eq!(
            rows.len(),
            TABLE.len(),
            "docs/security.md has rows the table has not"
        );
    }
}
