//! A StratusLab site on this machine, used as a site administrator and its users would
//! (`cargo test --test real_site`; docs/sites.md). `scripts/demo-site.sh up` builds it: two
//! nodes in network namespaces, each with its own sshd, libvirtd (QEMU, TCG) and a private VM
//! directory the front end reaches only over SSH; stratusd with its HTTPS front door; a test
//! Marketplace serving the test guest (which boots by itself, takes its address by DHCP and
//! runs an SSH server); dnsmasq serving stratusd's DHCP host file on the nodes' bridge; the
//! built-in persistent disk service, and a third node (disabled but for the persistent-disk
//! step) that shares the front end's file system, as volumes need.
//!
//! The steps run in order on that one site, each printing PASS or FAIL:
//! * the real client (`stratus-run-instance`) starts a guest and root logs into it with SSH
//!   (the time from the command to the login is printed as a figure); its disks are on the
//!   node only, the Marketplace image in the node's cache with its SHA-1 stamp;
//! * StratusLab's own acceptance tests (`stratuslab/Testor.py` of the client, run by
//!   `tests/real_site/testor-run.py`) that fit a site on one machine; the others are listed
//!   with the reason, and the same behaviour is checked by a step of this suite; among them
//!   the persistent-disk tests against the built-in pdisk service;
//! * live and cold migration of a running guest between the nodes (its serial console keeps
//!   counting: it was not restarted), with its disks copied since the nodes share nothing;
//! * a node whose libvirt cannot be reached (its link cut): ERROR, its VMs UNKNOWN; back, the
//!   guest still running is RUNNING again, the one that vanished meanwhile is reported;
//! * `scripts/demo-site.sh down` leaves nothing behind.
//!
//! Prerequisites (scripts/setup.sh --test and scripts/setup-qemu.sh): QEMU, libvirtd, sshd,
//! dnsmasq, the StratusLab client, the test guest. Root is needed (namespaces, bridges).

mod common;

use common::{i, s, unescape, Client, Param};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// What `cargo test NAME` must match to run this suite.
const SUITE: &str = "real_site";
/// A guest boots, takes its lease and starts dropbear in 20-60 s under TCG on a loaded machine.
const SSH_WITHIN: Duration = Duration::from_secs(400);
const STATE_WITHIN: Duration = Duration::from_secs(300);

const VM_ACTIVE: &str = "3";
const VM_DONE: &str = "6";
const VM_FAILED: &str = "7";
const LCM_RUNNING: &str = "3";
const LCM_UNKNOWN: &str = "16";
const HOST_MONITORED: &str = "2";
const HOST_ERROR: &str = "3";

/// The site `demo-site.sh up` made, as its `site.json` describes it.
struct Site {
    dir: PathBuf,
    info: serde_json::Value,
    env: Vec<(String, String)>,
    xmlrpc: SocketAddr,
    oneadmin: String,
    up: bool,
}

fn demo_site(dir: &Path, action: &str, extra_env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("bash");
    c.arg(Path::new(REPO).join("scripts/demo-site.sh"))
        .arg(action)
        .arg("--dir")
        .arg(dir)
        .env("STRATUSD_BIN", env!("CARGO_BIN_EXE_stratusd"));
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.output().expect("bash runs scripts/demo-site.sh")
}

