//! Parked calls: memory per call held for approval and CPU while they wait, then the time
//! from an approval to the held call's response (approval-to-forward).
//!
//!     cargo bench --bench parked          # 10,000 parked calls; needs the test tools
//!                                         # (bash tests/run.sh installs them: moto as STS)
//!
//! Calls arrive over HTTP/2 (100 streams per connection, one host: path-style S3), each a
//! distinct DeleteBucket that the rules send to approval with a 10-minute hold. Under
//! `cargo test` (no `--bench`) it parks 20 calls only, to prove it runs.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const RULES: &str = "defaults: {unmatched: allow, unclassified: allow}\nrules:\n  - {id: held, match: {action: s3:DeleteBucket}, effect: approve, approvers: [security], hold: 10m, expires: 1h}\n";
const TOKEN: &str = "bench-reviewer";

fn proc_stat(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // utime and stime: fields 14 and 15 of stat, 12 and 13 after the command name.
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    (rss_kib, ticks)
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let parked: usize = if full { 10_000 } else { 20 };
    let hash: String = Sha256::digest(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let extra = format!(
        "limits:\n  max_h2_streams: 128\napprovals:\n  approvers:\n    - {{name: reviewer@example.com, groups: [security], token_sha256: {hash}}}\n"
    );
    let (_pki, _relay, airlock) = support::relay::airlock_behind_relay(&extra, Some(RULES)).await;
    let pid = airlock.pid();

    // Warm up: a session, a connection, the first approval.
    let warm = airlock.client(true);
    let response = airlock
        .send(&warm, warm.get("https://warm.s3.amazonaws.com/k"), "s3")
        .await;
    assert_eq!(response.status(), 200);
    let (rss_before, _) = proc_stat(pid);

    // Park: one HTTP/2 client per 100 calls.
    let started = Instant::now();
    let clients: Vec<reqwest::Client> = (0..parked.div_ceil(100))
        .map(|_| airlock.client(true))
        .collect();
    let mut calls = Vec::with_capacity(parked);
    for i in 0..parked {
        let client = clients[i / 100].clone();
        let request = airlock.signed(
            client.delete(format!("https://s3.amazonaws.com/bucket-{i}")),
            "s3",
        );
        calls.push(tokio::spawn(async move {
            // 0: the connection ended (the calls not approved, when Airlock stops).
            let status = client
                .execute(request)
                .await
                .map_or(0, |r| r.status().as_u16());
            (status, Instant::now())
        }));
    }
    loop {
        if airlock.metric("airlock_approvals_pending").await as usize >= parked {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "calls did not park"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let parking = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_parked, ticks_before) = proc_stat(pid);
    let idle = Duration::from_secs(if full { 10 } else { 2 });
    tokio::time::sleep(idle).await;
    let (_, ticks_after) = proc_stat(pid);
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let cpu = (ticks_after - ticks_before) as f64 / ticks_per_second / idle.as_secs_f64() * 100.0;

    println!(
        "| parked calls | time to park | RSS growth | per parked call | Airlock CPU while they wait |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {parked} | {:.1} s | {:.1} MiB | {:.1} KiB | {cpu:.1}% of a core |",
        parking.as_secs_f64(),
        (rss_parked.saturating_sub(rss_before)) as f64 / 1024.0,
        (rss_parked.saturating_sub(rss_before)) as f64 / parked as f64,
    );

    // Approval to forward: approve some held calls one at a time; time until each
    // call's response arrives.
    let api = reqwest::Client::new();
    let text = api
        .get(format!(
            "http://{}/v1/approvals?state=pending",
            airlock.control
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<(String, String)> = list["approvals"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["id"].as_str().unwrap_or_default().to_string(),
                        x["call"]["params"]["Bucket"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let sample = ids.len().min(if full { 200 } else { 10 });
    let mut by_bucket: std::collections::HashMap<String, tokio::task::JoinHandle<(u16, Instant)>> =
        calls
            .into_iter()
            .enumerate()
            .map(|(i, h)| (format!("bucket-{i}"), h))
            .collect();
    let mut latencies = Vec::new();
    for (id, bucket) in ids.into_iter().take(sample) {
        let handle = by_bucket
            .remove(&bucket)
            .expect("a parked call for the bucket");
        let approved = Instant::now();
        let status = api
            .post(format!(
                "http://{}/v1/approvals/{id}/approve",
                airlock.control
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        let (code, answered) = handle.await.unwrap();
        assert_eq!(code, 200);
        latencies.push(answered.saturating_duration_since(approved));
    }
    for (_, held) in by_bucket {
        held.abort();
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!();
    println!("| approvals | approval → response p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| {} | {:.2} ms | {:.2} ms |",
        latencies.len(),
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0
    );
}
