//! A plain element tree built with quick-xml, shared by the XML-RPC envelope decoder and the
//! comparison of the XML documents that travel inside XML-RPC strings.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::fmt;

/// One XML element. Character data is kept per element, not interleaved with the children:
/// the documents compared here never mix text and elements, and whitespace between elements
/// still shows up (and is compared) as the parent's `text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Text and CDATA directly inside this element, unescaped and concatenated in order.
    pub text: String,
}

impl Element {
    fn new(name: String, attributes: Vec<(String, String)>) -> Element {
        Element {
            name,
            attributes,
            children: Vec::new(),
            text: String::new(),
        }
    }

    fn with_text(mut self, text: &str) -> Element {
        self.text = text.to_string();
        self
    }

    /// The first child element called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// The text of the first child element called `name`.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|child| child.text.as_str())
    }

    /// True when the element's own text is only XML whitespace.
    pub fn text_is_blank(&self) -> bool {
        is_blank(&self.text)
    }
}

pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// Why a text is not a well-formed XML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    /// Byte offset in the parsed text where the problem was noticed.
    pub offset: u64,
    pub message: String,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

impl std::error::Error for XmlError {}

/// Parses a complete document: optional declaration, comments and processing instructions,
/// exactly one root element, and nothing but whitespace outside it.
pub fn parse_document(text: &str) -> Result<Element, XmlError> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;

    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let offset = reader.buffer_position();
        let fail = |message: String| XmlError { offset, message };
        let event = reader
            .read_event()
            .map_err(|error| fail(format!("not well-formed XML: {error}")))?;
        match event {
            Event::Start(start) => open.push(start_element(&start).map_err(fail)?),
            Event::Empty(start) => {
                let element = start_element(&start).map_err(fail)?;
                attach(element, &mut open, &mut root).map_err(fail)?;
            }
            Event::End(end) => {
                let element = open
                    .pop()
                    .ok_or_else(|| fail("end tag without a start tag".to_string()))?;
                if end.name().as_ref() != element.name.as_bytes() {
                    return Err(fail(format!(
                        "end tag </{}> does not close <{}>",
                        String::from_utf8_lossy(end.name().as_ref()),
                        element.name
                    )));
                }
                attach(element, &mut open, &mut root).map_err(fail)?;
            }
            Event::Text(text) => {
                let text = text
                    .unescape()
                    .map_err(|error| fail(format!("bad character data: {error}")))?;
                add_text(&text, &mut open).map_err(fail)?;
            }
            Event::CData(cdata) => {
                let bytes = cdata.into_inner();
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| fail("CDATA is not UTF-8".to_string()))?;
                add_text(text, &mut open).map_err(fail)?;
            }
            // Neither carries content that the compared documents use.
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => {
                if let Some(unclosed) = open.last() {
                    return Err(fail(format!("document ends inside <{}>", unclosed.name)));
                }
                return root.ok_or_else(|| fail("no root element".to_string()));
            }
        }
    }
}

fn start_element(start: &BytesStart<'_>) -> Result<Element, String> {
    let name = std::str::from_utf8(start.name().as_ref())
        .map_err(|_| "element name is not UTF-8".to_string())?
        .to_string();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| format!("bad attribute in <{name}>: {error}"))?;
        let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
        let value = attribute
            .unescape_value()
            .map_err(|error| format!("bad attribute value in <{name}>: {error}"))?
            .into_owned();
        attributes.push((key, value));
    }
    Ok(Element::new(name, attributes))
}

fn attach(
    element: Element,
    open: &mut [Element],
    root: &mut Option<Element>,
) -> Result<(), String> {
    if let Some(parent) = open.last_mut() {
        parent.children.push(element);
        Ok(())
    } else if root.is_some() {
        Err(format!(
            "junk after the root element: a second root <{}>",
            element.name
        ))
    } else {
        *root = Some(element);
        Ok(())
    }
}

fn add_text(text: &str, open: &mut [Element]) -> Result<(), String> {
    match open.last_mut() {
        Some(element) => {
            element.text.push_str(text);
            Ok(())
        }
        None if is_blank(text) => Ok(()),
        None => Err(format!(
            "text outside the root element: {:?}",
            text.chars().take(40).collect::<String>()
        )),
    }
}

/// Checks run by `--self-test`.
pub fn self_checks(checks: &mut crate::harness::selftest::Checks) {
    let doc = parse_document(
        "<?xml version=\"1.0\"?>\n<A x=\"1&amp;2\"><B>t&lt;1&#65;</B><C><![CDATA[<raw>]]></C><D/></A>\r\n",
    );
    let expected = Element {
        name: "A".into(),
        attributes: vec![("x".into(), "1&2".into())],
        children: vec![
            Element::new("B".into(), vec![]).with_text("t<1A"),
            Element::new("C".into(), vec![]).with_text("<raw>"),
            Element::new("D".into(), vec![]),
        ],
        text: String::new(),
    };
    checks.check(
        "xmltree: elements, entities, CDATA, empty element",
        doc.as_ref() == Ok(&expected),
        format!("{doc:?}"),
    );
    for broken in [
        "",
        "plain text",
        "<A><B></A>",
        "<A>",
        "<A></A><B></B>",
        "<A></A>junk",
        "<int> value 2147483648 is above the range",
        "<A>&nosuch;</A>",
    ] {
        checks.check(
            &format!("xmltree: rejects {broken:?}"),
            parse_document(broken).is_err(),
            "accepted a text that is not one well-formed element",
        );
    }
}
