//! What a DISK's SOURCE names (hooks §3.1, client §6.4), and which host files a VM may use.
//!
//! Template values are never trusted as host paths: a file of the front-end becomes a VM disk
//! only when the core put it there from a registered image the owner may USE (the DISK then
//! carries `IMAGE_ID`, and its SOURCE was overwritten at allocation), or when the VM belongs to
//! oneadmin or its group.

use super::{identifier, Result, StorageError};
use crate::model::Vm;
use crate::template::vector_get;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskSource {
    /// A Marketplace image: `<endpoint>/metadata/<id>`, or a bare id of the site's Marketplace.
    Marketplace { endpoint: String, id: String },
    /// A persistent disk of the pdisk service.
    Pdisk { uuid: String },
    /// A file on the front-end (registered images).
    HostFile(PathBuf),
}

/// Falls back to StratusLab's `http://localhost` when no local Marketplace is configured.
pub const LOCAL_MARKETPLACE_FALLBACK: &str = "http://localhost";

fn last_component(text: &str) -> &str {
    let t = text.trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t)
}

pub fn classify(source: &str, local_marketplace: &str) -> DiskSource {
    let source = source.trim();
    if source.starts_with("pdisk:") {
        return DiskSource::Pdisk {
            uuid: super::pdisk::uuid_of(source),
        };
    }
    let lower = source.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let endpoint = match source.find("/metadata/") {
            Some(at) => source[..at].to_string(),
            None => {
                // scheme://host[:port]
                let after = source.find("://").map(|i| i + 3).unwrap_or(0);
                let end = source[after..]
                    .find('/')
                    .map(|i| after + i)
                    .unwrap_or(source.len());
                source[..end].to_string()
            }
        };
        return DiskSource::Marketplace {
            endpoint,
            id: last_component(source).to_string(),
        };
    }
    if source.starts_with('/') {
        return DiskSource::HostFile(PathBuf::from(source));
    }
    // A bare id (Sunstone wrote `<host>:<id>`).
    let id = last_component(source);
    let id = id.rsplit(':').next().unwrap_or(id).to_string();
    let endpoint = if local_marketplace.is_empty() {
        LOCAL_MARKETPLACE_FALLBACK.to_string()
    } else {
        local_marketplace.to_string()
    };
    DiskSource::Marketplace { endpoint, id }
}

/// oneadmin and the oneadmin group may use any host file, as in oned.
pub fn owner_is_privileged(vm: &Vm) -> bool {
    vm.uid == 0 || vm.gid == 0
}

/// The host file a disk may be made from, or the refusal.
pub fn authorize_host_file(vm: &Vm, disk: &[(String, String)], path: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path);
    let clean = p.is_absolute() && !path.split('/').any(|c| c == "..");
    let registered = vector_get(disk, "IMAGE_ID").is_some();
    if clean && (registered || owner_is_privileged(vm)) {
        return Ok(p);
    }
    Err(StorageError::HostPathRefused {
        user: vm.uname.clone(),
        path: path.to_string(),
    })
}

/// Checks a Marketplace id before it names a cache file.
pub fn check_image_id(id: &str) -> Result<()> {
    if identifier::is_safe_image_id(id) {
        Ok(())
    } else {
        Err(StorageError::InvalidImageId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp(endpoint: &str, id: &str) -> DiskSource {
        DiskSource::Marketplace {
            endpoint: endpoint.into(),
            id: id.into(),
        }
    }

    #[test]
    fn client_spellings() {
        assert_eq!(
            classify(
                "http://127.0.0.1:26340/metadata/BN1EEkPiBx87_uLj2-sdybSI-Xb",
                ""
            ),
            mp("http://127.0.0.1:26340", "BN1EEkPiBx87_uLj2-sdybSI-Xb")
        );
        assert_eq!(
            classify("https://marketplace.stratuslab.eu/metadata/X/", ""),
            mp("https://marketplace.stratuslab.eu", "X")
        );
        assert_eq!(
            classify("BN1EEkPiBx87_uLj2-sdybSI-Xb", "http://mp.site"),
            mp("http://mp.site", "BN1EEkPiBx87_uLj2-sdybSI-Xb")
        );
        assert_eq!(
            classify("front:BN1EEkPiBx87_uLj2-sdybSI-Xb", ""),
            mp("http://localhost", "BN1EEkPiBx87_uLj2-sdybSI-Xb")
        );
        let uuid = "48ac4190-9a11-4a06-8bef-03fd97080eba";
        for s in [
            format!("pdisk:https://cloud.example.com/pdisk/{uuid}"),
            format!("pdisk:onehost.example.org:8445:{uuid}"),
            format!("pdisk:154.48.152.10:8445/{uuid}"),
            format!("pdisk://host:8445/pdisk/{uuid}"),
            format!("pdisk:http://127.0.0.1:26340:8445:{uuid}"),
        ] {
            assert_eq!(
                classify(&s, ""),
                DiskSource::Pdisk { uuid: uuid.into() },
                "{s}"
            );
        }
        assert_eq!(
            classify("/etc/shadow", ""),
            DiskSource::HostFile("/etc/shadow".into())
        );
    }

    fn vm(uid: crate::model::Oid, gid: crate::model::Oid) -> Vm {
        Vm {
            id: 1,
            uid,
            gid,
            uname: "alice".into(),
            gname: String::new(),
            name: "one-1".into(),
            perms: crate::model::Permissions::default(),
            last_poll: 0,
            state: crate::model::vm::VmState::Pending,
            lcm_state: crate::model::vm::LcmState::LcmInit,
            stime: 0,
            etime: 0,
            deploy_id: String::new(),
            memory: 0,
            cpu: 0,
            net_tx: 0,
            net_rx: 0,
            template: crate::template::Template::new(),
            history: Vec::new(),
            reboot_requested: false,
            resubmit_after_cleanup: false,
            boot_restores: false,
            disk_sizes: None,
        }
    }

    #[test]
    fn host_files_need_a_registered_image_or_oneadmin() {
        let plain: Vec<(String, String)> = vec![("SOURCE".into(), "/etc/shadow".into())];
        let registered: Vec<(String, String)> = vec![
            ("SOURCE".into(), "/var/lib/stratusd/images/abc".into()),
            ("IMAGE_ID".into(), "3".into()),
        ];
        let err = authorize_host_file(&vm(2, 1), &plain, "/etc/shadow").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("User alice is not authorized to use /etc/shadow"));
        authorize_host_file(&vm(2, 1), &registered, "/var/lib/stratusd/images/abc").unwrap();
        authorize_host_file(&vm(0, 0), &plain, "/etc/shadow").unwrap();
        assert!(authorize_host_file(&vm(0, 0), &plain, "/a/../etc/shadow").is_err());
    }
}
