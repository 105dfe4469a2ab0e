//! A real HTTPS upstream for tests and benchmarks: its own test CA, HTTP/1.1 and HTTP/2 by
//! ALPN, and a few endpoints:
//!
//! - `GET /bytes/N`  streams N deterministic bytes (64 KiB frames)
//! - `GET /slow/MS`  answers after MS milliseconds
//! - `GET /small`    a short fixed body (benchmarks)
//! - `GET /stall/N`  sends N bytes of its body, then nothing more, ever
//! - anything else   echoes the request as JSON: method, path, version, headers, and the
//!   body's length and SHA-256 (the body is streamed and hashed, never buffered)
//!
//! Shared by `tests/` and the `upstream` example used by `benches/load.sh`.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A throwaway CA and a server certificate for the names tests use.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert: CertificateDer<'static>,
    pub server_key: Vec<u8>,
}

/// Names the upstream certificate covers: what tests address through Airlock, plus
/// 127.0.0.1 for direct (benchmark) connections.
pub const UPSTREAM_NAMES: &[&str] = &[
    "amazonaws.com",
    "*.amazonaws.com",
    "*.us-east-1.amazonaws.com",
    "*.s3.amazonaws.com",
    "*.googleapis.com",
    "*.example.org",
];

impl TestPki {
    pub fn new() -> TestPki {
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        ca.distinguished_name
            .push(DnType::CommonName, "Airlock test upstream CA");
        let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate().expect("server key");
        let mut params = CertificateParams::new(
            UPSTREAM_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .expect("server params");
        params
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        let cert = params.signed_by(&key, &issuer).expect("server cert");
        TestPki {
            ca_pem: ca_cert.pem(),
            server_cert: cert.der().clone(),
            server_key: key.serialize_der(),
        }
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![self.server_cert.clone()],
                PrivateKeyDer::Pkcs8(self.server_key.clone().into()),
            )
            .expect("server cert");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

/// Serve HTTPS on `listener` forever (spawned; ends with the runtime).
pub fn serve_tls(listener: TcpListener, config: Arc<ServerConfig>) {
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                serve_conn(TokioIo::new(tls)).await;
            });
        }
    });
}

/// Serve plain HTTP on `listener` forever (for `http://` routes).
pub fn serve_plain(listener: TcpListener) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve_conn(TokioIo::new(stream)));
        }
    });
}

async fn serve_conn<I>(io: TokioIo<I>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(handle);
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
        .await;
}

/// Start a TLS upstream on an ephemeral loopback port.
pub async fn start_tls(pki: &TestPki) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    serve_tls(listener, pki.server_config());
    addr
}

pub const PATTERN_CHUNK: usize = 64 * 1024;

/// The byte at offset `i` of every `/bytes/N` body.
pub fn pattern_byte(i: u64) -> u8 {
    (i % 251) as u8
}

async fn handle(request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = request.uri().path().to_string();
    if let Some(n) = path.strip_prefix("/bytes/") {
        let total: u64 = n.parse().unwrap_or(0);
        return Ok(Response::new(pattern_body(total)));
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
        return Ok(Response::new(full("slow done\n")));
    }
    if let Some(n) = path.strip_prefix("/stall/") {
        let first = Bytes::from(vec![b'x'; n.parse().unwrap_or(0)]);
        let stream =
            futures_util::stream::once(async move { Ok::<_, hyper::Error>(Frame::data(first)) })
                .chain(futures_util::stream::pending());
        return Ok(Response::new(BodyExt::boxed(StreamBody::new(stream))));
    }
    if path == "/small" {
        return Ok(Response::new(full("ok\n")));
    }
    let method = request.method().to_string();
    let version = format!("{:?}", request.version());
    let uri = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = request.into_body();
    let mut hasher = Sha256::new();
    let mut length = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            length += data.len() as u64;
            hasher.update(&data);
        }
    }
    let echo = serde_json::json!({
        "method": method,
        "uri": uri,
        "version": version,
        "headers": headers,
        "body_len": length,
        "body_sha256": hex(&hasher.finalize()),
    });
    let mut response = Response::new(full(&echo.to_string()));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn full(text: &str) -> Body {
    Full::new(Bytes::from(text.to_string()))
        .map_err(|never| match never {})
        .boxed()
}

