//! One libvirt connection per host URI, owned by a dedicated OS thread.
//!
//! libvirt calls are blocking C calls. Callers (stratusd's worker threads) hold a
//! [`LibvirtHost`], a cheap clonable handle that sends each request as a job over a channel and
//! waits for the answer on a reply channel of its own; only the connection thread touches the
//! `virt::connect::Connect`. Nothing here may be called from an async task: use a worker thread
//! or `spawn_blocking`.
//!
//! Long operations (save, restore, live migration) run on a short-lived helper thread with a
//! reference to the same connection (libvirt connections are thread-safe), so that a 20-second
//! memory dump does not hold up monitoring and deploys of the other VMs on that host; 3.2 ran each
//! driver action as its own process and allowed the same overlap.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Once};
use std::thread;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use virt::connect::Connect;
use virt::domain::Domain;
use virt::sys;

use super::xml::{first_element_text, interface_stat_keys};

/// How often [`LibvirtHost::shutdown`] looks at the domain at most: 3.2's KVM driver polled every
/// 2 s. It starts shorter so that a guest that stops at once (or the test driver) is seen at once.
const SHUTDOWN_POLL_MAX: Duration = Duration::from_secs(2);
const SHUTDOWN_POLL_FIRST: Duration = Duration::from_millis(20);

/// A libvirt operation that failed, with libvirt's own message where libvirt gave one.
#[derive(Debug, thiserror::Error)]
pub enum LibvirtError {
    #[error("cannot open libvirt connection {uri}: {message}")]
    Open { uri: String, message: String },
    /// A libvirt call failed; `Display` is libvirt's message, as 3.2 showed the hypervisor's error.
    #[error("{message}")]
    Call {
        /// The libvirt call that failed, e.g. `virDomainCreateXML`.
        op: &'static str,
        /// `virErrorNumber` (`VIR_ERR_*`).
        code: u32,
        /// `virErrorDomain` (`VIR_FROM_*`).
        domain: u32,
        message: String,
    },
    #[error("domain {name} not found")]
    NoSuchDomain { name: String },
    /// 3.2's message when a guest ignored the ACPI shutdown request.
    #[error("Timeout reached and VM {name} is still alive")]
    ShutdownTimeout { name: String, waited: Duration },
    #[error("path {} cannot be given to libvirt (not UTF-8, or it contains a NUL byte)", path.display())]
    InvalidPath { path: PathBuf },
    #[error("saved image {} does not name its domain", path.display())]
    SaveImageWithoutName { path: PathBuf },
    #[error("cannot start a thread for libvirt connection {uri}: {source}")]
    Spawn {
        uri: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the thread of libvirt connection {uri} has stopped")]
    ConnectionThreadGone { uri: String },
    /// The host did not answer in time (its link cut, the node off, libvirtd hung): the question
    /// is abandoned, the connection may be stuck.
    #[error("libvirt on {uri} did not answer {op} within {} s", waited.as_secs())]
    Timeout {
        uri: String,
        op: &'static str,
        waited: Duration,
    },
}

impl LibvirtError {
    fn call(op: &'static str) -> impl FnOnce(virt::error::Error) -> LibvirtError {
        move |error| LibvirtError::Call {
            op,
            code: error.code().to_raw(),
            domain: error.domain().to_raw(),
            message: error.message().to_string(),
        }
    }

