//! Traffic through the real binary with real TLS: curl and a Rust client, HTTP/1.1 and
//! HTTP/2, streamed bodies, upstream routes and failures, metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use support::upstream::{self, echo, hex, pattern_byte};
use support::{Airlock, TestPki, routes_to};

fn header<'a>(echo: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    upstream::echoed_header(echo, name)
}

/// curl with the proxy and CA set the way an agent's environment sets them.
fn curl(airlock: &Airlock, args: &[&str]) -> (String, String) {
    let output = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--proxy",
            &format!("http://{}", airlock.proxy),
        ])
        .arg("--cacert")
        .arg(airlock.ca_pem_path())
        .args(args)
        .output()
        .expect("run curl");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_reaches_the_upstream_over_http1_and_http2_with_the_host_kept() {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let airlock = Airlock::start(&pki, &routes_to(up, "https"));

    for (flag, version) in [("--http1.1", "HTTP/1.1"), ("--http2", "HTTP/2")] {
        let auth = airlock.curl_auth("sts");
        let mut args: Vec<&str> = auth.iter().map(String::as_str).collect();
        args.extend([
            flag,
            "-w",
            "\n%{http_version}",
            "https://sts.amazonaws.com/echo?Action=GetCallerIdentity",
        ]);
        let (out, err) = curl(&airlock, &args);
        let (body, agent_version) = out
            .rsplit_once('\n')
            .unwrap_or_else(|| panic!("curl: {err}"));
        let seen = echo(body);
        assert_eq!(seen["uri"], "/echo?Action=GetCallerIdentity", "{flag}");
        assert_eq!(
            header(&seen, "host"),
            ["sts.amazonaws.com"],
            "{flag}: Host kept exactly"
        );
        assert_eq!(
            agent_version,
            if flag == "--http2" { "2" } else { "1.1" },
            "{version} toward the agent"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rust_client_works_over_both_protocols_and_plain_http_routes() {
    let pki = TestPki::new();
    let up_tls = upstream::start_tls(&pki).await;
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_plain = plain.local_addr().unwrap();
    upstream::serve_plain(plain);
    let extra = format!(
        "upstream:\n  routes:\n    - host: \"moto.us-east-1.amazonaws.com\"\n      to: http://{up_plain}\n    - host: \"*.amazonaws.com\"\n      to: https://{up_tls}\n"
    );
    let airlock = Airlock::start(&pki, &extra);

    for http2 in [false, true] {
        let client = airlock.client(http2);
        let response = airlock
            .send(
                &client,
                client
                    .post("https://iam.amazonaws.com/")
                    .body("Action=ListRoles"),
                "iam",
            )
            .await;
        let expected = if http2 {
            reqwest::Version::HTTP_2
        } else {
            reqwest::Version::HTTP_11
        };
        assert_eq!(response.version(), expected);
        assert_eq!(response.status(), 200);
        let seen = echo(&response.text().await.unwrap());
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["body_len"], 16);
        assert_eq!(header(&seen, "host"), ["iam.amazonaws.com"]);

        // An http:// route: same Host, plain HTTP to the routed address.
        let response = airlock
            .send(
                &client,
                client.get("https://moto.us-east-1.amazonaws.com/x"),
                "moto",
            )
            .await;
        let seen = echo(&response.text().await.unwrap());
        assert_eq!(seen["version"], "HTTP/1.1");
        assert_eq!(header(&seen, "host"), ["moto.us-east-1.amazonaws.com"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn expect_100_continue_is_answered_and_not_forwarded() {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let airlock = Airlock::start(&pki, &routes_to(up, "https"));
    let file = airlock.dir.path().join("upload.bin");
    std::fs::write(&file, vec![7u8; 3 * 1024 * 1024]).unwrap();

    // curl 7.88 signs `-T` uploads over an empty payload; `--data-binary` hashes the body.
    // It also signs `Expect`, which Airlock answers itself and re-signs without.
    let upload = format!("@{}", file.display());
    let auth = airlock.curl_auth("s3");
    let mut args: Vec<&str> = auth.iter().map(String::as_str).collect();
    args.extend([
        "--http1.1",
        "-X",
        "PUT",
        "-H",
        "Expect: 100-continue",
        "--expect100-timeout",
        "20",
        "--data-binary",
        &upload,
        "-v",
        "https://s3.us-east-1.amazonaws.com/bucket/key",
    ]);
    let (out, err) = curl(&airlock, &args);
    assert!(
        err.contains("HTTP/1.1 100 Continue"),
        "no 100 Continue from Airlock: {err}"
    );
    let seen = echo(&out);
    assert_eq!(seen["body_len"], 3 * 1024 * 1024);
    assert!(header(&seen, "expect").is_empty(), "Expect leaked upstream");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_megabytes_stream_both_ways_in_bounded_memory() {
    const SIZE: u64 = 200 * 1024 * 1024;
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let airlock = Airlock::start(&pki, &routes_to(up, "https"));
    let baseline = airlock.peak_rss();

    for http2 in [false, true] {
        let client = airlock.client(http2);
        // Download: verify every byte as it arrives, keep nothing.
        let response = airlock
            .send(
                &client,
                client.get(format!("https://s3.amazonaws.com/bytes/{SIZE}")),
                "s3",
            )
            .await;
        assert_eq!(response.status(), 200);
        let mut stream = response.bytes_stream();
        let mut offset = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            for (i, b) in chunk.iter().enumerate() {
                assert_eq!(
                    *b,
                    pattern_byte(offset + i as u64),
                    "byte {} corrupted",
                    offset + i as u64
                );
            }
            offset += chunk.len() as u64;
        }
        assert_eq!(offset, SIZE);

        // Upload: a generated stream; the upstream hashes what it receives.
        let mut expected = Sha256::new();
        let chunk = vec![0x5au8; 1024 * 1024];
        for _ in 0..SIZE / chunk.len() as u64 {
            expected.update(&chunk);
        }
        let chunks = futures_util::stream::iter(
            (0..SIZE / chunk.len() as u64).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
        );
        let response = airlock
            .send(
                &client,
                client
                    .put("https://s3.amazonaws.com/bucket/big")
                    .body(reqwest::Body::wrap_stream(chunks)),
                "s3",
            )
            .await;
        let seen = echo(&response.text().await.unwrap());
        assert_eq!(seen["body_len"], SIZE);
        assert_eq!(seen["body_sha256"], hex(&expected.finalize()));
    }

    let growth = airlock.peak_rss().saturating_sub(baseline);
    assert!(
        growth < 64 * 1024 * 1024,
        "Airlock's peak RSS grew by {} MiB while streaming 800 MiB: bodies are being buffered",
        growth / (1024 * 1024)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_failures_are_502_and_504_with_a_clear_body() {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let extra = format!(
        "upstream:\n  response_timeout: 1s\n  routes:\n    - host: \"dead.us-east-1.amazonaws.com\"\n      to: https://{closed}\n    - host: \"*.amazonaws.com\"\n      to: https://{up}\n"
    );
    let airlock = Airlock::start(&pki, &extra);
    let client = airlock.client(false);

    let response = airlock
        .send(
            &client,
            client.get("https://dead.us-east-1.amazonaws.com/"),
            "dead",
        )
        .await;
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["x-airlock-error"], "UpstreamUnreachable");
    let body = response.text().await.unwrap();
    assert!(
        body.contains("cannot reach the upstream for dead.us-east-1.amazonaws.com"),
        "{body}"
    );

    let response = airlock
        .send(
            &client,
            client.get("https://sts.amazonaws.com/slow/3000"),
            "sts",
        )
        .await;
    assert_eq!(response.status(), 504);
    let body = response.text().await.unwrap();
    assert!(body.contains("sent no response within 1s"), "{body}");

    assert_eq!(
        airlock
            .metric("airlock_upstream_errors_total{kind=\"connect\"}")
            .await,
        1.0
    );
    assert_eq!(
        airlock
            .metric("airlock_upstream_errors_total{kind=\"timeout\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_follow_the_traffic() {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let airlock = Airlock::start(&pki, &routes_to(up, "https"));
    let (status, text) = airlock.control_get("/metrics").await;
    assert_eq!(status, 200);
    let before = |sample: &str| support::metric_value(&text, sample);
    assert_eq!(
        before("airlock_requests_total{class=\"2xx\",host=\"sts.amazonaws.com\"}"),
        0.0
    );

    let client = airlock.client(false);
    for _ in 0..3 {
        airlock
            .send(
                &client,
                client.get("https://sts.amazonaws.com/small"),
                "sts",
            )
            .await
            .text()
            .await
            .unwrap();
    }
    let connections = airlock.metric("airlock_connections_total").await;
    let _ = support::connect(airlock.proxy, "example.com:443").await;

    assert_eq!(
        airlock
            .metric("airlock_requests_total{class=\"2xx\",host=\"sts.amazonaws.com\"}")
            .await,
        3.0
    );
    assert_eq!(
        airlock.metric("airlock_connections_total").await,
        connections + 1.0
    );
    // The client normally reuses one connection, but its pool may open a second
    // one when a request starts before the previous connection is handed back:
    // every accepted connection is one handshake, and only the first one for the
    // host misses the certificate cache.
    assert_eq!(
        airlock
            .metric("airlock_tls_handshakes_total{result=\"ok\"}")
            .await,
        connections
    );
    assert_eq!(airlock.metric("airlock_cert_cache_misses_total").await, 1.0);
    let hits = airlock.metric("airlock_cert_cache_hits_total").await;
    assert_eq!(hits, connections - 1.0);
    assert_eq!(
        airlock
            .metric("airlock_upstream_duration_seconds_count")
            .await,
        3.0
    );
    assert_eq!(
        airlock
            .metric("airlock_connect_refused_total{reason=\"not_intercepted\"}")
            .await,
        1.0
    );

    // A second connection to the same host is served from the certificate cache.
    let client = airlock.client(false);
    airlock
        .send(
            &client,
            client.get("https://sts.amazonaws.com/small"),
            "sts",
        )
        .await;
    assert_eq!(
        airlock.metric("airlock_cert_cache_hits_total").await,
        hits + 1.0
    );
    assert_eq!(airlock.metric("airlock_cert_cache_misses_total").await, 1.0);

    let (status, ready) = airlock.control_get("/readyz").await;
    assert_eq!(
        (status, ready.contains("\"ready\":true")),
        (200, true),
        "{ready}"
    );
    assert_eq!(
        airlock.control_get("/healthz").await,
        (200, "ok\n".to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn access_log_is_json_with_the_path_but_never_the_query() {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let airlock = Airlock::start(&pki, &routes_to(up, "https"));
    let client = airlock.client(false);
    let url = support::signing::presign(
        "https://mybucket.s3.amazonaws.com/report.csv",
        airlock.key(),
        std::time::Duration::from_secs(300),
    );
    let signature = url.split("X-Amz-Signature=").nth(1).unwrap().to_string();
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let logs = airlock.logs();
    let line = logs
        .iter()
        .find(|l| l.contains("\"request\""))
        .expect("an access log line");
    let record: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(record["http.path"], "/report.csv");
    assert_eq!(record["http.status"], 200);
    assert_eq!(record["http.host"], "mybucket.s3.amazonaws.com");
    assert_eq!(record["agent.name"], support::TEST_AGENT);
    assert_eq!(record["call.cloud"], "aws");
    assert_eq!(record["call.operation"], "GetObject");
    assert!(
        !logs.iter().any(|l| l.contains(&signature)),
        "a presigned signature was logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_that_go_silent_are_aborted_after_the_idle_timeout() {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let airlock = Airlock::start(
        &pki,
        &format!(
            "{}limits:\n  body_idle_timeout: 1s\n",
            routes_to(up, "https")
        ),
    );
    let client = airlock.client(false);

    // Response side: the upstream sends 1000 bytes, then stalls.
    let response = airlock
        .send(
            &client,
            client.get("https://s3.amazonaws.com/stall/1000"),
            "s3",
        )
        .await;
    assert_eq!(response.status(), 200);
    let body = tokio::time::timeout(std::time::Duration::from_secs(10), response.bytes()).await;
    assert!(
        body.expect("the stalled response was never aborted")
            .is_err(),
        "a stalled body completed"
    );

    // Request side: the agent sends a little, then stalls; Airlock gives up on it.
    let stalled = futures_util::stream::once(async { Ok::<_, std::io::Error>(vec![1u8; 1000]) })
        .chain(futures_util::stream::pending());
    let mut request = client
        .put("https://s3.amazonaws.com/bucket/key")
        .body(reqwest::Body::wrap_stream(stalled))
        .build()
        .unwrap();
    support::signing::sign_now(&mut request, airlock.key(), "s3");
    let sent = client.execute(request);
    let response = tokio::time::timeout(std::time::Duration::from_secs(10), sent)
        .await
        .expect("the stalled upload was never aborted");
    assert!(response.is_err() || response.unwrap().status() == 502);
}

#[tokio::test(flavor = "multi_thread")]
async fn minted_leaves_live_as_long_as_configured() {
    let pki = TestPki::new();
    let airlock = Airlock::start(&pki, "ca:\n  leaf_validity: 2h\n");
    let ca = airlock.ca_pem();
    let tls = support::tls_through(
        airlock.proxy,
        "sts.amazonaws.com",
        "sts.amazonaws.com",
        &ca,
        &[b"http/1.1"],
    )
    .await
    .unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).unwrap();
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert_eq!(lifetime, 3 * 3600, "2h of validity plus 1h back-dating");
}
