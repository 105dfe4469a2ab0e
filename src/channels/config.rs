//! The channels' slice of the configuration (`channels:`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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
