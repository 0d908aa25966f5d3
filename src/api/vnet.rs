//! one.vn.* and one.vnpool.info.

use super::{answer, write_id, HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::vnets::LeaseOp;
use crate::core::Command;
use crate::core::Core;
use crate::model::Kind;
use std::sync::Arc;

pub fn allocate(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    write_id(Command::vn_allocate(caller, p.string(1)?)?)
}

fn leases(_core: &Arc<Core>, caller: &Caller, p: &Params, op: LeaseOp) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    write_id(Command::VnLeases {
        caller: caller.clone(),
        id,
        text: text.into(),
        op,
    })
}

pub fn addleases(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    leases(core, caller, p, LeaseOp::Add)
}

pub fn rmleases(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    leases(core, caller, p, LeaseOp::Remove)
}

pub fn hold(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    leases(core, caller, p, LeaseOp::Hold)
}

pub fn release(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    leases(core, caller, p, LeaseOp::Release)
}

pub fn update(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    write_id(Command::VnUpdate {
        caller: caller.clone(),
        id,
        text: text.into(),
    })
}

pub fn delete(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    write_id(Command::VnDelete {
        caller: caller.clone(),
        id: p.int(1)?,
    })
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    answer(Payload::Doc(core.vn_info(caller, p.int(1)?)?))
}

pub fn chown(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, uid, gid) = (p.int(1)?, p.int(2)?, p.int(3)?);
    write_id(Command::Chown {
        caller: caller.clone(),
        kind: Kind::Net,
        id,
        uid,
        gid,
    })
}

pub fn chmod(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, bits) = (p.int(1)?, p.perms(2)?);
    write_id(Command::Chmod {
        caller: caller.clone(),
        kind: Kind::Net,
        id,
        bits,
    })
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    // 3.2 reads filter, start and end; StratusLab's unused getNetworkPoolInfo sends only the
    // filter, which 3.2 answers with a fault like any missing parameter.
    let (flag, start, end) = (p.int(1)?, p.int(2)?, p.int(3)?);
    answer(Payload::Doc(core.vnpool_info(caller, flag, start, end)?))
}
