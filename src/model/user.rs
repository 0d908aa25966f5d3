//! USER objects.

use super::xml::{elem, elem_num};
use super::Oid;
use crate::template::Template;
use serde::{Deserialize, Serialize};

pub const ONEADMIN_UID: Oid = 0;
pub const SERVERADMIN_UID: Oid = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: Oid,
    pub gid: Oid,
    pub gname: String,
    pub name: String,
    /// sha1 hex for `core` users; the secret as given for `dummy`/`plain` users (as 3.2 stores it).
    pub password: String,
    pub auth_driver: String,
    pub enabled: bool,
    pub template: Template,
}

impl User {
    pub fn write_xml(&self, out: &mut String) {
        out.push_str("<USER>");
        elem_num(out, "ID", self.id);
        elem_num(out, "GID", self.gid);
        elem(out, "GNAME", &self.gname);
        elem(out, "NAME", &self.name);
        elem(out, "PASSWORD", &self.password);
        elem(out, "AUTH_DRIVER", &self.auth_driver);
        elem_num(out, "ENABLED", u8::from(self.enabled));
        self.template.write_xml(out);
        out.push_str("</USER>");
    }
}

/// 3.2's checks of a user name or password. Allocation adds a final period
/// ([`AllocDetail::User`]); one.user.passwd and one.user.chauth answer them without one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserValidation {
    #[error("Invalid password, it cannot be empty")]
    PasswordEmpty,
    #[error("Invalid password, character '{0}' is not allowed")]
    PasswordCharacter(char),
    #[error("Invalid NAME, it cannot be empty")]
    NameEmpty,
    #[error("Invalid NAME, character '{0}' is not allowed")]
    NameCharacter(char),
    #[error("Invalid NAME, max length is 128 chars")]
    NameTooLong,
}

/// 3.2 `User::name_is_valid`.
pub fn validate_name(name: &str) -> Result<(), UserValidation> {
    if name.is_empty() {
        return Err(UserValidation::NameEmpty);
    }
    if let Some(c) = name
        .chars()
        .find(|c| [' ', ':', '\t', '\n', '\x0b', '\x0c', '\r'].contains(c))
    {
        return Err(UserValidation::NameCharacter(c));
    }
    if name.len() > 128 {
        return Err(UserValidation::NameTooLong);
    }
    Ok(())
}

/// 3.2 `User::pass_is_valid`: no blank character (space, tab, line breaks, \v, \f).
pub fn validate_password(pass: &str) -> Result<(), UserValidation> {
    if pass.is_empty() {
        return Err(UserValidation::PasswordEmpty);
    }
    if let Some(c) = pass
        .chars()
        .find(|c| [' ', '\t', '\n', '\x0b', '\x0c', '\r'].contains(c))
    {
        return Err(UserValidation::PasswordCharacter(c));
    }
    Ok(())
}

pub fn sha1_hex(text: &str) -> String {
    sha1_smol::Sha1::from(text).digest().to_string()
}
