//! Template texts built to defeat a naive scanner or parser: a scan that restarts at every byte,
//! a quoted string searched for its end again after each escaped quote, a vector whose keys are
//! compared pairwise. Each is a few lines of a hostile user's `one.vm.allocate` body.
//!
//! They live in the library because two programs use them: the template tests check that every
//! one gets its answer at 1 MiB, and `stratusd-template-bench` measures how the time grows with
//! the size (growth, not a wall-clock limit, is what shows a quadratic path).

/// One hostile text and what 3.2's parser does with it.
#[derive(Debug, Clone)]
pub struct AdversarialText {
    /// What the text attacks.
    pub label: &'static str,
    pub text: String,
    /// The parse's outcome: the number of attributes, or the refusal's message prefix.
    pub expected: Expected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    Attributes(usize),
    Refused(&'static str),
}

/// The hostile texts of about `size` bytes each (`size` at least 64).
pub fn adversarial_texts(size: usize) -> Vec<AdversarialText> {
    let keyed_vector = (0..size / 12)
        .map(|i| format!("K{i} = 1,"))
        .collect::<String>();
    vec![
        AdversarialText {
            label: "one long comment",
            text: "#".repeat(size),
            expected: Expected::Attributes(0),
        },
        AdversarialText {
            label: "unterminated string after an escaped quote",
            text: format!("A = \"\\\"{}", "x".repeat(size)),
            expected: Expected::Attributes(1),
        },
        AdversarialText {
            label: "unterminated string of escaped quotes",
            text: format!("A = \"\\\"{}", "\\\"".repeat(size / 2)),
            expected: Expected::Attributes(1),
        },
        AdversarialText {
            label: "quotes only",
            text: "\"".repeat(size),
            expected: Expected::Attributes(0),
        },
        AdversarialText {
            label: "blank lines",
            text: " \n".repeat(size / 2),
            expected: Expected::Attributes(0),
        },
        AdversarialText {
            label: "one vector, one key repeated, refused at its end",
            text: format!("A = [{} ]", " K = 1,".repeat(size / 7)),
            expected: Expected::Refused("syntax error, unexpected CBRACKET, expecting VARIABLE"),
        },
        AdversarialText {
            label: "one vector, distinct keys",
            text: format!("A = [{keyed_vector}K = 0 ]"),
            expected: Expected::Attributes(1),
        },
        AdversarialText {
            label: "many single attributes",
            text: "A = b\n".repeat(size / 6),
            expected: Expected::Attributes(size / 6),
        },
    ]
}
