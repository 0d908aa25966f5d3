//! The in-memory pools and their indexes.

use super::vm_documents::VmDocuments;
use super::{Change, Result, Tx};
use crate::model::group::{ONEADMIN_GID, USERS_GID};
use crate::model::quota::UserQuota;
use crate::model::user::{sha1_hex, ONEADMIN_UID, SERVERADMIN_UID};
use crate::model::volume::Volume;
use crate::model::{AclRule, Group, Host, Image, Kind, Oid, User, VNet, Vm, VmTemplate};
use crate::template::Template;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Default, Clone)]
pub struct State {
    pub users: BTreeMap<Oid, User>,
    pub groups: BTreeMap<Oid, Group>,
    pub acls: BTreeMap<Oid, AclRule>,
    pub templates: BTreeMap<Oid, VmTemplate>,
    pub vms: BTreeMap<Oid, Vm>,
    pub hosts: BTreeMap<Oid, Host>,
    pub vnets: BTreeMap<Oid, VNet>,
    pub images: BTreeMap<Oid, Image>,
    /// The persistent volumes of the built-in pdisk service, by UUID.
    pub volumes: BTreeMap<String, Volume>,
    user_by_name: HashMap<String, Oid>,
    /// Members of each group, kept in step with `users`.
    group_members: HashMap<Oid, BTreeSet<Oid>>,
    /// Last id handed out per pool (-1 = none yet).
    last_oid: HashMap<Kind, Oid>,
    /// The rendered documents of `vms`, kept in step with them.
    vm_documents: VmDocuments,
    /// Users' own quota limits (imported from oned); the others get the site's.
    pub user_quotas: HashMap<Oid, UserQuota>,
}

impl State {
    pub fn next_id(&self, kind: Kind) -> Oid {
        self.last_oid.get(&kind).map(|l| l + 1).unwrap_or(0)
    }

    pub fn set_counter(&mut self, kind: Kind, last: Oid) {
        self.last_oid.insert(kind, last);
    }

    pub fn raise_counter(&mut self, kind: Kind, id: Oid) {
        let e = self.last_oid.entry(kind).or_insert(-1);
        if id > *e {
            *e = id;
        }
    }

    pub fn user_by_name(&self, name: &str) -> Option<&User> {
        self.user_by_name
            .get(name)
            .and_then(|id| self.users.get(id))
    }

