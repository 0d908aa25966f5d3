//! Running commands on nodes over SSH, as StratusLab's ssh transfer mode (and oned 3.2's
//! `tm_ssh`) did: one `ssh <node> '<script>'` per step, file contents streamed through the
//! connection's standard input or output. The program is the site's `[nodes] ssh_command`
//! (`ssh` by default, so the service account's `~/.ssh/config`, keys and known hosts apply, as
//! they did for oneadmin); a wrapper script may add `-F <config>`.
//!
//! Every script is POSIX shell run by the node's login shell. Everything put into one comes
//! through [`quote`]; node names are checked by [`check_target`] (a name starting with `-`
//! would be read as an ssh option).

use super::{mib, Reporter, Result, StorageError};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Standard error kept from a failed command (its last lines make the message).
const STDERR_LIMIT: usize = 16 * 1024;
/// Standard output a command may return (file contents never come this way).
const STDOUT_LIMIT: usize = 1024 * 1024;
const BUFFER: usize = 1024 * 1024;
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How stratusd reaches nodes.
#[derive(Debug, Clone)]
pub struct SshClient {
    program: String,
    connect_timeout: u64,
    /// Longest a short command (no file transfer) may run.
    command_timeout: Duration,
}

/// `s` as one word of a POSIX shell command line.
pub fn quote(s: &str) -> Result<String> {
    shlex::try_quote(s)
        .map(|q| q.into_owned())
        .map_err(|_| StorageError::BadValue(format!("cannot pass {s:?} to a node's shell")))
}

/// A path as one shell word.
pub fn quote_path(p: &std::path::Path) -> Result<String> {
    let s = p
        .to_str()
        .ok_or_else(|| StorageError::BadValue(format!("non UTF-8 path {}", p.display())))?;
    quote(s)
}

/// A node name usable as an ssh destination: a host name or address, optionally `user@`.
pub fn check_target(target: &str) -> Result<()> {
    let ok = !target.is_empty()
        && target.len() <= 255
        && !target.starts_with('-')
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | ':'));
    if ok {
        Ok(())
    } else {
        Err(StorageError::BadValue(format!(
            "{target:?} is not a node name stratusd can reach over SSH"
        )))
    }
}

/// Reads at most `limit` bytes of a stream, draining the rest so the writer never blocks.
fn read_bounded(mut from: impl Read, limit: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

fn last_lines(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(3);
    lines[start..].join("; ")
}

/// Reports bytes moved every few seconds, and the total at the end.
struct Progress<'a> {
    what: &'a str,
    report: Option<&'a Reporter<'a>>,
    started: Instant,
    last: Instant,
    bytes: u64,
}

impl<'a> Progress<'a> {
    fn new(what: &'a str, report: Option<&'a Reporter<'a>>) -> Self {
        Progress {
            what,
            report,
            started: Instant::now(),
            last: Instant::now(),
            bytes: 0,
        }
    }

    fn add(&mut self, n: usize) {
        self.bytes += n as u64;
        if self.last.elapsed() >= PROGRESS_EVERY {
            self.last = Instant::now();
            if let Some(r) = self.report {
                let rate = self.bytes as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
                r.info(&format!(
                    "{}: {} so far ({}/s)",
                    self.what,
                    mib(self.bytes),
                    mib(rate as u64)
                ));
            }
        }
    }

    fn done(&self) {
        if let Some(r) = self.report {
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            r.info(&format!(
                "{}: {} in {secs:.1} s ({}/s)",
                self.what,
                mib(self.bytes),
                mib((self.bytes as f64 / secs) as u64)
            ));
        }
    }
}

/// Copies `from` into `to` in large blocks, counting.
fn pump(from: &mut dyn Read, to: &mut dyn Write, progress: &mut Progress) -> std::io::Result<()> {
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return to.flush(),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        progress.add(n);
    }
}

/// A started ssh process whose standard error is collected on a thread.
struct Remote {
    child: Child,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    target: String,
}

