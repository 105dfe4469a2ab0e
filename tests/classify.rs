//! The AWS classifier: every botocore operation (a corpus serialized and signed by botocore
//! itself, classified by the real binary), the privileged operations that matter most, every
//! S3 addressing form and endpoint family, and the operation ≠ IAM action cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::process::Command;

mod support;

use airlock::cloud::{Call, Classification};
use airlock::explain;
use serde_json::{Value, json};
use support::corpus::corpus;

const BIN: &str = env!("CARGO_BIN_EXE_airlock");
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/{region}/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=0000";

fn iam_prefixes() -> HashMap<String, String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/aws/services.jsonl"
    ))
    .unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|s| {
            let prefix = s["iam_prefix"]
                .as_str()
                .or(s["signing_name"].as_str())
                .unwrap()
                .to_string();
            (s["id"].as_str().unwrap().to_string(), prefix)
        })
        .collect()
}

/// Privileged operations that must always be classified exactly.
const PRIVILEGED: &[(&str, &str)] = &[
    ("iam", "CreateRole"),
    ("iam", "AttachRolePolicy"),
    ("iam", "PutRolePolicy"),
    ("iam", "CreateAccessKey"),
    ("iam", "CreateUser"),
    ("iam", "UpdateAssumeRolePolicy"),
    ("iam", "AttachUserPolicy"),
    ("iam", "CreatePolicyVersion"),
    ("sts", "AssumeRole"),
    ("s3", "DeleteObject"),
    ("s3", "DeleteObjects"),
    ("s3", "DeleteBucket"),
    ("s3", "PutBucketPolicy"),
    ("s3", "PutBucketAcl"),
    ("s3", "PutObjectAcl"),
    ("s3", "DeleteBucketPolicy"),
    ("s3", "PutPublicAccessBlock"),
    ("s3", "DeletePublicAccessBlock"),
    ("kms", "PutKeyPolicy"),
    ("kms", "ScheduleKeyDeletion"),
    ("kms", "DisableKey"),
    ("kms", "CreateGrant"),
    ("rds", "CreateDBSnapshot"),
    ("rds", "ModifyDBSnapshotAttribute"),
    ("rds", "StartExportTask"),
    ("rds", "DeleteDBInstance"),
    ("dynamodb", "ExportTableToPointInTime"),
    ("dynamodb", "DeleteTable"),
    ("redshift", "ModifyClusterSnapshot"),
    ("redshift", "AuthorizeSnapshotAccess"),
    ("ec2", "TerminateInstances"),
    ("ec2", "ModifySnapshotAttribute"),
    ("ec2", "ModifyImageAttribute"),
    ("ec2", "CreateSnapshot"),
    ("lambda", "UpdateFunctionCode"),
    ("lambda", "AddPermission"),
    ("lambda", "DeleteFunction"),
    ("secretsmanager", "GetSecretValue"),
    ("secretsmanager", "DeleteSecret"),
    ("organizations", "LeaveOrganization"),
    ("organizations", "CreateAccount"),
    ("organizations", "InviteAccountToOrganization"),
    ("organizations", "DeletePolicy"),
];

/// What one corpus line came out as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The expected API and operation.
    Right,
    /// An explicit unknown: the baseline holds it for a human.
    Unknown,
    /// Another operation: worse than unknown, since rules judge the wrong call.
    Wrong,
}

/// A request as the wire carries it, its signature aside: method, URL, every header
/// (names lower-cased; `Authorization` kept whole but for its `Signature=` value, so the
/// credential scope and signed headers must agree too) and the body, byte for byte.
fn wire_form(input: &Value) -> String {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in input["headers"].as_object().unwrap() {
        let name = name.to_ascii_lowercase();
        let mut value = value.as_str().unwrap().to_string();
        if name == "authorization"
            && let Some(at) = value.find("Signature=")
        {
            value.truncate(at + "Signature=".len());
        }
        headers.insert(name, value);
    }
    json!([input["method"], input["url"], headers, input["body_b64"]]).to_string()
}

