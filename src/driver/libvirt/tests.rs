//! Tests against real libvirt: the in-process test driver on node files made by
//! [`write_test_node`] (no daemon), and one `qemu:///embed` connection check.

// A failed `expect` is how these tests report a failed step; the crate-wide deny is for
// production paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// A scratch directory removed when the test ends (the crate has no tempfile dependency).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(label: &str) -> ScratchDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "stratusd-libvirt-{label}-{}-{unique}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch directory");
        ScratchDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const GIB_KIB: u64 = 1024 * 1024;

fn simulated_host(dir: &ScratchDir, name: &str, cpus: u32, memory_kib: u64) -> LibvirtHost {
    let (_, uri) = write_test_node(dir.path(), name, cpus, memory_kib).expect("write node file");
    LibvirtHost::open(&uri).expect("open simulated host")
}

/// A VM shaped like the reference StratusLab VM, for the test driver.
fn test_vm(vid: u32, images: &Path) -> DomainSpec {
    let disk = |index: usize, target: &str| DiskSpec {
        source: images.join(format!("disk.{index}")),
        target: target.into(),
        bus: Some("virtio".into()),
        driver: Some("raw".into()),
        cache: Some("default".into()),
        ..DiskSpec::default()
    };
    DomainSpec {
        name: format!("one-{vid}"),
        uuid: None,
        domain_type: "test".into(),
        vcpu: Some(1),
        memory_mib: 256,
        os: OsSpec {
            arch: "x86_64".into(),
            boot: Some("hd".into()),
            ..OsSpec::default()
        },
        disks: vec![
            disk(0, "vda"),
            disk(1, "vdb"),
            DiskSpec {
                source: images.join("disk.2"),
                device: DiskDevice::Cdrom,
                target: "hdd".into(),
                readonly: true,
                driver: Some("raw".into()),
                ..DiskSpec::default()
            },
        ],
        nics: vec![NicSpec {
            bridge: Some("br0".into()),
            mac: Some(format!("02:00:86:9e:4b:{:02x}", vid % 256)),
            model: Some("virtio".into()),
            ..NicSpec::default()
        }],
        graphics: Some(GraphicsSpec {
            port: Some(-1),
            ..GraphicsSpec::default()
        }),
        features: FeaturesSpec {
            acpi: true,
            pae: false,
        },
        serial_file: Some(images.join("console.log")),
        emulator: Some("/usr/bin/qemu-kvm".into()),
        ..DomainSpec::default()
    }
}

#[test]
fn node_info_reports_what_the_node_file_declares() {
    let dir = ScratchDir::new("nodeinfo");
    let host = simulated_host(&dir, "node01", 4, 8 * GIB_KIB);
    let node = host.node_info().expect("node info");
    assert_eq!(
        node,
        NodeInfo {
            cpus: 4,
            mhz: TEST_NODE_MHZ,
            model: TEST_NODE_CPU_MODEL.to_string(),
            memory_kib: 8 * GIB_KIB,
            free_memory_kib: 8 * GIB_KIB,
        }
    );
    assert_eq!(host.list_domains().expect("list"), Vec::<String>::new());
}

