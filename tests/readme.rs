//! The README's quick start and its first-VM walkthrough, run as they are written: the command
//! lines are read from README.md itself and run with bash from a fresh copy of the repository
//! (the files git tracks, no `var/`, no build). The copy's `target/` is a link to this build's
//! target directory, which `CARGO_TARGET_DIR` also names (by its real path, so that cargo
//! reuses the release build of the dependencies), as a user's second checkout could.
//!
//! Each test runs in a network namespace of its own (its thread only), so the README's fixed
//! ports 2633 and 8081 are free whatever else runs on the machine, and nothing it starts can be
//! reached from outside. That needs root (CAP_SYS_ADMIN), like the storage suite's bridge.
//!
//! The two tests share one copy and run one after the other (a lock), so the release build of
//! the copy is made once; each starts from an empty `var/`.

mod common;

use common::*;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The first `cargo build --release` of a fresh machine builds every dependency.
const BUILD_TIMEOUT: Duration = Duration::from_secs(45 * 60);
const VM_TIMEOUT: Duration = Duration::from_secs(120);
const DAEMON: &str = "127.0.0.1:2633";
const MARKETPLACE: &str = "127.0.0.1:8081";

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `<target dir>`: this test binary is `<target dir>/<profile>/deps/readme-<hash>`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("target directory above the test binary")
        .to_path_buf()
}

/// The indented code blocks of the README section whose heading is `## <title>`, each as its
/// command lines.
fn readme_blocks(title: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(Path::new(REPO).join("README.md")).expect("README.md");
    let heading = format!("## {title}");
    let mut lines = text.lines().skip_while(|l| *l != heading);
    assert!(
        lines.next().is_some(),
        "README.md has no section {heading:?}"
    );
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut previous_blank = true;
    for line in lines.take_while(|l| !l.starts_with("## ")) {
        if let Some(code) = line.strip_prefix("    ") {
            match current.as_mut() {
                Some(block) => block.push(code.to_string()),
                None if previous_blank => current = Some(vec![code.to_string()]),
                None => {}
            }
        } else if line.trim().is_empty() {
            if let Some(block) = current.as_mut() {
                block.push(String::new());
            }
        } else if let Some(block) = current.take() {
            blocks.push(trimmed(block));
        }
        previous_blank = line.trim().is_empty();
    }
    if let Some(block) = current {
        blocks.push(trimmed(block));
    }
    blocks
}

fn trimmed(mut block: Vec<String>) -> Vec<String> {
    while block.last().is_some_and(|l| l.is_empty()) {
        block.pop();
    }
    block
}

/// A fresh copy of the repository as git knows it (tracked and new files, not ignored ones),
/// with the files' modification times kept so cargo rebuilds only what changed since the last
/// copy. Made once per test binary run.
fn fresh_copy() -> PathBuf {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let dir = target_dir().join("readme-checkout");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("git")
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .current_dir(REPO)
            .output()
            .expect("git runs (apt-get install git)");
        assert!(
            out.status.success(),
            "git ls-files failed in {REPO}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = String::from_utf8_lossy(name).to_string();
            let from = Path::new(REPO).join(&name);
            let Ok(meta) = std::fs::symlink_metadata(&from) else {
                continue; // deleted in the work tree
            };
            if !meta.is_file() {
                continue;
            }
            let to = dir.join(&name);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
            if let Ok(mtime) = meta.modified() {
                let f = std::fs::File::options().write(true).open(&to).unwrap();
                f.set_modified(mtime).unwrap();
            }
        }
        std::os::unix::fs::symlink(target_dir(), dir.join("target")).unwrap();
        dir
    })
    .clone()
}

/// Gives this thread (and everything it starts) a network namespace of its own, with its
/// loopback up.
fn private_network() {
    // SAFETY: unshare(2) only changes the calling thread's namespaces; no memory is involved.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {} -- the README tests run the README's commands on its fixed \
         ports in a network namespace of their own, which needs root (CAP_SYS_ADMIN)",
        std::io::Error::last_os_error()
    );
    let status = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("`ip` runs (apt-get install iproute2; scripts/setup.sh --test installs it)");
    assert!(status.success(), "ip link set lo up: {status}");
}

/// A README command running in the background, in its own process group.
struct Background {
    what: String,
    child: Child,
    log: PathBuf,
}

