//! The browser dashboard, served by the front door under `/dashboard/`.
//!
//! People sign in with the front door's credentials (password file or LDAP through a form,
//! or the client certificate their browser presented) and get a session cookie; scripts send
//! HTTP Basic on each request as on `/pswd/xmlrpc`. Either way the request then runs as the
//! identity the front door would have forwarded: the core authenticates it and every page
//! shows only what the core's authorization lets that caller see; every action is the core
//! call its XML-RPC method makes, and a refusal shows oned's message.
//!
//! Pages are rendered on the server from the in-memory state (a read lock held while one page
//! is written); a little script adds confirmation dialogs and live updates from a server-sent
//! event stream (`events`). Assets are compiled in (`assets`).
//!
//! Safety: every value from the state or the request is escaped (`html::Esc`); every form
//! that acts carries the session's CSRF token and cross-site posts are refused; cookies are
//! `__Host-`, Secure, HttpOnly, SameSite=Strict; a strict Content-Security-Policy allows no
//! inline script or style. Costs are bounded: bodies, query strings, page sizes, log tails,
//! sessions, sign-in attempts and event streams all have limits.

mod accounts;
mod assets;
mod catalogue;
mod events;
mod form;
mod hosts;
mod html;
mod networks;
mod overview;
mod sessions;
mod signin;
mod site_usage;
mod viewer;
mod vms;
mod volumes;

pub use volumes::VolumeActions;

use crate::core::Core;
use crate::frontdoor::basic::{parse_authorization, BasicVerdict, PasswordAuthority};
use crate::frontdoor::cert::{CertAuthority, CertVerdict};
use crate::frontdoor::session::Identity;
use bytes::Bytes;
use form::Form;
use html::{Esc, Notice, Page, Section};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use rustls::pki_types::CertificateDer;
use sessions::{LoginThrottle, Sessions};
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use viewer::{Via, Viewer};

/// The body of a dashboard answer: a whole page, or an event stream.
pub type DashboardBody = Either<Full<Bytes>, events::EventStream>;

/// The session cookie. `__Host-`: only ever set by this origin over HTTPS, for every path.
const SESSION_COOKIE: &str = "__Host-stratusd-session";
/// The sign-in form's own anti-forgery cookie (double submit: a page elsewhere cannot sign a
/// browser in under another account).
const LOGIN_COOKIE: &str = "__Host-stratusd-login";
/// Largest form body read.
const MAX_FORM_BYTES: usize = 16 * 1024;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the front door knows of the connection, lent for one request.
pub struct Door<'a> {
    pub passwords: &'a PasswordAuthority,
    pub certs: Option<&'a CertAuthority>,
    pub peer: SocketAddr,
    pub peer_certificates: &'a [CertificateDer<'static>],
}

/// Is `path` one of the dashboard's?
pub fn is_dashboard_path(path: &str) -> bool {
    path == "/dashboard" || path.starts_with("/dashboard/")
}

pub struct Dashboard {
    sessions: Arc<Sessions>,
    throttle: LoginThrottle,
    /// Keys the CSRF tokens of Basic callers (who have no session).
    csrf_key: ring::hmac::Key,
    usage: site_usage::SiteUsage,
    streams: Arc<events::StreamCounter>,
    /// The persistent disk service, when `--pdisk-listen` is on: the volumes page.
    volumes: std::sync::OnceLock<Arc<dyn VolumeActions>>,
}

impl Default for Dashboard {
    fn default() -> Self {
        Self::new()
    }
}

/// One request, taken apart.
struct Call {
    parts: Parts,
    query: Form,
    form: Form,
}

impl Call {
    fn path(&self) -> &str {
        self.parts.uri.path()
    }

    fn is_get(&self) -> bool {
        self.parts.method == Method::GET || self.parts.method == Method::HEAD
    }

    fn is_post(&self) -> bool {
        self.parts.method == Method::POST
    }

    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        cookie(&self.parts.headers, name)
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// An answer before the common headers are added.
pub(crate) enum Reply {
    Page(Page),
    /// 303 to a dashboard path (always one this module built or checked).
    Redirect(String),
    Events(events::EventStream),
}

impl Dashboard {
    pub fn new() -> Dashboard {
        let secret = sessions::random_token();
        Dashboard {
            sessions: Arc::new(Sessions::default()),
            throttle: LoginThrottle::default(),
            csrf_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes()),
            usage: site_usage::SiteUsage::default(),
            streams: Arc::new(events::StreamCounter::default()),
            volumes: std::sync::OnceLock::new(),
        }
    }

