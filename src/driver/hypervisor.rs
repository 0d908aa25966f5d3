//! libvirt-backed hosts. Two kinds, chosen by the host's driver names as in oned:
//! * simulated (`im_dummy`/`vmm_dummy`): one libvirt test-driver node per host, in-process, with
//!   the capacity and monitoring values of oned's dummy drivers (the recorded sessions depend
//!   on them, e.g. `DEPLOY_ID` = `<host>:<vm name>:dummy`);
//! * KVM (`im_kvm`/`vmm_kvm`): a real hypervisor, `qemu:///system` for the local machine and
//!   `qemu+ssh://<host>/system` otherwise; the host template may set `LIBVIRT_URI` and
//!   `DOMAIN_TYPE` (`kvm` in production, `qemu` for TCG) and `CONSOLE_LOG = YES` (serial console
//!   written to `<vm_dir>/<vid>/console.log`).

use super::libvirt::{
    disk_targets, disk_xml, domain_xml, write_test_node_with_domains, DiskSpec, DomainState,
    LibvirtError, LibvirtHost,
};
use super::spec::{domain_name, domain_spec, Placement, DEFAULT_ARCH};
use super::{DriverError, Im, PollResult, Vmm, VmmOp, VmmResult};
use crate::model::monitoring::MonitorResult;
use crate::model::{Host, Oid, Vm};
use crate::storage::node::NodeStorage;
use crate::storage::ssh::SshClient;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// Capacity of a simulated host: oned's dummy IM driver reported 8 CPUs and 16 GiB.
const SIM_CPUS: u32 = 8;

/// A disk of a live domain: its target and source path.
pub type DomainDisk = (String, Option<String>);
const SIM_MEMORY_KIB: u64 = 16_777_216;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    Simulated,
    Kvm,
}

impl From<LibvirtError> for DriverError {
    fn from(e: LibvirtError) -> Self {
        DriverError::Failed(e.to_string())
    }
}

/// Why a host's connection could not be had.
enum OpenError {
    Driver(DriverError),
    /// The host did not answer in time.
    Silent(LibvirtError),
}

impl From<LibvirtError> for OpenError {
    fn from(e: LibvirtError) -> Self {
        if e.is_timeout() {
            OpenError::Silent(e)
        } else {
            OpenError::Driver(e.into())
        }
    }
}

impl From<DriverError> for OpenError {
    fn from(e: DriverError) -> Self {
        OpenError::Driver(e)
    }
}

pub struct Hypervisor {
    kind: HostKind,
    vm_dir: PathBuf,
    sim_dir: PathBuf,
    default_domain_type: String,
    /// What the site allows in KVM hosts' libvirt URIs beyond the defaults.
    uri_allow: crate::config::LibvirtUriSettings,
    shutdown_timeout: Duration,
    /// One connection per host (and URI: a changed LIBVIRT_URI opens a new one), with the
    /// tick of its last use.
    conns: Mutex<HashMap<(Oid, String), (LibvirtHost, u64)>>,
    /// Use counter for the least-recently-used eviction of simulated connections.
    tick: std::sync::atomic::AtomicU64,
    /// Simulated hosts keep at most this many test-driver connections open (each costs about
    /// 100 KB and a thread); an evicted host's domains are re-created on demand.
    max_simulated_connections: usize,
    /// CPU time of each domain at the previous poll, for CPU percent.
    last_cpu: Mutex<HashMap<Oid, super::libvirt::DomainStatus>>,
    /// Reaches nodes without the shared VM directory (checkpoint files live there).
    ssh: SshClient,
    /// NIC model of domains whose NIC names none (empty: the hypervisor's default).
    default_nic_model: String,
    /// Guests get a virtio RNG.
    guest_rng: bool,
    /// How long a KVM host may take to open its connection or answer a question
    /// (`[nodes] libvirt_timeout`).
    libvirt_timeout: Duration,
}

