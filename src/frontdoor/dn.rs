//! Distinguished names: the RFC 2253 text one-proxy made OpenNebula user names of (Java's
//! `X500Principal.getName(RFC2253)`), and the comparison of certificate subjects with the DNs a
//! site wrote in its allowed-DN list (`"CN=John Smith, O=Widget Inc."`, blanks after commas).

use x509_parser::asn1_rs::{Any, Class, Tag};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Attribute types by OID: the name used when comparing, and whether RFC 2253 (hence Java's
/// RFC 2253 output) spells it with a keyword rather than the dotted OID.
const ATTRIBUTE_TYPES: &[(&str, &str, bool)] = &[
    ("2.5.4.3", "CN", true),
    ("2.5.4.6", "C", true),
    ("2.5.4.7", "L", true),
    ("2.5.4.8", "ST", true),
    ("2.5.4.9", "STREET", true),
    ("2.5.4.10", "O", true),
    ("2.5.4.11", "OU", true),
    ("0.9.2342.19200300.100.1.25", "DC", true),
    ("0.9.2342.19200300.100.1.1", "UID", true),
    ("1.2.840.113549.1.9.1", "EMAILADDRESS", false),
    ("2.5.4.5", "SERIALNUMBER", false),
    ("2.5.4.4", "SURNAME", false),
    ("2.5.4.42", "GIVENNAME", false),
    ("2.5.4.12", "T", false),
    ("2.5.4.43", "INITIALS", false),
    ("2.5.4.44", "GENERATION", false),
    ("2.5.4.46", "DNQUALIFIER", false),
];

/// Other spellings of the same types found in hand-written DNs (RFC 1779, OpenSSL, Java).
const ALIASES: &[(&str, &str)] = &[
    ("S", "ST"),
    ("E", "EMAILADDRESS"),
    ("EMAIL", "EMAILADDRESS"),
    ("TITLE", "T"),
    ("SN", "SURNAME"),
    ("G", "GIVENNAME"),
];

/// One attribute of an RDN as compared: canonical type name and the value's text.
pub type Attribute = (String, String);
/// A DN as compared: RDNs most specific first (RFC 2253 order), attributes sorted in each.
pub type DnKey = Vec<Vec<Attribute>>;

/// Java's RFC 2253 text of `name`: RDNs from last to first, `,` between them, `+` inside
/// multi-valued ones, keywords for the RFC 2253 types and `OID=#<hex DER>` for the others.
pub fn rfc2253(name: &X509Name) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|ava| {
                    let oid = ava.attr_type().to_id_string();
                    match (keyword(&oid), value_text(ava.attr_value())) {
                        (Some((name, true)), Some(text)) => {
                            format!("{name}={}", escape_rfc2253(&text))
                        }
                        _ => format!("{oid}=#{}", hex(&value_der(ava.attr_value()))),
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// The comparison key of a certificate name.
pub fn key_of_name(name: &X509Name) -> DnKey {
    let mut rdns: DnKey = name
        .iter_rdn()
        .map(|rdn| {
            let mut attrs: Vec<Attribute> = rdn.iter().map(attribute_of).collect();
            attrs.sort();
            attrs
        })
        .collect();
    rdns.reverse();
    rdns
}

fn attribute_of(ava: &AttributeTypeAndValue) -> Attribute {
    let oid = ava.attr_type().to_id_string();
    let name = keyword(&oid).map_or(oid, |(n, _)| n.to_string());
    let value = value_text(ava.attr_value())
        .unwrap_or_else(|| format!("#{}", hex(&value_der(ava.attr_value()))));
    (name, value)
}

/// The comparison key of a hand-written DN (`CN=John Smith, O=Widget Inc.`); `None` when it
/// cannot be read.
pub fn key_of_text(text: &str) -> Option<DnKey> {
    let mut rdns = Vec::new();
    for rdn in split_unescaped(text, ',') {
        let mut attrs = Vec::new();
        for ava in split_unescaped(&rdn, '+') {
            let (ty, value) = ava.split_once('=')?;
            let ty = canonical_type(ty.trim())?;
            attrs.push((ty, unescape_value(value)?));
        }
        attrs.sort();
        rdns.push(attrs);
    }
    if rdns.is_empty() {
        return None;
    }
    Some(rdns)
}

fn keyword(oid: &str) -> Option<(&'static str, bool)> {
    ATTRIBUTE_TYPES
        .iter()
        .find(|(o, _, _)| *o == oid)
        .map(|(_, name, kw)| (*name, *kw))
}

fn canonical_type(ty: &str) -> Option<String> {
    if ty.is_empty() {
        return None;
    }
    let upper = ty.to_ascii_uppercase();
    let dotted = upper.strip_prefix("OID.").unwrap_or(&upper);
    if dotted.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Some(keyword(dotted).map_or(dotted.to_string(), |(n, _)| n.to_string()));
    }
    if let Some((_, canonical)) = ALIASES.iter().find(|(a, _)| *a == upper) {
        return Some((*canonical).to_string());
    }
    Some(upper)
}

/// Splits at `sep` outside backslash escapes and double quotes.
fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c == sep && !quoted => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
}

/// A written value: blanks around it dropped, quotes removed, `\X` and `\hh` escapes decoded.
fn unescape_value(raw: &str) -> Option<String> {
    let trimmed = raw.trim_start();
    // A trailing blank survives only when escaped.
    let mut end = trimmed.len();
    while end > 0 && trimmed.as_bytes()[end - 1] == b' ' {
        let escapes = trimmed.as_bytes()[..end - 1]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if escapes % 2 == 1 {
            break;
        }
        end -= 1;
    }
    let value = &trimmed[..end];
    if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        return Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"));
    }
    if value.starts_with('#') {
        return Some(value.to_ascii_lowercase());
    }
    let mut bytes = Vec::with_capacity(value.len());
    let raw = value.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            let next = *raw.get(i + 1)?;
            let hexpair = raw.get(i + 1..i + 3).and_then(|h| {
                std::str::from_utf8(h)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            });
            match hexpair {
                Some(b) => {
                    bytes.push(b);
                    i += 3;
                }
                None => {
                    bytes.push(next);
                    i += 2;
                }
            }
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).ok()
}

