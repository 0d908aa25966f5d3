//! Character encoding of a request body: byte order marks and the XML
//! declaration, as expat handles them.
//!
//! quick-xml (built without its `encoding` feature) reads UTF-8 only, so
//! bodies in other encodings are transcoded to UTF-8 first. The encodings
//! are the ones built into expat: UTF-8 (the default), ISO-8859-1, US-ASCII
//! and UTF-16 (with or without byte order mark). Any other declared name is
//! `unknown encoding`, as with oned.

use std::borrow::Cow;

use super::xml_error::{ExpatError, XmlError};
use super::xml_lexical::is_xml_space;

/// A request body ready for tokenizing.
#[derive(Debug)]
pub(crate) struct DecodedDocument<'a> {
    /// The document as UTF-8 without byte order mark (still to be
    /// validated by the tokenizer, as expat validates while tokenizing).
    pub bytes: Cow<'a, [u8]>,
    /// Declared US-ASCII: every byte above 0x7F is an invalid token.
    pub ascii_only: bool,
    /// Length of the XML declaration at the start of `bytes`, 0 if none;
    /// already checked here.
    pub declaration_len: usize,
}

/// The encodings expat knows by name (compared case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KnownEncoding {
    Utf8,
    Latin1,
    Ascii,
    Utf16,
}

fn known_encoding(name: &str) -> Option<KnownEncoding> {
    const NAMES: [(&str, KnownEncoding); 6] = [
        ("UTF-8", KnownEncoding::Utf8),
        ("ISO-8859-1", KnownEncoding::Latin1),
        ("US-ASCII", KnownEncoding::Ascii),
        ("UTF-16", KnownEncoding::Utf16),
        ("UTF-16BE", KnownEncoding::Utf16),
        ("UTF-16LE", KnownEncoding::Utf16),
    ];
    NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, e)| e)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteOrder {
    Big,
    Little,
}

/// Expat's initial detection: byte order marks, and UTF-16 recognised from
/// a leading `<` without one.
fn detect_utf16(body: &[u8]) -> Option<(ByteOrder, usize)> {
    match body {
        [0xFE, 0xFF, ..] => Some((ByteOrder::Big, 2)),
        [0xFF, 0xFE, ..] => Some((ByteOrder::Little, 2)),
        [0x00, b'<', ..] => Some((ByteOrder::Big, 0)),
        [b'<', 0x00, ..] => Some((ByteOrder::Little, 0)),
        _ => None,
    }
}

fn utf16_to_utf8(bytes: &[u8], order: ByteOrder) -> Result<String, XmlError> {
    let units = bytes.chunks_exact(2).map(|pair| match order {
        ByteOrder::Big => u16::from_be_bytes([pair[0], pair[1]]),
        ByteOrder::Little => u16::from_le_bytes([pair[0], pair[1]]),
    });
    let text: Result<String, _> = char::decode_utf16(units).collect();
    let text = text.map_err(|_| XmlError::Prolog(ExpatError::InvalidToken))?;
    if bytes.len() % 2 == 1 {
        return Err(XmlError::Prolog(ExpatError::PartialChar));
    }
    Ok(text)
}

fn latin1_to_utf8(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Finds and checks the XML declaration at the start of `doc`; returns its
/// length and the declared encoding name.
fn parse_declaration(doc: &[u8]) -> Result<Option<(usize, Option<String>)>, XmlError> {
    // `<?xml` followed by blank or `?` is a declaration; `<?xml-foo` is not.
    let is_declaration =
        doc.starts_with(b"<?xml") && doc.get(5).is_some_and(|&b| is_xml_space(b) || b == b'?');
    if !is_declaration {
        return Ok(None);
    }
    let Some(close) = doc.windows(2).position(|w| w == b"?>") else {
        return Err(XmlError::Prolog(ExpatError::UnclosedToken));
    };
    let encoding = pseudo_attributes(&doc[5..close]).ok_or(XmlError::Prolog(ExpatError::Syntax))?;
    Ok(Some((close + 2, encoding)))
}

/// Expat's `XmlParseXmlDecl()`: `version` first and required, then
/// optional `encoding` and `standalone`, each after white space. Returns
/// the encoding name, `None` (outer) if the declaration is malformed.
fn pseudo_attributes(body: &[u8]) -> Option<Option<String>> {
    let mut i = 0;
    let mut seen_version = false;
    let mut encoding = None;
    let mut seen_standalone = false;
    loop {
        let blank_start = i;
        while body.get(i).is_some_and(|&b| is_xml_space(b)) {
            i += 1;
        }
        if i == body.len() {
            break;
        }
        if i == blank_start {
            return None;
        }
        let name_start = i;
        while body.get(i).is_some_and(|b| b.is_ascii_alphabetic()) {
            i += 1;
        }
        let name = &body[name_start..i];
        while body.get(i).is_some_and(|&b| is_xml_space(b)) {
            i += 1;
        }
        if body.get(i) != Some(&b'=') {
            return None;
        }
        i += 1;
        while body.get(i).is_some_and(|&b| is_xml_space(b)) {
            i += 1;
        }
        let quote = *body.get(i).filter(|&&q| q == b'"' || q == b'\'')?;
        i += 1;
        let value_start = i;
        while body.get(i).is_some_and(|&b| b != quote) {
            i += 1;
        }
        let value = body.get(value_start..i)?;
        if body.get(i) != Some(&quote) {
            return None;
        }
        i += 1;
        match name {
            b"version" if !seen_version => {
                let ok = !value.is_empty()
                    && value
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(b));
                if !ok {
                    return None;
                }
                seen_version = true;
            }
            b"encoding" if seen_version && encoding.is_none() && !seen_standalone => {
                let ok = value.first().is_some_and(|b| b.is_ascii_alphabetic())
                    && value
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(b));
                if !ok {
                    return None;
                }
                encoding = Some(String::from_utf8_lossy(value).into_owned());
            }
            b"standalone" if seen_version && !seen_standalone => {
                if value != b"yes" && value != b"no" {
                    return None;
                }
                seen_standalone = true;
            }
            _ => return None,
        }
    }
    seen_version.then_some(encoding)
}

