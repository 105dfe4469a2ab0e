//! Airlock: a transparent HTTPS intercepting proxy that puts a human in front of
//! dangerous cloud API calls.
//!
//! # Map of the modules
//!
//! | module      | owns                                                                    |
//! |-------------|-------------------------------------------------------------------------|
//! | [`agents`]  | agents and their Airlock-issued keys (secrets derived from a 0600 server key) |
//! | [`approvals`] | parked calls: fingerprint, SQLite store (approvals, votes, grants), the hold phase, the approvals API |
//! | [`channels`] | where reviewers decide and others hear: context summary, one delivery loop with retries, webhooks, Slack, Teams, the web page |
//! | [`audit`]   | the tamper-evident audit log: hash chain, group-committed writes, signed checkpoints, offline verify |
//! | [`cli`]     | the command line (clap derive only)                                     |
//! | [`config`]  | `airlock.yaml`: structs with documented defaults; every error with its line |
//! | [`yamlmap`] | dotted path → line in a YAML file (config and rule files)              |
//! | [`keyfile`] | 32-byte secret keys in 0600 files (agent key, audit key) |
//! | [`init`]    | `airlock init`: CA + default config, and the agent environment          |
//! | [`hosts`]   | the first decision: intercept, tunnel or refuse a CONNECT target        |
//! | [`tls`]     | the name-constrained CA, leaf minting and cache, rustls configs         |
//! | [`proxy`]   | listener, CONNECT, TLS interception, HTTP/1 + HTTP/2, tunnels, drain    |
//! | [`proxy::pipeline`] | one request's phases: parse → identify → read_body → classify → authenticate → decide → audit → hold → sign → forward → record (the one place outcomes are logged, counted and audited) |
//! | `proxy::aws` | the AWS phases: SigV4 identity and verification, bodies, re-signing |
//! | [`proxy::upstream`] | pooled upstream client, `upstream.routes`                       |
//! | [`proxy::refusal`]  | typed refusals and the one function that renders them           |
//! | [`cloud`]   | what a call does: the cloud-neutral `Call`; [`cloud::aws`] classifies AWS requests |
//! | [`credentials`] | Airlock's base AWS credentials and per-agent STS role sessions (cached, single-flight) |
//! | [`explain`] | `airlock explain`: raw or JSON Lines requests → one classification per line |
//! | [`rules`]   | rule files: load with file:line errors, compile, decide a call (pure) |
//! | [`reload`]  | live reload of watched files (agents, rules): poll, load, swap whole or keep the old |
//! | [`control`] | `/healthz`, `/readyz`, `/metrics`, and the routes of the approvals API and channels |
//! | [`metrics`] | the Prometheus registry and every `airlock_*` metric                    |
//! | [`server`]  | assembly: config → bound listeners → run until shutdown                 |
//! | [`telemetry`] | tracing subscriber set-up (text or JSON), called from `main` only     |
//!
//! ARCHITECTURE.md shows how a request travels through these, and where the coming
//! pieces (parking and approvals, their API and channels, GCP) plug in. Generated data
//! (the AWS API catalog) lives in `data/`, with the script that makes it.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod channels;
pub mod cli;
pub mod cloud;
pub mod config;
pub mod control;
pub mod credentials;
pub mod explain;
pub mod health;
pub mod hosts;
pub mod init;
pub mod keyfile;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod rules;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod yamlmap;
