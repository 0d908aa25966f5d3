//! A throw-away grid PKI made with the `openssl` command, as a site makes one: a trusted CA
//! with its `<hash>.0` / `<hash>.r0` directory, a server certificate, user certificates (good,
//! expired, revoked, not listed, from an untrusted CA) and proxies (RFC 3820, legacy Globus,
//! a proxy of a proxy, a proxy of the revoked certificate).

use std::path::{Path, PathBuf};
use std::process::Command;

pub const JOHN: &str = "/C=EU/O=StratusLab/OU=Testing/CN=John Smith";
pub const JOHN_USER: &str = "CN%3DJohn+Smith%2COU%3DTesting%2CO%3DStratusLab%2CC%3DEU";

const CA_CONFIG: &str = "[ req ]
distinguished_name = req_dn
[ req_dn ]
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
serial = ./serial
crlnumber = ./crlnumber
certificate = ./ca.pem
private_key = ./ca.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = policy_any
unique_subject = no
preserve = yes
email_in_dn = no
[ policy_any ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ usr_cert ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
[ server_cert ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
# Python 2.7's ssl.match_hostname knows no IP addresses: it matches an endpoint such as
# https://127.0.0.1:2634/ against the DNS names only, so the address is one of them too.
subjectAltName = DNS:localhost,DNS:127.0.0.1,IP:127.0.0.1
[ rfc_proxy ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
proxyCertInfo = critical,language:id-ppl-inheritAll
[ legacy_proxy ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
[ independent_proxy ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
proxyCertInfo = critical,language:id-ppl-independent
";

/// A certificate chain (leaf first, as the client sends it) and the leaf's key.
#[derive(Clone, Debug)]
pub struct Credential {
    pub chain: Vec<PathBuf>,
    pub key: PathBuf,
}

pub struct Pki {
    pub ca_dir: PathBuf,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub john: Credential,
    pub john_rfc_proxy: Credential,
    pub john_legacy_proxy: Credential,
    pub john_proxy_of_proxy: Credential,
    pub john_independent_proxy: Credential,
    pub expired: Credential,
    pub revoked: Credential,
    pub revoked_proxy: Credential,
    pub not_in_role: Credential,
    pub not_listed: Credential,
    pub untrusted: Credential,
    pub allowed_dn_file: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command runs (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A key and a CSR for `subject`.
fn request(dir: &Path, name: &str, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
            "-config",
            "ca.cnf",
        ],
    );
}

/// A certificate from the trusted CA (`openssl ca`, which keeps the index CRLs come from).
fn issue(dir: &Path, name: &str, subject: &str, extensions: &str, dates: Option<(&str, &str)>) {
    request(dir, name, subject);
    let (csr, pem) = (format!("{name}.csr"), format!("{name}.pem"));
    let mut args = vec![
        "ca",
        "-batch",
        "-notext",
        "-config",
        "ca.cnf",
        "-extensions",
        extensions,
        "-in",
        &csr,
        "-out",
        &pem,
    ];
    if let Some((start, end)) = dates {
        args.extend(["-startdate", start, "-enddate", end]);
    }
    openssl(dir, &args);
}

/// A proxy of `issuer` (its subject with `/CN=<cn>` appended), signed with `issuer`'s key.
fn proxy(
    dir: &Path,
    name: &str,
    issuer: &str,
    issuer_subject: &str,
    cn: &str,
    ext: &str,
) -> String {
    let subject = format!("{issuer_subject}/CN={cn}");
    request(dir, name, &subject);
    let serial = if cn.bytes().all(|b| b.is_ascii_digit()) {
        cn
    } else {
        "4242"
    };
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{issuer}.pem"),
            "-CAkey",
            &format!("{issuer}.key"),
            "-set_serial",
            serial,
            "-days",
            "1",
            "-sha256",
            "-extfile",
            "ca.cnf",
            "-extensions",
            ext,
            "-out",
            &format!("{name}.pem"),
        ],
    );
    subject
}

impl Pki {
    pub fn create(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir.join("newcerts")).unwrap();
        std::fs::write(dir.join("ca.cnf"), CA_CONFIG).unwrap();
        std::fs::write(dir.join("index.txt"), "").unwrap();
        std::fs::write(dir.join("serial"), "1000\n").unwrap();
        std::fs::write(dir.join("crlnumber"), "1000\n").unwrap();
        let x509_ca = |name: &str, subject: &str| {
            openssl(
                dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.pem"),
                    "-days",
                    "365",
                    "-subj",
                    subject,
                    "-config",
                    "ca.cnf",
                    "-extensions",
                    "v3_ca",
                ],
            );
        };
        x509_ca("ca", "/C=EU/O=StratusLab/CN=Test CA");
        issue(dir, "server", "/CN=localhost", "server_cert", None);
        issue(dir, "john", JOHN, "usr_cert", None);
        issue(
            dir,
            "expired",
            "/C=EU/O=StratusLab/OU=Testing/CN=Old Timer",
            "usr_cert",
            Some(("20200101000000Z", "20210101000000Z")),
        );
        let revoked_subject = "/C=EU/O=StratusLab/OU=Testing/CN=Revoked Person";
        issue(dir, "revoked", revoked_subject, "usr_cert", None);
        issue(
            dir,
            "jane",
            "/C=EU/O=StratusLab/OU=Testing/CN=Jane Doe",
            "usr_cert",
            None,
        );
        issue(
            dir,
            "stranger",
            "/C=EU/O=StratusLab/OU=Testing/CN=Not Listed",
            "usr_cert",
            None,
        );
        openssl(dir, &["ca", "-config", "ca.cnf", "-revoke", "revoked.pem"]);
        openssl(
            dir,
            &["ca", "-config", "ca.cnf", "-gencrl", "-out", "crl.pem"],
        );

        let rfc = proxy(dir, "john_rfc", "john", JOHN, "123456789", "rfc_proxy");
        proxy(dir, "john_legacy", "john", JOHN, "proxy", "legacy_proxy");
        proxy(dir, "john_rfc2", "john_rfc", &rfc, "987654321", "rfc_proxy");
        proxy(
            dir,
            "john_indep",
            "john",
            JOHN,
            "55555",
            "independent_proxy",
        );
        proxy(
            dir,
            "revoked_rfc",
            "revoked",
            revoked_subject,
            "777777",
            "rfc_proxy",
        );

        // A CA nobody trusts, and a user of it with John's very name.
        x509_ca("other_ca", "/C=EU/O=Elsewhere/CN=Other CA");
        request(dir, "untrusted", JOHN);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "untrusted.csr",
                "-CA",
                "other_ca.pem",
                "-CAkey",
                "other_ca.key",
                "-set_serial",
                "77",
                "-days",
                "30",
                "-sha256",
                "-extfile",
                "ca.cnf",
                "-extensions",
                "usr_cert",
                "-out",
                "untrusted.pem",
            ],
        );

        // The grid directory: <hash>.0 and <hash>.r0, plus files that must be ignored.
        let ca_dir = dir.join("certificates");
        std::fs::create_dir_all(&ca_dir).unwrap();
        let hash = openssl(dir, &["x509", "-hash", "-noout", "-in", "ca.pem"]);
        std::fs::copy(dir.join("ca.pem"), ca_dir.join(format!("{hash}.0"))).unwrap();
        let crl_hash = openssl(dir, &["crl", "-hash", "-noout", "-in", "crl.pem"]);
        std::fs::copy(dir.join("crl.pem"), ca_dir.join(format!("{crl_hash}.r0"))).unwrap();
        std::fs::write(
            ca_dir.join(format!("{hash}.signing_policy")),
            "access_id_CA X509 '/C=EU/O=StratusLab/CN=Test CA'\n",
        )
        .unwrap();

        let allowed_dn_file = dir.join("login-cert.properties");
        std::fs::write(
            &allowed_dn_file,
            "#\n# Add entries for each valid certificate.\n#\n\
             \"CN=John Smith, OU=Testing, O=StratusLab, C=EU\" cloud-access\n\
             \"CN=Revoked Person, OU=Testing, O=StratusLab, C=EU\" cloud-access\n\
             \"CN=Old Timer, OU=Testing, O=StratusLab, C=EU\" cloud-access\n\
             \"CN=Jane Doe, OU=Testing, O=StratusLab, C=EU\" other-role\n",
        )
        .unwrap();

        let cred = |names: &[&str]| Credential {
            chain: names.iter().map(|n| dir.join(format!("{n}.pem"))).collect(),
            key: dir.join(format!("{}.key", names[0])),
        };
        Pki {
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            john: cred(&["john"]),
            john_rfc_proxy: cred(&["john_rfc", "john"]),
            john_legacy_proxy: cred(&["john_legacy", "john"]),
            john_proxy_of_proxy: cred(&["john_rfc2", "john_rfc", "john"]),
            john_independent_proxy: cred(&["john_indep", "john"]),
            expired: cred(&["expired"]),
            revoked: cred(&["revoked"]),
            revoked_proxy: cred(&["revoked_rfc", "revoked"]),
            not_in_role: cred(&["jane"]),
            not_listed: cred(&["stranger"]),
            untrusted: cred(&["untrusted"]),
            allowed_dn_file,
            ca_dir,
        }
    }
}
