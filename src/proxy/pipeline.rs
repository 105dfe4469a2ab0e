//! One intercepted request, one pipeline. The phases, in order:
//!
//! | phase        | job                                                                |
//! |--------------|--------------------------------------------------------------------|
//! | parse        | exactly one `Host` (or `:authority`), naming the CONNECT host      |
//! | identify     | the request's credential → an agent (the cloud's plug)             |
//! | read_body    | read whole what must be verified or inspected; large uploads stream |
//! | classify     | what the call does ([`crate::cloud`]); shapes every later error     |
//! | authenticate | the agent's credential proven (the cloud's plug)                   |
//! | decide       | the rules in force: allow, deny, or approve ([`crate::rules`])      |
//! | audit        | the decision record durably written ([`crate::audit`])             |
//! | hold         | approve decisions: parked until reviewers decide, up to the rule's hold ([`crate::approvals`]); bound to the plug's fingerprint |
//! | sign         | the agent's credential replaced by a short-lived one (the cloud's plug) |
//! | forward      | to the upstream, hop-by-hop headers dropped; streams both ways     |
//! | record       | the one place each outcome is logged, counted and audited          |
//!
//! The cloud was decided once, when the CONNECT host was accepted ([`ConnCtx::cloud`]),
//! and what the host says to its phases parsed then too ([`ConnCtx::aws_host`]);
//! [`Pipeline::handle`] picks that cloud's [`CloudPlug`] and `Pipeline::run` calls its
//! phases in order, never asking which cloud it runs. Each phase returns
//! `Result<_, Refusal>` (cloud-neutral), and a refusal at any phase ends in `record` like a
//! success, rendered in the cloud's error shape. Nothing reaches the upstream unless every
//! phase before `forward` passed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::header::{self, HOST};
use http::request::Parts;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower_http::timeout::TimeoutBody;

use super::ProxyBody;
use super::aws::Aws;
use super::gcp::Gcp;
use super::plug::{CloudPlug, Signed, view};
use super::refusal::{Origin, Refusal, Style};
use super::upstream::Upstream;
use crate::agents::{Agent, Directory};
use crate::approvals::{Approval, Approvals, Held, unix_now};
use crate::audit::AuditLog;
use crate::cloud::aws::ApiHost;
use crate::cloud::aws::errors::ErrorShape;
use crate::cloud::{Classification, Cloud};
use crate::credentials::{Broker, GoogleBroker};
use crate::metrics::{Metrics, status_class};
use crate::rules::{Decision, Effect, LiveRules, Subject};

/// What an intercepted connection established before its first request.
#[derive(Debug)]
pub struct ConnCtx {
    pub id: u64,
    pub peer: SocketAddr,
    /// The CONNECT host, lower-case; SNI was checked against it.
    pub host: String,
    /// The cloud of `host`: whose phases every request on this connection runs.
    pub cloud: Cloud,
    /// `host` as a metric label (capped: `other` past the limit), chosen once.
    pub metric_host: String,
    /// What `host` says to AWS's phases (endpoint, S3 addressing), parsed once; AWS
    /// connections only. Every request names `host` (phase `parse`), so it holds for
    /// each of them.
    pub aws_host: Option<ApiHost>,
    /// Google connections: the API group and location `host` names, resolved once (none
    /// for a host no discovery document names).
    pub gcp_endpoint: Option<crate::cloud::gcp::endpoint::Endpoint>,
    /// `host` as an authority and a header value, built once per connection.
    pub authority: Authority,
    pub host_header: HeaderValue,
    /// Toward the upstream: HTTPS, or a route's scheme.
    pub scheme: Scheme,
    pub h2: bool,
}

/// Facts the phases gather about one request, read by `record`.
struct Exchange {
    /// Sent back as the request id of Airlock's own errors, and logged.
    id: u64,
    method: Method,
    /// Only its path is logged: query strings can carry presigned credentials.
    uri: Uri,
    started: Instant,
    /// How the agent's client reads errors, as far as the phases know.
    style: Style,
    agent: Option<Arc<Agent>>,
    classification: Option<Classification>,
    /// The rules' effect and deciding rule (`default` when none did).
    decision: Option<(Effect, String)>,
    /// The decision record is on disk.
    audited: bool,
    /// The approval a held call went on with, and who approved it.
    approval: Option<(String, Vec<String>)>,
    upstream_latency: Option<Duration>,
    /// Set when Airlock answered the request itself (`CloudPlug::local`): what it was.
    local: Option<&'static str>,
}

