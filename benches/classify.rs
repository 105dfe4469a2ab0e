//! The classifier on the request path: typical JSON, query and REST requests (with the
//! host parsed per request, as `airlock explain` does, and once per connection, as the
//! proxy does), the error-shape guess, and the one-time catalog load, for AWS and Google
//! (`-- gcp` runs only Google's: a REST call, a batch of 10, the catalog load). Figures in
//! BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use airlock::cloud::aws::{self, catalog};
use airlock::cloud::gcp;
use airlock::explain::{OwnedRequest, parse_raw};
use criterion::{Criterion, criterion_group, criterion_main};

fn request(raw: &str) -> OwnedRequest {
    parse_raw(raw.as_bytes()).unwrap()
}

const AUTH: &str = "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/SERVICE/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024\r\nX-Amz-Date: 20260101T000000Z\r\nUser-Agent: aws-cli/2.0 md/Botocore#1.44.5\r\n";

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

fn load(c: &mut Criterion) {
    let before = rss();
    let loaded = catalog::Catalog::load();
    let after = rss();
    println!(
        "catalog: {} services, {} operations; resident memory +{:.1} MiB",
        loaded.services.len(),
        loaded.operation_count(),
        (after.saturating_sub(before)) as f64 / (1024.0 * 1024.0)
    );
    drop(loaded);
    let mut group = c.benchmark_group("catalog");
    group.sample_size(10);
    group.bench_function("catalog_load", |b| b.iter(catalog::Catalog::load));
    group.finish();
}

fn bench(c: &mut Criterion) {
    let _ = catalog::catalog();
    let json = request(&format!(
        "POST / HTTP/1.1\r\nHost: dynamodb.us-east-1.amazonaws.com\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\nContent-Type: application/x-amz-json-1.0\r\n{}\r\n{{\"TableName\":\"orders\",\"Item\":{{\"id\":{{\"S\":\"42\"}},\"total\":{{\"N\":\"9.5\"}}}}}}",
        AUTH.replace("SERVICE", "dynamodb")
    ));
    let query = request(&format!(
        "POST / HTTP/1.1\r\nHost: iam.amazonaws.com\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\n{}\r\nAction=AttachRolePolicy&Version=2010-05-08&RoleName=ci-deployer&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FAdministratorAccess",
        AUTH.replace("SERVICE", "iam")
    ));
    let rest = request(&format!(
        "PUT /reports/2026/q1.csv HTTP/1.1\r\nHost: amzn-bucket.s3.us-east-1.amazonaws.com\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nContent-Type: text/csv\r\nx-amz-meta-owner: data-team\r\n{}\r\n",
        AUTH.replace("SERVICE", "s3")
    ));
    let rest_json = request(&format!(
        "POST /2015-03-31/functions/billing-export/invocations HTTP/1.1\r\nHost: lambda.us-east-1.amazonaws.com\r\nX-Amz-Invocation-Type: RequestResponse\r\n{}\r\n{{\"month\":\"2026-01\"}}",
        AUTH.replace("SERVICE", "lambda")
    ));
    for (name, req) in [
        ("classify_json", &json),
        ("classify_query", &query),
        ("classify_rest_xml_s3_put", &rest),
        ("classify_rest_json_lambda", &rest_json),
    ] {
        assert!(
            aws::classify(&req.view()).call().is_some(),
            "{name} did not classify"
        );
        c.bench_function(name, |b| b.iter(|| aws::classify(black_box(&req.view()))));
        // As the proxy classifies: the host parsed once per connection, not per request.
        let host = aws::ApiHost::parse(&req.host);
        c.bench_function(&format!("{name}_host_parsed_once"), |b| {
            b.iter(|| aws::classify_at(&host, black_box(&req.view())))
        });
    }
    // The error shape of a request not yet classified (the proxy guesses one per request).
    let s3 = aws::ApiHost::parse(&rest.host);
    c.bench_function("error_shape_guess_s3_put", |b| {
        b.iter(|| aws::errors::ErrorShape::guess(black_box(&rest.view()), &s3))
    });
    c.bench_function("aws_host_parse_s3", |b| {
        b.iter(|| aws::ApiHost::parse(black_box(&rest.host)))
    });
}