    /// libvirt's `VIR_ERR_*` number, for a failed call.
    pub fn libvirt_code(&self) -> Option<u32> {
        match self {
            LibvirtError::Call { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the host did not answer in time (see [`LibvirtHost::open_bounded`]).
    pub fn is_timeout(&self) -> bool {
        matches!(self, LibvirtError::Timeout { .. })
    }

    fn is_no_domain(&self) -> bool {
        matches!(self, LibvirtError::NoSuchDomain { .. })
            || self.libvirt_code() == Some(sys::VIR_ERR_NO_DOMAIN)
    }

    /// Whether the error says the connection itself is unusable (as opposed to the request being
    /// refused), judged from libvirt's error number and origin.
    fn says_connection_broken(&self) -> bool {
        match self {
            LibvirtError::Call { code, domain, .. } => connection_broken(*code, *domain),
            _ => false,
        }
    }
}

/// Errors libvirt raises when the transport to the hypervisor is gone: the connection object is
/// invalid, or the RPC layer lost its socket ("Cannot write data: Broken pipe", "client socket is
/// closed", "End of file while reading data").
fn connection_broken(code: u32, origin: u32) -> bool {
    let transport = origin == sys::VIR_FROM_RPC || origin == sys::VIR_FROM_REMOTE;
    match code {
        sys::VIR_ERR_INVALID_CONN | sys::VIR_ERR_NO_CONNECT | sys::VIR_ERR_RPC => true,
        sys::VIR_ERR_SYSTEM_ERROR | sys::VIR_ERR_INTERNAL_ERROR => transport,
        _ => false,
    }
}

/// Domain states as stratusd's monitoring tells them apart (`xmlrpc-api.md` §7.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainState {
    /// Running, blocked on a resource, or on its way down after a shutdown request (3.2 counted
    /// all three as active).
    Running,
    Paused,
    /// Stopped but still defined (only persistent domains; the ones stratusd starts are transient
    /// and vanish instead).
    Shutoff,
    Crashed,
    /// No state, or suspended by the guest's power management.
    Other,
}

impl DomainState {
    fn from_libvirt(state: virt::domain::DomainStateEnum) -> DomainState {
        use virt::domain::DomainState as Libvirt;
        match state.unwrap_or(Libvirt::NoState) {
            Libvirt::Running | Libvirt::Blocked | Libvirt::Shutdown => DomainState::Running,
            Libvirt::Paused => DomainState::Paused,
            Libvirt::Shutoff => DomainState::Shutoff,
            Libvirt::Crashed => DomainState::Crashed,
            Libvirt::NoState | Libvirt::PMSuspended => DomainState::Other,
        }
    }
}

/// One look at a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainStatus {
    pub state: DomainState,
    /// CPU time used since the domain started, all vCPUs together.
    pub cpu_time_ns: u64,
    /// Memory currently given to the guest.
    pub memory_kib: u64,
    /// Bytes received and sent over all interfaces; `None` when the driver gave no counters.
    pub net_rx: Option<u64>,
    pub net_tx: Option<u64>,
    /// When the sample was taken, for [`cpu_percent`].
    pub sampled_at: Instant,
}

/// CPU use between two samples of the same domain, in percent of one host CPU (a guest keeping two
/// vCPUs busy shows 200, like oned's `CPU`). `None` when the samples are not in order or the CPU
/// time went backwards (the domain was restarted in between).
pub fn cpu_percent(earlier: &DomainStatus, later: &DomainStatus) -> Option<f64> {
    let wall = later
        .sampled_at
        .checked_duration_since(earlier.sampled_at)?;
    let cpu_ns = later.cpu_time_ns.checked_sub(earlier.cpu_time_ns)?;
    if wall.is_zero() {
        return None;
    }
    Some(cpu_ns as f64 * 100.0 / wall.as_nanos() as f64)
}

/// The host's hardware as libvirt reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Active logical CPUs.
    pub cpus: u32,
    pub mhz: u32,
    /// CPU model string (libvirt reports the architecture, e.g. `x86_64`, on Linux).
    pub model: String,
    pub memory_kib: u64,
    /// Free memory. The test driver with a node file cannot tell it; then it is estimated as the
    /// total less the memory of the running domains, which is what such a host would have free.
    pub free_memory_kib: u64,
}

/// What a job needs to know about its connection.
struct Session {
    uri: String,
    /// `None` after the connection broke and reopening it failed; the next job tries again.
    connection: Option<Connect>,
}

/// Whether a job may run a second time on a fresh connection after the first connection broke.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Running it twice has the same effect as once (reads, destroy, an ACPI button press).
    Idempotent,
    /// The first attempt may have reached the host before the connection broke (starting a
    /// domain, restoring one, rebooting): the error is returned and the next request gets the
    /// fresh connection, so the caller decides instead of the VM being started or rebooted twice.
    Once,
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// Registers libvirt's default event loop (needed by `qemu:///embed` and by keep-alive on remote
/// connections) and silences libvirt's default error printer, once per process.
fn init_libvirt_once() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        virt::error::clear_error_callback();
        if let Err(error) = virt::event::event_register_default_impl() {
            warn!(%error, "cannot register libvirt's event loop; qemu:///embed will not open");
            return;
        }
        let spawned = thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(|| loop {
                if let Err(error) = virt::event::event_run_default_impl() {
                    warn!(%error, "libvirt event loop iteration failed");
                    thread::sleep(Duration::from_millis(100));
                }
            });
        if let Err(error) = spawned {
            warn!(%error, "cannot start libvirt's event loop thread");
        }
    });
}

/// libvirt keep-alive on a remote connection: a probe every `KEEPALIVE_INTERVAL` seconds, and
/// the connection is closed (its pending calls fail) after `KEEPALIVE_COUNT` probes without an
/// answer. Without it a call on a connection whose link is cut waits forever: ssh and TCP do not
/// notice a peer that is silent.
const KEEPALIVE_INTERVAL: i32 = 5;
const KEEPALIVE_COUNT: u32 = 3;

fn open_connection(uri: &str) -> Result<Connect, LibvirtError> {
    let connection = Connect::open(Some(uri)).map_err(|error| LibvirtError::Open {
        uri: uri.to_string(),
        message: error.message().to_string(),
    })?;
    // Drivers without a transport (test:///, qemu:///embed) refuse keep-alive; nothing to watch.
    if let Err(error) = connection.set_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT) {
        debug!(uri, %error, "no libvirt keep-alive on this connection");
    }
    Ok(connection)
}

