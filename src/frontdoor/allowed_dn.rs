//! one-proxy's allowed-DN list (`login-cert.properties`, read by StratusLab's
//! `CertLoginModule`): one `"<DN>" <role>[,<role>...]` line per certificate subject, `#`
//! comments. The documented example line is `"CN=John Smith, O=Widget Inc." cloud-access`;
//! the file shipped with one-proxy also shows `"..."=cloud-access`, so a `=` before the roles
//! is accepted too.

use super::dn::{key_of_text, DnKey};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AllowedDnError {
    #[error("cannot read the allowed-DN file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Default)]
pub struct AllowedDns {
    entries: Vec<(DnKey, Vec<String>)>,
}

impl AllowedDns {
    pub fn load(path: &Path) -> Result<AllowedDns, AllowedDnError> {
        let text = std::fs::read_to_string(path).map_err(|source| AllowedDnError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::parse(&text, &path.display().to_string()))
    }

    pub fn parse(text: &str, origin: &str) -> AllowedDns {
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // As CertLoginModule's pattern: the DN runs to the last double quote of the line.
            let parsed = line
                .strip_prefix('"')
                .and_then(|rest| rest.rsplit_once('"'))
                .and_then(|(dn, roles)| Some((key_of_text(dn)?, roles)));
            let Some((key, roles)) = parsed else {
                tracing::warn!(
                    file = origin,
                    line = n + 1,
                    "allowed-DN line ignored: expected \"<DN>\" <roles>"
                );
                continue;
            };
            let roles = roles
                .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
                .filter(|r| !r.is_empty())
                .map(String::from)
                .collect();
            entries.push((key, roles));
        }
        AllowedDns { entries }
    }

    /// The roles of a subject; `None` when the subject is not listed.
    pub fn roles(&self, subject: &DnKey) -> Option<&[String]> {
        // A later line for the same DN wins, as in the Java map.
        self.entries
            .iter()
            .rev()
            .find(|(key, _)| key == subject)
            .map(|(_, roles)| roles.as_slice())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_proxys_format() {
        let text = "#\n# Add entries for each valid certificate.\n#\n\
                    \"CN=John Smith, O=Widget Inc.\" cloud-access\n\
                    \"CN=Jane Doe,OU=Testing,O=StratusLab,C=EU\"=cloud-access\n\
                    \"CN=No Access, O=Widget Inc.\" other, more\n\
                    CN=unquoted cloud-access\n";
        let list = AllowedDns::parse(text, "test");
        assert_eq!(list.len(), 3);
        let john = key_of_text("CN=John Smith,O=Widget Inc.").unwrap();
        assert_eq!(list.roles(&john).unwrap(), ["cloud-access"]);
        let jane = key_of_text("CN=Jane Doe, OU=Testing, O=StratusLab, C=EU").unwrap();
        assert_eq!(list.roles(&jane).unwrap(), ["cloud-access"]);
        let none = key_of_text("CN=No Access, O=Widget Inc.").unwrap();
        assert_eq!(list.roles(&none).unwrap(), ["other", "more"]);
        let absent = key_of_text("CN=John Smith, O=Other").unwrap();
        assert!(list.roles(&absent).is_none());
    }
}
