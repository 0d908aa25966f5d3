//! The XML of a request as an element tree, built the way xmlrpc-c's expat
//! wrapper builds it: each element keeps its name, the concatenation of the
//! character data directly inside it, and its child elements. Attributes,
//! comments, processing instructions and the DOCTYPE are checked and
//! dropped.
//!
//! quick-xml does the tokenizing; the checks quick-xml does not make (see
//! `xml_lexical`) and the expat-style error reporting are done here, so a
//! malformed request gets the fault text oned would give.

use std::borrow::Cow;

use quick_xml::errors::{Error as QuickXmlError, SyntaxError};
use quick_xml::events::Event;
use quick_xml::Reader;

use super::document_encoding::decode_document;
use super::xml_error::{ContentError, ExpatError, TokenError, XmlError};
use super::xml_lexical::{
    check_comment, check_end_tag, check_pi, check_start_tag, classify_stray_text,
    doctype_chars_valid, is_name_start, scan_cdata, scan_text, CharAt, PiKind, Source, StrayText,
    TagExtent,
};

/// Elements nested deeper than this are checked but not kept, so that a
/// hostile document cannot make the tree (and its recursive drop) deep.
/// Any legal XML-RPC call is far shallower: xmlrpc-c refuses values nested
/// more than 64 deep, which is about 200 elements.
pub(crate) const MAX_ELEMENT_DEPTH: usize = 256;

/// The parsed request: the (UTF-8) document and its kept elements, stored
/// compactly so that parsing costs a small multiple of the body whatever it
/// holds (issue 12: a request of tiny elements made a tree 25 times its
/// size). Elements are 32-byte nodes in one vector, in post-order (children
/// before their parent); names, and character data that needs no rewriting,
/// are byte ranges of the document.
pub(crate) struct Document<'a> {
    src: Cow<'a, [u8]>,
    nodes: Vec<Node>,
    /// Character data that differs from its bytes in the document
    /// (references expanded, line ends normalised, several pieces).
    texts: Vec<String>,
}

/// No node (a link's end).
const NONE: u32 = u32::MAX;
/// Set in `Node::children` when children were dropped for nesting deeper than
/// [`MAX_ELEMENT_DEPTH`].
const TRUNCATED: u32 = 1 << 31;

#[derive(Debug, Clone, Copy)]
enum Text {
    Empty,
    /// Bytes `start..end` of the document, as they are.
    Span(u32, u32),
    /// `Document::texts[i]`.
    Owned(u32),
}

#[derive(Debug, Clone, Copy)]
struct Node {
    name: (u32, u32),
    text: Text,
    first_child: u32,
    /// The next sibling; until the parent is closed, the number of the
    /// node's descendants (which precede it).
    link: u32,
    /// Number of children, with [`TRUNCATED`].
    children: u32,
}

/// One element of the request document.
#[derive(Clone, Copy)]
pub(crate) struct Element<'d> {
    doc: &'d Document<'d>,
    index: u32,
}

impl<'d> Element<'d> {
    fn node(&self) -> &'d Node {
        &self.doc.nodes[self.index as usize]
    }

    fn text_of(&self, start: u32, end: u32) -> &'d str {
        let bytes = self
            .doc
            .src
            .get(start as usize..end as usize)
            .unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    pub fn name(&self) -> &'d str {
        let (start, end) = self.node().name;
        self.text_of(start, end)
    }

    /// Character data directly inside the element, references expanded and
    /// line ends normalised.
    pub fn cdata(&self) -> &'d str {
        match self.node().text {
            Text::Empty => "",
            Text::Span(start, end) => self.text_of(start, end),
            Text::Owned(i) => self
                .doc
                .texts
                .get(i as usize)
                .map(String::as_str)
                .unwrap_or_default(),
        }
    }

    pub fn child_count(&self) -> usize {
        (self.node().children & !TRUNCATED) as usize
    }

    /// Children were dropped for nesting deeper than [`MAX_ELEMENT_DEPTH`].
    pub fn truncated(&self) -> bool {
        self.node().children & TRUNCATED != 0
    }

    pub fn children(&self) -> impl Iterator<Item = Element<'d>> + 'd {
        let doc = self.doc;
        let mut next = self.node().first_child;
        std::iter::from_fn(move || {
            if next == NONE {
                return None;
            }
            let child = Element { doc, index: next };
            next = doc.nodes[next as usize].link;
            Some(child)
        })
    }

    /// The only child, when there is exactly one.
    pub fn only_child(&self) -> Option<Element<'d>> {
        (self.child_count() == 1).then(|| self.children().next())?
    }
}

