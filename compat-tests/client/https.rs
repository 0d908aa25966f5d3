//! The real StratusLab command-line clients (14.6.0 and 13.5.1, Python 2.7.18) against
//! stratusd's HTTPS front door, as users at a site without one-proxy would run them:
//! `stratus-run-instance` and `stratus-describe-instance` with `--endpoint
//! https://127.0.0.1:<port>/xmlrpc` and
//!
//! * `-u/-p` (the client posts to `/pswd/xmlrpc` with HTTP Basic), checked against one-proxy's
//!   password file and against a real OpenLDAP server;
//! * `--pem-cert/--pem-key` (posts to `/cert/xmlrpc`) with a user certificate and with an
//!   RFC 3820 proxy file given as both, as grid users did;
//!
//! with the test CA trusted through OpenSSL's `SSL_CERT_FILE` (server verification stays on),
//! over the TLS 1.3 Python negotiates and over TLS 1.2 (capped with `OPENSSL_CONF`). Outputs are
//! compared with the plain-HTTP recording of the same commands, modulo VM ids and IPs; VM
//! owners, the forwarded sessions and refusals (bad passwords, refused certificates, an
//! untrusted server) are checked too. See `compat-tests/client/README.md`, "Through the HTTPS
//! front door".
//!
//! `cargo test --test client_https`; prerequisites as for `--test client`, plus `openssl` and
//! `slapd` (all installed by `scripts/setup.sh --test`).

#[allow(dead_code)]
mod clients;
#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;
#[allow(dead_code)]
mod marketplace;
#[allow(dead_code)]
mod oneadmin;
#[allow(dead_code)]
#[path = "../../tests/frontdoor/pki.rs"]
mod pki;
#[allow(dead_code)]
mod recording;
#[allow(dead_code)]
#[path = "../../tests/frontdoor/slapd.rs"]
mod slapd;

use clients::{client_bin, free_port, run_timed, wait_for_port, Outcome, CLIENT_RELEASES};
use harness::daemon::Daemon;
use harness::http::HttpClient;
use harness::xmltree::Element;
use marketplace::Marketplace;
use oneadmin::Param;
use pki::{Pki, JOHN_USER};
use recording::{Scenario, Step};
use std::collections::BTreeSet;
use std::env;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// What `cargo test NAME` must match to run this suite.
const SUITE_NAME: &str = "stratuslab-client-https";
/// The Marketplace image every recorded run used.
const IMAGE_ID: &str = "BN1EEkPiBx87_uLj2-sdybSI-Xb";
/// one-proxy's `login-pswd.properties`: alice may use the cloud, guest may not.
const PASSWORD_FILE: &str = "# one-proxy's login-pswd.properties\n\
                             alice=s3cret,cloud-access\n\
                             guest=guest-pw,other-role\n";
/// The directory layout of `tests/frontdoor/slapd.rs`: jsmith is in cn=cloud-access,
/// outsider is not.
const LDAP_USER_DN: &str = "uid={user},ou=users,o=cloud";
const LDAP_GROUP_DN: &str = "cn=cloud-access,ou=groups,o=cloud";
/// The secret one-proxy put after every user but oneadmin (xmlrpc-api.md §9.5).
const PLACEHOLDER_SECRET: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// stratus-run-instance's banner up to the allocation, as recorded.
const STARTING_LINE: &str = " :: Starting 1 machine";
/// The client's line for HTTP 401 and 403 (`Error: <reason phrase>`, stratuslab-client.md §1).
const UNAUTHORIZED: &str = "Error: Unauthorized\n";
const FORBIDDEN: &str = "Error: Forbidden\n";
/// The client's exit status for errors it reports (`Error: …`).
const CLIENT_ERROR_EXIT: i32 = 255;
/// The daemon's `--frontdoor-idle-timeout`, short so that the suite can wait past it; the
/// client commands make their calls back to back, well within it.
const IDLE_TIMEOUT_SECS: u64 = 2;
const HOST_MONITORED: i64 = 2;
const VM_ACTIVE: i64 = 3;
const LCM_RUNNING: i64 = 3;
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const WAIT_BUDGET: Duration = Duration::from_secs(60);
const START_TIMEOUT: Duration = Duration::from_secs(30);
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_STEP: Duration = Duration::from_millis(100);

/// The recorded plain-HTTP commands each release's HTTPS commands must print like: an
/// ordinary user's run, its describe once Running, its list (`fixtures/stratuslab-client/`).
struct RecordedCommands {
    release: &'static str,
    scenario: &'static str,
    run: &'static str,
    describe: &'static str,
    list: &'static str,
}

const RECORDED: [RecordedCommands; 2] = [
    RecordedCommands {
        release: "14.6.0",
        scenario: "13-user-alice-v14",
        run: "c01",
        describe: "c05",
        list: "c06",
    },
    RecordedCommands {
        release: "13.5.1",
        scenario: "13-user-bob-v13",
        run: "c01",
        describe: "c04",
        list: "c05",
    },
];

/// What one recorded command printed.
struct RecordedOutput {
    /// `13-user-alice-v14 c01`.
    name: String,
    exit_code: i32,
    stdout: String,
    stderr: String,
    marketplace: Vec<String>,
    calls: usize,
}

/// One release's recorded commands, with the VM they were about.
struct Reference {
    release: &'static str,
    run: RecordedOutput,
    describe: RecordedOutput,
    list: RecordedOutput,
    vm: Vm,
}

/// A VM as the outputs show it.
#[derive(Clone, Debug, PartialEq)]
struct Vm {
    id: i64,
    ip: String,
}

