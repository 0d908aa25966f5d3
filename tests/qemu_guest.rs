//! End to end with a real guest: stratusd drives libvirt's QEMU driver (`qemu:///embed`, in the
//! daemon's process, TCG) to boot the tiny test guest that scripts/setup-qemu.sh builds, watches
//! it come up on its serial console, shuts it down with ACPI, and notices a guest that powered
//! itself off (ACTIVE/UNKNOWN at the next VM poll).
//!
//! Nothing here is skipped: without QEMU or the guest files the test fails and says to run
//! scripts/setup-qemu.sh. Timings go to stderr (`cargo test --test qemu_guest -- --nocapture`).

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use stratusd::driver::libvirt::LibvirtHost;

/// What the guest's init prints once it obeys the power button (scripts/test-guest/init).
const GUEST_UP: &str = "STRATUSD-GUEST-UP";
/// Kernel command-line flag that makes the guest power itself off after [`GUEST_UP`].
const POWEROFF_FLAG: &str = "stratusd.poweroff";

const VM_ACTIVE: &str = "3";
const VM_DONE: &str = "6";
const VM_FAILED: &str = "7";
const LCM_RUNNING: &str = "3";
const LCM_UNKNOWN: &str = "16";
const HOST_MONITORED: &str = "2";

/// VM polling interval given to the daemon, in seconds.
const VM_POLLING_INTERVAL: u64 = 2;

/// First open of the QEMU driver probes QEMU (~8 s); generous for a loaded 2-core machine.
const HOST_MONITORED_WITHIN: Duration = Duration::from_secs(90);
const RUNNING_WITHIN: Duration = Duration::from_secs(60);
/// The guest reaches init in ~6 s under TCG when the machine is idle.
const GUEST_UP_WITHIN: Duration = Duration::from_secs(60);
const DONE_WITHIN: Duration = Duration::from_secs(60);

const SETUP_HINT: &str = "run scripts/setup-qemu.sh (as root) first";

fn guest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-guest")
}

/// Fails, saying what to run, on a machine that cannot boot the guest.
fn check_prerequisites() {
    let required = [
        PathBuf::from("/usr/bin/qemu-system-x86_64"),
        PathBuf::from("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"),
        guest_dir().join("vmlinuz"),
        guest_dir().join("initrd.gz"),
    ];
    let missing: Vec<String> = required
        .iter()
        .filter(|path| !path.exists())
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "cannot boot the test guest ({} missing): {SETUP_HINT}",
        missing.join(", ")
    );
    let passwd = read_file(Path::new("/etc/passwd"));
    assert!(
        passwd.lines().any(|line| line.starts_with("libvirt-qemu:")),
        "libvirt's QEMU driver needs the libvirt-qemu user: {SETUP_HINT}"
    );
}

/// Kills, on drop, every QEMU process still running under the embed root, so that a failed
/// test does not leave TCG guests eating the shared CPUs. Declared before the daemon, it is
/// dropped after it.
struct QemuReaper {
    root: PathBuf,
}

/// Pids of the QEMU processes whose command line mentions `root` (libvirt puts the monitor
/// socket and the domain's files under it).
fn qemu_processes_under(root: &Path) -> Vec<u32> {
    let root = root.to_string_lossy().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.starts_with("/usr/bin/qemu-system") && cmdline.contains(&root)
        })
        .collect()
}

