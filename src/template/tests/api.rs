//! The public API: lookups, edits and the renderings.

use super::{parsed, single, vector};
use crate::template::{attribute_name, vector_get, vector_remove, vector_set, Attribute, Template};

#[test]
fn get_looks_only_at_the_first_attribute_of_the_name() {
    // As 3.2's Template::get: with a vector NAME first, NAME reads as empty (e06 seq 20).
    let template = parsed("NAME = [ X = 1 ]\nNAME = second\nCPU = 1\nCPU = 2");
    assert_eq!(template.get("NAME"), None);
    assert_eq!(template.get("CPU"), Some("1"));
    assert_eq!(template.get("cpu"), None, "names are compared exactly");
    assert_eq!(template.get("MISSING"), None);
}

#[test]
fn vectors_skip_single_attributes_of_the_same_name() {
    let template = parsed("DISK = x\nDISK = [ A = 1 ]\nNIC = [ N = 0 ]\nDISK = [ A = 2 ]");
    let disks: Vec<_> = template.vectors("DISK").collect();
    assert_eq!(disks.len(), 2);
    assert_eq!(vector_get(disks[1], "A"), Some("2"));
    assert_eq!(
        template.get_vector("DISK").and_then(|d| vector_get(d, "A")),
        Some("1")
    );
    assert_eq!(template.get_vector("MISSING"), None);
}

#[test]
fn set_single_replaces_every_attribute_of_the_name_in_place() {
    let mut template = parsed("A = 1\nB = [ K = v ]\nB = 2\nC = 3");
    template.set_single("b", "new");
    assert_eq!(
        template.attributes(),
        [single("A", "1"), single("B", "new"), single("C", "3")]
    );
    template.set_single("D", "4");
    assert_eq!(template.attributes().last(), Some(&single("D", "4")));
}

#[test]
fn remove_returns_the_removed_attributes_in_order() {
    let mut template = parsed("LEASES = [ IP = a ]\nNAME = n\nLEASES = [ IP = b ]");
    let removed = template.remove("LEASES");
    assert_eq!(
        removed,
        [
            vector("LEASES", &[("IP", "a")]),
            vector("LEASES", &[("IP", "b")])
        ]
    );
    assert_eq!(template.attributes(), [single("NAME", "n")]);
    assert!(template.remove("LEASES").is_empty());
}

#[test]
fn constructors_fix_up_names_and_keep_the_first_of_a_repeated_key() {
    assert_eq!(Attribute::single("memory", "1"), single("MEMORY", "1"));
    assert_eq!(
        Attribute::vector("9disk", [("A", "1"), ("B", "2"), ("A", "3")]),
        vector("ONE_9DISK", &[("A", "1"), ("B", "2")])
    );
    let template = Template::from_singles([("cpu", "1"), ("xml", "2")]);
    assert_eq!(
        template.attributes(),
        [single("CPU", "1"), single("XML", "2")]
    );
    assert_eq!(attribute_name(""), "");
    assert_eq!(attribute_name("XMLfoo"), "ONE_XMLFOO");
    assert_eq!(attribute_name("é"), "ONE_é");
}

#[test]
fn push_keeps_the_attribute_as_given() {
    let mut template = Template::new();
    template.push(single("XML_X", "1"));
    assert_eq!(template.get("XML_X"), Some("1"));
    assert_eq!(template.len(), 1);
}

#[test]
fn attribute_accessors() {
    let mut attribute = vector("NIC", &[("IP", "1.2.3.4")]);
    assert_eq!(attribute.name(), "NIC");
    assert_eq!(attribute.value(), None);
    if let Some(pairs) = attribute.pairs_mut() {
        vector_set(pairs, "MAC", "m");
    }
    assert_eq!(
        attribute.pairs().and_then(|p| vector_get(p, "MAC")),
        Some("m")
    );
    assert_eq!(single("A", "x").value(), Some("x"));
    assert_eq!(single("A", "x").pairs(), None);
}

#[test]
fn vector_helpers_replace_in_place_append_and_remove() {
    let mut pairs = vec![("A".to_string(), "1".to_string())];
    vector_set(&mut pairs, "A", "2");
    vector_set(&mut pairs, "B", "3");
    assert_eq!(
        pairs,
        [
            ("A".to_string(), "2".to_string()),
            ("B".to_string(), "3".to_string())
        ]
    );
    assert_eq!(vector_remove(&mut pairs, "A"), Some("2".to_string()));
    assert_eq!(vector_remove(&mut pairs, "A"), None);
    assert_eq!(vector_get(&pairs, "B"), Some("3"));
}

