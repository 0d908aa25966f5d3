//! The StratusLab front door: the HTTPS endpoints one-proxy served in front of oned, built into
//! the daemon (stratuslab-client.md §1.2 option 2, xmlrpc-api.md §9.5).
//!
//! * `POST /pswd/xmlrpc`, `/one-proxy/pswd/xmlrpc`: HTTP Basic, checked against one-proxy's
//!   password file and/or an LDAP directory;
//! * `POST /cert/xmlrpc`, `/one-proxy/cert/xmlrpc`: a TLS client certificate (grid CAs,
//!   RFC 3820 and legacy proxies), optionally restricted by one-proxy's allowed-DN list.
//!
//! Only identities in the `cloud-access` role get in. The call then runs through the same
//! XML-RPC engine as `/RPC2`, with the session string one-proxy would have forwarded
//! ([`session::Identity::session`]) in place of the one the client sent.

pub mod allowed_dn;
pub mod basic;
pub mod cert;
pub mod chain;
pub mod dn;
pub mod ldap;
pub mod password_file;
pub mod reloading;
pub mod session;
pub mod tls;
pub mod trust_store;
pub mod verifier;

use crate::config::FrontDoorSettings;
use crate::core::Core;
use crate::server::guard::{self, Guard, Limits, RequestBody};
use crate::server::{read_call_body, respond, respond_answer, too_large_fault, CallResponse};
use basic::{parse_authorization, BasicCredentials, BasicVerdict, PasswordAuthority};
use bytes::Bytes;
use cert::{CertAuthority, CertVerdict};
use http_body_util::{Either, Full};
use hyper::{Method, Request, Response, StatusCode};
use rustls::pki_types::CertificateDer;
use session::Identity;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The role one-proxy's web application required (`<auth-constraint>` of its web.xml).
pub const CLOUD_ACCESS_ROLE: &str = "cloud-access";
/// The realm of one-proxy's `/pswd` context, named in the Basic challenge.
pub const PASSWORD_REALM: &str = "StratusLab Password Realm";

