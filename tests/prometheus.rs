//! A real Prometheus server (Debian's `prometheus`) scrapes a real stratusd's `/metrics`; the
//! values it stores, read back through its HTTP API, are those `one.hostpool.info` and
//! `one.vmpool.info` answer, and stratusd's own instruments count the calls made.
//!
//! A second case runs the built-in pdisk service (`--pdisk-listen`): the volume families
//! Prometheus stores are those the service's REST answers describe, and the image cache's.
//!
//! Prometheus runs on loopback with its own configuration and data directory in the test's
//! temporary directory, and is killed at the end.

mod common;
#[path = "common/pdisk.rs"]
#[allow(dead_code)]
mod pdisk;
#[path = "frontdoor/pki.rs"]
#[allow(dead_code)]
mod pki;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus_binary() -> String {
    for candidate in ["/usr/bin/prometheus", "/usr/local/bin/prometheus"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.to_string();
        }
    }
    panic!(
        "the Prometheus server is missing: run scripts/setup.sh --test \
         (or apt-get install prometheus)"
    );
}

impl Prometheus {
    fn start(dir: &std::path::Path, target: SocketAddr) -> Prometheus {
        let bin = prometheus_binary();
        let conf = dir.join("prometheus.yml");
        std::fs::write(
            &conf,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: stratusd\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let data = dir.join("prometheus-data");
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("prometheus runs");
        let p = Prometheus {
            child,
            addr,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(addr, "/-/ready").map(|(s, _)| s) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "prometheus did not become ready; see {}",
                dir.join("prometheus.log").display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    /// An instant query: each result's labels (without `__name__`... kept) and value.
    fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, String)> {
        let path = format!("/api/v1/query?query={}", url_encode(promql));
        let (status, body) = get(self.addr, &path).expect("prometheus answers");
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{body}");
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let labels = r["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                (labels, r["value"][1].as_str().unwrap().to_string())
            })
            .collect()
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.0 GET: status and body.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A template value (3.2 writes them as CDATA sections).
fn tfield(doc: &str, tag: &str) -> Option<String> {
    field(doc, tag).map(|v| {
        v.trim_start_matches("<![CDATA[")
            .trim_end_matches("]]>")
            .to_string()
    })
}

/// `(metric name, id label value) -> value` for every opennebula_* series Prometheus has.
type Series = BTreeMap<(String, String), String>;

fn opennebula_series(p: &Prometheus) -> Series {
    p.query("{__name__=~\"opennebula_.*\"}")
        .into_iter()
        .map(|(labels, value)| {
            let name = labels["__name__"].clone();
            let id = labels
                .get("one_host_id")
                .or_else(|| labels.get("one_vm_id"))
                .or_else(|| labels.get("vnet_id"))
                .cloned()
                .unwrap_or_default();
            ((name, id), value)
        })
        .collect()
}

/// What the exporter must publish, computed from the pool documents.
fn expected_series(c: &mut Client) -> Series {
    let mut want = Series::new();
    let hosts = ok(&c.call("one.hostpool.info", &[s(ADMIN)]));
    let host_docs = elements(&hosts, "HOST");
    want.insert(
        ("opennebula_host_total".into(), String::new()),
        host_docs.len().to_string(),
    );
    for h in host_docs {
        let id = field(h, "ID").unwrap();
        let n = |tag: &str| field(h, tag).unwrap().parse::<i64>().unwrap();
        for (name, value) in [
            ("opennebula_host_state", n("STATE")),
            ("opennebula_host_mem_total_bytes", n("MAX_MEM") * 1024),
            ("opennebula_host_mem_maximum_bytes", n("MAX_MEM") * 1024),
            ("opennebula_host_mem_usage_bytes", n("MEM_USAGE") * 1024),
            ("opennebula_host_cpu_total_ratio", n("MAX_CPU")),
            ("opennebula_host_cpu_maximum_ratio", n("MAX_CPU")),
            ("opennebula_host_cpu_usage_ratio", n("CPU_USAGE")),
            ("opennebula_host_vms", n("RUNNING_VMS")),
        ] {
            want.insert((name.into(), id.clone()), value.to_string());
        }
    }
    let vms = ok(&c.call("one.vmpool.info", &[s(ADMIN), i(-2), i(-1), i(-1), i(-1)]));
    let vm_docs = elements(&vms, "VM");
    want.insert(
        ("opennebula_vm_total".into(), String::new()),
        vm_docs.len().to_string(),
    );
    for v in vm_docs {
        let id = field(v, "ID").unwrap();
        let template = &v[v.find("<TEMPLATE>").unwrap()..];
        let hid = match v.find("<HISTORY>") {
            Some(at) => field(&v[at..], "HID").unwrap(),
            None => "-1".into(),
        };
        let mem: i64 = tfield(template, "MEMORY").unwrap().parse().unwrap();
        let cpu: f64 = tfield(template, "CPU").unwrap().parse().unwrap();
        for (name, value) in [
            ("opennebula_vm_state", field(v, "STATE").unwrap()),
            ("opennebula_vm_lcm_state", field(v, "LCM_STATE").unwrap()),
            ("opennebula_vm_host_id", hid),
            ("opennebula_vm_mem_total_bytes", (mem << 20).to_string()),
            ("opennebula_vm_cpu_ratio", cpu.to_string()),
            (
                "opennebula_vm_cpu_vcpus",
                tfield(template, "VCPU").unwrap_or_else(|| "1".into()),
            ),
            (
                "opennebula_vm_disks",
                template.matches("<DISK>").count().to_string(),
            ),
            (
                "opennebula_vm_nics",
                template.matches("<NIC>").count().to_string(),
            ),
        ] {
            want.insert((name.into(), id.clone()), value);
        }
    }
    let nets = ok(&c.call("one.vnpool.info", &[s(ADMIN), i(-2), i(-1), i(-1)]));
    for n in elements(&nets, "VNET") {
        let id: i32 = field(n, "ID").unwrap().parse().unwrap();
        let info = vn_info(c, id);
        let total = elements(&info, "LEASE").len() as f64;
        let used = field(n, "TOTAL_LEASES").unwrap().parse::<f64>().unwrap();
        want.insert(
            ("opennebula_vnet_free_lease_ratio".into(), id.to_string()),
            ((total - used) / total).to_string(),
        );
    }
    for name in ["opennebula_oned_state", "opennebula_scheduler_state"] {
        want.insert((name.into(), String::new()), "1".into());
    }
    want
}

fn counter(p: &Prometheus, promql: &str) -> f64 {
    p.query(promql)
        .iter()
        .map(|(_, v)| v.parse::<f64>().unwrap())
        .sum()
}

#[test]
fn prometheus_scrapes_the_pools_as_oned_documents_show_them() {
    let metrics_port = free_port();
    let metrics_addr: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let d = Daemon::start(
        "prometheus",
        &["--metrics-listen", &metrics_addr.to_string()],
    );
    let mut c = d.client();

    let h0 = allocate_dummy_host(&mut c, "node-a");
    let _h1 = allocate_dummy_host(&mut c, "node-b");
    let net = ok(&c.call(
        "one.vn.allocate",
        &[
            s(ADMIN),
            s("NAME = pub\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 10.9.0.1 ]\nLEASES = [ IP = 10.9.0.2 ]\nLEASES = [ IP = 10.9.0.3 ]\nLEASES = [ IP = 10.9.0.4 ]\n"),
        ],
    ));
    // Running VMs: one with two disks, two VCPUs and a NIC.
    let a = allocate_vm(
        &mut c,
        &format!("NAME = a\nCPU = 0.5\nVCPU = 2\nMEMORY = 256\nDISK = [ SOURCE = /dev/null, TARGET = hda ]\nDISK = [ TYPE = swap, SIZE = 64 ]\nNIC = [ NETWORK_ID = {net} ]\n"),
    );
    let b = allocate_vm(&mut c, "NAME = b\nCPU = 1\nMEMORY = 128\n");
    // On hold, and pending for good (no host matches).
    let held = allocate_vm(&mut c, "NAME = held\nCPU = 1\nMEMORY = 64\n");
    ok(&c.call("one.vm.action", &[s(ADMIN), s("hold"), i(held)]));
    let pending = allocate_vm(
        &mut c,
        "NAME = nowhere\nCPU = 1\nMEMORY = 64\nREQUIREMENTS = \"ID = 9999\"\n",
    );
    // Finished: DONE VMs are not published.
    let done = allocate_vm(&mut c, "NAME = done\nCPU = 1\nMEMORY = 64\n");
    wait_vm_state(&mut c, a, ("3", "3"));
    wait_vm_state(&mut c, b, ("3", "3"));
    wait_vm_state(&mut c, done, ("3", "3"));
    ok(&c.call("one.vm.action", &[s(ADMIN), s("finalize"), i(done)]));
    wait_vm_state(&mut c, done, ("6", "0"));
    // Suspended.
    let susp = allocate_vm(&mut c, "NAME = susp\nCPU = 1\nMEMORY = 64\n");
    wait_vm_state(&mut c, susp, ("3", "3"));
    ok(&c.call("one.vm.action", &[s(ADMIN), s("suspend"), i(susp)]));
    wait_vm_state(&mut c, susp, ("5", "0"));
    assert_eq!(vm_state(&mut c, pending), ("1".into(), "0".into()));
    assert_eq!(vm_state(&mut c, held), ("2".into(), "0".into()));

    // Both hosts monitored before the pools are compared.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pool = ok(&c.call("one.hostpool.info", &[s(ADMIN)]));
        if pool.matches("<STATE>2</STATE>").count() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "hosts not monitored: {pool}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let dir = temp_dir("prometheus-server");
    let p = Prometheus::start(&dir, metrics_addr);

    // Prometheus scrapes every second: wait until its latest samples are the pools now.
    let deadline = Instant::now() + Duration::from_secs(45);
    let (mut want, mut got);
    loop {
        want = expected_series(&mut c);
        got = opennebula_series(&p);
        if want == got || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let differences: Vec<String> = want
        .keys()
        .chain(got.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| want.get(*k) != got.get(*k))
        .map(|k| {
            format!(
                "{k:?}: pools {:?}, prometheus {:?}",
                want.get(k),
                got.get(k)
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "prometheus ({}) differs from the pools:\n{}",
        p.dir.display(),
        differences.join("\n")
    );
    // The figures a reader would check by eye.
    assert_eq!(got[&("opennebula_vm_total".into(), String::new())], "5");
    assert_eq!(got[&("opennebula_vm_disks".into(), a.to_string())], "2");
    assert_eq!(got[&("opennebula_vm_nics".into(), a.to_string())], "1");
    assert_eq!(
        got[&("opennebula_vm_host_id".into(), held.to_string())],
        "-1"
    );
    assert_eq!(
        got[&("opennebula_vnet_free_lease_ratio".into(), net.clone())],
        "0.75"
    );
    assert!(!got.contains_key(&("opennebula_vm_state".into(), done.to_string())));
    let _ = h0;

    // stratusd's own instruments, as Prometheus stored them.
    assert_eq!(counter(&p, "up{job=\"stratusd\"}"), 1.0);
    assert!(
        counter(
            &p,
            "stratusd_xmlrpc_requests_total{method=\"one.vm.allocate\"}"
        ) >= 6.0,
        "allocations counted"
    );
    assert!(
        counter(
            &p,
            "stratusd_xmlrpc_request_duration_seconds_count{method=\"one.hostpool.info\"}"
        ) >= 1.0
    );
    assert!(counter(&p, "stratusd_sqlite_commit_duration_seconds_count") >= 6.0);
    assert!(
        counter(
            &p,
            "stratusd_driver_operations_total{driver=\"vmm\",operation=\"deploy\",outcome=\"ok\"}"
        ) >= 4.0
    );
    assert!(
        counter(
            &p,
            "stratusd_driver_operations_total{driver=\"im\",operation=\"monitor\",host=\"node-a\"}"
        ) >= 1.0
    );
    // An unknown method and a missing VM: failures per code, unknown names folded together.
    let before = counter(&p, "stratusd_xmlrpc_failures_total{code=\"1024\"}");
    let e = c.call("one.vm.info", &[s(ADMIN), i(4242)]);
    assert!(rpc_result(&e).is_err());
    let _ = c.call("no.such.method", &[s(ADMIN)]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = counter(
            &p,
            "stratusd_xmlrpc_failures_total{method=\"one.vm.info\",code=\"1024\"}",
        );
        let unknown = counter(&p, "stratusd_xmlrpc_failures_total{method=\"unknown\"}");
        if now >= before + 1.0 && unknown >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "failures not counted: {now} {unknown}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(p
        .query("{__name__=\"stratusd_xmlrpc_requests_total\",method=\"no.such.method\"}")
        .is_empty());
    // This client's keep-alive connection is open.
    assert!(counter(&p, "stratusd_connections_open{listener=\"xmlrpc\"}") >= 1.0);
    // Every scrape Prometheus made was timed, and its read-lock part too (that one before the
    // text is encoded, so a scrape's text already counts its own snapshot).
    let scrapes = counter(&p, "stratusd_metrics_scrape_duration_seconds_count");
    assert!(scrapes >= 1.0);
    assert!(counter(&p, "stratusd_metrics_snapshot_duration_seconds_count") >= scrapes + 1.0);
    let scrape = counter(&p, "scrape_duration_seconds{job=\"stratusd\"}");
    eprintln!(
        "prometheus: scrape of stratusd took {:.1} ms",
        scrape * 1000.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_metrics_listener_answers_only_get_metrics() {
    let metrics_port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{metrics_port}").parse().unwrap();
    let _d = Daemon::start("metrics-listener", &["--metrics-listen", &addr.to_string()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = get(addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("# TYPE opennebula_host_total gauge"),
        "{body}"
    );
    assert!(body.contains("opennebula_vm_total 0"), "{body}");
    assert_eq!(get(addr, "/").unwrap().0, 404);
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 405") || answer.starts_with("HTTP/1.1 405"),
        "{answer}"
    );
}

/// Series of one family as Prometheus stored them: labels but `__name__`, `instance`, `job`
/// → value.
fn family(p: &Prometheus, name: &str) -> BTreeMap<String, String> {
    p.query(name)
        .into_iter()
        .map(|(labels, v)| {
            let key: Vec<String> = labels
                .into_iter()
                .filter(|(k, _)| !["__name__", "instance", "job"].contains(&k.as_str()))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            (key.join(","), v)
        })
        .collect()
}

#[test]
fn prometheus_scrapes_the_volume_service_as_its_rest_api_describes_it() {
    use common::marketplace::{image_bytes, sha1_hex, Marketplace};
    const IMAGE: &str = "PM1EEkPiBx87_uLj2-sdybSI-Xp";
    let mp = Marketplace::start();
    let data = image_bytes(3 * 1024 * 1024 + 512, 9);
    mp.add_image(IMAGE, &data, true, data.len() as u64, &sha1_hex(&data));
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut site = pdisk::Site::start(
        "prometheus-volumes",
        &["--metrics-listen", &metrics_addr.to_string()],
    );
    site.simulated_host("sim-prom");
    let (alice, bob, su) = (site.alice(), site.bob(), site.superuser());

    // Volumes of two users; one deleted (into the quarantine); one a VM's disk (static
    // mount), one hot-plugged into it; a clone of a cached Marketplace image.
    let a1 = alice.create("1", "a1");
    let a2 = alice.create("2", "a2");
    let hot = alice.create("1", "hot");
    let b3 = bob.create("3", "b3");
    let gone = bob.create("4", "gone");
    assert_eq!(bob.delete(&format!("/disks/{gone}/")).status, 200);
    let template = format!(
        "NAME = \"vols\"\nMEMORY = 64\nCPU = 0.1\n\
         DISK = [ SOURCE = \"{}\", TARGET = vda, DRIVER = raw ]\n\
         DISK = [ SOURCE = pdisk:https://pdisk.example.org:8445/{a2}, TARGET = vdb ]\n",
        mp.source(IMAGE)
    );
    let (vm, doc) = site.run_vm("alice", &template);
    assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
    let r = alice.post_form(
        &format!("/disks/{hot}/mounts/"),
        &[("node", "sim-prom"), ("vm_id", &vm.to_string())],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let clone = alice.post_form(&format!("/disks/{IMAGE}"), &[]);
    assert_eq!(clone.status, 200, "{}", clone.body);
    let origin = clone.json["identifier"]
        .as_str()
        .unwrap()
        .trim_start_matches("snapshot:")
        .to_string();
    let _ = (a1, b3);

    // What the REST API says, as the volume families count it.
    let list = su.get("/disks/");
    assert_eq!(list.status, 200, "{}", list.body);
    let mut volumes: BTreeMap<String, i64> = BTreeMap::new();
    let mut bytes: BTreeMap<String, i64> = BTreeMap::new();
    let (mut static_mounts, mut hotplug_mounts) = (0, 0);
    for v in list.json.as_array().unwrap() {
        let uuid = v["uuid"].as_str().unwrap();
        let d = su.get(&format!("/disks/{uuid}"));
        assert_eq!(d.status, 200, "{}", d.body);
        let cached = uuid == origin;
        let backend = if cached { "image_cache" } else { "file" };
        let state = if d.json["quarantine"].as_str().unwrap_or_default().is_empty() {
            "ready"
        } else {
            "quarantined"
        };
        let key = format!(
            "backend={backend},state={state},type={}",
            d.json["type"].as_str().unwrap()
        );
        *volumes.entry(key.clone()).or_default() += 1;
        if !cached {
            let size: i64 = d.json["size"].as_str().unwrap().parse().unwrap();
            *bytes.entry(key).or_default() += size << 30;
        }
        let mounts = su.get(&format!("/disks/{uuid}/mounts/"));
        for m in mounts.json.as_array().unwrap() {
            if m["device"] == "static" {
                static_mounts += 1;
            } else {
                hotplug_mounts += 1;
            }
        }
    }
    assert!(volumes.contains_key("backend=file,state=quarantined,type=DATA_IMAGE_RAW_READ_WRITE"));
    assert!(volumes.contains_key("backend=image_cache,state=ready,type=MACHINE_IMAGE_ORIGIN"));
    assert!(volumes.contains_key("backend=file,state=ready,type=MACHINE_IMAGE_LIVE"));
    assert_eq!((static_mounts, hotplug_mounts), (1, 1));
    let as_text = |m: BTreeMap<String, i64>| -> BTreeMap<String, String> {
        m.into_iter().map(|(k, v)| (k, v.to_string())).collect()
    };
    let want_volumes = as_text(volumes);
    let want_bytes = as_text(bytes);
    let want_mounts: BTreeMap<String, String> = [
        ("kind=hotplug".to_string(), hotplug_mounts.to_string()),
        ("kind=static".to_string(), static_mounts.to_string()),
    ]
    .into();
    let cached_file = site.dir().join("cache/images").join(IMAGE);
    let cache_bytes = {
        use std::os::unix::fs::MetadataExt;
        (std::fs::metadata(&cached_file).unwrap().blocks() * 512).to_string()
    };

    let prom = Prometheus::start(site.dir(), metrics_addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // A series once seen stays, at 0 (the volumes that were `creating` a moment).
        let nonzero = |mut m: BTreeMap<String, String>| {
            m.retain(|_, v| v != "0");
            m
        };
        let got = (
            nonzero(family(&prom, "stratusd_volumes")),
            nonzero(family(&prom, "stratusd_volume_bytes")),
            family(&prom, "stratusd_volume_mounts"),
            family(&prom, "stratusd_image_cache_images"),
            family(&prom, "stratusd_image_cache_bytes"),
        );
        let want = (
            want_volumes.clone(),
            want_bytes.clone(),
            want_mounts.clone(),
            BTreeMap::from([(String::new(), "1".to_string())]),
            BTreeMap::from([(String::new(), cache_bytes.clone())]),
        );
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus has\n{got:#?}\nthe REST API says\n{want:#?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The cached image's origin adds no volume bytes: its file is counted once, by the cache.
    assert!(!want_bytes.keys().any(|k| k.contains("image_cache")));
}
