//! "A local Google" for end-to-end tests: [`LocalGoogle`] is a TLS front for
//! `*.googleapis.com` (HTTP/1.1 and HTTP/2 by ALPN, the test PKI's certificate) that checks
//! every call's bearer token as Google does, records what it received, and serves each API
//! from a real local emulator:
//!
//! | host                                  | served by                                        |
//! |---------------------------------------|--------------------------------------------------|
//! | `storage.googleapis.com`              | gcp-storage-emulator (PyPI), see [`storage`]     |
//! | `pubsub.googleapis.com`               | the Pub/Sub emulator of the gcloud package (REST over HTTP/1.1, gRPC over h2c) |
//! | `firestore.googleapis.com`            | the Firestore emulator of the gcloud package     |
//! | `cloudresourcemanager.googleapis.com` | an in-memory fake of get/setIamPolicy, see [`iam`] |
//! | anything else                         | 404 `NOT_FOUND` in Google's JSON shape           |
//!
//! No emulator checks credentials, so the front does: a call without `Authorization: Bearer
//! T`, or with a `T` the test's `auth` closure does not map to a service account, is answered
//! 401 `UNAUTHENTICATED` (gRPC: trailers-only, `grpc-status: 16`) and goes no further. What
//! the front forwards carries no `Authorization` (Firestore's: `Bearer owner`, the emulator's
//! own admin token).
//!
//! Emulators are processes shared by every `LocalGoogle` of a test binary (started on first
//! use, on free loopback ports in temporary directories; they exit when the test process
//! does). [`LocalGoogle::proxy_url`] is a plain CONNECT proxy that sends every
//! `*.googleapis.com:443` tunnel to the front, so that real clients (gcloud, the Python
//! libraries) reach it under Google's real host names without Airlock in between.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

pub mod emulators;
pub mod iam;
pub mod storage;
mod tunnel;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::TestPki;

pub type Body = BoxBody<Bytes, hyper::Error>;

/// A bearer token → the service account's email it acts as; `None` refuses the call.
pub type Auth = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// An [`Auth`] that accepts exactly `token`, as `service_account`.
pub fn accept_token(token: &str, service_account: &str) -> Auth {
    let (token, service_account) = (token.to_string(), service_account.to_string());
    Arc::new(move |t| (t == token).then(|| service_account.clone()))
}

/// Which emulators a [`LocalGoogle`] serves (Cloud Resource Manager, in-process, always).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Apis {
    pub storage: bool,
    pub pubsub: bool,
    pub firestore: bool,
}

impl Apis {
    pub const NONE: Apis = Apis {
        storage: false,
        pubsub: false,
        firestore: false,
    };
    pub const STORAGE: Apis = Apis {
        storage: true,
        ..Apis::NONE
    };
    pub const PUBSUB: Apis = Apis {
        pubsub: true,
        ..Apis::NONE
    };
    pub const FIRESTORE: Apis = Apis {
        firestore: true,
        ..Apis::NONE
    };
    pub const ALL: Apis = Apis {
        storage: true,
        pubsub: true,
        firestore: true,
    };

    /// Both sets.
    pub const fn and(self, other: Apis) -> Apis {
        Apis {
            storage: self.storage || other.storage,
            pubsub: self.pubsub || other.pubsub,
            firestore: self.firestore || other.firestore,
        }
    }
}

/// Who a call came as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A token the `auth` closure accepted, acting as this service account.
    ServiceAccount(String),
    /// Refused with 401: the bearer token presented (the whole `Authorization` value when
    /// it is not a bearer token), or `None` when there was no `Authorization` at all.
    Refused { token: Option<String> },
}

/// One request as the front received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// The host the client addressed (`:authority` or `Host`), lower case, without a port.
    pub host: String,
    pub path: String,
    /// The query string, without `?` (empty when none).
    pub query: String,
    /// `content-type: application/grpc…`.
    pub grpc: bool,
    pub http2: bool,
    pub caller: Caller,
    /// An emulator was reached: the call was passed on to it, or the front asked it what
    /// it needed to answer itself (storage's faked methods look the bucket up). False when
    /// refused, not found, or answered by the IAM fake.
    pub forwarded: bool,
    /// The HTTP status the front answered with, once it answered (gRPC: 200; the gRPC status
    /// travels in trailers).
    pub status: Option<u16>,
}