#[test]
fn full_life_cycle_on_a_simulated_host() {
    let dir = ScratchDir::new("lifecycle");
    let host = simulated_host(&dir, "node01", 4, 8 * GIB_KIB);
    let spec = DomainSpec {
        uuid: Some("6a3c7b1e-0d5f-4f5e-9c4d-2b8e1f0a9c7d".into()),
        ..test_vm(42, dir.path())
    };

    assert_eq!(
        host.define_and_start(&domain_xml(&spec)).expect("start"),
        "one-42"
    );
    assert_eq!(
        host.list_domains().expect("list"),
        vec!["one-42".to_string()]
    );
    let live = host
        .domain_description("one-42")
        .expect("describe")
        .expect("domain exists");
    assert!(live.contains("<uuid>6a3c7b1e-0d5f-4f5e-9c4d-2b8e1f0a9c7d</uuid>"));
    assert!(live.contains("<source bridge='br0'/>"));

    let first = host
        .domain_status("one-42")
        .expect("status")
        .expect("domain exists");
    assert_eq!(first.state, DomainState::Running);
    assert_eq!(first.memory_kib, 256 * 1024);
    assert!(
        first.net_rx.is_some() && first.net_tx.is_some(),
        "{first:?}"
    );
    assert_eq!(
        host.node_info().expect("node info").free_memory_kib,
        8 * GIB_KIB - 256 * 1024
    );

    host.reboot("one-42").expect("reboot");
    let after_reboot = host
        .domain_status("one-42")
        .expect("status")
        .expect("exists");
    assert_eq!(after_reboot.state, DomainState::Running);

    let checkpoint = dir.path().join("checkpoint");
    host.save("one-42", &checkpoint).expect("save");
    assert!(checkpoint.exists());
    assert_eq!(host.domain_status("one-42").expect("status"), None);
    assert_eq!(host.list_domains().expect("list"), Vec::<String>::new());

    assert_eq!(host.restore(&checkpoint).expect("restore"), "one-42");
    let restored = host
        .domain_status("one-42")
        .expect("status")
        .expect("exists");
    assert_eq!(restored.state, DomainState::Running);

    host.shutdown("one-42", Duration::from_secs(5))
        .expect("shutdown");
    assert_eq!(host.domain_status("one-42").expect("status"), None);

    host.define_and_start(&domain_xml(&spec))
        .expect("start again");
    host.destroy("one-42").expect("destroy");
    assert_eq!(host.domain_status("one-42").expect("status"), None);
    assert_eq!(host.list_domains().expect("list"), Vec::<String>::new());
}

#[test]
fn two_node_files_are_independent_hosts() {
    let dir = ScratchDir::new("independent");
    let small = simulated_host(&dir, "small", 2, 2 * GIB_KIB);
    let large = simulated_host(&dir, "large", 16, 64 * GIB_KIB);

    small
        .define_and_start(&domain_xml(&test_vm(1, dir.path())))
        .expect("start on small");
    assert_eq!(
        small.list_domains().expect("list"),
        vec!["one-1".to_string()]
    );
    assert_eq!(large.list_domains().expect("list"), Vec::<String>::new());
    assert_eq!(large.domain_status("one-1").expect("status"), None);

    // The same name on the other host is another domain.
    large
        .define_and_start(&domain_xml(&test_vm(1, dir.path())))
        .expect("start on large");
    small.destroy("one-1").expect("destroy on small");
    assert!(large.domain_status("one-1").expect("status").is_some());

    let small_node = small.node_info().expect("small node");
    let large_node = large.node_info().expect("large node");
    assert_eq!((small_node.cpus, small_node.memory_kib), (2, 2 * GIB_KIB));
    assert_eq!((large_node.cpus, large_node.memory_kib), (16, 64 * GIB_KIB));
    assert_eq!(large_node.free_memory_kib, 64 * GIB_KIB - 256 * 1024);
}

#[test]
fn a_missing_domain_is_none_and_destroying_it_succeeds() {
    let dir = ScratchDir::new("missing");
    let host = simulated_host(&dir, "node01", 1, GIB_KIB);
    assert_eq!(host.domain_status("one-404").expect("status"), None);
    assert_eq!(host.domain_description("one-404").expect("describe"), None);
    host.destroy("one-404")
        .expect("destroying a missing domain is Ok");

    let not_found = |result: Result<(), LibvirtError>| matches!(result, Err(LibvirtError::NoSuchDomain { name }) if name == "one-404");
    assert!(not_found(host.shutdown("one-404", Duration::from_secs(1))));
    assert!(not_found(host.reboot("one-404")));
    assert!(not_found(host.save("one-404", &dir.path().join("x"))));
    assert!(not_found(host.migrate(
        "one-404",
        "test:///default",
        true,
        false,
        None
    )));
}

