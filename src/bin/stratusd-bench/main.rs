//! stratusd-bench: the reproducible benchmark of `bench/run.sh`. It starts a stratusd on a fresh
//! data directory, fills it over XML-RPC (an ordinary user registered by the StratusLab default
//! driver, N held VMs, simulated hosts), measures the read calls with wrk and the rest itself
//! (allocation rates, allocate→RUNNING, RSS from /proc), and prints the table of
//! shared/perf/oned-3.2-baseline.md with the oned figure and the ratio next to each row.
//!
//! It only measures: nothing here checks a figure against a target.

mod baseline;
mod client;
mod daemon;
mod process;
mod report;
mod wrk;

use baseline::Call;
use clap::Parser;
use client::{int, session, text, Client};
use daemon::Daemon;
use report::{FigureRow, LoadRow};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot run {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("cannot read {0}: {1}")]
    Proc(String, std::io::Error),
    #[error("{method} failed: {body}")]
    Refused { method: String, body: String },
    #[error("{0}")]
    Protocol(String),
}

#[derive(Debug, Parser)]
#[command(
    name = "stratusd-bench",
    about = "stratusd benchmark (see bench/run.sh)"
)]
struct Args {
    /// The stratusd binary to measure (a release build).
    #[arg(long, default_value = "target/release/stratusd")]
    stratusd: PathBuf,
    /// The wrk script that checks every answer (HTTP 200 and `<boolean>1</boolean>`).
    #[arg(long, default_value = "bench/xmlrpc-post.lua")]
    script: PathBuf,
    /// The wrk script that checks the HTTP status only (the pool listings are measured with
    /// both: wrk's copy of each body into Lua is a large part of the cost of the first).
    #[arg(long, default_value = "bench/xmlrpc-post-status.lua")]
    status_script: PathBuf,
    /// Directory of the request bodies.
    #[arg(long, default_value = "bench/bodies")]
    bodies: PathBuf,
    /// A fresh directory for the daemon's data (created).
    #[arg(long)]
    data_dir: PathBuf,
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Runs per measurement point (interleaved, medians reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Connection counts of every wrk point.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    connections: Vec<u32>,
    /// VMs in the large pool.
    #[arg(long, default_value_t = 10_000)]
    large_pool: usize,
    /// Simulated hosts registered before the allocate→RUNNING measurement.
    #[arg(long, default_value_t = 1_000)]
    hosts: usize,
    /// VMs of the allocate→RUNNING measurement.
    #[arg(long, default_value_t = 1_000)]
    run_vms: usize,
}

const ADMIN: &str = "oneadmin:password";
/// An ordinary StratusLab user, unknown to the daemon until its first call.
const USER: &str = "alice:s3cret";
const SMALL_POOL: usize = 1_000;
/// How long an idle measurement waits for the blocking pool to shrink (tokio: 10 s keep-alive).
const SETTLE: Duration = Duration::from_secs(20);

fn template() -> &'static str {
    "NAME = \"perf-vm\"\nCPU = 1\nVCPU = 1\nMEMORY = 256\n"
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn progress(msg: &str) {
    eprintln!("[bench {}] {msg}", load_average());
}

/// Allocates `count` VMs sequentially as `who`; returns their ids and the VMs/s.
fn allocate(client: &mut Client, who: &str, count: usize) -> Result<(Vec<i32>, f64), BenchError> {
    let mut ids = Vec::with_capacity(count);
    let start = Instant::now();
    for _ in 0..count {
        let answer = client.call_ok("one.vm.allocate", vec![session(who), text(template())])?;
        ids.push(
            answer
                .id()
                .ok_or_else(|| BenchError::Protocol("allocate returned no id".into()))?,
        );
    }
    Ok((ids, count as f64 / start.elapsed().as_secs_f64()))
}

/// Puts the VMs on HOLD sequentially; returns holds/s.
fn hold(client: &mut Client, who: &str, ids: &[i32]) -> Result<f64, BenchError> {
    let start = Instant::now();
    for id in ids {
        client.call_ok("one.vm.action", vec![session(who), text("hold"), int(*id)])?;
    }
    Ok(ids.len() as f64 / start.elapsed().as_secs_f64())
}

/// How wrk checks the answers of a measurement point.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// HTTP 200 and `<boolean>1</boolean>` in every answer, as the oned baseline did.
    EveryAnswer,
    /// HTTP status only (answers not handed to Lua).
    StatusOnly,
}

impl Check {
    fn label(self) -> &'static str {
        match self {
            Check::EveryAnswer => "every answer",
            Check::StatusOnly => "status only",
        }
    }
}

struct Bench {
    args: Args,
    daemon: Daemon,
    loads: Vec<LoadRow>,
    figures: Vec<FigureRow>,
}

