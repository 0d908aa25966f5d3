//! The stratusd under test: started on a fresh data directory on a free loopback port, with
//! oneadmin's password `password` (the request bodies carry `oneadmin:password`).

use super::BenchError;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub addr: SocketAddr,
    pub pid: u32,
    child: Child,
}

fn free_port() -> Result<u16, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(BenchError::Connect)?;
    Ok(listener.local_addr().map_err(BenchError::Connect)?.port())
}

impl Daemon {
    /// Starts `binary serve` in `data_dir` (which must not hold a database yet).
    pub fn start(binary: &Path, data_dir: &Path) -> Result<Daemon, BenchError> {
        std::fs::create_dir_all(data_dir)?;
        if data_dir.join("stratusd.db").exists() {
            return Err(BenchError::Protocol(format!(
                "{} already holds a database; the benchmark needs a fresh one",
                data_dir.display()
            )));
        }
        let one_auth: PathBuf = data_dir.join("one_auth");
        std::fs::write(&one_auth, "oneadmin:password\n")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let log = std::fs::File::create(data_dir.join("stratusd.log"))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .env("ONE_AUTH", &one_auth)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| BenchError::Spawn(binary.display().to_string(), e))?;
        let pid = child.id();
        let mut daemon = Daemon { addr, pid, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                return Err(BenchError::Protocol(format!(
                    "stratusd exited ({status}); see {}",
                    data_dir.join("stratusd.log").display()
                )));
            }
            if Instant::now() > deadline {
                daemon.stop();
                return Err(BenchError::Protocol(
                    "stratusd did not start listening".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(daemon)
    }

    /// SIGTERM, then SIGKILL if it has not exited after 10 s.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}
