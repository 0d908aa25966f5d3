//! The REST API as pdisk answered it: volumes, their owners and visibility, the errors, copies,
//! downloads, uploads, and deletion into the quarantine with its purge.

use super::*;
use std::io::Read;

const GIB: u64 = 1 << 30;

fn volume_file(site: &Site, uuid: &str) -> PathBuf {
    site.dir().join("volumes").join(uuid)
}

#[test]
fn the_api_answers_as_pdisk_did() {
    let site = Site::start("volumes-api", &["--volume-quarantine-period", "2"]);
    let alice = site.alice();
    let bob = site.bob();
    let su = site.superuser();

    // --- authentication: the front door's -------------------------------------------------
    let anonymous = Api::new(site.pdisk, "/pswd", None, None);
    let r = anonymous.get("/disks/");
    assert_eq!(r.status, 401);
    assert!(
        r.header("WWW-Authenticate")
            .is_some_and(|h| h.starts_with("Basic realm=")),
        "{:?}",
        r.headers
    );
    assert_eq!(site.api("alice", "wrong").get("/disks/").status, 401);
    assert_eq!(site.api("guest", "pw").get("/disks/").status, 403);
    assert_eq!(
        site.api("mallory", "x").get("/pdisk/pswd/disks/").status,
        401
    );

    // --- create, read, list ------------------------------------------------------------------
    let hostile_tag = "it's \"mine\" <tag a='1'>&amp;</tag>\\";
    let started = Instant::now();
    let uuid = alice.create("10", hostile_tag);
    let create_time = started.elapsed();
    assert!(stratusd::model::volume::is_uuid(&uuid), "{uuid}");
    let r = alice.get(&format!("/disks/{uuid}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["uuid"], uuid.as_str());
    assert_eq!(r.json["tag"], hostile_tag);
    assert_eq!(r.json["count"], "0");
    assert_eq!(r.json["owner"], "alice");
    assert_eq!(r.json["identifier"], "");
    assert_eq!(r.json["size"], "10");
    assert_eq!(r.json["type"], "DATA_IMAGE_RAW_READ_WRITE");
    assert_eq!(r.json["visibility"], "PRIVATE");
    assert!(r.json.get("quarantine").is_none());
    // The same with a trailing slash, and under the 14.x layout.
    assert_eq!(alice.get(&format!("/disks/{uuid}/")).json, r.json);
    let alice14 = Api::new(site.pdisk, "/pdisk/pswd", Some(("alice", "s3cret")), None);
    assert_eq!(alice14.get(&format!("/disks/{uuid}/")).json, r.json);
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(volume_file(&site, &uuid)).unwrap();
        assert_eq!(meta.len(), 10 * GIB);
        assert!(
            meta.blocks() < 1024,
            "a sparse file: {} blocks",
            meta.blocks()
        );
    }
    eprintln!(
        "volumes: a 10 GiB file volume created in {create_time:?} (HTTPS round trip included)"
    );
    let list = alice.get("/disks/");
    assert_eq!(list.status, 200);
    assert_eq!(list.json.as_array().unwrap().len(), 1);
    assert_eq!(list.json[0]["uuid"], uuid.as_str());
    assert_eq!(list.json[0]["tag"], hostile_tag);
    assert_eq!(bob.get("/disks/").json, serde_json::json!([]));
    assert_eq!(su.get("/disks/").json.as_array().unwrap().len(), 1);
    let turl = alice.get(&format!("/disks/{uuid}/turl/"));
    assert_eq!(
        turl.json["turl"],
        format!("file://{}", volume_file(&site, &uuid).display())
    );
    assert_eq!(alice.head(&format!("/disks/{uuid}/")).status, 200);

    // --- someone else's volume, unknown volumes, bad input: refused, nothing changed --------
    let before = site.snapshot();
    bob.get(&format!("/disks/{uuid}")).assert_error(
        403,
        &format!("insufficient access rights to view disk ({uuid})"),
    );
    assert_eq!(bob.head(&format!("/disks/{uuid}/")).status, 403);
    bob.put_form(&format!("/disks/{uuid}"), &[("tag", "mine now")])
        .assert_error(
            403,
            &format!("insufficient access rights to view disk ({uuid})"),
        );
    bob.delete(&format!("/disks/{uuid}/")).assert_error(
        403,
        &format!("insufficient access rights to view disk ({uuid})"),
    );
    bob.get(&format!("/disks/{uuid}/mounts/")).assert_error(
        403,
        &format!("insufficient access rights to view disk ({uuid})"),
    );
    let unknown = "00000000-1111-4222-8333-444444444444";
    alice
        .get(&format!("/disks/{unknown}"))
        .assert_error(404, &format!("disk ({unknown}) does not exist"));
    alice
        .delete(&format!("/disks/{unknown}/"))
        .assert_error(404, &format!("disk ({unknown}) does not exist"));
    alice
        .get(&format!("/disks/{unknown}/mounts/"))
        .assert_error(404, &format!("Unknown disk: {unknown}"));
    alice
        .get(&format!("/disks/{unknown}/turl/"))
        .assert_error(404, &format!("Unknown disk: {unknown}"));
    alice
        .post_form(&format!("/disks/{unknown}"), &[])
        .assert_error(404, &format!("Disk {unknown} doesn't exists"));
    assert_eq!(alice.get("/disks/..%2F..%2Fetc%2Fpasswd").status, 404);
    assert_eq!(alice.get("/disks/../../../etc/passwd").status, 404);
    let size_rule = "Size must be an integer between 1 and 1024";
    for size in ["0", "1025", "-1"] {
        alice
            .post_form("/disks/", &[("size", size), ("tag", "x")])
            .assert_error(400, size_rule);
    }
    alice
        .post_form("/disks/", &[("tag", "no size")])
        .assert_error(400, size_rule);
    alice
        .post_form("/disks/", &[("size", "abc")])
        .assert_error(400, "Error parsing size: For input string: \"abc\"");
    alice
        .post_form("/disks/", &[("size", "99999999999999999999999999")])
        .assert_error(
            400,
            "Error parsing size: For input string: \"99999999999999999999999999\"",
        );
    alice
        .post_form("/disks/", &[("size", "1"), ("visibility", "secret")])
        .assert_error(
            400,
            "Invalid value for form element visibility: No enum constant \
             eu.stratuslab.storage.disk.resources.BaseResource.DiskVisibility.SECRET",
        );
    alice
        .post_form("/disks/", &[("size", "1"), ("type", "FLOPPY")])
        .assert_error(
            400,
            "No enum constant eu.stratuslab.storage.persistence.Disk.DiskType.FLOPPY",
        );
    let long_tag = "t".repeat(5000);
    assert_eq!(
        alice
            .post_form("/disks/", &[("size", "1"), ("tag", &long_tag)])
            .status,
        400
    );
    // Content from a URL is fetched by the server: pdisk's super-user only.
    alice
        .post_form(
            "/disks/",
            &[
                ("size", "1"),
                ("url", "http://169.254.169.254/latest/meta-data"),
            ],
        )
        .assert_error(403, "only pdisk may create a disk from a URL");
    alice
        .put_form(&format!("/disks/{uuid}"), &[("owner", "bob")])
        .assert_error(
            403,
            &format!("only pdisk may change the owner or the quarantine of disk ({uuid})"),
        );
    alice
        .put_form(&format!("/disks/{uuid}"), &[("size", "20")])
        .assert_error(400, &format!("the size of disk ({uuid}) cannot be changed"));
    alice
        .put_form(&format!("/disks/{uuid}"), &[])
        .assert_error(400, "post with null entity");
    alice
        .delete("/disks/")
        .assert_error(405, "Method Not Allowed");
    assert_eq!(site.snapshot(), before, "refused requests changed nothing");

    // --- update --------------------------------------------------------------------------
    let tag2 = "</json>\"}]";
    let r = alice.put_form(
        &format!("/disks/{uuid}"),
        &[
            ("tag", tag2),
            ("visibility", "public"),
            ("type", "DATA_IMAGE_RAW_READONLY"),
        ],
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = bob.get(&format!("/disks/{uuid}"));
    assert_eq!(r.status, 200, "a public volume is visible: {}", r.body);
    assert_eq!(r.json["tag"], tag2);
    assert_eq!(r.json["visibility"], "PUBLIC");
    assert_eq!(r.json["type"], "DATA_IMAGE_RAW_READONLY");
    assert_eq!(
        bob.get("/disks/").json,
        serde_json::json!([]),
        "listings show one's own volumes"
    );
    bob.put_form(&format!("/disks/{uuid}"), &[("tag", "x")])
        .assert_error(403, &format!("insufficient rights to update disk ({uuid})"));
    bob.delete(&format!("/disks/{uuid}/"))
        .assert_error(403, &format!("insufficient rights to delete disk ({uuid})"));

    // --- certificates: /cert and /pdisk/cert ----------------------------------------------
    let john = site.api_cert(&pki().john);
    let john_uuid = john.create("1", "john's");
    let r = john.get(&format!("/disks/{john_uuid}"));
    assert_eq!(r.json["owner"], pki::JOHN_USER);
    let john_plain = Api::new(site.pdisk, "/cert", None, Some(&pki().john));
    assert_eq!(john_plain.get("/disks/").json.as_array().unwrap().len(), 1);
    assert_eq!(alice.get(&format!("/disks/{john_uuid}")).status, 403);
    assert_eq!(
        Api::new(site.pdisk, "/cert", None, None)
            .get("/disks/")
            .status,
        403,
        "no certificate at /cert"
    );
    assert_eq!(site.api_cert(&pki().not_in_role).get("/disks/").status, 403);

    // --- copy-on-write snapshot and rebase --------------------------------------------------
    let origin = alice.create("1", "origin");
    {
        // The origin's content, as a guest would have written it.
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(volume_file(&site, &origin))
            .unwrap();
        f.write_all(b"ORIGIN-DATA").unwrap();
        f.seek(std::io::SeekFrom::Start(GIB - 4)).unwrap();
        f.write_all(b"TAIL").unwrap();
    }
    let r = alice.post_form(&format!("/disks/{origin}"), &[]);
    r.assert_error(
        409,
        "Invalid disk state: DATA_IMAGE_RAW_READ_WRITE. Cannot create copy or save as new image.",
    );
    assert_eq!(
        alice
            .put_form(
                &format!("/disks/{origin}"),
                &[("type", "MACHINE_IMAGE_ORIGIN")]
            )
            .status,
        204
    );
    bob.post_form(&format!("/disks/{origin}"), &[])
        .assert_error(
            403,
            &format!("insufficient access rights to view disk ({origin})"),
        );
    let r = alice.post_form(&format!("/disks/{origin}"), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let live = r.json["uuid"].as_str().unwrap().to_string();
    assert_eq!(r.json["type"], "MACHINE_IMAGE_LIVE");
    assert_eq!(r.json["identifier"], format!("snapshot:{origin}"));
    assert_eq!(r.json["size"], "1");
    assert_eq!(alice.get(&format!("/disks/{origin}")).json["count"], "1");
    let live_file = site.dir().join("volumes").join(format!("{live}.qcow2"));
    let info = std::process::Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(&live_file)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(
        info["backing-filename"],
        volume_file(&site, &origin).display().to_string()
    );
    alice.delete(&format!("/disks/{origin}/")).assert_error(
        409,
        &format!("disk ({origin}) has snapshots and can't be deleted"),
    );
    // The snapshot shows the origin's data; a download proves it.
    let download = alice.get_accept(&format!("/disks/{live}/"), "application/x-gzip");
    assert_eq!(download.status, 200);
    assert_eq!(download.header("Content-Type"), Some("application/x-gzip"));
    let mut content = Vec::new();
    flate2::read::GzDecoder::new(&download.bytes[..])
        .read_to_end(&mut content)
        .unwrap();
    assert_eq!(content.len() as u64, GIB);
    assert_eq!(&content[..11], b"ORIGIN-DATA");
    assert_eq!(&content[content.len() - 4..], b"TAIL");
    drop(content);
    // Rebase: the live snapshot's content becomes a new, independent origin.
    let r = alice.post_form(&format!("/disks/{live}"), &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let rebased = r.json["uuid"].as_str().unwrap().to_string();
    assert_eq!(r.json["type"], "MACHINE_IMAGE_ORIGIN");
    let rebased_file = std::fs::read(volume_file(&site, &rebased)).unwrap();
    assert_eq!(&rebased_file[..11], b"ORIGIN-DATA");
    assert_eq!(rebased_file.len() as u64, GIB);
    drop(rebased_file);

    // --- upload of a gzipped image ---------------------------------------------------------
    let image: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|n| (n * 7 % 251) as u8)
        .collect();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &image).unwrap();
        e.finish().unwrap()
    };
    let boundary = "===============7330845974216740156==";
    let multipart = |data: &[u8]| {
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"Image File\"; \
             filename=\"image.img.gz\"\r\nContent-Type: application/octet-stream\r\n\
             Content-Length: {}\r\n\r\n",
            data.len()
        )
        .into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n\r\n").as_bytes());
        body
    };
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let r = alice.send("POST", "/disks/", &content_type, &multipart(&gz));
    assert_eq!(r.status, 303, "{}", r.body);
    let location = r.header("Location").unwrap().to_string();
    assert!(location.starts_with("/pswd/disks/"), "{location}");
    let uploaded = location.rsplit('/').next().unwrap().to_string();
    let r = alice.get(&format!("/disks/{uploaded}"));
    assert_eq!(r.json["type"], "DATA_IMAGE_RAW_READONLY");
    assert_eq!(r.json["size"], "1");
    let sha1 = {
        use sha1::Digest;
        sha1::Sha1::digest(&image)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        r.json["identifier"],
        stratusd::storage::identifier::from_sha1(&sha1).unwrap()
    );
    let data = std::fs::read(volume_file(&site, &uploaded)).unwrap();
    assert_eq!(&data[..image.len()], &image[..]);
    drop(data);
    let before = site.snapshot();
    alice
        .send("POST", "/disks/", &content_type, &multipart(&gz))
        .assert_error(403, "Disk already registered");
    let r = alice.send(
        "POST",
        "/disks/",
        &content_type,
        &multipart(b"not gzip at all"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        alice
            .send("POST", "/disks/", &content_type, b"--garbage")
            .status,
        400
    );
    assert_eq!(site.snapshot(), before, "refused uploads left nothing");

    // --- deletion into the quarantine, and the purge -----------------------------------------
    let r = alice.delete(&format!("/disks/{uuid}/"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["uuid"], uuid.as_str());
    alice
        .get(&format!("/disks/{uuid}"))
        .assert_error(404, &format!("disk ({uuid}) does not exist"));
    assert_eq!(alice.head(&format!("/disks/{uuid}/")).status, 404);
    assert!(!alice.get("/disks/").body.contains(&uuid));
    let r = su.get(&format!("/disks/{uuid}"));
    assert_eq!(r.status, 200);
    assert!(
        r.json["quarantine"].as_str().is_some_and(|q| q.len() == 26),
        "{}",
        r.body
    );
    assert!(
        volume_file(&site, &uuid).exists(),
        "kept during the quarantine"
    );
    // The quarantine period is 2 s here; the purge looks every second.
    let deadline = Instant::now() + Duration::from_secs(20);
    while volume_file(&site, &uuid).exists() {
        assert!(
            Instant::now() < deadline,
            "the quarantined volume was not purged"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(su.get(&format!("/disks/{uuid}")).status, 404);
    // The super-user removes a quarantined volume at once.
    assert_eq!(john.delete(&format!("/disks/{john_uuid}/")).status, 200);
    assert_eq!(su.delete(&format!("/disks/{john_uuid}/")).status, 200);
    assert!(!volume_file(&site, &john_uuid).exists());
    assert_eq!(su.get(&format!("/disks/{john_uuid}")).status, 404);
}
