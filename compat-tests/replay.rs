//! Compatibility replay: proves that stratusd answers like a real OpenNebula 3.2 oned by
//! replaying the sessions recorded from one (`fixtures/oned-3.2/*.jsonl`), each against a
//! fresh daemon. See `compat-tests/README.md`.
//!
//! `cargo test --test compat [-- FILTER...]`; `-- --self-test` runs only the harness's checks.

mod harness;

use harness::catalog::{self, Entry, Expectation};
use harness::daemon::{self, Daemon};
use harness::http::HttpClient;
use harness::selftest;
use harness::session::{self, ReplayReport, ReplaySettings};
use std::collections::VecDeque;
use std::env;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// The image file that sessions 04 and 08 register (README: any non-empty file < 1 MB).
const TTYLINUX_IMAGE: &str = "/srv/cloud/images/ttylinux.img";
const TTYLINUX_IMAGE_SIZE: usize = 65536;
const POLL_INTERVAL: Duration = Duration::from_millis(100);
const POLL_BUDGET_AFTER_FAILURE: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 30;
/// Sessions replayed at once: the machines have 2 cores, and each session runs a daemon.
const MAX_PARALLEL_SESSIONS: usize = 2;
/// Longest line kept for each further differing call of a failed session.
const BRIEF_LINE_CHARS: usize = 220;

/// Settings from the environment (see README.md).
struct Settings {
    daemon_binary: Option<PathBuf>,
    poll_budget: Duration,
    start_timeout: Duration,
    run_pending: bool,
    keep_work_dirs: bool,
    jobs: usize,
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let seconds = |name: &str, default: f64| -> Result<Duration, String> {
            match env::var(name) {
                Err(_) => Ok(Duration::from_secs_f64(default)),
                Ok(text) => text
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| format!("{name}={text:?} is not a number of seconds")),
            }
        };
        let flag = |name: &str| env::var(name).is_ok_and(|v| v == "1");
        let jobs = match env::var("COMPAT_JOBS") {
            Err(_) => MAX_PARALLEL_SESSIONS,
            Ok(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PARALLEL_SESSIONS).contains(n))
                .ok_or_else(|| {
                    format!("COMPAT_JOBS={text:?}: expected 1 to {MAX_PARALLEL_SESSIONS}")
                })?,
        };
        let daemon_binary = env::var_os("STRATUSD_BIN")
            .map(PathBuf::from)
            .or_else(|| option_env!("CARGO_BIN_EXE_stratusd").map(PathBuf::from));
        Ok(Settings {
            daemon_binary,
            poll_budget: seconds("COMPAT_POLL_SECS", 60.0)?,
            start_timeout: seconds("COMPAT_START_SECS", 30.0)?,
            run_pending: flag("COMPAT_RUN_PENDING"),
            keep_work_dirs: flag("COMPAT_KEEP"),
            jobs,
        })
    }
}

