//! Shared test helpers: run the real `airlock` binary on ephemeral ports, reach hosts
//! through it with real TLS, and read its metrics.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

pub mod aws;
pub mod corpus;
pub mod gcp_corpus;
pub mod google_auth;
pub mod google_front;
pub mod moto;
pub mod receiver;
pub mod relay;
pub mod signing;
pub mod upstream;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub use signing::AgentKey;
pub use upstream::TestPki;

/// The agent every test Airlock is started with.
pub const TEST_AGENT: &str = "test-agent";
pub const TEST_OWNER: &str = "dev@example.com";
pub const TEST_ROLE: &str = "arn:aws:iam::123456789012:role/agent-role";

/// Rules that let every call through: for tests about transport and authentication, which
/// send calls the shipped baseline would hold (or could not classify, like `GET /small`).
pub const ALLOW_ALL_RULES: &str = "defaults: {unmatched: allow, unclassified: allow}\nrules: []\n";

/// The shipped baseline rules with a 1 s hold (instead of 50 s), so tests do not wait.
pub fn baseline_rules_quick_hold() -> String {
    let shipped = include_str!("../../rules/baseline.yaml");
    assert!(
        shipped.contains("    hold: 50s\n"),
        "the baseline's default hold moved"
    );
    shipped.replace("    hold: 50s\n", "    hold: 1s\n")
}

/// Airlock's own (base) credentials in tests: moto accepts any when auth is off.
pub const BASE_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/dev/null"),
];

/// `airlock agents add NAME …` against the config in `dir`; the printed key pair.
pub fn add_agent(dir: &std::path::Path, name: &str, owner: &str, role: &str) -> AgentKey {
    let output = Command::new(BIN)
        .args([
            "agents", "add", name, "--owner", owner, "--role", role, "--config",
        ])
        .arg(dir.join("airlock.yaml"))
        .output()
        .expect("run airlock agents add");
    assert!(
        output.status.success(),
        "agents add failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let value = |var: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {var}=")))
            .unwrap_or_else(|| panic!("no {var} in: {text}"))
            .to_string()
    };
    AgentKey {
        id: value("AWS_ACCESS_KEY_ID"),
        secret: value("AWS_SECRET_ACCESS_KEY"),
    }
}

/// The Python with the pinned test tools (botocore, moto) that tests/run.sh installs.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("AIRLOCK_TEST_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no test Python: run `bash tests/run.sh`, which installs the pinned test tools into .venv"
    );
    venv
}

/// The test Python as [`python`] finds it, or `None` after printing why `test` is skipped:
/// only when none is configured at all (`AIRLOCK_TEST_PYTHON` unset and no `.venv`). A
/// configured Python that lacks a package fails the test instead.
pub fn python_or_skip(test: &str) -> Option<PathBuf> {
    let configured = std::env::var_os("AIRLOCK_TEST_PYTHON").is_some()
        || PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join(".venv/bin/python")
            .exists();
    if !configured {
        eprintln!(
            "SKIPPED {test}: no test Python (AIRLOCK_TEST_PYTHON unset and no .venv); `bash tests/run.sh` installs the pinned tools"
        );
        return None;
    }
    Some(python())
}

pub const BIN: &str = env!("CARGO_BIN_EXE_airlock");

/// A fresh directory with `airlock init` done in it (config, CA, keys, baseline rules).
pub fn init_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    init(dir.path());
    dir
}

