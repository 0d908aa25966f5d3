//! The parser of 3.2's template language (`src/template/template_syntax.y`, spec §8.2): the
//! LALR(1) automaton bison 2.5 builds for the grammar, driven the way bison's skeleton drives
//! it, so that syntax errors are detected in the same state and reported with the same
//! "unexpected X, expecting Y or Z" text.
//!
//! ```text
//! template_file ::= ε | template
//! template      ::= attribute | template attribute
//! attribute     ::= VARIABLE EQUAL STRING
//!                 | VARIABLE EQUAL OBRACKET array_val CBRACKET
//!                 | VARIABLE EQUAL_EMPTY
//! array_val     ::= VARIABLE EQUAL STRING
//!                 | array_val COMMA VARIABLE EQUAL STRING
//! ```
//!
//! Bison gives every state that can reduce a default reduction, taken whatever the lookahead.
//! That is why `A = b, …` fails with "expecting $end": after `A = b` the parser reduces to a
//! complete `template_file` before it looks at the comma. Both recursions are left
//! recursions, so the stack never grows beyond six entries whatever the input.

use super::attribute::{attribute_name, keep_first_of_each_key};
use super::lexer::{Lexer, Location, Terminal, Token};
use super::{Attribute, ParseError, Template};
use std::borrow::Cow;
use std::fmt::Write;

/// Parses `text` into a template, or reports the first syntax error as bison 2.5 would.
pub(super) fn parse(text: &str) -> Result<Template, ParseError> {
    Parser {
        lexer: Lexer::new(text),
        stack: vec![(State::Start, Value::Nothing)],
        attributes: Vec::new(),
    }
    .run()
}

/// Automaton states, named after the input they have just seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    AfterName,
    AfterFile,
    AfterTemplate,
    AfterFirstAttribute,
    AfterEqual,
    AfterEqualEmpty,
    Accept,
    AfterNextAttribute,
    AfterSingleValue,
    AfterOBracket,
    AfterFirstKey,
    AfterPairs,
    AfterFirstKeyEqual,
    AfterComma,
    AfterCBracket,
    AfterFirstPair,
    AfterNextKey,
    AfterNextKeyEqual,
    AfterNextPair,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nonterminal {
    TemplateFile,
    Template,
    Attribute,
    ArrayVal,
}

/// Grammar rules, in the order of the grammar above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    EmptyFile,
    FileFromTemplate,
    FirstAttribute,
    NextAttribute,
    SingleValue,
    VectorValue,
    EmptyValue,
    FirstPair,
    NextPair,
}

impl Rule {
    fn lhs(self) -> Nonterminal {
        match self {
            Rule::EmptyFile | Rule::FileFromTemplate => Nonterminal::TemplateFile,
            Rule::FirstAttribute | Rule::NextAttribute => Nonterminal::Template,
            Rule::SingleValue | Rule::VectorValue | Rule::EmptyValue => Nonterminal::Attribute,
            Rule::FirstPair | Rule::NextPair => Nonterminal::ArrayVal,
        }
    }

    fn rhs_len(self) -> usize {
        match self {
            Rule::EmptyFile => 0,
            Rule::FileFromTemplate | Rule::FirstAttribute => 1,
            Rule::NextAttribute | Rule::EmptyValue => 2,
            Rule::SingleValue | Rule::FirstPair => 3,
            Rule::VectorValue | Rule::NextPair => 5,
        }
    }
}

/// A state's row of the parse table: explicit shifts (in token-number order, which is the
/// order bison lists them in "expecting …") and the default reduction.
struct Row {
    shifts: &'static [(Terminal, State)],
    default_reduction: Option<Rule>,
}

