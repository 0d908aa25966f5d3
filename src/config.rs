//! Daemon settings: embedded defaults, overridden by the TOML config file, overridden by flags.

use crate::net::dhcp::DhcpFormat;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How sessions are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// StratusLab's oned (`--authn default,dummy,plain`): unknown users are registered on their
    /// first call with the `dummy` driver, which accepts any secret.
    Stratuslab,
    /// Stock oned: only known users, checked by their driver.
    Core,
}

/// CPU/MEMORY limits of StratusLab's quota driver (`quota.conf`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct QuotaSettings {
    pub enabled: bool,
    pub cpu: Option<f64>,
    /// In the unit oned compared (the StratusLab installer wrote KiB, compared with MiB).
    pub memory: Option<i64>,
    pub num_vms: Option<i64>,
}

impl Default for QuotaSettings {
    fn default() -> Self {
        QuotaSettings {
            enabled: true,
            cpu: Some(20.0),
            memory: Some(1_048_576),
            num_vms: None,
        }
    }
}

/// The authenticating HTTPS front door that replaces StratusLab's one-proxy (`[frontdoor]` in
/// the config file); off unless `listen` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FrontDoorSettings {
    /// HTTPS listen address (one-proxy served 0.0.0.0:2634).
    pub listen: Option<SocketAddr>,
    /// PEM server certificate (followed by its intermediates).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the server certificate.
    pub tls_key: Option<PathBuf>,
    /// one-proxy's `login-pswd.properties`: `user=password,cloud-access` lines.
    pub password_file: Option<PathBuf>,
    /// Grid-style directory of trusted CAs (`<hash>.0`) and CRLs (`<hash>.r0`) for `/cert`.
    pub ca_dir: Option<PathBuf>,
    /// one-proxy's `login-cert.properties`: `"<DN>" cloud-access` lines.
    pub allowed_dn_file: Option<PathBuf>,
    /// LDAP directory for `/pswd` passwords (`ldap://`, `ldaps://` or `ldapi://`).
    pub ldap_url: Option<String>,
    /// Bind DN template with `{user}`, e.g. `uid={user},ou=users,o=cloud`.
    pub ldap_user_dn: Option<String>,
    /// DN of the group (groupOfUniqueNames or groupOfNames) that grants `cloud-access`.
    pub ldap_group_dn: Option<String>,
    /// Seconds a connection may wait for its next request (or for the rest of its headers)
    /// before it is closed; default 30, like a Jetty connector's idle timeout.
    pub idle_timeout: Option<f64>,
}

/// Limits of every HTTP listener (`[connections]`; enforced by `src/server/guard.rs`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionSettings {
    /// Open connections per listener; at the cap the one that has waited longest for its
    /// client is closed to admit a new one.
    pub max_connections: usize,
    /// Seconds from the first byte of a request to the end of its header (also the time a
    /// TLS handshake may take).
    pub header_timeout: f64,
    /// Seconds a connection may wait for its next request (the front door's own
    /// `idle_timeout` overrides this for it).
    pub idle_timeout: f64,
    /// Bytes per second a request body or an answer must move once `rate_grace` seconds of
    /// waiting are used up.
    pub min_rate: u64,
    pub rate_grace: f64,
    /// Bytes that large requests being read, parsed and answered may cost at once, all
    /// listeners together (an XML-RPC request costs up to 10 times its body): with the
    /// default a 16 MiB request has it to itself.
    pub body_memory: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            max_connections: 1024,
            header_timeout: 10.0,
            idle_timeout: 30.0,
            min_rate: 1024,
            rate_grace: 10.0,
            body_memory: 160 * 1024 * 1024,
        }
    }
}

/// What KVM hosts' libvirt URIs may use beyond the defaults (`[libvirt_uri]`;
/// docs/security.md): the defaults run no program and name no socket or file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LibvirtUriSettings {
    /// More transports, e.g. `ext` (runs the program of its `command` parameter).
    pub allow_transports: Vec<String>,
    /// More URI parameters, e.g. `root` (`qemu:///embed`), `keyfile`, `socket`, `command`.
    pub allow_params: Vec<String>,
}

