//! Microsoft Teams, through the Bot Framework.
//!
//! Out: a proactive message with an Adaptive Card ([`card`]) in the conversation of the
//! rule's first approver group that has one (`channels.teams.conversations`, else
//! `default_conversation`): `POST {service_url}/v3/conversations/{id}/activities`, with a
//! bot token from [`token`]. The activity id is kept in the store; every later event
//! (a vote, the decision, the expiry) replaces the card with `PUT …/activities/{activity}`.
//!
//! In: `POST /teams/messages` on the control listener (the bot's messaging endpoint).
//! Clicks arrive as `invoke` activities named `adaptiveCard/action`; [`auth`] checks the
//! Bot Framework token, the reviewer is the activity's `from.aadObjectId` mapped through
//! the approvers' `teams_aad_object_id`, and the vote goes through
//! [`Approvals::vote`](crate::approvals::Approvals::vote) (every check is the store's).
//! The answer follows the Universal Actions protocol: the updated card, or an error
//! message the reviewer sees.

pub mod auth;
pub mod card;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::TeamsConfig;
use super::{Context, Failure, Outbound, count_callback, refusal_reason};
use crate::approvals::{Approval, Approvals, Event, State, VoteError};
use crate::metrics::Metrics;

/// The bot's messaging endpoint on the control listener.
pub const PATH: &str = "/teams/messages";
/// Channel name in metrics, logs, votes and the store.
const NAME: &str = "teams";
const MAX_BODY: usize = 256 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);
/// Path segments are encoded as `encodeURIComponent` does (the Bot Framework SDKs' way).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// Where a card was posted (kept in the store, to replace it later).
#[derive(Debug, Serialize, Deserialize)]
struct Post {
    conversation: String,
    activity: String,
}

pub struct Teams {
    config: TeamsConfig,
    approvals: Arc<Approvals>,
    metrics: Arc<Metrics>,
    tokens: token::BotTokens,
    verifier: auth::Verifier,
    client: reqwest::Client,
    base_url: String,
}

impl Teams {
    pub fn new(
        config: TeamsConfig,
        password: String,
        approvals: Arc<Approvals>,
        metrics: Arc<Metrics>,
        base_url: String,
        client: reqwest::Client,
    ) -> Teams {
        let tokens = token::BotTokens::new(
            config.token_url.clone(),
            config.app_id.clone(),
            password,
            client.clone(),
        );
        let verifier = auth::Verifier::new(
            config.app_id.clone(),
            config.issuer.clone(),
            config.openid_metadata_url.clone(),
            client.clone(),
        );
        Teams {
            config,
            approvals,
            metrics,
            tokens,
            verifier,
            client,
            base_url,
        }
    }

    /// The conversation for `approval`: its first group that has one, else the default.
    fn conversation(&self, approval: &Approval) -> Option<&str> {
        approval
            .groups
            .iter()
            .find_map(|g| self.config.conversations.get(g))
            .or(self.config.default_conversation.as_ref())
            .map(String::as_str)
    }

    fn activities_url(&self, conversation: &str) -> String {
        format!(
            "{}/v3/conversations/{}/activities",
            self.config.service_url.trim_end_matches('/'),
            utf8_percent_encode(conversation, SEGMENT)
        )
    }

