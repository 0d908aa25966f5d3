//! StratusLab's persistent disk service (pdisk) built into stratusd: its REST API over HTTPS
//! (`--pdisk-listen`, StratusLab's port 8445), with the front door's certificate and
//! authentication: HTTP Basic (password file, LDAP) under `/pswd/…`, client certificates and
//! proxies under `/cert/…`, and the same under `/pdisk/pswd/…`, `/pdisk/cert/…` (the 14.x
//! layout behind a proxy path). Resources as pdisk's (`StratusLab/storage: RootApplication`):
//!
//! | request | answer |
//! |---|---|
//! | `GET /disks/` | the caller's volumes (every volume for the super-user) |
//! | `POST /disks/` form `size`, `tag`, `visibility` [, `url`, `bytes`, `sha1`] | 201 `{"uuid"}` |
//! | `POST /disks/` multipart | a gzipped image becomes a read-only volume; 303 to it |
//! | `GET /disks/<uuid>` (`Accept: application/x-gzip`: the content, gzipped) | the volume |
//! | `PUT /disks/<uuid>` form | 204, properties changed |
//! | `POST /disks/<uuid>` | a copy-on-write snapshot of an origin, or the rebase of a snapshot |
//! | `DELETE /disks/<uuid>/` | `{"uuid"}`: into the quarantine |
//! | `GET`, `POST /disks/<uuid>/mounts/` form `node`, `vm_id` [, `register_only`] | mounts; hot-plug |
//! | `DELETE /disks/<uuid>/mounts/<uuid>_<vmid>` | hot-unplug |
//! | `GET /disks/<uuid>/turl/` | `{"uuid", "turl"}` |
//!
//! Trailing slashes are optional everywhere; errors are `{"message", "code"}` with the status.
//! The work is in [`service`]; this module is HTTP only.

pub mod json;
pub mod service;

pub use service::{Broker, VolumeService};

use crate::core::volumes::{VolumeError, VolumeForm, VolumeUser, RESOURCE_NOT_FOUND};
use crate::frontdoor::{authenticate, Door, FrontDoor, Peer};
use crate::server::guard::{self, Guard, RequestBody};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Frame;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

/// The body of every answer: a whole JSON text, or a download streaming from a thread.
pub type ApiBody = BoxBody<Bytes, std::io::Error>;

/// Largest form body (volume properties, mount requests).
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Downloads and uploads at once (each reads or writes a whole volume).
const HEAVY_AT_ONCE: usize = 2;
/// Download chunks in flight between the compressing thread and the connection.
const DOWNLOAD_CHUNKS: usize = 8;

pub struct PdiskServer {
    front: Arc<FrontDoor>,
    service: Arc<VolumeService>,
    heavy: Arc<Semaphore>,
    upload_max: u64,
}

impl PdiskServer {
    pub fn new(front: Arc<FrontDoor>, service: Arc<VolumeService>, upload_max: u64) -> Self {
        PdiskServer {
            front,
            service,
            heavy: Arc::new(Semaphore::new(HEAVY_AT_ONCE)),
            upload_max,
        }
    }
}

/// The limits of the service's listener: the daemon's, with room for image uploads (which
/// stream to disk and never take the body memory budget).
pub fn limits(settings: &crate::config::Settings) -> guard::Limits {
    let mut limits = guard::Limits::for_listener(settings);
    limits.max_body_bytes = settings
        .volumes
        .upload_max_bytes
        .max(MAX_FORM_BYTES as u64)
        // Multipart framing around the largest image.
        .saturating_add(64 * 1024);
    limits
}

struct PdiskHandler {
    server: Arc<PdiskServer>,
}

impl guard::Handler<Peer> for PdiskHandler {
    type Body = ApiBody;

    async fn call(
        self: Arc<Self>,
        peer: Arc<Peer>,
        req: Request<RequestBody>,
    ) -> Response<ApiBody> {
        handle(Arc::clone(&self.server), peer, req).await
    }

    fn too_large(&self, _req: &hyper::http::request::Parts, limit: u64) -> Response<ApiBody> {
        error(
            413,
            &format!("the request body is larger than {limit} bytes"),
        )
    }
}

