//! Google credentials per agent: each agent's Google calls carry a short-lived access
//! token of the agent's own service account (`Agent::gcp_service_account`), minted by
//! iamcredentials `generateAccessToken` with Airlock's own token as the caller.
//!
//! Airlock's own identity comes from Application Default Credentials through
//! `google-cloud-auth` (never hand-written): `GOOGLE_APPLICATION_CREDENTIALS` (a
//! service-account key or a workload identity federation file), `gcloud auth
//! application-default login`, or the metadata server (on Google Cloud; `GCE_METADATA_HOST`
//! elsewhere). It needs `iam.serviceAccounts.getAccessToken` (Service Account Token
//! Creator) on each agent's service account and nothing else. ADC is looked up at the
//! first Google call, not at start: an AWS-only deployment never looks for Google
//! credentials, and a missing one fails each Google call (transiently, retry after
//! fixing) instead of the whole proxy. The crate caches and refreshes that token itself.
//!
//! Tokens are kept in the shared `Cache`: per agent, reused only while the agent keeps
//! the same service account, refreshed `refresh_before` ahead of expiry, minted
//! single-flight (many concurrent requests of one agent make one call).
//!
//! Why one HTTPS call and not the `google-cloud-iam-credentials-v1` client: that client
//! (1.11, through gax-internal 0.7) builds its own HTTP client with the default roots and
//! offers no way to add a CA, so it could not trust `upstream.ca_file` (a TLS-inspecting
//! egress, a Private Service Connect endpoint behind a private CA, the tests' CA) short of
//! process-wide environment tricks; and building it resolves ADC and the universe domain,
//! which would need Google credentials at start. The call itself is one POST of two
//! fields, answered by two.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use google_cloud_auth::credentials::{AccessTokenCredentials, Builder as AdcBuilder};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use super::{Cache, CredentialsError, Expiring, Principal};
use crate::agents::{Agent, Secret};

pub const DEFAULT_IAMCREDENTIALS_ENDPOINT: &str = "https://iamcredentials.googleapis.com";
/// Every Google API; what the token may do is the service account's IAM roles.
pub const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Google's default ceiling for `generateAccessToken`.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// The lifetimes Google grants: up to 1 h, or 12 h where the organization policy
/// `constraints/iam.allowServiceAccountCredentialLifetimeExtension` lists the account.
pub const MIN_TOKEN_LIFETIME: Duration = Duration::from_secs(1);
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Airlock's own token only calls iamcredentials, which accepts this scope.
const OWN_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// For Airlock's own token, and again for the `generateAccessToken` call.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A service account e-mail as one path segment (`/` or `:` would change the method).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// `credentials.google`: how agents' Google tokens are minted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GoogleConfig {
    /// The IAM Service Account Credentials API (Private Service Connect, tests).
    pub iamcredentials_endpoint: String,
    /// OAuth scopes of every agent token.
    pub scopes: Vec<String>,
    /// Lifetime of each agent token (Google allows up to 1h, 12h by organization policy).
    #[serde(with = "humantime_serde")]
    pub token_lifetime: Duration,
    /// A cached token is replaced this long before it expires.
    #[serde(with = "humantime_serde")]
    pub refresh_before: Duration,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        GoogleConfig {
            iamcredentials_endpoint: DEFAULT_IAMCREDENTIALS_ENDPOINT.to_string(),
            scopes: vec![DEFAULT_SCOPE.to_string()],
            token_lifetime: DEFAULT_TOKEN_LIFETIME,
            refresh_before: DEFAULT_REFRESH_BEFORE,
        }
    }
}

/// Settings of the Google broker (the `credentials.google` config section).
#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub iamcredentials_endpoint: String,
    pub scopes: Vec<String>,
    pub token_lifetime: Duration,
    pub refresh_before: Duration,
}

impl From<&GoogleConfig> for GoogleSettings {
    fn from(config: &GoogleConfig) -> Self {
        GoogleSettings {
            iamcredentials_endpoint: config.iamcredentials_endpoint.clone(),
            scopes: config.scopes.clone(),
            token_lifetime: config.token_lifetime,
            refresh_before: config.refresh_before,
        }
    }
}

/// One agent's access token, acting as its service account.
pub struct GoogleToken {
    pub access_token: Secret,
    pub expiration: SystemTime,
    /// The service account it acts as: an agent edited to another one gets a new token,
    /// never this one.
    pub service_account: String,
}

impl Expiring for GoogleToken {
    fn expiration(&self) -> SystemTime {
        self.expiration
    }
}