/// How a user logs in.
#[derive(Clone)]
enum Login {
    Password {
        user: &'static str,
        password: &'static str,
    },
    /// `--pem-cert`/`--pem-key`; for a proxy both are the proxy file.
    Certificate { cert: PathBuf, key: PathBuf },
}

impl Login {
    fn args(&self) -> Vec<String> {
        match self {
            Login::Password { user, password } => {
                vec![
                    "-u".into(),
                    user.to_string(),
                    "-p".into(),
                    password.to_string(),
                ]
            }
            Login::Certificate { cert, key } => vec![
                "--pem-cert".into(),
                cert.display().to_string(),
                "--pem-key".into(),
                key.display().to_string(),
            ],
        }
    }
}

/// A user who may use the cloud.
#[derive(Clone)]
struct Identity {
    /// "password file alice", "RFC 3820 proxy of John Smith".
    what: &'static str,
    login: Login,
    /// The OpenNebula user name the front door maps it to (xmlrpc-api.md §9.5).
    user: &'static str,
}

impl Identity {
    /// The session the daemon logs for each forwarded call.
    fn logged_session(&self) -> String {
        format!("{}:{PLACEHOLDER_SECRET}", self.user)
    }
}

/// Which CAs the client's OpenSSL trusts, and which TLS versions it may use.
#[derive(Clone, Copy, PartialEq)]
enum Trust {
    /// `SSL_CERT_FILE` = the test CA: TLS 1.3 is negotiated.
    TestCa,
    /// The same, with `OPENSSL_CONF` capping the protocol at TLS 1.2 (what Python 2.7 on the
    /// OpenSSL 1.0 of StratusLab's days spoke).
    TestCaTls12,
    /// `SSL_CERT_DIR` = the grid CA directory (`<hash>.0` files) the front door uses.
    GridCaDirectory,
    /// `SSL_CERT_FILE` = a CA that did not issue the server certificate.
    OtherCa,
    /// Nothing set: the system's CAs only.
    SystemDefault,
}

impl Trust {
    fn label(self) -> &'static str {
        match self {
            Trust::TestCa => "TLS 1.3",
            Trust::TestCaTls12 => "TLS 1.2",
            Trust::GridCaDirectory => "SSL_CERT_DIR",
            Trust::OtherCa => "SSL_CERT_FILE of another CA",
            Trust::SystemDefault => "system CAs",
        }
    }
}

fn main() -> ExitCode {
    clients::run_suite("client_https", SUITE_NAME, run)
}