/// How large an upload may be once gunzipped: 64 times the upload limit (Marketplace images
/// compress 2 to 10 times; a gzip of zeros, 1,000 times), and never more than the largest volume.
pub fn expanded_limit(upload_max: u64) -> u64 {
    upload_max
        .saturating_mul(64)
        .min(crate::model::volume::SIZE_MAX_GIB * crate::storage::volumes::GIB)
}

/// Serves the REST API on `listener` through `guard` (the front door's TLS transport) until
/// `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    server: Arc<PdiskServer>,
    guard: Guard,
    shutdown: watch::Receiver<bool>,
) {
    let transport = server.front.transport();
    guard
        .serve(listener, transport, PdiskHandler { server }, shutdown)
        .await
}

/// Where new volumes go, from the settings; an LVM back end needs its volume group.
pub fn backend_from_settings(
    settings: &crate::config::Settings,
) -> Result<crate::storage::volumes::VolumeBackend, String> {
    use crate::config::VolumeBackendKind;
    use crate::storage::volumes::{BackendKind, VolumeBackend};
    let v = &settings.volumes;
    let dir = settings.volume_dir();
    let kind = match v.backend {
        VolumeBackendKind::Files => {
            if v.format != "raw" && v.format != "qcow2" {
                return Err(format!("volume format {:?}: raw or qcow2 only", v.format));
            }
            BackendKind::Files {
                dir: dir.clone(),
                format: v.format.clone(),
            }
        }
        VolumeBackendKind::Lvm => {
            let Some(vg) = v.volume_group.clone().filter(|g| !g.is_empty()) else {
                return Err("the lvm back end needs --volume-group".into());
            };
            // The name reaches the LVM tools and /dev paths: LVM's own character set only.
            let valid = vg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+_.-".contains(&b))
                && !vg.starts_with('-')
                && vg != "."
                && vg != "..";
            if !valid {
                return Err(format!("volume group name {vg:?} is not a valid LVM name"));
            }
            BackendKind::Lvm { vg }
        }
    };
    Ok(VolumeBackend::new(kind, dir))
}

/// Removes volumes whose quarantine is over (`volume_quarantine_period`), as StratusLab's
/// `stratus-storage-quarantine --clean` cron job did every 5 minutes.
pub fn spawn_purge(service: Arc<VolumeService>) {
    let period = service.core.settings.storage.volume_quarantine_period;
    let every = std::time::Duration::from_secs_f64((period / 4.0).clamp(1.0, 300.0));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let s = Arc::clone(&service);
            match tokio::task::spawn_blocking(move || s.purge(crate::model::now())).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(volumes = n, "quarantined volumes purged"),
                Err(e) => tracing::error!(error = %e, "volume purge panicked"),
            }
        }
    });
}

/// A resource of the API, after the door.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resource {
    Home,
    Disks,
    Disk(String),
    Mounts(String),
    Mount(String, String),
    Turl(String),
    Unknown,
}

/// The door, the path prefix up to and including it (for redirects), and the resource.
fn route(path: &str) -> Option<(Door, String, Resource)> {
    let (base, rest) = match path.strip_prefix("/pdisk") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => ("/pdisk", rest),
        _ => ("", path),
    };
    let (door, rest) = if let Some(r) = rest.strip_prefix("/pswd") {
        (Door::Password, r)
    } else if let Some(r) = rest.strip_prefix("/cert") {
        (Door::Certificate, r)
    } else {
        return None;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let prefix = format!(
        "{base}{}",
        if door == Door::Password {
            "/pswd"
        } else {
            "/cert"
        }
    );
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let resource = match parts.as_slice() {
        [] => Resource::Home,
        ["disks"] => Resource::Disks,
        ["disks", uuid] => Resource::Disk(uuid.to_string()),
        ["disks", uuid, "mounts"] => Resource::Mounts(uuid.to_string()),
        ["disks", uuid, "mounts", id] => Resource::Mount(uuid.to_string(), id.to_string()),
        ["disks", uuid, "turl"] => Resource::Turl(uuid.to_string()),
        _ => Resource::Unknown,
    };
    Some((door, prefix, resource))
}

fn full(status: StatusCode, content_type: &str, body: String) -> Response<ApiBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

