//! Tests of the template module: the spec's test vectors (§8.4), the recorded oned 3.2
//! sessions, the public API, and properties over generated input.

mod api;
mod lexical;
mod properties;
mod recorded;
mod recorded_data;
mod spec_vectors;

use super::{Attribute, Template};

/// Parses `text`, failing the test with the parser's message if it is refused.
fn parsed(text: &str) -> Template {
    match Template::parse(text) {
        Ok(template) => template,
        Err(error) => panic!("{text:?} refused: {error}"),
    }
}

/// The parser's message for `text`, failing the test if it is accepted.
fn refused(text: &str) -> String {
    match Template::parse(text) {
        Ok(template) => panic!("{text:?} accepted: {template:?}"),
        Err(error) => error.message,
    }
}

fn single(name: &str, value: &str) -> Attribute {
    Attribute::Single {
        name: name.to_string(),
        value: value.to_string(),
    }
}

fn vector(name: &str, pairs: &[(&str, &str)]) -> Attribute {
    Attribute::Vector {
        name: name.to_string(),
        pairs: pairs
            .iter()
            .map(|&(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}
