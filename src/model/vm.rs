//! VM objects, their history records and the 3.2 state numbers.

use super::xml::{elem, elem_num};
use super::{Oid, Permissions};
use crate::template::Template;
use serde::{Deserialize, Serialize};

/// VM STATE (3.2 `VirtualMachine::VmState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VmState {
    Init = 0,
    Pending = 1,
    Hold = 2,
    Active = 3,
    Stopped = 4,
    Suspended = 5,
    Done = 6,
    Failed = 7,
}

/// LCM_STATE (3.2 `VirtualMachine::LcmState`), meaningful only while ACTIVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LcmState {
    LcmInit = 0,
    Prolog = 1,
    Boot = 2,
    Running = 3,
    Migrate = 4,
    SaveStop = 5,
    SaveSuspend = 6,
    SaveMigrate = 7,
    PrologMigrate = 8,
    PrologResume = 9,
    EpilogStop = 10,
    Epilog = 11,
    Shutdown = 12,
    Cancel = 13,
    Failure = 14,
    Cleanup = 15,
    Unknown = 16,
}

impl VmState {
    /// The state's name as 3.2 writes it (`onevm show`, the VM log).
    pub fn name(self) -> &'static str {
        match self {
            VmState::Init => "INIT",
            VmState::Pending => "PENDING",
            VmState::Hold => "HOLD",
            VmState::Active => "ACTIVE",
            VmState::Stopped => "STOPPED",
            VmState::Suspended => "SUSPENDED",
            VmState::Done => "DONE",
            VmState::Failed => "FAILED",
        }
    }
}

impl LcmState {
    /// The LCM state's name as 3.2 writes it.
    pub fn name(self) -> &'static str {
        use LcmState::*;
        match self {
            LcmInit => "LCM_INIT",
            Prolog => "PROLOG",
            Boot => "BOOT",
            Running => "RUNNING",
            Migrate => "MIGRATE",
            SaveStop => "SAVE_STOP",
            SaveSuspend => "SAVE_SUSPEND",
            SaveMigrate => "SAVE_MIGRATE",
            PrologMigrate => "PROLOG_MIGRATE",
            PrologResume => "PROLOG_RESUME",
            EpilogStop => "EPILOG_STOP",
            Epilog => "EPILOG",
            Shutdown => "SHUTDOWN",
            Cancel => "CANCEL",
            Failure => "FAILURE",
            Cleanup => "CLEANUP",
            Unknown => "UNKNOWN",
        }
    }
}

/// The driver operation a VM was running when its step failed, as 3.2 reported it (catalogue
/// §12): the object's `TEMPLATE/ERROR` message and the VM log's error line both start with
/// [`FailedStep::title`]. Other steps' failures (the cleanup of finalize) 3.2 only logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedStep {
    Transfer,
    Deploy,
    Restore,
    Shutdown,
    Cancel,
    Save,
    LiveMigrate,
}

impl FailedStep {
    /// The operation of a VM in `lcm` (`boot_restores`: its BOOT restores a checkpoint).
    pub fn of(lcm: LcmState, boot_restores: bool) -> Option<FailedStep> {
        use LcmState::*;
        Some(match lcm {
            Prolog | PrologResume | PrologMigrate | Epilog | EpilogStop => FailedStep::Transfer,
            Boot if boot_restores => FailedStep::Restore,
            Boot => FailedStep::Deploy,
            Shutdown => FailedStep::Shutdown,
            Cancel => FailedStep::Cancel,
            SaveStop | SaveSuspend | SaveMigrate => FailedStep::Save,
            Migrate => FailedStep::LiveMigrate,
            _ => return None,
        })
    }

    /// 3.2's message, before the driver's reason (its spelling mistakes included).
    pub fn title(self) -> &'static str {
        match self {
            FailedStep::Transfer => "Error excuting image transfer script",
            FailedStep::Deploy => "Error deploying virtual machine",
            FailedStep::Restore => "Error restoring VM",
            FailedStep::Shutdown => "Error shuting down VM",
            FailedStep::Cancel => "Error canceling VM",
            FailedStep::Save => "Error saving VM state",
            FailedStep::LiveMigrate => "Error live migrating VM",
        }
    }
}

/// HISTORY REASON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    None = 0,
    Error = 1,
    StopResume = 2,
    User = 3,
    Cancel = 4,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    pub seq: i32,
    pub hostname: String,
    pub vm_dir: String,
    pub hid: Oid,
    pub stime: i64,
    pub etime: i64,
    pub vmm_mad: String,
    pub vnm_mad: String,
    pub tm_mad: String,
    pub pstime: i64,
    pub petime: i64,
    pub rstime: i64,
    pub retime: i64,
    pub estime: i64,
    pub eetime: i64,
    pub reason: Reason,
}

