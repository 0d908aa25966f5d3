//! Reading the recorded StratusLab client run (`fixtures/stratuslab-client/`): `index.json`
//! gives the scenario order, each `<scenario>.txt` the commands with their exact output, and
//! `<scenario>.jsonl` the XML-RPC traffic (its format is the compat harness's; see
//! `fixtures/stratuslab-client/README.md` §6).

use crate::harness::json::{self, Json};
use std::fs;
use std::path::Path;

/// One scenario of the run, in recording order.
pub struct Scenario {
    pub name: String,
    pub title: String,
    pub steps: Vec<Step>,
    /// The recorded XML-RPC exchanges, in seq order (empty: the scenario made no call).
    pub traffic: Vec<RecordedCall>,
}

/// One line of a `.jsonl`.
pub struct RecordedCall {
    pub seq: i64,
    pub method: String,
    /// As the client sent it, e.g. `/01-run-marketplace-v14/pswd/xmlrpc`.
    pub path: String,
    pub request: String,
    pub status: u16,
    pub response: String,
}

/// What the `.txt` file of a scenario lists, in order.
pub enum Step {
    Command(Command),
    /// `# WAIT …: host N STATE=2 (2=MONITORED) …`
    HostMonitored {
        host: i64,
    },
    /// `# WAIT …: VM N reached RUNNING …`
    VmReached {
        vm: i64,
        state: String,
    },
    /// `# describe loop for VM N ended after … (looking for "Running")`: the commands with
    /// the argv of the one before this line, just before it, polled the VM until then.
    DescribeLoopEnd {
        vm: i64,
        summary: String,
    },
    /// `# NOTE: slept 12 s (> SCHED_INTERVAL 10 s) so the scheduler had a chance …`
    SchedulerPassWait {
        note: String,
    },
    /// `# python3 xmlrpc.client calls (…), recorded: …`: pool dumps, whole `.jsonl`.
    PoolDumps {
        note: String,
    },
    /// Any other `# NOTE:` line (printed, no effect).
    Note(String),
}

/// One recorded command (`### [cNN]` … `--- end [cNN]`).
pub struct Command {
    /// `c01`.
    pub label: String,
    pub argv: Vec<String>,
    /// The command line as recorded (shell-quoted).
    pub command_line: String,
    pub exit_code: i32,
    /// The `.jsonl` seq range and methods it produced (empty when none).
    pub xmlrpc: Option<XmlRpcRange>,
    /// `METHOD PATH -> STATUS` of every Marketplace/pdisk request it made.
    pub marketplace: Vec<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

pub struct XmlRpcRange {
    pub first_seq: i64,
    pub last_seq: i64,
    pub methods: Vec<String>,
}

/// Loads every scenario named by `index.json`, in its order.
pub fn load_run(dir: &Path) -> Result<Vec<Scenario>, String> {
    let index_path = dir.join("index.json");
    let index_text = fs::read_to_string(&index_path)
        .map_err(|e| format!("cannot read {}: {e}", index_path.display()))?;
    let index = json::parse(&index_text).map_err(|e| format!("{}: {e}", index_path.display()))?;
    let entries = index
        .as_array()
        .ok_or_else(|| format!("{}: not a list", index_path.display()))?;
    let mut scenarios = Vec::new();
    for entry in entries {
        let fields = entry.as_array().unwrap_or_default();
        let (Some(name), Some(title), Some(commands)) = (
            fields.first().and_then(Json::as_str),
            fields.get(1).and_then(Json::as_str),
            fields.get(2).and_then(Json::as_array),
        ) else {
            return Err(format!("{}: bad entry", index_path.display()));
        };
        let txt_path = dir.join(format!("{name}.txt"));
        let bytes =
            fs::read(&txt_path).map_err(|e| format!("cannot read {}: {e}", txt_path.display()))?;
        let steps = parse_steps(&bytes).map_err(|e| format!("{}: {e}", txt_path.display()))?;
        check_against_index(name, commands, &steps)
            .map_err(|e| format!("{}: {e}", index_path.display()))?;
        let jsonl_path = dir.join(format!("{name}.jsonl"));
        let traffic = if jsonl_path.exists() {
            let text = fs::read_to_string(&jsonl_path)
                .map_err(|e| format!("cannot read {}: {e}", jsonl_path.display()))?;
            parse_traffic(&text).map_err(|e| format!("{}: {e}", jsonl_path.display()))?
        } else {
            Vec::new()
        };
        scenarios.push(Scenario {
            name: name.to_string(),
            title: title.to_string(),
            steps,
            traffic,
        });
    }
    Ok(scenarios)
}

fn parse_traffic(text: &str) -> Result<Vec<RecordedCall>, String> {
    let mut calls = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = json::parse(line).map_err(|e| format!("line {}: {e}", index + 1))?;
        let string = |key: &str| {
            record
                .get(key)
                .and_then(Json::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("line {}: no string {key:?}", index + 1))
        };
        let seq = record
            .get("seq")
            .and_then(Json::as_i64)
            .ok_or_else(|| format!("line {}: no seq", index + 1))?;
        if seq != calls.len() as i64 + 1 {
            return Err(format!("line {}: seq {seq} out of order", index + 1));
        }
        let status = record
            .get("status")
            .and_then(Json::as_i64)
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| format!("line {}: no status", index + 1))?;
        calls.push(RecordedCall {
            seq,
            method: string("method")?,
            path: string("path")?,
            request: string("request")?,
            status,
            response: string("response")?,
        });
    }
    Ok(calls)
}

