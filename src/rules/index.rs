//! Which rules can match a call: each rule is filed under the keys of one of its
//! conditions, and a call looks up its own keys, so a decision checks a few rules instead
//! of all of them. Sound, not exact: every rule that matches is among the candidates; a
//! candidate may still fail its conditions.

use std::collections::HashMap;

use super::matcher::{Matcher, PathStep, each_text_at, split_action};
use crate::agents::Agent;
use crate::cloud::Call;

/// A key a rule can be filed under. Letters and services are lower-case (IAM compares
/// actions case-insensitively); texts are case-sensitive, like the conditions they come
/// from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum IndexKey {
    /// Actions of this IAM service, with this first letter of the name and this last letter
    /// of the action where the glob fixes them (`s3:Put*Acl`: `p` and `l`).
    Action {
        service: String,
        head: Option<char>,
        tail: Option<char>,
    },
    /// Calls to this service (a `service:` condition); a call may need actions of other
    /// services too.
    CallService(String),
    /// Agents whose name starts with this text.
    Agent(String),
    /// Calls with a resource that starts with this text.
    Resource(String),
    /// Calls with a text parameter at this path that starts with this text.
    Param(Vec<PathStep>, String),
}

/// Rule positions (ascending) filed by key; rules without a key are candidates everywhere.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleIndex {
    anywhere: Vec<u32>,
    /// By IAM service.
    actions: HashMap<String, ByLetters>,
    call_services: HashMap<String, Vec<u32>>,
    agents: Prefixes,
    resources: Prefixes,
    params: HashMap<Vec<PathStep>, Prefixes>,
}

/// (First letter of the action name, last letter of the action) → rules; `None` where the
/// glob leaves the letter open.
type ByLetters = HashMap<(Option<char>, Option<char>), Vec<u32>>;

/// Lists filed under text prefixes.
#[derive(Debug, Clone, Default)]
struct Prefixes {
    lists: HashMap<String, Vec<u32>>,
    /// The lengths of the filed prefixes, ascending, each once.
    lengths: Vec<usize>,
}

impl Prefixes {
    fn list(&mut self, prefix: String) -> &mut Vec<u32> {
        if let Err(at) = self.lengths.binary_search(&prefix.len()) {
            self.lengths.insert(at, prefix.len());
        }
        self.lists.entry(prefix).or_default()
    }

    /// Visit the list of every filed prefix of `text`.
    fn visit<'i>(&'i self, text: &str, visit: &mut impl FnMut(&'i [u32])) {
        for &n in self.lengths.iter().take_while(|&&n| n <= text.len()) {
            if let Some(list) = text.get(..n).and_then(|p| self.lists.get(p)) {
                visit(list);
            }
        }
    }
}

impl RuleIndex {
    /// File each matcher (by position) under the keys of its most selective condition: the
    /// one whose keys the fewest matchers share.
    pub(crate) fn build<'m>(matchers: impl Iterator<Item = &'m Matcher>) -> RuleIndex {
        let covers: Vec<Vec<Vec<IndexKey>>> = matchers.map(Matcher::index_covers).collect();
        let mut shared: HashMap<&IndexKey, usize> = HashMap::new();
        for key in covers.iter().flatten().flatten() {
            *shared.entry(key).or_default() += 1;
        }
        let mut index = RuleIndex::default();
        for (i, covers) in covers.iter().enumerate() {
            let i = i as u32;
            let cheapest = covers
                .iter()
                .min_by_key(|keys| keys.iter().map(|k| shared[k]).sum::<usize>());
            let Some(keys) = cheapest else {
                index.anywhere.push(i);
                continue;
            };
            for key in keys {
                let list = index.list(key.clone());
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        index
    }

    fn list(&mut self, key: IndexKey) -> &mut Vec<u32> {
        match key {
            IndexKey::Action {
                service,
                head,
                tail,
            } => self
                .actions
                .entry(service)
                .or_default()
                .entry((head, tail))
                .or_default(),
            IndexKey::CallService(service) => self.call_services.entry(service).or_default(),
            IndexKey::Agent(prefix) => self.agents.list(prefix),
            IndexKey::Resource(prefix) => self.resources.list(prefix),
            IndexKey::Param(path, prefix) => self.params.entry(path).or_default().list(prefix),
        }
    }

    /// Visit each list of rules that can match `action` (`service:Name`) of `call` made by
    /// `agent`: every rule that matches is in at least one (a rule may be in several).
    pub(crate) fn candidates<'i>(
        &'i self,
        call: &Call,
        action: &str,
        agent: &Agent,
        mut visit: impl FnMut(&'i [u32]),
    ) {
        visit(&self.anywhere);
        if let Some(list) = self.call_services.get(call.service) {
            visit(list);
        }
        let (service, name) = split_action(action).unwrap_or((action, ""));
        let by_letters = self.actions.get(service).or_else(|| {
            // Keys are lower-case; IAM service prefixes nearly always are too.
            service
                .bytes()
                .any(|b| b.is_ascii_uppercase())
                .then(|| self.actions.get(&service.to_ascii_lowercase()))
                .flatten()
        });
        if let Some(by_letters) = by_letters {
            // Each letter: any (rules that do not fix it), or the action's own.
            let letters = |c: Option<char>| {
                [None]
                    .into_iter()
                    .chain(c.map(|c| Some(c.to_ascii_lowercase())))
            };
            for head in letters(name.chars().next()) {
                for tail in letters(action.chars().next_back()) {
                    if let Some(list) = by_letters.get(&(head, tail)) {
                        visit(list);
                    }
                }
            }
        }
        self.agents.visit(&agent.name, &mut visit);
        for resource in &call.resources {
            self.resources.visit(resource, &mut visit);
        }
        for (path, prefixes) in &self.params {
            each_text_at(&call.params, path, &mut |text| {
                prefixes.visit(text, &mut visit)
            });
        }
    }
}

#[cfg(test)]
mod tests;