/// `total` pattern bytes, produced lazily in 64 KiB frames.
fn pattern_body(total: u64) -> Body {
    let stream = futures_util::stream::unfold(0u64, move |sent| async move {
        if sent >= total {
            return None;
        }
        let n = (total - sent).min(PATTERN_CHUNK as u64);
        let chunk: Vec<u8> = (sent..sent + n).map(pattern_byte).collect();
        Some((
            Ok::<_, hyper::Error>(Frame::data(Bytes::from(chunk))),
            sent + n,
        ))
    });
    BodyExt::boxed(StreamBody::new(stream))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The upstream's echo of a request, parsed.
pub fn echo(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not an echo ({e}): {text}"))
}

/// The values of header `name` in an echo.
pub fn echoed_header<'a>(echo: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    echo["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .filter(|h| h[0] == name)
        .filter_map(|h| h[1].as_str())
        .collect()
}

/// One request as the recording upstream received it: its head, and its body as far as it
/// arrived. `complete` only when the body reached its end (the content length, or the
/// chunked terminator); a body cut short stays `complete: false` with the bytes it had.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
    pub body_sha256: String,
    pub complete: bool,
    /// The body's first bytes (up to [`RECORDED_BODY_BYTES`]).
    pub body_start: Vec<u8>,
}

/// How much of each body a recording upstream keeps.
pub const RECORDED_BODY_BYTES: usize = 64 * 1024;

impl Received {
    /// The values of header `name`.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What a recording upstream ([`start_tls_recording`]) received: requests, not connections.
#[derive(Clone, Default)]
pub struct Recorder {
    log: Arc<std::sync::Mutex<Vec<Arc<std::sync::Mutex<Received>>>>>,
}

impl Recorder {
    /// Every request whose head arrived, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.log
            .lock()
            .expect("log")
            .iter()
            .map(|r| r.lock().expect("entry").clone())
            .collect()
    }

    /// The requests whose body arrived in full.
    pub fn completed(&self) -> Vec<Received> {
        self.requests().into_iter().filter(|r| r.complete).collect()
    }
}

/// A TLS echo upstream (as [`start_tls`], every path echoed) that records each request
/// as it arrives and updates it as its body streams in, so a request cut mid-body is seen
/// as such even when its connection is torn down before an answer.
pub async fn start_tls_recording(pki: &TestPki) -> (SocketAddr, Recorder) {
    start_tls_recording_alpn(pki, pki.server_config()).await
}

/// As [`start_tls_recording`], speaking HTTP/1.1 only, as S3 does: a request body cut
/// short is then visible as such (over HTTP/2 a reset stream may drop what was buffered).
pub async fn start_tls_recording_h1(pki: &TestPki) -> (SocketAddr, Recorder) {
    let mut config = (*pki.server_config()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    start_tls_recording_alpn(pki, Arc::new(config)).await
}

async fn start_tls_recording_alpn(
    _pki: &TestPki,
    config: Arc<ServerConfig>,
) -> (SocketAddr, Recorder) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    let recorder = Recorder::default();
    let acceptor = TlsAcceptor::from(config);
    let log = recorder.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    let log = log.clone();
                    async move { Ok::<_, Infallible>(record(request, &log).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, recorder)
}

async fn record(request: Request<Incoming>, log: &Recorder) -> Response<Body> {
    let entry = Arc::new(std::sync::Mutex::new(Received {
        method: request.method().to_string(),
        uri: request
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_sha256: hex(&Sha256::digest(b"")),
        ..Received::default()
    }));
    log.log.lock().expect("log").push(Arc::clone(&entry));
    let mut body = request.into_body();
    let mut hasher = Sha256::new();
    let complete = loop {
        match body.frame().await {
            None => break true,
            Some(Err(_)) => break false,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    hasher.update(&data);
                    let mut e = entry.lock().expect("entry");
                    e.body_len += data.len() as u64;
                    let room = RECORDED_BODY_BYTES.saturating_sub(e.body_start.len());
                    e.body_start
                        .extend_from_slice(&data[..room.min(data.len())]);
                    e.body_sha256 = hex(&hasher.clone().finalize());
                }
            }
        }
    };
    let seen = {
        let mut e = entry.lock().expect("entry");
        e.complete = complete;
        e.clone()
    };
    let echo = serde_json::json!({
        "method": seen.method,
        "uri": seen.uri,
        "headers": seen.headers,
        "body_len": seen.body_len,
        "body_sha256": seen.body_sha256,
    });
    let mut response = Response::new(full(&echo.to_string()));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
