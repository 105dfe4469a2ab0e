//! The Google credential broker against local fakes of Google's metadata server and
//! iamcredentials (`support::google_auth`), through its real interfaces: Airlock's own
//! token from Application Default Credentials as google-cloud-auth finds them
//! (`GCE_METADATA_HOST`), real TLS trusting the test CA the way `upstream.ca_file` is
//! trusted, real HTTP.
//!
//! google-cloud-auth reads ADC from the process environment, which these tests cannot
//! change (`set_var` needs `unsafe`, forbidden here): like tests/sts.rs, each such test
//! runs itself again in a child process with the environment it needs. The metadata
//! server's socket is bound by the parent, so that its address can be put in
//! `GCE_METADATA_HOST`, and handed to the child as its standard input (never released and
//! bound again, so no other process can take the port in between).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlock::agents::Agent;
use airlock::credentials::{CredentialsError, GoogleBroker, GoogleSettings, GoogleToken};
use support::TestPki;
use support::google_auth::{Failure, FakeIamCredentials, FakeMetadata, METADATA_EMAIL};

const CHILD: &str = "AIRLOCK_GOOGLE_TEST_CHILD";
const DEPLOYER_SA: &str = "deployer@agents-prod.iam.gserviceaccount.com";
const ANALYST_SA: &str = "analyst@agents-prod.iam.gserviceaccount.com";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Where the child's Application Default Credentials come from.
enum Adc {
    /// The fake metadata server, at `GCE_METADATA_HOST`.
    Metadata,
    /// Nowhere: no `GOOGLE_APPLICATION_CREDENTIALS`, no gcloud file, and
    /// `GCE_METADATA_HOST` names a closed port (as if not on Google Cloud).
    Absent,
    /// `GOOGLE_APPLICATION_CREDENTIALS` names a file that does not exist.
    MissingFile(&'static str),
}

/// In the test process: run `test` again in a child process whose ADC is `adc`, and pass
/// if it passed. In that child: run `body` with the metadata server (for
/// [`Adc::Metadata`]).
fn isolated<F, Fut>(test: &str, adc: Adc, body: F)
where
    F: FnOnce(Option<FakeMetadata>) -> Fut,
    Fut: Future<Output = ()>,
{
    if std::env::var_os(CHILD).is_none() {
        // An empty home: no gcloud ADC file of whoever runs the tests.
        let home = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap());
        child
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("HOME", home.path())
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env_remove("GOOGLE_CLOUD_QUOTA_PROJECT");
        match adc {
            Adc::Metadata => {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                child
                    .env("GCE_METADATA_HOST", addr.to_string())
                    .stdin(Stdio::from(OwnedFd::from(listener)));
            }
            Adc::Absent | Adc::MissingFile(_) => {
                let closed = std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap();
                child
                    .env("GCE_METADATA_HOST", closed.to_string())
                    .stdin(Stdio::null());
                if let Adc::MissingFile(path) = adc {
                    child.env("GOOGLE_APPLICATION_CREDENTIALS", path);
                }
            }
        }
        let status = child.status().unwrap();
        assert!(
            status.success(),
            "`{test}` failed in its child process (output above)"
        );
        return;
    }
    let listener = match adc {
        Adc::Metadata => {
            let fd = std::io::stdin().as_fd().try_clone_to_owned().unwrap();
            let listener = std::net::TcpListener::from(fd);
            listener.set_nonblocking(true).unwrap();
            Some(listener)
        }
        Adc::Absent | Adc::MissingFile(_) => None,
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let metadata =
            listener.map(|l| FakeMetadata::serve(tokio::net::TcpListener::from_std(l).unwrap()));
        body(metadata).await;
    });
}

fn agent(name: &str, service_account: Option<&str>) -> Agent {
    Agent {
        name: name.into(),
        owner: "alice@example.com".into(),
        role: None,
        account: None,
        gcp_service_account: service_account.map(str::to_string),
        gcp_project: Some("agents-prod".into()),
        labels: BTreeMap::new(),
        access_key_id: "AIRLEXAMPLE000000000".into(),
        created: "2026-01-01T00:00:00Z".into(),
    }
}

