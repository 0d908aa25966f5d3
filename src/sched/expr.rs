//! The scheduler's `REQUIREMENTS` and `RANK` expression languages, as 3.2's `mm_sched` evaluates
//! them against each host (3.2 `src/xml/expr_parser.l`, `expr_bool.y`, `expr_arith.y`; spec
//! `xmlrpc-api.md` §7.4).
//!
//! Parse once with [`parse_requirements`] / [`parse_rank`], then evaluate against every host with
//! [`Requirements::matches`] / [`Rank::eval_int`]. Evaluation never allocates beyond what the
//! `lookup` closure does, never recurses deeper than the nesting the parser accepted
//! ([`MAX_NESTING`]), and never panics (division by zero gives an infinity or NaN, as in 3.2).
//!
//! # The lookup
//!
//! `lookup(name)` returns a host attribute's text, or `None` when the host has no such attribute.
//! 3.2 looks `name` up as `/HOST/TEMPLATE/<name>`, then `/HOST/HOST_SHARE/<name>`, then
//! `/HOST/<name>`, and takes the first value found. Names are passed exactly as written: XML is
//! case-sensitive, so `hostname` finds nothing. A quoted name on the left (`"FREE CPU" > 1`) is
//! passed verbatim too; 3.2 built an XPath from it, so a name that is not an element name finds
//! nothing there, while `"TEMPLATE/CPU"` reaches a nested element.
//!
//! # Semantics kept from 3.2
//!
//! * Tokens: `! & | = > < ( ) * + / ^ -`; names `[A-Za-z][A-Za-z0-9_]*`; integers `-?[0-9]+`
//!   (so `A -5` is a name followed by the integer `-5`, a syntax error, while `A - 5` is a
//!   subtraction); floats `-?[0-9]+.[0-9]+`; double-quoted strings (no escapes; `""` is a null
//!   string that never matches); blanks are skipped, and **every other character (newlines,
//!   `'`, `.`, `_` at the start of a word, `$`, `#`, non-ASCII bytes) is silently dropped**.
//!   A bare name on the right of `=` is a string: `HYPERVISOR = kvm` matches `kvm`.
//! * `REQUIREMENTS`: `&`, `|` and `!` all have **the same precedence and associate to the left**
//!   (`%left '!' '&' '|'`), so `A = 1 | B = 1 & C = 1` means `(A = 1 | B = 1) & C = 1`, and `!`
//!   negates only the comparison or parenthesis that follows it. `!=` is the two tokens `!` `=`
//!   (`A ! = 1` is valid). `>`/`<` only take numbers.
//! * Comparing with an integer reads the host value like C++'s `istringstream >> int` (leading
//!   blanks, optional sign, digits, then anything: `2.2GHz` reads as `2`); **a missing or
//!   unreadable value reads as 0**, so `FREECPU < 1` holds on a host without `FREECPU`. Floats
//!   likewise (`2.2GHz` is `2.2`), in single precision. Comparing with a string uses shell
//!   wildcards (`fnmatch` without flags: `*`, `?`, `[…]`, `\` escapes) and **never holds when the
//!   host value is missing or empty, for `=` and `!=` alike**.
//! * `RANK`: `+ - * /` (usual precedence, left-associative), unary minus (which binds looser than
//!   `*` and `/`: `- A * B` is `-(A * B)`, and `8 / - 2 * 4` is `8 / -(2 * 4)`), parentheses,
//!   attribute values (missing or unreadable: 0) and numbers, computed in single precision. 3.2
//!   ranks hosts by the result truncated to an `int` ([`Rank::eval_int`]).
//! * Empty (or blank-only) expressions: `REQUIREMENTS` holds on every host, `RANK` is 0.
//!
//! # Errors, and what `mm_sched` does with them
//!
//! [`ExprError`] displays bison 2.5's verbose message with the scanner's location, e.g.
//! `syntax error, unexpected $end, expecting INTEGER or FLOAT at line 1, columns 11:12` for
//! `CPUSPEED > `. 3.2 accepts such a `REQUIREMENTS` at allocation (the VM stays `PENDING`
//! forever) and its scheduler, for every host it tries, logs the ERROR line of
//! [`requirements_error_log_line`] and skips the host; a VM whose `REQUIREMENTS` does not parse
//! therefore matches no host. A `RANK` that does not parse logs [`rank_error_log_line`] (module
//! `RANK`) per host and gives every host rank 0.
//!
//! ```text
//! // One scheduling cycle for one PENDING VM.
//! let candidates: Vec<&Host> = match parse_requirements(&vm.requirements) {
//!     Ok(requirements) => hosts.iter().filter(|h| requirements.matches(&|n| h.attr(n))).collect(),
//!     Err(error) => {
//!         for _ in &hosts {
//!             tracing::error!("{}", requirements_error_log_line(&vm.requirements, &error));
//!         }
//!         Vec::new() // the VM stays PENDING
//!     }
//! };
//! let rank = parse_rank(&vm.rank); // Err: log rank_error_log_line per host, rank 0 each
//! ```
//!
//! Differences from 3.2, all on inputs nobody writes: nesting deeper than [`MAX_NESTING`] is
//! refused with bison's `memory exhausted` (3.2's stack allowed about 10 000 levels); the line
//! number counts from 1 for each expression (3.2's scanner never reset it); a `""` name on the
//! left reads as a missing attribute (3.2 built an invalid XPath from a null pointer).

use std::fmt;

/// Deepest nesting of parentheses (and, in `RANK`, of unary minus over a product) that the
/// parsers accept. It bounds the recursion of parsing and evaluation so that a hostile template
/// cannot overflow a worker thread's stack.
pub const MAX_NESTING: usize = 256;

// ------------------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------------------

/// Where the scanner was when the parser gave up, as 3.2 reports it: the line number after the
/// last text it matched, and that text's 1-based byte offsets counted over the whole expression
/// (skipped blanks and dropped characters count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorLocation {
    pub line: u32,
    pub first_column: u32,
    pub last_column: u32,
}

impl fmt::Display for ErrorLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at line {}, columns {}:{}",
            self.line, self.first_column, self.last_column
        )
    }
}

/// Why a `REQUIREMENTS` or `RANK` expression does not parse; displays as 3.2's parser message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// bison's `syntax error, unexpected X, expecting A or B …`. `expected` is empty where bison
    /// lists nothing (five or more possible tokens).
    #[error("syntax error, unexpected {unexpected}{expecting} {location}", expecting = expecting(.expected))]
    Syntax {
        unexpected: &'static str,
        expected: &'static [&'static str],
        location: ErrorLocation,
    },
    /// Nesting deeper than [`MAX_NESTING`]; bison's wording for its own stack limit.
    #[error("memory exhausted {location}")]
    TooDeeplyNested { location: ErrorLocation },
}

/// bison's `, expecting A or B or C` tail; nothing for an empty list.
struct Expecting<'a>(&'a [&'static str]);

fn expecting<'a>(expected: &'a [&'static str]) -> Expecting<'a> {
    Expecting(expected)
}

impl fmt::Display for Expecting<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, token) in self.0.iter().enumerate() {
            let separator = if index == 0 { ", expecting " } else { " or " };
            write!(f, "{separator}{token}")?;
        }
        Ok(())
    }
}

/// 3.2 `mm_sched`'s ERROR line (module `SCHED`) for a host tried against a `REQUIREMENTS` that
/// does not parse; 3.2 then logs `Host <id> filtered out. It does not fullfil REQUIREMENTS.` at
/// DEBUG. The misspelling "expresion" is 3.2's.
pub fn requirements_error_log_line(requirements: &str, error: &ExprError) -> String {
    format!("Error evaluating expresion: {requirements}, error: {error}")
}

/// 3.2 `mm_sched`'s ERROR line (module `RANK`) for a host ranked with a `RANK` that does not
/// parse; that host's rank is 0.
pub fn rank_error_log_line(rank: &str, error: &ExprError) -> String {
    format!("Computing host rank, expression: {rank}, error: {error}")
}

// ------------------------------------------------------------------------------------------------
// Scanner (shared by both grammars, as 3.2's `expr_lex` is)
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Token<'a> {
    End,
    /// One of `! & | = > < ( ) * + / ^ -`.
    Symbol(u8),
    Integer(i32),
    Float(f32),
    /// A `STRING`: a bare name, or the text between the quotes of a non-empty quoted string.
    Text(&'a str),
    /// The `STRING` of `""`, a null pointer in 3.2.
    Null,
}

