//! StratusLab storage end to end with real guests: stratusd on a KVM host registered with
//! `tm_stratuslab`, whose libvirt is the daemon's embedded QEMU driver (TCG), runs VMs from a
//! Marketplace image that the test Marketplace serves gzipped. The image is a raw disk holding
//! an ext2 file system with a marker file (target/test-guest/root.img, built by
//! scripts/setup-qemu.sh); the guest is the test kernel and initrd, whose init mounts the
//! context ISO (found by its `_STRATUSLAB` label), runs its init.sh, sources context.sh, mounts
//! the root disk and prints what it found on the serial console (scripts/test-guest/init).
//!
//! 1. VM 1 from the Marketplace id: the image is downloaded once, verified and cached; the
//!    guest's root disk is the VM's qcow2 overlay of it; the guest prints the marker of the
//!    image, PUBLIC_KEY and IP_PUBLIC (`$NIC[IP, NETWORK="public"]`, the VM's lease).
//! 2. VM 2 of the same image: a cache hit (no manifest, no image fetched again); it boots.
//! 3. VM 3 with SAVE=yes and CREATE_IMAGE: the guest writes a new marker into its root disk;
//!    the shutdown saves the disk as a new image (cache, manifest uploaded, the
//!    MARKETPLACE_AND_IMAGEID line in the VM log); the cached origin is unchanged.
//! 4. VM 4 from the new image's Marketplace id, as `stratus-run-instance <id>` would reference
//!    it: the guest prints the new marker.
//!
//! Nothing is skipped: without QEMU, the guest files or a way to create the VMs' bridge the test
//! fails and says what to do. Timings go to stderr (`cargo test --test qemu_storage --
//! --nocapture`).

mod common;
use common::marketplace::{sha1_hex, Marketplace};
use common::qemu::*;
use common::*;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// The key as the client puts it in CONTEXT: with its trailing newline inside the quotes.
const KEY: &str = "ssh-rsa AAAAB3NzaC1yc2E...PUBLICKEY... root@vm\n";

/// The network the VMs' NIC is on, as on a StratusLab site.
const NETWORK: &str = "public";

/// A Linux bridge for the VMs' NIC (a network needs a BRIDGE, and libvirt plugs the guest's tap
/// device into it), deleted on drop.
struct TestBridge {
    name: String,
}

impl TestBridge {
    fn create() -> TestBridge {
        let name = format!("sdq{}", std::process::id() % 1_000_000);
        let ip = |args: &[&str]| Command::new("ip").args(args).output();
        // A bridge of an earlier, killed run with the same pid.
        let _ = ip(&["link", "del", &name]);
        match ip(&["link", "add", "name", &name, "type", "bridge"]) {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "cannot create the bridge {name} for the VMs' NIC (needs CAP_NET_ADMIN): {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(error) => panic!("cannot run `ip` ({error}): install iproute2"),
        }
        let _ = ip(&["link", "set", &name, "up"]);
        TestBridge { name }
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .output();
    }
}