/// `index.json` repeats each command's number, exit code and methods: a check that the
/// `.txt` was read whole and right.
fn check_against_index(name: &str, commands: &[Json], steps: &[Step]) -> Result<(), String> {
    let recorded: Vec<&Command> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Command(c) => Some(c),
            _ => None,
        })
        .collect();
    if recorded.len() != commands.len() {
        return Err(format!(
            "{name}: {} commands in the .txt, {} in the index",
            recorded.len(),
            commands.len()
        ));
    }
    for (command, listed) in recorded.iter().zip(commands) {
        let listed = listed.as_array().unwrap_or_default();
        let number = listed.first().and_then(Json::as_i64);
        let exit = listed.get(1).and_then(Json::as_i64);
        let methods: Vec<&str> = listed
            .get(2)
            .and_then(Json::as_array)
            .unwrap_or_default()
            .iter()
            .filter_map(Json::as_str)
            .collect();
        let own_methods: Vec<&str> = command
            .xmlrpc
            .as_ref()
            .map(|r| r.methods.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if number != command.label[1..].parse::<i64>().ok()
            || exit != Some(i64::from(command.exit_code))
            || methods != own_methods
        {
            return Err(format!(
                "{name} {}: the index lists {listed:?}, the .txt says exit {} and {own_methods:?}",
                command.label, command.exit_code
            ));
        }
    }
    Ok(())
}

/// Reads the lines of a `.txt`; command outputs are taken by their byte counts.
pub fn parse_steps(bytes: &[u8]) -> Result<Vec<Step>, String> {
    let mut reader = Lines { bytes, pos: 0 };
    let mut steps = Vec::new();
    while let Some(line) = reader.next_line()? {
        if line.is_empty()
            || line.starts_with("# scenario ")
            || line.starts_with("# endpoint given to the client: ")
            || line.starts_with("# test Marketplace/pdisk endpoint: ")
        {
            continue;
        }
        if let Some(header) = line.strip_prefix("### [") {
            steps.push(Step::Command(parse_command(header, &mut reader)?));
        } else if let Some(wait) = line.strip_prefix("# WAIT ") {
            steps.push(parse_wait(wait)?);
        } else if let Some(rest) = line.strip_prefix("# describe loop for VM ") {
            // `0 ended after 6.9 s (looking for "Running")`
            let vm = leading_int(rest).ok_or_else(|| format!("bad loop line {line:?}"))?;
            let summary = between(rest, "(looking for \"", "\")")
                .ok_or_else(|| format!("bad loop line {line:?}"))?;
            steps.push(Step::DescribeLoopEnd {
                vm,
                summary: summary.to_string(),
            });
        } else if let Some(note) = line.strip_prefix("# NOTE: ") {
            if note.starts_with("slept ") && note.contains("scheduler") {
                steps.push(Step::SchedulerPassWait {
                    note: note.to_string(),
                });
            } else {
                steps.push(Step::Note(note.to_string()));
            }
        } else if line.starts_with("# python3 xmlrpc.client calls") {
            steps.push(Step::PoolDumps {
                note: line[2..].to_string(),
            });
        } else {
            return Err(format!(
                "line {}: not understood: {line:?}",
                reader.line_number()
            ));
        }
    }
    Ok(steps)
}

