//! Validation of a client's certificate chain, grid style: an end-entity certificate issued by
//! a CA of the trusted directory, optionally followed by proxy certificates (RFC 3820, or the
//! legacy Globus `CN=proxy` form) that the end entity, or a proxy, issued. rustls' webpki
//! refuses proxies (an end entity may not sign certificates there, and the critical
//! ProxyCertInfo extension is unknown to it), so the path is built and checked here:
//! signatures, validity periods, CA flags, key usages, path lengths, the proxy rules of
//! RFC 3820 §3-4, and the CRLs of every issuing CA.
//!
//! CAs come from the trusted directory only: CA certificates the client sends are ignored, as
//! grid directories hold every CA (roots and intermediates). The identity is the end-entity
//! subject; proxies only delegate it.

use super::dn::{key_of_name, rfc2253, DnKey};
use super::trust_store::TrustStore;
use std::borrow::Cow;
use x509_parser::der_parser::oid::Oid;
use x509_parser::error::X509Error;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::time::ASN1Time;
use x509_parser::x509::X509Name;

const OID_PROXY_CERT_INFO: &str = "1.3.6.1.5.5.7.1.14";
const OID_PPL_INHERIT_ALL: &str = "1.3.6.1.5.5.7.21.1";
const OID_PPL_INDEPENDENT: &str = "1.3.6.1.5.5.7.21.2";
const OID_PPL_LIMITED: &str = "1.3.6.1.4.1.3536.1.1.1.9";
const OID_COMMON_NAME: &str = "2.5.4.3";
const OID_SUBJECT_ALT_NAME: &str = "2.5.29.17";
const OID_ISSUER_ALT_NAME: &str = "2.5.29.18";

/// Longest accepted chain of proxies on top of the end entity.
const MAX_PROXIES: usize = 10;
/// Longest accepted chain of CAs above the end entity.
const MAX_CAS: usize = 8;

/// Extensions that may be marked critical: the ones read here, and the ones that constrain
/// nothing this front door relies on. Any other critical extension refuses the certificate.
const UNDERSTOOD_CRITICAL: &[&str] = &[
    "2.5.29.19", // basicConstraints
    "2.5.29.15", // keyUsage
    "2.5.29.37", // extendedKeyUsage
    "2.5.29.17", // subjectAltName: the identity is the subject DN
    "2.5.29.14", // subjectKeyIdentifier
    "2.5.29.35", // authorityKeyIdentifier
    "2.5.29.32", // certificatePolicies: no policy is required here
    OID_PROXY_CERT_INFO,
];

/// CRL extensions that may be critical (only these two are defined as CRL-wide and harmless);
/// a delta-CRL indicator or an issuing distribution point, which change what the list covers,
/// make the CRL unusable rather than silently misread.
const UNDERSTOOD_CRITICAL_CRL: &[&str] = &["2.5.29.20", "2.5.29.35"];
/// CRL entry extensions that may be critical: reason code and invalidity date.
const UNDERSTOOD_CRITICAL_CRL_ENTRY: &[&str] = &["2.5.29.21", "2.5.29.24"];

/// Signature algorithms accepted on certificates and CRLs: SHA-2 RSA (PKCS#1 v1.5 and PSS,
/// keys of 2048 bits or more), ECDSA P-256/P-384 and Ed25519. SHA-1 and MD5 signatures are
/// refused: they can be forged.
const ACCEPTED_SIGNATURES: &[&str] = &[
    "1.2.840.113549.1.1.11", // sha256WithRSAEncryption
    "1.2.840.113549.1.1.12", // sha384WithRSAEncryption
    "1.2.840.113549.1.1.13", // sha512WithRSAEncryption
    "1.2.840.113549.1.1.10", // RSASSA-PSS
    "1.2.840.10045.4.3.2",   // ecdsa-with-SHA256
    "1.2.840.10045.4.3.3",   // ecdsa-with-SHA384
    "1.3.101.112",           // Ed25519
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("a certificate cannot be parsed: {0}")]
    Malformed(String),
    #[error("certificate {subject} has expired")]
    Expired { subject: String },
    #[error("certificate {subject} is not valid yet")]
    NotYetValid { subject: String },
    #[error("no trusted CA issued {subject} (issuer {issuer})")]
    UnknownIssuer { subject: String, issuer: String },
    #[error("the signature on {subject} does not verify")]
    BadSignature { subject: String },
    #[error("{subject} is signed with algorithm {algorithm}, which is not accepted")]
    UnsupportedAlgorithm { subject: String, algorithm: String },
    #[error("certificate {subject} is revoked")]
    Revoked { subject: String },
    #[error("the CRL of {issuer} is out of date")]
    CrlExpired { issuer: String },
    #[error("the CRL of {issuer} cannot be used: {reason}")]
    CrlUnusable { issuer: String, reason: String },
    #[error("{subject}: {reason}")]
    Policy { subject: String, reason: String },
}

