//! Host monitoring: a new (or re-enabled) host is monitored after a short delay, then every
//! HOST_MONITORING_INTERVAL; disabled hosts never are, as in oned. After a restart (or an import
//! from oned) a host is next monitored when its stored LAST_MON_TIME says it is due, as oned's
//! monitor picked hosts by `last_mon_time`.

use crate::core::{Core, Event};
use crate::driver::Drivers;
use crate::model::host::HostState;
use crate::model::Oid;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn spawn(core: Arc<Core>, drivers: Arc<Drivers>) {
    let first_delay = Duration::from_secs_f64(core.settings.host_first_monitoring_delay.max(0.0));
    let interval = Duration::from_secs_f64(core.settings.host_monitoring_interval.max(1.0));
    let mut events = core.subscribe();
    let in_flight: Arc<Mutex<HashSet<Oid>>> = Arc::default();
    // A host stays in flight while its monitoring waits its turn, so it is not queued twice.
    let monitors =
        crate::workpool::Limit::new("host monitoring", crate::workpool::HOST_MONITORS_AT_ONCE);
    tokio::spawn(async move {
        // When each host was last seen needing a first monitoring, or last monitored.
        let mut seen_init: HashMap<Oid, Instant> = HashMap::new();
        let mut last_done: HashMap<Oid, Instant> = HashMap::new();
        loop {
            tokio::select! {
                ev = events.recv() => {
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = ev {
                        return;
                    }
                    if !matches!(ev, Ok(Event::HostChanged(_)) | Err(_)) {
                        continue;
                    }
                }
                _ = tokio::time::sleep(super::TICK) => {}
            }
            let now = Instant::now();
            let due: Vec<crate::model::Host> = {
                let state = core.read();
                seen_init.retain(|id, _| {
                    state
                        .hosts
                        .get(id)
                        .is_some_and(|h| h.state == HostState::Init)
                });
                state
                    .hosts
                    .values()
                    .filter(|h| match h.state {
                        HostState::Init => {
                            let since = *seen_init.entry(h.id).or_insert(now);
                            now.duration_since(since) >= first_delay
                        }
                        HostState::Monitored | HostState::Error | HostState::Monitoring => {
                            match last_done.get(&h.id) {
                                Some(t) => now.duration_since(*t) >= interval,
                                None => stored_time_due(h.last_mon_time, interval),
                            }
                        }
                        HostState::Disabled => false,
                    })
                    .cloned()
                    .collect()
            };
            for host in due {
                let busy = in_flight
                    .lock()
                    .map(|mut s| !s.insert(host.id))
                    .unwrap_or(true);
                if busy {
                    continue;
                }
                last_done.insert(host.id, now);
                seen_init.remove(&host.id);
                let (core, drivers, in_flight) = (
                    Arc::clone(&core),
                    Arc::clone(&drivers),
                    Arc::clone(&in_flight),
                );
                monitors.spawn(move || {
                    let timer = crate::metrics::Timer::start();
                    let result = match drivers.im(&host.im_mad) {
                        Ok(im) => im.monitor(&host),
                        Err(e) => crate::core::hosts::MonitorResult::Failed(e.to_string()),
                    };
                    let ok = !matches!(result, crate::core::hosts::MonitorResult::Failed(_));
                    crate::metrics::metrics().driver(
                        "im",
                        "monitor",
                        &host.name,
                        timer.elapsed(),
                        ok,
                    );
                    if let Err(e) = core.host_monitored(host.id, result) {
                        tracing::error!(host = host.id, error = %e, "could not record host monitoring");
                    }
                    if let Ok(mut s) = in_flight.lock() {
                        s.remove(&host.id);
                    }
                });
            }
        }
    });
}

/// Whether something last done at `stamp` (epoch seconds, as stored) is due again after
/// `interval`; a stamp in the future (clock moved back) counts as due.
pub fn stored_time_due(stamp: i64, interval: Duration) -> bool {
    let now = crate::model::now();
    stamp > now || (now - stamp) as f64 >= interval.as_secs_f64()
}
