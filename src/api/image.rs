//! one.image.* and one.imagepool.info.

use super::{answer, write, write_id, HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::images::CopyJob;
use crate::core::Command;
use crate::core::Core;
use crate::model::Kind;
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

pub fn allocate(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    write(
        Command::image_allocate(caller, p.string(1)?)?,
        |core, answer| {
            let (id, job) = answer.image()?;
            if let Some(job) = job {
                start_copy(core, job);
            }
            Ok(Payload::Int(id))
        },
    )
}

/// The copy runs after the answer, as 3.2's image manager does, on one of a few threads: a
/// burst of allocations queues its copies (the images stay LOCKED).
fn start_copy(core: &Arc<Core>, job: CopyJob) {
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

pub fn persistent(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, on) = (p.int(1)?, p.bool(2)?);
    write_id(Command::ImagePersistent {
        caller: caller.clone(),
        id,
        persistent: on,
    })
}

pub fn enable(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, on) = (p.int(1)?, p.bool(2)?);
    write_id(Command::ImageEnable {
        caller: caller.clone(),
        id,
        enable: on,
    })
}

pub fn update(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    write_id(Command::ImageUpdate {
        caller: caller.clone(),
        id,
        text: text.into(),
    })
}

pub fn delete(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let id = p.int(1)?;
    let command = Command::ImageDelete {
        caller: caller.clone(),
        id,
    };
    write(command, move |core, answer| {
        Ok(Payload::Int(core.image_deleted(id, answer)?))
    })
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    answer(Payload::Doc(core.image_info(caller, p.int(1)?)?))
}

pub fn chown(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, uid, gid) = (p.int(1)?, p.int(2)?, p.int(3)?);
    write_id(Command::Chown {
        caller: caller.clone(),
        kind: Kind::Image,
        id,
        uid,
        gid,
    })
}

pub fn chmod(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, bits) = (p.int(1)?, p.perms(2)?);
    write_id(Command::Chmod {
        caller: caller.clone(),
        kind: Kind::Image,
        id,
        bits,
    })
}

pub fn chtype(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, t) = (p.int(1)?, p.string(2)?);
    write_id(Command::ImageChtype {
        caller: caller.clone(),
        id,
        type_name: t.into(),
    })
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (flag, start, end) = (p.int(1)?, p.int(2)?, p.int(3)?);
    answer(Payload::Doc(core.imagepool_info(caller, flag, start, end)?))
}
