//! Rule evaluation cost with a large rule set (criterion): 10,000 rules over many services,
//! actions, resources and params, and one call decided against them.
//!
//!     cargo bench --bench rules

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use airlock::agents::Agent;
use airlock::cloud::{Classification, aws};
use airlock::rules::{RuleSet, Subject};
use criterion::{Criterion, criterion_group, criterion_main};

const SERVICES: [&str; 10] = [
    "s3", "ec2", "iam", "kms", "dynamodb", "lambda", "sqs", "sns", "rds", "logs",
];

/// `n` rules: a mix of action globs, resource patterns, params and agents.
fn rule_file(n: usize) -> String {
    let mut out = String::from("defaults: {unmatched: allow}\nrules:\n");
    for i in 0..n {
        let service = SERVICES[i % SERVICES.len()];
        let rule = match i % 4 {
            0 => {
                format!("  - {{id: r{i}, match: {{action: '{service}:Put*{i}'}}, effect: deny}}\n")
            }
            1 => format!(
                "  - {{id: r{i}, match: {{service: {service}, resource: 'arn:aws:{service}:::team-{i}/*'}}, effect: approve, approvers: [g{i}]}}\n"
            ),
            2 => format!(
                "  - {{id: r{i}, match: {{agent: 'agent-{i}-*', action: '{service}:*'}}, effect: deny}}\n"
            ),
            _ => format!(
                "  - {{id: r{i}, match: {{action: '{service}:Get*', params: [{{path: Key, glob: 'secret-{i}/*'}}]}}, effect: deny}}\n"
            ),
        };
        out.push_str(&rule);
    }
    out
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.yaml"), rule_file(10_000)).unwrap();
    let rules = RuleSet::load(dir.path()).unwrap();
    let call = aws::describe(
        "s3",
        "CopyObject",
        serde_json::json!({"Bucket": "reports", "Key": "q1.csv", "CopySource": "src/q0.csv"}),
        Some("us-east-1"),
        Some("123456789012"),
    )
    .unwrap();
    let classification = Classification::Known(Box::new(call));
    let agent = Agent {
        name: "ci-deployer".into(),
        owner: "alice@example.com".into(),
        role: String::new(),
        account: "123456789012".into(),
        labels: BTreeMap::new(),
        access_key_id: String::new(),
        created: String::new(),
    };
    let subject = Subject {
        agent: &agent,
        now: 1_767_614_400,
    };
    c.bench_function("decide_10000_rules_copyobject", |b| {
        b.iter(|| std::hint::black_box(rules.decide(&classification, &subject)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
