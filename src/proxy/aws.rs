//! The AWS phases of the pipeline: who signed the request, reading its body as its
//! signature requires, verifying it, and re-signing it with the agent's role session.
//!
//! | phase        | AWS job                                                                   |
//! |--------------|---------------------------------------------------------------------------|
//! | identify     | SigV4 access key → an agent (real `AKIA`/`ASIA` keys refused with a hint)  |
//! | read_body    | bodies signed over their bytes are read whole (≤ `limits.max_buffered_body`); small ones too (rules read them); uploads with a declared hash or aws-chunked stream |
//! | authenticate | recompute the signature with the agent's secret; clock skew; body hash     |
//! | sign         | STS session → new signature; streamed bodies checked (hash) or re-signed (chunks) as they flow |
//!
//! Refusals carry AWS's own codes (`SignatureDoesNotMatch`, …); the pipeline shapes them
//! for the request's protocol so SDKs and the CLI print `An error occurred (Code) …: message`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;
use http_body::Body as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use sha2::{Digest, Sha256};
use tower_http::timeout::TimeoutBody;

use super::pipeline::ConnCtx;
use super::plug::{Answered, BodyFailure, BodyVerdict, CloudPlug, RequestBody, Signed, view};
use super::refusal::{AuthKind, CloudError, Refusal, Style};
use crate::agents::{Agent, Directory, KEY_ID_PREFIX, Secret};
use crate::cloud::aws::ApiHost;
use crate::cloud::aws::body::{BodyError, BoxError, checked_sha256, resigned_chunks};
use crate::cloud::aws::chunked::{Chain, ChunkError, ChunkResigner};
use crate::cloud::aws::errors::ErrorShape;
use crate::cloud::aws::fingerprint::{self, fingerprint};
use crate::cloud::aws::sigv4::{self, Payload, SigningCredentials, VerifyError};
use crate::cloud::{Call, Classification, Fingerprint, RequestView};
use crate::credentials::{Broker, CredentialsError};

/// The AWS phases, with what they need: the agents (keys), the STS broker, body limits.
pub struct Aws {
    pub agents: Arc<Directory>,
    pub broker: Broker,
    pub max_buffered_body: usize,
    pub body_idle_timeout: Duration,
}

impl CloudPlug for Aws {
    type Identity = Identity;
    type Verified = Verified;
    /// Every AWS request runs the phases.
    type Local = std::convert::Infallible;

    fn local(&self, _parts: &Parts, _conn: &ConnCtx) -> Option<Self::Local> {
        None
    }

    async fn answer(
        &self,
        local: Self::Local,
        _parts: &Parts,
        _body: Incoming,
        _conn: &ConnCtx,
    ) -> Answered {
        match local {}
    }

    /// AWS calls are shown as they are (their parameters carry the whole change).
    async fn changes(
        &self,
        _parts: &Parts,
        _conn: &ConnCtx,
        _body: &RequestBody,
        _identity: &Identity,
        _call: &Call,
        _upstream: &super::upstream::Upstream,
    ) -> Vec<String> {
        Vec::new()
    }

    fn style(&self, parts: &Parts, conn: &ConnCtx) -> Style {
        let view = view(parts, &conn.host, &[]);
        Style::Aws(match &conn.aws_host {
            Some(host) => ErrorShape::guess(&view, host),
            None => ErrorShape::guess(&view, &ApiHost::parse(&conn.host)),
        })
    }

    fn style_for(&self, call: &Call, _guessed: Style) -> Style {
        Style::Aws(ErrorShape::for_protocol(call.protocol))
    }

    fn identify(&self, parts: &Parts, conn: &ConnCtx) -> Result<Identity, Refusal> {
        identify(parts, &conn.host, &self.agents)
    }

    fn agent(identity: &Identity) -> &Arc<Agent> {
        &identity.agent
    }

    async fn read_body(
        &self,
        parts: &Parts,
        body: Incoming,
        identity: &Identity,
    ) -> Result<RequestBody, Refusal> {
        read_body(
            parts,
            body,
            identity,
            self.max_buffered_body,
            self.body_idle_timeout,
        )
        .await
    }