#[test]
fn every_botocore_operation_is_classified_by_the_binary() {
    let corpus = corpus();
    let output = Command::new(BIN)
        .args(["explain", "--jsonl"])
        .arg(&corpus)
        .output()
        .expect("run airlock explain");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let inputs: Vec<Value> = std::fs::read_to_string(&corpus)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let results: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(inputs.len(), results.len(), "one result line per request");
    let prefixes = iam_prefixes();
    let expected = |input: &Value| {
        let expect = &input["expect"];
        (
            expect["service"].as_str().unwrap().to_string(),
            expect["operation"].as_str().unwrap().to_string(),
        )
    };

    // Every request botocore produced for each operation (base lines, variants, twins),
    // as wire forms: the proof that two operations can be the same request.
    let mut wire_of: HashMap<(String, String), Vec<String>> = HashMap::new();
    for input in &inputs {
        wire_of
            .entry(expected(input))
            .or_default()
            .push(wire_form(input));
    }

    let variant = |input: &Value| {
        input["expect"]["variant"]
            .as_str()
            .map_or_else(|| "base".to_string(), str::to_string)
    };
    let (mut right_service_op, mut exact_api) = (0usize, 0usize);
    // variant → [right, unknown, another operation proven wire-identical, WRONG]
    let mut by_variant: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    let mut unknowns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // (expected, answered) → lines, for wrong answers whose requests botocore also
    // produces, byte for byte, for the answered operation.
    let mut wire_identical: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut unproven: Vec<String> = Vec::new();
    let mut privileged_seen: HashMap<(&str, &str), bool> = HashMap::new();
    for (input, result) in inputs.iter().zip(&results) {
        let (api, op) = expected(input);
        // S3 lines name their bucket and key: the right operation on another bucket (the
        // host misread) is as wrong as another operation.
        let misread = ["bucket", "key"].into_iter().find_map(|field| {
            let expected = input["expect"].get(field)?;
            let member = if field == "bucket" { "Bucket" } else { "Key" };
            (result["params"][member] != *expected).then(|| {
                format!(
                    "{member} {} instead of {expected}",
                    result["params"][member]
                )
            })
        });
        let outcome = if result["unknown"] == true || result.get("error").is_some() {
            Outcome::Unknown
        } else if result["api"] == api.as_str()
            && result["operation"] == op.as_str()
            && misread.is_none()
        {
            Outcome::Right
        } else {
            Outcome::Wrong
        };
        let counts = by_variant.entry(variant(input)).or_default();
        right_service_op += usize::from(
            result["service"].as_str() == prefixes.get(&api).map(String::as_str)
                && result["operation"] == op.as_str(),
        );
        exact_api += usize::from(outcome == Outcome::Right);
        if let Some(key) = PRIVILEGED.iter().find(|(s, o)| *s == api && *o == op) {
            let entry = privileged_seen.entry(*key).or_insert(true);
            *entry &= outcome == Outcome::Right;
        }
        match outcome {
            Outcome::Right => counts[0] += 1,
            Outcome::Unknown => counts[1] += 1,
            Outcome::Wrong => {}
        }
        match outcome {
            Outcome::Right => {}
            Outcome::Unknown => unknowns.entry(api.clone()).or_default().push(format!(
                "{op} [{}] → {}",
                variant(input),
                result["reason"]
                    .as_str()
                    .or(result["error"].as_str())
                    .unwrap_or("?")
            )),
            Outcome::Wrong => {
                let answered = (
                    result["api"].as_str().unwrap_or("?").to_string(),
                    result["operation"].as_str().unwrap_or("?").to_string(),
                );
                let wire = wire_form(input);
                let proven = misread.is_none()
                    && wire_of
                        .get(&answered)
                        .is_some_and(|forms| forms.contains(&wire));
                let pair = (
                    format!("{api}:{op}"),
                    format!("{}:{}", answered.0, answered.1),
                );
                if proven {
                    counts[2] += 1;
                    *wire_identical.entry(pair).or_default() += 1;
                } else {
                    counts[3] += 1;
                    unproven.push(format!(
                        "{} → {} [{}] {}{}",
                        pair.0,
                        pair.1,
                        variant(input),
                        input["url"],
                        misread.map_or_else(String::new, |m| format!(" ({m})"))
                    ));
                }
            }
        }
    }
    let total = inputs.len();
    let percent = |n: usize| n as f64 / total as f64 * 100.0;
    let accuracy = percent(right_service_op);
    let wrong: usize = by_variant.values().map(|c| c[2] + c[3]).sum();
    let unknown: usize = by_variant.values().map(|c| c[1]).sum();
    let identical = wrong - unproven.len();
    let mut report = format!(
        "classified {right_service_op}/{total} botocore requests to the right service and operation: {accuracy:.2}% (exact API {:.2}%; exact or provably wire-identical {:.2}%)\n\
         unknown: {unknown}; wrong operation: {wrong}, of which provably wire-identical: {identical}, unproven (WRONG): {}\n",
        percent(exact_api),
        percent(exact_api + identical),
        unproven.len(),
    );
    for (variant, [right, unknown, identical, wrong]) in &by_variant {
        report.push_str(&format!(
            "  variant {variant}: {right} right, {unknown} unknown, {identical} another operation wire-identical, {wrong} WRONG\n"
        ));
    }
    for (api, list) in &unknowns {
        report.push_str(&format!("  unknown {api}: {}\n", list.join("; ")));
    }
    report.push_str(
        "allowed pairs (expected → answered, lines): the same method, URL, headers and body \
         (signature aside) as a request botocore makes for the answered operation\n",
    );
    let mut by_api: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for ((expected, answered), lines) in &wire_identical {
        let key = (
            expected.split(':').next().unwrap_or(""),
            answered.split(':').next().unwrap_or(""),
        );
        let entry = by_api.entry(key).or_default();
        entry.0 += 1;
        entry.1 += lines;
    }
    for ((expected, answered), (operations, lines)) in &by_api {
        report.push_str(&format!(
            "  API {expected} → {answered}: {operations} operations, {lines} lines\n"
        ));
    }
    for ((expected, answered), lines) in &wire_identical {
        report.push_str(&format!("  {expected} → {answered} ({lines})\n"));
    }
    for line in &unproven {
        report.push_str(&format!("  WRONG {line}\n"));
    }
    // cargo hides a passing test's output: tests/run.sh prints this file.
    print!("{report}");
    std::fs::write(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/aws-classification-report.txt"
        ),
        &report,
    )
    .unwrap();
    assert!(total > 19_000, "the corpus covers only {total} operations");
    for variant in ["accelerate", "accelerate-dualstack", "gzip", "twin"] {
        assert!(
            by_variant.get(variant).is_some_and(|c| c[0] > 0),
            "the corpus has no classified `{variant}` lines"
        );
    }
    assert!(
        unproven.is_empty(),
        "{} wrong operations that are not wire-identical to the answer:\n{}",
        unproven.len(),
        unproven.join("\n")
    );
    assert!(accuracy >= 99.5, "accuracy {accuracy:.2}% is below 99.5%");
    for key in PRIVILEGED {
        assert_eq!(
            privileged_seen.get(key),
            Some(&true),
            "privileged {}:{} missing, unknown or misclassified",
            key.0,
            key.1
        );
    }
}

