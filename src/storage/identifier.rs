//! Marketplace identifiers derived from an image's SHA-1 (StratusLab's `ManifestIdentifier`):
//! the 160-bit digest written as 27 base-64 digits, most significant first, with the alphabet
//! `A-Z a-z 0-9 - _`. Also the decimal form pdisk printed checksums in.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Number of base-64 digits of an identifier (27 × 6 = 162 ≥ 160 bits).
pub const IDENTIFIER_LEN: usize = 27;

/// A SHA-1 as lower-case hex → its 20 bytes; `None` when it is not 40 hex digits.
pub fn sha1_bytes(hex: &str) -> Option<[u8; 20]> {
    if hex.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Divides the big-endian number in `n` by `d` in place; returns the remainder.
fn div_rem_in_place(n: &mut [u8], d: u32) -> u32 {
    let mut rem = 0u32;
    for byte in n.iter_mut() {
        let acc = (rem << 8) | u32::from(*byte);
        *byte = (acc / d) as u8;
        rem = acc % d;
    }
    rem
}

/// The Marketplace identifier of an image whose SHA-1 is `hex`.
pub fn from_sha1(hex: &str) -> Option<String> {
    let mut n = sha1_bytes(&hex.to_ascii_lowercase())?;
    let mut digits = [0u8; IDENTIFIER_LEN];
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[div_rem_in_place(&mut n, 64) as usize];
    }
    String::from_utf8(digits.to_vec()).ok()
}

/// The SHA-1 (lower-case hex) an identifier was derived from; `None` for a malformed one.
pub fn to_sha1(id: &str) -> Option<String> {
    if id.len() != IDENTIFIER_LEN {
        return None;
    }
    // 162 bits accumulated into 21 bytes, then the top byte must be empty.
    let mut n = [0u8; 21];
    for c in id.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        let mut carry = v;
        for byte in n.iter_mut().rev() {
            let acc = (u32::from(*byte) << 6) | carry;
            *byte = (acc & 0xff) as u8;
            carry = acc >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    if n[0] != 0 {
        return None;
    }
    Some(n[1..].iter().map(|b| format!("{b:02x}")).collect())
}

/// A 160-bit digest (hex) as a decimal integer, as pdisk printed checksums (Java BigInteger).
pub fn sha1_decimal(hex: &str) -> String {
    let Some(mut n) = sha1_bytes(&hex.to_ascii_lowercase()) else {
        return hex.to_string();
    };
    let mut digits = Vec::new();
    while n.iter().any(|&b| b != 0) {
        digits.push(b'0' + div_rem_in_place(&mut n, 10) as u8);
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// The client's test for a Marketplace id (`^[A-Za-z0-9_-]{27}$`).
pub fn looks_like_marketplace_id(text: &str) -> bool {
    text.len() == IDENTIFIER_LEN && is_safe_image_id(text)
}

/// Ids used as cache file names: the identifier alphabet only, never `.` or `/`.
pub fn is_safe_image_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &[(&str, &str)] = &[
        (
            "c319bbd5afc0a22ba3eaed0507c39383ec28eeff",
            "MMZu9WvwKIro-rtBQfDk4PsKO7_",
        ),
        (
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "No5o-5ea0sNMlW_75VgGJCv2AcJ",
        ),
        (
            "0000000000000000000000000000000000000000",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        (
            "ffffffffffffffffffffffffffffffffffffffff",
            "P__________________________",
        ),
    ];

    #[test]
    fn spec_vectors() {
        for (sha1, id) in VECTORS {
            assert_eq!(from_sha1(sha1).as_deref(), Some(*id), "{sha1}");
            assert_eq!(to_sha1(id).as_deref(), Some(*sha1), "{id}");
        }
    }

    #[test]
    fn inverse_refuses_out_of_range() {
        // First digit above `P` would need more than 160 bits.
        assert_eq!(to_sha1("Q__________________________"), None);
        assert_eq!(to_sha1("short"), None);
        assert_eq!(from_sha1("not hex"), None);
    }

    #[test]
    fn decimal_checksums() {
        assert_eq!(
            sha1_decimal("0000000000000000000000000000000000000000"),
            "0"
        );
        assert_eq!(
            sha1_decimal("ffffffffffffffffffffffffffffffffffffffff"),
            "1461501637330902918203684832716283019655932542975"
        );
        assert_eq!(
            sha1_decimal("00000000000000000000000000000000000000ff"),
            "255"
        );
    }

    #[test]
    fn safe_ids() {
        assert!(is_safe_image_id("BN1EEkPiBx87_uLj2-sdybSI-Xb"));
        assert!(!is_safe_image_id("../etc"));
        assert!(!is_safe_image_id("a.b"));
        assert!(!is_safe_image_id(""));
        assert!(looks_like_marketplace_id("BN1EEkPiBx87_uLj2-sdybSI-Xb"));
        assert!(!looks_like_marketplace_id("shadow"));
    }
}
