//! Certificate authentication of `/cert`: the chain the TLS layer accepted is verified again
//! for each request (a CRL may have arrived since the handshake, and resumed TLS sessions skip
//! the handshake check), then the end-entity subject is looked up in the allowed-DN list.

use super::allowed_dn::AllowedDns;
use super::chain::verify_chain;
use super::reloading::Reloading;
use super::session::Identity;
use super::trust_store::CaDirectory;
use super::CLOUD_ACCESS_ROLE;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use x509_parser::time::ASN1Time;

/// The verdict on a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertVerdict {
    Granted(Identity),
    /// The connection carries no client certificate.
    NoCertificate,
    /// The chain does not verify (any more).
    Refused(String),
    /// Verified, but not given the `cloud-access` role by the allowed-DN list.
    NotInRole(String),
}

pub struct CertAuthority {
    cas: Arc<CaDirectory>,
    allowed: Option<Reloading<AllowedDns>>,
}

impl CertAuthority {
    /// Without an allowed-DN list every subject the CA directory vouches for is in the role.
    pub fn new(cas: Arc<CaDirectory>, allowed: Option<Reloading<AllowedDns>>) -> Self {
        CertAuthority { cas, allowed }
    }

    pub fn identify(&self, chain: &[CertificateDer<'static>]) -> CertVerdict {
        let Some((leaf, rest)) = chain.split_first() else {
            return CertVerdict::NoCertificate;
        };
        let presented: Vec<&[u8]> = rest.iter().map(|c| c.as_ref()).collect();
        let verified = match verify_chain(&self.cas.current(), leaf, &presented, ASN1Time::now()) {
            Ok(v) => v,
            Err(e) => return CertVerdict::Refused(e.to_string()),
        };
        if let Some(list) = &self.allowed {
            let list = list.current();
            let in_role = list
                .roles(&verified.subject_key)
                .is_some_and(|roles| roles.iter().any(|r| r == CLOUD_ACCESS_ROLE));
            if !in_role {
                return CertVerdict::NotInRole(verified.subject_dn);
            }
        }
        CertVerdict::Granted(Identity::Certificate {
            dn: verified.subject_dn,
        })
    }
}
