//! The test vectors of spec `xmlrpc-api.md` §8.4, each with its exact 3.2 result.

use super::{parsed, refused, single, vector};

#[test]
fn the_full_example_parses_with_upper_case_names_and_unescaped_values() {
    let template = parsed(concat!(
        "NAME = test\n",
        "MEMORY=512\n",
        "DISK = [ source = \"/img/a.img\", target = hda ]\n",
        "NIC = [ network_uname=oneadmin,network = \"public\" ]\n",
        "EMPTY =\n",
        "RAW = [ type=\"kvm\", data=\"<a b=\\\"c\\\"/>\" ]",
    ));
    assert_eq!(
        template.attributes(),
        [
            single("NAME", "test"),
            single("MEMORY", "512"),
            vector("DISK", &[("SOURCE", "/img/a.img"), ("TARGET", "hda")]),
            vector(
                "NIC",
                &[("NETWORK_UNAME", "oneadmin"), ("NETWORK", "public")]
            ),
            single("EMPTY", ""),
            vector("RAW", &[("TYPE", "kvm"), ("DATA", "<a b=\"c\"/>")]),
        ]
    );
}

#[test]
fn a_name_alone_expects_an_equal_sign() {
    assert_eq!(
        refused("NAME"),
        "syntax error, unexpected $end, expecting EQUAL or EQUAL_EMPTY at line 1, columns 1:5"
    );
}

#[test]
fn a_missing_value_at_end_of_input_expects_a_value() {
    assert_eq!(
        refused("NAME = "),
        "syntax error, unexpected $end, expecting OBRACKET or STRING at line 1, columns 5:8"
    );
}

#[test]
fn an_unclosed_vector_expects_a_comma_or_bracket() {
    assert_eq!(
        refused("DISK = [ a = b"),
        "syntax error, unexpected $end, expecting COMMA or CBRACKET at line 1, columns 14:15"
    );
}

#[test]
fn an_empty_vector_is_refused() {
    assert_eq!(
        refused("A = [ ]"),
        "syntax error, unexpected CBRACKET, expecting VARIABLE at line 1, columns 7:8"
    );
}

#[test]
fn a_comma_after_a_complete_attribute_expects_end_of_input() {
    assert_eq!(
        refused("lower_case = Value, 123 = x"),
        "syntax error, unexpected COMMA, expecting $end at line 1, columns 19:21"
    );
}

#[test]
fn an_unquoted_value_stops_at_the_blank() {
    assert_eq!(
        refused("A = b c"),
        "syntax error, unexpected $end, expecting EQUAL or EQUAL_EMPTY at line 1, columns 7:8"
    );
}

#[test]
fn a_second_equal_sign_expects_end_of_input() {
    assert_eq!(
        refused("A=b=c"),
        "syntax error, unexpected EQUAL, expecting $end at line 1, columns 4:5"
    );
}

#[test]
fn an_unquoted_variable_with_a_comma_is_refused() {
    // The spec elides the location; `$NIC` is the value, `[` is dropped, `IP` starts a new
    // attribute and the comma cannot follow it.
    assert_eq!(
        refused("A = $NIC[IP, NETWORK=\"public\"]"),
        "syntax error, unexpected COMMA, expecting EQUAL or EQUAL_EMPTY at line 1, columns 12:14"
    );
}

#[test]
fn a_quoted_variable_keeps_its_unescaped_quotes() {
    let template = parsed("A = \"$NIC[IP, NETWORK=\\\"public\\\"]\"");
    assert_eq!(template.get("A"), Some("$NIC[IP, NETWORK=\"public\"]"));
}

#[test]
fn an_escaped_quote_is_unescaped() {
    assert_eq!(parsed("A = \"a\\\"b\"").get("A"), Some("a\"b"));
}

#[test]
fn a_quoted_value_may_hold_commas_equals_and_brackets() {
    assert_eq!(parsed("A = \"x,y=z]\"").get("A"), Some("x,y=z]"));
}

#[test]
fn a_repeated_vector_key_keeps_the_first_value() {
    let template = parsed("B = [ K = 1, K = 2 ]");
    assert_eq!(template.attributes(), [vector("B", &[("K", "1")])]);
}

#[test]
fn a_repeated_name_gives_two_attributes() {
    assert_eq!(
        parsed("A=1\nA=2").attributes(),
        [single("A", "1"), single("A", "2")]
    );
}

#[test]
fn a_quoted_value_may_span_lines() {
    assert_eq!(parsed("A = \"multi\nline\"").get("A"), Some("multi\nline"));
}

#[test]
fn two_quotes_are_the_two_character_value() {
    assert_eq!(parsed("A = \"\"").get("A"), Some("\"\""));
}
