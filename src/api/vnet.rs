//! one.vn.* and one.vnpool.info.

use super::{HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::vnets::LeaseOp;
use crate::core::Core;
use crate::model::VNet;
use std::sync::Arc;

pub fn allocate(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Int(core.vn_allocate(caller, p.string(1)?)?))
}

fn leases(core: &Arc<Core>, caller: &Caller, p: &Params, op: LeaseOp) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    Ok(Payload::Int(core.vn_leases(caller, id, text, op)?))
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

pub fn update(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, text) = (p.int(1)?, p.string(2)?);
    Ok(Payload::Int(core.vn_update(caller, id, text)?))
}

pub fn delete(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Int(core.vn_delete(caller, p.int(1)?)?))
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Doc(core.vn_info(caller, p.int(1)?)?))
}

pub fn chown(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, uid, gid) = (p.int(1)?, p.int(2)?, p.int(3)?);
    Ok(Payload::Int(core.chown::<VNet>(caller, id, uid, gid)?))
}

pub fn chmod(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, bits) = (p.int(1)?, p.perms(2)?);
    Ok(Payload::Int(core.chmod::<VNet>(caller, id, bits)?))
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    // 3.2 reads filter, start and end; StratusLab's unused getNetworkPoolInfo sends only the
    // filter, which 3.2 answers with a fault like any missing parameter.
    let (flag, start, end) = (p.int(1)?, p.int(2)?, p.int(3)?);
    Ok(Payload::Doc(core.vnpool_info(caller, flag, start, end)?))
}
