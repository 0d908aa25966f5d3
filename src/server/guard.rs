//! The guarded HTTP/1.1 listener: one accept loop and connection driver that every stratusd
//! HTTP listener uses (the XML-RPC port, the HTTPS front door, and any other), so that no
//! client — hostile or just slow — can hold the daemon's descriptors, memory or tasks.
//!
//! What it enforces, per listener ([`Limits`], from `[connections]` in the config file):
//!
//! * **a cap on open connections** (`max_connections`). When it is reached, the connection
//!   that has waited longest without being served (an idle keep-alive connection, a fresh one
//!   that sent nothing, or one still trickling its request header) is closed to admit the new
//!   one, so a flood of idle sockets never locks out a real client. When every connection is
//!   being served, new ones wait in the kernel's backlog until one ends;
//! * **a request-header deadline** (`header_timeout`), counted from the first byte of a
//!   request (slowloris);
//! * **an idle keep-alive timeout** (`idle_timeout`), counted from the end of the previous
//!   answer, or from the connection's start (or TLS handshake) for its first request. An idle
//!   connection is closed in order (TLS close_notify, then FIN): a client such as Python's
//!   xmlrpclib then resends its next call on a new connection;
//! * **a minimum transfer rate** (`min_rate` bytes/s after a `rate_grace` allowance) for the
//!   request body, counted only while the handler waits for it, and for the answer, counted
//!   while the socket refuses to take more (a client that does not read);
//! * **the body limit**: a declared `Content-Length` above `max_body_bytes` is refused at once
//!   with the handler's [`Handler::too_large`] answer, without reading the body (the
//!   connection then closes; what the client already sent is discarded for a short linger so
//!   that it can read the answer); a chunked body is cut at the limit while it streams;
//! * **a memory budget for bodies** ([`BodyBudget`], shared by all listeners): a large body is
//!   only read once its cost is reserved (its size, times what handling it costs: see
//!   [`RequestBody::collect_costing`]), and stays reserved while the handler holds the
//!   [`Collected`] body (while it is parsed and answered). A cost larger than the whole
//!   budget reserves the whole budget;
//! * **`accept` errors** (EMFILE, ENFILE, ENOBUFS …): the longest-waiting connection is closed
//!   to free a descriptor, and accepting backs off (10 ms doubling to 1 s) instead of spinning.
//!
//! # Using it
//!
//! ```text
//! let guard = Guard::new("pdisk", Limits::new(&settings.connections, max_body, budget));
//! guard.serve(listener, Plain, MyHandler { .. }, shutdown_rx).await;
//! ```
//!
//! * A [`Transport`] turns an accepted TCP stream into the stream HTTP runs over, with what
//!   the handler should know about the peer: [`Plain`] (the socket and its address), or a TLS
//!   acceptor (the front door's `TlsTransport`). It runs under `handshake_timeout`.
//! * A [`Handler`] answers one request, given the peer and a [`Request<RequestBody>`]. Read the
//!   body with [`RequestBody::collect`] (budget, limit and rate applied) and keep the returned
//!   [`Collected`] alive until the answer is built; or stream it through
//!   [`hyper::body::Body`] (limit and rate applied, no budget). Answer bodies must be `Unpin`
//!   (`Full`, `Either<..>`, [`crate::server::AnswerBody`] are).
//! * [`Guard::stats`] gives counters (open connections, evictions, timeouts, refusals) for
//!   logs and metrics.

use crate::config::{ConnectionSettings, Settings};
use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Bodies smaller than this are read without reserving budget: their cost is of the order of
/// the connection's own buffers.
const SMALL_BODY: u64 = 256 * 1024;
/// How often a connection that is being served looks at its answer's progress.
const BUSY_RECHECK: Duration = Duration::from_millis(500);
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// Descriptors kept for everything that is not a client connection (database, libvirt,
/// driver pipes, files being copied).
const RESERVED_DESCRIPTORS: u64 = 128;

/// The limits of one listener.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Time a transport (TLS) handshake may take.
    pub handshake_timeout: Duration,
    /// From the first byte of a request to the end of its header.
    pub header_timeout: Duration,
    /// Between two requests, or before the first one.
    pub idle_timeout: Duration,
    /// Bytes per second a body must move (both ways) once `rate_grace` is used up.
    pub min_rate: u64,
    pub rate_grace: Duration,
    /// Request line and header must fit in this (hyper answers 431 otherwise).
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: u64,
    /// Time an orderly close (TLS close_notify, FIN) may take.
    pub close_timeout: Duration,
    /// After refusing a body unread: how long what the client still sends is discarded
    /// before the socket closes, so that the refusal is not lost to a TCP reset.
    pub linger: Duration,
    pub budget: Arc<BodyBudget>,
}

fn seconds(value: f64, default: Duration) -> Duration {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .unwrap_or(default)
}

