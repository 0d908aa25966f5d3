//! Response encoding, byte for byte as xmlrpc-c 1.33 serialises: CRLF after
//! the declaration and between structural elements, `<i4>` integers,
//! `<boolean>0|1</boolean>`, strings with `&`, `<`, `>` (and CR) escaped
//! and nothing else.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::decode::MethodCall;
use super::fault::Fault;
use super::value::Value;

const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n";
const RESPONSE_HEAD: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n<param>";
const RESPONSE_TAIL: &str = "</param>\r\n</params>\r\n</methodResponse>\r\n";
const FAULT_HEAD: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<fault>\r\n";
const FAULT_TAIL: &str = "\r\n</fault>\r\n</methodResponse>\r\n";

/// Bytes of binary data per base64 line: xmlrpc-c writes 76-character
/// lines, each followed by CRLF.
const BASE64_LINE_BYTES: usize = 57;

/// Escaped form of the characters xmlrpc-c escapes in text. CR is written
/// as a character reference because a raw CR would be read back as a line
/// end.
fn escape_of(b: u8) -> Option<&'static str> {
    match b {
        b'<' => Some("&lt;"),
        b'>' => Some("&gt;"),
        b'&' => Some("&amp;"),
        b'\r' => Some("&#x0d;"),
        _ => None,
    }
}

/// Length of `text` once escaped.
pub(super) fn escaped_len(text: &str) -> usize {
    text.bytes().map(|b| escape_of(b).map_or(1, str::len)).sum()
}

/// Appends `text` escaped, in one pass: runs without special characters are
/// copied as whole slices. Every escaped character is ASCII, so the run
/// boundaries are character boundaries.
fn push_escaped(out: &mut String, text: &str) {
    let mut run_start = 0;
    for (i, b) in text.bytes().enumerate() {
        if let Some(escape) = escape_of(b) {
            out.push_str(&text[run_start..i]);
            out.push_str(escape);
            run_start = i + 1;
        }
    }
    out.push_str(&text[run_start..]);
}

/// [`push_escaped`] for the escaped pieces of [`super::escaped`].
pub(super) fn escape_into(out: &mut String, text: &str) {
    push_escaped(out, text);
}

