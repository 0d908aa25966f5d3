//! one.group.* and one.grouppool.info.

use super::{answer, write_id, HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Command;
use crate::core::Core;
use std::sync::Arc;

pub fn allocate(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    write_id(Command::GroupAllocate {
        caller: caller.clone(),
        name: p.string(1)?.into(),
    })
}

pub fn delete(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    write_id(Command::GroupDelete {
        caller: caller.clone(),
        id: p.int(1)?,
    })
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    answer(Payload::Doc(core.group_info(caller, p.int(1)?)?))
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, _p: &Params) -> HandlerResult {
    answer(Payload::Doc(core.grouppool_info(caller)))
}