    /// Offers the volumes page, acting through the persistent disk service.
    pub fn set_volumes(&self, service: Arc<dyn VolumeActions>) {
        let _ = self.volumes.set(service);
    }

    /// Answers one request to a dashboard path.
    pub async fn serve<B>(
        &self,
        door: Door<'_>,
        core: &Arc<Core>,
        req: Request<B>,
    ) -> Response<DashboardBody>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        if let Some(name) = path.strip_prefix("/dashboard/static/") {
            return static_asset(name, parts.uri.query());
        }
        if path == "/dashboard" {
            return finish(Reply::Redirect("/dashboard/".into()), None, Vec::new());
        }
        let query = Form::parse(parts.uri.query().unwrap_or(""));
        // Bodies are read only for posts (forms are small); anything else is dropped unread.
        let form = if parts.method == Method::POST {
            match read_form(&parts, body).await {
                Ok(f) => f,
                Err(page) => return finish(Reply::Page(page), None, Vec::new()),
            }
        } else {
            drop(body);
            Form::default()
        };
        let call = Call { parts, query, form };
        let mut cookies = Vec::new();
        if call.path() == "/dashboard/login" {
            let reply = signin::handle(self, &door, core, &call, &mut cookies).await;
            return finish(reply, None, cookies);
        }
        let viewer = match self.viewer(&door, core, &call).await {
            Ok(v) => v,
            Err(reply) => return finish(reply, None, cookies),
        };
        if call.is_post() {
            if let Err(page) = check_post(&call, &viewer) {
                return finish(Reply::Page(page), Some(&viewer), cookies);
            }
        }
        let reply = self.route(core, &call, &viewer, &mut cookies).await;
        finish(reply, Some(&viewer), cookies)
    }

    async fn route(
        &self,
        core: &Arc<Core>,
        call: &Call,
        viewer: &Viewer,
        cookies: &mut Vec<String>,
    ) -> Reply {
        let path = call.path();
        let segments: Vec<&str> = path
            .trim_start_matches("/dashboard/")
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let get = call.is_get();
        let post = call.is_post();
        match (segments.as_slice(), get, post) {
            ([], true, _) => overview::page(core, viewer, &self.usage).await,
            (["logout"], _, true) => signin::logout(self, viewer, cookies),
            (["events"], true, _) => self.events(core, viewer),
            (["vms"], true, _) => vms::list(core, viewer, &call.query),
            (["vms", id], true, _) => with_id(id, |id| vms::detail(core, viewer, id, &call.query)),
            (["vms", id, "action"], _, true) => match parse_id(id) {
                Some(id) => vms::action(core, viewer, id, &call.form).await,
                None => not_found(),
            },
            (["hosts"], true, _) => hosts::list(core, viewer, &call.query),
            (["hosts", id, "enable"], _, true) => match parse_id(id) {
                Some(id) => hosts::enable(core, viewer, id, &call.form).await,
                None => not_found(),
            },
            (["networks"], true, _) => networks::list(core, viewer),
            (["networks", id], true, _) => {
                with_id(id, |id| networks::detail(core, viewer, id, &call.query))
            }
            (["images"], true, _) => catalogue::images(core, viewer),
            (["templates"], true, _) => catalogue::templates(core, viewer),
            (["templates", id], true, _) => with_id(id, |id| catalogue::template(core, viewer, id)),
            (["volumes"], true, _) if self.volumes.get().is_some() => {
                Reply::Page(volumes::list(core, viewer, &call.query))
            }
            (["volumes", uuid, what @ ("delete" | "detach")], _, true) => {
                match self.volumes.get() {
                    Some(service) => {
                        volumes::action(core, service, viewer, uuid, what, &call.form).await
                    }
                    None => not_found(),
                }
            }
            (["users"], true, _) => accounts::users(core, viewer, &call.query),
            (["groups"], true, _) => accounts::groups(core, viewer),
            (_, false, false) => {
                let mut page = Page::new("Method not allowed", Section::None);
                page.status = StatusCode::METHOD_NOT_ALLOWED;
                page.body
                    .push_str("<h1>Method not allowed</h1><p>Pages are read with GET; actions are posted from their forms.</p>");
                Reply::Page(page)
            }
            _ => not_found(),
        }
    }

    /// Authenticates the request: HTTP Basic when it carries credentials, else the session
    /// cookie. Then the core authenticates the identity, as for an XML-RPC call.
    async fn viewer(
        &self,
        door: &Door<'_>,
        core: &Arc<Core>,
        call: &Call,
    ) -> Result<Viewer, Reply> {
        let (identity, csrf, via) = if let Some(h) = call.parts.headers.get(header::AUTHORIZATION) {
            let Some(credentials) = parse_authorization(h.as_bytes()) else {
                return Err(basic_refused(
                    StatusCode::UNAUTHORIZED,
                    "The Authorization header is not HTTP Basic.",
                ));
            };
            if !self.throttle.allows(door.peer.ip()) {
                return Err(basic_refused(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed sign-ins from your address; try again in a few minutes.",
                ));
            }
            match door.passwords.check(&credentials).await {
                BasicVerdict::Granted => {}
                BasicVerdict::NotInRole => {
                    return Err(basic_refused(
                        StatusCode::FORBIDDEN,
                        "Your account is not in the cloud-access role.",
                    ))
                }
                BasicVerdict::Refused => {
                    self.throttle.failed(door.peer.ip());
                    tracing::info!(peer = %door.peer, user = %credentials.user, "dashboard: refused: wrong user name or password");
                    return Err(basic_refused(
                        StatusCode::UNAUTHORIZED,
                        "Wrong user name or password.",
                    ));
                }
                BasicVerdict::Unavailable => {
                    return Err(basic_refused(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The directory that checks passwords cannot be reached; try again later.",
                    ))
                }
            }
            let csrf = self.basic_csrf(&credentials.user);
            (
                Identity::Password {
                    user: credentials.user,
                    password: credentials.password,
                },
                csrf,
                Via::Basic,
            )
        } else if let Some(session) = call
            .cookie(SESSION_COOKIE)
            .and_then(|token| self.sessions.get(token))
        {
            if let Identity::Certificate { dn } = &session.identity {
                // A certificate session lasts only as long as the browser presents the same
                // certificate and it still verifies (a CRL may have arrived).
                let still = match door.certs.map(|c| c.identify(door.peer_certificates)) {
                    Some(CertVerdict::Granted(Identity::Certificate { dn: now })) => &now == dn,
                    _ => false,
                };
                if !still {
                    self.sessions.remove(session.id);
                    return Err(to_sign_in(call, Some("Your certificate is no longer presented or no longer valid; sign in again.")));
                }
            }
            (session.identity, session.csrf, Via::Session(session.id))
        } else {
            return Err(to_sign_in(call, None));
        };
        let caller = match core.authenticate_async(&identity.session()).await {
            Ok(c) => c,
            Err(e) => {
                if let Via::Session(id) = via {
                    self.sessions.remove(id);
                }
                let mut page = Page::new("Not signed in", Section::None);
                page.status = StatusCode::FORBIDDEN;
                let _ = write!(
                    page.body,
                    "<h1>Not signed in</h1><p>The cloud refused your identity: {}</p>\
                     <p><a href=\"/dashboard/login\">Sign in again</a></p>",
                    Esc(&e.message())
                );
                return Err(Reply::Page(page));
            }
        };
        let sees_hosts = {
            let state = core.read();
            let any = crate::core::hosts::visible(&state, &caller)
                .next()
                .is_some();
            any || caller.is_privileged()
        };
        Ok(Viewer {
            display_name: viewer::display_name(&identity),
            caller,
            csrf,
            via,
            sees_hosts,
            volumes: self.volumes.get().is_some(),
        })
    }

    /// The CSRF token of a Basic caller: keyed by this process's secret and the user name.
    fn basic_csrf(&self, user: &str) -> String {
        use base64::Engine;
        let tag = ring::hmac::sign(&self.csrf_key, format!("basic-csrf\0{user}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..24])
    }

    fn events(&self, core: &Arc<Core>, viewer: &Viewer) -> Reply {
        let (owner, session) = match viewer.via {
            Via::Session(id) => (events::StreamOwner::Session(id), Some(id)),
            Via::Basic => (events::StreamOwner::User(viewer.caller.uid), None),
        };
        let max_connections = core.settings.connections.max_connections;
        let Some(slot) = self.streams.acquire(owner, max_connections) else {
            let mut page = Page::new("Too many event streams", Section::None);
            page.status = StatusCode::TOO_MANY_REQUESTS;
            page.body
                .push_str("<h1>Too many event streams</h1><p>Close other dashboard tabs.</p>");
            return Reply::Page(page);
        };
        Reply::Events(events::start(
            Arc::clone(core),
            viewer.caller.clone(),
            Arc::clone(&self.sessions),
            session,
            slot,
        ))
    }
}

fn parse_id(text: &str) -> Option<i32> {
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn with_id(text: &str, f: impl FnOnce(i32) -> Reply) -> Reply {
    match parse_id(text) {
        Some(id) => f(id),
        None => not_found(),
    }
}

pub(crate) fn not_found() -> Reply {
    let mut page = Page::new("Not found", Section::None);
    page.status = StatusCode::NOT_FOUND;
    page.body.push_str(
        "<h1>Not found</h1><p>There is no such page. <a href=\"/dashboard/\">Back to the overview</a>.</p>",
    );
    Reply::Page(page)
}

/// The HTTP status of a page that shows a refusal with oned's error `code`.
pub(crate) fn status_for(code: i32) -> StatusCode {
    match code {
        crate::core::error::CODE_AUTHENTICATION | crate::core::error::CODE_AUTHORIZATION => {
            StatusCode::FORBIDDEN
        }
        crate::core::error::CODE_NO_EXISTS => StatusCode::NOT_FOUND,
        _ => StatusCode::CONFLICT,
    }
}

/// A page that shows a refusal by the core: oned's message, as XML-RPC would answer it.
pub(crate) fn refused(title: &str, section: Section, message: &str, code: i32) -> Page {
    let mut page = Page::new(title, section);
    page.status = status_for(code);
    let _ = write!(page.body, "<h1>{}</h1>", Esc(title));
    page.notices.push(Notice::Error(message.to_string()));
    page
}

/// Where an unauthenticated request goes: pages to the sign-in form (and back after), the
/// rest gets 401.
fn to_sign_in(call: &Call, reason: Option<&str>) -> Reply {
    if call.is_get() && call.path() != "/dashboard/events" {
        let mut next = call.path().to_string();
        if let Some(q) = call.parts.uri.query() {
            next.push('?');
            next.push_str(q);
        }
        let mut url = html::Url::new("/dashboard/login");
        if next != "/dashboard/" {
            url = url.with("next", next);
        }
        if reason.is_some() {
            url = url.with("expired", "1");
        }
        return Reply::Redirect(url.raw());
    }
    let mut page = Page::new("Sign in first", Section::None);
    page.status = StatusCode::UNAUTHORIZED;
    let _ = write!(
        page.body,
        "<h1>Sign in first</h1><p>{}</p><p><a href=\"/dashboard/login\">Sign in</a></p>",
        Esc(reason.unwrap_or("Your session has ended."))
    );
    Reply::Page(page)
}

fn basic_refused(status: StatusCode, message: &str) -> Reply {
    let mut page = Page::new("Not signed in", Section::None);
    page.status = status;
    page.basic_challenge = status == StatusCode::UNAUTHORIZED;
    let _ = write!(page.body, "<h1>Not signed in</h1><p>{}</p>", Esc(message));
    Reply::Page(page)
}

/// Posts must come from a page of this origin and carry the viewer's CSRF token.
fn check_post(call: &Call, viewer: &Viewer) -> Result<(), Page> {
    let forbidden = |why: &str| {
        let mut page = Page::new("Refused", Section::None);
        page.status = StatusCode::FORBIDDEN;
        let _ = write!(page.body, "<h1>Refused</h1><p>{}</p>", Esc(why));
        page
    };
    if !same_origin(call) {
        return Err(forbidden("The form was not sent from this dashboard."));
    }
    match call.form.get("csrf") {
        Some(token) if sessions::same_secret(token, &viewer.csrf) => Ok(()),
        _ => Err(forbidden(
            "The form has expired or did not come from this dashboard; reload the page and try again.",
        )),
    }
}

/// `Origin` (when sent) names this server; `Sec-Fetch-Site` (when sent) is not cross-site.
fn same_origin(call: &Call) -> bool {
    if call.header(header::HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
        return false;
    }
    match call.header(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let host = call
                .header(header::HOST)
                .or_else(|| call.parts.uri.authority().map(|a| a.as_str()));
            host.is_some_and(|h| origin == format!("https://{h}"))
        }
    }
}

/// Reads a posted form, at most [`MAX_FORM_BYTES`] (the listener's own rate and limits apply
/// underneath).
async fn read_form<B>(parts: &Parts, body: B) -> Result<Form, Page>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let refuse = |status: StatusCode, why: &str| {
        let mut page = Page::new("Bad request", Section::None);
        page.status = status;
        let _ = write!(page.body, "<h1>Bad request</h1><p>{}</p>", Esc(why));
        page
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Forms are sent as application/x-www-form-urlencoded.",
        ));
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_FORM_BYTES as u64) {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is too large.",
        ));
    }
    match Limited::new(body, MAX_FORM_BYTES).collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            let text = String::from_utf8_lossy(&bytes);
            Ok(Form::parse(&text))
        }
        Err(_) => Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is too large.",
        )),
    }
}

