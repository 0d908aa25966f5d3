//! The owner/group/other × USE/MANAGE/ADMIN permission bits of 3.2 pool objects.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    pub owner_u: bool,
    pub owner_m: bool,
    pub owner_a: bool,
    pub group_u: bool,
    pub group_m: bool,
    pub group_a: bool,
    pub other_u: bool,
    pub other_m: bool,
    pub other_a: bool,
}

impl Default for Permissions {
    /// New objects in 3.2: the owner may use and manage, nobody else anything.
    fn default() -> Self {
        Permissions {
            owner_u: true,
            owner_m: true,
            owner_a: false,
            group_u: false,
            group_m: false,
            group_a: false,
            other_u: false,
            other_m: false,
            other_a: false,
        }
    }
}

impl Permissions {
    pub fn write_xml(&self, out: &mut String) {
        let b = |v: bool| if v { '1' } else { '0' };
        out.push_str("<PERMISSIONS>");
        for (tag, v) in [
            ("OWNER_U", self.owner_u),
            ("OWNER_M", self.owner_m),
            ("OWNER_A", self.owner_a),
            ("GROUP_U", self.group_u),
            ("GROUP_M", self.group_m),
            ("GROUP_A", self.group_a),
            ("OTHER_U", self.other_u),
            ("OTHER_M", self.other_m),
            ("OTHER_A", self.other_a),
        ] {
            out.push('<');
            out.push_str(tag);
            out.push('>');
            out.push(b(v));
            out.push_str("</");
            out.push_str(tag);
            out.push('>');
        }
        out.push_str("</PERMISSIONS>");
    }

    /// The nine bits in chmod parameter order.
    pub fn as_array(&self) -> [bool; 9] {
        [
            self.owner_u,
            self.owner_m,
            self.owner_a,
            self.group_u,
            self.group_m,
            self.group_a,
            self.other_u,
            self.other_m,
            self.other_a,
        ]
    }

    pub fn from_array(a: [bool; 9]) -> Self {
        Permissions {
            owner_u: a[0],
            owner_m: a[1],
            owner_a: a[2],
            group_u: a[3],
            group_m: a[4],
            group_a: a[5],
            other_u: a[6],
            other_m: a[7],
            other_a: a[8],
        }
    }
}
