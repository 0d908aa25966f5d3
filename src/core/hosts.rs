//! one.host.* operations and the monitoring results the host monitor feeds back.

use super::auth::Caller;
use super::authz::{AuthItem, ObjRef};
use super::command::Answer;
use super::messages::{AllocDetail, Denial, Refusal};
use super::{Change, Command, Core, Error, Result, Shared, State, Tx};
use crate::model::acl::Op;
use crate::model::host::{HostShare, HostState};
use crate::model::vm::VmState;
use crate::model::{now, Host, Kind, Oid, Permissions};
use crate::template::Template;

fn attributes_named<'a>(t: &'a Template, name: &str) -> Vec<&'a crate::template::Attribute> {
    t.attributes().iter().filter(|a| a.name() == name).collect()
}

/// The attributes that choose a host's driver endpoint (src/trust.rs): only the oneadmin group
/// may set, change or remove them (3.2's ACL gives every user MANAGE on hosts, and a libvirt
/// URI can run a program as root); what it sets must pass the site's allow-lists.
fn check_driver_attributes(
    caller: &Caller,
    id: Oid,
    old: &Template,
    new: &Template,
    settings: &crate::config::Settings,
) -> Result<()> {
    for name in crate::trust::host_restricted() {
        if attributes_named(old, name) == attributes_named(new, name) {
            continue;
        }
        if !caller.is_privileged() {
            return Err(Error::Authorization {
                uid: caller.uid,
                reasons: vec![Denial::NotAuthorizedOn {
                    op: "ADMIN",
                    kind: "HOST",
                    id,
                }],
            });
        }
    }
    if attributes_named(old, "LIBVIRT_URI") != attributes_named(new, "LIBVIRT_URI") {
        if let Some(uri) = new.get("LIBVIRT_URI").filter(|u| !u.is_empty()) {
            crate::trust::check_libvirt_uri(uri, &settings.libvirt_uri).map_err(|why| {
                Error::request(Refusal::LibvirtUriNotAllowed {
                    uri: uri.to_string(),
                    why: why.to_string(),
                })
            })?;
        }
    }
    if attributes_named(old, "DOMAIN_TYPE") != attributes_named(new, "DOMAIN_TYPE") {
        if let Some(t) = new.get("DOMAIN_TYPE").filter(|t| !t.is_empty()) {
            if !crate::trust::domain_type_allowed(t) {
                return Err(Error::request(Refusal::DomainTypeNotAllowed {
                    domain_type: t.to_string(),
                    allowed: crate::trust::DOMAIN_TYPES.join(", "),
                }));
            }
        }
    }
    Ok(())
}

/// Hosts belong to nobody in 3.2: oneadmin's group and ACL rules (`@1 HOST/* MANAGE`) reach them.
pub fn host_ref(id: Oid) -> ObjRef {
    ObjRef {
        oid: id,
        uid: -1,
        gid: -1,
        perms: Permissions::default(),
    }
}

/// The hosts `one.hostpool.info` shows the caller: those it may USE.
pub fn visible<'a>(state: &'a State, caller: &'a Caller) -> impl Iterator<Item = &'a Host> + 'a {
    let all = caller.is_privileged() || state.acl_grants_all(caller, Kind::Host, Op::Use);
    state.hosts.values().filter(move |host| {
        all || state.allows(
            caller,
            &AuthItem::on(Kind::Host, Op::Use, host_ref(host.id)),
        )
    })
}

pub fn get(state: &State, id: Oid) -> Result<&Host> {
    state.hosts.get(&id).ok_or(Error::NoExists {
        kind: Kind::Host,
        id,
    })
}

fn get_authorized<'a>(state: &'a State, caller: &Caller, id: Oid, op: Op) -> Result<&'a Host> {
    let host = get(state, id)?;
    state.authorize(caller, &[AuthItem::on(Kind::Host, op, host_ref(id))])?;
    Ok(host)
}

pub use crate::model::monitoring::MonitorResult;

impl Core {
    pub fn host_allocate(
        &self,
        caller: &Caller,
        name: &str,
        im: &str,
        vmm: &str,
        vnm: &str,
        tm: &str,
    ) -> Result<Oid> {
        self.execute(Command::HostAllocate {
            caller: caller.clone(),
            name: name.into(),
            im: im.into(),
            vmm: vmm.into(),
            vnm: vnm.into(),
            tm: tm.into(),
        })
        .and_then(Answer::id)
    }

    pub fn host_delete(&self, caller: &Caller, id: Oid) -> Result<Oid> {
        self.execute(Command::HostDelete {
            caller: caller.clone(),
            id,
        })
        .and_then(Answer::id)
    }

    pub fn host_info(&self, caller: &Caller, id: Oid) -> Result<String> {
        let state = self.read();
        let host = get_authorized(&state, caller, id, Op::Use)?;
        let mut out = String::with_capacity(1024);
        host.write_xml(&mut out);
        Ok(out)
    }