/// Brings a request body into the form the tokenizer reads.
pub(crate) fn decode_document(body: &[u8]) -> Result<DecodedDocument<'_>, XmlError> {
    if let Some((order, bom_len)) = detect_utf16(body) {
        let text = utf16_to_utf8(&body[bom_len..], order)?;
        let declaration = parse_declaration(text.as_bytes())?;
        if let Some((_, Some(name))) = &declaration {
            match known_encoding(name) {
                None => return Err(XmlError::Prolog(ExpatError::UnknownEncoding)),
                Some(KnownEncoding::Utf16) => {}
                Some(_) => return Err(XmlError::Prolog(ExpatError::IncorrectEncoding)),
            }
        }
        return Ok(DecodedDocument {
            bytes: Cow::Owned(text.into_bytes()),
            ascii_only: false,
            declaration_len: declaration.map_or(0, |(len, _)| len),
        });
    }
    let doc = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let declaration = parse_declaration(doc)?;
    let declaration_len = declaration.as_ref().map_or(0, |(len, _)| *len);
    let encoding = match declaration.and_then(|(_, name)| name) {
        None => KnownEncoding::Utf8,
        Some(name) => known_encoding(&name).ok_or(XmlError::Prolog(ExpatError::UnknownEncoding))?,
    };
    let (bytes, ascii_only) = match encoding {
        KnownEncoding::Utf8 => (Cow::Borrowed(doc), false),
        KnownEncoding::Ascii => (Cow::Borrowed(doc), true),
        KnownEncoding::Latin1 => (Cow::Owned(latin1_to_utf8(doc).into_bytes()), false),
        KnownEncoding::Utf16 => return Err(XmlError::Prolog(ExpatError::IncorrectEncoding)),
    };
    // The declaration is ASCII, so its length is the same after
    // transcoding from ISO-8859-1.
    Ok(DecodedDocument {
        bytes,
        ascii_only,
        declaration_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(body: &[u8]) -> Result<(Vec<u8>, bool, usize), XmlError> {
        decode_document(body).map(|d| (d.bytes.into_owned(), d.ascii_only, d.declaration_len))
    }

    #[test]
    fn utf8_is_the_default() {
        let body = b"<?xml version=\"1.0\"?><a/>";
        assert_eq!(decoded(body), Ok((body.to_vec(), false, 21)));
        assert_eq!(decoded(b"<a/>"), Ok((b"<a/>".to_vec(), false, 0)));
    }

    #[test]
    fn latin1_is_transcoded() {
        let body = b"<?xml version='1.0' encoding='iso-8859-1'?><a>caf\xe9</a>";
        let (bytes, _, _) = decoded(body).unwrap_or_default();
        assert_eq!(
            String::from_utf8(bytes).unwrap_or_default(),
            "<?xml version='1.0' encoding='iso-8859-1'?><a>café</a>"
        );
    }

    #[test]
    fn declaration_errors() {
        assert_eq!(
            decoded(b"<?xml encoding=\"UTF-8\"?><a/>"),
            Err(XmlError::Prolog(ExpatError::Syntax))
        );
        assert_eq!(
            decoded(b"<?xml version=\"1.0\" encoding=\"KOI8-R\"?><a/>"),
            Err(XmlError::Prolog(ExpatError::UnknownEncoding))
        );
        assert_eq!(
            decoded(b"<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>"),
            Err(XmlError::Prolog(ExpatError::IncorrectEncoding))
        );
        assert_eq!(
            decoded(b"<?xml version=\"1.0\""),
            Err(XmlError::Prolog(ExpatError::UnclosedToken))
        );
    }

    #[test]
    fn utf16_with_bom_is_transcoded() {
        let text = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>é</a>";
        let mut body = vec![0xFF, 0xFE];
        for unit in text.encode_utf16() {
            body.extend_from_slice(&unit.to_le_bytes());
        }
        let (bytes, _, len) = decoded(&body).unwrap_or_default();
        assert_eq!(bytes, text.as_bytes());
        assert_eq!(len, 39);
    }
}
