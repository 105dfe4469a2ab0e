//! The Google classifier, judged by the real binary (`airlock explain --jsonl`) on a
//! corpus that google-api-python-client itself serialized: one request per method of all
//! 610 discovery documents it ships, plus regional, locational and mTLS hosts, media
//! uploads (simple, multipart, resumable start and chunk), downloads, batches and the
//! gcloud forms (tests/gcp/make_corpus.py).
//!
//! A wrong answer (a different known method) is worse than an unknown: none is allowed,
//! except where this test proves the two methods wire-identical (same request method, same
//! canonical host, and the request's path matches the other method's URL template with its
//! parameter patterns), so that no classifier could tell them apart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::process::Command;

mod support;

use regex::Regex;
use serde_json::Value;
use support::gcp_corpus::corpus;

const BIN: &str = env!("CARGO_BIN_EXE_airlock");

/// Accuracy floor: right API and method id (or a proven wire-identical one).
const MIN_ACCURACY: f64 = 99.0;

/// Privileged methods: every line (any API version, any form, inside batches too) must
/// name the API, the method id and this IAM permission exactly.
const PRIVILEGED: &[(&str, &str)] = &[
    (
        "cloudresourcemanager.projects.setIamPolicy",
        "resourcemanager.projects.setIamPolicy",
    ),
    (
        "cloudresourcemanager.projects.delete",
        "resourcemanager.projects.delete",
    ),
    (
        "storage.buckets.setIamPolicy",
        "storage.buckets.setIamPolicy",
    ),
    (
        "iam.projects.serviceAccounts.keys.create",
        "iam.serviceAccountKeys.create",
    ),
    (
        "iam.projects.serviceAccounts.setIamPolicy",
        "iam.serviceAccounts.setIamPolicy",
    ),
    ("storage.buckets.delete", "storage.buckets.delete"),
    ("storage.objects.delete", "storage.objects.delete"),
    ("bigquery.jobs.insert", "bigquery.jobs.create"),
    // The Cloud SQL Admin API's method ids are `sql.*` (sqladmin:v1, sqladmin:v1beta4).
    ("sql.instances.export", "cloudsql.instances.export"),
    (
        "firestore.projects.databases.exportDocuments",
        "datastore.databases.export",
    ),
    ("compute.instances.delete", "compute.instances.delete"),
    (
        "cloudkms.projects.locations.keyRings.cryptoKeys.cryptoKeyVersions.destroy",
        "cloudkms.cryptoKeyVersions.destroy",
    ),
];

/// APIs whose privileged lines must be present in the corpus (not only "any version").
const PRIVILEGED_APIS: &[(&str, &str)] = &[
    (
        "cloudresourcemanager:v1",
        "cloudresourcemanager.projects.setIamPolicy",
    ),
    (
        "cloudresourcemanager:v3",
        "cloudresourcemanager.projects.setIamPolicy",
    ),
];

