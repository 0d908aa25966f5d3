//! one.host.* and one.hostpool.info.

use super::{HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Core;
use std::sync::Arc;

pub fn allocate(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    // StratusLab sends a 7th boolean (inDomain); 3.2 reads five strings after the session.
    let (name, im, vmm, vnm, tm) = (
        p.string(1)?,
        p.string(2)?,
        p.string(3)?,
        p.string(4)?,
        p.string(5)?,
    );
    Ok(Payload::Int(
        core.host_allocate(caller, name, im, vmm, vnm, tm)?,
    ))
}

pub fn delete(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Int(core.host_delete(caller, p.int(1)?)?))
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Doc(core.host_info(caller, p.int(1)?)?))
}

pub fn update(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    Ok(Payload::Int(core.host_update(caller, id, text)?))
}

pub fn enable(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, on) = (p.int(1)?, p.bool(2)?);
    Ok(Payload::Int(core.host_enable(caller, id, on)?))
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, _p: &Params) -> HandlerResult {
    Ok(Payload::Doc(core.hostpool_info(caller)))
}
