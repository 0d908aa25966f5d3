//! The session string the front door dispatches with, built as one-proxy built it before
//! forwarding to oned (xmlrpc-api.md §9.5): `URLEncode_UTF8(user) + ":" + credentials`.

/// What one-proxy sent as the secret of every user but oneadmin: forty letters `a`. The core's
/// StratusLab mode accepts any secret for its `dummy` (auto-provisioned) users.
pub const PLACEHOLDER_SECRET: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// An identity the HTTP layer has authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// HTTP Basic: the user name and the password that authenticated it.
    Password { user: String, password: String },
    /// A client certificate: the end-entity subject in one-proxy's RFC 2253 form.
    Certificate { dn: String },
}

impl Identity {
    /// The OpenNebula user name: the URL-encoded Basic user or DN.
    pub fn user_name(&self) -> String {
        match self {
            Identity::Password { user, .. } => java_url_encode(user),
            Identity::Certificate { dn } => java_url_encode(dn),
        }
    }

    /// The session string to dispatch with. Only `oneadmin` keeps its password, which the core
    /// checks against the stored SHA-1 as on the loopback port; a certificate subject is never
    /// `oneadmin` (it always holds an `=`).
    pub fn session(&self) -> String {
        let secret = match self {
            Identity::Password { user, password } if user == "oneadmin" => password.as_str(),
            _ => PLACEHOLDER_SECRET,
        };
        format!("{}:{secret}", self.user_name())
    }

    /// The session as the forwarding log shows it: without oneadmin's password.
    pub fn session_for_log(&self) -> String {
        match self {
            Identity::Password { user, .. } if user == "oneadmin" => "oneadmin:********".into(),
            _ => self.session(),
        }
    }
}

/// `java.net.URLEncoder.encode(s, "UTF-8")`: ASCII letters, digits and `.-*_` stay, a space
/// becomes `+`, every other byte of the UTF-8 encoding becomes `%XX` (upper-case hex).
pub fn java_url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_is_javas() {
        assert_eq!(
            java_url_encode("CN=John Smith,OU=Testing,O=StratusLab,C=EU"),
            "CN%3DJohn+Smith%2COU%3DTesting%2CO%3DStratusLab%2CC%3DEU"
        );
        assert_eq!(java_url_encode("a.b-c*d_e~f"), "a.b-c*d_e%7Ef");
        assert_eq!(java_url_encode("Jürgen"), "J%C3%BCrgen");
        assert_eq!(java_url_encode("x:y/z+@"), "x%3Ay%2Fz%2B%40");
    }

    #[test]
    fn sessions_are_one_proxys() {
        let alice = Identity::Password {
            user: "alice smith".into(),
            password: "s3cret".into(),
        };
        assert_eq!(alice.session(), format!("alice+smith:{PLACEHOLDER_SECRET}"));
        let admin = Identity::Password {
            user: "oneadmin".into(),
            password: "pw:with:colons".into(),
        };
        assert_eq!(admin.session(), "oneadmin:pw:with:colons");
        assert_eq!(admin.session_for_log(), "oneadmin:********");
        let cert = Identity::Certificate {
            dn: "CN=John Smith,O=StratusLab".into(),
        };
        assert_eq!(
            cert.session(),
            format!("CN%3DJohn+Smith%2CO%3DStratusLab:{PLACEHOLDER_SECRET}")
        );
        assert_eq!(PLACEHOLDER_SECRET.len(), 40);
    }
}
