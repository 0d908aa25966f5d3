//! VNET objects (virtual networks) and their leases.

use super::xml::{elem, elem_num, elem_or_empty};
use super::{Oid, Permissions};
use crate::template::Template;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetKind {
    Ranged = 0,
    Fixed = 1,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub mac: String,
    pub used: bool,
    /// The VM holding the lease; -1 when free or held by the administrator.
    pub vid: Oid,
}

/// A lease held by a VM, as the site's network services are told about it (the DHCP host
/// file): plain data built by the core from the committed networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLease {
    pub network: Oid,
    pub vid: Oid,
    pub ip: u32,
    pub mac: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VNet {
    pub id: Oid,
    pub uid: Oid,
    pub gid: Oid,
    pub uname: String,
    pub gname: String,
    pub name: String,
    pub perms: Permissions,
    pub kind: NetKind,
    pub bridge: String,
    pub vlan: bool,
    pub phydev: String,
    pub vlan_id: String,
    /// RANGED networks only: first and last usable address.
    pub ip_start: u32,
    pub ip_end: u32,
    /// MAC prefix (the two leading octets) used to derive MACs of this network.
    pub mac_prefix: u16,
    pub template: Template,
    /// FIXED: every defined lease; RANGED: only leases in use. Keyed by IP, ascending as 3.2
    /// lists them.
    pub leases: BTreeMap<u32, Lease>,
    /// Where the next automatic lease search starts (see [`LeaseCursor`]).
    #[serde(skip)]
    pub cursor: LeaseCursor,
}