/// The answer to a request whose declared body exceeds the listener's limit (not read).
pub fn too_large() -> Response<DashboardBody> {
    let mut page = Page::new("Too large", Section::None);
    page.status = StatusCode::PAYLOAD_TOO_LARGE;
    page.body
        .push_str("<h1>Too large</h1><p>The request is too large.</p>");
    finish(Reply::Page(page), None, Vec::new())
}

fn static_asset(name: &str, query: Option<&str>) -> Response<DashboardBody> {
    let Some(asset) = assets::find(name) else {
        let mut resp = Response::new(Either::Left(Full::new(Bytes::from_static(b"not found\n"))));
        *resp.status_mut() = StatusCode::NOT_FOUND;
        set(&mut resp, header::CONTENT_TYPE, "text/plain; charset=utf-8");
        set(&mut resp, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        return resp;
    };
    let (cache, status) = assets::cache_control(asset, query);
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from_static(asset.body))));
    *resp.status_mut() = status;
    set(&mut resp, header::CONTENT_TYPE, asset.content_type);
    set(&mut resp, header::CACHE_CONTROL, cache);
    set(&mut resp, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    resp
}

fn set(resp: &mut Response<DashboardBody>, name: header::HeaderName, value: &'static str) {
    resp.headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

/// The HTTP answer: the reply with the headers every dashboard answer carries.
fn finish(reply: Reply, viewer: Option<&Viewer>, cookies: Vec<String>) -> Response<DashboardBody> {
    let mut resp = match reply {
        Reply::Page(page) => {
            let mut resp = Response::new(Either::Left(Full::new(Bytes::from(page.render(viewer)))));
            *resp.status_mut() = page.status;
            set(&mut resp, header::CONTENT_TYPE, "text/html; charset=utf-8");
            if page.basic_challenge {
                // Scripts that sent wrong Basic credentials learn the realm, as on /pswd.
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "Basic realm=\"{}\"",
                    crate::frontdoor::PASSWORD_REALM
                )) {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            resp
        }
        Reply::Redirect(location) => {
            let mut resp = Response::new(Either::Left(Full::new(Bytes::new())));
            *resp.status_mut() = StatusCode::SEE_OTHER;
            // Locations are dashboard paths this module built; a value that is not a valid
            // header (it cannot be, but never inject one) falls back to the overview.
            let value = HeaderValue::from_str(&location)
                .ok()
                .filter(|_| location.starts_with("/dashboard/"))
                .unwrap_or(HeaderValue::from_static("/dashboard/"));
            resp.headers_mut().insert(header::LOCATION, value);
            resp
        }
        Reply::Events(stream) => {
            let mut resp = Response::new(Either::Right(stream));
            set(&mut resp, header::CONTENT_TYPE, "text/event-stream");
            resp
        }
    };
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    set(&mut resp, header::CACHE_CONTROL, "no-store");
    set(&mut resp, header::CONTENT_SECURITY_POLICY, CSP);
    set(&mut resp, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut resp, header::X_FRAME_OPTIONS, "DENY");
    set(&mut resp, header::REFERRER_POLICY, "same-origin");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_paths() {
        assert!(is_dashboard_path("/dashboard"));
        assert!(is_dashboard_path("/dashboard/"));
        assert!(is_dashboard_path("/dashboard/vms/3"));
        assert!(!is_dashboard_path("/dashboardx"));
        assert!(!is_dashboard_path("/pswd/xmlrpc"));
    }

    #[test]
    fn ids_are_plain_numbers() {
        assert_eq!(parse_id("42"), Some(42));
        for bad in ["", "-1", "+1", "1e3", "99999999999", "4 2", "0x1"] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static(
                "a=1; __Host-stratusd-session=tok; x__Host-stratusd-session=no",
            ),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "b"), None);
    }
}
