//! What Airlock refuses, and how: other hosts, IP literals, other ports, SNI and Host
//! mismatches, malformed and oversized requests, slow clients, connection limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::signing::{auth_headers, raw_get};
use support::upstream;
use support::{Airlock, TestPki, connect, raw_exchange, routes_to, tls_through};
use tokio::io::AsyncReadExt;

const H1: &[&[u8]] = &[b"http/1.1"];

async fn started(extra: &str) -> (TestPki, Airlock) {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let airlock = Airlock::start(&pki, &format!("{}{extra}", routes_to(up, "https")));
    (pki, airlock)
}

#[tokio::test(flavor = "multi_thread")]
async fn connects_to_anything_but_intercepted_names_on_443_are_refused_with_a_reason() {
    let (_pki, airlock) = started("").await;
    let cases = [
        (
            "example.com:443",
            "not_intercepted",
            "add its domain to `tunnel:`",
        ),
        (
            "52.94.236.248:443",
            "ip_literal",
            "IP addresses are never proxied",
        ),
        (
            "[2600:1f18::1]:443",
            "ip_literal",
            "IP addresses are never proxied",
        ),
        ("sts.amazonaws.com:8443", "port", "only port 443 is proxied"),
    ];
    for (target, reason, why) in cases {
        let (status, body) = connect(airlock.proxy, target).await.expect_err("refused");
        assert_eq!(status, 403, "{target}");
        assert!(body.contains(why), "{target}: {body}");
        let sample = format!("airlock_connect_refused_total{{reason=\"{reason}\"}}");
        assert!(airlock.metric(&sample).await >= 1.0, "{sample}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_and_direct_requests_to_the_proxy_port_are_refused() {
    let (_pki, airlock) = started("").await;
    let mut stream = tokio::net::TcpStream::connect(airlock.proxy).await.unwrap();
    let answer = raw_exchange(
        &mut stream,
        b"GET http://sts.amazonaws.com/ HTTP/1.1\r\nHost: sts.amazonaws.com\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("does not proxy plain HTTP"), "{answer}");

    let mut stream = tokio::net::TcpStream::connect(airlock.proxy).await.unwrap();
    let answer = raw_exchange(
        &mut stream,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("proxy port"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sni_must_name_the_connect_host() {
    let (_pki, airlock) = started("").await;
    let ca = airlock.ca_pem();
    let result = tls_through(
        airlock.proxy,
        "sts.amazonaws.com",
        "iam.amazonaws.com",
        &ca,
        H1,
    )
    .await;
    assert!(
        result.is_err(),
        "a TLS session for another host than CONNECT's was accepted"
    );
    assert_eq!(
        airlock
            .metric("airlock_tls_handshake_failures_total{reason=\"sni_mismatch\"}")
            .await,
        1.0
    );
    assert_eq!(
        airlock.metric("airlock_cert_cache_misses_total").await,
        0.0,
        "a certificate was minted anyway"
    );
    // The same CONNECT with matching SNI works.
    sts(&airlock, H1).await;
}

/// A fresh intercepted TLS session to sts.amazonaws.com (SNI = CONNECT host), trusting
/// Airlock's CA.
async fn sts(
    airlock: &Airlock,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    tls_through(
        airlock.proxy,
        "sts.amazonaws.com",
        "sts.amazonaws.com",
        &airlock.ca_pem(),
        alpn,
    )
    .await
    .unwrap()
}

/// One raw HTTP/1.1 request on a fresh intercepted connection to sts.amazonaws.com.
async fn raw_request(airlock: &Airlock, raw: &[u8]) -> String {
    let mut tls = sts(airlock, H1).await;
    raw_exchange(&mut tls, raw, Duration::from_secs(10)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn host_headers_must_be_exactly_one_and_name_the_connect_host() {
    let (_pki, airlock) = started("").await;
    let cases: [(&[u8], &str, &str); 4] = [
        (
            b"GET / HTTP/1.1\r\nUser-Agent: t\r\n\r\n",
            "HTTP/1.1 400",
            "no Host header",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: sts.amazonaws.com\r\nHost: sts.amazonaws.com\r\n\r\n",
            "HTTP/1.1 400",
            "more than one Host",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: iam.amazonaws.com\r\n\r\n",
            "HTTP/1.1 421",
            "is for `iam.amazonaws.com` but this connection was opened (CONNECT) for `sts.amazonaws.com`",
        ),
        (
            b"GET https://iam.amazonaws.com/ HTTP/1.1\r\nHost: sts.amazonaws.com\r\n\r\n",
            "HTTP/1.1 421",
            "iam.amazonaws.com",
        ),
    ];
    for (raw, status, why) in cases {
        let answer = raw_request(&airlock, raw).await;
        assert!(answer.starts_with(status), "{answer}");
        assert!(answer.contains(why), "{answer}");
        // The connection is closed after a malformed request (raw_exchange read to EOF).
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    // `Host: name:443` is the same host.
    let answer = raw_request(
        &airlock,
        &raw_get(
            airlock.key(),
            "sts.amazonaws.com:443",
            "/small",
            "Connection: close\r\n",
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn http2_authority_must_name_the_connect_host() {
    let (_pki, airlock) = started("").await;
    let tls = sts(&airlock, &[b"h2"]).await;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = |uri: &str| {
        let host = uri
            .trim_start_matches("https://")
            .split('/')
            .next()
            .unwrap();
        let mut request = hyper::Request::get(uri);
        for (name, value) in auth_headers(airlock.key(), "GET", host, "/small") {
            request = request.header(name, value);
        }
        request.body(Empty::<Bytes>::new()).unwrap()
    };
    let response = sender
        .send_request(request("https://iam.amazonaws.com/small"))
        .await
        .unwrap();
    assert_eq!(response.status(), 421);
    let response = sender
        .send_request(request("https://sts.amazonaws.com/small"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// What the CONNECT host says (here: S3, bucket `bucket-a`) is parsed once per connection
/// and read for every request on it. That holds because every request must name that
/// host: on one HTTP/2 connection, a request for another bucket is refused before it is
/// classified (in the connection's error shape, S3's XML), and the connection goes on
/// serving its own bucket, whose calls are classified as its.
#[tokio::test(flavor = "multi_thread")]
async fn on_one_connection_another_bucket_is_refused_and_its_own_bucket_is_classified_as_its() {
    let (_pki, airlock) = started("").await;
    let mut sender = support::h2_through(&airlock, "bucket-a.s3.amazonaws.com").await;
    let request = |url: &str| {
        let signed = airlock.signed(reqwest::Client::new().get(url), "s3");
        let mut request = hyper::Request::get(url);
        for (name, value) in signed.headers() {
            request = request.header(name, value);
        }
        request.body(Empty::<Bytes>::new()).unwrap()
    };
    let response = sender
        .send_request(request("https://bucket-b.s3.amazonaws.com/q1.csv"))
        .await
        .unwrap();
    assert_eq!(response.status(), 421);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("<Code>HostMismatch</Code>")
            && body.contains("is for `bucket-b.s3.amazonaws.com` but this connection was opened (CONNECT) for `bucket-a.s3.amazonaws.com`"),
        "{body}"
    );
    for url in [
        "https://bucket-a.s3.amazonaws.com/q1.csv",
        "https://bucket-a.s3.amazonaws.com:443/q2.csv",
    ] {
        let response = sender.send_request(request(url)).await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
    }
    let audit = std::fs::read_to_string(airlock.dir.path().join("audit/audit.jsonl")).unwrap();
    let resources: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "allowed")
        .map(|r| r["resources"].clone())
        .collect();
    assert_eq!(
        resources,
        [
            serde_json::json!(["arn:aws:s3:::bucket-a/q1.csv"]),
            serde_json::json!(["arn:aws:s3:::bucket-a/q2.csv"]),
        ],
        "{audit}"
    );
    assert!(!audit.contains("bucket-b"), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_malformed_requests_get_a_4xx_and_a_closed_connection() {
    let (_pki, airlock) =
        started("limits:\n  max_header_bytes: 8192\n  max_header_count: 20\n").await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: sts.amazonaws.com\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = raw_request(&airlock, big.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let many: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: sts.amazonaws.com\r\n{many}\r\n");
    let answer = raw_request(&airlock, many.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    let answer = raw_request(&airlock, b"\x00\x01garbage\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // The proxy port itself: an oversized CONNECT.
    let mut stream = tokio::net::TcpStream::connect(airlock.proxy).await.unwrap();
    let answer = raw_exchange(
        &mut stream,
        big.replace("GET /", "CONNECT sts.amazonaws.com:443")
            .as_bytes(),
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Still serving.
    let answer = raw_request(
        &airlock,
        &raw_get(
            airlock.key(),
            "sts.amazonaws.com",
            "/small",
            "Connection: close\r\n",
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_header_client_is_cut_off_while_others_are_served() {
    let (_pki, airlock) = started("limits:\n  header_read_timeout: 1s\n").await;
    let mut slow = sts(&airlock, H1).await;
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"GET / HTTP/1.1\r\nHost: sts.amaz")
        .await
        .unwrap();

    // A slowloris on the proxy port itself (an unfinished CONNECT).
    let mut slow_connect = tokio::net::TcpStream::connect(airlock.proxy).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut slow_connect,
        b"CONNECT sts.amazonaws.com:443 HTTP/1.1\r\n",
    )
    .await
    .unwrap();

    // Meanwhile, others are served.
    let client = airlock.client(false);
    for _ in 0..5 {
        let response = airlock
            .send(
                &client,
                client.get("https://iam.amazonaws.com/small"),
                "iam",
            )
            .await;
        assert_eq!(response.status(), 200);
    }

    // The slow ones are closed after the header timeout (the 10 s bound only guards
    // against a hang; the configured timeout is 1 s).
    for stream in [
        &mut slow as &mut (dyn tokio::io::AsyncRead + Unpin + Send),
        &mut slow_connect,
    ] {
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "a slow client was never cut off");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_are_closed_at_every_stage() {
    let (_pki, airlock) =
        started("limits:\n  header_read_timeout: 1s\n  tls_handshake_timeout: 1s\n").await;
    // Connected, nothing sent.
    let mut silent = tokio::net::TcpStream::connect(airlock.proxy).await.unwrap();
    // CONNECT accepted, no TLS handshake.
    let mut no_tls = connect(airlock.proxy, "sts.amazonaws.com:443")
        .await
        .unwrap();
    // TLS done, no request ever.
    let mut no_request = sts(&airlock, H1).await;
    // A request answered, then an idle keep-alive connection. (A first request beforehand
    // fetches the agent's role session, so the answer comes within the 300 ms read.)
    let client = airlock.client(false);
    airlock
        .send(
            &client,
            client.get("https://sts.amazonaws.com/small"),
            "sts",
        )
        .await;
    let mut idle = sts(&airlock, H1).await;
    let answer = raw_exchange(
        &mut idle,
        &raw_get(airlock.key(), "sts.amazonaws.com", "/small", ""),
        Duration::from_millis(300),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let streams: [&mut (dyn tokio::io::AsyncRead + Unpin + Send); 4] =
        [&mut silent, &mut no_tls, &mut no_request, &mut idle];
    for (i, stream) in streams.into_iter().enumerate() {
        let mut rest = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "silent connection #{i} was never closed");
    }
    assert_eq!(
        airlock
            .metric("airlock_tls_handshake_failures_total{reason=\"timeout\"}")
            .await,
        1.0
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(airlock.metric("airlock_connections_open").await, 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn tunnelled_hosts_are_relayed_untouched() {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let extra = format!("tunnel:\n  - example.org\n{}", routes_to(up, "https"));
    let airlock = Airlock::start(&pki, &extra);
    // The agent sees the upstream's own certificate (signed by the test CA, which
    // Airlock's CA could never mint for example.org): the bytes were not intercepted.
    let mut tls = tls_through(
        airlock.proxy,
        "api.example.org",
        "api.example.org",
        &pki.ca_pem,
        H1,
    )
    .await
    .unwrap();
    let answer = raw_exchange(
        &mut tls,
        b"GET /small HTTP/1.1\r\nHost: api.example.org\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(airlock.metric("airlock_tunnels_total").await, 1.0);
    assert_eq!(
        airlock
            .metric("airlock_tls_handshakes_total{result=\"ok\"}")
            .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_limit_are_answered_503() {
    let (_pki, airlock) = started("limits:\n  max_connections: 2\n").await;
    let _a = sts(&airlock, H1).await;
    let _b = sts(&airlock, H1).await;
    let mut third = tokio::net::TcpStream::connect(airlock.proxy).await.unwrap();
    let answer = raw_exchange(&mut third, b"", Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too many connections"), "{answer}");
    assert_eq!(airlock.metric("airlock_connections_open").await, 2.0);
    assert_eq!(
        airlock
            .metric("airlock_connect_refused_total{reason=\"too_many_connections\"}")
            .await,
        1.0
    );
    // Closing one frees a slot.
    drop(_a);
    tokio::time::sleep(Duration::from_millis(300)).await;
    sts(&airlock, H1).await;
}
