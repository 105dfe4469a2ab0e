//! Approvals: a call the rules send to approval is parked under its fingerprint until
//! reviewers decide, for at most the rule's `hold`; then it goes on (consuming the grant),
//! or the agent is told what is pending and how to wait, or who denied it and why.
//!
//! - [`store`]: approvals, votes and grants in SQLite.
//! - The fingerprint (what "the same call" means, so retries and re-runs join one approval)
//!   is each cloud's, beside its classifier ([`crate::cloud::aws::fingerprint`]); `hold` takes
//!   it and shows reviewers how it binds the body.
//! - [`Approvals::hold`]: the pipeline's `hold` phase.
//! - Reviewers: [`Approvers`], bearer tokens stored as SHA-256 hashes in the config.

pub mod api;
pub mod client;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, broadcast};

use crate::agents::Agent;
use crate::cloud::Classification;
use crate::rules::Decision;
pub use store::{Approval, NewApproval, Parked, State, Store, Vote, VoteError};

/// A reviewer, as configured, with the identities channels know them by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approver {
    /// The identity votes are recorded under (an e-mail address; compared with owners).
    pub name: String,
    pub groups: Vec<String>,
    /// Hex SHA-256 of the reviewer's bearer token (API, CLI, web page), if they have one.
    pub token_sha256: Option<String>,
    /// Slack user id (`U…`); without it, Slack users are matched by e-mail (`name`).
    pub slack_user: Option<String>,
    /// Microsoft Entra (AAD) object id, for Teams.
    pub teams_aad_object_id: Option<String>,
}

/// The configured reviewers, found by token, Slack user, e-mail or Teams id.
#[derive(Debug, Default, Clone)]
pub struct Approvers {
    all: Vec<Approver>,
    by_token: HashMap<String, usize>,
}

impl Approvers {
    pub fn new(approvers: impl IntoIterator<Item = Approver>) -> Approvers {
        let all: Vec<Approver> = approvers.into_iter().collect();
        let by_token = all
            .iter()
            .enumerate()
            .filter_map(|(i, a)| Some((a.token_sha256.as_ref()?.to_ascii_lowercase(), i)))
            .collect();
        Approvers { all, by_token }
    }

    /// The reviewer holding `token`.
    pub fn by_token(&self, token: &str) -> Option<&Approver> {
        self.by_token.get(&token_hash(token)).map(|&i| &self.all[i])
    }

    /// The reviewer with this Slack user id.
    pub fn by_slack_user(&self, user: &str) -> Option<&Approver> {
        self.all
            .iter()
            .find(|a| a.slack_user.as_deref() == Some(user))
    }

    /// The reviewer whose name is this e-mail address (case-insensitive).
    pub fn by_email(&self, email: &str) -> Option<&Approver> {
        self.all.iter().find(|a| a.name.eq_ignore_ascii_case(email))
    }

    /// The reviewer with this Entra object id (Teams).
    pub fn by_teams_id(&self, object_id: &str) -> Option<&Approver> {
        self.all.iter().find(|a| {
            a.teams_aad_object_id
                .as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(object_id))
        })
    }
}

/// What happened to an approval, as channels hear of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A new approval request (not a retry joining one).
    Requested,
    /// A vote that did not decide (quorum not reached yet).
    Voted,
    Approved,
    Denied,
    Expired,
}

/// An approval event: the approval as it stands after it.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub approval: Arc<Approval>,
}

/// Events a slow channel may fall behind by before it misses some (and says so).
const EVENT_BACKLOG: usize = 4096;

/// The hex SHA-256 of a bearer token: what the config stores.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How a held call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    /// Approved: forward it (the grant is consumed).
    Go(Approval),
    /// Still pending when the hold ran out.
    Pending(Approval),
    /// Approved, but its grant went to an identical call held on the same approval (one
    /// approval forwards one call): this one is not forwarded, and its retry asks anew.
    Used(Approval),
    Denied(Approval),
    Expired(Approval),
}

