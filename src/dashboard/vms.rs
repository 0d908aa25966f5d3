//! Virtual machines: the paged, filtered list and one VM's page with its actions.
//!
//! What is listed is what `one.vmpool.info` with filter -2 gives the viewer (every VM it may
//! USE); a VM's page is what `one.vm.info` lets it read; each action is the core call of
//! `one.vm.action`, `one.vm.deploy` or `one.vm.migrate`, and a refusal is shown with oned's
//! message.

use super::form::Form;
use super::html::{self, badge, csrf_field, Esc, Live, Notice, Page, Section, Url};
use super::viewer::Viewer;
use super::{refused, Reply};
use crate::api::error::oned_message;
use crate::core::authz::AuthItem;
use crate::core::command::Answer;
use crate::core::owned::{self, get_authorized, Owned};
use crate::core::{Command, Core, State};
use crate::model::acl::Op;
use crate::model::host::HostState;
use crate::model::vm::{LcmState, VmState};
use crate::model::{Kind, Oid, Vm};
use crate::template::{Attribute, Template};
use std::fmt::Write;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

/// Rows per page of the list.
pub const PAGE_SIZE: usize = 50;
/// The most of a VM's log read for its page, from the end.
const LOG_TAIL_BYTES: u64 = 64 * 1024;
const LOG_TAIL_LINES: usize = 200;
/// The most of a template shown.
const TEMPLATE_SHOWN: usize = 64 * 1024;
/// Suggestions offered in the owner and host filters.
const SUGGESTIONS: usize = 200;

/// The state a person reads: the LCM state while ACTIVE, else the VM state.
pub fn state_label(vm: &Vm) -> &'static str {
    match vm.state {
        VmState::Active => vm.lcm_state.name(),
        s => s.name(),
    }
}

/// The CSS class of a state's badge.
pub fn state_class(vm: &Vm) -> &'static str {
    GROUPS[group_of(vm)].2
}

/// The host the VM is (or was last) placed on.
pub fn host_name(vm: &Vm) -> &str {
    vm.last_history().map(|h| h.hostname.as_str()).unwrap_or("")
}

/// The VM state groups of the overview and the list's filter, in display order: key, label,
/// badge class.
pub const GROUPS: [(&str, &str, &str); 8] = [
    ("running", "Running", "ok"),
    ("busy", "Starting or stopping", "busy"),
    ("pending", "Pending", "wait"),
    ("hold", "Hold", "wait"),
    ("stopped", "Stopped", "off"),
    ("suspended", "Suspended", "off"),
    ("problem", "Failed or unknown", "bad"),
    ("done", "Done", "off"),
];

/// The index in [`GROUPS`] of the VM's state.
pub fn group_of(vm: &Vm) -> usize {
    match (vm.state, vm.lcm_state) {
        (VmState::Active, LcmState::Running) => 0,
        (VmState::Active, LcmState::Unknown | LcmState::Failure) | (VmState::Failed, _) => 6,
        (VmState::Active, _) => 1,
        (VmState::Pending | VmState::Init, _) => 2,
        (VmState::Hold, _) => 3,
        (VmState::Stopped, _) => 4,
        (VmState::Suspended, _) => 5,
        (VmState::Done, _) => 7,
    }
}

/// The state filter of the list: all but DONE (default), all, or one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateFilter {
    Live,
    All,
    Group(usize),
}

impl StateFilter {
    fn parse(text: &str) -> StateFilter {
        if text == "all" {
            return StateFilter::All;
        }
        match GROUPS.iter().position(|(key, _, _)| *key == text) {
            Some(i) => StateFilter::Group(i),
            None => StateFilter::Live,
        }
    }

    fn keeps(self, vm: &Vm) -> bool {
        match self {
            StateFilter::Live => vm.state != VmState::Done,
            StateFilter::All => true,
            StateFilter::Group(i) => group_of(vm) == i,
        }
    }
}

/// IP addresses of the VM's NICs.
fn ips(vm: &Vm) -> Vec<&str> {
    vm.template
        .vectors("NIC")
        .filter_map(|nic| crate::template::vector_get(nic, "IP"))
        .collect()
}

