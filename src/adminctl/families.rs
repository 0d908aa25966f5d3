//! The object families of the command line: their pool and info methods, the columns of their
//! 3.2 `list` tables (sizes as 3.2's `/etc/one/cli/*.yaml` set them) and their `show` text.

use super::doc::{template_str, Node};
use super::table::{col, duration, left, section, time_to_str, unit_to_str, yes_no, Column};

/// How a list is filtered and shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShowOptions {
    /// `-n`: user and group ids instead of names.
    pub numeric: bool,
    /// `-k`: memory in KiB.
    pub kilobytes: bool,
    /// The time "now" of TIME columns.
    pub now: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Vm,
    Host,
    Net,
    User,
    Image,
    Template,
}

pub const VM_STATES: [&str; 8] = [
    "INIT",
    "PENDING",
    "HOLD",
    "ACTIVE",
    "STOPPED",
    "SUSPENDED",
    "DONE",
    "FAILED",
];
const SHORT_VM_STATES: [&str; 8] = [
    "init", "pend", "hold", "actv", "stop", "susp", "done", "fail",
];
pub const LCM_STATES: [&str; 17] = [
    "LCM_INIT",
    "PROLOG",
    "BOOT",
    "RUNNING",
    "MIGRATE",
    "SAVE_STOP",
    "SAVE_SUSPEND",
    "SAVE_MIGRATE",
    "PROLOG_MIGRATE",
    "PROLOG_RESUME",
    "EPILOG_STOP",
    "EPILOG",
    "SHUTDOWN",
    "CANCEL",
    "FAILURE",
    "CLEANUP",
    "UNKNOWN",
];
const SHORT_LCM_STATES: [&str; 17] = [
    "", "prol", "boot", "runn", "migr", "save", "save", "save", "migr", "prol", "epil", "epil",
    "shut", "shut", "fail", "clea", "unkn",
];
const HOST_STATES: [&str; 5] = ["INIT", "MONITORING", "MONITORED", "ERROR", "DISABLED"];
const SHORT_HOST_STATES: [&str; 5] = ["on", "on", "on", "err", "off"];
const SHORT_IMAGE_STATES: [&str; 6] = ["init", "rdy", "used", "disa", "lock", "err"];
const IMAGE_TYPES: [&str; 3] = ["OS", "CDROM", "DATABLOCK"];
const SHORT_IMAGE_TYPES: [&str; 3] = ["OS", "CD", "DB"];
const VN_TYPES: [&str; 2] = ["RANGED", "FIXED"];
const SHORT_VN_TYPES: [&str; 2] = ["R", "F"];
const SHORT_REASONS: [&str; 5] = ["none", "erro", "stop", "user", "canc"];

fn pick<'a>(table: &[&'a str], index: i64) -> &'a str {
    usize::try_from(index)
        .ok()
        .and_then(|i| table.get(i))
        .copied()
        .unwrap_or("")
}

/// 3.2's `OneVMHelper.state_to_str`: the short state, or the short LCM state when ACTIVE.
pub fn vm_short_state(state: i64, lcm: i64) -> &'static str {
    let s = pick(&SHORT_VM_STATES, state);
    if s == "actv" {
        pick(&SHORT_LCM_STATES, lcm)
    } else {
        s
    }
}

const VM_COLUMNS: [Column; 9] = [
    col("ID", 6),
    left("USER", 8),
    left("GROUP", 8),
    left("NAME", 12),
    col("STAT", 4),
    col("CPU", 3),
    col("MEM", 7),
    col("HOSTNAME", 15),
    col("TIME", 11),
];

const HOST_COLUMNS: [Column; 10] = [
    col("ID", 4),
    left("NAME", 15),
    col("RVM", 6),
    col("TCPU", 6),
    col("FCPU", 6),
    col("ACPU", 6),
    col("TMEM", 6),
    col("FMEM", 6),
    col("AMEM", 6),
    col("STAT", 6),
];

const NET_COLUMNS: [Column; 7] = [
    col("ID", 4),
    left("USER", 8),
    left("GROUP", 8),
    left("NAME", 15),
    col("TYPE", 6),
    col("BRIDGE", 6),
    col("LEASES", 7),
];

const USER_COLUMNS: [Column; 5] = [
    col("ID", 4),
    left("GROUP", 8),
    left("NAME", 15),
    left("AUTH", 8),
    col("PASSWORD", 50),
];

const IMAGE_COLUMNS: [Column; 10] = [
    col("ID", 4),
    left("USER", 8),
    left("GROUP", 8),
    left("NAME", 12),
    col("SIZE", 7),
    col("TYPE", 4),
    col("REGTIME", 16),
    col("PERSISTENT", 3),
    col("STAT", 4),
    col("RVMS", 5),
];