impl Seen {
    /// The service account the call acted as, if it was accepted.
    pub fn acting_as(&self) -> Option<&str> {
        match &self.caller {
            Caller::ServiceAccount(sa) => Some(sa),
            Caller::Refused { .. } => None,
        }
    }

    pub fn refused(&self) -> bool {
        matches!(self.caller, Caller::Refused { .. })
    }
}

/// What every connection's service shares.
pub(crate) struct Front {
    auth: Auth,
    storage: Option<SocketAddr>,
    pubsub: Option<SocketAddr>,
    firestore: Option<SocketAddr>,
    pub(crate) policies: iam::Policies,
    log: Mutex<Vec<Seen>>,
    /// HTTP/1.1 toward the emulators (REST).
    h1: Client<HttpConnector, Body>,
    /// HTTP/2 with prior knowledge (h2c) toward the emulators (gRPC).
    h2c: Client<HttpConnector, Body>,
}

/// The running front; stops accepting when dropped (the shared emulators live on).
pub struct LocalGoogle {
    pub addr: SocketAddr,
    front: Arc<Front>,
    tunnel: SocketAddr,
    ca_pem: String,
    dir: tempfile::TempDir,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl LocalGoogle {
    /// Start the front on a free loopback port, with the emulators `apis` names (each is
    /// started on first use in this test binary, then shared).
    pub async fn start(pki: &TestPki, auth: Auth, apis: Apis) -> LocalGoogle {
        let started = tokio::task::spawn_blocking(move || {
            (
                apis.storage.then(|| emulators::storage().addr),
                apis.pubsub.then(|| emulators::pubsub().addr),
                apis.firestore.then(|| emulators::firestore().addr),
            )
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let (storage, pubsub, firestore) = started;
        let front = Arc::new(Front {
            auth,
            storage,
            pubsub,
            firestore,
            policies: iam::Policies::default(),
            log: Mutex::new(Vec::new()),
            h1: Client::builder(TokioExecutor::new()).build_http(),
            h2c: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind front");
        let addr = listener.local_addr().expect("front addr");
        let serving = tokio::spawn(serve(listener, pki.server_config(), Arc::clone(&front)));
        let (tunnel, tunneling) = tunnel::start(addr).await;
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).expect("write ca.pem");
        LocalGoogle {
            addr,
            front,
            tunnel,
            ca_pem: pki.ca_pem.clone(),
            dir,
            tasks: vec![serving, tunneling],
        }
    }

    /// Every request the front received, in arrival order.
    pub fn requests(&self) -> Vec<Seen> {
        self.front.log.lock().expect("log").clone()
    }

    /// The requests for `host` whose path starts with `prefix`.
    pub fn requests_to(&self, host: &str, prefix: &str) -> Vec<Seen> {
        self.requests()
            .into_iter()
            .filter(|s| s.host == host && s.path.starts_with(prefix))
            .collect()
    }

    /// Forget what was received so far.
    pub fn clear_requests(&self) {
        self.front.log.lock().expect("log").clear();
    }

    /// Project `project`'s IAM policy as getIamPolicy would answer it.
    pub fn iam_policy(&self, project: &str) -> serde_json::Value {
        self.front.policies.get(project)
    }

    /// Replace project `project`'s IAM policy (bindings, auditConfigs) as a test's starting
    /// point; the etag changes as with any write. The new policy.
    pub fn seed_iam_policy(
        &self,
        project: &str,
        mut policy: serde_json::Value,
    ) -> serde_json::Value {
        if let Some(fields) = policy.as_object_mut() {
            fields.remove("etag");
        }
        self.front
            .policies
            .set(project, &serde_json::json!({ "policy": policy }))
            .expect("a valid policy")
    }

    /// A CONNECT proxy (`http://…`) that tunnels every `*.googleapis.com:443` to this front,
    /// for real clients: `HTTPS_PROXY`/`https_proxy`, with [`LocalGoogle::ca_file`] trusted.
    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.tunnel)
    }

    /// Airlock config sending every `*.googleapis.com` host to this front (start Airlock
    /// with the same [`TestPki`], whose CA becomes its `upstream.ca_file`).
    pub fn airlock_routes(&self) -> String {
        format!(
            "upstream:\n  routes:\n    - host: \"*.googleapis.com\"\n      to: https://{}\n",
            self.addr
        )
    }

    /// The test CA (PEM) the front's certificate chains to, as a file.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A reqwest client that reaches this front for every host name (Google's real ones, so
    /// Host and SNI are as through Airlock), trusting only the test CA.
    pub fn client(&self, http2: bool) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("ca");
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .no_proxy()
            .dns_resolver(Arc::new(ToFront(self.addr)));
        if !http2 {
            builder = builder.http1_only();
        }
        builder.build().expect("client")
    }

    /// The address of the emulator serving `api` ("storage", "pubsub", "firestore") for
    /// this front, if it serves it: to look behind the front in a test.
    pub fn emulator(&self, api: &str) -> Option<SocketAddr> {
        match api {
            "storage" => self.front.storage,
            "pubsub" => self.front.pubsub,
            "firestore" => self.front.firestore,
            _ => None,
        }
    }
}

impl Drop for LocalGoogle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Resolves every name to the front.
struct ToFront(SocketAddr);

impl reqwest::dns::Resolve for ToFront {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addr = self.0;
        Box::pin(async move {
            let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(addr));
            Ok(addrs)
        })
    }
}