    /// Send one activity to the connector; its JSON answer.
    async fn send(&self, method: Method, url: &str, activity: &Value) -> Result<Value, Failure> {
        let token = self.tokens.get().await?;
        let response = self
            .client
            .request(method, url)
            .timeout(TIMEOUT)
            .bearer_auth(token)
            .json(activity)
            .send()
            .await
            .map_err(|e| Failure::transient(format!("{url}: {e}")))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            // A revoked or rotated token: the next attempt gets a fresh one.
            self.tokens.forget().await;
            return Err(Failure::transient(format!(
                "{url}: the connector refused the bot token"
            )));
        }
        if !status.is_success() {
            let mut failure = Failure::from_status(status, url);
            failure.retry_after = super::retry_after(response.headers());
            return Err(failure);
        }
        // Some answers (updates) may have an empty body.
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::transient(format!("{url}: {e}")))?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn stored_post(&self, id: &str) -> Result<Option<Post>, Failure> {
        let (store, id) = (Arc::clone(self.approvals.store()), id.to_string());
        let reference = tokio::task::spawn_blocking(move || store.post(&id, NAME))
            .await
            .map_err(|e| Failure::transient(e.to_string()))?
            .map_err(|e| Failure::transient(e.to_string()))?;
        Ok(reference.and_then(|r| serde_json::from_str(&r).ok()))
    }

    async fn store_post(&self, id: &str, post: &Post) -> Result<(), Failure> {
        let reference =
            serde_json::to_string(post).map_err(|e| Failure::permanent(e.to_string()))?;
        let (store, id) = (Arc::clone(self.approvals.store()), id.to_string());
        tokio::task::spawn_blocking(move || store.set_post(&id, NAME, &reference))
            .await
            .map_err(|e| Failure::transient(e.to_string()))?
            .map_err(|e| Failure::transient(e.to_string()))
    }
}

/// A message activity carrying `card`.
fn message(card: Value, id: Option<&str>) -> Value {
    let mut activity = json!({
        "type": "message",
        // The notification preview: Airlock's words only (Teams formats `text` and
        // `summary`, so nothing from the agent goes here).
        "summary": "Airlock approval request",
        "attachments": [{"contentType": card::CONTENT_TYPE, "content": card}],
    });
    if let Some(id) = id {
        activity["id"] = json!(id);
    }
    activity
}

impl Outbound for Teams {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn deliver(&self, event: &Event) -> Result<(), Failure> {
        let approval = &event.approval;
        let card = card::card(&Context::of(approval, &self.base_url));
        if let Some(post) = self.stored_post(&approval.id).await? {
            let url = format!(
                "{}/{}",
                self.activities_url(&post.conversation),
                utf8_percent_encode(&post.activity, SEGMENT)
            );
            self.send(Method::PUT, &url, &message(card, Some(&post.activity)))
                .await?;
            return Ok(());
        }
        if approval.state != State::Pending {
            // Never posted (Teams was not configured, or the post failed for good):
            // nothing to update, and no decision needs a reviewer any more.
            return Ok(());
        }
        let Some(conversation) = self.conversation(approval) else {
            return Err(Failure::permanent(format!(
                "no Teams conversation for the groups {:?} and no default_conversation",
                approval.groups
            )));
        };
        let answer = self
            .send(
                Method::POST,
                &self.activities_url(conversation),
                &message(card, None),
            )
            .await?;
        let Some(activity) = answer["id"].as_str() else {
            return Err(Failure::permanent(
                "the connector's answer named no activity id",
            ));
        };
        let post = Post {
            conversation: conversation.to_string(),
            activity: activity.to_string(),
        };
        self.store_post(&approval.id, &post).await
    }
}

/// The parts of an activity Airlock reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Activity {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    channel_id: String,
    service_url: String,
    from: Account,
    value: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Account {
    aad_object_id: Option<String>,
}

/// A refusal the reviewer sees in Teams, and the reason label it is counted under.
struct Refusal {
    status: u16,
    reason: &'static str,
    message: String,
}

impl Refusal {
    fn new(status: u16, reason: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            reason,
            message: message.into(),
        }
    }
}

