//! The Google Cloud phases of the pipeline.
//!
//! | phase        | Google                                                                |
//! |--------------|-----------------------------------------------------------------------|
//! | local        | `oauth2.googleapis.com/token`: Airlock grants agents its own access tokens (refresh grant); the credential-minting APIs (iamcredentials, STS) are refused, trust-boundary lookups answered |
//! | identify     | `Authorization: Bearer <Airlock token>` → the agent, checked in constant time ([`crate::agents::google`]); Google's own tokens, JWTs, API keys and strangers get 401 |
//! | read_body    | JSON bodies whole (≤ `limits.max_buffered_body`); a gRPC stream's first message; a large multipart upload's metadata; other uploads stream |
//! | classify     | [`crate::cloud::gcp::classify`]                                       |
//! | authenticate | done by `identify` (the token is Airlock's MAC over the agent's key)  |
//! | fingerprint  | [`crate::cloud::gcp::fingerprint`]                                    |
//! | sign         | the bearer token replaced by the agent's service-account token ([`GoogleBroker`]) |

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tower_http::timeout::TimeoutBody;

use super::ProxyBody;
use super::pipeline::ConnCtx;
use super::plug::{Answered, CloudPlug, RequestBody, Signed};
use super::refusal::{AuthKind, CloudError, Refusal, Style};
use super::upstream::Upstream;
use crate::agents::google::{Foreign, TokenError, TokenKind};
use crate::agents::{Agent, Directory};
use crate::cloud::gcp::fingerprint;
use crate::cloud::{Call, Classification, Fingerprint, RequestView};
use crate::credentials::GoogleBroker;

/// Bodies of uploads up to this size are read whole, so rules and approvals see them.
pub const INSPECT_BODY_LIMIT: u64 = 1024 * 1024;
/// Of a larger multipart upload, this much is read first: its JSON metadata part.
const UPLOAD_HEAD: usize = 64 * 1024;
/// gRPC's default largest message, plus the 5-byte frame header.
const MAX_GRPC_HEAD: usize = 4 * 1024 * 1024 + 5;
/// A token request is a small form.
const MAX_TOKEN_REQUEST: usize = 64 * 1024;
/// An IAM policy is at most 64 KiB; more is not a policy.
const MAX_POLICY: usize = 1024 * 1024;

/// The Google phases, with what they need.
pub struct Gcp {
    pub agents: Arc<Directory>,
    /// Mints the agents' service-account tokens for `sign`.
    pub broker: GoogleBroker,
    /// How long the access tokens Airlock's token endpoint grants live.
    pub token_lifetime: Duration,
    pub max_buffered_body: usize,
    pub body_idle_timeout: Duration,
}

/// An agent identified by an Airlock token.
pub struct Identity {
    agent: Arc<Agent>,
}

/// Requests Airlock answers itself on Google hosts.
pub enum Local {
    /// The OAuth 2.0 token endpoint: Airlock's own grants to its agents.
    Token,
    /// google-auth's trust-boundary lookup (`…/serviceAccounts/{sa}/allowedLocations`).
    AllowedLocations,
    /// An API that mints Google credentials (iamcredentials, STS): never through Airlock.
    Minting(&'static str),
    /// Anything else on the OAuth host.
    NotFound,
}

impl CloudPlug for Gcp {
    type Identity = Identity;
    type Verified = ();
    type Local = Local;

    fn local(&self, parts: &Parts, conn: &ConnCtx) -> Option<Local> {
        let path = parts.uri.path();
        match conn.host.as_str() {
            "oauth2.googleapis.com" if path == "/token" => Some(Local::Token),
            "oauth2.googleapis.com" => Some(Local::NotFound),
            "www.googleapis.com" if matches!(path, "/oauth2/v4/token" | "/oauth2/v3/token") => {
                Some(Local::Token)
            }
            "iamcredentials.googleapis.com" if path.ends_with("/allowedLocations") => {
                Some(Local::AllowedLocations)
            }
            "iamcredentials.googleapis.com" => {
                Some(Local::Minting("IAM Service Account Credentials"))
            }
            "sts.googleapis.com" => Some(Local::Minting("Security Token Service")),
            _ => None,
        }
    }