impl Background {
    fn start(what: &str, line: &str, dir: &Path, log: PathBuf, envs: &[(&str, &str)]) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new("bash")
            .arg("-c")
            .arg(line)
            .current_dir(dir)
            .env_remove("ONE_AUTH")
            .env("CARGO_TARGET_DIR", target_dir())
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("bash runs");
        Background {
            what: what.to_string(),
            child,
            log,
        }
    }

    fn log_tail(&self) -> String {
        let text = read_file(&self.log);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Waits until `addr` accepts connections; fails if the command ends first.
    fn wait_listening(&mut self, addr: &str, timeout: Duration) {
        let addr: SocketAddr = addr.parse().unwrap();
        let deadline = Instant::now() + timeout;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} ended ({status}) before {addr} accepted connections; its output:\n{}",
                    self.what,
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {addr} within {timeout:?}; its output:\n{}",
                self.what,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM to the command (the process bash, run.sh and cargo run became by exec), and
    /// its exit status code.
    fn stop(&mut self) -> Option<i32> {
        signal(self.child.id(), false, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        signal(self.child.id(), true, libc::SIGKILL);
        let _ = self.child.wait();
        None
    }
}

/// `sig` to the process `pid`, or to its process group (each command runs in a group of its
/// own, led by it). Through kill(2) rather than kill(1), whose group kill left the daemon
/// running in one run (the test then waited for it for ever). A pid that is not a real
/// child's (0, 1 or out of range) is never signalled: kill(-1) would reach every process.
fn signal(pid: u32, group: bool, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(if group { -pid } else { pid }, sig);
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            signal(self.child.id(), true, libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn oneadmin_session(copy: &Path) -> String {
    let text = read_file(&copy.join("var/one_auth"));
    let line = text.lines().next().unwrap_or_default().trim().to_string();
    assert!(line.starts_with("oneadmin:"), "var/one_auth holds {text:?}");
    line
}

/// Polls one.vm.info until the VM is in STATE/LCM_STATE, returning its document.
fn wait_vm(c: &mut Client, session: &str, id: i32, state: &str, lcm: &str) -> String {
    let deadline = Instant::now() + VM_TIMEOUT;
    loop {
        let doc = rpc_result(&c.call("one.vm.info", &[s(session), i(id)])).expect("one.vm.info");
        if field(&doc, "STATE").as_deref() == Some(state)
            && field(&doc, "LCM_STATE").as_deref() == Some(lcm)
        {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "VM {id} did not reach STATE {state} LCM_STATE {lcm}: {doc}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn fresh_state(copy: &Path) {
    let _ = std::fs::remove_dir_all(copy.join("var"));
}

#[test]
fn quick_start_runs_a_vm_from_a_fresh_checkout() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    private_network();
    let copy = fresh_copy();
    fresh_state(&copy);
    let blocks = readme_blocks("Quick start (Debian 12)");
    let run = blocks.first().expect("a command block in the quick start");
    assert_eq!(run, &["scripts/run.sh"], "the quick start's first command");
    let mut daemon = Background::start(
        "scripts/run.sh",
        &run[0],
        &copy,
        copy.join("quick-start.log"),
        &[],
    );
    daemon.wait_listening(DAEMON, BUILD_TIMEOUT);

    let session = oneadmin_session(&copy);
    let mut c = Client::connect(DAEMON.parse().unwrap());
    let id = rpc_result(&c.call(
        "one.vm.allocate",
        &[s(&session), s("NAME = quickstart\nCPU = 1\nMEMORY = 64\n")],
    ))
    .expect("one.vm.allocate");
    let doc = wait_vm(&mut c, &session, id.parse().unwrap(), "3", "3");
    assert_eq!(
        field(&doc, "HOSTNAME").as_deref(),
        Some("localhost"),
        "{doc}"
    );
    // The data directory `var` was made absolute: the VM directory is under the copy.
    let vm_dir = field(&doc, "VM_DIR").unwrap_or_default();
    let expected = format!("{}/var/", copy.display());
    assert_eq!(vm_dir, expected, "{doc}");
    assert!(
        field(&doc, "DEPLOY_ID").is_some_and(|d| !d.is_empty()),
        "{doc}"
    );
    // Our own keep-alive connection goes first, so that the shutdown waits for nothing of ours.
    drop(c);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_tail());
}

/// The recording's throw-away public key (any key does: the client copies it into the VM).
const ID_RSA_PUB: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8ltBqJjUdAppWNfmgM3nPj0OwiYpnThmBffbRvwLJdSnRAftyxVzjGz5EK4pL+Ku3jiAGjr8ceDM4xSpxmT7HMAknf4sBxO4DQ92600jwHoHsaV/NXsDHzPkZ2GYwoN45dR+MYkXF7UVBCN4t1y8MrEHw6OeXZIauanrFlJQsLw== tester@stratuslab-client\n";

/// The CPython 2.7.18 the installed client's virtualenv was made from (scripts/setup.sh
/// --test installs it). The walkthrough runs with a HOME of its own, where the set-up script
/// would not find pyenv's interpreter, so it is named with PYTHON27, which the script reads.
fn python27() -> String {
    let cfg = target_dir().join("py27/stratuslab-client-14.6.0/pyvenv.cfg");
    let text = read_file(&cfg);
    text.lines()
        .find_map(|l| l.strip_prefix("base-executable = "))
        .map(str::to_string)
        .unwrap_or_else(|| {
            panic!(
                "the StratusLab client is not installed ({} is missing): run scripts/setup.sh \
                 --test (needs CPython 2.7.18, e.g. `pyenv install 2.7.18`)",
                cfg.display()
            )
        })
}

#[test]
fn first_vm_walkthrough_with_the_stratuslab_client() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    private_network();
    let copy = fresh_copy();
    fresh_state(&copy);
    let blocks = readme_blocks("First VM with the StratusLab client");
    assert_eq!(
        blocks.len(),
        3,
        "daemon, Marketplace, client commands: {blocks:?}"
    );
    assert_eq!(blocks[0], ["scripts/run.sh"]);
    assert_eq!(blocks[1].len(), 1, "{:?}", blocks[1]);

    let mut daemon = Background::start(
        "scripts/run.sh",
        &blocks[0][0],
        &copy,
        copy.join("walkthrough-daemon.log"),
        &[],
    );
    daemon.wait_listening(DAEMON, BUILD_TIMEOUT);
    let mut marketplace = Background::start(
        "the test Marketplace",
        &blocks[1][0],
        &copy,
        copy.join("walkthrough-marketplace.log"),
        &[],
    );
    marketplace.wait_listening(MARKETPLACE, BUILD_TIMEOUT);

    let home = copy.join("walkthrough-home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".ssh/id_rsa.pub"), ID_RSA_PUB).unwrap();
    let script = format!("set -euo pipefail\nset -x\n{}\n", blocks[2].join("\n"));
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&copy)
        .env("HOME", &home)
        .env("PYTHON27", python27())
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("ONE_AUTH")
        .env_remove("STRATUSLAB_ENDPOINT")
        .env_remove("STRATUSLAB_USERNAME")
        .env_remove("STRATUSLAB_PASSWORD")
        .env_remove("STRATUSLAB_MARKETPLACE_ENDPOINT")
        .env_remove("STRATUSLAB_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("bash runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + BUILD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            signal(child.id(), true, libc::SIGKILL);
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let context = format!(
        "stdout:\n{out}\nstderr:\n{err}\ndaemon:\n{}\nMarketplace:\n{}",
        daemon.log_tail(),
        marketplace.log_tail()
    );
    assert!(
        status.success(),
        "the walkthrough's commands failed ({status})\n{context}"
    );

    // What the README says the user sees.
    assert!(out.contains("vm ID: 0"), "{context}");
    assert!(out.contains("192.0.2.10"), "{context}");
    let described: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("0 ") && l.contains("Running"))
        .collect();
    assert!(!described.is_empty(), "{context}");
    assert!(
        read_file(&copy.join("walkthrough-marketplace.log"))
            .contains("GET /metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb -> 200"),
        "{context}"
    );

    // And what the daemon holds: alice's VM ran on localhost and was killed (DONE), its
    // lease given back.
    let session = oneadmin_session(&copy);
    let mut c = Client::connect(DAEMON.parse().unwrap());
    let doc = wait_vm(&mut c, &session, 0, "6", "0");
    assert_eq!(field(&doc, "UNAME").as_deref(), Some("alice"), "{doc}");
    assert_eq!(
        field(&doc, "HOSTNAME").as_deref(),
        Some("localhost"),
        "{doc}"
    );
    assert!(doc.contains("<IP><![CDATA[192.0.2.10]]></IP>"), "{doc}");
    let net = rpc_result(&c.call("one.vn.info", &[s(&session), i(0)])).expect("one.vn.info");
    assert_eq!(field(&net, "NAME").as_deref(), Some("public"), "{net}");
    assert_eq!(field(&net, "TOTAL_LEASES").as_deref(), Some("0"), "{net}");

    // The Marketplace has no SIGTERM handler: the signal ends it.
    marketplace.stop();
    // Our own keep-alive connection goes first, so that the shutdown waits for nothing of ours.
    drop(c);
    assert_eq!(daemon.stop(), Some(0), "{}", daemon.log_tail());
}
