use super::*;
use crate::adminctl::doc::parse;

fn history(seq: i64, host: &str, stime: i64, rstime: i64, retime: i64, etime: i64) -> String {
    format!(
        "<HISTORY><SEQ>{seq}</SEQ><HOSTNAME>{host}</HOSTNAME><VM_DIR>/v/</VM_DIR><HID>{seq}</HID><STIME>{stime}</STIME><ETIME>{etime}</ETIME><VMMMAD>vmm_dummy</VMMMAD><VNMMAD>dummy</VNMMAD><TMMAD>tm_dummy</TMMAD><PSTIME>{stime}</PSTIME><PETIME>{rstime}</PETIME><RSTIME>{rstime}</RSTIME><RETIME>{retime}</RETIME><ESTIME>0</ESTIME><EETIME>0</EETIME><REASON>0</REASON></HISTORY>"
    )
}

fn vm(id: i64, uid: i64, histories: &[String]) -> Node {
    parse(&format!(
        "<VM><ID>{id}</ID><UID>{uid}</UID><GID>1</GID><UNAME>u{uid}</UNAME><GNAME>users</GNAME><NAME>vm &amp; {id}</NAME><LAST_POLL>5000</LAST_POLL><STATE>3</STATE><LCM_STATE>3</LCM_STATE><STIME>1000</STIME><ETIME>0</ETIME><DEPLOY_ID>x</DEPLOY_ID><MEMORY>0</MEMORY><CPU>0</CPU><NET_TX>11</NET_TX><NET_RX>22</NET_RX><TEMPLATE><CPU><![CDATA[0.5]]></CPU><MEMORY><![CDATA[2048]]></MEMORY><DISK><SIZE><![CDATA[1024]]></SIZE></DISK><DISK><IMAGE_ID><![CDATA[7]]></IMAGE_ID></DISK><DISK><SOURCE><![CDATA[http://mp/x]]></SOURCE></DISK></TEMPLATE><HISTORY_RECORDS>{}</HISTORY_RECORDS></VM>",
        histories.concat()
    ))
    .unwrap()
}

fn image(id: i64) -> Option<i64> {
    (id == 7).then_some(3072)
}

const NOW: i64 = 10_000;

fn window(from: Option<i64>, to: Option<i64>) -> Window {
    Window { from, to, now: NOW }
}

#[test]
fn running_time_is_the_overlap_of_each_record_with_the_window() {
    // Ran 1100..2000 on host a, migrated, runs since 2100 on host b.
    let doc = vm(
        3,
        5,
        &[
            history(0, "a", 1000, 1100, 2000, 2050),
            history(1, "b", 2050, 2100, 0, 0),
        ],
    );
    let all = VmUsage::of(&doc, &window(None, None), &image).unwrap();
    assert_eq!(all.seconds, 900 + (NOW - 2100));
    assert_eq!(all.slices.len(), 2);
    let part = VmUsage::of(&doc, &window(Some(1500), Some(3000)), &image).unwrap();
    assert_eq!(part.seconds, 500 + 900);
    // Only the second record is in this window.
    let late = VmUsage::of(&doc, &window(Some(2060), None), &image).unwrap();
    assert_eq!(late.slices.len(), 1);
    assert_eq!(late.seconds, NOW - 2100);
    // A window in the future counts up to now only.
    let future = VmUsage::of(&doc, &window(Some(9000), Some(20_000)), &image).unwrap();
    assert_eq!(future.seconds, 1000);
    // Before the VM existed.
    assert!(VmUsage::of(&doc, &window(Some(0), Some(999)), &image).is_none());
    // Figures from the template: CPU 0.5, 2 GiB, disks 1 GiB + image 7 (3 GiB) + unknown.
    assert_eq!(all.disk_bytes, 4096 << 20);
    assert!(!all.disk_recorded);
    assert_eq!(part.cpu_hours(), 0.5 * 1400.0 / 3600.0);
    assert_eq!(part.memory_gb_hours(), 2.0 * 1400.0 / 3600.0);
    assert_eq!(part.disk_gb_hours(), 4.0 * 1400.0 / 3600.0);
}

#[test]
fn a_record_that_never_ran_counts_nothing() {
    let doc = vm(4, 5, &[history(0, "a", 1000, 0, 0, 1200)]);
    let u = VmUsage::of(&doc, &window(None, None), &image).unwrap();
    assert_eq!(u.seconds, 0);
    assert_eq!(u.slices.len(), 1);
    // A record closed while running, without a running end: up to its end.
    let failed = vm(5, 5, &[history(0, "a", 1000, 1100, 0, 1300)]);
    assert_eq!(
        VmUsage::of(&failed, &window(None, None), &image)
            .unwrap()
            .seconds,
        200
    );
}

