//! VMTEMPLATE objects (registered VM templates).

use super::xml::{elem, elem_num};
use super::{Oid, Permissions};
use crate::template::Template;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmTemplate {
    pub id: Oid,
    pub uid: Oid,
    pub gid: Oid,
    pub uname: String,
    pub gname: String,
    pub name: String,
    pub perms: Permissions,
    pub regtime: i64,
    pub template: Template,
}

impl VmTemplate {
    pub fn write_xml(&self, out: &mut String) {
        out.push_str("<VMTEMPLATE>");
        elem_num(out, "ID", self.id);
        elem_num(out, "UID", self.uid);
        elem_num(out, "GID", self.gid);
        elem(out, "UNAME", &self.uname);
        elem(out, "GNAME", &self.gname);
        elem(out, "NAME", &self.name);
        self.perms.write_xml(out);
        elem_num(out, "REGTIME", self.regtime);
        self.template.write_xml(out);
        out.push_str("</VMTEMPLATE>");
    }
}
