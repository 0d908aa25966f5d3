//! A small XML-RPC client for the site set-up: requests encoded exactly as the StratusLab
//! installer's Python 2 `xmlrpclib` encoded them (so that the calls are byte for byte the
//! recorded ones), sent over plain HTTP/1.1, and oned's `[ok, value, code]` answers decoded.
//! oned never spoke TLS (sites reached it on localhost or behind a proxy), so neither do we.

use base64::Engine as _;
use quick_xml::events::Event;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A parameter of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Str(String),
    Int(i32),
    Bool(bool),
}

/// A scalar of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
}

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("endpoint {0:?} is not an http://HOST[:PORT]/PATH URL")]
    BadEndpoint(String),
    #[error("cannot reach {endpoint}: {source}")]
    Io {
        endpoint: String,
        source: std::io::Error,
    },
    #[error("{endpoint} answered HTTP {status}")]
    Status { endpoint: String, status: u16 },
    #[error("malformed answer to {method}: {why}")]
    Malformed { method: String, why: String },
    #[error("{method}: fault {code}: {message}")]
    Fault {
        method: String,
        code: i64,
        message: String,
    },
    #[error("{method} failed: {message}")]
    Oned { method: String, message: String },
}

/// Python 2 `xmlrpclib.escape`: `&`, `<` and `>` only.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A `methodCall` body as `xmlrpclib.dumps(params, methodname)` writes it.
pub fn encode_call(method: &str, params: &[Param]) -> String {
    let mut out = String::from("<?xml version='1.0'?>\n<methodCall>\n<methodName>");
    out.push_str(&escape(method));
    out.push_str("</methodName>\n<params>\n");
    for p in params {
        out.push_str("<param>\n<value>");
        match p {
            Param::Str(s) => {
                out.push_str("<string>");
                out.push_str(&escape(s));
                out.push_str("</string>");
            }
            Param::Int(i) => out.push_str(&format!("<int>{i}</int>")),
            Param::Bool(b) => out.push_str(&format!("<boolean>{}</boolean>", u8::from(*b))),
        }
        out.push_str("</value>\n</param>\n");
    }
    out.push_str("</params>\n</methodCall>\n");
    out
}

/// The scalars of a `methodResponse` in document order, or its fault.
pub fn decode_response(method: &str, body: &str) -> Result<Vec<Scalar>, RpcError> {
    let malformed = |why: String| RpcError::Malformed {
        method: method.to_string(),
        why,
    };
    let mut reader = quick_xml::Reader::from_str(body);
    let mut scalars = Vec::new();
    let mut open: Option<String> = None;
    let mut text = String::new();
    let mut fault = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).to_string();
                if name == "fault" {
                    fault = true;
                }
                open = Some(name);
                text.clear();
            }
            Ok(Event::Empty(e)) => {
                if e.name().as_ref() == b"string" {
                    scalars.push(Scalar::Str(String::new()));
                }
            }
            Ok(Event::Text(t)) => {
                let t = t.unescape().map_err(|e| malformed(e.to_string()))?;
                text.push_str(&t);
            }
            Ok(Event::CData(t)) => text.push_str(&String::from_utf8_lossy(&t)),
            Ok(Event::End(e)) => {
                let name = e.name();
                if open.as_deref().map(str::as_bytes) == Some(name.as_ref()) {
                    let value = std::mem::take(&mut text);
                    match name.as_ref() {
                        b"string" => scalars.push(Scalar::Str(value)),
                        b"i4" | b"int" | b"i8" => scalars.push(Scalar::Int(
                            value
                                .trim()
                                .parse()
                                .map_err(|_| malformed(format!("bad integer {value:?}")))?,
                        )),
                        b"boolean" => scalars.push(Scalar::Bool(value.trim() == "1")),
                        _ => {}
                    }
                }
                open = None;
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(malformed(e.to_string())),
        }
    }
    if fault {
        // <struct> faultCode (int) and faultString (string), in either order.
        let code = scalars.iter().find_map(|s| match s {
            Scalar::Int(i) => Some(*i),
            _ => None,
        });
        let message = scalars.iter().find_map(|s| match s {
            Scalar::Str(m) if m != "faultCode" && m != "faultString" => Some(m.clone()),
            _ => None,
        });
        return Err(RpcError::Fault {
            method: method.to_string(),
            code: code.unwrap_or(0),
            message: message.unwrap_or_default(),
        });
    }
    Ok(scalars)
}

/// Where the calls go: `http://HOST[:PORT]/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
    url: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, RpcError> {
        let bad = || RpcError::BadEndpoint(url.to_string());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/RPC2"),
        };
        if authority.contains('@') {
            // Credentials come from the oneadmin auth file, never from a URL in `ps`.
            return Err(bad());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
            None => (authority, 2633),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
            path: path.to_string(),
            url: url.to_string(),
        })
    }
}

/// Calls oned's methods with one session string.
pub struct OnedClient {
    endpoint: Endpoint,
    session: String,
}

impl OnedClient {
    pub fn new(endpoint: Endpoint, session: String) -> OnedClient {
        OnedClient { endpoint, session }
    }

