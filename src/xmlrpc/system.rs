//! xmlrpc-c's built-in `system.*` methods as oned 3.2 answers them
//! (xmlrpc-c 1.33.14, introspection enabled, no shutdown function).
//!
//! All but `system.multicall` are pure functions of the parameters;
//! `system.multicall` takes the dispatcher for its inner calls.

use super::decode::MethodCall;
use super::fault::{fault_code, Fault};
use super::methods::{lookup, METHODS};
use super::value::Value;

/// The xmlrpc-c version oned 3.2 was recorded with.
const XMLRPC_C_VERSION: (i32, i32, i32) = (1, 33, 14);

/// xmlrpc-c's `xmlrpc_decompose_value(params, "()")`.
fn expect_no_params(params: &[Value]) -> Result<(), Fault> {
    if params.is_empty() {
        Ok(())
    } else {
        Err(Fault::new(
            fault_code::INDEX,
            format!(
                "Format string requests exactly 0 items from array, but array has {} items.  \
                 (A '*' at the end would avoid this failure)",
                params.len()
            ),
        ))
    }
}

/// xmlrpc-c's `xmlrpc_decompose_value(params, "(s)")`.
fn expect_one_string(params: &[Value]) -> Result<&str, Fault> {
    match params {
        [] => Err(Fault::new(
            fault_code::INDEX,
            "Format string requests 1 items from array, but array has only 0 items.",
        )),
        [Value::String(s)] => Ok(s),
        [other] => Err(Fault::new(
            fault_code::TYPE,
            format!(
                "Value of type {} supplied where string type was expected.",
                other.type_name()
            ),
        )),
        _ => Err(Fault::new(
            fault_code::INDEX,
            format!(
                "Format string requests exactly 1 items from array, but array has {} items.  \
                 (A '*' at the end would avoid this failure)",
                params.len()
            ),
        )),
    }
}

/// The wrapping `system.methodSignature` and `system.shutdown` put around a
/// bad parameter list.
fn invalid_parameter_list(f: Fault) -> Fault {
    Fault::new(f.code, format!("Invalid parameter list.  {}", f.message))
}

fn method_does_not_exist(name: &str) -> Fault {
    Fault::new(
        fault_code::NO_SUCH_METHOD,
        format!("Method '{name}' does not exist"),
    )
}

/// `system.listMethods`: every registered name, in registration order.
pub fn list_methods(params: &[Value]) -> Result<Value, Fault> {
    expect_no_params(params)?;
    Ok(Value::Array(
        METHODS.iter().map(|m| Value::from(m.name)).collect(),
    ))
}

/// `system.methodExist`.
pub fn method_exist(params: &[Value]) -> Result<Value, Fault> {
    let name = expect_one_string(params)?;
    Ok(Value::Bool(lookup(name).is_some()))
}

/// `system.methodHelp`.
pub fn method_help(params: &[Value]) -> Result<Value, Fault> {
    let name = expect_one_string(params)?;
    lookup(name)
        .map(|m| Value::from(m.help))
        .ok_or_else(|| method_does_not_exist(name))
}

/// `system.methodSignature`: `[[result type, parameter types...], ...]`,
/// or `undef` for a method registered without signature.
pub fn method_signature(params: &[Value]) -> Result<Value, Fault> {
    let name = expect_one_string(params).map_err(invalid_parameter_list)?;
    let info = lookup(name).ok_or_else(|| method_does_not_exist(name))?;
    Ok(match info.signature_types() {
        None => Value::from("undef"),
        Some(signatures) => Value::Array(
            signatures
                .into_iter()
                .map(|types| Value::Array(types.into_iter().map(Value::from).collect()))
                .collect(),
        ),
    })
}

fn expect_no_params_for_capabilities(params: &[Value]) -> Result<(), Fault> {
    if params.is_empty() {
        Ok(())
    } else {
        Err(Fault::new(
            fault_code::INDEX,
            format!("There are no parameters.  You supplied {}", params.len()),
        ))
    }
}

/// `system.capabilities`: xmlrpc-c's version.
pub fn capabilities(params: &[Value]) -> Result<Value, Fault> {
    expect_no_params_for_capabilities(params)?;
    let (major, minor, point) = XMLRPC_C_VERSION;
    Ok(Value::Struct(vec![
        ("facility".into(), Value::from("xmlrpc-c")),
        ("version_major".into(), Value::Int(major)),
        ("version_minor".into(), Value::Int(minor)),
        ("version_point".into(), Value::Int(point)),
        ("protocol_version".into(), Value::Int(2)),
    ]))
}

