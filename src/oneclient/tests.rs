//! What dxr makes of oned 3.2's answers: every answer of the recorded sessions, and the
//! shapes of the dialect one by one (i4 and int, strings with and without `<string>`, empty
//! strings, faults).

use super::*;
use dxr_client::utils::response_to_result;

fn decode(body: &str) -> Result<Scalar, RpcError> {
    match response_to_result(body) {
        Ok(Ok(response)) => oned_result("m", &response.value),
        Ok(Err(fault)) => Err(RpcError::Fault {
            method: "m".into(),
            code: fault.fault.code(),
            message: fault.fault.string().to_string(),
        }),
        Err(e) => Err(RpcError::Malformed {
            method: "m".into(),
            why: e.to_string(),
        }),
    }
}

/// oned's answer framing (xmlrpc-c: CRLF between elements).
fn oned(values: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<params>\r\n<param><value><array><data>\r\n{values}\r\n</data></array></value></param>\r\n</params>\r\n</methodResponse>\r\n"
    )
}

#[test]
fn oned_success_answers_decode() {
    let doc = oned(
        "<value><boolean>1</boolean></value>\r\n<value><string>&lt;VNET_POOL&gt;&lt;/VNET_POOL&gt;</string></value>\r\n<value><i4>0</i4></value>",
    );
    assert_eq!(
        decode(&doc).unwrap(),
        Scalar::Str("<VNET_POOL></VNET_POOL>".into())
    );
    let id = oned(
        "<value><boolean>1</boolean></value>\r\n<value><i4>42</i4></value>\r\n<value><i4>0</i4></value>",
    );
    assert_eq!(decode(&id).unwrap(), Scalar::Int(42));
    // <int> is the same type as <i4>.
    let int = oned("<value><boolean>1</boolean></value><value><int>-7</int></value><value><int>0</int></value>");
    assert_eq!(decode(&int).unwrap(), Scalar::Int(-7));
}

#[test]
fn strings_without_a_type_element_and_empty_strings_decode() {
    for (value, want) in [
        ("<value>plain text</value>", "plain text"),
        ("<value></value>", ""),
        ("<value><string></string></value>", ""),
        ("<value><string/></value>", ""),
        ("<value>a &amp; b &lt;c&gt;</value>", "a & b <c>"),
        // Templates and messages keep their blanks and line ends.
        (
            "<value><string>  two\n lines  </string></value>",
            "  two\n lines  ",
        ),
        ("<value><string> </string></value>", " "),
        ("<value>  untyped  </value>", "  untyped  "),
    ] {
        let doc = oned(&format!(
            "<value><boolean>1</boolean></value>{value}<value><i4>0</i4></value>"
        ));
        assert_eq!(decode(&doc).unwrap(), Scalar::Str(want.into()), "{value}");
    }
}