struct Scanner<'a> {
    source: &'a str,
    position: usize,
    line: u32,
    location: ErrorLocation,
}

impl<'a> Scanner<'a> {
    fn new(source: &'a str) -> Self {
        Scanner {
            source,
            position: 0,
            line: 1,
            // bison 2.5 starts every parse at line 1, column 1.
            location: ErrorLocation {
                line: 1,
                first_column: 1,
                last_column: 1,
            },
        }
    }

    /// Consumes `length` bytes as one scanner match, updating the location as 3.2's
    /// `YY_USER_ACTION` does (after `yylineno` has counted the match's newlines).
    fn consume(&mut self, length: usize) {
        let bytes = self.source.as_bytes();
        let end = (self.position + length).min(bytes.len());
        let newlines = bytes[self.position..end]
            .iter()
            .filter(|&&byte| byte == b'\n')
            .count();
        self.line = self
            .line
            .saturating_add(u32::try_from(newlines).unwrap_or(u32::MAX));
        let first_column = self.location.last_column;
        self.location = ErrorLocation {
            line: self.line,
            first_column,
            last_column: first_column.saturating_add(u32::try_from(length).unwrap_or(u32::MAX)),
        };
        self.position = end;
    }

    /// The text of `start..end`; both ends are at ASCII bytes or the end of input, hence char
    /// boundaries.
    fn text(&self, start: usize, end: usize) -> &'a str {
        self.source.get(start..end).unwrap_or_default()
    }

    fn next_token(&mut self) -> Token<'a> {
        let bytes = self.source.as_bytes();
        loop {
            let rest = &bytes[self.position..];
            let Some(&first) = rest.first() else {
                return Token::End;
            };
            match first {
                b'-' if rest.get(1).is_some_and(u8::is_ascii_digit) => return self.number(),
                b'0'..=b'9' => return self.number(),
                b'!' | b'&' | b'|' | b'=' | b'>' | b'<' | b'(' | b')' | b'*' | b'+' | b'/'
                | b'^' | b'-' => {
                    self.consume(1);
                    return Token::Symbol(first);
                }
                b'A'..=b'Z' | b'a'..=b'z' => {
                    let length = 1 + rest[1..]
                        .iter()
                        .take_while(|byte| byte.is_ascii_alphanumeric() || **byte == b'_')
                        .count();
                    let start = self.position;
                    self.consume(length);
                    return Token::Text(self.text(start, start + length));
                }
                b'"' => {
                    // `""` and `"x…"` tie on two characters; the `""` rule comes first.
                    if rest.get(1) == Some(&b'"') {
                        self.consume(2);
                        return Token::Null;
                    }
                    if let Some(inner) = rest[1..].iter().position(|&byte| byte == b'"') {
                        let start = self.position + 1;
                        self.consume(inner + 2);
                        return Token::Text(self.text(start, start + inner));
                    }
                    // An unterminated quote matches no rule: flex's default rule drops it.
                    self.consume(1);
                }
                b' ' | b'\t' => {
                    let length = rest
                        .iter()
                        .take_while(|&&byte| byte == b' ' || byte == b'\t')
                        .count();
                    self.consume(length);
                }
                // Any other byte matches no rule: flex's default rule echoes and drops it.
                _ => self.consume(1),
            }
        }
    }

    /// `-?[0-9]+` or, when a fraction follows, `-?[0-9]+\.[0-9]+` (the longer match wins).
    fn number(&mut self) -> Token<'a> {
        let rest = &self.source.as_bytes()[self.position..];
        let sign = usize::from(rest.first() == Some(&b'-'));
        let integer_digits = rest[sign..]
            .iter()
            .take_while(|byte| byte.is_ascii_digit())
            .count();
        let integer_end = sign + integer_digits;
        let fraction_digits = if rest.get(integer_end) == Some(&b'.') {
            rest[integer_end + 1..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count()
        } else {
            0
        };
        let start = self.position;
        if fraction_digits > 0 {
            let length = integer_end + 1 + fraction_digits;
            self.consume(length);
            // `atof` gives a double, stored in the parser's `float`.
            let value: f64 = self.text(start, start + length).parse().unwrap_or(0.0);
            Token::Float(value as f32)
        } else {
            self.consume(integer_end);
            Token::Integer(c_atoi(self.text(start, start + integer_end)))
        }
    }
}

/// glibc's `atoi`: `strtol` (saturating at the 64-bit `long` limits) truncated to `int`.
fn c_atoi(digits: &str) -> i32 {
    let (negative, magnitude) = match digits.strip_prefix('-') {
        Some(magnitude) => (true, magnitude),
        None => (false, digits),
    };
    let mut value: i64 = 0;
    for digit in magnitude.bytes() {
        let digit = i64::from(digit - b'0');
        value = match value.checked_mul(10).and_then(|shifted| {
            if negative {
                shifted.checked_sub(digit)
            } else {
                shifted.checked_add(digit)
            }
        }) {
            Some(next) => next,
            None if negative => i64::MIN,
            None => i64::MAX,
        };
        if value == i64::MIN || value == i64::MAX {
            break;
        }
    }
    // The conversion to `int` keeps the low 32 bits, as gcc does.
    value as i32
}

/// C's `isspace` in the C locale.
fn is_c_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A host value read as 3.2's `istringstream >> int` into a variable preset to 0 (gcc's C++98
/// library: blanks, optional sign, digits, the rest ignored; no digits or out of `int` range
/// leaves the 0).
fn read_int(value: &str) -> i32 {
    let bytes = value.as_bytes();
    let start = bytes
        .iter()
        .position(|&byte| !is_c_space(byte))
        .unwrap_or(bytes.len());
    let rest = &bytes[start..];
    let (negative, digits) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let mut magnitude: u64 = 0;
    let mut any_digit = false;
    for &byte in digits.iter().take_while(|byte| byte.is_ascii_digit()) {
        any_digit = true;
        magnitude = match magnitude
            .checked_mul(10)
            .and_then(|shifted| shifted.checked_add(u64::from(byte - b'0')))
        {
            Some(next) => next,
            None => return 0,
        };
    }
    if !any_digit {
        return 0;
    }
    let signed = if negative {
        -i128::from(magnitude)
    } else {
        i128::from(magnitude)
    };
    i32::try_from(signed).unwrap_or(0)
}

/// A host value read as 3.2's `istringstream >> float` into a variable preset to 0: blanks,
/// then the longest `[+-]digits[.digits][e[+-]digits]` prefix (at least one digit), correctly
/// rounded to single precision; no number, or one beyond `float`'s range, leaves the 0.
fn read_float(value: &str) -> f32 {
    let bytes = value.as_bytes();
    let start = bytes
        .iter()
        .position(|&byte| !is_c_space(byte))
        .unwrap_or(bytes.len());
    let rest = &bytes[start..];
    let count_digits = |from: usize| {
        rest.get(from..).map_or(0, |tail| {
            tail.iter().take_while(|byte| byte.is_ascii_digit()).count()
        })
    };
    let mut end = usize::from(matches!(rest.first(), Some(b'+' | b'-')));
    let integer_digits = count_digits(end);
    end += integer_digits;
    let mut fraction_digits = 0;
    if rest.get(end) == Some(&b'.') {
        fraction_digits = count_digits(end + 1);
        end += 1 + fraction_digits;
    }
    if integer_digits + fraction_digits == 0 {
        return 0.0;
    }
    if matches!(rest.get(end), Some(b'e' | b'E')) {
        let exponent_sign = usize::from(matches!(rest.get(end + 1), Some(b'+' | b'-')));
        let exponent_digits = count_digits(end + 1 + exponent_sign);
        if exponent_digits > 0 {
            end += 1 + exponent_sign + exponent_digits;
        }
    }
    let number = std::str::from_utf8(&rest[..end]).unwrap_or("0");
    match number.parse::<f32>() {
        Ok(parsed) if parsed.is_finite() => parsed,
        _ => 0.0,
    }
}

// ------------------------------------------------------------------------------------------------
// REQUIREMENTS
// ------------------------------------------------------------------------------------------------

/// A parsed `REQUIREMENTS` expression, ready to be evaluated against many hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct Requirements {
    /// `None` for an empty expression, which every host satisfies.
    expression: Option<BoolChain>,
}

