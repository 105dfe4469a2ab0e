//! Reading a config file: syntax, then each top-level section on its own (so one bad
//! section does not hide errors in the next), then [`super::validate`]. Every error is
//! collected and reported with its line.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml_ng::Value;

use super::Config;
use crate::yamlmap::SourceMap;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line, when the problem has a place in the file.
    pub line: Option<usize>,
    /// Dotted path of the setting, e.g. `upstream.routes[0].to`; empty for the whole file.
    pub path: String,
    pub message: String,
}

/// Every problem found in one config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errors.len() > 1 {
            writeln!(
                f,
                "{} errors in {}:",
                self.errors.len(),
                self.file.display()
            )?;
        }
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some(line) = e.line {
                write!(f, ":{line}")?;
            }
            if e.path.is_empty() {
                write!(f, ": {}", e.message)?;
            } else {
                write!(f, ": {}: {}", e.path, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Read, parse and validate the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: path.to_path_buf(),
        errors: vec![ConfigError {
            line: None,
            path: String::new(),
            message: format!("cannot read the config file: {e}"),
        }],
    })?;
    parse(&text, path)
}

/// Parse and validate config `text` that was read from `file` (used for messages and as
/// the base of relative paths).
pub fn parse(text: &str, file: &Path) -> Result<Config, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        file: file.to_path_buf(),
        errors,
    };
    let map = SourceMap::parse(text).map_err(|e| {
        fail(vec![ConfigError {
            line: Some(e.line),
            path: String::new(),
            message: format!("YAML syntax: {}", e.message),
        }])
    })?;
    let value: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        fail(vec![ConfigError {
            line: e.location().map(|l| l.line()),
            path: String::new(),
            message: format!("YAML: {e}"),
        }])
    })?;

    let mut config = Config::default();
    let mut errors = Vec::new();
    let at = |path: String, message: String| ConfigError {
        line: map.line(&path),
        path,
        message,
    };
    match value {
        Value::Null => {}
        Value::Mapping(sections) => {
            for (key, value) in sections {
                let Some(key) = key.as_str().map(str::to_owned) else {
                    errors.push(at(String::new(), "top-level keys must be strings".into()));
                    continue;
                };
                if let Err((path, message)) = set_section(&mut config, &key, value) {
                    errors.push(at(path, message));
                }
            }
        }
        _ => errors.push(at(
            String::new(),
            "the config must be a mapping of sections".into(),
        )),
    }

    config.base_dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Semantic checks run even when some sections had type errors, so one pass reports
    // everything; a section that failed to parse kept its defaults, so its own semantic
    // findings would be noise and are left out.
    let failed: Vec<String> = errors
        .iter()
        .map(|e| section_of(&e.path).to_string())
        .collect();
    errors.extend(
        config
            .validate()
            .into_iter()
            .filter(|(path, _)| !failed.iter().any(|f| f == section_of(path)))
            .map(|(path, message)| at(path, message)),
    );
    errors.sort_by_key(|e| e.line);
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(fail(errors))
    }
}

/// `upstream.routes[0].to` → `upstream`.
fn section_of(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or(path)
}

/// Deserialize one top-level section into its field of `config`.
fn set_section(config: &mut Config, key: &str, value: Value) -> Result<(), (String, String)> {
    fn de<T: DeserializeOwned>(
        key: &str,
        value: Value,
        slot: &mut T,
    ) -> Result<(), (String, String)> {
        // `proxy:` with nothing under it keeps the section's defaults.
        if value.is_null() {
            return Ok(());
        }
        match serde_path_to_error::deserialize(value) {
            Ok(v) => {
                *slot = v;
                Ok(())
            }
            Err(e) => {
                let inner = e.path().to_string();
                let path = if inner == "." {
                    key.to_string()
                } else {
                    format!("{key}.{inner}")
                };
                Err((path, e.into_inner().to_string()))
            }
        }
    }
    match key {
        "proxy" => de(key, value, &mut config.proxy),
        "control" => de(key, value, &mut config.control),
        "ca" => de(key, value, &mut config.ca),
        "intercept" => de(key, value, &mut config.intercept),
        "tunnel" => de(key, value, &mut config.tunnel),
        "upstream" => de(key, value, &mut config.upstream),
        "limits" => de(key, value, &mut config.limits),
        "shutdown" => de(key, value, &mut config.shutdown),
        "log" => de(key, value, &mut config.log),
        "agents" => de(key, value, &mut config.agents),
        "credentials" => de(key, value, &mut config.credentials),
        "rules" => de(key, value, &mut config.rules),
        "audit" => de(key, value, &mut config.audit),
        "approvals" => de(key, value, &mut config.approvals),
        "channels" => de(key, value, &mut config.channels),
        other => Err((
            other.to_string(),
            "unknown section; expected one of proxy, control, ca, intercept, tunnel, upstream, \
             limits, shutdown, log, agents, credentials, rules, audit, approvals, channels"
                .to_string(),
        )),
    }
}
