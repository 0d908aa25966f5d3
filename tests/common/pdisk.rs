//! The built-in persistent disk service for tests: a real stratusd serving pdisk's REST API
//! over HTTPS with the front door's TLS and password/certificate authentication ([`Site`]),
//! and a client of that API ([`Api`]). Shared by `tests/volumes` and `tests/qemu_volumes.rs`;
//! a test crate includes it next to `common` and `frontdoor/pki.rs`.

use crate::common::*;
use crate::pki::{Credential, Pki};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const PASSWORDS: &str = "alice=s3cret,cloud-access\n\
bob=b0b,cloud-access\n\
pdisk=pdisk-pw,cloud-access\n\
guest=pw,other-role\n";

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki::create(&temp_dir("volumes-pki")))
}

/// A daemon with the front door's TLS and authentication, serving the pdisk API.
pub struct Site {
    pub daemon: Daemon,
    pub pdisk: SocketAddr,
    pub rpc: Client,
}

impl Site {
    pub fn start(tag: &str, extra: &[&str]) -> Site {
        Self::start_in(temp_dir(tag), extra)
    }

    pub fn start_in(dir: PathBuf, extra: &[&str]) -> Site {
        let pki = pki();
        std::fs::create_dir_all(&dir).unwrap();
        let passwords = dir.join("login-pswd.properties");
        std::fs::write(&passwords, PASSWORDS).unwrap();
        let pdisk: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut args: Vec<String> = [
            "--pdisk-listen",
            &pdisk.to_string(),
            "--tls-cert",
            &pki.server_cert.display().to_string(),
            "--tls-key",
            &pki.server_key.display().to_string(),
            "--password-file",
            &passwords.display().to_string(),
            "--ca-dir",
            &pki.ca_dir.display().to_string(),
            "--allowed-dn-file",
            &pki.allowed_dn_file.display().to_string(),
            "--log-level",
            "info,stratusd=debug",
        ]
        .map(String::from)
        .to_vec();
        args.extend(extra.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let daemon = Daemon::start_in(dir, &refs);
        wait_port(pdisk);
        let rpc = daemon.client();
        Site { daemon, pdisk, rpc }
    }

    /// The API as `user` (HTTP Basic under `/pswd`).
    pub fn api(&self, user: &str, password: &str) -> Api {
        Api::new(self.pdisk, "/pswd", Some((user, password)), None)
    }

    /// The API with a client certificate under `/pdisk/cert` (the 14.x layout).
    pub fn api_cert(&self, cred: &Credential) -> Api {
        Api::new(self.pdisk, "/pdisk/cert", None, Some(cred))
    }

    pub fn alice(&self) -> Api {
        self.api("alice", "s3cret")
    }

    pub fn bob(&self) -> Api {
        self.api("bob", "b0b")
    }

    pub fn superuser(&self) -> Api {
        self.api("pdisk", "pdisk-pw")
    }

    pub fn dir(&self) -> &Path {
        &self.daemon.dir
    }

    /// A simulated host with StratusLab's transfer driver (its prolog attaches volumes).
    pub fn simulated_host(&mut self, name: &str) -> i32 {
        let answer = self.rpc.call(
            "one.host.allocate",
            &[
                s(ADMIN),
                s(name),
                s("im_dummy"),
                s("vmm_dummy"),
                s("dummy"),
                s("tm_stratuslab"),
            ],
        );
        rpc_id(&answer)
    }

    /// Allocates a VM as `owner` (any secret: StratusLab's dummy users) and waits until it
    /// is RUNNING or FAILED; returns its id and its document.
    pub fn run_vm(&mut self, owner: &str, template: &str) -> (i32, String) {
        let session = format!("{owner}:whatever");
        let id = rpc_id(
            &self
                .rpc
                .call("one.vm.allocate", &[s(&session), s(template)]),
        );
        let doc = self.wait_vm(id, &["3/3", "7/0"]);
        (id, doc)
    }

    /// Waits until the VM's STATE/LCM_STATE is one of `states`.
    pub fn wait_vm(&mut self, id: i32, states: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = self.rpc.call("one.vm.info", &[s(ADMIN), i(id)]);
            let doc = unescape(&answer);
            let state = format!(
                "{}/{}",
                field(&doc, "STATE").unwrap_or_default(),
                field(&doc, "LCM_STATE").unwrap_or_default()
            );
            if states.contains(&state.as_str()) {
                return doc;
            }
            assert!(
                Instant::now() < deadline,
                "VM {id} not in {states:?} within 30 s: {doc}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn vm_action(&mut self, action: &str, id: i32) {
        let answer = self
            .rpc
            .call("one.vm.action", &[s(ADMIN), s(action), i(id)]);
        assert!(answer.contains("<boolean>1</boolean>"), "{answer}");
    }

    /// Everything an observer can see of the volumes: the super-user's listing, each volume's
    /// document and mounts, and the files of the volume directory.
    pub fn snapshot(&self) -> String {
        let su = self.superuser();
        let list = su.get("/disks/");
        assert_eq!(list.status, 200, "{}", list.body);
        let mut out = list.body.clone();
        for v in list.json.as_array().cloned().unwrap_or_default() {
            let uuid = v["uuid"].as_str().unwrap_or_default().to_string();
            out.push_str(&su.get(&format!("/disks/{uuid}")).body);
            out.push_str(&su.get(&format!("/disks/{uuid}/mounts/")).body);
        }
        let mut files: Vec<String> = std::fs::read_dir(self.dir().join("volumes"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        out.push_str(&files.join(","));
        out
    }
}

pub fn rpc_id(answer: &str) -> i32 {
    assert!(answer.contains("<boolean>1</boolean>"), "{answer}");
    field(answer, "i4")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no id in {answer}"))
}

pub fn wait_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} does not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One answer of the API.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: String,
    pub bytes: Vec<u8>,
    pub json: serde_json::Value,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// pdisk's error: `{"message", "code"}` with the status.
    pub fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.json["code"], status, "{}", self.body);
        assert_eq!(self.json["message"], message, "{}", self.body);
    }
}

