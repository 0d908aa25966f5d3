//! The front door end to end: a real stratusd serving HTTPS on a loopback port, a PKI made by
//! the `openssl` command (CA directory with CRL, user certificates, RFC 3820 and legacy
//! proxies), a real OpenLDAP server, HTTPS requests from a rustls client and from Python's ssl.

#[path = "../common/mod.rs"]
mod common;
mod https;
mod pki;
mod slapd;

use common::*;
use https::{basic, call_body, Answer, Https};
use pki::{Credential, Pki, JOHN_USER};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PLACEHOLDER: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki::create(&temp_dir("pki")))
}

const PASSWORDS: &str = "# one-proxy's login-pswd.properties\n\
alice=s3cret,cloud-access\n\
bob=MD5:16e4112d526df4757d3c8b87983b4e56,cloud-access\n\
me=CRYPT:mepY6iEy6MJ4g,cloud-access\n\
jane\\ doe@example.org=pw,cloud-access\n\
guest=pw,other-role\n\
oneadmin=password,cloud-access\n";

struct FrontDoor {
    daemon: Daemon,
    https: SocketAddr,
}

impl FrontDoor {
    fn start(tag: &str, extra: &[&str]) -> FrontDoor {
        let pki = pki();
        let port = free_port();
        let https: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let dir = temp_dir(tag);
        let passwords = dir.join("login-pswd.properties");
        std::fs::write(&passwords, PASSWORDS).unwrap();
        let mut args: Vec<String> = vec![
            "--frontdoor-listen".into(),
            https.to_string(),
            "--tls-cert".into(),
            pki.server_cert.display().to_string(),
            "--tls-key".into(),
            pki.server_key.display().to_string(),
            "--log-level".into(),
            "info,stratusd=debug".into(),
        ];
        if !extra.contains(&"--no-password-file") {
            args.push("--password-file".into());
            args.push(passwords.display().to_string());
        }
        args.extend(
            extra
                .iter()
                .filter(|a| **a != "--no-password-file")
                .map(|a| a.to_string()),
        );
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let daemon = Daemon::start_in(dir, &refs);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(https).is_err() {
            assert!(Instant::now() < deadline, "the front door did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        FrontDoor { daemon, https }
    }

    fn connect(&self, cert: Option<&Credential>) -> Https {
        Https::connect(self.https, &pki().ca_cert, cert)
    }

    fn log(&self) -> String {
        read_file(&self.daemon.dir.join("daemon.log"))
    }

    /// Names of the users the core knows, read over loopback /RPC2 as oneadmin.
    fn user_names(&self) -> Vec<String> {
        let doc = unescape(&self.daemon.client().call("one.userpool.info", &[s(ADMIN)]));
        doc.split("<NAME>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</NAME>").map(|(n, _)| n.to_string()))
            .collect()
    }
}

/// `one.user.info -1` through the front door: (status, NAME, ID) of the caller.
fn whoami(conn: &mut Https, path: &str, headers: &[(&str, &str)], session: &str) -> Answer {
    conn.request(
        "POST",
        path,
        headers,
        &call_body("one.user.info", &[session, "-1"]),
    )
    .expect("an HTTP answer")
}

fn name_of(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let doc = unescape(&answer.body);
    assert!(doc.contains("<boolean>1</boolean>"), "{doc}");
    field(&doc, "NAME").unwrap_or_default()
}

#[test]
fn password_door_runs_calls_as_the_basic_user() {
    let door = FrontDoor::start("fd-pswd", &[]);
    let mut conn = door.connect(None);
    // The client's own session string is ignored: alice asks as "oneadmin:password".
    let alice = basic("alice", "s3cret");
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &alice)],
        ADMIN,
    );
    assert_eq!(name_of(&answer), "alice");
    let doc = unescape(&answer.body);
    assert_eq!(field(&doc, "AUTH_DRIVER").as_deref(), Some("dummy"));
    assert_eq!(field(&doc, "GNAME").as_deref(), Some("users"));
    assert_eq!(field(&doc, "PASSWORD").as_deref(), Some(PLACEHOLDER));
    // Same keep-alive connection, the 14.x path, the MD5: and CRYPT: forms.
    let answer = whoami(
        &mut conn,
        "/one-proxy/pswd/xmlrpc",
        &[("Authorization", &basic("bob", "mypswd"))],
        "bob:mypswd",
    );
    assert_eq!(name_of(&answer), "bob");
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &basic("me", "mypswd"))],
        "me:mypswd",
    );
    assert_eq!(name_of(&answer), "me");
    // User names are URL-encoded as Java's URLEncoder does.
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &basic("jane doe@example.org", "pw"))],
        "x:y",
    );
    assert_eq!(name_of(&answer), "jane+doe%40example.org");
    // oneadmin keeps its identity (its password is checked by the core, as on /RPC2).
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &basic("oneadmin", "password"))],
        "dummy:pass",
    );
    assert_eq!(name_of(&answer), "oneadmin");
    assert_eq!(field(&unescape(&answer.body), "ID").as_deref(), Some("0"));
    // A multicall cannot smuggle another session in: the inner call runs as alice too.
    let multicall = "<?xml version='1.0'?><methodCall><methodName>system.multicall</methodName>\
        <params><param><value><array><data><value><struct>\
        <member><name>methodName</name><value><string>one.user.info</string></value></member>\
        <member><name>params</name><value><array><data>\
        <value><string>oneadmin:password</string></value><value><int>0</int></value>\
        </data></array></value></member></struct></value></data></array></value></param>\
        </params></methodCall>";
    let answer = conn
        .request(
            "POST",
            "/pswd/xmlrpc",
            &[("Authorization", &alice)],
            multicall,
        )
        .unwrap();
    let doc = unescape(&answer.body);
    assert!(
        doc.contains("Not authorized to perform USE USER [0]"),
        "alice must not read oneadmin through a multicall: {doc}"
    );
    assert!(!doc.contains("<NAME>oneadmin</NAME>"), "{doc}");
    // Each forwarded call is logged as one-proxy did, never with oneadmin's password.
    std::thread::sleep(Duration::from_millis(200));
    let log = door.log();
    assert!(
        log.contains(&format!("forwarding request from alice:{PLACEHOLDER}")),
        "{log}"
    );
    assert!(
        log.contains("forwarding request from oneadmin:********"),
        "{log}"
    );
    assert!(!log.contains("oneadmin:password"), "{log}");
    // Plain /RPC2 on loopback keeps working.
    let mut plain = door.daemon.client();
    assert!(plain
        .call("one.user.info", &[s(ADMIN), i(0)])
        .contains("<boolean>1</boolean>"));
}

