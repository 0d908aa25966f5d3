//! Comparison of a recorded XML-RPC response with the one stratusd gave.
//!
//! Values are compared element by element, including the spelling of their types. A string
//! that is an XML document (`<VM>…</VM>`, `<HOST_POOL>…`) is compared as a tree: element
//! names, order, attributes and text (CDATA content counts as text). Only the values that
//! the recordings' README lists as run-dependent are normalised away:
//!
//! * time fields (`STIME`, `ETIME`, …, `REGTIME`) outside templates: equal when both are 0
//!   or both are non-zero;
//! * serveradmin's `PASSWORD`: any 40 hex digits;
//! * image repository file names `/var/lib/one/images/<32 hex>`, in any text, including
//!   plain strings such as error messages;
//! * `TEMPLATE/ERROR/TIMESTAMP`: any text.
//!
//! Every difference is also classified: *state-like* differences are those that the README
//! allows to lag behind while the server works asynchronously (states, history, monitoring
//! data, a pool member not there yet, …). The replayer re-sends an `.info` call whose
//! differences are all state-like; any other difference fails at once.

use super::xmlrpc::{Response, Value};
use super::xmltree::{self, Element};
use std::borrow::Cow;
use std::fmt;

/// One difference between the recorded and the actual answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// Where: an XML-RPC value path (`result[1]`, `fault.faultString`), followed for
    /// documents by the element path (`result[1] VM/TEMPLATE/NIC/IP`).
    pub path: String,
    pub expected: String,
    pub actual: String,
    /// True when the README allows this part to lag behind the recording.
    pub state_like: bool,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, actual {}",
            self.path, self.expected, self.actual
        )
    }
}

/// The differences of interest in a list: the first one that is not state-like, else the first.
pub fn first_significant(differences: &[Difference]) -> Option<&Difference> {
    differences
        .iter()
        .find(|d| !d.state_like)
        .or_else(|| differences.first())
}

/// Time fields of the documents (epoch seconds, `0` = not set).
const TIME_FIELDS: &[&str] = &[
    "STIME",
    "ETIME",
    "PSTIME",
    "PETIME",
    "RSTIME",
    "RETIME",
    "ESTIME",
    "EETIME",
    "LAST_POLL",
    "LAST_MON_TIME",
    "REGTIME",
];

/// Directory of the image repository as the recorded server (and stratusd) report it.
const REPOSITORY_PREFIX: &str = "/var/lib/one/images/";
/// What a repository file name is replaced with before comparing.
const REPOSITORY_PLACEHOLDER: &str = "<32 hex digits>";

/// Compares two decoded responses; an empty result means they match.
pub fn compare_responses(expected: &Response, actual: &Response) -> Vec<Difference> {
    let mut comparer = Comparer::default();
    match (expected, actual) {
        (Response::Params(expected), Response::Params(actual)) => {
            if expected.len() != actual.len() {
                comparer.push(
                    "params",
                    format!("{} <param>", expected.len()),
                    format!("{} <param>", actual.len()),
                    false,
                );
            }
            let single = expected.len() == 1;
            for (index, (e, a)) in expected.iter().zip(actual).enumerate() {
                let path = if single {
                    "result".to_string()
                } else {
                    format!("param[{index}]")
                };
                comparer.value(&path, e, a);
            }
        }
        (Response::Fault(expected), Response::Fault(actual)) => {
            comparer.value("fault", expected, actual)
        }
        (expected, actual) => comparer.push(
            "response",
            describe_response(expected),
            describe_response(actual),
            false,
        ),
    }
    comparer.differences
}

fn describe_response(response: &Response) -> String {
    match response {
        Response::Params(values) => match values.as_slice() {
            [Value::Array(items)] => format!(
                "<params> [{}]",
                items
                    .iter()
                    .map(Value::brief)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => "<params>".to_string(),
        },
        Response::Fault(value) => format!("<fault> {}", fault_summary(value)),
    }
}

fn fault_summary(value: &Value) -> String {
    if let Value::Struct(members) = value {
        let member = |name: &str| {
            members
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.brief())
                .unwrap_or_default()
        };
        format!("{} {}", member("faultCode"), member("faultString"))
    } else {
        value.brief()
    }
}

