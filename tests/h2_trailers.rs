//! What gRPC needs of the proxy over HTTP/2: `te: trailers` reaches the upstream, and the
//! upstream's trailers (`grpc-status`) reach the agent, after a body that streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::signing::auth_headers;
use support::{Airlock, TestPki, routes_to};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// An HTTP/2 upstream that remembers the `te` header it was sent and answers with three
/// body frames, then trailers.
async fn trailer_upstream(pki: &TestPki) -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let acceptor = TlsAcceptor::from(pki.server_config());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                        let te = request
                            .headers()
                            .get("te")
                            .map_or("<none>".to_string(), |v| v.to_str().unwrap().to_string());
                        log.lock()
                            .unwrap()
                            .push(format!("{:?} te={te}", request.version()));
                        async move {
                            let mut trailers = HeaderMap::new();
                            trailers.insert("grpc-status", "0".parse().unwrap());
                            trailers.insert("grpc-message", "done".parse().unwrap());
                            let frames: Vec<Result<Frame<Bytes>, Infallible>> = vec![
                                Ok(Frame::data(Bytes::from_static(b"one "))),
                                Ok(Frame::data(Bytes::from_static(b"two "))),
                                Ok(Frame::data(Bytes::from_static(b"three"))),
                                Ok(Frame::trailers(trailers)),
                            ];
                            let body = StreamBody::new(futures_util::stream::iter(frames));
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .header("content-type", "application/grpc")
                                    .body(body)
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn te_trailers_goes_upstream_and_trailers_come_back_over_http2() {
    let pki = TestPki::new();
    let (up, seen) = trailer_upstream(&pki).await;
    let airlock = Airlock::start_with_rules(
        &pki,
        &routes_to(up, "https"),
        &support::BASE_ENV,
        Some(support::ALLOW_ALL_RULES),
    );
    let mut sender = support::h2_through(&airlock, "sts.amazonaws.com").await;
    let mut request =
        hyper::Request::get("https://sts.amazonaws.com/stream").header("te", "trailers");
    for (name, value) in auth_headers(airlock.key(), "GET", "sts.amazonaws.com", "/stream") {
        request = request.header(name, value);
    }
    let response = sender
        .send_request(request.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected
        .trailers()
        .cloned()
        .expect("trailers reached the agent");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "done");
    assert_eq!(collected.to_bytes(), "one two three");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, ["HTTP/2.0 te=trailers"], "what the upstream was sent");
}
