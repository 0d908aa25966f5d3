//! A real OpenLDAP server (Debian package `slapd`) on a free loopback port with a temporary
//! database, holding StratusLab's directory layout: users under `ou=users,o=cloud`, the
//! `cn=cloud-access` group under `ou=groups,o=cloud`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Slapd {
    pub url: String,
    child: Child,
}

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";

const DATA: &str = "dn: o=cloud
objectClass: organization
o: cloud

dn: ou=users,o=cloud
objectClass: organizationalUnit
ou: users

dn: ou=groups,o=cloud
objectClass: organizationalUnit
ou: groups

dn: uid=jsmith,ou=users,o=cloud
objectClass: inetOrgPerson
uid: jsmith
cn: John Smith
sn: Smith
userPassword: ldap-secret-1

dn: uid=outsider,ou=users,o=cloud
objectClass: inetOrgPerson
uid: outsider
cn: Out Sider
sn: Sider
userPassword: ldap-secret-2

dn: cn=cloud-access,ou=groups,o=cloud
objectClass: groupOfUniqueNames
cn: cloud-access
uniqueMember: uid=jsmith,ou=users,o=cloud
";

fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
database mdb
maxsize 10485760
suffix \"o=cloud\"
rootdn \"cn=admin,o=cloud\"
rootpw admin-secret
directory {d}/db
access to attrs=userPassword by anonymous auth by self read by * none
access to * by users read by * none
"
    )
}

impl Slapd {
    /// Starts slapd; panics with the package to install when it is absent.
    pub fn start(dir: &Path, port: u16) -> Slapd {
        assert!(
            Path::new(SLAPD).exists() && Path::new(SLAPADD).exists(),
            "the LDAP tests need OpenLDAP's server: install the Debian package `slapd` \
             (scripts/setup.sh --test does)"
        );
        std::fs::create_dir_all(dir.join("db")).unwrap();
        let conf: PathBuf = dir.join("slapd.conf");
        std::fs::write(&conf, config(dir)).unwrap();
        std::fs::write(dir.join("data.ldif"), DATA).unwrap();
        let out = Command::new(SLAPADD)
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(dir.join("data.ldif"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = format!("ldap://127.0.0.1:{port}/");
        let log = std::fs::File::create(dir.join("slapd.log")).unwrap();
        // -d keeps slapd in the foreground, as our child, so that it is ended with the test.
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(&url)
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "slapd did not start; see {}",
                dir.join("slapd.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Slapd { url, child }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
