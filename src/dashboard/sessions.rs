//! Signed-in browsers: session tokens (random, kept only as their SHA-256), each with the
//! identity the front door authenticated and the CSRF token of its forms; and the throttle on
//! failed sign-ins. Both are bounded in size and time.

use crate::frontdoor::session::Identity;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A session unused for this long is gone.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// ... and any session after this long, used or not.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; past it the least recently used goes.
const MAX_SESSIONS: usize = 10_000;
/// Sessions of one identity kept at once; past it its oldest goes.
const MAX_PER_IDENTITY: usize = 32;

/// Failed sign-ins accepted from one address within [`FAILURE_WINDOW`].
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Addresses the throttle remembers at once.
const MAX_THROTTLED: usize = 4096;

type Key = [u8; 32];

/// 32 random bytes, URL-safe base64 (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system generator only fails when the kernel has no entropy source at all; a zero
    // token would then be guessable, so fall back to rand's generator seeded by the OS too.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        bytes = rand::random();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn key_of(token: &str) -> Key {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// Compares two secrets without revealing, through timing, how much of them matched: what is
/// compared is their SHA-256 digests.
pub fn same_secret(a: &str, b: &str) -> bool {
    key_of(a) == key_of(b)
}

#[derive(Debug, Clone)]
struct Session {
    identity: Identity,
    csrf: String,
    created: Instant,
    last_seen: Instant,
}

impl Session {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.last_seen) > IDLE_TIMEOUT
            || now.duration_since(self.created) > MAX_AGE
    }
}

/// What a valid session token gives.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub identity: Identity,
    pub csrf: String,
    /// Identifies the session without its token (for event streams and sign-out).
    pub id: SessionId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(Key);

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<Key, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Session>> {
        match self.map.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A new session for `identity`; returns its token (for the cookie).
    pub fn create(&self, identity: Identity) -> String {
        let token = random_token();
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, s| !s.expired(now));
        let mine: Vec<(Key, Instant)> = map
            .iter()
            .filter(|(_, s)| s.identity == identity)
            .map(|(k, s)| (*k, s.created))
            .collect();
        if mine.len() >= MAX_PER_IDENTITY {
            if let Some((oldest, _)) = mine.iter().min_by_key(|(_, created)| *created) {
                map.remove(oldest);
            }
        }
        if map.len() >= MAX_SESSIONS {
            if let Some(lru) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k) {
                map.remove(&lru);
            }
        }
        map.insert(
            key_of(&token),
            Session {
                identity,
                csrf: random_token(),
                created: now,
                last_seen: now,
            },
        );
        token
    }

    /// The session of `token`, now marked used; `None` when unknown or expired.
    pub fn get(&self, token: &str) -> Option<SessionInfo> {
        let key = key_of(token);
        let now = Instant::now();
        let mut map = self.lock();
        let session = map.get_mut(&key)?;
        if session.expired(now) {
            map.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(SessionInfo {
            identity: session.identity.clone(),
            csrf: session.csrf.clone(),
            id: SessionId(key),
        })
    }

    /// Is the session still there (not signed out, not expired)? Does not count as a use.
    pub fn is_live(&self, id: SessionId) -> bool {
        let now = Instant::now();
        self.lock().get(&id.0).is_some_and(|s| !s.expired(now))
    }

    pub fn remove(&self, id: SessionId) {
        self.lock().remove(&id.0);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Counts failed sign-ins per client address.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl LoginThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (u32, Instant)>> {
        match self.failures.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// May `addr` try to sign in now?
    pub fn allows(&self, addr: IpAddr) -> bool {
        let now = Instant::now();
        match self.lock().get(&addr) {
            Some((count, since)) => {
                now.duration_since(*since) > FAILURE_WINDOW || *count < MAX_FAILURES
            }
            None => true,
        }
    }

    pub fn failed(&self, addr: IpAddr) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_THROTTLED && !map.contains_key(&addr) {
            map.retain(|_, (_, since)| now.duration_since(*since) <= FAILURE_WINDOW);
            if map.len() >= MAX_THROTTLED {
                if let Some(oldest) = map.iter().min_by_key(|(_, (_, s))| *s).map(|(a, _)| *a) {
                    map.remove(&oldest);
                }
            }
        }
        let entry = map.entry(addr).or_insert((0, now));
        if now.duration_since(entry.1) > FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity::Password {
            user: "alice".into(),
            password: "pw".into(),
        }
    }

    #[test]
    fn tokens_are_random_and_sessions_found_by_token_only() {
        let sessions = Sessions::default();
        let t1 = sessions.create(alice());
        let t2 = sessions.create(alice());
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 43);
        let s1 = sessions.get(&t1).unwrap();
        assert_eq!(s1.identity, alice());
        assert_ne!(s1.csrf, sessions.get(&t2).unwrap().csrf);
        assert!(sessions.get("not-a-token").is_none());
        sessions.remove(s1.id);
        assert!(sessions.get(&t1).is_none());
        assert!(!sessions.is_live(s1.id));
        assert!(sessions.get(&t2).is_some());
    }

    #[test]
    fn sessions_per_identity_are_bounded() {
        let sessions = Sessions::default();
        let first = sessions.create(alice());
        for _ in 0..MAX_PER_IDENTITY {
            sessions.create(alice());
        }
        assert_eq!(sessions.len(), MAX_PER_IDENTITY);
        assert!(sessions.get(&first).is_none(), "the oldest went");
    }

    #[test]
    fn throttle_after_repeated_failures() {
        let t = LoginThrottle::default();
        let addr: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(t.allows(addr));
            t.failed(addr);
        }
        assert!(!t.allows(addr));
        // A success does not reset the count: one good account must not unlock guessing.
        assert!(t.allows("192.0.2.2".parse().unwrap()));
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
