//! The overview: VMs by state, hosts with their CPU and memory allocated against capacity,
//! networks with free leases, quota use; for oneadmin also every user's use, the image cache
//! and the quarantine. Everything is counted over what the viewer may see.

use super::html::{self, badge, Esc, Live, Page, Section, Url};
use super::site_usage::SiteUsage;
use super::viewer::Viewer;
use super::vms::{group_of, state_class, state_label, GROUPS};
use super::Reply;
use crate::core::owned;
use crate::core::vms::{quota_limits, quota_use, quota_use_by_user, QuotaLimits, QuotaUse};
use crate::core::Core;
use crate::model::host::HostState;
use crate::model::vm::VmState;
use crate::model::{Host, Image, VNet, Vm};
use std::fmt::Write;
use std::sync::Arc;

/// Hosts and networks listed on the overview (the full lists have their own pages).
const LISTED: usize = 12;
/// Users listed by use.
const TOP_USERS: usize = 10;

pub async fn page(core: &Arc<Core>, viewer: &Viewer, usage: &SiteUsage) -> Reply {
    let site = if viewer.is_admin() {
        Some(usage.get(core).await)
    } else {
        None
    };
    let state = core.read();
    let caller = &viewer.caller;
    let mut page = Page::new("Overview", Section::Overview);
    page.live = Live::Reload;
    let b = &mut page.body;
    let _ = write!(
        b,
        "<div class=\"heading\"><h1>{}</h1></div>",
        if viewer.is_admin() {
            "Site overview".to_string()
        } else {
            format!("Welcome, {}", Esc(&viewer.display_name))
        }
    );

    // VMs by state, and the newest few.
    let mut counts = [0usize; 8];
    let mut newest: Vec<&Vm> = Vec::new();
    if let Ok(vms) = owned::filter::<Vm>(&state, caller, -2, -1, -1) {
        for vm in vms {
            counts[group_of(vm)] += 1;
            if vm.state != VmState::Done && !viewer.is_admin() {
                newest.push(vm);
            }
        }
    }
    let live: usize = counts[..7].iter().sum();
    b.push_str("<div class=\"grid\">");
    let _ = write!(
        b,
        "<section class=\"card\" aria-labelledby=\"o-vms\"><h2 id=\"o-vms\">Virtual machines</h2>\
         <p class=\"big\">{live}<span> not done</span></p><ul class=\"states\">"
    );
    for (i, (key, label, class)) in GROUPS.iter().enumerate() {
        if counts[i] == 0 && i != 0 {
            continue;
        }
        let _ = write!(
            b,
            "<li><a href=\"{}\"><span class=\"dot {class}\" aria-hidden=\"true\"></span>{label}<strong>{}</strong></a></li>",
            Url::new("/dashboard/vms").with("state", *key),
            counts[i]
        );
    }
    b.push_str("</ul></section>");

    // Quota of the viewer (everybody but oneadmin's group is subject to it).
    let quota = &core.settings.quota;
    if !viewer.is_admin() {
        let used = quota_use(&state, caller.uid);
        b.push_str(
            "<section class=\"card\" aria-labelledby=\"o-quota\"><h2 id=\"o-quota\">Your use</h2>",
        );
        quota_meters(b, &used, quota_limits(quota, &state, caller.uid));
        b.push_str("</section>");
    }

    // Hosts.
    let hosts: Vec<&Host> = crate::core::hosts::visible(&state, caller).collect();
    if !hosts.is_empty() {
        let (mut cpu, mut max_cpu, mut mem, mut max_mem) = (0i64, 0i64, 0i64, 0i64);
        let (mut enabled, mut troubled) = (0, 0);
        for h in &hosts {
            if h.state != HostState::Disabled {
                enabled += 1;
                cpu += h.share.cpu_usage;
                max_cpu += h.share.max_cpu;
                mem += h.share.mem_usage;
                max_mem += h.share.max_mem;
            }
            if h.state == HostState::Error {
                troubled += 1;
            }
        }
        let _ = write!(
            b,
            "<section class=\"card\" aria-labelledby=\"o-hosts\"><h2 id=\"o-hosts\">Hosts</h2>\
             <p class=\"big\">{enabled}<span> enabled of {}</span></p>",
            hosts.len()
        );
        if troubled > 0 {
            let _ = write!(
                b,
                "<p>{}</p>",
                badge("bad", &format!("{troubled} in error"))
            );
        }
        let _ = write!(
            b,
            "<p class=\"meter-title\">CPU allocated</p>{}<p class=\"meter-title\">Memory allocated</p>{}</section>",
            html::meter(cpu as f64, max_cpu as f64, &format!("{:.1} of {:.0} CPUs", cpu as f64 / 100.0, max_cpu as f64 / 100.0)),
            html::meter(mem as f64, max_mem as f64, &format!("{} of {}", html::bytes(mem.max(0) as u64 * 1024), html::bytes(max_mem.max(0) as u64 * 1024))),
        );
    }

    // Site disk use (oneadmin).
    if let Some(site) = &site {
        let _ = write!(
            b,
            "<section class=\"card\" aria-labelledby=\"o-storage\"><h2 id=\"o-storage\">Front-end storage</h2>\
             <dl class=\"facts\"><div><dt>Image cache</dt><dd>{} in {} image{}</dd></div>\
             <div><dt>Quarantine</dt><dd>{} in {} VM director{}</dd></div>{}</dl></section>",
            html::bytes(site.cache_bytes),
            site.cache_images,
            if site.cache_images == 1 { "" } else { "s" },
            html::bytes(site.quarantine_bytes),
            site.quarantined,
            if site.quarantined == 1 { "y" } else { "ies" },
            match site.oldest_quarantine {
                Some(t) => format!("<div><dt>Oldest in quarantine</dt><dd>{}</dd></div>", html::time_element(t)),
                None => String::new(),
            }
        );
    }
    b.push_str("</div>");

    // Host table.
    if !hosts.is_empty() {
        b.push_str(
            "<section aria-labelledby=\"o-hosts-t\"><h2 id=\"o-hosts-t\">Host capacity</h2>",
        );
        super::hosts::table(b, &hosts[..hosts.len().min(LISTED)], None);
        if hosts.len() > LISTED {
            let _ = write!(
                b,
                "<p><a href=\"/dashboard/hosts\">All {} hosts</a></p>",
                hosts.len()
            );
        }
        b.push_str("</section>");
    }

    // Networks with free leases.
    let nets: Vec<&VNet> = owned::filter::<VNet>(&state, caller, -2, -1, -1)
        .map(|it| it.collect())
        .unwrap_or_default();
    b.push_str("<section aria-labelledby=\"o-nets\"><h2 id=\"o-nets\">Networks</h2>");
    if nets.is_empty() {
        b.push_str("<p class=\"muted\">No network you may use.</p>");
    } else {
        super::networks::table(b, &nets[..nets.len().min(LISTED)]);
        if nets.len() > LISTED {
            let _ = write!(
                b,
                "<p><a href=\"/dashboard/networks\">All {} networks</a></p>",
                nets.len()
            );
        }
    }
    b.push_str("</section>");

    // Users by use (oneadmin).
    if viewer.is_admin() {
        let by_user = quota_use_by_user(&state);
        let mut ranked: Vec<(&crate::model::User, QuotaUse)> =
            crate::core::users::visible(&state, caller)
                .map(|u| (u, by_user.get(&u.id).copied().unwrap_or_default()))
                .collect();
        ranked.sort_by(|a, b| b.1.vms.cmp(&a.1.vms).then(a.0.id.cmp(&b.0.id)));
        let _ = write!(
            b,
            "<section aria-labelledby=\"o-users\"><h2 id=\"o-users\">Users by use</h2><p class=\"muted\">{} users; {}.</p>",
            ranked.len(),
            if quota.enabled {
                format!(
                    "the site's quota per user (some users have their own): {} CPU, {} memory, {} VMs",
                    quota.cpu.map(|c| format!("{c}")).unwrap_or_else(|| "unlimited".into()),
                    quota
                        .memory
                        .map(|m| html::bytes(m.max(0) as u64 * 1024 * 1024))
                        .unwrap_or_else(|| "unlimited".into()),
                    quota.num_vms.map(|n| n.to_string()).unwrap_or_else(|| "unlimited".into()),
                )
            } else {
                "quotas are off".into()
            }
        );
        super::accounts::usage_table(b, &state, quota, &ranked[..ranked.len().min(TOP_USERS)]);
        if ranked.len() > TOP_USERS {
            b.push_str("<p><a href=\"/dashboard/users\">All users</a></p>");
        }
        b.push_str("</section>");
    } else {
        // The viewer's own newest VMs.
        b.push_str(
            "<section aria-labelledby=\"o-mine\"><h2 id=\"o-mine\">Recent virtual machines</h2>",
        );
        if newest.is_empty() {
            b.push_str("<p class=\"muted\">None running. Start one with <code>stratus-run-instance</code>.</p>");
        } else {
            b.push_str("<ul class=\"recent\">");
            // The pool is in id order: the newest are last.
            for vm in newest.iter().rev().take(8) {
                let _ = write!(
                    b,
                    "<li data-vm=\"{id}\"><a href=\"/dashboard/vms/{id}\">{name}</a> <span data-field=\"state\">{}</span></li>",
                    badge(state_class(vm), state_label(vm)),
                    id = vm.id,
                    name = Esc(&vm.name),
                );
            }
            b.push_str("</ul><p><a href=\"/dashboard/vms\">All your virtual machines</a></p>");
        }
        b.push_str("</section>");
        let images = owned::filter::<Image>(&state, caller, -3, -1, -1)
            .map(|it| it.count())
            .unwrap_or(0);
        let _ = write!(
            b,
            "<p class=\"muted\">You own {images} image{} in the repository. <a href=\"/dashboard/images\">Images</a></p>",
            if images == 1 { "" } else { "s" }
        );
    }
    Reply::Page(page)
}

/// Meters of one user's use against its quota (plain figures where there is no limit).
pub fn quota_meters(b: &mut String, used: &QuotaUse, limits: Option<QuotaLimits>) {
    for figure in super::accounts::figures(used, limits) {
        let _ = write!(
            b,
            "<p class=\"meter-title\">{}</p>{}",
            figure.label,
            figure.html()
        );
    }
}

pub fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}
