//! The proxy's limits (`limits:` in the config): connections, handshakes, heads, bodies.

use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_HEADER_COUNT: usize = 100;
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// SDKs time out reads after 60 s; an idle body for as long is a stuck peer.
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_H2_STREAMS: u32 = 128;
/// JSON, query and REST-JSON requests are signed over their body bytes, so Airlock reads
/// them whole before forwarding; 64 MiB covers Lambda's largest direct upload.
pub const DEFAULT_MAX_BUFFERED_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_connections: usize,
    #[serde(with = "humantime_serde")]
    pub tls_handshake_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    pub max_header_count: usize,
    pub max_header_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub body_idle_timeout: Duration,
    pub max_h2_streams: u32,
    /// Largest request body read whole (bodies signed over their bytes, and small bodies
    /// the classifier reads); larger ones must be streamed with a declared payload hash.
    pub max_buffered_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_header_count: DEFAULT_MAX_HEADER_COUNT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            max_h2_streams: DEFAULT_MAX_H2_STREAMS,
            max_buffered_body: DEFAULT_MAX_BUFFERED_BODY,
        }
    }
}
