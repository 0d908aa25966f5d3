//! one.acl.* operations.

use super::auth::Caller;
use super::authz::AuthItem;
use super::command::Answer;
use super::messages::Refusal;
use super::{Change, Command, Core, Error, Result, Shared, State, Tx};
use crate::model::acl::{parse_hex, Op};
use crate::model::{AclRule, Kind, Oid};

impl Core {
    pub fn acl_addrule(
        &self,
        caller: &Caller,
        user: &str,
        resource: &str,
        rights: &str,
    ) -> Result<Oid> {
        self.execute(Command::AclAddRule {
            caller: caller.clone(),
            user: user.into(),
            resource: resource.into(),
            rights: rights.into(),
        })
        .and_then(Answer::id)
    }

    pub fn acl_delrule(&self, caller: &Caller, id: Oid) -> Result<Oid> {
        self.execute(Command::AclDelRule {
            caller: caller.clone(),
            id,
        })
        .and_then(Answer::id)
    }

    pub fn acl_info(&self, caller: &Caller) -> Result<String> {
        let state = self.read();
        state.authorize(caller, &[AuthItem::whole(Kind::Acl, Op::Manage)])?;
        let mut out = String::from("<ACL_POOL>");
        for rule in state.acls.values() {
            rule.write_xml(&mut out);
        }
        out.push_str("</ACL_POOL>");
        Ok(out)
    }
}

impl Shared {
    pub(super) fn apply_acl_addrule(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        user: &str,
        resource: &str,
        rights: &str,
    ) -> Result<Oid> {
        state.authorize(caller, &[AuthItem::whole(Kind::Acl, Op::Manage)])?;
        let mut rule = AclRule {
            id: -1,
            user: parse_hex(user),
            resource: parse_hex(resource),
            rights: parse_hex(rights),
        };
        // 3.2 looks for the same rule before it checks the bits.
        if state
            .acls
            .values()
            .any(|r| r.user == rule.user && r.resource == rule.resource && r.rights == rule.rights)
        {
            return Err(Error::request(Refusal::AclRuleExists(rule.to_str())));
        }
        let reasons = rule.malformed();
        if !reasons.is_empty() {
            return Err(Error::request(Refusal::AclRuleMalformed {
                rule: rule.to_str(),
                reasons,
            }));
        }
        rule.id = tx.alloc_id(state, Kind::Acl);
        tx.put(Change::Acl(rule));
        Ok(rule.id)
    }

    pub(super) fn apply_acl_delrule(
        &self,
        state: &State,
        tx: &mut Tx,
        caller: &Caller,
        id: Oid,
    ) -> Result<Oid> {
        state.authorize(caller, &[AuthItem::whole(Kind::Acl, Op::Manage)])?;
        if !state.acls.contains_key(&id) {
            return Err(Error::request(Refusal::AclRuleMissing(id)));
        }
        tx.delete(Kind::Acl, id);
        Ok(id)
    }
}
