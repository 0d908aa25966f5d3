//! The TLS side of the front door: rustls with the ring provider, TLS 1.3 and 1.2 (the
//! StratusLab client runs on Python 2.7, whose OpenSSL speaks TLS 1.2 with ECDHE-AES-GCM),
//! the server certificate chain and key from PEM files, and the grid client verifier when a
//! CA directory is configured.

use super::trust_store::CaDirectory;
use super::verifier::GridClientVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read the certificate file {path}: {reason}")]
    Certificate { path: PathBuf, reason: String },
    #[error("the certificate file {0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    #[error("cannot read a private key from {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsSetupError::Certificate {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::Certificate {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsSetupError::Key {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The server configuration: `cert_file` holds the server certificate followed by any
/// intermediates, `key_file` its key (PKCS#8, PKCS#1 or SEC1 PEM).
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
    client_cas: Option<Arc<CaDirectory>>,
) -> Result<ServerConfig, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_cas {
        Some(cas) => builder.with_client_cert_verifier(Arc::new(GridClientVerifier::new(cas))),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certificates(cert_file)?, private_key(key_file)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
