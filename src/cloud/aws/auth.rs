//! The SigV4 authentication a request carries, parsed (not verified): from the
//! `Authorization` header or a presigned query string. The classifier needs the credential
//! scope (region, service); identity and verification build on the same parse.

use http::HeaderMap;

/// Which signature a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `AWS4-HMAC-SHA256`.
    SigV4,
    /// `AWS4-ECDSA-P256-SHA256` (multi-region access points).
    SigV4a,
    /// Query-string SigV2 (`AWSAccessKeyId`, `Signature`, `Expires`): `aws s3 presign`.
    SigV2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth<'a> {
    pub algorithm: Algorithm,
    pub access_key_id: &'a str,
    /// `YYYYMMDD` from the scope (absent for SigV2).
    pub date: Option<&'a str>,
    /// From the scope; SigV4a scopes have none (the region set is a header).
    pub region: Option<&'a str>,
    /// The signing name from the scope (`s3`, `iam`, `execute-api`…).
    pub service: Option<&'a str>,
    pub presigned: bool,
}

/// The authentication of a request, if it has any that Airlock understands.
pub fn parse<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<Auth<'a>> {
    if let Some(value) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (algorithm, rest) = value.split_once(' ')?;
        let algorithm = match algorithm {
            "AWS4-HMAC-SHA256" => Algorithm::SigV4,
            "AWS4-ECDSA-P256-SHA256" => Algorithm::SigV4a,
            _ => return None,
        };
        let credential = rest
            .split(',')
            .map(str::trim)
            .find_map(|part| part.strip_prefix("Credential="))?;
        return from_credential(algorithm, credential, false);
    }
    let query = query?;
    let mut algorithm = None;
    let mut credential = None;
    let mut v2_key = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "X-Amz-Algorithm" => algorithm = Some(v),
            "X-Amz-Credential" => credential = Some(v),
            "AWSAccessKeyId" => v2_key = Some(v),
            _ => {}
        }
    }
    match (algorithm, credential, v2_key) {
        (Some(alg), Some(credential), _) => {
            let algorithm = match alg {
                "AWS4-HMAC-SHA256" => Algorithm::SigV4,
                "AWS4-ECDSA-P256-SHA256" => Algorithm::SigV4a,
                _ => return None,
            };
            from_credential(algorithm, credential, true)
        }
        (None, None, Some(key)) => Some(Auth {
            algorithm: Algorithm::SigV2,
            access_key_id: key,
            date: None,
            region: None,
            service: None,
            presigned: true,
        }),
        _ => None,
    }
}

/// `AKID/20260101/us-east-1/s3/aws4_request` (SigV4) or `AKID/20260101/s3/aws4_request`
/// (SigV4a); in a query string the slashes arrive as `%2F`.
fn from_credential(algorithm: Algorithm, credential: &str, presigned: bool) -> Option<Auth<'_>> {
    let parts: Vec<&str> = if credential.contains("%2F") || credential.contains("%2f") {
        credential
            .split("%2F")
            .flat_map(|p| p.split("%2f"))
            .collect()
    } else {
        credential.split('/').collect()
    };
    match (algorithm, parts.as_slice()) {
        (Algorithm::SigV4, [key, date, region, service, "aws4_request"]) => Some(Auth {
            algorithm,
            access_key_id: key,
            date: Some(date),
            region: Some(region),
            service: Some(service),
            presigned,
        }),
        (Algorithm::SigV4a, [key, date, service, "aws4_request"]) => Some(Auth {
            algorithm,
            access_key_id: key,
            date: Some(date),
            region: None,
            service: Some(service),
            presigned,
        }),
        _ => None,
    }
}

/// Query parameters that carry authentication, never request parameters.
pub fn is_auth_param(name: &str) -> bool {
    name.starts_with("X-Amz-Algorithm")
        || matches!(
            name,
            "X-Amz-Credential"
                | "X-Amz-Date"
                | "X-Amz-Expires"
                | "X-Amz-SignedHeaders"
                | "X-Amz-Signature"
                | "X-Amz-Security-Token"
                | "X-Amz-Region-Set"
                | "AWSAccessKeyId"
                | "Signature"
                | "Expires"
                | "x-amz-security-token"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_scope() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
                .parse()
                .unwrap(),
        );
        let auth = parse(&h, None).unwrap();
        assert_eq!(
            (auth.region, auth.service, auth.presigned),
            (Some("us-east-1"), Some("iam"), false)
        );
    }

    #[test]
    fn presigned_scope_and_sigv4a_and_sigv2() {
        let h = HeaderMap::new();
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20260101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=00";
        let auth = parse(&h, Some(q)).unwrap();
        assert_eq!(
            (auth.region, auth.service, auth.presigned),
            (Some("eu-west-1"), Some("s3"), true)
        );

        let mut h = HeaderMap::new();
        h.insert("authorization", "AWS4-ECDSA-P256-SHA256 Credential=AKID/20260101/s3/aws4_request, SignedHeaders=host, Signature=00".parse().unwrap());
        let auth = parse(&h, None).unwrap();
        assert_eq!(
            (auth.algorithm, auth.region, auth.service),
            (Algorithm::SigV4a, None, Some("s3"))
        );

        let empty = HeaderMap::new();
        let auth = parse(&empty, Some("AWSAccessKeyId=AKID&Expires=1&Signature=x")).unwrap();
        assert_eq!(auth.algorithm, Algorithm::SigV2);
    }

    #[test]
    fn anything_else_is_none() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer token".parse().unwrap());
        assert_eq!(parse(&h, None), None);
        assert_eq!(parse(&HeaderMap::new(), Some("a=b")), None);
    }
}