/// `first op term op term …`, folded from the left: 3.2 gives `&` and `|` one precedence level.
#[derive(Debug, Clone, PartialEq)]
struct BoolChain {
    first: BoolTerm,
    rest: Vec<(Connective, BoolTerm)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connective {
    And,
    Or,
}

/// A comparison or a parenthesised chain, negated by an odd number of `!` before it.
#[derive(Debug, Clone, PartialEq)]
struct BoolTerm {
    negated: bool,
    operand: BoolOperand,
}

#[derive(Debug, Clone, PartialEq)]
enum BoolOperand {
    Comparison(Comparison),
    Group(Box<BoolChain>),
}

#[derive(Debug, Clone, PartialEq)]
struct Comparison {
    /// `None` for a `""` name, which reads as a missing attribute.
    attribute: Option<String>,
    test: Test,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Integer(Relation, i32),
    Float(Relation, f32),
    /// `=` (`equal`) or `!=` against a wildcard pattern; `None` for the null string `""`.
    Pattern {
        equal: bool,
        pattern: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    Equal,
    NotEqual,
    Greater,
    Less,
}

impl Relation {
    fn holds<T: PartialOrd>(self, host_value: T, literal: T) -> bool {
        match self {
            Relation::Equal => host_value == literal,
            Relation::NotEqual => host_value != literal,
            Relation::Greater => host_value > literal,
            Relation::Less => host_value < literal,
        }
    }
}

/// Parses a `REQUIREMENTS` expression (after variable substitution, as stored in the VM
/// template). An empty or blank-only text gives an expression every host satisfies.
pub fn parse_requirements(source: &str) -> Result<Requirements, ExprError> {
    let mut parser = Parser::new(source, bool_token_name);
    if parser.lookahead == Token::End {
        return Ok(Requirements { expression: None });
    }
    // bison reduces the empty statement on anything that cannot start an expression, then
    // finds only `$end` acceptable.
    if !starts_bool_term(parser.lookahead) {
        return Err(parser.syntax_error(&["$end"]));
    }
    let expression = parser.bool_chain()?;
    if parser.lookahead != Token::End {
        return Err(parser.syntax_error(&["$end"]));
    }
    Ok(Requirements {
        expression: Some(expression),
    })
}

impl Requirements {
    /// Whether a host satisfies the expression; `lookup` gives the host's attribute values.
    pub fn matches(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        self.expression
            .as_ref()
            .is_none_or(|chain| chain.eval(lookup))
    }

    /// Whether the expression was empty (every host satisfies it).
    pub fn is_empty(&self) -> bool {
        self.expression.is_none()
    }
}

impl BoolChain {
    fn eval(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        let mut value = self.first.eval(lookup);
        for (connective, term) in &self.rest {
            value = match connective {
                Connective::And => value && term.eval(lookup),
                Connective::Or => value || term.eval(lookup),
            };
        }
        value
    }
}

impl BoolTerm {
    fn eval(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        let value = match &self.operand {
            BoolOperand::Comparison(comparison) => comparison.eval(lookup),
            BoolOperand::Group(chain) => chain.eval(lookup),
        };
        value != self.negated
    }
}

impl Comparison {
    fn eval(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        let host_value = self.attribute.as_deref().and_then(lookup);
        match &self.test {
            Test::Integer(relation, literal) => {
                relation.holds(host_value.as_deref().map_or(0, read_int), *literal)
            }
            Test::Float(relation, literal) => {
                relation.holds(host_value.as_deref().map_or(0.0, read_float), *literal)
            }
            Test::Pattern { equal, pattern } => match (host_value.as_deref(), pattern) {
                (Some(value), Some(pattern)) if !value.is_empty() => {
                    wildcard_match(pattern, value) == *equal
                }
                _ => false,
            },
        }
    }
}

fn starts_bool_term(token: Token<'_>) -> bool {
    matches!(
        token,
        Token::Text(_) | Token::Null | Token::Symbol(b'!') | Token::Symbol(b'(')
    )
}

/// bison's name for a token of `expr_bool.y`; symbols the grammar does not use are
/// `$undefined`.
fn bool_token_name(token: Token<'_>) -> &'static str {
    match token {
        Token::End => "$end",
        Token::Symbol(b'!') => "'!'",
        Token::Symbol(b'&') => "'&'",
        Token::Symbol(b'|') => "'|'",
        Token::Symbol(b'=') => "'='",
        Token::Symbol(b'>') => "'>'",
        Token::Symbol(b'<') => "'<'",
        Token::Symbol(b'(') => "'('",
        Token::Symbol(b')') => "')'",
        Token::Symbol(_) => "$undefined",
        Token::Integer(_) => "INTEGER",
        Token::Float(_) => "FLOAT",
        Token::Text(_) | Token::Null => "STRING",
    }
}

/// A recursive-descent parser that accepts what 3.2's LALR parsers accept and reports errors
/// with the expected-token lists of the bison state where they detect them.
struct Parser<'a> {
    scanner: Scanner<'a>,
    lookahead: Token<'a>,
    nesting: usize,
    token_name: fn(Token<'_>) -> &'static str,
}

impl<'a> Parser<'a> {
    fn new(source: &'a str, token_name: fn(Token<'_>) -> &'static str) -> Self {
        let mut scanner = Scanner::new(source);
        let lookahead = scanner.next_token();
        Parser {
            scanner,
            lookahead,
            nesting: 0,
            token_name,
        }
    }

    fn advance(&mut self) {
        self.lookahead = self.scanner.next_token();
    }

    fn syntax_error(&self, expected: &'static [&'static str]) -> ExprError {
        ExprError::Syntax {
            unexpected: (self.token_name)(self.lookahead),
            expected,
            location: self.scanner.location,
        }
    }