fn settings(endpoint: &str) -> GoogleSettings {
    GoogleSettings {
        iamcredentials_endpoint: endpoint.to_string(),
        scopes: vec![CLOUD_PLATFORM.into()],
        token_lifetime: Duration::from_secs(3600),
        refresh_before: Duration::from_secs(300),
    }
}

/// The server's TLS trust for Google: the public roots plus `upstream.ca_file` (here the
/// test CA), loaded the way `server.rs` loads it.
fn trust(pki: &TestPki) -> rustls::ClientConfig {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("upstream-ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let extra = airlock::tls::load_pem_certs(&ca_file).unwrap();
    airlock::tls::client_config(&extra).unwrap()
}

fn counter() -> prometheus::IntCounterVec {
    prometheus::IntCounterVec::new(
        prometheus::Opts::new("airlock_google_tokens_total", "test"),
        &["result"],
    )
    .unwrap()
}

async fn new_broker(pki: &TestPki, settings: GoogleSettings) -> GoogleBroker {
    GoogleBroker::new(settings, trust(pki)).await.unwrap()
}

fn token_text(token: &GoogleToken) -> &str {
    token.access_token.expose()
}

#[test]
fn a_token_is_minted_as_the_agents_service_account_and_cached() {
    isolated(
        "a_token_is_minted_as_the_agents_service_account_and_cached",
        Adc::Metadata,
        |metadata| async move {
            let metadata = metadata.unwrap();
            let pki = TestPki::new();
            let iam = FakeIamCredentials::start(&pki, &metadata).await;
            iam.grant(DEPLOYER_SA);
            let fetches = counter();
            let broker = new_broker(&pki, settings(&iam.url))
                .await
                .counted(fetches.clone());
            let deployer = agent("ci-deployer", Some(DEPLOYER_SA));

            let before = SystemTime::now();
            let token = broker.token(&deployer).await.unwrap();
            assert_eq!(token.service_account, DEPLOYER_SA);
            let minted = iam.minted();
            assert_eq!(
                minted.service_account_for(token_text(&token)).as_deref(),
                Some(DEPLOYER_SA),
                "the token is not one iamcredentials minted for the agent's account"
            );
            assert_eq!(
                minted.expiration(token_text(&token)),
                Some(token.expiration),
                "the broker's expiry is not the one Google sent"
            );
            let lifetime = token.expiration.duration_since(before).unwrap();
            assert!(
                lifetime > Duration::from_secs(3300) && lifetime <= Duration::from_secs(3601),
                "{lifetime:?}"
            );
            let debug = format!("{token:?}");
            assert!(!debug.contains(token_text(&token)), "{debug}");
            assert!(!debug.contains("ya29"), "{debug}");
            assert!(debug.contains(DEPLOYER_SA), "{debug}");

            // What Airlock asked for, as whom.
            let requests = iam.requests();
            assert_eq!(requests.len(), 1, "{requests:?}");
            assert_eq!(
                requests[0].body["scope"],
                serde_json::json!([CLOUD_PLATFORM])
            );
            assert_eq!(requests[0].body["lifetime"], "3600s");
            let own = metadata.token_requests();
            assert!(!own.is_empty());
            assert!(
                own.iter()
                    .all(|r| r.scopes.as_deref() == Some(&[CLOUD_PLATFORM.to_string()][..])),
                "Airlock's own token was asked for other scopes: {own:?}"
            );
            assert_eq!(
                metadata.refused(),
                0,
                "a metadata request without Metadata-Flavor"
            );

            // Cached: the same token, no second call.
            let again = broker.token(&deployer).await.unwrap();
            assert!(Arc::ptr_eq(&token, &again));
            assert_eq!(iam.calls(DEPLOYER_SA), 1);
            assert_eq!(fetches.with_label_values(&["ok"]).get(), 1);
            assert_eq!(fetches.with_label_values(&["error"]).get(), 0);
        },
    );
}

#[test]
fn concurrent_callers_share_one_generate_access_token_call() {
    isolated(
        "concurrent_callers_share_one_generate_access_token_call",
        Adc::Metadata,
        |metadata| async move {
            let metadata = metadata.unwrap();
            let pki = TestPki::new();
            let iam = FakeIamCredentials::start(&pki, &metadata).await;
            iam.grant(DEPLOYER_SA);
            iam.grant(ANALYST_SA);
            let broker = new_broker(&pki, settings(&iam.url)).await;
            let deployer = agent("ci-deployer", Some(DEPLOYER_SA));
            let analyst = agent("analyst", Some(ANALYST_SA));

            // Sixteen requests of each of two new agents at once.
            let calls = (0..32).map(|i| {
                let who = if i % 2 == 0 { &deployer } else { &analyst };
                broker.token(who)
            });
            let tokens = futures_util::future::join_all(calls).await;
            let mut by_account: BTreeMap<String, HashSet<String>> = BTreeMap::new();
            for token in tokens {
                let token = token.unwrap();
                by_account
                    .entry(token.service_account.clone())
                    .or_default()
                    .insert(token_text(&token).to_string());
            }
            assert_eq!(by_account.len(), 2);
            for (account, tokens) in &by_account {
                assert_eq!(tokens.len(), 1, "{account} got {} tokens", tokens.len());
            }
            assert_eq!(iam.calls(DEPLOYER_SA), 1, "{:?}", iam.requests());
            assert_eq!(iam.calls(ANALYST_SA), 1, "{:?}", iam.requests());
        },
    );
}

#[test]
fn a_token_due_for_refresh_is_replaced_and_a_changed_account_gets_its_own() {
    isolated(
        "a_token_due_for_refresh_is_replaced_and_a_changed_account_gets_its_own",
        Adc::Metadata,
        |metadata| async move {
            let metadata = metadata.unwrap();
            let pki = TestPki::new();
            let iam = FakeIamCredentials::start(&pki, &metadata).await;
            iam.grant(DEPLOYER_SA);
            iam.grant(ANALYST_SA);
            let deployer = agent("ci-deployer", Some(DEPLOYER_SA));

            // Ten-minute tokens, renewed within twenty minutes of expiry: always due.
            let eager = new_broker(
                &pki,
                GoogleSettings {
                    token_lifetime: Duration::from_secs(600),
                    refresh_before: Duration::from_secs(1200),
                    ..settings(&iam.url)
                },
            )
            .await;
            let a = eager.token(&deployer).await.unwrap();
            let b = eager.token(&deployer).await.unwrap();
            assert_ne!(
                token_text(&a),
                token_text(&b),
                "a token due for refresh was reused"
            );
            assert_eq!(iam.calls(DEPLOYER_SA), 2);
            assert_eq!(iam.requests()[0].body["lifetime"], "600s");

            // The same agent name, edited to another service account: never the old token.
            let broker = new_broker(&pki, settings(&iam.url)).await;
            let first = broker.token(&deployer).await.unwrap();
            let edited = agent("ci-deployer", Some(ANALYST_SA));
            let second = broker.token(&edited).await.unwrap();
            assert_eq!(second.service_account, ANALYST_SA);
            assert_eq!(
                iam.minted()
                    .service_account_for(token_text(&second))
                    .as_deref(),
                Some(ANALYST_SA)
            );
            assert_ne!(token_text(&first), token_text(&second));
        },
    );
}

#[test]
fn a_service_account_airlock_may_not_impersonate_is_refused_by_name() {
    isolated(
        "a_service_account_airlock_may_not_impersonate_is_refused_by_name",
        Adc::Metadata,
        |metadata| async move {
            let metadata = metadata.unwrap();
            let pki = TestPki::new();
            let iam = FakeIamCredentials::start(&pki, &metadata).await;
            let fetches = counter();
            let broker = new_broker(&pki, settings(&iam.url))
                .await
                .counted(fetches.clone());
            let deployer = agent("ci-deployer", Some(DEPLOYER_SA));

            let err = broker.token(&deployer).await.unwrap_err();
            assert!(!err.is_transient(), "{err}");
            assert!(
                matches!(&err, CredentialsError::Impersonate { service_account, .. }
                    if service_account == DEPLOYER_SA),
                "{err:?}"
            );
            let message = err.to_string();
            assert_eq!(
                message,
                format!(
                    "cannot impersonate service account {DEPLOYER_SA} for agent `ci-deployer`: \
                     iamcredentials answered 403 PERMISSION_DENIED: Permission \
                     'iam.serviceAccounts.getAccessToken' denied on resource (or it may not \
                     exist)."
                )
            );
            assert_eq!(fetches.with_label_values(&["error"]).get(), 1);
            assert!(iam.minted().len() == 0);

            // Granted, but asking for more than Google's one hour: refused as well.
            iam.grant(ANALYST_SA);
            let greedy = new_broker(
                &pki,
                GoogleSettings {
                    token_lifetime: Duration::from_secs(7200),
                    ..settings(&iam.url)
                },
            )
            .await;
            let err = greedy
                .token(&agent("analyst", Some(ANALYST_SA)))
                .await
                .unwrap_err();
            assert!(!err.is_transient(), "{err}");
            let message = err.to_string();
            assert!(message.contains(ANALYST_SA), "{message}");
            assert!(message.contains("400 INVALID_ARGUMENT"), "{message}");
            assert!(message.contains("lifetime"), "{message}");
        },
    );
}

#[test]
fn iamcredentials_down_or_unreachable_is_transient() {
    isolated(
        "iamcredentials_down_or_unreachable_is_transient",
        Adc::Metadata,
        |metadata| async move {
            let metadata = metadata.unwrap();
            let pki = TestPki::new();
            let iam = FakeIamCredentials::start(&pki, &metadata).await;
            iam.grant(DEPLOYER_SA);
            let deployer = agent("ci-deployer", Some(DEPLOYER_SA));

            // Each case on a new broker: a failure is remembered for a second per agent.
            iam.fail(Some(Failure::Unavailable));
            let err = new_broker(&pki, settings(&iam.url))
                .await
                .token(&deployer)
                .await
                .unwrap_err();
            assert!(err.is_transient(), "{err}");
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "cannot obtain credentials for agent `ci-deployer` (service account \
                     {DEPLOYER_SA}): iamcredentials answered 503 UNAVAILABLE"
                )),
                "{message}"
            );

            iam.fail(Some(Failure::DropConnections));
            let err = new_broker(&pki, settings(&iam.url))
                .await
                .token(&deployer)
                .await
                .unwrap_err();
            assert!(err.is_transient(), "{err}");
            assert!(err.to_string().contains(&iam.url), "{err}");

            let closed = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            let err = new_broker(&pki, settings(&format!("https://{closed}")))
                .await
                .token(&deployer)
                .await
                .unwrap_err();
            assert!(err.is_transient(), "{err}");

            // Back up: the same broker settings work again.
            iam.fail(None);
            let token = new_broker(&pki, settings(&iam.url))
                .await
                .token(&deployer)
                .await
                .unwrap();
            assert_eq!(
                iam.minted()
                    .service_account_for(token_text(&token))
                    .as_deref(),
                Some(DEPLOYER_SA)
            );
        },
    );
}