#[test]
fn password_door_refuses_wrong_credentials_and_creates_nothing() {
    let door = FrontDoor::start("fd-refuse", &[]);
    let before = door.user_names();
    let mut conn = door.connect(None);
    let cases: [(&str, Vec<(&str, String)>); 5] = [
        ("no credentials", vec![]),
        (
            "wrong password",
            vec![("Authorization", basic("alice", "nope"))],
        ),
        (
            "unknown user",
            vec![("Authorization", basic("mallory", "s3cret"))],
        ),
        (
            "empty password",
            vec![("Authorization", basic("alice", ""))],
        ),
        (
            "not Basic",
            vec![("Authorization", "Bearer abc".to_string())],
        ),
    ];
    for (what, headers) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = whoami(&mut conn, "/pswd/xmlrpc", &headers, "mallory:x");
        assert_eq!(answer.status, 401, "{what}");
        assert_eq!(
            answer.header("WWW-Authenticate"),
            Some("Basic realm=\"StratusLab Password Realm\""),
            "{what}"
        );
    }
    // Authenticated but without the cloud-access role: forbidden, as Jetty answered.
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &basic("guest", "pw"))],
        "guest:pw",
    );
    assert_eq!(answer.status, 403);
    // No certificate door without --ca-dir; unknown paths.
    let answer = whoami(&mut conn, "/cert/xmlrpc", &[], "dummy:pass");
    assert_eq!(answer.status, 403);
    let answer = whoami(&mut conn, "/RPC2", &[], ADMIN);
    assert_eq!(answer.status, 404);
    assert_eq!(door.user_names(), before, "no user was created");
    // An edited password file is used without restart.
    let file = door.daemon.dir.join("login-pswd.properties");
    std::fs::write(&file, format!("{PASSWORDS}mallory=s3cret,cloud-access\n")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &basic("mallory", "s3cret"))],
        "x:y",
    );
    assert_eq!(name_of(&answer), "mallory");
}

