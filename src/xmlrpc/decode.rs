//! Request decoding: `<methodCall>` XML to a [`MethodCall`], with
//! xmlrpc-c's -503 faults for everything it refuses.

use super::fault::Fault;
use super::scalar;
use super::value::Value;
use super::xml_tree::{parse_document, Element};

/// A decoded XML-RPC call.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodCall {
    /// Text of `<methodName>`, verbatim.
    pub method: String,
    /// The parameters; empty when the call has no `<params>`.
    pub params: Vec<Value>,
}

/// How deep values may nest (`XMLRPC_NESTING_LIMIT_DEFAULT`): a parameter
/// is level 1, an item of an array parameter level 2, and so on.
pub const MAX_VALUE_NESTING: u32 = 64;

/// Decodes a request body.
///
/// Every failure is fault -503, worded as xmlrpc-c 1.33 words it, e.g.
/// `Call XML not a proper XML-RPC call.  Call is not valid XML.  syntax
/// error`. An empty body gives `... no element found` (oned's HTTP layer
/// answers an empty body with HTTP 400 before it gets here).
pub fn parse_method_call(body: &[u8]) -> Result<MethodCall, Fault> {
    let document = parse_document(body)
        .map_err(|e| Fault::not_a_proper_call(&format!("Call is not valid XML.  {e}")))?;
    call_from_document(document.root()).map_err(|e| Fault::not_a_proper_call(&e))
}

/// The structure checks of xmlrpc-c's `xmlrpc_parse_call()`; errors are the
/// text that follows "Call XML not a proper XML-RPC call.".
fn call_from_document(root: Element<'_>) -> Result<MethodCall, String> {
    if root.name() != "methodCall" {
        return Err(format!(
            "XML-RPC call should be a <methodCall> element.  Instead, we have a <{}> element.",
            root.name()
        ));
    }
    let name_element = child_named(root, "methodName")?;
    if name_element.child_count() != 0 {
        return Err(format!(
            "A <methodName> element should not have children.  This one has {} of them.",
            name_element.child_count()
        ));
    }
    check_basic_plane(name_element.cdata())?;
    let method = name_element.cdata().to_owned();
    // xmlrpc-c accepts a call without <params> only when <methodName> is
    // the only child (a workaround for old Ruby and xmlrpc-epi clients).
    let params = if root.child_count() > 1 {
        params_from(child_named(root, "params")?)?
    } else {
        Vec::new()
    };
    if root.child_count() > 2 {
        return Err(format!(
            "<methodCall> has extraneous children, other than <methodName> and <params>.  \
             Total child count = {}",
            root.child_count()
        ));
    }
    Ok(MethodCall { method, params })
}

fn child_named<'e>(parent: Element<'e>, name: &str) -> Result<Element<'e>, String> {
    parent
        .children()
        .find(|c| c.name() == name)
        .ok_or_else(|| format!("Expected <{}> to have child <{name}>", parent.name()))
}

fn params_from(params: Element<'_>) -> Result<Vec<Value>, String> {
    let mut values = Vec::with_capacity(params.child_count());
    for param in params.children() {
        if param.name() != "param" {
            return Err(format!(
                "Expected element of type <param>, found <{}>",
                param.name()
            ));
        }
        let Some(value) = param.only_child() else {
            return Err(format!(
                "Expected <param> to have 1 children, found {}",
                param.child_count()
            ));
        };
        if value.name() != "value" {
            return Err(format!(
                "Expected element of type <value>, found <{}>",
                value.name()
            ));
        }
        values.push(parse_value(value, MAX_VALUE_NESTING)?);
    }
    Ok(values)
}

/// xmlrpc-c's `xmlrpc_parseValue()`; `budget` is how many more levels of
/// nesting are allowed.
fn parse_value(element: Element<'_>, budget: u32) -> Result<Value, String> {
    if budget < 1 || element.truncated() {
        return Err("Nested data structure too deep.".to_owned());
    }
    if element.name() != "value" {
        return Err(format!(
            "<{}> element where <value> expected",
            element.name()
        ));
    }
    match element.child_count() {
        // No type element: the text is a string.
        0 => string_value(element.cdata()),
        1 => {
            let Some(typed) = element.only_child() else {
                return Err("<value> has 1 child elements.  Only zero or one make sense.".into());
            };
            match typed.name() {
                "struct" => parse_struct(typed, budget),
                "array" => parse_array(typed, budget),
                _ => parse_scalar(typed),
            }
        }
        n => Err(format!(
            "<value> has {n} child elements.  Only zero or one make sense."
        )),
    }
}