impl Limits {
    pub fn new(s: &ConnectionSettings, max_body_bytes: usize, budget: Arc<BodyBudget>) -> Limits {
        Limits {
            max_connections: s.max_connections.max(1),
            handshake_timeout: seconds(s.header_timeout, Duration::from_secs(10)),
            header_timeout: seconds(s.header_timeout, Duration::from_secs(10)),
            idle_timeout: seconds(s.idle_timeout, Duration::from_secs(30)),
            min_rate: s.min_rate.max(1),
            rate_grace: seconds(s.rate_grace, Duration::from_secs(10)),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: max_body_bytes as u64,
            close_timeout: Duration::from_secs(5),
            linger: Duration::from_secs(2),
            budget,
        }
    }

    /// Lowers the connection cap so that `listeners` listeners at their caps stay within
    /// the process's descriptor limit (`soft_limit`), keeping [`RESERVED_DESCRIPTORS`].
    pub fn fit_descriptors(&mut self, soft_limit: u64, listeners: usize) {
        let usable = soft_limit.saturating_sub(RESERVED_DESCRIPTORS) / listeners.max(1) as u64;
        let fit = usize::try_from(usable).unwrap_or(usize::MAX).max(8);
        if fit < self.max_connections {
            tracing::warn!(
                max_connections = self.max_connections,
                descriptors = soft_limit,
                "the descriptor limit only leaves room for {fit} connections per listener"
            );
            self.max_connections = fit;
        }
    }
}

/// How many listeners the descriptor limit is shared among when [`Limits::for_listener`]
/// fits the connection cap to it (the XML-RPC port, the front door, and room for others).
const LISTENER_SHARE: usize = 4;

impl Limits {
    /// The limits of one of the daemon's listeners: `[connections]`, `max_body_bytes`, the
    /// daemon's one [`BodyBudget`], and a cap that fits the descriptor limit (raised to its
    /// hard limit on first use).
    pub fn for_listener(settings: &Settings) -> Limits {
        static DESCRIPTORS: OnceLock<Option<u64>> = OnceLock::new();
        static BUDGET: OnceLock<Arc<BodyBudget>> = OnceLock::new();
        let budget = BUDGET.get_or_init(|| {
            BodyBudget::new(
                settings
                    .connections
                    .body_memory
                    .max(settings.max_body_bytes),
            )
        });
        let mut limits = Limits::new(
            &settings.connections,
            settings.max_body_bytes,
            Arc::clone(budget),
        );
        if let Some(soft) = *DESCRIPTORS.get_or_init(raise_descriptor_limit) {
            limits.fit_descriptors(soft, LISTENER_SHARE);
        }
        limits
    }
}

/// Raises the soft limit on open descriptors to the hard limit; returns the soft limit now in
/// force (`None` when it cannot be read).
pub fn raise_descriptor_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    Some(lim.rlim_cur)
}

// ---------------------------------------------------------------------------------------------
// The body budget.

/// Bytes of request bodies that may be held (read, parsed, answered) at once, shared by every
/// listener of the daemon. Weighted in KiB.
#[derive(Debug)]
pub struct BodyBudget {
    kib: Arc<Semaphore>,
    total_kib: u32,
}

/// A reservation in the [`BodyBudget`]; given back when dropped.
#[derive(Debug)]
pub struct BudgetPermit {
    _permit: Option<OwnedSemaphorePermit>,
}

impl BodyBudget {
    pub fn new(bytes: usize) -> Arc<BodyBudget> {
        let total_kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX >> 4);
        Arc::new(BodyBudget {
            kib: Arc::new(Semaphore::new(total_kib as usize)),
            total_kib,
        })
    }

    /// Waits until `bytes` (at most the whole budget) are free and reserves them.
    pub async fn reserve(&self, bytes: u64) -> BudgetPermit {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib);
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = Arc::clone(&self.kib).acquire_many_owned(kib).await.ok();
        BudgetPermit { _permit: permit }
    }

    /// Bytes free now (for statistics).
    pub fn available_bytes(&self) -> u64 {
        self.kib.available_permits() as u64 * 1024
    }

    pub fn total_bytes(&self) -> u64 {
        u64::from(self.total_kib) * 1024
    }
}

// ---------------------------------------------------------------------------------------------
// Connection states.

/// Milliseconds since the first use of the guard (a monotonic clock that fits an atomic).
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX >> 8)
}

fn instant_of(ms: u64) -> tokio::time::Instant {
    let now = now_ms();
    let at = tokio::time::Instant::now();
    if ms >= now {
        at + Duration::from_millis(ms - now)
    } else {
        at.checked_sub(Duration::from_millis(now - ms))
            .unwrap_or(at)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX >> 8)
}

/// What a connection is doing; every phase but `BUSY` is waiting for its client.
const HANDSHAKE: u64 = 0;
const WAITING: u64 = 1;
const HEADER: u64 = 2;
const BUSY: u64 = 3;
const PHASE_SHIFT: u32 = 56;
const SINCE_MASK: u64 = (1 << PHASE_SHIFT) - 1;

/// Why the guard ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Idle,
    Header,
    SlowSend,
}

