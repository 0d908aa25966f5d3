//! stratusd's own instruments: request counts and latencies per XML-RPC method, failures per
//! error code, SQLite commit latency, driver operation latencies, the image
//! cache, downloads and other long work in progress, the quarantine.
//!
//! One process-wide registry ([`metrics`]), so that the store, the drivers and the storage
//! record with one call where the work happens, without a handle threaded through every layer
//! (the same reason `tracing` has a global subscriber). This module depends on nothing else in
//! the crate; `exporter` reads it together with the pools when `/metrics` is scraped.
//!
//! prometheus-client (the Prometheus project's Rust client) keeps the instruments and encodes
//! them in the Prometheus text format; every recording is a few atomic operations or one short
//! mutex, so instrumented hot paths stay hot.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Labels of the per-method instruments. Only names from a fixed list (the method table)
/// become label values, so a client sending random method names cannot grow the registry.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub method: &'static str,
    /// oned's error code (256 authentication, 512 authorization, 1024 no such object, 2048
    /// action, 4096 XML-RPC API, 8192 internal) or the XML-RPC fault code (negative).
    pub code: i32,
}

/// The latency histogram's labels: no host, as 16 lines per host and operation would make a
/// scrape at 1,000 hosts tens of thousands of lines; the counter below keeps the host.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriverLabels {
    /// `vmm`, `tm`, `im` or `poll`.
    pub driver: &'static str,
    pub operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DriverOutcomeLabels {
    pub driver: &'static str,
    pub operation: &'static str,
    /// The host's name (hosts are registered by oneadmin: a bounded set).
    pub host: String,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkLabels {
    /// What kind of long work: `image_download`, `import`, `migration`, ...
    pub kind: &'static str,
    /// Which one: the image id, the VM id, the source being imported.
    pub item: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub rpc_requests: Family<MethodLabels, Counter>,
    pub rpc_seconds: Family<MethodLabels, Histogram>,
    pub rpc_failures: Family<FailureLabels, Counter>,
    pub sqlite_commit_seconds: Histogram,
    pub sqlite_commit_failures: Counter,
    pub driver_seconds: Family<DriverLabels, Histogram>,
    pub driver_operations: Family<DriverOutcomeLabels, Counter>,
    pub image_cache_hits: Counter,
    pub image_cache_misses: Counter,
    pub image_download_bytes: Counter,
    pub image_downloads_in_progress: Gauge,
    pub image_download_failures: Counter,
    pub image_cache_images: Gauge,
    pub image_cache_bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub work_in_progress: Family<KindLabels, Gauge>,
    pub work_done_bytes: Family<WorkLabels, Gauge>,
    pub work_total_bytes: Family<WorkLabels, Gauge>,
    pub quarantine_directories: Gauge,
    pub quarantine_bytes: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub scrape_seconds: Histogram,
    /// Of a scrape, the part spent holding the lock writers also take (what they can wait for).
    pub scrape_snapshot_seconds: Histogram,
}

/// Buckets from 50 µs to about 30 s: API calls, commits.
fn fast_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.00005, 2.5, 15))
}

