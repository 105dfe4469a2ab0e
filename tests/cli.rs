//! The command line as a user runs it: init, config check, serve with defaults, start-up
//! failures that must stop Airlock, and graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};
use std::time::Duration;

use support::upstream;
use support::{Airlock, BIN, TestPki, routes_to};

fn airlock(args: &[&str], cwd: &std::path::Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run airlock")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_creates_a_ca_and_config_prints_the_agent_environment_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out = airlock(&["init", "--dir", "deploy"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deploy = dir.path().join("deploy");
    let stdout = text(&out.stdout);
    let ca = std::fs::canonicalize(deploy.join("certs/ca.pem")).unwrap();
    for var in [
        "AWS_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
        "NODE_EXTRA_CA_CERTS",
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    ] {
        assert!(
            stdout.contains(&format!("export {var}={}\n", ca.display())),
            "{var} missing:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("export HTTPS_PROXY=http://127.0.0.1:8080\n"),
        "{stdout}"
    );
    // Every line is either a comment or an export: the output can be eval'd.
    assert!(
        stdout
            .lines()
            .all(|l| l.starts_with("# ") || l.starts_with("export ")),
        "{stdout}"
    );

    let key = deploy.join("certs/ca.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let config = std::fs::read_to_string(deploy.join("airlock.yaml")).unwrap();
    assert!(config.contains("intercept:") && config.starts_with("# Airlock configuration"));

    let before = std::fs::read(&key).unwrap();
    let again = airlock(&["init", "--dir", "deploy"], dir.path());
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("--force"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(
        std::fs::read(&key).unwrap(),
        before,
        "a refused init changed the key"
    );

    let forced = airlock(&["init", "--dir", "deploy", "--force"], dir.path());
    assert!(forced.status.success());
    assert_ne!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn config_check_reports_every_error_with_its_line_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "intercept:\n  - amazonaws.com\n  - 10.0.0.1\nupstream:\n  routes:\n    - host: '*.amazonaws.com'\n      to: moto:5000\nlimits:\n  tls_handshake_timeout: 0s\n",
    )
    .unwrap();
    let out = airlock(&["config", "check", "--config", "bad.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for expected in [
        "bad.yaml:3: intercept[1]: `10.0.0.1` is an IP address",
        "bad.yaml:7: upstream.routes[0].to:",
        "bad.yaml:9: limits.tls_handshake_timeout: must be longer than 0s",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }

    std::fs::write(
        dir.path().join("good.yaml"),
        "proxy:\n  listen: 127.0.0.1:9999\n",
    )
    .unwrap();
    let out = airlock(&["config", "check", "--config", "good.yaml"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("good.yaml: ok"));
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_with_nothing_sets_up_the_defaults_in_the_working_directory() {
    // This is the README's run command; it uses the default ports 8080 and 8081.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut healthy = false;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get("http://127.0.0.1:8081/healthz").await {
            healthy = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert!(
        healthy,
        "the control listener never answered on 127.0.0.1:8081"
    );
    assert!(
        status.success(),
        "SIGTERM should end airlock cleanly: {status}"
    );
    assert!(dir.path().join("certs/ca.pem").exists());
    assert!(dir.path().join("airlock.yaml").exists());
}

#[test]
fn serve_refuses_a_ca_key_readable_by_others() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        airlock(&["init", "--dir", "."], dir.path())
            .status
            .success()
    );
    std::fs::set_permissions(
        dir.path().join("certs/ca.key"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let out = airlock(&["serve", "--config", "airlock.yaml"], dir.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_refuses_to_intercept_what_the_ca_cannot_vouch_for() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        airlock(&["init", "--dir", "."], dir.path())
            .status
            .success()
    );
    std::fs::write(
        dir.path().join("airlock.yaml"),
        "intercept: [amazonaws.com, azure.com]\n",
    )
    .unwrap();
    let out = airlock(&["serve", "--config", "airlock.yaml"], dir.path());
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot vouch for intercepted `azure.com`")
            && stderr.contains("init --force"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_requests_and_stops_accepting() {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let mut airlock = Airlock::start(
        &pki,
        &format!(
            "{}shutdown:\n  drain_timeout: 10s\n",
            routes_to(up, "https")
        ),
    );
    let client = airlock.client(false);
    let request = airlock.signed(client.get("https://sts.amazonaws.com/slow/1500"), "sts");
    let in_flight = tokio::spawn(async move { client.execute(request).await?.text().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    airlock.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let refused = tokio::net::TcpStream::connect(airlock.proxy).await;
    assert!(refused.is_err(), "still accepting after SIGTERM");
    let body = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was cut");
    assert_eq!(body, "slow done\n");
    let status = airlock.wait(Duration::from_secs(10));
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_drain_deadline_cuts_what_is_still_running() {
    let pki = TestPki::new();
    let up = upstream::start_tls(&pki).await;
    let mut airlock = Airlock::start(
        &pki,
        &format!("{}shutdown:\n  drain_timeout: 1s\n", routes_to(up, "https")),
    );
    let client = airlock.client(false);
    let request = airlock.signed(client.get("https://sts.amazonaws.com/slow/8000"), "sts");
    let in_flight = tokio::spawn(async move { client.execute(request).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    airlock.signal("TERM");
    // Exits at the 1 s deadline, long before the 8 s request would finish.
    let status = airlock.wait(Duration::from_secs(5));
    assert!(status.success(), "{status}");
    let cut = in_flight.await.unwrap();
    assert!(cut.is_err(), "the request survived the drain deadline");
    assert!(
        airlock
            .logs()
            .iter()
            .any(|l| l.contains("drain deadline passed")),
        "{:?}",
        airlock.logs()
    );
}
