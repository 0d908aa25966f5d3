//! Signing in and out. The form checks a user name and password exactly as `/pswd` does
//! (password file, then LDAP, and the `cloud-access` role); a browser that presented a client
//! certificate the front door accepts (as on `/cert`) may sign in with it instead. Either way
//! the core must then accept the identity, as it would the session one-proxy forwards.

use super::html::{Esc, Notice, Page, Section};
use super::viewer::{Via, Viewer};
use super::{sessions, Call, Dashboard, Door, Reply, LOGIN_COOKIE, SESSION_COOKIE};
use crate::core::Core;
use crate::frontdoor::basic::{BasicCredentials, BasicVerdict};
use crate::frontdoor::cert::CertVerdict;
use crate::frontdoor::session::Identity;
use hyper::StatusCode;
use std::fmt::Write;
use std::sync::Arc;

/// Cookie attributes: sent back only over HTTPS, to this origin, never to scripts, never
/// with a request another site starts.
const COOKIE_ATTRIBUTES: &str = "Path=/; Secure; HttpOnly; SameSite=Strict";

/// Where to go after signing in: a dashboard page named by `next`, or the overview.
pub fn safe_next(next: Option<&str>) -> String {
    let fallback = "/dashboard/".to_string();
    let Some(next) = next else { return fallback };
    let ok = next.len() <= 1024
        && next.starts_with("/dashboard/")
        && !next.starts_with("/dashboard/login")
        && !next.starts_with("/dashboard/logout")
        && !next.starts_with("/dashboard/events")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\');
    if ok {
        next.to_string()
    } else {
        fallback
    }
}

pub async fn handle(
    dash: &Dashboard,
    door: &Door<'_>,
    core: &Arc<Core>,
    call: &Call,
    cookies: &mut Vec<String>,
) -> Reply {
    if call.is_post() {
        return submit(dash, door, core, call, cookies).await;
    }
    if !call.is_get() {
        return super::not_found();
    }
    // Already signed in: straight on.
    if call
        .cookie(SESSION_COOKIE)
        .and_then(|t| dash.sessions.get(t))
        .is_some()
        && call.query.get("expired").is_none()
    {
        return Reply::Redirect(safe_next(call.query.get("next")));
    }
    let mut notices = Vec::new();
    if call.query.get("expired").is_some() {
        notices.push(Notice::Info(
            "Your session has ended; sign in again.".into(),
        ));
    }
    if call.query.get("out").is_some() {
        notices.push(Notice::Info("You have signed out.".into()));
    }
    Reply::Page(form_page(door, call, cookies, StatusCode::OK, notices, ""))
}

/// The sign-in page, with a fresh anti-forgery token (cookie and field).
fn form_page(
    door: &Door<'_>,
    call: &Call,
    cookies: &mut Vec<String>,
    status: StatusCode,
    notices: Vec<Notice>,
    user: &str,
) -> Page {
    let token = sessions::random_token();
    cookies.push(format!(
        "{LOGIN_COOKIE}={token}; {COOKIE_ATTRIBUTES}; Max-Age=3600"
    ));
    let next = safe_next(call.query.get("next").or(call.form.get("next")));
    let mut page = Page::new("Sign in", Section::None);
    page.status = status;
    page.notices = notices;
    let b = &mut page.body;
    b.push_str("<div class=\"signin\"><h1>Sign in to the cloud</h1>");
    match door.certs.map(|c| c.identify(door.peer_certificates)) {
        Some(CertVerdict::Granted(Identity::Certificate { dn })) => {
            let _ = write!(
                b,
                "<form method=\"post\" action=\"/dashboard/login\" class=\"card stack cert\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
                 <input type=\"hidden\" name=\"next\" value=\"{next}\">\
                 <input type=\"hidden\" name=\"method\" value=\"certificate\">\
                 <p>Your browser presented the certificate of<br><strong class=\"dn\">{dn}</strong></p>\
                 <button type=\"submit\" id=\"cert-signin\" class=\"primary\">Sign in with this certificate</button></form>\
                 <p class=\"or\">or with a user name and password</p>",
                token = Esc(&token),
                next = Esc(&next),
                dn = Esc(&dn),
            );
        }
        Some(CertVerdict::Granted(_)) | Some(CertVerdict::NoCertificate) => {
            b.push_str("<p class=\"hint\">Users with a grid certificate: have your browser present it to this site to sign in with it.</p>");
        }
        Some(CertVerdict::Refused(reason)) => {
            let _ = write!(
                b,
                "<p class=\"hint\">The certificate your browser presented is not accepted: {}.</p>",
                Esc(&reason)
            );
        }
        Some(CertVerdict::NotInRole(dn)) => {
            let _ = write!(
                b,
                "<p class=\"hint\">The certificate of {} is not allowed to use this cloud.</p>",
                Esc(&dn)
            );
        }
        None => {}
    }
    let _ = write!(
        b,
        "<form method=\"post\" action=\"/dashboard/login\" class=\"card stack\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <input type=\"hidden\" name=\"method\" value=\"password\">\
         <label for=\"user\">User name</label>\
         <input id=\"user\" name=\"user\" autocomplete=\"username\" required \
         autocapitalize=\"none\" spellcheck=\"false\" value=\"{user}\">\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" class=\"primary\">Sign in</button></form>",
        token = Esc(&token),
        next = Esc(&next),
        user = Esc(user),
    );
    b.push_str("</div>");
    page
}

