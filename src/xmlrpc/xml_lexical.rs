//! Lexical checks quick-xml leaves out, done the way expat does them.
//!
//! quick-xml splits the document into markup and text but accepts almost
//! anything inside: invalid UTF-8, control characters, bad names, broken
//! attributes, undefined entities. xmlrpc-c's expat rejects all of these,
//! and the position it reports depends on how its tokenizer cuts the input,
//! so each check here returns the token start and the offending position
//! expat would report. All positions are absolute byte offsets into the
//! (UTF-8 or ASCII) document, and characters are always decoded against the
//! whole document, so a multi-byte sequence cut by the end of an event is
//! told apart from one cut by the end of the input.

use super::xml_error::{ContentError, ExpatError};

/// One decoded position of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CharAt {
    /// A character allowed in XML and its encoded length.
    Char(char, usize),
    /// Malformed UTF-8, or a character XML does not allow.
    Invalid,
    /// A multi-byte sequence cut short by the end of the input.
    Partial,
}

/// The document and the rules its bytes are read with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub bytes: &'a [u8],
    /// US-ASCII documents: expat treats every byte above 0x7F as invalid.
    pub ascii_only: bool,
}

impl<'a> Source<'a> {
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn byte(&self, i: usize) -> Option<u8> {
        self.bytes.get(i).copied()
    }

    /// Decodes the character at `i` (UTF-8, as expat's UTF-8 tokenizer
    /// validates it: no overlong forms, no surrogates, nothing above
    /// U+10FFFF, no control characters but TAB/LF/CR, no U+FFFE/U+FFFF).
    pub(crate) fn char_at(&self, i: usize) -> CharAt {
        let Some(b0) = self.byte(i) else {
            return CharAt::Partial;
        };
        if b0 < 0x80 {
            return if b0 >= 0x20 || matches!(b0, b'\t' | b'\n' | b'\r') {
                CharAt::Char(char::from(b0), 1)
            } else {
                CharAt::Invalid
            };
        }
        if self.ascii_only {
            return CharAt::Invalid;
        }
        // (length, lowest allowed second byte, highest allowed second byte)
        let (len, lo, hi) = match b0 {
            0xC2..=0xDF => (2, 0x80, 0xBF),
            0xE0 => (3, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
            0xED => (3, 0x80, 0x9F),
            0xF0 => (4, 0x90, 0xBF),
            0xF1..=0xF3 => (4, 0x80, 0xBF),
            0xF4 => (4, 0x80, 0x8F),
            _ => return CharAt::Invalid,
        };
        let mut code = u32::from(b0) & (0x7F >> len);
        for k in 1..len {
            let Some(b) = self.byte(i + k) else {
                return CharAt::Partial;
            };
            let (min, max) = if k == 1 { (lo, hi) } else { (0x80, 0xBF) };
            if b < min || b > max {
                return CharAt::Invalid;
            }
            code = (code << 6) | (u32::from(b) & 0x3F);
        }
        match char::from_u32(code) {
            Some(c) if c != '\u{FFFE}' && c != '\u{FFFF}' => CharAt::Char(c, len),
            _ => CharAt::Invalid,
        }
    }

    /// Appends the text of `start..end`, which the caller has validated.
    pub(crate) fn push_text(&self, out: &mut String, start: usize, end: usize) {
        let bytes = self.bytes.get(start..end).unwrap_or_default();
        match std::str::from_utf8(bytes) {
            Ok(text) => out.push_str(text),
            // Validated before, so this never runs; it only keeps this
            // free of panics should a caller get a range wrong.
            Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
        }
    }
}

pub(crate) fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!c.is_ascii() && c.is_alphabetic())
}

pub(crate) fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || c.is_ascii_digit()
        || c == '.'
        || c == '-'
        || c == '\u{B7}'
        || (!c.is_ascii() && c.is_alphanumeric())
}