fn json(status: StatusCode, body: String) -> Response<ApiBody> {
    full(status, "application/json; charset=UTF-8", body)
}

fn error(status: u16, message: &str) -> Response<ApiBody> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, json::error(message, status.as_u16()))
}

fn refused(e: VolumeError) -> Response<ApiBody> {
    if e.status() >= 500 {
        tracing::warn!(error = %e, "volume request failed");
    }
    error(e.status(), &e.to_string())
}

fn method_not_allowed() -> Response<ApiBody> {
    error(405, "Method Not Allowed")
}

/// `application/x-www-form-urlencoded`: `+` is a space, `%XX` a byte; invalid UTF-8 is kept
/// lossily (it can only make a value no rule accepts).
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(text: &[u8]) -> String {
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < text.len() => {
                    let hex = std::str::from_utf8(&text[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (decode(&pair[..eq]), decode(&pair[eq + 1..])),
            None => (decode(pair), String::new()),
        })
        .collect()
}

async fn read_form(body: RequestBody) -> Result<Vec<(String, String)>, Response<ApiBody>> {
    match Limited::new(body, MAX_FORM_BYTES).collect().await {
        Ok(collected) => Ok(parse_form(&collected.to_bytes())),
        Err(_) => Err(error(
            413,
            &format!("request body larger than {MAX_FORM_BYTES} bytes"),
        )),
    }
}

fn header(headers: &HeaderMap, name: hyper::header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Runs a blocking service call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VolumeError> + Send + 'static,
) -> Result<T, VolumeError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(VolumeError::Internal(format!(
            "request handler failed: {e}"
        ))),
    }
}

