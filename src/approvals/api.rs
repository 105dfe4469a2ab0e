//! The approvals API on the control listener (JSON; described by `GET /v1/openapi.json`).
//!
//! | request | who | answer |
//! |---|---|---|
//! | `GET /v1/approvals?state=pending` | reviewer | `{"approvals": [..]}`, newest first |
//! | `GET /v1/approvals/{id}` | reviewer | the approval with its full context and votes |
//! | `POST /v1/approvals/{id}/approve` `{"reason"?}` | reviewer | the approval after the vote |
//! | `POST /v1/approvals/{id}/deny` `{"reason"}` | reviewer | the approval, denied |
//! | `GET /v1/approvals/{id}/wait?timeout=30` | anyone holding the id (agents) | `{"id","state"}` once decided, or still pending at the timeout |
//!
//! Reviewers send `Authorization: Bearer <token>`; the config holds only SHA-256 hashes.
//! Every check (groups, no self-approval, quorum, expiry, decided) is the store's, so no
//! channel can skip one.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;

use super::{Approvals, Approver, State, VoteError};

const MAX_BODY: usize = 64 * 1024;
const MAX_WAIT: Duration = Duration::from_secs(60);

pub const OPENAPI: &str = include_str!("openapi.json");

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(format!("{value}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": message }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    reason: Option<String>,
}

/// Handle a request under `/v1/`.
pub async fn handle(approvals: &Approvals, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let segments: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
    let method = request.method().clone();
    if path == "/v1/openapi.json" && method == Method::GET {
        let mut response = Response::new(Full::new(Bytes::from_static(OPENAPI.as_bytes())));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return response;
    }
    if segments.first() != Some(&"approvals") {
        return error(StatusCode::NOT_FOUND, "not found; see /v1/openapi.json");
    }
    // The agents' long poll: the id is the capability (128 random bits).
    if let [_, id, "wait"] = segments.as_slice() {
        if method != Method::GET {
            return error(StatusCode::METHOD_NOT_ALLOWED, "GET");
        }
        let timeout = query
            .split('&')
            .find_map(|p| p.strip_prefix("timeout="))
            .and_then(|t| t.parse::<u64>().ok())
            .map_or(Duration::from_secs(30), Duration::from_secs)
            .min(MAX_WAIT);
        return match approvals.wait(id, timeout).await {
            Ok(Some(a)) => json(
                StatusCode::OK,
                &serde_json::json!({ "id": a.id, "state": a.state, "expires_at": a.expires_at }),
            ),
            Ok(None) => error(StatusCode::NOT_FOUND, "no such approval"),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
    }
    let Some(approver) = reviewer(approvals, &request) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "send `Authorization: Bearer <token>` with an approver token",
        );
    };
    let approver = approver.clone();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["approvals"]) | (&Method::GET, ["approvals", ""]) => {
            let state = query
                .split('&')
                .find_map(|p| p.strip_prefix("state="))
                .map(|s| State::parse_filter(s).ok_or(s));
            let state = match state.transpose() {
                Ok(s) => s,
                Err(s) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("state `{s}`: pending, approved, denied or expired"),
                    );
                }
            };
            match approvals.list(state).await {
                Ok(list) => json(StatusCode::OK, &serde_json::json!({ "approvals": list })),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            }
        }
        (&Method::GET, ["approvals", id]) => match approvals.get(id).await {
            Ok(Some(a)) => json(StatusCode::OK, &serde_json::to_value(a).unwrap_or_default()),
            Ok(None) => error(StatusCode::NOT_FOUND, "no such approval"),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        (&Method::POST, ["approvals", id, verb @ ("approve" | "deny")]) => {
            let id = id.to_string();
            let approve = *verb == "approve";
            let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body over 64 KiB"),
            };
            let reason = if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                match serde_json::from_slice::<VoteBody>(&body) {
                    Ok(v) => v.reason.filter(|r| !r.trim().is_empty()),
                    Err(e) => {
                        return error(StatusCode::BAD_REQUEST, &format!("body: {e}"));
                    }
                }
            };
            if !approve && reason.is_none() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "a denial needs a reason: {\"reason\": \"…\"}",
                );
            }
            vote(approvals, &id, &approver, approve, reason).await
        }
        _ => error(StatusCode::NOT_FOUND, "not found; see /v1/openapi.json"),
    }
}

async fn vote(
    approvals: &Approvals,
    id: &str,
    approver: &Approver,
    approve: bool,
    reason: Option<String>,
) -> Response<Full<Bytes>> {
    match approvals.vote(id, approver, approve, reason, "api").await {
        Ok(a) => json(StatusCode::OK, &serde_json::to_value(a).unwrap_or_default()),
        Err(e) => {
            let status = match &e {
                VoteError::NotFound(_) => StatusCode::NOT_FOUND,
                VoteError::Decided { .. } | VoteError::Expired(_) | VoteError::AlreadyVoted(_) => {
                    StatusCode::CONFLICT
                }
                VoteError::NotInGroup { .. } | VoteError::SelfApproval(_) => StatusCode::FORBIDDEN,
                VoteError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            error(status, &e.to_string())
        }
    }
}

fn reviewer<'a>(approvals: &'a Approvals, request: &Request<Incoming>) -> Option<&'a Approver> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    approvals.approvers().by_token(token)
}
