//! `stratusd site-setup` against a real daemon: its calls are those of the recorded StratusLab
//! set-up (`fixtures/stratuslab-client/00-site-setup.jsonl`) — the same methods with the same
//! parameters, decoded by stratusd's XML-RPC decoder (the encoding is the dxr crate's, not
//! Python's xmlrpclib's, so the bytes differ in blanks and quoting) —, the daemon
//! answers them as oned did, the pools then replay `00-site-state.jsonl` with zero
//! differences, and a second run creates nothing.
//!
//! A recording proxy on loopback sits between the command and the daemon.

mod common;
#[allow(dead_code)]
#[path = "../compat-tests/harness/mod.rs"]
mod harness;

use common::*;
use harness::http::{HttpClient, HttpResponse};
use harness::session::{self, ReplaySettings, Session};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/stratuslab-client");

/// One exchange seen by the proxy.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    request: Vec<u8>,
    response: HttpResponse,
}

impl Seen {
    fn method(&self) -> String {
        let text = String::from_utf8_lossy(&self.request);
        field(&text, "methodName").unwrap_or_default()
    }
}

/// Forwards every HTTP request it gets to `daemon`, keeping a copy of both sides.
fn recording_proxy(daemon: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if let Some(s) = forward_one(stream, daemon) {
                log.lock().unwrap().push(s);
            }
        }
    });
    (addr, seen)
}

fn forward_one(stream: TcpStream, daemon: SocketAddr) -> Option<Seen> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut request = vec![0u8; len];
    reader.read_exact(&mut request).ok()?;
    let mut upstream = HttpClient::new(daemon, Duration::from_secs(30));
    let response = upstream.post(&path, "text/xml", &request).ok()?;
    let mut out = reader.into_inner();
    let head = format!(
        "HTTP/1.1 {} OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.body.len()
    );
    out.write_all(head.as_bytes()).ok()?;
    out.write_all(&response.body).ok()?;
    Some(Seen {
        path,
        request,
        response,
    })
}

fn fixture(name: &str) -> Session {
    session::load(Path::new(FIXTURES), name).unwrap()
}

/// What the recorded set-up script printed (`--- stdout ... ---` of the `.txt`).
fn recorded_stdout() -> String {
    let txt = read_file(&Path::new(FIXTURES).join("00-site-setup.txt"));
    let start = txt.find("--- stdout").unwrap();
    let body = &txt[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("--- stderr").unwrap()].to_string()
}

fn site_setup(endpoint: &str, auth: &Path) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratusd"))
        .arg("site-setup")
        .args(["--endpoint", endpoint])
        .arg("--oneadmin-auth")
        .arg(auth)
        .arg("--public-leases")
        .arg(PathBuf::from(FIXTURES).join("public.leases"))
        .arg("--local-leases")
        .arg(PathBuf::from(FIXTURES).join("local.leases"))
        .args(["--private-network", "172.16.0.0/16"])
        .args(["--host", "dummyhost1"])
        .args(["--host-drivers", "im_dummy,vmm_dummy,dummy,tm_dummy"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn replay_site_state(d: &Daemon) {
    let state = fixture("00-site-state");
    let mut client = HttpClient::new(d.addr, Duration::from_secs(30));
    let settings = ReplaySettings {
        // The host reaches MONITORED shortly after its allocation.
        poll_budget: Duration::from_secs(30),
        poll_interval: Duration::from_millis(100),
        poll_budget_after_failure: Duration::from_secs(2),
        data_dir_prefix: Some(format!("{}/", d.dir.display())),
    };
    let report = session::replay(&state, &mut client, &settings, &mut || None);
    assert_eq!(report.aborted, None);
    let failures: Vec<String> = report.failures.iter().map(|f| f.describe()).collect();
    assert!(
        failures.is_empty(),
        "00-site-state differs:\n{}",
        failures.join("\n")
    );
    assert_eq!(report.calls, state.exchanges.len());
}

#[test]
fn site_setup_sends_the_installers_calls_and_is_idempotent() {
    let d = Daemon::start("site-setup", &[]);
    let auth = d.dir.join("one_auth_in");
    let (proxy, seen) = recording_proxy(d.addr);
    let endpoint = format!("http://{proxy}/RPC2");

    let (ok, stdout, stderr) = site_setup(&endpoint, &auth);
    assert!(ok, "site-setup failed: {stderr}");
    assert_eq!(stdout, recorded_stdout());

    let recorded = fixture("00-site-setup");
    let creating: Vec<Seen> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| !s.method().ends_with(".info"))
        .cloned()
        .collect();
    assert_eq!(
        creating.iter().map(Seen::method).collect::<Vec<_>>(),
        recorded
            .exchanges
            .iter()
            .map(|e| e.method_name().to_string())
            .collect::<Vec<_>>()
    );
    for (s, e) in creating.iter().zip(&recorded.exchanges) {
        assert_eq!(s.path, "/RPC2");
        let sent = stratusd::xmlrpc::parse_method_call(&s.request).expect("a valid call");
        let recorded = stratusd::xmlrpc::parse_method_call(&e.request_body).expect("recorded");
        assert_eq!(
            sent,
            recorded,
            "request of seq {} {}",
            e.seq,
            e.method_name()
        );
        let differences = session::compare_answer(&e.expected, &s.response);
        assert!(
            differences.is_empty(),
            "answer to seq {} {}: {:?}",
            e.seq,
            e.method_name(),
            differences
        );
    }
    replay_site_state(&d);

    // Again: only look-ups, everything reported as already there, the pools unchanged.
    seen.lock().unwrap().clear();
    let (ok, stdout, stderr) = site_setup(&endpoint, &auth);
    assert!(ok, "second site-setup failed: {stderr}");
    let expected: String = recorded_stdout()
        .lines()
        .map(|l| format!("{l} (already present)\n"))
        .collect();
    assert_eq!(stdout, expected);
    let methods: Vec<String> = seen.lock().unwrap().iter().map(Seen::method).collect();
    assert!(
        methods.iter().all(|m| m.ends_with(".info")),
        "second run changed something: {methods:?}"
    );
    replay_site_state(&d);
}

#[test]
fn site_setup_reports_a_bad_input_and_sends_nothing() {
    let dir = temp_dir("site-setup-bad");
    let auth = dir.join("auth");
    std::fs::write(&auth, "oneadmin:password\n").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/RPC2", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    let bad = dir.join("bad.leases");
    std::fs::write(
        &bad,
        "192.168.1.1 00:16:3e:d9:78:b1\n192.168.1.300 00:16:3e:d9:78:b2\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratusd"))
        .args(["site-setup", "--endpoint", &endpoint])
        .arg("--oneadmin-auth")
        .arg(&auth)
        .arg("--public-leases")
        .arg(&bad)
        .arg("--local-leases")
        .arg(PathBuf::from(FIXTURES).join("local.leases"))
        .args(["--private-network", "172.16.0.0/16"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.leases line 2") && stderr.contains("192.168.1.300"),
        "{stderr}"
    );
    assert!(
        listener.accept().is_err(),
        "nothing may be sent on bad input"
    );
}