fn run() -> Result<bool, String> {
    let started = Instant::now();
    let daemon_binary = env::var_os("STRATUSD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_stratusd")));
    let venvs = clients::venvs_dir()?;
    check_prerequisites(&venvs)?;
    let references = load_references()?;
    println!(
        "recorded references: {}",
        references
            .iter()
            .map(|r| format!(
                "[{}] {}, {}, {}",
                r.release, r.run.name, r.describe.name, r.list.name
            ))
            .collect::<Vec<_>>()
            .join("; ")
    );

    let work_dir = env::temp_dir().join(format!("stratusd-client-https-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work_dir);
    fs::create_dir_all(&work_dir)
        .map_err(|e| format!("cannot create {}: {e}", work_dir.display()))?;
    let home = clients::make_home(&work_dir)?;
    let setup_started = Instant::now();
    let pki = Pki::create(&work_dir.join("pki"));
    let proxy_file = write_proxy_file(&pki, &home)?;
    let tls12_config = work_dir.join("openssl-tls12.cnf");
    write_file(&tls12_config, OPENSSL_TLS12_CONFIG)?;
    let slapd_dir = work_dir.join("slapd");
    let ldap = slapd::Slapd::start(&slapd_dir, free_port()?);
    let password_file = work_dir.join("login-pswd.properties");
    write_file(&password_file, PASSWORD_FILE)?;
    let https_port = free_port()?;
    let daemon_args: Vec<String> = [
        "--frontdoor-listen",
        &format!("127.0.0.1:{https_port}"),
        "--tls-cert",
        &pki.server_cert.display().to_string(),
        "--tls-key",
        &pki.server_key.display().to_string(),
        "--password-file",
        &password_file.display().to_string(),
        "--ldap-url",
        &ldap.url,
        "--ldap-user-dn",
        LDAP_USER_DN,
        "--ldap-group-dn",
        LDAP_GROUP_DN,
        "--ca-dir",
        &pki.ca_dir.display().to_string(),
        "--allowed-dn-file",
        &pki.allowed_dn_file.display().to_string(),
        "--frontdoor-idle-timeout",
        &IDLE_TIMEOUT_SECS.to_string(),
        // The forwarded sessions are logged at debug level.
        "--log-level",
        "info,stratusd=debug",
    ]
    .map(String::from)
    .to_vec();
    let daemon =
        Daemon::start_with_args(&daemon_binary, &work_dir, START_TIMEOUT, 0.0, &daemon_args)
            .map_err(|(e, log)| format!("daemon did not start: {e} (log: {})", log.display()))?;
    wait_for_port(https_port, START_TIMEOUT)?;
    let marketplace = Marketplace::start()?;
    println!(
        "stratusd: /RPC2 on {}, front door on https://127.0.0.1:{https_port}, LDAP {}, test \
         Marketplace on 127.0.0.1:{}, PKI and slapd ready after {:.1} s, work dir {}",
        daemon.addr(),
        ldap.url,
        marketplace.port(),
        setup_started.elapsed().as_secs_f64(),
        work_dir.display()
    );

    let mut suite = Suite {
        venvs,
        rpc: HttpClient::new(daemon.addr(), RPC_TIMEOUT),
        https_port,
        marketplace,
        home,
        pki,
        tls12_config,
        log_path: daemon.log_path().to_path_buf(),
        work_dir: work_dir.clone(),
        passed: 0,
        failed: 0,
    };
    if let Err(problem) = suite.run_all(&references, &proxy_file) {
        suite.fail("the run stops here", &problem);
    }
    let (passed, failed) = (suite.passed, suite.failed);
    drop(suite);
    drop(ldap);
    let keep = env::var("CLIENT_KEEP").is_ok_and(|v| v == "1");
    Ok(clients::finish_suite(
        "client_https",
        started,
        daemon,
        &work_dir,
        keep,
        passed,
        failed,
    ))
}

/// Everything the suite runs must be there; otherwise say what to install.
fn check_prerequisites(venvs: &Path) -> Result<(), String> {
    clients::check_installed(venvs)?;
    let openssl = std::process::Command::new("openssl")
        .arg("version")
        .output();
    if !openssl.is_ok_and(|out| out.status.success()) {
        return Err(
            "the `openssl` command is needed to make the test PKI: install the Debian \
                    package openssl (scripts/setup.sh --test does)"
                .into(),
        );
    }
    for program in ["/usr/sbin/slapd", "/usr/sbin/slapadd"] {
        if !Path::new(program).is_file() {
            return Err(format!(
                "{program} is missing: the LDAP checks run a real OpenLDAP server; install the \
                 Debian package slapd (scripts/setup.sh --test does)"
            ));
        }
    }
    Ok(())
}

/// The recorded commands of [`RECORDED`], checked to be what they are taken for.
fn load_references() -> Result<Vec<Reference>, String> {
    let fixtures = Path::new(MANIFEST_DIR).join("fixtures/stratuslab-client");
    let scenarios = recording::load_run(&fixtures)?;
    RECORDED
        .iter()
        .map(|recorded| {
            let scenario = scenarios
                .iter()
                .find(|s| s.name == recorded.scenario)
                .ok_or_else(|| format!("the recording has no scenario {}", recorded.scenario))?;
            let run = recorded_output(scenario, recorded.run, "stratus-run-instance")?;
            let describe =
                recorded_output(scenario, recorded.describe, "stratus-describe-instance")?;
            let list = recorded_output(scenario, recorded.list, "stratus-describe-instance")?;
            let vm = vm_of_run_output(&run.stdout)
                .ok_or_else(|| format!("{}: no VM id and IP in its stdout", run.name))?;
            for (output, wanted) in [
                (&run, " :: Done!"),
                (&describe, " Running "),
                (&list, " Running "),
            ] {
                if output.exit_code != 0 || !output.stdout.contains(wanted) {
                    return Err(format!(
                        "{} is not a successful command showing {wanted:?}",
                        output.name
                    ));
                }
            }
            Ok(Reference {
                release: recorded.release,
                run,
                describe,
                list,
                vm,
            })
        })
        .collect()
}

fn recorded_output(
    scenario: &Scenario,
    label: &str,
    program: &str,
) -> Result<RecordedOutput, String> {
    let name = format!("{} {label}", scenario.name);
    let command = scenario
        .steps
        .iter()
        .find_map(|step| match step {
            Step::Command(c) if c.label == label => Some(c),
            _ => None,
        })
        .ok_or_else(|| format!("the recording has no command {name}"))?;
    if !command
        .argv
        .first()
        .is_some_and(|p| p.ends_with(&format!("/{program}")))
    {
        return Err(format!("{name} is not {program}"));
    }
    Ok(RecordedOutput {
        name,
        exit_code: command.exit_code,
        stdout: String::from_utf8_lossy(&command.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&command.stderr).into_owned(),
        marketplace: command.marketplace.clone(),
        calls: command.xmlrpc.as_ref().map_or(0, |r| r.methods.len()),
    })
}

/// ` :: Machine 1 (vm ID: 10)` and `\tPublic ip: 192.168.1.8` of a run's stdout.
fn vm_of_run_output(stdout: &str) -> Option<Vm> {
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix(" :: Machine 1 (vm ID: "))
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|n| n.parse().ok())?;
    let ip = stdout
        .lines()
        .find_map(|l| l.strip_prefix("\tPublic ip: "))?
        .to_string();
    Some(Vm { id, ip })
}

/// `recorded` as it reads for `ours` instead of the recorded VM. Table rows (first field the
/// VM id) are compared field by field, since the id column's padding depends on the id's
/// length; every other line exactly. `None` when equal, else the first difference.
fn differs_from_recorded(
    recorded: &str,
    recorded_vm: &Vm,
    actual: &str,
    ours: &Vm,
) -> Option<String> {
    let recorded_id = recorded_vm.id.to_string();
    let expected_lines: Vec<String> = recorded
        .lines()
        .map(|line| {
            line.replace(
                &format!("(vm ID: {})", recorded_vm.id),
                &format!("(vm ID: {})", ours.id),
            )
            .replace(&recorded_vm.ip, &ours.ip)
        })
        .collect();
    let actual_lines: Vec<&str> = actual.lines().collect();
    if expected_lines.len() != actual_lines.len()
        || recorded.ends_with('\n') != actual.ends_with('\n')
    {
        return Some(format!(
            "{} lines expected, {} printed: {actual:?}",
            expected_lines.len(),
            actual_lines.len()
        ));
    }
    for (expected, actual) in expected_lines.iter().zip(&actual_lines) {
        let is_row = expected.split_whitespace().next() == Some(recorded_id.as_str());
        let same = if is_row {
            let fields: Vec<String> = expected
                .split_whitespace()
                .map(|field| {
                    if field == recorded_id {
                        ours.id.to_string()
                    } else if field == format!("one-{recorded_id}") {
                        format!("one-{}", ours.id)
                    } else {
                        field.to_string()
                    }
                })
                .collect();
            fields
                .iter()
                .map(String::as_str)
                .eq(actual.split_whitespace())
        } else {
            expected == actual
        };
        if !same {
            return Some(format!("expected {expected:?}, printed {actual:?}"));
        }
    }
    None
}

