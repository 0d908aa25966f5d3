//! Hosts: what `one.hostpool.info` shows the viewer, with CPU and memory allocated against
//! capacity, and enable/disable (`one.host.enable`) for whoever the core lets do it.

use super::form::Form;
use super::html::{self, badge, csrf_field, Esc, Live, Notice, Page, Section, Url};
use super::viewer::Viewer;
use super::{refused, Reply};
use crate::api::error::oned_message;
use crate::core::authz::AuthItem;
use crate::core::command::Answer;
use crate::core::{Command, Core};
use crate::model::acl::Op;
use crate::model::host::HostState;
use crate::model::{Host, Kind, Oid};
use std::fmt::Write;
use std::sync::Arc;

const PAGE_SIZE: usize = 100;

fn state_class(h: &Host) -> &'static str {
    match h.state {
        HostState::Monitored => "ok",
        HostState::Init | HostState::Monitoring => "busy",
        HostState::Error => "bad",
        HostState::Disabled => "off",
    }
}

/// The host table; with `viewer`, a column of enable/disable buttons where allowed.
pub fn table(b: &mut String, hosts: &[&Host], actions: Option<(&Viewer, &crate::core::State)>) {
    b.push_str(
        "<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th scope=\"col\">ID</th>\
         <th scope=\"col\">Name</th><th scope=\"col\">State</th><th scope=\"col\" class=\"num\">VMs</th>\
         <th scope=\"col\">CPU allocated</th><th scope=\"col\">Memory allocated</th>\
         <th scope=\"col\" class=\"opt\">Drivers</th><th scope=\"col\" class=\"opt\">Monitored</th>",
    );
    if actions.is_some() {
        b.push_str("<th scope=\"col\"><span class=\"visually-hidden\">Actions</span></th>");
    }
    b.push_str("</tr></thead><tbody>");
    for h in hosts {
        let s = &h.share;
        let _ = write!(
            b,
            "<tr data-host=\"{id}\"><td>{id}</td><td><a href=\"{vms}\">{name}</a></td><td>{state}</td>\
             <td class=\"num\">{running}</td><td>{cpu}</td><td>{mem}</td>\
             <td class=\"opt mono\">{im}/{vmm}/{tm}</td><td class=\"opt\">{mon}</td>",
            id = h.id,
            vms = Url::new("/dashboard/vms").with("host", h.name.clone()),
            name = Esc(&h.name),
            state = badge(state_class(h), h.state.name()),
            running = s.running_vms,
            cpu = html::meter(
                s.cpu_usage as f64,
                s.max_cpu as f64,
                // oned counts CPU in percent of one CPU.
                &format!(
                    "{:.1} / {:.0} CPUs",
                    s.cpu_usage as f64 / 100.0,
                    s.max_cpu as f64 / 100.0
                )
            ),
            mem = html::meter(
                s.mem_usage as f64,
                s.max_mem as f64,
                &format!(
                    "{} / {}",
                    html::bytes(s.mem_usage.max(0) as u64 * 1024),
                    html::bytes(s.max_mem.max(0) as u64 * 1024)
                )
            ),
            im = Esc(&h.im_mad),
            vmm = Esc(&h.vm_mad),
            tm = Esc(&h.tm_mad),
            mon = html::time_element(h.last_mon_time),
        );
        if let Some((viewer, state)) = actions {
            b.push_str("<td>");
            let may = state.allows(
                &viewer.caller,
                &AuthItem::on(Kind::Host, Op::Admin, crate::core::hosts::host_ref(h.id)),
            );
            if may {
                let (enable, label, class) = if h.state == HostState::Disabled {
                    ("yes", "Enable", "")
                } else {
                    ("no", "Disable", " danger")
                };
                let _ = write!(
                    b,
                    "<a class=\"button small{class}\" href=\"/dashboard/hosts?confirm={id}\" data-dialog=\"host-dialog-{id}\">{label}</a>\
                     <dialog id=\"host-dialog-{id}\" aria-labelledby=\"host-dialog-{id}-t\"><h2 id=\"host-dialog-{id}-t\">{label} host {name}?</h2>",
                    id = h.id,
                    name = Esc(&h.name),
                );
                enable_form(b, viewer, h, enable, label, class);
                b.push_str("</dialog>");
            }
            b.push_str("</td>");
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table></div>");
}

fn enable_form(b: &mut String, viewer: &Viewer, h: &Host, enable: &str, label: &str, class: &str) {
    let _ = write!(
        b,
        "<p>{}</p><form method=\"post\" action=\"/dashboard/hosts/{id}/enable\" data-async>{csrf}\
         <input type=\"hidden\" name=\"enable\" value=\"{enable}\">\
         <div class=\"buttons\"><button type=\"submit\" class=\"primary{class}\">{label}</button> \
         <a class=\"button secondary\" href=\"/dashboard/hosts\" data-close>Cancel</a></div></form>",
        if enable == "yes" {
            "The scheduler will place VMs on it again and it will be monitored."
        } else {
            "No new VM will be placed on it and it will not be monitored; its VMs keep running."
        },
        id = h.id,
        csrf = csrf_field(viewer),
    );
}

pub fn list(core: &Arc<Core>, viewer: &Viewer, query: &Form) -> Reply {
    let state = core.read();
    let hosts: Vec<&Host> = crate::core::hosts::visible(&state, &viewer.caller).collect();
    let total = hosts.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page_no = query.page().min(pages);
    let mut page = Page::new("Hosts", Section::Hosts);
    page.live = Live::Reload;
    let b = &mut page.body;
    let _ = write!(
        b,
        "<div class=\"heading\"><h1>Hosts</h1></div><p class=\"count\">{total} host{}; CPU and memory allocated to VMs against each host's capacity.</p>",
        if total == 1 { "" } else { "s" }
    );
    // No-script confirmation of an enable/disable.
    if let Some(h) = query
        .int("confirm")
        .and_then(|id| hosts.iter().find(|h| h.id == id))
    {
        let (enable, label, class) = if h.state == HostState::Disabled {
            ("yes", "Enable", "")
        } else {
            ("no", "Disable", " danger")
        };
        let _ = write!(
            b,
            "<section class=\"confirm card\" role=\"alertdialog\" aria-labelledby=\"confirm-title\"><h2 id=\"confirm-title\">{label} host {}?</h2>",
            Esc(&h.name)
        );
        enable_form(b, viewer, h, enable, label, class);
        b.push_str("</section>");
    }
    let first = (page_no - 1) * PAGE_SIZE;
    let shown: Vec<&Host> = hosts.iter().skip(first).take(PAGE_SIZE).copied().collect();
    if shown.is_empty() {
        b.push_str("<p class=\"muted\">No host.</p>");
    } else {
        table(b, &shown, Some((viewer, &state)));
    }
    html::pager(
        b,
        &Url::new("/dashboard/hosts"),
        page_no,
        pages,
        "Pages of hosts",
    );
    Reply::Page(page)
}

/// `POST /dashboard/hosts/<id>/enable` with `enable=yes|no`: `one.host.enable`.
pub async fn enable(core: &Arc<Core>, viewer: &Viewer, id: Oid, form: &Form) -> Reply {
    let enable = form.get("enable") == Some("yes");
    // Awaited on the core's owner, like the XML-RPC call.
    let outcome = core
        .submit(Command::HostEnable {
            caller: viewer.caller.clone(),
            id,
            enable,
        })
        .await
        .and_then(Answer::id)
        .map_err(|e| oned_message("HostEnable", &e));
    match outcome {
        Ok(_) => {
            tracing::info!(host = id, enable, user = %viewer.caller.name, "dashboard: host enable");
            Reply::Redirect("/dashboard/hosts".into())
        }
        Err((msg, code)) => {
            let mut page = match list(core, viewer, &Form::default()) {
                Reply::Page(p) => p,
                _ => refused("Hosts", Section::Hosts, "", code),
            };
            page.status = super::status_for(code);
            page.notices.push(Notice::Error(msg));
            Reply::Page(page)
        }
    }
}
