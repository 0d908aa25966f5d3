//! The kill -9 campaign (issue 18): several clients run 1,000 mixed operations against a real
//! daemon — VMs with a NIC and a `tm_stratuslab` disk from a real (loopback) Marketplace,
//! every VM action in whatever state the VM happens to be, saves as new images, host changes,
//! hooks — while the daemon is killed with SIGKILL at 10 random moments and restarted each time
//! on the same address. Afterwards, with the daemon settled:
//!
//! * every answered write is there: an answered allocation's VM exists, and a VM whose last
//!   write was answered reached that write's outcome (an answered `resume` ends RUNNING, not
//!   FAILED); no VM is FAILED or lost its domain (UNKNOWN);
//! * no lease is duplicated or lost: the leases in use are exactly the NICs of the VMs not DONE;
//! * the DHCP host file lists exactly those leases;
//! * each simulated host runs exactly the domains of its RUNNING VMs (no orphan domain, no VM
//!   without its domain);
//! * no leftover VM directory, overlay, partial download or temporary file;
//! * every saved image that answered exists, a READY one with its file;
//! * every image allocated from a file (an ordinary user's regular file in the import
//!   directory, or oneadmin's named pipe fed slowly, so that kills cut copies mid-way) ends
//!   READY with exactly its source's bytes, unless its deletion was answered (then it and its
//!   file are gone); the repository holds no file that is not an image's;
//! * hosts are as their last answered change left them;
//! * every committed hook event ran at least once (each VM's CREATE, each finished VM's DONE);
//! * the outbox is empty: every effect committed (driver steps, DHCP file, hooks, log lines,
//!   saved disks), before a kill or not, was carried out and marked done;
//! * `PRAGMA integrity_check` is ok.
//!
//! The seed is printed; `STRATUSD_CAMPAIGN_SEED=<n>` replays a run's choices (the kill moments
//! and the operations; the daemon's timing still varies).

mod common;
use common::marketplace::{image_bytes, sha1_hex, Marketplace};
use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VM_CLIENTS: usize = 4;
const OPS_PER_VM_CLIENT: usize = 240;
const HOST_OPS: usize = 25;
/// Image allocations from files (copies into the repository) and deletions.
const IMAGE_OPS: usize = 15;
const TOTAL_OPS: usize = VM_CLIENTS * OPS_PER_VM_CLIENT + HOST_OPS + IMAGE_OPS;
const KILLS: usize = 10;
/// The hosts VMs run on: always enabled, so that every VM can be placed.
const VM_HOSTS: usize = 3;

const ID_A: &str = "KillNineAAAAAAAAAAAAAAAAAAA";
const ID_B: &str = "KillNineBBBBBBBBBBBBBBBBBBB";
const KEY: &str = "ssh-rsa AAAAB3NzaC1yc2E...CAMPAIGN... root@vm";

/// What an answered write leaves the VM in once the drivers are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Running,
    Hold,
    Stopped,
    Suspended,
    Done,
}

impl Outcome {
    fn state(self) -> (i32, i32) {
        match self {
            Outcome::Running => (3, 3),
            Outcome::Hold => (2, 0),
            Outcome::Stopped => (4, 0),
            Outcome::Suspended => (5, 0),
            Outcome::Done => (6, 0),
        }
    }

