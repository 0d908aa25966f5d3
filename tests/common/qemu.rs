//! What the real-guest tests (tests/qemu_guest.rs, tests/qemu_storage.rs) share: the guest files
//! scripts/setup-qemu.sh builds, a KVM host on libvirt's embedded QEMU driver (TCG), waiting on
//! documents and on the guest's serial console, and timings read from the daemon's log.
#![allow(dead_code)]

use super::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the guest's init prints once it obeys the power button (scripts/test-guest/init).
pub const GUEST_UP: &str = "STRATUSD-GUEST-UP";

pub const VM_PENDING: &str = "1";
pub const VM_ACTIVE: &str = "3";
pub const VM_DONE: &str = "6";
pub const VM_FAILED: &str = "7";
pub const LCM_RUNNING: &str = "3";
pub const LCM_UNKNOWN: &str = "16";
pub const HOST_MONITORED: &str = "2";

/// First open of the QEMU driver probes QEMU (~8 s); generous for a loaded 2-core machine.
pub const HOST_MONITORED_WITHIN: Duration = Duration::from_secs(90);
pub const RUNNING_WITHIN: Duration = Duration::from_secs(60);
/// The guest reaches init in ~6 s under TCG when the machine is idle.
pub const GUEST_UP_WITHIN: Duration = Duration::from_secs(60);
pub const DONE_WITHIN: Duration = Duration::from_secs(60);

pub const SETUP_HINT: &str = "run scripts/setup-qemu.sh (as root) first";

pub fn guest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-guest")
}

