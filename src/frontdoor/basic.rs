//! HTTP Basic authentication of `/pswd`: the `Authorization` header, then the password file
//! and the LDAP directory in one-proxy's order (its JAAS configuration listed both as
//! `sufficient`: the file first, the directory when the file did not accept).

use super::ldap::{LdapDirectory, LdapVerdict};
use super::password_file::PasswordFile;
use super::reloading::Reloading;
use super::CLOUD_ACCESS_ROLE;
use base64::Engine;

/// Credentials of an `Authorization: Basic` header.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Reads `Basic <base64(user:password)>`; `None` for any other header or an empty user.
pub fn parse_authorization(header: &[u8]) -> Option<BasicCredentials> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    // UTF-8 as clients send today; otherwise ISO-8859-1, Jetty's reading.
    let text = match String::from_utf8(decoded) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    };
    let (user, password) = text.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some(BasicCredentials {
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// The verdict on a Basic login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasicVerdict {
    /// Authenticated and in the `cloud-access` role.
    Granted,
    /// Authenticated, but not in the role: Jetty answered 403.
    NotInRole,
    /// Unknown user or wrong password: 401.
    Refused,
    /// The directory could not be asked: 503.
    Unavailable,
}

pub struct PasswordAuthority {
    file: Option<Reloading<PasswordFile>>,
    ldap: Option<LdapDirectory>,
}

impl PasswordAuthority {
    pub fn new(file: Option<Reloading<PasswordFile>>, ldap: Option<LdapDirectory>) -> Self {
        PasswordAuthority { file, ldap }
    }

    pub fn is_configured(&self) -> bool {
        self.file.is_some() || self.ldap.is_some()
    }

    pub async fn check(&self, credentials: &BasicCredentials) -> BasicVerdict {
        if let Some(file) = &self.file {
            let users = file.current();
            if let Some(entry) = users.entry(&credentials.user) {
                if entry.credential.matches(&credentials.password) {
                    return if entry.roles.iter().any(|r| r == CLOUD_ACCESS_ROLE) {
                        BasicVerdict::Granted
                    } else {
                        BasicVerdict::NotInRole
                    };
                }
            }
        }
        let Some(ldap) = &self.ldap else {
            return BasicVerdict::Refused;
        };
        match ldap.check(&credentials.user, &credentials.password).await {
            Ok(LdapVerdict::Accepted { in_role: true }) => BasicVerdict::Granted,
            Ok(LdapVerdict::Accepted { in_role: false }) => BasicVerdict::NotInRole,
            Ok(LdapVerdict::Refused) => BasicVerdict::Refused,
            Err(e) => {
                tracing::error!(user = %credentials.user, error = %e, "LDAP check failed");
                BasicVerdict::Unavailable
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers() {
        // The header the StratusLab client sent (stratuslab-client.md §1.1): alice:s3cret.
        let c = parse_authorization(b"Basic YWxpY2U6czNjcmV0").unwrap();
        assert_eq!(c.user, "alice");
        assert_eq!(c.password, "s3cret");
        let colon = base64::engine::general_purpose::STANDARD.encode("bob:a:b");
        let c = parse_authorization(format!("basic {colon}").as_bytes()).unwrap();
        assert_eq!(c.password, "a:b");
        assert!(parse_authorization(b"Bearer abc").is_none());
        assert!(parse_authorization(b"Basic !!!").is_none());
        let no_colon = base64::engine::general_purpose::STANDARD.encode("alice");
        assert!(parse_authorization(format!("Basic {no_colon}").as_bytes()).is_none());
        let no_user = base64::engine::general_purpose::STANDARD.encode(":pw");
        assert!(parse_authorization(format!("Basic {no_user}").as_bytes()).is_none());
        assert!(!format!("{c:?}").contains("a:b"));
    }

    #[tokio::test]
    async fn file_roles_decide() {
        let dir = std::env::temp_dir().join(format!("stratusd-basic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("login-pswd.properties");
        std::fs::write(
            &path,
            "me=CRYPT:mepY6iEy6MJ4g,cloud-access\nguest=pw,other\n",
        )
        .unwrap();
        let file = Reloading::open(
            &path,
            |p| PasswordFile::load(p).map_err(|e| e.to_string()),
            std::time::Duration::ZERO,
        )
        .unwrap();
        let auth = PasswordAuthority::new(Some(file), None);
        let creds = |u: &str, p: &str| BasicCredentials {
            user: u.into(),
            password: p.into(),
        };
        assert_eq!(
            auth.check(&creds("me", "mypswd")).await,
            BasicVerdict::Granted
        );
        assert_eq!(
            auth.check(&creds("me", "wrong")).await,
            BasicVerdict::Refused
        );
        assert_eq!(
            auth.check(&creds("guest", "pw")).await,
            BasicVerdict::NotInRole
        );
        assert_eq!(
            auth.check(&creds("nobody", "pw")).await,
            BasicVerdict::Refused
        );
        // Edited file: seen without restart.
        std::fs::write(&path, "me=other-password-now,cloud-access\n").unwrap();
        assert_eq!(
            auth.check(&creds("me", "mypswd")).await,
            BasicVerdict::Refused
        );
        assert_eq!(
            auth.check(&creds("me", "other-password-now")).await,
            BasicVerdict::Granted
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
