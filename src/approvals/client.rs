//! The approvals API from the command line (`airlock approvals …`): plain HTTP to the
//! control listener, with the reviewer's bearer token.

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Send one request; (status, body).
pub async fn call(
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Result<(u16, String), String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let uri = format!("{}{path}", base.trim_end_matches('/'));
    let mut request = Request::builder().method(method).uri(&uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| format!("{uri}: {e}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("cannot reach Airlock's control API at {base}: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{uri}: {e}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// A fresh reviewer token (256 random bits, base64url) and its SHA-256 for the config.
pub fn new_token() -> Result<(String, String), String> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    crate::tls::crypto_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| "the system random generator failed".to_string())?;
    let token = format!(
        "airlock_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = super::token_hash(&token);
    Ok((token, hash))
}