    async fn answer(
        &self,
        local: Local,
        parts: &Parts,
        body: Incoming,
        conn: &ConnCtx,
    ) -> Answered {
        match local {
            Local::Token => self.grant(parts, body).await,
            Local::NotFound => Answered {
                agent: None,
                operation: "oauth2.unknown",
                result: Err(Refusal::Invalid(CloudError::new(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!(
                        "Airlock answers only the token endpoint ({} /token) on {}",
                        Method::POST,
                        conn.host
                    ),
                ))),
            },
            Local::AllowedLocations => {
                let identity = self.identify(parts, conn);
                Answered {
                    agent: identity.as_ref().ok().map(|i| Arc::clone(&i.agent)),
                    operation: "iamcredentials.allowedLocations",
                    result: identity.map(|_| {
                        json_response(
                            StatusCode::OK,
                            &serde_json::json!({"locations": [], "encodedLocations": "0x0"}),
                        )
                    }),
                }
            }
            Local::Minting(api) => {
                let identity = self.identify(parts, conn);
                Answered {
                    agent: identity.as_ref().ok().map(|i| Arc::clone(&i.agent)),
                    operation: "credentials.mint",
                    result: identity.and_then(|i| {
                        Err(Refusal::Invalid(CloudError::new(
                            StatusCode::FORBIDDEN,
                            "PERMISSION_DENIED",
                            format!(
                                "Agent `{}` may not mint Google credentials through Airlock ({api}, {}): \
                                 agents call Google APIs with their Airlock token, and Airlock \
                                 signs each allowed call with the agent's service account.",
                                i.agent.name, conn.host
                            ),
                        )))
                    }),
                }
            }
        }
    }

    fn style(&self, parts: &Parts, _conn: &ConnCtx) -> Style {
        if crate::cloud::gcp::is_grpc(&parts.headers) {
            Style::Grpc
        } else {
            Style::GoogleRest
        }
    }

    fn style_for(&self, _call: &Call, guessed: Style) -> Style {
        guessed
    }

    fn identify(&self, parts: &Parts, _conn: &ConnCtx) -> Result<Identity, Refusal> {
        let token = bearer(parts)?;
        let (agent, kind) = self
            .agents
            .google_token(token, unix_now())
            .map_err(token_refusal)?;
        if kind == TokenKind::Refresh {
            return Err(unauthenticated(
                AuthKind::Unsupported,
                "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                "The bearer token is an Airlock refresh token: exchange it at \
                 https://oauth2.googleapis.com/token (Google's libraries do so from \
                 GOOGLE_APPLICATION_CREDENTIALS) and send the access token.",
            ));
        }
        if agent.gcp_service_account.is_none() {
            return Err(Refusal::Credentials {
                transient: false,
                message: format!(
                    "Agent `{}` has no Google identity (its entry in agents.yaml names no \
                     gcp_service_account), so Airlock forwards none of its Google calls",
                    agent.name
                ),
            });
        }
        Ok(Identity { agent })
    }

    fn agent(identity: &Identity) -> &Arc<Agent> {
        &identity.agent
    }

