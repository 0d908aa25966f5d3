//! `GET /metrics` (`--metrics-listen ADDR`): the pools as OpenNebula's Prometheus exporter
//! (`opennebula-exporter`) names them, so that its dashboards and alerts work unchanged, then
//! stratusd's own instruments (`crate::metrics`).
//!
//! A scrape never holds up the API: the figures are copied out of the pools under the read
//! lock (a few numbers per object, well under a millisecond at 10,000 VMs), the lock is
//! released, and the text is rendered from that copy on the blocking pool.

mod http;

pub use http::{limits, serve};

use crate::core::{Core, State};
use crate::model::vm::VmState;
use crate::model::vnet::NetKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The figures of one VM that the exporter publishes.
#[derive(Debug, Clone)]
struct VmRow {
    id: i32,
    state: i64,
    lcm_state: i64,
    host_id: i64,
    mem_bytes: i64,
    cpu: f64,
    vcpus: i64,
    disks: i64,
    nics: i64,
}

#[derive(Debug, Clone)]
struct HostRow {
    id: i32,
    state: i64,
    mem_max_bytes: i64,
    mem_usage_bytes: i64,
    cpu_max: i64,
    cpu_usage: i64,
    vms: i64,
}

#[derive(Debug, Clone)]
struct VnetRow {
    id: String,
    name: String,
    free_ratio: f64,
}

/// What one scrape publishes about the pools, copied out under the read lock.
#[derive(Debug, Default)]
pub struct PoolSnapshot {
    hosts: Vec<HostRow>,
    vms: Vec<VmRow>,
    vnets: Vec<VnetRow>,
    server: String,
}

fn template_int(t: &crate::template::Template, name: &str) -> Option<i64> {
    t.get(name)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as i64)
}

impl PoolSnapshot {
    /// Copies the published figures; VMs in DONE are left out, as the exporter's `info_all`
    /// leaves them out.
    pub fn take(state: &State, server: &str) -> PoolSnapshot {
        let hosts = state
            .hosts
            .values()
            .map(|h| HostRow {
                id: h.id,
                state: h.state as i64,
                mem_max_bytes: h.share.max_mem.saturating_mul(1024),
                mem_usage_bytes: h.share.mem_usage.saturating_mul(1024),
                cpu_max: h.share.max_cpu,
                cpu_usage: h.share.cpu_usage,
                vms: h.share.running_vms,
            })
            .collect();
        let vms = state
            .vms
            .values()
            .filter(|vm| vm.state != VmState::Done)
            .map(|vm| VmRow {
                id: vm.id,
                state: vm.state as i64,
                lcm_state: vm.lcm_state as i64,
                host_id: vm.last_history().map(|h| h.hid as i64).unwrap_or(-1),
                mem_bytes: vm.template_memory().saturating_mul(1024 * 1024),
                cpu: vm.template_cpu(),
                vcpus: template_int(&vm.template, "VCPU")
                    .filter(|v| *v > 0)
                    .unwrap_or(1),
                disks: vm.template.vectors("DISK").count() as i64,
                nics: vm.template.vectors("NIC").count() as i64,
            })
            .collect();
        let vnets = state
            .vnets
            .values()
            .filter_map(|n| {
                let size = match n.kind {
                    NetKind::Fixed => n.leases.len() as u64,
                    NetKind::Ranged => {
                        u64::from(n.ip_end.saturating_sub(n.ip_start))
                            + u64::from(n.ip_end >= n.ip_start)
                    }
                };
                if size == 0 {
                    return None;
                }
                let used = n.total_leases() as u64;
                Some(VnetRow {
                    id: n.id.to_string(),
                    name: n.name.clone(),
                    free_ratio: size.saturating_sub(used) as f64 / size as f64,
                })
            })
            .collect();
        PoolSnapshot {
            hosts,
            vms,
            vnets,
            server: server.to_string(),
        }
    }
}

