//! The rustls client-certificate verifier of the front door: chains are checked by
//! [`super::chain::verify_chain`] (proxy certificates included), handshake signatures with
//! `ring` directly, since webpki refuses to parse proxy certificates (critical ProxyCertInfo).
//!
//! A client certificate is optional at the TLS level (`/pswd` needs none), but one that is sent
//! must verify, or the handshake fails with the matching alert (certificate_expired,
//! certificate_revoked, unknown_ca, ...).

use super::chain::{verify_chain, ChainError};
use super::trust_store::CaDirectory;
use ring::signature as sig;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, PeerMisbehaved,
    SignatureScheme,
};
use std::sync::Arc;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::time::ASN1Time;

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

#[derive(Debug)]
pub struct GridClientVerifier {
    cas: Arc<CaDirectory>,
}

impl GridClientVerifier {
    pub fn new(cas: Arc<CaDirectory>) -> Self {
        GridClientVerifier { cas }
    }
}

/// `now` as x509-parser's time.
pub fn asn1_time(now: UnixTime) -> Result<ASN1Time, Error> {
    let secs = i64::try_from(now.as_secs()).map_err(|_| Error::FailedToGetCurrentTime)?;
    ASN1Time::from_timestamp(secs).map_err(|_| Error::FailedToGetCurrentTime)
}

/// The TLS error (and so the alert) for a refused chain.
pub fn tls_error(e: ChainError) -> Error {
    let kind = match e {
        ChainError::Malformed(_) => CertificateError::BadEncoding,
        ChainError::Expired { .. } => CertificateError::Expired,
        ChainError::NotYetValid { .. } => CertificateError::NotValidYet,
        ChainError::UnknownIssuer { .. } => CertificateError::UnknownIssuer,
        ChainError::BadSignature { .. } => CertificateError::BadSignature,
        ChainError::Revoked { .. } => CertificateError::Revoked,
        ChainError::CrlExpired { .. } => CertificateError::ExpiredRevocationList,
        ChainError::CrlUnusable { .. } => CertificateError::UnknownRevocationStatus,
        ChainError::Policy { .. } | ChainError::UnsupportedAlgorithm { .. } => {
            CertificateError::Other(OtherError(Arc::new(e)))
        }
    };
    Error::InvalidCertificate(kind)
}

impl ClientCertVerifier for GridClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: a client then sends whatever certificate (or proxy) it was given, and the
        // list of a full IGTF directory would only lengthen every handshake.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let store = self.cas.current();
        let presented: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
        match verify_chain(&store, end_entity.as_ref(), &presented, asn1_time(now)?) {
            Ok(chain) => {
                tracing::debug!(subject = %chain.subject_dn, proxies = chain.proxies, "client certificate verified");
                Ok(ClientCertVerified::assertion())
            }
            Err(e) => {
                tracing::info!("client certificate refused: {e}");
                Err(tls_error(e))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss, false)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_handshake_signature(message, cert, dss, true)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ED25519,
            SignatureScheme::RSA_PSS_SHA512,
            SignatureScheme::RSA_PSS_SHA384,
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PKCS1_SHA512,
            SignatureScheme::RSA_PKCS1_SHA384,
            SignatureScheme::RSA_PKCS1_SHA256,
        ]
    }
}

/// The client proves it holds the key of its (leaf) certificate: `dss` signs `message`.
fn verify_handshake_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    tls13: bool,
) -> Result<HandshakeSignatureValid, Error> {
    let (_, parsed) = X509Certificate::from_der(cert.as_ref())
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let spki = parsed.public_key();
    let key_type = spki.algorithm.algorithm.to_id_string();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    use SignatureScheme as S;
    let algorithm: &'static dyn sig::VerificationAlgorithm =
        match (dss.scheme, key_type.as_str(), curve.as_deref()) {
            // PKCS#1 v1.5 signs TLS 1.2 handshakes only (RFC 8446 §4.2.3).
            (S::RSA_PKCS1_SHA256, OID_RSA, _) if !tls13 => &sig::RSA_PKCS1_2048_8192_SHA256,
            (S::RSA_PKCS1_SHA384, OID_RSA, _) if !tls13 => &sig::RSA_PKCS1_2048_8192_SHA384,
            (S::RSA_PKCS1_SHA512, OID_RSA, _) if !tls13 => &sig::RSA_PKCS1_2048_8192_SHA512,
            (S::RSA_PSS_SHA256, OID_RSA, _) => &sig::RSA_PSS_2048_8192_SHA256,
            (S::RSA_PSS_SHA384, OID_RSA, _) => &sig::RSA_PSS_2048_8192_SHA384,
            (S::RSA_PSS_SHA512, OID_RSA, _) => &sig::RSA_PSS_2048_8192_SHA512,
            (S::ECDSA_NISTP256_SHA256, OID_EC_PUBLIC_KEY, Some(OID_P256)) => {
                &sig::ECDSA_P256_SHA256_ASN1
            }
            (S::ECDSA_NISTP384_SHA384, OID_EC_PUBLIC_KEY, Some(OID_P384)) => {
                &sig::ECDSA_P384_SHA384_ASN1
            }
            // TLS 1.2 does not tie the ECDSA schemes to a curve.
            (S::ECDSA_NISTP384_SHA384, OID_EC_PUBLIC_KEY, Some(OID_P256)) if !tls13 => {
                &sig::ECDSA_P256_SHA384_ASN1
            }
            (S::ECDSA_NISTP256_SHA256, OID_EC_PUBLIC_KEY, Some(OID_P384)) if !tls13 => {
                &sig::ECDSA_P384_SHA256_ASN1
            }
            (S::ED25519, OID_ED25519, _) => &sig::ED25519,
            _ => {
                return Err(Error::PeerMisbehaved(
                    PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
                ))
            }
        };
    sig::UnparsedPublicKey::new(algorithm, &spki.subject_public_key.data)
        .verify(message, dss.signature())
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}