    async fn read_body(
        &self,
        parts: &Parts,
        body: Incoming,
        _identity: &Identity,
    ) -> Result<RequestBody, Refusal> {
        use hyper::body::Body;
        if body.is_end_stream() {
            return Ok(RequestBody::Whole(Bytes::new()));
        }
        let idle = self.body_idle_timeout;
        if crate::cloud::gcp::is_grpc(&parts.headers) {
            // The first message names the call; a stream's later ones flow as they come.
            return read_head(body, idle, MAX_GRPC_HEAD, grpc_head_complete).await;
        }
        let length = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if is_upload(parts) && length.is_none_or(|n| n > INSPECT_BODY_LIMIT) {
            let multipart = parts
                .headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.trim_start()
                        .to_ascii_lowercase()
                        .starts_with("multipart/")
                });
            return if multipart {
                read_head(body, idle, UPLOAD_HEAD, |head| head.len() >= UPLOAD_HEAD).await
            } else {
                Ok(RequestBody::Streaming(body))
            };
        }
        read_whole(body, length, self.max_buffered_body, idle).await
    }

    fn classify(&self, view: &RequestView<'_>, conn: &ConnCtx) -> Classification {
        // Requests name the connection's host (the `parse` phase made sure of it).
        crate::cloud::gcp::classify_at(conn.gcp_endpoint.as_ref(), view)
    }

    /// The token was proven at `identify`: it is Airlock's MAC over the agent's key id.
    fn authenticate(
        &self,
        _parts: &Parts,
        _conn: &ConnCtx,
        _body: &RequestBody,
        _identity: &Identity,
    ) -> Result<(), Refusal> {
        Ok(())
    }

    fn fingerprint(
        &self,
        parts: &Parts,
        conn: &ConnCtx,
        body: &RequestBody,
        identity: &Identity,
        _verified: &(),
        call: Option<&Call>,
    ) -> Fingerprint {
        fingerprint::fingerprint(&fingerprint::Request {
            agent: &identity.agent.name,
            method: &parts.method,
            host: &conn.host,
            uri: &parts.uri,
            headers: &parts.headers,
            call,
            body: body.whole(),
        })
    }

    /// A `setIamPolicy` replaces the whole policy: reviewers are shown the bindings it adds
    /// and removes against the current policy, read with the agent's own token (2 s budget).
    async fn changes(
        &self,
        parts: &Parts,
        conn: &ConnCtx,
        body: &RequestBody,
        identity: &Identity,
        call: &Call,
        upstream: &Upstream,
    ) -> Vec<String> {
        if !call.operation.ends_with(".setIamPolicy") {
            return Vec::new();
        }
        let Some(new) = body
            .whole()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
        else {
            return Vec::new();
        };
        let new = new.get("policy").cloned().unwrap_or(new);
        let current = tokio::time::timeout(
            CHANGES_BUDGET,
            self.current_policy(parts, conn, identity, upstream),
        )
        .await
        .unwrap_or_else(|_| Err("no answer within 2 s".into()));
        match current {
            Ok(current) => binding_changes(&current, &new),
            Err(why) => vec![format!(
                "could not look up the current policy ({why}): the parameters show the whole new policy"
            )],
        }
    }

    async fn sign(
        &self,
        parts: &mut Parts,
        _conn: &ConnCtx,
        body: RequestBody,
        identity: &Identity,
        _verified: &(),
    ) -> Result<Signed, Refusal> {
        let token = self
            .broker
            .token(&identity.agent)
            .await
            .map_err(|e| Refusal::Credentials {
                transient: e.is_transient(),
                message: e.to_string(),
            })?;
        let value = HeaderValue::try_from(format!("Bearer {}", token.access_token.expose()))
            .map_err(|_| Refusal::Internal("the minted token is not a header value".into()))?;
        parts.headers.insert(AUTHORIZATION, value);
        // Airlock's own request headers are for Airlock.
        let airlock: Vec<_> = parts
            .headers
            .keys()
            .filter(|k| k.as_str().starts_with("x-airlock-"))
            .cloned()
            .collect();
        for name in airlock {
            parts.headers.remove(name);
        }
        // gRPC streams (StreamingPull) may be quiet for minutes; uploads may not.
        let grpc = crate::cloud::gcp::is_grpc(&parts.headers);
        let idle = self.body_idle_timeout;
        let body = match body {
            RequestBody::Whole(bytes) => Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync(),
            RequestBody::Streaming(rest) if grpc => rest.map_err(Into::into).boxed_unsync(),
            RequestBody::Streaming(rest) => TimeoutBody::new(idle, rest)
                .map_err(Into::into)
                .boxed_unsync(),
            RequestBody::Head { head, rest } if grpc => Prefixed::new(head, rest).boxed_unsync(),
            RequestBody::Head { head, rest } => TimeoutBody::new(idle, Prefixed::new(head, rest))
                .map_err(Into::into)
                .boxed_unsync(),
        };
        Ok(Signed {
            body,
            verdict: None,
        })
    }
}

/// How long reviewers' context may hold up a call that is about to wait for them anyway.
const CHANGES_BUDGET: Duration = Duration::from_secs(2);

/// `+ role member` / `- role member` lines: the bindings `new` adds to and removes from
/// `current` (conditions shown beside the role).
fn binding_changes(current: &serde_json::Value, new: &serde_json::Value) -> Vec<String> {
    fn pairs(policy: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
        let mut pairs = std::collections::BTreeSet::new();
        for binding in policy["bindings"].as_array().into_iter().flatten() {
            let mut role = binding["role"].as_str().unwrap_or("?").to_string();
            if let Some(title) = binding["condition"]["title"].as_str() {
                role.push_str(&format!(" (if {title})"));
            }
            for member in binding["members"].as_array().into_iter().flatten() {
                pairs.insert((role.clone(), member.as_str().unwrap_or("?").to_string()));
            }
        }
        pairs
    }
    let (before, after) = (pairs(current), pairs(new));
    let added = after
        .difference(&before)
        .map(|(role, member)| format!("+ {role} {member}"));
    let removed = before
        .difference(&after)
        .map(|(role, member)| format!("- {role} {member}"));
    let lines: Vec<String> = added.chain(removed).collect();
    if lines.is_empty() {
        vec!["no binding added or removed".into()]
    } else {
        lines
    }
}