fn memory_mib(mib: i64) -> String {
    if mib >= 1024 && mib % 1024 == 0 {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

fn cpu_text(cpu: f64) -> String {
    if cpu.fract() == 0.0 {
        format!("{cpu:.0}")
    } else {
        format!("{cpu}")
    }
}

pub fn list(core: &Arc<Core>, viewer: &Viewer, query: &Form) -> Reply {
    let state_key = query.text("state");
    let filter = StateFilter::parse(state_key);
    let owner = query.text("owner");
    let host = query.text("host");
    let name = query.text("name");
    let name_lower = name.to_lowercase();
    let state = core.read();
    let visible = match owned::filter::<Vm>(&state, &viewer.caller, -2, -1, -1) {
        Ok(v) => v,
        Err(e) => {
            let (msg, code) = oned_message("VirtualMachinePoolInfo", &e);
            return Reply::Page(refused("Virtual machines", Section::Vms, &msg, code));
        }
    };
    let mut matching: Vec<&Vm> = Vec::new();
    for vm in visible {
        if filter.keeps(vm)
            && (owner.is_empty() || vm.uname == owner)
            && (host.is_empty() || host_name(vm) == host)
            && (name.is_empty() || vm.name.to_lowercase().contains(&name_lower))
        {
            matching.push(vm);
        }
    }
    let total = matching.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page_no = query.page().min(pages);
    let mut page = Page::new("Virtual machines", Section::Vms);
    page.live = Live::Rows;
    let b = &mut page.body;
    b.push_str("<div class=\"heading\"><h1>Virtual machines</h1></div>");

    // Filters: a plain GET form, so every filtered view has its own URL.
    b.push_str("<form class=\"filters\" method=\"get\" action=\"/dashboard/vms\" role=\"search\" aria-label=\"Filter virtual machines\">");
    b.push_str("<div class=\"field\"><label for=\"f-state\">State</label><select id=\"f-state\" name=\"state\">");
    let options = [("", "All but done"), ("all", "All")]
        .into_iter()
        .chain(GROUPS.iter().map(|(key, label, _)| (*key, *label)));
    for (key, label) in options {
        let selected = if key == state_key { " selected" } else { "" };
        let _ = write!(b, "<option value=\"{key}\"{selected}>{label}</option>");
    }
    b.push_str("</select></div>");
    let _ = write!(
        b,
        "<div class=\"field\"><label for=\"f-owner\">Owner</label><input id=\"f-owner\" name=\"owner\" list=\"owners\" value=\"{}\" autocomplete=\"off\"></div>\
         <div class=\"field\"><label for=\"f-host\">Host</label><input id=\"f-host\" name=\"host\" list=\"hosts\" value=\"{}\" autocomplete=\"off\"></div>\
         <div class=\"field\"><label for=\"f-name\">Name contains</label><input id=\"f-name\" name=\"name\" value=\"{}\" autocomplete=\"off\"></div>\
         <div class=\"field actions\"><button type=\"submit\">Filter</button> <a href=\"/dashboard/vms\">Clear</a></div>",
        Esc(owner),
        Esc(host),
        Esc(name)
    );
    b.push_str("<datalist id=\"owners\">");
    for user in crate::core::users::visible(&state, &viewer.caller).take(SUGGESTIONS) {
        let _ = write!(b, "<option value=\"{}\">", Esc(&user.name));
    }
    b.push_str("</datalist><datalist id=\"hosts\">");
    for h in crate::core::hosts::visible(&state, &viewer.caller).take(SUGGESTIONS) {
        let _ = write!(b, "<option value=\"{}\">", Esc(&h.name));
    }
    b.push_str("</datalist></form>");

    let first = (page_no - 1) * PAGE_SIZE;
    let shown: Vec<&Vm> = matching
        .iter()
        .rev()
        .skip(first)
        .take(PAGE_SIZE)
        .copied()
        .collect();
    let _ = write!(
        b,
        "<p class=\"count\" id=\"vm-count\">{}</p>",
        if total == 0 {
            "No virtual machine matches.".to_string()
        } else {
            format!(
                "{}–{} of {total} virtual machine{}, newest first",
                first + 1,
                first + shown.len(),
                if total == 1 { "" } else { "s" }
            )
        }
    );
    if !shown.is_empty() {
        b.push_str(
            "<div class=\"table-wrap\"><table class=\"list\" aria-describedby=\"vm-count\">\
             <thead><tr><th scope=\"col\">ID</th><th scope=\"col\">Name</th>\
             <th scope=\"col\" class=\"opt\">Owner</th><th scope=\"col\">State</th>\
             <th scope=\"col\" class=\"opt\">Host</th><th scope=\"col\" class=\"opt num\">CPU</th>\
             <th scope=\"col\" class=\"opt num\">Memory</th><th scope=\"col\">IP</th>\
             <th scope=\"col\" class=\"opt\">Started</th></tr></thead><tbody>",
        );
        for vm in shown {
            let _ = write!(
                b,
                "<tr data-vm=\"{id}\"><td>{id}</td><td class=\"name\"><a href=\"/dashboard/vms/{id}\">{name}</a></td>\
                 <td class=\"opt\">{owner}</td><td data-field=\"state\">{state}</td>\
                 <td data-field=\"host\" class=\"opt\">{host}</td><td class=\"opt num\">{cpu}</td>\
                 <td class=\"opt num\">{mem}</td><td class=\"mono\">{ips}</td>\
                 <td class=\"opt\">{started}</td></tr>",
                id = vm.id,
                name = Esc(&vm.name),
                owner = Esc(&vm.uname),
                state = badge(state_class(vm), state_label(vm)),
                host = Esc(host_name(vm)),
                cpu = cpu_text(vm.template_cpu()),
                mem = memory_mib(vm.template_memory()),
                ips = Esc(&ips(vm).join(" ")),
                started = html::time_element(vm.stime),
            );
        }
        b.push_str("</tbody></table></div>");
    }
    let base = Url::new("/dashboard/vms")
        .with("state", state_key)
        .with("owner", owner)
        .with("host", host)
        .with("name", name);
    html::pager(b, &base, page_no, pages, "Pages of virtual machines");
    Reply::Page(page)
}

/// An action a VM page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Shutdown,
    Reboot,
    Stop,
    Hold,
    Release,
    Resume,
    Finalize,
    Deploy,
    Migrate,
}

const ACTIONS: [Action; 9] = [
    Action::Shutdown,
    Action::Reboot,
    Action::Stop,
    Action::Hold,
    Action::Release,
    Action::Resume,
    Action::Deploy,
    Action::Migrate,
    Action::Finalize,
];

impl Action {
    fn key(self) -> &'static str {
        match self {
            Action::Shutdown => "shutdown",
            Action::Reboot => "reboot",
            Action::Stop => "stop",
            Action::Hold => "hold",
            Action::Release => "release",
            Action::Resume => "resume",
            Action::Finalize => "finalize",
            Action::Deploy => "deploy",
            Action::Migrate => "migrate",
        }
    }

    fn parse(key: &str) -> Option<Action> {
        ACTIONS.into_iter().find(|a| a.key() == key)
    }

    fn label(self) -> &'static str {
        match self {
            Action::Shutdown => "Shut down",
            Action::Reboot => "Reboot",
            Action::Stop => "Stop",
            Action::Hold => "Hold",
            Action::Release => "Release",
            Action::Resume => "Resume",
            Action::Finalize => "Delete",
            Action::Deploy => "Deploy",
            Action::Migrate => "Migrate",
        }
    }

    /// What the confirmation asks.
    fn question(self) -> &'static str {
        match self {
            Action::Shutdown => "Shut this VM down? The guest is asked to power off; its disks are then saved or discarded as its template says.",
            Action::Reboot => "Reboot this VM? The guest restarts in place.",
            Action::Stop => "Stop this VM? Its memory and disks are saved and it leaves its host until you resume it.",
            Action::Hold => "Hold this VM? It will not be placed on a host until you release it.",
            Action::Release => "Release this VM? It becomes pending and will be placed on a host.",
            Action::Resume => "Resume this VM?",
            Action::Finalize => "Delete this VM for good (finalize)? It is destroyed wherever it runs; this cannot be undone.",
            Action::Deploy => "Deploy this VM on the host chosen below?",
            Action::Migrate => "Migrate this VM to the host chosen below?",
        }
    }

    /// What the page says after the core accepted the action.
    fn done(self) -> &'static str {
        match self {
            Action::Shutdown => "Shutdown requested.",
            Action::Reboot => "Reboot requested.",
            Action::Stop => "Stop requested.",
            Action::Hold => "The VM is on hold.",
            Action::Release => "The VM was released.",
            Action::Resume => "Resume requested.",
            Action::Finalize => "The VM was deleted.",
            Action::Deploy => "Deployment requested.",
            Action::Migrate => "Migration requested.",
        }
    }

    /// Does the VM's state allow it (3.2's life cycle)?
    fn fits(self, vm: &Vm) -> bool {
        let running = vm.state == VmState::Active && vm.lcm_state == LcmState::Running;
        match self {
            Action::Shutdown | Action::Reboot | Action::Stop | Action::Migrate => running,
            Action::Hold | Action::Deploy => vm.state == VmState::Pending,
            Action::Release => vm.state == VmState::Hold,
            Action::Resume => matches!(vm.state, VmState::Stopped | VmState::Suspended),
            Action::Finalize => vm.state != VmState::Done,
        }
    }

    /// The permission the core asks for on the VM.
    fn op(self) -> Op {
        match self {
            Action::Deploy | Action::Migrate => Op::Admin,
            _ => Op::Manage,
        }
    }

    fn needs_host(self) -> bool {
        matches!(self, Action::Deploy | Action::Migrate)
    }

    fn danger(self) -> bool {
        matches!(self, Action::Finalize | Action::Shutdown | Action::Stop)
    }
}