#[test]
fn without_application_default_credentials_google_calls_fail_transiently() {
    isolated(
        "without_application_default_credentials_google_calls_fail_transiently",
        Adc::Absent,
        |_| async move {
            let pki = TestPki::new();
            // Starting needs no Google credentials (an AWS-only deployment starts fine).
            let broker = new_broker(&pki, settings("https://iamcredentials.googleapis.com")).await;
            let err = broker
                .token(&agent("ci-deployer", Some(DEPLOYER_SA)))
                .await
                .unwrap_err();
            assert!(err.is_transient(), "{err}");
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "cannot obtain credentials for agent `ci-deployer` (service account \
                     {DEPLOYER_SA}): Airlock cannot get its own Google access token from \
                     Application Default Credentials ("
                )),
                "{message}"
            );
            assert!(
                message.contains("GOOGLE_APPLICATION_CREDENTIALS"),
                "{message}"
            );
            assert!(
                message.contains("gcloud auth application-default login"),
                "{message}"
            );
        },
    );
}

#[test]
fn a_missing_credentials_file_is_named() {
    const FILE: &str = "/nonexistent/airlock-google-key.json";
    isolated(
        "a_missing_credentials_file_is_named",
        Adc::MissingFile(FILE),
        |_| async move {
            let pki = TestPki::new();
            let broker = new_broker(&pki, settings("https://iamcredentials.googleapis.com")).await;
            let deployer = agent("ci-deployer", Some(DEPLOYER_SA));
            let err = broker.token(&deployer).await.unwrap_err();
            assert!(err.is_transient(), "{err}");
            let message = err.to_string();
            assert!(message.contains(FILE), "{message}");
            assert!(
                message.contains("Application Default Credentials"),
                "{message}"
            );
        },
    );
}