/// StratusLab's site policy (`/etc/stratuslab/policy.cfg`): each list, when non-empty, filters
/// the Marketplace endorsements of an image before it may be cached.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct PolicySettings {
    pub whitelist_endorsers: Vec<String>,
    pub blacklist_endorsers: Vec<String>,
    pub whitelist_checksums: Vec<String>,
    pub blacklist_checksums: Vec<String>,
    pub whitelist_images: Vec<String>,
    pub blacklist_images: Vec<String>,
}

/// The site's pdisk service (`persistent_disk_*` of stratuslab.cfg), for `pdisk:` disks.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct PdiskSettings {
    /// Internal base URL, e.g. `https://pdisk.example.org:8445/pdisk`; empty: no pdisk.
    pub endpoint: String,
    /// `persistent_disk_cloud_service_user` and its password.
    pub username: String,
    pub password: String,
}

impl Default for PdiskSettings {
    fn default() -> Self {
        PdiskSettings {
            endpoint: String::new(),
            username: "pdisk".into(),
            password: String::new(),
        }
    }
}

/// Where the built-in persistent disk service keeps volume data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum VolumeBackendKind {
    /// One file per volume under `dir` (sparse raw or qcow2).
    #[default]
    Files,
    /// One logical volume per volume in `volume_group`.
    Lvm,
}

/// The built-in persistent disk service, StratusLab's pdisk (`[volumes]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VolumeSettings {
    /// HTTPS listen address of its REST API (StratusLab's port is 8445); off when unset. It
    /// uses the front door's certificate and authentication.
    pub listen: Option<SocketAddr>,
    pub backend: VolumeBackendKind,
    /// Directory of file volumes (default `<data_dir>/volumes`).
    pub dir: Option<PathBuf>,
    /// Format of new empty file volumes: `raw` (sparse) or `qcow2`.
    pub format: String,
    /// The volume group of the `lvm` back end.
    pub volume_group: Option<String>,
    /// Largest gzipped image accepted by an upload (`POST /disks/` multipart).
    pub upload_max_bytes: u64,
    /// GiB of volumes each user may hold (the sizes of their volumes, clones and uploads not in
    /// the quarantine); 0: no limit. pdisk's super-user and oneadmin have none.
    pub user_quota_gib: u64,
}

impl Default for VolumeSettings {
    fn default() -> Self {
        VolumeSettings {
            listen: None,
            backend: VolumeBackendKind::Files,
            dir: None,
            format: "raw".into(),
            volume_group: None,
            upload_max_bytes: 1 << 30,
            user_quota_gib: 0,
        }
    }
}

/// Native StratusLab storage (`tm_stratuslab`): Marketplace image cache, quarantine.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StorageSettings {
    /// Verified Marketplace images, one per Marketplace id (default `<data_dir>/cache`).
    pub cache_dir: Option<PathBuf>,
    /// `marketplace_endpoint_local`: resolves bare image ids and receives saved images.
    pub marketplace_endpoint_local: String,
    pub policy: PolicySettings,
    /// Seconds a terminated VM's directory stays in `<data_dir>/quarantine` (StratusLab: 48 h).
    pub quarantine_period: f64,
    /// Seconds a terminated VM's disk snapshots are kept (StratusLab's pdisk: 15 min).
    pub volume_quarantine_period: f64,
    /// `built_image_validity_period`: days a saved image's manifest is valid.
    pub built_image_validity_days: i64,
    /// Upload the manifest of a saved image to its Marketplace (`POST <mp>/metadata`).
    pub upload_saved_manifests: bool,
    /// Seconds to wait for a Marketplace to connect and answer (not for a whole download).
    pub http_timeout: f64,
    pub pdisk: PdiskSettings,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            cache_dir: None,
            marketplace_endpoint_local: String::new(),
            policy: PolicySettings::default(),
            quarantine_period: 48.0 * 3600.0,
            volume_quarantine_period: 15.0 * 60.0,
            built_image_validity_days: 2,
            upload_saved_manifests: true,
            http_timeout: 30.0,
            pdisk: PdiskSettings::default(),
        }
    }
}

