//! Verify an agent's SigV4 signature by recomputing it with the agent's secret (the
//! `aws-sigv4` crate signs; there is no verify call) and comparing in constant time.
//!
//! What makes a recomputation match what the SDK signed:
//! - exactly the headers listed in `SignedHeaders` (no default exclusions), `host` from
//!   the request's authority when no `Host` header travels (HTTP/2);
//! - time from `X-Amz-Date`, region and service from the credential scope;
//! - the payload as declared by `x-amz-content-sha256` (a hex hash, `UNSIGNED-PAYLOAD`,
//!   `STREAMING-…`), else the hash of the body bytes;
//! - S3 (and its variants) signs single-encoded, unnormalized paths;
//! - presigned URLs: the auth parameters are taken out and re-derived by the signer.
//!
//! Whether a declared body hash matches the body actually sent, and per-chunk signatures
//! of `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, are checked as the body streams.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode, sign,
};
use subtle::ConstantTimeEq;

use super::auth::{self, Algorithm};
use crate::cloud::RequestView;

/// The clock skew AWS tolerates, and so does Airlock.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);
/// The longest a SigV4 presigned URL may be valid, as AWS enforces (Airlock re-signs, so
/// the upstream never sees the agent's expiry: Airlock must enforce it).
pub const MAX_PRESIGN_EXPIRES: u64 = 7 * 24 * 3600;

/// Why a request's signature was not accepted; each maps to AWS's own error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the request is not signed with AWS Signature Version 4")]
    Unsigned,
    #[error("malformed authorization: {0}")]
    Malformed(String),
    #[error("{0} signatures are not accepted; sign with SigV4 (AWS4-HMAC-SHA256)")]
    Unsupported(&'static str),
    #[error("the signature does not match")]
    SignatureDoesNotMatch,
    #[error("the request time {request} differs from the server time by more than 5 minutes")]
    RequestTimeTooSkewed { request: String },
    #[error("the presigned URL expired at {0}")]
    Expired(String),
}

impl VerifyError {
    /// The AWS error code SDKs know.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Unsigned => "MissingAuthenticationToken",
            VerifyError::Malformed(_) => "IncompleteSignature",
            VerifyError::Unsupported(_) => "InvalidRequest",
            VerifyError::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            VerifyError::RequestTimeTooSkewed { .. } => "RequestTimeTooSkewed",
            VerifyError::Expired(_) => "AccessDenied",
        }
    }
}

/// The parts of a SigV4 signature that verification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature<'a> {
    pub access_key_id: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub signed_headers: Vec<&'a str>,
    pub signature: &'a str,
    pub amz_date: &'a str,
    /// Presigned: how long the URL is valid for.
    pub expires: Option<u64>,
}

/// Parse the SigV4 signature a request carries (header or presigned query).
pub fn parse<'a>(request: &RequestView<'a>) -> Result<Signature<'a>, VerifyError> {
    let query = request.uri.query();
    let parsed = auth::parse(request.headers, query).ok_or(VerifyError::Unsigned)?;
    match parsed.algorithm {
        Algorithm::SigV4 => {}
        Algorithm::SigV4a => return Err(VerifyError::Unsupported("SigV4a")),
        Algorithm::SigV2 => return Err(VerifyError::Unsupported("SigV2")),
    }
    let missing = |what: &str| VerifyError::Malformed(format!("no {what}"));
    let (region, service) = (
        parsed.region.ok_or_else(|| missing("region"))?,
        parsed.service.ok_or_else(|| missing("service"))?,
    );
    if parsed.presigned {
        let q = |key: &str| {
            query
                .unwrap_or_default()
                .split('&')
                .find_map(|p| p.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        };
        let signed = q("X-Amz-SignedHeaders").ok_or_else(|| missing("X-Amz-SignedHeaders"))?;
        let expires = q("X-Amz-Expires").ok_or_else(|| missing("X-Amz-Expires"))?;
        Ok(Signature {
            access_key_id: parsed.access_key_id,
            region,
            service,
            signed_headers: signed.split("%3B").flat_map(|s| s.split(';')).collect(),
            signature: q("X-Amz-Signature").ok_or_else(|| missing("X-Amz-Signature"))?,
            amz_date: q("X-Amz-Date").ok_or_else(|| missing("X-Amz-Date"))?,
            expires: Some(
                expires
                    .parse()
                    .ok()
                    .filter(|&e| e <= MAX_PRESIGN_EXPIRES)
                    .ok_or_else(|| {
                        VerifyError::Malformed(format!(
                            "X-Amz-Expires must be a number of seconds up to {MAX_PRESIGN_EXPIRES} (7 days)"
                        ))
                    })?,
            ),
        })
    } else {
        let header = request
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(VerifyError::Unsigned)?;
        let field = |name: &str| {
            header
                .split_once(' ')
                .map_or("", |(_, rest)| rest)
                .split(',')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        };
        let amz_date = request
            .headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| missing("X-Amz-Date header"))?;
        Ok(Signature {
            access_key_id: parsed.access_key_id,
            region,
            service,
            signed_headers: field("SignedHeaders")
                .ok_or_else(|| missing("SignedHeaders"))?
                .split(';')
                .collect(),
            signature: field("Signature").ok_or_else(|| missing("Signature"))?,
            amz_date,
            expires: None,
        })
    }
}