/// How a scan ended before a name or token was complete.
enum Stop {
    /// An invalid character (or one not allowed here) at this position.
    At(usize),
    /// A multi-byte character cut by the end of the input.
    Partial,
}

/// Scans name characters from `i` (the caller checked the first one) up to
/// `limit`; returns the end of the name.
fn scan_name_chars(src: &Source<'_>, mut i: usize, limit: usize) -> usize {
    while i < limit {
        match src.char_at(i) {
            CharAt::Char(c, len) if is_name_char(c) => i += len,
            _ => break,
        }
    }
    i
}

/// Scans a name that must start at `i`.
fn scan_name(src: &Source<'_>, i: usize, limit: usize) -> Result<usize, Stop> {
    if i >= limit {
        return Err(Stop::At(i));
    }
    match src.char_at(i) {
        CharAt::Char(c, len) if is_name_start(c) => Ok(scan_name_chars(src, i + len, limit)),
        CharAt::Partial => Err(Stop::Partial),
        _ => Err(Stop::At(i)),
    }
}

fn skip_space(src: &Source<'_>, mut i: usize, limit: usize) -> usize {
    while i < limit && src.byte(i).is_some_and(is_xml_space) {
        i += 1;
    }
    i
}

/// The error for a token that reached `limit` while expecting more: at the
/// end of the input the token is unclosed, otherwise the character at
/// `limit` (which ended the event) is the offending one.
fn cut_at(src: &Source<'_>, token_start: usize, limit: usize) -> ContentError {
    if limit >= src.len() {
        ContentError::code(token_start, ExpatError::UnclosedToken)
    } else {
        ContentError::invalid_at(token_start, limit)
    }
}

fn stop_error(src: &Source<'_>, token_start: usize, stop: Stop, limit: usize) -> ContentError {
    match stop {
        Stop::At(p) if p >= limit => cut_at(src, token_start, limit),
        Stop::At(p) => ContentError::invalid_at(token_start, p),
        Stop::Partial => ContentError::code(token_start, ExpatError::PartialChar),
    }
}

/// Expat's `checkCharRefNumber()`: which code points a character
/// reference may produce.
fn char_ref_value(code: u32) -> Option<char> {
    match code {
        0x09 | 0x0A | 0x0D => char::from_u32(code),
        0x00..=0x1F | 0xD800..=0xDFFF | 0xFFFE | 0xFFFF => None,
        _ => char::from_u32(code),
    }
}

/// Scans the reference starting with the `&` at `amp`; the reference must
/// end before `limit`. Returns the character it stands for and the position
/// after the `;`.
pub(crate) fn scan_reference(
    src: &Source<'_>,
    amp: usize,
    limit: usize,
) -> Result<(char, usize), ContentError> {
    let mut i = amp + 1;
    if i >= limit {
        return Err(cut_at(src, amp, limit));
    }
    if src.byte(i) == Some(b'#') {
        i += 1;
        let hex = src.byte(i) == Some(b'x');
        if hex {
            i += 1;
        }
        let digits_start = i;
        // Saturates above the Unicode range, like expat's running check.
        let mut code: u32 = 0;
        while i < limit {
            let Some(b) = src.byte(i) else { break };
            let digit = if hex {
                char::from(b).to_digit(16)
            } else {
                char::from(b).to_digit(10)
            };
            match digit {
                Some(d) => {
                    code = code
                        .saturating_mul(if hex { 16 } else { 10 })
                        .saturating_add(d)
                        .min(0x11_0000);
                    i += 1;
                }
                None => break,
            }
        }
        if i >= limit {
            return Err(cut_at(src, amp, limit));
        }
        if i == digits_start || src.byte(i) != Some(b';') {
            return Err(match src.char_at(i) {
                CharAt::Partial => ContentError::code(amp, ExpatError::PartialChar),
                _ => ContentError::invalid_at(amp, i),
            });
        }
        return match char_ref_value(code) {
            Some(c) => Ok((c, i + 1)),
            None => Err(ContentError::code(amp, ExpatError::BadCharRef)),
        };
    }
    let name_end = scan_name(src, i, limit).map_err(|stop| stop_error(src, amp, stop, limit))?;
    if name_end >= limit {
        return Err(cut_at(src, amp, limit));
    }
    if src.byte(name_end) != Some(b';') {
        return Err(match src.char_at(name_end) {
            CharAt::Partial => ContentError::code(amp, ExpatError::PartialChar),
            _ => ContentError::invalid_at(amp, name_end),
        });
    }
    let predefined = match src.bytes.get(i..name_end).unwrap_or_default() {
        b"lt" => '<',
        b"gt" => '>',
        b"amp" => '&',
        b"apos" => '\'',
        b"quot" => '"',
        // No DTD entities: every other name is undefined.
        _ => return Err(ContentError::code(amp, ExpatError::UndefinedEntity)),
    };
    Ok((predefined, name_end + 1))
}

