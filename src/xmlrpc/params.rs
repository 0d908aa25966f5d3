//! Typed parameter reads with the -501 faults of xmlrpc-c's C++
//! `paramList::getInt/getBoolean/getString`, which oned's request handlers
//! use.
//!
//! The types are strict: only `<int>`/`<i4>` is an integer (not `<i8>`,
//! `<double>`, `<nil/>` ...), only `<boolean>` a boolean, and only
//! `<string>` or an untyped value a string.

use super::fault::Fault;
use super::value::Value;

fn not_enough() -> Fault {
    Fault::type_error("Not enough parameters")
}

/// The parameter at `index`, or the "Not enough parameters" fault.
pub fn param(params: &[Value], index: usize) -> Result<&Value, Fault> {
    params.get(index).ok_or_else(not_enough)
}

/// `paramList::getInt(index)`.
pub fn param_int(params: &[Value], index: usize) -> Result<i32, Fault> {
    match param(params, index)? {
        Value::Int(i) => Ok(*i),
        _ => Err(Fault::type_error(
            "Parameter that is supposed to be integer is not",
        )),
    }
}

/// `paramList::getBoolean(index)`.
pub fn param_bool(params: &[Value], index: usize) -> Result<bool, Fault> {
    match param(params, index)? {
        Value::Bool(b) => Ok(*b),
        _ => Err(Fault::type_error(
            "Parameter that is supposed to be boolean is not",
        )),
    }
}

/// `paramList::getString(index)`.
pub fn param_string(params: &[Value], index: usize) -> Result<&str, Fault> {
    match param(params, index)? {
        Value::String(s) => Ok(s),
        _ => Err(Fault::type_error(
            "Parameter that is supposed to be a string is not",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_types() {
        let params = vec![
            Value::String("s".into()),
            Value::Int(1),
            Value::Bool(true),
            Value::I8(1),
            Value::Double(1.0),
            Value::Nil,
        ];
        assert_eq!(param_string(&params, 0), Ok("s"));
        assert_eq!(param_int(&params, 1), Ok(1));
        assert_eq!(param_bool(&params, 2), Ok(true));
        for i in [0, 2, 3, 4, 5] {
            assert_eq!(
                param_int(&params, i),
                Err(Fault::new(
                    -501,
                    "Parameter that is supposed to be integer is not"
                ))
            );
        }
        assert_eq!(
            param_bool(&params, 1),
            Err(Fault::new(
                -501,
                "Parameter that is supposed to be boolean is not"
            ))
        );
        assert_eq!(
            param_string(&params, 1),
            Err(Fault::new(
                -501,
                "Parameter that is supposed to be a string is not"
            ))
        );
        assert_eq!(
            param_int(&params, 6),
            Err(Fault::new(-501, "Not enough parameters"))
        );
    }
}
