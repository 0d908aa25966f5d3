//! A test Marketplace on loopback: serves manifests (`GET /metadata/<id>`) and image files
//! (`GET /images/<name>`), accepts manifest uploads (`POST /metadata`), and counts requests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Content {
    /// pdisk volumes: uuid → description (string values, as pdisk sends them).
    volumes: HashMap<String, serde_json::Value>,
    turls: HashMap<String, String>,
    mounts: HashMap<String, Vec<String>>,
    manifests: HashMap<String, String>,
    files: HashMap<String, Vec<u8>>,
    /// Files sent slowly: name → bytes per second.
    throttle: HashMap<String, usize>,
    requests: Vec<(String, String)>,
    uploads: Vec<String>,
}

pub struct Marketplace {
    pub addr: SocketAddr,
    content: Arc<Mutex<Content>>,
}

/// What the manifest of a test image says.
pub struct ImageSpec<'a> {
    pub id: &'a str,
    pub location: String,
    pub bytes: u64,
    pub sha1: String,
    pub endorser: &'a str,
}

pub fn manifest(s: &ImageSpec) -> String {
    format!(
        r##"<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<metadata>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:dcterms="http://purl.org/dc/terms/" xmlns:slreq="http://mp.stratuslab.eu/slreq#"
 xmlns:slterms="http://mp.stratuslab.eu/slterms#" xml:base="http://mp.stratuslab.eu/">
 <rdf:Description rdf:about="#{id}">
  <dcterms:identifier>{id}</dcterms:identifier>
  <slreq:bytes>{bytes}</slreq:bytes>
  <slreq:checksum rdf:parseType="Resource"><slreq:algorithm>SHA-1</slreq:algorithm>
   <slreq:value>{sha1}</slreq:value></slreq:checksum>
  <slreq:endorsement rdf:parseType="Resource"><dcterms:created>2013-01-24T09:59:42Z</dcterms:created>
   <slreq:endorser rdf:parseType="Resource"><slreq:email>{endorser}</slreq:email>
   <slreq:subject>CN=Jane Tester</slreq:subject><slreq:issuer>CN=Jane Tester</slreq:issuer></slreq:endorser>
  </slreq:endorsement>
  <dcterms:type>machine</dcterms:type><dcterms:valid>2030-07-23T10:59:42Z</dcterms:valid>
  <dcterms:title>ttylinux</dcterms:title><dcterms:description>test image</dcterms:description>
  <dcterms:compression>gz</dcterms:compression><dcterms:format>raw</dcterms:format>
  <slterms:location>{location}</slterms:location>
  <slterms:version>1.0</slterms:version><slterms:hypervisor>kvm</slterms:hypervisor>
  <slterms:disks-bus>virtio</slterms:disks-bus>
  <slterms:inbound-port>22</slterms:inbound-port><slterms:inbound-port>443</slterms:inbound-port>
  <slterms:os>ttylinux</slterms:os><slterms:os-version>9.7</slterms:os-version><slterms:os-arch>i486</slterms:os-arch>
 </rdf:Description>
</rdf:RDF>
</metadata>
"##,
        id = s.id,
        bytes = s.bytes,
        sha1 = s.sha1,
        endorser = s.endorser,
        location = s.location
    )
}

pub fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A test disk image: recognisable data with runs of zeros (so the cache makes holes).
pub fn image_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut v = vec![0u8; len];
    for (i, b) in v.iter_mut().enumerate() {
        if (i / 65536) % 3 != 1 {
            *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
        }
    }
    v
}

