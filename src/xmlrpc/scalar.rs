//! The text of scalar value elements (`<int>`, `<double>`, `<base64>` ...)
//! read the way xmlrpc-c reads it, with its fault texts.
//!
//! Each function returns the message of the -503 fault xmlrpc-c would
//! raise; the caller adds the "Call XML not a proper XML-RPC call." prefix.

/// C `isspace()` in the C locale.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// Result of C `strtol()`/`strtoll()` in base 10 on a 64-bit `long`.
enum Strtol<'a> {
    /// The value and the unparsed rest (`endptr`); without digits the value
    /// is 0 and the rest is the whole text.
    Value(i64, &'a str),
    /// `ERANGE`: the digits do not fit 64 bits.
    OutOfRange,
}

fn strtol(text: &str) -> Strtol<'_> {
    let trimmed = text.trim_start_matches(is_c_space);
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let digits = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Strtol::Value(0, text);
    }
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    for b in unsigned.bytes().take(digits) {
        match magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(b - b'0')))
        {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
    }
    let value = if negative {
        if magnitude > i64::MIN.unsigned_abs() {
            None
        } else {
            Some(0i64.wrapping_sub_unsigned(magnitude))
        }
    } else {
        i64::try_from(magnitude).ok()
    };
    match value {
        Some(v) if !overflow => Strtol::Value(v, &unsigned[digits..]),
        _ => Strtol::OutOfRange,
    }
}

/// `<int>`, `<i4>` (and `<i1>`, `<i2>`): xmlrpc-c's `parseInt()`.
pub(crate) fn parse_int(text: &str) -> Result<i32, String> {
    if text.is_empty() {
        return Err("<int> XML element content is empty".to_owned());
    }
    if text.starts_with(is_c_space) {
        return Err(format!("<int> content '{text}' starts with white space"));
    }
    match strtol(text) {
        Strtol::OutOfRange => Err(format!(
            "<int> XML element value '{text}' represents a number beyond the range that \
             XML-RPC allows ({} - {})",
            i32::MIN,
            i32::MAX
        )),
        Strtol::Value(v, _) if v < i64::from(i32::MIN) => Err(format!(
            "<int> value {v} is below the range allowed by XML-RPC (minimum is {})",
            i32::MIN
        )),
        Strtol::Value(v, _) if v > i64::from(i32::MAX) => Err(format!(
            "<int> value {v} is above the range allowed by XML-RPC (maximum is {})",
            i32::MAX
        )),
        Strtol::Value(_, tail) if !tail.is_empty() => Err(format!(
            "<int> value '{text}' contains non-numerical junk: '{tail}'"
        )),
        Strtol::Value(v, _) => {
            i32::try_from(v).map_err(|_| format!("<int> value {v} is out of range"))
        }
    }
}

/// `<i8>`: xmlrpc-c's `parseI8()`.
pub(crate) fn parse_i8(text: &str) -> Result<i64, String> {
    if text.is_empty() {
        return Err("<i8> XML element content is empty".to_owned());
    }
    if text.starts_with(is_c_space) {
        return Err(format!("<i8> content '{text}' starts with white space"));
    }
    match strtol(text) {
        // xmlrpc-c prints the 64-bit limits with "%d", which on x86-64
        // shows their low 32 bits: 0 and -1.
        Strtol::OutOfRange => Err(format!(
            "<i8> XML element value '{text}' represents a number beyond the range that \
             XML-RPC allows (0 - -1)"
        )),
        Strtol::Value(_, tail) if !tail.is_empty() => Err(format!(
            "<i8> value '{text}' contains non-numerical junk: '{tail}'"
        )),
        Strtol::Value(v, _) => Ok(v),
    }
}

/// `<boolean>`: exactly `0` or `1`.
pub(crate) fn parse_boolean(text: &str) -> Result<bool, String> {
    match text {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(format!(
            "<boolean> XML element content must be either '0' or '1' according to \
             XML-RPC.  This one has '{text}'"
        )),
    }
}

