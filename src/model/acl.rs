//! ACL rules: 64-bit user selector, resource selector+types and rights, exactly 3.2's layout.

use super::xml::{elem, elem_num};
use super::{Kind, Oid};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

pub const SEL_INDIVIDUAL: u64 = 0x1_0000_0000;
pub const SEL_GROUP: u64 = 0x2_0000_0000;
pub const SEL_ALL: u64 = 0x4_0000_0000;
const SEL_MASK: u64 = SEL_INDIVIDUAL | SEL_GROUP | SEL_ALL;
const TYPE_MASK: u64 = 0xFF0_0000_0000;
const ID_MASK: u64 = 0xFFFF_FFFF;

pub const RIGHT_USE: u64 = 0x1;
pub const RIGHT_MANAGE: u64 = 0x2;
pub const RIGHT_ADMIN: u64 = 0x4;
pub const RIGHT_CREATE: u64 = 0x8;

/// The operations of 3.2's AuthRequest, which are also the ACL rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Use,
    Manage,
    Admin,
    Create,
}

impl Op {
    pub fn right(self) -> u64 {
        match self {
            Op::Use => RIGHT_USE,
            Op::Manage => RIGHT_MANAGE,
            Op::Admin => RIGHT_ADMIN,
            Op::Create => RIGHT_CREATE,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Op::Use => "USE",
            Op::Manage => "MANAGE",
            Op::Admin => "ADMIN",
            Op::Create => "CREATE",
        }
    }
}

