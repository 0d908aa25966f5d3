//! `<TEMPLATE>` as 3.2's `Template::to_xml` writes it (spec §6.1).
//!
//! Names are written raw, as 3.2 did (the parser only produces `[A-Z0-9_]` names). Values go
//! into CDATA unescaped; the one stratusd fix is that `]]>` inside a value is split across two
//! CDATA sections, where 3.2 produced broken XML.

use super::sorted::for_each_sorted;
use super::Attribute;

pub(super) fn write_template(out: &mut String, attributes: &[Attribute]) {
    out.push_str("<TEMPLATE>");
    for_each_sorted(attributes, Attribute::name, |attribute| match attribute {
        Attribute::Single { name, value } => {
            open(out, name);
            push_cdata(out, value);
            close(out, name);
        }
        Attribute::Vector { name, pairs } => {
            open(out, name);
            for_each_sorted(
                pairs,
                |(key, _)| key.as_str(),
                |(key, value)| {
                    // 3.2's VectorAttribute::to_xml skips sub-attributes without a key and writes
                    // empty values as an empty element.
                    if key.is_empty() {
                        return;
                    }
                    if value.is_empty() {
                        out.push('<');
                        out.push_str(key);
                        out.push_str("/>");
                    } else {
                        open(out, key);
                        push_cdata(out, value);
                        close(out, key);
                    }
                },
            );
            close(out, name);
        }
    });
    out.push_str("</TEMPLATE>");
}

fn open(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// `<![CDATA[value]]>`; each `]]>` of the value is cut after its `]]`, closing the section and
/// opening a new one that starts with the `>`.
fn push_cdata(out: &mut String, value: &str) {
    out.push_str("<![CDATA[");
    let mut rest = value;
    while let Some(at) = rest.find("]]>") {
        let (head, tail) = rest.split_at(at + 2);
        out.push_str(head);
        out.push_str("]]><![CDATA[");
        rest = tail;
    }
    out.push_str(rest);
    out.push_str("]]>");
}

/// Is `c` a character XML 1.0 allows in a document (what libxml2 accepted when 3.2 checked its
/// object bodies)? Control characters other than tab, LF and CR are not.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Would `value` keep 3.2's CDATA section (`<![CDATA[value]]>`) well-formed?
pub fn is_cdata_safe(value: &str) -> bool {
    !value.contains("]]>") && value.chars().all(is_xml_char)
}

/// Would `text` written raw (3.2's scalar fields: NAME, UNAME, SOURCE, BRIDGE, …) keep the
/// document well-formed? A lone `>` is harmless; `<`, `&` and `]]>` are not.
pub fn is_raw_text_safe(text: &str) -> bool {
    !text.contains(['<', '&']) && is_cdata_safe(text)
}

/// Would 3.2's `<TEMPLATE>` of these attributes be well-formed?
pub(super) fn is_well_formed(attributes: &[Attribute]) -> bool {
    attributes.iter().all(|a| match a {
        Attribute::Single { value, .. } => is_cdata_safe(value),
        Attribute::Vector { pairs, .. } => pairs.iter().all(|(_, v)| is_cdata_safe(v)),
    })
}
