//! one.vn.* operations: RANGED and FIXED networks and their leases (3.2 semantics).

use super::auth::Caller;
use super::authz::AuthItem;
use super::owned::{self, get_authorized};
use super::{Change, Core, Error, Result};
use crate::model::acl::Op;
use crate::model::vnet::{
    ip_to_string, mac_for_ip, parse_ip, parse_mac, parse_mac_prefix, Lease, NetKind,
};
use crate::model::{Kind, Oid, Permissions, VNet};
use crate::template::{self, Template};
use std::collections::BTreeMap;

fn alloc_err(detail: impl Into<String>) -> Error {
    Error::alloc(Kind::Net, detail)
}

fn lease_err(detail: &str) -> Error {
    Error::request(format!("Error modifying network leases. {detail}"))
}

/// Host bits needed for `size` addresses plus network and broadcast (3.2 rounds up).
fn mask_for_size(size: u64) -> u32 {
    let mut bits = 0u32;
    while bits < 31 && (1u64 << bits) < size + 2 {
        bits += 1;
    }
    if bits >= 32 {
        0
    } else {
        u32::MAX << bits
    }
}

fn parse_size(text: &str) -> Option<u64> {
    match text.trim().to_ascii_uppercase().as_str() {
        "C" => Some(254),
        "B" => Some(65534),
        "A" => Some(16_777_214),
        n => n.parse::<u64>().ok().filter(|n| *n > 0),
    }
}

/// Leases named by a `LEASES = [ IP = ..., MAC = ... ]` template.
fn lease_requests(tmpl: &Template) -> Vec<(Option<u32>, Option<String>)> {
    tmpl.vectors("LEASES")
        .map(|pairs| {
            let get = |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.as_str())
            };
            (
                get("IP").and_then(parse_ip),
                get("MAC").map(|m| m.to_string()),
            )
        })
        .collect()
}