impl Session {
    /// The connection, reopened if a previous job found it broken.
    fn connection(&mut self) -> Result<Connect, LibvirtError> {
        if let Some(connection) = &self.connection {
            return Ok(connection.clone());
        }
        let started = Instant::now();
        let connection = open_connection(&self.uri)?;
        info!(uri = %self.uri, elapsed = ?started.elapsed(), "libvirt connection reopened");
        self.connection = Some(connection.clone());
        Ok(connection)
    }

    /// After a failed call: is the connection unusable? The error alone is not always conclusive,
    /// so ask libvirt as well.
    fn broken_after(&self, error: &LibvirtError) -> bool {
        if error.says_connection_broken() {
            return true;
        }
        match &self.connection {
            Some(connection) => !matches!(connection.is_alive(), Ok(true)),
            None => true,
        }
    }

    fn run<T>(
        &mut self,
        op: &'static str,
        retry: Retry,
        call: &dyn Fn(&Connect) -> Result<T, LibvirtError>,
    ) -> Result<T, LibvirtError> {
        let connection = self.connection()?;
        let error = match call(&connection) {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !self.broken_after(&error) {
            return Err(error);
        }
        warn!(uri = %self.uri, op, %error, "libvirt connection broke; reconnecting");
        drop(connection);
        // Reopening gives a remote or QEMU host back as it is. (A `test:///file` host would come
        // back empty, but the in-process test driver never loses its connection.)
        self.connection = None;
        match (retry, self.connection()) {
            (Retry::Idempotent, Ok(connection)) => call(&connection),
            (Retry::Idempotent, Err(reopen_error)) => Err(reopen_error),
            (Retry::Once, reopened) => {
                if let Err(reopen_error) = reopened {
                    warn!(uri = %self.uri, %reopen_error, "libvirt connection could not be reopened");
                }
                Err(error)
            }
        }
    }
}

fn serve(mut session: Session, jobs: mpsc::Receiver<Job>) {
    for job in jobs {
        // A panic inside one call (the bindings panic on a few impossible conditions) must not
        // take the host's other requests down with it; its caller sees the reply channel close.
        if catch_unwind(AssertUnwindSafe(|| job(&mut session))).is_err() {
            warn!(uri = %session.uri, "a libvirt request panicked");
        }
    }
    debug!(uri = %session.uri, "libvirt connection thread ends: every handle was dropped");
}

fn lookup(connection: &Connect, name: &str) -> Result<Domain, LibvirtError> {
    connection.lookup_domain_by_name(name).map_err(|error| {
        let error = LibvirtError::call("virDomainLookupByName")(error);
        if error.is_no_domain() {
            LibvirtError::NoSuchDomain {
                name: name.to_string(),
            }
        } else {
            error
        }
    })
}

fn utf8_path(path: &Path) -> Result<&str, LibvirtError> {
    match path.to_str() {
        Some(text) if !text.contains('\0') => Ok(text),
        _ => Err(LibvirtError::InvalidPath {
            path: path.to_path_buf(),
        }),
    }
}

/// `virDomainSave`, which the `virt` crate does not wrap.
fn save_domain(domain: &Domain, path: &str) -> Result<(), virt::error::Error> {
    let c_path = std::ffi::CString::new(path)?;
    // SAFETY: `domain` holds a reference on the libvirt domain for the whole call and `c_path` is
    // a NUL-terminated string that outlives it; libvirt copies what it keeps.
    let result = unsafe { sys::virDomainSave(domain.as_ptr(), c_path.as_ptr()) };
    if result < 0 {
        // libvirt's last error is per thread, and this is the thread that made the call.
        return Err(virt::error::Error::last_error());
    }
    Ok(())
}

/// Sums the byte counters of every interface of the domain that the driver reports on.
fn network_counters(domain: &Domain) -> (Option<u64>, Option<u64>) {
    let description = match domain.xml_desc(0) {
        Ok(description) => description,
        Err(error) => {
            debug!(%error, "no live description, so no network counters");
            return (None, None);
        }
    };
    let mut totals: Option<(u64, u64)> = None;
    for key in interface_stat_keys(&description) {
        match domain.interface_stats(&key) {
            Ok(stats) => {
                let (rx, tx) = totals.get_or_insert((0, 0));
                // -1 means the driver does not count this one.
                *rx = rx.saturating_add(u64::try_from(stats.rx_bytes).unwrap_or(0));
                *tx = tx.saturating_add(u64::try_from(stats.tx_bytes).unwrap_or(0));
            }
            Err(error) => debug!(interface = %key, %error, "no counters for interface"),
        }
    }
    (totals.map(|(rx, _)| rx), totals.map(|(_, tx)| tx))
}

/// A handle on one host's libvirt connection. Clones share the connection thread, which ends when
/// the last clone is dropped.
#[derive(Clone)]
pub struct LibvirtHost {
    uri: String,
    jobs: mpsc::Sender<Job>,
    /// How long questions (monitoring, VM polls, states) wait for the host; `None`: for ever.
    answer_within: Option<Duration>,
}

impl std::fmt::Debug for LibvirtHost {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LibvirtHost")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl LibvirtHost {
    /// Opens `uri` (`qemu+ssh://node/system`, `qemu:///system`, `qemu:///embed?root=DIR`,
    /// `test:///ABSOLUTE/PATH/node.xml`, …) on a new connection thread. Fails when libvirt cannot
    /// open it.
    pub fn open(uri: &str) -> Result<LibvirtHost, LibvirtError> {
        Self::open_bounded(uri, None)
    }

