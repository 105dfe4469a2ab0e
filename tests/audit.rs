//! The audit log through the binary: every decision and outcome is recorded, the log
//! verifies offline and fails verification when tampered with, and when the record cannot
//! be written nothing is forwarded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output};
use std::time::Duration;

use support::relay::CountingRelay;
use support::{Airlock, TestPki, upstream};

const RULES: &str = "defaults: {unmatched: allow, unclassified: allow}\nrules:\n  - {id: no-deletes, match: {action: 's3:Delete*'}, effect: deny}\n";

async fn started(extra: &str) -> (TestPki, CountingRelay, Airlock) {
    support::relay::airlock_behind_relay(extra, Some(RULES)).await
}

fn audit_cli(airlock: &Airlock, args: &[&str]) -> Output {
    Command::new(support::BIN)
        .arg("audit")
        .args(args)
        .arg("--config")
        .arg(airlock.dir.path().join("airlock.yaml"))
        .output()
        .unwrap()
}

fn records(airlock: &Airlock) -> Vec<serde_json::Value> {
    std::fs::read_to_string(airlock.dir.path().join("audit/audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_and_outcomes_are_recorded_and_the_log_proves_itself() {
    let (_pki, _relay, airlock) = started("audit:\n  checkpoint_every: 2\n").await;
    let client = airlock.client(false);
    let get = airlock
        .send(
            &client,
            client.get("https://reports.s3.amazonaws.com/q1.csv"),
            "s3",
        )
        .await;
    assert_eq!(get.status(), 200);
    let delete = airlock
        .send(
            &client,
            client.delete("https://reports.s3.amazonaws.com/q1.csv"),
            "s3",
        )
        .await;
    assert_eq!(delete.status(), 403);
    let unsigned = client
        .get("https://reports.s3.amazonaws.com/q1.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let records = records(&airlock);
    let events: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap(),
                r["outcome"].as_str().or(r["rule"].as_str()).unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("allowed", "default"),
            ("forwarded", "200"),
            ("denied", "no-deletes"),
            ("failed", "MissingAuthenticationToken"),
        ],
        "{records:#?}"
    );
    let allowed = &records[0];
    assert_eq!(allowed["agent"], support::TEST_AGENT);
    assert_eq!(allowed["owner"], support::TEST_OWNER);
    assert_eq!(allowed["operation"], "GetObject");
    assert_eq!(allowed["actions"][0], "s3:GetObject");
    assert_eq!(allowed["resources"][0], "arn:aws:s3:::reports/q1.csv");
    assert_eq!(allowed["rules_version"].as_str().unwrap().len(), 64);
    assert_eq!(allowed["params_digest"].as_str().unwrap().len(), 64);
    assert_eq!(allowed["request_id"], records[1]["request_id"]);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(airlock.dir.path().join("audit/audit.jsonl"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let out = audit_cli(&airlock, &["verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Checkpoints follow the writer's batches (one once 2 or more records are new): at
    // least one, however the 4 records were batched.
    assert!(text.contains("ok: 4 records, "), "{text}");
    assert!(!text.contains(", 0 signed checkpoints"), "{text}");

    // A tampered copy: the outcome of the forwarded call rewritten.
    let copy = airlock.dir.path().join("copy.jsonl");
    let original = std::fs::read_to_string(airlock.dir.path().join("audit/audit.jsonl")).unwrap();
    std::fs::write(
        &copy,
        original.replacen("\"outcome\":\"200\"", "\"outcome\":\"404\"", 1),
    )
    .unwrap();
    std::fs::copy(
        airlock.dir.path().join("audit/audit.jsonl.checkpoints"),
        airlock.dir.path().join("copy.jsonl.checkpoints"),
    )
    .unwrap();
    let out = audit_cli(&airlock, &["verify", "--log", copy.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("FAILED at record 2: changed"), "{text}");

    // Evidence: CSV from a time.
    let out = audit_cli(
        &airlock,
        &[
            "export",
            "--format",
            "csv",
            "--since",
            "2020-01-01T00:00:00Z",
        ],
    );
    assert!(out.status.success());
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.starts_with("seq,time,event,"), "{csv}");
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.contains(",denied,"), "{csv}");
    let out = audit_cli(&airlock, &["export", "--since", "2999-01-01T00:00:00Z"]);
    assert!(out.status.success() && out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn when_the_audit_record_cannot_be_written_nothing_is_forwarded() {
    // The log is a symlink to /dev/full: every write fails with "no space left".
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let relay = CountingRelay::start(up).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("audit")).unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join("audit/audit.jsonl")).unwrap();
    let airlock = Airlock::start_in(
        dir,
        &pki,
        &format!(
            "upstream:\n  routes:\n    - host: \"*.amazonaws.com\"\n      to: https://{}\n",
            relay.addr
        ),
    );
    let client = airlock.client(false);
    let response = airlock
        .send(
            &client,
            client.get("https://reports.s3.amazonaws.com/q1.csv"),
            "s3",
        )
        .await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(body.contains("cannot write its audit log"), "{body}");
    assert_eq!(relay.connections(), 0, "forwarded without an audit record");
    assert_eq!(
        airlock.metric("airlock_audit_write_failures_total").await,
        1.0
    );
}