fn parse_wait(wait: &str) -> Result<Step, String> {
    // `(direct one.host.info polls, NOT recorded): host 0 STATE=2 (2=MONITORED) after 8.5 s`
    // `(direct one.vm.info polls on :2633, NOT recorded): VM 2 reached RUNNING after 7.5 s; …`
    let what = wait
        .split_once("): ")
        .map(|(_, w)| w)
        .ok_or_else(|| format!("bad WAIT line {wait:?}"))?;
    if let Some(rest) = what.strip_prefix("host ") {
        let host = leading_int(rest).ok_or_else(|| format!("bad WAIT line {wait:?}"))?;
        if !rest.contains("STATE=2 (2=MONITORED)") {
            return Err(format!(
                "WAIT for a host state other than MONITORED: {wait:?}"
            ));
        }
        return Ok(Step::HostMonitored { host });
    }
    if let Some(rest) = what.strip_prefix("VM ") {
        let vm = leading_int(rest).ok_or_else(|| format!("bad WAIT line {wait:?}"))?;
        let state =
            between(rest, "reached ", " ").ok_or_else(|| format!("bad WAIT line {wait:?}"))?;
        return Ok(Step::VmReached {
            vm,
            state: state.to_string(),
        });
    }
    Err(format!("WAIT for something unknown: {wait:?}"))
}

fn parse_command(header: &str, reader: &mut Lines) -> Result<Command, String> {
    // `c01] 2026-11-24T01:52:56.537+00:00  stratuslab-client 14.6.0 (--version prints 14.06.0)`:
    // the start time and the release are not needed (the argv names the release).
    let (label, _start_and_release) = header
        .split_once("] ")
        .ok_or_else(|| format!("bad command header {header:?}"))?;
    let expect = |line: Option<String>, prefix: &str| -> Result<String, String> {
        match line {
            Some(l) if l.starts_with(prefix) => Ok(l[prefix.len()..].to_string()),
            other => Err(format!("[{label}]: expected {prefix:?}, found {other:?}")),
        }
    };
    let command_line = expect(reader.next_line()?, "$ ")?;
    let argv = shell_words(&command_line).map_err(|e| format!("[{label}]: {e}"))?;
    let exit_line = expect(reader.next_line()?, "--- exit code: ")?;
    let exit_code = exit_line
        .split_whitespace()
        .next()
        .and_then(|c| c.parse::<i32>().ok())
        .ok_or_else(|| format!("[{label}]: bad exit code line {exit_line:?}"))?;
    let xmlrpc_line = expect(reader.next_line()?, "--- XML-RPC recorded")?;
    let xmlrpc = if xmlrpc_line == ": none" {
        None
    } else {
        // ` in 01-run-marketplace-v14.jsonl: seq 1-2: one.vm.allocate, one.vm.info`
        let after = xmlrpc_line
            .split_once(": seq ")
            .map(|(_, a)| a)
            .ok_or_else(|| format!("[{label}]: bad XML-RPC line {xmlrpc_line:?}"))?;
        let (range, methods) = after
            .split_once(": ")
            .ok_or_else(|| format!("[{label}]: bad XML-RPC line {xmlrpc_line:?}"))?;
        let (first, last) = range
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .ok_or_else(|| format!("[{label}]: bad seq range {range:?}"))?;
        Some(XmlRpcRange {
            first_seq: first,
            last_seq: last,
            methods: methods.split(", ").map(str::to_string).collect(),
        })
    };
    let mut line = reader.next_line()?;
    let mut marketplace = Vec::new();
    if let Some(requests) = line
        .as_deref()
        .and_then(|l| l.strip_prefix("--- test Marketplace/pdisk requests: "))
    {
        marketplace = requests.split("; ").map(str::to_string).collect();
        line = reader.next_line()?;
    }
    let stdout_len = byte_count(&expect(line, "--- stdout (")?, label)?;
    let stdout = reader.take_bytes(stdout_len)?;
    let stderr_len = byte_count(&expect(reader.next_line()?, "--- stderr (")?, label)?;
    let stderr = reader.take_bytes(stderr_len)?;
    let end = reader.next_line()?;
    if end.as_deref() != Some(&format!("--- end [{label}]")) {
        return Err(format!(
            "[{label}]: the output is not followed by its end line (found {end:?})"
        ));
    }
    Ok(Command {
        label: label.to_string(),
        argv,
        command_line,
        exit_code,
        xmlrpc,
        marketplace,
        stdout,
        stderr,
    })
}