#[test]
fn transport_limits() {
    let door = FrontDoor::start("fd-limits", &[]);
    let alice = basic("alice", "s3cret");
    // An oversized header is refused (431) before anything is dispatched.
    let mut conn = door.connect(None);
    let huge = "x".repeat(64 * 1024);
    match conn.request(
        "POST",
        "/pswd/xmlrpc",
        &[("Authorization", &alice), ("X-Padding", &huge)],
        &call_body("one.user.info", &["x:y", "-1"]),
    ) {
        Ok(answer) => assert_eq!(answer.status, 431, "{}", answer.body),
        Err(e) => assert!(!e.is_empty()),
    }
    assert!(!door.user_names().contains(&"alice".to_string()));
    // GET is not a call; an empty body gets oned's 400 page.
    let mut conn = door.connect(None);
    let answer = conn
        .request("GET", "/pswd/xmlrpc", &[("Authorization", &alice)], "")
        .unwrap();
    assert_eq!(answer.status, 405);
    let answer = conn
        .request("POST", "/pswd/xmlrpc", &[("Authorization", &alice)], "")
        .unwrap();
    assert_eq!(answer.status, 400);
    // Many calls on one keep-alive connection.
    for _ in 0..20 {
        let answer = whoami(
            &mut conn,
            "/pswd/xmlrpc",
            &[("Authorization", &alice)],
            "x:y",
        );
        assert_eq!(name_of(&answer), "alice");
    }
}

#[test]
fn certificate_door_maps_certificates_and_proxies_to_the_end_entity() {
    let pki = pki();
    let door = FrontDoor::start(
        "fd-cert",
        &[
            "--ca-dir",
            &pki.ca_dir.display().to_string(),
            "--allowed-dn-file",
            &pki.allowed_dn_file.display().to_string(),
        ],
    );
    for (what, cred) in [
        ("end-entity certificate", &pki.john),
        ("RFC 3820 proxy", &pki.john_rfc_proxy),
        ("legacy Globus proxy", &pki.john_legacy_proxy),
        ("proxy of a proxy", &pki.john_proxy_of_proxy),
    ] {
        let mut conn = door.connect(Some(cred));
        // The certificate connector sends the constant session `dummy:pass`.
        let answer = whoami(&mut conn, "/cert/xmlrpc", &[], "dummy:pass");
        assert_eq!(name_of(&answer), JOHN_USER, "{what}");
        let answer = whoami(&mut conn, "/one-proxy/cert/xmlrpc", &[], "dummy:pass");
        assert_eq!(name_of(&answer), JOHN_USER, "{what}");
    }
    let john: Vec<String> = door
        .user_names()
        .into_iter()
        .filter(|n| n.contains("John"))
        .collect();
    assert_eq!(
        john,
        [JOHN_USER],
        "one user for the certificate and its proxies"
    );
    assert!(door.log().contains(&format!(
        "forwarding request from {JOHN_USER}:{PLACEHOLDER}"
    )));

    // A connection without certificate: /pswd works, /cert is refused.
    let mut conn = door.connect(None);
    let answer = whoami(&mut conn, "/cert/xmlrpc", &[], "dummy:pass");
    assert_eq!(answer.status, 403);
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &basic("alice", "s3cret"))],
        "x:y",
    );
    assert_eq!(name_of(&answer), "alice");
    // A certificate does not stand in for a password on /pswd.
    let mut conn = door.connect(Some(&pki.john));
    let answer = whoami(&mut conn, "/pswd/xmlrpc", &[], "dummy:pass");
    assert_eq!(answer.status, 401);

    // Verified certificates whose DN the list does not put in cloud-access.
    for (what, cred) in [
        ("listed without cloud-access", &pki.not_in_role),
        ("not listed", &pki.not_listed),
    ] {
        let mut conn = door.connect(Some(cred));
        let answer = whoami(&mut conn, "/cert/xmlrpc", &[], "dummy:pass");
        assert_eq!(answer.status, 403, "{what}");
    }
}

