//! The `match:` block of a rule, compiled. Every condition given must hold (AND); a list
//! of values matches when any value does (OR). Globs: `*` any characters, `?` one.
//! Actions and services compare case-insensitively, as IAM does.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use globset::{GlobBuilder, GlobMatcher};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;

use super::Subject;
use super::index::IndexKey;
use crate::cloud::plane::{Plane, plane};
use crate::cloud::{Call, Cloud};

/// The `match:` block as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSpec {
    pub cloud: Option<Cloud>,
    pub service: Option<OneOrMany>,
    /// The API operation: `AttachRolePolicy` (AWS), a method id such as
    /// `storage.buckets.delete` (Google).
    pub operation: Option<OneOrMany>,
    /// IAM actions (AWS `s3:PutObject`) or permissions (Google `storage.objects.delete`).
    pub action: Option<OneOrMany>,
    pub access: Option<OneOrMany>,
    /// `control` (a resource is managed) or `data` (items inside one): see `cloud::plane`.
    pub plane: Option<Plane>,
    pub resource: Option<OneOrMany>,
    pub agent: Option<OneOrMany>,
    #[serde(default)]
    pub labels: BTreeMap<String, OneOrMany>,
    pub owner: Option<OneOrMany>,
    /// An AWS region or a Google location (`location:` says the same).
    #[serde(alias = "location")]
    pub region: Option<OneOrMany>,
    /// An AWS account or a Google project (`project:` says the same).
    #[serde(alias = "project")]
    pub account: Option<OneOrMany>,
    #[serde(default)]
    pub params: Vec<ParamSpec>,
    pub time: Option<TimeSpec>,
}

/// A value or a list of values.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn values(&self) -> &[String] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

/// A condition on a request parameter: `path` into the call's params (`Policy.Statement[].Effect`,
/// `[]` = any element), and exactly one test.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    pub path: String,
    pub equals: Option<Value>,
    pub glob: Option<String>,
    pub regex: Option<String>,
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
    pub absent: Option<bool>,
}

/// A time window in UTC: on these days, between these times (`09:00-17:30`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSpec {
    pub days: Option<Vec<String>>,
    pub hours: Option<String>,
}

/// Globs, any of which may match.
#[derive(Debug, Clone)]
struct Globs(Vec<Glob>);

/// One glob, with a fast path: most values fail on the literal text before the first
/// wildcard, and a glob without wildcards is a plain comparison.
#[derive(Debug, Clone)]
struct Glob {
    text: String,
    matcher: GlobMatcher,
    /// The literal text before the first wildcard (the whole text when there is none).
    prefix: String,
    literal: bool,
    /// `prefix*suffix` (one `*`, no other wildcard): the suffix, and no glob engine.
    star_suffix: Option<String>,
    case_insensitive: bool,
}

impl Glob {
    fn compile(text: &str, case_insensitive: bool) -> Result<Glob, String> {
        let matcher = GlobBuilder::new(text)
            .case_insensitive(case_insensitive)
            .literal_separator(false)
            .build()
            .map(|g| g.compile_matcher())
            .map_err(|e| format!("bad glob `{text}`: {e}"))?;
        let cut = text.find(['*', '?', '[', '{', '\\']).unwrap_or(text.len());
        Ok(Glob {
            text: text.to_string(),
            matcher,
            prefix: text[..cut].to_string(),
            literal: cut == text.len(),
            star_suffix: text[cut..]
                .strip_prefix('*')
                .filter(|rest| !rest.contains(['*', '?', '[', '{', '\\']))
                .map(str::to_string),
            case_insensitive,
        })
    }

    fn is_match(&self, value: &str) -> bool {
        let n = self.prefix.len();
        let starts = value.len() >= n
            && value.is_char_boundary(n)
            && if self.case_insensitive {
                value[..n].eq_ignore_ascii_case(&self.prefix)
            } else {
                value[..n] == self.prefix
            };
        if self.literal {
            return starts && value.len() == n;
        }
        if !starts {
            return false;
        }
        match &self.star_suffix {
            Some(suffix) => {
                let m = suffix.len();
                value.len() >= n + m
                    && value.is_char_boundary(value.len() - m)
                    && if self.case_insensitive {
                        value[value.len() - m..].eq_ignore_ascii_case(suffix)
                    } else {
                        value[value.len() - m..] == *suffix
                    }
            }
            None => self.matcher.is_match(value),
        }
    }

