//! What may legitimately differ between the recorded run and this one, and nothing else
//! (every rule is listed in `compat-tests/client/README.md`):
//!
//! 1. where things are: the daemon's (proxy's) port and the Marketplace's port, HOME and the
//!    daemon's data directory (`HISTORY/VM_DIR`) are rewritten to the recorded
//!    `127.0.0.1:26350`, `127.0.0.1:26351`, `/home/tester` and `/var/lib/one/`;
//! 2. times: in `-vvv` listings, the time attributes (`stime`, `etime`, `last_poll`,
//!    `history_records_history_*time`) are equal when both are `0` or both are non-zero;
//!    in XML-RPC answers the compat harness's rule does the same for the time elements;
//! 3. gzip+base64 blobs (the cloud-init user data): compared after decoding, with the
//!    random MIME boundary of Python's `email` package and the gzip header time set aside.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The recorded endpoint host:port of the daemon and of the test Marketplace.
pub const RECORDED_DAEMON_HOSTPORT: &str = "127.0.0.1:26350";
pub const RECORDED_MARKETPLACE_HOSTPORT: &str = "127.0.0.1:26351";
pub const RECORDED_HOME: &str = "/home/tester";
pub const RECORDED_VM_DIR: &str = "/var/lib/one/";

/// Flattened `-vvv` attributes that hold epoch seconds.
const TIME_ATTRIBUTES: &[&str] = &[
    "stime",
    "etime",
    "last_poll",
    "history_records_history_stime",
    "history_records_history_etime",
    "history_records_history_pstime",
    "history_records_history_petime",
    "history_records_history_rstime",
    "history_records_history_retime",
    "history_records_history_estime",
    "history_records_history_eetime",
];

/// The start of every gzip stream in base64 (`1f 8b 08`).
const GZIP_BASE64_MAGIC: &str = "H4sI";
const GZIP_PLACEHOLDER: &str = "GZIP_BASE64_BLOB_";

/// The Python interpreter that decodes gzip blobs (the suite's 2.7, which it needs anyway).
static DECODER_PYTHON: OnceLock<PathBuf> = OnceLock::new();

pub fn set_decoder_python(python: PathBuf) {
    let _ = DECODER_PYTHON.set(python);
}

/// The run's own locations, rewritten to the recorded ones (rule 1).
#[derive(Clone)]
pub struct Locations {
    /// (this run's text, the recording's text), longest first.
    pairs: Vec<(String, String)>,
}

impl Locations {
    pub fn new(daemon_port: u16, marketplace_port: u16, home: &str, data_dir: &str) -> Locations {
        let mut pairs = vec![
            (
                format!("127.0.0.1:{daemon_port}"),
                RECORDED_DAEMON_HOSTPORT.to_string(),
            ),
            (
                format!("127.0.0.1:{marketplace_port}"),
                RECORDED_MARKETPLACE_HOSTPORT.to_string(),
            ),
            (
                format!("{}/", data_dir.trim_end_matches('/')),
                RECORDED_VM_DIR.to_string(),
            ),
            (
                home.trim_end_matches('/').to_string(),
                RECORDED_HOME.to_string(),
            ),
        ];
        pairs.sort_by_key(|(ours, _)| std::cmp::Reverse(ours.len()));
        Locations { pairs }
    }

    /// This run's text in the recording's terms.
    pub fn to_recorded(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (ours, recorded) in &self.pairs {
            if ours != recorded {
                out = out.replace(ours.as_str(), recorded);
            }
        }
        out
    }

    /// A recorded argument in this run's terms (the reverse rewrite).
    pub fn to_ours(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (ours, recorded) in &self.pairs {
            // The data directory is the daemon's business, never a command argument.
            if recorded != RECORDED_VM_DIR {
                out = out.replace(recorded.as_str(), ours);
            }
        }
        out
    }
}

/// Replaces every gzip+base64 blob of `expected` and `actual` by a placeholder named after
/// its decoded content, so that equal contents read equal (rule 3).
pub fn set_aside_gzip_blobs(expected: &str, actual: &str) -> (String, String) {
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut replace = |text: &str| -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(found) = rest.find(GZIP_BASE64_MAGIC) {
            out.push_str(&rest[..found]);
            let blob_len = rest[found..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                .count();
            let blob = &rest[found..found + blob_len];
            match decode_gzip_base64(blob) {
                Ok(content) => {
                    let next = names.len();
                    let index = *names.entry(content).or_insert(next);
                    out.push_str(&format!("{GZIP_PLACEHOLDER}{index}"));
                }
                // Not a blob after all (or undecodable): compared as it is.
                Err(_) => out.push_str(blob),
            }
            rest = &rest[found + blob_len..];
        }
        out.push_str(rest);
        out
    };
    let expected = replace(expected);
    let actual = replace(actual);
    (expected, actual)
}

