//! Users (with their quota use) and groups, as `one.userpool.info` and `one.grouppool.info`
//! show them to the viewer (oneadmin sees them all; the navigation offers them to oneadmin).

use super::form::Form;
use super::html::{self, badge, Esc, Page, Section, Url};
use super::overview::trim_float;
use super::viewer::Viewer;
use super::Reply;
use crate::config::QuotaSettings;
use crate::core::vms::{quota_use_by_user, QuotaUse};
use crate::core::Core;
use crate::model::User;
use std::fmt::Write;
use std::sync::Arc;

const PAGE_SIZE: usize = 100;

/// Users with their use against the quota.
pub fn usage_table(b: &mut String, rows: &[(&User, QuotaUse)], quota: &QuotaSettings) {
    b.push_str(
        "<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th scope=\"col\">ID</th>\
         <th scope=\"col\">Name</th><th scope=\"col\" class=\"opt\">Group</th>\
         <th scope=\"col\" class=\"opt\">Driver</th><th scope=\"col\">VMs</th>\
         <th scope=\"col\">CPU</th><th scope=\"col\">Memory</th></tr></thead><tbody>",
    );
    let limit = |v: Option<(f64, String)>| v.filter(|_| quota.enabled);
    for (u, used) in rows {
        // oneadmin's group is not subject to the quota.
        let cell = |value: f64, lim: Option<(f64, String)>, text: String| match lim {
            Some((l, l_text)) if u.id != 0 && u.gid != 0 => {
                html::meter(value, l, &format!("{text} of {l_text}"))
            }
            _ => Esc(&text).to_string(),
        };
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
            cell(
                used.vms as f64,
                limit(quota.num_vms.map(|n| (n as f64, n.to_string()))),
                used.vms.to_string()
            ),
            cell(
                used.cpu,
                limit(quota.cpu.map(|c| (c, trim_float(c)))),
                trim_float(used.cpu)
            ),
            cell(
                used.memory as f64,
                limit(
                    quota
                        .memory
                        .map(|m| (m as f64, html::bytes(m.max(0) as u64 * 1024 * 1024)))
                ),
                html::bytes(used.memory.max(0) as u64 * 1024 * 1024)
            ),
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
        if quota.enabled { ", against each user's quota" } else { " (quotas are off)" }
    );
    let first = (page_no - 1) * PAGE_SIZE;
    usage_table(
        &mut page.body,
        &rows[first.min(rows.len())..(first + PAGE_SIZE).min(rows.len())],
        quota,
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
