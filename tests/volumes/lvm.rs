//! The LVM back end on a real volume group: a sparse file on a loop device, made a physical
//! volume and a volume group with a name of this test's own, removed at the end even when the
//! test fails. Volumes are logical volumes the daemon creates and removes with the LVM tools.
//!
//! Using an LV's data needs the kernel's device-mapper. Where the kernel has it, the test also
//! snapshots, fills and attaches LVM volumes; where it has not (some containers: no
//! `device-mapper` in /proc/misc), LVM still creates and removes LVs in the group's metadata, and
//! the test checks that everything needing the data is refused with the daemon's message.

use super::*;
use std::process::Command;

const NO_DM: &str = "this host's kernel has no device-mapper: LVM volumes cannot be activated here";

/// Runs an LVM (or loop) tool: success, and its standard output, or its standard error when it
/// failed.
fn tool(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .env("LVM_SUPPRESS_FD_WARNINGS", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = if out.status.success() {
        &out.stdout
    } else {
        &out.stderr
    };
    (
        out.status.success(),
        String::from_utf8_lossy(text).into_owned(),
    )
}

fn device_mapper() -> bool {
    std::fs::read_to_string("/proc/misc").is_ok_and(|m| m.contains("device-mapper"))
}

/// `--config` for the LVM tools this test runs itself (as the daemon does without device-mapper).
fn config_args() -> Vec<&'static str> {
    if device_mapper() {
        Vec::new()
    } else {
        vec!["--config", "global { activation = 0 }"]
    }
}

/// A volume group on a loop device, gone when dropped.
struct LoopVg {
    name: String,
    device: String,
    file: PathBuf,
}

impl LoopVg {
    fn create(dir: &Path) -> LoopVg {
        for program in [
            "/usr/sbin/lvcreate",
            "/usr/sbin/vgcreate",
            "/usr/sbin/losetup",
        ] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: install the Debian packages lvm2 and mount \
                 (scripts/setup.sh --test does)"
            );
        }
        let name = format!(
            "stratusd-test-{}-{:04x}",
            std::process::id(),
            rand::random::<u16>()
        );
        let file = dir.join("pv.img");
        let f = std::fs::File::create(&file).unwrap();
        f.set_len(24 << 30).unwrap();
        drop(f);
        let (ok, out) = tool(
            "losetup",
            &["--find", "--show", &file.display().to_string()],
        );
        assert!(ok, "losetup: {out}");
        let device = out.trim().to_string();
        let vg = LoopVg { name, device, file };
        let (ok, out) = tool("pvcreate", &["-q", &vg.device]);
        assert!(ok, "pvcreate: {out}");
        let (ok, out) = tool("vgcreate", &["-q", &vg.name, &vg.device]);
        assert!(ok, "vgcreate: {out}");
        vg
    }

    fn lvs(&self) -> Vec<(String, String, String)> {
        let mut args = config_args();
        args.extend([
            "--noheadings",
            "--units",
            "g",
            "-o",
            "lv_name,lv_size,origin",
            &self.name,
        ]);
        let (ok, out) = tool("lvs", &args);
        assert!(ok, "lvs: {out}");
        out.lines()
            .map(|l| {
                let mut parts = l.split_whitespace().map(str::to_string);
                (
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                )
            })
            .filter(|(name, _, _)| !name.is_empty())
            .collect()
    }
}

impl Drop for LoopVg {
    fn drop(&mut self) {
        let mut args = config_args();
        args.extend(["-q", "-f", self.name.as_str()]);
        let _ = tool("vgremove", &args);
        let _ = tool("pvremove", &["-q", "-f", &self.device]);
        let _ = tool("losetup", &["-d", &self.device]);
        let _ = std::fs::remove_file(&self.file);
    }
}