fn handle(mut stream: TcpStream, content: &Mutex<Content>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    let _ = reader.read_exact(&mut body);
    let mut rate: Option<usize> = None;
    let (status, answer): (&str, Vec<u8>) = {
        let mut c = content.lock().unwrap();
        if let Some(name) = path.strip_prefix("/images/") {
            rate = c.throttle.get(name).copied();
        }
        c.requests.push((method.clone(), path.clone()));
        if let Some(rest) = path.strip_prefix("/pswd/disks/") {
            pdisk(&mut c, &method, rest, &String::from_utf8_lossy(&body))
        } else if method == "POST" && path == "/metadata" {
            c.uploads.push(String::from_utf8_lossy(&body).to_string());
            ("201 Created", b"created".to_vec())
        } else if let Some(id) = path.strip_prefix("/metadata/") {
            match c.manifests.get(id) {
                Some(m) => ("200 OK", m.clone().into_bytes()),
                None => ("404 Not Found", b"not found".to_vec()),
            }
        } else if let Some(name) = path.strip_prefix("/images/") {
            match c.files.get(name) {
                Some(f) => ("200 OK", f.clone()),
                None => ("404 Not Found", b"not found".to_vec()),
            }
        } else {
            ("404 Not Found", b"not found".to_vec())
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        answer.len()
    );
    let _ = stream.write_all(head.as_bytes());
    match rate {
        None => {
            let _ = stream.write_all(&answer);
        }
        Some(per_second) => {
            // Bounded: the whole answer goes out in at most len / per_second seconds.
            let step = (per_second / 10).max(1);
            for chunk in answer.chunks(step) {
                if stream.write_all(chunk).is_err() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}

fn form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%20", " ").replace("%3A", ":")))
        .collect()
}

/// The pdisk resources the transfer driver uses.
fn pdisk(c: &mut Content, method: &str, rest: &str, body: &str) -> (&'static str, Vec<u8>) {
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let uuid = parts[0].to_string();
    if !c.volumes.contains_key(&uuid) {
        return (
            "404 Not Found",
            format!("{{\"message\": \"Disk {uuid} doesn't exists\", \"code\": 404}}").into_bytes(),
        );
    }
    match (method, &parts[1..]) {
        ("GET", []) => ("200 OK", c.volumes[&uuid].to_string().into_bytes()),
        ("PUT", []) => {
            let v = c.volumes.get_mut(&uuid).unwrap();
            for (k, val) in form(body) {
                v[k.as_str()] = serde_json::Value::String(val);
            }
            ("200 OK", b"{}".to_vec())
        }
        ("GET", ["turl"]) => (
            "200 OK",
            serde_json::json!({"uuid": uuid, "turl": c.turls[&uuid]})
                .to_string()
                .into_bytes(),
        ),
        ("GET", ["mounts"]) => (
            "200 OK",
            serde_json::to_vec(c.mounts.get(&uuid).cloned().unwrap_or_default().as_slice())
                .unwrap(),
        ),
        ("POST", ["mounts"]) => {
            let f = form(body);
            let id = format!("{uuid}_{}", f.get("vm_id").cloned().unwrap_or_default());
            c.mounts.entry(uuid).or_default().push(id);
            ("200 OK", b"{}".to_vec())
        }
        ("DELETE", ["mounts", id]) => {
            let list = c.mounts.entry(uuid).or_default();
            let before = list.len();
            list.retain(|m| m != id);
            if list.len() == before {
                ("404 Not Found", b"{}".to_vec())
            } else {
                ("200 OK", b"{}".to_vec())
            }
        }
        _ => ("404 Not Found", b"{}".to_vec()),
    }
}

impl Marketplace {
    /// A pdisk volume whose content is the file `path` (pdisk's file backend).
    pub fn add_volume(
        &self,
        uuid: &str,
        kind: &str,
        owner: &str,
        identifier: &str,
        path: &std::path::Path,
    ) {
        let mut c = self.content.lock().unwrap();
        c.volumes.insert(
            uuid.to_string(),
            serde_json::json!({"uuid": uuid, "count": "0", "owner": owner, "tag": "",
                "identifier": identifier, "size": "1", "type": kind, "visibility": "PRIVATE",
                "quarantine": ""}),
        );
        c.turls
            .insert(uuid.to_string(), format!("file://{}", path.display()));
    }

    pub fn volume(&self, uuid: &str) -> serde_json::Value {
        self.content.lock().unwrap().volumes[uuid].clone()
    }

    pub fn mounts(&self, uuid: &str) -> Vec<String> {
        self.content
            .lock()
            .unwrap()
            .mounts
            .get(uuid)
            .cloned()
            .unwrap_or_default()
    }

    pub fn start() -> Marketplace {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let content: Arc<Mutex<Content>> = Arc::default();
        let c = Arc::clone(&content);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let c = Arc::clone(&c);
                std::thread::spawn(move || handle(stream, &c));
            }
        });
        Marketplace { addr, content }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn source(&self, id: &str) -> String {
        format!("{}/metadata/{id}", self.url())
    }

    pub fn add_file(&self, name: &str, data: Vec<u8>) -> String {
        self.content
            .lock()
            .unwrap()
            .files
            .insert(name.to_string(), data);
        format!("{}/images/{name}", self.url())
    }

    pub fn add_manifest(&self, id: &str, xml: String) {
        self.content
            .lock()
            .unwrap()
            .manifests
            .insert(id.to_string(), xml);
    }

    /// An image served gzipped (`.gz`) or plain, with a manifest telling `bytes`/`sha1`.
    pub fn add_image(&self, id: &str, data: &[u8], gz: bool, bytes: u64, sha1: &str) {
        let location = if gz {
            self.add_file(&format!("{id}.img.gz"), gzip(data))
        } else {
            self.add_file(&format!("{id}.img"), data.to_vec())
        };
        self.add_manifest(
            id,
            manifest(&ImageSpec {
                id,
                location,
                bytes,
                sha1: sha1.to_string(),
                endorser: "images@stratuslab.eu",
            }),
        );
    }

    /// Sends the file `name` at `per_second` bytes per second.
    pub fn throttle(&self, name: &str, per_second: usize) {
        self.content
            .lock()
            .unwrap()
            .throttle
            .insert(name.to_string(), per_second);
    }

    /// Requests for paths starting with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.content
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(_, p)| p.starts_with(prefix))
            .count()
    }

    pub fn uploads(&self) -> Vec<String> {
        self.content.lock().unwrap().uploads.clone()
    }
}
