//! A minimal HTTP/1.1 client over `std::net::TcpStream`: `POST` a body with a given
//! Content-Type on one keep-alive connection and read the status and body.
//!
//! The recorded sessions were made on one keep-alive connection, so every exchange of a
//! session is sent on the same connection while the server keeps it open; when the server
//! closes it (`Connection: close`, or silently between two requests), the next request
//! opens a new one.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Upper bounds that keep a garbled answer from exhausting memory.
const MAX_HEADER_LINE: usize = 64 * 1024;
const MAX_HEADERS: usize = 200;
const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names as sent; look them up with [`HttpResponse::header`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub enum HttpError {
    Connect(io::Error),
    Send(io::Error),
    Receive(io::Error),
    /// The server closed the connection without answering.
    Closed,
    /// The answer is not HTTP as this client understands it.
    Malformed(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "cannot connect: {e}"),
            HttpError::Send(e) => write!(f, "cannot send the request: {e}"),
            HttpError::Receive(e) => write!(f, "cannot read the response: {e}"),
            HttpError::Closed => write!(f, "the server closed the connection without answering"),
            HttpError::Malformed(why) => write!(f, "malformed HTTP response: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

pub struct HttpClient {
    addr: SocketAddr,
    timeout: Duration,
    connection: Option<BufReader<TcpStream>>,
    connections_opened: usize,
}

impl HttpClient {
    /// A client for `addr`; `timeout` bounds connecting and every read or write.
    pub fn new(addr: SocketAddr, timeout: Duration) -> HttpClient {
        HttpClient {
            addr,
            timeout,
            connection: None,
            connections_opened: 0,
        }
    }

    /// How many TCP connections were opened so far.
    pub fn connections_opened(&self) -> usize {
        self.connections_opened
    }

    fn connect(&mut self) -> Result<BufReader<TcpStream>, HttpError> {
        let stream =
            TcpStream::connect_timeout(&self.addr, self.timeout).map_err(HttpError::Connect)?;
        let setup = |stream: &TcpStream| -> io::Result<()> {
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(self.timeout))?;
            stream.set_write_timeout(Some(self.timeout))
        };
        setup(&stream).map_err(HttpError::Connect)?;
        self.connections_opened += 1;
        Ok(BufReader::new(stream))
    }

    /// Sends `POST path` with `body` and returns the response.
    pub fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<HttpResponse, HttpError> {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: stratusd-compat-replay\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )
        .into_bytes();
        head.extend_from_slice(body);
        let request = head;

        // A reused connection may have been closed by the server since the last answer; if
        // it fails before any byte of an answer arrives, send once more on a new one.
        let reused = self.connection.is_some();
        match self.exchange(&request) {
            Ok(response) => Ok(response),
            Err(Attempt::NothingReceived(_)) if reused => {
                self.connection = None;
                self.exchange(&request).map_err(Attempt::into_error)
            }
            Err(attempt) => Err(attempt.into_error()),
        }
    }

    fn exchange(&mut self, request: &[u8]) -> Result<HttpResponse, Attempt> {
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => self.connect().map_err(Attempt::Failed)?,
        };
        if let Err(error) = connection.get_mut().write_all(request) {
            return Err(Attempt::NothingReceived(HttpError::Send(error)));
        }
        let (response, keep_alive) = read_response(&mut connection)?;
        if keep_alive {
            self.connection = Some(connection);
        }
        Ok(response)
    }
}

/// The outcome of one try on one connection.
enum Attempt {
    /// Nothing of an answer arrived: worth one retry on a fresh connection.
    NothingReceived(HttpError),
    Failed(HttpError),
}

impl Attempt {
    fn into_error(self) -> HttpError {
        match self {
            Attempt::NothingReceived(error) | Attempt::Failed(error) => error,
        }
    }
}

impl From<HttpError> for Attempt {
    fn from(error: HttpError) -> Attempt {
        Attempt::Failed(error)
    }
}