fn parse_array(array: Element<'_>, budget: u32) -> Result<Value, String> {
    let Some(data) = array.only_child() else {
        return Err(format!(
            "<array> element has {} children.  Only one <data> makes sense.",
            array.child_count()
        ));
    };
    if data.name() != "data" {
        return Err(format!(
            "<array> element has <{}> child.  Only <data> makes sense.",
            data.name()
        ));
    }
    if data.truncated() {
        return Err("Nested data structure too deep.".to_owned());
    }
    let mut items = Vec::with_capacity(data.child_count());
    for item in data.children() {
        if item.name() != "value" {
            return Err(format!(
                "<data> element has <{}> child.  Only <value> makes sense.",
                item.name()
            ));
        }
        items.push(parse_value(item, budget - 1)?);
    }
    Ok(Value::Array(items))
}

fn parse_struct(element: Element<'_>, budget: u32) -> Result<Value, String> {
    if element.truncated() {
        return Err("Nested data structure too deep.".to_owned());
    }
    let mut members: Vec<(String, Value)> = Vec::with_capacity(element.child_count());
    for member in element.children() {
        if member.name() != "member" {
            return Err(format!(
                "<{}> element found where only <member> makes sense",
                member.name()
            ));
        }
        if member.truncated() {
            return Err("Nested data structure too deep.".to_owned());
        }
        if member.child_count() != 2 {
            return Err(format!(
                "<member> element has {} children.  Only one <name> and one <value> make sense.",
                member.child_count()
            ));
        }
        let name = member
            .children()
            .find(|c| c.name() == "name")
            .ok_or("<member> has no <name> child")?;
        if name.child_count() != 0 {
            return Err(format!(
                "<name> element has {} children.  Should have none.",
                name.child_count()
            ));
        }
        let Value::String(key) = string_value(name.cdata())? else {
            return Err("<name> is not a string".to_owned());
        };
        let value_element = member
            .children()
            .find(|c| c.name() == "value")
            .ok_or("<member> has no <value> child")?;
        let value = parse_value(value_element, budget - 1)?;
        // A repeated key replaces the earlier value in place, as
        // xmlrpc_struct_set_value() does.
        match members.iter_mut().find(|(k, _)| *k == key) {
            Some(existing) => existing.1 = value,
            None => members.push((key, value)),
        }
    }
    Ok(Value::Struct(members))
}

fn parse_scalar(element: Element<'_>) -> Result<Value, String> {
    if element.truncated() {
        return Err("Nested data structure too deep.".to_owned());
    }
    if element.child_count() != 0 {
        return Err(format!(
            "The child of a <value> element is neither <array> nor <struct>, but has {} \
             child elements of its own.",
            element.child_count()
        ));
    }
    let text = element.cdata();
    match element.name() {
        "int" | "i4" | "i1" | "i2" | "ex:i1" | "ex:i2" => scalar::parse_int(text).map(Value::Int),
        "boolean" => scalar::parse_boolean(text).map(Value::Bool),
        "double" => scalar::parse_double(text).map(Value::Double),
        "dateTime.iso8601" => scalar::parse_datetime(text).map(Value::DateTime),
        "string" => string_value(text),
        "base64" => scalar::decode_base64(text).map(Value::Base64),
        "nil" | "ex:nil" => Ok(Value::Nil),
        "i8" | "ex:i8" => scalar::parse_i8(text).map(Value::I8),
        other => Err(format!(
            "Unknown value type -- XML element is named <{other}>"
        )),
    }
}

/// A string value as `xmlrpc_string_new_lp()` makes it: limited to the
/// Basic Multilingual Plane, and CR or CRLF (from character references)
/// turned into LF.
fn string_value(text: &str) -> Result<Value, String> {
    check_basic_plane(text)?;
    if !text.contains('\r') {
        return Ok(Value::String(text.to_owned()));
    }
    Ok(Value::String(
        text.replace("\r\n", "\n").replace('\r', "\n"),
    ))
}

