//! Starts a real stratusd on a free loopback port with its own data directory, and talks
//! XML-RPC to it over a keep-alive connection.
#![allow(dead_code)]

pub mod mariadb;
pub mod marketplace;
pub mod qemu;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    /// From the start of the process until it accepted a connection.
    pub started_in: Duration,
    child: Option<Child>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let n: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("stratusd-test-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Daemon {
    pub fn start(tag: &str, extra: &[&str]) -> Daemon {
        let dir = temp_dir(tag);
        Self::start_in(dir, extra)
    }

    pub fn start_in(dir: PathBuf, extra: &[&str]) -> Daemon {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        Self::start_on(dir, addr, extra)
    }

    /// Like `start_in`, for a daemon that loads a large database before it listens.
    pub fn start_within(dir: PathBuf, extra: &[&str], limit: Duration) -> Daemon {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        Self::start_on_within(dir, addr, extra, limit)
    }

    /// Starts on `addr` (a restart on the address clients already use); the log is appended to.
    pub fn start_on(dir: PathBuf, addr: SocketAddr, extra: &[&str]) -> Daemon {
        Self::start_on_within(dir, addr, extra, Duration::from_secs(20))
    }

    fn start_on_within(dir: PathBuf, addr: SocketAddr, extra: &[&str], limit: Duration) -> Daemon {
        let auth = dir.join("one_auth_in");
        if !auth.exists() {
            std::fs::write(&auth, "oneadmin:password\n").unwrap();
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("daemon.log"))
            .unwrap();
        let spawned = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_stratusd"))
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(&dir)
            .args(extra)
            .env("ONE_AUTH", &auth)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("stratusd binary runs");
        let deadline = Instant::now() + limit;
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "stratusd did not start listening; see {}",
                dir.join("daemon.log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon {
            addr,
            dir,
            started_in: spawned.elapsed(),
            child: Some(child),
        }
    }

    /// The daemon's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("stratusd.db")
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        unsafe_kill(child.id(), 15);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }
}

fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Client {
    addr: SocketAddr,
    stream: BufReader<TcpStream>,
    /// The connection has carried an answer: the server may have closed it since for
    /// idleness, and a call that gets nothing back is sent again on a new one (as xmlrpclib).
    used: bool,
}

pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Self::try_connect(addr).unwrap()
    }

    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Client> {
        Ok(Client {
            addr,
            stream: Self::open(addr)?,
            used: false,
        })
    }

    fn open(addr: SocketAddr) -> std::io::Result<BufReader<TcpStream>> {
        let s = TcpStream::connect(addr)?;
        // Head and body go out as separate writes: without this, Nagle's algorithm and the
        // server's delayed ACK hold each request back ~40 ms.
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(BufReader::new(s))
    }

    pub fn post_raw(&mut self, body: &[u8]) -> HttpAnswer {
        self.try_post_raw(body).unwrap()
    }

    /// Like `post_raw`, but a broken connection (a killed daemon) is an error, not a panic.
    pub fn try_post_raw(&mut self, body: &[u8]) -> std::io::Result<HttpAnswer> {
        match self.exchange(body) {
            Err((e, false)) if self.used => {
                // Closed since the last answer (idle timeout): once more on a new connection.
                let _ = e;
                self.stream = Self::open(self.addr)?;
                self.exchange(body).map_err(|(e, _)| e)
            }
            other => other.map_err(|(e, _)| e),
        }
    }

    /// One request and its answer; an error says whether any of the answer arrived.
    fn exchange(&mut self, body: &[u8]) -> Result<HttpAnswer, (std::io::Error, bool)> {
        let head = format!(
            "POST /RPC2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes())
            .and_then(|()| s.write_all(body))
            .map_err(|e| (e, false))?;
        let mut line = String::new();
        match self.stream.read_line(&mut line) {
            Ok(0) => return Err((std::io::ErrorKind::UnexpectedEof.into(), false)),
            Err(e) => return Err((e, false)),
            Ok(_) => {}
        }
        let answer = self.read_answer(line).map_err(|e| (e, true))?;
        self.used = true;
        Ok(answer)
    }

    fn read_answer(&mut self, line: String) -> std::io::Result<HttpAnswer> {
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            self.stream.read_line(&mut h)?;
            if h == "\r\n" || h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body)?;
        Ok(HttpAnswer {
            status,
            body: String::from_utf8_lossy(&body).to_string(),
        })
    }

    /// A call with string/int/bool parameters given as pre-encoded `<value>` contents.
    pub fn call(&mut self, method: &str, params: &[Param]) -> String {
        self.try_call(method, params).unwrap()
    }

    pub fn try_call(&mut self, method: &str, params: &[Param]) -> std::io::Result<String> {
        Ok(self
            .try_post_raw(call_body(method, params).as_bytes())?
            .body)
    }

    /// One attempt, never sent again: a write whose answer was lost may or may not have
    /// happened (the kill -9 campaign counts it as unanswered).
    pub fn try_call_once(&mut self, method: &str, params: &[Param]) -> std::io::Result<String> {
        let answer = self
            .exchange(call_body(method, params).as_bytes())
            .map_err(|(e, _)| e)?;
        self.used = true;
        Ok(answer.body)
    }
}

