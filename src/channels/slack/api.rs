//! The few Slack Web API methods Airlock calls, and what their errors mean.
//!
//! Every method is a `POST {api_url}/{method}` with `Authorization: Bearer <token>`. Write
//! methods take JSON; `users.info` and `apps.connections.open` take form fields (Slack
//! documents JSON bodies for write methods only). Slack answers HTTP 200 with
//! `{"ok": false, "error": "…"}` for most failures; a rate limit is HTTP 429 with
//! `Retry-After` (or `ok:false` `ratelimited`).

use std::time::Duration;

use serde_json::Value;

use crate::channels::Failure;

/// One Web API call may take this long.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Slack's error codes that say "try again later". Every other code (`invalid_auth`,
/// `not_authed`, `token_revoked`, `missing_scope`, `channel_not_found`, `not_in_channel`,
/// `is_archived`, `invalid_blocks`, `message_not_found`, …) stays wrong until someone
/// changes the configuration, so it is not retried.
const TRANSIENT: [&str; 5] = [
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// A Web API client with one token.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("token", &"***")
            .finish()
    }
}

/// How a body is sent.
enum Body<'a> {
    Json(&'a Value),
    Form(&'a [(&'a str, &'a str)]),
}

impl Api {
    pub fn new(base: &str, token: String, client: reqwest::Client) -> Api {
        Api {
            base: base.trim_end_matches('/').to_string(),
            token,
            client,
        }
    }

    /// Call a method with a JSON body; the answer (with `ok: true`).
    pub async fn json(&self, method: &str, body: &Value) -> Result<Value, Failure> {
        self.call(method, Body::Json(body)).await
    }

    /// Call a method with form fields; the answer (with `ok: true`).
    pub async fn form(&self, method: &str, fields: &[(&str, &str)]) -> Result<Value, Failure> {
        self.call(method, Body::Form(fields)).await
    }

    async fn call(&self, method: &str, body: Body<'_>) -> Result<Value, Failure> {
        let url = format!("{}/{method}", self.base);
        let request = self
            .client
            .post(&url)
            .timeout(TIMEOUT)
            .bearer_auth(&self.token);
        let request = match body {
            Body::Json(value) => request
                .header("content-type", "application/json; charset=utf-8")
                .body(value.to_string()),
            Body::Form(fields) => request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(
                    form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(fields)
                        .finish(),
                ),
        };
        let response = request
            .send()
            .await
            .map_err(|e| Failure::transient(format!("slack {method}: {}", without_url(&e))))?;
        let status = response.status();
        let retry_after = crate::channels::retry_after(response.headers());
        if !status.is_success() {
            let mut failure = Failure::from_status(status, &format!("slack {method}"));
            failure.retry_after = retry_after;
            return Err(failure);
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| Failure::transient(format!("slack {method}: unreadable answer: {e}")))?;
        if answer["ok"].as_bool() == Some(true) {
            return Ok(answer);
        }
        let code = answer["error"].as_str().unwrap_or("unknown_error");
        let mut failure = classify(method, code);
        failure.retry_after = retry_after;
        Err(failure)
    }
}

/// A Slack error code as a failure: permanent or worth retrying.
pub fn classify(method: &str, code: &str) -> Failure {
    let message = format!("slack {method}: {code}");
    if TRANSIENT.contains(&code) {
        Failure::transient(message)
    } else {
        Failure::permanent(message)
    }
}

/// reqwest's errors name the URL; ours has no secret in it, but keep logs short.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_tokens_and_channels_are_permanent_rate_limits_are_not() {
        assert!(!classify("chat.postMessage", "invalid_auth").retry);
        assert!(!classify("chat.postMessage", "channel_not_found").retry);
        assert!(classify("chat.postMessage", "ratelimited").retry);
        assert!(classify("chat.update", "internal_error").retry);
        assert_eq!(
            classify("chat.update", "invalid_auth").message,
            "slack chat.update: invalid_auth"
        );
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let api = Api::new("http://x/", "xoxb-secret".into(), reqwest::Client::new());
        assert!(!format!("{api:?}").contains("xoxb-secret"));
        assert_eq!(api.base, "http://x");
    }
}