/// 3.2's lease cursor (catalogue §14.1). FIXED: the IP of the lease entry the cursor is on
/// (0: before the lowest); automatic allocation takes the first free entry from there,
/// wrapping round, and leaves the cursor on the entry after it, so leases are handed out round
/// robin in IP order and a freed one is not reused until the cursor comes round. RANGED: an
/// offset from IP_START that stays on the address just handed out.
///
/// Like oned's, it lives only in memory: it starts over when the network is loaded (a daemon
/// restart) or created. Clones of the network share it, so a VM allocation that takes a lease
/// and then fails leaves it advanced, as it did in 3.2; only writers, under the store lock,
/// move it.
#[derive(Debug, Clone, Default)]
pub struct LeaseCursor(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl LeaseCursor {
    pub fn get(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set(&self, value: u32) {
        self.0.store(value, std::sync::atomic::Ordering::Relaxed);
    }
}

/// MAC derived from an IP the way 3.2 does: the 2-octet prefix then the 4 IP octets.
pub fn mac_for_ip(prefix: u16, ip: u32) -> String {
    let p = prefix.to_be_bytes();
    let o = ip.to_be_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        p[0], p[1], o[0], o[1], o[2], o[3]
    )
}

/// Parses a `02:00` style MAC prefix.
pub fn parse_mac_prefix(text: &str) -> Option<u16> {
    let mut parts = text.trim().split(':');
    let a = u8::from_str_radix(parts.next()?, 16).ok()?;
    let b = u8::from_str_radix(parts.next()?, 16).ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(u16::from_be_bytes([a, b]))
}

/// Normalises a MAC written by a user (`02:00:AC:10:00:03`) to 3.2's lower-case form.
pub fn parse_mac(text: &str) -> Option<String> {
    let octets: Vec<u8> = text
        .trim()
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    if octets.len() != 6 {
        return None;
    }
    Some(
        octets
            .iter()
            .map(|o| format!("{o:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// An address as 3.2's lease code reads one: four dot-separated decimal numbers up to 255
/// (leading zeros allowed).
pub fn parse_lease_ip(text: &str) -> Option<u32> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in octets.iter_mut() {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse::<u8>().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(u32::from_be_bytes(octets))
}

pub fn ip_to_string(ip: u32) -> String {
    Ipv4Addr::from(ip).to_string()
}

pub fn parse_ip(text: &str) -> Option<u32> {
    text.trim().parse::<Ipv4Addr>().ok().map(u32::from)
}

impl VNet {
    pub fn total_leases(&self) -> usize {
        self.leases.values().filter(|l| l.used).count()
    }

    /// How many addresses the network can hand out: its range (RANGED) or its defined
    /// leases (FIXED).
    pub fn capacity(&self) -> u64 {
        match self.kind {
            NetKind::Ranged if self.ip_end >= self.ip_start => {
                u64::from(self.ip_end - self.ip_start) + 1
            }
            NetKind::Ranged => 0,
            NetKind::Fixed => self.leases.len() as u64,
        }
    }

    /// How many of those are free now (neither used by a VM nor held).
    pub fn free_leases(&self) -> u64 {
        let used = match self.kind {
            NetKind::Ranged => self
                .leases
                .range(self.ip_start..=self.ip_end.max(self.ip_start))
                .filter(|(_, l)| l.used)
                .count(),
            NetKind::Fixed => self.total_leases(),
        } as u64;
        self.capacity().saturating_sub(used)
    }

    /// `with_leases` for one.vn.info; pool listings omit LEASES.
    pub fn write_xml(&self, out: &mut String, with_leases: bool) {
        out.push_str("<VNET>");
        elem_num(out, "ID", self.id);
        elem_num(out, "UID", self.uid);
        elem_num(out, "GID", self.gid);
        elem(out, "UNAME", &self.uname);
        elem(out, "GNAME", &self.gname);
        elem(out, "NAME", &self.name);
        self.perms.write_xml(out);
        elem_num(out, "TYPE", self.kind as i32);
        elem(out, "BRIDGE", &self.bridge);
        elem_num(out, "VLAN", u8::from(self.vlan));
        elem_or_empty(out, "PHYDEV", &self.phydev);
        elem_or_empty(out, "VLAN_ID", &self.vlan_id);
        if self.kind == NetKind::Ranged {
            out.push_str("<RANGE>");
            elem(out, "IP_START", &ip_to_string(self.ip_start));
            elem(out, "IP_END", &ip_to_string(self.ip_end));
            out.push_str("</RANGE>");
        }
        elem_num(out, "TOTAL_LEASES", self.total_leases());
        self.template.write_xml(out);
        if with_leases {
            out.push_str("<LEASES>");
            for (ip, lease) in &self.leases {
                out.push_str("<LEASE>");
                elem(out, "IP", &ip_to_string(*ip));
                elem(out, "MAC", &lease.mac);
                elem_num(out, "USED", u8::from(lease.used));
                elem_num(out, "VID", lease.vid);
                out.push_str("</LEASE>");
            }
            out.push_str("</LEASES>");
        }
        out.push_str("</VNET>");
    }

    /// Is `ip` an address this network can hand out?
    pub fn contains(&self, ip: u32) -> bool {
        match self.kind {
            NetKind::Ranged => ip >= self.ip_start && ip <= self.ip_end,
            NetKind::Fixed => self.leases.contains_key(&ip),
        }
    }

    pub fn is_free(&self, ip: u32) -> bool {
        self.contains(ip) && self.leases.get(&ip).is_none_or(|l| !l.used)
    }

    /// The address automatic allocation would hand out next (see [`LeaseCursor`]).
    pub fn next_free(&self) -> Option<u32> {
        let cursor = self.cursor.get();
        match self.kind {
            NetKind::Fixed => {
                let free = |(ip, l): (&u32, &Lease)| (!l.used).then_some(*ip);
                self.leases
                    .range(cursor..)
                    .find_map(free)
                    .or_else(|| self.leases.range(..cursor).find_map(free))
            }
            NetKind::Ranged => {
                let size = u64::from(self.ip_end).checked_sub(u64::from(self.ip_start))? + 1;
                let at = u64::from(self.ip_start) + u64::from(cursor) % size;
                let at = u32::try_from(at).ok()?;
                self.free_in(at, self.ip_end).or_else(|| {
                    at.checked_sub(1)
                        .and_then(|before| self.free_in(self.ip_start, before))
                })
            }
        }
    }

    /// Automatic allocation for VM `vid`: the next free address from the cursor, taken, and
    /// the cursor moved as 3.2 moves it. Returns the IP and its MAC.
    pub fn take_next(&mut self, vid: Oid) -> Option<(u32, String)> {
        let ip = self.next_free()?;
        let mac = self.take(ip, vid);
        match self.kind {
            NetKind::Fixed => {
                let after = ip
                    .checked_add(1)
                    .and_then(|n| self.leases.range(n..).next().map(|(k, _)| *k));
                self.cursor.set(after.unwrap_or(0));
            }
            NetKind::Ranged => self.cursor.set(ip - self.ip_start),
        }
        Some((ip, mac))
    }

    /// First address of `[from, to]` not in use; leases in use are sparse in the map, so walk
    /// them instead of the range.
    fn free_in(&self, from: u32, to: u32) -> Option<u32> {
        if from > to {
            return None;
        }
        let mut candidate = from;
        for ip in self
            .leases
            .range(from..=to)
            .filter(|(_, l)| l.used)
            .map(|(ip, _)| *ip)
        {
            if ip > candidate {
                break;
            }
            candidate = ip.checked_add(1)?;
        }
        (candidate <= to).then_some(candidate)
    }

    /// Marks `ip` used by `vid` (-1 = held). Returns the MAC. The caller checked it is free.
    /// An address asked for explicitly does not move the cursor.
    pub fn take(&mut self, ip: u32, vid: Oid) -> String {
        let mac = self
            .leases
            .get(&ip)
            .map(|l| l.mac.clone())
            .unwrap_or_else(|| mac_for_ip(self.mac_prefix, ip));
        self.leases.insert(
            ip,
            Lease {
                mac: mac.clone(),
                used: true,
                vid,
            },
        );
        mac
    }

    /// Frees `ip`: FIXED networks keep the lease definition, RANGED ones forget it.
    pub fn release(&mut self, ip: u32) {
        match self.kind {
            NetKind::Fixed => {
                if let Some(l) = self.leases.get_mut(&ip) {
                    l.used = false;
                    l.vid = -1;
                }
            }
            NetKind::Ranged => {
                self.leases.remove(&ip);
            }
        }
    }
}
