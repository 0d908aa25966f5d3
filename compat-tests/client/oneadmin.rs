//! The suites' own XML-RPC calls, as oneadmin on the daemon's loopback `/RPC2`: holding and
//! releasing hosts, waiting for VM states, reading who owns what.

use crate::harness::http::HttpClient;
use crate::harness::xmlrpc::{self, Response, Value};
use crate::harness::xmltree;
use std::collections::HashMap;

/// The session string of these calls (the recorded server's oneadmin, the daemon's ONE_AUTH).
pub const ONEADMIN_SESSION: &str = "oneadmin:password";

/// A parameter after the session string.
pub enum Param<'a> {
    Text(&'a str),
    Int(i64),
    Bool(bool),
}

/// One call; the values after the success flag.
pub fn call(rpc: &mut HttpClient, method: &str, params: &[Param]) -> Result<Vec<Value>, String> {
    let mut body = format!(
        "<?xml version=\"1.0\"?><methodCall><methodName>{method}</methodName><params>\
         <param><value><string>{ONEADMIN_SESSION}</string></value></param>"
    );
    for param in params {
        body.push_str("<param><value>");
        match param {
            Param::Text(text) => body.push_str(&format!("<string>{text}</string>")),
            Param::Int(n) => body.push_str(&format!("<int>{n}</int>")),
            Param::Bool(b) => body.push_str(&format!("<boolean>{}</boolean>", u8::from(*b))),
        }
        body.push_str("</value></param>");
    }
    body.push_str("</params></methodCall>");
    let answer = rpc
        .post("/RPC2", "text/xml", body.as_bytes())
        .map_err(|e| format!("{method}: {e}"))?;
    let text = String::from_utf8_lossy(&answer.body);
    let decoded = xmlrpc::decode_response(&text).map_err(|e| format!("{method}: {e}"))?;
    let Response::Params(values) = decoded else {
        return Err(format!("{method}: fault {text}"));
    };
    match values.as_slice() {
        [Value::Array(items)] => match items.first() {
            Some(Value::Boolean(true)) => Ok(items[1..].to_vec()),
            _ => Err(format!("{method} failed: {:?}", items.get(1))),
        },
        _ => Err(format!("{method}: unexpected answer {text}")),
    }
}

/// An `.info` document.
pub fn document(
    rpc: &mut HttpClient,
    method: &str,
    params: &[Param],
) -> Result<xmltree::Element, String> {
    let values = call(rpc, method, params)?;
    match values.first() {
        Some(Value::String { text, .. }) => {
            xmltree::parse_document(text).map_err(|e| format!("{method}: {e}"))
        }
        other => Err(format!("{method}: no document but {other:?}")),
    }
}

/// Host id → STATE.
pub fn host_states(rpc: &mut HttpClient) -> Result<HashMap<i64, i64>, String> {
    let pool = document(rpc, "one.hostpool.info", &[])?;
    let number = |host: &xmltree::Element, name: &str| {
        host.child_text(name)
            .and_then(|t| t.trim().parse::<i64>().ok())
    };
    pool.children
        .iter()
        .filter(|c| c.name == "HOST")
        .map(|host| {
            number(host, "ID")
                .zip(number(host, "STATE"))
                .ok_or_else(|| "a HOST without ID or STATE".to_string())
        })
        .collect()
}

/// A VM's (STATE, LCM_STATE).
pub fn vm_state(rpc: &mut HttpClient, vm: i64) -> Result<(i64, i64), String> {
    let doc = document(rpc, "one.vm.info", &[Param::Int(vm)])?;
    let number = |name: &str| {
        doc.child_text(name)
            .and_then(|t| t.trim().parse::<i64>().ok())
    };
    number("STATE")
        .zip(number("LCM_STATE"))
        .ok_or_else(|| format!("VM {vm}: no STATE/LCM_STATE"))
}
