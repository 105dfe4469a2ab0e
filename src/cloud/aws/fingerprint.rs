//! What an approval of an AWS call binds to: SHA-256 over the agent, method, host, path,
//! sorted query (minus signature parameters), the signed headers minus volatile ones, the
//! call's parameters minus idempotency tokens (so a re-run with a fresh token is the same
//! call), and the body's bytes wherever Airlock can know them.

use sha2::{Digest, Sha256};

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
/// one, else the SHA-256 of a body read whole. A call whose body holds idempotency tokens
/// (fresh on every SDK call) is bound by its decoded parameters instead, which cover the
/// body minus those tokens. A streamed body with no declared hash (`UNSIGNED-PAYLOAD`,
/// aws-chunked) cannot be bound: the result says so, for reviewers and the audit record.
pub fn fingerprint(request: &Request<'_>) -> Fingerprint {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    };
    field(request.agent.as_bytes());
    field(request.method.as_str().as_bytes());
    field(request.host.as_bytes());
    field(request.uri.path().as_bytes());
    let mut query: Vec<&str> = request
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split_once('=').map_or(*p, |(k, _)| k);
            !super::is_auth_param(key)
        })
        .collect();
    query.sort_unstable();
    field(query.join("&").as_bytes());
    let mut names: Vec<&str> = request
        .signed_headers
        .iter()
        .map(String::as_str)
        .filter(|h| !VOLATILE_HEADERS.contains(h))
        .collect();
    names.sort_unstable();
    for name in names {
        field(name.as_bytes());
        for value in request.headers.get_all(name) {
            field(value.as_bytes());
        }
    }
    let mut tokens = false;
    if let Some(call) = request.call {
        let mut params = call.params.clone();
        if let serde_json::Value::Object(map) = &mut params {
            for name in &call.idempotency_params {
                tokens |= map.remove(*name).is_some();
            }
        }
        field(params.to_string().as_bytes());
    }
    let body = if tokens {
        BodyBinding::Params
    } else if let Some(declared) = request.declared_sha256 {
        field(b"sha256");
        field(declared.as_bytes());
        BodyBinding::Sha256
    } else if let Some(bytes) = request.body {
        field(b"sha256");
        field(hex::encode(Sha256::digest(bytes)).as_bytes());
        BodyBinding::Sha256
    } else {
        BodyBinding::Unbound
    };
    Fingerprint {
        hash: hex::encode(hash.finalize()),
        body,
    }
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
