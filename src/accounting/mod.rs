//! Accounting from the VMs' history records: per VM and per user, over a time window, the
//! seconds each VM ran, CPU-hours, memory GB-hours, disk and VM counts (`stratusd
//! accounting`).
//!
//! A history record is one placement of a VM on a host (`SEQ`); it ran from `RSTIME` to
//! `RETIME` (0 while it still runs). Its running time in the window is the overlap of that
//! interval with the window, to the second. A record that never ran (`RSTIME` 0: its prolog or
//! boot failed) counts 0 s. A VM takes part when one of its records overlaps the window at all
//! (from `STIME` to `ETIME`, or now).
//!
//! `--json` prints what OpenNebula 3.2's `oneacct -j` printed, so that a site's accounting
//! scripts (StratusLab's `oneacct -u UID -j` and `-x`) only change the command name; see
//! [`json_3_2`] for where the numbers are more exact than 3.2's.

use crate::adminctl::doc::Node;

/// The accounting period; `None` is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// The time "now" of records still open.
    pub now: i64,
}

impl Window {
    fn end(&self) -> i64 {
        self.to.unwrap_or(self.now).min(self.now)
    }

    /// Seconds of `[start, end)` inside the window.
    fn overlap(&self, start: i64, end: i64) -> i64 {
        let s = start.max(self.from.unwrap_or(i64::MIN));
        let e = end.min(self.end());
        (e - s).max(0)
    }

    fn touches(&self, start: i64, end: i64) -> bool {
        start <= self.end() && end >= self.from.unwrap_or(i64::MIN)
    }
}

/// One history record, as the VM documents carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    pub seq: i64,
    pub hostname: String,
    pub hid: i64,
    pub stime: i64,
    pub etime: i64,
    pub pstime: i64,
    pub petime: i64,
    pub rstime: i64,
    pub retime: i64,
    pub estime: i64,
    pub eetime: i64,
    pub reason: i64,
}

impl Slice {
    fn from_node(h: &Node) -> Slice {
        Slice {
            seq: h.int("SEQ"),
            hostname: h.get("HOSTNAME").to_string(),
            hid: h.int("HID"),
            stime: h.int("STIME"),
            etime: h.int("ETIME"),
            pstime: h.int("PSTIME"),
            petime: h.int("PETIME"),
            rstime: h.int("RSTIME"),
            retime: h.int("RETIME"),
            estime: h.int("ESTIME"),
            eetime: h.int("EETIME"),
            reason: h.int("REASON"),
        }
    }

    /// Seconds this record ran inside the window.
    pub fn running_seconds(&self, w: &Window) -> i64 {
        if self.rstime == 0 {
            return 0;
        }
        let end = if self.retime != 0 {
            self.retime
        } else if self.etime != 0 {
            // Closed without a running end (the VM failed while running).
            self.etime
        } else {
            w.now
        };
        w.overlap(self.rstime, end)
    }

    fn in_window(&self, w: &Window) -> bool {
        let end = if self.etime == 0 { w.now } else { self.etime };
        w.touches(self.stime, end)
    }
}

/// What accounting needs of one VM.
#[derive(Debug, Clone, PartialEq)]
pub struct VmUsage {
    pub id: i64,
    pub name: String,
    pub uid: i64,
    pub gid: i64,
    pub uname: String,
    /// TEMPLATE/MEMORY, MiB.
    pub memory_mb: i64,
    /// TEMPLATE/CPU.
    pub cpu: f64,
    /// TEMPLATE/VCPU (0 when absent, as 3.2's acctd stored it).
    pub vcpu: i64,
    pub stime: i64,
    pub etime: i64,
    pub last_poll: i64,
    pub net_tx: String,
    pub net_rx: String,
    /// The provisioned size of the VM's disks, bytes: as its prolog recorded them
    /// (`stratusd.vmpool.disks`), or else estimated from the template (DISK/SIZE, the
    /// registered image's SIZE; Marketplace and pdisk sources unknown, 0).
    pub disk_bytes: i64,
    /// Whether `disk_bytes` is what the prolog recorded (not the template's estimate).
    pub disk_recorded: bool,
    /// The records that overlap the window, in order.
    pub slices: Vec<Slice>,
    /// Seconds run inside the window, all records together.
    pub seconds: i64,
}

