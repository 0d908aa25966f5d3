//! Simulated hosts (libvirt's test driver) with fewer open connections than hosts: an evicted
//! host's domains are re-created on demand, so polls, reboots and shutdowns keep working.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn state_of(c: &mut Client, id: i32) -> (String, String) {
    let doc = unescape(&c.call("one.vm.info", &[s(ADMIN), i(id)]));
    (
        field(&doc, "STATE").unwrap_or_default(),
        field(&doc, "LCM_STATE").unwrap_or_default(),
    )
}

fn wait(c: &mut Client, id: i32, want: (&str, &str)) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = state_of(c, id);
        if (got.0.as_str(), got.1.as_str()) == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn evicted_simulated_hosts_keep_their_vms() {
    let dir = temp_dir("simconn");
    let cfg = dir.join("stratusd.toml");
    std::fs::write(
        &cfg,
        "simulated_host_connections = 2\nvm_polling_interval = 1\n",
    )
    .unwrap();
    let d = Daemon::start_in(dir, &["--config", cfg.to_str().unwrap()]);
    let mut c = d.client();
    for h in 0..4 {
        let a = c.call(
            "one.host.allocate",
            &[
                s(ADMIN),
                s(&format!("sim{h}")),
                s("im_dummy"),
                s("vmm_dummy"),
                s("dummy"),
                s("tm_dummy"),
            ],
        );
        assert!(a.contains("<boolean>1</boolean>"), "{a}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    for v in 0..8 {
        assert!(c
            .call("one.vm.allocate", &[s(ADMIN), s("CPU=1\nMEMORY=64")])
            .contains(&format!("<i4>{v}</i4>")));
    }
    for v in 0..8 {
        assert_eq!(
            wait(&mut c, v, ("3", "3")),
            ("3".into(), "3".into()),
            "vm {v}"
        );
    }
    // Spread over the four hosts (striping), i.e. more hosts than open connections.
    let pool = unescape(&c.call("one.hostpool.info", &[s(ADMIN)]));
    assert_eq!(
        pool.matches("<RUNNING_VMS>2</RUNNING_VMS>").count(),
        4,
        "{pool}"
    );
    // Several poll passes: no VM may turn UNKNOWN because its host's connection was closed.
    std::thread::sleep(Duration::from_millis(3000));
    for v in 0..8 {
        assert_eq!(
            state_of(&mut c, v),
            ("3".into(), "3".into()),
            "vm {v} after polls"
        );
    }
    for v in 0..8 {
        assert!(c
            .call("one.vm.action", &[s(ADMIN), s("reboot"), i(v)])
            .contains("<boolean>1</boolean>"));
        assert!(c
            .call("one.vm.action", &[s(ADMIN), s("shutdown"), i(v)])
            .contains("<boolean>1</boolean>"));
    }
    for v in 0..8 {
        assert_eq!(
            wait(&mut c, v, ("6", "0")),
            ("6".into(), "0".into()),
            "vm {v} done"
        );
    }
}
