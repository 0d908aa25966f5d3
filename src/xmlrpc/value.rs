//! The XML-RPC value model.

/// One XML-RPC value.
///
/// `<int>` and `<i4>` (and xmlrpc-c's `<i1>`, `<i2>`) all decode to
/// [`Value::Int`]; an untyped `<value>text</value>` decodes to
/// [`Value::String`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `<i4>` / `<int>`: 32-bit signed integer.
    Int(i32),
    /// `<i8>`: 64-bit signed integer (xmlrpc-c extension).
    I8(i64),
    /// `<boolean>` 0 or 1.
    Bool(bool),
    /// `<double>`.
    Double(f64),
    /// `<string>` or untyped value.
    String(String),
    /// `<dateTime.iso8601>`, kept as the (validated) text of the element.
    DateTime(String),
    /// `<base64>`, decoded.
    Base64(Vec<u8>),
    /// `<array>`.
    Array(Vec<Value>),
    /// `<struct>`: members in document order, keys unique.
    Struct(Vec<(String, Value)>),
    /// `<nil/>` (xmlrpc-c extension).
    Nil,
}

impl Value {
    /// xmlrpc-c's name of the value's type (`xmlrpc_type_name()`), as it
    /// appears in decomposition faults such as
    /// `Value of type INT supplied where string type was expected.`
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "INT",
            Value::Bool(_) => "BOOL",
            Value::Double(_) => "DOUBLE",
            Value::DateTime(_) => "DATETIME",
            Value::String(_) => "STRING",
            Value::Base64(_) => "BASE64",
            Value::Array(_) => "ARRAY",
            Value::Struct(_) => "STRUCT",
            Value::Nil => "NIL",
            Value::I8(_) => "I8",
        }
    }

    /// xmlrpc-c's numeric type code (`enum xmlrpc_type`), which some
    /// `system.multicall` faults print instead of the name.
    pub fn type_code(&self) -> u32 {
        match self {
            Value::Int(_) => 0,
            Value::Bool(_) => 1,
            Value::Double(_) => 2,
            Value::DateTime(_) => 3,
            Value::String(_) => 4,
            Value::Base64(_) => 5,
            Value::Array(_) => 6,
            Value::Struct(_) => 7,
            Value::Nil => 9,
            Value::I8(_) => 10,
        }
    }

    /// The string, if this is a [`Value::String`].
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The member `key` of a struct (first match), if this is a struct.
    pub fn member(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Struct(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
