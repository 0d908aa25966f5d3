//! Hypervisor (VMM), information (IM) and transfer (TM) drivers, chosen per host by its driver
//! names as in oned. Drivers do blocking work; they are called from worker threads, never from
//! the async runtime, and never call back into request handlers.

pub mod dummy;
pub mod libvirt;

use crate::core::hosts::MonitorResult;
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

pub trait Vmm: Send + Sync {
    fn execute(&self, op: VmmOp, vm: &Vm, host: &Host) -> VmmResult;
}

pub trait Im: Send + Sync {
    fn monitor(&self, host: &Host) -> MonitorResult;
}

pub trait Tm: Send + Sync {
    fn execute(&self, op: TmOp, vm: &Vm, host: &Host) -> Result<(), DriverError>;
}

/// The drivers available to this daemon, looked up by the names hosts were registered with.
pub struct Drivers {
    dummy: dummy::Dummy,
}

impl Default for Drivers {
    fn default() -> Self {
        Drivers {
            dummy: dummy::Dummy,
        }
    }
}

impl Drivers {
    pub fn vmm(&self, name: &str) -> Result<&dyn Vmm, DriverError> {
        match name {
            "vmm_dummy" | "dummy" => Ok(&self.dummy),
            other => Err(DriverError::Unknown(other.to_string())),
        }
    }

    pub fn im(&self, name: &str) -> Result<&dyn Im, DriverError> {
        match name {
            "im_dummy" | "dummy" => Ok(&self.dummy),
            other => Err(DriverError::Unknown(other.to_string())),
        }
    }

    pub fn tm(&self, name: &str) -> Result<&dyn Tm, DriverError> {
        match name {
            "tm_dummy" | "dummy" => Ok(&self.dummy),
            other => Err(DriverError::Unknown(other.to_string())),
        }
    }
}