#[test]
fn hostile_template_values_do_not_inject_xml() {
    let dir = ScratchDir::new("hostile");
    let host = simulated_host(&dir, "node01", 1, GIB_KIB);
    let hostile = "\"'/><evil/>";
    let mut spec = test_vm(5, dir.path());
    // libvirt refuses '/' in names itself; everything else must arrive literally.
    spec.name = "one-<evil>'\"&".into();
    spec.nics[0].bridge = Some(hostile.into());
    spec.graphics = Some(GraphicsSpec {
        port: Some(-1),
        passwd: Some(format!("{hostile}</graphics>")),
        keymap: Some("fr".into()),
        ..GraphicsSpec::default()
    });

    assert_eq!(
        host.define_and_start(&domain_xml(&spec)).expect("start"),
        "one-<evil>'\"&"
    );
    let live = host
        .domain_description("one-<evil>'\"&")
        .expect("describe")
        .expect("domain exists");
    assert!(!live.contains("<evil"), "{live}");
    assert!(
        live.contains("<source bridge='&quot;&apos;/&gt;&lt;evil/&gt;'/>"),
        "{live}"
    );
    assert!(
        live.contains("<name>one-&lt;evil&gt;&apos;&quot;&amp;</name>"),
        "{live}"
    );
    assert_eq!(
        host.list_domains().expect("list"),
        vec!["one-<evil>'\"&".to_string()]
    );
}

#[test]
fn raw_data_reaches_the_domain_and_libvirt_errors_carry_its_message() {
    let dir = ScratchDir::new("raw");
    let host = simulated_host(&dir, "node01", 1, GIB_KIB);
    let spec = DomainSpec {
        raw: vec!["<description>pasted from RAW</description>".into()],
        ..test_vm(6, dir.path())
    };
    host.define_and_start(&domain_xml(&spec)).expect("start");
    let live = host
        .domain_description("one-6")
        .expect("describe")
        .expect("exists");
    assert!(
        live.contains("<description>pasted from RAW</description>"),
        "{live}"
    );

    // Three disks on one target: libvirt refuses the domain (a VM then becomes FAILED with
    // libvirt's message, as in 3.2).
    let mut clash = test_vm(7, dir.path());
    for disk in &mut clash.disks {
        disk.target = "vda".into();
        disk.device = DiskDevice::Disk;
    }
    match host.define_and_start(&domain_xml(&clash)) {
        Err(error @ LibvirtError::Call { .. }) => {
            assert!(error.to_string().contains("duplicated"), "{error}");
        }
        other => panic!("expected libvirt to refuse the domain, got {other:?}"),
    }
    // Starting a second domain with a running domain's name is refused too.
    assert!(host.define_and_start(&domain_xml(&spec)).is_err());
}

#[test]
fn migration_errors_carry_libvirts_message() {
    let dir = ScratchDir::new("migrate");
    let (_, source_uri) = write_test_node(dir.path(), "source", 2, 2 * GIB_KIB).expect("node");
    let (_, destination_uri) =
        write_test_node(dir.path(), "destination", 2, 2 * GIB_KIB).expect("node");
    let source = LibvirtHost::open(&source_uri).expect("open source");
    source
        .define_and_start(&domain_xml(&test_vm(8, dir.path())))
        .expect("start");
    // The test driver does not implement migration; the error must say so and leave the domain
    // where it was.
    let error = source
        .migrate("one-8", &destination_uri, true, false, None)
        .expect_err("the test driver cannot migrate");
    assert!(error.to_string().contains("not supported"), "{error}");
    assert!(source.domain_status("one-8").expect("status").is_some());
    // An unreachable destination is an Open error naming it.
    let unreachable = source
        .migrate("one-8", "test:///nonexistent/node.xml", false, false, None)
        .expect_err("no such destination");
    assert!(
        matches!(unreachable, LibvirtError::Open { ref uri, .. } if uri == "test:///nonexistent/node.xml")
    );
}

#[test]
fn opening_a_missing_node_file_fails_with_libvirts_message() {
    match LibvirtHost::open("test:///nonexistent/stratusd/node.xml") {
        Err(LibvirtError::Open { uri, message }) => {
            assert_eq!(uri, "test:///nonexistent/stratusd/node.xml");
            assert!(!message.is_empty());
        }
        other => panic!("expected an open error, got {other:?}"),
    }
}

