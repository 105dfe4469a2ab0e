//! Why a request was not answered by the upstream, and the one function that turns that
//! into the response the agent sees.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::ProxyBody;
use crate::cloud::aws::errors::{self, ErrorShape};

/// An error an AWS SDK must read as AWS's own: shaped for the request's protocol.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    pub shape: ErrorShape,
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> AwsError {
        AwsError {
            shape: ErrorShape::RestJson,
            status,
            code,
            message: message.into(),
        }
    }

    pub fn shaped(mut self, shape: ErrorShape) -> AwsError {
        self.shape = shape;
        self
    }
}

/// Where a failure came from: the agent, the upstream, or Airlock itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Client,
    Upstream,
    Internal,
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
    #[error("cannot reach the upstream for {host}: {detail}")]
    UpstreamConnect { host: String, detail: String },
    #[error("the upstream for {host} sent no response within {}s", .after.as_secs())]
    UpstreamTimeout { host: String, after: Duration },
    #[error("the upstream for {host} failed: {detail}")]
    UpstreamProtocol { host: String, detail: String },
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("reading the request body failed: {0}")]
    BodyRead(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::MissingHost | Refusal::DuplicateHost => StatusCode::BAD_REQUEST,
            Refusal::HostMismatch { .. } => StatusCode::MISDIRECTED_REQUEST,
            Refusal::UpstreamConnect { .. } | Refusal::UpstreamProtocol { .. } => {
                StatusCode::BAD_GATEWAY
            }
            Refusal::UpstreamTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Refusal::Aws(e) => e.status,
            Refusal::BodyRead(_) => StatusCode::BAD_REQUEST,
            Refusal::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn origin(&self) -> Origin {
        match self {
            Refusal::MissingHost
            | Refusal::DuplicateHost
            | Refusal::HostMismatch { .. }
            | Refusal::BodyRead(_)
            | Refusal::Unsupported(_) => Origin::Client,
            Refusal::Aws(e) if e.status.is_client_error() => Origin::Client,
            Refusal::Aws(_) => Origin::Internal,
            Refusal::UpstreamConnect { .. }
            | Refusal::UpstreamTimeout { .. }
            | Refusal::UpstreamProtocol { .. } => Origin::Upstream,
            Refusal::Internal(_) => Origin::Internal,
        }
    }

    /// A short stable code, sent as `x-airlock-error` and logged.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::MissingHost => "MissingHost",
            Refusal::DuplicateHost => "DuplicateHost",
            Refusal::HostMismatch { .. } => "HostMismatch",
            Refusal::UpstreamConnect { .. } => "UpstreamUnreachable",
            Refusal::UpstreamTimeout { .. } => "UpstreamTimeout",
            Refusal::UpstreamProtocol { .. } => "UpstreamFailed",
            Refusal::Aws(e) => e.code,
            Refusal::BodyRead(_) => "BodyReadFailed",
            Refusal::Unsupported(_) => "Unsupported",
            Refusal::Internal(_) => "InternalError",
        }
    }

    /// The response the agent sees: AWS-shaped for AWS errors, else plain text. Malformed
    /// requests close the connection: after one, nothing that follows on it can be trusted.
    /// An AWS error answers a well-formed request, so the connection stays usable (an
    /// unread body aside, which hyper then discards or closes for).
    pub fn into_response(self, request_id: &str) -> Response<ProxyBody> {
        let status = self.status();
        let close = self.origin() == Origin::Client && !matches!(self, Refusal::Aws(_));
        let mut response = match &self {
            Refusal::Aws(e) => errors::response(e.shape, e.status, e.code, &e.message, request_id)
                .map(|body| {
                    Full::new(body)
                        .map_err(|never| match never {})
                        .boxed_unsync()
                }),
            _ => text_response(status, format!("airlock: {self}\n")),
        };
        let headers = response.headers_mut();
        headers.insert("x-airlock-error", HeaderValue::from_static(self.code()));
        if close {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// A plain-text response; used for every answer Airlock writes itself.
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