/// `airlock init --dir DIR`, which must succeed.
fn init(dir: &std::path::Path) {
    let status = Command::new(BIN)
        .args(["init", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .expect("run airlock init");
    assert!(status.success(), "airlock init failed");
}

/// A running `airlock serve`, killed on drop.
pub struct Airlock {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub proxy: SocketAddr,
    pub control: SocketAddr,
    /// The key of [`TEST_AGENT`] (absent when the config was written by the test itself).
    pub key: Option<AgentKey>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Airlock {
    /// `airlock init` in a fresh directory, then `serve` with a config made of test
    /// settings (ephemeral ports, JSON logs, `upstream.ca_file` = the test PKI, STS = the
    /// shared moto) and `extra` YAML appended; one agent, [`TEST_AGENT`].
    pub fn start(pki: &TestPki, extra: &str) -> Airlock {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, pki, extra)
    }

    pub fn start_in(dir: tempfile::TempDir, pki: &TestPki, extra: &str) -> Airlock {
        Self::start_in_env(dir, pki, extra, &BASE_ENV, Some(ALLOW_ALL_RULES))
    }

    /// As [`Airlock::start`], with Airlock's own AWS environment (base credentials) given.
    pub fn start_env(pki: &TestPki, extra: &str, env: &[(&str, &str)]) -> Airlock {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in_env(dir, pki, extra, env, Some(ALLOW_ALL_RULES))
    }

    /// As [`Airlock::start_env`], with the rules given (`None`: the shipped baseline that
    /// `airlock init` writes).
    pub fn start_with_rules(
        pki: &TestPki,
        extra: &str,
        env: &[(&str, &str)],
        rules: Option<&str>,
    ) -> Airlock {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in_env(dir, pki, extra, env, rules)
    }

    fn start_in_env(
        dir: tempfile::TempDir,
        pki: &TestPki,
        extra: &str,
        env: &[(&str, &str)],
        rules: Option<&str>,
    ) -> Airlock {
        init(dir.path());
        std::fs::write(dir.path().join("upstream-ca.pem"), &pki.ca_pem).expect("write ca");
        if let Some(rules) = rules {
            std::fs::remove_file(dir.path().join("rules/baseline.yaml")).expect("baseline rules");
            std::fs::write(dir.path().join("rules/test.yaml"), rules).expect("write rules");
        }
        let sts = if extra.contains("credentials:") {
            String::new()
        } else {
            format!(
                "credentials:\n  sts_endpoint: {}\n",
                moto::Moto::shared().url()
            )
        };
        let config = format!(
            "proxy:\n  listen: 127.0.0.1:0\ncontrol:\n  listen: 127.0.0.1:0\nlog:\n  format: json\n  level: info\n{sts}{extra}"
        );
        let config = if config.contains("upstream:") {
            config.replace("upstream:\n", "upstream:\n  ca_file: upstream-ca.pem\n")
        } else {
            format!("{config}upstream:\n  ca_file: upstream-ca.pem\n")
        };
        std::fs::write(dir.path().join("airlock.yaml"), config).expect("write config");
        let key = add_agent(dir.path(), TEST_AGENT, TEST_OWNER, TEST_ROLE);
        let mut airlock = Self::spawn_env(dir, env);
        airlock.key = Some(key);
        airlock
    }

    /// The test agent's key.
    pub fn key(&self) -> &AgentKey {
        self.key.as_ref().expect("this Airlock has the test agent")
    }

    /// Build `request` and sign it as the test agent for `service`.
    pub fn signed(&self, request: reqwest::RequestBuilder, service: &str) -> reqwest::Request {
        let mut request = request.build().expect("request");
        signing::sign_now(&mut request, self.key(), service);
        request
    }

    /// Build `request`, sign it as the test agent for `service`, send it.
    pub async fn send(
        &self,
        client: &reqwest::Client,
        request: reqwest::RequestBuilder,
        service: &str,
    ) -> reqwest::Response {
        let request = self.signed(request, service);
        client.execute(request).await.expect("send through airlock")
    }

    /// `DELETE https://doomed.s3.amazonaws.com/` signed as the test agent: the call the
    /// approval tests park.
    pub async fn delete_bucket(&self) -> reqwest::Response {
        let client = self.client(false);
        self.send(
            &client,
            client.delete("https://doomed.s3.amazonaws.com/"),
            "s3",
        )
        .await
    }

    /// curl arguments that sign as the test agent (curl's own SigV4 signer).
    pub fn curl_auth(&self, service: &str) -> Vec<String> {
        let key = self.key();
        vec![
            "--aws-sigv4".into(),
            format!("aws:amz:us-east-1:{service}"),
            "--user".into(),
            format!("{}:{}", key.id, key.secret),
        ]
    }

    /// The AWS CLI (of the test venv) as the test agent, with only what an agent's
    /// environment holds: the proxy, Airlock's CA, the Airlock-issued keys; `HOME` = `home`.
    pub fn aws_cli(&self, home: &std::path::Path, args: &[&str]) -> Command {
        let key = self.key();
        let mut command = Command::new(python().with_file_name("aws"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("HTTPS_PROXY", format!("http://{}", self.proxy))
            .env("AWS_CA_BUNDLE", self.ca_pem_path())
            .env("AWS_ACCESS_KEY_ID", &key.id)
            .env("AWS_SECRET_ACCESS_KEY", &key.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "2")
            .args(args);
        command
    }

    /// `airlock serve --config DIR/airlock.yaml` as it stands.
    pub fn spawn(dir: tempfile::TempDir) -> Airlock {
        Self::spawn_env(dir, &BASE_ENV)
    }

    /// As [`Airlock::spawn`], with Airlock's own AWS environment given.
    pub fn spawn_env(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Airlock {
        let mut command = Command::new(BIN);
        // Hermetic: Airlock's AWS environment is exactly `env`, never the caller's.
        for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("AWS_")) {
            command.env_remove(name);
        }
        let mut child = command
            .args(["serve", "--config"])
            .arg(dir.path().join("airlock.yaml"))
            .env_remove("RUST_LOG")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn airlock serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("logs").push(line);
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let Ok(ready) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "airlock did not become ready; log:\n{}",
                logs.lock().expect("logs").join("\n")
            );
        };
        let ready: serde_json::Value = serde_json::from_str(&ready).expect("ready line is JSON");
        let addr = |key: &str| -> SocketAddr {
            ready[key]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("address in ready line")
        };
        Airlock {
            proxy: addr("proxy"),
            control: addr("control"),
            child: Some(child),
            dir,
            key: None,
            logs,
        }
    }

    /// `kill -9`, keeping the directory (config, keys, databases) for a restart.
    pub fn kill_keep_dir(mut self) -> tempfile::TempDir {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }

    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("certs/ca.pem")
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.ca_pem_path()).expect("ca.pem")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("logs").clone()
    }

    /// Send a signal (e.g. "TERM") to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Wait for the process to exit; its exit status.
    pub fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("child");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "airlock did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Peak resident memory of the process (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM");
        kib * 1024
    }

    /// GET a control-listener path: (status, body).
    pub async fn control_get(&self, path: &str) -> (u16, String) {
        let response = reqwest::Client::new()
            .get(format!("http://{}{path}", self.control))
            .send()
            .await
            .expect("control request");
        (
            response.status().as_u16(),
            response.text().await.expect("control body"),
        )
    }

    /// The value of one sample in `/metrics` (a full name with labels, as exposed), or 0.
    pub async fn metric(&self, sample: &str) -> f64 {
        let (_, text) = self.control_get("/metrics").await;
        metric_value(&text, sample)
    }

    /// Approval `id` as the API shows it to the reviewer holding `token`.
    pub async fn approval(&self, id: &str, token: &str) -> serde_json::Value {
        let response = reqwest::Client::new()
            .get(format!("http://{}/v1/approvals/{id}", self.control))
            .bearer_auth(token)
            .send()
            .await
            .expect("approvals API");
        assert_eq!(response.status(), 200);
        response.json().await.expect("approval JSON")
    }

    /// `airlock_channel_callbacks_total` of `channel` for `result` and `reason`.
    pub async fn channel_callbacks(&self, channel: &str, result: &str, reason: &str) -> f64 {
        self.metric(&format!(
            "airlock_channel_callbacks_total{{channel=\"{channel}\",reason=\"{reason}\",result=\"{result}\"}}"
        ))
        .await
    }

    /// `airlock_channel_messages_total` of `channel` for `result`.
    pub async fn channel_messages(&self, channel: &str, result: &str) -> f64 {
        self.metric(&format!(
            "airlock_channel_messages_total{{channel=\"{channel}\",result=\"{result}\"}}"
        ))
        .await
    }

    /// A reqwest client that goes through this Airlock and trusts its CA only.
    pub fn client(&self, http2: bool) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.ca_pem().as_bytes()).expect("ca");
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .proxy(reqwest::Proxy::https(format!("http://{}", self.proxy)).expect("proxy"));
        if !http2 {
            builder = builder.http1_only();
        }
        builder.build().expect("client")
    }
}

