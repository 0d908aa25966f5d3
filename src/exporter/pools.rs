//! The pools' part of `/metrics`, kept rendered.
//!
//! Every host, VM and network has its sample lines written once, when a commit changes it
//! (the core's after-commit observer, [`PoolMetrics::after_commit`]); a scrape only
//! concatenates them. Writers hand their lines over through a small queue keyed by object
//! (the latest lines of an object replace the earlier ones, so the queue never holds more
//! than one entry per object); a scrape swaps the queue out — the only moment it shares a
//! lock with writers, microseconds — and never takes the pools' lock.

use super::ListenerStats;
use crate::core::{Committed, State};
use crate::model::vm::VmState;
use crate::model::vnet::NetKind;
use crate::model::volume::{Backing, Volume, VolumeState};
use crate::model::{Host, Kind, Oid, VNet, Vm};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard};

/// A gauge family: its name and help text.
type Family = (&'static str, &'static str);

const HOST_FAMILIES: [Family; 8] = [
    (
        "opennebula_host_state",
        "Host state 0:init 1:monitoring 2:monitored 3:error 4:disabled",
    ),
    (
        "opennebula_host_mem_total_bytes",
        "Total memory capacity (MAX_MEM: 3.2 has no overcommitment)",
    ),
    (
        "opennebula_host_mem_maximum_bytes",
        "Total memory capacity considering overcommitment",
    ),
    (
        "opennebula_host_mem_usage_bytes",
        "Total memory capacity allocated to VMs",
    ),
    (
        "opennebula_host_cpu_total_ratio",
        "Total CPU capacity (MAX_CPU: 3.2 has no overcommitment)",
    ),
    (
        "opennebula_host_cpu_maximum_ratio",
        "Total CPU capacity considering overcommitment",
    ),
    (
        "opennebula_host_cpu_usage_ratio",
        "Total CPU capacity allocated to VMs",
    ),
    ("opennebula_host_vms", "Number of VMs allocated to the host"),
];

const VM_FAMILIES: [Family; 8] = [
    ("opennebula_vm_host_id", "Host ID where the VM is allocated"),
    (
        "opennebula_vm_state",
        "VM state 0:init 1:pending 2:hold 3:active 4:stopped 5:suspended 6:done 7:failed",
    ),
    (
        "opennebula_vm_lcm_state",
        "VM LCM state, only relevant for state 3 (active)",
    ),
    ("opennebula_vm_mem_total_bytes", "Total memory capacity"),
    (
        "opennebula_vm_cpu_ratio",
        "Total CPU capacity requested by the VM",
    ),
    ("opennebula_vm_cpu_vcpus", "Total number of virtual CPUs"),
    ("opennebula_vm_disks", "Total number of disks"),
    ("opennebula_vm_nics", "Total number of network interfaces"),
];

const VNET_FAMILIES: [Family; 1] = [(
    "opennebula_vnet_free_lease_ratio",
    "Fraction of free leases in each VNet Address Range",
)];

/// One object's sample lines, one per family, in one allocation.
#[derive(Debug)]
struct Lines<const N: usize> {
    text: Box<str>,
    /// Where each family's line ends in `text`.
    ends: [u32; N],
}

