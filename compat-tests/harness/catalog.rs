//! `compat-tests/sessions.toml`: which recorded sessions are expected to pass.
//!
//! ```toml
//! [session.01-basic-info]
//! status = "pass"
//!
//! [session.e07-malformed-xml]
//! status = "pending"
//! reason = "waits for issue #12: latin-1 request bodies"
//! ```
//!
//! Every session file of the fixtures must be listed, and every listed session must exist,
//! so that no recording is ever left out silently.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expectation {
    Pass,
    Pending { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The session file's name without `.jsonl`.
    pub name: String,
    pub expectation: Expectation,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    session: BTreeMap<String, EntryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    status: StatusFile,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum StatusFile {
    Pass,
    Pending,
}

/// Parses the catalog text; entries come sorted by name.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let file: CatalogFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.session
        .into_iter()
        .map(|(name, entry)| {
            let expectation = match (entry.status, entry.reason) {
                (StatusFile::Pass, _) => Expectation::Pass,
                (StatusFile::Pending, Some(reason)) if !reason.trim().is_empty() => {
                    Expectation::Pending { reason }
                }
                (StatusFile::Pending, _) => {
                    return Err(format!("session {name:?} is pending without a reason"))
                }
            };
            Ok(Entry { name, expectation })
        })
        .collect()
}

/// Reads the catalog and checks it against the `.jsonl` files of `fixtures_dir`.
pub fn load(catalog_path: &Path, fixtures_dir: &Path) -> Result<Vec<Entry>, String> {
    let text = fs::read_to_string(catalog_path)
        .map_err(|e| format!("cannot read {}: {e}", catalog_path.display()))?;
    let entries = parse(&text).map_err(|e| format!("{}: {e}", catalog_path.display()))?;
    let on_disk = session_files(fixtures_dir)?;
    check_complete(&entries, &on_disk).map_err(|e| format!("{}: {e}", catalog_path.display()))?;
    Ok(entries)
}

/// Names (without `.jsonl`) of the session files in `dir`, sorted.
pub fn session_files(dir: &Path) -> Result<Vec<String>, String> {
    let listing = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for item in listing {
        let item = item.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let file_name = item.file_name().to_string_lossy().into_owned();
        if let Some(name) = file_name.strip_suffix(".jsonl") {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

fn check_complete(entries: &[Entry], on_disk: &[String]) -> Result<(), String> {
    let unlisted: Vec<&String> = on_disk
        .iter()
        .filter(|name| !entries.iter().any(|e| &e.name == *name))
        .collect();
    let missing: Vec<&String> = entries
        .iter()
        .map(|e| &e.name)
        .filter(|name| !on_disk.contains(name))
        .collect();
    match (unlisted.is_empty(), missing.is_empty()) {
        (true, true) => Ok(()),
        (false, _) => Err(format!(
            "session files not listed (add them as pass or pending): {unlisted:?}"
        )),
        (true, false) => Err(format!("listed sessions without a file: {missing:?}")),
    }
}

/// Checks run by `--self-test`.
pub fn self_checks(checks: &mut crate::harness::selftest::Checks) {
    let parsed = parse(
        "[session.b]\nstatus = \"pending\"\nreason = \"waits for issue #3: x\"\n\
         [session.01-a]\nstatus = \"pass\"\n",
    );
    checks.check(
        "catalog: parses pass and pending, sorted",
        parsed
            == Ok(vec![
                Entry {
                    name: "01-a".into(),
                    expectation: Expectation::Pass,
                },
                Entry {
                    name: "b".into(),
                    expectation: Expectation::Pending {
                        reason: "waits for issue #3: x".into(),
                    },
                },
            ]),
        format!("{parsed:?}"),
    );
    for (what, text) in [
        (
            "pending without reason",
            "[session.a]\nstatus = \"pending\"\n",
        ),
        ("unknown status", "[session.a]\nstatus = \"skip\"\n"),
        (
            "unknown key",
            "[session.a]\nstatus = \"pass\"\nflaky = true\n",
        ),
        ("no sessions table", "status = \"pass\"\n"),
    ] {
        checks.check(
            &format!("catalog: rejects {what}"),
            parse(text).is_err(),
            "accepted",
        );
    }
    let entries = vec![Entry {
        name: "a".into(),
        expectation: Expectation::Pass,
    }];
    checks.check(
        "catalog: a session file that is not listed is an error",
        check_complete(&entries, &["a".into(), "b".into()]).is_err(),
        "accepted",
    );
    checks.check(
        "catalog: a listed session without file is an error",
        check_complete(&entries, &[]).is_err(),
        "accepted",
    );
    checks.check(
        "catalog: complete",
        check_complete(&entries, &["a".into()]).is_ok(),
        "rejected",
    );
}
