//! one.acl.* operations.

use super::auth::Caller;
use super::authz::AuthItem;
use super::{Change, Core, Error, Result};
use crate::model::acl::parse_hex;
use crate::model::{AclRule, Kind, Oid};

impl Core {
    pub fn acl_addrule(
        &self,
        caller: &Caller,
        user: &str,
        resource: &str,
        rights: &str,
    ) -> Result<Oid> {
        self.write(|state, tx| {
            state.authorize(caller, &[AuthItem::create(Kind::Acl)])?;
            let mut rule = AclRule {
                id: -1,
                user: parse_hex(user),
                resource: parse_hex(resource),
                rights: parse_hex(rights),
            };
            if let Some(why) = rule.malformed() {
                return Err(Error::request(format!(
                    "Rule {} is malformed: {why}",
                    rule.to_str()
                )));
            }
            if state.acls.values().any(|r| {
                r.user == rule.user && r.resource == rule.resource && r.rights == rule.rights
            }) {
                return Err(Error::request(format!(
                    "Rule {} already exists",
                    rule.to_str()
                )));
            }
            rule.id = tx.alloc_id(state, Kind::Acl);
            tx.put(Change::Acl(rule));
            Ok(rule.id)
        })
    }

    pub fn acl_delrule(&self, caller: &Caller, id: Oid) -> Result<Oid> {
        self.write(|state, tx| {
            state.authorize(caller, &[AuthItem::create(Kind::Acl)])?;
            if !state.acls.contains_key(&id) {
                return Err(Error::request(format!("Rule {id} does not exist")));
            }
            tx.delete(Kind::Acl, id);
            Ok(id)
        })
    }

    pub fn acl_info(&self, caller: &Caller) -> Result<String> {
        let state = self.read();
        state.authorize(caller, &[AuthItem::create(Kind::Acl)])?;
        let mut out = String::from("<ACL_POOL>");
        for rule in state.acls.values() {
            rule.write_xml(&mut out);
        }
        out.push_str("</ACL_POOL>");
        Ok(out)
    }
}