fn qemu_img_info(path: &Path) -> serde_json::Value {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(path)
        .output()
        .unwrap_or_else(|error| panic!("qemu-img does not run ({error}): {SETUP_HINT}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("qemu-img info JSON")
}

/// A VM as `stratus-run-instance` writes it (root disk from the Marketplace, swap, a NIC on the
/// public network, the key in CONTEXT), plus the test kernel and initrd, which only oneadmin
/// may name.
fn vm_template(name: &str, source: &str, save: bool, cmdline: &str, extra: &str) -> String {
    let dir = guest_dir();
    format!(
        "NAME = \"{name}\"\nCPU = 1\nVCPU = 1\nMEMORY = 256\n\
         OS = [ KERNEL = \"{kernel}\", INITRD = \"{initrd}\", KERNEL_CMD = \"console=ttyS0 quiet{cmdline}\" ]\n\
         DISK = [\nsource   = \"{source}\",\ntarget   = \"vda\",\nsave     = {save},\nreadonly = \"no\",\ndriver = \"raw\"\n]\n\
         DISK = [\ntype     = swap,\nsize     = 16,\ntarget   = \"vdb\",\nreadonly = \"no\"\n]\n\
         NIC = [ network_uname=oneadmin,network = \"{NETWORK}\" ]\n\
         CONTEXT = [\npublic_key = \"{KEY}\",\nip_public = \"$NIC[IP, NETWORK=\\\"{NETWORK}\\\"]\",\ntarget = \"hdd\"\n]\n{extra}",
        kernel = dir.join("vmlinuz").display(),
        initrd = dir.join("initrd.gz").display(),
        save = if save { "yes" } else { "no" },
    )
}

/// What one guest showed, and when.
struct Boot {
    vm: i32,
    timing: BootTiming,
    /// RUNNING → the guest's GUEST_UP line.
    guest_boot: Duration,
    console: String,
}

/// Allocates a VM, waits for RUNNING and for the guest's GUEST_UP line, and checks what the
/// guest read from its context disk and root disk.
fn boot(
    client: &mut Client,
    dir: &Path,
    template: &str,
    expected_marker: &str,
    expected_ip: Option<&str>,
) -> Boot {
    let allocate_called = SystemTime::now();
    let vm = ok_int(&client.call("one.vm.allocate", &[s(ADMIN), s(template)]));
    let running = wait_running(client, vm);
    let running_at = Instant::now();
    let timing = BootTiming {
        allocate_called,
        running_seen: SystemTime::now(),
    };
    let console_path = dir.join(vm.to_string()).join("console.log");
    let up_at = wait_for_console_line(&console_path, GUEST_UP, GUEST_UP_WITHIN);
    let console = read_file(&console_path);
    let value = |key: &str| {
        console_value(&console, key)
            .unwrap_or_else(|| panic!("VM {vm}: no {key}= line on the console:\n{console}"))
    };

    // The context ISO, found by its label; what its init.sh and context.sh gave the guest.
    assert!(
        value("STRATUSD-CONTEXT-DISK").starts_with("/dev/sr"),
        "VM {vm}: the context disk is the CD-ROM:\n{console}"
    );
    assert_eq!(value("STRATUSD-CONTEXT-PUBLIC_KEY"), KEY.trim_end());
    assert_eq!(value("STRATUSD-AUTHORIZED-KEY"), KEY.trim_end());
    let nic = field(&running, "NIC").unwrap_or_else(|| panic!("no NIC in {running}"));
    let lease = field(&nic, "IP")
        .map(|ip| {
            ip.trim_start_matches("<![CDATA[")
                .trim_end_matches("]]>")
                .to_string()
        })
        .unwrap_or_else(|| panic!("no IP in the NIC: {running}"));
    if let Some(expected) = expected_ip {
        assert_eq!(lease, expected, "VM {vm}'s lease");
    }
    assert_eq!(
        value("STRATUSD-CONTEXT-IP_PUBLIC"),
        lease,
        "VM {vm}: IP_PUBLIC in context.sh is the lease"
    );
    // The root disk: the VM's overlay of the cached image, what the guest mounted.
    assert_eq!(
        value("STRATUSD-ROOT-MARKER"),
        expected_marker,
        "VM {vm}: the marker of its root disk"
    );
    Boot {
        vm,
        timing,
        guest_boot: up_at - running_at,
        console,
    }
}

/// Sends the ACPI shutdown and waits for DONE (epilog included); returns how long it took.
fn shut_down(client: &mut Client, vm: i32) -> Duration {
    let at = Instant::now();
    let answer = client.call("one.vm.action", &[s(ADMIN), s("shutdown"), i(vm)]);
    assert!(answer.contains("<boolean>1</boolean>"), "{answer}");
    wait_done(client, vm);
    at.elapsed()
}

/// The QEMU process running `vm` has the VM's own disk.0 on its command line.
fn assert_qemu_uses_the_overlay(embed_root: &Path, dir: &Path, vm: i32) {
    let overlay = dir.join(format!("{vm}/images/disk.0"));
    let overlay = overlay.to_string_lossy();
    let found = qemu_processes_under(embed_root).into_iter().any(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        String::from_utf8_lossy(&cmdline).contains(overlay.as_ref())
    });
    assert!(found, "no QEMU process opened {overlay}");
}

fn sha1_of(path: &Path) -> String {
    sha1_hex(&std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

#[test]
fn marketplace_images_boot_cached_and_saved_in_real_guests() {
    check_prerequisites(&["root.img", "root.marker"]);
    let image = std::fs::read(guest_dir().join("root.img")).expect("root.img");
    let marker = read_file(&guest_dir().join("root.marker"))
        .trim()
        .to_string();
    assert!(!marker.is_empty(), "root.marker is empty: {SETUP_HINT}");

    // The Marketplace: the image gzipped, its manifest with the uncompressed size and SHA-1,
    // under the id the Marketplace derives from that SHA-1.
    let mp = Marketplace::start();
    let sha1 = sha1_hex(&image);
    let id = stratusd::storage::identifier::from_sha1(&sha1).expect("a Marketplace id");
    mp.add_image(&id, &image, true, image.len() as u64, &sha1);

    let dir = temp_dir("qemu-storage");
    let bridge = TestBridge::create();
    let (embed_root, uri) = embed_root(&dir);
    let _reaper = QemuReaper {
        root: embed_root.clone(),
    };
    let mut daemon = Daemon::start_in(
        dir.clone(),
        &[
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
    add_qemu_host(&mut client, "qemu-storage-host", "tm_stratuslab", &uri);
    let _network = ok_int(&client.call(
        "one.vn.allocate",
        &[
            s(ADMIN),
            s(&format!(
                "NAME = \"{NETWORK}\"\nTYPE = RANGED\nBRIDGE = \"{}\"\n\
                 NETWORK_ADDRESS = 192.168.77.0\nNETWORK_SIZE = C\n",
                bridge.name
            )),
        ],
    ));

    // --- 1. from the Marketplace: downloaded once, cached, an overlay as root disk -------------
    let vm1 = boot(
        &mut client,
        &dir,
        &vm_template("mp-first", &mp.source(&id), false, "", ""),
        &marker,
        Some("192.168.77.1"),
    );
    assert_eq!(
        mp.count(&format!("/metadata/{id}")),
        1,
        "one manifest fetch"
    );
    assert_eq!(mp.count("/images/"), 1, "one image download");
    let cached = dir.join("cache/images").join(&id);
    assert_eq!(sha1_of(&cached), sha1, "the cache holds the verified image");
    let overlay = qemu_img_info(&dir.join(format!("{}/images/disk.0", vm1.vm)));
    assert_eq!(overlay["format"], "qcow2", "{overlay}");
    assert_eq!(
        overlay["backing-filename"],
        cached.to_string_lossy().as_ref(),
        "{overlay}"
    );
    assert_eq!(overlay["backing-filename-format"], "raw", "{overlay}");
    assert_qemu_uses_the_overlay(&embed_root, &dir, vm1.vm);
    let shutdown1 = shut_down(&mut client, vm1.vm);

    // --- 2. the same image again: a cache hit -------------------------------------------------
    let vm2 = boot(
        &mut client,
        &dir,
        &vm_template("mp-cached", &mp.source(&id), false, "", ""),
        &marker,
        None,
    );
    assert_eq!(
        mp.count(&format!("/metadata/{id}")),
        1,
        "no manifest fetch on a cache hit"
    );
    assert_eq!(
        mp.count("/images/"),
        1,
        "the image was not downloaded again"
    );
    assert_qemu_uses_the_overlay(&embed_root, &dir, vm2.vm);
    let shutdown2 = shut_down(&mut client, vm2.vm);

    // --- 3. SAVE=yes: the guest changes its root disk, the shutdown saves it -------------------
    let new_marker = format!(
        "STRATUSD-SAVED-{}",
        SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let create = format!(
        "CREATE_IMAGE = [\nCREATOR_EMAIL = \"jane@example.org\",\nCREATOR_NAME = \"Jane Tester\",\n\
         NEWIMAGE_TITLE = \"saved by qemu_storage\",\nNEWIMAGE_COMMENT = \"a real guest wrote it\",\n\
         NEWIMAGE_VERSION = \"1.1\",\nNEWIMAGE_MARKETPLACE = \"{}\"\n]\n",
        mp.url()
    );
    let vm3 = boot(
        &mut client,
        &dir,
        &vm_template(
            "mp-save",
            &mp.source(&id),
            true,
            &format!(" stratusd.marker={new_marker}"),
            &create,
        ),
        &marker,
        None,
    );
    assert_eq!(
        console_value(&vm3.console, "STRATUSD-ROOT-MARKER-WRITTEN").as_deref(),
        Some(new_marker.as_str()),
        "the guest wrote its new marker:\n{}",
        vm3.console
    );
    let save_shutdown = shut_down(&mut client, vm3.vm);
    let vm_log = read_file(&dir.join(format!("{}.log", vm3.vm)));
    let line = vm_log
        .lines()
        .find(|l| l.contains("[TM][I]: MARKETPLACE_AND_IMAGEID"))
        .unwrap_or_else(|| {
            panic!(
                "no MARKETPLACE_AND_IMAGEID in VM {}'s log:\n{vm_log}",
                vm3.vm
            )
        });
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let new_id = tokens[tokens.len() - 1].to_string();
    assert_eq!(tokens[tokens.len() - 2], mp.url(), "{line}");
    assert_ne!(new_id, id, "the saved disk differs from the origin");
    // The new image: in the cache under the id of its SHA-1, PRIVATE to its owner; its
    // manifest uploaded to the Marketplace; the origin untouched.
    let saved = dir.join("cache/images").join(&new_id);
    let saved_sha1 = sha1_of(&saved);
    assert_eq!(
        stratusd::storage::identifier::from_sha1(&saved_sha1).as_deref(),
        Some(new_id.as_str())
    );
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("cache/images/{new_id}.json"))).expect("saved image json"),
    )
    .expect("saved image description");
    assert_eq!(meta["owner"], "oneadmin", "{meta}");
    assert_eq!(meta["visibility"], "PRIVATE", "{meta}");
    assert_eq!(sha1_of(&cached), sha1, "the cached origin never changes");
    let uploads = mp.uploads();
    assert_eq!(uploads.len(), 1, "one manifest uploaded");
    let manifest = stratusd::storage::marketplace::parse_manifest(&uploads[0]).expect("manifest");
    assert_eq!(manifest.entries[0].identifier, new_id);
    assert_eq!(manifest.entries[0].sha1, saved_sha1);
    assert_eq!(manifest.entries[0].bytes, image.len().to_string());
    // The Marketplace now serves it, as the real one does after the upload.
    mp.add_manifest(&new_id, uploads[0].clone());

    // --- 4. a VM from the saved image, by its Marketplace id ------------------------------------
    let vm4 = boot(
        &mut client,
        &dir,
        &vm_template("mp-from-saved", &mp.source(&new_id), false, "", ""),
        &new_marker,
        None,
    );
    assert_eq!(
        mp.count(&format!("/metadata/{new_id}")),
        0,
        "the saved image is a cache hit"
    );
    assert_eq!(mp.count("/images/"), 1);
    let overlay4 = qemu_img_info(&dir.join(format!("{}/images/disk.0", vm4.vm)));
    assert_eq!(
        overlay4["backing-filename"],
        saved.to_string_lossy().as_ref(),
        "{overlay4}"
    );
    let shutdown4 = shut_down(&mut client, vm4.vm);

    // --- timings -----------------------------------------------------------------------------
    let log = plain_log(&dir);
    for (which, b) in [
        ("VM 1 (download)", &vm1),
        ("VM 2 (cached)", &vm2),
        ("VM 3 (SAVE=yes)", &vm3),
        ("VM 4 (saved image)", &vm4),
    ] {
        b.timing.report(which, &log, b.vm);
        eprintln!(
            "qemu_storage: {which}: guest boot, RUNNING -> {GUEST_UP}: {:?}",
            b.guest_boot
        );
    }
    eprintln!(
        "qemu_storage: shutdown -> DONE (ACPI, epilog, quarantine): VM 1 {shutdown1:?}, VM 2 \
         {shutdown2:?}, VM 4 {shutdown4:?}; VM 3 with the save {save_shutdown:?}"
    );
    let save_started = logged_at(&log, "as a new image: writing out its content");
    let save_ended = logged_at(&log, "MARKETPLACE_AND_IMAGEID");
    if let (Some(started), Some(ended)) = (save_started, save_ended) {
        eprintln!(
            "qemu_storage: save of the {} MiB disk (flatten, SHA-1, cache, upload): {:?}",
            image.len() >> 20,
            ended.duration_since(started).unwrap_or_default()
        );
    }
    let vm1_log = read_file(&dir.join(format!("{}.log", vm1.vm)));
    for line in vm1_log.lines().filter(|l| l.contains("[TM]")) {
        eprintln!("qemu_storage: VM 1 log: {line}");
    }

    assert_eq!(daemon.stop(), Some(0), "SIGTERM exits cleanly");
    assert!(qemu_processes_under(&embed_root).is_empty());
    drop(bridge);
    let _ = std::fs::remove_dir_all(&dir);
}
