//! Virtual networks and their leases, as `one.vnpool.info` (filter -2) and `one.vn.info`
//! show them to the viewer.

use super::form::Form;
use super::html::{self, Esc, Page, Section, Url};
use super::viewer::Viewer;
use super::vms::template_text;
use super::{refused, Reply};
use crate::api::error::oned_message;
use crate::core::owned::{self, get_authorized};
use crate::core::Core;
use crate::model::acl::Op;
use crate::model::vnet::{ip_to_string, NetKind};
use crate::model::{Oid, VNet, Vm};
use std::fmt::Write;
use std::sync::Arc;

const LEASES_PER_PAGE: usize = 100;

/// The network table: leases in use and free against the network's size.
pub fn table(b: &mut String, nets: &[&VNet]) {
    b.push_str(
        "<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th scope=\"col\">ID</th>\
         <th scope=\"col\">Name</th><th scope=\"col\" class=\"opt\">Owner</th><th scope=\"col\">Type</th>\
         <th scope=\"col\" class=\"opt\">Bridge</th><th scope=\"col\">Leases in use</th>\
         <th scope=\"col\" class=\"num\">Free</th></tr></thead><tbody>",
    );
    for n in nets {
        let capacity = n.capacity();
        let free = n.free_leases();
        let used = capacity.saturating_sub(free);
        let _ = write!(
            b,
            "<tr><td>{id}</td><td><a href=\"/dashboard/networks/{id}\">{name}</a></td><td class=\"opt\">{owner}</td>\
             <td>{kind}</td><td class=\"opt mono\">{bridge}</td><td>{meter}</td><td class=\"num\">{free}</td></tr>",
            id = n.id,
            name = Esc(&n.name),
            owner = Esc(&n.uname),
            kind = if n.kind == NetKind::Ranged { "ranged" } else { "fixed" },
            bridge = Esc(&n.bridge),
            meter = html::meter(used as f64, capacity as f64, &format!("{used} of {capacity}")),
        );
    }
    b.push_str("</tbody></table></div>");
}

pub fn list(core: &Arc<Core>, viewer: &Viewer) -> Reply {
    let state = core.read();
    let nets: Vec<&VNet> = match owned::filter::<VNet>(&state, &viewer.caller, -2, -1, -1) {
        Ok(it) => it.collect(),
        Err(e) => {
            let (msg, code) = oned_message("VirtualNetworkPoolInfo", &e);
            return Reply::Page(refused("Networks", Section::Networks, &msg, code));
        }
    };
    let mut page = Page::new("Networks", Section::Networks);
    let b = &mut page.body;
    b.push_str("<div class=\"heading\"><h1>Networks</h1></div>");
    if nets.is_empty() {
        b.push_str("<p class=\"muted\">No network you may use.</p>");
    } else {
        let free: u64 = nets.iter().map(|n| n.free_leases()).sum();
        let _ = write!(
            b,
            "<p class=\"count\">{} network{}, {free} free lease{}.</p>",
            nets.len(),
            if nets.len() == 1 { "" } else { "s" },
            if free == 1 { "" } else { "s" }
        );
        table(b, &nets);
    }
    Reply::Page(page)
}