    fn of_action(action: &str) -> Option<Outcome> {
        Some(match action {
            "shutdown" | "cancel" | "finalize" => Outcome::Done,
            "stop" => Outcome::Stopped,
            "suspend" => Outcome::Suspended,
            "hold" => Outcome::Hold,
            "resume" | "release" | "resubmit" | "reboot" | "restart" | "deploy" | "migrate"
            | "livemigrate" | "allocate" => Outcome::Running,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
struct VmRecord {
    session: String,
    /// The expected end of the last write, `None` once a write on it went unanswered.
    expect: Option<Outcome>,
    /// Which write set `expect` (for the failure report).
    last: String,
    /// Images of answered savedisk calls.
    saved: Vec<i32>,
}

#[derive(Default)]
struct Tally {
    ops: usize,
    answered_writes: usize,
    refused_writes: usize,
    unanswered: usize,
    reads: usize,
    by_op: BTreeMap<String, usize>,
}

/// A client that never sends a call twice, and that waits for the daemon when it is down.
struct Rpc {
    addr: SocketAddr,
    client: Option<Client>,
}

enum Answer {
    Ok(String),
    Refused(String, i32),
    /// No answer: the daemon died with the call in flight (it may or may not have happened).
    Lost,
}

impl Rpc {
    fn new(addr: SocketAddr) -> Rpc {
        Rpc { addr, client: None }
    }

    fn call(&mut self, method: &str, params: &[Param]) -> Answer {
        if self.client.is_none() {
            self.reconnect();
        }
        let Some(client) = self.client.as_mut() else {
            return Answer::Lost;
        };
        match client.try_call_once(method, params) {
            Ok(body) => match rpc_result(&body) {
                Ok(v) => Answer::Ok(v),
                Err((m, c)) => Answer::Refused(m, c),
            },
            Err(_) => {
                self.client = None;
                Answer::Lost
            }
        }
    }

    /// Until the daemon answers again (it is being restarted).
    fn reconnect(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Ok(mut c) = Client::try_connect(self.addr) {
                if let Ok(body) = c.try_call_once("one.user.info", &[s(ADMIN), i(0)]) {
                    if rpc_result(&body).is_ok() {
                        self.client = Some(c);
                        return;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the daemon did not come back within 120 s");
    }

    /// A read that must be answered (retried across restarts).
    fn read(&mut self, method: &str, params: &[Param]) -> String {
        for _ in 0..50 {
            match self.call(method, params) {
                Answer::Ok(v) => return v,
                Answer::Refused(m, c) => panic!("{method} refused: {m} ({c})"),
                Answer::Lost => continue,
            }
        }
        panic!("{method} never answered");
    }
}

fn vm_template(name: &str, source: &str, net: i32, create_image: Option<&str>) -> String {
    let (save, create) = match create_image {
        Some(mp) => (
            "yes",
            format!(
                "CREATE_IMAGE = [ CREATOR_NAME = \"Jane Tester\", CREATOR_EMAIL = \"jane@example.org\", \
                 NEWIMAGE_MARKETPLACE = \"{mp}\", NEWIMAGE_TITLE = \"saved {name}\", NEWIMAGE_COMMENT = \"campaign\" ]\n"
            ),
        ),
        None => ("no", String::new()),
    };
    format!(
        "NAME = \"{name}\"\nCPU = 0.05\nMEMORY = 64\n\
         DISK = [ source = \"{source}\", target = \"vda\", save = {save}, readonly = \"no\", driver = \"raw\" ]\n\
         NIC = [ NETWORK_ID = {net} ]\n\
         CONTEXT = [ public_key = \"{KEY}\", target = \"hdd\" ]\n{create}"
    )
}

fn states(doc: &str) -> (i32, i32) {
    let n = |t| field(doc, t).and_then(|v| v.parse().ok()).unwrap_or(-1);
    (n("STATE"), n("LCM_STATE"))
}

/// One VM as the pool lists it.
#[derive(Debug, Clone)]
struct PoolVm {
    id: i32,
    state: (i32, i32),
    hid: Option<i32>,
    ips: Vec<String>,
    error: String,
}

fn pool(rpc: &mut Rpc) -> BTreeMap<i32, PoolVm> {
    let doc = rpc.read("one.vmpool.info", &[s(ADMIN), i(-2), i(-1), i(-1), i(-2)]);
    elements(&doc, "VM")
        .into_iter()
        .map(|vm| {
            let id = field(vm, "ID").and_then(|v| v.parse().ok()).unwrap();
            // The last history record's host.
            let hid = elements(vm, "HISTORY")
                .last()
                .and_then(|h| field(h, "HID"))
                .and_then(|v| v.parse().ok());
            let ips = elements(vm, "NIC")
                .into_iter()
                .filter_map(|n| field(n, "IP"))
                .map(|v| {
                    v.trim_start_matches("<![CDATA[")
                        .trim_end_matches("]]>")
                        .to_string()
                })
                .collect();
            let error = field(vm, "ERROR")
                .and_then(|e| field(&e, "MESSAGE"))
                .unwrap_or_default();
            (
                id,
                PoolVm {
                    id,
                    state: states(vm),
                    hid,
                    ips,
                    error,
                },
            )
        })
        .collect()
}

fn transitional(state: (i32, i32)) -> bool {
    state.0 == 1 || (state.0 == 3 && state.1 != 3 && state.1 != 16)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                walk(&p, out);
            }
            out.push(p);
        }
    }
}

struct Shared {
    addr: SocketAddr,
    marketplace: String,
    sources: [String; 2],
    net: i32,
    hosts: Vec<i32>,
    ops: AtomicUsize,
    done: AtomicBool,
    vms: Mutex<BTreeMap<i32, VmRecord>>,
    tally: Mutex<Tally>,
    /// Last answered change per temporary host: `Some(enabled)` or `None` = deleted.
    host_changes: Mutex<BTreeMap<i32, Option<(bool, String)>>>,
    /// Where the image client's sources go (the import directory, and its named pipes).
    image_dir: PathBuf,
    /// Images allocated from a file, by name: the bytes they must end with, their id once
    /// an allocation answered, and whether their deletion was answered (`Some(true)`) or
    /// went unanswered (`None`).
    images: Mutex<BTreeMap<String, ImageRecord>>,
    /// The pipe feeders stop when this is set.
    stop_feeding: AtomicBool,
    /// Daemons killed so far (a pipe's reader died with each).
    kills: AtomicUsize,
}

#[derive(Debug, Clone)]
struct ImageRecord {
    content: Arc<Vec<u8>>,
    id: Option<i32>,
    deleted: Option<bool>,
}

impl Shared {
    fn count(&self, op: &str, answer: &Answer, write: bool) {
        let mut t = self.tally.lock().unwrap();
        t.ops += 1;
        *t.by_op.entry(op.to_string()).or_default() += 1;
        match (answer, write) {
            (_, false) => t.reads += 1,
            (Answer::Ok(_), true) => t.answered_writes += 1,
            (Answer::Refused(..), true) => t.refused_writes += 1,
            (Answer::Lost, true) => t.unanswered += 1,
        }
        drop(t);
        self.ops.fetch_add(1, Ordering::SeqCst);
    }
}

/// A refusal the operation may legitimately get in some state; anything else fails the test.
fn expected_refusal(op: &str, message: &str) -> bool {
    message.ends_with("] Wrong state to perform action")
        || (op == "savedisk" && message.contains("Can not save_as disk."))
}

fn vm_client(shared: Arc<Shared>, n: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(n as u64));
    let mut rpc = Rpc::new(shared.addr);
    // Client 1 is an ordinary StratusLab user, registered by her first call.
    let session = if n == 1 {
        "alice:s3cret".to_string()
    } else {
        ADMIN.to_string()
    };
    let mut mine: Vec<i32> = Vec::new();
    let mut done_vms: BTreeSet<i32> = BTreeSet::new();
    const ACTIONS: &[(&str, u32)] = &[
        ("allocate", 16),
        ("shutdown", 7),
        ("cancel", 4),
        ("stop", 6),
        ("suspend", 6),
        ("resume", 10),
        ("hold", 4),
        ("release", 4),
        ("finalize", 5),
        ("resubmit", 4),
        ("reboot", 4),
        ("restart", 3),
        ("deploy", 3),
        ("migrate", 4),
        ("livemigrate", 4),
        ("savedisk", 6),
        ("info", 4),
    ];
    let total: u32 = ACTIONS.iter().map(|(_, w)| w).sum();
    for k in 0..OPS_PER_VM_CLIENT {
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..30)));
        let mut pick = rng.gen_range(0..total);
        let mut op = "allocate";
        for (name, w) in ACTIONS {
            if pick < *w {
                op = name;
                break;
            }
            pick -= w;
        }
        if mine.is_empty() {
            op = "allocate";
        }
        if op == "allocate" {
            let create = (rng.gen_range(0..4) == 0).then_some(shared.marketplace.as_str());
            let source = &shared.sources[rng.gen_range(0..2)];
            let name = format!("c{n}-{k}");
            let t = vm_template(&name, source, shared.net, create);
            let answer = rpc.call("one.vm.allocate", &[s(&session), s(&t)]);
            if let Answer::Ok(id) = &answer {
                let id: i32 = id.parse().unwrap();
                mine.push(id);
                shared.vms.lock().unwrap().insert(
                    id,
                    VmRecord {
                        session: session.clone(),
                        expect: Some(Outcome::Running),
                        last: "allocate".into(),
                        saved: Vec::new(),
                    },
                );
            }
            if let Answer::Refused(m, c) = &answer {
                panic!("allocate refused: {m} ({c})");
            }
            shared.count(op, &answer, true);
            continue;
        }
        // Mostly VMs not known to be DONE.
        let live: Vec<i32> = mine
            .iter()
            .copied()
            .filter(|v| !done_vms.contains(v))
            .collect();
        let vid = if !live.is_empty() && rng.gen_range(0..10) != 0 {
            live[rng.gen_range(0..live.len())]
        } else {
            mine[rng.gen_range(0..mine.len())]
        };
        let host = shared.hosts[rng.gen_range(0..VM_HOSTS)];
        let answer = match op {
            "info" => {
                let a = rpc.call("one.vm.info", &[s(&session), i(vid)]);
                if let Answer::Ok(doc) = &a {
                    if states(doc).0 == 6 {
                        done_vms.insert(vid);
                    }
                }
                shared.count(op, &a, false);
                continue;
            }
            "deploy" => rpc.call("one.vm.deploy", &[s(ADMIN), i(vid), i(host)]),
            "migrate" | "livemigrate" => rpc.call(
                "one.vm.migrate",
                &[s(ADMIN), i(vid), i(host), Param::B(op == "livemigrate")],
            ),
            "savedisk" => rpc.call(
                "one.vm.savedisk",
                &[
                    s(&session),
                    i(vid),
                    i(0),
                    s(&format!("saved-{n}-{k}")),
                    s(""),
                ],
            ),
            action => rpc.call("one.vm.action", &[s(&session), s(action), i(vid)]),
        };
        {
            let mut vms = shared.vms.lock().unwrap();
            let rec = vms.get_mut(&vid).unwrap();
            match &answer {
                Answer::Ok(v) => {
                    if op == "savedisk" {
                        rec.saved.push(v.parse().unwrap());
                    } else if op == "finalize"
                        && (rec.last == "resubmit" || rec.last == "finalize after resubmit")
                    {
                        // 3.2's finalize does nothing (and answers success) while the cleanup
                        // of a resubmit runs, which then ends PENDING: either end is right. So
                        // does a second finalize while that cleanup still runs.
                        rec.expect = None;
                        rec.last = "finalize after resubmit".into();
                    } else {
                        rec.expect = Outcome::of_action(op);
                        rec.last = op.to_string();
                        if rec.expect == Some(Outcome::Done) {
                            done_vms.insert(vid);
                        }
                    }
                }
                Answer::Refused(m, c) => {
                    assert!(
                        expected_refusal(op, m),
                        "{op} of VM {vid} refused unexpectedly: {m} ({c})"
                    );
                }
                Answer::Lost => {
                    rec.expect = None;
                    rec.last = format!("{op} (unanswered)");
                }
            }
        }
        shared.count(op, &answer, true);
    }
}