impl VmUsage {
    /// The usage of a VM document (`one.vm.info`: every history record) in `w`; `None` when
    /// the VM has no record in the window. `image_mb` gives an image's size by id.
    pub fn of(vm: &Node, w: &Window, image_mb: &dyn Fn(i64) -> Option<i64>) -> Option<VmUsage> {
        let slices: Vec<Slice> = vm
            .at("HISTORY_RECORDS")
            .map(|h| h.all("HISTORY").map(Slice::from_node).collect())
            .unwrap_or_default();
        let slices: Vec<Slice> = slices.into_iter().filter(|s| s.in_window(w)).collect();
        if slices.is_empty() {
            return None;
        }
        let seconds = slices.iter().map(|s| s.running_seconds(w)).sum();
        let template = vm.child("TEMPLATE");
        let disk_mb: i64 = template
            .map(|t| {
                t.all("DISK")
                    .map(|d| {
                        let size = d.get("SIZE").trim();
                        if let Ok(mb) = size.parse::<f64>() {
                            return mb as i64;
                        }
                        match d.get("IMAGE_ID").trim().parse::<i64>() {
                            Ok(id) => image_mb(id).unwrap_or(0),
                            Err(_) => 0,
                        }
                    })
                    .sum()
            })
            .unwrap_or(0);
        Some(VmUsage {
            id: vm.int("ID"),
            name: vm.get("NAME").to_string(),
            uid: vm.int("UID"),
            gid: vm.int("GID"),
            uname: vm.get("UNAME").to_string(),
            memory_mb: vm.int("TEMPLATE/MEMORY"),
            cpu: vm.float("TEMPLATE/CPU"),
            vcpu: vm.int("TEMPLATE/VCPU"),
            stime: vm.int("STIME"),
            etime: vm.int("ETIME"),
            last_poll: vm.int("LAST_POLL"),
            net_tx: vm.get("NET_TX").to_string(),
            net_rx: vm.get("NET_RX").to_string(),
            disk_bytes: disk_mb.saturating_mul(1 << 20),
            disk_recorded: false,
            slices,
            seconds,
        })
    }

    pub fn hours(&self) -> f64 {
        self.seconds as f64 / 3600.0
    }

    pub fn cpu_hours(&self) -> f64 {
        self.cpu * self.hours()
    }

    pub fn memory_gb_hours(&self) -> f64 {
        self.memory_mb as f64 / 1024.0 * self.hours()
    }

    pub fn disk_gb(&self) -> f64 {
        self.disk_bytes as f64 / (1u64 << 30) as f64
    }

    /// Replaces the template's estimate with the sizes the VM's prolog recorded.
    pub fn set_recorded_disks(&mut self, bytes: i64) {
        self.disk_bytes = bytes;
        self.disk_recorded = true;
    }

    pub fn disk_gb_hours(&self) -> f64 {
        self.disk_gb() * self.hours()
    }
}

/// One user's VMs and their sums.
#[derive(Debug, Clone, PartialEq)]
pub struct UserUsage {
    pub uid: i64,
    pub name: String,
    pub vms: Vec<VmUsage>,
}

impl UserUsage {
    pub fn seconds(&self) -> i64 {
        self.vms.iter().map(|v| v.seconds).sum()
    }
    pub fn cpu_hours(&self) -> f64 {
        self.vms.iter().map(VmUsage::cpu_hours).sum()
    }
    pub fn memory_gb_hours(&self) -> f64 {
        self.vms.iter().map(VmUsage::memory_gb_hours).sum()
    }
    pub fn disk_gb(&self) -> f64 {
        self.vms.iter().map(VmUsage::disk_gb).sum()
    }
    pub fn disk_gb_hours(&self) -> f64 {
        self.vms.iter().map(VmUsage::disk_gb_hours).sum()
    }
}