/// Decodes base64, inflates gzip and sets aside the MIME boundary's random number.
fn decode_gzip_base64(blob: &str) -> Result<String, String> {
    const SCRIPT: &str = "import sys, base64, zlib, re\n\
data = zlib.decompress(base64.b64decode(sys.stdin.read().strip()), 16 + zlib.MAX_WBITS)\n\
sys.stdout.write(re.sub(r'={15}[0-9]+==', '===============<boundary>==', data))\n";
    let python = DECODER_PYTHON
        .get()
        .ok_or("no Python interpreter set for decoding gzip blobs")?;
    let mut child = Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(blob.as_bytes())
            .map_err(|e| format!("cannot feed the decoder: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("decoder: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Compares a recorded output stream with this run's (already in recorded terms); `None`
/// when equal after rules 2 and 3, else the first differing line.
pub fn compare_output(stream: &str, expected: &[u8], actual: &[u8]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let expected = String::from_utf8_lossy(expected);
    let actual = String::from_utf8_lossy(actual);
    let (expected, actual) = set_aside_gzip_blobs(&expected, &actual);
    let expected_lines: Vec<&str> = expected.split('\n').collect();
    let actual_lines: Vec<&str> = actual.split('\n').collect();
    for (index, (e, a)) in expected_lines.iter().zip(&actual_lines).enumerate() {
        if e != a && !same_time_attribute(e, a) {
            return Some(format!(
                "{stream} line {}: expected {e:?}, actual {a:?}",
                index + 1
            ));
        }
    }
    if expected_lines.len() != actual_lines.len() {
        let n = expected_lines.len().min(actual_lines.len());
        return Some(format!(
            "{stream}: {} lines expected, {} actual; first unmatched line: expected {:?}, actual {:?}",
            expected_lines.len(),
            actual_lines.len(),
            expected_lines.get(n).copied().unwrap_or("(none)"),
            actual_lines.get(n).copied().unwrap_or("(none)"),
        ));
    }
    None
}

/// `  stime = 1795485176` vs `  stime = 1796153600`: both set, or both 0 (rule 2).
fn same_time_attribute(expected: &str, actual: &str) -> bool {
    let split = |line: &str| -> Option<(String, String)> {
        let (key, value) = line.strip_prefix("  ")?.split_once(" = ")?;
        Some((key.to_string(), value.to_string()))
    };
    let (Some((ek, ev)), Some((ak, av))) = (split(expected), split(actual)) else {
        return false;
    };
    if ek != ak || !TIME_ATTRIBUTES.contains(&ek.as_str()) {
        return false;
    }
    let set = |v: &str| -> Option<bool> { v.parse::<u64>().ok().map(|n| n != 0) };
    matches!((set(&ev), set(&av)), (Some(x), Some(y)) if x == y)
}

/// Checks of the rules, run before every suite run (the gzip rule needs the interpreter and
/// is checked on the recorded cloud-init blob when one is set).
pub fn self_checks(checks: &mut crate::harness::selftest::Checks) {
    let locations = Locations::new(40001, 40002, "/tmp/w/home", "/tmp/w/data");
    checks.check(
        "normalise: locations to the recorded ones",
        locations.to_recorded(
            "http://127.0.0.1:40001/a/xmlrpc http://127.0.0.1:40002/metadata/x /tmp/w/home/.stratuslab /tmp/w/data/",
        ) == "http://127.0.0.1:26350/a/xmlrpc http://127.0.0.1:26351/metadata/x /home/tester/.stratuslab /var/lib/one/",
        "wrong rewrite",
    );
    checks.check(
        "normalise: recorded arguments to ours",
        locations.to_ours("--endpoint http://127.0.0.1:26350/a/xmlrpc -k /home/tester/id_rsa.pub --marketplace-endpoint http://127.0.0.1:26351")
            == "--endpoint http://127.0.0.1:40001/a/xmlrpc -k /tmp/w/home/id_rsa.pub --marketplace-endpoint http://127.0.0.1:40002",
        "wrong rewrite",
    );
    checks.check(
        "normalise: set time attributes are equal",
        compare_output(
            "stdout",
            b"  stime = 1795485176\n  etime = 0\n",
            b"  stime = 1796153600\n  etime = 0\n",
        )
        .is_none(),
        "differs",
    );
    checks.check(
        "normalise: a time attribute set on one side only differs",
        compare_output("stdout", b"  etime = 0\n", b"  etime = 1796153600\n").is_some(),
        "equal",
    );
    checks.check(
        "normalise: other numbers are compared",
        compare_output("stdout", b"  id = 7\n", b"  id = 8\n").is_some()
            && compare_output("stdout", b"  cpu = 0\n", b"  cpu = 1\n").is_some(),
        "equal",
    );
    checks.check(
        "normalise: a missing last line differs",
        compare_output("stdout", b"a\nb\n", b"a\n").is_some(),
        "equal",
    );
    if DECODER_PYTHON.get().is_some() {
        // The recorded blob against one made the same way with another boundary and time.
        let recorded = "H4sIAE/uBGsC/41PPW+DMBDd/StcMjs0UYsJyFOSoUO2qrsxR30SnJHvkMi/b9ohUqQOeeN7el/HRAIk5vM6Q6OnZRScfZZywhX6Vndpod7nqyvcI+pDvbPvVWXf7MHauqr2e+cKdfm4nM0XZMZEjd5tX5Uy5hmrOj4MEVilXA1HGEcOGWdpdYg+M4grFjaeA+J/dfeY7IkHyOZMIfVI3422HcpdPyHPiVH+jF7Ehzjd+FYPOAL5CVyRF9pyLJTavJQdUslRQYhJ/25Keshp0mFMS2+QbsFP/jRG/QCniarhcwEAAA==";
        let decoded = decode_gzip_base64(recorded);
        checks.check(
            "normalise: the recorded cloud-init blob decodes",
            decoded.as_ref().is_ok_and(|t| {
                t.contains("boundary=\"===============<boundary>==\"")
                    && t.contains("echo hello from cloud-init")
            }),
            format!("{decoded:?}"),
        );
        let (e, a) = set_aside_gzip_blobs(
            &format!("x = {recorded}\n"),
            "x = H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA==\n",
        );
        checks.check(
            "normalise: blobs of different content stay different",
            e != a && e.starts_with("x = GZIP_BASE64_BLOB_0"),
            format!("{e:?} {a:?}"),
        );
    }
}