/// The actions the viewer may take on `vm` now.
fn offered(state: &State, viewer: &Viewer, vm: &Vm) -> Vec<Action> {
    ACTIONS
        .into_iter()
        .filter(|a| a.fits(vm))
        .filter(|a| {
            state.allows(
                &viewer.caller,
                &AuthItem::on(Kind::Vm, a.op(), vm.obj_ref()),
            )
        })
        .collect()
}

pub fn detail(core: &Arc<Core>, viewer: &Viewer, id: Oid, query: &Form) -> Reply {
    let confirm = query.get("confirm").and_then(Action::parse);
    match detail_page(core, viewer, id, confirm) {
        Ok(mut page) => {
            if let Some(done) = query.get("done").and_then(Action::parse) {
                page.notices.push(Notice::Info(done.done().into()));
            }
            Reply::Page(page)
        }
        Err((msg, code)) => Reply::Page(refused(
            &format!("Virtual machine {id}"),
            Section::Vms,
            &msg,
            code,
        )),
    }
}

fn detail_page(
    core: &Arc<Core>,
    viewer: &Viewer,
    id: Oid,
    confirm: Option<Action>,
) -> Result<Page, (String, i32)> {
    let state = core.read();
    let vm = get_authorized::<Vm>(&state, &viewer.caller, id, Op::Use)
        .map_err(|e| oned_message("VirtualMachineInfo", &e))?;
    let mut page = Page::new(format!("VM {} · {}", vm.id, vm.name), Section::Vms);
    page.live = Live::Reload;
    page.live_vm = Some(vm.id);
    let b = &mut page.body;
    let _ = write!(
        b,
        "<nav class=\"crumbs\" aria-label=\"Breadcrumb\"><a href=\"/dashboard/vms\">Virtual machines</a> › VM {id}</nav>\
         <div class=\"heading\" data-vm=\"{id}\"><h1>{name}</h1><span data-field=\"state\">{badge}</span></div>",
        id = vm.id,
        name = Esc(&vm.name),
        badge = badge(state_class(vm), state_label(vm)),
    );

    let actions = offered(&state, viewer, vm);
    if let Some(action) = confirm {
        // Without script, the confirmation is this panel on the page itself.
        b.push_str("<section class=\"confirm card\" role=\"alertdialog\" aria-labelledby=\"confirm-title\" aria-describedby=\"confirm-text\">");
        let _ = write!(
            b,
            "<h2 id=\"confirm-title\">{} VM {}?</h2>",
            action.label(),
            vm.id
        );
        confirm_form(b, &state, viewer, vm, action, "confirm-text");
        b.push_str("</section>");
    }
    if !actions.is_empty() {
        b.push_str("<section class=\"actions\" aria-label=\"Actions\"><h2 class=\"visually-hidden\">Actions</h2><ul class=\"buttons\">");
        for action in &actions {
            let class = if action.danger() {
                "button danger"
            } else {
                "button"
            };
            let _ = write!(
                b,
                "<li><a class=\"{class}\" href=\"/dashboard/vms/{id}?confirm={key}\" data-dialog=\"dialog-{key}\">{label}</a></li>",
                id = vm.id,
                key = action.key(),
                label = action.label(),
            );
        }
        b.push_str("</ul>");
        for action in &actions {
            let _ = write!(
                b,
                "<dialog id=\"dialog-{key}\" aria-labelledby=\"dialog-{key}-title\" aria-describedby=\"dialog-{key}-text\">\
                 <h2 id=\"dialog-{key}-title\">{label} VM {id}?</h2>",
                key = action.key(),
                label = action.label(),
                id = vm.id,
            );
            confirm_form(
                b,
                &state,
                viewer,
                vm,
                *action,
                &format!("dialog-{}-text", action.key()),
            );
            b.push_str("</dialog>");
        }
        b.push_str("</section>");
    }

    // Summary.
    let last = vm.last_history();
    let _ = write!(
        b,
        "<section aria-labelledby=\"s-summary\"><h2 id=\"s-summary\">Summary</h2><dl class=\"facts\" data-vm=\"{}\">",
        vm.id
    );
    let fact = |b: &mut String, term: &str, value: &str| {
        let _ = write!(b, "<div><dt>{term}</dt><dd>{value}</dd></div>");
    };
    fact(b, "ID", &vm.id.to_string());
    fact(
        b,
        "State",
        &format!(
            "{} <span class=\"muted\">({} / {})</span>",
            Esc(state_label(vm)),
            vm.state.name(),
            vm.lcm_state.name()
        ),
    );
    fact(
        b,
        "Owner",
        &format!(
            "{} <span class=\"muted\">({})</span>",
            Esc(&vm.uname),
            Esc(&vm.gname)
        ),
    );
    fact(
        b,
        "Host",
        &format!(
            "<span data-field=\"host\">{}</span>",
            Esc(last.map(|h| h.hostname.as_str()).unwrap_or(""))
        ),
    );
    fact(b, "CPU", &cpu_text(vm.template_cpu()));
    fact(b, "Memory", &memory_mib(vm.template_memory()));
    fact(b, "Started", &html::time_element(vm.stime));
    if vm.etime > 0 {
        fact(b, "Ended", &html::time_element(vm.etime));
    }
    if vm.last_poll > 0 {
        fact(
            b,
            "Measured use",
            &format!(
                "{}% CPU, {} memory, {} sent, {} received <span class=\"muted\">at {}</span>",
                vm.cpu,
                html::bytes((vm.memory.max(0) as u64) * 1024),
                html::bytes(vm.net_tx.max(0) as u64),
                html::bytes(vm.net_rx.max(0) as u64),
                html::time_element(vm.last_poll)
            ),
        );
    }
    if !vm.deploy_id.is_empty() {
        fact(
            b,
            "Deploy ID",
            &format!("<span class=\"mono\">{}</span>", Esc(&vm.deploy_id)),
        );
    }
    if let Some(port) = vm
        .template
        .get_vector("GRAPHICS")
        .and_then(|g| crate::template::vector_get(g, "PORT"))
    {
        fact(b, "VNC port", &Esc(port).to_string());
    }
    if let Some(err) = vm
        .template
        .get_vector("ERROR")
        .and_then(|e| crate::template::vector_get(e, "MESSAGE"))
    {
        fact(
            b,
            "Error",
            &format!("<span class=\"error-text\">{}</span>", Esc(err)),
        );
    }
    b.push_str("</dl></section>");

    nics(b, &state, viewer, vm);
    disks(b, vm);
    history(b, vm);

    // Log.
    b.push_str("<section aria-labelledby=\"s-log\"><h2 id=\"s-log\">Log</h2>");
    let log = log_tail(&core.settings.vm_log_dir().join(format!("{}.log", vm.id)));
    if log.is_empty() {
        b.push_str("<p class=\"muted\">No log lines yet.</p>");
    } else {
        let _ = write!(
            b,
            "<pre class=\"log\" tabindex=\"0\" aria-label=\"Last lines of the VM log\">{}</pre>",
            Esc(&log)
        );
    }
    b.push_str("</section>");

    // Template.
    b.push_str("<section aria-labelledby=\"s-template\"><details><summary><h2 id=\"s-template\">Template</h2></summary>");
    let _ = write!(
        b,
        "<pre class=\"template\" tabindex=\"0\">{}</pre></details></section>",
        Esc(&template_text(&vm.template, TEMPLATE_SHOWN))
    );
    Ok(page)
}

