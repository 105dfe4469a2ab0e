//! Google's token services, close enough to Google's documented protocol to test Airlock's
//! credential broker against, and strict where Google is strict:
//!
//! - [`FakeMetadata`]: the Compute Engine metadata server, plain HTTP, for
//!   `GCE_METADATA_HOST=<host:port>`. Every `/computeMetadata/v1/…` request needs
//!   `Metadata-Flavor: Google` and no `X-Forwarded-For` (the real server refuses both
//!   with 403: the header proves the caller is not a browser or a proxy); every answer
//!   carries `Metadata-Flavor: Google`. It serves the default service account's `token`
//!   (`{"access_token", "expires_in", "token_type": "Bearer"}`, `?scopes=a,b` recorded),
//!   `email` and `scopes`, `project/project-id`, `project/numeric-project-id` and
//!   `universe/universe-domain` (what google-cloud-auth and other ADC clients read). Each
//!   token is random (`ya29.airlock-base-…`) and remembered in [`BaseTokens`].
//! - [`FakeIamCredentials`]: `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`
//!   over TLS with the test PKI's certificate. It requires `Authorization: Bearer` with a
//!   live token the metadata server issued (else 401 `UNAUTHENTICATED`), Token Creator on
//!   the target, granted by the test (else 403 `PERMISSION_DENIED`, worded as Google
//!   words it: the permission, never the account), a non-empty `scope` and a `lifetime`
//!   of at most `3600s` (else 400 `INVALID_ARGUMENT`; these two messages are
//!   approximations). It answers `{"accessToken": "ya29.fake-…", "expireTime": RFC 3339}`,
//!   counts calls per account, and puts every token it mints in [`Minted`], which a later
//!   test front (Storage, Pub/Sub) can share to accept only those tokens and act as
//!   their account. It can be made to fail: 503 `UNAVAILABLE`, or every connection
//!   dropped.
//!
//! Errors use Google's JSON shape: `{"error": {"code", "message", "status", "details"}}`.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::upstream::TestPki;

/// Airlock's own identity on the fake metadata server.
pub const METADATA_EMAIL: &str = "airlock@airlock-test.iam.gserviceaccount.com";
pub const METADATA_PROJECT: &str = "airlock-test";
/// Google's ceiling for `generateAccessToken` without the lifetime-extension policy.
pub const MAX_LIFETIME_SECS: u64 = 3600;

const PERMISSION: &str = "iam.serviceAccounts.getAccessToken";

type Body = Full<Bytes>;

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut buf)
        .expect("random");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tokens the metadata server issued, with when each expires.
#[derive(Clone, Default)]
pub struct BaseTokens(Arc<Mutex<HashMap<String, SystemTime>>>);

impl BaseTokens {
    /// Issued here and not yet expired.
    pub fn is_live(&self, token: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .get(token)
            .is_some_and(|expiry| *expiry > SystemTime::now())
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// One `token` request the metadata server answered.
#[derive(Debug, Clone)]
pub struct MetadataTokenRequest {
    /// The `scopes` query parameter, split on commas (`None`: the instance's scopes).
    pub scopes: Option<Vec<String>>,
}

struct MetadataState {
    issued: BaseTokens,
    expires_in: u64,
    token_requests: Mutex<Vec<MetadataTokenRequest>>,
    refused: Mutex<usize>,
}

/// The metadata server; serves until the runtime ends.
pub struct FakeMetadata {
    pub addr: SocketAddr,
    state: Arc<MetadataState>,
}

impl FakeMetadata {
    /// On an ephemeral loopback port.
    pub async fn start() -> FakeMetadata {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener)
    }

    /// On `listener` (one bound before the process that reads `GCE_METADATA_HOST` started).
    pub fn serve(listener: TcpListener) -> FakeMetadata {
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(MetadataState {
            issued: BaseTokens::default(),
            expires_in: 3599,
            token_requests: Mutex::new(Vec::new()),
            refused: Mutex::new(0),
        });
        let served = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(metadata(&state, request)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeMetadata { addr, state }
    }

    /// The value for `GCE_METADATA_HOST`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The tokens issued so far: what [`FakeIamCredentials`] accepts as a caller's.
    pub fn issued(&self) -> BaseTokens {
        self.state.issued.clone()
    }

    pub fn token_requests(&self) -> Vec<MetadataTokenRequest> {
        self.state.token_requests.lock().unwrap().clone()
    }

    /// Requests refused for a missing `Metadata-Flavor` or a proxy's `X-Forwarded-For`.
    pub fn refused(&self) -> usize {
        *self.state.refused.lock().unwrap()
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("metadata-flavor", "Google")
        .header("content-type", "application/text")
        .body(Full::new(body.into()))
        .unwrap()
}

fn metadata(state: &MetadataState, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    if path == "/" {
        return text(StatusCode::OK, "computeMetadata/\n");
    }
    let headers = request.headers();
    let flavored = headers
        .get("metadata-flavor")
        .is_some_and(|v| v.as_bytes() == b"Google");
    if !flavored || headers.contains_key("x-forwarded-for") {
        *state.refused.lock().unwrap() += 1;
        return text(
            StatusCode::FORBIDDEN,
            "Your client does not have permission to get URL from this server. Missing \
             Metadata-Flavor:Google header.\n",
        );
    }
    if request.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    let query = request.uri().query().unwrap_or_default();
    const SA: &str = "/computeMetadata/v1/instance/service-accounts/default";
    match path.as_str() {
        p if p == format!("{SA}/token") => {
            let scopes = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "scopes")
                .map(|(_, v)| v.split(',').map(str::to_string).collect());
            state
                .token_requests
                .lock()
                .unwrap()
                .push(MetadataTokenRequest { scopes });
            let token = format!("ya29.airlock-base-{}", random_hex(24));
            let expiry = SystemTime::now() + Duration::from_secs(state.expires_in);
            state.issued.0.lock().unwrap().insert(token.clone(), expiry);
            let body = json!({
                "access_token": token,
                "expires_in": state.expires_in,
                "token_type": "Bearer",
            });
            let mut response = text(StatusCode::OK, body.to_string());
            response.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/json"),
            );
            response
        }
        p if p == format!("{SA}/email") => text(StatusCode::OK, METADATA_EMAIL),
        p if p == format!("{SA}/scopes") => text(
            StatusCode::OK,
            "https://www.googleapis.com/auth/cloud-platform\n",
        ),
        p if p == format!("{SA}/") || p == SA => {
            text(StatusCode::OK, "aliases\nemail\nidentity\nscopes\ntoken\n")
        }
        "/computeMetadata/v1/project/project-id" => text(StatusCode::OK, METADATA_PROJECT),
        "/computeMetadata/v1/project/numeric-project-id" => text(StatusCode::OK, "123456789012"),
        "/computeMetadata/v1/universe/universe-domain" => text(StatusCode::OK, "googleapis.com"),
        _ => text(StatusCode::NOT_FOUND, "Not Found\n"),
    }
}

/// One token [`FakeIamCredentials`] minted.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub service_account: String,
    pub scopes: Vec<String>,
    pub expiration: SystemTime,
}

