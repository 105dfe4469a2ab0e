//! The hash every cloud's approval fingerprint is built with: length-prefixed fields in a
//! fixed order, so no two different requests can run their fields together into the same
//! bytes. Each cloud decides *which* fields (`aws::fingerprint`, `gcp::fingerprint`).

use sha2::{Digest, Sha256};

use super::{BodyBinding, Call, Fingerprint};

pub struct FingerprintHash(Sha256);

impl FingerprintHash {
    /// Start with the request line: agent, method, host, path, and the query's parameters
    /// sorted, minus those `skip` names (signature parameters, for AWS).
    pub fn request(
        agent: &str,
        method: &http::Method,
        host: &str,
        uri: &http::Uri,
        skip: impl Fn(&str) -> bool,
    ) -> FingerprintHash {
        let mut hash = FingerprintHash(Sha256::new());
        hash.field(agent.as_bytes());
        hash.field(method.as_str().as_bytes());
        hash.field(host.as_bytes());
        hash.field(uri.path().as_bytes());
        let mut query: Vec<&str> = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| !skip(p.split_once('=').map_or(*p, |(k, _)| k)))
            .collect();
        query.sort_unstable();
        hash.field(query.join("&").as_bytes());
        hash
    }

    pub fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_be_bytes());
        self.0.update(bytes);
    }

    /// The named headers, sorted, each with every value it has.
    pub fn headers(&mut self, headers: &http::HeaderMap, mut names: Vec<&str>) {
        names.sort_unstable();
        names.dedup();
        for name in names {
            self.field(name.as_bytes());
            for value in headers.get_all(name) {
                self.field(value.as_bytes());
            }
        }
    }

    /// The call's parameters minus its idempotency fields (at the top, or inside a JSON
    /// `body`); whether any was present (the body then carried per-send tokens).
    pub fn params(&mut self, call: &Call) -> bool {
        let mut params = call.params.clone();
        let mut tokens = false;
        if let Some(map) = params.as_object_mut() {
            for name in &call.idempotency_params {
                tokens |= map.remove(*name).is_some();
                tokens |= map
                    .get_mut("body")
                    .and_then(serde_json::Value::as_object_mut)
                    .is_some_and(|body| body.remove(*name).is_some());
            }
        }
        self.field(params.to_string().as_bytes());
        tokens
    }

    /// A body's SHA-256 (hex), given or computed.
    pub fn body_sha256(&mut self, hex_digest: &str) {
        self.field(b"sha256");
        self.field(hex_digest.as_bytes());
    }

    pub fn finish(self, body: BodyBinding) -> Fingerprint {
        Fingerprint {
            hash: hex::encode(self.0.finalize()),
            body,
        }
    }
}

/// The hex SHA-256 of a body read whole with each idempotency token's value blanked, so
/// two sends of one call (each with a fresh token) hash alike while every other byte is
/// bound. `None` when a token's value is not found exactly once in the body (it cannot be
/// blanked unambiguously): the caller then hashes the body as it is.
pub fn sha256_without_tokens(body: &[u8], call: &Call) -> Option<String> {
    let mut bytes = body.to_vec();
    for name in &call.idempotency_params {
        let value = call
            .params
            .get(*name)
            .or_else(|| call.params.get("body").and_then(|b| b.get(*name)));
        let Some(value) = value else { continue };
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if text.is_empty() {
            continue;
        }
        let needle = text.as_bytes();
        let mut found = bytes
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i);
        let at = found.next()?;
        if found.next().is_some() {
            return None;
        }
        bytes.drain(at..at + needle.len());
    }
    Some(sha256_hex(&bytes))
}

/// The hex SHA-256 of a body read whole.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
