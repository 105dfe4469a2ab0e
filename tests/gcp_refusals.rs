//! Google Cloud calls through the binary: intercepted, refused in Google's own error shape
//! (REST JSON with an `ErrorInfo`; gRPC trailers with status 16), and never forwarded,
//! whenever the credential is not an Airlock agent token: Google's own tokens, JWTs, API
//! keys, tokens Airlock did not issue, or none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use support::relay::CountingRelay;
use support::{Airlock, TestPki, raw_exchange, tls_through};

/// An Airlock whose Google hosts go through a counting relay to the echo upstream.
async fn started() -> (TestPki, CountingRelay, Airlock) {
    let pki = TestPki::new();
    let up = support::upstream::start_tls(&pki).await;
    let relay = CountingRelay::start(up).await;
    let airlock = Airlock::start(
        &pki,
        &format!(
            "upstream:\n  routes:\n    - host: \"*.googleapis.com\"\n      to: https://{}\n",
            relay.addr
        ),
    );
    (pki, relay, airlock)
}

/// The JSON body of a raw HTTP/1.1 answer.
fn json_body(answer: &str) -> serde_json::Value {
    let (_, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn google_rest_calls_get_google_shaped_401s_and_reach_nothing() {
    let (_pki, relay, airlock) = started().await;
    let ca = airlock.ca_pem();
    let cases = [
        (
            "Authorization: Bearer ya29.a0AfH6SMBrealLookingGoogleToken\r\n",
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "is a Google access token, not an Airlock agent token",
        ),
        (
            "",
            "CREDENTIALS_MISSING",
            "missing required authentication credential",
        ),
        (
            "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJzYSJ9.c2lnbmF0dXJl\r\n",
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "is a JWT",
        ),
        (
            "Authorization: Bearer airlock-st.AIRLAAAAAAAAAAAAAAAA.bm90LWEtbWFj\r\n",
            "ACCESS_TOKEN_INVALID",
            "not issued by this Airlock",
        ),
        (
            "Authorization: Bearer garbage\r\n",
            "ACCESS_TOKEN_INVALID",
            "not an Airlock agent token",
        ),
        (
            "x-goog-api-key: AIzaSyRealLookingApiKey\r\n",
            "CREDENTIALS_IN_URL_OR_API_KEY",
            "no Google API key",
        ),
    ];
    let mut counted = std::collections::HashMap::new();
    for (auth, reason, said) in cases {
        let mut tls = tls_through(
            airlock.proxy,
            "storage.googleapis.com",
            "storage.googleapis.com",
            &ca,
            &[b"http/1.1"],
        )
        .await
        .unwrap();
        let raw = format!(
            "GET /storage/v1/b?project=demo HTTP/1.1\r\nHost: storage.googleapis.com\r\n{auth}Connection: close\r\n\r\n"
        );
        let answer = raw_exchange(&mut tls, raw.as_bytes(), Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{answer}"
        );
        let error = &json_body(&answer)["error"];
        assert_eq!(error["code"], 401);
        assert_eq!(error["status"], "UNAUTHENTICATED");
        assert!(error["message"].as_str().unwrap().contains(said), "{error}");
        let info = &error["details"][0];
        assert_eq!(info["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
        assert_eq!(info["reason"], reason);
        assert_eq!(info["domain"], "airlock.dev");
        assert!(info["metadata"]["request_id"].is_string(), "{info}");
        let count = counted.entry(reason).or_insert(0.0);
        *count += 1.0;
        let sample = format!("airlock_auth_failures_total{{code=\"{reason}\"}}");
        assert_eq!(airlock.metric(&sample).await, *count, "{sample}");
    }
    assert_eq!(relay.connections(), 0, "a Google call reached the upstream");
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_calls_get_a_trailers_only_unauthenticated_status() {
    let (_pki, relay, airlock) = started().await;
    let mut sender = support::h2_through(&airlock, "pubsub.googleapis.com").await;
    // A Publish request: one length-prefixed (empty) protobuf message.
    let request =
        hyper::Request::post("https://pubsub.googleapis.com/google.pubsub.v1.Publisher/Publish")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", "Bearer ya29.not-an-airlock-token")
            .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
            .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["grpc-status"], "16", "{headers:?}");
    let message = headers["grpc-message"].to_str().unwrap();
    assert!(message.contains("is a Google access token"), "{message}");
    assert!(headers.contains_key("grpc-status-details-bin"));
    // Trailers-only: no message follows.
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty());
    assert_eq!(relay.connections(), 0);
}

/// The real gcloud CLI, pointed at Airlock by environment variables only, prints Airlock's
/// refusal and fails.
#[tokio::test(flavor = "multi_thread")]
async fn gcloud_prints_the_refusal() {
    let Ok(gcloud) = which("gcloud") else {
        panic!("gcloud is not installed: tests/run.sh expects the machine's Cloud SDK");
    };
    let (_pki, relay, airlock) = started().await;
    let home = tempfile::tempdir().unwrap();
    let token = home.path().join("token");
    std::fs::write(&token, "ya29.some-real-looking-token").unwrap();
    let proxy = format!("http://{}", airlock.proxy);
    let output = Command::new(gcloud)
        .args(["storage", "buckets", "list", "--project", "demo"])
        .env("CLOUDSDK_CONFIG", home.path().join("gcloud"))
        .env("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", &token)
        .env("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", airlock.ca_pem_path())
        .env("REQUESTS_CA_BUNDLE", airlock.ca_pem_path())
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "1")
        .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "1")
        .env("HTTPS_PROXY", &proxy)
        .env("https_proxy", &proxy)
        .env("NO_PROXY", "")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("is a Google access token, not an Airlock agent token"),
        "{stderr}"
    );
    assert_eq!(relay.connections(), 0);
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .ok_or(())
}