async fn serve(listener: TcpListener, config: Arc<rustls::ServerConfig>, front: Arc<Front>) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, front) = (acceptor.clone(), Arc::clone(&front));
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request| {
                let front = Arc::clone(&front);
                async move { Ok::<_, Infallible>(handle(&front, request).await) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// The authority the client addressed: `:authority` (HTTP/2) or `Host` (HTTP/1.1).
fn authority(request: &Request<Incoming>) -> String {
    request
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default()
}

/// `host[:port]` → `host`, lower case.
fn host_of(authority: &str) -> String {
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    host.to_ascii_lowercase()
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// The bearer token, or the whole `Authorization` value when it is some other scheme.
fn presented_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?;
    let value = String::from_utf8_lossy(value.as_bytes()).trim().to_string();
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            Some(token.trim().to_string())
        }
        _ => Some(value),
    }
}

/// Whether the `Authorization` header is a bearer token (not Basic, not a SigV4 signature).
fn is_bearer(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
}

async fn handle(front: &Arc<Front>, request: Request<Incoming>) -> Response<Body> {
    let authority = authority(&request);
    let host = host_of(&authority);
    let grpc = is_grpc(request.headers());
    let token = presented_token(request.headers());
    let acting = if is_bearer(request.headers()) {
        token.as_deref().and_then(|t| (front.auth)(t))
    } else {
        None
    };
    let caller = match &acting {
        Some(sa) => Caller::ServiceAccount(sa.clone()),
        None => Caller::Refused {
            token: token.clone(),
        },
    };
    let index = {
        let mut log = front.log.lock().expect("log");
        log.push(Seen {
            method: request.method().to_string(),
            host: host.clone(),
            path: request.uri().path().to_string(),
            query: request.uri().query().unwrap_or_default().to_string(),
            grpc,
            http2: request.version() == Version::HTTP_2,
            caller,
            forwarded: false,
            status: None,
        });
        log.len() - 1
    };
    let response = if acting.is_none() {
        refuse(&host, grpc, token.is_none())
    } else {
        route(front, request, &authority, &host, grpc, index).await
    };
    if let Some(seen) = front.log.lock().expect("log").get_mut(index) {
        seen.status = Some(response.status().as_u16());
    }
    response
}

async fn route(
    front: &Arc<Front>,
    request: Request<Incoming>,
    authority: &str,
    host: &str,
    grpc: bool,
    index: usize,
) -> Response<Body> {
    let missing = |api: &str| {
        not_found(
            grpc,
            &format!(
                "{host} is served by the {api} emulator, which this LocalGoogle did not start (Apis)"
            ),
        )
    };
    match host {
        "storage.googleapis.com" => match front.storage {
            Some(addr) => storage::handle(front, request, addr, authority, index).await,
            None => missing("storage"),
        },
        "pubsub.googleapis.com" => match front.pubsub {
            Some(addr) => forward(front, request, addr, authority, None, index).await,
            None => missing("Pub/Sub"),
        },
        // The Firestore emulator treats `Bearer owner` as its administrator (no security
        // rules), and any other token as a rules-checked end user: the front, having
        // checked the caller, sends `owner`.
        "firestore.googleapis.com" => match front.firestore {
            Some(addr) => {
                forward(front, request, addr, authority, Some("Bearer owner"), index).await
            }
            None => missing("Firestore"),
        },
        "cloudresourcemanager.googleapis.com" if !grpc => {
            iam::handle(&front.policies, request).await
        }
        _ => not_found(
            grpc,
            &format!(
                "The requested URL was not found on this server: {host} is not served by this LocalGoogle."
            ),
        ),
    }
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), and the
/// caller's credentials, which no emulator should see.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "transfer-encoding",
    "upgrade",
    "authorization",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Send `request` to the emulator at `addr` (gRPC over h2c, the rest over HTTP/1.1), with
