//! The XML-RPC front end: HTTP/1.1 with keep-alive on hyper, `POST /RPC2`, body limits, and
//! oned's transport answers (HTTP 400 page for an empty body, faults for broken calls).

mod body;
pub mod guard;

pub use body::AnswerBody;

use crate::api::{self, Payload, Reply};
use crate::core::Core;
use crate::xmlrpc;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What reading, decoding and answering a request costs in memory, in multiples of its body
/// (reserved in the body budget before a large body is read). Measured with
/// bench/request_memory.py: a string parameter 2x, arrays of small values 5x, a body of
/// empty elements (refused after parsing) 9x.
const PARSE_COST: u64 = 10;

/// Bodies at least this large are parsed on the blocking pool.
const LARGE_BODY: usize = 256 * 1024;

/// Abyss's answer to a request with an empty body, as oned's HTTP server wrote it.
const EMPTY_BODY_PAGE: &str = "<HTML><HEAD><TITLE>Error 400</TITLE></HEAD><BODY><H1>Error 400</H1><P>According to your content-length HTTP header, your request is empty (zero length)</P><p><HR><b><i><a href=\"http://xmlrpc-c.sourceforge.net\">ABYSS Web Server for XML-RPC For C/C++</a></i></b> version 1.33.14<br></p></BODY></HTML>";

pub(crate) fn respond(
    status: StatusCode,
    content_type: &str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Encodes a dispatcher reply as oned's (xmlrpc-c's) response body.
pub fn encode_reply(reply: Reply) -> String {
    String::from_utf8_lossy(&encode_answer(reply).into_bytes()).into_owned()
}

/// [`encode_reply`] as an HTTP body: a document already escaped in pieces (VM documents) is
/// framed by the head and tail of the answer and sent piece by piece, never joined.
pub fn encode_answer(reply: Reply) -> AnswerBody {
    if let Reply::Ok(Payload::Escaped(doc)) = reply {
        let mut pieces = Vec::with_capacity(doc.parts().len() + 2);
        pieces.push(Bytes::from_static(xmlrpc::ONED_DOC_HEAD.as_bytes()));
        pieces.extend(doc.into_parts());
        pieces.push(Bytes::from_static(xmlrpc::ONED_DOC_TAIL.as_bytes()));
        return AnswerBody::from_pieces(pieces);
    }
    AnswerBody::whole(encode_whole_reply(reply))
}

fn encode_whole_reply(reply: Reply) -> String {
    match reply {
        Reply::Ok(Payload::Escaped(doc)) => {
            xmlrpc::encode_oned_result(true, xmlrpc::Payload::Str(&doc.to_text()), 0)
        }
        Reply::Ok(Payload::Int(i)) => xmlrpc::encode_oned_result(true, xmlrpc::Payload::Int(i), 0),
        Reply::Ok(Payload::Doc(doc)) => {
            xmlrpc::encode_oned_result(true, xmlrpc::Payload::Str(&doc), 0)
        }
        Reply::Err(msg, code) => {
            xmlrpc::encode_oned_result(false, xmlrpc::Payload::Str(&msg), code)
        }
        Reply::Fault(f) => xmlrpc::encode_fault(&f),
        Reply::Value(v) => xmlrpc::encode_response(&v),
    }
}

/// Decodes, dispatches and encodes one XML-RPC body, as one string.
pub async fn handle_xmlrpc(core: Arc<Core>, body: Bytes) -> String {
    answer_string(answer_xmlrpc_with(core, body, None).await)
}

/// [`handle_xmlrpc`] for a caller the HTTP layer has already authenticated: every call runs
/// with `session` as its session string (see [`api::dispatch::dispatch_as`]).
pub async fn handle_xmlrpc_as(core: Arc<Core>, body: Bytes, session: String) -> String {
    answer_string(answer_xmlrpc_with(core, body, Some(session)).await)
}

