//! Text already escaped for an XML-RPC `<string>`, kept as shared byte pieces.
//!
//! Pool listings are megabytes of XML sent inside one `<string>`: escaping them on every call
//! costs more than everything else the call does. Escaping works character by character, so
//! the escape of a concatenation is the concatenation of the escapes: a document can be put
//! together from pieces escaped once (a VM's pool entry, cached until the VM changes) and sent
//! without being copied or scanned again.

use super::encode::{escape_into, escaped_len, unescape};
use bytes::Bytes;

/// One piece of text in escaped form. Only [`EscapedFragment::escape`] makes one, so its bytes
/// are always exactly what the encoder writes for the text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EscapedFragment(Bytes);

impl EscapedFragment {
    pub fn escape(text: &str) -> EscapedFragment {
        // Exactly sized: the fragment is kept for as long as its VM does not change.
        let mut out = String::with_capacity(escaped_len(text));
        escape_into(&mut out, text);
        EscapedFragment(Bytes::from(out))
    }

    /// The fragments one after the other, in one buffer: the escape of a concatenation is
    /// the concatenation of the escapes.
    pub fn join(fragments: &[EscapedFragment]) -> EscapedFragment {
        let mut out = Vec::with_capacity(fragments.iter().map(EscapedFragment::len).sum());
        for f in fragments {
            out.extend_from_slice(&f.0);
        }
        EscapedFragment(Bytes::from(out))
    }

    /// The escaped bytes, as they go on the wire.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A whole `<string>` content as a sequence of escaped pieces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EscapedText {
    parts: Vec<Bytes>,
    len: usize,
}

impl EscapedText {
    pub fn with_capacity(parts: usize) -> EscapedText {
        EscapedText {
            parts: Vec::with_capacity(parts),
            len: 0,
        }
    }

    /// Appends `text`, escaping it now.
    pub fn push_text(&mut self, text: &str) {
        self.push(&EscapedFragment::escape(text));
    }

    /// Appends a piece escaped earlier (shared, not copied).
    pub fn push(&mut self, fragment: &EscapedFragment) {
        if fragment.is_empty() {
            return;
        }
        self.len += fragment.len();
        self.parts.push(fragment.0.clone());
    }

    /// Length of the escaped text in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    pub fn into_parts(self) -> Vec<Bytes> {
        self.parts
    }

    /// The text itself (for the rare answers that need it as a value, e.g. inside
    /// `system.multicall`).
    pub fn to_text(&self) -> String {
        let mut escaped = Vec::with_capacity(self.len);
        for p in &self.parts {
            escaped.extend_from_slice(p);
        }
        // The pieces were made from `str`s by an escaper that only writes ASCII entities.
        unescape(&String::from_utf8_lossy(&escaped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_concatenate_to_the_escape_of_the_whole() {
        let pieces = [
            "<VM_POOL>",
            "<VM><NAME>a&b</NAME>",
            "<![CDATA[x\r\ny]]>",
            "é</VM>",
            "",
        ];
        let mut text = EscapedText::default();
        for p in pieces {
            text.push_text(p);
        }
        let whole: String = pieces.concat();
        let mut expected = String::new();
        escape_into(&mut expected, &whole);
        let joined: Vec<u8> = text
            .parts()
            .iter()
            .flat_map(|b| b.iter().copied())
            .collect();
        assert_eq!(joined, expected.as_bytes());
        assert_eq!(text.len(), expected.len());
        assert_eq!(text.to_text(), whole);
    }
}