/// What a refused `stratus-run-instance` prints: the recorded banner up to the allocation,
/// then the error line.
fn refused_run_output(reference: &Reference, error_line: &str) -> String {
    let mut out = String::new();
    for line in reference.run.stdout.lines() {
        out.push_str(line);
        out.push('\n');
        if line == STARTING_LINE {
            break;
        }
    }
    out.push_str(error_line);
    out
}

/// The client side of a grid proxy: `grid-proxy-init` writes the proxy certificate, its key
/// and the user certificate into one file, readable only by its owner.
fn write_proxy_file(pki: &Pki, home: &Path) -> Result<PathBuf, String> {
    let proxy = &pki.john_rfc_proxy;
    let mut text = String::new();
    for part in [&proxy.chain[0], &proxy.key, &proxy.chain[1]] {
        text.push_str(
            &fs::read_to_string(part)
                .map_err(|e| format!("cannot read {}: {e}", part.display()))?,
        );
    }
    let path = home.join("x509up_u1000");
    write_file(&path, &text)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))?;
    Ok(path)
}

/// An OpenSSL configuration whose system default caps TLS at 1.2 (OpenSSL reads it at library
/// initialisation through `OPENSSL_CONF`; Python 2.7 has no way to set a maximum version).
const OPENSSL_TLS12_CONFIG: &str = "openssl_conf = openssl_init\n\
                                    [openssl_init]\n\
                                    ssl_conf = ssl_configuration\n\
                                    [ssl_configuration]\n\
                                    system_default = tls_defaults\n\
                                    [tls_defaults]\n\
                                    MaxProtocol = TLSv1.2\n";

/// What TLS the client's `httplib` gets: `ssl.create_default_context()` is the context
/// Python 2.7.18's `httplib.HTTPSConnection` makes when given none (certificate and host name
/// verification on, CAs from OpenSSL's default paths).
const TLS_PROBE: &str = "import socket, ssl, sys\n\
                         context = ssl.create_default_context()\n\
                         tcp = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n\
                         tls = context.wrap_socket(tcp, server_hostname='127.0.0.1')\n\
                         print('%s %s' % (tls.version(), tls.cipher()[0]))\n";

/// Two calls through the client's own connector (`stratuslab.Authn`: a `ServerProxy` on
/// `https://user:password@…/pswd/xmlrpc`, or a `SafeTransport` with the certificate), the
/// second after the front door has ended the idle keep-alive connection.
const IDLE_CALLS: &str = r#"import sys, time
from stratuslab.Authn import CertificateCredentialsConnector, UsernamePasswordCredentialsConnector
class Options(object):
    pass
endpoint, pause, kind, credential = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
runnable = Options()
runnable.cloud = Options()
runnable.cloud.server = endpoint
if kind == 'password':
    runnable.username, runnable.password = credential
    connector = UsernamePasswordCredentialsConnector(runnable)
else:
    runnable.pemCertificate = runnable.pemKey = credential[0]
    connector = CertificateCredentialsConnector(runnable)
rpc = connector.createRpcConnection()
session = connector.createSessionString()
first = rpc.one.user.info(session, -1)
time.sleep(pause)
second = rpc.one.user.info(session, -1)
print('%s %s' % (first[0], second[0]))
"#;
fn write_file(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// One call the front door forwarded: the session it ran with and the client's address.
#[derive(Debug, Clone, PartialEq)]
struct Forwarded {
    session: String,
    peer: String,
}

/// Every `forwarding request from <session>` line of the daemon log, in order.
fn forwarded_calls(log: &Path) -> Vec<Forwarded> {
    let text = fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let rest = line.split_once("forwarding request from ")?.1;
            let session = rest.split_whitespace().next()?.to_string();
            let peer = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("peer="))
                .unwrap_or_default()
                .to_string();
            Some(Forwarded { session, peer })
        })
        .collect()
}

/// What exists, to show that a refused command created nothing.
#[derive(Debug, PartialEq)]
struct Snapshot {
    users: BTreeSet<String>,
    vms: BTreeSet<i64>,
    forwarded: usize,
}

struct Suite {
    venvs: PathBuf,
    rpc: HttpClient,
    https_port: u16,
    marketplace: Marketplace,
    home: PathBuf,
    pki: Pki,
    tls12_config: PathBuf,
    log_path: PathBuf,
    work_dir: PathBuf,
    passed: usize,
    failed: usize,
}

impl Suite {
    fn pass(&mut self, what: &str, detail: &str) {
        self.passed += 1;
        println!("PASS {what}: {detail}");
    }

    fn fail(&mut self, what: &str, problem: &str) {
        self.failed += 1;
        println!("FAIL {what}: {problem}");
    }

    fn report(&mut self, what: &str, problems: Vec<String>, detail: &str) {
        match problems.split_first() {
            None => self.pass(what, detail),
            Some((first, more)) => {
                self.fail(what, first);
                for line in more {
                    println!("    {line}");
                }
            }
        }
    }

