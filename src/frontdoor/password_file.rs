//! one-proxy's password file (`login-pswd.properties`, read by Jetty's `PropertyFileLoginModule`):
//! a Java properties file of `user=credential,role,role...` lines. The credential is a plain
//! password, `MD5:<hex>` (unsalted MD5, as Jetty's `Credential.MD5`) or `CRYPT:<13 chars>`
//! (traditional DES crypt(3), as Jetty's `Credential.Crypt`); `stratus-hash-password` prints
//! the last two forms, e.g. `MD5:16e4112d526df4757d3c8b87983b4e56` and `CRYPT:mepY6iEy6MJ4g`
//! for user `me`, password `mypswd`.

use md5::{Digest, Md5};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    #[error("cannot read the password file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How a stored password is compared.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    Plain(String),
    /// The 16 bytes of MD5(password).
    Md5([u8; 16]),
    /// A 13-character DES crypt(3) string; its first two characters are the salt.
    Crypt(String),
}

impl std::fmt::Debug for Credential {
    // Never print a stored password, not even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Plain(_) => f.write_str("Plain(..)"),
            Credential::Md5(_) => f.write_str("Md5(..)"),
            Credential::Crypt(_) => f.write_str("Crypt(..)"),
        }
    }
}

/// Why a credential field could not be used; the entry is left out (and logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("MD5: must be followed by 32 hexadecimal digits")]
    BadMd5,
    #[error("CRYPT: must be followed by a 13-character DES crypt string")]
    BadCrypt,
    #[error("Jetty's OBF: obfuscated passwords are not supported; use MD5: or CRYPT:")]
    Obfuscated,
    #[error("the password is empty")]
    Empty,
}

impl Credential {
    /// Jetty's `Credential.getCredential`: the prefix decides the form.
    pub fn parse(text: &str) -> Result<Credential, CredentialError> {
        if let Some(hex) = text.strip_prefix("MD5:") {
            return parse_hex16(hex)
                .map(Credential::Md5)
                .ok_or(CredentialError::BadMd5);
        }
        if let Some(crypted) = text.strip_prefix("CRYPT:") {
            let valid = crypted.len() == 13
                && crypted
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/');
            return if valid {
                Ok(Credential::Crypt(crypted.to_string()))
            } else {
                Err(CredentialError::BadCrypt)
            };
        }
        if text.starts_with("OBF:") {
            return Err(CredentialError::Obfuscated);
        }
        if text.is_empty() {
            return Err(CredentialError::Empty);
        }
        Ok(Credential::Plain(text.to_string()))
    }

    pub fn matches(&self, password: &str) -> bool {
        match self {
            Credential::Plain(stored) => constant_time_eq(stored.as_bytes(), password.as_bytes()),
            Credential::Md5(stored) => {
                let digest = Md5::digest(password.as_bytes());
                constant_time_eq(stored, digest.as_slice())
            }
            // crypt(3) reads at most eight characters, as Jetty's UnixCrypt did.
            Credential::Crypt(stored) => pwhash::unix_crypt::verify(password, stored),
        }
    }
}

fn parse_hex16(hex: &str) -> Option<[u8; 16]> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Compares without stopping at the first difference, so that timing tells nothing about how
/// much of a guess was right (only whether the length was).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One user of the file.
#[derive(Debug, Clone)]
pub struct Entry {
    pub credential: Credential,
    pub roles: Vec<String>,
}

/// The users of one password file.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    users: HashMap<String, Entry>,
}

impl PasswordFile {
    pub fn load(path: &Path) -> Result<PasswordFile, PasswordFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswordFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(&text, &path.display().to_string()))
    }

    /// Parses the text of a file; entries that cannot be used are logged and left out.
    pub fn parse(text: &str, origin: &str) -> PasswordFile {
        let mut users = HashMap::new();
        for (key, value) in java_properties(text) {
            // Jetty's PropertyUserStore: the credential is everything before the first comma,
            // the roles the comma-separated rest.
            let user = key.trim().to_string();
            let (credential, roles) = match value.trim().split_once(',') {
                Some((c, r)) => (c.trim(), r),
                None => (value.trim(), ""),
            };
            let roles = roles
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(String::from)
                .collect();
            match Credential::parse(credential) {
                Ok(credential) => {
                    users.insert(user, Entry { credential, roles });
                }
                Err(e) => tracing::warn!(file = origin, %user, "password file entry ignored: {e}"),
            }
        }
        PasswordFile { users }
    }

    pub fn entry(&self, user: &str) -> Option<&Entry> {
        self.users.get(user)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// The key/value pairs of a `java.util.Properties` text: `#`/`!` comments, keys ending at the
/// first unescaped `=`, `:` or blank, backslash escapes and line continuations.
fn java_properties(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let trimmed = first.trim_start_matches([' ', '\t', '\x0c']);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // Join continuation lines: an odd number of trailing backslashes continues the line.
        let mut logical = trimmed.to_string();
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start_matches([' ', '\t', '\x0c'])),
                None => break,
            }
        }
        pairs.push(split_property(&logical));
    }
    pairs
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

