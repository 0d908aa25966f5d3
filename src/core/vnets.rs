//! one.vn.* operations: RANGED and FIXED networks and their leases (3.2 semantics).

use super::auth::Caller;
use super::authz::AuthItem;
use super::command::Answer;
use super::messages::{AllocDetail, Refusal};
use super::owned::{self, get_authorized};
use super::{Change, Command, Core, Error, Result, Shared, State, Tx};
use crate::model::acl::Op;
use crate::model::vnet::{
    ip_to_string, mac_for_ip, parse_lease_ip, parse_mac, parse_mac_prefix, HeldLease, Lease,
    NetKind,
};
use crate::model::{Kind, Oid, Permissions, VNet};
use crate::template::{self, Template};
use std::collections::BTreeMap;

fn alloc_err(detail: AllocDetail) -> Error {
    Error::alloc(Kind::Net, detail)
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

/// The address range of a RANGED network and the mask to record, from its template, with
/// 3.2's checks in 3.2's order (catalogue §6.1): IP_START and IP_END must parse; without
/// NETWORK_ADDRESS both must be given (no network is computed then); the mask comes from
/// `NETWORK_ADDRESS=a.b.c.d/N`, NETWORK_MASK (its trailing zero bits) or NETWORK_SIZE
/// (`C`/`B`/`A` or a number of hosts, default `network_size`); the address must be the
/// network's base; the ends must lie in the network and be in order.
fn ranged_range(tmpl: &Template, network_size: u32) -> Result<(u32, u32, Option<u32>)> {
    let given = |key: &str| tmpl.get(key).unwrap_or("").trim().to_string();
    let (start_text, end_text) = (given("IP_START"), given("IP_END"));
    let parse_end = |key: &'static str, text: &str| -> Result<Option<u32>> {
        if text.is_empty() {
            return Ok(None);
        }
        parse_lease_ip(text).map(Some).ok_or_else(|| {
            alloc_err(AllocDetail::InvalidRangeEnd {
                key,
                value: text.to_string(),
            })
        })
    };
    let start = parse_end("IP_START", &start_text)?.filter(|ip| *ip != 0);
    let end = parse_end("IP_END", &end_text)?.filter(|ip| *ip != 0);
    let addr_text = given("NETWORK_ADDRESS");
    if addr_text.is_empty() {
        return match (start, end) {
            (Some(s), Some(e)) if s <= e => Ok((s, e, None)),
            (Some(s), Some(e)) => Err(alloc_err(AllocDetail::RangeReversed {
                start: ip_to_string(s),
                end: ip_to_string(e),
            })),
            _ => Err(alloc_err(AllocDetail::NoNetworkAddress)),
        };
    }
    let (addr_part, prefix) = match addr_text.split_once('/') {
        Some((a, p)) => (a.trim(), Some(p.trim())),
        None => (addr_text.as_str(), None),
    };
    let host_bits = if let Some(p) = prefix {
        match p.parse::<u32>() {
            Ok(n) if n <= 32 => 32 - n,
            _ => return Err(alloc_err(AllocDetail::InvalidCidrPrefix(p.to_string()))),
        }
    } else if let Some(mask_text) = tmpl.get("NETWORK_MASK") {
        let mask = parse_lease_ip(mask_text.trim())
            .ok_or_else(|| alloc_err(AllocDetail::InvalidNetworkMask(mask_text.to_string())))?;
        mask.trailing_zeros()
    } else {
        let size = match tmpl.get("NETWORK_SIZE") {
            Some(t) => parse_size(t).ok_or_else(|| alloc_err(AllocDetail::WrongNetworkSize))?,
            None => u64::from(network_size),
        };
        (!mask_for_size(size)).count_ones()
    };
    let mask = if host_bits >= 32 {
        0
    } else {
        u32::MAX << host_bits
    };
    let addr = parse_lease_ip(addr_part)
        .ok_or_else(|| alloc_err(AllocDetail::InvalidNetworkAddress(addr_part.to_string())))?;
    if addr & !mask != 0 {
        return Err(alloc_err(AllocDetail::NotBaseAddress {
            address: addr_part.to_string(),
            mask: ip_to_string(mask),
        }));
    }
    let broadcast = addr | !mask;
    let outside = |ip: u32| ip & mask != addr;
    let bits = 32 - host_bits;
    let start = start.unwrap_or(addr.saturating_add(1));
    let end = end.unwrap_or(broadcast.saturating_sub(1));
    let outside_error = |key: &'static str, value: &str| {
        alloc_err(AllocDetail::OutsideNetwork {
            key,
            value: value.to_string(),
            address: addr_part.to_string(),
            bits,
        })
    };
    if outside(start) {
        return Err(outside_error("IP_START", &start_text));
    }
    if outside(end) {
        return Err(outside_error("IP_END", &end_text));
    }
    if start > end {
        return Err(alloc_err(AllocDetail::RangeReversed {
            start: ip_to_string(start),
            end: ip_to_string(end),
        }));
    }
    Ok((start, end, Some(mask)))
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
                get("IP").and_then(|ip| parse_lease_ip(ip.trim())),
                get("MAC").map(|m| m.to_string()),
            )
        })
        .collect()
}

