//! The trusted certificate authorities, read from a grid-style directory
//! (`/etc/grid-security/certificates`): `<hash>.<n>` files hold CA certificates, `<hash>.r<n>`
//! files their CRLs (PEM or DER). Other files there (`.signing_policy`, `.namespaces`,
//! `.info`, `.crl_url`, ...) are not read. CAs and CRLs are indexed by the DER of their
//! subject (issuer for CRLs) and parsed again when used.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    #[error("cannot read the CA directory {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA directory {0} holds no usable CA certificate (<hash>.0 files)")]
    Empty(PathBuf),
}

/// What kind of file a directory entry is, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FileKind {
    Certificate,
    Crl,
}

fn kind_of(name: &str) -> Option<FileKind> {
    let (hash, suffix) = name.split_once('.')?;
    if hash.len() != 8 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if all_digits(suffix) {
        Some(FileKind::Certificate)
    } else if suffix.strip_prefix('r').is_some_and(all_digits) {
        Some(FileKind::Crl)
    } else {
        None
    }
}

/// The trust anchors and CRLs of one directory, as read at one moment.
#[derive(Debug, Default)]
pub struct TrustStore {
    /// CA certificates (DER) by the DER of their subject.
    cas: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    /// CRLs (DER) by the DER of their issuer.
    crls: HashMap<Vec<u8>, Vec<Vec<u8>>>,
}

impl TrustStore {
    /// Reads every CA certificate and CRL of `dir`; unreadable files are logged and skipped.
    pub fn load(dir: &Path) -> Result<TrustStore, TrustStoreError> {
        let read_err = |source| TrustStoreError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut store = TrustStore::default();
        let mut names: Vec<(String, FileKind)> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                kind_of(&name).map(|k| (name, k))
            })
            .collect();
        names.sort();
        for (name, kind) in names {
            let path = dir.join(&name);
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "CA directory file skipped");
                    continue;
                }
            };
            match kind {
                FileKind::Certificate => store.add_certificates(&path, &bytes),
                FileKind::Crl => store.add_crls(&path, &bytes),
            }
        }
        if store.cas.is_empty() {
            return Err(TrustStoreError::Empty(dir.to_path_buf()));
        }
        for subject in store.cas.keys() {
            if !store.crls.contains_key(subject) {
                tracing::debug!(
                    ca = %name_text(subject),
                    "no CRL for this CA: its certificates are not checked for revocation"
                );
            }
        }
        Ok(store)
    }

    fn add_certificates(&mut self, path: &Path, bytes: &[u8]) {
        let pem: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(bytes)
            .filter_map(|c| c.ok())
            .map(|c| c.as_ref().to_vec())
            .collect();
        // No PEM block: a DER file.
        let ders = if pem.is_empty() {
            vec![bytes.to_vec()]
        } else {
            pem
        };
        for der in ders {
            match X509Certificate::from_der(&der) {
                Ok((_, cert)) => {
                    let subject = cert.subject().as_raw().to_vec();
                    self.cas.entry(subject).or_default().push(der.clone());
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "not a certificate; skipped")
                }
            }
        }
    }

    fn add_crls(&mut self, path: &Path, bytes: &[u8]) {
        let pem: Vec<Vec<u8>> = CertificateRevocationListDer::pem_slice_iter(bytes)
            .filter_map(|c| c.ok())
            .map(|c| c.as_ref().to_vec())
            .collect();
        let ders = if pem.is_empty() {
            vec![bytes.to_vec()]
        } else {
            pem
        };
        for der in ders {
            match CertificateRevocationList::from_der(&der) {
                Ok((_, crl)) => {
                    let issuer = crl.issuer().as_raw().to_vec();
                    self.crls.entry(issuer).or_default().push(der.clone());
                }
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "not a CRL; skipped"),
            }
        }
    }

    /// The CA certificates (DER) whose subject is the DER name `subject`.
    pub fn cas_named(&self, subject: &[u8]) -> &[Vec<u8>] {
        self.cas.get(subject).map_or(&[], Vec::as_slice)
    }

    /// The CRLs (DER) issued by the DER name `issuer`.
    pub fn crls_of(&self, issuer: &[u8]) -> &[Vec<u8>] {
        self.crls.get(issuer).map_or(&[], Vec::as_slice)
    }

    pub fn ca_count(&self) -> usize {
        self.cas.values().map(Vec::len).sum()
    }

    pub fn crl_count(&self) -> usize {
        self.crls.values().map(Vec::len).sum()
    }
}

