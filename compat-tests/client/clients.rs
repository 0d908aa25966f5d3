//! The installed StratusLab clients: where `scripts/setup-stratuslab-client.sh` put the
//! virtualenvs, whether they are complete, how one client command is run in the recorded
//! client environment, and the `main` of a client suite with its end (daemon stop, work dir,
//! summary). Shared by the recorded-run suite (`main.rs`), the front-door suite (`https.rs`)
//! and the volume suite (`volumes.rs`).

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The client releases of the recording, installed side by side under the venv directory.
pub const CLIENT_RELEASES: &[&str] = &["14.6.0", "13.5.1"];
/// The recorded client environment (README §2): an empty HOME, this PATH, this LANG.
const CLIENT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
const CLIENT_LANG: &str = "C.UTF-8";

/// The files of the recorded HOME (README §3). The public key is the recording's own
/// throw-away key: the VM templates, and so the `-vvv` listings, show it.
const HOME_ID_RSA_PUB: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client\n";
const HOME_CTX_TXT: &str = "FOO=bar\nHELLO=world with spaces\n";
const HOME_RUN_SH: &str = "#!/bin/sh\necho hello from cloud-init\n";

/// `<work_dir>/home` with the recorded HOME's files.
pub fn make_home(work_dir: &Path) -> Result<PathBuf, String> {
    let home = work_dir.join("home");
    fs::create_dir_all(&home).map_err(|e| format!("cannot create {}: {e}", home.display()))?;
    for (name, content) in [
        ("id_rsa.pub", HOME_ID_RSA_PUB),
        ("ctx.txt", HOME_CTX_TXT),
        ("run.sh", HOME_RUN_SH),
    ] {
        fs::write(home.join(name), content)
            .map_err(|e| format!("cannot write {}: {e}", home.join(name).display()))?;
    }
    Ok(home)
}

/// `$STRATUSLAB_CLIENT_VENVS`, or `<target dir>/py27` where `scripts/setup.sh` puts the
/// virtualenvs: the test binary is `<target dir>/<profile>/deps/<name>-<hash>`.
pub fn venvs_dir() -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("STRATUSLAB_CLIENT_VENVS") {
        return Ok(PathBuf::from(dir));
    }
    let exe = env::current_exe().map_err(|e| format!("cannot locate the test binary: {e}"))?;
    exe.ancestors()
        .nth(3)
        .map(|target| target.join("py27"))
        .ok_or_else(|| format!("cannot derive the target directory from {}", exe.display()))
}

/// The `bin/` directory of one release's virtualenv.
pub fn client_bin(venvs_dir: &Path, release: &str) -> PathBuf {
    venvs_dir
        .join(format!("stratuslab-client-{release}"))
        .join("bin")
}

/// Every client release must be installed; a missing one fails the suite with what to do.
pub fn check_installed(venvs_dir: &Path) -> Result<(), String> {
    for release in CLIENT_RELEASES {
        let bin = client_bin(venvs_dir, release);
        for program in [
            "python",
            "stratus-run-instance",
            "stratus-describe-instance",
        ] {
            if !bin.join(program).is_file() {
                return Err(format!(
                    "the StratusLab client {release} is not installed ({} is missing): run \
                     scripts/setup.sh --test, which needs CPython 2.7.18 (e.g. `pyenv install \
                     2.7.18`) and PyPI; or set STRATUSLAB_CLIENT_VENVS to a directory holding \
                     stratuslab-client-14.6.0/ and stratuslab-client-13.5.1/ virtualenvs",
                    bin.join(program).display()
                ));
            }
        }
    }
    Ok(())
}

