//! The scanner of 3.2's template language (`src/template/template_parser.l`, spec §8.1),
//! reproduced rule for rule: two contexts, longest match with ties going to the earlier rule,
//! unmatched bytes silently dropped, and flex's location bookkeeping.
//!
//! The scanner works on bytes, as the generated C scanner did: columns count bytes, and a
//! multi-byte character that no rule matches is dropped one byte at a time.

/// Terminals of the grammar, in bison's token-number order (`$end` first, then the order of
/// the `%token` declarations): "expecting A or B" lists follow this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Terminal {
    End,
    Equal,
    Comma,
    OBracket,
    CBracket,
    EqualEmpty,
    String,
    Variable,
}

impl Terminal {
    /// The name bison prints in its messages.
    pub(super) fn bison_name(self) -> &'static str {
        match self {
            Terminal::End => "$end",
            Terminal::Equal => "EQUAL",
            Terminal::Comma => "COMMA",
            Terminal::OBracket => "OBRACKET",
            Terminal::CBracket => "CBRACKET",
            Terminal::EqualEmpty => "EQUAL_EMPTY",
            Terminal::String => "STRING",
            Terminal::Variable => "VARIABLE",
        }
    }
}

/// A token; `text` is the name of a VARIABLE or the raw value of a STRING (outer quotes
/// removed, `\"` not yet unescaped), empty otherwise.
#[derive(Debug, Clone, Copy)]
pub(super) struct Token<'a> {
    pub terminal: Terminal,
    pub text: &'a [u8],
}

/// flex's `YY_USER_ACTION` bookkeeping, updated by every matched rule (skipped blanks, comments
/// and dropped bytes included) but not at end of input: `line` is the line number after the
/// match, the columns are the cumulative byte offsets (from 1) of its start and end. Bison
/// starts the columns at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Location {
    pub line: usize,
    pub first_column: usize,
    pub last_column: usize,
}

/// What a rule does once it has matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Comment,
    Blanks,
    Variable,
    Equal,
    EqualEmpty,
    Comma,
    CBracket,
    OBracket,
    QuotedString,
    BareString,
    /// No rule matched: flex's default rule echoes one byte (3.2 drops it).
    Unmatched,
}

pub(super) struct Lexer<'a> {
    input: &'a [u8],
    pos: usize,
    /// The VALUE start condition (entered after `=`), as opposed to INITIAL.
    in_value: bool,
    location: Location,
    /// `(from, at)`: the first newline at or after `from` is at `at` (the input length when
    /// there is none). Without it a last line of `#`s would be rescanned for every `#`.
    newline_search: (usize, usize),
}

