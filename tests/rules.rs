//! `airlock rules check | test | explain` through the binary: what a security team runs in
//! CI and at the desk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output};

fn airlock(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(support::BIN)
        .arg("rules")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn shipped() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

#[test]
fn the_shipped_rules_check_clean_and_their_tests_pass() {
    let out = airlock(&shipped(), &["check"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("0 warnings"), "{}", text(&out));
    let out = airlock(&shipped(), &["test"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(", 0 failed"), "{}", text(&out));
}

#[test]
fn a_broken_rule_file_fails_check_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("team.yaml"),
        "rules:\n  - id: ok\n    effect: allow\n  - id: broken\n    effect: maybe\n",
    )
    .unwrap();
    let out = airlock(dir.path(), &["check"]);
    assert!(!out.status.success());
    let report = text(&out);
    assert!(
        report.contains("team.yaml:5: rules[1].effect: unknown variant `maybe`"),
        "{report}"
    );
}

#[test]
fn check_warns_about_operation_patterns_that_match_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.yaml"),
        "rules:\n  - id: typo\n    match: {operation: [sqladmin.instances.export, AttachRolePolicy, storage.buckets.delete]}\n    effect: deny\n",
    )
    .unwrap();
    let out = airlock(dir.path(), &["check"]);
    let report = text(&out);
    assert!(out.status.success(), "warnings do not fail the check");
    // Cloud SQL's method ids are `sql.*`: the typo is named, the real names are not.
    assert!(
        report.contains(
            "operation `sqladmin.instances.export` matches no AWS operation or Google method"
        ),
        "{report}"
    );
    assert!(!report.contains("`AttachRolePolicy`"), "{report}");
    assert!(!report.contains("`storage.buckets.delete`"), "{report}");
}

#[test]
fn check_warns_about_action_patterns_that_match_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("typo.yaml"),
        "rules:\n  - id: typo\n    match: {action: 'iam:AttachRolePolicies'}\n    effect: deny\n",
    )
    .unwrap();
    let out = airlock(dir.path(), &["check"]);
    assert!(out.status.success(), "warnings do not fail the check");
    assert!(
        text(&out).contains(
            "typo.yaml:2: warning: rule `typo`: action `iam:AttachRolePolicies` matches no AWS action or Google permission"
        ),
        "{}",
        text(&out)
    );
}

#[test]
fn check_warns_about_rules_that_never_decide() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.yaml"),
        "rules:
  - {id: no-iam-writes, match: {action: 'iam:*', access: [Write, Permissions management]}, effect: deny}
  - {id: allow-role-creation, match: {action: 'iam:CreateRole', access: Write}, effect: allow}
  - {id: allow-prod-reads, match: {action: 's3:Get*', resource: 'arn:aws:s3:::prod/*'}, effect: allow}
",
    )
    .unwrap();
    let out = airlock(dir.path(), &["check"]);
    let report = text(&out);
    assert!(
        report.contains(
            "r.yaml:3: warning: rule `allow-role-creation`: never decides: rule `no-iam-writes`"
        ),
        "{report}"
    );
    assert!(!report.contains("allow-prod-reads"), "{report}");
}

#[test]
fn a_failing_case_fails_the_test_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.yaml"),
        "rules:\n  - {id: reads, match: {access: Read}, effect: allow}\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("tests")).unwrap();
    std::fs::write(
        dir.path().join("tests/cases.yaml"),
        "agent: {name: bot, owner: a@example.com}\ncases:\n  - name: reads run\n    call: {service: s3, operation: GetObject}\n    expect: allow\n  - name: deletes are denied\n    call: {service: s3, operation: DeleteBucket}\n    expect: deny\n",
    )
    .unwrap();
    let out = airlock(dir.path(), &["test"]);
    assert!(!out.status.success());
    let report = text(&out);
    assert!(report.contains("ok   "), "{report}");
    assert!(
        report.contains("FAIL ")
            && report.contains("deletes are denied: expected deny, got approve"),
        "{report}"
    );
    assert!(report.contains("2 cases, 1 failed"), "{report}");
}

#[test]
fn explain_shows_the_decision_for_a_raw_request_and_a_described_call() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("attach.http");
    let body = "Action=AttachRolePolicy&Version=2010-05-08&RoleName=app&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FAdministratorAccess";
    std::fs::write(
        &raw,
        format!(
            "POST / HTTP/1.1\r\nHost: iam.amazonaws.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .unwrap();
    let out = airlock(&shipped(), &["explain", raw.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["decision"]["effect"], "approve");
    assert_eq!(json["decision"]["rule"], "permissions");
    assert_eq!(json["call"]["operation"], "AttachRolePolicy");
    assert_eq!(json["decision"]["approval"]["groups"][0], "security");
    assert_eq!(
        json["call"]["params"]["PolicyArn"],
        "arn:aws:iam::aws:policy/AdministratorAccess"
    );

    let out = airlock(
        &shipped(),
        &[
            "explain",
            "--call",
            r#"{"service":"s3","operation":"GetObject","params":{"Bucket":"b","Key":"k"}}"#,
        ],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["decision"]["effect"], "allow");
    assert_eq!(json["decision"]["rule"], "reads");
}
