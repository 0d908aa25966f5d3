//! A small HTTPS/1.1 client on rustls (sync), keep-alive, with an optional client certificate
//! chain: enough to talk to the front door as the StratusLab client's xmlrpclib does.

use super::pki::Credential;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Https {
    stream: BufReader<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>,
}

fn config(ca: &Path, client: Option<&Credential>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    match client {
        None => builder.with_no_client_auth(),
        Some(cred) => {
            let chain: Vec<CertificateDer<'static>> = cred
                .chain
                .iter()
                .map(|p| CertificateDer::from_pem_file(p).unwrap())
                .collect();
            let key = PrivateKeyDer::from_pem_file(&cred.key).unwrap();
            let key = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
            // Not with_client_auth_cert: it parses the leaf with webpki, which refuses proxies.
            let certified = Arc::new(rustls::sign::CertifiedKey::new(chain, key));
            builder.with_client_cert_resolver(Arc::new(FixedClientCert(certified)))
        }
    }
}

/// Always offers the same chain, whatever the server asks for.
#[derive(Debug)]
struct FixedClientCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for FixedClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl Https {
    pub fn connect(addr: SocketAddr, ca: &Path, client: Option<&Credential>) -> Https {
        let conn = rustls::ClientConnection::new(
            Arc::new(config(ca, client)),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Https {
            stream: BufReader::new(rustls::StreamOwned::new(conn, tcp)),
        }
    }

    /// Completes the handshake and waits a moment for what the server sends next: `Err` with
    /// the alert when it refused our certificate (in TLS 1.3 that comes after the handshake).
    pub fn probe(&mut self) -> Result<(), String> {
        let stream = self.stream.get_mut();
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| e.to_string())?;
        }
        stream
            .sock
            .set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_millis(700);
        while std::time::Instant::now() < deadline {
            match stream.conn.read_tls(&mut stream.sock) {
                Ok(0) => return Err("connection closed".into()),
                Ok(_) => {
                    stream
                        .conn
                        .process_new_packets()
                        .map_err(|e| e.to_string())?;
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    break
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        stream
            .sock
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Ok(())
    }

    /// Waits at most `timeout` for the server to end the connection: `Ok` when it sent a TLS
    /// close_notify before closing, `Err` with what happened otherwise (rustls reports a close
    /// without close_notify as an unexpected end of file).
    pub fn read_end(&mut self, timeout: Duration) -> Result<(), String> {
        self.stream
            .get_mut()
            .sock
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => Ok(()),
            Ok(_) => Err("the server sent data instead of ending the connection".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends one request; `Err` carries the TLS or I/O error (a refused certificate shows up
    /// here, as the alert the server sent).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Answer, String> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n\
             User-Agent: xmlrpclib.py/1.0.1 (by www.pythonware.com)\r\n\
             Content-Length: {}\r\n",
            body.len()
        );
        // XML-RPC's type unless the caller names another (the dashboard's forms).
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            head.push_str("Content-Type: text/xml\r\n");
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        s.write_all(body.as_bytes()).map_err(|e| e.to_string())?;
        s.flush().map_err(|e| e.to_string())?;
        self.read_answer()
    }

    fn read_answer(&mut self) -> Result<Answer, String> {
        let mut line = String::new();
        let n = self
            .stream
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut headers = Vec::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            self.stream.read_line(&mut h).map_err(|e| e.to_string())?;
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let v = v.trim().to_string();
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.parse().unwrap_or(0);
                }
                headers.push((k.to_string(), v));
            }
        }
        let mut body = vec![0u8; len];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| e.to_string())?;
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).to_string(),
        })
    }
}

/// An XML-RPC call body with string/int parameters.
pub fn call_body(method: &str, params: &[&str]) -> String {
    let mut body = format!(
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>{method}</methodName>\n<params>\n"
    );
    for p in params {
        let value = match p.parse::<i32>() {
            Ok(i) => format!("<int>{i}</int>"),
            Err(_) => format!("<string>{}</string>", super::common::escape(p)),
        };
        body.push_str(&format!("<param>\n<value>{value}</value>\n</param>\n"));
    }
    body.push_str("</params>\n</methodCall>\n");
    body
}

/// `Authorization: Basic ...` for `user:password`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}
