//! google-api-python-client batches through the real binary: an agent made with `airlock
//! agents add --gcp-service-account` sends Cloud Storage JSON API batches
//! (`POST /batch/storage/v1`, `multipart/mixed`) with exactly the environment it was
//! printed (tests/gcp/batch_client.py). Airlock decides a batch part by part under the
//! shipped baseline: a batch of reads runs; one that also changes a bucket's IAM policy
//! waits for a reviewer as a whole, shows every inner call, and once denied the client gets
//! Google's 403 with the reviewer's reason, and nothing of the batch reached Google.
//! Retries of a held call join its approval, and the audit log of it all verifies.
//!
//!     cargo test --test gcp_batch_e2e
//!
//! Needs the test Python (`bash tests/run.sh`; or AIRLOCK_TEST_PYTHON) with
//! google-api-python-client, PySocks (httplib2 honours HTTPS_PROXY only with it) and
//! gcp-storage-emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::google_auth::{FakeIamCredentials, FakeMetadata};
use support::google_front::{Apis, LocalGoogle, Seen};
use support::{Airlock, BASE_ENV, BIN, TestPki, python_or_skip};

const PROJECT: &str = "airlock-e2e";
const OWNER: &str = "dev@example.com";
const REVIEWER: &str = "bob@example.com";
const REVIEWER_TOKEN: &str = "gcp-batch-bob-token";
const BATCH_PATH: &str = "/batch/storage/v1";

/// Airlock with the shipped baseline (its hold long enough for a reviewer to decide while
/// the client waits), one reviewer in `security`, a fake metadata server and
/// iamcredentials, and a local Google serving Cloud Storage.
struct World {
    _pki: TestPki,
    _metadata: FakeMetadata,
    _iam: FakeIamCredentials,
    google: LocalGoogle,
    airlock: Airlock,
    _home: tempfile::TempDir,
}

impl World {
    async fn start(sa: &str) -> World {
        let pki = TestPki::new();
        let metadata = FakeMetadata::start().await;
        let iam = FakeIamCredentials::start(&pki, &metadata).await;
        iam.grant(sa);
        let minted = iam.minted();
        let google = LocalGoogle::start(
            &pki,
            Arc::new(move |token: &str| minted.service_account_for(token)),
            Apis::STORAGE,
        )
        .await;
        let rules =
            support::baseline_rules_quick_hold().replace("    hold: 1s\n", "    hold: 90s\n");
        let extra = format!(
            "{}credentials:\n  google:\n    iamcredentials_endpoint: {}\napprovals:\n  approvers:\n    - {{name: {REVIEWER}, groups: [security], token_sha256: {}}}\n",
            google.airlock_routes(),
            iam.url,
            support::upstream::hex(&Sha256::digest(REVIEWER_TOKEN.as_bytes())),
        );
        let home = tempfile::tempdir().unwrap();
        let home_path = home.path().display().to_string();
        let gcloud_config = home.path().join("gcloud").display().to_string();
        let metadata_host = metadata.host();
        let mut env: Vec<(&str, &str)> = BASE_ENV.to_vec();
        env.extend([
            ("GCE_METADATA_HOST", metadata_host.as_str()),
            ("HOME", home_path.as_str()),
            ("CLOUDSDK_CONFIG", gcloud_config.as_str()),
        ]);
        let airlock = Airlock::start_with_rules(&pki, &extra, &env, Some(&rules));
        World {
            _pki: pki,
            _metadata: metadata,
            _iam: iam,
            google,
            airlock,
            _home: home,
        }
    }

