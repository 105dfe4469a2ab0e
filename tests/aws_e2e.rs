//! End to end with real clients and a real upstream: the AWS CLI (1.46.2) and boto3
//! (1.44.5) are the agents, with only environment variables set (`HTTPS_PROXY`,
//! `AWS_CA_BUNDLE`, Airlock-issued keys); moto (5.2.5, `tests/aws/moto_server.py`) is AWS,
//! with authentication enforced after the bootstrap calls, reached through
//! `upstream.routes` and a counting relay. Airlock's own base credentials are moto's IAM
//! user `airlock`; it assumes `agent-role` for the agent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};
use support::aws::{Stack, stack, stack_with, stack_with_rules, world};
use support::upstream::hex;
use support::{AgentKey, TEST_AGENT, python};

fn sha256_file(path: &Path) -> String {
    hex(&Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_is_the_agents_assumed_role_session() {
    let stack = stack().await;
    let identity = stack.aws_json(&["sts", "get-caller-identity"]);
    assert_eq!(
        identity["Arn"],
        format!(
            "arn:aws:sts::{}:assumed-role/agent-role/{TEST_AGENT}",
            world().account
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_with_the_cli_round_trips_bytes_intact() {
    let stack = stack().await;
    let dir = stack.home.path();
    let small = dir.join("small.txt");
    std::fs::write(&small, "hello through airlock\n").unwrap();
    // ≥ 50 MB: the CLI uploads it in 8 MiB multipart parts.
    let big = dir.join("big.bin");
    let data: Vec<u8> = (0..60 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&big, &data).unwrap();

    stack.aws(&["s3", "mb", "s3://e2e-cli"]);
    stack.aws(&[
        "s3",
        "cp",
        small.to_str().unwrap(),
        "s3://e2e-cli/small.txt",
    ]);
    stack.aws(&["s3", "cp", big.to_str().unwrap(), "s3://e2e-cli/big.bin"]);
    let listing = stack.aws(&["s3", "ls", "s3://e2e-cli/"]);
    assert!(
        listing.contains("small.txt") && listing.contains("big.bin"),
        "{listing}"
    );
    assert!(
        listing.contains(&data.len().to_string()),
        "size of big.bin: {listing}"
    );

    for name in ["small.txt", "big.bin"] {
        let back = dir.join(format!("back-{name}"));
        stack.aws(&[
            "s3",
            "cp",
            &format!("s3://e2e-cli/{name}"),
            back.to_str().unwrap(),
        ]);
        assert_eq!(
            sha256_file(&back),
            sha256_file(&dir.join(name)),
            "{name} changed on the way"
        );
    }

    // A presigned GET (SigV4), fetched through Airlock by a plain HTTP client.
    let url = stack.aws(&["s3", "presign", "s3://e2e-cli/small.txt"]);
    let fetched = Command::new("curl")
        .args(["-sS", "--fail", "--proxy"])
        .arg(format!("http://{}", stack.airlock.proxy))
        .arg("--cacert")
        .arg(stack.airlock.ca_pem_path())
        .arg(url.trim())
        .output()
        .unwrap();
    assert!(
        fetched.status.success(),
        "presigned GET: {}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    assert_eq!(fetched.stdout, b"hello through airlock\n");

    stack.aws(&["s3", "rm", "s3://e2e-cli/small.txt"]);
    stack.aws(&["s3", "rm", "s3://e2e-cli/big.bin"]);
    stack.aws(&["s3", "rb", "s3://e2e-cli"]);
    let buckets = stack.aws(&["s3", "ls"]);
    assert!(!buckets.contains("e2e-cli"), "{buckets}");
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_uploads_with_trailing_checksums_plain_and_signed_chunks() {
    let stack = stack().await;
    let code = r#"
import os
s3 = boto3.client("s3")
s3.create_bucket(Bucket="e2e-boto3")
sent = {}
def capture(request, **_):
    sent.update({k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})
s3.meta.events.register("before-send.s3.PutObject", capture)
body = os.urandom(3 * 1024 * 1024 + 17)
s3.put_object(Bucket="e2e-boto3", Key=os.environ["KEY"], Body=body)
got = s3.get_object(Bucket="e2e-boto3", Key=os.environ["KEY"])["Body"].read()
print(json.dumps({"sent": hashlib.sha256(body).hexdigest(), "got": hashlib.sha256(got).hexdigest(),
                  "payload": sent.get("x-amz-content-sha256"), "encoding": sent.get("content-encoding")}))
"#;
    // Default settings: aws-chunked with a CRC trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER);
    // `when_required`: a plain body with its SHA-256.
    for (key, mode) in [
        ("default.bin", "when_supported"),
        ("plain.bin", "when_required"),
    ] {
        let out = stack.boto3(
            &code.replace(
                "s3.create_bucket(Bucket=\"e2e-boto3\")",
                if key == "default.bin" {
                    "s3.create_bucket(Bucket=\"e2e-boto3\")"
                } else {
                    ""
                },
            ),
            &[("KEY", key), ("AWS_REQUEST_CHECKSUM_CALCULATION", mode)],
        );
        let result: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(result["sent"], result["got"], "{mode}: bytes changed");
        if mode == "when_supported" {
            assert_eq!(
                (result["payload"].as_str(), result["encoding"].as_str()),
                (
                    Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
                    Some("aws-chunked")
                ),
                "{result}"
            );
        } else {
            assert_ne!(result["encoding"], "aws-chunked", "{result}");
        }
    }
    let modes: Vec<String> = stack
        .airlock
        .logs()
        .iter()
        .filter(|l| l.contains("PutObject"))
        .map(|l| l.to_string())
        .collect();
    assert_eq!(modes.len(), 2, "{modes:?}");

    // Signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), which boto3 does not send: a Rust
    // client that does; moto decodes the re-signed chunks back into the object.
    let data: Vec<u8> = (0..(200 * 1024 + 5) as u32)
        .map(|i| (i % 253) as u8)
        .collect();
    let client = stack.airlock.client(false);
    let request = support::signing::signed_chunked_put(
        "https://e2e-boto3.s3.amazonaws.com/chunked.bin",
        stack.airlock.key(),
        &data,
        64 * 1024,
        false,
    );
    let response = client.execute(request).await.unwrap();
    let status = response.status();
    assert_eq!(status, 200, "{}", response.text().await.unwrap());
    let out = stack.boto3(
        r#"print(hashlib.sha256(boto3.client("s3").get_object(Bucket="e2e-boto3", Key="chunked.bin")["Body"].read()).hexdigest())"#,
        &[],
    );
    assert_eq!(out.trim(), hex(&Sha256::digest(&data)));
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_dynamodb_ec2_sqs_lambda_and_kms_work_through_airlock() {
    let stack = stack().await;
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = stack.aws_json(&[
        "iam",
        "create-role",
        "--role-name",
        "e2e-app",
        "--assume-role-policy-document",
        trust,
    ]);
    assert_eq!(role["Role"]["RoleName"], "e2e-app");
    let policy = stack.aws_json(&[
        "iam",
        "create-policy",
        "--policy-name",
        "e2e-read",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
    ]);
    let policy_arn = policy["Policy"]["Arn"].as_str().unwrap().to_string();
    stack.aws(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        "e2e-app",
        "--policy-arn",
        &policy_arn,
    ]);
    let attached = stack.aws_json(&[
        "iam",
        "list-attached-role-policies",
        "--role-name",
        "e2e-app",
    ]);
    assert_eq!(
        attached["AttachedPolicies"][0]["PolicyArn"],
        policy_arn.as_str()
    );

    let table = stack.aws_json(&[
        "dynamodb",
        "create-table",
        "--table-name",
        "e2e",
        "--attribute-definitions",
        "AttributeName=id,AttributeType=S",
        "--key-schema",
        "AttributeName=id,KeyType=HASH",
        "--billing-mode",
        "PAY_PER_REQUEST",
    ]);
    assert_eq!(table["TableDescription"]["TableName"], "e2e");
    stack.aws(&[
        "dynamodb",
        "put-item",
        "--table-name",
        "e2e",
        "--item",
        r#"{"id":{"S":"cli"}}"#,
    ]);
    // boto3 with and without account-ID endpoints (<account>.ddb.<region>.amazonaws.com).
    let put_and_scan = r#"
ddb = boto3.client("dynamodb")
ddb.put_item(TableName="e2e", Item={"id": {"S": __import__("os").environ["ITEM"]}})
print(json.dumps(sorted(i["id"]["S"] for i in ddb.scan(TableName="e2e")["Items"])))
"#;
    let account = world().account.as_str();
    let out = stack.boto3(
        put_and_scan,
        &[
            ("ITEM", "account-endpoint"),
            ("AWS_ACCOUNT_ID", account),
            ("AWS_ACCOUNT_ID_ENDPOINT_MODE", "required"),
        ],
    );
    assert!(
        out.contains("account-endpoint") && out.contains("cli"),
        "{out}"
    );
    let out = stack.boto3(
        put_and_scan,
        &[
            ("ITEM", "regional-endpoint"),
            ("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled"),
        ],
    );
    assert!(out.contains("regional-endpoint"), "{out}");
    let hosts = stack.hosts_seen();
    for host in [
        format!("{account}.ddb.us-east-1.amazonaws.com"),
        "dynamodb.us-east-1.amazonaws.com".to_string(),
    ] {
        assert!(hosts.contains(&host), "{host} not used: {hosts:?}");
    }

    let reservations = stack.aws_json(&["ec2", "describe-instances"]);
    assert!(reservations["Reservations"].is_array(), "{reservations}");

    let queue = stack.aws_json(&["sqs", "create-queue", "--queue-name", "e2e"]);
    let url = queue["QueueUrl"].as_str().unwrap().to_string();
    stack.aws(&[
        "sqs",
        "send-message",
        "--queue-url",
        &url,
        "--message-body",
        "through airlock",
    ]);
    let received = stack.aws_json(&["sqs", "receive-message", "--queue-url", &url]);
    assert_eq!(received["Messages"][0]["Body"], "through airlock");

    let functions = stack.aws_json(&["lambda", "list-functions"]);
    assert!(functions["Functions"].is_array(), "{functions}");

    let key = stack.aws_json(&["kms", "create-key"]);
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let encrypted = stack.aws_json(&[
        "kms",
        "encrypt",
        "--key-id",
        &key_id,
        "--plaintext",
        "aGVsbG8=",
    ]);
    assert!(
        encrypted["CiphertextBlob"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_agent_secret_is_refused_by_airlock_and_never_reaches_aws() {
    let stack = stack().await;
    let wrong = AgentKey {
        id: stack.airlock.key().id.clone(),
        secret: "not-the-secret-not-the-secret-not-the-se".into(),
    };
    let out = stack.aws_as(&wrong, &["sts", "get-caller-identity"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SignatureDoesNotMatch"),
        "the CLI printed: {stderr}"
    );
    let real_key = AgentKey {
        id: world().access_key_id.clone(),
        secret: world().secret_access_key.clone(),
    };
    let out = stack.aws_as(&real_key, &["s3", "ls"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("InvalidClientTokenId"),
        "a real AWS key went through: {stderr}"
    );
    assert_eq!(stack.relay.connections(), 0, "moto saw a refused request");

    // An agent whose role does not trust Airlock: STS refuses, the agent is told why.
    let trust_other = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/someone-else"},"Action":"sts:AssumeRole"}]}"#;
    stack.aws(&[
        "iam",
        "create-role",
        "--role-name",
        "untrusting",
        "--assume-role-policy-document",
        trust_other,
    ]);
    let stray = support::add_agent(
        stack.airlock.dir.path(),
        "stray",
        "bob@example.com",
        "arn:aws:iam::123456789012:role/untrusting",
    );
    std::thread::sleep(std::time::Duration::from_millis(1500)); // agents.yaml is polled
    let out = stack.aws_as(&stray, &["sts", "get-caller-identity"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("AccessDenied")
            && stderr.contains("cannot assume role arn:aws:iam::123456789012:role/untrusting"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn negative_control_moto_rejects_requests_signed_wrongly_for_a_real_session() {
    // Without Airlock: a session of the same role, and requests signed with it except for
    // one detail. moto must refuse them, or the end-to-end tests above would prove nothing.
    let world = world();
    let code = r#"
import os, botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import urllib.request, urllib.error
url = os.environ["MOTO"]
sts = boto3.client("sts", endpoint_url=url, region_name="us-east-1",
                   aws_access_key_id=os.environ["BASE_ID"], aws_secret_access_key=os.environ["BASE_SECRET"])
c = sts.assume_role(RoleArn=os.environ["ROLE"], RoleSessionName="control")["Credentials"]
def send(method, host, path, service, body, secret, token):
    creds = Credentials(c["AccessKeyId"], secret, token)
    req = AWSRequest(method=method, url=f"https://{host}{path}", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"} if body else {})
    SigV4Auth(creds, service, "us-east-1").add_auth(req)
    headers = dict(req.headers.items())
    r = urllib.request.Request(url + path, data=body.encode() or None, method=method, headers=headers)
    r.add_header("Host", host)
    try:
        return urllib.request.urlopen(r).status, ""
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
ident = "Action=GetCallerIdentity&Version=2011-06-15"
print(json.dumps({
  "good": send("POST", "sts.amazonaws.com", "/", "sts", ident, c["SecretAccessKey"], c["SessionToken"]),
  "wrong_secret": send("POST", "sts.amazonaws.com", "/", "sts", ident, c["SecretAccessKey"][:-1] + ("y" if c["SecretAccessKey"].endswith("x") else "x"), c["SessionToken"]),
  "no_token": send("POST", "sts.amazonaws.com", "/", "sts", ident, c["SecretAccessKey"], None),
  "lambda_good": send("GET", "lambda.us-east-1.amazonaws.com", "/2015-03-31/functions/", "lambda", "", c["SecretAccessKey"], c["SessionToken"]),
  "lambda_wrong": send("GET", "lambda.us-east-1.amazonaws.com", "/2015-03-31/functions/", "lambda", "", "x" * 40, c["SessionToken"]),
}))
"#;
    let out = Command::new(python())
        .env("MOTO", world.moto.url())
        .env("BASE_ID", &world.access_key_id)
        .env("BASE_SECRET", &world.secret_access_key)
        .env("ROLE", &world.role_arn)
        .args(["-c", &format!("import boto3, json\n{code}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["good"][0], 200, "{result}");
    assert_eq!(result["lambda_good"][0], 200, "{result}");
    for case in ["wrong_secret", "no_token", "lambda_wrong"] {
        assert_eq!(result[case][0], 403, "{case}: {result}");
    }
    assert!(
        result["wrong_secret"][1]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch"),
        "{result}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn under_the_shipped_rules_the_cli_reads_and_is_told_why_a_change_is_held() {
    let stack = stack_with_rules(Some(&support::baseline_rules_quick_hold())).await;
    stack.aws(&["sts", "get-caller-identity"]);
    stack.aws(&["iam", "list-roles"]);
    let out = stack.aws_as(
        stack.airlock.key(),
        &[
            "iam",
            "attach-role-policy",
            "--role-name",
            "agent-role",
            "--policy-arn",
            "arn:aws:iam::123456789012:policy/anything",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "An error occurred (AccessDenied) when calling the AttachRolePolicy operation"
        ) && stderr.contains("needs approval (rule `permissions`). This call changes permissions.")
            && stderr.contains("airlock approvals wait apr-"),
        "the CLI printed: {stderr}"
    );
}

/// A reviewer's API call: (status, JSON).
async fn review(stack: &Stack, path: &str, token: &str, body: &str) -> (u16, serde_json::Value) {
    let request = reqwest::Client::new()
        .post(format!("http://{}{path}", stack.airlock.control))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string());
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_waits_for_a_human_and_the_audit_log_proves_what_happened() {
    use sha2::Digest as _;
    let hash = |t: &str| hex(&Sha256::digest(t.as_bytes()));
    let rules = "defaults: {unmatched: allow, unclassified: deny}\nrules:\n  - {id: iam-policies, match: {action: 'iam:AttachRolePolicy'}, effect: approve, approvers: [security], hold: 4s, expires: 1h, message: Attaching a policy.}\n";
    let extra = format!(
        "approvals:\n  approvers:\n    - {{name: bob@example.com, groups: [security], token_sha256: {}}}\n    - {{name: {}, groups: [security], token_sha256: {}}}\naudit:\n  checkpoint_every: 5\n",
        hash("bob"),
        support::TEST_OWNER,
        hash("owner")
    );
    let stack = stack_with(Some(rules), &extra).await;
    let arn = stack.role_and_policy("e2e-held");
    let attach = [
        "iam",
        "attach-role-policy",
        "--role-name",
        "e2e-held",
        "--policy-arn",
        arn.as_str(),
    ];

    // First try: parked for the hold, then told what is pending.
    let out = stack.aws_as(stack.airlock.key(), &attach);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success()
            && stderr.contains("(AccessDenied)")
            && stderr.contains("airlock approvals wait apr-"),
        "{stderr}"
    );
    let id = &stderr[stderr.find("apr-").unwrap()..][..30];

    // The owner cannot approve; bob can, while the CLI's retry is held.
    let (status, _) = review(
        &stack,
        &format!("/v1/approvals/{id}/approve"),
        "owner",
        "{}",
    )
    .await;
    assert_eq!(status, 403);
    let retry = std::thread::spawn({
        let key = stack.airlock.key().clone();
        let command = stack.aws_command(&key, &attach);
        move || {
            let mut command = command;
            command.output().unwrap()
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (status, body) = review(
        &stack,
        &format!("/v1/approvals/{id}/approve"),
        "bob",
        r#"{"reason":"read-only policy"}"#,
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("approved")),
        "{body}"
    );
    stack.assert_held_call_attached(retry, "e2e-held", &arn);
    let pending: Vec<String> = stack
        .airlock
        .logs()
        .iter()
        .filter(|l| l.contains("\"decision.effect\":\"approve\""))
        .map(String::from)
        .collect();
    assert_eq!(
        pending.len(),
        2,
        "one approval, two held attempts: {pending:?}"
    );

    // A denial: the CLI prints who denied and why.
    let detach = [
        "iam",
        "attach-role-policy",
        "--role-name",
        "e2e-held",
        "--policy-arn",
        "arn:aws:iam::123456789012:policy/other",
    ];
    let out = stack.aws_as(stack.airlock.key(), &detach);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let other = &stderr[stderr.find("apr-").unwrap()..][..30];
    assert_ne!(other, id);
    let (status, _) = review(
        &stack,
        &format!("/v1/approvals/{other}/deny"),
        "bob",
        r#"{"reason":"not this one"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let out = stack.aws_as(stack.airlock.key(), &detach);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("(AccessDenied)")
            && stderr.contains("denied by bob@example.com: not this one"),
        "{stderr}"
    );

    // The audit log verifies, and a tampered copy does not.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let verify = |log: &std::path::Path| stack.verify_audit(log);
    let log = stack.airlock.dir.path().join("audit/audit.jsonl");
    let out = verify(&log);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("\"event\":\"voted\"") && text.contains(&format!("\"approval_id\":\"{id}\"")),
        "{text}"
    );
    let copy = stack.airlock.dir.path().join("tampered.jsonl");
    std::fs::write(
        &copy,
        text.replacen("bob@example.com", "eve@example.com", 1),
    )
    .unwrap();
    std::fs::copy(
        stack
            .airlock
            .dir
            .path()
            .join("audit/audit.jsonl.checkpoints"),
        stack.airlock.dir.path().join("tampered.jsonl.checkpoints"),
    )
    .unwrap();
    let out = verify(&copy);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("FAILED at record"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_sees_an_expiry_deny_and_a_restart_in_the_middle_loses_nothing() {
    use sha2::Digest as _;
    let hash = |t: &str| hex(&Sha256::digest(t.as_bytes()));
    let rules = "defaults: {unmatched: allow, unclassified: deny}\nrules:\n  - {id: iam-policies, match: {action: 'iam:AttachRolePolicy'}, effect: approve, approvers: [security], hold: 2s, expires: 1h}\n  - {id: quick-tags, match: {action: 'iam:TagRole'}, effect: approve, approvers: [security], hold: 3s, expires: 3s}\n";
    let extra = format!(
        "approvals:\n  approvers:\n    - {{name: bob@example.com, groups: [security], token_sha256: {}}}\n",
        hash("bob")
    );
    let stack = stack_with(Some(rules), &extra).await;
    let arn = stack.role_and_policy("e2e-restart");
    let arn = arn.as_str();
    let attach = [
        "iam",
        "attach-role-policy",
        "--role-name",
        "e2e-restart",
        "--policy-arn",
        arn,
    ];
    let out = stack.aws_as(stack.airlock.key(), &attach);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("airlock approvals wait apr-"), "{stderr}");
    let id = stderr[stderr.find("apr-").unwrap()..][..30].to_string();

    // Airlock is killed while the approval is pending, and comes back with it.
    let stack = stack.restart();
    let (status, body) = {
        let response = reqwest::Client::new()
            .get(format!(
                "http://{}/v1/approvals?state=pending",
                stack.airlock.control
            ))
            .bearer_auth("bob")
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(status, 200);
    assert_eq!(body["approvals"][0]["id"], id.as_str(), "{body}");
    let (status, _) = review(&stack, &format!("/v1/approvals/{id}/approve"), "bob", "{}").await;
    assert_eq!(status, 200);
    // The re-run goes through once; the grant is then used up, so a third run asks again.
    let out = stack.aws_as(stack.airlock.key(), &attach);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let attached = stack.aws_json(&[
        "iam",
        "list-attached-role-policies",
        "--role-name",
        "e2e-restart",
    ]);
    assert_eq!(attached["AttachedPolicies"][0]["PolicyArn"], arn);
    let out = stack.aws_as(stack.airlock.key(), &attach);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && stderr.contains("apr-") && !stderr.contains(&id),
        "a used grant asks again: {stderr}"
    );

    // An approval that expires while the call is held: the CLI hears so.
    let out = stack.aws_as(
        stack.airlock.key(),
        &[
            "iam",
            "tag-role",
            "--role-name",
            "e2e-restart",
            "--tags",
            "Key=team,Value=x",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success()
            && stderr.contains("(AccessDenied)")
            && stderr.contains("expired without a decision"),
        "{stderr}"
    );
    // The expiry is audited (by the once-a-second sweep), and the log still verifies
    // across the restart.
    let log = stack.airlock.dir.path().join("audit/audit.jsonl");
    let expired = |text: &str| {
        text.lines()
            .any(|l| l.contains("\"event\":\"expired\"") && l.contains("quick-tags"))
    };
    for _ in 0..50 {
        if expired(&std::fs::read_to_string(&log).unwrap()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(expired(&text), "{text}");
    let out = stack.verify_audit(&log);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
