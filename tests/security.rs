//! Issue 12's probes, each made as an ordinary (auto-registered) user over real XML-RPC to a
//! real daemon: what is refused, with which message, that no program ran (a marker file a
//! program would create never appears), that host templates and other users' VMs are
//! unchanged; and the connection and body limits under a flood (docs/security.md).

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EVE: &str = "eve:anything";

/// A program that, if anything ever ran it, would leave `marker` behind.
fn marker_program(dir: &Path) -> (PathBuf, PathBuf) {
    let marker = dir.join("MARKER-program-ran");
    let program = dir.join("make-marker.sh");
    std::fs::write(
        &program,
        format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    (program, marker)
}

fn uid_of(c: &mut Client, session: &str) -> i32 {
    let doc = rpc_result(&c.call("one.user.info", &[s(session), i(-1)])).expect("user.info");
    field(&doc, "ID")
        .and_then(|v| v.parse().ok())
        .expect("an ID")
}

fn ok_id(answer: &str) -> i32 {
    rpc_result(answer)
        .unwrap_or_else(|e| panic!("call failed: {e:?}"))
        .parse()
        .expect("an id")
}

fn host_doc(c: &mut Client, id: i32) -> String {
    rpc_result(&c.call("one.host.info", &[s(ADMIN), i(id)])).expect("host.info")
}

fn template_of(doc: &str) -> String {
    field(doc, "TEMPLATE").unwrap_or_default()
}

/// The value of `<NAME>` inside a document's TEMPLATE (CDATA unwrapped).
fn template_value(doc: &str, name: &str) -> Option<String> {
    let v = field(&template_of(doc), name)?;
    Some(
        v.trim_start_matches("<![CDATA[")
            .trim_end_matches("]]>")
            .to_string(),
    )
}

#[test]
fn ordinary_users_cannot_choose_a_driver_endpoint_or_run_a_program() {
    let d = Daemon::start("sec-drivers", &["--host-monitoring-interval", "1"]);
    let (program, marker) = marker_program(&d.dir);
    let mut c = d.client();
    let eve = uid_of(&mut c, EVE);
    let host = ok_id(&c.call(
        "one.host.allocate",
        &[
            s(ADMIN),
            s("kvm-probe"),
            s("im_kvm"),
            s("vmm_kvm"),
            s("dummy"),
            s("tm_dummy"),
        ],
    ));
    // The site's own endpoint (nothing listens there: monitoring fails, harmlessly).
    let site = "LIBVIRT_URI = \"qemu+tcp://127.0.0.1:1/system\"\nDOMAIN_TYPE = \"qemu\"\n";
    ok_id(&c.call("one.host.update", &[s(ADMIN), i(host), s(site)]));
    let before = host_doc(&mut c, host);

    let hostile = [
        format!(
            "LIBVIRT_URI = \"qemu+ext:///system?command={}\"\nDOMAIN_TYPE = \"qemu\"\n",
            program.display()
        ),
        // Another endpoint: other users' VMs on the host would turn UNKNOWN.
        "LIBVIRT_URI = \"qemu+tcp://127.0.0.2:1/system\"\nDOMAIN_TYPE = \"qemu\"\n".into(),
        "LIBVIRT_URI = \"qemu+tcp://127.0.0.1:1/system\"\nDOMAIN_TYPE = \"xen\"\n".into(),
        format!("{site}CONSOLE_LOG = \"YES\"\n"),
        format!("{site}VM_DIR_SHARED = \"NO\"\nVM_DIR = \"/etc\"\n"),
        // Removing the site's endpoint changes it too (to qemu+ssh://<name>/system).
        "DESCRIPTION = \"mine now\"\n".into(),
    ];
    for text in &hostile {
        let answer = c.call("one.host.update", &[s(EVE), i(host), s(text)]);
        assert_eq!(
            rpc_result(&answer),
            Err((
                format!("[HostUpdateTemplate] User [{eve}] : Not authorized to perform ADMIN HOST [{host}]."),
                512
            )),
            "{text}"
        );
    }
    // Other attributes stay the user's to edit, as in 3.2 (MANAGE on hosts).
    let kept = format!("{site}DESCRIPTION = \"rack 4\"\n");
    ok_id(&c.call("one.host.update", &[s(EVE), i(host), s(&kept)]));
    let after = host_doc(&mut c, host);
    for name in [
        "LIBVIRT_URI",
        "DOMAIN_TYPE",
        "CONSOLE_LOG",
        "VM_DIR",
        "VM_DIR_SHARED",
    ] {
        assert_eq!(
            template_value(&after, name),
            template_value(&before, name),
            "{name}"
        );
    }
    assert_eq!(
        template_value(&after, "DESCRIPTION").as_deref(),
        Some("rack 4")
    );

    // Not even oneadmin points a host at a program without the site's configuration.
    let answer = c.call("one.host.update", &[s(ADMIN), i(host), s(&hostile[0])]);
    let (message, code) = rpc_result(&answer).unwrap_err();
    assert_eq!(code, 8192);
    assert!(
        message.starts_with(
            "[HostUpdateTemplate] Can not update template. LIBVIRT_URI qemu+ext:///system?command="
        ) && message.ends_with("is not allowed on this site: transport ext is not allowed."),
        "{message}"
    );

    // A NIC script is a program libvirt runs as root: refused with 3.2's restricted-attribute
    // answer, for a VM and for a template instantiation, and no VM is made.
    let nic = format!(
        "NAME = probe\nMEMORY = 64\nNIC = [ BRIDGE = \"br0\", SCRIPT = \"{}\" ]\n",
        program.display()
    );
    let vms_before =
        rpc_result(&c.call("one.vmpool.info", &[s(ADMIN), i(-2), i(-1), i(-1), i(-1)]));
    assert_eq!(
        rpc_result(&c.call("one.vm.allocate", &[s(EVE), s(&nic)])),
        Err((
            "[VirtualMachineAllocate] Error allocating a new virtual machine. VM Template includes a restricted attribute NIC/SCRIPT.".into(),
            8192
        ))
    );
    let template = ok_id(&c.call("one.template.allocate", &[s(EVE), s(&nic)]));
    assert_eq!(
        rpc_result(&c.call("one.template.instantiate", &[s(EVE), i(template), s("")])),
        Err((
            "[TemplateInstantiate] Error allocating a new virtual machine. VM Template includes a restricted attribute NIC/SCRIPT.".into(),
            8192
        ))
    );
    for restricted in [
        "OS = [ KERNEL = \"/etc/shadow\" ]",
        "OS = [ BOOTLOADER = \"/tmp/x\" ]",
        "RAW = [ TYPE = kvm, DATA = \"<devices/>\" ]",
    ] {
        let answer = c.call(
            "one.vm.allocate",
            &[s(EVE), s(&format!("MEMORY=64\n{restricted}"))],
        );
        assert!(
            rpc_result(&answer)
                .unwrap_err()
                .0
                .contains("VM Template includes a restricted attribute"),
            "{restricted}: {answer}"
        );
    }
    let vms_after = rpc_result(&c.call("one.vmpool.info", &[s(ADMIN), i(-2), i(-1), i(-1), i(-1)]));
    assert_eq!(vms_before, vms_after, "no VM was made");

    // Several monitoring passes later, nothing has run the program.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!marker.exists(), "a refused endpoint or script ran");
}

#[test]
fn image_paths_never_follow_links_out_of_the_import_directory() {
    let dir = temp_dir("sec-import");
    let import = dir.join("import");
    let secret_dir = dir.join("secret");
    std::fs::create_dir_all(import.join("sub")).unwrap();
    std::fs::create_dir_all(&secret_dir).unwrap();
    let secret = secret_dir.join("shadow");
    std::fs::write(
        &secret,
        "root:SECRET-HASH-OF-THE-FRONT-END:19000:0:99999:7:::\n",
    )
    .unwrap();
    std::fs::write(import.join("good.img"), vec![7u8; 4096]).unwrap();
    std::os::unix::fs::symlink(&secret, import.join("evil.img")).unwrap();
    std::os::unix::fs::symlink(&secret_dir, import.join("sub/linkdir")).unwrap();
    std::fs::hard_link(&secret, import.join("hard.img")).unwrap();
    let config = dir.join("stratusd.toml");
    std::fs::write(
        &config,
        format!("image_import_dirs = [\"{}\"]\n", import.display()),
    )
    .unwrap();
    let d = Daemon::start_in(dir.clone(), &["--config", config.to_str().unwrap()]);
    let mut c = d.client();
    let allocate = |c: &mut Client, name: &str, path: &Path| {
        c.call(
            "one.image.allocate",
            &[
                s(EVE),
                s(&format!("NAME = {name}\nPATH = \"{}\"\n", path.display())),
            ],
        )
    };
    let wait_state = |c: &mut Client, id: i32| -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let doc = rpc_result(&c.call("one.image.info", &[s(EVE), i(id)])).expect("image.info");
            if matches!(field(&doc, "STATE").as_deref(), Some("1") | Some("5")) {
                return doc;
            }
            assert!(Instant::now() < deadline, "image {id} stays LOCKED: {doc}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let good = ok_id(&allocate(&mut c, "good", &import.join("good.img")));
    assert_eq!(
        field(&wait_state(&mut c, good), "STATE").as_deref(),
        Some("1")
    );
    for (name, path) in [
        ("evil", import.join("evil.img")),
        ("evil-dir", import.join("sub/linkdir/shadow")),
        ("evil-hard", import.join("hard.img")),
        ("evil-dir-itself", import.join("sub")),
    ] {
        let id = ok_id(&allocate(&mut c, name, &path));
        let doc = wait_state(&mut c, id);
        assert_eq!(field(&doc, "STATE").as_deref(), Some("5"), "{name}: {doc}");
        assert!(
            doc.contains("Error copying image in the repository"),
            "{name}: {doc}"
        );
    }
    // Outside the import directory altogether: refused at once.
    let answer = allocate(&mut c, "outside", &secret);
    assert_eq!(
        rpc_result(&answer),
        Err((
            format!(
                "[ImageAllocate] Error allocating a new image. PATH {} is not in an image import directory of this site.",
                secret.display()
            ),
            8192
        ))
    );
    // The repository holds no copy of the secret.
    for entry in std::fs::read_dir(dir.join("images")).unwrap().flatten() {
        let content = std::fs::read(entry.path()).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&content).contains("SECRET-HASH"),
            "{} is a copy of the secret",
            entry.path().display()
        );
    }
}