/// The text of a string value, decoded as Java decodes each string type.
fn value_text(value: &Any) -> Option<String> {
    if value.class() != Class::Universal {
        return None;
    }
    let data: &[u8] = value.data;
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(data).ok().map(String::from),
        // Java reads TeletexString as ISO-8859-1.
        Tag::T61String => Some(data.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !data.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString => {
            if !data.len().is_multiple_of(4) {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

/// The DER encoding of a value (tag, length, content), for the `#hex` form.
fn value_der(value: &Any) -> Vec<u8> {
    let data: &[u8] = value.data;
    let tag = value.tag().0;
    let mut out = Vec::with_capacity(data.len() + 6);
    let mut first = match value.class() {
        Class::Universal => 0x00,
        Class::Application => 0x40,
        Class::ContextSpecific => 0x80,
        Class::Private => 0xc0,
    };
    if value.header.is_constructed() {
        first |= 0x20;
    }
    if tag < 31 {
        out.push(first | tag as u8);
    } else {
        out.push(first | 0x1f);
        let mut groups = Vec::new();
        let mut t = tag;
        while t > 0 {
            groups.push((t & 0x7f) as u8);
            t >>= 7;
        }
        for (i, g) in groups.iter().enumerate().rev() {
            out.push(if i > 0 { g | 0x80 } else { *g });
        }
    }
    let len = data.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(data);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 2253 §2.4 escaping as Java applies it: `,=+<>#;"\` anywhere, a leading or trailing
/// blank.
fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    let count = value.chars().count();
    for (i, c) in value.chars().enumerate() {
        let special = ",=+<>#;\"\\".contains(c);
        let edge_blank = c == ' ' && (i == 0 || i + 1 == count);
        if special || edge_blank {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_dns_compare_by_content() {
        let a = key_of_text("CN=John Smith, O=Widget Inc.").unwrap();
        let b = key_of_text("cn = John Smith ,o=Widget Inc.").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a,
            vec![
                vec![("CN".to_string(), "John Smith".to_string())],
                vec![("O".to_string(), "Widget Inc.".to_string())]
            ]
        );
        let c = key_of_text("CN=John Smith, O=Widget Inc").unwrap();
        assert_ne!(a, c);
        let email = key_of_text("E=j@x.org, CN=J").unwrap();
        assert_eq!(email[0][0].0, "EMAILADDRESS");
        let esc = key_of_text(r#"CN=Smith\, John, O="A, B", OU=x\2Cy"#).unwrap();
        assert_eq!(esc[0][0].1, "Smith, John");
        assert_eq!(esc[1][0].1, "A, B");
        assert_eq!(esc[2][0].1, "x,y");
        let multi = key_of_text("OU=b+CN=a, O=x").unwrap();
        assert_eq!(multi[0].len(), 2);
        assert!(key_of_text("no equals sign").is_none());
        assert!(key_of_text("").is_none());
    }

    #[test]
    fn escaping_is_rfc_2253() {
        assert_eq!(escape_rfc2253("Smith, John"), "Smith\\, John");
        assert_eq!(escape_rfc2253(" a=b "), "\\ a\\=b\\ ");
        assert_eq!(escape_rfc2253("#1"), "\\#1");
    }
}