#[test]
fn certificate_door_refuses_bad_certificates() {
    let pki = pki();
    let door = FrontDoor::start(
        "fd-badcert",
        &[
            "--ca-dir",
            &pki.ca_dir.display().to_string(),
            "--allowed-dn-file",
            &pki.allowed_dn_file.display().to_string(),
        ],
    );
    let before = door.user_names();
    for (what, cred, alert) in [
        ("expired", &pki.expired, "CertificateExpired"),
        ("untrusted CA", &pki.untrusted, "UnknownCA"),
        ("revoked", &pki.revoked, "CertificateRevoked"),
        (
            "proxy of a revoked certificate",
            &pki.revoked_proxy,
            "CertificateRevoked",
        ),
        (
            "independent proxy",
            &pki.john_independent_proxy,
            "CertificateUnknown",
        ),
    ] {
        match door.connect(Some(cred)).probe() {
            Ok(()) => panic!("{what}: the handshake was accepted"),
            Err(e) => assert!(e.contains(alert), "{what}: {e}"),
        }
    }
    // A proxy presented without the certificate that issued it.
    let orphan = Credential {
        chain: vec![pki.john_rfc_proxy.chain[0].clone()],
        key: pki.john_rfc_proxy.key.clone(),
    };
    let refused = door.connect(Some(&orphan)).probe();
    assert!(refused.is_err(), "a proxy without its issuer");
    // The good certificate passes the same probe.
    assert_eq!(door.connect(Some(&pki.john)).probe(), Ok(()));
    assert_eq!(door.user_names(), before, "no user was created");
    let log = door.log();
    assert!(log.contains("client certificate refused"), "{log}");
}

#[test]
fn certificate_door_without_a_dn_list_admits_what_the_cas_vouch_for() {
    let pki = pki();
    let door = FrontDoor::start(
        "fd-nolist",
        &[
            "--no-password-file",
            "--ca-dir",
            &pki.ca_dir.display().to_string(),
        ],
    );
    let mut conn = door.connect(Some(&pki.not_listed));
    let answer = whoami(&mut conn, "/cert/xmlrpc", &[], "dummy:pass");
    assert_eq!(
        name_of(&answer),
        "CN%3DNot+Listed%2COU%3DTesting%2CO%3DStratusLab%2CC%3DEU"
    );
    // Nothing is accepted on /pswd without a password source.
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &basic("alice", "s3cret"))],
        "x:y",
    );
    assert_eq!(answer.status, 401);
}

