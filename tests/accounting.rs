//! `stratusd accounting` against a real daemon whose VMs went through states with known
//! times: stopped and resumed (two history records), migrated, failed before running, still
//! running, another user's. Every field of the `--json` output (3.2's `oneacct -j`) is checked
//! against the VMs' history records as `one.vm.info` shows them, and the running times are
//! exact to the second for any window.

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn tick() {
    // History times are whole seconds: let each state last at least one.
    std::thread::sleep(Duration::from_millis(1100));
}

/// One history record of a VM document, its fields by name.
#[derive(Debug)]
struct Rec {
    doc: String,
}

impl Rec {
    fn n(&self, tag: &str) -> i64 {
        field(&self.doc, tag).unwrap().parse().unwrap()
    }
    fn s(&self, tag: &str) -> String {
        field(&self.doc, tag).unwrap()
    }
}

fn records(vm: &str) -> Vec<Rec> {
    elements(vm, "HISTORY")
        .into_iter()
        .map(|h| Rec { doc: h.to_string() })
        .collect()
}

fn tvalue(vm: &str, tag: &str) -> String {
    let t = &vm[vm.find("<TEMPLATE>").unwrap()..];
    field(t, tag)
        .unwrap()
        .trim_start_matches("<![CDATA[")
        .trim_end_matches("]]>")
        .to_string()
}

/// Running seconds of a record inside [from, to] (the test's own arithmetic).
fn expected_seconds(r: &Rec, from: i64, to: i64) -> i64 {
    let (rs, re, e) = (r.n("RSTIME"), r.n("RETIME"), r.n("ETIME"));
    if rs == 0 {
        return 0;
    }
    let end = if re != 0 {
        re
    } else if e != 0 {
        e
    } else {
        to
    };
    (end.min(to) - rs.max(from)).max(0)
}