impl<'a> Document<'a> {
    pub fn root(&self) -> Element<'_> {
        Element {
            doc: self,
            index: (self.nodes.len() - 1) as u32,
        }
    }
}

/// Parses a request body into its document, or returns the message
/// xmlrpc-c's XML layer gives for it.
pub(crate) fn parse_document(body: &[u8]) -> Result<Document<'_>, String> {
    let decoded = decode_document(body).map_err(|e| e.describe(body))?;
    if u32::try_from(decoded.bytes.len()).is_err() {
        return Err("document too large".into());
    }
    let src = Source {
        bytes: &decoded.bytes,
        ascii_only: decoded.ascii_only,
    };
    let built = TreeBuilder::new(src, decoded.declaration_len)
        .run()
        .map_err(|e| e.describe(src.bytes))?;
    let (nodes, texts) = built;
    Ok(Document {
        src: decoded.bytes,
        nodes,
        texts,
    })
}

/// Which expat processor would be looking at the next token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the document element.
    Prolog { seen_doctype: bool },
    /// Inside the document element.
    Content,
    /// After it; `root_token` is the start of the document element's end
    /// tag (or empty-element tag), where expat reports epilog errors.
    Epilog { root_token: usize },
}

/// An element being read.
struct Open {
    name: (u32, u32),
    text: Text,
    children: u32,
}

struct TreeBuilder<'a> {
    src: Source<'a>,
    declaration_len: usize,
    phase: Phase,
    /// Name ranges of all open elements, innermost last.
    open_names: Vec<(usize, usize)>,
    /// The open elements that are kept: a prefix of `open_names`.
    kept: Vec<Open>,
    /// The closed elements that are kept, in post-order.
    nodes: Vec<Node>,
    texts: Vec<String>,
    done: bool,
    /// Receives each piece of character data before it is kept (or not).
    scratch: String,
}