#[test]
fn lvm_volumes_in_a_real_volume_group_on_a_loop_device() {
    let dir = temp_dir("volumes-lvm");
    let vg = LoopVg::create(&dir);
    let mut site = Site::start_in(
        dir.join("site"),
        &[
            "--volume-backend",
            "lvm",
            "--volume-group",
            &vg.name,
            "--volume-quarantine-period",
            "1",
        ],
    );
    let alice = site.alice();
    let started = Instant::now();
    let uuid = alice.create("10", "on LVM");
    let create_time = started.elapsed();
    eprintln!(
        "volumes: a 10 GiB LVM volume created in {create_time:?} (HTTPS round trip included)"
    );
    let lvs = vg.lvs();
    assert!(
        lvs.iter()
            .any(|(name, size, _)| name == &uuid && size == "10.00g"),
        "{lvs:?}"
    );
    let r = alice.get(&format!("/disks/{uuid}"));
    assert_eq!(r.json["size"], "10");
    assert_eq!(
        alice.get(&format!("/disks/{uuid}/turl/")).json["turl"],
        format!("file:///dev/{}/{uuid}", vg.name)
    );
    // Too large for the group: refused by LVM, and nothing is left.
    let before = vg.lvs();
    let r = alice.post_form("/disks/", &[("size", "1000")]);
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.json["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("cannot create the volume: lvcreate:")),
        "{}",
        r.body
    );
    assert_eq!(vg.lvs(), before);
    assert_eq!(alice.get("/disks/").json.as_array().unwrap().len(), 1);

    site.simulated_host("sim-lvm");
    if device_mapper() {
        // The data path: a VM uses the LV, a snapshot of an origin, a download.
        let (vm, doc) = site.run_vm("alice", &template_with_volumes("l", &[&uuid]));
        assert_eq!(field(&doc, "STATE").as_deref(), Some("3"), "{doc}");
        assert!(Path::new(&format!("/dev/{}/{uuid}", vg.name)).exists());
        site.vm_action("shutdown", vm);
        site.wait_vm(vm, &["6/0"]);
        alice.put_form(
            &format!("/disks/{uuid}"),
            &[("type", "MACHINE_IMAGE_ORIGIN")],
        );
        let r = alice.post_form(&format!("/disks/{uuid}"), &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        let live = r.json["uuid"].as_str().unwrap().to_string();
        assert!(vg.lvs().iter().any(|(n, _, o)| n == &live && o == &uuid));
        assert_eq!(alice.delete(&format!("/disks/{live}/")).status, 200);
    } else {
        eprintln!("volumes: no device-mapper in this kernel: LVM volumes are created and removed, not used");
        let (vm, doc) = site.run_vm("alice", &template_with_volumes("l", &[&uuid]));
        let message = field(&doc, "MESSAGE").unwrap_or_default();
        assert!(
            message.contains(&format!(
                "Error excuting image transfer script: tm_clone_cache.py: {NO_DM}"
            )),
            "{doc}"
        );
        site.vm_action("finalize", vm);
        site.wait_vm(vm, &["6/0"]);
        assert_eq!(alice.get(&format!("/disks/{uuid}")).json["count"], "0");
        alice.put_form(
            &format!("/disks/{uuid}"),
            &[("type", "MACHINE_IMAGE_ORIGIN")],
        );
        let r = alice.post_form(&format!("/disks/{uuid}"), &[]);
        r.assert_error(500, &format!("cannot make a copy of disk {uuid}: {NO_DM}"));
        alice.put_form(
            &format!("/disks/{uuid}"),
            &[("type", "DATA_IMAGE_RAW_READ_WRITE")],
        );
    }
    // Deletion into the quarantine; the purge removes the LV.
    assert_eq!(alice.delete(&format!("/disks/{uuid}/")).status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while vg.lvs().iter().any(|(n, _, _)| n == &uuid) {
        assert!(
            Instant::now() < deadline,
            "the LV was not purged: {:?}",
            vg.lvs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(vg.lvs().is_empty(), "{:?}", vg.lvs());
    assert_eq!(site.daemon.stop(), Some(0));
}