/// Request ids: unique per process run (a random start, then a counter).
static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(0);

fn next_request_id() -> u64 {
    NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed)
}

/// What the pipeline needs besides the request: set up once by the server.
pub struct PipelineDeps {
    pub upstream: Upstream,
    pub metrics: Arc<Metrics>,
    pub agents: Arc<Directory>,
    pub broker: Broker,
    /// Agents' Google service-account tokens, for the Google plug's `sign`.
    pub google: GoogleBroker,
    pub google_token_lifetime: Duration,
    pub rules: Arc<LiveRules>,
    pub audit: Arc<AuditLog>,
    pub approvals: Arc<Approvals>,
    pub body_idle_timeout: Duration,
    pub max_buffered_body: usize,
}

pub struct Pipeline {
    upstream: Upstream,
    metrics: Arc<Metrics>,
    rules: Arc<LiveRules>,
    audit: Arc<AuditLog>,
    approvals: Arc<Approvals>,
    body_idle_timeout: Duration,
    /// Each cloud's phases.
    aws: Aws,
    gcp: Gcp,
}

impl Pipeline {
    pub fn new(deps: PipelineDeps) -> Self {
        let mut seed = [0u8; 8];
        // Ids only need to be distinct across restarts; a failed draw just starts at 0.
        let _ = crate::tls::crypto_provider().secure_random.fill(&mut seed);
        NEXT_REQUEST_ID.store(u64::from_le_bytes(seed) >> 1, Ordering::Relaxed);
        let PipelineDeps {
            upstream,
            metrics,
            agents,
            broker,
            google,
            google_token_lifetime,
            rules,
            audit,
            approvals,
            body_idle_timeout,
            max_buffered_body,
        } = deps;
        Pipeline {
            upstream,
            metrics,
            rules,
            audit,
            approvals,
            body_idle_timeout,
            aws: Aws {
                agents: Arc::clone(&agents),
                broker,
                max_buffered_body,
                body_idle_timeout,
            },
            gcp: Gcp {
                agents,
                broker: google,
                token_lifetime: google_token_lifetime,
                max_buffered_body,
                body_idle_timeout,
            },
        }
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Run one request through every phase. Never fails: a refusal becomes a response.
    pub async fn handle(&self, request: Request<Incoming>, conn: &ConnCtx) -> Response<ProxyBody> {
        let mut exchange = Exchange {
            id: next_request_id(),
            method: request.method().clone(),
            uri: request.uri().clone(),
            started: Instant::now(),
            style: Style::Aws(ErrorShape::RestJson),
            agent: None,
            classification: None,
            decision: None,
            audited: false,
            approval: None,
            upstream_latency: None,
            local: None,
        };
        // The one place the cloud is looked at: its plug runs every cloud-specific phase.
        let outcome = match conn.cloud {
            Cloud::Aws => self.run(&self.aws, request, conn, &mut exchange).await,
            Cloud::Gcp => self.run(&self.gcp, request, conn, &mut exchange).await,
        };
        self.record(conn, &exchange, &outcome);
        outcome.unwrap_or_else(|refusal| {
            refusal.into_response(exchange.style, &format!("{:016x}", exchange.id))
        })
    }

    async fn run<P: CloudPlug>(
        &self,
        plug: &P,
        request: Request<Incoming>,
        conn: &ConnCtx,
        exchange: &mut Exchange,
    ) -> Result<Response<ProxyBody>, Refusal> {
        let (mut parts, body) = request.into_parts();
        exchange.style = plug.style(&parts, conn);
        parse(&parts, conn)?;
        let host = conn.host.as_str();
        if let Some(local) = plug.local(&parts, conn) {
            let answered = plug.answer(local, &parts, body, conn).await;
            exchange.agent = answered.agent;
            exchange.local = Some(answered.operation);
            return answered.result;
        }

        let identity = plug.identify(&parts, conn)?;
        exchange.agent = Some(Arc::clone(P::agent(&identity)));
        let body = plug.read_body(&parts, body, &identity).await?;

        let classification = plug.classify(&view(&parts, host, body.bytes()), conn);
        if let Some(call) = classification.call() {
            exchange.style = plug.style_for(call, exchange.style);
        }
        let classification = exchange.classification.insert(classification);

        let verified = plug.authenticate(&parts, conn, &body, &identity)?;
        let agent = P::agent(&identity);
        let rules = self.rules.current();
        let decision = rules.decide(
            classification,
            &Subject {
                agent,
                now: unix_now(),
            },
        );
        exchange.decision = Some((
            decision.effect,
            decision.rule.clone().unwrap_or_else(|| "default".into()),
        ));
        // What an approval would bind to (the agent's reason is shown, not bound).
        let reason = parts.headers.remove(REASON_HEADER).and_then(|v| {
            v.to_str()
                .ok()
                .map(|s| s.chars().take(MAX_REASON).collect::<String>())
        });
        let fingerprint = (decision.effect == Effect::Approve).then(|| {
            plug.fingerprint(
                &parts,
                conn,
                &body,
                &identity,
                &verified,
                classification.call(),
            )
        });
        // Phase `audit`: the decision is on disk before anything is forwarded (or refused).
        let entry = audit_entry(
            exchange.id,
            agent,
            conn.cloud,
            classification,
            &decision,
            &rules.version,
            fingerprint.as_ref(),
        );
        let written = Instant::now();
        let durable = self.audit.append_durable(entry).await;
        self.metrics
            .audit_write_seconds
            .observe(written.elapsed().as_secs_f64());
        if let Err(e) = durable {
            self.metrics.audit_write_failures_total.inc();
            tracing::error!(error = %e, "audit write failed: refusing the request");
            return Err(Refusal::AuditUnavailable);
        }
        exchange.audited = true;
        decide(&decision)?;
        if let Some(fingerprint) = fingerprint {
            // Phase `hold`: park until reviewers decide, or the rule's hold runs out.
            let changes = match classification.call() {
                Some(call) => {
                    plug.changes(&parts, conn, &body, &identity, call, &self.upstream)
                        .await
                }
                None => Vec::new(),
            };
            let approval = self
                .approvals
                .hold(
                    fingerprint,
                    agent,
                    classification,
                    &decision,
                    reason,
                    changes,
                )
                .await;
            let outcome = match &approval {
                Ok(Held::Go(_)) => "go",
                Ok(Held::Pending(_)) => "pending",
                Ok(Held::Used(_)) => "used",
                Ok(Held::Denied(_)) => "denied",
                Ok(Held::Expired(_)) => "expired",
                Err(_) => "error",
            };
            self.metrics
                .held_calls_total
                .with_label_values(&[outcome])
                .inc();
            let approval = held(approval)?;
            exchange.approval = Some((
                approval.id.clone(),
                approval
                    .votes
                    .iter()
                    .filter(|v| v.approve)
                    .map(|v| v.approver.clone())
                    .collect(),
            ));
        }
        // HTTP/2 agents send `:authority` only; signatures cover it as `host`. Headers of
        // this connection only (hop-by-hop) go now, so the re-signed request is exactly
        // the request forwarded.
        if !parts.headers.contains_key(HOST) {
            parts.headers.insert(HOST, conn.host_header.clone());
        }
        strip_hop_by_hop(&mut parts.headers);
        let Signed { body, verdict } = plug
            .sign(&mut parts, conn, body, &identity, &verified)
            .await?;
        let forwarded = self.forward(parts, body, conn, exchange).await;
        // The agent's body failed its check as it streamed (hash, chunk signature): the
        // upload was cut, and that, not the upstream's reaction, is what the agent hears.
        match (forwarded, verdict.and_then(|v| v.get().cloned())) {
            (Err(_), Some(failed)) => Err(failed.into()),
            (forwarded, _) => forwarded,
        }
    }

    /// Phase `forward`: rewrite to an absolute URI for the upstream (same host), drop
    /// hop-by-hop headers, stream the body out and the response back.
    async fn forward(
        &self,
        mut parts: Parts,
        body: ProxyBody,
        conn: &ConnCtx,
        exchange: &mut Exchange,
    ) -> Result<Response<ProxyBody>, Refusal> {
        // gRPC streams (StreamingPull, Listen) are long-lived and may be quiet for minutes:
        // their responses are not cut for idleness; HTTP/2 PINGs reap dead agents instead.
        let long_lived = crate::cloud::gcp::is_grpc(&parts.headers);
        let mut uri = parts.uri.into_parts();
        uri.scheme = Some(conn.scheme.clone());
        uri.authority = Some(conn.authority.clone());
        if uri.path_and_query.is_none() {
            uri.path_and_query = Some(PathAndQuery::from_static("/"));
        }
        parts.uri = Uri::from_parts(uri).map_err(|e| Refusal::Internal(e.to_string()))?;
        // The pool picks HTTP/1.1 or HTTP/2 per upstream connection (ALPN).
        parts.version = Version::HTTP_11;
        let request = Request::from_parts(parts, body);

        let sent = Instant::now();
        let timeout = self.upstream.response_timeout;
        let response = match tokio::time::timeout(timeout, self.upstream.send(request)).await {
            Err(_) => {
                return Err(Refusal::UpstreamTimeout {
                    host: conn.host.clone(),
                    after: timeout,
                });
            }
            Ok(Err(e)) => return Err(upstream_refusal(&conn.host, &e)),
            Ok(Ok(response)) => response,
        };
        exchange.upstream_latency = Some(sent.elapsed());

        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let body = if long_lived {
            body.map_err(super::BoxError::from).boxed_unsync()
        } else {
            TimeoutBody::new(self.body_idle_timeout, body).boxed_unsync()
        };
        Ok(Response::from_parts(parts, body))
    }

    /// Phase `record`: the one place where a request's outcome is logged and counted.
    fn record(
        &self,
        conn: &ConnCtx,
        exchange: &Exchange,
        outcome: &Result<Response<ProxyBody>, Refusal>,
    ) {
        let m = &self.metrics;
        let status = match outcome {
            Ok(response) => response.status(),
            Err(refusal) => refusal.status(exchange.style),
        };
        let elapsed = exchange.started.elapsed();
        let class = status_class(status.as_u16());
        m.requests_total
            .with_label_values(&[conn.metric_host.as_str(), class])
            .inc();
        m.request_duration_seconds
            .with_label_values(&[class])
            .observe(elapsed.as_secs_f64());
        if let Some(latency) = exchange.upstream_latency {
            m.upstream_duration_seconds.observe(latency.as_secs_f64());
        }
        let (code, message) = match outcome {
            Ok(_) => ("", String::new()),
            Err(refusal) => {
                if refusal.origin() == Origin::Upstream {
                    let kind = match refusal {
                        Refusal::UpstreamConnect { .. } => "connect",
                        Refusal::UpstreamTimeout { .. } => "timeout",
                        _ => "protocol",
                    };
                    m.upstream_errors_total.with_label_values(&[kind]).inc();
                }
                if let Refusal::Auth { error, .. } = refusal {
                    m.auth_failures_total.with_label_values(&[error.code]).inc();
                }
                (refusal.code(), refusal.to_string())
            }
        };
        let (service, operation) = match exchange.local {
            Some(operation) => ("airlock", operation),
            None => exchange
                .classification
                .as_ref()
                .and_then(Classification::call)
                .map_or(("", ""), |c| (c.service, c.operation)),
        };
        let (effect, rule) = exchange
            .decision
            .as_ref()
            .map_or(("", ""), |(e, r)| (e.as_str(), r.as_str()));
        if !effect.is_empty() {
            m.decisions_total.with_label_values(&[effect, rule]).inc();
        }
        // The outcome, after the fact: what the upstream answered, or why Airlock refused
        // (a refusal that is itself the recorded decision is not recorded twice).
        let denied = exchange
            .decision
            .as_ref()
            .is_some_and(|(e, _)| *e == Effect::Deny);
        if !(exchange.audited && denied) {
            let agent = exchange.agent.as_deref();
            self.audit.append(crate::audit::Entry {
                event: Some(match outcome {
                    Ok(_) if exchange.local.is_some() => crate::audit::Event::Answered,
                    Ok(_) => crate::audit::Event::Forwarded,
                    Err(_) => crate::audit::Event::Failed,
                }),
                request_id: format!("{:016x}", exchange.id),
                agent: agent.map(|a| a.name.clone()),
                owner: agent.map(|a| a.owner.clone()),
                cloud: Some(conn.cloud.as_str().to_string()),
                service: (!service.is_empty()).then(|| service.to_string()),
                operation: (!operation.is_empty()).then(|| operation.to_string()),
                outcome: Some(match outcome {
                    Ok(response) => response.status().as_u16().to_string(),
                    Err(refusal) => refusal.code().to_string(),
                }),
                approval_id: exchange.approval.as_ref().map(|(id, _)| id.clone()),
                approvers: exchange
                    .approval
                    .as_ref()
                    .map(|(_, who)| who.clone())
                    .unwrap_or_default(),
                ..Default::default()
            });
        }
        tracing::info!(
            target: "airlock::access",
            conn_id = conn.id,
            request_id = format_args!("{:016x}", exchange.id),
            agent.addr = %conn.peer,
            agent.name = exchange.agent.as_ref().map_or("", |a| a.name.as_str()),
            call.cloud = conn.cloud.as_str(),
            call.service = service,
            call.operation = operation,
            decision.effect = effect,
            decision.rule = rule,
            http.host = %conn.host,
            http.method = %exchange.method,
            http.path = exchange.uri.path(),
            http.status = status.as_u16(),
            duration_us = elapsed.as_micros() as u64,
            upstream_us = exchange.upstream_latency.map(|d| d.as_micros() as u64),
            error.code = code,
            error.message = message,
            "request"
        );
    }
}

/// Phase `parse`: the request must carry exactly one `Host` (HTTP/1.1) or an
/// `:authority` (HTTP/2), and every name it gives must be the CONNECT host. Otherwise a
/// client could tunnel to one host and address another (request smuggling past rules).
fn parse(request: &Parts, conn: &ConnCtx) -> Result<(), Refusal> {
    let mut hosts = request.headers.get_all(HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(Refusal::DuplicateHost);
    }
    let authority = request.uri.authority();
    if host.is_none() && !(conn.h2 && authority.is_some()) {
        return Err(Refusal::MissingHost);
    }
    let mismatch = |got: &str| Refusal::HostMismatch {
        expected: conn.host.clone(),
        got: got.into(),
    };
    if let Some(host) = host {
        let value = host.to_str().map_err(|_| mismatch("<not ASCII>"))?;
        if !names_host(value, &conn.host) {
            return Err(mismatch(value));
        }
    }
    if let Some(authority) = authority
        && !names_host(authority.as_str(), &conn.host)
    {
        return Err(mismatch(authority.as_str()));
    }
    Ok(())
}

/// `value` is `host` or `host:443`, in any case.
fn names_host(value: &str, host: &str) -> bool {
    let name = value.strip_suffix(":443").unwrap_or(value);
    name.eq_ignore_ascii_case(host)
}

/// The decision record of a call.
fn audit_entry(
    id: u64,
    agent: &Agent,
    cloud: Cloud,
    classification: &Classification,
    decision: &Decision,
    rules_version: &str,
    fingerprint: Option<&crate::cloud::Fingerprint>,
) -> crate::audit::Entry {
    let call = classification.call();
    crate::audit::Entry {
        event: Some(match decision.effect {
            Effect::Allow => crate::audit::Event::Allowed,
            Effect::Deny => crate::audit::Event::Denied,
            Effect::Approve => crate::audit::Event::Held,
        }),
        request_id: format!("{id:016x}"),
        agent: Some(agent.name.clone()),
        owner: Some(agent.owner.clone()),
        cloud: Some(cloud.as_str().into()),
        service: call.map(|c| c.service.to_string()),
        operation: call.map(|c| c.operation.to_string()),
        actions: call.map_or_else(Vec::new, |c| {
            c.actions.iter().map(|a| a.name.to_string()).collect()
        }),
        resources: call.map_or_else(Vec::new, |c| c.resources.clone()),
        params_digest: call
            .map(|c| crate::audit::line_hash(&serde_json::to_vec(&c.params).unwrap_or_default())),
        rule: Some(decision.rule.clone().unwrap_or_else(|| "default".into())),
        rules_version: Some(rules_version.to_string()),
        fingerprint: fingerprint.map(|f| f.hash.clone()),
        body_binding: fingerprint.map(|f| f.body.as_str().to_string()),
        outcome: None,
        approval_id: None,
        approvers: Vec::new(),
    }
}

/// The header an agent may state its reason in (shown to reviewers; not forwarded).
pub const REASON_HEADER: &str = "x-airlock-reason";
const MAX_REASON: usize = 1000;

/// How a held call ends, as the agent hears it: go on, or a refusal that says what is
/// pending and how to wait, that an identical call used the grant, who denied and why, or
/// that it expired.
fn held(outcome: Result<Held, crate::approvals::VoteError>) -> Result<Approval, Refusal> {
    match outcome {
        Ok(Held::Go(approval)) => Ok(approval),
        Ok(Held::Pending(approval)) => Err(Refusal::Pending {
            approval: Box::new(approval),
        }),
        Ok(Held::Used(approval)) => Err(Refusal::Used {
            approval: Box::new(approval),
        }),
        Ok(Held::Denied(approval)) => Err(Refusal::Rejected {
            approval: Box::new(approval),
        }),
        Ok(Held::Expired(approval)) => Err(Refusal::Expired {
            approval: Box::new(approval),
        }),
        Err(e) => {
            tracing::error!(error = %e, "approvals store failed");
            Err(Refusal::StoreUnavailable)
        }
    }
}

/// Phase `decide`: what the rules said, as the agent hears it: a denial ends here; an
/// approval requirement goes on to `hold`.
fn decide(decision: &Decision) -> Result<(), Refusal> {
    match decision.effect {
        Effect::Allow | Effect::Approve => Ok(()),
        Effect::Deny => Err(Refusal::Denied {
            rule: decision.rule.clone().unwrap_or_else(|| "default".into()),
            message: decision.message.clone(),
        }),
    }
}

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "transfer-encoding",
    "upgrade",
    "expect",
    "keep-alive",
    "proxy-connection",
];

