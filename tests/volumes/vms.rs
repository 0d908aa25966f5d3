//! Volumes used by VMs: `pdisk:` disks take a user of the volume at the prolog and give it back
//! when the VM ends; exclusive volumes refuse a second VM; hot-plug on simulated hosts; and every
//! refusal leaves everything as it was.

use super::*;

fn count(api: &Api, uuid: &str) -> String {
    let r = api.get(&format!("/disks/{uuid}/"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json["count"].as_str().unwrap_or_default().to_string()
}

fn vm_error(doc: &str) -> String {
    let m = field(doc, "MESSAGE").unwrap_or_default();
    m.strip_prefix("<![CDATA[")
        .and_then(|m| m.strip_suffix("]]>"))
        .map(str::to_string)
        .unwrap_or(m)
}

#[test]
fn vms_take_and_give_back_volumes_and_hot_plug_them() {
    let mut site = Site::start("volumes-vms", &[]);
    site.simulated_host("sim-volumes");
    let alice = site.alice();
    let bob = site.bob();

    // --- a pdisk: disk of a VM's template ----------------------------------------------------
    let v1 = alice.create("1", "exclusive");
    let (vm_a, doc) = site.run_vm("alice", &template_with_volumes("a", &[&v1]));
    assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
    assert_eq!(count(&alice, &v1), "1", "starting a VM takes a user");
    let mounts = alice.get(&format!("/disks/{v1}/mounts/"));
    assert_eq!(
        mounts.json,
        serde_json::json!([{"vmId": vm_a.to_string(), "device": "static"}])
    );
    let link = site.dir().join(format!("{vm_a}/images/disk.1"));
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        site.dir().join("volumes").join(&v1)
    );

    // A second VM may not have the (read-write) volume; the first keeps it.
    let before = site.snapshot();
    let (vm_b, doc) = site.run_vm("alice", &template_with_volumes("b", &[&v1]));
    assert_eq!(field(&doc, "STATE").as_deref(), Some("7"), "{doc}");
    assert_eq!(
        vm_error(&doc),
        format!(
            "Error excuting image transfer script: tm_clone_cache.py: disk ({v1}) is in use by VM {vm_a} and can't be used by another VM"
        )
    );
    assert_eq!(site.snapshot(), before);
    site.vm_action("finalize", vm_b);
    site.wait_vm(vm_b, &["6/0"]);
    assert_eq!(count(&alice, &v1), "1", "the refused VM took nothing");

    // A volume in use cannot be deleted.
    alice
        .delete(&format!("/disks/{v1}/"))
        .assert_error(409, &format!("disk ({v1}) is in use and can't be deleted"));

    // Someone else's private volume.
    let (vm_c, doc) = site.run_vm("bob", &template_with_volumes("c", &[&v1]));
    assert_eq!(
        vm_error(&doc),
        format!(
            "Error excuting image transfer script: tm_clone_cache.py: User bob is not authorized to use persistent disk {v1}"
        )
    );
    site.vm_action("finalize", vm_c);

    // A read-only volume is shared.
    let shared = alice.create("1", "shared");
    assert_eq!(
        alice
            .put_form(
                &format!("/disks/{shared}"),
                &[("type", "DATA_IMAGE_RAW_READONLY")]
            )
            .status,
        204
    );
    let (vm_d, doc) = site.run_vm("alice", &template_with_volumes("d", &[&shared]));
    assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
    let (vm_e, doc) = site.run_vm("alice", &template_with_volumes("e", &[&shared]));
    assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
    assert_eq!(count(&alice, &shared), "2");

    // --- hot-plug ------------------------------------------------------------------------------
    let hot = alice.create("2", "hot");
    let attach = |api: &Api, uuid: &str, vm: i32| {
        api.post_form(
            &format!("/disks/{uuid}/mounts/"),
            &[("node", "sim-volumes"), ("vm_id", &vm.to_string())],
        )
    };
    let r = attach(&alice, &hot, vm_a);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["target"], "vdz");
    assert_eq!(r.json["vm_id"], vm_a.to_string());
    assert_eq!(r.json["uuid"][0], hot.as_str());
    assert_eq!(count(&alice, &hot), "1", "a hot-plug takes a user");
    assert_eq!(
        alice.get(&format!("/disks/{hot}/mounts/")).json,
        serde_json::json!([{"vmId": vm_a.to_string(), "device": "vdz"}])
    );
    let record = std::fs::read_to_string(site.dir().join(format!("{vm_a}/hotplug.json"))).unwrap();
    assert!(record.contains(&hot) && record.contains("vdz"), "{record}");
    // A second volume gets the next target.
    let hot2 = alice.create("1", "hot2");
    assert_eq!(attach(&alice, &hot2, vm_a).json["target"], "vdy");

    let bobs = bob.create("1", "bob's");
    let free = alice.create("1", "free");
    let origin = alice.create("1", "origin");
    alice.put_form(
        &format!("/disks/{origin}"),
        &[("type", "MACHINE_IMAGE_ORIGIN")],
    );
    // A VM that does not run.
    let pending = rpc_id(&site.rpc.call(
        "one.vm.allocate",
        &[
            s("alice:x"),
            s("NAME = p\nMEMORY = 64\nCPU = 0.1\nREQUIREMENTS = \"HOSTNAME = \\\"nowhere\\\"\"\n"),
        ],
    ));
    let before = site.snapshot();
    attach(&alice, &hot, vm_a)
        .assert_error(403, &format!("Mount already exists for: {vm_a} and {hot}"));
    attach(&alice, &hot, vm_d).assert_error(
        409,
        &format!("disk ({hot}) is in use by VM {vm_a} and can't be used by another VM"),
    );
    attach(&bob, &hot, vm_a).assert_error(403, "Not enough rights to attach disk");
    attach(&bob, &bobs, vm_a).assert_error(
        403,
        &format!("Not enough rights to attach disk to VM {vm_a}"),
    );
    attach(&alice, &hot, 4242).assert_error(404, "VM 4242 does not exist");
    let unknown = "00000000-1111-4222-8333-444444444444";
    attach(&alice, unknown, vm_a).assert_error(404, &format!("Unknown disk: {unknown}"));
    alice
        .post_form(&format!("/disks/{hot}/mounts/"), &[("vm_id", "1")])
        .assert_error(400, "missing node attribute");
    alice
        .post_form(&format!("/disks/{hot}/mounts/"), &[("node", "x")])
        .assert_error(400, "missing vm_id attribute");
    alice
        .post_form(&format!("/disks/{hot}/mounts/"), &[])
        .assert_error(400, "post with null entity");
    attach(&alice, &free, pending)
        .assert_error(409, &format!("VM {pending} is not in running state"));
    // An origin is never attached (its snapshots read it).
    attach(&alice, &origin, vm_a).assert_error(
        409,
        "Invalid disk state: MACHINE_IMAGE_ORIGIN. Cannot attach an origin.",
    );
    // Detaching what is not attached.
    alice
        .delete(&format!("/disks/{free}/mounts/{free}_{vm_a}"))
        .assert_error(
            404,
            "The server has not found anything matching the request URI",
        );
    alice
        .delete(&format!("/disks/{hot}/mounts/{hot}_{vm_d}"))
        .assert_error(
            404,
            "The server has not found anything matching the request URI",
        );
    bob.delete(&format!("/disks/{hot}/mounts/{hot}_{vm_a}"))
        .assert_error(403, "insufficient rights to detach disk");
    // A template disk goes with its VM.
    alice
        .delete(&format!("/disks/{v1}/mounts/{v1}_{vm_a}"))
        .assert_error(
            409,
            &format!(
                "disk ({v1}) is a disk of VM {vm_a}'s template: it is given back when the VM ends"
            ),
        );
    alice
        .delete(&format!("/disks/{hot}/"))
        .assert_error(409, &format!("disk ({hot}) is in use and can't be deleted"));
    assert_eq!(site.snapshot(), before, "refused requests changed nothing");

    // Detach.
    let r = alice.delete(&format!("/disks/{hot}/mounts/{hot}_{vm_a}"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json["target"], "vdz");
    assert_eq!(r.json["vmId"], vm_a.to_string());
    assert_eq!(count(&alice, &hot), "0");
    assert_eq!(
        alice.get(&format!("/disks/{hot}/mounts/")).json,
        serde_json::json!([])
    );
    let record = std::fs::read_to_string(site.dir().join(format!("{vm_a}/hotplug.json"))).unwrap();
    assert!(!record.contains(&hot), "{record}");
    assert!(!site.dir().join(format!("{vm_a}/images/{hot}")).exists());

    // --- two clients attach one volume at once: one wins, the other is refused ----------------
    for round in 0..5 {
        let contested = alice.create("1", &format!("contested {round}"));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let answers: Vec<Resp> = [vm_a, vm_d]
            .into_iter()
            .map(|vm| {
                let barrier = std::sync::Arc::clone(&barrier);
                let pdisk = site.pdisk;
                let contested = contested.clone();
                std::thread::spawn(move || {
                    let api = Api::new(pdisk, "/pswd", Some(("alice", "s3cret")), None);
                    barrier.wait();
                    api.post_form(
                        &format!("/disks/{contested}/mounts/"),
                        &[("node", "sim-volumes"), ("vm_id", &vm.to_string())],
                    )
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let won: Vec<&Resp> = answers.iter().filter(|r| r.status == 200).collect();
        let lost: Vec<&Resp> = answers.iter().filter(|r| r.status == 409).collect();
        assert_eq!((won.len(), lost.len()), (1, 1), "{answers:?}");
        let message = lost[0].json["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("is in use by VM")
                || message.contains("is being attached or detached by another request"),
            "{message}"
        );
        assert_eq!(count(&alice, &contested), "1");
        let mounts = alice.get(&format!("/disks/{contested}/mounts/"));
        assert_eq!(mounts.json.as_array().unwrap().len(), 1);
        let winner: i32 = won[0].json["vm_id"].as_str().unwrap().parse().unwrap();
        let r = alice.delete(&format!("/disks/{contested}/mounts/{contested}_{winner}"));
        assert_eq!(r.status, 200, "{}", r.body);
    }

    // --- the end of a VM gives everything back -------------------------------------------------
    assert_eq!(attach(&alice, &hot, vm_a).status, 200);
    site.vm_action("shutdown", vm_a);
    site.wait_vm(vm_a, &["6/0"]);
    assert_eq!(count(&alice, &v1), "0", "ending the VM gives the user back");
    assert_eq!(count(&alice, &hot), "0", "hot-plugged volumes too");
    assert_eq!(count(&alice, &hot2), "0");
    site.vm_action("finalize", vm_d);
    site.wait_vm(vm_d, &["6/0"]);
    assert_eq!(count(&alice, &shared), "1");
    site.vm_action("finalize", vm_e);
    site.wait_vm(vm_e, &["6/0"]);
    assert_eq!(count(&alice, &shared), "0");
    assert_eq!(alice.delete(&format!("/disks/{v1}/")).status, 200);

    // --- a live snapshot booted as the root disk is quarantined when its VM ends -------------
    let origin = alice.create("1", "machine image");
    alice.put_form(
        &format!("/disks/{origin}"),
        &[("type", "MACHINE_IMAGE_ORIGIN")],
    );
    let live = alice.post_form(&format!("/disks/{origin}"), &[]).json["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let root = format!(
        "NAME = root\nMEMORY = 64\nCPU = 0.1\nDISK = [ SOURCE = \"pdisk:pdisk.example.org:8445:{live}\", TARGET = vda ]\n"
    );
    // A data volume cannot be booted, a live one can (once at a time).
    let (bad, doc) = site.run_vm(
        "alice",
        &format!("NAME = r\nMEMORY = 64\nCPU = 0.1\nDISK = [ SOURCE = pdisk:x:8445:{hot}, TARGET = vda ]\n"),
    );
    assert!(
        vm_error(&doc).ends_with("Only a live persistent disk can be booted from."),
        "{doc}"
    );
    site.vm_action("finalize", bad);
    let (vm_r, doc) = site.run_vm("alice", &root);
    assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
    let record = std::fs::read_to_string(site.dir().join(format!("{vm_r}/disks.json"))).unwrap();
    assert!(
        record.contains("\"qcow2\""),
        "the snapshot is declared qcow2: {record}"
    );
    assert_eq!(count(&alice, &live), "1");
    site.vm_action("shutdown", vm_r);
    site.wait_vm(vm_r, &["6/0"]);
    assert_eq!(alice.get(&format!("/disks/{live}")).status, 404);
    let r = site.superuser().get(&format!("/disks/{live}"));
    assert_eq!(r.json["owner"], "pdisk");
    assert!(r.json["quarantine"].as_str().is_some_and(|q| !q.is_empty()));
}
