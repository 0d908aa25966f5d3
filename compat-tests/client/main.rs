//! The real StratusLab command-line client (14.6.0 and 13.5.1, Python 2.7) against stratusd:
//! replays the recorded client run (`fixtures/stratuslab-client/`) command by command and
//! compares each command's exit code, stdout, stderr, XML-RPC traffic and Marketplace
//! requests with the recording. See `compat-tests/client/README.md`.
//!
//! `cargo test --test client`; the clients are installed by `scripts/setup.sh --test`.

#[allow(dead_code)]
mod clients;
#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;
mod marketplace;
mod normalise;
mod oneadmin;
mod proxy;
mod recording;
mod unrecorded;

use clients::{run_process, CLIENT_RELEASES};
use harness::compare;
use harness::daemon::{self, Daemon};
use harness::http::{HttpClient, HttpResponse};
use harness::selftest::Checks;
use harness::session::{self, ExpectedAnswer};
use harness::xmlrpc::{self, Value};
use harness::xmltree;
use marketplace::Marketplace;
use normalise::Locations;
use oneadmin::Param;
use proxy::Proxy;
use recording::{Command, RecordedCall, Scenario, Step, XmlRpcRange};
use std::collections::HashMap;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// Where the recorded run had them (`/opt/stratuslab-client-14.6.0/bin/…`).
const RECORDED_INSTALL_PREFIX: &str = "/opt/stratuslab-client-";
/// 3.2 host states.
const HOST_MONITORED: i64 = 2;
const HOST_DISABLED: i64 = 4;
/// With `--sched-interval 0` the scheduler runs on every change and at least every second;
/// this long after hosts are enabled, a pass has surely run.
const SCHEDULER_PASS_GRACE: Duration = Duration::from_secs(2);
const POLL_STEP: Duration = Duration::from_millis(100);
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

struct Settings {
    daemon_binary: PathBuf,
    /// Holds `stratuslab-client-<release>/` virtualenvs.
    venvs_dir: PathBuf,
    /// Longest wait for a state the recording waited for.
    wait_budget: Duration,
    command_timeout: Duration,
    start_timeout: Duration,
    keep_work_dir: bool,
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
                    .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| format!("{name}={text:?} is not a number of seconds")),
            }
        };
        let daemon_binary = env::var_os("STRATUSD_BIN")
            .map(PathBuf::from)
            .or_else(|| option_env!("CARGO_BIN_EXE_stratusd").map(PathBuf::from))
            .ok_or(
                "no daemon binary: set STRATUSD_BIN or run through `cargo test --test client`",
            )?;
        if !daemon_binary.is_file() {
            return Err(format!(
                "daemon binary {} does not exist",
                daemon_binary.display()
            ));
        }
        let venvs_dir = clients::venvs_dir()?;
        Ok(Settings {
            daemon_binary,
            venvs_dir,
            wait_budget: seconds("CLIENT_WAIT_SECS", 60.0)?,
            command_timeout: seconds("CLIENT_COMMAND_SECS", 120.0)?,
            start_timeout: seconds("CLIENT_START_SECS", 30.0)?,
            keep_work_dir: env::var("CLIENT_KEEP").is_ok_and(|v| v == "1"),
        })
    }

    fn client_bin(&self, release: &str) -> PathBuf {
        clients::client_bin(&self.venvs_dir, release)
    }
}

fn main() -> ExitCode {
    clients::run_suite("client", "stratuslab-client", run)
}

impl marketplace::SelfChecks for Checks {
    fn check(&mut self, name: &str, ok: bool, detail: String) {
        Checks::check(self, name, ok, detail)
    }
}