/// A value as one query parameter of a libvirt URI.
fn uri_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The host part of a libvirt URI (`qemu+ssh://[user@]host[:port]/system`), if it names one.
fn uri_host(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

/// A simulated domain's description as its host file keeps it: marked transient for the test
/// driver (domains read from a node file are otherwise persistent, and a persistent domain
/// outlives its shutdown as a defined, stopped one).
fn simulated_record(xml: &str) -> String {
    const TEST_NS: &str = "xmlns:test='http://libvirt.org/schemas/domain/test/1.0' ";
    let mut out = xml.replacen("<domain ", &format!("<domain {TEST_NS}"), 1);
    if let Some(end) = out.rfind("</domain>") {
        out.insert_str(end, "<test:transient/>\n");
    }
    out
}

impl Hypervisor {
    pub fn new(
        kind: HostKind,
        settings: &crate::config::Settings,
        default_domain_type: &str,
    ) -> Self {
        let data_dir = settings.data_dir.as_path();
        let shutdown_timeout = Duration::from_secs_f64(settings.vm_shutdown_timeout.max(1.0));
        Hypervisor {
            kind,
            vm_dir: data_dir.to_path_buf(),
            sim_dir: data_dir.join("simulated-hosts"),
            default_domain_type: default_domain_type.to_string(),
            uri_allow: settings.libvirt_uri.clone(),
            shutdown_timeout,
            conns: Mutex::new(HashMap::new()),
            tick: std::sync::atomic::AtomicU64::new(0),
            max_simulated_connections: settings.simulated_host_connections.max(1),
            last_cpu: Mutex::new(HashMap::new()),
            ssh: SshClient::new(
                &settings.nodes.ssh_command,
                settings.nodes.ssh_connect_timeout,
                Duration::from_secs_f64(settings.nodes.command_timeout.max(1.0)),
            ),
            default_nic_model: settings.default_nic_model.clone(),
            guest_rng: settings.guest_rng,
            libvirt_timeout: Duration::from_secs_f64(settings.nodes.libvirt_timeout.max(1.0)),
        }
    }

    /// Where `host` keeps VM files (its own VM directory, or the front-end's).
    fn node(&self, host: &Host) -> Result<NodeStorage, DriverError> {
        NodeStorage::of(host, &self.vm_dir).map_err(|e| DriverError::Failed(e.to_string()))
    }

    pub fn kind(&self) -> HostKind {
        self.kind
    }

    fn uri(&self, host: &Host) -> Result<String, DriverError> {
        match self.kind {
            HostKind::Simulated => {
                std::fs::create_dir_all(&self.sim_dir)
                    .map_err(|e| DriverError::Failed(e.to_string()))?;
                let name = format!("host-{}", host.id);
                // The host comes up with the domains it ran when its connection was last
                // closed (idle eviction, daemon stop or crash), as a real hypervisor would.
                let domains = self.simulated_domain_files(host.id);
                let (_, uri) = write_test_node_with_domains(
                    &self.sim_dir,
                    &name,
                    SIM_CPUS,
                    SIM_MEMORY_KIB,
                    &domains,
                )
                .map_err(|e| {
                    DriverError::Failed(format!("cannot write the simulated node: {e}"))
                })?;
                Ok(uri)
            }
            HostKind::Kvm => {
                let refused = |uri: &str, why| {
                    DriverError::Failed(format!("libvirt URI {uri} refused: {why}"))
                };
                // Checked again here: a URI from an imported database, or a host name, must
                // not run a program or name a socket either (src/trust.rs). The site's own ssh
                // program is added after the check: it is the site's choice.
                Ok(match host.template.get("LIBVIRT_URI") {
                    Some(u) if !u.is_empty() => {
                        crate::trust::check_libvirt_uri(u, &self.uri_allow)
                            .map_err(|why| refused(u, why))?;
                        u.to_string()
                    }
                    _ if crate::storage::node::is_local_name(&host.name) => "qemu:///system".into(),
                    _ => {
                        let uri = format!("qemu+ssh://{}/system", host.name);
                        crate::trust::check_libvirt_uri(&uri, &self.uri_allow)
                            .map_err(|why| refused(&uri, why))?;
                        if self.ssh.program() == "ssh" {
                            uri
                        } else {
                            // The site's ssh program, when it is not plain ssh, for libvirt too.
                            format!("{uri}?command={}", uri_component(self.ssh.program()))
                        }
                    }
                })
            }
        }
    }

    /// The host's connection, opened on first use.
    pub fn connection(&self, host: &Host) -> Result<(LibvirtHost, bool), DriverError> {
        self.connection_or_timeout(host).map_err(|e| match e {
            OpenError::Driver(e) => e,
            OpenError::Silent(e) => e.into(),
        })
    }

    /// As [`Hypervisor::connection`], telling a host that did not answer in time apart.
    fn connection_or_timeout(&self, host: &Host) -> Result<(LibvirtHost, bool), OpenError> {
        let key_uri = match self.kind {
            HostKind::Simulated => String::new(),
            HostKind::Kvm => self.uri(host)?,
        };
        let key = (host.id, key_uri);
        let now = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some((c, used)) = self
            .conns
            .lock()
            .map_err(|_| DriverError::Failed("lock".into()))?
            .get_mut(&key)
        {
            *used = now;
            return Ok((c.clone(), false));
        }
        let uri = match self.kind {
            HostKind::Simulated => self.uri(host)?,
            HostKind::Kvm => key.1.clone(),
        };
        let conn = match self.kind {
            // The in-process test driver has no link to lose.
            HostKind::Simulated => LibvirtHost::open(&uri)?,
            HostKind::Kvm => LibvirtHost::open_bounded(&uri, Some(self.libvirt_timeout))?,
        };
        let (conn, opened) = {
            let mut conns = self
                .conns
                .lock()
                .map_err(|_| DriverError::Failed("lock".into()))?;
            if self.kind == HostKind::Simulated && conns.len() >= self.max_simulated_connections {
                // Close the least recently used simulated host; its domains come back from its
                // domain files when it is opened again (see `remember_simulated`).
                if let Some(oldest) = conns
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| k.clone())
                {
                    conns.remove(&oldest);
                    tracing::debug!(host = oldest.0, "closed an idle simulated host connection");
                }
            }
            // Another worker may have opened it meanwhile; a simulated node opened twice would
            // be two different hosts, so keep the first.
            match conns.entry(key) {
                Entry::Occupied(first) => (first.get().0.clone(), false),
                Entry::Vacant(slot) => (slot.insert((conn, now)).0.clone(), true),
            }
        };
        if opened && self.kind == HostKind::Kvm {
            self.probe_emulator(&conn, host);
        }
        Ok((conn, opened))
    }

    /// After a question to `host` went unanswered: its connection is dropped from the cache (its
    /// thread may be stuck on a dead link until libvirt's keep-alive closes it), so that the
    /// next question opens a fresh one instead of queueing behind the stuck call.
    fn forget_stuck_connection(&self, host: &Host, error: &LibvirtError) {
        if !error.is_timeout() {
            return;
        }
        if let Ok(mut conns) = self.conns.lock() {
            conns.retain(|(id, _), _| *id != host.id);
        }
        tracing::warn!(host = %host.name, %error, "host does not answer; its libvirt connection will be opened afresh");
    }

    /// Asks libvirt, once when a KVM host's connection opens (usually at the host's first
    /// monitoring), what it offers guests of the host's domain type. libvirt's QEMU driver probes
    /// its emulator to answer: seconds (3-8 s measured with `qemu:///embed` on a fresh root)
    /// that the first deploy on the host would spend otherwise. A host that cannot run its
    /// domain type (e.g. `kvm` without a usable /dev/kvm) shows in the log at once.
    fn probe_emulator(&self, conn: &LibvirtHost, host: &Host) {
        let Ok(domain_type) = self.domain_type(host) else {
            return;
        };
        let started = std::time::Instant::now();
        match conn.domain_capabilities(DEFAULT_ARCH, &domain_type) {
            Ok(_) => {
                tracing::info!(host = %host.name, %domain_type, elapsed = ?started.elapsed(), "emulator probed")
            }
            Err(e) => {
                tracing::warn!(host = %host.name, %domain_type, error = %e, "libvirt offers no {domain_type} domains on this host; deploys there may fail")
            }
        }
    }

    fn domain_type(&self, host: &Host) -> Result<String, DriverError> {
        match self.kind {
            HostKind::Simulated => Ok("test".into()),
            HostKind::Kvm => {
                let t = host
                    .template
                    .get("DOMAIN_TYPE")
                    .filter(|t| !t.is_empty())
                    .unwrap_or(&self.default_domain_type);
                if crate::trust::domain_type_allowed(t) {
                    Ok(t.to_string())
                } else {
                    Err(DriverError::Failed(format!(
                        "DOMAIN_TYPE {t} refused: not one of {}",
                        crate::trust::DOMAIN_TYPES.join(", ")
                    )))
                }
            }
        }
    }

    /// The VM's directory as `host` sees it, created when it is the front-end's.
    fn vm_home(&self, vm: &Vm, host: &Host) -> Result<PathBuf, DriverError> {
        match self.node(host)? {
            NodeStorage::Remote(node) => Ok(node.home(vm.id)),
            NodeStorage::Shared => {
                let dir = self.vm_dir.join(vm.id.to_string());
                std::fs::create_dir_all(&dir).map_err(|e| {
                    DriverError::Failed(format!("cannot create {}: {e}", dir.display()))
                })?;
                Ok(dir)
            }
        }
    }

    /// Where the hypervisor of `host` saves the VM's memory (its VM directory).
    fn checkpoint(&self, vm: &Vm, host: &Host) -> Result<PathBuf, DriverError> {
        Ok(self.vm_home(vm, host)?.join("checkpoint"))
    }

    /// Where oned 3.2's KVM driver saved a VM (`<vid>/images/checkpoint`): a VM suspended or
    /// stopped under oned resumes from there after `stratusd import`.
    fn oned_checkpoint(&self, vm: &Vm, host: &Host) -> Result<PathBuf, DriverError> {
        Ok(self.vm_home(vm, host)?.join("images").join("checkpoint"))
    }

    /// A restored checkpoint is of no further use.
    fn remove_checkpoint(&self, host: &Host, path: &std::path::Path) {
        match self.node(host) {
            Ok(NodeStorage::Remote(node)) => {
                let script = match crate::storage::ssh::quote_path(path) {
                    Ok(p) => format!("rm -f {p}"),
                    Err(_) => return,
                };
                if let Err(e) = self
                    .ssh
                    .run(&node.target, &script, "removing the checkpoint")
                {
                    tracing::warn!(host = %host.name, error = %e, "checkpoint left on the node");
                }
            }
            _ => {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// The domain description of `vm` for `host`.
    pub fn domain_xml_for(&self, vm: &Vm, host: &Host) -> Result<String, DriverError> {
        let console = if self.kind == HostKind::Kvm
            && host
                .template
                .get("CONSOLE_LOG")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes"))
        {
            Some(self.vm_home(vm, host)?.join("console.log"))
        } else {
            None
        };
        let domain_type = self.domain_type(host)?;
        let node = self.node(host)?;
        let nic_model = (self.kind == HostKind::Kvm && !self.default_nic_model.is_empty())
            .then_some(self.default_nic_model.as_str());
        let mut spec = domain_spec(
            vm,
            Placement {
                vm_dir: node.vm_dir(&self.vm_dir),
                record_dir: &self.vm_dir,
                domain_type: &domain_type,
                console_log: console,
                default_nic_model: nic_model,
                rng: self.kind == HostKind::Kvm && self.guest_rng,
            },
        );
        if let Some(format) = spec
            .disks
            .iter()
            .filter_map(|d| d.driver.as_deref())
            .find(|f| !crate::trust::disk_format_allowed(f))
        {
            if self.kind == HostKind::Kvm {
                return Err(DriverError::Failed(format!(
                    "disk format {format} refused: not one of {}",
                    crate::trust::DISK_FORMATS.join(", ")
                )));
            }
        }
        if self.kind == HostKind::Simulated {
            // oned's dummy VMM accepted every VM, devices and all (the StratusLab client itself
            // sends templates with two disks on one target); the test driver would refuse
            // some. A simulated domain is CPUs and memory only.
            spec.disks.clear();
            spec.nics.clear();
            spec.graphics = None;
            spec.raw.clear();
        }
        Ok(domain_xml(&spec))
    }

    fn deploy_id(&self, vm: &Vm, host: &Host, name: String) -> String {
        match self.kind {
            HostKind::Simulated => format!("{}:{}:dummy", host.name, vm.name),
            HostKind::Kvm => name,
        }
    }

    /// The directory of a simulated host's running domains: one description file per domain,
    /// kept in step with the test driver by [`Hypervisor::remember_simulated`].
    fn simulated_domains_dir(&self, hid: Oid) -> PathBuf {
        self.sim_dir.join(format!("host-{hid}.domains"))
    }

    fn simulated_domain_files(&self, hid: Oid) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.simulated_domains_dir(hid))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.extension().is_some_and(|e| e == "xml")
                            && p.file_name()
                                .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Whether this simulated host has ever recorded its domains. A host without the record
    /// (a database imported or written by an older stratusd) gets the domains of its placed VMs
    /// back at start-up instead ([`Hypervisor::recreate`]).
    pub fn simulated_domains_recorded(&self, host: &Host) -> bool {
        self.simulated_domains_dir(host.id).is_dir()
    }

    /// Records what the simulated host now runs under `name`, after an operation on it: the
    /// domain's description file exists exactly while the domain runs. The test driver lives in
    /// this process; the files are what outlives it (a daemon crash must not make the host
    /// forget, or invent, a domain). `xml` gives the description when it has to be written.
    fn remember_simulated(
        &self,
        conn: &LibvirtHost,
        host: &Host,
        name: &str,
        xml: impl FnOnce() -> Result<String, DriverError>,
    ) -> Result<(), DriverError> {
        if self.kind != HostKind::Simulated {
            return Ok(());
        }
        let dir = self.simulated_domains_dir(host.id);
        let file = dir.join(format!("{name}.xml"));
        let io = |e: std::io::Error| {
            DriverError::Failed(format!("cannot record the simulated domain {name}: {e}"))
        };
        if conn.domain_status(name)?.is_some() {
            if !file.exists() {
                std::fs::create_dir_all(&dir).map_err(io)?;
                let tmp = crate::storage::layout::temp_path(&file);
                std::fs::write(&tmp, simulated_record(&xml()?))
                    .and_then(|_| std::fs::rename(&tmp, &file))
                    .map_err(io)?;
            }
        } else {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Starts the domain of a placed VM on a simulated host that has no record of its domains
    /// (see [`Hypervisor::simulated_domains_recorded`]).
    pub fn recreate(&self, vm: &Vm, host: &Host) -> Result<(), DriverError> {
        let (conn, _) = self.connection(host)?;
        let name = domain_name(vm);
        if conn.domain_status(&name)?.is_none() {
            conn.define_and_start(&self.domain_xml_for(vm, host)?)?;
        }
        self.remember_simulated(&conn, host, &name, || self.domain_xml_for(vm, host))
    }

    /// Whether the checkpoint of a save is where `host` keeps it.
    fn checkpoint_exists(&self, host: &Host, path: &std::path::Path) -> bool {
        match self.node(host) {
            Ok(NodeStorage::Remote(node)) => crate::storage::ssh::quote_path(path).is_ok_and(|p| {
                self.ssh
                    .run(
                        &node.target,
                        &format!("test -f {p}"),
                        "looking for the checkpoint",
                    )
                    .is_ok()
            }),
            _ => path.is_file(),
        }
    }

    /// Hot-plugs `disk` into the VM's running domain. A simulated domain has no devices (oned's
    /// dummy driver accepted every action, and libvirt's test driver cannot hot-plug): there
    /// only its being there is checked (its domain files keep it across restarts).
    pub fn attach_disk(&self, vm: &Vm, host: &Host, disk: &DiskSpec) -> Result<(), DriverError> {
        let (conn, _) = self.connection(host)?;
        let name = domain_name(vm);
        if conn.domain_status(&name)?.is_none() {
            return Err(LibvirtError::NoSuchDomain { name }.into());
        }
        if self.kind == HostKind::Simulated {
            return Ok(());
        }
        conn.attach_device(&name, &disk_xml(disk))?;
        Ok(())
    }

    /// Unplugs the disk at `disk.target` and waits until the domain has let it go (the guest
    /// must release a PCI device), at most `wait`. A domain that is gone has no disk left.
    pub fn detach_disk(
        &self,
        vm: &Vm,
        host: &Host,
        disk: &DiskSpec,
        wait: Duration,
    ) -> Result<(), DriverError> {
        let (conn, _) = self.connection(host)?;
        let name = domain_name(vm);
        if self.kind == HostKind::Simulated {
            return Ok(());
        }
        let attached = |conn: &LibvirtHost| -> Result<bool, DriverError> {
            Ok(match conn.domain_description(&name)? {
                None => false,
                Some(xml) => disk_targets(&xml).iter().any(|(t, _)| t == &disk.target),
            })
        };
        if !attached(&conn)? {
            return Ok(());
        }
        let started = std::time::Instant::now();
        conn.detach_device(&name, &disk_xml(disk))?;
        let mut pause = Duration::from_millis(10);
        while attached(&conn)? {
            if started.elapsed() >= wait {
                return Err(DriverError::Failed(format!(
                    "the guest of {name} did not release {} within {} s",
                    disk.target,
                    wait.as_secs()
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
        tracing::info!(vm = vm.id, host = %host.name, target = %disk.target, elapsed = ?started.elapsed(), "disk detached from {name}");
        Ok(())
    }

    /// The disks of the VM's live domain (`(target, source)`); `None` on a simulated host,
    /// whose domains have no devices, and when the domain is not there.
    pub fn domain_disks(
        &self,
        vm: &Vm,
        host: &Host,
    ) -> Result<Option<Vec<DomainDisk>>, DriverError> {
        if self.kind == HostKind::Simulated {
            return Ok(None);
        }
        let (conn, _) = self.connection(host)?;
        Ok(conn
            .domain_description(&domain_name(vm))?
            .map(|xml| disk_targets(&xml)))
    }

    pub fn list_domains(&self, host: &Host) -> Result<Vec<String>, DriverError> {
        let (conn, _) = self.connection(host)?;
        Ok(conn.list_domains()?)
    }

    pub fn destroy_domain(&self, host: &Host, name: &str) -> Result<(), DriverError> {
        let (conn, _) = self.connection(host)?;
        conn.destroy(name)?;
        self.remember_simulated(&conn, host, name, || {
            Err(DriverError::Failed("destroyed".into()))
        })
    }
}

impl Hypervisor {
    /// One operation. Every operation may be run again after a daemon crash that interrupted
    /// it, or that interrupted the recording of its outcome: each one first looks at what the
    /// host already did and completes from there, so a second run reaches the same end.
    fn run_op(
        &self,
        op: VmmOp,
        conn: &LibvirtHost,
        vm: &Vm,
        host: &Host,
        prev: Option<&Host>,
    ) -> VmmResult {
        let name = domain_name(vm);
        match op {
            VmmOp::Deploy => {
                // Already started by an earlier run: it is not started twice.
                if conn.domain_status(&name)?.is_some() {
                    tracing::info!(vm = vm.id, host = %host.name, "domain {name} already running");
                    return Ok(Some(self.deploy_id(vm, host, name)));
                }
                let xml = self.domain_xml_for(vm, host)?;
                let started = std::time::Instant::now();
                let name = conn.define_and_start(&xml)?;
                tracing::info!(vm = vm.id, host = %host.name, elapsed = ?started.elapsed(), "domain {name} started");
                Ok(Some(self.deploy_id(vm, host, name)))
            }
            VmmOp::Shutdown => match conn.shutdown(&name, self.shutdown_timeout) {
                // Already gone (e.g. the shutdown finished just before a restart).
                Err(LibvirtError::NoSuchDomain { .. }) => Ok(None),
                other => other.map(|_| None).map_err(DriverError::from),
            },
            VmmOp::Cancel => {
                conn.destroy(&name)?;
                Ok(None)
            }
            VmmOp::Save => {
                // A cold migration saves on the previous host.
                let (source, saved_on) = match prev {
                    Some(p) if p.id != host.id => (self.connection(p)?.0, p),
                    _ => (conn.clone(), host),
                };
                let path = self.checkpoint(vm, saved_on)?;
                // A save oned had under way when it stopped wrote oned's checkpoint.
                let saved = |p: &std::path::Path| self.checkpoint_exists(saved_on, p);
                if source.domain_status(&name)?.is_none()
                    && (saved(&path)
                        || (self.kind == HostKind::Kvm
                            && saved(&self.oned_checkpoint(vm, saved_on)?)))
                {
                    tracing::info!(
                        vm = vm.id,
                        "domain {name} already saved to {}",
                        path.display()
                    );
                    return Ok(None);
                }
                source.save(&name, &path)?;
                Ok(None)
            }
            VmmOp::Restore => {
                let path = self.checkpoint(vm, host)?;
                if conn.domain_status(&name)?.is_some() {
                    // Restored by an earlier run, which may not have removed the checkpoint.
                    tracing::info!(vm = vm.id, host = %host.name, "domain {name} already restored");
                    return Ok(Some(self.deploy_id(vm, host, name)));
                }
                if self.kind == HostKind::Simulated && !path.exists() {
                    // Suspended or stopped under oned, whose dummy driver kept no checkpoint
                    // (an imported site): the simulated domain starts afresh, as oned's dummy
                    // restore always succeeded.
                    let name = conn.define_and_start(&self.domain_xml_for(vm, host)?)?;
                    return Ok(Some(self.deploy_id(vm, host, name)));
                }
                let oned_path = self.oned_checkpoint(vm, host)?;
                let from = if self.kind == HostKind::Kvm
                    && !self.checkpoint_exists(host, &path)
                    && self.checkpoint_exists(host, &oned_path)
                {
                    oned_path
                } else {
                    path
                };
                let name = conn.restore(&from)?;
                Ok(Some(self.deploy_id(vm, host, name)))
            }
            VmmOp::Reboot => {
                conn.reboot(&name)?;
                Ok(None)
            }
            VmmOp::Migrate => {
                let Some(prev) = prev else {
                    return Err(DriverError::Failed(
                        "no previous host to migrate from".into(),
                    ));
                };
                let (source, _) = self.connection(prev)?;
                let on_target = conn.domain_status(&name)?.is_some();
                let on_source = prev.id != host.id && source.domain_status(&name)?.is_some();
                match self.kind {
                    HostKind::Kvm if on_target && !on_source => {
                        tracing::info!(vm = vm.id, host = %host.name, "domain {name} already migrated");
                    }
                    HostKind::Kvm => {
                        // Nodes with VM directories of their own: the transfer driver made
                        // empty snapshots there, the hypervisor copies what the guest wrote.
                        let copy_storage = match (self.node(prev)?, self.node(host)?) {
                            (NodeStorage::Remote(a), NodeStorage::Remote(b)) => a != b,
                            _ => false,
                        };
                        // The guest goes to the address stratusd reaches the host at, not to
                        // whatever the destination's own host name resolves to.
                        let via = uri_host(conn.uri()).map(|h| format!("tcp://{h}"));
                        source.migrate(&name, conn.uri(), true, copy_storage, via)?
                    }
                    // The test driver cannot migrate: the simulated domain is started on the
                    // new host first, then removed from the old one.
                    HostKind::Simulated => {
                        if !on_target {
                            conn.define_and_start(&self.domain_xml_for(vm, host)?)?;
                        }
                        if on_source {
                            source.destroy(&name)?;
                        }
                    }
                }
                self.remember_simulated(&source, prev, &name, || self.domain_xml_for(vm, prev))?;
                Ok(None)
            }
        }
    }
}

impl Vmm for Hypervisor {
    fn execute(&self, op: VmmOp, vm: &Vm, host: &Host, prev: Option<&Host>) -> VmmResult {
        let (conn, _) = self.connection(host)?;
        let answer = self.run_op(op, &conn, vm, host, prev);
        let name = domain_name(vm);
        // What the host runs now is recorded whatever the outcome (a failed shutdown leaves
        // the domain, a failed restore none).
        let recorded =
            self.remember_simulated(&conn, host, &name, || self.domain_xml_for(vm, host));
        if op == VmmOp::Save {
            if let Some(p) = prev.filter(|p| p.id != host.id) {
                if let Ok((source, _)) = self.connection(p) {
                    self.remember_simulated(&source, p, &name, || self.domain_xml_for(vm, p))?;
                }
            }
        }
        let answer = answer?;
        recorded?;
        if op == VmmOp::Restore {
            // Only once the restored domain is recorded: a crash before leaves the checkpoint
            // for the restore to be run again.
            let path = self.checkpoint(vm, host)?;
            self.remove_checkpoint(host, &path);
            if self.kind == HostKind::Kvm {
                // Or oned's, restored after an import: a later save must not take it for its
                // own.
                self.remove_checkpoint(host, &self.oned_checkpoint(vm, host)?);
            }
        }
        Ok(answer)
    }

    fn poll(&self, vm: &Vm, host: &Host) -> Option<PollResult> {
        let (conn, _) = match self.connection_or_timeout(host) {
            Ok(c) => c,
            Err(OpenError::Driver(e)) => return Some(PollResult::Error(e.to_string())),
            Err(OpenError::Silent(e)) => return Some(PollResult::Unreachable(e.to_string())),
        };
        match conn.domain_status(&domain_name(vm)) {
            Err(e) if e.is_timeout() => {
                self.forget_stuck_connection(host, &e);
                Some(PollResult::Unreachable(e.to_string()))
            }
            Err(e) => Some(PollResult::Error(e.to_string())),
            Ok(None) => Some(PollResult::Gone),
            // What oned's dummy VMM driver reported for every running VM.
            Ok(Some(_)) if self.kind == HostKind::Simulated => Some(PollResult::Running {
                cpu: 0,
                memory_kib: 0,
                net_tx: 12345,
                net_rx: 0,
            }),
            Ok(Some(status)) => Some(match status.state {
                DomainState::Running | DomainState::Other => {
                    let cpu = {
                        let mut last = self.last_cpu.lock().ok()?;
                        let pct = last
                            .get(&vm.id)
                            .and_then(|prev| super::libvirt::cpu_percent(prev, &status))
                            .unwrap_or(0.0);
                        last.insert(vm.id, status.clone());
                        pct
                    };
                    PollResult::Running {
                        cpu: cpu.round() as i64,
                        memory_kib: status.memory_kib as i64,
                        net_tx: status.net_tx.unwrap_or(0) as i64,
                        net_rx: status.net_rx.unwrap_or(0) as i64,
                    }
                }
                DomainState::Paused => PollResult::Paused,
                DomainState::Shutoff => PollResult::Gone,
                DomainState::Crashed => PollResult::Crashed,
            }),
        }
    }
}

impl Im for Hypervisor {
    fn monitor(&self, host: &Host) -> MonitorResult {
        if self.kind == HostKind::Simulated {
            // The simulated node's capacity is the one we wrote into its node file; asking
            // libvirt would open a test-driver connection (about 100 KB each) for every host,
            // also for hosts that never run a VM. It is opened on the first deploy instead.
            let v = |k: &str, val: String| (k.to_string(), val);
            let total_cpu = (SIM_CPUS * 100).to_string();
            return MonitorResult::Ok(vec![
                v("HYPERVISOR", "dummy".into()),
                v("HOSTNAME", host.name.clone()),
                v("TOTALCPU", total_cpu.clone()),
                v("CPUSPEED", "2.2GHz".into()),
                v("TOTALMEMORY", SIM_MEMORY_KIB.to_string()),
                v("FREEMEMORY", SIM_MEMORY_KIB.to_string()),
                v("USEDCPU", "0".into()),
                v("USEDMEMORY", "0".into()),
                v("FREECPU", total_cpu),
            ]);
        }
        let info = match self.connection_or_timeout(host) {
            Ok((c, _)) => match c.node_info() {
                Ok(i) => i,
                Err(e) => {
                    self.forget_stuck_connection(host, &e);
                    return MonitorResult::Failed(e.to_string());
                }
            },
            Err(OpenError::Driver(e)) => return MonitorResult::Failed(e.to_string()),
            Err(OpenError::Silent(e)) => return MonitorResult::Failed(e.to_string()),
        };
        let v = |k: &str, val: String| (k.to_string(), val);
        let total_cpu = info.cpus as i64 * 100;
        match self.kind {
            HostKind::Simulated => {
                MonitorResult::Failed("simulated hosts are monitored above".into())
            }
            HostKind::Kvm => MonitorResult::Ok(vec![
                v("HYPERVISOR", "kvm".into()),
                v("HOSTNAME", host.name.clone()),
                v("ARCH", info.model.clone()),
                v("MODELNAME", info.model.clone()),
                v("CPUSPEED", info.mhz.to_string()),
                v("TOTALCPU", total_cpu.to_string()),
                v("FREECPU", total_cpu.to_string()),
                v("USEDCPU", "0".into()),
                v("TOTALMEMORY", info.memory_kib.to_string()),
                v("FREEMEMORY", info.free_memory_kib.to_string()),
                v(
                    "USEDMEMORY",
                    info.memory_kib
                        .saturating_sub(info.free_memory_kib)
                        .to_string(),
                ),
                v("NETRX", "0".into()),
                v("NETTX", "0".into()),
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_goes_to_the_address_of_the_destination_uri() {
        assert_eq!(uri_host("qemu+ssh://10.1.2.3/system"), Some("10.1.2.3"));
        assert_eq!(
            uri_host("qemu+ssh://root@node2:2222/system?command=x"),
            Some("node2")
        );
        assert_eq!(uri_host("qemu:///embed?root=/tmp/x"), None);
        assert_eq!(uri_host("qemu:///system"), None);
        assert_eq!(uri_component("/srv/site ssh"), "/srv/site%20ssh");
    }
}
#[cfg(test)]
mod idempotency_tests {
    //! Every operation run a second time (as after a daemon crash that interrupted it, or the
    //! recording of its outcome) reaches the same end, and simulated hosts keep their domains
    //! across connections (a daemon restart).
    use super::*;
    use crate::model::host::{HostShare, HostState};
    use crate::model::vm::{LcmState, VmState};
    use crate::model::Permissions;
    use crate::template::Template;

    fn host(id: Oid) -> Host {
        Host {
            id,
            name: format!("sim{id}"),
            state: HostState::Monitored,
            im_mad: "im_dummy".into(),
            vm_mad: "vmm_dummy".into(),
            vn_mad: "dummy".into(),
            tm_mad: "tm_dummy".into(),
            last_mon_time: 0,
            share: HostShare::default(),
            template: Template::new(),
        }
    }

    fn vm(id: Oid) -> Vm {
        Vm {
            id,
            uid: 0,
            gid: 0,
            uname: "oneadmin".into(),
            gname: "oneadmin".into(),
            name: format!("one-{id}"),
            perms: Permissions::default(),
            last_poll: 0,
            state: VmState::Active,
            lcm_state: LcmState::Boot,
            stime: 0,
            etime: 0,
            deploy_id: String::new(),
            memory: 0,
            cpu: 0,
            net_tx: 0,
            net_rx: 0,
            template: Template::parse("CPU=1\nMEMORY=64\n").unwrap(),
            history: Vec::new(),
            reboot_requested: false,
            resubmit_after_cleanup: false,
            boot_restores: false,
            disk_sizes: None,
        }
    }

    fn hypervisor(dir: &std::path::Path) -> Hypervisor {
        let settings = crate::config::Settings {
            data_dir: dir.to_path_buf(),
            ..crate::config::Settings::default()
        };
        Hypervisor::new(HostKind::Simulated, &settings, "test")
    }

    fn running(hv: &Hypervisor, h: &Host, vm: &Vm) -> bool {
        hv.connection(h)
            .unwrap()
            .0
            .domain_status(&domain_name(vm))
            .unwrap()
            .is_some()
    }

    #[test]
    fn operations_run_twice_reach_the_same_end() {
        let dir = std::env::temp_dir().join(format!("hv-twice-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let hv = hypervisor(&dir);
        let (h0, h1) = (host(0), host(1));
        let v = vm(7);
        for _ in 0..2 {
            hv.execute(VmmOp::Deploy, &v, &h0, None).unwrap();
        }
        assert!(running(&hv, &h0, &v));
        for _ in 0..2 {
            hv.execute(VmmOp::Save, &v, &h0, None).unwrap();
        }
        assert!(!running(&hv, &h0, &v));
        assert!(dir.join("7/checkpoint").is_file());
        // The second restore finds the domain running (its checkpoint already consumed).
        for _ in 0..2 {
            hv.execute(VmmOp::Restore, &v, &h0, None).unwrap();
        }
        assert!(running(&hv, &h0, &v));
        assert!(!dir.join("7/checkpoint").exists());
        for _ in 0..2 {
            hv.execute(VmmOp::Migrate, &v, &h1, Some(&h0)).unwrap();
        }
        assert!(running(&hv, &h1, &v) && !running(&hv, &h0, &v));
        // A cold migration saves on the host the VM leaves.
        for _ in 0..2 {
            hv.execute(VmmOp::Save, &v, &h0, Some(&h1)).unwrap();
        }
        assert!(!running(&hv, &h1, &v));
        hv.execute(VmmOp::Restore, &v, &h0, None).unwrap();
        for _ in 0..2 {
            hv.execute(VmmOp::Shutdown, &v, &h0, None).unwrap();
        }
        assert!(!running(&hv, &h0, &v));
        hv.execute(VmmOp::Deploy, &v, &h0, None).unwrap();
        for _ in 0..2 {
            hv.execute(VmmOp::Cancel, &v, &h0, None).unwrap();
        }
        assert!(!running(&hv, &h0, &v));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn simulated_hosts_keep_their_domains_across_restarts() {
        let dir = std::env::temp_dir().join(format!("hv-restart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let h = host(3);
        {
            let hv = hypervisor(&dir);
            assert!(!hv.simulated_domains_recorded(&h));
            hv.execute(VmmOp::Deploy, &vm(1), &h, None).unwrap();
            hv.execute(VmmOp::Deploy, &vm(2), &h, None).unwrap();
            hv.execute(VmmOp::Cancel, &vm(2), &h, None).unwrap();
        }
        // A new daemon: a new test-driver host from the node file.
        let hv = hypervisor(&dir);
        assert!(hv.simulated_domains_recorded(&h));
        assert_eq!(hv.list_domains(&h).unwrap(), vec!["one-1".to_string()]);
        // Shut down once, gone for good (not left defined by the node file).
        hv.execute(VmmOp::Shutdown, &vm(1), &h, None).unwrap();
        assert_eq!(hv.list_domains(&h).unwrap(), Vec::<String>::new());
        let hv = hypervisor(&dir);
        assert_eq!(hv.list_domains(&h).unwrap(), Vec::<String>::new());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
