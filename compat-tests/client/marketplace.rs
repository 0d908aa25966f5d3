//! The test Marketplace / persistent-disk service, answering what the recording's one did
//! (`fixtures/stratuslab-client/README.md` §4):
//!
//! * `GET /metadata/<id>` → 200 `application/xml`, one RDF manifest with the id filled in;
//!   an id starting with `Xmissing` → 404 `not found`;
//! * `GET /images/…` → 200, a few bytes;
//! * `GET /pswd/disks/<uuid>/` → 200, the JSON of a persistent disk;
//! * anything else → 404.
//!
//! It runs in the suite's own process (a thread on a loopback port), so it needs nothing
//! installed, starts before the first command without a readiness race, and its request log
//! is read directly to compare each command's requests with the recorded ones. The binary
//! `stratusd-test-marketplace` serves the same answers on a chosen address, for the README's
//! first-VM walkthrough.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The manifest, exactly as served in the recording (1720 bytes there, with port 26351):
/// the recording kept only its length; this text (the example of
/// `stratuslab-client.md` §8 with the README's values) has that length. `{ID}` and `{BASE}`
/// are filled in per request.
const MANIFEST_TEMPLATE: &str = r##"<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<metadata>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:dcterms="http://purl.org/dc/terms/" xmlns:slreq="http://mp.stratuslab.eu/slreq#"
 xmlns:slterms="http://mp.stratuslab.eu/slterms#" xml:base="http://mp.stratuslab.eu/">
 <rdf:Description rdf:about="#{ID}">
  <dcterms:identifier>{ID}</dcterms:identifier>
  <slreq:bytes>104857600</slreq:bytes>
  <slreq:checksum rdf:parseType="Resource"><slreq:algorithm>SHA-1</slreq:algorithm>
   <slreq:value>c319bbd5afc0a22ba3eaed0507c39383ec28eeff</slreq:value></slreq:checksum>
  <slreq:endorsement rdf:parseType="Resource"><dcterms:created>2013-01-24T09:59:42Z</dcterms:created>
   <slreq:endorser rdf:parseType="Resource"><slreq:email>images@stratuslab.eu</slreq:email>
   <slreq:subject>CN=Jane Tester</slreq:subject><slreq:issuer>CN=Jane Tester</slreq:issuer></slreq:endorser>
  </slreq:endorsement>
  <dcterms:type>machine</dcterms:type><dcterms:valid>2030-07-23T10:59:42Z</dcterms:valid>
  <dcterms:title>ttylinux</dcterms:title><dcterms:description>test image</dcterms:description>
  <dcterms:compression>gz</dcterms:compression><dcterms:format>raw</dcterms:format>
  <slterms:location>{BASE}/images/ttylinux.img.gz</slterms:location>
  <slterms:version>1.0</slterms:version><slterms:hypervisor>kvm</slterms:hypervisor>
  <slterms:disks-bus>virtio</slterms:disks-bus>
  <slterms:inbound-port>22</slterms:inbound-port><slterms:inbound-port>443</slterms:inbound-port>
  <slterms:os>ttylinux</slterms:os><slterms:os-version>9.7</slterms:os-version><slterms:os-arch>i486</slterms:os-arch>
 </rdf:Description>
</rdf:RDF>
</metadata>"##;

/// The recorded manifest's length for a base URL of `http://127.0.0.1:26351`.
pub const RECORDED_MANIFEST_BYTES: usize = 1720;
/// The recorded 404 body's length (`not found` and a line end).
const NOT_FOUND_BODY: &str = "not found\n";
/// Marketplace ids that the recorded service did not know.
const UNKNOWN_ID_PREFIX: &str = "Xmissing";
/// The pdisk volume as the README describes it (user count "0", owner oneadmin, size "10",
/// DATA_IMAGE_RAW_READ_WRITE, PRIVATE, not in quarantine). The recording kept only its
/// length (231 bytes); the client reads `count` alone. `{UUID}` is filled in.
const PDISK_VOLUME_TEMPLATE: &str = r#"{"uuid": "{UUID}", "count": "0", "owner": "oneadmin", "tag": "", "identifier": "", "size": "10", "type": "DATA_IMAGE_RAW_READ_WRITE", "visibility": "PRIVATE", "quarantine": "", "seed": "false"}"#;
/// What `GET /images/…` returns (the client never fetches it).
const IMAGE_BYTES: &[u8] = b"ttylinux image placeholder\n";
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// One request as the log keeps it: `GET /metadata/BN1… -> 200`, the `.txt` form.
pub type LoggedRequest = String;

pub struct Marketplace {
    port: u16,
    log: Arc<Mutex<Vec<LoggedRequest>>>,
}

