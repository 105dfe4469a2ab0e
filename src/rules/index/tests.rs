//! The index may offer extra candidates but must never drop a rule that matches.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::cloud::aws;
use crate::rules::Subject;
use crate::rules::matcher::MatchSpec;
use crate::rules::tests::agent_named as agent;

fn matcher(yaml: &str) -> Matcher {
    let spec: MatchSpec = serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    Matcher::compile(&spec).unwrap_or_else(|e| panic!("{yaml}: {e:?}"))
}

fn index(matchers: &[Matcher]) -> RuleIndex {
    RuleIndex::build(matchers.iter())
}

fn call(service: &str, operation: &str, params: serde_json::Value) -> Call {
    aws::describe(service, operation, params, Some("us-east-1"), None).unwrap()
}

/// The candidates for one action of `call`, each once.
fn candidates(index: &RuleIndex, call: &Call, action: &str, agent: &Agent) -> BTreeSet<u32> {
    let mut found = BTreeSet::new();
    index.candidates(call, action, agent, |list| found.extend(list));
    found
}

#[test]
fn a_rule_is_filed_under_its_least_shared_key_and_found_through_it() {
    let matchers: Vec<Matcher> = [
        // 0: the only condition: its action.
        "{action: 's3:Put*Acl'}",
        // 1: the only condition with keys: the service.
        "{service: S3, access: Write}",
        // 2, 3: `s3:*` is shared; the agents are not.
        "{agent: 'deploy-*', action: 's3:*'}",
        "{agent: ci-deployer, action: 's3:*'}",
        // 4, 5: the service is shared (with 1); the resources are not.
        "{service: s3, resource: 'arn:aws:s3:::reports/*'}",
        "{service: s3, resource: ['arn:aws:s3:::logs/*', 'arn:aws:s3:::audit/*']}",
        // 6, 7: `s3:Get*` is shared; the parameters are not.
        "{action: 's3:Get*', params: [{path: Key, glob: 'secret/*'}]}",
        "{action: 's3:Get*', params: [{path: 'Tags[].Key', equals: owner}]}",
        // 8–11: no condition with keys for every value: candidates everywhere.
        "{action: ['s3:GetObject', '*:Delete*']}",
        "{agent: '*-bot'}",
        "{resource: ['arn:aws:s3:::reports/*', 'regex:arn:aws:s3:::.*']}",
        "{access: Read, params: [{path: Key, regex: 'q.*'}]}",
    ]
    .iter()
    .map(|m| matcher(m))
    .collect();
    let index = index(&matchers);
    let key = vec![PathStep::Key("Key".into())];
    let tags = vec![
        PathStep::Key("Tags".into()),
        PathStep::AnyElement,
        PathStep::Key("Key".into()),
    ];
    assert_eq!(index.anywhere, [8, 9, 10, 11]);
    assert_eq!(index.actions["s3"][&(Some('p'), Some('l'))], [0]);
    assert_eq!(index.call_services["s3"], [1]);
    assert_eq!(index.agents.lists["deploy-"], [2]);
    assert_eq!(index.agents.lists["ci-deployer"], [3]);
    assert_eq!(index.resources.lists["arn:aws:s3:::reports/"], [4]);
    assert_eq!(index.resources.lists["arn:aws:s3:::logs/"], [5]);
    assert_eq!(index.resources.lists["arn:aws:s3:::audit/"], [5]);
    assert_eq!(index.params[&key].lists["secret/"], [6]);
    assert_eq!(index.params[&tags].lists["owner"], [7]);

    let everywhere = [8, 9, 10, 11];
    let found = |call: &Call, action: &str, agent_name: &str| {
        let mut found = candidates(&index, call, action, &agent(agent_name));
        for i in everywhere {
            assert!(found.remove(&i), "{i} is a candidate everywhere");
        }
        found.into_iter().collect::<Vec<_>>()
    };
    // Through the agent and the resource; no other key fits.
    let get = call(
        "s3",
        "GetObject",
        serde_json::json!({"Bucket": "logs", "Key": "q1.csv"}),
    );
    assert_eq!(found(&get, "s3:GetObject", "ci-deployer"), [1, 3, 5]);
    assert_eq!(found(&get, "s3:GetObject", "ci-deployer-2"), [1, 3, 5]);
    // Through the action's letters, the agent's prefix, a resource and a parameter.
    let put = call(
        "s3",
        "PutObjectAcl",
        serde_json::json!({"Bucket": "reports", "Key": "secret/a", "Tags": [{"Key": "owner"}]}),
    );
    assert_eq!(
        found(&put, "s3:PutObjectAcl", "deploy-bot"),
        [0, 1, 2, 4, 6, 7]
    );
    // Action letters compare case-insensitively; the last letter must fit too.
    assert_eq!(found(&put, "S3:PUTOBJECTACL", "x"), [0, 1, 4, 6, 7]);
    assert_eq!(found(&put, "s3:PutObject", "x"), [1, 4, 6, 7]);
    // Another service: only the rules without keys.
    let ec2 = call("ec2", "DescribeInstances", serde_json::json!({}));
    assert_eq!(found(&ec2, "ec2:DescribeInstances", "c"), Vec::<u32>::new());
}

