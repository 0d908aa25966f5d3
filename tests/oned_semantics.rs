//! oned 3.2 behaviours that held-out recordings of the real server showed (issue 13), each
//! with a test of its own, against a real daemon: the catalogue's "semantics that are easy to
//! get wrong" (`fixtures/oned-3.2-messages.md` §14) and the texts around them.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn ok_id(body: &str) -> i32 {
    rpc_result(body)
        .unwrap_or_else(|e| panic!("expected success, got {e:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("not an id: {body}"))
}

fn fails(body: &str) -> (String, i32) {
    match rpc_result(body) {
        Ok(v) => panic!("expected a failure, got success {v}"),
        Err(e) => e,
    }
}

fn cdata(v: &str) -> String {
    v.trim_start_matches("<![CDATA[")
        .trim_end_matches("]]>")
        .to_string()
}

fn info(c: &mut Client, method: &str, id: i32) -> String {
    rpc_result(&c.call(method, &[s(ADMIN), i(id)])).unwrap_or_else(|e| panic!("{method}: {e:?}"))
}

fn vm_states(doc: &str) -> (String, String) {
    (
        field(doc, "STATE").unwrap_or_default(),
        field(doc, "LCM_STATE").unwrap_or_default(),
    )
}

fn wait_vm(c: &mut Client, id: i32, state: &str, lcm: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let doc = info(c, "one.vm.info", id);
        if vm_states(&doc) == (state.to_string(), lcm.to_string()) {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "VM {id} never reached {state}/{lcm}: {doc}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_image(c: &mut Client, id: i32, state: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let doc = info(c, "one.image.info", id);
        if field(&doc, "STATE").as_deref() == Some(state) {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "image {id} never reached {state}: {doc}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A simulated host (3.2's dummy drivers), disabled so that the scheduler leaves VMs alone
/// and only `one.vm.deploy` places them.
fn dummy_host(c: &mut Client, name: &str, tm: &str) -> i32 {
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
    ok_id(&c.call("one.host.enable", &[s(ADMIN), i(id), Param::B(false)]));
    id
}

fn allocate_vm(c: &mut Client, session: &str, template: &str) -> i32 {
    ok_id(&c.call("one.vm.allocate", &[s(session), s(template)]))
}

fn action(c: &mut Client, what: &str, vid: i32) {
    ok_id(&c.call("one.vm.action", &[s(ADMIN), s(what), i(vid)]));
}

/// Every `<NAME>` value of the VM's TEMPLATE, in document order.
fn template_names(doc: &str) -> Vec<String> {
    let tmpl = field(doc, "TEMPLATE").unwrap_or_default();
    elements(&tmpl, "NAME").into_iter().map(cdata).collect()
}

// --- DEPLOY_ID ------------------------------------------------------------------------------

#[test]
fn cold_migration_keeps_the_deploy_id_of_the_first_deployment() {
    let d = Daemon::start("semantics-deploy-id", &[]);
    let mut c = d.client();
    let a = dummy_host(&mut c, "dummyhost1", "tm_dummy");
    let b = dummy_host(&mut c, "dummyhost2", "tm_dummy");
    let vid = allocate_vm(&mut c, ADMIN, "NAME = ttylinux\nCPU = 0.1\nMEMORY = 64\n");
    ok_id(&c.call("one.vm.deploy", &[s(ADMIN), i(vid), i(a)]));
    let doc = wait_vm(&mut c, vid, "3", "3");
    let first = field(&doc, "DEPLOY_ID").unwrap();
    assert_eq!(first, "dummyhost1:ttylinux:dummy");

    // Cold migration: save on dummyhost1, restore on dummyhost2.
    ok_id(&c.call("one.vm.migrate", &[s(ADMIN), i(vid), i(b), Param::B(false)]));
    let doc = wait_vm(&mut c, vid, "3", "3");
    let hosts: Vec<&str> = elements(&doc, "HOSTNAME");
    assert_eq!(hosts.last().copied(), Some("dummyhost2"), "{doc}");
    assert_eq!(
        field(&doc, "DEPLOY_ID").as_deref(),
        Some(first.as_str()),
        "{doc}"
    );

    // Live migration back, suspend and resume, stop and resume: still the first one.
    ok_id(&c.call("one.vm.migrate", &[s(ADMIN), i(vid), i(a), Param::B(true)]));
    let doc = wait_vm(&mut c, vid, "3", "3");
    assert_eq!(
        elements(&doc, "HOSTNAME").last().copied(),
        Some("dummyhost1")
    );
    assert_eq!(field(&doc, "DEPLOY_ID").as_deref(), Some(first.as_str()));
    ok_id(&c.call("one.vm.migrate", &[s(ADMIN), i(vid), i(b), Param::B(false)]));
    wait_vm(&mut c, vid, "3", "3");
    action(&mut c, "suspend", vid);
    wait_vm(&mut c, vid, "5", "0");
    action(&mut c, "resume", vid);
    let doc = wait_vm(&mut c, vid, "3", "3");
    assert_eq!(
        field(&doc, "DEPLOY_ID").as_deref(),
        Some(first.as_str()),
        "{doc}"
    );
    action(&mut c, "stop", vid);
    wait_vm(&mut c, vid, "4", "0");
    action(&mut c, "resume", vid);
    wait_vm(&mut c, vid, "1", "0");
    ok_id(&c.call("one.vm.deploy", &[s(ADMIN), i(vid), i(b)]));
    let doc = wait_vm(&mut c, vid, "3", "3");
    assert_eq!(
        field(&doc, "DEPLOY_ID").as_deref(),
        Some(first.as_str()),
        "{doc}"
    );

    // A new deployment after resubmit writes it again (the VM is on dummyhost2 now).
    action(&mut c, "resubmit", vid);
    wait_vm(&mut c, vid, "1", "0");
    ok_id(&c.call("one.vm.deploy", &[s(ADMIN), i(vid), i(b)]));
    let doc = wait_vm(&mut c, vid, "3", "3");
    assert_eq!(
        field(&doc, "DEPLOY_ID").as_deref(),
        Some("dummyhost2:ttylinux:dummy")
    );
}

// --- Repeated NAME ---------------------------------------------------------------------------

#[test]
fn repeated_single_attributes_stay_in_the_vm_template() {
    let d = Daemon::start("semantics-names", &[]);
    let mut c = d.client();
    let vid = allocate_vm(
        &mut c,
        ADMIN,
        "NAME = first\nNAME = second\nCPU = 0.1\nCPU = 2\nMEMORY = 64\n",
    );
    let doc = info(&mut c, "one.vm.info", vid);
    assert_eq!(field(&doc, "NAME").as_deref(), Some("first"), "{doc}");
    assert_eq!(template_names(&doc), ["first", "second"], "{doc}");
    let tmpl = field(&doc, "TEMPLATE").unwrap();
    assert_eq!(
        elements(&tmpl, "CPU")
            .into_iter()
            .map(cdata)
            .collect::<Vec<_>>(),
        ["0.1", "2"]
    );
    // The pool listing has the same template.
    let pool =
        rpc_result(&c.call("one.vmpool.info", &[s(ADMIN), i(-2), i(-1), i(-1), i(-2)])).unwrap();
    assert_eq!(template_names(&pool), ["first", "second"], "{pool}");

    // An empty (or vector) first NAME: `one-<id>` replaces every NAME.
    let vid = allocate_vm(&mut c, ADMIN, "NAME =\nNAME = kept\nMEMORY = 64\n");
    let doc = info(&mut c, "one.vm.info", vid);
    assert_eq!(
        field(&doc, "NAME").as_deref(),
        Some(format!("one-{vid}").as_str())
    );
    assert_eq!(template_names(&doc), [format!("one-{vid}")]);
    let vid = allocate_vm(&mut c, ADMIN, "NAME = [ A = 1 ]\nNAME = b\nMEMORY = 64\n");
    let doc = info(&mut c, "one.vm.info", vid);
    assert_eq!(template_names(&doc), [format!("one-{vid}")], "{doc}");

    // A user's VMID comes before oned's own.
    let vid = allocate_vm(&mut c, ADMIN, "VMID = 99\nMEMORY = 64\n");
    let doc = info(&mut c, "one.vm.info", vid);
    let tmpl = field(&doc, "TEMPLATE").unwrap();
    assert_eq!(
        elements(&tmpl, "VMID")
            .into_iter()
            .map(cdata)
            .collect::<Vec<_>>(),
        ["99".to_string(), vid.to_string()]
    );
}

// --- "]]>" -----------------------------------------------------------------------------------

#[test]
fn a_value_holding_the_cdata_end_is_refused_and_uses_no_id() {
    let d = Daemon::start("semantics-cdata", &[]);
    let mut c = d.client();
    let before =
        rpc_result(&c.call("one.templatepool.info", &[s(ADMIN), i(-2), i(-1), i(-1)])).unwrap();
    assert_eq!(
        fails(&c.call(
            "one.template.allocate",
            &[s(ADMIN), s("NAME = t\nDESC = \"a]]>b\"\n")]
        )),
        (
            "[TemplateAllocate] Error allocating a new virtual machine template. Error transforming the Template to XML."
                .to_string(),
            8192
        )
    );
    assert_eq!(
        fails(&c.call(
            "one.vm.allocate",
            &[s(ADMIN), s("NAME = v\nMEMORY = 64\nCONTEXT = [ X = \"]]>\" ]\n")]
        )),
        (
            "[VirtualMachineAllocate] Error allocating a new virtual machine. Error transforming the VM to XML."
                .to_string(),
            8192
        )
    );
    // A NAME is written raw: `<` and `&` break the body as well.
    assert_eq!(
        fails(&c.call("one.vm.allocate", &[s(ADMIN), s("NAME = \"a<b\"\nMEMORY = 64\n")])).0,
        "[VirtualMachineAllocate] Error allocating a new virtual machine. Error transforming the VM to XML."
    );
    assert_eq!(
        fails(&c.call(
            "one.image.allocate",
            &[
                s(ADMIN),
                s("NAME = i\nPATH = /srv/cloud/images/x\nDESC = \"]]>\"\n")
            ]
        ))
        .0,
        "[ImageAllocate] Error allocating a new image. Error transforming the Image to XML."
    );
    assert_eq!(
        fails(&c.call(
            "one.vn.allocate",
            &[s(ADMIN), s("NAME = n\nTYPE = FIXED\nBRIDGE = br0\nDESC = \"]]>\"\n")]
        ))
        .0,
        "[VirtualNetworkAllocate] Error allocating a new virtual network. Error transforming the Virtual Network to XML."
    );
    assert_eq!(
        fails(&c.call(
            "one.host.allocate",
            &[
                s(ADMIN),
                s("a&b"),
                s("im_dummy"),
                s("vmm_dummy"),
                s("dummy"),
                s("tm_dummy")
            ]
        ))
        .0,
        "[HostAllocate] Error allocating a new host. Error transforming the Group to XML."
    );
    assert_eq!(
        fails(&c.call(
            "one.user.allocate",
            &[s(ADMIN), s("a<b"), s("pw"), s("core")]
        ))
        .0,
        "[UserAllocate] Error allocating a new user. Error transforming the User to XML."
    );
    assert_eq!(
        fails(&c.call("one.group.allocate", &[s(ADMIN), s("g]]>")])).0,
        "[GroupAllocate] Error allocating a new group. Error transforming the Group to XML."
    );
    // Nothing was created, and no id was used: the next objects get the first ids.
    let after =
        rpc_result(&c.call("one.templatepool.info", &[s(ADMIN), i(-2), i(-1), i(-1)])).unwrap();
    assert_eq!(before, after);
    assert_eq!(
        ok_id(&c.call(
            "one.template.allocate",
            &[s(ADMIN), s("NAME = t\nDESC = \"a]]b\"\n")]
        )),
        0
    );
    assert_eq!(allocate_vm(&mut c, ADMIN, "NAME = v\nMEMORY = 64\n"), 0);
    assert_eq!(
        ok_id(&c.call("one.group.allocate", &[s(ADMIN), s("g")])),
        100
    );
}

// --- one.template.instantiate ----------------------------------------------------------------

#[test]
fn template_instantiate_names_the_vm_by_its_argument_only() {
    let d = Daemon::start("semantics-instantiate", &[]);
    let mut c = d.client();
    let tid = ok_id(&c.call(
        "one.template.allocate",
        &[
            s(ADMIN),
            s("NAME = tpl\nNAME = tpl2\nCPU = 0.1\nMEMORY = 64\n"),
        ],
    ));
    let vid = ok_id(&c.call("one.template.instantiate", &[s(ADMIN), i(tid), s("given")]));
    let doc = info(&mut c, "one.vm.info", vid);
    assert_eq!(field(&doc, "NAME").as_deref(), Some("given"));
    assert_eq!(template_names(&doc), ["given"], "{doc}");
    let tmpl = field(&doc, "TEMPLATE").unwrap();
    assert_eq!(
        field(&tmpl, "TEMPLATE_ID").map(|v| cdata(&v)),
        Some(tid.to_string())
    );
    // An empty name: one-<id>, never the template's NAME.
    let vid = ok_id(&c.call("one.template.instantiate", &[s(ADMIN), i(tid), s("")]));
    let doc = info(&mut c, "one.vm.info", vid);
    assert_eq!(field(&doc, "NAME"), Some(format!("one-{vid}")));
    assert_eq!(template_names(&doc), [format!("one-{vid}")], "{doc}");

    // USE on the template is enough: no CREATE VM. A user of a group without the default
    // CREATE rule instantiates a template made usable by everyone; the VM is the user's.
    let gid = ok_id(&c.call("one.group.allocate", &[s(ADMIN), s("guests")]));
    let uid = ok_id(&c.call(
        "one.user.allocate",
        &[s(ADMIN), s("guest"), s("pw"), s("core")],
    ));
    ok_id(&c.call("one.user.chgrp", &[s(ADMIN), i(uid), i(gid)]));
    assert_eq!(
        fails(&c.call("one.vm.allocate", &[s("guest:pw"), s("MEMORY = 64\n")])),
        (
            format!("[VirtualMachineAllocate] User [{uid}] : Not authorized to perform CREATE VM."),
            512
        )
    );
    assert_eq!(
        fails(&c.call("one.template.instantiate", &[s("guest:pw"), i(tid), s("x")])),
        (
            format!("[TemplateInstantiate] User [{uid}] : Not authorized to perform USE TEMPLATE [{tid}]."),
            512
        )
    );
    ok_id(&c.call(
        "one.template.chmod",
        &[
            s(ADMIN),
            i(tid),
            i(-1),
            i(-1),
            i(-1),
            i(-1),
            i(-1),
            i(-1),
            i(1),
            i(-1),
            i(-1),
        ],
    ));
    let vid = ok_id(&c.call(
        "one.template.instantiate",
        &[s("guest:pw"), i(tid), s("mine")],
    ));
    let doc = info(&mut c, "one.vm.info", vid);
    assert_eq!(field(&doc, "UNAME").as_deref(), Some("guest"));
    assert_eq!(field(&doc, "GID"), Some(gid.to_string()));
    // A missing template is looked up first, also for oneadmin.
    assert_eq!(
        fails(&c.call("one.template.instantiate", &[s(ADMIN), i(77), s("x")])),
        (
            "[TemplateInstantiate] Error getting virtual machine template [77].".to_string(),
            1024
        )
    );
}

// --- chmod -----------------------------------------------------------------------------------

fn chmod(c: &mut Client, session: &str, method: &str, id: i32, bits: [i32; 9]) -> String {
    let mut params = vec![s(session), i(id)];
    params.extend(bits.iter().map(|b| i(*b)));
    c.call(method, &params)
}

#[test]
fn chmod_needs_admin_only_when_an_admin_bit_really_changes() {
    let d = Daemon::start("semantics-chmod", &[]);
    let mut c = d.client();
    let uid = ok_id(&c.call(
        "one.user.allocate",
        &[s(ADMIN), s("ann"), s("pw"), s("core")],
    ));
    let tid = ok_id(&c.call(
        "one.template.allocate",
        &[s("ann:pw"), s("NAME = t\nMEMORY = 64\n")],
    ));
    // The full mask the CLI sends (octal 640 = u=rw, g=r), with the ADMIN and OTHER bits as
    // they are: MANAGE is enough, the owner has it.
    let a = chmod(
        &mut c,
        "ann:pw",
        "one.template.chmod",
        tid,
        [1, 1, 0, 1, 0, 0, 0, 0, 0],
    );
    assert_eq!(ok_id(&a), tid);
    let doc = info(&mut c, "one.template.info", tid);
    assert_eq!(field(&doc, "GROUP_U").as_deref(), Some("1"));
    // Setting OWNER_A for real needs ADMIN.
    assert_eq!(
        fails(&chmod(
            &mut c,
            "ann:pw",
            "one.template.chmod",
            tid,
            [1, 1, 1, 1, 0, 0, 0, 0, 0]
        )),
        (
            format!(
                "[TemplateChmod] User [{uid}] : Not authorized to perform ADMIN TEMPLATE [{tid}]."
            ),
            512
        )
    );
    // So does an out-of-range ADMIN bit (it counts as a change); an out-of-range other bit
    // passes authorization and fails the range check.
    assert!(fails(&chmod(
        &mut c,
        "ann:pw",
        "one.template.chmod",
        tid,
        [-1, -1, 2, -1, -1, -1, -1, -1, -1]
    ))
    .0
    .contains("Not authorized to perform ADMIN TEMPLATE"));
    assert_eq!(
        fails(&chmod(
            &mut c,
            "ann:pw",
            "one.template.chmod",
            tid,
            [2, -1, -1, -1, -1, -1, -1, -1, -1]
        )),
        (
            "[TemplateChmod] Error updating permissions. New permission values must be -1, 0 or 1"
                .to_string(),
            8192
        )
    );
    // Once oneadmin gave OWNER_A, the owner may clear it again (a real change, with ADMIN).
    ok_id(&chmod(
        &mut c,
        ADMIN,
        "one.template.chmod",
        tid,
        [-1, -1, 1, -1, -1, -1, -1, -1, -1],
    ));
    ok_id(&chmod(
        &mut c,
        "ann:pw",
        "one.template.chmod",
        tid,
        [1, 1, 0, 1, 0, 0, 0, 0, 0],
    ));
    let doc = info(&mut c, "one.template.info", tid);
    assert_eq!(field(&doc, "OWNER_A").as_deref(), Some("0"));
    // Without MANAGE even an unchanged mask is refused.
    ok_id(&c.call(
        "one.user.allocate",
        &[s(ADMIN), s("bob"), s("pw"), s("core")],
    ));
    assert!(fails(&chmod(
        &mut c,
        "bob:pw",
        "one.template.chmod",
        tid,
        [1, 1, 0, 1, 0, 0, 0, 0, 0]
    ))
    .0
    .contains(&format!(
        "Not authorized to perform MANAGE TEMPLATE [{tid}]"
    )));
    // A persistent image cannot be made public.
    let img = ok_id(&c.call(
        "one.image.allocate",
        &[
            s(ADMIN),
            s("NAME = p\nTYPE = DATABLOCK\nSIZE = 1\nFSTYPE = ext3\nPERSISTENT = YES\n"),
        ],
    ));
    assert_eq!(
        fails(&chmod(
            &mut c,
            ADMIN,
            "one.image.chmod",
            img,
            [-1, -1, -1, 1, -1, -1, -1, -1, -1]
        )),
        (
            "[ImageChmod] Error updating permissions. Image cannot be public and persistent."
                .to_string(),
            8192
        )
    );
}

// --- ACL -------------------------------------------------------------------------------------

#[test]
fn acl_methods_need_manage_acl() {
    let d = Daemon::start("semantics-acl", &[]);
    let mut c = d.client();
    let uid = ok_id(&c.call(
        "one.user.allocate",
        &[s(ADMIN), s("ann"), s("pw"), s("core")],
    ));
    let denied = (
        format!("User [{uid}] : Not authorized to perform MANAGE ACL."),
        512,
    );
    let (m, code) = fails(&c.call("one.acl.info", &[s("ann:pw")]));
    assert_eq!((m, code), (format!("[AclInfo] {}", denied.0), 512));
    let (m, _) = fails(&c.call(
        "one.acl.addrule",
        &[s("ann:pw"), s("0x100000000"), s("0x1400000000"), s("0x1")],
    ));
    assert_eq!(m, format!("[AclAddRule] {}", denied.0));
    let (m, _) = fails(&c.call("one.acl.delrule", &[s("ann:pw"), i(0)]));
    assert_eq!(m, format!("[AclDelRule] {}", denied.0));
    // An identical rule is reported before a malformed one is.
    let (m, code) = fails(&c.call(
        "one.acl.addrule",
        &[s(ADMIN), s("0x200000001"), s("0x2400000000"), s("0x2")],
    ));
    assert_eq!(
        (m.as_str(), code),
        ("[AclAddRule] Rule @1 HOST/* MANAGE already exists", 8192)
    );
    let (m, _) = fails(&c.call(
        "one.acl.addrule",
        &[s(ADMIN), s("0x300000001"), s("0x1400000005"), s("0x10")],
    ));
    assert_eq!(
        m,
        "[AclAddRule] Rule #1 VM/*  is malformed: [user] INDIVIDUAL (#) and GROUP (@) bits are exclusive; when using the ALL bit, [resource] ID must be 0; wrong [rights], it cannot be bigger than 0xF"
    );
}

// --- Leases ----------------------------------------------------------------------------------

fn leases_call(c: &mut Client, method: &str, net: i32, template: &str) -> String {
    c.call(method, &[s(ADMIN), i(net), s(template)])
}

#[test]
fn lease_operations_answer_with_the_3_2_texts() {
    let d = Daemon::start("semantics-leases", &[]);
    let mut c = d.client();
    let fixed = ok_id(&c.call(
        "one.vn.allocate",
        &[s(ADMIN), s("NAME = f\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.1 ]\nLEASES = [ IP = 10.0.0.2 ]\n")],
    ));
    let ranged = ok_id(&c.call(
        "one.vn.allocate",
        &[
            s(ADMIN),
            s("NAME = r\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_ADDRESS = 10.1.0.0/24\n"),
        ],
    ));
    let prefix = "Error modifying network leases.";
    let cases: Vec<(&str, i32, &str, String)> = vec![
        ("one.vn.addleases", fixed, "LEASES = [ IP = 10.0.0.1 ]", format!("[VirtualNetworkAddLeases] {prefix} Error inserting lease, IP 10.0.0.1 already exists")),
        ("one.vn.addleases", fixed, "LEASES = [ IP = 10.0.0.300 ]", format!("[VirtualNetworkAddLeases] {prefix} Error inserting lease, malformed IP = 10.0.0.300")),
        ("one.vn.addleases", fixed, "LEASES = [ IP = 10.0.0.9, MAC = 02:00:zz ]", format!("[VirtualNetworkAddLeases] {prefix} Error inserting lease, malformed MAC = 02:00:zz")),
        ("one.vn.addleases", fixed, "FOO = bar", format!("[VirtualNetworkAddLeases] {prefix} Empty lease description.")),
        ("one.vn.addleases", ranged, "LEASES = [ IP = 10.1.0.9 ]", format!("[VirtualNetworkAddLeases] {prefix} Adding new leases is only supported for FIXED networks.")),
        ("one.vn.rmleases", fixed, "LEASES = [ IP = 10.0.0.7 ]", format!("[VirtualNetworkRemoveLeases] {prefix} Error deleting lease, IP 10.0.0.7 is not part of NET {fixed}")),
        ("one.vn.rmleases", fixed, "LEASES = [ IP = x ]", format!("[VirtualNetworkRemoveLeases] {prefix} Error deleting lease, malformed IP = x")),
        ("one.vn.rmleases", ranged, "LEASES = [ IP = 10.1.0.9 ]", format!("[VirtualNetworkRemoveLeases] {prefix} Removing leases is only supported for FIXED networks.")),
        ("one.vn.hold", fixed, "LEASES = [ IP = 10.0.0.8 ]", format!("[VirtualNetworkHold] {prefix} Lease is not part of the NET.")),
        ("one.vn.hold", ranged, "LEASES = [ IP = 10.1.1.1 ]", format!("[VirtualNetworkHold] {prefix} Lease is not part of the NET.")),
        ("one.vn.release", fixed, "LEASES = [ IP = 10.0.0.2 ]", format!("[VirtualNetworkRelease] {prefix} Lease is not on hold.")),
        ("one.vn.release", fixed, "LEASES = [ IP = bad ]", format!("[VirtualNetworkRelease] {prefix} Wrong Lease format.")),
        ("one.vn.hold", fixed, "LEASES = [ IP = ", format!("[VirtualNetworkHold] {prefix} Parse error. syntax error, unexpected $end, expecting STRING at line 1, columns 14:17")),
    ];
    for (method, net, template, expected) in cases {
        assert_eq!(
            fails(&leases_call(&mut c, method, net, template)),
            (expected, 8192),
            "{method} {template}"
        );
    }
    // A lease in use (held, or by a VM) cannot be removed or held again; a VM's is not on hold.
    ok_id(&leases_call(
        &mut c,
        "one.vn.hold",
        fixed,
        "LEASES = [ IP = 10.0.0.2 ]",
    ));
    assert_eq!(
        fails(&leases_call(&mut c, "one.vn.rmleases", fixed, "LEASES = [ IP = 10.0.0.2 ]")).0,
        format!("[VirtualNetworkRemoveLeases] {prefix} Error deleting lease, IP 10.0.0.2 is currently in use")
    );
    assert_eq!(
        fails(&leases_call(
            &mut c,
            "one.vn.hold",
            fixed,
            "LEASES = [ IP = 10.0.0.2 ]"
        ))
        .0,
        format!("[VirtualNetworkHold] {prefix} Lease is in use.")
    );
    let vid = allocate_vm(
        &mut c,
        ADMIN,
        &format!("MEMORY = 64\nNIC = [ NETWORK_ID = {fixed} ]\n"),
    );
    let doc = info(&mut c, "one.vm.info", vid);
    assert!(doc.contains("<IP><![CDATA[10.0.0.1]]></IP>"), "{doc}");
    assert_eq!(
        fails(&leases_call(
            &mut c,
            "one.vn.release",
            fixed,
            "LEASES = [ IP = 10.0.0.1 ]"
        ))
        .0,
        format!("[VirtualNetworkRelease] {prefix} Lease is not on hold.")
    );
    ok_id(&leases_call(
        &mut c,
        "one.vn.release",
        fixed,
        "LEASES = [ IP = 10.0.0.2 ]",
    ));
    ok_id(&leases_call(
        &mut c,
        "one.vn.addleases",
        fixed,
        "LEASES = [ IP = 10.0.0.3, MAC = 02:00:0A:00:00:33 ]",
    ));
    ok_id(&leases_call(
        &mut c,
        "one.vn.rmleases",
        fixed,
        "LEASES = [ IP = 10.0.0.2 ]",
    ));
    let leases = vn_leases(&mut c, fixed);
    assert_eq!(
        leases
            .iter()
            .map(|l| (l.ip.as_str(), l.mac.as_str(), l.used))
            .collect::<Vec<_>>(),
        [
            ("10.0.0.1", "02:00:0a:00:00:01", true),
            ("10.0.0.3", "02:00:0a:00:00:33", false)
        ]
    );
    // A missing network: authorization (which looks it up) comes first for everyone but
    // uid 0, for whom the template is parsed first.
    assert_eq!(
        fails(&leases_call(
            &mut c,
            "one.vn.hold",
            42,
            "LEASES = [ IP = 1.2.3.4 ]"
        )),
        (
            "[VirtualNetworkHold] Error getting virtual network [42].".to_string(),
            1024
        )
    );
    assert!(fails(&leases_call(&mut c, "one.vn.hold", 42, "LEASES ="))
        .0
        .contains("Parse error."));
}

fn nic_ip(c: &mut Client, vid: i32) -> String {
    let doc = info(c, "one.vm.info", vid);
    let nic = field(&doc, "NIC").unwrap_or_default();
    cdata(&field(&nic, "IP").unwrap_or_default())
}

#[test]
fn fixed_networks_hand_out_leases_round_robin() {
    let d = Daemon::start("semantics-round-robin", &[]);
    let mut c = d.client();
    // Declared out of order: the cursor walks them in IP order.
    let net = ok_id(&c.call(
        "one.vn.allocate",
        &[s(ADMIN), s("NAME = f\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.3 ]\nLEASES = [ IP = 10.0.0.1 ]\nLEASES = [ IP = 10.0.0.2 ]\nLEASES = [ IP = 10.0.0.4 ]\n")],
    ));
    let nic = format!("MEMORY = 64\nNIC = [ NETWORK_ID = {net} ]\n");
    let a = allocate_vm(&mut c, ADMIN, &nic);
    let b = allocate_vm(&mut c, ADMIN, &nic);
    assert_eq!(nic_ip(&mut c, a), "10.0.0.1");
    assert_eq!(nic_ip(&mut c, b), "10.0.0.2");
    action(&mut c, "finalize", a);
    // .1 is free again, but the cursor is past it.
    let e = allocate_vm(&mut c, ADMIN, &nic);
    assert_eq!(nic_ip(&mut c, e), "10.0.0.3");
    // An explicit IP does not move the cursor.
    let x = allocate_vm(
        &mut c,
        ADMIN,
        &format!("MEMORY = 64\nNIC = [ NETWORK_ID = {net}, IP = 10.0.0.1 ]\n"),
    );
    assert_eq!(nic_ip(&mut c, x), "10.0.0.1");
    action(&mut c, "finalize", x);
    // An allocation that takes a lease and then fails leaves the cursor advanced (past .4).
    let (m, _) = fails(&c.call(
        "one.vm.allocate",
        &[
            s(ADMIN),
            s(&format!(
                "MEMORY = 64\nNIC = [ NETWORK_ID = {net} ]\nDISK = [ IMAGE_ID = 99 ]\n"
            )),
        ],
    ));
    assert!(m.contains("Could not get disk image for VM."), "{m}");
    let f = allocate_vm(&mut c, ADMIN, &nic);
    assert_eq!(
        nic_ip(&mut c, f),
        "10.0.0.1",
        "wrapped round, .4 skipped by the failed one"
    );
    let g = allocate_vm(&mut c, ADMIN, &nic);
    assert_eq!(nic_ip(&mut c, g), "10.0.0.4");
    // Full: .1 .2 .3 .4 all used.
    let (m, _) = fails(&c.call("one.vm.allocate", &[s(ADMIN), s(&nic)]));
    assert!(m.ends_with("Could not get virtual network for VM."), "{m}");
}

#[test]
fn ranged_networks_restart_from_the_last_address_handed_out() {
    let d = Daemon::start("semantics-ranged", &[]);
    let mut c = d.client();
    let net = ok_id(&c.call(
        "one.vn.allocate",
        &[s(ADMIN), s("NAME = r\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_ADDRESS = 10.1.0.0\nNETWORK_SIZE = C\n")],
    ));
    let nic = format!("MEMORY = 64\nNIC = [ NETWORK_ID = {net} ]\n");
    let a = allocate_vm(&mut c, ADMIN, &nic);
    let b = allocate_vm(&mut c, ADMIN, &nic);
    assert_eq!(
        (nic_ip(&mut c, a), nic_ip(&mut c, b)),
        ("10.1.0.1".into(), "10.1.0.2".into())
    );
    // The cursor stays on .2: released, it is handed out again at once.
    action(&mut c, "finalize", b);
    let e = allocate_vm(&mut c, ADMIN, &nic);
    assert_eq!(nic_ip(&mut c, e), "10.1.0.2");
    // .1 released: the next search starts at .2, not at the lowest free address.
    action(&mut c, "finalize", a);
    let f = allocate_vm(&mut c, ADMIN, &nic);
    assert_eq!(nic_ip(&mut c, f), "10.1.0.3");
}

#[test]
fn vnet_allocate_checks_ranges_with_the_3_2_texts() {
    let d = Daemon::start("semantics-ranges", &[]);
    let mut c = d.client();
    let cases = [
        (
            "IP_START = 10.0.0.300\n",
            "IP_START 10.0.0.300 is not a valid IP.",
        ),
        (
            "IP_START = 10.0.0.1\n",
            "No NETWORK_ADDRESS in template for Virtual Network.",
        ),
        (
            "NETWORK_ADDRESS = 10.0.0.0/33\n",
            "A CIDR prefix of 33 bits is not valid.",
        ),
        (
            "NETWORK_ADDRESS = 10.0.0.0\nNETWORK_MASK = 255.x\n",
            "NETWORK_MASK 255.x is not a valid network mask.",
        ),
        (
            "NETWORK_ADDRESS = 10.0.0\n",
            "NETWORK_ADDRESS 10.0.0 is not a valid IP.",
        ),
        (
            "NETWORK_ADDRESS = 10.0.0.5/24\n",
            "NETWORK_ADDRESS 10.0.0.5 is not a base address for the network mask 255.255.255.0.",
        ),
        (
            "NETWORK_ADDRESS = 10.0.0.0/24\nIP_START = 10.0.1.1\n",
            "IP_START 10.0.1.1 is not part of the network 10.0.0.0/24.",
        ),
        (
            "NETWORK_ADDRESS = 10.0.0.0/24\nIP_START = 10.0.0.20\nIP_END = 10.0.0.10\n",
            "IP_START 10.0.0.20 cannot be greater than the IP_END 10.0.0.10.",
        ),
    ];
    for (extra, detail) in cases {
        let t = format!("NAME = r\nTYPE = RANGED\nBRIDGE = br0\n{extra}");
        assert_eq!(
            fails(&c.call("one.vn.allocate", &[s(ADMIN), s(&t)])),
            (
                format!(
                    "[VirtualNetworkAllocate] Error allocating a new virtual network. {detail}"
                ),
                8192
            ),
            "{extra}"
        );
    }
    // Both ends without an address: no network is computed, no mask recorded.
    let id = ok_id(&c.call(
        "one.vn.allocate",
        &[
            s(ADMIN),
            s("NAME = r\nTYPE = RANGED\nBRIDGE = br0\nIP_START = 10.9.0.5\nIP_END = 10.9.0.9\n"),
        ],
    ));
    let doc = info(&mut c, "one.vn.info", id);
    assert!(
        doc.contains("<RANGE><IP_START>10.9.0.5</IP_START><IP_END>10.9.0.9</IP_END></RANGE>"),
        "{doc}"
    );
    assert!(!doc.contains("NETWORK_MASK"), "{doc}");
    // FIXED: a bad lease is skipped, the network is made with the others.
    let id = ok_id(&c.call(
        "one.vn.allocate",
        &[s(ADMIN), s("NAME = f\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 1.2.3.4 ]\nLEASES = [ IP = nope ]\nLEASES = [ IP = 1.2.3.4 ]\nLEASES = [ IP = 1.2.3.5, MAC = x ]\n")],
    ));
    assert_eq!(vn_leases(&mut c, id).len(), 1);
}

// --- Persistent images -------------------------------------------------------------------------

fn persistent_image(c: &mut Client, d: &Daemon, name: &str) -> i32 {
    let file = d.dir.join(format!("{name}.img"));
    std::fs::write(&file, vec![7u8; 64 * 1024]).unwrap();
    let img = ok_id(&c.call(
        "one.image.allocate",
        &[
            s(ADMIN),
            s(&format!(
                "NAME = {name}\nPATH = {}\nPERSISTENT = YES\n",
                file.display()
            )),
        ],
    ));
    wait_image(c, img, "1");
    img
}

#[test]
fn a_persistent_image_is_saved_back_when_its_vm_ends() {
    let d = Daemon::start("semantics-persistent", &[]);
    let mut c = d.client();
    let dummy = dummy_host(&mut c, "dummyhost", "tm_dummy");
    let ssh = dummy_host(&mut c, "sshhost", "tm_ssh");
    let img = persistent_image(&mut c, &d, "p");
    let source = cdata(&field(&info(&mut c, "one.image.info", img), "SOURCE").unwrap());
    let vid = allocate_vm(
        &mut c,
        ADMIN,
        &format!("MEMORY = 64\nDISK = [ IMAGE_ID = {img} ]\n"),
    );
    let doc = wait_image(&mut c, img, "2");
    assert_eq!(field(&doc, "RUNNING_VMS").as_deref(), Some("1"));
    // In use: neither made non-persistent nor deleted.
    assert_eq!(
        fails(&c.call("one.image.persistent", &[s(ADMIN), i(img), Param::B(false)])),
        (
            "[ImagePersistent] Could not make image non-persistent: Image cannot be in 'used' state."
                .to_string(),
            8192
        )
    );
    assert_eq!(
        fails(&c.call("one.image.delete", &[s(ADMIN), i(img)])),
        ("[ImageDelete] Can not delete image".to_string(), 8192)
    );
    // On a tm_dummy host the epilog leaves no disk: the move fails and the image is in ERROR.
    ok_id(&c.call("one.vm.deploy", &[s(ADMIN), i(vid), i(dummy)]));
    wait_vm(&mut c, vid, "3", "3");
    action(&mut c, "shutdown", vid);
    wait_vm(&mut c, vid, "6", "0");
    let doc = wait_image(&mut c, img, "5");
    let error = field(&doc, "ERROR").unwrap_or_default();
    assert_eq!(
        cdata(&field(&error, "MESSAGE").unwrap_or_default()),
        format!(
            "Error saving image to the repository: Could not move {}/{vid}/disk.0 to {source}",
            d.dir.display()
        ),
        "{doc}"
    );
    assert_eq!(field(&doc, "RUNNING_VMS").as_deref(), Some("0"));
    // enable turns ERROR into READY without trying again.
    ok_id(&c.call("one.image.enable", &[s(ADMIN), i(img), Param::B(true)]));
    wait_image(&mut c, img, "1");

    // On a host whose transfer driver copies the disk (tm_ssh) the VM's writes come back.
    let vid = allocate_vm(
        &mut c,
        ADMIN,
        &format!("MEMORY = 64\nDISK = [ IMAGE_ID = {img} ]\n"),
    );
    ok_id(&c.call("one.vm.deploy", &[s(ADMIN), i(vid), i(ssh)]));
    wait_vm(&mut c, vid, "3", "3");
    let disk = d.dir.join(format!("{vid}/images/disk.0"));
    std::fs::write(&disk, vec![9u8; 2 * 1024 * 1024]).unwrap();
    action(&mut c, "shutdown", vid);
    wait_vm(&mut c, vid, "6", "0");
    let doc = wait_image(&mut c, img, "1");
    assert!(field(&doc, "ERROR").is_none() || doc.contains("<STATE>1</STATE>"));
    assert_eq!(std::fs::read(&source).unwrap(), vec![9u8; 2 * 1024 * 1024]);
    assert_eq!(field(&doc, "SIZE").as_deref(), Some("2"), "{doc}");

    // A VM that was never deployed gives the image straight back.
    let vid = allocate_vm(
        &mut c,
        ADMIN,
        &format!("MEMORY = 64\nDISK = [ IMAGE_ID = {img} ]\n"),
    );
    wait_image(&mut c, img, "2");
    action(&mut c, "finalize", vid);
    wait_image(&mut c, img, "1");
    // Not in use any more: it can change, and go.
    ok_id(&c.call("one.image.persistent", &[s(ADMIN), i(img), Param::B(false)]));
    ok_id(&c.call("one.image.delete", &[s(ADMIN), i(img)]));
}
