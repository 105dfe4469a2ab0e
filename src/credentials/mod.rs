//! Short-lived credentials per agent, one broker per cloud:
//!
//! | module     | Airlock's own identity                         | per agent                                   |
//! |------------|------------------------------------------------|---------------------------------------------|
//! | [`aws`]    | the standard AWS chain (`aws-config`)          | an STS AssumeRole session into its role     |
//! | [`google`] | Application Default Credentials (`google-cloud-auth`) | an iamcredentials access token of its service account |
//!
//! Both brokers keep what they fetched in one `Cache`: per agent, reused until
//! `refresh_before` ahead of expiry and only while the agent's cloud identity is unchanged,
//! fetched single-flight (many concurrent requests of one agent make one call), and a
//! failure is answered from memory for [`FAILURE_BACKOFF`] instead of being retried by
//! every caller. Neither prints a secret: tokens and keys are [`crate::agents::Secret`]s.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dashmap::DashMap;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::agents::Agent;

pub mod aws;
pub mod google;

pub use aws::{
    Broker, BrokerSettings, DEFAULT_CREDENTIALS_REGION, DEFAULT_REFRESH_BEFORE,
    DEFAULT_SESSION_DURATION, SessionCredentials,
};
pub use google::{GoogleBroker, GoogleConfig, GoogleSettings, GoogleToken};

/// Whom Airlock acts as for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An AWS IAM role ARN.
    Role(String),
    /// A Google service account e-mail.
    ServiceAccount(String),
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Role(role) => write!(f, "role {role}"),
            Principal::ServiceAccount(email) => write!(f, "service account {email}"),
        }
    }
}

