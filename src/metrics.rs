//! One Prometheus registry and every metric Airlock exports, all prefixed `airlock_`.
//! Labels are bounded: hosts are capped (see `HostLabels`), reasons and classes are
//! fixed sets, and no URL or request id is ever a label.

use dashmap::DashSet;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::hosts::RefuseReason;

/// Distinct `host` label values kept before further hosts are counted as `other`.
pub const MAX_HOST_LABELS: usize = 256;

/// Latency buckets in seconds, from 100 µs (a local upstream) to 5 min (the upstream
/// response timeout).
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0, 300.0,
];

pub struct Metrics {
    registry: Registry,
    pub connections_open: IntGauge,
    pub connections_total: IntCounter,
    pub connect_refused_total: IntCounterVec,
    pub tunnels_total: IntCounter,
    pub tls_handshakes_total: IntCounterVec,
    pub tls_handshake_failures_total: IntCounterVec,
    pub cert_cache_hits_total: IntCounter,
    pub cert_cache_misses_total: IntCounter,
    pub requests_total: IntCounterVec,
    pub request_duration_seconds: HistogramVec,
    pub upstream_duration_seconds: Histogram,
    pub upstream_errors_total: IntCounterVec,
    pub reloads_total: IntCounterVec,
    pub decisions_total: IntCounterVec,
    pub audit_write_seconds: Histogram,
    pub approvals_pending: IntGauge,
    pub approval_decision_seconds: Histogram,
    pub held_calls_total: IntCounterVec,
    pub approval_votes_total: IntCounterVec,
    pub approval_outcomes_total: IntCounterVec,
    pub channel_messages_total: IntCounterVec,
    pub channel_callbacks_total: IntCounterVec,
    pub audit_write_failures_total: IntCounter,
    pub auth_failures_total: IntCounterVec,
    pub sessions_total: IntCounterVec,
    pub google_tokens_total: IntCounterVec,
    hosts: HostLabels,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let counter_vec =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let connections_open =
            IntGauge::new("airlock_connections_open", "Agent connections open now.")?;
        registry.register(Box::new(connections_open.clone()))?;
        let request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "airlock_request_duration_seconds",
                "Time from a request's arrival to its response headers, by status class.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["class"],
        )?;
        registry.register(Box::new(request_duration_seconds.clone()))?;
        let upstream_duration_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "airlock_upstream_duration_seconds",
                "Time from sending a request upstream to its response headers.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(upstream_duration_seconds.clone()))?;

        let audit_write_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "airlock_audit_write_seconds",
                "Time for a decision record to be on disk (write and fsync, group-committed).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(audit_write_seconds.clone()))?;
        let approvals_pending = IntGauge::new(
            "airlock_approvals_pending",
            "Approvals waiting for reviewers now.",
        )?;
        registry.register(Box::new(approvals_pending.clone()))?;
        let approval_decision_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "airlock_approval_decision_seconds",
                "Time from an approval request to its decision (approved or denied).",
            )
            .buckets(vec![
                1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0,
            ]),
        )?;
        registry.register(Box::new(approval_decision_seconds.clone()))?;
        let metrics = Metrics {
            audit_write_seconds,
            approvals_pending,
            approval_decision_seconds,
            held_calls_total: counter_vec(
                "airlock_held_calls_total",
                "Calls held for approval, by how the hold ended (go, pending, used, denied, expired).",
                &["outcome"],
            )?,
            approval_votes_total: counter_vec(
                "airlock_approval_votes_total",
                "Reviewer votes, by result (approve, deny, refused).",
                &["result"],
            )?,
            approval_outcomes_total: counter_vec(
                "airlock_approval_outcomes_total",
                "Approvals decided, by outcome (approved, denied, expired).",
                &["outcome"],
            )?,
            channel_messages_total: counter_vec(
                "airlock_channel_messages_total",
                "Messages channels sent about approvals (Slack, Teams, webhooks), by result: \
                 sent, retried (a failed attempt that will be retried), failed (given up), \
                 missed (the channel fell behind and skipped events).",
                &["channel", "result"],
            )?,
            channel_callbacks_total: counter_vec(
                "airlock_channel_callbacks_total",
                "Reviewer actions arriving from channels (Slack clicks, Teams invokes, web \
                 votes), by result (accepted, rejected) and reason.",
                &["channel", "result", "reason"],
            )?,
            audit_write_failures_total: counter(
                "airlock_audit_write_failures_total",
                "Decision records that could not be written (their requests were refused).",
            )?,
            connections_open,
            connections_total: counter("airlock_connections_total", "Agent connections accepted.")?,
            connect_refused_total: counter_vec(
                "airlock_connect_refused_total",
                "Proxy requests refused before any TLS, by reason.",
                &["reason"],
            )?,
            tunnels_total: counter(
                "airlock_tunnels_total",
                "CONNECTs relayed untouched (tunnel).",
            )?,
            tls_handshakes_total: counter_vec(
                "airlock_tls_handshakes_total",
                "TLS handshakes with agents, by result (ok, error).",
                &["result"],
            )?,
            tls_handshake_failures_total: counter_vec(
                "airlock_tls_handshake_failures_total",
                "Failed TLS handshakes with agents, by reason.",
                &["reason"],
            )?,
            cert_cache_hits_total: counter(
                "airlock_cert_cache_hits_total",
                "Host certificates served from the cache.",
            )?,
            cert_cache_misses_total: counter(
                "airlock_cert_cache_misses_total",
                "Host certificates minted (cache misses and renewals).",
            )?,
            requests_total: counter_vec(
                "airlock_requests_total",
                "Intercepted requests answered, by host and status class (2xx..5xx).",
                &["host", "class"],
            )?,
            request_duration_seconds,
            upstream_duration_seconds,
            upstream_errors_total: counter_vec(
                "airlock_upstream_errors_total",
                "Requests that failed upstream, by kind (connect, timeout, protocol).",
                &["kind"],
            )?,
            reloads_total: counter_vec(
                "airlock_reloads_total",
                "Reloads of watched files, by what (agents, rules) and result (ok, error).",
                &["what", "result"],
            )?,
            decisions_total: counter_vec(
                "airlock_decisions_total",
                "Rule decisions, by effect (allow, approve, deny) and deciding rule (`default` when none).",
                &["effect", "rule"],
            )?,
            auth_failures_total: counter_vec(
                "airlock_auth_failures_total",
                "Requests refused because the agent could not be authenticated, by AWS error code.",
                &["code"],
            )?,
            sessions_total: counter_vec(
                "airlock_sessions_total",
                "Short-lived credential fetches (STS AssumeRole), by result (ok, error).",
                &["result"],
            )?,
            google_tokens_total: counter_vec(
                "airlock_google_tokens_total",
                "Agents' Google access tokens minted (iamcredentials generateAccessToken), \
                 by result (ok, error).",
                &["result"],
            )?,
            hosts: HostLabels::default(),
            registry,
        };
        // Pre-create the fixed label sets so dashboards see zeros, not gaps.
        for reason in RefuseReason::ALL {
            metrics
                .connect_refused_total
                .with_label_values(&[reason.label()]);
        }
        for result in ["ok", "error"] {
            metrics.tls_handshakes_total.with_label_values(&[result]);
            metrics.sessions_total.with_label_values(&[result]);
            metrics.google_tokens_total.with_label_values(&[result]);
        }
        Ok(metrics)
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The bounded label for `host`.
    pub fn host_label<'h>(&self, host: &'h str) -> &'h str {
        self.hosts.label(host)
    }
}

