//! Starts and stops one fresh stratusd for one session.
//!
//! Each daemon gets its own work directory holding an empty data directory, the ONE_AUTH
//! file and `daemon.log` (its stdout and stderr), and listens on a free loopback port.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// oneadmin's credentials, as the recordings' precondition requires.
const ONE_AUTH_CONTENT: &str = "oneadmin:password\n";
/// The scheduler interval of the recorded server (`SCHED_INTERVAL 10`).
const SCHED_INTERVAL_SECS: u32 = 10;
/// How often readiness and exit are checked.
const POLL_STEP: Duration = Duration::from_millis(50);
/// A port taken by someone else between choosing it and the daemon binding it is retried.
const START_ATTEMPTS: usize = 3;

#[derive(Debug)]
pub enum DaemonError {
    /// Preparing the work directory failed.
    Setup {
        what: String,
        error: io::Error,
    },
    Spawn {
        binary: PathBuf,
        error: io::Error,
    },
    /// The daemon exited before its port accepted connections.
    ExitedEarly {
        status: ExitStatus,
    },
    /// The port did not accept connections in time (the daemon is killed).
    NotReady {
        waited: Duration,
    },
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Setup { what, error } => write!(f, "cannot {what}: {error}"),
            DaemonError::Spawn { binary, error } => {
                write!(f, "cannot start {}: {error}", binary.display())
            }
            DaemonError::ExitedEarly { status } => write!(
                f,
                "the daemon exited ({}) before accepting connections",
                describe_status(*status)
            ),
            DaemonError::NotReady { waited } => write!(
                f,
                "the daemon did not accept connections within {:.1} s",
                waited.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for DaemonError {}

/// "exit status 1", "killed by signal 11".
pub fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// A running daemon; killed if dropped without [`Daemon::stop`].
pub struct Daemon {
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
    /// Set once the process has been waited for.
    exit_status: Option<ExitStatus>,
}

impl Daemon {
    /// Starts `binary` with an empty data directory under `work_dir` and waits (at most
    /// `start_timeout`) until its port accepts connections.
    pub fn start(
        binary: &Path,
        work_dir: &Path,
        start_timeout: Duration,
    ) -> Result<Daemon, (DaemonError, PathBuf)> {
        Self::start_with_sched_interval(
            binary,
            work_dir,
            start_timeout,
            f64::from(SCHED_INTERVAL_SECS),
        )
    }

    /// [`Daemon::start`] with another `--sched-interval` (0: place new VMs right away).
    pub fn start_with_sched_interval(
        binary: &Path,
        work_dir: &Path,
        start_timeout: Duration,
        sched_interval_secs: f64,
    ) -> Result<Daemon, (DaemonError, PathBuf)> {
        Self::start_with_args(binary, work_dir, start_timeout, sched_interval_secs, &[])
    }

    /// [`Daemon::start_with_sched_interval`] with more `stratusd serve` arguments (the
    /// front-door flags, a log level).
    pub fn start_with_args(
        binary: &Path,
        work_dir: &Path,
        start_timeout: Duration,
        sched_interval_secs: f64,
        extra_args: &[String],
    ) -> Result<Daemon, (DaemonError, PathBuf)> {
        let log_path = work_dir.join("daemon.log");
        let setup =
            |what: String, error: io::Error| (DaemonError::Setup { what, error }, log_path.clone());
        let data_dir = work_dir.join("data");
        fs::create_dir_all(&data_dir)
            .map_err(|e| setup(format!("create {}", data_dir.display()), e))?;
        let one_auth = work_dir.join("one_auth");
        fs::write(&one_auth, ONE_AUTH_CONTENT)
            .map_err(|e| setup(format!("write {}", one_auth.display()), e))?;
        let mut serve_args = vec![
            "--sched-interval".to_string(),
            sched_interval_secs.to_string(),
        ];
        serve_args.extend_from_slice(extra_args);

        let mut attempt = 1;
        loop {
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .map_err(|e| setup(format!("open {}", log_path.display()), e))?;
            let port = free_port().map_err(|e| setup("find a free loopback port".into(), e))?;
            let result = Self::spawn(
                binary,
                &data_dir,
                &one_auth,
                port,
                &serve_args,
                log,
                &log_path,
            )
            .and_then(|daemon| daemon.wait_ready(start_timeout));
            match result {
                Ok(daemon) => return Ok(daemon),
                Err(DaemonError::ExitedEarly { .. })
                    if attempt < START_ATTEMPTS && log_mentions_port_in_use(&log_path) =>
                {
                    attempt += 1;
                }
                Err(error) => return Err((error, log_path)),
            }
        }
    }

    fn spawn(
        binary: &Path,
        data_dir: &Path,
        one_auth: &Path,
        port: u16,
        serve_args: &[String],
        log: File,
        log_path: &Path,
    ) -> Result<Daemon, DaemonError> {
        let stdout_log = log.try_clone().map_err(|error| DaemonError::Setup {
            what: format!("share {}", log_path.display()),
            error,
        })?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        // The recorded server had the dummy drivers only: hosts naming other drivers go to
        // ERROR, VMs on them to FAILED, exactly as recorded. A suite that needs another
        // driver gives its own `--disable-driver` list.
        let disabled: &[&str] = if serve_args.iter().any(|a| a == "--disable-driver") {
            &[]
        } else {
            &[
                "--disable-driver",
                "im_kvm,vmm_kvm,kvm,tm_ssh,ssh,tm_shared,shared,tm_stratuslab,stratuslab",
            ]
        };
        let child = Command::new(binary)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args(disabled)
            .args(serve_args)
            .env("ONE_AUTH", one_auth)
            .stdin(Stdio::null())
            .stdout(stdout_log)
            .stderr(log)
            .spawn()
            .map_err(|error| DaemonError::Spawn {
                binary: binary.to_path_buf(),
                error,
            })?;
        Ok(Daemon {
            child,
            addr,
            log_path: log_path.to_path_buf(),
            exit_status: None,
        })
    }

    fn wait_ready(mut self, timeout: Duration) -> Result<Daemon, DaemonError> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return Err(DaemonError::ExitedEarly { status });
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(self);
            }
            if started.elapsed() >= timeout {
                self.kill();
                return Err(DaemonError::NotReady {
                    waited: started.elapsed(),
                });
            }
            sleep(POLL_STEP);
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The exit status if the daemon has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit_status.is_none() {
            self.exit_status = self.child.try_wait().ok().flatten();
        }
        self.exit_status
    }

