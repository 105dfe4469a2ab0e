//! Rule evaluation cost with a large rule set: 10,000 rules over many services, actions,
//! resources, params and agents, and calls decided against them. Criterion measures the
//! mean of each call's decision; then single decisions are timed one by one, the calls
//! interleaved, and their p50, p99 and maximum printed (the target is a p99).
//!
//!     cargo bench --bench rules

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use airlock::agents::Agent;
use airlock::cloud::{Classification, aws};
use airlock::rules::{Effect, RuleSet, Subject};
use criterion::{Criterion, criterion_group};

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

fn agent(name: &str) -> Agent {
    Agent {
        name: name.into(),
        owner: "alice@example.com".into(),
        role: None,
        account: Some("123456789012".into()),
        gcp_service_account: None,
        gcp_project: None,
        labels: BTreeMap::new(),
        access_key_id: String::new(),
        created: String::new(),
    }
}

/// A call to decide: its bench name, the call, who makes it, and the rule that must
/// decide it (`None`: no rule matches, the default does).
struct Case {
    name: &'static str,
    call: Classification,
    agent: Agent,
    decided_by: Option<&'static str>,
}

fn case(
    name: &'static str,
    (service, operation, params): (&str, &str, serde_json::Value),
    agent_name: &str,
    decided_by: Option<&'static str>,
) -> Case {
    let call = aws::describe(
        service,
        operation,
        params,
        Some("us-east-1"),
        Some("123456789012"),
    )
    .unwrap();
    Case {
        name,
        call: Classification::Known(Box::new(call)),
        agent: agent(agent_name),
        decided_by,
    }
}

/// 10,000 rules and the calls decided against them; each call's decision is checked, so
/// the benchmark measures what it claims to.
fn fixture() -> (RuleSet, Vec<Case>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.yaml"), rule_file(10_000)).unwrap();
    let rules = RuleSet::load(dir.path()).unwrap();
    use serde_json::json;
    let cases = vec![
        // Two actions; no rule matches: S3 has 500 `s3:Put*<n>` rules and 500 agent rules.
        case(
            "copyobject",
            (
                "s3",
                "CopyObject",
                json!({"Bucket": "reports", "Key": "q1.csv", "CopySource": "src/q0.csv"}),
            ),
            "ci-deployer",
            None,
        ),
        // One of the 500 S3 agent rules matches (`agent-10-*`, `s3:*`).
        case(
            "deleteobject_by_agent_rule",
            (
                "s3",
                "DeleteObject",
                json!({"Bucket": "reports", "Key": "q1.csv"}),
            ),
            "agent-10-runner",
            Some("r10"),
        ),
        // EC2 has 500 service-wide rules on resources; none matches.
        case(
            "terminateinstances",
            (
                "ec2",
                "TerminateInstances",
                json!({"InstanceIds": ["i-0abc", "i-0def"]}),
            ),
            "ci-deployer",
            None,
        ),
        // One of the 500 `lambda:Get*` rules on a parameter matches.
        case(
            "getfunction_by_param_rule",
            (
                "lambda",
                "GetFunction",
                json!({"FunctionName": "billing", "Key": "secret-15/k"}),
            ),
            "ci-deployer",
            Some("r15"),
        ),
    ];
    for case in &cases {
        let decision = rules.decide(&case.call, &subject(&case.agent));
        assert_eq!(decision.rule.as_deref(), case.decided_by, "{}", case.name);
        let expected = if case.decided_by.is_some() {
            Effect::Deny
        } else {
            Effect::Allow
        };
        assert_eq!(decision.effect, expected, "{}", case.name);
    }
    (rules, cases)
}

fn subject(agent: &Agent) -> Subject<'_> {
    Subject {
        agent,
        now: 1_767_614_400,
    }
}

fn bench(c: &mut Criterion) {
    let (rules, cases) = fixture();
    for case in &cases {
        let subject = subject(&case.agent);
        c.bench_function(&format!("decide_10000_rules_{}", case.name), |b| {
            b.iter(|| black_box(rules.decide(black_box(&case.call), &subject)))
        });
    }
}

/// Single decisions timed one by one (the calls interleaved): p50, p99 and maximum per call.
fn single_decisions(rounds: usize) {
    let (rules, cases) = fixture();
    let mut times: Vec<Vec<Duration>> = cases.iter().map(|_| Vec::with_capacity(rounds)).collect();
    for _ in 0..rounds {
        for (case, times) in cases.iter().zip(&mut times) {
            let subject = subject(&case.agent);
            let start = Instant::now();
            black_box(rules.decide(black_box(&case.call), &subject));
            times.push(start.elapsed());
        }
    }
    println!("single decisions, {rounds} per call, calls interleaved:");
    for (case, times) in cases.iter().zip(&mut times) {
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        println!(
            "  decide_10000_rules_{:<28} p50 {:>9.2?}  p99 {:>9.2?}  max {:>9.2?}",
            case.name,
            at(0.50),
            at(0.99),
            at(1.0)
        );
    }
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test` runs each bench once, to prove it works: a few rounds then.
    let measuring = std::env::args().any(|a| a == "--bench");
    single_decisions(if measuring { 100_000 } else { 10 });
}