async fn handle(
    server: Arc<PdiskServer>,
    peer: Arc<Peer>,
    req: Request<RequestBody>,
) -> Response<ApiBody> {
    let path = req.uri().path().to_string();
    let Some((door, prefix, resource)) = route(&path) else {
        crate::frontdoor::discard_small_body(req.into_body()).await;
        if path == "/" || path == "/pdisk" || path == "/pdisk/" {
            return json(
                StatusCode::OK,
                "{\n  \"service\" : \"stratusd persistent disk service\"\n}".into(),
            );
        }
        return error(404, RESOURCE_NOT_FOUND);
    };
    // Authentication first: strangers cannot make the service read a body.
    let identity = match authenticate(&server.front, door, &peer, &req).await {
        Ok(identity) => identity,
        Err(answer) => {
            crate::frontdoor::discard_small_body(req.into_body()).await;
            return answer.map(|b| b.map_err(|never| match never {}).boxed());
        }
    };
    let who = VolumeUser::new(&identity.user_name());
    let method = req.method().clone();
    tracing::debug!(peer = %peer.addr, user = %who.name, %method, %path, "volume request");
    let svc = Arc::clone(&server.service);
    match (resource, method) {
        (Resource::Home, Method::GET | Method::HEAD) => json(
            StatusCode::OK,
            format!(
                "{{\n  \"service\" : \"stratusd persistent disk service\",\n  \"username\" : {}\n}}",
                serde_json::Value::String(who.name.clone())
            ),
        ),
        (Resource::Disks, Method::GET | Method::HEAD) => {
            json(StatusCode::OK, json::disks(&svc.core.volumes_of(&who)))
        }
        (Resource::Disks, Method::POST) => {
            let content_type = header(req.headers(), hyper::header::CONTENT_TYPE).to_string();
            if content_type.starts_with("multipart/form-data") {
                return upload(&server, who, &prefix, &content_type, req.into_body()).await;
            }
            let form = match read_form(req.into_body()).await {
                Ok(f) => f,
                Err(answer) => return answer,
            };
            let result = blocking(move || {
                let form = VolumeForm::parse(&form)?;
                svc.create(&who, &form)
            })
            .await;
            match result {
                Ok(v) => json(StatusCode::CREATED, json::key_value("uuid", &v.uuid)),
                Err(e) => refused(e),
            }
        }
        (Resource::Disk(uuid), Method::GET | Method::HEAD) => {
            let gzip = req.method() == Method::GET
                && header(req.headers(), hyper::header::ACCEPT).contains("gzip");
            if gzip {
                return download(&server, who, uuid).await;
            }
            match svc
                .core
                .volume_view(&who, &uuid, &|u| format!("disk ({u}) does not exist"))
            {
                Ok((v, count)) => json(StatusCode::OK, json::disk(&v, count)),
                Err(e) => refused(e),
            }
        }
        (Resource::Disk(uuid), Method::PUT) => {
            let body = match read_form(req.into_body()).await {
                Ok(f) => f,
                Err(answer) => return answer,
            };
            if body.is_empty() {
                return error(400, "post with null entity");
            }
            let result = blocking(move || {
                let form = VolumeForm::parse(&body)?;
                svc.core.volume_update(&who, &uuid, &form)
            })
            .await;
            match result {
                Ok(_) => {
                    let mut resp = full(StatusCode::NO_CONTENT, "application/json", String::new());
                    resp.headers_mut().remove(hyper::header::CONTENT_TYPE);
                    resp
                }
                Err(e) => refused(e),
            }
        }
        (Resource::Disk(uuid), Method::POST) => {
            crate::frontdoor::discard_small_body(req.into_body()).await;
            match blocking(move || svc.copy(&who, &uuid)).await {
                Ok(v) => json(StatusCode::OK, json::disk(&v, 0)),
                Err(e) => refused(e),
            }
        }
        (Resource::Disk(uuid), Method::DELETE) => {
            crate::frontdoor::discard_small_body(req.into_body()).await;
            let id = uuid.clone();
            match blocking(move || svc.delete(&who, &id)).await {
                Ok(()) => json(StatusCode::OK, json::key_value("uuid", &uuid)),
                Err(e) => refused(e),
            }
        }
        (Resource::Mounts(uuid), Method::GET | Method::HEAD) => {
            match svc.core.volume_mounts(&who, &uuid) {
                Ok(mounts) => json(StatusCode::OK, json::mounts(&mounts)),
                Err(e) => refused(e),
            }
        }
        (Resource::Mounts(uuid), Method::POST) => {
            let form = match read_form(req.into_body()).await {
                Ok(f) => f,
                Err(answer) => return answer,
            };
            if form.is_empty() {
                return error(400, "post with null entity");
            }
            let get = |k: &str| {
                form.iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty())
            };
            let Some(node) = get("node") else {
                return error(400, "missing node attribute");
            };
            let Some(vm_text) = get("vm_id") else {
                return error(400, "missing vm_id attribute");
            };
            let Ok(vm_id) = vm_text.trim().parse::<i32>() else {
                return error(404, &format!("VM {vm_text} does not exist"));
            };
            let register_only = get("register_only").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let id = uuid.clone();
            let node_name = node.clone();
            match blocking(move || svc.attach(&who, &id, vm_id, &node_name, register_only)).await {
                Ok((target, _)) => json(
                    StatusCode::OK,
                    json::action(&node, &vm_id.to_string(), &target, &uuid),
                ),
                Err(e) => refused(e),
            }
        }
        (Resource::Mount(uuid, mount_id), Method::GET | Method::HEAD) => {
            match svc.core.volume_mounts(&who, &uuid) {
                Ok(mounts) => match mounts.iter().find(|m| m.id(&uuid) == mount_id) {
                    Some(m) => json(
                        StatusCode::OK,
                        json::mount(&uuid, &mount_id, &m.vm_id.to_string(), &m.device),
                    ),
                    None => error(404, RESOURCE_NOT_FOUND),
                },
                Err(e) => refused(e),
            }
        }
        (Resource::Mount(uuid, mount_id), Method::DELETE) => {
            crate::frontdoor::discard_small_body(req.into_body()).await;
            let (id, mid) = (uuid.clone(), mount_id.clone());
            match blocking(move || svc.detach(&who, &id, &mid)).await {
                Ok((m, _)) => json(
                    StatusCode::OK,
                    json::mount(&uuid, &mount_id, &m.vm_id.to_string(), &m.device),
                ),
                Err(e) => refused(e),
            }
        }
        (Resource::Turl(uuid), Method::GET | Method::HEAD) => {
            match svc
                .core
                .volume_view(&who, &uuid, &|u| format!("Unknown disk: {u}"))
            {
                Ok((v, _)) => json(StatusCode::OK, json::turl(&uuid, &v.backing.turl())),
                Err(e) => refused(e),
            }
        }
        (Resource::Unknown, _) => {
            crate::frontdoor::discard_small_body(req.into_body()).await;
            error(404, RESOURCE_NOT_FOUND)
        }
        (_, _) => {
            crate::frontdoor::discard_small_body(req.into_body()).await;
            method_not_allowed()
        }
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type, quoted or not (Python
/// 2's `mimetools.choose_boundary` makes dotted ones, `email` ones with `=`, which a strict
/// MIME parser refuses unquoted).
fn multipart_boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        (!value.is_empty() && value.len() <= 200).then(|| value.to_string())
    })
}