/// [`handle_xmlrpc`] as an HTTP body (pool listings are not joined into one string).
pub async fn answer_xmlrpc(core: Arc<Core>, body: Bytes) -> AnswerBody {
    answer_xmlrpc_with(core, body, None).await
}

/// [`handle_xmlrpc_as`] as an HTTP body.
pub async fn answer_xmlrpc_as(core: Arc<Core>, body: Bytes, session: String) -> AnswerBody {
    answer_xmlrpc_with(core, body, Some(session)).await
}

fn answer_string(answer: AnswerBody) -> String {
    String::from_utf8_lossy(&answer.into_bytes()).into_owned()
}

/// Decodes, dispatches and encodes one XML-RPC body.
async fn answer_xmlrpc_with(core: Arc<Core>, body: Bytes, session: Option<String>) -> AnswerBody {
    let timer = crate::metrics::Timer::start();
    // A large body takes a while to parse: off the runtime's threads, which serve every
    // other connection meanwhile.
    let parsed = if body.len() >= LARGE_BODY {
        tokio::task::spawn_blocking(move || xmlrpc::parse_method_call(&body))
            .await
            .unwrap_or_else(|_| Err(xmlrpc::Fault::new(-500, "Internal error")))
    } else {
        xmlrpc::parse_method_call(&body)
    };
    let call = match parsed {
        Ok(c) => c,
        Err(fault) => {
            crate::metrics::metrics().rpc("(malformed)", timer.elapsed(), Some(fault.code));
            return AnswerBody::whole(xmlrpc::encode_fault(&fault));
        }
    };
    let label = api::dispatch::method_label(&call.method);
    // Reads are answered from memory and writes are awaited commands of the core's owner, so
    // every call runs here, on the runtime, without blocking it.
    // A task of its own, so that a handler that panics answers a fault as before.
    let method = call.method.clone();
    let dispatched = tokio::spawn(async move {
        match &session {
            Some(session) => api::dispatch::dispatch_as(&core, &call, session).await,
            None => api::dispatch(&core, &call).await,
        }
    })
    .await;
    let reply = match dispatched {
        Ok(reply) => reply,
        Err(e) => {
            crate::metrics::metrics().rpc(label, timer.elapsed(), Some(-500));
            tracing::error!(%method, error = %e, "request handler panicked");
            return AnswerBody::whole(xmlrpc::encode_fault(&xmlrpc::Fault::new(
                -500,
                "Internal error",
            )));
        }
    };
    let failure = api::dispatch::failure_code(&reply);
    let answer = encode_answer(reply);
    crate::metrics::metrics().rpc(label, timer.elapsed(), failure);
    answer
}

/// An XML-RPC answer as the listener sends it: a page or fault made whole, or an answer body.
pub(crate) type CallResponse = Response<Either<Full<Bytes>, AnswerBody>>;

