//! From oned 3.2's rows to stratusd's model objects: every body parsed, every id and counter
//! kept, and the cross-references checked (a mismatch is a warning: the objects are imported as
//! oned had them, so that every answer reads as it did under oned).

use super::tables::{OnedTables, Value};
use super::xml::{self, Node};
use super::MigrateError;
use crate::model::host::{HostShare, HostState};
use crate::model::image::{ImageState, ImageType};
use crate::model::quota::UserQuota;
use crate::model::vm::{History, LcmState, Reason, VmState};
use crate::model::vnet::{parse_ip, Lease, NetKind};
use crate::model::{AclRule, Group, Host, Image, Kind, Oid, User, VNet, Vm, VmTemplate};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Everything an import brings, as model objects.
#[derive(Debug, Default)]
pub struct Site {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub acls: Vec<AclRule>,
    pub hosts: Vec<Host>,
    pub vnets: Vec<VNet>,
    pub images: Vec<Image>,
    pub templates: Vec<VmTemplate>,
    pub vms: Vec<Vm>,
    /// Last id handed out per pool.
    pub counters: BTreeMap<Kind, Oid>,
    pub quotas: Vec<UserQuota>,
}

impl Site {
    pub fn history_records(&self) -> usize {
        self.vms.iter().map(|v| v.history.len()).sum()
    }

    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::User => self.users.len(),
            Kind::Group => self.groups.len(),
            Kind::Acl => self.acls.len(),
            Kind::Host => self.hosts.len(),
            Kind::Net => self.vnets.len(),
            Kind::Image => self.images.len(),
            Kind::Template => self.templates.len(),
            Kind::Vm => self.vms.len(),
        }
    }
}

fn corrupt(
    table: &str,
    oid: impl std::fmt::Display,
    detail: impl std::fmt::Display,
) -> MigrateError {
    MigrateError::Corrupt(format!("{table} row {oid}: {detail}"))
}

fn int(row: &[Value], i: usize, table: &str) -> Result<i64, MigrateError> {
    row.get(i).and_then(Value::as_i64).ok_or_else(|| {
        MigrateError::Corrupt(format!("{table}: a row has no number in column {}", i + 1))
    })
}

fn text<'a>(row: &'a [Value], i: usize, table: &str, oid: i64) -> Result<&'a str, MigrateError> {
    row.get(i)
        .and_then(Value::as_text)
        .ok_or_else(|| corrupt(table, oid, "no body"))
}

fn oid32(n: i64, table: &str) -> Result<Oid, MigrateError> {
    Oid::try_from(n).map_err(|_| MigrateError::Corrupt(format!("{table}: id {n} out of range")))
}

/// `(oid, parsed body)` of every row of a pool table whose body starts with `root`.
fn bodies(tables: &OnedTables, table: &str, root: &str) -> Result<Vec<(Oid, Node)>, MigrateError> {
    let mut out = Vec::with_capacity(tables.table(table).len());
    for row in tables.table(table) {
        let oid = int(row, 0, table)?;
        let body = text(row, 2, table, oid)?;
        let node = xml::parse(body).map_err(|e| corrupt(table, oid, e))?;
        if node.name != root {
            return Err(corrupt(
                table,
                oid,
                format!("body is <{}>, not <{root}>", node.name),
            ));
        }
        let id: i64 = node.num_of("ID").map_err(|e| corrupt(table, oid, e))?;
        if id != oid {
            return Err(corrupt(table, oid, format!("body has ID {id}")));
        }
        out.push((oid32(oid, table)?, node));
    }
    Ok(out)
}

fn host_state(n: i64) -> Option<HostState> {
    Some(match n {
        0 => HostState::Init,
        1 => HostState::Monitoring,
        2 => HostState::Monitored,
        3 => HostState::Error,
        4 => HostState::Disabled,
        _ => return None,
    })
}

fn vm_state(n: i64) -> Option<VmState> {
    Some(match n {
        0 => VmState::Init,
        1 => VmState::Pending,
        2 => VmState::Hold,
        3 => VmState::Active,
        4 => VmState::Stopped,
        5 => VmState::Suspended,
        6 => VmState::Done,
        7 => VmState::Failed,
        _ => return None,
    })
}