/// Character data of `start..end` (text between markup), appended to `out`
/// with line ends normalised to LF and references expanded, as expat hands
/// it to xmlrpc-c.
pub(crate) fn scan_text(
    src: &Source<'_>,
    start: usize,
    end: usize,
    out: &mut String,
) -> Result<(), ContentError> {
    // Start of expat's current data token: tokens end at references and
    // line ends, and the `]]>` error is reported relative to it.
    let mut token_start = start;
    let mut i = start;
    let mut plain_from = start;
    while i < end {
        let Some(b) = src.byte(i) else { break };
        match b {
            b'&' => {
                src.push_text(out, plain_from, i);
                let (c, next) = scan_reference(src, i, end)?;
                out.push(c);
                i = next;
                plain_from = i;
                token_start = i;
            }
            b'\r' => {
                src.push_text(out, plain_from, i);
                out.push('\n');
                i += 1;
                if src.byte(i) == Some(b'\n') && i < end {
                    i += 1;
                }
                plain_from = i;
                token_start = i;
            }
            b'\n' => {
                i += 1;
                token_start = i;
            }
            b']' if src.bytes.get(i..i + 3) == Some(b"]]>") && i + 3 <= end => {
                return Err(ContentError::invalid_at(token_start, i + 2));
            }
            _ => match src.char_at(i) {
                CharAt::Char(_, len) => i += len,
                CharAt::Invalid => return Err(ContentError::invalid_at(i, i)),
                CharAt::Partial => return Err(ContentError::code(i, ExpatError::PartialChar)),
            },
        }
    }
    src.push_text(out, plain_from, i.min(end));
    Ok(())
}

/// Content of a CDATA section (`start..end`, between `<![CDATA[` and
/// `]]>`), appended with line ends normalised. Errors are reported for the
/// section token as a whole, as expat does.
pub(crate) fn scan_cdata(
    src: &Source<'_>,
    token_start: usize,
    start: usize,
    end: usize,
    out: &mut String,
) -> Result<(), ContentError> {
    let mut i = start;
    let mut plain_from = start;
    while i < end {
        match src.char_at(i) {
            CharAt::Char('\r', _) => {
                src.push_text(out, plain_from, i);
                out.push('\n');
                i += 1;
                if src.byte(i) == Some(b'\n') && i < end {
                    i += 1;
                }
                plain_from = i;
            }
            CharAt::Char(_, len) => i += len,
            CharAt::Invalid => {
                return Err(ContentError::code(token_start, ExpatError::InvalidToken))
            }
            CharAt::Partial => {
                return Err(ContentError::code(token_start, ExpatError::PartialChar))
            }
        }
    }
    src.push_text(out, plain_from, i.min(end));
    Ok(())
}

/// Checks that `start..end` holds only characters XML allows; returns the
/// position of the first one it does not.
fn check_chars(src: &Source<'_>, start: usize, end: usize) -> Result<(), Stop> {
    let mut i = start;
    while i < end {
        match src.char_at(i) {
            CharAt::Char(_, len) => i += len,
            CharAt::Invalid => return Err(Stop::At(i)),
            CharAt::Partial => return Err(Stop::Partial),
        }
    }
    Ok(())
}