/// The leases held by VMs (USED=1, VID >= 0), by network id then IP: what the DHCP host file
/// lists. Leases on hold (`one.vn.hold`, VID -1) are not a VM's and are left out.
pub fn held_leases(state: &super::State) -> Vec<HeldLease> {
    let mut out = Vec::new();
    for net in state.vnets.values() {
        for (ip, lease) in &net.leases {
            if lease.used && lease.vid >= 0 {
                out.push(HeldLease {
                    network: net.id,
                    vid: lease.vid,
                    ip: *ip,
                    mac: lease.mac.clone(),
                });
            }
        }
    }
    out
}

/// Whether the changes of a write change which leases VMs hold (what the DHCP host file
/// lists): a network written with other VM leases than it had, or deleted with some.
pub(super) fn changes_leases(view: &super::State, changes: &[Change]) -> bool {
    fn held(net: &VNet) -> impl Iterator<Item = (&u32, &Lease)> {
        net.leases.iter().filter(|(_, l)| l.used && l.vid >= 0)
    }
    changes.iter().any(|c| match c {
        Change::VNet(net) => match view.vnets.get(&net.id) {
            Some(old) => !held(old).eq(held(net)),
            None => held(net).next().is_some(),
        },
        Change::Delete(Kind::Net, id) => view
            .vnets
            .get(id)
            .is_some_and(|old| held(old).next().is_some()),
        _ => false,
    })
}

impl Command {
    /// `one.vn.allocate` of a text (a parse error first, as in 3.2).
    pub fn vn_allocate(caller: &Caller, text: &str) -> Result<Command> {
        let tmpl = template::parse(text).map_err(|e| Error::AllocateParse {
            kind: Kind::Net,
            message: e.message,
        })?;
        Ok(Command::VnAllocate {
            caller: caller.clone(),
            template: tmpl,
        })
    }
}

impl Core {
    /// The leases VMs hold now, as [`held_leases`] lists them.
    pub fn held_leases(&self) -> Vec<HeldLease> {
        held_leases(&self.read())
    }

    pub fn vn_allocate(&self, caller: &Caller, text: &str) -> Result<Oid> {
        self.execute(Command::vn_allocate(caller, text)?)
            .and_then(Answer::id)
    }

    pub fn vn_delete(&self, caller: &Caller, id: Oid) -> Result<Oid> {
        self.execute(Command::VnDelete {
            caller: caller.clone(),
            id,
        })
        .and_then(Answer::id)
    }

    pub fn vn_info(&self, caller: &Caller, id: Oid) -> Result<String> {
        let state = self.read();
        let net = get_authorized::<VNet>(&state, caller, id, Op::Use)?;
        let mut out = String::with_capacity(2048);
        net.write_xml(&mut out, true);
        Ok(out)
    }