/// A body fed by a thread through a bounded channel.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}

/// Writes into the channel of a [`ChannelBody`]; fails once the client has gone.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /disks/<uuid>` with `Accept: application/x-gzip`: the volume's content, gzipped as it
/// streams (nothing is kept compressed on disk).
async fn download(server: &Arc<PdiskServer>, who: VolumeUser, uuid: String) -> Response<ApiBody> {
    // Waits for a turn rather than refuse: pdisk made its clients wait too.
    let permit = match Arc::clone(&server.heavy).acquire_owned().await {
        Ok(p) => p,
        Err(_) => return error(503, "the service is stopping"),
    };
    let svc = Arc::clone(&server.service);
    let staged = match blocking(move || svc.export(&who, &uuid)).await {
        Ok(path) => path,
        Err(e) => return refused(e),
    };
    let (tx, rx) = mpsc::channel(DOWNLOAD_CHUNKS);
    let job = move || {
        let _permit = permit;
        let result = std::fs::File::open(&staged).and_then(|mut f| {
            let writer =
                std::io::BufWriter::with_capacity(256 * 1024, ChannelWriter { tx: tx.clone() });
            let mut gz = flate2::write::GzEncoder::new(writer, flate2::Compression::fast());
            std::io::copy(&mut f, &mut gz)?;
            let mut writer = gz.finish()?;
            std::io::Write::flush(&mut writer)
        });
        let _ = std::fs::remove_file(&staged);
        if let Err(e) = result {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::warn!(error = %e, "volume download failed");
                let _ = tx.blocking_send(Err(e));
            }
        }
    };
    // The permit is moved into the job; it is given back when the download ends.
    tokio::task::spawn_blocking(job);
    let mut resp = Response::new(ChannelBody { rx }.boxed());
    let headers = resp.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-gzip"),
    );
    headers.insert(
        hyper::header::CONTENT_DISPOSITION,
        hyper::header::HeaderValue::from_static("attachment"),
    );
    resp
}