/// Whether a tag is complete (quick-xml found its `>`) or cut by the end of
/// the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagExtent {
    Complete,
    Truncated,
}

/// Validates a start tag: `<` at `lt`, name and attributes in
/// `lt+1..content_end` (`content_end` is the `>`, or the `/` of an empty
/// element). Returns the end of the element name.
pub(crate) fn check_start_tag(
    src: &Source<'_>,
    lt: usize,
    content_end: usize,
    extent: TagExtent,
) -> Result<usize, ContentError> {
    // In a truncated tag, running out of input is "unclosed token".
    let out_of_input = |i: usize| -> ContentError {
        if extent == TagExtent::Truncated {
            ContentError::code(lt, ExpatError::UnclosedToken)
        } else {
            ContentError::invalid_at(lt, i)
        }
    };
    let stop = |s: Stop| -> ContentError {
        match s {
            Stop::At(p) if p >= content_end => out_of_input(p),
            Stop::At(p) => ContentError::invalid_at(lt, p),
            Stop::Partial => ContentError::code(lt, ExpatError::PartialChar),
        }
    };
    let name_end = scan_name(src, lt + 1, content_end).map_err(stop)?;
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut duplicate = false;
    let mut i = name_end;
    loop {
        if i >= content_end {
            if extent == TagExtent::Truncated {
                return Err(out_of_input(i));
            }
            break;
        }
        if src.byte(i) == Some(b'/') {
            // `/` must be followed by `>` at once: expat blames what follows.
            return Err(stop(Stop::At(i + 1)));
        }
        if !src.byte(i).is_some_and(is_xml_space) {
            return Err(stop(Stop::At(i)));
        }
        i = skip_space(src, i, content_end);
        if i >= content_end {
            continue;
        }
        let attr_start = i;
        let attr_end = scan_name(src, i, content_end).map_err(stop)?;
        let attr_name = src.bytes.get(attr_start..attr_end).unwrap_or_default();
        duplicate |= seen.contains(&attr_name);
        seen.push(attr_name);
        i = skip_space(src, attr_end, content_end);
        if i >= content_end {
            return Err(out_of_input(i));
        }
        if src.byte(i) != Some(b'=') {
            return Err(stop(Stop::At(i)));
        }
        i = skip_space(src, i + 1, content_end);
        if i >= content_end {
            return Err(out_of_input(i));
        }
        let quote = match src.byte(i) {
            Some(q @ (b'"' | b'\'')) => q,
            _ => return Err(stop(Stop::At(i))),
        };
        i += 1;
        loop {
            if i >= content_end {
                return Err(out_of_input(i));
            }
            match src.byte(i) {
                Some(b) if b == quote => {
                    i += 1;
                    break;
                }
                Some(b'<') => return Err(ContentError::invalid_at(lt, i)),
                Some(b'&') => {
                    // An attribute reference must end inside the value.
                    let value_end = src
                        .bytes
                        .get(i..content_end)
                        .and_then(|rest| rest.iter().position(|&b| b == quote))
                        .map_or(content_end, |p| i + p);
                    let (_, next) = scan_reference(src, i, value_end).map_err(|e| {
                        // Reported for the tag token, not the reference.
                        ContentError {
                            token_start: lt,
                            ..e
                        }
                    })?;
                    i = next;
                }
                _ => match src.char_at(i) {
                    CharAt::Char(_, len) => i += len,
                    CharAt::Invalid => return Err(ContentError::invalid_at(lt, i)),
                    CharAt::Partial => return Err(ContentError::code(lt, ExpatError::PartialChar)),
                },
            }
        }
    }
    if duplicate {
        return Err(ContentError::code(lt, ExpatError::DuplicateAttribute));
    }
    Ok(name_end)
}