    pub fn group_members(&self, gid: Oid) -> impl Iterator<Item = Oid> + '_ {
        self.group_members
            .get(&gid)
            .into_iter()
            .flat_map(|s| s.iter().copied())
    }

    pub fn vm_documents(&self) -> &VmDocuments {
        &self.vm_documents
    }

    pub fn group_name(&self, gid: Oid) -> String {
        self.groups
            .get(&gid)
            .map(|g| g.name.clone())
            .unwrap_or_default()
    }

    fn remove_user_indexes(&mut self, id: Oid) {
        if let Some(old) = self.users.get(&id) {
            self.user_by_name.remove(&old.name);
            if let Some(m) = self.group_members.get_mut(&old.gid) {
                m.remove(&id);
            }
        }
    }

    pub fn apply(&mut self, change: Change) {
        match change {
            Change::User(u) => {
                self.remove_user_indexes(u.id);
                self.user_by_name.insert(u.name.clone(), u.id);
                self.group_members.entry(u.gid).or_default().insert(u.id);
                self.raise_counter(Kind::User, u.id);
                self.users.insert(u.id, u);
            }
            Change::Group(g) => {
                self.raise_counter(Kind::Group, g.id);
                self.groups.insert(g.id, g);
            }
            Change::Acl(a) => {
                self.raise_counter(Kind::Acl, a.id);
                self.acls.insert(a.id, a);
            }
            Change::Template(t) => {
                self.raise_counter(Kind::Template, t.id);
                self.templates.insert(t.id, t);
            }
            Change::Vm(v) => {
                self.raise_counter(Kind::Vm, v.id);
                self.vm_documents.update(&v);
                self.vms.insert(v.id, v);
            }
            Change::Host(h) => {
                self.raise_counter(Kind::Host, h.id);
                self.hosts.insert(h.id, h);
            }
            Change::VNet(n) => {
                self.raise_counter(Kind::Net, n.id);
                self.vnets.insert(n.id, n);
            }
            Change::Image(i) => {
                self.raise_counter(Kind::Image, i.id);
                self.images.insert(i.id, i);
            }
            Change::Volume(v) => {
                self.volumes.insert(v.uuid.clone(), v);
            }
            Change::DeleteVolume(uuid) => {
                self.volumes.remove(&uuid);
            }
            Change::Delete(kind, id) => match kind {
                Kind::User => {
                    self.remove_user_indexes(id);
                    self.users.remove(&id);
                }
                Kind::Group => {
                    self.groups.remove(&id);
                    self.group_members.remove(&id);
                }
                Kind::Acl => {
                    self.acls.remove(&id);
                }
                Kind::Template => {
                    self.templates.remove(&id);
                }
                Kind::Vm => {
                    self.vm_documents.remove(id);
                    self.vms.remove(&id);
                }
                Kind::Host => {
                    self.hosts.remove(&id);
                }
                Kind::Net => {
                    self.vnets.remove(&id);
                }
                Kind::Image => {
                    self.images.remove(&id);
                }
            },
        }
    }

    /// Restores one stored volume at start-up.
    pub fn load_volume(&mut self, body: &str) -> std::result::Result<(), String> {
        let v: Volume =
            serde_json::from_str(body).map_err(|e| format!("corrupt volume_pool row: {e}"))?;
        self.apply(Change::Volume(v));
        Ok(())
    }

    /// Restores one stored row at start-up.
    pub fn load_row(&mut self, kind: Kind, body: &str) -> std::result::Result<(), String> {
        fn de<T: serde::de::DeserializeOwned>(
            kind: Kind,
            body: &str,
        ) -> std::result::Result<T, String> {
            serde_json::from_str(body).map_err(|e| format!("corrupt {} row: {e}", kind.table()))
        }
        let change = match kind {
            Kind::User => Change::User(de(kind, body)?),
            Kind::Group => Change::Group(de(kind, body)?),
            Kind::Acl => Change::Acl(de(kind, body)?),
            Kind::Template => Change::Template(de(kind, body)?),
            Kind::Vm => Change::Vm(de(kind, body)?),
            Kind::Host => Change::Host(de(kind, body)?),
            Kind::Net => Change::VNet(de(kind, body)?),
            Kind::Image => Change::Image(de(kind, body)?),
        };
        self.apply(change);
        Ok(())
    }
}

/// The objects oned creates on its first start.
pub fn bootstrap(state: &State, tx: &mut Tx, oneadmin_password: &str) -> Result<()> {
    for (id, name) in [(ONEADMIN_GID, "oneadmin"), (USERS_GID, "users")] {
        tx.put(Change::Group(Group {
            id,
            name: name.into(),
        }));
    }
    tx.put(Change::User(User {
        id: ONEADMIN_UID,
        gid: ONEADMIN_GID,
        gname: "oneadmin".into(),
        name: "oneadmin".into(),
        password: sha1_hex(oneadmin_password),
        auth_driver: "core".into(),
        enabled: true,
        template: Template::new(),
    }));
    // serveradmin signs server tokens; its password is random, as in oned.
    let secret: [u8; 20] = rand::random();
    let secret_hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    tx.put(Change::User(User {
        id: SERVERADMIN_UID,
        gid: ONEADMIN_GID,
        gname: "oneadmin".into(),
        name: "serveradmin".into(),
        password: sha1_hex(&secret_hex),
        auth_driver: "server_cipher".into(),
        enabled: true,
        template: Template::new(),
    }));
    // @1 VM+NET+IMAGE+TEMPLATE/* CREATE and @1 HOST/* MANAGE.
    tx.put(Change::Acl(AclRule {
        id: 0,
        user: 0x2_0000_0001,
        resource: 0x2d4_0000_0000,
        rights: 0x8,
    }));
    tx.put(Change::Acl(AclRule {
        id: 1,
        user: 0x2_0000_0001,
        resource: 0x24_0000_0000,
        rights: 0x2,
    }));
    for (kind, last) in [(Kind::User, 1), (Kind::Acl, 1)] {
        let _ = state;
        tx.allocated.push((kind, last));
    }
    Ok(())
}
