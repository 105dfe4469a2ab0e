//! `airlock rules check` and `airlock rules test`: what a security team runs in CI before a
//! rule change lands.
//!
//! - check: the files load (errors with file:line), and warnings for action patterns that
//!   match no AWS action and no Google permission in the catalogs, and operation patterns
//!   that match no AWS operation and no Google method (a typo silently matches nothing), for `*`
//!   patterns, and for rules that never decide because a rule winning over them matches
//!   everything they match (shadowed).
//! - test: every case in `<rules>/tests/*.yaml` — a described call → the expected effect
//!   (and, optionally, the deciding rule).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Effect, RuleSet, Subject};
use crate::agents::Agent;
use crate::cloud::aws::catalog::catalog;
use crate::cloud::{Classification, Cloud, aws};

/// A finding that does not stop the rules from loading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub file: PathBuf,
    pub line: usize,
    pub rule: String,
    pub message: String,
}

/// Whether the glob `pattern` (case-insensitive, as rules compare) matches any of `names`;
/// a pattern that does not compile is left to the rule loader, which reports it.
fn matches_any(pattern: &str, names: &[&str]) -> bool {
    globset::GlobBuilder::new(pattern)
        .case_insensitive(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_or(true, |glob| names.iter().any(|n| glob.is_match(n)))
}

/// Warnings about a loaded rule set.
pub fn lint(rules: &RuleSet) -> Vec<Warning> {
    let known: Vec<&str> = catalog()
        .action_names()
        .chain(crate::cloud::gcp::permissions().map(|a| a.name))
        .collect();
    let grpc = crate::cloud::gcp::grpc::catalog().ok();
    let operations: Vec<&str> = catalog()
        .services
        .iter()
        .flat_map(|s| s.operations.iter().map(|o| o.meta.name.as_str()))
        .chain(
            crate::cloud::gcp::catalog::catalog()
                .methods
                .iter()
                .map(|m| m.meta.id),
        )
        .chain(grpc.into_iter().flat_map(|g| g.method_ids()))
        .collect();
    let mut warnings = Vec::new();
    for rule in &rules.rules {
        let warn = |message: String| Warning {
            file: rule.origin.file.clone(),
            line: rule.origin.line,
            rule: rule.id.clone(),
            message,
        };
        let lists = [
            (
                rule.matcher.operation_globs(),
                &operations,
                "operation",
                "AWS operation or Google method",
            ),
            (
                rule.matcher.action_globs(),
                &known,
                "action",
                "AWS action or Google permission",
            ),
        ];
        for (patterns, names, what, kind) in lists {
            for pattern in patterns {
                if !matches_any(pattern, names) {
                    warnings.push(warn(format!(
                        "{what} `{pattern}` matches no {kind} in the catalogs (a typo?)"
                    )));
                }
            }
        }
        for pattern in rule.matcher.action_globs() {
            if pattern == "*" || pattern == "*:*" {
                warnings.push(warn(format!(
                    "action `{pattern}` matches every action; name the services or actions"
                )));
            }
        }
    }
    // A rule never decides when another that wins over it (a stronger effect, or the same
    // effect earlier) matches everything it matches.
    for (i, rule) in rules.rules.iter().enumerate() {
        let winner = rules.rules.iter().enumerate().find(|(j, other)| {
            *j != i
                && (other.effect > rule.effect || (other.effect == rule.effect && *j < i))
                && other.matcher.covers(&rule.matcher)
        });
        if let Some((_, other)) = winner {
            warnings.push(Warning {
                file: rule.origin.file.clone(),
                line: rule.origin.line,
                rule: rule.id.clone(),
                message: format!(
                    "never decides: rule `{}` ({}:{}, {}) matches every call it matches and wins",
                    other.id,
                    other.origin.file.display(),
                    other.origin.line,
                    other.effect.as_str()
                ),
            });
        }
    }
    warnings
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// The agent of every case that does not name its own.
    agent: Option<AgentSpec>,
    cases: Vec<Case>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentSpec {
    name: String,
    owner: String,
    #[serde(default)]
    account: Option<String>,
    /// The agent's Google project.
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    call: Option<CallSpec>,
    /// A request Airlock could not classify.
    #[serde(default)]
    unclassified: bool,
    agent: Option<AgentSpec>,
    /// RFC 3339 time of the call (time windows); default 2026-01-05T12:00:00Z (a Monday).
    at: Option<String>,
    expect: Effect,
    /// The rule that must decide; omit to check the effect only.
    rule: Option<String>,
}

/// A call described in a test case or for `rules explain`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallSpec {
    /// `aws` (the default) or `gcp`.
    #[serde(default)]
    pub cloud: Option<Cloud>,
    /// AWS: the IAM prefix or botocore id; Google: the API name or discovery id.
    pub service: String,
    /// AWS: the operation; Google: the method id (`storage.buckets.delete`).
    pub operation: String,
    #[serde(default)]
    pub params: serde_json::Value,
    /// AWS region or Google location.
    #[serde(alias = "location")]
    pub region: Option<String>,
    /// AWS account or Google project.
    #[serde(alias = "project")]
    pub account: Option<String>,
}

impl CallSpec {
    pub fn classify(&self) -> Result<Classification, String> {
        let params = if self.params.is_null() {
            serde_json::Value::Object(Default::default())
        } else {
            self.params.clone()
        };
        match self.cloud.unwrap_or(Cloud::Aws) {
            Cloud::Aws => aws::describe(
                &self.service,
                &self.operation,
                params,
                Some(self.region.as_deref().unwrap_or("us-east-1")),
                self.account.as_deref(),
            ),
            Cloud::Gcp => crate::cloud::gcp::describe(
                &self.service,
                &self.operation,
                params,
                self.region.as_deref(),
                self.account.as_deref(),
            ),
        }
        .map(|call| Classification::Known(Box::new(call)))
    }
}

/// The outcome of one test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub file: PathBuf,
    pub name: String,
    /// `None` when the case passed; else what went wrong.
    pub failure: Option<String>,
}