/// A client of the API over HTTPS (rustls through ureq), trusting the test CA.
pub struct Api {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
}

impl Api {
    pub fn new(
        addr: SocketAddr,
        door: &str,
        user: Option<(&str, &str)>,
        cert: Option<&Credential>,
    ) -> Api {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
        let ca = std::fs::read(&pki().ca_cert).unwrap();
        let mut tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::new_with_certs(&[
                Certificate::from_pem(&ca).unwrap()
            ]));
        if let Some(cred) = cert {
            let chain: Vec<Certificate<'static>> = cred
                .chain
                .iter()
                .map(|p| Certificate::from_pem(&std::fs::read(p).unwrap()).unwrap())
                .collect();
            let key = PrivateKey::from_pem(&std::fs::read(&cred.key).unwrap()).unwrap();
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Api {
            agent,
            base: format!("https://localhost:{}{door}", addr.port()),
            auth: user.map(|(u, p)| {
                use base64::Engine;
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                )
            }),
        }
    }

    fn finish(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
        let mut resp = resp.expect("the service answers");
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(1 << 34)
            .read_to_vec()
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        Resp {
            status,
            body,
            bytes,
            json,
            headers,
        }
    }

    fn with_auth<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.auth {
            Some(a) => req.header("Authorization", a),
            None => req,
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.get_accept(path, "application/json")
    }

    pub fn get_accept(&self, path: &str, accept: &str) -> Resp {
        let req = self
            .with_auth(self.agent.get(format!("{}{path}", self.base)))
            .header("Accept", accept);
        Self::finish(req.call())
    }

    pub fn head(&self, path: &str) -> Resp {
        let req = self.with_auth(self.agent.head(format!("{}{path}", self.base)));
        Self::finish(req.call())
    }

    pub fn delete(&self, path: &str) -> Resp {
        let req = self
            .with_auth(self.agent.delete(format!("{}{path}", self.base)))
            .header("Accept", "application/json");
        Self::finish(req.call())
    }

    pub fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.send(
            "POST",
            path,
            "application/x-www-form-urlencoded",
            &encode_form(form),
        )
    }

    pub fn put_form(&self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.send(
            "PUT",
            path,
            "application/x-www-form-urlencoded",
            &encode_form(form),
        )
    }

    pub fn send(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Resp {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "PUT" => self.agent.put(url),
            _ => self.agent.post(url),
        };
        let req = self
            .with_auth(req)
            .header("Accept", "application/json")
            .header("Content-Type", content_type);
        Self::finish(req.send(body))
    }

    /// A volume's `count`: how many VMs use it.
    pub fn count(&self, uuid: &str) -> String {
        let r = self.get(&format!("/disks/{uuid}/"));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json["count"].as_str().unwrap_or_default().to_string()
    }

    /// `POST /disks/` of a new empty volume; its UUID.
    pub fn create(&self, size: &str, tag: &str) -> String {
        let r = self.post_form(
            "/disks/",
            &[("size", size), ("tag", tag), ("visibility", "private")],
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.json["uuid"].as_str().expect("uuid").to_string()
    }
}

pub fn encode_form(form: &[(&str, &str)]) -> Vec<u8> {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    form.iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

/// A VM template with a swap disk 0 (a data volume may not be disk 0) and `pdisk:` disks.
pub fn template_with_volumes(name: &str, uuids: &[&str]) -> String {
    let mut t = format!(
        "NAME = \"{name}\"\nMEMORY = 64\nCPU = 0.1\nDISK = [ TYPE = swap, SIZE = 1, TARGET = vda ]\n"
    );
    for (n, u) in uuids.iter().enumerate() {
        let target = (b'b' + n as u8) as char;
        t.push_str(&format!(
            "DISK = [ SOURCE = pdisk:https://pdisk.example.org:8445/{u}, TARGET = vd{target}, TYPE = block ]\n"
        ));
    }
    t
}
