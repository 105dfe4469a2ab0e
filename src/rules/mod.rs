//! Rules: what the security team writes in `rules/*.yaml`, compiled once per (re)load and
//! evaluated per call. Pure: no I/O, no clock of its own (the time is an input).
//!
//! How a decision is made:
//! 1. An unclassified call gets `defaults.unclassified` (shipped: deny).
//! 2. Each IAM action the call needs is decided on its own: among the rules that match the
//!    call and that action, the strictest effect wins (deny beats approve beats allow); no
//!    matching rule → `defaults.unmatched`. A call with no known IAM action is decided as
//!    one pseudo-action `service:Operation` with access level `Unknown`.
//! 3. The call's decision is the strictest of its actions' (a call that reads and writes
//!    is decided by its write).
//! 4. Among several matching rules of the winning effect, the first in load order (files
//!    by name, rules in file order) is the deciding rule; its approval terms apply.

pub mod check;
mod file;
mod index;
mod matcher;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::agents::Agent;
use crate::cloud::{Call, Classification};

pub use file::{ParsedFile, RuleError, RuleErrors, load_dir, parse_file};
pub use matcher::Matcher;

/// What happens to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Approve,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Approve => "approve",
            Effect::Deny => "deny",
        }
    }
}

/// The terms of an approval a rule asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// Approver groups; a reviewer in any of them may vote.
    pub groups: Vec<String>,
    /// Distinct approvers needed.
    pub quorum: u32,
    /// How long the agent's connection is held waiting.
    #[serde(with = "humantime_serde")]
    pub hold: Duration,
    /// How long the pending approval lives.
    #[serde(with = "humantime_serde")]
    pub expires: Duration,
    /// The same agent may repeat the identical call within this window without a new
    /// approval.
    #[serde(with = "humantime_serde")]
    pub reuse: Option<Duration>,
}

pub const DEFAULT_HOLD: Duration = Duration::from_secs(50);
pub const DEFAULT_EXPIRES: Duration = Duration::from_secs(3600);

/// Where a rule was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub description: Option<String>,
    pub effect: Effect,
    pub matcher: Matcher,
    pub approval: Option<Approval>,
    /// Shown to agents and reviewers.
    pub message: Option<String>,
    pub origin: Origin,
    /// Approval terms the rule leaves to `defaults.approval` (filled in on load).
    pub(crate) inherits: Inherits,
}

/// Which approval terms an approve rule did not set.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Inherits {
    pub quorum: bool,
    pub hold: bool,
    pub expires: bool,
    pub reuse: bool,
}

/// The defaults for what no rule decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    pub unmatched: Effect,
    pub unclassified: Effect,
    /// The approval terms when a default is `approve`.
    pub approval: Approval,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            unmatched: Effect::Approve,
            unclassified: Effect::Deny,
            approval: Approval {
                groups: vec!["security".into()],
                quorum: 1,
                hold: DEFAULT_HOLD,
                expires: DEFAULT_EXPIRES,
                reuse: None,
            },
        }
    }
}

/// A loaded rule set: every rule in load order, the defaults, and a version hash of the
/// source text (recorded with each decision).
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// Which rules can match an action (built on load).
    pub(crate) index: index::RuleIndex,
    pub defaults: Defaults,
    /// SHA-256 (hex) over the files' names and contents, in load order.
    pub version: String,
}

/// What the rules say about one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub effect: Effect,
    /// The deciding rule's id; `None` when a default decided.
    pub rule: Option<String>,
    pub origin: Option<Origin>,
    /// Why, in words a reviewer reads.
    pub reasons: Vec<String>,
    pub approval: Option<Approval>,
    pub message: Option<String>,
}

/// Who is calling and when: everything a rule may look at besides the call.
pub struct Subject<'a> {
    pub agent: &'a Agent,
    /// Seconds since the Unix epoch (UTC).
    pub now: i64,
}

impl RuleSet {
    /// Decide `classification` for `subject` (see the module docs for the algorithm).
    pub fn decide(&self, classification: &Classification, subject: &Subject<'_>) -> Decision {
        let Some(call) = classification.call() else {
            let reason = match classification {
                Classification::Unknown(u) => u.reason.as_str(),
                Classification::Known(_) => "",
            };
            return self.by_default(
                self.defaults.unclassified,
                format!("the call could not be classified ({reason}): defaults.unclassified"),
            );
        };
        self.decide_call(call, subject)
    }