/// The form that performs `action` after confirmation.
fn confirm_form(
    b: &mut String,
    state: &State,
    viewer: &Viewer,
    vm: &Vm,
    action: Action,
    text_id: &str,
) {
    let _ = write!(
        b,
        "<p id=\"{text_id}\">{question}</p>\
         <form method=\"post\" action=\"/dashboard/vms/{id}/action\" data-async>{csrf}\
         <input type=\"hidden\" name=\"action\" value=\"{key}\">",
        question = action.question(),
        id = vm.id,
        csrf = csrf_field(viewer),
        key = action.key(),
    );
    if action.needs_host() {
        let current = vm.last_history().map(|h| h.hid);
        let _ = write!(
            b,
            "<div class=\"field\"><label for=\"host-{key}\">Host</label><select id=\"host-{key}\" name=\"host\" required>",
            key = action.key()
        );
        for host in crate::core::hosts::visible(state, &viewer.caller) {
            if host.state == HostState::Disabled || Some(host.id) == current {
                continue;
            }
            let _ = write!(
                b,
                "<option value=\"{}\">{} ({} VMs)</option>",
                host.id,
                Esc(&host.name),
                host.share.running_vms
            );
        }
        b.push_str("</select></div>");
        if action == Action::Migrate {
            b.push_str("<div class=\"field check\"><input type=\"checkbox\" id=\"live-migrate\" name=\"live\" value=\"yes\"><label for=\"live-migrate\">Live migration (the guest keeps running)</label></div>");
        }
    }
    let class = if action.danger() { "danger" } else { "primary" };
    let _ = write!(
        b,
        "<div class=\"buttons\"><button type=\"submit\" class=\"{class}\">{label}</button> \
         <a class=\"button secondary\" href=\"/dashboard/vms/{id}\" data-close>Cancel</a></div></form>",
        label = action.label(),
        id = vm.id,
    );
}

