//! `stratusd export`: stratusd's pools as oned 3.2's tables. The bodies are the model's 3.2
//! documents (the same ones the API answers with), which is what oned keeps in its rows.

use super::convert::Site;
use super::tables::{OnedTables, Value};
use super::{MigrateError, OnedLocation};
use crate::core::State;
use crate::model::vnet::NetKind;
use crate::model::{Kind, Oid, Permissions};
use crate::store::Store;
use std::path::{Path, PathBuf};

/// What `stratusd export` is asked to do.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub database: PathBuf,
    pub to: OnedLocation,
    pub force: bool,
}

/// The version oned 3.2 (StratusLab's build of the 3.2 branch) checks in `db_versioning`.
pub const ONED_DB_VERSION: &str = "3.2.1";

/// Reads stratusd's store into model objects (as the daemon loads it).
pub fn load_store(database: &Path) -> Result<Site, MigrateError> {
    if !database.is_file() {
        return Err(MigrateError::Usage(format!(
            "{} does not exist: nothing to export",
            database.display()
        )));
    }
    let store = Store::open(database)?;
    let snap = store.load()?;
    let mut state = State::default();
    for (kind, body) in &snap.rows {
        state.load_row(*kind, body).map_err(MigrateError::Corrupt)?;
    }
    let mut site = Site {
        users: state.users.values().cloned().collect(),
        groups: state.groups.values().cloned().collect(),
        acls: state.acls.values().copied().collect(),
        hosts: state.hosts.values().cloned().collect(),
        vnets: state.vnets.values().cloned().collect(),
        images: state.images.values().cloned().collect(),
        templates: state.templates.values().cloned().collect(),
        vms: state.vms.values().cloned().collect(),
        ..Site::default()
    };
    for (kind, last) in snap.counters {
        site.counters.insert(kind, last);
    }
    for body in &snap.user_quotas {
        site.quotas.push(
            serde_json::from_str(body)
                .map_err(|e| MigrateError::Corrupt(format!("user_quota row: {e}")))?,
        );
    }
    Ok(site)
}

fn perm_columns(p: &Permissions) -> [Value; 3] {
    [p.owner_u.into(), p.group_u.into(), p.other_u.into()]
}

/// oned's rows for `site`; `now` stamps the `db_versioning` row.
pub fn tables_from_site(site: &Site, now: i64) -> OnedTables {
    let mut t = OnedTables::default();
    let mut out = String::with_capacity(4096);
    let mut body = |f: &dyn Fn(&mut String)| -> Value {
        out.clear();
        f(&mut out);
        Value::Text(out.clone())
    };
    for vm in &site.vms {
        let b = body(&|o| vm.write_xml(o, false));
        let mut row = vec![
            vm.id.into(),
            vm.name.as_str().into(),
            b,
            vm.uid.into(),
            vm.gid.into(),
            vm.last_poll.into(),
            (vm.state as i64).into(),
            (vm.lcm_state as i64).into(),
        ];
        row.extend(perm_columns(&vm.perms));
        t.push("vm_pool", row);
        for h in &vm.history {
            let b = body(&|o| h.write_xml(o));
            t.push("history", vec![vm.id.into(), h.seq.into(), b]);
        }
    }
    for h in &site.hosts {
        let b = body(&|o| h.write_xml(o));
        t.push(
            "host_pool",
            vec![
                h.id.into(),
                h.name.as_str().into(),
                b,
                (h.state as i64).into(),
                h.last_mon_time.into(),
                0.into(),
                0.into(),
                1.into(),
                0.into(),
                0.into(),
            ],
        );
    }
    for n in &site.vnets {
        let b = body(&|o| n.write_xml(o, false));
        let mut row = vec![
            n.id.into(),
            n.name.as_str().into(),
            b,
            n.uid.into(),
            n.gid.into(),
        ];
        row.extend(perm_columns(&n.perms));
        t.push("network_pool", row);
        for (ip, l) in &n.leases {
            if n.kind == NetKind::Ranged && !l.used {
                continue;
            }
            let (prefix, suffix) = mac_parts(&l.mac);
            let b = Value::Text(format!(
                "<LEASE><IP>{ip}</IP><MAC_PREFIX>{prefix}</MAC_PREFIX><MAC_SUFFIX>{suffix}</MAC_SUFFIX><USED>{}</USED><VID>{}</VID></LEASE>",
                u8::from(l.used),
                l.vid
            ));
            t.push("leases", vec![n.id.into(), i64::from(*ip).into(), b]);
        }
    }
    let mut members: std::collections::BTreeMap<Oid, Vec<Oid>> = Default::default();
    for u in &site.users {
        members.entry(u.gid).or_default().push(u.id);
    }
    for g in &site.groups {
        let ids = members.get(&g.id).cloned().unwrap_or_default();
        let b = body(&|o| g.write_xml(o, ids.iter().copied()));
        t.push(
            "group_pool",
            vec![
                g.id.into(),
                g.name.as_str().into(),
                b,
                0.into(),
                g.id.into(),
                1.into(),
                1.into(),
                0.into(),
            ],
        );
    }
    for u in &site.users {
        let b = body(&|o| u.write_xml(o));
        t.push(
            "user_pool",
            vec![
                u.id.into(),
                u.name.as_str().into(),
                b,
                u.id.into(),
                u.gid.into(),
                1.into(),
                0.into(),
                0.into(),
            ],
        );
    }
    for i in &site.images {
        let b = body(&|o| i.write_xml(o));
        let mut row = vec![
            i.id.into(),
            i.name.as_str().into(),
            b,
            i.uid.into(),
            i.gid.into(),
        ];
        row.extend(perm_columns(&i.perms));
        t.push("image_pool", row);
    }
    for tp in &site.templates {
        let b = body(&|o| tp.write_xml(o));
        let mut row = vec![
            tp.id.into(),
            tp.name.as_str().into(),
            b,
            tp.uid.into(),
            tp.gid.into(),
        ];
        row.extend(perm_columns(&tp.perms));
        t.push("template_pool", row);
    }
    for a in &site.acls {
        // The selectors use 44 bits: they fit oned's signed BIGINT columns.
        t.push(
            "acl",
            vec![
                a.id.into(),
                (a.user as i64).into(),
                (a.resource as i64).into(),
                (a.rights as i64).into(),
            ],
        );
    }
    for kind in Kind::ALL {
        // oned has no row for a pool that never handed out an id.
        if let Some(last) = site.counters.get(&kind).copied().filter(|l| *l >= 0) {
            t.push("pool_control", vec![kind.table().into(), last.into()]);
        }
    }
    t.push(
        "db_versioning",
        vec![
            0.into(),
            ONED_DB_VERSION.into(),
            now.into(),
            "OpenNebula 3.2.1 daemon bootstrap".into(),
        ],
    );
    t.rows.entry("quotas".into()).or_default();
    for q in &site.quotas {
        t.push(
            "quotas",
            vec![
                q.uid.into(),
                q.cpu.map(Value::Real).unwrap_or(Value::Null),
                q.memory.into(),
                q.num_vms.into(),
                q.storage.into(),
            ],
        );
    }
    t.rows.entry("usage".into()).or_default();
    for (uid, cpu, memory, vms) in usage(site) {
        t.push(
            "usage",
            vec![
                uid.into(),
                Value::Real(cpu),
                memory.into(),
                vms.into(),
                Value::Null,
            ],
        );
    }
    t
}

