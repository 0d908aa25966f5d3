//! Decoder of XML-RPC `methodResponse` bodies into a value tree.
//!
//! The decoded tree keeps what a client could observe on the wire: the spelling of the
//! integer type (`<i4>` as xmlrpc-c writes it, or `<int>`) and whether a string was typed
//! (`<string>`) or untyped. Whitespace between envelope elements is not kept.

use super::xmltree::{self, Element};
use std::fmt;

/// One XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `<i4>` or `<int>`: `tag` is the element name that was used.
    Int {
        tag: IntTag,
        value: i32,
    },
    /// `<i8>` (or `<ex:i8>`), an xmlrpc-c extension.
    I8(i64),
    Boolean(bool),
    /// `typed` is false for a `<value>` with bare text and no type element.
    String {
        typed: bool,
        text: String,
    },
    /// The number as written (trimmed); compared as text.
    Double(String),
    DateTime(String),
    /// Base64 text with its whitespace removed.
    Base64(String),
    Nil,
    Array(Vec<Value>),
    /// Members in wire order.
    Struct(Vec<(String, Value)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntTag {
    I4,
    Int,
}

impl Value {
    /// How the type appears on the wire, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int {
                tag: IntTag::I4, ..
            } => "<i4>",
            Value::Int {
                tag: IntTag::Int, ..
            } => "<int>",
            Value::I8(_) => "<i8>",
            Value::Boolean(_) => "<boolean>",
            Value::String { typed: true, .. } => "<string>",
            Value::String { typed: false, .. } => "untyped string",
            Value::Double(_) => "<double>",
            Value::DateTime(_) => "<dateTime.iso8601>",
            Value::Base64(_) => "<base64>",
            Value::Nil => "<nil/>",
            Value::Array(_) => "<array>",
            Value::Struct(_) => "<struct>",
        }
    }

    /// A one-line rendering for messages, long strings shortened.
    pub fn brief(&self) -> String {
        match self {
            Value::Int { value, .. } => value.to_string(),
            Value::I8(value) => value.to_string(),
            Value::Boolean(value) => (if *value { "1" } else { "0" }).to_string(),
            Value::String { text, .. } => super::compare::quote_brief(text),
            Value::Double(text) | Value::DateTime(text) | Value::Base64(text) => text.clone(),
            Value::Nil => "nil".to_string(),
            Value::Array(items) => format!("array of {}", items.len()),
            Value::Struct(members) => format!(
                "struct {{{}}}",
                members
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A decoded `methodResponse`.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// `<params>`: the values of its `<param>`s (xmlrpc-c always sends exactly one).
    Params(Vec<Value>),
    /// `<fault>`: its value (a struct with `faultCode` and `faultString`).
    Fault(Value),
}

/// Why a body is not a valid XML-RPC response; `path` locates the offending element.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for DecodeError {}

fn error(path: &str, message: impl Into<String>) -> DecodeError {
    DecodeError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Decodes a response body.
pub fn decode_response(body: &str) -> Result<Response, DecodeError> {
    let root = xmltree::parse_document(body).map_err(|e| error("", e.to_string()))?;
    if root.name != "methodResponse" {
        return Err(error(
            "",
            format!("root element is <{}>, not <methodResponse>", root.name),
        ));
    }
    let path = "methodResponse";
    let only = only_child(&root, path)?;
    match only.name.as_str() {
        "params" => {
            let path = "methodResponse/params";
            no_text(only, path)?;
            let mut values = Vec::new();
            for (index, param) in only.children.iter().enumerate() {
                let param_path = format!("{path}/param[{index}]");
                if param.name != "param" {
                    return Err(error(
                        path,
                        format!("unexpected <{}> (expected <param>)", param.name),
                    ));
                }
                let value = only_child(param, &param_path)?;
                values.push(decode_value(value, &format!("{param_path}/value"))?);
            }
            Ok(Response::Params(values))
        }
        "fault" => {
            let path = "methodResponse/fault";
            let value = only_child(only, path)?;
            Ok(Response::Fault(decode_value(
                value,
                &format!("{path}/value"),
            )?))
        }
        other => Err(error(
            path,
            format!("unexpected <{other}> (expected <params> or <fault>)"),
        )),
    }
}

fn no_text(element: &Element, path: &str) -> Result<(), DecodeError> {
    if element.text_is_blank() {
        Ok(())
    } else {
        Err(error(
            path,
            format!(
                "unexpected text {}",
                super::compare::quote_brief(&element.text)
            ),
        ))
    }
}

fn only_child<'e>(element: &'e Element, path: &str) -> Result<&'e Element, DecodeError> {
    no_text(element, path)?;
    match element.children.as_slice() {
        [only] => Ok(only),
        [] => Err(error(path, format!("<{}> is empty", element.name))),
        _ => Err(error(
            path,
            format!(
                "<{}> has {} children, expected one",
                element.name,
                element.children.len()
            ),
        )),
    }
}

fn leaf_text<'e>(element: &'e Element, path: &str) -> Result<&'e str, DecodeError> {
    if let Some(child) = element.children.first() {
        return Err(error(
            path,
            format!("<{}> contains an element <{}>", element.name, child.name),
        ));
    }
    Ok(&element.text)
}

