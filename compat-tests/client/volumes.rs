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

use clients::{client_bin, free_port, run_timed, wait_for_port, Outcome, CLIENT_RELEASES};
use harness::daemon::Daemon;
use harness::http::HttpClient;
use oneadmin::Param;
use std::collections::BTreeMap;
use std::env;
use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

const SUITE_NAME: &str = "stratuslab-client-volumes";
const PASSWORD_FILE: &str = "alice=s3cret,cloud-access\nbob=b0b,cloud-access\n";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const WAIT_BUDGET: Duration = Duration::from_secs(60);
const START_TIMEOUT: Duration = Duration::from_secs(30);
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
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
    let daemon = Daemon::start_with_args(&daemon_binary, &work_dir, START_TIMEOUT, 0.0, &args)
        .map_err(|(e, log)| format!("daemon did not start: {e} (log: {})", log.display()))?;
    wait_for_port(front_port, START_TIMEOUT)?;
    wait_for_port(pdisk_port, START_TIMEOUT)?;
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
    let (passed, failed) = (suite.passed, suite.failed);
    drop(suite);
    let keep = env::var("CLIENT_KEEP").is_ok_and(|v| v == "1");
    Ok(clients::finish_suite(
        "client_volumes",
        started,
        daemon,
        &work_dir,
        keep,
        passed,
        failed,
    ))
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
        run_timed(&bin, args, &self.home, COMMAND_TIMEOUT, &env)
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
        stdout: &StdoutCheck<'_>,
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
        let base = format!("{}/{}", self.pdisk_endpoint(), door_of(who));
        let what = |step: &str| format!("[{release}] {} {step}", who.what);
        let tag = format!("{HOSTILE_TAG} {release}");
        // create
        let created = self.expect(
            &what("stratus-create-volume -s 2 -t <quotes and XML>"),
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
        let data = created_uuid(&created);
        let hot = created_uuid(&self.volume_command(
            release,
            who,
            "stratus-create-volume",
            &["-s", "1", "-t", "hot"],
        )?);
        // describe: all, one, a filter
        let expected = props(&[
            ("count", "0"),
            ("tag", &tag),
            ("owner", who.owner),
            ("identifier", ""),
            ("size", "2"),
        ]);
        self.expect(
            &what("stratus-describe-volumes"),
            self.volume_command(release, who, "stratus-describe-volumes", &[]),
            0,
            &|out| {
                let d = parse_described(out);
                match d.get(&data) {
                    Some(p) if *p == expected && d.len() >= 2 => Ok(()),
                    _ => Err(format!("{d:?}")),
                }
            },
        )?;
        self.expect(
            &what("stratus-describe-volumes <uuid>"),
            self.volume_command(release, who, "stratus-describe-volumes", &[&data]),
            0,
            &only_described(&data),
        )?;
        self.expect(
            &what("stratus-describe-volumes -f tag:^hot$"),
            self.volume_command(
                release,
                who,
                "stratus-describe-volumes",
                &["-f", "tag:^hot$"],
            ),
            0,
            &only_described(&hot),
        )?;
        // update
        self.expect(
            &what("stratus-update-volume --public -t updated --data-image-raw-read-write"),
            self.volume_command(
                release,
                who,
                "stratus-update-volume",
                &[
                    "--public",
                    "-t",
                    "updated",
                    "--data-image-raw-read-write",
                    &data,
                ],
            ),
            0,
            &exactly(""),
        )?;
        let (_, v) = self.rest(who, "GET", &format!("/disks/{data}/"), "")?;
        let mut problems = Vec::new();
        if v["tag"] != "updated" || v["visibility"] != "PUBLIC" {
            problems.push(format!("after the update: {v}"));
        }
        self.report(
            &what("the update as the service sees it"),
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
            &what("stratus-run-instance --persistent-disk <uuid> <live volume>"),
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
        self.expect(
            &what("stratus-describe-volumes: the running VM uses the volume"),
            self.volume_command(release, who, "stratus-describe-volumes", &[&data]),
            0,
            &user_count(&data, "1"),
        )?;
        self.expect(
            &what("stratus-delete-volume of a volume in use"),
            self.volume_command(release, who, "stratus-delete-volume", &[&data]),
            CLIENT_ERROR_EXIT,
            &exactly(&service_refusal(
                "DELETE",
                &format!("{base}/disks/{data}/"),
                "409: Conflict",
                &format!("disk ({data}) is in use and can't be deleted"),
            )),
        )?;
        // attach, again, detach, again
        let vm_text = vm.to_string();
        self.expect(
            &what("stratus-attach-volume -i <vm>"),
            self.cloud_command(
                release,
                who,
                "stratus-attach-volume",
                &["-i", &vm_text, &hot],
            ),
            0,
            &exactly(&format!("ATTACHED {hot} in VM {vm} on /dev/vdz\n")),
        )?;
        self.expect(
            &what("stratus-attach-volume of an attached volume"),
            self.cloud_command(
                release,
                who,
                "stratus-attach-volume",
                &["-i", &vm_text, &hot],
            ),
            CLIENT_ERROR_EXIT,
            &exactly(&service_refusal(
                "POST",
                &format!("{base}/disks/{hot}/mounts/"),
                "403: Forbidden",
                &format!("Mount already exists for: {vm} and {hot}"),
            )),
        )?;
        self.expect(
            &what("stratus-describe-volumes: the hot-plugged volume has a user"),
            self.volume_command(release, who, "stratus-describe-volumes", &[&hot]),
            0,
            &user_count(&hot, "1"),
        )?;
        self.expect(
            &what("stratus-detach-volume -i <vm>"),
            self.cloud_command(
                release,
                who,
                "stratus-detach-volume",
                &["-i", &vm_text, &hot],
            ),
            0,
            &exactly(&format!("DETACHED {hot} from VM {vm} on /dev/vdz\n")),
        )?;
        let detach_again = self.cloud_command(
            release,
            who,
            "stratus-detach-volume",
            &["-i", &vm_text, &hot],
        )?;
        let wanted = format!(
            "DISK {hot}: Failed calling method DELETE on url {base}/disks/{hot}/mounts/{hot}_{vm}, with reason: 404: Not Found. Error: The server has not found anything matching the request URI",
        );
        let all = format!("{}{}", detach_again.stdout, detach_again.stderr);
        let mut problems = Vec::new();
        if !all.contains(&wanted) {
            problems.push(format!("output {all:?} does not say {wanted:?}"));
        }
        self.report(
            &what("stratus-detach-volume of a detached volume"),
            problems,
            &format!(
                "exit {}, the client prints the 404 and goes on",
                detach_again.code
            ),
        );
        // the end of the VM gives the volumes back
        self.expect(
            &what("stratus-kill-instance"),
            self.instance_command(release, who, "stratus-kill-instance", &[&vm_text]),
            0,
            &exactly(""),
        )?;
        self.wait_vm(vm, (6, 0))?;
        // (one uuid per command: the client ANDs the uuid filters of several)
        for volume in [&data, &hot] {
            self.expect(
                &what("stratus-describe-volumes <uuid> after the VM's end"),
                self.volume_command(release, who, "stratus-describe-volumes", &[volume]),
                0,
                &user_count(volume, "0"),
            )?;
        }
        // the booted snapshot went into the quarantine: gone for its owner
        let (status, _) = self.rest(who, "GET", &format!("/disks/{live}/"), "")?;
        self.report(
            &what("the booted live snapshot is in the quarantine"),
            if status == 404 {
                Vec::new()
            } else {
                vec![format!("status {status}")]
            },
            "404 for its owner",
        );
        // delete
        self.expect(
            &what("stratus-delete-volume <uuid> <uuid>"),
            self.volume_command(release, who, "stratus-delete-volume", &[&data, &hot]),
            0,
            &exactly(&format!("DELETED {data}\nDELETED {hot}\n")),
        )?;
        self.expect(
            &what("stratus-describe-volumes of deleted volumes"),
            self.volume_command(release, who, "stratus-describe-volumes", &[&data]),
            0,
            &exactly("No disk to show\n"),
        )?;
        let unknown = "00000000-1111-4222-8333-444444444444";
        self.expect(
            &what("stratus-delete-volume of an unknown volume"),
            self.volume_command(release, who, "stratus-delete-volume", &[unknown]),
            CLIENT_ERROR_EXIT,
            &exactly(&service_refusal(
                "DELETE",
                &format!("{base}/disks/{unknown}/"),
                "404: Not Found",
                &format!("disk ({unknown}) does not exist"),
            )),
        )?;
        let _ = self.rest(who, "GET", "/disks/", "")?;
        Ok(())
    }

    /// Someone else's volume, and what the clients refuse themselves, with every release.
    fn refusals(&mut self) -> Result<(), String> {
        println!("== refusals");
        let password = |user: &'static str, secret: &'static str| Identity {
            what: "password",
            login: Login::Password(user, secret),
            owner: user,
        };
        let (alice, bob, wrong) = (
            password("alice", "s3cret"),
            password("bob", "b0b"),
            password("alice", "wrong"),
        );
        let volume = created_uuid(&self.volume_command(
            CLIENT_RELEASES[0],
            &alice,
            "stratus-create-volume",
            &["-s", "1"],
        )?);
        let url = format!("{}/pswd/disks/{volume}/", self.pdisk_endpoint());
        let someone_elses = service_refusal(
            "DELETE",
            &url,
            "403: Forbidden",
            &format!("insufficient access rights to view disk ({volume})"),
        );
        let cases = [
            Refusal {
                what: "bob: stratus-delete-volume of alice's volume",
                who: &bob,
                program: "stratus-delete-volume",
                args: &[&volume],
                code: CLIENT_ERROR_EXIT,
                stdout: Box::new(exactly(&someone_elses)),
            },
            Refusal {
                what: "bob: stratus-describe-volumes does not list alice's volume",
                who: &bob,
                program: "stratus-describe-volumes",
                args: &[],
                code: 0,
                stdout: Box::new(exactly("No disk to show\n")),
            },
            Refusal {
                what: "a wrong password",
                who: &wrong,
                program: "stratus-describe-volumes",
                args: &[],
                code: CLIENT_ERROR_EXIT,
                stdout: Box::new(|out: &str| {
                    out.contains("401")
                        .then_some(())
                        .ok_or(format!("stdout {out:?}"))
                }),
            },
            Refusal {
                what: "stratus-create-volume -s 2000 (the client's own limit)",
                who: &alice,
                program: "stratus-create-volume",
                args: &["-s", "2000"],
                code: 1,
                stdout: Box::new(exactly("")),
            },
        ];
        for release in CLIENT_RELEASES {
            for case in &cases {
                self.expect(
                    &format!("[{release}] {}", case.what),
                    self.volume_command(release, case.who, case.program, case.args),
                    case.code,
                    case.stdout.as_ref(),
                )?;
            }
        }
        Ok(())
    }
}

