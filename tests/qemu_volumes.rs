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
#[path = "common/pdisk.rs"]
#[allow(dead_code)]
mod pdisk;
#[path = "frontdoor/pki.rs"]
#[allow(dead_code)]
mod pki;

use common::qemu::*;
use common::*;
use std::time::Instant;

fn guest_template(name: &str, cmdline: &str, disks: &str) -> String {
    let dir = guest_dir();
    format!(
        "NAME = \"{name}\"\nMEMORY = 256\nCPU = 1\n\
         OS = [ KERNEL = \"{}\", INITRD = \"{}\", KERNEL_CMD = \"console=ttyS0 quiet no_timer_check {cmdline}\" ]\n{disks}",
        dir.join("vmlinuz").display(),
        dir.join("initrd.gz").display()
    )
}

/// An answer's status and JSON document.
fn status_and_json(resp: pdisk::Resp) -> (u16, serde_json::Value) {
    (resp.status, resp.json)
}

#[test]
fn a_real_guest_sees_a_volume_come_go_and_keep_its_data() {
    check_prerequisites(&[]);
    let dir = temp_dir("qemu-volumes");
    let (embed_root, uri) = embed_root(&dir);
    let _reaper = QemuReaper {
        root: embed_root.clone(),
    };
    // The pdisk service with the front door's TLS and passwords; the embedded driver's URI
    // names its root directory (docs/security.md).
    let mut site = pdisk::Site::start_in(
        dir.clone(),
        &[
            "--vm-polling-interval",
            "5",
            "--host-monitoring-interval",
            "5",
            "--allow-libvirt-uri-param",
            "root",
        ],
    );
    let pdisk = site.pdisk;
    let mut client = site.daemon.client();
    add_qemu_host(&mut client, "qemu-volumes-host", "tm_stratuslab", &uri);
    let api = site.alice();
    let created = api.post_form(
        "/disks/",
        &[("size", "1"), ("tag", "qemu"), ("visibility", "private")],
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json;
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
    let vm_text = vm.to_string();
    let attach_form = [("node", "qemu-volumes-host"), ("vm_id", vm_text.as_str())];
    let started = Instant::now();
    let (status, answer) =
        status_and_json(api.post_form(&format!("/disks/{uuid}/mounts/"), &attach_form));
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
    let (status, answer) =
        status_and_json(api.delete(&format!("/disks/{uuid}/mounts/{uuid}_{vm}")));
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
    let (status, answer) =
        status_and_json(api.post_form(&format!("/disks/{uuid}/mounts/"), &attach_form));
    let reattach_time = started.elapsed();
    assert_eq!(status, 200, "{answer}");
    let (added, seen) = wait_console(&console, "STRATUSD-VOLUME-ADDED=", seen, GUEST_UP_WITHIN);
    assert!(added.ends_with(&format!("{serial} {mark}")), "{added}");
    let (status, answer) =
        status_and_json(api.delete(&format!("/disks/{uuid}/mounts/{uuid}_{vm}")));
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
    assert_eq!(site.daemon.stop(), Some(0), "SIGTERM exits cleanly");
    let _ = std::fs::remove_dir_all(&dir);
}
