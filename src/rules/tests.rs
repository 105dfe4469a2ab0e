use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::cloud::aws;

fn rules(text: &str) -> RuleSet {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), text).unwrap();
    RuleSet::load(dir.path()).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.yaml"), text).unwrap();
    match RuleSet::load(dir.path()) {
        Ok(_) => panic!("loaded: {text}"),
        Err(e) => {
            e.0.iter()
                .map(|e| format!("{}:{}: {}", e.line.unwrap_or(0), e.path, e.message))
                .collect()
        }
    }
}

/// A test agent (`ci-deployer`, team payments).
pub(super) fn agent() -> Agent {
    Agent {
        name: "ci-deployer".into(),
        owner: "alice@example.com".into(),
        role: None,
        account: Some("123456789012".into()),
        gcp_service_account: None,
        gcp_project: None,
        labels: BTreeMap::from([("team".to_string(), "payments".to_string())]),
        access_key_id: String::new(),
        created: String::new(),
    }
}

/// The test agent under another name.
pub(super) fn agent_named(name: &str) -> Agent {
    Agent {
        name: name.into(),
        ..agent()
    }
}

const MONDAY_NOON: i64 = 1_767_614_400;

fn decide(set: &RuleSet, service: &str, operation: &str, params: serde_json::Value) -> Decision {
    let call = aws::describe(service, operation, params, Some("us-east-1"), None).unwrap();
    let agent = agent();
    set.decide(
        &Classification::Known(Box::new(call)),
        &Subject {
            agent: &agent,
            now: MONDAY_NOON,
        },
    )
}

fn effect(set: &RuleSet, service: &str, operation: &str, params: serde_json::Value) -> Effect {
    decide(set, service, operation, params).effect
}

#[test]
fn the_strictest_matching_rule_decides_each_action_and_the_call_takes_its_strictest_action() {
    let set = rules(
        "
defaults: {unmatched: deny}
rules:
  - {id: reads, match: {access: [Read, List]}, effect: allow}
  - {id: writes, match: {access: Write}, effect: allow}
  - {id: puts-need-approval, match: {action: 's3:Put*'}, effect: approve, approvers: [sec]}
  - {id: never-delete, match: {action: 's3:DeleteBucket'}, effect: deny, message: no}
",
    );
    assert_eq!(
        effect(&set, "s3", "GetObject", serde_json::json!({})),
        Effect::Allow
    );
    // CopyObject needs s3:GetObject (allowed) and s3:PutObject (approve): approve.
    let copy = decide(&set, "s3", "CopyObject", serde_json::json!({}));
    assert_eq!(copy.effect, Effect::Approve);
    assert_eq!(copy.rule.as_deref(), Some("puts-need-approval"));
    assert_eq!(copy.approval.as_ref().unwrap().groups, ["sec"]);
    let delete = decide(&set, "s3", "DeleteBucket", serde_json::json!({}));
    assert_eq!(
        (delete.effect, delete.message.as_deref()),
        (Effect::Deny, Some("no"))
    );
    // No rule for Permissions management: the default.
    let attach = decide(&set, "iam", "AttachRolePolicy", serde_json::json!({}));
    assert_eq!((attach.effect, attach.rule), (Effect::Deny, None));
    assert!(
        attach.reasons[0].contains("defaults.unmatched"),
        "{:?}",
        attach.reasons
    );
}

#[test]
fn unclassified_calls_and_calls_without_a_known_action_follow_their_defaults() {
    let set = rules("rules: [{id: all-reads, match: {access: Read}, effect: allow}]\n");
    let agent = agent();
    let unknown = set.decide(
        &Classification::unknown(crate::cloud::Cloud::Aws, "no such API"),
        &Subject {
            agent: &agent,
            now: MONDAY_NOON,
        },
    );
    assert_eq!(
        unknown.effect,
        Effect::Deny,
        "shipped default: unclassified → deny"
    );
    assert!(unknown.reasons[0].contains("no such API"));
    // Unmatched defaults to approve, with the default approval terms.
    let attach = decide(&set, "iam", "AttachRolePolicy", serde_json::json!({}));
    assert_eq!(attach.effect, Effect::Approve);
    assert_eq!(attach.approval.unwrap().hold, DEFAULT_HOLD);
}

