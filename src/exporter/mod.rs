//! `GET /metrics` (`--metrics-listen ADDR`): the pools as OpenNebula's Prometheus exporter
//! (`opennebula-exporter`) names them, so that its dashboards and alerts work unchanged, then
//! stratusd's own instruments (`crate::metrics`).
//!
//! A scrape never holds up the API: each object's lines are rendered when a commit changes it
//! (`pools`), so a scrape takes no lock of the pools and only concatenates text.

mod http;
mod pools;

pub use http::{limits, serve};
pub use pools::PoolMetrics;

use crate::core::Core;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::sync::Arc;

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

/// Renders the pools of `core` once and keeps their metrics up to date from its commits;
/// call before the core is shared (the daemon does when `--metrics-listen` is given).
pub fn attach(core: &mut Core, server: &str) -> Arc<PoolMetrics> {
    let pools = Arc::new(PoolMetrics::new(&core.read(), server));
    let observer = Arc::clone(&pools);
    core.add_after_commit(Box::new(move |state, committed| {
        observer.after_commit(state, committed)
    }));
    pools
}

/// The content type of [`render`]'s text (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[cfg(test)]
mod tests;
