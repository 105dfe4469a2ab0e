//! Configuration: serde structs whose defaults are named constants, loaded from YAML with
//! every error reported at its file and line (see [`load`]).
//!
//! `default.yaml` beside this file is the commented default configuration that
//! `airlock init` writes; a test keeps it equal to [`Config::default`].

mod load;
mod validate;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use load::{ConfigError, ConfigErrors, load, parse};

/// The commented default configuration written by `airlock init`.
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default.yaml");

pub const DEFAULT_PROXY_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
pub const DEFAULT_CONTROL_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8081);
pub const DEFAULT_CA_DIR: &str = "certs";
/// Host certificates are short-lived: a leaked leaf key is useless within a day.
pub const DEFAULT_LEAF_VALIDITY: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_MAX_CACHED_LEAVES: usize = 10_000;
/// The domains of AWS (global, `api.aws` dual-stack, China) and Google APIs.
pub const DEFAULT_INTERCEPT: [&str; 4] = [
    "amazonaws.com",
    "api.aws",
    "amazonaws.com.cn",
    "googleapis.com",
];
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough for slow control-plane calls (CloudFormation, large S3 copies).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 64;
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_HEADER_COUNT: usize = 100;
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// SDKs time out reads after 60 s; an idle body for as long is a stuck peer.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_H2_STREAMS: u32 = 128;
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_LOG_LEVEL: &str = "info";
pub const DEFAULT_AGENTS_FILE: &str = "agents.yaml";
pub const DEFAULT_AGENTS_KEY_FILE: &str = "certs/agents.key";
/// JSON, query and REST-JSON requests are signed over their body bytes, so Airlock reads
/// them whole before forwarding; 64 MiB covers Lambda's largest direct upload.
pub const DEFAULT_MAX_BUFFERED_BODY: usize = 64 * 1024 * 1024;
pub const DEFAULT_CREDENTIALS_REGION: &str = "us-east-1";
pub const DEFAULT_RULES_DIR: &str = "rules";
pub const DEFAULT_AUDIT_FILE: &str = "audit/audit.jsonl";
pub const DEFAULT_APPROVALS_DB: &str = "approvals.db";
pub const DEFAULT_AUDIT_KEY_FILE: &str = "certs/audit.key";
pub const DEFAULT_AUDIT_ORIGIN: &str = "airlock/audit";
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1000;
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// The whole configuration. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub proxy: ProxyConfig,
    pub control: ControlConfig,
    pub ca: CaConfig,
    /// Host suffixes whose TLS is terminated and inspected.
    pub intercept: Vec<String>,
    /// Host suffixes relayed untouched.
    pub tunnel: Vec<String>,
    pub upstream: UpstreamConfig,
    pub limits: Limits,
    pub shutdown: ShutdownConfig,
    pub log: LogConfig,
    pub agents: AgentsConfig,
    pub credentials: CredentialsConfig,
    pub rules: RulesConfig,
    pub audit: AuditConfig,
    pub approvals: ApprovalsConfig,
    /// Where reviewers are asked: Slack, Teams, the web page; and webhooks.
    pub channels: ChannelsConfig,
    /// The directory relative paths are resolved from (the config file's directory).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            proxy: ProxyConfig::default(),
            control: ControlConfig::default(),
            ca: CaConfig::default(),
            intercept: DEFAULT_INTERCEPT.iter().map(|s| s.to_string()).collect(),
            tunnel: Vec::new(),
            upstream: UpstreamConfig::default(),
            limits: Limits::default(),
            shutdown: ShutdownConfig::default(),
            log: LogConfig::default(),
            agents: AgentsConfig::default(),
            credentials: CredentialsConfig::default(),
            rules: RulesConfig::default(),
            audit: AuditConfig::default(),
            approvals: ApprovalsConfig::default(),
            channels: ChannelsConfig::default(),
            base_dir: PathBuf::from("."),
        }
    }
}

