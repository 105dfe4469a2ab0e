//! The `airlock` binary: parse the command line, load the config, run, exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airlock::agents::{Registry, ServerKey};
use airlock::cli::{
    AgentsCommand, ApprovalsCommand, AuditCommand, Cli, Command, ConfigCommand, RulesCommand,
};
use airlock::config::{self, Config};
use airlock::init::{self, CONFIG_FILE};
use airlock::server::Server;
use airlock::telemetry;
use airlock::tls::ca::CA_CERT_FILE;
use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init { dir, force } => init::init(&dir, force)
            .map(|report| print!("{}", init::render(&report)))
            .map_err(Into::into),
        Command::Serve { config } => serve(config.as_deref()),
        Command::Config {
            command: ConfigCommand::Check { config },
        } => check(&config),
        Command::Explain { file, jsonl } => explain(file.as_deref(), jsonl),
        Command::Agents { config, command } => agents(&config, command),
        Command::Rules { dir, command } => rules(&dir, command),
        Command::Audit { config, command } => audit(&config, command),
        Command::Approvals {
            url,
            token,
            command,
        } => approvals(&url, token.as_deref(), command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn explain(file: Option<&Path>, jsonl: bool) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut output = std::io::BufWriter::new(stdout.lock());
    match file.filter(|f| f.as_os_str() != "-") {
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            airlock::explain::run(&mut std::io::BufReader::new(file), &mut output, jsonl)?
        }
        None => airlock::explain::run(&mut std::io::stdin().lock(), &mut output, jsonl)?,
    }
    Ok(())
}