fn nics(b: &mut String, state: &State, viewer: &Viewer, vm: &Vm) {
    let nics: Vec<&[(String, String)]> = vm.template.vectors("NIC").collect();
    b.push_str("<section aria-labelledby=\"s-nics\"><h2 id=\"s-nics\">Network interfaces</h2>");
    if nics.is_empty() {
        b.push_str("<p class=\"muted\">None.</p></section>");
        return;
    }
    b.push_str("<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th scope=\"col\">Network</th><th scope=\"col\">IP</th><th scope=\"col\">MAC</th><th scope=\"col\" class=\"opt\">Bridge</th></tr></thead><tbody>");
    for nic in nics {
        let get = |k: &str| crate::template::vector_get(nic, k).unwrap_or("");
        let net_id = get("NETWORK_ID").parse::<Oid>().ok();
        let readable = net_id.is_some_and(|nid| {
            get_authorized::<crate::model::VNet>(state, &viewer.caller, nid, Op::Use).is_ok()
        });
        let network = match net_id {
            Some(nid) if readable => format!(
                "<a href=\"/dashboard/networks/{nid}\">{}</a>",
                Esc(get("NETWORK"))
            ),
            _ => Esc(get("NETWORK")).to_string(),
        };
        let _ = write!(
            b,
            "<tr><td>{network}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td class=\"opt mono\">{}</td></tr>",
            Esc(get("IP")),
            Esc(get("MAC")),
            Esc(get("BRIDGE")),
        );
    }
    b.push_str("</tbody></table></div></section>");
}

