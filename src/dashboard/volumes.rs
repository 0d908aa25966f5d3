//! The persistent volumes of the built-in pdisk service (shown when `--pdisk-listen` is on):
//! the viewer's volumes (pdisk's super-user and oneadmin: all of them) with their size, owner,
//! visibility, users and mounts, and the actions the REST service would let the viewer take
//! (delete, detach a hot-plugged volume), each asking for confirmation first.
//!
//! Authorization is the REST service's own: the viewer is the volume user named as the
//! front door names them, and the actions are the service's calls ([`VolumeActions`]), which
//! check the rights again and answer with pdisk's messages.

use super::form::Form;
use super::html::{self, badge, csrf_field, Esc, Notice, Page, Section, Url};
use super::viewer::Viewer;
use super::Reply;
use crate::core::volumes::{VolumeResult, VolumeUser};
use crate::core::Core;
use crate::model::volume::{is_uuid, Visibility, Volume, VolumeType, MAX_USERS};
use crate::model::Oid;
use std::fmt::Write;
use std::sync::Arc;

const PAGE_SIZE: usize = 50;

/// What the dashboard asks of the persistent disk service (it does the data and libvirt work
/// around the core's records; the daemon installs it when `--pdisk-listen` is on).
pub trait VolumeActions: Send + Sync {
    /// `DELETE /disks/<uuid>/`.
    fn delete(&self, who: &VolumeUser, uuid: &str) -> VolumeResult<()>;
    /// `DELETE /disks/<uuid>/mounts/<uuid>_<vm>`; returns the device the guest had.
    fn detach(&self, who: &VolumeUser, uuid: &str, vm: Oid) -> VolumeResult<String>;
}

/// The viewer as the REST service knows them.
fn volume_user(viewer: &Viewer) -> VolumeUser {
    VolumeUser::new(&viewer.caller.name)
}

fn may_edit(who: &VolumeUser, v: &Volume) -> bool {
    who.superuser || who.name == v.owner
}

/// The confirmation form of a delete.
fn delete_form(b: &mut String, viewer: &Viewer, v: &Volume, text_id: &str) {
    let _ = write!(
        b,
        "<p id=\"{text_id}\">The volume goes into the quarantine and its data is removed when the \
         quarantine period is over; only the site's administrator can bring it back.</p>\
         <form method=\"post\" action=\"/dashboard/volumes/{uuid}/delete\" data-async>{csrf}\
         <div class=\"buttons\"><button type=\"submit\" class=\"danger\">Delete</button> \
         <a class=\"button secondary\" href=\"/dashboard/volumes\" data-close>Cancel</a></div></form>",
        uuid = Esc(&v.uuid),
        csrf = csrf_field(viewer),
    );
}

/// The confirmation form of a detach from VM `vm`.
fn detach_form(b: &mut String, viewer: &Viewer, v: &Volume, vm: Oid, text_id: &str) {
    let _ = write!(
        b,
        "<p id=\"{text_id}\">The disk is unplugged from the running VM {vm}; the guest should have \
         unmounted it first. Its data stays in the volume.</p>\
         <form method=\"post\" action=\"/dashboard/volumes/{uuid}/detach\" data-async>{csrf}\
         <input type=\"hidden\" name=\"vm\" value=\"{vm}\">\
         <div class=\"buttons\"><button type=\"submit\" class=\"danger\">Detach</button> \
         <a class=\"button secondary\" href=\"/dashboard/volumes\" data-close>Cancel</a></div></form>",
        uuid = Esc(&v.uuid),
        csrf = csrf_field(viewer),
    );
}

