//! The command line (a stable contract for site scripts): `stratusd serve [flags]`, and
//! `stratusd quarantine list|purge [--all]` for the administrator.

use crate::config::{AuthMode, ConfigError, Settings};
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
    /// Show or purge the quarantine of terminated VMs (`<data_dir>/quarantine`).
    Quarantine(QuarantineArgs),
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
    /// Register a simulated host of this name on the first start (empty database).
    #[arg(long)]
    pub default_host: Option<String>,
    /// Directory of the per-VM logs `<vid>.log` (default DATA_DIR; oned used /var/log/one).
    #[arg(long)]
    pub vm_log_dir: Option<PathBuf>,
    /// Marketplace image cache (default DATA_DIR/cache).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
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
        if let Some(v) = &self.default_host {
            s.default_host = Some(v.clone());
        }
        if let Some(v) = &self.vm_log_dir {
            s.vm_log_dir = Some(v.clone());
        }
        if let Some(v) = &self.cache_dir {
            s.storage.cache_dir = Some(v.clone());
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
        Ok(s)
    }
}
