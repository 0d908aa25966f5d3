//! Variable substitution in a VM's `CONTEXT` values and `REQUIREMENTS`, as 3.2 does it at
//! `one.vm.allocate` and `one.template.instantiate` (3.2 `src/vm/vm_var_parser.l`,
//! `src/vm/vm_var_syntax.y`; spec `xmlrpc-api.md` §8.5).
//!
//! [`substitute`] reproduces 3.2's flex scanner and bison grammar; what a variable means is the
//! [`VarResolver`]'s business (the VM side). 3.2 substitutes the `CONTEXT` vector as one text,
//! `K1=v1 @^_^@ K2=v2 …` (keys in sorted order), and splits the result again at ` @^_^@ `.
//!
//! # Forms
//!
//! | text | resolver call (names upper-cased) |
//! |---|---|
//! | `$VAR` | `single("VAR")` — also `$UID`, `$TEMPLATE` |
//! | `$VAR[ATTR]` | `vector_attr("VAR", "ATTR", None)` — also `$USER[ATTR]` |
//! | `$VAR[ATTR, KEY=VALUE]`, `$VAR[ATTR, KEY="VALUE"]` | `vector_attr("VAR", "ATTR", Some(("KEY", "VALUE")))` — also `$NETWORK[…]`, `$IMAGE[…]` |
//!
//! The filter value keeps its case; a resolver answer of `None` expands to nothing.
//!
//! # Where a variable ends, and what is a syntax error
//!
//! Text up to a `$` is copied. After `$` come a name of ASCII letters, digits and `_`, an
//! optional `[ATTR]` or `[ATTR, KEY=VALUE]` (blanks allowed around `[`, `,`, `=`, `]`), and then
//! one character that ends the variable and is copied (or the end of the text, or another `$`
//! that starts the next variable: `$A$B` is two variables). Consequences of 3.2's scanner:
//!
//! * The ending character must not be one that continues the syntax: `$A=1`, `$A, b`, `$A ]`,
//!   `$A[` without a name, and `$NIC[IP]x` (a name right after `]`) are syntax errors; `$VMID.`,
//!   `$VMID-x`, `$VMID ` and `$NIC[IP]:80` are fine.
//! * A `$` must be followed by a name: `$`, `a $ b`, `$$`, `pa$$word`, `$(cmd)` and `$5,` are
//!   syntax errors; a 3.2 allocation with such a `CONTEXT` value fails.
//! * A newline right after a variable name is dropped (flex's default rule), so `$A⏎B` is the
//!   two names `A` `B` — a syntax error — and `$A⏎` at the end loses its newline.
//! * `VALUE` is a double-quoted string (any characters but `"`, newlines included; `""` is empty)
//!   or a run of ASCII letters and digits (no `_`: `NETWORK=my_net` is a syntax error). Any other
//!   character between `=` and the value is dropped.
//! * An empty text is a syntax error (the grammar needs at least one piece); any other text
//!   without `$` comes back unchanged.
//!
//! [`VarError`] displays bison 2.5's message, e.g. `syntax error, unexpected EOA, expecting
//! VARIABLE or RSTRING at line 1, columns 2:3`. 3.2 logs `Error parsing: <text>. <message>` and
//! the allocation fails without that detail in the API message.
//!
//! Not reproduced: 3.2's scanner is not reentrant and keeps its start condition and line count
//! from one call to the next (after an error inside a variable, its next parse starts mid-
//! variable); here every call starts afresh at line 1, column 1.

use std::fmt;

/// What the variables of a VM's template mean. Every name arrives upper-cased.
pub trait VarResolver {
    /// `$NAME`: a single attribute of the VM template, or the special `UID` (owner id) and
    /// `TEMPLATE` (base64 of the VM document).
    fn single(&self, name: &str) -> Option<String>;

    /// `$VECTOR[ATTR]` (`filter` is `None`: the first `VECTOR` attribute) or
    /// `$VECTOR[ATTR, KEY=VALUE]` (the first `VECTOR` whose `KEY` is `VALUE`); also the special
    /// `NETWORK`, `IMAGE` and `USER` vectors.
    fn vector_attr(&self, vector: &str, attr: &str, filter: Option<(&str, &str)>)
        -> Option<String>;
}

