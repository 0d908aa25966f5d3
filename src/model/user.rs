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

/// 3.2 `User::name_is_valid`: the detail after `Error allocating a new user. `.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Invalid NAME, it cannot be empty.".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| [' ', ':', '\t', '\n', '\x0b', '\x0c', '\r'].contains(c))
    {
        return Err(format!("Invalid NAME, character '{c}' is not allowed."));
    }
    if name.chars().count() > 128 {
        return Err("Invalid NAME, max length is 128 chars.".into());
    }
    Ok(())
}

/// 3.2 `User::pass_is_valid`.
pub fn validate_password(pass: &str) -> Result<(), String> {
    if pass.is_empty() {
        return Err("Invalid password, it cannot be empty.".into());
    }
    if pass.contains(' ') {
        return Err("Invalid password, character ' ' is not allowed.".into());
    }
    Ok(())
}

pub fn sha1_hex(text: &str) -> String {
    sha1_smol::Sha1::from(text).digest().to_string()
}
