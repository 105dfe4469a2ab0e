//! The benchmark scripts' servers in one process (`benches/stack.sh`):
//! `cargo run --release --example upstream -- DIR [SERVICE_ACCOUNT…]` writes
//! DIR/upstream-ca.pem (the CA of every TLS server below) and prints one line each:
//!
//! - `metadata <host:port>`  the fake GCE metadata server (`tests/support/google_auth.rs`),
//!   for Airlock's `GCE_METADATA_HOST`: Airlock's own Google identity
//! - `iamcredentials <url>`  the fake IAM Service Account Credentials API (TLS), for
//!   `credentials.google.iamcredentials_endpoint`; Token Creator granted on each
//!   SERVICE_ACCOUNT (default `bench-agent@bench-project.iam.gserviceaccount.com`)
//! - `counts <addr>`         plain HTTP: `GET /calls` answers JSON, successful
//!   `generateAccessToken` calls per account, plus every call (`requests`, refused ones
//!   included) and the metadata tokens issued (`metadata_tokens`)
//! - `google <addr>`         a Google Cloud Storage stand-in (TLS, HTTP/1.1 and HTTP/2): any
//!   GET answers `ok\n` (the AWS upstream's `/small`, so both clouds are measured on the
//!   same response); a resumable upload's start (`POST …?uploadType=resumable` without
//!   `upload_id`) answers 200 with the session URI in `Location`, as Storage does;
//!   anything else is hashed as it streams and answered with its method, URI, length and
//!   SHA-256 as JSON (`body_sha256`, as the AWS upstream's echo)
//! - `listening <addr>`      the test TLS upstream (`tests/support/upstream.rs`), for AWS
//!   hosts: `/small`, and an echo that hashes every body. Printed last.
//!
//! Serves until killed.

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../../tests/support/upstream.rs"]
mod upstream;

#[path = "../../tests/support/google_auth.rs"]
mod google_auth;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use google_auth::{FakeIamCredentials, FakeMetadata};

const BENCH_SERVICE_ACCOUNT: &str = "bench-agent@bench-project.iam.gserviceaccount.com";

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| ".".into());
    let mut accounts: Vec<String> = args.collect();
    if accounts.is_empty() {
        accounts.push(BENCH_SERVICE_ACCOUNT.to_string());
    }
    let pki = upstream::TestPki::new();
    std::fs::write(
        std::path::Path::new(&dir).join("upstream-ca.pem"),
        &pki.ca_pem,
    )
    .expect("write upstream-ca.pem");

    let metadata = FakeMetadata::start().await;
    let iam = FakeIamCredentials::start(&pki, &metadata).await;
    for account in &accounts {
        iam.grant(account);
    }
    println!("metadata {}", metadata.host());
    println!("iamcredentials {}", iam.url);
    let counts = serve_counts(Arc::new((metadata, iam)), accounts).await;
    println!("counts {counts}");
    let google = serve_google(&pki).await;
    println!("google {google}");

    let addr = upstream::start_tls(&pki).await;
    println!("listening {addr}");
    std::future::pending::<()>().await;
}

/// The plain-HTTP `GET /calls` endpoint.
async fn serve_counts(
    fakes: Arc<(FakeMetadata, FakeIamCredentials)>,
    accounts: Vec<String>,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accounts = Arc::new(accounts);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let fakes = Arc::clone(&fakes);
            let accounts = Arc::clone(&accounts);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| {
                    let (metadata, iam) = &*fakes;
                    let calls: serde_json::Map<String, serde_json::Value> = accounts
                        .iter()
                        .map(|sa| (sa.clone(), iam.calls(sa).into()))
                        .collect();
                    let body = serde_json::json!({
                        "calls": calls,
                        "requests": iam.requests().len(),
                        "metadata_tokens": metadata.token_requests().len(),
                    });
                    async move { Ok::<_, Infallible>(json(StatusCode::OK, &body)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The Storage stand-in, on an ephemeral loopback port.
async fn serve_google(pki: &upstream::TestPki) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = TlsAcceptor::from(pki.server_config());
    let sessions = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            let sessions = Arc::clone(&sessions);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    google(Arc::clone(&sessions), request)
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

async fn google(
    sessions: Arc<AtomicU64>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, mut body) = request.into_parts();
    if parts.method == Method::GET {
        return Ok(Response::new(Full::new(Bytes::from_static(b"ok\n"))));
    }
    let query = parts.uri.query().unwrap_or_default();
    let has = |p: &dyn Fn(&str) -> bool| query.split('&').any(p);
    let mut hasher = Sha256::new();
    let mut length = 0u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            length += data.len() as u64;
            hasher.update(&data);
        }
    }
    if parts.method == Method::POST
        && has(&|p| p == "uploadType=resumable")
        && !has(&|p| p.starts_with("upload_id="))
    {
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or(parts.uri.host())
            .unwrap_or("storage.googleapis.com");
        let id = sessions.fetch_add(1, Ordering::Relaxed);
        let location = format!(
            "https://{host}{}?{query}&upload_id=bench-session-{id}",
            parts.uri.path()
        );
        let mut response = Response::new(Full::new(Bytes::new()));
        response.headers_mut().insert(
            http::header::LOCATION,
            http::HeaderValue::from_str(&location).expect("location"),
        );
        return Ok(response);
    }
    let echo = serde_json::json!({
        "method": parts.method.to_string(),
        "uri": parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        "body_len": length,
        "body_sha256": upstream::hex(&hasher.finalize()),
    });
    Ok(json(StatusCode::OK, &echo))
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}