fn row(state: State) -> Row {
    use State::*;
    let (shifts, default_reduction): (&'static [(Terminal, State)], _) = match state {
        Start => (&[(Terminal::Variable, AfterName)], Some(Rule::EmptyFile)),
        AfterName => (
            &[
                (Terminal::Equal, AfterEqual),
                (Terminal::EqualEmpty, AfterEqualEmpty),
            ],
            None,
        ),
        AfterFile => (&[(Terminal::End, Accept)], None),
        AfterTemplate => (
            &[(Terminal::Variable, AfterName)],
            Some(Rule::FileFromTemplate),
        ),
        AfterFirstAttribute => (&[], Some(Rule::FirstAttribute)),
        AfterEqual => (
            &[
                (Terminal::OBracket, AfterOBracket),
                (Terminal::String, AfterSingleValue),
            ],
            None,
        ),
        AfterEqualEmpty => (&[], Some(Rule::EmptyValue)),
        Accept => (&[], None),
        AfterNextAttribute => (&[], Some(Rule::NextAttribute)),
        AfterSingleValue => (&[], Some(Rule::SingleValue)),
        AfterOBracket => (&[(Terminal::Variable, AfterFirstKey)], None),
        AfterFirstKey => (&[(Terminal::Equal, AfterFirstKeyEqual)], None),
        AfterPairs => (
            &[
                (Terminal::Comma, AfterComma),
                (Terminal::CBracket, AfterCBracket),
            ],
            None,
        ),
        AfterFirstKeyEqual => (&[(Terminal::String, AfterFirstPair)], None),
        AfterComma => (&[(Terminal::Variable, AfterNextKey)], None),
        AfterCBracket => (&[], Some(Rule::VectorValue)),
        AfterFirstPair => (&[], Some(Rule::FirstPair)),
        AfterNextKey => (&[(Terminal::Equal, AfterNextKeyEqual)], None),
        AfterNextKeyEqual => (&[(Terminal::String, AfterNextPair)], None),
        AfterNextPair => (&[], Some(Rule::NextPair)),
    };
    Row {
        shifts,
        default_reduction,
    }
}

fn goto(state: State, reduced: Nonterminal) -> Option<State> {
    use State::*;
    Some(match (state, reduced) {
        (Start, Nonterminal::TemplateFile) => AfterFile,
        (Start, Nonterminal::Template) => AfterTemplate,
        (Start, Nonterminal::Attribute) => AfterFirstAttribute,
        (AfterTemplate, Nonterminal::Attribute) => AfterNextAttribute,
        (AfterOBracket, Nonterminal::ArrayVal) => AfterPairs,
        _ => return None,
    })
}

/// Semantic value of a stack entry.
enum Value<'a> {
    Nothing,
    /// A VARIABLE name or a raw STRING value.
    Text(&'a [u8]),
    /// The sub-attributes of a vector under construction (repeated keys removed at the end).
    Pairs(Vec<(String, String)>),
}