impl<const N: usize> Lines<N> {
    /// Writes `name{label="id"} value` for each family.
    fn new(families: &[Family; N], label: &str, id: Oid, values: [Value; N]) -> Lines<N> {
        let mut text = String::with_capacity(N * 48);
        let mut ends = [0u32; N];
        for (k, ((name, _), value)) in families.iter().zip(values).enumerate() {
            let _ = writeln!(text, "{name}{{{label}=\"{id}\"}} {value}");
            ends[k] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        Lines {
            text: text.into_boxed_str(),
            ends,
        }
    }

    fn line(&self, k: usize) -> &str {
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        self.text.get(start..self.ends[k] as usize).unwrap_or("")
    }
}

/// A sample value in the text format.
#[derive(Debug, Clone, Copy)]
enum Value {
    Int(i64),
    Float(f64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v.is_infinite() => {
                f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
            }
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

fn template_int(t: &crate::template::Template, name: &str) -> Option<i64> {
    t.get(name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as i64)
}

fn host_lines(h: &Host) -> Lines<8> {
    let mem_max = h.share.max_mem.saturating_mul(1024);
    let values = [
        Value::Int(h.state as i64),
        Value::Int(mem_max),
        Value::Int(mem_max),
        Value::Int(h.share.mem_usage.saturating_mul(1024)),
        Value::Int(h.share.max_cpu),
        Value::Int(h.share.max_cpu),
        Value::Int(h.share.cpu_usage),
        Value::Int(h.share.running_vms),
    ];
    Lines::new(&HOST_FAMILIES, "one_host_id", h.id, values)
}

/// `None` for a VM in DONE: the exporter's `info_all` leaves them out.
fn vm_lines(vm: &Vm) -> Option<Lines<8>> {
    if vm.state == VmState::Done {
        return None;
    }
    let values = [
        Value::Int(vm.last_history().map(|h| h.hid as i64).unwrap_or(-1)),
        Value::Int(vm.state as i64),
        Value::Int(vm.lcm_state as i64),
        Value::Int(vm.template_memory().saturating_mul(1024 * 1024)),
        Value::Float(vm.template_cpu()),
        Value::Int(
            template_int(&vm.template, "VCPU")
                .filter(|v| *v > 0)
                .unwrap_or(1),
        ),
        Value::Int(vm.template.vectors("DISK").count() as i64),
        Value::Int(vm.template.vectors("NIC").count() as i64),
    ];
    Some(Lines::new(&VM_FAMILIES, "one_vm_id", vm.id, values))
}

/// A label value with `\`, `"` and newlines escaped, as the text format wants.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `None` for a network without addresses (nothing to be a fraction of).
fn vnet_lines(n: &VNet) -> Option<Lines<1>> {
    let size = match n.kind {
        NetKind::Fixed => n.leases.len() as u64,
        NetKind::Ranged => {
            u64::from(n.ip_end.saturating_sub(n.ip_start)) + u64::from(n.ip_end >= n.ip_start)
        }
    };
    if size == 0 {
        return None;
    }
    let used = n.total_leases() as u64;
    let ratio = size.saturating_sub(used) as f64 / size as f64;
    let (name, _) = VNET_FAMILIES[0];
    // 3.2 networks have one address range: the network itself (ar_id 0).
    let text = format!(
        "{name}{{vnet_id=\"{}\",vnet_name=\"{}\",ar_id=\"0\"}} {}\n",
        n.id,
        escape(&n.name),
        Value::Float(ratio)
    );
    let end = u32::try_from(text.len()).unwrap_or(u32::MAX);
    Some(Lines {
        text: text.into_boxed_str(),
        ends: [end],
    })
}

/// What the volume families count a volume under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct VolumeKey {
    backend: &'static str,
    state: &'static str,
    kind: &'static str,
}

/// The back end label of the cached Marketplace images' origin volumes.
const IMAGE_CACHE: &str = "image_cache";

/// One volume's share of the volume families.
#[derive(Debug, Clone, Copy)]
struct VolumeShare {
    key: VolumeKey,
    bytes: i64,
    static_mounts: i64,
    hotplug_mounts: i64,
}

impl VolumeShare {
    fn of(v: &Volume) -> VolumeShare {
        let state = match v.state {
            VolumeState::Creating => "creating",
            VolumeState::Deleting => "deleting",
            VolumeState::Ready if v.in_quarantine() => "quarantined",
            VolumeState::Ready => "ready",
        };
        // A cached Marketplace image's origin is the image cache's file, already counted by
        // stratusd_image_cache_bytes: it is a volume of its own back end, with no bytes here.
        let backend = match v.backing {
            _ if v.cached => IMAGE_CACHE,
            Backing::File { .. } => "file",
            Backing::Lvm { .. } => "lvm",
        };
        let hotplug = v.mounts.iter().filter(|m| m.is_hotplug()).count() as i64;
        VolumeShare {
            key: VolumeKey {
                backend,
                state,
                kind: v.kind.as_str(),
            },
            bytes: if v.cached {
                0
            } else {
                i64::try_from(v.size)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1 << 30)
            },
            static_mounts: v.mounts.len() as i64 - hotplug,
            hotplug_mounts: hotplug,
        }
    }
}

/// The volume families' totals, kept by adding and taking away each changed volume's share.
#[derive(Debug, Default)]
struct VolumeTally {
    shares: HashMap<String, VolumeShare>,
    /// Count and bytes per key; a key once seen stays (at 0), so a series drops to 0 rather
    /// than vanishing.
    totals: BTreeMap<VolumeKey, (i64, i64)>,
    static_mounts: i64,
    hotplug_mounts: i64,
}

impl VolumeTally {
    fn update(&mut self, uuid: &str, volume: Option<&Volume>) {
        if let Some(old) = self.shares.remove(uuid) {
            let t = self.totals.entry(old.key).or_default();
            t.0 -= 1;
            t.1 -= old.bytes;
            self.static_mounts -= old.static_mounts;
            self.hotplug_mounts -= old.hotplug_mounts;
        }
        if let Some(v) = volume {
            let new = VolumeShare::of(v);
            let t = self.totals.entry(new.key).or_default();
            t.0 += 1;
            t.1 += new.bytes;
            self.static_mounts += new.static_mounts;
            self.hotplug_mounts += new.hotplug_mounts;
            self.shares.insert(uuid.to_string(), new);
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        type Pick = fn(&(i64, i64)) -> i64;
        let families: [(&str, &str, Pick, bool); 2] = [
            (
                "stratusd_volumes",
                "Persistent volumes, per back end (file, lvm, image_cache: the cached Marketplace images' origins), state (creating, ready, quarantined, deleting) and pdisk type",
                |t| t.0,
                true,
            ),
            (
                "stratusd_volume_bytes",
                "Provisioned size of the persistent volumes, per back end (file, lvm), state and pdisk type; the image cache's files are in stratusd_image_cache_bytes",
                |t| t.1,
                false,
            ),
        ];
        for (name, help, get, with_cache) in families {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n");
            for (key, total) in &self.totals {
                if key.backend == IMAGE_CACHE && !with_cache {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "{name}{{backend=\"{}\",state=\"{}\",type=\"{}\"}} {}",
                    key.backend,
                    key.state,
                    key.kind,
                    get(total)
                );
            }
        }
        let name = "stratusd_volume_mounts";
        let _ = write!(
            out,
            "# HELP {name} Volumes in use by VMs: mounts made at a VM's start (static) and hot-plugged ones\n# TYPE {name} gauge\n{name}{{kind=\"static\"}} {}\n{name}{{kind=\"hotplug\"}} {}\n",
            self.static_mounts, self.hotplug_mounts
        );
        out
    }
}

/// Lines of objects changed since the last scrape: `None` for an object to drop.
#[derive(Debug, Default)]
struct Pending {
    hosts: HashMap<Oid, Option<Lines<8>>>,
    vms: HashMap<Oid, Option<Lines<8>>>,
    vnets: HashMap<Oid, Option<Lines<1>>>,
    volumes: Option<String>,
}

/// Objects per chunk: a chunk's text is rebuilt when one of its objects changed, so a
/// scrape copies nothing of the chunks nothing changed in.
const CHUNK: Oid = 256;

/// One chunk of consecutive ids: its objects and, once built, its text per family.
#[derive(Debug)]
struct Chunk<const N: usize> {
    objects: BTreeMap<Oid, Lines<N>>,
    /// `None` when an object changed since it was built.
    text: Option<[Bytes; N]>,
}

impl<const N: usize> Chunk<N> {
    fn text(&mut self) -> &[Bytes; N] {
        let objects = &self.objects;
        self.text.get_or_insert_with(|| {
            std::array::from_fn(|k| {
                let len = objects.values().map(|l| l.line(k).len()).sum();
                let mut text = String::with_capacity(len);
                for lines in objects.values() {
                    text.push_str(lines.line(k));
                }
                Bytes::from(text)
            })
        })
    }
}

/// The rendered lines of one pool, by chunk of ids.
#[derive(Debug)]
struct Section<const N: usize> {
    /// Each family's `# HELP` and `# TYPE` lines.
    headers: [Bytes; N],
    chunks: BTreeMap<Oid, Chunk<N>>,
    len: usize,
}

impl<const N: usize> Section<N> {
    fn new(families: &[Family; N]) -> Section<N> {
        Section {
            headers: std::array::from_fn(|k| {
                let (name, help) = families[k];
                Bytes::from(format!("# HELP {name} {help}\n# TYPE {name} gauge\n"))
            }),
            chunks: BTreeMap::new(),
            len: 0,
        }
    }