/// The inverse of [`push_escaped`] on its output (the four entities it writes).
pub(super) fn unescape(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let (c, len) = if rest.starts_with("&lt;") {
            ('<', 4)
        } else if rest.starts_with("&gt;") {
            ('>', 4)
        } else if rest.starts_with("&amp;") {
            ('&', 5)
        } else if rest.starts_with("&#x0d;") {
            ('\r', 6)
        } else {
            ('&', 1)
        };
        out.push(c);
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

/// xmlrpc-c writes doubles as plain decimals without exponent and with no
/// more digits than needed, which is how Rust displays an `f64`. XML-RPC
/// has no infinities or NaN (xmlrpc-c asserts the value is finite); they
/// are written as 0.
fn push_double(out: &mut String, v: f64) {
    if v.is_finite() && v != 0.0 {
        let _ = write!(out, "{v}");
    } else {
        out.push('0');
    }
}

fn push_base64(out: &mut String, bytes: &[u8]) {
    out.push_str("<base64>\r\n");
    if bytes.is_empty() {
        out.push_str("\r\n");
    }
    for line in bytes.chunks(BASE64_LINE_BYTES) {
        BASE64.encode_string(line, out);
        out.push_str("\r\n");
    }
    out.push_str("</base64>");
}

/// Appends `<value>...</value>` for `v`, in xmlrpc-c's layout.
pub fn write_value(out: &mut String, v: &Value) {
    out.push_str("<value>");
    match v {
        Value::Int(i) => {
            let _ = write!(out, "<i4>{i}</i4>");
        }
        Value::I8(i) => {
            let _ = write!(out, "<i8>{i}</i8>");
        }
        Value::Bool(b) => out.push_str(if *b {
            "<boolean>1</boolean>"
        } else {
            "<boolean>0</boolean>"
        }),
        Value::Double(d) => {
            out.push_str("<double>");
            push_double(out, *d);
            out.push_str("</double>");
        }
        Value::String(s) => {
            out.push_str("<string>");
            push_escaped(out, s);
            out.push_str("</string>");
        }
        Value::DateTime(s) => {
            out.push_str("<dateTime.iso8601>");
            push_escaped(out, s);
            out.push_str("</dateTime.iso8601>");
        }
        Value::Base64(bytes) => push_base64(out, bytes),
        Value::Array(items) => {
            out.push_str("<array><data>\r\n");
            for item in items {
                write_value(out, item);
                out.push_str("\r\n");
            }
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>\r\n");
            for (name, value) in members {
                out.push_str("<member><name>");
                push_escaped(out, name);
                out.push_str("</name>\r\n");
                write_value(out, value);
                out.push_str("</member>\r\n");
            }
            out.push_str("</struct>");
        }
        Value::Nil => out.push_str("<nil/>"),
    }
    out.push_str("</value>");
}

/// A `<methodResponse>` carrying `v` as its single parameter.
pub fn encode_response(v: &Value) -> String {
    let mut out = String::with_capacity(RESPONSE_HEAD.len() + RESPONSE_TAIL.len() + 64);
    out.push_str(RESPONSE_HEAD);
    write_value(&mut out, v);
    out.push_str(RESPONSE_TAIL);
    out
}

/// A `<methodResponse>` carrying the fault.
pub fn encode_fault(f: &Fault) -> String {
    let mut out =
        String::with_capacity(FAULT_HEAD.len() + FAULT_TAIL.len() + 160 + escaped_len(&f.message));
    out.push_str(FAULT_HEAD);
    let fault = Value::Struct(vec![
        ("faultCode".to_owned(), Value::Int(f.code)),
        ("faultString".to_owned(), Value::String(f.message.clone())),
    ]);
    write_value(&mut out, &fault);
    out.push_str(FAULT_TAIL);
    out
}

/// The second element of an oned answer: an id or a text (message or
/// XML document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    Int(i32),
    Str(&'a str),
}

const ONED_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n\
                         <params>\r\n<param><value><array><data>\r\n";
const ONED_TAIL: &str = "</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n";

/// The answer of every oned method, `[ok, payload, code]`, written straight
/// into one exactly sized `String` (pool documents run to megabytes); the
/// bytes are those [`encode_response`] gives for the same array.
pub fn encode_oned_result(ok: bool, payload: Payload<'_>, code: i32) -> String {
    // The i4 elements hold at most 11 characters ("-2147483648").
    const I4_VALUE_MAX: usize = "<value><i4>-2147483648</i4></value>\r\n".len();
    const STRING_VALUE: usize = "<value><string></string></value>\r\n".len();
    const BOOL_VALUE: usize = "<value><boolean>0</boolean></value>\r\n".len();
    let payload_len = match payload {
        Payload::Int(_) => I4_VALUE_MAX,
        Payload::Str(s) => STRING_VALUE + escaped_len(s),
    };
    let mut out = String::with_capacity(
        ONED_HEAD.len() + BOOL_VALUE + payload_len + I4_VALUE_MAX + ONED_TAIL.len(),
    );
    out.push_str(ONED_HEAD);
    out.push_str(if ok {
        "<value><boolean>1</boolean></value>\r\n"
    } else {
        "<value><boolean>0</boolean></value>\r\n"
    });
    match payload {
        Payload::Int(i) => {
            let _ = write!(out, "<value><i4>{i}</i4></value>\r\n");
        }
        Payload::Str(s) => {
            out.push_str("<value><string>");
            push_escaped(&mut out, s);
            out.push_str("</string></value>\r\n");
        }
    }
    let _ = write!(out, "<value><i4>{code}</i4></value>\r\n");
    out.push_str(ONED_TAIL);
    out
}

/// What comes before the escaped document in `[true, document, 0]`, the answer of every
/// successful `*.info`: `encode_oned_result(true, Payload::Str(doc), 0)` is
/// `ONED_DOC_HEAD`, the escaped `doc`, `ONED_DOC_TAIL`.
pub const ONED_DOC_HEAD: &str =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n\
                                 <params>\r\n<param><value><array><data>\r\n\
                                 <value><boolean>1</boolean></value>\r\n<value><string>";
/// What follows the escaped document (see [`ONED_DOC_HEAD`]).
pub const ONED_DOC_TAIL: &str = "</string></value>\r\n<value><i4>0</i4></value>\r\n\
                                 </data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n";

/// A `<methodCall>` in xmlrpc-c's client layout (for tests and for calling
/// other XML-RPC servers).
pub fn encode_call(call: &MethodCall) -> String {
    let mut out = String::with_capacity(128);
    out.push_str(XML_DECLARATION);
    out.push_str("<methodCall>\r\n<methodName>");
    push_escaped(&mut out, &call.method);
    out.push_str("</methodName>\r\n<params>\r\n");
    for param in &call.params {
        out.push_str("<param>");
        write_value(&mut out, param);
        out.push_str("</param>\r\n");
    }
    out.push_str("</params>\r\n</methodCall>\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_what_xmlrpc_c_escapes() {
        let mut out = String::new();
        push_escaped(&mut out, "a<b>&c\"d'é\re");
        assert_eq!(out, "a&lt;b&gt;&amp;c\"d'é&#x0d;e");
        assert_eq!(escaped_len("a<b>&c\"d'é\re"), out.len());
    }

    #[test]
    fn oned_fast_path_matches_the_generic_encoder() {
        for (ok, payload, code) in [
            (true, Payload::Int(42), 0),
            (
                false,
                Payload::Str("[VirtualMachineAction] Wrong state & <stuff>"),
                2048,
            ),
            (true, Payload::Str(""), -2_147_483_648),
            (true, Payload::Int(i32::MIN), i32::MAX),
        ] {
            let second = match payload {
                Payload::Int(i) => Value::Int(i),
                Payload::Str(s) => Value::String(s.to_owned()),
            };
            let generic = encode_response(&Value::Array(vec![
                Value::Bool(ok),
                second,
                Value::Int(code),
            ]));
            let fast = encode_oned_result(ok, payload, code);
            assert_eq!(fast, generic);
            assert!(fast.capacity() >= fast.len());
            assert!(
                fast.capacity() <= fast.len() + 32,
                "reservation close to exact"
            );
        }
    }

    #[test]
    fn document_head_and_tail_frame_the_escaped_document() {
        let doc = "<VM><NAME>a&b\r</NAME></VM>";
        let mut escaped = String::new();
        push_escaped(&mut escaped, doc);
        assert_eq!(
            format!("{ONED_DOC_HEAD}{escaped}{ONED_DOC_TAIL}"),
            encode_oned_result(true, Payload::Str(doc), 0)
        );
    }

    #[test]
    fn unescape_inverts_the_escaper() {
        for text in ["", "plain", "a<b>&c\"d'é\re", "&lt; stays text", "&&;&#x0d"] {
            let mut escaped = String::new();
            push_escaped(&mut escaped, text);
            assert_eq!(unescape(&escaped), text);
        }
    }

    #[test]
    fn scalar_layouts() {
        let mut out = String::new();
        for v in [
            Value::I8(-5),
            Value::Double(1.5),
            Value::Double(-0.0),
            Value::Double(1e21),
            Value::Nil,
            Value::DateTime("20120101T00:00:00".into()),
            Value::Base64(Vec::new()),
            Value::Base64(vec![0u8; 58]),
        ] {
            write_value(&mut out, &v);
        }
        assert_eq!(
            out,
            "<value><i8>-5</i8></value>\
             <value><double>1.5</double></value>\
             <value><double>0</double></value>\
             <value><double>1000000000000000000000</double></value>\
             <value><nil/></value>\
             <value><dateTime.iso8601>20120101T00:00:00</dateTime.iso8601></value>\
             <value><base64>\r\n\r\n</base64></value>\
             <value><base64>\r\n\
             AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n\
             AA==\r\n</base64></value>"
        );
    }
}
