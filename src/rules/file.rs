//! Reading rule files: every `*.yaml` directly in the rules directory, in name order
//! (`rules/tests/` holds test cases, not rules). Each rule is read on its own, so one
//! broken rule does not hide the errors of the next; every error has its file and line.
//!
//! ```yaml
//! defaults:            # in at most one file
//!   unmatched: approve # allow | approve | deny; shipped: approve
//!   unclassified: deny # shipped: deny
//!   approval: {groups: [security], quorum: 1, hold: 50s, expires: 1h}
//! rules:
//!   - id: allow-reads
//!     description: Reads and lists of any service
//!     match: {access: [Read, List]}
//!     effect: allow
//!   - id: iam-policies
//!     match: {action: "iam:*Policy*"}
//!     effect: approve
//!     approvers: [security]
//!     quorum: 2
//!     message: Changing IAM policies needs two approvers.
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_yaml_ng::Value;
use sha2::{Digest, Sha256};

use super::matcher::{MatchSpec, Matcher};
use super::{
    Approval, DEFAULT_EXPIRES, DEFAULT_HOLD, Defaults, Effect, Inherits, Origin, Rule, RuleSet,
};
use crate::yamlmap::SourceMap;

/// One problem in a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// Dotted path, e.g. `rules[2].match.action`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a rules directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleErrors(pub Vec<RuleError>);