/// SigV4 verification of a small signed request (issue 4 target: ≤ 10 µs).
fn verify(c: &mut Criterion) {
    use airlock::cloud::aws::sigv4;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let time = sigv4::parse_amz_date("20260101T000000Z").unwrap();
    let body = "Action=AttachRolePolicy&Version=2010-05-08&RoleName=ci&PolicyArn=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2FAdmin";
    let identity = Credentials::new("AKIDEXAMPLE", secret, None, None, "bench").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("iam")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers = [
        ("host", "iam.amazonaws.com"),
        (
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
    ];
    let signable = SignableRequest::new(
        "POST",
        "https://iam.amazonaws.com/",
        headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut raw = String::from(
        "POST / HTTP/1.1\r\nHost: iam.amazonaws.com\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\n",
    );
    for (name, value) in instructions.headers() {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    let request = request(&raw);
    let view = request.view();
    let signature = sigv4::parse(&view).unwrap();
    sigv4::verify(&view, &signature, secret, time).unwrap();
    let session = sigv4::SigningCredentials {
        access_key_id: "ASIAEXAMPLESESSION01",
        secret: "session-secret-0123456789abcdefghijklmno",
        session_token: Some("FwoGZXIvYXdzEXAMPLETOKEN"),
    };
    let signed: Vec<&str> = signature.signed_headers.clone();
    let mut template = http::Request::builder().method("POST").uri("/");
    for (k, v) in &request.headers {
        template = template.header(k, v);
    }
    let (parts, ()) = template.body(()).unwrap().into_parts();
    c.bench_function("sigv4_resign_small_request", |b| {
        b.iter_batched(
            || parts.clone(),
            |mut p| {
                sigv4::resign(
                    &mut p,
                    false,
                    "iam.amazonaws.com",
                    sigv4::Payload::Bytes(body.as_bytes()),
                    &signed,
                    &session,
                    "us-east-1",
                    "iam",
                    time,
                )
                .unwrap()
            },
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("sigv4_verify_small_request", |b| {
        b.iter(|| {
            let signature = sigv4::parse(black_box(&view)).unwrap();
            sigv4::verify(&view, &signature, secret, time).unwrap()
        })
    });
}

/// The Google catalog: load time and resident memory (targets: ≤ 100 ms, ≤ 40 MiB).
fn gcp_load(c: &mut Criterion) {
    let before = rss();
    let loaded = gcp::catalog::Catalog::load();
    let after = rss();
    println!(
        "gcp catalog: {} documents, {} methods, {} routes; resident memory +{:.1} MiB",
        loaded.apis.len(),
        loaded.methods.len(),
        loaded.routes.len(),
        (after.saturating_sub(before)) as f64 / (1024.0 * 1024.0)
    );
    drop(loaded);
    let mut group = c.benchmark_group("gcp_catalog");
    group.sample_size(10);
    group.bench_function("gcp_catalog_load", |b| b.iter(gcp::catalog::Catalog::load));
    group.finish();
}

const GCP_HEAD: &str = "Authorization: Bearer ya29.a0AfB_byBenchToken\r\nUser-Agent: google-api-python-client/2.202.0 (gzip)\r\nx-goog-api-client: gdcl/2.202.0 gl-python/3.12.3\r\nAccept: application/json\r\n";

/// A typical REST call (target ≤ 5 µs) and a batch of 10 (target ≤ 50 µs).
fn gcp_bench(c: &mut Criterion) {
    let _ = gcp::catalog::catalog();
    let rest = request(&format!(
        "POST /v1/projects/my-project/topics/orders:setIamPolicy?alt=json HTTP/1.1\r\nHost: pubsub.googleapis.com\r\nContent-Type: application/json\r\n{GCP_HEAD}\r\n{{\"policy\":{{\"bindings\":[{{\"role\":\"roles/pubsub.publisher\",\"members\":[\"user:a@example.com\"]}}]}}}}"
    ));
    let compute = request(&format!(
        "DELETE /compute/v1/projects/my-project/zones/us-central1-a/instances/web-1?requestId=8c1f0d9e&alt=json HTTP/1.1\r\nHost: compute.googleapis.com\r\n{GCP_HEAD}\r\n"
    ));
    let mut body = String::new();
    for i in 0..10 {
        body.push_str(&format!(
            "--===batch===\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{i}>\r\n\r\nDELETE /storage/v1/b/my-bucket/o/logs%2F2026%2F{i}.json?alt=json HTTP/1.1\r\nContent-Type: application/json\r\naccept: application/json\r\n\r\n\r\n"
        ));
    }
    body.push_str("--===batch===--\r\n");
    let batch = request(&format!(
        "POST /batch/storage/v1 HTTP/1.1\r\nHost: storage.googleapis.com\r\nContent-Type: multipart/mixed; boundary=\"===batch===\"\r\n{GCP_HEAD}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    for (name, req, parts) in [
        ("gcp_classify_rest_pubsub_set_iam_policy", &rest, 0),
        ("gcp_classify_rest_compute_delete", &compute, 0),
        ("gcp_classify_batch_of_10", &batch, 10),
    ] {
        let call = gcp::classify(&req.view());
        let call = call
            .call()
            .unwrap_or_else(|| panic!("{name} did not classify: {call:?}"));
        assert_eq!(call.parts.len(), parts, "{name}");
        c.bench_function(name, |b| b.iter(|| gcp::classify(black_box(&req.view()))));
    }
}

criterion_group!(benches, load, bench, verify, gcp_load, gcp_bench);
criterion_main!(benches);
