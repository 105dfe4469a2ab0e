//! SigV4 verification: every botocore-signed request in the corpus verifies with the key it
//! was signed with, and any change to what was signed, a wrong secret, a skewed clock or
//! an expired presigned URL is refused with AWS's error code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock::cloud::aws::sigv4::{self, VerifyError};
use airlock::explain::{OwnedRequest, parse_json};
use support::corpus::{SECRET, SIGNED_AT, corpus};

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn check(request: &OwnedRequest, secret: &str, now: SystemTime) -> Result<(), VerifyError> {
    let view = request.view();
    let signature = sigv4::parse(&view)?;
    sigv4::verify(&view, &signature, secret, now)
}

#[test]
fn every_botocore_sigv4_request_verifies_with_its_key() {
    let text = std::fs::read_to_string(corpus()).unwrap();
    let mut outcomes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut total, mut verified) = (0, 0);
    for line in text.lines() {
        let request = parse_json(line).unwrap();
        let expect: serde_json::Value =
            serde_json::from_str::<serde_json::Value>(line).unwrap()["expect"].clone();
        match check(&request, SECRET, at(SIGNED_AT)) {
            Ok(()) => verified += 1,
            // Not SigV4 at all: SigV2 presigned URLs, bearer tokens. Counted apart.
            Err(VerifyError::Unsigned | VerifyError::Unsupported(_)) => {
                outcomes
                    .entry("not sigv4".into())
                    .or_default()
                    .push(format!("{}:{}", expect["service"], expect["operation"]));
                continue;
            }
            Err(e) => outcomes
                .entry(e.code().into())
                .or_default()
                .push(format!("{}:{}", expect["service"], expect["operation"])),
        }
        total += 1;
    }
    for (outcome, list) in &outcomes {
        println!(
            "{outcome}: {} e.g. {:?}",
            list.len(),
            &list[..list.len().min(5)]
        );
    }
    println!("verified {verified}/{total} SigV4 requests");
    assert!(total > 19_000);
    assert_eq!(
        verified, total,
        "every botocore SigV4 signature must verify"
    );
}

fn sample(service_op: &str) -> OwnedRequest {
    let text = std::fs::read_to_string(corpus()).unwrap();
    let line = text
        .lines()
        .find(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{}:{}",
                v["expect"]["service"].as_str().unwrap(),
                v["expect"]["operation"].as_str().unwrap()
            ) == service_op
                && v["expect"].get("presigned").is_none()
        })
        .unwrap();
    parse_json(line).unwrap()
}

#[test]
fn tampering_a_wrong_secret_and_a_skewed_clock_are_refused() {
    let mut request = sample("iam:AttachRolePolicy");
    assert_eq!(check(&request, SECRET, at(SIGNED_AT)), Ok(()));
    assert_eq!(
        check(&request, "wrong-secret", at(SIGNED_AT)),
        Err(VerifyError::SignatureDoesNotMatch)
    );
    assert!(matches!(
        check(&request, SECRET, at(SIGNED_AT + 301)),
        Err(VerifyError::RequestTimeTooSkewed { .. })
    ));
    assert!(matches!(
        check(&request, SECRET, at(SIGNED_AT - 301)),
        Err(VerifyError::RequestTimeTooSkewed { .. })
    ));
    assert_eq!(check(&request, SECRET, at(SIGNED_AT + 299)), Ok(()));

    // One changed body byte (the policy attached).
    let last = request.body.len() - 1;
    request.body[last] ^= 1;
    assert_eq!(
        check(&request, SECRET, at(SIGNED_AT)),
        Err(VerifyError::SignatureDoesNotMatch)
    );

    // A changed signed header.
    let mut request = sample("dynamodb:DeleteTable");
    request.headers.insert(
        "x-amz-target",
        "DynamoDB_20120810.DescribeTable".parse().unwrap(),
    );
    assert_eq!(
        check(&request, SECRET, at(SIGNED_AT)),
        Err(VerifyError::SignatureDoesNotMatch)
    );

    // A changed S3 path (the key deleted).
    let mut request = sample("s3:DeleteObject");
    assert_eq!(check(&request, SECRET, at(SIGNED_AT)), Ok(()));
    request.uri = request
        .uri
        .to_string()
        .replace("object.txt", "other.txt")
        .parse()
        .unwrap();
    assert_eq!(
        check(&request, SECRET, at(SIGNED_AT)),
        Err(VerifyError::SignatureDoesNotMatch)
    );
}

