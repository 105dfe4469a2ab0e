//! The Google credentials Airlock issues to agents: bearer tokens of its own format, never
//! Google's, each bound to the agent's access key id and derived from the server key.
//!
//! | kind    | text                                   | where it is accepted                       |
//! |---------|----------------------------------------|--------------------------------------------|
//! | refresh | `airlock-rt.<key id>.<mac>`            | the OAuth token endpoint only (refresh grant) |
//! | static  | `airlock-st.<key id>.<mac>`            | as a bearer token, until rotate or remove  |
//! | access  | `airlock-at.<key id>.<expiry>.<mac>`   | as a bearer token, until `expiry` (unix s) |
//!
//! `mac` is `base64url(HMAC-SHA256(server key, label ‖ key id [‖ "." expiry]))` with a
//! label per kind, so no kind of token can stand in for another. Nothing is stored:
//! rotating an agent (a new key id) or removing it revokes every token at once, and a
//! token is checked with one map lookup and a constant-time comparison.

use base64::Engine;

use super::ServerKey;

const REFRESH_PREFIX: &str = "airlock-rt.";
const STATIC_PREFIX: &str = "airlock-st.";
const ACCESS_PREFIX: &str = "airlock-at.";
const REFRESH_LABEL: &[u8] = b"airlock-google-refresh-v1:";
const STATIC_LABEL: &[u8] = b"airlock-google-static-v1:";
const ACCESS_LABEL: &[u8] = b"airlock-google-access-v1:";

/// The OAuth client id and secret written into an agent's `authorized_user` file. Google's
/// libraries require both; Airlock's token endpoint checks only the refresh token, so they
/// are not secret.
pub const CLIENT_ID: &str = "airlock-agent";
pub const CLIENT_SECRET: &str = "airlock-agent-not-secret";

/// A token Airlock issued, as the caller presented it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Refresh,
    Static,
    /// Minted by the token endpoint; valid until `expires` (unix seconds).
    Access {
        expires: u64,
    },
}

/// A bearer token that did not check out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not in Airlock's format: what it looks like, for the message.
    Foreign(Foreign),
    /// Airlock's format, but its key id names no agent (rotated, removed, or invented).
    UnknownKey,
    /// Airlock's format and a known key id, but the MAC is wrong (forged or corrupted).
    Forged,
    /// An access token past its expiry.
    Expired,
}

/// What a foreign bearer token looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// `ya29.…`: a Google OAuth access token.
    GoogleAccessToken,
    /// `eyJ…` with two dots: a JWT (Google-signed, or a service account's self-signed one).
    Jwt,
    Other,
}

impl Foreign {
    fn of(token: &str) -> Foreign {
        if token.starts_with("ya29.") {
            Foreign::GoogleAccessToken
        } else if token.starts_with("eyJ") && token.bytes().filter(|&b| b == b'.').count() == 2 {
            Foreign::Jwt
        } else {
            Foreign::Other
        }
    }
}

/// A token parsed from its text, not yet checked.
pub struct Presented<'a> {
    pub kind: TokenKind,
    pub key_id: &'a str,
    mac: &'a str,
}

/// Parse `token` into its kind, key id and MAC; nothing secret is touched.
pub fn parse(token: &str) -> Result<Presented<'_>, TokenError> {
    let foreign = || TokenError::Foreign(Foreign::of(token));
    let (kind, rest) = if let Some(rest) = token.strip_prefix(REFRESH_PREFIX) {
        (TokenKind::Refresh, rest)
    } else if let Some(rest) = token.strip_prefix(STATIC_PREFIX) {
        (TokenKind::Static, rest)
    } else if let Some(rest) = token.strip_prefix(ACCESS_PREFIX) {
        (TokenKind::Access { expires: 0 }, rest)
    } else {
        return Err(foreign());
    };
    let (key_id, rest) = rest.split_once('.').ok_or_else(foreign)?;
    let (kind, mac) = match kind {
        TokenKind::Access { .. } => {
            let (expires, mac) = rest.split_once('.').ok_or_else(foreign)?;
            let expires = expires.parse().map_err(|_| foreign())?;
            (TokenKind::Access { expires }, mac)
        }
        other => (other, rest),
    };
    if !key_id.starts_with(super::KEY_ID_PREFIX) || mac.contains('.') {
        return Err(foreign());
    }
    Ok(Presented { kind, key_id, mac })
}

impl Presented<'_> {
    /// Check the MAC (constant time) and, for access tokens, the expiry against `now`.
    pub fn verify(&self, key: &ServerKey, now: u64) -> Result<TokenKind, TokenError> {
        use subtle::ConstantTimeEq;
        let expected = mac(key, self.kind, self.key_id);
        if !bool::from(expected.as_bytes().ct_eq(self.mac.as_bytes())) {
            return Err(TokenError::Forged);
        }
        match self.kind {
            TokenKind::Access { expires } if expires <= now => Err(TokenError::Expired),
            kind => Ok(kind),
        }
    }
}