fn offset(i: usize) -> u32 {
    // parse_document has checked that the document fits.
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn position(p: u64) -> usize {
    usize::try_from(p).unwrap_or(usize::MAX)
}

fn bare(e: ContentError) -> ExpatError {
    match e.error {
        TokenError::InvalidAt(_) => ExpatError::InvalidToken,
        TokenError::Code(code) => code,
    }
}

impl<'a> TreeBuilder<'a> {
    fn new(src: Source<'a>, declaration_len: usize) -> Self {
        TreeBuilder {
            src,
            declaration_len,
            phase: Phase::Prolog {
                seen_doctype: false,
            },
            open_names: Vec::new(),
            kept: Vec::new(),
            nodes: Vec::new(),
            texts: Vec::new(),
            done: false,
            scratch: String::new(),
        }
    }

    fn run(mut self) -> Result<(Vec<Node>, Vec<String>), XmlError> {
        let mut reader = Reader::from_reader(self.src.bytes);
        let config = reader.config_mut();
        config.trim_text(false);
        config.check_end_names = false;
        config.allow_unmatched_ends = true;
        config.check_comments = false;
        config.expand_empty_elements = false;
        config.trim_markup_names_in_closing_tags = false;
        loop {
            let start = position(reader.buffer_position());
            let event = match reader.read_event() {
                Ok(event) => event,
                Err(error) => {
                    let at = position(reader.error_position());
                    return Err(self.tokenizer_error(&error, start, at));
                }
            };
            let end = position(reader.buffer_position());
            if self.handle(event, start, end)? {
                return Ok((self.nodes, self.texts));
            }
        }
    }

    /// Handles the event found at `start..end`.
    fn handle(&mut self, event: Event<'_>, start: usize, end: usize) -> Result<bool, XmlError> {
        match self.phase {
            Phase::Prolog { seen_doctype } => self.in_prolog(event, start, end, seen_doctype),
            Phase::Content => self.in_content(event, start).map(|()| false),
            Phase::Epilog { root_token } => self.in_epilog(event, start, root_token),
        }
    }

    /// The XML declaration is only allowed at the very start, where
    /// `decode_document` has already checked it.
    fn is_leading_declaration(&self, start: usize) -> bool {
        start == 0 && self.declaration_len > 0
    }

    fn in_prolog(
        &mut self,
        event: Event<'_>,
        start: usize,
        end: usize,
        seen_doctype: bool,
    ) -> Result<bool, XmlError> {
        let src = self.src;
        let prolog = |code| -> Result<bool, XmlError> { Err(XmlError::Prolog(code)) };
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Text(text) => match classify_stray_text(&src, start, start + text.len()) {
                StrayText::Blank => Ok(false),
                StrayText::Token => prolog(ExpatError::Syntax),
                StrayText::Invalid => prolog(ExpatError::InvalidToken),
                StrayText::Unclosed => prolog(ExpatError::UnclosedToken),
                StrayText::Partial => prolog(ExpatError::PartialChar),
            },
            Event::Decl(_) if self.is_leading_declaration(start) => Ok(false),
            // A declaration anywhere else in the prolog is a syntax error
            // (expat's "misplaced" code is lost to a missing `break`).
            Event::Decl(_) => prolog(ExpatError::Syntax),
            Event::PI(pi) => match check_pi(&src, start, start + 2 + pi.len()) {
                Ok(PiKind::Instruction) => Ok(false),
                Ok(PiKind::XmlDeclaration) if self.is_leading_declaration(start) => Ok(false),
                Ok(PiKind::XmlDeclaration) => prolog(ExpatError::Syntax),
                Err(e) => prolog(bare(e)),
            },
            Event::Comment(body) => check_comment(&src, start, start + 4 + body.len())
                .map(|()| false)
                .map_err(|e| XmlError::Prolog(bare(e))),
            Event::DocType(_) => {
                // quick-xml also takes `<!doctype`; expat only `<!DOCTYPE`.
                let keyword = src.bytes.get(start..start + 9) == Some(b"<!DOCTYPE".as_slice());
                if seen_doctype || !keyword {
                    prolog(ExpatError::Syntax)
                } else if !doctype_chars_valid(&src, start, end) {
                    prolog(ExpatError::InvalidToken)
                } else {
                    self.phase = Phase::Prolog { seen_doctype: true };
                    Ok(false)
                }
            }
            Event::CData(_) => prolog(ExpatError::Syntax),
            Event::End(_) => prolog(ExpatError::InvalidToken),
            Event::Start(tag) | Event::Empty(tag) => {
                // Expat's prolog tokenizer hands `<` + name start character
                // to the content processor; anything else is its own error.
                match src.char_at(start + 1) {
                    CharAt::Char(c, _) if is_name_start(c) => {}
                    CharAt::Partial => return prolog(ExpatError::PartialChar),
                    _ => return prolog(ExpatError::InvalidToken),
                }
                self.phase = Phase::Content;
                self.start_element(start, start + 1 + tag.len(), empty)?;
                Ok(false)
            }
            Event::Eof => prolog(ExpatError::NoElements),
        }
    }

    fn in_content(&mut self, event: Event<'_>, start: usize) -> Result<(), XmlError> {
        let src = self.src;
        match event {
            Event::Start(tag) => self.start_element(start, start + 1 + tag.len(), false),
            Event::Empty(tag) => self.start_element(start, start + 1 + tag.len(), true),
            Event::End(tag) => self.end_element(start, start + 2 + tag.len()),
            Event::Text(text) => {
                let end = start + text.len();
                self.scratch.clear();
                scan_text(&src, start, end, &mut self.scratch)?;
                self.keep_text(start, end);
                Ok(())
            }
            Event::CData(cdata) => {
                let body = start + "<![CDATA[".len();
                let end = body + cdata.len();
                self.scratch.clear();
                scan_cdata(&src, start, body, end, &mut self.scratch)?;
                self.keep_text(body, end);
                Ok(())
            }
            Event::Comment(body) => Ok(check_comment(&src, start, start + 4 + body.len())?),
            Event::PI(pi) => match check_pi(&src, start, start + 2 + pi.len())? {
                PiKind::Instruction => Ok(()),
                PiKind::XmlDeclaration => {
                    Err(ContentError::code(start, ExpatError::MisplacedXmlPi).into())
                }
            },
            Event::Decl(_) => Err(ContentError::code(start, ExpatError::MisplacedXmlPi).into()),
            // `<!` may only start a comment or a CDATA section in content.
            Event::DocType(_) => Err(ContentError::invalid_at(start, start + 2).into()),
            Event::Eof => Err(ContentError::code(src.len(), ExpatError::NoElements).into()),
        }
    }

    fn in_epilog(
        &mut self,
        event: Event<'_>,
        start: usize,
        root_token: usize,
    ) -> Result<bool, XmlError> {
        let src = self.src;
        let fail =
            |code| -> Result<bool, XmlError> { Err(ContentError::code(root_token, code).into()) };
        match event {
            Event::Eof => Ok(self.done),
            Event::Text(text) => match classify_stray_text(&src, start, start + text.len()) {
                StrayText::Blank => Ok(false),
                StrayText::Token => fail(ExpatError::JunkAfterDocElement),
                StrayText::Invalid => fail(ExpatError::InvalidToken),
                StrayText::Unclosed => fail(ExpatError::UnclosedToken),
                StrayText::Partial => fail(ExpatError::PartialChar),
            },
            Event::Comment(body) => match check_comment(&src, start, start + 4 + body.len()) {
                Ok(()) => Ok(false),
                Err(e) => fail(bare(e)),
            },
            Event::PI(pi) => match check_pi(&src, start, start + 2 + pi.len()) {
                Ok(PiKind::Instruction) => Ok(false),
                Ok(PiKind::XmlDeclaration) => fail(ExpatError::JunkAfterDocElement),
                Err(e) => fail(bare(e)),
            },
            Event::Start(_) | Event::Empty(_) => match src.char_at(start + 1) {
                CharAt::Char(c, _) if is_name_start(c) => fail(ExpatError::JunkAfterDocElement),
                CharAt::Partial => fail(ExpatError::PartialChar),
                _ => fail(ExpatError::InvalidToken),
            },
            Event::End(_) => fail(ExpatError::InvalidToken),
            Event::Decl(_) | Event::CData(_) | Event::DocType(_) => {
                fail(ExpatError::JunkAfterDocElement)
            }
        }
    }

    /// Adds the piece of character data in `scratch` (read from bytes
    /// `start..end`) to the current element, if it is kept: as a range of the
    /// document when it is those bytes unchanged.
    fn keep_text(&mut self, start: usize, end: usize) {
        if self.scratch.is_empty() || self.kept.len() != self.open_names.len() {
            return;
        }
        let Some(top) = self.kept.last_mut() else {
            return;
        };
        let unchanged = self.src.bytes.get(start..end) == Some(self.scratch.as_bytes());
        top.text = match top.text {
            Text::Empty if unchanged => Text::Span(offset(start), offset(end)),
            Text::Empty => {
                self.texts.push(self.scratch.clone());
                Text::Owned(offset(self.texts.len() - 1))
            }
            Text::Span(s, e) => {
                let mut joined = String::with_capacity((e - s) as usize + self.scratch.len());
                self.src.push_text(&mut joined, s as usize, e as usize);
                joined.push_str(&self.scratch);
                self.texts.push(joined);
                Text::Owned(offset(self.texts.len() - 1))
            }
            Text::Owned(i) => {
                if let Some(t) = self.texts.get_mut(i as usize) {
                    t.push_str(&self.scratch);
                }
                Text::Owned(i)
            }
        };
    }

    fn start_element(
        &mut self,
        lt: usize,
        content_end: usize,
        empty: bool,
    ) -> Result<(), XmlError> {
        let name_end = check_start_tag(&self.src, lt, content_end, TagExtent::Complete)?;
        let name = (lt + 1, name_end);
        let all_ancestors_kept = self.kept.len() == self.open_names.len();
        if all_ancestors_kept && self.kept.len() < MAX_ELEMENT_DEPTH {
            self.kept.push(Open {
                name: (offset(name.0), offset(name.1)),
                text: Text::Empty,
                children: 0,
            });
        } else if let Some(deepest) = self.kept.last_mut() {
            deepest.children |= TRUNCATED;
        }
        self.open_names.push(name);
        if empty {
            self.close_element(lt);
        }
        Ok(())
    }

    fn end_element(&mut self, lt: usize, content_end: usize) -> Result<(), XmlError> {
        let name_end = check_end_tag(&self.src, lt, content_end, TagExtent::Complete)?;
        let closing = self.src.bytes.get(lt + 2..name_end);
        let open = self
            .open_names
            .last()
            .and_then(|&(s, e)| self.src.bytes.get(s..e));
        if open.is_none() || open != closing {
            return Err(ContentError::code(lt, ExpatError::TagMismatch).into());
        }
        self.close_element(lt);
        Ok(())
    }

    /// Closes the innermost open element; `tag` is where its end tag (or
    /// empty-element tag) starts.
    fn close_element(&mut self, tag: usize) {
        let depth = self.open_names.len();
        self.open_names.pop();
        if self.kept.len() == depth {
            if let Some(element) = self.kept.pop() {
                // The children are the last kept nodes, each after its own
                // descendants: walk back through them, turning each one's
                // descendant count into the link to its next sibling.
                let end = self.nodes.len();
                let mut cursor = end;
                let mut next = NONE;
                for _ in 0..(element.children & !TRUNCATED) {
                    let child = cursor - 1;
                    let descendants = self.nodes[child].link as usize;
                    self.nodes[child].link = next;
                    next = offset(child);
                    cursor = child - descendants;
                }
                self.nodes.push(Node {
                    name: element.name,
                    text: element.text,
                    first_child: next,
                    link: offset(end - cursor),
                    children: element.children,
                });
                match self.kept.last_mut() {
                    Some(parent) => parent.children += 1,
                    None => self.done = true,
                }
            }
        }
        if self.open_names.is_empty() {
            self.phase = Phase::Epilog { root_token: tag };
        }
    }

    /// Maps a quick-xml error (markup cut by the end of the input, or an
    /// unknown `<!` construct) to what expat reports for it.
    /// `start` is where the failing markup begins, `at` where quick-xml
    /// places the error.
    fn tokenizer_error(&self, error: &QuickXmlError, start: usize, at: usize) -> XmlError {
        let src = &self.src;
        let QuickXmlError::Syntax(kind) = error else {
            // With our configuration quick-xml raises nothing else but
            // "<!DOCTYPE>" without name: a syntax error in the prolog, an
            // invalid `<!` in content.
            return match self.phase {
                Phase::Prolog { .. } => XmlError::Prolog(ExpatError::Syntax),
                Phase::Content => ContentError::invalid_at(start, start + 2).into(),
                Phase::Epilog { root_token } => {
                    ContentError::code(root_token, ExpatError::InvalidToken).into()
                }
            };
        };
        match self.phase {
            Phase::Prolog { .. } => match kind {
                SyntaxError::UnclosedTag => match src.char_at(at + 1) {
                    CharAt::Char(c, _) if is_name_start(c) => self.truncated_tag(at),
                    CharAt::Partial if at + 1 >= src.len() => {
                        XmlError::Prolog(ExpatError::UnclosedToken)
                    }
                    CharAt::Partial => XmlError::Prolog(ExpatError::PartialChar),
                    _ => XmlError::Prolog(ExpatError::InvalidToken),
                },
                SyntaxError::UnclosedCData => XmlError::Prolog(ExpatError::Syntax),
                SyntaxError::InvalidBangMarkup => XmlError::Prolog(ExpatError::InvalidToken),
                SyntaxError::UnclosedPIOrXmlDecl
                | SyntaxError::UnclosedComment
                | SyntaxError::UnclosedDoctype => XmlError::Prolog(ExpatError::UnclosedToken),
            },
            Phase::Content => match kind {
                SyntaxError::UnclosedTag => self.truncated_tag(at),
                SyntaxError::UnclosedCData => {
                    ContentError::code(at, ExpatError::UnclosedCdataSection).into()
                }
                SyntaxError::UnclosedDoctype | SyntaxError::InvalidBangMarkup => {
                    ContentError::invalid_at(at, at + 2).into()
                }
                SyntaxError::UnclosedPIOrXmlDecl | SyntaxError::UnclosedComment => {
                    ContentError::code(at, ExpatError::UnclosedToken).into()
                }
            },
            Phase::Epilog { root_token } => {
                let code = match kind {
                    SyntaxError::InvalidBangMarkup => ExpatError::InvalidToken,
                    _ => ExpatError::UnclosedToken,
                };
                ContentError::code(root_token, code).into()
            }
        }
    }

    /// A tag cut by the end of the input: an invalid character in what
    /// there is wins over "unclosed token".
    fn truncated_tag(&self, lt: usize) -> XmlError {
        let end = self.src.len();
        let checked = if self.src.byte(lt + 1) == Some(b'/') {
            check_end_tag(&self.src, lt, end, TagExtent::Truncated)
        } else {
            check_start_tag(&self.src, lt, end, TagExtent::Truncated)
        };
        match checked {
            Err(e) => e.into(),
            Ok(_) => ContentError::code(lt, ExpatError::UnclosedToken).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An owned picture of an element, for comparisons.
    #[derive(Debug, PartialEq)]
    struct Shape {
        name: String,
        cdata: String,
        children: Vec<Shape>,
        truncated: bool,
    }

    fn shape(e: Element<'_>) -> Shape {
        Shape {
            name: e.name().to_string(),
            cdata: e.cdata().to_string(),
            children: e.children().map(shape).collect(),
            truncated: e.truncated(),
        }
    }

    fn tree(doc: &str) -> Result<Shape, String> {
        parse_document(doc.as_bytes()).map(|d| shape(d.root()))
    }

    #[test]
    fn builds_names_cdata_and_children() {
        let root = tree("<?xml version=\"1.0\"?>\n<a x='1'>t<b>u&amp;v</b><!-- c --><c/>w</a>\n")
            .expect("well-formed");
        assert_eq!(root.name, "a");
        assert_eq!(root.cdata, "tw");
        assert_eq!(root.children.len(), 2);
        assert_eq!(root.children[0].name, "b");
        assert_eq!(root.children[0].cdata, "u&v");
        assert_eq!(root.children[1].name, "c");
    }

    #[test]
    fn nodes_stay_small() {
        // A request of empty elements costs 8 bytes of tree per 4-byte `<x/>`.
        assert!(
            std::mem::size_of::<Node>() <= 32,
            "{}",
            std::mem::size_of::<Node>()
        );
    }

    #[test]
    fn text_pieces_are_joined() {
        let root = tree("<a>x&amp;y<b/>z<![CDATA[w]]></a>").expect("well-formed");
        assert_eq!(root.cdata, "x&yzw");
        let root = tree("<a><![CDATA[plain]]></a>").expect("well-formed");
        assert_eq!(root.cdata, "plain");
        let root = tree("<a>one</a>").expect("well-formed");
        assert_eq!(root.cdata, "one");
    }

    #[test]
    fn cdata_sections_are_character_data() {
        let root = tree("<a><![CDATA[<x>&amp;\r\n]]></a>").expect("well-formed");
        assert_eq!(root.cdata, "<x>&amp;\n");
    }

    #[test]
    fn recorded_xml_errors() {
        assert_eq!(tree("this is not xml at all"), Err("syntax error".into()));
        assert_eq!(
            tree("<?xml version=\"1.0\"?><methodCall><params>"),
            Err("Invalid XML \"content\".  Problem with token at '...': no element found".into())
        );
        assert_eq!(
            tree("<m><x/></m>trailing garbage"),
            Err(
                "Invalid XML \"content\".  Problem with token at '</m>trailing garbage...': \
                 junk after document element"
                    .into()
            )
        );
    }

    #[test]
    fn other_xml_errors() {
        assert_eq!(tree(""), Err("no element found".into()));
        assert_eq!(tree("   "), Err("no element found".into()));
        assert_eq!(
            tree("{\"a\": 1}"),
            Err("not well-formed (invalid token)".into())
        );
        assert_eq!(
            tree("<a><b></a>"),
            Err("Invalid XML \"content\".  Problem with token at '</a>...': mismatched tag".into())
        );
        assert_eq!(
            tree("<a>&nbsp;</a>"),
            Err(
                "Invalid XML \"content\".  Problem with token at '&nbsp;</a>...': undefined entity"
                    .into()
            )
        );
        assert_eq!(
            tree("<a>x\u{1}</a>"),
            Err(
                "Invalid XML \"content\".  Problem with token at '\\x01</a>...': \
                 Invalid token, starting 0 bytes in"
                    .into()
            )
        );
        assert_eq!(
            tree("<methodCall"),
            Err(
                "Invalid XML \"content\".  Problem with token at '<methodCall...': unclosed token"
                    .into()
            )
        );
        assert_eq!(
            tree(" <?xml version=\"1.0\"?><a/>"),
            Err("syntax error".into())
        );
        assert_eq!(
            tree("<a><?xml version=\"1.0\"?></a>"),
            Err("Invalid XML \"content\".  Problem with token at '<?xml version=\"1.0\"?></a>...': \
                 XML or text declaration not at start of entity"
                .into())
        );
        assert_eq!(
            tree("<a/><b/>"),
            Err(
                "Invalid XML \"content\".  Problem with token at '<a/><b/>...': \
                 junk after document element"
                    .into()
            )
        );
    }

    #[test]
    fn invalid_utf8_is_an_invalid_token() {
        assert_eq!(
            parse_document(b"<a>caf\xe9</a>").map(|d| shape(d.root())),
            Err(
                "Invalid XML \"content\".  Problem with token at '\\xff</a>...': \
                 Invalid token, starting 0 bytes in"
                    .into()
            )
        );
        assert_eq!(
            parse_document(b"\xff<a/>").map(|d| shape(d.root())),
            Err("not well-formed (invalid token)".into())
        );
    }

    #[test]
    fn deep_documents_are_cut_but_checked() {
        let depth = MAX_ELEMENT_DEPTH + 50;
        let doc = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let root = tree(&doc).expect("well-formed");
        let mut element = &root;
        let mut kept = 1;
        while let Some(child) = element.children.first() {
            element = child;
            kept += 1;
        }
        assert_eq!(kept, MAX_ELEMENT_DEPTH);
        assert!(element.truncated);
        let broken = format!("{}{}</b>", "<a>".repeat(depth), "</a>".repeat(depth - 1));
        assert!(tree(&broken).is_err());
    }
}