fn disks(b: &mut String, vm: &Vm) {
    let disks: Vec<&[(String, String)]> = vm.template.vectors("DISK").collect();
    b.push_str("<section aria-labelledby=\"s-disks\"><h2 id=\"s-disks\">Disks</h2>");
    if disks.is_empty() {
        b.push_str("<p class=\"muted\">None.</p></section>");
        return;
    }
    b.push_str("<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th scope=\"col\">ID</th><th scope=\"col\">Target</th><th scope=\"col\">Image or source</th><th scope=\"col\" class=\"opt\">Type</th><th scope=\"col\" class=\"opt\">Size</th><th scope=\"col\" class=\"opt\">Saved</th></tr></thead><tbody>");
    for disk in disks {
        let get = |k: &str| crate::template::vector_get(disk, k).unwrap_or("");
        let what = if !get("IMAGE").is_empty() {
            get("IMAGE")
        } else {
            get("SOURCE")
        };
        let saved = if !get("SAVE_AS").is_empty() {
            format!("as image {}", get("SAVE_AS"))
        } else if get("PERSISTENT").eq_ignore_ascii_case("yes") {
            "persistent".into()
        } else if get("SAVE").eq_ignore_ascii_case("yes") {
            "yes".into()
        } else {
            "no".into()
        };
        let size = match get("SIZE").parse::<u64>() {
            Ok(mib) => html::bytes(mib * 1024 * 1024),
            Err(_) => "-".into(),
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"mono wrap\">{}</td><td class=\"opt\">{}</td><td class=\"opt\">{}</td><td class=\"opt\">{}</td></tr>",
            Esc(get("DISK_ID")),
            Esc(get("TARGET")),
            Esc(what),
            Esc(get("TYPE")),
            Esc(&size),
            Esc(&saved),
        );
    }
    b.push_str("</tbody></table></div></section>");
}