/// A connection may wait this long for its next request (counted from the end of the TLS
/// handshake or of the previous answer) unless `idle_timeout` says otherwise.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Request line and headers must fit in this buffer, or hyper answers 431. XML-RPC requests
/// carry a handful of short headers; Jetty's default limit was 8 KiB. The body streams
/// through the buffer and is limited separately (`max_body_bytes`).
const MAX_HEADER_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// The most of a refused request's body read (and dropped) to keep its connection open.
const REFUSED_BODY_DRAIN: usize = 64 * 1024;
/// How often edited password and allowed-DN files are looked for.
const FILE_RECHECK: Duration = Duration::from_secs(1);
/// How often the CA directory is looked at for new CRLs or CAs.
const CA_DIR_RECHECK: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum FrontDoorError {
    #[error("the front door needs a server certificate and key (--tls-cert, --tls-key)")]
    MissingTls,
    #[error("--allowed-dn-file needs --ca-dir")]
    AllowedDnWithoutCaDir,
    #[error("--ldap-url and --ldap-user-dn must be given together")]
    LdapIncomplete,
    #[error("--ldap-group-dn needs --ldap-url and --ldap-user-dn")]
    LdapGroupWithoutLdap,
    #[error("--frontdoor-idle-timeout must be a positive number of seconds, not {0}")]
    BadIdleTimeout(f64),
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
    #[error(transparent)]
    Ldap(#[from] ldap::LdapConfigError),
    #[error(transparent)]
    TrustStore(#[from] trust_store::TrustStoreError),
    #[error("{0}")]
    File(String),
}

/// Which of one-proxy's two web applications a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Password,
    Certificate,
}

fn door_of(path: &str) -> Option<Door> {
    match path {
        "/pswd/xmlrpc" | "/one-proxy/pswd/xmlrpc" => Some(Door::Password),
        "/cert/xmlrpc" | "/one-proxy/cert/xmlrpc" => Some(Door::Certificate),
        _ => None,
    }
}

/// Everything a request needs, built once at start-up: the TLS set-up and the authorities
/// of both doors. The front door's listener and the persistent disk service share one.
pub struct FrontDoor {
    listen: Option<SocketAddr>,
    acceptor: TlsAcceptor,
    passwords: PasswordAuthority,
    certs: Option<CertAuthority>,
    idle_timeout: Duration,
    dashboard: crate::dashboard::Dashboard,
}

impl FrontDoor {
    /// The front door the settings describe; `None` when no listen address is configured.
    pub fn from_settings(s: &FrontDoorSettings) -> Result<Option<FrontDoor>, FrontDoorError> {
        if s.listen.is_none() {
            return Ok(None);
        }
        Self::build(s).map(Some)
    }

    /// The TLS set-up and the authorities the settings describe, whether or not the front
    /// door itself listens (the persistent disk service uses them too).
    pub fn build(s: &FrontDoorSettings) -> Result<FrontDoor, FrontDoorError> {
        let listen = s.listen;
        let (Some(cert_file), Some(key_file)) = (&s.tls_cert, &s.tls_key) else {
            return Err(FrontDoorError::MissingTls);
        };
        if s.allowed_dn_file.is_some() && s.ca_dir.is_none() {
            return Err(FrontDoorError::AllowedDnWithoutCaDir);
        }
        let idle_timeout = match s.idle_timeout {
            None => DEFAULT_IDLE_TIMEOUT,
            Some(secs) => Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or(FrontDoorError::BadIdleTimeout(secs))?,
        };
        let ldap = match (&s.ldap_url, &s.ldap_user_dn) {
            (Some(url), Some(template)) => Some(ldap::LdapDirectory::new(
                url,
                template,
                s.ldap_group_dn.as_deref(),
            )?),
            (None, None) if s.ldap_group_dn.is_some() => {
                return Err(FrontDoorError::LdapGroupWithoutLdap)
            }
            (None, None) => None,
            _ => return Err(FrontDoorError::LdapIncomplete),
        };
        if ldap.is_some() && s.ldap_group_dn.is_none() {
            tracing::warn!(
                "no --ldap-group-dn: every user who can bind to the directory is in cloud-access"
            );
        }
        let password_file = match &s.password_file {
            Some(path) => Some(
                reloading::Reloading::open(
                    path,
                    |p| password_file::PasswordFile::load(p).map_err(|e| e.to_string()),
                    FILE_RECHECK,
                )
                .map_err(FrontDoorError::File)?,
            ),
            None => None,
        };
        let cas = match &s.ca_dir {
            Some(dir) => Some(Arc::new(trust_store::CaDirectory::open(
                dir,
                CA_DIR_RECHECK,
            )?)),
            None => None,
        };
        let certs = match &cas {
            Some(cas) => {
                let allowed = match &s.allowed_dn_file {
                    Some(path) => Some(
                        reloading::Reloading::open(
                            path,
                            |p| allowed_dn::AllowedDns::load(p).map_err(|e| e.to_string()),
                            FILE_RECHECK,
                        )
                        .map_err(FrontDoorError::File)?,
                    ),
                    None => {
                        tracing::warn!("no --allowed-dn-file: every certificate the CA directory vouches for is in cloud-access");
                        None
                    }
                };
                Some(CertAuthority::new(Arc::clone(cas), allowed))
            }
            None => None,
        };
        let passwords = PasswordAuthority::new(password_file, ldap);
        if !passwords.is_configured() && certs.is_none() {
            tracing::warn!("the front door has no password file, LDAP directory or CA directory: it refuses everybody");
        }
        let config = tls::server_config(cert_file, key_file, cas)?;
        Ok(FrontDoor {
            listen,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            passwords,
            certs,
            idle_timeout,
            dashboard: crate::dashboard::Dashboard::new(),
        })
    }

    /// The dashboard it serves (the daemon gives it the persistent disk service).
    pub fn dashboard(&self) -> &crate::dashboard::Dashboard {
        &self.dashboard
    }

    /// Where the front door listens; `None` when only the persistent disk service uses it.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// The TLS transport of a guarded listener (the client's certificate chain kept for
    /// `/cert`).
    pub fn transport(&self) -> TlsTransport {
        TlsTransport {
            acceptor: self.acceptor.clone(),
        }
    }

    /// The guard of the front door's listener: the daemon's `limits` with the front door's
    /// idle timeout and Jetty-sized header limits.
    pub fn guard(&self, mut limits: Limits) -> Guard {
        limits.idle_timeout = self.idle_timeout;
        limits.max_header_bytes = MAX_HEADER_BYTES;
        limits.max_headers = MAX_HEADERS;
        Guard::new("frontdoor", limits)
    }
}

/// One-proxy's (Jetty's) answer page for an HTTP error.
pub(crate) fn error_page(status: StatusCode, path: &str) -> Response<Full<Bytes>> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let path = path.replace('&', "&amp;").replace('<', "&lt;");
    respond(
        status,
        "text/html; charset=iso-8859-1",
        format!(
            "<html>\n<head>\n<title>Error {code} {reason}</title>\n</head>\n<body>\n\
             <h2>HTTP ERROR: {code}</h2>\n<p>Problem accessing {path}. Reason:\n\
             <pre>    {reason}</pre></p>\n</body>\n</html>\n"
        ),
    )
}

