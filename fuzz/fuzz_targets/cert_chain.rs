//! The front door's certificate and proxy chain verifier, against a trust store of one CA
//! (`seeds/cert_chain_ca`, made by `make_seeds.sh`). The input is the client's chain as the
//! TLS layer hands it over: a count byte, then that many certificates (leaf first), each a
//! big-endian u16 length and DER.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use stratusd::frontdoor::chain::verify_chain;
use stratusd::frontdoor::trust_store::TrustStore;
use x509_parser::time::ASN1Time;

/// 2028-01-15: inside the validity of the seed certificates (December 2026 + 10 years).
const NOW: i64 = 1_831_500_000;

fn store() -> &'static TrustStore {
    static STORE: OnceLock<TrustStore> = OnceLock::new();
    STORE.get_or_init(|| {
        TrustStore::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/seeds/cert_chain_ca"
        )))
        .expect("the seed CA directory")
    })
}

fn split(mut data: &[u8]) -> Option<Vec<&[u8]>> {
    let (&count, rest) = data.split_first()?;
    data = rest;
    let mut certs = Vec::new();
    for _ in 0..(count % 8).max(1) {
        if data.len() < 2 {
            return None;
        }
        let len = u16::from_be_bytes([data[0], data[1]]) as usize;
        let body = data.get(2..2 + len)?;
        certs.push(body);
        data = &data[2 + len..];
    }
    Some(certs)
}

fuzz_target!(|data: &[u8]| {
    let Some(certs) = split(data) else {
        return;
    };
    let Ok(now) = ASN1Time::from_timestamp(NOW) else {
        return;
    };
    let (leaf, presented) = certs.split_first().expect("at least one");
    let presented: Vec<&[u8]> = presented.to_vec();
    if let Ok(chain) = verify_chain(store(), leaf, &presented, now) {
        assert!(!chain.subject_dn.is_empty());
    }
});
