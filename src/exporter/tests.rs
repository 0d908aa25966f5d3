use super::*;
use crate::config::Settings;
use crate::core::auth::Caller;
use crate::store::Store;

fn core() -> Core {
    let settings = Settings {
        data_dir: std::env::temp_dir().join("stratusd-exporter-test"),
        ..Settings::default()
    };
    Core::open(Store::open_in_memory().unwrap(), settings, "password").unwrap()
}

/// The value of the sample line starting with `series` (name and labels exactly).
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .map(|l| l[series.len() + 1..].to_string())
}

#[test]
fn pools_are_published_under_the_exporters_names() {
    let core = core();
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

    let text = render(&core, "front.example.org", &[]);
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
    let core = core();
    let admin = Caller::oneadmin();
    core.vn_allocate(
        &admin,
        "NAME = \"a\\\"b\"\nTYPE = RANGED\nBRIDGE = br0\nNETWORK_ADDRESS = 10.1.0.0\nNETWORK_SIZE = C\n",
    )
    .unwrap();
    let text = render(&core, "x", &[]);
    let line = text
        .lines()
        .find(|l| l.starts_with("opennebula_vnet_free_lease_ratio{"))
        .unwrap();
    assert!(line.contains(r#"vnet_name="a\"b""#), "{line}");
}