/// `POST /disks/` multipart: the (last) file field, a gzipped image, is staged (at most
/// `upload_max` bytes), then made into a volume; 303 to the new volume, as pdisk answered.
async fn upload(
    server: &Arc<PdiskServer>,
    who: VolumeUser,
    prefix: &str,
    content_type: &str,
    body: RequestBody,
) -> Response<ApiBody> {
    use tokio::io::AsyncWriteExt;
    let Some(boundary) = multipart_boundary(content_type) else {
        return error(400, "post with null entity");
    };
    let _permit = match server.heavy.acquire().await {
        Ok(p) => p,
        Err(_) => return error(503, "the service is stopping"),
    };
    let staged = match server.service.backend.staging_file("upload") {
        Ok(p) => p,
        Err(e) => return refused(VolumeError::Internal(e.to_string())),
    };
    let mut multipart = multer::Multipart::new(body.into_data_stream(), boundary);
    let mut got_file = false;
    let outcome: Result<(), Response<ApiBody>> = async {
        let mut file = tokio::fs::File::create(&staged).await.map_err(|e| {
            refused(VolumeError::Internal(format!(
                "cannot stage the upload: {e}"
            )))
        })?;
        let mut written: u64 = 0;
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(error(400, &e.to_string())),
            };
            let is_file = field.file_name().is_some();
            let mut field = field;
            if is_file {
                // pdisk kept the last file field.
                file.set_len(0)
                    .await
                    .map_err(|e| refused(VolumeError::Internal(e.to_string())))?;
                file = tokio::fs::File::create(&staged).await.map_err(|e| {
                    refused(VolumeError::Internal(format!(
                        "cannot stage the upload: {e}"
                    )))
                })?;
                written = 0;
                got_file = true;
            }
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if !is_file {
                            continue;
                        }
                        written += chunk.len() as u64;
                        if written > server.upload_max {
                            return Err(error(
                                413,
                                &format!(
                                    "the uploaded image is larger than {} bytes",
                                    server.upload_max
                                ),
                            ));
                        }
                        file.write_all(&chunk)
                            .await
                            .map_err(|e| refused(VolumeError::Internal(e.to_string())))?;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(error(400, &e.to_string())),
                }
            }
        }
        file.flush()
            .await
            .map_err(|e| refused(VolumeError::Internal(e.to_string())))?;
        Ok(())
    }
    .await;
    if let Err(answer) = outcome {
        let _ = std::fs::remove_file(&staged);
        return answer;
    }
    if !got_file {
        let _ = std::fs::remove_file(&staged);
        return error(400, "empty file uploaded");
    }
    let svc = Arc::clone(&server.service);
    let max_expanded = expanded_limit(server.upload_max);
    match blocking(move || svc.upload(&who, &staged, max_expanded)).await {
        Ok(v) => {
            let mut resp = full(StatusCode::SEE_OTHER, "text/plain", String::new());
            if let Ok(location) = format!("{prefix}/disks/{}", v.uuid).parse() {
                resp.headers_mut().insert(hyper::header::LOCATION, location);
            }
            resp
        }
        Err(e) => refused(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_of_both_layouts() {
        let u = "48ac4190-9a11-4a06-8bef-03fd97080eba";
        assert_eq!(
            route("/pswd/disks/"),
            Some((Door::Password, "/pswd".into(), Resource::Disks))
        );
        assert_eq!(
            route("/pdisk/cert/disks"),
            Some((Door::Certificate, "/pdisk/cert".into(), Resource::Disks))
        );
        assert_eq!(
            route(&format!("/pdisk/pswd/disks/{u}/")).map(|r| r.2),
            Some(Resource::Disk(u.into()))
        );
        assert_eq!(
            route(&format!("/pswd/disks/{u}/mounts/{u}_5")).map(|r| r.2),
            Some(Resource::Mount(u.into(), format!("{u}_5")))
        );
        assert_eq!(
            route(&format!("/pswd/disks/{u}/turl/")).map(|r| r.2),
            Some(Resource::Turl(u.into()))
        );
        assert_eq!(
            route(&format!("/pswd/disks/{u}/mounts")).map(|r| r.2),
            Some(Resource::Mounts(u.into()))
        );
        assert_eq!(route("/pswd").map(|r| r.2), Some(Resource::Home));
        assert_eq!(route("/pswd/xmlrpc").map(|r| r.2), Some(Resource::Unknown));
        assert_eq!(route("/pswdx/disks"), None);
        assert_eq!(route("/pdiskx/pswd/disks"), None);
        assert_eq!(route("/disks/"), None);
        assert_eq!(route("/"), None);
    }

    #[test]
    fn multipart_boundaries() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=7f000001.4f3c.1.2.3").as_deref(),
            Some("7f000001.4f3c.1.2.3")
        );
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary====x==").as_deref(),
            Some("===x==")
        );
        assert_eq!(
            multipart_boundary("multipart/form-data; charset=x; Boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(multipart_boundary("multipart/form-data"), None);
        assert_eq!(multipart_boundary("multipart/form-data; boundary="), None);
    }

    #[test]
    fn forms_decode() {
        assert_eq!(
            parse_form(b"size=10&tag=a+b%26c%3D&visibility=public&x"),
            vec![
                ("size".to_string(), "10".to_string()),
                ("tag".to_string(), "a b&c=".to_string()),
                ("visibility".to_string(), "public".to_string()),
                ("x".to_string(), String::new()),
            ]
        );
        assert_eq!(
            parse_form(b"tag=%3Cx%3E%22%27%ZZ%4"),
            vec![("tag".to_string(), "<x>\"'%ZZ%4".to_string())]
        );
        assert!(parse_form(b"").is_empty());
    }
}