fn run() -> Result<bool, String> {
    let started = Instant::now();
    let settings = Settings::from_env()?;
    clients::check_installed(&settings.venvs_dir)?;
    normalise::set_decoder_python(settings.client_bin(CLIENT_RELEASES[0]).join("python"));
    let mut checks = Checks::default();
    recording::self_checks(&mut checks);
    marketplace::self_checks(&mut checks);
    normalise::self_checks(&mut checks);
    if !checks.failures().is_empty() {
        for failure in checks.failures() {
            println!("self-test FAILED: {failure}");
        }
        return Err(format!(
            "suite self-test: {} checks failed",
            checks.failures().len()
        ));
    }
    println!("suite self-test: {} checks ok", checks.passed());

    let fixtures = Path::new(MANIFEST_DIR).join("fixtures/stratuslab-client");
    let scenarios = recording::load_run(&fixtures)?;

    let work_dir = env::temp_dir().join(format!("stratusd-client-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work_dir);
    let home = clients::make_home(&work_dir)?;

    // The scheduler places VMs at once; the suite decides when placement may happen by
    // keeping the hosts disabled in between (see README, "When VMs are placed"). VMs are never
    // polled during the suite: whether the recorded server's 60-s poll reached a VM depended on
    // how slow that run was, so only "recorded polled, stratusd not" is accepted (see
    // `compare_recorded_answer`), and a slow run here must not poll either.
    let mut daemon = Daemon::start_with_args(
        &settings.daemon_binary,
        &work_dir,
        settings.start_timeout,
        0.0,
        &["--vm-polling-interval".to_string(), "3600".to_string()],
    )
    .map_err(|(e, log)| format!("daemon did not start: {e} (log: {})", log.display()))?;
    let proxy = Proxy::start(daemon.addr())?;
    let marketplace = Marketplace::start()?;
    let data_dir = work_dir.join("data");
    let locations = Locations::new(
        proxy.port(),
        marketplace.port(),
        &home.to_string_lossy(),
        &data_dir.to_string_lossy(),
    );
    println!(
        "stratusd on {} (behind the recording proxy on 127.0.0.1:{}), test Marketplace on 127.0.0.1:{}, work dir {}",
        daemon.addr(),
        proxy.port(),
        marketplace.port(),
        work_dir.display()
    );

    let mut suite = Suite {
        settings: &settings,
        rpc: HttpClient::new(daemon.addr(), RPC_TIMEOUT),
        proxy,
        marketplace,
        locations,
        home,
        hosts_held: false,
        passed: 0,
        failed: 0,
    };
    let mut stopped = false;
    for scenario in &scenarios {
        if let Err(problem) = suite.run_scenario(scenario) {
            suite.fail(
                &format!("{} (the run stops here)", scenario.name),
                &problem,
                &[],
            );
            stopped = true;
            break;
        }
        if let Some(status) = daemon.exited() {
            suite.fail(
                &scenario.name,
                &format!("the daemon exited: {}", daemon::describe_status(status)),
                &[],
            );
            stopped = true;
            break;
        }
    }
    if !stopped {
        if let Err(problem) = suite.run_unrecorded(&work_dir) {
            suite.fail("commands not in the recording (stopped)", &problem, &[]);
        }
    }
    let (passed, failed) = (suite.passed, suite.failed);
    drop(suite);
    Ok(clients::finish_suite(
        "client",
        started,
        daemon,
        &work_dir,
        settings.keep_work_dir,
        passed,
        failed,
    ))
}

struct Suite<'a> {
    settings: &'a Settings,
    /// The harness's own connection to the daemon (the recording's "direct polls").
    rpc: HttpClient,
    proxy: Proxy,
    marketplace: Marketplace,
    locations: Locations,
    home: PathBuf,
    /// True while every host is disabled, so that no VM gets placed.
    hosts_held: bool,
    passed: usize,
    failed: usize,
}

impl Suite<'_> {
    fn pass(&mut self, what: &str, detail: &str) {
        self.passed += 1;
        println!("PASS {what}{detail}");
    }

    fn fail(&mut self, what: &str, first: &str, more: &[String]) {
        self.failed += 1;
        println!("FAIL {what}: {first}");
        for line in more {
            println!("    {line}");
        }
    }

    fn run_scenario(&mut self, scenario: &Scenario) -> Result<(), String> {
        println!("== {}: {}", scenario.name, scenario.title);
        // The last command of each describe loop runs once the VM shows the state the loop
        // looked for: step index -> (VM, state).
        let mut loop_ends: HashMap<usize, (i64, &str)> = HashMap::new();
        for (index, step) in scenario.steps.iter().enumerate() {
            if let Step::DescribeLoopEnd { vm, summary } = step {
                let last = scenario.steps[..index]
                    .iter()
                    .rposition(|s| matches!(s, Step::Command(_)))
                    .ok_or_else(|| {
                        format!("{}: a describe loop line with no command", scenario.name)
                    })?;
                loop_ends.insert(last, (*vm, summary.as_str()));
            }
        }
        for (index, step) in scenario.steps.iter().enumerate() {
            match step {
                Step::Command(command) => {
                    if let Some((vm, summary)) = loop_ends.get(&index) {
                        self.wait_for_summary(*vm, summary)?;
                    }
                    self.run_command(scenario, command)?;
                }
                Step::HostMonitored { host } => {
                    let waited = self.wait_until(&format!("host {host} MONITORED"), |s| {
                        Ok(s.host_states()?.get(host) == Some(&HOST_MONITORED))
                    })?;
                    println!(
                        "     {}: host {host} MONITORED after {:.1} s",
                        scenario.name,
                        waited.as_secs_f64()
                    );
                }
                Step::VmReached { vm, state } => {
                    if state != "RUNNING" {
                        return Err(format!("WAIT for VM {vm} {state}: only RUNNING is known"));
                    }
                    self.wait_for_summary(*vm, "Running")?;
                }
                Step::DescribeLoopEnd { .. } => {}
                Step::SchedulerPassWait { note } => {
                    // The recording slept past a scheduler pass; here: hosts enabled long
                    // enough for a pass, so that the VMs that cannot fit are seen to stay.
                    self.release_hosts()?;
                    sleep(SCHEDULER_PASS_GRACE);
                    println!(
                        "     {}: scheduler pass allowed ({:.0} s with hosts enabled) for: {note}",
                        scenario.name,
                        SCHEDULER_PASS_GRACE.as_secs_f64()
                    );
                }
                Step::PoolDumps { note } => {
                    self.release_hosts()?;
                    self.replay_calls(
                        &scenario.traffic,
                        &format!("{} pool dumps ({note})", scenario.name),
                        true,
                    );
                }
                Step::Note(note) => println!("     {}: note: {note}", scenario.name),
            }
        }
        Ok(())
    }

    /// Waits until VM `vm` shows `summary` (the client's state name); lets the scheduler
    /// place it when that is what the state needs.
    fn wait_for_summary(&mut self, vm: i64, summary: &str) -> Result<(), String> {
        let wanted: fn(i64, i64) -> bool = match summary {
            "Running" => |state, lcm| state == 3 && lcm == 3,
            "Failed" => |state, _| state == 7,
            "Done" => |state, _| state == 6,
            "Pending" => |state, _| state == 1,
            other => return Err(format!("no rule to wait for the state {other:?}")),
        };
        if matches!(summary, "Running" | "Failed") {
            self.release_hosts()?;
        }
        let waited = self.wait_until(&format!("VM {vm} {summary}"), |s| {
            let (state, lcm) = s.vm_state(vm)?;
            Ok(wanted(state, lcm))
        })?;
        println!(
            "     VM {vm} {summary} after {:.1} s{}",
            waited.as_secs_f64(),
            if self.hosts_held {
                ""
            } else {
                " (hosts enabled)"
            }
        );
        Ok(())
    }

    fn wait_until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&mut Self) -> Result<bool, String>,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            if done(self)? {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= self.settings.wait_budget {
                return Err(format!(
                    "{what} not reached within {:.0} s",
                    self.settings.wait_budget.as_secs_f64()
                ));
            }
            sleep(POLL_STEP);
        }
    }

    /// One call as oneadmin on `/RPC2`; the values after the success flag.
    fn call(&mut self, method: &str, params: &[Param]) -> Result<Vec<Value>, String> {
        oneadmin::call(&mut self.rpc, method, params)
    }

    /// An `.info` document.
    fn document(&mut self, method: &str, params: &[Param]) -> Result<xmltree::Element, String> {
        oneadmin::document(&mut self.rpc, method, params)
    }

    /// Host id → STATE.
    fn host_states(&mut self) -> Result<HashMap<i64, i64>, String> {
        oneadmin::host_states(&mut self.rpc)
    }

    fn vm_state(&mut self, vm: i64) -> Result<(i64, i64), String> {
        oneadmin::vm_state(&mut self.rpc, vm)
    }

    /// Disables every host: VMs allocated now stay PENDING until [`Suite::release_hosts`].
    fn hold_hosts(&mut self) -> Result<(), String> {
        if self.hosts_held {
            return Ok(());
        }
        for (host, state) in self.host_states()? {
            if state != HOST_DISABLED {
                self.call("one.host.enable", &[Param::Int(host), Param::Bool(false)])?;
            }
        }
        self.hosts_held = true;
        Ok(())
    }

    /// Enables every host again and waits until they are all MONITORED; the scheduler then
    /// places whatever fits.
    fn release_hosts(&mut self) -> Result<(), String> {
        if !self.hosts_held {
            return Ok(());
        }
        for (host, state) in self.host_states()? {
            if state == HOST_DISABLED {
                self.call("one.host.enable", &[Param::Int(host), Param::Bool(true)])?;
            }
        }
        self.hosts_held = false;
        self.wait_until("every host MONITORED again", |s| {
            Ok(s.host_states()?
                .values()
                .all(|state| *state == HOST_MONITORED))
        })?;
        Ok(())
    }

    fn run_command(&mut self, scenario: &Scenario, command: &Command) -> Result<(), String> {
        let program = command.argv.first().cloned().unwrap_or_default();
        let (release, name) = program
            .strip_prefix(RECORDED_INSTALL_PREFIX)
            .and_then(|rest| rest.split_once("/bin/"))
            .ok_or_else(|| format!("[{}]: unknown program {program:?}", command.label))?;
        let what = format!(
            "{} {} {}",
            scenario.name,
            command.label,
            display_name(command)
        );
        if name == "python" && command.argv.get(1).map(String::as_str) == Some("site-setup.py") {
            // The recorded set-up script used the client library; its calls are replayed.
            self.release_hosts()?;
            let range = command
                .xmlrpc
                .as_ref()
                .ok_or_else(|| format!("{what}: the set-up script made no recorded call"))?;
            let calls = recorded_range(scenario, range)?;
            self.replay_calls(calls, &what, false);
            return Ok(());
        }
        if !name.starts_with("stratus-") {
            return Err(format!("{what}: unknown program {program:?}"));
        }
        self.hold_hosts()?;
        let _ = self.proxy.take_log();
        let _ = self.marketplace.take_log();
        let bin = self.settings.client_bin(release).join(name);
        let args: Vec<String> = command.argv[1..]
            .iter()
            .map(|a| self.locations.to_ours(a))
            .collect();
        let started = Instant::now();
        let outcome = run_process(
            &bin,
            &args,
            &self.home,
            self.settings.command_timeout,
            None,
            &[],
        );
        let seconds = started.elapsed().as_secs_f64();
        let (code, stdout, stderr) = match outcome {
            Ok(output) => output,
            Err(problem) => {
                self.fail(&what, &problem, &[format!("$ {}", command.command_line)]);
                return Ok(());
            }
        };
        let traffic = self.proxy.take_log();
        let requests = self.marketplace.take_log();

        let mut problems = Vec::new();
        if code != command.exit_code {
            problems.push(format!(
                "exit code: expected {}, actual {code}",
                command.exit_code
            ));
        }
        let stdout = self
            .locations
            .to_recorded(&String::from_utf8_lossy(&stdout));
        let stderr = self
            .locations
            .to_recorded(&String::from_utf8_lossy(&stderr));
        problems.extend(normalise::compare_output(
            "stdout",
            &command.stdout,
            stdout.as_bytes(),
        ));
        problems.extend(normalise::compare_output(
            "stderr",
            &command.stderr,
            stderr.as_bytes(),
        ));
        let mut accepted_polls = 0;
        problems.extend(self.compare_traffic(
            scenario,
            command.xmlrpc.as_ref(),
            &traffic,
            &mut accepted_polls,
        ));
        if requests != command.marketplace {
            problems.push(format!(
                "Marketplace/pdisk requests: expected {:?}, actual {requests:?}",
                command.marketplace
            ));
        }
        let calls = traffic.len();
        if problems.is_empty() {
            self.pass(
                &what,
                &format!(
                    " (exit {code}, {} stdout + {} stderr bytes, {calls} XML-RPC call{}, {} Marketplace request{}, {seconds:.1} s){}",
                    stdout.len(),
                    stderr.len(),
                    plural(calls),
                    requests.len(),
                    plural(requests.len()),
                    accepted_note(accepted_polls)
                ),
            );
        } else {
            let first = problems.remove(0);
            problems.push(format!("$ {}", command.command_line));
            if !stdout.is_empty() {
                problems.push("stdout was:".to_string());
                problems.extend(stdout.lines().take(20).map(|l| format!("| {l}")));
            }
            if !stderr.is_empty() {
                problems.push("stderr was:".to_string());
                problems.extend(stderr.lines().take(20).map(|l| format!("| {l}")));
            }
            self.fail(&what, &first, &problems);
        }
        Ok(())
    }

    /// Compares a command's XML-RPC exchanges with the recorded seq range.
    fn compare_traffic(
        &self,
        scenario: &Scenario,
        range: Option<&XmlRpcRange>,
        actual: &[proxy::Exchange],
        accepted_polls: &mut usize,
    ) -> Vec<String> {
        let expected: &[RecordedCall] = match range {
            None => &[],
            Some(range) => match recorded_range(scenario, range) {
                Ok(calls) => calls,
                Err(problem) => return vec![problem],
            },
        };
        let expected_methods: Vec<&str> = expected.iter().map(|c| c.method.as_str()).collect();
        let actual_methods: Vec<String> = actual.iter().map(proxy::Exchange::method).collect();
        if expected_methods != actual_methods {
            return vec![format!(
                "XML-RPC calls: expected {expected_methods:?}, actual {actual_methods:?}"
            )];
        }
        let mut problems = Vec::new();
        for (recorded, exchange) in expected.iter().zip(actual) {
            let at = format!("XML-RPC seq {} {}", recorded.seq, recorded.method);
            if exchange.path != recorded.path {
                problems.push(format!(
                    "{at}: path expected {:?}, actual {:?}",
                    recorded.path, exchange.path
                ));
            }
            let request = self.locations.to_recorded(&exchange.request);
            let (expected_request, actual_request) =
                normalise::set_aside_gzip_blobs(&recorded.request, &request);
            if expected_request != actual_request {
                problems.push(format!(
                    "{at}: request {}",
                    first_text_difference(&expected_request, &actual_request)
                ));
            }
            let body = self
                .locations
                .to_recorded(&String::from_utf8_lossy(&exchange.response));
            problems.extend(
                compare_recorded_answer(recorded, exchange.status, &body, accepted_polls)
                    .into_iter()
                    .map(|d| format!("{at}: answer {d}")),
            );
        }
        problems
    }

    /// Replays recorded calls on the daemon and compares the answers. `poll`: an `.info` call
    /// that differs only in state-like parts is re-sent (bounded), as in the compat replay.
    fn replay_calls(&mut self, calls: &[RecordedCall], what: &str, poll: bool) {
        let started = Instant::now();
        let mut problems = Vec::new();
        let mut accepted_polls = 0;
        for call in calls {
            // The recorder forwarded everything to oned's /RPC2; stratusd serves the client's
            // own `/…/pswd/<segment>` paths too, so those are kept.
            let path = if call.path.contains("/pswd/") {
                call.path.as_str()
            } else {
                "/RPC2"
            };
            let call_started = Instant::now();
            loop {
                let answer = match self.rpc.post(path, "text/xml", call.request.as_bytes()) {
                    Ok(answer) => answer,
                    Err(error) => {
                        problems.push(format!(
                            "seq {} {}: no answer: {error}",
                            call.seq, call.method
                        ));
                        break;
                    }
                };
                let body = self
                    .locations
                    .to_recorded(&String::from_utf8_lossy(&answer.body));
                let mut accepted = 0;
                let differences =
                    compare_recorded_answer(call, answer.status, &body, &mut accepted);
                if differences.is_empty() {
                    accepted_polls += accepted;
                    break;
                }
                let state_like_only = differences.iter().all(|d| d.state_like);
                if !(poll && call.method.ends_with(".info") && state_like_only)
                    || call_started.elapsed() >= self.settings.wait_budget
                {
                    let first = compare::first_significant(&differences)
                        .map(ToString::to_string)
                        .unwrap_or_default();
                    problems.push(format!(
                        "seq {} {}: {first} ({} difference{})",
                        call.seq,
                        call.method,
                        differences.len(),
                        plural(differences.len())
                    ));
                    break;
                }
                sleep(POLL_STEP);
            }
        }
        if problems.is_empty() {
            self.pass(
                what,
                &format!(
                    " ({} recorded XML-RPC call{} replayed, answers as recorded, {:.1} s){}",
                    calls.len(),
                    plural(calls.len()),
                    started.elapsed().as_secs_f64(),
                    accepted_note(accepted_polls)
                ),
            );
        } else {
            let first = problems.remove(0);
            self.fail(what, &first, &problems);
        }
    }
}