/// A check of a command's stdout: what is wrong with it, if anything.
type StdoutCheck<'a> = dyn Fn(&str) -> Result<(), String> + 'a;

/// A command a user is refused, and how the client says it.
struct Refusal<'a> {
    what: &'a str,
    who: &'a Identity,
    program: &'a str,
    args: &'a [&'a str],
    /// The client's exit status.
    code: i32,
    stdout: Box<StdoutCheck<'a>>,
}

/// The uuid in `stratus-create-volume`'s `DISK <uuid>` line.
fn created_uuid(outcome: &Outcome) -> String {
    outcome
        .stdout
        .trim()
        .trim_start_matches("DISK ")
        .to_string()
}

/// A stdout check: exactly `wanted`.
fn exactly(wanted: &str) -> impl Fn(&str) -> Result<(), String> + 'static {
    let wanted = wanted.to_string();
    move |out: &str| {
        (out == wanted)
            .then_some(())
            .ok_or(format!("stdout {out:?}, expected {wanted:?}"))
    }
}

/// A stdout check on `describe-volumes`: it lists `uuid` and nothing else.
fn only_described(uuid: &str) -> impl Fn(&str) -> Result<(), String> {
    let uuid = uuid.to_string();
    move |out: &str| {
        let d = parse_described(out);
        (d.len() == 1 && d.contains_key(&uuid))
            .then_some(())
            .ok_or(format!("{d:?}"))
    }
}

/// A stdout check on `describe-volumes`: `uuid`'s `count` (its users) is `count`.
fn user_count(uuid: &str, count: &str) -> impl Fn(&str) -> Result<(), String> {
    let (uuid, count) = (uuid.to_string(), count.to_string());
    move |out: &str| {
        let d = parse_described(out);
        (d.get(&uuid).and_then(|p| p.get("count")) == Some(&count))
            .then_some(())
            .ok_or(format!("{d:?}"))
    }
}

/// What the client prints when the service refuses a request (`volume_manager`'s
/// `Failed calling method … with reason: <status>. Error: <the service's message>`).
fn service_refusal(method: &str, url: &str, status: &str, message: &str) -> String {
    format!("Error: Failed calling method {method} on url {url}, with reason: {status}. Error: {message}\n")
}

fn door_of(who: &Identity) -> &'static str {
    match who.login {
        Login::Password(..) => "pswd",
        Login::Certificate(..) => "cert",
    }
}