/// Every token the fake minted: shared with fronts that must accept only those.
#[derive(Clone, Default)]
pub struct Minted(Arc<Mutex<HashMap<String, MintedToken>>>);

impl Minted {
    /// The service account `token` acts as, if the fake minted it and it has not expired.
    pub fn service_account_for(&self, token: &str) -> Option<String> {
        self.get(token)
            .filter(|m| m.expiration > SystemTime::now())
            .map(|m| m.service_account)
    }

    /// When `token` expires (expired ones too), if the fake minted it.
    pub fn expiration(&self, token: &str) -> Option<SystemTime> {
        self.get(token).map(|m| m.expiration)
    }

    pub fn get(&self, token: &str) -> Option<MintedToken> {
        self.0.lock().unwrap().get(token).cloned()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// How [`FakeIamCredentials`] fails when told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `503 UNAVAILABLE` in Google's shape.
    Unavailable,
    /// Connections closed without an answer (new ones at once, pooled ones at the next
    /// request).
    DropConnections,
}

/// One `generateAccessToken` request as received (whatever its outcome).
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    pub service_account: String,
    /// The response status.
    pub status: u16,
    pub body: Value,
}

struct IamState {
    callers: BaseTokens,
    granted: Mutex<Vec<String>>,
    requests: Mutex<Vec<GenerateRequest>>,
    minted: Minted,
    failure: Mutex<Option<Failure>>,
}

