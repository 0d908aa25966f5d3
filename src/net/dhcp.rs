//! The DHCP host file: every lease that a VM holds, as static host entries for the site's
//! DHCP server, so that a VM booting with its NIC's MAC gets the IP that stratusd gave it.
//!
//! StratusLab VMs take their address by DHCP from the front-end (`stratuslab-client.md` §10);
//! oned left the DHCP server's configuration to the site. stratusd writes it itself, in one of
//! two formats:
//!
//! * `dnsmasq`: `dhcp-hostsfile` lines `<mac>,<ip>,<hostname>` (dnsmasq re-reads the file on
//!   SIGHUP);
//! * `isc`: ISC dhcpd `host <hostname> { hardware ethernet ..; fixed-address ..; }` blocks,
//!   for an `include` in dhcpd.conf.
//!
//! Only leases held by a VM are written (USED=1, VID >= 0). Leases put on hold with
//! `one.vn.hold` are left out: a held address is one the administrator keeps away from VMs,
//! and no machine of ours has its MAC, so handing it out by DHCP would be wrong.
//!
//! Host names are `one-<vid>` (oned's default VM name, always a valid DNS label, unlike the
//! user-chosen NAME); a VM with several leases gets `one-<vid>` on its first one (lowest
//! network id, then lowest IP) and `one-<vid>-<k>` on its k-th further one, as both servers
//! want distinct names.

use crate::model::vnet::{ip_to_string, HeldLease};
use crate::model::Oid;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Which DHCP server reads the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DhcpFormat {
    /// dnsmasq `dhcp-hostsfile`: one `<mac>,<ip>,<hostname>` per line.
    #[default]
    Dnsmasq,
    /// ISC dhcpd `host` declarations.
    Isc,
}

/// One lease held by a VM, as the DHCP server needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub network: Oid,
    pub vid: Oid,
    pub ip: u32,
    pub mac: String,
    pub hostname: String,
}

/// The file's entries for the leases held by VMs, given in file order (by network id, then
/// IP: `core::vnets::held_leases`), each with its host name.
pub fn host_entries(leases: &[HeldLease]) -> Vec<HostEntry> {
    let mut leases_seen: HashMap<Oid, usize> = HashMap::new();
    leases
        .iter()
        .map(|lease| {
            let seen = leases_seen.entry(lease.vid).or_insert(0);
            let hostname = match *seen {
                0 => format!("one-{}", lease.vid),
                k => format!("one-{}-{k}", lease.vid),
            };
            *seen += 1;
            HostEntry {
                network: lease.network,
                vid: lease.vid,
                ip: lease.ip,
                mac: lease.mac.clone(),
                hostname,
            }
        })
        .collect()
}

const HEADER: &str = "# Written by stratusd on every lease change; do not edit.\n";

/// The file's text. Both formats take `#` comments.
pub fn render(entries: &[HostEntry], format: DhcpFormat) -> String {
    let mut out = String::with_capacity(64 + entries.len() * 48);
    out.push_str(HEADER);
    for e in entries {
        let ip = ip_to_string(e.ip);
        // Writing to a String cannot fail.
        let _ = match format {
            DhcpFormat::Dnsmasq => writeln!(out, "{},{ip},{}", e.mac, e.hostname),
            DhcpFormat::Isc => writeln!(
                out,
                "host {name} {{\n  hardware ethernet {mac};\n  fixed-address {ip};\n  option host-name \"{name}\";\n}}",
                name = e.hostname,
                mac = e.mac
            ),
        };
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum DhcpFileError {
    #[error("the DHCP host file path {0} names no file")]
    NoFileName(PathBuf),
    #[error("cannot write the DHCP host file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Replaces `path` with `contents` so that a reader sees the old file or the new one, never a
/// part: a temporary file in the same directory (a rename is atomic only within one file
/// system), flushed to disk, then renamed over the target, then the directory flushed so that
/// the rename itself survives a crash.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), DhcpFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .ok_or_else(|| DhcpFileError::NoFileName(path.to_path_buf()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let err = |source| DhcpFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let written = (|| {
        // 0644: the DHCP server usually runs as another user and only needs to read it.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err)
}

/// The configured host file. It is written from the committed leases by the DHCP worker
/// (`workers::dhcp`), which carries out the core's `Dhcp` outbox intents; this module only
/// renders and writes, it never reads the core.
#[derive(Debug)]
pub struct DhcpHostsFile {
    path: PathBuf,
    format: DhcpFormat,
}

impl DhcpHostsFile {
    pub fn new(path: PathBuf, format: DhcpFormat) -> DhcpHostsFile {
        DhcpHostsFile { path, format }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with these leases (in file order), atomically: writing it again
    /// from the same leases gives the same file, so a replayed write is harmless.
    pub fn write(&self, leases: &[HeldLease]) -> Result<(), DhcpFileError> {
        let text = render(&host_entries(leases), self.format);
        write_atomically(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(network: Oid, vid: Oid, ip: u32, mac: &str) -> HeldLease {
        HeldLease {
            network,
            vid,
            ip,
            mac: mac.into(),
        }
    }

    /// As the core lists them: VM 3 and VM 7 on network 0, VM 3 again on network 2.
    fn leases() -> Vec<HeldLease> {
        vec![
            held(0, 3, 0xc0a80101, "00:16:3e:d9:78:b1"),
            held(0, 7, 0xc0a80102, "00:16:3e:d9:78:b2"),
            held(2, 3, 0xac100001, "02:00:ac:10:00:01"),
        ]
    }

    #[test]
    fn a_vm_with_several_leases_gets_distinct_host_names() {
        let text = render(&host_entries(&leases()), DhcpFormat::Dnsmasq);
        assert_eq!(
            text,
            format!(
                "{HEADER}00:16:3e:d9:78:b1,192.168.1.1,one-3\n\
                 00:16:3e:d9:78:b2,192.168.1.2,one-7\n\
                 02:00:ac:10:00:01,172.16.0.1,one-3-1\n"
            )
        );
    }

    #[test]
    fn isc_host_blocks() {
        let text = render(&host_entries(&leases()), DhcpFormat::Isc);
        assert!(text.starts_with(HEADER));
        assert!(text.contains(
            "host one-3 {\n  hardware ethernet 00:16:3e:d9:78:b1;\n  fixed-address 192.168.1.1;\n  option host-name \"one-3\";\n}\n"
        ));
        assert_eq!(text.matches("host one-").count(), 3);
    }

    #[test]
    fn empty_pool_is_only_the_header() {
        assert_eq!(render(&[], DhcpFormat::Dnsmasq), HEADER);
    }

    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "stratusd-dhcp-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = scratch_dir("atomic");
        let path = dir.join("hosts");
        write_atomically(&path, b"one\n").unwrap();
        write_atomically(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("hosts")]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_file_is_the_leases_and_a_failed_write_leaves_no_temporary() {
        let dir = scratch_dir("file");
        let file = DhcpHostsFile::new(dir.join("missing-dir").join("hosts"), DhcpFormat::Dnsmasq);
        assert!(file.write(&leases()).is_err());
        std::fs::create_dir_all(dir.join("missing-dir")).unwrap();
        file.write(&leases()).unwrap();
        let first = std::fs::read_to_string(file.path()).unwrap();
        assert!(first.contains("one-7"));
        // Written again from the same leases (a replayed intent): the same file.
        file.write(&leases()).unwrap();
        assert_eq!(std::fs::read_to_string(file.path()).unwrap(), first);
        file.write(&[]).unwrap();
        assert_eq!(std::fs::read_to_string(file.path()).unwrap(), HEADER);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
