//! HOST objects and their capacity share.

use super::xml::{elem, elem_num};
use super::Oid;
use crate::template::Template;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostState {
    Init = 0,
    Monitoring = 1,
    Monitored = 2,
    Error = 3,
    Disabled = 4,
}

impl HostState {
    /// The state's name as 3.2 writes it (`onehost list`).
    pub fn name(self) -> &'static str {
        match self {
            HostState::Init => "INIT",
            HostState::Monitoring => "MONITORING",
            HostState::Monitored => "MONITORED",
            HostState::Error => "ERROR",
            HostState::Disabled => "DISABLED",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostShare {
    pub disk_usage: i64,
    /// KiB allocated to VMs.
    pub mem_usage: i64,
    /// Percent × 100 per CPU allocated to VMs.
    pub cpu_usage: i64,
    pub max_disk: i64,
    pub max_mem: i64,
    pub max_cpu: i64,
    pub free_disk: i64,
    pub free_mem: i64,
    pub free_cpu: i64,
    pub used_disk: i64,
    pub used_mem: i64,
    pub used_cpu: i64,
    pub running_vms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    pub id: Oid,
    pub name: String,
    pub state: HostState,
    pub im_mad: String,
    pub vm_mad: String,
    pub vn_mad: String,
    pub tm_mad: String,
    pub last_mon_time: i64,
    pub share: HostShare,
    pub template: Template,
}

impl Host {
    pub fn write_xml(&self, out: &mut String) {
        out.push_str("<HOST>");
        elem_num(out, "ID", self.id);
        elem(out, "NAME", &self.name);
        elem_num(out, "STATE", self.state as i32);
        elem(out, "IM_MAD", &self.im_mad);
        elem(out, "VM_MAD", &self.vm_mad);
        elem(out, "VN_MAD", &self.vn_mad);
        elem(out, "TM_MAD", &self.tm_mad);
        elem_num(out, "LAST_MON_TIME", self.last_mon_time);
        let s = &self.share;
        out.push_str("<HOST_SHARE>");
        for (tag, v) in [
            ("DISK_USAGE", s.disk_usage),
            ("MEM_USAGE", s.mem_usage),
            ("CPU_USAGE", s.cpu_usage),
            ("MAX_DISK", s.max_disk),
            ("MAX_MEM", s.max_mem),
            ("MAX_CPU", s.max_cpu),
            ("FREE_DISK", s.free_disk),
            ("FREE_MEM", s.free_mem),
            ("FREE_CPU", s.free_cpu),
            ("USED_DISK", s.used_disk),
            ("USED_MEM", s.used_mem),
            ("USED_CPU", s.used_cpu),
            ("RUNNING_VMS", s.running_vms),
        ] {
            elem_num(out, tag, v);
        }
        out.push_str("</HOST_SHARE>");
        self.template.write_xml(out);
        out.push_str("</HOST>");
    }

    /// Value of a host attribute for REQUIREMENTS/RANK: the host TEMPLATE first, then the
    /// HOST_SHARE counters and the top-level fields, as 3.2's scheduler looks them up in the
    /// host document.
    pub fn attribute(&self, name: &str) -> Option<String> {
        if let Some(v) = self.template.get(name) {
            return Some(v.to_string());
        }
        let s = &self.share;
        let n = match name {
            "DISK_USAGE" => s.disk_usage,
            "MEM_USAGE" => s.mem_usage,
            "CPU_USAGE" => s.cpu_usage,
            "MAX_DISK" => s.max_disk,
            "MAX_MEM" => s.max_mem,
            "MAX_CPU" => s.max_cpu,
            "FREE_DISK" => s.free_disk,
            "FREE_MEM" => s.free_mem,
            "FREE_CPU" => s.free_cpu,
            "USED_DISK" => s.used_disk,
            "USED_MEM" => s.used_mem,
            "USED_CPU" => s.used_cpu,
            "RUNNING_VMS" => s.running_vms,
            "ID" => self.id as i64,
            "STATE" => self.state as i64,
            "LAST_MON_TIME" => self.last_mon_time,
            "NAME" => return Some(self.name.clone()),
            "IM_MAD" => return Some(self.im_mad.clone()),
            "VM_MAD" => return Some(self.vm_mad.clone()),
            "VN_MAD" => return Some(self.vn_mad.clone()),
            "TM_MAD" => return Some(self.tm_mad.clone()),
            _ => return None,
        };
        Some(n.to_string())
    }
}
