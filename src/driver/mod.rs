//! Hypervisor (VMM), information (IM) and transfer (TM) drivers, chosen per host by its driver
//! names as in oned. Drivers do blocking work; they are called from worker threads, never from
//! the async runtime, and never call back into request handlers.

pub mod dummy;
pub mod hypervisor;
pub mod libvirt;
pub mod spec;
pub mod transfer;

pub use crate::model::monitoring::MonitorResult;
use crate::model::{Host, Vm};

/// One hypervisor operation on a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmmOp {
    Deploy,
    Shutdown,
    Cancel,
    Save,
    Restore,
    Migrate,
    Reboot,
}

impl VmmOp {
    /// The operation's name in logs and metrics (oned's driver action names).
    pub fn name(self) -> &'static str {
        match self {
            VmmOp::Deploy => "deploy",
            VmmOp::Shutdown => "shutdown",
            VmmOp::Cancel => "cancel",
            VmmOp::Save => "save",
            VmmOp::Restore => "restore",
            VmmOp::Migrate => "migrate",
            VmmOp::Reboot => "reboot",
        }
    }
}

/// One transfer-manager operation (3.2 `TransferManager` scripts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmOp {
    Prolog,
    Epilog,
    Stop,
    Resume,
    Migrate,
    Delete,
}

impl TmOp {
    /// The operation's name in logs and metrics (oned's transfer action names).
    pub fn name(self) -> &'static str {
        match self {
            TmOp::Prolog => "prolog",
            TmOp::Epilog => "epilog",
            TmOp::Stop => "stop",
            TmOp::Resume => "resume",
            TmOp::Migrate => "tm_migrate",
            TmOp::Delete => "delete",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A driver name the host was registered with that stratusd has no driver for.
    #[error("Driver {0} not found")]
    Unknown(String),
    #[error("{0}")]
    Failed(String),
}

/// Answer of a VMM operation: the hypervisor's domain id after a deploy.
pub type VmmResult = Result<Option<String>, DriverError>;

pub use crate::model::monitoring::PollResult;

pub trait Vmm: Send + Sync {
    /// `prev` is the host of the previous placement, for migrations.
    fn execute(&self, op: VmmOp, vm: &Vm, host: &Host, prev: Option<&Host>) -> VmmResult;

    /// Polls a running VM; `None` when the driver does not monitor VMs.
    fn poll(&self, _vm: &Vm, _host: &Host) -> Option<PollResult> {
        None
    }
}

pub trait Im: Send + Sync {
    fn monitor(&self, host: &Host) -> MonitorResult;
}

pub trait Tm: Send + Sync {
    /// `prev` is the host of the previous placement (cold migration moves from it).
    fn execute(
        &self,
        op: TmOp,
        vm: &Vm,
        host: &Host,
        prev: Option<&Host>,
    ) -> Result<(), DriverError>;

    /// Before a live migration from `prev` to `host`: what the destination needs that the
    /// hypervisor does not copy (nothing when both see the same VM directory).
    fn prepare_live_migration(
        &self,
        _vm: &Vm,
        _host: &Host,
        _prev: &Host,
    ) -> Result<(), DriverError> {
        Ok(())
    }

    /// After a live migration: the side the VM no longer runs on is cleaned up (the source
    /// after a success, the prepared destination after a failure).
    fn finish_live_migration(
        &self,
        _vm: &Vm,
        _host: &Host,
        _prev: &Host,
        _migrated: bool,
    ) -> Result<(), DriverError> {
        Ok(())
    }
}

/// The drivers available to this daemon, looked up by the names hosts were registered with.
pub struct Drivers {
    dummy: dummy::Dummy,
    simulated: hypervisor::Hypervisor,
    kvm: hypervisor::Hypervisor,
    storage: std::sync::Arc<crate::storage::site::StorageSite>,
    tm_ssh: transfer::DiskTm,
    tm_shared: transfer::DiskTm,
    tm_stratuslab: transfer::DiskTm,
    /// Driver names this site does not load (`disabled_drivers`): hosts naming them behave as
    /// on an oned without that driver.
    disabled: std::collections::HashSet<String>,
}

impl Drivers {
    fn enabled(&self, name: &str) -> Result<(), DriverError> {
        if self.disabled.contains(name) {
            Err(DriverError::Unknown(name.to_string()))
        } else {
            Ok(())
        }
    }

    pub fn new(settings: &crate::config::Settings) -> Self {
        let storage = std::sync::Arc::new(crate::storage::site::StorageSite::new(settings));
        let disk_tm = |flavor| transfer::DiskTm::new(flavor, std::sync::Arc::clone(&storage));
        Drivers {
            tm_ssh: disk_tm(transfer::Flavor::Ssh),
            tm_shared: disk_tm(transfer::Flavor::Shared),
            tm_stratuslab: disk_tm(transfer::Flavor::StratusLab),
            dummy: dummy::Dummy,
            simulated: hypervisor::Hypervisor::new(
                hypervisor::HostKind::Simulated,
                settings,
                "test",
            ),
            kvm: hypervisor::Hypervisor::new(
                hypervisor::HostKind::Kvm,
                settings,
                &settings.kvm_domain_type,
            ),
            storage,
            disabled: settings.disabled_drivers.iter().cloned().collect(),
        }
    }

    /// The storage shared by the disk-handling transfer drivers (cache, quarantine, VM logs).
    pub fn storage(&self) -> &std::sync::Arc<crate::storage::site::StorageSite> {
        &self.storage
    }

    /// The libvirt host kind behind a VMM driver name, if any.
    pub fn hypervisor(&self, vmm_name: &str) -> Option<&hypervisor::Hypervisor> {
        self.enabled(vmm_name).ok()?;
        match vmm_name {
            "vmm_dummy" | "dummy" => Some(&self.simulated),
            "vmm_kvm" | "kvm" => Some(&self.kvm),
            _ => None,
        }
    }

    pub fn vmm(&self, name: &str) -> Result<&dyn Vmm, DriverError> {
        self.hypervisor(name)
            .map(|h| h as &dyn Vmm)
            .ok_or_else(|| DriverError::Unknown(name.to_string()))
    }

    pub fn im(&self, name: &str) -> Result<&dyn Im, DriverError> {
        self.enabled(name)?;
        match name {
            "im_dummy" | "dummy" => Ok(&self.simulated),
            "im_kvm" | "kvm" => Ok(&self.kvm),
            other => Err(DriverError::Unknown(other.to_string())),
        }
    }

    pub fn tm(&self, name: &str) -> Result<&dyn Tm, DriverError> {
        self.enabled(name)?;
        match name {
            "tm_dummy" | "dummy" => Ok(&self.dummy),
            "tm_ssh" | "ssh" => Ok(&self.tm_ssh),
            "tm_shared" | "shared" => Ok(&self.tm_shared),
            "tm_stratuslab" | "stratuslab" => Ok(&self.tm_stratuslab),
            other => Err(DriverError::Unknown(other.to_string())),
        }
    }
}