/// Why an ACL rule is malformed, in 3.2's order (`AclRule::malformed`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AclReason {
    /// `part` is `[user]` or `[resource]`.
    #[error("{0} INDIVIDUAL (#) and GROUP (@) bits are exclusive")]
    IndividualAndGroup(&'static str),
    #[error("{0} INDIVIDUAL (#) and ALL (*) bits are exclusive")]
    IndividualAndAll(&'static str),
    #[error("{0} GROUP (@) and ALL (*) bits are exclusive")]
    GroupAndAll(&'static str),
    #[error("{0} is missing one of the INDIVIDUAL, GROUP or ALL bits")]
    SelectorMissing(&'static str),
    #[error("{0} ID cannot be negative")]
    NegativeId(&'static str),
    #[error("when using the ALL bit, {0} ID must be 0")]
    IdWithAll(&'static str),
    #[error("[resource] type is missing")]
    TypeMissing,
    #[error("wrong [resource] type")]
    WrongType,
    #[error("wrong [rights], it cannot be 0")]
    RightsZero,
    #[error("wrong [rights], it cannot be bigger than 0xF")]
    RightsTooBig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRule {
    pub id: Oid,
    pub user: u64,
    pub resource: u64,
    pub rights: u64,
}

fn selector_str(out: &mut String, value: u64) {
    let id = (value & ID_MASK) as u32 as i32;
    if value & SEL_INDIVIDUAL != 0 {
        let _ = write!(out, "#{id}");
    } else if value & SEL_GROUP != 0 {
        let _ = write!(out, "@{id}");
    } else if value & SEL_ALL != 0 {
        out.push('*');
    } else {
        out.push_str("??");
    }
}

impl AclRule {
    /// The `STRING` form, e.g. `@1 VM+NET+IMAGE+TEMPLATE/* CREATE`.
    pub fn to_str(&self) -> String {
        let mut s = String::new();
        selector_str(&mut s, self.user);
        s.push(' ');
        let types: Vec<&str> = Kind::ALL
            .iter()
            .filter(|k| self.resource & k.acl_bit() != 0)
            .map(|k| k.auth_name())
            .collect();
        s.push_str(&types.join("+"));
        s.push('/');
        selector_str(&mut s, self.resource);
        s.push(' ');
        let rights: Vec<&str> = [Op::Use, Op::Manage, Op::Admin, Op::Create]
            .iter()
            .filter(|op| self.rights & op.right() != 0)
            .map(|op| op.name())
            .collect();
        s.push_str(&rights.join("+"));
        s
    }

    /// 3.2 `AclRule::malformed`: the reasons (none when the rule is valid).
    /// Each selector is checked the same way (the exclusive bits, a missing bit, a negative
    /// id, an id with the ALL bit), then the resource types, then the rights.
    pub fn malformed(&self) -> Vec<AclReason> {
        fn selector(errors: &mut Vec<AclReason>, part: &'static str, value: u64) {
            let (ind, grp, all) = (
                value & SEL_INDIVIDUAL != 0,
                value & SEL_GROUP != 0,
                value & SEL_ALL != 0,
            );
            if ind && grp {
                errors.push(AclReason::IndividualAndGroup(part));
            }
            if ind && all {
                errors.push(AclReason::IndividualAndAll(part));
            }
            if grp && all {
                errors.push(AclReason::GroupAndAll(part));
            }
            if !(ind || grp || all) {
                errors.push(AclReason::SelectorMissing(part));
            }
            // The id is a 32-bit int in 3.2: 2^31 and above are negative.
            let id = (value & ID_MASK) as u32 as i32;
            if id < 0 {
                errors.push(AclReason::NegativeId(part));
            }
            if all && id != 0 {
                errors.push(AclReason::IdWithAll(part));
            }
        }
        let mut errors = Vec::new();
        selector(&mut errors, "[user]", self.user);
        selector(&mut errors, "[resource]", self.resource);
        if self.resource & TYPE_MASK == 0 {
            errors.push(AclReason::TypeMissing);
        }
        if self.resource & !(SEL_MASK | ID_MASK | TYPE_MASK) != 0 {
            errors.push(AclReason::WrongType);
        }
        if self.rights == 0 {
            errors.push(AclReason::RightsZero);
        }
        if self.rights > 0xF {
            errors.push(AclReason::RightsTooBig);
        }
        errors
    }

    pub fn write_xml(&self, out: &mut String) {
        out.push_str("<ACL>");
        elem_num(out, "ID", self.id);
        let _ = write!(
            out,
            "<USER>{:x}</USER><RESOURCE>{:x}</RESOURCE><RIGHTS>{:x}</RIGHTS>",
            self.user, self.resource, self.rights
        );
        elem(out, "STRING", &self.to_str());
        out.push_str("</ACL>");
    }

    /// Does this rule give `op` on an object of `kind` (id `oid`, group `obj_gid`) to a user
    /// with id `uid` in group `gid`? `oid` None means a CREATE (no object yet).
    pub fn grants(
        &self,
        uid: Oid,
        gid: Oid,
        kind: Kind,
        oid: Option<Oid>,
        obj_gid: Option<Oid>,
        op: Op,
    ) -> bool {
        if self.rights & op.right() == 0 || self.resource & kind.acl_bit() == 0 {
            return false;
        }
        let user_ok = (self.user & SEL_ALL != 0)
            || (self.user & SEL_INDIVIDUAL != 0 && (self.user & ID_MASK) as u32 as i32 == uid)
            || (self.user & SEL_GROUP != 0 && (self.user & ID_MASK) as u32 as i32 == gid);
        if !user_ok {
            return false;
        }
        let res_id = (self.resource & ID_MASK) as u32 as i32;
        (self.resource & SEL_ALL != 0)
            || (self.resource & SEL_INDIVIDUAL != 0 && Some(res_id) == oid)
            || (self.resource & SEL_GROUP != 0 && Some(res_id) == obj_gid)
    }

    /// Does this rule give `op` on every object of `kind` to this user (a `*` resource)?
    pub fn grants_all(&self, uid: Oid, gid: Oid, kind: Kind, op: Op) -> bool {
        self.resource & SEL_ALL != 0 && self.grants(uid, gid, kind, None, None, op)
    }
}

/// Reads an ACL field the way 3.2 does (C++ `hex` stream extraction): optional blanks, an
/// optional `0x`, hex digits up to the first other character. Python 2 `hex()` of a long adds
/// a trailing `L`, which simply ends the number. Nothing readable gives 0.
pub fn parse_hex(text: &str) -> u64 {
    let t = text.trim_start();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let digits: String = t.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
    u64::from_str_radix(&digits, 16).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_of_bootstrap_rules() {
        let r = AclRule {
            id: 0,
            user: 0x200000001,
            resource: 0x2d400000000,
            rights: 8,
        };
        assert_eq!(r.to_str(), "@1 VM+NET+IMAGE+TEMPLATE/* CREATE");
        let r = AclRule {
            id: 1,
            user: 0x200000001,
            resource: 0x2400000000,
            rights: 2,
        };
        assert_eq!(r.to_str(), "@1 HOST/* MANAGE");
        let r = AclRule {
            id: 2,
            user: 0x200000064,
            resource: 0x5400000000,
            rights: 9,
        };
        assert_eq!(r.to_str(), "@100 VM+NET/* USE+CREATE");
    }

    #[test]
    fn malformed_rule_message() {
        let r = AclRule {
            id: 0,
            user: parse_hex("zzz"),
            resource: parse_hex("yyy"),
            rights: parse_hex("xxx"),
        };
        assert_eq!(r.to_str(), "?? /?? ");
        assert_eq!(
            Some(crate::core::messages::join(&r.malformed())).as_deref(),
            Some("[user] is missing one of the INDIVIDUAL, GROUP or ALL bits; [resource] is missing one of the INDIVIDUAL, GROUP or ALL bits; [resource] type is missing; wrong [rights], it cannot be 0")
        );
    }

    #[test]
    fn every_malformed_reason_in_3_2_order() {
        let r = AclRule {
            id: 0,
            user: SEL_INDIVIDUAL | SEL_GROUP | SEL_ALL | 0x8000_0000,
            resource: SEL_GROUP | SEL_ALL | 5 | 0x1000_0000_0000_0000,
            rights: 0x10,
        };
        assert_eq!(
            Some(crate::core::messages::join(&r.malformed())).as_deref(),
            Some(
                "[user] INDIVIDUAL (#) and GROUP (@) bits are exclusive; \
                 [user] INDIVIDUAL (#) and ALL (*) bits are exclusive; \
                 [user] GROUP (@) and ALL (*) bits are exclusive; \
                 [user] ID cannot be negative; \
                 when using the ALL bit, [user] ID must be 0; \
                 [resource] GROUP (@) and ALL (*) bits are exclusive; \
                 when using the ALL bit, [resource] ID must be 0; \
                 [resource] type is missing; \
                 wrong [resource] type; \
                 wrong [rights], it cannot be bigger than 0xF"
            )
        );
    }

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("0x400000000"), 0x400000000);
        assert_eq!(parse_hex("0x29400000000L"), 0x29400000000);
        assert_eq!(parse_hex("9"), 9);
        assert_eq!(parse_hex("zz"), 0);
    }
}
