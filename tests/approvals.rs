//! Approvals through the binary: a held call waits for reviewers, goes through once when
//! approved (and only once), retries attach to the same approval, the agent's owner can
//! never approve, a deny or an expiry is what the agent hears, and a `kill -9` loses
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use sha2::{Digest, Sha256};
use support::relay::CountingRelay;
use support::upstream::{Received, Recorder};
use support::{Airlock, BASE_ENV, TestPki, upstream};

fn hash(token: &str) -> String {
    support::upstream::hex(&Sha256::digest(token.as_bytes()))
}

const BOB: &str = "bob-token";
const CAROL: &str = "carol-token";
const OWNER: &str = "owner-token";
const EVE: &str = "eve-token";

fn config(relay: &CountingRelay) -> String {
    format!(
        "upstream:\n  routes:\n    - host: \"*.amazonaws.com\"\n      to: https://{}\napprovals:\n  approvers:\n    - {{name: bob@example.com, groups: [security], token_sha256: {}}}\n    - {{name: carol@example.com, groups: [security, sre], token_sha256: {}}}\n    - {{name: {}, groups: [security], token_sha256: {}}}\n    - {{name: eve@example.com, groups: [finance], token_sha256: {}}}\n",
        relay.addr,
        hash(BOB),
        hash(CAROL),
        support::TEST_OWNER,
        hash(OWNER),
        hash(EVE)
    )
}

fn rules(hold: &str, expires: &str, quorum: u32) -> String {
    format!(
        "defaults: {{unmatched: allow, unclassified: allow}}\nrules:\n  - id: bucket-deletes\n    match: {{action: s3:DeleteBucket}}\n    effect: approve\n    approvers: [security]\n    quorum: {quorum}\n    hold: {hold}\n    expires: {expires}\n    message: Deleting a bucket.\n"
    )
}

async fn started(hold: &str, expires: &str, quorum: u32) -> (TestPki, CountingRelay, Airlock) {
    let (pki, relay, airlock, _) = started_with(hold, expires, quorum, "").await;
    (pki, relay, airlock)
}

/// As [`started`], with `extra` config appended; the upstream records every request.
async fn started_with(
    hold: &str,
    expires: &str,
    quorum: u32,
    extra: &str,
) -> (TestPki, CountingRelay, Airlock, Recorder) {
    started_rules(&rules(hold, expires, quorum), extra).await
}

/// An Airlock with `rules` and `extra` config, behind a counting relay in front of an
/// upstream that records every request it receives.
async fn started_rules(rules: &str, extra: &str) -> (TestPki, CountingRelay, Airlock, Recorder) {
    let pki = TestPki::new();
    let (up, recorder) = upstream::start_tls_recording(&pki).await;
    let relay = CountingRelay::start(up).await;
    let airlock = Airlock::start_with_rules(
        &pki,
        &format!("{}{extra}", config(&relay)),
        &BASE_ENV,
        Some(rules),
    );
    (pki, relay, airlock, recorder)
}