/// Groups VMs by owner, users and VMs in id order.
pub fn by_user(mut vms: Vec<VmUsage>) -> Vec<UserUsage> {
    vms.sort_by_key(|v| (v.uid, v.id));
    let mut users: Vec<UserUsage> = Vec::new();
    for vm in vms {
        match users.last_mut() {
            Some(u) if u.uid == vm.uid => u.vms.push(vm),
            _ => users.push(UserUsage {
                uid: vm.uid,
                name: vm.uname.clone(),
                vms: vec![vm],
            }),
        }
    }
    users
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn json_f64(v: f64) -> String {
    serde_json::Value::from(v).to_string()
}

/// The slice object of 3.2's acctd: the history record's columns, then the VM's.
fn slice_json(vm: &VmUsage, s: &Slice) -> String {
    format!(
        "{{\"vm_id\":{},\"hid\":{},\"hostname\":{},\"seq\":{},\"pstime\":{},\"petime\":{},\"rstime\":{},\"retime\":{},\"estime\":{},\"eetime\":{},\"reason\":{},\"id\":{},\"name\":{},\"uid\":{},\"gid\":{},\"mem\":{},\"cpu\":{},\"vcpu\":{},\"stime\":{},\"etime\":{}}}",
        vm.id,
        s.hid,
        json_str(&s.hostname),
        s.seq,
        s.pstime,
        s.petime,
        s.rstime,
        s.retime,
        s.estime,
        s.eetime,
        s.reason,
        vm.id,
        json_str(&vm.name),
        vm.uid,
        vm.gid,
        vm.memory_mb,
        json_f64(vm.cpu),
        vm.vcpu,
        vm.stime,
        vm.etime
    )
}

/// `oneacct -j` of OpenNebula 3.2: `{"<uid>":{"vms":{"<vmid>":{"slices":[...],"time":S,
/// "network":{...},"vmid":N}}}}`, on one line, keys in 3.2's order.
///
/// Where it differs, on purpose: `time` is the running time in the window to the second
/// (3.2's counted a record that never ran as running since 1970, and a record still running up
/// to the end of the window even when that lies in the future); `network` carries the VM's
/// NET_TX/NET_RX counters (3.2 summed acctd's samples; stratusd keeps no samples), as strings
/// as StratusLab's MySQL-backed acctd printed them, with the last poll as `ptimestamp`.
pub fn json_3_2(users: &[UserUsage]) -> String {
    let user_items: Vec<String> = users
        .iter()
        .map(|u| {
            let vms: Vec<String> = u
                .vms
                .iter()
                .map(|vm| {
                    let slices: Vec<String> =
                        vm.slices.iter().map(|s| slice_json(vm, s)).collect();
                    format!(
                        "\"{}\":{{\"slices\":[{}],\"time\":{},\"network\":{{\"ptimestamp\":{},\"vm_id\":{},\"net_tx\":{},\"net_rx\":{}}},\"vmid\":{}}}",
                        vm.id,
                        slices.join(","),
                        vm.seconds,
                        vm.last_poll,
                        vm.id,
                        json_str(&vm.net_tx),
                        json_str(&vm.net_rx),
                        vm.id
                    )
                })
                .collect();
            format!("\"{}\":{{\"vms\":{{{}}}}}", u.uid, vms.join(","))
        })
        .collect();
    format!("{{{}}}", user_items.join(","))
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    crate::model::xml::escape_into(&mut out, s);
    out
}

/// `oneacct -x` of OpenNebula 3.2: one `<user id="...">` element per user (several users give
/// several root elements, as 3.2 printed them), each VM with its name, time, cpu, mem,
/// network counters and one `<slice seq="...">` per record. Values are escaped (3.2's were
/// not), and `<name>` holds the VM's name (3.2's was always empty).
pub fn xml_3_2(users: &[UserUsage]) -> String {
    let mut out = String::new();
    let tag = |out: &mut String, indent: &str, name: &str, value: &str| {
        out.push_str(&format!("{indent}<{name}>{}</{name}>\n", xml_escape(value)));
    };
    for u in users {
        out.push_str(&format!("<user id=\"{}\">\n", u.uid));
        for vm in &u.vms {
            out.push_str(&format!("  <vm id=\"{}\">\n", vm.id));
            tag(&mut out, "    ", "name", &vm.name);
            tag(&mut out, "    ", "time", &vm.seconds.to_string());
            tag(&mut out, "    ", "cpu", &json_f64(vm.cpu));
            tag(&mut out, "    ", "mem", &vm.memory_mb.to_string());
            tag(&mut out, "    ", "net_rx", &vm.net_rx);
            tag(&mut out, "    ", "net_tx", &vm.net_tx);
            for s in &vm.slices {
                out.push_str(&format!("    <slice seq=\"{}\">\n", s.seq));
                let fields: [(&str, String); 20] = [
                    ("vm_id", vm.id.to_string()),
                    ("hid", s.hid.to_string()),
                    ("hostname", s.hostname.clone()),
                    ("seq", s.seq.to_string()),
                    ("pstime", s.pstime.to_string()),
                    ("petime", s.petime.to_string()),
                    ("rstime", s.rstime.to_string()),
                    ("retime", s.retime.to_string()),
                    ("estime", s.estime.to_string()),
                    ("eetime", s.eetime.to_string()),
                    ("reason", s.reason.to_string()),
                    ("id", vm.id.to_string()),
                    ("name", vm.name.clone()),
                    ("uid", vm.uid.to_string()),
                    ("gid", vm.gid.to_string()),
                    ("mem", vm.memory_mb.to_string()),
                    ("cpu", json_f64(vm.cpu)),
                    ("vcpu", vm.vcpu.to_string()),
                    ("stime", vm.stime.to_string()),
                    ("etime", vm.etime.to_string()),
                ];
                for (k, v) in fields {
                    tag(&mut out, "      ", k, &v);
                }
                out.push_str("    </slice>\n");
            }
            out.push_str("  </vm>\n");
        }
        out.push_str("</user>\n");
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub const CSV_HEADER: &str = "user_id,user,vm_id,vm_name,seconds,hours,cpu,cpu_hours,memory_mb,memory_gb_hours,disk_gb,disk_gb_hours,net_rx_bytes,net_tx_bytes,disk_bytes";

/// One CSV line per VM (RFC 4180 quoting), after [`CSV_HEADER`].
pub fn csv(users: &[UserUsage]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for u in users {
        for vm in &u.vms {
            out.push_str(&format!(
                "{},{},{},{},{},{:.6},{},{:.6},{},{:.6},{:.3},{:.6},{},{},{}\n",
                u.uid,
                csv_field(&u.name),
                vm.id,
                csv_field(&vm.name),
                vm.seconds,
                vm.hours(),
                vm.cpu,
                vm.cpu_hours(),
                vm.memory_mb,
                vm.memory_gb_hours(),
                vm.disk_gb(),
                vm.disk_gb_hours(),
                csv_field(&vm.net_rx),
                csv_field(&vm.net_tx),
                vm.disk_bytes
            ));
        }
    }
    out
}

/// The default table: one block per user (VM count and sums), a line per VM, and the totals.
pub fn table(users: &[UserUsage], w: &Window) -> String {
    use crate::adminctl::table::{col, duration, header, left, row};
    let columns = [
        col("VMID", 6),
        left("NAME", 16),
        col("TIME", 11),
        col("CPU", 5),
        col("CPU-H", 10),
        col("MEM-MB", 7),
        col("MEM-GBH", 10),
        col("DISK-GB", 8),
        col("DISK-GBH", 10),
    ];
    let when = |t: Option<i64>, open: &str| match t {
        Some(t) => crate::adminctl::table::time_to_str(t),
        None => open.to_string(),
    };
    let mut out = format!(
        "Usage from {} to {}\n",
        when(w.from, "the beginning"),
        when(w.to, "now")
    );
    let (mut vms, mut cpu_h, mut mem_gbh, mut disk_gbh) = (0usize, 0.0, 0.0, 0.0);
    for u in users {
        out.push('\n');
        out.push_str(&format!(
            "# User {} ({}): {} VM{}, {} run, {:.2} CPU-hours, {:.2} memory GB-hours, {:.2} disk GB-hours\n",
            u.name,
            u.uid,
            u.vms.len(),
            if u.vms.len() == 1 { "" } else { "s" },
            duration(u.seconds()),
            u.cpu_hours(),
            u.memory_gb_hours(),
            u.disk_gb_hours()
        ));
        out.push_str(&header(&columns));
        out.push('\n');
        for vm in &u.vms {
            out.push_str(&row(
                &columns,
                &[
                    vm.id.to_string(),
                    vm.name.clone(),
                    duration(vm.seconds),
                    vm.cpu.to_string(),
                    format!("{:.2}", vm.cpu_hours()),
                    vm.memory_mb.to_string(),
                    format!("{:.2}", vm.memory_gb_hours()),
                    format!("{:.2}", vm.disk_gb()),
                    format!("{:.2}", vm.disk_gb_hours()),
                ],
            ));
            out.push('\n');
        }
        vms += u.vms.len();
        cpu_h += u.cpu_hours();
        mem_gbh += u.memory_gb_hours();
        disk_gbh += u.disk_gb_hours();
    }
    out.push_str(&format!(
        "\nTotal: {} user{}, {vms} VM{}, {cpu_h:.2} CPU-hours, {mem_gbh:.2} memory GB-hours, {disk_gbh:.2} disk GB-hours\n",
        users.len(),
        if users.len() == 1 { "" } else { "s" },
        if vms == 1 { "" } else { "s" },
    ));
    out
}

/// Parses a time of `--from`/`--to`: epoch seconds, or `YYYY-MM-DD[ HH:MM[:SS]]` (also with
/// `T`) in local time, or the same ending in `Z` for UTC.
pub fn parse_time(text: &str) -> Option<i64> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok();
    }
    let (t, utc) = match t.strip_suffix('Z') {
        Some(rest) => (rest, true),
        None => (t, false),
    };
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&day) {
        return None;
    }
    let (h, mi, s) = match time {
        None => (0, 0, 0),
        Some(tm) => {
            let mut p = tm.split(':').map(|x| x.parse::<i64>().ok());
            let h = p.next()??;
            let mi = p.next()??;
            let s = match p.next() {
                Some(v) => v?,
                None => 0,
            };
            if p.next().is_some()
                || !(0..24).contains(&h)
                || !(0..60).contains(&mi)
                || !(0..61).contains(&s)
            {
                return None;
            }
            (h, mi, s)
        }
    };
    if utc {
        Some(days_from_civil(y, mo, day) * 86_400 + h * 3600 + mi * 60 + s)
    } else {
        local_mktime(y, mo, day, h, mi, s)
    }
}

