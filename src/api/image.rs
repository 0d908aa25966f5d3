//! one.image.* and one.imagepool.info.

use super::{answer, write, write_id, HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Command;
use crate::core::Core;
use crate::model::Kind;
use std::sync::Arc;

/// The image is LOCKED with its copy recorded as an outbox intent in the same commit; the copy
/// runs after the answer, as 3.2's image manager does (`workers::copies`).
pub fn allocate(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    write_id(Command::image_allocate(caller, p.string(1)?)?)
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
