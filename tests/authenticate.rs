//! Through the real binary: only requests SigV4-signed with an agent's Airlock key are
//! forwarded, re-signed with the agent's role session (STS from moto); everything else is
//! refused with an AWS-shaped error and never reaches the upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, SystemTime};

use support::relay::CountingRelay;
use support::signing::{AgentKey, presign, sign_at, sign_now, signed_chunked_put};
use support::upstream::{self, echo, hex};
use support::{Airlock, TestPki};

fn header<'a>(echo: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    upstream::echoed_header(echo, name)
}

/// An Airlock (letting every call through) behind a counting relay.
async fn started(extra: &str) -> (TestPki, CountingRelay, Airlock) {
    support::relay::airlock_behind_relay(extra, Some(support::ALLOW_ALL_RULES)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_requests_arrive_re_signed_with_the_role_session_and_the_host_kept() {
    let (_pki, _relay, airlock) = started("").await;
    let client = airlock.client(false);
    let key = airlock.key().clone();

    // A JSON API call (signed over its body) and an S3 presigned GET.
    let response = airlock
        .send(
            &client,
            client
                .post("https://dynamodb.us-east-1.amazonaws.com/")
                .header("x-amz-target", "DynamoDB_20120810.ListTables")
                .header("content-type", "application/x-amz-json-1.0")
                .body("{}"),
            "dynamodb",
        )
        .await;
    assert_eq!(response.status(), 200);
    let seen = echo(&response.text().await.unwrap());
    let authorization = header(&seen, "authorization")[0];
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=ASIA")
            && authorization.contains("/us-east-1/dynamodb/aws4_request"),
        "not signed with an STS session: {authorization}"
    );
    assert!(
        !authorization.contains(&key.id),
        "the agent key leaked upstream"
    );
    assert_eq!(header(&seen, "x-amz-security-token").len(), 1);
    assert_eq!(header(&seen, "host"), ["dynamodb.us-east-1.amazonaws.com"]);
    assert_eq!(seen["body_len"], 2);

    let url = presign(
        "https://reports.s3.amazonaws.com/2026/q1.csv",
        &key,
        Duration::from_secs(300),
    );
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let seen = echo(&response.text().await.unwrap());
    assert_eq!(
        seen["uri"], "/2026/q1.csv",
        "presign parameters left in the URI"
    );
    assert!(header(&seen, "authorization")[0].contains("Credential=ASIA"));

    // One AssumeRole served both (cached).
    assert_eq!(
        airlock
            .metric("airlock_sessions_total{result=\"ok\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_not_signed_by_an_agent_are_refused_aws_style_and_never_forwarded() {
    let (_pki, relay, airlock) = started("").await;
    let client = airlock.client(false);
    let agent = airlock.key().clone();
    let wrong_secret = AgentKey {
        id: agent.id.clone(),
        secret: "x".repeat(40),
    };
    let aws_key = AgentKey {
        id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
    };
    let unknown = AgentKey {
        id: "AIRLAAAAAAAAAAAAAAAA".into(),
        secret: agent.secret.clone(),
    };
    let now = SystemTime::now();
    let sts = || {
        client
            .post("https://sts.amazonaws.com/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("Action=GetCallerIdentity&Version=2011-06-15")
    };
    let ddb = || {
        client
            .post("https://dynamodb.us-east-1.amazonaws.com/")
            .header("x-amz-target", "DynamoDB_20120810.ListTables")
            .header("content-type", "application/x-amz-json-1.0")
            .body("{}")
    };
    let signed = |builder: reqwest::RequestBuilder, key: &AgentKey, service: &str, at| {
        let mut request = builder.build().unwrap();
        sign_at(&mut request, key, service, at);
        request
    };

    // (request, status, code, text the message must contain, body format marker)
    let mut tampered = signed(sts(), &agent, "sts", now);
    *tampered.body_mut() = Some("Action=GetCallerIdentity&Version=2011-06-16".into());
    let mut lying_hash = client
        .put("https://s3.amazonaws.com/bucket/key")
        .body("actual bytes")
        .build()
        .unwrap();
    lying_hash
        .headers_mut()
        .insert("x-amz-content-sha256", hex(&[0u8; 32]).parse().unwrap());
    sign_now(&mut lying_hash, &agent, "s3");
    let cases = [
        (
            sts().build().unwrap(),
            403,
            "MissingAuthenticationToken",
            "signed (SigV4) with an Airlock agent key",
            "<ErrorResponse>",
        ),
        (
            signed(sts(), &aws_key, "sts", now),
            403,
            "InvalidClientTokenId",
            "is an AWS key, not an Airlock agent key",
            "<ErrorResponse>",
        ),
        (
            signed(ddb(), &unknown, "dynamodb", now),
            403,
            "InvalidClientTokenId",
            "not an Airlock agent key",
            "\"__type\"",
        ),
        (
            signed(ddb(), &wrong_secret, "dynamodb", now),
            403,
            "SignatureDoesNotMatch",
            "does not match",
            "\"__type\"",
        ),
        (
            tampered,
            403,
            "SignatureDoesNotMatch",
            "does not match",
            "<ErrorResponse>",
        ),
        (
            signed(sts(), &agent, "sts", now - Duration::from_secs(10 * 60)),
            403,
            "RequestTimeTooSkewed",
            "more than 5 minutes",
            "<ErrorResponse>",
        ),
        (
            signed(sts(), &agent, "sts", now + Duration::from_secs(10 * 60)),
            403,
            "RequestTimeTooSkewed",
            "more than 5 minutes",
            "<ErrorResponse>",
        ),
        (
            lying_hash,
            400,
            "XAmzContentSHA256Mismatch",
            "does not match",
            "<Error>",
        ),
    ];
    for (request, status, code, text, format) in cases {
        let what = format!("{} {}", request.method(), request.url());
        let response = client.execute(request).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{what}: {code}");
        let body = response.text().await.unwrap();
        assert!(body.contains(code), "{what}: expected {code}: {body}");
        assert!(body.contains(text), "{what}: expected `{text}`: {body}");
        assert!(body.contains(format), "{what}: not shaped {format}: {body}");
    }

    // A presigned URL whose signature cannot cover a declared payload, one valid for more
    // than AWS's 7 days, and aws-chunked for a service that is not S3.
    let url = presign(
        "https://reports.s3.amazonaws.com/q1.csv",
        &agent,
        Duration::from_secs(300),
    );
    let response = client
        .get(&url)
        .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("cannot declare x-amz-content-sha256")
    );
    let forever = presign(
        "https://reports.s3.amazonaws.com/q1.csv",
        &agent,
        Duration::from_secs(8 * 24 * 3600),
    );
    let response = client.get(&forever).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("up to 604800"));
    let mut chunked_ddb = ddb().build().unwrap();
    chunked_ddb.headers_mut().insert(
        "x-amz-content-sha256",
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER".parse().unwrap(),
    );
    sign_now(&mut chunked_ddb, &agent, "dynamodb");
    let response = client.execute(chunked_ddb).await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("for S3 only"));

    // A streamed upload (over the 1 MiB read-whole size) whose bytes are not the declared
    // hash: cut before its last frame, and the agent hears why.
    let big: Vec<u8> = vec![7u8; 3 * 1024 * 1024];
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let mut lying_stream = client
        .put("https://s3.amazonaws.com/bucket/big")
        .header("content-length", big.len())
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .build()
        .unwrap();
    support::signing::sign_declared(&mut lying_stream, &agent, "s3", &hex(&[1u8; 32]));
    let response = client.execute(lying_stream).await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(
        status == 400 && text.contains("XAmzContentSHA256Mismatch"),
        "{status} {text}"
    );
    let streamed_connections = relay.connections();

    // An expired presigned URL.
    let url = presign(
        "https://reports.s3.amazonaws.com/q1.csv",
        &agent,
        Duration::from_secs(1),
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("expired"));

    // Only the streamed upload connected (and was cut); nothing refused reached the upstream.
    assert_eq!(
        relay.connections(),
        streamed_connections,
        "a refused request reached the upstream"
    );
    assert!(streamed_connections <= 1);
    assert_eq!(
        airlock
            .metric("airlock_auth_failures_total{code=\"SignatureDoesNotMatch\"}")
            .await,
        2.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_chunk_uploads_are_verified_chunk_by_chunk_and_re_signed() {
    let pki = TestPki::new();
    // HTTP/1.1, as S3: a body cut short shows as such (an HTTP/2 reset may drop it).
    let (up, recorder) = upstream::start_tls_recording_h1(&pki).await;
    let airlock = Airlock::start_with_rules(
        &pki,
        &support::routes_to(up, "https"),
        &support::BASE_ENV,
        Some(support::ALLOW_ALL_RULES),
    );
    let client = airlock.client(false);
    let data: Vec<u8> = (0..300 * 1024u32).map(|i| (i % 251) as u8).collect();

    let request = signed_chunked_put(
        "https://uploads.s3.amazonaws.com/big.bin",
        airlock.key(),
        &data,
        64 * 1024,
        false,
    );
    assert!(
        request.body().unwrap().as_bytes().is_none(),
        "the upload must stream"
    );
    let agent_length: u64 = request.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let response = client.execute(request).await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}\n{}", airlock.logs().join("\n"));
    let seen = echo(&text);
    assert_eq!(
        header(&seen, "x-amz-content-sha256"),
        ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD"]
    );
    assert!(header(&seen, "authorization")[0].contains("Credential=ASIA"));
    // Signatures are fixed-length: the re-signed body is exactly as long as the agent's.
    // (moto decodes it back to the data in tests/aws_e2e.rs.)
    assert_eq!(seen["body_len"].as_u64().unwrap(), agent_length);
    let received = recorder.requests();
    assert_eq!(received.len(), 1);
    assert!(received[0].complete && received[0].body_len == agent_length);

    // The same with a signed trailer (`…-PAYLOAD-TRAILER`, a checksum after the last chunk).
    let request = support::signing::signed_chunked_put_with(
        "https://uploads.s3.amazonaws.com/big.bin",
        airlock.key(),
        &data,
        64 * 1024,
        false,
        Some(("x-amz-checksum-crc32", "DUoRhQ==")),
    );
    let agent_length: u64 = request.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let response = client.execute(request).await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let seen = echo(&text);
    assert_eq!(
        header(&seen, "x-amz-content-sha256"),
        ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"]
    );
    assert_eq!(seen["body_len"].as_u64().unwrap(), agent_length);

    // A chunk altered after signing: the stream is cut before that chunk is released,
    // so the upstream never receives a complete body.
    let tampered = signed_chunked_put(
        "https://uploads.s3.amazonaws.com/big.bin",
        airlock.key(),
        &data,
        64 * 1024,
        true,
    );
    let response = client.execute(tampered).await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(
        status == 403 && text.contains("SignatureDoesNotMatch"),
        "a tampered chunk: {status} {text}"
    );
    // The upstream got at most the head and the first chunk, never a complete body: the
    // two genuine uploads are the only bodies that arrived whole. (Over HTTP/1.1 the
    // head may not even arrive before the cut.)
    let first_chunk =
        format!("{:x}", 64 * 1024).len() + ";chunk-signature=".len() + 64 + 2 + 64 * 1024 + 2;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = recorder.requests();
    assert_eq!(recorder.completed().len(), 2, "{received:#?}");
    let cut: Vec<_> = received.iter().filter(|r| !r.complete).collect();
    assert!(cut.len() <= 1, "{received:#?}");
    for r in cut {
        assert_eq!((r.method.as_str(), r.uri.as_str()), ("PUT", "/big.bin"));
        assert!(
            r.body_len <= first_chunk as u64,
            "{} bytes of a tampered upload reached the upstream (first chunk: {first_chunk})",
            r.body_len
        );
    }
}

/// Poll `check` for up to 10 s (file reloads are polled every second).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

fn agents_cli(airlock: &Airlock, args: &[&str]) -> String {
    let out = std::process::Command::new(support::BIN)
        .arg("agents")
        .args(args)
        .arg("--config")
        .arg(airlock.dir.path().join("airlock.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_and_removed_agents_stop_working_without_a_restart() {
    let (_pki, _relay, airlock) = started("").await;
    let client = airlock.client(false);
    let status_with = async |key: &AgentKey| {
        let mut request = client
            .get("https://sts.amazonaws.com/small")
            .build()
            .unwrap();
        sign_now(&mut request, key, "sts");
        client.execute(request).await.unwrap().status().as_u16()
    };
    let old = airlock.key().clone();
    assert_eq!(status_with(&old).await, 200);

    let printed = agents_cli(&airlock, &["rotate", support::TEST_AGENT]);
    let value = |var: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {var}=")))
            .unwrap()
            .to_string()
    };
    let new = AgentKey {
        id: value("AWS_ACCESS_KEY_ID"),
        secret: value("AWS_SECRET_ACCESS_KEY"),
    };
    eventually("the rotated key is refused", async || {
        status_with(&old).await == 403
    })
    .await;
    assert_eq!(status_with(&new).await, 200);

    // A broken edit: the previous agents stay in force, and it shows.
    let file = airlock.dir.path().join("agents.yaml");
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, "agents: [ {name: broken").unwrap();
    eventually("the rejected reload is counted", async || {
        airlock
            .metric("airlock_reloads_total{result=\"error\",what=\"agents\"}")
            .await
            == 1.0
    })
    .await;
    let (_, ready) = airlock.control_get("/readyz").await;
    assert!(
        ready.contains("reload of") && ready.contains("agents.yaml"),
        "{ready}"
    );
    assert_eq!(status_with(&new).await, 200);

    std::fs::write(&file, good).unwrap();
    eventually("the repaired file clears the note", async || {
        !airlock.control_get("/readyz").await.1.contains("reload of")
    })
    .await;
    // The agent's role edited in place: its next call gets a session for the new role,
    // never the cached one.
    let sessions = airlock
        .metric("airlock_sessions_total{result=\"ok\"}")
        .await;
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("role/agent-role", "role/other-role");
    std::fs::write(&file, edited).unwrap();
    eventually("the edited role gets its own session", async || {
        status_with(&new).await == 200
            && airlock
                .metric("airlock_sessions_total{result=\"ok\"}")
                .await
                == sessions + 1.0
    })
    .await;

    agents_cli(&airlock, &["remove", support::TEST_AGENT]);
    eventually("the removed agent is refused", async || {
        status_with(&new).await == 403
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_credentials_nothing_is_forwarded_and_the_agent_is_told_why() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_pki, relay, airlock) =
        started(&format!("credentials:\n  sts_endpoint: http://{closed}\n")).await;
    let client = airlock.client(false);
    let response = airlock
        .send(
            &client,
            client
                .post("https://sqs.us-east-1.amazonaws.com/")
                .header("x-amz-target", "AmazonSQS.ListQueues")
                .header("content-type", "application/x-amz-json-1.0")
                .body("{}"),
            "sqs",
        )
        .await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(
        body.contains("\"__type\":\"ServiceUnavailable\"")
            && body.contains(
                "cannot obtain credentials for role arn:aws:iam::123456789012:role/agent-role"
            ),
        "{body}"
    );
    // STS's own words stay in Airlock's log.
    assert!(!body.contains("Connection refused"), "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        airlock
            .logs()
            .iter()
            .any(|l| l.contains("Connection refused")),
        "{:?}",
        airlock.logs()
    );
    // Calls right after a failure get the same answer without another STS attempt.
    for _ in 0..3 {
        let response = airlock
            .send(
                &client,
                client.get("https://sqs.us-east-1.amazonaws.com/"),
                "sqs",
            )
            .await;
        assert_eq!(response.status(), 503);
    }
    assert_eq!(relay.connections(), 0);
    assert_eq!(
        airlock
            .metric("airlock_sessions_total{result=\"error\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_airlock_without_credentials_of_its_own_says_so() {
    let pki = TestPki::new();
    let airlock = Airlock::start_env(
        &pki,
        "",
        &[
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", "/dev/null"),
        ],
    );
    let client = airlock.client(false);
    let response = airlock
        .send(
            &client,
            client.get("https://sts.amazonaws.com/small"),
            "sts",
        )
        .await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(body.contains("details in Airlock's log"), "{body}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = airlock.logs().join("\n");
    assert!(
        logs.contains("Airlock has no AWS credentials of its own") && logs.contains("AWS_PROFILE"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_signed_over_their_bytes_are_read_only_up_to_the_limit() {
    let (_pki, relay, airlock) = started("limits:\n  max_buffered_body: 65536\n").await;
    // curl with `Expect: 100-continue`: Airlock answers before the body is sent (a client
    // that sends it anyway gets the answer and a closed connection).
    let body = format!("{{\"TableName\":\"{}\"}}", "t".repeat(100_000));
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--proxy",
            &format!("http://{}", airlock.proxy),
            "--cacert",
        ])
        .arg(airlock.ca_pem_path())
        .args(airlock.curl_auth("dynamodb"))
        .args([
            "-H",
            "Expect: 100-continue",
            "-H",
            "x-amz-target: DynamoDB_20120810.PutItem",
            "-H",
            "content-type: application/x-amz-json-1.0",
            "--data-binary",
            &body,
            "-w",
            "\n%{http_code}",
            "https://dynamodb.us-east-1.amazonaws.com/",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let out = String::from_utf8_lossy(&out.stdout);
    let (body, status) = out.rsplit_once('\n').unwrap();
    assert_eq!(status, "413", "{body} {stderr} {:?}", airlock.logs());
    assert!(body.contains("RequestEntityTooLarge"), "{body}");
    assert!(body.contains("limits.max_buffered_body"), "{body}");
    assert_eq!(relay.connections(), 0);
}

/// Agents have per-cloud identities: one with only a Google service account is listed with
/// it, and its AWS-signed calls are refused (no AWS identity) before anything is forwarded.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_without_an_aws_role_gets_no_aws_call_through() {
    let (_pki, relay, airlock) = started("").await;
    let printed = agents_cli(
        &airlock,
        &[
            "add",
            "google-only",
            "--owner",
            "g@example.com",
            "--gcp-service-account",
            "deployer@demo-project.iam.gserviceaccount.com",
        ],
    );
    assert!(
        printed.contains("service account deployer@demo-project.iam.gserviceaccount.com"),
        "{printed}"
    );
    // No AWS keys are handed to an agent without an AWS identity…
    assert!(!printed.contains("AWS_SECRET_ACCESS_KEY"), "{printed}");
    let listed = agents_cli(&airlock, &["list"]);
    assert!(
        listed.contains("deployer@demo-project.iam.gserviceaccount.com (demo-project)"),
        "{listed}"
    );
    // …and a call signed with its key id (whatever the secret) names what is missing.
    let id = listed
        .lines()
        .find(|l| l.starts_with("google-only"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap()
        .to_string();
    let key = AgentKey {
        id,
        secret: "any-secret-the-agent-was-never-given".into(),
    };
    let client = airlock.client(false);
    let connections = relay.connections();
    let mut status = 0;
    let mut body = String::new();
    // The new agent is picked up by the agents reload (polled once a second).
    for _ in 0..50 {
        let mut request = client
            .get("https://sts.amazonaws.com/small")
            .build()
            .unwrap();
        sign_now(&mut request, &key, "sts");
        let response = client.execute(request).await.unwrap();
        status = response.status().as_u16();
        body = response.text().await.unwrap();
        if !body.contains("not an Airlock agent key") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("Agent `google-only` has no AWS identity"),
        "{body}"
    );
    assert_eq!(relay.connections(), connections, "the call was forwarded");

    // `agents add` without any cloud identity is refused and changes nothing.
    let out = std::process::Command::new(support::BIN)
        .args([
            "agents",
            "add",
            "nothing",
            "--owner",
            "n@example.com",
            "--config",
        ])
        .arg(airlock.dir.path().join("airlock.yaml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!agents_cli(&airlock, &["list"]).contains("nothing"));
}
