//! A small W3C WebDriver client for Debian's chromedriver and headless Chromium: enough to
//! navigate, find elements, click, type, run a script and take screenshots.
//!
//! Each browser gets its own chromedriver process with its own `HOME`: Chromium reads client
//! certificates and trusted CAs from `$HOME/.pki/nssdb`, so one profile can hold a user
//! certificate and another none.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The Chromium policy that lets the test profile present its certificate without a prompt
/// (headless Chromium has no prompt; scripts/setup.sh --test installs it).
pub const CERT_POLICY: &str = "/etc/chromium/policies/managed/stratusd-dashboard-test.json";

/// Fails with what to install when a browser tool is missing.
pub fn require_tools() {
    for (path, package) in [
        (CHROMIUM, "chromium"),
        (CHROMEDRIVER, "chromium-driver"),
        ("/usr/bin/certutil", "libnss3-tools"),
        ("/usr/bin/pk12util", "libnss3-tools"),
    ] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: run scripts/setup.sh --test (Debian package {package})"
        );
    }
    let policy = std::fs::read_to_string(CERT_POLICY).unwrap_or_default();
    assert!(
        policy.contains("AutoSelectCertificateForUrls"),
        "{CERT_POLICY} is missing: run scripts/setup.sh --test (it lets headless Chromium present the test certificate)"
    );
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .expect("the NSS tools run (Debian package libnss3-tools)");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A browser profile: a HOME whose NSS database trusts `ca` and, optionally, holds a client
/// certificate and key (PKCS#12 made with openssl).
pub fn profile(dir: &Path, ca: &Path, client: Option<(&Path, &Path)>) -> PathBuf {
    let home = dir.to_path_buf();
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db_arg = format!("sql:{}", db.display());
    run(Command::new("certutil").args(["-N", "-d", &db_arg, "--empty-password"]));
    run(Command::new("certutil")
        .args([
            "-A",
            "-d",
            &db_arg,
            "-n",
            "stratusd test CA",
            "-t",
            "C,,",
            "-i",
        ])
        .arg(ca));
    if let Some((cert, key)) = client {
        let p12 = home.join("client.p12");
        run(Command::new("openssl")
            .args([
                "pkcs12", "-export", "-passout", "pass:", "-name", "client", "-in",
            ])
            .arg(cert)
            .arg("-inkey")
            .arg(key)
            .arg("-out")
            .arg(&p12));
        run(Command::new("pk12util")
            .args(["-i"])
            .arg(&p12)
            .args(["-d", &db_arg, "-W", ""]));
    }
    home
}

pub struct Browser {
    driver: Child,
    agent: ureq::Agent,
    session: String,
}

#[derive(Debug, Clone)]
pub struct Element(String);

#[derive(Debug)]
pub struct WebDriverError(pub String);

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Browser {
    /// Starts chromedriver with `home` as HOME and opens a headless Chromium session.
    pub fn start(home: &Path) -> Browser {
        let port = free_port();
        let log = std::fs::File::create(home.join("chromedriver.log")).unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .env("HOME", home)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("chromedriver runs (Debian package chromium-driver)");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = agent
                .get(&format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .is_some_and(|b| b.contains("\"ready\":true"));
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile_dir = home.join("chromium-profile");
        std::fs::create_dir_all(&profile_dir).unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    "--force-device-scale-factor=1", "--lang=en-US",
                    format!("--user-data-dir={}", profile_dir.display()),
                ]
            }
        }}});
        let mut browser = Browser {
            driver,
            agent,
            session: String::new(),
        };
        let answer = browser
            .request("POST", &format!("{base}/session"), Some(caps))
            .expect("a Chromium session");
        let id = answer["value"]["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser.session = format!("{base}/session/{id}");
        browser
    }

    fn request(
        &self,
        method: &str,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let response = match method {
            "GET" => self.agent.get(url).call(),
            "DELETE" => self.agent.delete(url).call(),
            _ => self
                .agent
                .post(url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        };
        let mut response = response.map_err(|e| WebDriverError(format!("{method} {url}: {e}")))?;
        let ok = response.status().is_success();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| WebDriverError(e.to_string()))?;
        let value: Value =
            serde_json::from_str(&text).map_err(|e| WebDriverError(format!("{e}: {text}")))?;
        if !ok {
            return Err(WebDriverError(format!(
                "{method} {url}: {}",
                value["value"]["message"].as_str().unwrap_or(&text)
            )));
        }
        Ok(value)
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WebDriverError> {
        let url = format!("{}{path}", self.session);
        Ok(self.request(method, &url, body)?["value"].clone())
    }

    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn try_find(&self, css: &str) -> Option<Element> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .ok()?;
        v[ELEMENT_KEY].as_str().map(|s| Element(s.to_string()))
    }

    pub fn find_all(&self, css: &str) -> Vec<Element> {
        self.cmd(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e[ELEMENT_KEY].as_str().map(|s| Element(s.to_string())))
        .collect()
    }

    /// The element, waited for up to 15 s.
    pub fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on {}:\n{}",
                self.url(),
                self.body_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, e: &Element) {
        self.cmd("POST", &format!("/element/{}/click", e.0), Some(json!({})))
            .unwrap_or_else(|err| panic!("click: {err}"));
    }

    pub fn type_into(&self, e: &Element, text: &str) {
        self.cmd("POST", &format!("/element/{}/clear", e.0), Some(json!({})))
            .unwrap_or_else(|err| panic!("clear: {err}"));
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .unwrap_or_else(|err| panic!("typing: {err}"));
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns its value.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// Runs `script` asynchronously: it ends by calling its last argument with the result.
    pub fn execute_async(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
        .unwrap_or_else(|e| panic!("async script: {e}"))
    }

    pub fn body_text(&self) -> String {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": "return document.body ? document.body.innerText : ''", "args": []})),
        )
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
    }

    /// Waits up to `secs` for the page text to contain `needle`.
    pub fn wait_for_text(&self, needle: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.body_text();
            if text.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not appear on {}; the page says:\n{text}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits up to `secs` for `script` to return true.
    pub fn wait_for(&self, what: &str, script: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if self.execute(script, vec![]) == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: timed out on {}; the page says:\n{}",
                self.url(),
                self.body_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn set_window(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .unwrap_or_else(|e| panic!("window size: {e}"));
    }

    /// A PNG of the whole page (the window grown to the page's height first).
    pub fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let data = self
            .cmd("GET", "/screenshot", None)
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a base64 PNG");
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.request("DELETE", &self.session.clone(), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
