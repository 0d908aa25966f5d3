//! The command line (a stable contract for site scripts): `stratusd serve [flags]`,
//! `stratusd site-setup [flags]`, and `stratusd quarantine list|purge [--all]` for the
//! administrator.

use crate::config::{AuthMode, ConfigError, Settings};
use crate::net::dhcp::DhcpFormat;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "stratusd",
    version,
    about = "OpenNebula 3.2 oned replacement for StratusLab clouds"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Serve(Box<ServeArgs>),
    /// Create a StratusLab site's networks, ACL rules and nodes in a running stratusd, as
    /// StratusLab's installer did; idempotent.
    SiteSetup(SiteSetupArgs),
    /// Show or purge the quarantine of terminated VMs (`<data_dir>/quarantine`).
    Quarantine(QuarantineArgs),
    /// VMs of the running daemon: list, show, actions (3.2's onevm; ONE_XMLRPC, ONE_AUTH).
    #[command(subcommand)]
    Vm(crate::adminctl::VmCommand),
    /// Hosts: list, show, enable, disable (3.2's onehost).
    #[command(subcommand)]
    Host(crate::adminctl::HostCommand),
    /// Virtual networks: list, show (3.2's onevnet).
    #[command(subcommand)]
    Net(crate::adminctl::PoolCommand),
    /// Users: list, show (3.2's oneuser).
    #[command(subcommand)]
    User(crate::adminctl::PoolCommand),
    /// Images: list, show (3.2's oneimage).
    #[command(subcommand)]
    Image(crate::adminctl::PoolCommand),
    /// VM templates: list, show (3.2's onetemplate).
    #[command(subcommand)]
    Template(crate::adminctl::PoolCommand),
    /// Usage per VM and per user over a period, from the history records (3.2's oneacct).
    Accounting(crate::accounting::AccountingArgs),
    /// Import an oned 3.2 database (SQLite or MySQL) into a new stratusd database.
    Import(ImportArgs),
    /// Write stratusd's pools as an oned 3.2 database (the way back to oned).
    Export(ExportArgs),
}

/// `stratusd import` (docs/migration.md).
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The oned database: sqlite:PATH/one.db or mysql://USER:PASSWORD@HOST[:PORT]/DATABASE.
    #[arg(long, value_name = "DATABASE")]
    pub from: String,
    /// The quota driver's SQLite file (onequota.db); default: the one next to one.db, if any.
    #[arg(long, value_name = "PATH")]
    pub quota_db: Option<PathBuf>,
    /// TOML configuration file of the daemon (data directory, database, MAC prefix).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// stratusd's data directory; oned's var directory (/var/lib/one) for an in-place migration.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// stratusd's database file (default DATA_DIR/stratusd.db).
    #[arg(long)]
    pub database: Option<PathBuf>,
    /// Replace an existing stratusd database.
    #[arg(long)]
    pub force: bool,
    /// Print what would be imported (counts per pool, warnings) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// oned's var directory: its paths are rewritten when the data directory is elsewhere.
    #[arg(long, default_value = "/var/lib/one")]
    pub old_var_dir: PathBuf,
    /// Also copy the image files and the directories of live VMs into the data directory.
    #[arg(long)]
    pub copy_files: bool,
    /// Keep the progress (rows of each table written, the phase) in this file, in the
    /// Prometheus text format (for node_exporter's textfile collector: a `*.prom` file).
    #[arg(long, value_name = "PATH")]
    pub progress_file: Option<PathBuf>,
}

/// `stratusd export` (docs/migration.md).
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Where to write: sqlite:PATH/one.db or mysql://USER:PASSWORD@HOST[:PORT]/DATABASE.
    #[arg(long, value_name = "DATABASE")]
    pub to: String,
    /// SQLite: write the quota tables into this file (onequota.db) instead of one.db.
    #[arg(long, value_name = "PATH")]
    pub quota_db: Option<PathBuf>,
    /// TOML configuration file of the daemon (data directory, database).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// stratusd's data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// stratusd's database file (default DATA_DIR/stratusd.db).
    #[arg(long)]
    pub database: Option<PathBuf>,
    /// Replace an existing file, or the oned tables of the MySQL database.
    #[arg(long)]
    pub force: bool,
}

