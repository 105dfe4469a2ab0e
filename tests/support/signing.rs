//! Sign test requests the way an AWS SDK does (SigV4), with an agent's Airlock-issued key.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};

/// An agent's key pair, as `airlock agents add` printed it.
#[derive(Debug, Clone)]
pub struct AgentKey {
    pub id: String,
    pub secret: String,
}

/// Sign `request` for `service` in us-east-1 at `time`. A body that is not in memory (a
/// stream) is declared `UNSIGNED-PAYLOAD`, as S3 clients do for streamed uploads.
pub fn sign_at(request: &mut reqwest::Request, key: &AgentKey, service: &str, time: SystemTime) {
    let streaming = request.body().is_some_and(|b| b.as_bytes().is_none());
    let body_bytes: Vec<u8> = request
        .body()
        .and_then(|b| b.as_bytes())
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    if streaming {
        request.headers_mut().insert(
            "x-amz-content-sha256",
            "UNSIGNED-PAYLOAD".parse().expect("header"),
        );
    }
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                v.to_str().expect("text").to_string(),
            )
        })
        .collect();
    let body = if streaming {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(&body_bytes)
    };
    let identity = Credentials::new(&key.id, &key.secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.url().as_str(),
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        body,
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    for (name, value) in instructions.headers() {
        request.headers_mut().insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
}

pub fn sign_now(request: &mut reqwest::Request, key: &AgentKey, service: &str) {
    sign_at(request, key, service, SystemTime::now());
}

/// The SigV4 `Authorization` and `X-Amz-Date` headers for a request with no body to `host`
/// (the signed `host` value exactly as given, port included).
pub fn auth_headers(key: &AgentKey, method: &str, host: &str, path: &str) -> Vec<(String, String)> {
    let identity = Credentials::new(&key.id, &key.secret, None, None, "test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("params")
        .into();
    let url = format!("https://{}{path}", host.trim_end_matches(":443"));
    let signable = SignableRequest::new(
        method,
        url,
        [("host", host)].into_iter(),
        SignableBody::Bytes(b""),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    instructions
        .headers()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// A signed raw HTTP/1.1 GET of `path` with `Host: {host}` and `extra` header lines.
pub fn raw_get(key: &AgentKey, host: &str, path: &str, extra: &str) -> Vec<u8> {
    let auth: String = auth_headers(key, "GET", host, path)
        .into_iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}{extra}\r\n").into_bytes()
}

/// A SigV4 presigned GET URL for `url` (an S3 object), valid for `expires`.
pub fn presign(url: &str, key: &AgentKey, expires: std::time::Duration) -> String {
    use aws_sigv4::http_request::{PercentEncodingMode, SignatureLocation};
    let identity = Credentials::new(&key.id, &key.secret, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host");
    let signable = SignableRequest::new(
        "GET",
        url,
        [("host", host)].into_iter(),
        SignableBody::UnsignedPayload,
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut signed = reqwest::Url::parse(url).expect("url");
    for (name, value) in instructions.params() {
        signed.query_pairs_mut().append_pair(name, value);
    }
    signed.to_string()
}
