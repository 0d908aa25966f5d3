//! one.template.* and one.templatepool.info.

use super::{HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Core;
use crate::model::VmTemplate;
use std::sync::Arc;

pub fn allocate(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Int(core.template_allocate(caller, p.string(1)?)?))
}

pub fn update(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    Ok(Payload::Int(core.template_update(caller, id, text)?))
}

pub fn instantiate(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, name) = (p.int(1)?, p.string(2)?);
    Ok(Payload::Int(core.template_instantiate(caller, id, name)?))
}

pub fn delete(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Int(core.template_delete(caller, p.int(1)?)?))
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Doc(core.template_info(caller, p.int(1)?)?))
}

pub fn chown(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, uid, gid) = (p.int(1)?, p.int(2)?, p.int(3)?);
    Ok(Payload::Int(
        core.chown::<VmTemplate>(caller, id, uid, gid)?,
    ))
}

pub fn chmod(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, bits) = (p.int(1)?, p.perms(2)?);
    Ok(Payload::Int(core.chmod::<VmTemplate>(caller, id, bits)?))
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (flag, start, end) = (p.int(1)?, p.int(2)?, p.int(3)?);
    Ok(Payload::Doc(
        core.templatepool_info(caller, flag, start, end)?,
    ))
}
