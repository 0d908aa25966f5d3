//! Persistent disks of StratusLab's pdisk service used as VM disks (hooks §3.4, §3.5, §8, §9):
//! the volume's type and user count are checked, the mount is registered with pdisk, the VM
//! directory's registration file `pdisk` lists the volume, and `images/disk.<i>` becomes a link
//! to the volume's device. At the end of the VM the volumes are unregistered, and a root volume
//! that is a snapshot is handed to pdisk's quarantine.
//!
//! Transports: `file://` volumes (pdisk's file backend) are linked directly; iSCSI and RBD
//! volumes need the node-side attach of `stratus-pdisk-client.py`, which stratusd does not do.

use super::{Result, StorageError};
use crate::config::PdiskSettings;
use crate::model::Oid;
use base64::Engine;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const ROOT_DISK_TYPE: &str = "MACHINE_IMAGE_LIVE";
pub const EXTRA_DISK_TYPES: [&str; 2] = ["DATA_IMAGE_RAW_READONLY", "DATA_IMAGE_RAW_READ_WRITE"];
/// pdisk's super-user, the owner of quarantined volumes.
pub const SUPERUSER: &str = "pdisk";

/// A volume as `GET /disks/<uuid>` describes it (pdisk sends every value as a string).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Volume {
    pub uuid: String,
    pub owner: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub count: String,
    pub identifier: String,
    pub visibility: String,
    /// GiB.
    pub size: String,
}

impl Volume {
    pub fn user_count(&self) -> u64 {
        self.count.trim().parse().unwrap_or(0)
    }

    /// The provisioned size (pdisk's `size`, GiB), `None` when pdisk did not say.
    pub fn size_bytes(&self) -> Option<u64> {
        let gib: u64 = self.size.trim().parse().ok()?;
        gib.checked_mul(1 << 30)
    }
}

#[derive(Debug, Deserialize)]
struct Turl {
    turl: String,
}

/// The UUID of a `pdisk:` SOURCE in any client spelling: the last `/`- or `:`-separated part.
pub fn uuid_of(source: &str) -> String {
    source
        .trim()
        .trim_start_matches("pdisk:")
        .rsplit(['/', ':'])
        .find(|c| !c.is_empty())
        .unwrap_or("")
        .to_string()
}

pub fn valid_uuid(uuid: &str) -> bool {
    uuid.len() == 36
        && uuid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// The one volume URI a `pdisk:` SOURCE may be: a UUID as its last part and no blank or control
/// character. The URI is written as one line of the registration file, whose first line is the
/// root volume handed to pdisk's quarantine at the end of the VM: a value spanning lines would
/// put someone else's volume there.
pub fn single_volume_uri(source: &str) -> Result<&str> {
    let uri = source.trim();
    if valid_uuid(&uuid_of(uri)) && !uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Ok(uri);
    }
    Err(StorageError::BadValue(format!(
        "Unable to attach persistent disk: {} does not name one pdisk volume",
        uri.escape_debug()
    )))
}

/// Checks a volume may be disk `index` of a VM of `owner` (hooks §3.4 step 3). stratusd also
/// refuses someone else's PRIVATE volume (the hook, acting as pdisk's super-user, did not).
pub fn check_volume(v: &Volume, index: usize, owner: &str, privileged: bool) -> Result<()> {
    let private = !v.visibility.eq_ignore_ascii_case("PUBLIC");
    if private && v.owner != owner && !privileged {
        return Err(StorageError::BadValue(format!(
            "User {owner} is not authorized to use persistent disk {}",
            v.uuid
        )));
    }
    if index == 0 {
        if v.kind != ROOT_DISK_TYPE {
            return Err(StorageError::BadValue(
                "Only a live persistent disk can be booted from.".into(),
            ));
        }
        if v.user_count() != 0 {
            return Err(StorageError::BadValue(
                "User count must be zero on the live disk to boot from.".into(),
            ));
        }
    } else if !EXTRA_DISK_TYPES.contains(&v.kind.as_str()) {
        return Err(StorageError::BadValue(format!(
            "Only {} type disks can be attached as extra disks",
            EXTRA_DISK_TYPES.join(", ")
        )));
    }
    Ok(())
}

/// pdisk's REST API as the hooks used it, with the super-user's password (`/pswd/...`).
pub struct PdiskClient {
    agent: ureq::Agent,
    base: String,
    authorization: String,
}

fn pdisk_error(what: &str, e: impl std::fmt::Display) -> StorageError {
    StorageError::BadValue(format!("pdisk: {what}: {e}"))
}