fn host_client(shared: Arc<Shared>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(99));
    let mut rpc = Rpc::new(shared.addr);
    let mut temp: Vec<i32> = Vec::new();
    for k in 0..HOST_OPS {
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..400)));
        let choice = if temp.is_empty() {
            0
        } else {
            rng.gen_range(0..4)
        };
        match choice {
            0 => {
                let name = format!("temp-{k}");
                let a = rpc.call(
                    "one.host.allocate",
                    &[
                        s(ADMIN),
                        s(&name),
                        s("im_dummy"),
                        s("vmm_dummy"),
                        s("dummy"),
                        s("tm_stratuslab"),
                    ],
                );
                if let Answer::Ok(id) = &a {
                    let id: i32 = id.parse().unwrap();
                    temp.push(id);
                    shared
                        .host_changes
                        .lock()
                        .unwrap()
                        .insert(id, Some((true, String::new())));
                }
                if let Answer::Refused(m, c) = &a {
                    panic!("host allocate refused: {m} ({c})");
                }
                shared.count("host.allocate", &a, true);
            }
            1 => {
                let id = temp[rng.gen_range(0..temp.len())];
                let a = rpc.call("one.host.delete", &[s(ADMIN), i(id)]);
                match &a {
                    Answer::Ok(_) => {
                        temp.retain(|h| *h != id);
                        shared.host_changes.lock().unwrap().insert(id, None);
                    }
                    Answer::Refused(m, _) => {
                        assert!(m.contains("Can not remove a host with running VMs"), "{m}")
                    }
                    Answer::Lost => {
                        temp.retain(|h| *h != id);
                        shared.host_changes.lock().unwrap().remove(&id);
                    }
                }
                shared.count("host.delete", &a, true);
            }
            2 => {
                let id = temp[rng.gen_range(0..temp.len())];
                let on = rng.gen_bool(0.5);
                let a = rpc.call("one.host.enable", &[s(ADMIN), i(id), Param::B(on)]);
                let mut changes = shared.host_changes.lock().unwrap();
                match &a {
                    Answer::Ok(_) => {
                        if let Some(Some((enabled, _))) = changes.get_mut(&id) {
                            *enabled = on;
                        }
                    }
                    Answer::Refused(m, c) => panic!("host enable refused: {m} ({c})"),
                    Answer::Lost => {
                        changes.remove(&id);
                        temp.retain(|h| *h != id);
                    }
                }
                drop(changes);
                shared.count("host.enable", &a, true);
            }
            _ => {
                let id = temp[rng.gen_range(0..temp.len())];
                let note = format!("change {k}");
                let a = rpc.call(
                    "one.host.update",
                    &[s(ADMIN), i(id), s(&format!("NOTE = \"{note}\""))],
                );
                let mut changes = shared.host_changes.lock().unwrap();
                match &a {
                    Answer::Ok(_) => {
                        if let Some(Some((_, n))) = changes.get_mut(&id) {
                            *n = note;
                        }
                    }
                    Answer::Refused(m, c) => panic!("host update refused: {m} ({c})"),
                    Answer::Lost => {
                        changes.remove(&id);
                        temp.retain(|h| *h != id);
                    }
                }
                drop(changes);
                shared.count("host.update", &a, true);
            }
        }
    }
}