/// A DER name as text, for logs.
fn name_text(der: &[u8]) -> String {
    x509_parser::x509::X509Name::from_der(der)
        .map(|(_, n)| super::dn::rfc2253(&n))
        .unwrap_or_else(|_| "<unreadable name>".into())
}

/// What identifies the directory's content: names, sizes and modification times of the
/// files read, so that a changed CRL (fetch-crl) or an added CA is noticed.
pub fn directory_fingerprint(dir: &Path) -> Option<Vec<(String, u64, Option<SystemTime>)>> {
    let mut entries: Vec<(String, u64, Option<SystemTime>)> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            kind_of(&name)?;
            let meta = std::fs::metadata(e.path()).ok()?;
            Some((name, meta.len(), meta.modified().ok()))
        })
        .collect();
    entries.sort();
    Some(entries)
}

/// The trust store of a directory, read again when its files change (fetch-crl replaces CRLs
/// every few hours); the directory is looked at most every `min_interval`.
pub struct CaDirectory {
    dir: PathBuf,
    min_interval: std::time::Duration,
    state: std::sync::Mutex<CaState>,
}

struct CaState {
    store: std::sync::Arc<TrustStore>,
    fingerprint: Option<Vec<(String, u64, Option<SystemTime>)>>,
    checked: std::time::Instant,
}

impl std::fmt::Debug for CaDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaDirectory")
            .field("dir", &self.dir)
            .finish()
    }
}

impl CaDirectory {
    pub fn open(
        dir: &Path,
        min_interval: std::time::Duration,
    ) -> Result<CaDirectory, TrustStoreError> {
        let fingerprint = directory_fingerprint(dir);
        let store = TrustStore::load(dir)?;
        tracing::info!(
            dir = %dir.display(),
            cas = store.ca_count(),
            crls = store.crl_count(),
            "trusted CA directory read"
        );
        Ok(CaDirectory {
            dir: dir.to_path_buf(),
            min_interval,
            state: std::sync::Mutex::new(CaState {
                store: std::sync::Arc::new(store),
                fingerprint,
                checked: std::time::Instant::now(),
            }),
        })
    }

    /// The trust store to verify with now.
    pub fn current(&self) -> std::sync::Arc<TrustStore> {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.checked.elapsed() >= self.min_interval {
            state.checked = std::time::Instant::now();
            let fingerprint = directory_fingerprint(&self.dir);
            if fingerprint != state.fingerprint {
                match TrustStore::load(&self.dir) {
                    Ok(store) => {
                        tracing::info!(
                            dir = %self.dir.display(),
                            cas = store.ca_count(),
                            crls = store.crl_count(),
                            "trusted CA directory re-read after a change"
                        );
                        state.store = std::sync::Arc::new(store);
                        state.fingerprint = fingerprint;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "re-reading the CA directory failed; the previous content stays in use")
                    }
                }
            }
        }
        std::sync::Arc::clone(&state.store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_file_names() {
        assert_eq!(kind_of("1a2b3c4d.0"), Some(FileKind::Certificate));
        assert_eq!(kind_of("1a2b3c4d.12"), Some(FileKind::Certificate));
        assert_eq!(kind_of("1a2b3c4d.r0"), Some(FileKind::Crl));
        assert_eq!(kind_of("1a2b3c4d.signing_policy"), None);
        assert_eq!(kind_of("1a2b3c4d.namespaces"), None);
        assert_eq!(kind_of("1a2b3c4d.crl_url"), None);
        assert_eq!(kind_of("1a2b3c4d.r"), None);
        assert_eq!(kind_of("CERN-Root.pem"), None);
        assert_eq!(kind_of("xyz.0"), None);
    }
}
