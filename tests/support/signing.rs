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
    sign_with(request, key, service, time, None);
}

/// Sign with `x-amz-content-sha256: declared` (a hash claimed for the body, true or not),
/// as S3 clients sign uploads.
pub fn sign_declared(
    request: &mut reqwest::Request,
    key: &AgentKey,
    service: &str,
    declared: &str,
) {
    request
        .headers_mut()
        .insert("x-amz-content-sha256", declared.parse().expect("header"));
    sign_with(request, key, service, SystemTime::now(), Some(declared));
}

fn sign_with(
    request: &mut reqwest::Request,
    key: &AgentKey,
    service: &str,
    time: SystemTime,
    declared: Option<&str>,
) {
    let streaming = declared.is_none() && request.body().is_some_and(|b| b.as_bytes().is_none());
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
    let body = match declared {
        Some(hash) => SignableBody::Precomputed(hash.to_string()),
        None if streaming => SignableBody::UnsignedPayload,
        None => SignableBody::Bytes(&body_bytes),
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

/// An S3 PUT with a signed aws-chunked body (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`), as the
/// Java and Go SDKs send uploads: the header signature seeds a chain of chunk signatures.
/// `tamper`: flip one byte of the second chunk's data after signing it.
pub fn signed_chunked_put(
    url: &str,
    key: &AgentKey,
    data: &[u8],
    chunk_size: usize,
    tamper: bool,
) -> reqwest::Request {
    signed_chunked_put_with(url, key, data, chunk_size, tamper, None)
}

/// As [`signed_chunked_put`]; with `trailer` (name, value), the body ends with that signed
/// trailing header (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`).
pub fn signed_chunked_put_with(
    url: &str,
    key: &AgentKey,
    data: &[u8],
    chunk_size: usize,
    tamper: bool,
    trailer: Option<(&str, &str)>,
) -> reqwest::Request {
    use aws_sigv4::sign::v4::{sign_chunk, sign_trailer};
    let mode = if trailer.is_some() {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    } else {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    };
    let time = SystemTime::now();
    let chunks: Vec<&[u8]> = data.chunks(chunk_size).chain([&[][..]]).collect();
    // Each chunk is `<hex size>;chunk-signature=<64 hex>\r\n<data>\r\n`.
    // The final chunk has no data line; then `\r\n`, or the trailer lines and `\r\n`.
    let chunk_lines: usize = chunks
        .iter()
        .map(|c| format!("{:x}", c.len()).len() + ";chunk-signature=".len() + 64 + 2)
        .sum();
    let data_lines: usize = chunks
        .iter()
        .filter(|c| !c.is_empty())
        .map(|c| c.len() + 2)
        .sum();
    let trailer_lines = trailer.map_or(0, |(n, v)| {
        n.len() + 1 + v.len() + 2 + "x-amz-trailer-signature:".len() + 64 + 2
    });
    let encoded_len = chunk_lines + data_lines + trailer_lines + 2;
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("host");
    let mut headers = vec![
        ("host".to_string(), host.to_string()),
        ("content-encoding".to_string(), "aws-chunked".to_string()),
        ("content-length".to_string(), encoded_len.to_string()),
        ("x-amz-content-sha256".to_string(), mode.to_string()),
        (
            "x-amz-decoded-content-length".to_string(),
            data.len().to_string(),
        ),
    ];
    if let Some((name, _)) = trailer {
        headers.push(("x-amz-trailer".to_string(), name.to_string()));
    }
    let identity = Credentials::new(&key.id, &key.secret, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
    settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let signable = SignableRequest::new(
        "PUT",
        url,
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Precomputed(mode.to_string()),
    )
    .expect("signable");
    let (instructions, seed) = sign(signable, &params).expect("sign").into_parts();

    let chunk_params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(time)
        .settings(())
        .build()
        .expect("chunk params");
    let mut previous = seed;
    let mut body = Vec::with_capacity(encoded_len);
    for (i, chunk) in chunks.iter().enumerate() {
        let signature = sign_chunk(
            &bytes::Bytes::copy_from_slice(chunk),
            &previous,
            &chunk_params,
        )
        .expect("sign chunk")
        .signature()
        .to_string();
        body.extend_from_slice(
            format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes(),
        );
        if !chunk.is_empty() {
            let start = body.len();
            body.extend_from_slice(chunk);
            if tamper && i == 1 {
                body[start] ^= 1;
            }
            body.extend_from_slice(b"\r\n");
        }
        previous = signature;
    }
    if let Some((name, value)) = trailer {
        let mut trailing = aws_smithy_runtime_api::http::Headers::new();
        trailing.append(name.to_string(), value.to_string());
        let signature = sign_trailer(&trailing, &previous, &chunk_params)
            .expect("sign trailer")
            .signature()
            .to_string();
        body.extend_from_slice(
            format!("{name}:{value}\r\nx-amz-trailer-signature:{signature}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(b"\r\n");
    assert_eq!(body.len(), encoded_len);

    let mut request = reqwest::Request::new(reqwest::Method::PUT, url.parse().expect("url"));
    for (name, value) in headers.iter().skip(1).chain(
        instructions
            .headers()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        request.headers_mut().insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            value.parse().expect("value"),
        );
    }
    // Sent as a stream, the way uploads travel (no in-memory body for Airlock to hash).
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    *request.body_mut() = Some(reqwest::Body::wrap_stream(futures_util::stream::iter(
        pieces,
    )));
    request
}
