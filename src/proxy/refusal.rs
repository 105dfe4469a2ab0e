//! Why a request was not answered by the upstream, in cloud-neutral terms, and the one
//! function that turns that into the response the agent sees — shaped like its cloud's own
//! errors ([`Style`]): AWS XML/JSON/CBOR by protocol, Google REST JSON, or gRPC trailers.
//!
//! Phases say *what* went wrong (denied by a rule, pending approval, an authentication
//! failure of some kind, the audit log unavailable, …); only [`Refusal::into_response`]
//! knows how each cloud spells it.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::ProxyBody;
use crate::approvals::Approval;
use crate::cloud::aws::errors::{self as aws_errors, ErrorShape};
use crate::cloud::gcp::errors::{self as gcp_errors, GoogleError};

/// How the agent's client reads errors: decided per connection by the cloud, refined per
/// request as the phases learn the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Aws(ErrorShape),
    /// Google REST: `{"error": {code, message, status, details}}`.
    GoogleRest,
    /// gRPC: a trailers-only response with `grpc-status` and `grpc-message`.
    Grpc,
}

/// An error in a cloud's own words, made by that cloud's phases (a malformed signature, a
/// body that does not match its declared hash, …): `code` is the cloud's (`SignatureDoesNotMatch`
/// for AWS; an `ErrorInfo` reason such as `ACCESS_TOKEN_EXPIRED` for Google).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CloudError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl CloudError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> CloudError {
        CloudError {
            status,
            code,
            message: message.into(),
        }
    }
}

/// Why an agent could not be authenticated, in terms every cloud has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// No credential at all.
    Missing,
    /// A credential that is not the right form (a truncated signature, a garbled token).
    Malformed,
    /// A credential Airlock did not issue, or no longer honours (rotated, removed).
    Unknown,
    /// A real cloud credential: agents hold only Airlock's, and those are never forwarded.
    CloudCredential,
    /// The credential is Airlock's, but the proof does not match (signature, body hash).
    Mismatch,
    /// Outside its validity window (clock skew, an expired presigned URL or token).
    Expired,
    /// A scheme Airlock does not accept (SigV4a, another token type).
    Unsupported,
}

/// A request Airlock answered itself instead of with the upstream's response.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("the request has no Host header")]
    MissingHost,
    #[error("the request has more than one Host header")]
    DuplicateHost,
    #[error("the request is for `{got}` but this connection was opened (CONNECT) for `{expected}`")]
    HostMismatch { expected: String, got: String },
    /// The agent could not be authenticated.
    #[error("{error}")]
    Auth { kind: AuthKind, error: CloudError },
    /// The request is malformed in its cloud's own terms.
    #[error("{0}")]
    Invalid(CloudError),
    /// A rule denied the call.
    #[error("Airlock denied this call (rule `{rule}`){}", suffix(": ", message))]
    Denied {
        rule: String,
        message: Option<String>,
    },
    /// The call waits for reviewers.
    #[error(
        "This call needs approval (rule `{}`).{} Approval {id} is pending ({approvals} of {quorum} approvals from {groups}). Wait for it with `airlock approvals wait {id}` (or GET /v1/approvals/{id}/wait on Airlock's control address), then run the same call again.",
        .approval.rule, suffix(" ", &.approval.message),
        id = .approval.id,
        approvals = .approval.votes.iter().filter(|v| v.approve).count(),
        quorum = .approval.quorum,
        groups = .approval.groups.join(" or "),
    )]
    Pending { approval: Box<Approval> },
    /// The approval was granted, and its one use went to an identical call held with this
    /// one. Said as such: "pending" about a decided approval sends the agent's developer
    /// to wait on an approval that will never let this call through.
    #[error(
        "This call needs approval (rule `{}`).{} Approval {} was granted, but an identical call waiting on it went through first, and one approval lets one call through: this call was not forwarded. Run it again to ask for a new approval.",
        .approval.rule, suffix(" ", &.approval.message), .approval.id
    )]
    Used { approval: Box<Approval> },
    /// Reviewers denied the call.
    #[error("Approval {} for this call was denied by {}.", .approval.id, denials(approval))]
    Rejected { approval: Box<Approval> },
    /// Nobody decided in time.
    #[error(
        "Approval {} for this call expired without a decision; a new call asks again.",
        .approval.id
    )]
    Expired { approval: Box<Approval> },
    #[error("Airlock cannot write its audit log, so it forwards nothing; retry later")]
    AuditUnavailable,
    #[error("Airlock cannot reach its approvals store; retry later")]
    StoreUnavailable,
    /// No short-lived credentials for the agent's cloud identity: `transient` (retry
    /// later) or refused by the cloud (the message names the identity).
    #[error("{message}")]
    Credentials { transient: bool, message: String },
    #[error("cannot reach the upstream for {host}: {detail}")]
    UpstreamConnect { host: String, detail: String },
    #[error("the upstream for {host} sent no response within {}s", .after.as_secs())]
    UpstreamTimeout { host: String, after: Duration },
    #[error("the upstream for {host} failed: {detail}")]
    UpstreamProtocol { host: String, detail: String },
    #[error("reading the request body failed: {0}")]
    BodyRead(String),
    #[error("internal error: {0}")]
    Internal(String),
}