/// The API as a reviewer: (status, JSON).
async fn api(
    airlock: &Airlock,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request =
        reqwest::Client::new().request(method, format!("http://{}{path}", airlock.control));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// `received` is the agent's call as approved (`method`, `path`, the body's bytes), re-signed
/// for `service` with the agent's role session (an STS `ASIA…` key and its token), never
/// with the agent's own key, and its body arrived whole.
fn assert_forwarded(
    received: &Received,
    airlock: &Airlock,
    method: &str,
    path: &str,
    body: &[u8],
    service: &str,
) {
    assert_eq!(received.method, method, "{received:#?}");
    assert_eq!(received.uri, path, "{received:#?}");
    assert!(received.complete, "the body was cut: {received:#?}");
    assert_eq!(received.body_len, body.len() as u64);
    assert_eq!(
        received.body_sha256,
        support::upstream::hex(&Sha256::digest(body))
    );
    let authorization = received.header("authorization");
    assert_eq!(authorization.len(), 1, "{received:#?}");
    assert!(
        authorization[0].starts_with("AWS4-HMAC-SHA256 Credential=ASIA")
            && authorization[0].contains(&format!("/us-east-1/{service}/aws4_request")),
        "not re-signed with a role session: {}",
        authorization[0]
    );
    assert!(
        !authorization[0].contains(&airlock.key().id),
        "the agent's key went upstream"
    );
    assert_eq!(received.header("x-amz-security-token").len(), 1);
}

/// DELETE the bucket as the agent: (status, body).
async fn delete_bucket(airlock: &Airlock) -> (u16, String) {
    let client = airlock.client(false);
    let response = airlock
        .send(
            &client,
            client
                .delete("https://doomed.s3.amazonaws.com/")
                .header("x-airlock-reason", "cleaning up the test bucket"),
            "s3",
        )
        .await;
    (response.status().as_u16(), response.text().await.unwrap())
}

fn approval_id(body: &str) -> String {
    let start = body
        .find("apr-")
        .unwrap_or_else(|| panic!("no approval id in {body}"));
    body[start..start + 30].to_string()
}

async fn pending(airlock: &Airlock) -> Vec<serde_json::Value> {
    let (status, list) = api(
        airlock,
        reqwest::Method::GET,
        "/v1/approvals?state=pending",
        Some(BOB),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list["approvals"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_call_goes_through_when_approved_in_time_and_its_grant_is_used_once() {
    let (_pki, relay, airlock, recorder) = started_with("20s", "1h", 1, "").await;
    let held = tokio::spawn({
        let client = airlock.client(false);
        let request = airlock.signed(
            client
                .delete("https://doomed.s3.amazonaws.com/")
                .header("x-airlock-reason", "cleaning up the test bucket"),
            "s3",
        );
        async move { client.execute(request).await.unwrap().status().as_u16() }
    });
    let mut waiting = Vec::new();
    for _ in 0..50 {
        waiting = pending(&airlock).await;
        if !waiting.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(waiting.len(), 1);
    let approval = &waiting[0];
    let id = approval["id"].as_str().unwrap().to_string();
    assert_eq!(approval["agent"], support::TEST_AGENT);
    assert_eq!(approval["owner"], support::TEST_OWNER);
    assert_eq!(approval["rule"], "bucket-deletes");
    assert_eq!(approval["message"], "Deleting a bucket.");
    assert_eq!(approval["reason"], "cleaning up the test bucket");
    assert_eq!(approval["call"]["operation"], "DeleteBucket");
    assert_eq!(approval["call"]["actions"][0]["name"], "s3:DeleteBucket");
    assert_eq!(approval["call"]["resources"][0], "arn:aws:s3:::doomed");
    assert_eq!(relay.connections(), 0, "forwarded before approval");

    // The agent's owner can never approve; a reviewer outside the rule's groups neither.
    let (status, body) = api(
        &airlock,
        reqwest::Method::POST,
        &format!("/v1/approvals/{id}/approve"),
        Some(OWNER),
        None,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("nobody approves their own agent")
    );
    let (status, _) = api(
        &airlock,
        reqwest::Method::POST,
        &format!("/v1/approvals/{id}/approve"),
        Some(EVE),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = api(
        &airlock,
        reqwest::Method::POST,
        &format!("/v1/approvals/{id}/approve"),
        Some("forged"),
        None,
    )
    .await;
    assert_eq!(status, 401);

    let (status, body) = api(
        &airlock,
        reqwest::Method::POST,
        &format!("/v1/approvals/{id}/approve"),
        Some(BOB),
        Some(serde_json::json!({"reason": "ok"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "approved");
    assert_eq!(held.await.unwrap(), 200, "the held call went through");
    // What arrived upstream is the call approved, re-signed with the role session.
    let received = recorder.requests();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_forwarded(&received[0], &airlock, "DELETE", "/", b"", "s3");
    assert_eq!(received[0].header("host"), ["doomed.s3.amazonaws.com"]);
    assert!(
        received[0].header("x-airlock-reason").is_empty(),
        "the agent's reason is for reviewers, not AWS"
    );
    let (status, _) = api(
        &airlock,
        reqwest::Method::POST,
        &format!("/v1/approvals/{id}/approve"),
        Some(CAROL),
        None,
    )
    .await;
    assert_eq!(status, 409, "decided approvals take no votes");

    // The grant was used: the same call again needs a new approval.
    let airlock2 = &airlock;
    let again = tokio::time::timeout(Duration::from_secs(1), delete_bucket(airlock2)).await;
    assert!(
        again.is_err(),
        "the same call went through twice on one approval"
    );
    let ids: Vec<String> = pending(&airlock)
        .await
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_ne!(ids[0], id);
    assert_eq!(
        recorder.requests().len(),
        1,
        "forwarded twice on one approval"
    );

    assert_eq!(airlock.metric("airlock_approvals_pending").await, 1.0);
    assert_eq!(
        airlock
            .metric("airlock_held_calls_total{outcome=\"go\"}")
            .await,
        1.0
    );
    assert_eq!(
        airlock
            .metric("airlock_approval_votes_total{result=\"approve\"}")
            .await,
        1.0
    );
    assert_eq!(
        airlock
            .metric("airlock_approval_votes_total{result=\"refused\"}")
            .await,
        3.0,
        "the owner's, eve's and the late vote"
    );
    assert_eq!(
        airlock
            .metric("airlock_approval_decision_seconds_count")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_after_the_hold_join_the_same_approval_then_go_through_once_approved() {
    let (_pki, _relay, airlock, recorder) = started_with("1s", "1h", 2, "").await;
    let (status, body) = delete_bucket(&airlock).await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<Code>AccessDenied</Code>")
            && body.contains("needs approval (rule `bucket-deletes`)")
            && body.contains("0 of 2 approvals from security")
            && body.contains("airlock approvals wait apr-"),
        "{body}"
    );
    let id = approval_id(&body);
    let (_, again) = delete_bucket(&airlock).await;
    assert_eq!(approval_id(&again), id, "a retry opened a second approval");

    // Quorum 2: distinct approvers; one approver counts once.
    let path = format!("/v1/approvals/{id}/approve");
    let approve = |token| api(&airlock, reqwest::Method::POST, &path, Some(token), None);
    assert_eq!(approve(BOB).await.1["state"], "pending");
    assert_eq!(approve(BOB).await.0, 409);
    assert!(
        recorder.requests().is_empty(),
        "forwarded before the quorum"
    );
    assert_eq!(approve(CAROL).await.1["state"], "approved");
    let (status, echoed) = delete_bucket(&airlock).await;
    assert_eq!(status, 200);
    let received = recorder.requests();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_forwarded(&received[0], &airlock, "DELETE", "/", b"", "s3");
    // The agent hears the upstream's own answer to that one request.
    assert_eq!(upstream::echo(&echoed)["method"], "DELETE");

    // The agents' long poll answers at once for a decided approval.
    let (status, state) = api(
        &airlock,
        reqwest::Method::GET,
        &format!("/v1/approvals/{id}/wait?timeout=5"),
        None,
        None,
    )
    .await;
    assert_eq!((status, state["state"].as_str()), (200, Some("approved")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denial_and_an_expiry_are_what_the_agent_hears() {
    let (_pki, _relay, airlock) = started("1s", "3s", 1).await;
    let (_, body) = delete_bucket(&airlock).await;
    let id = approval_id(&body);
    let (status, _) = api(
        &airlock,
        reqwest::Method::POST,
        &format!("/v1/approvals/{id}/deny"),
        Some(BOB),
        None,
    )
    .await;
    assert_eq!(status, 400, "a denial needs a reason");
    let (status, body) = api(
        &airlock,
        reqwest::Method::POST,
        &format!("/v1/approvals/{id}/deny"),
        Some(BOB),
        Some(serde_json::json!({"reason": "that bucket holds the audit trail"})),
    )
    .await;
    assert_eq!((status, body["state"].as_str()), (200, Some("denied")));
    let (status, body) = delete_bucket(&airlock).await;
    assert_eq!(status, 403);
    assert!(
        body.contains(&format!("Approval {id} for this call was denied by bob@example.com: that bucket holds the audit trail")),
        "{body}"
    );

    // After the denied approval expires, a new call asks again; left alone, it expires.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (_, body) = delete_bucket(&airlock).await;
    let fresh = approval_id(&body);
    assert_ne!(fresh, id);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let (_, body) = api(
        &airlock,
        reqwest::Method::GET,
        &format!("/v1/approvals/{fresh}"),
        Some(BOB),
        None,
    )
    .await;
    assert_eq!(body["state"], "expired");
    let (status, _) = api(
        &airlock,
        reqwest::Method::POST,
        &format!("/v1/approvals/{fresh}/approve"),
        Some(BOB),
        None,
    )
    .await;
    assert_eq!(status, 409, "an expired approval takes no votes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_9_loses_no_approval_and_the_grant_still_works_once() {
    let (pki, relay, airlock, recorder) = started_with("1s", "1h", 1, "").await;
    let (_, body) = delete_bucket(&airlock).await;
    let id = approval_id(&body);
    let key = airlock.key().clone();
    let dir = airlock.kill_keep_dir();
    let mut airlock = Airlock::spawn(dir);
    airlock.key = Some(key);
    let _ = (&pki, &relay);
    let waiting = pending(&airlock).await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0]["id"], id.as_str());
    let (status, _) = api(
        &airlock,
        reqwest::Method::POST,
        &format!("/v1/approvals/{id}/approve"),
        Some(BOB),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(recorder.requests().is_empty());
    assert_eq!(delete_bucket(&airlock).await.0, 200);
    let received = recorder.requests();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_forwarded(&received[0], &airlock, "DELETE", "/", b"", "s3");
    // Killed again after the grant was used: it stays used.
    let key = airlock.key().clone();
    let dir = airlock.kill_keep_dir();
    let mut airlock = Airlock::spawn(dir);
    airlock.key = Some(key);
    let (status, body) = delete_bucket(&airlock).await;
    assert_eq!(status, 403);
    assert_ne!(approval_id(&body), id);
    assert_eq!(
        recorder.requests().len(),
        1,
        "the used grant went through again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_lists_approves_and_waits() {
    let (_pki, _relay, airlock) = started("1s", "1h", 1).await;
    let (_, body) = delete_bucket(&airlock).await;
    let id = approval_id(&body);
    let cli = |args: &[&str], token: Option<&str>| {
        let mut command = std::process::Command::new(support::BIN);
        command
            .arg("approvals")
            .args(args)
            .args(["--url", &format!("http://{}", airlock.control)]);
        if let Some(token) = token {
            command.env("AIRLOCK_TOKEN", token);
        }
        command.output().unwrap()
    };
    let out = cli(&["list", "--state", "pending"], Some(BOB));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
    let out = cli(&["approve", &id], Some(OWNER));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
    let waiter = std::thread::spawn({
        let control = airlock.control;
        let id = id.clone();
        move || {
            std::process::Command::new(support::BIN)
                .args([
                    "approvals",
                    "wait",
                    &id,
                    "--timeout",
                    "20",
                    "--url",
                    &format!("http://{control}"),
                ])
                .output()
                .unwrap()
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let out = cli(&["approve", &id, "--reason", "fine"], Some(BOB));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let waited = waiter.join().unwrap();
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(String::from_utf8_lossy(&waited.stdout).contains("approved"));
    assert_eq!(delete_bucket(&airlock).await.0, 200);

    let out = cli(&["token", "dana@example.com", "--group", "security"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("AIRLOCK_TOKEN="))
        .unwrap();
    assert!(
        text.contains(&format!("token_sha256: {}", hash(token))),
        "{text}"
    );
}

/// A webhook secret file (0600) in a fresh directory, and the config that names it.
fn webhook(receiver: &support::receiver::Receiver, events: &str) -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hook.secret");
    std::fs::write(&secret, "whsec-test\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = format!(
        "channels:\n  base_url: https://airlock.example.com\n  webhooks:\n    - {{url: \"http://{}/hooks/airlock\", secret_file: {}{events}}}\n",
        receiver.addr,
        secret.display()
    );
    (dir, config)
}

/// The signature a receiver computes: HMAC-SHA256 over "v1:{timestamp}:{body}".
fn expected_signature(received: &support::receiver::Received) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"whsec-test").unwrap();
    mac.update(format!("v1:{}:", received.header("x-airlock-timestamp")).as_bytes());
    mac.update(&received.body);
    format!(
        "v1={}",
        support::upstream::hex(&mac.finalize().into_bytes())
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_hear_every_event_signed_with_the_context_reviewers_see() {
    let receiver = support::receiver::Receiver::start(0).await;
    let (_secret, extra) = webhook(&receiver, "");
    let (_pki, _relay, airlock, _) = started_with("1s", "1h", 2, &extra).await;
    let (_, body) = delete_bucket(&airlock).await;
    let id = approval_id(&body);
    for token in [BOB, CAROL] {
        let path = format!("/v1/approvals/{id}/approve");
        let (status, _) = api(&airlock, reqwest::Method::POST, &path, Some(token), None).await;
        assert_eq!(status, 200);
    }
    let got = receiver.until(|r| r.len() >= 3).await;
    let events: Vec<&str> = got.iter().map(|r| r.header("x-airlock-event")).collect();
    assert_eq!(events, ["requested", "voted", "approved"]);
    for r in &got {
        assert_eq!(r.path, "/hooks/airlock");
        assert_eq!(r.header("x-airlock-signature"), expected_signature(r));
        assert_eq!(r.json()["event"], r.header("x-airlock-event"));
    }
    let requested = got[0].json();
    let approval = &requested["approval"];
    assert_eq!(approval["id"], id.as_str());
    assert_eq!(approval["agent"], support::TEST_AGENT);
    assert_eq!(approval["owner"], support::TEST_OWNER);
    assert_eq!(approval["operation"], "DeleteBucket");
    assert_eq!(approval["actions"][0]["name"], "s3:DeleteBucket");
    assert_eq!(approval["reason"], "cleaning up the test bucket");
    assert_eq!(approval["message"], "Deleting a bucket.");
    assert_eq!(
        approval["link"],
        format!("https://airlock.example.com/ui/approvals/{id}")
    );
    let approved = got[2].json();
    assert_eq!(approved["approval"]["state"], "approved");
    let voters: Vec<&str> = approved["approval"]["votes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["approver"].as_str().unwrap())
        .collect();
    assert_eq!(voters, ["bob@example.com", "carol@example.com"]);
    assert_eq!(approved["approval"]["votes"][0]["via"], "api");
    assert_eq!(
        airlock
            .metric("airlock_channel_messages_total{channel=\"webhook\",result=\"sent\"}")
            .await,
        3.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_outage_approves_nothing_and_deliveries_are_retried_until_they_land() {
    let receiver = support::receiver::Receiver::start(2).await;
    let (_secret, extra) = webhook(&receiver, ", events: [requested, expired]");
    let (_pki, relay, airlock, _) = started_with("1s", "5s", 1, &extra).await;
    let (status, body) = delete_bucket(&airlock).await;
    assert_eq!(status, 403, "{body}");
    let id = approval_id(&body);
    // Two 503s, then delivered: the same delivery id every time.
    let got = receiver.until(|r| r.iter().any(|x| x.status == 200)).await;
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 503, 200]
    );
    let delivery = got[0].header("x-airlock-delivery").to_string();
    assert!(
        delivery.starts_with(&format!("{id}:requested:")),
        "{delivery}"
    );
    assert!(
        got.iter()
            .all(|r| r.header("x-airlock-delivery") == delivery)
    );
    assert_eq!(
        airlock
            .metric("airlock_channel_messages_total{channel=\"webhook\",result=\"retried\"}")
            .await,
        2.0
    );
    // The outage approved nothing: the approval expires, and the expiry is sent (voted
    // and approved events are not, as configured).
    let got = receiver
        .until(|r| r.iter().any(|x| x.header("x-airlock-event") == "expired"))
        .await;
    assert_eq!(got.last().unwrap().json()["approval"]["state"], "expired");
    assert_eq!(relay.connections(), 0, "nothing was forwarded");
    assert_eq!(
        airlock
            .metric("airlock_approval_outcomes_total{outcome=\"expired\"}")
            .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_webhook_secret_readable_by_others_stops_the_start_with_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let receiver = support::receiver::Receiver::start(0).await;
    let (secret, extra) = webhook(&receiver, "");
    std::fs::set_permissions(
        secret.path().join("hook.secret"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let dir = support::init_dir();
    let config = dir.path().join("airlock.yaml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&extra.replace("127.0.0.1", "localhost"));
    text = text.replace("listen: 127.0.0.1:8080", "listen: 127.0.0.1:0");
    text = text.replace("listen: 127.0.0.1:8081", "listen: 127.0.0.1:0");
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hook.secret") && stderr.contains("chmod 600"),
        "{stderr}"
    );
}

/// Rules holding three calls for one approval from `security`: deleting a bucket,
/// attaching a policy to a role, and uploading an object.
const BINDING_RULES: &str = "defaults: {unmatched: allow, unclassified: allow}\nrules:\n  - {id: bucket-deletes, match: {action: s3:DeleteBucket}, effect: approve, approvers: [security], hold: 1s, expires: 1h}\n  - {id: policies, match: {action: 'iam:AttachRolePolicy'}, effect: approve, approvers: [security], hold: 1s, expires: 1h}\n  - {id: uploads, match: {action: s3:PutObject}, effect: approve, approvers: [security], hold: 1s, expires: 1h}\n";

/// Approve `id` as bob over the API; it must be approved.
async fn approve_as_bob(airlock: &Airlock, id: &str) {
    let (status, body) = api(
        airlock,
        reqwest::Method::POST,
        &format!("/v1/approvals/{id}/approve"),
        Some(BOB),
        None,
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
}

/// The agent's answer for a call held and still undecided: the id of its (pending) approval.
fn pending_id(status: u16, body: &str) -> String {
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("needs approval") && body.contains("airlock approvals wait apr-"),
        "{body}"
    );
    approval_id(body)
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_identical_calls_on_one_approval_reach_the_upstream_once() {
    let (_pki, _relay, airlock, recorder) = started_rules(BINDING_RULES, "").await;
    let (status, body) = delete_bucket(&airlock).await;
    let id = pending_id(status, &body);
    approve_as_bob(&airlock, &id).await;
    assert!(recorder.requests().is_empty());

    // Twenty sends of the approved call at once, each on its own connection.
    let answers = futures_util::future::join_all((0..20).map(|_| delete_bucket(&airlock))).await;
    let through: Vec<&(u16, String)> = answers.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(through.len(), 1, "{answers:#?}");
    let received = recorder.requests();
    assert_eq!(received.len(), 1, "requests upstream: {received:#?}");
    assert_forwarded(&received[0], &airlock, "DELETE", "/", b"", "s3");
    // The other nineteen are held on one new approval and hear that it is pending.
    let others: Vec<String> = answers
        .iter()
        .filter(|(s, _)| *s != 200)
        .map(|(s, b)| pending_id(*s, b))
        .collect();
    assert_eq!(others.len(), 19);
    assert!(
        others.iter().all(|o| *o != id),
        "the used grant answered again"
    );
    let waiting = pending(&airlock).await;
    assert_eq!(
        waiting.len(),
        1,
        "one new approval for one call: {waiting:#?}"
    );
    assert!(others.iter().all(|o| waiting[0]["id"] == o.as_str()));
    assert_eq!(
        airlock
            .metric("airlock_held_calls_total{outcome=\"go\"}")
            .await,
        1.0
    );
}

/// `iam AttachRolePolicy` of `policy` to role `deployer`, as the agent: (status, body).
async fn attach_policy(airlock: &Airlock, policy: &str) -> (u16, String) {
    let client = airlock.client(false);
    let response = airlock
        .send(
            &client,
            client
                .post("https://iam.amazonaws.com/")
                .header(
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )
                .body(attach_body(policy)),
            "iam",
        )
        .await;
    (response.status().as_u16(), response.text().await.unwrap())
}

fn attach_body(policy: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "AttachRolePolicy")
        .append_pair("Version", "2010-05-08")
        .append_pair("RoleName", "deployer")
        .append_pair("PolicyArn", policy)
        .finish()
}

#[tokio::test(flavor = "multi_thread")]
async fn another_policy_arn_is_another_call_and_the_approved_one_still_goes_through_once() {
    let (_pki, relay, airlock, recorder) = started_rules(BINDING_RULES, "").await;
    let read_only = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    let (status, body) = attach_policy(&airlock, read_only).await;
    let approved = pending_id(status, &body);
    approve_as_bob(&airlock, &approved).await;

    // The same call with another policy: a new approval, nothing forwarded.
    let (status, body) = attach_policy(&airlock, admin).await;
    let other = pending_id(status, &body);
    assert_ne!(other, approved, "the approval covered another policy");
    assert!(recorder.requests().is_empty(), "{:#?}", recorder.requests());
    assert_eq!(relay.connections(), 0);
    let shown = airlock.approval(&other, BOB).await;
    assert_eq!(shown["state"], "pending");
    assert_eq!(shown["call"]["params"]["PolicyArn"], admin, "{shown}");

    // The approved call still goes through, once, exactly as approved.
    let (status, body) = attach_policy(&airlock, read_only).await;
    assert_eq!(status, 200, "{body}");
    let received = recorder.requests();
    assert_eq!(received.len(), 1);
    assert_forwarded(
        &received[0],
        &airlock,
        "POST",
        "/",
        attach_body(read_only).as_bytes(),
        "iam",
    );
    let (status, body) = attach_policy(&airlock, read_only).await;
    assert_ne!(pending_id(status, &body), approved);
    assert_eq!(recorder.requests().len(), 1);
}

/// `len` bytes of a pattern, with byte `flip` changed.
fn upload_data(len: usize, flip: usize) -> Vec<u8> {
    let mut data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    data[flip] ^= 0xff;
    data
}

/// PUT `data` to one S3 key as the agent, streamed (64 KiB pieces, never in memory for
/// the signer): `declared` = its SHA-256 as `x-amz-content-sha256`, else `UNSIGNED-PAYLOAD`.
async fn put_streamed(airlock: &Airlock, data: &[u8], declared: bool) -> (u16, String) {
    let hash = declared.then(|| support::upstream::hex(&Sha256::digest(data)));
    put_streamed_declaring(airlock, data, hash.as_deref()).await
}

/// As [`put_streamed`], declaring `declared` (true or not) as the body's SHA-256.
async fn put_streamed_declaring(
    airlock: &Airlock,
    data: &[u8],
    declared: Option<&str>,
) -> (u16, String) {
    let client = airlock.client(false);
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let builder = client
        .put("https://uploads.s3.amazonaws.com/reports/q3.csv")
        .header("content-length", data.len())
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )));
    let request = if let Some(hash) = declared {
        let mut request = builder.build().unwrap();
        support::signing::sign_declared(&mut request, airlock.key(), "s3", hash);
        request
    } else {
        airlock.signed(builder, "s3")
    };
    assert!(request.body().unwrap().as_bytes().is_none(), "must stream");
    let response = client.execute(request).await.unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

/// Over the 1 MiB Airlock reads whole: these uploads stream through.
const BIG: usize = 1024 * 1024 + 512 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn another_body_under_its_own_declared_hash_is_another_call() {
    let (_pki, relay, airlock, recorder) = started_rules(BINDING_RULES, "").await;
    let approved_data = upload_data(BIG, 10);
    let other_data = upload_data(BIG, BIG - 10);
    let (status, body) = put_streamed(&airlock, &approved_data, true).await;
    let approved = pending_id(status, &body);
    assert_eq!(
        airlock.approval(&approved, BOB).await["call"]["body_binding"],
        "sha256"
    );
    approve_as_bob(&airlock, &approved).await;

    // The same key, another body honestly declared: a new approval, nothing forwarded.
    let (status, body) = put_streamed(&airlock, &other_data, true).await;
    let other = pending_id(status, &body);
    assert_ne!(other, approved, "the approval covered another body");
    assert!(recorder.requests().is_empty(), "{:#?}", recorder.requests());
    assert_eq!(relay.connections(), 0);

    // The approved upload still goes through, once, its bytes intact.
    let (status, body) = put_streamed(&airlock, &approved_data, true).await;
    assert_eq!(status, 200, "{body}");
    let received = recorder.requests();
    assert_eq!(received.len(), 1);
    assert_forwarded(
        &received[0],
        &airlock,
        "PUT",
        "/reports/q3.csv",
        &approved_data,
        "s3",
    );
    assert_eq!(
        received[0].header("x-amz-content-sha256"),
        [support::upstream::hex(&Sha256::digest(&approved_data))]
    );
    let (status, body) = put_streamed(&airlock, &approved_data, true).await;
    assert_ne!(pending_id(status, &body), approved);
    assert_eq!(recorder.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_streamed_upload_is_held_as_unbound_and_says_so() {
    let (_pki, relay, airlock, recorder) = started_rules(BINDING_RULES, "").await;
    let (status, body) = put_streamed(&airlock, &upload_data(BIG, 0), false).await;
    let id = pending_id(status, &body);
    let approval = airlock.approval(&id, BOB).await;
    assert_eq!(approval["call"]["body_binding"], "unbound", "{approval}");
    assert_eq!(approval["call"]["operation"], "PutObject");
    let audit = std::fs::read_to_string(airlock.dir.path().join("audit/audit.jsonl")).unwrap();
    let held: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("\"event\":\"held\"") && l.contains("\"operation\":\"PutObject\""))
        .collect();
    assert_eq!(held.len(), 1, "{audit}");
    assert!(
        held[0].contains("\"body_binding\":\"unbound\""),
        "{}",
        held[0]
    );
    assert!(recorder.requests().is_empty());
    assert_eq!(relay.connections(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deny_after_an_approval_wins_and_the_agent_hears_why() {
    let (_pki, relay, airlock, recorder) = started_with("1s", "1h", 2, "").await;
    let (status, body) = delete_bucket(&airlock).await;
    let id = pending_id(status, &body);
    let (approve, deny) = (
        format!("/v1/approvals/{id}/approve"),
        format!("/v1/approvals/{id}/deny"),
    );
    let vote = |token, path: &str, body| {
        let path = path.to_string();
        let airlock = &airlock;
        async move { api(airlock, reqwest::Method::POST, &path, Some(token), body).await }
    };
    let (status, approval) = vote(BOB, &approve, None).await;
    assert_eq!((status, approval["state"].as_str()), (200, Some("pending")));
    let (status, approval) = vote(
        CAROL,
        &deny,
        Some(serde_json::json!({"reason": "that bucket holds the audit trail"})),
    )
    .await;
    assert_eq!(
        (status, approval["state"].as_str()),
        (200, Some("denied")),
        "{approval}"
    );
    let (status, body) = delete_bucket(&airlock).await;
    assert_eq!(status, 403);
    assert!(
        body.contains(&format!(
            "Approval {id} for this call was denied by carol@example.com: that bucket holds the audit trail"
        )),
        "{body}"
    );
    assert!(recorder.requests().is_empty(), "{:#?}", recorder.requests());
    assert_eq!(relay.connections(), 0, "nothing was forwarded");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_lying_about_the_approved_hash_never_reaches_the_upstream_whole() {
    // S3 speaks HTTP/1.1: a body cut short shows as such there.
    let pki = TestPki::new();
    let (up, recorder) = upstream::start_tls_recording_h1(&pki).await;
    let relay = CountingRelay::start(up).await;
    let airlock = Airlock::start_with_rules(&pki, &config(&relay), &BASE_ENV, Some(BINDING_RULES));
    let approved_data = upload_data(BIG, 10);
    let approved_hash = support::upstream::hex(&Sha256::digest(&approved_data));
    let (status, body) = put_streamed(&airlock, &approved_data, true).await;
    let approved = pending_id(status, &body);
    approve_as_bob(&airlock, &approved).await;

    // Other bytes under the approved call's declared hash: the fingerprint matches, so
    // only the streamed check stands between them and the upstream.
    let lie = upload_data(BIG, BIG - 1);
    let (status, body) = put_streamed_declaring(&airlock, &lie, Some(&approved_hash)).await;
    assert!(
        status == 400 && body.contains("XAmzContentSHA256Mismatch"),
        "{status} {body}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = recorder.requests();
    assert!(
        received.iter().all(|r| !r.complete),
        "a body that is not the approved one arrived whole: {received:#?}"
    );
    assert!(
        received.iter().all(|r| r.body_len < lie.len() as u64),
        "{received:#?}"
    );
}

/// `aws s3api put-object` of `body` to `uploads/small.txt` with the real AWS CLI, as it
/// uploads by default (aws-chunked, `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, a CRC32 trailer).
fn cli_put(airlock: &Airlock, home: &std::path::Path, body: &[u8]) -> std::process::Output {
    let file = home.join("upload.txt");
    std::fs::write(&file, body).unwrap();
    airlock
        .aws_cli(
            home,
            &[
                "s3api",
                "put-object",
                "--bucket",
                "uploads",
                "--key",
                "small.txt",
                "--body",
                file.to_str().unwrap(),
            ],
        )
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_clis_default_small_upload_is_held_bound_by_its_payload() {
    let (_pki, _relay, airlock, recorder) = started_rules(BINDING_RULES, "").await;
    let home = tempfile::tempdir().unwrap();
    let out = cli_put(&airlock, home.path(), b"ten bytes!");
    assert!(!out.status.success());
    let id = approval_id(&String::from_utf8_lossy(&out.stderr));
    let approval = airlock.approval(&id, BOB).await;
    assert_eq!(approval["call"]["operation"], "PutObject");
    // Ten bytes in aws-chunked encoding with no declared hash: read whole, the approval
    // binds their payload.
    assert_eq!(approval["call"]["body_binding"], "sha256", "{approval}");
    assert!(recorder.requests().is_empty());
}

/// An approval of the CLI's default upload binds its bytes: the same command with another
/// body of the same length asks again, and nothing unapproved goes upstream.
#[tokio::test(flavor = "multi_thread")]
async fn an_approved_cli_upload_does_not_carry_another_body() {
    let (_pki, _relay, airlock, recorder) = started_rules(BINDING_RULES, "").await;
    let home = tempfile::tempdir().unwrap();
    let out = cli_put(&airlock, home.path(), b"ten bytes!");
    let id = approval_id(&String::from_utf8_lossy(&out.stderr));
    approve_as_bob(&airlock, &id).await;
    let evil = cli_put(&airlock, home.path(), b"evil bytes");
    let stderr = String::from_utf8_lossy(&evil.stderr);
    assert!(!evil.status.success(), "{stderr}");
    assert!(stderr.contains("needs approval"), "{stderr}");
    assert_ne!(approval_id(&stderr), id, "another body, another approval");
    let received = recorder.requests();
    assert!(
        received
            .iter()
            .all(|r| !r.body_start.windows(10).any(|w| w == b"evil bytes")),
        "a body nobody approved went upstream on approval {id}: {received:#?}"
    );
    // The approved upload still goes through, once, with its own bytes. (The recording
    // upstream answers with JSON, not S3's XML, so botocore reads the 200 as a failure and
    // retries; the retry finds the grant used. What counts is what reached the upstream.)
    let _ = cli_put(&airlock, home.path(), b"ten bytes!");
    let received = recorder.requests();
    assert_eq!(received.len(), 1, "{received:#?}");
    assert!(received[0].complete);
    assert!(
        received[0]
            .body_start
            .windows(10)
            .any(|w| w == b"ten bytes!")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_identical_calls_waiting_on_one_approval_reach_the_upstream_once() {
    let (_pki, _relay, airlock, recorder) = started_with("10s", "1h", 1, "").await;
    let calls = futures_util::future::join_all((0..20).map(|_| delete_bucket(&airlock)));
    let approve = async {
        // All twenty wait on one approval; then bob approves it.
        for _ in 0..50 {
            if !pending(&airlock).await.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Time for the other calls to park on it too.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let waiting = pending(&airlock).await;
        assert_eq!(
            waiting.len(),
            1,
            "one approval for twenty calls: {waiting:#?}"
        );
        approve_as_bob(&airlock, waiting[0]["id"].as_str().unwrap()).await;
        waiting[0]["id"].as_str().unwrap().to_string()
    };
    let (answers, id) = tokio::join!(calls, approve);
    let through = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(through, 1, "{answers:#?}");
    let received = recorder.requests();
    assert_eq!(received.len(), 1, "requests upstream: {received:#?}");
    assert_forwarded(&received[0], &airlock, "DELETE", "/", b"", "s3");
    // The other nineteen do not ride on the used grant: each is told so, and to ask again
    // (one that parked only after the vote, on a slow machine, is held on a new approval).
    let mut used = 0;
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        if approval_id(body) == id {
            assert_used(*status, body, &id);
            used += 1;
        } else {
            pending_id(*status, body);
        }
    }
    assert!(used > 0, "{answers:#?}");
    assert_eq!(
        airlock
            .metric("airlock_held_calls_total{outcome=\"used\"}")
            .await,
        used as f64
    );
}

/// The answer of a call held on approval `id` whose grant an identical call used: not
/// "pending" (the approval is decided), but used, naming it, and how to go on.
fn assert_used(status: u16, body: &str, id: &str) {
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&format!(
            "Approval {id} was granted, but an identical call waiting on it went through \
             first, and one approval lets one call through: this call was not forwarded. Run \
             it again to ask for a new approval."
        )),
        "{body}"
    );
    assert!(!body.contains("pending"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_whose_grant_an_identical_held_call_used_hears_so_and_its_retry_asks_anew() {
    let (_pki, _relay, airlock, recorder) = started_with("10s", "1h", 1, "").await;
    let client = airlock.client(false);
    let call = || async {
        let response = airlock
            .send(
                &client,
                client.delete("https://doomed.s3.amazonaws.com/"),
                "s3",
            )
            .await;
        let header = response
            .headers()
            .get("x-airlock-approval-id")
            .map(|v| v.to_str().unwrap().to_string());
        let code = response
            .headers()
            .get("x-airlock-error")
            .map(|v| v.to_str().unwrap().to_string());
        (
            response.status().as_u16(),
            response.text().await.unwrap(),
            header,
            code,
        )
    };
    let approve = async {
        for _ in 0..50 {
            if !pending(&airlock).await.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Time for the second call to park on it too.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let waiting = pending(&airlock).await;
        assert_eq!(waiting.len(), 1, "one approval for both: {waiting:#?}");
        let id = waiting[0]["id"].as_str().unwrap().to_string();
        approve_as_bob(&airlock, &id).await;
        id
    };
    let (first, second, id) = tokio::join!(call(), call(), approve);
    let (through, other) = if first.0 == 200 {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(through.0, 200, "{through:?}");
    let (status, body, header, code) = other;
    assert_used(status, &body, &id);
    assert_eq!(header.as_deref(), Some(id.as_str()));
    assert_eq!(code.as_deref(), Some("AccessDenied"));
    assert_eq!(recorder.requests().len(), 1);
    // The used approval is not offered again: the retry opens a new one.
    let (status, body) = delete_bucket(&airlock).await;
    let retry = pending_id(status, &body);
    assert_ne!(retry, id, "{body}");
    assert_eq!(recorder.requests().len(), 1);
}
