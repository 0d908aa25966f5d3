//! Authorization (3.2 `AuthRequest` + `AclManager`): permission bits first, then ACL rules.

use super::auth::Caller;
use super::messages::Denial;
use super::{Error, Result, State};
use crate::model::acl::Op;
use crate::model::{Kind, Oid, Permissions};

/// What an authorization request needs to know of an existing object.
#[derive(Debug, Clone, Copy)]
pub struct ObjRef {
    pub oid: Oid,
    pub uid: Oid,
    pub gid: Oid,
    pub perms: Permissions,
}

/// One operation to authorize; `obj` None is a CREATE (no object yet).
#[derive(Debug, Clone, Copy)]
pub struct AuthItem {
    pub kind: Kind,
    pub op: Op,
    pub obj: Option<ObjRef>,
}

impl AuthItem {
    pub fn create(kind: Kind) -> AuthItem {
        AuthItem {
            kind,
            op: Op::Create,
            obj: None,
        }
    }
    /// `op` on the object type as a whole, no object: 3.2's ACL methods ask for MANAGE ACL.
    pub fn whole(kind: Kind, op: Op) -> AuthItem {
        AuthItem {
            kind,
            op,
            obj: None,
        }
    }
    pub fn on(kind: Kind, op: Op, obj: ObjRef) -> AuthItem {
        AuthItem {
            kind,
            op,
            obj: Some(obj),
        }
    }
}

fn perms_allow(caller: &Caller, op: Op, obj: &ObjRef) -> bool {
    let p = &obj.perms;
    let (o, g, x) = match op {
        Op::Use => (p.owner_u, p.group_u, p.other_u),
        Op::Manage => (p.owner_m, p.group_m, p.other_m),
        Op::Admin => (p.owner_a, p.group_a, p.other_a),
        Op::Create => return false,
    };
    (obj.uid == caller.uid && o) || (obj.gid == caller.gid && g) || x
}

impl State {
    /// Checks every item; the error lists each refused item as 3.2 does
    /// (`Not authorized to perform USE NET [0]; ...`).
    pub fn authorize(&self, caller: &Caller, items: &[AuthItem]) -> Result<()> {
        if caller.is_privileged() {
            return Ok(());
        }
        let mut refused = Vec::new();
        for item in items {
            if !self.allows(caller, item) {
                let (op, kind) = (item.op.name(), item.kind.auth_name());
                refused.push(match item.obj {
                    Some(obj) => Denial::NotAuthorizedOn {
                        op,
                        kind,
                        id: obj.oid,
                    },
                    None => Denial::NotAuthorized { op, kind },
                });
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(Error::Authorization {
                uid: caller.uid,
                reasons: refused,
            })
        }
    }

    pub fn allows(&self, caller: &Caller, item: &AuthItem) -> bool {
        if caller.is_privileged() {
            return true;
        }
        if let Some(obj) = &item.obj {
            if perms_allow(caller, item.op, obj) {
                return true;
            }
        }
        let (oid, ogid) = match &item.obj {
            Some(o) => (Some(o.oid), Some(o.gid)),
            None => (None, None),
        };
        self.acls
            .values()
            .any(|r| r.grants(caller.uid, caller.gid, item.kind, oid, ogid, item.op))
    }

    /// Does an ACL rule give this caller `op` on every object of `kind`? (Pool listings then
    /// skip the per-object filter, as 3.2 does.)
    pub fn acl_grants_all(&self, caller: &Caller, kind: Kind, op: Op) -> bool {
        self.acls
            .values()
            .any(|r| r.grants_all(caller.uid, caller.gid, kind, op))
    }
}
