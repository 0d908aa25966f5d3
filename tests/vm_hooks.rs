//! VM_HOOK: commands run as a VM enters CREATE, PROLOG, RUNNING, SHUTDOWN and DONE, with $VMID
//! and $TEMPLATE substituted; a failing hook does not disturb the life cycle.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn wait_for(path: &std::path::Path, lines: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = read_file(path);
        let got: Vec<String> = text.lines().map(str::to_string).collect();
        if got.len() >= lines || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hooks_fire_on_entering_states() {
    let dir = temp_dir("hooks");
    let out = dir.join("hook.out");
    let script = dir.join("record.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", out.display()),
    )
    .unwrap();
    let _ = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status();
    let mut cfg = String::new();
    for on in ["CREATE", "PROLOG", "RUNNING", "SHUTDOWN", "DONE"] {
        cfg.push_str(&format!("[[vm_hook]]\nname = \"h_{on}\"\non = \"{on}\"\ncommand = \"{}\"\narguments = \"{on} $VMID\"\n\n", script.display()));
    }
    // A template hook, and a broken one that must not disturb anything.
    cfg.push_str(&format!(
        "[[vm_hook]]\non = \"RUNNING\"\ncommand = \"{}\"\narguments = \"TPL $TEMPLATE\"\n\n",
        script.display()
    ));
    cfg.push_str("[[vm_hook]]\non = \"RUNNING\"\ncommand = \"/nonexistent/hook\"\n");
    let cfg_path = dir.join("stratusd.toml");
    std::fs::write(&cfg_path, cfg).unwrap();
    let d = Daemon::start_in(
        dir.clone(),
        &[
            "--config",
            cfg_path.to_str().unwrap(),
            "--default-host",
            "h1",
        ],
    );
    let mut c = d.client();
    // The default host is monitored about a second after start.
    let a = c.call(
        "one.vm.allocate",
        &[s(ADMIN), s("NAME=hooked\nCPU=1\nMEMORY=64")],
    );
    assert!(a.contains("<i4>0</i4>"), "{a}");
    let got = wait_for(&out, 4);
    assert!(got.contains(&"CREATE 0".to_string()), "{got:?}");
    assert!(got.contains(&"PROLOG 0".to_string()), "{got:?}");
    assert!(got.contains(&"RUNNING 0".to_string()), "{got:?}");
    let tpl = got
        .iter()
        .find(|l| l.starts_with("TPL "))
        .expect("template hook ran");
    use base64::Engine;
    let doc = base64::engine::general_purpose::STANDARD
        .decode(tpl[4..].trim())
        .unwrap();
    assert!(String::from_utf8(doc)
        .unwrap()
        .starts_with("<VM><ID>0</ID>"));
    let a = c.call("one.vm.action", &[s(ADMIN), s("shutdown"), i(0)]);
    assert!(a.contains("<boolean>1</boolean>"), "{a}");
    let got = wait_for(&out, 6);
    assert!(got.contains(&"SHUTDOWN 0".to_string()), "{got:?}");
    assert!(got.contains(&"DONE 0".to_string()), "{got:?}");
    let vm = unescape(&c.call("one.vm.info", &[s(ADMIN), i(0)]));
    assert_eq!(field(&vm, "STATE").as_deref(), Some("6"));
}
