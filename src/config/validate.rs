//! Checks that need more than types: every setting that is parsed is checked here, using
//! the same functions the running proxy uses to compile it, so `config check` and `serve`
//! can never disagree.

use std::time::Duration;

use super::Config;
use crate::credentials::google::{MAX_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME};
use crate::hosts::HostSuffix;
use crate::proxy::upstream::Route;
use crate::tls::load_pem_certs;

/// Below this, ordinary signed SDK requests would not fit.
const MIN_HEADER_BYTES: usize = 4096;
const MIN_BUFFERED_BODY: usize = 64 * 1024;
const MIN_SESSION_DURATION: Duration = Duration::from_secs(15 * 60);
const MAX_SESSION_DURATION: Duration = Duration::from_secs(12 * 3600);
const MIN_LEAF_VALIDITY: Duration = Duration::from_secs(3600);
/// The CA/Browser Forum's ceiling, which some TLS clients enforce.
const MAX_LEAF_VALIDITY: Duration = Duration::from_secs(397 * 24 * 3600);

impl Config {
    /// Every semantic problem, as `(dotted path, message)`.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let mut err = |path: String, message: String| errors.push((path, message));

        // Port 0 (an ephemeral port for each) is the one value both may share.
        if self.proxy.listen == self.control.listen && self.proxy.listen.port() != 0 {
            err(
                "control.listen".into(),
                "must differ from proxy.listen".into(),
            );
        }

        if self.intercept.is_empty() {
            err(
                "intercept".into(),
                "is empty: Airlock would inspect nothing".into(),
            );
        }
        let mut intercepted = Vec::new();
        for (i, s) in self.intercept.iter().enumerate() {
            match HostSuffix::parse(s) {
                Ok(suffix) => intercepted.push(suffix),
                Err(e) => err(format!("intercept[{i}]"), e),
            }
        }
        for (i, s) in self.tunnel.iter().enumerate() {
            match HostSuffix::parse(s) {
                Ok(suffix) => {
                    if let Some(other) = intercepted.iter().find(|o| o.overlaps(&suffix)) {
                        err(
                            format!("tunnel[{i}]"),
                            format!("`{suffix}` overlaps the intercepted suffix `{other}`"),
                        );
                    }
                }
                Err(e) => err(format!("tunnel[{i}]"), e),
            }
        }

        for (i, route) in self.upstream.routes.iter().enumerate() {
            if let Err((field, e)) = Route::compile(route) {
                err(format!("upstream.routes[{i}].{field}"), e);
            }
        }
        if let Some(file) = &self.upstream.ca_file
            && let Err(e) = load_pem_certs(&self.resolve(file))
        {
            err("upstream.ca_file".into(), e.to_string());
        }

        let ca = &self.ca;
        if ca.leaf_validity < MIN_LEAF_VALIDITY || ca.leaf_validity > MAX_LEAF_VALIDITY {
            err(
                "ca.leaf_validity".into(),
                "must be between 1h and 397d".into(),
            );
        }
        if ca.max_cached_leaves == 0 {
            err("ca.max_cached_leaves".into(), "must be at least 1".into());
        }

        let limits = &self.limits;
        let timeouts = [
            ("upstream.connect_timeout", self.upstream.connect_timeout),
            ("upstream.response_timeout", self.upstream.response_timeout),
            ("limits.tls_handshake_timeout", limits.tls_handshake_timeout),
            ("limits.header_read_timeout", limits.header_read_timeout),
            ("limits.body_idle_timeout", limits.body_idle_timeout),
        ];
        for (path, timeout) in timeouts {
            if timeout.is_zero() {
                err(path.into(), "must be longer than 0s".into());
            }
        }
        if limits.max_connections == 0 {
            err("limits.max_connections".into(), "must be at least 1".into());
        }
        if limits.max_header_count == 0 {
            err(
                "limits.max_header_count".into(),
                "must be at least 1".into(),
            );
        }
        if limits.max_header_bytes < MIN_HEADER_BYTES {
            err(
                "limits.max_header_bytes".into(),
                format!("must be at least {MIN_HEADER_BYTES}"),
            );
        }
        if limits.max_h2_streams == 0 {
            err("limits.max_h2_streams".into(), "must be at least 1".into());
        }

        if limits.max_buffered_body < MIN_BUFFERED_BODY {
            err(
                "limits.max_buffered_body".into(),
                format!("must be at least {MIN_BUFFERED_BODY} bytes"),
            );
        }

