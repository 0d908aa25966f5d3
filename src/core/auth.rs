//! Authentication of session strings (`user:secret`), as StratusLab's oned 3.2 did it.

use super::command::Answer;
use super::{Change, Command, Core, Error, Result, Shared, State, Tx};
use crate::config::AuthMode;
use crate::model::group::USERS_GID;
use crate::model::user::{sha1_hex, validate_name, validate_password};
use crate::model::{Kind, Oid, User};
use crate::template::Template;
use std::sync::Arc;

/// The authenticated identity a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: Oid,
    pub gid: Oid,
    pub name: String,
}

impl Caller {
    /// oneadmin itself (user 0 of group 0): what the daemon acts as on its own behalf.
    pub fn oneadmin() -> Caller {
        Caller {
            uid: crate::model::user::ONEADMIN_UID,
            gid: crate::model::group::ONEADMIN_GID,
            name: "oneadmin".into(),
        }
    }

    /// oneadmin, or a member of the oneadmin group: every check passes.
    pub fn is_privileged(&self) -> bool {
        self.uid == 0 || self.gid == 0
    }
}

/// 3.2 `User::split_secret`: at the first `:`; the secret may contain more colons.
pub fn split_session(session: &str) -> Option<(&str, &str)> {
    session.split_once(':')
}

fn is_sha1_hex(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Does `secret` authenticate `user` with its driver?
fn driver_accepts(user: &User, secret: &str, mode: AuthMode) -> bool {
    match user.auth_driver.as_str() {
        // Clients send the plain password; 3.0-era clients (and the pre-2012 one-proxy) sent
        // its sha1, which the spec asks us to accept too.
        "core" => {
            sha1_hex(secret) == user.password || (is_sha1_hex(secret) && secret == user.password)
        }
        "plain" => secret == user.password,
        // StratusLab's dummy driver accepts any secret; stock oned has no dummy driver.
        "dummy" => mode == AuthMode::Stratuslab,
        // public is always refused; server_* tokens and external drivers (ssh, x509, ldap)
        // need programs stratusd does not run.
        _ => false,
    }
}

/// What checking a session string against the state found.
#[derive(Debug)]
pub enum Identified {
    Caller(Caller),
    /// An unknown user StratusLab's default driver registers: the command to send, then
    /// [`Shared::registered`] with its answer.
    Register {
        command: Box<Command>,
        secret: String,
    },
}

impl Shared {
    /// Checks `session` against the users; an unknown, valid name under `--auth stratuslab`
    /// is to be registered (a write: the command is returned, not run).
    pub fn identify(&self, session: &str) -> Result<Identified> {
        let (name, secret) = split_session(session).ok_or(Error::Authentication)?;
        if name.is_empty() || secret.is_empty() {
            return Err(Error::Authentication);
        }
        {
            let state = self.read();
            if let Some(user) = state.user_by_name(name) {
                if user.enabled && driver_accepts(user, secret, self.settings.auth) {
                    return Ok(Identified::Caller(Caller {
                        uid: user.id,
                        gid: user.gid,
                        name: user.name.clone(),
                    }));
                }
                return Err(Error::Authentication);
            }
        }
        // The default driver's auto-creation fails (and so does the call) where the user's
        // allocation would: a bad name or password (the secret, stored as is), or a body 3.2
        // could not write as XML.
        let creatable = validate_name(name).is_ok()
            && validate_password(secret).is_ok()
            && crate::template::is_raw_text_safe(name)
            && crate::template::is_raw_text_safe(secret);
        if self.settings.auth != AuthMode::Stratuslab || !creatable {
            return Err(Error::Authentication);
        }
        // StratusLab's `default` auth driver: an unknown user is created on first contact in
        // group `users` with driver `dummy`, the secret of that call stored as is.
        Ok(Identified::Register {
            command: Box::new(Command::UserRegister {
                name: name.into(),
                secret: secret.into(),
            }),
            secret: secret.into(),
        })
    }

    /// The caller [`Command::UserRegister`] answered (another request may have registered
    /// the same name first, with another driver: its secret must then match).
    pub fn registered(&self, answer: Answer, secret: &str) -> Result<Caller> {
        let user = answer.user()?;
        if user.auth_driver != "dummy" && !driver_accepts(&user, secret, self.settings.auth) {
            return Err(Error::Authentication);
        }
        tracing::info!(user = %user.name, uid = user.id, "registered new user through the default driver");
        Ok(Caller {
            uid: user.id,
            gid: user.gid,
            name: user.name,
        })
    }
}

impl Core {
    /// The caller `session` authenticates, registering an unknown user when the default
    /// driver does (blocking: see [`Core::authenticate_async`]).
    pub fn authenticate(&self, session: &str) -> Result<Caller> {
        match self.identify(session)? {
            Identified::Caller(caller) => Ok(caller),
            Identified::Register { command, secret } => {
                self.registered(self.execute(*command)?, &secret)
            }
        }
    }

    /// [`Core::authenticate`] for async callers.
    pub async fn authenticate_async(self: &Arc<Self>, session: &str) -> Result<Caller> {
        match self.identify(session)? {
            Identified::Caller(caller) => Ok(caller),
            Identified::Register { command, secret } => {
                self.registered(self.submit(*command).await?, &secret)
            }
        }
    }
}

impl Shared {
    pub(super) fn apply_user_register(
        &self,
        state: &State,
        tx: &mut Tx,
        name: &str,
        secret: &str,
    ) -> Result<User> {
        // Another request may have registered the same user since we looked.
        if let Some(existing) = state.user_by_name(name) {
            return Ok(existing.clone());
        }
        let id = tx.alloc_id(state, Kind::User);
        let user = User {
            id,
            gid: USERS_GID,
            gname: state.group_name(USERS_GID),
            name: name.to_string(),
            password: secret.to_string(),
            auth_driver: "dummy".into(),
            enabled: true,
            template: Template::new(),
        };
        tx.put(Change::User(user.clone()));
        Ok(user)
    }
}