/// Replaces every image repository file name in `text` with a placeholder.
pub fn normalise_text(text: &str) -> Cow<'_, str> {
    if !text.contains(REPOSITORY_PREFIX) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find(REPOSITORY_PREFIX) {
        let name_start = found + REPOSITORY_PREFIX.len();
        out.push_str(&rest[..name_start]);
        let after = &rest[name_start..];
        let hex_len = after
            .bytes()
            .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .count();
        if hex_len == 32 {
            out.push_str(REPOSITORY_PLACEHOLDER);
            rest = &after[32..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Quotes a string for a message, shortening it when long.
pub fn quote_brief(text: &str) -> String {
    const LIMIT: usize = 100;
    if text.chars().count() <= LIMIT {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(LIMIT - 20).collect();
        format!("{head:?}… ({} chars)", text.chars().count())
    }
}

/// Renders two different strings so that the first difference is visible.
fn show_difference(expected: &str, actual: &str) -> (String, String) {
    const SHORT: usize = 100;
    if expected.chars().count() <= SHORT && actual.chars().count() <= SHORT {
        return (format!("{expected:?}"), format!("{actual:?}"));
    }
    let first_diff = expected
        .chars()
        .zip(actual.chars())
        .take_while(|(e, a)| e == a)
        .count();
    let window = |text: &str| {
        let start = first_diff.saturating_sub(30);
        let snippet: String = text.chars().skip(start).take(80).collect();
        let prefix = if start > 0 { "…" } else { "" };
        let suffix = if text.chars().count() > start + 80 {
            "…"
        } else {
            ""
        };
        format!("{prefix}{snippet:?}{suffix}")
    };
    (
        format!("{} (differs from char {first_diff})", window(expected)),
        window(actual),
    )
}

/// Parses `text` as an XML document if it looks like one (starts with `<`).
fn as_document(text: &str) -> Option<Element> {
    if text.starts_with('<') {
        xmltree::parse_document(text).ok()
    } else {
        None
    }
}

#[derive(Default)]
struct Comparer {
    differences: Vec<Difference>,
}

impl Comparer {
    fn push(
        &mut self,
        path: impl Into<String>,
        expected: impl Into<String>,
        actual: impl Into<String>,
        state_like: bool,
    ) {
        self.differences.push(Difference {
            path: path.into(),
            expected: expected.into(),
            actual: actual.into(),
            state_like,
        });
    }

    fn value(&mut self, path: &str, expected: &Value, actual: &Value) {
        if expected.type_name() != actual.type_name() {
            self.push(
                path,
                format!("{} {}", expected.type_name(), expected.brief()),
                format!("{} {}", actual.type_name(), actual.brief()),
                false,
            );
            return;
        }
        match (expected, actual) {
            (Value::String { text: e, .. }, Value::String { text: a, .. }) => {
                self.string(path, e, a)
            }
            (Value::Array(e), Value::Array(a)) => {
                if e.len() != a.len() {
                    self.push(
                        path,
                        format!("array of {} {}", e.len(), brief_items(e)),
                        format!("array of {} {}", a.len(), brief_items(a)),
                        false,
                    );
                }
                for (index, (e, a)) in e.iter().zip(a).enumerate() {
                    self.value(&format!("{path}[{index}]"), e, a);
                }
            }
            (Value::Struct(e), Value::Struct(a)) => {
                let names = |members: &[(String, Value)]| {
                    members.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()
                };
                if names(e) != names(a) {
                    self.push(
                        path,
                        format!("members {:?}", names(e)),
                        format!("members {:?}", names(a)),
                        false,
                    );
                }
                for (name, e) in e {
                    if let Some((_, a)) = a.iter().find(|(n, _)| n == name) {
                        self.value(&format!("{path}.{name}"), e, a);
                    }
                }
            }
            (e, a) => {
                if e != a {
                    self.push(path, e.brief(), a.brief(), false);
                }
            }
        }
    }

    fn string(&mut self, path: &str, expected: &str, actual: &str) {
        if let Some(expected_doc) = as_document(expected) {
            match xmltree::parse_document(actual) {
                Ok(actual_doc) => {
                    let mut ancestors = Vec::new();
                    let doc_path = format!("{path} {}", expected_doc.name);
                    self.element(
                        &doc_path,
                        &expected_doc,
                        &actual_doc,
                        None,
                        &mut ancestors,
                        false,
                    );
                }
                Err(error) => self.push(
                    path,
                    format!("an XML document <{}>", expected_doc.name),
                    format!(
                        "a string that is not one ({error}): {}",
                        quote_brief(actual)
                    ),
                    false,
                ),
            }
            return;
        }
        let (e, a) = (normalise_text(expected), normalise_text(actual));
        if e != a {
            let (e, a) = show_difference(&e, &a);
            self.push(path, e, a, false);
        }
    }

    /// Compares two elements of the same position. `ancestors` are the names from the
    /// document root to the parent; `parent` is the expected side's parent element.
    fn element<'d>(
        &mut self,
        path: &str,
        expected: &'d Element,
        actual: &'d Element,
        parent: Option<&'d Element>,
        ancestors: &mut Vec<&'d str>,
        inherited_state_like: bool,
    ) {
        let state_like = inherited_state_like || is_state_like_subtree(&expected.name, ancestors);
        if expected.name != actual.name {
            self.push(
                path,
                format!("<{}>", expected.name),
                format!("<{}>", actual.name),
                state_like,
            );
            return;
        }
        if expected.attributes != actual.attributes {
            self.push(
                format!("{path} (attributes)"),
                format!("{:?}", expected.attributes),
                format!("{:?}", actual.attributes),
                state_like,
            );
        }
        if expected.children.is_empty() && actual.children.is_empty() {
            self.leaf(path, expected, actual, parent, ancestors, state_like);
            return;
        }
        let (e_text, a_text) = (normalise_text(&expected.text), normalise_text(&actual.text));
        if e_text != a_text {
            let (e, a) = show_difference(&e_text, &a_text);
            self.push(format!("{path} (text)"), e, a, state_like);
        }
        ancestors.push(&expected.name);
        self.children(path, expected, actual, ancestors, state_like);
        ancestors.pop();
    }

    fn leaf(
        &mut self,
        path: &str,
        expected: &Element,
        actual: &Element,
        parent: Option<&Element>,
        ancestors: &[&str],
        state_like: bool,
    ) {
        let name = expected.name.as_str();
        let parent_name = ancestors.last().copied();
        let in_template = ancestors.contains(&"TEMPLATE");
        let (e, a) = (expected.text.as_str(), actual.text.as_str());

        // The date string of TEMPLATE/ERROR/TIMESTAMP is run-dependent.
        if name == "TIMESTAMP"
            && parent_name == Some("ERROR")
            && ancestors.len() >= 2
            && ancestors[ancestors.len() - 2] == "TEMPLATE"
        {
            return;
        }
        // serveradmin's password is random at bootstrap.
        if name == "PASSWORD"
            && parent_name == Some("USER")
            && parent.and_then(|p| p.child_text("NAME")) == Some("serveradmin")
        {
            if !is_hex(a, 40) {
                self.push(path, "40 hex digits", quote_brief(a), state_like);
            }
            return;
        }
        if TIME_FIELDS.contains(&name) && !in_template {
            if let (Ok(e_time), Ok(a_time)) = (e.parse::<i64>(), a.parse::<i64>()) {
                if (e_time == 0) != (a_time == 0) {
                    let describe = |t: i64| {
                        if t == 0 {
                            "0 (not set)".to_string()
                        } else {
                            format!("a time ({t})")
                        }
                    };
                    // A time going from 0 to a value is one of the parts that may lag.
                    self.push(path, describe(e_time), describe(a_time), true);
                }
                return;
            }
        }
        let (e_norm, a_norm) = (normalise_text(e), normalise_text(a));
        if e_norm != a_norm {
            let (e_shown, a_shown) = show_difference(&e_norm, &a_norm);
            let lag = state_like || is_state_like_field(name, parent_name, in_template);
            self.push(path, e_shown, a_shown, lag);
        }
    }

    fn children<'d>(
        &mut self,
        path: &str,
        expected: &'d Element,
        actual: &'d Element,
        ancestors: &mut Vec<&'d str>,
        state_like: bool,
    ) {
        if expected.name.ends_with("_POOL")
            && self.pool(path, expected, actual, ancestors, state_like)
        {
            return;
        }
        let e_names = child_names(&expected.children);
        let a_names = child_names(&actual.children);
        if e_names == a_names {
            self.pairwise(
                path,
                expected,
                &refs(&expected.children),
                &refs(&actual.children),
                ancestors,
                state_like,
            );
            return;
        }
        // Children that may be there or not while the server works: an ERROR attribute in
        // any TEMPLATE, the CONTEXT of a VM's TEMPLATE. Those present on one side only are
        // set aside; if the rest then lines up, they are the only (state-like) difference.
        let grandparent = ancestors.iter().rev().nth(1).copied();
        let may_lag = |name: &str| {
            expected.name == "TEMPLATE"
                && (name == "ERROR" || (name == "CONTEXT" && grandparent == Some("VM")))
        };
        let one_sided = |name: &str| {
            may_lag(name) && (expected.child(name).is_some() != actual.child(name).is_some())
        };
        let e_kept: Vec<&Element> = expected
            .children
            .iter()
            .filter(|c| !one_sided(&c.name))
            .collect();
        let a_kept: Vec<&Element> = actual
            .children
            .iter()
            .filter(|c| !one_sided(&c.name))
            .collect();
        if !state_like && child_names_ref(&e_kept) == child_names_ref(&a_kept) {
            for child in &expected.children {
                if one_sided(&child.name) {
                    self.push(format!("{path}/{}", child.name), "present", "absent", true);
                }
            }
            for child in &actual.children {
                if one_sided(&child.name) {
                    self.push(format!("{path}/{}", child.name), "absent", "present", true);
                }
            }
            self.pairwise(path, expected, &e_kept, &a_kept, ancestors, state_like);
            return;
        }
        // A real structural difference: compare the common prefix, then describe the
        // first place where the children differ.
        let common = e_names
            .iter()
            .zip(&a_names)
            .take_while(|(e, a)| e == a)
            .count();
        self.pairwise(
            path,
            expected,
            &refs(&expected.children[..common]),
            &refs(&actual.children[..common]),
            ancestors,
            state_like,
        );
        let e_tail = &e_names[common..];
        let a_tail = &a_names[common..];
        let describe = |names: &[&str]| {
            names
                .first()
                .map(|name| format!("<{name}>"))
                .unwrap_or_else(|| "no more children".to_string())
        };
        let (mut what_expected, mut what_actual) = (describe(e_tail), describe(a_tail));
        if !e_tail.is_empty() && e_tail[1..] == *a_tail {
            what_expected.push_str(" (missing)");
        } else if !a_tail.is_empty() && a_tail[1..] == *e_tail {
            what_actual.push_str(" (extra)");
        }
        self.push(
            format!("{path} child #{}", common + 1),
            what_expected,
            what_actual,
            state_like,
        );
    }

    /// Compares pool documents member by member, matched by element name and ID, so that a
    /// member that is not there yet (or still there) is reported as such. Returns false
    /// when the members cannot be keyed (then the generic comparison applies).
    fn pool<'d>(
        &mut self,
        path: &str,
        expected: &'d Element,
        actual: &'d Element,
        ancestors: &mut Vec<&'d str>,
        state_like: bool,
    ) -> bool {
        let (Some(e_keys), Some(a_keys)) = (pool_keys(expected), pool_keys(actual)) else {
            return false;
        };
        let member_path = |(name, id): &(&str, &str)| format!("{path}/{name}[ID={id}]");
        let e_common: Vec<_> = e_keys.iter().filter(|k| a_keys.contains(k)).collect();
        let a_common: Vec<_> = a_keys.iter().filter(|k| e_keys.contains(k)).collect();
        if e_common != a_common {
            self.push(
                format!("{path} (member order)"),
                format!("IDs {:?}", e_common.iter().map(|k| k.1).collect::<Vec<_>>()),
                format!("IDs {:?}", a_common.iter().map(|k| k.1).collect::<Vec<_>>()),
                state_like,
            );
        }
        for key in e_keys.iter().filter(|k| !a_keys.contains(k)) {
            // A member still there or not yet there may lag.
            self.push(member_path(key), "present", "absent", true);
        }
        for key in a_keys.iter().filter(|k| !e_keys.contains(k)) {
            self.push(member_path(key), "absent", "present", true);
        }
        for (e_index, key) in e_keys.iter().enumerate() {
            if let Some(a_index) = a_keys.iter().position(|k| k == key) {
                self.element(
                    &member_path(key),
                    &expected.children[e_index],
                    &actual.children[a_index],
                    Some(expected),
                    ancestors,
                    state_like,
                );
            }
        }
        true
    }

    /// Compares children with the same names position by position. `ancestors` already
    /// ends with the parent's name.
    fn pairwise<'d>(
        &mut self,
        path: &str,
        parent: &'d Element,
        expected: &[&'d Element],
        actual: &[&'d Element],
        ancestors: &mut Vec<&'d str>,
        state_like: bool,
    ) {
        for (index, (e, a)) in expected.iter().zip(actual).enumerate() {
            let same_name_count = expected.iter().filter(|c| c.name == e.name).count();
            let child_path = if same_name_count > 1 {
                let occurrence = expected[..index]
                    .iter()
                    .filter(|c| c.name == e.name)
                    .count();
                format!("{path}/{}[{}]", e.name, occurrence + 1)
            } else {
                format!("{path}/{}", e.name)
            };
            self.element(&child_path, e, a, Some(parent), ancestors, state_like);
        }
    }
}

fn brief_items(items: &[Value]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(Value::brief)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn refs(children: &[Element]) -> Vec<&Element> {
    children.iter().collect()
}

fn child_names(children: &[Element]) -> Vec<&str> {
    children.iter().map(|c| c.name.as_str()).collect()
}

fn child_names_ref<'e>(children: &[&'e Element]) -> Vec<&'e str> {
    children.iter().map(|c| c.name.as_str()).collect()
}

