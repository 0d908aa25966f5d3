//! Query strings and posted forms (`application/x-www-form-urlencoded`), bounded.

/// At most this many pairs are kept; the dashboard's forms have a handful.
const MAX_PAIRS: usize = 64;
/// Longer values are cut (no field of the dashboard needs more).
const MAX_VALUE: usize = 1024;

#[derive(Debug, Default, Clone)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn parse(text: &str) -> Form {
        let pairs = form_urlencoded::parse(text.as_bytes())
            .take(MAX_PAIRS)
            .map(|(k, v)| {
                let mut v = v.into_owned();
                if v.len() > MAX_VALUE {
                    let mut cut = MAX_VALUE;
                    while !v.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    v.truncate(cut);
                }
                (k.into_owned(), v)
            })
            .collect();
        Form { pairs }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, trimmed, `""` when absent.
    pub fn text(&self, key: &str) -> &str {
        self.get(key).map(str::trim).unwrap_or("")
    }

    /// A page number (from 1), 1 when absent or not a number.
    pub fn page(&self) -> usize {
        self.get("page")
            .and_then(|p| p.trim().parse::<usize>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }

    /// An integer value.
    pub fn int(&self, key: &str) -> Option<i32> {
        self.get(key).and_then(|v| v.trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_bounds() {
        let f = Form::parse("a=1&b=x+y%26z&a=2&page=0");
        assert_eq!(f.get("a"), Some("1"));
        assert_eq!(f.get("b"), Some("x y&z"));
        assert_eq!(f.page(), 1);
        assert_eq!(Form::parse("page=7").page(), 7);
        assert_eq!(Form::parse("page=x").page(), 1);
        let long = format!("v={}", "é".repeat(MAX_VALUE));
        assert!(Form::parse(&long).get("v").unwrap().len() <= MAX_VALUE);
        let many: Vec<String> = (0..1000).map(|i| format!("k{i}=v")).collect();
        assert_eq!(Form::parse(&many.join("&")).pairs.len(), MAX_PAIRS);
    }
}
