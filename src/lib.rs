//! Airlock: a transparent HTTPS intercepting proxy that puts a human in front of
//! dangerous cloud API calls.
//!
//! # Map of the modules
//!
//! | module      | owns                                                                    |
//! |-------------|-------------------------------------------------------------------------|
//! | [`agents`]  | agents, their cloud identities (AWS role, Google service account) and Airlock-issued keys and Google tokens (derived from a 0600 server key) |
//! | [`approvals`] | parked calls: fingerprint, SQLite store (approvals, votes, grants), the hold phase, the approvals API |
//! | [`channels`] | where reviewers decide and others hear: context summary, one delivery loop with retries, webhooks, Slack, Teams, the web page |
//! | [`audit`]   | the tamper-evident audit log: hash chain, group-committed writes, signed checkpoints, offline verify |
//! | [`cli`]     | the command line (clap derive only)                                     |
//! | [`config`]  | `airlock.yaml`: assembles the components' config slices; documented defaults; every error with its line |
//! | [`yamlmap`] | dotted path → line in a YAML file (config and rule files)              |
//! | [`keyfile`] | 32-byte secret keys in 0600 files (agent key, audit key) |
//! | [`init`]    | `airlock init`: CA + default config, and the agent environment          |
//! | [`hosts`]   | the first decision: intercept, tunnel or refuse a CONNECT target        |
//! | [`tls`]     | the name-constrained CA, leaf minting and cache, rustls configs         |
//! | [`proxy`]   | listener, CONNECT, TLS interception, HTTP/1 + HTTP/2, tunnels, drain    |
//! | [`proxy::pipeline`] | one request's phases: parse → identify → read_body → classify → authenticate → decide → audit → hold → sign → forward → record (the one place outcomes are logged, counted and audited); the cloud picked once per connection |
//! | [`proxy::plug`] | the interface each cloud implements: its phases (identify, read_body, classify, authenticate, fingerprint, sign) and error style |
//! | `proxy::aws` | the AWS plug: SigV4 identity and verification, bodies, re-signing with STS sessions |
//! | `proxy::gcp` | the Google plug: Airlock's token endpoint, bearer tokens → agents, bodies (first gRPC message), re-signing with the agent's service-account token |
//! | [`proxy::upstream`] | pooled upstream client, `upstream.routes` (its config slice lives here) |
//! | [`proxy::refusal`]  | cloud-neutral refusals and the one function that renders them per cloud (AWS shapes, Google REST JSON, gRPC trailers) |
//! | [`cloud`]   | what a call does: the cloud-neutral `Call`, fingerprints; [`cloud::aws`] and [`cloud::gcp`] classify each cloud's requests (Google REST, media, batch, and gRPC through [`cloud::gcp::grpc`]); [`cloud::plane`] control or data plane |
//! | [`credentials`] | Airlock's own cloud identities (AWS chain, Google ADC) and per-agent short-lived credentials: STS role sessions, service-account tokens (cached, single-flight) |
//! | [`explain`] | `airlock explain`: raw or JSON Lines requests (AWS or Google, by host) → one classification per line |
//! | [`rules`]   | rule files: load with file:line errors, compile, decide a call (pure) |
//! | [`reload`]  | live reload of watched files (agents, rules): poll, load, swap whole or keep the old |
//! | [`control`] | `/healthz`, `/readyz`, `/metrics`, and the routes of the approvals API and channels |
//! | [`health`]  | readiness notes shared by the parts that can degrade service           |
//! | [`metrics`] | the Prometheus registry and every `airlock_*` metric                    |
//! | [`server`]  | assembly: config → bound listeners → run until shutdown                 |
//! | [`telemetry`] | tracing subscriber set-up (text or JSON), called from `main` only     |
//!
//! Modules depend downward only: each component owns its slice of the configuration and
//! [`config`] assembles them; [`server`] wires everything. ARCHITECTURE.md shows how a
//! request travels through these, and where the coming pieces (PostgreSQL for replicas)
//! plug in. Generated data (the AWS and Google API
//! catalogs) lives in `data/`, with the scripts that make it.

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
