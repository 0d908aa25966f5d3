//! Live updates: `GET /dashboard/events` is a server-sent event stream of the state changes
//! the viewer may see. A VM that enters a new state is sent as a `vm` event (id, state name,
//! host), hosts that changed as one `host` event; a burst is gathered for
//! [`FLUSH_INTERVAL`] and sent at once, a burst too large for that (or events missed because
//! the viewer fell behind) as one `refresh`. Each VM is checked against the viewer's
//! authorization (USE, as `one.vm.info`) before anything about it is sent.
//!
//! Costs are bounded: at most [`MAX_STREAMS`] streams at once, and a quarter of the
//! listener's connection cap ([`MAX_STREAMS_PER_VIEWER`] for one session or user), each for at most [`MAX_LIFETIME`] (the browser reconnects by
//! itself), ended when the session ends or the client goes.

use super::sessions::{SessionId, Sessions};
use crate::core::auth::Caller;
use crate::core::owned::get_authorized;
use crate::core::{Core, Event};
use crate::model::acl::Op;
use crate::model::{Oid, Vm};
use bytes::Bytes;
use hyper::body::{Body, Frame};
use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

pub const MAX_STREAMS: usize = 256;
pub const MAX_STREAMS_PER_VIEWER: usize = 6;
pub const MAX_LIFETIME: Duration = Duration::from_secs(15 * 60);
const FLUSH_INTERVAL: Duration = Duration::from_millis(250);
const HEARTBEAT: Duration = Duration::from_secs(20);
/// A burst naming more VMs than this is sent as one `refresh`.
const MAX_VMS_PER_FLUSH: usize = 200;
/// A client that has not read this many chunks is dropped.
const QUEUE: usize = 32;
/// A chunk the client does not take within this time ends its stream.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Who holds the open streams (by session, or by user for Basic callers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamOwner {
    Session(SessionId),
    User(Oid),
}

#[derive(Default)]
pub struct StreamCounter {
    open: Mutex<HashMap<StreamOwner, usize>>,
}

impl StreamCounter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<StreamOwner, usize>> {
        match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A slot for one more stream, or `None` when a limit is reached: [`MAX_STREAMS`], and
    /// never more than a quarter of the listener's connections (`max_connections`), since a
    /// stream holds its connection busy.
    pub fn acquire(
        self: &Arc<Self>,
        owner: StreamOwner,
        max_connections: usize,
    ) -> Option<StreamSlot> {
        let cap = (max_connections / 4).clamp(1, MAX_STREAMS);
        let mut open = self.lock();
        let total: usize = open.values().sum();
        let mine = open.get(&owner).copied().unwrap_or(0);
        if total >= cap || mine >= MAX_STREAMS_PER_VIEWER {
            return None;
        }
        open.insert(owner, mine + 1);
        Some(StreamSlot {
            counter: Arc::clone(self),
            owner,
        })
    }
}

/// Frees its stream's place when the stream ends.
pub struct StreamSlot {
    counter: Arc<StreamCounter>,
    owner: StreamOwner,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.counter.lock();
        if let Some(n) = open.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.owner);
            }
        }
    }
}

/// The HTTP body of an event stream: chunks from the task that watches the core.
pub struct EventStream {
    chunks: mpsc::Receiver<Bytes>,
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .chunks
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// Starts watching the core for `caller`; the stream ends with the session (if any).
pub fn start(
    core: Arc<Core>,
    caller: Caller,
    sessions: Arc<Sessions>,
    session: Option<SessionId>,
    slot: StreamSlot,
) -> EventStream {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        run(core, caller, sessions, session, tx).await;
        drop(slot);
    });
    EventStream { chunks: rx }
}

async fn send(tx: &mpsc::Sender<Bytes>, chunk: String) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, tx.send(Bytes::from(chunk))).await,
        Ok(Ok(()))
    )
}

