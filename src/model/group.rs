//! GROUP objects. The member list is derived from the users' GID when rendering, so it can
//! never disagree with the user pool.

use super::xml::{elem, elem_num};
use super::Oid;
use serde::{Deserialize, Serialize};

pub const ONEADMIN_GID: Oid = 0;
pub const USERS_GID: Oid = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    pub id: Oid,
    pub name: String,
}

impl Group {
    pub fn write_xml(&self, out: &mut String, members: impl Iterator<Item = Oid>) {
        out.push_str("<GROUP>");
        elem_num(out, "ID", self.id);
        elem(out, "NAME", &self.name);
        out.push_str("<USERS>");
        for uid in members {
            elem_num(out, "ID", uid);
        }
        out.push_str("</USERS></GROUP>");
    }
}
