//! Progress of a live migration while libvirt copies the guest: a watcher asks libvirt for the
//! migration job's figures (`virDomainGetJobInfo`, what `virsh domjobinfo` shows) every half
//! second and publishes them as long work (`stratusd_long_work_*{kind="live_migration"}`) and
//! in the daemon log: at the first figures, then every 5 s, and a summary at the end.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use virt::domain::Domain;
use virt::sys;

/// When the first look is taken (a small guest moves in about a second).
const FIRST_LOOK: Duration = Duration::from_millis(200);
/// Then how often.
const LOOK_EVERY: Duration = Duration::from_millis(500);
/// How often a progress line goes to the log.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// One look at the migration job, bytes (libvirt's `data` is memory and disks together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MigrationFigures {
    pub data_total: u64,
    pub data_processed: u64,
    pub data_remaining: u64,
    pub mem_total: u64,
    pub mem_processed: u64,
    pub mem_remaining: u64,
    pub disk_total: u64,
    pub disk_processed: u64,
    pub disk_remaining: u64,
}

impl MigrationFigures {
    fn of(job: &virt::domain::JobStats) -> MigrationFigures {
        MigrationFigures {
            data_total: job.data_total.unwrap_or(0),
            data_processed: job.data_processed.unwrap_or(0),
            data_remaining: job.data_remaining.unwrap_or(0),
            mem_total: job.mem_total.unwrap_or(0),
            mem_processed: job.mem_processed.unwrap_or(0),
            mem_remaining: job.mem_remaining.unwrap_or(0),
            disk_total: job.disk_total.unwrap_or(0),
            disk_processed: job.disk_processed.unwrap_or(0),
            disk_remaining: job.disk_remaining.unwrap_or(0),
        }
    }
}

/// Publishes the figures of one domain's migration.
pub struct MigrationReport {
    domain: String,
    progress: Option<crate::metrics::Progress>,
    last: Option<MigrationFigures>,
    looks: u64,
    started: Instant,
    last_log: Option<Instant>,
}

impl MigrationReport {
    pub fn new(domain: &str) -> MigrationReport {
        MigrationReport {
            domain: domain.to_string(),
            progress: None,
            last: None,
            looks: 0,
            started: Instant::now(),
            last_log: None,
        }
    }

    /// One look: the long-work series follow it; the log gets the first with figures and
    /// one every 5 s.
    pub fn sample(&mut self, f: MigrationFigures) {
        self.looks += 1;
        if f == MigrationFigures::default() {
            // The job has begun but libvirt has no figures yet.
            return;
        }
        let progress = self.progress.get_or_insert_with(|| {
            crate::metrics::metrics().long_work("live_migration", &self.domain, f.data_total)
        });
        // The total grows while the guest dirties memory again.
        progress.set_total(f.data_total);
        progress.set_done(f.data_processed);
        self.last = Some(f);
        if self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            self.last_log = Some(Instant::now());
            tracing::info!(
                domain = %self.domain,
                memory_processed_bytes = f.mem_processed,
                memory_remaining_bytes = f.mem_remaining,
                memory_total_bytes = f.mem_total,
                disk_processed_bytes = f.disk_processed,
                disk_remaining_bytes = f.disk_remaining,
                disk_total_bytes = f.disk_total,
                elapsed_s = self.started.elapsed().as_secs(),
                "live migration in progress: {}",
                self.summary()
            );
        }
    }

    /// `memory 12.0 MiB of 64.0 MiB (52.0 MiB remaining), disks …` of the last look.
    pub fn summary(&self) -> String {
        use crate::storage::mib;
        match self.last {
            None => "no figures from libvirt".into(),
            Some(f) => format!(
                "memory {} of {} ({} remaining), disks {} of {} ({} remaining)",
                mib(f.mem_processed),
                mib(f.mem_total),
                mib(f.mem_remaining),
                mib(f.disk_processed),
                mib(f.disk_total),
                mib(f.disk_remaining)
            ),
        }
    }

    /// The migration ended (its series go away): how many looks, and the last figures.
    pub fn finish(self) {
        tracing::info!(
            domain = %self.domain,
            looks = self.looks,
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "live migration watched: {} looks, last: {}",
            self.looks,
            self.summary()
        );
    }
}

/// Watches `domain`'s migration job until `stop` is dropped or sent to.
pub fn watch(domain: &Domain, name: &str, stop: mpsc::Receiver<()>) {
    let mut report = MigrationReport::new(name);
    let mut wait = FIRST_LOOK;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(wait) {
        wait = LOOK_EVERY;
        match domain.job_info() {
            Ok(job) if job.r#type != sys::VIR_DOMAIN_JOB_NONE as i32 => {
                report.sample(MigrationFigures::of(&job));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(domain = name, error = %e, "no migration job figures"),
        }
    }
    report.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(kind_item: &str) -> Vec<String> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(
            &mut text,
            crate::metrics::metrics().registry(),
        )
        .unwrap();
        text.lines()
            .filter(|l| l.starts_with("stratusd_long_work_") && l.contains(kind_item))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn each_look_is_published_until_the_migration_ends() {
        let item = "item=\"one-mig-test\"";
        let mut r = MigrationReport::new("one-mig-test");
        assert_eq!(r.summary(), "no figures from libvirt");
        let mib = 1u64 << 20;
        // A job without figures yet publishes nothing.
        r.sample(MigrationFigures::default());
        assert!(series(item).is_empty());
        r.sample(MigrationFigures {
            data_total: 80 * mib,
            data_processed: 20 * mib,
            data_remaining: 60 * mib,
            mem_total: 64 * mib,
            mem_processed: 16 * mib,
            mem_remaining: 48 * mib,
            disk_total: 16 * mib,
            disk_processed: 4 * mib,
            disk_remaining: 12 * mib,
        });
        let s = series(item);
        assert!(
            s.contains(&format!(
                "stratusd_long_work_done_bytes{{kind=\"live_migration\",{item}}} {}",
                20 * mib
            )),
            "{s:?}"
        );
        assert!(s.contains(&format!(
            "stratusd_long_work_total_bytes{{kind=\"live_migration\",{item}}} {}",
            80 * mib
        )));
        // Dirtied memory makes the total grow.
        r.sample(MigrationFigures {
            data_total: 90 * mib,
            data_processed: 85 * mib,
            data_remaining: 5 * mib,
            mem_total: 64 * mib,
            mem_processed: 62 * mib,
            mem_remaining: 2 * mib,
            disk_total: 16 * mib,
            disk_processed: 16 * mib,
            disk_remaining: 0,
        });
        assert_eq!(
            r.summary(),
            "memory 62.0 MiB of 64.0 MiB (2.0 MiB remaining), disks 16.0 MiB of 16.0 MiB (0.0 MiB remaining)"
        );
        assert!(series(item).contains(&format!(
            "stratusd_long_work_total_bytes{{kind=\"live_migration\",{item}}} {}",
            90 * mib
        )));
        r.finish();
        assert!(series(item).is_empty(), "the series go away at the end");
    }
}