/// The approvals service: the store, and wake-ups for parked calls.
pub struct Approvals {
    store: Arc<Store>,
    approvers: Approvers,
    waiting: DashMap<String, Arc<Notify>>,
    /// Held calls per approval (not agents' long polls). A vote that approves while a
    /// call is held consumes the grant in its own transaction and hands it over here, so
    /// the call goes on without another store round trip (and fsync).
    holders: DashMap<String, usize>,
    handoffs: DashMap<String, Approval>,
    /// Votes are audited (each one a record).
    audit: Option<Arc<crate::audit::AuditLog>>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    events: broadcast::Sender<Event>,
}

/// How long until unix time `at` (seconds), to the millisecond; zero if past.
fn until_unix(at: i64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(at.max(0) as u64).saturating_sub(now) + Duration::from_millis(5)
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Approvals {
    pub fn new(
        store: Store,
        approvers: Approvers,
        audit: Option<Arc<crate::audit::AuditLog>>,
    ) -> Approvals {
        Approvals {
            store: Arc::new(store),
            approvers,
            waiting: DashMap::new(),
            holders: DashMap::new(),
            handoffs: DashMap::new(),
            audit,
            metrics: None,
            events: broadcast::channel(EVENT_BACKLOG).0,
        }
    }

    /// Hear of every approval event from now on (channels, webhooks).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn publish(&self, kind: EventKind, approval: &Approval) {
        // No receiver is not an error: no channel is configured.
        let _ = self.events.send(Event {
            kind,
            approval: Arc::new(approval.clone()),
        });
    }

    /// The store, for channels that keep their message references there.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Upkeep, once a second until `stop`, off the request path: announce expiries (audit
    /// record, channels, wake-ups) and checkpoint the store's write-ahead log. Expiry is
    /// also noticed lazily by every read; this makes sure it is announced exactly once,
    /// even for approvals that expired while Airlock was down.
    pub async fn upkeep(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        self.count_pending().await;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => return,
            }
            if let Err(e) = self.blocking(|s| s.checkpoint()).await {
                tracing::warn!(error = %e, "approvals: WAL checkpoint failed");
            }
            let expired = match self.blocking(|s| s.newly_expired(unix_now())).await {
                Ok(expired) => expired,
                Err(e) => {
                    tracing::warn!(error = %e, "approvals: expiry sweep failed");
                    continue;
                }
            };
            if expired.is_empty() {
                continue;
            }
            for approval in &expired {
                if let Some(audit) = &self.audit {
                    audit.append(approval_entry(
                        crate::audit::Event::Expired,
                        approval,
                        Vec::new(),
                        "expired".into(),
                    ));
                }
                if let Some(m) = &self.metrics {
                    m.approval_outcomes_total
                        .with_label_values(&["expired"])
                        .inc();
                    m.approvals_pending.dec();
                }
                if let Some((_, notify)) = self.waiting.remove(&approval.id) {
                    notify.notify_waiters();
                }
                self.publish(EventKind::Expired, approval);
            }
        }
    }

    /// Keep `airlock_approvals_pending`, the decision-time histogram and vote counts.
    pub fn counted(mut self, metrics: Arc<crate::metrics::Metrics>) -> Approvals {
        self.metrics = Some(metrics);
        self
    }

    /// Set the pending gauge from the store (at start; then it moves with each approval
    /// opened, decided or expired, so the hot path never counts).
    async fn count_pending(&self) {
        if let Some(m) = &self.metrics
            && let Ok(n) = self.blocking(|s| s.pending()).await
        {
            m.approvals_pending.set(n);
        }
    }

    pub fn approvers(&self) -> &Approvers {
        &self.approvers
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, VoteError> + Send + 'static,
    ) -> Result<T, VoteError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| VoteError::Store(e.to_string()))?
    }

    fn notify(&self, id: &str) -> Arc<Notify> {
        Arc::clone(&self.waiting.entry(id.to_string()).or_default())
    }

    /// A waiter leaves: drop the wake-up entry unless someone else still waits on it (the
    /// map holds one reference, the leaving waiter another).
    fn leave(&self, id: &str, notify: Arc<Notify>) {
        drop(notify);
        self.waiting.remove_if(id, |_, n| Arc::strong_count(n) <= 1);
    }

    /// Phase `hold`: park the call and wait up to the rule's `hold` for a decision.
    pub async fn hold(
        &self,
        fingerprint: crate::cloud::Fingerprint,
        agent: &Agent,
        classification: &Classification,
        decision: &Decision,
        reason: Option<String>,
        changes: Vec<String>,
    ) -> Result<Held, VoteError> {
        let approval_terms = decision
            .approval
            .clone()
            .unwrap_or_else(|| crate::rules::Defaults::default().approval);
        let (hold, expires, reuse) = (
            approval_terms.hold,
            approval_terms.expires,
            approval_terms.reuse,
        );
        let mut call = serde_json::to_value(classification).unwrap_or_default();
        // Reviewers are told when the approval cannot pin the body's bytes.
        if let serde_json::Value::Object(map) = &mut call {
            map.insert("body_binding".into(), fingerprint.body.as_str().into());
            // What the call would change, as looked up before asking (not part of what the
            // approval binds to: the fingerprint is already taken).
            if !changes.is_empty() {
                map.insert("changes".into(), changes.into());
            }
        }
        let fingerprint = fingerprint.hash;
        let (agent_name, owner) = (agent.name.clone(), agent.owner.clone());
        let rule = decision.rule.clone().unwrap_or_else(|| "default".into());
        let message = decision.message.clone();
        let parked = self
            .blocking(move |store| {
                store.park(
                    &NewApproval {
                        fingerprint: &fingerprint,
                        agent: &agent_name,
                        owner: &owner,
                        rule: &rule,
                        message: message.as_deref(),
                        groups: &approval_terms.groups,
                        quorum: approval_terms.quorum,
                        call: &call,
                        reason: reason.as_deref(),
                        expires_in: expires.as_secs() as i64,
                        reuse: reuse.map(|r| r.as_secs() as i64),
                    },
                    unix_now(),
                )
            })
            .await?;
        let approval = match parked {
            Parked::Go(a) => return Ok(Held::Go(a)),
            Parked::Denied(a) => return Ok(Held::Denied(a)),
            Parked::Opened(a) => {
                if let Some(m) = &self.metrics {
                    m.approvals_pending.inc();
                }
                self.publish(EventKind::Requested, &a);
                a
            }
            Parked::Wait(a) => a,
        };
        let deadline = tokio::time::Instant::now() + hold;
        let id = approval.id.clone();
        let notify = self.notify(&id);
        *self.holders.entry(id.clone()).or_default() += 1;
        let held = self.wait_held(approval, &notify, deadline).await;
        self.unhold(&id);
        self.leave(&id, notify);
        held
    }

    /// A held call leaves. A grant handed over that no held call took is given back, so
    /// the agent's retry can use it.
    fn unhold(&self, id: &str) {
        if let dashmap::Entry::Occupied(mut count) = self.holders.entry(id.to_string()) {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.remove();
            }
        }
        if !self.holders.contains_key(id) {
            self.give_back(id);
        }
    }

    fn give_back(&self, id: &str) {
        if self.handoffs.remove(id).is_none() {
            return;
        }
        let (store, id) = (Arc::clone(&self.store), id.to_string());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.release(&id) {
                tracing::error!(approval = %id, error = %e,
                    "approvals: an unused grant could not be given back; the call must be approved again");
            }
        });
    }

    async fn wait_held(
        &self,
        mut approval: Approval,
        notify: &Notify,
        deadline: tokio::time::Instant,
    ) -> Result<Held, VoteError> {
        loop {
            // Registered before the state is read, so a decision in between still wakes us.
            let woken = notify.notified();
            if let Some((_, granted)) = self.handoffs.remove(&approval.id) {
                return Ok(Held::Go(granted));
            }
            let id = approval.id.clone();
            approval = match self.blocking(move |s| s.get(&id, unix_now())).await? {
                Some(a) => a,
                None => return Err(VoteError::NotFound(approval.id)),
            };
            match approval.state {
                State::Approved => {
                    let id = approval.id.clone();
                    return if self.blocking(move |s| s.consume(&id, unix_now())).await? {
                        Ok(Held::Go(approval))
                    } else if approval.expires_at <= unix_now() {
                        // Approved in its last moment, and expired before this call took it.
                        Ok(Held::Expired(approval))
                    } else {
                        // Another request with the same fingerprint used the grant first.
                        // (Not "pending": the approval is decided, and waiting on it again
                        // would never let this call through.)
                        Ok(Held::Used(approval))
                    };
                }
                State::Denied => return Ok(Held::Denied(approval)),
                State::Expired => return Ok(Held::Expired(approval)),
                State::Pending => {}
            }
            // The hold ends at its deadline, or when the approval expires if that is
            // sooner (then the next read finds it expired, and the agent hears so).
            let expiry = tokio::time::Instant::now() + until_unix(approval.expires_at);
            if tokio::time::timeout_at(deadline.min(expiry), woken)
                .await
                .is_err()
                && expiry > deadline
            {
                return Ok(Held::Pending(approval));
            }
        }
    }

    /// A reviewer's vote (all checks in the store), cast through channel `via`; wakes the
    /// parked calls, audits the vote and tells the channels.
    pub async fn vote(
        &self,
        id: &str,
        approver: &Approver,
        approve: bool,
        reason: Option<String>,
        via: &'static str,
    ) -> Result<Approval, VoteError> {
        let (id_owned, name, groups) = (
            id.to_string(),
            approver.name.clone(),
            approver.groups.clone(),
        );
        // A held call will take the grant: consume it in the vote's transaction.
        let claim = approve && self.holders.contains_key(id);
        let voted = self
            .blocking(move |s| {
                s.vote(
                    &id_owned,
                    &name,
                    &groups,
                    approve,
                    reason.as_deref(),
                    via,
                    claim,
                    unix_now(),
                )
            })
            .await;
        if let Some(m) = &self.metrics {
            let result = match &voted {
                Ok(_) if approve => "approve",
                Ok(_) => "deny",
                Err(_) => "refused",
            };
            m.approval_votes_total.with_label_values(&[result]).inc();
            if let Ok(a) = &voted
                && let Some(at) = a.decided_at
            {
                m.approval_decision_seconds
                    .observe((at - a.requested_at).max(0) as f64);
            }
        }
        let approval = voted?;
        let handed = claim && approval.state == State::Approved && approval.consumed;
        if handed {
            self.handoffs.insert(id.to_string(), approval.clone());
        }
        if approval.state != State::Pending
            && let Some((_, notify)) = self.waiting.remove(id)
        {
            notify.notify_waiters();
        }
        // The held call may have left meanwhile (its hold ran out): give the grant back.
        if handed && !self.holders.contains_key(id) {
            self.give_back(id);
        }
        let kind = match approval.state {
            State::Approved => EventKind::Approved,
            State::Denied => EventKind::Denied,
            State::Expired => EventKind::Expired,
            State::Pending => EventKind::Voted,
        };
        if let Some(audit) = &self.audit {
            audit.append(approval_entry(
                crate::audit::Event::Voted,
                &approval,
                vec![approver.name.clone()],
                format!(
                    "{} via {via} → {}",
                    if approve { "approve" } else { "deny" },
                    approval.state.as_str()
                ),
            ));
        }
        if let Some(m) = &self.metrics
            && matches!(kind, EventKind::Approved | EventKind::Denied)
        {
            m.approval_outcomes_total
                .with_label_values(&[approval.state.as_str()])
                .inc();
            m.approvals_pending.dec();
        }
        self.publish(kind, &approval);
        Ok(approval)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Approval>, VoteError> {
        let id = id.to_string();
        self.blocking(move |s| s.get(&id, unix_now())).await
    }

    pub async fn list(&self, state: Option<State>) -> Result<Vec<Approval>, VoteError> {
        self.blocking(move |s| s.list(state, unix_now())).await
    }

    /// Wait up to `timeout` for approval `id` to leave `pending` (the agents' long poll).
    pub async fn wait(&self, id: &str, timeout: Duration) -> Result<Option<Approval>, VoteError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let notify = self.notify(id);
        let waited = self.wait_state(id, &notify, deadline).await;
        self.leave(id, notify);
        waited
    }

    async fn wait_state(
        &self,
        id: &str,
        notify: &Notify,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Approval>, VoteError> {
        loop {
            let woken = notify.notified();
            let Some(approval) = self.get(id).await? else {
                return Ok(None);
            };
            if approval.state != State::Pending {
                return Ok(Some(approval));
            }
            // Expiry is noticed on read: wake up by then at the latest.
            let expiry = tokio::time::Instant::now() + until_unix(approval.expires_at);
            if tokio::time::timeout_at(deadline.min(expiry), woken)
                .await
                .is_err()
                && tokio::time::Instant::now() >= deadline
            {
                return Ok(Some(approval));
            }
        }
    }
}

