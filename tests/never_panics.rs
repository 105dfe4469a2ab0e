//! Property tests: whatever bytes arrive, the classifier and its decoders answer (a
//! classification, an unknown, or an error) and never panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use airlock::cloud::aws::{self, decode, endpoint::Endpoint};
use airlock::explain;
use proptest::prelude::*;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoders_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::xml_to_json(&body);
        let _ = decode::cbor_to_json(&body);
        let _ = decode::form_to_json(form_urlencoded::parse(&body));
    }

    #[test]
    fn raw_requests_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(request) = explain::parse_raw(&bytes) {
            let _ = aws::classify(&request.view());
        }
    }

    #[test]
    fn hosts_never_panic(host in "[a-z0-9.-]{0,80}") {
        let _ = Endpoint::parse(&host);
    }

    #[test]
    fn requests_to_real_hosts_never_panic(
        method in prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"]),
        host in prop::sample::select(vec![
            "b.s3.us-east-1.amazonaws.com", "s3.amazonaws.com", "iam.amazonaws.com",
            "dynamodb.us-east-1.amazonaws.com", "123456789012.s3-control.us-east-1.amazonaws.com",
            "lambda.us-east-1.amazonaws.com", "x.mrap.accesspoint.s3-global.amazonaws.com",
        ]),
        service in prop::sample::select(vec!["s3", "iam", "dynamodb", "lambda", "nosuch"]),
        path in "(/[a-zA-Z0-9%{}+._~-]{0,12}){0,6}",
        query in "([a-zA-Z.-]{1,10}(=[a-zA-Z0-9%.]{0,8})?&?){0,4}",
        target in proptest::option::of("[A-Za-z_0-9]{0,20}\\.[A-Za-z]{0,20}"),
        form in any::<bool>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut raw = format!("{method} {path}?{query} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {}\r\n", AUTH.replace("/s3/", &format!("/{service}/")));
        if let Some(target) = target {
            raw.push_str(&format!("X-Amz-Target: {target}\r\n"));
        }
        if form {
            raw.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
        }
        raw.push_str("\r\n");
        let mut bytes = raw.into_bytes();
        bytes.extend_from_slice(&body);
        if let Ok(request) = explain::parse_raw(&bytes) {
            let _ = aws::classify(&request.view());
        }
    }
}