const ACTIONS: [&str; 12] = [
    "s3:GetObject",
    "s3:Get*",
    "s3:*Object",
    "s3:Put*Acl",
    "S3:*",
    "*:Delete*",
    "ec2:*",
    "iam:attachrolepolicy",
    "s3:P?tObject",
    "s3:{Get,Put}Object",
    "s3:PutObjectAcl",
    "kms:*",
];
const SERVICES: [&str; 4] = ["s3", "S3", "ec*", "iam"];
const AGENTS: [&str; 5] = ["ci-*", "ci-deployer", "*-bot", "deploy-*", "ci"];
const RESOURCES: [&str; 5] = [
    "arn:aws:s3:::reports/*",
    "arn:aws:s3:::*",
    "regex:arn:aws:s3:::rep.*",
    "arn:aws:s3:::team-*",
    "arn:aws:ec2:*",
];
const PARAMS: [&str; 6] = [
    "{path: Key, glob: 'secret/*'}",
    "{path: Key, equals: q1.csv}",
    "{path: Bucket, glob: 'rep*'}",
    "{path: 'Tags[].Key', equals: owner}",
    "{path: Key, regex: 'q.*'}",
    "{path: MaxCount, gt: 1}",
];

/// A `match:` block from the lists above: each condition absent, or one or two values.
fn match_block() -> impl Strategy<Value = String> {
    let field = |name: &'static str, values: &'static [&'static str]| {
        prop::option::of(prop::collection::btree_set(0..values.len(), 1..=2)).prop_map(
            move |picked| match picked {
                None => String::new(),
                Some(picked) => {
                    let values: Vec<String> =
                        picked.iter().map(|&i| format!("'{}'", values[i])).collect();
                    format!("{name}: [{}], ", values.join(", "))
                }
            },
        )
    };
    (
        field("action", &ACTIONS),
        field("service", &SERVICES),
        field("agent", &AGENTS),
        field("resource", &RESOURCES),
        prop::collection::vec(0..PARAMS.len(), 0..=2),
        prop::option::of(prop::bool::ANY),
    )
        .prop_map(|(action, service, agent, resource, params, write)| {
            let params: Vec<&str> = params.iter().map(|&i| PARAMS[i]).collect();
            let access = match write {
                None => "",
                Some(true) => "access: Write, ",
                Some(false) => "access: [Read, List], ",
            };
            format!(
                "{{{action}{service}{agent}{resource}{access}params: [{}]}}",
                params.join(", ")
            )
        })
}

proptest! {
    /// The property the index exists for: every rule that matches a call is a candidate.
    #[test]
    fn every_matching_rule_is_a_candidate(blocks in prop::collection::vec(match_block(), 1..24)) {
        let matchers: Vec<Matcher> = blocks.iter().map(|b| matcher(b)).collect();
        let index = index(&matchers);
        let calls = [
            call("s3", "GetObject", serde_json::json!({"Bucket": "reports", "Key": "secret/a"})),
            call("s3", "PutObjectAcl", serde_json::json!({"Bucket": "team-a", "Key": "q1.csv"})),
            call("s3", "CopyObject", serde_json::json!({"Bucket": "reports", "Key": "q1.csv", "CopySource": "logs/x"})),
            call("s3", "DeleteBucket", serde_json::json!({"Bucket": "rep"})),
            call("ec2", "RunInstances", serde_json::json!({"MaxCount": "5", "Tags": [{"Key": "owner"}]})),
            call("iam", "AttachRolePolicy", serde_json::json!({"RoleName": "r", "PolicyArn": "p"})),
            call("kms", "Decrypt", serde_json::json!({"Key": "secret/k"})),
        ];
        for name in ["ci-deployer", "deploy-bot", "ci", "x"] {
            let agent = agent(name);
            let subject = Subject { agent: &agent, now: 1_767_614_400 };
            for call in &calls {
                for action in &call.actions {
                    let found = candidates(&index, call, action.name, &agent);
                    for (i, m) in matchers.iter().enumerate() {
                        if m.matches(call, action.name, action.access, &subject) {
                            prop_assert!(
                                found.contains(&(i as u32)),
                                "{} matches {} by {name} but is not a candidate", blocks[i], action.name
                            );
                        }
                    }
                }
            }
        }
    }
}