/// Where the scanner was when the parser gave up: the line after the last text it matched, and
/// that text's 1-based byte offsets counted over the whole input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarErrorLocation {
    pub line: u32,
    pub first_column: u32,
    pub last_column: u32,
}

impl fmt::Display for VarErrorLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at line {}, columns {}:{}",
            self.line, self.first_column, self.last_column
        )
    }
}

/// Why a text cannot be substituted; displays as 3.2's parser message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VarError {
    /// bison's `syntax error, unexpected X, expecting A or B`.
    #[error("syntax error, unexpected {unexpected}{expecting} {location}", expecting = expecting(.expected))]
    Syntax {
        unexpected: &'static str,
        expected: &'static [&'static str],
        location: VarErrorLocation,
    },
}

/// bison's `, expecting A or B` tail.
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

/// Expands the variables of `text`. See the module documentation for the exact rules.
pub fn substitute(text: &str, ctx: &dyn VarResolver) -> Result<String, VarError> {
    let mut scanner = Scanner::new(text);
    // Bytes, because 3.2 copies the character that ends a variable as one byte and the rest of
    // a multi-byte character with the text after it; the pieces join back into valid UTF-8.
    let mut expanded: Vec<u8> = Vec::with_capacity(text.len());
    let mut any_piece = false;
    loop {
        let token = scanner.next_token();
        match token {
            Token::End if any_piece => break,
            Token::Text(piece) => expanded.extend_from_slice(piece),
            Token::Name(name) => expand_variable(&mut scanner, name, ctx, &mut expanded)?,
            _ => {
                let expected: &'static [&'static str] = if any_piece {
                    &["$end", "VARIABLE", "RSTRING"]
                } else {
                    &["VARIABLE", "RSTRING"]
                };
                return Err(scanner.syntax_error(token, expected));
            }
        }
        any_piece = true;
    }
    Ok(String::from_utf8(expanded)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned()))
}

/// Parses the rest of a variable whose name has just been read, and appends its expansion and
/// the character that ended it.
fn expand_variable(
    scanner: &mut Scanner<'_>,
    name: &[u8],
    ctx: &dyn VarResolver,
    expanded: &mut Vec<u8>,
) -> Result<(), VarError> {
    let name = upper_name(name);
    let (value, ending) = match scanner.next_token() {
        Token::EndOfVariable(ending) => (ctx.single(&name), ending),
        Token::OpenBracket => {
            let attr = match scanner.next_token() {
                Token::Name(attr) => upper_name(attr),
                other => return Err(scanner.syntax_error(other, &["VARIABLE"])),
            };
            match scanner.next_token() {
                Token::CloseBracket => {
                    let ending = scanner.expect_end_of_variable()?;
                    (ctx.vector_attr(&name, &attr, None), ending)
                }
                Token::Comma => {
                    let key = match scanner.next_token() {
                        Token::Name(key) => upper_name(key),
                        other => return Err(scanner.syntax_error(other, &["VARIABLE"])),
                    };
                    match scanner.next_token() {
                        Token::Equal => {}
                        other => return Err(scanner.syntax_error(other, &["EQUAL"])),
                    }
                    let filter_value = match scanner.next_token() {
                        Token::Value(value) => String::from_utf8_lossy(value),
                        other => return Err(scanner.syntax_error(other, &["STRING"])),
                    };
                    match scanner.next_token() {
                        Token::CloseBracket => {}
                        other => return Err(scanner.syntax_error(other, &["CBRACKET"])),
                    }
                    let ending = scanner.expect_end_of_variable()?;
                    let filter = Some((key.as_str(), filter_value.as_ref()));
                    (ctx.vector_attr(&name, &attr, filter), ending)
                }
                other => return Err(scanner.syntax_error(other, &["COMMA", "CBRACKET"])),
            }
        }
        other => return Err(scanner.syntax_error(other, &["OBRACKET", "EOA"])),
    };
    if let Some(value) = value {
        expanded.extend_from_slice(value.as_bytes());
    }
    expanded.extend(ending);
    Ok(())
}

/// 3.2 upper-cases names with the C library's `toupper`; names are ASCII.
fn upper_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name).to_ascii_uppercase()
}