/// Command-line arguments: session filters and the few test-runner flags that matter.
#[derive(Default)]
struct Options {
    /// Substrings of session names (any one selects); all sessions when empty.
    filters: Vec<String>,
    /// `--skip S`: sessions whose name contains S are left out.
    skips: Vec<String>,
    /// `--exact`: filters must equal the whole name.
    exact: bool,
    self_test_only: bool,
    /// `--list` (with `--ignored`: list nothing, no session is "ignored").
    list: bool,
    list_ignored: bool,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--self-test" => options.self_test_only = true,
                "--list" => options.list = true,
                "--ignored" => options.list_ignored = true,
                "--exact" => options.exact = true,
                "--skip" => options.skips.push(
                    args.next()
                        .ok_or_else(|| "--skip needs a value".to_string())?,
                ),
                // Other flags that cargo or a habit may pass to any test binary.
                flag if flag.starts_with('-') => println!("compat: ignoring argument {flag}"),
                filter => options.filters.push(filter.to_string()),
            }
        }
        Ok(options)
    }

    fn selects(&self, name: &str) -> bool {
        let matches = |filter: &String| {
            if self.exact {
                name == filter
            } else {
                name.contains(filter.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skips.iter().any(|skip| name.contains(skip.as_str()))
    }
}

/// One session to replay.
struct Job {
    entry: Entry,
    session: session::Session,
}

/// What one session's replay produced.
struct Outcome {
    pending: bool,
    passed: bool,
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            println!("compat: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Ok(true) when every session expected to pass did.
fn run() -> Result<bool, String> {
    let options = Options::parse(env::args().skip(1))?;
    let fixtures_dir = Path::new(MANIFEST_DIR).join("fixtures/oned-3.2");
    let catalog_path = Path::new(MANIFEST_DIR).join("compat-tests/sessions.toml");

    if options.list {
        // Test-runner protocol (`--list`): the sessions that a plain run would replay.
        let settings = Settings::from_env()?;
        for entry in catalog::load(&catalog_path, &fixtures_dir)? {
            let runs = settings.run_pending || entry.expectation == Expectation::Pass;
            if runs && options.selects(&entry.name) && !options.list_ignored {
                println!("{}: test", entry.name);
            }
        }
        return Ok(true);
    }

    let started = Instant::now();
    let checks = selftest::run_all(&fixtures_dir);
    if !checks.failures().is_empty() {
        for failure in checks.failures() {
            println!("self-test FAILED: {failure}");
        }
        return Err(format!(
            "harness self-test: {} of {} checks failed",
            checks.failures().len(),
            checks.failures().len() + checks.passed()
        ));
    }
    println!(
        "harness self-test: {} checks ok ({:.1} s)",
        checks.passed(),
        started.elapsed().as_secs_f64()
    );
    if options.self_test_only {
        return Ok(true);
    }

    let settings = Settings::from_env()?;
    let entries = catalog::load(&catalog_path, &fixtures_dir)?;
    let selected: Vec<Entry> = entries
        .into_iter()
        .filter(|e| options.selects(&e.name))
        .collect();
    if selected.is_empty() {
        // Not an error: `cargo test NAME` passes NAME to every test target, this one too.
        println!(
            "compat: no session matches {:?}; nothing replayed",
            options.filters
        );
        println!("0 passed, 0 failed");
        return Ok(true);
    }

    let mut jobs = VecDeque::new();
    let mut skipped = 0;
    for entry in selected {
        if let Expectation::Pending { reason } = &entry.expectation {
            skipped += 1;
            if !settings.run_pending {
                println!("SKIP {} — {reason}", entry.name);
                continue;
            }
        }
        let session = session::load(&fixtures_dir, &entry.name)?;
        jobs.push_back(Job { entry, session });
    }
    if !jobs.is_empty() {
        prepare_run(&settings, &jobs)?;
    }
    let outcomes = run_jobs(jobs, &settings)?;

    let count = |pending: bool, passed: bool| {
        outcomes
            .iter()
            .filter(|o| o.pending == pending && o.passed == passed)
            .count()
    };
    let (passed, failed) = (count(false, true), count(false, false));
    let (pending_ok, pending_not_ok) = (count(true, true), count(true, false));
    if pending_ok + pending_not_ok > 0 {
        println!("pending sessions run (not counted): {pending_ok} ok, {pending_not_ok} not ok");
    }
    let mut summary = format!("{passed} passed, {failed} failed");
    if skipped > 0 {
        summary.push_str(&format!(", {skipped} skipped"));
    }
    println!("{summary}");
    Ok(failed == 0)
}

/// Checks the daemon binary and sets up the recordings' preconditions.
fn prepare_run(settings: &Settings, jobs: &VecDeque<Job>) -> Result<(), String> {
    let binary = settings
        .daemon_binary
        .as_ref()
        .ok_or("no daemon binary: set STRATUSD_BIN or run through `cargo test --test compat`")?;
    if !binary.is_file() {
        return Err(format!("daemon binary {} does not exist", binary.display()));
    }
    if jobs
        .iter()
        .any(|j| j.session.requests_mention(TTYLINUX_IMAGE))
    {
        match ensure_ttylinux_image() {
            Ok(Some(note)) => println!("compat: {note}"),
            Ok(None) => {}
            // The sessions that need it will fail and show why; the others can still run.
            Err(problem) => println!("compat: warning: {problem}"),
        }
    }
    Ok(())
}

/// Makes sure the image file the recordings register exists; returns a note when created.
fn ensure_ttylinux_image() -> Result<Option<String>, String> {
    let path = Path::new(TTYLINUX_IMAGE);
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.len() > 0 && meta.len() < 1_000_000 => Ok(None),
        Ok(meta) => Err(format!(
            "{TTYLINUX_IMAGE} exists but is not a non-empty file of less than 1 MB ({} bytes)",
            meta.len()
        )),
        Err(_) => {
            let create = || -> std::io::Result<()> {
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)?;
                }
                fs::write(path, vec![0u8; TTYLINUX_IMAGE_SIZE])
            };
            create()
                .map(|()| {
                    Some(format!(
                        "created {TTYLINUX_IMAGE} ({TTYLINUX_IMAGE_SIZE} zero bytes), which the recordings register"
                    ))
                })
                .map_err(|e| format!("cannot create {TTYLINUX_IMAGE}: {e}"))
        }
    }
}

/// Runs the jobs on `settings.jobs` threads; each session's lines are printed at once when
/// it ends, so that parallel sessions do not interleave.
fn run_jobs(jobs: VecDeque<Job>, settings: &Settings) -> Result<Vec<Outcome>, String> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let work_root = env::temp_dir().join(format!("stratusd-compat-{}", std::process::id()));
    fs::create_dir_all(&work_root)
        .map_err(|e| format!("cannot create {}: {e}", work_root.display()))?;
    let workers = settings.jobs.min(jobs.len());
    let queue = Mutex::new(jobs);
    let outcomes = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let job = match queue.lock() {
                    Ok(mut queue) => queue.pop_front(),
                    Err(_) => None,
                };
                let Some(job) = job else { break };
                let (outcome, lines) = run_session(&job, settings, &work_root);
                let mut out = std::io::stdout().lock();
                for line in lines {
                    let _ = writeln!(out, "{line}");
                }
                let _ = out.flush();
                drop(out);
                if let Ok(mut outcomes) = outcomes.lock() {
                    outcomes.push(outcome);
                }
            });
        }
    });
    // Only removes the root when no failed session left its directory behind.
    let _ = fs::remove_dir(&work_root);
    outcomes
        .into_inner()
        .map_err(|_| "a session thread panicked".to_string())
}