/// No Google call, so no environment to set: runs in the test process.
#[tokio::test]
async fn an_agent_without_a_service_account_is_told_so() {
    let pki = TestPki::new();
    let metadata = FakeMetadata::start().await;
    let iam = FakeIamCredentials::start(&pki, &metadata).await;
    let broker = new_broker(&pki, settings(&iam.url)).await;
    let err = broker.token(&agent("aws-only", None)).await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert_eq!(
        err.to_string(),
        "agent `aws-only` has no Google service account, so Airlock cannot make its Google \
         Cloud calls"
    );
    assert!(iam.requests().is_empty());
    assert!(metadata.token_requests().is_empty());
}

/// The fakes refuse what Google refuses, so the tests above prove something.
#[tokio::test]
async fn the_fakes_enforce_what_google_enforces() {
    let pki = TestPki::new();
    let metadata = FakeMetadata::start().await;
    let iam = FakeIamCredentials::start(&pki, &metadata).await;
    iam.grant(DEPLOYER_SA);
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(trust(&pki))
        .no_proxy()
        .build()
        .unwrap();
    let token_url = format!(
        "http://{}/computeMetadata/v1/instance/service-accounts/default/token",
        metadata.host()
    );

    let plain = client.get(&token_url).send().await.unwrap();
    assert_eq!(
        plain.status(),
        403,
        "the metadata server needs Metadata-Flavor"
    );
    let proxied = client
        .get(&token_url)
        .header("Metadata-Flavor", "Google")
        .header("X-Forwarded-For", "10.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        proxied.status(),
        403,
        "the metadata server refuses proxied requests"
    );
    let email = client
        .get(format!(
            "http://{}/computeMetadata/v1/instance/service-accounts/default/email",
            metadata.host()
        ))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap();
    assert_eq!(email.headers()["metadata-flavor"], "Google");
    assert_eq!(email.text().await.unwrap(), METADATA_EMAIL);
    let base: serde_json::Value = client
        .get(&token_url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(base["token_type"], "Bearer");
    let base = base["access_token"].as_str().unwrap().to_string();

    let generate = |sa: &str| {
        client.post(format!(
            "{}/v1/projects/-/serviceAccounts/{sa}:generateAccessToken",
            iam.url
        ))
    };
    let body = serde_json::json!({"scope": [CLOUD_PLATFORM], "lifetime": "3600s"});
    let status_of = |response: reqwest::Response| async move {
        let code = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        (
            code,
            body["error"]["status"].as_str().unwrap_or("").to_string(),
        )
    };
    let anonymous = generate(DEPLOYER_SA).json(&body).send().await.unwrap();
    assert_eq!(status_of(anonymous).await, (401, "UNAUTHENTICATED".into()));
    let forged = generate(DEPLOYER_SA)
        .bearer_auth("ya29.forged")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(status_of(forged).await, (401, "UNAUTHENTICATED".into()));
    let other = generate(ANALYST_SA)
        .bearer_auth(&base)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(status_of(other).await, (403, "PERMISSION_DENIED".into()));
    let unscoped = generate(DEPLOYER_SA)
        .bearer_auth(&base)
        .json(&serde_json::json!({"scope": [], "lifetime": "60s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_of(unscoped).await, (400, "INVALID_ARGUMENT".into()));
    let granted = generate(DEPLOYER_SA)
        .bearer_auth(&base)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), 200);
    let granted: serde_json::Value = granted.json().await.unwrap();
    let minted = granted["accessToken"].as_str().unwrap();
    assert!(minted.starts_with("ya29.fake-"), "{minted}");
    assert_eq!(
        iam.minted().service_account_for(minted).as_deref(),
        Some(DEPLOYER_SA)
    );
    assert_eq!(iam.minted().service_account_for(&base), None);
    assert_eq!(iam.calls(DEPLOYER_SA), 1);
}