/// Runs one client command in the recorded environment (`HOME`, `PATH`, `LANG` and nothing
/// else, plus `extra_env`); exit code, stdout, stderr. `path_first`: a directory put before
/// the recorded PATH.
pub fn run_process(
    program: &Path,
    args: &[String],
    home: &Path,
    timeout: Duration,
    path_first: Option<&Path>,
    extra_env: &[(&str, &OsStr)],
) -> Result<(i32, Vec<u8>, Vec<u8>), String> {
    let path = match path_first {
        Some(dir) => format!("{}:{CLIENT_PATH}", dir.display()),
        None => CLIENT_PATH.to_string(),
    };
    let mut child = std::process::Command::new(program)
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", path)
        .env("LANG", CLIENT_LANG)
        .envs(extra_env.iter().copied())
        .current_dir(home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read_all(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read_all(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < timeout => sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not finish within {:.0} s (killed)",
                    timeout.as_secs_f64()
                ));
            }
            Err(e) => return Err(format!("cannot wait for the command: {e}")),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let code = status.code().ok_or_else(|| {
        format!(
            "ended by a signal ({})",
            crate::harness::daemon::describe_status(status)
        )
    })?;
    Ok((code, stdout, stderr))
}

/// The `main` of a client suite (a `harness = false` test target that is one continuous run
/// on one daemon, so it cannot be cut into parts): answers `--list`, runs `run` when the
/// arguments select `suite` (`cargo test NAME` passes NAME to every target; other flags of
/// libtest are ignored), and prints the summary line `scripts/test.sh` shows when it fails.
pub fn run_suite(
    target: &str,
    suite: &str,
    run: impl FnOnce() -> Result<bool, String>,
) -> ExitCode {
    let mut filters = Vec::new();
    let mut list = false;
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--list" => list = true,
            "--skip" | "--test-threads" | "--format" => {
                args.next();
            }
            flag if flag.starts_with('-') => {}
            filter => filters.push(filter.to_string()),
        }
    }
    let selected = filters.is_empty() || filters.iter().any(|f| suite.contains(f.as_str()));
    if list {
        if selected {
            println!("{suite}: test");
        }
        return ExitCode::SUCCESS;
    }
    if !selected {
        println!("{target}: {filters:?} does not select the {suite} suite; nothing run");
        println!("0 passed, 0 failed");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            println!("{target}: error: {message}");
            println!("0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}

/// One client command's outcome.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

impl Outcome {
    pub fn last_stderr_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }
}

/// [`run_process`] with the output as text and the time it took.
pub fn run_timed(
    program: &Path,
    args: &[String],
    home: &Path,
    timeout: Duration,
    extra_env: &[(&str, &OsStr)],
) -> Result<Outcome, String> {
    let started = Instant::now();
    let (code, stdout, stderr) = run_process(program, args, home, timeout, None, extra_env)?;
    Ok(Outcome {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A loopback port nothing listens on (for a listener the daemon opens).
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// Waits until something accepts connections on the loopback `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if started.elapsed() > timeout {
            return Err(format!("nothing listens on {addr}"));
        }
        sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// How a suite ends: the daemon stopped (a failed stop counts as a failure), the work dir
/// kept with the daemon log's tail when something failed (or `keep`), removed otherwise, and
/// the summary line `scripts/test.sh` reads. Whether everything passed.
pub fn finish_suite(
    label: &str,
    started: Instant,
    mut daemon: crate::harness::daemon::Daemon,
    work_dir: &Path,
    keep: bool,
    passed: usize,
    mut failed: usize,
) -> bool {
    const STOP_TIMEOUT: Duration = Duration::from_secs(10);
    const LOG_TAIL_LINES: usize = 30;
    if let Err(problem) = daemon.stop(STOP_TIMEOUT) {
        println!("FAIL daemon shutdown: {problem}");
        failed += 1;
    }
    if failed > 0 || keep {
        println!("work dir kept: {}", work_dir.display());
        if failed > 0 {
            println!(
                "daemon log (last {LOG_TAIL_LINES} lines of {}):",
                daemon.log_path().display()
            );
            for line in crate::harness::daemon::log_tail(daemon.log_path(), LOG_TAIL_LINES).lines()
            {
                println!("| {line}");
            }
        }
    } else {
        let _ = fs::remove_dir_all(work_dir);
    }
    println!("{label} suite: {:.1} s", started.elapsed().as_secs_f64());
    println!("{passed} passed, {failed} failed");
    failed == 0
}