#[test]
fn the_json_is_3_2_oneacct_s() {
    let a = VmUsage::of(
        &vm(3, 5, &[history(0, "a", 1000, 1100, 2000, 2050)]),
        &window(None, None),
        &image,
    )
    .unwrap();
    let users = by_user(vec![a]);
    assert_eq!(
        json_3_2(&users),
        "{\"5\":{\"vms\":{\"3\":{\"slices\":[{\"vm_id\":3,\"hid\":0,\"hostname\":\"a\",\"seq\":0,\"pstime\":1000,\"petime\":1100,\"rstime\":1100,\"retime\":2000,\"estime\":0,\"eetime\":0,\"reason\":0,\"id\":3,\"name\":\"vm & 3\",\"uid\":5,\"gid\":1,\"mem\":2048,\"cpu\":0.5,\"vcpu\":0,\"stime\":1000,\"etime\":0}],\"time\":900,\"network\":{\"ptimestamp\":5000,\"vm_id\":3,\"net_tx\":\"11\",\"net_rx\":\"22\"},\"vmid\":3}}}}"
    );
    let parsed: serde_json::Value = serde_json::from_str(&json_3_2(&users)).unwrap();
    assert_eq!(parsed["5"]["vms"]["3"]["time"], 900);
    let xml = xml_3_2(&users);
    assert!(
        xml.starts_with(
            "<user id=\"5\">\n  <vm id=\"3\">\n    <name>vm &amp; 3</name>\n    <time>900</time>\n"
        ),
        "{xml}"
    );
    assert!(xml.contains("    <slice seq=\"0\">\n      <vm_id>3</vm_id>\n"));
    let csv_text = csv(&users);
    assert_eq!(csv_text.lines().next(), Some(CSV_HEADER));
    assert_eq!(
        csv_text.lines().nth(1),
        Some(
            "5,u5,3,vm & 3,900,0.250000,0.5,0.125000,2048,0.500000,4.000,1.000000,22,11,4294967296"
        )
    );
}

#[test]
fn recorded_disk_sizes_replace_the_templates_estimate() {
    let doc = parse(
        "<VM_DISKS><VM><ID>3</ID><DISK><DISK_ID>0</DISK_ID><KIND>snapshot</KIND><BYTES>3146240</BYTES></DISK><DISK><DISK_ID>2</DISK_ID><KIND>pdisk</KIND><BYTES>2147483648</BYTES></DISK></VM><VM><ID>8</ID></VM></VM_DISKS>",
    )
    .unwrap();
    let recorded = parse_recorded_disks(&doc);
    assert_eq!(recorded.get(&3), Some(&(3_146_240 + 2_147_483_648)));
    assert_eq!(
        recorded.get(&8),
        Some(&0),
        "a VM whose disks are all context"
    );
    let mut u = VmUsage::of(
        &vm(3, 5, &[history(0, "a", 1000, 1100, 2000, 2050)]),
        &window(None, None),
        &image,
    )
    .unwrap();
    u.set_recorded_disks(recorded[&3]);
    assert!(u.disk_recorded);
    let gb = (3_146_240.0 + 2_147_483_648.0) / 1_073_741_824.0;
    assert_eq!(u.disk_gb(), gb);
    assert_eq!(u.disk_gb_hours(), gb * 900.0 / 3600.0);
}

#[test]
fn users_group_their_vms() {
    let w = window(None, None);
    let mk = |id, uid| {
        VmUsage::of(
            &vm(id, uid, &[history(0, "a", 1000, 1100, 1200, 1300)]),
            &w,
            &image,
        )
        .unwrap()
    };
    let users = by_user(vec![mk(9, 2), mk(1, 5), mk(4, 2)]);
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].uid, 2);
    assert_eq!(
        users[0].vms.iter().map(|v| v.id).collect::<Vec<_>>(),
        vec![4, 9]
    );
    assert_eq!(users[0].seconds(), 200);
    let t = table(&users, &w);
    assert!(t.contains("# User u2 (2): 2 VMs"), "{t}");
    assert!(t.contains("Total: 2 users, 3 VMs"), "{t}");
}

#[test]
fn times_on_the_command_line() {
    assert_eq!(parse_time("1700000000"), Some(1_700_000_000));
    assert_eq!(parse_time("2024-01-02Z"), Some(1_704_153_600));
    assert_eq!(
        parse_time("2024-01-02T03:04:05Z"),
        Some(1_704_153_600 + 3 * 3600 + 4 * 60 + 5)
    );
    assert_eq!(parse_time("1970-01-01 00:00Z"), Some(0));
    // Local time: whatever the zone, one day later is 86,400 s later (no DST in January).
    let a = parse_time("2024-01-02").unwrap();
    let b = parse_time("2024-01-03 00:00:00").unwrap();
    assert_eq!(b - a, 86_400);
    for bad in [
        "",
        "2024-13-01",
        "2024-01-02 25:00",
        "yesterday",
        "2024-01",
        "12:00",
    ] {
        assert_eq!(parse_time(bad), None, "{bad}");
    }
}
