//! The built-in scheduler (mm_sched's semantics): PENDING VMs are matched against enabled,
//! monitored hosts by REQUIREMENTS, ACLs and free capacity, ordered by RANK, and deployed.

pub mod expr;

use crate::core::auth::Caller;
use crate::core::authz::AuthItem;
use crate::core::{Core, State};
use crate::model::acl::Op;
use crate::model::host::HostState;
use crate::model::vm::VmState;
use crate::model::{Host, Kind, Oid, Vm};
use crate::workers::changes::ChangeFeed;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// mm_sched's default policy ("striping").
pub const DEFAULT_RANK: &str = "- RUNNING_VMS";

/// Per-pass limits of mm_sched (`MAX_VM`, `MAX_DISPATCH`, `MAX_HOST`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_vm: usize,
    pub max_dispatch: usize,
    pub max_host: usize,
}

impl Limits {
    /// oned's defaults, used with an oned-like interval.
    pub const ONED: Limits = Limits {
        max_vm: 300,
        max_dispatch: 30,
        max_host: 1,
    };
    /// Immediate mode places everything that fits at once.
    pub const IMMEDIATE: Limits = Limits {
        max_vm: usize::MAX,
        max_dispatch: usize::MAX,
        max_host: usize::MAX,
    };
}

fn free(host: &Host, planned: &(i64, i64)) -> (i64, i64) {
    (
        host.share.max_cpu - host.share.cpu_usage - planned.0,
        host.share.max_mem - host.share.mem_usage - planned.1,
    )
}

/// One scheduling pass over a read view, for every PENDING VM; returns the placements to make.
pub fn plan(state: &State, limits: Limits) -> Vec<(Oid, Oid)> {
    plan_for(state, state.vms.values(), limits)
}

/// One scheduling pass for the PENDING VMs among `candidates` (in id order, as mm_sched takes
/// them); returns the placements to make.
pub fn plan_for<'a>(
    state: &'a State,
    candidates: impl Iterator<Item = &'a Vm>,
    limits: Limits,
) -> Vec<(Oid, Oid)> {
    let hosts: Vec<&Host> = state
        .hosts
        .values()
        .filter(|h| {
            matches!(
                h.state,
                HostState::Init | HostState::Monitoring | HostState::Monitored
            )
        })
        .collect();
    if hosts.is_empty() {
        return Vec::new();
    }
    let mut planned: HashMap<Oid, (i64, i64)> = HashMap::new();
    let mut per_host: HashMap<Oid, usize> = HashMap::new();
    let mut out = Vec::new();
    let pending = candidates
        .filter(|v| v.state == VmState::Pending)
        .take(limits.max_vm);
    for vm in pending {
        if out.len() >= limits.max_dispatch {
            break;
        }
        if let Some(hid) = choose_host(state, vm, &hosts, &planned, &per_host, limits) {
            let p = planned.entry(hid).or_default();
            p.0 += (vm.template_cpu() * 100.0) as i64;
            p.1 += vm.template_memory() * 1024;
            *per_host.entry(hid).or_default() += 1;
            out.push((vm.id, hid));
        }
    }
    out
}

fn choose_host(
    state: &State,
    vm: &Vm,
    hosts: &[&Host],
    planned: &HashMap<Oid, (i64, i64)>,
    per_host: &HashMap<Oid, usize>,
    limits: Limits,
) -> Option<Oid> {
    let requirements = match vm.template.get("REQUIREMENTS") {
        Some(text) => match expr::parse_requirements(text) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::debug!(vm = vm.id, error = %e, "REQUIREMENTS do not parse; the VM cannot be placed");
                return None;
            }
        },
        None => None,
    };
    // Without a RANK, mm_sched's default policy is striping: least loaded host first.
    let rank = expr::parse_rank(vm.template.get("RANK").unwrap_or(DEFAULT_RANK)).ok();
    let owner = Caller {
        uid: vm.uid,
        gid: vm.gid,
        name: vm.uname.clone(),
    };
    let cpu = (vm.template_cpu() * 100.0) as i64;
    let mem = vm.template_memory() * 1024;
    let mut best: Option<(f64, Oid)> = None;
    for host in hosts {
        if per_host.get(&host.id).copied().unwrap_or(0) >= limits.max_host {
            continue;
        }
        let (free_cpu, free_mem) = free(host, planned.get(&host.id).unwrap_or(&(0, 0)));
        if free_cpu < cpu || free_mem < mem || host.share.max_cpu == 0 {
            continue;
        }
        if !state.allows(
            &owner,
            &AuthItem::on(
                Kind::Host,
                Op::Manage,
                crate::core::hosts::host_ref(host.id),
            ),
        ) {
            continue;
        }
        // Placements already planned in this pass count as running there.
        let planned_vms = per_host.get(&host.id).copied().unwrap_or(0) as i64;
        let lookup = |name: &str| match name {
            "RUNNING_VMS" => Some((host.share.running_vms + planned_vms).to_string()),
            _ => host.attribute(name),
        };
        if let Some(req) = &requirements {
            if !req.matches(&lookup) {
                continue;
            }
        }
        // 3.2 ranks hosts by the integer value of the expression.
        let score = rank
            .as_ref()
            .map(|r| r.eval_int(&lookup) as f64)
            .unwrap_or(0.0);
        // Higher rank wins; on a tie the lower host id, as the host pool is walked in order.
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, host.id));
        }
    }
    best.map(|(_, id)| id)
}

/// In immediate mode, how often VMs still waiting for room are tried again when hosts change
/// (every placement changes a host; retrying a long queue on each would be quadratic).
const WAITING_RETRY: Duration = Duration::from_secs(1);

