//! Every oned-facing text stratusd can answer, checked against oned 3.2's catalogue of
//! messages (`fixtures/oned-3.2-messages.md`, a copy of the specification's
//! `oned-3.2-messages.md`) or, failing that, against the list of stratusd-only messages in
//! `docs/compatibility.md`, each with its reason.
//!
//! The core answers only with typed errors (`src/core/error.rs`) whose details are the enums of
//! `src/core/messages.rs` and the two model enums it re-exports; `Error`'s constructors take
//! nothing else, so the `#[error("…")]` texts of these files are every text stratusd can put
//! in a `[false, "[<Method>] …", code]` answer or in an object's `TEMPLATE/ERROR`. This test
//! reads them from the sources. The XML-RPC faults of the protocol layer (`src/xmlrpc`) are
//! xmlrpc-c's texts, not oned's, and are checked against the recordings by `--test compat`
//! (e07–e09).
//!
//! A text matches when some way of filling its `{…}` holes makes it part of a catalogue text,
//! whose `<placeholders>` (and `…`) may stand for holes of ours but not for our words. The recordings of the real server
//! (`fixtures/oned-3.2/`, `fixtures/stratuslab-client/`) are checked against the catalogue the
//! same way: where they disagree the recording wins, and the disagreements are listed here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The files whose `#[error]` texts are oned-facing.
const SOURCES: &[&str] = &[
    "src/core/error.rs",
    "src/core/messages.rs",
    "src/model/user.rs",
    "src/model/acl.rs",
];
/// Recorded failure texts that the catalogue does not have (the recording wins); none so far.
const RECORDED_NOT_IN_CATALOGUE: &[&str] = &[];

/// A text with holes: `None` stands for any text (also empty).
type Pattern = Vec<Option<char>>;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel))
        .unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// The string literals of every `#[error("…")]` attribute of a Rust source file, unescaped.
fn error_texts(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("#[error(\"") {
        let body = &rest[at + "#[error(\"".len()..];
        let mut text = String::new();
        let mut chars = body.char_indices();
        let mut end = body.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = i;
                    break;
                }
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some(other) => text.push(other),
                    None => {}
                },
                c => text.push(c),
            }
        }
        out.push(text);
        rest = &body[end..];
    }
    out
}

/// A `format!` text as a pattern: each `{…}` argument is a hole, `{{`/`}}` are braces.
fn format_pattern(text: &str) -> Pattern {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push(Some('{'));
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push(Some('}'));
            }
            '{' => {
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
                out.push(None);
            }
            c => out.push(Some(c)),
        }
    }
    out
}