/// Hosts become label values until [`MAX_HOST_LABELS`] are known; later ones are `other`.
/// (S3 virtual-hosted names alone would otherwise grow without bound.)
#[derive(Default)]
struct HostLabels {
    known: DashSet<String>,
}

impl HostLabels {
    fn label<'h>(&self, host: &'h str) -> &'h str {
        if self.known.contains(host) {
            return host;
        }
        if self.known.len() < MAX_HOST_LABELS {
            self.known.insert(host.to_string());
            return host;
        }
        "other"
    }
}

/// `200` → `2xx`.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_labels_are_capped() {
        let labels = HostLabels::default();
        let hosts: Vec<String> = (0..MAX_HOST_LABELS + 10)
            .map(|i| format!("b{i}.s3.amazonaws.com"))
            .collect();
        let others = hosts.iter().filter(|h| labels.label(h) == "other").count();
        assert_eq!(others, 10);
        assert_eq!(labels.label(&hosts[0]), hosts[0]);
    }

    #[test]
    fn exposition_has_prefixed_names_and_zeroed_reasons() {
        let m = Metrics::new().unwrap();
        let text = m.encode();
        assert!(text.contains("airlock_connect_refused_total{reason=\"ip_literal\"} 0"));
        assert!(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .all(|l| l.starts_with("airlock_"))
        );
    }
}