impl Gcp {
    /// The policy a `setIamPolicy` would replace: `:getIamPolicy` on the same resource (or a
    /// GET of Cloud Storage's `…/iam`), sent as the agent's service account.
    async fn current_policy(
        &self,
        parts: &Parts,
        conn: &ConnCtx,
        identity: &Identity,
        upstream: &Upstream,
    ) -> Result<serde_json::Value, String> {
        let token = self
            .broker
            .token(&identity.agent)
            .await
            .map_err(|e| e.to_string())?;
        let path = parts.uri.path();
        let (method, path, body) = match path.strip_suffix(":setIamPolicy") {
            Some(resource) => (
                Method::POST,
                format!("{resource}:getIamPolicy"),
                Bytes::from_static(br#"{"options":{"requestedPolicyVersion":3}}"#),
            ),
            None => (
                Method::GET,
                format!("{path}?optionsRequestedPolicyVersion=3"),
                Bytes::new(),
            ),
        };
        let uri = http::Uri::builder()
            .scheme(conn.scheme.clone())
            .authority(conn.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| e.to_string())?;
        let request = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, conn.host_header.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(
                AUTHORIZATION,
                format!("Bearer {}", token.access_token.expose()),
            )
            .body(
                Full::new(body)
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .map_err(|e| e.to_string())?;
        let response = upstream.send(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_POLICY)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("{} answered {status}", conn.host));
        }
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }

    /// The token endpoint: a refresh grant with an agent's Airlock refresh token gets an
    /// Airlock access token; everything else gets OAuth's own error shape (RFC 6749 §5.2).
    async fn grant(&self, parts: &Parts, body: Incoming) -> Answered {
        let operation = "oauth2.token";
        let oauth_error = |status: StatusCode, error: &str, description: &str| {
            json_response(
                status,
                &serde_json::json!({"error": error, "error_description": description}),
            )
        };
        if parts.method != Method::POST {
            return Answered {
                agent: None,
                operation,
                result: Ok(oauth_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "invalid_request",
                    "The token endpoint takes POST",
                )),
            };
        }
        let too_large = || Refusal::BodyRead("a token request over 64 KiB".into());
        let read = super::plug::read_whole(
            body,
            None,
            MAX_TOKEN_REQUEST,
            self.body_idle_timeout,
            too_large,
        );
        let form = match read.await {
            Ok(form) => form,
            Err(refusal) => {
                return Answered {
                    agent: None,
                    operation,
                    result: Err(refusal),
                };
            }
        };
        let mut grant_type = None;
        let mut refresh_token = None;
        for (key, value) in form_urlencoded::parse(&form) {
            match key.as_ref() {
                "grant_type" => grant_type = Some(value.into_owned()),
                "refresh_token" => refresh_token = Some(value.into_owned()),
                _ => {}
            }
        }
        let refused = |agent, error, description: &str| Answered {
            agent,
            operation,
            result: Ok(oauth_error(StatusCode::BAD_REQUEST, error, description)),
        };
        match grant_type.as_deref() {
            Some("refresh_token") => {}
            Some(other) => {
                return refused(
                    None,
                    "unsupported_grant_type",
                    &format!(
                        "Airlock's token endpoint grants only refresh_token with an Airlock \
                         agent's refresh token, not {other}: agents hold no Google credentials"
                    ),
                );
            }
            None => return refused(None, "invalid_request", "Missing grant_type"),
        }
        let Some(refresh_token) = refresh_token else {
            return refused(None, "invalid_request", "Missing refresh_token");
        };
        let now = unix_now();
        let agent = match self.agents.google_token(&refresh_token, now) {
            Ok((agent, TokenKind::Refresh)) => agent,
            Ok((agent, _)) => {
                return refused(
                    Some(agent),
                    "invalid_grant",
                    "Not a refresh token: send the refresh_token from the agent's \
                     google-credentials.json (access and static tokens cannot be refreshed)",
                );
            }
            Err(_) => {
                return refused(
                    None,
                    "invalid_grant",
                    "Token has been expired or revoked (not a refresh token Airlock issued to \
                     a current agent).",
                );
            }
        };
        if agent.gcp_service_account.is_none() {
            return refused(
                Some(agent),
                "invalid_grant",
                "The agent has no Google identity (no gcp_service_account in agents.yaml)",
            );
        }
        let lifetime = self.token_lifetime.as_secs().max(1);
        let access = self.agents.issue_google(
            &agent,
            TokenKind::Access {
                expires: now + lifetime,
            },
        );
        let response = json_response(
            StatusCode::OK,
            &serde_json::json!({
                "access_token": access.expose(),
                "expires_in": lifetime,
                "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/cloud-platform",
            }),
        );
        Answered {
            agent: Some(agent),
            operation,
            result: Ok(response),
        }
    }
}

