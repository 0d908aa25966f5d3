//! A real MariaDB server (Debian's `mariadb-server`) for one test: its own data directory,
//! socket and loopback port under a temporary directory, stopped and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct MariaDb {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

const SERVER: &str = "/usr/sbin/mariadbd";
const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";
const CLIENT: &str = "/usr/bin/mariadb";

fn require(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install MariaDB with `scripts/setup.sh --test` \
         (apt-get install mariadb-server mariadb-client)"
    );
}

impl MariaDb {
    /// Initialises and starts a server; `oneadmin`/`oneadmin` may use every database.
    pub fn start(tag: &str) -> MariaDb {
        for p in [SERVER, INSTALL_DB, CLIENT] {
            require(p);
        }
        let dir = super::temp_dir(&format!("mariadb-{tag}"));
        let data = dir.join("data");
        let out = Command::new(INSTALL_DB)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .output()
            .expect("mariadb-install-db runs");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = super::free_port();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let child = Command::new(SERVER)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("server.pid").display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
                "--innodb-log-file-size=16M",
                "--max-allowed-packet=64M",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("mariadbd runs");
        let mut db = MariaDb {
            dir,
            port,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if db.try_sql("", "SELECT 1").is_ok() {
                break;
            }
            if let Some(Ok(Some(status))) = db.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "mariadbd exited ({status}): {}",
                    super::read_file(&db.dir.join("server.log"))
                );
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd did not start: {}",
                super::read_file(&db.dir.join("server.log"))
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        db.sql(
            "",
            "CREATE USER 'oneadmin'@'localhost' IDENTIFIED BY 'oneadmin'; \
             CREATE USER 'oneadmin'@'127.0.0.1' IDENTIFIED BY 'oneadmin'; \
             GRANT ALL PRIVILEGES ON *.* TO 'oneadmin'@'localhost'; \
             GRANT ALL PRIVILEGES ON *.* TO 'oneadmin'@'127.0.0.1';",
        );
        db
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// `mysql://oneadmin:oneadmin@127.0.0.1:PORT/DB`
    pub fn url(&self, database: &str) -> String {
        format!(
            "mysql://oneadmin:oneadmin@127.0.0.1:{}/{database}",
            self.port
        )
    }

    fn client(&self, database: &str) -> Command {
        let mut c = Command::new(CLIENT);
        c.arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-u", "root", "--batch", "--skip-column-names"]);
        if !database.is_empty() {
            c.arg(database);
        }
        c
    }

    pub fn try_sql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = self
            .client(database)
            .arg("-e")
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs SQL as root; the output in batch form (tab-separated rows).
    pub fn sql(&self, database: &str, sql: &str) -> String {
        self.try_sql(database, sql)
            .unwrap_or_else(|e| panic!("SQL {sql:?} failed: {e}"))
    }

    /// Loads a `mysqldump` file into a new database. The sandbox-mode comment newer dump tools
    /// write on the first line is dropped, as a loader that does not know it must.
    pub fn load_dump(&self, database: &str, dump: &Path) {
        self.sql("", &format!("CREATE DATABASE `{database}`"));
        let text = std::fs::read_to_string(dump).unwrap();
        let body = match text.split_once('\n') {
            Some((first, rest)) if first.starts_with("/*M!999999") => rest,
            _ => text.as_str(),
        };
        let mut child = self
            .client(database)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(body.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "loading {} failed: {}",
            dump.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every row of a table, sorted, as the client prints them.
    pub fn rows(&self, database: &str, table: &str) -> Vec<String> {
        let mut rows: Vec<String> = self
            .sql(database, &format!("SELECT * FROM `{table}`"))
            .lines()
            .map(str::to_string)
            .collect();
        rows.sort();
        rows
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM: a clean shutdown, then the directory goes.
            let _ = Command::new("kill")
                .arg("-15")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