fn lcm_state(n: i64) -> Option<LcmState> {
    use LcmState::*;
    Some(match n {
        0 => LcmInit,
        1 => Prolog,
        2 => Boot,
        3 => Running,
        4 => Migrate,
        5 => SaveStop,
        6 => SaveSuspend,
        7 => SaveMigrate,
        8 => PrologMigrate,
        9 => PrologResume,
        10 => EpilogStop,
        11 => Epilog,
        12 => Shutdown,
        13 => Cancel,
        14 => Failure,
        15 => Cleanup,
        16 => Unknown,
        _ => return None,
    })
}

fn reason(n: i64) -> Option<Reason> {
    Some(match n {
        0 => Reason::None,
        1 => Reason::Error,
        2 => Reason::StopResume,
        3 => Reason::User,
        4 => Reason::Cancel,
        _ => return None,
    })
}

fn image_state(n: i64) -> Option<ImageState> {
    Some(match n {
        0 => ImageState::Init,
        1 => ImageState::Ready,
        2 => ImageState::Used,
        3 => ImageState::Disabled,
        4 => ImageState::Locked,
        5 => ImageState::Error,
        _ => return None,
    })
}

fn image_type(n: i64) -> Option<ImageType> {
    Some(match n {
        0 => ImageType::Os,
        1 => ImageType::Cdrom,
        2 => ImageType::Datablock,
        _ => return None,
    })
}

fn enum_of<T>(node: &Node, tag: &str, f: fn(i64) -> Option<T>) -> Result<T, String> {
    let n: i64 = node.num_of(tag)?;
    f(n).ok_or_else(|| format!("<{tag}> {n} is not a 3.2 value"))
}

fn user(node: &Node) -> Result<User, String> {
    Ok(User {
        id: node.num_of("ID")?,
        gid: node.num_of("GID")?,
        gname: node.text_of("GNAME")?.to_string(),
        name: node.text_of("NAME")?.to_string(),
        password: node.text_of("PASSWORD")?.to_string(),
        auth_driver: node.text_of("AUTH_DRIVER")?.to_string(),
        enabled: node.flag_of("ENABLED")?,
        template: node.template()?,
    })
}

fn host(node: &Node) -> Result<Host, String> {
    let s = node.child("HOST_SHARE").ok_or("no <HOST_SHARE>")?;
    Ok(Host {
        id: node.num_of("ID")?,
        name: node.text_of("NAME")?.to_string(),
        state: enum_of(node, "STATE", host_state)?,
        im_mad: node.text_of("IM_MAD")?.to_string(),
        vm_mad: node.text_of("VM_MAD")?.to_string(),
        vn_mad: node.text_of("VN_MAD")?.to_string(),
        tm_mad: node.text_of("TM_MAD")?.to_string(),
        last_mon_time: node.num_of("LAST_MON_TIME")?,
        share: HostShare {
            disk_usage: s.num_of("DISK_USAGE")?,
            mem_usage: s.num_of("MEM_USAGE")?,
            cpu_usage: s.num_of("CPU_USAGE")?,
            max_disk: s.num_of("MAX_DISK")?,
            max_mem: s.num_of("MAX_MEM")?,
            max_cpu: s.num_of("MAX_CPU")?,
            free_disk: s.num_of("FREE_DISK")?,
            free_mem: s.num_of("FREE_MEM")?,
            free_cpu: s.num_of("FREE_CPU")?,
            used_disk: s.num_of("USED_DISK")?,
            used_mem: s.num_of("USED_MEM")?,
            used_cpu: s.num_of("USED_CPU")?,
            running_vms: s.num_of("RUNNING_VMS")?,
        },
        template: node.template()?,
    })
}

fn image(node: &Node) -> Result<Image, String> {
    Ok(Image {
        id: node.num_of("ID")?,
        uid: node.num_of("UID")?,
        gid: node.num_of("GID")?,
        uname: node.text_of("UNAME")?.to_string(),
        gname: node.text_of("GNAME")?.to_string(),
        name: node.text_of("NAME")?.to_string(),
        perms: node.permissions()?,
        image_type: enum_of(node, "TYPE", image_type)?,
        persistent: node.flag_of("PERSISTENT")?,
        regtime: node.num_of("REGTIME")?,
        source: node.text_of("SOURCE")?.to_string(),
        path: node.text_of("PATH")?.to_string(),
        fstype: node.text_of("FSTYPE")?.to_string(),
        size: node.num_of("SIZE")?,
        state: enum_of(node, "STATE", image_state)?,
        running_vms: node.num_of("RUNNING_VMS")?,
        template: node.template()?,
    })
}

