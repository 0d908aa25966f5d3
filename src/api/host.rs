//! one.host.* and one.hostpool.info.

use super::{answer, write_id, HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Command;
use crate::core::Core;
use std::sync::Arc;

pub fn allocate(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    // StratusLab sends a 7th boolean (inDomain); 3.2 reads five strings after the session.
    let (name, im, vmm, vnm, tm) = (
        p.string(1)?,
        p.string(2)?,
        p.string(3)?,
        p.string(4)?,
        p.string(5)?,
    );
    write_id(Command::HostAllocate {
        caller: caller.clone(),
        name: name.into(),
        im: im.into(),
        vmm: vmm.into(),
        vnm: vnm.into(),
        tm: tm.into(),
    })
}

pub fn delete(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    write_id(Command::HostDelete {
        caller: caller.clone(),
        id: p.int(1)?,
    })
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    answer(Payload::Doc(core.host_info(caller, p.int(1)?)?))
}

pub fn update(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    write_id(Command::HostUpdate {
        caller: caller.clone(),
        id,
        text: text.into(),
    })
}

pub fn enable(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, on) = (p.int(1)?, p.bool(2)?);
    write_id(Command::HostEnable {
        caller: caller.clone(),
        id,
        enable: on,
    })
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, _p: &Params) -> HandlerResult {
    answer(Payload::Doc(core.hostpool_info(caller)))
}
