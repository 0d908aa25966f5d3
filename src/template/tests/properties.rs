//! Properties over generated input: the parser never panics, the renderings never panic, the
//! re-parseable text and the display form read back, and the XML keeps 3.2's order and every
//! value intact.

use crate::template::{Attribute, Template};
use proptest::prelude::*;

/// Text made of the characters that matter to the scanner, so that random input reaches deep
/// into the grammar.
fn template_like_text() -> impl Strategy<Value = String> {
    "([A-Za-z0-9_ =\\[\\],\"#\n\t\\\\$.:/-]|é|\r){0,120}"
}

/// Well-formed template text: names, values in every lexical form, vectors, comments.
fn well_formed_text() -> impl Strategy<Value = String> {
    let name = "[A-Za-z_][A-Za-z0-9_]{0,6}|[0-9][A-Za-z0-9_]{0,3}";
    let value = prop_oneof![
        "[A-Za-z0-9:/.$_-]{1,8}",
        "\"([^\"\\\\\0]|\\\\\"){1,12}\"",
        Just("\"\"".to_string()),
    ];
    let pair = (name, value.clone()).prop_map(|(k, v)| format!("{k} = {v}"));
    let attribute = prop_oneof![
        (name, value).prop_map(|(n, v)| format!("{n} = {v}\n")),
        name.prop_map(|n| format!("{n} =\n")),
        (name, prop::collection::vec(pair, 1..5))
            .prop_map(|(n, pairs)| format!("{n} = [ {} ]\n", pairs.join(",\n  "))),
        Just("# a comment\n".to_string()),
    ];
    prop::collection::vec(attribute, 0..8).prop_map(|attributes| attributes.concat())
}

fn any_attribute() -> impl Strategy<Value = Attribute> {
    let text = ".{0,12}";
    prop_oneof![
        (text, text).prop_map(|(name, value)| Attribute::Single { name, value }),
        (text, prop::collection::vec((text, text), 0..6))
            .prop_map(|(name, pairs)| Attribute::Vector { name, pairs }),
    ]
}

/// Reads back the values of `<TEMPLATE><A>…</A></TEMPLATE>`: the concatenated CDATA sections.
fn cdata_value(xml: &str) -> Option<String> {
    let mut rest = xml
        .strip_prefix("<TEMPLATE><A>")?
        .strip_suffix("</A></TEMPLATE>")?;
    let mut value = String::new();
    while !rest.is_empty() {
        rest = rest.strip_prefix("<![CDATA[")?;
        let end = rest.find("]]>")?;
        value.push_str(&rest[..end]);
        rest = &rest[end + 3..];
    }
    Some(value)
}

proptest! {
    // Failures are reported, not saved: the module must not write outside its directory.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics_on_any_string(text in any::<String>()) {
        let _ = Template::parse(&text);
    }

    #[test]
    fn the_parser_never_panics_and_errors_are_well_formed(text in template_like_text()) {
        if let Err(error) = Template::parse(&text) {
            prop_assert!(error.message.starts_with("syntax error, unexpected "), "{}", error);
            prop_assert!(error.message.contains(" at line "), "{}", error);
        }
    }

    #[test]
    fn well_formed_text_parses(text in well_formed_text()) {
        prop_assert!(Template::parse(&text).is_ok(), "{:?}", text);
    }

    #[test]
    fn template_text_reads_back_as_the_same_template(text in well_formed_text()) {
        let template = Template::parse(&text).map_err(|e| TestCaseError::fail(e.message))?;
        let rendered = template.to_template_text();
        prop_assert!(rendered.is_some(), "{:?}", template);
        let rendered = rendered.unwrap_or_default();
        let again = Template::parse(&rendered).map_err(|e| TestCaseError::fail(e.message))?;
        prop_assert_eq!(again, template);
    }

    #[test]
    fn template_text_of_any_parse_reads_back_when_expressible(text in template_like_text()) {
        if let Ok(template) = Template::parse(&text) {
            if let Some(rendered) = template.to_template_text() {
                prop_assert_eq!(Template::parse(&rendered).ok(), Some(template));
            }
        }
    }

    #[test]
    fn the_display_form_of_plain_single_values_reads_back(
        singles in prop::collection::vec(("[A-Z][A-Z0-9_]{0,5}", "[a-z0-9:/.]{0,8}"), 0..10)
    ) {
        let template = Template::from_singles(singles);
        let mut by_name = template.attributes().to_vec();
        by_name.sort_by(|a, b| a.name().cmp(b.name()));
        let again = Template::parse(&template.to_str()).map_err(|e| TestCaseError::fail(e.message))?;
        prop_assert_eq!(again.attributes(), by_name.as_slice());
    }

    #[test]
    fn renderings_never_panic(attributes in prop::collection::vec(any_attribute(), 0..80)) {
        let template = Template::from_attributes(attributes);
        let xml = template.to_xml();
        prop_assert!(xml.starts_with("<TEMPLATE>") && xml.ends_with("</TEMPLATE>"));
        let _ = template.to_str();
        let _ = template.to_template_text();
    }

    #[test]
    fn xml_keeps_every_value_and_never_leaves_a_cdata_end_inside(value in ".{0,40}|(\\]|>|x){0,20}") {
        let template = Template::from_attributes([Attribute::Single { name: "A".into(), value: value.clone() }]);
        prop_assert_eq!(cdata_value(&template.to_xml()), Some(value));
    }

    #[test]
    fn xml_order_is_a_stable_sort_by_name(names in prop::collection::vec("[A-D]{1,2}", 0..150)) {
        let attributes: Vec<Attribute> = names
            .iter()
            .enumerate()
            .map(|(i, n)| Attribute::Single { name: n.clone(), value: i.to_string() })
            .collect();
        let mut sorted = attributes.clone();
        sorted.sort_by(|a, b| a.name().cmp(b.name()));
        let mut expected = String::from("<TEMPLATE>");
        for attribute in &sorted {
            if let Attribute::Single { name, value } = attribute {
                expected.push_str(&format!("<{name}><![CDATA[{value}]]></{name}>"));
            }
        }
        expected.push_str("</TEMPLATE>");
        prop_assert_eq!(Template::from_attributes(attributes).to_xml(), expected);
    }
}