/// `(element name, ID)` of every member of a pool, or `None` when a member has no ID or
/// two members share one.
fn pool_keys(pool: &Element) -> Option<Vec<(&str, &str)>> {
    let mut keys = Vec::with_capacity(pool.children.len());
    for member in &pool.children {
        let key = (member.name.as_str(), member.child_text("ID")?);
        if keys.contains(&key) {
            return None;
        }
        keys.push(key);
    }
    Some(keys)
}

/// Whole subtrees that the README allows to lag: `HISTORY_RECORDS`, `HOST_SHARE`,
/// `HOST/TEMPLATE`, `VM/TEMPLATE/CONTEXT`, `TEMPLATE/ERROR`. `ancestors` end with the parent.
fn is_state_like_subtree(name: &str, ancestors: &[&str]) -> bool {
    let parent = ancestors.last().copied();
    let grandparent = ancestors.iter().rev().nth(1).copied();
    match name {
        "HISTORY_RECORDS" => parent == Some("VM"),
        "HOST_SHARE" => parent == Some("HOST"),
        "TEMPLATE" => parent == Some("HOST"),
        "CONTEXT" => parent == Some("TEMPLATE") && grandparent == Some("VM"),
        "ERROR" => parent == Some("TEMPLATE"),
        _ => false,
    }
}