/// Buckets from 10 ms to about an hour: driver operations (deploys, image copies).
fn slow_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 3.0, 13))
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            rpc_requests: Family::default(),
            rpc_seconds: Family::new_with_constructor(fast_buckets),
            rpc_failures: Family::default(),
            sqlite_commit_seconds: fast_buckets(),
            sqlite_commit_failures: Counter::default(),
            driver_seconds: Family::new_with_constructor(slow_buckets),
            driver_operations: Family::default(),
            image_cache_hits: Counter::default(),
            image_cache_misses: Counter::default(),
            image_download_bytes: Counter::default(),
            image_downloads_in_progress: Gauge::default(),
            image_download_failures: Counter::default(),
            image_cache_images: Gauge::default(),
            image_cache_bytes: Gauge::default(),
            work_in_progress: Family::default(),
            work_done_bytes: Family::default(),
            work_total_bytes: Family::default(),
            quarantine_directories: Gauge::default(),
            quarantine_bytes: Gauge::default(),
            scrape_seconds: fast_buckets(),
            scrape_snapshot_seconds: fast_buckets(),
        };
        let mut r = Registry::with_prefix("stratusd");
        r.register(
            "xmlrpc_requests",
            "XML-RPC calls answered, per method",
            m.rpc_requests.clone(),
        );
        r.register(
            "xmlrpc_request_duration_seconds",
            "Time from a decoded call to its encoded answer, per method",
            m.rpc_seconds.clone(),
        );
        r.register(
            "xmlrpc_failures",
            "Calls answered with an error ([false, message, code]) or a fault, per method and code",
            m.rpc_failures.clone(),
        );
        r.register(
            "sqlite_commit_duration_seconds",
            "Time to commit one write transaction to SQLite",
            m.sqlite_commit_seconds.clone(),
        );
        r.register(
            "sqlite_commit_failures",
            "Write transactions SQLite refused (nothing was changed)",
            m.sqlite_commit_failures.clone(),
        );
        r.register(
            "driver_operation_duration_seconds",
            "Time of one driver operation, per driver and operation (per host: stratusd_driver_operations_total)",
            m.driver_seconds.clone(),
        );
        r.register(
            "driver_operations",
            "Driver operations finished, per driver, operation, host and outcome",
            m.driver_operations.clone(),
        );
        r.register(
            "image_cache_hits",
            "Marketplace images found in the cache",
            m.image_cache_hits.clone(),
        );
        r.register(
            "image_cache_misses",
            "Marketplace images not in the cache (a download followed)",
            m.image_cache_misses.clone(),
        );
        r.register(
            "image_download_bytes",
            "Bytes of Marketplace images downloaded into the cache",
            m.image_download_bytes.clone(),
        );
        r.register(
            "image_downloads_in_progress",
            "Marketplace image downloads running now",
            m.image_downloads_in_progress.clone(),
        );
        r.register(
            "image_download_failures",
            "Marketplace image downloads that failed (network, size or checksum)",
            m.image_download_failures.clone(),
        );
        r.register(
            "image_cache_images",
            "Marketplace images in the front-end's image cache",
            m.image_cache_images.clone(),
        );
        r.register(
            "image_cache_bytes",
            "Bytes the front-end's image cache occupies on disk (the cached images' origin volumes are these files)",
            m.image_cache_bytes.clone(),
        );
        r.register(
            "long_work_in_progress",
            "Long operations running now, per kind",
            m.work_in_progress.clone(),
        );
        r.register(
            "long_work_done_bytes",
            "Bytes done so far by each long operation in progress",
            m.work_done_bytes.clone(),
        );
        r.register(
            "long_work_total_bytes",
            "Bytes each long operation in progress has to do (0 when unknown)",
            m.work_total_bytes.clone(),
        );
        r.register(
            "quarantine_directories",
            "Terminated VM directories in quarantine (at the last scan)",
            m.quarantine_directories.clone(),
        );
        r.register(
            "quarantine_bytes",
            "Bytes the quarantine occupies on disk (at the last scan)",
            m.quarantine_bytes.clone(),
        );
        r.register(
            "metrics_scrape_duration_seconds",
            "Time to render /metrics",
            m.scrape_seconds.clone(),
        );
        r.register(
            "metrics_snapshot_duration_seconds",
            "Time a /metrics scrape holds the lock writers share with it (to take the objects changed since the last scrape)",
            m.scrape_snapshot_seconds.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// The registry, for the exporter to encode.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// One XML-RPC call answered: `method` is a name from the method table or a fixed
    /// placeholder; `failure` the error or fault code when it did not succeed.
    pub fn rpc(&self, method: &'static str, elapsed: Duration, failure: Option<i32>) {
        let labels = MethodLabels { method };
        self.rpc_requests.get_or_create(&labels).inc();
        self.rpc_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(code) = failure {
            self.rpc_failures
                .get_or_create(&FailureLabels { method, code })
                .inc();
        }
    }

    pub fn sqlite_commit(&self, elapsed: Duration, ok: bool) {
        self.sqlite_commit_seconds.observe(elapsed.as_secs_f64());
        if !ok {
            self.sqlite_commit_failures.inc();
        }
    }

    /// One driver operation on `host` took `elapsed`.
    pub fn driver(
        &self,
        driver: &'static str,
        operation: &'static str,
        host: &str,
        elapsed: Duration,
        ok: bool,
    ) {
        self.driver_seconds
            .get_or_create(&DriverLabels { driver, operation })
            .observe(elapsed.as_secs_f64());
        self.driver_operations
            .get_or_create(&DriverOutcomeLabels {
                driver,
                operation,
                host: host.to_string(),
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// The quarantine as last scanned.
    pub fn quarantine(&self, directories: usize, bytes: u64) {
        self.quarantine_directories.set(directories as i64);
        self.quarantine_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The image cache as last scanned (at start and after each image placed in it).
    pub fn image_cache(&self, images: usize, bytes: u64) {
        self.image_cache_images.set(images as i64);
        self.image_cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Starts tracking one long operation (a download, an import, a migration): its progress
    /// is visible under `long_work_*{kind, item}` until the returned handle drops.
    pub fn long_work(&'static self, kind: &'static str, item: &str, total_bytes: u64) -> Progress {
        let labels = WorkLabels {
            kind,
            item: item.to_string(),
        };
        self.work_in_progress
            .get_or_create(&KindLabels { kind })
            .inc();
        self.work_total_bytes
            .get_or_create(&labels)
            .set(i64::try_from(total_bytes).unwrap_or(i64::MAX));
        self.work_done_bytes.get_or_create(&labels).set(0);
        Progress {
            metrics: self,
            labels,
        }
    }
}

/// A long operation in progress; dropping it removes its series.
pub struct Progress {
    metrics: &'static Metrics,
    labels: WorkLabels,
}

impl Progress {
    /// Bytes done so far.
    pub fn set_done(&self, bytes: u64) {
        self.metrics
            .work_done_bytes
            .get_or_create(&self.labels)
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn set_total(&self, bytes: u64) {
        self.metrics
            .work_total_bytes
            .get_or_create(&self.labels)
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.metrics.work_done_bytes.remove(&self.labels);
        self.metrics.work_total_bytes.remove(&self.labels);
        self.metrics
            .work_in_progress
            .get_or_create(&KindLabels {
                kind: self.labels.kind,
            })
            .dec();
    }
}

/// How often a long copy writes its progress to the log.
const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(5);

/// A reader that publishes what went through it as a long operation's progress
/// (`long_work_*{kind, item}`) and logs the bytes so far and the rate every 5 s.
pub struct ProgressReader<R> {
    inner: R,
    progress: Progress,
    done: u64,
    started: Instant,
    last_log: Instant,
}

impl<R> ProgressReader<R> {
    /// `total_bytes`: 0 when unknown. `item` says which one (shown in the log and as a label).
    pub fn new(inner: R, kind: &'static str, item: &str, total_bytes: u64) -> ProgressReader<R> {
        let item: String = item.chars().take(200).collect();
        tracing::info!(kind, item = %item, total_bytes, "started");
        let now = Instant::now();
        ProgressReader {
            inner,
            progress: metrics().long_work(kind, &item, total_bytes),
            done: 0,
            started: now,
            last_log: now,
        }
    }

    /// Bytes read so far.
    pub fn done(&self) -> u64 {
        self.done
    }
}

impl<R: std::io::Read> std::io::Read for ProgressReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.set_done(self.done);
        if self.last_log.elapsed() >= PROGRESS_LOG_EVERY {
            self.last_log = Instant::now();
            let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            tracing::info!(
                kind = self.progress.labels.kind,
                item = %self.progress.labels.item,
                done_bytes = self.done,
                bytes_per_second = rate as u64,
                "in progress"
            );
        }
        Ok(n)
    }
}

/// Times a piece of work: `let t = Timer::start(); ...; t.elapsed()`.
#[derive(Debug, Clone, Copy)]
pub struct Timer(Instant);

impl Timer {
    pub fn start() -> Timer {
        Timer(Instant::now())
    }

    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process-wide instruments.
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::prometheus_text::encode;

    fn text() -> String {
        let mut out = String::new();
        encode(&mut out, metrics().registry()).unwrap();
        out
    }

    #[test]
    fn recordings_show_up_in_the_text_format() {
        let m = metrics();
        m.rpc("one.vm.info", Duration::from_micros(120), None);
        m.rpc("one.vm.info", Duration::from_micros(80), Some(1024));
        m.sqlite_commit(Duration::from_millis(2), true);
        m.driver("vmm", "deploy", "node-1", Duration::from_millis(300), true);
        let t = text();
        assert!(
            t.contains("stratusd_xmlrpc_failures_total{method=\"one.vm.info\",code=\"1024\"} 1"),
            "{t}"
        );
        assert!(t.contains("# TYPE stratusd_xmlrpc_request_duration_seconds histogram"));
        assert!(t.contains(
            "stratusd_driver_operations_total{driver=\"vmm\",operation=\"deploy\",host=\"node-1\",outcome=\"ok\"}"
        ));
    }

    #[test]
    fn long_work_comes_and_goes() {
        let m = metrics();
        let work = m.long_work("image_download", "unit-test-image", 1000);
        work.set_done(250);
        let t = text();
        assert!(t.contains(
            "stratusd_long_work_done_bytes{kind=\"image_download\",item=\"unit-test-image\"} 250"
        ));
        drop(work);
        assert!(!text().contains("unit-test-image"));
    }

    #[test]
    fn a_progress_reader_publishes_the_bytes_read() {
        use std::io::Read;
        let data = vec![7u8; 10_000];
        let mut r = ProgressReader::new(&data[..], "volume_fill", "unit-test-volume", 10_000);
        let mut buf = [0u8; 4000];
        assert_eq!(r.read(&mut buf).unwrap(), 4000);
        assert!(text().contains(
            "stratusd_long_work_done_bytes{kind=\"volume_fill\",item=\"unit-test-volume\"} 4000"
        ));
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(r.done(), 10_000);
        drop(r);
        assert!(!text().contains("unit-test-volume"));
    }
}