/// A catalogue text as a pattern: `<placeholder>`, `…` and `«P»` are holes, and so is an
/// optional continuation such as `[; Not authorized to perform USE NET [<nid>]]`.
fn catalogue_pattern(text: &str) -> Pattern {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("[; ") || rest.starts_with("[. ") {
            let mut depth = 0;
            let mut end = rest.len();
            for (i, ch) in rest.char_indices() {
                match ch {
                    '[' => depth += 1,
                    ']' => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            out.push(None);
            rest = &rest[end..];
            continue;
        }
        if c == '<' {
            if let Some(close) = rest[1..].find(['>', '<']) {
                if rest.as_bytes()[1 + close] == b'>' {
                    out.push(None);
                    rest = &rest[close + 2..];
                    continue;
                }
            }
        }
        if rest.starts_with('…') {
            out.push(None);
        } else if rest.starts_with("«P»") {
            out.push(None);
            rest = &rest["«P»".len()..];
            continue;
        } else {
            out.push(Some(c));
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn letters(p: &Pattern) -> usize {
    p.iter().flatten().filter(|c| c.is_alphabetic()).count()
}

/// Is there a text both patterns can be, with `inner` somewhere inside `outer`? A hole of
/// `inner` stands for anything; a placeholder of `outer` only for holes of `inner` (or
/// nothing), so that it cannot swallow words the catalogue does not have.
fn occurs_in(inner: &Pattern, outer: &Pattern) -> bool {
    // Cheap test first: each run of our words must be somewhere among the catalogue's.
    let words: String = outer.iter().map(|c| c.unwrap_or('\u{1}')).collect();
    if !runs(inner).iter().all(|r| words.contains(r.as_str())) {
        return false;
    }
    let mut a: Pattern = vec![None];
    a.extend(inner.iter().copied());
    a.push(None);
    same_text(&a, outer, false)
}

/// The texts between the holes of a pattern.
fn runs(p: &Pattern) -> Vec<String> {
    p.split(|c| c.is_none())
        .map(|run| run.iter().flatten().collect::<String>())
        .filter(|r| !r.is_empty())
        .collect()
}

/// Can `a` and `b` stand for the same text? `b`'s holes take `a`'s characters only when
/// `b_takes_words` (a recorded text is an instance of a catalogue text).
fn same_text(a: &Pattern, b: &Pattern, b_takes_words: bool) -> bool {
    // reach[i][j]: a[..i] and b[..j] can stand for the same text.
    let (n, m) = (a.len(), b.len());
    let mut reach = vec![vec![false; m + 1]; n + 1];
    reach[0][0] = true;
    for i in 0..=n {
        for j in 0..=m {
            if !reach[i][j] {
                continue;
            }
            if i < n && a[i].is_none() {
                reach[i + 1][j] = true;
                if j < m {
                    reach[i][j + 1] = true;
                }
            }
            if j < m && b[j].is_none() {
                reach[i][j + 1] = true;
                if i < n && (a[i].is_none() || b_takes_words) {
                    reach[i + 1][j] = true;
                }
            }
            if i < n && j < m {
                if let (Some(x), Some(y)) = (a[i], b[j]) {
                    if x == y {
                        reach[i + 1][j + 1] = true;
                    }
                }
            }
        }
    }
    reach[n][m]
}

/// Every code span of the catalogue that says enough to be a message (at least six letters
/// outside its placeholders: `<desc>. <detail>` and the like would match anything).
fn catalogue() -> Vec<(String, Pattern)> {
    let text = read("fixtures/oned-3.2-messages.md");
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|span| (span.to_string(), catalogue_pattern(span)))
        .filter(|(_, p)| letters(p) >= 6)
        .collect()
}

/// The stratusd-only messages of `docs/compatibility.md`: text → reason.
fn stratusd_only() -> BTreeMap<String, String> {
    let doc = read("docs/compatibility.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Messages stratusd answers that oned 3.2 did not have"))
        .expect("docs/compatibility.md has a section \"Messages stratusd answers that oned 3.2 did not have\"");
    let mut out = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let text = cells[0]
            .trim_start_matches("| `")
            .trim_end_matches('`')
            .to_string();
        let reason = cells
            .get(1)
            .map(|r| r.trim_end_matches(" |").trim())
            .unwrap_or("");
        out.insert(text, reason.to_string());
    }
    out
}

fn stratusd_texts() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in SOURCES {
        for text in error_texts(&read(file)) {
            out.push((file.to_string(), text));
        }
    }
    out
}

/// Texts that only forward another checked enum's (`{0}`, `{0}.`, `{message}`).
fn forwards(p: &Pattern) -> bool {
    letters(p) == 0
}

#[test]
fn every_oned_facing_text_is_in_the_catalogue_or_listed_as_stratusd_only() {
    let catalogue = catalogue();
    assert!(
        catalogue.len() > 200,
        "the catalogue was not read: {}",
        catalogue.len()
    );
    let listed = stratusd_only();
    let texts = stratusd_texts();
    assert!(texts.len() > 100, "too few texts found: {}", texts.len());
    let mut unknown = Vec::new();
    let mut listed_but_in_catalogue = Vec::new();
    let mut seen = BTreeSet::new();
    let mut matched = 0;
    for (file, text) in &texts {
        let p = format_pattern(text);
        if forwards(&p) {
            continue;
        }
        seen.insert(text.clone());
        let hit = catalogue.iter().find(|(_, c)| occurs_in(&p, c));
        match (hit, listed.get(text)) {
            (Some((c, _)), Some(_)) => {
                listed_but_in_catalogue.push(format!("{text:?} matches {c:?}"))
            }
            (Some(_), None) => matched += 1,
            (None, Some(reason)) if reason.is_empty() => {
                unknown.push(format!("{file}: {text:?} is listed without a reason"))
            }
            (None, Some(_)) => {}
            (None, None) => unknown.push(format!("{file}: {text:?}")),
        }
    }
    let stale: Vec<&String> = listed.keys().filter(|t| !seen.contains(*t)).collect();
    assert!(
        unknown.is_empty(),
        "texts neither in the catalogue nor in docs/compatibility.md's stratusd-only list:\n{}",
        unknown.join("\n")
    );
    assert!(
        listed_but_in_catalogue.is_empty(),
        "listed as stratusd-only but the catalogue has them:\n{}",
        listed_but_in_catalogue.join("\n")
    );
    assert!(
        stale.is_empty(),
        "listed as stratusd-only but no source has them: {stale:?}"
    );
    println!(
        "{matched} texts in the catalogue, {} stratusd-only, of {} read",
        listed.len(),
        texts.len()
    );
}