/// A chain that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The end-entity subject as one-proxy named users (Java's RFC 2253 text).
    pub subject_dn: String,
    /// The same subject, for comparison with an allowed-DN list.
    pub subject_key: DnKey,
    /// How many proxy certificates stood on top of the end entity.
    pub proxies: usize,
}

/// The two proxy families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProxyKind {
    Rfc3820,
    LegacyGlobus,
}

/// A proxy certificate as classified: its family and, for RFC 3820, its path length limit.
#[derive(Debug, Clone, Copy)]
struct Proxy {
    kind: ProxyKind,
    path_len: Option<u32>,
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, ChainError> {
    match X509Certificate::from_der(der) {
        Ok((&[], cert)) => Ok(cert),
        Ok(_) => Err(ChainError::Malformed(
            "trailing data after a certificate".into(),
        )),
        Err(e) => Err(ChainError::Malformed(e.to_string())),
    }
}

fn name(n: &X509Name) -> String {
    rfc2253(n)
}

fn subject(cert: &X509Certificate) -> String {
    name(cert.subject())
}

fn policy(cert: &X509Certificate, reason: &str) -> ChainError {
    ChainError::Policy {
        subject: subject(cert),
        reason: reason.to_string(),
    }
}

fn malformed(cert: &X509Certificate, e: X509Error) -> ChainError {
    ChainError::Malformed(format!("{}: {e}", subject(cert)))
}

/// Validates `leaf` (the client's own certificate) with the other certificates it sent.
pub fn verify_chain(
    store: &TrustStore,
    leaf: &[u8],
    presented: &[&[u8]],
    now: ASN1Time,
) -> Result<VerifiedChain, ChainError> {
    let leaf = parse(leaf)?;
    let presented = presented
        .iter()
        .map(|der| parse(der))
        .collect::<Result<Vec<_>, _>>()?;

    // 1. From the leaf down to the end entity: proxies and their issuers, all presented.
    let mut lower: Vec<&X509Certificate> = vec![&leaf];
    let mut proxies: Vec<Proxy> = Vec::new();
    loop {
        let current = lower[lower.len() - 1];
        let issuer = presented.iter().find(|c| {
            c.subject().as_raw() == current.issuer().as_raw()
                && c.as_raw() != current.as_raw()
                && !claims_ca(c)
        });
        let Some(proxy) = classify_proxy(current, issuer.is_some())? else {
            break;
        };
        let Some(issuer) = issuer else {
            return Err(policy(
                current,
                "a proxy certificate whose issuer was not sent",
            ));
        };
        if proxies.len() >= MAX_PROXIES {
            return Err(policy(current, "too many proxy certificates"));
        }
        proxies.push(proxy);
        lower.push(issuer);
    }
    let end_entity = lower[lower.len() - 1];

    // 2. From the end entity up: CAs of the trusted directory only. Every CA there is a trust
    // anchor; the path goes on as long as the directory holds the issuer, up to a root.
    let mut cas: Vec<X509Certificate> = Vec::new();
    loop {
        if cas.len() >= MAX_CAS {
            return Err(policy(end_entity, "the CA path is too long"));
        }
        let child = cas.last().unwrap_or(end_entity);
        let candidates = store.cas_named(child.issuer().as_raw());
        if candidates.is_empty() {
            if cas.is_empty() {
                return Err(ChainError::UnknownIssuer {
                    subject: subject(child),
                    issuer: name(child.issuer()),
                });
            }
            break;
        }
        let mut failure = None;
        let mut issuer = None;
        for der in candidates {
            let ca = parse(der)?;
            match verify_signed_by(child, &ca) {
                Ok(()) => {
                    issuer = Some(ca);
                    break;
                }
                Err(e) => failure = Some(e),
            }
        }
        let Some(ca) = issuer else {
            return Err(failure.unwrap_or_else(|| ChainError::UnknownIssuer {
                subject: subject(child),
                issuer: name(child.issuer()),
            }));
        };
        let self_issued = ca.subject().as_raw() == ca.issuer().as_raw();
        if cas.iter().any(|c| c.as_raw() == ca.as_raw()) {
            break;
        }
        cas.push(ca);
        if self_issued {
            break;
        }
    }

    // 3. Every certificate of the path: validity period and critical extensions.
    for cert in lower.iter().copied().chain(cas.iter()) {
        check_validity(cert, now)?;
        check_critical_extensions(cert)?;
    }

    // 4. Proxies: signatures and the RFC 3820 rules.
    let kinds: Vec<ProxyKind> = proxies.iter().map(|p| p.kind).collect();
    if kinds.windows(2).any(|w| w[0] != w[1]) {
        return Err(policy(
            &leaf,
            "RFC 3820 and legacy proxies mixed in one chain",
        ));
    }
    for (i, proxy) in proxies.iter().enumerate() {
        let cert = lower[i];
        let issuer = lower[i + 1];
        verify_signed_by(cert, issuer)?;
        check_proxy(cert, issuer, proxy, i)?;
    }

    // 5. The end entity and the CAs.
    check_end_entity(end_entity)?;
    for (k, ca) in cas.iter().enumerate() {
        // k CAs stand between this one and the end entity.
        check_ca(ca, k)?;
    }

    // 6. Revocation of the end entity and of every CA whose issuer is on the path.
    check_revocation(store, end_entity, &cas[0], now)?;
    for pair in cas.windows(2) {
        check_revocation(store, &pair[0], &pair[1], now)?;
    }

    Ok(VerifiedChain {
        subject_dn: subject(end_entity),
        subject_key: key_of_name(end_entity.subject()),
        proxies: proxies.len(),
    })
}

fn claims_ca(cert: &X509Certificate) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

/// Is `cert` a proxy? RFC 3820 proxies carry ProxyCertInfo; a legacy Globus proxy is a
/// certificate issued by a presented non-CA certificate whose subject is the issuer's with
/// `CN=proxy` (or `CN=limited proxy`) appended.
fn classify_proxy(
    cert: &X509Certificate,
    issuer_presented: bool,
) -> Result<Option<Proxy>, ChainError> {
    let infos: Vec<_> = cert
        .extensions()
        .iter()
        .filter(|e| e.oid.to_id_string() == OID_PROXY_CERT_INFO)
        .collect();
    match infos.as_slice() {
        [] => {}
        [info] => {
            if !info.critical {
                return Err(policy(
                    cert,
                    "ProxyCertInfo must be critical (RFC 3820 §3.8)",
                ));
            }
            let parsed = parse_proxy_cert_info(info.value)
                .ok_or_else(|| policy(cert, "ProxyCertInfo cannot be parsed"))?;
            match parsed.language.as_str() {
                OID_PPL_INHERIT_ALL => {}
                OID_PPL_LIMITED => {
                    return Err(policy(
                        cert,
                        "limited proxies carry restricted rights and are refused",
                    ))
                }
                OID_PPL_INDEPENDENT => {
                    return Err(policy(
                        cert,
                        "independent proxies carry none of the issuer's rights",
                    ))
                }
                other => {
                    return Err(policy(
                        cert,
                        &format!("proxy policy language {other} is not supported"),
                    ))
                }
            }
            return Ok(Some(Proxy {
                kind: ProxyKind::Rfc3820,
                path_len: parsed.path_len,
            }));
        }
        _ => return Err(policy(cert, "ProxyCertInfo appears twice")),
    }
    if !issuer_presented {
        return Ok(None);
    }
    match appended_common_name(cert.subject(), cert.issuer()).as_deref() {
        Some("proxy") => Ok(Some(Proxy {
            kind: ProxyKind::LegacyGlobus,
            path_len: None,
        })),
        Some("limited proxy") => Err(policy(
            cert,
            "limited proxies carry restricted rights and are refused",
        )),
        _ => Ok(None),
    }
}

/// When `subject` is `issuer` with exactly one single-valued CN RDN appended: that CN's value.
fn appended_common_name(subject: &X509Name, issuer: &X509Name) -> Option<String> {
    let subject_rdns: Vec<_> = subject.iter_rdn().collect();
    let issuer_rdns: Vec<_> = issuer.iter_rdn().collect();
    if subject_rdns.len() != issuer_rdns.len() + 1 {
        return None;
    }
    if subject_rdns.iter().zip(&issuer_rdns).any(|(a, b)| a != b) {
        return None;
    }
    let last: Vec<_> = subject_rdns[issuer_rdns.len()].iter().collect();
    match last.as_slice() {
        [ava] if ava.attr_type().to_id_string() == OID_COMMON_NAME => {
            ava.as_str().ok().map(String::from)
        }
        _ => None,
    }
}

/// The parts of ProxyCertInfo (RFC 3820 §3.8) that are checked.
struct ProxyCertInfo {
    path_len: Option<u32>,
    language: String,
}

/// `ProxyCertInfo ::= SEQUENCE { pCPathLenConstraint INTEGER (0..MAX) OPTIONAL,
/// proxyPolicy SEQUENCE { policyLanguage OBJECT IDENTIFIER, policy OCTET STRING OPTIONAL } }`
fn parse_proxy_cert_info(value: &[u8]) -> Option<ProxyCertInfo> {
    let (tag, body, rest) = der_element(value)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (mut tag, mut content, mut rest) = der_element(body)?;
    let mut path_len = None;
    if tag == 0x02 {
        // A non-negative INTEGER of at most four value bytes (plus a leading zero).
        if content.is_empty() || content[0] & 0x80 != 0 || content.len() > 5 {
            return None;
        }
        let n = content.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b));
        path_len = Some(u32::try_from(n).ok()?);
        (tag, content, rest) = der_element(rest)?;
    }
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (oid_tag, oid, policy_rest) = der_element(content)?;
    if oid_tag != 0x06 || oid.is_empty() {
        return None;
    }
    if !policy_rest.is_empty() {
        let (policy_tag, _, after) = der_element(policy_rest)?;
        if policy_tag != 0x04 || !after.is_empty() {
            return None;
        }
    }
    Some(ProxyCertInfo {
        path_len,
        language: Oid::new(Cow::Borrowed(oid)).to_id_string(),
    })
}