/// Single fields that the README allows to lag: `STATE`, `LCM_STATE`, `DEPLOY_ID` (outside
/// templates), VM `CPU MEMORY NET_TX NET_RX`, `IMAGE/SOURCE`, `IMAGE/SIZE`.
fn is_state_like_field(name: &str, parent: Option<&str>, in_template: bool) -> bool {
    if in_template {
        return false;
    }
    match name {
        "STATE" | "LCM_STATE" | "DEPLOY_ID" => true,
        "CPU" | "MEMORY" | "NET_TX" | "NET_RX" => parent == Some("VM"),
        "SOURCE" | "SIZE" => parent == Some("IMAGE"),
        _ => false,
    }
}

/// The first significant difference a self-check expects: `(path, state_like)`, or `None`
/// when the documents must match.
type ExpectedOutcome = Option<(&'static str, bool)>;

/// Checks run by `--self-test`. Each one compares a document with an altered copy and
/// checks that exactly the expected differences (or none) are reported.
pub fn self_checks(checks: &mut crate::harness::selftest::Checks) {
    use super::xmlrpc::IntTag;
    let string = |text: &str| Value::String {
        typed: true,
        text: text.to_string(),
    };
    let i4 = |value: i32| Value::Int {
        tag: IntTag::I4,
        value,
    };
    let success = |doc: &str| {
        Response::Params(vec![Value::Array(vec![
            Value::Boolean(true),
            string(doc),
            i4(0),
        ])])
    };
    // (what is altered, the altered document, the expected outcome)
    let vm = "<VM><ID>0</ID><NAME>a</NAME><LAST_POLL>0</LAST_POLL><STATE>1</STATE>\
        <STIME>1795488825</STIME><ETIME>0</ETIME><DEPLOY_ID></DEPLOY_ID><CPU>0</CPU>\
        <TEMPLATE><CONTEXT><TARGET><![CDATA[hdd]]></TARGET></CONTEXT><CPU><![CDATA[0.5]]></CPU>\
        <DISK><SOURCE><![CDATA[/var/lib/one/images/c57e2bee5d5225dadb1d54f5fc7d329d]]></SOURCE></DISK>\
        <DISK><SIZE><![CDATA[512]]></SIZE></DISK><STIME><![CDATA[5]]></STIME></TEMPLATE>\
        <HISTORY_RECORDS/></VM>";
    let cases: Vec<(&str, String, ExpectedOutcome)> = vec![
        ("identical", vm.to_string(), None),
        (
            "CDATA equals text",
            vm.replace("<![CDATA[hdd]]>", "hdd"),
            None,
        ),
        (
            "other non-zero time",
            vm.replace("1795488825", "1700000000"),
            None,
        ),
        (
            "time 0 vs set",
            vm.replace("<ETIME>0</ETIME>", "<ETIME>17</ETIME>"),
            Some(("result[1] VM/ETIME", true)),
        ),
        (
            "time inside TEMPLATE is a plain value",
            vm.replace("<![CDATA[5]]>", "<![CDATA[6]]>"),
            Some(("result[1] VM/TEMPLATE/STIME", false)),
        ),
        (
            "other repository name",
            vm.replace(
                "c57e2bee5d5225dadb1d54f5fc7d329d",
                "0123456789abcdef0123456789abcdef",
            ),
            None,
        ),
        (
            "repository name of 31 hex digits",
            vm.replace(
                "c57e2bee5d5225dadb1d54f5fc7d329d",
                "0123456789abcdef0123456789abcde",
            ),
            Some(("result[1] VM/TEMPLATE/DISK[1]/SOURCE", false)),
        ),
        (
            "other name",
            vm.replace("<NAME>a</NAME>", "<NAME>b</NAME>"),
            Some(("result[1] VM/NAME", false)),
        ),
        (
            "state lags",
            vm.replace("<STATE>1</STATE>", "<STATE>3</STATE>"),
            Some(("result[1] VM/STATE", true)),
        ),
        (
            "VM CPU lags",
            vm.replace("<CPU>0</CPU>", "<CPU>5</CPU>"),
            Some(("result[1] VM/CPU", true)),
        ),
        (
            "TEMPLATE CPU does not lag",
            vm.replace("<![CDATA[0.5]]>", "<![CDATA[1]]>"),
            Some(("result[1] VM/TEMPLATE/CPU", false)),
        ),
        (
            "context completed",
            vm.replace("<CONTEXT>", "<CONTEXT><IP><![CDATA[1.2.3.4]]></IP>"),
            Some(("result[1] VM/TEMPLATE/CONTEXT child #1", true)),
        ),
        (
            "history appears",
            vm.replace(
                "<HISTORY_RECORDS/>",
                "<HISTORY_RECORDS><HISTORY><SEQ>0</SEQ></HISTORY></HISTORY_RECORDS>",
            ),
            Some(("result[1] VM/HISTORY_RECORDS child #1", true)),
        ),
        (
            "template ERROR appears",
            vm.replace(
                "<DISK><SIZE>",
                "<ERROR><MESSAGE>m</MESSAGE><TIMESTAMP>t</TIMESTAMP></ERROR><DISK><SIZE>",
            ),
            Some(("result[1] VM/TEMPLATE/ERROR", true)),
        ),
        (
            "template attribute missing",
            vm.replace("<CPU><![CDATA[0.5]]></CPU>", ""),
            Some(("result[1] VM/TEMPLATE child #2", false)),
        ),
        (
            "extra element",
            vm.replace("<NAME>a</NAME>", "<NAME>a</NAME><X/>"),
            Some(("result[1] VM child #3", false)),
        ),
        (
            "whitespace between elements",
            vm.replace("<NAME>a</NAME>", "<NAME>a</NAME>\n"),
            Some(("result[1] VM (text)", false)),
        ),
        (
            "broken document",
            vm.replace("</VM>", ""),
            Some(("result[1]", false)),
        ),
    ];
    for (name, actual, outcome) in cases {
        let differences = compare_responses(&success(vm), &success(&actual));
        let got = first_significant(&differences).map(|d| (d.path.as_str(), d.state_like));
        checks.check(
            &format!("compare: {name}"),
            got == outcome,
            format!("expected {outcome:?}, got {differences:?}"),
        );
    }

    let error_doc = "<IMAGE><ID>1</ID><SOURCE>-</SOURCE><STATE>5</STATE><TEMPLATE><ERROR><MESSAGE>\
        <![CDATA[Could not move /var/lib/one/1/disk.0 to /var/lib/one/images/eada15bdc0d4bab921feefa1ffe11c68]]>\
        </MESSAGE><TIMESTAMP><![CDATA[Tue Nov 24 02:55:04 2026]]></TIMESTAMP></ERROR></TEMPLATE></IMAGE>";
    let other_run = error_doc
        .replace(
            "eada15bdc0d4bab921feefa1ffe11c68",
            "ffffffffffffffffffffffffffffffff",
        )
        .replace("Tue Nov 24 02:55:04 2026", "Mon Jan  1 00:00:00 2030");
    checks.check(
        "compare: ERROR message repository name and TIMESTAMP are run-dependent",
        compare_responses(&success(error_doc), &success(&other_run)).is_empty(),
        format!(
            "{:?}",
            compare_responses(&success(error_doc), &success(&other_run))
        ),
    );
    let other_message = error_doc.replace("Could not move", "Could not copy");
    let differences = compare_responses(&success(error_doc), &success(&other_message));
    checks.check(
        "compare: other ERROR message is a (lagging) difference",
        differences.len() == 1 && differences[0].state_like,
        format!("{differences:?}"),
    );

    let users = |password: &str| {
        format!(
            "<USER_POOL><USER><ID>0</ID><NAME>oneadmin</NAME><PASSWORD>5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8</PASSWORD></USER>\
             <USER><ID>1</ID><NAME>serveradmin</NAME><PASSWORD>{password}</PASSWORD></USER></USER_POOL>"
        )
    };
    let recorded = users("a74b3725ec7659362215fc5c493fddf65494d639");
    checks.check(
        "compare: serveradmin PASSWORD is any 40 hex digits",
        compare_responses(
            &success(&recorded),
            &success(&users("0000000000000000000000000000000000000000")),
        )
        .is_empty(),
        "reported a difference",
    );
    let differences = compare_responses(&success(&recorded), &success(&users("secret")));
    checks.check(
        "compare: serveradmin PASSWORD must be hex",
        differences.len() == 1 && differences[0].path == "result[1] USER_POOL/USER[ID=1]/PASSWORD",
        format!("{differences:?}"),
    );
    let oneadmin_changed = recorded.replace("5baa61e4", "00000000");
    let differences = compare_responses(&success(&recorded), &success(&oneadmin_changed));
    checks.check(
        "compare: oneadmin PASSWORD is not run-dependent",
        differences.len() == 1 && !differences[0].state_like,
        format!("{differences:?}"),
    );

    let pool =
        "<VM_POOL><VM><ID>0</ID><STATE>1</STATE></VM><VM><ID>1</ID><STATE>1</STATE></VM></VM_POOL>";
    let missing = "<VM_POOL><VM><ID>1</ID><STATE>1</STATE></VM></VM_POOL>";
    let differences = compare_responses(&success(pool), &success(missing));
    checks.check(
        "compare: pool member not there is state-like",
        differences.len() == 1
            && differences[0].state_like
            && differences[0].path == "result[1] VM_POOL/VM[ID=0]",
        format!("{differences:?}"),
    );
    let swapped =
        "<VM_POOL><VM><ID>1</ID><STATE>1</STATE></VM><VM><ID>0</ID><STATE>1</STATE></VM></VM_POOL>";
    let differences = compare_responses(&success(pool), &success(swapped));
    checks.check(
        "compare: pool member order is a real difference",
        first_significant(&differences).is_some_and(|d| !d.state_like),
        format!("{differences:?}"),
    );
    let ahead = pool.replace("<ID>1</ID><STATE>1</STATE>", "<ID>1</ID><STATE>3</STATE>");
    let differences = compare_responses(&success(pool), &success(&ahead));
    checks.check(
        "compare: state of a pool member",
        differences.len() == 1
            && differences[0].state_like
            && differences[0].path == "result[1] VM_POOL/VM[ID=1]/STATE",
        format!("{differences:?}"),
    );

    let int_spelling = Response::Params(vec![Value::Array(vec![
        Value::Boolean(true),
        Value::Int {
            tag: IntTag::Int,
            value: 0,
        },
        i4(0),
    ])]);
    let recorded_ids =
        Response::Params(vec![Value::Array(vec![Value::Boolean(true), i4(0), i4(0)])]);
    let differences = compare_responses(&recorded_ids, &int_spelling);
    checks.check(
        "compare: <int> where <i4> was recorded",
        differences.len() == 1 && differences[0].path == "result[1]" && !differences[0].state_like,
        format!("{differences:?}"),
    );
    let other_id = Response::Params(vec![Value::Array(vec![Value::Boolean(true), i4(1), i4(0)])]);
    checks.check(
        "compare: other id",
        compare_responses(&recorded_ids, &other_id).len() == 1,
        "no difference reported",
    );
    let fault = Response::Fault(Value::Struct(vec![
        ("faultCode".into(), i4(-501)),
        ("faultString".into(), string("Not enough parameters")),
    ]));
    let differences = compare_responses(&recorded_ids, &fault);
    checks.check(
        "compare: fault where params were recorded",
        differences.len() == 1 && differences[0].path == "response",
        format!("{differences:?}"),
    );
    let other_fault = Response::Fault(Value::Struct(vec![
        ("faultCode".into(), i4(-501)),
        ("faultString".into(), string("Not enough parameterz")),
    ]));
    let differences = compare_responses(&fault, &other_fault);
    checks.check(
        "compare: other fault string",
        differences.len() == 1 && differences[0].path == "fault.faultString",
        format!("{differences:?}"),
    );
    let message = |text: &str| {
        Response::Params(vec![Value::Array(vec![
            Value::Boolean(false),
            string(text),
            i4(8192),
        ])])
    };
    checks.check(
        "compare: repository name inside an error message",
        compare_responses(
            &message("Error copying /x to /var/lib/one/images/b1e8e2c58a97548c6a80672e2d0748e7"),
            &message("Error copying /x to /var/lib/one/images/00000000000000000000000000000000"),
        )
        .is_empty(),
        "reported a difference",
    );
    checks.check(
        "compare: other error message",
        compare_responses(
            &message("[VirtualMachineAction] Wrong state to perform action"),
            &message("[VirtualMachineAction] Wrong state"),
        )
        .len()
            == 1,
        "no difference reported",
    );
    checks.check(
        "compare: untyped string where <string> was recorded",
        compare_responses(
            &message("x"),
            &Response::Params(vec![Value::Array(vec![
                Value::Boolean(false),
                Value::String {
                    typed: false,
                    text: "x".into(),
                },
                i4(8192),
            ])]),
        )
        .len()
            == 1,
        "no difference reported",
    );
    let long_e = format!("{}A{}", "x".repeat(150), "y".repeat(50));
    let long_a = format!("{}B{}", "x".repeat(150), "y".repeat(50));
    let (shown, _) = show_difference(&long_e, &long_a);
    checks.check(
        "compare: long strings are shown around the first difference",
        shown.contains("xA") && shown.contains("char 150"),
        shown.clone(),
    );
}