impl Marketplace {
    /// Binds a free loopback port and serves on a thread until the process ends.
    pub fn start() -> Result<Marketplace, String> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Binds `addr` (port 0: a free one) and serves on a thread until the process ends. The
    /// manifests name `http://127.0.0.1:<port>` as the image location.
    pub fn start_on(addr: SocketAddr) -> Result<Marketplace, String> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| format!("test Marketplace: cannot bind {addr}: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("test Marketplace: {e}"))?
            .port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let thread_log = Arc::clone(&log);
        let base = base_url(port);
        std::thread::Builder::new()
            .name("test-marketplace".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    if let Some(entry) = serve_connection(stream, &base) {
                        if let Ok(mut log) = thread_log.lock() {
                            log.push(entry);
                        }
                    }
                }
            })
            .map_err(|e| format!("test Marketplace: cannot start its thread: {e}"))?;
        Ok(Marketplace { port, log })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The requests served since the last call.
    pub fn take_log(&self) -> Vec<LoggedRequest> {
        self.log
            .lock()
            .map(|mut log| std::mem::take(&mut *log))
            .unwrap_or_default()
    }
}

pub fn base_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The manifest for `id`, served from `base`.
pub fn manifest(id: &str, base: &str) -> String {
    MANIFEST_TEMPLATE
        .replace("{ID}", id)
        .replace("{BASE}", base)
}

/// Status, content type and body for one request.
pub fn answer(method: &str, path: &str, base: &str) -> (u16, &'static str, Vec<u8>) {
    let not_found = (404, "text/plain", NOT_FOUND_BODY.as_bytes().to_vec());
    if method != "GET" {
        return not_found;
    }
    if let Some(id) = path.strip_prefix("/metadata/") {
        if id.is_empty() || id.contains('/') || id.starts_with(UNKNOWN_ID_PREFIX) {
            return not_found;
        }
        return (200, "application/xml", manifest(id, base).into_bytes());
    }
    if path.starts_with("/images/") {
        return (200, "application/octet-stream", IMAGE_BYTES.to_vec());
    }
    if let Some(uuid) = path
        .strip_prefix("/pswd/disks/")
        .and_then(|rest| rest.strip_suffix('/'))
    {
        if is_uuid(uuid) {
            let body = PDISK_VOLUME_TEMPLATE.replace("{UUID}", uuid);
            return (200, "application/json", body.into_bytes());
        }
    }
    not_found
}

fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Reads one request, answers it and closes the connection; returns the log entry.
fn serve_connection(stream: TcpStream, base: &str) -> Option<LoggedRequest> {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut content_length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            break;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; content_length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    let path = target.split('?').next().unwrap_or_default().to_string();
    let (status, content_type, body) = answer(&method, &path, base);
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = reader.into_inner();
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
    Some(format!("{method} {path} -> {status}"))
}

/// Checks of the answers, run before every suite run: `check(name, ok, detail)` records one.
pub fn self_checks(checks: &mut impl SelfChecks) {
    let recorded_base = base_url(26351);
    let (status, kind, body) = answer(
        "GET",
        "/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
        &recorded_base,
    );
    checks.check(
        "marketplace: the manifest has the recorded length",
        status == 200 && kind == "application/xml" && body.len() == RECORDED_MANIFEST_BYTES,
        format!("{status} {kind} {} bytes", body.len()),
    );
    let text = String::from_utf8_lossy(&body);
    checks.check(
        "marketplace: the id is filled in",
        text.matches("BN1EEkPiBx87_uLj2-sdybSI-Xb").count() == 2
            && text.contains("http://127.0.0.1:26351/images/ttylinux.img.gz"),
        "id or location missing".into(),
    );
    let (status, _, body) = answer(
        "GET",
        "/metadata/Xmissing0000000000000000000",
        &recorded_base,
    );
    checks.check(
        "marketplace: an unknown id is 404 with the recorded body length",
        status == 404 && body.len() == 10,
        format!("{status} {} bytes", body.len()),
    );
    let (status, kind, body) = answer(
        "GET",
        "/pswd/disks/48ac4190-9a11-4a06-8bef-03fd97080eba/",
        &recorded_base,
    );
    checks.check(
        "marketplace: the pdisk volume",
        status == 200
            && kind == "application/json"
            && String::from_utf8_lossy(&body).contains(r#""count": "0""#),
        format!("{status} {kind}"),
    );
    checks.check(
        "marketplace: anything else is 404",
        answer("GET", "/pswd/disks/", &recorded_base).0 == 404
            && answer(
                "POST",
                "/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
                &recorded_base,
            )
            .0 == 404
            && answer("GET", "/", &recorded_base).0 == 404
            && answer("GET", "/images/ttylinux.img.gz", &recorded_base).0 == 200,
        "wrong status".into(),
    );
}

/// Where [`self_checks`] records its results (the suites' `Checks`; the module is also built
/// into the `stratusd-test-marketplace` binary, which has no harness).
pub trait SelfChecks {
    fn check(&mut self, name: &str, ok: bool, detail: String);
}
