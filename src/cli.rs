//! The command line (a stable contract for site scripts): `stratusd serve [flags]` and
//! `stratusd site-setup [flags]`.

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
    /// Front door: seconds an open connection may wait for its next request (default 30).
    #[arg(long, value_name = "SECS")]
    pub frontdoor_idle_timeout: Option<f64>,
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
        if let Some(v) = &self.dhcp_hosts_file {
            s.dhcp_hosts_file = Some(v.clone());
        }
        if let Some(v) = self.dhcp_format {
            s.dhcp_format = v;
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
}