/// `164 bytes) ---` → 164.
fn byte_count(rest: &str, label: &str) -> Result<usize, String> {
    rest.strip_suffix(" bytes) ---")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("[{label}]: bad byte count line {rest:?}"))
}

fn leading_int(text: &str) -> Option<i64> {
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

/// A cursor over the `.txt` bytes: lines, or a given number of raw bytes.
struct Lines<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Lines<'_> {
    fn next_line(&mut self) -> Result<Option<String>, String> {
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        let rest = &self.bytes[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        self.pos += (end + 1).min(rest.len());
        String::from_utf8(rest[..end].to_vec())
            .map(Some)
            .map_err(|_| format!("line {} is not UTF-8", self.line_number()))
    }

    fn take_bytes(&mut self, count: usize) -> Result<Vec<u8>, String> {
        let end = self.pos + count;
        if end > self.bytes.len() {
            return Err(format!("{count} bytes announced, fewer left"));
        }
        let taken = self.bytes[self.pos..end].to_vec();
        self.pos = end;
        Ok(taken)
    }

    fn line_number(&self) -> usize {
        self.bytes[..self.pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }
}

/// Splits a POSIX shell command line into words: blanks separate words; `'…'` is literal;
/// `"…"` allows `\"`, `\\`, `\$`, `` \` ``; a bare `\` escapes the next character.
pub fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => w.push(ch),
                        None => return Err(format!("unterminated ' in {line:?}")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => w.push(ch),
                            Some(ch) => {
                                w.push('\\');
                                w.push(ch);
                            }
                            None => return Err(format!("unterminated \" in {line:?}")),
                        },
                        Some(ch) => w.push(ch),
                        None => return Err(format!("unterminated \" in {line:?}")),
                    }
                }
            }
            '\\' => {
                let next = chars
                    .next()
                    .ok_or_else(|| format!("trailing \\ in {line:?}"))?;
                word.get_or_insert_with(String::new).push(next);
            }
            ch => word.get_or_insert_with(String::new).push(ch),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

/// Checks of the reader, run before every suite run.
pub fn self_checks(checks: &mut crate::harness::selftest::Checks) {
    let words = shell_words(
        r#"/bin/x --context 'A=1#B=two words' --vm-requirements 'HOSTNAME = \"failhost\"' "a\"b" c\ d"#,
    );
    checks.check(
        "recording: shell words",
        words
            == Ok(vec![
                "/bin/x".to_string(),
                "--context".into(),
                "A=1#B=two words".into(),
                "--vm-requirements".into(),
                r#"HOSTNAME = \"failhost\""#.into(),
                "a\"b".into(),
                "c d".into(),
            ]),
        format!("{words:?}"),
    );
    let text = b"### [c01] 2026-11-24T01:52:56.537+00:00  stratuslab-client 14.6.0 (x)\n\
$ /opt/b/stratus-kill-instance 1\n--- exit code: 255   (0.2 s)\n\
--- XML-RPC recorded in s.jsonl: seq 3-3: one.vm.action\n--- stdout (3 bytes) ---\n\
a\n\n--- stderr (0 bytes) ---\n--- end [c01]\n\n\
# describe loop for VM 7 ended after 6.9 s (looking for \"Running\")\n";
    let steps = parse_steps(text);
    let ok = match steps.as_deref() {
        Ok([Step::Command(c), Step::DescribeLoopEnd { vm: 7, summary }]) => {
            c.stdout == b"a\n\n"
                && c.exit_code == 255
                && c.stderr.is_empty()
                && summary == "Running"
                && c.xmlrpc
                    .as_ref()
                    .is_some_and(|r| r.first_seq == 3 && r.methods == ["one.vm.action"])
        }
        _ => false,
    };
    checks.check(
        "recording: a command block and a loop line",
        ok,
        "parsed wrongly",
    );
    checks.check(
        "recording: an unknown line is an error",
        parse_steps(b"# something new\n").is_err(),
        "accepted",
    );
}
