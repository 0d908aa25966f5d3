//! The OpenNebula 3.2 template language: `NAME = value` and `NAME = [ KEY = value, … ]`
//! attributes, as `one.vm.allocate`, `one.template.*`, `one.vn.*`, `one.image.*`, the `*.update`
//! methods and lease calls receive them (spec `xmlrpc-api.md` §8), and their `<TEMPLATE>` XML
//! form inside documents (§6.1).
//!
//! * [`Template::parse`] reproduces 3.2's flex scanner and bison 2.5 parser, including the text
//!   of their error messages (`syntax error, unexpected $end, expecting VARIABLE at line 4,
//!   columns 31:33`). The caller adds the `Parse error: ` prefix and the method's own prefix.
//! * [`Template::write_xml`] renders `<TEMPLATE>…</TEMPLATE>` exactly as 3.2 (names sorted, values
//!   in CDATA), except that a `]]>` inside a value is split across two CDATA sections.
//! * [`Template::to_str`] is 3.2's `Template::to_str` text; [`Template::to_template_text`] is a
//!   re-parseable rendering.
//!
//! Attributes keep their insertion order in memory; only the renderings sort them, as 3.2's
//! multimap did.

pub mod adversarial;
mod attribute;
mod error;
mod lexer;
mod parser;
mod sorted;
mod text;
mod xml;

#[cfg(test)]
mod tests;
pub mod vars;

pub use attribute::{attribute_name, vector_get, vector_remove, vector_set, Attribute};
pub use error::ParseError;
pub use xml::{is_cdata_safe, is_raw_text_safe, is_xml_char};

use serde::{Deserialize, Serialize};

/// A parsed template: attributes in insertion order; several may share a name (`DISK`, `NIC`,
/// `LEASES`, …).
///
/// Serde support exists because the object models persist their templates as part of their JSON
/// rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    attributes: Vec<Attribute>,
}