use crate::timefmt::days_from_civil;

fn local_mktime(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    // SAFETY: mktime reads and normalises the tm we own; all-zero is a valid tm.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = i32::try_from(y - 1900).ok()?;
    tm.tm_mon = (mo - 1) as i32;
    tm.tm_mday = d as i32;
    tm.tm_hour = h as i32;
    tm.tm_min = mi as i32;
    tm.tm_sec = s as i32;
    tm.tm_isdst = -1;
    let t = unsafe { libc::mktime(&mut tm) };
    (t != -1).then_some(t)
}

#[cfg(test)]
mod tests;

/// `stratusd accounting`.
#[derive(Debug, Clone, clap::Args)]
pub struct AccountingArgs {
    /// Only this user's VMs (name or id; 3.2's `-u`).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Start of the period: epoch seconds, or YYYY-MM-DD[ HH:MM[:SS]] local time (Z: UTC).
    #[arg(short = 's', long = "from", visible_alias = "start")]
    pub from: Option<String>,
    /// End of the period (default now), same forms.
    #[arg(short = 'e', long = "to", visible_alias = "end")]
    pub to: Option<String>,
    /// What 3.2's `oneacct -j` printed.
    #[arg(short = 'j', long, conflicts_with_all = ["xml", "csv"])]
    pub json: bool,
    /// What 3.2's `oneacct -x` printed.
    #[arg(short = 'x', long, conflicts_with = "csv")]
    pub xml: bool,
    /// One line per VM, with a header.
    #[arg(long)]
    pub csv: bool,
}

