//! The daemon's XML documents as the command line handles them: an element tree (values by
//! path), the raw text of each top-level element of a pool (for `--xml`, passed through as
//! the daemon wrote it), JSON, and 3.2's `KEY=VALUE` template text.

use quick_xml::events::Event;
use serde_json::{Map, Value};

/// Documents nested deeper than this are refused (no oned document is deeper than 6).
const MAX_DEPTH: usize = 64;

/// One element: its name, its text (CDATA included) and its child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

#[derive(Debug, thiserror::Error)]
#[error("the daemon's answer is not the XML document expected: {0}")]
pub struct DocError(pub String);

impl Node {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text at a `/`-separated path of first children (`HISTORY_RECORDS/HISTORY/HID`);
    /// empty when absent.
    pub fn get(&self, path: &str) -> &str {
        self.at(path).map(|n| n.text.as_str()).unwrap_or("")
    }

    pub fn at(&self, path: &str) -> Option<&Node> {
        let mut node = self;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            node = node.child(part)?;
        }
        Some(node)
    }

    /// The integer at `path` (0 when absent or not a number, as Ruby's `to_i`).
    pub fn int(&self, path: &str) -> i64 {
        let t = self.get(path).trim();
        t.parse::<i64>()
            .or_else(|_| t.parse::<f64>().map(|f| f as i64))
            .unwrap_or(0)
    }

    pub fn float(&self, path: &str) -> f64 {
        self.get(path).trim().parse().unwrap_or(0.0)
    }

    /// The element as JSON: an element without children is its text; one with children an
    /// object whose repeated names become arrays (OpenNebula's `to_hash` shape).
    pub fn to_json(&self) -> Value {
        if self.children.is_empty() {
            return Value::String(self.text.clone());
        }
        let mut map = Map::new();
        for c in &self.children {
            let v = c.to_json();
            if self.all(&c.name).count() > 1 {
                if let Value::Array(list) = map
                    .entry(c.name.clone())
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    list.push(v);
                }
            } else {
                map.insert(c.name.clone(), v);
            }
        }
        Value::Object(map)
    }

    /// `{"NAME": ...}`.
    pub fn to_json_document(&self) -> Value {
        let mut map = Map::new();
        map.insert(self.name.clone(), self.to_json());
        Value::Object(map)
    }
}

/// Parses a document into its root element.
pub fn parse(xml: &str) -> Result<Node, DocError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let name_of = |raw: &[u8]| String::from_utf8_lossy(raw).into_owned();
    loop {
        let event = reader.read_event().map_err(|e| DocError(e.to_string()))?;
        match event {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(DocError("nested too deep".into()));
                }
                stack.push(Node {
                    name: name_of(e.name().as_ref()),
                    ..Node::default()
                });
            }
            Event::Empty(e) => {
                let node = Node {
                    name: name_of(e.name().as_ref()),
                    ..Node::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let text = t.unescape().map_err(|e| DocError(e.to_string()))?;
                    top.text.push_str(&text);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(_) => {
                let Some(node) = stack.pop() else {
                    return Err(DocError("unbalanced end tag".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Eof => break,
            _ => {}
        }
        if root.is_some() && stack.is_empty() {
            // Anything after the root element is not ours to read.
            break;
        }
    }
    let mut root = root.ok_or_else(|| DocError("no element".into()))?;
    trim_structure(&mut root);
    Ok(root)
}

/// Blanks between elements are not text: elements with children keep no text.
fn trim_structure(node: &mut Node) {
    if !node.children.is_empty() {
        node.text.clear();
        for c in &mut node.children {
            trim_structure(c);
        }
    }
}

/// The raw text of each child element of the root, as the daemon wrote it (for `--xml`).
pub fn raw_children(xml: &str) -> Result<Vec<&str>, DocError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0usize;
    let mut out = Vec::new();
    let mut start = 0usize;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| DocError(e.to_string()))?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(_) => {
                depth += 1;
                if depth == 2 {
                    start = before;
                }
            }
            Event::Empty(_) if depth == 1 => {
                out.push(xml.get(before..after).unwrap_or(""));
            }
            Event::End(_) => {
                if depth == 2 {
                    out.push(xml.get(start..after).unwrap_or(""));
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// 3.2's `attr_to_str`: quotes escaped, the value quoted when it holds `=`, `,` or a blank.
fn attr_to_str(value: &str) -> String {
    let escaped = value.replace('"', "\\\"");
    if escaped.contains(['=', ',', ' ']) {
        format!("\"{escaped}\"")
    } else {
        escaped
    }
}

/// 3.2's `template_like_str`: one `KEY=VALUE` line per attribute, vectors as
/// `KEY=[\n  A=b,\n  C=d ]` (or on one line without `indent`).
pub fn template_str(template: &Node, indent: bool) -> String {
    let (enter, tab) = if indent { ("\n", "  ") } else { ("", " ") };
    template
        .children
        .iter()
        .map(|n| {
            if n.children.is_empty() {
                format!("{}={}", n.name, attr_to_str(&n.text))
            } else {
                let inner: Vec<String> = n
                    .children
                    .iter()
                    .map(|c| format!("{tab}{}={}", c.name, attr_to_str(&c.text)))
                    .collect();
                format!("{}=[{enter}{} ]", n.name, inner.join(&format!(",{enter}")))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &str = "<VM_POOL><VM><ID>3</ID><NAME>a&amp;b</NAME><TEMPLATE><CPU><![CDATA[1]]></CPU><DISK><SOURCE><![CDATA[/x y]]></SOURCE><TARGET><![CDATA[hda]]></TARGET></DISK><DISK><TYPE><![CDATA[swap]]></TYPE></DISK></TEMPLATE><HISTORY_RECORDS/></VM><VM><ID>4</ID></VM></VM_POOL>";

    #[test]
    fn trees_paths_and_raw_children() {
        let pool = parse(VM).unwrap();
        assert_eq!(pool.name, "VM_POOL");
        let vm = pool.child("VM").unwrap();
        assert_eq!(vm.get("NAME"), "a&b");
        assert_eq!(vm.int("ID"), 3);
        assert_eq!(vm.get("TEMPLATE/DISK/SOURCE"), "/x y");
        assert_eq!(vm.at("TEMPLATE").unwrap().all("DISK").count(), 2);
        assert_eq!(vm.get("NOPE/X"), "");
        let raw = raw_children(VM).unwrap();
        assert_eq!(raw.len(), 2);
        assert!(raw[0].starts_with("<VM><ID>3</ID>") && raw[0].ends_with("</VM>"));
        assert_eq!(raw[1], "<VM><ID>4</ID></VM>");
    }

    #[test]
    fn json_and_template_text() {
        let vm = parse(VM).unwrap().children.remove(0);
        let j = vm.to_json_document();
        assert_eq!(j["VM"]["ID"], "3");
        assert_eq!(j["VM"]["TEMPLATE"]["DISK"][1]["TYPE"], "swap");
        assert_eq!(j["VM"]["HISTORY_RECORDS"], "");
        let t = template_str(vm.child("TEMPLATE").unwrap(), true);
        assert_eq!(
            t,
            "CPU=1\nDISK=[\n  SOURCE=\"/x y\",\n  TARGET=hda ]\nDISK=[\n  TYPE=swap ]"
        );
    }

    #[test]
    fn broken_and_deep_documents_are_refused() {
        assert!(parse("<A><B></A>").is_err());
        assert!(parse("").is_err());
        let deep = "<A>".repeat(100) + &"</A>".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