fn vm_template(node: &Node) -> Result<VmTemplate, String> {
    Ok(VmTemplate {
        id: node.num_of("ID")?,
        uid: node.num_of("UID")?,
        gid: node.num_of("GID")?,
        uname: node.text_of("UNAME")?.to_string(),
        gname: node.text_of("GNAME")?.to_string(),
        name: node.text_of("NAME")?.to_string(),
        perms: node.permissions()?,
        regtime: node.num_of("REGTIME")?,
        template: node.template()?,
    })
}

pub(super) fn history(node: &Node) -> Result<History, String> {
    Ok(History {
        seq: node.num_of("SEQ")?,
        hostname: node.text_of("HOSTNAME")?.to_string(),
        vm_dir: node.text_of("VM_DIR")?.to_string(),
        hid: node.num_of("HID")?,
        stime: node.num_of("STIME")?,
        etime: node.num_of("ETIME")?,
        vmm_mad: node.text_of("VMMMAD")?.to_string(),
        vnm_mad: node.text_of("VNMMAD")?.to_string(),
        tm_mad: node.text_of("TMMAD")?.to_string(),
        pstime: node.num_of("PSTIME")?,
        petime: node.num_of("PETIME")?,
        rstime: node.num_of("RSTIME")?,
        retime: node.num_of("RETIME")?,
        estime: node.num_of("ESTIME")?,
        eetime: node.num_of("EETIME")?,
        reason: enum_of(node, "REASON", reason)?,
    })
}

fn vm(node: &Node) -> Result<Vm, String> {
    let history = match node.child("HISTORY_RECORDS") {
        Some(records) => records
            .children_named("HISTORY")
            .map(history)
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    Ok(Vm {
        id: node.num_of("ID")?,
        uid: node.num_of("UID")?,
        gid: node.num_of("GID")?,
        uname: node.text_of("UNAME")?.to_string(),
        gname: node.text_of("GNAME")?.to_string(),
        name: node.text_of("NAME")?.to_string(),
        perms: node.permissions()?,
        last_poll: node.num_of("LAST_POLL")?,
        state: enum_of(node, "STATE", vm_state)?,
        lcm_state: enum_of(node, "LCM_STATE", lcm_state)?,
        stime: node.num_of("STIME")?,
        etime: node.num_of("ETIME")?,
        deploy_id: node.text_of("DEPLOY_ID")?.to_string(),
        memory: node.num_of("MEMORY")?,
        cpu: node.num_of("CPU")?,
        net_tx: node.num_of("NET_TX")?,
        net_rx: node.num_of("NET_RX")?,
        template: node.template()?,
        history,
        reboot_requested: false,
        resubmit_after_cleanup: false,
        boot_restores: false,
        disk_sizes: None,
    })
}

fn vnet(node: &Node, default_mac_prefix: u16) -> Result<VNet, String> {
    let kind = match node.num_of::<i64>("TYPE")? {
        0 => NetKind::Ranged,
        1 => NetKind::Fixed,
        n => return Err(format!("<TYPE> {n} is not a 3.2 network type")),
    };
    let (ip_start, ip_end) = match (kind, node.child("RANGE")) {
        (NetKind::Ranged, Some(r)) => {
            let ip = |tag: &str| -> Result<u32, String> {
                let t = r.text_of(tag)?;
                parse_ip(t).ok_or_else(|| format!("<RANGE>/<{tag}> is not an address: {t:?}"))
            };
            (ip("IP_START")?, ip("IP_END")?)
        }
        (NetKind::Ranged, None) => return Err("RANGED network without <RANGE>".into()),
        (NetKind::Fixed, _) => (0, 0),
    };
    Ok(VNet {
        id: node.num_of("ID")?,
        uid: node.num_of("UID")?,
        gid: node.num_of("GID")?,
        uname: node.text_of("UNAME")?.to_string(),
        gname: node.text_of("GNAME")?.to_string(),
        name: node.text_of("NAME")?.to_string(),
        perms: node.permissions()?,
        kind,
        bridge: node.text_of("BRIDGE")?.to_string(),
        vlan: node.flag_of("VLAN")?,
        phydev: node
            .child("PHYDEV")
            .map(|n| n.text.clone())
            .unwrap_or_default(),
        vlan_id: node
            .child("VLAN_ID")
            .map(|n| n.text.clone())
            .unwrap_or_default(),
        ip_start,
        ip_end,
        mac_prefix: default_mac_prefix,
        template: node.template()?,
        leases: BTreeMap::new(),
        cursor: Default::default(),
    })
}

/// `<LEASE><IP>n</IP><MAC_PREFIX>p</MAC_PREFIX><MAC_SUFFIX>s</MAC_SUFFIX><USED>u</USED><VID>v</VID></LEASE>`
struct LeaseRow {
    ip: u32,
    prefix: u16,
    lease: Lease,
}

fn lease(node: &Node) -> Result<LeaseRow, String> {
    let ip: u32 = node.num_of("IP")?;
    let prefix: u16 = node.num_of("MAC_PREFIX")?;
    let suffix: u32 = node.num_of("MAC_SUFFIX")?;
    let p = prefix.to_be_bytes();
    let s = suffix.to_be_bytes();
    let mac = format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        p[0], p[1], s[0], s[1], s[2], s[3]
    );
    Ok(LeaseRow {
        ip,
        prefix,
        lease: Lease {
            mac,
            used: node.flag_of("USED")?,
            vid: node.num_of("VID")?,
        },
    })
}