/// A host with a real transfer driver: disks from front-end paths and CONTEXT FILES of an
/// ordinary user's VM are refused at prolog; other users' VMs are out of reach.
#[test]
fn user_isolation_and_the_disk_and_context_guards_hold() {
    let d = Daemon::start("sec-guards", &["--host-monitoring-interval", "1"]);
    let mut c = d.client();
    // Alice's VM, held before any host exists so that it stays as it is.
    let alice = ok_id(&c.call(
        "one.vm.allocate",
        &[s("alice:pw"), s("NAME = mine\nMEMORY = 64\n")],
    ));
    ok_id(&c.call("one.vm.action", &[s("alice:pw"), s("hold"), i(alice)]));
    let alice_before = rpc_result(&c.call("one.vm.info", &[s("alice:pw"), i(alice)])).unwrap();
    let host = ok_id(&c.call(
        "one.host.allocate",
        &[
            s(ADMIN),
            s("sim"),
            s("im_dummy"),
            s("vmm_dummy"),
            s("dummy"),
            s("tm_ssh"),
        ],
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while field(&host_doc(&mut c, host), "STATE").as_deref() != Some("2") {
        assert!(Instant::now() < deadline, "host not monitored");
        std::thread::sleep(Duration::from_millis(50));
    }
    let eve = uid_of(&mut c, EVE);
    for action in ["shutdown", "hold", "finalize"] {
        assert_eq!(
            rpc_result(&c.call("one.vm.action", &[s(EVE), s(action), i(alice)])),
            Err((
                format!("[VirtualMachineAction] User [{eve}] : Not authorized to perform MANAGE VM [{alice}]."),
                512
            ))
        );
    }
    assert_eq!(
        rpc_result(&c.call("one.vm.info", &[s(EVE), i(alice)]))
            .unwrap_err()
            .1,
        512
    );
    let probes = [
        (
            "DISK = [ SOURCE = \"/etc/shadow\", TARGET = \"vda\" ]",
            "is not authorized to use /etc/shadow as a disk",
        ),
        (
            "CONTEXT = [ FILES = \"/etc/shadow\", TARGET = \"hdd\" ]",
            "is not authorized to put /etc/shadow in the context disk",
        ),
    ];
    for (attribute, refusal) in probes {
        let vm = ok_id(&c.call(
            "one.vm.allocate",
            &[
                s(EVE),
                s(&format!("NAME = probe\nMEMORY = 64\n{attribute}\n")),
            ],
        ));
        let deadline = Instant::now() + Duration::from_secs(30);
        let doc = loop {
            let doc = rpc_result(&c.call("one.vm.info", &[s(EVE), i(vm)])).unwrap();
            if field(&doc, "STATE").as_deref() == Some("7") {
                break doc;
            }
            assert!(Instant::now() < deadline, "VM {vm} did not fail: {doc}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(unescape(&doc).contains(refusal), "{attribute}: {doc}");
        let images = d.dir.join(vm.to_string()).join("images");
        for entry in std::fs::read_dir(&images).into_iter().flatten().flatten() {
            let content = std::fs::read(entry.path()).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&content).contains("root:"),
                "{}",
                entry.path().display()
            );
        }
    }
    let alice_after = rpc_result(&c.call("one.vm.info", &[s("alice:pw"), i(alice)])).unwrap();
    assert_eq!(field(&alice_before, "STATE"), field(&alice_after, "STATE"));
    assert_eq!(template_of(&alice_before), template_of(&alice_after));
}

#[test]
fn hostile_xml_gets_faults() {
    let d = Daemon::start("sec-xml", &[]);
    let lol = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]><methodCall><methodName>one.user.info</methodName><params><param><value><string>&d;&d;&d;</string></value></param></params></methodCall>";
    let external = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY x SYSTEM \"file:///etc/shadow\">]><methodCall><methodName>one.user.info</methodName><params><param><value><string>&x;</string></value></param></params></methodCall>";
    for body in [
        lol,
        external,
        "<methodCall><methodName>x</methodName><params>",
    ] {
        let a = d.client().post_raw(body.as_bytes());
        assert_eq!(a.status, 200);
        assert!(a.body.contains("<fault>"), "{}", a.body);
        assert!(!a.body.contains("root:"), "{}", a.body);
    }
}

/// Raises this process's descriptor limit to its hard limit (the flood needs thousands).
fn raise_own_descriptor_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .map(|t| t.to_string_lossy().starts_with("socket:"))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

/// 2,000 idle connections and 400 slowloris ones (a header byte a second): a normal call
/// still answers, and the daemon holds no more than its cap.
fn flood_and_call(d: &Daemon, pid: u32, idle: usize, slow: usize) -> (usize, Duration) {
    let mut idle_conns = Vec::new();
    for _ in 0..idle {
        match TcpStream::connect(d.addr) {
            Ok(s) => idle_conns.push(s),
            Err(_) => break,
        }
    }
    let mut slow_conns = Vec::new();
    for _ in 0..slow {
        if let Ok(mut s) = TcpStream::connect(d.addr) {
            let _ = s.write_all(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\n");
            s.set_nonblocking(true).unwrap();
            slow_conns.push(s);
        }
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for s in slow_conns.iter_mut() {
                    let _ = s.write(b"X");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let mut c = Client::connect(d.addr);
    let answer = c.call("one.user.info", &[s(ADMIN), i(0)]);
    let latency = started.elapsed();
    assert!(answer.contains("<boolean>1</boolean>"), "{answer}");
    let held = open_sockets(pid);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = trickle.join();
    drop(idle_conns);
    (held, latency)
}

#[test]
fn a_flood_of_idle_and_slow_connections_never_locks_out_a_real_client() {
    assert!(
        raise_own_descriptor_limit() >= 3000,
        "the flood needs 3,000 descriptors: raise the hard limit (ulimit -Hn)"
    );
    let dir = temp_dir("sec-flood");
    let config = dir.join("stratusd.toml");
    std::fs::write(&config, "[connections]\nmax_connections = 1024\n").unwrap();
    let d = Daemon::start_in(dir, &["--config", config.to_str().unwrap()]);
    let pid = d.pid().expect("the daemon runs");
    let (held, latency) = flood_and_call(&d, pid, 2000, 400);
    eprintln!("flood of 2,000 idle + 400 slowloris: {held} sockets held by the daemon, a normal call answered in {latency:?}");
    // The cap, plus the listener and connections still closing.
    assert!(held <= 1024 + 64, "{held} sockets held");
    // The slowloris connections are cut by the header deadline (10 s).
    let mut slow = TcpStream::connect(d.addr).unwrap();
    slow.write_all(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = slow.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn under_a_low_descriptor_limit_calls_still_answer() {
    raise_own_descriptor_limit();
    let d = Daemon::start("sec-lowfd", &[]);
    let pid = d.pid().expect("the daemon runs");
    // The daemon started with plenty; now it has 64 descriptors in all: accept() runs into
    // EMFILE, and the daemon must close idle connections and back off rather than spin or hang.
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=64:64"])
        .status()
        .expect("prlimit runs (util-linux)");
    assert!(status.success());
    let (held, latency) = flood_and_call(&d, pid, 300, 50);
    eprintln!("under 64 descriptors: {held} sockets held, a normal call answered in {latency:?}");
    assert!(held < 64);
    let log = read_file(&d.dir.join("daemon.log"));
    let warnings = log.matches("accept failed; backing off").count();
    assert!(warnings >= 1, "EMFILE was not met: {log}");
    assert!(warnings < 20, "the back-off log repeats {warnings} times");
}

#[test]
fn a_declared_body_above_the_limit_is_refused_unread() {
    let d = Daemon::start("sec-length", &["--max-body-bytes", "1048576"]);
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 100000000000\r\n\r\n<?xml")
        .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("<i4>-509</i4>"), "{answer}");
    assert!(
        answer.contains("XML-RPC request too large: the limit is 1048576 bytes"),
        "{answer}"
    );
    // The body never comes: an answer at all (before the 10 s read timeout) shows it was not
    // awaited.
    assert!(answer.to_ascii_lowercase().contains("connection: close"));
}

/// 16 clients each send a body of the largest accepted size at once: every one is answered and
/// the daemon's peak RSS stays under issue 12's 300 MB (at the default 16 MiB limit, which a
/// debug build parses too slowly for a test, bench/request_memory.py measures it).
#[test]
fn sixteen_largest_bodies_at_once_are_all_answered() {
    let limit = 1024 * 1024;
    let d = Daemon::start("sec-bodies", &["--max-body-bytes", &limit.to_string()]);
    let head = "<?xml version=\"1.0\"?><methodCall><methodName>one.user.info</methodName><params><param><value><string>oneadmin:password</string></value></param><param><value><i4>0</i4></value></param><param><value><array><data>";
    let tail = "</data></array></value></param></params></methodCall>";
    let unit = "<value><i4>1</i4></value>";
    let n = (limit - head.len() - tail.len()) / unit.len();
    let body = format!("{head}{}{tail}", unit.repeat(n));
    assert!(body.len() <= limit && body.len() > limit - unit.len());
    let body = std::sync::Arc::new(body);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (addr, body) = (d.addr, body.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.post_raw(body.as_bytes())
            })
        })
        .collect();
    for t in threads {
        let a = t.join().unwrap();
        assert_eq!(a.status, 200);
        assert!(
            a.body.contains("<boolean>1</boolean>"),
            "{}",
            &a.body[..a.body.len().min(300)]
        );
    }
    let pid = d.pid().expect("the daemon runs");
    let status = read_file(Path::new(&format!("/proc/{pid}/status")));
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    eprintln!("16 x 1 MiB bodies at once: peak RSS {} MB", peak_kib / 1024);
    assert!(peak_kib < 300 * 1024, "peak RSS {peak_kib} KiB");
}

/// A pdisk SOURCE is one volume URI: a value spanning lines would put a second volume (someone
/// else's) into the VM's registration file, whose first line is the root volume that the end of
/// the VM hands to pdisk's quarantine (owner `pdisk`: its owner loses it).
#[test]
fn a_pdisk_source_names_one_volume_of_the_user() {
    let mp = common::marketplace::Marketplace::start();
    let d = Daemon::start("sec-pdisk", &["--pdisk-endpoint", &mp.url()]);
    let (alices, eves) = (
        "95b75092-2a22-4f59-9c3b-2c2b8a6e1c01",
        "48ac4190-9a11-4a06-8bef-03fd97080eba",
    );
    for (uuid, owner) in [(alices, "alice"), (eves, "eve")] {
        let file = d.dir.join(format!("volume-{uuid}"));
        std::fs::write(&file, vec![0u8; 64 * 1024]).unwrap();
        mp.add_volume(uuid, "MACHINE_IMAGE_LIVE", owner, "snapshot:0f0e", &file);
    }
    let mut c = d.client();
    let host = ok_id(&c.call(
        "one.host.allocate",
        &[
            s(ADMIN),
            s("stratus1"),
            s("im_dummy"),
            s("vmm_dummy"),
            s("dummy"),
            s("tm_stratuslab"),
        ],
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while field(&host_doc(&mut c, host), "STATE").as_deref() != Some("2") {
        assert!(Instant::now() < deadline, "host not monitored");
        std::thread::sleep(Duration::from_millis(50));
    }
    let source = |uuid: &str| format!("pdisk:{}/{uuid}", mp.url());
    let hostile = [
        format!("{}\n{}", source(alices), source(eves)),
        format!("{} {}", source(alices), source(eves)),
        format!("pdisk:{}/../{eves}?x", mp.url()),
        "pdisk:..".to_string(),
    ];
    for text in &hostile {
        let vm = ok_id(&c.call(
            "one.vm.allocate",
            &[
                s(EVE),
                s(&format!(
                    "NAME = p\nMEMORY = 64\nDISK = [ SOURCE = \"{text}\", TARGET = vda ]\n"
                )),
            ],
        ));
        let deadline = Instant::now() + Duration::from_secs(30);
        let doc = loop {
            let doc = unescape(&rpc_result(&c.call("one.vm.info", &[s(EVE), i(vm)])).unwrap());
            let running = field(&doc, "LCM_STATE").as_deref() == Some("3");
            if field(&doc, "STATE").as_deref() == Some("7") || running {
                break doc;
            }
            assert!(Instant::now() < deadline, "VM {vm} did not settle: {doc}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(
            field(&doc, "STATE").as_deref(),
            Some("7"),
            "{text:?}: {doc}"
        );
        assert!(
            doc.contains("does not name one pdisk volume"),
            "{text:?}: {doc}"
        );
        // Whatever happens to the VM, alice's volume stays hers and unmounted.
        c.call("one.vm.action", &[s(EVE), s("finalize"), i(vm)]);
    }
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(mp.volume(alices)["owner"], "alice");
    assert_eq!(mp.volume(alices)["quarantine"], "");
    assert_eq!(mp.mounts(alices), Vec::<String>::new());
    // Eve's own volume, named once, still boots.
    let vm = ok_id(&c.call(
        "one.vm.allocate",
        &[
            s(EVE),
            s(&format!(
                "NAME = p\nMEMORY = 64\nDISK = [ SOURCE = \"{}\", TARGET = vda ]\n",
                source(eves)
            )),
        ],
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let doc = unescape(&rpc_result(&c.call("one.vm.info", &[s(EVE), i(vm)])).unwrap());
        if field(&doc, "STATE").as_deref() == Some("3")
            && field(&doc, "LCM_STATE").as_deref() == Some("3")
        {
            break;
        }
        assert!(Instant::now() < deadline, "eve's VM did not run: {doc}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(mp.mounts(eves), vec![format!("{eves}_{vm}")]);
}

/// A tmpfs mounted on a test directory (needs root), unmounted even when the test fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs (util-linux; the test needs root)");
        assert!(status.success(), "mounting a tmpfs needs root");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Writes zeros until the file system is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
}

/// The daemon's data directory fills up: writes answer (done or refused), reads go on, the
/// daemon keeps running; after room is made and a `kill -9`, everything it acknowledged is there
/// and the database is intact.
#[test]
fn a_full_disk_loses_nothing_that_was_acknowledged() {
    let dir = temp_dir("sec-full");
    let _tmpfs = Tmpfs::mount(&dir, "48m");
    let import = dir.join("import");
    std::fs::create_dir_all(&import).unwrap();
    std::fs::write(import.join("disk.img"), vec![1u8; 1024 * 1024]).unwrap();
    let config = dir.join("stratusd.toml");
    std::fs::write(
        &config,
        format!("image_import_dirs = [\"{}\"]\n", import.display()),
    )
    .unwrap();
    let mut d = Daemon::start_in(dir.clone(), &["--config", config.to_str().unwrap()]);
    let pid = d.pid().expect("the daemon runs");
    let mut c = d.client();
    let mut acknowledged = vec![ok_id(&c.call(
        "one.vm.allocate",
        &[s(EVE), s("NAME = before\nMEMORY = 64\n")],
    ))];
    fill(&dir.join("filler"));
    let mut refused = 0;
    for n in 0..40 {
        let template = format!(
            "NAME = full{n}\nMEMORY = 64\nDESCRIPTION = \"{}\"\n",
            "x".repeat(8192)
        );
        let answer = c
            .try_call("one.vm.allocate", &[s(EVE), s(&template)])
            .unwrap_or_else(|e| {
                panic!(
                    "no answer ({e}); daemon alive: {}; log: {}",
                    Path::new(&format!("/proc/{pid}")).exists(),
                    read_file(&dir.join("daemon.log"))
                )
            });
        match rpc_result(&answer) {
            Ok(id) => acknowledged.push(id.parse().unwrap()),
            Err((message, _)) => {
                assert!(!message.is_empty());
                refused += 1;
            }
        }
    }
    // An image copy into the full repository fails the image, not the daemon.
    let image = rpc_result(&c.call(
        "one.image.allocate",
        &[
            s(EVE),
            s(&format!(
                "NAME = big\nPATH = \"{}\"\n",
                import.join("disk.img").display()
            )),
        ],
    ));
    // Reads answer, and the daemon is still there.
    let info = c.call("one.user.info", &[s(EVE), i(-1)]);
    assert!(info.contains("<boolean>1</boolean>"), "{info}");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the daemon died on a full disk"
    );
    eprintln!(
        "full disk: {} allocations acknowledged, {refused} refused; image allocate: {image:?}",
        acknowledged.len()
    );
    std::thread::sleep(Duration::from_secs(2));
    if let Ok(id) = &image {
        let doc = rpc_result(&c.call("one.image.info", &[s(EVE), i(id.parse().unwrap())])).unwrap();
        assert!(
            matches!(
                field(&doc, "STATE").as_deref(),
                Some("1") | Some("4") | Some("5")
            ),
            "{doc}"
        );
    }

    // Room again, then a crash and a restart.
    std::fs::remove_file(dir.join("filler")).unwrap();
    d.kill9();
    let conn = rusqlite::Connection::open(d.db()).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let d = Daemon::start_in(dir.clone(), &["--config", config.to_str().unwrap()]);
    let mut c = d.client();
    for id in &acknowledged {
        let doc = rpc_result(&c.call("one.vm.info", &[s(EVE), i(*id)]))
            .unwrap_or_else(|e| panic!("acknowledged VM {id} lost: {e:?}"));
        assert_eq!(field(&doc, "ID").as_deref(), Some(id.to_string().as_str()));
    }
    ok_id(&c.call(
        "one.vm.allocate",
        &[s(EVE), s("NAME = after\nMEMORY = 64\n")],
    ));
    drop(c);
    drop(d);
}
