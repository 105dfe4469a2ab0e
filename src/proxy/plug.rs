//! The one interface between the pipeline and a cloud. Each cloud (`proxy::aws`,
//! `proxy::gcp`) supplies its phases; [`super::pipeline`] calls them in order, for the
//! cloud the connection was opened for, and stays the one place that decides, audits,
//! holds, forwards, logs and counts. No phase asks which cloud it runs for.
//!
//! | phase        | the cloud's job                                                      |
//! |--------------|----------------------------------------------------------------------|
//! | local        | requests the cloud answers itself, never forwarded (Google's token endpoint) |
//! | style        | how the agent's client reads errors, from the request head           |
//! | identify     | the agent behind the request's credential (nothing of the body read) |
//! | read_body    | read whole what must be verified or inspected; large uploads stream  |
//! | classify     | what the call does (`cloud::<cloud>::classify`)                      |
//! | authenticate | the credential proven to be the agent's                              |
//! | fingerprint  | what an approval binds to                                            |
//! | changes      | what a held call would change, looked up read-only for reviewers     |
//! | sign         | the agent's credential replaced by its short-lived cloud credential  |

use std::future::Future;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::request::Parts;
use hyper::body::Incoming;

use super::ProxyBody;
use super::pipeline::ConnCtx;
use super::refusal::{AuthKind, CloudError, Refusal, Style};
use crate::agents::Agent;
use crate::cloud::{Call, Classification, Fingerprint, RequestView};

/// A request body as far as the pipeline has read it.
pub enum RequestBody {
    /// Read whole (and, where a hash was declared, already checked).
    Whole(Bytes),
    /// Still streaming from the agent.
    Streaming(Incoming),
    /// Its first bytes read (what the classifier needs: a gRPC stream's first message, a
    /// multipart upload's metadata), the rest still streaming.
    Head { head: Bytes, rest: Incoming },
}

impl RequestBody {
    /// The bytes the classifier and verification see (none for a streaming body).
    pub fn bytes(&self) -> &[u8] {
        match self {
            RequestBody::Whole(bytes) | RequestBody::Head { head: bytes, .. } => bytes,
            RequestBody::Streaming(_) => &[],
        }
    }

    /// The body, if it was read whole.
    pub fn whole(&self) -> Option<&[u8]> {
        match self {
            RequestBody::Whole(bytes) => Some(bytes),
            RequestBody::Streaming(_) | RequestBody::Head { .. } => None,
        }
    }
}

/// Why a streamed body was cut: set by the body as it fails its check (a hash, a chunk
/// signature), read by the pipeline when forwarding fails.
pub type BodyVerdict = Arc<OnceLock<BodyFailure>>;

/// A streamed body that failed its check, as the agent is told.
#[derive(Debug, Clone)]
pub struct BodyFailure {
    /// Set when the failure proves the agent's credential wrong (a chunk signature).
    pub auth: Option<AuthKind>,
    pub error: CloudError,
}

impl From<BodyFailure> for Refusal {
    fn from(failure: BodyFailure) -> Refusal {
        match failure.auth {
            Some(kind) => Refusal::Auth {
                kind,
                error: failure.error,
            },
            None => Refusal::Invalid(failure.error),
        }
    }
}

/// What `sign` hands to `forward`: the body as it must travel, and where a streamed
/// body's check reports a failure.
pub struct Signed {
    pub body: ProxyBody,
    pub verdict: Option<BodyVerdict>,
}

/// A request Airlock answered itself: who asked (when known), what it was, the answer.
pub struct Answered {
    pub agent: Option<Arc<Agent>>,
    /// Logged and audited as the call's operation (service `airlock`).
    pub operation: &'static str,
    pub result: Result<http::Response<ProxyBody>, Refusal>,
}

/// A cloud's phases. `Identity` and `Verified` are what the cloud's own phases need to
/// carry between them (the agent's secret, the signature's scope); the pipeline only reads
/// the agent.
pub trait CloudPlug: Send + Sync {
    type Identity: Send + Sync;
    type Verified: Send + Sync;
    /// Requests the cloud's plug answers itself, never forwarded (Google's OAuth token
    /// endpoint, the credential-minting APIs).
    type Local: Send;

