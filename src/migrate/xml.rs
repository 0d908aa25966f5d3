//! The XML bodies oned 3.2 keeps in its tables, read into an element tree and from there into
//! the model types. oned wrote these documents itself (and parsed each with libxml2 before
//! writing it), so they are well-formed; anything else is reported as a corrupt row.

use crate::model::perms::Permissions;
use crate::template::{Attribute, Template};
use quick_xml::events::Event;
use quick_xml::Reader;

/// Documents nest four levels (VM / TEMPLATE / DISK / key); deeper input is refused so a
/// hostile row cannot make the recursive tree deep.
const MAX_DEPTH: usize = 16;

#[derive(Debug, Default, Clone)]
pub struct Node {
    pub name: String,
    /// Character data directly inside the element (entities expanded, CDATA included).
    pub text: String,
    /// Whether any character data (text or a CDATA section, even empty) was inside.
    pub has_text: bool,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of a required child element.
    pub fn text_of(&self, name: &str) -> Result<&str, String> {
        self.child(name)
            .map(|c| c.text.as_str())
            .ok_or_else(|| format!("<{}> has no <{name}>", self.name))
    }

    /// A required numeric child element.
    pub fn num_of<T: std::str::FromStr>(&self, name: &str) -> Result<T, String> {
        let text = self.text_of(name)?;
        text.trim()
            .parse::<T>()
            .map_err(|_| format!("<{}>/<{name}> is not a number: {text:?}", self.name))
    }

    /// `0`/`1` child element.
    pub fn flag_of(&self, name: &str) -> Result<bool, String> {
        Ok(self.num_of::<i64>(name)? != 0)
    }

    /// The `<TEMPLATE>` child as a template (see [`template_from`]).
    pub fn template(&self) -> Result<Template, String> {
        match self.child("TEMPLATE") {
            Some(t) => template_from(t),
            None => Err(format!("<{}> has no <TEMPLATE>", self.name)),
        }
    }

    /// The `<PERMISSIONS>` block.
    pub fn permissions(&self) -> Result<Permissions, String> {
        let p = self
            .child("PERMISSIONS")
            .ok_or_else(|| format!("<{}> has no <PERMISSIONS>", self.name))?;
        let mut bits = [false; 9];
        for (slot, tag) in bits.iter_mut().zip([
            "OWNER_U", "OWNER_M", "OWNER_A", "GROUP_U", "GROUP_M", "GROUP_A", "OTHER_U", "OTHER_M",
            "OTHER_A",
        ]) {
            *slot = p.flag_of(tag)?;
        }
        Ok(Permissions::from_array(bits))
    }
}

/// Parses one body into its document element.
pub fn parse(body: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(body);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "not well-formed XML at byte {}: {e}",
                reader.error_position()
            )
        })?;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err("content after the document element".into());
                }
                if stack.len() >= MAX_DEPTH {
                    return Err("elements nested too deep".into());
                }
                stack.push(Node {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    ..Node::default()
                });
            }
            Event::Empty(e) => {
                let node = Node {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    ..Node::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None if root.is_none() => root = Some(node),
                    None => return Err("content after the document element".into()),
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| format!("bad character reference: {e}"))?;
                match stack.last_mut() {
                    Some(node) => {
                        node.text.push_str(&text);
                        node.has_text = true;
                    }
                    None if text.trim().is_empty() => {}
                    None => return Err("text outside the document element".into()),
                }
            }
            Event::CData(c) => {
                let text = std::str::from_utf8(c.as_ref())
                    .map_err(|_| "CDATA is not UTF-8".to_string())?;
                let node = stack
                    .last_mut()
                    .ok_or("CDATA outside the document element")?;
                node.text.push_str(text);
                node.has_text = true;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err("document ends inside an element".into());
    }
    root.ok_or_else(|| "empty document".to_string())
}

/// A `<TEMPLATE>` element as 3.2's `Template::from_xml` read it: an element holding text (or
/// CDATA) is a single attribute, one holding elements is a vector whose children are its
/// sub-attributes (an empty child is an empty value), and an empty element is dropped. Names are
/// kept exactly as stored (3.2's name fix-up already happened when the template was parsed).
pub fn template_from(node: &Node) -> Result<Template, String> {
    let mut attributes = Vec::with_capacity(node.children.len());
    for child in &node.children {
        if !child.children.is_empty() {
            let mut pairs = Vec::with_capacity(child.children.len());
            for sub in &child.children {
                if !sub.children.is_empty() {
                    return Err(format!(
                        "template attribute {}/{} nests elements",
                        child.name, sub.name
                    ));
                }
                pairs.push((sub.name.clone(), sub.text.clone()));
            }
            attributes.push(Attribute::Vector {
                name: child.name.clone(),
                pairs,
            });
        } else if child.has_text {
            attributes.push(Attribute::Single {
                name: child.name.clone(),
                value: child.text.clone(),
            });
        }
    }
    Ok(Template::from_attributes(attributes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_round_trips_through_the_renderer() {
        let xml = "<TEMPLATE><CONTEXT><DNS><![CDATA[10.1.0.254]]></DNS><FILES><![CDATA[\"\"]]></FILES></CONTEXT><CPU><![CDATA[0.5]]></CPU><DISK><IMAGE_ID><![CDATA[0]]></IMAGE_ID><SAVE/></DISK><NAME><![CDATA[a&b <c>]]></NAME></TEMPLATE>";
        let node = parse(xml).unwrap();
        let t = template_from(&node).unwrap();
        assert_eq!(t.to_xml(), xml);
    }

    #[test]
    fn entities_and_empty_elements() {
        let node =
            parse("<USER><NAME>a&amp;b&#x41;</NAME><TEMPLATE></TEMPLATE><X/></USER>").unwrap();
        assert_eq!(node.text_of("NAME").unwrap(), "a&bA");
        assert!(node.template().unwrap().is_empty());
        assert_eq!(node.text_of("X").unwrap(), "");
    }

    #[test]
    fn broken_documents_are_errors() {
        for bad in [
            "<VM><ID>1</ID>",
            "<VM><ID>1</NAME></VM>",
            "<VM>a&b</VM>",
            "",
            "<A/><B/>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep = "<A>".repeat(40) + &"</A>".repeat(40);
        assert!(parse(&deep).is_err());
    }
}