/// xmlrpc-c's own reading of a double: sign, digits, at most one point.
fn parse_xmlrpc_double(text: &str) -> Result<f64, String> {
    let mantissa = text.strip_prefix(['-', '+']).unwrap_or(text);
    let mut seen_point = false;
    let mut seen_digit = false;
    for (i, c) in mantissa.char_indices() {
        match c {
            '.' if seen_point => return Err("Two decimal points".to_owned()),
            '.' => seen_point = true,
            '0'..='9' => seen_digit = true,
            _ => {
                return Err(format!(
                    "Garbage (not sign, digit, or period) starting at '{}'",
                    &mantissa[i..]
                ))
            }
        }
    }
    if !seen_digit {
        return Err("No digits".to_owned());
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err("Value exceeds the size allowed by XML-RPC".to_owned()),
    }
}

/// The C library `strtod()` xmlrpc-c falls back to, for the forms it
/// accepts beyond XML-RPC (exponents, leading blanks, `inf`, `nan`); the
/// whole text must be used and the result must not over- or underflow.
/// Hexadecimal floats are not accepted.
fn parse_with_strtod(text: &str) -> Option<f64> {
    let t = text.trim_start_matches(is_c_space);
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    let lower = unsigned.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return t.parse::<f64>().ok();
    }
    let bytes = unsigned.as_bytes();
    let mut i = 0;
    let int_digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_digits = bytes[j.min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        // Without exponent digits strtod stops before the `e`: junk.
        if exp_digits == 0 {
            return None;
        }
        i = j + exp_digits;
    }
    if i != bytes.len() {
        return None;
    }
    let value = t.parse::<f64>().ok()?;
    let has_nonzero_digit = unsigned
        .bytes()
        .take(int_digits + 1 + frac_digits)
        .any(|b| (b'1'..=b'9').contains(&b));
    let overflow = value.is_infinite();
    let underflow = has_nonzero_digit && (value == 0.0 || value.abs() < f64::MIN_POSITIVE);
    (!overflow && !underflow).then_some(value)
}

/// `<double>`: xmlrpc-c's `parseDouble()`.
pub(crate) fn parse_double(text: &str) -> Result<f64, String> {
    parse_xmlrpc_double(text).or_else(|why| {
        parse_with_strtod(text).ok_or_else(|| {
            format!("<double> element value '{text}' is not a valid floating point number.  {why}")
        })
    })
}

