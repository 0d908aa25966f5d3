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

fn image_doc(c: &mut Client, id: i32) -> Result<String, (String, i32)> {
    rpc_result(&c.call("one.image.info", &[s(ADMIN), i(id)]))
}

fn image_state(c: &mut Client, id: i32) -> String {
    let doc = image_doc(c, id).expect("image.info");
    field(&doc, "STATE").unwrap_or_default()
}

/// Waits until image `id` leaves LOCKED (4); its document then.
fn wait_image_decided(c: &mut Client, id: i32) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let doc = image_doc(c, id).expect("image.info");
        if field(&doc, "STATE").as_deref() != Some("4") {
            return doc;
        }
        assert!(Instant::now() < deadline, "image {id} stays LOCKED: {doc}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Opens the named pipe `fifo` for writing once a reader has it open (a copy thread of the
/// daemon); `None` if no reader came within `wait`.
fn open_pipe_writer(fifo: &std::path::Path, wait: Duration) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let deadline = Instant::now() + wait;
    loop {
        // Without a reader, a non-blocking open for writing fails (ENXIO) instead of waiting.
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(probe) => {
                // A reader is there: a blocking descriptor opens at once.
                let writer = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
                drop(probe);
                return Some(writer);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {}
            Err(e) => panic!("opening {}: {e}", fifo.display()),
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn copy_temporaries(repo: &std::path::Path) -> Vec<(String, u64)> {
    std::fs::read_dir(repo)
        .map(|it| {
            it.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
                .map(|e| {
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    (e.file_name().to_string_lossy().to_string(), len)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn copy_intents_left(db: &std::path::Path) -> usize {
    let db = rusqlite::Connection::open(db).unwrap();
    let bodies: Vec<String> = db
        .prepare("SELECT body FROM outbox")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    bodies.iter().filter(|b| b.contains("copy_image")).count()
}

/// The body of `GET /metrics`.
fn get_metrics(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

/// `one.image.allocate` copies survive a kill -9 (issue 18): two copies paused mid-way (their
/// sources are named pipes the test feeds), two more queued behind them (the copy threads are
/// bounded), one of the paused images deleted meanwhile. After the restart every LOCKED image
/// with its copy intent gets its copy run again from scratch and becomes READY with the right
/// bytes; the deleted one's copy is dropped without touching its source; no temporary file is
/// left, the repository holds exactly the images' files and the outbox is empty.
#[test]
fn an_image_copy_cut_by_kill9_runs_again_at_the_restart() {
    let dir = temp_dir("restart-image-copy");
    let import = dir.join("import");
    std::fs::create_dir_all(&import).unwrap();
    let config = dir.join("stratusd.toml");
    std::fs::write(
        &config,
        format!("image_import_dirs = [\"{}\"]\n", import.display()),
    )
    .unwrap();
    let (fifo_a, fifo_b) = (dir.join("a.fifo"), dir.join("b.fifo"));
    for fifo in [&fifo_a, &fifo_b] {
        let made = std::process::Command::new("mkfifo")
            .arg(fifo)
            .status()
            .expect("mkfifo (coreutils) runs");
        assert!(made.success());
    }
    let content_a: Vec<u8> = (0..3 * 1024 * 1024 + 123)
        .map(|i| (i % 253) as u8)
        .collect();
    let content_c: Vec<u8> = (0..2 * 1024 * 1024 + 7).map(|i| (i % 241) as u8).collect();
    std::fs::write(import.join("c.img"), &content_c).unwrap();
    let repo = dir.join("images");
    let args = ["--config", config.to_str().unwrap()];
    let metrics: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let metrics_arg = metrics.to_string();
    let mut d = Daemon::start_in(
        dir.clone(),
        &[args[0], args[1], "--metrics-listen", &metrics_arg],
    );
    let mut c = d.client();
    let allocate = |c: &mut Client, session: &str, template: String| -> i32 {
        let answer = c.call("one.image.allocate", &[s(session), s(&template)]);
        rpc_result(&answer)
            .unwrap_or_else(|e| panic!("image.allocate: {e:?}"))
            .parse()
            .unwrap()
    };
    let path =
        |name: &str, p: &std::path::Path| format!("NAME = {name}\nPATH = \"{}\"\n", p.display());
    // oneadmin's group may copy any file, a pipe included: these two copies pause mid-way.
    let a = allocate(&mut c, ADMIN, path("a", &fifo_a));
    let b = allocate(&mut c, ADMIN, path("b", &fifo_b));
    // Queued behind them: an ordinary user's file from the import directory, and a datablock.
    let cc = allocate(&mut c, "alice:pw", path("c", &import.join("c.img")));
    let db_image = allocate(
        &mut c,
        ADMIN,
        "NAME = blank\nTYPE = DATABLOCK\nSIZE = 1\nFSTYPE = raw\n".into(),
    );
    let mut writer_a =
        open_pipe_writer(&fifo_a, Duration::from_secs(20)).expect("copy of a starts");
    let mut writer_b =
        open_pipe_writer(&fifo_b, Duration::from_secs(20)).expect("copy of b starts");
    use std::io::Write;
    writer_a.write_all(&content_a[..1024 * 1024]).unwrap();
    writer_b.write_all(&content_a[..100 * 1024]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while copy_temporaries(&repo).iter().map(|(_, n)| n).sum::<u64>() < (1024 + 100) * 1024 {
        assert!(
            Instant::now() < deadline,
            "the copies did not write their temporary files: {:?}",
            copy_temporaries(&repo)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for id in [a, b, cc, db_image] {
        assert_eq!(
            image_state(&mut c, id),
            "4",
            "image {id} is LOCKED mid-copy"
        );
    }
    // Long work: the two copies under way are published with their progress.
    let scrape = get_metrics(metrics);
    for (id, done) in [(a, 1024 * 1024), (b, 100 * 1024)] {
        let line = format!(
            "long_work_done_bytes{{kind=\"image_repository_copy\",item=\"image {id}\"}} {done}"
        );
        assert!(
            scrape.contains(&line),
            "no {line:?} in the metrics:\n{scrape}"
        );
    }
    // Deleting a LOCKED image is answered as before, while its copy runs.
    let deleted = c.call("one.image.delete", &[s(ADMIN), i(b)]);
    assert_eq!(rpc_result(&deleted), Ok(b.to_string()));
    d.kill9();
    drop((writer_a, writer_b));
    assert_eq!(copy_temporaries(&repo).len(), 2, "killed mid-copy");
    assert_eq!(
        copy_intents_left(&dir.join("stratusd.db")),
        4,
        "every copy not finished is still an intent"
    );

    let d = Daemon::start_in(dir.clone(), &args);
    let mut c = d.client();
    // The half-written copy was not taken for the image: a is LOCKED until its copy runs again.
    assert_eq!(image_state(&mut c, a), "4");
    // The copies queued behind it run meanwhile (the copy threads are not all held by a).
    for (id, want) in [(cc, &content_c[..]), (db_image, &[][..])] {
        let doc = wait_image_decided(&mut c, id);
        assert_eq!(
            field(&doc, "STATE").as_deref(),
            Some("1"),
            "image {id}: {doc}"
        );
        let source = field(&doc, "SOURCE").unwrap();
        assert!(
            std::fs::read(&source).unwrap() == want,
            "image {id}'s bytes"
        );
    }
    // a's copy starts over: it reads its source from the beginning.
    let mut writer_a =
        open_pipe_writer(&fifo_a, Duration::from_secs(20)).expect("copy of a runs again");
    writer_a.write_all(&content_a).unwrap();
    drop(writer_a);
    let doc = wait_image_decided(&mut c, a);
    assert_eq!(field(&doc, "STATE").as_deref(), Some("1"), "{doc}");
    assert_eq!(field(&doc, "SIZE").as_deref(), Some("3"), "{doc}");
    let source_a = field(&doc, "SOURCE").unwrap();
    assert!(std::fs::read(&source_a).unwrap() == content_a, "a's bytes");
    // A copy whose image is deleted while it runs stops within 16 MiB more: the source is
    // closed (the feeder's write breaks) and nothing of it stays in the repository.
    let fifo_e = dir.join("e.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo_e)
        .status()
        .expect("mkfifo (coreutils) runs");
    assert!(made.success());
    let e = allocate(&mut c, ADMIN, path("e", &fifo_e));
    let mut writer_e =
        open_pipe_writer(&fifo_e, Duration::from_secs(20)).expect("copy of e starts");
    writer_e.write_all(&content_a[..1024 * 1024]).unwrap();
    let deleted = c.call("one.image.delete", &[s(ADMIN), i(e)]);
    assert_eq!(rpc_result(&deleted), Ok(e.to_string()));
    let piece = vec![7u8; 1024 * 1024];
    let mut fed = 1;
    let broke = loop {
        match writer_e.write_all(&piece) {
            Ok(()) => fed += 1,
            Err(err) => break err,
        }
        assert!(
            fed < 64,
            "the copy of deleted image {e} still reads after {fed} MiB"
        );
    };
    assert_eq!(broke.kind(), std::io::ErrorKind::BrokenPipe);
    drop(writer_e);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !copy_temporaries(&repo).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the abandoned copy's temporary file stays"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The deleted image's copy was dropped without opening its source again.
    assert!(image_doc(&mut c, b).is_err());
    assert!(open_pipe_writer(&fifo_b, Duration::from_millis(500)).is_none());
    // The repository holds exactly the three images' files, no temporary one.
    let mut files: Vec<String> = std::fs::read_dir(&repo)
        .unwrap()
        .flatten()
        .map(|e| e.path().to_string_lossy().to_string())
        .collect();
    files.sort();
    let mut sources: Vec<String> = [a, cc, db_image]
        .iter()
        .map(|id| field(&image_doc(&mut c, *id).unwrap(), "SOURCE").unwrap())
        .collect();
    sources.sort();
    assert_eq!(files, sources);
    // Every copy intent is done.
    let deadline = Instant::now() + Duration::from_secs(10);
    while copy_intents_left(&d.db()) > 0 {
        assert!(Instant::now() < deadline, "copy intents left in the outbox");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
