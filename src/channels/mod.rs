//! Channels: where reviewers see approvals and decide, and where other systems hear of
//! them. Every channel sits on the approvals core: it hears [`Event`]s from
//! [`Approvals::subscribe`] and casts votes through [`Approvals::vote`], so every check
//! (groups, no self-approval, quorum, expiry) is the store's and no channel can skip one.
//!
//! - [`context`]: what every channel shows about an approval, summarised the same way.
//! - [`webhook`]: an HMAC-signed JSON POST per event.
//! - [`slack`]: a Block Kit message per approval, Approve/Deny buttons, updated on votes.
//! - [`teams`]: Microsoft Teams through the Bot Framework: Adaptive Cards, invokes.
//! - [`deliver`]: the one delivery loop: per-approval ordering, retries with backoff, and
//!   the `airlock_channel_messages_total` counts. A channel outage never approves
//!   anything: the call stays parked and the approval expires as configured.
//!
//! Inbound (reviewers' clicks) is routed by [`Channels::route`] on the control listener.

pub mod config;
pub mod context;
pub mod slack;
pub mod teams;
pub mod web;
pub mod webhook;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::approvals::{Approvals, Event, EventKind, State};
use crate::metrics::Metrics;

pub use config::ChannelsConfig;
pub use context::Context;

/// Event names, as webhooks and config spell them.
pub const EVENT_NAMES: [&str; 5] = ["requested", "voted", "approved", "denied", "expired"];

pub fn event_name(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Requested => "requested",
        EventKind::Voted => "voted",
        EventKind::Approved => "approved",
        EventKind::Denied => "denied",
        EventKind::Expired => "expired",
    }
}

/// Why a delivery failed.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// Worth trying again (an outage, a rate limit), rather than a refusal that will not
    /// change (a bad token, an unknown channel).
    pub retry: bool,
    /// The remote asked to wait this long first (Slack's and Teams' `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn transient(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            retry: true,
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            retry: false,
            retry_after: None,
        }
    }

    /// A failure from an HTTP status: 429 and 5xx are worth retrying, other 4xx are not.
    pub fn from_status(status: http::StatusCode, what: &str) -> Failure {
        let message = format!("{what}: HTTP {status}");
        if status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Failure::transient(message)
        } else {
            Failure::permanent(message)
        }
    }
}

/// A channel that sends messages about approvals.
pub trait Outbound: Send + Sync + 'static {
    /// Its name in metrics and logs (`slack`, `teams`, `webhook`).
    fn name(&self) -> &'static str;

    /// Send what `event` calls for. Called again (with the same event) after a failure
    /// worth retrying, so it must be safe to repeat.
    fn deliver(&self, event: &Event) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// Retry delays: 1 s, doubling, at most a minute between attempts.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// How long after an approval's expiry its messages are still worth retrying (so a
/// message can still say "expired" after an outage).
const RETRY_GRACE: Duration = Duration::from_secs(600);