#[test]
fn oned_failures_keep_message_and_code() {
    let doc = oned(
        "<value><boolean>0</boolean></value>\r\n<value><string>[VirtualMachineInfo] Error getting virtual machine [9].</string></value>\r\n<value><i4>1024</i4></value>",
    );
    match decode(&doc) {
        Err(RpcError::Oned { message, code, .. }) => {
            assert_eq!(
                message,
                "[VirtualMachineInfo] Error getting virtual machine [9]."
            );
            assert_eq!(code, 1024);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn faults_decode() {
    let fault = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<methodResponse>\r\n<fault>\r\n<value><struct>\r\n<member><name>faultCode</name>\r\n<value><i4>-501</i4></value></member>\r\n<member><name>faultString</name>\r\n<value><string>Type mismatch</string></value></member>\r\n</struct></value>\r\n</fault>\r\n</methodResponse>\r\n";
    match decode(fault) {
        Err(RpcError::Fault { code, message, .. }) => {
            assert_eq!((code, message.as_str()), (-501, "Type mismatch"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_recorded_oned_answer_decodes_as_the_recording_says() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/oned-3.2");
    let mut answers = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let exchange: serde_json::Value = serde_json::from_str(line).unwrap();
            let Some(body) = exchange["response"].as_str() else {
                continue;
            };
            if exchange["status"] != 200 || !body.contains("<methodResponse>") {
                continue;
            }
            answers += 1;
            let where_ = format!("{} seq {}", path.display(), exchange["seq"]);
            let got = decode(body);
            if body.contains("<fault>") {
                assert!(
                    matches!(got, Err(RpcError::Fault { .. })),
                    "{where_}: {got:?}"
                );
                continue;
            }
            if !exchange["method"]
                .as_str()
                .unwrap_or("")
                .starts_with("one.")
            {
                continue;
            }
            // The first <boolean> says whether it succeeded; the value is the next one.
            let ok = body.contains("<value><boolean>1</boolean></value>");
            match got {
                Ok(Scalar::Str(s)) => {
                    assert!(ok, "{where_}");
                    let raw = body
                        .split("<string>")
                        .nth(1)
                        .unwrap()
                        .split("</string>")
                        .next()
                        .unwrap();
                    let unescaped = raw
                        .replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&quot;", "\"")
                        .replace("&apos;", "'")
                        .replace("&amp;", "&");
                    assert_eq!(s, unescaped, "{where_}");
                }
                Ok(Scalar::Int(i)) => {
                    assert!(ok, "{where_}");
                    assert!(body.contains(&format!("<i4>{i}</i4>")), "{where_}");
                }
                Ok(Scalar::Bool(_)) => panic!("{where_}: a boolean value"),
                Err(RpcError::Oned { message, code, .. }) => {
                    assert!(!ok, "{where_}");
                    assert!(code > 0, "{where_}");
                    assert!(!message.is_empty(), "{where_}");
                }
                Err(e) => panic!("{where_}: {e}"),
            }
        }
    }
    assert!(
        answers > 200,
        "only {answers} answers found in {}",
        dir.display()
    );
}

#[test]
fn endpoints_and_credentials() {
    assert!(check_endpoint("http://127.0.0.1:2633/RPC2").is_ok());
    assert!(check_endpoint("http://localhost/RPC2").is_ok());
    assert!(matches!(
        check_endpoint("https://x:2633/RPC2"),
        Err(RpcError::TlsEndpoint(_))
    ));
    assert!(check_endpoint("http://oneadmin:pw@x/RPC2").is_err());
    assert!(check_endpoint("ftp://x/").is_err());
    assert!(check_endpoint("not a url").is_err());

    let dir = std::env::temp_dir().join(format!("stratusd-oneclient-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("one_auth");
    std::fs::write(&file, "oneadmin:secret:with:colons\nsecond line\n").unwrap();
    assert_eq!(read_session(&file).unwrap(), "oneadmin:secret:with:colons");
    std::fs::write(&file, "nocolon\n").unwrap();
    assert!(matches!(read_session(&file), Err(RpcError::AuthFormat(_))));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The whole client (dxr's encoding, reqwest's HTTP) against a server that answers as oned:
/// the call it sends is a valid XML-RPC call that stratusd's own decoder reads back, with the
/// session as parameter 0 and as Basic credentials.
#[test]
fn calls_reach_a_server_and_answers_come_back() {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = Vec::new();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            head.push(line);
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).unwrap();
        let answer = oned(
            "<value><boolean>1</boolean></value>\r\n<value><i4>7</i4></value>\r\n<value><i4>0</i4></value>",
        );
        let mut out = reader.into_inner();
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        (head, body)
    });
    let client = OneClient::new(
        &format!("http://{addr}/RPC2"),
        "oneadmin:pa<ss&".into(),
        "stratusd-test",
    )
    .unwrap();
    let got = client
        .call(
            "one.host.allocate",
            &[
                Param::Str("node <1>".into()),
                Param::Int(-2),
                Param::Bool(true),
            ],
        )
        .unwrap();
    assert_eq!(got, Scalar::Int(7));
    let (head, body) = server.join().unwrap();
    let call = crate::xmlrpc::parse_method_call(&body).unwrap();
    assert_eq!(call.method, "one.host.allocate");
    use crate::xmlrpc::Value as V;
    assert_eq!(
        call.params,
        vec![
            V::String("oneadmin:pa<ss&".into()),
            V::String("node <1>".into()),
            V::Int(-2),
            V::Bool(true)
        ]
    );
    let basic = format!(
        "authorization: basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "oneadmin:pa<ss&"
        )
    );
    assert!(
        head.iter()
            .any(|h| h.trim_end().eq_ignore_ascii_case(&basic)),
        "{head:?}"
    );
    assert!(head.iter().any(|h| h
        .to_ascii_lowercase()
        .starts_with("user-agent: stratusd-test")));
}

#[test]
fn a_refused_connection_is_a_transport_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client =
        OneClient::new(&format!("http://127.0.0.1:{port}/RPC2"), "a:b".into(), "t").unwrap();
    match client.call("one.user.info", &[Param::Int(-1)]) {
        Err(RpcError::Transport { message, .. }) => {
            assert!(message.contains("refused"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}
