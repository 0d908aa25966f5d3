//! Everything the disk-handling transfer drivers share on this front-end: the VM directory
//! root, the image cache, the Marketplace client, the VM logs, the quarantine and the settings.

use super::cache::ImageCache;
use super::marketplace::MarketplaceClient;
use super::node::Nodes;
use super::pdisk::PdiskClient;
use super::quarantine::Quarantine;
use crate::config::{Settings, StorageSettings};
use crate::vmlog::VmLogDir;
use std::path::PathBuf;
use std::time::Duration;

pub struct StorageSite {
    pub vm_dir: PathBuf,
    pub cache: ImageCache,
    pub client: MarketplaceClient,
    /// `None` when the site has no pdisk service.
    pub pdisk: Option<PdiskClient>,
    pub log: VmLogDir,
    pub quarantine: Quarantine,
    /// Nodes without the shared VM directory, reached over SSH.
    pub nodes: Nodes,
    pub settings: StorageSettings,
    /// The built-in persistent disk service, for `pdisk:` disks (installed by the daemon).
    volumes: std::sync::OnceLock<std::sync::Arc<dyn super::volumes::VolumeBroker>>,
}

impl StorageSite {
    pub fn new(settings: &Settings) -> Self {
        let s = &settings.storage;
        let cache = ImageCache::new(settings.cache_dir());
        cache.clean_partials();
        cache.publish_usage();
        // VM directories (home, images/), quarantined ones, simulated hosts' records.
        super::layout::remove_leftover_temps(&settings.data_dir, 3);
        StorageSite {
            vm_dir: settings.data_dir.clone(),
            cache,
            client: MarketplaceClient::new(Duration::from_secs_f64(s.http_timeout.max(1.0))),
            pdisk: PdiskClient::new(&s.pdisk, Duration::from_secs_f64(s.http_timeout.max(1.0))),
            log: VmLogDir::new(settings.vm_log_dir()),
            quarantine: Quarantine::new(
                settings.quarantine_dir(),
                s.quarantine_period,
                s.volume_quarantine_period,
            ),
            nodes: Nodes::new(super::ssh::SshClient::new(
                &settings.nodes.ssh_command,
                settings.nodes.ssh_connect_timeout,
                Duration::from_secs_f64(settings.nodes.command_timeout.max(1.0)),
            )),
            settings: s.clone(),
            volumes: std::sync::OnceLock::new(),
        }
    }

    /// Installs the built-in persistent disk service (once; later calls are ignored).
    pub fn set_volume_broker(&self, broker: std::sync::Arc<dyn super::volumes::VolumeBroker>) {
        let _ = self.volumes.set(broker);
    }

    pub fn volume_broker(&self) -> Option<&std::sync::Arc<dyn super::volumes::VolumeBroker>> {
        self.volumes.get()
    }
}