/// Replays one session on its own daemon; returns its outcome and its output lines.
fn run_session(job: &Job, settings: &Settings, work_root: &Path) -> (Outcome, Vec<String>) {
    let name = &job.entry.name;
    let pending_reason = match &job.entry.expectation {
        Expectation::Pending { reason } => Some(reason.as_str()),
        Expectation::Pass => None,
    };
    let started = Instant::now();
    let work_dir = work_root.join(name);
    let _ = fs::remove_dir_all(&work_dir);
    let mut problems = Vec::new();
    let mut report = ReplayReport::default();
    let log_path;

    // `settings.daemon_binary` was checked by `prepare_run`.
    let binary = settings.daemon_binary.clone().unwrap_or_default();
    match Daemon::start(&binary, &work_dir, settings.start_timeout) {
        Err((error, log)) => {
            problems.push(format!("daemon did not start: {error}"));
            log_path = log;
        }
        Ok(mut daemon) => {
            let mut client = HttpClient::new(daemon.addr(), REQUEST_TIMEOUT);
            let replay_settings = ReplaySettings {
                poll_budget: settings.poll_budget,
                poll_interval: POLL_INTERVAL,
                poll_budget_after_failure: POLL_BUDGET_AFTER_FAILURE,
                data_dir_prefix: Some(format!("{}/", work_dir.join("data").display())),
            };
            let mut daemon_gone = || {
                daemon
                    .exited()
                    .map(|status| format!("the daemon exited: {}", daemon::describe_status(status)))
            };
            report = session::replay(
                &job.session,
                &mut client,
                &replay_settings,
                &mut daemon_gone,
            );
            drop(client); // close the connection before asking the daemon to stop
            if let Err(problem) = daemon.stop(STOP_TIMEOUT) {
                problems.push(format!("shutdown: {problem}"));
            }
            log_path = daemon.log_path().to_path_buf();
        }
    }
    if let Some(aborted) = &report.aborted {
        problems.insert(0, format!("replay stopped: {aborted}"));
    }

    let seconds = started.elapsed().as_secs_f64();
    let passed = report.failures.is_empty() && problems.is_empty();
    let pending_tag = pending_reason
        .map(|reason| format!(" [pending, not counted: {reason}]"))
        .unwrap_or_default();
    let mut lines = Vec::new();
    if passed {
        lines.push(format!(
            "PASS {name} ({} calls, {seconds:.1} s){pending_tag}",
            report.calls
        ));
        if !settings.keep_work_dirs {
            let _ = fs::remove_dir_all(&work_dir);
        }
    } else {
        let headline = match report.failures.first() {
            Some(first) => first.describe(),
            None => problems.first().cloned().unwrap_or_default(),
        };
        lines.push(format!("FAIL {name}{pending_tag}: {headline}"));
        if report.failures.len() > 1 {
            let seqs: Vec<String> = report.failures.iter().map(|f| f.seq.to_string()).collect();
            lines.push(format!(
                "    {} differing calls: seq {}",
                report.failures.len(),
                seqs.join(", ")
            ));
            for failure in &report.failures[1..] {
                lines.push(format!(
                    "    {}",
                    shorten(&failure.describe(), BRIEF_LINE_CHARS)
                ));
            }
        }
        let skip = usize::from(report.failures.is_empty());
        for problem in problems.iter().skip(skip) {
            lines.push(format!("    {problem}"));
        }
        lines.push(format!("    work dir kept: {}", work_dir.display()));
        lines.push(format!(
            "    daemon log (last {LOG_TAIL_LINES} lines of {}):",
            log_path.display()
        ));
        let tail = daemon::log_tail(&log_path, LOG_TAIL_LINES);
        if tail.trim().is_empty() {
            lines.push("    | (empty)".to_string());
        }
        for line in tail.lines() {
            lines.push(format!("    | {line}"));
        }
    }
    let outcome = Outcome {
        pending: pending_reason.is_some(),
        passed,
    };
    (outcome, lines)
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let head: String = text.chars().take(max_chars - 1).collect();
        format!("{head}…")
    }
}