/// Validates an end tag: `</` at `lt`, `content_end` is the `>` (or the end
/// of the input for a truncated tag). Returns the end of the name.
pub(crate) fn check_end_tag(
    src: &Source<'_>,
    lt: usize,
    content_end: usize,
    extent: TagExtent,
) -> Result<usize, ContentError> {
    let truncated = || ContentError::code(lt, ExpatError::UnclosedToken);
    let name_end = match scan_name(src, lt + 2, content_end) {
        Ok(end) => end,
        Err(Stop::At(p)) if p >= content_end && extent == TagExtent::Truncated => {
            return Err(truncated())
        }
        Err(Stop::At(p)) => return Err(ContentError::invalid_at(lt, p)),
        Err(Stop::Partial) => return Err(ContentError::code(lt, ExpatError::PartialChar)),
    };
    let i = skip_space(src, name_end, content_end);
    if i < content_end {
        return Err(match src.char_at(i) {
            CharAt::Partial => ContentError::code(lt, ExpatError::PartialChar),
            _ => ContentError::invalid_at(lt, i),
        });
    }
    if extent == TagExtent::Truncated {
        return Err(truncated());
    }
    Ok(name_end)
}

/// Validates a comment, `<!--` at `lt`, body `lt+4..body_end`.
pub(crate) fn check_comment(
    src: &Source<'_>,
    lt: usize,
    body_end: usize,
) -> Result<(), ContentError> {
    let body_start = lt + 4;
    check_chars(src, body_start, body_end).map_err(|s| match s {
        Stop::At(p) => ContentError::invalid_at(lt, p),
        Stop::Partial => ContentError::code(lt, ExpatError::PartialChar),
    })?;
    // `--` may only appear as the start of the closing `-->`; expat
    // reports the character right after the offending pair.
    let body = src.bytes.get(body_start..body_end).unwrap_or_default();
    let dashes = body
        .windows(2)
        .position(|w| w == b"--")
        .or_else(|| (body.last() == Some(&b'-')).then(|| body.len() - 1));
    match dashes {
        Some(p) => Err(ContentError::invalid_at(lt, body_start + p + 2)),
        None => Ok(()),
    }
}

/// What a `<?...?>` turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PiKind {
    /// A processing instruction with a proper target.
    Instruction,
    /// Target exactly `xml`: an XML declaration, only allowed at the very
    /// start of the document.
    XmlDeclaration,
}

/// Validates a processing instruction, `<?` at `lt`, content
/// `lt+2..content_end` (up to the `?>`).
pub(crate) fn check_pi(
    src: &Source<'_>,
    lt: usize,
    content_end: usize,
) -> Result<PiKind, ContentError> {
    let target_end = scan_name(src, lt + 2, content_end).map_err(|s| match s {
        Stop::At(p) => ContentError::invalid_at(lt, p),
        Stop::Partial => ContentError::code(lt, ExpatError::PartialChar),
    })?;
    let target = src.bytes.get(lt + 2..target_end).unwrap_or_default();
    let kind = if target == b"xml" {
        PiKind::XmlDeclaration
    } else if target.eq_ignore_ascii_case(b"xml") {
        // Expat reserves every case variant of "xml".
        return Err(ContentError::invalid_at(lt, target_end));
    } else {
        PiKind::Instruction
    };
    if target_end < content_end && !src.byte(target_end).is_some_and(is_xml_space) {
        return Err(ContentError::invalid_at(lt, target_end));
    }
    check_chars(src, target_end, content_end).map_err(|s| match s {
        Stop::At(p) => ContentError::invalid_at(lt, p),
        Stop::Partial => ContentError::code(lt, ExpatError::PartialChar),
    })?;
    Ok(kind)
}

