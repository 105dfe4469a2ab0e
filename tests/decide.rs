//! The decide phase through the binary: the rules in force decide every authenticated
//! call; denials and calls needing approval are AWS-shaped AccessDenied errors that never
//! reach the upstream; rule files reload live, and a broken edit changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use support::relay::CountingRelay;
use support::{Airlock, TestPki};

async fn started(rules: Option<&str>) -> (TestPki, CountingRelay, Airlock) {
    support::relay::airlock_behind_relay("", rules).await
}

async fn status_and_body(
    airlock: &Airlock,
    request: reqwest::RequestBuilder,
    service: &str,
) -> (u16, String) {
    let client = airlock.client(false);
    let response = airlock.send(&client, request, service).await;
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_baseline_lets_reads_through_and_holds_back_the_rest() {
    let baseline = support::baseline_rules_quick_hold();
    let (_pki, relay, airlock) = started(Some(&baseline)).await;
    let client = airlock.client(false);

    // A delete needs approval: held (1 s here), then told what is pending, in S3's XML.
    let (status, body) = status_and_body(
        &airlock,
        client.delete("https://reports.s3.amazonaws.com/"),
        "s3",
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<Code>AccessDenied</Code>")
            && body.contains("needs approval (rule `destruction`). This call destroys something.")
            && body.contains("airlock approvals wait apr-"),
        "{body}"
    );
    // A call Airlock cannot classify is denied by default, in the query protocol's XML.
    let (status, body) = status_and_body(
        &airlock,
        client
            .post("https://sts.amazonaws.com/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("Action=NoSuchThing&Version=2011-06-15"),
        "sts",
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<ErrorResponse>") && body.contains("denied this call (rule `default`)"),
        "{body}"
    );
    assert_eq!(
        relay.connections(),
        0,
        "a refused call reached the upstream"
    );
    let (status, _) = status_and_body(
        &airlock,
        client.get("https://reports.s3.amazonaws.com/q1.csv"),
        "s3",
    )
    .await;
    assert_eq!(status, 200, "a read runs");
    assert_eq!(
        airlock
            .metric("airlock_decisions_total{effect=\"approve\",rule=\"destruction\"}")
            .await,
        1.0
    );
    assert_eq!(
        airlock
            .metric("airlock_decisions_total{effect=\"allow\",rule=\"reads\"}")
            .await,
        1.0
    );
}

/// Poll for up to 10 s (rule files are polled every second).
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rule_edits_apply_live_and_a_broken_edit_keeps_the_rules_in_force() {
    let (_pki, _relay, airlock) = started(Some(
        "defaults: {unmatched: allow, unclassified: deny}\nrules: []\n",
    ))
    .await;
    let client = airlock.client(false);
    let get = || client.get("https://reports.s3.amazonaws.com/q1.csv");
    assert_eq!(status_and_body(&airlock, get(), "s3").await.0, 200);

    let rules = airlock.dir.path().join("rules");
    std::fs::write(
        rules.join("no-reports.yaml"),
        "rules:\n  - id: no-reports\n    match: {resource: 'arn:aws:s3:::reports/*'}\n    effect: deny\n    message: Reports are off limits.\n",
    )
    .unwrap();
    eventually("the new rule denies", async || {
        let (status, body) = status_and_body(&airlock, get(), "s3").await;
        status == 403 && body.contains("Reports are off limits.")
    })
    .await;

    // A broken edit: logged, counted, in /readyz; the rules in force stay.
    std::fs::write(
        rules.join("broken.yaml"),
        "rules:\n  - id: x\n    effect: sometimes\n",
    )
    .unwrap();
    eventually("the rejected reload shows", async || {
        airlock
            .metric("airlock_reloads_total{result=\"error\",what=\"rules\"}")
            .await
            >= 1.0
    })
    .await;
    let (_, ready) = airlock.control_get("/readyz").await;
    assert!(ready.contains("broken.yaml:3"), "{ready}");
    assert_eq!(status_and_body(&airlock, get(), "s3").await.0, 403);

    std::fs::remove_file(rules.join("broken.yaml")).unwrap();
    std::fs::remove_file(rules.join("no-reports.yaml")).unwrap();
    eventually("the repaired rules apply", async || {
        status_and_body(&airlock, get(), "s3").await.0 == 200
    })
    .await;
    assert!(!airlock.control_get("/readyz").await.1.contains("reload of"));
}

#[test]
fn serve_refuses_to_start_with_broken_rules() {
    let dir = support::init_dir();
    std::fs::write(
        dir.path().join("rules/bad.yaml"),
        "rules: [{id: y, effect: allow, quorum: 2}]\n",
    )
    .unwrap();
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--config"])
        .arg(dir.path().join("airlock.yaml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:1: rules[0].quorum: only `effect: approve` rules take `quorum`"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rule_file_broken_in_place_keeps_its_previous_rules_until_repaired() {
    let (_pki, _relay, airlock) = started(Some(
        "defaults: {unmatched: allow, unclassified: deny}\nrules:\n  - id: no-reports\n    match: {resource: 'arn:aws:s3:::reports/*'}\n    effect: deny\n    message: Reports are off limits.\n",
    ))
    .await;
    let client = airlock.client(false);
    let reports = || client.get("https://reports.s3.amazonaws.com/q1.csv");
    let logs = || client.get("https://logs.s3.amazonaws.com/today.txt");
    let (status, body) = status_and_body(&airlock, reports(), "s3").await;
    assert!(
        status == 403 && body.contains("Reports are off limits."),
        "{body}"
    );
    assert_eq!(status_and_body(&airlock, logs(), "s3").await.0, 200);

    // The same file, rewritten in place into a broken state (no new file, no rename).
    let file = airlock.dir.path().join("rules/test.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let broken = text.replace("effect: deny", "effect: sometimes");
    assert_ne!(broken, text);
    {
        use std::io::Write;
        let mut handle = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file)
            .unwrap();
        handle.write_all(broken.as_bytes()).unwrap();
    }
    eventually("the rejected reload shows", async || {
        airlock
            .metric("airlock_reloads_total{result=\"error\",what=\"rules\"}")
            .await
            >= 1.0
    })
    .await;
    let (_, ready) = airlock.control_get("/readyz").await;
    assert!(ready.contains("test.yaml:5"), "{ready}");
    // The previous rules of that very file stay in force: the denial still denies, and a
    // call they allow still passes.
    let (status, body) = status_and_body(&airlock, reports(), "s3").await;
    assert!(
        status == 403 && body.contains("Reports are off limits."),
        "the broken file's old rule was dropped: {status} {body}"
    );
    assert_eq!(status_and_body(&airlock, logs(), "s3").await.0, 200);

    // Repaired in place (now allowing the reports): it takes effect, the note goes.
    let repaired = text.replace("effect: deny", "effect: allow");
    std::fs::write(&file, repaired).unwrap();
    eventually("the repaired rules apply", async || {
        status_and_body(&airlock, reports(), "s3").await.0 == 200
    })
    .await;
    assert!(!airlock.control_get("/readyz").await.1.contains("reload of"));
    assert_eq!(
        airlock
            .metric("airlock_reloads_total{result=\"error\",what=\"rules\"}")
            .await,
        1.0,
        "one rejected reload, counted once"
    );
}
