//! Bad input never panics the daemon and never changes state: malformed XML, wrong types,
//! huge bodies, invalid UTF-8, unknown methods and hostile templates, in a loop, then the
//! database is compared with its state before.

mod common;
use common::*;

fn fingerprint(d: &Daemon) -> String {
    stratusd::store::Store::open(&d.db())
        .unwrap()
        .fingerprint()
        .unwrap()
}

#[test]
fn bad_input_changes_nothing() {
    let d = Daemon::start("bad-input", &["--max-body-bytes", "1048576"]);
    let mut c = d.client();
    // Some state to protect.
    assert!(c
        .call(
            "one.user.allocate",
            &[s(ADMIN), s("alice"), s("pw"), s("core")]
        )
        .contains("<boolean>1</boolean>"));
    assert!(c
        .call(
            "one.vm.allocate",
            &[s(ADMIN), s("NAME=keep\nCPU=1\nMEMORY=64")]
        )
        .contains("<boolean>1</boolean>"));
    let before = fingerprint(&d);

    let huge = vec![b'x'; 2 * 1024 * 1024];
    let mut deep = String::from(
        "<?xml version=\"1.0\"?><methodCall><methodName>one.user.info</methodName><params><param>",
    );
    for _ in 0..10_000 {
        deep.push_str("<value><array><data>");
    }
    let bodies: Vec<Vec<u8>> = vec![
        b"this is not xml".to_vec(),
        b"<?xml version=\"1.0\"?><methodCall><methodName>one.user.info</methodName>".to_vec(),
        b"<methodCall><methodName>one.vm.info</methodName><params><param><value><int>abc</int></value></param></params></methodCall>".to_vec(),
        vec![0xff, 0xfe, 0x3c, 0x00, 0xc3, 0x28],
        b"<?xml version=\"1.0\"?><methodCall><methodName>one.vm.allocate</methodName><params><param><value><string>oneadmin:password</string></value></param><param><value><string>\xff\xfe</string></value></param></params></methodCall>".to_vec(),
        huge,
        deep.into_bytes(),
    ];
    let calls: Vec<(&str, Vec<Param>)> = vec![
        ("one.no.such", vec![s(ADMIN)]),
        ("one.vm.info", vec![s(ADMIN), s("zero")]),
        ("one.vm.allocate", vec![s(ADMIN), s("NAME = [")]),
        ("one.vm.allocate", vec![s(ADMIN), s("A = [ ]")]),
        (
            "one.vm.allocate",
            vec![s("alice:pw"), s("NIC = [ VLAN_ID = 7 ]")],
        ),
        (
            "one.vm.allocate",
            vec![s("alice:pw"), s("OS = [ KERNEL = /etc/shadow ]")],
        ),
        (
            "one.vm.allocate",
            vec![
                s("alice:pw"),
                s("RAW = [ TYPE = kvm, DATA = \"<devices/>\" ]"),
            ],
        ),
        (
            "one.vm.allocate",
            vec![s(ADMIN), s("NIC = [ NETWORK_ID = 99 ]")],
        ),
        ("one.vm.action", vec![s(ADMIN), s("frobnicate"), i(0)]),
        ("one.vm.action", vec![s(ADMIN), s("shutdown"), i(0)]),
        ("one.user.delete", vec![s(ADMIN), i(0)]),
        ("one.group.delete", vec![s(ADMIN), i(0)]),
        ("one.user.info", vec![s("oneadmin:wrong"), i(-1)]),
        (
            "one.user.allocate",
            vec![s(ADMIN), s("bad:name"), s("x"), s("core")],
        ),
        ("one.acl.addrule", vec![s(ADMIN), s("zz"), s("yy"), s("xx")]),
        (
            "one.image.allocate",
            vec![s("alice:pw"), s("NAME=x\nPATH=/etc/shadow")],
        ),
        (
            "one.image.allocate",
            vec![s("alice:pw"), s("NAME=x\nSOURCE=/etc/shadow")],
        ),
        (
            "one.vn.allocate",
            vec![s(ADMIN), s("NAME=n\nTYPE=RANGED\nBRIDGE=br0")],
        ),
    ];
    for _round in 0..3 {
        for b in &bodies {
            let mut c2 = d.client();
            let a = c2.post_raw(b);
            assert!(a.status == 200 || a.status == 400, "status {}", a.status);
            assert!(
                a.body.contains("fault") || a.status == 400,
                "expected a fault for a broken body, got {}",
                a.body
            );
        }
        for (m, p) in &calls {
            let a = c.call(m, p);
            assert!(
                a.contains("fault") || a.contains("<boolean>0</boolean>"),
                "{m} should fail: {a}"
            );
        }
    }
    // Still serving, state untouched.
    assert!(c
        .call("one.user.info", &[s(ADMIN), i(-1)])
        .contains("<boolean>1</boolean>"));
    assert_eq!(before, fingerprint(&d), "bad input changed the database");
}

#[test]
fn host_paths_through_kernel_or_raw_are_refused_to_ordinary_users() {
    let d = Daemon::start("restricted", &[]);
    let mut c = d.client();
    let a = c.call(
        "one.vm.allocate",
        &[
            s("eve:x"),
            s("OS = [ KERNEL = \"/etc/shadow\" ]\nMEMORY=64"),
        ],
    );
    assert!(a.contains("[VirtualMachineAllocate] Error allocating a new virtual machine. VM Template includes a restricted attribute OS/KERNEL."), "{a}");
    let a = c.call(
        "one.vm.allocate",
        &[
            s("eve:x"),
            s("RAW = [ TYPE = kvm, DATA = \"<devices/>\" ]\nMEMORY=64"),
        ],
    );
    assert!(
        a.contains("VM Template includes a restricted attribute RAW."),
        "{a}"
    );
    // oneadmin (the site's own templates) may.
    let a = c.call(
        "one.vm.allocate",
        &[
            s(ADMIN),
            s("RAW = [ TYPE = kvm, DATA = \"<devices/>\" ]\nMEMORY=64"),
        ],
    );
    assert!(a.contains("<boolean>1</boolean>"), "{a}");
}