/// How expat's prolog tokenizer classifies non-blank text outside the
/// document element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrayText {
    /// Only white space: allowed.
    Blank,
    /// A well-formed prolog token (name, literal, bracket ...) that has no
    /// business here: "syntax error" before the document element, "junk
    /// after document element" after it.
    Token,
    /// A character the prolog tokenizer rejects.
    Invalid,
    /// A literal cut by the end of the input.
    Unclosed,
    /// A multi-byte character cut by the end of the input.
    Partial,
}

/// Classifies the text `start..end` found outside the document element.
pub(crate) fn classify_stray_text(src: &Source<'_>, start: usize, end: usize) -> StrayText {
    let i = skip_space(src, start, end);
    if i >= end {
        return StrayText::Blank;
    }
    match src.char_at(i) {
        CharAt::Invalid => StrayText::Invalid,
        CharAt::Partial => StrayText::Partial,
        CharAt::Char(c, len) if is_name_char(c) => {
            let name_end = scan_name_chars(src, i + len, end);
            // A name must be followed by a delimiter of the prolog grammar.
            match src.byte(name_end) {
                None => StrayText::Token,
                Some(b) if is_xml_space(b) => StrayText::Token,
                Some(b'>' | b')' | b',' | b'|' | b'[' | b'%' | b'+' | b'*' | b'?') => {
                    StrayText::Token
                }
                Some(_) => match src.char_at(name_end) {
                    CharAt::Partial => StrayText::Partial,
                    _ => StrayText::Invalid,
                },
            }
        }
        CharAt::Char(q @ ('"' | '\''), _) => {
            let Some(close) = src
                .bytes
                .get(i + 1..end)
                .and_then(|rest| rest.iter().position(|&b| b == q as u8))
            else {
                return if end >= src.len() {
                    StrayText::Unclosed
                } else {
                    StrayText::Invalid
                };
            };
            let close = i + 1 + close;
            if check_chars(src, i + 1, close).is_err() {
                return StrayText::Invalid;
            }
            match src.byte(close + 1) {
                None => StrayText::Token,
                Some(b) if is_xml_space(b) => StrayText::Token,
                Some(b'>' | b'%' | b'[') => StrayText::Token,
                Some(_) => StrayText::Invalid,
            }
        }
        CharAt::Char('[' | ']' | '(' | ')' | '|' | '>' | ',' | '%' | '#', _) => StrayText::Token,
        CharAt::Char(..) => StrayText::Invalid,
    }
}

/// Checks that a DOCTYPE declaration (`start..end`) holds only valid
/// characters; its content is not interpreted (no DTD entities).
pub(crate) fn doctype_chars_valid(src: &Source<'_>, start: usize, end: usize) -> bool {
    check_chars(src, start, end).is_ok()
}

#[cfg(test)]
mod tests {
    use super::super::xml_error::TokenError;
    use super::*;