    /// The index key of an action glob (`service:Name`, or a Google permission
    /// `service.collection.verb`) whose literal prefix names the service; the letters only
    /// where the glob fixes them (not after a wildcard).
    fn action_key(&self) -> Option<IndexKey> {
        let prefix = self.prefix.to_ascii_lowercase();
        let (service, name) = split_action(&prefix)?;
        let ends = if self.literal {
            Some(self.text.as_str())
        } else {
            self.star_suffix.as_deref()
        };
        let letter = |c: char| c.is_ascii().then(|| c.to_ascii_lowercase());
        Some(IndexKey::Action {
            service: service.to_string(),
            head: name.chars().next().and_then(letter),
            tail: ends.and_then(|e| e.chars().next_back()).and_then(letter),
        })
    }

    /// `key(prefix)`, when the glob starts with literal text.
    fn prefix_key(&self, key: fn(String) -> IndexKey) -> Option<IndexKey> {
        (!self.prefix.is_empty()).then(|| key(self.prefix.clone()))
    }
}

impl Globs {
    fn compile(values: &[String], case_insensitive: bool) -> Result<Globs, String> {
        values
            .iter()
            .map(|v| Glob::compile(v, case_insensitive))
            .collect::<Result<_, _>>()
            .map(Globs)
    }

    fn any(&self, value: &str) -> bool {
        self.0.iter().any(|g| g.is_match(value))
    }
}

/// A glob, or a regex written `regex:<pattern>` (anchored at both ends).
#[derive(Debug, Clone)]
enum Pattern {
    Glob(Glob),
    Regex(Regex),
}

impl Pattern {
    fn compile(value: &str) -> Result<Pattern, String> {
        match value.strip_prefix("regex:") {
            Some(re) => Regex::new(&format!("^(?:{re})$"))
                .map(Pattern::Regex)
                .map_err(|e| format!("bad regex `{re}`: {e}")),
            None => Glob::compile(value, false).map(Pattern::Glob),
        }
    }

    fn is_match(&self, value: &str) -> bool {
        match self {
            Pattern::Glob(g) => g.is_match(value),
            Pattern::Regex(r) => r.is_match(value),
        }
    }
}

#[derive(Debug, Clone)]
enum ParamTest {
    Equals(Value),
    Glob(Glob),
    Regex(Regex),
    Compare { op: Comparison, value: f64 },
    Absent(bool),
}

#[derive(Debug, Clone, Copy)]
enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
struct ParamCondition {
    path: Vec<PathStep>,
    test: ParamTest,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum PathStep {
    Key(String),
    AnyElement,
}

#[derive(Debug, Clone, Copy)]
struct TimeWindow {
    /// Bit 0 = Monday … bit 6 = Sunday.
    days: u8,
    /// Minutes after midnight UTC, `from` inclusive, `to` exclusive; `from > to` wraps.
    from: u32,
    to: u32,
}

/// A compiled `match:` block.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    cloud: Option<Cloud>,
    service: Option<Globs>,
    operation: Option<Globs>,
    action: Option<Globs>,
    access: Option<Vec<String>>,
    plane: Option<Plane>,
    resource: Option<Vec<Pattern>>,
    agent: Option<Globs>,
    labels: Vec<(String, Globs)>,
    owner: Option<Globs>,
    region: Option<Globs>,
    account: Option<Vec<String>>,
    params: Vec<ParamCondition>,
    time: Option<TimeWindow>,
}

/// An action's service and name: AWS `service:Name`, Google `service.collection.verb`
/// (split at the first `.`). The rule index and the calls it serves split alike.
pub(super) fn split_action(action: &str) -> Option<(&str, &str)> {
    action.split_once(':').or_else(|| {
        (!action.contains(':'))
            .then(|| action.split_once('.'))
            .flatten()
    })
}

/// The access levels IAM documents (and `Unknown` for calls without a known action).
pub const ACCESS_LEVELS: [&str; 6] = [
    "Read",
    "List",
    "Write",
    "Permissions management",
    "Tagging",
    "Unknown",
];