    fn set(&mut self, id: Oid, lines: Option<Lines<N>>) {
        let key = id.div_euclid(CHUNK);
        // Most commits (monitoring, polls) leave an object's published figures as they were:
        // its chunk's text stays valid.
        let same = match (
            &lines,
            self.chunks.get(&key).and_then(|c| c.objects.get(&id)),
        ) {
            (Some(new), Some(old)) => new.text == old.text,
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        let chunk = self.chunks.entry(key).or_insert_with(|| Chunk {
            objects: BTreeMap::new(),
            text: None,
        });
        chunk.text = None;
        let had = match lines {
            Some(l) => chunk.objects.insert(id, l).is_some(),
            None => chunk.objects.remove(&id).is_some(),
        };
        let has = chunk.objects.contains_key(&id);
        if chunk.objects.is_empty() {
            self.chunks.remove(&key);
        }
        self.len = self.len + usize::from(has) - usize::from(had);
    }

    fn apply(&mut self, changes: HashMap<Oid, Option<Lines<N>>>) {
        for (id, lines) in changes {
            self.set(id, lines);
        }
    }

    /// Each family's header then its lines of every chunk, in id order.
    fn push(&mut self, out: &mut Vec<Bytes>) {
        for chunk in self.chunks.values_mut() {
            chunk.text();
        }
        for k in 0..N {
            out.push(self.headers[k].clone());
            for chunk in self.chunks.values() {
                if let Some(text) = &chunk.text {
                    out.push(text[k].clone());
                }
            }
        }
    }
}

/// What a scrape sends.
#[derive(Debug)]
struct Rendered {
    /// The service-state gauges (they name this machine).
    services: Bytes,
    hosts: Section<8>,
    vms: Section<8>,
    vnets: Section<1>,
    volumes: Bytes,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update replaces whole entries, so a panic elsewhere cannot leave half of one.
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The pools' metrics, rendered as the pools change.
#[derive(Debug)]
pub struct PoolMetrics {
    /// Writers' side: changed objects' lines, taken by the next scrape.
    pending: Mutex<Pending>,
    /// Writers' side: the volume totals (only commits touch them).
    volumes: Mutex<VolumeTally>,
    /// Scrapes' side.
    rendered: Mutex<Rendered>,
}

impl PoolMetrics {
    /// Renders every object of `state` once (at start, before the observer is installed).
    pub fn new(state: &State, server: &str) -> PoolMetrics {
        let mut tally = VolumeTally::default();
        for (uuid, v) in &state.volumes {
            tally.update(uuid, Some(v));
        }
        let mut rendered = Rendered {
            services: Bytes::from(services(server)),
            hosts: Section::new(&HOST_FAMILIES),
            vms: Section::new(&VM_FAMILIES),
            vnets: Section::new(&VNET_FAMILIES),
            volumes: Bytes::from(tally.render()),
        };
        for h in state.hosts.values() {
            rendered.hosts.set(h.id, Some(host_lines(h)));
        }
        for vm in state.vms.values() {
            if let Some(lines) = vm_lines(vm) {
                rendered.vms.set(vm.id, Some(lines));
            }
        }
        for n in state.vnets.values() {
            if let Some(lines) = vnet_lines(n) {
                rendered.vnets.set(n.id, Some(lines));
            }
        }
        PoolMetrics {
            pending: Mutex::default(),
            volumes: Mutex::new(tally),
            rendered: Mutex::new(rendered),
        }
    }

