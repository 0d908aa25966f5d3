//! The persistent disk service's own inputs, sent by a hostile but ordinary user (the rows of
//! `docs/security.md`'s pdisk table that `api.rs` and `vms.rs` do not already probe): upload
//! bodies above the limit and gzip bombs, mount requests whose `node`, `vm_id` or mount id are
//! not what the client sends, and `register_only` mounts on someone else's VM. Each is refused
//! or ignored with nothing changed, and nothing outside the service's directories appears.

use super::*;

/// The upload limit of this site (the config file's `[volumes] upload_max_bytes`): an upload
/// may expand to 64 times as much.
const UPLOAD_MAX: u64 = 64 * 1024;
/// GiB of volumes each user may hold here (`[volumes] user_quota_gib`).
const QUOTA: u64 = 4;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut e, data).unwrap();
    e.finish().unwrap()
}

fn multipart(data: &[u8]) -> (String, Vec<u8>) {
    let boundary = "===============7330845974216740156==";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"Image File\"; \
         filename=\"image.img.gz\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Every file under `dir`, recursively (what the service may have left).
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn hostile_inputs_of_an_ordinary_user_are_refused() {
    let dir = temp_dir("volumes-hostile");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("stratusd.toml");
    std::fs::write(
        &config,
        format!("[volumes]\nupload_max_bytes = {UPLOAD_MAX}\nuser_quota_gib = {QUOTA}\n"),
    )
    .unwrap();
    let mut site = Site::start_in(dir, &["--config", config.to_str().unwrap()]);
    site.simulated_host("sim-hostile");
    let alice = site.alice();
    let bob = site.bob();
    let marker = std::env::temp_dir().join(format!("stratusd-hostile-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);

    // --- uploads -------------------------------------------------------------------------------
    // Within both limits: accepted.
    let small = gzip(&vec![7u8; 1 << 20]);
    let (ct, body) = multipart(&small);
    assert_eq!(bob.send("POST", "/disks/", &ct, &body).status, 303);
    let before = site.snapshot();
    // Above the limit: refused as it streams, 413.
    let big: Vec<u8> = (0..2 * UPLOAD_MAX as u32)
        .map(|n| (n.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let (ct, body) = multipart(&big);
    let r = bob.send("POST", "/disks/", &ct, &body);
    assert_eq!(r.status, 413, "{}", r.body);
    // A gzip bomb: 32 MiB of zeros in about 32 KiB, within the upload limit, expands past 64
    // times it (4 MiB): refused without decompressing the rest.
    let bomb = gzip(&vec![0u8; 32 << 20]);
    assert!((bomb.len() as u64) < UPLOAD_MAX, "{}", bomb.len());
    let (ct, body) = multipart(&bomb);
    bob.send("POST", "/disks/", &ct, &body).assert_error(
        400,
        &format!(
            "the uploaded image expands to more than {} bytes",
            64 * UPLOAD_MAX
        ),
    );
    assert_eq!(site.snapshot(), before, "refused uploads made nothing");
    assert_eq!(
        files_under(&site.dir().join("volumes/.staging")),
        Vec::<String>::new(),
        "nothing staged is left"
    );

    // --- mounts -------------------------------------------------------------------------------
    let vol = alice.create("1", "hostile mounts");
    let (vm, doc) = site.run_vm("alice", &template_with_volumes("h", &[]));
    assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
    let (bobs_vm, doc) = site.run_vm("bob", &template_with_volumes("b", &[]));
    assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
    let before = site.snapshot();
    // vm_id that is not a VM id.
    for vm_id in ["abc", "-1", "99999999999", "1 OR 1=1", "0x10"] {
        alice
            .post_form(
                &format!("/disks/{vol}/mounts/"),
                &[("node", "sim-hostile"), ("vm_id", vm_id)],
            )
            .assert_error(404, &format!("VM {vm_id} does not exist"));
    }
    // register_only (the node script's bookkeeping) on someone else's VM.
    alice
        .post_form(
            &format!("/disks/{vol}/mounts/"),
            &[
                ("node", "sim-hostile"),
                ("vm_id", &bobs_vm.to_string()),
                ("register_only", "true"),
            ],
        )
        .assert_error(
            403,
            &format!("Not enough rights to attach disk to VM {bobs_vm}"),
        );
    // Mount ids that are not `<uuid>_<vm>` of a mount.
    let other = "00000000-1111-4222-8333-444444444444";
    for id in [
        format!("{vol}_abc"),
        format!("{vol}_{bobs_vm}"),
        format!("{other}_{vm}"),
        "x%2F..%2F..%2Fetc".to_string(),
    ] {
        let r = alice.delete(&format!("/disks/{vol}/mounts/{id}"));
        assert_eq!(r.status, 404, "{id}: {}", r.body);
    }
    assert_eq!(site.snapshot(), before, "the refusals changed nothing");

    // A node that is not the VM's host (a path, a command): only ever data. The VM's own host
    // is used, and the link to the volume is made in the VM's directory.
    let node = format!("../../tmp; touch {}", marker.display());
    let r = alice.post_form(
        &format!("/disks/{vol}/mounts/"),
        &[("node", &node), ("vm_id", &vm.to_string())],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json["node"],
        node.as_str(),
        "echoed as data, as pdisk did"
    );
    let link = site.dir().join(format!("{vm}/images/{vol}"));
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        site.dir().join("volumes").join(&vol)
    );
    assert!(!marker.exists(), "nothing ran");
    // Two clients attach the same volume at once (to alice's VM): one mount in the end.
    let detach = alice.delete(&format!("/disks/{vol}/mounts/{vol}_{vm}"));
    assert_eq!(detach.status, 200, "{}", detach.body);
    let answers: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    site.alice()
                        .post_form(
                            &format!("/disks/{vol}/mounts/"),
                            &[("node", "sim-hostile"), ("vm_id", &vm.to_string())],
                        )
                        .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.contains(&200), "{answers:?}");
    assert!(
        answers.iter().all(|s| *s == 200 || *s == 403 || *s == 409),
        "{answers:?}"
    );
    let mounts = alice.get(&format!("/disks/{vol}/mounts/"));
    assert_eq!(
        mounts.json.as_array().map(Vec::len),
        Some(1),
        "{}",
        mounts.body
    );
    assert!(!marker.exists());
    site.vm_action("finalize", vm);
    site.vm_action("finalize", bobs_vm);

    // --- the per-user quota: alice holds 1 GiB ------------------------------------------------
    let two = alice.create("2", "within the quota");
    let before = site.snapshot();
    alice
        .post_form("/disks/", &[("size", "2"), ("tag", "past the quota")])
        .assert_error(
            403,
            &format!("volume quota exceeded: alice has 3 GiB of volumes, 2 GiB more would pass the limit of {QUOTA} GiB"),
        );
    assert_eq!(site.snapshot(), before, "the refusal made nothing");
    // Others and the super-user are not charged for it.
    bob.create("3", "bob's own quota");
    site.superuser().create("10", "the site's");
    // A volume deleted (into the quarantine) no longer counts.
    assert_eq!(alice.delete(&format!("/disks/{two}/")).status, 200);
    alice.create("3", "after the delete");
}