/// The answer of a call: `200 text/xml` with the body streamed from its pieces.
pub(crate) fn respond_answer(answer: AnswerBody) -> CallResponse {
    let mut resp = Response::new(Either::Right(answer));
    if let Ok(v) = "text/xml".parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// `/RPC2` as oned; also the paths the StratusLab client's password connector posts to when
/// pointed at this port (it inserts `/pswd/` before the last segment: `/pswd/RPC2`,
/// `/<prefix>/pswd/xmlrpc`). On this port the session string carries the credentials, as it
/// did behind one-proxy; the authenticating front door is a separate listener.
fn is_xmlrpc_path(path: &str) -> bool {
    if path == "/RPC2" {
        return true;
    }
    match path.rsplit_once('/') {
        Some((dir, last)) => !last.is_empty() && (dir == "/pswd" || dir.ends_with("/pswd")),
        None => false,
    }
}

/// The fault of a request whose body exceeds the limit (xmlrpc-c's limit-exceeded code).
pub(crate) fn too_large_fault(limit: u64) -> Response<Full<Bytes>> {
    let message = format!("XML-RPC request too large: the limit is {limit} bytes");
    tracing::warn!("{message}");
    let fault = xmlrpc::Fault::new(-509, message);
    respond(StatusCode::OK, "text/xml", xmlrpc::encode_fault(&fault))
}

/// Reads an XML-RPC request body (the guard applies the size limit, the minimum rate and the
/// body budget). Past the limit (or on a broken connection) the answer is a fault; an empty
/// body gets Abyss's 400 page, as oned answered.
pub(crate) async fn read_call_body(
    body: guard::RequestBody,
) -> Result<guard::Collected, Response<Full<Bytes>>> {
    let body = match body.collect_costing(PARSE_COST).await {
        Ok(b) => b,
        Err(guard::BodyError::TooLarge { limit }) => return Err(too_large_fault(limit)),
        Err(e) => {
            tracing::warn!("{e}");
            let fault = xmlrpc::Fault::new(-509, e.to_string());
            return Err(respond(
                StatusCode::OK,
                "text/xml",
                xmlrpc::encode_fault(&fault),
            ));
        }
    };
    if body.bytes().is_empty() {
        return Err(respond(
            StatusCode::BAD_REQUEST,
            "text/html",
            EMPTY_BODY_PAGE.into(),
        ));
    }
    Ok(body)
}

/// The plain XML-RPC listener's requests.
struct XmlRpcHandler {
    core: Arc<Core>,
}

impl guard::Handler<SocketAddr> for XmlRpcHandler {
    type Body = Either<Full<Bytes>, AnswerBody>;

    async fn call(
        self: Arc<Self>,
        _peer: Arc<SocketAddr>,
        req: Request<guard::RequestBody>,
    ) -> Response<Self::Body> {
        route(Arc::clone(&self.core), req).await
    }

    fn too_large(&self, _req: &hyper::http::request::Parts, limit: u64) -> Response<Self::Body> {
        too_large_fault(limit).map(Either::Left)
    }
}

async fn route(core: Arc<Core>, req: Request<guard::RequestBody>) -> CallResponse {
    if !is_xmlrpc_path(req.uri().path()) {
        return respond(StatusCode::NOT_FOUND, "text/html", "<HTML><HEAD><TITLE>Error 404</TITLE></HEAD><BODY><H1>Error 404</H1><P>No such resource.</P></BODY></HTML>".into()).map(Either::Left);
    }
    if req.method() != Method::POST {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "text/html", "<HTML><HEAD><TITLE>Error 405</TITLE></HEAD><BODY><H1>Error 405</H1><P>XML-RPC calls are POST requests.</P></BODY></HTML>".into()).map(Either::Left);
    }
    let body = match read_call_body(req.into_body()).await {
        Ok(body) => body,
        Err(answer) => return answer.map(Either::Left),
    };
    // The body (and its place in the body budget) is held until the answer is built.
    let answer = answer_xmlrpc(core, body.bytes().clone()).await;
    drop(body);
    respond_answer(answer)
}

/// Serves XML-RPC on `listener` through `guard` until `shutdown` turns true; then lets open
/// requests finish.
pub async fn serve(
    listener: TcpListener,
    guard: guard::Guard,
    core: Arc<Core>,
    shutdown: watch::Receiver<bool>,
) {
    guard
        .serve(listener, guard::Plain, XmlRpcHandler { core }, shutdown)
        .await;
}

#[cfg(test)]
mod tests {
    use super::is_xmlrpc_path;

    #[test]
    fn accepted_paths() {
        for p in [
            "/RPC2",
            "/pswd/RPC2",
            "/pswd/xmlrpc",
            "/01-run/pswd/xmlrpc",
            "/one-proxy/pswd/xmlrpc",
        ] {
            assert!(is_xmlrpc_path(p), "{p}");
        }
        for p in [
            "/",
            "/xmlrpc",
            "/RPC2/x",
            "/pswd/",
            "/cert/xmlrpc",
            "/pswdx/xmlrpc",
        ] {
            assert!(!is_xmlrpc_path(p), "{p}");
        }
    }
}
