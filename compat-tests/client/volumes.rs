//! The real StratusLab clients (14.6.0 and 13.5.1) against stratusd's persistent disk service
//! (`--pdisk-listen`) and its front door, over HTTPS, with a password (one-proxy's password
//! file, `-u/-p`) and with a certificate (`--pem-cert/--pem-key`, the `/cert` doors): every
//! `stratus-*-volume` command and `stratus-run-instance --persistent-disk`, with what pdisk's
//! answers made them print. The VMs run on a simulated host with StratusLab's transfer driver,
//! which takes the volumes at the prolog and gives them back at the end.
//!
//! No recording exists of these commands (the recorded run had a stub pdisk); each check states
//! what a correct run prints, from the client's code (`stratuslab/volume_manager/`,
//! `stratus-*-volume`). `cargo test --test client_volumes`; prerequisites as for
//! `--test client_https`. See `compat-tests/client/README.md`.

#[allow(dead_code)]
mod clients;
#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;
#[allow(dead_code)]
mod oneadmin;
#[allow(dead_code)]
#[path = "../../tests/frontdoor/pki.rs"]
mod pki;

use clients::{client_bin, run_process, CLIENT_RELEASES};
use harness::daemon::{self, Daemon};
use harness::http::HttpClient;
use oneadmin::Param;
use std::collections::BTreeMap;
use std::env;
use std::ffi::OsStr;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

const SUITE_NAME: &str = "stratuslab-client-volumes";
const PASSWORD_FILE: &str = "alice=s3cret,cloud-access\nbob=b0b,cloud-access\n";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const WAIT_BUDGET: Duration = Duration::from_secs(60);
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
const LOG_TAIL_LINES: usize = 30;
/// The client's exit status for errors it reports.
const CLIENT_ERROR_EXIT: i32 = 255;
/// A tag the client passes as is, and that no JSON or XML layer may mangle.
const HOSTILE_TAG: &str = "it's \"mine\" <x a='1'>&amp;";

/// How a user logs in.
#[derive(Clone)]
enum Login {
    Password(&'static str, &'static str),
    Certificate(PathBuf, PathBuf),
}

impl Login {
    fn args(&self) -> Vec<String> {
        match self {
            Login::Password(u, p) => vec!["-u".into(), u.to_string(), "-p".into(), p.to_string()],
            Login::Certificate(cert, key) => vec![
                "--pem-cert".into(),
                cert.display().to_string(),
                "--pem-key".into(),
                key.display().to_string(),
            ],
        }
    }
}

struct Identity {
    what: &'static str,
    login: Login,
    /// The owner the service records (the OpenNebula user name).
    owner: &'static str,
}

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    seconds: f64,
}

impl Outcome {
    fn last_stderr_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or("")
    }
}

struct Suite {
    venvs: PathBuf,
    rpc: HttpClient,
    front_port: u16,
    pdisk_port: u16,
    home: PathBuf,
    pki: pki::Pki,
    passed: usize,
    failed: usize,
}