/// `airlock agents …`: edit the agent list; print a new secret exactly once.
fn agents(config_path: &Path, command: AgentsCommand) -> anyhow::Result<()> {
    let config = if config_path.exists() {
        config::load(config_path)?
    } else {
        Config::default()
    };
    let file = config.resolve(&config.agents.file);
    let key_file = config.resolve(&config.agents.key_file);
    let mut registry = Registry::load(&file)?;
    let default_dir = |name: &str| config.resolve(Path::new("agent-credentials")).join(name);
    let ca_cert = config.ca_dir().join(airlock::tls::ca::CA_CERT_FILE);
    // The agent's environment as `export` lines: its keys (AWS), its credential files and
    // tokens (Google), the proxy and the CA for every SDK.
    let print_env = |agent: &airlock::agents::Agent,
                     key: &ServerKey,
                     dir: Option<PathBuf>|
     -> anyhow::Result<()> {
        let identities: Vec<String> = [
            agent.role.as_ref().map(|r| format!("role {r}")),
            agent
                .gcp_service_account
                .as_ref()
                .map(|sa| format!("service account {sa}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        println!(
            "# Agent `{}` (owner {}, {}). Its secrets are shown once; Airlock stores none.",
            agent.name,
            agent.owner,
            identities.join(", ")
        );
        if agent.role.is_some() {
            let secret = key.secret(&agent.access_key_id);
            println!("export AWS_ACCESS_KEY_ID={}", agent.access_key_id);
            println!("export AWS_SECRET_ACCESS_KEY={}", secret.expose());
        }
        if agent.gcp_service_account.is_some() {
            use airlock::agents::google::{CredentialFiles, TokenKind};
            let dir = dir.unwrap_or_else(|| default_dir(&agent.name));
            let files = CredentialFiles::in_dir(&std::path::absolute(&dir)?);
            let static_token = key.google_token(TokenKind::Static, &agent.access_key_id);
            files
                .write(
                    key.google_token(TokenKind::Refresh, &agent.access_key_id)
                        .expose(),
                    static_token.expose(),
                )
                .with_context(|| {
                    format!("cannot write the credential files in {}", dir.display())
                })?;
            println!(
                "# Google: the files below are mode 0600; refresh and static tokens are Airlock's."
            );
            println!(
                "export GOOGLE_APPLICATION_CREDENTIALS={}",
                files.application_credentials.display()
            );
            println!(
                "export CLOUDSDK_AUTH_ACCESS_TOKEN_FILE={}",
                files.access_token.display()
            );
            println!("export GOOGLE_OAUTH_ACCESS_TOKEN={}", static_token.expose());
            if let Some(project) = &agent.gcp_project {
                println!("export GOOGLE_CLOUD_PROJECT={project}");
                println!("export CLOUDSDK_CORE_PROJECT={project}");
            }
        }
        for (name, value) in airlock::init::agent_env(&config, &ca_cert) {
            println!("export {name}={value}");
        }
        Ok(())
    };
    match command {
        AgentsCommand::Add {
            name,
            owner,
            role,
            account,
            gcp_service_account,
            gcp_project,
            labels,
            credentials_dir,
        } => {
            let key = ServerKey::load(&key_file, true)?;
            let identities = airlock::agents::Identities {
                role: role.as_deref(),
                account: account.as_deref(),
                gcp_service_account: gcp_service_account.as_deref(),
                gcp_project: gcp_project.as_deref(),
            };
            let agent = registry
                .add(&name, &owner, &identities, labels.into_iter().collect())?
                .clone();
            registry.save()?;
            print_env(&agent, &key, credentials_dir)?;
        }
        AgentsCommand::Rotate {
            name,
            credentials_dir,
        } => {
            let key = ServerKey::load(&key_file, false)?;
            let agent = registry.rotate(&name)?.clone();
            registry.save()?;
            print_env(&agent, &key, credentials_dir)?;
        }
        AgentsCommand::Remove {
            name,
            credentials_dir,
        } => {
            let agent = registry.remove(&name)?;
            registry.save()?;
            let dir = credentials_dir.unwrap_or_else(|| default_dir(&agent.name));
            airlock::agents::google::CredentialFiles::in_dir(&dir).remove();
            println!(
                "removed agent `{}` (key {} and its Google tokens no longer work)",
                agent.name, agent.access_key_id
            );
        }
        AgentsCommand::List => {
            println!(
                "{:<24} {:<28} {:<22} {:<14} {:<48} GOOGLE SERVICE ACCOUNT (PROJECT)",
                "NAME", "OWNER", "ACCESS KEY", "ACCOUNT", "ROLE"
            );
            let none = || "-".to_string();
            for a in registry.agents() {
                let google = a.gcp_service_account.as_ref().map_or_else(none, |sa| {
                    format!("{sa} ({})", a.gcp_project.as_deref().unwrap_or("-"))
                });
                println!(
                    "{:<24} {:<28} {:<22} {:<14} {:<48} {google}",
                    a.name,
                    a.owner,
                    a.access_key_id,
                    a.account.clone().unwrap_or_else(none),
                    a.role.clone().unwrap_or_else(none),
                );
            }
        }
    }
    Ok(())
}

/// `airlock approvals …`: the control API from the shell.
fn approvals(url: &str, token: Option<&str>, command: ApprovalsCommand) -> anyhow::Result<()> {
    use airlock::approvals::client::{call, new_token};
    use http::Method;
    if let ApprovalsCommand::Token { name, groups } = &command {
        let (token, hash) = new_token().map_err(anyhow::Error::msg)?;
        println!("# Give this token to {name} (shown once; Airlock keeps only its SHA-256):");
        println!("AIRLOCK_TOKEN={token}");
        println!("# Add under approvals.approvers in airlock.yaml:");
        println!(
            "- {{name: {}, groups: [{}], token_sha256: {hash}}}",
            serde_json::to_string(name)?,
            groups
                .iter()
                .map(serde_json::to_string)
                .collect::<Result<Vec<_>, _>>()?
                .join(", ")
        );
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let need_token = || token.context("give a reviewer token with --token or AIRLOCK_TOKEN");
        let (status, body) = match &command {
            ApprovalsCommand::List { state } => {
                let path = match state {
                    Some(s) => format!("/v1/approvals?state={s}"),
                    None => "/v1/approvals".into(),
                };
                call(url, Method::GET, &path, Some(need_token()?), None).await
            }
            ApprovalsCommand::Show { id } => {
                call(
                    url,
                    Method::GET,
                    &format!("/v1/approvals/{id}"),
                    Some(need_token()?),
                    None,
                )
                .await
            }
            ApprovalsCommand::Approve { id, reason } => {
                let body = serde_json::json!({ "reason": reason }).to_string();
                call(
                    url,
                    Method::POST,
                    &format!("/v1/approvals/{id}/approve"),
                    Some(need_token()?),
                    Some(body),
                )
                .await
            }
            ApprovalsCommand::Deny { id, reason } => {
                let body = serde_json::json!({ "reason": reason }).to_string();
                call(
                    url,
                    Method::POST,
                    &format!("/v1/approvals/{id}/deny"),
                    Some(need_token()?),
                    Some(body),
                )
                .await
            }
            ApprovalsCommand::Wait { id, timeout } => {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(*timeout);
                loop {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    let poll = left.as_secs().clamp(1, 30);
                    let (status, body) = call(
                        url,
                        Method::GET,
                        &format!("/v1/approvals/{id}/wait?timeout={poll}"),
                        None,
                        None,
                    )
                    .await
                    .map_err(anyhow::Error::msg)?;
                    if status != 200 {
                        anyhow::bail!("{status}: {}", body.trim());
                    }
                    let state: serde_json::Value = serde_json::from_str(&body)?;
                    match state["state"].as_str() {
                        Some("approved") => {
                            println!("{id}: approved; run the call again");
                            return Ok(());
                        }
                        Some("pending") if std::time::Instant::now() < deadline => continue,
                        Some(other) => anyhow::bail!("{id}: {other}"),
                        None => anyhow::bail!("unexpected answer: {body}"),
                    }
                }
            }
            ApprovalsCommand::Token { .. } => unreachable!("handled above"),
        }
        .map_err(anyhow::Error::msg)?;
        if (200..300).contains(&status) {
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&body)?)?
            );
            Ok(())
        } else {
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or(body);
            anyhow::bail!("{status}: {message}")
        }
    })
}