    fn enter_nesting(&mut self) -> Result<(), ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(ExprError::TooDeeplyNested {
                location: self.scanner.location,
            });
        }
        Ok(())
    }

    // --- REQUIREMENTS ---

    const BOOL_TERM_START: &'static [&'static str] = &["'!'", "STRING", "'('"];

    fn bool_chain(&mut self) -> Result<BoolChain, ExprError> {
        let first = self.bool_term()?;
        let mut rest = Vec::new();
        loop {
            let connective = match self.lookahead {
                Token::Symbol(b'&') => Connective::And,
                Token::Symbol(b'|') => Connective::Or,
                _ => break,
            };
            self.advance();
            rest.push((connective, self.bool_term()?));
        }
        Ok(BoolChain { first, rest })
    }

    fn bool_term(&mut self) -> Result<BoolTerm, ExprError> {
        let mut negated = false;
        while self.lookahead == Token::Symbol(b'!') {
            negated = !negated;
            self.advance();
        }
        let operand = match self.lookahead {
            Token::Symbol(b'(') => {
                self.enter_nesting()?;
                self.advance();
                let chain = self.bool_chain()?;
                if self.lookahead != Token::Symbol(b')') {
                    return Err(self.syntax_error(&["'&'", "'|'", "')'"]));
                }
                self.advance();
                self.nesting -= 1;
                BoolOperand::Group(Box::new(chain))
            }
            Token::Text(_) | Token::Null => BoolOperand::Comparison(self.comparison()?),
            _ => return Err(self.syntax_error(Self::BOOL_TERM_START)),
        };
        Ok(BoolTerm { negated, operand })
    }

    fn comparison(&mut self) -> Result<Comparison, ExprError> {
        let attribute = match self.lookahead {
            Token::Text(name) => Some(name.to_owned()),
            _ => None,
        };
        self.advance();
        let relation = match self.lookahead {
            Token::Symbol(b'=') => Relation::Equal,
            Token::Symbol(b'!') => {
                self.advance();
                if self.lookahead != Token::Symbol(b'=') {
                    return Err(self.syntax_error(&["'='"]));
                }
                Relation::NotEqual
            }
            Token::Symbol(b'>') => Relation::Greater,
            Token::Symbol(b'<') => Relation::Less,
            _ => return Err(self.syntax_error(&["'!'", "'='", "'>'", "'<'"])),
        };
        self.advance();
        let equality = matches!(relation, Relation::Equal | Relation::NotEqual);
        let test = match self.lookahead {
            Token::Integer(literal) => Test::Integer(relation, literal),
            Token::Float(literal) => Test::Float(relation, literal),
            Token::Text(pattern) if equality => Test::Pattern {
                equal: relation == Relation::Equal,
                pattern: Some(pattern.to_owned()),
            },
            Token::Null if equality => Test::Pattern {
                equal: relation == Relation::Equal,
                pattern: None,
            },
            _ if equality => return Err(self.syntax_error(&["INTEGER", "STRING", "FLOAT"])),
            _ => return Err(self.syntax_error(&["INTEGER", "FLOAT"])),
        };
        self.advance();
        Ok(Comparison { attribute, test })
    }

    // --- RANK ---

    fn sum(&mut self) -> Result<Sum, ExprError> {
        let first = self.product()?;
        let mut rest = Vec::new();
        loop {
            let operator = match self.lookahead {
                Token::Symbol(b'+') => AddOperator::Plus,
                Token::Symbol(b'-') => AddOperator::Minus,
                _ => break,
            };
            self.advance();
            rest.push((operator, self.product()?));
        }
        Ok(Sum { first, rest })
    }

    fn product(&mut self) -> Result<Product, ExprError> {
        let first = self.factor()?;
        let mut rest = Vec::new();
        loop {
            let operator = match self.lookahead {
                Token::Symbol(b'*') => MulOperator::Times,
                Token::Symbol(b'/') => MulOperator::Divide,
                _ => break,
            };
            self.advance();
            rest.push((operator, self.factor()?));
        }
        Ok(Product { first, rest })
    }

    fn factor(&mut self) -> Result<Factor, ExprError> {
        let factor = match self.lookahead {
            Token::Text(name) => Factor::Attribute(Some(name.to_owned())),
            Token::Null => Factor::Attribute(None),
            Token::Integer(value) => Factor::Number(value as f32),
            Token::Float(value) => Factor::Number(value),
            Token::Symbol(b'(') => {
                self.enter_nesting()?;
                self.advance();
                let sum = self.sum()?;
                if self.lookahead != Token::Symbol(b')') {
                    // bison would accept five tokens here, so it lists none.
                    return Err(self.syntax_error(&[]));
                }
                self.nesting -= 1;
                Factor::Group(Box::new(sum))
            }
            Token::Symbol(b'-') => {
                // A unary minus yields to `*` and `/`: it negates the whole product after it.
                let mut negative = false;
                while self.lookahead == Token::Symbol(b'-') {
                    negative = !negative;
                    self.advance();
                }
                self.enter_nesting()?;
                let operand = self.product()?;
                self.nesting -= 1;
                return Ok(Factor::Signed {
                    negative,
                    operand: Box::new(operand),
                });
            }
            _ => return Err(self.syntax_error(&[])),
        };
        self.advance();
        Ok(factor)
    }
}

// ------------------------------------------------------------------------------------------------
// RANK
// ------------------------------------------------------------------------------------------------

/// A parsed `RANK` expression, ready to be evaluated against many hosts; higher is better.
#[derive(Debug, Clone, PartialEq)]
pub struct Rank {
    /// `None` for an empty expression, whose value is 0.
    expression: Option<Sum>,
}

#[derive(Debug, Clone, PartialEq)]
struct Sum {
    first: Product,
    rest: Vec<(AddOperator, Product)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddOperator {
    Plus,
    Minus,
}

#[derive(Debug, Clone, PartialEq)]
struct Product {
    first: Factor,
    rest: Vec<(MulOperator, Factor)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MulOperator {
    Times,
    Divide,
}

#[derive(Debug, Clone, PartialEq)]
enum Factor {
    /// A host attribute; `None` for `""`. Missing or unreadable values count as 0.
    Attribute(Option<String>),
    Number(f32),
    Group(Box<Sum>),
    /// One or more unary minus signs (`negative` when their count is odd) before a product.
    Signed {
        negative: bool,
        operand: Box<Product>,
    },
}

/// Parses a `RANK` expression. An empty or blank-only text gives the constant 0.
pub fn parse_rank(source: &str) -> Result<Rank, ExprError> {
    let mut parser = Parser::new(source, arith_token_name);
    if parser.lookahead == Token::End {
        return Ok(Rank { expression: None });
    }
    let starts_factor = matches!(
        parser.lookahead,
        Token::Text(_)
            | Token::Null
            | Token::Integer(_)
            | Token::Float(_)
            | Token::Symbol(b'(')
            | Token::Symbol(b'-')
    );
    if !starts_factor {
        return Err(parser.syntax_error(&["$end"]));
    }
    let expression = parser.sum()?;
    if parser.lookahead != Token::End {
        return Err(parser.syntax_error(&["$end"]));
    }
    Ok(Rank {
        expression: Some(expression),
    })
}

impl Rank {
    /// The expression's value on a host, computed in single precision as 3.2 does; a division
    /// by zero gives an infinity or NaN.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> Option<String>) -> f64 {
        f64::from(self.eval_single(lookup))
    }

    /// The rank 3.2's scheduler orders hosts by: the single-precision value converted to `int`
    /// (truncated toward zero). NaN, infinities and values beyond `int` give `i32::MIN`, as the
    /// x86-64 conversion instruction does, so such hosts come last.
    pub fn eval_int(&self, lookup: &dyn Fn(&str) -> Option<String>) -> i32 {
        let value = self.eval_single(lookup);
        // NaN is in no range, so it lands here too.
        if !(-2_147_483_648.0..2_147_483_648.0).contains(&value) {
            i32::MIN
        } else {
            value as i32
        }
    }

    /// Whether the expression was empty (every host ranks 0).
    pub fn is_empty(&self) -> bool {
        self.expression.is_none()
    }

