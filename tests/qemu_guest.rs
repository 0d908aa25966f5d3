//! End to end with a real guest: stratusd drives libvirt's QEMU driver (`qemu:///embed`, in the
//! daemon's process, TCG) to boot the tiny test guest that scripts/setup-qemu.sh builds, watches
//! it come up on its serial console, shuts it down with ACPI, and notices a guest that powered
//! itself off (ACTIVE/UNKNOWN at the next VM poll).
//!
//! Nothing here is skipped: without QEMU or the guest files the test fails and says to run
//! scripts/setup-qemu.sh. Timings go to stderr (`cargo test --test qemu_guest -- --nocapture`).

mod common;
use common::qemu::*;
use common::*;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use stratusd::driver::libvirt::LibvirtHost;

/// Kernel command-line flag that makes the guest power itself off after [`GUEST_UP`].
const POWEROFF_FLAG: &str = "stratusd.poweroff";

/// VM polling interval given to the daemon, in seconds.
const VM_POLLING_INTERVAL: u64 = 2;

fn vm_template(name: &str, extra_cmdline: &str) -> String {
    let dir = guest_dir();
    format!(
        "NAME = \"{name}\"\nMEMORY = 256\nCPU = 1\n\
         OS = [ KERNEL = \"{}\", INITRD = \"{}\", KERNEL_CMD = \"console=ttyS0 quiet{extra_cmdline}\" ]\n",
        dir.join("vmlinuz").display(),
        dir.join("initrd.gz").display()
    )
}