impl Matcher {
    /// Compile; each error is (field path within `match`, message).
    pub fn compile(spec: &MatchSpec) -> Result<Matcher, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let mut globs = |field: &str, v: &Option<OneOrMany>, ci: bool| {
            v.as_ref()
                .and_then(|v| match Globs::compile(v.values(), ci) {
                    Ok(g) => Some(g),
                    Err(e) => {
                        errors.push((field.to_string(), e));
                        None
                    }
                })
        };
        let service = globs("service", &spec.service, true);
        let operation = globs("operation", &spec.operation, true);
        let action = globs("action", &spec.action, true);
        let agent = globs("agent", &spec.agent, false);
        let owner = globs("owner", &spec.owner, true);
        let region = globs("region", &spec.region, false);
        let mut labels = Vec::new();
        for (key, values) in &spec.labels {
            if let Some(g) = globs(&format!("labels.{key}"), &Some(values.clone()), false) {
                labels.push((key.clone(), g));
            }
        }
        let access = spec.access.as_ref().map(|a| a.values().to_vec());
        for level in access.iter().flatten() {
            if !ACCESS_LEVELS.contains(&level.as_str()) {
                errors.push((
                    "access".into(),
                    format!(
                        "unknown access level `{level}`; expected one of {}",
                        ACCESS_LEVELS.join(", ")
                    ),
                ));
            }
        }
        let resource = spec.resource.as_ref().map(|r| {
            r.values()
                .iter()
                .filter_map(|v| match Pattern::compile(v) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        errors.push(("resource".into(), e));
                        None
                    }
                })
                .collect()
        });
        let mut params = Vec::new();
        for (i, p) in spec.params.iter().enumerate() {
            match compile_param(p) {
                Ok(c) => params.push(c),
                Err(e) => errors.push((format!("params[{i}]"), e)),
            }
        }
        let time = match spec.time.as_ref().map(compile_time).transpose() {
            Ok(t) => t,
            Err(e) => {
                errors.push(("time".into(), e));
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Matcher {
            cloud: spec.cloud,
            service,
            operation,
            action,
            access,
            plane: spec.plane,
            resource,
            agent,
            labels,
            owner,
            region,
            account: spec.account.as_ref().map(|a| a.values().to_vec()),
            params,
            time,
        })
    }

    /// Whether the rule applies to `action` (with its `access` level) of `call`.
    pub fn matches(&self, call: &Call, action: &str, access: &str, subject: &Subject<'_>) -> bool {
        let agent = subject.agent;
        // Cheap and selective conditions first.
        self.cloud.is_none_or(|c| c == call.cloud)
            && self.agent.as_ref().is_none_or(|g| g.any(&agent.name))
            && self.owner.as_ref().is_none_or(|g| g.any(&agent.owner))
            && self
                .labels
                .iter()
                .all(|(key, g)| agent.labels.get(key).is_some_and(|v| g.any(v)))
            && self
                .access
                .as_ref()
                .is_none_or(|a| a.iter().any(|l| l == access))
            && self.service.as_ref().is_none_or(|g| g.any(call.service))
            && self
                .operation
                .as_ref()
                .is_none_or(|g| g.any(call.operation))
            && self.action.as_ref().is_none_or(|g| g.any(action))
            && self.plane.is_none_or(|p| plane(action) == p)
            && self.resource.as_ref().is_none_or(|ps| {
                call.resources
                    .iter()
                    .any(|r| ps.iter().any(|p| p.is_match(r)))
            })
            && self
                .region
                .as_ref()
                .is_none_or(|g| call.region.as_deref().is_some_and(|r| g.any(r)))
            && self.account.as_ref().is_none_or(|accounts| {
                let account = call
                    .account
                    .as_deref()
                    .or_else(|| agent.home(call.cloud))
                    .unwrap_or_default();
                accounts.iter().any(|a| a == account)
            })
            && self.params.iter().all(|p| p.holds(&call.params))
            && self.time.is_none_or(|t| t.contains(subject.now))
    }

    /// Where [`RuleIndex`](super::index::RuleIndex) can file this matcher: for each
    /// condition that gives keys, the keys of its values, one of which every call the
    /// matcher matches has. A condition gives none when one of its values has no key
    /// (`*:Delete*`, `*-bot`, a regex); a matcher without any is a candidate everywhere.
    pub(super) fn index_covers(&self) -> Vec<Vec<IndexKey>> {
        let params = self.params.iter().map(|p| {
            let prefix = match &p.test {
                ParamTest::Glob(g) => g.prefix.as_str(),
                ParamTest::Equals(Value::String(text)) => text.as_str(),
                _ => "",
            };
            (!prefix.is_empty()).then(|| vec![IndexKey::Param(p.path.clone(), prefix.into())])
        });
        let resources = self.resource.as_ref().and_then(|patterns| {
            patterns
                .iter()
                .map(|p| match p {
                    Pattern::Glob(g) => g.prefix_key(IndexKey::Resource),
                    Pattern::Regex(_) => None,
                })
                .collect()
        });
        let keys = |globs: &Option<Globs>, key: &dyn Fn(&Glob) -> Option<IndexKey>| {
            globs.as_ref().and_then(|g| g.0.iter().map(key).collect())
        };
        [
            keys(&self.action, &Glob::action_key),
            keys(&self.service, &|g| {
                g.literal
                    .then(|| IndexKey::CallService(g.text.to_ascii_lowercase()))
            }),
            keys(&self.agent, &|g| g.prefix_key(IndexKey::Agent)),
            resources,
        ]
        .into_iter()
        .chain(params)
        .flatten()
        .collect()
    }

    /// Whether every call this matcher matches is certainly matched by `self` too (for
    /// `rules check`: a rule covered by a stronger or earlier one never decides). Sound,
    /// not complete: conditions it cannot compare (resources, params, labels, time) on
    /// `self` make it answer no.
    pub fn covers(&self, other: &Matcher) -> bool {
        fn globs(mine: &Option<Globs>, theirs: &Option<Globs>) -> bool {
            match (mine, theirs) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(m), Some(t)) => t.0.iter().all(|g| m.any(&g.text)),
            }
        }
        fn subset(mine: &Option<Vec<String>>, theirs: &Option<Vec<String>>) -> bool {
            match (mine, theirs) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(m), Some(t)) => t.iter().all(|v| m.contains(v)),
            }
        }
        self.resource.is_none()
            && self.labels.is_empty()
            && self.params.is_empty()
            && self.time.is_none()
            && (self.cloud.is_none() || self.cloud == other.cloud)
            && globs(&self.service, &other.service)
            && globs(&self.operation, &other.operation)
            && globs(&self.action, &other.action)
            && (self.plane.is_none() || self.plane == other.plane)
            && globs(&self.agent, &other.agent)
            && globs(&self.owner, &other.owner)
            && globs(&self.region, &other.region)
            && subset(&self.access, &other.access)
            && subset(&self.account, &other.account)
    }

    /// The action globs as written, for `rules check` (unknown actions).
    pub fn action_globs(&self) -> Vec<&str> {
        self.action
            .as_ref()
            .map(|g| g.0.iter().map(|m| m.text.as_str()).collect())
            .unwrap_or_default()
    }

    /// The operation globs as written, for `rules check` (unknown operations).
    pub fn operation_globs(&self) -> Vec<&str> {
        self.operation
            .as_ref()
            .map(|g| g.0.iter().map(|m| m.text.as_str()).collect())
            .unwrap_or_default()
    }
}

