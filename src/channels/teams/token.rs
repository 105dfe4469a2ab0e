//! The bot's own token: OAuth 2.0 client credentials (app id + password) for the Bot
//! Connector's scope, cached until shortly before it expires.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::super::Failure;

/// The Bot Connector's scope.
pub const SCOPE: &str = "https://api.botframework.com/.default";
/// A token is replaced this long before it expires (or at half its life, if shorter).
const RENEW_BEFORE: Duration = Duration::from_secs(300);
const TIMEOUT: Duration = Duration::from_secs(10);

/// Bot tokens from `token_url`. Never logs the password or a token.
pub struct BotTokens {
    url: String,
    app_id: String,
    password: String,
    client: reqwest::Client,
    /// The current token and when to stop using it; the lock also makes one request
    /// serve every caller that finds it missing (single flight).
    cached: Mutex<Option<(String, Instant)>>,
}

impl BotTokens {
    pub fn new(url: String, app_id: String, password: String, client: reqwest::Client) -> Self {
        BotTokens {
            url,
            app_id,
            password,
            client,
            cached: Mutex::new(None),
        }
    }

    /// A valid token, from the cache or freshly issued.
    pub async fn get(&self) -> Result<String, Failure> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.issue().await?;
        let renew = RENEW_BEFORE.min(lifetime / 2);
        *cached = Some((token.clone(), Instant::now() + lifetime - renew));
        Ok(token)
    }

    /// Drop the cached token (the connector refused it).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn issue(&self) -> Result<(String, Duration), Failure> {
        let response = self
            .client
            .post(&self.url)
            .timeout(TIMEOUT)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", self.app_id.as_str()),
                ("client_secret", self.password.as_str()),
                ("scope", SCOPE),
            ])
            .send()
            .await
            .map_err(|e| Failure::transient(format!("bot token from {}: {e}", self.url)))?;
        let status = response.status();
        if !status.is_success() {
            let mut failure = Failure::from_status(status, &format!("bot token from {}", self.url));
            failure.retry_after = super::super::retry_after(response.headers());
            return Err(failure);
        }
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| Failure::transient(format!("bot token from {}: {e}", self.url)))?;
        let token = body["access_token"]
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Failure::permanent(format!("bot token from {}: no access_token", self.url))
            })?;
        // Entra's v2 endpoint sends a number; v1 sent a string.
        let seconds = body["expires_in"]
            .as_u64()
            .or_else(|| body["expires_in"].as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0);
        Ok((token.to_string(), Duration::from_secs(seconds)))
    }
}
