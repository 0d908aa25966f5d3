//! one.image.* and one.imagepool.info.

use super::{HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Core;
use crate::model::Image;
use std::sync::Arc;

pub fn allocate(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, job) = core.image_allocate(caller, p.string(1)?)?;
    if let Some(job) = job {
        // The copy runs after the answer, as 3.2's image manager does; the core handle is
        // shared with the copy thread.
        let core = Arc::clone(core);
        std::thread::spawn(move || {
            if let Err(e) = core.image_copy(job) {
                tracing::error!(error = %e, "recording the image copy failed");
            }
        });
    }
    Ok(Payload::Int(id))
}

pub fn persistent(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, on) = (p.int(1)?, p.bool(2)?);
    Ok(Payload::Int(core.image_persistent(caller, id, on)?))
}

pub fn enable(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, on) = (p.int(1)?, p.bool(2)?);
    Ok(Payload::Int(core.image_enable(caller, id, on)?))
}

pub fn update(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    Ok(Payload::Int(core.image_update(caller, id, text)?))
}

pub fn delete(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Int(core.image_delete(caller, p.int(1)?)?))
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Doc(core.image_info(caller, p.int(1)?)?))
}

pub fn chown(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, uid, gid) = (p.int(1)?, p.int(2)?, p.int(3)?);
    Ok(Payload::Int(core.chown::<Image>(caller, id, uid, gid)?))
}

pub fn chmod(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, bits) = (p.int(1)?, p.perms(2)?);
    Ok(Payload::Int(core.chmod::<Image>(caller, id, bits)?))
}

pub fn chtype(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, t) = (p.int(1)?, p.string(2)?);
    Ok(Payload::Int(core.image_chtype(caller, id, t)?))
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (flag, start, end) = (p.int(1)?, p.int(2)?, p.int(3)?);
    Ok(Payload::Doc(core.imagepool_info(caller, flag, start, end)?))
}