/// One DER element: (tag byte, content, what follows). Low tag numbers and definite lengths
/// only, which is all ProxyCertInfo uses.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |l, &b| (l << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The signature on `cert` was made with `issuer`'s key, with an accepted algorithm.
fn verify_signed_by(cert: &X509Certificate, issuer: &X509Certificate) -> Result<(), ChainError> {
    let algorithm = cert.signature_algorithm.algorithm.to_id_string();
    if !ACCEPTED_SIGNATURES.contains(&algorithm.as_str()) {
        return Err(ChainError::UnsupportedAlgorithm {
            subject: subject(cert),
            algorithm,
        });
    }
    if cert.signature_algorithm.algorithm != cert.tbs_certificate.signature.algorithm {
        return Err(policy(
            cert,
            "the signature algorithm differs from the signed one",
        ));
    }
    cert.verify_signature(Some(issuer.public_key()))
        .map_err(|e| match e {
            X509Error::SignatureUnsupportedAlgorithm => ChainError::UnsupportedAlgorithm {
                subject: subject(cert),
                algorithm,
            },
            _ => ChainError::BadSignature {
                subject: subject(cert),
            },
        })
}

fn check_validity(cert: &X509Certificate, now: ASN1Time) -> Result<(), ChainError> {
    let validity = cert.validity();
    if now < validity.not_before {
        return Err(ChainError::NotYetValid {
            subject: subject(cert),
        });
    }
    if now > validity.not_after {
        return Err(ChainError::Expired {
            subject: subject(cert),
        });
    }
    Ok(())
}