/// One connection as the guard sees it. The phase and its start share one atomic word, so
/// that the eviction scan never reads a phase with another phase's time.
#[derive(Debug)]
struct ConnState {
    id: u64,
    phase_since: AtomicU64,
    killed: AtomicBool,
    kill: Notify,
    /// Wakes the connection's watchdog when the phase changes (its deadline moves).
    phase_changed: Notify,
    /// The answer being sent: bytes written since the socket first refused more (what went
    /// into the socket buffers at once proves nothing about the client), and the time it
    /// refused more.
    written: AtomicU64,
    ever_blocked: AtomicBool,
    blocked_since: AtomicU64,
    blocked_total: AtomicU64,
    /// The answer's body is all handed to hyper; the answer is done once hyper has flushed it.
    answer_taken: AtomicBool,
    /// A body was refused unread: linger before closing.
    linger: AtomicBool,
}

impl ConnState {
    fn new(id: u64) -> ConnState {
        ConnState {
            id,
            phase_since: AtomicU64::new((HANDSHAKE << PHASE_SHIFT) | now_ms()),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            phase_changed: Notify::new(),
            written: AtomicU64::new(0),
            ever_blocked: AtomicBool::new(false),
            blocked_since: AtomicU64::new(0),
            blocked_total: AtomicU64::new(0),
            answer_taken: AtomicBool::new(false),
            linger: AtomicBool::new(false),
        }
    }

    fn phase(&self) -> (u64, u64) {
        let v = self.phase_since.load(Ordering::Acquire);
        (v >> PHASE_SHIFT, v & SINCE_MASK)
    }

    fn enter(&self, phase: u64) {
        self.phase_since
            .store((phase << PHASE_SHIFT) | now_ms(), Ordering::Release);
    }

    /// `from` → `to`, only if the connection is still in `from`.
    fn advance(&self, from: u64, to: u64) {
        let v = self.phase_since.load(Ordering::Acquire);
        if v >> PHASE_SHIFT == from {
            let moved = self.phase_since.compare_exchange(
                v,
                (to << PHASE_SHIFT) | now_ms(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            if moved.is_ok() {
                self.phase_changed.notify_one();
            }
        }
    }

    fn start_request(&self) {
        self.answer_taken.store(false, Ordering::Relaxed);
        self.written.store(0, Ordering::Relaxed);
        self.ever_blocked.store(false, Ordering::Relaxed);
        self.blocked_since.store(0, Ordering::Relaxed);
        self.blocked_total.store(0, Ordering::Relaxed);
        self.enter(BUSY);
    }

    /// hyper has taken the whole answer body; it may still be in hyper's write buffer.
    fn answer_taken(&self) {
        self.answer_taken.store(true, Ordering::Release);
    }

    /// Everything written is flushed: when the whole answer was, the connection waits for
    /// its client again.
    fn flushed(&self) {
        if self.answer_taken.swap(false, Ordering::AcqRel) {
            self.advance(BUSY, WAITING);
        }
    }

    fn write_blocked(&self) {
        if self.blocked_since.load(Ordering::Relaxed) == 0 {
            self.blocked_since.store(now_ms() + 1, Ordering::Relaxed);
            self.ever_blocked.store(true, Ordering::Relaxed);
        }
    }

    fn wrote(&self, n: usize) {
        let since = self.blocked_since.swap(0, Ordering::Relaxed);
        if since != 0 {
            let blocked = now_ms().saturating_sub(since - 1);
            self.blocked_total.fetch_add(blocked, Ordering::Relaxed);
        }
        if self.ever_blocked.load(Ordering::Relaxed) {
            self.written.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// When this connection must be looked at again, and whether it is overdue now.
    fn deadline(&self, limits: &Limits) -> (u64, Option<Expiry>) {
        let now = now_ms();
        let (phase, since) = self.phase();
        let (at, why) = match phase {
            WAITING | HANDSHAKE => (since + ms(limits.idle_timeout), Expiry::Idle),
            HEADER => (since + ms(limits.header_timeout), Expiry::Header),
            _ => {
                let blocked_since = self.blocked_since.load(Ordering::Relaxed);
                if blocked_since == 0 {
                    return (now + ms(BUSY_RECHECK), None);
                }
                let allowance = ms(limits.rate_grace)
                    + self.written.load(Ordering::Relaxed) * 1000 / limits.min_rate;
                let used = self.blocked_total.load(Ordering::Relaxed);
                let at = (blocked_since - 1) + allowance.saturating_sub(used);
                (at.min(now + ms(BUSY_RECHECK)), Expiry::SlowSend)
            }
        };
        let overdue = match why {
            Expiry::SlowSend => {
                let blocked_since = self.blocked_since.load(Ordering::Relaxed);
                let allowance = ms(limits.rate_grace)
                    + self.written.load(Ordering::Relaxed) * 1000 / limits.min_rate;
                blocked_since != 0
                    && self.blocked_total.load(Ordering::Relaxed)
                        + now.saturating_sub(blocked_since - 1)
                        > allowance
            }
            _ => now >= at,
        };
        (at, overdue.then_some(why))
    }
}

/// Counters of one listener, for logs and metrics.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    evicted: AtomicU64,
    idle_closed: AtomicU64,
    header_timeouts: AtomicU64,
    handshake_failures: AtomicU64,
    slow_bodies: AtomicU64,
    slow_answers: AtomicU64,
    refused_too_large: AtomicU64,
    accept_errors: AtomicU64,
}

/// A snapshot of a listener's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections open now.
    pub open: usize,
    pub max_connections: usize,
    pub accepted: u64,
    /// Closed to admit a new connection (or to free a descriptor).
    pub evicted: u64,
    /// Closed after `idle_timeout` without a request.
    pub idle_closed: u64,
    pub header_timeouts: u64,
    pub handshake_failures: u64,
    /// Request bodies slower than `min_rate`.
    pub slow_bodies: u64,
    /// Answers the client did not take at `min_rate`.
    pub slow_answers: u64,
    /// Requests refused for a declared `Content-Length` above the limit.
    pub refused_too_large: u64,
    pub accept_errors: u64,
}

#[derive(Debug)]
struct Shared {
    name: &'static str,
    limits: Limits,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    /// Connections marked for closing that have not ended yet (not counted against the cap).
    closing: AtomicUsize,
    next_id: AtomicU64,
    /// Signalled when a connection ends.
    released: Notify,
    counters: Counters,
}

impl Shared {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<ConnState>>> {
        // A panic while the lock was held leaves the map itself consistent.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> usize {
        self.table().len()
    }

    /// Open connections that count against the cap.
    fn counted(&self) -> usize {
        self.open()
            .saturating_sub(self.closing.load(Ordering::Acquire))
    }

    fn register(self: &Arc<Self>) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new(id));
        self.table().insert(id, Arc::clone(&state));
        Registration {
            shared: Arc::clone(self),
            state,
        }
    }