fn accounting(d: &Daemon, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_stratusd"))
        .arg("accounting")
        .args(args)
        .env("ONE_XMLRPC", format!("http://{}/RPC2", d.addr))
        .env("ONE_AUTH", d.dir.join("one_auth_in"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "accounting {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn accounting_follows_the_history_records_to_the_second() {
    let d = Daemon::start("accounting", &["--disable-driver", "tm_stratuslab"]);
    let mut c = d.client();
    let host = |c: &mut Client, name: &str, tm: &str| -> i32 {
        ok(&c.call(
            "one.host.allocate",
            &[
                s(ADMIN),
                s(name),
                s("im_dummy"),
                s("vmm_dummy"),
                s("dummy"),
                s(tm),
            ],
        ))
        .parse()
        .unwrap()
    };
    let h1 = host(&mut c, "node-1", "tm_dummy");
    let h2 = host(&mut c, "node-2", "tm_dummy");
    let bad = host(&mut c, "failhost", "tm_stratuslab");
    let alloc = |c: &mut Client, session: &str, text: String| -> i32 {
        ok(&c.call("one.vm.allocate", &[s(session), s(&text)]))
            .parse()
            .unwrap()
    };
    let on = |h: i32| format!("REQUIREMENTS = \"ID = {h}\"\n");

    // Stopped and resumed: two records.
    let stopper = alloc(&mut c, ADMIN, format!("NAME = stopper\nCPU = 2\nVCPU = 2\nMEMORY = 1024\nDISK = [ TYPE = swap, SIZE = 2048 ]\n{}", on(h1)));
    // Migrated from node-1 to node-2: two records.
    let mover = alloc(
        &mut c,
        ADMIN,
        format!("NAME = mover\nCPU = 0.5\nMEMORY = 512\n{}", on(h1)),
    );
    // Never runs: its prolog fails.
    let failed = alloc(
        &mut c,
        ADMIN,
        format!("NAME = broken\nCPU = 1\nMEMORY = 256\n{}", on(bad)),
    );
    // Another user's VM (registered by StratusLab's default driver on first call).
    let other = alloc(
        &mut c,
        "bob:pw",
        format!("NAME = bobs\nCPU = 1\nMEMORY = 128\n{}", on(h2)),
    );
    wait_vm_state(&mut c, stopper, ("3", "3"));
    wait_vm_state(&mut c, mover, ("3", "3"));
    wait_vm_state(&mut c, other, ("3", "3"));
    wait_vm_state(&mut c, failed, ("7", "0"));
    tick();
    vm_act(&mut c, "stop", stopper);
    ok(&c.call("one.vm.migrate", &[s(ADMIN), i(mover), i(h2), ci(false)]));
    wait_vm_state(&mut c, stopper, ("4", "0"));
    wait_vm_state(&mut c, mover, ("3", "3"));
    tick();
    vm_act(&mut c, "resume", stopper);
    wait_vm_state(&mut c, stopper, ("3", "3"));
    tick();
    vm_act(&mut c, "shutdown", mover);
    wait_vm_state(&mut c, mover, ("6", "0"));
    tick();
    // Everything after this instant is outside the window ending here.
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    tick();

    let docs: Vec<(i32, String)> = [stopper, mover, failed]
        .into_iter()
        .map(|id| (id, ok(&c.call("one.vm.info", &[s(ADMIN), i(id)]))))
        .collect();
    assert_eq!(
        records(&docs[0].1).len(),
        2,
        "stop/resume makes two records"
    );
    assert_eq!(records(&docs[1].1).len(), 2, "migration makes two records");

    // oneadmin's VMs over [0, end]: 3.2's JSON, field by field.
    let json: Value = serde_json::from_str(&accounting(
        &d,
        &["-u", "oneadmin", "--json", "--to", &end.to_string()],
    ))
    .unwrap();
    let users = json.as_object().unwrap();
    assert_eq!(
        users.keys().collect::<Vec<_>>(),
        ["0"],
        "only oneadmin (uid 0)"
    );
    let vms = json["0"]["vms"].as_object().unwrap();
    assert_eq!(vms.len(), 3);
    for (id, doc) in &docs {
        let v = &vms[&id.to_string()];
        let recs = records(doc);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort();
        assert_eq!(sorted_keys, ["network", "slices", "time", "vmid"]);
        assert_eq!(v["vmid"], *id);
        let time: i64 = recs.iter().map(|r| expected_seconds(r, 0, end)).sum();
        assert_eq!(v["time"], time, "VM {id}");
        assert_eq!(v["network"]["vm_id"], *id);
        assert_eq!(v["network"]["net_tx"], field(doc, "NET_TX").unwrap());
        assert_eq!(v["network"]["net_rx"], field(doc, "NET_RX").unwrap());
        assert_eq!(
            v["network"]["ptimestamp"],
            field(doc, "LAST_POLL").unwrap().parse::<i64>().unwrap()
        );
        let slices = v["slices"].as_array().unwrap();
        assert_eq!(slices.len(), recs.len(), "VM {id}");
        for (sl, r) in slices.iter().zip(&recs) {
            for key in [
                "seq", "hid", "pstime", "petime", "rstime", "retime", "estime", "eetime", "reason",
            ] {
                assert_eq!(sl[key], r.n(&key.to_uppercase()), "VM {id} {key}");
            }
            assert_eq!(sl["hostname"], r.s("HOSTNAME"));
            assert_eq!(sl["vm_id"], *id);
            assert_eq!(sl["id"], *id);
            assert_eq!(sl["name"], field(doc, "NAME").unwrap());
            assert_eq!(sl["uid"], 0);
            assert_eq!(sl["gid"], 0);
            assert_eq!(sl["mem"], tvalue(doc, "MEMORY").parse::<i64>().unwrap());
            assert_eq!(sl["cpu"], tvalue(doc, "CPU").parse::<f64>().unwrap());
            let vcpu = if doc.contains("<VCPU>") {
                tvalue(doc, "VCPU").parse::<i64>().unwrap()
            } else {
                0
            };
            assert_eq!(sl["vcpu"], vcpu);
            assert_eq!(
                sl["stime"],
                field(doc, "STIME").unwrap().parse::<i64>().unwrap()
            );
            assert_eq!(
                sl["etime"],
                field(doc, "ETIME").unwrap().parse::<i64>().unwrap()
            );
            assert_eq!(sl.as_object().unwrap().len(), 20);
        }
    }
    // The failed VM never ran; the others ran whole seconds on each record.
    assert_eq!(vms[&failed.to_string()]["time"], 0);
    let mover_recs = records(&docs[1].1);
    assert_eq!(vms[&mover.to_string()]["slices"][0]["hostname"], "node-1");
    assert_eq!(vms[&mover.to_string()]["slices"][1]["hostname"], "node-2");
    assert!(mover_recs[0].n("RETIME") > 0);

    // A window cutting through the stopper's records: the overlap, to the second.
    let stopper_recs = records(&docs[0].1);
    let from = stopper_recs[0].n("RSTIME") + 1;
    let to = stopper_recs[1].n("RSTIME") + 1;
    let json: Value = serde_json::from_str(&accounting(
        &d,
        &[
            "--json",
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ],
    ))
    .unwrap();
    let expected: i64 = stopper_recs
        .iter()
        .map(|r| expected_seconds(r, from, to))
        .sum();
    assert_eq!(json["0"]["vms"][stopper.to_string()]["time"], expected);
    assert!(expected > 0);
    // Without -u: bob too, under his uid.
    let bob_uid = json
        .as_object()
        .unwrap()
        .keys()
        .find(|k| k.as_str() != "0")
        .cloned()
        .expect("bob's VM is in the window");
    assert!(json[&bob_uid]["vms"].get(other.to_string()).is_some());

    // CSV: the same seconds, and the derived figures.
    let csv = accounting(&d, &["-u", "oneadmin", "--csv", "--to", &end.to_string()]);
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("user_id,user,vm_id,vm_name,seconds,hours,cpu,cpu_hours"));
    let row: Vec<String> = lines
        .find(|l| l.split(',').nth(2) == Some(&stopper.to_string()))
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let secs: i64 = stopper_recs
        .iter()
        .map(|r| expected_seconds(r, 0, end))
        .sum();
    assert_eq!(row[4], secs.to_string());
    let cpu_hours: f64 = row[7].parse().unwrap();
    assert!((cpu_hours - 2.0 * secs as f64 / 3600.0).abs() < 1e-5);
    let disk_gb: f64 = row[10].parse().unwrap();
    assert_eq!(disk_gb, 2.0);

    // The table, and 3.2's XML (-x) for one user.
    let table = accounting(&d, &["-u", "0", "--to", &end.to_string()]);
    assert!(table.contains("# User oneadmin (0): 3 VMs"), "{table}");
    assert!(table.contains("Total: 1 user, 3 VMs"), "{table}");
    let xml = accounting(&d, &["-u", "oneadmin", "-x", "--to", &end.to_string()]);
    assert!(xml.starts_with("<user id=\"0\">\n"), "{xml}");
    assert_eq!(xml.matches("<slice seq=").count(), 5);
    assert_eq!(
        field(&xml, "time").unwrap(),
        vms[&stopper.to_string()]["time"].to_string()
    );
}

fn ci(b: bool) -> Param {
    Param::B(b)
}