impl<'a> Lexer<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        // 3.2 scans the C string of the template, which ends at the first NUL byte.
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Self {
            input: &bytes[..end],
            pos: 0,
            in_value: false,
            location: Location {
                line: 1,
                first_column: 1,
                last_column: 1,
            },
            newline_search: (usize::MAX, 0),
        }
    }

    /// Location of the last rule matched, as bison reports it in its error message.
    pub(super) fn location(&self) -> Location {
        self.location
    }

    /// The next token; `Terminal::End` at (and after) the end of the input.
    pub(super) fn next_token(&mut self) -> Token<'a> {
        loop {
            if self.pos >= self.input.len() {
                return Token {
                    terminal: Terminal::End,
                    text: &[],
                };
            }
            let (rule, len) = if self.in_value {
                self.match_value()
            } else {
                self.match_initial()
            };
            let start = self.pos;
            let end = (start + len).min(self.input.len());
            let matched = &self.input[start..end];
            self.pos = end;
            self.location.line += matched.iter().filter(|&&b| b == b'\n').count();
            self.location.first_column = self.location.last_column;
            self.location.last_column += matched.len();

            let punctuation = |terminal| Token {
                terminal,
                text: &[],
            };
            let token = match rule {
                Rule::Comment | Rule::Blanks | Rule::Unmatched => continue,
                Rule::Variable => Token {
                    terminal: Terminal::Variable,
                    text: matched,
                },
                Rule::Equal => {
                    self.in_value = true;
                    punctuation(Terminal::Equal)
                }
                Rule::EqualEmpty => punctuation(Terminal::EqualEmpty),
                Rule::Comma => punctuation(Terminal::Comma),
                Rule::CBracket => punctuation(Terminal::CBracket),
                Rule::OBracket => {
                    self.in_value = false;
                    punctuation(Terminal::OBracket)
                }
                Rule::QuotedString => {
                    self.in_value = false;
                    let without_quotes = matched.len().saturating_sub(1);
                    Token {
                        terminal: Terminal::String,
                        text: matched.get(1..without_quotes).unwrap_or(&[]),
                    }
                }
                Rule::BareString => {
                    self.in_value = false;
                    Token {
                        terminal: Terminal::String,
                        text: matched,
                    }
                }
            };
            return token;
        }
    }

    /// Rules of the INITIAL context, in the order of the 3.2 scanner.
    fn match_initial(&mut self) -> (Rule, usize) {
        let p = self.pos;
        let blanks = self.run(p, is_blank);
        let spaces = self.run(p, is_space);
        let after_blanks = self.byte(p + blanks);
        let after_spaces = self.byte(p + spaces);

        // `[[:blank:]]*#.*\n`: a comment needs its newline.
        let comment = match after_blanks {
            Some(b'#') => {
                let newline = self.newline_at_or_after(p + blanks + 1);
                if newline < self.input.len() {
                    newline + 1 - p
                } else {
                    0
                }
            }
            _ => 0,
        };
        // `[[:blank:]]*=[[:blank:]]*` and the same followed by a newline.
        let (equal, equal_empty) = match after_blanks {
            Some(b'=') => {
                let len = blanks + 1 + self.run(p + blanks + 1, is_blank);
                let empty = if self.byte(p + len) == Some(b'\n') {
                    len + 1
                } else {
                    0
                };
                (len, empty)
            }
            _ => (0, 0),
        };
        // `[[:blank:]\n]*,[[:blank:]\n]*` and `[[:blank:]\n]*\][[:blank:]\n]*`.
        let punctuation = |wanted: u8| match after_spaces {
            Some(b) if b == wanted => spaces + 1 + self.run(p + spaces + 1, is_space),
            _ => 0,
        };

        longest(&[
            (Rule::Comment, comment),
            (Rule::Blanks, spaces),
            (Rule::Variable, self.run(p, is_name_byte)),
            (Rule::Equal, equal),
            (Rule::EqualEmpty, equal_empty),
            (Rule::Comma, punctuation(b',')),
            (Rule::CBracket, punctuation(b']')),
        ])
    }

    /// Rules of the VALUE context, in the order of the 3.2 scanner.
    fn match_value(&self) -> (Rule, usize) {
        let p = self.pos;
        let blanks = self.run(p, is_blank);
        // `[[:blank:]]*\[[[:blank:]\n]*`
        let obracket = match self.byte(p + blanks) {
            Some(b'[') => blanks + 1 + self.run(p + blanks + 1, is_space),
            _ => 0,
        };
        longest(&[
            (Rule::OBracket, obracket),
            (Rule::QuotedString, self.quoted_string_len(p)),
            (Rule::BareString, self.run(p, is_bare_value_byte)),
        ])
    }

    /// Length of the longest match of `"([^"]|\\")+"` at `p`, 0 if none.
    ///
    /// Every `"` at least two bytes after the opening one can close the string. The match can
    /// only extend past a `"` that is preceded by a backslash (read as the pair `\"`), so the
    /// scan stops at the first other `"`; the longest match ends at the last closing candidate.
    fn quoted_string_len(&self, p: usize) -> usize {
        if self.byte(p) != Some(b'"') {
            return 0;
        }
        let mut longest_end = 0;
        let after_open = self.input.get(p + 1..).unwrap_or(&[]);
        for (offset, &b) in after_open.iter().enumerate() {
            if b != b'"' {
                continue;
            }
            let quote = p + 1 + offset;
            if quote >= p + 2 {
                longest_end = quote + 1;
            }
            let escaped = quote >= p + 2 && self.byte(quote - 1) == Some(b'\\');
            if !escaped {
                break;
            }
        }
        longest_end.saturating_sub(p)
    }

    fn newline_at_or_after(&mut self, from: usize) -> usize {
        let (searched_from, found_at) = self.newline_search;
        if from < searched_from || from > found_at {
            let found = self
                .input
                .get(from..)
                .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
                .map_or(self.input.len(), |offset| from + offset);
            self.newline_search = (from, found);
        }
        self.newline_search.1
    }

    fn byte(&self, index: usize) -> Option<u8> {
        self.input.get(index).copied()
    }

    /// Number of bytes from `from` on that satisfy `accepts`.
    fn run(&self, from: usize, accepts: fn(u8) -> bool) -> usize {
        self.input
            .get(from..)
            .map_or(0, |rest| rest.iter().take_while(|&&b| accepts(b)).count())
    }
}

/// flex's choice among the rules that match: the longest match, the earliest rule on a tie; no
/// match at all means the default rule, one byte.
fn longest(candidates: &[(Rule, usize)]) -> (Rule, usize) {
    let mut best = (Rule::Unmatched, 1);
    let mut best_len = 0;
    for &(rule, len) in candidates {
        if len > best_len {
            best = (rule, len);
            best_len = len;
        }
    }
    best
}

/// `[[:blank:]]` in the C locale.
fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `[[:blank:]\n]`.
fn is_space(b: u8) -> bool {
    is_blank(b) || b == b'\n'
}

/// `[[:alnum:]_]` in the C locale.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[^=#[:blank:]\n,\[\]]`: what an unquoted value may contain.
pub(super) fn is_bare_value_byte(b: u8) -> bool {
    !matches!(b, b'=' | b'#' | b' ' | b'\t' | b'\n' | b',' | b'[' | b']')
}