    /// The connection that has waited longest for its client, if any.
    fn longest_waiting(&self) -> Option<Arc<ConnState>> {
        self.table()
            .values()
            .filter(|c| !c.killed.load(Ordering::Acquire))
            .filter_map(|c| match c.phase() {
                (BUSY, _) => None,
                (_, since) => Some((since, c)),
            })
            .min_by_key(|(since, c)| (*since, c.id))
            .map(|(_, c)| Arc::clone(c))
    }

    fn has_evictable(&self) -> bool {
        self.longest_waiting().is_some()
    }

    /// Closes the longest-waiting connection; false when every connection is being served.
    fn evict_one(&self) -> bool {
        let Some(victim) = self.longest_waiting() else {
            return false;
        };
        if victim.killed.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.closing.fetch_add(1, Ordering::AcqRel);
        self.counters.evicted.fetch_add(1, Ordering::Relaxed);
        victim.kill.notify_one();
        true
    }
}

/// A connection's place in the table, given up when its task ends (however it ends).
struct Registration {
    shared: Arc<Shared>,
    state: Arc<ConnState>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.table().remove(&self.state.id);
        if self.state.killed.load(Ordering::Acquire) {
            self.shared.closing.fetch_sub(1, Ordering::AcqRel);
        }
        self.shared.released.notify_one();
    }
}

// ---------------------------------------------------------------------------------------------
// Transports and handlers.

/// Turns an accepted TCP stream into the stream HTTP is spoken over.
pub trait Transport: Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// What the handler learns about the client.
    type Peer: Send + Sync + 'static;
    /// Runs under the listener's `handshake_timeout`.
    fn establish(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> impl Future<Output = io::Result<(Self::Io, Self::Peer)>> + Send;
}

/// Plain HTTP: the socket itself; the peer is its address.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Transport for Plain {
    type Io = TcpStream;
    type Peer = SocketAddr;
    async fn establish(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> io::Result<(TcpStream, SocketAddr)> {
        Ok((stream, addr))
    }
}

/// Answers requests on a guarded listener.
pub trait Handler<P>: Send + Sync + 'static {
    type Body: Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Unpin
        + Send
        + 'static;
    /// The answer to one request.
    fn call(
        self: Arc<Self>,
        peer: Arc<P>,
        req: Request<RequestBody>,
    ) -> impl Future<Output = Response<Self::Body>> + Send + 'static;
    /// The answer to a request whose declared `Content-Length` exceeds `limit` (its body is
    /// not read; the connection closes after the answer).
    fn too_large(&self, req: &hyper::http::request::Parts, limit: u64) -> Response<Self::Body>;
}

// ---------------------------------------------------------------------------------------------
// Request bodies.

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the request body arrives slower than {rate} bytes/s")]
    TooSlow { rate: u64 },
    #[error("could not read the request body: {0}")]
    Broken(#[from] hyper::Error),
}

/// A request body under the listener's limit and minimum rate.
pub struct RequestBody {
    inner: Incoming,
    limit: u64,
    declared: Option<u64>,
    received: u64,
    /// Bytes received since the handler first had to wait for the client (what was already
    /// buffered proves nothing about its rate).
    received_since_wait: u64,
    min_rate: u64,
    grace: Duration,
    /// Time spent waiting for the client, before the current wait.
    starved: Duration,
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    budget: Arc<BodyBudget>,
    counters: Option<Arc<Shared>>,
    done: bool,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("declared", &self.declared)
            .field("received", &self.received)
            .finish()
    }
}