fn table(b: &mut String, viewer: &Viewer, who: &VolumeUser, rows: &[(Volume, usize)]) {
    b.push_str(
        "<div class=\"table-wrap\"><table class=\"list\"><thead><tr>\
         <th scope=\"col\">Volume</th><th scope=\"col\">Tag</th><th scope=\"col\">Owner</th>\
         <th scope=\"col\" class=\"num\">Size</th><th scope=\"col\" class=\"opt\">Type</th>\
         <th scope=\"col\">Visibility</th><th scope=\"col\" class=\"num\">Users</th>\
         <th scope=\"col\">Mounts</th><th scope=\"col\">Actions</th></tr></thead><tbody>",
    );
    for (n, (v, count)) in rows.iter().enumerate() {
        let users = if v.kind == VolumeType::MachineImageOrigin {
            format!("{count} snapshot{}", if *count == 1 { "" } else { "s" })
        } else {
            format!("{count}&nbsp;of&nbsp;{MAX_USERS}")
        };
        let _ = write!(
            b,
            "<tr data-volume=\"{uuid}\"><td class=\"mono\">{uuid}</td><td>{tag}</td><td>{owner}</td>\
             <td class=\"num\">{size}&nbsp;GiB</td><td class=\"opt mono\">{kind}</td><td>{vis}</td>\
             <td class=\"num\">{users}</td><td>",
            uuid = Esc(&v.uuid),
            tag = Esc(&v.tag),
            owner = Esc(&v.owner),
            size = v.size,
            kind = v.kind.as_str(),
            vis = match v.visibility {
                Visibility::Public => badge("ok", "public"),
                Visibility::Private => badge("wait", "private"),
            } + &if v.in_quarantine() {
                format!(" {}", badge("bad", &format!("quarantine since {}", v.quarantine)))
            } else {
                String::new()
            },
        );
        if v.mounts.is_empty() {
            b.push_str("<span class=\"muted\">none</span>");
        } else {
            b.push_str("<ul class=\"plain\">");
            for m in &v.mounts {
                let how = if m.is_hotplug() {
                    format!("hot-plugged as {}", Esc(&m.device))
                } else {
                    "a disk of its template".to_string()
                };
                let _ = write!(
                    b,
                    "<li><a href=\"/dashboard/vms/{vm}\">VM {vm}</a> on {node}, {how}</li>",
                    vm = m.vm_id,
                    node = Esc(&m.node),
                );
            }
            b.push_str("</ul>");
        }
        b.push_str("</td><td>");
        let mut offered = false;
        if may_edit(who, v) {
            for m in v.mounts.iter().filter(|m| m.is_hotplug()) {
                offered = true;
                let _ = write!(
                    b,
                    "<a class=\"button small danger\" href=\"{href}\" data-dialog=\"vol-detach-{n}-{vm}\">Detach from VM {vm}</a>\
                     <dialog id=\"vol-detach-{n}-{vm}\" aria-labelledby=\"vol-detach-{n}-{vm}-t\" aria-describedby=\"vol-detach-{n}-{vm}-d\">\
                     <h2 id=\"vol-detach-{n}-{vm}-t\">Detach volume {uuid} from VM {vm}?</h2>",
                    href = Url::new("/dashboard/volumes")
                        .with("confirm", "detach")
                        .with("volume", v.uuid.clone())
                        .with("vm", m.vm_id.to_string()),
                    vm = m.vm_id,
                    uuid = Esc(&v.uuid),
                );
                detach_form(
                    b,
                    viewer,
                    v,
                    m.vm_id,
                    &format!("vol-detach-{n}-{}-d", m.vm_id),
                );
                b.push_str("</dialog>");
            }
            if v.mounts.is_empty() && *count == 0 && !v.cached {
                offered = true;
                let _ = write!(
                    b,
                    "<a class=\"button small danger\" href=\"{href}\" data-dialog=\"vol-delete-{n}\">Delete</a>\
                     <dialog id=\"vol-delete-{n}\" aria-labelledby=\"vol-delete-{n}-t\" aria-describedby=\"vol-delete-{n}-d\">\
                     <h2 id=\"vol-delete-{n}-t\">Delete volume {uuid}?</h2>",
                    href = Url::new("/dashboard/volumes")
                        .with("confirm", "delete")
                        .with("volume", v.uuid.clone()),
                    uuid = Esc(&v.uuid),
                );
                delete_form(b, viewer, v, &format!("vol-delete-{n}-d"));
                b.push_str("</dialog>");
            }
        }
        if !offered {
            b.push_str("<span class=\"muted\">none</span>");
        }
        b.push_str("</td></tr>");
    }
    b.push_str("</tbody></table></div>");
}

