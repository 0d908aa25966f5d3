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

use crate::core::command::Answer;
use crate::core::{Command, Core};
use crate::xmlrpc::{param_bool, param_int, param_string, EscapedText, Value};
use std::sync::Arc;

/// Successful result of an oned method.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Int(i32),
    Doc(String),
    /// A document already escaped for the answer's `<string>` (VM documents, from the cache).
    Escaped(EscapedText),
}

/// What a handler decided: an answer read from the state, or a write, which the dispatcher
/// sends to the core's owner and awaits (so no handler ever blocks on the store).
pub enum Step {
    Answer(Payload),
    Write {
        command: Box<Command>,
        /// Makes the payload of the command's answer.
        then: Then,
    },
}

/// The last part of a write handler, run with the command's answer.
pub type Then = Box<dyn FnOnce(&Arc<Core>, Answer) -> Result<Payload, ApiError> + Send>;

pub type HandlerResult = Result<Step, ApiError>;

/// A read's answer.
pub fn answer(payload: Payload) -> HandlerResult {
    Ok(Step::Answer(payload))
}

/// A write whose answer is the object's id, as most oned methods answer.
pub fn write_id(command: Command) -> HandlerResult {
    write(command, |_, answer| Ok(Payload::Int(answer.id()?)))
}

/// A write whose answer `then` makes into the payload.
pub fn write(
    command: Command,
    then: impl FnOnce(&Arc<Core>, Answer) -> Result<Payload, ApiError> + Send + 'static,
) -> HandlerResult {
    Ok(Step::Write {
        command: Box::new(command),
        then: Box::new(then),
    })
}

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
