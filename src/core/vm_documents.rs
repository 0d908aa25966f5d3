//! Every VM's pool-listing entry (`<VM>…</VM>` with its last history record), rendered and
//! escaped for XML-RPC once, when the VM changes, instead of on every `one.vmpool.info`.
//!
//! The entries live in [`super::State`] and are replaced in `State::apply`, the one place every
//! VM change (API call, driver step, start-up load) goes through, so an entry can never be
//! older than its VM. A VM's document depends on its own fields only (owner and group names
//! are copied into the VM), so no other change can make an entry stale.
//!
//! The whole pool as a caller who sees every VM lists it (`one.vmpool.info(-2,-1,-1,-1)` or
//! `(-2,-1,-1,-2)` as oneadmin) is also kept joined into one piece, built by the first such
//! listing after a change and dropped by the next change: the listing is then one shared
//! buffer, written to the socket as it is, instead of a thousand pieces gathered into chunks
//! on every call. Only pools of at most [`JOINED_LIMIT`] bytes of entries are kept joined, so
//! that the copy costs a few MB at most (a 10,000-VM pool, 11 MB, is streamed from its pieces).

use crate::model::vm::VmState;
use crate::model::{Oid, Vm};
use crate::xmlrpc::EscapedFragment;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Pools whose entries take more than this are not kept joined (about 3,600 held VMs).
pub const JOINED_LIMIT: usize = 4 << 20;

#[derive(Debug, Default, Clone)]
pub struct VmDocuments {
    pool_entries: HashMap<Oid, EscapedFragment>,
    /// Bytes of all entries.
    total_len: usize,
    /// The joined listings: `[0]` every VM but the DONE ones, `[1]` every VM.
    joined: [OnceLock<EscapedFragment>; 2],
}

/// The VM as `one.vmpool.info` lists it, escaped.
pub fn render_pool_entry(vm: &Vm) -> EscapedFragment {
    let mut xml = String::with_capacity(1024);
    vm.write_xml(&mut xml, false);
    EscapedFragment::escape(&xml)
}

impl VmDocuments {
    pub fn update(&mut self, vm: &Vm) {
        let entry = render_pool_entry(vm);
        self.total_len += entry.len();
        if let Some(old) = self.pool_entries.insert(vm.id, entry) {
            self.total_len -= old.len();
        }
        self.joined = Default::default();
    }

    pub fn remove(&mut self, id: Oid) {
        if let Some(old) = self.pool_entries.remove(&id) {
            self.total_len -= old.len();
        }
        self.joined = Default::default();
    }

    /// The entries of `pool` (every VM, in id order), joined into one piece: all of them
    /// with `with_done`, else all but the DONE ones. `None` when the entries take more than
    /// [`JOINED_LIMIT`]; the caller then lists the pieces.
    pub fn whole_pool<'a>(
        &self,
        with_done: bool,
        pool: impl Iterator<Item = &'a Vm>,
    ) -> Option<&EscapedFragment> {
        if self.total_len > JOINED_LIMIT {
            return None;
        }
        Some(self.joined[usize::from(with_done)].get_or_init(|| {
            let entries: Vec<EscapedFragment> = pool
                .filter(|vm| with_done || vm.state != VmState::Done)
                .map(|vm| match self.pool_entry(vm.id) {
                    Some(entry) => entry.clone(),
                    // Unreachable while every change goes through `State::apply`.
                    None => render_pool_entry(vm),
                })
                .collect();
            EscapedFragment::join(&entries)
        }))
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
        // The whole pool is listed from its joined piece; the same listing through a range
        // (from id 0, which filters nothing) is gathered from the entries: the same bytes.
        for vm_state in [-2, -1] {
            let whole = core
                .vmpool_info(&Caller::oneadmin(), -2, -1, -1, vm_state)
                .unwrap();
            let ranged = core
                .vmpool_info(&Caller::oneadmin(), -2, 0, -1, vm_state)
                .unwrap();
            assert_eq!(whole.to_text(), ranged.to_text(), "state filter {vm_state}");
        }
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
        // A small pool is kept joined, with and without its DONE VM.
        let state = core.read();
        for with_done in [true, false] {
            let whole = state
                .vm_documents()
                .whole_pool(with_done, state.vms.values());
            assert!(whole.is_some());
        }
    }

    #[test]
    fn a_pool_past_the_limit_is_listed_from_its_pieces() {
        let core = core();
        allocate(&core, "small");
        let note = "x".repeat(super::JOINED_LIMIT);
        core.vm_allocate(
            &Caller::oneadmin(),
            &format!("NAME = \"big\"\nNOTE = \"{note}\"\nCPU = 1\nMEMORY = 256\n"),
        )
        .unwrap();
        let state = core.read();
        assert!(state
            .vm_documents()
            .whole_pool(true, state.vms.values())
            .is_none());
        drop(state);
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
