//! Is this request from Slack, and new? Slack signs every interactivity request:
//! `X-Slack-Signature: v0=<hex HMAC-SHA256(signing_secret, "v0:{timestamp}:{raw body}")>`
//! with `X-Slack-Request-Timestamp`. A request outside ±5 minutes is refused (a captured
//! request cannot be replayed later), and within that window every signature and every
//! click is accepted once (it cannot be replayed sooner either).

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a request's timestamp may be from now, either way.
pub const WINDOW_SECS: i64 = 300;

/// Why a request was refused (the reason label in metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No (or an unreadable) signature or timestamp header.
    Unsigned,
    /// The timestamp is more than [`WINDOW_SECS`] away from now.
    Stale,
    /// The signature does not match the body.
    BadSignature,
    /// This request, or this click, was seen before.
    Replayed,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::Stale => "stale",
            Refusal::BadSignature => "bad_signature",
            Refusal::Replayed => "replayed",
        }
    }
}

/// `v0=<hex HMAC-SHA256(secret, "v0:{timestamp}:{body}")>`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Check a request's signature headers against its raw body, at `now`.
pub fn check(
    secret: &str,
    timestamp: Option<&str>,
    signature_header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Refusal> {
    let (Some(timestamp), Some(given)) = (timestamp, signature_header) else {
        return Err(Refusal::Unsigned);
    };
    let at: i64 = timestamp.trim().parse().map_err(|_| Refusal::Unsigned)?;
    if (now - at).abs() > WINDOW_SECS {
        return Err(Refusal::Stale);
    }
    let expected = signature(secret, timestamp, body);
    // Constant time: an attacker learns nothing from how long the refusal took.
    if expected.as_bytes().ct_eq(given.trim().as_bytes()).into() {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

/// Keys seen within the window (signatures, clicks, Socket Mode envelopes): each is
/// accepted once.
#[derive(Default)]
pub struct Seen {
    keys: Mutex<HashMap<String, i64>>,
}

impl Seen {
    /// Remember `key` at `now`; false if it was already seen within the window. Entries
    /// older than twice the window are dropped as new ones come (a timestamp can be up
    /// to one window old when first seen and is refused after that).
    pub fn first(&self, key: &str, now: i64) -> bool {
        let Ok(mut keys) = self.keys.lock() else {
            // A poisoned lock: refuse rather than risk accepting a replay.
            return false;
        };
        if keys.len() > 1024 {
            keys.retain(|_, at| now - *at <= 2 * WINDOW_SECS);
        }
        match keys.get(key) {
            Some(at) if now - *at <= 2 * WINDOW_SECS => false,
            _ => {
                keys.insert(key.to_string(), now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slacks_documented_example_verifies() {
        // The worked example in Slack's "Verifying requests from Slack".
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(signature(secret, "1531420618", body), expected);
        assert_eq!(
            check(
                secret,
                Some("1531420618"),
                Some(expected),
                body,
                1531420618 + 10
            ),
            Ok(())
        );
    }

    #[test]
    fn forged_stale_and_unsigned_requests_are_refused() {
        let good = signature("s", "1000", b"payload=x");
        let check =
            |ts: Option<&str>, sig: Option<&str>, body: &[u8], now| check("s", ts, sig, body, now);
        assert_eq!(check(Some("1000"), Some(&good), b"payload=x", 1000), Ok(()));
        assert_eq!(
            check(Some("1000"), Some(&good), b"payload=y", 1000),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            check(
                Some("1000"),
                Some(&signature("other", "1000", b"payload=x")),
                b"payload=x",
                1000
            ),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            check(
                Some("1000"),
                Some(&good),
                b"payload=x",
                1000 + WINDOW_SECS + 1
            ),
            Err(Refusal::Stale)
        );
        assert_eq!(
            check(
                Some("1000"),
                Some(&good),
                b"payload=x",
                1000 - WINDOW_SECS - 1
            ),
            Err(Refusal::Stale)
        );
        assert_eq!(
            check(None, Some(&good), b"payload=x", 1000),
            Err(Refusal::Unsigned)
        );
        assert_eq!(
            check(Some("1000"), None, b"payload=x", 1000),
            Err(Refusal::Unsigned)
        );
        assert_eq!(
            check(Some("soon"), Some(&good), b"payload=x", 1000),
            Err(Refusal::Unsigned)
        );
    }

    #[test]
    fn a_key_is_accepted_once_within_the_window() {
        let seen = Seen::default();
        assert!(seen.first("a", 1000));
        assert!(!seen.first("a", 1000 + WINDOW_SECS));
        assert!(seen.first("b", 1000));
        for i in 0..2000 {
            assert!(seen.first(&format!("k{i}"), 5000));
        }
        assert!(!seen.first("k7", 5000));
    }
}
