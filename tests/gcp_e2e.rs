//! Google agents end to end, through the real binary: an agent is made with `airlock agents
//! add --gcp-service-account`, and real clients (gcloud, google-cloud-storage,
//! google-cloud-pubsub over gRPC) run with exactly the environment it printed. Airlock
//! answers their token refreshes itself, decides each call by the shipped baseline (a
//! deletion, an IAM policy change and a service-account key wait for a reviewer, who
//! approves or denies through the approvals API or, for gcloud's IAM binding, by a click in
//! a local fake Slack (`support/fake_slack.rs`) whose message shows the binding being
//! added), and forwards what runs with a token of
//! the agent's own service account, minted at a fake iamcredentials by Airlock's own
//! identity (a fake metadata server). The local Google (tests/support/google_front/)
//! accepts only tokens that fake minted, and records as whom each call came.
//! google-api-python-client batches (tests/gcp/batch_client.py, PySocks for its proxy) are
//! decided part by part: reads run; a batch with an IAM policy change waits as a whole and,
//! denied, never reaches Google. Retries of a held call join its approval, and the audit
//! log of it all verifies.
//!
//!     cargo test --test gcp_e2e
//!
//! Needs the test Python (`bash tests/run.sh`; or AIRLOCK_TEST_PYTHON) with the Google
//! client libraries and gcp-storage-emulator, and the gcloud CLI with its Pub/Sub emulator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/fake_slack.rs"]
mod fake_slack;
mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fake_slack::{BOT_TOKEN, FakeSlack, Posted, SIGNING_SECRET, form, sign};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use support::google_auth::{FakeIamCredentials, FakeMetadata};
use support::google_front::{Apis, LocalGoogle, Seen};
use support::{Airlock, BASE_ENV, BIN, TestPki, python_or_skip};

const PROJECT: &str = "airlock-e2e";
const OWNER: &str = "dev@example.com";
const REVIEWER: &str = "bob@example.com";
const REVIEWER_TOKEN: &str = "gcp-e2e-bob-token";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The fake Slack's security channel, and its users: bob (a security approver, by his
/// Slack id) and the agent's owner.
const SLACK_SECURITY: &str = "C0SECURITY";
const SLACK_GENERAL: &str = "C0GENERAL";
const SLACK_REVIEWER: &str = "UBOB";
const SLACK_USERS: [(&str, &str); 2] = [(SLACK_REVIEWER, REVIEWER), ("UOWNER", OWNER)];

/// What `agents add` prints for a Google agent, every one of them needed by some client.
const EXPORTED: [&str; 12] = [
    "GOOGLE_APPLICATION_CREDENTIALS",
    "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
    "GOOGLE_CLOUD_PROJECT",
    "CLOUDSDK_CORE_PROJECT",
    "HTTPS_PROXY",
    "https_proxy",
    "REQUESTS_CA_BUNDLE",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
    "HTTPLIB2_CA_CERTS",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "SSL_CERT_FILE",
];
const CA_VARIABLES: [&str; 5] = [
    "REQUESTS_CA_BUNDLE",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
    "HTTPLIB2_CA_CERTS",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "SSL_CERT_FILE",
];

fn service_account(name: &str) -> String {
    format!("{name}@{PROJECT}.iam.gserviceaccount.com")
}

/// A 0600 file `name` in `dir` holding `value`: its path.
fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

fn sha256_hex(text: &str) -> String {
    support::upstream::hex(&Sha256::digest(text.as_bytes()))
}

/// Deterministic bytes, every value included.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Airlock with the shipped baseline (its hold set to `hold`) and one reviewer, its own
/// Google identity from a fake metadata server, agents' tokens minted by a fake
/// iamcredentials, and every `*.googleapis.com` host sent to a local Google that accepts
/// exactly the tokens that fake minted; with `World::start_with_slack`, approvals are also
/// posted to a fake Slack, where the reviewer can click.
struct World {
    _pki: TestPki,
    metadata: FakeMetadata,
    iam: FakeIamCredentials,
    google: LocalGoogle,
    airlock: Airlock,
    /// Airlock's HOME: no gcloud ADC file of whoever runs the tests.
    _home: tempfile::TempDir,
    slack: Option<FakeSlack>,
    /// The Slack bot token and signing secret files.
    _secrets: tempfile::TempDir,
}

impl World {
    async fn start(apis: Apis, granted: &[&str], hold: &str) -> World {
        World::start_inner(apis, granted, hold, None).await
    }

    /// As `start`, and approvals go to the security channel of a fake Slack too, whose
    /// clicks (signed) reach Airlock's interactivity endpoint; bob is known there by his
    /// Slack id.
    async fn start_with_slack(apis: Apis, granted: &[&str], hold: &str) -> World {
        let slack = FakeSlack::start(&[SLACK_SECURITY, SLACK_GENERAL], &SLACK_USERS).await;
        World::start_inner(apis, granted, hold, Some(slack)).await
    }

    async fn start_inner(
        apis: Apis,
        granted: &[&str],
        hold: &str,
        slack: Option<FakeSlack>,
    ) -> World {
        let pki = TestPki::new();
        let metadata = FakeMetadata::start().await;
        let iam = FakeIamCredentials::start(&pki, &metadata).await;
        for account in granted {
            iam.grant(account);
        }
        let minted = iam.minted();
        let google = LocalGoogle::start(
            &pki,
            Arc::new(move |token: &str| minted.service_account_for(token)),
            apis,
        )
        .await;
        let rules = support::baseline_rules_quick_hold()
            .replace("    hold: 1s\n", &format!("    hold: {hold}\n"));
        let secrets = tempfile::tempdir().unwrap();
        let (slack_user, channels) = match &slack {
            None => (String::new(), String::new()),
            Some(slack) => (
                format!(", slack_user: {SLACK_REVIEWER}"),
                format!(
                    "channels:\n  slack:\n    api_url: {}\n    bot_token_file: {}\n    signing_secret_file: {}\n    channels: {{security: {SLACK_SECURITY}}}\n    default_channel: {SLACK_GENERAL}\n",
                    slack.api_url(),
                    secret_file(secrets.path(), "slack-bot-token", BOT_TOKEN),
                    secret_file(secrets.path(), "slack-signing-secret", SIGNING_SECRET),
                ),
            ),
        };
        let extra = format!(
            "{}credentials:\n  google:\n    iamcredentials_endpoint: {}\napprovals:\n  approvers:\n    - {{name: {REVIEWER}, groups: [security], token_sha256: {}{slack_user}}}\n{channels}",
            google.airlock_routes(),
            iam.url,
            sha256_hex(REVIEWER_TOKEN),
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
            metadata,
            iam,
            google,
            airlock,
            _home: home,
            slack,
            _secrets: secrets,
        }
    }

