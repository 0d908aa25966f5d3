//! The command line (a stable contract for site scripts): `stratusd serve [flags]`.

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
    Serve(ServeArgs),
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
    /// Seconds between polls of the running VMs (VM_POLLING_INTERVAL; at least 1).
    #[arg(long)]
    pub vm_polling_interval: Option<f64>,
    /// Register a simulated host of this name on the first start (empty database).
    #[arg(long)]
    pub default_host: Option<String>,
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
        Ok(s)
    }
}
