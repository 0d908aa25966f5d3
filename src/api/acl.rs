//! one.acl.*.

use super::{answer, write_id, HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Command;
use crate::core::Core;
use std::sync::Arc;

pub fn addrule(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (user, resource, rights) = (p.string(1)?, p.string(2)?, p.string(3)?);
    write_id(Command::AclAddRule {
        caller: caller.clone(),
        user: user.into(),
        resource: resource.into(),
        rights: rights.into(),
    })
}

pub fn delrule(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    write_id(Command::AclDelRule {
        caller: caller.clone(),
        id: p.int(1)?,
    })
}

pub fn info(core: &Arc<Core>, caller: &Caller, _p: &Params) -> HandlerResult {
    answer(Payload::Doc(core.acl_info(caller)?))
}
