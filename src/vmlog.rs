//! The per-VM log file oned kept (`/var/log/one/<vid>.log`): one line per event,
//! `<ctime> [<module>][<level>]: <message>`. Sites grep it (lease lines, StratusLab's
//! `MARKETPLACE_AND_IMAGEID`), so the format is fixed. Writing is best effort: a VM never fails
//! because its log could not be written.

use crate::model::Oid;
use std::io::Write;
use std::path::{Path, PathBuf};

/// oned's log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Info,
    Debug,
}

impl Level {
    fn letter(self) -> char {
        match self {
            Level::Error => 'E',
            Level::Warning => 'W',
            Level::Info => 'I',
            Level::Debug => 'D',
        }
    }
}

/// oned's log modules that stratusd writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    DispatchManager,
    LifeCycle,
    Transfer,
    Hypervisor,
}

impl Module {
    fn tag(self) -> &'static str {
        match self {
            Module::DispatchManager => "DiM",
            Module::LifeCycle => "LCM",
            Module::Transfer => "TM",
            Module::Hypervisor => "VMM",
        }
    }
}

/// The directory holding every VM's log.
#[derive(Debug, Clone)]
pub struct VmLogDir {
    dir: PathBuf,
}

/// One formatted line, without the trailing newline.
pub fn format_line(epoch: i64, module: Module, level: Level, message: &str) -> String {
    format!(
        "{} [{}][{}]: {message}",
        crate::core::lifecycle::ctime(epoch),
        module.tag(),
        level.letter()
    )
}

impl VmLogDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        VmLogDir { dir: dir.into() }
    }

    pub fn path(&self, vid: Oid) -> PathBuf {
        self.dir.join(format!("{vid}.log"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `message`, one log line per line of it (as oned logged a driver's output).
    pub fn append(&self, vid: Oid, module: Module, level: Level, message: &str) {
        let now = crate::model::now();
        let mut text = String::new();
        for line in message.lines() {
            text.push_str(&format_line(now, module, level, line));
            text.push('\n');
        }
        if text.is_empty() {
            return;
        }
        let result = std::fs::create_dir_all(&self.dir).and_then(|_| {
            // O_APPEND: concurrent writers (life-cycle worker, transfer threads) never
            // interleave inside a line.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path(vid))?
                .write_all(text.as_bytes())
        });
        if let Err(e) = result {
            tracing::warn!(vm = vid, error = %e, "cannot write the VM log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_is_onedlike() {
        // 2012-06-07 10:00:00 UTC
        let line = format_line(1_339_063_200, Module::DispatchManager, Level::Info, "x");
        assert_eq!(line, "Thu Jun  7 10:00:00 2012 [DiM][I]: x");
    }

    #[test]
    fn multi_line_messages_become_lines() {
        let dir = std::env::temp_dir().join(format!("vmlog-test-{}", std::process::id()));
        let log = VmLogDir::new(&dir);
        log.append(7, Module::Transfer, Level::Error, "a\nb");
        let text = std::fs::read_to_string(log.path(7)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with("[TM][E]: a"));
        assert!(lines[1].ends_with("[TM][E]: b"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
