//! Native StratusLab storage through a real daemon on simulated hosts (libvirt test driver)
//! registered with `tm_stratuslab` (and `tm_ssh`), against a test Marketplace on loopback.

mod common;
use common::marketplace::{image_bytes, sha1_hex, Marketplace};
use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const KEY: &str = "ssh-rsa AAAAB3NzaC1yc2E...PUBLICKEY... root@vm\n";

fn ok_id(answer: &str) -> i32 {
    assert!(answer.contains("<boolean>1</boolean>"), "{answer}");
    field(answer, "i4")
        .or_else(|| field(answer, "int"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no id in {answer}"))
}

fn vm_doc(c: &mut Client, vid: i32) -> String {
    unescape(&c.call("one.vm.info", &[s(ADMIN), i(vid)]))
}

fn states(doc: &str) -> (i32, i32) {
    let st = field(doc, "STATE")
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    let lcm = field(doc, "LCM_STATE")
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    (st, lcm)
}

fn cdata(v: &str) -> String {
    v.trim_start_matches("<![CDATA[")
        .trim_end_matches("]]>")
        .to_string()
}

/// Waits until the VM is RUNNING (3/3) or FAILED (7); returns its document.
fn wait_settled(c: &mut Client, vid: i32) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let doc = vm_doc(c, vid);
        match states(&doc) {
            (3, 3) | (7, _) | (6, _) => return doc,
            _ => {}
        }
        assert!(Instant::now() < deadline, "VM {vid} never settled: {doc}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_state(c: &mut Client, vid: i32, state: i32) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let doc = vm_doc(c, vid);
        if states(&doc).0 == state {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "VM {vid} never reached {state}: {doc}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn error_message(doc: &str) -> String {
    let err = field(doc, "ERROR").unwrap_or_default();
    cdata(&field(&err, "MESSAGE").unwrap_or_default())
}

fn add_host(c: &mut Client, name: &str, tm: &str) -> i32 {
    let id = ok_id(&c.call(
        "one.host.allocate",
        &[
            s(ADMIN),
            s(name),
            s("im_dummy"),
            s("vmm_dummy"),
            s("dummy"),
            s(tm),
        ],
    ));
    // Monitored before anything is placed there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let doc = unescape(&c.call("one.host.info", &[s(ADMIN), i(id)]));
        if field(&doc, "STATE").as_deref() == Some("2") {
            return id;
        }
        assert!(
            Instant::now() < deadline,
            "host {name} not monitored: {doc}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn vm_template(host: &str, source: &str, extra: &str) -> String {
    format!(
        "NAME = \"t\"\nCPU = 0.1\nMEMORY = 64\n\
         DISK = [ source = \"{source}\", target = \"vda\", save = no, readonly = \"no\", driver = \"raw\" ]\n\
         DISK = [ type = swap, size = 16, target = \"vdb\", readonly = \"no\" ]\n\
         CONTEXT = [ public_key = \"{KEY}\", target = \"hdd\" ]\n\
         REQUIREMENTS = \"HOSTNAME = \\\"{host}\\\"\"\n{extra}"
    )
}

fn allocate(c: &mut Client, session: &str, template: &str) -> i32 {
    ok_id(&c.call("one.vm.allocate", &[s(session), s(template)]))
}

fn qemu_img_info(path: &Path) -> serde_json::Value {
    let out = std::process::Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(path)
        .output()
        .expect("qemu-img runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn vm_log(d: &Daemon, vid: i32) -> String {
    read_file(&d.dir.join(format!("{vid}.log")))
}

/// The VM's log once it holds every one of `needles` (the log lines are written after the
/// commit that decides them, by the outbox's writer), or as it is after 30 s.
fn vm_log_with(d: &Daemon, vid: i32, needles: &[&str]) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let log = vm_log(d, vid);
        if needles.iter().all(|n| log.contains(n)) || std::time::Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

const ID_A: &str = "BN1EEkPiBx87_uLj2-sdybSI-Xb";
const ID_B: &str = "MMZu9WvwKIro-rtBQfDk4PsKO7_";

#[test]
fn marketplace_image_runs_on_a_cached_overlay_with_a_context_iso() {
    let mp = Marketplace::start();
    let a = image_bytes(3 * 1024 * 1024 + 7 * 512, 1);
    mp.add_image(ID_A, &a, true, a.len() as u64, &sha1_hex(&a));
    let b = image_bytes(2 * 1024 * 1024, 2);
    mp.add_image(ID_B, &b, false, b.len() as u64, &sha1_hex(&b));
    let d = Daemon::start("storage-run", &[]);
    let mut c = d.client();
    add_host(&mut c, "stratus1", "tm_stratuslab");

    let v0 = allocate(
        &mut c,
        ADMIN,
        &vm_template("stratus1", &mp.source(ID_A), ""),
    );
    let doc = wait_settled(&mut c, v0);
    assert_eq!(states(&doc), (3, 3), "{}", error_message(&doc));

    // The root disk is a qcow2 overlay of the verified, cached image.
    let cached = d.dir.join("cache/images").join(ID_A);
    assert_eq!(std::fs::read(&cached).unwrap(), a);
    let disk0 = d.dir.join(format!("{v0}/images/disk.0"));
    let info = qemu_img_info(&disk0);
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["backing-filename"], cached.to_string_lossy().as_ref());
    assert_eq!(info["backing-filename-format"], "raw");
    assert_eq!(info["virtual-size"], a.len() as u64);
    // Swap disk with its signature; the context ISO with context.sh exactly as oned wrote it.
    let swap = std::fs::read(d.dir.join(format!("{v0}/images/disk.1"))).unwrap();
    assert_eq!(swap.len(), 16 * 1024 * 1024);
    assert_eq!(&swap[4086..4096], b"SWAPSPACE2");
    let iso = std::fs::read(d.dir.join(format!("{v0}/images/disk.2"))).unwrap();
    let iso = stratusd::storage::iso9660::read(&iso).unwrap();
    assert_eq!(iso.volume_id, "_STRATUSLAB");
    let expected = format!(
        "# Context variables generated by OpenNebula\nPUBLIC_KEY=\"{KEY}\"\nTARGET=\"hdd\"\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&iso.file("context.sh").unwrap().data),
        expected
    );
    for script in ["init.sh", "epilog.sh", "prolog.sh"] {
        assert!(iso.file(script).is_some(), "{script} on the ISO");
    }
    // An independent reader (genisoimage's isoinfo, installed by scripts/setup.sh --test)
    // sees the same Rock Ridge file.
    let iso_path = d.dir.join(format!("{v0}/images/disk.2"));
    if let Ok(out) = std::process::Command::new("isoinfo")
        .args(["-R", "-x", "/context.sh", "-i"])
        .arg(&iso_path)
        .output()
    {
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    }
    assert_eq!(read_file(&d.dir.join(format!("{v0}/context.sh"))), expected);
    assert_eq!(mp.count(&format!("/images/{ID_A}")), 1);
    assert_eq!(mp.count(&format!("/metadata/{ID_A}")), 1);

    // A second VM of the same image: no download, a new overlay on the same cached file.
    let v1 = allocate(
        &mut c,
        ADMIN,
        &vm_template("stratus1", &mp.source(ID_A), ""),
    );
    assert_eq!(states(&wait_settled(&mut c, v1)), (3, 3));
    assert_eq!(mp.count(&format!("/images/{ID_A}")), 1);
    assert_eq!(mp.count(&format!("/metadata/{ID_A}")), 1);
    let info = qemu_img_info(&d.dir.join(format!("{v1}/images/disk.0")));
    assert_eq!(info["backing-filename"], cached.to_string_lossy().as_ref());

    // Two VMs of a new image at once share one download.
    let v2 = allocate(
        &mut c,
        ADMIN,
        &vm_template("stratus1", &mp.source(ID_B), ""),
    );
    let v3 = allocate(
        &mut c,
        ADMIN,
        &vm_template("stratus1", &mp.source(ID_B), ""),
    );
    assert_eq!(states(&wait_settled(&mut c, v2)), (3, 3));
    assert_eq!(states(&wait_settled(&mut c, v3)), (3, 3));
    assert_eq!(mp.count(&format!("/images/{ID_B}")), 1);
    assert_eq!(
        dir_entries(&d.dir.join("cache/partial")),
        Vec::<String>::new()
    );

    // cloud-init: a VFAT config drive labelled _CLOUD_INIT with meta.js and the keys.
    let keys = "c3NoLXJzYSBrZXkK"; // base64 of "ssh-rsa key\n"
    let user_data = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(common::marketplace::gzip(b"#!/bin/sh\necho hi\n"))
    };
    let t = vm_template("stratus1", &mp.source(ID_A), "").replace(
        "target = \"hdd\" ]",
        &format!("CONTEXT_METHOD = \"cloud-init\", CLOUD_INIT_USER_DATA = \"{user_data}\", CLOUD_INIT_AUTHORIZED_KEYS = \"{keys}\", target = \"hdd\" ]"),
    );
    let v4 = allocate(&mut c, ADMIN, &t);
    assert_eq!(states(&wait_settled(&mut c, v4)), (3, 3));
    let vfat = std::fs::read(d.dir.join(format!("{v4}/images/disk.2"))).unwrap();
    assert_eq!(vfat.len(), 1_024_000);
    use stratusd::storage::cloud_init;
    assert_eq!(
        cloud_init::read_file(&vfat, "meta.js").unwrap(),
        b"{\"dsmode\": \"local\", \"user-data\": \"#!/bin/sh\\necho hi\\n\"}"
    );
    assert_eq!(
        cloud_init::read_file(&vfat, "root/.ssh/authorized_keys").unwrap(),
        b"ssh-rsa key\n"
    );
    if let Ok(out) = std::process::Command::new("blkid")
        .args(["-p", "-s", "LABEL", "-o", "value"])
        .arg(d.dir.join(format!("{v4}/images/disk.2")))
        .output()
    {
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "_CLOUD_INIT");
        }
    }

    // The VM logs show the life cycle and the transfer work.
    let log = vm_log_with(
        &d,
        v0,
        &[
            "[DiM][I]: New VM state is ACTIVE (",
            "[TM][I]: Downloaded and verified",
            "[LCM][I]: New VM state is RUNNING",
        ],
    );
    assert!(log.contains("[DiM][I]: New VM state is ACTIVE ("), "{log}");
    assert!(log.contains("[TM][I]: Downloaded and verified"), "{log}");
    assert!(log.contains("[LCM][I]: New VM state is RUNNING"), "{log}");
    let found = format!("Image {ID_A} found in the cache");
    let log1 = vm_log_with(&d, v1, &[&found]);
    assert!(log1.contains(&found), "{log1}");
}

#[test]
fn bad_images_fail_the_vm_as_stratuslab_reported_it() {
    let mp = Marketplace::start();
    let good = image_bytes(1024 * 1024, 3);
    mp.add_image(ID_A, &good, true, good.len() as u64, &sha1_hex(&good));
    let wrong_sum = "CsumCsumCsumCsumCsumCsumCsu";
    mp.add_image(
        wrong_sum,
        &good,
        true,
        good.len() as u64,
        &sha1_hex(b"other"),
    );
    let wrong_size = "SizeSizeSizeSizeSizeSizeSiz";
    mp.add_image(
        wrong_size,
        &good,
        false,
        good.len() as u64 + 1,
        &sha1_hex(&good),
    );
    let refused = "PolicyPolicyPolicyPolicyPol";
    mp.add_image(refused, &good, false, good.len() as u64, &sha1_hex(&good));
    let closed = format!("http://127.0.0.1:{}", free_port());
    let d = Daemon::start("storage-bad", &["--policy-blacklist-image", refused]);
    let mut c = d.client();
    add_host(&mut c, "stratus1", "tm_stratuslab");
    add_host(&mut c, "plain1", "tm_ssh");

    // A good VM first; it must stay RUNNING through the others' failures.
    let good_vm = allocate(
        &mut c,
        ADMIN,
        &vm_template("stratus1", &mp.source(ID_A), ""),
    );
    assert_eq!(states(&wait_settled(&mut c, good_vm)), (3, 3));

    let prefix = "Error excuting image transfer script: tm_clone_cache.py: ";
    let sum_found = stratusd::storage::identifier::sha1_decimal(&sha1_hex(&good));
    let sum_expected = stratusd::storage::identifier::sha1_decimal(&sha1_hex(b"other"));
    let cases: Vec<(String, String)> = vec![
        (
            mp.source(wrong_sum),
            format!("{prefix}checksum mismatch: {sum_found} (found) != {sum_expected} (expected)"),
        ),
        (
            mp.source(wrong_size),
            format!(
                "{prefix}size mismatch: {} (found) != {} (expected)",
                good.len(),
                good.len() + 1
            ),
        ),
        (
            mp.source(refused),
            format!("{prefix}Policy validation failed"),
        ),
        (
            mp.source("Xmissing0000000000000000000"),
            format!(
                "{prefix}Failed to find metadata entry: {}",
                mp.source("Xmissing0000000000000000000")
            ),
        ),
        (
            format!("{closed}/metadata/{ID_B}"),
            format!("{prefix}Failed to find metadata entry: {closed}/metadata/{ID_B} ("),
        ),
    ];
    let vids: Vec<i32> = cases
        .iter()
        .map(|(src, _)| allocate(&mut c, ADMIN, &vm_template("stratus1", src, "")))
        .collect();
    for ((_, want), vid) in cases.iter().zip(&vids) {
        let doc = wait_state(&mut c, *vid, 7);
        let msg = error_message(&doc);
        assert!(
            msg.starts_with(want.as_str()),
            "VM {vid}: {msg}\nwanted {want}"
        );
        let line = format!("[TM][E]: {msg}");
        let log = vm_log_with(&d, *vid, &[&line]);
        assert!(log.contains(&line), "{log}");
    }
    // Nothing half-written in the cache; the good VM is undisturbed.
    let cached = dir_entries(&d.dir.join("cache/images"));
    assert_eq!(cached, vec![ID_A.to_string(), format!("{ID_A}.json")]);
    assert_eq!(
        dir_entries(&d.dir.join("cache/partial")),
        Vec::<String>::new()
    );
    assert_eq!(states(&vm_doc(&mut c, good_vm)), (3, 3));
    let blacklisted = format!("image identifier {refused} is blacklisted, rejecting entry");
    let log = vm_log_with(&d, vids[2], &[&blacklisted]);
    assert!(log.contains(&blacklisted), "{log}");

    // A user can never make a disk of a host path, on either driver; nothing is copied.
    for host in ["stratus1", "plain1"] {
        let t = format!(
            "NAME = x\nCPU = 0.1\nMEMORY = 64\nDISK = [ SOURCE = \"/etc/shadow\", TARGET = \"vda\" ]\n\
             REQUIREMENTS = \"HOSTNAME = \\\"{host}\\\"\"\n"
        );
        let vid = allocate(&mut c, "alice:pw", &t);
        let doc = wait_state(&mut c, vid, 7);
        let msg = error_message(&doc);
        let program = if host == "plain1" {
            "tm_clone.sh"
        } else {
            "tm_clone_cache.py"
        };
        assert_eq!(
            msg,
            format!("Error excuting image transfer script: {program}: User alice is not authorized to use /etc/shadow as a disk: only registered images, Marketplace images and persistent disks can be used")
        );
        assert!(!d.dir.join(format!("{vid}/images/disk.0")).exists());
    }
}

#[test]
fn saved_disk_becomes_a_new_private_image_and_the_vm_dir_is_quarantined() {
    let mp = Marketplace::start();
    let origin = image_bytes(1024 * 1024, 4);
    mp.add_image(ID_A, &origin, true, origin.len() as u64, &sha1_hex(&origin));
    let d = Daemon::start(
        "storage-save",
        &[
            "--quarantine-period",
            "3",
            "--volume-quarantine-period",
            "1",
        ],
    );
    let mut c = d.client();
    add_host(&mut c, "stratus1", "tm_stratuslab");
    let create = format!(
        "CREATE_IMAGE = [\nNEWIMAGE_VERSION = \"1.1\",\nCREATOR_NAME = \"Jane Tester\",\n\
         CREATOR_EMAIL = \"jane@example.org\",\nNEWIMAGE_MARKETPLACE = \"{}\",\n\
         NEWIMAGE_TITLE = \"my new image\",\nNEWIMAGE_COMMENT = \"a comment\"\n]\n",
        mp.url()
    );
    let t = vm_template("stratus1", &mp.source(ID_A), &create).replace("save = no", "save = yes");
    let vid = allocate(&mut c, "alice:pw", &t);
    assert_eq!(states(&wait_settled(&mut c, vid)), (3, 3));

    // The "guest" writes to its disk: the overlay changes, the cached origin does not.
    let disk0 = d.dir.join(format!("{vid}/images/disk.0"));
    let out = std::process::Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", "write -P 0x5a 4096 8192"])
        .arg(&disk0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected = origin.clone();
    expected[4096..4096 + 8192].fill(0x5a);
    let sha1 = sha1_hex(&expected);
    let new_id = stratusd::storage::identifier::from_sha1(&sha1).unwrap();

    assert!(c
        .call("one.vm.action", &[s("alice:pw"), s("shutdown"), i(vid)])
        .contains("<boolean>1</boolean>"));
    let doc = wait_state(&mut c, vid, 6);
    assert_eq!(states(&doc).0, 6, "{}", error_message(&doc));

    // The new image: in the cache with the right SHA-1, PRIVATE to alice, manifest uploaded.
    let saved = d.dir.join("cache/images").join(&new_id);
    assert_eq!(sha1_hex(&std::fs::read(&saved).unwrap()), sha1);
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.dir.join(format!("cache/images/{new_id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["owner"], "alice");
    assert_eq!(meta["visibility"], "PRIVATE");
    assert_eq!(
        sha1_hex(&std::fs::read(d.dir.join("cache/images").join(ID_A)).unwrap()),
        sha1_hex(&origin)
    );
    let uploads = mp.uploads();
    assert_eq!(uploads.len(), 1);
    let m = stratusd::storage::marketplace::parse_manifest(&uploads[0]).unwrap();
    let e = &m.entries[0];
    assert_eq!(e.identifier, new_id);
    assert_eq!(e.sha1, sha1);
    assert_eq!(e.version, "1.1");
    assert_eq!(e.title, "my new image");
    assert_eq!(e.description, "a comment");
    assert_eq!(e.creator, "Jane Tester");
    assert_eq!(e.os, "ttylinux");
    // The line the live test reads: last token the id, the one before it the Marketplace.
    let log = vm_log_with(&d, vid, &["MARKETPLACE_AND_IMAGEID"]);
    let line = log
        .lines()
        .find(|l| l.contains("MARKETPLACE_AND_IMAGEID"))
        .unwrap_or_else(|| panic!("no MARKETPLACE_AND_IMAGEID in {log}"));
    let tokens: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(tokens[tokens.len() - 1], new_id);
    assert_eq!(tokens[tokens.len() - 2], mp.url());
    assert!(line.contains("[TM][I]: MARKETPLACE_AND_IMAGEID"), "{line}");

    // Alice may start her image again (from the cache); bob may not.
    mp.add_manifest(&new_id, uploads[0].clone());
    let again = allocate(
        &mut c,
        "alice:pw",
        &vm_template("stratus1", &mp.source(&new_id), ""),
    );
    assert_eq!(states(&wait_settled(&mut c, again)), (3, 3));
    let bob = allocate(
        &mut c,
        "bob:pw",
        &vm_template("stratus1", &mp.source(&new_id), ""),
    );
    let doc = wait_state(&mut c, bob, 7);
    assert_eq!(
        error_message(&doc),
        format!("Error excuting image transfer script: tm_clone_cache.py: User bob is not authorized to start image {new_id}")
    );

    // Quarantine: the VM directory moved at DONE; its snapshot goes after 1 s, all after 3 s.
    let home = d.dir.join(vid.to_string());
    let q = d.dir.join("quarantine").join(vid.to_string());
    assert!(!home.join("images").exists());
    assert!(q.join("context.sh").exists(), "{:?}", dir_entries(&d.dir));
    let list = std::process::Command::new(env!("CARGO_BIN_EXE_stratusd"))
        .args(["quarantine", "list", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        listing.lines().any(|l| l.starts_with(&format!("{vid}\t"))),
        "{listing}"
    );
    wait_until(|| !q.join("images/disk.0").exists(), 15);
    assert!(q.join("context.sh").exists());
    wait_until(|| !q.exists(), 15);

    // finalize of a FAILED VM quarantines its directory too; purge --all empties it.
    assert!(c
        .call("one.vm.action", &[s(ADMIN), s("finalize"), i(bob)])
        .contains("<boolean>1</boolean>"));
    let qb: PathBuf = d.dir.join("quarantine").join(bob.to_string());
    wait_until(|| qb.exists(), 15);
    let purge = std::process::Command::new(env!("CARGO_BIN_EXE_stratusd"))
        .args(["quarantine", "purge", "--all", "--data-dir"])
        .arg(&d.dir)
        .output()
        .unwrap();
    assert!(purge.status.success());
    assert!(!qb.exists());
}

#[test]
fn ssh_driver_copies_registered_images_and_savedisk_gets_the_disk() {
    let d = Daemon::start("storage-ssh", &[]);
    let mut c = d.client();
    add_host(&mut c, "plain1", "tm_ssh");
    let file = d.dir.join("upload.img");
    let data = image_bytes(512 * 1024, 5);
    std::fs::write(&file, &data).unwrap();
    let img = ok_id(&c.call(
        "one.image.allocate",
        &[
            s(ADMIN),
            s(&format!("NAME = base\nPATH = {}\n", file.display())),
        ],
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    while field(
        &unescape(&c.call("one.image.info", &[s(ADMIN), i(img)])),
        "STATE",
    )
    .as_deref()
        != Some("1")
    {
        assert!(Instant::now() < deadline, "image not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = format!(
        "NAME = r\nCPU = 0.1\nMEMORY = 64\nDISK = [ IMAGE_ID = {img} ]\n\
         REQUIREMENTS = \"HOSTNAME = \\\"plain1\\\"\"\n"
    );
    let vid = allocate(&mut c, ADMIN, &t);
    assert_eq!(states(&wait_settled(&mut c, vid)), (3, 3));
    let disk0 = d.dir.join(format!("{vid}/images/disk.0"));
    assert_eq!(std::fs::read(&disk0).unwrap(), data);
    assert!(!std::fs::symlink_metadata(&disk0)
        .unwrap()
        .file_type()
        .is_symlink());
    // savedisk + shutdown: the disk goes back to the front-end and becomes the new image.
    let saved = ok_id(&c.call(
        "one.vm.savedisk",
        &[s(ADMIN), i(vid), i(0), s("copy"), s("")],
    ));
    assert!(c
        .call("one.vm.action", &[s(ADMIN), s("shutdown"), i(vid)])
        .contains("<boolean>1</boolean>"));
    wait_state(&mut c, vid, 6);
    // The disk moves after the commit that made the VM DONE (an outbox effect): the image
    // stays LOCKED (4) until the move's outcome is committed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let doc = loop {
        let doc = unescape(&c.call("one.image.info", &[s(ADMIN), i(saved)]));
        if field(&doc, "STATE").as_deref() != Some("4") || Instant::now() > deadline {
            break doc;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(field(&doc, "STATE").as_deref(), Some("1"), "{doc}");
    let source = cdata(&field(&doc, "SOURCE").unwrap());
    assert_eq!(std::fs::read(&source).unwrap(), data);
    assert!(!disk0.exists());
}

fn wait_until(mut f: impl FnMut() -> bool, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "condition not reached in {secs} s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn persistent_disks_are_attached_checked_and_detached() {
    let mp = Marketplace::start();
    let origin = image_bytes(1024 * 1024, 6);
    mp.add_image(
        ID_A,
        &origin,
        false,
        origin.len() as u64,
        &sha1_hex(&origin),
    );
    let d = Daemon::start("storage-pdisk", &["--pdisk-endpoint", &mp.url()]);
    let (data, live) = (
        "48ac4190-9a11-4a06-8bef-03fd97080eba",
        "95b75092-2a22-4f59-9c3b-2c2b8a6e1c01",
    );
    for (uuid, kind, identifier) in [
        (data, "DATA_IMAGE_RAW_READ_WRITE", ""),
        (live, "MACHINE_IMAGE_LIVE", "snapshot:0f0e"),
    ] {
        let file = d.dir.join(format!("volume-{uuid}"));
        std::fs::write(&file, image_bytes(256 * 1024, 7)).unwrap();
        mp.add_volume(uuid, kind, "alice", identifier, &file);
    }
    let mut c = d.client();
    add_host(&mut c, "stratus1", "tm_stratuslab");
    let pdisk_source = |uuid: &str| format!("pdisk:{}/{uuid}", mp.url());

    // An extra persistent disk: linked to the volume, registered, counted; released at DONE.
    let extra = format!(
        "DISK = [ SOURCE = {}, TARGET = vdc, TYPE = block ]\n",
        pdisk_source(data)
    );
    let vid = allocate(
        &mut c,
        "alice:pw",
        &vm_template("stratus1", &mp.source(ID_A), &extra),
    );
    let doc = wait_settled(&mut c, vid);
    assert_eq!(states(&doc), (3, 3), "{}", error_message(&doc));
    let link = std::fs::read_link(d.dir.join(format!("{vid}/images/disk.2"))).unwrap();
    assert_eq!(link, d.dir.join(format!("volume-{data}")));
    assert_eq!(
        read_file(&d.dir.join(format!("{vid}/pdisk"))).trim(),
        pdisk_source(data)
    );
    assert_eq!(mp.mounts(data), vec![format!("{data}_{vid}")]);
    assert_eq!(mp.volume(data)["count"], "1");
    assert!(
        d.dir.join(format!("{vid}/images/disk.3")).exists(),
        "context disk"
    );
    c.call("one.vm.action", &[s("alice:pw"), s("shutdown"), i(vid)]);
    wait_state(&mut c, vid, 6);
    assert_eq!(mp.mounts(data), Vec::<String>::new());
    assert_eq!(
        mp.volume(data)["owner"],
        "alice",
        "data volumes stay the user's"
    );

    // Booting a live volume; a snapshot root goes to pdisk's quarantine at the end.
    let t = vm_template("stratus1", &pdisk_source(live), "");
    let boot = allocate(&mut c, "alice:pw", &t);
    assert_eq!(states(&wait_settled(&mut c, boot)), (3, 3));
    assert!(
        std::fs::symlink_metadata(d.dir.join(format!("{boot}/images/disk.0")))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    c.call("one.vm.action", &[s("alice:pw"), s("shutdown"), i(boot)]);
    wait_state(&mut c, boot, 6);
    let v = mp.volume(live);
    assert_eq!(v["owner"], "pdisk");
    assert_ne!(v["quarantine"], "");

    // pdisk's rules, and nobody else's private volume.
    let prefix = "Error excuting image transfer script: tm_clone_cache.py: ";
    let bad_boot = allocate(
        &mut c,
        "alice:pw",
        &vm_template("stratus1", &pdisk_source(data), ""),
    );
    assert_eq!(
        error_message(&wait_state(&mut c, bad_boot, 7)),
        format!("{prefix}Only a live persistent disk can be booted from.")
    );
    let theft = allocate(
        &mut c,
        "bob:pw",
        &vm_template("stratus1", &mp.source(ID_A), &extra),
    );
    assert_eq!(
        error_message(&wait_state(&mut c, theft, 7)),
        format!("{prefix}User bob is not authorized to use persistent disk {data}")
    );
    assert_eq!(mp.mounts(data), Vec::<String>::new());
}

#[test]
fn a_download_cut_by_kill_9_leaves_nothing_and_is_redone_after_restart() {
    let mp = Marketplace::start();
    let image = image_bytes(2 * 1024 * 1024, 8);
    mp.add_image(ID_A, &image, false, image.len() as u64, &sha1_hex(&image));
    mp.throttle(&format!("{ID_A}.img"), 1024 * 1024);
    let mut d = Daemon::start("storage-kill", &[]);
    let mut c = d.client();
    add_host(&mut c, "stratus1", "tm_stratuslab");
    let vid = allocate(
        &mut c,
        ADMIN,
        &vm_template("stratus1", &mp.source(ID_A), ""),
    );
    let partial = d.dir.join("cache/partial");
    wait_until(|| !dir_entries(&partial).is_empty(), 15);
    d.kill9();
    assert!(!d.dir.join("cache/images").join(ID_A).exists());
    let dir = d.dir.clone();
    let d = Daemon::start_in(dir, &[]);
    let mut c = d.client();
    let doc = wait_settled(&mut c, vid);
    assert_eq!(states(&doc), (3, 3), "{}", error_message(&doc));
    assert_eq!(
        std::fs::read(d.dir.join("cache/images").join(ID_A)).unwrap(),
        image
    );
    assert_eq!(
        dir_entries(&d.dir.join("cache/partial")),
        Vec::<String>::new()
    );
    assert_eq!(mp.count(&format!("/images/{ID_A}")), 2);
}