fn split_property(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key_end = chars.len();
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '=' | ':' | ' ' | '\t' | '\x0c' => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(chars.len());
    let mut v = key_end;
    while v < chars.len() && matches!(chars[v], ' ' | '\t' | '\x0c') {
        v += 1;
    }
    if v < chars.len() && matches!(chars[v], '=' | ':') {
        v += 1;
        while v < chars.len() && matches!(chars[v], ' ' | '\t' | '\x0c') {
            v += 1;
        }
    }
    (
        unescape(&chars[..key_end]),
        unescape(&chars[v.min(chars.len())..]),
    )
}

fn unescape(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '\\' || i + 1 >= chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let c = chars[i + 1];
        i += 2;
        match c {
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            'f' => out.push('\x0c'),
            'u' => {
                let hex: String = chars[i..(i + 4).min(chars.len())].iter().collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(decoded) if hex.len() == 4 => {
                        out.push(decoded);
                        i += 4;
                    }
                    _ => out.push('u'),
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_stratus_hash_password_prints() {
        // The example of StratusLab's documentation: user `me`, password `mypswd`.
        let md5 = Credential::parse("MD5:16e4112d526df4757d3c8b87983b4e56").unwrap();
        assert!(md5.matches("mypswd"));
        assert!(!md5.matches("mypswd2"));
        let upper = Credential::parse("MD5:16E4112D526DF4757D3C8B87983B4E56").unwrap();
        assert!(upper.matches("mypswd"));
        let crypt = Credential::parse("CRYPT:mepY6iEy6MJ4g").unwrap();
        assert!(crypt.matches("mypswd"));
        assert!(!crypt.matches("mypswe"));
        // Vector from perl's crypt(): crypt("password", "ab").
        let crypt = Credential::parse("CRYPT:abJnggxhB/yWI").unwrap();
        assert!(crypt.matches("password"));
        // DES crypt reads eight characters only, as Jetty's UnixCrypt.
        assert!(crypt.matches("password-and-more"));
        let plain = Credential::parse("mypswd").unwrap();
        assert!(plain.matches("mypswd"));
        assert!(!plain.matches("mypsw"));
    }

    #[test]
    fn malformed_credentials_are_refused() {
        assert_eq!(Credential::parse("MD5:abc"), Err(CredentialError::BadMd5));
        assert_eq!(
            Credential::parse("CRYPT:short"),
            Err(CredentialError::BadCrypt)
        );
        assert_eq!(
            Credential::parse("OBF:1v2j1uum1xtv1zej1zer1xtn1uvk1v1v"),
            Err(CredentialError::Obfuscated)
        );
        assert_eq!(Credential::parse(""), Err(CredentialError::Empty));
    }

    #[test]
    fn file_format_is_jettys() {
        let text = "# users\n\
                    ! also a comment\n\
                    me=me,me,cloud-access\n\
                    alice = CRYPT:abJnggxhB/yWI , cloud-access\n\
                    bob: MD5:16e4112d526df4757d3c8b87983b4e56,other\n\
                    carol plain\\=pw,cloud-access, admin\n\
                    long=continued\\\n    ,cloud-access\n\
                    broken=MD5:zz,cloud-access\n\
                    \n";
        let file = PasswordFile::parse(text, "test");
        assert_eq!(file.len(), 5);
        let me = file.entry("me").unwrap();
        assert!(me.credential.matches("me"));
        assert_eq!(me.roles, ["me", "cloud-access"]);
        let alice = file.entry("alice").unwrap();
        assert!(alice.credential.matches("password"));
        assert_eq!(alice.roles, ["cloud-access"]);
        assert_eq!(file.entry("bob").unwrap().roles, ["other"]);
        let carol = file.entry("carol").unwrap();
        assert!(carol.credential.matches("plain=pw"));
        assert_eq!(carol.roles, ["cloud-access", "admin"]);
        let long = file.entry("long").unwrap();
        assert!(long.credential.matches("continued"));
        assert_eq!(long.roles, ["cloud-access"]);
        assert!(file.entry("broken").is_none());
    }

    #[test]
    fn debug_output_hides_passwords() {
        let plain = Credential::parse("topsecret").unwrap();
        assert!(!format!("{plain:?}").contains("topsecret"));
    }
}
