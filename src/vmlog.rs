//! The per-VM log file oned kept (`/var/log/one/<vid>.log`): one line per event,
//! `<ctime> [<module>][<level>]: <message>`. Sites grep it (lease lines, StratusLab's
//! `MARKETPLACE_AND_IMAGEID`), so the format is fixed. Writing is best effort: a VM never fails
//! because its log could not be written.

use crate::model::vm::{FailedStep, LcmState, VmState};
use crate::model::{Oid, Vm};
use crate::template::vector_get;
use std::io::Write;
use std::path::{Path, PathBuf};

/// oned's log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
        crate::model::ctime(epoch),
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
        self.append_text(vid, &text);
    }

    /// Appends the life-cycle `lines` of a change committed at `time`. `fenced`: the change may
    /// already have been written before a crash (a replayed outbox entry); the lines are then
    /// written only if they are not already in the log's last 64 KiB.
    pub fn append_lines(&self, vid: Oid, time: i64, lines: &[LogLine], fenced: bool) {
        let mut text = String::new();
        for l in lines {
            for line in l.text.lines() {
                text.push_str(&format_line(time, l.module, l.level, line));
                text.push('\n');
            }
        }
        if fenced && self.tail_contains(vid, &text) {
            return;
        }
        self.append_text(vid, &text);
    }

    fn tail_contains(&self, vid: Oid, text: &str) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        const TAIL: u64 = 64 * 1024;
        let Ok(mut f) = std::fs::File::open(self.path(vid)) else {
            return false;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if f.seek(SeekFrom::Start(len.saturating_sub(TAIL))).is_err() {
            return false;
        }
        let mut tail = Vec::new();
        if f.take(TAIL).read_to_end(&mut tail).is_err() {
            return false;
        }
        String::from_utf8_lossy(&tail).contains(text)
    }

    fn append_text(&self, vid: Oid, text: &str) {
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

/// One line of a VM's log, as a committed change decided it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    pub module: Module,
    pub level: Level,
    pub text: String,
}

fn lease_lines(vm: &Vm, verb: &str) -> Vec<String> {
    vm.template
        .vectors("NIC")
        .filter_map(|nic| {
            let ip = vector_get(nic, "IP")?;
            let mac = vector_get(nic, "MAC").unwrap_or("");
            Some(format!("{verb} lease (IP={ip}, MAC={mac})"))
        })
        .collect()
}

/// The error line 3.2 logged for the failed operation of `lcm`: the message with the driver's
/// reason as `TEMPLATE/ERROR` holds it, or the bare message when the driver gave none.
/// It is logged by the manager whose driver failed: the transfer manager for PROLOG/EPILOG, the
/// hypervisor manager for the others.
fn failure_line(vm: &Vm, lcm: LcmState) -> Option<LogLine> {
    let step = FailedStep::of(lcm, vm.boot_restores)?;
    let module = match step {
        FailedStep::Transfer => Module::Transfer,
        _ => Module::Hypervisor,
    };
    let base = step.title();
    let text = vm
        .template
        .get_vector("ERROR")
        .and_then(|e| vector_get(e, "MESSAGE"))
        .filter(|m| m.starts_with(base))
        .unwrap_or(base);
    Some(LogLine {
        module,
        level: Level::Error,
        text: text.to_string(),
    })
}

/// Whether a VM that went from MIGRATE back to RUNNING did so because the live migration
/// failed: the destination's history record then ended in ERROR and a new record on the
/// source follows it.
fn live_migration_failed(vm: &Vm) -> bool {
    let n = vm.history.len();
    n >= 2 && vm.history[n - 2].reason == crate::model::vm::Reason::Error
}

/// The lines a VM's log gets when it enters `(state, lcm)` from `before` (`None`: a new VM).
pub fn lines_for(
    vm: &Vm,
    before: Option<(VmState, LcmState)>,
    state: VmState,
    lcm: LcmState,
) -> Vec<LogLine> {
    let line = |module, level, text| LogLine {
        module,
        level,
        text,
    };
    let dim = |m: String| line(Module::DispatchManager, Level::Info, m);
    let lcm_line = |m: String| line(Module::LifeCycle, Level::Info, m);
    let vmm = |m: String| line(Module::Hypervisor, Level::Info, m);
    let mut out = Vec::new();
    // An operation the hypervisor refused leaves the VM RUNNING: 3.2 logs the driver's error
    // and the life-cycle manager's assumption instead of "New VM state is RUNNING".
    if let (Some((VmState::Active, from)), VmState::Active, LcmState::Running) =
        (before, state, lcm)
    {
        let assumption = match from {
            LcmState::Migrate if live_migration_failed(vm) => Some("Fail to life migrate VM."),
            LcmState::SaveMigrate => Some("Fail to save VM state while migrating."),
            LcmState::SaveStop | LcmState::SaveSuspend => Some("Fail to save VM state."),
            LcmState::Shutdown => Some("Fail to shutdown VM."),
            LcmState::Cancel => Some("Fail to cancel VM."),
            _ => None,
        };
        if let Some(assumption) = assumption {
            out.extend(failure_line(vm, from));
            out.push(lcm_line(format!(
                "{assumption} Assuming that the VM is still RUNNING (will poll VM)."
            )));
            return out;
        }
    }
    match (state, lcm) {
        (VmState::Pending, _) => out.push(dim("New VM state is PENDING".into())),
        (VmState::Hold, _) => out.push(dim("New VM state is HOLD".into())),
        (VmState::Active, LcmState::Prolog) => {
            out.push(dim(format!(
                "New VM state is ACTIVE ({}, {}, {})",
                vm.id, vm.uid, vm.uname
            )));
            out.extend(lease_lines(vm, "acquired").into_iter().map(vmm));
            out.push(lcm_line("New VM state is PROLOG.".into()));
        }
        (VmState::Active, l) => out.push(lcm_line(format!("New VM state is {}", l.name()))),
        (VmState::Stopped, _) => out.push(dim("New VM state is STOPPED".into())),
        (VmState::Suspended, _) => out.push(dim("New VM state is SUSPENDED".into())),
        (VmState::Done, _) => {
            out.extend(lease_lines(vm, "released").into_iter().map(vmm));
            out.push(dim("New VM state is DONE".into()));
        }
        (VmState::Failed, _) => {
            // The failed transfer or hypervisor operation, logged by its manager (TM or VMM);
            // a VM failed otherwise logs its TEMPLATE/ERROR as the life-cycle manager's.
            match before.and_then(|(_, from)| failure_line(vm, from)) {
                Some(l) => out.push(l),
                None => {
                    if let Some(msg) = vm
                        .template
                        .get_vector("ERROR")
                        .and_then(|e| vector_get(e, "MESSAGE"))
                    {
                        out.push(line(Module::LifeCycle, Level::Error, msg.to_string()));
                    }
                }
            }
            out.push(dim("New VM state is FAILED".into()));
        }
        (VmState::Init, _) => {}
    }
    out
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