fn main() -> ExitCode {
    clients::run_suite("client_volumes", SUITE_NAME, run)
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

fn wait_for_port(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let started = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if started.elapsed() > START_TIMEOUT {
            return Err(format!("nothing listens on {addr}"));
        }
        sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn run() -> Result<bool, String> {
    let started = Instant::now();
    let daemon_binary = env::var_os("STRATUSD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_stratusd")));
    let venvs = clients::venvs_dir()?;
    clients::check_installed(&venvs)?;
    let work_dir = env::temp_dir().join(format!("stratusd-client-volumes-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work_dir);
    fs::create_dir_all(&work_dir)
        .map_err(|e| format!("cannot create {}: {e}", work_dir.display()))?;
    let home = clients::make_home(&work_dir)?;
    let pki = pki::Pki::create(&work_dir.join("pki"));
    let passwords = work_dir.join("login-pswd.properties");
    fs::write(&passwords, PASSWORD_FILE).map_err(|e| e.to_string())?;
    let front_port = free_port()?;
    let pdisk_port = free_port()?;
    let args: Vec<String> = [
        "--frontdoor-listen",
        &format!("127.0.0.1:{front_port}"),
        "--pdisk-listen",
        &format!("127.0.0.1:{pdisk_port}"),
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
        // StratusLab's transfer driver attaches the volumes; no KVM host here.
        "--disable-driver",
        "im_kvm,vmm_kvm,kvm",
    ]
    .map(String::from)
    .to_vec();
    let mut daemon = Daemon::start_with_args(&daemon_binary, &work_dir, START_TIMEOUT, 0.0, &args)
        .map_err(|(e, log)| format!("daemon did not start: {e} (log: {})", log.display()))?;
    wait_for_port(front_port)?;
    wait_for_port(pdisk_port)?;
    println!(
        "stratusd: /RPC2 on {}, front door on https://127.0.0.1:{front_port}, pdisk on \
         https://127.0.0.1:{pdisk_port}, work dir {}",
        daemon.addr(),
        work_dir.display()
    );
    let mut suite = Suite {
        venvs,
        rpc: HttpClient::new(daemon.addr(), RPC_TIMEOUT),
        front_port,
        pdisk_port,
        home,
        pki,
        passed: 0,
        failed: 0,
    };
    if let Err(problem) = suite.run_all() {
        suite.report("the run stops here", vec![problem], "");
    }
    let (passed, mut failed) = (suite.passed, suite.failed);
    drop(suite);
    if let Err(problem) = daemon.stop(STOP_TIMEOUT) {
        println!("FAIL daemon shutdown: {problem}");
        failed += 1;
    }
    let keep = env::var("CLIENT_KEEP").is_ok_and(|v| v == "1");
    if failed > 0 || keep {
        println!("work dir kept: {}", work_dir.display());
        if failed > 0 {
            println!("daemon log (last {LOG_TAIL_LINES} lines):");
            for line in daemon::log_tail(daemon.log_path(), LOG_TAIL_LINES).lines() {
                println!("| {line}");
            }
        }
    } else {
        let _ = fs::remove_dir_all(&work_dir);
    }
    println!(
        "client_volumes suite: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("{passed} passed, {failed} failed");
    Ok(failed == 0)
}

/// `describe-volumes` output: uuid → its printed properties.
fn parse_described(stdout: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        if let Some(uuid) = line.strip_prefix(":: DISK ") {
            current = Some(uuid.to_string());
            out.entry(uuid.to_string()).or_default();
        } else if let (Some(uuid), Some(prop)) = (&current, line.strip_prefix('\t')) {
            if let Some((k, v)) = prop.split_once(": ") {
                out.entry(uuid.clone())
                    .or_default()
                    .insert(k.to_string(), v.to_string());
            } else if let Some(k) = prop.strip_suffix(':') {
                out.entry(uuid.clone())
                    .or_default()
                    .insert(k.to_string(), String::new());
            }
        }
    }
    out
}

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Suite {
    fn report(&mut self, what: &str, problems: Vec<String>, detail: &str) {
        if problems.is_empty() {
            self.passed += 1;
            println!("PASS {what}: {detail}");
        } else {
            self.failed += 1;
            println!("FAIL {what}: {}", problems.join("; "));
        }
    }

    fn pdisk_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.pdisk_port)
    }

    fn run_client(&self, release: &str, program: &str, args: &[String]) -> Result<Outcome, String> {
        let bin = client_bin(&self.venvs, release).join(program);
        let env: Vec<(&str, &OsStr)> = vec![
            ("PYTHONDONTWRITEBYTECODE", OsStr::new("1")),
            ("SSL_CERT_FILE", self.pki.ca_cert.as_os_str()),
        ];
        let started = Instant::now();
        let (code, stdout, stderr) =
            run_process(&bin, args, &self.home, COMMAND_TIMEOUT, None, &env)?;
        Ok(Outcome {
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// A volume command with `--pdisk-endpoint` and the identity's credentials.
    fn volume_command(
        &self,
        release: &str,
        identity: &Identity,
        program: &str,
        rest: &[&str],
    ) -> Result<Outcome, String> {
        let mut args = vec!["--pdisk-endpoint".to_string(), self.pdisk_endpoint()];
        args.extend(identity.login.args());
        args.extend(rest.iter().map(|s| s.to_string()));
        self.run_client(release, program, &args)
    }

    /// A command that also talks to the cloud (attach, detach, run).
    fn cloud_command(
        &self,
        release: &str,
        identity: &Identity,
        program: &str,
        rest: &[&str],
    ) -> Result<Outcome, String> {
        let mut args = vec![
            "--endpoint".to_string(),
            format!("https://127.0.0.1:{}/xmlrpc", self.front_port),
            "--pdisk-endpoint".to_string(),
            self.pdisk_endpoint(),
        ];
        args.extend(identity.login.args());
        args.extend(rest.iter().map(|s| s.to_string()));
        self.run_client(release, program, &args)
    }

    /// A command that talks to the cloud only (kill).
    fn instance_command(
        &self,
        release: &str,
        identity: &Identity,
        program: &str,
        rest: &[&str],
    ) -> Result<Outcome, String> {
        let mut args = vec![
            "--endpoint".to_string(),
            format!("https://127.0.0.1:{}/xmlrpc", self.front_port),
        ];
        args.extend(identity.login.args());
        args.extend(rest.iter().map(|s| s.to_string()));
        self.run_client(release, program, &args)
    }

    /// Checks exit code and stdout, reports, and returns the outcome.
    fn expect(
        &mut self,
        what: &str,
        outcome: Result<Outcome, String>,
        code: i32,
        stdout: &dyn Fn(&str) -> Result<(), String>,
    ) -> Result<Outcome, String> {
        let outcome = outcome?;
        let mut problems = Vec::new();
        if outcome.code != code {
            problems.push(format!(
                "exit {}, expected {code}; stdout {:?}; stderr: {}",
                outcome.code,
                outcome.stdout,
                outcome.last_stderr_line()
            ));
        }
        if let Err(p) = stdout(&outcome.stdout) {
            problems.push(p);
        }
        let detail = format!(
            "exit {}, {:?} ({:.2} s)",
            outcome.code,
            outcome.stdout.lines().last().unwrap_or(""),
            outcome.seconds
        );
        self.report(what, problems, &detail);
        Ok(outcome)
    }

    /// A request to the service as `identity`, for what the clients cannot send (`--cow` fails
    /// in both releases: `createCowVolume()` is called with one argument too few).
    fn rest(
        &self,
        identity: &Identity,
        method: &str,
        path: &str,
        form: &str,
    ) -> Result<(u16, serde_json::Value), String> {
        use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig, TlsProvider};
        let ca = fs::read(&self.pki.ca_cert).map_err(|e| e.to_string())?;
        let mut tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::new_with_certs(&[
                Certificate::from_pem(&ca).map_err(|e| e.to_string())?
            ]));
        let (door, auth) = match &identity.login {
            Login::Password(u, p) => {
                use base64::Engine;
                (
                    "/pswd",
                    Some(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                    )),
                )
            }
            Login::Certificate(cert, key) => {
                let cert = Certificate::from_pem(&fs::read(cert).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
                let key = PrivateKey::from_pem(&fs::read(key).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
                tls = tls.client_cert(Some(ClientCert::new_with_certs(&[cert], key)));
                ("/cert", None)
            }
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .http_status_as_error(false)
            .timeout_global(Some(RPC_TIMEOUT))
            .build()
            .into();
        let url = format!("https://localhost:{}{door}{path}", self.pdisk_port);
        let result = if method == "POST" {
            let post = agent
                .post(url)
                .header("Accept", "application/json")
                .header("Content-Type", "application/x-www-form-urlencoded");
            let post = match &auth {
                Some(a) => post.header("Authorization", a),
                None => post,
            };
            post.send(form.as_bytes())
        } else {
            let get = agent.get(url).header("Accept", "application/json");
            let get = match &auth {
                Some(a) => get.header("Authorization", a),
                None => get,
            };
            get.call()
        };
        let mut resp = result.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        ))
    }

    fn set_up_site(&mut self) -> Result<(), String> {
        let host = oneadmin::call(
            &mut self.rpc,
            "one.host.allocate",
            &[
                Param::Text("volumes-node"),
                Param::Text("im_dummy"),
                Param::Text("vmm_dummy"),
                Param::Text("dummy"),
                Param::Text("tm_stratuslab"),
            ],
        )?;
        let net = "NAME = \"public\"\nTYPE = FIXED\nPUBLIC = YES\nBRIDGE = br0\n\
                   LEASES = [ IP=\"192.168.1.1\", MAC=\"00:16:3e:d9:78:b1\"]\n\
                   LEASES = [ IP=\"192.168.1.2\", MAC=\"00:16:3e:d9:78:b2\"]\n\
                   LEASES = [ IP=\"192.168.1.3\", MAC=\"00:16:3e:d9:78:b3\"]\n\
                   LEASES = [ IP=\"192.168.1.4\", MAC=\"00:16:3e:d9:78:b4\"]\n";
        oneadmin::call(&mut self.rpc, "one.vn.allocate", &[Param::Text(net)])?;
        for (resource, rights) in [("0x4100000000", "0x1"), ("0x29400000000", "0x9")] {
            oneadmin::call(
                &mut self.rpc,
                "one.acl.addrule",
                &[
                    Param::Text("0x400000000"),
                    Param::Text(resource),
                    Param::Text(rights),
                ],
            )?;
        }
        let started = Instant::now();
        loop {
            let states = oneadmin::host_states(&mut self.rpc)?;
            if states.values().all(|s| *s == 2) && !states.is_empty() {
                break;
            }
            if started.elapsed() > WAIT_BUDGET {
                return Err(format!("the host was not monitored: {states:?}"));
            }
            sleep(Duration::from_millis(100));
        }
        self.report(
            "site set-up",
            Vec::new(),
            &format!(
                "simulated host with tm_stratuslab ({host:?}), network public, the installer's ACLs"
            ),
        );
        Ok(())
    }

    fn wait_vm(&mut self, vm: i64, state: (i64, i64)) -> Result<(), String> {
        let started = Instant::now();
        loop {
            if oneadmin::vm_state(&mut self.rpc, vm)? == state {
                return Ok(());
            }
            if started.elapsed() > WAIT_BUDGET {
                return Err(format!("VM {vm} not in {state:?}"));
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn run_all(&mut self) -> Result<(), String> {
        self.set_up_site()?;
        let identities = [
            Identity {
                what: "password",
                login: Login::Password("alice", "s3cret"),
                owner: "alice",
            },
            Identity {
                what: "certificate",
                login: Login::Certificate(
                    self.pki.john.chain[0].clone(),
                    self.pki.john.key.clone(),
                ),
                owner: pki::JOHN_USER,
            },
        ];
        for release in CLIENT_RELEASES {
            for identity in &identities {
                self.volume_round(release, identity)?;
            }
        }
        self.refusals()?;
        Ok(())
    }

    /// Every volume command, and a VM with a persistent disk, for one release and identity.
    fn volume_round(&mut self, release: &str, who: &Identity) -> Result<(), String> {
        println!("== {release}, {} ({})", who.what, who.owner);
        let endpoint = self.pdisk_endpoint();
        let endpoint = endpoint.as_str();
        let tag = format!("{HOSTILE_TAG} {release}");
        // create
        let created = self.expect(
            &format!(
                "[{release}] {} stratus-create-volume -s 2 -t <quotes and XML>",
                who.what
            ),
            self.volume_command(
                release,
                who,
                "stratus-create-volume",
                &["-s", "2", "-t", &tag],
            ),
            0,
            &|out| {
                let line = out.trim_end();
                match line.strip_prefix("DISK ") {
                    Some(u) if u.len() == 36 && out == format!("{line}\n") => Ok(()),
                    _ => Err(format!("stdout {out:?}, expected \"DISK <uuid>\\n\"")),
                }
            },
        )?;
        let data = created
            .stdout
            .trim()
            .trim_start_matches("DISK ")
            .to_string();
        let hot = self
            .volume_command(
                release,
                who,
                "stratus-create-volume",
                &["-s", "1", "-t", "hot"],
            )?
            .stdout
            .trim()
            .trim_start_matches("DISK ")
            .to_string();
        // describe: all, one, a filter
        let expected = props(&[
            ("count", "0"),
            ("tag", &tag),
            ("owner", who.owner),
            ("identifier", ""),
            ("size", "2"),
        ]);
        let data_uuid = data.clone();
        let wanted = expected.clone();
        self.expect(
            &format!("[{release}] {} stratus-describe-volumes", who.what),
            self.volume_command(release, who, "stratus-describe-volumes", &[]),
            0,
            &|out| {
                let d = parse_described(out);
                match d.get(&data_uuid) {
                    Some(p) if *p == wanted && d.len() >= 2 => Ok(()),
                    _ => Err(format!("{d:?}")),
                }
            },
        )?;
        let data_uuid = data.clone();
        self.expect(
            &format!("[{release}] {} stratus-describe-volumes <uuid>", who.what),
            self.volume_command(release, who, "stratus-describe-volumes", &[&data]),
            0,
            &|out| {
                let d = parse_described(out);
                (d.len() == 1 && d.contains_key(&data_uuid))
                    .then_some(())
                    .ok_or(format!("{d:?}"))
            },
        )?;
        let hot_uuid = hot.clone();
        self.expect(
            &format!(
                "[{release}] {} stratus-describe-volumes -f tag:^hot$",
                who.what
            ),
            self.volume_command(
                release,
                who,
                "stratus-describe-volumes",
                &["-f", "tag:^hot$"],
            ),
            0,
            &|out| {
                let d = parse_described(out);
                (d.len() == 1 && d.contains_key(&hot_uuid))
                    .then_some(())
                    .ok_or(format!("{d:?}"))
            },
        )?;
        // update
        self.expect(
            &format!("[{release}] {} stratus-update-volume --public -t updated --data-image-raw-read-write", who.what),
            self.volume_command(
                release,
                who,
                "stratus-update-volume",
                &["--public", "-t", "updated", "--data-image-raw-read-write", &data],
            ),
            0,
            &|out| out.is_empty().then_some(()).ok_or(format!("stdout {out:?}")),
        )?;
        let (_, v) = self.rest(who, "GET", &format!("/disks/{data}/"), "")?;
        let mut problems = Vec::new();
        if v["tag"] != "updated" || v["visibility"] != "PUBLIC" {
            problems.push(format!("after the update: {v}"));
        }
        self.report(
            &format!("[{release}] {} the update as the service sees it", who.what),
            problems,
            "tag updated, PUBLIC",
        );

        // A VM booting a live snapshot, with the data volume as its persistent disk.
        let (status, origin) = self.rest(who, "POST", "/disks/", "size=1&tag=origin")?;
        let origin = origin["uuid"].as_str().unwrap_or_default().to_string();
        if status != 201 {
            return Err(format!("origin not created: {status}"));
        }
        // (snapshots are made of origins)
        let live = {
            let put = self.volume_command(
                release,
                who,
                "stratus-update-volume",
                &["--machine-image-origin", &origin],
            )?;
            if put.code != 0 {
                return Err(format!("origin type not set: {}", put.last_stderr_line()));
            }
            let (status, live) = self.rest(who, "POST", &format!("/disks/{origin}"), "")?;
            if status != 200 {
                return Err(format!("snapshot not made: {status} {live}"));
            }
            live["uuid"].as_str().unwrap_or_default().to_string()
        };
        let run = self.expect(
            &format!(
                "[{release}] {} stratus-run-instance --persistent-disk <uuid> <live volume>",
                who.what
            ),
            self.cloud_command(
                release,
                who,
                "stratus-run-instance",
                &[
                    "-k",
                    &self.home.join("id_rsa.pub").display().to_string(),
                    "--persistent-disk",
                    &data,
                    &live,
                ],
            ),
            0,
            &|out| {
                (out.contains(" :: Machine 1 (vm ID: ") && out.ends_with(" :: Done!\n"))
                    .then_some(())
                    .ok_or(format!("stdout {out:?}"))
            },
        )?;
        let vm: i64 = run
            .stdout
            .split("(vm ID: ")
            .nth(1)
            .and_then(|s| s.split(')').next())
            .and_then(|s| s.trim().parse().ok())
            .ok_or("no VM id")?;
        self.wait_vm(vm, (3, 3))?;
        let data_uuid = data.clone();
        self.expect(
            &format!(
                "[{release}] {} stratus-describe-volumes: the running VM uses the volume",
                who.what
            ),
            self.volume_command(release, who, "stratus-describe-volumes", &[&data]),
            0,
            &|out| {
                let d = parse_described(out);
                (d.get(&data_uuid)
                    .and_then(|p| p.get("count"))
                    .map(String::as_str)
                    == Some("1"))
                .then_some(())
                .ok_or(format!("{d:?}"))
            },
        )?;
        let data_uuid = data.clone();
        self.expect(
            &format!("[{release}] {} stratus-delete-volume of a volume in use", who.what),
            self.volume_command(release, who, "stratus-delete-volume", &[&data]),
            CLIENT_ERROR_EXIT,
            &|out| {
                let wanted = format!(
                    "Error: Failed calling method DELETE on url {}/{}/disks/{data_uuid}/, with reason: 409: Conflict. Error: disk ({data_uuid}) is in use and can't be deleted\n",
                    endpoint,
                    door_of(who)
                );
                (out == wanted).then_some(()).ok_or(format!("stdout {out:?}, expected {wanted:?}"))
            },
        )?;
        // attach, again, detach, again
        let vm_text = vm.to_string();
        let hot_uuid = hot.clone();
        self.expect(
            &format!("[{release}] {} stratus-attach-volume -i <vm>", who.what),
            self.cloud_command(
                release,
                who,
                "stratus-attach-volume",
                &["-i", &vm_text, &hot],
            ),
            0,
            &|out| {
                let wanted = format!("ATTACHED {hot_uuid} in VM {vm} on /dev/vdz\n");
                (out == wanted)
                    .then_some(())
                    .ok_or(format!("stdout {out:?}, expected {wanted:?}"))
            },
        )?;
        let hot_uuid = hot.clone();
        self.expect(
            &format!("[{release}] {} stratus-attach-volume of an attached volume", who.what),
            self.cloud_command(release, who, "stratus-attach-volume", &["-i", &vm_text, &hot]),
            CLIENT_ERROR_EXIT,
            &|out| {
                let wanted = format!(
                    "Error: Failed calling method POST on url {}/{}/disks/{hot_uuid}/mounts/, with reason: 403: Forbidden. Error: Mount already exists for: {vm} and {hot_uuid}\n",
                    endpoint,
                    door_of(who)
                );
                (out == wanted).then_some(()).ok_or(format!("stdout {out:?}, expected {wanted:?}"))
            },
        )?;
        let hot_uuid = hot.clone();
        self.expect(
            &format!(
                "[{release}] {} stratus-describe-volumes: the hot-plugged volume has a user",
                who.what
            ),
            self.volume_command(release, who, "stratus-describe-volumes", &[&hot]),
            0,
            &|out| {
                let d = parse_described(out);
                (d.get(&hot_uuid)
                    .and_then(|p| p.get("count"))
                    .map(String::as_str)
                    == Some("1"))
                .then_some(())
                .ok_or(format!("{d:?}"))
            },
        )?;
        let hot_uuid = hot.clone();
        self.expect(
            &format!("[{release}] {} stratus-detach-volume -i <vm>", who.what),
            self.cloud_command(
                release,
                who,
                "stratus-detach-volume",
                &["-i", &vm_text, &hot],
            ),
            0,
            &|out| {
                let wanted = format!("DETACHED {hot_uuid} from VM {vm} on /dev/vdz\n");
                (out == wanted)
                    .then_some(())
                    .ok_or(format!("stdout {out:?}, expected {wanted:?}"))
            },
        )?;
        let detach_again = self.cloud_command(
            release,
            who,
            "stratus-detach-volume",
            &["-i", &vm_text, &hot],
        )?;
        let wanted = format!(
            "DISK {hot}: Failed calling method DELETE on url {}/{}/disks/{hot}/mounts/{hot}_{vm}, with reason: 404: Not Found. Error: The server has not found anything matching the request URI",
            endpoint,
            door_of(who)
        );
        let all = format!("{}{}", detach_again.stdout, detach_again.stderr);
        let mut problems = Vec::new();
        if !all.contains(&wanted) {
            problems.push(format!("output {all:?} does not say {wanted:?}"));
        }
        self.report(
            &format!(
                "[{release}] {} stratus-detach-volume of a detached volume",
                who.what
            ),
            problems,
            &format!(
                "exit {}, the client prints the 404 and goes on",
                detach_again.code
            ),
        );
        // the end of the VM gives the volumes back
        self.expect(
            &format!("[{release}] {} stratus-kill-instance", who.what),
            self.instance_command(release, who, "stratus-kill-instance", &[&vm_text]),
            0,
            &|out| {
                out.is_empty()
                    .then_some(())
                    .ok_or(format!("stdout {out:?}"))
            },
        )?;
        self.wait_vm(vm, (6, 0))?;
        // (one uuid per command: the client ANDs the uuid filters of several)
        for volume in [&data, &hot] {
            let uuid = volume.clone();
            self.expect(
                &format!(
                    "[{release}] {} stratus-describe-volumes <uuid> after the VM's end",
                    who.what
                ),
                self.volume_command(release, who, "stratus-describe-volumes", &[volume]),
                0,
                &|out| {
                    let d = parse_described(out);
                    (d.get(&uuid)
                        .and_then(|p| p.get("count"))
                        .map(String::as_str)
                        == Some("0"))
                    .then_some(())
                    .ok_or(format!("{d:?}"))
                },
            )?;
        }
        // the booted snapshot went into the quarantine: gone for its owner
        let (status, _) = self.rest(who, "GET", &format!("/disks/{live}/"), "")?;
        self.report(
            &format!(
                "[{release}] {} the booted live snapshot is in the quarantine",
                who.what
            ),
            if status == 404 {
                Vec::new()
            } else {
                vec![format!("status {status}")]
            },
            "404 for its owner",
        );
        // delete
        let (data_uuid, hot_uuid) = (data.clone(), hot.clone());
        self.expect(
            &format!(
                "[{release}] {} stratus-delete-volume <uuid> <uuid>",
                who.what
            ),
            self.volume_command(release, who, "stratus-delete-volume", &[&data, &hot]),
            0,
            &|out| {
                let wanted = format!("DELETED {data_uuid}\nDELETED {hot_uuid}\n");
                (out == wanted)
                    .then_some(())
                    .ok_or(format!("stdout {out:?}, expected {wanted:?}"))
            },
        )?;
        self.expect(
            &format!(
                "[{release}] {} stratus-describe-volumes of deleted volumes",
                who.what
            ),
            self.volume_command(release, who, "stratus-describe-volumes", &[&data]),
            0,
            &|out| {
                (out == "No disk to show\n")
                    .then_some(())
                    .ok_or(format!("stdout {out:?}"))
            },
        )?;
        let unknown = "00000000-1111-4222-8333-444444444444";
        self.expect(
            &format!("[{release}] {} stratus-delete-volume of an unknown volume", who.what),
            self.volume_command(release, who, "stratus-delete-volume", &[unknown]),
            CLIENT_ERROR_EXIT,
            &|out| {
                let wanted = format!(
                    "Error: Failed calling method DELETE on url {}/{}/disks/{unknown}/, with reason: 404: Not Found. Error: disk ({unknown}) does not exist\n",
                    endpoint,
                    door_of(who)
                );
                (out == wanted).then_some(()).ok_or(format!("stdout {out:?}, expected {wanted:?}"))
            },
        )?;
        let _ = self.rest(who, "GET", "/disks/", "")?;
        Ok(())
    }

    /// Someone else's volume, and what the clients refuse themselves.
    fn refusals(&mut self) -> Result<(), String> {
        println!("== refusals");
        let endpoint = self.pdisk_endpoint();
        let endpoint = endpoint.as_str();
        let alice = Identity {
            what: "password",
            login: Login::Password("alice", "s3cret"),
            owner: "alice",
        };
        let bob = Identity {
            what: "password",
            login: Login::Password("bob", "b0b"),
            owner: "bob",
        };
        let release = CLIENT_RELEASES[0];
        let volume = self
            .volume_command(release, &alice, "stratus-create-volume", &["-s", "1"])?
            .stdout
            .trim()
            .trim_start_matches("DISK ")
            .to_string();
        for release in CLIENT_RELEASES {
            let v = volume.clone();
            self.expect(
                &format!("[{release}] bob: stratus-delete-volume of alice's volume"),
                self.volume_command(release, &bob, "stratus-delete-volume", &[&volume]),
                CLIENT_ERROR_EXIT,
                &|out| {
                    let wanted = format!(
                        "Error: Failed calling method DELETE on url {}/pswd/disks/{v}/, with reason: 403: Forbidden. Error: insufficient access rights to view disk ({v})\n",
                        endpoint
                    );
                    (out == wanted).then_some(()).ok_or(format!("stdout {out:?}, expected {wanted:?}"))
                },
            )?;
            self.expect(
                &format!("[{release}] bob: stratus-describe-volumes does not list alice's volume"),
                self.volume_command(release, &bob, "stratus-describe-volumes", &[]),
                0,
                &|out| {
                    (out == "No disk to show\n")
                        .then_some(())
                        .ok_or(format!("stdout {out:?}"))
                },
            )?;
            self.expect(
                &format!("[{release}] a wrong password"),
                self.volume_command(
                    release,
                    &Identity {
                        what: "password",
                        login: Login::Password("alice", "wrong"),
                        owner: "alice",
                    },
                    "stratus-describe-volumes",
                    &[],
                ),
                CLIENT_ERROR_EXIT,
                &|out| {
                    out.contains("401")
                        .then_some(())
                        .ok_or(format!("stdout {out:?}"))
                },
            )?;
            self.expect(
                &format!("[{release}] stratus-create-volume -s 2000 (the client's own limit)"),
                self.volume_command(release, &alice, "stratus-create-volume", &["-s", "2000"]),
                1,
                &|out| {
                    out.is_empty()
                        .then_some(())
                        .ok_or(format!("stdout {out:?}"))
                },
            )?;
        }
        Ok(())
    }
}

fn door_of(who: &Identity) -> &'static str {
    match who.login {
        Login::Password(..) => "pswd",
        Login::Certificate(..) => "cert",
    }
}