/// The VMs of the pool (`flag`: -2 all, or one user's id) with their usage in `w`: pool pages
/// of any state; `one.vm.info` for the VMs with more than one history record (a listing
/// carries only the last).
pub fn collect(
    client: &crate::oneclient::OneClient,
    flag: i32,
    w: &Window,
) -> Result<Vec<VmUsage>, crate::adminctl::CliError> {
    use crate::adminctl::{doc, for_each_object, Family};
    use crate::oneclient::Param;
    let images: std::collections::HashMap<i64, i64> = {
        let text = client
            .call(
                "one.imagepool.info",
                &[Param::Int(-2), Param::Int(-1), Param::Int(-1)],
            )?
            .into_text();
        doc::parse(&text)?
            .all("IMAGE")
            .map(|i| (i.int("ID"), i.int("SIZE")))
            .collect()
    };
    let image_mb = |id: i64| images.get(&id).copied();
    let recorded = recorded_disks(client, flag)?;
    let mut out = Vec::new();
    for_each_object(client, Family::Vm, flag, -2, 500, |raw| {
        let vm = doc::parse(raw)?;
        // Created after the period, or finished before it: nothing to fetch.
        let (stime, etime) = (vm.int("STIME"), vm.int("ETIME"));
        if stime > w.end() || (etime != 0 && etime < w.from.unwrap_or(i64::MIN)) {
            return Ok(());
        }
        let last_seq = vm
            .at("HISTORY_RECORDS")
            .and_then(|h| h.all("HISTORY").last())
            .map(|h| h.int("SEQ"))
            .unwrap_or(0);
        let full = if last_seq > 0 {
            let text = client
                .call("one.vm.info", &[Param::Int(vm.int("ID") as i32)])?
                .into_text();
            doc::parse(&text)?
        } else {
            vm
        };
        if let Some(mut u) = VmUsage::of(&full, w, &image_mb) {
            if let Some(&bytes) = recorded.get(&u.id) {
                u.set_recorded_disks(bytes);
            }
            out.push(u);
        }
        Ok(())
    })?;
    Ok(out)
}