const DEFAULT_AT: i64 = 1_767_614_400; // 2026-01-05T12:00:00Z, a Monday

/// Run every case file in `dir/tests/` against `rules`.
pub fn run_tests(rules: &RuleSet, dir: &Path) -> Result<Vec<CaseResult>, String> {
    let tests = dir.join("tests");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&tests) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect(),
        Err(e) => return Err(format!("{}: {e}", tests.display())),
    };
    files.sort();
    let mut results = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let parsed: TestFile =
            serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        for case in parsed.cases {
            let failure = run_case(rules, &case, parsed.agent.as_ref()).err();
            results.push(CaseResult {
                file: file.clone(),
                name: case.name,
                failure,
            });
        }
    }
    Ok(results)
}

fn run_case(rules: &RuleSet, case: &Case, default_agent: Option<&AgentSpec>) -> Result<(), String> {
    let spec = case
        .agent
        .as_ref()
        .or(default_agent)
        .ok_or("no agent: give the case or the file an `agent:`")?;
    let agent = Agent {
        name: spec.name.clone(),
        owner: spec.owner.clone(),
        role: None,
        account: Some(
            spec.account
                .clone()
                .unwrap_or_else(|| "123456789012".into()),
        ),
        gcp_service_account: None,
        gcp_project: spec.project.clone(),
        labels: spec.labels.clone(),
        access_key_id: String::new(),
        created: String::new(),
    };
    let classification = match (&case.call, case.unclassified) {
        (Some(call), false) => call.classify()?,
        (None, true) => Classification::unknown(Cloud::Aws, "described as unclassified"),
        _ => return Err("give exactly one of `call:` or `unclassified: true`".into()),
    };
    let now = match &case.at {
        Some(at) => time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("at `{at}`: {e}"))?
            .unix_timestamp(),
        None => DEFAULT_AT,
    };
    let decision = rules.decide(&classification, &Subject { agent: &agent, now });
    if decision.effect != case.expect {
        return Err(format!(
            "expected {}, got {}: {}",
            case.expect.as_str(),
            decision.effect.as_str(),
            decision.reasons.join("; ")
        ));
    }
    if let Some(rule) = &case.rule
        && decision.rule.as_deref() != Some(rule.as_str())
    {
        return Err(format!(
            "expected rule `{rule}` to decide, but {}",
            decision.reasons.join("; ")
        ));
    }
    Ok(())
}