/// Reads one line ending in LF (CR LF accepted), without the line end.
fn read_line(reader: &mut impl BufRead) -> Result<Option<String>, HttpError> {
    let mut line = Vec::new();
    let read = reader
        .take(MAX_HEADER_LINE as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(HttpError::Receive)?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(if line.len() > MAX_HEADER_LINE {
            HttpError::Malformed("header line too long".into())
        } else {
            HttpError::Malformed("connection closed inside the header".into())
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| HttpError::Malformed("header is not UTF-8".into()))
}

/// Reads one response; also tells whether the connection may be used again.
fn read_response(reader: &mut impl BufRead) -> Result<(HttpResponse, bool), Attempt> {
    loop {
        let status_line = match read_line(reader) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(Attempt::NothingReceived(HttpError::Closed)),
            Err(HttpError::Receive(error)) if is_reset(&error) => {
                return Err(Attempt::NothingReceived(HttpError::Receive(error)))
            }
            Err(error) => return Err(Attempt::Failed(error)),
        };
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_string();
        let status = parts
            .next()
            .and_then(|code| code.parse::<u16>().ok())
            .filter(|_| version.starts_with("HTTP/1."))
            .ok_or_else(|| HttpError::Malformed(format!("bad status line {status_line:?}")))?;

        let mut headers = Vec::new();
        loop {
            let line = read_line(reader)?.ok_or_else(|| {
                HttpError::Malformed("connection closed inside the header".into())
            })?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| HttpError::Malformed(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
            if headers.len() > MAX_HEADERS {
                return Err(HttpError::Malformed("too many header lines".into()).into());
            }
        }
        let mut response = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if (100..200).contains(&status) {
            continue; // an interim answer (100 Continue): the real one follows
        }
        let connection = response.header("Connection").map(str::to_ascii_lowercase);
        let mut keep_alive = if version == "HTTP/1.0" {
            connection.as_deref() == Some("keep-alive")
        } else {
            connection.as_deref() != Some("close")
        };
        let chunked = response
            .header("Transfer-Encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            response.body = read_chunked(reader)?;
        } else if let Some(length) = response.header("Content-Length") {
            let length: usize = length
                .parse()
                .ok()
                .filter(|n| *n <= MAX_BODY)
                .ok_or_else(|| HttpError::Malformed(format!("bad Content-Length {length:?}")))?;
            response.body = vec![0; length];
            reader.read_exact(&mut response.body).map_err(|error| {
                HttpError::Malformed(format!("body shorter than its Content-Length: {error}"))
            })?;
        } else {
            // No length: the body ends when the server closes the connection.
            reader
                .take(MAX_BODY as u64)
                .read_to_end(&mut response.body)
                .map_err(HttpError::Receive)?;
            keep_alive = false;
        }
        return Ok((response, keep_alive));
    }
}

fn is_reset(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| {
            HttpError::Malformed("connection closed inside a chunked body".into())
        })?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| HttpError::Malformed(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailer lines up to the empty line.
            while let Some(trailer) = read_line(reader)? {
                if trailer.is_empty() {
                    break;
                }
            }
            return Ok(body);
        }
        if body
            .len()
            .checked_add(size)
            .is_none_or(|total| total > MAX_BODY)
        {
            return Err(HttpError::Malformed("chunked body too large".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader
            .read_exact(&mut body[start..])
            .map_err(|error| HttpError::Malformed(format!("truncated chunk: {error}")))?;
        let end = read_line(reader)?;
        if end.as_deref() != Some("") {
            return Err(HttpError::Malformed("chunk not followed by CRLF".into()));
        }
    }
}

/// Checks run by `--self-test`.
pub fn self_checks(checks: &mut crate::harness::selftest::Checks) {
    let parse = |raw: &str| {
        let mut reader = BufReader::new(raw.as_bytes());
        read_response(&mut reader).map_err(|attempt| attempt.into_error().to_string())
    };
    let ok =
        parse("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\n\r\nhelloEXTRA");
    checks.check(
        "http: Content-Length body, keep-alive",
        matches!(&ok, Ok((r, true)) if r.status == 200 && r.body == b"hello"
            && r.header("content-type") == Some("text/xml")),
        format!("{ok:?}"),
    );
    let chunked = parse(
        "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
    );
    checks.check(
        "http: chunked body, Connection: close",
        matches!(&chunked, Ok((r, false)) if r.status == 400 && r.body == b"abcde"),
        format!("{chunked:?}"),
    );
    let to_close = parse("HTTP/1.0 200 OK\r\n\r\nuntil the end");
    checks.check(
        "http: body up to the close",
        matches!(&to_close, Ok((r, false)) if r.body == b"until the end"),
        format!("{to_close:?}"),
    );
    for broken in [
        "garbage\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx",
        "",
    ] {
        checks.check(
            &format!("http: rejects {broken:?}"),
            parse(broken).is_err(),
            "accepted a malformed response",
        );
    }
    loopback_check(checks);
}

/// A real loopback exchange: two answers on one connection, which the server then closes
/// silently; the third request must be sent again on a new connection.
fn loopback_check(checks: &mut crate::harness::selftest::Checks) {
    use std::net::TcpListener;
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(listener) => listener,
        Err(error) => {
            checks.check("http: loopback listener", false, error);
            return;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(error) => {
            checks.check("http: loopback address", false, error);
            return;
        }
    };
    let server = std::thread::spawn(move || -> io::Result<Vec<String>> {
        let mut seen = Vec::new();
        for answers in [2, 1] {
            let (stream, _) = listener.accept()?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut reader = BufReader::new(stream);
            for _ in 0..answers {
                let mut length = 0;
                let mut content_type = String::new();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line)?;
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        match name.to_ascii_lowercase().as_str() {
                            "content-length" => length = value.trim().parse().unwrap_or(0),
                            "content-type" => content_type = value.trim().to_string(),
                            _ => {}
                        }
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body)?;
                seen.push(format!("{content_type} {}", String::from_utf8_lossy(&body)));
                let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n");
                reader.get_mut().write_all(answer.as_bytes())?;
                reader.get_mut().write_all(&body)?;
            }
        }
        Ok(seen)
    });
    let mut client = HttpClient::new(addr, Duration::from_secs(5));
    let mut answers = Vec::new();
    for (content_type, body) in [
        ("text/xml", "one"),
        ("application/json", "two"),
        ("text/xml", ""),
    ] {
        answers.push(
            client
                .post("/RPC2", content_type, body.as_bytes())
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .map_err(|e| e.to_string()),
        );
    }
    let seen = server
        .join()
        .map_err(|_| "server thread panicked".to_string());
    let expected_answers: Vec<Result<String, String>> =
        vec![Ok("one".into()), Ok("two".into()), Ok(String::new())];
    checks.check(
        "http: keep-alive, then a new connection after a silent close",
        answers == expected_answers && client.connections_opened() == 2,
        format!(
            "answers {answers:?}, {} connections",
            client.connections_opened()
        ),
    );
    let expected_seen = vec![
        "text/xml one".to_string(),
        "application/json two".to_string(),
        "text/xml ".to_string(),
    ];
    checks.check(
        "http: requests arrive with their Content-Type and body",
        matches!(&seen, Ok(Ok(s)) if *s == expected_seen),
        format!("{seen:?}"),
    );
}