    fn run_all(&mut self, references: &[Reference], proxy_file: &Path) -> Result<(), String> {
        self.site_setup()?;
        self.check_tls()?;
        let identities = [
            Identity {
                what: "password file alice",
                login: Login::Password {
                    user: "alice",
                    password: "s3cret",
                },
                user: "alice",
            },
            Identity {
                what: "LDAP jsmith",
                login: Login::Password {
                    user: "jsmith",
                    password: "ldap-secret-1",
                },
                user: "jsmith",
            },
            Identity {
                what: "certificate of John Smith",
                login: Login::Certificate {
                    cert: self.pki.john.chain[0].clone(),
                    key: self.pki.john.key.clone(),
                },
                user: JOHN_USER,
            },
            Identity {
                what: "RFC 3820 proxy of John Smith",
                login: Login::Certificate {
                    cert: proxy_file.to_path_buf(),
                    key: proxy_file.to_path_buf(),
                },
                user: JOHN_USER,
            },
        ];
        println!("== run, describe, list through the front door (TLS 1.3)");
        for identity in &identities {
            for reference in references {
                self.run_describe_list(reference, identity, Trust::TestCa)?;
            }
        }
        println!("== the same over TLS 1.2");
        for identity in [&identities[0], &identities[3]] {
            for reference in references {
                self.run_describe_list(reference, identity, Trust::TestCaTls12)?;
            }
        }
        println!("== a kept-alive connection the front door ends while idle");
        self.idle_keep_alive(CLIENT_RELEASES[0], &identities[0])?;
        self.idle_keep_alive(CLIENT_RELEASES[1], &identities[3])?;
        println!("== refusals: nothing reaches the core, nothing is created");
        for reference in references {
            self.refusals(reference, &identities)?;
        }
        Ok(())
    }

    /// The installer's set-up as recorded (`00-site-setup`: a simulated host, the public,
    /// local and private networks, the ACLs that let users create VMs), replayed on /RPC2.
    fn site_setup(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let fixtures = Path::new(MANIFEST_DIR).join("fixtures/stratuslab-client");
        let scenarios = recording::load_run(&fixtures)?;
        let setup = scenarios
            .iter()
            .find(|s| s.name == "00-site-setup")
            .ok_or("the recording has no 00-site-setup")?;
        for call in &setup.traffic {
            let answer = self
                .rpc
                .post("/RPC2", "text/xml", call.request.as_bytes())
                .map_err(|e| format!("site set-up seq {} {}: {e}", call.seq, call.method))?;
            let body = String::from_utf8_lossy(&answer.body);
            if answer.status != 200 || !body.contains("<boolean>1</boolean>") {
                return Err(format!(
                    "site set-up seq {} {} failed: {body}",
                    call.seq, call.method
                ));
            }
        }
        self.wait_until("every host MONITORED", |s| {
            let hosts = oneadmin::host_states(&mut s.rpc)?;
            Ok(!hosts.is_empty() && hosts.values().all(|state| *state == HOST_MONITORED))
        })?;
        self.pass(
            "site set-up",
            &format!(
                "{} recorded installer calls (00-site-setup) replayed on /RPC2, host MONITORED ({:.1} s)",
                setup.traffic.len(),
                started.elapsed().as_secs_f64()
            ),
        );
        Ok(())
    }

    /// The TLS that Python 2.7.18's default HTTPS context negotiates with the front door.
    fn check_tls(&mut self) -> Result<(), String> {
        let probe = self.work_dir.join("tls_probe.py");
        write_file(&probe, TLS_PROBE)?;
        let python = client_bin(&self.venvs, CLIENT_RELEASES[0]).join("python");
        for (trust, expected_version) in [
            (Trust::TestCa, "TLSv1.3"),
            (Trust::TestCaTls12, "TLSv1.2"),
            (Trust::GridCaDirectory, "TLSv1.3"),
        ] {
            let what = format!(
                "TLS probe ({}, Python 2.7.18 ssl.create_default_context)",
                trust.label()
            );
            let outcome = self.run_program(
                &python,
                &[probe.display().to_string(), self.https_port.to_string()],
                trust,
            )?;
            let printed = outcome.stdout.trim().to_string();
            let mut problems = Vec::new();
            if outcome.code != 0 {
                problems.push(format!(
                    "exit {}: {}",
                    outcome.code,
                    outcome.last_stderr_line()
                ));
            } else if !printed.starts_with(&format!("{expected_version} ")) {
                problems.push(format!(
                    "negotiated {printed:?}, expected {expected_version}"
                ));
            }
            self.report(
                &what,
                problems,
                &format!(
                    "{printed}, server certificate verified ({:.2} s)",
                    outcome.seconds
                ),
            );
        }
        Ok(())
    }

