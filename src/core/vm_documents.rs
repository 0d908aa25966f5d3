//! Every VM's pool-listing entry (`<VM>…</VM>` with its last history record), rendered and
//! escaped for XML-RPC once, when the VM changes, instead of on every `one.vmpool.info`.
//!
//! The entries live in [`super::State`] and are replaced in `State::apply`, the one place every
//! VM change (API call, driver step, start-up load) goes through, so an entry can never be
//! older than its VM. A VM's document depends on its own fields only (owner and group names
//! are copied into the VM), so no other change can make an entry stale.

use crate::model::{Oid, Vm};
use crate::xmlrpc::EscapedFragment;
use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct VmDocuments {
    pool_entries: HashMap<Oid, EscapedFragment>,
}

/// The VM as `one.vmpool.info` lists it, escaped.
pub fn render_pool_entry(vm: &Vm) -> EscapedFragment {
    let mut xml = String::with_capacity(1024);
    vm.write_xml(&mut xml, false);
    EscapedFragment::escape(&xml)
}

impl VmDocuments {
    pub fn update(&mut self, vm: &Vm) {
        self.pool_entries.insert(vm.id, render_pool_entry(vm));
    }

    pub fn remove(&mut self, id: Oid) {
        self.pool_entries.remove(&id);
    }

    /// The escaped pool entry of VM `id`.
    pub fn pool_entry(&self, id: Oid) -> Option<&EscapedFragment> {
        self.pool_entries.get(&id)
    }

    /// The escaped `one.vm.info` document, when it is the pool entry: 3.2 lists every
    /// history record in `one.vm.info` and only the last in pools, so the two are the same
    /// for a VM with at most one record.
    pub fn info_document(&self, vm: &Vm) -> Option<&EscapedFragment> {
        if vm.history.len() > 1 {
            return None;
        }
        self.pool_entry(vm.id)
    }

    pub fn len(&self) -> usize {
        self.pool_entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pool_entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::render_pool_entry;
    use crate::config::Settings;
    use crate::core::auth::Caller;
    use crate::core::lifecycle::StepOutcome;
    use crate::core::{Change, Core, State};
    use crate::model::vm::{LcmState, VmState};
    use crate::model::{Kind, Vm};
    use crate::store::Store;

    fn core() -> Core {
        let settings = Settings {
            data_dir: std::env::temp_dir().join("stratusd-vm-documents-test"),
            ..Settings::default()
        };
        Core::open(Store::open_in_memory().unwrap(), settings, "password").unwrap()
    }

    /// Every cached entry is what rendering the VM now gives, and the answers built from the
    /// cache are the documents rendered from scratch.
    fn assert_documents_current(core: &Core) {
        let state = core.read();
        assert_eq!(state.vm_documents().len(), state.vms.len());
        let mut pool = String::from("<VM_POOL>");
        for vm in state.vms.values() {
            assert_eq!(
                state.vm_documents().pool_entry(vm.id),
                Some(&render_pool_entry(vm)),
                "entry of VM {}",
                vm.id
            );
            vm.write_xml(&mut pool, false);
        }
        pool.push_str("</VM_POOL>");
        let ids: Vec<i32> = state.vms.keys().copied().collect();
        drop(state);
        let listed = core
            .vmpool_info(&Caller::oneadmin(), -2, -1, -1, -2)
            .unwrap();
        assert_eq!(listed.to_text(), pool);
        for id in ids {
            let mut full = String::new();
            core.read().vms[&id].write_xml(&mut full, true);
            assert_eq!(
                core.vm_info(&Caller::oneadmin(), id).unwrap().to_text(),
                full
            );
        }
    }

    fn allocate(core: &Core, name: &str) -> i32 {
        core.vm_allocate(
            &Caller::oneadmin(),
            &format!("NAME = \"{name}\"\nCPU = 1\nMEMORY = 256\n"),
        )
        .unwrap()
    }

    #[test]
    fn cached_entries_follow_every_change_of_a_vm() {
        let core = core();
        let plain = allocate(&core, "plain");
        // Characters the XML-RPC encoding escapes, in the name and the template (3.2 refuses
        // `&` and `<` in a NAME, which it wrote raw).
        let odd = core
            .vm_allocate(
                &Caller::oneadmin(),
                "NAME = \"a>b d\"\nNOTE = \"a&b <c> d\r\"\nCPU = 1\nMEMORY = 256\n",
            )
            .unwrap();
        let moved = allocate(&core, "moved");
        assert_documents_current(&core);

        core.vm_action(&Caller::oneadmin(), "hold", plain).unwrap();
        core.chmod::<Vm>(&Caller::oneadmin(), odd, [1, 1, 1, 1, -1, -1, 1, -1, -1])
            .unwrap();
        let uid = core
            .user_allocate(&Caller::oneadmin(), "bob", "secret", "core")
            .unwrap();
        core.chown::<Vm>(&Caller::oneadmin(), odd, uid, 1).unwrap();
        assert_documents_current(&core);

        let h0 = core
            .host_allocate(
                &Caller::oneadmin(),
                "h0",
                "im_dummy",
                "vmm_dummy",
                "dummy",
                "tm_dummy",
            )
            .unwrap();
        let h1 = core
            .host_allocate(
                &Caller::oneadmin(),
                "h1",
                "im_dummy",
                "vmm_dummy",
                "dummy",
                "tm_dummy",
            )
            .unwrap();
        core.vm_deploy(&Caller::oneadmin(), moved, h0).unwrap();
        for from in [LcmState::Prolog, LcmState::Boot] {
            let ok = StepOutcome::Ok { deploy_id: None };
            core.step_done(moved, (VmState::Active, from), ok).unwrap();
        }
        assert_documents_current(&core);
        // Two history records: one.vm.info lists both, the pool only the last.
        core.vm_migrate(&Caller::oneadmin(), moved, h1, true)
            .unwrap();
        assert_documents_current(&core);
        let pool = core
            .vmpool_info(&Caller::oneadmin(), -2, moved, moved, -2)
            .unwrap();
        assert_eq!(pool.to_text().matches("<HISTORY>").count(), 1);
        let info = core.vm_info(&Caller::oneadmin(), moved).unwrap();
        assert_eq!(info.to_text().matches("<HISTORY>").count(), 2);

        core.vm_action(&Caller::oneadmin(), "finalize", plain)
            .unwrap();
        assert_documents_current(&core);
    }

    #[test]
    fn entries_are_made_on_load_and_dropped_with_their_vm() {
        let dir = std::env::temp_dir().join(format!("stratusd-vmdoc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("stratusd.db");
        let settings = Settings {
            data_dir: dir.clone(),
            ..Settings::default()
        };
        let first = Core::open(Store::open(&db).unwrap(), settings.clone(), "password").unwrap();
        let a = allocate(&first, "a");
        let b = allocate(&first, "b");
        first.vm_action(&Caller::oneadmin(), "hold", b).unwrap();
        drop(first);

        let reopened = Core::open(Store::open(&db).unwrap(), settings, "password").unwrap();
        assert_documents_current(&reopened);

        let mut state: State = reopened.read().clone();
        state.apply(Change::Delete(Kind::Vm, a));
        assert!(state.vm_documents().pool_entry(a).is_none());
        assert!(state.vm_documents().pool_entry(b).is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