/// The bearer token of a request; API keys and tokens in the URL are refused (an API key
/// is a real Google credential, and a token in the URL would be forwarded with it).
fn bearer(parts: &Parts) -> Result<&str, Refusal> {
    let in_query = parts.uri.query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes())
            .any(|(k, _)| matches!(k.as_ref(), "access_token" | "oauth_token" | "key"))
    });
    if in_query || parts.headers.contains_key("x-goog-api-key") {
        return Err(unauthenticated(
            AuthKind::Unsupported,
            "CREDENTIALS_IN_URL_OR_API_KEY",
            "Send the agent's Airlock token as `Authorization: Bearer …`: Airlock accepts no \
             token in the URL and no Google API key (x-goog-api-key, ?key=), which are real \
             Google credentials agents must not hold.",
        ));
    }
    let Some(value) = parts.headers.get(AUTHORIZATION) else {
        return Err(unauthenticated(
            AuthKind::Missing,
            "CREDENTIALS_MISSING",
            "Request is missing required authentication credential. Expected an Airlock \
             agent token as `Authorization: Bearer …` (see `airlock agents add`).",
        ));
    };
    let value = value.to_str().unwrap_or("");
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(unauthenticated(
            AuthKind::Unsupported,
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "Only `Authorization: Bearer <Airlock agent token>` is accepted.",
        )),
    }
}

fn token_refusal(error: TokenError) -> Refusal {
    let (kind, reason, message) = match error {
        TokenError::Foreign(Foreign::GoogleAccessToken) => (
            AuthKind::CloudCredential,
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "The bearer token is a Google access token, not an Airlock agent token. Agents \
             hold only the credentials `airlock agents add` issues; requests carrying real \
             Google credentials are never forwarded.",
        ),
        TokenError::Foreign(Foreign::Jwt) => (
            AuthKind::CloudCredential,
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "The bearer token is a JWT (Google-signed, or a service account's self-signed \
             one), not an Airlock agent token. Agents hold only the credentials `airlock \
             agents add` issues; real Google credentials are never forwarded.",
        ),
        TokenError::Foreign(Foreign::Other) => (
            AuthKind::Malformed,
            "ACCESS_TOKEN_INVALID",
            "The bearer token is not an Airlock agent token.",
        ),
        TokenError::UnknownKey => (
            AuthKind::Unknown,
            "ACCESS_TOKEN_REVOKED",
            "The bearer token was issued to an agent that has since been rotated or removed.",
        ),
        TokenError::Forged => (
            AuthKind::Mismatch,
            "ACCESS_TOKEN_INVALID",
            "The bearer token does not verify: it was not issued by this Airlock.",
        ),
        TokenError::Expired => (
            AuthKind::Expired,
            "ACCESS_TOKEN_EXPIRED",
            "The Airlock access token has expired: refresh it at \
             https://oauth2.googleapis.com/token.",
        ),
    };
    unauthenticated(kind, reason, message)
}

fn unauthenticated(kind: AuthKind, reason: &'static str, message: &str) -> Refusal {
    Refusal::Auth {
        kind,
        error: CloudError::new(StatusCode::UNAUTHORIZED, reason, message),
    }
}

