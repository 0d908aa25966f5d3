//! Scale: 1,000 simulated hosts and 10,000 VMs, all placed and RUNNING, through the real
//! daemon. Timing is printed, never asserted (benchmarks measure; tests check behaviour).

mod common;
use common::*;
use std::time::{Duration, Instant};

const HOSTS: i32 = 1000;
const VMS: i32 = 10_000;

fn count(doc: &str, needle: &str) -> usize {
    doc.matches(needle).count()
}

#[test]
fn thousand_hosts_ten_thousand_vms() {
    let d = Daemon::start("scale", &["--host-monitoring-interval", "3600"]);
    let mut c = d.client();
    let t0 = Instant::now();
    for h in 0..HOSTS {
        let a = c.call(
            "one.host.allocate",
            &[
                s(ADMIN),
                s(&format!("node{h:04}")),
                s("im_dummy"),
                s("vmm_dummy"),
                s("dummy"),
                s("tm_dummy"),
            ],
        );
        assert!(a.contains("<boolean>1</boolean>"), "{a}");
    }
    // Wait until every host is monitored (capacity known).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pool = unescape(&c.call("one.hostpool.info", &[s(ADMIN)]));
        if count(&pool, "<STATE>2</STATE>") == HOSTS as usize {
            break;
        }
        assert!(Instant::now() < deadline, "hosts not monitored in time");
        std::thread::sleep(Duration::from_millis(200));
    }
    let hosts_ready = t0.elapsed();
    let t1 = Instant::now();
    for v in 0..VMS {
        let a = c.call("one.vm.allocate", &[s(ADMIN), s("CPU=0.1\nMEMORY=64")]);
        assert!(a.contains(&format!("<i4>{v}</i4>")), "{a}");
    }
    let allocated = t1.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    let running = loop {
        let pool = c.call("one.vmpool.info", &[s(ADMIN), i(-2), i(-1), i(-1), i(3)]);
        let n = count(&pool, "&lt;LCM_STATE&gt;3&lt;/LCM_STATE&gt;");
        if n == VMS as usize {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {VMS} VMs running after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let all_running = t1.elapsed();
    // Every host got its share: 10 VMs each (least loaded first, RANK-less striping).
    let pool = unescape(&c.call("one.hostpool.info", &[s(ADMIN)]));
    assert_eq!(
        count(&pool, "<RUNNING_VMS>10</RUNNING_VMS>"),
        HOSTS as usize,
        "uneven placement"
    );
    eprintln!(
        "scale: {HOSTS} hosts monitored in {hosts_ready:?}; {VMS} VMs allocated in {allocated:?} ({:.0}/s), {running} RUNNING after {all_running:?} ({:.0}/s)",
        VMS as f64 / allocated.as_secs_f64(),
        VMS as f64 / all_running.as_secs_f64()
    );

    // The admin command line pages through the 10,000 VMs (500 ids a call): the table has a
    // row per VM, the JSON listing every VM once, in id order.
    let cli = |args: &[&str]| {
        let t = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratusd"))
            .args(args)
            .env("ONE_XMLRPC", format!("http://{}/RPC2", d.addr))
            .env("ONE_AUTH", d.dir.join("one_auth_in"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (String::from_utf8(out.stdout).unwrap(), t.elapsed())
    };
    let (table, took) = cli(&["vm", "list"]);
    assert_eq!(
        table.lines().count(),
        VMS as usize + 1,
        "a header and a row per VM"
    );
    assert_eq!(
        table.lines().filter(|l| l.contains("runn")).count(),
        VMS as usize
    );
    let (json, took_json) = cli(&["vm", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ids: Vec<i64> = v["VM_POOL"]["VM"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| vm["ID"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (0..VMS as i64).collect::<Vec<_>>());
    eprintln!("scale: stratusd vm list of {VMS} VMs {took:?}, --json {took_json:?}");
}