/// S3 and its variants sign single-encoded, unnormalized paths.
pub fn is_s3(service: &str) -> bool {
    matches!(
        service,
        "s3" | "s3-object-lambda" | "s3express" | "s3-outposts"
    )
}

/// Signing settings as SDKs use them: S3 (and variants) sign single-encoded, unnormalized
/// paths; no header is excluded by default (exactly the listed ones are signed).
fn settings_for(service: &str) -> SigningSettings {
    let s3 = is_s3(service);
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    settings.percent_encoding_mode = if s3 {
        PercentEncodingMode::Single
    } else {
        PercentEncodingMode::Double
    };
    settings.uri_path_normalization_mode = if s3 {
        UriPathNormalizationMode::Disabled
    } else {
        UriPathNormalizationMode::Enabled
    };
    settings
}

/// Headers the signer derives itself (from time, token, payload): never passed in.
const ADDED_BY_SIGNER: [&str; 3] = ["x-amz-date", "x-amz-security-token", "x-amz-content-sha256"];

/// The values of the `names` headers to sign; `host` comes from the `Host` header, or the
/// request's authority when none travels (HTTP/2).
fn signed_values<'h>(
    headers: &'h http::HeaderMap,
    names: &[&'h str],
    host: &'h str,
) -> Result<Vec<(&'h str, &'h str)>, VerifyError> {
    let mut values = Vec::with_capacity(names.len());
    for name in names
        .iter()
        .copied()
        .filter(|n| !ADDED_BY_SIGNER.contains(n))
    {
        let mut found = false;
        for value in headers.get_all(name) {
            let value = value
                .to_str()
                .map_err(|_| VerifyError::Malformed(format!("header {name} is not text")))?;
            values.push((name, value));
            found = true;
        }
        if !found {
            if name == "host" {
                values.push(("host", host));
            } else {
                return Err(VerifyError::Malformed(format!(
                    "signed header {name} is missing"
                )));
            }
        }
    }
    Ok(values)
}

/// `20260101T000000Z` → time.
pub fn parse_amz_date(value: &str) -> Result<SystemTime, VerifyError> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let parsed = time::PrimitiveDateTime::parse(value, format)
        .map_err(|_| VerifyError::Malformed(format!("bad X-Amz-Date `{value}`")))?;
    Ok(parsed.assume_utc().into())
}