/// Runs the scheduler: every `interval` seconds like mm_sched, or (interval 0) whenever a VM
/// or host changes.
pub fn spawn(core: Arc<Core>) {
    let interval = core.settings.sched_interval;
    if interval > 0.0 {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs_f64(interval)).await;
                let placements = plan(&core.read(), Limits::ONED);
                deploy(&core, placements).await;
            }
        });
    } else {
        tokio::spawn(immediate(core));
    }
}

/// Immediate mode: a VM that becomes PENDING is placed in the next pass; VMs that did not fit
/// wait until a host changes (at most one retry per [`WAITING_RETRY`]).
async fn immediate(core: Arc<Core>) {
    let mut feed = ChangeFeed::subscribe(&core);
    let mut waiting: BTreeSet<Oid> = BTreeSet::new();
    let mut hosts_changed = false;
    let mut last_retry: Option<Instant> = None;
    loop {
        let retry_in = |last: Option<Instant>| {
            last.map_or(Duration::ZERO, |t| {
                WAITING_RETRY.saturating_sub(t.elapsed())
            })
        };
        let timeout = (hosts_changed && !waiting.is_empty()).then(|| retry_in(last_retry));
        let Some(changes) = feed.next(timeout).await else {
            return;
        };
        hosts_changed |= changes.hosts;
        let mut candidates: BTreeSet<Oid> = changes.vms;
        let retry_due = retry_in(last_retry).is_zero();
        if hosts_changed && !waiting.is_empty() && !retry_due && !changes.everything {
            // Room may have appeared for VMs that wait; they come first (id order), so new
            // ones wait with them until the retry.
            waiting.extend(candidates);
            continue;
        }
        let retry = changes.everything || (hosts_changed && !waiting.is_empty());
        if retry {
            candidates.extend(waiting.iter().copied());
            hosts_changed = false;
            last_retry = Some(Instant::now());
        }
        let placements = {
            let state = core.read();
            if changes.everything {
                candidates.extend(
                    state
                        .vms
                        .values()
                        .filter(|v| v.state == VmState::Pending)
                        .map(|v| v.id),
                );
            }
            plan_for(
                &state,
                candidates.iter().filter_map(|id| state.vms.get(id)),
                Limits::IMMEDIATE,
            )
        };
        deploy(&core, placements).await;
        // What is still PENDING after this pass waits for room.
        let state = core.read();
        for id in candidates {
            if state
                .vms
                .get(&id)
                .is_some_and(|v| v.state == VmState::Pending)
            {
                waiting.insert(id);
            } else {
                waiting.remove(&id);
            }
        }
    }
}

async fn deploy(core: &Arc<Core>, placements: Vec<(Oid, Oid)>) {
    if placements.is_empty() {
        return;
    }
    let core = Arc::clone(core);
    let done = tokio::task::spawn_blocking(move || {
        for (vid, hid) in placements {
            if let Err(e) = core.sched_deploy(vid, hid) {
                tracing::warn!(vm = vid, host = hid, error = %e, "scheduler could not deploy");
            }
        }
    })
    .await;
    if let Err(e) = done {
        tracing::error!(error = %e, "scheduler pass panicked");
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;
    use crate::core::auth::Caller;
    use crate::core::hosts::MonitorResult;
    use crate::core::Core;
    use crate::model::vm::VmState;
    use crate::model::Oid;
    use crate::store::Store;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A host monitored as oned's dummy IM driver reports: 800 CPU shares, room for 8 VMs of
    /// CPU = 1.
    fn monitored_host(core: &Core, name: &str) -> Oid {
        let id = core
            .host_allocate(
                &Caller::oneadmin(),
                name,
                "im_dummy",
                "vmm_dummy",
                "dummy",
                "tm_dummy",
            )
            .unwrap();
        let values = [
            ("TOTALCPU", "800"),
            ("FREECPU", "800"),
            ("TOTALMEMORY", "16777216"),
            ("FREEMEMORY", "16777216"),
        ];
        let values = values.map(|(k, v)| (k.to_string(), v.to_string())).to_vec();
        core.host_monitored(id, MonitorResult::Ok(values)).unwrap();
        id
    }

    async fn placed_within(core: &Core, ids: &[Oid], limit: Duration) -> Vec<Option<Oid>> {
        let start = Instant::now();
        loop {
            let hosts: Vec<Option<Oid>> = {
                let state = core.read();
                ids.iter()
                    .map(|id| {
                        let vm = &state.vms[id];
                        (vm.state == VmState::Active)
                            .then(|| vm.last_history().map(|h| h.hid))
                            .flatten()
                    })
                    .collect()
            };
            if hosts.iter().all(Option::is_some) || start.elapsed() > limit {
                return hosts;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn immediate_mode_places_new_vms_and_later_the_waiting_ones() {
        let core = Arc::new(
            Core::open(
                Store::open_in_memory().unwrap(),
                Settings::default(),
                "password",
            )
            .unwrap(),
        );
        let first = monitored_host(&core, "h0");
        super::spawn(Arc::clone(&core));
        let ids: Vec<Oid> = (0..10)
            .map(|_| {
                core.vm_allocate(&Caller::oneadmin(), "CPU = 1\nMEMORY = 64\n")
                    .unwrap()
            })
            .collect();
        let placed = placed_within(&core, &ids[..8], Duration::from_secs(20)).await;
        assert_eq!(placed, vec![Some(first); 8]);
        // No room for the last two until another host appears; then they go there.
        let waiting = placed_within(&core, &ids[8..], Duration::from_millis(300)).await;
        assert_eq!(waiting, vec![None, None]);
        let second = monitored_host(&core, "h1");
        let placed = placed_within(&core, &ids[8..], Duration::from_secs(20)).await;
        assert_eq!(placed, vec![Some(second); 2]);
    }
}
