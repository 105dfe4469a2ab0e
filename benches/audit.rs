//! Audit append throughput with durability: records/s when every append waits for its
//! record to be on disk (write + fsync, group-committed across concurrent appends), and
//! the append latency, at several concurrencies. On the disk `target/` lives on.
//!
//!     cargo bench --bench audit
//!
//! Under `cargo test` (no `--bench` argument) it runs a few appends only, to prove it runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::audit::note::NoteSigner;
use airlock::audit::{AuditLog, AuditSettings, Entry, Event};

fn entry(i: usize) -> Entry {
    Entry {
        event: Some(Event::Allowed),
        request_id: format!("{i:016x}"),
        agent: Some("bench-agent".into()),
        owner: Some("bench@example.com".into()),
        cloud: Some("aws".into()),
        service: Some("s3".into()),
        operation: Some("PutObject".into()),
        actions: vec!["s3:PutObject".into()],
        resources: vec!["arn:aws:s3:::bucket/key".into()],
        params_digest: Some("0".repeat(64)),
        fingerprint: None,
        body_binding: None,
        rule: Some("writes".into()),
        rules_version: Some("0".repeat(64)),
        outcome: None,
        approval_id: None,
        approvers: Vec::new(),
    }
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let total = if full { 20_000 } else { 64 };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    println!("| concurrent appends | records/s | p50 | p99 |");
    println!("|---|---|---|---|");
    for concurrency in [1usize, 16, 128] {
        let log = Arc::new(
            AuditLog::open(
                AuditSettings {
                    file: dir.path().join(format!("audit-{concurrency}.jsonl")),
                    origin: "bench/audit".into(),
                    checkpoint_every: 1000,
                    checkpoint_interval: Duration::from_secs(60),
                },
                NoteSigner::new("bench/audit", &[1u8; 32]),
            )
            .unwrap(),
        );
        let per_task = (total / concurrency).max(1);
        let started = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|t| {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(per_task);
                    for i in 0..per_task {
                        let at = Instant::now();
                        log.append_durable(entry(t * per_task + i)).await.unwrap();
                        latencies.push(at.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await.unwrap());
        }
        let elapsed = started.elapsed();
        latencies.sort_unstable();
        let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
        println!(
            "| {concurrency} | {:.0} | {:.2} ms | {:.2} ms |",
            latencies.len() as f64 / elapsed.as_secs_f64(),
            pct(0.5).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0
        );
    }
}