#[test]
fn worker_threads_share_one_host() {
    let dir = ScratchDir::new("threads");
    let host = simulated_host(&dir, "node01", 8, 16 * GIB_KIB);
    let workers: Vec<_> = (0..4u32)
        .map(|worker| {
            let host = host.clone();
            let images = dir.path().to_path_buf();
            std::thread::spawn(move || {
                for round in 0..10u32 {
                    let vid = 100 + worker * 10 + round;
                    let name = host
                        .define_and_start(&domain_xml(&test_vm(vid, &images)))
                        .expect("start");
                    assert!(host.domain_status(&name).expect("status").is_some());
                    host.destroy(&name).expect("destroy");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker thread");
    }
    assert_eq!(host.list_domains().expect("list"), Vec::<String>::new());
}

/// Measures define+start and destroy through the connection thread (run with `--nocapture` to
/// see the figures); asserts only a generous bound so a loaded machine does not fail it.
#[test]
fn start_and_destroy_timings_on_the_test_driver() {
    let dir = ScratchDir::new("timings");
    let host = simulated_host(&dir, "node01", 8, 64 * GIB_KIB);
    let rounds = 200u32;
    let documents: Vec<String> = (0..rounds)
        .map(|vid| domain_xml(&test_vm(vid, dir.path())))
        .collect();
    let started = Instant::now();
    for document in &documents {
        host.define_and_start(document).expect("start");
    }
    let start_each = started.elapsed() / rounds;
    let started = Instant::now();
    for vid in 0..rounds {
        host.destroy(&format!("one-{vid}")).expect("destroy");
    }
    let destroy_each = started.elapsed() / rounds;
    eprintln!("test driver, {rounds} domains: define+start {start_each:?} each, destroy {destroy_each:?} each");
    assert!(start_each < Duration::from_millis(100));
    assert!(destroy_each < Duration::from_millis(100));
}

/// `qemu:///embed` runs libvirt's QEMU driver in this process: check that it opens and answers
/// `node_info`. Fails, saying what to install, on a machine without QEMU.
#[test]
fn qemu_embed_connection_opens_and_reports_the_node() {
    const QEMU_DRIVER_MODULE: &str =
        "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so";
    const QEMU_BINARY: &str = "/usr/bin/qemu-system-x86_64";
    let missing: Vec<&str> = [QEMU_DRIVER_MODULE, QEMU_BINARY]
        .into_iter()
        .filter(|path| !Path::new(path).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "QEMU is not installed ({} missing): apt-get install -y --no-install-recommends \
         libvirt-daemon-driver-qemu, then qemu-system-x86 from bookworm-backports \
         (`apt-get install -y --no-install-recommends -t bookworm-backports qemu-system-x86`; \
         the bookworm version would remove qemu-utils), see \
         shared/notes/libvirt-qemu-on-debian12.md",
        missing.join(", ")
    );

    // libvirt's QEMU driver resolves this user when it starts, even with `user = "root"`.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    assert!(
        passwd.lines().any(|line| line.starts_with("libvirt-qemu:")),
        "libvirt's QEMU driver needs a libvirt-qemu user: \
         useradd --system --no-create-home --user-group libvirt-qemu"
    );

    let root = ScratchDir::new("embed");
    let etc = root.path().join("etc");
    std::fs::create_dir_all(&etc).expect("create etc");
    // Run QEMU as root without virtlogd, as the notes require for an embedded driver.
    std::fs::write(
        etc.join("qemu.conf"),
        "user = \"root\"\ngroup = \"root\"\nstdio_handler = \"file\"\n",
    )
    .expect("write qemu.conf");
    let uri = format!("qemu:///embed?root={}", root.path().display());
    let host = LibvirtHost::open(&uri).unwrap_or_else(|error| panic!("open {uri}: {error}"));
    let node = host.node_info().expect("node info");
    assert!(node.cpus >= 1, "{node:?}");
    assert!(
        node.memory_kib > 0 && node.free_memory_kib <= node.memory_kib,
        "{node:?}"
    );
    assert_eq!(host.list_domains().expect("list"), Vec::<String>::new());
    // The emulator probe stratusd makes when it opens a KVM host.
    let offered = host
        .domain_capabilities("x86_64", "qemu")
        .expect("domain capabilities");
    assert!(offered.contains("<domain>qemu</domain>"), "{offered}");
    assert!(offered.contains("<arch>x86_64</arch>"), "{offered}");
}