async fn submit(
    dash: &Dashboard,
    door: &Door<'_>,
    core: &Arc<Core>,
    call: &Call,
    cookies: &mut Vec<String>,
) -> Reply {
    let user = call.form.text("user").to_string();
    let again = |cookies: &mut Vec<String>, status: StatusCode, message: &str| {
        Reply::Page(form_page(
            door,
            call,
            cookies,
            status,
            vec![Notice::Error(message.to_string())],
            &user,
        ))
    };
    let token_ok = match (call.cookie(LOGIN_COOKIE), call.form.get("csrf")) {
        (Some(cookie), Some(field)) => sessions::same_secret(cookie, field),
        _ => false,
    };
    if !token_ok || !super::same_origin(call) {
        return again(
            cookies,
            StatusCode::FORBIDDEN,
            "The sign-in form expired or did not come from this site; try again.",
        );
    }
    let addr = door.peer.ip();
    if !dash.throttle.allows(addr) {
        return again(
            cookies,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins from your address; try again in a few minutes.",
        );
    }
    let identity = if call.form.get("method") == Some("certificate") {
        match door.certs.map(|c| c.identify(door.peer_certificates)) {
            Some(CertVerdict::Granted(identity)) => identity,
            _ => {
                return again(
                    cookies,
                    StatusCode::FORBIDDEN,
                    "Your browser did not present a certificate this cloud accepts.",
                )
            }
        }
    } else {
        let password = call.form.get("password").unwrap_or("").to_string();
        if user.is_empty() || password.is_empty() {
            return again(
                cookies,
                StatusCode::UNAUTHORIZED,
                "Enter your user name and password.",
            );
        }
        let credentials = BasicCredentials {
            user: user.clone(),
            password,
        };
        match door.passwords.check(&credentials).await {
            BasicVerdict::Granted => Identity::Password {
                user: credentials.user,
                password: credentials.password,
            },
            BasicVerdict::NotInRole => {
                tracing::info!(peer = %door.peer, %user, "dashboard sign-in refused: not in cloud-access");
                return again(
                    cookies,
                    StatusCode::FORBIDDEN,
                    "Your account is not allowed to use this cloud (not in the cloud-access role).",
                );
            }
            BasicVerdict::Refused => {
                dash.throttle.failed(addr);
                tracing::info!(peer = %door.peer, %user, "dashboard sign-in refused: wrong user name or password");
                return again(
                    cookies,
                    StatusCode::UNAUTHORIZED,
                    "Wrong user name or password.",
                );
            }
            BasicVerdict::Unavailable => {
                return again(
                    cookies,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The directory that checks passwords cannot be reached; try again later.",
                )
            }
        }
    };
    // The core has the last word, as for every XML-RPC call (a disabled user, oneadmin's
    // password). Registering a new StratusLab user is a command of the core, awaited.
    match core.authenticate_async(&identity.session()).await {
        Ok(_) => {}
        Err(e) => {
            return again(
                cookies,
                StatusCode::FORBIDDEN,
                &format!("The cloud refused your identity: {}", e.message()),
            )
        }
    }
    tracing::info!(peer = %door.peer, user = %super::viewer::display_name(&identity), "dashboard: signed in");
    let token = dash.sessions.create(identity);
    cookies.push(format!("{SESSION_COOKIE}={token}; {COOKIE_ATTRIBUTES}"));
    cookies.push(format!("{LOGIN_COOKIE}=; {COOKIE_ATTRIBUTES}; Max-Age=0"));
    Reply::Redirect(safe_next(call.form.get("next")))
}

pub fn logout(dash: &Dashboard, viewer: &Viewer, cookies: &mut Vec<String>) -> Reply {
    if let Via::Session(id) = viewer.via {
        dash.sessions.remove(id);
        tracing::info!(user = %viewer.display_name, "dashboard: signed out");
    }
    cookies.push(format!("{SESSION_COOKIE}=; {COOKIE_ATTRIBUTES}; Max-Age=0"));
    Reply::Redirect("/dashboard/login?out=1".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_dashboard() {
        assert_eq!(
            safe_next(Some("/dashboard/vms?page=2")),
            "/dashboard/vms?page=2"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/dashboard/",
            "/dashboard/\\evil",
            "/dashboard/x\r\nSet-Cookie: a=b",
            "/dashboard/login",
            "/dashboard/logout",
            "/pswd/xmlrpc",
            "/dashboard/ x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/dashboard/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/dashboard/");
    }
}
