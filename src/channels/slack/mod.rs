//! Slack: a Block Kit message per approval in the approver group's channel, with Approve
//! and Deny buttons; `chat.update` on every vote and on the outcome (buttons removed once
//! decided). Clicks arrive at `POST /slack/interactivity` on the control listener (signed
//! by Slack, see [`verify`]) or over Socket Mode ([`socket`]), and become votes through
//! [`Approvals::vote`], so every check is the store's.
//!
//! - A Slack user is a reviewer by `slack_user` in the approvers config, or else by the
//!   e-mail address Slack has for them (`users.info`, cached) equal to the reviewer's
//!   name; an approver with a `slack_user` is never matched by e-mail.
//! - Deny opens a modal (`views.open`) asking for the reason; its `view_submission` casts
//!   the vote.
//! - Refusals (unknown user, not in the group, the agent's owner, decided, expired) are
//!   told to the clicker only: an ephemeral message through `response_url`, or the
//!   modal's error. Every callback is counted with its reason.

pub mod api;
pub mod blocks;
pub mod socket;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::{Context, Failure, Outbound, count_callback};
use crate::approvals::{Approvals, Approver, Event, unix_now};
use crate::metrics::Metrics;
use api::Api;

/// Where Slack sends clicks (the app's Interactivity Request URL).
pub const INTERACTIVITY_PATH: &str = "/slack/interactivity";
/// Interactivity payloads carry the whole message: allow for a large one.
const MAX_BODY: usize = 1024 * 1024;
/// How long a Slack user's e-mail address is trusted from the cache.
const EMAIL_TTL: Duration = Duration::from_secs(600);
/// The name votes, posts and metrics use.
const NAME: &str = "slack";

/// The Slack channel: sends messages, and turns clicks into votes.
pub struct Slack {
    api: Api,
    /// The app-level token's client (Socket Mode), if configured.
    app: Option<Api>,
    signing_secret: Option<String>,
    channels: BTreeMap<String, String>,
    default_channel: Option<String>,
    base_url: String,
    /// Hosts a `response_url` may point at: Slack's, and the configured API's.
    response_hosts: Vec<String>,
    client: reqwest::Client,
    approvals: Arc<Approvals>,
    metrics: Arc<Metrics>,
    seen: verify::Seen,
    /// Slack user id → e-mail address (None: Slack has none), and when it was asked.
    emails: DashMap<String, (Option<String>, Instant)>,
}

/// What the channel needs from the config, secrets read.
pub struct Settings {
    pub api_url: String,
    pub bot_token: String,
    pub signing_secret: Option<String>,
    pub app_token: Option<String>,
    pub channels: BTreeMap<String, String>,
    pub default_channel: Option<String>,
    pub base_url: String,
}

impl Slack {
    pub fn new(
        settings: Settings,
        client: reqwest::Client,
        approvals: Arc<Approvals>,
        metrics: Arc<Metrics>,
    ) -> Slack {
        let mut response_hosts = vec!["hooks.slack.com".to_string()];
        if let Some(host) = host_of(&settings.api_url) {
            response_hosts.push(host);
        }
        Slack {
            api: Api::new(&settings.api_url, settings.bot_token, client.clone()),
            app: settings
                .app_token
                .map(|t| Api::new(&settings.api_url, t, client.clone())),
            signing_secret: settings.signing_secret,
            channels: settings.channels,
            default_channel: settings.default_channel,
            base_url: settings.base_url,
            response_hosts,
            client,
            approvals,
            metrics,
            seen: verify::Seen::default(),
            emails: DashMap::new(),
        }
    }

    /// The Socket Mode client, if an app token is configured.
    pub fn socket_mode(&self) -> Option<Api> {
        self.app.clone()
    }

    /// The channel for an approval: its first group with one, else the default.
    fn channel_for(&self, groups: &[String]) -> Option<&str> {
        groups
            .iter()
            .find_map(|g| self.channels.get(g))
            .or(self.default_channel.as_ref())
            .map(String::as_str)
    }