/// How stratusd reaches nodes whose VM directory is not shared (`[nodes]`, docs/sites.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NodeSettings {
    /// The ssh program for transfers and for libvirt's `qemu+ssh` (its `command`); a wrapper
    /// may add `-F <config>`. Default `ssh`: the service account's ~/.ssh, as oneadmin's was.
    pub ssh_command: String,
    /// Seconds ssh may take to connect to a node.
    pub ssh_connect_timeout: u64,
    /// Seconds a node command that moves no file may take.
    pub command_timeout: f64,
    /// Seconds a KVM node's libvirt may take to open a connection or answer a question
    /// (monitoring, VM poll, domain state); a node silent for longer is in ERROR.
    pub libvirt_timeout: f64,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            ssh_command: "ssh".into(),
            ssh_connect_timeout: 10,
            command_timeout: 300.0,
            libvirt_timeout: 30.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Database file; default `<data_dir>/stratusd.db`.
    pub database: Option<PathBuf>,
    pub log_level: String,
    pub auth: AuthMode,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// oned's VNC_BASE_PORT (StratusLab's installer configures 5000).
    pub vnc_base_port: i64,
    /// oned's MAC_PREFIX.
    pub mac_prefix: String,
    /// oned's NETWORK_SIZE default for RANGED networks.
    pub network_size: u32,
    /// oned's DEFAULT_DEVICE_PREFIX.
    pub default_device_prefix: String,
    /// Seconds between scheduler passes; 0 = place new VMs right away.
    pub sched_interval: f64,
    /// Seconds between host monitoring passes (HOST_MONITORING_INTERVAL).
    pub host_monitoring_interval: f64,
    /// Seconds after allocation before a new host is first monitored (oned's 15-s manager tick).
    pub host_first_monitoring_delay: f64,
    pub quota: QuotaSettings,
    /// oned's ENABLE_OTHER_PERMISSIONS.
    pub enable_other_permissions: bool,
    /// Directories from which ordinary users may register images by PATH.
    pub image_import_dirs: Vec<PathBuf>,
    /// A simulated host registered on the first start.
    pub default_host: Option<String>,
    /// Domain type of KVM hosts without a DOMAIN_TYPE attribute (`kvm`, or `qemu` for TCG).
    pub kvm_domain_type: String,
    /// Seconds an ACPI shutdown may take before it counts as failed.
    pub vm_shutdown_timeout: f64,
    /// Seconds between polls of running VMs (VM_POLLING_INTERVAL).
    pub vm_polling_interval: f64,
    /// Test-driver connections kept open for simulated hosts (least recently used are closed).
    pub simulated_host_connections: usize,
    /// Driver names not to load (e.g. `tm_stratuslab`), as on an oned built without them.
    pub disabled_drivers: Vec<String>,
    /// `[[vm_hook]]` entries: oned's VM_HOOK.
    pub vm_hook: Vec<crate::hooks::HookConfig>,
    /// Where relative hook commands are looked up (default `<data_dir>/remotes/hooks`).
    pub hooks_dir: Option<PathBuf>,
    /// Static DHCP host entries for every lease held by a VM, rewritten on every lease change.
    pub dhcp_hosts_file: Option<PathBuf>,
    /// Which DHCP server reads `dhcp_hosts_file`.
    pub dhcp_format: DhcpFormat,
    pub frontdoor: FrontDoorSettings,
    /// Directory of the per-VM logs `<vid>.log` (oned: `/var/log/one`; default `data_dir`).
    pub vm_log_dir: Option<PathBuf>,
    pub storage: StorageSettings,
    pub connections: ConnectionSettings,
    pub nodes: NodeSettings,
    /// NIC model of KVM domains whose NIC names none (3.2's `vmm_exec_kvm.conf` NIC default;
    /// empty: the hypervisor's own default).
    pub default_nic_model: String,
    /// KVM guests get a virtio RNG fed from the node's /dev/urandom (not in 3.2's domains).
    pub guest_rng: bool,
    /// Serve Prometheus metrics (`GET /metrics`) on this address; off when not set.
    pub metrics_listen: Option<SocketAddr>,
    pub libvirt_uri: LibvirtUriSettings,
    pub volumes: VolumeSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 2633)),
            data_dir: PathBuf::from("/var/lib/stratusd"),
            database: None,
            log_level: "info".into(),
            auth: AuthMode::Stratuslab,
            max_body_bytes: 16 * 1024 * 1024,
            vnc_base_port: 5000,
            mac_prefix: "02:00".into(),
            network_size: 254,
            default_device_prefix: "hd".into(),
            sched_interval: 0.0,
            host_monitoring_interval: 60.0,
            host_first_monitoring_delay: 1.0,
            quota: QuotaSettings::default(),
            enable_other_permissions: true,
            image_import_dirs: vec![PathBuf::from("/srv/cloud/images")],
            default_host: None,
            kvm_domain_type: "kvm".into(),
            vm_shutdown_timeout: 120.0,
            vm_polling_interval: 60.0,
            simulated_host_connections: 64,
            disabled_drivers: Vec::new(),
            vm_hook: Vec::new(),
            hooks_dir: None,
            dhcp_hosts_file: None,
            dhcp_format: DhcpFormat::default(),
            frontdoor: FrontDoorSettings::default(),
            vm_log_dir: None,
            storage: StorageSettings::default(),
            connections: ConnectionSettings::default(),
            nodes: NodeSettings::default(),
            default_nic_model: String::new(),
            guest_rng: false,
            metrics_listen: None,
            libvirt_uri: LibvirtUriSettings::default(),
            volumes: VolumeSettings::default(),
        }
    }
}

