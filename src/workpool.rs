//! Bounded blocking work. Driver steps (VMM and TM: deployments, transfers, Marketplace
//! downloads), host monitoring, cleanups of finished VMs and image copies each run on at most
//! a fixed number of threads; more work waits its turn in FIFO order — it is queued, never
//! refused — so a burst (10,000 VMs deployed at once, a thousand hosts due together, many
//! `one.image.allocate` copies) cannot grow the thread count or the machine's load without
//! bound. Depends on nothing else in the crate.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::Semaphore;

/// At most this many driver steps (VMM/TM) at once.
pub const DRIVER_STEPS_AT_ONCE: usize = 16;
/// At most this many host monitorings at once (3.2's `HOST_PER_INTERVAL` was 15).
pub const HOST_MONITORS_AT_ONCE: usize = 16;
/// At most this many cleanups of finished VMs at once.
pub const CLEANUPS_AT_ONCE: usize = 4;
/// At most this many image copies (`one.image.allocate` with a PATH) at once.
pub const IMAGE_COPIES_AT_ONCE: usize = 2;

/// A limit on blocking jobs running at once, for callers on the runtime.
#[derive(Clone)]
pub struct Limit {
    name: &'static str,
    at_once: usize,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

impl Limit {
    pub fn new(name: &'static str, at_once: usize) -> Limit {
        Limit {
            name,
            at_once,
            permits: Arc::new(Semaphore::new(at_once.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `job` on a blocking thread as soon as fewer than the limit's jobs run, waiting
    /// (in order of submission) until then; returns at once. Must be called on the runtime.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        let permits = Arc::clone(&self.permits);
        let waiting = Arc::clone(&self.waiting);
        let queued = waiting.fetch_add(1, Ordering::SeqCst) + 1;
        if queued > 1 && permits.available_permits() == 0 {
            tracing::debug!(
                work = self.name,
                queued,
                at_once = self.at_once,
                "work queued"
            );
        }
        let name = self.name;
        tokio::spawn(async move {
            // The semaphore is never closed.
            let permit = permits.acquire_owned().await;
            waiting.fetch_sub(1, Ordering::SeqCst);
            let ran = tokio::task::spawn_blocking(move || {
                job();
                // Given back when the job ends (or unwinds).
                drop(permit);
            })
            .await;
            if let Err(e) = ran {
                tracing::error!(work = name, error = %e, "a bounded job panicked");
            }
        });
    }

    /// Jobs waiting for their turn.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.at_once.max(1) - self.permits.available_permits()
    }
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of threads for callers outside the runtime (an XML-RPC handler runs on a
/// blocking thread): jobs wait in a channel, in order.
pub struct Threads {
    queue: Mutex<mpsc::Sender<Job>>,
    waiting: Arc<AtomicUsize>,
}

impl Threads {
    /// Starts `at_once` threads named after the work.
    pub fn new(name: &'static str, at_once: usize) -> std::io::Result<Threads> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let waiting = Arc::new(AtomicUsize::new(0));
        for i in 0..at_once.max(1) {
            let (rx, waiting) = (Arc::clone(&rx), Arc::clone(&waiting));
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || loop {
                    let next = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    let Ok(job) = next else { return };
                    waiting.fetch_sub(1, Ordering::SeqCst);
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!(work = name, "a bounded job panicked");
                    }
                })?;
        }
        Ok(Threads {
            queue: Mutex::new(tx),
            waiting,
        })
    }

    /// Queues `job`; one of the threads runs it when free. Returns how many jobs wait.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) -> usize {
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        let sent = match self.queue.lock() {
            Ok(q) => q.send(Box::new(job)),
            Err(poisoned) => poisoned.into_inner().send(Box::new(job)),
        };
        if sent.is_err() {
            // The threads only end with the queue; never while it is alive.
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        queued
    }

    /// Jobs waiting for a thread.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Counts the jobs running at once and the highest count seen.
    #[derive(Default)]
    struct Gauge {
        now: AtomicUsize,
        peak: AtomicUsize,
        done: AtomicUsize,
    }

    impl Gauge {
        fn job(self: &Arc<Self>) -> impl FnOnce() + Send + 'static {
            let g = Arc::clone(self);
            move || {
                let n = g.now.fetch_add(1, Ordering::SeqCst) + 1;
                g.peak.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                g.now.fetch_sub(1, Ordering::SeqCst);
                g.done.fetch_add(1, Ordering::SeqCst);
            }
        }

        fn wait_for(&self, n: usize) {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while self.done.load(Ordering::SeqCst) < n {
                assert!(std::time::Instant::now() < deadline, "jobs did not all run");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_on_the_runtime_is_queued_and_runs_at_most_the_limit_at_once() {
        let limit = Limit::new("test", 3);
        let gauge = Arc::new(Gauge::default());
        for _ in 0..40 {
            limit.spawn(gauge.job());
        }
        assert!(limit.waiting() + limit.running() <= 40);
        let g = Arc::clone(&gauge);
        tokio::task::spawn_blocking(move || g.wait_for(40))
            .await
            .unwrap();
        assert_eq!(gauge.peak.load(Ordering::SeqCst), 3);
        assert_eq!(limit.waiting(), 0);
        // A panicking job gives its turn back.
        limit.spawn(|| panic!("job failed"));
        for _ in 0..4 {
            limit.spawn(gauge.job());
        }
        let g = Arc::clone(&gauge);
        tokio::task::spawn_blocking(move || g.wait_for(44))
            .await
            .unwrap();
    }

    #[test]
    fn a_burst_from_outside_the_runtime_is_queued_and_runs_on_the_fixed_threads() {
        let threads = Threads::new("test-copies", 2).unwrap();
        let gauge = Arc::new(Gauge::default());
        let mut most_waiting = 0;
        for _ in 0..30 {
            most_waiting = most_waiting.max(threads.submit(gauge.job()));
        }
        threads.submit(|| panic!("job failed"));
        threads.submit(gauge.job());
        gauge.wait_for(31);
        assert_eq!(gauge.peak.load(Ordering::SeqCst), 2);
        assert!(most_waiting > 2, "the burst never queued: {most_waiting}");
        assert_eq!(threads.waiting(), 0);
    }
}