    fn classify(&self, view: &RequestView<'_>, conn: &ConnCtx) -> Classification {
        match &conn.aws_host {
            Some(host) => crate::cloud::aws::classify_at(host, view),
            None => crate::cloud::aws::classify(view),
        }
    }

    fn authenticate(
        &self,
        parts: &Parts,
        conn: &ConnCtx,
        body: &RequestBody,
        identity: &Identity,
    ) -> Result<Verified, Refusal> {
        authenticate(parts, &conn.host, body, identity)
    }

    fn fingerprint(
        &self,
        parts: &Parts,
        conn: &ConnCtx,
        body: &RequestBody,
        identity: &Identity,
        verified: &Verified,
        call: Option<&Call>,
    ) -> Fingerprint {
        // An aws-chunked body read whole is bound by its payload (its framing and checksum
        // trailer aside); one that does not decode is not bound by its bytes at all.
        let payload = match (&identity.payload, body.whole()) {
            (PayloadKind::UnsignedChunks, Some(raw)) => Some(
                crate::cloud::aws::chunked::unsigned_payload(raw, INSPECT_BODY_LIMIT as usize),
            ),
            _ => None,
        };
        let body = match &payload {
            Some(decoded) => decoded.as_deref(),
            None => body.whole(),
        };
        fingerprint(&fingerprint::Request {
            agent: &identity.agent.name,
            method: &parts.method,
            host: &conn.host,
            uri: &parts.uri,
            headers: &parts.headers,
            signed_headers: &verified.signed_headers,
            call,
            body,
            declared_sha256: match &identity.payload {
                PayloadKind::Hash(hash) => Some(hash),
                _ => None,
            },
        })
    }

    async fn sign(
        &self,
        parts: &mut Parts,
        conn: &ConnCtx,
        body: RequestBody,
        identity: &Identity,
        verified: &Verified,
    ) -> Result<Signed, Refusal> {
        sign(
            parts,
            &conn.host,
            body,
            identity,
            verified,
            &self.broker,
            self.body_idle_timeout,
        )
        .await
    }
}

/// Bodies up to this size are read whole even when they could stream, so the classifier
/// (and rules) see their parameters: S3 bucket policies, ACLs, DeleteObjects key lists.
pub const INSPECT_BODY_LIMIT: u64 = 1024 * 1024;

/// How the request's payload is covered by its signature (`x-amz-content-sha256`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadKind {
    /// No declared hash: the signature covers the body bytes, so they are read whole.
    Signed,
    /// A declared SHA-256 (hex): verified against the body, whole or as it streams.
    Hash(String),
    /// `UNSIGNED-PAYLOAD` (and S3 presigned URLs): the body is not covered.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`: each chunk carries a signature.
    SignedChunks { trailer: bool },
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked, unsigned chunks, checksum trailer.
    UnsignedChunks,
}

