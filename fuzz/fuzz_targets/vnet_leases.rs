//! Networks and leases: a network template, lease changes and a VM's NIC, run through a real
//! core (in-memory SQLite) as oneadmin and as an ordinary user, then the DHCP host file written
//! from the result. The input is up to three texts separated by NUL bytes: the network
//! template, a `LEASES = [...]` template for add/hold/release/remove, and a NIC template.
//! Every DHCP file line must be one entry: a template can never add configuration to it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use stratusd::config::Settings;
use stratusd::core::auth::Caller;
use stratusd::core::vnets::LeaseOp;
use stratusd::core::Core;
use stratusd::net::dhcp::{host_entries, render, DhcpFormat};
use stratusd::store::Store;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let network = parts.next().unwrap_or("");
    let leases = parts.next().unwrap_or("");
    let nic = parts.next().unwrap_or("");
    let Ok(store) = Store::open_in_memory() else {
        return;
    };
    let settings = Settings {
        data_dir: std::env::temp_dir().join("stratusd-fuzz-vnet"),
        ..Settings::default()
    };
    let core = Core::open(store, settings, "password").expect("a fresh core");
    let admin = Caller::oneadmin();
    let Ok(net) = core.vn_allocate(&admin, network) else {
        return;
    };
    for op in [LeaseOp::Add, LeaseOp::Hold, LeaseOp::Release] {
        let _ = core.vn_leases(&admin, net, leases, op);
    }
    let _ = core.vm_allocate(&admin, &format!("MEMORY=64\nNIC=[NETWORK_ID={net}]\n{nic}"));
    let _ = core.vm_allocate(&admin, &format!("MEMORY=64\n{nic}"));
    let _ = core.vn_leases(&admin, net, leases, LeaseOp::Remove);
    let entries = host_entries(&core.held_leases());
    for format in [DhcpFormat::Dnsmasq, DhcpFormat::Isc] {
        let file = render(&entries, format);
        let lines = file.lines().count();
        let expected = match format {
            DhcpFormat::Dnsmasq => 1 + entries.len(),
            DhcpFormat::Isc => 1 + 5 * entries.len(),
        };
        assert_eq!(lines, expected, "{file}");
    }
});