/// xmlrpc-c's UTF-8 validator decodes to UCS-2 and refuses characters
/// beyond U+FFFF. It prints the (signed, sign-extended) first byte with
/// "%02x", hence `0xfffffff0`.
fn check_basic_plane(text: &str) -> Result<(), String> {
    match text.chars().find(|c| u32::from(*c) > 0xFFFF) {
        None => Ok(()),
        Some(c) => {
            let mut buf = [0u8; 4];
            let first = c.encode_utf8(&mut buf).as_bytes()[0];
            Err(format!(
                "UTF-8 string contains a character not in the Basic Multilingual Plane \
                 (first byte 0x{:08x})",
                0xFFFF_FF00 | u32::from(first)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(xml: &str) -> Result<MethodCall, Fault> {
        parse_method_call(xml.as_bytes())
    }

    fn fault_text(xml: &str) -> String {
        call(xml).err().map(|f| f.message).unwrap_or_default()
    }

    const PREFIX: &str = "Call XML not a proper XML-RPC call.  ";

    #[test]
    fn all_value_types() {
        let c = call(
            "<methodCall><methodName>m</methodName><params>\
             <param><value><i4>1</i4></value></param>\
             <param><value><int>-2</int></value></param>\
             <param><value><i8>3</i8></value></param>\
             <param><value><boolean>1</boolean></value></param>\
             <param><value><double>1.5</double></value></param>\
             <param><value><string>a&lt;b</string></value></param>\
             <param><value>untyped</value></param>\
             <param><value><dateTime.iso8601>20120101T00:00:00</dateTime.iso8601></value></param>\
             <param><value><base64>MA==</base64></value></param>\
             <param><value><nil/></value></param>\
             <param><value><array><data><value><i4>7</i4></value></data></array></value></param>\
             <param><value><struct><member><name>k</name><value>v</value></member></struct></value></param>\
             </params></methodCall>",
        )
        .expect("valid call");
        assert_eq!(c.method, "m");
        assert_eq!(
            c.params,
            vec![
                Value::Int(1),
                Value::Int(-2),
                Value::I8(3),
                Value::Bool(true),
                Value::Double(1.5),
                Value::String("a<b".into()),
                Value::String("untyped".into()),
                Value::DateTime("20120101T00:00:00".into()),
                Value::Base64(b"0".to_vec()),
                Value::Nil,
                Value::Array(vec![Value::Int(7)]),
                Value::Struct(vec![("k".into(), Value::String("v".into()))]),
            ]
        );
    }

    #[test]
    fn cdata_and_character_references_in_strings() {
        let c = call(
            "<methodCall><methodName>m</methodName><params><param><value><string>\
             <![CDATA[<VM>&]]>&#233;&#x41;a&#13;&#10;b</string></value></param></params></methodCall>",
        )
        .expect("valid call");
        assert_eq!(c.params, vec![Value::String("<VM>&éAa\nb".into())]);
    }

    #[test]
    fn structure_faults() {
        assert_eq!(
            fault_text("<methodCall><methodName>m</methodName><foo/></methodCall>"),
            format!("{PREFIX}Expected <methodCall> to have child <params>")
        );
        assert_eq!(
            fault_text("<methodCall><methodName>m</methodName><params/><x/></methodCall>"),
            format!(
                "{PREFIX}<methodCall> has extraneous children, other than <methodName> and \
                 <params>.  Total child count = 3"
            )
        );
        assert_eq!(
            fault_text("<methodCall><methodName>m</methodName><params><x/></params></methodCall>"),
            format!("{PREFIX}Expected element of type <param>, found <x>")
        );
        assert_eq!(
            fault_text(
                "<methodCall><methodName>m</methodName><params><param><value><string>x\
                 </string><i4>1</i4></value></param></params></methodCall>"
            ),
            format!("{PREFIX}<value> has 2 child elements.  Only zero or one make sense.")
        );
        assert_eq!(
            fault_text(
                "<methodCall><methodName>m</methodName><params><param><value><string><b/>\
                 </string></value></param></params></methodCall>"
            ),
            format!(
                "{PREFIX}The child of a <value> element is neither <array> nor <struct>, \
                 but has 1 child elements of its own."
            )
        );
        assert_eq!(
            fault_text(
                "<methodCall><methodName>m</methodName><params><param><value><struct>\
                 <member><name>a</name></member></struct></value></param></params></methodCall>"
            ),
            format!(
                "{PREFIX}<member> element has 1 children.  Only one <name> and one <value> \
                 make sense."
            )
        );
    }

    #[test]
    fn nesting_is_limited_to_64_levels() {
        let nest = |levels: usize| {
            format!(
                "<methodCall><methodName>m</methodName><params><param>{}<i4>1</i4>{}\
                 </param></params></methodCall>",
                "<value><array><data>".repeat(levels - 1) + "<value>",
                "</value>".to_owned() + &"</data></array></value>".repeat(levels - 1)
            )
        };
        assert!(call(&nest(64)).is_ok());
        assert_eq!(
            fault_text(&nest(65)),
            format!("{PREFIX}Nested data structure too deep.")
        );
        assert_eq!(
            fault_text(&nest(5000)),
            format!("{PREFIX}Nested data structure too deep.")
        );
    }

    #[test]
    fn strings_beyond_the_basic_plane_are_refused() {
        assert_eq!(
            fault_text(
                "<methodCall><methodName>m</methodName><params><param><value>😀</value>\
                 </param></params></methodCall>"
            ),
            format!(
                "{PREFIX}UTF-8 string contains a character not in the Basic Multilingual \
                 Plane (first byte 0xfffffff0)"
            )
        );
    }

    #[test]
    fn repeated_struct_keys_replace_in_place() {
        let c = call(
            "<methodCall><methodName>m</methodName><params><param><value><struct>\
             <member><name>a</name><value>1</value></member>\
             <member><name>b</name><value>2</value></member>\
             <member><name>a</name><value>3</value></member>\
             </struct></value></param></params></methodCall>",
        )
        .expect("valid call");
        assert_eq!(
            c.params,
            vec![Value::Struct(vec![
                ("a".into(), Value::String("3".into())),
                ("b".into(), Value::String("2".into())),
            ])]
        );
    }
}