/// Check `signature` on `request` with `secret`, at time `now`.
pub fn verify(
    request: &RequestView<'_>,
    signature: &Signature<'_>,
    secret: &str,
    now: SystemTime,
) -> Result<(), VerifyError> {
    let time = parse_amz_date(signature.amz_date)?;
    let skew = now.duration_since(time).unwrap_or_else(|e| e.duration());
    match signature.expires {
        Some(expires) => {
            if time > now + MAX_SKEW {
                return Err(VerifyError::RequestTimeTooSkewed {
                    request: signature.amz_date.to_string(),
                });
            }
            if now > time + Duration::from_secs(expires) {
                return Err(VerifyError::Expired(signature.amz_date.to_string()));
            }
        }
        None if skew > MAX_SKEW => {
            return Err(VerifyError::RequestTimeTooSkewed {
                request: signature.amz_date.to_string(),
            });
        }
        None => {}
    }

    let s3 = is_s3(signature.service);
    let declared = request
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok());
    let mut settings = settings_for(signature.service);
    if signature.signed_headers.contains(&"x-amz-content-sha256") {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let token = request
        .headers
        .get("x-amz-security-token")
        .and_then(|v| v.to_str().ok());
    settings.session_token_mode = if signature.signed_headers.contains(&"x-amz-security-token") {
        SessionTokenMode::Include
    } else {
        SessionTokenMode::Exclude
    };

    let headers = signed_values(request.headers, &signature.signed_headers, request.host)?;

    let uri;
    let body = if let Some(expires) = signature.expires {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(expires));
        uri = without_auth_params(request.uri);
        if s3 {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(request.body)
        }
    } else {
        uri = request.uri.to_string();
        match declared {
            Some(hash) => SignableBody::Precomputed(hash.to_string()),
            None => SignableBody::Bytes(request.body),
        }
    };

    let identity = Credentials::new(
        signature.access_key_id,
        secret,
        token.map(str::to_string),
        None,
        "airlock-agent",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(signature.region)
        .name(signature.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| VerifyError::Malformed(e.to_string()))?
        .into();
    let signable = SignableRequest::new(request.method.as_str(), uri, headers.into_iter(), body)
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    let expected = sign(signable, &params).map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if bool::from(
        expected
            .signature()
            .as_bytes()
            .ct_eq(signature.signature.as_bytes()),
    ) {
        Ok(())
    } else {
        Err(VerifyError::SignatureDoesNotMatch)
    }
}

const PRESIGN_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// The URI with presign parameters removed (the signer re-derives them).
fn without_auth_params(uri: &http::Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !PRESIGN_PARAMS.contains(&key)
        })
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// Credentials to re-sign with (the agent's short-lived role session).
pub struct SigningCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a str,
    pub session_token: Option<&'a str>,
}

/// The payload of a request being re-signed.
pub enum Payload<'a> {
    /// As declared by `x-amz-content-sha256` (kept, and signed).
    Declared(&'a str),
    /// The whole (small, buffered) body.
    Bytes(&'a [u8]),
}

/// Re-sign a request for forwarding: remove the agent's authentication (the header, or
/// the presign parameters of a `presigned` request), then sign with `credentials` for `region`/`service` at `time`, keeping
/// `Host` exactly; returns the new signature (the seed of re-signed chunk signatures).
/// Exactly the headers the agent's SDK signed (`signed_headers`) are signed again — a set known to reach AWS unchanged; headers nobody signed (user-agent,
/// framing that HTTP/2 → HTTP/1.1 may change) stay out of the signature.
#[allow(clippy::too_many_arguments)]
pub fn resign(
    parts: &mut http::request::Parts,
    presigned: bool,
    host: &str,
    payload: Payload<'_>,
    signed_headers: &[&str],
    credentials: &SigningCredentials<'_>,
    region: &str,
    service: &str,
    time: SystemTime,
) -> Result<String, VerifyError> {
    let err = |e: &dyn std::fmt::Display| VerifyError::Malformed(e.to_string());
    for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
        parts.headers.remove(name);
    }
    if presigned {
        let clean = without_auth_params(&parts.uri);
        let mut uri = std::mem::take(&mut parts.uri).into_parts();
        uri.path_and_query = Some(clean.parse().map_err(|e| err(&e))?);
        parts.uri = http::Uri::from_parts(uri).map_err(|e| err(&e))?;
    }
    let mut settings = settings_for(service);
    let body = match payload {
        Payload::Declared(hash) => {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            parts.headers.remove("x-amz-content-sha256");
            SignableBody::Precomputed(hash.to_string())
        }
        Payload::Bytes(bytes) => SignableBody::Bytes(bytes),
    };
    let headers = signed_values(&parts.headers, signed_headers, host)?;
    let identity = Credentials::new(
        credentials.access_key_id,
        credentials.secret,
        credentials.session_token.map(str::to_string),
        None,
        "airlock-session",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| err(&e))?
        .into();
    let uri = parts.uri.to_string();
    let signable = SignableRequest::new(parts.method.as_str(), uri, headers.into_iter(), body)
        .map_err(|e| err(&e))?;
    let (instructions, signature) = sign(signable, &params).map_err(|e| err(&e))?.into_parts();
    for (name, value) in instructions.headers() {
        let value = http::HeaderValue::from_str(value).map_err(|e| err(&e))?;
        parts.headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| err(&e))?,
            value,
        );
    }
    Ok(signature)
}