fn history(b: &mut String, vm: &Vm) {
    b.push_str("<section aria-labelledby=\"s-history\"><h2 id=\"s-history\">History</h2>");
    if vm.history.is_empty() {
        b.push_str("<p class=\"muted\">Never placed on a host.</p></section>");
        return;
    }
    b.push_str("<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th scope=\"col\">Seq</th><th scope=\"col\">Host</th><th scope=\"col\">Start</th><th scope=\"col\">End</th><th scope=\"col\" class=\"opt\">Prolog</th><th scope=\"col\" class=\"opt\">Running</th><th scope=\"col\" class=\"opt\">Epilog</th><th scope=\"col\" class=\"opt\">Reason</th></tr></thead><tbody>");
    let span = |s: i64, e: i64| -> String {
        if s <= 0 {
            "-".into()
        } else if e <= 0 {
            format!("{} (ongoing)", html::duration(crate::model::now() - s))
        } else {
            html::duration(e - s)
        }
    };
    for h in vm.history.iter().rev() {
        let reason = match h.reason {
            crate::model::vm::Reason::None => "",
            crate::model::vm::Reason::Error => "error",
            crate::model::vm::Reason::StopResume => "stop/resume",
            crate::model::vm::Reason::User => "user",
            crate::model::vm::Reason::Cancel => "cancel",
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"opt\">{}</td><td class=\"opt\">{}</td><td class=\"opt\">{}</td><td class=\"opt\">{reason}</td></tr>",
            h.seq,
            Esc(&h.hostname),
            html::time_element(h.stime),
            html::time_element(h.etime),
            span(h.pstime, h.petime),
            span(h.rstime, h.retime),
            span(h.estime, h.eetime),
        );
    }
    b.push_str("</tbody></table></div></section>");
}

/// The last lines of a log file (at most [`LOG_TAIL_BYTES`] read).
fn log_tail(path: &std::path::Path) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::with_capacity((len - start) as usize);
    if file.take(LOG_TAIL_BYTES).read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    // A tail that starts mid-line drops that partial line.
    let text = if start > 0 {
        text.split_once('\n').map(|(_, rest)| rest).unwrap_or("")
    } else {
        &text
    };
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(LOG_TAIL_LINES);
    lines[from..].join("\n")
}

/// A template as 3.2's template language writes it, cut at `limit` bytes.
pub fn template_text(t: &Template, limit: usize) -> String {
    let mut out = String::new();
    let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    for attr in t.attributes() {
        if out.len() > limit {
            out.truncate(limit);
            out.push_str("\n… (cut)");
            break;
        }
        match attr {
            Attribute::Single { .. } => {
                let _ = writeln!(
                    out,
                    "{} = \"{}\"",
                    attr.name(),
                    quote(attr.value().unwrap_or(""))
                );
            }
            Attribute::Vector { name, pairs } => {
                let _ = writeln!(out, "{name} = [");
                for (i, (k, v)) in pairs.iter().enumerate() {
                    let sep = if i + 1 < pairs.len() { "," } else { "" };
                    let _ = writeln!(out, "  {k} = \"{}\"{sep}", quote(v));
                }
                out.push_str("]\n");
            }
        }
    }
    if out.len() > limit + 16 {
        let mut cut = limit;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("\n… (cut)");
    }
    out
}

