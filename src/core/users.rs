//! one.user.* operations.

use super::auth::Caller;
use super::authz::{AuthItem, ObjRef};
use super::command::Answer;
use super::messages::{AllocDetail, Refusal};
use super::{Change, Command, Core, Error, Result, Shared, State, Tx};
use crate::model::acl::Op;
use crate::model::group::{ONEADMIN_GID, USERS_GID};
use crate::model::user::{sha1_hex, validate_name, validate_password, ONEADMIN_UID};
use crate::model::{Kind, Oid, Permissions, User};
use crate::template::{self, Template};

/// A user owns itself (so it may read and change its own account) and belongs to its group.
pub fn user_ref(user: &User) -> ObjRef {
    ObjRef {
        oid: user.id,
        uid: user.id,
        gid: user.gid,
        perms: Permissions::default(),
    }
}

/// The users `one.userpool.info` shows the caller: those it may USE.
pub fn visible<'a>(state: &'a State, caller: &'a Caller) -> impl Iterator<Item = &'a User> + 'a {
    let all = caller.is_privileged() || state.acl_grants_all(caller, Kind::User, Op::Use);
    state.users.values().filter(move |user| {
        all || state.allows(caller, &AuthItem::on(Kind::User, Op::Use, user_ref(user)))
    })
}

pub fn get(state: &State, id: Oid) -> Result<&User> {
    state.users.get(&id).ok_or(Error::NoExists {
        kind: Kind::User,
        id,
    })
}

fn get_authorized<'a>(state: &'a State, caller: &Caller, id: Oid, op: Op) -> Result<&'a User> {
    let user = get(state, id)?;
    state.authorize(caller, &[AuthItem::on(Kind::User, op, user_ref(user))])?;
    Ok(user)
}

/// Core users store the sha1 of their password; every other driver the text itself.
fn stored_password(driver: &str, password: &str) -> String {
    if driver == "core" {
        sha1_hex(password)
    } else {
        password.to_string()
    }
}

impl Core {
    pub fn user_allocate(
        &self,
        caller: &Caller,
        name: &str,
        password: &str,
        driver: &str,
    ) -> Result<Oid> {
        self.execute(Command::UserAllocate {
            caller: caller.clone(),
            name: name.into(),
            password: password.into(),
            driver: driver.into(),
        })
        .and_then(Answer::id)
    }

    pub fn user_delete(&self, caller: &Caller, id: Oid) -> Result<Oid> {
        self.execute(Command::UserDelete {
            caller: caller.clone(),
            id,
        })
        .and_then(Answer::id)
    }

    pub fn user_info(&self, caller: &Caller, id: Oid) -> Result<String> {
        let id = if id == -1 { caller.uid } else { id };
        let state = self.read();
        let user = get_authorized(&state, caller, id, Op::Use)?;
        let mut out = String::with_capacity(512);
        user.write_xml(&mut out);
        Ok(out)
    }

    pub fn user_update(&self, caller: &Caller, id: Oid, text: &str) -> Result<Oid> {
        self.execute(Command::UserUpdate {
            caller: caller.clone(),
            id,
            text: text.into(),
        })
        .and_then(Answer::id)
    }

    pub fn user_passwd(&self, caller: &Caller, id: Oid, password: &str) -> Result<Oid> {
        self.execute(Command::UserPasswd {
            caller: caller.clone(),
            id,
            password: password.into(),
        })
        .and_then(Answer::id)
    }

    pub fn user_chgrp(&self, caller: &Caller, id: Oid, gid: Oid) -> Result<Oid> {
        self.execute(Command::UserChgrp {
            caller: caller.clone(),
            id,
            gid,
        })
        .and_then(Answer::id)
    }

    pub fn user_chauth(
        &self,
        caller: &Caller,
        id: Oid,
        driver: &str,
        password: &str,
    ) -> Result<Oid> {
        self.execute(Command::UserChauth {
            caller: caller.clone(),
            id,
            driver: driver.into(),
            password: password.into(),
        })
        .and_then(Answer::id)
    }

    pub fn userpool_info(&self, caller: &Caller) -> String {
        let state = self.read();
        let mut out = String::from("<USER_POOL>");
        for user in visible(&state, caller) {
            user.write_xml(&mut out);
        }
        out.push_str("</USER_POOL>");
        out
    }
}