/// The quota driver's `usage` cache, as it would compute it now: per user, the CPU, MEMORY and
/// count of the VMs that are not DONE.
fn usage(site: &Site) -> Vec<(Oid, f64, i64, i64)> {
    let mut by_user: std::collections::BTreeMap<Oid, (f64, i64, i64)> = Default::default();
    for vm in site
        .vms
        .iter()
        .filter(|v| super::convert::holds_resources(v))
    {
        let e = by_user.entry(vm.uid).or_default();
        e.0 += vm.template_cpu();
        e.1 += vm.template_memory();
        e.2 += 1;
    }
    by_user
        .into_iter()
        .map(|(uid, (c, m, n))| (uid, c, m, n))
        .collect()
}

/// `02:00:0a:01:00:01` → (0x0200, 0x0a010001) as oned stores it.
fn mac_parts(mac: &str) -> (u32, u32) {
    let octets: Vec<u32> = mac
        .split(':')
        .map(|p| u32::from_str_radix(p, 16).unwrap_or(0))
        .collect();
    let get = |i: usize| octets.get(i).copied().unwrap_or(0);
    (
        (get(0) << 8) | get(1),
        (get(2) << 24) | (get(3) << 16) | (get(4) << 8) | get(5),
    )
}

/// What an export wrote.
#[derive(Debug)]
pub struct ExportReport {
    pub target: String,
    pub counts: Vec<(Kind, usize)>,
    pub elapsed: std::time::Duration,
}

impl ExportReport {
    pub fn render(&self) -> String {
        let mut out = format!("exported into {}\n", self.target);
        for (kind, n) in &self.counts {
            out.push_str(&format!("{:<14} {n}\n", kind.table()));
        }
        out.push_str(&format!("in {:.2} s\n", self.elapsed.as_secs_f64()));
        out
    }
}

/// `stratusd export`.
pub fn export(opts: &ExportOptions) -> Result<ExportReport, MigrateError> {
    let started = std::time::Instant::now();
    let site = load_store(&opts.database)?;
    let tables = tables_from_site(&site, crate::model::now());
    match &opts.to {
        OnedLocation::Sqlite { path, quota_db } => {
            for p in std::iter::once(path).chain(quota_db.iter()) {
                if p.exists() && !opts.force {
                    return Err(MigrateError::Usage(format!(
                        "{} exists; pass --force to replace it",
                        p.display()
                    )));
                }
            }
            super::sqlite::write(path, quota_db.as_deref(), &tables)?;
        }
        OnedLocation::Mysql(url) => super::mysql::write(url, &tables, opts.force)?,
    }
    Ok(ExportReport {
        target: opts.to.describe(),
        counts: Kind::ALL.iter().map(|k| (*k, site.count(*k))).collect(),
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parts_are_oneds_prefix_and_suffix() {
        assert_eq!(mac_parts("02:00:0a:01:00:01"), (512, 167837697));
        assert_eq!(mac_parts("02:00:c0:a8:0a:03"), (512, 3232238083));
    }
}