fn check_critical_extensions(cert: &X509Certificate) -> Result<(), ChainError> {
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if ext.critical && !UNDERSTOOD_CRITICAL.contains(&oid.as_str()) {
            return Err(policy(
                cert,
                &format!("unsupported critical extension {oid}"),
            ));
        }
    }
    Ok(())
}

/// Key usage allows signing (the TLS handshake, or the certificates below).
fn check_may_sign(cert: &X509Certificate) -> Result<(), ChainError> {
    match cert.key_usage().map_err(|e| malformed(cert, e))? {
        Some(ku) if !ku.value.digital_signature() => {
            Err(policy(cert, "key usage does not allow digital signatures"))
        }
        _ => Ok(()),
    }
}

/// Extended key usage, when present, allows TLS client authentication.
fn check_client_purpose(cert: &X509Certificate) -> Result<(), ChainError> {
    match cert.extended_key_usage().map_err(|e| malformed(cert, e))? {
        Some(eku) if !(eku.value.client_auth || eku.value.any) => Err(policy(
            cert,
            "extended key usage does not allow TLS client authentication",
        )),
        _ => Ok(()),
    }
}

/// RFC 3820 §3-4 for the proxy `cert` at position `below` (0 = the leaf; `below` proxies
/// stand under it), issued by `issuer` (the end entity or another proxy).
fn check_proxy(
    cert: &X509Certificate,
    issuer: &X509Certificate,
    proxy: &Proxy,
    below: usize,
) -> Result<(), ChainError> {
    if claims_ca(cert) {
        return Err(policy(cert, "a proxy certificate may not be a CA"));
    }
    // §3.4: the subject is the issuer's subject with one CN appended.
    if appended_common_name(cert.subject(), issuer.subject()).is_none() {
        return Err(policy(
            cert,
            "a proxy's subject must be its issuer's subject with one CN appended",
        ));
    }
    // §3.5, §3.6: no alternative names.
    if cert.extensions().iter().any(|e| {
        let oid = e.oid.to_id_string();
        oid == OID_SUBJECT_ALT_NAME || oid == OID_ISSUER_ALT_NAME
    }) {
        return Err(policy(
            cert,
            "a proxy certificate may not carry alternative names",
        ));
    }
    // §3.7: a proxy never signs as a CA.
    if let Some(ku) = cert.key_usage().map_err(|e| malformed(cert, e))? {
        if ku.value.key_cert_sign() {
            return Err(policy(
                cert,
                "a proxy certificate may not assert keyCertSign",
            ));
        }
    }
    // The issuer signed this proxy with its key; the leaf signs the handshake.
    check_may_sign(issuer)?;
    if below == 0 {
        check_may_sign(cert)?;
    }
    check_client_purpose(cert)?;
    if let Some(limit) = proxy.path_len {
        if below > limit as usize {
            return Err(policy(cert, "the proxy path length constraint is exceeded"));
        }
    }
    Ok(())
}