impl Principal {
    /// Whether `agent` still acts as this principal.
    fn is_of(&self, agent: &Agent) -> bool {
        match self {
            Principal::Role(role) => agent.role.as_ref() == Some(role),
            Principal::ServiceAccount(email) => agent.gcp_service_account.as_ref() == Some(email),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialsError {
    /// STS answered and refused (role trust, permissions, an unknown role).
    #[error("cannot assume role {role} for agent `{agent}`: {message}")]
    AssumeRole {
        agent: String,
        role: String,
        message: String,
    },
    /// iamcredentials answered and refused: Airlock may not impersonate the service
    /// account (403), it does not exist (404), or the request was invalid. Google's own
    /// message does not name the service account, so this error does.
    #[error("cannot impersonate service account {service_account} for agent `{agent}`: {message}")]
    Impersonate {
        agent: String,
        service_account: String,
        message: String,
    },
    /// The agent has no identity in the cloud it called: nothing to act as.
    #[error("agent `{agent}` has no {missing}, so Airlock cannot make its {cloud} calls")]
    NoIdentity {
        agent: String,
        /// "AWS role", "Google service account".
        missing: &'static str,
        cloud: &'static str,
    },
    /// The cloud could not be reached or did not answer, or Airlock has no base
    /// credentials of its own: worth retrying.
    #[error("cannot obtain credentials for agent `{agent}` ({principal}): {message}")]
    Unavailable {
        agent: String,
        principal: Principal,
        message: String,
    },
    /// A broker could not be built (its HTTP client); reported at start-up.
    #[error("{0}")]
    Setup(String),
}

impl CredentialsError {
    /// Whether this error was for `agent` as it is now (same name and identity).
    fn is_for(&self, agent: &Agent) -> bool {
        match self {
            CredentialsError::AssumeRole {
                agent: name, role, ..
            } => *name == agent.name && Some(role) == agent.role.as_ref(),
            CredentialsError::Impersonate {
                agent: name,
                service_account,
                ..
            } => *name == agent.name && Some(service_account) == agent.gcp_service_account.as_ref(),
            CredentialsError::Unavailable {
                agent: name,
                principal,
                ..
            } => *name == agent.name && principal.is_of(agent),
            CredentialsError::NoIdentity { .. } | CredentialsError::Setup(_) => false,
        }
    }

    /// Whether a retry may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, CredentialsError::Unavailable { .. })
    }
}

/// After a failed fetch, the agent's callers get the same error for this long instead of
/// each calling the cloud again (an outage is not made worse by a retry storm).
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(1);

/// A credential that expires.
trait Expiring {
    fn expiration(&self) -> SystemTime;
}

/// One agent's cached credential, or its last failure.
struct SlotState<T> {
    current: Option<Arc<T>>,
    failed: Option<(Instant, CredentialsError)>,
}

impl<T> Default for SlotState<T> {
    fn default() -> Self {
        SlotState {
            current: None,
            failed: None,
        }
    }
}

type Slot<T> = Arc<Mutex<SlotState<T>>>;

/// Every agent's credential of one cloud: keyed by agent name, fetched single-flight
/// (the slot's lock is held across the fetch), failures remembered for
/// [`FAILURE_BACKOFF`], each fetch counted by result.
struct Cache<T> {
    slots: DashMap<String, Slot<T>>,
    refresh_before: Duration,
    /// `airlock_sessions_total` or `airlock_google_tokens_total`, when serving.
    fetches: Option<prometheus::IntCounterVec>,
}

impl<T: Expiring> Cache<T> {
    fn new(refresh_before: Duration) -> Self {
        Cache {
            slots: DashMap::new(),
            refresh_before,
            fetches: None,
        }
    }

    /// The agent's cached credential if `still_fits` it (the agent's identity did not
    /// change) and it is not due for refresh; else the result of `fetch`, which only runs
    /// (and is only counted) then. Concurrent callers for one agent wait for one fetch.
    async fn get<F>(
        &self,
        agent: &Agent,
        still_fits: impl Fn(&T) -> bool,
        fetch: F,
    ) -> Result<Arc<T>, CredentialsError>
    where
        F: Future<Output = Result<T, CredentialsError>>,
    {
        // The common case (a known agent) takes a shard read lock and allocates nothing.
        let slot = match self.slots.get(&agent.name) {
            Some(slot) => Arc::clone(&*slot),
            None => Arc::clone(&*self.slots.entry(agent.name.clone()).or_default()),
        };
        let mut state = slot.lock().await;
        if let Some((at, error)) = &state.failed
            && at.elapsed() < FAILURE_BACKOFF
            && error.is_for(agent)
        {
            return Err(error.clone());
        }
        if let Some(current) = state.current.as_ref() {
            let left = current
                .expiration()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            if left > self.refresh_before && still_fits(current) {
                return Ok(Arc::clone(current));
            }
        }
        let fetched = fetch.await;
        if let Some(fetches) = &self.fetches {
            let result = if fetched.is_ok() { "ok" } else { "error" };
            fetches.with_label_values(&[result]).inc();
        }
        let fresh = match fetched {
            Ok(credential) => Arc::new(credential),
            Err(error) => {
                state.failed = Some((Instant::now(), error.clone()));
                return Err(error);
            }
        };
        state.failed = None;
        state.current = Some(Arc::clone(&fresh));
        Ok(fresh)
    }
}

/// How Airlock obtains the short-lived credentials it signs agents' calls with. Its own
/// base credentials come from each cloud's standard chain (AWS: environment, shared
/// profile, web identity, container, IMDS; Google: Application Default Credentials);
/// there is deliberately no setting for them here.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialsConfig {
    /// The region of Airlock's STS client.
    pub region: String,
    /// An STS endpoint URL instead of AWS's (VPC endpoints, tests).
    pub sts_endpoint: Option<String>,
    /// Lifetime of each agent's AssumeRole session (STS allows 15m to 12h).
    #[serde(with = "humantime_serde")]
    pub session_duration: Duration,
    /// A cached session is replaced this long before it expires.
    #[serde(with = "humantime_serde")]
    pub refresh_before: Duration,
    /// Google service-account tokens (`credentials.google`).
    pub google: GoogleConfig,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        CredentialsConfig {
            region: DEFAULT_CREDENTIALS_REGION.to_string(),
            sts_endpoint: None,
            session_duration: DEFAULT_SESSION_DURATION,
            refresh_before: DEFAULT_REFRESH_BEFORE,
            google: GoogleConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests;