fn call_body(method: &str, params: &[Param]) -> String {
    let mut body =
        format!("<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName><params>");
    for p in params {
        body.push_str("<param><value>");
        match p {
            Param::S(s) => body.push_str(&format!("<string>{}</string>", escape(s))),
            Param::I(i) => body.push_str(&format!("<int>{i}</int>")),
            Param::B(b) => body.push_str(&format!("<boolean>{}</boolean>", u8::from(*b))),
        }
        body.push_str("</value></param>");
    }
    body.push_str("</params></methodCall>");
    body
}

pub enum Param {
    S(String),
    I(i32),
    B(bool),
}

pub fn s(v: &str) -> Param {
    Param::S(v.to_string())
}

pub fn i(v: i32) -> Param {
    Param::I(v)
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The text of the first `<TAG>` in a (decoded) document.
pub fn field(doc: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find(&format!("</{tag}>"))? + start;
    Some(doc[start..end].to_string())
}

pub const ADMIN: &str = "oneadmin:password";

pub fn read_file(path: &std::path::Path) -> String {
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// The `[ok, value, code]` answer of a `one.*` call: `Ok(value text)` or `Err((message,
/// code))`, with entities decoded.
pub fn rpc_result(body: &str) -> Result<String, (String, i32)> {
    let ok = field(body, "boolean").as_deref() == Some("1");
    let after = body.find("</boolean>").map(|i| &body[i..]).unwrap_or("");
    let value = field(after, "string")
        .or_else(|| field(after, "i4"))
        .map(|v| unescape(&v))
        .unwrap_or_default();
    if ok {
        Ok(value)
    } else {
        let code = after
            .rfind("<i4>")
            .and_then(|i| field(&after[i..], "i4"))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        Err((value, code))
    }
}

/// Every `<TAG>...</TAG>` body of a document, in order (no nesting of TAG in itself).
pub fn elements<'a>(doc: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(end) = body.find(&close) else { break };
        out.push(&body[..end]);
        rest = &body[end + close.len()..];
    }
    out
}

/// One lease as one.vn.info lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeaseRow {
    pub ip: String,
    pub mac: String,
    pub used: bool,
    pub vid: i32,
}

pub fn vn_info(c: &mut Client, id: i32) -> String {
    rpc_result(&c.call("one.vn.info", &[s(ADMIN), i(id)])).expect("one.vn.info")
}

pub fn vn_leases(c: &mut Client, id: i32) -> Vec<LeaseRow> {
    let doc = vn_info(c, id);
    elements(&doc, "LEASE")
        .into_iter()
        .map(|l| LeaseRow {
            ip: field(l, "IP").unwrap_or_default(),
            mac: field(l, "MAC").unwrap_or_default(),
            used: field(l, "USED").as_deref() == Some("1"),
            vid: field(l, "VID").and_then(|v| v.parse().ok()).unwrap_or(-2),
        })
        .collect()
}

