//! What the benchmark reads about the daemon process from /proc: resident memory (VmRSS), its
//! peak (VmHWM, which can be reset through clear_refs) and CPU time.

use super::BenchError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn status_kib(pid: u32, field: &str) -> Result<u64, BenchError> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| BenchError::Proc(path.clone(), e))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| BenchError::Protocol(format!("{path} has no {field}")))
}

/// Resident memory now, KiB, and the thread count: the whole RSS, its anonymous part (the
/// daemon's heap and stacks) and its file-backed part (mapped binaries and shared libraries).
pub struct Memory {
    pub rss_kib: u64,
    pub anon_kib: u64,
    pub file_kib: u64,
    pub threads: u64,
}

pub fn memory(pid: u32) -> Result<Memory, BenchError> {
    Ok(Memory {
        rss_kib: status_kib(pid, "VmRSS")?,
        anon_kib: status_kib(pid, "RssAnon")?,
        file_kib: status_kib(pid, "RssFile")?,
        threads: status_kib(pid, "Threads")?,
    })
}

/// Resident set size now, KiB.
pub fn rss_kib(pid: u32) -> Result<u64, BenchError> {
    status_kib(pid, "VmRSS")
}

/// Peak resident set size since start or since the last [`reset_peak`], KiB.
pub fn peak_kib(pid: u32) -> Result<u64, BenchError> {
    status_kib(pid, "VmHWM")
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0: `echo 5 > /proc/PID/clear_refs`).
pub fn reset_peak(pid: u32) -> Result<(), BenchError> {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").map_err(|e| BenchError::Proc(path, e))
}

/// utime + stime of the process, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64, BenchError> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| BenchError::Proc(path.clone(), e))?;
    // The command name may hold spaces; fields are counted after its closing parenthesis.
    let after = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| BenchError::Protocol(format!("{path}: no command field")))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((ticks(11) + ticks(12)) as f64 / hz)
}

/// Samples VmRSS every few milliseconds in a thread, keeping the largest value seen (a second
/// view of the peak besides VmHWM).
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(0));
        let (s, m) = (Arc::clone(&stop), Arc::clone(&max));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(kib) = rss_kib(pid) {
                    m.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        RssSampler {
            stop,
            max,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the largest RSS seen, KiB.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.max.load(Ordering::Relaxed)
    }
}
