//! one.image.* and one.imagepool.info.

use super::{HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Core;
use crate::model::Image;
use crate::workpool::{Threads, IMAGE_COPIES_AT_ONCE};
use std::sync::{Arc, OnceLock};

/// The threads that copy images into the repository (process-wide).
fn image_copies() -> Option<&'static Threads> {
    static COPIES: OnceLock<Option<Threads>> = OnceLock::new();
    COPIES
        .get_or_init(|| match Threads::new("image-copy", IMAGE_COPIES_AT_ONCE) {
            Ok(threads) => Some(threads),
            Err(e) => {
                tracing::error!(error = %e, "no image copy thread could be started");
                None
            }
        })
        .as_ref()
}

pub fn allocate(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, job) = core.image_allocate(caller, p.string(1)?)?;
    if let Some(job) = job {
        // The copy runs after the answer, as 3.2's image manager does, on one of a few
        // threads: a burst of allocations queues its copies (the images stay LOCKED).
        let core = Arc::clone(core);
        let copy = move || {
            if let Err(e) = core.image_copy(job) {
                tracing::error!(error = %e, "recording the image copy failed");
            }
        };
        match image_copies() {
            Some(threads) => {
                let waiting = threads.submit(copy);
                if waiting > IMAGE_COPIES_AT_ONCE {
                    tracing::info!(waiting, "image copy queued");
                }
            }
            // No thread could be started: copy before answering rather than not at all.
            None => copy(),
        }
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
