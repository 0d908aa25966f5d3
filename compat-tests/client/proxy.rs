//! A recording proxy between the StratusLab client and stratusd, standing where the recording
//! had its own (README §1: "every exchange was recorded and passed to oned unchanged"). It
//! forwards each request's path, Content-Type and body to the daemon and keeps the exchange,
//! so that each command's XML-RPC traffic can be compared with the `.jsonl`.

use crate::harness::http::HttpClient;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One exchange as the client saw it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub path: String,
    pub request: String,
    pub status: u16,
    pub response: Vec<u8>,
}

impl Exchange {
    /// The `<methodName>` of the request.
    pub fn method(&self) -> String {
        let start = self.request.find("<methodName>").map(|i| i + 12);
        let end = self.request.find("</methodName>");
        match (start, end) {
            (Some(s), Some(e)) if s <= e => self.request[s..e].trim().to_string(),
            _ => "(no methodName)".to_string(),
        }
    }
}

pub struct Proxy {
    port: u16,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `daemon` until the process ends.
    pub fn start(daemon: SocketAddr) -> Result<Proxy, String> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("XML-RPC proxy: cannot bind a loopback port: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("XML-RPC proxy: {e}"))?
            .port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let thread_log = Arc::clone(&log);
        std::thread::Builder::new()
            .name("xmlrpc-proxy".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let log = Arc::clone(&thread_log);
                    let _ = std::thread::Builder::new()
                        .name("xmlrpc-proxy-connection".into())
                        .spawn(move || serve_connection(stream, daemon, &log));
                }
            })
            .map_err(|e| format!("XML-RPC proxy: cannot start its thread: {e}"))?;
        Ok(Proxy { port, log })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The exchanges made since the last call, in order.
    pub fn take_log(&self) -> Vec<Exchange> {
        self.log
            .lock()
            .map(|mut log| std::mem::take(&mut *log))
            .unwrap_or_default()
    }
}

/// Serves the requests of one client connection (keep-alive) until it closes.
fn serve_connection(stream: TcpStream, daemon: SocketAddr, log: &Mutex<Vec<Exchange>>) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut writer = write_half;
    let mut reader = BufReader::new(stream);
    let mut upstream = HttpClient::new(daemon, IO_TIMEOUT);
    loop {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        let (status, body, content_type) =
            match upstream.post(&request.path, &request.content_type, &request.body) {
                Ok(answer) => {
                    let kind = answer
                        .header("Content-Type")
                        .unwrap_or("text/xml")
                        .to_string();
                    (answer.status, answer.body, kind)
                }
                Err(error) => (
                    502,
                    format!("proxy: stratusd did not answer: {error}").into_bytes(),
                    "text/plain".to_string(),
                ),
            };
        // Logged before the answer goes out: once the client has its answer (and has exited),
        // the exchange is in the log.
        if let Ok(mut log) = log.lock() {
            log.push(Exchange {
                path: request.path.clone(),
                request: String::from_utf8_lossy(&request.body).into_owned(),
                status,
                response: body.clone(),
            });
        }
        let reason = if status == 200 { "OK" } else { "Error" };
        let connection = if request.close { "close" } else { "keep-alive" };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
            body.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&body).is_err() {
            return;
        }
        let _ = writer.flush();
        if request.close {
            return;
        }
    }
}

struct Request {
    path: String,
    content_type: String,
    body: Vec<u8>,
    /// The client asked to close after this answer (or spoke HTTP/1.0).
    close: bool,
}

fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut parts = request_line.split_whitespace();
    let _method = parts.next()?;
    let path = parts.next()?.to_string();
    let version = parts.next().unwrap_or("HTTP/1.0");
    let mut close = version == "HTTP/1.0";
    let mut content_length = 0usize;
    let mut content_type = "text/xml".to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().ok().filter(|n| *n <= MAX_BODY)?;
        } else if name.eq_ignore_ascii_case("content-type") {
            content_type = value.to_string();
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        path,
        content_type,
        body,
        close,
    })
}