fn unauthorized(path: &str) -> Response<Full<Bytes>> {
    let mut resp = error_page(StatusCode::UNAUTHORIZED, path);
    if let Ok(v) = format!("Basic realm=\"{PASSWORD_REALM}\"").parse() {
        resp.headers_mut()
            .insert(hyper::header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// What one connection knows about its client.
pub struct Peer {
    pub addr: SocketAddr,
    certificates: Vec<CertificateDer<'static>>,
}

/// Authenticates the request at `door`; the identity, or the answer that refuses it.
pub async fn authenticate<B>(
    front: &FrontDoor,
    door: Door,
    peer: &Peer,
    req: &Request<B>,
) -> Result<Identity, Response<Full<Bytes>>> {
    let path = req.uri().path();
    match door {
        Door::Password => {
            let credentials: Option<BasicCredentials> = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|h| parse_authorization(h.as_bytes()));
            let Some(credentials) = credentials else {
                return Err(unauthorized(path));
            };
            match front.passwords.check(&credentials).await {
                BasicVerdict::Granted => Ok(Identity::Password {
                    user: credentials.user,
                    password: credentials.password,
                }),
                BasicVerdict::NotInRole => {
                    tracing::info!(peer = %peer.addr, user = %credentials.user, "refused: not in {CLOUD_ACCESS_ROLE}");
                    Err(error_page(StatusCode::FORBIDDEN, path))
                }
                BasicVerdict::Refused => {
                    tracing::info!(peer = %peer.addr, user = %credentials.user, "refused: wrong user name or password");
                    Err(unauthorized(path))
                }
                BasicVerdict::Unavailable => Err(error_page(StatusCode::SERVICE_UNAVAILABLE, path)),
            }
        }
        Door::Certificate => {
            let Some(certs) = &front.certs else {
                return Err(error_page(StatusCode::FORBIDDEN, path));
            };
            match certs.identify(&peer.certificates) {
                CertVerdict::Granted(identity) => Ok(identity),
                CertVerdict::NoCertificate => {
                    tracing::info!(peer = %peer.addr, "refused: no client certificate");
                    Err(error_page(StatusCode::FORBIDDEN, path))
                }
                CertVerdict::Refused(reason) => {
                    tracing::info!(peer = %peer.addr, "refused: {reason}");
                    Err(error_page(StatusCode::FORBIDDEN, path))
                }
                CertVerdict::NotInRole(dn) => {
                    tracing::info!(peer = %peer.addr, %dn, "refused: not in {CLOUD_ACCESS_ROLE}");
                    Err(error_page(StatusCode::FORBIDDEN, path))
                }
            }
        }
    }
}

/// Reads and drops a refused request's body when it is small, so that the keep-alive
/// connection stays usable (hyper closes a connection whose request body was left unread);
/// a larger one is left, and the connection closes after the answer.
pub(crate) async fn discard_small_body(body: RequestBody) {
    use http_body_util::BodyExt;
    let _ = http_body_util::Limited::new(body, REFUSED_BODY_DRAIN)
        .collect()
        .await;
}

async fn route(
    front: Arc<FrontDoor>,
    core: Arc<Core>,
    peer: Arc<Peer>,
    req: Request<RequestBody>,
) -> CallResponse {
    let path = req.uri().path().to_string();
    let Some(door) = door_of(&path) else {
        discard_small_body(req.into_body()).await;
        return error_page(StatusCode::NOT_FOUND, &path).map(Either::Left);
    };
    // Authentication comes before the body is read: strangers cannot make us buffer.
    let identity = match authenticate(&front, door, &peer, &req).await {
        Ok(identity) => identity,
        Err(answer) => {
            discard_small_body(req.into_body()).await;
            return answer.map(Either::Left);
        }
    };
    if req.method() != Method::POST {
        discard_small_body(req.into_body()).await;
        return error_page(StatusCode::METHOD_NOT_ALLOWED, &path).map(Either::Left);
    }
    let body = match read_call_body(req.into_body()).await {
        Ok(body) => body,
        Err(answer) => return answer.map(Either::Left),
    };
    tracing::debug!(peer = %peer.addr, "forwarding request from {}", identity.session_for_log());
    let answer =
        crate::server::answer_xmlrpc_as(core, body.bytes().clone(), identity.session()).await;
    drop(body);
    respond_answer(answer)
}

/// TLS, with the client's certificate chain kept for `/cert`.
pub struct TlsTransport {
    acceptor: TlsAcceptor,
}

impl guard::Transport for TlsTransport {
    type Io = TlsStream<TcpStream>;
    type Peer = Peer;

    async fn establish(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
    ) -> std::io::Result<(TlsStream<TcpStream>, Peer)> {
        let tls = self.acceptor.accept(stream).await?;
        let certificates = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        Ok((tls, Peer { addr, certificates }))
    }
}

struct FrontDoorHandler {
    front: Arc<FrontDoor>,
    core: Arc<Core>,
}

impl guard::Handler<Peer> for FrontDoorHandler {
    /// One-proxy's endpoints' answers, or the dashboard's.
    type Body =
        Either<Either<Full<Bytes>, crate::server::AnswerBody>, crate::dashboard::DashboardBody>;

    async fn call(
        self: Arc<Self>,
        peer: Arc<Peer>,
        req: Request<RequestBody>,
    ) -> Response<Self::Body> {
        let front = &self.front;
        if crate::dashboard::is_dashboard_path(req.uri().path()) {
            let door = crate::dashboard::Door {
                passwords: &front.passwords,
                certs: front.certs.as_ref(),
                peer: peer.addr,
                peer_certificates: &peer.certificates,
            };
            return front
                .dashboard
                .serve(door, &self.core, req)
                .await
                .map(Either::Right);
        }
        route(Arc::clone(front), Arc::clone(&self.core), peer, req)
            .await
            .map(Either::Left)
    }

    /// The fault the body would get at `/RPC2` (xmlrpclib reads a fault, not a 413 page).
    fn too_large(&self, req: &hyper::http::request::Parts, limit: u64) -> Response<Self::Body> {
        if crate::dashboard::is_dashboard_path(req.uri.path()) {
            return crate::dashboard::too_large().map(Either::Right);
        }
        too_large_fault(limit).map(Either::Left).map(Either::Left)
    }
}

/// Serves the front door on `listener` through `guard` (see [`FrontDoor::guard`]) until
/// `shutdown` turns true; then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    guard: Guard,
    front: Arc<FrontDoor>,
    core: Arc<Core>,
    shutdown: watch::Receiver<bool>,
) {
    let transport = TlsTransport {
        acceptor: front.acceptor.clone(),
    };
    guard
        .serve(
            listener,
            transport,
            FrontDoorHandler { front, core },
            shutdown,
        )
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_proxys_paths() {
        assert_eq!(door_of("/pswd/xmlrpc"), Some(Door::Password));
        assert_eq!(door_of("/one-proxy/pswd/xmlrpc"), Some(Door::Password));
        assert_eq!(door_of("/cert/xmlrpc"), Some(Door::Certificate));
        assert_eq!(door_of("/one-proxy/cert/xmlrpc"), Some(Door::Certificate));
        for p in ["/RPC2", "/xmlrpc", "/pswd/RPC2", "/cert/", "/pswd/xmlrpc/x"] {
            assert_eq!(door_of(p), None, "{p}");
        }
    }
}