impl<'a> Value<'a> {
    fn text(value: Option<Value<'a>>) -> &'a [u8] {
        match value {
            Some(Value::Text(text)) => text,
            _ => &[],
        }
    }

    fn pairs(value: Option<Value<'a>>) -> Vec<(String, String)> {
        match value {
            Some(Value::Pairs(pairs)) => pairs,
            _ => Vec::new(),
        }
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    stack: Vec<(State, Value<'a>)>,
    attributes: Vec<Attribute>,
}

impl<'a> Parser<'a> {
    fn run(mut self) -> Result<Template, ParseError> {
        let mut lookahead: Option<Token<'a>> = None;
        loop {
            let state = self.state();
            let row = row(state);
            // A state with nothing to shift reduces without reading a token, as bison does.
            if row.shifts.is_empty() {
                match row.default_reduction {
                    Some(rule) => {
                        self.reduce(rule)?;
                        continue;
                    }
                    // Only `Accept` has neither, and it is never pushed.
                    None => return Ok(Template::from_attributes(self.attributes)),
                }
            }
            let token = *lookahead.get_or_insert_with(|| self.lexer.next_token());
            if let Some(&(_, target)) = row.shifts.iter().find(|(t, _)| *t == token.terminal) {
                if target == State::Accept {
                    return Ok(Template::from_attributes(self.attributes));
                }
                self.stack.push((target, Value::Text(token.text)));
                lookahead = None;
                continue;
            }
            match row.default_reduction {
                Some(rule) => self.reduce(rule)?,
                None => {
                    return Err(syntax_error(
                        token.terminal,
                        row.shifts,
                        self.lexer.location(),
                    ));
                }
            }
        }
    }

    fn state(&self) -> State {
        self.stack.last().map_or(State::Start, |&(state, _)| state)
    }

    /// Pops the right-hand side of `rule`, runs its action (3.2 adds each attribute to the
    /// template as soon as it is reduced) and pushes the goto state.
    fn reduce(&mut self, rule: Rule) -> Result<(), ParseError> {
        let base = self.stack.len().saturating_sub(rule.rhs_len());
        let mut rhs = self.stack.drain(base..).map(|(_, value)| value);
        let produced = match rule {
            Rule::EmptyFile
            | Rule::FileFromTemplate
            | Rule::FirstAttribute
            | Rule::NextAttribute => Value::Nothing,
            Rule::SingleValue => {
                let name = Value::text(rhs.next());
                let _equal = rhs.next();
                let value = Value::text(rhs.next());
                self.attributes.push(Attribute::Single {
                    name: attribute_name(&lossy(name)),
                    value: unescape(value),
                });
                Value::Nothing
            }
            Rule::VectorValue => {
                let name = Value::text(rhs.next());
                let _equal = rhs.next();
                let _obracket = rhs.next();
                let mut pairs = Value::pairs(rhs.next());
                keep_first_of_each_key(&mut pairs);
                self.attributes.push(Attribute::Vector {
                    name: attribute_name(&lossy(name)),
                    pairs,
                });
                Value::Nothing
            }
            Rule::EmptyValue => {
                let name = Value::text(rhs.next());
                self.attributes.push(Attribute::Single {
                    name: attribute_name(&lossy(name)),
                    value: String::new(),
                });
                Value::Nothing
            }
            Rule::FirstPair => {
                let key = Value::text(rhs.next());
                let _equal = rhs.next();
                let value = Value::text(rhs.next());
                Value::Pairs(vec![(vector_key(key), unescape(value))])
            }
            Rule::NextPair => {
                let mut pairs = Value::pairs(rhs.next());
                let _comma = rhs.next();
                let key = Value::text(rhs.next());
                let _equal = rhs.next();
                let value = Value::text(rhs.next());
                pairs.push((vector_key(key), unescape(value)));
                Value::Pairs(pairs)
            }
        };
        drop(rhs);
        // Unreachable for this grammar's table; reported rather than panicking.
        let target = goto(self.state(), rule.lhs()).ok_or_else(|| ParseError {
            message: "syntax error".to_string(),
        })?;
        self.stack.push((target, produced));
        Ok(())
    }
}

/// bison 2.5's verbose message followed by 3.2's location suffix (`template_error`). Bison
/// lists the expected tokens only when there are at most four of them.
fn syntax_error(unexpected: Terminal, expected: &[(Terminal, State)], at: Location) -> ParseError {
    let mut message = format!("syntax error, unexpected {}", unexpected.bison_name());
    if expected.len() <= 4 {
        for (index, (terminal, _)) in expected.iter().enumerate() {
            message.push_str(if index == 0 { ", expecting " } else { " or " });
            message.push_str(terminal.bison_name());
        }
    }
    let _ = write!(
        message,
        " at line {}, columns {}:{}",
        at.line, at.first_column, at.last_column
    );
    ParseError { message }
}

/// Vector keys are upper-cased by the grammar (no `ONE_` fix-up).
fn vector_key(raw: &[u8]) -> String {
    lossy(raw).to_ascii_uppercase()
}

/// 3.2 unescapes every parsed value in one left-to-right pass: each `\"` becomes `"`; other
/// backslashes stay.
fn unescape(raw: &[u8]) -> String {
    let text = lossy(raw);
    if text.contains("\\\"") {
        text.replace("\\\"", "\"")
    } else {
        text.into_owned()
    }
}

/// Tokens start and end on ASCII bytes of a `&str`, so they are valid UTF-8; the lossy
/// conversion only avoids a panic path.
fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod table_tests {
    use super::*;

    const ALL_STATES: [State; 20] = [
        State::Start,
        State::AfterName,
        State::AfterFile,
        State::AfterTemplate,
        State::AfterFirstAttribute,
        State::AfterEqual,
        State::AfterEqualEmpty,
        State::Accept,
        State::AfterNextAttribute,
        State::AfterSingleValue,
        State::AfterOBracket,
        State::AfterFirstKey,
        State::AfterPairs,
        State::AfterFirstKeyEqual,
        State::AfterComma,
        State::AfterCBracket,
        State::AfterFirstPair,
        State::AfterNextKey,
        State::AfterNextKeyEqual,
        State::AfterNextPair,
    ];

    #[test]
    fn shifts_are_listed_in_token_number_order() {
        for state in ALL_STATES {
            let shifts = row(state).shifts;
            assert!(
                shifts.windows(2).all(|w| w[0].0 < w[1].0),
                "{state:?} shifts out of order"
            );
        }
    }

    #[test]
    fn every_reduction_has_a_goto_from_every_state_that_can_precede_it() {
        // The states a rule's left-hand side can be reduced onto.
        let cases = [
            (State::Start, Rule::EmptyFile),
            (State::Start, Rule::FileFromTemplate),
            (State::Start, Rule::FirstAttribute),
            (State::AfterTemplate, Rule::SingleValue),
            (State::Start, Rule::SingleValue),
            (State::AfterOBracket, Rule::FirstPair),
            (State::AfterOBracket, Rule::NextPair),
        ];
        for (state, rule) in cases {
            assert!(goto(state, rule.lhs()).is_some(), "{state:?} {rule:?}");
        }
    }
}
