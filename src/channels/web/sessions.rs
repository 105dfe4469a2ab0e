//! The web page's sessions: server-side, by the SHA-256 of a random 256-bit id (so the
//! memory holds nothing a browser could present), each with its CSRF token and expiry.

use std::time::{Duration, Instant};

use base64::Engine;
use dashmap::DashMap;
use sha2::{Digest, Sha256};

use super::pages;

/// Sessions kept at most; expired ones are swept on each sign-in.
const MAX_SESSIONS: usize = 10_000;

/// A signed-in reviewer.
struct Session {
    approver: String,
    csrf: String,
    expires: Instant,
    /// A one-shot message for the next page (after a vote's redirect).
    flash: Option<pages::Notice>,
}

/// The server-side sessions, by SHA-256 of their id (the cookie's value).
pub(super) struct Sessions {
    pub(super) ttl: Duration,
    by_key: DashMap<String, Session>,
}

/// A live session, as a request finds it.
pub(super) struct Found {
    pub(super) key: String,
    pub(super) approver: String,
    pub(super) csrf: String,
}

impl Sessions {
    pub(super) fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            by_key: DashMap::new(),
        }
    }

    /// A new session for `approver` at `now`: its id (for the cookie; 256 random bits), or
    /// `None` when [`MAX_SESSIONS`] are live or the random generator failed.
    pub(super) fn open(&self, approver: &str, now: Instant) -> Option<String> {
        self.by_key.retain(|_, s| s.expires > now);
        if self.by_key.len() >= MAX_SESSIONS {
            return None;
        }
        let (id, csrf) = (random_token().ok()?, random_token().ok()?);
        self.by_key.insert(
            session_key(&id),
            Session {
                approver: approver.to_string(),
                csrf,
                expires: now + self.ttl,
                flash: None,
            },
        );
        Some(id)
    }

    /// The live session with this id at `now` (an expired one is removed).
    pub(super) fn find(&self, id: &str, now: Instant) -> Option<Found> {
        let key = session_key(id);
        let session = self.by_key.get(&key)?;
        if session.expires <= now {
            drop(session);
            self.by_key.remove(&key);
            return None;
        }
        Some(Found {
            approver: session.approver.clone(),
            csrf: session.csrf.clone(),
            key,
        })
    }

    pub(super) fn end(&self, key: &str) {
        self.by_key.remove(key);
    }

    pub(super) fn set_flash(&self, key: &str, notice: pages::Notice) {
        if let Some(mut session) = self.by_key.get_mut(key) {
            session.flash = Some(notice);
        }
    }

    pub(super) fn take_flash(&self, key: &str) -> Option<pages::Notice> {
        self.by_key.get_mut(key)?.flash.take()
    }
}

fn session_key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// 256 random bits, base64url.
pub(super) fn random_token() -> Result<String, ()> {
    let mut bytes = [0u8; 32];
    crate::tls::crypto_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| ())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lasts_its_ttl_and_ends_when_signed_out() {
        let sessions = Sessions::new(Duration::from_secs(3600));
        let start = Instant::now();
        let id = sessions.open("bob@example.com", start).unwrap();
        let found = sessions
            .find(&id, start + Duration::from_secs(3599))
            .unwrap();
        assert_eq!(found.approver, "bob@example.com");
        assert_eq!(found.key, session_key(&id));
        assert!(
            !sessions.by_key.contains_key(&id),
            "only the id's hash is kept"
        );
        assert!(sessions.find("not-a-session", start).is_none());
        // Expired: gone for good, even if asked about at an earlier time again.
        assert!(
            sessions
                .find(&id, start + Duration::from_secs(3600))
                .is_none()
        );
        assert!(sessions.find(&id, start).is_none());

        let id = sessions.open("bob@example.com", start).unwrap();
        let key = sessions.find(&id, start).unwrap().key;
        sessions.end(&key);
        assert!(sessions.find(&id, start).is_none());
    }

    #[test]
    fn random_tokens_are_256_bits_and_differ() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }
}