    /// stratus-run-instance, then (once the VM runs) stratus-describe-instance <id> and the
    /// list, each compared with the plain-HTTP recording; the VM is then finalized.
    fn run_describe_list(
        &mut self,
        reference: &Reference,
        identity: &Identity,
        trust: Trust,
    ) -> Result<(), String> {
        let release = reference.release;
        let prefix = format!("[{release}] {} ({})", identity.what, trust.label());
        let vm_id = self.next_vm_id()?;

        // stratus-run-instance
        let what = format!("{prefix}: stratus-run-instance");
        let forwarded_before = forwarded_calls(&self.log_path).len();
        let _ = self.marketplace.take_log();
        let mut args = self.endpoint_args(identity);
        args.extend([
            "--marketplace-endpoint".to_string(),
            marketplace::base_url(self.marketplace.port()),
            "-k".to_string(),
            self.home.join("id_rsa.pub").display().to_string(),
            IMAGE_ID.to_string(),
        ]);
        let outcome = self.run_client(release, "stratus-run-instance", &args, trust)?;
        let requests = self.marketplace.take_log();
        let mut problems = Vec::new();
        let vm = match self.vm_document(vm_id) {
            Ok(doc) => {
                check_owner(&doc, identity, &mut problems);
                nic_ip(&doc).map(|ip| Vm { id: vm_id, ip })
            }
            Err(problem) => {
                problems.push(format!("no VM {vm_id}: {problem}"));
                None
            }
        };
        let vm = vm.unwrap_or(Vm {
            id: vm_id,
            ip: String::new(),
        });
        self.check_outcome(&outcome, &reference.run, &reference.vm, &vm, &mut problems);
        if requests != reference.run.marketplace {
            problems.push(format!(
                "Marketplace requests {requests:?}, recorded {:?}",
                reference.run.marketplace
            ));
        }
        let calls = self.check_forwarded(
            forwarded_before,
            reference.run.calls,
            identity,
            &mut problems,
        );
        self.report(
            &what,
            problems,
            &format!(
                "exit 0, VM {} at {} owned by {}, stdout as recorded in {} (VM {} → {}), {calls}, {:.2} s",
                vm.id, vm.ip, identity.user, reference.run.name, reference.vm.id, vm.id, outcome.seconds
            ),
        );

        self.wait_until(&format!("VM {vm_id} RUNNING"), |s| {
            Ok(oneadmin::vm_state(&mut s.rpc, vm_id)? == (VM_ACTIVE, LCM_RUNNING))
        })?;

        // stratus-describe-instance <id>, and the list (the user's own VMs: this one)
        for (command, recorded, with_id) in [
            ("stratus-describe-instance", &reference.describe, true),
            ("stratus-describe-instance (list)", &reference.list, false),
        ] {
            let what = format!(
                "{prefix}: {command}{}",
                if with_id {
                    format!(" {vm_id}")
                } else {
                    String::new()
                }
            );
            let forwarded_before = forwarded_calls(&self.log_path).len();
            let mut args = self.endpoint_args(identity);
            if with_id {
                args.push(vm_id.to_string());
            }
            let outcome = self.run_client(release, "stratus-describe-instance", &args, trust)?;
            let mut problems = Vec::new();
            self.check_outcome(&outcome, recorded, &reference.vm, &vm, &mut problems);
            let calls =
                self.check_forwarded(forwarded_before, recorded.calls, identity, &mut problems);
            let row = outcome
                .stdout
                .lines()
                .nth(1)
                .unwrap_or("")
                .trim_end()
                .to_string();
            self.report(
                &what,
                problems,
                &format!(
                    "exit 0, {row:?}, as recorded in {}, {calls}, {:.2} s",
                    recorded.name, outcome.seconds
                ),
            );
        }
        oneadmin::call(
            &mut self.rpc,
            "one.vm.action",
            &[Param::Text("finalize"), Param::Int(vm_id)],
        )
        .map(|_| ())
    }

    /// xmlrpclib keeps its connection between calls; when the front door has ended it for
    /// idleness, the next call must still be answered (xmlrpclib resends a request once when
    /// the kept connection turns out to be closed in order).
    fn idle_keep_alive(&mut self, release: &str, identity: &Identity) -> Result<(), String> {
        let what = format!(
            "[{release}] {}: two calls {}.5 s apart on the client's connector",
            identity.what, IDLE_TIMEOUT_SECS
        );
        let script = self.work_dir.join("idle_calls.py");
        write_file(&script, IDLE_CALLS)?;
        let mut args = vec![
            script.display().to_string(),
            format!("https://127.0.0.1:{}/xmlrpc", self.https_port),
            format!("{IDLE_TIMEOUT_SECS}.5"),
        ];
        match &identity.login {
            Login::Password { user, password } => args.extend([
                "password".to_string(),
                user.to_string(),
                password.to_string(),
            ]),
            Login::Certificate { cert, .. } => {
                args.extend(["certificate".to_string(), cert.display().to_string()])
            }
        }
        let forwarded_before = forwarded_calls(&self.log_path).len();
        let python = client_bin(&self.venvs, release).join("python");
        let outcome = self.run_program(&python, &args, Trust::TestCa)?;
        let mut problems = Vec::new();
        if outcome.code != 0 || outcome.stdout != "True True\n" {
            problems.push(format!(
                "exit {}, stdout {:?}; stderr: {}",
                outcome.code,
                outcome.stdout,
                outcome.last_stderr_line()
            ));
        }
        let calls: Vec<Forwarded> = forwarded_calls(&self.log_path)
            .into_iter()
            .skip(forwarded_before)
            .collect();
        let connections: BTreeSet<&str> = calls.iter().map(|c| c.peer.as_str()).collect();
        if calls.len() != 2
            || connections.len() != 2
            || calls.iter().any(|c| c.session != identity.logged_session())
        {
            problems.push(format!(
                "expected 2 calls as {} on 2 connections, forwarded {calls:?}",
                identity.user
            ));
        }
        self.report(
            &what,
            problems,
            &format!(
                "both answered; the first connection ended by the front door after {IDLE_TIMEOUT_SECS} s idle, the second call resent on a new one ({:.2} s)",
                outcome.seconds
            ),
        );
        Ok(())
    }