    async fn posted(&self, id: &str) -> Result<Option<(String, String)>, Failure> {
        let (store, id) = (Arc::clone(self.approvals.store()), id.to_string());
        let reference = tokio::task::spawn_blocking(move || store.post(&id, NAME))
            .await
            .map_err(|e| Failure::transient(e.to_string()))?
            .map_err(|e| Failure::transient(e.to_string()))?;
        Ok(reference.and_then(|r| {
            let (channel, ts) = r.split_once(':')?;
            Some((channel.to_string(), ts.to_string()))
        }))
    }

    async fn remember(&self, id: &str, channel: &str, ts: &str) -> Result<(), Failure> {
        let store = Arc::clone(self.approvals.store());
        let (id, reference) = (id.to_string(), format!("{channel}:{ts}"));
        tokio::task::spawn_blocking(move || store.set_post(&id, NAME, &reference))
            .await
            .map_err(|e| Failure::transient(e.to_string()))?
            .map_err(|e| Failure::transient(e.to_string()))
    }

    /// The reviewer a Slack user is, if any.
    async fn approver(&self, user: &str) -> Result<Option<Approver>, Failure> {
        let approvers = self.approvals.approvers();
        if let Some(a) = approvers.by_slack_user(user) {
            return Ok(Some(a.clone()));
        }
        let email = match self.emails.get(user) {
            Some(entry) if entry.1.elapsed() < EMAIL_TTL => entry.0.clone(),
            _ => {
                let answer = self.api.form("users.info", &[("user", user)]).await?;
                let email = answer["user"]["profile"]["email"]
                    .as_str()
                    .map(str::to_string);
                self.emails
                    .insert(user.to_string(), (email.clone(), Instant::now()));
                email
            }
        };
        // A reviewer with a configured Slack id is that id only.
        Ok(email
            .and_then(|e| approvers.by_email(&e))
            .filter(|a| a.slack_user.is_none())
            .cloned())
    }

    fn refuse(&self, reason: &str) {
        count_callback(&self.metrics, NAME, false, reason);
    }

    /// Tell the clicker (only) through the interaction's `response_url`.
    fn tell(&self, response_url: Option<&str>, text: String) {
        let Some(url) = response_url.filter(|u| self.may_respond_to(u)) else {
            if response_url.is_some() {
                tracing::warn!("slack: response_url outside Slack's hosts; not used");
            }
            return;
        };
        let (client, url) = (self.client.clone(), url.to_string());
        tokio::spawn(async move {
            let body = json!({
                "response_type": "ephemeral",
                "replace_original": false,
                "text": blocks::escape(&text),
            });
            let sent = client
                .post(&url)
                .timeout(Duration::from_secs(10))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await;
            if let Err(e) = sent.and_then(|r| r.error_for_status()) {
                tracing::warn!(error = %e.without_url(), "slack: ephemeral reply failed");
            }
        });
    }

    fn may_respond_to(&self, url: &str) -> bool {
        let slack = url.starts_with("https://hooks.slack.com/");
        slack || host_of(url).is_some_and(|h| self.response_hosts.contains(&h))
    }

    /// Handle one interaction payload (from HTTP or Socket Mode, already authenticated);
    /// what to answer Slack with (`Null`: an empty 200).
    pub async fn interaction(&self, payload: &Value) -> Value {
        match payload["type"].as_str() {
            Some("block_actions") => {
                self.block_action(payload).await;
                Value::Null
            }
            Some("view_submission") if payload["view"]["callback_id"] == blocks::DENY_VIEW => {
                self.deny_submitted(payload).await
            }
            _ => {
                self.refuse("unsupported");
                Value::Null
            }
        }
    }