/// `system.getCapabilities`: the standard capability list (introspection).
pub fn get_capabilities(params: &[Value]) -> Result<Value, Fault> {
    expect_no_params_for_capabilities(params)?;
    Ok(Value::Struct(vec![(
        "introspect".into(),
        Value::Struct(vec![
            (
                "specUrl".into(),
                Value::from("http://xmlrpc-c.sourceforge.net/xmlrpc-c/introspection.html"),
            ),
            ("specVersion".into(), Value::Int(1)),
        ]),
    )]))
}

/// `system.shutdown`: oned registers no shutdown function, so after the
/// parameter check the answer is always fault 0.
pub fn shutdown(params: &[Value]) -> Result<Value, Fault> {
    expect_one_string(params).map_err(invalid_parameter_list)?;
    Err(Fault::new(
        0,
        "This server program is not capable of shutting down",
    ))
}

/// The entry of a `system.multicall` answer for one inner call: the result
/// in a one-element array, or the fault as a struct.
pub fn multicall_entry(outcome: Result<Value, Fault>) -> Value {
    match outcome {
        Ok(v) => Value::Array(vec![v]),
        Err(f) => Value::Struct(vec![
            ("faultCode".into(), Value::Int(f.code)),
            ("faultString".into(), Value::String(f.message)),
        ]),
    }
}

/// Reads one element of the multicall array
/// (`xmlrpc_decompose_value(call, "{s:s,s:A,*}")`).
pub fn inner_call(description: &Value) -> Result<MethodCall, Fault> {
    if !matches!(description, Value::Struct(_)) {
        return Err(Fault::new(
            fault_code::TYPE,
            format!(
                "An element of the multicall array is type {}, but should be a struct (with \
                 members 'methodName' and 'params')",
                description.type_code()
            ),
        ));
    }
    let member = |key: &str| {
        description.member(key).ok_or_else(|| {
            Fault::new(
                fault_code::INDEX,
                format!("No member of struct has key '{key}'"),
            )
        })
    };
    let method = match member("methodName")? {
        Value::String(s) => s.clone(),
        other => {
            return Err(Fault::new(
                fault_code::TYPE,
                format!(
                    "Value of type {} supplied where string type was expected.",
                    other.type_name()
                ),
            ))
        }
    };
    let params = match member("params")? {
        Value::Array(items) => items.clone(),
        other => {
            return Err(Fault::new(
                fault_code::TYPE,
                format!(
                    "Value to be decomposed is of type {}, but the 'A' specifier requires type \
                     ARRAY",
                    other.type_name()
                ),
            ))
        }
    };
    Ok(MethodCall { method, params })
}

/// `system.multicall`: runs each inner call through `dispatch`, which must
/// behave like the top-level dispatcher (including `-506 Method '...' not
/// defined` for unknown names). A malformed inner call fails the whole
/// multicall, as in xmlrpc-c; a nested `system.multicall` is refused
/// without calling `dispatch`.
pub fn multicall<F>(params: &[Value], mut dispatch: F) -> Result<Value, Fault>
where
    F: FnMut(&MethodCall) -> Result<Value, Fault>,
{
    let descriptions = multicall_descriptions(params)?;
    let mut results = Vec::with_capacity(descriptions.len());
    for description in descriptions {
        let call = multicall_inner(description)?;
        results.push(multicall_entry(dispatch(&call)));
    }
    Ok(Value::Array(results))
}

/// The array of calls of a `system.multicall`'s parameters (checked as xmlrpc-c does); a
/// dispatcher runs them in order through [`multicall_inner`] and [`multicall_entry`], as
/// [`multicall`] does.
pub fn multicall_descriptions(params: &[Value]) -> Result<&[Value], Fault> {
    let [list] = params else {
        return Err(Fault::new(
            fault_code::PARSE,
            format!(
                "system.multicall takes one parameter, which is an array, each element \
                 describing one RPC.  You supplied {} arguments",
                params.len()
            ),
        ));
    };
    let Value::Array(descriptions) = list else {
        return Err(Fault::new(
            fault_code::TYPE,
            format!(
                "system.multicall's parameter should be an array, each element describing \
                 one RPC.  But it is type {} instead.",
                list.type_code()
            ),
        ));
    };
    Ok(descriptions)
}