    fn eval_single(&self, lookup: &dyn Fn(&str) -> Option<String>) -> f32 {
        self.expression.as_ref().map_or(0.0, |sum| sum.eval(lookup))
    }
}

impl Sum {
    fn eval(&self, lookup: &dyn Fn(&str) -> Option<String>) -> f32 {
        let mut value = self.first.eval(lookup);
        for (operator, product) in &self.rest {
            let operand = product.eval(lookup);
            value = match operator {
                AddOperator::Plus => value + operand,
                AddOperator::Minus => value - operand,
            };
        }
        value
    }
}

impl Product {
    fn eval(&self, lookup: &dyn Fn(&str) -> Option<String>) -> f32 {
        let mut value = self.first.eval(lookup);
        for (operator, factor) in &self.rest {
            let operand = factor.eval(lookup);
            value = match operator {
                MulOperator::Times => value * operand,
                MulOperator::Divide => value / operand,
            };
        }
        value
    }
}

impl Factor {
    fn eval(&self, lookup: &dyn Fn(&str) -> Option<String>) -> f32 {
        match self {
            Factor::Attribute(name) => name
                .as_deref()
                .and_then(lookup)
                .map_or(0.0, |value| read_float(&value)),
            Factor::Number(value) => *value,
            Factor::Group(sum) => sum.eval(lookup),
            Factor::Signed { negative, operand } => {
                let value = operand.eval(lookup);
                if *negative {
                    -value
                } else {
                    value
                }
            }
        }
    }
}

/// bison's name for a token of `expr_arith.y`; symbols the grammar does not use are
/// `$undefined`.
fn arith_token_name(token: Token<'_>) -> &'static str {
    match token {
        Token::End => "$end",
        Token::Symbol(b'+') => "'+'",
        Token::Symbol(b'-') => "'-'",
        Token::Symbol(b'*') => "'*'",
        Token::Symbol(b'/') => "'/'",
        Token::Symbol(b'(') => "'('",
        Token::Symbol(b')') => "')'",
        Token::Symbol(_) => "$undefined",
        Token::Integer(_) => "INTEGER",
        Token::Float(_) => "FLOAT",
        Token::Text(_) | Token::Null => "STRING",
    }
}

// ------------------------------------------------------------------------------------------------
// Shell wildcards (glibc `fnmatch(pattern, text, 0)`)
// ------------------------------------------------------------------------------------------------

/// One element of a wildcard pattern.
enum PatternItem {
    AnySequence,
    AnyCharacter,
    Literal(char),
    /// A bracket expression starting at this byte offset of the pattern.
    Bracket(usize),
    /// An element no character matches (a trailing backslash, an unknown `[:class:]`).
    Impossible,
}

/// Whether `text` matches the shell wildcard `pattern`, as glibc's `fnmatch` with no flags:
/// `*` matches any run (`/` and leading `.` included), `?` any one character, `[…]` a set
/// (`!` or `^` negates, `]` first is literal, ranges, `[:class:]` in the C locale), `\` quotes
/// the next character, and an unterminated `[` is a literal. Characters are Unicode scalar
/// values. Never allocates.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut pattern_at = 0;
    let mut text_at = 0;
    // Where to resume after the last `*`: the pattern after it, and the text it has absorbed up to.
    let mut resume: Option<(usize, usize)> = None;
    loop {
        if let Some((item, pattern_next)) = pattern_item(pattern, pattern_at) {
            if let PatternItem::AnySequence = item {
                pattern_at = pattern_next;
                resume = Some((pattern_at, text_at));
                continue;
            }
            if let Some(character) = text.get(text_at..).and_then(|rest| rest.chars().next()) {
                let (matched, pattern_next) = match item {
                    PatternItem::AnyCharacter => (true, pattern_next),
                    PatternItem::Literal(literal) => (literal == character, pattern_next),
                    PatternItem::Bracket(open) => match bracket_match(pattern, open, character) {
                        BracketOutcome::Matched { matched, end } => (matched, end),
                        BracketOutcome::Unterminated => ('[' == character, open + 1),
                        BracketOutcome::Invalid => (false, pattern_next),
                    },
                    PatternItem::Impossible | PatternItem::AnySequence => (false, pattern_next),
                };
                if matched {
                    pattern_at = pattern_next;
                    text_at += character.len_utf8();
                    continue;
                }
            }
        } else if text_at == text.len() {
            return true;
        }
        // Mismatch: let the last `*` absorb one more character, if there is one.
        match resume {
            Some((after_star, absorbed)) => {
                let Some(character) = text.get(absorbed..).and_then(|rest| rest.chars().next())
                else {
                    return false;
                };
                let absorbed = absorbed + character.len_utf8();
                resume = Some((after_star, absorbed));
                pattern_at = after_star;
                text_at = absorbed;
            }
            None => return false,
        }
    }
}

/// The pattern element at byte `at` and the offset after it (for a bracket, after its `[`; the
/// bracket's real end depends on [`bracket_match`]); `None` at the end of the pattern.
fn pattern_item(pattern: &str, at: usize) -> Option<(PatternItem, usize)> {
    let character = pattern.get(at..)?.chars().next()?;
    let next = at + character.len_utf8();
    let item = match character {
        '*' => PatternItem::AnySequence,
        '?' => PatternItem::AnyCharacter,
        '[' => PatternItem::Bracket(at),
        '\\' => match pattern.get(next..).and_then(|rest| rest.chars().next()) {
            Some(quoted) => return Some((PatternItem::Literal(quoted), next + quoted.len_utf8())),
            // glibc: "Trailing \ loses."
            None => PatternItem::Impossible,
        },
        other => PatternItem::Literal(other),
    };
    Some((item, next))
}

enum BracketOutcome {
    /// A well-formed bracket expression ending before byte `end`.
    Matched { matched: bool, end: usize },
    /// No closing `]`: the `[` is an ordinary character.
    Unterminated,
    /// A malformed element (unknown class, bad collating element): glibc fails the whole match.
    Invalid,
}

/// Matches `character` against the bracket expression whose `[` is at byte `open`.
fn bracket_match(pattern: &str, open: usize, character: char) -> BracketOutcome {
    let mut cursor = PatternCursor {
        pattern,
        at: open + 1,
    };
    let negated = matches!(cursor.peek(), Some('!' | '^'));
    if negated {
        cursor.bump();
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let Some(current) = cursor.bump() else {
            return BracketOutcome::Unterminated;
        };
        if current == ']' && !first {
            return BracketOutcome::Matched {
                matched: matched != negated,
                end: cursor.at,
            };
        }
        first = false;
        let start = match current {
            '[' if cursor.peek() == Some(':') => match cursor.class_name() {
                Some(name) => {
                    match in_character_class(name, character) {
                        Some(true) => matched = true,
                        Some(false) => {}
                        None => return BracketOutcome::Invalid,
                    }
                    continue;
                }
                // glibc: not a class name after all, so the `[` is an ordinary member.
                None => '[',
            },
            '[' if matches!(cursor.peek(), Some('=' | '.')) => {
                cursor.single_character_element().unwrap_or('[')
            }
            '\\' => match cursor.bump() {
                Some(quoted) => quoted,
                None => return BracketOutcome::Unterminated,
            },
            other => other,
        };
        // `a-z` is a range unless the `-` is the last character before `]`.
        if cursor.peek() == Some('-') && !matches!(cursor.peek_second(), Some(']') | None) {
            cursor.bump();
            let end = match cursor.bump() {
                Some('\\') => match cursor.bump() {
                    Some(quoted) => quoted,
                    None => return BracketOutcome::Unterminated,
                },
                Some(end) => end,
                None => return BracketOutcome::Unterminated,
            };
            if start <= character && character <= end {
                matched = true;
            }
        } else if start == character {
            matched = true;
        }
    }
}

/// `[:name:]` classes in the C locale; `None` for an unknown name.
fn in_character_class(name: &str, character: char) -> Option<bool> {
    let member = match name {
        "alnum" => character.is_ascii_alphanumeric(),
        "alpha" => character.is_ascii_alphabetic(),
        "blank" => matches!(character, ' ' | '\t'),
        "cntrl" => character.is_ascii_control(),
        "digit" => character.is_ascii_digit(),
        "graph" => character.is_ascii_graphic(),
        "lower" => character.is_ascii_lowercase(),
        "print" => character.is_ascii_graphic() || character == ' ',
        "punct" => character.is_ascii_punctuation(),
        "space" => matches!(character, ' ' | '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r'),
        "upper" => character.is_ascii_uppercase(),
        "xdigit" => character.is_ascii_hexdigit(),
        _ => return None,
    };
    Some(member)
}

struct PatternCursor<'a> {
    pattern: &'a str,
    at: usize,
}

impl<'a> PatternCursor<'a> {
    fn peek(&self) -> Option<char> {
        self.pattern.get(self.at..)?.chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        let mut rest = self.pattern.get(self.at..)?.chars();
        rest.next()?;
        rest.next()
    }

    fn bump(&mut self) -> Option<char> {
        let character = self.peek()?;
        self.at += character.len_utf8();
        Some(character)
    }