/// Connection-scoped headers never cross the proxy (RFC 9110 §7.6.1). `Expect` is
/// answered by Airlock itself (hyper sends `100 Continue` when the body is first read).
/// `TE: trailers` alone travels on: gRPC requires it end to end, and it is the one `TE`
/// value HTTP/2 allows (RFC 9113 §8.2.2).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let trailers = headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    let listed: Vec<header::HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| header::HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Map a client error to what the agent is told: connect failures (including upstream
/// TLS) are 502 "unreachable", anything after that 502 "failed".
fn upstream_refusal(host: &str, error: &hyper_util::client::legacy::Error) -> Refusal {
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_connect() {
        Refusal::UpstreamConnect {
            host: host.to_string(),
            detail,
        }
    } else {
        Refusal::UpstreamProtocol {
            host: host.to_string(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_match_with_or_without_port_443() {
        assert!(names_host("sts.amazonaws.com", "sts.amazonaws.com"));
        assert!(names_host("STS.amazonaws.com:443", "sts.amazonaws.com"));
        assert!(!names_host("sts.amazonaws.com:8443", "sts.amazonaws.com"));
        assert!(!names_host("iam.amazonaws.com", "sts.amazonaws.com"));
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_including_those_named_by_connection() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        headers.insert("x-amz-date", HeaderValue::from_static("20260101T000000Z"));
        headers.insert(HOST, HeaderValue::from_static("sts.amazonaws.com"));
        headers.insert(header::TE, HeaderValue::from_static("gzip"));
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, ["host", "x-amz-date"]);
    }

    #[test]
    fn te_trailers_alone_travels_on_for_grpc() {
        let mut headers = HeaderMap::new();
        headers.insert(header::TE, HeaderValue::from_static("gzip, Trailers"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.get(header::TE).unwrap(), "trailers");
    }
}
