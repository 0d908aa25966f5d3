//! one.user.* and one.userpool.info.

use super::{answer, write_id, HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Command;
use crate::core::Core;
use std::sync::Arc;

pub fn allocate(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (name, pass, driver) = (p.string(1)?, p.string(2)?, p.string(3)?);
    write_id(Command::UserAllocate {
        caller: caller.clone(),
        name: name.into(),
        password: pass.into(),
        driver: driver.into(),
    })
}

pub fn update(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    write_id(Command::UserUpdate {
        caller: caller.clone(),
        id,
        text: text.into(),
    })
}

pub fn delete(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    write_id(Command::UserDelete {
        caller: caller.clone(),
        id: p.int(1)?,
    })
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    answer(Payload::Doc(core.user_info(caller, p.int(1)?)?))
}

pub fn passwd(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, pass) = (p.int(1)?, p.string(2)?);
    write_id(Command::UserPasswd {
        caller: caller.clone(),
        id,
        password: pass.into(),
    })
}

pub fn chgrp(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, gid) = (p.int(1)?, p.int(2)?);
    write_id(Command::UserChgrp {
        caller: caller.clone(),
        id,
        gid,
    })
}

pub fn chauth(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, driver, pass) = (p.int(1)?, p.string(2)?, p.string(3)?);
    write_id(Command::UserChauth {
        caller: caller.clone(),
        id,
        driver: driver.into(),
        password: pass.into(),
    })
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, _p: &Params) -> HandlerResult {
    answer(Payload::Doc(core.userpool_info(caller)))
}