fn suffix(sep: &str, text: &Option<String>) -> String {
    text.as_deref()
        .map(|t| format!("{sep}{t}"))
        .unwrap_or_default()
}

/// Who denied, with their reasons.
fn denials(approval: &Approval) -> String {
    let by: Vec<String> = approval
        .votes
        .iter()
        .filter(|v| !v.approve)
        .map(|v| match &v.reason {
            Some(r) => format!("{}: {r}", v.approver),
            None => v.approver.clone(),
        })
        .collect();
    by.join("; ")
}

/// Where a failure came from: the agent, the upstream, or Airlock itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Client,
    Upstream,
    Internal,
}

/// What the agent's cloud would call a refusal: its HTTP status, its code (AWS) or
/// `ErrorInfo` reason (Google), and the canonical Google status it maps to.
struct Spelled {
    status: StatusCode,
    aws_code: &'static str,
    reason: &'static str,
}

impl Refusal {
    /// The HTTP status the agent sees (Google's clients get 401 for every authentication
    /// failure: they retry 5xx for minutes, and read 401 as "credentials are wrong").
    pub fn status(&self, style: Style) -> StatusCode {
        self.spelled(style).status
    }

    fn spelled(&self, style: Style) -> Spelled {
        let google = !matches!(style, Style::Aws(_));
        let s = |status, aws_code, reason| Spelled {
            status,
            aws_code,
            reason,
        };
        match self {
            Refusal::MissingHost => s(StatusCode::BAD_REQUEST, "MissingHost", "MISSING_HOST"),
            Refusal::DuplicateHost => s(StatusCode::BAD_REQUEST, "DuplicateHost", "DUPLICATE_HOST"),
            Refusal::HostMismatch { .. } => s(
                StatusCode::MISDIRECTED_REQUEST,
                "HostMismatch",
                "HOST_MISMATCH",
            ),
            Refusal::Auth { error, .. } if google => {
                s(StatusCode::UNAUTHORIZED, error.code, error.code)
            }
            Refusal::Auth { error, .. } | Refusal::Invalid(error) => {
                s(error.status, error.code, error.code)
            }
            Refusal::Denied { .. } => s(StatusCode::FORBIDDEN, "AccessDenied", "DENIED_BY_RULE"),
            Refusal::Pending { .. } => s(StatusCode::FORBIDDEN, "AccessDenied", "APPROVAL_PENDING"),
            Refusal::Used { .. } => s(StatusCode::FORBIDDEN, "AccessDenied", "APPROVAL_USED"),
            Refusal::Rejected { .. } => s(StatusCode::FORBIDDEN, "AccessDenied", "APPROVAL_DENIED"),
            Refusal::Expired { .. } => s(StatusCode::FORBIDDEN, "AccessDenied", "APPROVAL_EXPIRED"),
            Refusal::AuditUnavailable => s(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "AUDIT_UNAVAILABLE",
            ),
            Refusal::StoreUnavailable => s(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "STORE_UNAVAILABLE",
            ),
            Refusal::Credentials {
                transient: true, ..
            } => s(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "CREDENTIALS_UNAVAILABLE",
            ),
            Refusal::Credentials { .. } => {
                s(StatusCode::FORBIDDEN, "AccessDenied", "CREDENTIALS_REFUSED")
            }
            Refusal::UpstreamConnect { .. } => s(
                StatusCode::BAD_GATEWAY,
                "UpstreamUnreachable",
                "UPSTREAM_UNREACHABLE",
            ),
            Refusal::UpstreamProtocol { .. } => {
                s(StatusCode::BAD_GATEWAY, "UpstreamFailed", "UPSTREAM_FAILED")
            }
            Refusal::UpstreamTimeout { .. } => s(
                StatusCode::GATEWAY_TIMEOUT,
                "UpstreamTimeout",
                "UPSTREAM_TIMEOUT",
            ),
            Refusal::BodyRead(_) => s(
                StatusCode::BAD_REQUEST,
                "BodyReadFailed",
                "BODY_READ_FAILED",
            ),
            Refusal::Internal(_) => s(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "INTERNAL",
            ),
        }
    }