#[test]
fn an_empty_template_is_an_open_and_close_tag() {
    assert_eq!(Template::new().to_xml(), "<TEMPLATE></TEMPLATE>");
}

#[test]
fn xml_sorts_names_keeps_duplicates_in_order_and_sorts_keys() {
    let template =
        parsed("NIC = [ NETWORK = b, BRIDGE = br ]\nDISK = [ N = 2 ]\nCPU = 1\nDISK = [ N = 1 ]");
    assert_eq!(
        template.to_xml(),
        concat!(
            "<TEMPLATE><CPU><![CDATA[1]]></CPU>",
            "<DISK><N><![CDATA[2]]></N></DISK><DISK><N><![CDATA[1]]></N></DISK>",
            "<NIC><BRIDGE><![CDATA[br]]></BRIDGE><NETWORK><![CDATA[b]]></NETWORK></NIC></TEMPLATE>"
        )
    );
}

#[test]
fn xml_empty_values_and_keys() {
    let template = Template::from_attributes([
        single("EMPTY", ""),
        vector("CONTEXT", &[("IP", ""), ("", "dropped"), ("TARGET", "hdb")]),
    ]);
    assert_eq!(
        template.to_xml(),
        "<TEMPLATE><CONTEXT><IP/><TARGET><![CDATA[hdb]]></TARGET></CONTEXT><EMPTY><![CDATA[]]></EMPTY></TEMPLATE>"
    );
}

#[test]
fn xml_values_are_not_escaped_but_cdata_ends_are_split() {
    let template = Template::from_attributes([
        single("RAW", "<a b=\"c\"/> & ]]> x ]]]>"),
        vector("V", &[("K", "]]>")]),
    ]);
    assert_eq!(
        template.to_xml(),
        concat!(
            "<TEMPLATE><RAW><![CDATA[<a b=\"c\"/> & ]]]]><![CDATA[> x ]]]]]><![CDATA[>]]></RAW>",
            "<V><K><![CDATA[]]]]><![CDATA[>]]></K></V></TEMPLATE>"
        )
    );
}

#[test]
fn write_xml_appends() {
    let mut out = String::from("<VM>");
    parsed("A = 1").write_xml(&mut out);
    assert_eq!(out, "<VM><TEMPLATE><A><![CDATA[1]]></A></TEMPLATE>");
}

#[test]
fn to_str_is_the_3_2_display_form() {
    let template =
        parsed("NAME = \"my vm\"\nDISK = [ target = hda, source = \"/a b\" ]\nCPU = 1\nE =\n");
    assert_eq!(
        template.to_str(),
        "CPU=1\nDISK=SOURCE=/a b,TARGET=hda\nE=\nNAME=my vm\n"
    );
    assert_eq!(Template::new().to_str(), "");
}

#[test]
fn template_text_parses_back_to_the_same_template() {
    let template = parsed(concat!(
        "xml_x = \"a \\\"quoted\\\" value\"\n",
        "EMPTY =\n",
        "DISK = [ SOURCE = \"/a b\", SAVE = no ]\n",
        "PATH = c:\\\n",
        "MULTI = \"line\nbreak\"\n",
    ));
    let text = template.to_template_text();
    assert_eq!(
        text.as_deref(),
        Some(concat!(
            "xml_x = \"a \\\"quoted\\\" value\"\n",
            "empty =\n",
            "disk = [\n  SOURCE = \"/a b\",\n  SAVE = \"no\" ]\n",
            "path = c:\\\n",
            "multi = \"line\nbreak\"\n",
        ))
    );
    assert_eq!(text.map(|t| parsed(&t)), Some(template));
}

#[test]
fn template_text_refuses_what_the_language_cannot_express() {
    let cases = [
        single("lower", "x"),
        single("A-B", "x"),
        single("A", "a b\\"),
        single("A", "nul\0"),
        vector("V", &[]),
        vector("V", &[("K", "")]),
        vector("V", &[("k", "x")]),
        vector("V", &[("K", "1"), ("K", "2")]),
    ];
    for attribute in cases {
        let template = Template::from_attributes([attribute.clone()]);
        assert_eq!(template.to_template_text(), None, "{attribute:?}");
    }
}
