//! The end-to-end world: moto as AWS with authentication enforced after its bootstrap,
//! and an Airlock in front of it whose agents are the real AWS CLI and boto3 (shared by
//! `tests/aws_e2e.rs` and `tests/web_ui.rs`).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::moto::Moto;
use super::relay::CountingRelay;
use super::{AgentKey, Airlock, TestPki, python};

/// moto with auth enforced, and the bootstrap's output.
pub struct World {
    pub moto: Moto,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub role_arn: String,
    pub account: String,
}

pub fn script(name: &str) -> String {
    format!("{}/tests/aws/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let count = Command::new(python())
            .args([script("moto_bootstrap.py"), "--count".into()])
            .output()
            .expect("moto_bootstrap --count");
        let count = String::from_utf8(count.stdout).unwrap().trim().to_string();
        let moto = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", &count)]);
        let out = Command::new(python())
            .args([script("moto_bootstrap.py"), moto.url()])
            .output()
            .expect("moto_bootstrap");
        assert!(
            out.status.success(),
            "bootstrap: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let boot: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let field = |k: &str| boot[k].as_str().unwrap().to_string();
        World {
            access_key_id: field("access_key_id"),
            secret_access_key: field("secret_access_key"),
            role_arn: field("role_arn"),
            account: field("account"),
            moto,
        }
    })
}

/// An Airlock in front of moto (every AWS host routed through a counting relay).
pub struct Stack {
    pub airlock: Airlock,
    pub relay: CountingRelay,
    pub home: tempfile::TempDir,
}

pub async fn stack() -> Stack {
    stack_with_rules(Some(super::ALLOW_ALL_RULES)).await
}

/// With `rules` (`None`: the shipped baseline).
pub async fn stack_with_rules(rules: Option<&str>) -> Stack {
    stack_with(rules, "").await
}

/// With `rules` and `extra` config.
pub async fn stack_with(rules: Option<&str>, extra_config: &str) -> Stack {
    let world = world();
    assert_eq!(world.role_arn, super::TEST_ROLE, "the test agent's role");
    let relay = CountingRelay::start(world.moto.addr).await;
    let extra = format!(
        "credentials:\n  sts_endpoint: {}\nupstream:\n  routes:\n    - host: \"*.amazonaws.com\"\n      to: http://{}\n{extra_config}",
        world.moto.url(),
        relay.addr
    );
    let airlock = Airlock::start_with_rules(&TestPki::new(), &extra, &airlock_env(world), rules);
    let home = tempfile::tempdir().unwrap();
    // `aws s3 presign` makes SigV2 URLs unless told otherwise; Airlock accepts SigV4 only.
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[default]\nregion = us-east-1\ns3 =\n    signature_version = s3v4\n",
    )
    .unwrap();
    Stack {
        airlock,
        relay,
        home,
    }
}

/// Airlock's own AWS environment: moto's IAM user `airlock`.
fn airlock_env(world: &World) -> [(&str, &str); 4] {
    [
        ("AWS_ACCESS_KEY_ID", world.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", world.secret_access_key.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
    ]
}

impl Stack {
    /// `kill -9` Airlock and start it again on the same directory (config, keys,
    /// approvals database, audit log); the agent's key stays valid.
    pub fn restart(self) -> Stack {
        let Stack {
            airlock,
            relay,
            home,
        } = self;
        let key = airlock.key().clone();
        let dir = airlock.kill_keep_dir();
        let mut airlock = Airlock::spawn_env(dir, &airlock_env(world()));
        airlock.key = Some(key);
        Stack {
            airlock,
            relay,
            home,
        }
    }

    /// A role `name` and a customer policy `name-policy` to attach to it: the policy ARN.
    pub fn role_and_policy(&self, name: &str) -> String {
        self.aws(&[
            "iam",
            "create-role",
            "--role-name",
            name,
            "--assume-role-policy-document",
            "{}",
        ]);
        let policy = self.aws_json(&[
            "iam", "create-policy", "--policy-name", &format!("{name}-policy"), "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
        ]);
        policy["Policy"]["Arn"].as_str().unwrap().to_string()
    }

    /// `airlock audit verify` on `log` with this Airlock's config.
    pub fn verify_audit(&self, log: &Path) -> Output {
        Command::new(super::BIN)
            .args(["audit", "verify", "--log"])
            .arg(log)
            .arg("--config")
            .arg(self.airlock.dir.path().join("airlock.yaml"))
            .output()
            .unwrap()
    }

    /// A client process configured the way an agent's environment is: proxy, CA, keys.
    pub fn command(&self, program: &Path, key: &AgentKey) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("HTTPS_PROXY", format!("http://{}", self.airlock.proxy))
            .env("AWS_CA_BUNDLE", self.airlock.ca_pem_path())
            .env("AWS_ACCESS_KEY_ID", &key.id)
            .env("AWS_SECRET_ACCESS_KEY", &key.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "2");
        command
    }

    pub fn aws_as(&self, key: &AgentKey, args: &[&str]) -> Output {
        self.aws_command(key, args)
            .output()
            .expect("run the aws CLI (installed by tests/run.sh)")
    }

    pub fn aws_command(&self, key: &AgentKey, args: &[&str]) -> Command {
        let aws = python().with_file_name("aws");
        let mut command = self.command(&aws, key);
        command.args(args);
        command
    }

    /// Run `aws ARGS` as the test agent; its stdout (the command must succeed).
    pub fn aws(&self, args: &[&str]) -> String {
        let out = self.aws_as(self.airlock.key(), args);
        assert!(
            out.status.success(),
            "aws {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr),
            self.airlock.logs().join("\n")
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn aws_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(&self.aws(&all)).unwrap()
    }

    /// Run a boto3 snippet as the test agent, with extra environment; its stdout.
    pub fn boto3(&self, code: &str, env: &[(&str, &str)]) -> String {
        let out = self
            .command(&python(), self.airlock.key())
            .envs(env.iter().copied())
            .args(["-c", &format!("import boto3, json, hashlib\n{code}")])
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "boto3: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.airlock.logs().join("\n")
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Assert that the CLI call held in `cli` succeeded and `role` now has `policy_arn`.
    pub fn assert_held_call_attached(
        &self,
        cli: std::thread::JoinHandle<Output>,
        role: &str,
        policy_arn: &str,
    ) {
        let out = cli.join().unwrap();
        assert!(
            out.status.success(),
            "the held CLI call: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let attached = self.aws_json(&["iam", "list-attached-role-policies", "--role-name", role]);
        assert_eq!(attached["AttachedPolicies"][0]["PolicyArn"], policy_arn);
    }

    /// Hosts Airlock served (from its access log).
    pub fn hosts_seen(&self) -> Vec<String> {
        self.airlock
            .logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|r| r["http.host"].as_str().map(str::to_string))
            .collect()
    }
}