#[test]
fn ldap_directory_checks_passwords_and_the_access_group() {
    let dir = temp_dir("slapd");
    let ldap = slapd::Slapd::start(&dir, free_port());
    let door = FrontDoor::start(
        "fd-ldap",
        &[
            "--ldap-url",
            &ldap.url,
            "--ldap-user-dn",
            "uid={user},ou=users,o=cloud",
            "--ldap-group-dn",
            "cn=cloud-access,ou=groups,o=cloud",
        ],
    );
    let before = door.user_names();
    let mut conn = door.connect(None);
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &basic("jsmith", "ldap-secret-1"))],
        "jsmith:ldap-secret-1",
    );
    assert_eq!(name_of(&answer), "jsmith");
    for (what, user, password, status) in [
        ("wrong password", "jsmith", "wrong", 401),
        ("unknown user", "nobody", "ldap-secret-1", 401),
        ("empty password (anonymous bind)", "jsmith", "", 401),
        (
            "DN injection",
            "jsmith,ou=users,o=cloud",
            "ldap-secret-1",
            401,
        ),
        ("not in cn=cloud-access", "outsider", "ldap-secret-2", 403),
    ] {
        let answer = whoami(
            &mut conn,
            "/pswd/xmlrpc",
            &[("Authorization", &basic(user, password))],
            "x:y",
        );
        assert_eq!(answer.status, status, "{what}");
    }
    // The password file still comes first.
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &basic("alice", "s3cret"))],
        "x:y",
    );
    assert_eq!(name_of(&answer), "alice");
    let mut after = door.user_names();
    after.retain(|n| !before.contains(n));
    after.sort();
    assert_eq!(after, ["alice", "jsmith"]);
    drop(ldap);
    // With the directory gone, LDAP users get 503 and nothing is created.
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &basic("outsider", "ldap-secret-2"))],
        "x:y",
    );
    assert_eq!(answer.status, 503);
}