#[test]
fn a_wire_form_ignores_only_the_signature() {
    let line = json!({
        "method": "GET",
        "url": "https://b.s3.amazonaws.com/?lifecycle",
        "headers": {"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc", "X-Amz-Date": "20260101T000000Z"},
        "body_b64": "",
    });
    let same = |edit: &dyn Fn(&mut Value)| {
        let mut other = line.clone();
        edit(&mut other);
        wire_form(&line) == wire_form(&other)
    };
    assert!(same(&|v| v["headers"]["Authorization"] = json!(
        line["headers"]["Authorization"]
            .as_str()
            .unwrap()
            .replace("=abc", "=def")
    )));
    assert!(same(&|v| {
        let auth = v["headers"]["Authorization"].take();
        v["headers"]
            .as_object_mut()
            .unwrap()
            .remove("Authorization");
        v["headers"]["authorization"] = auth;
    }));
    assert!(!same(&|v| v["headers"]["Authorization"] = json!(
        line["headers"]["Authorization"]
            .as_str()
            .unwrap()
            .replace("/s3/", "/s3-object-lambda/")
    )));
    assert!(!same(&|v| v["headers"]["Authorization"] = json!(
        line["headers"]["Authorization"]
            .as_str()
            .unwrap()
            .replace("host;x-amz-date", "host")
    )));
    assert!(!same(&|v| v["url"] = json!(
        "https://b.s3.amazonaws.com/?lifecycle&x-id=GetBucketLifecycle"
    )));
    assert!(!same(&|v| v["method"] = json!("PUT")));
    assert!(!same(&|v| v["body_b64"] = json!("eA==")));
    assert!(!same(&|v| v["headers"]["Content-MD5"] = json!("x")));
}

