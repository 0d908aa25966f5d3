//! one.acl.*.

use super::{HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Core;
use std::sync::Arc;

pub fn addrule(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (user, resource, rights) = (p.string(1)?, p.string(2)?, p.string(3)?);
    Ok(Payload::Int(
        core.acl_addrule(caller, user, resource, rights)?,
    ))
}

pub fn delrule(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Int(core.acl_delrule(caller, p.int(1)?)?))
}

pub fn info(core: &Arc<Core>, caller: &Caller, _p: &Params) -> HandlerResult {
    Ok(Payload::Doc(core.acl_info(caller)?))
}
