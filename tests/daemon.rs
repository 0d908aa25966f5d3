//! The command-line contract: `serve --listen --data-dir` with no config file, ONE_AUTH,
//! readiness on the port, clean exit on SIGTERM, state kept across restarts (also kill -9),
//! ids never reused.

mod common;
use common::*;

#[test]
fn one_auth_sets_the_password_and_sigterm_exits_cleanly() {
    let mut d = Daemon::start("cli", &[]);
    let mut c = d.client();
    let ok = c.call("one.user.info", &[s(ADMIN), i(-1)]);
    assert!(ok.contains("<boolean>1</boolean>"), "{ok}");
    // sha1("password")
    assert!(unescape(&ok).contains("<PASSWORD>5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8</PASSWORD>"));
    let bad = c.call("one.user.info", &[s("oneadmin:nope"), i(-1)]);
    assert!(
        bad.contains("[UserInfo] User couldn&apos;t be authenticated")
            || bad.contains("[UserInfo] User couldn't be authenticated"),
        "{bad}"
    );
    assert!(d.db().exists(), "database under the data dir");
    assert_eq!(d.stop(), Some(0), "SIGTERM exits with status 0");
}

#[test]
fn generated_password_is_written_to_the_default_file() {
    let dir = temp_dir("genpw");
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stratusd"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&dir)
        .env_remove("ONE_AUTH")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let text = read_file(&dir.join("one_auth"));
    let (user, pass) = text.trim().split_once(':').expect("oneadmin:PASSWORD");
    assert_eq!(user, "oneadmin");
    assert!(pass.len() >= 16);
    let mut c = Client::connect(format!("127.0.0.1:{port}").parse().unwrap());
    assert!(c
        .call("one.user.info", &[s(&format!("oneadmin:{pass}")), i(0)])
        .contains("<boolean>1</boolean>"));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn state_survives_restart_and_kill9_and_ids_are_not_reused() {
    let mut d = Daemon::start("restart", &[]);
    let dir = d.dir.clone();
    let mut c = d.client();
    assert!(c
        .call("one.vm.allocate", &[s(ADMIN), s("NAME=a\nMEMORY=64")])
        .contains("<i4>0</i4>"));
    assert!(c
        .call("one.vm.allocate", &[s(ADMIN), s("NAME=b\nMEMORY=64")])
        .contains("<i4>1</i4>"));
    assert!(c
        .call("one.group.allocate", &[s(ADMIN), s("g1")])
        .contains("<i4>100</i4>"));
    assert!(c
        .call("one.group.delete", &[s(ADMIN), i(100)])
        .contains("<boolean>1</boolean>"));
    d.kill9();
    let mut d = Daemon::start_in(dir.clone(), &[]);
    let mut c = d.client();
    let vm = unescape(&c.call("one.vm.info", &[s(ADMIN), i(1)]));
    assert_eq!(field(&vm, "NAME").as_deref(), Some("b"));
    assert!(c
        .call("one.vm.allocate", &[s(ADMIN), s("NAME=c\nMEMORY=64")])
        .contains("<i4>2</i4>"));
    // Group 100 was deleted: the next group is 101, never 100 again.
    assert!(c
        .call("one.group.allocate", &[s(ADMIN), s("g2")])
        .contains("<i4>101</i4>"));
    assert_eq!(d.stop(), Some(0));
    let mut d = Daemon::start_in(dir, &[]);
    let mut c = d.client();
    assert!(c
        .call("one.vm.allocate", &[s(ADMIN), s("NAME=d\nMEMORY=64")])
        .contains("<i4>3</i4>"));
    assert_eq!(d.stop(), Some(0));
}
