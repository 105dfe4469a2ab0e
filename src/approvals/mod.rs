//! Approvals: a call the rules send to approval is parked under its fingerprint until
//! reviewers decide, for at most the rule's `hold`; then it goes on (consuming the grant),
//! or the agent is told what is pending and how to wait, or who denied it and why.
//!
//! - [`store`]: approvals, votes and grants in SQLite.
//! - [`fingerprint`]: what "the same call" means, so retries and re-runs join one approval.
//! - [`Approvals::hold`]: the pipeline's `hold` phase.
//! - Reviewers: [`Approvers`], bearer tokens stored as SHA-256 hashes in the config.

pub mod api;
pub mod client;
pub mod store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::agents::Agent;
use crate::cloud::{Call, Classification};
use crate::rules::Decision;
pub use store::{Approval, NewApproval, Parked, State, Store, Vote, VoteError};

/// A reviewer, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approver {
    pub name: String,
    pub groups: Vec<String>,
}

/// Reviewers by the SHA-256 (hex) of their bearer token.
#[derive(Debug, Default, Clone)]
pub struct Approvers(HashMap<String, Approver>);

impl Approvers {
    pub fn new(entries: impl IntoIterator<Item = (String, Approver)>) -> Approvers {
        Approvers(
            entries
                .into_iter()
                .map(|(hash, a)| (hash.to_ascii_lowercase(), a))
                .collect(),
        )
    }

    /// The reviewer holding `token`.
    pub fn by_token(&self, token: &str) -> Option<&Approver> {
        self.0.get(&token_hash(token))
    }
}

/// The hex SHA-256 of a bearer token: what the config stores.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Headers that differ between two sends of the same call (time, signature, SDK
/// bookkeeping, transport): left out of the fingerprint.
const VOLATILE_HEADERS: [&str; 10] = [
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    "user-agent",
    "x-amz-user-agent",
    "content-length",
    "expect",
];

/// The fingerprint an approval binds to: SHA-256 over the agent, method, host, path,
/// sorted query (minus signature parameters), the signed headers minus volatile ones, and
/// the call's parameters minus idempotency tokens (so a re-run, with a fresh token, is the
/// same call).
pub fn fingerprint(
    agent: &str,
    method: &http::Method,
    host: &str,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    signed_headers: &[String],
    call: Option<&Call>,
) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(agent.as_bytes());
    field(method.as_str().as_bytes());
    field(host.as_bytes());
    field(uri.path().as_bytes());
    let mut query: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split_once('=').map_or(*p, |(k, _)| k);
            !crate::cloud::aws::is_auth_param(key)
        })
        .collect();
    query.sort_unstable();
    field(query.join("&").as_bytes());
    let mut names: Vec<&str> = signed_headers
        .iter()
        .map(String::as_str)
        .filter(|h| !VOLATILE_HEADERS.contains(h))
        .collect();
    names.sort_unstable();
    for name in names {
        field(name.as_bytes());
        for value in headers.get_all(name) {
            field(value.as_bytes());
        }
    }
    if let Some(call) = call {
        let mut params = call.params.clone();
        if let serde_json::Value::Object(map) = &mut params {
            for name in &call.idempotency_params {
                map.remove(*name);
            }
        }
        field(params.to_string().as_bytes());
    }
    hex::encode(hash.finalize())
}

/// How a held call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Held {
    /// Approved: forward it (the grant is consumed).
    Go(Approval),
    /// Still pending when the hold ran out.
    Pending(Approval),
    Denied(Approval),
    Expired(Approval),
}

/// The approvals service: the store, and wake-ups for parked calls.
pub struct Approvals {
    store: Arc<Store>,
    approvers: Approvers,
    waiting: DashMap<String, Arc<Notify>>,
    /// Votes are audited (each one a record).
    audit: Option<Arc<crate::audit::AuditLog>>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
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
            audit,
            metrics: None,
        }
    }

    /// Keep `airlock_approvals_pending`, the decision-time histogram and vote counts.
    pub fn counted(mut self, metrics: Arc<crate::metrics::Metrics>) -> Approvals {
        self.metrics = Some(metrics);
        self
    }

    /// Refresh the pending gauge from the store.
    async fn count_pending(&self) {
        if let Some(m) = &self.metrics
            && let Ok(n) = self.blocking(|s| s.pending(unix_now())).await
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
        fingerprint: String,
        agent: &Agent,
        classification: &Classification,
        decision: &Decision,
        reason: Option<String>,
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
        let call = serde_json::to_value(classification).unwrap_or_default();
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
        self.count_pending().await;
        let approval = match parked {
            Parked::Go(a) => return Ok(Held::Go(a)),
            Parked::Denied(a) => return Ok(Held::Denied(a)),
            Parked::Wait(a) => a,
        };
        let deadline = tokio::time::Instant::now() + hold;
        let id = approval.id.clone();
        let notify = self.notify(&id);
        let held = self.wait_held(approval, &notify, deadline).await;
        self.leave(&id, notify);
        held
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
                    } else {
                        // Another request with the same fingerprint used the grant first.
                        Ok(Held::Pending(approval))
                    };
                }
                State::Denied => return Ok(Held::Denied(approval)),
                State::Expired => return Ok(Held::Expired(approval)),
                State::Pending => {}
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return Ok(Held::Pending(approval));
            }
        }
    }

    /// A reviewer's vote (all checks in the store); wakes the parked calls.
    pub async fn vote(
        &self,
        id: &str,
        approver: &Approver,
        approve: bool,
        reason: Option<String>,
    ) -> Result<Approval, VoteError> {
        let (id_owned, name, groups) = (
            id.to_string(),
            approver.name.clone(),
            approver.groups.clone(),
        );
        let voted = self
            .blocking(move |s| {
                s.vote(
                    &id_owned,
                    &name,
                    &groups,
                    approve,
                    reason.as_deref(),
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
        if approval.state != State::Pending
            && let Some((_, notify)) = self.waiting.remove(id)
        {
            notify.notify_waiters();
        }
        if let Some(audit) = &self.audit {
            let call = &approval.call;
            let text = |key: &str| call.get(key).and_then(|v| v.as_str()).map(str::to_string);
            audit.append(crate::audit::Entry {
                event: Some(crate::audit::Event::Voted),
                request_id: String::new(),
                agent: Some(approval.agent.clone()),
                owner: Some(approval.owner.clone()),
                service: text("service"),
                operation: text("operation"),
                rule: Some(approval.rule.clone()),
                approval_id: Some(approval.id.clone()),
                approvers: vec![approver.name.clone()],
                outcome: Some(format!(
                    "{} → {}",
                    if approve { "approve" } else { "deny" },
                    serde_json::to_value(approval.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                )),
                ..Default::default()
            });
        }
        self.count_pending().await;
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
            let expiry = tokio::time::Instant::now()
                + Duration::from_secs((approval.expires_at - unix_now()).max(0) as u64);
            if tokio::time::timeout_at(deadline.min(expiry + Duration::from_millis(50)), woken)
                .await
                .is_err()
                && tokio::time::Instant::now() >= deadline
            {
                return Ok(Some(approval));
            }
        }
    }
}