impl Drop for QemuReaper {
    fn drop(&mut self) {
        for pid in qemu_processes_under(&self.root) {
            eprintln!("qemu_guest: killing leftover QEMU process {pid}");
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

fn ok_int(answer: &str) -> i32 {
    assert!(answer.contains("<boolean>1</boolean>"), "{answer}");
    field(answer, "i4")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {answer}"))
}

fn info(client: &mut Client, method: &str, id: i32) -> String {
    let answer = client.call(method, &[s(ADMIN), i(id)]);
    assert!(answer.contains("<boolean>1</boolean>"), "{answer}");
    unescape(&answer)
}

/// Polls `method` until `done` accepts the document; panics with the last one after `within`.
fn wait_for(
    client: &mut Client,
    method: &str,
    id: i32,
    within: Duration,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + within;
    loop {
        let doc = info(client, method, id);
        if done(&doc) {
            return doc;
        }
        if field(&doc, "STATE").as_deref() == Some(VM_FAILED) && method == "one.vm.info" {
            panic!("VM {id} FAILED while waiting for {what}: {doc}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} not reached within {within:?}; last document: {doc}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn vm_states(doc: &str) -> (String, String) {
    (
        field(doc, "STATE").unwrap_or_default(),
        field(doc, "LCM_STATE").unwrap_or_default(),
    )
}

/// Waits for a whole line `marker` in the guest's serial console log.
fn wait_for_console_line(console: &Path, marker: &str, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let text = read_file(console);
        if text
            .lines()
            .any(|line| line.trim_end_matches('\r') == marker)
        {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "no {marker} line on the guest console within {within:?}; {} holds:\n{text}",
            console.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The daemon's log without the terminal colour codes tracing puts around field names.
fn plain_log(dir: &Path) -> String {
    let text = read_file(&dir.join("daemon.log"));
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// A `Duration` as its `Debug` form prints it (`512.3ms`, `1.2s`, `870µs`).
fn parse_debug_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" | "us" => number / 1e6,
        "ns" => number / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// The `elapsed=` of the first log line containing `message`.
fn logged_elapsed(log: &str, message: &str) -> Option<Duration> {
    let line = log.lines().find(|line| line.contains(message))?;
    let value = line.split("elapsed=").nth(1)?.split_whitespace().next()?;
    parse_debug_duration(value)
}

/// A log line's leading RFC 3339 UTC timestamp (`2026-12-01T19:40:47.152700Z`).
fn log_timestamp(line: &str) -> Option<SystemTime> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut ymd = date.split('-').map(|part| part.parse::<i64>().ok());
    let (year, month, day) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = time.split(':');
    let (hour, minute): (u64, u64) = (hms.next()?.parse().ok()?, hms.next()?.parse().ok()?);
    let second: f64 = hms.next()?.parse().ok()?;
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = u64::try_from(era * 146_097 + day_of_era - 719_468).ok()?;
    let whole = days * 86_400 + hour * 3_600 + minute * 60;
    Some(UNIX_EPOCH + Duration::from_secs(whole) + Duration::from_secs_f64(second))
}

/// When the first log line containing `message` was written.
fn logged_at(log: &str, message: &str) -> Option<SystemTime> {
    log_timestamp(log.lines().find(|line| line.contains(message))?)
}

/// From one.vm.allocate to RUNNING, split at the libvirt call with the daemon's own log.
struct BootTiming {
    allocate_called: SystemTime,
    running_seen: SystemTime,
}

impl BootTiming {
    fn report(&self, which: &str, log: &str, vm: i32) {
        let message = format!("domain one-{vm} started");
        let started = logged_at(log, &message)
            .unwrap_or_else(|| panic!("no `{message}` line in the log:\n{log}"));
        let in_libvirt = logged_elapsed(log, &message)
            .unwrap_or_else(|| panic!("no elapsed= on the `{message}` line:\n{log}"));
        let since = |later: SystemTime, earlier: SystemTime| {
            later.duration_since(earlier).unwrap_or_default()
        };
        let total = since(self.running_seen, self.allocate_called);
        let before = since(started, self.allocate_called).saturating_sub(in_libvirt);
        let after = since(self.running_seen, started);
        eprintln!(
            "qemu_guest: {which}: one.vm.allocate -> RUNNING {total:?} = stratusd {before:?} \
             (allocate, scheduler, prolog, deploy dispatch) + libvirt define+create \
             {in_libvirt:?} + stratusd {after:?} (recording RUNNING, and this test's 20-ms \
             polling); stratusd in all {:?}",
            total.saturating_sub(in_libvirt)
        );
    }
}

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
    check_prerequisites();
    let dir = temp_dir("qemu");
    // Short: libvirt's monitor socket path lives under it (UNIX socket paths stop at 108 bytes).
    let embed_root = dir.join("lv");
    std::fs::create_dir_all(embed_root.join("etc")).expect("embed root");
    // QEMU as root, console to a plain file without virtlogd; and no ownership records in
    // extended attributes of the guest files, which every run shares.
    std::fs::write(
        embed_root.join("etc/qemu.conf"),
        "user = \"root\"\ngroup = \"root\"\nstdio_handler = \"file\"\nremember_owner = 0\n",
    )
    .expect("qemu.conf");
    let uri = format!("qemu:///embed?root={}", embed_root.display());

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
        ],
    );
    let mut client = daemon.client();

    // A KVM host whose libvirt is the daemon's embedded QEMU driver, with TCG guests.
    let host = ok_int(&client.call(
        "one.host.allocate",
        &[
            s(ADMIN),
            s("qemu-guest-host"),
            s("im_kvm"),
            s("vmm_kvm"),
            s("dummy"),
            s("tm_dummy"),
        ],
    ));
    ok_int(&client.call(
        "one.host.update",
        &[
            s(ADMIN),
            i(host),
            s(&format!(
                "LIBVIRT_URI = \"{uri}\"\nDOMAIN_TYPE = \"qemu\"\nCONSOLE_LOG = \"YES\"\n"
            )),
        ],
    ));
    let monitored_at = Instant::now();
    let host_doc = wait_for(
        &mut client,
        "one.host.info",
        host,
        HOST_MONITORED_WITHIN,
        "host MONITORED",
        |doc| field(doc, "STATE").as_deref() == Some(HOST_MONITORED),
    );
    eprintln!(
        "qemu_guest: host MONITORED {:?} after its update (opening the QEMU driver and probing \
         the emulator); FREE_MEM {} KiB",
        monitored_at.elapsed(),
        field(&host_doc, "FREE_MEM").unwrap_or_default()
    );

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