/// A replacement template for `*.update`, with 3.2's wording of parse errors.
pub fn parse_update(text: &str) -> Result<Template> {
    template::parse(text).map_err(|e| {
        Error::request(if e.message.is_empty() {
            Refusal::UpdateParseNoDetail
        } else {
            Refusal::UpdateParse(e.message)
        })
    })
}

impl Shared {
    pub(super) fn apply_user_allocate(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        name: &str,
        password: &str,
        driver: &str,
    ) -> Result<Oid> {
        state.authorize(caller, &[AuthItem::create(Kind::User)])?;
        let driver = if driver.is_empty() { "core" } else { driver };
        // 3.2 checks the password (as given, for every driver) before the name.
        let invalid = |v| Error::alloc(Kind::User, AllocDetail::User(v));
        validate_password(password).map_err(invalid)?;
        validate_name(name).map_err(invalid)?;
        if let Some(existing) = state.user_by_name(name) {
            return Err(Error::alloc(
                Kind::User,
                AllocDetail::NameTaken {
                    kind: "USER",
                    id: existing.id,
                },
            ));
        }
        let stored = stored_password(driver, password);
        Error::check_xml(Kind::User, &[name, &stored, driver], None)?;
        // Users created by oneadmin-group members go to `users`; others' into their group.
        let gid = if caller.gid == ONEADMIN_GID {
            USERS_GID
        } else {
            caller.gid
        };
        let id = tx.alloc_id(state, Kind::User);
        tx.put(Change::User(User {
            id,
            gid,
            gname: state.group_name(gid),
            name: name.to_string(),
            password: stored,
            auth_driver: driver.to_string(),
            enabled: true,
            template: Template::new(),
        }));
        Ok(id)
    }

    pub(super) fn apply_user_delete(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
    ) -> Result<Oid> {
        get_authorized(state, caller, id, Op::Admin)?;
        if id == ONEADMIN_UID {
            return Err(Error::request(Refusal::DeleteOneadmin));
        }
        tx.delete(Kind::User, id);
        Ok(id)
    }

    pub(super) fn apply_user_update(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        text: &str,
    ) -> Result<Oid> {
        let user = get_authorized(state, caller, id, Op::Manage)?;
        let mut tmpl = parse_update(text)?;
        // User templates keep the last copy of a repeated attribute.
        tmpl.keep_last_copies();
        let mut user = user.clone();
        user.template = tmpl;
        tx.put(Change::User(user));
        Ok(id)
    }

    pub(super) fn apply_user_passwd(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        password: &str,
    ) -> Result<Oid> {
        let user = get_authorized(state, caller, id, Op::Manage)?;
        // 3.2 hashes a `core` user's password before it validates it, so any text is
        // accepted then; other drivers' passwords are checked.
        if user.auth_driver != "core" {
            validate_password(password).map_err(|v| Error::request(Refusal::Password(v)))?;
        }
        let mut user = user.clone();
        user.password = stored_password(&user.auth_driver, password);
        tx.put(Change::User(user));
        Ok(id)
    }

    pub(super) fn apply_user_chgrp(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        gid: Oid,
    ) -> Result<Oid> {
        let user = get(state, id)?;
        if gid < 0 {
            return Err(Error::BadParameter(Refusal::WrongGroupId));
        }
        let group = state.groups.get(&gid).ok_or(Error::NoExists {
            kind: Kind::Group,
            id: gid,
        })?;
        state.authorize(
            caller,
            &[
                AuthItem::on(Kind::User, Op::Manage, user_ref(user)),
                AuthItem::on(Kind::Group, Op::Use, super::groups::group_ref(gid)),
            ],
        )?;
        let mut user = user.clone();
        user.gid = gid;
        user.gname = group.name.clone();
        tx.put(Change::User(user));
        Ok(id)
    }

    pub(super) fn apply_user_chauth(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        driver: &str,
        password: &str,
    ) -> Result<Oid> {
        let user = get_authorized(state, caller, id, Op::Admin)?;
        let mut user = user.clone();
        if !driver.is_empty() {
            user.auth_driver = driver.to_string();
        }
        // An empty password keeps the old one; a new one is checked unless it is for
        // `core`, which hashes it.
        if !password.is_empty() {
            if user.auth_driver != "core" {
                validate_password(password).map_err(|v| Error::request(Refusal::Password(v)))?;
            }
            user.password = stored_password(&user.auth_driver, password);
        }
        tx.put(Change::User(user));
        Ok(id)
    }
}
