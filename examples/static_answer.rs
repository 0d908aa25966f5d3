//! The physical limit of a pool listing on this machine: an HTTP/1.1 server on the same stack as
//! stratusd (tokio, hyper, keep-alive, TCP_NODELAY) that reads each request's body and answers
//! every request with the same bytes, read once from a file (e.g. a saved `one.vmpool.info`
//! answer), without any XML-RPC work. Measured with the same wrk script as stratusd
//! (bench/same-day.py --url static=http://ADDR/RPC2; see docs/performance.md).
//!
//!   cargo run --release --example static_answer -- ANSWER_FILE [127.0.0.1:PORT]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .ok_or("usage: static_answer ANSWER_FILE [ADDR]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let answer = Bytes::from(std::fs::read(&file)?);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            println!(
                "static_answer: {} bytes on http://{}/RPC2",
                answer.len(),
                listener.local_addr()?
            );
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                let answer = answer.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let answer = answer.clone();
                        async move {
                            // The request body is read, as stratusd reads it.
                            let _ = req.into_body().collect().await;
                            let mut resp = Response::new(Full::new(answer));
                            resp.headers_mut().insert(
                                hyper::header::CONTENT_TYPE,
                                hyper::header::HeaderValue::from_static("text/xml"),
                            );
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}