impl PdiskClient {
    /// `None` when the site has no pdisk service configured.
    pub fn new(settings: &PdiskSettings, timeout: Duration) -> Option<Self> {
        if settings.endpoint.trim().is_empty() {
            return None;
        }
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .http_status_as_error(false)
            .build();
        let credentials = format!("{}:{}", settings.username, settings.password);
        Some(PdiskClient {
            agent: config.into(),
            base: format!("{}/pswd/disks", settings.endpoint.trim_end_matches('/')),
            authorization: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(credentials)
            ),
        })
    }

    fn check(status: u16, body: String, what: &str) -> Result<String> {
        if (200..300).contains(&status) {
            return Ok(body);
        }
        // pdisk's errors: {"message": "...", "code": n}
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(body);
        Err(pdisk_error(what, format!("{message} (code {status})")))
    }

    fn get(&self, path: &str, what: &str) -> Result<String> {
        let mut resp = self
            .agent
            .get(format!("{}/{path}", self.base))
            .header("Authorization", &self.authorization)
            .header("Accept", "application/json")
            .call()
            .map_err(|e| pdisk_error(what, e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| pdisk_error(what, e))?;
        Self::check(status, body, what)
    }

    fn send(&self, method: &str, path: &str, form: &[(&str, &str)], what: &str) -> Result<()> {
        let url = format!("{}/{path}", self.base);
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = match method {
            "PUT" => self.agent.put(&url),
            _ => self.agent.post(&url),
        };
        let mut resp = request
            .header("Authorization", &self.authorization)
            .header("Accept", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(body.as_bytes())
            .map_err(|e| pdisk_error(what, e))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Self::check(status, text, what).map(|_| ())
    }

    pub fn volume(&self, uuid: &str) -> Result<Volume> {
        let body = self.get(&format!("{uuid}/"), "cannot read the volume")?;
        serde_json::from_str(&body).map_err(|e| pdisk_error("unreadable volume description", e))
    }

    pub fn turl(&self, uuid: &str) -> Result<String> {
        let body = self.get(
            &format!("{uuid}/turl/"),
            "cannot get the volume's transport",
        )?;
        serde_json::from_str::<Turl>(&body)
            .map(|t| t.turl)
            .map_err(|e| pdisk_error("unreadable transport URL", e))
    }

    pub fn mounts(&self, uuid: &str) -> Result<Vec<serde_json::Value>> {
        let body = self.get(
            &format!("{uuid}/mounts/"),
            "cannot list the volume's mounts",
        )?;
        serde_json::from_str(&body).map_err(|e| pdisk_error("unreadable mount list", e))
    }

    pub fn register_mount(&self, uuid: &str, node: &str, vid: Oid) -> Result<()> {
        let vid = vid.to_string();
        self.send(
            "POST",
            &format!("{uuid}/mounts/"),
            &[("node", node), ("vm_id", &vid), ("register_only", "true")],
            "cannot register the mount",
        )
    }

    pub fn unregister_mount(&self, uuid: &str, vid: Oid) -> Result<()> {
        let what = "cannot unregister the mount";
        let resp = self
            .agent
            .delete(format!("{}/{uuid}/mounts/{uuid}_{vid}", self.base))
            .header("Authorization", &self.authorization)
            .header("Accept", "application/json")
            .call()
            .map_err(|e| pdisk_error(what, e))?;
        let status = resp.status().as_u16();
        // Already gone is what we wanted.
        if status == 404 {
            return Ok(());
        }
        let mut resp = resp;
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Self::check(status, text, what).map(|_| ())
    }

    pub fn update(&self, uuid: &str, form: &[(&str, &str)]) -> Result<()> {
        self.send("PUT", uuid, form, "cannot update the volume")
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The node-side path of a volume, from its transport URL.
pub fn device_of(turl: &str) -> Result<PathBuf> {
    match turl.strip_prefix("file://") {
        Some(path) if path.starts_with('/') && !path.split('/').any(|c| c == "..") => {
            Ok(PathBuf::from(path))
        }
        _ => Err(StorageError::BadValue(format!(
            "Unable to attach persistent disk: transport {turl} is not supported on this site (file:// volumes only)"
        ))),
    }
}

/// The VM's registration file (`<vm dir>/<vid>/pdisk`): one pdisk URI per line.
pub fn registration_file(home: &Path) -> PathBuf {
    home.join("pdisk")
}

pub fn registered(home: &Path) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for line in std::fs::read_to_string(registration_file(home))
        .unwrap_or_default()
        .lines()
    {
        let l = line.trim().to_string();
        if !l.is_empty() && !seen.contains(&l) {
            seen.push(l);
        }
    }
    seen
}

pub fn register(home: &Path, uri: &str) -> Result<()> {
    use std::io::Write;
    let path = registration_file(home);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| writeln!(f, "{uri}"))
        .map_err(StorageError::io(format!("cannot write {}", path.display())))
}

/// pdisk's quarantine time stamp: local time `YYYY-MM-DD HH:MM:SS.ffffff`.
pub fn quarantine_stamp(epoch: i64) -> String {
    let (y, mo, d, h, mi, s) = super::civil(epoch);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.000000")
}

/// Detaches every registered volume (hooks §8 steps 2–3): the mounts are unregistered, a
/// root volume that is a snapshot goes to pdisk's quarantine. Every volume is tried; the
/// errors are reported together.
pub fn detach_all(client: &PdiskClient, home: &Path, vid: Oid, now: i64) -> Result<Vec<String>> {
    let uris = registered(home);
    let mut errors = Vec::new();
    let mut done = Vec::new();
    for (n, uri) in uris.iter().enumerate() {
        let uuid = uuid_of(uri);
        if !valid_uuid(&uuid) {
            continue;
        }
        if let Err(e) = client.unregister_mount(&uuid, vid) {
            errors.push(e.to_string());
            continue;
        }
        if n == 0 {
            match client.volume(&uuid) {
                Ok(v) if v.identifier.contains("snapshot") => {
                    let stamp = quarantine_stamp(now);
                    if let Err(e) =
                        client.update(&uuid, &[("owner", SUPERUSER), ("quarantine", &stamp)])
                    {
                        errors.push(e.to_string());
                    }
                }
                Ok(_) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
        done.push(uuid);
    }
    if errors.is_empty() {
        // Kept on errors, so a later DELETE (finalize) tries again.
        let _ = std::fs::remove_file(registration_file(home));
        Ok(done)
    } else {
        Err(StorageError::BadValue(errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "48ac4190-9a11-4a06-8bef-03fd97080eba";

    fn vol(kind: &str, count: &str, owner: &str) -> Volume {
        Volume {
            uuid: UUID.into(),
            owner: owner.into(),
            kind: kind.into(),
            count: count.into(),
            identifier: String::new(),
            visibility: "PRIVATE".into(),
            size: "2".into(),
        }
    }

    #[test]
    fn volume_rules() {
        check_volume(&vol("MACHINE_IMAGE_LIVE", "0", "alice"), 0, "alice", false).unwrap();
        assert_eq!(
            check_volume(
                &vol("DATA_IMAGE_RAW_READ_WRITE", "0", "alice"),
                0,
                "alice",
                false
            )
            .unwrap_err()
            .to_string(),
            "Only a live persistent disk can be booted from."
        );
        assert_eq!(
            check_volume(&vol("MACHINE_IMAGE_LIVE", "1", "alice"), 0, "alice", false)
                .unwrap_err()
                .to_string(),
            "User count must be zero on the live disk to boot from."
        );
        check_volume(
            &vol("DATA_IMAGE_RAW_READONLY", "3", "alice"),
            1,
            "alice",
            false,
        )
        .unwrap();
        assert_eq!(
            check_volume(&vol("MACHINE_IMAGE_ORIGIN", "0", "alice"), 1, "alice", false)
                .unwrap_err()
                .to_string(),
            "Only DATA_IMAGE_RAW_READONLY, DATA_IMAGE_RAW_READ_WRITE type disks can be attached as extra disks"
        );
        assert!(check_volume(
            &vol("DATA_IMAGE_RAW_READ_WRITE", "0", "bob"),
            1,
            "alice",
            false
        )
        .is_err());
        check_volume(
            &vol("DATA_IMAGE_RAW_READ_WRITE", "0", "bob"),
            1,
            "oneadmin",
            true,
        )
        .unwrap();
    }

    #[test]
    fn uuids_and_transports() {
        assert_eq!(uuid_of(&format!("pdisk:host:8445:{UUID}")), UUID);
        assert!(valid_uuid(UUID));
        assert!(!valid_uuid("../../etc"));
        assert_eq!(
            device_of("file:///srv/pdisk/x").unwrap(),
            Path::new("/srv/pdisk/x")
        );
        assert!(device_of("iscsi://portal:3260/iqn.2011-01.eu.stratuslab:x:1").is_err());
        assert!(device_of("file:///srv/../etc/shadow").is_err());
        assert_eq!(quarantine_stamp(0), "1970-01-01 00:00:00.000000");
        let one = format!("pdisk:host:8445:{UUID}");
        assert_eq!(single_volume_uri(&format!(" {one}\n")).unwrap(), one);
        for bad in [
            format!("pdisk:host:8445:{UUID}x"),
            format!("pdisk:h/{UUID}\npdisk:h/{UUID}"),
            format!("pdisk:h/{UUID} pdisk:h/{UUID}"),
            format!("pdisk:h/../{UUID}?x"),
            "pdisk:..".into(),
        ] {
            assert!(single_volume_uri(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn registration_file_lines_are_unique() {
        let dir = std::env::temp_dir().join(format!("pdisk-reg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        register(&dir, "pdisk:a").unwrap();
        register(&dir, "pdisk:b").unwrap();
        register(&dir, "pdisk:a").unwrap();
        assert_eq!(registered(&dir), vec!["pdisk:a", "pdisk:b"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
