//! The error of a failed template parse.

/// A template syntax error, worded as 3.2's bison 2.5 parser words it, e.g.
/// `syntax error, unexpected $end, expecting VARIABLE at line 4, columns 31:33`.
///
/// The API reports it as `[<Method>] Error allocating a new <object>. Parse error: <message>`;
/// adding those prefixes is the caller's business.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
}