impl Template {
    /// An empty template (`<TEMPLATE></TEMPLATE>`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses template text with 3.2's exact lexical and syntax rules. On failure nothing of the
    /// text is kept, as in 3.2 where the whole call fails.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        parser::parse(text)
    }

    /// A template holding `attributes` as given, in that order.
    pub fn from_attributes(attributes: impl IntoIterator<Item = Attribute>) -> Self {
        Self {
            attributes: attributes.into_iter().collect(),
        }
    }

    /// A template of single attributes; every name gets 3.2's fix-up ([`attribute_name`]).
    pub fn from_singles<N, V>(pairs: impl IntoIterator<Item = (N, V)>) -> Self
    where
        N: AsRef<str>,
        V: Into<String>,
    {
        Self::from_attributes(
            pairs
                .into_iter()
                .map(|(name, value)| Attribute::single(name.as_ref(), value)),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    pub fn len(&self) -> usize {
        self.attributes.len()
    }

    /// All attributes in insertion order.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// Value of the first attribute called `name` when that attribute is single-valued.
    ///
    /// Like 3.2's `Template::get`, only the first attribute of the name is considered: with
    /// `NAME = [ X = 1 ]` first, `get("NAME")` is `None` even if a single `NAME` follows. Names
    /// are compared exactly; stored names are upper case.
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.attributes.iter().find(|a| a.name() == name)? {
            Attribute::Single { value, .. } => Some(value),
            Attribute::Vector { .. } => None,
        }
    }

    /// Sub-attributes of the first vector attribute called `name` (single attributes of that
    /// name are skipped, as 3.2's callers skip them).
    pub fn get_vector(&self, name: &str) -> Option<&[(String, String)]> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Vector { name: n, pairs } if n == name => Some(pairs.as_slice()),
            _ => None,
        })
    }

    /// Mutable sub-attributes of the first vector attribute called `name`.
    pub fn get_vector_mut(&mut self, name: &str) -> Option<&mut Vec<(String, String)>> {
        self.attributes.iter_mut().find_map(|a| match a {
            Attribute::Vector { name: n, pairs } if n == name => Some(pairs),
            _ => None,
        })
    }

    /// Every vector attribute called `name`, in insertion order.
    pub fn vectors<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [(String, String)]> {
        self.attributes.iter().filter_map(move |a| match a {
            Attribute::Vector { name: n, pairs } if n == name => Some(pairs.as_slice()),
            _ => None,
        })
    }

    /// Every vector attribute called `name`, mutably, in insertion order (e.g. to number each
    /// `DISK`).
    pub fn vectors_mut<'a>(
        &'a mut self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a mut Vec<(String, String)>> {
        self.attributes.iter_mut().filter_map(move |a| match a {
            Attribute::Vector { name: n, pairs } if n == name => Some(pairs),
            _ => None,
        })
    }

    /// Replaces every attribute called `name` (after the name fix-up) by one single attribute
    /// holding `value`, at the place of the first one; appends it when there was none. This is
    /// 3.2's `Template::replace`.
    pub fn set_single(&mut self, name: &str, value: impl Into<String>) {
        let new = Attribute::single(name, value);
        let Some(first) = self.attributes.iter().position(|a| a.name() == new.name()) else {
            self.attributes.push(new);
            return;
        };
        let mut index = 0;
        self.attributes.retain(|a| {
            let keep = index <= first || a.name() != new.name();
            index += 1;
            keep
        });
        if let Some(slot) = self.attributes.get_mut(first) {
            *slot = new;
        }
    }

    /// Appends `attribute` as it is (its name is not fixed up again: see [`Attribute::single`]
    /// and [`Attribute::vector`] for constructors that do).
    pub fn push(&mut self, attribute: Attribute) {
        self.attributes.push(attribute);
    }

    /// Keeps only the last attribute of each name, as 3.2's image, host and user templates do
    /// with a repeated attribute (VM, VM-template and network templates keep every copy).
    pub fn keep_last_copies(&mut self) {
        let mut seen = std::collections::HashSet::new();
        let mut kept: Vec<Attribute> = Vec::with_capacity(self.attributes.len());
        for attribute in std::mem::take(&mut self.attributes).into_iter().rev() {
            if seen.insert(attribute.name().to_string()) {
                kept.push(attribute);
            }
        }
        kept.reverse();
        self.attributes = kept;
    }

    /// Removes every attribute called `name` and returns them in insertion order.
    pub fn remove(&mut self, name: &str) -> Vec<Attribute> {
        let (removed, kept) = std::mem::take(&mut self.attributes)
            .into_iter()
            .partition(|a| a.name() == name);
        self.attributes = kept;
        removed
    }

    /// Would 3.2 have written this template as well-formed XML? It put values into CDATA
    /// unescaped, so a value holding `]]>` or a control character (other than tab, LF, CR)
    /// broke its object body, and the allocation of the object failed with "Error
    /// transforming the … to XML.".
    pub fn is_xml_safe(&self) -> bool {
        xml::is_well_formed(&self.attributes)
    }

    /// `<TEMPLATE>…</TEMPLATE>` as 3.2 writes it; see [`Template::write_xml`].
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write_xml(&mut out);
        out
    }

    /// Appends `<TEMPLATE>…</TEMPLATE>` to `out`: attributes sorted by name (equal names in
    /// insertion order), sub-attributes sorted by key, values in CDATA, empty sub-values as
    /// `<KEY/>`. Allocation-free for templates and vectors of up to 64 entries.
    pub fn write_xml(&self, out: &mut String) {
        xml::write_template(out, &self.attributes);
    }

    /// 3.2's `Template::to_str`: one `NAME=value` line per attribute, sorted by name, vectors as
    /// `NAME=K1=v1,K2=v2` (keys sorted). Values are not quoted, so this text is for display and
    /// logs; [`Template::to_template_text`] gives text that parses back.
    pub fn to_str(&self) -> String {
        let mut out = String::new();
        text::write_display(&mut out, &self.attributes);
        out
    }

    /// Template text that [`Template::parse`] turns back into an equal template (same
    /// attributes, same order). `None` when the 3.2 language cannot express the template: a
    /// name or key that is not `[A-Z0-9_]` in the form the parser produces, an empty vector, a
    /// repeated vector key, an empty sub-value, a value with a NUL byte, or a value ending in a
    /// backslash that cannot be written unquoted.
    pub fn to_template_text(&self) -> Option<String> {
        text::template_text(&self.attributes)
    }
}

/// Parses a template (shorthand for [`Template::parse`]).
pub fn parse(text: &str) -> Result<Template, ParseError> {
    Template::parse(text)
}