/// A whole request body, and its reservation in the body budget: keep it until the body's
/// parsed form is no longer needed.
#[derive(Debug)]
pub struct Collected {
    bytes: Bytes,
    _permit: Option<BudgetPermit>,
}

impl Collected {
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl RequestBody {
    fn new(inner: Incoming, declared: Option<u64>, limits: &Limits, shared: &Arc<Shared>) -> Self {
        RequestBody {
            inner,
            limit: limits.max_body_bytes,
            declared,
            received: 0,
            received_since_wait: 0,
            min_rate: limits.min_rate,
            grace: limits.rate_grace,
            starved: Duration::ZERO,
            waiting_since: None,
            timer: None,
            budget: Arc::clone(&limits.budget),
            counters: Some(Arc::clone(shared)),
            done: false,
        }
    }

    /// The `Content-Length` the client declared, if any.
    pub fn declared_len(&self) -> Option<u64> {
        self.declared
    }

    /// Reads the whole body: a large one only once its size is reserved in the body budget.
    pub async fn collect(self) -> Result<Collected, BodyError> {
        self.collect_costing(1).await
    }

    /// [`RequestBody::collect`] for a body whose handling costs up to `factor` times its
    /// size in memory (the body included: a parsed XML-RPC request, for instance), all of
    /// it reserved before the body is read and held as long as the [`Collected`] body.
    pub async fn collect_costing(mut self, factor: u64) -> Result<Collected, BodyError> {
        let expected = self.declared.unwrap_or(self.limit).min(self.limit);
        let permit = if expected >= SMALL_BODY {
            Some(
                self.budget
                    .reserve(expected.saturating_mul(factor.max(1)))
                    .await,
            )
        } else {
            None
        };
        let mut buf = match self.declared {
            Some(n) => BytesMut::with_capacity(n.min(self.limit) as usize),
            None => BytesMut::new(),
        };
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_frame(cx)).await
        {
            if let Ok(data) = frame?.into_data() {
                buf.extend_from_slice(&data);
            }
        }
        Ok(Collected {
            bytes: buf.freeze(),
            _permit: permit,
        })
    }

