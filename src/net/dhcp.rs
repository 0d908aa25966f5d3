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

use crate::core::State;
use crate::model::vnet::ip_to_string;
use crate::model::{Kind, Oid};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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

/// The leases held by VMs, in file order: by network id, then IP.
pub fn host_entries(state: &State) -> Vec<HostEntry> {
    let mut leases_seen: HashMap<Oid, usize> = HashMap::new();
    let mut out = Vec::new();
    for net in state.vnets.values() {
        for (ip, lease) in &net.leases {
            if !lease.used || lease.vid < 0 {
                continue;
            }
            let seen = leases_seen.entry(lease.vid).or_insert(0);
            let hostname = match *seen {
                0 => format!("one-{}", lease.vid),
                k => format!("one-{}-{k}", lease.vid),
            };
            *seen += 1;
            out.push(HostEntry {
                network: net.id,
                vid: lease.vid,
                ip: *ip,
                mac: lease.mac.clone(),
                hostname,
            });
        }
    }
    out
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

/// The configured host file, kept in step with the leases.
#[derive(Debug)]
pub struct DhcpHostsFile {
    path: PathBuf,
    format: DhcpFormat,
    /// Set while the file on disk is known to lag behind the leases (its last write failed):
    /// then any later commit retries, not only one that changes a network.
    stale: AtomicBool,
}

impl DhcpHostsFile {
    pub fn new(path: PathBuf, format: DhcpFormat) -> DhcpHostsFile {
        DhcpHostsFile {
            path,
            format,
            stale: AtomicBool::new(true),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the file from `state` now.
    pub fn rewrite(&self, state: &State) -> Result<(), DhcpFileError> {
        let text = render(&host_entries(state), self.format);
        let result = write_atomically(&self.path, text.as_bytes());
        self.stale.store(result.is_err(), Ordering::SeqCst);
        result
    }

    /// Rewrites the file, logging a failure, when it may be out of date.
    pub fn refresh(&self, state: &State) {
        if let Err(e) = self.rewrite(state) {
            tracing::error!(error = %e, "DHCP host file not updated; retrying at the next change");
        }
    }

    /// The commit hook: `changed` are the pools the commit wrote.
    pub fn after_commit(&self, state: &State, changed: &[Kind]) {
        if changed.contains(&Kind::Net) || self.stale.load(Ordering::SeqCst) {
            self.refresh(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::vnet::{Lease, NetKind};
    use crate::model::{Permissions, VNet};
    use crate::template::Template;
    use std::collections::BTreeMap;

    fn net(id: Oid, kind: NetKind, leases: &[(u32, &str, bool, Oid)]) -> VNet {
        VNet {
            id,
            uid: 0,
            gid: 0,
            uname: "oneadmin".into(),
            gname: "oneadmin".into(),
            name: format!("n{id}"),
            perms: Permissions::default(),
            kind,
            bridge: "br0".into(),
            vlan: false,
            phydev: String::new(),
            vlan_id: String::new(),
            ip_start: 0,
            ip_end: 0,
            mac_prefix: 0x0200,
            template: Template::new(),
            leases: leases
                .iter()
                .map(|(ip, mac, used, vid)| {
                    (
                        *ip,
                        Lease {
                            mac: mac.to_string(),
                            used: *used,
                            vid: *vid,
                        },
                    )
                })
                .collect::<BTreeMap<_, _>>(),
            cursor: Default::default(),
        }
    }

    fn state() -> State {
        let mut s = State::default();
        // FIXED: one free, one held, two used (VM 3, VM 7).
        s.vnets.insert(
            0,
            net(
                0,
                NetKind::Fixed,
                &[
                    (0xc0a80102, "00:16:3e:d9:78:b2", true, 7),
                    (0xc0a80101, "00:16:3e:d9:78:b1", true, 3),
                    (0xc0a80103, "00:16:3e:d9:78:b3", false, -1),
                    (0xc0a80104, "00:16:3e:d9:78:b4", true, -1),
                ],
            ),
        );
        // RANGED: VM 3 has a second lease here.
        s.vnets.insert(
            2,
            net(
                2,
                NetKind::Ranged,
                &[(0xac100001, "02:00:ac:10:00:01", true, 3)],
            ),
        );
        s
    }

    #[test]
    fn only_leases_held_by_vms_with_distinct_host_names() {
        let text = render(&host_entries(&state()), DhcpFormat::Dnsmasq);
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
        let text = render(&host_entries(&state()), DhcpFormat::Isc);
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
    fn a_failed_write_is_retried_at_the_next_commit_of_any_kind() {
        let dir = scratch_dir("retry");
        let path = dir.join("missing-dir").join("hosts");
        let file = DhcpHostsFile::new(path.clone(), DhcpFormat::Dnsmasq);
        let s = state();
        assert!(file.rewrite(&s).is_err());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A commit that touched no network still retries, since the file is stale.
        file.after_commit(&s, &[Kind::Vm]);
        assert!(std::fs::read_to_string(&path).unwrap().contains("one-7"));
        // Up to date now: a commit without network changes leaves the file alone.
        std::fs::write(&path, "sentinel").unwrap();
        file.after_commit(&s, &[Kind::Vm]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "sentinel");
        file.after_commit(&s, &[Kind::Net]);
        assert!(std::fs::read_to_string(&path).unwrap().contains("one-7"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
