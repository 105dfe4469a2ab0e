//! The command line (clap derive only; behaviour lives in the library).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "airlock",
    version,
    about = "An HTTPS proxy that puts a human in front of dangerous cloud API calls"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a CA (certs/ca.pem, certs/ca.key) and a commented airlock.yaml; print the
    /// environment agents need.
    Init {
        /// Directory to set up.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Replace an existing CA (agents must then trust the new ca.pem).
        #[arg(long)]
        force: bool,
    },
    /// Run the proxy. Without --config: ./airlock.yaml if present; if neither it nor a CA
    /// exists, set up the defaults in the working directory first.
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show how Airlock classifies requests: one JSON line per request.
    Explain {
        /// A raw HTTP/1.1 request (or, with --jsonl, a JSON Lines file); `-` or nothing
        /// reads standard input.
        file: Option<PathBuf>,
        /// Input is JSON Lines of {"method","url","headers":{…},"body_b64"}.
        #[arg(long)]
        jsonl: bool,
    },
    /// Manage agents and their Airlock-issued keys.
    Agents {
        #[arg(long, short, default_value = "airlock.yaml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// Check, test and explain the rule files.
    Rules {
        /// The rules directory.
        #[arg(long, default_value = "rules", global = true)]
        dir: PathBuf,
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Review calls held for approval (through the control API), and make reviewer tokens.
    Approvals {
        /// Airlock's control address.
        #[arg(
            long,
            env = "AIRLOCK_URL",
            default_value = "http://127.0.0.1:8081",
            global = true
        )]
        url: String,
        /// A reviewer's bearer token.
        #[arg(long, env = "AIRLOCK_TOKEN", hide_env_values = true, global = true)]
        token: Option<String>,
        #[command(subcommand)]
        command: ApprovalsCommand,
    },
    /// Verify or export the audit log.
    Audit {
        #[arg(long, short, default_value = "airlock.yaml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Work with the configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and report every error with its line.
    Check {
        #[arg(long, short, default_value = "airlock.yaml")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Approvals, newest first (JSON).
    List {
        /// pending, approved, denied or expired.
        #[arg(long)]
        state: Option<String>,
    },
    /// One approval with its full context and votes (JSON).
    Show { id: String },
    /// Vote to approve.
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny (a reason is required).
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Wait until the approval is decided; exit 0 when approved, 1 otherwise (for agents:
    /// no token needed).
    Wait {
        id: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Make a reviewer token: prints the token (give it to the reviewer; shown once) and
    /// the `approvals.approvers` entry for the config (its SHA-256 only).
    Token {
        name: String,
        #[arg(long = "group", required = true)]
        groups: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain and every signed checkpoint; name the first bad record.
    /// Needs only the log and the verifier key (offline).
    Verify {
        /// The log (default: audit.file of the config).
        #[arg(long)]
        log: Option<PathBuf>,
        /// The verifier key, or a file holding it (default: <audit.key_file>.pub).
        #[arg(long)]
        key: Option<String>,
    },
    /// Records at or after --since, as JSON Lines or CSV, for evidence.
    Export {
        #[arg(long)]
        log: Option<PathBuf>,
        /// RFC 3339, e.g. 2026-11-01T00:00:00Z.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
        format: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load the rules: every error with its file and line (exit 1), then warnings (action
    /// patterns that match nothing in the AWS catalog, match-everything rules).
    Check,
    /// Run the cases in `DIR/tests/*.yaml`; exit 1 if any fails.
    Test,
    /// The decision for one call and why: a raw HTTP/1.1 request (file or `-`), or a
    /// described call with --call '{"service":"iam","operation":"AttachRolePolicy",…}'.
    Explain {
        file: Option<PathBuf>,
        #[arg(long)]
        call: Option<String>,
        /// The calling agent's name and owner (labels: --label).
        #[arg(long, default_value = "agent")]
        agent: String,
        #[arg(long, default_value = "owner@example.com")]
        owner: String,
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Add an agent; prints its access key id and secret (shown once, never stored).
    Add {
        name: String,
        /// The human responsible (e-mail); can never approve this agent's calls.
        #[arg(long)]
        owner: String,
        /// AWS: the IAM role ARN Airlock assumes for the agent's calls.
        #[arg(long, required_unless_present = "gcp_service_account")]
        role: Option<String>,
        /// The agent's AWS account (default: the role's).
        #[arg(long, requires = "role")]
        account: Option<String>,
        /// Google: the service account whose short-lived tokens carry the agent's calls.
        #[arg(long)]
        gcp_service_account: Option<String>,
        /// The agent's Google project (default: the service account's).
        #[arg(long, requires = "gcp_service_account")]
        gcp_project: Option<String>,
        /// A label, `key=value` (repeatable).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Where the agent's Google credential files go (mode 0600; default:
        /// `agent-credentials/NAME` beside the config).
        #[arg(long)]
        credentials_dir: Option<PathBuf>,
    },
    /// List agents (no secrets).
    List,
    /// Issue a new key for an agent; the old one (and every Google token) stops working.
    Rotate {
        name: String,
        /// Where the agent's Google credential files go (as for `add`).
        #[arg(long)]
        credentials_dir: Option<PathBuf>,
    },
    /// Remove an agent; its key and tokens stop working, its credential files are deleted.
    Remove {
        name: String,
        /// Where the agent's Google credential files are (as for `add`).
        #[arg(long)]
        credentials_dir: Option<PathBuf>,
    },
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not key=value")),
    }
}