impl Core {
    pub fn vn_allocate(&self, caller: &Caller, text: &str) -> Result<Oid> {
        let mut tmpl = template::parse(text).map_err(|e| Error::AllocateParse {
            kind: Kind::Net,
            message: e.message,
        })?;
        let prefix = parse_mac_prefix(&self.settings.mac_prefix).unwrap_or(0x0200);
        self.write(|state, tx| {
            state.authorize(caller, &[AuthItem::create(Kind::Net)])?;
            let name = tmpl.get("NAME").unwrap_or("").to_string();
            if name.is_empty() {
                return Err(alloc_err("NAME cannot be empty."));
            }
            if name.chars().count() > 128 {
                return Err(alloc_err("NAME is too long; max length is 128 chars."));
            }
            if let Some(n) = state
                .vnets
                .values()
                .find(|n| n.uid == caller.uid && n.name == name)
            {
                return Err(alloc_err(format!("NAME is already taken by NET {}.", n.id)));
            }
            let kind = match tmpl.get("TYPE").map(|t| t.trim().to_ascii_uppercase()) {
                None => return Err(alloc_err("No TYPE in template for Virtual Network.")),
                Some(t) if t == "RANGED" => NetKind::Ranged,
                Some(t) if t == "FIXED" => NetKind::Fixed,
                Some(_) => {
                    let raw = tmpl.get("TYPE").unwrap_or("");
                    return Err(alloc_err(format!(
                        "Wrong type \"{raw}\" in template for Virtual Network."
                    )));
                }
            };
            let id = state.next_id(Kind::Net);
            let phydev = tmpl.get("PHYDEV").unwrap_or("").to_string();
            let bridge = match tmpl.get("BRIDGE") {
                Some(b) if !b.is_empty() => b.to_string(),
                _ if !phydev.is_empty() => format!("onebr{id}"),
                _ => return Err(alloc_err("No BRIDGE in template for Virtual Network.")),
            };
            let vlan = match tmpl.get("VLAN") {
                Some(v) => v.eq_ignore_ascii_case("YES"),
                None => !phydev.is_empty(),
            };
            let vlan_id = tmpl.get("VLAN_ID").unwrap_or("").to_string();
            let mut net = VNet {
                id,
                uid: caller.uid,
                gid: caller.gid,
                uname: caller.name.clone(),
                gname: state.group_name(caller.gid),
                name,
                perms: Permissions::default(),
                kind,
                bridge,
                vlan,
                phydev,
                vlan_id,
                ip_start: 0,
                ip_end: 0,
                mac_prefix: prefix,
                template: Template::new(),
                leases: BTreeMap::new(),
                cursor: 0,
            };
            match kind {
                NetKind::Ranged => {
                    let addr_text = tmpl.get("NETWORK_ADDRESS").unwrap_or("").to_string();
                    if addr_text.is_empty() {
                        return Err(alloc_err(
                            "No NETWORK_ADDRESS in template for Virtual Network.",
                        ));
                    }
                    let (addr_part, cidr) = match addr_text.split_once('/') {
                        Some((a, c)) => (a, c.trim().parse::<u32>().ok().filter(|c| *c <= 32)),
                        None => (addr_text.as_str(), None),
                    };
                    let addr = parse_ip(addr_part).ok_or_else(|| {
                        alloc_err("Wrong NETWORK_ADDRESS in template for Virtual Network.")
                    })?;
                    let mask = if let Some(m) = tmpl.get("NETWORK_MASK").and_then(parse_ip) {
                        m
                    } else if let Some(c) = cidr {
                        if c == 0 {
                            0
                        } else {
                            u32::MAX << (32 - c)
                        }
                    } else {
                        let size = match tmpl.get("NETWORK_SIZE") {
                            Some(t) => parse_size(t).ok_or_else(|| {
                                alloc_err("Wrong NETWORK_SIZE in template for Virtual Network.")
                            })?,
                            None => self.settings.network_size as u64,
                        };
                        mask_for_size(size)
                    };
                    let network = addr & mask;
                    let broadcast = network | !mask;
                    net.ip_start = tmpl
                        .get("IP_START")
                        .and_then(parse_ip)
                        .unwrap_or(network.saturating_add(1));
                    net.ip_end = tmpl
                        .get("IP_END")
                        .and_then(parse_ip)
                        .unwrap_or(broadcast.saturating_sub(1));
                    if net.ip_end < net.ip_start {
                        return Err(alloc_err(
                            "Wrong IP_START or IP_END in template for Virtual Network.",
                        ));
                    }
                    tmpl.set_single("NETWORK_MASK", ip_to_string(mask));
                    for key in ["NETWORK_ADDRESS", "NETWORK_SIZE", "IP_START", "IP_END"] {
                        tmpl.remove(key);
                    }
                }
                NetKind::Fixed => {
                    for (ip, mac) in lease_requests(&tmpl) {
                        let ip =
                            ip.ok_or_else(|| alloc_err("Wrong IP in LEASES for Virtual Network."))?;
                        let mac = match mac {
                            Some(m) => parse_mac(&m).ok_or_else(|| {
                                alloc_err("Wrong MAC in LEASES for Virtual Network.")
                            })?,
                            None => mac_for_ip(prefix, ip),
                        };
                        net.leases.insert(
                            ip,
                            Lease {
                                mac,
                                used: false,
                                vid: -1,
                            },
                        );
                    }
                    tmpl.remove("LEASES");
                }
            }
            for key in ["NAME", "TYPE", "BRIDGE", "PHYDEV", "VLAN", "VLAN_ID"] {
                tmpl.remove(key);
            }
            net.template = tmpl.clone();
            let id = tx.alloc_id(state, Kind::Net);
            net.id = id;
            tx.put(Change::VNet(net));
            Ok(id)
        })
    }

    pub fn vn_delete(&self, caller: &Caller, id: Oid) -> Result<Oid> {
        self.write(|state, tx| {
            let net = get_authorized::<VNet>(state, caller, id, Op::Manage)?;
            if net.leases.values().any(|l| l.used && l.vid >= 0) {
                return Err(Error::request(
                    "Can not delete virtual network. Virtual network has leases in use",
                ));
            }
            tx.delete(Kind::Net, id);
            Ok(id)
        })
    }

