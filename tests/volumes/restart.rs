//! Volumes and their mounts live in the daemon's SQLite store: they survive `kill -9` and a
//! restart, and a creation the crash interrupted is undone at the next start.

use super::*;
use stratusd::model::volume::{Backing, Visibility, Volume, VolumeState, VolumeType};

#[test]
fn volumes_and_mounts_survive_kill_9_and_a_restart() {
    let dir = temp_dir("volumes-restart");
    let mut site = Site::start_in(dir.clone(), &[]);
    site.simulated_host("sim-restart");
    let alice = site.alice();
    let fixed = alice.create("1", "a template disk");
    let hot = alice.create("3", "hot-plugged");
    let spare = alice.create("2", "spare");
    let (vm, doc) = site.run_vm("alice", &template_with_volumes("r", &[&fixed]));
    assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
    let r = alice.post_form(
        &format!("/disks/{hot}/mounts/"),
        &[("node", "sim-restart"), ("vm_id", &vm.to_string())],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let before = site.snapshot();
    assert!(before.contains("\"vdz\""), "{before}");

    site.daemon.kill9();
    // A creation the crash cut short: its record says `creating`, its file is there.
    let interrupted = "0a0b0c0d-1111-4222-8333-444444444444";
    let file = dir.join("volumes").join(interrupted);
    std::fs::write(&file, b"partial").unwrap();
    let record = Volume {
        uuid: interrupted.into(),
        owner: "alice".into(),
        tag: String::new(),
        size: 1,
        kind: VolumeType::DataImageRawReadWrite,
        visibility: Visibility::Private,
        identifier: String::new(),
        quarantine: String::new(),
        quarantined_at: None,
        seed: false,
        base: None,
        created: 0,
        backing: Backing::File {
            path: file.display().to_string(),
            format: "raw".into(),
        },
        state: VolumeState::Creating,
        mounts: Vec::new(),
        cached: false,
    };
    let db = rusqlite::Connection::open(dir.join("stratusd.db")).unwrap();
    db.execute(
        "INSERT INTO volume_pool (uuid, owner, body) VALUES (?1, 'alice', ?2)",
        [interrupted, &serde_json::to_string(&record).unwrap()],
    )
    .unwrap();
    drop(db);

    let mut site = Site::start_in(dir.clone(), &[]);
    assert_eq!(
        site.snapshot(),
        before,
        "volumes, counts and mounts as before the crash; the interrupted creation undone"
    );
    assert!(!file.exists());
    let alice = site.alice();
    assert_eq!(
        alice.get(&format!("/disks/{interrupted}")).status,
        404,
        "the interrupted volume never existed"
    );
    // The mounts still work: detach after the restart, and the VM's end gives back the rest.
    let r = alice.delete(&format!("/disks/{hot}/mounts/{hot}_{vm}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["target"], "vdz");
    site.vm_action("shutdown", vm);
    site.wait_vm(vm, &["6/0"]);
    assert_eq!(alice.get(&format!("/disks/{fixed}")).json["count"], "0");
    assert_eq!(alice.get(&format!("/disks/{spare}")).json["size"], "2");
    assert_eq!(site.daemon.stop(), Some(0), "SIGTERM exits cleanly");
}