        let credentials = &self.credentials;
        if !crate::cloud::aws::endpoint::is_region(&credentials.region) {
            err(
                "credentials.region".into(),
                format!("`{}` is not an AWS region name", credentials.region),
            );
        }
        if let Some(endpoint) = &credentials.sts_endpoint {
            match endpoint.parse::<http::Uri>() {
                Ok(uri)
                    if matches!(uri.scheme_str(), Some("http" | "https"))
                        && uri.host().is_some() => {}
                _ => err(
                    "credentials.sts_endpoint".into(),
                    format!("`{endpoint}` is not an http(s) URL"),
                ),
            }
        }
        let duration = credentials.session_duration;
        if !(MIN_SESSION_DURATION..=MAX_SESSION_DURATION).contains(&duration) {
            err(
                "credentials.session_duration".into(),
                "must be between 15m and 12h (STS AssumeRole limits)".into(),
            );
        }
        if credentials.refresh_before >= duration {
            err(
                "credentials.refresh_before".into(),
                "must be shorter than credentials.session_duration".into(),
            );
        }
        let google = &credentials.google;
        // Airlock's own token is sent there: never over plain HTTP.
        let endpoint = &google.iamcredentials_endpoint;
        match endpoint.parse::<http::Uri>() {
            Ok(uri)
                if uri.scheme_str() == Some("https")
                    && uri.host().is_some()
                    && uri.query().is_none() => {}
            _ => err(
                "credentials.google.iamcredentials_endpoint".into(),
                format!("`{endpoint}` is not an https URL (Airlock's own token is sent to it)"),
            ),
        }
        if google.scopes.is_empty() {
            err(
                "credentials.google.scopes".into(),
                "name at least one OAuth scope".into(),
            );
        }
        for (i, scope) in google.scopes.iter().enumerate() {
            if scope.trim().is_empty() || scope.contains(char::is_whitespace) {
                err(
                    format!("credentials.google.scopes[{i}]"),
                    format!("`{scope}` is not an OAuth scope"),
                );
            }
        }
        let lifetime = google.token_lifetime;
        if !(MIN_TOKEN_LIFETIME..=MAX_TOKEN_LIFETIME).contains(&lifetime) {
            err(
                "credentials.google.token_lifetime".into(),
                "must be between 1s and 12h (Google grants up to 1h, or 12h where the \
                 organization policy allows it)"
                    .into(),
            );
        } else if lifetime.subsec_nanos() != 0 {
            err(
                "credentials.google.token_lifetime".into(),
                "must be whole seconds".into(),
            );
        }
        if google.refresh_before >= lifetime {
            err(
                "credentials.google.refresh_before".into(),
                "must be shorter than credentials.google.token_lifetime".into(),
            );
        }

        let mut hashes = std::collections::HashSet::new();
        for (i, approver) in self.approvals.approvers.iter().enumerate() {
            let at = |field: &str| format!("approvals.approvers[{i}].{field}");
            if approver.name.trim().is_empty() {
                err(at("name"), "must not be empty".into());
            }
            if approver.groups.is_empty() {
                err(at("groups"), "name at least one group".into());
            }
            let Some(hash) = approver
                .token_sha256
                .as_ref()
                .map(|h| h.to_ascii_lowercase())
            else {
                continue;
            };
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                err(
                    at("token_sha256"),
                    "must be 64 hex digits (make one with `airlock approvals token`)".into(),
                );
            } else if !hashes.insert(hash) {
                err(
                    at("token_sha256"),
                    "the same token is configured twice".into(),
                );
            }
        }

        let channels = &self.channels;
        if let Some(base) = &channels.base_url
            && !(base.starts_with("http://") || base.starts_with("https://"))
        {
            err(
                "channels.base_url".into(),
                "must be an http:// or https:// address".into(),
            );
        }
        if channels.web.enabled && channels.web.session_ttl < Duration::from_secs(60) {
            err(
                "channels.web.session_ttl".into(),
                "must be at least a minute (e.g. 8h)".into(),
            );
        }
        for (i, hook) in channels.webhooks.iter().enumerate() {
            let at = |field: &str| format!("channels.webhooks[{i}].{field}");
            if !(hook.url.starts_with("http://") || hook.url.starts_with("https://")) {
                err(at("url"), "must be an http:// or https:// address".into());
            }
            for event in &hook.events {
                if !crate::channels::EVENT_NAMES.contains(&event.as_str()) {
                    err(
                        at("events"),
                        format!(
                            "`{event}` is not an event; use {}",
                            crate::channels::EVENT_NAMES.join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(slack) = &channels.slack {
            if slack.channels.is_empty() && slack.default_channel.is_none() {
                err(
                    "channels.slack.channels".into(),
                    "name a Slack channel for at least one approver group, or a default_channel"
                        .into(),
                );
            }
            if slack.signing_secret_file.is_none() && slack.app_token_file.is_none() {
                err(
                    "channels.slack".into(),
                    "set signing_secret_file (clicks over HTTP) or app_token_file (Socket Mode)"
                        .into(),
                );
            }
            if !(slack.api_url.starts_with("http://") || slack.api_url.starts_with("https://")) {
                err(
                    "channels.slack.api_url".into(),
                    "must be an http:// or https:// address".into(),
                );
            }
        }
        if let Some(teams) = &channels.teams
            && teams.conversations.is_empty()
            && teams.default_conversation.is_none()
        {
            err(
                "channels.teams.conversations".into(),
                "name a conversation for at least one approver group, or a default_conversation"
                    .into(),
            );
        }
        if let Some(teams) = &channels.teams {
            if teams.app_id.trim().is_empty() {
                err("channels.teams.app_id".into(), "must not be empty".into());
            }
            let urls = [
                ("token_url", &teams.token_url),
                ("openid_metadata_url", &teams.openid_metadata_url),
                ("service_url", &teams.service_url),
            ];
            for (field, url) in urls {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    err(
                        format!("channels.teams.{field}"),
                        "must be an http:// or https:// address".into(),
                    );
                }
            }
        }

        let audit = &self.audit;
        if audit.checkpoint_every == 0 {
            err("audit.checkpoint_every".into(), "must be at least 1".into());
        }
        if audit.checkpoint_interval.is_zero() {
            err(
                "audit.checkpoint_interval".into(),
                "must be longer than 0s".into(),
            );
        }
        if audit.origin.is_empty() || audit.origin.contains(['\n', ' ', '+']) {
            err(
                "audit.origin".into(),
                "must be a non-empty name without spaces, `+` or newlines".into(),
            );
        }

        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            err("log.level".into(), format!("not a valid filter: {e}"));
        }
        errors
    }
}
