//! The libvirt layer: domain descriptions as OpenNebula 3.2 wrote them, and one connection
//! thread per host that deploys, stops, saves, restores, reboots, migrates and monitors domains.
//!
//! * [`domain_xml`] turns a [`DomainSpec`] (plain data resolved from the VM template) into the
//!   domain description; the domain is named `one-<vid>`.
//! * [`LibvirtHost::open`] connects to one host; every method blocks the calling thread and must
//!   be called from a worker thread, never from an async task.
//!
//! # Simulated hosts
//!
//! libvirt's test driver runs inside the process (no daemon, only `libvirt0`) and starts a host
//! from a node description of CPUs and memory. To make one host per simulated node:
//!
//! ```text
//! use stratusd::driver::libvirt::{write_test_node, LibvirtHost};
//! let dir = std::path::Path::new("/var/lib/stratusd/sim"); // absolute
//! std::fs::create_dir_all(dir)?;
//! let (_file, uri) = write_test_node(dir, "node01", 8, 16 * 1024 * 1024)?; // 8 CPUs, 16 GiB
//! let node01 = LibvirtHost::open(&uri)?; // uri = "test:///var/lib/stratusd/sim/node01.xml"
//! ```
//!
//! (or write [`test_node_xml`] to a file yourself and open `test://` + its absolute path). Open
//! each such URI **once** and share the [`LibvirtHost`] (it is `Clone`): every connection to a
//! node file is a fresh, empty host, so a second `open` of the same file does not see the first
//! one's domains. Domains on a test host use `domain_type = "test"` (the driver accepts `kvm` and
//! `qemu` too and runs nothing either way). The test driver supports start, shutdown, destroy,
//! reboot, save and restore, but not migration (`virDomainMigrate` is refused with libvirt's
//! "not supported" message), and it reports no free memory for node files, so
//! [`NodeInfo::free_memory_kib`] is the total less the running domains' memory there.
//!
//! Real guests without a daemon: `qemu:///embed?root=DIR` (needs `libvirt-daemon-driver-qemu`
//! and `qemu-system-x86` from bookworm-backports, and `DIR/etc/qemu.conf` with `user = "root"`,
//! `group = "root"`, `stdio_handler = "file"`); use domain type `qemu` (TCG) where `/dev/kvm`
//! cannot boot stock kernels, `kvm` in production.

mod conn;
mod domain;
mod migration;
mod node;
mod xml;

#[cfg(test)]
mod tests;

pub use conn::{cpu_percent, DomainState, DomainStatus, LibvirtError, LibvirtHost, NodeInfo};
pub use domain::{
    disk_xml, domain_xml, DiskDevice, DiskKind, DiskSpec, DomainSpec, FeaturesSpec, GraphicsSpec,
    NicSpec, OsSpec,
};
pub use node::{
    test_node_xml, test_node_xml_with_domains, write_test_node, write_test_node_with_domains,
    TEST_NODE_CPU_MODEL, TEST_NODE_MHZ,
};
pub use xml::disk_targets;