impl Bench {
    fn wrk(&self, check: Check) -> wrk::Wrk<'_> {
        wrk::Wrk {
            script: match check {
                Check::EveryAnswer => &self.args.script,
                Check::StatusOnly => &self.args.status_script,
            },
            addr: self.daemon.addr,
            seconds: self.args.seconds,
        }
    }

    /// Every point at every connection count, `runs` times, interleaved as the baseline did.
    fn measure(&mut self, points: &[(Call, Check)], vms: usize) -> Result<(), BenchError> {
        let mut client = Client::new(self.daemon.addr);
        let mut rows: Vec<LoadRow> = Vec::new();
        for &(call, check) in points {
            // The body must answer a success before wrk repeats it (the status-only script
            // cannot tell).
            let body = std::fs::read(self.args.bodies.join(call.body_file()))?;
            let answer = client.post(&body)?;
            if !answer.ok {
                return Err(BenchError::Refused {
                    method: call.label().into(),
                    body: answer.body.chars().take(400).collect(),
                });
            }
            for &c in &self.args.connections {
                rows.push(LoadRow {
                    call: call.label(),
                    check: check.label(),
                    vms,
                    connections: c,
                    runs: Vec::new(),
                    cpu_percent: Vec::new(),
                    oned_rps: baseline::oned_rps(call, vms, c),
                });
            }
        }
        drop(client);
        for run in 0..self.args.runs {
            let mut i = 0;
            for &(call, check) in points {
                let body = self.args.bodies.join(call.body_file());
                for &c in &self.args.connections {
                    let cpu_before = process::cpu_seconds(self.daemon.pid)?;
                    let started = Instant::now();
                    let result = self.wrk(check).run(&body, c)?;
                    let cpu = (process::cpu_seconds(self.daemon.pid)? - cpu_before)
                        / started.elapsed().as_secs_f64()
                        * 100.0;
                    progress(&format!(
                        "run {} {} ({}) vms={vms} c={c}: {:.0} req/s p99 {:.2} ms cpu {cpu:.0}% {} B/answer failures {}",
                        run + 1,
                        call.label(),
                        check.label(),
                        result.rps,
                        result.p99_ms,
                        result.bytes / result.requests.max(1),
                        result.failures
                    ));
                    rows[i].runs.push(result);
                    rows[i].cpu_percent.push(cpu);
                    i += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        self.loads.extend(rows);
        Ok(())
    }

    /// RSS once the daemon is idle: blocking-pool threads left from a burst of work (tokio
    /// keeps them 10 s) are waited for, up to `settle`.
    fn rss(&mut self, what: &str, oned: Option<u64>, settle: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + settle;
        let mut m = process::memory(self.daemon.pid)?;
        // The main thread, one runtime worker per CPU, and one more.
        let idle_threads = 2 + std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        while m.threads > idle_threads && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            m = process::memory(self.daemon.pid)?;
        }
        let what = format!(
            "{what} (anon {} + file {} KiB, {} threads)",
            m.anon_kib, m.file_kib, m.threads
        );
        progress(&format!("{what}: {} KiB", m.rss_kib));
        self.figures.push(FigureRow {
            what,
            value: m.rss_kib as f64,
            unit: "KiB",
            oned: oned.map(|o| o as f64),
            lower_is_better: true,
        });
        Ok(())
    }

    fn rate(&mut self, what: String, value: f64, oned: Option<f64>) {
        progress(&format!("{what}: {value:.0} VMs/s"));
        self.figures.push(FigureRow {
            what,
            value,
            unit: "VMs/s",
            oned,
            lower_is_better: false,
        });
    }

    /// Peak RSS while 16 connections list the large pool (VmHWM reset first; also sampled).
    fn peak_during_listings(&mut self, vms: usize) -> Result<(), BenchError> {
        let pid = self.daemon.pid;
        process::reset_peak(pid)?;
        let sampler = process::RssSampler::start(pid);
        let body = self.args.bodies.join(Call::VmPoolAll.body_file());
        let result = self.wrk(Check::EveryAnswer).run(&body, 16)?;
        let sampled = sampler.finish();
        let hwm = process::peak_kib(pid)?;
        progress(&format!(
            "peak during 16 listings: VmHWM {hwm} KiB, sampled {sampled} KiB, {:.1} req/s",
            result.rps
        ));
        self.figures.push(FigureRow {
            what: format!("peak RSS (VmHWM) during 16 concurrent {vms}-VM listings"),
            value: hwm.max(sampled) as f64,
            unit: "KiB",
            oned: Some(baseline::ONED_PEAK_10000_LISTINGS_KIB as f64),
            lower_is_better: true,
        });
        Ok(())
    }

    /// Allocates VMs that the scheduler places at once on the simulated hosts; VMs/s from
    /// the first allocation until every one of them is RUNNING.
    fn allocate_to_running(&mut self, client: &mut Client) -> Result<(), BenchError> {
        let count = self.args.run_vms;
        let start = Instant::now();
        let (ids, alloc_rate) = allocate(client, ADMIN, count)?;
        let (first, last) = match (ids.first(), ids.last()) {
            (Some(f), Some(l)) => (*f, *l),
            _ => return Ok(()),
        };
        let running = "&lt;LCM_STATE&gt;3&lt;/LCM_STATE&gt;";
        let deadline = start + Duration::from_secs(600);
        loop {
            let answer = client.call_ok(
                "one.vmpool.info",
                vec![session(ADMIN), int(-2), int(first), int(last), int(3)],
            )?;
            if answer.body.matches(running).count() >= count {
                break;
            }
            if Instant::now() > deadline {
                return Err(BenchError::Protocol("VMs not RUNNING after 600 s".into()));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let rate = count as f64 / start.elapsed().as_secs_f64();
        progress(&format!("(allocations alone ran at {alloc_rate:.0} VMs/s)"));
        self.rate(
            format!(
                "allocate → RUNNING, {count} VMs, {} simulated hosts, {} held VMs in the pool",
                self.args.hosts, self.args.large_pool
            ),
            rate,
            None,
        );
        Ok(())
    }

    fn run(&mut self) -> Result<(), BenchError> {
        let mut client = Client::new(self.daemon.addr);
        std::thread::sleep(Duration::from_secs(2));
        self.rss(
            "RSS idle, fresh database",
            Some(baseline::ONED_RSS_IDLE_KIB),
            SETTLE,
        )?;

        // The ordinary user comes into being on its first call (StratusLab default driver).
        client.call_ok("one.user.info", vec![session(USER), int(-1)])?;

        let (ids, rate) = allocate(&mut client, ADMIN, SMALL_POOL)?;
        self.rate(
            format!("one.vm.allocate sequential, 0 → {SMALL_POOL}"),
            rate,
            Some(baseline::ONED_ALLOCATE_0_1000),
        );
        let rate = hold(&mut client, ADMIN, &ids)?;
        self.rate(
            format!("one.vm.action hold sequential, {SMALL_POOL} VMs"),
            rate,
            Some(baseline::ONED_HOLD_0_1000),
        );
        self.rss(
            &format!("RSS, {SMALL_POOL} held VMs"),
            Some(baseline::ONED_RSS_1000_VMS_KIB),
            SETTLE,
        )?;
        self.measure(
            &[
                (Call::VmInfoAdmin, Check::EveryAnswer),
                (Call::UserInfoAdmin, Check::EveryAnswer),
                (Call::VmPoolAll, Check::EveryAnswer),
                (Call::VmPoolAll, Check::StatusOnly),
            ],
            SMALL_POOL,
        )?;

        // alice's own held VM, id 1000 as in the request body.
        let (alice_vm, _) = allocate(&mut client, USER, 1)?;
        hold(&mut client, USER, &alice_vm)?;
        self.measure(&[(Call::VmInfoUser, Check::EveryAnswer)], SMALL_POOL + 1)?;

        let more = self.args.large_pool.saturating_sub(SMALL_POOL + 1);
        let (ids, rate) = allocate(&mut client, ADMIN, more)?;
        self.rate(
            format!(
                "one.vm.allocate sequential, {} → {}",
                SMALL_POOL + 1,
                self.args.large_pool
            ),
            rate,
            Some(baseline::ONED_ALLOCATE_1000_10000),
        );
        let rate = hold(&mut client, ADMIN, &ids)?;
        self.rate(
            format!("one.vm.action hold sequential, {more} VMs"),
            rate,
            Some(baseline::ONED_HOLD_1000_10000),
        );
        let large = self.args.large_pool;
        self.rss(
            &format!("RSS, {large} held VMs"),
            Some(baseline::ONED_RSS_10000_VMS_KIB),
            SETTLE,
        )?;
        self.measure(
            &[
                (Call::VmPoolAll, Check::EveryAnswer),
                (Call::VmPoolAll, Check::StatusOnly),
            ],
            large,
        )?;
        self.peak_during_listings(large)?;

        for i in 0..self.args.hosts {
            client.call_ok(
                "one.host.allocate",
                vec![
                    session(ADMIN),
                    text(&format!("sim{i:04}")),
                    text("im_dummy"),
                    text("vmm_dummy"),
                    text("dummy"),
                    text("tm_dummy"),
                ],
            )?;
        }
        // The first monitoring of every host comes about a second after its allocation.
        let monitored = "&lt;STATE&gt;2&lt;/STATE&gt;";
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let answer = client.call_ok("one.hostpool.info", vec![session(ADMIN)])?;
            if answer.body.matches(monitored).count() >= self.args.hosts
                || Instant::now() > deadline
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        self.rss(
            &format!(
                "RSS idle, {large} held VMs + {} monitored hosts",
                self.args.hosts
            ),
            Some(baseline::ONED_RSS_10000_VMS_KIB),
            SETTLE,
        )?;
        self.allocate_to_running(&mut client)?;
        Ok(())
    }

    fn print(&self) {
        println!("{}", report::load_header());
        for row in &self.loads {
            println!("{}", row.line());
        }
        println!();
        println!("{}", report::figure_header());
        for row in &self.figures {
            println!("{}", row.line());
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let daemon = match Daemon::start(&args.stratusd, &args.data_dir) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("stratusd-bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!(
        "stratusd-bench: {} s × {} runs per point, load average before: {}",
        args.seconds,
        args.runs,
        load_average()
    );
    let mut bench = Bench {
        args,
        daemon,
        loads: Vec::new(),
        figures: Vec::new(),
    };
    let result = bench.run();
    bench.print();
    println!("load average after: {}", load_average());
    bench.daemon.stop();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stratusd-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
