//! Loading a recorded session (`.jsonl`) and replaying it against a daemon.

use super::compare::{self, Difference};
use super::http::{HttpClient, HttpResponse};
use super::json::{self, Json};
use super::xmlrpc::{self, Response};
use std::fs;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The endpoint of every recorded call.
const RPC_PATH: &str = "/RPC2";
const DEFAULT_CONTENT_TYPE: &str = "text/xml";

/// What the recorded server answered.
#[derive(Debug, Clone, PartialEq)]
pub enum ExpectedAnswer {
    /// HTTP 200 with an XML-RPC response.
    XmlRpc(Response),
    /// Any other status: status and body are compared as they are.
    Http { status: u16, body: String },
}

/// One recorded HTTP exchange.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub seq: i64,
    /// The `<methodName>`, `None` when the request has none.
    pub method: Option<String>,
    /// The request body as it goes on the wire (latin-1 when its declaration says so).
    pub request_body: Vec<u8>,
    pub content_type: String,
    pub expected: ExpectedAnswer,
    /// The recording's `sleep` waits after this call: kept as a minimum delay.
    pub delay_after: Duration,
}

impl Exchange {
    pub fn method_name(&self) -> &str {
        self.method.as_deref().unwrap_or("(no methodName)")
    }

    /// `.info` calls may be re-sent while they differ only in state-like parts.
    fn may_poll(&self) -> bool {
        self.method.as_deref().is_some_and(|m| m.ends_with(".info"))
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub name: String,
    pub exchanges: Vec<Exchange>,
}

impl Session {
    /// True when some request names `text` (used to set up preconditions only when needed).
    pub fn requests_mention(&self, text: &str) -> bool {
        let needle = text.as_bytes();
        self.exchanges
            .iter()
            .any(|e| e.request_body.windows(needle.len()).any(|w| w == needle))
    }
}

/// Reads `<dir>/<name>.jsonl`.
pub fn load(dir: &Path, name: &str) -> Result<Session, String> {
    let path = dir.join(format!("{name}.jsonl"));
    let text =
        fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_session(name, &text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn parse_session(name: &str, text: &str) -> Result<Session, String> {
    let mut exchanges = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let line_no = index + 1;
        let record = json::parse(line).map_err(|e| format!("line {line_no}: {e}"))?;
        let exchange = parse_exchange(&record).map_err(|e| format!("line {line_no}: {e}"))?;
        let expected_seq = exchanges.len() as i64 + 1;
        if exchange.seq != expected_seq {
            return Err(format!(
                "line {line_no}: seq {} where {expected_seq} was expected",
                exchange.seq
            ));
        }
        exchanges.push(exchange);
    }
    if exchanges.is_empty() {
        return Err("no exchanges".to_string());
    }
    Ok(Session {
        name: name.to_string(),
        exchanges,
    })
}

fn parse_exchange(record: &Json) -> Result<Exchange, String> {
    let field = |key: &str| record.get(key).ok_or_else(|| format!("no {key:?}"));
    let string = |key: &str| {
        field(key)?
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{key:?} is not a string"))
    };
    let seq = field("seq")?
        .as_i64()
        .ok_or_else(|| "\"seq\" is not an integer".to_string())?;
    let method = match field("method")? {
        Json::Null => None,
        Json::String(method) => Some(method.clone()),
        _ => return Err("\"method\" is neither a string nor null".to_string()),
    };
    let request = string("request")?;
    let response = string("response")?;
    let status = field("status")?
        .as_i64()
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| "\"status\" is not an HTTP status".to_string())?;
    let content_type = match record.get("content_type") {
        None => DEFAULT_CONTENT_TYPE.to_string(),
        Some(value) => value
            .as_str()
            .ok_or_else(|| "\"content_type\" is not a string".to_string())?
            .to_string(),
    };
    let mut delay_after = Duration::ZERO;
    if let Some(waits) = record.get("wait_after") {
        let waits = waits
            .as_array()
            .ok_or_else(|| "\"wait_after\" is not a list".to_string())?;
        for wait in waits {
            // `poll` waits are reproduced by re-sending the next `.info` call instead.
            if let Some(seconds) = wait.get("sleep") {
                let seconds = seconds
                    .as_f64()
                    .filter(|s| s.is_finite() && (0.0..=600.0).contains(s))
                    .ok_or_else(|| "bad \"sleep\" in \"wait_after\"".to_string())?;
                delay_after += Duration::from_secs_f64(seconds);
            }
        }
    }
    let expected = if status == 200 {
        let decoded = xmlrpc::decode_response(&response)
            .map_err(|e| format!("seq {seq}: the recorded response does not decode: {e}"))?;
        ExpectedAnswer::XmlRpc(decoded)
    } else {
        ExpectedAnswer::Http {
            status,
            body: response,
        }
    };
    let request_body = request_bytes(&request).map_err(|e| format!("seq {seq}: {e}"))?;
    Ok(Exchange {
        seq,
        method,
        request_body,
        content_type,
        expected,
        delay_after,
    })
}

/// The encoding named by an XML declaration at the start of `text`, if any.
fn declared_encoding(text: &[u8]) -> Option<String> {
    if !text.starts_with(b"<?xml") {
        return None;
    }
    let end = text.windows(2).position(|w| w == b"?>")?;
    let declaration = String::from_utf8_lossy(&text[..end]);
    let after = &declaration[declaration.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    Some(value[..value.find(quote)?].to_string())
}

fn is_latin1_name(encoding: &str) -> bool {
    ["iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1"]
        .iter()
        .any(|name| encoding.eq_ignore_ascii_case(name))
}

/// The bytes to send for a recorded request: the recordings store bodies decoded, so one
/// that declares ISO-8859-1 is encoded back to latin-1; all others are UTF-8.
pub fn request_bytes(request: &str) -> Result<Vec<u8>, String> {
    match declared_encoding(request.as_bytes()) {
        Some(encoding) if is_latin1_name(&encoding) => request
            .chars()
            .map(|c| {
                u8::try_from(u32::from(c))
                    .map_err(|_| format!("{c:?} cannot be sent in ISO-8859-1"))
            })
            .collect(),
        _ => Ok(request.as_bytes().to_vec()),
    }
}

/// The text of a response body: latin-1 when its declaration says so, UTF-8 otherwise.
fn body_text(body: &[u8]) -> Result<String, String> {
    match declared_encoding(body) {
        Some(encoding) if is_latin1_name(&encoding) => {
            Ok(body.iter().map(|&b| char::from(b)).collect())
        }
        _ => String::from_utf8(body.to_vec()).map_err(|e| {
            format!(
                "the body is not valid UTF-8 (byte {})",
                e.utf8_error().valid_up_to()
            )
        }),
    }
}

fn body_brief(body: &[u8]) -> String {
    compare::quote_brief(&String::from_utf8_lossy(body))
}

/// Compares what stratusd answered with the recording; empty when they match.
pub fn compare_answer(expected: &ExpectedAnswer, actual: &HttpResponse) -> Vec<Difference> {
    let difference = |path: &str, expected: String, actual: String| {
        vec![Difference {
            path: path.to_string(),
            expected,
            actual,
            state_like: false,
        }]
    };
    match expected {
        ExpectedAnswer::XmlRpc(expected) => {
            if actual.status != 200 {
                return difference(
                    "HTTP status",
                    "200".into(),
                    format!("{} with body {}", actual.status, body_brief(&actual.body)),
                );
            }
            let text = match body_text(&actual.body) {
                Ok(text) => text,
                Err(why) => return difference("response", "an XML-RPC response".into(), why),
            };
            match xmlrpc::decode_response(&text) {
                Ok(actual) => compare::compare_responses(expected, &actual),
                Err(error) => difference(
                    "response",
                    "a valid XML-RPC response".into(),
                    format!("{error}; body {}", body_brief(&actual.body)),
                ),
            }
        }
        ExpectedAnswer::Http { status, body } => {
            if actual.status != *status {
                return difference(
                    "HTTP status",
                    status.to_string(),
                    format!("{} with body {}", actual.status, body_brief(&actual.body)),
                );
            }
            if actual.body != body.as_bytes() {
                return difference(
                    "HTTP body",
                    compare::quote_brief(body),
                    body_brief(&actual.body),
                );
            }
            Vec::new()
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReplaySettings {
    /// How long an `.info` call is re-sent while it differs only in state-like parts.
    pub poll_budget: Duration,
    pub poll_interval: Duration,
    /// Once a session has failed, later polls wait at most this long, so that a broken
    /// session still lists its other differing calls in reasonable time.
    pub poll_budget_after_failure: Duration,
    /// The daemon's data directory with a trailing `/`: its paths in documents stand where
    /// the recorded server (VM_DIR `/var/lib/one/`) had `/var/lib/one/`.
    pub data_dir_prefix: Option<String>,
}

/// The recorded server's VM_DIR, which documents of a daemon started elsewhere show as their
/// own data directory.
pub const RECORDED_VM_DIR: &str = "/var/lib/one/";

/// Rewrites the daemon's data-directory prefix to the recorded one in an answer body.
pub fn normalise_data_dir(body: &[u8], prefix: &str) -> Vec<u8> {
    if prefix.is_empty() || prefix == RECORDED_VM_DIR {
        return body.to_vec();
    }
    let (needle, with) = (prefix.as_bytes(), RECORDED_VM_DIR.as_bytes());
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// A call whose answer did not match.
#[derive(Debug, Clone)]
pub struct CallFailure {
    pub seq: i64,
    pub method: String,
    pub differences: Vec<Difference>,
    /// Set when the call was re-sent for this long before giving up.
    pub polled_for: Option<Duration>,
}

impl CallFailure {
    /// `seq 7 one.vm.info: <first difference>` plus how many more and the polling note.
    pub fn describe(&self) -> String {
        let mut text = format!("seq {} {}: ", self.seq, self.method);
        match compare::first_significant(&self.differences) {
            Some(first) => text.push_str(&first.to_string()),
            None => text.push_str("differs"),
        }
        let more = self.differences.len().saturating_sub(1);
        if more > 0 {
            text.push_str(&format!(" (+{more} more difference{})", plural(more)));
        }
        if let Some(polled) = self.polled_for {
            let seconds = polled.as_secs_f64();
            if self.differences.iter().all(|d| d.state_like) {
                text.push_str(&format!(
                    " (still differing, in state-like parts only, after {seconds:.1} s of re-sending)"
                ));
            } else {
                text.push_str(&format!(
                    " (a real difference appeared after {seconds:.1} s of re-sending)"
                ));
            }
        }
        text
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Exchanges replayed (each counted once, however often it was re-sent).
    pub calls: usize,
    pub failures: Vec<CallFailure>,
    /// Set when the replay had to stop (no answer at all).
    pub aborted: Option<String>,
}

/// Replays `session` in order on `client`. `daemon_gone` tells, after a transport error,
/// whether (and how) the daemon exited.
pub fn replay(
    session: &Session,
    client: &mut HttpClient,
    settings: &ReplaySettings,
    daemon_gone: &mut dyn FnMut() -> Option<String>,
) -> ReplayReport {
    let mut report = ReplayReport::default();
    for exchange in &session.exchanges {
        report.calls += 1;
        let budget = if report.failures.is_empty() {
            settings.poll_budget
        } else {
            settings.poll_budget.min(settings.poll_budget_after_failure)
        };
        let started = Instant::now();
        let mut sends = 0usize;
        loop {
            sends += 1;
            let answer = match client.post(RPC_PATH, &exchange.content_type, &exchange.request_body)
            {
                Ok(answer) => answer,
                Err(error) => {
                    let mut why = format!(
                        "seq {} {}: no answer: {error}",
                        exchange.seq,
                        exchange.method_name()
                    );
                    if let Some(exit) = daemon_gone() {
                        why.push_str(&format!(" ({exit})"));
                    }
                    report.aborted = Some(why);
                    return report;
                }
            };
            let answer = match &settings.data_dir_prefix {
                Some(prefix) => HttpResponse {
                    body: normalise_data_dir(&answer.body, prefix),
                    ..answer
                },
                None => answer,
            };
            let differences = compare_answer(&exchange.expected, &answer);
            if differences.is_empty() {
                break;
            }
            let only_state_like = differences.iter().all(|d| d.state_like);
            if !(exchange.may_poll() && only_state_like) || started.elapsed() >= budget {
                report.failures.push(CallFailure {
                    seq: exchange.seq,
                    method: exchange.method_name().to_string(),
                    differences,
                    polled_for: (sends > 1).then(|| started.elapsed()),
                });
                break;
            }
            sleep(settings.poll_interval);
        }
        if !exchange.delay_after.is_zero() {
            sleep(exchange.delay_after);
        }
    }
    report
}

/// Checks run by `--self-test`, most of them on the recorded sessions themselves.
pub fn self_checks(checks: &mut crate::harness::selftest::Checks, fixtures_dir: &Path) {
    let names = match super::catalog::session_files(fixtures_dir) {
        Ok(names) => names,
        Err(error) => {
            checks.check("session: list fixtures", false, error);
            return;
        }
    };
    checks.check(
        "session: fixtures present",
        !names.is_empty(),
        format!("no .jsonl in {}", fixtures_dir.display()),
    );
    let readme = fs::read_to_string(fixtures_dir.join("README.md")).unwrap_or_default();
    let mut sessions = Vec::new();
    for name in &names {
        match load(fixtures_dir, name) {
            Ok(session) => {
                // The README states each file's number of calls: a check that the copy is whole.
                let announced = format!("**{name}** ({} calls", session.exchanges.len());
                checks.check(
                    &format!("session: {name} has the call count its README states"),
                    readme.contains(&announced),
                    format!("README has no {announced:?}"),
                );
                sessions.push(session);
            }
            Err(error) => checks.check(&format!("session: load {name}"), false, error),
        }
    }
    // Every recorded answer matches itself when sent back as the daemon's answer.
    for session in &sessions {
        let raw = fs::read_to_string(fixtures_dir.join(format!("{}.jsonl", session.name)))
            .unwrap_or_default();
        for (exchange, line) in session.exchanges.iter().zip(raw.lines()) {
            let record = json::parse(line).unwrap_or(Json::Null);
            let status = record.get("status").and_then(Json::as_i64).unwrap_or(0);
            let body = record.get("response").and_then(Json::as_str).unwrap_or("");
            let answer = HttpResponse {
                status: u16::try_from(status).unwrap_or(0),
                headers: Vec::new(),
                body: body.as_bytes().to_vec(),
            };
            let differences = compare_answer(&exchange.expected, &answer);
            checks.check(
                &format!(
                    "session: {} seq {} matches itself",
                    session.name, exchange.seq
                ),
                differences.is_empty(),
                format!("{differences:?}"),
            );
        }
    }
    mutation_checks(checks, &sessions);
}

/// Alters recorded answers and checks that the differences are found and classified.
fn mutation_checks(checks: &mut crate::harness::selftest::Checks, sessions: &[Session]) {
    let find = |name: &str, seq: i64| {
        sessions
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.exchanges.iter().find(|e| e.seq == seq))
    };
    let recorded_body = |exchange: &Exchange| match &exchange.expected {
        ExpectedAnswer::XmlRpc(_) => None,
        ExpectedAnswer::Http { body, .. } => Some(body.clone()),
    };

    // 02 seq 11: one.vm.info of a running VM, and the body it was recorded with.
    let Some(vm_info) = find("02-vm-lifecycle", 11) else {
        checks.check("session: 02-vm-lifecycle seq 11 present", false, "missing");
        return;
    };
    let body = encode_success_document("<VM><ID>0</ID><UID>0</UID></VM>");
    let small = ExpectedAnswer::XmlRpc(
        xmlrpc::decode_response(&body).unwrap_or(Response::Params(Vec::new())),
    );
    let answer = |text: String| HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: text.into_bytes(),
    };
    let differences = compare_answer(
        &small,
        &answer(encode_success_document("<VM><ID>0</ID><UID>1</UID></VM>")),
    );
    checks.check(
        "session: a changed document field is reported with its path",
        differences.len() == 1
            && differences[0].path == "result[1] VM/UID"
            && !differences[0].state_like,
        format!("{differences:?}"),
    );

    if let ExpectedAnswer::XmlRpc(Response::Params(values)) = &vm_info.expected {
        let doc = match values.as_slice() {
            [xmlrpc::Value::Array(items)] => match items.get(1) {
                Some(xmlrpc::Value::String { text, .. }) => text.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        let pending = doc
            .replace(
                "<STATE>3</STATE><LCM_STATE>3</LCM_STATE>",
                "<STATE>1</STATE><LCM_STATE>0</LCM_STATE>",
            )
            .replace(
                "<DEPLOY_ID>dummyhost1:ttylinux-0:dummy</DEPLOY_ID>",
                "<DEPLOY_ID></DEPLOY_ID>",
            );
        let pending = pending[..pending.find("<HISTORY_RECORDS>").unwrap_or(pending.len())]
            .to_string()
            + "<HISTORY_RECORDS/></VM>";
        let differences = compare_answer(
            &vm_info.expected,
            &answer(encode_success_document(&pending)),
        );
        checks.check(
            "session: a VM not deployed yet differs only in state-like parts",
            !differences.is_empty() && differences.iter().all(|d| d.state_like),
            format!("{differences:?}"),
        );
        let renamed = pending.replace("<NAME>ttylinux-0</NAME>", "<NAME>ttylinux-1</NAME>");
        let differences = compare_answer(
            &vm_info.expected,
            &answer(encode_success_document(&renamed)),
        );
        checks.check(
            "session: a wrong name is not state-like, even next to state-like differences",
            compare::first_significant(&differences)
                .is_some_and(|d| !d.state_like && d.path == "result[1] VM/NAME"),
            format!("{differences:?}"),
        );
        let other_ip = doc.replace("192.168.100.1]]></IP>", "192.168.100.2]]></IP>");
        let differences = compare_answer(
            &vm_info.expected,
            &answer(encode_success_document(&other_ip)),
        );
        checks.check(
            "session: another lease is reported at its NIC",
            differences.len() == 1 && differences[0].path == "result[1] VM/TEMPLATE/NIC/IP",
            format!("{differences:?}"),
        );
    } else {
        checks.check(
            "session: 02 seq 11 is a success",
            false,
            "not decoded as params",
        );
    }

    // Transport-level mismatches.
    let garbled = HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: vec![0xff, 0xfe, b'<', 0x00],
    };
    checks.check(
        "session: garbled body is a difference, not a crash",
        compare_answer(&vm_info.expected, &garbled).len() == 1,
        "no difference reported",
    );
    let not_found = HttpResponse {
        status: 404,
        headers: Vec::new(),
        body: b"no".to_vec(),
    };
    let differences = compare_answer(&vm_info.expected, &not_found);
    checks.check(
        "session: other HTTP status",
        differences.len() == 1 && differences[0].path == "HTTP status",
        format!("{differences:?}"),
    );
    if let Some(empty_body) = find("e07-malformed-xml", 2) {
        let page = recorded_body(empty_body).unwrap_or_default();
        checks.check(
            "session: e07 seq 2 is recorded as a non-200 answer",
            matches!(
                empty_body.expected,
                ExpectedAnswer::Http { status: 400, .. }
            ) && empty_body.request_body.is_empty(),
            format!("{:?}", empty_body.expected),
        );
        let other_page = HttpResponse {
            status: 400,
            headers: Vec::new(),
            body: page.replace("1.33.14", "1.33.15").into_bytes(),
        };
        checks.check(
            "session: another error page is a difference",
            compare_answer(&empty_body.expected, &other_page).len() == 1,
            "no difference reported",
        );
    }
    if let Some(latin1) = find("e07-malformed-xml", 13) {
        let body = &latin1.request_body;
        checks.check(
            "session: e07 seq 13 is sent in ISO-8859-1",
            body.windows(5).any(|w| w == b"caf\xe9\"")
                && !body.windows(2).any(|w| w == b"\xc3\xa9"),
            String::from_utf8_lossy(body),
        );
    }
    if let Some(json_type) = find("e07-malformed-xml", 14) {
        checks.check(
            "session: e07 seq 14 keeps its Content-Type",
            json_type.content_type == "application/json",
            json_type.content_type.clone(),
        );
    }
    if let Some(plain) = find("01-basic-info", 1) {
        checks.check(
            "session: default Content-Type is text/xml",
            plain.content_type == DEFAULT_CONTENT_TYPE,
            plain.content_type.clone(),
        );
    }
    checks.check(
        "session: ISO-8859-1 request encoding",
        request_bytes("<?xml version='1.0' encoding='iso-8859-1'?><a>é</a>")
            == Ok(b"<?xml version='1.0' encoding='iso-8859-1'?><a>\xe9</a>".to_vec())
            && request_bytes("<?xml version=\"1.0\"?><a>é</a>")
                == Ok("<?xml version=\"1.0\"?><a>é</a>".as_bytes().to_vec())
            && request_bytes("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>€").is_err(),
        "wrong bytes",
    );
    let sleeps = find("02-vm-lifecycle", 18).map(|e| e.delay_after);
    checks.check(
        "session: a recorded sleep becomes a minimum delay",
        sleeps == Some(Duration::from_secs(1)),
        format!("{sleeps:?}"),
    );
}

/// An XML-RPC success `[true, <escaped doc>, 0]` as xmlrpc-c writes it.
fn encode_success_document(doc: &str) -> String {
    let escaped = doc
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n\
         <param><value><array><data>\r\n<value><boolean>1</boolean></value>\r\n\
         <value><string>{escaped}</string></value>\r\n<value><i4>0</i4></value>\r\n\
         </data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n"
    )
}
