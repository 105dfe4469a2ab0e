//! The Google Cloud phases of the pipeline.
//!
//! Airlock does not issue Google agent credentials yet, so no Google request gets past
//! `identify`: every one is refused there with `401 UNAUTHENTICATED` in Google's own shape
//! (REST JSON, or gRPC status 16), and nothing is forwarded. [`Identity`] has no values,
//! so the compiler proves the later phases unreachable; they gain bodies when agents get
//! Google identities (bearer tokens Airlock issues, re-signed with the agent's service
//! account token).

use std::sync::Arc;

use http::StatusCode;
use http::request::Parts;
use hyper::body::Incoming;

use super::pipeline::ConnCtx;
use super::plug::{CloudPlug, RequestBody, Signed};
use super::refusal::{AuthKind, CloudError, Refusal, Style};
use crate::agents::Agent;
use crate::cloud::{Call, Classification, Fingerprint, RequestView};
use crate::credentials::GoogleBroker;

/// The Google phases, with what they need: the broker of agents' service-account tokens
/// (for `sign`, once Google agents authenticate).
pub struct Gcp {
    #[expect(
        dead_code,
        reason = "read by `sign` once Google agents authenticate (`Identity` has no values yet)"
    )]
    pub broker: GoogleBroker,
}

/// An authenticated Google agent: none exist until Airlock issues Google credentials.
pub enum Identity {}

impl CloudPlug for Gcp {
    type Identity = Identity;
    type Verified = Identity;

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

    /// Every request is refused: a bearer token, or none, names no Airlock agent yet.
    fn identify(&self, parts: &Parts, conn: &ConnCtx) -> Result<Identity, Refusal> {
        let (kind, reason) = if parts.headers.contains_key(http::header::AUTHORIZATION) {
            (AuthKind::Unknown, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
        } else {
            (AuthKind::Missing, "CREDENTIALS_MISSING")
        };
        Err(Refusal::Auth {
            kind,
            error: CloudError::new(
                StatusCode::UNAUTHORIZED,
                reason,
                format!(
                    "{} is a Google Cloud API. Airlock does not issue Google Cloud agent \
                     credentials yet, so it authenticates no Google call and forwards none.",
                    conn.host
                ),
            ),
        })
    }

    fn agent(identity: &Identity) -> &Arc<Agent> {
        match *identity {}
    }

    async fn read_body(
        &self,
        _parts: &Parts,
        _body: Incoming,
        identity: &Identity,
    ) -> Result<RequestBody, Refusal> {
        match *identity {}
    }

    fn classify(&self, view: &RequestView<'_>, _conn: &ConnCtx) -> Classification {
        crate::cloud::gcp::classify(view)
    }

    fn authenticate(
        &self,
        _parts: &Parts,
        _conn: &ConnCtx,
        _body: &RequestBody,
        identity: &Identity,
    ) -> Result<Identity, Refusal> {
        match *identity {}
    }

    fn fingerprint(
        &self,
        _parts: &Parts,
        _conn: &ConnCtx,
        _body: &RequestBody,
        identity: &Identity,
        _verified: &Identity,
        _call: Option<&Call>,
    ) -> Fingerprint {
        match *identity {}
    }

    async fn sign(
        &self,
        _parts: &mut Parts,
        _conn: &ConnCtx,
        _body: RequestBody,
        identity: &Identity,
        _verified: &Identity,
    ) -> Result<Signed, Refusal> {
        match *identity {}
    }
}
