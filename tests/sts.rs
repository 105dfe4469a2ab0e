//! The credential broker against a real STS (moto): agents' role sessions are assumed with
//! the agent's name, cached, fetched once under concurrency, refreshed, and a broken STS
//! is a clear error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use airlock::agents::Agent;
use airlock::credentials::{Broker, BrokerSettings};
use support::moto::Moto;

fn agent() -> Agent {
    Agent {
        name: "ci-deployer".into(),
        owner: "alice@example.com".into(),
        role: Some("arn:aws:iam::123456789012:role/ci".into()),
        account: Some("123456789012".into()),
        gcp_service_account: None,
        gcp_project: None,
        labels: BTreeMap::new(),
        access_key_id: "AIRLEXAMPLE000000000".into(),
        created: "2026-01-01T00:00:00Z".into(),
    }
}

fn settings(endpoint: String, refresh_before: Duration) -> BrokerSettings {
    BrokerSettings {
        region: "us-east-1".into(),
        sts_endpoint: Some(endpoint),
        session_duration: Duration::from_secs(900),
        refresh_before,
    }
}

const TEST: &str = "role_sessions_are_assumed_cached_single_flight_and_refreshed";

/// Airlock's base credentials come from the environment (the standard chain): the test
/// runs itself again as a child process with them set, rather than mutate its own.
#[test]
fn role_sessions_are_assumed_cached_single_flight_and_refreshed() {
    if std::env::var_os("AIRLOCK_STS_TEST_CHILD").is_none() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env("AIRLOCK_STS_TEST_CHILD", "1")
            .env("AWS_ACCESS_KEY_ID", "AKIAAIRLOCKBASE00001")
            .env("AWS_SECRET_ACCESS_KEY", "airlock-base-secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .status()
            .unwrap();
        assert!(status.success(), "the broker test failed (output above)");
        return;
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(broker_checks());
}

async fn broker_checks() {
    let moto = Moto::start(&[]);
    let agent = agent();

    let broker = Broker::new(settings(moto.url(), Duration::from_secs(60))).await;
    let first = broker.session(&agent).await.unwrap();
    assert!(
        first.access_key_id.starts_with("ASIA"),
        "{}",
        first.access_key_id
    );
    assert!(
        first
            .assumed_role_arn
            .ends_with(":assumed-role/ci/ci-deployer"),
        "{}",
        first.assumed_role_arn
    );
    assert!(
        !format!("{first:?}").contains(first.secret.expose()),
        "a secret in Debug output"
    );
    let again = broker.session(&agent).await.unwrap();
    assert_eq!(
        again.access_key_id, first.access_key_id,
        "a cached session was not reused"
    );

    // Sixteen concurrent requests of a new agent: one AssumeRole, one session.
    let fresh = Broker::new(settings(moto.url(), Duration::from_secs(60))).await;
    let sessions = futures_util::future::join_all((0..16).map(|_| fresh.session(&agent))).await;
    let ids: std::collections::HashSet<String> = sessions
        .into_iter()
        .map(|s| s.unwrap().access_key_id.clone())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "concurrent callers assumed the role {} times",
        ids.len()
    );

    // A session within `refresh_before` of expiry is replaced.
    let eager = Broker::new(settings(moto.url(), Duration::from_secs(3600))).await;
    let a = eager.session(&agent).await.unwrap();
    let b = eager.session(&agent).await.unwrap();
    assert_ne!(a.access_key_id, b.access_key_id);

    // STS unreachable: a clear error naming the agent and role.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let broken = Broker::new(settings(
        format!("http://{closed}"),
        Duration::from_secs(60),
    ))
    .await;
    // Unreachable is transient (agents see a retryable 503), unlike a refusal by STS.
    let err = broken.session(&agent).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let err = err.to_string();
    assert!(
        err.contains(
            "cannot obtain credentials for agent `ci-deployer` (role arn:aws:iam::123456789012:role/ci)"
        ),
        "{err}"
    );
}
