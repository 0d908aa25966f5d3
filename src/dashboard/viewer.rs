//! Who is looking at a page: the core's caller (authenticated by the core exactly as an
//! XML-RPC call through the front door would be), how the browser or script got in, and the
//! CSRF token its forms must carry.

use super::sessions::SessionId;
use crate::core::auth::Caller;
use crate::frontdoor::session::Identity;

/// How the request authenticated.
#[derive(Debug, Clone)]
pub enum Via {
    /// A signed-in browser's session cookie.
    Session(SessionId),
    /// HTTP Basic on this request (scripts), as on `/pswd/xmlrpc`.
    Basic,
}

#[derive(Debug, Clone)]
pub struct Viewer {
    pub caller: Caller,
    /// The name shown: the Basic user or the certificate subject, as the person knows it.
    pub display_name: String,
    pub csrf: String,
    pub via: Via,
    /// Does the navigation offer the hosts page (the API lets the caller see hosts)?
    pub sees_hosts: bool,
    /// Does the navigation offer the volumes page (the pdisk service is on)?
    pub volumes: bool,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.caller.is_privileged()
    }
}

/// The name a person knows themselves by.
pub fn display_name(identity: &Identity) -> String {
    match identity {
        Identity::Password { user, .. } => user.clone(),
        Identity::Certificate { dn } => dn.clone(),
    }
}