fn check_end_entity(cert: &X509Certificate) -> Result<(), ChainError> {
    if claims_ca(cert) {
        return Err(policy(cert, "a CA certificate cannot authenticate a user"));
    }
    check_may_sign(cert)?;
    check_client_purpose(cert)
}

/// `ca` has `below` CAs between itself and the end entity.
fn check_ca(ca: &X509Certificate, below: usize) -> Result<(), ChainError> {
    let bc = ca
        .basic_constraints()
        .map_err(|e| malformed(ca, e))?
        .ok_or_else(|| policy(ca, "an issuing certificate without basic constraints"))?;
    if !bc.value.ca {
        return Err(policy(ca, "an issuing certificate that is not a CA"));
    }
    if let Some(limit) = bc.value.path_len_constraint {
        if below > limit as usize {
            return Err(policy(ca, "the CA path length constraint is exceeded"));
        }
    }
    if let Some(ku) = ca.key_usage().map_err(|e| malformed(ca, e))? {
        if !ku.value.key_cert_sign() {
            return Err(policy(ca, "key usage does not allow signing certificates"));
        }
    }
    Ok(())
}

/// `cert` is not on a CRL of `issuer` found in the directory. A CA without CRL is not checked
/// (as Globus does); a CRL that is there must be correctly signed and current.
fn check_revocation(
    store: &TrustStore,
    cert: &X509Certificate,
    issuer: &X509Certificate,
    now: ASN1Time,
) -> Result<(), ChainError> {
    let crls = store.crls_of(issuer.subject().as_raw());
    if crls.is_empty() {
        return Ok(());
    }
    let unusable = |reason: &str| ChainError::CrlUnusable {
        issuer: subject(issuer),
        reason: reason.to_string(),
    };
    let mut current = false;
    for der in crls {
        let crl = match CertificateRevocationList::from_der(der) {
            Ok((_, crl)) => crl,
            Err(e) => return Err(unusable(&e.to_string())),
        };
        check_crl_signature(&crl, issuer).map_err(|reason| unusable(&reason))?;
        for ext in crl.extensions() {
            let oid = ext.oid.to_id_string();
            if ext.critical && !UNDERSTOOD_CRITICAL_CRL.contains(&oid.as_str()) {
                return Err(unusable(&format!("unsupported critical extension {oid}")));
            }
        }
        for revoked in crl.iter_revoked_certificates() {
            for ext in revoked.extensions() {
                let oid = ext.oid.to_id_string();
                if ext.critical && !UNDERSTOOD_CRITICAL_CRL_ENTRY.contains(&oid.as_str()) {
                    return Err(unusable(&format!(
                        "unsupported critical entry extension {oid}"
                    )));
                }
            }
            // Revocation is final: a listed serial is revoked whatever the CRL's age.
            if revoked.user_certificate == cert.tbs_certificate.serial {
                return Err(ChainError::Revoked {
                    subject: subject(cert),
                });
            }
        }
        if crl.last_update() <= now && crl.next_update().is_some_and(|next| now <= next) {
            current = true;
        }
    }
    if !current {
        // fetch-crl stopped updating: revocations since then would go unseen.
        return Err(ChainError::CrlExpired {
            issuer: subject(issuer),
        });
    }
    Ok(())
}

