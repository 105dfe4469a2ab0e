//! What an approval of an AWS call binds to: SHA-256 over the agent, method, host, path,
//! sorted query (minus signature parameters), the signed headers minus volatile ones, the
//! call's parameters minus idempotency tokens (so a re-run with a fresh token is the same
//! call), and the body's bytes wherever Airlock can know them.

use crate::cloud::fingerprint::{FingerprintHash, sha256_hex, sha256_without_tokens};
use crate::cloud::{BodyBinding, Call, Fingerprint};

/// Headers that differ between two sends of the same call (time, signature, SDK
/// bookkeeping, transport): left out. `x-amz-content-sha256` is bound separately, as the
/// body's hash (`BodyBinding`), not as a header.
const VOLATILE_HEADERS: [&str; 10] = [
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
    "user-agent",
    "x-amz-user-agent",
    "content-length",
    "expect",
];

/// The request as the fingerprint reads it.
pub struct Request<'a> {
    pub agent: &'a str,
    pub method: &'a http::Method,
    pub host: &'a str,
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
    pub signed_headers: &'a [String],
    pub call: Option<&'a Call>,
    /// The body read whole, or `None` while it streams.
    pub body: Option<&'a [u8]>,
    /// `x-amz-content-sha256` when it is a SHA-256 (hex, lower-case).
    pub declared_sha256: Option<&'a str>,
}

/// The fingerprint of one AWS request.
///
/// The body is bound by its bytes: the declared payload hash where the signature carries
/// one, else the SHA-256 of a body read whole — with the values of idempotency tokens
/// (fresh on every SDK call) blanked, so a re-run is the same call. A streamed body with no declared hash (`UNSIGNED-PAYLOAD`,
/// aws-chunked) cannot be bound: the result says so, for reviewers and the audit record.
pub fn fingerprint(request: &Request<'_>) -> Fingerprint {
    let mut hash = FingerprintHash::request(
        request.agent,
        request.method,
        request.host,
        request.uri,
        super::is_auth_param,
    );
    let names = request
        .signed_headers
        .iter()
        .map(String::as_str)
        .filter(|h| !VOLATILE_HEADERS.contains(h))
        .collect();
    hash.headers(request.headers, names);
    let tokens = request.call.is_some_and(|call| hash.params(call));
    let body = if let (true, Some(call)) = (tokens, request.call) {
        // The body's bytes bound but for the tokens' values (the decoded params alone may
        // not tell two bodies apart where a decoder is lossy); streamed: the params.
        match request.body {
            Some(bytes) => {
                let digest =
                    sha256_without_tokens(bytes, call).unwrap_or_else(|| sha256_hex(bytes));
                hash.body_sha256(&digest);
                BodyBinding::Sha256
            }
            None => BodyBinding::Params,
        }
    } else if let Some(declared) = request.declared_sha256 {
        hash.body_sha256(declared);
        BodyBinding::Sha256
    } else if let Some(bytes) = request.body {
        hash.body_sha256(&sha256_hex(bytes));
        BodyBinding::Sha256
    } else {
        BodyBinding::Unbound
    };
    hash.finish(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(body: Option<&[u8]>, declared: Option<&str>) -> Fingerprint {
        let uri: http::Uri = "/reports/q3.csv".parse().unwrap();
        let headers = http::HeaderMap::new();
        fingerprint(&Request {
            agent: "ci",
            method: &http::Method::PUT,
            host: "bucket.s3.amazonaws.com",
            uri: &uri,
            headers: &headers,
            signed_headers: &["host".to_string()],
            call: None,
            body,
            declared_sha256: declared,
        })
    }

    #[test]
    fn two_bodies_to_one_key_are_two_calls() {
        let a = put(Some(b"one"), None);
        let b = put(Some(b"two"), None);
        assert_ne!(a.hash, b.hash);
        assert_eq!(a.body, BodyBinding::Sha256);
        assert_eq!(a, put(Some(b"one"), None));
    }

    #[test]
    fn a_declared_hash_binds_a_streamed_body() {
        let a = put(None, Some(&"a".repeat(64)));
        let b = put(None, Some(&"b".repeat(64)));
        assert_ne!(a.hash, b.hash);
        assert_eq!(a.body, BodyBinding::Sha256);
    }

    #[test]
    fn an_unsigned_stream_is_unbound_and_says_so() {
        assert_eq!(put(None, None).body, BodyBinding::Unbound);
    }
}
