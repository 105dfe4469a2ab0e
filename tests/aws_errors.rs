//! Airlock's AWS-shaped errors, read by botocore's own parsers for every wire protocol:
//! the code and message an SDK raises and the CLI prints are exactly Airlock's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use airlock::cloud::aws::errors::{ErrorShape, response};
use base64::Engine;
use http::StatusCode;

#[test]
fn botocore_reads_the_code_and_message_for_every_protocol() {
    let shapes = [
        ("query", ErrorShape::Query),
        ("ec2", ErrorShape::Ec2),
        ("rest-xml", ErrorShape::RestXml),
        ("json", ErrorShape::Json),
        ("rest-json", ErrorShape::RestJson),
        ("smithy-rpc-v2-cbor", ErrorShape::Cbor),
    ];
    let message = "Airlock: approval a-1b2c <pending> for iam:AttachRolePolicy & more; run `airlock approvals wait a-1b2c`";
    let mut input = String::new();
    for (protocol, shape) in shapes {
        let r = response(
            shape,
            StatusCode::FORBIDDEN,
            "AccessDenied",
            message,
            "req-1",
        );
        let headers: serde_json::Map<String, serde_json::Value> = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().into()))
            .collect();
        let line = serde_json::json!({
            "protocol": protocol,
            "status": 403,
            "headers": headers,
            "body_b64": base64::engine::general_purpose::STANDARD.encode(r.body()),
        });
        input.push_str(&format!("{line}\n"));
    }
    let mut child = Command::new(support::python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/aws/parse_errors.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let parsed: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), shapes.len());
    for ((protocol, _), parsed) in shapes.iter().zip(&parsed) {
        assert_eq!(parsed["code"], "AccessDenied", "{protocol}: {parsed}");
        assert_eq!(parsed["message"], message, "{protocol}: {parsed}");
    }
}