impl Remote {
    /// Waits for the process; its standard error's last lines on failure.
    fn finish(mut self, what: &str) -> Result<()> {
        let status = self.child.wait().map_err(StorageError::io(format!(
            "{what} on {}: cannot wait for ssh",
            self.target
        )))?;
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        Err(remote_failure(&self.target, what, status.code(), &stderr))
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Only still running when an error cut a transfer short.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn remote_failure(target: &str, what: &str, code: Option<i32>, stderr: &[u8]) -> StorageError {
    let detail = last_lines(stderr);
    let detail = if detail.is_empty() {
        match code {
            Some(255) => "ssh could not reach the node".to_string(),
            Some(c) => format!("exit status {c}"),
            None => "killed".to_string(),
        }
    } else {
        detail
    };
    StorageError::Tool(format!("{what} on {target}: {detail}"))
}

impl SshClient {
    pub fn new(program: &str, connect_timeout: u64, command_timeout: Duration) -> Self {
        SshClient {
            program: program.to_string(),
            connect_timeout: connect_timeout.max(1),
            command_timeout,
        }
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    /// `ssh <options> -- <target> <script>`: never asks for a password, gives up on a node that
    /// does not answer, and notices a connection that died under a long transfer.
    fn command(&self, target: &str, script: &str) -> Result<Command> {
        check_target(target)?;
        let mut c = Command::new(&self.program);
        c.args(["-o", "BatchMode=yes"])
            .arg("-o")
            .arg(format!("ConnectTimeout={}", self.connect_timeout))
            .args([
                "-o",
                "ServerAliveInterval=10",
                "-o",
                "ServerAliveCountMax=3",
            ])
            .arg("--")
            .arg(target)
            .arg(script);
        Ok(c)
    }

    fn spawn(&self, target: &str, script: &str, stdin: Stdio, stdout: Stdio) -> Result<Remote> {
        let mut child = self
            .command(target, script)?
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                StorageError::Tool(format!(
                    "cannot run {} to reach {target}: {e}",
                    self.program
                ))
            })?;
        let stderr = child
            .stderr
            .take()
            .map(|s| std::thread::spawn(move || read_bounded(s, STDERR_LIMIT)));
        Ok(Remote {
            child,
            stderr,
            target: target.to_string(),
        })
    }

    /// Runs a short script on `target`; its standard output. `what` names the step in errors.
    pub fn run(&self, target: &str, script: &str, what: &str) -> Result<String> {
        let mut remote = self.spawn(target, script, Stdio::null(), Stdio::piped())?;
        let stdout = remote
            .child
            .stdout
            .take()
            .map(|s| std::thread::spawn(move || read_bounded(s, STDOUT_LIMIT)));
        let deadline = Instant::now() + self.command_timeout;
        loop {
            match remote.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() >= deadline => {
                    return Err(StorageError::Tool(format!(
                        "{what} on {target}: no answer within {} s",
                        self.command_timeout.as_secs()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    return Err(StorageError::Io {
                        what: format!("{what} on {target}"),
                        source: e,
                    })
                }
            }
        }
        let out = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
        remote.finish(what)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Streams `from` into the standard input of `script` on `target`.
    pub fn send(
        &self,
        target: &str,
        script: &str,
        from: &mut dyn Read,
        what: &str,
        report: Option<&Reporter>,
    ) -> Result<u64> {
        let mut remote = self.spawn(target, script, Stdio::piped(), Stdio::null())?;
        let mut stdin = remote
            .child
            .stdin
            .take()
            .ok_or_else(|| StorageError::Tool(format!("{what} on {target}: no pipe to ssh")))?;
        let mut progress = Progress::new(what, report);
        let pumped = pump(from, &mut stdin, &mut progress);
        drop(stdin);
        // The node's own error (a full disk, a failed check) explains a broken pipe better.
        remote.finish(what)?;
        pumped.map_err(StorageError::io(format!("{what} on {target}")))?;
        progress.done();
        Ok(progress.bytes)
    }

    /// Streams the standard output of `script` on `target` into `to`.
    pub fn receive(
        &self,
        target: &str,
        script: &str,
        to: &mut dyn Write,
        what: &str,
        report: Option<&Reporter>,
    ) -> Result<u64> {
        let mut progress = Progress::new(what, report);
        self.receive_with(target, script, what, |stdout| {
            pump(stdout, to, &mut progress)
        })?;
        progress.done();
        Ok(progress.bytes)
    }

    /// Hands the standard output of `script` on `target` to `consume`; the node's error, if the
    /// script failed, wins over what `consume` made of a cut stream.
    pub fn receive_with<T>(
        &self,
        target: &str,
        script: &str,
        what: &str,
        consume: impl FnOnce(&mut (dyn Read + Send)) -> std::io::Result<T>,
    ) -> Result<T> {
        let mut remote = self.spawn(target, script, Stdio::null(), Stdio::piped())?;
        let mut stdout =
            remote.child.stdout.take().ok_or_else(|| {
                StorageError::Tool(format!("{what} on {target}: no pipe from ssh"))
            })?;
        let consumed = consume(&mut stdout);
        drop(stdout);
        remote.finish(what)?;
        consumed.map_err(StorageError::io(format!("{what} from {target}")))
    }

    /// Streams the output of `from_script` on `from` into `to_script` on `to`, through this
    /// process (the front-end holds the keys to every node; nodes need none to each other).
    pub fn relay(
        &self,
        from: (&str, &str),
        to: (&str, &str),
        what: &str,
        report: Option<&Reporter>,
    ) -> Result<u64> {
        let mut source = self.spawn(from.0, from.1, Stdio::null(), Stdio::piped())?;
        let mut sink = self.spawn(to.0, to.1, Stdio::piped(), Stdio::null())?;
        let mut stdout =
            source.child.stdout.take().ok_or_else(|| {
                StorageError::Tool(format!("{what} on {}: no pipe from ssh", from.0))
            })?;
        let mut stdin = sink
            .child
            .stdin
            .take()
            .ok_or_else(|| StorageError::Tool(format!("{what} on {}: no pipe to ssh", to.0)))?;
        let mut progress = Progress::new(what, report);
        let pumped = pump(&mut stdout, &mut stdin, &mut progress);
        drop(stdin);
        drop(stdout);
        let sent = source.finish(what);
        let received = sink.finish(what);
        sent?;
        received?;
        pumped.map_err(StorageError::io(format!(
            "{what} from {} to {}",
            from.0, to.0
        )))?;
        progress.done();
        Ok(progress.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_words_whole() {
        assert_eq!(quote("/var/lib/one/42").unwrap(), "/var/lib/one/42");
        assert_eq!(quote("a b").unwrap(), "'a b'");
        for word in ["x'; rm -rf /", "$(reboot)", "a\"b`c`\\", "new\nline"] {
            let quoted = quote(word).unwrap();
            assert_eq!(shlex::split(&quoted).unwrap(), [word], "{quoted}");
            let echoed = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {quoted}"))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&echoed.stdout), word);
        }
        assert!(quote("nul\0").is_err());
    }

    #[test]
    fn node_names_cannot_be_options() {
        check_target("node-1.example.org").unwrap();
        check_target("root@10.1.2.3").unwrap();
        for bad in ["", "-oProxyCommand=x", "a b", "a;b", "a/b", "$(x)"] {
            assert!(check_target(bad).is_err(), "{bad}");
        }
    }

    /// A stand-in for ssh that runs the script locally: `sh -c <script>` after the target
    /// (the options and `--` are skipped), so the pipes and error paths run for real.
    fn local_shell(dir: &std::path::Path) -> SshClient {
        let fake = dir.join("fake-ssh");
        std::fs::write(
            &fake,
            "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift; shift\nexec sh -c \"$1\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        SshClient::new(fake.to_str().unwrap(), 5, Duration::from_secs(5))
    }

    #[test]
    fn run_send_receive_relay_through_a_shell() {
        let dir = std::env::temp_dir().join(format!("ssh-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ssh = local_shell(&dir);
        assert_eq!(ssh.run("node1", "echo hello", "greet").unwrap(), "hello\n");
        let err = ssh
            .run("node1", "echo 'disk full' >&2; exit 3", "write")
            .unwrap_err();
        assert_eq!(err.to_string(), "write on node1: disk full");
        let err = ssh.run("node1", "exit 4", "write").unwrap_err();
        assert_eq!(err.to_string(), "write on node1: exit status 4");
        let file = dir.join("f");
        let data = vec![7u8; 3 * BUFFER + 5];
        let script = format!("cat > {}", quote_path(&file).unwrap());
        let n = ssh
            .send("node1", &script, &mut data.as_slice(), "send", None)
            .unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(std::fs::read(&file).unwrap(), data);
        let mut back = Vec::new();
        let script = format!("cat {}", quote_path(&file).unwrap());
        ssh.receive("node1", &script, &mut back, "receive", None)
            .unwrap();
        assert_eq!(back, data);
        let copy = dir.join("g");
        let to = format!("cat > {}", quote_path(&copy).unwrap());
        ssh.relay(("node1", &script), ("node2", &to), "relay", None)
            .unwrap();
        assert_eq!(std::fs::read(&copy).unwrap(), data);
        // The receiving side fails: its error is what the caller sees, not a broken pipe.
        let err = ssh
            .send(
                "node1",
                "echo 'No space left on device' >&2; exit 1",
                &mut data.as_slice(),
                "send",
                None,
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "send on node1: No space left on device");
        assert!(ssh.run("-oProxyCommand=x", "true", "t").is_err());
        let slow = SshClient::new(ssh.program(), 5, Duration::from_millis(200));
        let err = slow.run("node1", "sleep 5", "wait").unwrap_err();
        assert!(err.to_string().contains("no answer within"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
