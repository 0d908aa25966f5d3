//! A blocking XML-RPC client over one keep-alive HTTP/1.1 connection: just what the fill and
//! the timed loops need (oned answers `[ok, value, code]`; the value is an id or a document).

use super::BenchError;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use stratusd::xmlrpc::{encode_call, MethodCall, Value};

pub struct Client {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

/// One oned answer, decoded only as far as the benchmark needs.
pub struct Answer {
    pub ok: bool,
    /// The whole response body (the document is XML-escaped inside it).
    pub body: String,
}

impl Answer {
    /// The `<i4>` after the success flag: the id a `*.allocate` returns.
    pub fn id(&self) -> Option<i32> {
        let after = self.body.split_once("<boolean>1</boolean>")?.1;
        let start = after.find("<i4>")? + 4;
        let end = after[start..].find("</i4>")? + start;
        after[start..end].parse().ok()
    }
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, stream: None }
    }

    fn stream(&mut self) -> Result<&mut BufReader<TcpStream>, BenchError> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).map_err(BenchError::Connect)?;
            s.set_nodelay(true).map_err(BenchError::Connect)?;
            s.set_read_timeout(Some(Duration::from_secs(60)))
                .map_err(BenchError::Connect)?;
            self.stream = Some(BufReader::with_capacity(256 * 1024, s));
        }
        self.stream
            .as_mut()
            .ok_or_else(|| BenchError::Protocol("no connection".into()))
    }

    /// Calls `method` with `params`; a connection the server closed is reopened once.
    pub fn call(&mut self, method: &str, params: Vec<Value>) -> Result<Answer, BenchError> {
        let body = encode_call(&MethodCall {
            method: method.to_string(),
            params,
        });
        match self.post(body.as_bytes()) {
            Ok(a) => Ok(a),
            Err(BenchError::Io(_)) => {
                self.stream = None;
                self.post(body.as_bytes())
            }
            Err(e) => Err(e),
        }
    }

    /// `call`, failing unless the answer is a success.
    pub fn call_ok(&mut self, method: &str, params: Vec<Value>) -> Result<Answer, BenchError> {
        let answer = self.call(method, params)?;
        if !answer.ok {
            return Err(BenchError::Refused {
                method: method.to_string(),
                body: answer.body.chars().take(400).collect(),
            });
        }
        Ok(answer)
    }

    /// Posts a request body as it is (a body file of bench/bodies).
    pub fn post(&mut self, body: &[u8]) -> Result<Answer, BenchError> {
        let head = format!(
            "POST /RPC2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let stream = self.stream()?;
        let socket = stream.get_mut();
        socket.write_all(head.as_bytes())?;
        socket.write_all(body)?;
        let mut status_line = String::new();
        if stream.read_line(&mut status_line)? == 0 {
            return Err(BenchError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let status = status_line.split_whitespace().nth(1).unwrap_or("");
        if status != "200" {
            return Err(BenchError::Protocol(format!("HTTP status {status}")));
        }
        let mut length = None;
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line)? == 0 {
                return Err(BenchError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length =
            length.ok_or_else(|| BenchError::Protocol("answer without Content-Length".into()))?;
        let mut bytes = vec![0u8; length];
        stream.read_exact(&mut bytes)?;
        let body = String::from_utf8(bytes)
            .map_err(|_| BenchError::Protocol("answer is not UTF-8".into()))?;
        let ok = body.contains("<boolean>1</boolean>");
        Ok(Answer { ok, body })
    }
}

/// The session string and parameters of the calls the benchmark makes.
pub fn session(s: &str) -> Value {
    Value::String(s.to_string())
}

pub fn int(i: i32) -> Value {
    Value::Int(i)
}

pub fn text(s: &str) -> Value {
    Value::String(s.to_string())
}
