//! What every channel shows about an approval: who asks, what for, on what, why, under
//! which rule, until when, and how far the votes have come. Built once from the stored
//! approval; each channel renders it in its own format and escapes it there (all text
//! here may come from the agent).

use serde::Serialize;

use crate::approvals::{Approval, State, Vote};

/// Parameter values longer than this are cut (the full value is on the web page).
pub const MAX_VALUE_CHARS: usize = 160;
/// At most this many parameters are listed; the rest are counted.
pub const MAX_PARAMS: usize = 8;

/// One IAM action and its access level (`Write`, `Permissions management`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionLine {
    pub name: String,
    pub access: String,
}

/// One request parameter, its value as compact text, cut if long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    pub name: String,
    pub value: String,
    /// The value was cut at [`MAX_VALUE_CHARS`].
    pub cut: bool,
}

/// An approval, summarised for reviewers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Context {
    pub id: String,
    pub state: State,
    pub agent: String,
    pub owner: String,
    pub cloud: String,
    pub service: String,
    pub operation: String,
    pub actions: Vec<ActionLine>,
    pub resources: Vec<String>,
    /// The key parameters, identifiers and names first.
    pub params: Vec<Param>,
    /// Parameters not listed in `params`.
    pub more_params: usize,
    pub account: Option<String>,
    pub region: Option<String>,
    pub rule: String,
    pub message: Option<String>,
    /// The agent's stated reason (`x-airlock-reason`).
    pub reason: Option<String>,
    pub groups: Vec<String>,
    pub quorum: u32,
    /// Approving votes so far.
    pub approvals: u32,
    pub votes: Vec<Vote>,
    pub requested_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    /// The approval's page on the web UI.
    pub link: String,
}