/// Idle connections are closed after `--frontdoor-idle-timeout`, and at shutdown, with a TLS
/// close_notify first: Python 2.7's xmlrpclib keeps its connection alive between calls and
/// resends a request when the server ended that connection in order, but a close without
/// close_notify is an `ssl.SSLError` there (OpenSSL 3: "unexpected eof while reading").
#[test]
fn idle_and_shut_down_connections_end_with_close_notify() {
    let mut door = FrontDoor::start("fd-idle", &["--frontdoor-idle-timeout", "1"]);
    let alice = basic("alice", "s3cret");
    let mut conn = door.connect(None);
    let answer = whoami(
        &mut conn,
        "/pswd/xmlrpc",
        &[("Authorization", &alice)],
        "x:y",
    );
    assert_eq!(name_of(&answer), "alice");
    let started = Instant::now();
    assert_eq!(
        conn.read_end(Duration::from_secs(10)),
        Ok(()),
        "after a request"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "closed after {waited:?}, the idle timeout is 1 s"
    );
    // A connection that never sends a request is ended the same way.
    let mut silent = door.connect(None);
    assert_eq!(
        silent.read_end(Duration::from_secs(10)),
        Ok(()),
        "no request"
    );
    // A busy connection is not idle: requests 0.5 s apart keep it open past the timeout.
    let mut busy = door.connect(None);
    for _ in 0..4 {
        let answer = whoami(
            &mut busy,
            "/pswd/xmlrpc",
            &[("Authorization", &alice)],
            "x:y",
        );
        assert_eq!(name_of(&answer), "alice");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Shutting down ends open connections in order too.
    door.daemon.stop();
    assert_eq!(
        busy.read_end(Duration::from_secs(10)),
        Ok(()),
        "at shutdown"
    );
}

/// The StratusLab client is Python: its ssl module must agree with the front door on
/// TLS 1.2 (the highest Python 2.7 sites had) and on TLS 1.3.
#[test]
fn python_ssl_talks_to_the_front_door() {
    let Some(python) = ["python3", "python"]
        .iter()
        .find(|p| std::process::Command::new(p).arg("-V").output().is_ok())
    else {
        panic!("no python interpreter: install python3 (scripts/setup.sh --test does)");
    };
    let pki = pki();
    let door = FrontDoor::start(
        "fd-python",
        &["--ca-dir", &pki.ca_dir.display().to_string()],
    );
    let script = r#"
import base64, ssl, sys, http.client
port, ca, cert, key, version = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
ctx.maximum_version = getattr(ssl.TLSVersion, version)
if cert != "-":
    ctx.load_cert_chain(cert, key)
body = ("<?xml version='1.0'?>\n<methodCall>\n<methodName>one.user.info</methodName>\n"
        "<params>\n<param>\n<value><string>dummy:pass</string></value>\n</param>\n"
        "<param>\n<value><int>-1</int></value>\n</param>\n</params>\n</methodCall>\n")
conn = http.client.HTTPSConnection("localhost", int(port), context=ctx)
path = "/cert/xmlrpc" if cert != "-" else "/pswd/xmlrpc"
headers = {"Content-Type": "text/xml", "User-Agent": "xmlrpclib.py/1.0.1"}
if cert == "-":
    headers["Authorization"] = "Basic " + base64.b64encode(b"alice:s3cret").decode()
conn.request("POST", path, body, headers)
resp = conn.getresponse()
print(resp.status, conn.sock.version(), conn.sock.cipher()[0])
print(resp.read().decode())
"#;
    let script_file: PathBuf = door.daemon.dir.join("client.py");
    std::fs::write(&script_file, script).unwrap();
    let port = door.https.port().to_string();
    // The proxy file of a grid user: proxy certificate, its key, the user certificate.
    let proxy_file = door.daemon.dir.join("x509up");
    let mut proxy = String::new();
    for part in [
        &pki.john_rfc_proxy.chain[0],
        &pki.john_rfc_proxy.key,
        &pki.john_rfc_proxy.chain[1],
    ] {
        proxy.push_str(&read_file(part));
    }
    std::fs::write(&proxy_file, proxy).unwrap();
    for version in ["TLSv1_2", "TLSv1_3"] {
        for (cert, expect) in [("-", "alice"), (proxy_file.to_str().unwrap(), JOHN_USER)] {
            let out = std::process::Command::new(python)
                .arg(&script_file)
                .args([&port, pki.ca_cert.to_str().unwrap(), cert, cert, version])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{version}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let first = stdout.lines().next().unwrap_or_default();
            assert!(first.starts_with("200 "), "{version}: {stdout}");
            assert!(first.contains(&version.replace('_', ".")), "{stdout}");
            assert!(
                unescape(&stdout).contains(&format!("<NAME>{expect}</NAME>")),
                "{stdout}"
            );
        }
    }
}

/// Configuration mistakes stop the start with a message naming what is missing.
#[test]
fn bad_front_door_configuration_stops_the_start() {
    let pki = pki();
    let cert = pki.server_cert.display().to_string();
    let key = pki.server_key.display().to_string();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let cases: [(&[&str], &str); 5] = [
        (&["--frontdoor-listen", &listen], "--tls-cert"),
        (
            &[
                "--frontdoor-listen",
                &listen,
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--frontdoor-idle-timeout",
                "0",
            ],
            "--frontdoor-idle-timeout",
        ),
        (
            &[
                "--frontdoor-listen",
                &listen,
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--ldap-url",
                "ldap://127.0.0.1:1",
            ],
            "--ldap-user-dn",
        ),
        (
            &[
                "--frontdoor-listen",
                &listen,
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--ldap-url",
                "ldap://127.0.0.1:1",
                "--ldap-user-dn",
                "uid=x,o=cloud",
            ],
            "{user}",
        ),
        (
            &[
                "--frontdoor-listen",
                &listen,
                "--tls-cert",
                &cert,
                "--tls-key",
                &cert,
            ],
            "private key",
        ),
    ];
    for (args, expect) in cases {
        let dir = temp_dir("fd-badconf");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratusd"))
            .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
            .arg("--data-dir")
            .arg(&dir)
            .args(args)
            .env("ONE_AUTH", dir.join("one_auth"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}