/// The daemon's settings as `import`/`export` see them: config file, then flags.
pub fn migration_settings(
    config: &Option<PathBuf>,
    data_dir: &Option<PathBuf>,
    database: &Option<PathBuf>,
) -> Result<Settings, ConfigError> {
    let mut s = match config {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    if let Some(v) = data_dir {
        s.data_dir = v.clone();
    }
    if let Some(v) = database {
        s.database = Some(v.clone());
    }
    // The data directory's paths end up in the imported documents: never relative.
    s.make_paths_absolute(&crate::config::working_dir()?);
    Ok(s)
}

#[derive(Debug, clap::Args)]
pub struct SiteSetupArgs {
    /// XML-RPC endpoint of the running daemon.
    #[arg(long, default_value = "http://127.0.0.1:2633/RPC2")]
    pub endpoint: String,
    /// File whose first line is `oneadmin:PASSWORD` (as ONE_AUTH).
    #[arg(long)]
    pub oneadmin_auth: PathBuf,
    /// Addresses of the FIXED network `public`: one `IP MAC` per line, `#` comments; the MACs
    /// must be those the site's DHCP server knows.
    #[arg(long)]
    pub public_leases: PathBuf,
    /// Addresses of the FIXED network `local`, in the same format.
    #[arg(long)]
    pub local_leases: PathBuf,
    /// The RANGED network `private`, as ADDRESS/PREFIX (StratusLab's 172.16.0.0/16).
    #[arg(long)]
    pub private_network: String,
    /// Bridge of the three networks on the nodes.
    #[arg(long, default_value = "br0")]
    pub bridge: String,
    /// Register this node too, as stratus-register-node did (repeatable).
    #[arg(long)]
    pub host: Vec<String>,
    /// Drivers of the registered nodes: IM,VMM,VNM,TM.
    #[arg(long, default_value = "im_kvm,vmm_kvm,dummy,tm_stratuslab")]
    pub host_drivers: String,
}

#[derive(Debug, clap::Args)]
pub struct QuarantineArgs {
    #[command(subcommand)]
    pub action: QuarantineAction,
    /// TOML configuration file of the daemon (for its data directory and periods).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// The daemon's data directory.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum QuarantineAction {
    /// One line per quarantined VM directory: age, size, whether its disks are still kept.
    List,
    /// Remove what is past its quarantine period now (with --all: everything).
    Purge {
        #[arg(long)]
        all: bool,
    },
}

impl QuarantineArgs {
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut s = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        if let Some(v) = &self.data_dir {
            s.data_dir = v.clone();
        }
        s.make_paths_absolute(&crate::config::working_dir()?);
        Ok(s)
    }
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// XML-RPC listen address (oned's PORT; default 127.0.0.1:2633).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Directory holding the database, VM directories and the image repository.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// SQLite database file (default DATA_DIR/stratusd.db).
    #[arg(long)]
    pub database: Option<PathBuf>,
    /// Log filter (error, warn, info, debug, trace or a tracing filter string).
    #[arg(long)]
    pub log_level: Option<String>,
    /// Authentication mode: StratusLab's default/dummy drivers or stock core.
    #[arg(long, value_enum)]
    pub auth: Option<AuthMode>,
    /// Seconds between scheduler passes; 0 places new VMs right away.
    #[arg(long)]
    pub sched_interval: Option<f64>,
    /// Largest accepted request body, in bytes.
    #[arg(long)]
    pub max_body_bytes: Option<usize>,
    /// Seconds between host monitoring passes.
    #[arg(long)]
    pub host_monitoring_interval: Option<f64>,
    /// Seconds between polls of running VMs (oned's VM_POLLING_INTERVAL).
    #[arg(long)]
    pub vm_polling_interval: Option<f64>,
    /// Do not load this driver (repeatable, or comma-separated), e.g. `tm_stratuslab`.
    #[arg(long, value_delimiter = ',')]
    pub disable_driver: Vec<String>,
    /// Register a simulated host of this name on the first start (empty database).
    #[arg(long)]
    pub default_host: Option<String>,
    /// Write static DHCP host entries for every lease held by a VM to this file (atomically,
    /// on every lease change).
    #[arg(long)]
    pub dhcp_hosts_file: Option<PathBuf>,
    /// Format of the DHCP host file.
    #[arg(long, value_enum)]
    pub dhcp_format: Option<DhcpFormat>,
    /// Serve the authenticating HTTPS front door (one-proxy's /pswd and /cert) on ADDR,
    /// e.g. 0.0.0.0:2634; off when not given.
    #[arg(long, value_name = "ADDR")]
    pub frontdoor_listen: Option<SocketAddr>,
    /// Front door: PEM server certificate (and intermediates).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Front door: PEM private key of the server certificate.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Front door: one-proxy password file (`user=password,cloud-access`; plain, MD5:, CRYPT:).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Front door: directory of trusted CAs (`<hash>.0`) and CRLs (`<hash>.r0`) for /cert.
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    /// Front door: one-proxy allowed-DN list (`"<DN>" cloud-access` lines) for /cert.
    #[arg(long, value_name = "FILE")]
    pub allowed_dn_file: Option<PathBuf>,
    /// Front door: LDAP directory checking /pswd passwords by binding as the user.
    #[arg(long, value_name = "URL")]
    pub ldap_url: Option<String>,
    /// Front door: the user's bind DN, with {user}, e.g. uid={user},ou=users,o=cloud.
    #[arg(long, value_name = "TEMPLATE")]
    pub ldap_user_dn: Option<String>,
    /// Front door: DN of the LDAP group granting cloud-access (uniqueMember or member).
    #[arg(long, value_name = "DN")]
    pub ldap_group_dn: Option<String>,
    /// Directory of the per-VM logs `<vid>.log` (default DATA_DIR; oned used /var/log/one).
    #[arg(long)]
    pub vm_log_dir: Option<PathBuf>,
    /// Marketplace image cache (default DATA_DIR/cache).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// The ssh program that reaches nodes without a shared VM directory (default ssh).
    #[arg(long, value_name = "PROGRAM")]
    pub node_ssh_command: Option<String>,
    /// NIC model of KVM domains whose NIC names none (e.g. virtio).
    #[arg(long, value_name = "MODEL")]
    pub default_nic_model: Option<String>,
    /// The site's Marketplace (bare image ids, saved images): marketplace_endpoint_local.
    #[arg(long)]
    pub marketplace_endpoint_local: Option<String>,
    /// Seconds a terminated VM's directory stays in quarantine (default 48 h).
    #[arg(long)]
    pub quarantine_period: Option<f64>,
    /// Seconds a terminated VM's disk snapshots stay in quarantine (default 15 min).
    #[arg(long)]
    pub volume_quarantine_period: Option<f64>,
    /// The site's pdisk service, e.g. https://pdisk.example.org:8445/pdisk (enables pdisk: disks).
    #[arg(long)]
    pub pdisk_endpoint: Option<String>,
    /// File holding `<user>:<password>` of pdisk's super-user (default user `pdisk`).
    #[arg(long)]
    pub pdisk_credentials_file: Option<PathBuf>,
    /// Site policy: endorser e-mail to keep (repeatable; whitelistendorsers).
    #[arg(long = "policy-whitelist-endorser")]
    pub whitelist_endorsers: Vec<String>,
    /// Site policy: endorser e-mail to refuse (repeatable; blacklistendorsers).
    #[arg(long = "policy-blacklist-endorser")]
    pub blacklist_endorsers: Vec<String>,
    /// Site policy: image SHA-1 to keep (repeatable; whitelistchecksums).
    #[arg(long = "policy-whitelist-checksum")]
    pub whitelist_checksums: Vec<String>,
    /// Site policy: image SHA-1 to refuse (repeatable; blacklistchecksums).
    #[arg(long = "policy-blacklist-checksum")]
    pub blacklist_checksums: Vec<String>,
    /// Site policy: Marketplace id to keep (repeatable; whitelistimages).
    #[arg(long = "policy-whitelist-image")]
    pub whitelist_images: Vec<String>,
    /// Site policy: Marketplace id to refuse (repeatable; blacklistimages).
    #[arg(long = "policy-blacklist-image")]
    pub blacklist_images: Vec<String>,
    /// Front door: seconds an open connection may wait for its next request (default 30).
    #[arg(long, value_name = "SECS")]
    pub frontdoor_idle_timeout: Option<f64>,
    /// Serve Prometheus metrics (GET /metrics) on ADDR, e.g. 127.0.0.1:9925; off when not given.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// A libvirt URI parameter KVM hosts may use beyond the defaults (repeatable; e.g. `root`
    /// for `qemu:///embed`; docs/security.md).
    #[arg(long = "allow-libvirt-uri-param", value_name = "NAME")]
    pub allow_libvirt_uri_params: Vec<String>,
    /// HTTPS address of the built-in persistent disk (pdisk) service, e.g. 0.0.0.0:8445.
    #[arg(long, value_name = "ADDR")]
    pub pdisk_listen: Option<SocketAddr>,
    /// Where volume data goes: files (default) or lvm.
    #[arg(long, value_enum)]
    pub volume_backend: Option<crate::config::VolumeBackendKind>,
    /// Directory of file volumes (default DATA_DIR/volumes).
    #[arg(long, value_name = "DIR")]
    pub volume_dir: Option<PathBuf>,
    /// Format of new empty file volumes: raw (sparse, default) or qcow2.
    #[arg(long, value_name = "FORMAT")]
    pub volume_format: Option<String>,
    /// Volume group of the lvm back end.
    #[arg(long, value_name = "VG")]
    pub volume_group: Option<String>,
}

