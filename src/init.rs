//! `airlock init`: a deployment's CA and default config, and the environment agents need.

use std::path::{Path, PathBuf};

use crate::config::{self, Config, ConfigErrors, DEFAULT_CONFIG_YAML};
use crate::hosts::HostSuffix;
use crate::tls::{CaFiles, CertificateAuthority, TlsError};

pub const CONFIG_FILE: &str = "airlock.yaml";

/// The shipped baseline rules and their test cases, written by `init` into a rules
/// directory that does not exist yet.
pub const BASELINE_RULES: &str = include_str!("../rules/baseline.yaml");
pub const BASELINE_RULE_TESTS: &str = include_str!("../rules/tests/baseline.yaml");

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0}")]
    Config(#[from] ConfigErrors),
    #[error("{0}")]
    Tls(#[from] TlsError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `init` did.
#[derive(Debug)]
pub struct InitReport {
    pub config_path: PathBuf,
    pub config_created: bool,
    pub config: Config,
    pub ca: CaFiles,
}

/// Create `dir/airlock.yaml` (if absent) and a CA in its `ca.dir` whose name constraints
/// permit exactly its `intercept` suffixes. An existing config is read, not replaced.
pub fn init(dir: &Path, force: bool) -> Result<InitReport, InitError> {
    std::fs::create_dir_all(dir).map_err(|source| InitError::Write {
        path: dir.into(),
        source,
    })?;
    let config_path = dir.join(CONFIG_FILE);
    let config_created = !config_path.exists();
    let config = if config_created {
        let config = config::parse(DEFAULT_CONFIG_YAML, &config_path)?;
        std::fs::write(&config_path, DEFAULT_CONFIG_YAML).map_err(|source| InitError::Write {
            path: config_path.clone(),
            source,
        })?;
        config
    } else {
        config::load(&config_path)?
    };
    let suffixes: Vec<HostSuffix> = config
        .intercept
        .iter()
        .filter_map(|s| HostSuffix::parse(s).ok())
        .collect();
    let rules_dir = config.rules_dir();
    if !rules_dir.exists() {
        for (path, text) in [
            (rules_dir.join("baseline.yaml"), BASELINE_RULES),
            (rules_dir.join("tests/baseline.yaml"), BASELINE_RULE_TESTS),
        ] {
            let write = |source| InitError::Write {
                path: path.clone(),
                source,
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(write)?;
            }
            std::fs::write(&path, text).map_err(write)?;
        }
    }
    let audit_key = config.resolve(&config.audit.key_file);
    crate::audit::signer(&audit_key, &config.audit.origin, true).map_err(|e| InitError::Write {
        path: audit_key.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let ca = CertificateAuthority::create(&config.ca_dir(), &suffixes, force)?;
    Ok(InitReport {
        config_path,
        config_created,
        config,
        ca,
    })
}

/// The variables that point each SDK at Airlock and make it trust Airlock's CA.
pub fn agent_env(config: &Config, ca_cert: &Path) -> Vec<(&'static str, String)> {
    let listen = config.proxy.listen;
    let host = if listen.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        listen.ip().to_string()
    };
    let proxy = if listen.is_ipv6() && !listen.ip().is_unspecified() {
        format!("http://[{host}]:{}", listen.port())
    } else {
        format!("http://{host}:{}", listen.port())
    };
    let ca = absolute(ca_cert).display().to_string();
    vec![
        ("HTTPS_PROXY", proxy.clone()),
        // gRPC C-core (Python, Node) reads only the lower-case spelling.
        ("https_proxy", proxy),
        ("AWS_CA_BUNDLE", ca.clone()),
        ("REQUESTS_CA_BUNDLE", ca.clone()),
        ("HTTPLIB2_CA_CERTS", ca.clone()),
        ("SSL_CERT_FILE", ca.clone()),
        ("CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE", ca.clone()),
        ("NODE_EXTRA_CA_CERTS", ca.clone()),
        ("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", ca),
    ]
}

/// `init`'s report as shell: comments for people, `export` lines for `eval`.
pub fn render(report: &InitReport) -> String {
    let mut out = String::new();
    let permitted = report.config.intercept.join(", ");
    out.push_str(&format!(
        "# Created {} and {} (mode 0600): a P-256 CA that can vouch only for {permitted}.\n",
        report.ca.cert.display(),
        report.ca.key.display()
    ));
    if report.config_created {
        out.push_str(&format!(
            "# Wrote {}, the commented default configuration.\n",
            report.config_path.display()
        ));
    }
    out.push_str(&format!(
        "# Start Airlock: airlock serve --config {}\n# Agent environment:\n",
        report.config_path.display()
    ));
    for (name, value) in agent_env(&report.config, &report.ca.cert) {
        out.push_str(&format!("export {name}={value}\n"));
    }
    out
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