    /// As [`LibvirtHost::open`], but opening and every question to the host (the calls that only
    /// read: node information, domain states and lists) give up after `answer_within` with
    /// [`LibvirtError::Timeout`], so that a node that went silent is reported instead of holding
    /// its caller. Calls that change the host are never abandoned half-way: they wait (libvirt's
    /// keep-alive ends them on a dead link).
    pub fn open_bounded(
        uri: &str,
        answer_within: Option<Duration>,
    ) -> Result<LibvirtHost, LibvirtError> {
        init_libvirt_once();
        let started = Instant::now();
        let (jobs, job_queue) = mpsc::channel::<Job>();
        let (opened, open_result) = mpsc::channel();
        let thread_uri = uri.to_string();
        thread::Builder::new()
            .name(format!("libvirt {uri}"))
            .spawn(move || match open_connection(&thread_uri) {
                Ok(connection) => {
                    let _ = opened.send(Ok(()));
                    let session = Session {
                        uri: thread_uri,
                        connection: Some(connection),
                    };
                    serve(session, job_queue);
                }
                Err(error) => {
                    let _ = opened.send(Err(error));
                }
            })
            .map_err(|source| LibvirtError::Spawn {
                uri: uri.to_string(),
                source,
            })?;
        let gone = || LibvirtError::ConnectionThreadGone {
            uri: uri.to_string(),
        };
        match answer_within {
            // On a timeout the thread is left to finish (or fail) the open by itself; it ends
            // then, since `jobs` is dropped here.
            Some(limit) => open_result.recv_timeout(limit).map_err(|e| match e {
                mpsc::RecvTimeoutError::Timeout => LibvirtError::Timeout {
                    uri: uri.to_string(),
                    op: "virConnectOpen",
                    waited: limit,
                },
                mpsc::RecvTimeoutError::Disconnected => gone(),
            })??,
            None => open_result.recv().map_err(|_| gone())??,
        }
        info!(uri, elapsed = ?started.elapsed(), "libvirt connection opened");
        Ok(LibvirtHost {
            uri: uri.to_string(),
            jobs,
            answer_within,
        })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn thread_gone(&self) -> LibvirtError {
        LibvirtError::ConnectionThreadGone {
            uri: self.uri.clone(),
        }
    }

    /// Sends a job and waits for its answer.
    fn request<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Session) -> Result<T, LibvirtError> + Send + 'static,
    ) -> Result<T, LibvirtError> {
        let (reply, answer) = mpsc::channel();
        let job: Job = Box::new(move |session| {
            let _ = reply.send(job(session));
        });
        self.jobs.send(job).map_err(|_| self.thread_gone())?;
        answer.recv().map_err(|_| self.thread_gone())?
    }