fn decode_value(value: &Element, path: &str) -> Result<Value, DecodeError> {
    if value.name != "value" {
        return Err(error(
            path,
            format!("unexpected <{}> (expected <value>)", value.name),
        ));
    }
    let typed = match value.children.as_slice() {
        [] => {
            return Ok(Value::String {
                typed: false,
                text: value.text.clone(),
            })
        }
        [typed] => typed,
        _ => return Err(error(path, "<value> holds more than one element")),
    };
    no_text(value, path)?;
    let path = format!("{path}/{}", typed.name);
    let path = path.as_str();
    let trimmed = || leaf_text(typed, path).map(|text| text.trim_matches(is_xml_space));
    match typed.name.as_str() {
        "i4" | "int" => {
            let text = trimmed()?;
            let value = text
                .parse::<i32>()
                .map_err(|_| error(path, format!("not a 32-bit integer: {text:?}")))?;
            let tag = if typed.name == "i4" {
                IntTag::I4
            } else {
                IntTag::Int
            };
            Ok(Value::Int { tag, value })
        }
        "i8" | "ex:i8" => {
            let text = trimmed()?;
            text.parse::<i64>()
                .map(Value::I8)
                .map_err(|_| error(path, format!("not a 64-bit integer: {text:?}")))
        }
        "boolean" => match trimmed()? {
            "0" => Ok(Value::Boolean(false)),
            "1" => Ok(Value::Boolean(true)),
            other => Err(error(
                path,
                format!("boolean must be 0 or 1, not {other:?}"),
            )),
        },
        "string" => Ok(Value::String {
            typed: true,
            text: leaf_text(typed, path)?.to_string(),
        }),
        "double" => {
            let text = trimmed()?;
            text.parse::<f64>()
                .map_err(|_| error(path, format!("not a number: {text:?}")))?;
            Ok(Value::Double(text.to_string()))
        }
        "dateTime.iso8601" => Ok(Value::DateTime(trimmed()?.to_string())),
        "base64" => Ok(Value::Base64(
            leaf_text(typed, path)?
                .chars()
                .filter(|c| !is_xml_space(*c))
                .collect(),
        )),
        "nil" | "ex:nil" => {
            let text = leaf_text(typed, path)?;
            if xmltree::is_blank(text) {
                Ok(Value::Nil)
            } else {
                Err(error(path, "<nil/> must be empty"))
            }
        }
        "array" => {
            let data = only_child(typed, path)?;
            let data_path = format!("{path}/data");
            if data.name != "data" {
                return Err(error(
                    path,
                    format!("unexpected <{}> (expected <data>)", data.name),
                ));
            }
            no_text(data, &data_path)?;
            data.children
                .iter()
                .enumerate()
                .map(|(index, item)| decode_value(item, &format!("{data_path}/value[{index}]")))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        "struct" => {
            no_text(typed, path)?;
            let mut members = Vec::new();
            for (index, member) in typed.children.iter().enumerate() {
                let member_path = format!("{path}/member[{index}]");
                if member.name != "member" {
                    return Err(error(
                        path,
                        format!("unexpected <{}> (expected <member>)", member.name),
                    ));
                }
                no_text(member, &member_path)?;
                let (name, value) = match member.children.as_slice() {
                    [name, value] if name.name == "name" => (name, value),
                    _ => {
                        return Err(error(
                            &member_path,
                            "<member> must hold <name> then <value>",
                        ))
                    }
                };
                let name = leaf_text(name, &format!("{member_path}/name"))?.to_string();
                let value = decode_value(value, &format!("{member_path}/value"))?;
                members.push((name, value));
            }
            Ok(Value::Struct(members))
        }
        other => Err(error(path, format!("unknown value type <{other}>"))),
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Checks run by `--self-test`.
pub fn self_checks(checks: &mut crate::harness::selftest::Checks) {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n\
        <param><value><array><data>\r\n<value><boolean>1</boolean></value>\r\n\
        <value><string>&lt;VM&gt;&lt;ID&gt;0&lt;/ID&gt;&lt;/VM&gt;</string></value>\r\n\
        <value><i4>0</i4></value>\r\n<value>bare</value><value><int>-7</int></value>\
        <value><string></string></value><value><string/></value>\
        </data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n";
    let decoded = decode_response(body);
    let text = |typed: bool, text: &str| Value::String {
        typed,
        text: text.to_string(),
    };
    let expected = Response::Params(vec![Value::Array(vec![
        Value::Boolean(true),
        text(true, "<VM><ID>0</ID></VM>"),
        Value::Int {
            tag: IntTag::I4,
            value: 0,
        },
        text(false, "bare"),
        Value::Int {
            tag: IntTag::Int,
            value: -7,
        },
        text(true, ""),
        text(true, ""),
    ])]);
    checks.check(
        "xmlrpc: decodes a params response",
        decoded.as_ref() == Ok(&expected),
        format!("{decoded:?}"),
    );

    let fault = decode_response(
        "<methodResponse><fault><value><struct><member><name>faultCode</name>\
         <value><i4>-506</i4></value></member><member><name>faultString</name>\
         <value><string>Method 'x' not defined</string></value></member></struct></value>\
         </fault></methodResponse>",
    );
    let expected_fault = Response::Fault(Value::Struct(vec![
        (
            "faultCode".to_string(),
            Value::Int {
                tag: IntTag::I4,
                value: -506,
            },
        ),
        (
            "faultString".to_string(),
            text(true, "Method 'x' not defined"),
        ),
    ]));
    checks.check(
        "xmlrpc: decodes a fault",
        fault.as_ref() == Ok(&expected_fault),
        format!("{fault:?}"),
    );

    for (what, broken) in [
        ("not XML", "garbage"),
        ("wrong root", "<methodCall></methodCall>"),
        ("empty response", "<methodResponse></methodResponse>"),
        (
            "params and fault",
            "<methodResponse><params></params><fault></fault></methodResponse>",
        ),
        (
            "bad integer",
            "<methodResponse><params><param><value><i4>x</i4></value></param></params></methodResponse>",
        ),
        (
            "integer out of range",
            "<methodResponse><params><param><value><i4>2147483648</i4></value></param></params></methodResponse>",
        ),
        (
            "bad boolean",
            "<methodResponse><params><param><value><boolean>true</boolean></value></param></params></methodResponse>",
        ),
        (
            "unknown type",
            "<methodResponse><params><param><value><foo/></value></param></params></methodResponse>",
        ),
        (
            "array without data",
            "<methodResponse><params><param><value><array></array></value></param></params></methodResponse>",
        ),
        (
            "truncated",
            "<methodResponse><params><param><value><i4>1</i4></value>",
        ),
    ] {
        checks.check(
            &format!("xmlrpc: rejects {what}"),
            decode_response(broken).is_err(),
            format!("accepted {broken:?}"),
        );
    }
}
