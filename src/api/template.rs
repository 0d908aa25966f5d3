//! one.template.* and one.templatepool.info.

use super::{answer, write, write_id, HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::vms;
use crate::core::Command;
use crate::core::Core;
use crate::model::Kind;
use std::sync::Arc;

pub fn allocate(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    write_id(Command::template_allocate(caller, p.string(1)?)?)
}

pub fn update(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    write_id(Command::TemplateUpdate {
        caller: caller.clone(),
        id,
        text: text.into(),
    })
}

pub fn instantiate(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, name) = (p.int(1)?, p.string(2)?);
    let command = Command::TemplateInstantiate {
        caller: caller.clone(),
        template: id,
        name: name.into(),
    };
    let caller = caller.clone();
    write(command, move |_, answer| {
        Ok(Payload::Int(vms::template_instantiated(
            &caller, id, answer,
        )?))
    })
}

pub fn delete(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    write_id(Command::TemplateDelete {
        caller: caller.clone(),
        id: p.int(1)?,
    })
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    answer(Payload::Doc(core.template_info(caller, p.int(1)?)?))
}

pub fn chown(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, uid, gid) = (p.int(1)?, p.int(2)?, p.int(3)?);
    write_id(Command::Chown {
        caller: caller.clone(),
        kind: Kind::Template,
        id,
        uid,
        gid,
    })
}

pub fn chmod(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, bits) = (p.int(1)?, p.perms(2)?);
    write_id(Command::Chmod {
        caller: caller.clone(),
        kind: Kind::Template,
        id,
        bits,
    })
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (flag, start, end) = (p.int(1)?, p.int(2)?, p.int(3)?);
    answer(Payload::Doc(
        core.templatepool_info(caller, flag, start, end)?,
    ))
}