#[test]
fn a_real_guest_boots_shuts_down_and_powers_itself_off() {
    check_prerequisites(&[]);
    let dir = temp_dir("qemu");
    let (embed_root, uri) = embed_root(&dir);

    let _reaper = QemuReaper {
        root: embed_root.clone(),
    };
    let polling = VM_POLLING_INTERVAL.to_string();
    let mut daemon = Daemon::start_in(
        dir.clone(),
        &[
            "--vm-polling-interval",
            &polling,
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

    // A KVM host whose libvirt is the daemon's embedded QEMU driver, with TCG guests.
    add_qemu_host(&mut client, "qemu-guest-host", "tm_dummy", &uri);

    // --- 1. boot, console, ACPI shutdown -------------------------------------------------------
    let allocate_called = SystemTime::now();
    let vm = ok_int(&client.call(
        "one.vm.allocate",
        &[s(ADMIN), s(&vm_template("guest-shutdown", ""))],
    ));
    // Nobody deploys it: the scheduler places it (at once in its default immediate mode, so
    // PENDING may already be over by the first look).
    let first = info(&mut client, "one.vm.info", vm);
    assert!(
        matches!(
            field(&first, "STATE").as_deref(),
            Some("1") | Some(VM_ACTIVE)
        ),
        "a new VM is PENDING, or ACTIVE once placed: {first}"
    );
    let running = wait_for(
        &mut client,
        "one.vm.info",
        vm,
        RUNNING_WITHIN,
        "RUNNING",
        |doc| vm_states(doc) == (VM_ACTIVE.into(), LCM_RUNNING.into()),
    );
    let running_at = Instant::now();
    let first_boot = BootTiming {
        allocate_called,
        running_seen: SystemTime::now(),
    };
    assert_eq!(
        field(&running, "HOSTNAME").as_deref(),
        Some("qemu-guest-host"),
        "{running}"
    );
    let console = dir.join(vm.to_string()).join("console.log");
    let guest_up_at = wait_for_console_line(&console, GUEST_UP, GUEST_UP_WITHIN);
    assert_eq!(
        qemu_processes_under(&embed_root).len(),
        1,
        "one QEMU process runs one-{vm}"
    );

    let shutdown_at = Instant::now();
    assert!(client
        .call("one.vm.action", &[s(ADMIN), s("shutdown"), i(vm)])
        .contains("<boolean>1</boolean>"));
    wait_for(&mut client, "one.vm.info", vm, DONE_WITHIN, "DONE", |doc| {
        field(doc, "STATE").as_deref() == Some(VM_DONE)
    });
    let done_at = Instant::now();
    assert!(
        read_file(&console).contains("STRATUSD-GUEST-POWER-BUTTON"),
        "the guest saw the ACPI power button: {}",
        read_file(&console)
    );
    assert!(
        qemu_processes_under(&embed_root).is_empty(),
        "QEMU exited after the shutdown"
    );

    // --- 2. a guest that powers itself off is UNKNOWN at the next poll; finalize ends it -------
    let allocate2_called = SystemTime::now();
    let vm2 = ok_int(&client.call(
        "one.vm.allocate",
        &[
            s(ADMIN),
            s(&vm_template("guest-poweroff", &format!(" {POWEROFF_FLAG}"))),
        ],
    ));
    wait_for(
        &mut client,
        "one.vm.info",
        vm2,
        RUNNING_WITHIN,
        "RUNNING",
        |doc| vm_states(doc) == (VM_ACTIVE.into(), LCM_RUNNING.into()),
    );
    let second_boot = BootTiming {
        allocate_called: allocate2_called,
        running_seen: SystemTime::now(),
    };
    let console2 = dir.join(vm2.to_string()).join("console.log");
    wait_for_console_line(&console2, "STRATUSD-GUEST-POWEROFF", GUEST_UP_WITHIN);
    let powered_off_at = Instant::now();
    // QEMU exits, libvirt drops the transient domain, the next poll finds it gone.
    let unknown_within = Duration::from_secs(VM_POLLING_INTERVAL * 2 + 10);
    wait_for(
        &mut client,
        "one.vm.info",
        vm2,
        unknown_within,
        "ACTIVE/UNKNOWN",
        |doc| vm_states(doc) == (VM_ACTIVE.into(), LCM_UNKNOWN.into()),
    );
    let unknown_after = powered_off_at.elapsed();
    assert!(client
        .call("one.vm.action", &[s(ADMIN), s("finalize"), i(vm2)])
        .contains("<boolean>1</boolean>"));
    wait_for(
        &mut client,
        "one.vm.info",
        vm2,
        DONE_WITHIN,
        "DONE",
        |doc| field(doc, "STATE").as_deref() == Some(VM_DONE),
    );

    // --- timings -------------------------------------------------------------------------------
    let log = plain_log(&dir);
    first_boot.report("first VM", &log, vm);
    second_boot.report("second VM", &log, vm2);
    let shutdown_in_libvirt = logged_elapsed(&log, "domain shut down");
    eprintln!(
        "qemu_guest: guest boot, RUNNING -> {GUEST_UP} on the console: {:?}",
        guest_up_at - running_at
    );
    eprintln!(
        "qemu_guest: shutdown, one.vm.action shutdown -> DONE: {:?} (ACPI wait in libvirt: {:?})",
        done_at - shutdown_at,
        shutdown_in_libvirt
    );
    eprintln!(
        "qemu_guest: guest poweroff -> ACTIVE/UNKNOWN: {unknown_after:?} (VM polling every {VM_POLLING_INTERVAL} s)"
    );

    // --- nothing left behind, seen from libvirt itself --------------------------------------------
    assert_eq!(daemon.stop(), Some(0), "SIGTERM exits cleanly");
    // An embed root belongs to one process at a time: open it here only now the daemon is gone.
    let libvirt = LibvirtHost::open(&uri).unwrap_or_else(|error| panic!("open {uri}: {error}"));
    assert_eq!(
        libvirt.list_domains().expect("list domains"),
        Vec::<String>::new(),
        "no domain left on the host"
    );
    drop(libvirt);
    assert!(qemu_processes_under(&embed_root).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn log_timestamps_and_durations_parse() {
    let at = |line: &str| {
        log_timestamp(line)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_micros())
    };
    assert_eq!(
        at("2026-12-01T19:40:47.152700Z  INFO stratusd::core::vms: VM allocated vm=0"),
        Some(1_796_154_047_152_700)
    );
    assert_eq!(at("2000-02-29T00:00:00Z x"), Some(951_782_400_000_000));
    assert_eq!(
        at("2026-12-01 19:40:50.823+0000: 5212: info : libvirt"),
        None
    );
    let line = "2026-12-01T19:40:51.458074Z  INFO stratusd::driver::hypervisor: domain one-0 \
                started vm=0 host=h elapsed=4.301321015s";
    assert_eq!(
        logged_elapsed(line, "domain one-0 started"),
        Some(Duration::from_nanos(4_301_321_015))
    );
    assert_eq!(
        parse_debug_duration("721.801801ms"),
        Some(Duration::from_secs_f64(0.721801801))
    );
    assert_eq!(
        parse_debug_duration("870µs"),
        Some(Duration::from_micros(870))
    );
    assert_eq!(parse_debug_duration("12 parsecs"), None);
}