    /// A batch is decided part by part (each inner call on its own conditions: a rule
    /// never matches one part's action with another part's resource), and takes its
    /// strictest part's decision.
    fn decide_call(&self, call: &Call, subject: &Subject<'_>) -> Decision {
        if !call.parts.is_empty() {
            let decisions: Vec<Decision> = call
                .parts
                .iter()
                .enumerate()
                .map(|(i, part)| {
                    let mut decision = self.decide_call(part, subject);
                    for reason in &mut decision.reasons {
                        *reason = format!("part {} ({}): {reason}", i + 1, part.operation);
                    }
                    decision
                })
                .collect();
            // Parts that wait for approval under different terms (groups, quorum, expiry)
            // cannot share one approval: whichever part came first would set the terms for
            // all, and the agent chooses the order. Such a batch is refused.
            let terms: Vec<&Approval> = decisions
                .iter()
                .filter(|d| d.effect == Effect::Approve)
                .filter_map(|d| d.approval.as_ref())
                .collect();
            let strictest = decisions.iter().map(|d| d.effect).max();
            if strictest == Some(Effect::Approve) && terms.windows(2).any(|p| p[0] != p[1]) {
                return Decision {
                    effect: Effect::Deny,
                    rule: None,
                    origin: None,
                    reasons: vec!["the batch's parts need approvals on different terms".into()],
                    approval: None,
                    message: Some(
                        "Parts of this batch need different approvals; send them separately."
                            .into(),
                    ),
                };
            }
            let mut strictest: Option<Decision> = None;
            for decision in decisions {
                if strictest
                    .as_ref()
                    .is_none_or(|s| decision.effect > s.effect)
                {
                    strictest = Some(decision);
                }
            }
            if let Some(decision) = strictest {
                return decision;
            }
        }
        let pseudo;
        let actions: Vec<(&str, &str)> = if call.actions.is_empty() {
            pseudo = format!("{}:{}", call.service, call.operation);
            vec![(pseudo.as_str(), "Unknown")]
        } else {
            call.actions.iter().map(|a| (a.name, a.access)).collect()
        };

        let mut decided: Option<(Effect, Option<&Rule>, &str)> = None;
        for (action, access) in actions {
            let (effect, rule) = self.decide_action(call, action, access, subject);
            let stricter = decided.as_ref().is_none_or(|(e, _, _)| effect > *e);
            if stricter {
                decided = Some((effect, rule, action));
            }
        }
        let Some((effect, rule, action)) = decided else {
            return self.by_default(self.defaults.unmatched, "no action to decide".into());
        };
        match rule {
            Some(rule) => Decision {
                effect,
                rule: Some(rule.id.clone()),
                origin: Some(rule.origin.clone()),
                reasons: vec![format!(
                    "{action} ({}) matched rule `{}` ({}:{}): {}",
                    call.operation,
                    rule.id,
                    rule.origin.file.display(),
                    rule.origin.line,
                    effect.as_str()
                )],
                approval: (effect == Effect::Approve).then(|| {
                    rule.approval
                        .clone()
                        .unwrap_or_else(|| self.defaults.approval.clone())
                }),
                message: rule.message.clone(),
            },
            None => self.by_default(
                effect,
                format!(
                    "no rule matches {action} ({}): defaults.unmatched",
                    call.operation
                ),
            ),
        }
    }

    /// The strictest matching rule for one action (first in load order among equals).
    fn decide_action<'r>(
        &'r self,
        call: &Call,
        action: &str,
        access: &str,
        subject: &Subject<'_>,
    ) -> (Effect, Option<&'r Rule>) {
        // The strictest match, first in load order among equals; each candidate list is
        // ascending, so a list can stop at its first deny.
        let mut best: Option<(Effect, u32)> = None;
        self.index.candidates(call, action, subject.agent, |list| {
            for &i in list {
                let rule = &self.rules[i as usize];
                let beaten = best.is_some_and(|(effect, at)| {
                    effect > rule.effect || (effect == rule.effect && at < i)
                });
                if beaten {
                    continue;
                }
                if rule.matcher.matches(call, action, access, subject) {
                    best = Some((rule.effect, i));
                    if rule.effect == Effect::Deny {
                        break;
                    }
                }
            }
        });
        match best {
            Some((effect, i)) => (effect, Some(&self.rules[i as usize])),
            None => (self.defaults.unmatched, None),
        }
    }

    fn by_default(&self, effect: Effect, reason: String) -> Decision {
        Decision {
            effect,
            rule: None,
            origin: None,
            reasons: vec![reason],
            approval: (effect == Effect::Approve).then(|| self.defaults.approval.clone()),
            message: None,
        }
    }

    /// Load every `*.yaml` file of `dir` (see [`load_dir`]).
    pub fn load(dir: &Path) -> Result<RuleSet, RuleErrors> {
        load_dir(dir)
    }
}

/// The rules a running Airlock decides with: swapped whole when the directory changes; a
/// broken edit leaves the previous set in force.
pub struct LiveRules {
    dir: PathBuf,
    current: arc_swap::ArcSwap<RuleSet>,
}

impl LiveRules {
    pub fn load(dir: &Path) -> Result<LiveRules, RuleErrors> {
        Ok(LiveRules {
            dir: dir.to_path_buf(),
            current: arc_swap::ArcSwap::from_pointee(RuleSet::load(dir)?),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The rule set in force now.
    pub fn current(&self) -> std::sync::Arc<RuleSet> {
        self.current.load_full()
    }
}

impl crate::reload::Reloadable for LiveRules {
    const NAME: &'static str = "rules";

    fn reload(&self) -> Result<(), String> {
        let fresh = RuleSet::load(&self.dir).map_err(|e| e.to_string())?;
        self.current.store(std::sync::Arc::new(fresh));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