    fn slack(&self) -> &FakeSlack {
        self.slack.as_ref().expect("a World started with Slack")
    }

    /// The Slack message asking about approval `id` (waits for it).
    async fn slack_message(&self, id: &str) -> Posted {
        self.slack()
            .wait_for(
                Duration::from_secs(20),
                &format!("message for {id}"),
                |all| {
                    all.iter()
                        .find(|m| m.buttons().iter().any(|(_, value)| value == id))
                        .cloned()
                },
            )
            .await
    }

    /// Slack user `user` clicks `action_id` on `message`: the payload, form-encoded and
    /// signed as Slack does, POSTed to Airlock's interactivity endpoint; the HTTP status.
    async fn slack_click(&self, message: &Posted, user: &str, action_id: &str) -> u16 {
        let body = form(&self.slack().click(message, user, action_id));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        reqwest::Client::new()
            .post(format!(
                "http://{}/slack/interactivity",
                self.airlock.control
            ))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", now.to_string())
            .header("x-slack-signature", sign(SIGNING_SECRET, now, &body))
            .body(body)
            .send()
            .await
            .expect("Airlock's Slack interactivity endpoint")
            .status()
            .as_u16()
    }

    fn config(&self) -> PathBuf {
        self.airlock.dir.path().join("airlock.yaml")
    }