    /// `method(session, params...)`; oned's `[ok, value, code]`: the value when ok.
    pub fn call(&self, method: &str, params: &[Param]) -> Result<Scalar, RpcError> {
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(Param::Str(self.session.clone()));
        all.extend_from_slice(params);
        let body = self.post(&encode_call(method, &all))?;
        let scalars = decode_response(method, &body)?;
        match scalars.as_slice() {
            [Scalar::Bool(true), value, ..] => Ok(value.clone()),
            [Scalar::Bool(false), Scalar::Str(message), ..] => Err(RpcError::Oned {
                method: method.to_string(),
                message: message.clone(),
            }),
            _ => Err(RpcError::Malformed {
                method: method.to_string(),
                why: "not oned's [ok, value, code] array".into(),
            }),
        }
    }

    /// One POST on its own connection (a handful of calls: keep-alive buys nothing).
    fn post(&self, body: &str) -> Result<String, RpcError> {
        let ep = &self.endpoint;
        let io = |source| RpcError::Io {
            endpoint: ep.url.clone(),
            source,
        };
        let mut stream = TcpStream::connect((ep.host.as_str(), ep.port)).map_err(io)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
        // The StratusLab connector sent the session as HTTP Basic credentials as well, which
        // a one-proxy in front of oned (`/pswd/` paths) requires.
        let basic = base64::engine::general_purpose::STANDARD.encode(self.session.as_bytes());
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Basic {basic}\r\nUser-Agent: stratusd-site-setup/{version}\r\nContent-Type: text/xml\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
            path = ep.path,
            host = ep.host,
            port = ep.port,
            version = env!("CARGO_PKG_VERSION"),
            len = body.len()
        );
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(body.as_bytes()).map_err(io)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).map_err(io)?;
        let (status, body) = split_http_answer(&answer).ok_or_else(|| RpcError::Malformed {
            method: "HTTP".into(),
            why: "no HTTP answer".into(),
        })?;
        if status != 200 {
            return Err(RpcError::Status {
                endpoint: ep.url.clone(),
                status,
            });
        }
        Ok(body)
    }
}

/// Status and body of a whole HTTP/1.1 answer read until the server closed the connection.
fn split_http_answer(answer: &[u8]) -> Option<(u16, String)> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..end]);
    let mut raw = &answer[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut chunked = false;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                let len: usize = v.parse().ok()?;
                raw = raw.get(..len)?;
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            }
        }
    }
    let body = if chunked { dechunk(raw)? } else { raw.to_vec() };
    Some((status, String::from_utf8_lossy(&body).to_string()))
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_encoded_like_python_xmlrpclib() {
        let body = encode_call(
            "one.host.allocate",
            &[
                Param::Str("oneadmin:pass".into()),
                Param::Str("a<b&c>".into()),
                Param::Int(-2),
                Param::Bool(true),
            ],
        );
        assert_eq!(
            body,
            "<?xml version='1.0'?>\n<methodCall>\n<methodName>one.host.allocate</methodName>\n<params>\n\
             <param>\n<value><string>oneadmin:pass</string></value>\n</param>\n\
             <param>\n<value><string>a&lt;b&amp;c&gt;</string></value>\n</param>\n\
             <param>\n<value><int>-2</int></value>\n</param>\n\
             <param>\n<value><boolean>1</boolean></value>\n</param>\n\
             </params>\n</methodCall>\n"
        );
    }

    #[test]
    fn oned_answers_and_faults_decode() {
        let ok = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n<param><value><array><data>\r\n<value><boolean>1</boolean></value>\r\n<value><string>&lt;VNET_POOL&gt;&lt;/VNET_POOL&gt;</string></value>\r\n<value><i4>0</i4></value>\r\n</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n";
        assert_eq!(
            decode_response("m", ok).unwrap(),
            vec![
                Scalar::Bool(true),
                Scalar::Str("<VNET_POOL></VNET_POOL>".into()),
                Scalar::Int(0)
            ]
        );
        let fault = "<?xml version=\"1.0\"?><methodResponse><fault><value><struct><member><name>faultCode</name><value><i4>-501</i4></value></member><member><name>faultString</name><value><string>Type mismatch</string></value></member></struct></value></fault></methodResponse>";
        match decode_response("m", fault) {
            Err(RpcError::Fault { code, message, .. }) => {
                assert_eq!((code, message.as_str()), (-501, "Type mismatch"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:2633/RPC2").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("127.0.0.1", 2633, "/RPC2")
        );
        let e = Endpoint::parse("http://localhost").unwrap();
        assert_eq!((e.port, e.path.as_str()), (2633, "/RPC2"));
        assert!(Endpoint::parse("https://x/RPC2").is_err());
        assert!(Endpoint::parse("http://oneadmin:pw@x/RPC2").is_err());
    }

    #[test]
    fn http_answers_with_length_or_chunks() {
        let a = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(split_http_answer(a), Some((200, "hello".into())));
        let c = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n";
        assert_eq!(split_http_answer(c), Some((200, "hello".into())));
    }
}