// ------------------------------------------------------------------------------------------------
// Scanner
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// `$end`.
    End,
    /// `RSTRING`: text copied as is, up to the next `$`.
    Text(&'a [u8]),
    /// `VARIABLE`: `[A-Za-z0-9_]+`.
    Name(&'a [u8]),
    /// `OBRACKET`.
    OpenBracket,
    /// `CBRACKET`.
    CloseBracket,
    /// `COMMA`.
    Comma,
    /// `EQUAL`.
    Equal,
    /// `STRING`: a filter value, without its quotes.
    Value(&'a [u8]),
    /// `EOA`: the byte that ended a variable, copied after its expansion; `None` at the end of
    /// the text or before another `$`.
    EndOfVariable(Option<u8>),
}

impl Token<'_> {
    /// bison's name for the token.
    fn name(self) -> &'static str {
        match self {
            Token::End => "$end",
            Token::Text(_) => "RSTRING",
            Token::Name(_) => "VARIABLE",
            Token::OpenBracket => "OBRACKET",
            Token::CloseBracket => "CBRACKET",
            Token::Comma => "COMMA",
            Token::Equal => "EQUAL",
            Token::Value(_) => "STRING",
            Token::EndOfVariable(_) => "EOA",
        }
    }
}

/// flex start conditions of 3.2's scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Copying text.
    Text,
    /// After a `$`.
    Variable,
    /// After the `=` of a filter.
    FilterValue,
}

struct Scanner<'a> {
    bytes: &'a [u8],
    position: usize,
    mode: Mode,
    line: u32,
    location: VarErrorLocation,
}