/// `POST /dashboard/vms/<id>/action`: the core call, then back to the VM's page.
pub async fn action(core: &Arc<Core>, viewer: &Viewer, id: Oid, form: &Form) -> Reply {
    let Some(action) = form.get("action").and_then(Action::parse) else {
        let mut page = Page::new("Unknown action", Section::Vms);
        page.status = hyper::StatusCode::BAD_REQUEST;
        page.body
            .push_str("<h1>Unknown action</h1><p>The dashboard offers no such action.</p>");
        return Reply::Page(page);
    };
    let host = form.int("host");
    let live = form.get("live").is_some();
    let caller = viewer.caller.clone();
    // The same typed command as the XML-RPC call, awaited on the core's owner (never a
    // blocking call on a runtime thread).
    let (command, class) = match action {
        Action::Deploy => (
            Command::VmDeploy {
                caller,
                vm: id,
                host: host.unwrap_or(-1),
            },
            "VirtualMachineDeploy",
        ),
        Action::Migrate => (
            Command::VmMigrate {
                caller,
                vm: id,
                host: host.unwrap_or(-1),
                live,
            },
            "VirtualMachineMigrate",
        ),
        other => (
            Command::VmAction {
                caller,
                action: other.key().into(),
                vm: id,
            },
            "VirtualMachineAction",
        ),
    };
    let outcome = core
        .submit(command)
        .await
        .and_then(Answer::id)
        .map_err(|e| oned_message(class, &e));
    match outcome {
        Ok(_) => {
            tracing::info!(vm = id, user = %viewer.caller.name, action = action.key(), "dashboard: VM action");
            Reply::Redirect(format!("/dashboard/vms/{id}?done={}", action.key()))
        }
        Err((msg, code)) => {
            tracing::info!(vm = id, user = %viewer.caller.name, action = action.key(), "dashboard: VM action refused: {msg}");
            // The VM's page with the refusal on top, when the viewer may still read it.
            match detail_page(core, viewer, id, None) {
                Ok(mut page) => {
                    page.status = super::status_for(code);
                    page.notices.push(Notice::Error(msg));
                    Reply::Page(page)
                }
                Err(_) => Reply::Page(refused(
                    &format!("Virtual machine {id}"),
                    Section::Vms,
                    &msg,
                    code,
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_written_with_quotes_escaped() {
        let t = crate::template::parse(
            "NAME = \"a\\\"b\"\nNIC = [ NETWORK = \"x\", IP = \"1.2.3.4\" ]\n",
        )
        .unwrap();
        let text = template_text(&t, 1000);
        assert!(text.contains("NAME = \"a\\\"b\""), "{text}");
        assert!(
            text.contains("NIC = [\n  NETWORK = \"x\",\n  IP = \"1.2.3.4\"\n]"),
            "{text}"
        );
        let long = crate::template::parse(&format!("A = \"{}\"", "x".repeat(5000))).unwrap();
        assert!(template_text(&long, 100).len() < 200);
    }

    #[test]
    fn state_filters_round_trip() {
        for (i, (key, _, _)) in GROUPS.iter().enumerate() {
            assert_eq!(StateFilter::parse(key), StateFilter::Group(i));
        }
        assert_eq!(StateFilter::parse("all"), StateFilter::All);
        assert_eq!(StateFilter::parse("<script>"), StateFilter::Live);
    }

    #[test]
    fn log_tail_is_bounded() {
        let dir = std::env::temp_dir().join(format!("stratusd-dash-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("1.log");
        let line = "Thu Jan  1 00:00:00 1970 [DiM][I]: New VM state is PENDING\n";
        std::fs::write(&path, line.repeat(10_000)).unwrap();
        let tail = log_tail(&path);
        assert_eq!(tail.lines().count(), LOG_TAIL_LINES);
        assert!(tail.lines().all(|l| l == line.trim_end()));
        assert_eq!(log_tail(&dir.join("missing.log")), "");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