/// Encodes one gauge family: its descriptor then one sample per row.
fn gauge_family<R, V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[R],
    labels: impl Fn(&R) -> [(&'static str, i64); 1],
    value: impl Fn(&R) -> V,
) -> Result<(), std::fmt::Error>
where
    V: prometheus_client::encoding::EncodeGaugeValue,
{
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for row in rows {
        let label_set = labels(row);
        let sample = family.encode_family(&label_set)?;
        ConstGauge::new(value(row)).encode(sample)?;
    }
    Ok(())
}

fn host_id(h: &HostRow) -> [(&'static str, i64); 1] {
    [("one_host_id", i64::from(h.id))]
}

fn vm_id(v: &VmRow) -> [(&'static str, i64); 1] {
    [("one_vm_id", i64::from(v.id))]
}

impl Collector for PoolSnapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let server = [("one_server_fqdn", self.server.as_str())];
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
            let mut family = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(1i64).encode(family.encode_family(&server)?)?;
        }

        let hosts = &self.hosts;
        ConstGauge::new(hosts.len() as i64).encode(e.encode_descriptor(
            "opennebula_host_total",
            "Total number of hosts defined in OpenNebula",
            None,
            MetricType::Gauge,
        )?)?;
        gauge_family(
            &mut e,
            "opennebula_host_state",
            "Host state 0:init 1:monitoring 2:monitored 3:error 4:disabled",
            hosts,
            host_id,
            |h| h.state,
        )?;
        gauge_family(
            &mut e,
            "opennebula_host_mem_total_bytes",
            "Total memory capacity (MAX_MEM: 3.2 has no overcommitment)",
            hosts,
            host_id,
            |h| h.mem_max_bytes,
        )?;
        gauge_family(
            &mut e,
            "opennebula_host_mem_maximum_bytes",
            "Total memory capacity considering overcommitment",
            hosts,
            host_id,
            |h| h.mem_max_bytes,
        )?;
        gauge_family(
            &mut e,
            "opennebula_host_mem_usage_bytes",
            "Total memory capacity allocated to VMs",
            hosts,
            host_id,
            |h| h.mem_usage_bytes,
        )?;
        gauge_family(
            &mut e,
            "opennebula_host_cpu_total_ratio",
            "Total CPU capacity (MAX_CPU: 3.2 has no overcommitment)",
            hosts,
            host_id,
            |h| h.cpu_max,
        )?;
        gauge_family(
            &mut e,
            "opennebula_host_cpu_maximum_ratio",
            "Total CPU capacity considering overcommitment",
            hosts,
            host_id,
            |h| h.cpu_max,
        )?;
        gauge_family(
            &mut e,
            "opennebula_host_cpu_usage_ratio",
            "Total CPU capacity allocated to VMs",
            hosts,
            host_id,
            |h| h.cpu_usage,
        )?;
        gauge_family(
            &mut e,
            "opennebula_host_vms",
            "Number of VMs allocated to the host",
            hosts,
            host_id,
            |h| h.vms,
        )?;

        let vms = &self.vms;
        ConstGauge::new(vms.len() as i64).encode(e.encode_descriptor(
            "opennebula_vm_total",
            "Total number of VMs defined in OpenNebula",
            None,
            MetricType::Gauge,
        )?)?;
        gauge_family(
            &mut e,
            "opennebula_vm_host_id",
            "Host ID where the VM is allocated",
            vms,
            vm_id,
            |v| v.host_id,
        )?;
        gauge_family(
            &mut e,
            "opennebula_vm_state",
            "VM state 0:init 1:pending 2:hold 3:active 4:stopped 5:suspended 6:done 7:failed",
            vms,
            vm_id,
            |v| v.state,
        )?;
        gauge_family(
            &mut e,
            "opennebula_vm_lcm_state",
            "VM LCM state, only relevant for state 3 (active)",
            vms,
            vm_id,
            |v| v.lcm_state,
        )?;
        gauge_family(
            &mut e,
            "opennebula_vm_mem_total_bytes",
            "Total memory capacity",
            vms,
            vm_id,
            |v| v.mem_bytes,
        )?;
        gauge_family(
            &mut e,
            "opennebula_vm_cpu_ratio",
            "Total CPU capacity requested by the VM",
            vms,
            vm_id,
            |v| v.cpu,
        )?;
        gauge_family(
            &mut e,
            "opennebula_vm_cpu_vcpus",
            "Total number of virtual CPUs",
            vms,
            vm_id,
            |v| v.vcpus,
        )?;
        gauge_family(
            &mut e,
            "opennebula_vm_disks",
            "Total number of disks",
            vms,
            vm_id,
            |v| v.disks,
        )?;
        gauge_family(
            &mut e,
            "opennebula_vm_nics",
            "Total number of network interfaces",
            vms,
            vm_id,
            |v| v.nics,
        )?;

        let mut family = e.encode_descriptor(
            "opennebula_vnet_free_lease_ratio",
            "Fraction of free leases in each VNet Address Range",
            None,
            MetricType::Gauge,
        )?;
        for n in &self.vnets {
            // 3.2 networks have one address range: the network itself (ar_id 0).
            let labels = [
                ("vnet_id", n.id.as_str()),
                ("vnet_name", n.name.as_str()),
                ("ar_id", "0"),
            ];
            ConstGauge::new(n.free_ratio).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// The counters of one guarded listener at the time of the scrape.
#[derive(Debug, Clone)]
pub struct ListenerStats {
    pub name: &'static str,
    pub stats: crate::server::guard::Stats,
}

impl ListenerStats {
    pub fn of(guard: &crate::server::guard::Guard) -> ListenerStats {
        ListenerStats {
            name: guard.name(),
            stats: guard.stats(),
        }
    }
}

/// The listeners' connection counters (`stratusd_connections_*`).
#[derive(Debug)]
struct ListenerCollector(Vec<ListenerStats>);

impl Collector for ListenerCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        type Get = fn(&crate::server::guard::Stats) -> u64;
        let gauges: [(&str, &str, Get); 2] = [
            (
                "stratusd_connections_open",
                "HTTP connections open now, per listener",
                |s| s.open as u64,
            ),
            (
                "stratusd_connections_max",
                "Connections a listener serves at once (its cap)",
                |s| s.max_connections as u64,
            ),
        ];
        for (name, help, get) in gauges {
            let mut family = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for l in &self.0 {
                let labels = [("listener", l.name)];
                ConstGauge::new(get(&l.stats) as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        let counters: [(&str, &str, Get); 9] = [
            ("stratusd_connections", "HTTP connections accepted", |s| {
                s.accepted
            }),
            (
                "stratusd_connections_evicted",
                "Connections closed to admit a new one or free a descriptor",
                |s| s.evicted,
            ),
            (
                "stratusd_connections_idle_closed",
                "Connections closed after the idle timeout",
                |s| s.idle_closed,
            ),
            (
                "stratusd_connections_header_timeouts",
                "Requests whose header did not arrive within the header timeout",
                |s| s.header_timeouts,
            ),
            (
                "stratusd_connections_handshake_failures",
                "TLS handshakes that failed or timed out",
                |s| s.handshake_failures,
            ),
            (
                "stratusd_connections_slow_bodies",
                "Request bodies slower than the minimum rate",
                |s| s.slow_bodies,
            ),
            (
                "stratusd_connections_slow_answers",
                "Answers the client did not take at the minimum rate",
                |s| s.slow_answers,
            ),
            (
                "stratusd_connections_refused_too_large",
                "Requests refused for a Content-Length above the limit",
                |s| s.refused_too_large,
            ),
            (
                "stratusd_connections_accept_errors",
                "Failed accept calls (descriptor exhaustion and the like)",
                |s| s.accept_errors,
            ),
        ];
        for (name, help, get) in counters {
            let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            for l in &self.0 {
                let labels = [("listener", l.name)];
                prometheus_client::metrics::counter::ConstCounter::new(get(&l.stats))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// This machine's name, the `one_server_fqdn` label of the service-state gauges.
pub fn server_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The whole `/metrics` text of one scrape.
pub fn render(core: &Core, server: &str, listeners: &[ListenerStats]) -> String {
    let timer = crate::metrics::Timer::start();
    let snapshot = {
        let state = core.read();
        let snapshot = PoolSnapshot::take(&state, server);
        drop(state);
        crate::metrics::metrics()
            .scrape_snapshot_seconds
            .observe(timer.elapsed().as_secs_f64());
        snapshot
    };
    let text = render_snapshot(snapshot, listeners.to_vec());
    crate::metrics::metrics()
        .scrape_seconds
        .observe(timer.elapsed().as_secs_f64());
    text
}

/// Encodes a snapshot of the pools followed by stratusd's own instruments.
pub fn render_snapshot(snapshot: PoolSnapshot, listeners: Vec<ListenerStats>) -> String {
    // About 60 bytes a sample, 9 samples per VM.
    let mut out =
        String::with_capacity(4096 + snapshot.vms.len() * 600 + snapshot.hosts.len() * 500);
    let mut pools = Registry::default();
    pools.register_collector(Box::new(snapshot));
    pools.register_collector(Box::new(ListenerCollector(listeners)));
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &pools);
    let _ = prometheus_client::encoding::prometheus_text::encode(
        &mut out,
        crate::metrics::metrics().registry(),
    );
    out
}

/// The content type of [`render`]'s text (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests;
