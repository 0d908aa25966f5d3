//! Copy-on-write clones of a cached Marketplace image as volumes: a VM's start puts the image
//! in the image cache (downloaded from a test Marketplace on loopback); `POST /disks/<Marketplace
//! id>` then gives its caller a live volume (a qcow2 overlay of the cached file) whose origin
//! is the cached image's origin volume, which nobody can change or delete; a private image
//! (saved by its owner) is refused to others; a VM boots from the clone.

use super::*;
use common::marketplace::{image_bytes, sha1_hex, Marketplace};

const IMAGE: &str = "BN1EEkPiBx87_uLj2-sdybSI-Xb";
const PRIVATE_IMAGE: &str = "PV1EEkPiBx87_uLj2-sdybSI-Xc";

fn qemu_img_info(path: &Path) -> serde_json::Value {
    let out = std::process::Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(path)
        .output()
        .expect("qemu-img (apt-get install qemu-utils) runs");
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
    out
}

#[test]
fn a_cached_marketplace_image_is_cloned_into_a_volume() {
    let mp = Marketplace::start();
    let data = image_bytes(3 * 1024 * 1024 + 512, 7);
    mp.add_image(IMAGE, &data, true, data.len() as u64, &sha1_hex(&data));
    let mut site = Site::start("volumes-cached", &[]);
    site.simulated_host("sim-cached");
    let alice = site.alice();
    let bob = site.bob();

    // Not cached yet: nothing to clone (and nothing is downloaded on the caller's behalf).
    alice
        .post_form(&format!("/disks/{IMAGE}"), &[])
        .assert_error(404, &format!("Disk {IMAGE} doesn't exists"));
    assert_eq!(mp.count(&format!("/images/{IMAGE}")), 0);

    // A VM of the Marketplace image puts it in the cache.
    let template = format!(
        "NAME = \"mp\"\nMEMORY = 64\nCPU = 0.1\n\
         DISK = [ SOURCE = \"{}\", TARGET = vda, DRIVER = raw ]\n",
        mp.source(IMAGE)
    );
    let (vm, doc) = site.run_vm("bob", &template);
    assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
    let cached = site.dir().join("cache/images").join(IMAGE);
    assert_eq!(std::fs::read(&cached).unwrap(), data);

    // alice clones it: a live volume of hers, an overlay of the cached file.
    let clone = alice.post_form(&format!("/disks/{IMAGE}"), &[]);
    assert_eq!(clone.status, 200, "{}", clone.body);
    let live = clone.json["uuid"].as_str().unwrap().to_string();
    assert_eq!(clone.json["type"], "MACHINE_IMAGE_LIVE", "{}", clone.body);
    assert_eq!(clone.json["owner"], "alice");
    assert_eq!(clone.json["visibility"], "PRIVATE");
    assert_eq!(clone.json["size"], "1");
    let identifier = clone.json["identifier"].as_str().unwrap().to_string();
    let origin = identifier
        .strip_prefix("snapshot:")
        .unwrap_or_else(|| panic!("{identifier}"))
        .to_string();
    let overlay = site.dir().join("volumes").join(format!("{live}.qcow2"));
    let info = qemu_img_info(&overlay);
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["backing-filename"], cached.to_string_lossy().as_ref());
    assert_eq!(info["backing-filename-format"], "raw");
    assert_eq!(info["virtual-size"], data.len() as u64);
    assert_eq!(
        mp.count(&format!("/images/{IMAGE}")),
        1,
        "no second download"
    );

    // The clone holds the image: a download proves it.
    let download = alice.get_accept(&format!("/disks/{live}/"), "application/x-gzip");
    assert_eq!(download.status, 200, "{}", download.body);
    assert!(
        gunzip(&download.bytes) == data,
        "the clone's content is the image's"
    );

    // The origin is the site's (pdisk's), public, its count the clones; a second clone (bob's)
    // has the same origin.
    let second = bob.post_form(&format!("/disks/{IMAGE}"), &[]);
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.json["identifier"], identifier.as_str());
    assert_eq!(second.json["owner"], "bob");
    let o = bob.get(&format!("/disks/{origin}/"));
    assert_eq!(o.status, 200, "{}", o.body);
    assert_eq!(o.json["type"], "MACHINE_IMAGE_ORIGIN");
    assert_eq!(o.json["owner"], "pdisk");
    assert_eq!(o.json["visibility"], "PUBLIC");
    assert_eq!(o.json["identifier"], IMAGE);
    assert_eq!(o.json["count"], "2");
    // The origin's uuid clones the same way.
    let third = bob.post_form(&format!("/disks/{origin}"), &[]);
    assert_eq!(third.status, 200, "{}", third.body);
    assert_eq!(third.json["identifier"], identifier.as_str());
    let third = third.json["uuid"].as_str().unwrap().to_string();
    // bob cannot touch alice's clone.
    bob.delete(&format!("/disks/{live}/")).assert_error(
        403,
        &format!("insufficient access rights to view disk ({live})"),
    );

    // Nobody changes or deletes the cache's data through its origin volume, not even the
    // super-user; nor can it be attached to a VM.
    let before = site.snapshot();
    let su = site.superuser();
    let refusal = |what: &str| {
        format!("disk ({origin}) is the image cache's copy of Marketplace image {IMAGE} and can't be {what}")
    };
    su.delete(&format!("/disks/{origin}/"))
        .assert_error(409, &refusal("deleted"));
    su.put_form(
        &format!("/disks/{origin}"),
        &[("type", "DATA_IMAGE_RAW_READ_WRITE")],
    )
    .assert_error(409, &refusal("changed"));
    bob.delete(&format!("/disks/{origin}/")).assert_error(
        403,
        &format!("insufficient rights to delete disk ({origin})"),
    );
    let attach = su.post_form(
        &format!("/disks/{origin}/mounts/"),
        &[("node", "sim-cached"), ("vm_id", &vm.to_string())],
    );
    assert_eq!(attach.status, 409, "{}", attach.body);
    assert_eq!(site.snapshot(), before, "the refusals changed nothing");
    assert_eq!(std::fs::read(&cached).unwrap(), data);

    // Ids that are not cached images: 404, nothing made; a path-like id never reaches a file.
    let before = site.snapshot();
    for id in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "cache",
        "a%2F..%2F..%2Fetc%2Fpasswd",
    ] {
        let r = alice.post_form(&format!("/disks/{id}"), &[]);
        assert_eq!(r.status, 404, "{id}: {}", r.body);
    }
    assert_eq!(site.snapshot(), before);

    // A private image in the cache (as a save puts it there, owned by alice): hers to clone,
    // not bob's.
    let private = image_bytes(1024 * 1024, 9);
    let staged = site.dir().join("private-image");
    std::fs::write(&staged, &private).unwrap();
    let cache = stratusd::storage::cache::ImageCache::new(site.dir().join("cache"));
    cache
        .place(
            &stratusd::storage::cache::CachedImage {
                id: PRIVATE_IMAGE.into(),
                sha1: sha1_hex(&private),
                bytes: private.len() as u64,
                format: "raw".into(),
                owner: "alice".into(),
                visibility: stratusd::storage::cache::Visibility::Private,
                origin: "saved from a test VM".into(),
                cached_at: 0,
            },
            &staged,
            "<metadata/>",
        )
        .unwrap();
    bob.post_form(&format!("/disks/{PRIVATE_IMAGE}"), &[])
        .assert_error(
            403,
            &format!("insufficient access rights to view disk ({PRIVATE_IMAGE})"),
        );
    let own = alice.post_form(&format!("/disks/{PRIVATE_IMAGE}"), &[]);
    assert_eq!(own.status, 200, "{}", own.body);
    let private_origin = own.json["identifier"]
        .as_str()
        .unwrap()
        .trim_start_matches("snapshot:")
        .to_string();
    let po = alice.get(&format!("/disks/{private_origin}/"));
    assert_eq!(po.json["owner"], "alice", "{}", po.body);
    assert_eq!(po.json["visibility"], "PRIVATE");
    bob.get(&format!("/disks/{private_origin}/")).assert_error(
        403,
        &format!("insufficient access rights to view disk ({private_origin})"),
    );

    // A VM boots from alice's clone; the clone is in use meanwhile.
    let boot = format!(
        "NAME = \"clone\"\nMEMORY = 64\nCPU = 0.1\n\
         DISK = [ SOURCE = pdisk:https://pdisk.example.org:8445/{live}, TARGET = vda, TYPE = block ]\n"
    );
    let (booted, doc) = site.run_vm("alice", &boot);
    assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
    assert_eq!(alice.get(&format!("/disks/{live}/")).json["count"], "1");
    alice.delete(&format!("/disks/{live}/")).assert_error(
        409,
        &format!("disk ({live}) is in use and can't be deleted"),
    );
    site.vm_action("finalize", booted);
    site.wait_vm(booted, &["6/0"]);
    // As with pdisk, a booted live snapshot goes into the quarantine when its VM ends.
    alice
        .get(&format!("/disks/{live}/"))
        .assert_error(404, &format!("disk ({live}) does not exist"));

    // Deleting the clones (and purging them) leaves the cached image alone.
    assert_eq!(bob.delete(&format!("/disks/{third}/")).status, 200);
    let su = site.superuser();
    assert_eq!(su.delete(&format!("/disks/{live}/")).status, 200);
    assert_eq!(su.delete(&format!("/disks/{third}/")).status, 200);
    assert!(!overlay.exists(), "the clone's overlay is removed");
    assert_eq!(std::fs::read(&cached).unwrap(), data);
    site.vm_action("finalize", vm);
}