const TEMPLATE_COLUMNS: [Column; 5] = [
    col("ID", 4),
    left("USER", 8),
    left("GROUP", 8),
    left("NAME", 15),
    col("REGTIME", 20),
];

impl Family {
    pub fn element(self) -> &'static str {
        match self {
            Family::Vm => "VM",
            Family::Host => "HOST",
            Family::Net => "VNET",
            Family::User => "USER",
            Family::Image => "IMAGE",
            Family::Template => "VMTEMPLATE",
        }
    }

    pub fn pool_element(self) -> &'static str {
        match self {
            Family::Vm => "VM_POOL",
            Family::Host => "HOST_POOL",
            Family::Net => "VNET_POOL",
            Family::User => "USER_POOL",
            Family::Image => "IMAGE_POOL",
            Family::Template => "VMTEMPLATE_POOL",
        }
    }

    pub fn pool_method(self) -> &'static str {
        match self {
            Family::Vm => "one.vmpool.info",
            Family::Host => "one.hostpool.info",
            Family::Net => "one.vnpool.info",
            Family::User => "one.userpool.info",
            Family::Image => "one.imagepool.info",
            Family::Template => "one.templatepool.info",
        }
    }

    pub fn info_method(self) -> &'static str {
        match self {
            Family::Vm => "one.vm.info",
            Family::Host => "one.host.info",
            Family::Net => "one.vn.info",
            Family::User => "one.user.info",
            Family::Image => "one.image.info",
            Family::Template => "one.template.info",
        }
    }

    /// Whether the pool method takes a filter flag (and a start/end id range).
    pub fn filtered(self) -> bool {
        !matches!(self, Family::Host | Family::User)
    }

    /// The 3.2 name of the object in messages (`VM named x not found.`).
    pub fn rname(self) -> &'static str {
        self.element()
    }

    pub fn columns(self) -> &'static [Column] {
        match self {
            Family::Vm => &VM_COLUMNS,
            Family::Host => &HOST_COLUMNS,
            Family::Net => &NET_COLUMNS,
            Family::User => &USER_COLUMNS,
            Family::Image => &IMAGE_COLUMNS,
            Family::Template => &TEMPLATE_COLUMNS,
        }
    }

    /// The cells of one object's row.
    pub fn row(self, n: &Node, o: &ShowOptions) -> Vec<String> {
        let user = || {
            if o.numeric {
                n.get("UID").to_string()
            } else {
                n.get("UNAME").to_string()
            }
        };
        let group = || {
            if o.numeric {
                n.get("GID").to_string()
            } else {
                n.get("GNAME").to_string()
            }
        };
        let s = |p: &str| n.get(p).to_string();
        match self {
            Family::Vm => {
                let state = n.int("STATE");
                let host = if state == 3 || state == 5 {
                    n.get("HISTORY_RECORDS/HISTORY/HOSTNAME").to_string()
                } else {
                    String::new()
                };
                let etime = match n.int("ETIME") {
                    0 => o.now,
                    e => e,
                };
                vec![
                    s("ID"),
                    user(),
                    group(),
                    s("NAME"),
                    vm_short_state(state, n.int("LCM_STATE")).to_string(),
                    s("CPU"),
                    unit_to_str(n.int("MEMORY"), o.kilobytes, 'K'),
                    host,
                    duration(etime - n.int("STIME")),
                ]
            }
            Family::Host => {
                let max_cpu = n.int("HOST_SHARE/MAX_CPU");
                let avail_cpu = if max_cpu == 0 { 100 } else { max_cpu };
                vec![
                    s("ID"),
                    s("NAME"),
                    s("HOST_SHARE/RUNNING_VMS"),
                    max_cpu.to_string(),
                    (max_cpu - n.int("HOST_SHARE/USED_CPU")).to_string(),
                    (avail_cpu - n.int("HOST_SHARE/CPU_USAGE")).to_string(),
                    unit_to_str(n.int("HOST_SHARE/MAX_MEM"), o.kilobytes, 'K'),
                    unit_to_str(n.int("HOST_SHARE/FREE_MEM"), o.kilobytes, 'K'),
                    unit_to_str(
                        n.int("HOST_SHARE/MAX_MEM") - n.int("HOST_SHARE/MEM_USAGE"),
                        o.kilobytes,
                        'K',
                    ),
                    pick(&SHORT_HOST_STATES, n.int("STATE")).to_string(),
                ]
            }
            Family::Net => vec![
                s("ID"),
                user(),
                group(),
                s("NAME"),
                pick(&SHORT_VN_TYPES, n.int("TYPE")).to_string(),
                s("BRIDGE"),
                s("TOTAL_LEASES"),
            ],
            Family::User => vec![s("ID"), group(), s("NAME"), s("AUTH_DRIVER"), s("PASSWORD")],
            Family::Image => vec![
                s("ID"),
                user(),
                group(),
                s("NAME"),
                unit_to_str(n.int("SIZE"), o.kilobytes, 'M'),
                pick(&SHORT_IMAGE_TYPES, n.int("TYPE")).to_string(),
                time_to_str(n.int("REGTIME")),
                yes_no(n.get("PERSISTENT")).to_string(),
                pick(&SHORT_IMAGE_STATES, n.int("STATE")).to_string(),
                s("RUNNING_VMS"),
            ],
            Family::Template => vec![
                s("ID"),
                user(),
                group(),
                s("NAME"),
                time_to_str(n.int("REGTIME")),
            ],
        }
    }

    /// The `show` text of one object, as 3.2's `format_resource` printed it.
    pub fn show(self, n: &Node, o: &ShowOptions) -> String {
        let mut out = Vec::<String>::new();
        let kv = |w: usize, k: &str, v: &str| format!("{k:<w$}: {v:<20}");
        match self {
            Family::Vm => {
                let line = |k: &str, v: &str| kv(20, k, v);
                let state = n.int("STATE");
                out.push(section(
                    &format!("VIRTUAL MACHINE {} INFORMATION", n.get("ID")),
                    true,
                ));
                out.push(line("ID", n.get("ID")));
                out.push(line("NAME", n.get("NAME")));
                out.push(line("USER", n.get("UNAME")));
                out.push(line("GROUP", n.get("GNAME")));
                out.push(line("STATE", pick(&VM_STATES, state)));
                out.push(line("LCM_STATE", pick(&LCM_STATES, n.int("LCM_STATE"))));
                if state == 3 || state == 5 {
                    let last = n
                        .at("HISTORY_RECORDS")
                        .and_then(|h| h.all("HISTORY").last())
                        .map(|h| h.get("HOSTNAME").to_string())
                        .unwrap_or_default();
                    out.push(line("HOSTNAME", &last));
                }
                out.push(line("START TIME", &time_to_str(n.int("STIME"))));
                out.push(line("END TIME", &time_to_str(n.int("ETIME"))));
                let deploy = n.get("DEPLOY_ID");
                out.push(line(
                    "DEPLOY ID",
                    if deploy.is_empty() { "-" } else { deploy },
                ));
                out.push(String::new());
                out.push(section("VIRTUAL MACHINE MONITORING", false));
                out.push(line("USED MEMORY", n.get("MEMORY")));
                out.push(line("USED CPU", n.get("CPU")));
                out.push(line("NET_TX", n.get("NET_TX")));
                out.push(line("NET_RX", n.get("NET_RX")));
                out.push(String::new());
                permissions(&mut out, n, 20);
                out.push(section("VIRTUAL MACHINE TEMPLATE", false));
                out.push(template(n, true));
                if let Some(history) = n.at("HISTORY_RECORDS").filter(|h| !h.children.is_empty()) {
                    out.push(String::new());
                    out.push(section("VIRTUAL MACHINE HISTORY", false));
                    out.push(history_table(history, o));
                }
            }
            Family::Host => {
                let line = |k: &str, v: &str| kv(22, k, v);
                out.push(section(&format!("HOST {} INFORMATION", n.get("ID")), true));
                out.push(line("ID", n.get("ID")));
                out.push(line("NAME", n.get("NAME")));
                out.push(line("STATE", pick(&HOST_STATES, n.int("STATE"))));
                for (k, p) in [
                    ("IM_MAD", "IM_MAD"),
                    ("VM_MAD", "VM_MAD"),
                    ("VN_MAD", "VN_MAD"),
                    ("TM_MAD", "TM_MAD"),
                    ("LAST MONITORING TIME", "LAST_MON_TIME"),
                ] {
                    out.push(line(k, n.get(p)));
                }
                out.push(String::new());
                out.push(section("HOST SHARES", false));
                for (k, p) in [
                    ("MAX MEM", "MAX_MEM"),
                    ("USED MEM (REAL)", "USED_MEM"),
                    ("USED MEM (ALLOCATED)", "MEM_USAGE"),
                    ("MAX CPU", "MAX_CPU"),
                    ("USED CPU (REAL)", "USED_CPU"),
                    ("USED CPU (ALLOCATED)", "CPU_USAGE"),
                    ("MAX DISK", "MAX_DISK"),
                    ("USED DISK (REAL)", "USED_DISK"),
                    ("USED DISK (ALLOCATED)", "DISK_USAGE"),
                    ("RUNNING VMS", "RUNNING_VMS"),
                ] {
                    out.push(line(k, n.get(&format!("HOST_SHARE/{p}"))));
                }
                out.push(String::new());
                out.push(section("MONITORING INFORMATION", false));
                out.push(template(n, true));
            }
            Family::Net => {
                let line = |k: &str, v: &str| kv(15, k, v);
                out.push(section(
                    &format!("VIRTUAL NETWORK {} INFORMATION", n.get("ID")),
                    true,
                ));
                out.push(line("ID", n.get("ID")));
                out.push(line("NAME", n.get("NAME")));
                out.push(line("USER", n.get("UNAME")));
                out.push(line("GROUP", n.get("GNAME")));
                let kind = pick(&VN_TYPES, n.int("TYPE"));
                out.push(line("TYPE", kind));
                out.push(line("BRIDGE", n.get("BRIDGE")));
                out.push(line("VLAN", yes_no(n.get("VLAN"))));
                if n.child("PHYDEV").is_some() {
                    out.push(line("PHYSICAL DEVICE", n.get("PHYDEV")));
                }
                if n.child("VLAN_ID").is_some() {
                    out.push(line("VLAN ID", n.get("VLAN_ID")));
                }
                out.push(line("USED LEASES", n.get("TOTAL_LEASES")));
                out.push(String::new());
                permissions(&mut out, n, 15);
                out.push(section("VIRTUAL NETWORK TEMPLATE", false));
                out.push(template(n, false));
                if kind == "RANGED" {
                    out.push(String::new());
                    out.push(section("RANGE", false));
                    out.push(line("IP_START", n.get("RANGE/IP_START")));
                    out.push(line("IP_END", n.get("RANGE/IP_END")));
                }
                let leases: Vec<&Node> = n
                    .at("LEASES")
                    .map(|l| l.all("LEASE").collect())
                    .unwrap_or_default();
                let kinds: [(&str, LeaseFilter); 3] = [
                    ("LEASES ON HOLD", |l| {
                        l.int("USED") == 1 && l.int("VID") == -1
                    }),
                    ("USED LEASES", |l| l.int("USED") == 1 && l.int("VID") > -1),
                    ("FREE LEASES", |l| l.int("USED") == 0),
                ];
                for (title, keep) in kinds {
                    let lines: Vec<String> = leases
                        .iter()
                        .filter(|l| keep(l))
                        .map(|l| {
                            let wrapper = Node {
                                name: "LEASES".into(),
                                text: String::new(),
                                children: vec![(*l).clone()],
                            };
                            template_str(&wrapper, false)
                        })
                        .collect();
                    if !lines.is_empty() {
                        out.push(String::new());
                        out.push(section(title, false));
                        out.push(lines.join("\n"));
                    }
                }
            }
            Family::User => {
                let line = |k: &str, v: &str| kv(15, k, v);
                out.push(section(&format!("USER {} INFORMATION", n.get("ID")), true));
                out.push(line("ID", n.get("ID")));
                out.push(line("NAME", n.get("NAME")));
                out.push(line("GROUP", n.get("GNAME")));
                out.push(line("PASSWORD", n.get("PASSWORD")));
                out.push(line("AUTH_DRIVER", n.get("AUTH_DRIVER")));
                out.push(line("ENABLED", yes_no(n.get("ENABLED"))));
                out.push(String::new());
                out.push(section("USER TEMPLATE", false));
                out.push(template(n, true));
            }
            Family::Image => {
                let line = |k: &str, v: &str| kv(15, k, v);
                out.push(section(&format!("IMAGE {} INFORMATION", n.get("ID")), true));
                out.push(line("ID", n.get("ID")));
                out.push(line("NAME", n.get("NAME")));
                out.push(line("USER", n.get("UNAME")));
                out.push(line("GROUP", n.get("GNAME")));
                out.push(line("TYPE", pick(&IMAGE_TYPES, n.int("TYPE"))));
                out.push(line("REGISTER TIME", &time_to_str(n.int("REGTIME"))));
                out.push(line("PERSISTENT", yes_no(n.get("PERSISTENT"))));
                out.push(line("SOURCE", n.get("SOURCE")));
                for p in ["PATH", "FSTYPE"] {
                    if !n.get(p).is_empty() {
                        out.push(line(p, n.get(p)));
                    }
                }
                out.push(line("SIZE", n.get("SIZE")));
                out.push(line("STATE", pick(&SHORT_IMAGE_STATES, n.int("STATE"))));
                out.push(line("RUNNING_VMS", n.get("RUNNING_VMS")));
                out.push(String::new());
                permissions(&mut out, n, 15);
                out.push(section("IMAGE TEMPLATE", false));
                out.push(template(n, true));
            }
            Family::Template => {
                let line = |k: &str, v: &str| kv(15, k, v);
                out.push(section(
                    &format!("TEMPLATE {} INFORMATION", n.get("ID")),
                    true,
                ));
                out.push(line("ID", n.get("ID")));
                out.push(line("NAME", n.get("NAME")));
                out.push(line("USER", n.get("UNAME")));
                out.push(line("GROUP", n.get("GNAME")));
                out.push(line("REGISTER TIME", &time_to_str(n.int("REGTIME"))));
                out.push(String::new());
                permissions(&mut out, n, 15);
                out.push(section("TEMPLATE CONTENTS", false));
                out.push(template(n, true));
            }
        }
        out.join("\n")
    }
}

