//! The `/metrics` listener: `GET /metrics` (and `HEAD`), nothing else, on the guarded listener
//! every stratusd port uses (connection cap, header and idle deadlines, minimum rates).

use crate::server::guard::{self, Guard, Limits, Plain};
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::{Method, Request, Response, StatusCode};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Prometheus keeps one connection between scrapes; a few more for people with curl.
const MAX_CONNECTIONS: usize = 16;
/// A scrape request has no body.
const MAX_BODY_BYTES: u64 = 4096;

/// An answer sent as the pieces it was rendered in, without copying them into one buffer;
/// its length is known up front (`Content-Length`).
#[derive(Debug, Default)]
pub struct Pieces {
    pieces: VecDeque<Bytes>,
    remaining: u64,
}

impl Pieces {
    fn new(pieces: Vec<Bytes>) -> Pieces {
        let remaining = pieces.iter().map(|p| p.len() as u64).sum();
        Pieces {
            pieces: pieces.into_iter().filter(|p| !p.is_empty()).collect(),
            remaining,
        }
    }
}

impl Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.pieces.pop_front().map(|piece| {
            self.remaining -= piece.len() as u64;
            Ok(Frame::data(piece))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Pieces> {
    let mut resp = Response::new(Pieces::new(vec![Bytes::from_static(body.as_bytes())]));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

struct MetricsHandler {
    pools: Arc<super::PoolMetrics>,
    /// The daemon's listeners, whose connection counters are published.
    listeners: Vec<Guard>,
}

impl guard::Handler<SocketAddr> for MetricsHandler {
    type Body = Pieces;

    async fn call(
        self: Arc<Self>,
        _peer: Arc<SocketAddr>,
        req: Request<guard::RequestBody>,
    ) -> Response<Pieces> {
        if req.uri().path() != "/metrics" {
            return text(StatusCode::NOT_FOUND, "Not found: try /metrics\n");
        }
        let head = req.method() == Method::HEAD;
        if req.method() != Method::GET && !head {
            let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
            resp.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            return resp;
        }
        // Rebuilding the text of changed chunks and encoding stratusd's own instruments takes
        // a millisecond or so: off the runtime's worker threads, so the XML-RPC connections
        // they serve are not held up.
        let me = Arc::clone(&self);
        let rendered = tokio::task::spawn_blocking(move || {
            let listeners: Vec<_> = me.listeners.iter().map(super::ListenerStats::of).collect();
            me.pools.render(&listeners)
        })
        .await;
        let body = match rendered {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "rendering /metrics panicked");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "metrics rendering failed\n",
                );
            }
        };
        let mut resp = Response::new(if head {
            Pieces::default()
        } else {
            Pieces::new(body)
        });
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(super::CONTENT_TYPE),
        );
        resp
    }

    fn too_large(&self, _req: &hyper::http::request::Parts, _limit: u64) -> Response<Pieces> {
        text(StatusCode::PAYLOAD_TOO_LARGE, "GET /metrics has no body\n")
    }
}

/// The limits of the metrics listener: the daemon's `[connections]` deadlines and rates, a
/// small connection cap and no request bodies.
pub fn limits(settings: &crate::config::Settings) -> Limits {
    let mut limits = Limits::for_listener(settings);
    limits.max_connections = limits.max_connections.min(MAX_CONNECTIONS);
    limits.max_body_bytes = MAX_BODY_BYTES;
    limits
}

/// Serves `/metrics` on `listener` through `guard` until `shutdown` turns true; `listeners`
/// are the guards whose counters are published (this one's included).
pub async fn serve(
    listener: TcpListener,
    guard: Guard,
    pools: Arc<super::PoolMetrics>,
    listeners: Vec<Guard>,
    shutdown: watch::Receiver<bool>,
) {
    let handler = MetricsHandler { pools, listeners };
    guard.serve(listener, Plain, handler, shutdown).await;
}