    /// Bad credentials, refused certificates and an untrusted server: the client fails as
    /// one-proxy's clients saw it, and nothing reaches the core.
    fn refusals(&mut self, reference: &Reference, identities: &[Identity]) -> Result<(), String> {
        let release = reference.release;
        let password = |user: &'static str, password: &'static str| Identity {
            what: "",
            login: Login::Password { user, password },
            user,
        };
        let certificate = |credential: &pki::Credential| Identity {
            what: "",
            login: Login::Certificate {
                cert: credential.chain[0].clone(),
                key: credential.key.clone(),
            },
            user: "",
        };
        let unauthorized_run = refused_run_output(reference, UNAUTHORIZED);
        let mut cases: Vec<(String, Identity, bool, Trust, Expected)> = vec![
            (
                "wrong password (password file)".into(),
                password("alice", "wrong"),
                true,
                Trust::TestCa,
                Expected::Printed(CLIENT_ERROR_EXIT, unauthorized_run.clone()),
            ),
            (
                "wrong password (password file)".into(),
                password("alice", "wrong"),
                false,
                Trust::TestCa,
                Expected::Printed(CLIENT_ERROR_EXIT, UNAUTHORIZED.into()),
            ),
            (
                "unknown user".into(),
                password("mallory", "s3cret"),
                false,
                Trust::TestCa,
                Expected::Printed(CLIENT_ERROR_EXIT, UNAUTHORIZED.into()),
            ),
            (
                "wrong password (LDAP)".into(),
                password("jsmith", "wrong"),
                true,
                Trust::TestCa,
                Expected::Printed(CLIENT_ERROR_EXIT, unauthorized_run),
            ),
            (
                "password file user without cloud-access".into(),
                password("guest", "guest-pw"),
                false,
                Trust::TestCa,
                Expected::Printed(CLIENT_ERROR_EXIT, FORBIDDEN.into()),
            ),
            (
                "LDAP user outside cn=cloud-access".into(),
                password("outsider", "ldap-secret-2"),
                false,
                Trust::TestCa,
                Expected::Printed(CLIENT_ERROR_EXIT, FORBIDDEN.into()),
            ),
            (
                "certificate listed without cloud-access".into(),
                certificate(&self.pki.not_in_role),
                false,
                Trust::TestCa,
                Expected::Printed(CLIENT_ERROR_EXIT, FORBIDDEN.into()),
            ),
            (
                "client certificate of an untrusted CA".into(),
                certificate(&self.pki.untrusted),
                false,
                Trust::TestCa,
                Expected::SslError("TLSV1_ALERT_UNKNOWN_CA"),
            ),
            (
                "revoked client certificate".into(),
                certificate(&self.pki.revoked),
                false,
                Trust::TestCa,
                Expected::SslError("SSLV3_ALERT_CERTIFICATE_REVOKED"),
            ),
        ];
        // An untrusted server, for both doors: the client's verification stops it before
        // anything is sent.
        let password_user = &identities[0];
        let certificate_user = &identities[2];
        for (trust, identity, run_instance) in [
            (Trust::OtherCa, password_user, false),
            (Trust::OtherCa, certificate_user, true),
            (Trust::SystemDefault, password_user, false),
        ] {
            cases.push((
                format!(
                    "untrusted server certificate ({}, {})",
                    trust.label(),
                    identity.what
                ),
                identity.clone(),
                run_instance,
                trust,
                Expected::SslError("CERTIFICATE_VERIFY_FAILED"),
            ));
        }
        for (case, identity, run_instance, trust, expected) in cases {
            let command = if run_instance {
                "stratus-run-instance"
            } else {
                "stratus-describe-instance"
            };
            let what = format!("[{release}] refused, {case}: {command}");
            let before = self.snapshot()?;
            let mut args = self.endpoint_args(&identity);
            if run_instance {
                args.extend([
                    "--marketplace-endpoint".to_string(),
                    marketplace::base_url(self.marketplace.port()),
                    "-k".to_string(),
                    self.home.join("id_rsa.pub").display().to_string(),
                    IMAGE_ID.to_string(),
                ]);
            }
            let outcome = self.run_client(release, command, &args, trust)?;
            let _ = self.marketplace.take_log();
            let mut problems = Vec::new();
            let shown = match &expected {
                Expected::Printed(code, stdout) => {
                    if outcome.code != *code {
                        problems.push(format!(
                            "exit {}, expected {code}; stderr: {}",
                            outcome.code,
                            outcome.last_stderr_line()
                        ));
                    }
                    if outcome.stdout != *stdout {
                        problems.push(format!("stdout {:?}, expected {stdout:?}", outcome.stdout));
                    }
                    format!(
                        "exit {}, {:?}",
                        outcome.code,
                        outcome.stdout.lines().last().unwrap_or("")
                    )
                }
                Expected::SslError(reason) => {
                    if outcome.code == 0 {
                        problems.push("the command succeeded".into());
                    }
                    let last = outcome.last_stderr_line();
                    if !(last.starts_with("ssl.SSLError") || last.starts_with("SSLError"))
                        || !last.contains(reason)
                    {
                        problems.push(format!(
                            "last stderr line {last:?}, expected an SSLError with {reason}"
                        ));
                    }
                    format!("exit {}, {last:?}", outcome.code)
                }
            };
            let after = self.snapshot()?;
            if after != before {
                problems.push(format!(
                    "something changed: before {before:?}, after {after:?}"
                ));
            }
            self.report(
                &what,
                problems,
                &format!(
                    "{shown}, nothing forwarded or created, {:.2} s",
                    outcome.seconds
                ),
            );
        }
        Ok(())
    }

    /// Output, exit code and stderr against a recorded command.
    fn check_outcome(
        &self,
        outcome: &Outcome,
        recorded: &RecordedOutput,
        recorded_vm: &Vm,
        vm: &Vm,
        problems: &mut Vec<String>,
    ) {
        if outcome.code != recorded.exit_code {
            problems.push(format!(
                "exit {}, recorded {}; stderr: {}",
                outcome.code,
                recorded.exit_code,
                outcome.last_stderr_line()
            ));
        }
        if let Some(difference) =
            differs_from_recorded(&recorded.stdout, recorded_vm, &outcome.stdout, vm)
        {
            problems.push(format!("stdout: {difference}"));
        }
        if outcome.stderr != recorded.stderr {
            problems.push(format!(
                "stderr {:?}, recorded {:?}",
                outcome.stderr, recorded.stderr
            ));
        }
    }