impl fmt::Display for RuleErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RuleErrors {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    description: Option<String>,
    #[serde(rename = "match", default)]
    matches: MatchSpec,
    effect: Effect,
    approvers: Option<Vec<String>>,
    quorum: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    hold: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    expires: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    reuse: Option<Duration>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsSpec {
    unmatched: Option<Effect>,
    unclassified: Option<Effect>,
    approval: Option<ApprovalSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalSpec {
    groups: Vec<String>,
    quorum: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    hold: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    expires: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    reuse: Option<Duration>,
}

/// The longest an agent's connection may be held: SDKs give up reading after 60 s.
pub const MAX_HOLD: Duration = Duration::from_secs(15 * 60);
pub const MAX_EXPIRES: Duration = Duration::from_secs(30 * 24 * 3600);

/// What one file contributes.
pub struct ParsedFile {
    pub rules: Vec<Rule>,
    pub defaults: Option<(Defaults, Origin)>,
}

/// Load every `*.yaml` in `dir` (not recursing).
pub fn load_dir(dir: &Path) -> Result<RuleSet, RuleErrors> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            RuleErrors(vec![RuleError {
                file: dir.to_path_buf(),
                line: None,
                path: String::new(),
                message: format!("cannot read the rules directory: {e}"),
            }])
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();

    let mut errors = Vec::new();
    let mut rules = Vec::new();
    let mut defaults: Option<(Defaults, Origin)> = None;
    let mut version = Sha256::new();
    for file in &files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                errors.push(error(file, None, "", format!("cannot read: {e}")));
                continue;
            }
        };
        version.update(
            file.file_name()
                .map(|n| n.as_encoded_bytes())
                .unwrap_or_default(),
        );
        version.update([0]);
        version.update(text.as_bytes());
        version.update([0]);
        match parse_file(file, &text) {
            Ok(parsed) => {
                rules.extend(parsed.rules);
                if let Some((d, origin)) = parsed.defaults {
                    if let Some((_, first)) = &defaults {
                        errors.push(error(
                            file,
                            Some(origin.line),
                            "defaults",
                            format!(
                                "defaults are already set in {}:{}; set them in one file",
                                first.file.display(),
                                first.line
                            ),
                        ));
                    } else {
                        defaults = Some((d, origin));
                    }
                }
            }
            Err(mut e) => errors.append(&mut e.0),
        }
    }
    // Approval terms a rule leaves unset come from `defaults.approval`.
    let defaults = defaults.map(|(d, _)| d).unwrap_or_default();
    for rule in &mut rules {
        let inherits = rule.inherits;
        let Some(terms) = rule.approval.as_mut() else {
            continue;
        };
        let base = &defaults.approval;
        if inherits.quorum {
            terms.quorum = base.quorum;
        }
        if inherits.hold {
            terms.hold = base.hold;
        }
        if inherits.expires {
            terms.expires = base.expires;
        }
        if inherits.reuse {
            terms.reuse = base.reuse;
        }
        if terms.hold > terms.expires {
            errors.push(error(
                &rule.origin.file,
                Some(rule.origin.line),
                "hold",
                "holds the agent longer than the approval lives (expires, with defaults.approval)"
                    .into(),
            ));
        }
    }
    let mut seen: HashMap<&str, &Origin> = HashMap::new();
    for rule in &rules {
        if let Some(first) = seen.insert(&rule.id, &rule.origin) {
            errors.push(error(
                &rule.origin.file,
                Some(rule.origin.line),
                "id",
                format!(
                    "rule id `{}` is already used at {}:{}",
                    rule.id,
                    first.file.display(),
                    first.line
                ),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(RuleErrors(errors));
    }
    Ok(RuleSet {
        index: super::index::RuleIndex::build(rules.iter().map(|r| &r.matcher)),
        rules,
        defaults,
        version: hex::encode(version.finalize()),
    })
}

fn error(file: &Path, line: Option<usize>, path: &str, message: String) -> RuleError {
    RuleError {
        file: file.to_path_buf(),
        line,
        path: path.to_string(),
        message,
    }
}

/// Parse one rule file's text.
pub fn parse_file(file: &Path, text: &str) -> Result<ParsedFile, RuleErrors> {
    let map = SourceMap::parse(text)
        .map_err(|e| RuleErrors(vec![error(file, Some(e.line), "", e.message)]))?;
    let at = |path: &str| map.line(path);
    let mut errors = Vec::new();
    let root: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| RuleErrors(vec![error(file, None, "", e.to_string())]))?;
    let mut parsed = ParsedFile {
        rules: Vec::new(),
        defaults: None,
    };
    let Value::Mapping(top) = root else {
        if root.is_null() {
            return Ok(parsed);
        }
        return Err(RuleErrors(vec![error(
            file,
            Some(1),
            "",
            "a rule file is a mapping with `rules:` (and optionally `defaults:`)".into(),
        )]));
    };
    for (key, value) in top {
        let key = key.as_str().unwrap_or_default().to_string();
        match key.as_str() {
            "rules" => {
                let Value::Sequence(items) = value else {
                    errors.push(error(file, at("rules"), "rules", "must be a list".into()));
                    continue;
                };
                for (i, item) in items.into_iter().enumerate() {
                    let path = format!("rules[{i}]");
                    match compile_rule(file, &path, item, &at) {
                        Ok(rule) => parsed.rules.push(rule),
                        Err(mut e) => errors.append(&mut e),
                    }
                }
            }
            "defaults" => match de::<DefaultsSpec>(value) {
                Ok(spec) => match compile_defaults(spec) {
                    Ok(d) => {
                        parsed.defaults = Some((
                            d,
                            Origin {
                                file: file.to_path_buf(),
                                line: at("defaults").unwrap_or(1),
                            },
                        ));
                    }
                    Err((p, m)) => {
                        let path = format!("defaults.{p}");
                        errors.push(error(file, at(&path), &path, m));
                    }
                },
                Err((p, m)) => {
                    let path = join("defaults", &p);
                    errors.push(error(file, at(&path), &path, m));
                }
            },
            other => errors.push(error(
                file,
                at(other),
                other,
                "unknown key; a rule file has `rules:` and optionally `defaults:`".into(),
            )),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(RuleErrors(errors))
    }
}

fn de<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        (
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )
    })
}

fn join(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{path}")
    }
}