impl Drop for Airlock {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Run `command`, which must succeed; its stdout.
pub fn run_ok(mut command: Command) -> String {
    let out = command
        .output()
        .expect("run the command (tests/run.sh installs the AWS CLI)");
    assert!(
        out.status.success(),
        "{:?}: {}",
        command.get_program(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

pub fn metric_value(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(sample)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Open a CONNECT tunnel through the proxy: the stream after `200`, or the refusal
/// (status, body).
pub async fn connect(proxy: SocketAddr, target: &str) -> Result<TcpStream, (u16, String)> {
    let mut stream = TcpStream::connect(proxy).await.expect("connect to proxy");
    stream
        .write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes())
        .await
        .expect("write CONNECT");
    let mut reader = AsyncBufReader::new(&mut stream);
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .await
        .expect("status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.expect("header line");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    if status == 200 {
        return Ok(stream);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.expect("refusal body");
    Err((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A rustls client config trusting exactly `ca_pem`, offering `alpn`.
pub fn client_tls(ca_pem: &str, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("pem")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// CONNECT to `host:443` and complete TLS with SNI `sni`, trusting `ca_pem`.
pub async fn tls_through(
    proxy: SocketAddr,
    host: &str,
    sni: &str,
    ca_pem: &str,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let stream = connect(proxy, &format!("{host}:443"))
        .await
        .map_err(|(s, b)| std::io::Error::other(format!("CONNECT refused: {s} {b}")))?;
    let name = ServerName::try_from(sni.to_string()).map_err(std::io::Error::other)?;
    TlsConnector::from(client_tls(ca_pem, alpn))
        .connect(name, stream)
        .await
}

/// An HTTP/2 connection through Airlock to `host` (SNI = CONNECT host), ready to send on.
pub async fn h2_through<B>(
    airlock: &Airlock,
    host: &str,
) -> hyper::client::conn::http2::SendRequest<B>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tls = tls_through(airlock.proxy, host, host, &airlock.ca_pem(), &[b"h2"])
        .await
        .expect("TLS through Airlock");
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    sender
}

/// Write `raw` on an HTTP/1.1 connection and read until the peer closes (or `limit`).
pub async fn raw_exchange<S>(stream: &mut S, raw: &[u8], limit: Duration) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.write_all(raw).await.expect("write request");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A config route sending every test host to `addr`.
pub fn routes_to(addr: SocketAddr, scheme: &str) -> String {
    format!(
        "upstream:\n  routes:\n    - host: \"*.amazonaws.com\"\n      to: {scheme}://{addr}\n    - host: \"*.example.org\"\n      to: {scheme}://{addr}\n"
    )
}