/// `authorization` in place of the caller's, and stream its answer back.
pub(crate) async fn forward(
    front: &Front,
    request: Request<Incoming>,
    addr: SocketAddr,
    authority: &str,
    authorization: Option<&'static str>,
    index: usize,
) -> Response<Body> {
    let (mut parts, body) = request.into_parts();
    let grpc = is_grpc(&parts.headers);
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    parts.uri = format!("http://{addr}{path}")
        .parse()
        .expect("emulator URI");
    strip_hop_by_hop(&mut parts.headers);
    if let Some(value) = authorization {
        parts
            .headers
            .insert(header::AUTHORIZATION, HeaderValue::from_static(value));
    }
    let client = if grpc {
        parts.version = Version::HTTP_2;
        parts.headers.remove(header::HOST);
        &front.h2c
    } else {
        // The emulator sees the host the client addressed (the storage emulator builds its
        // resumable session URIs and media links from it).
        parts.version = Version::HTTP_11;
        if let Ok(value) = HeaderValue::from_str(authority) {
            parts.headers.insert(header::HOST, value);
        }
        &front.h1
    };
    if let Some(seen) = front.log.lock().expect("log").get_mut(index) {
        seen.forwarded = true;
    }
    match client
        .request(Request::from_parts(parts, body.boxed()))
        .await
    {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed())
        }
        Err(e) => {
            let message = format!("the emulator at {addr} failed: {e:?}");
            if grpc {
                grpc_error(14, &message)
            } else {
                google_error(StatusCode::BAD_GATEWAY, "UNAVAILABLE", &message)
            }
        }
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// Google's JSON error (AIP-193): `{"error": {"code", "message", "status"}}`.
pub fn google_error(status: StatusCode, canonical: &str, message: &str) -> Response<Body> {
    google_error_body(
        status,
        serde_json::json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "status": canonical,
        }}),
    )
}

pub fn google_error_body(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

/// A trailers-only gRPC answer: status 200, `grpc-status` and `grpc-message` in the one
/// HEADERS frame that ends the stream.
pub fn grpc_error(code: u32, message: &str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(
        HeaderName::from_static("grpc-status"),
        HeaderValue::from_str(&code.to_string()).expect("status"),
    );
    headers.insert(
        HeaderName::from_static("grpc-message"),
        HeaderValue::from_str(&grpc_percent_encode(message)).expect("encoded"),
    );
    response
}

/// gRPC's `grpc-message` encoding: printable ASCII but `%` as is, all else `%XX`.
fn grpc_percent_encode(message: &str) -> String {
    message
        .bytes()
        .map(|b| {
            if (0x20..=0x7e).contains(&b) && b != b'%' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Google's wording for a call without credentials, and for one whose token it rejects.
pub const MISSING_CREDENTIALS: &str = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
pub const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";

/// 401 as Google answers a call it cannot authenticate.
fn refuse(host: &str, grpc: bool, missing: bool) -> Response<Body> {
    let (message, reason) = if missing {
        (MISSING_CREDENTIALS, "CREDENTIALS_MISSING")
    } else {
        (INVALID_CREDENTIALS, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
    };
    if grpc {
        return grpc_error(16, message);
    }
    let mut response = google_error_body(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({"error": {
            "code": 401,
            "message": message,
            "status": "UNAUTHENTICATED",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": host},
            }],
        }}),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\""),
    );
    response
}

fn not_found(grpc: bool, message: &str) -> Response<Body> {
    if grpc {
        // gRPC's answer for a service the server does not have.
        grpc_error(12, message)
    } else {
        google_error(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }
}

/// The canonical status Google pairs with an HTTP status.
pub fn canonical_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ if status.is_client_error() => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

/// Read a request body of at most `limit` bytes.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, String> {
    let collected = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(collected.to_bytes())
}

/// `(status, body)` of a JSON answer the front makes itself.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}