/// The disk sizes the VMs' prologs recorded (`stratusd.vmpool.disks`, stratusd-only): VM id
/// → bytes, all its disks together. An oned (which has no such call: fault -506) gives none,
/// and the template's estimate stands.
fn recorded_disks(
    client: &crate::oneclient::OneClient,
    flag: i32,
) -> Result<std::collections::HashMap<i64, i64>, crate::adminctl::CliError> {
    use crate::oneclient::{Param, RpcError};
    let answer = client.call(
        "stratusd.vmpool.disks",
        &[Param::Int(flag), Param::Int(-1), Param::Int(-1)],
    );
    let text = match answer {
        Ok(v) => v.into_text(),
        Err(RpcError::Fault { code: -506, .. }) => return Ok(Default::default()),
        Err(e) => return Err(e.into()),
    };
    Ok(parse_recorded_disks(&crate::adminctl::doc::parse(&text)?))
}

/// VM id → the sum of its recorded disks' `BYTES`, from `<VM_DISKS>`.
pub fn parse_recorded_disks(doc: &Node) -> std::collections::HashMap<i64, i64> {
    doc.all("VM")
        .map(|vm| {
            let bytes = vm
                .all("DISK")
                .map(|d| d.get("BYTES").trim().parse::<i64>().unwrap_or(0))
                .fold(0i64, i64::saturating_add);
            (vm.int("ID"), bytes)
        })
        .collect()
}

/// `stratusd accounting`: the process's exit code.
pub fn main(args: &AccountingArgs) -> std::process::ExitCode {
    match run(args) {
        Ok(text) => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cannot write the output: {e}");
                    std::process::ExitCode::from(255)
                }
            }
        }
        Err(e) => {
            eprintln!("{}", e.message());
            std::process::ExitCode::from(255)
        }
    }
}

fn run(args: &AccountingArgs) -> Result<String, crate::adminctl::CliError> {
    use crate::adminctl::{resolve, CliError, Family};
    let time = |flag: &str, v: &Option<String>| -> Result<Option<i64>, CliError> {
        match v {
            None => Ok(None),
            Some(text) => parse_time(text)
                .map(Some)
                .ok_or_else(|| CliError::Usage(format!("{flag} {text:?}: not a time"))),
        }
    };
    let w = Window {
        from: time("--from", &args.from)?,
        to: time("--to", &args.to)?,
        now: crate::model::now(),
    };
    if let (Some(f), Some(t)) = (w.from, w.to) {
        if t < f {
            return Err(CliError::Usage("--to is before --from".into()));
        }
    }
    let client = crate::oneclient::OneClient::from_env(concat!(
        "stratusd-accounting/",
        env!("CARGO_PKG_VERSION")
    ))?;
    let flag = match &args.user {
        Some(u) => resolve(&client, Family::User, u)?,
        None => -2,
    };
    let users = by_user(collect(&client, flag, &w)?);
    Ok(if args.json {
        format!("{}\n", json_3_2(&users))
    } else if args.xml {
        xml_3_2(&users)
    } else if args.csv {
        csv(&users)
    } else {
        table(&users, &w)
    })
}