impl std::fmt::Debug for GoogleToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleToken")
            .field("service_account", &self.service_account)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct GenerateAccessTokenRequest<'a> {
    scope: &'a [String],
    /// A protobuf `Duration` in JSON: whole seconds and an `s`.
    lifetime: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAccessTokenResponse {
    access_token: String,
    /// RFC 3339.
    expire_time: String,
}

/// Google's error body: `{"error": {"code", "message", "status", "details"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorStatus,
}

#[derive(Deserialize)]
struct ErrorStatus {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
}

pub struct GoogleBroker {
    http: reqwest::Client,
    settings: GoogleSettings,
    /// Airlock's own credentials, found at the first call that needs them.
    own: OnceCell<AccessTokenCredentials>,
    tokens: Cache<GoogleToken>,
}

impl GoogleBroker {
    /// A broker whose calls to iamcredentials trust `tls`'s roots (the public ones plus
    /// `upstream.ca_file`). Does not look for Airlock's own Google credentials yet.
    pub async fn new(
        settings: GoogleSettings,
        tls: rustls::ClientConfig,
    ) -> Result<GoogleBroker, CredentialsError> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            // Airlock is the proxy; its own calls go straight out.
            .no_proxy()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                CredentialsError::Setup(format!(
                    "cannot build the Google credential broker's HTTP client: {}",
                    describe(&e)
                ))
            })?;
        Ok(GoogleBroker {
            http,
            tokens: Cache::new(settings.refresh_before),
            settings,
            own: OnceCell::new(),
        })
    }

    /// Count every `generateAccessToken` call in `fetches` (by result: ok, error).
    pub fn counted(mut self, fetches: prometheus::IntCounterVec) -> Self {
        self.tokens.fetches = Some(fetches);
        self
    }

    /// The agent's current token, minted if there is none, it is due for refresh, or the
    /// agent's service account changed. Concurrent callers for one agent wait for a single
    /// `generateAccessToken`.
    pub async fn token(&self, agent: &Agent) -> Result<Arc<GoogleToken>, CredentialsError> {
        let Some(service_account) = agent.gcp_service_account.as_deref() else {
            return Err(CredentialsError::NoIdentity {
                agent: agent.name.clone(),
                missing: "Google service account",
                cloud: "Google Cloud",
            });
        };
        self.tokens
            .get(
                agent,
                |token| token.service_account == service_account,
                self.generate(agent, service_account),
            )
            .await
    }

    async fn generate(
        &self,
        agent: &Agent,
        service_account: &str,
    ) -> Result<GoogleToken, CredentialsError> {
        let refused = |message: String| CredentialsError::Impersonate {
            agent: agent.name.clone(),
            service_account: service_account.to_string(),
            message,
        };
        let unavailable = |message: String| CredentialsError::Unavailable {
            agent: agent.name.clone(),
            principal: Principal::ServiceAccount(service_account.to_string()),
            message,
        };
        let own = self.own_token().await.map_err(unavailable)?;
        let endpoint = self.settings.iamcredentials_endpoint.trim_end_matches('/');
        let url = format!(
            "{endpoint}/v1/projects/-/serviceAccounts/{}:generateAccessToken",
            utf8_percent_encode(service_account, SEGMENT)
        );
        let body = GenerateAccessTokenRequest {
            scope: &self.settings.scopes,
            lifetime: format!("{}s", self.settings.token_lifetime.as_secs()),
        };
        let unreachable = |e: reqwest::Error| {
            unavailable(format!("iamcredentials at {endpoint}: {}", describe(&e)))
        };
        let response = self
            .http
            .post(&url)
            .bearer_auth(own.expose())
            .json(&body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            let message = google_error(status, &bytes);
            return Err(if is_refusal(status) {
                refused(message)
            } else {
                unavailable(message)
            });
        }
        // serde's message could quote a value (the token): only where it went wrong.
        let answer: GenerateAccessTokenResponse = serde_json::from_slice(&bytes).map_err(|e| {
            refused(format!(
                "iamcredentials answered {status} without a readable token (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let expiration = time::OffsetDateTime::parse(
            &answer.expire_time,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| {
            refused(format!(
                "iamcredentials answered an unreadable expireTime `{}`: {e}",
                answer.expire_time
            ))
        })?;
        Ok(GoogleToken {
            access_token: Secret::new(answer.access_token),
            expiration: expiration.into(),
            service_account: service_account.to_string(),
        })
    }

    /// Airlock's own access token from Application Default Credentials.
    async fn own_token(&self) -> Result<Secret, String> {
        let help = |e: &str| {
            format!(
                "Airlock cannot get its own Google access token from Application Default \
                 Credentials ({e}); give it credentials through GOOGLE_APPLICATION_CREDENTIALS \
                 (a service-account key or workload identity federation file), `gcloud auth \
                 application-default login`, or a metadata server (on Google Cloud, or at \
                 GCE_METADATA_HOST)"
            )
        };
        // A failed lookup (an unreadable GOOGLE_APPLICATION_CREDENTIALS file) is not kept:
        // the next call looks again.
        let credentials = self
            .own
            .get_or_try_init(|| async {
                AdcBuilder::default()
                    .with_scopes([OWN_SCOPE])
                    .build_access_token_credentials()
            })
            .await
            .map_err(|e| help(&describe(&e)))?;
        match tokio::time::timeout(TIMEOUT, credentials.access_token()).await {
            Ok(Ok(token)) => Ok(Secret::new(token.token)),
            Ok(Err(e)) => Err(help(&describe_adc(&e))),
            Err(_) => Err(help(&format!("no token within {}s", TIMEOUT.as_secs()))),
        }
    }
}

/// Google said no, and asking again will not change that: a bad request, Airlock's own
/// credentials rejected (401), no permission on the service account (403), no such
/// account (404). A timeout, throttling and server errors may pass.
fn is_refusal(status: reqwest::StatusCode) -> bool {
    status.is_client_error()
        && status != reqwest::StatusCode::REQUEST_TIMEOUT
        && status != reqwest::StatusCode::TOO_MANY_REQUESTS
}

/// An error answer as one line: the HTTP status, Google's status name and its message
/// (which names the permission but not the account; the error around it does).
fn google_error(status: reqwest::StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { error }) if !error.message.is_empty() => {
            let name = if error.status.is_empty() {
                String::new()
            } else {
                format!(" {}", error.status)
            };
            format!(
                "iamcredentials answered {}{name}: {}",
                status.as_u16(),
                error.message
            )
        }
        // Not Google's shape (a proxy or load balancer in between): its first line.
        _ => {
            let text = String::from_utf8_lossy(body);
            let first = text.lines().next().unwrap_or_default();
            let first: String = first.chars().take(200).collect();
            format!("iamcredentials answered {status}: {first}")
        }
    }
}

