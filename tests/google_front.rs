//! The local Google of the end-to-end tests (tests/support/google_front/), proven on its
//! own, without Airlock: real TLS to its `*.googleapis.com` certificate, the token check,
//! the storage and Pub/Sub emulators behind it (REST and gRPC), its fakes, and the real
//! clients an agent uses (google-cloud-storage, google-cloud-pubsub over gRPC, gcloud).
//!
//!     cargo test --test google_front
//!
//! Needs the test Python (`bash tests/run.sh` installs tests/requirements.txt into .venv;
//! or point AIRLOCK_TEST_PYTHON at one) and the gcloud CLI with its Pub/Sub emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use support::google_front::{Apis, Caller, LocalGoogle, accept_token};
use support::{TestPki, python_or_skip};

const TOKEN: &str = "ya29.front-test-token";
const SA: &str = "agent-runner@airlock-test.iam.gserviceaccount.com";

async fn front(apis: Apis) -> LocalGoogle {
    LocalGoogle::start(&TestPki::new(), accept_token(TOKEN, SA), apis).await
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {status} {text}"));
    (status, value)
}

/// Deterministic bytes, every value included.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// A gRPC request (one length-prefixed message) over HTTP/2 through real TLS to the front,
/// as `pubsub.googleapis.com`: the answer's head and trailers.
async fn grpc_call(
    front: &LocalGoogle,
    ca_pem: &str,
    path: &str,
    message: &[u8],
    token: Option<&str>,
) -> (http::HeaderMap, Option<http::HeaderMap>) {
    let tcp = tokio::net::TcpStream::connect(front.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("pubsub.googleapis.com").unwrap();
    let tls = tokio_rustls::TlsConnector::from(support::client_tls(ca_pem, &[b"h2"]))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    let mut request = http::Request::post(format!("https://pubsub.googleapis.com{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = sender
        .send_request(request.body(Full::new(Bytes::from(framed))).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    (parts.headers, collected.trailers().cloned())
}

/// A protobuf message with one string field (`name`, field 1): Topic, GetTopicRequest.
fn name_message(name: &str) -> Vec<u8> {
    let mut message = vec![0x0a, name.len() as u8];
    message.extend_from_slice(name.as_bytes());
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_calls_get_googles_401_and_never_reach_an_emulator() {
    if python_or_skip("refused_calls_get_googles_401_and_never_reach_an_emulator").is_none() {
        return;
    }
    let pki = TestPki::new();
    let front = LocalGoogle::start(
        &pki,
        accept_token(TOKEN, SA),
        Apis::STORAGE.and(Apis::PUBSUB),
    )
    .await;
    for http2 in [false, true] {
        let client = front.client(http2);
        let cases: [(Option<&str>, &str, &str); 3] = [
            (None, "CREDENTIALS_MISSING", "missing required"),
            (
                Some("Bearer ya29.stolen"),
                "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                "invalid",
            ),
            (
                Some("Basic dXNlcjpwYXNz"),
                "ACCESS_TOKEN_TYPE_UNSUPPORTED",
                "invalid",
            ),
        ];
        for (auth, reason, wording) in cases {
            let mut request = client
                .post("https://storage.googleapis.com/storage/v1/b?project=airlock-test")
                .json(&json!({"name": "refused-bucket"}));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.headers()["www-authenticate"],
                "Bearer realm=\"https://accounts.google.com/\""
            );
            let (status, body) = json_of(response).await;
            assert_eq!(status, 401, "{body}");
            let error = &body["error"];
            assert_eq!(error["code"], 401);
            assert_eq!(error["status"], "UNAUTHENTICATED");
            assert!(
                error["message"].as_str().unwrap().contains(wording),
                "{error}"
            );
            assert_eq!(error["details"][0]["reason"], reason);
        }
    }
    // gRPC: trailers-only, grpc-status 16.
    let topic = "projects/airlock-test/topics/refused-topic";
    let (head, trailers) = grpc_call(
        &front,
        &pki.ca_pem,
        "/google.pubsub.v1.Publisher/CreateTopic",
        &name_message(topic),
        Some("ya29.stolen"),
    )
    .await;
    assert_eq!(head["grpc-status"], "16", "{head:?}");
    assert!(
        head["grpc-message"]
            .to_str()
            .unwrap()
            .starts_with("Request had invalid authentication credentials."),
        "{head:?}"
    );
    assert!(trailers.is_none(), "trailers-only: {trailers:?}");

    let seen = front.requests();
    assert_eq!(seen.len(), 7, "{seen:#?}");
    assert!(
        seen.iter().all(|s| s.refused() && !s.forwarded),
        "{seen:#?}"
    );
    assert_eq!(seen[0].caller, Caller::Refused { token: None });
    assert_eq!(
        seen[1].caller,
        Caller::Refused {
            token: Some("ya29.stolen".into())
        }
    );
    assert_eq!(
        seen[2].caller,
        Caller::Refused {
            token: Some("Basic dXNlcjpwYXNz".into())
        }
    );
    assert!(!seen[0].http2 && seen[3].http2);
    assert!(seen[6].grpc && seen[6].path == "/google.pubsub.v1.Publisher/CreateTopic");
    assert_eq!(seen[6].host, "pubsub.googleapis.com");

    // Nothing refused was done: with the right token, neither the bucket nor the topic
    // exists; the same topic can then be created over gRPC with the accepted token.
    let client = front.client(false);
    let response = client
        .get("https://storage.googleapis.com/storage/v1/b/refused-bucket")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["error"]["message"],
        "The specified bucket does not exist."
    );
    let (head, trailers) = grpc_call(
        &front,
        &pki.ca_pem,
        "/google.pubsub.v1.Publisher/GetTopic",
        &name_message(topic),
        Some(TOKEN),
    )
    .await;
    let status = trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status"))
        .or(head.get("grpc-status"))
        .unwrap();
    assert_eq!(status, "5", "NOT_FOUND: {head:?} {trailers:?}");
    let (_, trailers) = grpc_call(
        &front,
        &pki.ca_pem,
        "/google.pubsub.v1.Publisher/CreateTopic",
        &name_message(topic),
        Some(TOKEN),
    )
    .await;
    assert_eq!(trailers.unwrap()["grpc-status"], "0");
    let seen = front.requests();
    assert!(
        seen[7..]
            .iter()
            .all(|s| s.acting_as() == Some(SA) && s.forwarded),
        "{seen:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unserved_hosts_and_apis_get_google_shaped_404s() {
    let front = front(Apis::NONE).await;
    let client = front.client(true);
    for url in [
        "https://compute.googleapis.com/compute/v1/projects/p/zones",
        "https://storage.googleapis.com/storage/v1/b?project=p",
    ] {
        let response = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
        let (status, body) = json_of(response).await;
        assert_eq!(status, 404, "{url}: {body}");
        assert_eq!(body["error"]["status"], "NOT_FOUND", "{body}");
    }
    let seen = front.requests();
    assert_eq!(seen[0].host, "compute.googleapis.com");
    assert!(
        seen.iter()
            .all(|s| s.acting_as() == Some(SA) && !s.forwarded)
    );
}

/// The JSON API by hand: every upload kind, the front's rewrites and fakes.
#[tokio::test(flavor = "multi_thread")]
async fn storage_json_api_uploads_and_ranged_downloads_keep_bytes_intact() {
    if python_or_skip("storage_json_api_uploads_and_ranged_downloads_keep_bytes_intact").is_none() {
        return;
    }
    let front = front(Apis::STORAGE).await;
    let client = front.client(true);
    let api = "https://storage.googleapis.com";
    let bucket = "front-rest-bucket";
    let (status, created) = json_of(
        client
            .post(format!("{api}/storage/v1/b?project=airlock-test"))
            .bearer_auth(TOKEN)
            .json(&json!({"name": bucket}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["name"], bucket);

    // uploadType=media
    let small = pattern(3000);
    let (status, object) = json_of(
        client
            .post(format!(
                "{api}/upload/storage/v1/b/{bucket}/o?uploadType=media&name=a%2Fmedia.bin"
            ))
            .bearer_auth(TOKEN)
            .header("content-type", "application/octet-stream")
            .body(small.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{object}");
    assert_eq!(object["size"], "3000");
    // mediaLink comes back as https on the real host name.
    let media_link = object["mediaLink"].as_str().unwrap();
    assert!(
        media_link.starts_with("https://storage.googleapis.com/download/storage/v1/b/"),
        "{media_link}"
    );
    let fetched = client
        .get(media_link)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert!(fetched.headers().contains_key("x-goog-hash"));
    assert_eq!(fetched.bytes().await.unwrap(), small);

    // uploadType=resumable at gcloud's /resumable/upload/ path, in three chunks.
    let large = pattern(3 * 1024 * 1024 + 5);
    let start = client
        .post(format!(
            "{api}/resumable/upload/storage/v1/b/{bucket}/o?uploadType=resumable"
        ))
        .bearer_auth(TOKEN)
        .header("x-upload-content-type", "application/octet-stream")
        .json(&json!({"name": "a/large.bin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 200);
    let session = start.headers()["location"].to_str().unwrap().to_string();
    assert!(
        session.starts_with("https://storage.googleapis.com/upload/storage/v1/b/"),
        "{session}"
    );
    let chunk = 1024 * 1024;
    let mut offset = 0;
    let mut last = None;
    while offset < large.len() {
        let end = (offset + chunk).min(large.len());
        let response = client
            .put(&session)
            .bearer_auth(TOKEN)
            .header(
                "content-range",
                format!("bytes {offset}-{}/{}", end - 1, large.len()),
            )
            .body(large[offset..end].to_vec())
            .send()
            .await
            .unwrap();
        if end < large.len() {
            assert_eq!(response.status(), 308, "chunk ending {end}");
            assert_eq!(
                response.headers()["range"],
                format!("bytes=0-{}", end - 1).as_str()
            );
        } else {
            last = Some(json_of(response).await);
        }
        offset = end;
    }
    let (status, object) = last.unwrap();
    assert_eq!(status, 200, "{object}");
    assert_eq!(object["size"], large.len().to_string());

    // Ranged downloads, both ways the API offers.
    for url in [
        format!("{api}/download/storage/v1/b/{bucket}/o/a%2Flarge.bin?alt=media"),
        format!("{api}/storage/v1/b/{bucket}/o/a%2Flarge.bin?alt=media"),
    ] {
        let response = client
            .get(&url)
            .bearer_auth(TOKEN)
            .header("range", "bytes=1048570-2097160")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 206, "{url}");
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes 1048570-2097160/{}", large.len()).as_str()
        );
        assert_eq!(response.bytes().await.unwrap(), large[1048570..=2097160]);
    }
    let whole = client
        .get(format!(
            "{api}/storage/v1/b/{bucket}/o/a%2Flarge.bin?alt=media"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(whole == large, "the large object changed");

    // uploadType=multipart, then list.
    let boundary = "front-test-boundary";
    let mut body = format!(
        "--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{{\"name\":\"a/multi.bin\"}}\r\n--{boundary}\r\ncontent-type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&small);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (status, object) = json_of(
        client
            .post(format!(
                "{api}/upload/storage/v1/b/{bucket}/o?uploadType=multipart"
            ))
            .bearer_auth(TOKEN)
            .header(
                "content-type",
                format!("multipart/related; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{object}");
    let multi = client
        .get(format!(
            "{api}/storage/v1/b/{bucket}/o/a%2Fmulti.bin?alt=media"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(multi == small, "the multipart object changed");
    let (_, list) = json_of(
        client
            .get(format!("{api}/storage/v1/b/{bucket}/o?prefix=a/"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a/large.bin", "a/media.bin", "a/multi.bin"]);

    // The front's fakes, and the JSON API's error shape for what is missing.
    let (status, layout) = json_of(
        client
            .get(format!("{api}/storage/v1/b/{bucket}/storageLayout"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(layout["kind"], "storage#storageLayout");
    assert_eq!(layout["bucket"], bucket);
    assert_eq!(layout["hierarchicalNamespace"]["enabled"], false);
    let (status, folders) = json_of(
        client
            .get(format!("{api}/storage/v1/b/{bucket}/managedFolders"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, folders),
        (200, json!({"kind": "storage#managedFolders"}))
    );
    let (status, missing) = json_of(
        client
            .get(format!("{api}/storage/v1/b/{bucket}/o/nope%2Fx.bin"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        missing,
        json!({"error": {"code": 404, "message": format!("No such object: {bucket}/nope/x.bin"),
            "errors": [{"message": format!("No such object: {bucket}/nope/x.bin"),
                "domain": "global", "reason": "notFound"}]}})
    );
    let (status, _) = json_of(
        client
            .get("https://storage.googleapis.com/storage/v1/b/no-such-bucket/storageLayout")
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);

    let seen = front.requests();
    assert!(seen.iter().all(|s| s.acting_as() == Some(SA) && s.http2));
    assert!(
        seen.iter()
            .any(|s| s.path.starts_with("/resumable/upload/storage/v1/b/") && s.forwarded)
    );
    assert_eq!(
        seen.iter()
            .filter(|s| s.method == "PUT" && s.path.starts_with("/upload/storage/v1/b/"))
            .count(),
        4
    );
}

/// Run `tests/gcp/front_clients.py ARGS` as an agent would: proxy and CA from the
/// environment, the token in AIRLOCK_FRONT_TOKEN. Its JSON line.
async fn python_client(python: &std::path::Path, front: &LocalGoogle, args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gcp/front_clients.py");
    let home = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(python)
        .arg(script)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("HTTPS_PROXY", front.proxy_url())
        .env("https_proxy", front.proxy_url())
        .env("REQUESTS_CA_BUNDLE", front.ca_file())
        .env("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", front.ca_file())
        .env("AIRLOCK_FRONT_TOKEN", TOKEN)
        .env("GCE_METADATA_HOST", "metadata.invalid")
        .env("NO_GCE_CHECK", "True")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), output)
        .await
        .expect("front_clients.py finished")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "front_clients.py {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn google_cloud_storage_client_uploads_and_downloads_through_the_front() {
    let Some(python) =
        python_or_skip("google_cloud_storage_client_uploads_and_downloads_through_the_front")
    else {
        return;
    };
    let front = front(Apis::STORAGE).await;
    let out = python_client(&python, &front, &["storage", "front-python-bucket"]).await;
    assert_eq!(out["names"], json!(["dir/large.bin", "dir/small.bin"]));
    let seen = front.requests();
    assert!(seen.iter().all(|s| s.acting_as() == Some(SA)), "{seen:#?}");
    let chunks = seen
        .iter()
        .filter(|s| s.method == "PUT" && s.query.contains("upload_id="))
        .count();
    assert_eq!(chunks, 6, "5 MiB + 123 B in 1 MiB chunks: {seen:#?}");
    assert!(
        seen.iter()
            .any(|s| s.query.contains("uploadType=multipart"))
    );
    assert!(
        seen.iter()
            .any(|s| s.query.contains("uploadType=resumable"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_python_client_streams_pulls_and_acks_over_grpc_through_the_front() {
    let Some(python) =
        python_or_skip("pubsub_python_client_streams_pulls_and_acks_over_grpc_through_the_front")
    else {
        return;
    };
    let front = front(Apis::PUBSUB).await;
    let out = python_client(&python, &front, &["pubsub", "airlock-test"]).await;
    assert_eq!(out["streamed"], 3);
    assert_eq!(out["pulled"], 4);
    let seen = front.requests();
    assert!(seen.iter().all(|s| s.acting_as() == Some(SA)), "{seen:#?}");
    assert!(seen.iter().all(|s| s.grpc && s.http2 && s.forwarded));
    let called = |method: &str| {
        seen.iter()
            .filter(|s| s.path == format!("/google.pubsub.v1.{method}"))
            .count()
    };
    assert!(called("Subscriber/StreamingPull") >= 1, "{seen:#?}");
    assert!(called("Subscriber/Acknowledge") >= 2, "{seen:#?}");
    assert_eq!(called("Publisher/Publish"), 4, "{seen:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_rest_publish_and_pull() {
    let front = front(Apis::PUBSUB).await;
    let client = front.client(false);
    let api = "https://pubsub.googleapis.com/v1/projects/airlock-test";
    let send = |method: reqwest::Method, path: &str, body: Value| {
        client
            .request(method, format!("{api}/{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let (status, topic) = json_of(
        send(reqwest::Method::PUT, "topics/rest-orders", json!({}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{topic}");
    assert_eq!(topic["name"], "projects/airlock-test/topics/rest-orders");
    let (status, _) = json_of(
        send(
            reqwest::Method::PUT,
            "subscriptions/rest-worker",
            json!({"topic": "projects/airlock-test/topics/rest-orders"}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, published) = json_of(
        send(
            reqwest::Method::POST,
            "topics/rest-orders:publish",
            json!({"messages": [{"data": "aGVsbG8=", "attributes": {"k": "v"}}]}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{published}");
    let (status, pulled) = json_of(
        send(
            reqwest::Method::POST,
            "subscriptions/rest-worker:pull",
            json!({"maxMessages": 5, "returnImmediately": false}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{pulled}");
    let message = &pulled["receivedMessages"][0];
    assert_eq!(message["message"]["data"], "aGVsbG8=");
    assert_eq!(message["message"]["messageId"], published["messageIds"][0]);
    let (status, _) = json_of(
        send(
            reqwest::Method::POST,
            "subscriptions/rest-worker:acknowledge",
            json!({"ackIds": [message["ackId"]]}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let seen = front.requests();
    assert!(
        seen.iter()
            .all(|s| s.acting_as() == Some(SA) && s.forwarded && !s.http2)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_policies_are_read_modify_written_with_etags() {
    let front = front(Apis::NONE).await;
    let client = front.client(false);
    let call = |version: &str, verb: &str, body: Value| {
        client
            .post(format!(
                "https://cloudresourcemanager.googleapis.com/{version}/projects/airlock-test:{verb}"
            ))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let (status, empty) = json_of(
        call(
            "v1",
            "getIamPolicy",
            json!({"options": {"requestedPolicyVersion": 3}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &empty),
        (200, &json!({"version": 1, "etag": "ACAB"}))
    );

    let binding =
        json!({"role": "roles/storage.admin", "members": [format!("serviceAccount:{SA}")]});
    let (status, set) = json_of(
        call(
            "v1",
            "setIamPolicy",
            json!({"policy": {"version": 3, "etag": "ACAB", "bindings": [binding]}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["bindings"], json!([binding]));
    let etag = set["etag"].as_str().unwrap().to_string();
    assert_ne!(etag, "ACAB");
    assert_eq!(front.iam_policy("airlock-test"), set);

    // A writer that read before that change is refused.
    let (status, stale) = json_of(
        call(
            "v3",
            "setIamPolicy",
            json!({"policy": {"etag": "ACAB", "bindings": []}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 409, "{stale}");
    assert_eq!(stale["error"]["status"], "ABORTED");
    assert_eq!(front.iam_policy("airlock-test"), set);

    // v3 reads the same policy; a bad role is refused; another project is separate.
    let (_, read) = json_of(call("v3", "getIamPolicy", json!({})).await.unwrap()).await;
    assert_eq!(read, set);
    let (status, bad) = json_of(
        call(
            "v1",
            "setIamPolicy",
            json!({"policy": {"etag": etag, "bindings": [{"role": "owner", "members": ["user:a@example.com"]}]}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(front.iam_policy("other")["etag"], "ACAB");
    let seeded = front.seed_iam_policy(
        "other",
        json!({"etag": "stale", "bindings": [{"role": "roles/owner", "members": ["user:dev@example.com"]}]}),
    );
    assert_eq!(seeded["bindings"][0]["role"], "roles/owner");
    let (_, read) = json_of(
        client
            .post("https://cloudresourcemanager.googleapis.com/v1/projects/other:getIamPolicy")
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(read, seeded);
    let (status, _) = json_of(
        client
            .get("https://cloudresourcemanager.googleapis.com/v1/projects/airlock-test")
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn firestore_rest_goes_to_the_emulator_as_its_owner() {
    let front = front(Apis::FIRESTORE).await;
    let client = front.client(true);
    let docs =
        "https://firestore.googleapis.com/v1/projects/airlock-test/databases/(default)/documents";
    let (status, created) = json_of(
        client
            .post(format!("{docs}/orders?documentId=o1"))
            .bearer_auth(TOKEN)
            .json(&json!({"fields": {"qty": {"integerValue": "3"}}}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let (status, read) = json_of(
        client
            .get(format!("{docs}/orders/o1"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["fields"]["qty"]["integerValue"], "3");
}

/// The real gcloud as an agent runs it: the proxy from the environment, a token file, the
/// test CA. gcloud 528 needs the CA twice: `core/custom_ca_certs_file`, and
/// `REQUESTS_CA_BUNDLE` for its requests transport, which loses the session's CA when the
/// proxy comes from the environment (certificate verify failed without it).
fn gcloud(front: &LocalGoogle, dir: &std::path::Path, token: &str) -> tokio::process::Command {
    let token_file = dir.join(format!("token-{}", token.len()));
    std::fs::write(&token_file, token).unwrap();
    let mut command = tokio::process::Command::new("gcloud");
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("CLOUDSDK_CONFIG", dir.join("gcloud"))
        .env("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", &token_file)
        .env("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", front.ca_file())
        .env("REQUESTS_CA_BUNDLE", front.ca_file())
        .env("HTTPS_PROXY", front.proxy_url())
        .env("CLOUDSDK_CORE_PROJECT", "airlock-test")
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true")
        .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true")
        // Resumable from 1 MiB (default 8 MiB), so a small file takes gcloud's resumable path.
        .env("CLOUDSDK_STORAGE_RESUMABLE_THRESHOLD", "1MiB")
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Run gcloud `args`; (success, stdout, stderr).
async fn run_gcloud(mut command: tokio::process::Command, args: &[&str]) -> (bool, String, String) {
    let output = tokio::time::timeout(Duration::from_secs(120), command.args(args).output())
        .await
        .unwrap_or_else(|_| panic!("gcloud {args:?} did not finish"))
        .expect("run gcloud (the gcloud CLI is needed for these tests)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn gcloud_storage_pubsub_and_iam_commands_work_against_the_front() {
    if python_or_skip("gcloud_storage_pubsub_and_iam_commands_work_against_the_front").is_none() {
        return;
    }
    let front = front(Apis::STORAGE.and(Apis::PUBSUB)).await;
    let dir = tempfile::tempdir().unwrap();
    let big = pattern(3 * 1024 * 1024 + 17);
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("small.txt"), "hello\n").unwrap();
    let ok = |args: &'static [&'static str]| {
        let command = gcloud(&front, dir.path(), TOKEN);
        async move {
            let (success, stdout, stderr) = run_gcloud(command, args).await;
            assert!(success, "gcloud {args:?} failed:\n{stdout}\n{stderr}");
            stdout
        }
    };
    ok(&["storage", "buckets", "create", "gs://gcloud-bucket"]).await;
    ok(&[
        "storage",
        "cp",
        "big.bin",
        "small.txt",
        "gs://gcloud-bucket/up/",
    ])
    .await;
    let listed = ok(&["storage", "ls", "gs://gcloud-bucket/up/"]).await;
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [
            "gs://gcloud-bucket/up/big.bin",
            "gs://gcloud-bucket/up/small.txt"
        ]
    );
    ok(&["storage", "cp", "gs://gcloud-bucket/up/big.bin", "down.bin"]).await;
    assert!(
        std::fs::read(dir.path().join("down.bin")).unwrap() == big,
        "bytes changed"
    );
    let buckets = ok(&["storage", "buckets", "list", "--format=value(name)"]).await;
    assert!(buckets.lines().any(|b| b == "gcloud-bucket"), "{buckets}");
    ok(&["storage", "rm", "--recursive", "gs://gcloud-bucket"]).await;
    ok(&["pubsub", "topics", "create", "gcloud-topic"]).await;
    let topics = ok(&["pubsub", "topics", "list", "--format=value(name)"]).await;
    assert!(
        topics
            .lines()
            .any(|t| t == "projects/airlock-test/topics/gcloud-topic"),
        "{topics}"
    );
    ok(&[
        "projects",
        "add-iam-policy-binding",
        "airlock-test",
        "--member=serviceAccount:ci@airlock-test.iam.gserviceaccount.com",
        "--role=roles/viewer",
        "--format=json",
    ])
    .await;
    assert_eq!(
        front.iam_policy("airlock-test")["bindings"],
        json!([{"role": "roles/viewer",
            "members": ["serviceAccount:ci@airlock-test.iam.gserviceaccount.com"]}])
    );

    let seen = front.requests();
    assert!(seen.iter().all(|s| s.acting_as() == Some(SA)), "{seen:#?}");
    let saw = |method: &str, prefix: &str| {
        seen.iter().any(|s| {
            s.method == method
                && s.path.starts_with(prefix)
                && s.status.is_some_and(|c| (200..300).contains(&c))
        })
    };
    assert!(
        saw("POST", "/resumable/upload/storage/v1/b/gcloud-bucket/o"),
        "{seen:#?}"
    );
    assert!(
        saw("POST", "/upload/storage/v1/b/gcloud-bucket/o"),
        "multipart: {seen:#?}"
    );
    assert!(
        saw("GET", "/download/storage/v1/b/gcloud-bucket/o/"),
        "{seen:#?}"
    );
    assert!(
        saw("GET", "/storage/v1/b/gcloud-bucket/storageLayout"),
        "{seen:#?}"
    );
    assert!(
        saw("GET", "/storage/v1/b/gcloud-bucket/managedFolders"),
        "{seen:#?}"
    );
    assert!(saw("DELETE", "/storage/v1/b/gcloud-bucket"), "{seen:#?}");
    assert!(
        saw("PUT", "/v1/projects/airlock-test/topics/gcloud-topic"),
        "{seen:#?}"
    );
    assert!(
        saw("POST", "/v1/projects/airlock-test:getIamPolicy"),
        "{seen:#?}"
    );
    assert!(
        saw("POST", "/v1/projects/airlock-test:setIamPolicy"),
        "{seen:#?}"
    );

    // A token the front does not accept: gcloud fails at once with Google's message, and
    // nothing was passed on.
    front.clear_requests();
    let (success, _, stderr) = run_gcloud(
        gcloud(&front, dir.path(), "ya29.not-a-token-of-ours"),
        &["pubsub", "topics", "create", "refused-topic"],
    )
    .await;
    assert!(!success);
    assert!(
        stderr.contains("Request had invalid authentication credentials"),
        "{stderr}"
    );
    let seen = front.requests();
    assert!(
        !seen.is_empty() && seen.iter().all(|s| s.refused() && !s.forwarded),
        "{seen:#?}"
    );
}

/// google.pubsub.v1 messages, the fields this test uses.
mod pubsub_v1 {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamingPullRequest {
        #[prost(string, tag = "1")]
        pub subscription: String,
        #[prost(string, repeated, tag = "2")]
        pub ack_ids: Vec<String>,
        #[prost(int32, repeated, tag = "3")]
        pub modify_deadline_seconds: Vec<i32>,
        #[prost(string, repeated, tag = "4")]
        pub modify_deadline_ack_ids: Vec<String>,
        #[prost(int32, tag = "5")]
        pub stream_ack_deadline_seconds: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamingPullResponse {
        #[prost(message, repeated, tag = "1")]
        pub received_messages: Vec<ReceivedMessage>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ReceivedMessage {
        #[prost(string, tag = "1")]
        pub ack_id: String,
        #[prost(message, optional, tag = "2")]
        pub message: Option<PubsubMessage>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PubsubMessage {
        #[prost(bytes = "vec", tag = "1")]
        pub data: Vec<u8>,
        #[prost(string, tag = "3")]
        pub message_id: String,
    }
}

/// One StreamingPull through the front, both directions at once: a message arrives, the
/// client nacks it on the same stream (deadline 0) while the response stays open, the
/// emulator delivers it again on that stream, and the client acks it there.
#[tokio::test(flavor = "multi_thread")]
async fn streaming_pull_flows_both_ways_at_once_through_the_front() {
    use prost::Message as _;
    use pubsub_v1::{StreamingPullRequest, StreamingPullResponse};

    let pki = TestPki::new();
    let front = LocalGoogle::start(&pki, accept_token(TOKEN, SA), Apis::PUBSUB).await;
    let client = front.client(false);
    let api = "https://pubsub.googleapis.com/v1/projects/airlock-test";
    let subscription = "projects/airlock-test/subscriptions/stream-worker";
    for (path, body) in [
        ("topics/stream-orders", json!({})),
        (
            "subscriptions/stream-worker",
            json!({"topic": "projects/airlock-test/topics/stream-orders", "ackDeadlineSeconds": 60}),
        ),
    ] {
        let response = client
            .put(format!("{api}/{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }

    let tcp = tokio::net::TcpStream::connect(front.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("pubsub.googleapis.com").unwrap();
    let tls = tokio_rustls::TlsConnector::from(support::client_tls(&pki.ca_pem, &[b"h2"]))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let (tx, rx) = tokio::sync::mpsc::channel::<StreamingPullRequest>(4);
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        let request = rx.recv().await?;
        let encoded = request.encode_to_vec();
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        framed.extend_from_slice(&encoded);
        Some((
            Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(framed))),
            rx,
        ))
    });
    let request = http::Request::post(
        "https://pubsub.googleapis.com/google.pubsub.v1.Subscriber/StreamingPull",
    )
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .header("authorization", format!("Bearer {TOKEN}"))
    .body(http_body_util::StreamBody::new(Box::pin(frames)))
    .unwrap();
    tx.send(StreamingPullRequest {
        subscription: subscription.into(),
        stream_ack_deadline_seconds: 60,
        ..Default::default()
    })
    .await
    .unwrap();
    // The emulator (grpc-java) sends its response head with its first message, so the
    // message is published while the head is awaited.
    let response = tokio::spawn(sender.send_request(request));
    let published = client
        .post(format!("{api}/topics/stream-orders:publish"))
        .bearer_auth(TOKEN)
        .json(&json!({"messages": [{"data": "c3RyZWFtZWQ="}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 200);
    let response = tokio::time::timeout(Duration::from_secs(20), response)
        .await
        .expect("StreamingPull answered within 20 s")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut buffer = Vec::<u8>::new();
    // The next message delivered on the stream: (ack id, data).
    let mut next = async || -> (String, Vec<u8>) {
        loop {
            if buffer.len() >= 5 {
                let len = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
                if buffer.len() >= 5 + len {
                    let message: Vec<u8> = buffer.drain(..5 + len).skip(5).collect();
                    let decoded = StreamingPullResponse::decode(&message[..]).unwrap();
                    if let Some(received) = decoded.received_messages.into_iter().next() {
                        return (received.ack_id, received.message.unwrap().data);
                    }
                    continue;
                }
            }
            let frame = tokio::time::timeout(Duration::from_secs(20), body.frame())
                .await
                .expect("a message on the stream within 20 s")
                .expect("the stream is open")
                .unwrap();
            match frame.into_data() {
                Ok(data) => buffer.extend_from_slice(&data),
                Err(frame) => panic!("the stream ended: {:?}", frame.trailers_ref()),
            }
        }
    };

    let (first_ack, data) = next().await;
    assert_eq!(data, b"streamed");
    // Nack on the open stream: the emulator must hear it while it keeps sending.
    tx.send(StreamingPullRequest {
        modify_deadline_ack_ids: vec![first_ack.clone()],
        modify_deadline_seconds: vec![0],
        ..Default::default()
    })
    .await
    .unwrap();
    let (again_ack, data) = next().await;
    assert_eq!(data, b"streamed", "redelivered after the nack");
    tx.send(StreamingPullRequest {
        ack_ids: vec![again_ack],
        ..Default::default()
    })
    .await
    .unwrap();
    drop(tx);
    let seen = front.requests_to("pubsub.googleapis.com", "/google.pubsub.v1.Subscriber/");
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert!(seen[0].grpc && seen[0].forwarded && seen[0].acting_as() == Some(SA));
}