    /// The core's after-commit observer: renders the lines of what the commit wrote.
    pub fn after_commit(&self, state: &State, committed: &Committed) {
        let mut hosts = Vec::new();
        let mut vms = Vec::new();
        let mut vnets = Vec::new();
        for &(kind, id) in &committed.objects {
            match kind {
                Kind::Host => hosts.push((id, state.hosts.get(&id).map(host_lines))),
                Kind::Vm => vms.push((id, state.vms.get(&id).and_then(vm_lines))),
                Kind::Net => vnets.push((id, state.vnets.get(&id).and_then(vnet_lines))),
                _ => {}
            }
        }
        let volumes = if committed.volumes.is_empty() {
            None
        } else {
            let mut tally = lock(&self.volumes);
            for uuid in &committed.volumes {
                tally.update(uuid, state.volumes.get(uuid));
            }
            Some(tally.render())
        };
        if hosts.is_empty() && vms.is_empty() && vnets.is_empty() && volumes.is_none() {
            return;
        }
        let mut pending = lock(&self.pending);
        pending.hosts.extend(hosts);
        pending.vms.extend(vms);
        pending.vnets.extend(vnets);
        if volumes.is_some() {
            pending.volumes = volumes;
        }
    }

    /// The whole `/metrics` text, in pieces to send one after the other: the pools, then
    /// `listeners` and stratusd's own instruments.
    pub fn render(&self, listeners: &[ListenerStats]) -> Vec<Bytes> {
        let timer = crate::metrics::Timer::start();
        let mut rendered = lock(&self.rendered);
        let changes = {
            let held = crate::metrics::Timer::start();
            let changes = std::mem::take(&mut *lock(&self.pending));
            crate::metrics::metrics()
                .scrape_snapshot_seconds
                .observe(held.elapsed().as_secs_f64());
            changes
        };
        let r = &mut *rendered;
        r.hosts.apply(changes.hosts);
        r.vms.apply(changes.vms);
        r.vnets.apply(changes.vnets);
        if let Some(v) = changes.volumes {
            r.volumes = Bytes::from(v);
        }

        let mut out = Vec::with_capacity(64 + 8 * (r.hosts.chunks.len() + r.vms.chunks.len()));
        out.push(r.services.clone());
        out.push(Bytes::from(total(
            "opennebula_host_total",
            "Total number of hosts defined in OpenNebula",
            r.hosts.len,
        )));
        r.hosts.push(&mut out);
        out.push(Bytes::from(total(
            "opennebula_vm_total",
            "Total number of VMs defined in OpenNebula",
            r.vms.len,
        )));
        r.vms.push(&mut out);
        r.vnets.push(&mut out);
        out.push(r.volumes.clone());
        drop(rendered);

        let mut own = String::with_capacity(64 * 1024);
        let mut listener_registry = prometheus_client::registry::Registry::default();
        listener_registry
            .register_collector(Box::new(super::ListenerCollector(listeners.to_vec())));
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut own, &listener_registry);
        let _ = prometheus_client::encoding::prometheus_text::encode(
            &mut own,
            crate::metrics::metrics().registry(),
        );
        out.push(Bytes::from(own));
        // Seen by the next scrape.
        crate::metrics::metrics()
            .scrape_seconds
            .observe(timer.elapsed().as_secs_f64());
        out
    }

    /// [`PoolMetrics::render`] in one string.
    pub fn render_text(&self, listeners: &[ListenerStats]) -> String {
        let pieces = self.render(listeners);
        let mut text = String::with_capacity(pieces.iter().map(Bytes::len).sum());
        for piece in pieces {
            text.push_str(&String::from_utf8_lossy(&piece));
        }
        text
    }
}

/// The service-state gauges: this daemon serves both oned's and the scheduler's part.
fn services(server: &str) -> String {
    let mut out = String::new();
    for (name, help) in [
        (
            "opennebula_oned_state",
            "OpenNebula oned service state 0:down 1:up",
        ),
        (
            "opennebula_scheduler_state",
            "OpenNebula scheduler service state 0:down 1:up",
        ),
    ] {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{one_server_fqdn=\"{}\"}} 1\n",
            escape(server)
        );
    }
    out
}

fn total(name: &str, help: &str, n: usize) -> String {
    format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {n}\n")
}
