use super::*;
use crate::config::Settings;
use crate::core::auth::Caller;
use crate::exporter::PoolMetrics;
use crate::store::Store;

/// A core whose pools' metrics are kept as the daemon keeps them.
fn core() -> (Core, Arc<PoolMetrics>) {
    let settings = Settings {
        data_dir: std::env::temp_dir().join("stratusd-exporter-test"),
        ..Settings::default()
    };
    let mut core = Core::open(Store::open_in_memory().unwrap(), settings, "password").unwrap();
    let pools = attach(&mut core, "front.example.org");
    (core, pools)
}

/// The value of the sample line starting with `series` (name and labels exactly).
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .map(|l| l[series.len() + 1..].to_string())
}

#[test]
fn pools_are_published_under_the_exporters_names() {
    let (core, pools) = core();
    let admin = Caller::oneadmin();
    let host = core
        .host_allocate(
            &admin,
            "node-1",
            "im_dummy",
            "vmm_dummy",
            "dummy",
            "tm_dummy",
        )
        .unwrap();
    let vm = core
        .vm_allocate(
            &admin,
            "NAME = a\nCPU = 0.5\nVCPU = 2\nMEMORY = 256\nDISK = [ SOURCE = /x ]\nDISK = [ SOURCE = /y ]\n",
        )
        .unwrap();
    let held = core
        .vm_allocate(&admin, "NAME = b\nCPU = 1\nMEMORY = 128\n")
        .unwrap();
    core.vm_action(&admin, "hold", held).unwrap();
    core.vm_deploy(&admin, vm, host).unwrap();
    let done = core
        .vm_allocate(&admin, "NAME = c\nCPU = 1\nMEMORY = 64\n")
        .unwrap();
    core.vm_action(&admin, "finalize", done).unwrap();
    let net = core
        .vn_allocate(
            &admin,
            "NAME = pub\nTYPE = FIXED\nBRIDGE = br0\nLEASES = [ IP = 10.0.0.1 ]\nLEASES = [ IP = 10.0.0.2 ]\nLEASES = [ IP = 10.0.0.3 ]\nLEASES = [ IP = 10.0.0.4 ]\n",
        )
        .unwrap();
    core.vn_leases(
        &admin,
        net,
        "LEASES = [ IP = 10.0.0.2 ]",
        crate::core::vnets::LeaseOp::Hold,
    )
    .unwrap();

    let text = pools.render_text(&[]);
    let v = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(
        v("opennebula_oned_state{one_server_fqdn=\"front.example.org\"}"),
        "1"
    );
    assert_eq!(v("opennebula_host_total"), "1");
    let h = format!("{{one_host_id=\"{host}\"}}");
    assert_eq!(v(&format!("opennebula_host_state{h}")), "0");
    // The deployed VM counts from its placement (RUNNING_VMS).
    assert_eq!(v(&format!("opennebula_host_vms{h}")), "1");
    // The DONE VM is not listed, as the exporter's info_all leaves it out.
    assert_eq!(v("opennebula_vm_total"), "2");
    assert_eq!(
        sample(
            &text,
            &format!("opennebula_vm_state{{one_vm_id=\"{done}\"}}")
        ),
        None
    );
    let m = format!("{{one_vm_id=\"{vm}\"}}");
    assert_eq!(v(&format!("opennebula_vm_state{m}")), "3");
    assert_eq!(v(&format!("opennebula_vm_lcm_state{m}")), "1");
    assert_eq!(v(&format!("opennebula_vm_host_id{m}")), host.to_string());
    assert_eq!(
        v(&format!("opennebula_vm_mem_total_bytes{m}")),
        (256i64 << 20).to_string()
    );
    assert_eq!(v(&format!("opennebula_vm_cpu_ratio{m}")), "0.5");
    assert_eq!(v(&format!("opennebula_vm_cpu_vcpus{m}")), "2");
    assert_eq!(v(&format!("opennebula_vm_disks{m}")), "2");
    assert_eq!(v(&format!("opennebula_vm_nics{m}")), "0");
    let b = format!("{{one_vm_id=\"{held}\"}}");
    assert_eq!(v(&format!("opennebula_vm_state{b}")), "2");
    assert_eq!(v(&format!("opennebula_vm_host_id{b}")), "-1");
    assert_eq!(v(&format!("opennebula_vm_cpu_vcpus{b}")), "1");
    assert_eq!(
        v(&format!(
            "opennebula_vnet_free_lease_ratio{{vnet_id=\"{net}\",vnet_name=\"pub\",ar_id=\"0\"}}"
        )),
        "0.75"
    );
    assert!(text.contains("# TYPE opennebula_vm_state gauge"));
    assert!(text.contains("# TYPE stratusd_sqlite_commit_duration_seconds histogram"));
}