fn read_jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `airlock explain --jsonl FILE`: one result per input line.
fn explain(path: &std::path::Path) -> Vec<Value> {
    let output = Command::new(BIN)
        .args(["explain", "--jsonl"])
        .arg(path)
        .output()
        .expect("run airlock explain");
    assert!(
        output.status.success(),
        "explain failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    read_jsonl(&String::from_utf8(output.stdout).unwrap())
}

/// One way a method looks on the wire, from a corpus line.
struct WireForm {
    root: String,
    method: String,
    template: Template,
}

/// A URL path template (`/v1/{+name}:setIamPolicy`) with its parameters' discovery
/// patterns, matched against a request path: `{+x}` (reserved expansion, slashes kept)
/// must match x's pattern in place; `{x}` (simple expansion: one segment, `/` sent as
/// `%2F`) is one segment whose percent-decoded value must match x's pattern.
struct Template {
    regex: Regex,
    /// Capture group → the pattern its decoded value must match (simple variables).
    simple: Vec<(usize, Option<Regex>)>,
}

impl Template {
    fn new(template: &str, patterns: &serde_json::Map<String, Value>) -> Template {
        let var = Regex::new(r"\{(\+?)([^}]+)\}").unwrap();
        let pattern = |name: &str| {
            patterns
                .get(name)
                .and_then(Value::as_str)
                .map(|p| p.trim_start_matches('^').trim_end_matches('$').to_string())
                .filter(|p| Regex::new(p).is_ok())
        };
        let mut out = String::from("^");
        let mut simple = Vec::new();
        let mut last = 0;
        for caps in var.captures_iter(template) {
            let whole = caps.get(0).unwrap();
            out.push_str(&regex::escape(&template[last..whole.start()]));
            if &caps[1] == "+" {
                let piece = pattern(&caps[2]).unwrap_or_else(|| ".+".into());
                out.push_str(&format!("(?:{piece})"));
            } else {
                out.push_str("([^/]+)");
                let check = pattern(&caps[2]).map(|p| Regex::new(&format!("^(?:{p})$")).unwrap());
                simple.push((simple.len() + 1, check));
            }
            last = whole.end();
        }
        out.push_str(&regex::escape(&template[last..]));
        out.push('$');
        let regex = Regex::new(&out).unwrap_or_else(|e| panic!("template {template}: {e}"));
        Template { regex, simple }
    }

    fn matches(&self, path: &str) -> bool {
        let Some(caps) = self.regex.captures(path) else {
            return false;
        };
        self.simple.iter().all(|(group, check)| {
            let raw = caps.get(*group).map_or("", |m| m.as_str());
            let value = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
            check.as_ref().is_none_or(|re| re.is_match(&value))
        })
    }
}

/// The method a request means: `x-http-method-override` (a GET whose URL was too long,
/// sent as a POST by google-api-python-client) or the request method.
fn effective_method(input: &Value) -> &str {
    input["headers"]
        .as_object()
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-http-method-override"))
                .and_then(|(_, v)| v.as_str())
        })
        .unwrap_or_else(|| input["method"].as_str().unwrap())
}

fn url_path(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .map_or("/", |start| &after_scheme[start..]);
    path.split(['?', '#']).next().unwrap_or(path)
}

/// Every wire form of every (api, method id) in the corpus.
fn wire_forms(inputs: &[Value]) -> HashMap<(String, String), Vec<WireForm>> {
    let mut forms: HashMap<(String, String), Vec<WireForm>> = HashMap::new();
    for input in inputs {
        let e = &input["expect"];
        if e["protocol"] == "batch" {
            continue;
        }
        let patterns = e["patterns"].as_object().cloned().unwrap_or_default();
        forms
            .entry((
                e["api"].as_str().unwrap().to_string(),
                e["operation"].as_str().unwrap().to_string(),
            ))
            .or_default()
            .push(WireForm {
                root: e["root"].as_str().unwrap().to_string(),
                method: effective_method(input).to_string(),
                template: Template::new(e["template"].as_str().unwrap(), &patterns),
            });
    }
    forms
}

/// Whether the request of `input` is, on the wire, also a valid call of `(api, op)`: the
/// same (effective) request method to the same canonical host, its path matching a
/// template of it.
fn wire_identical(
    forms: &HashMap<(String, String), Vec<WireForm>>,
    input: &Value,
    api: &str,
    op: &str,
) -> bool {
    let root = input["expect"]["root"].as_str().unwrap();
    let path = url_path(input["url"].as_str().unwrap());
    let method = effective_method(input);
    forms
        .get(&(api.to_string(), op.to_string()))
        .is_some_and(|list| {
            list.iter()
                .any(|f| f.root == root && f.method == method && f.template.matches(path))
        })
}

#[derive(Default)]
struct Tally {
    lines: usize,
    right: usize,
    identical: usize,
    unknown: usize,
    wrong: usize,
}

/// How one (non-batch) answer compares with what the client sent.
enum Verdict {
    Right,
    Identical,
    Unknown(String),
    Wrong(String),
}