/// The failure texts of every recorded answer of the real server (`[false, text, code]`).
fn recorded_failures() -> HashMap<String, String> {
    let mut out = HashMap::new();
    for dir in ["fixtures/oned-3.2", "fixtures/stratuslab-client"] {
        let mut files: Vec<_> = std::fs::read_dir(Path::new(ROOT).join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let response = v["response"].as_str().unwrap_or_default();
                let Some(at) = response.find("<boolean>0</boolean>") else {
                    continue;
                };
                let after = &response[at..];
                let Some(start) = after.find("<string>") else {
                    continue;
                };
                let body = &after[start + "<string>".len()..];
                let Some(end) = body.find("</string>") else {
                    continue;
                };
                let message = body[..end]
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .replace("&amp;", "&");
                out.entry(message)
                    .or_insert_with(|| path.file_name().unwrap().to_string_lossy().to_string());
            }
        }
    }
    out
}

#[test]
fn every_recorded_failure_text_is_in_the_catalogue() {
    let catalogue = catalogue();
    let recorded = recorded_failures();
    assert!(
        recorded.len() > 50,
        "recordings not read: {}",
        recorded.len()
    );
    let mut disagree = BTreeSet::new();
    for message in recorded.keys() {
        // The `[<Method>] ` prefix is the catalogue's «P».
        let body = match message.strip_prefix('[').and_then(|m| m.split_once("] ")) {
            Some((_, body)) => body,
            None => message.as_str(),
        };
        let p: Pattern = body.chars().map(Some).collect();
        // The whole text is a catalogue text, or one of the catalogue's details after the
        // allocation prefix or among authorization reasons.
        let forms = |c: &Pattern| -> Vec<Pattern> {
            let mut allocation = catalogue_pattern("Error allocating a new <object>. ");
            allocation.extend(c.iter().copied());
            let mut reason = catalogue_pattern("User [<uid>] : ");
            reason.extend(c.iter().copied());
            let mut reasons = reason.clone();
            reason.push(Some('.'));
            reasons.extend(catalogue_pattern("; <more>."));
            vec![c.clone(), allocation, reason, reasons]
        };
        let known = catalogue.iter().any(|(_, c)| {
            runs(c).iter().all(|r| body.contains(r.as_str()))
                && forms(c).iter().any(|f| same_text(&p, f, true))
        });
        if !known {
            disagree.insert(message.clone());
        }
    }
    let known: BTreeSet<String> = RECORDED_NOT_IN_CATALOGUE
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        disagree, known,
        "recorded texts the catalogue lacks (the recording wins: list them and answer them)"
    );
}

#[test]
fn the_matcher_finds_what_it_should() {
    let c = |t: &str| catalogue_pattern(t);
    let f = |t: &str| format_pattern(t);
    assert!(occurs_in(
        &f("NAME cannot be empty."),
        &c("Error allocating a new host. NAME cannot be empty.")
    ));
    assert!(occurs_in(
        &f("Error getting {} [{id}]."),
        &c("Error getting <object> [<id>].")
    ));
    assert!(occurs_in(
        &f("Rule {rule} is malformed: {}"),
        &c("Rule <rule-string> is malformed: <reason>[; <reason>…]")
    ));
    assert!(occurs_in(
        &f("Error monitoring VM: {0}"),
        &c("Error monitoring VM: <reason>")
    ));
    assert!(!occurs_in(
        &f("NAME can not be empty."),
        &c("NAME cannot be empty.")
    ));
    assert!(!occurs_in(
        &f("Lease is in use by a VM."),
        &c("Error modifying network leases. Lease is in use.")
    ));
    assert!(!occurs_in(
        &f("Wrong IP in lease."),
        &c("Error modifying network leases. Wrong Lease format.")
    ));
    // A placeholder does not swallow words the catalogue does not have.
    assert!(!occurs_in(
        &f("Wrong NETWORK_SIZE in template."),
        &c("Error getting <object> [<id>].")
    ));
    assert!(occurs_in(
        &f("{key} {value} is not a valid IP."),
        &c("IP_START <value> is not a valid IP.")
    ));
    assert_eq!(
        error_texts("#[error(\"a \\\"b\\\" {0}\")]\nX,\n#[error(\"c\")]"),
        ["a \"b\" {0}", "c"]
    );
}