impl History {
    pub fn write_xml(&self, out: &mut String) {
        out.push_str("<HISTORY>");
        elem_num(out, "SEQ", self.seq);
        elem(out, "HOSTNAME", &self.hostname);
        elem(out, "VM_DIR", &self.vm_dir);
        elem_num(out, "HID", self.hid);
        elem_num(out, "STIME", self.stime);
        elem_num(out, "ETIME", self.etime);
        elem(out, "VMMMAD", &self.vmm_mad);
        elem(out, "VNMMAD", &self.vnm_mad);
        elem(out, "TMMAD", &self.tm_mad);
        elem_num(out, "PSTIME", self.pstime);
        elem_num(out, "PETIME", self.petime);
        elem_num(out, "RSTIME", self.rstime);
        elem_num(out, "RETIME", self.retime);
        elem_num(out, "ESTIME", self.estime);
        elem_num(out, "EETIME", self.eetime);
        elem_num(out, "REASON", self.reason as i32);
        out.push_str("</HISTORY>");
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vm {
    pub id: Oid,
    pub uid: Oid,
    pub gid: Oid,
    pub uname: String,
    pub gname: String,
    pub name: String,
    pub perms: Permissions,
    pub last_poll: i64,
    pub state: VmState,
    pub lcm_state: LcmState,
    pub stime: i64,
    pub etime: i64,
    pub deploy_id: String,
    /// KiB in use at the last poll.
    pub memory: i64,
    pub cpu: i64,
    pub net_tx: i64,
    pub net_rx: i64,
    pub template: Template,
    pub history: Vec<History>,
    /// A `reboot` waiting for the hypervisor (not part of the 3.2 document).
    #[serde(default)]
    pub reboot_requested: bool,
    /// The CLEANUP in progress ends in PENDING (`resubmit`) rather than DONE (`finalize`).
    #[serde(default)]
    pub resubmit_after_cleanup: bool,
    /// The BOOT in progress restores the saved checkpoint (resume, end of a cold migration)
    /// instead of deploying: 3.2's RESTORE, which keeps DEPLOY_ID (not part of the document).
    #[serde(default)]
    pub boot_restores: bool,
    /// The sizes of the disks its last prolog made, as the transfer driver recorded them
    /// (stratusd-only: accounting; not part of the document). `None`: never recorded (a
    /// driver that keeps no record, a VM imported from oned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_sizes: Option<Vec<DiskSize>>,
}

/// One disk of a VM as its prolog made it: the size the guest sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSize {
    /// The disk's index (`DISK_ID`, `images/disk.<i>`).
    pub disk_id: usize,
    /// `snapshot` (a Marketplace image's copy-on-write overlay), `copy`, `link` (a
    /// registered image file), `pdisk` (a persistent volume), `swap`, `fs`.
    pub kind: String,
    pub bytes: u64,
}

impl Vm {
    /// `full` = every history record (one.vm.info); pool listings carry only the last one.
    pub fn write_xml(&self, out: &mut String, full: bool) {
        out.push_str("<VM>");
        elem_num(out, "ID", self.id);
        elem_num(out, "UID", self.uid);
        elem_num(out, "GID", self.gid);
        elem(out, "UNAME", &self.uname);
        elem(out, "GNAME", &self.gname);
        elem(out, "NAME", &self.name);
        self.perms.write_xml(out);
        elem_num(out, "LAST_POLL", self.last_poll);
        elem_num(out, "STATE", self.state as i32);
        elem_num(out, "LCM_STATE", self.lcm_state as i32);
        elem_num(out, "STIME", self.stime);
        elem_num(out, "ETIME", self.etime);
        elem(out, "DEPLOY_ID", &self.deploy_id);
        elem_num(out, "MEMORY", self.memory);
        elem_num(out, "CPU", self.cpu);
        elem_num(out, "NET_TX", self.net_tx);
        elem_num(out, "NET_RX", self.net_rx);
        self.template.write_xml(out);
        if self.history.is_empty() {
            out.push_str("<HISTORY_RECORDS/>");
        } else {
            out.push_str("<HISTORY_RECORDS>");
            if full {
                for h in &self.history {
                    h.write_xml(out);
                }
            } else if let Some(h) = self.history.last() {
                h.write_xml(out);
            }
            out.push_str("</HISTORY_RECORDS>");
        }
        out.push_str("</VM>");
    }

    pub fn last_history(&self) -> Option<&History> {
        self.history.last()
    }

    pub fn last_history_mut(&mut self) -> Option<&mut History> {
        self.history.last_mut()
    }

    /// `TEMPLATE/CPU` as a number (0 when absent or not numeric, as 3.2's `get_template_attribute`).
    pub fn template_cpu(&self) -> f64 {
        self.template
            .get("CPU")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    }

    /// `TEMPLATE/MEMORY` in MiB.
    pub fn template_memory(&self) -> i64 {
        self.template
            .get("MEMORY")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|m| m as i64)
            .unwrap_or(0)
    }
}