    pub fn host_update(&self, caller: &Caller, id: Oid, text: &str) -> Result<Oid> {
        self.execute(Command::HostUpdate {
            caller: caller.clone(),
            id,
            text: text.into(),
        })
        .and_then(Answer::id)
    }

    pub fn host_enable(&self, caller: &Caller, id: Oid, enable: bool) -> Result<Oid> {
        self.execute(Command::HostEnable {
            caller: caller.clone(),
            id,
            enable,
        })
        .and_then(Answer::id)
    }

    pub fn hostpool_info(&self, caller: &Caller) -> String {
        let state = self.read();
        let mut out = String::from("<HOST_POOL>");
        for host in visible(&state, caller) {
            host.write_xml(&mut out);
        }
        out.push_str("</HOST_POOL>");
        out
    }

    /// Records a monitoring pass. A host disabled or deleted meanwhile is left alone.
    pub fn host_monitored(&self, id: Oid, result: MonitorResult) -> Result<()> {
        self.execute(Command::HostMonitored { host: id, result })
            .and_then(Answer::done)
    }
}

/// VMs currently placed on a host (ACTIVE, or holding resources there).
pub fn vms_on_host(state: &State, hid: Oid) -> usize {
    state
        .vms
        .values()
        .filter(|vm| {
            matches!(vm.state, VmState::Active | VmState::Suspended)
                && vm.last_history().is_some_and(|h| h.hid == hid)
        })
        .count()
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_host_allocate(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        name: &str,
        im: &str,
        vmm: &str,
        vnm: &str,
        tm: &str,
    ) -> Result<Oid> {
        state.authorize(caller, &[AuthItem::create(Kind::Host)])?;
        let err = |d: AllocDetail| Err(Error::alloc(Kind::Host, d));
        if name.is_empty() {
            return err(AllocDetail::NameEmpty);
        }
        if name.len() > 128 {
            return err(AllocDetail::NameTooLong);
        }
        if im.is_empty() {
            return err(AllocDetail::ImMadEmpty);
        }
        if vmm.is_empty() {
            return err(AllocDetail::VmmMadEmpty);
        }
        if vnm.is_empty() {
            return err(AllocDetail::VnmMadEmpty);
        }
        if tm.is_empty() {
            return err(AllocDetail::TmMadEmpty);
        }
        if let Some(h) = state.hosts.values().find(|h| h.name == name) {
            return err(AllocDetail::NameTaken {
                kind: "HOST",
                id: h.id,
            });
        }
        // Host.cc names the object "Group" in this message (sic).
        Error::check_xml(Kind::Host, &[name, im, vmm, vnm, tm], None)?;
        let id = tx.alloc_id(state, Kind::Host);
        tx.put(Change::Host(Host {
            id,
            name: name.to_string(),
            state: HostState::Init,
            im_mad: im.to_string(),
            vm_mad: vmm.to_string(),
            vn_mad: vnm.to_string(),
            tm_mad: tm.to_string(),
            last_mon_time: 0,
            share: HostShare::default(),
            template: Template::new(),
        }));
        Ok(id)
    }

    pub(super) fn apply_host_delete(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
    ) -> Result<Oid> {
        let host = get_authorized(state, caller, id, Op::Admin)?;
        if host.share.running_vms > 0 || vms_on_host(state, id) > 0 {
            return Err(Error::request(Refusal::DeleteHostWithVms));
        }
        tx.delete(Kind::Host, id);
        Ok(id)
    }

    pub(super) fn apply_host_update(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        text: &str,
    ) -> Result<Oid> {
        let host = get_authorized(state, caller, id, Op::Manage)?;
        let mut tmpl = super::users::parse_update(text)?;
        check_driver_attributes(caller, id, &host.template, &tmpl, &self.settings)?;
        // Host templates keep the last copy of a repeated attribute.
        tmpl.keep_last_copies();
        let mut host = host.clone();
        host.template = tmpl;
        tx.put(Change::Host(host));
        Ok(id)
    }

    pub(super) fn apply_host_enable(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
        enable: bool,
    ) -> Result<Oid> {
        let host = get_authorized(state, caller, id, Op::Admin)?;
        let mut host = host.clone();
        if enable {
            if host.state == HostState::Disabled {
                host.state = HostState::Init;
            }
        } else {
            host.state = HostState::Disabled;
        }
        tx.put(Change::Host(host));
        Ok(id)
    }

    pub(super) fn apply_host_monitored(
        &self,
        state: &State,
        tx: &mut Tx,
        id: Oid,
        result: &MonitorResult,
    ) -> Result<()> {
        let result = result.clone();

        let Some(host) = state.hosts.get(&id) else {
            return Ok(());
        };
        if host.state == HostState::Disabled {
            return Ok(());
        }
        let mut host = host.clone();
        match result {
            MonitorResult::Ok(values) => {
                let num = |k: &str| {
                    values
                        .iter()
                        .find(|(n, _)| n == k)
                        .and_then(|(_, v)| v.trim().parse::<f64>().ok())
                        .map(|v| v as i64)
                        .unwrap_or(0)
                };
                host.share.max_cpu = num("TOTALCPU");
                host.share.max_mem = num("TOTALMEMORY");
                host.share.free_cpu = num("FREECPU");
                host.share.free_mem = num("FREEMEMORY");
                host.share.used_cpu = num("USEDCPU");
                host.share.used_mem = num("USEDMEMORY");
                let mut tmpl = host.template.clone();
                for (k, v) in values {
                    tmpl.set_single(&k, &v);
                }
                host.template = tmpl;
                host.state = HostState::Monitored;
                host.last_mon_time = now();
            }
            MonitorResult::Failed(reason) => {
                tracing::warn!(host = %host.name, %reason, "host monitoring failed");
                host.state = HostState::Error;
                // Its running VMs cannot be told apart from vanished ones until the host
                // answers again; the VM poll then finds them (RUNNING) or reports them.
                for vm in state.vms.values() {
                    let here = vm.last_history().is_some_and(|h| h.hid == id);
                    let target = super::transitions::next(
                        vm.state,
                        vm.lcm_state,
                        super::transitions::Trigger::HostError,
                    );
                    if let (true, Some(super::transitions::Target::To(s, l))) = (here, target) {
                        tracing::warn!(vm = vm.id, host = %host.name, "host in ERROR: VM state UNKNOWN until it answers");
                        let mut vm = vm.clone();
                        vm.state = s;
                        vm.lcm_state = l;
                        tx.put(Change::Vm(vm));
                    }
                }
            }
        }
        tx.put(Change::Host(host));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::MonitorResult;
    use crate::config::Settings;
    use crate::core::auth::Caller;
    use crate::core::lifecycle::{Polled, StepOutcome};
    use crate::core::Core;
    use crate::model::host::HostState;
    use crate::model::monitoring::PollResult;
    use crate::model::vm::{LcmState, VmState};
    use crate::model::Oid;
    use crate::store::Store;

    fn lcm(core: &Core, vm: Oid) -> LcmState {
        core.read().vms[&vm].lcm_state
    }

    fn running() -> PollResult {
        PollResult::Running {
            cpu: 1,
            memory_kib: 1024,
            net_tx: 0,
            net_rx: 0,
        }
    }

    /// A node whose libvirt does not answer: the host goes to ERROR and its running VMs to
    /// UNKNOWN, nothing else changes; when it answers again, the VMs found running are RUNNING
    /// again and the missing ones stay UNKNOWN.
    #[test]
    fn a_failed_node_makes_its_vms_unknown_until_it_answers() {
        let core = Core::open(Store::open_in_memory().unwrap(), Settings::default(), "pw").unwrap();
        let admin = Caller::oneadmin();
        let host = core
            .host_allocate(&admin, "node1", "im_kvm", "vmm_kvm", "dummy", "tm_dummy")
            .unwrap();
        let ok = |core: &Core| {
            let values = [
                ("TOTALCPU", "800"),
                ("FREECPU", "800"),
                ("TOTALMEMORY", "1048576"),
            ];
            let values = values.map(|(k, v)| (k.to_string(), v.to_string())).to_vec();
            core.host_monitored(host, MonitorResult::Ok(values))
                .unwrap();
        };
        ok(&core);
        let vms: Vec<Oid> = (0..2)
            .map(|_| {
                let vm = core.vm_allocate(&admin, "CPU = 1\nMEMORY = 64\n").unwrap();
                core.vm_deploy(&admin, vm, host).unwrap();
                for step in [LcmState::Prolog, LcmState::Boot] {
                    let done = StepOutcome::Ok {
                        deploy_id: Some(format!("one-{vm}")),
                    };
                    core.step_done(vm, (VmState::Active, step), done).unwrap();
                }
                assert_eq!(lcm(&core, vm), LcmState::Running);
                vm
            })
            .collect();
        let leases_before = core.read().vnets.len();
        core.host_monitored(host, MonitorResult::Failed("cannot reach node1".into()))
            .unwrap();
        assert_eq!(core.read().hosts[&host].state, HostState::Error);
        for vm in &vms {
            assert_eq!(lcm(&core, *vm), LcmState::Unknown);
            assert_eq!(core.read().vms[vm].state, VmState::Active);
        }
        ok(&core);
        let polls = vec![
            Polled {
                vm: vms[0],
                host,
                result: running(),
            },
            Polled {
                vm: vms[1],
                host,
                result: PollResult::Gone,
            },
        ];
        core.vms_polled(polls).unwrap();
        assert_eq!(lcm(&core, vms[0]), LcmState::Running);
        assert_eq!(lcm(&core, vms[1]), LcmState::Unknown);
        assert_eq!(core.read().vnets.len(), leases_before);
    }
}
