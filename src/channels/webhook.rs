//! Outgoing webhooks: every approval event (or the configured ones) as a JSON POST, for
//! paging and ticketing systems.
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Airlock-Event: approved
//! X-Airlock-Delivery: apr-…:approved:1767614400      (the same on every retry)
//! X-Airlock-Timestamp: 1767614412                     (unix seconds, this attempt)
//! X-Airlock-Signature: v1=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + body)>
//!
//! {"event": "approved", "approval": {…the reviewers' context…}}
//! ```
//!
//! Receivers should check the signature in constant time, refuse timestamps more than
//! five minutes off, and treat `X-Airlock-Delivery` as an idempotency key: a delivery is
//! retried (with backoff) until it gets a 2xx, so it may arrive more than once.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Context, Failure, Outbound, event_name};
use crate::approvals::Event;

/// One attempt may take this long.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Webhook {
    url: String,
    secret: String,
    /// Event names to send; empty: all.
    events: Vec<String>,
    base_url: String,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(
        url: String,
        secret: String,
        events: Vec<String>,
        base_url: String,
        client: reqwest::Client,
    ) -> Webhook {
        Webhook {
            url,
            secret,
            events,
            base_url,
            client,
        }
    }
}

/// `v1=<hex HMAC-SHA256(secret, "v1:{timestamp}:{body}")>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(format!("v1:{timestamp}:").as_bytes());
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl Outbound for Webhook {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(&self, event: &Event) -> Result<(), Failure> {
        let name = event_name(event.kind);
        if !self.events.is_empty() && !self.events.iter().any(|e| e == name) {
            return Ok(());
        }
        let approval = &event.approval;
        let body = serde_json::to_vec(&serde_json::json!({
            "event": name,
            "approval": Context::of(approval, &self.base_url),
        }))
        .map_err(|e| Failure::permanent(e.to_string()))?;
        let at = event_at(event);
        let now = crate::approvals::unix_now();
        let response = self
            .client
            .post(&self.url)
            .timeout(TIMEOUT)
            .header("content-type", "application/json")
            .header("x-airlock-event", name)
            .header("x-airlock-delivery", format!("{}:{name}:{at}", approval.id))
            .header("x-airlock-timestamp", now.to_string())
            .header("x-airlock-signature", signature(&self.secret, now, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::transient(format!("{}: {e}", self.url)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let mut failure = Failure::from_status(status, &self.url);
        failure.retry_after = super::retry_after(response.headers());
        Err(failure)
    }
}

/// When the event happened: the last vote, the decision, the expiry, or the request.
fn event_at(event: &Event) -> i64 {
    let a = &event.approval;
    match event.kind {
        crate::approvals::EventKind::Requested => a.requested_at,
        crate::approvals::EventKind::Expired => a.expires_at,
        _ => a.votes.last().map_or(a.requested_at, |v| v.at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = signature("k", 100, b"{}");
        assert!(a.starts_with("v1=") && a.len() == 3 + 64);
        assert_ne!(a, signature("k", 101, b"{}"));
        assert_ne!(a, signature("k", 100, b"{ }"));
        assert_ne!(a, signature("k2", 100, b"{}"));
        // Fixed vector (computed independently: python3 -c "import hmac,hashlib;
        // print(hmac.new(b'k', b'v1:100:{}', hashlib.sha256).hexdigest())").
        assert_eq!(
            a,
            "v1=d98d3fddde66e1d0043b347e898a813f60583a7acc511ea9a7e13a08b2e2f157"
        );
    }
}