/// `stratus-kill-instance 4 5 (14.6.0)`: the program and its arguments after the common ones.
fn display_name(command: &Command) -> String {
    let program = command.argv.first().map(String::as_str).unwrap_or_default();
    let name = program.rsplit('/').next().unwrap_or(program);
    let release = program
        .strip_prefix(RECORDED_INSTALL_PREFIX)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("?");
    // Leave out what every command has (endpoint, user, password, Marketplace, key).
    let mut shown = Vec::new();
    let mut args = command.argv.iter().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--endpoint" | "--marketplace-endpoint" | "-k" | "-p" => {
                args.next();
            }
            "-u" => {
                if let Some(user) = args.next() {
                    if user != "oneadmin" {
                        shown.push(format!("(as {user})"));
                    }
                }
            }
            other => shown.push(other.to_string()),
        }
    }
    let mut text = name.to_string();
    for arg in shown {
        text.push(' ');
        if arg.contains(' ') && !arg.starts_with("(as ") {
            text.push_str(&format!("'{arg}'"));
        } else {
            text.push_str(&arg);
        }
    }
    format!("{text} [{release}]")
}

fn recorded_range<'a>(
    scenario: &'a Scenario,
    range: &XmlRpcRange,
) -> Result<&'a [RecordedCall], String> {
    let first = usize::try_from(range.first_seq - 1).map_err(|_| "bad seq".to_string())?;
    let last = usize::try_from(range.last_seq).map_err(|_| "bad seq".to_string())?;
    scenario
        .traffic
        .get(first..last)
        .ok_or_else(|| format!("{}: seq {first}-{last} not in the .jsonl", scenario.name))
}