fn judge(
    forms: &HashMap<(String, String), Vec<WireForm>>,
    input: &Value,
    api: &str,
    op: &str,
    result: &Value,
) -> Verdict {
    if result["api"] == api && result["operation"] == op {
        return Verdict::Right;
    }
    match (result["api"].as_str(), result["operation"].as_str()) {
        (Some(got_api), Some(got_op)) => {
            if wire_identical(forms, input, got_api, got_op) {
                Verdict::Identical
            } else {
                Verdict::Wrong(format!("{got_api} {got_op}"))
            }
        }
        _ => Verdict::Unknown(
            result["reason"]
                .as_str()
                .or(result["error"].as_str())
                .unwrap_or("no api/operation in the answer")
                .to_string(),
        ),
    }
}

fn has_permission(result: &Value, permission: &str) -> bool {
    result["actions"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| x["name"] == permission))
}

#[test]
fn every_discovery_method_is_classified_by_the_binary() {
    let corpus = corpus();
    let inputs = read_jsonl(&std::fs::read_to_string(&corpus).unwrap());
    let results = explain(&corpus);
    assert_eq!(inputs.len(), results.len(), "one result line per request");
    let forms = wire_forms(&inputs);
    let permission_of: HashMap<&str, &str> = PRIVILEGED.iter().copied().collect();

    let mut total = Tally::default();
    let mut by_form: BTreeMap<String, Tally> = BTreeMap::new();
    let mut wrong: Vec<String> = Vec::new();
    let mut identical: Vec<String> = Vec::new();
    let mut unknown: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut privileged_bad: Vec<String> = Vec::new();
    let mut privileged_seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    let (mut batches, mut batch_parts) = (0usize, 0usize);
    // The protocol (`rest`, `media`, `batch`) shapes refusals; the service names the API.
    let mut protocol_bad: Vec<String> = Vec::new();

    for (input, result) in inputs.iter().zip(&results) {
        let e = &input["expect"];
        let api = e["api"].as_str().unwrap();
        let op = e["operation"].as_str().unwrap();
        let form = e["form"].as_str().unwrap();
        let tally = by_form.entry(form.to_string()).or_default();
        tally.lines += 1;
        total.lines += 1;
        let label = format!("{api} {op} [{form}] {} {}", input["method"], input["url"]);

        if result["api"] == api
            && (result["protocol"] != e["protocol"] || result["service"] != e["service"])
        {
            protocol_bad.push(format!(
                "{label}: protocol {} service {}",
                result["protocol"], result["service"]
            ));
        }

        // A batch is right when every inner call is; the outer request is no method.
        let verdicts: Vec<(String, String, Verdict, &Value)> = if e["protocol"] == "batch" {
            batches += 1;
            let want = e["parts"].as_array().unwrap();
            let got = result["parts"].as_array().cloned().unwrap_or_default();
            batch_parts += want.len();
            if got.len() != want.len() {
                let why = format!(
                    "{} inner calls reported for {}: {}",
                    got.len(),
                    want.len(),
                    result["reason"].as_str().unwrap_or("")
                );
                // Every inner call counts as unknown (privileged ones as not exact).
                want.iter()
                    .map(|w| {
                        let (wa, wo) =
                            (w["api"].as_str().unwrap(), w["operation"].as_str().unwrap());
                        (
                            wa.to_string(),
                            wo.to_string(),
                            Verdict::Unknown(why.clone()),
                            result,
                        )
                    })
                    .collect()
            } else {
                want.iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let (wa, wo) =
                            (w["api"].as_str().unwrap(), w["operation"].as_str().unwrap());
                        let part = &result["parts"][i];
                        let verdict = if part["api"] == wa && part["operation"] == wo {
                            Verdict::Right
                        } else if part["operation"].is_string() {
                            Verdict::Wrong(format!(
                                "part {i}: {} {}",
                                part["api"], part["operation"]
                            ))
                        } else {
                            Verdict::Unknown(format!("part {i}: {}", part["reason"]))
                        };
                        (wa.to_string(), wo.to_string(), verdict, part)
                    })
                    .collect()
            }
        } else {
            vec![(
                api.into(),
                op.into(),
                judge(&forms, input, api, op, result),
                result,
            )]
        };

        // The line's verdict: the worst of its calls.
        let mut line_verdict = Verdict::Right;
        for (call_api, call_op, verdict, answer) in verdicts {
            if let Some(permission) = permission_of.get(call_op.as_str()) {
                *privileged_seen
                    .entry((call_api.clone(), call_op.clone()))
                    .or_default() += 1;
                // Exact: the API too, unless the answer is a proven wire-identical twin
                // with the same method id (compute:preview serves compute/v1/ paths).
                let same_method = match &verdict {
                    Verdict::Right => true,
                    Verdict::Identical => answer["operation"] == call_op.as_str(),
                    _ => false,
                };
                let exact = same_method && has_permission(answer, permission);
                if !exact {
                    privileged_bad.push(format!(
                        "{label}: got {} {} actions {}",
                        answer["api"], answer["operation"], answer["actions"]
                    ));
                }
            }
            line_verdict = match (line_verdict, verdict) {
                (Verdict::Wrong(w), _) | (_, Verdict::Wrong(w)) => Verdict::Wrong(w),
                (Verdict::Unknown(u), _) | (_, Verdict::Unknown(u)) => Verdict::Unknown(u),
                (Verdict::Identical, _) | (_, Verdict::Identical) => Verdict::Identical,
                _ => Verdict::Right,
            };
        }
        let tally = by_form.get_mut(form).unwrap();
        match line_verdict {
            Verdict::Right => {
                total.right += 1;
                tally.right += 1;
            }
            Verdict::Identical => {
                total.identical += 1;
                tally.identical += 1;
                identical.push(format!(
                    "{label} → {} {}",
                    result["api"], result["operation"]
                ));
            }
            Verdict::Unknown(why) => {
                total.unknown += 1;
                tally.unknown += 1;
                unknown
                    .entry(api.to_string())
                    .or_default()
                    .push(format!("{op} [{form}]: {why}"));
            }
            Verdict::Wrong(got) => {
                total.wrong += 1;
                tally.wrong += 1;
                wrong.push(format!("{label} → {got}"));
            }
        }
    }

    let pct = |n: usize, d: usize| n as f64 / d.max(1) as f64 * 100.0;
    let accuracy = pct(total.right + total.identical, total.lines);
    let mut report = format!(
        "google-api-python-client corpus: {} requests ({batches} batches with {batch_parts} inner calls)\n\
         right API and method id: {} + {} proven wire-identical = {accuracy:.2}%; unknown {}; WRONG {}\n\
         privileged: {} lines checked, {} not exact\n\nby form (lines: right / wire-identical / unknown / wrong):\n",
        total.lines,
        total.right,
        total.identical,
        total.unknown,
        total.wrong,
        privileged_seen.values().sum::<usize>(),
        privileged_bad.len(),
    );
    for (form, t) in &by_form {
        report.push_str(&format!(
            "  {form:<28} {:>6}: {:>6} / {:>4} / {:>5} / {:>4}  ({:.2}%)\n",
            t.lines,
            t.right,
            t.identical,
            t.unknown,
            t.wrong,
            pct(t.right + t.identical, t.lines)
        ));
    }
    report.push_str(&format!("\nWRONG answers ({}):\n", wrong.len()));
    for w in &wrong {
        report.push_str(&format!("  {w}\n"));
    }
    report.push_str(&format!(
        "\nprivileged not exact ({}):\n",
        privileged_bad.len()
    ));
    for p in &privileged_bad {
        report.push_str(&format!("  {p}\n"));
    }
    report.push_str(&format!(
        "\nright API, other protocol or service ({}):\n",
        protocol_bad.len()
    ));
    for p in &protocol_bad {
        report.push_str(&format!("  {p}\n"));
    }
    report.push_str(&format!("\nunknown, by API ({}):\n", total.unknown));
    for (api, list) in &unknown {
        report.push_str(&format!("  {api} ({}):\n", list.len()));
        for item in list {
            report.push_str(&format!("    {item}\n"));
        }
    }
    report.push_str(&format!(
        "\nproven wire-identical answers ({}):\n",
        identical.len()
    ));
    for i in &identical {
        report.push_str(&format!("  {i}\n"));
    }
    // cargo hides a passing test's output: tests/run.sh prints this file.
    std::fs::write(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/gcp-classification-report.txt"
        ),
        &report,
    )
    .unwrap();
    let head: String = report.lines().take(20).collect::<Vec<_>>().join("\n");
    println!("{head}\n(full report: target/gcp-classification-report.txt)");

    // 610 documents, 603 distinct ids (a few files repeat one), 27,998 distinct methods.
    let apis: std::collections::BTreeSet<_> = inputs
        .iter()
        .filter_map(|i| i["expect"]["api"].as_str())
        .collect();
    let methods = by_form.get("rest").map_or(0, |t| t.lines);
    assert!(
        apis.len() >= 600 && methods >= 27_900,
        "the corpus covers only {} APIs and {methods} methods",
        apis.len()
    );
    for form in [
        "rest",
        "regional",
        "locational",
        "mtls",
        "global-params",
        "long-uri",
        "media-simple",
        "media-multipart",
        "resumable-start",
        "resumable-chunk",
        "download",
        "batch",
        "hand:download-service",
        "hand:gcloud-resumable-start",
        "hand:gcloud-resumable-chunk",
        "hand:method-override",
    ] {
        assert!(by_form.contains_key(form), "no {form} line in the corpus");
    }
    for (op, _) in PRIVILEGED {
        assert!(
            privileged_seen.keys().any(|(_, o)| o == op),
            "privileged {op} is not in the corpus"
        );
    }
    for (api, op) in PRIVILEGED_APIS {
        assert!(
            privileged_seen.contains_key(&(api.to_string(), op.to_string())),
            "privileged {api} {op} is not in the corpus"
        );
    }
    assert!(
        privileged_bad.is_empty(),
        "{} privileged calls not classified exactly (API, method id, permission), e.g. {}",
        privileged_bad.len(),
        privileged_bad[0]
    );
    assert!(
        wrong.is_empty(),
        "{} WRONG answers (a different method, not provably wire-identical), e.g. {}",
        wrong.len(),
        wrong[0]
    );
    assert!(
        protocol_bad.is_empty(),
        "{} answers with the right API but another protocol or service, e.g. {}",
        protocol_bad.len(),
        protocol_bad[0]
    );
    assert!(
        accuracy >= MIN_ACCURACY,
        "accuracy {accuracy:.2}% is below {MIN_ACCURACY}%"
    );
}

