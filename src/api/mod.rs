//! The request handlers: one module per object family. Each handler reads its parameters the
//! way xmlrpc-c's `paramList` does (type faults), calls the core and renders the result. The
//! dispatcher authenticates the session first, as oned's `Request::execute` does.

pub mod acl;
pub mod dispatch;
pub mod error;
pub mod group;
pub mod host;
pub mod image;
pub mod template;
pub mod user;
pub mod vm;
pub mod vnet;

pub use dispatch::{dispatch, Reply};
pub use error::ApiError;

use crate::xmlrpc::{param_bool, param_int, param_string, EscapedText, Value};

/// Successful result of an oned method.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Int(i32),
    Doc(String),
    /// A document already escaped for the answer's `<string>` (VM documents, from the cache).
    Escaped(EscapedText),
}

pub type HandlerResult = Result<Payload, ApiError>;

/// The parameters after the session, with xmlrpc-c's accessors.
pub struct Params<'a> {
    values: &'a [Value],
}

impl<'a> Params<'a> {
    pub fn new(values: &'a [Value]) -> Self {
        Params { values }
    }
    /// Parameter `i` counting the session as 0, as in the 3.2 sources.
    pub fn string(&self, i: usize) -> Result<&'a str, ApiError> {
        Ok(param_string(self.values, i)?)
    }
    pub fn int(&self, i: usize) -> Result<i32, ApiError> {
        Ok(param_int(self.values, i)?)
    }
    pub fn bool(&self, i: usize) -> Result<bool, ApiError> {
        Ok(param_bool(self.values, i)?)
    }
    /// The nine permission integers of a chmod, from parameter `first` on.
    pub fn perms(&self, first: usize) -> Result<[i32; 9], ApiError> {
        let mut bits = [0i32; 9];
        for (k, slot) in bits.iter_mut().enumerate() {
            *slot = self.int(first + k)?;
        }
        Ok(bits)
    }
}