    pub fn vn_update(&self, caller: &Caller, id: Oid, text: &str) -> Result<Oid> {
        self.execute(Command::VnUpdate {
            caller: caller.clone(),
            id,
            text: text.into(),
        })
        .and_then(Answer::id)
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

    /// addleases / rmleases / hold / release share their shape: the first LEASES vector of a
    /// template applied to one network under MANAGE, with 3.2's texts (catalogue §6.2).
    pub fn vn_leases(&self, caller: &Caller, id: Oid, text: &str, op: LeaseOp) -> Result<Oid> {
        self.execute(Command::VnLeases {
            caller: caller.clone(),
            id,
            text: text.into(),
            op,
        })
        .and_then(Answer::id)
    }
}

/// One lease operation on `net` (the first LEASES attribute only, as 3.2).
fn apply_lease_op(net: &mut VNet, tmpl: &Template, op: LeaseOp) -> Result<()> {
    // RANGED networks refuse additions and removals before looking at the template.
    match (op, net.kind) {
        (LeaseOp::Add, NetKind::Ranged) => return Err(Error::request(Refusal::AddLeasesRanged)),
        (LeaseOp::Remove, NetKind::Ranged) => {
            return Err(Error::request(Refusal::RemoveLeasesRanged))
        }
        _ => {}
    }
    let lease = match tmpl.attributes().iter().find(|a| a.name() == "LEASES") {
        Some(template::Attribute::Vector { pairs, .. }) => pairs,
        _ => return Err(Error::request(Refusal::EmptyLeaseDescription)),
    };
    let ip_text = template::vector_get(lease, "IP").unwrap_or("");
    let ip = parse_lease_ip(ip_text);
    match op {
        LeaseOp::Add => {
            let ip =
                ip.ok_or_else(|| Error::request(Refusal::AddMalformedIp(ip_text.to_string())))?;
            if net.leases.contains_key(&ip) {
                return Err(Error::request(Refusal::AddExistingIp(ip_text.to_string())));
            }
            let mac = match template::vector_get(lease, "MAC") {
                Some(m) => parse_mac(m)
                    .ok_or_else(|| Error::request(Refusal::AddMalformedMac(m.to_string())))?,
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
            let ip =
                ip.ok_or_else(|| Error::request(Refusal::RemoveMalformedIp(ip_text.to_string())))?;
            match net.leases.get(&ip) {
                None => {
                    return Err(Error::request(Refusal::RemoveUnknownIp {
                        ip: ip_text.to_string(),
                        net: net.id,
                    }))
                }
                Some(l) if l.used => {
                    return Err(Error::request(Refusal::RemoveUsedIp(ip_text.to_string())))
                }
                Some(_) => {
                    net.leases.remove(&ip);
                }
            }
        }
        LeaseOp::Hold => {
            let ip = ip
                .filter(|ip| net.contains(*ip))
                .ok_or_else(|| Error::request(Refusal::LeaseNotInNetwork))?;
            if !net.is_free(ip) {
                return Err(Error::request(Refusal::LeaseInUse));
            }
            net.take(ip, -1);
        }
        LeaseOp::Release => {
            let ip = ip.ok_or_else(|| Error::request(Refusal::WrongLeaseFormat))?;
            match net.leases.get(&ip) {
                Some(l) if l.used && l.vid == -1 => net.release(ip),
                _ => return Err(Error::request(Refusal::LeaseNotOnHold)),
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOp {
    Add,
    Remove,
    Hold,
    Release,
}

impl Shared {
    pub(super) fn apply_vn_allocate(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        template: &Template,
    ) -> Result<Oid> {
        let mut tmpl = template.clone();
        let prefix = parse_mac_prefix(&self.settings.mac_prefix).unwrap_or(0x0200);

        state.authorize(caller, &[AuthItem::create(Kind::Net)])?;
        let name = tmpl.get("NAME").unwrap_or("").to_string();
        if name.is_empty() {
            return Err(alloc_err(AllocDetail::NameEmpty));
        }
        let taken = (state.vnets.values()).find(|n| n.uid == caller.uid && n.name == name);
        Error::check_new_name(Kind::Net, "NET", &name, taken.map(|n| n.id))?;
        let kind = match tmpl.get("TYPE").map(|t| t.trim().to_ascii_uppercase()) {
            None => return Err(alloc_err(AllocDetail::NoNetworkType)),
            Some(t) if t.is_empty() => return Err(alloc_err(AllocDetail::NoNetworkType)),
            Some(t) if t == "RANGED" => NetKind::Ranged,
            Some(t) if t == "FIXED" => NetKind::Fixed,
            Some(t) => return Err(alloc_err(AllocDetail::WrongNetworkType(t))),
        };
        let id = state.next_id(Kind::Net);
        let phydev = tmpl.get("PHYDEV").unwrap_or("").to_string();
        let bridge = match tmpl.get("BRIDGE") {
            Some(b) if !b.is_empty() => b.to_string(),
            _ if !phydev.is_empty() => format!("onebr{id}"),
            _ => return Err(alloc_err(AllocDetail::NoBridge)),
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
            cursor: Default::default(),
        };
        match kind {
            NetKind::Ranged => {
                let (start, end, mask) = ranged_range(&tmpl, self.settings.network_size)?;
                net.ip_start = start;
                net.ip_end = end;
                if let Some(mask) = mask {
                    tmpl.set_single("NETWORK_MASK", ip_to_string(mask));
                }
                for key in ["NETWORK_ADDRESS", "NETWORK_SIZE", "IP_START", "IP_END"] {
                    tmpl.remove(key);
                }
            }
            NetKind::Fixed => {
                // 3.2 skips (and only logs) a lease with a bad IP or MAC, or an IP given
                // twice; the network is created with the others.
                for (ip, mac) in lease_requests(&tmpl) {
                    let Some(ip) = ip else { continue };
                    if net.leases.contains_key(&ip) {
                        continue;
                    }
                    let mac = match mac {
                        Some(m) => match parse_mac(&m) {
                            Some(mac) => mac,
                            None => continue,
                        },
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
        Error::check_xml(
            Kind::Net,
            &[
                &net.name,
                &net.uname,
                &net.gname,
                &net.bridge,
                &net.phydev,
                &net.vlan_id,
            ],
            Some(&net.template),
        )?;
        let id = tx.alloc_id(state, Kind::Net);
        net.id = id;
        tx.put(Change::VNet(net));
        Ok(id)
    }

    pub(super) fn apply_vn_delete(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
    ) -> Result<Oid> {
        // As 3.2, leases in use do not stop it: their VMs keep their NICs, and nothing is
        // given back to the deleted network when they end.
        get_authorized::<VNet>(state, caller, id, Op::Manage)?;
        tx.delete(Kind::Net, id);
        Ok(id)
    }

    pub(super) fn apply_vn_update(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        text: &str,
    ) -> Result<Oid> {
        let net = get_authorized::<VNet>(state, caller, id, Op::Manage)?;
        let tmpl = super::users::parse_update(text)?;
        let mut net = net.clone();
        net.template = tmpl;
        tx.put(Change::VNet(net));
        Ok(id)
    }

    pub(super) fn apply_vn_leases(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        text: &str,
        op: LeaseOp,
    ) -> Result<Oid> {
        // Only uid 0 skips the authorization step, which is also where others learn that
        // the network does not exist: for it a parse error comes first.
        if caller.uid != 0 {
            get_authorized::<VNet>(state, caller, id, Op::Manage)?;
        }
        let tmpl = template::parse(text).map_err(|e| {
            Error::request(if e.message.is_empty() {
                Refusal::LeaseParseNoDetail
            } else {
                Refusal::LeaseParse(e.message)
            })
        })?;
        let mut net = owned::get::<VNet>(state, id)?.clone();
        apply_lease_op(&mut net, &tmpl, op)?;
        tx.put(Change::VNet(net));
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::store::Store;

    #[test]
    fn only_leases_held_by_vms_are_listed_by_network_then_ip() {
        let core = Core::open(Store::open_in_memory().unwrap(), Settings::default(), "pw").unwrap();
        let admin = Caller::oneadmin();
        let fixed = "NAME = a\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 192.168.1.1 ]\n\
            LEASES = [ IP = 192.168.1.2 ]\nLEASES = [ IP = 192.168.1.3 ]\n";
        let a = core.vn_allocate(&admin, fixed).unwrap();
        let ranged = "NAME = b\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_SIZE = 16\n\
            NETWORK_ADDRESS = 172.16.0.0\n";
        let b = core.vn_allocate(&admin, ranged).unwrap();
        let vm = |nics: &str| {
            core.vm_allocate(&admin, &format!("MEMORY = 64\nCPU = 0.1\n{nics}"))
                .unwrap()
        };
        let first = vm("NIC = [ NETWORK = b ]\nNIC = [ NETWORK = a, IP = 192.168.1.2 ]");
        let second = vm("NIC = [ NETWORK = a, IP = 192.168.1.1 ]");
        // On hold: the administrator's, not a VM's.
        core.vn_leases(&admin, a, "LEASES = [ IP = 192.168.1.3 ]", LeaseOp::Hold)
            .unwrap();
        let listed: Vec<_> = core
            .held_leases()
            .iter()
            .map(|l| (l.network, l.vid, ip_to_string(l.ip)))
            .collect();
        assert_eq!(
            listed,
            [
                (a, second, "192.168.1.1".to_string()),
                (a, first, "192.168.1.2".to_string()),
                (b, first, "172.16.0.1".to_string()),
            ]
        );
    }
}