pub fn detail(core: &Arc<Core>, viewer: &Viewer, id: Oid, query: &Form) -> Reply {
    let state = core.read();
    let net = match get_authorized::<VNet>(&state, &viewer.caller, id, Op::Use) {
        Ok(n) => n,
        Err(e) => {
            let (msg, code) = oned_message("VirtualNetworkInfo", &e);
            return Reply::Page(refused(
                &format!("Network {id}"),
                Section::Networks,
                &msg,
                code,
            ));
        }
    };
    let mut page = Page::new(
        format!("Network {} · {}", net.id, net.name),
        Section::Networks,
    );
    let b = &mut page.body;
    let _ = write!(
        b,
        "<nav class=\"crumbs\" aria-label=\"Breadcrumb\"><a href=\"/dashboard/networks\">Networks</a> › Network {}</nav>\
         <div class=\"heading\"><h1>{}</h1></div><dl class=\"facts\">",
        net.id,
        Esc(&net.name)
    );
    let fact = |b: &mut String, t: &str, v: String| {
        let _ = write!(b, "<div><dt>{t}</dt><dd>{v}</dd></div>");
    };
    fact(
        b,
        "Owner",
        format!("{} ({})", Esc(&net.uname), Esc(&net.gname)),
    );
    fact(
        b,
        "Type",
        if net.kind == NetKind::Ranged {
            "ranged".into()
        } else {
            "fixed".into()
        },
    );
    if net.kind == NetKind::Ranged {
        fact(
            b,
            "Range",
            format!(
                "<span class=\"mono\">{} – {}</span>",
                ip_to_string(net.ip_start),
                ip_to_string(net.ip_end)
            ),
        );
    }
    fact(
        b,
        "Bridge",
        format!("<span class=\"mono\">{}</span>", Esc(&net.bridge)),
    );
    if net.vlan {
        fact(
            b,
            "VLAN",
            format!("{} {}", Esc(&net.vlan_id), Esc(&net.phydev)),
        );
    }
    let capacity = net.capacity();
    let free = net.free_leases();
    fact(
        b,
        "Leases",
        html::meter(
            (capacity - free.min(capacity)) as f64,
            capacity as f64,
            &format!(
                "{} in use, {free} free of {capacity}",
                capacity - free.min(capacity)
            ),
        ),
    );
    b.push_str("</dl>");

    // Leases: every defined one of a FIXED network, the ones in use of a RANGED one.
    let leases: Vec<(&u32, &crate::model::vnet::Lease)> = net
        .leases
        .iter()
        .filter(|(_, l)| net.kind == NetKind::Fixed || l.used)
        .collect();
    let pages = leases.len().div_ceil(LEASES_PER_PAGE).max(1);
    let page_no = query.page().min(pages);
    let _ = write!(
        b,
        "<section aria-labelledby=\"n-leases\"><h2 id=\"n-leases\">{}</h2>",
        if net.kind == NetKind::Fixed {
            "Leases"
        } else {
            "Leases in use"
        }
    );
    if leases.is_empty() {
        b.push_str("<p class=\"muted\">None.</p>");
    } else {
        b.push_str("<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th scope=\"col\">IP</th><th scope=\"col\">MAC</th><th scope=\"col\">Used by</th></tr></thead><tbody>");
        for (ip, lease) in leases
            .iter()
            .skip((page_no - 1) * LEASES_PER_PAGE)
            .take(LEASES_PER_PAGE)
        {
            let user = if !lease.used {
                "<span class=\"muted\">free</span>".to_string()
            } else if lease.vid < 0 {
                "held".to_string()
            } else if get_authorized::<Vm>(&state, &viewer.caller, lease.vid, Op::Use).is_ok() {
                format!("<a href=\"/dashboard/vms/{0}\">VM {0}</a>", lease.vid)
            } else {
                format!("VM {}", lease.vid)
            };
            let _ = write!(
                b,
                "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{user}</td></tr>",
                ip_to_string(**ip),
                Esc(&lease.mac)
            );
        }
        b.push_str("</tbody></table></div>");
        html::pager(
            b,
            &Url::new(&format!("/dashboard/networks/{}", net.id)),
            page_no,
            pages,
            "Pages of leases",
        );
    }
    b.push_str("</section>");
    let _ = write!(
        b,
        "<section aria-labelledby=\"n-template\"><details><summary><h2 id=\"n-template\">Template</h2></summary><pre class=\"template\" tabindex=\"0\">{}</pre></details></section>",
        Esc(&template_text(&net.template, 64 * 1024))
    );
    Reply::Page(page)
}