impl Config {
    /// A path from the config, resolved against the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.resolve(&self.ca.dir)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: DEFAULT_PROXY_LISTEN,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    pub listen: SocketAddr,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            listen: DEFAULT_CONTROL_LISTEN,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaConfig {
    pub dir: PathBuf,
    #[serde(with = "humantime_serde")]
    pub leaf_validity: Duration,
    pub max_cached_leaves: usize,
}

impl Default for CaConfig {
    fn default() -> Self {
        CaConfig {
            dir: PathBuf::from(DEFAULT_CA_DIR),
            leaf_validity: DEFAULT_LEAF_VALIDITY,
            max_cached_leaves: DEFAULT_MAX_CACHED_LEAVES,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    pub routes: Vec<RouteConfig>,
    pub ca_file: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    pub pool_max_idle_per_host: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            routes: Vec::new(),
            ca_file: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
        }
    }
}

/// `{host: "<glob>", to: "https://ip:port"}`: send matching hosts elsewhere, keeping `Host`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub host: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_connections: usize,
    #[serde(with = "humantime_serde")]
    pub tls_handshake_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    pub max_header_count: usize,
    pub max_header_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub body_idle_timeout: Duration,
    pub max_h2_streams: u32,
    /// Largest request body read whole (bodies signed over their bytes, and small bodies
    /// the classifier reads); larger ones must be streamed with a declared payload hash.
    pub max_buffered_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_header_count: DEFAULT_MAX_HEADER_COUNT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            max_h2_streams: DEFAULT_MAX_H2_STREAMS,
            max_buffered_body: DEFAULT_MAX_BUFFERED_BODY,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: DEFAULT_LOG_LEVEL.to_string(),
        }
    }
}

/// Where agents are listed and the key their secrets derive from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// The agent list (no secrets; reviewable).
    pub file: PathBuf,
    /// 32 random bytes, mode 0600; every agent secret is derived from it.
    pub key_file: PathBuf,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            file: PathBuf::from(DEFAULT_AGENTS_FILE),
            key_file: PathBuf::from(DEFAULT_AGENTS_KEY_FILE),
        }
    }
}

/// How Airlock obtains the short-lived credentials it signs agents' calls with. Its own
/// base credentials come from the standard AWS chain (environment, shared profile, web
/// identity, container, IMDS); there is deliberately no setting for them here.
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
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        CredentialsConfig {
            region: DEFAULT_CREDENTIALS_REGION.to_string(),
            sts_endpoint: None,
            session_duration: crate::credentials::DEFAULT_SESSION_DURATION,
            refresh_before: crate::credentials::DEFAULT_REFRESH_BEFORE,
        }
    }
}

/// Where the rule files are.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    /// Every `*.yaml` here is a rule file (`tests/` below holds `airlock rules test` cases).
    pub dir: PathBuf,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig {
            dir: PathBuf::from(DEFAULT_RULES_DIR),
        }
    }
}

/// Approvals: where they are kept, and who may decide them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// SQLite database of approvals, votes and grants (WAL, synchronous=FULL).
    pub db: PathBuf,
    /// Reviewers: `{name, groups, token_sha256}` (make one with `airlock approvals token`).
    pub approvers: Vec<ApproverConfig>,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            db: PathBuf::from(DEFAULT_APPROVALS_DB),
            approvers: Vec::new(),
        }
    }
}

/// One reviewer. The token itself is never stored: only its SHA-256.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverConfig {
    /// The reviewer's identity (an e-mail address; compared with agents' owners).
    pub name: String,
    pub groups: Vec<String>,
    /// Hex SHA-256 of the reviewer's bearer token (API, CLI and web page); a reviewer who
    /// only decides in Slack or Teams needs none.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// Slack user id (`U…`). Without it, a Slack user is matched by the e-mail address
    /// Slack has for them (`users.info`), compared with `name`.
    #[serde(default)]
    pub slack_user: Option<String>,
    /// Microsoft Entra object id (the `aadObjectId` Teams sends).
    #[serde(default)]
    pub teams_aad_object_id: Option<String>,
}

