//! Client commands that the recorded run did not use, run against the same daemon after the
//! recorded run: there is no recorded output to compare with, so each check states what a
//! correct run must show (exit code, key lines, the XML-RPC calls, and the VM afterwards).
//!
//! `stratus-create-image` and `stratus-run-cluster` go on to log into the new VMs with ping,
//! ssh and scp. The VMs of the dummy drivers do not exist and their leases are not addresses
//! this machine may talk to, so those three programs are replaced (first on PATH) by stubs
//! that only log their arguments and succeed; the log shows where the client would have
//! connected. `stratus-register-node` is not on PyPI: `register_node.py` makes its calls.

use crate::proxy::Exchange;
use crate::{Param, Suite, CLIENT_RELEASES};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Programs the client would use to reach the VMs, stubbed for these commands.
const STUBBED_PROGRAMS: &[&str] = &["ping", "ssh", "scp"];
/// The Marketplace image of the recording; its manifest says `os ttylinux`, for which
/// stratus-create-image knows no package installer, so `--installer yum` is given.
const IMAGE_ID: &str = "BN1EEkPiBx87_uLj2-sdybSI-Xb";
const REGISTERED_NODE: &str = "node-registered-by-the-suite";
/// Hosts 0 and 1 were allocated in the recorded run (1 was deleted); host ids are never
/// reused, so the next host is 2.
const REGISTERED_HOST_ID: i64 = 2;

/// What one unrecorded command must show.
struct Expectation<'a> {
    exit_code: i32,
    stdout_lines: &'a [String],
    /// The methods, in order; `one.vm.info` polls may repeat (`*` after a method).
    methods: &'a [&'a str],
}

