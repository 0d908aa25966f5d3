//! Restart safety on simulated (libvirt test driver) hosts: after `kill -9` and a restart the
//! database and the hypervisor agree again — running VMs keep running, pending ones get placed,
//! finished ones stay finished, and nothing is lost or duplicated.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn vm_state(c: &mut Client, id: i32) -> (String, String) {
    let doc = unescape(&c.call("one.vm.info", &[s(ADMIN), i(id)]));
    (
        field(&doc, "STATE").unwrap_or_default(),
        field(&doc, "LCM_STATE").unwrap_or_default(),
    )
}

fn wait_state(c: &mut Client, id: i32, want: (&str, &str)) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = vm_state(c, id);
        if (got.0.as_str(), got.1.as_str()) == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kill9_and_restart_keeps_vms_and_domains_consistent() {
    let mut d = Daemon::start(
        "restart-sim",
        &["--default-host", "sim1", "--vm-polling-interval", "1"],
    );
    let dir = d.dir.clone();
    let mut c = d.client();
    for n in 0..3 {
        let a = c.call(
            "one.vm.allocate",
            &[s(ADMIN), s(&format!("NAME=vm{n}\nCPU=1\nMEMORY=128"))],
        );
        assert!(a.contains(&format!("<i4>{n}</i4>")), "{a}");
    }
    for n in 0..3 {
        assert_eq!(
            wait_state(&mut c, n, ("3", "3")),
            ("3".into(), "3".into()),
            "vm {n} running"
        );
    }
    assert!(c
        .call("one.vm.action", &[s(ADMIN), s("shutdown"), i(2)])
        .contains("<boolean>1</boolean>"));
    assert_eq!(wait_state(&mut c, 2, ("6", "0")), ("6".into(), "0".into()));
    // A VM that cannot be placed yet (no capacity: 16 GiB hosts) stays pending across the crash.
    assert!(c
        .call(
            "one.vm.allocate",
            &[s(ADMIN), s("NAME=big\nCPU=1\nMEMORY=100000")]
        )
        .contains("<i4>3</i4>"));
    d.kill9();

    let mut d = Daemon::start_in(dir, &["--vm-polling-interval", "1"]);
    let mut c = d.client();
    // Give the first VM polls time to run: a domain missing after the restart would make the
    // VM UNKNOWN (16) here.
    std::thread::sleep(Duration::from_millis(2500));
    for n in 0..2 {
        assert_eq!(
            vm_state(&mut c, n),
            ("3".into(), "3".into()),
            "vm {n} still running after restart"
        );
    }
    assert_eq!(vm_state(&mut c, 2), ("6".into(), "0".into()));
    assert_eq!(vm_state(&mut c, 3), ("1".into(), "0".into()));
    // Host accounting was persisted with the placements: two running VMs.
    let host = unescape(&c.call("one.host.info", &[s(ADMIN), i(0)]));
    assert_eq!(field(&host, "RUNNING_VMS").as_deref(), Some("2"));
    assert_eq!(
        field(&host, "MEM_USAGE").as_deref(),
        Some(&*(2 * 128 * 1024).to_string())
    );
    // The restored domains really exist: shutting them down works and ends in DONE.
    for n in 0..2 {
        assert!(c
            .call("one.vm.action", &[s(ADMIN), s("shutdown"), i(n)])
            .contains("<boolean>1</boolean>"));
        assert_eq!(wait_state(&mut c, n, ("6", "0")), ("6".into(), "0".into()));
    }
    assert_eq!(d.stop(), Some(0));
}
