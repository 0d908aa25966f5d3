//! Passwords checked against an LDAP directory, as one-proxy's JAAS `LdapLoginModule` with
//! `forceBindingLogin`: the front door binds as the user (DN from a template such as
//! `uid={user},ou=users,o=cloud`) with the password given. Membership of the `cloud-access`
//! group (`cn=cloud-access,ou=groups,o=cloud` in StratusLab's directory layout) is then read,
//! as the bound user, when a group DN is configured.

use ldap3::{dn_escape, ldap_escape, LdapConnAsync, LdapConnSettings, Scope};
use std::time::Duration;

/// Longest wait for the directory, per connection and per operation.
const LDAP_TIMEOUT: Duration = Duration::from_secs(10);
/// LDAP result code invalidCredentials (RFC 4511).
const INVALID_CREDENTIALS: u32 = 49;

#[derive(Debug, thiserror::Error)]
pub enum LdapConfigError {
    #[error("the LDAP user DN template {0:?} must contain {{user}}")]
    NoUserPlaceholder(String),
    #[error("the LDAP URL {0:?} must start with ldap://, ldaps:// or ldapi://")]
    BadUrl(String),
}

#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("LDAP directory {url}: {source}")]
    Directory {
        url: String,
        source: ldap3::LdapError,
    },
    #[error("LDAP directory {url}: bind answered {rc} {text}")]
    Bind { url: String, rc: u32, text: String },
}

/// What the directory said of a user name and password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapVerdict {
    /// The bind succeeded; `in_role` tells whether the user is in the access group (always
    /// true when no group is configured).
    Accepted { in_role: bool },
    /// Wrong password, unknown user, or a password that would make an anonymous bind.
    Refused,
}

#[derive(Debug, Clone)]
pub struct LdapDirectory {
    url: String,
    user_dn_template: String,
    group_dn: Option<String>,
}

impl LdapDirectory {
    pub fn new(
        url: &str,
        user_dn_template: &str,
        group_dn: Option<&str>,
    ) -> Result<LdapDirectory, LdapConfigError> {
        if !["ldap://", "ldaps://", "ldapi://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            return Err(LdapConfigError::BadUrl(url.to_string()));
        }
        if !user_dn_template.contains("{user}") {
            return Err(LdapConfigError::NoUserPlaceholder(
                user_dn_template.to_string(),
            ));
        }
        Ok(LdapDirectory {
            url: url.to_string(),
            user_dn_template: user_dn_template.to_string(),
            group_dn: group_dn.map(String::from),
        })
    }

    /// The bind DN of `user`, its name escaped so that it stays one RDN value (RFC 4514).
    pub fn user_dn(&self, user: &str) -> String {
        self.user_dn_template.replace("{user}", &dn_escape(user))
    }

    pub async fn check(&self, user: &str, password: &str) -> Result<LdapVerdict, LdapError> {
        // An empty password makes a simple bind "unauthenticated" (RFC 4513 §5.1.2), which
        // many servers accept as anonymous: never a proof of identity.
        if password.is_empty() || user.is_empty() {
            return Ok(LdapVerdict::Refused);
        }
        let directory = |source| LdapError::Directory {
            url: self.url.clone(),
            source,
        };
        let settings = LdapConnSettings::new().set_conn_timeout(LDAP_TIMEOUT);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(directory)?;
        ldap3::drive!(conn);
        let dn = self.user_dn(user);
        let bind = ldap
            .with_timeout(LDAP_TIMEOUT)
            .simple_bind(&dn, password)
            .await
            .map_err(directory)?;
        let verdict = match bind.rc {
            0 => {
                let in_role = match &self.group_dn {
                    None => true,
                    Some(group) => self.is_member(&mut ldap, group, &dn).await?,
                };
                LdapVerdict::Accepted { in_role }
            }
            INVALID_CREDENTIALS => LdapVerdict::Refused,
            rc => {
                let _ = ldap.unbind().await;
                return Err(LdapError::Bind {
                    url: self.url.clone(),
                    rc,
                    text: bind.text,
                });
            }
        };
        let _ = ldap.unbind().await;
        Ok(verdict)
    }

    /// Does the group entry list `dn` as a `uniqueMember` (groupOfUniqueNames, as one-proxy's
    /// configuration) or `member` (groupOfNames)?
    async fn is_member(
        &self,
        ldap: &mut ldap3::Ldap,
        group: &str,
        dn: &str,
    ) -> Result<bool, LdapError> {
        let filter = format!(
            "(|(uniqueMember={escaped})(member={escaped}))",
            escaped = ldap_escape(dn)
        );
        let answer = ldap
            .with_timeout(LDAP_TIMEOUT)
            .search(group, Scope::Base, &filter, vec!["1.1"])
            .await
            .map_err(|source| LdapError::Directory {
                url: self.url.clone(),
                source,
            })?;
        // noSuchObject (32): the group does not exist, so nobody is in it.
        Ok(answer.1.rc == 0 && !answer.0.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_stay_one_rdn_value() {
        let d = LdapDirectory::new("ldap://127.0.0.1:389", "uid={user},ou=users,o=cloud", None)
            .unwrap();
        assert_eq!(d.user_dn("jsmith"), "uid=jsmith,ou=users,o=cloud");
        assert_eq!(
            d.user_dn("x,ou=admins"),
            "uid=x\\2cou\\3dadmins,ou=users,o=cloud"
        );
    }

    #[test]
    fn configuration_is_checked() {
        assert!(matches!(
            LdapDirectory::new("ldap://h", "uid=x,o=cloud", None),
            Err(LdapConfigError::NoUserPlaceholder(_))
        ));
        assert!(matches!(
            LdapDirectory::new("http://h", "uid={user}", None),
            Err(LdapConfigError::BadUrl(_))
        ));
    }
}