impl Suite<'_> {
    pub fn run_unrecorded(&mut self, work_dir: &Path) -> Result<(), String> {
        println!("== commands not in the recording (checked for sanity, see README)");
        let stubs = make_stubs(work_dir)?;
        self.release_hosts()?;
        self.create_image(&stubs)?;
        self.run_cluster(&stubs)?;
        self.connect_instance(&stubs)?;
        self.register_node()?;
        Ok(())
    }

    fn create_image(&mut self, stubs: &Stubs) -> Result<(), String> {
        let release = CLIENT_RELEASES[0];
        let what =
            format!("unrecorded stratus-create-image --installer yum {IMAGE_ID} [{release}]");
        let vm = self.next_vm_id()?;
        let mut args = self.common_args(true);
        args.extend(
            [
                "--author",
                "Jane Tester",
                "--author-email",
                "jane@example.org",
                "--title",
                "my new image",
                "--comment",
                "a comment",
                "--installer",
                "yum",
                IMAGE_ID,
            ]
            .map(String::from),
        );
        let stdout_lines = [
            format!(" :: Machine 1 (vm ID: {vm})"),
            " :: Finished building image increment. ::".to_string(),
            " :: Shutting down machine".to_string(),
        ];
        let expectation = Expectation {
            exit_code: 0,
            stdout_lines: &stdout_lines,
            methods: &["one.vm.allocate", "one.vm.info*", "one.vm.action"],
        };
        let mut problems = Vec::new();
        let traffic = self.run_unrecorded_command(
            release,
            "stratus-create-image",
            &args,
            stubs,
            &expectation,
            &mut problems,
        );
        if let Some(allocate) = traffic.first() {
            for needle in [
                "save     = yes",
                "CREATE_IMAGE = [",
                "NEWIMAGE_TITLE = \"my new image\"",
            ] {
                if !allocate.request.contains(needle) {
                    problems.push(format!("the allocated template has no {needle:?}"));
                }
            }
        }
        if let Some(action) = traffic.last() {
            if !action.request.contains("<string>shutdown</string>") {
                problems.push("the last call is not the shutdown action".to_string());
            }
        }
        let ip = self.vm_ip(vm).unwrap_or_default();
        check_stub_log(
            stubs,
            &[format!("ping -q -c 1 -w 5 {ip}"), format!("root@{ip} true")],
            &mut problems,
        );
        match self.wait_for_state(vm, 6) {
            Ok(()) => {
                let doc = self.vm_document(vm).unwrap_or_default();
                if !doc.contains("<NEWIMAGE_TITLE><![CDATA[my new image]]></NEWIMAGE_TITLE>") {
                    problems.push(format!(
                        "VM {vm}: TEMPLATE/CREATE_IMAGE/NEWIMAGE_TITLE not kept"
                    ));
                }
            }
            Err(problem) => problems.push(format!("after the shutdown: {problem}")),
        }
        self.report(
            &what,
            problems,
            &format!("VM {vm} created, logged into through the stubs at {ip}, shut down, DONE"),
        );
        Ok(())
    }

    fn run_cluster(&mut self, stubs: &Stubs) -> Result<(), String> {
        let release = CLIENT_RELEASES[0];
        let what = format!("unrecorded stratus-run-cluster -n 2 {IMAGE_ID} [{release}]");
        let first = self.next_vm_id()?;
        let mut args = self.common_args(true);
        args.extend(["-n", "2", IMAGE_ID].map(String::from));
        let stdout_lines = [
            " :: Starting 2 machines".to_string(),
            format!(" :: Machine 1 (vm ID: {first})"),
            format!(" :: Machine 2 (vm ID: {})", first + 1),
            " :: Configuring nodes ::".to_string(),
            " :: Done!".to_string(),
        ];
        let expectation = Expectation {
            exit_code: 0,
            stdout_lines: &stdout_lines,
            methods: &[
                "one.vm.allocate",
                "one.vm.info",
                "one.vm.allocate",
                "one.vm.info",
                "one.vm.info*",
            ],
        };
        let mut problems = Vec::new();
        self.run_unrecorded_command(
            release,
            "stratus-run-cluster",
            &args,
            stubs,
            &expectation,
            &mut problems,
        );
        let master = self.vm_ip(first).unwrap_or_default();
        let worker = self.vm_ip(first + 1).unwrap_or_default();
        for (vm, ip) in [(first, &master), (first + 1, &worker)] {
            match self.vm_state(vm) {
                Ok((3, 3)) => {}
                Ok(other) => problems.push(format!("VM {vm}: state {other:?}, expected RUNNING")),
                Err(problem) => problems.push(problem),
            }
            if !stdout_contains_ip(stubs, ip) {
                problems.push(format!(
                    "the client did not configure {ip} (VM {vm}) through ssh"
                ));
            }
        }
        // The cluster's VMs are not needed any more.
        for vm in [first, first + 1] {
            if let Err(problem) =
                self.call("one.vm.action", &[Param::Text("finalize"), Param::Int(vm)])
            {
                problems.push(format!("finalize VM {vm}: {problem}"));
            }
        }
        self.report(&what, problems, &format!("VMs {first} and {} RUNNING, master {master} and worker {worker} configured through the stubs", first + 1));
        Ok(())
    }

    fn connect_instance(&mut self, stubs: &Stubs) -> Result<(), String> {
        let release = CLIENT_RELEASES[0];
        // VM 0 (oneadmin's, 192.168.1.1) is still RUNNING at the end of the recorded run.
        let vm = 0;
        let what = format!("unrecorded stratus-connect-instance {vm} [{release}]");
        let mut args = self.common_args(false);
        // The command insists on an existing private key file; the ssh stub never reads it.
        let key = stubs
            .dir
            .as_deref()
            .map(|d| d.join("id_rsa"))
            .unwrap_or_default();
        if let Err(e) = fs::write(&key, "placeholder: the ssh stub does not read it\n") {
            return Err(format!("cannot write {}: {e}", key.display()));
        }
        args.extend([
            "-k".to_string(),
            key.to_string_lossy().into_owned(),
            vm.to_string(),
        ]);
        let expectation = Expectation {
            exit_code: 0,
            stdout_lines: &[],
            methods: &["one.vm.info*"],
        };
        let mut problems = Vec::new();
        self.run_unrecorded_command(
            release,
            "stratus-connect-instance",
            &args,
            stubs,
            &expectation,
            &mut problems,
        );
        let ip = self.vm_ip(vm).unwrap_or_default();
        check_stub_log(stubs, &[format!("root@{ip}")], &mut problems);
        self.report(
            &what,
            problems,
            &format!("ssh (stubbed) to VM {vm}'s lease {ip}"),
        );
        Ok(())
    }

    fn register_node(&mut self) -> Result<(), String> {
        let release = CLIENT_RELEASES[0];
        let what =
            format!("unrecorded stratus-register-node's calls (register_node.py) [{release}]");
        let host = REGISTERED_HOST_ID;
        let script = Path::new(crate::MANIFEST_DIR).join("compat-tests/client/register_node.py");
        let endpoint = format!(
            "http://127.0.0.1:{}/register-node/xmlrpc",
            self.proxy.port()
        );
        let args = vec![
            script.to_string_lossy().into_owned(),
            endpoint,
            "oneadmin".to_string(),
            "password".to_string(),
            REGISTERED_NODE.to_string(),
        ];
        let stdout_lines = [
            format!("registered {REGISTERED_NODE} as host {host}"),
            format!("host list: {REGISTERED_NODE} is host {host}"),
            format!("host {host}: name {REGISTERED_NODE}, im im_dummy, vmm vmm_dummy, tm tm_dummy"),
            format!("removed host {host}"),
        ];
        let expectation = Expectation {
            exit_code: 0,
            stdout_lines: &stdout_lines,
            methods: &[
                "one.host.allocate",
                "one.hostpool.info",
                "one.host.info",
                "one.host.delete",
            ],
        };
        let mut problems = Vec::new();
        let traffic = self.run_unrecorded_command(
            release,
            "python",
            &args,
            &Stubs::none(),
            &expectation,
            &mut problems,
        );
        if let Some(allocate) = traffic.first() {
            if allocate.request.matches("<param>").count() != 7 {
                problems.push(
                    "one.host.allocate was not sent with the 7 parameters of hostCreate".into(),
                );
            }
        }
        match self.host_states() {
            Ok(hosts) if hosts.contains_key(&host) => {
                problems.push(format!("host {host} is still there"))
            }
            Ok(_) => {}
            Err(problem) => problems.push(problem),
        }
        self.report(
            &what,
            problems,
            &format!("host {host} registered, found by name, shown and removed"),
        );
        Ok(())
    }

    /// Runs one command with the stubs first on PATH; checks the expectation.
    fn run_unrecorded_command(
        &mut self,
        release: &str,
        program: &str,
        args: &[String],
        stubs: &Stubs,
        expectation: &Expectation,
        problems: &mut Vec<String>,
    ) -> Vec<Exchange> {
        let _ = self.proxy.take_log();
        let _ = self.marketplace.take_log();
        stubs.clear_log();
        let bin = self.settings.client_bin(release).join(program);
        let started = Instant::now();
        let outcome = crate::run_process(
            &bin,
            args,
            &self.home,
            self.settings.command_timeout,
            stubs.dir.as_deref(),
            &[],
        );
        let traffic = self.proxy.take_log();
        let _ = self.marketplace.take_log();
        match outcome {
            Err(problem) => problems.push(problem),
            Ok((code, stdout, stderr)) => {
                let stdout = String::from_utf8_lossy(&stdout).into_owned();
                if code != expectation.exit_code {
                    problems.push(format!(
                        "exit code {code}, expected {}; stderr: {}",
                        expectation.exit_code,
                        String::from_utf8_lossy(&stderr)
                            .lines()
                            .last()
                            .unwrap_or("")
                    ));
                }
                for line in expectation.stdout_lines {
                    if !stdout.lines().any(|l| l == line) {
                        problems.push(format!("stdout has no line {line:?}"));
                    }
                }
                if !stdout.is_empty() && !problems.is_empty() {
                    problems.extend(stdout.lines().take(40).map(|l| format!("| {l}")));
                }
            }
        }
        let methods: Vec<String> = traffic.iter().map(Exchange::method).collect();
        if !methods_match(expectation.methods, &methods) {
            problems.push(format!(
                "XML-RPC calls {methods:?}, expected {:?}",
                expectation.methods
            ));
        }
        for exchange in &traffic {
            let body = String::from_utf8_lossy(&exchange.response);
            if exchange.status != 200 || !body.contains("<boolean>1</boolean>") {
                problems.push(format!(
                    "{} failed: {}",
                    exchange.method(),
                    crate::harness::compare::quote_brief(&body)
                ));
            }
        }
        println!(
            "     ({:.1} s, {} XML-RPC calls)",
            started.elapsed().as_secs_f64(),
            traffic.len()
        );
        traffic
    }

    fn report(&mut self, what: &str, mut problems: Vec<String>, summary: &str) {
        if problems.is_empty() {
            self.pass(what, &format!(": {summary}"));
        } else {
            let first = problems.remove(0);
            self.fail(what, &first, &problems);
        }
    }

    /// `--endpoint … -u oneadmin -p password [--marketplace-endpoint … -k …]`.
    fn common_args(&self, with_marketplace: bool) -> Vec<String> {
        let mut args = vec![
            "--endpoint".to_string(),
            format!("http://127.0.0.1:{}/unrecorded/xmlrpc", self.proxy.port()),
            "-u".into(),
            "oneadmin".into(),
            "-p".into(),
            "password".into(),
        ];
        if with_marketplace {
            args.extend([
                "--marketplace-endpoint".to_string(),
                crate::marketplace::base_url(self.marketplace.port()),
                "-k".into(),
                self.home.join("id_rsa.pub").to_string_lossy().into_owned(),
            ]);
        }
        args
    }

    /// The id the next VM gets: one more than the highest so far (ids are never reused).
    fn next_vm_id(&mut self) -> Result<i64, String> {
        let pool = self.document(
            "one.vmpool.info",
            &[
                Param::Int(-2),
                Param::Int(-1),
                Param::Int(-1),
                Param::Int(-2),
            ],
        )?;
        Ok(pool
            .children
            .iter()
            .filter_map(|vm| vm.child_text("ID").and_then(|t| t.parse::<i64>().ok()))
            .max()
            .map_or(0, |n| n + 1))
    }

    fn vm_document(&mut self, vm: i64) -> Result<String, String> {
        match self.call("one.vm.info", &[Param::Int(vm)])?.first() {
            Some(crate::harness::xmlrpc::Value::String { text, .. }) => Ok(text.clone()),
            other => Err(format!("VM {vm}: no document but {other:?}")),
        }
    }

    fn vm_ip(&mut self, vm: i64) -> Result<String, String> {
        let doc = self.document("one.vm.info", &[Param::Int(vm)])?;
        doc.child("TEMPLATE")
            .and_then(|t| t.child("NIC"))
            .and_then(|n| n.child_text("IP"))
            .map(str::to_string)
            .ok_or_else(|| format!("VM {vm} has no NIC/IP"))
    }

    fn wait_for_state(&mut self, vm: i64, wanted: i64) -> Result<(), String> {
        self.wait_until(&format!("VM {vm} STATE {wanted}"), |s| {
            Ok(s.vm_state(vm)?.0 == wanted)
        })
        .map(|_| ())
    }
}