impl PayloadKind {
    /// From the signature alone for a presigned request (S3: unsigned; others: the body
    /// bytes), else from `x-amz-content-sha256`. aws-chunked bodies are S3's only.
    fn of(parts: &Parts, presigned: bool, s3: bool) -> Result<PayloadKind, CloudError> {
        let declared = parts.headers.get("x-amz-content-sha256");
        if presigned {
            if declared.is_some() {
                return Err(CloudError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "a presigned request cannot declare x-amz-content-sha256: its signature does not cover it",
                ));
            }
            return Ok(if s3 {
                PayloadKind::Unsigned
            } else {
                PayloadKind::Signed
            });
        }
        let Some(value) = declared else {
            return Ok(PayloadKind::Signed);
        };
        let value = value.to_str().unwrap_or_default();
        let kind = match value {
            "UNSIGNED-PAYLOAD" => PayloadKind::Unsigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadKind::SignedChunks { trailer: false },
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
                PayloadKind::SignedChunks { trailer: true }
            }
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadKind::UnsignedChunks,
            hash if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
                PayloadKind::Hash(hash.to_ascii_lowercase())
            }
            other if other.starts_with("STREAMING-AWS4-ECDSA") => {
                return Err(CloudError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "SigV4a streaming signatures are not accepted; sign with SigV4 (AWS4-HMAC-SHA256)",
                ));
            }
            other => {
                return Err(CloudError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    format!(
                        "x-amz-content-sha256 `{other}` is neither a SHA-256 nor a known payload mode"
                    ),
                ));
            }
        };
        if !s3
            && matches!(
                kind,
                PayloadKind::SignedChunks { .. } | PayloadKind::UnsignedChunks
            )
        {
            return Err(CloudError::new(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                format!(
                    "x-amz-content-sha256 `{value}`: aws-chunked bodies are accepted for S3 only"
                ),
            ));
        }
        Ok(kind)
    }

    /// The literal the signature's payload line carries, when the body is not hashed whole.
    fn declared(&self) -> Option<&str> {
        Some(match self {
            PayloadKind::Signed => return None,
            PayloadKind::Hash(hash) => hash,
            PayloadKind::Unsigned => "UNSIGNED-PAYLOAD",
            PayloadKind::SignedChunks { trailer: false } => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            PayloadKind::SignedChunks { trailer: true } => {
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
            }
            PayloadKind::UnsignedChunks => "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        })
    }
}

/// Who sent the request, established by [`identify`].
pub struct Identity {
    pub agent: Arc<Agent>,
    secret: Secret,
    pub payload: PayloadKind,
    /// Signed for S3 (or a variant): the only APIs whose uploads stream through unread.
    s3: bool,
    presigned: bool,
}

/// Phase `identify`: the request must be SigV4-signed with an agent's access key. Nothing
/// of the body has been read yet: strangers cost Airlock no buffering.
fn identify(parts: &Parts, host: &str, agents: &Directory) -> Result<Identity, Refusal> {
    let view = view(parts, host, &[]);
    let signature = sigv4::parse(&view).map_err(|e| verify_error(&e))?;
    let key = signature.access_key_id;
    let Some((agent, secret)) = agents.lookup(key) else {
        let cloud_key = key.starts_with("AKIA") || key.starts_with("ASIA");
        let message = if cloud_key {
            format!(
                "The access key id {key} is an AWS key, not an Airlock agent key. Agents hold only \
                 the keys `airlock agents add` issues ({KEY_ID_PREFIX}…); requests signed with \
                 real AWS credentials are never forwarded."
            )
        } else {
            format!(
                "The access key id {key} is not an Airlock agent key (unknown, rotated or removed)."
            )
        };
        return Err(Refusal::Auth {
            kind: if cloud_key {
                AuthKind::CloudCredential
            } else {
                AuthKind::Unknown
            },
            error: CloudError::new(StatusCode::FORBIDDEN, "InvalidClientTokenId", message),
        });
    };
    if agent.role.is_none() {
        return Err(Refusal::Credentials {
            transient: false,
            message: format!(
                "Agent `{}` has no AWS identity (its entry in agents.yaml names no role), so \
                 Airlock forwards none of its AWS calls",
                agent.name
            ),
        });
    }
    let presigned = signature.expires.is_some();
    let s3 = sigv4::is_s3(signature.service);
    let payload = PayloadKind::of(parts, presigned, s3).map_err(Refusal::Invalid)?;
    Ok(Identity {
        agent,
        secret,
        payload,
        s3,
        presigned,
    })
}

/// Phase `read_body`: read the body whole where its signature needs it, or where it is
/// small; leave large uploads streaming.
async fn read_body(
    parts: &Parts,
    body: Incoming,
    identity: &Identity,
    max_buffered: usize,
    idle: Duration,
) -> Result<RequestBody, Refusal> {
    if body.is_end_stream() {
        return Ok(RequestBody::Whole(Bytes::new()));
    }
    let length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Only S3 uploads stream unread: every other API's parameters are in its body, and
    // the call classified (and later judged by rules) must be the call forwarded.
    let payload = &identity.payload;
    let whole = match payload {
        PayloadKind::Signed => true,
        PayloadKind::Hash(_) | PayloadKind::Unsigned => {
            !identity.s3 || length.is_some_and(|n| n <= INSPECT_BODY_LIMIT)
        }
        // Small unsigned aws-chunked uploads (the AWS CLI's default, however small) are
        // read whole so an approval binds their payload; signed chunks must stream through
        // the re-signer.
        PayloadKind::UnsignedChunks => {
            decoded_length(parts).is_some_and(|n| n <= INSPECT_BODY_LIMIT)
        }
        PayloadKind::SignedChunks { .. } => false,
    };
    if !whole {
        return Ok(RequestBody::Streaming(body));
    }
    let too_large = || {
        Refusal::Invalid(CloudError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!(
                "The request body is larger than {max_buffered} bytes, the most Airlock reads to \
                 verify a signature over the body (limits.max_buffered_body)"
            ),
        ))
    };
    let bytes = super::plug::read_whole(body, length, max_buffered, idle, too_large).await?;
    if let PayloadKind::Hash(expected) = payload
        && hex::encode(Sha256::digest(&bytes)) != *expected
    {
        return Err(Refusal::Auth {
            kind: AuthKind::Mismatch,
            error: CloudError::new(
                StatusCode::BAD_REQUEST,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ),
        });
    }
    Ok(RequestBody::Whole(bytes))
}