    pub fn origin(&self) -> Origin {
        match self {
            Refusal::MissingHost
            | Refusal::DuplicateHost
            | Refusal::HostMismatch { .. }
            | Refusal::BodyRead(_)
            | Refusal::Auth { .. }
            | Refusal::Invalid(_)
            | Refusal::Denied { .. }
            | Refusal::Pending { .. }
            | Refusal::Used { .. }
            | Refusal::Rejected { .. }
            | Refusal::Expired { .. } => Origin::Client,
            Refusal::UpstreamConnect { .. }
            | Refusal::UpstreamTimeout { .. }
            | Refusal::UpstreamProtocol { .. } => Origin::Upstream,
            Refusal::AuditUnavailable
            | Refusal::StoreUnavailable
            | Refusal::Credentials { .. }
            | Refusal::Internal(_) => Origin::Internal,
        }
    }

    /// A short stable code, sent as `x-airlock-error`, logged and recorded: the AWS code
    /// (Airlock's own vocabulary predates Google's), whatever the agent's cloud.
    pub fn code(&self) -> &'static str {
        self.spelled(Style::Aws(ErrorShape::RestJson)).aws_code
    }

    /// The approval a refusal is about, if any.
    pub fn approval(&self) -> Option<&Approval> {
        match self {
            Refusal::Pending { approval }
            | Refusal::Used { approval }
            | Refusal::Rejected { approval }
            | Refusal::Expired { approval } => Some(approval),
            _ => None,
        }
    }

    /// The response the agent sees, in its cloud's error shape. Malformed requests close
    /// the connection: after one, nothing that follows on it can be trusted. Every other
    /// refusal answers a well-formed request, so the connection stays usable (an unread
    /// body aside, which hyper then discards or closes for). The approval a refusal is
    /// about travels in `x-airlock-approval-id` (and, for Google, in `ErrorInfo.metadata`).
    pub fn into_response(self, style: Style, request_id: &str) -> Response<ProxyBody> {
        let close = matches!(
            self,
            Refusal::MissingHost
                | Refusal::DuplicateHost
                | Refusal::HostMismatch { .. }
                | Refusal::BodyRead(_)
        );
        let spelled = self.spelled(style);
        let message = self.to_string();
        let approval_id = self.approval().map(|a| a.id.clone());
        let response = match style {
            Style::Aws(shape) => aws_errors::response(
                shape,
                spelled.status,
                spelled.aws_code,
                &message,
                request_id,
            ),
            Style::GoogleRest | Style::Grpc => {
                let mut metadata = vec![("request_id", request_id.to_string())];
                if let Some(id) = &approval_id {
                    metadata.push(("approval_id", id.clone()));
                }
                let error = GoogleError {
                    status: spelled.status,
                    reason: spelled.reason,
                    message: &message,
                    metadata: &metadata,
                };
                if style == Style::Grpc {
                    gcp_errors::grpc_response(&error)
                } else {
                    gcp_errors::rest_response(&error)
                }
            }
        };
        let mut response = response.map(|body| {
            Full::new(body)
                .map_err(|never| match never {})
                .boxed_unsync()
        });
        let headers = response.headers_mut();
        headers.insert("x-airlock-error", HeaderValue::from_static(self.code()));
        if let Some(id) = approval_id.and_then(|id| HeaderValue::from_str(&id).ok()) {
            headers.insert("x-airlock-approval-id", id);
        }
        if close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// A plain-text response; used for the proxy listener's own answers (before any cloud).
pub fn text_response(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