/// `methods` against a pattern where `m*` stands for one or more `m`.
fn methods_match(pattern: &[&str], methods: &[String]) -> bool {
    let mut index = 0;
    for expected in pattern {
        let (name, repeat) = match expected.strip_suffix('*') {
            Some(name) => (name, true),
            None => (*expected, false),
        };
        if methods.get(index).map(String::as_str) != Some(name) {
            return false;
        }
        index += 1;
        while repeat && methods.get(index).map(String::as_str) == Some(name) {
            index += 1;
        }
    }
    index == methods.len()
}

/// The stub programs and the log they write.
pub struct Stubs {
    dir: Option<PathBuf>,
    log: Option<PathBuf>,
}

impl Stubs {
    fn none() -> Stubs {
        Stubs {
            dir: None,
            log: None,
        }
    }

    fn clear_log(&self) {
        if let Some(log) = &self.log {
            let _ = fs::write(log, "");
        }
    }

    fn log_lines(&self) -> Vec<String> {
        self.log
            .as_ref()
            .and_then(|log| fs::read_to_string(log).ok())
            .map(|text| text.lines().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

fn make_stubs(work_dir: &Path) -> Result<Stubs, String> {
    let dir = work_dir.join("stubs");
    let log = work_dir.join("stubs.log");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for program in STUBBED_PROGRAMS {
        let path = dir.join(program);
        // Only records the call: nothing is contacted.
        let script = format!(
            "#!/bin/sh\nprintf '%s\\n' \"{program} $*\" >> '{}'\nexit 0\n",
            log.display()
        );
        fs::write(&path, script).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make {} executable: {e}", path.display()))?;
    }
    Ok(Stubs {
        dir: Some(dir),
        log: Some(log),
    })
}

fn check_stub_log(stubs: &Stubs, needles: &[String], problems: &mut Vec<String>) {
    let lines = stubs.log_lines();
    for needle in needles {
        if !lines.iter().any(|l| l.contains(needle.as_str())) {
            problems.push(format!(
                "no stubbed call with {needle:?} (calls: {lines:?})"
            ));
        }
    }
}

fn stdout_contains_ip(stubs: &Stubs, ip: &str) -> bool {
    !ip.is_empty()
        && stubs
            .log_lines()
            .iter()
            .any(|l| l.starts_with("ssh ") && l.contains(&format!("root@{ip} ")))
}