#[test]
fn label_values_are_escaped() {
    let (core, pools) = core();
    let admin = Caller::oneadmin();
    core.vn_allocate(
        &admin,
        "NAME = \"a\\\"b\"\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_ADDRESS = 10.1.0.0\nNETWORK_SIZE = C\n",
    )
    .unwrap();
    let text = pools.render_text(&[]);
    let line = text
        .lines()
        .find(|l| l.starts_with("opennebula_vnet_free_lease_ratio{"))
        .unwrap();
    assert!(line.contains(r#"vnet_name="a\"b""#), "{line}");
}

/// Every family's lines are grouped under their header, each once: what the text format
/// asks, whatever order objects changed in.
fn check_grouping(text: &str) {
    let mut seen = std::collections::HashSet::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(seen.insert(name.clone()), "{name} twice:\n{text}");
            current = name;
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count", "_total"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|n| *n == current))
                .unwrap_or(name);
            assert_eq!(family, current, "{line} outside its family");
        }
    }
}

#[test]
fn changes_reach_the_next_scrape_and_nothing_else_changes() {
    let (core, pools) = core();
    let admin = Caller::oneadmin();
    let before = pools.render_text(&[]);
    assert_eq!(sample(&before, "opennebula_host_total").unwrap(), "0");
    let host = core
        .host_allocate(&admin, "n1", "im_dummy", "vmm_dummy", "dummy", "tm_dummy")
        .unwrap();
    // More than one chunk of ids (256).
    let vms: Vec<i32> = (0..300)
        .map(|i| {
            core.vm_allocate(&admin, &format!("NAME = v{i}\nCPU = 1\nMEMORY = 64\n"))
                .unwrap()
        })
        .collect();
    let first = pools.render_text(&[]);
    check_grouping(&first);
    assert_eq!(sample(&first, "opennebula_vm_total").unwrap(), "300");
    assert_eq!(sample(&first, "opennebula_host_total").unwrap(), "1");
    // Between two scrapes: a deploy (VM and host change), a VM to DONE, a host deleted.
    core.vm_deploy(&admin, vms[1], host).unwrap();
    core.vm_action(&admin, "finalize", vms[2]).unwrap();
    core.vm_action(&admin, "hold", vms[290]).unwrap();
    let h2 = core
        .host_allocate(&admin, "n2", "im_dummy", "vmm_dummy", "dummy", "tm_dummy")
        .unwrap();
    let second = pools.render_text(&[]);
    check_grouping(&second);
    assert_eq!(sample(&second, "opennebula_vm_total").unwrap(), "299");
    // In id order, across chunks.
    let ids: Vec<i32> = second
        .lines()
        .filter_map(|l| l.strip_prefix("opennebula_vm_state{one_vm_id=\""))
        .map(|l| l.split('"').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 299);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let m = |id: i32| format!("{{one_vm_id=\"{id}\"}}");
    assert_eq!(
        sample(&second, &format!("opennebula_vm_host_id{}", m(vms[1]))).unwrap(),
        host.to_string()
    );
    assert_eq!(
        sample(&second, &format!("opennebula_vm_state{}", m(vms[2]))),
        None
    );
    assert_eq!(
        sample(
            &second,
            &format!("opennebula_host_vms{{one_host_id=\"{host}\"}}")
        )
        .unwrap(),
        "1"
    );
    core.host_delete(&admin, h2).unwrap();
    let third = pools.render_text(&[]);
    assert_eq!(
        sample(&third, &format!("opennebula_vm_state{}", m(vms[290]))).unwrap(),
        "2"
    );
    assert_eq!(sample(&third, "opennebula_host_total").unwrap(), "1");
    assert_eq!(
        sample(
            &third,
            &format!("opennebula_host_state{{one_host_id=\"{h2}\"}}")
        ),
        None
    );
    // The same pools rendered from scratch (as at a daemon's start) give the same pool lines.
    let fresh = PoolMetrics::new(&core.read(), "front.example.org").render_text(&[]);
    let pool_lines = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| l.starts_with("opennebula_"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(pool_lines(&fresh), pool_lines(&third));
}

#[test]
fn volumes_are_counted_by_back_end_state_and_type() {
    use crate::core::volumes::{NewVolume, VolumeUser};
    use crate::model::volume::{Backing, Mount, Visibility, VolumeType};
    let (core, pools) = core();
    let new = |uuid: &str, size: u64, backing: Backing| NewVolume {
        uuid: uuid.into(),
        owner: "alice".into(),
        size,
        tag: String::new(),
        visibility: Visibility::Private,
        kind: VolumeType::DataImageRawReadWrite,
        identifier: String::new(),
        seed: false,
        base: None,
        backing,
    };
    let file = || Backing::File {
        path: "/x".into(),
        format: "raw".into(),
    };
    let a = "00000000-0000-4000-8000-00000000000a";
    let b = "00000000-0000-4000-8000-00000000000b";
    let c = "00000000-0000-4000-8000-00000000000c";
    core.volume_create_begin(new(a, 5, file())).unwrap();
    core.volume_created(a, None).unwrap();
    core.volume_create_begin(new(b, 7, file())).unwrap();
    core.volume_created(b, None).unwrap();
    core.volume_create_begin(new(
        c,
        1,
        Backing::Lvm {
            vg: "vg".into(),
            lv: "lv".into(),
        },
    ))
    .unwrap();
    let mount = Mount {
        vm_id: 3,
        node: "n1".into(),
        device: "vdz".into(),
        disk_index: None,
        since: 0,
    };
    assert!(core.volume_mount_found(a, mount).unwrap());
    core.volume_delete(&VolumeUser::new("alice"), b).unwrap();
    // A cached Marketplace image offered as an origin, and a user's clone of it: the origin's
    // data is the cache's file (stratusd_image_cache_bytes), so it adds no volume bytes; the
    // clone is a volume of its own (its provisioned size).
    let origin = "00000000-0000-4000-8000-0000000000c0";
    let clone = "00000000-0000-4000-8000-0000000000c1";
    let cached = crate::core::volumes::CachedOrigin {
        id: "GZ0x0000000000000000000000".into(),
        path: "/cache/images/GZ0x0000000000000000000000".into(),
        format: "raw".into(),
        bytes: 3 << 30,
        owner: "pdisk".into(),
        public: true,
    };
    core.volume_cached_origin(&cached, origin).unwrap();
    let plan = Backing::File {
        path: "/v/clone.qcow2".into(),
        format: "qcow2".into(),
    };
    let plans = crate::core::volumes::CopyPlans {
        source: Some(Backing::File {
            path: cached.path.clone(),
            format: cached.format.clone(),
        }),
        snapshot: Ok(plan.clone()),
        rebase: Ok(plan),
    };
    core.volume_copy_begin(&VolumeUser::new("alice"), origin, clone, plans)
        .unwrap();
    core.volume_created(clone, None).unwrap();
    let text = pools.render_text(&[]);
    check_grouping(&text);
    let s = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    let ready = "backend=\"file\",state=\"ready\",type=\"DATA_IMAGE_RAW_READ_WRITE\"";
    let quarantined = "backend=\"file\",state=\"quarantined\",type=\"DATA_IMAGE_RAW_READ_WRITE\"";
    let creating = "backend=\"lvm\",state=\"creating\",type=\"DATA_IMAGE_RAW_READ_WRITE\"";
    assert_eq!(s(&format!("stratusd_volumes{{{ready}}}")), "1");
    assert_eq!(
        s(&format!("stratusd_volume_bytes{{{ready}}}")),
        (5u64 << 30).to_string()
    );
    assert_eq!(s(&format!("stratusd_volumes{{{quarantined}}}")), "1");
    assert_eq!(
        s(&format!("stratusd_volume_bytes{{{quarantined}}}")),
        (7u64 << 30).to_string()
    );
    assert_eq!(s(&format!("stratusd_volumes{{{creating}}}")), "1");
    let cache_origin = "backend=\"image_cache\",state=\"ready\",type=\"MACHINE_IMAGE_ORIGIN\"";
    let live = "backend=\"file\",state=\"ready\",type=\"MACHINE_IMAGE_LIVE\"";
    assert_eq!(s(&format!("stratusd_volumes{{{cache_origin}}}")), "1");
    assert_eq!(
        sample(&text, &format!("stratusd_volume_bytes{{{cache_origin}}}")),
        None,
        "the cache's file is not counted again as volume bytes:\n{text}"
    );
    assert!(!text.contains("stratusd_volume_bytes{backend=\"image_cache\""));
    assert_eq!(s(&format!("stratusd_volumes{{{live}}}")), "1");
    assert_eq!(
        s(&format!("stratusd_volume_bytes{{{live}}}")),
        (3u64 << 30).to_string()
    );
    assert_eq!(s("stratusd_volume_mounts{kind=\"hotplug\"}"), "1");
    assert_eq!(s("stratusd_volume_mounts{kind=\"static\"}"), "0");
    // A volume gone: its series stays, at 0.
    core.volume_forget(c).unwrap();
    let text = pools.render_text(&[]);
    assert_eq!(
        sample(&text, &format!("stratusd_volumes{{{creating}}}")).unwrap(),
        "0"
    );
    assert_eq!(
        sample(&text, &format!("stratusd_volume_bytes{{{creating}}}")).unwrap(),
        "0"
    );
}