/// Reads every pool. `default_mac_prefix` is used for RANGED networks without any lease (3.2
/// took it from oned.conf's MAC_PREFIX, which the database does not record).
pub fn site_from_tables(
    tables: &OnedTables,
    default_mac_prefix: u16,
    warnings: &mut Vec<String>,
) -> Result<Site, MigrateError> {
    let mut site = Site::default();
    for (oid, node) in bodies(tables, "user_pool", "USER")? {
        site.users
            .push(user(&node).map_err(|e| corrupt("user_pool", oid, e))?);
    }
    let mut listed_members: BTreeMap<Oid, BTreeSet<Oid>> = BTreeMap::new();
    for (oid, node) in bodies(tables, "group_pool", "GROUP")? {
        let name = node
            .text_of("NAME")
            .map_err(|e| corrupt("group_pool", oid, e))?
            .to_string();
        let members = match node.child("USERS") {
            Some(users) => users
                .children_named("ID")
                .map(|n| n.text.trim().parse::<Oid>())
                .collect::<Result<BTreeSet<_>, _>>()
                .map_err(|e| corrupt("group_pool", oid, format!("<USERS>: {e}")))?,
            None => BTreeSet::new(),
        };
        listed_members.insert(oid, members);
        site.groups.push(Group { id: oid, name });
    }
    for row in tables.table("acl") {
        let oid = int(row, 0, "acl")?;
        let field = |i: usize| -> Result<u64, MigrateError> {
            let n = int(row, i, "acl")?;
            u64::try_from(n).map_err(|_| corrupt("acl", oid, format!("negative value {n}")))
        };
        site.acls.push(AclRule {
            id: oid32(oid, "acl")?,
            user: field(1)?,
            resource: field(2)?,
            rights: field(3)?,
        });
    }
    for (oid, node) in bodies(tables, "host_pool", "HOST")? {
        site.hosts
            .push(host(&node).map_err(|e| corrupt("host_pool", oid, e))?);
    }
    let mut leases: BTreeMap<Oid, Vec<LeaseRow>> = BTreeMap::new();
    for row in tables.table("leases") {
        let oid = int(row, 0, "leases")?;
        let ip = int(row, 1, "leases")?;
        let body = text(row, 2, "leases", oid)?;
        let node = xml::parse(body).map_err(|e| corrupt("leases", format!("{oid}/{ip}"), e))?;
        let l = lease(&node).map_err(|e| corrupt("leases", format!("{oid}/{ip}"), e))?;
        if i64::from(l.ip) != ip {
            return Err(corrupt(
                "leases",
                format!("{oid}/{ip}"),
                format!("body has IP {}", l.ip),
            ));
        }
        leases.entry(oid32(oid, "leases")?).or_default().push(l);
    }
    for (oid, node) in bodies(tables, "network_pool", "VNET")? {
        let mut net =
            vnet(&node, default_mac_prefix).map_err(|e| corrupt("network_pool", oid, e))?;
        let rows = leases.remove(&oid).unwrap_or_default();
        if let Some(first) = rows.first() {
            net.mac_prefix = first.prefix;
        }
        for l in rows {
            if net.kind == NetKind::Ranged && !l.lease.used {
                // 3.2 deletes a RANGED lease when it is released; a free one means nothing.
                warnings.push(format!(
                    "network {} ({oid}): unused RANGED lease {} dropped",
                    net.name,
                    crate::model::vnet::ip_to_string(l.ip)
                ));
                continue;
            }
            net.leases.insert(l.ip, l.lease);
        }
        if let Ok(total) = node.num_of::<usize>("TOTAL_LEASES") {
            if total != net.total_leases() {
                warnings.push(format!(
                    "network {} ({oid}): TOTAL_LEASES says {total}, the leases table has {} in use; the leases table wins",
                    net.name,
                    net.total_leases()
                ));
            }
        }
        site.vnets.push(net);
    }
    for (oid, _) in leases {
        warnings.push(format!(
            "leases of network {oid}, which does not exist, were dropped"
        ));
    }
    for (oid, node) in bodies(tables, "image_pool", "IMAGE")? {
        site.images
            .push(image(&node).map_err(|e| corrupt("image_pool", oid, e))?);
    }
    for (oid, node) in bodies(tables, "template_pool", "VMTEMPLATE")? {
        site.templates
            .push(vm_template(&node).map_err(|e| corrupt("template_pool", oid, e))?);
    }
    let mut histories: HashMap<Oid, BTreeMap<i32, History>> = HashMap::new();
    for row in tables.table("history") {
        let vid = int(row, 0, "history")?;
        let seq = int(row, 1, "history")?;
        let body = text(row, 2, "history", vid)?;
        let at = format!("{vid}/{seq}");
        let node = xml::parse(body).map_err(|e| corrupt("history", &at, e))?;
        let h = history(&node).map_err(|e| corrupt("history", &at, e))?;
        if i64::from(h.seq) != seq {
            return Err(corrupt("history", &at, format!("body has SEQ {}", h.seq)));
        }
        histories
            .entry(oid32(vid, "history")?)
            .or_default()
            .insert(h.seq, h);
    }
    for (oid, node) in bodies(tables, "vm_pool", "VM")? {
        let mut v = vm(&node).map_err(|e| corrupt("vm_pool", oid, e))?;
        let in_body = v.history.pop();
        match histories.remove(&oid) {
            Some(records) => {
                let records: Vec<History> = records.into_values().collect();
                if records.iter().enumerate().any(|(i, h)| h.seq != i as i32) {
                    warnings.push(format!("VM {oid}: history sequence numbers have gaps"));
                }
                if let (Some(last), Some(body)) = (records.last(), &in_body) {
                    if last.seq != body.seq {
                        warnings.push(format!(
                            "VM {oid}: the VM row shows history record {} but the history table ends at {}; the history table wins",
                            body.seq, last.seq
                        ));
                    }
                }
                v.history = records;
            }
            None => {
                if let Some(h) = in_body {
                    warnings.push(format!(
                        "VM {oid}: history record {} is only in the VM row, not in the history table",
                        h.seq
                    ));
                    v.history.push(h);
                }
            }
        }
        site.vms.push(v);
    }
    let mut orphans: Vec<Oid> = histories.into_keys().collect();
    orphans.sort_unstable();
    for vid in orphans {
        warnings.push(format!(
            "history records of VM {vid}, which does not exist, were dropped"
        ));
    }
    site.counters = counters(tables, &site, warnings)?;
    check_groups(&site, &listed_members, warnings);
    Ok(site)
}

