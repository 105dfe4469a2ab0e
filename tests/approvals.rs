//! Approvals through the binary: a held call waits for reviewers, goes through once when
//! approved (and only once), retries attach to the same approval, the agent's owner can
//! never approve, a deny or an expiry is what the agent hears, and a `kill -9` loses
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use sha2::{Digest, Sha256};
use support::relay::CountingRelay;
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
    started_with(hold, expires, quorum, "").await
}

/// As [`started`], with `extra` config appended.
async fn started_with(
    hold: &str,
    expires: &str,
    quorum: u32,
    extra: &str,
) -> (TestPki, CountingRelay, Airlock) {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let relay = CountingRelay::start(up).await;
    let airlock = Airlock::start_with_rules(
        &pki,
        &format!("{}{extra}", config(&relay)),
        &BASE_ENV,
        Some(&rules(hold, expires, quorum)),
    );
    (pki, relay, airlock)
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
    let (_pki, relay, airlock) = started("20s", "1h", 1).await;
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
    let (_pki, _relay, airlock) = started("1s", "1h", 2).await;
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
    assert_eq!(approve(CAROL).await.1["state"], "approved");
    assert_eq!(delete_bucket(&airlock).await.0, 200);

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
    let (pki, relay, airlock) = started("1s", "1h", 1).await;
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
    assert_eq!(delete_bucket(&airlock).await.0, 200);
    // Killed again after the grant was used: it stays used.
    let key = airlock.key().clone();
    let dir = airlock.kill_keep_dir();
    let mut airlock = Airlock::spawn(dir);
    airlock.key = Some(key);
    let (status, body) = delete_bucket(&airlock).await;
    assert_eq!(status, 403);
    assert_ne!(approval_id(&body), id);
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
    let (_pki, _relay, airlock) = started_with("1s", "1h", 2, &extra).await;
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
    let (_pki, relay, airlock) = started_with("1s", "5s", 1, &extra).await;
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