    /// Sends SIGTERM and waits at most `timeout` for a clean exit (status 0). A daemon that
    /// had already exited, exits otherwise, or has to be killed is reported as an error.
    pub fn stop(&mut self, timeout: Duration) -> Result<(), String> {
        if let Some(status) = self.exited() {
            return Err(format!(
                "the daemon had already exited ({}) before SIGTERM",
                describe_status(status)
            ));
        }
        self.signal(libc::SIGTERM);
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.exited() {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "the daemon did not exit cleanly on SIGTERM ({})",
                        describe_status(status)
                    ))
                };
            }
            sleep(POLL_STEP);
        }
        self.kill();
        Err(format!(
            "the daemon did not exit within {:.0} s of SIGTERM (killed)",
            timeout.as_secs_f64()
        ))
    }

    fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) has no memory-safety preconditions; the pid is our own child,
            // not yet reaped (exit_status is None), so it cannot name another process.
            unsafe {
                libc::kill(pid, signal);
            }
        }
    }

    fn kill(&mut self) {
        if self.exited().is_none() {
            self.signal(libc::SIGKILL);
            self.exit_status = self.child.wait().ok();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of a log file (or why it cannot be read).
pub fn log_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("(cannot read {}: {error})", path.display()),
    }
}

fn log_mentions_port_in_use(log_path: &Path) -> bool {
    fs::read(log_path)
        .map(|bytes| String::from_utf8_lossy(&bytes).contains("in use"))
        .unwrap_or(false)
}

/// A loopback port that was free a moment ago.
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