/// Classify one hand-written request.
fn classify(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> Classification {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let line = json!({"method": method, "url": url, "headers": headers, "body_b64": base64_encode(body.as_bytes())});
    let request = explain::parse_json(&line.to_string()).unwrap();
    airlock::cloud::aws::classify(&request.view())
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn auth(region: &str, service: &str) -> String {
    AUTH.replace("{region}", region)
        .replace("{service}", service)
}

fn call(
    method: &str,
    url: &str,
    service: &str,
    region: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Call {
    let auth = auth(region, service);
    let mut headers = vec![("Authorization", auth.as_str())];
    headers.extend_from_slice(extra);
    match classify(method, url, &headers, body) {
        Classification::Known(call) => *call,
        Classification::Unknown(u) => panic!("{method} {url}: unknown: {}", u.reason),
    }
}

fn s3(method: &str, url: &str, extra: &[(&str, &str)]) -> Call {
    call(method, url, "s3", "us-east-1", extra, "")
}

#[test]
fn s3_addressing_forms_all_find_bucket_and_key() {
    let cases = [
        (
            "https://amzn-bucket.s3.us-east-1.amazonaws.com/a/b.txt",
            "amzn-bucket",
            "a/b.txt",
        ),
        (
            "https://amzn-bucket.s3.amazonaws.com/a/b.txt",
            "amzn-bucket",
            "a/b.txt",
        ),
        (
            "https://amzn-bucket.s3-us-west-2.amazonaws.com/a/b.txt",
            "amzn-bucket",
            "a/b.txt",
        ),
        (
            "https://s3.us-east-1.amazonaws.com/amzn-bucket/a/b.txt",
            "amzn-bucket",
            "a/b.txt",
        ),
        (
            "https://s3.us-east-1.amazonaws.com/my.dotted.bucket/a/b.txt",
            "my.dotted.bucket",
            "a/b.txt",
        ),
        (
            "https://amzn-bucket.s3.dualstack.us-east-1.amazonaws.com/a/b.txt",
            "amzn-bucket",
            "a/b.txt",
        ),
        (
            "https://amzn-bucket.s3-fips.us-east-1.amazonaws.com/a/b.txt",
            "amzn-bucket",
            "a/b.txt",
        ),
        (
            "https://amzn-bucket.s3.cn-north-1.amazonaws.com.cn/a/b.txt",
            "amzn-bucket",
            "a/b.txt",
        ),
        (
            "https://amzn-bucket.s3.us-gov-west-1.amazonaws.com/a/b.txt",
            "amzn-bucket",
            "a/b.txt",
        ),
        (
            "https://myap-123456789012.s3-accesspoint.us-east-1.amazonaws.com/a/b.txt",
            "myap-123456789012",
            "a/b.txt",
        ),
        (
            "https://bucket--use1-az4--x-s3.s3express-use1-az4.us-east-1.amazonaws.com/a/b.txt",
            "bucket--use1-az4--x-s3",
            "a/b.txt",
        ),
        (
            "https://mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com/a/b.txt",
            "mfzwi23gnjvgw",
            "a/b.txt",
        ),
    ];
    for (url, bucket, key) in cases {
        let c = s3("GET", url, &[]);
        assert_eq!((c.api, c.operation), ("s3", "GetObject"), "{url}");
        assert_eq!(c.params["Bucket"], bucket, "{url}");
        assert_eq!(c.params["Key"], key, "{url}");
    }
    let china = s3(
        "GET",
        "https://amzn-bucket.s3.cn-north-1.amazonaws.com.cn/k",
        &[],
    );
    assert_eq!(china.partition, "aws-cn");
    assert_eq!(china.resources, ["arn:aws-cn:s3:::amzn-bucket/k"]);
    let gov = call(
        "GET",
        "https://amzn-bucket.s3.us-gov-west-1.amazonaws.com/k",
        "s3",
        "us-gov-west-1",
        &[],
        "",
    );
    assert_eq!(gov.partition, "aws-us-gov");
    let ap = s3(
        "GET",
        "https://myap-123456789012.s3-accesspoint.us-east-1.amazonaws.com/k",
        &[],
    );
    assert_eq!(ap.account.as_deref(), Some("123456789012"));

    // S3 Control: the account is in the host.
    let control = call(
        "GET",
        "https://123456789012.s3-control.us-east-1.amazonaws.com/v20180820/accesspoint/myap",
        "s3",
        "us-east-1",
        &[("x-amz-account-id", "123456789012")],
        "",
    );
    assert_eq!(
        (control.api, control.operation),
        ("s3control", "GetAccessPoint")
    );
    assert_eq!(control.params["AccountId"], "123456789012");
}

#[test]
fn s3_operations_sharing_a_path_are_told_apart() {
    let put = |url: &str, extra: &[(&str, &str)]| s3("PUT", url, extra).operation;
    let base = "https://b.s3.us-east-1.amazonaws.com/k";
    assert_eq!(put(base, &[]), "PutObject");
    assert_eq!(put(base, &[("x-amz-copy-source", "src/k")]), "CopyObject");
    assert_eq!(
        put(&format!("{base}?partNumber=1&uploadId=u"), &[]),
        "UploadPart"
    );
    assert_eq!(
        put(
            &format!("{base}?partNumber=1&uploadId=u"),
            &[("x-amz-copy-source", "src/k")]
        ),
        "UploadPartCopy"
    );
    assert_eq!(put(&format!("{base}?acl"), &[]), "PutObjectAcl");
    assert_eq!(
        s3("DELETE", &format!("{base}?uploadId=u"), &[]).operation,
        "AbortMultipartUpload"
    );
    assert_eq!(s3("DELETE", base, &[]).operation, "DeleteObject");
    assert_eq!(
        s3(
            "GET",
            "https://b.s3.us-east-1.amazonaws.com/?list-type=2",
            &[]
        )
        .operation,
        "ListObjectsV2"
    );
    assert_eq!(
        s3("GET", "https://b.s3.us-east-1.amazonaws.com/", &[]).operation,
        "ListObjects"
    );
    assert_eq!(
        s3("GET", "https://b.s3.us-east-1.amazonaws.com/?policy", &[]).operation,
        "GetBucketPolicy"
    );
    assert_eq!(
        s3("PUT", "https://b.s3.us-east-1.amazonaws.com/?policy", &[]).operation,
        "PutBucketPolicy"
    );
    assert_eq!(
        s3("POST", "https://b.s3.us-east-1.amazonaws.com/?delete", &[]).operation,
        "DeleteObjects"
    );
    // Deprecated twins: the successor, except where only the deprecated one is sent with
    // a checksum (PutBucketNotification requires one; its successor has none).
    let notification = "https://b.s3.us-east-1.amazonaws.com/?notification";
    assert_eq!(
        s3("PUT", notification, &[]).operation,
        "PutBucketNotificationConfiguration"
    );
    assert_eq!(
        s3("PUT", notification, &[("x-amz-checksum-crc32", "AAAAAA==")]).operation,
        "PutBucketNotification"
    );
    assert_eq!(
        s3(
            "PUT",
            notification,
            &[("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")]
        )
        .operation,
        "PutBucketNotification"
    );
    assert_eq!(
        s3(
            "PUT",
            "https://b.s3.us-east-1.amazonaws.com/?lifecycle",
            &[("x-amz-checksum-crc32", "AAAAAA==")]
        )
        .operation,
        "PutBucketLifecycleConfiguration",
        "both lifecycle operations send checksums: the successor"
    );
    // The Smithy `x-id` hint settles what only it can (and agrees with the rest).
    assert_eq!(
        s3("GET", &format!("{base}?x-id=GetObject"), &[]).operation,
        "GetObject"
    );
}

#[test]
fn operations_whose_iam_action_differs_are_mapped() {
    let actions = |c: &Call| c.actions.iter().map(|a| a.name).collect::<Vec<_>>();
    let base = "https://b.s3.us-east-1.amazonaws.com";
    assert_eq!(
        actions(&s3("GET", &format!("{base}/?list-type=2"), &[])),
        ["s3:ListBucket"]
    );
    assert_eq!(
        actions(&s3(
            "PUT",
            &format!("{base}/k?partNumber=1&uploadId=u"),
            &[]
        )),
        ["s3:PutObject"]
    );
    let copy = s3(
        "PUT",
        &format!("{base}/k"),
        &[("x-amz-copy-source", "src/k")],
    );
    assert_eq!(actions(&copy).len(), 2);
    assert!(actions(&copy).contains(&"s3:GetObject") && actions(&copy).contains(&"s3:PutObject"));
    assert_eq!(
        actions(&s3("DELETE", &format!("{base}/?cors"), &[])),
        ["s3:PutBucketCORS"]
    );

    let invoke = call(
        "POST",
        "https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/f/invocations",
        "lambda",
        "us-east-1",
        &[],
        "{}",
    );
    assert_eq!(actions(&invoke), ["lambda:InvokeFunction"]);
    assert_eq!(invoke.resources, ["arn:aws:lambda:us-east-1:*:function:f"]);

    let form = [(
        "Content-Type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    let batch = call(
        "POST",
        "https://sqs.us-east-1.amazonaws.com/",
        "sqs",
        "us-east-1",
        &form,
        "Action=SendMessageBatch&Version=2012-11-05&QueueUrl=https%3A%2F%2Fsqs.us-east-1.amazonaws.com%2F123456789012%2Fq",
    );
    assert_eq!(actions(&batch), ["sqs:SendMessage"]);

    let target = [
        ("X-Amz-Target", "DynamoDB_20120810.ExecuteStatement"),
        ("Content-Type", "application/x-amz-json-1.0"),
    ];
    let partiql = call(
        "POST",
        "https://dynamodb.us-east-1.amazonaws.com/",
        "dynamodb",
        "us-east-1",
        &target,
        r#"{"Statement":"SELECT * FROM t"}"#,
    );
    assert!(
        actions(&partiql)
            .iter()
            .all(|a| a.starts_with("dynamodb:PartiQL")),
        "{:?}",
        actions(&partiql)
    );
}

#[test]
fn endpoint_families_and_protocols() {
    // DynamoDB account-ID endpoint: the scope says dynamodb, the host names the account.
    let target = [
        ("X-Amz-Target", "DynamoDB_20120810.DeleteTable"),
        ("Content-Type", "application/x-amz-json-1.0"),
    ];
    let c = call(
        "POST",
        "https://123456789012.ddb.us-east-1.amazonaws.com/",
        "dynamodb",
        "us-east-1",
        &target,
        r#"{"TableName":"t"}"#,
    );
    assert_eq!(
        (c.service, c.operation, c.protocol),
        ("dynamodb", "DeleteTable", "json")
    );
    assert_eq!(c.account.as_deref(), Some("123456789012"));
    assert_eq!(
        c.resources,
        ["arn:aws:dynamodb:us-east-1:123456789012:table/t"]
    );

    // `*.api.aws` dual-stack, FIPS.
    let c = call(
        "POST",
        "https://dynamodb.us-east-1.api.aws/",
        "dynamodb",
        "us-east-1",
        &target,
        r#"{"TableName":"t"}"#,
    );
    assert_eq!(c.operation, "DeleteTable");

    // ELB and ELBv2 share a host: the Version tells them apart.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let v1 = call(
        "POST",
        "https://elasticloadbalancing.us-east-1.amazonaws.com/",
        "elasticloadbalancing",
        "us-east-1",
        &form,
        "Action=DescribeLoadBalancers&Version=2012-06-01",
    );
    let v2 = call(
        "POST",
        "https://elasticloadbalancing.us-east-1.amazonaws.com/",
        "elasticloadbalancing",
        "us-east-1",
        &form,
        "Action=DescribeLoadBalancers&Version=2015-12-01",
    );
    assert_eq!((v1.api, v2.api), ("elb", "elbv2"));

    // EC2 protocol lists; global IAM; China IAM.
    let c = call(
        "POST",
        "https://ec2-fips.us-east-1.amazonaws.com/",
        "ec2",
        "us-east-1",
        &form,
        "Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2",
    );
    assert_eq!((c.operation, c.protocol), ("TerminateInstances", "ec2"));
    assert_eq!(c.params["InstanceId"], json!(["i-1", "i-2"]));
    assert_eq!(c.resources.len(), 2);
    let c = call(
        "POST",
        "https://iam.cn-north-1.amazonaws.com.cn/",
        "iam",
        "cn-north-1",
        &form,
        "Action=CreateRole&Version=2010-05-08&RoleName=r&AssumeRolePolicyDocument=%7B%7D",
    );
    assert_eq!((c.operation, c.partition), ("CreateRole", "aws-cn"));
    assert_eq!(c.actions[0].access, "Write");

    // Idempotency tokens are reported.
    let target = [
        ("X-Amz-Target", "TrentService.CreateKey"),
        ("Content-Type", "application/x-amz-json-1.1"),
    ];
    let _ = call(
        "POST",
        "https://kms.us-east-1.amazonaws.com/",
        "kms",
        "us-east-1",
        &target,
        "{}",
    );
    let form_ec2 = "Action=RunInstances&Version=2016-11-15&ImageId=ami-1&MinCount=1&MaxCount=1&ClientToken=abc";
    let c = call(
        "POST",
        "https://ec2.us-east-1.amazonaws.com/",
        "ec2",
        "us-east-1",
        &form,
        form_ec2,
    );
    assert_eq!(c.idempotency_params, ["ClientToken"]);
}

#[test]
fn presigned_urls_classify_like_signed_requests() {
    let presigned = "https://b.s3.us-east-1.amazonaws.com/k.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
    let Classification::Known(c) = classify("GET", presigned, &[], "") else {
        panic!("unknown")
    };
    assert_eq!((c.operation, c.presigned), ("GetObject", true));
    assert_eq!(
        c.params,
        json!({"Bucket": "b", "Key": "k.txt"}),
        "auth parameters are not request parameters"
    );
    // SigV2 query presign (`aws s3 presign`): no scope, the host decides.
    let Classification::Known(c) = classify(
        "GET",
        "https://b.s3.amazonaws.com/k.txt?AWSAccessKeyId=AKID&Expires=1&Signature=x",
        &[],
        "",
    ) else {
        panic!("unknown")
    };
    assert_eq!((c.operation, c.presigned), ("GetObject", true));
}

#[test]
fn what_cannot_be_classified_is_unknown_with_a_reason() {
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            "GET",
            "https://example.com/",
            vec![],
            "",
            "not an AWS API host",
        ),
        (
            "POST",
            "https://iam.amazonaws.com/",
            vec![("Content-Type", "application/x-www-form-urlencoded")],
            "Action=NoSuchThing&Version=2010-05-08",
            "NoSuchThing",
        ),
        (
            "POST",
            "https://dynamodb.us-east-1.amazonaws.com/",
            vec![("X-Amz-Target", "DynamoDB_20120810.PutItem")],
            "{not json",
            "malformed JSON",
        ),
        (
            "PATCH",
            "https://b.s3.amazonaws.com/k",
            vec![],
            "",
            "no operation",
        ),
    ];
    for (method, url, headers, body, why) in cases {
        let service = if url.contains("iam") {
            "iam"
        } else if url.contains("dynamodb") {
            "dynamodb"
        } else {
            "s3"
        };
        let auth = auth("us-east-1", service);
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend(headers);
        match classify(method, url, &all, body) {
            Classification::Unknown(u) => assert!(u.reason.contains(why), "{url}: {}", u.reason),
            Classification::Known(c) => panic!("{url} classified as {}:{}", c.api, c.operation),
        }
    }
}

#[test]
fn explain_reads_raw_http_requests_and_reports_bad_input() {
    let raw = "PUT /k HTTP/1.1\r\nHost: b.s3.us-east-1.amazonaws.com\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\nx-amz-copy-source: src/k\r\n\r\n";
    let out = Command::new(BIN)
        .arg("explain")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(raw.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["operation"], "CopyObject");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "not json\n{\"method\":\"GET\",\"url\":\"/relative\"}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["explain", "--jsonl"])
        .arg(&bad)
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a request object")
    );
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("names no host")
    );
}