/// Feeds `content` into the named pipe `fifo` each time a reader (a copy thread of the
/// daemon) opens it, in 64 KiB pieces 10 ms apart (about 1 s for 6 MiB), so that kills land
/// mid-copy; a reader that died (a kill) makes the feeder wait for the next one, which starts
/// over. Once fed whole, the feeder waits for the next kill before feeding again (the reader
/// still has the pipe open until it reads the end, and a copy finished but not yet committed
/// runs again after a kill). Until `stop_feeding`.
fn feed_pipe(fifo: PathBuf, content: Arc<Vec<u8>>, shared: Arc<Shared>) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let stopped = || shared.stop_feeding.load(Ordering::SeqCst);
    while !stopped() {
        // Without a reader a non-blocking open for writing fails (ENXIO) instead of waiting.
        let probe = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo);
        if probe.is_err() {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let Ok(mut writer) = std::fs::OpenOptions::new().write(true).open(&fifo) else {
            continue;
        };
        drop(probe);
        let kills = shared.kills.load(Ordering::SeqCst);
        let mut whole = true;
        for piece in content.chunks(64 * 1024) {
            if writer.write_all(piece).is_err() {
                whole = false;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(writer);
        while whole && !stopped() && shared.kills.load(Ordering::SeqCst) == kills {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs the image operations; returns the pipe feeders, which run on until told to stop.
fn image_client(shared: Arc<Shared>, seed: u64) -> Vec<std::thread::JoinHandle<()>> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(77));
    let mut rpc = Rpc::new(shared.addr);
    let mut feeders = Vec::new();
    for k in 0..IMAGE_OPS {
        std::thread::sleep(Duration::from_millis(rng.gen_range(300..1200)));
        let known: Vec<(String, i32)> = shared
            .images
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, r)| r.deleted == Some(false))
            .filter_map(|(name, r)| Some((name.clone(), r.id?)))
            .collect();
        let choice = if known.is_empty() {
            rng.gen_range(0..2)
        } else {
            rng.gen_range(0..4)
        };
        if choice == 3 {
            // Delete one, whatever its state (LOCKED while its copy runs or waits).
            let (name, id) = known[rng.gen_range(0..known.len())].clone();
            let a = rpc.call("one.image.delete", &[s(ADMIN), i(id)]);
            let mut images = shared.images.lock().unwrap();
            let rec = images.get_mut(&name).unwrap();
            match &a {
                Answer::Ok(_) => rec.deleted = Some(true),
                Answer::Refused(m, c) => panic!("image delete refused: {m} ({c})"),
                Answer::Lost => rec.deleted = None,
            }
            drop(images);
            shared.count("image.delete", &a, true);
            continue;
        }
        let name = format!("img-{k}");
        let (session, path, content) = if choice == 0 {
            // An ordinary user's regular file from the import directory.
            let content = Arc::new(image_bytes(rng.gen_range(1..4) << 20, k as u8));
            let path = shared.image_dir.join(format!("{name}.img"));
            std::fs::write(&path, content.as_slice()).unwrap();
            ("alice:s3cret", path, content)
        } else {
            // oneadmin's named pipe, fed slowly.
            let content = Arc::new(image_bytes(6 << 20, k as u8));
            let path = shared.image_dir.join(format!("{name}.fifo"));
            let made = std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .expect("mkfifo (coreutils) runs");
            assert!(made.success());
            let (fifo, c, stop) = (path.clone(), Arc::clone(&content), Arc::clone(&shared));
            feeders.push(std::thread::spawn(move || feed_pipe(fifo, c, stop)));
            (ADMIN, path, content)
        };
        shared.images.lock().unwrap().insert(
            name.clone(),
            ImageRecord {
                content,
                id: None,
                deleted: Some(false),
            },
        );
        let template = format!("NAME = \"{name}\"\nPATH = \"{}\"\n", path.display());
        let a = rpc.call("one.image.allocate", &[s(session), s(&template)]);
        match &a {
            Answer::Ok(id) => {
                shared.images.lock().unwrap().get_mut(&name).unwrap().id = Some(id.parse().unwrap())
            }
            Answer::Refused(m, c) => panic!("image allocate refused: {m} ({c})"),
            Answer::Lost => {}
        }
        shared.count("image.allocate", &a, true);
    }
    // The feeders run until the images are checked (a copy may run again after a kill).
    feeders
}

