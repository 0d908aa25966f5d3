//! one.template.* operations (registered VM templates).

use super::auth::Caller;
use super::authz::AuthItem;
use super::command::Answer;
use super::owned::{self, get_authorized};
use super::{Change, Command, Core, Error, Result, Shared, State, Tx};
use crate::model::acl::Op;
use crate::model::{now, Kind, Oid, Permissions, VmTemplate};
use crate::template::{self, Template};

impl Command {
    /// `one.template.allocate` of a text (a parse error first, as in 3.2).
    pub fn template_allocate(caller: &Caller, text: &str) -> Result<Command> {
        let tmpl = template::parse(text).map_err(|e| Error::AllocateParse {
            kind: Kind::Template,
            message: e.message,
        })?;
        Ok(Command::TemplateAllocate {
            caller: caller.clone(),
            template: tmpl,
        })
    }
}

impl Core {
    pub fn template_allocate(&self, caller: &Caller, text: &str) -> Result<Oid> {
        self.execute(Command::template_allocate(caller, text)?)
            .and_then(Answer::id)
    }

    pub fn template_update(&self, caller: &Caller, id: Oid, text: &str) -> Result<Oid> {
        self.execute(Command::TemplateUpdate {
            caller: caller.clone(),
            id,
            text: text.into(),
        })
        .and_then(Answer::id)
    }

    pub fn template_delete(&self, caller: &Caller, id: Oid) -> Result<Oid> {
        self.execute(Command::TemplateDelete {
            caller: caller.clone(),
            id,
        })
        .and_then(Answer::id)
    }

    pub fn template_info(&self, caller: &Caller, id: Oid) -> Result<String> {
        let state = self.read();
        let t = get_authorized::<VmTemplate>(&state, caller, id, Op::Use)?;
        let mut out = String::with_capacity(1024);
        t.write_xml(&mut out);
        Ok(out)
    }

    pub fn templatepool_info(
        &self,
        caller: &Caller,
        flag: i32,
        start: i32,
        end: i32,
    ) -> Result<String> {
        let state = self.read();
        owned::pool_document::<VmTemplate>(
            &state,
            caller,
            (flag, start, end),
            "VMTEMPLATE_POOL",
            |t, out| t.write_xml(out),
        )
    }
}

impl Shared {
    pub(super) fn apply_template_allocate(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        tmpl: &Template,
    ) -> Result<Oid> {
        state.authorize(caller, &[AuthItem::create(Kind::Template)])?;
        let id = state.next_id(Kind::Template);
        let name = match tmpl.get("NAME") {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("template-{id}"),
        };
        let taken = (state.templates.values()).find(|t| t.uid == caller.uid && t.name == name);
        Error::check_new_name(Kind::Template, "TEMPLATE", &name, taken.map(|t| t.id))?;
        let id = tx.alloc_id(state, Kind::Template);
        let user = super::users::get(state, caller.uid)?;
        let mut tmpl = tmpl.clone();
        tmpl.set_single("TEMPLATE_ID", id.to_string());
        Error::check_xml(
            Kind::Template,
            &[&name, &user.name, &user.gname],
            Some(&tmpl),
        )?;
        tx.put(Change::Template(VmTemplate {
            id,
            uid: caller.uid,
            gid: user.gid,
            uname: user.name.clone(),
            gname: user.gname.clone(),
            name,
            perms: Permissions::default(),
            regtime: now(),
            template: tmpl,
        }));
        Ok(id)
    }

    pub(super) fn apply_template_update(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        text: &str,
    ) -> Result<Oid> {
        let t = get_authorized::<VmTemplate>(state, caller, id, Op::Manage)?;
        let tmpl = super::users::parse_update(text)?;
        let mut t = t.clone();
        t.template = tmpl;
        tx.put(Change::Template(t));
        Ok(id)
    }

    pub(super) fn apply_template_delete(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
    ) -> Result<Oid> {
        get_authorized::<VmTemplate>(state, caller, id, Op::Manage)?;
        tx.delete(Kind::Template, id);
        Ok(id)
    }
}
