//! What an approval of a Google call binds to: SHA-256 over the agent, method, host, path,
//! sorted query, every header but the volatile ones, the call's parameters minus
//! idempotency fields (`requestId`, …), and the body's bytes wherever Airlock can know them.
//!
//! Google requests carry no signed-header list, so the fingerprint binds every header
//! except those known to change between two sends of the same call: a header a client adds
//! that Airlock does not know makes a new approval (the stricter reading), never a shared one.

use crate::cloud::fingerprint::{FingerprintHash, sha256_hex, sha256_without_tokens};
use crate::cloud::{BodyBinding, Call, Fingerprint};

/// Headers that differ between two sends of the same call: credentials, client and
/// tracing bookkeeping, transport, per-send idempotency tokens.
const VOLATILE_HEADERS: [&str; 16] = [
    "authorization",
    "user-agent",
    "x-goog-api-client",
    "x-goog-gcs-idempotency-token",
    "x-cloud-trace-context",
    "traceparent",
    "tracestate",
    "grpc-timeout",
    "grpc-accept-encoding",
    "accept-encoding",
    "accept",
    "content-length",
    "connection",
    "te",
    "host",
    "x-airlock-reason",
];

/// The request as the fingerprint reads it.
pub struct Request<'a> {
    pub agent: &'a str,
    pub method: &'a http::Method,
    pub host: &'a str,
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
    pub call: Option<&'a Call>,
    /// The body read whole, or `None` while it streams.
    pub body: Option<&'a [u8]>,
}

/// The fingerprint of one Google request. The body is bound by the SHA-256 of a body read
/// whole (idempotency fields' values blanked); a streamed upload, or a resumable upload's
/// start, is unbound, and the result says so.
pub fn fingerprint(request: &Request<'_>) -> Fingerprint {
    // Idempotency fields (`requestId`) leave the query as they leave the params.
    let idempotency: &[&str] = request
        .call
        .map_or(&[], |call| call.idempotency_params.as_slice());
    let mut hash = FingerprintHash::request(
        request.agent,
        request.method,
        request.host,
        request.uri,
        |key| idempotency.contains(&key),
    );
    let names = request
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|h| !VOLATILE_HEADERS.contains(h))
        .collect();
    hash.headers(request.headers, names);
    let tokens = request.call.is_some_and(|call| hash.params(call));
    // A resumable upload's start carries only metadata: its bytes come later, in requests
    // of their own, so nothing here binds them.
    let resumable = request
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "uploadType=resumable"));
    let body = match (request.body, request.call) {
        _ if resumable => BodyBinding::Unbound,
        (Some(bytes), Some(call)) if tokens => {
            let digest = sha256_without_tokens(bytes, call).unwrap_or_else(|| sha256_hex(bytes));
            hash.body_sha256(&digest);
            BodyBinding::Sha256
        }
        (Some(bytes), _) => {
            hash.body_sha256(&sha256_hex(bytes));
            BodyBinding::Sha256
        }
        // A streamed upload: `x-goog-hash` is bound with the other headers, but CRC32C and
        // MD5 are no binding against a chosen body.
        (None, _) if tokens => BodyBinding::Params,
        (None, _) => BodyBinding::Unbound,
    };
    hash.finish(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(headers: &[(&str, &str)], call: Option<&Call>, body: Option<&[u8]>) -> Fingerprint {
        let uri: http::Uri = "/storage/v1/b/logs/o?alt=json&prettyPrint=false"
            .parse()
            .unwrap();
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        fingerprint(&Request {
            agent: "ci",
            method: &http::Method::POST,
            host: "storage.googleapis.com",
            uri: &uri,
            headers: &map,
            call,
            body,
        })
    }

    fn call(request_id: &str) -> Call {
        Call {
            cloud: crate::cloud::Cloud::Gcp,
            service: "compute",
            api: "compute:v1",
            operation: "compute.instances.delete",
            actions: Vec::new(),
            region: None,
            partition: "googleapis.com",
            account: None,
            resources: Vec::new(),
            params: serde_json::json!({"instance": "vm-1", "requestId": request_id}),
            idempotency_params: vec!["requestId"],
            protocol: "rest",
            presigned: false,
            parts: Vec::new(),
        }
    }

    #[test]
    fn a_resend_with_fresh_tokens_and_client_headers_is_the_same_call() {
        let a = fp(
            &[
                ("authorization", "Bearer one"),
                ("x-goog-api-client", "gl-python/3.11 gccl/2"),
                ("x-goog-gcs-idempotency-token", "uuid-1"),
            ],
            Some(&call("req-1")),
            Some(b"{\"requestId\":\"req-1\"}"),
        );
        let b = fp(
            &[
                ("authorization", "Bearer two"),
                ("x-goog-api-client", "gl-python/3.11 gccl/3"),
                ("x-goog-gcs-idempotency-token", "uuid-2"),
            ],
            Some(&call("req-2")),
            Some(b"{\"requestId\":\"req-2\"}"),
        );
        assert_eq!(a, b);
        assert_eq!(a.body, BodyBinding::Sha256);
        // Every other byte of the body is bound.
        let c = fp(
            &[],
            Some(&call("req-3")),
            Some(b"{\"requestId\":\"req-3\",\"x\":1}"),
        );
        assert_ne!(a.hash, c.hash);
    }

    #[test]
    fn other_bodies_headers_and_checksums_are_other_calls() {
        let base = fp(&[], None, Some(b"one"));
        assert_eq!(base.body, BodyBinding::Sha256);
        assert_ne!(base.hash, fp(&[], None, Some(b"two")).hash);
        assert_ne!(
            base.hash,
            fp(&[("x-goog-user-project", "billing")], None, Some(b"one")).hash
        );
        // A checksum a chosen body can match binds nothing: said so, though it is hashed.
        let declared = fp(&[("x-goog-hash", "crc32c=AAAAAA==")], None, None);
        assert_eq!(declared.body, BodyBinding::Unbound);
        assert_ne!(
            declared.hash,
            fp(&[("x-goog-hash", "crc32c=BBBBBB==")], None, None).hash
        );
        assert_eq!(fp(&[], None, None).body, BodyBinding::Unbound);
    }
}
