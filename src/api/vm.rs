//! one.vm.* and one.vmpool.info.

use super::{HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::Core;
use crate::model::Vm;
use std::sync::Arc;

pub fn allocate(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Int(core.vm_allocate(caller, p.string(1)?)?))
}

pub fn deploy(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, hid) = (p.int(1)?, p.int(2)?);
    Ok(Payload::Int(core.vm_deploy(caller, id, hid)?))
}

pub fn action(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    // Note the order: action name first, then the VM id.
    let (action, id) = (p.string(1)?, p.int(2)?);
    Ok(Payload::Int(core.vm_action(caller, action, id)?))
}

pub fn migrate(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, hid, live) = (p.int(1)?, p.int(2)?, p.bool(3)?);
    Ok(Payload::Int(core.vm_migrate(caller, id, hid, live)?))
}

pub fn savedisk(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, disk, name, itype) = (p.int(1)?, p.int(2)?, p.string(3)?, p.string(4)?);
    Ok(Payload::Int(
        core.vm_savedisk(caller, id, disk, name, itype)?,
    ))
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    Ok(Payload::Escaped(core.vm_info(caller, p.int(1)?)?))
}

pub fn chown(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, uid, gid) = (p.int(1)?, p.int(2)?, p.int(3)?);
    Ok(Payload::Int(core.chown::<Vm>(caller, id, uid, gid)?))
}

pub fn chmod(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, bits) = (p.int(1)?, p.perms(2)?);
    Ok(Payload::Int(core.chmod::<Vm>(caller, id, bits)?))
}

/// `stratusd.vmpool.disks(session, flag, start, end)` (stratusd-only): the disk sizes the VMs'
/// prologs recorded, for accounting.
pub fn pool_disks(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (flag, start, end) = (p.int(1)?, p.int(2)?, p.int(3)?);
    Ok(Payload::Doc(core.vmpool_disks(caller, flag, start, end)?))
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (flag, start, end, state) = (p.int(1)?, p.int(2)?, p.int(3)?, p.int(4)?);
    Ok(Payload::Escaped(
        core.vmpool_info(caller, flag, start, end, state)?,
    ))
}