/// google-cloud-auth wraps a failure in layers of its `CredentialsError` (each adding "…
/// but future attempts may succeed") and of gax errors: the cause under the innermost
/// layer says what happened (a refused connection, a rejected refresh token); without
/// one, that layer's own message does.
fn describe_adc(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<google_cloud_auth::errors::CredentialsError>() {
            innermost = e;
        }
        next = e.source();
    }
    match innermost.source() {
        Some(cause) => describe(cause),
        None => innermost.to_string(),
    }
}

/// An error and its causes as one line, each message once.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_a_client_error_that_retrying_will_not_fix() {
        for code in [400, 401, 403, 404] {
            assert!(
                is_refusal(reqwest::StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(
                !is_refusal(reqwest::StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn googles_error_body_is_one_line_with_status_and_message() {
        let body = br#"{"error": {"code": 404, "message": "Not found; Gaia id not found for email ghost@p.iam.gserviceaccount.com", "status": "NOT_FOUND"}}"#;
        assert_eq!(
            google_error(reqwest::StatusCode::NOT_FOUND, body),
            "iamcredentials answered 404 NOT_FOUND: Not found; Gaia id not found for email \
             ghost@p.iam.gserviceaccount.com"
        );
        assert_eq!(
            google_error(
                reqwest::StatusCode::BAD_GATEWAY,
                b"<html>bad gateway</html>\nmore"
            ),
            "iamcredentials answered 502 Bad Gateway: <html>bad gateway</html>"
        );
    }

    #[test]
    fn the_service_account_is_one_path_segment() {
        assert_eq!(
            utf8_percent_encode("ci@p.iam.gserviceaccount.com", SEGMENT).to_string(),
            "ci@p.iam.gserviceaccount.com"
        );
        assert_eq!(
            utf8_percent_encode("a/b:c?d", SEGMENT).to_string(),
            "a%2Fb%3Ac%3Fd"
        );
    }

    #[test]
    fn a_token_debug_shows_no_token() {
        let token = GoogleToken {
            access_token: Secret::new("ya29.secret-value".into()),
            expiration: SystemTime::UNIX_EPOCH,
            service_account: "ci@p.iam.gserviceaccount.com".into(),
        };
        let debug = format!("{token:?}");
        assert!(!debug.contains("ya29"), "{debug}");
        assert!(debug.contains("ci@p.iam.gserviceaccount.com"), "{debug}");
    }
}