#[test]
fn presigned_urls_verify_until_they_expire() {
    let text = std::fs::read_to_string(corpus()).unwrap();
    let presigned: Vec<OwnedRequest> = text
        .lines()
        .filter(|l| l.contains("\"presigned\": true") && l.contains("X-Amz-Signature"))
        .map(|l| parse_json(l).unwrap())
        .collect();
    assert!(!presigned.is_empty());
    for request in &presigned {
        assert_eq!(
            check(request, SECRET, at(SIGNED_AT + 60)),
            Ok(()),
            "{}",
            request.uri
        );
        let expires: u64 = request
            .uri
            .query()
            .unwrap()
            .split('&')
            .find_map(|p| p.strip_prefix("X-Amz-Expires="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(matches!(
            check(request, SECRET, at(SIGNED_AT + expires + 1)),
            Err(VerifyError::Expired(_))
        ));
        let mut tampered = request.uri.to_string();
        tampered = tampered.replacen("X-Amz-Signature=", "X-Amz-Signature=0", 1);
        let mut bad = parse_json(
            &serde_json::json!({"method": "GET", "url": tampered, "headers": {}}).to_string(),
        )
        .unwrap();
        bad.host = request.host.clone();
        assert_ne!(check(&bad, SECRET, at(SIGNED_AT + 60)), Ok(()));
    }
}

#[test]
fn resigned_requests_verify_with_the_session_credentials_and_keep_host() {
    use airlock::cloud::aws::sigv4::{Payload, SigningCredentials, resign};
    let session = SigningCredentials {
        access_key_id: "ASIAEXAMPLESESSION01",
        secret: "session-secret-0123456789abcdefghijklmno",
        session_token: Some("FwoGZXIvYXdzEXAMPLETOKEN"),
    };
    let text = std::fs::read_to_string(corpus()).unwrap();
    let mut count = 0;
    for line in text.lines().filter(|l| !l.contains("\"presigned\": true")) {
        let original = parse_json(line).unwrap();
        let view = original.view();
        let Ok(signature) = sigv4::parse(&view) else {
            continue;
        };
        let declared = original
            .headers
            .get("x-amz-content-sha256")
            .map(|v| v.to_str().unwrap().to_string());
        let mut builder = http::Request::builder()
            .method(original.method.clone())
            .uri(original.uri.clone());
        for (k, v) in &original.headers {
            builder = builder.header(k, v);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        let payload = match &declared {
            Some(hash) => Payload::Declared(hash),
            None => Payload::Bytes(&original.body),
        };
        let signed = signature.signed_headers.clone();
        resign(
            &mut parts,
            signature.expires.is_some(),
            &original.host,
            payload,
            &signed,
            &session,
            signature.region,
            signature.service,
            at(SIGNED_AT + 10),
        )
        .unwrap();
        assert!(
            !parts.headers.contains_key("host") || parts.headers["host"] == original.host.as_str()
        );
        let resigned = OwnedRequest {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            host: original.host.clone(),
            body: original.body.clone(),
        };
        let view = resigned.view();
        let new_signature = sigv4::parse(&view).unwrap();
        assert_eq!(new_signature.access_key_id, "ASIAEXAMPLESESSION01");
        let mut expected: Vec<&str> = signed
            .iter()
            .copied()
            .chain(["x-amz-security-token"])
            .collect();
        expected.sort();
        expected.dedup();
        assert_eq!(
            new_signature.signed_headers, expected,
            "the re-signed header set is the agent's, plus the token"
        );
        assert_eq!(
            sigv4::verify(&view, &new_signature, session.secret, at(SIGNED_AT + 10)),
            Ok(()),
            "{line}"
        );
        assert_eq!(
            resigned.headers["x-amz-security-token"],
            "FwoGZXIvYXdzEXAMPLETOKEN"
        );
        count += 1;
        if count == 3000 {
            break;
        }
    }
    assert_eq!(count, 3000);
}

/// The header signature of AWS's published signed-chunk example (S3 API reference,
/// "Transferring payload in multiple chunks"): an external check of the verifier.
#[test]
fn the_aws_documentation_streaming_example_header_verifies() {
    let raw = "PUT /examplebucket/chunkObject.txt HTTP/1.1\r\n\
        Host: s3.amazonaws.com\r\n\
        x-amz-date: 20130524T000000Z\r\n\
        x-amz-storage-class: REDUCED_REDUNDANCY\r\n\
        Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9\r\n\
        x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD\r\n\
        Content-Encoding: aws-chunked\r\n\
        x-amz-decoded-content-length: 66560\r\n\
        Content-Length: 66824\r\n\r\n";
    let request = airlock::explain::parse_raw(raw.as_bytes()).unwrap();
    let now = sigv4::parse_amz_date("20130524T000000Z").unwrap();
    assert_eq!(
        check(&request, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", now),
        Ok(())
    );
    assert_eq!(
        check(&request, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEz", now),
        Err(VerifyError::SignatureDoesNotMatch)
    );
}