    /// As [`LibvirtHost::request`], for a question: with `answer_within`, the caller stops
    /// waiting then, and the job, if it has not started yet (it queues behind one stuck on a
    /// dead link), is skipped.
    fn ask<T: Send + 'static>(
        &self,
        op: &'static str,
        job: impl FnOnce(&mut Session) -> Result<T, LibvirtError> + Send + 'static,
    ) -> Result<T, LibvirtError> {
        let Some(limit) = self.answer_within else {
            return self.request(job);
        };
        let abandoned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let skip = std::sync::Arc::clone(&abandoned);
        let (reply, answer) = mpsc::channel();
        let job: Job = Box::new(move |session| {
            if !skip.load(std::sync::atomic::Ordering::Acquire) {
                let _ = reply.send(job(session));
            }
        });
        self.jobs.send(job).map_err(|_| self.thread_gone())?;
        match answer.recv_timeout(limit) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                abandoned.store(true, std::sync::atomic::Ordering::Release);
                Err(LibvirtError::Timeout {
                    uri: self.uri.clone(),
                    op,
                    waited: limit,
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.thread_gone()),
        }
    }

    /// Runs a question on the connection thread (retried once after a reconnect), waiting at
    /// most `answer_within`.
    fn call_read<T: Send + 'static>(
        &self,
        op: &'static str,
        call: impl Fn(&Connect) -> Result<T, LibvirtError> + Send + 'static,
    ) -> Result<T, LibvirtError> {
        let started = Instant::now();
        let result = self.ask(op, move |session| session.run(op, Retry::Idempotent, &call));
        debug!(uri = %self.uri, op, elapsed = ?started.elapsed(), ok = result.is_ok(), "libvirt call");
        result
    }

    /// Runs `call` on the connection thread, retrying per `retry` after a reconnect.
    fn call<T: Send + 'static>(
        &self,
        op: &'static str,
        retry: Retry,
        call: impl Fn(&Connect) -> Result<T, LibvirtError> + Send + 'static,
    ) -> Result<T, LibvirtError> {
        let started = Instant::now();
        let result = self.request(move |session| session.run(op, retry, &call));
        debug!(uri = %self.uri, op, elapsed = ?started.elapsed(), ok = result.is_ok(), "libvirt call");
        result
    }

    /// Runs `call` on a helper thread with a reference to this host's connection, so that the
    /// connection thread keeps serving. Not retried: these jobs are long and not idempotent.
    fn call_detached<T: Send + 'static>(
        &self,
        op: &'static str,
        call: impl FnOnce(&Connect) -> Result<T, LibvirtError> + Send + 'static,
    ) -> Result<T, LibvirtError> {
        let started = Instant::now();
        let (reply, answer) = mpsc::channel();
        let uri = self.uri.clone();
        let helper_name = format!("libvirt {op}");
        let job: Job = Box::new(move |session| {
            let connection = match session.connection() {
                Ok(connection) => connection,
                Err(error) => {
                    let _ = reply.send(Err(error));
                    return;
                }
            };
            let helper_reply = reply.clone();
            let spawned = thread::Builder::new().name(helper_name).spawn(move || {
                let _ = helper_reply.send(call(&connection));
            });
            if let Err(source) = spawned {
                let _ = reply.send(Err(LibvirtError::Spawn { uri, source }));
            }
        });
        self.jobs.send(job).map_err(|_| self.thread_gone())?;
        let result = answer.recv().map_err(|_| self.thread_gone())?;
        debug!(uri = %self.uri, op, elapsed = ?started.elapsed(), ok = result.is_ok(), "libvirt call");
        result
    }

    /// Starts a domain from its description and returns its name (the VM's DEPLOY_ID).
    ///
    /// The domain is *transient* (`virDomainCreateXML`, what 3.2's `virsh create` did), not
    /// defined and then started: a guest that powers itself off then disappears from libvirt,
    /// which monitoring reports as gone (3.2's ACTIVE/UNKNOWN, which StratusLab users rely on);
    /// nodes keep no definitions of VMs stratusd has forgotten; and save, restore and migration
    /// need no undefine step.
    pub fn define_and_start(&self, xml: &str) -> Result<String, LibvirtError> {
        let started = Instant::now();
        let xml = xml.to_string();
        let name = self.call("virDomainCreateXML", Retry::Once, move |connection| {
            let domain = connection
                .create_domain_xml(&xml, sys::VIR_DOMAIN_NONE)
                .map_err(LibvirtError::call("virDomainCreateXML"))?;
            domain
                .name()
                .map_err(LibvirtError::call("virDomainGetName"))
        })?;
        info!(uri = %self.uri, domain = %name, elapsed = ?started.elapsed(), "domain started");
        Ok(name)
    }

    /// Asks the guest to shut down (ACPI power button, as `virsh shutdown`) and waits until the
    /// domain is gone or stopped; after `timeout` it fails with 3.2's "Timeout reached and VM …
    /// is still alive", leaving the domain running. The wait happens on the caller's thread, so
    /// the connection keeps serving other requests meanwhile.
    pub fn shutdown(&self, name: &str, timeout: Duration) -> Result<(), LibvirtError> {
        let started = Instant::now();
        let domain_name = name.to_string();
        self.call("virDomainShutdown", Retry::Idempotent, move |connection| {
            lookup(connection, &domain_name)?
                .shutdown()
                .map_err(LibvirtError::call("virDomainShutdown"))?;
            Ok(())
        })?;
        let mut pause = SHUTDOWN_POLL_FIRST;
        loop {
            match self.domain_state(name)? {
                None | Some(DomainState::Shutoff) => break,
                Some(_) => {}
            }
            let waited = started.elapsed();
            if waited >= timeout {
                warn!(uri = %self.uri, domain = name, ?waited, "domain ignored the shutdown request");
                return Err(LibvirtError::ShutdownTimeout {
                    name: name.to_string(),
                    waited,
                });
            }
            thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(SHUTDOWN_POLL_MAX);
        }
        info!(uri = %self.uri, domain = name, elapsed = ?started.elapsed(), "domain shut down");
        Ok(())
    }

    /// Stops the domain at once (`virsh destroy`, 3.2's cancel). A domain that does not exist or
    /// is not running is already where this wants it: `Ok`.
    pub fn destroy(&self, name: &str) -> Result<(), LibvirtError> {
        let started = Instant::now();
        let domain_name = name.to_string();
        let destroyed = self.call("virDomainDestroy", Retry::Idempotent, move |connection| {
            let domain = match lookup(connection, &domain_name) {
                Ok(domain) => domain,
                Err(error) if error.is_no_domain() => return Ok(false),
                Err(error) => return Err(error),
            };
            match domain
                .destroy()
                .map_err(LibvirtError::call("virDomainDestroy"))
            {
                Ok(()) => Ok(true),
                // It vanished or stopped between the lookup and the destroy.
                Err(error)
                    if error.is_no_domain()
                        || error.libvirt_code() == Some(sys::VIR_ERR_OPERATION_INVALID) =>
                {
                    Ok(false)
                }
                Err(error) => Err(error),
            }
        })?;
        if destroyed {
            info!(uri = %self.uri, domain = name, elapsed = ?started.elapsed(), "domain destroyed");
        } else {
            debug!(uri = %self.uri, domain = name, "destroy: no such running domain");
        }
        Ok(())
    }

    /// Saves the domain's memory to `path` and stops it (`virsh save`; 3.2's suspend and stop).
    pub fn save(&self, name: &str, path: &Path) -> Result<(), LibvirtError> {
        let started = Instant::now();
        let path_text = utf8_path(path)?.to_string();
        let domain_name = name.to_string();
        self.call_detached("virDomainSave", move |connection| {
            let domain = lookup(connection, &domain_name)?;
            save_domain(&domain, &path_text).map_err(LibvirtError::call("virDomainSave"))
        })?;
        info!(uri = %self.uri, domain = name, path = %path.display(), elapsed = ?started.elapsed(), "domain saved");
        Ok(())
    }

    /// Starts a domain again from a file written by [`LibvirtHost::save`] and returns its name.
    pub fn restore(&self, path: &Path) -> Result<String, LibvirtError> {
        let started = Instant::now();
        let path_text = utf8_path(path)?.to_string();
        let image = path.to_path_buf();
        let name = self.call_detached("virDomainRestore", move |connection| {
            // The image carries the domain's description; its name is the one restored.
            let description = connection
                .save_image_xml_desc(&path_text, 0)
                .map_err(LibvirtError::call("virDomainSaveImageGetXMLDesc"))?;
            let name = first_element_text(&description, "name")
                .ok_or(LibvirtError::SaveImageWithoutName { path: image })?;
            connection
                .restore_domain(&path_text)
                .map_err(LibvirtError::call("virDomainRestore"))?;
            Ok(name)
        })?;
        info!(uri = %self.uri, domain = %name, path = %path.display(), elapsed = ?started.elapsed(), "domain restored");
        Ok(name)
    }

    /// Reboots the guest in place (`virsh reboot`).
    pub fn reboot(&self, name: &str) -> Result<(), LibvirtError> {
        let domain_name = name.to_string();
        self.call("virDomainReboot", Retry::Once, move |connection| {
            lookup(connection, &domain_name)?
                .reboot(sys::VIR_DOMAIN_REBOOT_DEFAULT)
                .map_err(LibvirtError::call("virDomainReboot"))
        })
    }

    /// Moves the domain to the host at `dest_uri` (`virsh migrate [--live]`), which this process
    /// connects to for the duration of the migration. The domain stays transient there.
    /// `copy_storage`: the hosts do not share the disks; the destination has empty snapshots
    /// of the same images and the hypervisor copies what the guest wrote (`--copy-storage-inc`).
    /// `migration_uri`: where the source's QEMU sends the guest (`tcp://<destination>`), when
    /// the destination's own host name is not the address to use.
    pub fn migrate(
        &self,
        name: &str,
        dest_uri: &str,
        live: bool,
        copy_storage: bool,
        migration_uri: Option<String>,
    ) -> Result<(), LibvirtError> {
        let started = Instant::now();
        let domain_name = name.to_string();
        let destination = dest_uri.to_string();
        let mut flags = if live { sys::VIR_MIGRATE_LIVE } else { 0 };
        if copy_storage {
            flags |= sys::VIR_MIGRATE_NON_SHARED_INC;
        }
        let via = migration_uri.clone();
        self.call_detached("virDomainMigrate", move |connection| {
            let domain = lookup(connection, &domain_name)?;
            let destination_connection = open_connection(&destination)?;
            // While libvirt copies, a watcher reports the job's figures (memory and disks
            // transferred and remaining) in the log and as long work.
            let (stop, stopped) = mpsc::channel::<()>();
            thread::scope(|scope| {
                let watched = &domain;
                let name = domain_name.as_str();
                scope.spawn(move || super::migration::watch(watched, name, stopped));
                let migrated = domain
                    .migrate(&destination_connection, flags, None, via.as_deref(), 0)
                    .map_err(LibvirtError::call("virDomainMigrate"));
                drop(stop);
                migrated
            })?;
            Ok(())
        })?;
        info!(uri = %self.uri, domain = name, destination = dest_uri, live, copy_storage, migration_uri = ?migration_uri, elapsed = ?started.elapsed(), "domain migrated");
        Ok(())
    }

    /// Adds a device to the running domain (`virsh attach-device --live`): a hot-plugged disk.
    pub fn attach_device(&self, name: &str, xml: &str) -> Result<(), LibvirtError> {
        let started = Instant::now();
        let (domain_name, device) = (name.to_string(), xml.to_string());
        self.call(
            "virDomainAttachDeviceFlags",
            Retry::Once,
            move |connection| {
                lookup(connection, &domain_name)?
                    .attach_device_flags(&device, sys::VIR_DOMAIN_AFFECT_LIVE)
                    .map_err(LibvirtError::call("virDomainAttachDeviceFlags"))
            },
        )?;
        info!(uri = %self.uri, domain = name, elapsed = ?started.elapsed(), "device attached");
        Ok(())
    }

    /// Asks the running domain to let a device go (`virsh detach-device --live`). For a PCI
    /// device the guest has to release it: the device may still be there when this returns
    /// (see [`LibvirtHost::domain_description`] to watch it go).
    pub fn detach_device(&self, name: &str, xml: &str) -> Result<(), LibvirtError> {
        let started = Instant::now();
        let (domain_name, device) = (name.to_string(), xml.to_string());
        self.call(
            "virDomainDetachDeviceFlags",
            Retry::Once,
            move |connection| {
                lookup(connection, &domain_name)?
                    .detach_device_flags(&device, sys::VIR_DOMAIN_AFFECT_LIVE)
                    .map_err(LibvirtError::call("virDomainDetachDeviceFlags"))
            },
        )?;
        info!(uri = %self.uri, domain = name, elapsed = ?started.elapsed(), "device detach requested");
        Ok(())
    }

    /// Only the state (what the shutdown wait needs, without the counters); `None` when gone.
    fn domain_state(&self, name: &str) -> Result<Option<DomainState>, LibvirtError> {
        let domain_name = name.to_string();
        self.call_read("virDomainGetState", move |connection| {
            let domain = match lookup(connection, &domain_name) {
                Ok(domain) => domain,
                Err(error) if error.is_no_domain() => return Ok(None),
                Err(error) => return Err(error),
            };
            match domain
                .state()
                .map_err(LibvirtError::call("virDomainGetState"))
            {
                Ok((state, _reason)) => Ok(Some(DomainState::from_libvirt(state))),
                Err(error) if error.is_no_domain() => Ok(None),
                Err(error) => Err(error),
            }
        })
    }

    /// The domain's state and counters; `None` when the host has no such domain.
    pub fn domain_status(&self, name: &str) -> Result<Option<DomainStatus>, LibvirtError> {
        let domain_name = name.to_string();
        self.call_read("virDomainGetInfo", move |connection| {
            let domain = match lookup(connection, &domain_name) {
                Ok(domain) => domain,
                Err(error) if error.is_no_domain() => return Ok(None),
                Err(error) => return Err(error),
            };
            let sampled_at = Instant::now();
            let domain_info = match domain
                .info()
                .map_err(LibvirtError::call("virDomainGetInfo"))
            {
                Ok(domain_info) => domain_info,
                // Gone between the lookup and the question.
                Err(error) if error.is_no_domain() => return Ok(None),
                Err(error) => return Err(error),
            };
            let (net_rx, net_tx) = network_counters(&domain);
            Ok(Some(DomainStatus {
                state: DomainState::from_libvirt(domain_info.state),
                cpu_time_ns: domain_info.cpu_time,
                memory_kib: domain_info.memory,
                net_rx,
                net_tx,
                sampled_at,
            }))
        })
    }

    /// The domain's live description as libvirt holds it (with what libvirt filled in, such as
    /// the VNC port it picked for `port='-1'`); `None` when the host has no such domain.
    pub fn domain_description(&self, name: &str) -> Result<Option<String>, LibvirtError> {
        let domain_name = name.to_string();
        self.call_read("virDomainGetXMLDesc", move |connection| {
            let domain = match lookup(connection, &domain_name) {
                Ok(domain) => domain,
                Err(error) if error.is_no_domain() => return Ok(None),
                Err(error) => return Err(error),
            };
            match domain
                .xml_desc(0)
                .map_err(LibvirtError::call("virDomainGetXMLDesc"))
            {
                Ok(description) => Ok(Some(description)),
                Err(error) if error.is_no_domain() => Ok(None),
                Err(error) => Err(error),
            }
        })
    }

    /// What the host's driver offers `domain_type` guests of `arch`
    /// (`virConnectGetDomainCapabilities`, an XML document). libvirt's QEMU driver probes the
    /// emulator to answer, the probe it would otherwise make during the first domain start.
    pub fn domain_capabilities(
        &self,
        arch: &str,
        domain_type: &str,
    ) -> Result<String, LibvirtError> {
        let (arch, domain_type) = (arch.to_string(), domain_type.to_string());
        self.call_read("virConnectGetDomainCapabilities", move |connection| {
            connection
                .domain_capabilities(None, Some(&arch), None, Some(&domain_type), 0)
                .map_err(LibvirtError::call("virConnectGetDomainCapabilities"))
        })
    }

    /// Names of the running (active) domains of the host.
    pub fn list_domains(&self) -> Result<Vec<String>, LibvirtError> {
        self.call_read("virConnectListAllDomains", |connection| {
            let domains = connection
                .list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                .map_err(LibvirtError::call("virConnectListAllDomains"))?;
            domains
                .iter()
                .map(|domain| {
                    domain
                        .name()
                        .map_err(LibvirtError::call("virDomainGetName"))
                })
                .collect()
        })
    }

    /// CPUs, clock, model and memory of the host.
    pub fn node_info(&self) -> Result<NodeInfo, LibvirtError> {
        self.call_read("virNodeGetInfo", |connection| {
            let node = connection
                .node_info()
                .map_err(LibvirtError::call("virNodeGetInfo"))?;
            let free_memory_kib = match connection.free_memory() {
                // libvirt answers in bytes.
                Ok(free_bytes) => free_bytes / 1024,
                Err(error) => {
                    debug!(%error, "no free memory figure; estimating from the running domains");
                    let domains = connection
                        .list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                        .map_err(LibvirtError::call("virConnectListAllDomains"))?;
                    let used_kib = domains
                        .iter()
                        .filter_map(|domain| domain.info().ok())
                        .fold(0u64, |used, domain_info| {
                            used.saturating_add(domain_info.memory)
                        });
                    node.memory.saturating_sub(used_kib)
                }
            };
            Ok(NodeInfo {
                cpus: node.cpus,
                mhz: node.mhz,
                model: node.model,
                memory_kib: node.memory,
                free_memory_kib,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_count_as_a_broken_connection() {
        assert!(connection_broken(sys::VIR_ERR_INVALID_CONN, 0));
        assert!(connection_broken(
            sys::VIR_ERR_NO_CONNECT,
            sys::VIR_FROM_REMOTE
        ));
        assert!(connection_broken(
            sys::VIR_ERR_SYSTEM_ERROR,
            sys::VIR_FROM_RPC
        ));
        assert!(connection_broken(
            sys::VIR_ERR_INTERNAL_ERROR,
            sys::VIR_FROM_RPC
        ));
        assert!(!connection_broken(
            sys::VIR_ERR_INTERNAL_ERROR,
            sys::VIR_FROM_QEMU
        ));
        assert!(!connection_broken(
            sys::VIR_ERR_NO_DOMAIN,
            sys::VIR_FROM_RPC
        ));
        assert!(!connection_broken(
            sys::VIR_ERR_OPERATION_INVALID,
            sys::VIR_FROM_TEST
        ));
    }

    /// A host stuck in one call (as on a cut link): a question gives up after the host's
    /// `answer_within`, the abandoned question is not run later, and the connection answers
    /// again once the stuck call ends.
    #[test]
    #[allow(clippy::expect_used)]
    fn a_question_to_a_stuck_host_gives_up_and_is_not_run_later() {
        let dir = std::env::temp_dir().join(format!("stratusd-conn-stuck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        let (_, uri) = super::super::write_test_node(&dir, "stuck", 2, 1 << 20).expect("node file");
        let host = LibvirtHost::open_bounded(&uri, Some(Duration::from_millis(300)))
            .expect("open the test host");
        let (release, stuck) = mpsc::channel::<()>();
        let (running, is_running) = mpsc::channel::<()>();
        let blocker = host.clone();
        let blocked = thread::spawn(move || {
            blocker.request(move |_| {
                let _ = running.send(());
                let _ = stuck.recv();
                Ok(())
            })
        });
        is_running.recv().expect("the stuck call runs");
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&asked);
        let started = Instant::now();
        let answer = host.ask("virNodeGetInfo", move |_| {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
        assert!(matches!(answer, Err(ref e) if e.is_timeout()), "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        release.send(()).expect("release the stuck call");
        blocked
            .join()
            .expect("stuck call thread")
            .expect("stuck call");
        let node = host.node_info().expect("the host answers again");
        assert_eq!(node.cpus, 2);
        assert!(
            !asked.load(std::sync::atomic::Ordering::SeqCst),
            "the abandoned question ran after its caller gave up"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn sample(cpu_time_ns: u64, sampled_at: Instant) -> DomainStatus {
        DomainStatus {
            state: DomainState::Running,
            cpu_time_ns,
            memory_kib: 0,
            net_rx: None,
            net_tx: None,
            sampled_at,
        }
    }

    #[test]
    fn cpu_percent_is_relative_to_one_cpu() {
        let start = Instant::now();
        let later = start + Duration::from_secs(10);
        let half = cpu_percent(&sample(0, start), &sample(5_000_000_000, later));
        assert_eq!(half, Some(50.0));
        let two_cpus = cpu_percent(&sample(1, start), &sample(20_000_000_001, later));
        assert_eq!(two_cpus, Some(200.0));
        assert_eq!(cpu_percent(&sample(10, later), &sample(20, start)), None);
        assert_eq!(cpu_percent(&sample(10, start), &sample(5, later)), None);
        assert_eq!(cpu_percent(&sample(10, start), &sample(20, start)), None);
    }
}