/// Which leases a block of `net show` lists.
type LeaseFilter = fn(&Node) -> bool;

fn template(n: &Node, indent: bool) -> String {
    n.child("TEMPLATE")
        .map(|t| template_str(t, indent))
        .unwrap_or_default()
}

/// The PERMISSIONS block: `um-` masks of owner, group and others.
fn permissions(out: &mut Vec<String>, n: &Node, width: usize) {
    out.push(section("PERMISSIONS", false));
    for who in ["OWNER", "GROUP", "OTHER"] {
        let mut mask = String::new();
        for (letter, bit) in [('u', "U"), ('m', "M"), ('a', "A")] {
            let set = n.get(&format!("PERMISSIONS/{who}_{bit}")) == "1";
            mask.push(if set { letter } else { '-' });
        }
        out.push(format!("{who:<width$}: {mask:<20}"));
    }
    out.push(String::new());
}

/// The VIRTUAL MACHINE HISTORY table of `onevm show`.
fn history_table(history: &Node, o: &ShowOptions) -> String {
    let columns = [
        col("SEQ", 4),
        col("HOSTNAME", 15),
        col("REASON", 6),
        col("START", 15),
        col("TIME", 11),
        col("PTIME", 11),
    ];
    let mut lines = vec![super::table::header(&columns)];
    for h in history.all("HISTORY") {
        let stime = h.int("STIME");
        let etime = match h.int("ETIME") {
            0 => o.now,
            e => e,
        };
        let pstime = h.int("PSTIME");
        let ptime = if pstime == 0 {
            0
        } else {
            match h.int("PETIME") {
                0 => o.now - pstime,
                e => e - pstime,
            }
        };
        lines.push(super::table::row(
            &columns,
            &[
                h.get("SEQ").to_string(),
                h.get("HOSTNAME").to_string(),
                pick(&SHORT_REASONS, h.int("REASON")).to_string(),
                time_to_str(stime),
                duration(etime - stime),
                duration(ptime),
            ],
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_states_as_3_2_abbreviated_them() {
        assert_eq!(vm_short_state(1, 0), "pend");
        assert_eq!(vm_short_state(3, 3), "runn");
        assert_eq!(vm_short_state(3, 6), "save");
        assert_eq!(vm_short_state(3, 16), "unkn");
        assert_eq!(vm_short_state(5, 0), "susp");
        assert_eq!(vm_short_state(7, 0), "fail");
        assert_eq!(vm_short_state(99, 0), "");
    }

    #[test]
    fn a_vm_row() {
        let vm = super::super::doc::parse(
            "<VM><ID>12</ID><UID>3</UID><GID>1</GID><UNAME>alice</UNAME><GNAME>users</GNAME><NAME>web</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE><STIME>1000</STIME><ETIME>0</ETIME><MEMORY>524288</MEMORY><CPU>12</CPU><HISTORY_RECORDS><HISTORY><HOSTNAME>node-1</HOSTNAME></HISTORY></HISTORY_RECORDS></VM>",
        )
        .unwrap();
        let o = ShowOptions {
            numeric: false,
            kilobytes: false,
            now: 1000 + 90_061,
        };
        assert_eq!(
            Family::Vm.row(&vm, &o),
            vec![
                "12",
                "alice",
                "users",
                "web",
                "runn",
                "12",
                "512M",
                "node-1",
                "01 01:01:01"
            ]
        );
        let n = ShowOptions { numeric: true, ..o };
        assert_eq!(
            Family::Vm.row(&vm, &n)[1..3],
            ["3".to_string(), "1".to_string()]
        );
    }
}
