//! A persistent volume in a real guest: stratusd's pdisk service hot-plugs it into a running
//! QEMU/TCG guest (libvirt's embedded QEMU driver), whose serial console reports the new block
//! device (its serial is the volume's UUID) and writes a marker into it; the volume is
//! detached (the device goes away in the guest), attached again (the marker is there), and
//! finally given to a second VM as a `pdisk:` disk of its template, where the guest finds the
//! marker at boot. The user count follows each step.
//!
//! Needs what tests/qemu_guest.rs needs (scripts/setup-qemu.sh) and the front door's PKI
//! (`openssl`). Timings: `cargo test --test qemu_volumes -- --nocapture`.

mod common;
#[path = "frontdoor/pki.rs"]
#[allow(dead_code)]
mod pki;

use common::qemu::*;
use common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

fn guest_template(name: &str, cmdline: &str, disks: &str) -> String {
    let dir = guest_dir();
    format!(
        "NAME = \"{name}\"\nMEMORY = 256\nCPU = 1\n\
         OS = [ KERNEL = \"{}\", INITRD = \"{}\", KERNEL_CMD = \"console=ttyS0 quiet no_timer_check {cmdline}\" ]\n{disks}",
        dir.join("vmlinuz").display(),
        dir.join("initrd.gz").display()
    )
}

/// The API as alice, trusting the test CA.
struct Api {
    agent: ureq::Agent,
    base: String,
}

impl Api {
    fn new(addr: SocketAddr, ca: &Path) -> Api {
        use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
        let ca = std::fs::read(ca).unwrap();
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::new_with_certs(&[
                Certificate::from_pem(&ca).unwrap()
            ]))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Api {
            agent,
            base: format!("https://localhost:{}/pswd", addr.port()),
        }
    }

    fn call(&self, method: &str, path: &str, form: &str) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.base);
        let auth = "Basic YWxpY2U6czNjcmV0"; // alice:s3cret
        let resp = match method {
            "GET" => self
                .agent
                .get(url)
                .header("Authorization", auth)
                .header("Accept", "application/json")
                .call(),
            "DELETE" => self
                .agent
                .delete(url)
                .header("Authorization", auth)
                .header("Accept", "application/json")
                .call(),
            _ => self
                .agent
                .post(url)
                .header("Authorization", auth)
                .header("Accept", "application/json")
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(form.as_bytes()),
        };
        let mut resp = resp.expect("the volume service answers");
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    fn count(&self, uuid: &str) -> String {
        let (status, v) = self.call("GET", &format!("/disks/{uuid}/"), "");
        assert_eq!(status, 200, "{v}");
        v["count"].as_str().unwrap_or_default().to_string()
    }
}

