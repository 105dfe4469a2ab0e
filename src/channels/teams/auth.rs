//! Who is calling the invoke endpoint: the Bot Framework's bearer token, checked the way
//! its own SDKs check it. Only the token is signed, not the activity: the activity is
//! trusted because the token says the Bot Framework sent it (to this bot, from the
//! `serviceurl` the activity names).
//!
//! - RS256 only (`alg: none`, HMAC and the rest are refused before any key is looked at);
//! - the key named by `kid`, from the JWKS that the OpenID metadata names (`jwks_uri`),
//!   cached for a day and fetched again when an unknown `kid` arrives (at most once per
//!   [`MIN_REFETCH`], so forged tokens cannot make Airlock hammer the key server);
//! - if the key lists `endorsements`, the activity's `channelId` must be among them;
//! - `iss` = the configured issuer, `aud` = the bot's app id, `exp` and `nbf` with
//!   [`LEEWAY`] for clock skew;
//! - the `serviceurl` claim must equal the activity's `serviceUrl`.

use std::collections::HashMap;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

/// Clock skew allowed on `exp` and `nbf` (the Bot Framework SDKs allow five minutes).
pub const LEEWAY: Duration = Duration::from_secs(300);
/// Keys are fetched again after this long (Microsoft rotates them; daily is advised).
const KEYS_TTL: Duration = Duration::from_secs(24 * 3600);
/// An unknown `kid` fetches the keys again, but not more often than this.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a token was refused (logged; the caller only hears "unauthorized").
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no `Authorization: Bearer` token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("algorithm {0:?}: only RS256 is accepted")]
    Algorithm(Algorithm),
    #[error("no signing key `{0}` in the OpenID keys")]
    UnknownKey(String),
    #[error("signing key `{kid}` is not endorsed for channel `{channel}`")]
    NotEndorsed { kid: String, channel: String },
    #[error("token refused: {0}")]
    Invalid(String),
    #[error("the serviceurl claim does not match the activity's serviceUrl")]
    ServiceUrl,
    #[error("signing keys unavailable: {0}")]
    Keys(String),
}

#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    /// Channels the key may sign for (`msteams`); absent: any.
    endorsements: Option<Vec<String>>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, Key>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

impl Keys {
    fn fresh(&self) -> bool {
        self.fetched.is_some_and(|at| at.elapsed() < KEYS_TTL)
    }

    fn may_fetch(&self) -> bool {
        self.attempted.is_none_or(|at| at.elapsed() >= MIN_REFETCH)
    }
}

/// The claims Airlock reads (the rest are checked by [`Validation`]).
#[derive(Deserialize)]
struct Claims {
    serviceurl: Option<String>,
}

/// Checks Bot Framework tokens.
pub struct Verifier {
    app_id: String,
    issuer: String,
    metadata_url: String,
    client: reqwest::Client,
    keys: RwLock<Keys>,
    /// One fetch at a time; waiters then find the new keys.
    fetching: Mutex<()>,
}

impl Verifier {
    pub fn new(
        app_id: String,
        issuer: String,
        metadata_url: String,
        client: reqwest::Client,
    ) -> Verifier {
        Verifier {
            app_id,
            issuer,
            metadata_url,
            client,
            keys: RwLock::default(),
            fetching: Mutex::new(()),
        }
    }

    /// Check `authorization` (the header's value) for an activity from `service_url` on
    /// `channel`.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        service_url: &str,
        channel: &str,
    ) -> Result<(), AuthError> {
        let token = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        // Unknown algorithms (`none` among them) fail to parse here.
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Algorithm(header.alg));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Malformed("no `kid` in the header".into()))?;
        let key = self.key(&kid).await?;
        if let Some(endorsements) = &key.endorsements
            && !endorsements.iter().any(|e| e == channel)
        {
            return Err(AuthError::NotEndorsed {
                kid,
                channel: channel.to_string(),
            });
        }
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.app_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY.as_secs();
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|e| AuthError::Invalid(format!("{:?}", e.kind())))?
            .claims;
        if claims.serviceurl.as_deref() != Some(service_url) {
            return Err(AuthError::ServiceUrl);
        }
        Ok(())
    }

    /// The key `kid`: cached, or fetched (again) when the cache is stale or lacks it.
    async fn key(&self, kid: &str) -> Result<Key, AuthError> {
        if let Some(found) = self.cached(kid).await? {
            return Ok(found);
        }
        let _fetching = self.fetching.lock().await;
        // Another caller may have fetched while this one waited.
        if let Some(found) = self.cached(kid).await? {
            return Ok(found);
        }
        self.keys.write().await.attempted = Some(Instant::now());
        match self.fetch().await {
            Ok(by_kid) => {
                let mut keys = self.keys.write().await;
                keys.by_kid = by_kid;
                keys.fetched = Some(Instant::now());
                tracing::info!(keys = keys.by_kid.len(), "teams: signing keys fetched");
            }
            Err(e) => {
                tracing::warn!(error = %e, "teams: signing keys could not be fetched");
                // Stale keys still verify until new ones can be fetched.
                let keys = self.keys.read().await;
                return match keys.by_kid.get(kid) {
                    Some(key) => Ok(key.clone()),
                    None => Err(AuthError::Keys(e)),
                };
            }
        }
        let keys = self.keys.read().await;
        keys.by_kid
            .get(kid)
            .cloned()
            .ok_or_else(|| AuthError::UnknownKey(kid.to_string()))
    }

    /// `Some(key)` from a fresh cache; `None` if a fetch is due (stale keys, or an unknown
    /// kid) and allowed; otherwise what the cache has (stale keys still verify), or an
    /// error for a kid it lacks.
    async fn cached(&self, kid: &str) -> Result<Option<Key>, AuthError> {
        let keys = self.keys.read().await;
        if keys.fresh()
            && let Some(key) = keys.by_kid.get(kid)
        {
            return Ok(Some(key.clone()));
        }
        if keys.may_fetch() {
            return Ok(None);
        }
        match keys.by_kid.get(kid) {
            Some(key) => Ok(Some(key.clone())),
            None if keys.fetched.is_none() => {
                Err(AuthError::Keys("not fetched yet; retrying shortly".into()))
            }
            None => Err(AuthError::UnknownKey(kid.to_string())),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Key>, String> {
        let metadata = self.get_json(&self.metadata_url).await?;
        let jwks_uri = metadata["jwks_uri"]
            .as_str()
            .ok_or_else(|| format!("{}: no jwks_uri", self.metadata_url))?;
        let jwks = self.get_json(jwks_uri).await?;
        let keys = jwks["keys"]
            .as_array()
            .ok_or_else(|| format!("{jwks_uri}: no keys"))?;
        Ok(keys.iter().filter_map(parse_key).collect())
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let response = self
            .client
            .get(url)
            .timeout(TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        response.json().await.map_err(|e| format!("{url}: {e}"))
    }
}

/// An RSA signing key of a JWKS (others are skipped).
fn parse_key(jwk: &serde_json::Value) -> Option<(String, Key)> {
    if jwk["kty"].as_str() != Some("RSA") || jwk["use"].as_str().is_some_and(|u| u != "sig") {
        return None;
    }
    let kid = jwk["kid"].as_str()?;
    let decoding = DecodingKey::from_rsa_components(jwk["n"].as_str()?, jwk["e"].as_str()?).ok()?;
    let endorsements = jwk["endorsements"].as_array().map(|list| {
        list.iter()
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect()
    });
    Some((
        kid.to_string(),
        Key {
            decoding,
            endorsements,
        },
    ))
}