    fn fail(&mut self, e: BodyError) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        self.done = true;
        if let (BodyError::TooSlow { .. }, Some(shared)) = (&e, &self.counters) {
            shared.counters.slow_bodies.fetch_add(1, Ordering::Relaxed);
        }
        Poll::Ready(Some(Err(e)))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(since) = this.waiting_since.take() {
                    this.starved += since.elapsed();
                }
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if this.timer.is_some() {
                        this.received_since_wait += data.len() as u64;
                    }
                    if this.received > this.limit {
                        let limit = this.limit;
                        return this.fail(BodyError::TooLarge { limit });
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => this.fail(BodyError::Broken(e)),
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let since = *this.waiting_since.get_or_insert_with(Instant::now);
                let allowance = this.grace
                    + Duration::from_secs_f64(
                        this.received_since_wait as f64 / this.min_rate as f64,
                    );
                let left = allowance.saturating_sub(this.starved);
                let deadline = tokio::time::Instant::from_std(since + left);
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    let rate = this.min_rate;
                    return this.fail(BodyError::TooSlow { rate });
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The answer's body: tells the connection when hyper has taken all of it.
pub struct TrackedBody<B> {
    inner: B,
    state: Arc<ConnState>,
}

impl<B> Drop for TrackedBody<B> {
    fn drop(&mut self) {
        self.state.answer_taken();
    }
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// ---------------------------------------------------------------------------------------------
// The stream under HTTP.

/// The transport's stream, watched: the first byte of a request starts its header deadline;
/// a write the socket refuses counts against the answer's rate.
struct GuardedIo<I> {
    inner: I,
    state: Arc<ConnState>,
}

impl<I: AsyncRead + Unpin> AsyncRead for GuardedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.advance(WAITING, HEADER);
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> GuardedIo<I> {
    fn account(&self, r: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match &r {
            Poll::Pending => self.state.write_blocked(),
            Poll::Ready(Ok(n)) => self.state.wrote(*n),
            Poll::Ready(Err(_)) => {}
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for GuardedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.account(r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.account(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            this.state.flushed();
        }
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// The service hyper calls.

type BoxedAnswer<B> =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody<B>>, Infallible>> + Send>>;

struct GuardService<H, P> {
    handler: Arc<H>,
    peer: Arc<P>,
    state: Arc<ConnState>,
    shared: Arc<Shared>,
}

fn declared_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

impl<H: Handler<P>, P: Send + Sync + 'static> hyper::service::Service<Request<Incoming>>
    for GuardService<H, P>
{
    type Response = Response<TrackedBody<H::Body>>;
    type Error = Infallible;
    type Future = BoxedAnswer<H::Body>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.state.start_request();
        let limits = &self.shared.limits;
        let declared = declared_length(&req);
        let state = Arc::clone(&self.state);
        if declared.is_some_and(|n| n > limits.max_body_bytes) {
            self.shared
                .counters
                .refused_too_large
                .fetch_add(1, Ordering::Relaxed);
            let (parts, _body) = req.into_parts();
            let mut answer = self.handler.too_large(&parts, limits.max_body_bytes);
            answer.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
            state.linger.store(true, Ordering::Release);
            let answer = answer.map(|inner| TrackedBody { inner, state });
            return Box::pin(std::future::ready(Ok(answer)));
        }
        let req = req.map(|body| RequestBody::new(body, declared, limits, &self.shared));
        let answer = Arc::clone(&self.handler).call(Arc::clone(&self.peer), req);
        Box::pin(async move {
            let answer = answer.await;
            Ok(answer.map(|inner| TrackedBody { inner, state }))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The listener.

/// A guarded listener: its limits, its open connections and counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Guard {
    shared: Arc<Shared>,
}

fn is_descriptor_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl Guard {
    /// `name` names the listener in logs.
    pub fn new(name: &'static str, limits: Limits) -> Guard {
        Guard {
            shared: Arc::new(Shared {
                name,
                limits,
                conns: Mutex::new(HashMap::new()),
                closing: AtomicUsize::new(0),
                next_id: AtomicU64::new(0),
                released: Notify::new(),
                counters: Counters::default(),
            }),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// The listener's name (in logs and metrics).
    pub fn name(&self) -> &'static str {
        self.shared.name
    }

    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            open: self.shared.open(),
            max_connections: self.shared.limits.max_connections,
            accepted: get(&c.accepted),
            evicted: get(&c.evicted),
            idle_closed: get(&c.idle_closed),
            header_timeouts: get(&c.header_timeouts),
            handshake_failures: get(&c.handshake_failures),
            slow_bodies: get(&c.slow_bodies),
            slow_answers: get(&c.slow_answers),
            refused_too_large: get(&c.refused_too_large),
            accept_errors: get(&c.accept_errors),
        }
    }

    /// Serves `listener` until `shutdown` turns true; then lets open requests finish (at most
    /// `close_timeout`) and closes what is left.
    pub async fn serve<T, H>(
        &self,
        listener: TcpListener,
        transport: T,
        handler: H,
        mut shutdown: watch::Receiver<bool>,
    ) where
        T: Transport,
        H: Handler<T::Peer>,
    {
        let shared = &self.shared;
        let transport = Arc::new(transport);
        let handler = Arc::new(handler);
        let cap = shared.limits.max_connections;
        let mut conns = tokio::task::JoinSet::new();
        let mut backoff = MIN_ACCEPT_BACKOFF;
        let mut last_error_log: Option<Instant> = None;
        loop {
            if shared.counted() >= cap && !shared.has_evictable() {
                // Every connection is being served: new ones wait in the backlog.
                tokio::select! {
                    _ = shared.released.notified() => {}
                    _ = shutdown.changed() => break,
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
                continue;
            }
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        backoff = MIN_ACCEPT_BACKOFF;
                        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
                        if shared.counted() >= cap {
                            shared.evict_one();
                        }
                        let _ = stream.set_nodelay(true);
                        let registration = shared.register();
                        conns.spawn(connection(
                            registration,
                            Arc::clone(&transport),
                            Arc::clone(&handler),
                            stream,
                            addr,
                            shutdown.clone(),
                        ));
                    }
                    Err(e) => {
                        shared.counters.accept_errors.fetch_add(1, Ordering::Relaxed);
                        let exhausted = is_descriptor_exhaustion(&e);
                        if exhausted {
                            // A descriptor held by a waiting client is worth less than a new
                            // client's.
                            shared.evict_one();
                        }
                        if last_error_log.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                            tracing::warn!(listener = shared.name, error = %e, open = shared.open(), "accept failed; backing off");
                            last_error_log = Some(Instant::now());
                        }
                        if exhausted || !matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted) {
                            tokio::select! {
                                _ = tokio::time::sleep(backoff) => {}
                                _ = shutdown.changed() => break,
                            }
                            backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                        }
                    }
                },
                _ = shutdown.changed() => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        drop(listener);
        let drain = async { while conns.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(shared.limits.close_timeout, drain).await;
    }
}

/// How a connection's HTTP exchange ended.
enum End {
    /// hyper is done (client closed, keep-alive off, error).
    Finished(Result<(), hyper::Error>),
    /// The guard closes it: idle or evicted while waiting (in order), or hostile (at once).
    Closed { in_order: bool },
}

async fn connection<T: Transport, H: Handler<T::Peer>>(
    registration: Registration,
    transport: Arc<T>,
    handler: Arc<H>,
    stream: TcpStream,
    addr: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let shared = Arc::clone(&registration.shared);
    let state = Arc::clone(&registration.state);
    let limits = &shared.limits;
    let established = tokio::select! {
        r = tokio::time::timeout(limits.handshake_timeout, transport.establish(stream, addr)) => r,
        _ = state.kill.notified() => return,
        _ = stop.changed() => return,
    };
    let (io, peer) = match established {
        Ok(Ok(established)) => established,
        Ok(Err(e)) => {
            shared
                .counters
                .handshake_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(listener = shared.name, peer = %addr, error = %e, "handshake failed");
            return;
        }
        Err(_) => {
            shared
                .counters
                .handshake_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(listener = shared.name, peer = %addr, "handshake timed out");
            return;
        }
    };
    state.enter(WAITING);
    let service = GuardService {
        handler,
        peer: Arc::new(peer),
        state: Arc::clone(&state),
        shared: Arc::clone(&shared),
    };
    let io = GuardedIo {
        inner: io,
        state: Arc::clone(&state),
    };
    let mut conn = http1::Builder::new()
        .keep_alive(true)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .serve_connection(TokioIo::new(io), service);
    let mut stopping = *stop.borrow();
    if stopping {
        Pin::new(&mut conn).graceful_shutdown();
    }
    let end = loop {
        let (at, overdue) = state.deadline(limits);
        if let Some(why) = overdue {
            let counter = match why {
                Expiry::Idle => &shared.counters.idle_closed,
                Expiry::Header => &shared.counters.header_timeouts,
                Expiry::SlowSend => &shared.counters.slow_answers,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(listener = shared.name, peer = %addr, ?why, "closing connection");
            break End::Closed {
                in_order: why == Expiry::Idle,
            };
        }
        tokio::select! {
            res = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break End::Finished(res),
            _ = tokio::time::sleep_until(instant_of(at)) => {}
            _ = state.phase_changed.notified() => {}
            _ = state.kill.notified() => break End::Closed { in_order: state.phase().0 == WAITING },
            _ = stop.changed(), if !stopping => {
                stopping = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    };
    let in_order = match end {
        End::Finished(res) => {
            if let Err(e) = res {
                tracing::debug!(listener = shared.name, peer = %addr, error = %e, "connection ended with an error");
            }
            true
        }
        End::Closed { in_order: false } => false,
        End::Closed { in_order: true } => {
            // Nothing is in flight: hyper closes an idle connection at once.
            Pin::new(&mut conn).graceful_shutdown();
            let finish = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx));
            matches!(
                tokio::time::timeout(limits.close_timeout, finish).await,
                Ok(Ok(()))
            )
        }
    };
    if !in_order {
        // A hostile or broken client: drop the socket without further ado.
        return;
    }
    let linger = state.linger.load(Ordering::Acquire);
    let mut io = conn.into_parts().io.into_inner().inner;
    // Every orderly end goes through shutdown(): a TLS close_notify, then FIN. Without it a
    // TLS client (Python 2.7's ssl on OpenSSL 3) reports its kept-alive connection's end as
    // an error instead of resending on a new one.
    if let Ok(Err(e)) = tokio::time::timeout(limits.close_timeout, io.shutdown()).await {
        tracing::debug!(listener = shared.name, peer = %addr, error = %e, "orderly close failed");
    }
    if linger {
        let discard = async {
            let mut buf = vec![0u8; 16 * 1024];
            while matches!(io.read(&mut buf).await, Ok(n) if n > 0) {}
        };
        let _ = tokio::time::timeout(limits.linger, discard).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers with the length of the body it read.
    struct Echo;

    impl Handler<SocketAddr> for Echo {
        type Body = Full<Bytes>;
        async fn call(
            self: Arc<Self>,
            _peer: Arc<SocketAddr>,
            req: Request<RequestBody>,
        ) -> Response<Full<Bytes>> {
            if req.uri().path() == "/big" {
                return Response::new(Full::new(Bytes::from(vec![b'z'; 32 << 20])));
            }
            let text = match req.into_body().collect().await {
                Ok(body) => format!("got {}", body.bytes().len()),
                Err(e) => format!("error: {e}"),
            };
            Response::new(Full::new(Bytes::from(text)))
        }
        fn too_large(
            &self,
            _req: &hyper::http::request::Parts,
            limit: u64,
        ) -> Response<Full<Bytes>> {
            Response::new(Full::new(Bytes::from(format!("too large: {limit}"))))
        }
    }

    fn limits(max_connections: usize) -> Limits {
        let settings = ConnectionSettings {
            max_connections,
            header_timeout: 0.5,
            idle_timeout: 1.0,
            min_rate: 1000,
            rate_grace: 0.5,
            body_memory: 1 << 20,
        };
        Limits::new(&settings, 100_000, BodyBudget::new(1 << 20))
    }

    async fn start(limits: Limits) -> (SocketAddr, Guard, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let guard = Guard::new("test", limits);
        let (tx, rx) = watch::channel(false);
        let g = guard.clone();
        tokio::spawn(async move { g.serve(listener, Plain, Echo, rx).await });
        (addr, guard, tx)
    }

    fn post(body_len: usize) -> Vec<u8> {
        let mut req = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {body_len}\r\n\r\n")
            .into_bytes();
        req.extend(std::iter::repeat_n(b'a', body_len));
        req
    }

    /// Reads one answer's body (the tests' answers are small and carry Content-Length).
    async fn answer(s: &mut TcpStream) -> String {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
                .await
                .expect("an answer in time")
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    return body[..len].to_string();
                }
            }
        }
        String::from_utf8_lossy(&buf).to_string()
    }

    /// True when the peer closed the connection within `within`.
    async fn closed(s: &mut TcpStream, within: Duration) -> bool {
        let mut b = [0u8; 64];
        loop {
            match tokio::time::timeout(within, s.read(&mut b)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    #[tokio::test]
    async fn at_the_cap_the_longest_idle_connection_makes_room() {
        let (addr, guard, _stop) = start(limits(4)).await;
        let mut idle = Vec::new();
        for _ in 0..4 {
            idle.push(TcpStream::connect(addr).await.unwrap());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut fresh = TcpStream::connect(addr).await.unwrap();
        fresh.write_all(&post(10)).await.unwrap();
        assert_eq!(answer(&mut fresh).await, "got 10");
        assert!(
            closed(&mut idle[0], Duration::from_secs(2)).await,
            "the oldest was closed"
        );
        assert!(
            !closed(&mut idle[3], Duration::from_millis(100)).await,
            "the newest is kept"
        );
        let stats = guard.stats();
        assert_eq!(stats.evicted, 1, "{stats:?}");
        assert!(stats.open <= 5, "{stats:?}");
    }

    #[tokio::test]
    async fn a_header_begun_late_gets_its_own_deadline() {
        let mut l = limits(16);
        l.idle_timeout = Duration::from_secs(30);
        let (addr, guard, _stop) = start(l).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        slow.write_all(b"POST / HTTP/1.1\r\n").await.unwrap();
        let started = Instant::now();
        assert!(closed(&mut slow, Duration::from_secs(5)).await);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(guard.stats().header_timeouts, 1);
    }

    #[tokio::test]
    async fn a_slow_header_and_an_idle_connection_are_closed() {
        let (addr, guard, _stop) = start(limits(16)).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        assert!(closed(&mut slow, Duration::from_secs(3)).await);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "header deadline 0.5 s"
        );
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(&post(3)).await.unwrap();
        assert_eq!(answer(&mut idle).await, "got 3");
        let started = Instant::now();
        assert!(closed(&mut idle, Duration::from_secs(3)).await);
        assert!(
            started.elapsed() >= Duration::from_millis(800),
            "idle timeout 1 s"
        );
        let stats = guard.stats();
        assert_eq!(
            (stats.header_timeouts, stats.idle_closed),
            (1, 1),
            "{stats:?}"
        );
    }

    #[tokio::test]
    async fn a_declared_length_above_the_limit_is_refused_unread() {
        let (addr, guard, _stop) = start(limits(16)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000\r\n\r\nabc")
            .await
            .unwrap();
        assert_eq!(answer(&mut s).await, "too large: 100000");
        assert!(closed(&mut s, Duration::from_secs(4)).await);
        assert_eq!(guard.stats().refused_too_large, 1);
        // A chunked body is cut at the limit while it streams.
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut req = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..30 {
            req.extend_from_slice(b"1000\r\n");
            req.extend(std::iter::repeat_n(b'b', 0x1000));
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        s.write_all(&req).await.unwrap();
        assert_eq!(
            answer(&mut s).await,
            "error: the request body is larger than the limit of 100000 bytes"
        );
    }

    #[tokio::test]
    async fn a_body_slower_than_the_minimum_rate_is_cut() {
        let (addr, guard, _stop) = start(limits(16)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n")
            .await
            .unwrap();
        // 10 bytes every 100 ms is 100 B/s, under the 1,000 B/s minimum.
        let trickle = async {
            for _ in 0..40 {
                if s.write_all(b"aaaaaaaaaa").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let started = Instant::now();
        trickle.await;
        let text = answer(&mut s).await;
        assert!(text.contains("slower than 1000 bytes/s"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(guard.stats().slow_bodies, 1);
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_its_answer_is_cut() {
        let (addr, guard, _stop) = start(limits(16)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let mut cut = false;
        while started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if guard.stats().slow_answers == 1 {
                cut = true;
                break;
            }
        }
        assert!(cut, "{:?}", guard.stats());
        assert!(started.elapsed() < Duration::from_secs(3), "grace 0.5 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(guard.stats().open, 0);
    }

    #[tokio::test]
    async fn large_bodies_wait_for_the_budget() {
        let budget = BodyBudget::new(1 << 20);
        let first = budget.reserve(700 * 1024).await;
        let waiting = {
            let budget = Arc::clone(&budget);
            tokio::spawn(async move { budget.reserve(700 * 1024).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiting.is_finished(),
            "the second body waits for the first"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(1), waiting).await;
        assert!(matches!(second, Ok(Ok(_))));
        // More than the budget is capped at the budget rather than waiting forever.
        drop(second);
        let whole = tokio::time::timeout(Duration::from_secs(1), budget.reserve(10 << 20)).await;
        assert!(whole.is_ok());
    }

    #[test]
    fn the_cap_fits_the_descriptor_limit() {
        let mut l = limits(1024);
        l.fit_descriptors(20_000, 4);
        assert_eq!(l.max_connections, 1024);
        l.fit_descriptors(256, 4);
        assert_eq!(l.max_connections, 32);
    }
}
