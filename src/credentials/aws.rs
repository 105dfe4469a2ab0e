//! AWS credentials per agent: Airlock's own base credentials come from the standard
//! AWS chain (`aws-config`: environment, shared profile, web identity, container, IMDS);
//! each agent's calls are signed with an STS AssumeRole session into the agent's role.
//!
//! Sessions are named after the agent and carry `SourceIdentity` = agent and session tags
//! `airlock-agent` / `airlock-owner`, so CloudTrail attributes every call. They are kept in
//! the shared `Cache`: per agent, refreshed `refresh_before` ahead of expiry, fetched
//! single-flight (many concurrent requests of one agent make one AssumeRole call).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_sts::types::Tag;

use super::{Cache, CredentialsConfig, CredentialsError, Expiring, Principal};
use crate::agents::{Agent, Secret};

pub const DEFAULT_SESSION_DURATION: Duration = Duration::from_secs(900);
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// One agent's role session.
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret: Secret,
    pub session_token: Secret,
    pub expiration: SystemTime,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<agent>`.
    pub assumed_role_arn: String,
    /// The role and owner it was assumed for: an agent re-added or edited under the same
    /// name with another role or owner gets a new session, never the old one.
    role: String,
    owner: String,
}

impl Expiring for SessionCredentials {
    fn expiration(&self) -> SystemTime {
        self.expiration
    }
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .finish_non_exhaustive()
    }
}

/// Settings of the broker (the `credentials` config section).
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub region: String,
    /// Override the STS endpoint (tests, VPC endpoints); default: AWS's regional endpoint.
    pub sts_endpoint: Option<String>,
    pub session_duration: Duration,
    pub refresh_before: Duration,
}

/// An SDK error as one readable line: each cause's message, without the SDK's debug dump.
/// A failure to load Airlock's own credentials says where they come from.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut no_credentials = false;
    let mut next = Some(error);
    while let Some(e) = next {
        no_credentials |= e
            .downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
            .is_some();
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    let line = parts.join(": ");
    if no_credentials {
        format!(
            "Airlock has no AWS credentials of its own ({line}); give it some through the \
             standard chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web \
             identity, or a container or instance role"
        )
    } else {
        line
    }
}

impl From<&CredentialsConfig> for BrokerSettings {
    fn from(config: &CredentialsConfig) -> Self {
        BrokerSettings {
            region: config.region.clone(),
            sts_endpoint: config.sts_endpoint.clone(),
            session_duration: config.session_duration,
            refresh_before: config.refresh_before,
        }
    }
}

pub struct Broker {
    sts: aws_sdk_sts::Client,
    settings: BrokerSettings,
    sessions: Cache<SessionCredentials>,
}

impl Broker {
    /// Load Airlock's base credentials from the standard chain and build the STS client.
    pub async fn new(settings: BrokerSettings) -> Broker {
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(settings.region.clone()))
            .load()
            .await;
        let mut sts = aws_sdk_sts::config::Builder::from(&base);
        if let Some(endpoint) = &settings.sts_endpoint {
            sts = sts.endpoint_url(endpoint);
        }
        Broker {
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            sessions: Cache::new(settings.refresh_before),
            settings,
        }
    }

    /// Count every AssumeRole call in `fetches` (by result: ok, error).
    pub fn counted(mut self, fetches: prometheus::IntCounterVec) -> Broker {
        self.sessions.fetches = Some(fetches);
        self
    }

    /// The agent's current session, assuming its role if there is none or it is due for
    /// refresh. Concurrent callers for one agent wait for a single AssumeRole.
    pub async fn session(
        &self,
        agent: &Agent,
    ) -> Result<Arc<SessionCredentials>, CredentialsError> {
        self.sessions
            .get(
                agent,
                |session| {
                    Some(&session.role) == agent.role.as_ref() && session.owner == agent.owner
                },
                self.assume(agent),
            )
            .await
    }

    async fn assume(&self, agent: &Agent) -> Result<SessionCredentials, CredentialsError> {
        let role = agent.role.clone().unwrap_or_default();
        let fail = |message: String| CredentialsError::AssumeRole {
            agent: agent.name.clone(),
            role: role.clone(),
            message,
        };
        let unavailable = |message: String| CredentialsError::Unavailable {
            agent: agent.name.clone(),
            principal: Principal::Role(role.clone()),
            message,
        };
        if agent.role.is_none() {
            return Err(fail("the agent has no AWS role".into()));
        }
        let tag = |key: &str, value: &str| {
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| fail(e.to_string()))
        };
        let duration = i32::try_from(self.settings.session_duration.as_secs()).unwrap_or(i32::MAX);
        let output = self
            .sts
            .assume_role()
            .role_arn(&role)
            .role_session_name(&agent.name)
            .source_identity(&agent.name)
            .duration_seconds(duration)
            .tags(tag("airlock-agent", &agent.name)?)
            .tags(tag("airlock-owner", &agent.owner)?)
            .send()
            .await
            .map_err(|e| {
                let message = describe(&e);
                // STS said no (a 4xx): a configuration problem. Anything else may pass.
                let refused = matches!(&e, aws_sdk_sts::error::SdkError::ServiceError(s)
                    if s.raw().status().is_client_error());
                if refused {
                    fail(message)
                } else {
                    unavailable(message)
                }
            })?;
        let credentials = output
            .credentials
            .ok_or_else(|| fail("STS returned no credentials".into()))?;
        let expiration =
            SystemTime::try_from(credentials.expiration).map_err(|e| fail(e.to_string()))?;
        Ok(SessionCredentials {
            access_key_id: credentials.access_key_id,
            secret: Secret::new(credentials.secret_access_key),
            session_token: Secret::new(credentials.session_token),
            expiration,
            assumed_role_arn: output.assumed_role_user.map(|u| u.arn).unwrap_or_default(),
            role: role.clone(),
            owner: agent.owner.clone(),
        })
    }
}

pub const DEFAULT_CREDENTIALS_REGION: &str = "us-east-1";