impl Teams {
    /// Handle a request to [`PATH`].
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::POST {
            return plain_json(StatusCode::METHOD_NOT_ALLOWED, json!({"error": "POST"}));
        }
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => {
                self.count(false, "bad_request");
                return plain_json(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    json!({"error": "body over 256 KiB"}),
                );
            }
        };
        let activity: Activity = match serde_json::from_slice(&body) {
            Ok(activity) => activity,
            Err(e) => {
                self.count(false, "bad_request");
                return plain_json(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("activity: {e}")}),
                );
            }
        };
        // Nothing in the activity is believed before the token is.
        if let Err(e) = self
            .verifier
            .verify(
                authorization.as_deref(),
                &activity.service_url,
                &activity.channel_id,
            )
            .await
        {
            tracing::warn!(error = %e, "teams: activity refused");
            let (status, reason) = match e {
                auth::AuthError::Keys(_) => (StatusCode::SERVICE_UNAVAILABLE, "keys_unavailable"),
                _ => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            };
            self.count(false, reason);
            return plain_json(status, json!({"error": "unauthorized"}));
        }
        if activity.kind != "invoke" || activity.name.as_deref() != Some("adaptiveCard/action") {
            // Installs, messages to the bot, …: acknowledged, nothing else.
            self.count(false, "not_an_action");
            return plain_json(StatusCode::OK, json!({}));
        }
        match self.act(&activity).await {
            Ok((approval, verb)) => {
                self.count(true, verb);
                let card = card::card(&Context::of(&approval, &self.base_url));
                invoke_response(json!({
                    "statusCode": 200, "type": card::CONTENT_TYPE, "value": card,
                }))
            }
            Err(refusal) => {
                tracing::info!(reason = refusal.reason, message = %refusal.message, "teams: action refused");
                self.count(false, refusal.reason);
                invoke_response(json!({
                    "statusCode": refusal.status,
                    "type": "application/vnd.microsoft.error",
                    "value": {"code": refusal.reason, "message": refusal.message},
                }))
            }
        }
    }

    /// An authenticated `Action.Execute`: the vote it casts.
    async fn act(&self, activity: &Activity) -> Result<(Approval, &'static str), Refusal> {
        let action = &activity.value["action"];
        if action["type"].as_str() != Some("Action.Execute") {
            return Err(Refusal::new(400, "bad_request", "not an Action.Execute"));
        }
        let approve = match action["verb"].as_str() {
            Some("approve") => true,
            Some("deny") => false,
            _ => return Err(Refusal::new(400, "bad_request", "unknown action")),
        };
        let data = &action["data"];
        let Some(id) = data["approval"].as_str() else {
            return Err(Refusal::new(400, "bad_request", "no approval id"));
        };
        let Some(approver) = activity
            .from
            .aad_object_id
            .as_deref()
            .and_then(|object| self.approvals.approvers().by_teams_id(object))
        else {
            return Err(Refusal::new(
                403,
                "unknown_user",
                "Your Teams account is not an Airlock approver (no approver has your \
                 teams_aad_object_id).",
            ));
        };
        let reason = data[card::REASON_INPUT]
            .as_str()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(card::MAX_REASON).collect::<String>());
        if !approve && reason.is_none() {
            return Err(Refusal::new(400, "no_reason", "A denial needs a reason."));
        }
        // An approval carries no reason from the card (its reason input is the deny's).
        let reason = if approve { None } else { reason };
        match self
            .approvals
            .vote(id, approver, approve, reason, NAME)
            .await
        {
            Ok(approval) => Ok((approval, if approve { "approve" } else { "deny" })),
            Err(e) => {
                let status = match &e {
                    VoteError::NotFound(_) => 404,
                    VoteError::NotInGroup { .. } | VoteError::SelfApproval(_) => 403,
                    VoteError::Store(_) => 500,
                    _ => 409,
                };
                Err(Refusal::new(status, refusal_reason(&e), e.to_string()))
            }
        }
    }

    fn count(&self, accepted: bool, reason: &str) {
        count_callback(&self.metrics, NAME, accepted, reason);
    }
}

/// Universal Actions answers travel as HTTP 200 (the status is in the body).
fn invoke_response(body: Value) -> Response<Full<Bytes>> {
    plain_json(StatusCode::OK, body)
}

fn plain_json(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