/// `X-Amz-Decoded-Content-Length`: the payload's length inside an aws-chunked body.
fn decoded_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get("x-amz-decoded-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// What verification established that re-signing needs.
pub struct Verified {
    presigned: bool,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    time: SystemTime,
}

/// Phase `authenticate`: the signature must be the agent's, made within 5 minutes.
fn authenticate(
    parts: &Parts,
    host: &str,
    body: &RequestBody,
    identity: &Identity,
) -> Result<Verified, Refusal> {
    let view = view(parts, host, body.bytes());
    let fail = |e: VerifyError| verify_error(&e);
    let signature = sigv4::parse(&view).map_err(fail)?;
    sigv4::verify(
        &view,
        &signature,
        identity.secret.expose(),
        SystemTime::now(),
    )
    .map_err(fail)?;
    Ok(Verified {
        presigned: identity.presigned,
        region: signature.region.to_string(),
        service: signature.service.to_string(),
        signed_headers: signature
            .signed_headers
            .iter()
            .map(|h| h.to_string())
            .collect(),
        signature: signature.signature.to_string(),
        time: sigv4::parse_amz_date(signature.amz_date).map_err(fail)?,
    })
}

/// Phase `sign`: replace the agent's signature with one made with its role session, and
/// wrap a streaming body so that what reaches the upstream is exactly what was signed
/// (with the verdict slot its check reports a failure in).
async fn sign(
    parts: &mut Parts,
    host: &str,
    body: RequestBody,
    identity: &Identity,
    verified: &Verified,
    broker: &Broker,
    idle: Duration,
) -> Result<Signed, Refusal> {
    let session = broker
        .session(&identity.agent)
        .await
        .map_err(|e| credentials_error(&e, &identity.agent))?;
    let credentials = SigningCredentials {
        access_key_id: &session.access_key_id,
        secret: session.secret.expose(),
        session_token: Some(session.session_token.expose()),
    };
    let payload = match (&body, identity.payload.declared()) {
        (_, Some(declared)) => Payload::Declared(declared),
        (RequestBody::Whole(bytes), None) => Payload::Bytes(bytes),
        // `read_body` reads every body without a declared hash whole.
        (RequestBody::Streaming(_) | RequestBody::Head { .. }, None) => {
            return Err(Refusal::Internal(
                "a body signed over its bytes was not read".into(),
            ));
        }
    };
    // Signed headers that do not travel on (hop-by-hop ones the agent signed, such as
    // curl's `Expect`) are not signed again.
    let signed: Vec<&str> = verified
        .signed_headers
        .iter()
        .map(String::as_str)
        .filter(|h| *h == "host" || parts.headers.contains_key(*h))
        .collect();
    let now = SystemTime::now();
    let signature = sigv4::resign(
        parts,
        verified.presigned,
        host,
        payload,
        &signed,
        &credentials,
        &verified.region,
        &verified.service,
        now,
    )
    .map_err(|e| Refusal::Internal(format!("re-signing failed: {e}")))?;

    let streaming = match body {
        RequestBody::Whole(bytes) => {
            let body = Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync();
            return Ok(Signed {
                body,
                verdict: None,
            });
        }
        RequestBody::Streaming(incoming) => TimeoutBody::new(idle, incoming).boxed_unsync(),
        RequestBody::Head { .. } => {
            return Err(Refusal::Internal(
                "an AWS body was read in part; the AWS phases never do that".into(),
            ));
        }
    };
    let body = match &identity.payload {
        PayloadKind::Hash(hash) => checked_sha256(streaming, hash.clone()).boxed_unsync(),
        PayloadKind::SignedChunks { trailer } => {
            let agent = Chain::new(
                &identity.agent.access_key_id,
                identity.secret.expose(),
                None,
                &verified.region,
                &verified.service,
                verified.time,
                &verified.signature,
            );
            let session = Chain::new(
                credentials.access_key_id,
                credentials.secret,
                credentials.session_token,
                &verified.region,
                &verified.service,
                now,
                &signature,
            );
            resigned_chunks(streaming, ChunkResigner::new(agent, session, *trailer)).boxed_unsync()
        }
        PayloadKind::Signed | PayloadKind::Unsigned | PayloadKind::UnsignedChunks => {
            return Ok(Signed {
                body: streaming,
                verdict: None,
            });
        }
    };
    let verdict = BodyVerdict::default();
    let slot = Arc::clone(&verdict);
    let body = body
        .map_err(move |e: BoxError| {
            if let Some(failure) = e.downcast_ref::<BodyError>() {
                let _ = slot.set(body_error(failure));
            }
            e
        })
        .boxed_unsync();
    Ok(Signed {
        body,
        verdict: Some(verdict),
    })
}

/// A streamed body that failed its check, as the agent is told.
fn body_error(error: &BodyError) -> BodyFailure {
    let (auth, status, code) = match error {
        BodyError::Sha256Mismatch => (
            Some(AuthKind::Mismatch),
            StatusCode::BAD_REQUEST,
            "XAmzContentSHA256Mismatch",
        ),
        BodyError::Chunk(ChunkError::SignatureDoesNotMatch) => (
            Some(AuthKind::Mismatch),
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
        ),
        BodyError::Chunk(_) => (None, StatusCode::BAD_REQUEST, "IncompleteBody"),
        BodyError::Read(_) => (None, StatusCode::BAD_REQUEST, "RequestTimeout"),
    };
    BodyFailure {
        auth,
        error: CloudError::new(
            status,
            code,
            format!("{error}; the upload was cut before it reached AWS complete"),
        ),
    }
}

fn verify_error(error: &VerifyError) -> Refusal {
    let status = match error {
        VerifyError::Malformed(_) | VerifyError::Unsupported(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::FORBIDDEN,
    };
    let message = match error {
        VerifyError::SignatureDoesNotMatch => {
            "The request signature we calculated does not match the signature you provided. \
             Check your Airlock agent secret and signing method."
                .to_string()
        }
        VerifyError::Unsigned => {
            "Airlock forwards only requests signed (SigV4) with an Airlock agent key".to_string()
        }
        other => other.to_string(),
    };
    let kind = match error {
        VerifyError::Unsigned => AuthKind::Missing,
        VerifyError::Malformed(_) => AuthKind::Malformed,
        VerifyError::Unsupported(_) => AuthKind::Unsupported,
        VerifyError::SignatureDoesNotMatch => AuthKind::Mismatch,
        VerifyError::RequestTimeTooSkewed { .. } | VerifyError::Expired(_) => AuthKind::Expired,
    };
    Refusal::Auth {
        kind,
        error: CloudError::new(status, error.code(), message),
    }
}

/// The agent learns which role failed and whether to retry; STS's own words (which name
/// Airlock's identity and account) go to Airlock's log only.
fn credentials_error(error: &CredentialsError, agent: &Agent) -> Refusal {
    let role = agent.role.as_deref().unwrap_or_default();
    tracing::warn!(agent = %agent.name, role, error = %error,
        "no credentials for the agent's role");
    let transient = error.is_transient();
    let message = if transient {
        format!(
            "Airlock cannot obtain credentials for role {} right now; retry later \
             (details in Airlock's log)",
            role
        )
    } else {
        format!(
            "Airlock cannot assume role {} for agent `{}`: STS refused (details in \
             Airlock's log)",
            role, agent.name
        )
    };
    Refusal::Credentials { transient, message }
}