/// The dummy VMM's periodic VM poll (every 60 s in the recorded server) reports this NET_TX.
const RECORDED_VM_POLL_NET_TX: &str = "\"12345\"";

/// Differences between a recorded answer and this run's body (already in recorded terms).
/// A VM's NET_TX of the recorded server's 60-s VM poll against stratusd's 0 is accepted
/// (the recorded run was slow enough to be polled, this one is not: the suite's daemon polls
/// VMs only once an hour): such differences are counted in `accepted_polls`, not returned.
fn compare_recorded_answer(
    recorded: &RecordedCall,
    status: u16,
    body: &str,
    accepted_polls: &mut usize,
) -> Vec<compare::Difference> {
    let mut differences = compare_recorded_answer_exactly(recorded, status, body);
    let before = differences.len();
    differences.retain(|d| {
        !(d.path.ends_with("/NET_TX")
            && !d.path.contains("/TEMPLATE")
            && d.expected == RECORDED_VM_POLL_NET_TX
            && d.actual == "\"0\"")
    });
    *accepted_polls += before - differences.len();
    differences
}

fn compare_recorded_answer_exactly(
    recorded: &RecordedCall,
    status: u16,
    body: &str,
) -> Vec<compare::Difference> {
    let (expected_text, actual_text) = normalise::set_aside_gzip_blobs(&recorded.response, body);
    let expected = if recorded.status == 200 {
        match xmlrpc::decode_response(&expected_text) {
            Ok(decoded) => ExpectedAnswer::XmlRpc(decoded),
            Err(error) => {
                return vec![compare::Difference {
                    path: "recorded response".into(),
                    expected: "a valid XML-RPC response".into(),
                    actual: error.to_string(),
                    state_like: false,
                }]
            }
        }
    } else {
        ExpectedAnswer::Http {
            status: recorded.status,
            body: expected_text,
        }
    };
    let actual = HttpResponse {
        status,
        headers: Vec::new(),
        body: actual_text.into_bytes(),
    };
    session::compare_answer(&expected, &actual)
}

/// Where two texts first differ, with some context.
fn first_text_difference(expected: &str, actual: &str) -> String {
    let at = expected
        .char_indices()
        .zip(actual.chars())
        .find(|((_, e), a)| e != a)
        .map(|((i, _), _)| i)
        .unwrap_or_else(|| expected.len().min(actual.len()));
    let window = |text: &str| -> String {
        let start = text[..at.min(text.len())]
            .char_indices()
            .rev()
            .nth(40)
            .map(|(i, _)| i)
            .unwrap_or(0);
        text[start..].chars().take(100).collect()
    };
    format!(
        "differs at byte {at}: expected …{:?}, actual …{:?}",
        window(expected),
        window(actual)
    )
}

fn accepted_note(accepted_polls: usize) -> String {
    if accepted_polls == 0 {
        String::new()
    } else {
        format!(" [accepted: {accepted_polls} VM NET_TX of the recorded 60-s VM poll]")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
