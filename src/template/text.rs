//! Text renderings of a template: 3.2's `Template::to_str` display form, and template text that
//! parses back into the same template.

use super::lexer::is_bare_value_byte;
use super::sorted::for_each_sorted;
use super::Attribute;

/// 3.2's `Template::to_str`: `NAME=value` lines in multimap order, a vector marshalled as
/// `K1=v1,K2=v2` in key order. (3.2 crashed on a vector without sub-attributes; this writes
/// `NAME=`.)
pub(super) fn write_display(out: &mut String, attributes: &[Attribute]) {
    for_each_sorted(attributes, Attribute::name, |attribute| {
        out.push_str(attribute.name());
        out.push('=');
        match attribute {
            Attribute::Single { value, .. } => out.push_str(value),
            Attribute::Vector { pairs, .. } => {
                let mut first = true;
                for_each_sorted(
                    pairs,
                    |(key, _)| key.as_str(),
                    |(key, value)| {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        out.push_str(key);
                        out.push('=');
                        out.push_str(value);
                    },
                );
            }
        }
        out.push('\n');
    });
}

/// Template text for `attributes` in their order, or `None` when the language cannot express
/// one of them (see `Template::to_template_text`).
pub(super) fn template_text(attributes: &[Attribute]) -> Option<String> {
    let mut out = String::new();
    for attribute in attributes {
        // Written in lower case: the parser upper-cases it again, and a lower-case `xml…` does
        // not get the `ONE_` prefix a second time.
        let name = attribute.name();
        if !is_parsed_name(name) {
            return None;
        }
        out.push_str(&name.to_ascii_lowercase());
        match attribute {
            Attribute::Single { value, .. } if value.is_empty() => out.push_str(" =\n"),
            Attribute::Single { value, .. } => {
                out.push_str(" = ");
                push_value(&mut out, value)?;
                out.push('\n');
            }
            Attribute::Vector { pairs, .. } => {
                if pairs.is_empty() {
                    return None;
                }
                out.push_str(" = [");
                for (index, (key, value)) in pairs.iter().enumerate() {
                    let repeated = pairs[..index].iter().any(|(earlier, _)| earlier == key);
                    if !is_parsed_key(key) || repeated || value.is_empty() {
                        return None;
                    }
                    out.push_str(if index == 0 { "\n  " } else { ",\n  " });
                    out.push_str(key);
                    out.push_str(" = ");
                    push_value(&mut out, value)?;
                }
                out.push_str(" ]\n");
            }
        }
    }
    Some(out)
}

/// A top-level name as the parser leaves it: upper-case `[A-Z0-9_]`, starting with a letter.
fn is_parsed_name(name: &str) -> bool {
    name.as_bytes().first().is_some_and(u8::is_ascii_uppercase) && is_parsed_key(name)
}

/// A vector key as the parser leaves it: non-empty upper-case `[A-Z0-9_]`.
fn is_parsed_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// A non-empty value, quoted with `"` escaped as `\"`.
///
/// A quoted value ending in a backslash cannot be closed: its closing quote would read as `\"`
/// and the string would run on to the next quote of the text. Such a value is written bare
/// when the unquoted form reads back the same, and refused otherwise.
fn push_value(out: &mut String, value: &str) -> Option<()> {
    if value.contains('\0') {
        return None;
    }
    if !value.ends_with('\\') {
        out.push('"');
        out.push_str(&value.replace('"', "\\\""));
        out.push('"');
        return Some(());
    }
    let bare_reads_back =
        value.bytes().all(is_bare_value_byte) && !value.starts_with('"') && !value.contains("\\\"");
    if bare_reads_back {
        out.push_str(value);
        Some(())
    } else {
        None
    }
}
