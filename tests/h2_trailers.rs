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
                        // `/quiet`: a pause longer than Airlock's body idle timeout.
                        let pause = if request.uri().path() == "/quiet" {
                            std::time::Duration::from_millis(2500)
                        } else {
                            std::time::Duration::ZERO
                        };
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
                            let body = StreamBody::new(futures_util::stream::unfold(
                                frames.into_iter().enumerate(),
                                move |mut frames| async move {
                                    let (i, frame) = frames.next()?;
                                    if i == 1 {
                                        tokio::time::sleep(pause).await;
                                    }
                                    Some((frame, frames))
                                },
                            ));
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

/// An HTTP/2 upstream that answers a request at once and echoes each data frame of its
/// body as it arrives (`echo:<frame>`), then turns the request's trailers into its own.
async fn echo_stream_upstream(pki: &TestPki) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(pki.server_config());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service =
                    hyper::service::service_fn(|request: hyper::Request<Incoming>| async move {
                        let (tx, rx) =
                            tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(8);
                        let mut body = request.into_body();
                        tokio::spawn(async move {
                            while let Some(Ok(frame)) = body.frame().await {
                                let echoed = match frame.into_data() {
                                    Ok(data) => Frame::data(Bytes::from(
                                        [b"echo:".as_slice(), &data].concat(),
                                    )),
                                    Err(frame) => {
                                        let Ok(trailers) = frame.into_trailers() else {
                                            continue;
                                        };
                                        let mut back = HeaderMap::new();
                                        if let Some(v) = trailers.get("x-checksum") {
                                            back.insert("x-request-trailer", v.clone());
                                        }
                                        Frame::trailers(back)
                                    }
                                };
                                if tx.send(Ok(echoed)).await.is_err() {
                                    return;
                                }
                            }
                        });
                        let body = StreamBody::new(tokio_stream_of(rx));
                        Ok::<_, Infallible>(hyper::Response::new(body))
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

/// An mpsc receiver as a stream.
fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A long-lived stream both ways through Airlock: an S3 upload streamed with
/// `UNSIGNED-PAYLOAD` whose upstream answers frame by frame while the upload goes on, and
/// whose request trailers reach the upstream.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_streams_both_ways_and_its_trailers_reach_the_upstream() {
    let pki = TestPki::new();
    let up = echo_stream_upstream(&pki).await;
    let airlock = Airlock::start_with_rules(
        &pki,
        &routes_to(up, "https"),
        &support::BASE_ENV,
        Some(support::ALLOW_ALL_RULES),
    );
    let host = "stream-bucket.s3.amazonaws.com";
    let url = format!("https://{host}/live.bin");
    // Signed as S3 clients sign a stream they cannot hash: UNSIGNED-PAYLOAD, no length.
    let mut signed = reqwest::Client::new()
        .put(&url)
        .body(reqwest::Body::wrap_stream(futures_util::stream::empty::<
            Result<Bytes, std::io::Error>,
        >()))
        .build()
        .unwrap();
    support::signing::sign_now(&mut signed, airlock.key(), "s3");
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(8);
    let mut request = hyper::Request::put(&url);
    for (name, value) in signed.headers() {
        request = request.header(name, value);
    }
    let request = request.body(StreamBody::new(tokio_stream_of(rx))).unwrap();
    let mut sender = support::h2_through(&airlock, host).await;
    tx.send(Ok(Frame::data(Bytes::from_static(b"ping-1"))))
        .await
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let next_data = async |body: &mut Incoming| loop {
        let frame = body.frame().await.expect("a frame").expect("no error");
        if let Ok(data) = frame.into_data() {
            return data;
        }
    };
    // Each echo arrives before the next piece of the upload is sent.
    assert_eq!(next_data(&mut body).await, "echo:ping-1");
    tx.send(Ok(Frame::data(Bytes::from_static(b"ping-2"))))
        .await
        .unwrap();
    assert_eq!(next_data(&mut body).await, "echo:ping-2");
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", "crc32c=abc".parse().unwrap());
    tx.send(Ok(Frame::trailers(trailers))).await.unwrap();
    drop(tx);
    let rest = body.collect().await.unwrap();
    let back = rest.trailers().cloned().expect("trailers came back");
    assert_eq!(back["x-request-trailer"], "crc32c=abc");
}

/// A gRPC response that goes quiet for longer than `limits.body_idle_timeout` is not cut
/// (streams such as StreamingPull are quiet for minutes); any other response is.
#[tokio::test(flavor = "multi_thread")]
async fn quiet_grpc_streams_are_not_cut_for_idleness_other_bodies_are() {
    let pki = TestPki::new();
    let (up, _seen) = trailer_upstream(&pki).await;
    let airlock = Airlock::start_with_rules(
        &pki,
        &format!(
            "{}limits:\n  body_idle_timeout: 1s\n",
            routes_to(up, "https")
        ),
        &support::BASE_ENV,
        Some(support::ALLOW_ALL_RULES),
    );
    let mut sender = support::h2_through(&airlock, "sts.amazonaws.com").await;
    let request = |content_type: &str| {
        let mut request = hyper::Request::get("https://sts.amazonaws.com/quiet")
            .header("te", "trailers")
            .header("content-type", content_type);
        for (name, value) in auth_headers(airlock.key(), "GET", "sts.amazonaws.com", "/quiet") {
            request = request.header(name, value);
        }
        request.body(Empty::<Bytes>::new()).unwrap()
    };
    let grpc = sender
        .send_request(request("application/grpc"))
        .await
        .unwrap();
    let collected = grpc
        .into_body()
        .collect()
        .await
        .expect("the stream survives the pause");
    assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
    assert_eq!(collected.to_bytes(), "one two three");
    let json = sender
        .send_request(request("application/json"))
        .await
        .unwrap();
    assert!(
        json.into_body().collect().await.is_err(),
        "a quiet non-gRPC body is cut after the idle timeout"
    );
}
