//! one.group.* operations.

use super::auth::Caller;
use super::authz::{AuthItem, ObjRef};
use super::command::Answer;
use super::messages::{AllocDetail, Refusal};
use super::{Change, Command, Core, Error, Result, Shared, State, Tx};
use crate::model::acl::Op;
use crate::model::{Group, Kind, Oid, Permissions};

/// Groups have no owner in 3.2: only the oneadmin group and ACL rules reach them.
pub fn group_ref(id: Oid) -> ObjRef {
    ObjRef {
        oid: id,
        uid: -1,
        gid: -1,
        perms: Permissions::default(),
    }
}

/// The groups `one.grouppool.info` shows the caller: its own, and those it may USE.
pub fn visible<'a>(state: &'a State, caller: &'a Caller) -> impl Iterator<Item = &'a Group> + 'a {
    state.groups.values().filter(move |group| {
        caller.gid == group.id
            || state.allows(
                caller,
                &AuthItem::on(Kind::Group, Op::Use, group_ref(group.id)),
            )
    })
}

impl Core {
    pub fn group_allocate(&self, caller: &Caller, name: &str) -> Result<Oid> {
        self.execute(Command::GroupAllocate {
            caller: caller.clone(),
            name: name.into(),
        })
        .and_then(Answer::id)
    }

    pub fn group_delete(&self, caller: &Caller, id: Oid) -> Result<Oid> {
        self.execute(Command::GroupDelete {
            caller: caller.clone(),
            id,
        })
        .and_then(Answer::id)
    }

    pub fn group_info(&self, caller: &Caller, id: Oid) -> Result<String> {
        let id = if id == -1 { caller.gid } else { id };
        let state = self.read();
        let group = state.groups.get(&id).ok_or(Error::NoExists {
            kind: Kind::Group,
            id,
        })?;
        // Members may always read their own group.
        if caller.gid != id {
            state.authorize(caller, &[AuthItem::on(Kind::Group, Op::Use, group_ref(id))])?;
        }
        let mut out = String::new();
        group.write_xml(&mut out, state.group_members(id));
        Ok(out)
    }

    pub fn grouppool_info(&self, caller: &Caller) -> String {
        let state = self.read();
        let mut out = String::from("<GROUP_POOL>");
        for group in visible(&state, caller) {
            group.write_xml(&mut out, state.group_members(group.id));
        }
        out.push_str("</GROUP_POOL>");
        out
    }
}

impl Shared {
    pub(super) fn apply_group_allocate(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        name: &str,
    ) -> Result<Oid> {
        state.authorize(caller, &[AuthItem::create(Kind::Group)])?;
        if name.is_empty() {
            return Err(Error::alloc(Kind::Group, AllocDetail::NameEmpty));
        }
        let taken = state.groups.values().find(|g| g.name == name);
        Error::check_new_name(Kind::Group, "GROUP", name, taken.map(|g| g.id))?;
        Error::check_xml(Kind::Group, &[name], None)?;
        let id = tx.alloc_id(state, Kind::Group);
        tx.put(Change::Group(Group {
            id,
            name: name.to_string(),
        }));
        Ok(id)
    }

    pub(super) fn apply_group_delete(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
    ) -> Result<Oid> {
        state.groups.get(&id).ok_or(Error::NoExists {
            kind: Kind::Group,
            id,
        })?;
        state.authorize(
            caller,
            &[AuthItem::on(Kind::Group, Op::Admin, group_ref(id))],
        )?;
        if id < 100 {
            return Err(Error::request(Refusal::DeleteSystemGroup));
        }
        if state.group_members(id).next().is_some() {
            return Err(Error::request(Refusal::DeleteNonEmptyGroup(id)));
        }
        tx.delete(Kind::Group, id);
        Ok(id)
    }
}