/// Classify one hand-written request with a binary body.
fn classify_bytes(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Classification {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let line =
        json!({"method": method, "url": url, "headers": headers, "body_b64": base64_encode(body)});
    let request = explain::parse_json(&line.to_string()).unwrap();
    airlock::cloud::aws::classify(&request.view())
}

fn unknown_reason(c: Classification) -> String {
    match c {
        Classification::Unknown(u) => u.reason,
        Classification::Known(c) => panic!("classified as {}:{}", c.api, c.operation),
    }
}

#[test]
fn s3_transfer_acceleration_hosts_classify_like_virtual_hosted_s3() {
    for host in [
        "amzn-bucket.s3-accelerate.amazonaws.com",
        "amzn-bucket.s3-accelerate.dualstack.amazonaws.com",
    ] {
        // Bucket GETs used to come out as ListBuckets (`GET /` read path-style).
        let c = call(
            "GET",
            &format!("https://{host}/?replication"),
            "s3",
            "eu-west-1",
            &[],
            "",
        );
        assert_eq!(
            (c.api, c.operation),
            ("s3", "GetBucketReplication"),
            "{host}"
        );
        assert_eq!(c.params["Bucket"], "amzn-bucket");
        assert_eq!(
            c.region.as_deref(),
            Some("eu-west-1"),
            "region from the scope"
        );
        assert_eq!(c.resources, ["arn:aws:s3:::amzn-bucket"]);
        let c = s3("GET", &format!("https://{host}/a/b.txt"), &[]);
        assert_eq!(c.operation, "GetObject");
        assert_eq!(
            (c.params["Bucket"].as_str(), c.params["Key"].as_str()),
            (Some("amzn-bucket"), Some("a/b.txt"))
        );
        let c = s3("GET", &format!("https://{host}/?list-type=2"), &[]);
        assert_eq!(c.operation, "ListObjectsV2");
        let c = s3("DELETE", &format!("https://{host}/"), &[]);
        assert_eq!(c.operation, "DeleteBucket");
    }
    // Acceleration is virtual-hosted only: a host without a bucket is not read as ListBuckets.
    let auth = auth("us-east-1", "s3");
    let why = unknown_reason(classify(
        "GET",
        "https://s3-accelerate.amazonaws.com/",
        &[("Authorization", &auth)],
        "",
    ));
    assert!(why.contains("must name the bucket"), "{why}");
}

#[test]
fn s3_hosts_not_understood_are_unknown_never_read_as_another_form() {
    let auth = auth("us-east-1", "s3");
    let unknown = |method: &str, url: &str| {
        unknown_reason(classify(method, url, &[("Authorization", &auth)], ""))
    };
    // A website endpoint: before, `GET /k` became GetObject of bucket `k`.
    let why = unknown("GET", "https://b.s3-website-us-east-1.amazonaws.com/k");
    assert!(why.contains("website"), "{why}");
    let why = unknown("GET", "https://b.s3-website.eu-central-1.amazonaws.com/k");
    assert!(why.contains("website"), "{why}");
    // Labels right of the S3 label that are neither a region nor a variant marker.
    let why = unknown("GET", "https://b.s3.us-east-1.example.amazonaws.com/k");
    assert!(why.contains("does not understand"), "{why}");
    // Signed for S3, sent to a host that is no S3 form at all.
    let why = unknown("GET", "https://storage.us-east-1.amazonaws.com/b/k");
    assert!(why.contains("not an S3 host form"), "{why}");
    // An interface endpoint whose kind is not one S3 has.
    let why = unknown(
        "GET",
        "https://thing.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com/b/k",
    );
    assert!(why.contains("kind"), "{why}");
}

#[test]
fn s3_interface_endpoints_and_object_lambda_hosts_name_the_bucket() {
    // Path-style through an interface endpoint: the vpce labels are not a bucket.
    let c = s3(
        "GET",
        "https://bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com/amzn-bucket/a/b.txt",
        &[],
    );
    assert_eq!(c.operation, "GetObject");
    assert_eq!(
        (c.params["Bucket"].as_str(), c.params["Key"].as_str()),
        (Some("amzn-bucket"), Some("a/b.txt"))
    );
    // Virtual-hosted through it (botocore puts the bucket in front of the endpoint URL).
    let c = s3(
        "GET",
        "https://my.bucket.bucket.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com/?policy",
        &[],
    );
    assert_eq!(
        (c.operation, c.params["Bucket"].as_str()),
        ("GetBucketPolicy", Some("my.bucket"))
    );
    let c = s3(
        "GET",
        "https://myap-123456789012.accesspoint.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com/k",
        &[],
    );
    assert_eq!(
        (c.operation, c.params["Bucket"].as_str()),
        ("GetObject", Some("myap-123456789012"))
    );
    assert_eq!(c.account.as_deref(), Some("123456789012"));
    let c = call(
        "GET",
        "https://123456789012.control.vpce-1a2b3c4d-5e6f.s3.us-east-1.vpce.amazonaws.com/v20180820/accesspoint/myap",
        "s3",
        "us-east-1",
        &[("x-amz-account-id", "123456789012")],
        "",
    );
    assert_eq!((c.api, c.operation), ("s3control", "GetAccessPoint"));

    // Object Lambda access points: GetObject through the access point...
    let c = call(
        "GET",
        "https://myolap-123456789012.s3-object-lambda.us-east-1.amazonaws.com/a/b.txt",
        "s3-object-lambda",
        "us-east-1",
        &[],
        "",
    );
    assert_eq!(c.operation, "GetObject");
    assert_eq!(
        (c.params["Bucket"].as_str(), c.params["Key"].as_str()),
        (Some("myolap-123456789012"), Some("a/b.txt"))
    );
    // ...and the Lambda's answer, whose host label is a route, not an access point.
    let c = call(
        "POST",
        "https://route-1.s3-object-lambda.us-east-1.amazonaws.com/WriteGetObjectResponse",
        "s3-object-lambda",
        "us-east-1",
        &[
            ("x-amz-request-route", "route-1"),
            ("x-amz-request-token", "t"),
        ],
        "",
    );
    assert_eq!(c.operation, "WriteGetObjectResponse");
    assert!(c.params.get("Bucket").is_none(), "{}", c.params);
}

#[test]
fn timestreams_shared_target_is_decided_by_the_host() {
    let target = [
        ("X-Amz-Target", "Timestream_20181101.TagResource"),
        ("Content-Type", "application/x-amz-json-1.0"),
    ];
    for (host, api) in [
        (
            "ingest.timestream.us-east-1.amazonaws.com",
            "timestream-write",
        ),
        (
            "ingest-cell2.timestream.us-east-1.amazonaws.com",
            "timestream-write",
        ),
        (
            "query.timestream.us-east-1.amazonaws.com",
            "timestream-query",
        ),
        (
            "query-cell1.timestream.us-east-1.amazonaws.com",
            "timestream-query",
        ),
    ] {
        let c = call(
            "POST",
            &format!("https://{host}/"),
            "timestream",
            "us-east-1",
            &target,
            r#"{"ResourceARN":"arn:aws:timestream:us-east-1:123456789012:database/d","Tags":[]}"#,
        );
        assert_eq!((c.api, c.operation), (api, "TagResource"), "{host}");
    }
    // A host naming neither: both APIs have the operation, so it is not guessed.
    let auth = auth("us-east-1", "timestream");
    let mut headers = vec![("Authorization", auth.as_str())];
    headers.extend(target);
    let why = unknown_reason(classify(
        "POST",
        "https://timestream.us-east-1.amazonaws.com/",
        &headers,
        "{}",
    ));
    assert!(why.contains("the host names none of them"), "{why}");
    // An operation only one of them has needs no host.
    headers[1] = ("X-Amz-Target", "Timestream_20181101.WriteRecords");
    assert!(
        classify(
            "POST",
            "https://timestream.us-east-1.amazonaws.com/",
            &headers,
            "{}"
        )
        .call()
        .is_some()
    );
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn gzip_compressed_bodies_are_classified_from_their_decompressed_view() {
    let auth = auth("us-east-1", "monitoring");
    let form = "Action=PutMetricData&Version=2010-08-01&Namespace=ns&MetricData.member.1.MetricName=m&MetricData.member.1.Value=1";
    let packed = gzip(form.as_bytes());
    let headers = [
        ("Authorization", auth.as_str()),
        (
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("Content-Encoding", "gzip"),
    ];
    let Classification::Known(c) = classify_bytes(
        "POST",
        "https://monitoring.us-east-1.amazonaws.com/",
        &headers,
        &packed,
    ) else {
        panic!("gzip query PutMetricData unknown")
    };
    assert_eq!(
        (c.api, c.operation, c.protocol),
        ("cloudwatch", "PutMetricData", "query")
    );
    assert_eq!(c.params["Namespace"], "ns");
    assert_eq!(c.params["MetricData"][0]["MetricName"], "m");

    // JSON (botocore 1.44) and CBOR (Smithy SDKs) compress the same way.
    let json_body = gzip(br#"{"Namespace":"ns","MetricData":[{"MetricName":"m"}]}"#);
    let headers = [
        ("Authorization", auth.as_str()),
        (
            "X-Amz-Target",
            "GraniteServiceVersion20100801.PutMetricData",
        ),
        ("Content-Type", "application/x-amz-json-1.0"),
        ("Content-Encoding", "gzip"),
    ];
    let Classification::Known(c) = classify_bytes(
        "POST",
        "https://monitoring.us-east-1.amazonaws.com/",
        &headers,
        &json_body,
    ) else {
        panic!("gzip json PutMetricData unknown")
    };
    assert_eq!((c.operation, c.protocol), ("PutMetricData", "json"));
    assert_eq!(c.params["Namespace"], "ns");
    let mut cbor = Vec::new();
    ciborium::ser::into_writer(
        &ciborium::Value::Map(vec![(
            ciborium::Value::Text("Namespace".into()),
            ciborium::Value::Text("ns".into()),
        )]),
        &mut cbor,
    )
    .unwrap();
    let headers = [
        ("Authorization", auth.as_str()),
        ("smithy-protocol", "rpc-v2-cbor"),
        ("Content-Type", "application/cbor"),
        ("Content-Encoding", "gzip"),
    ];
    let Classification::Known(c) = classify_bytes(
        "POST",
        "https://monitoring.us-east-1.amazonaws.com/service/GraniteServiceVersion20100801/operation/PutMetricData",
        &headers,
        &gzip(&cbor),
    ) else {
        panic!("gzip cbor PutMetricData unknown")
    };
    assert_eq!(
        (c.operation, c.protocol, c.params["Namespace"].as_str()),
        ("PutMetricData", "rpc-v2-cbor", Some("ns"))
    );

    // Any other coding of a body that carries parameters: unknown, with the reason.
    for coding in ["br", "deflate", "gzip, br"] {
        let headers = [
            ("Authorization", auth.as_str()),
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("Content-Encoding", coding),
        ];
        let why = unknown_reason(classify_bytes(
            "POST",
            "https://monitoring.us-east-1.amazonaws.com/",
            &headers,
            &packed,
        ));
        assert!(why.contains("does not decode"), "{coding}: {why}");
    }
    // A decompression bomb stops at the cap.
    let bomb = gzip(&vec![b'a'; 4 << 20]);
    let headers = [
        ("Authorization", auth.as_str()),
        (
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("Content-Encoding", "gzip"),
    ];
    let why = unknown_reason(classify_bytes(
        "POST",
        "https://monitoring.us-east-1.amazonaws.com/",
        &headers,
        &bomb,
    ));
    assert!(why.contains("more than 1048576 bytes"), "{why}");

    // An S3 object stored compressed: Content-Encoding describes the object, never decoded.
    for coding in ["gzip", "br"] {
        let c = s3(
            "PUT",
            "https://b.s3.us-east-1.amazonaws.com/k.gz",
            &[("Content-Encoding", coding)],
        );
        assert_eq!(c.operation, "PutObject", "{coding}");
        assert_eq!(c.params["ContentEncoding"], coding);
    }
    let c = match classify_bytes(
        "PUT",
        "https://b.s3.us-east-1.amazonaws.com/k.br",
        &[
            ("Authorization", &auth.replace("monitoring", "s3")),
            ("Content-Encoding", "br"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"\x0b\x02\x80hello\x03",
    ) {
        Classification::Known(c) => c,
        Classification::Unknown(u) => panic!("{}", u.reason),
    };
    assert_eq!(c.operation, "PutObject");
}

#[test]
fn apis_sharing_a_request_are_decided_by_the_host_or_left_unknown() {
    let tags = "/tags/arn%3Aaws%3Agreengrass%3Aus-east-1%3A123456789012%3Acomponents%3Ac";
    // On its own host, the API named like the host answers (proven wire-identical to its
    // twin by the corpus test).
    let c = call(
        "GET",
        &format!("https://greengrass.us-east-1.amazonaws.com{tags}"),
        "greengrass",
        "us-east-1",
        &[],
        "",
    );
    assert_eq!(
        (c.service, c.operation),
        ("greengrass", "ListTagsForResource")
    );
    // A host that names neither API: not the first one in catalog order.
    let greengrass = auth("us-east-1", "greengrass");
    let why = unknown_reason(classify(
        "GET",
        &format!("https://example.us-east-1.amazonaws.com{tags}"),
        &[("Authorization", &greengrass)],
        "",
    ));
    assert!(why.contains("the host names none of those APIs"), "{why}");
    assert!(why.contains("greengrassv2:ListTagsForResource"), "{why}");
    // An operation only one of them has is still known there.
    let c = call(
        "GET",
        "https://example.us-east-1.amazonaws.com/greengrass/v2/components",
        "greengrass",
        "us-east-1",
        &[],
        "",
    );
    assert_eq!((c.api, c.operation), ("greengrassv2", "ListComponents"));

    // RDS, DocumentDB and Neptune: one host, one Version, one IAM namespace.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let body = "Action=DescribeDBClusters&Version=2014-10-31";
    let c = call(
        "POST",
        "https://rds.us-east-1.amazonaws.com/",
        "rds",
        "us-east-1",
        &form,
        body,
    );
    assert_eq!((c.api, c.operation), ("rds", "DescribeDBClusters"));
    let rds = auth("us-east-1", "rds");
    let why = unknown_reason(classify(
        "POST",
        "https://example.us-east-1.amazonaws.com/",
        &[("Authorization", &rds), form[0]],
        body,
    ));
    assert!(why.contains("the host names none of them"), "{why}");
}

#[test]
fn unsigned_requests_to_a_shared_host_pick_the_api_named_like_it() {
    // No SigV4 scope: the host decides, and RDS's host is RDS's before DocumentDB's or
    // Neptune's (catalog order would say docdb).
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let Classification::Known(c) = classify(
        "POST",
        "https://rds.us-east-1.amazonaws.com/",
        &form,
        "Action=DescribeDBClusters&Version=2014-10-31",
    ) else {
        panic!("unknown")
    };
    assert_eq!((c.api, c.operation), ("rds", "DescribeDBClusters"));
}