/// An audit entry about an approval (a vote, an expiry).
fn approval_entry(
    event: crate::audit::Event,
    approval: &Approval,
    approvers: Vec<String>,
    outcome: String,
) -> crate::audit::Entry {
    let call = &approval.call;
    let text = |key: &str| call.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let list = |key: &str| -> Vec<String> {
        call.get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.get("name").or(Some(x)).and_then(|n| n.as_str()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    crate::audit::Entry {
        event: Some(event),
        request_id: String::new(),
        agent: Some(approval.agent.clone()),
        owner: Some(approval.owner.clone()),
        cloud: text("cloud"),
        service: text("service"),
        operation: text("operation"),
        actions: list("actions"),
        resources: list("resources"),
        rule: Some(approval.rule.clone()),
        fingerprint: Some(approval.fingerprint.clone()),
        approval_id: Some(approval.id.clone()),
        approvers,
        outcome: Some(outcome),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approvals() -> (tempfile::TempDir, Approvals, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("approvals.db")).unwrap();
        let groups = vec!["security".to_string()];
        let parked = store
            .park(
                &NewApproval {
                    fingerprint: "f",
                    agent: "ci",
                    owner: "alice@example.com",
                    rule: "r",
                    message: None,
                    groups: &groups,
                    quorum: 1,
                    call: &serde_json::json!({}),
                    reason: None,
                    expires_in: 3600,
                    reuse: None,
                },
                unix_now(),
            )
            .unwrap();
        let Parked::Opened(approval) = parked else {
            panic!("a new approval")
        };
        (
            dir,
            Approvals::new(store, Approvers::default(), None),
            approval.id,
        )
    }

    fn bob() -> Approver {
        Approver {
            name: "bob@example.com".into(),
            groups: vec!["security".into()],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_vote_while_a_call_is_held_hands_the_grant_over_consumed() {
        let (_dir, approvals, id) = approvals();
        approvals.holders.insert(id.clone(), 1);
        let approval = approvals
            .vote(&id, &bob(), true, None, "api")
            .await
            .unwrap();
        assert!(approval.consumed, "consumed in the vote's transaction");
        let handed = approvals.handoffs.get(&id).map(|a| a.id.clone());
        assert_eq!(handed.as_deref(), Some(id.as_str()));
        // Nobody else can use it.
        assert!(!approvals.store.consume(&id, unix_now()).unwrap());
    }

    #[tokio::test]
    async fn a_grant_handed_to_a_call_that_left_is_given_back_for_the_retry() {
        let (_dir, approvals, id) = approvals();
        approvals.holders.insert(id.clone(), 1);
        approvals
            .vote(&id, &bob(), true, None, "api")
            .await
            .unwrap();
        // The held call's hold ran out before it took the grant.
        approvals.unhold(&id);
        assert!(approvals.handoffs.is_empty());
        for _ in 0..100 {
            if !approvals.get(&id).await.unwrap().unwrap().consumed {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The agent's retry uses it, once.
        assert!(approvals.store.consume(&id, unix_now()).unwrap());
        assert!(!approvals.store.consume(&id, unix_now()).unwrap());
    }

    #[tokio::test]
    async fn without_a_held_call_the_grant_waits_for_the_retry() {
        let (_dir, approvals, id) = approvals();
        let approval = approvals
            .vote(&id, &bob(), true, None, "api")
            .await
            .unwrap();
        assert!(!approval.consumed);
        assert!(approvals.handoffs.is_empty());
    }
}
