//! One template attribute (single value or vector of sub-attributes), 3.2's name fix-up and the
//! helpers that read and edit a vector's sub-attributes.

use serde::{Deserialize, Serialize};

/// A template attribute.
///
/// `Vector` keeps its sub-attributes in insertion order with unique keys (the parser keeps the
/// first value of a repeated key, as 3.2's `std::map::insert` did); renderings sort them by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attribute {
    Single {
        name: String,
        value: String,
    },
    Vector {
        name: String,
        pairs: Vec<(String, String)>,
    },
}

impl Attribute {
    /// A single attribute; `name` gets 3.2's fix-up ([`attribute_name`]).
    pub fn single(name: &str, value: impl Into<String>) -> Self {
        Attribute::Single {
            name: attribute_name(name),
            value: value.into(),
        }
    }

    /// A vector attribute; `name` gets 3.2's fix-up, keys are taken as given (3.2 upper-cases
    /// keys only while parsing), and of a repeated key the first value is kept.
    pub fn vector<K, V>(name: &str, pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        keep_first_of_each_key(&mut pairs);
        Attribute::Vector {
            name: attribute_name(name),
            pairs,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Attribute::Single { name, .. } | Attribute::Vector { name, .. } => name,
        }
    }

    /// The value of a single attribute.
    pub fn value(&self) -> Option<&str> {
        match self {
            Attribute::Single { value, .. } => Some(value),
            Attribute::Vector { .. } => None,
        }
    }

    /// The sub-attributes of a vector attribute.
    pub fn pairs(&self) -> Option<&[(String, String)]> {
        match self {
            Attribute::Single { .. } => None,
            Attribute::Vector { pairs, .. } => Some(pairs),
        }
    }

    /// The sub-attributes of a vector attribute, mutably.
    pub fn pairs_mut(&mut self) -> Option<&mut Vec<(String, String)>> {
        match self {
            Attribute::Single { .. } => None,
            Attribute::Vector { pairs, .. } => Some(pairs),
        }
    }
}

/// 3.2's attribute-name fix-up (`include/Attribute.h`): ASCII upper case, and a `ONE_` prefix
/// when the name as given does not start with an ASCII letter or starts with the upper-case
/// letters `XML` (XML reserves such element names): `9a` → `ONE_9A`, `XML_X` → `ONE_XML_X`,
/// `xml_x` → `XML_X`. Applied to top-level names only; vector keys are just upper-cased by the
/// parser.
///
/// Not idempotent (`xml_x` → `XML_X` → `ONE_XML_X`), which is why stored names are never fixed
/// up a second time.
pub fn attribute_name(raw: &str) -> String {
    let upper = raw.to_ascii_uppercase();
    let needs_prefix = match raw.as_bytes().first() {
        None => false,
        Some(first) => !first.is_ascii_alphabetic() || raw.starts_with("XML"),
    };
    if needs_prefix {
        format!("ONE_{upper}")
    } else {
        upper
    }
}

/// Value of `key` in a vector's sub-attributes (exact key comparison).
pub fn vector_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Sets `key` to `value`: replaces the value in place when the key exists, appends otherwise
/// (3.2's `VectorAttribute::replace`). The key is taken as given.
pub fn vector_set(pairs: &mut Vec<(String, String)>, key: &str, value: impl Into<String>) {
    let value = value.into();
    match pairs.iter_mut().find(|(k, _)| k == key) {
        Some((_, slot)) => *slot = value,
        None => pairs.push((key.to_string(), value)),
    }
}

/// Removes `key` and returns its value.
pub fn vector_remove(pairs: &mut Vec<(String, String)>, key: &str) -> Option<String> {
    let index = pairs.iter().position(|(k, _)| k == key)?;
    Some(pairs.remove(index).1)
}

/// Drops every later occurrence of a key, keeping the first one, in O(n log n) so that a huge
/// vector cannot make parsing quadratic.
pub(super) fn keep_first_of_each_key(pairs: &mut Vec<(String, String)>) {
    if pairs.len() < 2 {
        return;
    }
    let mut by_key: Vec<usize> = (0..pairs.len()).collect();
    // Stable: among equal keys the earliest index comes first.
    by_key.sort_by(|&a, &b| pairs[a].0.cmp(&pairs[b].0));
    let mut keep = vec![true; pairs.len()];
    for window in by_key.windows(2) {
        if let [earlier, later] = *window {
            if pairs[earlier].0 == pairs[later].0 {
                keep[later] = false;
            }
        }
    }
    let mut index = 0;
    pairs.retain(|_| {
        let kept = keep[index];
        index += 1;
        kept
    });
}