fn compile_param(p: &ParamSpec) -> Result<ParamCondition, String> {
    let path = parse_path(&p.path)?;
    let mut tests = Vec::new();
    if let Some(v) = &p.equals {
        tests.push(ParamTest::Equals(v.clone()));
    }
    if let Some(g) = &p.glob {
        tests.push(ParamTest::Glob(Glob::compile(g, false)?));
    }
    if let Some(r) = &p.regex {
        tests.push(ParamTest::Regex(
            Regex::new(&format!("^(?:{r})$")).map_err(|e| format!("bad regex `{r}`: {e}"))?,
        ));
    }
    for (op, value) in [
        (Comparison::Gt, p.gt),
        (Comparison::Gte, p.gte),
        (Comparison::Lt, p.lt),
        (Comparison::Lte, p.lte),
    ] {
        if let Some(value) = value {
            tests.push(ParamTest::Compare { op, value });
        }
    }
    if let Some(absent) = p.absent {
        tests.push(ParamTest::Absent(absent));
    }
    match tests.len() {
        1 => Ok(ParamCondition {
            path,
            test: tests.remove(0),
        }),
        0 => Err("needs one test: equals, glob, regex, gt, gte, lt, lte or absent".into()),
        _ => Err("has more than one test; write one condition per test".into()),
    }
}

/// `A.B[].C` → keys and any-element steps.
fn parse_path(path: &str) -> Result<Vec<PathStep>, String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            steps.push(PathStep::Key(key.to_string()));
        }
        while let Some(after) = rest.strip_prefix("[]") {
            steps.push(PathStep::AnyElement);
            rest = after;
        }
        if !rest.is_empty() || (key.is_empty() && steps.last() != Some(&PathStep::AnyElement)) {
            return Err(format!("bad path `{path}` (write `A.B[].C`)"));
        }
    }
    Ok(steps)
}

impl ParamCondition {
    fn holds(&self, params: &Value) -> bool {
        match &self.test {
            ParamTest::Absent(absent) => any_at(params, &self.path, &|_| true) != *absent,
            test => any_at(params, &self.path, &|v| test_value(test, v)),
        }
    }
}