/// Channels: where reviewers see approvals and decide, and who else hears of them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelsConfig {
    /// The address reviewers reach the control listener at (e.g.
    /// `https://airlock.example.com`): links in messages point to `<base_url>/ui/…`.
    /// Default: `http://<control.listen>`.
    pub base_url: Option<String>,
    pub web: WebConfig,
    pub slack: Option<SlackConfig>,
    pub teams: Option<TeamsConfig>,
    pub webhooks: Vec<WebhookConfig>,
}

/// The web page (`/ui` on the control listener).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    pub enabled: bool,
    /// How long a sign-in lasts.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` (set when reviewers reach Airlock over HTTPS,
    /// e.g. through a TLS-terminating load balancer).
    pub secure_cookie: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            session_ttl: Duration::from_secs(8 * 3600),
            secure_cookie: false,
        }
    }
}

/// Slack: a Block Kit message per approval, buttons, `chat.update` on every change.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Web API base (tests point it at a local fake).
    #[serde(default = "default_slack_api")]
    pub api_url: String,
    /// Bot token (`xoxb-…`), in a 0600 file.
    pub bot_token_file: PathBuf,
    /// The app's signing secret, in a 0600 file: verifies the clicks Slack sends to
    /// `POST /slack/interactivity`. Without it, only Socket Mode takes clicks.
    #[serde(default)]
    pub signing_secret_file: Option<PathBuf>,
    /// Slack channel id per approver group; a rule's first group with a channel is used.
    pub channels: BTreeMap<String, String>,
    /// Channel for approvals whose groups have none here.
    #[serde(default)]
    pub default_channel: Option<String>,
    /// Socket Mode (no public URL): the app-level token (`xapp-…`), in a 0600 file.
    #[serde(default)]
    pub app_token_file: Option<PathBuf>,
}

fn default_slack_api() -> String {
    "https://slack.com/api".into()
}

/// Microsoft Teams, through the Bot Framework.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// The bot's Microsoft App id: the audience of the tokens Teams sends.
    pub app_id: String,
    /// The bot's client secret, in a 0600 file.
    pub app_password_file: PathBuf,
    /// Where the bot gets its own tokens (client credentials).
    #[serde(default = "default_teams_token_url")]
    pub token_url: String,
    /// OpenID metadata naming the signing keys of tokens Teams sends.
    #[serde(default = "default_teams_openid")]
    pub openid_metadata_url: String,
    /// The issuer those tokens must name.
    #[serde(default = "default_teams_issuer")]
    pub issuer: String,
    /// The Bot Connector service URL of the tenant (`https://smba.trafficmanager.net/…`).
    pub service_url: String,
    /// Conversation id per approver group; a rule's first group with one is used.
    pub conversations: BTreeMap<String, String>,
    #[serde(default)]
    pub default_conversation: Option<String>,
}

fn default_teams_token_url() -> String {
    "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token".into()
}

fn default_teams_openid() -> String {
    "https://login.botframework.com/v1/.well-known/openidconfiguration".into()
}

fn default_teams_issuer() -> String {
    "https://api.botframework.com".into()
}

/// An outgoing webhook: every approval event, signed, retried.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// HMAC-SHA256 key, in a 0600 file; the signature goes in `X-Airlock-Signature`.
    pub secret_file: PathBuf,
    /// Events to send (requested, voted, approved, denied, expired); default all.
    #[serde(default)]
    pub events: Vec<String>,
}

/// The audit log.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// One JSON record per line; checkpoints in `<file>.checkpoints`.
    pub file: PathBuf,
    /// The Ed25519 signing key of checkpoints (32 bytes, mode 0600, created by init).
    pub key_file: PathBuf,
    /// The log's name in checkpoints and in the verifier key.
    pub origin: String,
    /// A signed checkpoint after this many records…
    pub checkpoint_every: u64,
    /// …or this long after the last one, whichever comes first.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            file: PathBuf::from(DEFAULT_AUDIT_FILE),
            key_file: PathBuf::from(DEFAULT_AUDIT_KEY_FILE),
            origin: DEFAULT_AUDIT_ORIGIN.to_string(),
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }
}

impl Config {
    pub fn rules_dir(&self) -> PathBuf {
        self.resolve(&self.rules.dir)
    }
}

#[cfg(test)]
mod tests;