/// Deliver every event to `channel` until `stop`: events of one approval in order (a
/// message is posted before it is updated), different approvals concurrently, failures
/// retried with backoff until the approval's expiry (plus a grace), everything counted.
pub async fn deliver<C: Outbound>(
    channel: Arc<C>,
    mut events: tokio::sync::broadcast::Receiver<Event>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let order: Arc<DashMap<String, Arc<tokio::sync::Mutex<()>>>> = Arc::default();
    loop {
        let event = tokio::select! {
            received = events.recv() => match received {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(channel = channel.name(), missed, "channel fell behind; events skipped");
                    metrics
                        .channel_messages_total
                        .with_label_values(&[channel.name(), "missed"])
                        .inc_by(missed);
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
            _ = stop.cancelled() => return,
        };
        let (channel, metrics, order, stop) = (
            Arc::clone(&channel),
            Arc::clone(&metrics),
            Arc::clone(&order),
            stop.clone(),
        );
        tokio::spawn(async move {
            let id = event.approval.id.clone();
            let lock = Arc::clone(&order.entry(id.clone()).or_default());
            {
                let _turn = lock.lock().await;
                tokio::select! {
                    () = deliver_one(&*channel, &event, &metrics) => {}
                    _ = stop.cancelled() => {}
                }
            }
            drop(lock);
            order.remove_if(&id, |_, l| Arc::strong_count(l) <= 1);
        });
    }
}

async fn deliver_one<C: Outbound>(channel: &C, event: &Event, metrics: &Metrics) {
    let count = |result: &str| {
        metrics
            .channel_messages_total
            .with_label_values(&[channel.name(), result])
            .inc();
    };
    let expires = event.approval.expires_at.max(crate::approvals::unix_now());
    let give_up = tokio::time::Instant::now()
        + Duration::from_secs((expires - crate::approvals::unix_now()).max(0) as u64)
        + RETRY_GRACE;
    let mut delay = FIRST_RETRY;
    loop {
        let failure = match channel.deliver(event).await {
            Ok(()) => return count("sent"),
            Err(failure) => failure,
        };
        let next = tokio::time::Instant::now() + failure.retry_after.unwrap_or(delay);
        if !failure.retry || next > give_up {
            tracing::error!(
                channel = channel.name(),
                approval = %event.approval.id,
                event = event_name(event.kind),
                error = %failure.message,
                "channel delivery failed; giving up"
            );
            return count("failed");
        }
        tracing::warn!(
            channel = channel.name(),
            approval = %event.approval.id,
            event = event_name(event.kind),
            error = %failure.message,
            retry_in_ms = (next - tokio::time::Instant::now()).as_millis() as u64,
            "channel delivery failed; will retry"
        );
        count("retried");
        tokio::time::sleep_until(next).await;
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// A `Retry-After` in seconds.
pub fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The HTTP client channels send with: Airlock's TLS settings (public roots), no proxy
/// from the environment (Airlock is the proxy), short connect timeout.
pub fn http_client() -> Result<reqwest::Client, String> {
    let tls = crate::tls::client_config(&[]).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| e.to_string())
}

/// Count a reviewer action arriving from `channel`.
pub fn count_callback(metrics: &Metrics, channel: &str, accepted: bool, reason: &str) {
    metrics
        .channel_callbacks_total
        .with_label_values(&[
            channel,
            if accepted { "accepted" } else { "rejected" },
            reason,
        ])
        .inc();
}

/// The reason label of a vote the store refused.
pub fn refusal_reason(error: &crate::approvals::VoteError) -> &'static str {
    use crate::approvals::VoteError;
    match error {
        VoteError::NotFound(_) => "not_found",
        VoteError::Decided { .. } => "decided",
        VoteError::Expired(_) => "expired",
        VoteError::NotInGroup { .. } => "not_in_group",
        VoteError::SelfApproval(_) => "self_approval",
        VoteError::AlreadyVoted(_) => "already_voted",
        VoteError::Store(_) => "store",
    }
}

/// Whether an approval is still open to votes.
pub fn is_open(state: State) -> bool {
    state == State::Pending
}

/// The configured channels: their senders run as tasks, their callbacks are routed from
/// the control listener.
pub struct Channels {
    approvals: Arc<Approvals>,
    metrics: Arc<Metrics>,
    webhooks: Vec<Arc<webhook::Webhook>>,
    slack: Option<Arc<slack::Slack>>,
    teams: Option<Arc<teams::Teams>>,
    /// The web page (`None`: `channels.web.enabled: false`, and `/ui` is not found).
    web: Option<web::Web>,
}

impl Channels {
    /// Build the channels `config` names (reading their secrets); nothing runs yet.
    /// `base_url` is where reviewers reach the control listener (links in messages);
    /// `resolve` turns a configured path into one relative to the config file.
    pub fn new(
        channels: &ChannelsConfig,
        base_url: String,
        resolve: impl Fn(&std::path::Path) -> std::path::PathBuf,
        approvals: Arc<Approvals>,
        metrics: Arc<Metrics>,
    ) -> Result<Channels, String> {
        let client = http_client()?;
        let secret = |path: &std::path::Path| {
            crate::keyfile::read_secret(&resolve(path)).map_err(|e| e.to_string())
        };
        let webhooks = channels
            .webhooks
            .iter()
            .map(|hook| {
                Ok(Arc::new(webhook::Webhook::new(
                    hook.url.clone(),
                    secret(&hook.secret_file)?,
                    hook.events.clone(),
                    base_url.clone(),
                    client.clone(),
                )))
            })
            .collect::<Result<_, String>>()?;
        let slack = match &channels.slack {
            Some(s) => Some(Arc::new(slack::Slack::new(
                slack::Settings {
                    api_url: s.api_url.clone(),
                    bot_token: secret(&s.bot_token_file)?,
                    signing_secret: s.signing_secret_file.as_deref().map(secret).transpose()?,
                    app_token: s.app_token_file.as_deref().map(secret).transpose()?,
                    channels: s.channels.clone(),
                    default_channel: s.default_channel.clone(),
                    base_url: base_url.clone(),
                },
                client.clone(),
                Arc::clone(&approvals),
                Arc::clone(&metrics),
            ))),
            None => None,
        };
        let teams = match &channels.teams {
            Some(teams) => Some(Arc::new(teams::Teams::new(
                teams.clone(),
                secret(&teams.app_password_file)?,
                Arc::clone(&approvals),
                Arc::clone(&metrics),
                base_url.clone(),
                client.clone(),
            ))),
            None => None,
        };
        let web = channels
            .web
            .enabled
            .then(|| web::Web::new(channels, Arc::clone(&approvals), Arc::clone(&metrics)));
        Ok(Channels {
            approvals,
            metrics,
            webhooks,
            slack,
            teams,
            web,
        })
    }

    /// Start every sender; they stop with `stop`.
    pub fn start(&self, stop: &CancellationToken) {
        for hook in &self.webhooks {
            self.spawn_sender(Arc::clone(hook), stop);
        }
        if let Some(slack) = &self.slack {
            self.spawn_sender(Arc::clone(slack), stop);
            if let Some(app) = slack.socket_mode() {
                tokio::spawn(slack::socket::run(Arc::clone(slack), app, stop.clone()));
            }
        }
        if let Some(teams) = &self.teams {
            self.spawn_sender(Arc::clone(teams), stop);
        }
    }

    fn spawn_sender<C: Outbound>(&self, channel: Arc<C>, stop: &CancellationToken) {
        // Subscribed now, before the proxy serves: no event is published unheard.
        let events = self.approvals.subscribe();
        tokio::spawn(deliver(
            channel,
            events,
            Arc::clone(&self.metrics),
            stop.clone(),
        ));
    }

    /// Answer `request` if it belongs to a channel; otherwise hand it back.
    #[allow(clippy::result_large_err)]
    pub async fn route(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Request<Incoming>> {
        if let Some(slack) = &self.slack
            && request.uri().path() == slack::INTERACTIVITY_PATH
        {
            return Ok(slack.handle_http(request).await);
        }
        if let Some(teams) = &self.teams
            && request.uri().path() == teams::PATH
        {
            return Ok(teams.handle(request).await);
        }
        if web::owns(request.uri().path()) {
            return Ok(match &self.web {
                Some(web) => web.handle(request).await,
                None => web::disabled(),
            });
        }
        Err(request)
    }
}