    pub fn vn_info(&self, caller: &Caller, id: Oid) -> Result<String> {
        let state = self.read();
        let net = get_authorized::<VNet>(&state, caller, id, Op::Use)?;
        let mut out = String::with_capacity(2048);
        net.write_xml(&mut out, true);
        Ok(out)
    }

    pub fn vn_update(&self, caller: &Caller, id: Oid, text: &str) -> Result<Oid> {
        self.write(|state, tx| {
            let net = get_authorized::<VNet>(state, caller, id, Op::Manage)?;
            let tmpl = super::users::parse_update(text)?;
            let mut net = net.clone();
            net.template = tmpl;
            tx.put(Change::VNet(net));
            Ok(id)
        })
    }

    pub fn vnpool_info(&self, caller: &Caller, flag: i32, start: i32, end: i32) -> Result<String> {
        let state = self.read();
        owned::pool_document::<VNet>(
            &state,
            caller,
            (flag, start, end),
            "VNET_POOL",
            |net, out| net.write_xml(out, false),
        )
    }

    /// addleases / rmleases / hold / release share their shape: a LEASES template applied to
    /// one network under MANAGE.
    pub fn vn_leases(&self, caller: &Caller, id: Oid, text: &str, op: LeaseOp) -> Result<Oid> {
        let tmpl =
            template::parse(text).map_err(|e| lease_err(&format!("Parse error. {}", e.message)))?;
        let requests = lease_requests(&tmpl);
        self.write(|state, tx| {
            let net = get_authorized::<VNet>(state, caller, id, Op::Manage)?;
            let mut net = net.clone();
            if requests.is_empty() {
                return Err(lease_err("Wrong LEASES template."));
            }
            for (ip, mac) in &requests {
                let ip = ip.ok_or_else(|| lease_err("Wrong IP in lease."))?;
                match op {
                    LeaseOp::Add => {
                        if net.kind != NetKind::Fixed {
                            return Err(lease_err("Leases can only be added to FIXED networks."));
                        }
                        if net.leases.contains_key(&ip) {
                            return Err(lease_err("Lease already exists."));
                        }
                        let mac = match mac {
                            Some(m) => {
                                parse_mac(m).ok_or_else(|| lease_err("Wrong MAC in lease."))?
                            }
                            None => mac_for_ip(net.mac_prefix, ip),
                        };
                        net.leases.insert(
                            ip,
                            Lease {
                                mac,
                                used: false,
                                vid: -1,
                            },
                        );
                    }
                    LeaseOp::Remove => {
                        if net.kind != NetKind::Fixed {
                            return Err(lease_err(
                                "Leases can only be removed from FIXED networks.",
                            ));
                        }
                        match net.leases.get(&ip) {
                            None => return Err(lease_err("Lease is not part of the NET.")),
                            Some(l) if l.used => return Err(lease_err("Lease is in use.")),
                            Some(_) => {
                                net.leases.remove(&ip);
                            }
                        }
                    }
                    LeaseOp::Hold => {
                        if !net.contains(ip) {
                            return Err(lease_err("Lease is not part of the NET."));
                        }
                        if !net.is_free(ip) {
                            return Err(lease_err("Lease is in use."));
                        }
                        net.take(ip, -1);
                    }
                    LeaseOp::Release => match net.leases.get(&ip) {
                        Some(l) if l.used && l.vid == -1 => net.release(ip),
                        Some(l) if l.used => return Err(lease_err("Lease is in use by a VM.")),
                        _ if net.contains(ip) => return Err(lease_err("Lease is not on hold.")),
                        _ => return Err(lease_err("Lease is not part of the NET.")),
                    },
                }
            }
            tx.put(Change::VNet(net));
            Ok(id)
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOp {
    Add,
    Remove,
    Hold,
    Release,
}