impl Context {
    /// Summarise `approval`; `base_url` is where reviewers reach the control listener.
    pub fn of(approval: &Approval, base_url: &str) -> Context {
        let call = &approval.call;
        let text = |key: &str| {
            call.get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let optional = |key: &str| call.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let actions = call
            .get("actions")
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .map(|x| ActionLine {
                        name: x["name"].as_str().unwrap_or_default().to_string(),
                        access: x["access"].as_str().unwrap_or("Unknown").to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let resources = call
            .get("resources")
            .and_then(|r| r.as_array())
            .map(|r| {
                r.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let idempotency: Vec<&str> = call
            .get("idempotency_params")
            .and_then(|v| v.as_array())
            .map(|v| v.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        let mut params: Vec<Param> = call
            .get("params")
            .and_then(|p| p.as_object())
            .map(|map| {
                map.iter()
                    .filter(|(name, _)| !idempotency.contains(&name.as_str()))
                    .map(|(name, value)| param(name, value))
                    .collect()
            })
            .unwrap_or_default();
        params.sort_by_key(|p| std::cmp::Reverse(is_key_param(&p.name)));
        // A batch: every inner call first, one line each (`part 2: storage.objects.delete
        // //storage.googleapis.com/…`), so reviewers see what each part does; the web page
        // shows each part's parameters in the call.
        let parts: Vec<Param> = call
            .get("parts")
            .and_then(|p| p.as_array())
            .map(|parts| {
                parts
                    .iter()
                    .enumerate()
                    .map(|(i, part)| {
                        let mut line = part["operation"].as_str().unwrap_or("?").to_string();
                        for resource in part["resources"].as_array().into_iter().flatten() {
                            line.push(' ');
                            line.push_str(resource.as_str().unwrap_or_default());
                        }
                        param(&format!("part {}", i + 1), &serde_json::Value::String(line))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !parts.is_empty() {
            params = parts.into_iter().chain(params).collect();
        }
        // What the call changes (`+ roles/owner user:…`), looked up before asking: first.
        let changes: Vec<Param> = call
            .get("changes")
            .and_then(|c| c.as_array())
            .map(|changes| changes.iter().map(|line| param("change", line)).collect())
            .unwrap_or_default();
        if !changes.is_empty() {
            params = changes.into_iter().chain(params).collect();
        }
        let more_params = params.len().saturating_sub(MAX_PARAMS);
        params.truncate(MAX_PARAMS);
        Context {
            id: approval.id.clone(),
            state: approval.state,
            agent: approval.agent.clone(),
            owner: approval.owner.clone(),
            cloud: text("cloud"),
            service: text("service"),
            operation: text("operation"),
            actions,
            resources,
            params,
            more_params,
            account: optional("account"),
            region: optional("region"),
            rule: approval.rule.clone(),
            message: approval.message.clone(),
            reason: approval.reason.clone(),
            groups: approval.groups.clone(),
            quorum: approval.quorum,
            approvals: approval.votes.iter().filter(|v| v.approve).count() as u32,
            votes: approval.votes.clone(),
            requested_at: approval.requested_at,
            expires_at: approval.expires_at,
            decided_at: approval.decided_at,
            link: format!(
                "{}/ui/approvals/{}",
                base_url.trim_end_matches('/'),
                approval.id
            ),
        }
    }

    /// `iam:AttachRolePolicy (Permissions management)`, comma-separated.
    pub fn actions_line(&self) -> String {
        self.actions
            .iter()
            .map(|a| format!("{} ({})", a.name, a.access))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// "1 of 2 approvals" (from the rule's groups).
    pub fn progress(&self) -> String {
        format!(
            "{} of {} approval{} from {}",
            self.approvals,
            self.quorum,
            if self.quorum == 1 { "" } else { "s" },
            self.groups.join(" or ")
        )
    }

    /// One line on how it ended (or that it is pending): "Approved by bob@example.com",
    /// "Denied by bob@example.com: not in prod", "Expired undecided".
    pub fn outcome(&self) -> String {
        let approvers: Vec<&str> = self
            .votes
            .iter()
            .filter(|v| v.approve)
            .map(|v| v.approver.as_str())
            .collect();
        match self.state {
            State::Pending => format!("Pending: {}", self.progress()),
            State::Approved => format!("Approved by {}", approvers.join(", ")),
            State::Denied => {
                let deny = self.votes.iter().find(|v| !v.approve);
                match deny {
                    Some(v) => format!(
                        "Denied by {}: {}",
                        v.approver,
                        v.reason.as_deref().unwrap_or("no reason given")
                    ),
                    None => "Denied".into(),
                }
            }
            State::Expired => "Expired undecided".into(),
        }
    }
}

/// RFC 3339 (UTC, seconds) of a unix time.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Identifiers and names say what a call acts on: list them first.
fn is_key_param(name: &str) -> bool {
    const KEYS: [&str; 7] = ["Arn", "Name", "Id", "Ids", "Bucket", "Key", "Destination"];
    KEYS.iter().any(|k| name.ends_with(k)) || name.contains("Bucket") || name.contains("S3")
}

fn param(name: &str, value: &serde_json::Value) -> Param {
    let full = match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let cut = full.chars().count() > MAX_VALUE_CHARS;
    let value = if cut {
        let mut short: String = full.chars().take(MAX_VALUE_CHARS).collect();
        short.push('…');
        short
    } else {
        full
    };
    Param {
        name: name.to_string(),
        value,
        cut,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn a_batch_shows_every_inner_call_first() {
        let mut batch = approval(serde_json::json!({"parts": 2}));
        batch.call["operation"] = "batch".into();
        batch.call["parts"] = serde_json::json!([
            {"operation": "storage.objects.get",
             "resources": ["//storage.googleapis.com/projects/_/buckets/a/objects/x"]},
            {"operation": "storage.buckets.setIamPolicy",
             "resources": ["//storage.googleapis.com/projects/_/buckets/b"]},
        ]);
        let context = Context::of(&batch, "http://airlock");
        let lines: Vec<(&str, &str)> = context
            .params
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            &lines[..2],
            [
                (
                    "part 1",
                    "storage.objects.get //storage.googleapis.com/projects/_/buckets/a/objects/x"
                ),
                (
                    "part 2",
                    "storage.buckets.setIamPolicy //storage.googleapis.com/projects/_/buckets/b"
                ),
            ]
        );
    }

    /// A pending approval of `iam:AttachRolePolicy` by `ci` (owner alice), for tests.
    pub(crate) fn approval(params: serde_json::Value) -> Approval {
        Approval {
            id: "apr-x".into(),
            state: State::Pending,
            fingerprint: "f".into(),
            agent: "ci".into(),
            owner: "alice@example.com".into(),
            rule: "iam-changes".into(),
            message: Some("IAM changes need security".into()),
            groups: vec!["security".into()],
            quorum: 2,
            call: serde_json::json!({
                "cloud": "aws", "service": "iam", "operation": "AttachRolePolicy",
                "actions": [{"name": "iam:AttachRolePolicy", "access": "Permissions management"}],
                "resources": ["arn:aws:iam::123456789012:role/app"],
                "params": params, "idempotency_params": ["ClientToken"],
                "account": "123456789012", "region": null,
            }),
            reason: None,
            requested_at: 1_767_614_400,
            expires_at: 1_767_618_000,
            decided_at: None,
            votes: Vec::new(),
            consumed: false,
            reuse: None,
        }
    }

    #[test]
    fn what_a_call_changes_comes_first() {
        let mut approval = approval(serde_json::json!({"resource": "projects/demo"}));
        approval.call["changes"] = serde_json::json!([
            "+ roles/owner user:x@example.com",
            "- roles/viewer allUsers"
        ]);
        let context = Context::of(&approval, "http://airlock");
        let lines: Vec<(&str, &str)> = context
            .params
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            lines[..2],
            [
                ("change", "+ roles/owner user:x@example.com"),
                ("change", "- roles/viewer allUsers")
            ]
        );
    }

    #[test]
    fn key_parameters_come_first_and_long_values_are_cut() {
        let long = "x".repeat(500);
        let context = Context::of(
            &approval(serde_json::json!({
                "Description": long, "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
                "RoleName": "app", "ClientToken": "t-123",
            })),
            "http://airlock:9090/",
        );
        let names: Vec<&str> = context.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["PolicyArn", "RoleName", "Description"]);
        let description = &context.params[2];
        assert!(description.cut);
        assert_eq!(description.value.chars().count(), MAX_VALUE_CHARS + 1);
        assert_eq!(context.link, "http://airlock:9090/ui/approvals/apr-x");
        assert_eq!(
            context.actions_line(),
            "iam:AttachRolePolicy (Permissions management)"
        );
        assert_eq!(context.progress(), "0 of 2 approvals from security");
        assert_eq!(context.account.as_deref(), Some("123456789012"));
    }

    #[test]
    fn many_parameters_are_counted_not_listed() {
        let params: serde_json::Map<String, serde_json::Value> = (0..12)
            .map(|i| (format!("P{i:02}"), serde_json::json!(i)))
            .collect();
        let context = Context::of(&approval(params.into()), "http://a");
        assert_eq!(context.params.len(), MAX_PARAMS);
        assert_eq!(context.more_params, 4);
    }

    #[test]
    fn the_outcome_names_who_decided() {
        let mut a = approval(serde_json::json!({}));
        a.state = State::Denied;
        a.votes = vec![Vote {
            approver: "bob@example.com".into(),
            approve: false,
            reason: Some("not in prod".into()),
            at: 0,
            via: "slack".into(),
        }];
        assert_eq!(
            Context::of(&a, "http://a").outcome(),
            "Denied by bob@example.com: not in prod"
        );
    }
}