#[test]
fn every_kind_of_condition_narrows_a_rule() {
    let set = rules(
        r#"
defaults: {unmatched: allow}
rules:
  - id: admin-policy
    match:
      service: IAM
      action: "iam:Attach*Policy"
      params:
        - {path: PolicyArn, glob: "*AdministratorAccess"}
    effect: deny
  - id: big-instances
    match:
      action: ec2:RunInstances
      params:
        - {path: MaxCount, gt: 10}
    effect: deny
  - id: payments-team-prod
    match:
      labels: {team: payments}
      owner: "*@example.com"
      agent: "ci-*"
      region: us-east-*
      resource: "regex:arn:aws:s3:::prod-.*"
    effect: deny
  - id: tagged-deletes
    match:
      action: ec2:DeleteTags
      params:
        - {path: "Tags[].Key", equals: owner}
    effect: deny
  - id: no-description
    match:
      action: iam:CreateRole
      params:
        - {path: Description, absent: true}
    effect: deny
  - id: weekend
    match:
      action: "lambda:UpdateFunctionCode"
      time: {days: [sat-sun]}
    effect: deny
"#,
    );
    use serde_json::json as j;
    assert_eq!(
        effect(
            &set,
            "iam",
            "AttachRolePolicy",
            j!({"RoleName": "r", "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
        ),
        Effect::Deny
    );
    assert_eq!(
        effect(
            &set,
            "iam",
            "AttachRolePolicy",
            j!({"RoleName": "r", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"})
        ),
        Effect::Allow
    );
    // Query APIs carry numbers as text.
    assert_eq!(
        effect(&set, "ec2", "RunInstances", j!({"MaxCount": "20"})),
        Effect::Deny
    );
    assert_eq!(
        effect(&set, "ec2", "RunInstances", j!({"MaxCount": "2"})),
        Effect::Allow
    );
    assert_eq!(
        effect(
            &set,
            "s3",
            "GetObject",
            j!({"Bucket": "prod-data", "Key": "k"})
        ),
        Effect::Deny
    );
    assert_eq!(
        effect(
            &set,
            "s3",
            "GetObject",
            j!({"Bucket": "dev-data", "Key": "k"})
        ),
        Effect::Allow
    );
    assert_eq!(
        effect(
            &set,
            "ec2",
            "DeleteTags",
            j!({"Tags": [{"Key": "team"}, {"Key": "owner"}]})
        ),
        Effect::Deny
    );
    assert_eq!(
        effect(&set, "ec2", "DeleteTags", j!({"Tags": [{"Key": "team"}]})),
        Effect::Allow
    );
    assert_eq!(
        effect(&set, "iam", "CreateRole", j!({"RoleName": "r"})),
        Effect::Deny
    );
    assert_eq!(
        effect(
            &set,
            "iam",
            "CreateRole",
            j!({"RoleName": "r", "Description": "d"})
        ),
        Effect::Allow
    );
    // Monday noon: outside the weekend window.
    assert_eq!(
        effect(
            &set,
            "lambda",
            "UpdateFunctionCode",
            j!({"FunctionName": "f"})
        ),
        Effect::Allow
    );
}

#[test]
fn time_windows_are_utc_days_and_hours_and_may_wrap_midnight() {
    let set = rules(
        "
defaults: {unmatched: allow}
rules:
  - {id: nights, match: {time: {days: [mon-fri], hours: '22:00-06:00'}}, effect: deny}
",
    );
    let call = aws::describe("s3", "GetObject", serde_json::json!({}), None, None).unwrap();
    let call = Classification::Known(Box::new(call));
    let agent = agent();
    let at = |unix: i64| {
        set.decide(
            &call,
            &Subject {
                agent: &agent,
                now: unix,
            },
        )
        .effect
    };
    let monday = MONDAY_NOON - 12 * 3600; // 2026-01-05T00:00:00Z
    assert_eq!(at(monday + 12 * 3600), Effect::Allow); // Mon 12:00
    assert_eq!(at(monday + 23 * 3600), Effect::Deny); // Mon 23:00
    assert_eq!(at(monday + 24 * 3600 + 3600), Effect::Deny); // Tue 01:00 (Monday's night)
    assert_eq!(at(monday - 2 * 3600), Effect::Allow); // Sun 22:00
    assert_eq!(at(monday + 3600), Effect::Allow); // Mon 01:00 (Sunday's night: not in mon-fri)
    assert_eq!(at(monday + 4 * 24 * 3600 + 23 * 3600), Effect::Deny); // Fri 23:00
    assert_eq!(at(monday + 5 * 24 * 3600 + 3600), Effect::Deny); // Sat 01:00 (Friday's night)
    assert_eq!(at(monday + 5 * 24 * 3600 + 23 * 3600), Effect::Allow); // Sat 23:00
}

#[test]
fn bad_rules_are_reported_with_their_line_and_nothing_loads() {
    let found = errors(
        "rules:
  - id: a
    match: {action: 's3:Get[Object'}
    effect: allow
  - id: b
    match: {acess: Read}
    effect: allow
  - id: c
    effect: approve
  - id: d
    effect: allow
    quorum: 2
  - id: a
    effect: deny
  - id: e
    match:
      params:
        - {path: X, equals: 1, glob: '*'}
    effect: deny
",
    );
    let joined = found.join("\n");
    for expected in [
        "3:rules[0].match.action: bad glob",
        "6:rules[1].match.acess: unknown field `acess`",
        "8:rules[2].approvers: an approve rule names its approver groups",
        "12:rules[3].quorum: only `effect: approve` rules take `quorum`",
        "18:rules[5].match.params[0]: has more than one test",
    ] {
        assert!(
            joined.contains(expected),
            "missing `{expected}` in:\n{joined}"
        );
    }
    // Rule ids are unique across files.
    let found = errors("rules:\n  - {id: a, effect: deny}\n  - {id: a, effect: allow}\n");
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("3:id: rule id `a` is already used at ")
            && found[0].ends_with("r.yaml:2"),
        "{found:?}"
    );
    let found = errors("rules: [ {id: x\n");
    assert!(
        found[0].starts_with("2:") || found[0].starts_with("1:"),
        "{found:?}"
    );
}

#[test]
fn the_version_changes_with_any_edit() {
    let a = rules("rules: [{id: x, effect: deny}]\n");
    let b = rules("rules: [{id: x, effect: deny}] # edited\n");
    assert_ne!(a.version, b.version);
    assert_eq!(a.version.len(), 64);
}

#[test]
fn the_shipped_rules_load_lint_clean_and_pass_their_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let set = RuleSet::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(check::lint(&set), Vec::new());
    let results = check::run_tests(&set, &dir).unwrap();
    assert!(results.len() >= 10);
    let failed: Vec<_> = results.iter().filter(|r| r.failure.is_some()).collect();
    assert!(failed.is_empty(), "{failed:?}");
}

#[test]
fn approval_terms_a_rule_leaves_unset_come_from_the_defaults() {
    let set = rules(
        "
defaults:
  unmatched: allow
  approval: {groups: [security], quorum: 2, hold: 5s, expires: 10m, reuse: 1m}
rules:
  - {id: inherits, match: {action: 's3:DeleteBucket'}, effect: approve, approvers: [sre]}
  - {id: own-terms, match: {action: 's3:DeleteObject'}, effect: approve, approvers: [sre], quorum: 1, hold: 20s}
",
    );
    let inherits = decide(&set, "s3", "DeleteBucket", serde_json::json!({}))
        .approval
        .unwrap();
    assert_eq!(
        (
            inherits.groups,
            inherits.quorum,
            inherits.hold,
            inherits.expires,
            inherits.reuse
        ),
        (
            vec!["sre".to_string()],
            2,
            Duration::from_secs(5),
            Duration::from_secs(600),
            Some(Duration::from_secs(60))
        )
    );
    let own = decide(&set, "s3", "DeleteObject", serde_json::json!({}))
        .approval
        .unwrap();
    assert_eq!(
        (own.quorum, own.hold, own.expires),
        (1, Duration::from_secs(20), Duration::from_secs(600))
    );
}

#[test]
fn the_index_decides_exactly_like_visiting_every_rule() {
    let set = rules(
        r#"
defaults: {unmatched: allow}
rules:
  - {id: a, match: {action: 'S3:Get*'}, effect: approve, approvers: [x]}
  - {id: b, match: {action: '*:Delete*'}, effect: deny}
  - {id: c, match: {service: s3}, effect: approve, approvers: [x]}
  - {id: d, match: {action: 's3:*Object'}, effect: deny}
  - {id: e, match: {action: 'iam:attachrolepolicy'}, effect: deny}
  - {id: f, match: {access: Write}, effect: approve, approvers: [x]}
  - {id: g, match: {service: 'ec*'}, effect: deny}
  - {id: h, match: {action: 's3:Put*Acl'}, effect: deny}
  - {id: i, match: {agent: 'ci-*', action: 'kms:*'}, effect: approve, approvers: [x]}
"#,
    );
    let agent = agent();
    let subject = Subject {
        agent: &agent,
        now: MONDAY_NOON,
    };
    for (service, operation) in [
        ("s3", "GetObject"),
        ("s3", "PutObject"),
        ("s3", "PutObjectAcl"),
        ("s3", "DeleteBucket"),
        ("s3", "CopyObject"),
        ("iam", "AttachRolePolicy"),
        ("iam", "ListRoles"),
        ("ec2", "DescribeInstances"),
        ("kms", "Encrypt"),
        ("sqs", "SendMessage"),
        ("dynamodb", "DeleteTable"),
    ] {
        let call = aws::describe(service, operation, serde_json::json!({}), None, None).unwrap();
        // The reference: every rule, in order, strictest wins.
        let mut expected: Option<(Effect, &str)> = None;
        for action in &call.actions {
            let mut best: Option<&Rule> = None;
            for rule in &set.rules {
                if rule
                    .matcher
                    .matches(&call, action.name, action.access, &subject)
                    && best.is_none_or(|b| rule.effect > b.effect)
                {
                    best = Some(rule);
                }
            }
            let (effect, id) = best.map_or((set.defaults.unmatched, "default"), |r| {
                (r.effect, r.id.as_str())
            });
            if expected.is_none_or(|(e, _)| effect > e) {
                expected = Some((effect, id));
            }
        }
        let got = set.decide(&Classification::Known(Box::new(call.clone())), &subject);
        assert_eq!(
            (got.effect, got.rule.as_deref().unwrap_or("default")),
            expected.unwrap(),
            "{service}:{operation}"
        );
    }
}

/// A Google call as the classifier would describe it (permissions, project, location).
fn gcp_call(operation: &'static str, permission: &'static str, access: &'static str) -> Call {
    Call {
        cloud: crate::cloud::Cloud::Gcp,
        service: "storage",
        api: "storage:v1",
        operation,
        actions: vec![crate::cloud::Action {
            name: permission,
            access,
        }],
        region: Some("europe-west1".into()),
        partition: "googleapis.com",
        account: Some("demo-project".into()),
        resources: vec!["//storage.googleapis.com/projects/_/buckets/logs".into()],
        params: serde_json::json!({"bucket": "logs"}),
        idempotency_params: Vec::new(),
        protocol: "rest",
        presigned: false,
        parts: Vec::new(),
    }
}

fn decide_call(set: &RuleSet, call: Call) -> Decision {
    let agent = agent();
    set.decide(
        &Classification::Known(Box::new(call)),
        &Subject {
            agent: &agent,
            now: MONDAY_NOON,
        },
    )
}

#[test]
fn google_permissions_methods_projects_and_locations_are_matched() {
    let set = rules(
        "
defaults: {unmatched: deny}
rules:
  - {id: reads, match: {access: [Read, List]}, effect: allow}
  - {id: bucket-deletes, match: {action: 'storage.buckets.delete'}, effect: approve, approvers: [sec]}
  - {id: by-method, match: {operation: 'storage.buckets.setIamPolicy'}, effect: deny}
  - {id: sandbox, match: {cloud: gcp, project: sandbox-project, location: 'us-*'}, effect: allow}
",
    );
    let list = gcp_call("storage.buckets.list", "storage.buckets.list", "List");
    assert_eq!(decide_call(&set, list).effect, Effect::Allow);
    let delete = gcp_call("storage.buckets.delete", "storage.buckets.delete", "Write");
    let decided = decide_call(&set, delete.clone());
    assert_eq!(
        (decided.effect, decided.rule.as_deref()),
        (Effect::Approve, Some("bucket-deletes"))
    );
    let set_policy = gcp_call(
        "storage.buckets.setIamPolicy",
        "storage.buckets.setIamPolicy",
        "Permissions management",
    );
    assert_eq!(
        decide_call(&set, set_policy).rule.as_deref(),
        Some("by-method")
    );
    // `project:` and `location:` are the Google names of `account:` and `region:`.
    let write = gcp_call("storage.objects.insert", "storage.objects.create", "Write");
    assert_eq!(decide_call(&set, write.clone()).effect, Effect::Deny);
    let sandboxed = Call {
        account: Some("sandbox-project".into()),
        region: Some("us-central1".into()),
        ..write
    };
    assert_eq!(decide_call(&set, sandboxed).effect, Effect::Allow);
}

#[test]
fn the_plane_tells_resource_deletion_from_item_traffic() {
    let set = rules(
        "
defaults: {unmatched: deny}
rules:
  - {id: writes, match: {access: Write}, effect: allow}
  - {id: destruction, match: {action: ['*:Delete*', '*.delete'], plane: control}, effect: approve, approvers: [sec]}
",
    );
    assert_eq!(
        effect(&set, "sqs", "DeleteMessage", serde_json::json!({})),
        Effect::Allow
    );
    assert_eq!(
        effect(&set, "dynamodb", "DeleteItem", serde_json::json!({})),
        Effect::Allow
    );
    assert_eq!(
        effect(&set, "sqs", "DeleteQueue", serde_json::json!({})),
        Effect::Approve
    );
    assert_eq!(
        effect(&set, "s3", "DeleteObject", serde_json::json!({})),
        Effect::Approve
    );
    let entity = gcp_call(
        "datastore.projects.commit",
        "datastore.entities.delete",
        "Write",
    );
    assert_eq!(decide_call(&set, entity).effect, Effect::Allow);
    let bucket = gcp_call("storage.buckets.delete", "storage.buckets.delete", "Write");
    assert_eq!(decide_call(&set, bucket).effect, Effect::Approve);
}

#[test]
fn a_batch_is_decided_part_by_part_and_takes_its_strictest_part() {
    let set = rules(
        "
defaults: {unmatched: deny}
rules:
  - {id: reads, match: {access: [Read, List]}, effect: allow}
  - {id: scratch-deletes, match: {action: 'storage.objects.delete', resource: '//storage.googleapis.com/projects/_/buckets/scratch/*'}, effect: allow}
  - {id: other-deletes, match: {action: 'storage.objects.delete'}, effect: approve, approvers: [sec]}
",
    );
    let read_scratch = Call {
        resources: vec!["//storage.googleapis.com/projects/_/buckets/scratch/objects/a".into()],
        ..gcp_call("storage.objects.get", "storage.objects.get", "Read")
    };
    let delete_logs = Call {
        resources: vec!["//storage.googleapis.com/projects/_/buckets/logs/objects/b".into()],
        ..gcp_call("storage.objects.delete", "storage.objects.delete", "Write")
    };
    // Flattened, the scratch resource of the read would let the allow rule match the
    // delete of a logs object; decided part by part, the delete waits for approval.
    let batch = Call {
        operation: "batch",
        protocol: "batch",
        actions: Vec::new(),
        resources: Vec::new(),
        parts: vec![read_scratch.clone(), delete_logs],
        ..read_scratch.clone()
    };
    let decided = decide_call(&set, batch);
    assert_eq!(
        (decided.effect, decided.rule.as_deref()),
        (Effect::Approve, Some("other-deletes"))
    );
    assert!(
        decided.reasons[0].starts_with("part 2 (storage.objects.delete)"),
        "{:?}",
        decided.reasons
    );
    let reads_only = Call {
        operation: "batch",
        protocol: "batch",
        parts: vec![read_scratch.clone(), read_scratch.clone()],
        ..read_scratch
    };
    assert_eq!(decide_call(&set, reads_only).effect, Effect::Allow);
}

#[test]
fn a_batch_whose_parts_need_different_approvals_is_refused() {
    let set = rules(
        "
defaults: {unmatched: deny}
rules:
  - {id: deletes, match: {action: 'storage.objects.delete'}, effect: approve, approvers: [team]}
  - {id: iam, match: {action: 'storage.buckets.setIamPolicy'}, effect: approve, approvers: [security], quorum: 2}
",
    );
    let delete = gcp_call("storage.objects.delete", "storage.objects.delete", "Write");
    let policy = gcp_call(
        "storage.buckets.setIamPolicy",
        "storage.buckets.setIamPolicy",
        "Permissions management",
    );
    // Either order: one approval would take the first part's terms (one vote from `team`).
    for parts in [
        vec![delete.clone(), policy.clone()],
        vec![policy.clone(), delete.clone()],
    ] {
        let batch = Call {
            operation: "batch",
            protocol: "batch",
            parts,
            ..delete.clone()
        };
        let decided = decide_call(&set, batch);
        assert_eq!(decided.effect, Effect::Deny, "{:?}", decided.reasons);
        assert!(decided.message.unwrap().contains("send them separately"));
    }
    // Parts under the same terms share one approval.
    let batch = Call {
        operation: "batch",
        protocol: "batch",
        parts: vec![delete.clone(), delete.clone()],
        ..delete
    };
    assert_eq!(decide_call(&set, batch).effect, Effect::Approve);
}
