//! Images of the repository and registered VM templates, as `one.imagepool.info` and
//! `one.templatepool.info` (filter -2) and `one.template.info` show them to the viewer.

use super::html::{self, badge, Esc, Page, Section};
use super::viewer::Viewer;
use super::vms::template_text;
use super::{refused, Reply};
use crate::api::error::oned_message;
use crate::core::owned::{self, get_authorized};
use crate::core::Core;
use crate::model::acl::Op;
use crate::model::image::ImageState;
use crate::model::{Image, Oid, VmTemplate};
use std::fmt::Write;
use std::sync::Arc;

/// Rows listed; repositories and template catalogues are small next to the VM pool.
const LISTED: usize = 2000;

fn image_class(state: ImageState) -> &'static str {
    match state {
        ImageState::Ready => "ok",
        ImageState::Used => "busy",
        ImageState::Init | ImageState::Locked => "wait",
        ImageState::Disabled => "off",
        ImageState::Error => "bad",
    }
}

pub fn images(core: &Arc<Core>, viewer: &Viewer) -> Reply {
    let state = core.read();
    let images: Vec<&Image> = match owned::filter::<Image>(&state, &viewer.caller, -2, -1, -1) {
        Ok(it) => it.collect(),
        Err(e) => {
            let (msg, code) = oned_message("ImagePoolInfo", &e);
            return Reply::Page(refused("Images", Section::Images, &msg, code));
        }
    };
    let mut page = Page::new("Images", Section::Images);
    let b = &mut page.body;
    let _ = write!(
        b,
        "<div class=\"heading\"><h1>Images</h1></div><p class=\"count\">{} image{} in the repository that you may use.</p>",
        images.len(),
        if images.len() == 1 { "" } else { "s" }
    );
    if !images.is_empty() {
        b.push_str(
            "<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th scope=\"col\">ID</th>\
             <th scope=\"col\">Name</th><th scope=\"col\" class=\"opt\">Owner</th><th scope=\"col\">Type</th>\
             <th scope=\"col\">State</th><th scope=\"col\" class=\"num\">Size</th>\
             <th scope=\"col\" class=\"num opt\">VMs</th><th scope=\"col\" class=\"opt\">Persistent</th>\
             <th scope=\"col\" class=\"opt\">Registered</th></tr></thead><tbody>",
        );
        for img in images.iter().rev().take(LISTED) {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td class=\"opt\">{}</td><td>{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"num opt\">{}</td><td class=\"opt\">{}</td><td class=\"opt\">{}</td></tr>",
                img.id,
                Esc(&img.name),
                Esc(&img.uname),
                img.image_type.name(),
                badge(image_class(img.state), img.state.name()),
                if img.size > 0 { html::bytes(img.size as u64 * 1024 * 1024) } else { "-".into() },
                img.running_vms,
                if img.persistent { "yes" } else { "no" },
                html::time_element(img.regtime),
            );
        }
        b.push_str("</tbody></table></div>");
        if images.len() > LISTED {
            let _ = write!(b, "<p class=\"muted\">The newest {LISTED} are listed.</p>");
        }
    }
    Reply::Page(page)
}

pub fn templates(core: &Arc<Core>, viewer: &Viewer) -> Reply {
    let state = core.read();
    let templates: Vec<&VmTemplate> =
        match owned::filter::<VmTemplate>(&state, &viewer.caller, -2, -1, -1) {
            Ok(it) => it.collect(),
            Err(e) => {
                let (msg, code) = oned_message("TemplatePoolInfo", &e);
                return Reply::Page(refused("Templates", Section::Templates, &msg, code));
            }
        };
    let mut page = Page::new("Templates", Section::Templates);
    let b = &mut page.body;
    let _ = write!(
        b,
        "<div class=\"heading\"><h1>VM templates</h1></div><p class=\"count\">{} registered template{} that you may use.</p>",
        templates.len(),
        if templates.len() == 1 { "" } else { "s" }
    );
    if !templates.is_empty() {
        b.push_str(
            "<div class=\"table-wrap\"><table class=\"list\"><thead><tr><th scope=\"col\">ID</th>\
             <th scope=\"col\">Name</th><th scope=\"col\">Owner</th><th scope=\"col\" class=\"num\">CPU</th>\
             <th scope=\"col\" class=\"num\">Memory</th><th scope=\"col\" class=\"opt\">Registered</th></tr></thead><tbody>",
        );
        for t in templates.iter().rev().take(LISTED) {
            let _ =
                write!(
                b,
                "<tr><td>{id}</td><td><a href=\"/dashboard/templates/{id}\">{}</a></td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"opt\">{}</td></tr>",
                Esc(&t.name),
                Esc(&t.uname),
                Esc(t.template.get("CPU").unwrap_or("-")),
                Esc(t.template.get("MEMORY").map(|m| format!("{m} MiB")).as_deref().unwrap_or("-")),
                html::time_element(t.regtime),
                id = t.id,
            );
        }
        b.push_str("</tbody></table></div>");
    }
    Reply::Page(page)
}

pub fn template(core: &Arc<Core>, viewer: &Viewer, id: Oid) -> Reply {
    let state = core.read();
    let t = match get_authorized::<VmTemplate>(&state, &viewer.caller, id, Op::Use) {
        Ok(t) => t,
        Err(e) => {
            let (msg, code) = oned_message("TemplateInfo", &e);
            return Reply::Page(refused(
                &format!("Template {id}"),
                Section::Templates,
                &msg,
                code,
            ));
        }
    };
    let mut page = Page::new(
        format!("Template {} · {}", t.id, t.name),
        Section::Templates,
    );
    let _ = write!(
        page.body,
        "<nav class=\"crumbs\" aria-label=\"Breadcrumb\"><a href=\"/dashboard/templates\">Templates</a> › Template {}</nav>\
         <div class=\"heading\"><h1>{}</h1></div><dl class=\"facts\"><div><dt>Owner</dt><dd>{} ({})</dd></div>\
         <div><dt>Registered</dt><dd>{}</dd></div></dl><pre class=\"template\" tabindex=\"0\" aria-label=\"Template\">{}</pre>",
        t.id,
        Esc(&t.name),
        Esc(&t.uname),
        Esc(&t.gname),
        html::time_element(t.regtime),
        Esc(&template_text(&t.template, 64 * 1024)),
    );
    Reply::Page(page)
}
