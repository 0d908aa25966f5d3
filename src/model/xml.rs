//! Small helpers for writing 3.2 documents.

use std::fmt::Write;

/// Appends `text` with `&`, `<`, `>` escaped. 3.2 wrote scalar fields raw (a NAME with `<` gave
/// broken XML); the spec mandates escaping, which parsers on the client side do not notice.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

/// `<TAG>text</TAG>` with escaping.
pub fn elem(out: &mut String, tag: &str, text: &str) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    escape_into(out, text);
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

/// `<TAG>number</TAG>`.
pub fn elem_num(out: &mut String, tag: &str, n: impl std::fmt::Display) {
    let _ = write!(out, "<{tag}>{n}</{tag}>");
}

/// `<TAG>text</TAG>`, or `<TAG/>` when the text is empty (3.2 writes optional network fields
/// such as PHYDEV and VLAN_ID that way).
pub fn elem_or_empty(out: &mut String, tag: &str, text: &str) {
    if text.is_empty() {
        let _ = write!(out, "<{tag}/>");
    } else {
        elem(out, tag, text);
    }
}