/// Waits for a console line starting with `prefix`; returns the rest of the line.
fn wait_console(console: &Path, prefix: &str, after: usize, within: Duration) -> (String, usize) {
    let deadline = Instant::now() + within;
    loop {
        let text = read_file(console);
        let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
        if let Some((n, line)) = lines
            .iter()
            .enumerate()
            .skip(after)
            .find(|(_, l)| l.starts_with(prefix))
        {
            return (line[prefix.len()..].to_string(), n + 1);
        }
        assert!(
            Instant::now() < deadline,
            "no console line {prefix}… within {within:?}; {} holds:\n{text}",
            console.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_real_guest_sees_a_volume_come_go_and_keep_its_data() {
    check_prerequisites(&[]);
    let dir = temp_dir("qemu-volumes");
    let (embed_root, uri) = embed_root(&dir);
    let _reaper = QemuReaper {
        root: embed_root.clone(),
    };
    let pki = pki::Pki::create(&dir.join("pki"));
    let passwords = dir.join("login-pswd.properties");
    std::fs::write(&passwords, "alice=s3cret,cloud-access\n").unwrap();
    let pdisk: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut daemon = Daemon::start_in(
        dir.clone(),
        &[
            "--pdisk-listen",
            &pdisk.to_string(),
            "--tls-cert",
            &pki.server_cert.display().to_string(),
            "--tls-key",
            &pki.server_key.display().to_string(),
            "--password-file",
            &passwords.display().to_string(),
            "--vm-polling-interval",
            "5",
            "--host-monitoring-interval",
            "5",
            "--log-level",
            "info",
            // The embedded driver's URI names its root directory (docs/security.md).
            "--allow-libvirt-uri-param",
            "root",
        ],
    );
    let mut client = daemon.client();
    add_qemu_host(&mut client, "qemu-volumes-host", "tm_stratuslab", &uri);
    let api = Api::new(pdisk, &pki.ca_cert);
    let (status, created) = api.call("POST", "/disks/", "size=1&tag=qemu&visibility=private");
    assert_eq!(status, 201, "{created}");
    let uuid = created["uuid"].as_str().unwrap().to_string();
    let serial = &uuid[..20];
    let mark = format!("STRATUSD-VOLUME-MARK-{}", &uuid[..8]);

    // --- a running guest, alice's (a kernel path is oneadmin's to set: chowned to alice) ----
    let alice = ok_int(&client.call(
        "one.user.allocate",
        &[s(ADMIN), s("alice"), s("s3cret"), s("core")],
    ));
    let vm = ok_int(&client.call(
        "one.vm.allocate",
        &[
            s(ADMIN),
            s(&guest_template(
                "volume-hotplug",
                &format!("stratusd.volume_mark={mark}"),
                "",
            )),
        ],
    ));
    ok_int(&client.call("one.vm.chown", &[s(ADMIN), i(vm), i(alice), i(-1)]));
    wait_running(&mut client, vm);
    let console = dir.join(vm.to_string()).join("console.log");
    wait_for_console_line(&console, GUEST_UP, GUEST_UP_WITHIN);
    assert_eq!(api.count(&uuid), "0");

    // --- attach: the guest sees the device, with the volume's serial, and writes to it -------
    let attach_form = format!("node=qemu-volumes-host&vm_id={vm}");
    let started = Instant::now();
    let (status, answer) = api.call("POST", &format!("/disks/{uuid}/mounts/"), &attach_form);
    let attach_time = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["target"], "vdz");
    assert_eq!(api.count(&uuid), "1");
    let (added, seen) = wait_console(&console, "STRATUSD-VOLUME-ADDED=", 0, GUEST_UP_WITHIN);
    let mut parts = added.split_whitespace();
    let device = parts.next().unwrap().to_string();
    assert_eq!(parts.next(), Some(serial), "{added}");
    assert_eq!(
        parts.next(),
        Some("EMPTY"),
        "a new volume reads as zeros: {added}"
    );
    let (written, seen) = wait_console(&console, "STRATUSD-VOLUME-WRITTEN=", seen, GUEST_UP_WITHIN);
    assert_eq!(written, format!("{device} {mark}"));
    let appeared = started.elapsed();

    // --- detach: the device goes away --------------------------------------------------------
    let started = Instant::now();
    let (status, answer) = api.call("DELETE", &format!("/disks/{uuid}/mounts/{uuid}_{vm}"), "");
    let detach_time = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["target"], "vdz");
    let (removed, seen) = wait_console(&console, "STRATUSD-VOLUME-REMOVED=", seen, GUEST_UP_WITHIN);
    assert_eq!(removed, device);
    assert_eq!(api.count(&uuid), "0");
    let volume_file = dir.join("volumes").join(&uuid);
    let head = std::fs::read(&volume_file).unwrap()[..512].to_vec();
    assert!(
        String::from_utf8_lossy(&head).starts_with(&mark),
        "the guest's write is in the volume file"
    );

    // --- attach again: the data is there ------------------------------------------------------
    let started = Instant::now();
    let (status, answer) = api.call("POST", &format!("/disks/{uuid}/mounts/"), &attach_form);
    let reattach_time = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    let (added, seen) = wait_console(&console, "STRATUSD-VOLUME-ADDED=", seen, GUEST_UP_WITHIN);
    assert!(added.ends_with(&format!("{serial} {mark}")), "{added}");
    let (status, answer) = api.call("DELETE", &format!("/disks/{uuid}/mounts/{uuid}_{vm}"), "");
    assert_eq!(status, 200, "{answer}");
    wait_console(&console, "STRATUSD-VOLUME-REMOVED=", seen, GUEST_UP_WITHIN);
    assert!(client
        .call("one.vm.action", &[s(ADMIN), s("shutdown"), i(vm)])
        .contains("<boolean>1</boolean>"));
    wait_done(&mut client, vm);

    // --- a second VM with the volume as a pdisk: disk of its template -------------------------
    let disks = format!(
        "DISK = [ TYPE = swap, SIZE = 16, TARGET = vda ]\n\
         DISK = [ SOURCE = pdisk:https://localhost:{}/{uuid}, TARGET = vdb, TYPE = block ]\n",
        pdisk.port()
    );
    let vm2 = ok_int(&client.call(
        "one.vm.allocate",
        &[s(ADMIN), s(&guest_template("volume-boot", "", &disks))],
    ));
    wait_running(&mut client, vm2);
    assert_eq!(api.count(&uuid), "1", "the VM took a user of the volume");
    let console2 = dir.join(vm2.to_string()).join("console.log");
    let (present, _) = wait_console(&console2, "STRATUSD-VOLUME-PRESENT=", 0, GUEST_UP_WITHIN);
    assert!(
        present.ends_with(&format!("{serial} {mark}")),
        "the guest finds the data at boot: {present}"
    );
    wait_for_console_line(&console2, GUEST_UP, GUEST_UP_WITHIN);
    assert!(client
        .call("one.vm.action", &[s(ADMIN), s("shutdown"), i(vm2)])
        .contains("<boolean>1</boolean>"));
    wait_done(&mut client, vm2);
    assert_eq!(api.count(&uuid), "0", "the VM gave the user back");

    // --- timings -------------------------------------------------------------------------------
    let log = plain_log(&dir);
    let libvirt_attach = logged_elapsed(&log, "device attached");
    let detach_in_libvirt = log
        .lines()
        .find(|l| l.contains("volume detached"))
        .and_then(|l| l.split("in_libvirt=").nth(1)?.split_whitespace().next())
        .and_then(parse_debug_duration);
    eprintln!(
        "qemu_volumes: attach {attach_time:?} (POST → answer; virDomainAttachDeviceFlags {libvirt_attach:?}); \
         the guest saw the device and wrote to it {appeared:?} after the POST; \
         detach {detach_time:?} (DELETE → answer; detach request + the guest releasing the device {detach_in_libvirt:?}); \
         re-attach {reattach_time:?}"
    );
    assert_eq!(daemon.stop(), Some(0), "SIGTERM exits cleanly");
    let _ = std::fs::remove_dir_all(&dir);
}
