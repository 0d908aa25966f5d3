//! XML-RPC faults, with the codes and texts xmlrpc-c 1.33 uses.
//!
//! oned itself never builds faults: every fault on the wire comes from the
//! xmlrpc-c layer (parse errors, unknown methods, parameter type errors and
//! the `system.*` methods). Application errors travel as normal
//! `[false, message, code]` answers instead.

use thiserror::Error;

/// Fault codes of xmlrpc-c (`xmlrpc-c/base.h`, `XMLRPC_*_ERROR`).
pub mod fault_code {
    /// Internal error of the library.
    pub const INTERNAL: i32 = -500;
    /// A value has the wrong type (also: parameter type errors of oned).
    pub const TYPE: i32 = -501;
    /// An index or struct key does not exist.
    pub const INDEX: i32 = -502;
    /// The call XML could not be parsed.
    pub const PARSE: i32 = -503;
    /// Network error (client side only).
    pub const NETWORK: i32 = -504;
    /// Timeout (client side only).
    pub const TIMEOUT: i32 = -505;
    /// Unknown method.
    pub const NO_SUCH_METHOD: i32 = -506;
    /// The server refused the request (recursive `system.multicall`).
    pub const REQUEST_REFUSED: i32 = -507;
    /// Introspection is disabled.
    pub const INTROSPECTION_DISABLED: i32 = -508;
    /// A configured limit was exceeded (request size ...).
    pub const LIMIT_EXCEEDED: i32 = -509;
    /// A string is not valid UTF-8 (or not in the Basic Multilingual Plane).
    pub const INVALID_UTF8: i32 = -510;
}

/// Prefix xmlrpc-c's registry puts in front of every parse error; the code
/// is then always [`fault_code::PARSE`], whatever the inner error was.
const NOT_A_PROPER_CALL: &str = "Call XML not a proper XML-RPC call.  ";

/// An XML-RPC fault: `<fault>` with `faultCode` and `faultString`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("XML-RPC fault {code}: {message}")]
pub struct Fault {
    /// `faultCode`.
    pub code: i32,
    /// `faultString`.
    pub message: String,
}

impl Fault {
    /// A fault with an arbitrary code and text.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Fault {
            code,
            message: message.into(),
        }
    }

    /// The registry's answer to an unknown method name (-506),
    /// e.g. `Method 'one.foo.bar' not defined`.
    pub fn method_not_defined(method: &str) -> Self {
        Fault::new(
            fault_code::NO_SUCH_METHOD,
            format!("Method '{method}' not defined"),
        )
    }

    /// A type fault (-501), the code of all parameter accessor errors.
    pub fn type_error(message: impl Into<String>) -> Self {
        Fault::new(fault_code::TYPE, message)
    }

    /// A -503 fault as the registry reports a request it cannot parse:
    /// `Call XML not a proper XML-RPC call.  <detail>`.
    pub(crate) fn not_a_proper_call(detail: &str) -> Self {
        Fault::new(fault_code::PARSE, format!("{NOT_A_PROPER_CALL}{detail}"))
    }
}