fn mac(key: &ServerKey, kind: TokenKind, key_id: &str) -> String {
    let digest = match kind {
        TokenKind::Refresh => key.mac(REFRESH_LABEL, &[key_id.as_bytes()]),
        TokenKind::Static => key.mac(STATIC_LABEL, &[key_id.as_bytes()]),
        TokenKind::Access { expires } => key.mac(
            ACCESS_LABEL,
            &[key_id.as_bytes(), b".", expires.to_string().as_bytes()],
        ),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// The token of `kind` for the agent holding `key_id`.
pub fn issue(key: &ServerKey, kind: TokenKind, key_id: &str) -> String {
    let mac = mac(key, kind, key_id);
    match kind {
        TokenKind::Refresh => format!("{REFRESH_PREFIX}{key_id}.{mac}"),
        TokenKind::Static => format!("{STATIC_PREFIX}{key_id}.{mac}"),
        TokenKind::Access { expires } => format!("{ACCESS_PREFIX}{key_id}.{expires}.{mac}"),
    }
}

/// The files an agent's Google tools read, written by `airlock agents add|rotate`.
pub struct CredentialFiles {
    /// `authorized_user` JSON for `GOOGLE_APPLICATION_CREDENTIALS`.
    pub application_credentials: std::path::PathBuf,
    /// The static token for `CLOUDSDK_AUTH_ACCESS_TOKEN_FILE`.
    pub access_token: std::path::PathBuf,
}

impl CredentialFiles {
    pub fn in_dir(dir: &std::path::Path) -> CredentialFiles {
        CredentialFiles {
            application_credentials: dir.join("google-credentials.json"),
            access_token: dir.join("google-access-token"),
        }
    }

    /// Write both files (0600, in a 0700 directory), replacing what was there.
    pub fn write(&self, refresh_token: &str, static_token: &str) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = self.application_credentials.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let json = serde_json::json!({
            "type": "authorized_user",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": refresh_token,
            "universe_domain": "googleapis.com",
        });
        for (path, text) in [
            (&self.application_credentials, format!("{json:#}\n")),
            (&self.access_token, format!("{static_token}\n")),
        ] {
            let _ = std::fs::remove_file(path);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
        }
        Ok(())
    }

    /// Remove both files (and the directory, if that leaves it empty).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.application_credentials);
        let _ = std::fs::remove_file(&self.access_token);
        if let Some(dir) = self.application_credentials.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_key() -> (tempfile::TempDir, ServerKey) {
        let dir = tempfile::tempdir().unwrap();
        let key = ServerKey::load(&dir.path().join("agents.key"), true).unwrap();
        (dir, key)
    }

    #[test]
    fn each_kind_round_trips_and_no_kind_stands_in_for_another() {
        let (_dir, key) = new_key();
        let id = "AIRLABCDEFGHIJKLMNOP";
        for kind in [
            TokenKind::Refresh,
            TokenKind::Static,
            TokenKind::Access { expires: 2_000 },
        ] {
            let token = issue(&key, kind, id);
            let presented = parse(&token).unwrap();
            assert_eq!(presented.key_id, id);
            assert_eq!(presented.verify(&key, 1_000), Ok(kind), "{token}");
        }
        // The refresh token's MAC under the static prefix is a forgery.
        let refresh = issue(&key, TokenKind::Refresh, id);
        let swapped = refresh.replacen(REFRESH_PREFIX, STATIC_PREFIX, 1);
        assert_eq!(
            parse(&swapped).unwrap().verify(&key, 0),
            Err(TokenError::Forged)
        );
        // An access token whose expiry was pushed out no longer verifies.
        let access = issue(&key, TokenKind::Access { expires: 2_000 }, id);
        let extended = access.replace(".2000.", ".9999999999.");
        assert_eq!(
            parse(&extended).unwrap().verify(&key, 1_000),
            Err(TokenError::Forged)
        );
        assert_eq!(
            parse(&access).unwrap().verify(&key, 2_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn another_server_key_or_key_id_does_not_verify() {
        let (_a, key) = new_key();
        let (_b, other) = new_key();
        let token = issue(&key, TokenKind::Static, "AIRLAAAAAAAAAAAAAAAA");
        assert_eq!(
            parse(&token).unwrap().verify(&other, 0),
            Err(TokenError::Forged)
        );
        let moved = token.replace("AIRLAAAAAAAAAAAAAAAA", "AIRLBBBBBBBBBBBBBBBB");
        assert_eq!(
            parse(&moved).unwrap().verify(&key, 0),
            Err(TokenError::Forged)
        );
    }

    #[test]
    fn foreign_tokens_are_named_for_what_they_look_like() {
        let foreign = |t: &str| match parse(t) {
            Err(TokenError::Foreign(f)) => f,
            _ => panic!("{t} parsed"),
        };
        assert_eq!(foreign("ya29.a0AfH6SMB"), Foreign::GoogleAccessToken);
        assert_eq!(
            foreign("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"),
            Foreign::Jwt
        );
        assert_eq!(foreign("garbage"), Foreign::Other);
        assert_eq!(foreign("airlock-st.nokeyid"), Foreign::Other);
        assert_eq!(foreign("airlock-st.XYZ.mac"), Foreign::Other);
        assert_eq!(foreign("airlock-at.AIRLX.notanumber.mac"), Foreign::Other);
        assert_eq!(foreign(""), Foreign::Other);
    }
}