    /// With the cursor on the `:` after a `[`: consumes `:name:]` for a name of lower-case
    /// letters and returns the name; `None` (cursor unmoved) otherwise.
    fn class_name(&mut self) -> Option<&'a str> {
        let name_start = self.at + 1;
        let rest = self.pattern.get(name_start..)?;
        let length = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        if !rest.get(length..)?.starts_with(":]") {
            return None;
        }
        self.at = name_start + length + 2;
        rest.get(..length)
    }

    /// With the cursor on the `=` or `.` after a `[`: consumes `=c=]` (`.c.]`) for a single
    /// character `c`, the only equivalence class or collating symbol of the C locale, and
    /// returns `c`; `None` (cursor unmoved) otherwise.
    fn single_character_element(&mut self) -> Option<char> {
        let mut rest = self.pattern.get(self.at..)?.chars();
        let delimiter = rest.next()?;
        let element = rest.next()?;
        if rest.next()? != delimiter || rest.next()? != ']' {
            return None;
        }
        self.at += 2 * delimiter.len_utf8() + element.len_utf8() + 1;
        Some(element)
    }
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn host(attributes: &[(&str, &str)]) -> HashMap<String, String> {
        attributes
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn parsed_requirements(source: &str) -> Requirements {
        match parse_requirements(source) {
            Ok(parsed) => parsed,
            Err(error) => panic!("{source:?} does not parse: {error}"),
        }
    }

    fn requirements_parse_error(source: &str) -> ExprError {
        match parse_requirements(source) {
            Ok(parsed) => panic!("{source:?} parsed as {parsed:?}"),
            Err(error) => error,
        }
    }

    fn parsed_rank(source: &str) -> Rank {
        match parse_rank(source) {
            Ok(parsed) => parsed,
            Err(error) => panic!("{source:?} does not parse: {error}"),
        }
    }

    fn rank_parse_error(source: &str) -> ExprError {
        match parse_rank(source) {
            Ok(parsed) => panic!("{source:?} parsed as {parsed:?}"),
            Err(error) => error,
        }
    }

    fn satisfies(requirements: &str, attributes: &[(&str, &str)]) -> bool {
        let host = host(attributes);
        parsed_requirements(requirements).matches(&|name| host.get(name).cloned())
    }

    fn requirements_error(requirements: &str) -> String {
        requirements_parse_error(requirements).to_string()
    }

    fn rank(rank: &str, attributes: &[(&str, &str)]) -> f64 {
        let host = host(attributes);
        parsed_rank(rank).eval(&|name| host.get(name).cloned())
    }

    fn rank_int(rank: &str, attributes: &[(&str, &str)]) -> i32 {
        let host = host(attributes);
        parsed_rank(rank).eval_int(&|name| host.get(name).cloned())
    }

    fn rank_error(rank: &str) -> String {
        rank_parse_error(rank).to_string()
    }

    // The dummy information driver's host of the recordings.
    const DUMMY_HOST: &[(&str, &str)] = &[
        ("HYPERVISOR", "dummy"),
        ("HOSTNAME", "dummyhost1"),
        ("TOTALCPU", "800"),
        ("CPUSPEED", "2.2GHz"),
        ("TOTALMEMORY", "16777216"),
        ("FREEMEMORY", "16777216"),
        ("USEDCPU", "0"),
        ("FREECPU", "800"),
        ("RUNNING_VMS", "3"),
        ("NAME", "dummyhost1"),
    ];

    #[test]
    fn empty_requirements_hold_everywhere() {
        for source in ["", "   ", "\t \t"] {
            let parsed = parsed_requirements(source);
            assert!(parsed.is_empty());
            assert!(parsed.matches(&|_| None));
        }
    }

    #[test]
    fn recorded_e06_broken_requirements_is_a_syntax_error() {
        // e06-malformed-template seq 16: accepted by one.vm.allocate, stored as is, never placed.
        let source = "CPUSPEED > ";
        let error = requirements_parse_error(source);
        assert_eq!(
            error.to_string(),
            "syntax error, unexpected $end, expecting INTEGER or FLOAT at line 1, columns 11:12"
        );
        assert_eq!(
            requirements_error_log_line(source, &error),
            "Error evaluating expresion: CPUSPEED > , error: syntax error, unexpected $end, \
             expecting INTEGER or FLOAT at line 1, columns 11:12"
        );
    }

    #[test]
    fn stratuslab_cluster_requirement() {
        // `--vm-requirements 'CLUSTER = \"test\"'` is stored as `CLUSTER = "test"`.
        assert!(satisfies(r#"CLUSTER = "test""#, &[("CLUSTER", "test")]));
        assert!(!satisfies(r#"CLUSTER = "test""#, &[("CLUSTER", "prod")]));
        assert!(!satisfies(r#"CLUSTER = "test""#, &[]));
        // A bare name on the right is a string too.
        assert!(satisfies("CLUSTER = test", &[("CLUSTER", "test")]));
        assert!(satisfies("HYPERVISOR = dummy", DUMMY_HOST));
    }

    #[test]
    fn string_comparisons_never_hold_on_missing_or_empty_values() {
        assert!(!satisfies(r#"CLUSTER = "*""#, &[]));
        assert!(!satisfies(r#"CLUSTER = "*""#, &[("CLUSTER", "")]));
        assert!(!satisfies(r#"CLUSTER != "test""#, &[]));
        assert!(!satisfies(r#"CLUSTER != "test""#, &[("CLUSTER", "")]));
        assert!(satisfies(r#"CLUSTER != "test""#, &[("CLUSTER", "prod")]));
        assert!(!satisfies(r#"CLUSTER != "test""#, &[("CLUSTER", "test")]));
        // `""` is a null pattern: neither `=` nor `!=` ever holds.
        assert!(!satisfies(r#"CLUSTER = """#, &[("CLUSTER", "x")]));
        assert!(!satisfies(r#"CLUSTER != """#, &[("CLUSTER", "x")]));
        // A `""` name reads as missing.
        assert!(!satisfies(r#""" = "*""#, &[("", "x")]));
        assert!(satisfies(r#""" = 0"#, &[]));
    }

    #[test]
    fn numeric_comparisons() {
        assert!(satisfies("FREECPU > 100", DUMMY_HOST));
        assert!(satisfies("FREECPU = 800", DUMMY_HOST));
        assert!(satisfies("FREECPU != 801", DUMMY_HOST));
        assert!(!satisfies("FREECPU < 800", DUMMY_HOST));
        assert!(satisfies("FREECPU > -1", DUMMY_HOST));
        assert!(satisfies("TOTALMEMORY > 1048575", DUMMY_HOST));
        // `istringstream >> int` stops at the first non-digit.
        assert!(satisfies("CPUSPEED = 2", DUMMY_HOST));
        // … and `>> float` reads the fraction.
        assert!(satisfies("CPUSPEED > 2.1", DUMMY_HOST));
        assert!(satisfies("CPUSPEED < 2.3", DUMMY_HOST));
        assert!(!satisfies("CPUSPEED = 2.0", DUMMY_HOST));
        // Single precision on both sides: 0.1 equals 0.1.
        assert!(satisfies("CPU = 0.1", &[("CPU", "0.1")]));
        assert!(satisfies("CPU = 1.0", &[("CPU", " +1")]));
        // A string compared with a number reads as 0, and so does a missing attribute.
        assert!(satisfies("HOSTNAME = 0", DUMMY_HOST));
        assert!(!satisfies("HOSTNAME > 0", DUMMY_HOST));
        assert!(satisfies("NOPE = 0", DUMMY_HOST));
        assert!(satisfies("NOPE < 1", DUMMY_HOST));
        assert!(satisfies("NOPE != 5", DUMMY_HOST));
        assert!(satisfies("NOPE = 0.0", DUMMY_HOST));
        // Out of `int` range reads as 0.
        assert!(satisfies("BIG = 0", &[("BIG", "99999999999")]));
        assert!(satisfies("BIG = -7", &[("BIG", "\t-7 units")]));
        // String comparison of a number is a wildcard match on its text.
        assert!(satisfies(r#"FREECPU = "8*""#, DUMMY_HOST));
        assert!(!satisfies(r#"FREECPU = "80""#, DUMMY_HOST));
    }

    #[test]
    fn integer_literals_follow_atoi() {
        // strtol saturates at the 64-bit limit, then the low 32 bits are kept.
        assert!(satisfies("X = -1", &[("X", "-1")]));
        assert_eq!(c_atoi("4294967297"), 1);
        assert_eq!(c_atoi("99999999999999999999"), -1);
        assert_eq!(c_atoi("-99999999999999999999"), 0);
        assert_eq!(c_atoi("-2147483648"), i32::MIN);
    }

    #[test]
    fn host_value_reading() {
        assert_eq!(read_int("  42abc"), 42);
        assert_eq!(read_int("+5"), 5);
        assert_eq!(read_int("- 5"), 0);
        assert_eq!(read_int("abc"), 0);
        assert_eq!(read_int("2147483648"), 0);
        assert_eq!(read_int("-2147483648"), i32::MIN);
        assert_eq!(read_float("2.2GHz"), 2.2_f32);
        assert_eq!(read_float(".5"), 0.5);
        assert_eq!(read_float("5."), 5.0);
        assert_eq!(read_float("1e3x"), 1000.0);
        assert_eq!(read_float("1e"), 1.0);
        assert_eq!(read_float("-1.5E-1"), -0.15);
        assert_eq!(read_float("inf"), 0.0);
        assert_eq!(read_float("1e40"), 0.0);
        assert_eq!(read_float("."), 0.0);
    }

    #[test]
    fn connectives_share_one_left_associative_level() {
        let host = &[("A", "1"), ("B", "0"), ("C", "0")];
        // (A = 1 | B = 1) & C = 1, not A = 1 | (B = 1 & C = 1).
        assert!(!satisfies("A = 1 | B = 1 & C = 1", host));
        assert!(satisfies("A = 1 | (B = 1 & C = 1)", host));
        // (A = 1 & B = 1) | C = 0
        assert!(satisfies("A = 1 & B = 1 | C = 0", host));
        // `!` negates only the next comparison or group.
        assert!(satisfies("! B = 1 & A = 1", host));
        assert!(!satisfies("! (B = 0 & A = 1)", host));
        assert!(satisfies("!!A = 1", host));
        assert!(!satisfies("!!!A = 1", host));
        assert!(satisfies("A = 1 & !B = 1 | C = 1", host));
        // `!=` is two tokens.
        assert!(satisfies("A ! = 2", host));
        assert!(satisfies("A!=2", host));
        assert!(satisfies("((A = 1))", host));
    }

    #[test]
    fn dropped_characters() {
        // Characters no scanner rule matches are dropped: quotes of the wrong kind, newlines.
        assert!(satisfies("CLUSTER = 'test'", &[("CLUSTER", "test")]));
        assert!(satisfies("A = 1\n& B = 2", &[("A", "1"), ("B", "2")]));
        assert!(satisfies("A = 1 $ # @", &[("A", "1")]));
        assert!(satisfies("_A = 1", &[("A", "1")]));
        // An unterminated quote is dropped, leaving a bare name.
        assert!(satisfies("A = \"x", &[("A", "x")]));
        // `node.example` is two names: a syntax error.
        assert_eq!(
            requirements_error("HOSTNAME = node.example"),
            "syntax error, unexpected STRING, expecting $end at line 1, columns 17:24"
        );
    }

    #[test]
    fn quoted_names_are_looked_up_verbatim() {
        assert!(satisfies(r#""FREE CPU" > 1"#, &[("FREE CPU", "5")]));
        assert!(satisfies(r#""TEMPLATE/CPU" = 5"#, &[("TEMPLATE/CPU", "5")]));
        assert!(!satisfies("hostname = dummyhost1", DUMMY_HOST));
    }

    #[test]
    fn requirements_syntax_errors() {
        let cases: &[(&str, &str)] = &[
            ("A", "syntax error, unexpected $end, expecting '!' or '=' or '>' or '<' at line 1, columns 1:2"),
            ("A =", "syntax error, unexpected $end, expecting INTEGER or STRING or FLOAT at line 1, columns 3:4"),
            ("A > x", "syntax error, unexpected STRING, expecting INTEGER or FLOAT at line 1, columns 5:6"),
            ("A ! 1", "syntax error, unexpected INTEGER, expecting '=' at line 1, columns 5:6"),
            ("A >= 1", "syntax error, unexpected '=', expecting INTEGER or FLOAT at line 1, columns 4:5"),
            ("5 = A", "syntax error, unexpected INTEGER, expecting $end at line 1, columns 1:2"),
            (")", "syntax error, unexpected ')', expecting $end at line 1, columns 1:2"),
            ("A = 1 B = 2", "syntax error, unexpected STRING, expecting $end at line 1, columns 7:8"),
            ("A = 1 &", "syntax error, unexpected $end, expecting '!' or STRING or '(' at line 1, columns 7:8"),
            ("A = 1 && B = 1", "syntax error, unexpected '&', expecting '!' or STRING or '(' at line 1, columns 8:9"),
            ("(A = 1", "syntax error, unexpected $end, expecting '&' or '|' or ')' at line 1, columns 6:7"),
            ("(A = 1 B", "syntax error, unexpected STRING, expecting '&' or '|' or ')' at line 1, columns 8:9"),
            ("()", "syntax error, unexpected ')', expecting '!' or STRING or '(' at line 1, columns 2:3"),
            ("!", "syntax error, unexpected $end, expecting '!' or STRING or '(' at line 1, columns 1:2"),
            ("A = 1)", "syntax error, unexpected ')', expecting $end at line 1, columns 6:7"),
            ("A = 1 * 2", "syntax error, unexpected $undefined, expecting $end at line 1, columns 7:8"),
            ("A = *", "syntax error, unexpected $undefined, expecting INTEGER or STRING or FLOAT at line 1, columns 5:6"),
            ("TRUE", "syntax error, unexpected $end, expecting '!' or '=' or '>' or '<' at line 1, columns 1:5"),
            // `""` alone is a STRING without a comparison: 3.2 never places such a VM.
            ("\"\"", "syntax error, unexpected $end, expecting '!' or '=' or '>' or '<' at line 1, columns 1:3"),
            ("A = 1 &\nB", "syntax error, unexpected $end, expecting '!' or '=' or '>' or '<' at line 2, columns 9:10"),
        ];
        for (source, message) in cases {
            assert_eq!(&requirements_error(source), message, "for {source:?}");
        }
    }

    #[test]
    fn nesting_is_bounded_without_overflowing_the_stack() {
        let nested = |depth: usize| format!("{}A = 1{}", "(".repeat(depth), ")".repeat(depth));
        assert!(satisfies(&nested(MAX_NESTING), &[("A", "1")]));
        let error = requirements_parse_error(&nested(MAX_NESTING + 1));
        assert!(matches!(error, ExprError::TooDeeplyNested { .. }));
        assert!(error
            .to_string()
            .starts_with("memory exhausted at line 1, columns "));
        // A huge input of unclosed parentheses is refused, not a crash.
        assert!(parse_requirements(&"(".repeat(1_000_000)).is_err());
        // Long flat chains and `!` runs need no nesting at all.
        let chain = vec!["A = 1"; 20_000].join(" & ");
        assert!(satisfies(&chain, &[("A", "1")]));
        let negations = format!("{}A = 1", "!".repeat(20_001));
        assert!(!satisfies(&negations, &[("A", "1")]));
    }

    #[test]
    fn one_parse_evaluates_against_many_hosts() {
        let parsed = parsed_requirements(r#"HOSTNAME = "node[0-4]*" & FREECPU > 99"#);
        let matching = (0..1000)
            .filter(|index| {
                let hostname = format!("node{index}");
                let free_cpu = (index % 200).to_string();
                parsed.matches(&|name| match name {
                    "HOSTNAME" => Some(hostname.clone()),
                    "FREECPU" => Some(free_cpu.clone()),
                    _ => None,
                })
            })
            .count();
        // node0…node4 and node00…node49x with FREECPU 100…199 (odd hundreds).
        let expected = (0..1000)
            .filter(|index| {
                let first_digit = index.to_string().as_bytes()[0];
                (b'0'..=b'4').contains(&first_digit) && index % 200 > 99
            })
            .count();
        assert_eq!(matching, expected);
    }

    // --- wildcards ---

    #[test]
    fn wildcard_basics() {
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("", "a"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*", "anything/at.all"));
        assert!(wildcard_match("node*", "node12"));
        assert!(!wildcard_match("node*", "xnode12"));
        assert!(wildcard_match("*.example.org", "a.b.example.org"));
        assert!(wildcard_match("*a*b*c", "xxaxxbxxbxc"));
        assert!(!wildcard_match("*a*b*c", "xxaxxbxxbx"));
        assert!(wildcard_match("a**b", "ab"));
        assert!(wildcard_match("?", "é"));
        assert!(!wildcard_match("?", ""));
        assert!(!wildcard_match("?", "ab"));
        assert!(wildcard_match("??-*", "ab-"));
        assert!(wildcard_match(".*", ".hidden"));
        assert!(wildcard_match("a/*", "a/b/c"));
    }

    #[test]
    fn wildcard_brackets() {
        assert!(wildcard_match("node[0-9]", "node7"));
        assert!(!wildcard_match("node[0-9]", "nodex"));
        assert!(wildcard_match("[abc]", "b"));
        assert!(!wildcard_match("[abc]", "d"));
        assert!(wildcard_match("[!abc]", "d"));
        assert!(!wildcard_match("[!abc]", "a"));
        assert!(wildcard_match("[^abc]", "d"));
        assert!(wildcard_match("[]]", "]"));
        assert!(wildcard_match("[!]]", "a"));
        assert!(!wildcard_match("[!]]", "]"));
        assert!(wildcard_match("[a-]", "-"));
        assert!(wildcard_match("[-a]", "-"));
        assert!(wildcard_match("[a-c-e]", "-"));
        assert!(wildcard_match("[a-c-e]", "e"));
        assert!(!wildcard_match("[a-c-e]", "d"));
        assert!(!wildcard_match("[z-a]", "m"));
        assert!(wildcard_match("[[:digit:]][[:alpha:]]", "1x"));
        assert!(wildcard_match("[[:upper:][:digit:]]*", "7abc"));
        assert!(!wildcard_match("[[:upper:]]", "a"));
        assert!(!wildcard_match("[[:nonsense:]a]", "a"));
        assert!(wildcard_match("[[=a=]]", "a"));
        assert!(wildcard_match("[[.-.]]", "-"));
        assert!(wildcard_match("[\\]]", "]"));
        assert!(wildcard_match("[a\\-z]", "-"));
        assert!(!wildcard_match("[a\\-z]", "m"));
        // An unterminated `[` is an ordinary character.
        assert!(wildcard_match("[", "["));
        assert!(wildcard_match("a[b", "a[b"));
        assert!(wildcard_match("*[", "xx["));
        assert!(!wildcard_match("[ab", "a"));
        assert!(wildcard_match("[é-ü]", "ö"));
    }

    #[test]
    fn wildcard_escapes() {
        assert!(wildcard_match("\\*", "*"));
        assert!(!wildcard_match("\\*", "a"));
        assert!(wildcard_match("a\\?c", "a?c"));
        assert!(wildcard_match("\\\\", "\\"));
        // glibc: a trailing backslash never matches.
        assert!(!wildcard_match("a\\", "a\\"));
        assert!(!wildcard_match("*\\", "abc\\"));
    }

    #[test]
    fn wildcards_in_requirements() {
        assert!(satisfies(r#"HOSTNAME = "dummy*""#, DUMMY_HOST));
        assert!(satisfies(r#"HOSTNAME = "dummyhost?""#, DUMMY_HOST));
        assert!(satisfies(r#"HOSTNAME = "*[0-9]""#, DUMMY_HOST));
        assert!(!satisfies(r#"HOSTNAME != "*[0-9]""#, DUMMY_HOST));
        assert!(satisfies(r#"HOSTNAME != "node*""#, DUMMY_HOST));
    }

    // --- RANK ---

    #[test]
    fn stratuslab_striping_rank() {
        assert_eq!(rank("- RUNNING_VMS", DUMMY_HOST), -3.0);
        assert_eq!(rank("-RUNNING_VMS", DUMMY_HOST), -3.0);
        assert_eq!(rank_int("- RUNNING_VMS", DUMMY_HOST), -3);
        assert_eq!(rank("- RUNNING_VMS", &[]), 0.0);
        assert_eq!(rank("FREECPU", DUMMY_HOST), 800.0);
        assert_eq!(rank("FREEMEMORY / 1024", DUMMY_HOST), 16384.0);
    }

    #[test]
    fn rank_precedence() {
        assert_eq!(rank("2 + 3 * 4", &[]), 14.0);
        assert_eq!(rank("(2 + 3) * 4", &[]), 20.0);
        assert_eq!(rank("10 - 4 - 3", &[]), 3.0);
        assert_eq!(rank("64 / 4 / 2", &[]), 8.0);
        assert_eq!(rank("- 2 + 3", &[]), 1.0);
        assert_eq!(rank("- - 2", &[]), 2.0);
        assert_eq!(rank("2 - - 3", &[]), 5.0);
        // The unary minus takes the whole product after it.
        assert_eq!(rank("8 / - 2 * 4", &[]), -1.0);
        assert_eq!(rank("8 / - - 2 * 4", &[]), 1.0);
        assert_eq!(rank("1 + 2.5", &[]), 3.5);
        assert_eq!(rank("CPUSPEED * 10", DUMMY_HOST), f64::from(2.2_f32 * 10.0));
        assert_eq!(rank("", &[]), 0.0);
        assert_eq!(rank_int(" ", &[]), 0);
        assert!(parsed_rank("").is_empty());
    }

    #[test]
    fn rank_division_by_zero_does_not_panic() {
        assert_eq!(rank("FREECPU / 0", DUMMY_HOST), f64::INFINITY);
        assert_eq!(rank_int("FREECPU / 0", DUMMY_HOST), i32::MIN);
        assert_eq!(rank_int("- FREECPU / 0", DUMMY_HOST), i32::MIN);
        assert!(rank("0 / 0", &[]).is_nan());
        assert_eq!(rank_int("0 / NOPE", &[]), i32::MIN);
        assert_eq!(rank_int("3000000000.0", &[]), i32::MIN);
        // `atoi` keeps the low 32 bits of an integer literal beyond `int`.
        assert_eq!(rank_int("3000000000", &[]), -1_294_967_296);
    }

    #[test]
    fn rank_truncates_toward_zero() {
        assert_eq!(rank_int("2.9", &[]), 2);
        assert_eq!(rank_int("-2.9", &[]), -2);
        assert_eq!(rank_int("7 / 2", &[]), 3);
        assert_eq!(rank_int("X", &[("X", "-1.5")]), -1);
    }

    #[test]
    fn rank_syntax_errors() {
        let cases: &[(&str, &str)] = &[
            // `-5` is one INTEGER token, so this is a name followed by a number.
            (
                "FREECPU -5",
                "syntax error, unexpected INTEGER, expecting $end at line 1, columns 9:11",
            ),
            (
                "RUNNING_VMS-1",
                "syntax error, unexpected INTEGER, expecting $end at line 1, columns 12:14",
            ),
            (
                "+ 1",
                "syntax error, unexpected '+', expecting $end at line 1, columns 1:2",
            ),
            (
                "1 +",
                "syntax error, unexpected $end at line 1, columns 3:4",
            ),
            ("(1", "syntax error, unexpected $end at line 1, columns 2:3"),
            (
                "(1 2)",
                "syntax error, unexpected INTEGER at line 1, columns 4:5",
            ),
            (
                "1 )",
                "syntax error, unexpected ')', expecting $end at line 1, columns 3:4",
            ),
            ("-", "syntax error, unexpected $end at line 1, columns 1:2"),
            (
                "A & B",
                "syntax error, unexpected $undefined, expecting $end at line 1, columns 3:4",
            ),
            (
                "2 ^ 3",
                "syntax error, unexpected $undefined, expecting $end at line 1, columns 3:4",
            ),
        ];
        for (source, message) in cases {
            assert_eq!(&rank_error(source), message, "for {source:?}");
        }
        let error = rank_parse_error("FREECPU -5");
        assert_eq!(
            rank_error_log_line("FREECPU -5", &error),
            "Computing host rank, expression: FREECPU -5, error: syntax error, unexpected \
             INTEGER, expecting $end at line 1, columns 9:11"
        );
    }

    #[test]
    fn rank_nesting_is_bounded() {
        let nested = |depth: usize| format!("{}1{}", "(".repeat(depth), ")".repeat(depth));
        assert_eq!(rank(&nested(MAX_NESTING), &[]), 1.0);
        assert!(matches!(
            parse_rank(&nested(MAX_NESTING + 1)),
            Err(ExprError::TooDeeplyNested { .. })
        ));
        let minus_chain = format!("1{}", " * - 1".repeat(MAX_NESTING + 1));
        assert!(matches!(
            parse_rank(&minus_chain),
            Err(ExprError::TooDeeplyNested { .. })
        ));
        let flat = vec!["1"; 20_000].join(" + ");
        assert_eq!(rank(&flat, &[]), 20_000.0);
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(source in any::<String>()) {
            let lookup = |name: &str| Some(name.to_string());
            if let Ok(requirements) = parse_requirements(&source) {
                requirements.matches(&lookup);
            }
            if let Ok(rank) = parse_rank(&source) {
                rank.eval(&lookup);
                rank.eval_int(&lookup);
            }
        }

        #[test]
        fn parsing_expression_like_text_never_panics(
            source in r#"[A-C0-9 .!&|=<>()*+/^"?\[\]\\:-]{0,40}"#,
            value in r#"[a-c0-9.*?\[\]!-]{0,8}"#,
        ) {
            let lookup = |_: &str| Some(value.clone());
            if let Ok(requirements) = parse_requirements(&source) {
                requirements.matches(&lookup);
            }
            if let Ok(rank) = parse_rank(&source) {
                rank.eval_int(&lookup);
            }
        }

        #[test]
        fn wildcard_matching_never_panics(pattern in any::<String>(), text in any::<String>()) {
            wildcard_match(&pattern, &text);
        }

        #[test]
        fn a_pattern_without_metacharacters_matches_only_itself(
            text in "[a-z0-9./ -]{0,12}",
            other in "[a-z0-9./ -]{0,12}",
        ) {
            prop_assert!(wildcard_match(&text, &text));
            prop_assert_eq!(wildcard_match(&text, &other), text == other);
        }
    }
}
