//! Logging set-up (called once, from `main`): structured `tracing` to stderr, as text
//! or JSON. `RUST_LOG`, when set, overrides `log.level`.
//!
//! Log lines are written by a background thread, so a request never waits on stderr;
//! the writer is lossless (under overload it applies back-pressure rather than dropping
//! lines), and the returned guard flushes what is queued when `main` ends.

use serde::Deserialize;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

pub const DEFAULT_LOG_LEVEL: &str = "info";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: DEFAULT_LOG_LEVEL.to_string(),
        }
    }
}

/// Lines queued for the writer thread before requests wait for it.
const LOG_QUEUE_LINES: usize = 64 * 1024;

#[must_use = "dropping the guard stops the log writer"]
pub fn init(log: &LogConfig) -> anyhow::Result<WorkerGuard> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(level) if !level.is_empty() => EnvFilter::try_new(level)?,
        _ => EnvFilter::try_new(&log.level)?,
    };
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("airlock-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match log.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))?;
    Ok(guard)
}