    async fn block_action(&self, payload: &Value) {
        let action = &payload["actions"][0];
        let (action_id, id) = (
            action["action_id"].as_str().unwrap_or_default(),
            action["value"].as_str().unwrap_or_default(),
        );
        let user = payload["user"]["id"].as_str().unwrap_or_default();
        let response_url = payload["response_url"].as_str();
        if ![blocks::APPROVE, blocks::DENY].contains(&action_id) || id.is_empty() {
            return self.refuse("unsupported");
        }
        // One click, one vote: Slack's redeliveries and replays carry the same action_ts.
        let click = format!(
            "click:{user}:{}:{action_id}:{id}",
            action["action_ts"].as_str().unwrap_or_default()
        );
        if !self.seen.first(&click, unix_now()) {
            return self.refuse("replayed");
        }
        let Some(approver) = self.known(user, response_url).await else {
            return;
        };
        if action_id == blocks::APPROVE {
            return match self.approvals.vote(id, &approver, true, None, NAME).await {
                Ok(_) => count_callback(&self.metrics, NAME, true, "approve"),
                Err(e) => {
                    self.refuse(super::refusal_reason(&e));
                    self.tell(response_url, format!("Your approval was not counted: {e}."));
                }
            };
        }
        // Deny: ask for the reason in a modal (the trigger is valid for 3 seconds).
        let approval = match self.approvals.get(id).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                self.refuse("not_found");
                return self.tell(response_url, format!("No approval `{id}`."));
            }
            Err(e) => {
                self.refuse("store");
                return self.tell(response_url, format!("Airlock could not read `{id}`: {e}"));
            }
        };
        if !super::is_open(approval.state) {
            let state = approval.state.as_str();
            self.refuse(if state == "expired" {
                "expired"
            } else {
                "decided"
            });
            return self.tell(response_url, format!("Approval `{id}` is already {state}."));
        }
        let view = blocks::deny_view(&Context::of(&approval, &self.base_url));
        let trigger = payload["trigger_id"].as_str().unwrap_or_default();
        match self
            .api
            .json(
                "views.open",
                &json!({ "trigger_id": trigger, "view": view }),
            )
            .await
        {
            Ok(_) => count_callback(&self.metrics, NAME, true, "deny_form"),
            Err(e) => {
                tracing::warn!(error = %e.message, "slack: could not open the deny form");
                self.refuse("slack_error");
                self.tell(
                    response_url,
                    "Airlock could not open the deny form; try again, or deny on the web page."
                        .into(),
                );
            }
        }
    }

    /// The reviewer behind `user`; refused and told if there is none.
    async fn known(&self, user: &str, response_url: Option<&str>) -> Option<Approver> {
        match self.approver(user).await {
            Ok(Some(a)) => Some(a),
            Ok(None) => {
                self.refuse("unknown_user");
                self.tell(
                    response_url,
                    format!(
                        "Airlock does not know Slack user {user} as a reviewer: ask an admin to add \
                         `slack_user: {user}` (or your Slack e-mail address) to approvals.approvers."
                    ),
                );
                None
            }
            Err(e) => {
                tracing::warn!(error = %e.message, "slack: users.info failed");
                self.refuse("slack_error");
                self.tell(
                    response_url,
                    "Airlock could not look up your Slack user; try again.".into(),
                );
                None
            }
        }
    }

    async fn deny_submitted(&self, payload: &Value) -> Value {
        let view = &payload["view"];
        let id = view["private_metadata"].as_str().unwrap_or_default();
        let reason = view["state"]["values"][blocks::REASON][blocks::REASON]["value"]
            .as_str()
            .map(str::trim)
            .unwrap_or_default();
        let user = payload["user"]["id"].as_str().unwrap_or_default();
        let error = |text: String| json!({ "response_action": "errors", "errors": { (blocks::REASON): text } });
        if reason.is_empty() || reason.chars().count() > blocks::MAX_REASON_CHARS {
            self.refuse("bad_reason");
            return error(format!(
                "Say why, in at most {} characters.",
                blocks::MAX_REASON_CHARS
            ));
        }
        let approver = match self.approver(user).await {
            Ok(Some(a)) => a,
            Ok(None) => {
                self.refuse("unknown_user");
                return error(format!(
                    "Airlock does not know Slack user {user} as a reviewer."
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e.message, "slack: users.info failed");
                self.refuse("slack_error");
                return error("Airlock could not look up your Slack user; try again.".into());
            }
        };
        match self
            .approvals
            .vote(id, &approver, false, Some(reason.to_string()), NAME)
            .await
        {
            Ok(_) => {
                count_callback(&self.metrics, NAME, true, "deny");
                Value::Null
            }
            Err(e) => {
                self.refuse(super::refusal_reason(&e));
                error(format!("Not counted: {e}."))
            }
        }
    }

    /// `POST /slack/interactivity`: verify, then handle.
    pub async fn handle_http(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "POST only");
        }
        let Some(secret) = &self.signing_secret else {
            self.refuse("not_configured");
            return text(
                StatusCode::NOT_FOUND,
                "Slack interactivity over HTTP needs channels.slack.signing_secret_file",
            );
        };
        let headers = request.headers().clone();
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                self.refuse("too_large");
                return text(StatusCode::PAYLOAD_TOO_LARGE, "body over 1 MiB");
            }
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let signature = header("x-slack-signature");
        let now = unix_now();
        let checked = verify::check(
            secret,
            header("x-slack-request-timestamp"),
            signature,
            &body,
            now,
        )
        .and_then(|()| {
            // A valid request is accepted once: a replay inside the window is refused.
            if self.seen.first(signature.unwrap_or_default(), now) {
                Ok(())
            } else {
                Err(verify::Refusal::Replayed)
            }
        });
        if let Err(refusal) = checked {
            tracing::warn!(
                reason = refusal.reason(),
                "slack: interactivity request refused"
            );
            self.refuse(refusal.reason());
            return text(
                StatusCode::UNAUTHORIZED,
                &format!("refused: {}", refusal.reason()),
            );
        }
        let payload = form_urlencoded::parse(&body)
            .find(|(k, _)| k == "payload")
            .and_then(|(_, v)| serde_json::from_str::<Value>(&v).ok());
        let Some(payload) = payload else {
            self.refuse("bad_payload");
            return text(
                StatusCode::BAD_REQUEST,
                "expected a form field `payload` with JSON",
            );
        };
        match self.interaction(&payload).await {
            Value::Null => text(StatusCode::OK, ""),
            answer => {
                let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// `host[:port]` of a URL.
fn host_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    uri.authority().map(|a| a.as_str().to_ascii_lowercase())
}

impl Outbound for Slack {
    fn name(&self) -> &'static str {
        NAME
    }

    /// Post the message the first time (remembering its `channel:ts`), update it after.
    async fn deliver(&self, event: &Event) -> Result<(), Failure> {
        let approval = &event.approval;
        let context = Context::of(approval, &self.base_url);
        let (text, blocks) = (blocks::fallback(&context), blocks::message(&context));
        if let Some((channel, ts)) = self.posted(&approval.id).await? {
            let body = json!({ "channel": channel, "ts": ts, "text": text, "blocks": blocks });
            return self.api.json("chat.update", &body).await.map(drop);
        }
        let Some(channel) = self.channel_for(&approval.groups) else {
            return Err(Failure::permanent(format!(
                "no Slack channel for groups {:?} and no default_channel",
                approval.groups
            )));
        };
        let body = json!({
            "channel": channel, "text": text, "blocks": blocks,
            "unfurl_links": false, "unfurl_media": false,
        });
        let answer = self.api.json("chat.postMessage", &body).await?;
        let (Some(channel), Some(ts)) = (answer["channel"].as_str(), answer["ts"].as_str()) else {
            return Err(Failure::permanent(
                "slack chat.postMessage: no channel or ts in the answer",
            ));
        };
        self.remember(&approval.id, channel, ts).await
    }
}
