//! Property tests: decoding never panics, whatever the bytes, and
//! encoding then decoding gives the values back.

use proptest::prelude::*;

use super::*;

/// Strings xmlrpc-c can carry unchanged: XML characters of the Basic
/// Multilingual Plane, without CR (read back as LF, as in xmlrpc-c).
fn xml_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::char::range(' ', '~'),
            1 => Just('\n'),
            1 => Just('\t'),
            1 => proptest::char::range('\u{A0}', '\u{D7FF}'),
            1 => proptest::char::range('\u{E000}', '\u{FFFD}'),
        ],
        0..24,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn datetime() -> impl Strategy<Value = String> {
    (
        1000u32..9999,
        1u32..13,
        1u32..32,
        0u32..24,
        0u32..60,
        0u32..60,
    )
        .prop_map(|(y, mo, d, h, mi, s)| format!("{y:04}{mo:02}{d:02}T{h:02}:{mi:02}:{s:02}"))
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i32>().prop_map(Value::Int),
        any::<i64>().prop_map(Value::I8),
        any::<bool>().prop_map(Value::Bool),
        (-1.0e15f64..1.0e15).prop_map(Value::Double),
        any::<f64>()
            .prop_filter("finite", |d| d.is_finite())
            .prop_map(Value::Double),
        xml_string().prop_map(Value::String),
        datetime().prop_map(Value::DateTime),
        proptest::collection::vec(any::<u8>(), 0..130).prop_map(Value::Base64),
        Just(Value::Nil),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(xml_string(), inner, 0..6)
                .prop_map(|members| Value::Struct(members.into_iter().collect())),
        ]
    })
}

/// Bytes that look a bit like XML-RPC, so the fuzzing reaches deep.
fn xmlish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(b"<?xml version=\"1.0\"?>".to_vec()),
        Just(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>".to_vec()),
        Just(b"<methodCall>".to_vec()),
        Just(b"</methodCall>".to_vec()),
        Just(b"<methodName>one.vm.info</methodName>".to_vec()),
        Just(b"<params>".to_vec()),
        Just(b"</params>".to_vec()),
        Just(b"<param><value>".to_vec()),
        Just(b"</value></param>".to_vec()),
        Just(b"<value><array><data>".to_vec()),
        Just(b"</data></array></value>".to_vec()),
        Just(b"<struct><member><name>n</name>".to_vec()),
        Just(b"</member></struct>".to_vec()),
        Just(b"<i4>".to_vec()),
        Just(b"</i4>".to_vec()),
        Just(b"<string>".to_vec()),
        Just(b"</string>".to_vec()),
        Just(b"<![CDATA[".to_vec()),
        Just(b"]]>".to_vec()),
        Just(b"&amp;&#x41;&#0;&bogus;&".to_vec()),
        Just(b"<!-- c -->".to_vec()),
        Just(b"<?pi x?>".to_vec()),
        Just(b"<!DOCTYPE x>".to_vec()),
        Just(b"<a b='c'/>".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(pieces, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(f) = parse_method_call(&body) {
            prop_assert_eq!(f.code, -503);
            // Every fault must be encodable.
            prop_assert!(encode_fault(&f).ends_with("</methodResponse>\r\n"));
        }
    }

    #[test]
    fn decoding_xml_like_bytes_never_panics(body in xmlish_bytes()) {
        if let Err(f) = parse_method_call(&body) {
            prop_assert_eq!(f.code, -503);
            prop_assert!(f.message.starts_with("Call XML not a proper XML-RPC call.  "));
        }
    }

    #[test]
    fn encode_then_decode_round_trips(
        method in "[a-z][a-z.]{0,20}",
        params in proptest::collection::vec(value(), 0..6),
    ) {
        let call = MethodCall { method, params };
        let decoded = parse_method_call(encode_call(&call).as_bytes());
        prop_assert_eq!(decoded, Ok(call));
    }

    #[test]
    fn oned_fast_path_equals_generic_encoding(
        ok in any::<bool>(),
        text in xml_string(),
        id in any::<i32>(),
        use_text in any::<bool>(),
        code in any::<i32>(),
    ) {
        let (payload, second) = if use_text {
            (Payload::Str(&text), Value::String(text.clone()))
        } else {
            (Payload::Int(id), Value::Int(id))
        };
        let generic = encode_response(&Value::Array(vec![Value::Bool(ok), second, Value::Int(code)]));
        prop_assert_eq!(encode_oned_result(ok, payload, code), generic);
    }
}