    /// `airlock agents add NAME --gcp-service-account SA`: its printed environment, the
    /// proxy pointed at the running Airlock (it listens on an ephemeral port).
    fn add_agent(&self, name: &str, sa: &str) -> BTreeMap<String, String> {
        let output = std::process::Command::new(BIN)
            .args(["agents", "add", name, "--owner", OWNER])
            .args(["--gcp-service-account", sa, "--gcp-project", PROJECT])
            .arg("-c")
            .arg(self.airlock.dir.path().join("airlock.yaml"))
            .output()
            .expect("run airlock agents add");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "agents add failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut env = parse_exports(&stdout);
        for var in [
            "GOOGLE_APPLICATION_CREDENTIALS",
            "HTTPLIB2_CA_CERTS",
            "HTTPS_PROXY",
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
        ] {
            assert!(
                env.get(var).is_some_and(|v| !v.is_empty()),
                "agents add printed no {var}:\n{stdout}"
            );
        }
        let proxy = format!("http://{}", self.airlock.proxy);
        env.insert("HTTPS_PROXY".into(), proxy.clone());
        env.insert("https_proxy".into(), proxy);
        env
    }

    /// Wait (up to 10 s) until the running Airlock knows the agent (it polls its list).
    async fn wait_known(&self, env: &BTreeMap<String, String>) {
        let token = std::fs::read_to_string(&env["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"]).unwrap();
        let url = format!("https://storage.googleapis.com/storage/v1/b?project={PROJECT}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let response = self
                .airlock
                .client(false)
                .get(&url)
                .bearer_auth(token.trim())
                .send()
                .await
                .expect("a call through Airlock");
            if response.status() != 401 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Airlock did not learn the agent\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The reviewers' API as bob: (status, JSON).
    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(
                method.parse().unwrap(),
                format!("http://{}{path}", self.airlock.control),
            )
            .bearer_auth(REVIEWER_TOKEN);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The pending approval of `agent`'s call `operation`, waiting up to 60 s for it.
    async fn pending(&self, agent: &str, operation: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, list) = self.api("GET", "/v1/approvals?state=pending", None).await;
            assert_eq!(status, 200, "{list}");
            if let Some(found) = list["approvals"].as_array().and_then(|all| {
                all.iter()
                    .find(|a| a["agent"] == agent && a["call"]["operation"] == operation)
            }) {
                return found.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no pending approval for {agent}'s {operation} within 60 s: {list}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_tail(&self) -> String {
        let logs = self.airlock.logs();
        let start = logs.len().saturating_sub(40);
        format!("--- Airlock's log ---\n{}", logs[start..].join("\n"))
    }
}

/// `export NAME=VALUE` lines (VALUE possibly shell-quoted) → NAME → VALUE.
fn parse_exports(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|rest| rest.split_once('='))
        .map(|(name, value)| {
            let value = value.trim();
            let quoted = |q: char| value.len() >= 2 && value.starts_with(q) && value.ends_with(q);
            let value = if quoted('\'') {
                value[1..value.len() - 1].replace("'\\''", "'")
            } else if quoted('"') {
                value[1..value.len() - 1].replace("\\\"", "\"")
            } else {
                value.to_string()
            };
            (name.trim().to_string(), value)
        })
        .collect()
}

/// `tests/gcp/batch_client.py ARGS` with exactly the agent's printed environment (up to
/// 180 s): its JSON line.
async fn batch_client(
    world_log: impl Fn() -> String,
    python: &Path,
    env: &BTreeMap<String, String>,
    args: &[&str],
) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gcp/batch_client.py");
    let home = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(python);
    command
        .arg(script)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .envs(env)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .unwrap_or_else(|_| panic!("batch_client.py {args:?} did not finish within 180 s"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "batch_client.py {args:?} failed:\n{stdout}\n{stderr}\n{}",
        world_log()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
}

fn batches(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter()
        .filter(|s| s.host == "storage.googleapis.com" && s.path.starts_with("/batch"))
        .collect()
}

/// google-api-python-client: a batch of mixed reads and one privileged call (the batch
/// parks); a reviewer denies it with a reason the client receives, and Google sees none of
/// it. The reads alone in a batch run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_with_a_privileged_call_waits_for_approval_and_reads_alone_run() {
    let Some(python) =
        python_or_skip("a_batch_with_a_privileged_call_waits_for_approval_and_reads_alone_run")
    else {
        return;
    };
    let started = Instant::now();
    let agent = "batch-agent";
    let sa = format!("{agent}@{PROJECT}.iam.gserviceaccount.com");
    let world = World::start(&sa).await;
    let env = world.add_agent(agent, &sa);
    world.wait_known(&env).await;
    let log = || world.log_tail();
    let bucket = "gcp-batch-e2e-bucket";

    // A bucket and an object, with plain calls (httplib2 through Airlock via PySocks).
    batch_client(log, &python, &env, &["setup", bucket]).await;
    world.google.clear_requests();

    // The reads alone, in one batch: Airlock forwards it as the agent.
    let reads = batch_client(log, &python, &env, &["reads", bucket]).await;
    eprintln!("reads batch: {reads}");
    assert_eq!(reads["status"], 200, "{reads}\n{}", world.log_tail());
    let seen = world.google.requests();
    let sent = batches(&seen);
    assert_eq!(sent.len(), 1, "the reads batch: {seen:#?}");
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].path, BATCH_PATH);
    assert_eq!(sent[0].acting_as(), Some(sa.as_str()), "{:#?}", sent[0]);
    assert_eq!(sent[0].status, Some(200), "{:#?}", sent[0]);
    // The answer was the emulator's multipart batch answer, passed back as it came.
    // gcp-storage-emulator serves only PATCH, POST and DELETE parts (GET parts get 404) and
    // omits the parts' `Content-ID`, so the library cannot match parts to its calls: what
    // this checks is Airlock's part, that the reads batch ran and its answer came back.
    assert!(
        reads["answers"][0]["content_type"]
            .as_str()
            .is_some_and(|c| c.starts_with("multipart/mixed")),
        "{reads}"
    );
    if !reads["parts"].is_null() {
        for id in ["get", "list"] {
            let part = &reads["parts"][id];
            assert!(
                part["name"] == bucket || part["kind"] == "storage#objects" || part["error"] == 404,
                "part {id}: {reads}"
            );
        }
    }
    world.google.clear_requests();

    // Reads and a bucket IAM policy change in one batch: the whole batch waits.
    let held = {
        let python = python.clone();
        let env = env.clone();
        tokio::spawn(async move {
            batch_client(String::new, &python, &env, &["privileged", bucket]).await
        })
    };
    let approval = world.pending(agent, "batch").await;
    eprintln!("pending batch approval: {approval}");
    assert_eq!(approval["rule"], "permissions", "{approval}");
    let parts: Vec<&str> = approval["call"]["parts"]
        .as_array()
        .unwrap_or_else(|| panic!("no call.parts: {approval}"))
        .iter()
        .map(|p| p["operation"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        parts,
        [
            "storage.buckets.get",
            "storage.objects.list",
            "storage.buckets.setIamPolicy"
        ],
        "{approval}"
    );
    let part_resources = approval["call"]["parts"][2]["resources"].to_string();
    assert!(part_resources.contains(bucket), "{approval}");
    assert!(
        batches(&world.google.requests()).is_empty(),
        "a batch was forwarded before it was decided: {:#?}",
        world.google.requests()
    );

    let reason = "no public buckets from agents (batch e2e)";
    let id = approval["id"].as_str().unwrap();
    let (status, body) = world
        .api(
            "POST",
            &format!("/v1/approvals/{id}/deny"),
            Some(json!({ "reason": reason })),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("denied")),
        "{body}"
    );

    let refused = held.await.unwrap();
    eprintln!("privileged batch answer: {refused}");
    assert_eq!(refused["status"], 403, "{refused}\n{}", world.log_tail());
    let content = refused["content"].as_str().unwrap_or_default();
    assert!(
        content.contains(reason),
        "the client did not get the reviewer's reason: {refused}"
    );
    let error: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("{e}: {content}"));
    assert_eq!(error["error"]["code"], 403, "{error}");
    assert_eq!(error["error"]["status"], "PERMISSION_DENIED", "{error}");
    assert_eq!(
        error["error"]["details"][0]["reason"], "APPROVAL_DENIED",
        "{error}"
    );
    assert_eq!(
        error["error"]["details"][0]["metadata"]["approval_id"], id,
        "{error}"
    );
    assert_eq!(refused["parts_run"], json!({}), "parts ran: {refused}");
    let seen = world.google.requests();
    assert!(
        batches(&seen).is_empty(),
        "the denied batch was forwarded: {seen:#?}"
    );
    assert!(
        !seen.iter().any(|s| s.path.ends_with("/iam")),
        "the IAM policy call was forwarded: {seen:#?}"
    );
    eprintln!(
        "a_batch_with_a_privileged_call_waits_for_approval_and_reads_alone_run: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Retries of one held Google call join one approval (the token, the client's bookkeeping
/// headers and its idempotency token are not what the reviewer approves), the denial
/// reaches every one of them, and the audit log of it all verifies with `cloud: gcp`.
#[tokio::test(flavor = "multi_thread")]
async fn retries_of_a_held_google_call_join_one_approval_and_the_audit_verifies() {
    const SA: &str = "retry-agent@airlock-e2e.iam.gserviceaccount.com";
    let world = World::start(SA).await;
    let env = world.add_agent("retry-agent", SA);
    world.wait_known(&env).await;
    let token = std::fs::read_to_string(&env["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"]).unwrap();
    let send = |client_header: &'static str, idempotency: &'static str| {
        let request = world
            .airlock
            .client(false)
            .delete("https://storage.googleapis.com/storage/v1/b/retried-bucket")
            .bearer_auth(token.trim())
            .header("x-goog-api-client", client_header)
            .header("x-goog-gcs-idempotency-token", idempotency)
            .header("user-agent", client_header);
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let id = response
                .headers()
                .get("x-airlock-approval-id")
                .map(|v| v.to_str().unwrap().to_string());
            (
                response.status().as_u16(),
                id,
                response.text().await.unwrap(),
            )
        })
    };
    let first = send("gl-python/3.11 gccl/3.17.1", "one");
    let approval = world.pending("retry-agent", "storage.buckets.delete").await;
    let second = send("gl-python/3.12 gccl/3.17.2", "two");
    // The retry joins the same approval (it is the only pending one for this call).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, list) = world.api("GET", "/v1/approvals?state=pending", None).await;
    assert_eq!(status, 200);
    let held: Vec<&Value> = list["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["agent"] == "retry-agent")
        .collect();
    assert_eq!(held.len(), 1, "a retry opened another approval: {list}");
    let id = approval["id"].as_str().unwrap();
    let (status, denied) = world
        .api(
            "POST",
            &format!("/v1/approvals/{id}/deny"),
            Some(json!({"reason": "keep that bucket"})),
        )
        .await;
    assert_eq!(status, 200, "{denied}");
    for call in [first, second] {
        let (status, approval_id, body) = call.await.unwrap();
        assert_eq!(status, 403, "{body}");
        assert_eq!(approval_id.as_deref(), Some(id), "{body}");
        assert!(body.contains("keep that bucket"), "{body}");
    }
    assert!(
        !world
            .google
            .requests()
            .iter()
            .any(|seen| seen.method == "DELETE"),
        "a denied delete reached Google"
    );

    let out = std::process::Command::new(BIN)
        .args(["audit", "verify", "--config"])
        .arg(world.airlock.dir.path().join("airlock.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit =
        std::fs::read_to_string(world.airlock.dir.path().join("audit/audit.jsonl")).unwrap();
    let held: Vec<Value> = audit
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["event"] == "held" && r["operation"] == "storage.buckets.delete")
        .collect();
    assert_eq!(held.len(), 2, "{audit}");
    for record in &held {
        assert_eq!(record["cloud"], "gcp", "{record}");
        assert_eq!(record["agent"], "retry-agent", "{record}");
        assert_eq!(record["fingerprint"], held[0]["fingerprint"], "{record}");
    }
}
