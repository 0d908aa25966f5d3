//! The DHCP host file read by a real dnsmasq (Debian package `dnsmasq-base`).
//!
//! dnsmasq runs loopback-only and touches nothing of the machine's network: no DNS
//! (`--port=0`), no config file, no resolv.conf or /etc/hosts, DHCP bound to `lo` on two free
//! unprivileged ports (`--dhcp-alternate-port`), a static-only range on 127.0.0.2, leases and
//! log in the test's own directory. Nothing is ever sent to it: the test only makes it read
//! the file (at start and on SIGHUP) and checks that its log reports no error for it.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PUBLIC: &str = "NAME = \"public\"\nTYPE = FIXED\nPUBLIC = YES\n\nBRIDGE = br0\n\n\
LEASES = [ IP=\"192.168.1.1\", MAC=\"00:16:3e:d9:78:b1\"]\n\
LEASES = [ IP=\"192.168.1.2\", MAC=\"00:16:3e:d9:78:b2\"]\n\
LEASES = [ IP=\"192.168.1.3\", MAC=\"00:16:3e:d9:78:b3\"]\n\
LEASES = [ IP=\"192.168.1.4\", MAC=\"00:16:3e:d9:78:b4\"]\n";
const PRIVATE: &str = "NAME = \"private\"\nTYPE = RANGED\nPUBLIC = YES\n\nBRIDGE = br0\n\n\
NETWORK_SIZE    = 65536\nNETWORK_ADDRESS = 172.16.0.0\n";

fn dnsmasq_binary() -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    // /usr/sbin is not on an ordinary user's PATH.
    let dirs = path
        .split(':')
        .map(PathBuf::from)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")]);
    for dir in dirs {
        let candidate = dir.join("dnsmasq");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "dnsmasq is not installed: install the Debian package dnsmasq-base \
         (`apt-get install dnsmasq-base`, or run scripts/setup.sh --test)"
    );
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A loopback-only dnsmasq reading `files` as DHCP host files; killed when dropped.
struct Dnsmasq {
    child: Child,
    log: PathBuf,
}

fn loopback_args(dir: &Path, files: &[&Path]) -> Vec<String> {
    let mut args = vec![
        "--keep-in-foreground".to_string(),
        "--conf-file=/dev/null".into(),
        "--no-hosts".into(),
        "--no-resolv".into(),
        "--port=0".into(),
        "--interface=lo".into(),
        "--bind-interfaces".into(),
        format!(
            "--dhcp-alternate-port={},{}",
            free_udp_port(),
            free_udp_port()
        ),
        "--dhcp-range=127.0.0.2,static".into(),
        format!("--dhcp-leasefile={}", dir.join("dnsmasq.leases").display()),
        format!("--pid-file={}", dir.join("dnsmasq.pid").display()),
        format!("--log-facility={}", dir.join("dnsmasq.log").display()),
        "--log-dhcp".into(),
    ];
    for f in files {
        // dnsmasq changes to / at start: paths must be absolute.
        assert!(f.is_absolute());
        args.push(format!("--dhcp-hostsfile={}", f.display()));
    }
    if is_root() {
        // Stay root so that it can read the test's files and write its log; it binds only
        // unprivileged ports on lo anyway.
        args.push("--user=root".into());
    }
    args
}

impl Dnsmasq {
    fn start(dir: &Path, files: &[&Path]) -> Dnsmasq {
        let bin = dnsmasq_binary();
        let args = loopback_args(dir, files);
        let check = Command::new(&bin)
            .args(&args)
            .arg("--test")
            .output()
            .expect("dnsmasq --test runs");
        assert!(
            check.status.success(),
            "dnsmasq --test: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = Command::new(&bin)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq runs");
        Dnsmasq {
            child,
            log: dir.join("dnsmasq.log"),
        }
    }

    fn log(&self) -> String {
        read_file(&self.log)
    }

    /// Waits until dnsmasq has logged reading `file` `n` times in all.
    fn wait_reads(&mut self, file: &Path, n: usize) {
        let read_line = format!("read {}", file.display());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            let reads = log.lines().filter(|l| l.ends_with(&read_line)).count();
            if reads >= n {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dnsmasq exited ({status}); its log:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not read {} {n} times; its log:\n{log}",
                file.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// dnsmasq re-reads its host files on SIGHUP.
    fn reload(&self) {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The lines in which dnsmasq complained about `file` (`bad ... at line N of FILE`,
    /// `duplicate dhcp-host IP address ...`, `cannot read FILE`).
    fn complaints_about(&self, file: &Path) -> Vec<String> {
        let name = file.display().to_string();
        let read_line = format!("read {name}");
        self.log()
            .lines()
            .filter(|l| l.contains(&name) && !l.ends_with(&read_line))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(mac, ip)` of every lease held by a VM in these networks.
fn leases_held(c: &mut Client, nets: &[i32]) -> BTreeSet<(String, String)> {
    nets.iter()
        .flat_map(|n| vn_leases(c, *n))
        .filter(|l| l.used && l.vid >= 0)
        .map(|l| (l.mac, l.ip))
        .collect()
}

/// The file lists every lease held in `nets` (once the DHCP worker wrote it: shortly after the
/// call that changed the leases answered), with distinct host names.
fn check_file_matches(c: &mut Client, nets: &[i32], file: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let entries = loop {
        let entries = dnsmasq_file_entries(file);
        let pairs: BTreeSet<_> = entries
            .iter()
            .map(|(mac, ip, _)| (mac.clone(), ip.clone()))
            .collect();
        let held = leases_held(c, nets);
        if pairs == held {
            break entries;
        }
        assert!(
            Instant::now() < deadline,
            "{:?} != {held:?}",
            read_file(file)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let names: BTreeSet<_> = entries.iter().map(|(_, _, h)| h).collect();
    assert_eq!(names.len(), entries.len(), "host names must be distinct");
}

fn allocate(c: &mut Client, nics: &str) -> i32 {
    let tmpl = format!("NAME = dhcp\nCPU = 0.1\nMEMORY = 64\n{nics}");
    rpc_result(&c.call("one.vm.allocate", &[s(ADMIN), s(&tmpl)]))
        .expect("allocate")
        .parse()
        .unwrap()
}

#[test]
fn dnsmasq_reads_the_dhcp_host_file_without_complaint() {
    let bin = dnsmasq_binary();
    let dir = temp_dir("dnsmasq");
    let hosts = dir.join("dhcp-hosts");
    let d = Daemon::start_in(
        dir.clone(),
        &[
            "--dhcp-hosts-file",
            hosts.to_str().unwrap(),
            "--dhcp-format",
            "dnsmasq",
        ],
    );
    // Written at start-up already, before any lease exists.
    assert!(hosts.exists(), "no DHCP host file at start-up");
    let mut c = d.client();
    let public: i32 = rpc_result(&c.call("one.vn.allocate", &[s(ADMIN), s(PUBLIC)]))
        .unwrap()
        .parse()
        .unwrap();
    let private: i32 = rpc_result(&c.call("one.vn.allocate", &[s(ADMIN), s(PRIVATE)]))
        .unwrap()
        .parse()
        .unwrap();
    let nets = [public, private];
    let first = allocate(&mut c, "NIC = [ NETWORK = \"public\" ]\n");
    allocate(&mut c, "NIC = [ NETWORK = \"private\" ]\n");
    // Two NICs: two entries for one VM, with distinct host names.
    allocate(
        &mut c,
        "NIC = [ NETWORK = \"public\" ]\nNIC = [ NETWORK = \"private\" ]\n",
    );
    allocate(
        &mut c,
        "NIC = [ NETWORK = \"public\", IP = \"192.168.1.4\" ]\n",
    );
    // A held lease is kept away from VMs and from the DHCP server.
    assert!(rpc_result(&c.call(
        "one.vn.hold",
        &[s(ADMIN), i(private), s("LEASES = [ IP = 172.16.0.9 ]")]
    ))
    .is_ok());
    check_file_matches(&mut c, &nets, &hosts);
    assert_eq!(dnsmasq_file_entries(&hosts).len(), 5);

    // A second host file that the test spoils on purpose: proof that a bad file is noticed.
    let spoiled = dir.join("spoiled-hosts");
    std::fs::write(&spoiled, "").unwrap();
    let mut dnsmasq = Dnsmasq::start(&dir, &[&hosts, &spoiled]);
    dnsmasq.wait_reads(&hosts, 1);
    assert_eq!(dnsmasq.complaints_about(&hosts), Vec::<String>::new());

    // A lease change rewrites the file (the worker, after the commit); dnsmasq takes it on SIGHUP.
    assert!(rpc_result(&c.call("one.vm.action", &[s(ADMIN), s("finalize"), i(first)])).is_ok());
    allocate(&mut c, "NIC = [ NETWORK = \"private\" ]\n");
    check_file_matches(&mut c, &nets, &hosts);
    dnsmasq.reload();
    dnsmasq.wait_reads(&hosts, 2);
    assert_eq!(dnsmasq.complaints_about(&hosts), Vec::<String>::new());

    // Documentation addresses (RFC 5737), only data here.
    std::fs::write(
        &spoiled,
        "00:16:3e:00:00:01,198.51.100.7,a\n00:16:3e:00:00:02,198.51.100.7,b\nzz:16:3e,198.51.100.8,c\n",
    )
    .unwrap();
    dnsmasq.reload();
    dnsmasq.wait_reads(&spoiled, 3);
    dnsmasq.wait_reads(&hosts, 3);
    assert_eq!(dnsmasq.complaints_about(&hosts), Vec::<String>::new());
    let complaints = dnsmasq.complaints_about(&spoiled);
    assert!(
        complaints
            .iter()
            .any(|l| l.contains("duplicate dhcp-host IP address")),
        "{bin:?} did not report the spoiled file: {}",
        dnsmasq.log()
    );
    assert!(
        complaints.iter().any(|l| l.contains("bad hex constant")),
        "{}",
        dnsmasq.log()
    );
}