/// The fields of a `<dateTime.iso8601>`, for range checking.
struct DateTimeFields {
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

/// Matches xmlrpc-c's two accepted forms (POSIX regexes, case-insensitive):
/// `YYYY[-]MM[-]DDTHH[:]MM[:]SS[.][fraction]` and the same with a
/// `Z`/`+`/`-` zone and 2 to 4 zone digits.
fn match_datetime(text: &str) -> Option<DateTimeFields> {
    let b = text.as_bytes();
    let mut i = 0;
    let number = |len: usize, i: &mut usize| -> Option<u32> {
        let digits = b.get(*i..*i + len)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *i += len;
        Some(
            digits
                .iter()
                .fold(0, |acc, d| acc * 10 + u32::from(d - b'0')),
        )
    };
    let optional = |c: u8, i: &mut usize| {
        if b.get(*i) == Some(&c) {
            *i += 1;
        }
    };
    number(4, &mut i)?;
    optional(b'-', &mut i);
    let month = number(2, &mut i)?;
    optional(b'-', &mut i);
    let day = number(2, &mut i)?;
    if !matches!(b.get(i), Some(b'T' | b't')) {
        return None;
    }
    i += 1;
    let hour = number(2, &mut i)?;
    optional(b':', &mut i);
    let minute = number(2, &mut i)?;
    optional(b':', &mut i);
    let second = number(2, &mut i)?;
    let rest = &b[i..];
    let form_one = {
        let frac = rest.strip_prefix(b".").unwrap_or(rest);
        frac.iter().all(u8::is_ascii_digit)
    };
    let form_two = match rest.split_first() {
        Some((b'Z' | b'z' | b'+' | b'-', digits)) => {
            digits.is_empty()
                || ((2..=4).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit))
        }
        _ => false,
    };
    (form_one || form_two).then_some(DateTimeFields {
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// `<dateTime.iso8601>`: xmlrpc-c's `xmlrpc_parseDatetime()`. The value is
/// kept as its text.
pub(crate) fn parse_datetime(text: &str) -> Result<String, String> {
    let Some(dt) = match_datetime(text) else {
        return Err(format!(
            "value '{text}' is not of any form we recognize for a <dateTime.iso8601> element"
        ));
    };
    if !(1..=12).contains(&dt.month) {
        return Err(format!(
            "Month of year value {} is not in the range 1-12",
            dt.month
        ));
    }
    if !(1..=31).contains(&dt.day) {
        return Err(format!(
            "Day of month value {} is not in the range 1-31",
            dt.day
        ));
    }
    if dt.hour > 23 {
        return Err(format!(
            "Hour of day value {} is not in the range 0-23",
            dt.hour
        ));
    }
    if dt.minute > 59 {
        return Err(format!(
            "Minute of hour value {} is not in the range 0-59",
            dt.minute
        ));
    }
    if dt.second > 59 {
        return Err(format!(
            "Second of minute value {} is not in the range 0-59",
            dt.second
        ));
    }
    Ok(text.to_owned())
}

/// Value of a base64 digit, `=` counting as 0 (xmlrpc-c's decode table).
fn base64_digit(c: u8) -> Option<u32> {
    match c {
        b'A'..=b'Z' => Some(u32::from(c - b'A')),
        b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// `<base64>`: xmlrpc-c's lenient `xmlrpc_base64_decode()`. Characters
/// outside the alphabet are skipped; every byte is read modulo 128 (so the
/// bytes of non-ASCII characters can count as digits), like xmlrpc-c.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let mut bits: u32 = 0;
    let mut bit_count = 0;
    let mut padding = 0usize;
    for byte in text.bytes() {
        let c = byte & 0x7F;
        if matches!(c, b'\r' | b'\n' | b' ') {
            continue;
        }
        if c == b'=' {
            padding += 1;
        }
        let Some(digit) = base64_digit(c) else {
            continue;
        };
        bits = ((bits << 6) | digit) & 0xFFFF;
        bit_count += 6;
        if bit_count >= 8 {
            bit_count -= 8;
            out.push(((bits >> bit_count) & 0xFF) as u8);
            bits &= (1 << bit_count) - 1;
        }
    }
    if bit_count != 0 {
        return Err("Incorrect Base64 padding".to_owned());
    }
    if padding > out.len() || padding > 2 {
        return Err("Malformed Base64 data".to_owned());
    }
    out.truncate(out.len() - padding);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_like_xmlrpc_c() {
        assert_eq!(parse_int("42"), Ok(42));
        assert_eq!(parse_int("-1"), Ok(-1));
        assert_eq!(parse_int("+7"), Ok(7));
        assert_eq!(parse_int("-2147483648"), Ok(i32::MIN));
        assert_eq!(
            parse_int("abc"),
            Err("<int> value 'abc' contains non-numerical junk: 'abc'".into())
        );
        assert_eq!(
            parse_int("2147483648"),
            Err(
                "<int> value 2147483648 is above the range allowed by XML-RPC \
                 (maximum is 2147483647)"
                    .into()
            )
        );
        assert_eq!(
            parse_int("-2147483649"),
            Err(
                "<int> value -2147483649 is below the range allowed by XML-RPC \
                 (minimum is -2147483648)"
                    .into()
            )
        );
        assert_eq!(
            parse_int("99999999999999999999"),
            Err(
                "<int> XML element value '99999999999999999999' represents a number beyond \
                 the range that XML-RPC allows (-2147483648 - 2147483647)"
                    .into()
            )
        );
        assert_eq!(
            parse_int(""),
            Err("<int> XML element content is empty".into())
        );
        assert_eq!(
            parse_int(" 1"),
            Err("<int> content ' 1' starts with white space".into())
        );
        assert_eq!(
            parse_int("1 "),
            Err("<int> value '1 ' contains non-numerical junk: ' '".into())
        );
        assert_eq!(
            parse_int("9999999999x"),
            Err(
                "<int> value 9999999999 is above the range allowed by XML-RPC \
                 (maximum is 2147483647)"
                    .into()
            )
        );
    }

    #[test]
    fn i8s_like_xmlrpc_c() {
        assert_eq!(parse_i8("1099511627776"), Ok(1_099_511_627_776));
        assert_eq!(parse_i8("-9223372036854775808"), Ok(i64::MIN));
        assert!(parse_i8("9223372036854775808").is_err());
        assert_eq!(
            parse_i8("12a"),
            Err("<i8> value '12a' contains non-numerical junk: 'a'".into())
        );
    }

    #[test]
    fn booleans_are_zero_or_one() {
        assert_eq!(parse_boolean("1"), Ok(true));
        assert_eq!(parse_boolean("0"), Ok(false));
        assert_eq!(
            parse_boolean("true"),
            Err(
                "<boolean> XML element content must be either '0' or '1' according to \
                 XML-RPC.  This one has 'true'"
                    .into()
            )
        );
    }

    #[test]
    fn doubles_like_xmlrpc_c() {
        assert_eq!(parse_double("1.5"), Ok(1.5));
        assert_eq!(parse_double("-.5"), Ok(-0.5));
        assert_eq!(parse_double("3.4E6"), Ok(3.4e6));
        assert_eq!(parse_double(" 2"), Ok(2.0));
        assert_eq!(
            parse_double("1.2.3"),
            Err(
                "<double> element value '1.2.3' is not a valid floating point number.  \
                 Two decimal points"
                    .into()
            )
        );
        assert_eq!(
            parse_double("abc"),
            Err(
                "<double> element value 'abc' is not a valid floating point number.  \
                 Garbage (not sign, digit, or period) starting at 'abc'"
                    .into()
            )
        );
        assert_eq!(
            parse_double(""),
            Err(
                "<double> element value '' is not a valid floating point number.  No digits".into()
            )
        );
        assert!(parse_double("1e400").is_err());
    }

    #[test]
    fn datetimes_in_both_forms() {
        assert!(parse_datetime("20120101T00:00:00").is_ok());
        assert!(parse_datetime("2012-01-01T00:00:00.123").is_ok());
        assert!(parse_datetime("20120101t000000Z").is_ok());
        assert!(parse_datetime("20120101T00:00:00+0100").is_ok());
        assert_eq!(
            parse_datetime("2012"),
            Err(
                "value '2012' is not of any form we recognize for a <dateTime.iso8601> element"
                    .into()
            )
        );
        assert_eq!(
            parse_datetime("20121301T00:00:00"),
            Err("Month of year value 13 is not in the range 1-12".into())
        );
    }

    #[test]
    fn base64_is_lenient_like_xmlrpc_c() {
        assert_eq!(decode_base64("\nMA==\n"), Ok(b"0".to_vec()));
        assert_eq!(decode_base64(""), Ok(Vec::new()));
        assert_eq!(decode_base64("aGVs bG8=\r\n"), Ok(b"hello".to_vec()));
        assert_eq!(
            decode_base64("aGVsbG8*"),
            Err("Incorrect Base64 padding".into())
        );
        assert_eq!(decode_base64("===="), Err("Malformed Base64 data".into()));
    }
}