#[test]
fn twenty_five_thousand_requests_go_through_explain() {
    const N: usize = 25_000;
    let text = std::fs::read_to_string(corpus()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("requests.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for line in text.lines().cycle().take(N) {
        writeln!(file, "{line}").unwrap();
    }
    file.into_inner().unwrap().sync_all().unwrap();
    let results = explain(&path);
    assert_eq!(results.len(), N, "one answer per request");
    let errors = results.iter().filter(|r| r.get("error").is_some()).count();
    assert_eq!(errors, 0, "requests the binary could not even read");
}

#[test]
fn the_wire_identity_proof_is_not_vacuous() {
    // Two methods with one template: provably identical on the wire.
    let patterns = |key: &str, p: &str| serde_json::json!({ key: p }).as_object().cloned().unwrap();
    let general = Template::new(
        "/v2/{+name}",
        &patterns("name", "^[^/]+/[^/]+/exclusions/[^/]+$"),
    );
    let projects = Template::new(
        "/v2/{+name}",
        &patterns("name", "^projects/[^/]+/exclusions/[^/]+$"),
    );
    assert!(general.matches("/v2/projects/p/exclusions/e"));
    assert!(projects.matches("/v2/projects/p/exclusions/e"));
    // ... but a folder's exclusion is not a project's, and other paths match neither.
    assert!(!projects.matches("/v2/folders/f/exclusions/e"));
    assert!(!general.matches("/v2/projects/p/sinks/s"));
    // A simple `{x}` is one segment; the verb suffix is literal.
    let bucket = Template::new("/storage/v1/b/{bucket}", &serde_json::Map::new());
    assert!(bucket.matches("/storage/v1/b/my-bucket"));
    assert!(!bucket.matches("/storage/v1/b/my-bucket/o"));
    let set = Template::new(
        "/v1/{+resource}:setIamPolicy",
        &patterns("resource", "^projects/[^/]+$"),
    );
    assert!(!set.matches("/v1/projects/p:getIamPolicy"));
    // A simple `{x}` is sent percent-encoded: its decoded value must match the pattern.
    let policy = Template::new(
        "/compute/v1/locations/global/firewallPolicies/{firewallPolicy}",
        &patterns("firewallPolicy", "(firewallPolicies/)?[0-9]{0,20}"),
    );
    assert!(policy.matches("/compute/v1/locations/global/firewallPolicies/firewallPolicies%2F0"));
    assert!(!policy.matches("/compute/v1/locations/global/firewallPolicies/my-policy"));
    assert_eq!(url_path("https://h.googleapis.com/a/b?x=1"), "/a/b");
}

#[test]
fn judging_tells_a_wrong_answer_from_a_wire_identical_twin() {
    let line = |op: &str, method: &str, url: &str, template: &str, var: &str, pattern: &str| {
        serde_json::json!({
            "method": method, "url": url, "headers": {},
            "expect": {"api": "logging:v2", "service": "logging", "operation": op,
                       "protocol": "rest", "form": "rest",
                       "root": "https://logging.googleapis.com/",
                       "template": template, "patterns": {var: pattern}}
        })
    };
    let general = line(
        "logging.exclusions.get",
        "GET",
        "https://logging.googleapis.com/v2/projects/p/exclusions/e?alt=json",
        "/v2/{+name}",
        "name",
        "^[^/]+/[^/]+/exclusions/[^/]+$",
    );
    let projects = line(
        "logging.projects.exclusions.get",
        "GET",
        "https://logging.googleapis.com/v2/projects/p/exclusions/e?alt=json",
        "/v2/{+name}",
        "name",
        "^projects/[^/]+/exclusions/[^/]+$",
    );
    let create = line(
        "logging.projects.exclusions.create",
        "POST",
        "https://logging.googleapis.com/v2/projects/p/exclusions?alt=json",
        "/v2/{+parent}/exclusions",
        "parent",
        "^projects/[^/]+$",
    );
    let sinks = line(
        "logging.projects.sinks.get",
        "GET",
        "https://logging.googleapis.com/v2/projects/p/sinks/s?alt=json",
        "/v2/{+sinkName}",
        "sinkName",
        "^projects/[^/]+/sinks/[^/]+$",
    );
    let forms = wire_forms(&[general.clone(), projects, create, sinks]);
    let answer =
        |op: &str| serde_json::json!({"cloud": "gcp", "api": "logging:v2", "operation": op});
    let verdict = |input: &Value, result: &Value| match judge(
        &forms,
        input,
        "logging:v2",
        "logging.exclusions.get",
        result,
    ) {
        Verdict::Right => "right",
        Verdict::Identical => "identical",
        Verdict::Unknown(_) => "unknown",
        Verdict::Wrong(_) => "wrong",
    };
    assert_eq!(
        verdict(&general, &answer("logging.exclusions.get")),
        "right"
    );
    assert_eq!(
        verdict(&general, &answer("logging.projects.exclusions.get")),
        "identical"
    );
    // Same path, another HTTP method; or another path: wrong, not identical.
    assert_eq!(
        verdict(&general, &answer("logging.projects.exclusions.create")),
        "wrong"
    );
    assert_eq!(
        verdict(&general, &answer("logging.projects.sinks.get")),
        "wrong"
    );
    let unknown = serde_json::json!({"cloud": "gcp", "unknown": true, "reason": "no method"});
    assert_eq!(verdict(&general, &unknown), "unknown");
    // A GET sent as POST + override is still a GET: answering the POST method is wrong.
    let mut long = general.clone();
    long["method"] = "POST".into();
    long["url"] = "https://logging.googleapis.com/v2/projects/p/exclusions".into();
    long["headers"] = serde_json::json!({"x-http-method-override": "GET"});
    assert_eq!(
        verdict(&long, &answer("logging.projects.exclusions.create")),
        "wrong"
    );
}