/// One call of a multicall: a malformed one fails the whole multicall, as in xmlrpc-c, and
/// so does a nested `system.multicall`.
pub fn multicall_inner(description: &Value) -> Result<MethodCall, Fault> {
    let call = inner_call(description)?;
    if call.method == "system.multicall" {
        return Err(Fault::new(
            fault_code::REQUEST_REFUSED,
            "Recursive system.multicall forbidden",
        ));
    }
    Ok(call)
}

/// Runs the `system.*` method of `call`, except `system.multicall` (which
/// needs a dispatcher, see [`multicall`]); `None` for any other name.
pub fn call_builtin(call: &MethodCall) -> Option<Result<Value, Fault>> {
    let params = call.params.as_slice();
    Some(match call.method.as_str() {
        "system.listMethods" => list_methods(params),
        "system.methodExist" => method_exist(params),
        "system.methodHelp" => method_help(params),
        "system.methodSignature" => method_signature(params),
        "system.shutdown" => shutdown(params),
        "system.capabilities" => capabilities(params),
        "system.getCapabilities" => get_capabilities(params),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::from(text)
    }

    #[test]
    fn parameter_checks_like_xmlrpc_c() {
        assert_eq!(
            list_methods(&[s("x")]),
            Err(Fault::new(
                -502,
                "Format string requests exactly 0 items from array, but array has 1 items.  \
                 (A '*' at the end would avoid this failure)"
            ))
        );
        assert_eq!(
            method_help(&[]),
            Err(Fault::new(
                -502,
                "Format string requests 1 items from array, but array has only 0 items."
            ))
        );
        assert_eq!(
            method_signature(&[Value::Int(1)]),
            Err(Fault::new(
                -501,
                "Invalid parameter list.  Value of type INT supplied where string type was \
                 expected."
            ))
        );
        assert_eq!(
            capabilities(&[s("x")]),
            Err(Fault::new(-502, "There are no parameters.  You supplied 1"))
        );
        assert_eq!(
            shutdown(&[]),
            Err(Fault::new(
                -502,
                "Invalid parameter list.  Format string requests 1 items from array, but \
                 array has only 0 items."
            ))
        );
    }

    #[test]
    fn method_exist_and_signatures() {
        assert_eq!(method_exist(&[s("one.vm.info")]), Ok(Value::Bool(true)));
        assert_eq!(method_exist(&[s("one.vm.delete")]), Ok(Value::Bool(false)));
        assert_eq!(
            method_signature(&[s("system.listMethods")]),
            Ok(Value::Array(vec![Value::Array(vec![s("array")])]))
        );
        assert_eq!(
            method_signature(&[s("nope")]),
            Err(Fault::new(-506, "Method 'nope' does not exist"))
        );
    }

    #[test]
    fn multicall_refuses_recursion_and_bad_entries() {
        let nested = Value::Array(vec![Value::Struct(vec![
            ("methodName".into(), s("system.multicall")),
            ("params".into(), Value::Array(vec![])),
        ])]);
        let mut calls = 0;
        assert_eq!(
            multicall(&[nested], |_| {
                calls += 1;
                Ok(Value::Nil)
            }),
            Err(Fault::new(-507, "Recursive system.multicall forbidden"))
        );
        assert_eq!(calls, 0);
        assert_eq!(
            multicall(&[Value::Array(vec![Value::Int(1)])], |_| Ok(Value::Nil)),
            Err(Fault::new(
                -501,
                "An element of the multicall array is type 0, but should be a struct (with \
                 members 'methodName' and 'params')"
            ))
        );
        assert_eq!(
            multicall(
                &[Value::Array(vec![Value::Struct(vec![(
                    "methodName".into(),
                    s("x")
                )])])],
                |_| Ok(Value::Nil)
            ),
            Err(Fault::new(-502, "No member of struct has key 'params'"))
        );
        assert_eq!(
            multicall(&[], |_| Ok(Value::Nil)),
            Err(Fault::new(
                -503,
                "system.multicall takes one parameter, which is an array, each element \
                 describing one RPC.  You supplied 0 arguments"
            ))
        );
    }

    #[test]
    fn builtins_are_found_by_name() {
        let call = |name: &str| MethodCall {
            method: name.into(),
            params: vec![],
        };
        assert!(call_builtin(&call("system.listMethods")).is_some());
        assert!(call_builtin(&call("system.multicall")).is_none());
        assert!(call_builtin(&call("one.vm.info")).is_none());
    }
}
