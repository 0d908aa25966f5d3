//! The sizes of the disks each VM's prolog made (stratusd-only): recorded when the transfer
//! step ends, read by `stratusd accounting` through `stratusd.vmpool.disks`. The 3.2 VM
//! document has no size for a Marketplace or pdisk disk, and must not change, so the sizes
//! live beside it.

use super::auth::Caller;
use super::{owned, Change, Command, Core, Result, Shared, State, Tx};
use crate::model::vm::{DiskSize, VmState};
use crate::model::xml::{elem, elem_num};
use crate::model::{Oid, Vm};

impl Core {
    /// Records the disks the prolog of VM `id` made (replacing an earlier prolog's). A VM gone
    /// meanwhile, or already DONE, is left alone.
    pub fn vm_disks_sized(&self, id: Oid, disks: Vec<DiskSize>) -> Result<()> {
        self.execute(Command::VmDisksSized { vm: id, disks })?
            .done()
    }

    /// `stratusd.vmpool.disks(session, flag, start, end)`: the recorded disks of the VMs the
    /// caller may list with `one.vmpool.info(flag, start, end, -2)` (the same filter and
    /// authorization), in any state; VMs without a record are left out.
    ///
    /// `<VM_DISKS><VM><ID/><DISK><DISK_ID/><KIND/><BYTES/></DISK>…</VM>…</VM_DISKS>`
    pub fn vmpool_disks(&self, caller: &Caller, flag: i32, start: i32, end: i32) -> Result<String> {
        let state = self.read();
        let mut out = String::from("<VM_DISKS>");
        for vm in owned::filter::<Vm>(&state, caller, flag, start, end)? {
            let Some(disks) = &vm.disk_sizes else {
                continue;
            };
            out.push_str("<VM>");
            elem_num(&mut out, "ID", vm.id);
            for d in disks {
                out.push_str("<DISK>");
                elem_num(&mut out, "DISK_ID", d.disk_id);
                elem(&mut out, "KIND", &d.kind);
                elem_num(&mut out, "BYTES", d.bytes);
                out.push_str("</DISK>");
            }
            out.push_str("</VM>");
        }
        out.push_str("</VM_DISKS>");
        Ok(out)
    }
}

impl Shared {
    /// [`Command::VmDisksSized`].
    pub(super) fn apply_vm_disks_sized(
        &self,
        state: &State,
        tx: &mut Tx,
        id: Oid,
        disks: &[DiskSize],
    ) -> Result<()> {
        let Some(vm) = state.vms.get(&id) else {
            return Ok(());
        };
        if vm.state == VmState::Done || vm.disk_sizes.as_deref() == Some(disks) {
            return Ok(());
        }
        let mut vm = vm.clone();
        vm.disk_sizes = Some(disks.to_vec());
        tx.put(Change::Vm(vm));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;
    use crate::core::auth::Caller;
    use crate::core::Core;
    use crate::model::vm::DiskSize;
    use crate::store::Store;

    fn disk(id: usize, kind: &str, bytes: u64) -> DiskSize {
        DiskSize {
            disk_id: id,
            kind: kind.into(),
            bytes,
        }
    }

    /// Each user sees the sizes of the VMs `one.vmpool.info` shows them, nobody else's; the
    /// sizes survive a restart (they are part of the VM's row) and leave the 3.2 document as
    /// it was.
    #[test]
    fn sizes_are_recorded_and_shown_to_whom_may_list_the_vm() {
        let dir = std::env::temp_dir().join(format!("disk-usage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("one.db");
        let settings = Settings {
            data_dir: dir.clone(),
            ..Settings::default()
        };
        let core = Core::open(Store::open(&db).unwrap(), settings.clone(), "pw").unwrap();
        let admin = Caller::oneadmin();
        let alice = core.user_allocate(&admin, "alice", "pw", "core").unwrap();
        let bob = core.user_allocate(&admin, "bob", "pw", "core").unwrap();
        let (a, b) = (
            core.authenticate("alice:pw").unwrap(),
            core.authenticate("bob:pw").unwrap(),
        );
        assert_eq!((a.uid, b.uid), (alice, bob));
        let vm_a = core.vm_allocate(&a, "MEMORY=64\nCPU=1").unwrap();
        let vm_b = core.vm_allocate(&b, "MEMORY=64\nCPU=1").unwrap();
        let doc_before = core.vm_info(&admin, vm_a).unwrap().to_text();
        core.vm_disks_sized(
            vm_a,
            vec![disk(0, "snapshot", 10 << 30), disk(1, "swap", 512 << 20)],
        )
        .unwrap();
        core.vm_disks_sized(vm_b, vec![disk(0, "pdisk", 3 << 30)])
            .unwrap();
        assert_eq!(core.vm_info(&admin, vm_a).unwrap().to_text(), doc_before);

        let mine = core.vmpool_disks(&a, -2, -1, -1).unwrap();
        assert_eq!(
            mine,
            format!(
                "<VM_DISKS><VM><ID>{vm_a}</ID><DISK><DISK_ID>0</DISK_ID><KIND>snapshot</KIND><BYTES>{}</BYTES></DISK><DISK><DISK_ID>1</DISK_ID><KIND>swap</KIND><BYTES>{}</BYTES></DISK></VM></VM_DISKS>",
                10u64 << 30,
                512u64 << 20
            )
        );
        // Bob asking for Alice's VMs by her id, or by range: nothing of hers.
        assert_eq!(
            core.vmpool_disks(&b, alice, -1, -1).unwrap(),
            "<VM_DISKS></VM_DISKS>"
        );
        assert!(!core
            .vmpool_disks(&b, -2, vm_a, vm_a)
            .unwrap()
            .contains("<VM>"));
        // oneadmin sees both; a range narrows it.
        let all = core.vmpool_disks(&admin, -2, -1, -1).unwrap();
        assert_eq!(all.matches("<VM>").count(), 2);
        assert_eq!(
            core.vmpool_disks(&admin, -2, vm_b, vm_b)
                .unwrap()
                .matches("<VM>")
                .count(),
            1
        );
        // A bad filter is refused as one.vmpool.info refuses it.
        assert!(core.vmpool_disks(&admin, -4, -1, -1).is_err());
        drop(core);

        let core = Core::open(Store::open(&db).unwrap(), settings, "pw").unwrap();
        assert_eq!(core.vmpool_disks(&admin, -2, -1, -1).unwrap(), all);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
