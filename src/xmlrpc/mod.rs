//! XML-RPC codec compatible with oned 3.2's xmlrpc-c 1.33 (Abyss server).
//!
//! * [`parse_method_call`] decodes a request body, with xmlrpc-c's -503
//!   faults for anything it refuses (malformed XML, wrong structure, bad
//!   scalars), worded as the recordings show them.
//! * [`param_int`], [`param_bool`], [`param_string`] read parameters with
//!   the -501 faults of xmlrpc-c's `paramList`.
//! * [`encode_response`], [`encode_fault`] and the fast path
//!   [`encode_oned_result`] write answers byte for byte like xmlrpc-c.
//! * [`lookup`] and [`METHODS`] are the one method registry (names, oned
//!   request classes, signatures, help texts, an [`OnedMethod`] per `one.*`
//!   method that the API maps to its handler); the [`system`] module
//!   implements the `system.*` methods, including [`system::multicall`].
//!
//! A dispatcher built on this module does, per request:
//! `parse_method_call` → fault, or `lookup(&call.method)` → unknown:
//! [`Fault::method_not_defined`]; `system.multicall`: [`system::multicall`]
//! with the dispatcher itself as closure; other `system.*`:
//! [`system::call_builtin`]; `one.*`: the application, answering with
//! [`encode_oned_result`].

mod decode;
mod document_encoding;
mod encode;
mod escaped;
mod fault;
mod methods;
mod params;
mod scalar;
pub mod system;
mod value;
mod xml_error;
mod xml_lexical;
mod xml_tree;

#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod recorded_exchanges;
#[cfg(test)]
mod recorded_tests;

pub use decode::{parse_method_call, MethodCall, MAX_VALUE_NESTING};
pub use encode::{
    encode_call, encode_fault, encode_oned_result, encode_response, write_value, Payload,
    ONED_DOC_HEAD, ONED_DOC_TAIL,
};
pub use escaped::{EscapedFragment, EscapedText};
pub use fault::{fault_code, Fault};
pub use methods::{
    lookup, lookup_any, MethodInfo, MethodKind, OnedMethod, METHODS, STRATUSD_METHODS,
};
pub use params::{param, param_bool, param_int, param_string};
pub use value::Value;