/// `path` if absolute, else `base/path` (`.` components dropped; symbolic links and `..` are
/// left alone, as the kernel resolves them).
pub fn absolute_in(base: &std::path::Path, path: &std::path::Path) -> PathBuf {
    let joined = base.join(path);
    std::path::absolute(&joined).unwrap_or(joined)
}

/// The process's working directory, which relative flags are relative to.
pub fn working_dir() -> Result<PathBuf, ConfigError> {
    std::env::current_dir().map_err(ConfigError::WorkingDir)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the working directory (relative paths are relative to it): {0}")]
    WorkingDir(std::io::Error),
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

impl Settings {
    /// Reads a TOML config file; its relative paths are relative to the file's directory.
    pub fn from_file(path: &std::path::Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut settings: Settings =
            toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        let file = absolute_in(&working_dir()?, path);
        let dir = file.parent().unwrap_or(std::path::Path::new("/"));
        settings.make_paths_absolute(dir);
        Ok(settings)
    }

    /// Every path setting made absolute against `base`. The daemon does this once at start-up
    /// (flags against its working directory), so that nothing later depends on where it was
    /// started: VM directories in documents, the simulated hosts' node directories, driver
    /// commands and hooks all see absolute paths.
    pub fn make_paths_absolute(&mut self, base: &std::path::Path) {
        let fix = |p: &mut PathBuf| *p = absolute_in(base, p);
        fix(&mut self.data_dir);
        let optional = [
            &mut self.database,
            &mut self.hooks_dir,
            &mut self.dhcp_hosts_file,
            &mut self.vm_log_dir,
            &mut self.storage.cache_dir,
            &mut self.frontdoor.tls_cert,
            &mut self.frontdoor.tls_key,
            &mut self.frontdoor.password_file,
            &mut self.frontdoor.ca_dir,
            &mut self.frontdoor.allowed_dn_file,
        ];
        for p in optional.into_iter().flatten() {
            fix(p);
        }
        self.image_import_dirs.iter_mut().for_each(fix);
    }

    pub fn database_path(&self) -> PathBuf {
        self.database
            .clone()
            .unwrap_or_else(|| self.data_dir.join("stratusd.db"))
    }

    /// The VM directory root as documents show it (HISTORY/VM_DIR), with oned's trailing slash.
    pub fn vm_dir(&self) -> String {
        let mut s = self.data_dir.to_string_lossy().to_string();
        if !s.ends_with('/') {
            s.push('/');
        }
        s
    }

    pub fn image_repo_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }

    pub fn vm_log_dir(&self) -> PathBuf {
        self.vm_log_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.clone())
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.storage
            .cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("cache"))
    }

    /// Where file volumes live.
    pub fn volume_dir(&self) -> PathBuf {
        self.volumes
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("volumes"))
    }

    /// Where terminated VMs' directories wait before they are purged.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.data_dir.join("quarantine")
    }
}
