//! Users (with their quota use) and groups, as `one.userpool.info` and `one.grouppool.info`
//! show them to the viewer (oneadmin sees them all; the navigation offers them to oneadmin).

use super::form::Form;
use super::html::{self, badge, Esc, Page, Section, Url};
use super::overview::trim_float;
use super::viewer::Viewer;
use super::Reply;
use crate::config::QuotaSettings;
use crate::core::vms::{quota_limits, quota_use_by_user, QuotaLimits, QuotaUse};
use crate::core::Core;
use crate::core::State;
use crate::model::User;
use std::fmt::Write;
use std::sync::Arc;

const PAGE_SIZE: usize = 100;

/// One figure of a user's use: what is used, and the limit that applies (with its text).
pub struct Figure {
    pub label: &'static str,
    pub used: f64,
    pub used_text: String,
    pub limit: Option<(f64, String)>,
}

impl Figure {
    /// A meter against the limit, or the plain figure when there is none.
    pub fn html(&self) -> String {
        match &self.limit {
            Some((limit, text)) => {
                html::meter(self.used, *limit, &format!("{} of {text}", self.used_text))
            }
            None => Esc(&self.used_text).to_string(),
        }
    }
}

fn mib(m: i64) -> String {
    html::bytes(m.max(0) as u64 * 1024 * 1024)
}

/// VMs, CPU and memory used against `limits` (the core's [`quota_limits`] of the user).
pub fn figures(used: &QuotaUse, limits: Option<QuotaLimits>) -> [Figure; 3] {
    let limits = limits.unwrap_or_default();
    [
        Figure {
            label: "VMs",
            used: used.vms as f64,
            used_text: used.vms.to_string(),
            limit: limits.num_vms.map(|n| (n as f64, n.to_string())),
        },
        Figure {
            label: "CPU",
            used: used.cpu,
            used_text: trim_float(used.cpu),
            limit: limits.cpu.map(|c| (c, trim_float(c))),
        },
        Figure {
            label: "Memory",
            used: used.memory as f64,
            used_text: mib(used.memory),
            limit: limits.memory.map(|m| (m as f64, mib(m))),
        },
    ]
}

/// Users with their use against the quota each is held to.
pub fn usage_table(
    b: &mut String,
    state: &State,
    quota: &QuotaSettings,
    rows: &[(&User, QuotaUse)],
) {
    b.push_str(
        "<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th scope=\"col\">ID</th>\
         <th scope=\"col\">Name</th><th scope=\"col\" class=\"opt\">Group</th>\
         <th scope=\"col\" class=\"opt\">Driver</th><th scope=\"col\">VMs</th>\
         <th scope=\"col\">CPU</th><th scope=\"col\">Memory</th></tr></thead><tbody>",
    );
    for (u, used) in rows {
        let [vms, cpu, memory] = figures(used, quota_limits(quota, state, u.id));
        let _ = write!(
            b,
            "<tr><td>{}</td><td class=\"name\"><a href=\"{}\">{}</a>{}</td><td class=\"opt\">{}</td><td class=\"opt\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            u.id,
            Url::new("/dashboard/vms").with("owner", u.name.clone()),
            Esc(&u.name),
            if u.enabled { String::new() } else { format!(" {}", badge("off", "disabled")) },
            Esc(&u.gname),
            Esc(&u.auth_driver),
            vms.html(),
            cpu.html(),
            memory.html(),
        );
    }
    b.push_str("</tbody></table></div>");
}

pub fn users(core: &Arc<Core>, viewer: &Viewer, query: &Form) -> Reply {
    let state = core.read();
    let by_user = quota_use_by_user(&state);
    let rows: Vec<(&User, QuotaUse)> = crate::core::users::visible(&state, &viewer.caller)
        .map(|u| (u, by_user.get(&u.id).copied().unwrap_or_default()))
        .collect();
    let pages = rows.len().div_ceil(PAGE_SIZE).max(1);
    let page_no = query.page().min(pages);
    let mut page = Page::new("Users", Section::Users);
    let quota = &core.settings.quota;
    let _ = write!(
        page.body,
        "<div class=\"heading\"><h1>Users</h1></div><p class=\"count\">{} user{}; use counts VMs that are not done{}.</p>",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        if quota.enabled { ", against the quota each user is held to" } else { " (quotas are off)" }
    );
    let first = (page_no - 1) * PAGE_SIZE;
    usage_table(
        &mut page.body,
        &state,
        quota,
        &rows[first.min(rows.len())..(first + PAGE_SIZE).min(rows.len())],
    );
    html::pager(
        &mut page.body,
        &Url::new("/dashboard/users"),
        page_no,
        pages,
        "Pages of users",
    );
    Reply::Page(page)
}

pub fn groups(core: &Arc<Core>, viewer: &Viewer) -> Reply {
    let state = core.read();
    let mut page = Page::new("Groups", Section::Groups);
    let b = &mut page.body;
    b.push_str("<div class=\"heading\"><h1>Groups</h1></div>");
    b.push_str(
        "<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th scope=\"col\">ID</th>\
         <th scope=\"col\">Name</th><th scope=\"col\" class=\"num\">Members</th><th scope=\"col\">Some members</th></tr></thead><tbody>",
    );
    for g in crate::core::groups::visible(&state, &viewer.caller) {
        let members: Vec<i32> = state.group_members(g.id).collect();
        let names: Vec<String> = members
            .iter()
            .take(8)
            .filter_map(|id| state.users.get(id))
            .map(|u| Esc(&u.name).to_string())
            .collect();
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}{}</td></tr>",
            g.id,
            Esc(&g.name),
            members.len(),
            names.join(", "),
            if members.len() > 8 { ", …" } else { "" }
        );
    }
    b.push_str("</tbody></table></div>");
    Reply::Page(page)
}