/// `airlock audit …`: verify (exit 1 on the first bad record) or export.
fn audit(config_path: &Path, command: AuditCommand) -> anyhow::Result<()> {
    use airlock::audit::{note::NoteVerifier, verifier_key_path, verify};
    let config = if config_path.exists() {
        config::load(config_path)?
    } else {
        Config::default()
    };
    let default_log = config.resolve(&config.audit.file);
    match command {
        AuditCommand::Verify { log, key } => {
            let log = log.unwrap_or(default_log);
            let key_text = match key {
                Some(k) if Path::new(&k).exists() => std::fs::read_to_string(&k)?,
                Some(k) => k,
                None => {
                    let path = verifier_key_path(&config.resolve(&config.audit.key_file));
                    std::fs::read_to_string(&path).with_context(|| {
                        format!("cannot read the verifier key {}", path.display())
                    })?
                }
            };
            let verifier = NoteVerifier::parse(&key_text).map_err(anyhow::Error::msg)?;
            let report = verify::verify(&log, &verifier, None)
                .map_err(|e| anyhow::anyhow!("{}: FAILED at {e}", log.display()))?;
            println!(
                "{}: ok: {} records, {} signed checkpoints, {} records after the newest checkpoint",
                log.display(),
                report.records,
                report.checkpoints,
                report.unsigned_tail
            );
            Ok(())
        }
        AuditCommand::Export { log, since, format } => {
            let log = log.unwrap_or(default_log);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            verify::export(&log, since.as_deref(), format == "csv", &mut out)
                .map_err(anyhow::Error::msg)?;
            Ok(())
        }
    }
}