    fn src(b: &[u8]) -> Source<'_> {
        Source {
            bytes: b,
            ascii_only: false,
        }
    }

    #[test]
    fn decodes_utf8_like_expat() {
        assert_eq!(src("é".as_bytes()).char_at(0), CharAt::Char('é', 2));
        assert_eq!(src(b"\xc3").char_at(0), CharAt::Partial);
        assert_eq!(src(b"\xc3<").char_at(0), CharAt::Invalid);
        assert_eq!(src(b"\xc0\x80").char_at(0), CharAt::Invalid);
        assert_eq!(src(b"\xed\xa0\x80").char_at(0), CharAt::Invalid);
        assert_eq!(src(b"\xef\xbf\xbe").char_at(0), CharAt::Invalid);
        assert_eq!(src(b"\x01").char_at(0), CharAt::Invalid);
        assert_eq!(src("😀".as_bytes()).char_at(0), CharAt::Char('😀', 4));
        let ascii = Source {
            bytes: "é".as_bytes(),
            ascii_only: true,
        };
        assert_eq!(ascii.char_at(0), CharAt::Invalid);
    }

    #[test]
    fn text_expands_references_and_normalises_line_ends() {
        let doc = b"a&lt;&#65;&#x42;\r\nc\rd&amp;";
        let mut out = String::new();
        assert!(scan_text(&src(doc), 0, doc.len(), &mut out).is_ok());
        assert_eq!(out, "a<AB\nc\nd&");
    }

    #[test]
    fn text_errors_name_the_failing_token() {
        let mut out = String::new();
        let doc = b"ab&foo;<";
        assert_eq!(
            scan_text(&src(doc), 0, 7, &mut out),
            Err(ContentError::code(2, ExpatError::UndefinedEntity))
        );
        let doc = b"ab& c<";
        assert_eq!(
            scan_text(&src(doc), 0, 5, &mut out),
            Err(ContentError::invalid_at(2, 3))
        );
        let doc = b"x&#0;<";
        assert_eq!(
            scan_text(&src(doc), 0, 5, &mut out),
            Err(ContentError::code(1, ExpatError::BadCharRef))
        );
        let doc = b"ab]]>c<";
        assert_eq!(
            scan_text(&src(doc), 0, 6, &mut out).map_err(|e| e.error),
            Err(TokenError::InvalidAt(4))
        );
        let doc = b"ab\xffc<";
        assert_eq!(
            scan_text(&src(doc), 0, 4, &mut out),
            Err(ContentError::invalid_at(2, 2))
        );
        let doc = b"ab&am";
        assert_eq!(
            scan_text(&src(doc), 0, 5, &mut out),
            Err(ContentError::code(2, ExpatError::UnclosedToken))
        );
    }

    #[test]
    fn start_tags_are_checked_like_expat() {
        let ok = b"<a b='1' c=\"&amp;\">";
        assert_eq!(
            check_start_tag(&src(ok), 0, ok.len() - 1, TagExtent::Complete),
            Ok(2)
        );
        let bad = b"<a $>";
        assert_eq!(
            check_start_tag(&src(bad), 0, 4, TagExtent::Complete),
            Err(ContentError::invalid_at(0, 3))
        );
        let bad = b"<a b>";
        assert_eq!(
            check_start_tag(&src(bad), 0, 4, TagExtent::Complete),
            Err(ContentError::invalid_at(0, 4))
        );
        let bad = b"< a>";
        assert_eq!(
            check_start_tag(&src(bad), 0, 3, TagExtent::Complete),
            Err(ContentError::invalid_at(0, 1))
        );
        let dup = b"<a b='1' b='2'>";
        assert_eq!(
            check_start_tag(&src(dup), 0, dup.len() - 1, TagExtent::Complete),
            Err(ContentError::code(0, ExpatError::DuplicateAttribute))
        );
        let cut = b"<methodCall";
        assert_eq!(
            check_start_tag(&src(cut), 0, cut.len(), TagExtent::Truncated),
            Err(ContentError::code(0, ExpatError::UnclosedToken))
        );
    }

    #[test]
    fn stray_text_is_classified_like_the_prolog_tokenizer() {
        let c = |t: &[u8]| classify_stray_text(&src(t), 0, t.len());
        assert_eq!(c(b" \r\n\t"), StrayText::Blank);
        assert_eq!(c(b"this is not xml at all"), StrayText::Token);
        assert_eq!(c(b"trailing garbage"), StrayText::Token);
        assert_eq!(c(b"{\"json\": 1}"), StrayText::Invalid);
        assert_eq!(c(b"hello{"), StrayText::Invalid);
        assert_eq!(c(b"\"open"), StrayText::Unclosed);
        assert_eq!(c(b"&amp;"), StrayText::Invalid);
    }

    #[test]
    fn comments_may_not_contain_double_dashes() {
        let ok = b"<!-- fine - ok -->";
        assert_eq!(check_comment(&src(ok), 0, ok.len() - 3), Ok(()));
        let bad = b"<!-- a -- b -->";
        assert_eq!(
            check_comment(&src(bad), 0, bad.len() - 3),
            Err(ContentError::invalid_at(0, 9))
        );
    }
}