fn compile_rule(
    file: &Path,
    path: &str,
    value: Value,
    at: &dyn Fn(&str) -> Option<usize>,
) -> Result<Rule, Vec<RuleError>> {
    let fail = |p: &str, m: String| {
        let full = join(path, p);
        error(file, at(&full), &full, m)
    };
    let spec: RuleSpec = de(value).map_err(|(p, m)| vec![fail(&p, m)])?;
    let mut errors = Vec::new();
    if spec.id.trim().is_empty() {
        errors.push(fail("id", "must not be empty".into()));
    }
    let matcher = match Matcher::compile(&spec.matches) {
        Ok(m) => Some(m),
        Err(list) => {
            for (p, m) in list {
                errors.push(fail(&format!("match.{p}"), m));
            }
            None
        }
    };
    let approval = if spec.effect == Effect::Approve {
        match (&spec.approvers, spec.quorum) {
            (None, _) => {
                errors.push(fail(
                    "approvers",
                    "an approve rule names its approver groups".into(),
                ));
                None
            }
            (Some(groups), quorum) => {
                match approval(groups.clone(), quorum, spec.hold, spec.expires, spec.reuse) {
                    Ok(a) => Some(a),
                    Err((p, m)) => {
                        errors.push(fail(&p, m));
                        None
                    }
                }
            }
        }
    } else {
        for (field, set) in [
            ("approvers", spec.approvers.is_some()),
            ("quorum", spec.quorum.is_some()),
            ("hold", spec.hold.is_some()),
            ("expires", spec.expires.is_some()),
            ("reuse", spec.reuse.is_some()),
        ] {
            if set {
                errors.push(fail(
                    field,
                    format!("only `effect: approve` rules take `{field}`"),
                ));
            }
        }
        None
    };
    match matcher {
        Some(matcher) if errors.is_empty() => Ok(Rule {
            id: spec.id,
            description: spec.description,
            effect: spec.effect,
            matcher,
            approval,
            message: spec.message,
            origin: Origin {
                file: file.to_path_buf(),
                line: at(path).unwrap_or(1),
            },
            inherits: Inherits {
                quorum: spec.quorum.is_none(),
                hold: spec.hold.is_none(),
                expires: spec.expires.is_none(),
                reuse: spec.reuse.is_none(),
            },
        }),
        _ => Err(errors),
    }
}

fn approval(
    groups: Vec<String>,
    quorum: Option<u32>,
    hold: Option<Duration>,
    expires: Option<Duration>,
    reuse: Option<Duration>,
) -> Result<Approval, (String, String)> {
    if groups.is_empty() || groups.iter().any(|g| g.trim().is_empty()) {
        return Err(("approvers".into(), "name at least one group".into()));
    }
    let quorum = quorum.unwrap_or(1);
    if quorum == 0 {
        return Err(("quorum".into(), "must be at least 1".into()));
    }
    let hold = hold.unwrap_or(DEFAULT_HOLD);
    if hold > MAX_HOLD {
        return Err(("hold".into(), "must be at most 15m".into()));
    }
    let expires = expires.unwrap_or(DEFAULT_EXPIRES);
    if expires.is_zero() || expires > MAX_EXPIRES {
        return Err(("expires".into(), "must be between 1s and 30d".into()));
    }
    if hold > expires {
        return Err((
            "hold".into(),
            "holds the agent longer than the approval lives (expires)".into(),
        ));
    }
    Ok(Approval {
        groups,
        quorum,
        hold,
        expires,
        reuse,
    })
}

fn compile_defaults(spec: DefaultsSpec) -> Result<Defaults, (String, String)> {
    let base = Defaults::default();
    let approval = match spec.approval {
        Some(a) => approval(a.groups, a.quorum, a.hold, a.expires, a.reuse)
            .map_err(|(p, m)| (format!("approval.{p}"), m))?,
        None => base.approval,
    };
    Ok(Defaults {
        unmatched: spec.unmatched.unwrap_or(base.unmatched),
        unclassified: spec.unclassified.unwrap_or(base.unclassified),
        approval,
    })
}