async fn run(
    core: Arc<Core>,
    caller: Caller,
    sessions: Arc<Sessions>,
    session: Option<SessionId>,
    tx: mpsc::Sender<Bytes>,
) {
    let mut events = core.subscribe();
    // Reconnect after 3 s when the stream ends; a comment so the browser sees it open.
    if !send(&tx, "retry: 3000\n: stratusd events\n\n".into()).await {
        return;
    }
    let end = tokio::time::Instant::now() + MAX_LIFETIME;
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.tick().await;
    let mut vms: BTreeSet<Oid> = BTreeSet::new();
    let mut hosts = false;
    let mut refresh = false;
    let mut flush_at: Option<tokio::time::Instant> = None;
    loop {
        let pending = flush_at.is_some();
        let flush_deadline = flush_at.unwrap_or(end);
        tokio::select! {
            received = events.recv() => {
                match received {
                    Ok(Event::VmEntered { id, .. }) => { vms.insert(id); }
                    Ok(Event::HostChanged(_)) => hosts = true,
                    Ok(Event::VmChanged(_)) => continue,
                    Err(RecvError::Lagged(_)) => refresh = true,
                    Err(RecvError::Closed) => return,
                }
                if flush_at.is_none() {
                    flush_at = Some(tokio::time::Instant::now() + FLUSH_INTERVAL);
                }
            }
            _ = tokio::time::sleep_until(flush_deadline), if pending => {
                flush_at = None;
                let chunk = render(&core, &caller, &mut vms, &mut hosts, &mut refresh);
                if !chunk.is_empty() && !send(&tx, chunk).await {
                    return;
                }
            }
            _ = heartbeat.tick() => {
                if session.is_some_and(|s| !sessions.is_live(s)) {
                    let _ = send(&tx, "event: signedout\ndata: {}\n\n".into()).await;
                    return;
                }
                if !send(&tx, ": ping\n\n".into()).await {
                    return;
                }
            }
            _ = tokio::time::sleep_until(end) => return,
            _ = tx.closed() => return,
        }
    }
}

/// The events of a burst, as SSE text; empties the burst.
fn render(
    core: &Core,
    caller: &Caller,
    vms: &mut BTreeSet<Oid>,
    hosts: &mut bool,
    refresh: &mut bool,
) -> String {
    let mut out = String::new();
    if *refresh || vms.len() > MAX_VMS_PER_FLUSH {
        out.push_str("event: refresh\ndata: {}\n\n");
    } else {
        let state = core.read();
        for id in vms.iter() {
            let Ok(vm) = get_authorized::<Vm>(&state, caller, *id, Op::Use) else {
                continue;
            };
            let data = serde_json::json!({
                "id": vm.id,
                "state": super::vms::state_label(vm),
                "class": super::vms::state_class(vm),
                "host": super::vms::host_name(vm),
            });
            out.push_str("event: vm\ndata: ");
            out.push_str(&data.to_string());
            out.push_str("\n\n");
        }
        if *hosts {
            out.push_str("event: host\ndata: {}\n\n");
        }
    }
    vms.clear();
    *hosts = false;
    *refresh = false;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_slots_are_bounded_and_given_back() {
        let counter = Arc::new(StreamCounter::default());
        let owner = StreamOwner::User(5);
        let slots: Vec<StreamSlot> = (0..MAX_STREAMS_PER_VIEWER)
            .map(|_| counter.acquire(owner, 1024).unwrap())
            .collect();
        assert!(counter.acquire(owner, 1024).is_none());
        assert!(counter.acquire(StreamOwner::User(6), 1024).is_some());
        drop(slots);
        assert!(counter.acquire(owner, 1024).is_some());
        assert!(counter.lock().len() <= 1);
        // A quarter of a small listener's connections at most.
        let few = Arc::new(StreamCounter::default());
        let held: Vec<StreamSlot> = (0..2)
            .map(|i| few.acquire(StreamOwner::User(i), 8).unwrap())
            .collect();
        assert!(few.acquire(StreamOwner::User(9), 8).is_none());
        drop(held);
    }
}