/// The IAM Service Account Credentials API; serves until the runtime ends.
pub struct FakeIamCredentials {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:<port>`: the broker's `iamcredentials_endpoint`.
    pub url: String,
    state: Arc<IamState>,
}

impl FakeIamCredentials {
    /// Accepting as callers the tokens `metadata` issues; no account granted yet.
    pub async fn start(pki: &TestPki, metadata: &FakeMetadata) -> FakeIamCredentials {
        Self::start_with(pki, metadata.issued()).await
    }

    pub async fn start_with(pki: &TestPki, callers: BaseTokens) -> FakeIamCredentials {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(IamState {
            callers,
            granted: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            minted: Minted::default(),
            failure: Mutex::new(None),
        });
        let acceptor = TlsAcceptor::from(pki.server_config());
        let served = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                if *served.failure.lock().unwrap() == Some(Failure::DropConnections) {
                    drop(stream);
                    continue;
                }
                let acceptor = acceptor.clone();
                let state = Arc::clone(&served);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { iam(&state, request).await }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        FakeIamCredentials {
            addr,
            url: format!("https://{addr}"),
            state,
        }
    }

    /// Give Airlock Token Creator on `service_account`.
    pub fn grant(&self, service_account: &str) {
        self.state
            .granted
            .lock()
            .unwrap()
            .push(service_account.to_string());
    }

    /// Successful `generateAccessToken` calls for `service_account`.
    pub fn calls(&self, service_account: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.service_account == service_account && r.status == 200)
            .count()
    }

    /// Every request that reached the handler, refused ones included.
    pub fn requests(&self) -> Vec<GenerateRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn minted(&self) -> Minted {
        self.state.minted.clone()
    }

    /// Fail from now on (`None`: answer again).
    pub fn fail(&self, failure: Option<Failure>) {
        *self.state.failure.lock().unwrap() = failure;
    }
}

/// An error in Google's JSON shape.
fn google_error(code: StatusCode, status: &str, message: &str, details: Value) -> Response<Body> {
    let body = json!({"error": {
        "code": code.as_u16(),
        "message": message,
        "status": status,
        "details": details,
    }});
    let mut response = Response::builder()
        .status(code)
        .header("content-type", "application/json; charset=UTF-8");
    if code == StatusCode::UNAUTHORIZED {
        response = response.header(
            "www-authenticate",
            "Bearer realm=\"https://accounts.google.com/\"",
        );
    }
    response.body(Full::new(body.to_string().into())).unwrap()
}

fn error_info(reason: &str, metadata: Value) -> Value {
    json!([{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": metadata,
    }])
}

/// The bearer token of `Authorization`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// `"3600s"` (a protobuf Duration in JSON) as seconds; fractions round up.
fn lifetime_secs(value: &str) -> Option<u64> {
    let number = value.strip_suffix('s')?;
    let seconds: f64 = number.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| seconds.ceil() as u64)
}

async fn iam(state: &IamState, request: Request<Incoming>) -> Result<Response<Body>, String> {
    if *state.failure.lock().unwrap() == Some(Failure::DropConnections) {
        // An error from the service makes hyper close the connection unanswered.
        return Err("dropped".into());
    }
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let path = parts.uri.path();
    let service_account = path
        .strip_prefix("/v1/projects/-/serviceAccounts/")
        .and_then(|rest| rest.strip_suffix(":generateAccessToken"))
        .map(|sa| {
            percent_encoding::percent_decode_str(sa)
                .decode_utf8_lossy()
                .into_owned()
        });
    let Some(service_account) = service_account.filter(|_| parts.method == Method::POST) else {
        return Ok(google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("The requested URL {path} was not found on this server."),
            json!([]),
        ));
    };
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let response = generate(state, &parts.headers, &service_account, &parsed);
    state.requests.lock().unwrap().push(GenerateRequest {
        service_account,
        status: response.status().as_u16(),
        body: parsed,
    });
    Ok(response)
}

fn generate(
    state: &IamState,
    headers: &HeaderMap,
    service_account: &str,
    body: &Value,
) -> Response<Body> {
    if *state.failure.lock().unwrap() == Some(Failure::Unavailable) {
        return google_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The service is currently unavailable.",
            json!([]),
        );
    }
    let method = json!({
        "service": "iamcredentials.googleapis.com",
        "method": "google.iam.credentials.v1.IAMCredentials.GenerateAccessToken",
    });
    match bearer(headers) {
        None => {
            return google_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 \
                 access token, login cookie or other valid authentication credential. See \
                 https://developers.google.com/identity/sign-in/web/devconsole-project.",
                error_info("CREDENTIALS_MISSING", method),
            );
        }
        Some(token) if !state.callers.is_live(token) => {
            return google_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access \
                 token, login cookie or other valid authentication credential. See \
                 https://developers.google.com/identity/sign-in/web/devconsole-project.",
                error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED", method),
            );
        }
        Some(_) => {}
    }
    if !state
        .granted
        .lock()
        .unwrap()
        .iter()
        .any(|sa| sa == service_account)
    {
        // Google names the permission, not the account, and does not say whether the
        // account exists.
        return google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!("Permission '{PERMISSION}' denied on resource (or it may not exist)."),
            json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": "iam.googleapis.com",
                "metadata": {"permission": PERMISSION},
            }]),
        );
    }
    let invalid = |message: &str| {
        google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            message,
            json!([]),
        )
    };
    if !body.is_object() {
        return invalid("Invalid JSON payload received.");
    }
    let scopes: Vec<String> = body["scope"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if scopes.is_empty() || scopes.iter().any(|s| s.trim().is_empty()) {
        return invalid("Scope required.");
    }
    // Omitted: Google's default, one hour.
    let lifetime = match body.get("lifetime") {
        None => MAX_LIFETIME_SECS,
        Some(v) => match v.as_str().and_then(lifetime_secs) {
            Some(secs) => secs,
            None => {
                return invalid(
                    "Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration)",
                );
            }
        },
    };
    if lifetime == 0 || lifetime > MAX_LIFETIME_SECS {
        return invalid(&format!(
            "The lifetime must be between 1 and {MAX_LIFETIME_SECS} seconds, got {lifetime}s."
        ));
    }
    let expires = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        + Duration::from_secs(lifetime);
    let token = format!("ya29.fake-{}", random_hex(32));
    state.minted.0.lock().unwrap().insert(
        token.clone(),
        MintedToken {
            service_account: service_account.to_string(),
            scopes,
            expiration: expires.into(),
        },
    );
    let expire_time = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(
            json!({"accessToken": token, "expireTime": expire_time})
                .to_string()
                .into(),
        ))
        .unwrap()
}