/// Fails, saying what to run, on a machine that cannot boot the guest; `extra` names further
/// files of the guest directory the test needs.
pub fn check_prerequisites(extra: &[&str]) {
    let mut required = vec![
        PathBuf::from("/usr/bin/qemu-system-x86_64"),
        PathBuf::from("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"),
        guest_dir().join("vmlinuz"),
        guest_dir().join("initrd.gz"),
    ];
    required.extend(extra.iter().map(|name| guest_dir().join(name)));
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
    let recipe = std::process::Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-guest/recipe.sh"))
        .output()
        .expect("sh runs scripts/test-guest/recipe.sh");
    let built_from = std::fs::read_to_string(guest_dir().join("recipe")).unwrap_or_default();
    assert!(
        recipe.status.success() && String::from_utf8_lossy(&recipe.stdout) == built_from.as_str(),
        "the test guest in {} was built from another recipe (its scripts changed): {SETUP_HINT}",
        guest_dir().display()
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
pub struct QemuReaper {
    pub root: PathBuf,
}

/// Pids of the QEMU processes whose command line mentions `root` (libvirt puts the monitor
/// socket and the domain's files under it).
pub fn qemu_processes_under(root: &Path) -> Vec<u32> {
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
            eprintln!("qemu test: killing leftover QEMU process {pid}");
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

/// The root of a `qemu:///embed` driver under `dir` and its URI: QEMU as root, the console to a
/// plain file without virtlogd, and no ownership records in extended attributes of the guest
/// files, which every run shares.
pub fn embed_root(dir: &Path) -> (PathBuf, String) {
    // Short: libvirt's monitor socket path lives under it (UNIX socket paths stop at 108 bytes).
    let root = dir.join("lv");
    std::fs::create_dir_all(root.join("etc")).expect("embed root");
    std::fs::write(
        root.join("etc/qemu.conf"),
        "user = \"root\"\ngroup = \"root\"\nstdio_handler = \"file\"\nremember_owner = 0\n",
    )
    .expect("qemu.conf");
    let uri = format!("qemu:///embed?root={}", root.display());
    (root, uri)
}

/// A KVM host named `name` with transfer driver `tm`, whose libvirt is the daemon's embedded
/// QEMU driver at `uri`, with TCG guests and serial console files; returns once MONITORED.
pub fn add_qemu_host(client: &mut Client, name: &str, tm: &str, uri: &str) -> i32 {
    let host = ok_int(&client.call(
        "one.host.allocate",
        &[
            s(ADMIN),
            s(name),
            s("im_kvm"),
            s("vmm_kvm"),
            s("dummy"),
            s(tm),
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
        client,
        "one.host.info",
        host,
        HOST_MONITORED_WITHIN,
        "host MONITORED",
        |doc| field(doc, "STATE").as_deref() == Some(HOST_MONITORED),
    );
    eprintln!(
        "qemu test: host MONITORED {:?} after its update (opening the QEMU driver and probing \
         the emulator); FREE_MEM {} KiB",
        monitored_at.elapsed(),
        field(&host_doc, "FREE_MEM").unwrap_or_default()
    );
    host
}

pub fn ok_int(answer: &str) -> i32 {
    assert!(answer.contains("<boolean>1</boolean>"), "{answer}");
    field(answer, "i4")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no id in {answer}"))
}

pub fn info(client: &mut Client, method: &str, id: i32) -> String {
    let answer = client.call(method, &[s(ADMIN), i(id)]);
    assert!(answer.contains("<boolean>1</boolean>"), "{answer}");
    unescape(&answer)
}

/// Polls `method` until `done` accepts the document; panics with the last one after `within`.
pub fn wait_for(
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

pub fn vm_states(doc: &str) -> (String, String) {
    (
        field(doc, "STATE").unwrap_or_default(),
        field(doc, "LCM_STATE").unwrap_or_default(),
    )
}

pub fn wait_running(client: &mut Client, vm: i32) -> String {
    wait_for(
        client,
        "one.vm.info",
        vm,
        RUNNING_WITHIN,
        "RUNNING",
        |doc| vm_states(doc) == (VM_ACTIVE.into(), LCM_RUNNING.into()),
    )
}

pub fn wait_done(client: &mut Client, vm: i32) -> String {
    wait_for(client, "one.vm.info", vm, DONE_WITHIN, "DONE", |doc| {
        field(doc, "STATE").as_deref() == Some(VM_DONE)
    })
}

/// The console's lines, without the carriage returns of the serial line.
fn console_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|line| line.trim_end_matches('\r'))
}

/// Waits for a whole line `marker` in the guest's serial console log.
pub fn wait_for_console_line(console: &Path, marker: &str, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        let text = read_file(console);
        if console_lines(&text).any(|line| line == marker) {
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

/// Waits for a console line starting with `prefix` among the lines after the first `after`;
/// the rest of that line and how many lines were read up to it (the next call's `after`).
pub fn wait_console(
    console: &Path,
    prefix: &str,
    after: usize,
    within: Duration,
) -> (String, usize) {
    let deadline = Instant::now() + within;
    loop {
        let text = read_file(console);
        let found = console_lines(&text)
            .enumerate()
            .skip(after)
            .find_map(|(n, line)| Some((line.strip_prefix(prefix)?.to_string(), n + 1)));
        if let Some(found) = found {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no console line {prefix}… within {within:?}; {} holds:\n{text}",
            console.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the first console line `<key>=<value>`.
pub fn console_value(console_text: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    console_lines(console_text).find_map(|line| line.strip_prefix(&prefix).map(str::to_string))
}

/// The daemon's log (plain text: the daemon writes colour codes only to a terminal).
pub fn plain_log(dir: &Path) -> String {
    read_file(&dir.join("daemon.log"))
}

/// A `Duration` as its `Debug` form prints it (`512.3ms`, `1.2s`, `870µs`).
pub fn parse_debug_duration(text: &str) -> Option<Duration> {
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
pub fn logged_elapsed(log: &str, message: &str) -> Option<Duration> {
    let line = log.lines().find(|line| line.contains(message))?;
    let value = line.split("elapsed=").nth(1)?.split_whitespace().next()?;
    parse_debug_duration(value)
}

/// A log line's leading RFC 3339 UTC timestamp (`2026-12-01T19:40:47.152700Z`).
pub fn log_timestamp(line: &str) -> Option<SystemTime> {
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
pub fn logged_at(log: &str, message: &str) -> Option<SystemTime> {
    log_timestamp(log.lines().find(|line| line.contains(message))?)
}

/// From one.vm.allocate to RUNNING, split at the libvirt call with the daemon's own log.
pub struct BootTiming {
    pub allocate_called: SystemTime,
    pub running_seen: SystemTime,
}

impl BootTiming {
    pub fn report(&self, which: &str, log: &str, vm: i32) {
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
            "qemu test: {which}: one.vm.allocate -> RUNNING {total:?} = stratusd {before:?} \
             (allocate, scheduler, prolog, deploy dispatch) + libvirt define+create \
             {in_libvirt:?} + stratusd {after:?} (recording RUNNING, and this test's 20-ms \
             polling); stratusd in all {:?}",
            total.saturating_sub(in_libvirt)
        );
    }
}
