//! Configuration: serde structs whose defaults are named constants, loaded from YAML with
//! every error reported at its file and line (see [`load`]).
//!
//! `default.yaml` beside this file is the commented default configuration that
//! `airlock init` writes; a test keeps it equal to [`Config::default`].

mod load;
mod validate;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

// Each component owns its slice of the configuration; this module assembles them.
pub use crate::channels::config::{
    ChannelsConfig, SlackConfig, TeamsConfig, WebConfig, WebhookConfig,
};
pub use crate::credentials::{CredentialsConfig, DEFAULT_CREDENTIALS_REGION};
pub use crate::proxy::limits::*;
pub use crate::proxy::upstream::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_POOL_MAX_IDLE_PER_HOST,
    DEFAULT_RESPONSE_TIMEOUT, RouteConfig, UpstreamConfig,
};
pub use crate::telemetry::{DEFAULT_LOG_LEVEL, LogConfig, LogFormat};

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
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_AGENTS_FILE: &str = "agents.yaml";
pub const DEFAULT_AGENTS_KEY_FILE: &str = "certs/agents.key";
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

/// Where agents are listed and the key their secrets derive from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentsConfig {
    /// The agent list (no secrets; reviewable).
    pub file: PathBuf,
    /// 32 random bytes, mode 0600; every agent secret is derived from it.
    pub key_file: PathBuf,
    /// Lifetime of the Google access tokens Airlock's token endpoint grants agents.
    #[serde(with = "humantime_serde")]
    pub google_token_lifetime: Duration,
}

/// Google agent access tokens live an hour, as Google's own do.
pub const DEFAULT_GOOGLE_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            file: PathBuf::from(DEFAULT_AGENTS_FILE),
            key_file: PathBuf::from(DEFAULT_AGENTS_KEY_FILE),
            google_token_lifetime: DEFAULT_GOOGLE_TOKEN_LIFETIME,
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

    /// Where reviewers reach the control listener (links in messages):
    /// `channels.base_url`, else `http://<control.listen>`.
    pub fn channels_base_url(&self) -> String {
        self.channels
            .base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.control.listen))
            .trim_end_matches('/')
            .to_string()
    }
}

#[cfg(test)]
mod tests;