/// Whether any value at `path` in `value` satisfies `f` (stops at the first).
fn any_at(value: &Value, path: &[PathStep], f: &dyn Fn(&Value) -> bool) -> bool {
    walk(value, path, &mut |v| {
        if f(v) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// Calls `f` with each text value at `path` in `value`.
pub(super) fn each_text_at(value: &Value, path: &[PathStep], f: &mut dyn FnMut(&str)) {
    let _ = walk(value, path, &mut |v| {
        if let Value::String(text) = v {
            f(text);
        }
        ControlFlow::Continue(())
    });
}

/// Calls `f` with each value at `path` in `value`, until it breaks.
fn walk(
    value: &Value,
    path: &[PathStep],
    f: &mut dyn FnMut(&Value) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let Some((step, rest)) = path.split_first() else {
        return f(value);
    };
    match (step, value) {
        (PathStep::Key(k), Value::Object(map)) => match map.get(k) {
            Some(v) => walk(v, rest, f),
            None => ControlFlow::Continue(()),
        },
        (PathStep::AnyElement, Value::Array(items)) => {
            items.iter().try_for_each(|item| walk(item, rest, f))
        }
        _ => ControlFlow::Continue(()),
    }
}

fn test_value(test: &ParamTest, value: &Value) -> bool {
    let text = match value {
        Value::String(s) => Some(s.as_str()),
        _ => None,
    };
    // Parsed only for comparisons: a text is tried as a number once it is compared.
    let number = || match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    match test {
        ParamTest::Equals(expected) => {
            value == expected
                || match (expected, value) {
                    // Query and XML APIs carry every scalar as text.
                    (Value::Number(n), Value::String(s)) => {
                        n.as_f64().is_some_and(|n| s.parse::<f64>() == Ok(n))
                    }
                    (Value::Bool(b), Value::String(s)) => s == if *b { "true" } else { "false" },
                    _ => false,
                }
        }
        ParamTest::Glob(g) => text.is_some_and(|t| g.is_match(t)),
        ParamTest::Regex(r) => text.is_some_and(|t| r.is_match(t)),
        ParamTest::Compare { op, value: bound } => number().is_some_and(|n| match op {
            Comparison::Gt => n > *bound,
            Comparison::Gte => n >= *bound,
            Comparison::Lt => n < *bound,
            Comparison::Lte => n <= *bound,
        }),
        ParamTest::Absent(_) => false,
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn compile_time(spec: &TimeSpec) -> Result<TimeWindow, String> {
    let mut days = 0u8;
    match &spec.days {
        None => days = 0x7f,
        Some(list) => {
            for day in list {
                let lower = day.to_ascii_lowercase();
                let index = |d: &str| {
                    DAYS.iter()
                        .position(|x| *x == d)
                        .ok_or_else(|| format!("unknown day `{day}`; use mon..sun or mon-fri"))
                };
                match lower.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (index(a)?, index(b)?);
                        let mut i = a;
                        loop {
                            days |= 1 << i;
                            if i == b {
                                break;
                            }
                            i = (i + 1) % 7;
                        }
                    }
                    None => days |= 1 << index(&lower)?,
                }
            }
        }
    }
    let (from, to) = match &spec.hours {
        None => (0, 24 * 60),
        Some(hours) => {
            let (a, b) = hours
                .split_once('-')
                .ok_or_else(|| format!("hours `{hours}`: write HH:MM-HH:MM (UTC)"))?;
            (minutes(a.trim())?, minutes(b.trim())?)
        }
    };
    Ok(TimeWindow { days, from, to })
}

fn minutes(hhmm: &str) -> Result<u32, String> {
    let (h, m) = hhmm
        .split_once(':')
        .ok_or_else(|| format!("`{hhmm}` is not HH:MM"))?;
    match (h.parse::<u32>(), m.parse::<u32>()) {
        (Ok(h), Ok(m)) if (h < 24 && m < 60) || (h == 24 && m == 0) => Ok(h * 60 + m),
        _ => Err(format!("`{hhmm}` is not HH:MM")),
    }
}

impl TimeWindow {
    fn contains(&self, unix: i64) -> bool {
        let days_since_epoch = unix.div_euclid(86_400);
        // 1970-01-01 was a Thursday (index 3).
        let weekday = (days_since_epoch + 3).rem_euclid(7) as u32;
        let minute = (unix.rem_euclid(86_400) / 60) as u32;
        let in_day = |day: u32| self.days & (1 << day) != 0;
        if self.from <= self.to {
            in_day(weekday) && minute >= self.from && minute < self.to
        } else {
            // Wraps midnight: the part after midnight belongs to the previous day's window.
            (in_day(weekday) && minute >= self.from)
                || (in_day((weekday + 6) % 7) && minute < self.to)
        }
    }
}