    /// Whether Airlock answers this request itself instead of running the phases.
    fn local(&self, parts: &Parts, conn: &ConnCtx) -> Option<Self::Local>;

    /// Answer a request `local` picked; the pipeline records the outcome like any other.
    fn answer(
        &self,
        local: Self::Local,
        parts: &Parts,
        body: Incoming,
        conn: &ConnCtx,
    ) -> impl Future<Output = Answered> + Send;

    /// How errors must be shaped, from the request head alone.
    fn style(&self, parts: &Parts, conn: &ConnCtx) -> Style;

    /// The error shape once the call is known (its protocol may say more than the head).
    fn style_for(&self, call: &Call, guessed: Style) -> Style;

    /// Phase `identify`: the agent behind the credential. Strangers cost no body reading.
    fn identify(&self, parts: &Parts, conn: &ConnCtx) -> Result<Self::Identity, Refusal>;

    fn agent(identity: &Self::Identity) -> &Arc<Agent>;

    /// Phase `read_body`.
    fn read_body(
        &self,
        parts: &Parts,
        body: Incoming,
        identity: &Self::Identity,
    ) -> impl Future<Output = Result<RequestBody, Refusal>> + Send;

    /// Phase `classify` (pure), with what the connection's host says (parsed once).
    fn classify(&self, view: &RequestView<'_>, conn: &ConnCtx) -> Classification;

    /// Phase `authenticate`.
    fn authenticate(
        &self,
        parts: &Parts,
        conn: &ConnCtx,
        body: &RequestBody,
        identity: &Self::Identity,
    ) -> Result<Self::Verified, Refusal>;

    /// What an approval of this exact request binds to.
    fn fingerprint(
        &self,
        parts: &Parts,
        conn: &ConnCtx,
        body: &RequestBody,
        identity: &Self::Identity,
        verified: &Self::Verified,
        call: Option<&Call>,
    ) -> Fingerprint;

    /// For a call that waits for reviewers: what it would change, looked up read-only with
    /// the agent's own credentials (a `setIamPolicy`'s bindings added and removed), one
    /// line each; never fails the call (a failed lookup is a line saying so).
    fn changes(
        &self,
        parts: &Parts,
        conn: &ConnCtx,
        body: &RequestBody,
        identity: &Self::Identity,
        call: &Call,
        upstream: &super::upstream::Upstream,
    ) -> impl Future<Output = Vec<String>> + Send;

    /// Phase `sign`: the agent's credential out, the agent's short-lived cloud credential in.
    fn sign(
        &self,
        parts: &mut Parts,
        conn: &ConnCtx,
        body: RequestBody,
        identity: &Self::Identity,
        verified: &Self::Verified,
    ) -> impl Future<Output = Result<Signed, Refusal>> + Send;
}

/// Read a body whole, at most `max` bytes (also when `length` announces more): past that,
/// the refusal `too_large` makes. A body announced too large is drained in the background
/// (at most `max` bytes), so the refusal reaches a client still sending: dropped unread,
/// the connection would be torn down under the response (curl: "empty reply").
pub async fn read_whole(
    body: Incoming,
    length: Option<u64>,
    max: usize,
    idle: std::time::Duration,
    too_large: impl Fn() -> Refusal,
) -> Result<Bytes, Refusal> {
    use http_body_util::{BodyExt, Limited};
    use tower_http::timeout::TimeoutBody;
    if length.is_some_and(|n| n > max as u64) {
        tokio::spawn(async move {
            let _ = Limited::new(TimeoutBody::new(idle, body), max)
                .collect()
                .await;
        });
        return Err(too_large());
    }
    Limited::new(TimeoutBody::new(idle, body), max)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                Refusal::BodyRead(e.to_string())
            }
        })
}

/// The view of a request the classifier and the verifier read.
pub fn view<'a>(parts: &'a Parts, host: &'a str, body: &'a [u8]) -> RequestView<'a> {
    RequestView {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        host,
        body,
    }
}