fn is_blank(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner {
            bytes: text.as_bytes(),
            position: 0,
            mode: Mode::Text,
            line: 1,
            // bison 2.5 starts every parse at line 1, column 1.
            location: VarErrorLocation {
                line: 1,
                first_column: 1,
                last_column: 1,
            },
        }
    }

    fn syntax_error(&self, unexpected: Token<'_>, expected: &'static [&'static str]) -> VarError {
        VarError::Syntax {
            unexpected: unexpected.name(),
            expected,
            location: self.location,
        }
    }

    fn expect_end_of_variable(&mut self) -> Result<Option<u8>, VarError> {
        match self.next_token() {
            Token::EndOfVariable(ending) => Ok(ending),
            other => Err(self.syntax_error(other, &["EOA"])),
        }
    }

    /// Consumes `length` bytes as one scanner match and returns them, updating the location as
    /// 3.2's `YY_USER_ACTION` does (after `yylineno` has counted the match's newlines).
    fn consume(&mut self, length: usize) -> &'a [u8] {
        let bytes = self.bytes;
        let end = (self.position + length).min(bytes.len());
        let matched = &bytes[self.position..end];
        let newlines = matched.iter().filter(|&&byte| byte == b'\n').count();
        self.line = self
            .line
            .saturating_add(u32::try_from(newlines).unwrap_or(u32::MAX));
        let first_column = self.location.last_column;
        self.location = VarErrorLocation {
            line: self.line,
            first_column,
            last_column: first_column
                .saturating_add(u32::try_from(matched.len()).unwrap_or(u32::MAX)),
        };
        self.position = end;
        matched
    }

    fn next_token(&mut self) -> Token<'a> {
        let bytes = self.bytes;
        loop {
            let rest = &bytes[self.position..];
            match self.mode {
                Mode::Text => {
                    let Some(&first) = rest.first() else {
                        return Token::End;
                    };
                    if first == b'$' {
                        self.consume(1);
                        self.mode = Mode::Variable;
                        continue;
                    }
                    let length = rest
                        .iter()
                        .position(|&byte| byte == b'$')
                        .unwrap_or(rest.len());
                    return Token::Text(self.consume(length));
                }
                Mode::Variable => {
                    let Some(&first) = rest.first() else {
                        self.mode = Mode::Text;
                        return Token::EndOfVariable(None);
                    };
                    // Blanks belong to `=`, `,` and `]` when one follows them (longest match).
                    let blanks = rest.iter().take_while(|&&byte| is_blank(byte)).count();
                    let trailing_blanks = |from: usize| {
                        rest.get(from..).map_or(0, |tail| {
                            tail.iter().take_while(|&&byte| is_blank(byte)).count()
                        })
                    };
                    match rest.get(blanks) {
                        Some(b'=') => {
                            self.consume(blanks + 1 + trailing_blanks(blanks + 1));
                            self.mode = Mode::FilterValue;
                            return Token::Equal;
                        }
                        Some(b',') => {
                            self.consume(blanks + 1 + trailing_blanks(blanks + 1));
                            return Token::Comma;
                        }
                        Some(b']') => {
                            self.consume(blanks + 1);
                            return Token::CloseBracket;
                        }
                        _ => {}
                    }
                    match first {
                        b'[' => {
                            self.consume(1 + trailing_blanks(1));
                            return Token::OpenBracket;
                        }
                        byte if is_name_byte(byte) => {
                            let length =
                                rest.iter().take_while(|&&byte| is_name_byte(byte)).count();
                            return Token::Name(self.consume(length));
                        }
                        b'$' => {
                            self.consume(1);
                            return Token::EndOfVariable(None);
                        }
                        // `.` does not match a newline: flex's default rule drops it.
                        b'\n' => {
                            self.consume(1);
                        }
                        byte => {
                            self.consume(1);
                            self.mode = Mode::Text;
                            return Token::EndOfVariable(Some(byte));
                        }
                    }
                }
                Mode::FilterValue => {
                    let Some(&first) = rest.first() else {
                        return Token::End;
                    };
                    if first == b'"' {
                        if let Some(inner) = rest[1..].iter().position(|&byte| byte == b'"') {
                            let quoted = self.consume(inner + 2);
                            self.mode = Mode::Variable;
                            return Token::Value(&quoted[1..quoted.len() - 1]);
                        }
                    }
                    if first.is_ascii_alphanumeric() {
                        let length = rest
                            .iter()
                            .take_while(|byte| byte.is_ascii_alphanumeric())
                            .count();
                        self.mode = Mode::Variable;
                        return Token::Value(self.consume(length));
                    }
                    // No rule matches (an unpaired quote, a blank, `-`, …): dropped.
                    self.consume(1);
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::RefCell;

    /// A resolver over the VM 0 of the recording `02-vm-lifecycle`, which also records its calls.
    #[derive(Default)]
    struct RecordedVm {
        calls: RefCell<Vec<String>>,
    }

    impl VarResolver for RecordedVm {
        fn single(&self, name: &str) -> Option<String> {
            self.calls.borrow_mut().push(format!("single({name})"));
            match name {
                "VMID" => Some("0".into()),
                "UID" => Some("0".into()),
                "NAME" => Some("ttylinux-0".into()),
                "MEMORY" => Some("256".into()),
                "TEMPLATE" => Some("PFZNPjwvVk0+".into()),
                _ => None,
            }
        }

        fn vector_attr(
            &self,
            vector: &str,
            attr: &str,
            filter: Option<(&str, &str)>,
        ) -> Option<String> {
            self.calls
                .borrow_mut()
                .push(format!("vector_attr({vector}, {attr}, {filter:?})"));
            match (vector, attr, filter) {
                ("NIC", "IP", None | Some(("NETWORK", "private-lan"))) => {
                    Some("192.168.100.1".into())
                }
                ("NIC", "MAC", None) => Some("02:00:c0:a8:64:01".into()),
                ("DISK", "TARGET", None) => Some("hda".into()),
                ("DISK", "TARGET", Some(("TYPE", "swap"))) => Some("hdc".into()),
                ("NETWORK", "DNS", Some(("NETWORK_ID", "0") | ("NETWORK", "private-lan"))) => {
                    Some("192.168.100.254".into())
                }
                ("USER", "EMAIL", None) => Some("admin@example.org".into()),
                ("IMAGE", "PATH", Some(("IMAGE", "ttylinux"))) => Some("/srv/tty.img".into()),
                _ => None,
            }
        }
    }

    fn expand(text: &str) -> String {
        match substitute(text, &RecordedVm::default()) {
            Ok(expanded) => expanded,
            Err(error) => panic!("{text:?} does not substitute: {error}"),
        }
    }

    fn error(text: &str) -> String {
        match substitute(text, &RecordedVm::default()) {
            Ok(expanded) => panic!("{text:?} substituted to {expanded:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn recorded_02_context() {
        // `CONTEXT = [ HOSTNAME = "vm-$VMID", IP_PUBLIC = "$NIC[IP]",
        //   DNS = "$NETWORK[DNS, NETWORK_ID=0]", TARGET = "hdd", FILES = "" ]`, marshalled as
        // 3.2 does (sorted keys); oned stored DNS=192.168.100.254, FILES="", HOSTNAME=vm-0,
        // IP_PUBLIC=192.168.100.1, TARGET=hdd.
        let marshalled = "DNS=$NETWORK[DNS, NETWORK_ID=0] @^_^@ FILES=\"\" @^_^@ \
                          HOSTNAME=vm-$VMID @^_^@ IP_PUBLIC=$NIC[IP] @^_^@ TARGET=hdd";
        let vm = RecordedVm::default();
        assert_eq!(
            substitute(marshalled, &vm),
            Ok(
                "DNS=192.168.100.254 @^_^@ FILES=\"\" @^_^@ HOSTNAME=vm-0 @^_^@ \
                IP_PUBLIC=192.168.100.1 @^_^@ TARGET=hdd"
                    .to_string()
            )
        );
        assert_eq!(
            vm.calls.into_inner(),
            [
                "vector_attr(NETWORK, DNS, Some((\"NETWORK_ID\", \"0\")))",
                "single(VMID)",
                "vector_attr(NIC, IP, None)",
            ]
        );
    }

    #[test]
    fn recorded_e06_unresolved_context_variable_expands_to_nothing() {
        // `CONTEXT = [ IP = "$NIC[IP, NETWORK=\"nope\"]" ]`: accepted, stored as `<IP/>`.
        let vm = RecordedVm::default();
        assert_eq!(
            substitute("IP=$NIC[IP, NETWORK=\"nope\"]", &vm),
            Ok("IP=".to_string())
        );
        assert_eq!(
            vm.calls.into_inner(),
            ["vector_attr(NIC, IP, Some((\"NETWORK\", \"nope\")))"]
        );
        assert_eq!(
            expand("IP=$NIC[IP, NETWORK=\"nope\"] @^_^@ TARGET=hdb"),
            "IP= @^_^@ TARGET=hdb"
        );
    }

    #[test]
    fn recorded_e06_broken_requirements_pass_unchanged() {
        // `REQUIREMENTS = "CPUSPEED > "` is stored as sent; the scheduler then rejects it.
        assert_eq!(expand("CPUSPEED > "), "CPUSPEED > ");
        assert_eq!(expand(r#"CLUSTER = "test""#), r#"CLUSTER = "test""#);
    }

    #[test]
    fn text_without_variables_passes_unchanged() {
        for text in [
            "a",
            "\"\"",
            "ssh-rsa AAAAB3NzaC1yc2E...PUBLICKEY... root@vm\n",
            "two words, [brackets] = and, commas",
            "café ☕ multi\nline\r\n",
            "pdisk:http://127.0.0.1:26340/48ac4190-9a11-4a06-8bef-03fd97080eba",
        ] {
            assert_eq!(expand(text), text);
        }
    }

    #[test]
    fn empty_text_is_a_syntax_error() {
        assert_eq!(
            error(""),
            "syntax error, unexpected $end, expecting VARIABLE or RSTRING at line 1, columns 1:1"
        );
    }

    #[test]
    fn the_forms_of_section_8_5() {
        assert_eq!(expand("$VMID"), "0");
        assert_eq!(expand("uid=$UID"), "uid=0");
        assert_eq!(expand("$TEMPLATE"), "PFZNPjwvVk0+");
        assert_eq!(expand("$NIC[IP]"), "192.168.100.1");
        assert_eq!(expand("$DISK[TARGET]"), "hda");
        assert_eq!(expand("$DISK[TARGET, TYPE=\"swap\"]"), "hdc");
        assert_eq!(expand("$NIC[IP, NETWORK=\"private-lan\"]"), "192.168.100.1");
        assert_eq!(
            expand("$NETWORK[DNS, NETWORK=\"private-lan\"]"),
            "192.168.100.254"
        );
        assert_eq!(expand("$NETWORK[DNS, NETWORK_ID=0]"), "192.168.100.254");
        assert_eq!(expand("$IMAGE[PATH, IMAGE=\"ttylinux\"]"), "/srv/tty.img");
        assert_eq!(expand("$USER[EMAIL]"), "admin@example.org");
        // Unknown variables expand to nothing.
        assert_eq!(expand("<$NOPE>"), "<>");
        assert_eq!(expand("<$NIC[NOPE]>"), "<>");
        assert_eq!(expand("<$NETWORK[DNS, NETWORK_ID=7]>"), "<>");
    }

    #[test]
    fn names_are_upper_cased_and_filter_values_are_not() {
        let vm = RecordedVm::default();
        assert_eq!(
            substitute("$vmid $nic[ip, network=\"Private-LAN\"]", &vm),
            Ok("0 ".to_string())
        );
        assert_eq!(
            vm.calls.into_inner(),
            [
                "single(VMID)",
                "vector_attr(NIC, IP, Some((\"NETWORK\", \"Private-LAN\")))",
            ]
        );
    }

    #[test]
    fn where_a_variable_ends() {
        assert_eq!(expand("vm-$VMID.example.org"), "vm-0.example.org");
        assert_eq!(expand("$VMID-x"), "0-x");
        assert_eq!(expand("$VMID $MEMORY"), "0 256");
        assert_eq!(expand("$VMID$MEMORY"), "0256");
        assert_eq!(expand("$NIC[IP]:80"), "192.168.100.1:80");
        assert_eq!(
            expand("$NIC[IP]$NIC[MAC]"),
            "192.168.100.102:00:c0:a8:64:01"
        );
        assert_eq!(expand("$NIC[IP] $VMID"), "192.168.100.1 0");
        assert_eq!(expand("($VMID)"), "(0)");
        assert_eq!(expand("$VMID\t!"), "0\t!");
        assert_eq!(expand("$VMIDé"), "0é");
        assert_eq!(expand("$VMID é"), "0 é");
        assert_eq!(expand("$MEMORY€x"), "256€x");
        // Blanks are allowed inside the brackets.
        assert_eq!(expand("$NIC[ IP ]"), "192.168.100.1");
        assert_eq!(
            expand("$NIC[IP , NETWORK = \"private-lan\" ]."),
            "192.168.100.1."
        );
        // A newline right after a name is dropped.
        assert_eq!(expand("$VMID\n"), "0");
        assert_eq!(expand("$VMID\n\n."), "0.");
        assert_eq!(expand("$NIC[IP]\n"), "192.168.100.1");
    }

    #[test]
    fn filter_values() {
        // Quoted values may hold anything but a quote; `""` is the empty value.
        let vm = RecordedVm::default();
        assert!(substitute(
            "$NIC[IP, NETWORK=\"a, [b]=\nc\"]$NIC[IP, NETWORK=\"\"]",
            &vm,
        )
        .is_ok());
        assert_eq!(
            vm.calls.into_inner(),
            [
                "vector_attr(NIC, IP, Some((\"NETWORK\", \"a, [b]=\\nc\")))",
                "vector_attr(NIC, IP, Some((\"NETWORK\", \"\")))",
            ]
        );
        // Characters that start no value are dropped after `=`.
        let vm = RecordedVm::default();
        assert!(substitute("$NIC[IP, NETWORK=-\"x]$NIC[IP, ID=\t7]", &vm).is_ok());
        assert_eq!(
            vm.calls.into_inner(),
            [
                "vector_attr(NIC, IP, Some((\"NETWORK\", \"x\")))",
                "vector_attr(NIC, IP, Some((\"ID\", \"7\")))",
            ]
        );
    }

    #[test]
    fn syntax_errors() {
        let cases: &[(&str, &str)] = &[
            ("$", "syntax error, unexpected EOA, expecting VARIABLE or RSTRING at line 1, columns 1:2"),
            ("a $ b", "syntax error, unexpected EOA, expecting $end or VARIABLE or RSTRING at line 1, columns 4:5"),
            ("a$", "syntax error, unexpected EOA, expecting $end or VARIABLE or RSTRING at line 1, columns 2:3"),
            ("$$", "syntax error, unexpected EOA, expecting VARIABLE or RSTRING at line 1, columns 2:3"),
            ("pa$$word", "syntax error, unexpected EOA, expecting $end or VARIABLE or RSTRING at line 1, columns 4:5"),
            ("echo $(date)", "syntax error, unexpected EOA, expecting $end or VARIABLE or RSTRING at line 1, columns 7:8"),
            ("$VMID$", "syntax error, unexpected EOA, expecting $end or VARIABLE or RSTRING at line 1, columns 6:7"),
            ("price $5, ok", "syntax error, unexpected COMMA, expecting OBRACKET or EOA at line 1, columns 9:11"),
            ("${VMID}", "syntax error, unexpected EOA, expecting VARIABLE or RSTRING at line 1, columns 2:3"),
            ("$VMID[", "syntax error, unexpected EOA, expecting VARIABLE at line 1, columns 6:7"),
            ("$A=1", "syntax error, unexpected EQUAL, expecting OBRACKET or EOA at line 1, columns 3:4"),
            ("$A ]", "syntax error, unexpected CBRACKET, expecting OBRACKET or EOA at line 1, columns 3:5"),
            ("$A\nB", "syntax error, unexpected VARIABLE, expecting OBRACKET or EOA at line 2, columns 4:5"),
            ("$NIC[", "syntax error, unexpected EOA, expecting VARIABLE at line 1, columns 5:6"),
            ("$NIC[]", "syntax error, unexpected CBRACKET, expecting VARIABLE at line 1, columns 6:7"),
            ("$NIC[IP", "syntax error, unexpected EOA, expecting COMMA or CBRACKET at line 1, columns 6:8"),
            ("$NIC[IP]x", "syntax error, unexpected VARIABLE, expecting EOA at line 1, columns 9:10"),
            ("$NIC[IP][0]", "syntax error, unexpected OBRACKET, expecting EOA at line 1, columns 9:10"),
            ("$NIC[IP,]", "syntax error, unexpected CBRACKET, expecting VARIABLE at line 1, columns 9:10"),
            ("$NIC[IP, NETWORK]", "syntax error, unexpected CBRACKET, expecting EQUAL at line 1, columns 17:18"),
            ("$NIC[IP, NETWORK=", "syntax error, unexpected $end, expecting STRING at line 1, columns 17:18"),
            ("$NIC[IP, NETWORK=\"x", "syntax error, unexpected EOA, expecting CBRACKET at line 1, columns 19:20"),
            ("$NIC[IP, NETWORK=my_net]", "syntax error, unexpected VARIABLE, expecting CBRACKET at line 1, columns 20:24"),
            ("$NIC[IP, NETWORK=\"a\"]b", "syntax error, unexpected VARIABLE, expecting EOA at line 1, columns 22:23"),
            ("$NIC[IP, NETWORK=\"a\" x]", "syntax error, unexpected EOA, expecting CBRACKET at line 1, columns 21:22"),
            ("$NIC[IP, A=1, B=2]", "syntax error, unexpected COMMA, expecting CBRACKET at line 1, columns 13:15"),
            ("ok\n$é", "syntax error, unexpected EOA, expecting $end or VARIABLE or RSTRING at line 2, columns 5:6"),
        ];
        for (text, message) in cases {
            assert_eq!(&error(text), message, "for {text:?}");
        }
    }

    /// A resolver that knows nothing, for the properties.
    struct NoVariables;

    impl VarResolver for NoVariables {
        fn single(&self, _: &str) -> Option<String> {
            None
        }

        fn vector_attr(&self, _: &str, _: &str, _: Option<(&str, &str)>) -> Option<String> {
            None
        }
    }

    proptest! {
        #[test]
        fn substituting_arbitrary_text_never_panics(text in any::<String>()) {
            let _ = substitute(&text, &RecordedVm::default());
        }

        #[test]
        fn substituting_variable_like_text_never_panics(
            text in r#"[A-Za-z0-9_ \t\n$\[\],="é-]{0,40}"#,
        ) {
            let _ = substitute(&text, &RecordedVm::default());
        }

        #[test]
        fn text_without_dollar_is_unchanged(text in "[^$]{1,64}") {
            prop_assert_eq!(substitute(&text, &NoVariables), Ok(text.clone()));
        }

        #[test]
        fn unknown_variables_vanish_but_their_ending_stays(
            before in "[^$]{0,16}",
            name in "[A-Za-z0-9_]{1,8}",
            after in "[^$A-Za-z0-9_=,\\[\\]\n \t][^$]{0,16}",
        ) {
            let text = format!("{before}${name}{after}");
            prop_assert_eq!(substitute(&text, &NoVariables), Ok(format!("{before}{after}")));
        }
    }
}