/// An upload's bytes: a media or multipart upload, or a resumable upload's chunk.
fn is_upload(parts: &Parts) -> bool {
    let path = parts.uri.path();
    path.starts_with("/upload/")
        || path.starts_with("/resumable/upload/")
        || parts
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("upload_id=")))
}

/// Whether `head` holds a whole gRPC message (5-byte header, then its length).
fn grpc_head_complete(head: &[u8]) -> bool {
    head.len() >= 5
        && head.len() >= 5 + u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize
}

/// Read until `enough` says so (or `max` bytes, or the end); the rest streams on.
async fn read_head(
    mut body: Incoming,
    idle: Duration,
    max: usize,
    enough: impl Fn(&[u8]) -> bool,
) -> Result<RequestBody, Refusal> {
    use hyper::body::Body;
    let mut head = BytesMut::new();
    while !enough(&head) {
        if head.len() > max {
            return Err(Refusal::Invalid(CloudError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RESOURCE_EXHAUSTED",
                format!("The first message is larger than {max} bytes, the most Airlock reads"),
            )));
        }
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(Refusal::BodyRead("the body went idle".into())),
            Ok(None) => return Ok(RequestBody::Whole(head.freeze())),
            Ok(Some(Err(e))) => return Err(Refusal::BodyRead(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            head.extend_from_slice(&data);
        }
    }
    if body.is_end_stream() {
        return Ok(RequestBody::Whole(head.freeze()));
    }
    Ok(RequestBody::Head {
        head: head.freeze(),
        rest: body,
    })
}

async fn read_whole(
    body: Incoming,
    length: Option<u64>,
    max: usize,
    idle: Duration,
) -> Result<RequestBody, Refusal> {
    let too_large = || {
        Refusal::Invalid(CloudError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQUEST_TOO_LARGE",
            format!(
                "The request body is larger than {max} bytes, the most Airlock reads to \
                 inspect a call (limits.max_buffered_body)"
            ),
        ))
    };
    super::plug::read_whole(body, length, max, idle, too_large)
        .await
        .map(RequestBody::Whole)
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    response
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A body whose first bytes were read already, then the rest as it streams (trailers too).
struct Prefixed {
    head: Option<Bytes>,
    rest: Incoming,
}

impl Prefixed {
    fn new(head: Bytes, rest: Incoming) -> Prefixed {
        Prefixed {
            head: (!head.is_empty()).then_some(head),
            rest,
        }
    }
}

impl hyper::body::Body for Prefixed {
    type Data = Bytes;
    type Error = super::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if let Some(head) = self.head.take() {
            return std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(head))));
        }
        std::pin::Pin::new(&mut self.rest)
            .poll_frame(cx)
            .map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        let mut hint = self.rest.size_hint();
        let extra = self.head.as_ref().map_or(0, |h| h.len() as u64);
        hint.set_lower(hint.lower() + extra);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + extra);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_iam_policy_changes_are_the_bindings_added_and_removed() {
        let current = serde_json::json!({"bindings": [
            {"role": "roles/viewer", "members": ["user:a@example.com", "user:b@example.com"]},
            {"role": "roles/owner", "members": ["user:root@example.com"]},
        ], "etag": "x"});
        let new = serde_json::json!({"bindings": [
            {"role": "roles/viewer", "members": ["user:a@example.com"]},
            {"role": "roles/owner", "members": ["user:root@example.com", "allUsers"]},
            {"role": "roles/editor", "members": ["serviceAccount:x@p.iam.gserviceaccount.com"],
             "condition": {"title": "expires", "expression": "request.time < timestamp('2027-01-01T00:00:00Z')"}},
        ]});
        assert_eq!(
            binding_changes(&current, &new),
            [
                "+ roles/editor (if expires) serviceAccount:x@p.iam.gserviceaccount.com",
                "+ roles/owner allUsers",
                "- roles/viewer user:b@example.com",
            ]
        );
        assert_eq!(
            binding_changes(&current, &current),
            ["no binding added or removed"]
        );
    }

    #[test]
    fn grpc_heads_are_complete_only_with_their_whole_first_message() {
        assert!(!grpc_head_complete(&[0, 0, 0, 0]));
        assert!(grpc_head_complete(&[0, 0, 0, 0, 0]));
        assert!(!grpc_head_complete(&[0, 0, 0, 0, 3, 1, 2]));
        assert!(grpc_head_complete(&[0, 0, 0, 0, 3, 1, 2, 3, 9]));
    }
}