impl Site {
    fn up() -> Site {
        let dir = std::env::temp_dir().join(format!("stratusd-real-site-{}", std::process::id()));
        let started = Instant::now();
        // Monitoring every 3 s: a cut node is found quickly.
        let out = demo_site(&dir, "up", &[("DEMO_SITE_MONITORING", "3")]);
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "demo-site.sh up failed:\n{text}");
        eprintln!(
            "real_site: site up in {:.1} s\n{text}",
            started.elapsed().as_secs_f64()
        );
        let info: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("site.json")).unwrap())
                .expect("site.json");
        let env = std::fs::read_to_string(dir.join("client.env"))
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                let path = std::env::var("PATH").unwrap_or_default();
                (k.to_string(), v.replace("$PATH", &path))
            })
            .collect();
        let endpoint = info["endpoint"].as_str().unwrap();
        let xmlrpc = endpoint
            .trim_start_matches("http://")
            .trim_end_matches("/RPC2")
            .parse()
            .unwrap();
        let auth = std::fs::read_to_string(info["oneadmin_auth"].as_str().unwrap()).unwrap();
        Site {
            dir,
            info,
            env,
            xmlrpc,
            oneadmin: auth.lines().next().unwrap().trim().to_string(),
            up: true,
        }
    }

    fn get(&self, key: &str) -> String {
        self.info[key].as_str().unwrap_or_default().to_string()
    }

    fn nodes(&self) -> Vec<(String, String)> {
        self.info["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap().to_string(),
                    n["netns"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn rpc(&self) -> Client {
        Client::connect(self.xmlrpc)
    }

    /// `method(oneadmin session, params...)`, unescaped; panics on a failure answer.
    fn call(&self, method: &str, params: Vec<Param>) -> String {
        let mut all = vec![s(&self.oneadmin)];
        all.extend(params);
        let answer = self.rpc().call(method, &all);
        assert!(
            answer.contains("<boolean>1</boolean>"),
            "{method}: {answer}"
        );
        unescape(&answer)
    }

    fn vm(&self, id: i32) -> String {
        self.call("one.vm.info", vec![i(id)])
    }

    /// A command of the StratusLab client, with the site's client environment.
    fn client(&self, program: &str, args: &[&str]) -> Output {
        self.client_with_input(program, args, "")
    }

    /// The same, with `input` on its standard input.
    fn client_with_input(&self, program: &str, args: &[&str], input: &str) -> Output {
        let mut c = Command::new(program);
        c.args(args).env_clear();
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.env("LANG", "C")
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("{program} does not run: {e} (scripts/setup.sh --test)"));
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input.as_bytes());
        }
        child.wait_with_output().expect("the client command ends")
    }

    /// The client's virtualenv interpreter (what runs Testor).
    fn client_python(&self) -> PathBuf {
        let path = &self.env.iter().find(|(k, _)| k == "PATH").unwrap().1;
        path.split(':')
            .map(|d| Path::new(d).join("python"))
            .find(|p| p.to_string_lossy().contains("stratuslab-client-14.6.0"))
            .expect("the client's virtualenv on the site's PATH")
    }

    /// Runs `script` on a node over the site's SSH, as stratusd does.
    fn on_node(&self, node: &str, script: &str) -> String {
        let out = Command::new(self.get("ssh"))
            .arg(node)
            .arg(script)
            .output()
            .expect("ssh runs");
        assert!(
            out.status.success(),
            "{script} on {node}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// `ssh root@<ip> <command>` with the client's key, as a user logs in.
    fn guest_ssh(&self, ip: &str, command: &str) -> Option<String> {
        let out = self.client(
            &format!("{}/ssh", self.get("bin")),
            &[
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "-o",
                "StrictHostKeyChecking=no",
                &format!("root@{ip}"),
                command,
            ],
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
    }

    /// Waits for the first successful login; the time it took.
    fn wait_ssh(&self, ip: &str, since: Instant) -> Duration {
        loop {
            if self.guest_ssh(ip, "true").is_some() {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < SSH_WITHIN,
                "no SSH login into {ip} within {SSH_WITHIN:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn wait_vm(&self, id: i32, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STATE_WITHIN;
        loop {
            let doc = self.vm(id);
            if done(&doc) {
                return doc;
            }
            assert!(
                Instant::now() < deadline,
                "VM {id}: {what} not reached within {STATE_WITHIN:?}: {doc}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_running(&self, id: i32) -> String {
        self.wait_vm(id, "RUNNING", |doc| {
            assert_ne!(
                field(doc, "STATE").as_deref(),
                Some(VM_FAILED),
                "VM {id} FAILED: {doc}"
            );
            states(doc) == (VM_ACTIVE.into(), LCM_RUNNING.into())
        })
    }

    fn wait_host(&self, name: &str, state: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let pool = self.call("one.hostpool.info", vec![]);
            let host = hosts(&pool).remove(name).unwrap_or_default();
            if field(&host, "STATE").as_deref() == Some(state) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "host {name} not in state {state} within {within:?}: {host}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every VM but `keep` has ended (DONE): a killed VM still counts against the
    /// user's quota until its clean-up is over, and the next step starts VMs of its own.
    fn settle(&self, keep: Option<i32>) {
        let deadline = Instant::now() + STATE_WITHIN;
        loop {
            let pool = self.call("one.vmpool.info", vec![i(-2), i(-1), i(-1), i(-1)]);
            let alive: Vec<String> = common::elements(&pool, "VM")
                .into_iter()
                .filter_map(|vm| field(vm, "ID"))
                .filter(|id| Some(id.as_str()) != keep.map(|k| k.to_string()).as_deref())
                .collect();
            if alive.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "VMs {alive:?} not ended within {STATE_WITHIN:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn host_id(&self, name: &str) -> i32 {
        let pool = self.call("one.hostpool.info", vec![]);
        field(&hosts(&pool)[name], "ID").unwrap().parse().unwrap()
    }

    /// The serial console of VM `id` on `node`.
    fn console(&self, node: &str, id: i32) -> String {
        self.on_node(
            node,
            &format!(
                "cat {}/{id}/console.log 2>/dev/null || true",
                self.get("vm_dir")
            ),
        )
    }

    fn down(&mut self) -> Output {
        self.up = false;
        demo_site(&self.dir, "down", &[])
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if self.up {
            let out = self.down();
            if !out.status.success() {
                eprintln!(
                    "real_site: demo-site.sh down: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// The text of the first `<tag>` element.
fn field(doc: &str, tag: &str) -> Option<String> {
    common::field(doc, tag).map(|v| {
        v.trim_start_matches("<![CDATA[")
            .trim_end_matches("]]>")
            .to_string()
    })
}

/// The text of the last `<tag>` element (the current HISTORY record's fields).
fn last_field(doc: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = doc.rfind(&open)? + open.len();
    let end = doc[start..].find(&format!("</{tag}>"))? + start;
    Some(
        doc[start..end]
            .trim_start_matches("<![CDATA[")
            .trim_end_matches("]]>")
            .to_string(),
    )
}

fn states(doc: &str) -> (String, String) {
    (
        field(doc, "STATE").unwrap_or_default(),
        field(doc, "LCM_STATE").unwrap_or_default(),
    )
}

/// Host documents of a host pool by name.
fn hosts(pool: &str) -> BTreeMap<String, String> {
    common::elements(pool, "HOST")
        .into_iter()
        .filter_map(|h| Some((field(h, "NAME")?, h.to_string())))
        .collect()
}

/// The last `STRATUSD-TICK <n>` of a console.
fn last_tick(console: &str) -> Option<u64> {
    console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("STRATUSD-TICK "))
        .filter_map(|n| n.trim().parse().ok())
        .next_back()
}

/// The console of a guest that has just moved to `node`, once it shows a tick there: the guest
/// prints one a second, but its first line on the new node can come up to a second after
/// it answers SSH (a restored guest answered SSH before its next tick once, and the console
/// read found none).
fn console_with_tick(site: &Site, node: &str, id: i32) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let console = site.console(node, id);
        if last_tick(&console).is_some() || Instant::now() >= deadline {
            return console;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn first_tick(console: &str) -> Option<u64> {
    console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("STRATUSD-TICK "))
        .filter_map(|n| n.trim().parse().ok())
        .next()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `stratus-run-instance` output: the VM ids and addresses.
fn started(out: &Output) -> Vec<(i32, String)> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut vms = Vec::new();
    let mut id = None;
    for line in stdout.lines() {
        if let Some(rest) = line.split("(vm ID: ").nth(1) {
            id = rest.trim_end_matches(')').trim().parse().ok();
        }
        if let Some(ip) = line.trim().split("ip: ").nth(1) {
            if let Some(id) = id.take() {
                vms.push((id, ip.trim().to_string()));
            }
        }
    }
    vms
}

/// What later steps use of earlier ones.
#[derive(Default)]
struct Shared {
    /// The guest of the first step: (VM id, address).
    guest: Option<(i32, String)>,
    figures: Vec<String>,
    testor: Vec<(String, String)>,
}

/// The client starts a guest; root logs into it over the site's network.
fn client_guest_and_ssh(site: &Site, shared: &mut Shared) {
    let begun = Instant::now();
    let out = site.client("stratus-run-instance", &[&site.get("image_id")]);
    assert!(out.status.success(), "stratus-run-instance: {}", text(&out));
    let vms = started(&out);
    assert_eq!(vms.len(), 1, "{}", text(&out));
    let (id, ip) = vms[0].clone();
    let doc = site.wait_running(id);
    let to_running = begun.elapsed();
    let to_login = site.wait_ssh(&ip, begun);
    let host = last_field(&doc, "HOSTNAME").unwrap();
    shared.figures.push(format!(
        "stratus-run-instance -> RUNNING {:.1} s, -> first SSH login as root {:.1} s (VM {id} on node {host}, image download and transfer to the node included)",
        to_running.as_secs_f64(),
        to_login.as_secs_f64()
    ));
    // The guest's own view: its address came from DHCP, its key from the context disk.
    let inside = site
        .guest_ssh(&ip, "ip -4 addr show eth0; cat /root/.ssh/authorized_keys")
        .unwrap();
    assert!(inside.contains(&format!("inet {ip}/24")), "{inside}");
    let key = std::fs::read_to_string(Path::new(&site.get("client_home")).join(".ssh/id_rsa.pub"))
        .unwrap();
    assert!(
        inside.contains(key.split_whitespace().nth(1).unwrap()),
        "{inside}"
    );
    // stratus-connect-instance logs in the same way (its shell reads our input).
    let out = site.client_with_input(
        "stratus-connect-instance",
        &[&id.to_string()],
        "echo connected-to-$(hostname)\nexit\n",
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("connected-to-"),
        "stratus-connect-instance: {}",
        text(&out)
    );
    // Not shared: the disks are on the node, the front end has only its records.
    let vm_dir = site.get("vm_dir");
    let front = Path::new(&site.get("front_end")).join(id.to_string());
    assert!(front.join("disks.json").exists() && front.join("context.sh").exists());
    assert!(!front.join("images").exists(), "no disk on the front end");
    assert_eq!(
        std::fs::read_dir(&vm_dir).unwrap().count(),
        0,
        "the front end sees nothing of the nodes' VM directories"
    );
    let listing = site.on_node(
        &host,
        &format!(
            "ls {vm_dir}/{id}/images; cat {vm_dir}/cache/images/{}.sha1",
            site.get("image_id")
        ),
    );
    for disk in ["disk.0", "disk.1", "disk.2"] {
        assert!(listing.lines().any(|l| l == disk), "{listing}");
    }
    let log = std::fs::read_to_string(Path::new(&site.get("front_end")).join(format!("{id}.log")))
        .unwrap();
    assert!(log.contains(&format!("cached on node {host}")), "{log}");
    let sha1 = listing
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(log.contains(&format!("verified (SHA-1 {sha1})")), "{log}");
    shared.guest = Some((id, ip));
}

/// One of StratusLab's acceptance tests, run as stratus-test ran it.
fn testor(site: &Site, test: &str, shared: &mut Shared) {
    let config = site.dir.join("testor.cfg");
    std::fs::write(&config, "[default]\nquota_cpu = 2\n").unwrap();
    let venv_python = site.client_python();
    let runner = Path::new(REPO).join("tests/real_site/testor-run.py");
    let begun = Instant::now();
    let out = site.client(
        venv_python.to_str().unwrap(),
        &[
            runner.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--requested-ip-address",
            &site.get("requested_ip"),
            test,
        ],
    );
    let report = text(&out);
    let outcome = if out.status.success() {
        "passed"
    } else {
        "FAILED"
    };
    shared.testor.push((
        test.to_string(),
        format!("{outcome} in {:.0} s", begun.elapsed().as_secs_f64()),
    ));
    assert!(out.status.success(), "Testor {test}: {report}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{test} ")) && stderr.contains("OK"),
        "{report}"
    );
}

/// Testor's runInstanceLocalNetworkTest, the same steps on this site: a guest on the local
/// network (`--local-ip`) answers ping and SSH from the front end; from inside it pings the
/// front end (Testor pings www.google.com, which this machine cannot reach), then it is killed.
fn local_network(site: &Site, shared: &mut Shared) {
    let out = site.client(
        "stratus-run-instance",
        &["--local-ip", &site.get("image_id")],
    );
    assert!(
        out.status.success(),
        "stratus-run-instance --local-ip: {}",
        text(&out)
    );
    let vms = started(&out);
    assert_eq!(vms.len(), 1, "{}", text(&out));
    let (id, ip) = vms[0].clone();
    let net = site.get("net");
    let host: u8 = ip.rsplit('.').next().unwrap().parse().unwrap();
    assert!(
        ip.starts_with(&format!("{net}.")) && (150..200).contains(&host),
        "a lease of the local network: {ip}"
    );
    site.wait_running(id);
    let begun = Instant::now();
    site.wait_ssh(&ip, begun);
    let ping = Command::new("ping")
        .args(["-c", "2", "-W", "5", &ip])
        .output()
        .expect("ping runs");
    assert!(
        ping.status.success(),
        "the front end pings {ip}: {}",
        text(&ping)
    );
    let gateway = format!("{net}.1");
    let inside = site.guest_ssh(&ip, &format!("ping -c 2 -W 5 {gateway} && echo pinged"));
    assert!(
        inside.as_deref().unwrap_or_default().contains("pinged"),
        "the guest pings {gateway}: {inside:?}"
    );
    let out = site.client("stratus-kill-instance", &[&id.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    site.wait_vm(id, "DONE", |doc| {
        field(doc, "STATE").as_deref() == Some(VM_DONE)
    });
    shared.testor.push((
        "runInstanceLocalNetworkTest".into(),
        "not run as shipped (pings www.google.com from the guest); its steps passed here with the front end as the host pinged".into(),
    ));
}

/// Testor's oneReportsErrorViaXmlRpcTest, the same steps on this site: a manifest whose SHA-1
/// does not match its image is uploaded to the Marketplace (Testor takes it from a
/// `manifest-invalid-sha1.xml` the client package does not ship), a VM of it is started and
/// fails, and the client shows the error message the cloud set in the VM's template.
fn error_via_xmlrpc(site: &Site, shared: &mut Shared) {
    let good = site.get("image_id");
    let bad_id = "InvalidSha1InvalidSha1Inval";
    let manifest = std::fs::read_to_string(
        site.dir
            .join("marketplace/metadata")
            .join(&good)
            .join("site.xml"),
    )
    .unwrap()
    .replace(&good, bad_id);
    let sha1 = manifest
        .split("<slreq:value>")
        .nth(1)
        .and_then(|v| v.split("</slreq:value>").next())
        .unwrap()
        .to_string();
    let manifest = manifest.replace(&sha1, &"0".repeat(40));
    let upload = Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request; \
             r = urllib.request.urlopen(urllib.request.Request(sys.argv[1] + '/metadata', \
             data=sys.stdin.buffer.read(), headers={'Content-Type': 'application/xml'})); \
             print(r.status)",
            &site.get("marketplace"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(manifest.as_bytes())?;
            child.wait_with_output()
        })
        .expect("python3 runs");
    assert!(
        upload.status.success(),
        "upload to the Marketplace: {}",
        text(&upload)
    );
    let out = site.client("stratus-run-instance", &[bad_id]);
    assert!(out.status.success(), "stratus-run-instance: {}", text(&out));
    let (id, _) = started(&out)[0].clone();
    let doc = site.wait_vm(id, "FAILED", |doc| {
        field(doc, "STATE").as_deref() == Some(VM_FAILED)
    });
    let message = field(&doc, "MESSAGE").expect("TEMPLATE/ERROR/MESSAGE set");
    assert!(!message.trim().is_empty(), "{doc}");
    let out = site.client("stratus-describe-instance", &["-v", &id.to_string()]);
    let described = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && described.contains(message.trim()),
        "stratus-describe-instance shows the error ({message}): {}",
        text(&out)
    );
    let out = site.client("stratus-kill-instance", &[&id.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    shared.testor.push((
        "oneReportsErrorViaXmlRpcTest".into(),
        format!("not run as shipped (manifest-invalid-sha1.xml is not in the package); its steps passed here: \"{}\"", message.trim()),
    ));
}

/// How many HISTORY records a VM document has.
fn history_records(doc: &str) -> usize {
    doc.matches("<HISTORY>").count()
}

/// What a file (a VM's log) gained past its first `from` bytes.
fn log_since(path: &Path, from: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let from = usize::try_from(from).unwrap_or(usize::MAX).min(text.len());
    String::from_utf8_lossy(&text[from..]).into_owned()
}

/// The first step's guest, the node it runs on and the other node.
struct MigrationPlan {
    id: i32,
    ip: String,
    from: String,
    to: String,
}

impl MigrationPlan {
    fn of_first_guest(site: &Site, shared: &Shared) -> MigrationPlan {
        let (id, ip) = shared.guest.clone().expect("the first step's guest");
        let doc = site.wait_running(id);
        let from = last_field(&doc, "HOSTNAME").unwrap();
        let to = site
            .nodes()
            .into_iter()
            .map(|n| n.0)
            .find(|n| *n != from)
            .unwrap();
        MigrationPlan { id, ip, from, to }
    }

    /// `one.vm.migrate` (live or not) and the wait until the VM is RUNNING on the other
    /// node: its document and how long that took. A migration that failed ends the step at
    /// once, with the VM's error and its log.
    fn migrate(&self, site: &Site, live: bool) -> (String, Duration) {
        let id = self.id;
        let before = site.vm(id);
        let (records, error_before) = (history_records(&before), field(&before, "MESSAGE"));
        let vm_log = Path::new(&site.get("front_end")).join(format!("{id}.log"));
        let logged = std::fs::metadata(&vm_log).map_or(0, |m| m.len());
        let begun = Instant::now();
        site.call(
            "one.vm.migrate",
            vec![i(id), i(site.host_id(&self.to)), Param::B(live)],
        );
        let doc = site.wait_vm(id, "RUNNING on the other node", |doc| {
            assert_ne!(
                field(doc, "STATE").as_deref(),
                Some(VM_FAILED),
                "VM {id} FAILED: {doc}"
            );
            let running = states(doc) == (VM_ACTIVE.into(), LCM_RUNNING.into());
            let host = last_field(doc, "HOSTNAME").unwrap_or_default();
            let since = log_since(&vm_log, logged);
            // 3.2 after a failed migration: RUNNING on the source again, in a new history
            // record after the destination's closed one, and the error in TEMPLATE/ERROR.
            let back = running && host == self.from && history_records(doc) > records + 1;
            let error = field(doc, "MESSAGE");
            assert!(
                !back && error == error_before && !since.contains("][E]:"),
                "VM {id}: the {} migration {} -> {} failed after {:.1} s: {}\n--- its log since the request\n{since}",
                if live { "live" } else { "cold" },
                self.from,
                self.to,
                begun.elapsed().as_secs_f64(),
                error.unwrap_or_else(|| "no TEMPLATE/ERROR".into()),
            );
            running && host == self.to
        });
        (doc, begun.elapsed())
    }

    /// The file the live migration's guest wrote is still on its root disk, and the node it
    /// left keeps nothing of the VM.
    fn check_moved(&self, site: &Site) {
        let written = site
            .guest_ssh(
                &self.ip,
                "mount /dev/vda1 /mnt/root && cat /mnt/root/migrated; umount /mnt/root",
            )
            .unwrap();
        assert_eq!(written.trim(), "live");
        let vm_dir = site.get("vm_dir");
        let left = site.on_node(
            &self.from,
            &format!("ls -d {vm_dir}/{} 2>/dev/null || echo gone", self.id),
        );
        assert_eq!(left.trim(), "gone", "the old node keeps nothing of the VM");
    }
}

/// Live migration to the other node: the guest keeps running (and counting), its disks come
/// along, the old node keeps nothing.
fn live_migration(site: &Site, shared: &mut Shared) {
    let plan = MigrationPlan::of_first_guest(site, shared);
    let (id, ip, from, to) = (plan.id, &plan.ip, &plan.from, &plan.to);
    // A file the guest writes to its root disk must survive the copy of the disks.
    site.guest_ssh(ip, "mkdir -p /mnt/root && mount /dev/vda1 /mnt/root && echo live > /mnt/root/migrated && sync && umount /mnt/root")
        .expect("the guest writes its disk");
    let before = last_tick(&site.console(from, id)).expect("the guest counts");
    let uptime_before = site.guest_ssh(ip, "cut -d' ' -f1 /proc/uptime").unwrap();
    let (doc, took) = plan.migrate(site, true);
    assert_eq!(field(&doc, "STATE").as_deref(), Some(VM_ACTIVE));
    let console = console_with_tick(site, to, id);
    let first = first_tick(&console).expect("the guest counts on the new node");
    assert!(
        first > before,
        "the guest went on counting ({before} then {first}): {console}"
    );
    let uptime_after = site.guest_ssh(ip, "cut -d' ' -f1 /proc/uptime").unwrap();
    let (b, a): (f64, f64) = (
        uptime_before.trim().parse().unwrap(),
        uptime_after.trim().parse().unwrap(),
    );
    assert!(a > b, "uptime {b} then {a}: the guest was restarted");
    plan.check_moved(site);
    // While libvirt copied, the daemon logged the job's figures (memory and disks transferred
    // and remaining), and a summary at the end.
    let log = std::fs::read_to_string(site.get("daemon_log")).unwrap();
    let domain = format!("domain=one-{id}");
    let progress = log
        .lines()
        .filter(|l| l.contains("live migration in progress: memory") && l.contains(&domain))
        .count();
    assert!(
        progress > 0,
        "no live migration progress for {domain} in the daemon log"
    );
    let summary = log
        .lines()
        .find(|l| l.contains("live migration watched") && l.contains(&domain))
        .unwrap_or_else(|| panic!("no live migration summary for {domain}"));
    // The last look (the memory phase) had figures: memory of a non-zero total.
    let memory = summary
        .split("last: memory ")
        .nth(1)
        .and_then(|m| m.split(", disks").next())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(!memory.contains(" of 0.0 MiB"), "{summary}");
    shared.figures.push(format!(
        "live migration {from} -> {to} (disks copied, no shared storage): {:.1} s, console ticks {before} -> {first}",
        took.as_secs_f64()
    ));
}

/// Cold migration back: saved on one node, its directory moved to the other, restored there.
fn cold_migration(site: &Site, shared: &mut Shared) {
    let plan = MigrationPlan::of_first_guest(site, shared);
    let (id, from, to) = (plan.id, &plan.from, &plan.to);
    let before = last_tick(&site.console(from, id)).expect("the guest counts");
    let (_, took) = plan.migrate(site, false);
    site.wait_ssh(&plan.ip, Instant::now());
    let after =
        last_tick(&console_with_tick(site, to, id)).expect("the guest counts on the new node");
    assert!(
        after > before,
        "restored, not rebooted: ticks {before} then {after}"
    );
    plan.check_moved(site);
    let log = std::fs::read_to_string(Path::new(&site.get("front_end")).join(format!("{id}.log")))
        .unwrap();
    assert!(log.contains(&format!("MV {from}:")), "{log}");
    shared.figures.push(format!(
        "cold migration {from} -> {to} (save, move the VM directory, restore): {:.1} s",
        took.as_secs_f64()
    ));
}

/// A node cut off: ERROR, its VMs UNKNOWN; back: the guest still running is RUNNING again,
/// the one killed meanwhile is reported and stays UNKNOWN.
fn node_failure(site: &Site, shared: &mut Shared) {
    let (kept, ip) = shared.guest.clone().expect("the first step's guest");
    let doc = site.wait_running(kept);
    let node = last_field(&doc, "HOSTNAME").unwrap();
    let netns = site
        .nodes()
        .into_iter()
        .find(|n| n.0 == node)
        .map(|n| n.1)
        .unwrap();
    // A second guest on the same node, to vanish during the outage.
    let out = site.client(
        "stratus-run-instance",
        &[
            "--vm-requirements",
            // The client puts it inside REQUIREMENTS = "...": the quotes are escaped.
            &format!("HOSTNAME = \\\"{node}\\\""),
            &site.get("image_id"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let (lost, lost_ip) = started(&out)[0].clone();
    site.wait_running(lost);
    site.wait_ssh(&lost_ip, Instant::now());
    let leases = site.call("one.vnpool.info", vec![i(-2), i(-1), i(-1)]);
    // Cut the node's link: the front end can reach neither its sshd nor its libvirtd.
    let link = veth_of(site, &node);
    run_ip(&["link", "set", &link, "down"]);
    let cut = Instant::now();
    site.wait_host(&node, HOST_ERROR, Duration::from_secs(180));
    let to_error = cut.elapsed();
    for vm in [kept, lost] {
        site.wait_vm(vm, "UNKNOWN", |doc| {
            states(doc) == (VM_ACTIVE.into(), LCM_UNKNOWN.into())
        });
    }
    // Meanwhile the second guest dies on the node.
    let killed = kill_guest(&netns, lost);
    assert!(killed, "QEMU of VM {lost} not found in {netns}");
    run_ip(&["link", "set", &link, "up"]);
    let back = Instant::now();
    site.wait_host(&node, HOST_MONITORED, Duration::from_secs(180));
    site.wait_running(kept);
    let adopted = back.elapsed();
    assert!(
        site.guest_ssh(&ip, "true").is_some(),
        "the guest kept running"
    );
    let log_path = Path::new(&site.get("front_end")).join(format!("{lost}.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.contains(&format!("The domain one-{lost} is not on host {node}")) {
            break;
        }
        assert!(Instant::now() < deadline, "VM {lost} not reported: {log}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        states(&site.vm(lost)),
        (VM_ACTIVE.into(), LCM_UNKNOWN.into())
    );
    // Nothing lost on the front end: both VMs, their leases.
    assert_eq!(
        site.call("one.vnpool.info", vec![i(-2), i(-1), i(-1)]),
        leases
    );
    let out = site.client("stratus-kill-instance", &[&lost.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    site.wait_vm(lost, "DONE", |doc| {
        field(doc, "STATE").as_deref() == Some(VM_DONE)
    });
    shared.figures.push(format!(
        "node cut off -> host ERROR and its VMs UNKNOWN in {:.1} s; back -> running guest RUNNING again in {:.1} s",
        to_error.as_secs_f64(),
        adopted.as_secs_f64()
    ));
}

/// Testor's persistent-disk tests, as shipped, with the real client against the built-in pdisk
/// service (`STRATUSLAB_PDISK_ENDPOINT`): a volume is created, a VM started with it as a
/// `pdisk:` disk (its user count goes down by one), the guest formats, mounts and writes it,
/// the VM is killed (the count comes back), a second VM finds the file; the download test gets
/// the volume gzipped and mounts it on the front end. Volumes need a node that shares the front
/// end's file system: for this step the site's volume node is enabled and the two others
/// disabled (set back afterwards, also when the step fails).
fn persistent_disks(site: &Site, shared: &mut Shared) {
    let pool = site.call("one.hostpool.info", vec![]);
    let by_name = hosts(&pool);
    let id_of = |name: &str| -> i32 {
        field(&by_name[name], "ID")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("host {name}: {pool}"))
    };
    let volume_node = site.info["volume_node"]["name"]
        .as_str()
        .expect("the volume node in site.json")
        .to_string();
    let mut set_back: Vec<(String, i32, bool)> = site
        .nodes()
        .into_iter()
        .map(|(name, _)| (name.clone(), id_of(&name), true))
        .collect();
    set_back.push((volume_node.clone(), id_of(&volume_node), false));
    let _set_back = HostsSetBack {
        site,
        hosts: set_back.clone(),
    };
    for (_, id, enabled) in &set_back {
        site.call("one.host.enable", vec![i(*id), Param::B(!enabled)]);
    }
    site.wait_host(&volume_node, HOST_MONITORED, Duration::from_secs(120));
    let mut failed = Vec::new();
    for test in [
        "persistentDiskStorageTest",
        "persistentDiskStorageDownloadTest",
    ] {
        let ran =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| testor(site, test, shared)));
        if ran.is_err() {
            failed.push(test);
            // Testor stops its VMs only when the test passes: the next test needs the quota.
            let keep = shared.guest.as_ref().map(|g| g.0);
            let pool = site.call("one.vmpool.info", vec![i(-2), i(-1), i(-1), i(-1)]);
            for vm in common::elements(&pool, "VM") {
                let id: i32 = field(vm, "ID").and_then(|v| v.parse().ok()).unwrap();
                if Some(id) != keep {
                    site.call("one.vm.action", vec![s("finalize"), i(id)]);
                }
            }
            site.settle(keep);
        }
    }
    assert!(failed.is_empty(), "Testor tests failed: {failed:?}");
}

/// createImageTest's behaviour on a real guest (Testor's own starts a CentOS image of the public
/// Marketplace and installs a package with yum): `stratus-create-image` of the real client
/// starts the test guest, runs the user's script in it over SSH (it writes a marker onto the
/// image's own disk), and shuts it down; stratusd saves the root disk as a new image
/// (`MARKETPLACE_AND_IMAGEID` in the VM log, the manifest uploaded to the site's Marketplace);
/// a VM started from the new image finds the marker.
fn create_image(site: &Site, shared: &mut Shared) {
    let marker = format!("STRATUSD-CREATED-{}", std::process::id());
    let script = site.dir.join("create-image.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\nmkdir -p /mnt/boot\nmount -t vfat /dev/vda1 /mnt/boot\n\
             echo {marker} >/mnt/boot/created.txt\numount /mnt/boot\nsync\n"
        ),
    )
    .unwrap();
    let before = last_vm_id(site);
    let begun = Instant::now();
    let out = site.client(
        "stratus-create-image",
        &[
            "--author-email",
            "jane@stratuslab.invalid",
            "--author",
            "Jane Tester",
            "--title",
            "stratusd test image",
            "--comment",
            "NB! Test image.",
            // The test guest has no package manager and no package is installed, but the
            // client wants an installer for an image whose manifest says only "linux".
            "--installer",
            "apt",
            "--marketplace-endpoint-newimage",
            &site.get("marketplace"),
            "-s",
            script.to_str().unwrap(),
            &site.get("image_id"),
        ],
    );
    assert!(out.status.success(), "stratus-create-image: {}", text(&out));
    let id = last_vm_id(site);
    assert!(id > before, "no VM started: {}", text(&out));
    site.wait_vm(id, "DONE", |doc| {
        assert_ne!(
            field(doc, "STATE").as_deref(),
            Some(VM_FAILED),
            "image creation failed: {doc}"
        );
        field(doc, "STATE").as_deref() == Some(VM_DONE)
    });
    let created = begun.elapsed();
    let log = std::fs::read_to_string(Path::new(&site.get("front_end")).join(format!("{id}.log")))
        .unwrap_or_default();
    let line = log
        .lines()
        .find(|l| l.contains("MARKETPLACE_AND_IMAGEID"))
        .unwrap_or_else(|| panic!("no MARKETPLACE_AND_IMAGEID in the log of VM {id}: {log}"));
    let mut words = line.split_whitespace().rev();
    let new_image = words.next().unwrap().trim_matches('\'').to_string();
    let marketplace = words.next().unwrap().trim_matches('\'').to_string();
    assert_eq!(marketplace, site.get("marketplace"), "{line}");
    assert!(
        new_image.len() == 27 && new_image != site.get("image_id"),
        "{line}"
    );
    let uploaded = site.dir.join("marketplace/metadata").join(&new_image);
    assert!(
        std::fs::read_dir(&uploaded).is_ok_and(|mut d| d.next().is_some()),
        "the manifest of {new_image} was not uploaded to the Marketplace"
    );
    // The new image boots and has what the script wrote.
    let out = site.client("stratus-run-instance", &[&new_image]);
    assert!(out.status.success(), "stratus-run-instance: {}", text(&out));
    let (vm, ip) = started(&out)[0].clone();
    site.wait_running(vm);
    site.wait_ssh(&ip, Instant::now());
    let found = site.guest_ssh(
        &ip,
        "mkdir -p /mnt/boot && mount -t vfat /dev/vda1 /mnt/boot && cat /mnt/boot/created.txt",
    );
    assert_eq!(
        found.as_deref().map(str::trim),
        Some(marker.as_str()),
        "the marker on the new image"
    );
    let out = site.client("stratus-kill-instance", &[&vm.to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    shared.figures.push(format!(
        "stratus-create-image -> new image {new_image} saved and uploaded in {:.1} s",
        created.as_secs_f64()
    ));
}

/// The highest VM id the site has given.
fn last_vm_id(site: &Site) -> i32 {
    let pool = site.call("one.vmpool.info", vec![i(-2), i(-1), i(-1), i(-2)]);
    common::elements(&pool, "VM")
        .into_iter()
        .filter_map(|vm| field(vm, "ID")?.parse().ok())
        .max()
        .unwrap_or(-1)
}

/// Enables and disables hosts as listed when dropped, and waits (a while) for the enabled
/// ones to be monitored again, so the next step finds the site as it was.
struct HostsSetBack<'a> {
    site: &'a Site,
    hosts: Vec<(String, i32, bool)>,
}

impl Drop for HostsSetBack<'_> {
    fn drop(&mut self) {
        for (_, id, enabled) in &self.hosts {
            let params = vec![s(&self.site.oneadmin), i(*id), Param::B(*enabled)];
            let answer = self.site.rpc().call("one.host.enable", &params);
            if !answer.contains("<boolean>1</boolean>") {
                eprintln!("could not set host {id} back: {answer}");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        for (name, _, enabled) in &self.hosts {
            while *enabled && Instant::now() < deadline {
                let pool = unescape(
                    &self
                        .site
                        .rpc()
                        .call("one.hostpool.info", &[s(&self.site.oneadmin)]),
                );
                let host = hosts(&pool).remove(name).unwrap_or_default();
                if field(&host, "STATE").as_deref() == Some(HOST_MONITORED) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// The root-namespace end of a node's veth.
fn veth_of(site: &Site, node: &str) -> String {
    let index = site.nodes().iter().position(|n| n.0 == node).unwrap();
    format!("sl{}n{}", site.get("id"), index + 1)
}

fn run_ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(out.status.success(), "ip {args:?}: {}", text(&out));
}

/// Kills the QEMU process of VM `id` among the processes of a node's namespace.
fn kill_guest(netns: &str, id: i32) -> bool {
    let out = Command::new("ip")
        .args(["netns", "pids", netns])
        .output()
        .expect("ip runs");
    let wanted = format!("guest=one-{id},");
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&wanted) {
            return Command::new("kill")
                .args(["-9", pid])
                .status()
                .is_ok_and(|s| s.success());
        }
    }
    false
}

/// The end: `down` removes the namespaces, links, processes and the directory.
fn teardown(site: &mut Site, _shared: &mut Shared) {
    let id = site.get("id");
    let out = site.down();
    assert!(out.status.success(), "demo-site.sh down: {}", text(&out));
    assert!(!site.dir.exists(), "{} left", site.dir.display());
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(&id),
        "namespaces left"
    );
    let links = Command::new("ip").args(["-br", "link"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&links.stdout).contains(&format!("sl{id}")),
        "links left"
    );
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let dir = site.dir.display().to_string();
    let left: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
}

/// Testor's tests this suite does not run, and why (the others are run or their steps are).
const TESTOR_NOT_RUN: &[(&str, &str)] = &[
    ("createImageTest", "needs the public Marketplace (its image and Downloader.ENDPOINT) and yum inside a CentOS guest; the same flow (stratus-create-image, a script run in the guest, shutdown, the disk saved as a new image and uploaded, a VM of the new image) is this suite's createImageTest step"),
    ("persistentDiskStorageHotplugTest", "cannot pass as shipped: it calls pdisk.hotDetach(node, vmId, uuid), but the 14.6.0 client's PersistentDisk.hotDetach takes (vmId, uuid) (TypeError); it also starts the public Marketplace's Ubuntu image. Hot-plug of a built-in pdisk volume into a real guest (seen appearing, written, gone, found again) is tests/qemu_volumes.rs"),
    ("clusterTest", "ClusterTest uses the public Marketplace (hard-coded) and a CentOS image with yum and NFS, m1.xlarge instances (4 CPUs each, above the quota)"),
    ("registrarTest", "sysadmin package (stratuslab.installator, Registrar over SSH as root), not in the user client"),
    ("registrationTest", "the registration web service of a StratusLab site (not part of stratusd)"),
    ("ldapAuthenticationTest", "python-ldap and an LDAP server with StratusLab's schema (tests/frontdoor covers LDAP login with slapd)"),
    ("marketPlaceTest", "an empty placeholder in Testor.py"),
];

type Step = (&'static str, fn(&Site, &mut Shared));

fn main() -> std::process::ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| SUITE.contains(f.as_str())) {
        println!("real_site: not selected by {filters:?}; 0 passed, 0 failed");
        return std::process::ExitCode::SUCCESS;
    }
    if std::env::args().any(|a| a == "--list") {
        println!("{SUITE}: test");
        return std::process::ExitCode::SUCCESS;
    }
    let begun = Instant::now();
    let mut site = Site::up();
    let mut shared = Shared::default();
    let steps: Vec<Step> = vec![
        (
            "client: stratus-run-instance, then SSH into the guest",
            client_guest_and_ssh,
        ),
        ("Testor runInstancePublicNetworkTest", |s, sh| {
            testor(s, "runInstancePublicNetworkTest", sh)
        }),
        ("Testor runInstanceRequestedNetworkTest", |s, sh| {
            testor(s, "runInstanceRequestedNetworkTest", sh)
        }),
        ("Testor exceedCpuQuotaTest", |s, sh| {
            testor(s, "exceedCpuQuotaTest", sh)
        }),
        (
            "runInstanceLocalNetworkTest's steps (the front end pinged)",
            local_network,
        ),
        (
            "oneReportsErrorViaXmlRpcTest's steps (an invalid SHA-1)",
            error_via_xmlrpc,
        ),
        (
            "Testor persistentDiskStorageTest, persistentDiskStorageDownloadTest (volume node)",
            persistent_disks,
        ),
        (
            "createImageTest's steps (stratus-create-image on a real guest)",
            create_image,
        ),
        (
            "live migration between nodes without shared storage",
            live_migration,
        ),
        (
            "cold migration between nodes without shared storage",
            cold_migration,
        ),
        ("node failure and return", node_failure),
    ];
    // For working on one step: REAL_SITE_STEPS=word,word runs only the steps whose name holds
    // one of the words (the first step's guest is what later steps use). Such a run never
    // counts as a pass: the steps left out are listed and the suite fails.
    let only: Option<Vec<String>> = std::env::var("REAL_SITE_STEPS")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let mut left_out = Vec::new();
    let mut failed = Vec::new();
    for (name, step) in &steps {
        if let Some(words) = &only {
            if !words.iter().any(|w| name.contains(w.as_str())) {
                println!("LEFT OUT {name} (REAL_SITE_STEPS)");
                left_out.push(*name);
                continue;
            }
        }
        let started = Instant::now();
        let keep = shared.guest.as_ref().map(|g| g.0);
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| site.settle(keep))).is_err() {
            println!("FAIL {name}: the VMs of the step before did not end");
            failed.push(*name);
            continue;
        }
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(&site, &mut shared)));
        let secs = started.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("PASS {name} ({secs:.1} s)"),
            Err(_) => {
                println!("FAIL {name} ({secs:.1} s)");
                failed.push(*name);
            }
        }
        let _ = std::io::stdout().flush();
    }
    for figure in &shared.figures {
        println!("FIGURE {figure}");
    }
    for (test, result) in &shared.testor {
        println!("TESTOR {test}: {result}");
    }
    for (test, reason) in TESTOR_NOT_RUN {
        println!("TESTOR {test}: not run here: {reason}");
    }
    let daemon_log = site.get("daemon_log");
    if !failed.is_empty() {
        if let Ok(log) = std::fs::read_to_string(&daemon_log) {
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of {daemon_log}");
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        teardown(&mut site, &mut shared)
    }));
    match outcome {
        Ok(()) => println!("PASS demo-site.sh down leaves nothing behind"),
        Err(_) => {
            println!("FAIL demo-site.sh down leaves nothing behind");
            failed.push("down");
        }
    }
    println!(
        "{} passed, {} failed, {} left out in {:.0} s",
        steps.len() + 1 - failed.len() - left_out.len(),
        failed.len(),
        left_out.len(),
        begun.elapsed().as_secs_f64()
    );
    if failed.is_empty() && left_out.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