    /// `airlock agents ARGS -c CONFIG`: (success, stdout, stderr).
    fn agents(&self, args: &[&str]) -> (bool, String, String) {
        let output = std::process::Command::new(BIN)
            .arg("agents")
            .args(args)
            .arg("-c")
            .arg(self.config())
            .output()
            .expect("run airlock agents");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// `agents add NAME --gcp-service-account SA --gcp-project PROJECT`: the agent as its
    /// printed environment describes it, after checking what that environment points at.
    fn add_agent(&self, name: &str, sa: &str, credentials_dir: Option<&Path>) -> GcpAgent {
        let mut args = vec![
            "add".to_string(),
            name.into(),
            "--owner".into(),
            OWNER.into(),
            "--gcp-service-account".into(),
            sa.into(),
            "--gcp-project".into(),
            PROJECT.into(),
        ];
        if let Some(dir) = credentials_dir {
            args.push("--credentials-dir".into());
            args.push(dir.display().to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, stdout, stderr) = self.agents(&args);
        assert!(ok, "agents add {name} failed:\n{stdout}\n{stderr}");
        let expected_dir = credentials_dir.map_or_else(
            || self.airlock.dir.path().join("agent-credentials").join(name),
            Path::to_path_buf,
        );
        let agent = GcpAgent {
            name: name.into(),
            sa: sa.into(),
            env: parse_exports(&stdout),
            printed: stdout,
        };
        self.check_agent_env(&agent, &expected_dir);
        let mut agent = agent;
        // The proxy address: Airlock listens on an ephemeral port here (`127.0.0.1:0` in
        // the config), which `agents add` cannot know; point the agent at the real one.
        let proxy = format!("http://{}", self.airlock.proxy);
        for var in ["HTTPS_PROXY", "https_proxy"] {
            if agent.env[var] != proxy {
                eprintln!(
                    "note: agents add printed {var}={} (listen port 0 in the test config); using {proxy}",
                    agent.env[var]
                );
                agent.env.insert(var.into(), proxy.clone());
            }
        }
        agent
    }

    /// Everything `agents add` printed points where it must: 0600 files in the agent's
    /// credentials directory holding Airlock's (never Google's) tokens, Airlock's CA, the
    /// agent's project.
    fn check_agent_env(&self, agent: &GcpAgent, dir: &Path) {
        let printed = &agent.printed;
        for var in EXPORTED {
            assert!(
                agent.env.get(var).is_some_and(|v| !v.is_empty()),
                "agents add printed no {var}:\n{printed}"
            );
        }
        let canonical =
            |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let dir = canonical(dir);
        for var in [
            "GOOGLE_APPLICATION_CREDENTIALS",
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
        ] {
            let file = PathBuf::from(&agent.env[var]);
            assert!(file.is_absolute(), "{var} is relative: {printed}");
            assert_eq!(
                canonical(file.parent().unwrap()),
                dir,
                "{var} is not in the agent's credentials directory:\n{printed}"
            );
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{var} = {} has mode {mode:o}", file.display());
        }
        assert_eq!(
            Path::new(&agent.env["GOOGLE_APPLICATION_CREDENTIALS"])
                .file_name()
                .unwrap(),
            "google-credentials.json"
        );
        assert_eq!(
            Path::new(&agent.env["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"])
                .file_name()
                .unwrap(),
            "google-access-token"
        );
        let adc = agent.adc_file();
        assert_eq!(adc["type"], "authorized_user", "{adc}");
        assert!(
            adc["refresh_token"]
                .as_str()
                .is_some_and(|t| t.starts_with("airlock-rt.")),
            "{adc}"
        );
        assert!(adc["client_id"].as_str().is_some_and(|v| !v.is_empty()));
        assert!(adc["client_secret"].as_str().is_some_and(|v| !v.is_empty()));
        let token = agent.static_token();
        assert!(token.starts_with("airlock-st."), "{token}");
        assert_eq!(agent.env["GOOGLE_OAUTH_ACCESS_TOKEN"], token);
        assert!(!printed.contains("ya29."), "a Google token was printed");
        assert_eq!(agent.env["GOOGLE_CLOUD_PROJECT"], PROJECT);
        assert_eq!(agent.env["CLOUDSDK_CORE_PROJECT"], PROJECT);
        let ca = self.airlock.ca_pem();
        for var in CA_VARIABLES {
            let path = &agent.env[var];
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("{var}={path} cannot be read: {e}"));
            assert_eq!(text, ca, "{var}={path} is not Airlock's CA");
        }
        for var in ["HTTPS_PROXY", "https_proxy"] {
            assert!(
                agent.env[var].starts_with("http://"),
                "{var}={}",
                agent.env[var]
            );
        }
    }

    /// Wait (up to 10 s) until the running Airlock knows `agent`: agents are added while it
    /// runs, and it reloads the agent list by polling.
    async fn wait_known(&self, agent: &GcpAgent) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let url = format!("https://storage.googleapis.com/storage/v1/b?project={PROJECT}");
        loop {
            let (status, body) = self.call("GET", &url, &agent.static_token(), None).await;
            if status != 401 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Airlock did not learn agent {} within 10 s: {body}\n{}",
                agent.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A REST call through Airlock with `Authorization: Bearer token`: (status, JSON body,
    /// or the text as a JSON string).
    async fn call(
        &self,
        method: &str,
        url: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = self.airlock.client(false);
        let mut request = client
            .request(method.parse().unwrap(), url)
            .bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("a call through Airlock");
        json_of(response).await
    }

    /// `POST https://oauth2.googleapis.com/token` with the form `fields`, through Airlock.
    async fn token_endpoint(&self, fields: &[(&str, &str)]) -> (u16, Value) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let response = self
            .airlock
            .client(false)
            .post("https://oauth2.googleapis.com/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("the token endpoint through Airlock");
        json_of(response).await
    }

    /// The refresh grant as google-auth sends it.
    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        self.token_endpoint(&[
            ("grant_type", "refresh_token"),
            ("client_id", "airlock-agent"),
            ("client_secret", "airlock-agent-not-secret"),
            ("refresh_token", refresh_token),
        ])
        .await
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
        json_of(request.send().await.unwrap()).await
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

    async fn approve(&self, id: &str) {
        let (status, body) = self
            .api(
                "POST",
                &format!("/v1/approvals/{id}/approve"),
                Some(json!({"reason": "e2e: fine"})),
            )
            .await;
        assert_eq!(
            (status, body["state"].as_str()),
            (200, Some("approved")),
            "{body}"
        );
    }

    async fn deny(&self, id: &str, reason: &str) {
        let (status, body) = self
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
    }

    /// Airlock's last log lines, for failure messages.
    fn log_tail(&self) -> String {
        let logs = self.airlock.logs();
        let start = logs.len().saturating_sub(40);
        format!(
            "--- Airlock's log (last {} lines) ---\n{}",
            logs.len() - start,
            logs[start..].join("\n")
        )
    }
}

/// An agent as `agents add` printed it.
struct GcpAgent {
    name: String,
    sa: String,
    env: BTreeMap<String, String>,
    printed: String,
}

impl GcpAgent {
    fn adc_file(&self) -> Value {
        let path = &self.env["GOOGLE_APPLICATION_CREDENTIALS"];
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    }

    fn refresh_token(&self) -> String {
        self.adc_file()["refresh_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The static token, as gcloud reads it on every invocation.
    fn static_token(&self) -> String {
        let path = &self.env["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"];
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .trim()
            .to_string()
    }
}

/// `export NAME=VALUE` lines (VALUE possibly shell-quoted) → NAME → VALUE.
fn parse_exports(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|rest| rest.split_once('='))
        .map(|(name, value)| (name.trim().to_string(), unquote(value.trim())))
        .collect()
}

fn unquote(value: &str) -> String {
    let quoted = |q: char| value.len() >= 2 && value.starts_with(q) && value.ends_with(q);
    if quoted('\'') {
        value[1..value.len() - 1].replace("'\\''", "'")
    } else if quoted('"') {
        value[1..value.len() - 1].replace("\\\"", "\"")
    } else {
        value.to_string()
    }
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The `ErrorInfo` reason of a Google-shaped error.
fn reason(body: &Value) -> &str {
    body["error"]["details"][0]["reason"]
        .as_str()
        .unwrap_or_default()
}

/// The refusal Airlock answers for a bearer token that names no live agent: Google's 401.
fn assert_unauthenticated(what: &str, status: u16, body: &Value, world: &World) {
    assert_eq!(status, 401, "{what}: {body}\n{}", world.log_tail());
    assert_eq!(body["error"]["code"], 401, "{what}: {body}");
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED", "{what}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

/// Google's 403 in its JSON shape: (the message).
fn assert_permission_denied<'a>(
    what: &str,
    status: u16,
    body: &'a Value,
    world: &World,
) -> &'a str {
    assert_eq!(status, 403, "{what}: {body}\n{}", world.log_tail());
    assert_eq!(body["error"]["code"], 403, "{what}: {body}");
    assert_eq!(
        body["error"]["status"], "PERMISSION_DENIED",
        "{what}: {body}"
    );
    body["error"]["message"].as_str().unwrap_or_default()
}

/// gcloud as `agent`, with exactly the environment `agents add` printed, plus a gcloud
/// configuration directory of its own, a low resumable-upload threshold (so a 3 MiB file
/// takes gcloud's resumable path) and no prompts.
fn gcloud(agent: &GcpAgent, dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("gcloud");
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .envs(&agent.env)
        .env("CLOUDSDK_CONFIG", dir.join("gcloud-config"))
        .env("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
        .env("CLOUDSDK_CORE_DISABLE_USAGE_REPORTING", "true")
        .env("CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK", "true")
        .env("CLOUDSDK_STORAGE_RESUMABLE_THRESHOLD", "1MiB")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Run a prepared command (up to 180 s): (success, stdout, stderr).
async fn run(mut command: tokio::process::Command) -> (bool, String, String) {
    let what = format!("{:?}", command.as_std().get_args().collect::<Vec<_>>());
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 180 s"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn gcloud_ok(world: &World, agent: &GcpAgent, dir: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(gcloud(agent, dir, args)).await;
    assert!(
        ok,
        "gcloud {args:?} failed:\n{stdout}\n{stderr}\n{}",
        world.log_tail()
    );
    stdout
}

fn ok_status(seen: &Seen) -> bool {
    seen.status.is_some_and(|s| (200..300).contains(&s))
}

/// 1. gcloud as an agent: storage (bucket create and list, resumable upload, download,
///    an object deletion held until approved), Pub/Sub over REST, a project IAM binding
///    held until approved, a service-account key held and denied with a reason gcloud
///    prints. Every call the local Google received acted as the agent's service account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcloud_as_an_agent_works_and_waits_for_approvals() {
    if python_or_skip("gcloud_as_an_agent_works_and_waits_for_approvals").is_none() {
        return;
    }
    let started = Instant::now();
    let sa = service_account("gcloud-agent");
    // A hold long enough for the reviewer to decide while gcloud waits on its call.
    let world = World::start_with_slack(Apis::STORAGE.and(Apis::PUBSUB), &[&sa], "90s").await;
    let agent = world.add_agent("gcloud-agent", &sa, None);
    world.wait_known(&agent).await;
    world.google.clear_requests();

    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let big = pattern(3 * 1024 * 1024 + 17);
    std::fs::write(dir.join("big.bin"), &big).unwrap();
    std::fs::write(dir.join("small.txt"), "hello from an agent\n").unwrap();
    let bucket = "gcp-e2e-gcloud-bucket";
    let gs = format!("gs://{bucket}");
    // Objects in a folder: gcloud downloads from the object's `mediaLink`, whose name is
    // percent-encoded (`o/up%2Fbig.bin`) as Google writes it.
    let folder = format!("{gs}/up/");

    gcloud_ok(&world, &agent, dir, &["storage", "buckets", "create", &gs]).await;
    let buckets = gcloud_ok(
        &world,
        &agent,
        dir,
        &["storage", "buckets", "list", "--format=value(name)"],
    )
    .await;
    assert!(buckets.lines().any(|b| b == bucket), "{buckets}");
    gcloud_ok(
        &world,
        &agent,
        dir,
        &["storage", "cp", "big.bin", "small.txt", &folder],
    )
    .await;
    gcloud_ok(
        &world,
        &agent,
        dir,
        &["storage", "cp", &format!("{folder}big.bin"), "down.bin"],
    )
    .await;
    assert!(
        std::fs::read(dir.join("down.bin")).unwrap() == big,
        "the object's bytes changed on the way"
    );

    // An object deletion waits for a reviewer (baseline `destruction`); once approved,
    // the waiting gcloud finishes on its own.
    let rm = tokio::spawn(run(gcloud(
        &agent,
        dir,
        &["storage", "rm", &format!("{folder}small.txt")],
    )));
    let approval = world
        .pending("gcloud-agent", "storage.objects.delete")
        .await;
    assert_eq!(approval["rule"], "destruction", "{approval}");
    assert_eq!(approval["owner"], OWNER, "{approval}");
    assert!(
        !world.google.requests().iter().any(|s| s.method == "DELETE"),
        "a deletion was forwarded before it was approved"
    );
    world.approve(approval["id"].as_str().unwrap()).await;
    let (ok, stdout, stderr) = rm.await.unwrap();
    assert!(
        ok,
        "gcloud storage rm after approval:\n{stdout}\n{stderr}\n{}",
        world.log_tail()
    );
    let listed = gcloud_ok(&world, &agent, dir, &["storage", "ls", &folder]).await;
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        [format!("{folder}big.bin")],
        "{listed}"
    );

    // Pub/Sub over REST: create, subscribe, publish, pull with ack.
    gcloud_ok(
        &world,
        &agent,
        dir,
        &["pubsub", "topics", "create", "gcp-e2e-topic"],
    )
    .await;
    gcloud_ok(
        &world,
        &agent,
        dir,
        &[
            "pubsub",
            "subscriptions",
            "create",
            "gcp-e2e-sub",
            "--topic=gcp-e2e-topic",
        ],
    )
    .await;
    let published = gcloud_ok(
        &world,
        &agent,
        dir,
        &[
            "pubsub",
            "topics",
            "publish",
            "gcp-e2e-topic",
            "--message=hello-from-gcloud",
            "--attribute=origin=e2e",
            "--format=json",
        ],
    )
    .await;
    assert!(published.contains("messageIds"), "{published}");
    let mut pulled = String::new();
    for _ in 0..10 {
        pulled = gcloud_ok(
            &world,
            &agent,
            dir,
            &[
                "pubsub",
                "subscriptions",
                "pull",
                "gcp-e2e-sub",
                "--auto-ack",
                "--limit=10",
                "--format=json",
            ],
        )
        .await;
        if pulled.contains("ackId") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let encoded = base64_of(b"hello-from-gcloud");
    assert!(
        pulled.contains("hello-from-gcloud") || pulled.contains(&encoded),
        "the message did not come back: {pulled}"
    );

    // A project IAM binding waits for a reviewer (baseline `permissions`), who sees in
    // Slack the binding it adds (looked up against the current policy) and approves there.
    let binding = tokio::spawn(run(gcloud(
        &agent,
        dir,
        &[
            "projects",
            "add-iam-policy-binding",
            PROJECT,
            "--member=user:x@example.com",
            "--role=roles/viewer",
            "--format=json",
        ],
    )));
    let approval = world
        .pending("gcloud-agent", "cloudresourcemanager.projects.setIamPolicy")
        .await;
    assert_eq!(approval["rule"], "permissions", "{approval}");
    assert!(
        world.google.iam_policy(PROJECT)["bindings"].is_null(),
        "the policy changed before approval: {}",
        world.google.iam_policy(PROJECT)
    );
    let id = approval["id"].as_str().unwrap();
    let added = "+ roles/viewer user:x@example.com";
    let (status, shown) = world.api("GET", &format!("/v1/approvals/{id}"), None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["call"]["changes"], json!([added]), "{shown}");
    let message = world.slack_message(id).await;
    assert_eq!(message.channel, SLACK_SECURITY);
    let text = message.text();
    assert!(
        text.contains(&format!("*change*\n`{added}`")),
        "the Slack message does not show {added:?}:\n{text}\n{shown}"
    );
    assert!(!binding.is_finished(), "gcloud is still waiting");
    assert_eq!(
        world
            .slack_click(&message, SLACK_REVIEWER, "airlock_approve")
            .await,
        200
    );
    let (ok, stdout, stderr) = binding.await.unwrap();
    assert!(
        ok,
        "gcloud projects add-iam-policy-binding after approval:\n{stdout}\n{stderr}\n{}",
        world.log_tail()
    );
    let (_, decided) = world.api("GET", &format!("/v1/approvals/{id}"), None).await;
    assert_eq!(decided["state"], "approved", "{decided}");
    assert_eq!(decided["votes"][0]["approver"], REVIEWER, "{decided}");
    assert_eq!(decided["votes"][0]["via"], "slack", "{decided}");
    assert_eq!(
        world.google.iam_policy(PROJECT)["bindings"],
        json!([{"role": "roles/viewer", "members": ["user:x@example.com"]}])
    );

    // A service-account key waits too, and a reviewer denies it: gcloud prints why.
    let reason = "agents never hold service account keys";
    let key = tokio::spawn(run(gcloud(
        &agent,
        dir,
        &[
            "iam",
            "service-accounts",
            "keys",
            "create",
            "key.json",
            &format!("--iam-account={sa}"),
        ],
    )));
    let approval = world
        .pending("gcloud-agent", "iam.projects.serviceAccounts.keys.create")
        .await;
    world.deny(approval["id"].as_str().unwrap(), reason).await;
    let (ok, stdout, stderr) = key.await.unwrap();
    assert!(!ok, "the key was created: {stdout}");
    assert!(
        stderr.contains(reason),
        "gcloud did not print the reason:\n{stderr}"
    );
    // gcloud opens its output file before the call; nothing may be written into it.
    let written = std::fs::read_to_string(dir.join("key.json")).unwrap_or_default();
    assert!(!written.contains("private"), "a key was written: {written}");

    // What the local Google received: everything as the agent's service account, each
    // held call exactly once, the denied one never.
    let seen = world.google.requests();
    assert!(!seen.is_empty());
    let strangers: Vec<&Seen> = seen.iter().filter(|s| s.acting_as() != Some(&sa)).collect();
    assert!(strangers.is_empty(), "not as {sa}: {strangers:#?}");
    let count = |method: &str, prefix: &str| {
        seen.iter()
            .filter(|s| s.method == method && s.path.starts_with(prefix) && ok_status(s))
            .count()
    };
    let b = format!("/storage/v1/b/{bucket}");
    let creates = seen
        .iter()
        .filter(|s| s.method == "POST" && s.path == "/storage/v1/b" && ok_status(s))
        .count();
    assert_eq!(creates, 1, "bucket create: {seen:#?}");
    assert!(
        count("POST", &format!("/resumable/upload{b}/o")) >= 1,
        "no resumable upload: {seen:#?}"
    );
    assert!(
        count("PUT", &format!("/upload{b}/o")) >= 1,
        "no upload chunk: {seen:#?}"
    );
    assert!(
        count("GET", &format!("/download{b}/o/")) >= 1,
        "no media download: {seen:#?}"
    );
    assert_eq!(count("DELETE", &format!("{b}/o/")), 1, "{seen:#?}");
    let p = format!("/v1/projects/{PROJECT}");
    assert_eq!(count("PUT", &format!("{p}/topics/gcp-e2e-topic")), 1);
    assert_eq!(
        count("POST", &format!("{p}/topics/gcp-e2e-topic:publish")),
        1
    );
    assert!(count("POST", &format!("{p}/subscriptions/gcp-e2e-sub:pull")) >= 1);
    assert!(count("POST", &format!("{p}:getIamPolicy")) >= 1);
    assert_eq!(count("POST", &format!("{p}:setIamPolicy")), 1, "{seen:#?}");
    assert!(
        !seen.iter().any(|s| s.host == "iam.googleapis.com"),
        "the denied key call was forwarded: {seen:#?}"
    );
    assert!(
        !seen.iter().any(|s| s.host == "oauth2.googleapis.com"),
        "{seen:#?}"
    );
    // Airlock minted the agent's tokens at iamcredentials, for that account only.
    assert!(world.iam.calls(&sa) >= 1);
    assert!(
        world.iam.requests().iter().all(|r| r.service_account == sa),
        "{:#?}",
        world.iam.requests()
    );
    assert!(!world.metadata.token_requests().is_empty());
    eprintln!(
        "gcloud_as_an_agent_works_and_waits_for_approvals: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Run `tests/gcp/e2e_clients.py ARGS` with exactly the agent's printed environment: its
/// JSON line.
async fn python_client(world: &World, python: &Path, agent: &GcpAgent, args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gcp/e2e_clients.py");
    let home = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(python);
    command
        .arg(script)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .envs(&agent.env)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let (ok, stdout, stderr) = run(command).await;
    assert!(
        ok,
        "e2e_clients.py {args:?} failed:\n{stdout}\n{stderr}\n{}",
        world.log_tail()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// 2 and 3. The Python libraries with Application Default Credentials from the agent's
/// `authorized_user` file: google-auth refreshes at Airlock's token endpoint, then
/// google-cloud-storage uploads (multipart, and 50 MiB resumable in 8 MiB chunks) and
/// downloads (ranged, and whole with checksums), and google-cloud-pubsub publishes,
/// streams pulls and acks over gRPC (lower-case `https_proxy`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_clients_refresh_through_airlock_and_move_data_as_the_agent() {
    let Some(python) =
        python_or_skip("python_clients_refresh_through_airlock_and_move_data_as_the_agent")
    else {
        return;
    };
    let started = Instant::now();
    let sa = service_account("python-agent");
    let world = World::start(Apis::STORAGE.and(Apis::PUBSUB), &[&sa], "1s").await;
    let credentials = tempfile::tempdir().unwrap();
    let credentials_dir = credentials.path().join("python-agent");
    std::fs::create_dir_all(&credentials_dir).unwrap();
    let agent = world.add_agent("python-agent", &sa, Some(&credentials_dir));
    world.wait_known(&agent).await;
    world.google.clear_requests();

    let storage_started = Instant::now();
    let out = python_client(
        &world,
        &python,
        &agent,
        &["storage", "gcp-e2e-python-bucket"],
    )
    .await;
    let storage_seconds = storage_started.elapsed().as_secs_f64();
    eprintln!("e2e_clients.py storage: {out}");
    assert_eq!(out["names"], json!(["e2e/large.bin", "e2e/small.bin"]));
    assert_eq!(out["token_prefix"], "airlock-at");
    assert!(out["large_len"].as_u64().unwrap() >= 50 * 1024 * 1024);
    let seen = world.google.requests();
    let strangers: Vec<&Seen> = seen.iter().filter(|s| s.acting_as() != Some(&sa)).collect();
    assert!(strangers.is_empty(), "not as {sa}: {strangers:#?}");
    assert!(
        !seen.iter().any(|s| s.host == "oauth2.googleapis.com"),
        "a token refresh went past Airlock: {seen:#?}"
    );
    let chunks = seen
        .iter()
        .filter(|s| {
            s.method == "PUT"
                && s.query.contains("upload_id=")
                && (ok_status(s) || s.status == Some(308))
        })
        .count();
    assert_eq!(chunks, 7, "50 MiB + 4099 B in 8 MiB chunks: {seen:#?}");
    assert!(
        seen.iter()
            .any(|s| s.query.contains("uploadType=multipart") && ok_status(s))
    );
    assert!(
        seen.iter().any(|s| s.query.contains("uploadType=resumable")
            && s.method == "POST"
            && ok_status(s))
    );
    let media_gets = seen
        .iter()
        .filter(|s| s.method == "GET" && s.query.contains("alt=media"))
        .count();
    assert!(media_gets >= 6, "ranged and whole downloads: {seen:#?}");

    world.google.clear_requests();
    let pubsub_started = Instant::now();
    let suffix = std::process::id().to_string();
    let out = python_client(&world, &python, &agent, &["pubsub", &suffix]).await;
    let pubsub_seconds = pubsub_started.elapsed().as_secs_f64();
    assert_eq!(out["streamed"], 3);
    assert_eq!(out["pulled"], 3);
    let seen = world.google.requests();
    let strangers: Vec<&Seen> = seen.iter().filter(|s| s.acting_as() != Some(&sa)).collect();
    assert!(strangers.is_empty(), "not as {sa}: {strangers:#?}");
    let grpc: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.host == "pubsub.googleapis.com")
        .collect();
    assert!(
        grpc.iter().all(|s| s.grpc && s.http2 && s.forwarded),
        "{grpc:#?}"
    );
    let called = |method: &str| {
        grpc.iter()
            .filter(|s| s.path == format!("/google.pubsub.v1.{method}"))
            .count()
    };
    assert_eq!(called("Publisher/CreateTopic"), 1, "{grpc:#?}");
    assert_eq!(called("Publisher/Publish"), 3, "{grpc:#?}");
    assert!(called("Subscriber/StreamingPull") >= 1, "{grpc:#?}");
    assert!(called("Subscriber/Acknowledge") >= 1, "{grpc:#?}");
    assert!(called("Subscriber/Pull") >= 1, "{grpc:#?}");
    assert!(world.iam.requests().iter().all(|r| r.service_account == sa));
    eprintln!(
        "python clients: storage {storage_seconds:.1} s, pubsub {pubsub_seconds:.1} s, total {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// 4 and 5. What Airlock refuses, and what one agent's credentials cannot do: foreign,
/// unknown, forged, removed and rotated-away tokens get Google's 401 and reach nothing;
/// an agent whose service account Airlock may not impersonate gets a 403 naming it; the
/// token endpoint grants only refreshes of live agents' refresh tokens, each for its own
/// agent; the credential-minting APIs are refused to agents, and the trust-boundary
/// lookup is answered by Airlock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_and_the_limits_of_one_agents_credentials() {
    if python_or_skip("refusals_and_the_limits_of_one_agents_credentials").is_none() {
        return;
    }
    let started = Instant::now();
    let sa_a = service_account("agent-a");
    let sa_b = service_account("agent-b");
    let sa_c = service_account("agent-c-not-granted");
    let victim = service_account("victim");
    let world = World::start(
        Apis::STORAGE.and(Apis::PUBSUB),
        &[&sa_a, &sa_b, &victim],
        "1s",
    )
    .await;
    let a = world.add_agent("agent-a", &sa_a, None);
    let b = world.add_agent("agent-b", &sa_b, None);
    let c = world.add_agent("agent-c", &sa_c, None);
    for agent in [&a, &b, &c] {
        world.wait_known(agent).await;
    }
    let list = format!("https://storage.googleapis.com/storage/v1/b?project={PROJECT}");
    let last_caller = |world: &World| {
        world
            .google
            .requests()
            .last()
            .and_then(|s| s.acting_as().map(str::to_string))
    };

    // Each agent's static token acts as its own service account.
    for agent in [&a, &b] {
        let (status, body) = world.call("GET", &list, &agent.static_token(), None).await;
        assert_eq!(status, 200, "{}: {body}\n{}", agent.name, world.log_tail());
        assert_eq!(last_caller(&world).as_deref(), Some(agent.sa.as_str()));
    }

    // The token endpoint: A's refresh token gets an access token that acts as A, never B.
    let (status, grant) = world.refresh(&a.refresh_token()).await;
    assert_eq!(status, 200, "{grant}\n{}", world.log_tail());
    let a_access = grant["access_token"].as_str().unwrap().to_string();
    assert!(a_access.starts_with("airlock-at."), "{grant}");
    assert_eq!(grant["token_type"], "Bearer", "{grant}");
    let expires_in = grant["expires_in"].as_u64().unwrap_or(0);
    assert!((1..=3600).contains(&expires_in), "{grant}");
    let (status, body) = world.call("GET", &list, &a_access, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(last_caller(&world).as_deref(), Some(sa_a.as_str()));
    let (status, grant_b) = world.refresh(&b.refresh_token()).await;
    assert_eq!(status, 200, "{grant_b}");
    let b_access = grant_b["access_token"].as_str().unwrap().to_string();
    assert_ne!(a_access, b_access);
    let (status, _) = world.call("GET", &list, &b_access, None).await;
    assert_eq!(status, 200);
    assert_eq!(last_caller(&world).as_deref(), Some(sa_b.as_str()));

    // Other grants, and tokens of other kinds offered as refresh tokens.
    let (status, body) = world
        .token_endpoint(&[
            ("grant_type", "client_credentials"),
            ("client_id", "airlock-agent"),
            ("client_secret", "airlock-agent-not-secret"),
        ])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"] == "unsupported_grant_type" || body["error"] == "invalid_grant",
        "{body}"
    );
    let jwt_bearer = world
        .token_endpoint(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln"),
        ])
        .await;
    assert_eq!(jwt_bearer.0, 400, "{}", jwt_bearer.1);
    for (what, offered) in [
        ("a static token", a.static_token()),
        ("an access token", a_access.clone()),
        ("garbage", "1//0garbage-google-refresh-token".to_string()),
        (
            "an invented refresh token",
            "airlock-rt.AIRLZZZZZZZZZZZZZZZZ.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        ),
    ] {
        let (status, body) = world.refresh(&offered).await;
        assert_eq!(status, 400, "{what} as a refresh token: {body}");
        assert_eq!(body["error"], "invalid_grant", "{what}: {body}");
    }
    // Splicing B's key id into A's tokens, or offering a refresh token as a bearer token.
    let a_key = a.static_token().split('.').nth(1).unwrap().to_string();
    let b_key = b.static_token().split('.').nth(1).unwrap().to_string();
    assert_ne!(a_key, b_key);
    assert!(
        a_access.contains(&a_key),
        "{a_access} is not bound to A's key id {a_key}"
    );

    // Refused bearer tokens: Google's 401, nothing forwarded.
    let before = world.google.requests().len();
    let refused = [
        (
            "a real-looking Google token",
            "ya29.a0AfB_byC3x9kLmN0pQrStUvWxYz-realLookingGoogleAccessToken0123456789".to_string(),
        ),
        (
            "an unknown Airlock static token",
            "airlock-st.AIRLZZZZZZZZZZZZZZZZ.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        ),
        (
            "a JWT",
            "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJhQGIuYyJ9.c2lnbmF0dXJl".into(),
        ),
        ("garbage", "not-a-token".into()),
        ("A's refresh token", a.refresh_token()),
        (
            "A's static token with B's key id",
            a.static_token().replace(&a_key, &b_key),
        ),
        (
            "A's access token with B's key id",
            a_access.replace(&a_key, &b_key),
        ),
        ("A's access token, expiry pushed out", {
            let parts: Vec<&str> = a_access.split('.').collect();
            let later = parts[2].parse::<u64>().map(|e| e + 86_400).unwrap_or(0);
            format!("{}.{}.{later}.{}", parts[0], parts[1], parts[3..].join("."))
        }),
    ];
    for (what, token) in &refused {
        let (status, body) = world.call("GET", &list, token, None).await;
        assert_unauthenticated(what, status, &body, &world);
        assert!(!reason(&body).is_empty(), "{what}: {body}");
    }
    for (what, token) in [&refused[0], &refused[2]] {
        let (_, body) = world.call("GET", &list, token, None).await;
        assert_eq!(
            reason(&body),
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            "{what}: {body}"
        );
        assert!(
            !body.to_string().contains(token.as_str()),
            "the refusal echoes the token: {body}"
        );
    }
    let (status, body) = world
        .call(
            "POST",
            &format!("https://storage.googleapis.com/storage/v1/b?project={PROJECT}"),
            &refused[0].1,
            Some(json!({"name": "gcp-e2e-never-created"})),
        )
        .await;
    assert_unauthenticated("a bucket create with a Google token", status, &body, &world);
    // gRPC: trailers-only, status 16.
    let mut sender =
        support::h2_through::<Full<Bytes>>(&world.airlock, "pubsub.googleapis.com").await;
    let request =
        hyper::Request::post("https://pubsub.googleapis.com/google.pubsub.v1.Publisher/Publish")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", format!("Bearer {}", refused[0].1))
            .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
            .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let head = response.headers().clone();
    let trailers = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .trailers()
        .cloned();
    let status = head
        .get("grpc-status")
        .or(trailers.as_ref().and_then(|t| t.get("grpc-status")))
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(status.as_deref(), Some("16"), "{head:?} {trailers:?}");
    assert_eq!(
        world.google.requests().len(),
        before,
        "a refused call was forwarded: {:#?}",
        &world.google.requests()[before..]
    );

    // An agent whose service account Airlock may not impersonate: 403 naming it.
    let (status, body) = world.call("GET", &list, &c.static_token(), None).await;
    let message = assert_permission_denied("agent-c", status, &body, &world);
    assert!(
        message.contains(&sa_c),
        "the 403 does not name {sa_c}: {body}"
    );
    assert_eq!(
        world.google.requests().len(),
        before,
        "agent-c's call was forwarded"
    );
    assert_eq!(world.iam.calls(&sa_c), 0);

    // The credential-minting APIs are Airlock's alone: refused to agents, before any rule
    // (no approval is opened), reaching neither iamcredentials nor the local Google.
    let iam_before = world.iam.requests().len();
    let minting = [
        (
            "generateAccessToken for another account",
            format!(
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{victim}:generateAccessToken"
            ),
            json!({"scope": [CLOUD_PLATFORM], "lifetime": "3600s"}),
        ),
        (
            "generateAccessToken for its own account",
            format!(
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{sa_a}:generateAccessToken"
            ),
            json!({"scope": [CLOUD_PLATFORM]}),
        ),
        (
            "signBlob",
            format!(
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{sa_b}:signBlob"
            ),
            json!({"payload": "aGVsbG8="}),
        ),
        (
            "an STS token exchange",
            "https://sts.googleapis.com/v1/token".to_string(),
            json!({"grantType": "urn:ietf:params:oauth:grant-type:token-exchange", "subjectToken": "x"}),
        ),
    ];
    for (what, url, body) in &minting {
        let (status, answer) = world
            .call("POST", url, &a.static_token(), Some(body.clone()))
            .await;
        let message = assert_permission_denied(what, status, &answer, &world);
        assert!(
            !message.contains("needs approval"),
            "{what} was held for approval: {answer}"
        );
    }
    let (status, pending) = world.api("GET", "/v1/approvals?state=pending", None).await;
    assert_eq!(status, 200);
    assert_eq!(pending["approvals"], json!([]), "{pending}");
    let iam_seen = &world.iam.requests()[iam_before..];
    assert!(
        iam_seen.is_empty(),
        "iamcredentials saw agents' calls: {iam_seen:#?}"
    );
    assert_eq!(world.iam.calls(&victim), 0);
    assert_eq!(
        world.google.requests().len(),
        before,
        "a minting call was forwarded"
    );
    // google-auth's trust-boundary lookup is answered by Airlock.
    let (status, answer) = world
        .call(
            "GET",
            &format!("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{sa_a}/allowedLocations"),
            &a_access,
            None,
        )
        .await;
    assert_eq!(status, 200, "{answer}\n{}", world.log_tail());
    assert!(answer.is_object(), "{answer}");
    assert_eq!(
        world.google.requests().len(),
        before,
        "allowedLocations was forwarded"
    );

    // Rotating A: the old static, refresh and access tokens stop working within 5 s; the
    // rewritten files hold working ones.
    let old_static = a.static_token();
    let old_refresh = a.refresh_token();
    let (ok, stdout, stderr) = world.agents(&["rotate", "agent-a"]);
    assert!(ok, "agents rotate:\n{stdout}\n{stderr}");
    let new_static = a.static_token();
    let new_refresh = a.refresh_token();
    assert_ne!(
        new_static, old_static,
        "rotate did not rewrite the token file"
    );
    assert_ne!(
        new_refresh, old_refresh,
        "rotate did not rewrite the ADC file"
    );
    let rotated = parse_exports(&stdout);
    if let Some(printed) = rotated.get("GOOGLE_OAUTH_ACCESS_TOKEN") {
        assert_eq!(printed, &new_static);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = world.call("GET", &list, &old_static, None).await;
        if status == 401 {
            assert_unauthenticated("A's static token after rotate", status, &body, &world);
            assert_eq!(
                reason(&body),
                "ACCESS_TOKEN_REVOKED",
                "A's static token after rotate: {body}"
            );
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            Instant::now() < deadline,
            "A's old static token still works 5 s after rotate\n{}",
            world.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = world.call("GET", &list, &a_access, None).await;
    assert_unauthenticated("A's access token after rotate", status, &body, &world);
    assert_eq!(
        reason(&body),
        "ACCESS_TOKEN_REVOKED",
        "A's access token after rotate: {body}"
    );
    let (status, body) = world.refresh(&old_refresh).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "{body}"
    );
    let (status, body) = world.call("GET", &list, &new_static, None).await;
    assert_eq!(status, 200, "the rotated static token: {body}");
    assert_eq!(last_caller(&world).as_deref(), Some(sa_a.as_str()));
    let (status, grant) = world.refresh(&new_refresh).await;
    assert_eq!(status, 200, "the rotated refresh token: {grant}");

    // Removing B: its tokens stop working within 5 s, its credential files are gone.
    let b_static = b.static_token();
    let b_refresh = b.refresh_token();
    let b_files: Vec<PathBuf> = [
        "GOOGLE_APPLICATION_CREDENTIALS",
        "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
    ]
    .iter()
    .map(|v| PathBuf::from(&b.env[*v]))
    .collect();
    let (ok, stdout, stderr) = world.agents(&["remove", "agent-b"]);
    assert!(ok, "agents remove:\n{stdout}\n{stderr}");
    for file in &b_files {
        assert!(!file.exists(), "{} survived agents remove", file.display());
    }
    let before = world.google.requests().len();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = world.call("GET", &list, &b_static, None).await;
        if status == 401 {
            assert_unauthenticated("a removed agent's static token", status, &body, &world);
            assert_eq!(
                reason(&body),
                "ACCESS_TOKEN_REVOKED",
                "a removed agent's static token: {body}"
            );
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            Instant::now() < deadline,
            "a removed agent's token still works after 5 s\n{}",
            world.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after_removal = world.google.requests().len();
    let (status, body) = world.call("GET", &list, &b_access, None).await;
    assert_unauthenticated("a removed agent's access token", status, &body, &world);
    assert_eq!(
        reason(&body),
        "ACCESS_TOKEN_REVOKED",
        "a removed agent's access token: {body}"
    );
    let (status, body) = world.refresh(&b_refresh).await;
    assert_eq!(
        (status, &body["error"]),
        (400, &json!("invalid_grant")),
        "{body}"
    );
    assert_eq!(world.google.requests().len(), after_removal);
    assert!(
        world.google.requests()[before..]
            .iter()
            .all(|s| s.acting_as() == Some(sa_b.as_str())),
        "only B's calls before the reload took effect may have gone through"
    );
    eprintln!(
        "refusals_and_the_limits_of_one_agents_credentials: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// google-api-python-client's batch endpoint for Cloud Storage.
const BATCH_PATH: &str = "/batch/storage/v1";

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
    let world = World::start(Apis::STORAGE, &[&sa], "90s").await;
    let gcp_agent = world.add_agent(agent, &sa, None);
    world.wait_known(&gcp_agent).await;
    let env = gcp_agent.env.clone();
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
    let world = World::start(Apis::STORAGE, &[SA], "90s").await;
    let agent = world.add_agent("retry-agent", SA, None);
    world.wait_known(&agent).await;
    let token = agent.static_token();
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