fn add_host(rpc: &mut Rpc, name: &str) -> i32 {
    let id = match rpc.call(
        "one.host.allocate",
        &[
            s(ADMIN),
            s(name),
            s("im_dummy"),
            s("vmm_dummy"),
            s("dummy"),
            s("tm_stratuslab"),
        ],
    ) {
        Answer::Ok(v) => v.parse().unwrap(),
        _ => panic!("host {name} not allocated"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let doc = rpc.read("one.host.info", &[s(ADMIN), i(id)]);
        if field(&doc, "STATE").as_deref() == Some("2") {
            return id;
        }
        assert!(Instant::now() < deadline, "host {name} not monitored");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn kill9_campaign() {
    let seed: u64 = std::env::var("STRATUSD_CAMPAIGN_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("kill -9 campaign: seed {seed} (STRATUSD_CAMPAIGN_SEED={seed} replays its choices)");
    let started = Instant::now();

    let mp = Marketplace::start();
    let a = image_bytes(1024 * 1024, 7);
    mp.add_image(ID_A, &a, true, a.len() as u64, &sha1_hex(&a));
    let b = image_bytes(512 * 1024, 8);
    mp.add_image(ID_B, &b, false, b.len() as u64, &sha1_hex(&b));

    let dir = temp_dir("kill9");
    let hook_log = dir.join("hooks.log");
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$STRATUSD_EVENT_ID $*\" >> {}\n",
            hook_log.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let image_dir = dir.join("import");
    std::fs::create_dir_all(&image_dir).unwrap();
    let mut cfg = format!("image_import_dirs = [\"{}\"]\n\n", image_dir.display());
    for on in ["CREATE", "RUNNING", "SHUTDOWN", "STOP", "DONE", "FAILED"] {
        cfg.push_str(&format!(
            "[[vm_hook]]\nname = \"{on}\"\non = \"{on}\"\ncommand = \"{}\"\narguments = \"{on} $VMID\"\n\n",
            script.display()
        ));
    }
    let cfg_path = dir.join("stratusd.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let dhcp = dir.join("dhcp-hosts");
    let args: Vec<String> = vec![
        "--config".into(),
        cfg_path.display().to_string(),
        "--vm-polling-interval".into(),
        "1".into(),
        "--dhcp-hosts-file".into(),
        dhcp.display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = Daemon::start_in(dir.clone(), &args);
    let addr = first.addr;
    let daemon = Arc::new(Mutex::new(first));

    let mut rpc = Rpc::new(addr);
    let hosts: Vec<i32> = (0..VM_HOSTS)
        .map(|n| add_host(&mut rpc, &format!("node{n}")))
        .collect();
    let net: i32 = match rpc.call(
        "one.vn.allocate",
        &[
            s(ADMIN),
            s("NAME = \"campaign\"\nTYPE = RANGED\nPUBLIC = YES\nBRIDGE = br0\nNETWORK_SIZE = 1024\nNETWORK_ADDRESS = 10.7.0.0\n"),
        ],
    ) {
        Answer::Ok(v) => v.parse().unwrap(),
        Answer::Refused(m, c) => panic!("network: {m} ({c})"),
        Answer::Lost => panic!("network: no answer"),
    };
    // Alice's VMs take their leases from it too.
    let mut perms = vec![s(ADMIN), i(net)];
    perms.extend([-1, -1, -1, -1, -1, -1, 1, -1, -1].map(i));
    assert!(matches!(rpc.call("one.vn.chmod", &perms), Answer::Ok(_)));

    let shared = Arc::new(Shared {
        addr,
        marketplace: mp.url(),
        sources: [mp.source(ID_A), mp.source(ID_B)],
        net,
        hosts: hosts.clone(),
        ops: AtomicUsize::new(0),
        done: AtomicBool::new(false),
        vms: Mutex::new(BTreeMap::new()),
        tally: Mutex::new(Tally::default()),
        host_changes: Mutex::new(BTreeMap::new()),
        image_dir,
        images: Mutex::new(BTreeMap::new()),
        stop_feeding: AtomicBool::new(false),
        kills: AtomicUsize::new(0),
    });

    // The kill moments: KILLS distinct operation counts, spread over the run.
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kill_at: BTreeSet<usize> = BTreeSet::new();
    while kill_at.len() < KILLS {
        kill_at.insert(rng.gen_range(TOTAL_OPS / 20..TOTAL_OPS * 19 / 20));
    }
    let restarts: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let killer = {
        let (shared, daemon, restarts, dir) = (
            Arc::clone(&shared),
            Arc::clone(&daemon),
            Arc::clone(&restarts),
            dir.clone(),
        );
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        std::thread::spawn(move || {
            for at in kill_at {
                while shared.ops.load(Ordering::SeqCst) < at {
                    if shared.done.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                let mut d = daemon.lock().unwrap();
                d.kill9();
                shared.kills.fetch_add(1, Ordering::SeqCst);
                let spawned = Instant::now();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                *d = Daemon::start_on(dir.clone(), addr, &args);
                drop(d);
                // Restarted once it answers a call again.
                let mut probe = Rpc::new(addr);
                probe.reconnect();
                let took = spawned.elapsed();
                eprintln!("kill -9 at operation {at}; answering again after {took:?}");
                restarts.lock().unwrap().push(took);
            }
        })
    };

    let mut clients = Vec::new();
    for n in 0..VM_CLIENTS {
        let shared = Arc::clone(&shared);
        clients.push(std::thread::spawn(move || vm_client(shared, n, seed)));
    }
    {
        let shared = Arc::clone(&shared);
        clients.push(std::thread::spawn(move || host_client(shared, seed)));
    }
    let image_client = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || image_client(shared, seed))
    };
    for c in clients {
        c.join().expect("a client failed");
    }
    let feeders = image_client.join().expect("the image client failed");
    shared.done.store(true, Ordering::SeqCst);
    killer.join().expect("the killer failed");
    let ops_elapsed = started.elapsed();

    // Settle: no VM waiting for a driver or the scheduler.
    let mut rpc = Rpc::new(addr);
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut vms = loop {
        let vms = pool(&mut rpc);
        let busy: Vec<_> = vms.values().filter(|v| transitional(v.state)).collect();
        if busy.is_empty() {
            break vms;
        }
        assert!(
            Instant::now() < deadline,
            "VMs never settled: {:?}",
            busy.iter().map(|v| (v.id, v.state)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Two VM polls: a running VM whose domain is missing turns UNKNOWN.
    std::thread::sleep(Duration::from_millis(2500));
    let again = pool(&mut rpc);
    for (id, v) in &again {
        if let Some(before) = vms.get(id) {
            assert_eq!(
                before.state, v.state,
                "VM {id} changed after settling: {}",
                v.error
            );
        }
    }
    vms = again;

    // Settle: no image allocated from a file still LOCKED (its copy waits or runs).
    let ours = shared.images.lock().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(90);
    let (by_name, all_sources) = loop {
        let doc = unescape(&rpc.read("one.imagepool.info", &[s(ADMIN), i(-2), i(-1), i(-1)]));
        let mut by_name: BTreeMap<String, (i32, i32, String)> = BTreeMap::new();
        let mut all_sources: BTreeSet<String> = BTreeSet::new();
        for img in elements(&doc, "IMAGE") {
            let id = field(img, "ID").and_then(|v| v.parse().ok()).unwrap();
            let state = field(img, "STATE").and_then(|v| v.parse().ok()).unwrap();
            let source = field(img, "SOURCE").unwrap_or_default();
            all_sources.insert(source.clone());
            by_name.insert(field(img, "NAME").unwrap_or_default(), (id, state, source));
        }
        let copying: Vec<_> = by_name
            .iter()
            .filter(|(name, (_, state, _))| ours.contains_key(*name) && *state == 4)
            .collect();
        // Copies of images deleted meanwhile run to their end too (and remove their file).
        let copies_left: i64 = rusqlite::Connection::open(dir.join("stratusd.db"))
            .and_then(|db| {
                db.query_row(
                    "SELECT count(*) FROM outbox WHERE body LIKE '%copy_image%' \
                     OR body LIKE '%remove_image_file%'",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap_or(1);
        if copying.is_empty() && copies_left == 0 {
            break (by_name, all_sources);
        }
        assert!(
            Instant::now() < deadline,
            "images never left LOCKED: {copying:?}, {copies_left} copy intents left"
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    let records = shared.vms.lock().unwrap().clone();
    let mut failures: Vec<String> = Vec::new();
    // Every answered allocation is there; answered writes reached their outcome.
    for (id, rec) in &records {
        let Some(vm) = vms.get(id) else {
            failures.push(format!("VM {id} (answered allocation) is missing"));
            continue;
        };
        if let Some(expect) = rec.expect {
            if vm.state != expect.state() {
                failures.push(format!(
                    "VM {id} of {}: last answered write {} expects {:?} {:?}, found {:?} {}",
                    rec.session,
                    rec.last,
                    expect,
                    expect.state(),
                    vm.state,
                    vm.error
                ));
            }
        }
    }
    for vm in vms.values() {
        if vm.state.0 == 7 || vm.state == (3, 16) {
            failures.push(format!(
                "VM {} is {:?}: {} (last write: {})",
                vm.id,
                vm.state,
                vm.error,
                records.get(&vm.id).map(|r| r.last.as_str()).unwrap_or("?")
            ));
        }
    }

    // Leases: exactly the NICs of the VMs that are not DONE, each once.
    let mut c = Client::connect(addr);
    let leases = vn_leases(&mut c, net);
    let used: BTreeMap<String, i32> = leases
        .iter()
        .filter(|l| l.used)
        .map(|l| (l.ip.clone(), l.vid))
        .collect();
    let mut held: BTreeMap<String, i32> = BTreeMap::new();
    for vm in vms.values().filter(|v| v.state.0 != 6) {
        for ip in &vm.ips {
            if let Some(other) = held.insert(ip.clone(), vm.id) {
                failures.push(format!("IP {ip} held by VMs {other} and {}", vm.id));
            }
        }
    }
    if used != held {
        failures.push(format!(
            "leases in use differ from the NICs of live VMs: only leased {:?}, only on NICs {:?}",
            used.iter()
                .filter(|(ip, v)| held.get(*ip) != Some(v))
                .collect::<Vec<_>>(),
            held.iter()
                .filter(|(ip, v)| used.get(*ip) != Some(v))
                .collect::<Vec<_>>()
        ));
    }
    let (dhcp_expected, dhcp_found) = await_dnsmasq_file(&mut c, &[net], &dhcp);
    if dhcp_expected != dhcp_found {
        failures.push(format!(
            "DHCP host file differs from the leases: missing {:?}, extra {:?}",
            dhcp_expected.difference(&dhcp_found).collect::<Vec<_>>(),
            dhcp_found.difference(&dhcp_expected).collect::<Vec<_>>()
        ));
    }

    // Domains: each simulated host runs exactly its RUNNING VMs.
    let host_ids: Vec<i32> = {
        let doc = unescape(&c.call("one.hostpool.info", &[s(ADMIN)]));
        elements(&doc, "HOST")
            .into_iter()
            .filter_map(|h| field(h, "ID").and_then(|v| v.parse().ok()))
            .collect()
    };
    let sim = dir.join("simulated-hosts");
    for hid in &host_ids {
        let mut running: BTreeSet<String> = BTreeSet::new();
        if let Ok(entries) = std::fs::read_dir(sim.join(format!("host-{hid}.domains"))) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if let Some(d) = name.strip_suffix(".xml") {
                    if !d.starts_with('.') {
                        running.insert(d.to_string());
                    }
                }
            }
        }
        let expected: BTreeSet<String> = vms
            .values()
            .filter(|v| v.state == (3, 3) && v.hid == Some(*hid))
            .map(|v| format!("one-{}", v.id))
            .collect();
        if running != expected {
            failures.push(format!(
                "host {hid}: orphan domains {:?}, VMs without their domain {:?}",
                running.difference(&expected).collect::<Vec<_>>(),
                expected.difference(&running).collect::<Vec<_>>()
            ));
        }
    }

    // Files: no temporary or partial file anywhere, VM directories only for live VMs.
    let mut files = Vec::new();
    walk(&dir, &mut files);
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if (name.starts_with('.') && name.ends_with(".tmp")) || name.ends_with(".part") {
            failures.push(format!("temporary file left: {}", f.display()));
        }
    }
    for e in std::fs::read_dir(dir.join("cache/partial"))
        .map(|it| it.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        failures.push(format!("partial download left: {}", e.path().display()));
    }
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Ok(vid) = name.parse::<i32>() else {
            continue;
        };
        match vms.get(&vid) {
            None => failures.push(format!("directory of an unknown VM: {name}")),
            Some(vm) if vm.state.0 == 6 => {
                let mut inside = Vec::new();
                walk(&e.path(), &mut inside);
                failures.push(format!(
                    "VM {vid} is DONE but its directory is left: {:?}",
                    inside
                ));
            }
            _ => {}
        }
    }

    // Hooks: every committed event ran at least once, kills or not (each VM's CREATE, each
    // finished VM's DONE), under its event id.
    let mut expected: BTreeSet<(String, i32)> = BTreeSet::new();
    for (id, vm) in &vms {
        expected.insert(("CREATE".into(), *id));
        if vm.state.0 == 6 {
            expected.insert(("DONE".into(), *id));
        }
    }
    let hooks_deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let text = std::fs::read_to_string(&hook_log).unwrap_or_default();
        let ran: BTreeSet<(String, i32)> = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                w.next()?.parse::<u64>().ok()?;
                Some((w.next()?.to_string(), w.next()?.parse().ok()?))
            })
            .collect();
        let missing: Vec<_> = expected.difference(&ran).cloned().collect();
        if missing.is_empty() || Instant::now() > hooks_deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for (on, id) in missing {
        failures.push(format!("VM {id}: its {on} hook never ran"));
    }

    // Saved images.
    let images = unescape(&c.call("one.imagepool.info", &[s(ADMIN), i(-2), i(-1), i(-1)]));
    let images: BTreeMap<i32, (i32, String)> = elements(&images, "IMAGE")
        .into_iter()
        .map(|img| {
            (
                field(img, "ID").and_then(|v| v.parse().ok()).unwrap(),
                (
                    field(img, "STATE").and_then(|v| v.parse().ok()).unwrap(),
                    field(img, "SOURCE").unwrap_or_default(),
                ),
            )
        })
        .collect();
    for (vid, rec) in &records {
        for img in &rec.saved {
            match images.get(img) {
                None => failures.push(format!("image {img} (savedisk of VM {vid}) is missing")),
                Some((1, source)) if !Path::new(source).is_file() => failures.push(format!(
                    "image {img} is READY but its file {source} is missing"
                )),
                Some((4, _)) if vms.get(vid).is_some_and(|v| v.state.0 == 6) => {
                    // Left LOCKED: only acceptable if the VM never ran its epilog.
                }
                _ => {}
            }
        }
    }

    // Images allocated from files: READY with their source's bytes, unless deleted; the
    // repository holds only images' files.
    let mut copied = 0;
    for (name, rec) in &ours {
        match (by_name.get(name), rec.deleted, rec.id) {
            (Some((id, _, _)), Some(true), _) => {
                failures.push(format!("image {name} ({id}) was deleted but exists"))
            }
            (None, Some(false), Some(id)) => failures.push(format!(
                "image {name} ({id}, answered allocation) is missing"
            )),
            (Some((id, state, source)), _, answered) => {
                if answered.is_some_and(|a| a != *id) {
                    failures.push(format!("image {name} is {id}, answered as {answered:?}"));
                } else if *state != 1 {
                    failures.push(format!("image {name} ({id}) ends in state {state}"));
                } else if std::fs::read(source).ok().as_deref() != Some(rec.content.as_slice()) {
                    failures.push(format!(
                        "image {name} ({id}): {source} does not hold its source's bytes"
                    ));
                } else {
                    copied += 1;
                }
            }
            (None, _, _) => {}
        }
    }
    for e in std::fs::read_dir(dir.join("images"))
        .map(|it| it.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let path = e.path().to_string_lossy().to_string();
        if !all_sources.contains(&path) {
            failures.push(format!("repository file {path} is no image's"));
        }
    }
    shared.stop_feeding.store(true, Ordering::SeqCst);
    for f in feeders {
        f.join().expect("a pipe feeder failed");
    }

    // Hosts: as their last answered change left them.
    for (hid, change) in shared.host_changes.lock().unwrap().iter() {
        let answer = c.call("one.host.info", &[s(ADMIN), i(*hid)]);
        match (change, rpc_result(&answer)) {
            (None, Ok(_)) => failures.push(format!("host {hid} was deleted but exists")),
            (Some(_), Err(e)) => failures.push(format!("host {hid} is missing: {e:?}")),
            (Some((enabled, note)), Ok(doc)) => {
                let disabled = field(&doc, "STATE").as_deref() == Some("4");
                if disabled == *enabled {
                    failures.push(format!("host {hid}: enabled should be {enabled}"));
                }
                if !note.is_empty() && !doc.contains(note.as_str()) {
                    failures.push(format!("host {hid}: NOTE {note:?} lost"));
                }
            }
            (None, Err(_)) => {}
        }
    }

    let tally = shared.tally.lock().unwrap();
    let mut times = restarts.lock().unwrap().clone();
    let (min, max) = (
        times.iter().min().copied().unwrap_or_default(),
        times.iter().max().copied().unwrap_or_default(),
    );
    let med = if times.is_empty() {
        Duration::ZERO
    } else {
        median(&mut times)
    };
    eprintln!(
        "kill -9 campaign: {} operations ({} answered writes, {} refused by state, {} unanswered, {} reads) \
         by {} clients in {:.1} s; {} kills, answering again after {:?} median ({:?}–{:?}); {} VMs, {} hosts, \
         {} images copied from files ({} copies run again after a kill); per operation: {:?}",
        tally.ops,
        tally.answered_writes,
        tally.refused_writes,
        tally.unanswered,
        tally.reads,
        VM_CLIENTS + 2,
        ops_elapsed.as_secs_f64(),
        times.len(),
        med,
        min,
        max,
        vms.len(),
        host_ids.len(),
        copied,
        std::fs::read_to_string(dir.join("daemon.log"))
            .unwrap_or_default()
            .matches("image copy interrupted by a restart runs again")
            .count(),
        tally.by_op
    );
    assert_eq!(tally.ops, TOTAL_OPS);
    assert_eq!(times.len(), KILLS, "every kill happened");
    drop(tally);

    let mut d = daemon.lock().unwrap();
    // The outbox empties once the workers have carried every committed effect out (read
    // beside the running daemon: SQLite's WAL lets a reader in).
    let outbox_left = {
        let db = rusqlite::Connection::open(d.db()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut stmt = db
                .prepare("SELECT id, body FROM outbox ORDER BY id")
                .unwrap();
            let left: Vec<(i64, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            if left.is_empty() || Instant::now() > deadline {
                break left;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    if !outbox_left.is_empty() {
        failures.push(format!(
            "{} outbox entries never carried out: {:?}",
            outbox_left.len(),
            &outbox_left[..outbox_left.len().min(20)]
        ));
    }
    assert_eq!(d.stop(), Some(0));
    let db = rusqlite::Connection::open(d.db()).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    if check != "ok" {
        failures.push(format!("integrity_check: {check}"));
    }
    assert!(
        failures.is_empty(),
        "{} problems (seed {seed}, see {}):\n{}",
        failures.len(),
        dir.join("daemon.log").display(),
        failures.join("\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
