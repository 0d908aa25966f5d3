//! one.vm.* and one.vmpool.info.

use super::{answer, write, write_id, HandlerResult, Params, Payload};
use crate::core::auth::Caller;
use crate::core::vms;
use crate::core::Command;
use crate::core::Core;
use crate::model::Kind;
use std::sync::Arc;

pub fn allocate(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let command = Command::vm_allocate(caller, p.string(1)?)?;
    let caller = caller.clone();
    write(command, move |_, answer| {
        Ok(Payload::Int(vms::vm_allocated(&caller, answer)?))
    })
}

pub fn deploy(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, hid) = (p.int(1)?, p.int(2)?);
    write_id(Command::VmDeploy {
        caller: caller.clone(),
        vm: id,
        host: hid,
    })
}

pub fn action(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    // Note the order: action name first, then the VM id.
    let (action, id) = (p.string(1)?, p.int(2)?);
    write_id(Command::VmAction {
        caller: caller.clone(),
        action: action.into(),
        vm: id,
    })
}

pub fn migrate(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, hid, live) = (p.int(1)?, p.int(2)?, p.bool(3)?);
    write_id(Command::VmMigrate {
        caller: caller.clone(),
        vm: id,
        host: hid,
        live,
    })
}

pub fn savedisk(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, disk, name, itype) = (p.int(1)?, p.int(2)?, p.string(3)?, p.string(4)?);
    write_id(Command::VmSaveDisk {
        caller: caller.clone(),
        vm: id,
        disk,
        name: name.into(),
        image_type: itype.into(),
    })
}

pub fn info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    answer(Payload::Escaped(core.vm_info(caller, p.int(1)?)?))
}

pub fn chown(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, uid, gid) = (p.int(1)?, p.int(2)?, p.int(3)?);
    write_id(Command::Chown {
        caller: caller.clone(),
        kind: Kind::Vm,
        id,
        uid,
        gid,
    })
}

pub fn chmod(_core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (id, bits) = (p.int(1)?, p.perms(2)?);
    write_id(Command::Chmod {
        caller: caller.clone(),
        kind: Kind::Vm,
        id,
        bits,
    })
}

/// `stratusd.vmpool.disks(session, flag, start, end)` (stratusd-only): the disk sizes the VMs'
/// prologs recorded, for accounting.
pub fn pool_disks(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (flag, start, end) = (p.int(1)?, p.int(2)?, p.int(3)?);
    answer(Payload::Doc(core.vmpool_disks(caller, flag, start, end)?))
}

pub fn pool_info(core: &Arc<Core>, caller: &Caller, p: &Params) -> HandlerResult {
    let (flag, start, end, state) = (p.int(1)?, p.int(2)?, p.int(3)?, p.int(4)?);
    answer(Payload::Escaped(
        core.vmpool_info(caller, flag, start, end, state)?,
    ))
}