    /// The calls forwarded since `before`: `expected` of them, all with the identity's
    /// session, all on one connection (the client's xmlrpclib keeps it alive).
    fn check_forwarded(
        &self,
        before: usize,
        expected: usize,
        identity: &Identity,
        problems: &mut Vec<String>,
    ) -> String {
        let calls: Vec<Forwarded> = forwarded_calls(&self.log_path)
            .into_iter()
            .skip(before)
            .collect();
        let session = identity.logged_session();
        if calls.len() != expected {
            problems.push(format!(
                "{} calls forwarded, the recording has {expected}: {calls:?}",
                calls.len()
            ));
        }
        if let Some(other) = calls.iter().find(|c| c.session != session) {
            problems.push(format!(
                "a call forwarded as {:?}, expected {session:?}",
                other.session
            ));
        }
        let connections: BTreeSet<&str> = calls.iter().map(|c| c.peer.as_str()).collect();
        if connections.len() > 1 {
            problems.push(format!(
                "the calls came on {} connections: {connections:?}",
                connections.len()
            ));
        }
        format!(
            "{} call{} forwarded as {}:aaa… on {} connection{}",
            calls.len(),
            if calls.len() == 1 { "" } else { "s" },
            identity.user,
            connections.len(),
            if connections.len() == 1 { "" } else { "s" }
        )
    }

    fn endpoint_args(&self, identity: &Identity) -> Vec<String> {
        let mut args = vec![
            "--endpoint".to_string(),
            format!("https://127.0.0.1:{}/xmlrpc", self.https_port),
        ];
        args.extend(identity.login.args());
        args
    }

    fn run_client(
        &self,
        release: &str,
        program: &str,
        args: &[String],
        trust: Trust,
    ) -> Result<Outcome, String> {
        let bin = client_bin(&self.venvs, release).join(program);
        self.run_program(&bin, args, trust)
    }

    /// Runs a program of a client virtualenv in the recorded client environment plus the
    /// TLS settings of `trust`.
    fn run_program(
        &self,
        program: &Path,
        args: &[String],
        trust: Trust,
    ) -> Result<Outcome, String> {
        let ca_file = self.pki.ca_cert.as_os_str();
        let other_ca = self.pki.ca_cert.with_file_name("other_ca.pem");
        // The virtualenvs' package directories stay as installed.
        let mut env: Vec<(&str, &OsStr)> = vec![("PYTHONDONTWRITEBYTECODE", OsStr::new("1"))];
        match trust {
            Trust::TestCa => env.push(("SSL_CERT_FILE", ca_file)),
            Trust::TestCaTls12 => {
                env.push(("SSL_CERT_FILE", ca_file));
                env.push(("OPENSSL_CONF", self.tls12_config.as_os_str()));
            }
            Trust::GridCaDirectory => env.push(("SSL_CERT_DIR", self.pki.ca_dir.as_os_str())),
            Trust::OtherCa => env.push(("SSL_CERT_FILE", other_ca.as_os_str())),
            Trust::SystemDefault => {}
        }
        run_timed(program, args, &self.home, COMMAND_TIMEOUT, &env)
    }

    fn wait_until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&mut Self) -> Result<bool, String>,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            if done(self)? {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= WAIT_BUDGET {
                return Err(format!(
                    "{what} not reached within {:.0} s",
                    WAIT_BUDGET.as_secs_f64()
                ));
            }
            sleep(POLL_STEP);
        }
    }

    fn vm_pool(&mut self) -> Result<Element, String> {
        // Every VM of every user, DONE ones included.
        oneadmin::document(
            &mut self.rpc,
            "one.vmpool.info",
            &[
                Param::Int(-2),
                Param::Int(-1),
                Param::Int(-1),
                Param::Int(-2),
            ],
        )
    }

    /// The id the next VM gets: one more than the highest so far (ids are never reused).
    fn next_vm_id(&mut self) -> Result<i64, String> {
        Ok(ids(&self.vm_pool()?).last().map_or(0, |n| n + 1))
    }

    fn vm_document(&mut self, vm: i64) -> Result<Element, String> {
        oneadmin::document(&mut self.rpc, "one.vm.info", &[Param::Int(vm)])
    }

    fn snapshot(&mut self) -> Result<Snapshot, String> {
        let users = oneadmin::document(&mut self.rpc, "one.userpool.info", &[])?;
        Ok(Snapshot {
            users: users
                .children
                .iter()
                .filter_map(|u| u.child_text("NAME").map(str::to_string))
                .collect(),
            vms: ids(&self.vm_pool()?),
            forwarded: forwarded_calls(&self.log_path).len(),
        })
    }
}

/// How a refused command must end.
enum Expected {
    /// This exit code and exactly this stdout.
    Printed(i32, String),
    /// A Python traceback ending in an `ssl.SSLError` naming this OpenSSL reason.
    SslError(&'static str),
}

fn ids(pool: &Element) -> BTreeSet<i64> {
    pool.children
        .iter()
        .filter_map(|vm| vm.child_text("ID").and_then(|t| t.trim().parse().ok()))
        .collect()
}

fn nic_ip(vm: &Element) -> Option<String> {
    vm.child("TEMPLATE")
        .and_then(|t| t.child("NIC"))
        .and_then(|n| n.child_text("IP"))
        .map(str::to_string)
}

/// The VM belongs to the user the identity maps to, in the group one-proxy's users got.
fn check_owner(vm: &Element, identity: &Identity, problems: &mut Vec<String>) {
    let uname = vm.child_text("UNAME").unwrap_or("");
    let gname = vm.child_text("GNAME").unwrap_or("");
    if uname != identity.user || gname != "users" {
        problems.push(format!(
            "VM owned by {uname:?} of group {gname:?}, expected {:?} of \"users\"",
            identity.user
        ));
    }
}