impl ServeArgs {
    /// Embedded defaults < config file < flags.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut s = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        if let Some(v) = self.listen {
            s.listen = v;
        }
        if let Some(v) = &self.data_dir {
            s.data_dir = v.clone();
        }
        if let Some(v) = &self.database {
            s.database = Some(v.clone());
        }
        if let Some(v) = &self.log_level {
            s.log_level = v.clone();
        }
        if let Some(v) = self.auth {
            s.auth = v;
        }
        if let Some(v) = self.sched_interval {
            s.sched_interval = v;
        }
        if let Some(v) = self.max_body_bytes {
            s.max_body_bytes = v;
        }
        if let Some(v) = self.host_monitoring_interval {
            s.host_monitoring_interval = v;
        }
        if let Some(v) = self.vm_polling_interval {
            s.vm_polling_interval = v;
        }
        if !self.disable_driver.is_empty() {
            s.disabled_drivers = self.disable_driver.clone();
        }
        if let Some(v) = &self.default_host {
            s.default_host = Some(v.clone());
        }
        if let Some(v) = &self.dhcp_hosts_file {
            s.dhcp_hosts_file = Some(v.clone());
        }
        if let Some(v) = self.dhcp_format {
            s.dhcp_format = v;
        }
        if let Some(v) = self.metrics_listen {
            s.metrics_listen = Some(v);
        }
        let fd = &mut s.frontdoor;
        if let Some(v) = self.frontdoor_listen {
            fd.listen = Some(v);
        }
        if let Some(v) = self.frontdoor_idle_timeout {
            fd.idle_timeout = Some(v);
        }
        let paths = [
            (&self.tls_cert, &mut fd.tls_cert),
            (&self.tls_key, &mut fd.tls_key),
            (&self.password_file, &mut fd.password_file),
            (&self.ca_dir, &mut fd.ca_dir),
            (&self.allowed_dn_file, &mut fd.allowed_dn_file),
        ];
        for (flag, setting) in paths {
            if let Some(v) = flag {
                *setting = Some(v.clone());
            }
        }
        let texts = [
            (&self.ldap_url, &mut fd.ldap_url),
            (&self.ldap_user_dn, &mut fd.ldap_user_dn),
            (&self.ldap_group_dn, &mut fd.ldap_group_dn),
        ];
        for (flag, setting) in texts {
            if let Some(v) = flag {
                *setting = Some(v.clone());
            }
        }
        if let Some(v) = &self.vm_log_dir {
            s.vm_log_dir = Some(v.clone());
        }
        s.libvirt_uri
            .allow_params
            .extend(self.allow_libvirt_uri_params.iter().cloned());
        if let Some(v) = &self.cache_dir {
            s.storage.cache_dir = Some(v.clone());
        }
        if let Some(v) = &self.node_ssh_command {
            s.nodes.ssh_command = v.clone();
        }
        if let Some(v) = &self.default_nic_model {
            s.default_nic_model = v.clone();
        }
        if let Some(v) = &self.marketplace_endpoint_local {
            s.storage.marketplace_endpoint_local = v.clone();
        }
        if let Some(v) = self.quarantine_period {
            s.storage.quarantine_period = v;
        }
        if let Some(v) = self.volume_quarantine_period {
            s.storage.volume_quarantine_period = v;
        }
        if let Some(v) = &self.pdisk_endpoint {
            s.storage.pdisk.endpoint = v.clone();
        }
        if let Some(path) = &self.pdisk_credentials_file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let line = text.lines().next().unwrap_or("").trim();
            match line.split_once(':') {
                Some((user, pass)) => {
                    s.storage.pdisk.username = user.to_string();
                    s.storage.pdisk.password = pass.to_string();
                }
                None => s.storage.pdisk.password = line.to_string(),
            }
        }
        let v = &mut s.volumes;
        if let Some(addr) = self.pdisk_listen {
            v.listen = Some(addr);
        }
        if let Some(kind) = self.volume_backend {
            v.backend = kind;
        }
        if let Some(dir) = &self.volume_dir {
            v.dir = Some(dir.clone());
        }
        if let Some(format) = &self.volume_format {
            v.format = format.clone();
        }
        if let Some(vg) = &self.volume_group {
            v.volume_group = Some(vg.clone());
        }
        let policy = &mut s.storage.policy;
        for (flag, list) in [
            (&self.whitelist_endorsers, &mut policy.whitelist_endorsers),
            (&self.blacklist_endorsers, &mut policy.blacklist_endorsers),
            (&self.whitelist_checksums, &mut policy.whitelist_checksums),
            (&self.blacklist_checksums, &mut policy.blacklist_checksums),
            (&self.whitelist_images, &mut policy.whitelist_images),
            (&self.blacklist_images, &mut policy.blacklist_images),
        ] {
            // Flags replace the config file's list rather than extend it.
            if !flag.is_empty() {
                *list = flag.clone();
            }
        }
        // Relative flags are relative to where the daemon was started, once and for all.
        s.make_paths_absolute(&crate::config::working_dir()?);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        match Cli::parse_from([&["stratusd", "serve"], args].concat()).command {
            Command::Serve(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dhcp_flags_override_the_config_file() {
        let dir = std::env::temp_dir().join(format!("stratusd-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("stratusd.toml");
        std::fs::write(
            &conf,
            "dhcp_hosts_file = \"/etc/dnsmasq.d/one\"\ndhcp_format = \"isc\"\n",
        )
        .unwrap();
        let from_file = serve(&["--config", conf.to_str().unwrap()])
            .settings()
            .unwrap();
        assert_eq!(
            from_file.dhcp_hosts_file.as_deref(),
            Some(std::path::Path::new("/etc/dnsmasq.d/one"))
        );
        assert_eq!(from_file.dhcp_format, DhcpFormat::Isc);
        let flags = serve(&[
            "--config",
            conf.to_str().unwrap(),
            "--dhcp-hosts-file",
            "/run/hosts",
            "--dhcp-format",
            "dnsmasq",
        ])
        .settings()
        .unwrap();
        assert_eq!(
            flags.dhcp_hosts_file.as_deref(),
            Some(std::path::Path::new("/run/hosts"))
        );
        assert_eq!(flags.dhcp_format, DhcpFormat::Dnsmasq);
        assert_eq!(serve(&[]).settings().unwrap().dhcp_hosts_file, None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_path_is_absolute_after_the_settings_are_read() {
        let cwd = std::env::current_dir().unwrap();
        let s = serve(&[
            "--data-dir",
            "var",
            "--database",
            "./db/stratusd.db",
            "--cache-dir",
            "cache",
            "--vm-log-dir",
            "logs",
            "--dhcp-hosts-file",
            "dhcp/hosts",
            "--tls-cert",
            "pki/cert.pem",
        ])
        .settings()
        .unwrap();
        assert_eq!(s.data_dir, cwd.join("var"));
        assert_eq!(
            s.database.as_deref(),
            Some(cwd.join("db/stratusd.db").as_path())
        );
        assert_eq!(
            s.storage.cache_dir.as_deref(),
            Some(cwd.join("cache").as_path())
        );
        assert_eq!(s.vm_log_dir.as_deref(), Some(cwd.join("logs").as_path()));
        assert_eq!(
            s.dhcp_hosts_file.as_deref(),
            Some(cwd.join("dhcp/hosts").as_path())
        );
        assert_eq!(
            s.frontdoor.tls_cert.as_deref(),
            Some(cwd.join("pki/cert.pem").as_path())
        );
        assert!(s.vm_dir().starts_with('/'), "{}", s.vm_dir());

        // In a config file, relative paths are relative to the file; flags still to the cwd.
        let dir = std::env::temp_dir().join(format!("stratusd-cli-abs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("stratusd.toml");
        std::fs::write(
            &conf,
            "data_dir = \"state\"\nhooks_dir = \"hooks\"\nimage_import_dirs = [\"imgs\", \"/srv/x\"]\n",
        )
        .unwrap();
        let s = serve(&["--config", conf.to_str().unwrap()])
            .settings()
            .unwrap();
        assert_eq!(s.data_dir, dir.join("state"));
        assert_eq!(s.hooks_dir.as_deref(), Some(dir.join("hooks").as_path()));
        assert_eq!(
            s.image_import_dirs,
            vec![dir.join("imgs"), std::path::PathBuf::from("/srv/x")]
        );
        let s = serve(&["--config", conf.to_str().unwrap(), "--data-dir", "here"])
            .settings()
            .unwrap();
        assert_eq!(s.data_dir, cwd.join("here"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