/// `GET /dashboard/volumes`.
pub fn list(core: &Arc<Core>, viewer: &Viewer, query: &Form) -> Page {
    let who = volume_user(viewer);
    let volumes = core.volumes_of(&who);
    let total = volumes.len();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page_no = query.page().min(pages);
    let mut page = Page::new("Volumes", Section::Volumes);
    if let Some(done) = query.get("done") {
        match done {
            "delete" => page
                .notices
                .push(Notice::Info("Volume deleted (into the quarantine).".into())),
            "detach" => page.notices.push(Notice::Info("Volume detached.".into())),
            _ => {}
        }
    }
    let b = &mut page.body;
    let _ = write!(
        b,
        "<div class=\"heading\"><h1>Volumes</h1></div><p class=\"count\">{total} volume{}{}; \
         a volume takes at most {MAX_USERS} users.</p>",
        if total == 1 { "" } else { "s" },
        if who.superuser {
            " of every user"
        } else {
            " of yours"
        },
    );
    // No-script confirmation of an action.
    let asked = query
        .get("volume")
        .filter(|u| is_uuid(u))
        .and_then(|u| volumes.iter().find(|(v, _)| v.uuid == u))
        .filter(|(v, _)| may_edit(&who, v));
    if let Some((v, _)) = asked {
        match (query.get("confirm"), query.int("vm")) {
            (Some("delete"), _) => {
                let _ = write!(
                    b,
                    "<section class=\"confirm card\" role=\"alertdialog\" aria-labelledby=\"confirm-title\" aria-describedby=\"confirm-text\">\
                     <h2 id=\"confirm-title\">Delete volume {}?</h2>",
                    Esc(&v.uuid)
                );
                delete_form(b, viewer, v, "confirm-text");
                b.push_str("</section>");
            }
            (Some("detach"), Some(vm)) if v.mount_of(vm).is_some() => {
                let _ = write!(
                    b,
                    "<section class=\"confirm card\" role=\"alertdialog\" aria-labelledby=\"confirm-title\" aria-describedby=\"confirm-text\">\
                     <h2 id=\"confirm-title\">Detach volume {} from VM {vm}?</h2>",
                    Esc(&v.uuid)
                );
                detach_form(b, viewer, v, vm, "confirm-text");
                b.push_str("</section>");
            }
            _ => {}
        }
    }
    let shown: Vec<(Volume, usize)> = volumes
        .into_iter()
        .skip((page_no - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    if shown.is_empty() {
        b.push_str(
            "<p class=\"muted\">No volume. Create one with <code>stratus-create-volume</code>.</p>",
        );
    } else {
        table(b, viewer, &who, &shown);
    }
    html::pager(
        b,
        &Url::new("/dashboard/volumes"),
        page_no,
        pages,
        "Pages of volumes",
    );
    page
}

/// `POST /dashboard/volumes/<uuid>/delete` and `…/detach` (form `vm`): the service's call,
/// then back to the list; a refusal shows the service's message on the list.
pub async fn action(
    core: &Arc<Core>,
    service: &Arc<dyn VolumeActions>,
    viewer: &Viewer,
    uuid: &str,
    what: &str,
    form: &Form,
) -> Reply {
    let who = volume_user(viewer);
    let uuid = uuid.to_string();
    let vm = form.int("vm");
    let svc = Arc::clone(service);
    let what_owned = what.to_string();
    let outcome = tokio::task::spawn_blocking(move || match (what_owned.as_str(), vm) {
        ("delete", _) => svc.delete(&who, &uuid).map(|_| uuid),
        ("detach", Some(vm)) => svc.detach(&who, &uuid, vm).map(|_| uuid),
        _ => Err(crate::core::volumes::VolumeError::BadRequest(
            "the dashboard offers no such action".into(),
        )),
    })
    .await
    .unwrap_or_else(|_| {
        Err(crate::core::volumes::VolumeError::Internal(
            "Internal error".into(),
        ))
    });
    match outcome {
        Ok(uuid) => {
            tracing::info!(volume = %uuid, user = %viewer.caller.name, action = what, "dashboard: volume action");
            Reply::Redirect(format!("/dashboard/volumes?done={what}"))
        }
        Err(e) => {
            tracing::info!(user = %viewer.caller.name, action = what, "dashboard: volume action refused: {e}");
            let mut page = list(core, viewer, &Form::default());
            page.status = hyper::StatusCode::from_u16(e.status())
                .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
            page.notices.push(Notice::Error(e.to_string()));
            Reply::Page(page)
        }
    }
}
