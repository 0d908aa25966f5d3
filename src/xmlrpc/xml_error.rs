//! Malformed-XML errors, worded like xmlrpc-c's private fork of expat.
//!
//! xmlrpc-c reports an XML error in one of two shapes, depending on which
//! expat "processor" found it:
//!
//! * outside the document element (expat's prolog processor) the bare expat
//!   text: `syntax error`, `no element found`, `unknown encoding` ...;
//! * inside the document element, or in the epilog, which expat reaches
//!   from the end tag of the document element, xmlrpc-c's content processor
//!   adds the failing token:
//!   `Invalid XML "content".  Problem with token at '<40 bytes>...': <text>`.
//!
//! The registry then wraps this as
//! `Call XML not a proper XML-RPC call.  Call is not valid XML.  <message>`.

/// The expat error codes a request can run into, with expat's texts
/// (`XML_ErrorString()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpatError {
    Syntax,
    NoElements,
    InvalidToken,
    UnclosedToken,
    PartialChar,
    TagMismatch,
    DuplicateAttribute,
    JunkAfterDocElement,
    UndefinedEntity,
    BadCharRef,
    MisplacedXmlPi,
    UnknownEncoding,
    IncorrectEncoding,
    UnclosedCdataSection,
}

impl ExpatError {
    fn text(self) -> &'static str {
        match self {
            ExpatError::Syntax => "syntax error",
            ExpatError::NoElements => "no element found",
            ExpatError::InvalidToken => "not well-formed (invalid token)",
            ExpatError::UnclosedToken => "unclosed token",
            ExpatError::PartialChar => "partial character",
            ExpatError::TagMismatch => "mismatched tag",
            ExpatError::DuplicateAttribute => "duplicate attribute",
            ExpatError::JunkAfterDocElement => "junk after document element",
            ExpatError::UndefinedEntity => "undefined entity",
            ExpatError::BadCharRef => "reference to invalid character number",
            ExpatError::MisplacedXmlPi => "XML or text declaration not at start of entity",
            ExpatError::UnknownEncoding => "unknown encoding",
            ExpatError::IncorrectEncoding => "encoding specified in XML declaration is incorrect",
            ExpatError::UnclosedCdataSection => "unclosed CDATA section",
        }
    }
}

/// What went wrong with a token the content processor was looking at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenError {
    /// The content tokenizer found an invalid character at this absolute
    /// byte position; xmlrpc-c reports its distance from the token start.
    InvalidAt(usize),
    /// Any other expat error, reported with expat's text.
    Code(ExpatError),
}

/// A content-processor error: the failing token and the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentError {
    /// Absolute byte position where the failing token starts.
    pub token_start: usize,
    pub error: TokenError,
}

impl ContentError {
    pub(crate) fn invalid_at(token_start: usize, position: usize) -> Self {
        ContentError {
            token_start,
            error: TokenError::InvalidAt(position),
        }
    }

    pub(crate) fn code(token_start: usize, code: ExpatError) -> Self {
        ContentError {
            token_start,
            error: TokenError::Code(code),
        }
    }
}

/// Where and how the XML of a request is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XmlError {
    /// Found by expat's prolog processor: reported with the bare text.
    Prolog(ExpatError),
    /// Found by xmlrpc-c's content processor: reported with the token.
    Content(ContentError),
}

impl From<ContentError> for XmlError {
    fn from(e: ContentError) -> Self {
        XmlError::Content(e)
    }
}

/// How many bytes of the failing token xmlrpc-c quotes.
const SAMPLE_LEN: usize = 40;

impl XmlError {
    /// The message as xmlrpc-c's XML layer words it; `doc` is the document
    /// the positions refer to.
    pub(crate) fn describe(&self, doc: &[u8]) -> String {
        match *self {
            XmlError::Prolog(code) => code.text().to_owned(),
            XmlError::Content(ContentError { token_start, error }) => {
                let start = token_start.min(doc.len());
                let end = start.saturating_add(SAMPLE_LEN).min(doc.len());
                let sample = printable(&doc[start..end]);
                let problem = match error {
                    TokenError::InvalidAt(position) => format!(
                        "Invalid token, starting {} bytes in",
                        position.saturating_sub(token_start)
                    ),
                    TokenError::Code(code) => code.text().to_owned(),
                };
                format!("Invalid XML \"content\".  Problem with token at '{sample}...': {problem}")
            }
        }
    }
}

/// xmlrpc-c's `xmlrpc_makePrintable_lp()`: C escapes for control
/// characters, backslash doubled.
///
/// Every byte above 0x7F comes out as `\xff`: xmlrpc-c formats the
/// (signed, so sign-extended) `char` with `"\\x%02x"` into a 5-byte buffer,
/// which keeps only the first two of the eight hex digits. We reproduce
/// that, which also keeps the fault text pure ASCII whatever the input.
fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(char::from(b)),
            0x80..=0xff => out.push_str("\\xff"),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prolog_errors_are_bare() {
        assert_eq!(
            XmlError::Prolog(ExpatError::Syntax).describe(b"x"),
            "syntax error"
        );
    }

    #[test]
    fn content_errors_quote_forty_bytes_of_the_token() {
        let doc = b"<a>0123456789012345678901234567890123456789XYZ";
        let e = XmlError::Content(ContentError::code(3, ExpatError::UndefinedEntity));
        assert_eq!(
            e.describe(doc),
            "Invalid XML \"content\".  Problem with token at \
             '0123456789012345678901234567890123456789...': undefined entity"
        );
    }

    #[test]
    fn invalid_tokens_report_their_offset() {
        let e = XmlError::Content(ContentError::invalid_at(0, 3));
        assert_eq!(
            e.describe(b"<a $>"),
            "Invalid XML \"content\".  Problem with token at '<a $>...': \
             Invalid token, starting 3 bytes in"
        );
    }

    #[test]
    fn samples_are_made_printable_like_xmlrpc_c() {
        assert_eq!(
            printable(b"a\\b\n\t\r\x07\x01\xe9"),
            "a\\\\b\\n\\t\\r\\a\\x01\\xff"
        );
    }
}