/// `airlock rules …`: check, test, explain. Errors exit 1 (CI-friendly).
fn rules(dir: &Path, command: RulesCommand) -> anyhow::Result<()> {
    use airlock::rules::{RuleSet, Subject, check};
    let rules = RuleSet::load(dir)?;
    match command {
        RulesCommand::Check => {
            let warnings = check::lint(&rules);
            for w in &warnings {
                println!(
                    "{}:{}: warning: rule `{}`: {}",
                    w.file.display(),
                    w.line,
                    w.rule,
                    w.message
                );
            }
            println!(
                "{}: ok ({} rules, {} warnings, version {})",
                dir.display(),
                rules.rules.len(),
                warnings.len(),
                &rules.version[..12]
            );
            Ok(())
        }
        RulesCommand::Test => {
            let results = check::run_tests(&rules, dir).map_err(anyhow::Error::msg)?;
            let failed = results.iter().filter(|r| r.failure.is_some()).count();
            for r in &results {
                match &r.failure {
                    None => println!("ok   {}: {}", r.file.display(), r.name),
                    Some(why) => println!("FAIL {}: {}: {why}", r.file.display(), r.name),
                }
            }
            println!("{} cases, {} failed", results.len(), failed);
            if failed > 0 {
                anyhow::bail!("{failed} rule test case(s) failed");
            }
            Ok(())
        }
        RulesCommand::Explain {
            file,
            call,
            agent,
            owner,
            labels,
        } => {
            let classification = match (call, file) {
                (Some(call), None) => {
                    let spec: check::CallSpec = serde_json::from_str(&call)
                        .context("--call is JSON: {\"service\", \"operation\", \"params\"?, \"region\"?, \"account\"?}")?;
                    spec.classify().map_err(anyhow::Error::msg)?
                }
                (None, file) => {
                    let mut bytes = Vec::new();
                    match file.filter(|f| f.as_os_str() != "-") {
                        Some(path) => {
                            bytes = std::fs::read(&path)
                                .with_context(|| format!("cannot read {}", path.display()))?
                        }
                        None => {
                            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
                        }
                    }
                    let request =
                        airlock::explain::parse_raw(&bytes).map_err(anyhow::Error::msg)?;
                    airlock::explain::classify(&request.view())
                }
                (Some(_), Some(_)) => anyhow::bail!("give a request file or --call, not both"),
            };
            let agent = airlock::agents::Agent {
                name: agent,
                owner,
                role: None,
                account: Some("123456789012".into()),
                gcp_service_account: None,
                gcp_project: None,
                labels: labels.into_iter().collect(),
                access_key_id: String::new(),
                created: String::new(),
            };
            let now = airlock::approvals::unix_now();
            let decision = rules.decide(&classification, &Subject { agent: &agent, now });
            let out = serde_json::json!({
                "decision": decision,
                "call": classification,
                "rules_version": rules.version,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
    }
}

fn check(path: &Path) -> anyhow::Result<()> {
    let config = config::load(path)?;
    println!(
        "{}: ok ({} intercepted suffixes, {} routes)",
        path.display(),
        config.intercept.len(),
        config.upstream.routes.len()
    );
    Ok(())
}

/// The config to serve: the one named, else ./airlock.yaml, else the embedded defaults
/// (set up in the working directory when there is no CA yet either).
fn serve_config(path: Option<&Path>) -> anyhow::Result<Config> {
    if let Some(path) = path {
        return Ok(config::load(path)?);
    }
    let default_path = PathBuf::from(CONFIG_FILE);
    if default_path.exists() {
        return Ok(config::load(&default_path)?);
    }
    let ca = Config::default().ca_dir().join(CA_CERT_FILE);
    if ca.exists() {
        return Ok(Config::default());
    }
    let report = init::init(Path::new("."), false)?;
    eprint!("{}", init::render(&report));
    Ok(report.config)
}

fn serve(path: Option<&Path>) -> anyhow::Result<()> {
    let config = serve_config(path)?;
    let _log_writer = telemetry::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(&config).await?;
        let (proxy, control) = (server.proxy_addr()?, server.control_addr()?);
        tracing::info!(%proxy, %control, "airlock ready");
        // For tools and tests, whatever the log level: where to connect.
        println!(
            "{}",
            serde_json::json!({"ready": true, "proxy": proxy, "control": control})
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(signal(shutdown.clone()));
        let cut = server.run(shutdown).await;
        tracing::info!(cut, "airlock stopped");
        Ok(())
    })
}

/// Cancel `shutdown` on SIGTERM or SIGINT.
async fn signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop airlock with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}