fn check_crl_signature(
    crl: &CertificateRevocationList,
    issuer: &X509Certificate,
) -> Result<(), String> {
    let algorithm = crl.signature_algorithm.algorithm.to_id_string();
    if !ACCEPTED_SIGNATURES.contains(&algorithm.as_str()) {
        return Err(format!(
            "signed with algorithm {algorithm}, which is not accepted"
        ));
    }
    if let Ok(Some(ku)) = issuer.key_usage() {
        if !ku.value.crl_sign() {
            return Err("the CA's key usage does not allow signing CRLs".into());
        }
    }
    crl.verify_signature(issuer.public_key())
        .map_err(|_| "its signature does not verify".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_cert_info_forms() {
        // SEQUENCE { SEQUENCE { OID id-ppl-inheritAll } }
        let inherit = [
            0x30, 0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x15, 0x01,
        ];
        let info = parse_proxy_cert_info(&inherit).unwrap();
        assert_eq!(info.language, OID_PPL_INHERIT_ALL);
        assert_eq!(info.path_len, None);
        // SEQUENCE { INTEGER 3, SEQUENCE { OID id-ppl-independent, OCTET STRING "ab" } }
        let with_len = [
            0x30, 0x13, 0x02, 0x01, 0x03, 0x30, 0x0e, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05,
            0x07, 0x15, 0x02, 0x04, 0x02, b'a', b'b',
        ];
        let info = parse_proxy_cert_info(&with_len).unwrap();
        assert_eq!(info.language, OID_PPL_INDEPENDENT);
        assert_eq!(info.path_len, Some(3));
        // Truncated, trailing garbage, negative path length.
        assert!(parse_proxy_cert_info(&inherit[..10]).is_none());
        let mut trailing = inherit.to_vec();
        trailing.push(0);
        assert!(parse_proxy_cert_info(&trailing).is_none());
        let mut negative = with_len;
        negative[4] = 0xff;
        assert!(parse_proxy_cert_info(&negative).is_none());
    }

    #[test]
    fn der_lengths() {
        assert_eq!(
            der_element(&[0x04, 0x01, 0xaa]),
            Some((0x04, &[0xaa][..], &[][..]))
        );
        assert_eq!(
            der_element(&[0x04, 0x81, 0x01, 0xaa, 0xbb]).map(|e| e.1),
            Some(&[0xaa][..])
        );
        assert!(der_element(&[0x04, 0x80]).is_none());
        assert!(der_element(&[0x04, 0x05, 0x00]).is_none());
        assert!(der_element(&[0x1f, 0x01, 0x00]).is_none());
    }
}
