//! one.user.* and one.userpool.info.

use super::{HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Core;
use std::sync::Arc;

pub fn allocate(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (name, pass, driver) = (p.string(1)?, p.string(2)?, p.string(3)?);
    Ok(Payload::Int(
        core.user_allocate(caller, name, pass, driver)?,
    ))
}

pub fn update(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    Ok(Payload::Int(core.user_update(caller, id, text)?))
}

pub fn delete(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Int(core.user_delete(caller, p.int(1)?)?))
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Doc(core.user_info(caller, p.int(1)?)?))
}

pub fn passwd(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, pass) = (p.int(1)?, p.string(2)?);
    Ok(Payload::Int(core.user_passwd(caller, id, pass)?))
}

pub fn chgrp(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, gid) = (p.int(1)?, p.int(2)?);
    Ok(Payload::Int(core.user_chgrp(caller, id, gid)?))
}

pub fn chauth(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, driver, pass) = (p.int(1)?, p.string(2)?, p.string(3)?);
    Ok(Payload::Int(core.user_chauth(caller, id, driver, pass)?))
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, _p: &Params) -> HandlerResult {
    Ok(Payload::Doc(core.userpool_info(caller)))
}