/// `(mac, ip, hostname)` of every entry of a dnsmasq host file (comments skipped).
pub fn dnsmasq_file_entries(
    path: &std::path::Path,
) -> std::collections::BTreeSet<(String, String, String)> {
    read_file(path)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.split(',').map(str::to_string);
            let mac = parts.next().unwrap_or_default();
            let ip = parts.next().unwrap_or_default();
            let host = parts.next().unwrap_or_default();
            assert!(parts.next().is_none(), "unexpected line {l:?}");
            (mac, ip, host)
        })
        .collect()
}

/// What the dnsmasq host file must hold for these networks: one entry per lease held by a VM
/// (the VMs of these tests have one NIC each, so the host name is `one-<vid>`).
pub fn expected_dnsmasq_entries(
    c: &mut Client,
    nets: &[i32],
) -> std::collections::BTreeSet<(String, String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for net in nets {
        for l in vn_leases(c, *net) {
            if l.used && l.vid >= 0 {
                out.insert((l.mac, l.ip, format!("one-{}", l.vid)));
            }
        }
    }
    out
}

/// The DHCP host file's entries once they equal the leases of these networks, or the last ones
/// read after 30 s, with the expected ones: `(expected, found)`. The file is written by
/// stratusd's DHCP worker after the commit that changed the leases, so shortly after the call
/// answered, not before.
#[allow(clippy::type_complexity)]
pub fn await_dnsmasq_file(
    c: &mut Client,
    nets: &[i32],
    path: &std::path::Path,
) -> (
    std::collections::BTreeSet<(String, String, String)>,
    std::collections::BTreeSet<(String, String, String)>,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let expected = expected_dnsmasq_entries(c, nets);
        let found = dnsmasq_file_entries(path);
        if expected == found || std::time::Instant::now() > deadline {
            return (expected, found);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The value of a successful answer; panics with the error of a failed one.
pub fn ok(answer: &str) -> String {
    rpc_result(answer).unwrap_or_else(|e| panic!("call failed: {e:?}"))
}

/// `one.vm.allocate` as oneadmin: the new VM's id.
pub fn allocate_vm(c: &mut Client, template: &str) -> i32 {
    ok(&c.call("one.vm.allocate", &[s(ADMIN), s(template)]))
        .parse()
        .unwrap()
}

/// A simulated host (the dummy drivers), as oneadmin: its id.
pub fn allocate_dummy_host(c: &mut Client, name: &str) -> i32 {
    ok(&c.call(
        "one.host.allocate",
        &[
            s(ADMIN),
            s(name),
            s("im_dummy"),
            s("vmm_dummy"),
            s("dummy"),
            s("tm_dummy"),
        ],
    ))
    .parse()
    .unwrap()
}

/// A VM's `(STATE, LCM_STATE)` as `one.vm.info` shows them.
pub fn vm_state(c: &mut Client, id: i32) -> (String, String) {
    let doc = ok(&c.call("one.vm.info", &[s(ADMIN), i(id)]));
    (
        field(&doc, "STATE").unwrap_or_default(),
        field(&doc, "LCM_STATE").unwrap_or_default(),
    )
}

/// Waits (30 s at most) for a VM to be in `want` = `(STATE, LCM_STATE)`.
pub fn wait_vm_state(c: &mut Client, id: i32, want: (&str, &str)) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = vm_state(c, id);
        if (got.0.as_str(), got.1.as_str()) == want {
            return;
        }
        assert!(Instant::now() < deadline, "VM {id} stuck in {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `one.vm.action` as oneadmin; panics when refused.
pub fn vm_act(c: &mut Client, what: &str, id: i32) {
    ok(&c.call("one.vm.action", &[s(ADMIN), s(what), i(id)]));
}