/// Last id per pool: `pool_control`, never below the highest id present (ids are never reused).
fn counters(
    tables: &OnedTables,
    site: &Site,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<Kind, Oid>, MigrateError> {
    let mut recorded: HashMap<String, i64> = HashMap::new();
    for row in tables.table("pool_control") {
        let name = row
            .first()
            .and_then(Value::as_text)
            .ok_or_else(|| MigrateError::Corrupt("pool_control: a row has no table name".into()))?;
        recorded.insert(name.to_string(), int(row, 1, "pool_control")?);
    }
    let max_id = |kind: Kind| -> Option<Oid> {
        match kind {
            Kind::User => site.users.iter().map(|o| o.id).max(),
            Kind::Group => site.groups.iter().map(|o| o.id).max(),
            Kind::Acl => site.acls.iter().map(|o| o.id).max(),
            Kind::Host => site.hosts.iter().map(|o| o.id).max(),
            Kind::Net => site.vnets.iter().map(|o| o.id).max(),
            Kind::Image => site.images.iter().map(|o| o.id).max(),
            Kind::Template => site.templates.iter().map(|o| o.id).max(),
            Kind::Vm => site.vms.iter().map(|o| o.id).max(),
        }
    };
    let mut out = BTreeMap::new();
    for kind in Kind::ALL {
        let present = max_id(kind);
        let last = match recorded.get(kind.table()) {
            Some(&n) => {
                let n = oid32(n, "pool_control")?;
                if let Some(p) = present.filter(|p| *p > n) {
                    warnings.push(format!(
                        "pool_control says the last {} id is {n} but id {p} exists; new ids start after {p}",
                        kind.table()
                    ));
                    p
                } else {
                    n
                }
            }
            None => present.unwrap_or(-1),
        };
        // Group ids below 100 are oned's own.
        let last = if kind == Kind::Group {
            last.max(99)
        } else {
            last
        };
        out.insert(kind, last);
    }
    Ok(out)
}

fn check_groups(site: &Site, listed: &BTreeMap<Oid, BTreeSet<Oid>>, warnings: &mut Vec<String>) {
    let groups: HashMap<Oid, &str> = site
        .groups
        .iter()
        .map(|g| (g.id, g.name.as_str()))
        .collect();
    let users: HashMap<Oid, &str> = site.users.iter().map(|u| (u.id, u.name.as_str())).collect();
    let mut derived: BTreeMap<Oid, BTreeSet<Oid>> = BTreeMap::new();
    for u in &site.users {
        derived.entry(u.gid).or_default().insert(u.id);
        match groups.get(&u.gid) {
            None => warnings.push(format!(
                "user {} ({}) is in group {}, which does not exist",
                u.name, u.id, u.gid
            )),
            Some(name) if *name != u.gname => warnings.push(format!(
                "user {} ({}): GNAME {} but group {} is called {name}",
                u.name, u.id, u.gname, u.gid
            )),
            Some(_) => {}
        }
    }
    for g in &site.groups {
        let have = derived.get(&g.id).cloned().unwrap_or_default();
        let said = listed.get(&g.id).cloned().unwrap_or_default();
        if have != said {
            warnings.push(format!(
                "group {} ({}): its USERS list {:?} differs from its users' GID {:?}; stratusd derives the list from the users",
                g.name, g.id, said, have
            ));
        }
    }
    let owners = site
        .vms
        .iter()
        .map(|o| ("VM", o.id, o.uid, o.gid, &o.uname, &o.gname))
        .chain(
            site.images
                .iter()
                .map(|o| ("image", o.id, o.uid, o.gid, &o.uname, &o.gname)),
        )
        .chain(
            site.vnets
                .iter()
                .map(|o| ("network", o.id, o.uid, o.gid, &o.uname, &o.gname)),
        )
        .chain(
            site.templates
                .iter()
                .map(|o| ("template", o.id, o.uid, o.gid, &o.uname, &o.gname)),
        );
    for (what, id, uid, gid, uname, gname) in owners {
        if users.get(&uid).is_none_or(|n| n != uname) {
            warnings.push(format!(
                "{what} {id}: owner {uid} ({uname}) is not a user of that name"
            ));
        }
        if groups.get(&gid).is_none_or(|n| n != gname) {
            warnings.push(format!(
                "{what} {id}: group {gid} ({gname}) is not a group of that name"
            ));
        }
    }
}

/// `(network id, IP)` of every NIC of a VM that holds its leases.
pub fn vm_leases(vm: &Vm) -> Vec<(Oid, u32)> {
    vm.template
        .vectors("NIC")
        .filter_map(|nic| {
            let get = |k: &str| nic.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            Some((
                get("NETWORK_ID")?.trim().parse().ok()?,
                parse_ip(get("IP")?)?,
            ))
        })
        .collect()
}

/// Does this VM still hold what it was given (leases, images)? 3.2 releases them at DONE only;
/// FAILED VMs keep theirs.
pub fn holds_resources(vm: &Vm) -> bool {
    vm.state != VmState::Done
}

/// Checks that leases, image counters and host shares agree with the VMs, as stratusd's life
/// cycle will assume from now on. Disagreements are reported, never changed.
pub fn check_consistency(site: &Site, warnings: &mut Vec<String>) {
    let vms: HashMap<Oid, &Vm> = site.vms.iter().map(|v| (v.id, v)).collect();
    let mut wanted: BTreeMap<(Oid, u32), Oid> = BTreeMap::new();
    for vm in site.vms.iter().filter(|v| holds_resources(v)) {
        for key in vm_leases(vm) {
            wanted.insert(key, vm.id);
        }
    }
    for net in &site.vnets {
        for (ip, l) in &net.leases {
            if !l.used || l.vid < 0 {
                continue;
            }
            match vms.get(&l.vid) {
                None => warnings.push(format!(
                    "network {} ({}): lease {} is held by VM {}, which does not exist",
                    net.name,
                    net.id,
                    crate::model::vnet::ip_to_string(*ip),
                    l.vid
                )),
                Some(vm) if !holds_resources(vm) => warnings.push(format!(
                    "network {} ({}): lease {} is held by VM {}, which is DONE",
                    net.name,
                    net.id,
                    crate::model::vnet::ip_to_string(*ip),
                    l.vid
                )),
                Some(_) if wanted.get(&(net.id, *ip)) != Some(&l.vid) => warnings.push(format!(
                    "network {} ({}): lease {} is held by VM {}, whose NICs do not name it",
                    net.name,
                    net.id,
                    crate::model::vnet::ip_to_string(*ip),
                    l.vid
                )),
                Some(_) => {}
            }
        }
    }
    let nets: HashMap<Oid, &VNet> = site.vnets.iter().map(|n| (n.id, n)).collect();
    for ((nid, ip), vid) in &wanted {
        let held = nets
            .get(nid)
            .and_then(|n| n.leases.get(ip))
            .is_some_and(|l| l.used && l.vid == *vid);
        if !held {
            warnings.push(format!(
                "VM {vid}: its NIC {} on network {nid} has no lease in that network",
                crate::model::vnet::ip_to_string(*ip)
            ));
        }
    }
    let mut disks: HashMap<Oid, i64> = HashMap::new();
    for vm in site.vms.iter().filter(|v| holds_resources(v)) {
        for disk in vm.template.vectors("DISK") {
            if let Some(iid) = disk
                .iter()
                .find(|(k, _)| k == "IMAGE_ID")
                .and_then(|(_, v)| v.trim().parse::<Oid>().ok())
            {
                *disks.entry(iid).or_default() += 1;
            }
        }
    }
    for img in &site.images {
        let n = disks.get(&img.id).copied().unwrap_or(0);
        if n != img.running_vms {
            warnings.push(format!(
                "image {} ({}): RUNNING_VMS is {} but {n} disks of live VMs use it",
                img.name, img.id, img.running_vms
            ));
        }
    }
    let mut on_host: HashMap<Oid, (i64, i64, i64)> = HashMap::new();
    for vm in site.vms.iter().filter(|v| v.state == VmState::Active) {
        if let Some(h) = vm.last_history() {
            let e = on_host.entry(h.hid).or_default();
            e.0 += 1;
            e.1 += (vm.template_cpu() * 100.0) as i64;
            e.2 += vm.template_memory() * 1024;
        }
    }
    for host in &site.hosts {
        let (n, cpu, mem) = on_host.get(&host.id).copied().unwrap_or_default();
        let s = &host.share;
        if (s.running_vms, s.cpu_usage, s.mem_usage) != (n, cpu, mem) {
            warnings.push(format!(
                "host {} ({}): RUNNING_VMS/CPU_USAGE/MEM_USAGE are {}/{}/{} but its ACTIVE VMs add up to {n}/{cpu}/{mem}",
                host.name, host.id, s.running_vms, s.cpu_usage, s.mem_usage
            ));
        }
    }
    let host_ids: BTreeSet<Oid> = site.hosts.iter().map(|h| h.id).collect();
    for vm in &site.vms {
        if let Some(h) = vm.last_history() {
            if !host_ids.contains(&h.hid) && vm.state == VmState::Active {
                warnings.push(format!(
                    "VM {}: placed on host {} ({}), which does not exist",
                    vm.id, h.hid, h.hostname
                ));
            }
        }
    }
}

/// StratusLab's per-user quota rows (`quotas` table).
pub fn quotas_from_rows(rows: &[Vec<Value>]) -> Result<Vec<UserQuota>, MigrateError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let uid = int(row, 0, "quotas")?;
        let get = |i: usize| row.get(i).cloned().unwrap_or(Value::Null);
        out.push(UserQuota {
            uid: oid32(uid, "quotas")?,
            cpu: get(1).as_f64(),
            memory: get(2).as_i64(),
            num_vms: get(3).as_i64(),
            storage: get(4).as_i64(),
        });
    }
    Ok(out)
}
