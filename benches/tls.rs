//! Host certificates on the connection path: minting a leaf (cache miss) and serving one
//! from the cache (every later connection to the same host). Figures in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use airlock::hosts::HostSuffix;
use airlock::tls::{CertificateAuthority, LeafCache};
use criterion::{Criterion, criterion_group, criterion_main};

fn ca(dir: &std::path::Path) -> CertificateAuthority {
    let suffixes = [HostSuffix::parse("amazonaws.com").unwrap()];
    CertificateAuthority::create(dir, &suffixes, true).unwrap();
    CertificateAuthority::load(dir).unwrap()
}

fn leaves(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path());
    let day = Duration::from_secs(24 * 3600);
    c.bench_function("leaf_mint_p256", |b| {
        b.iter(|| {
            ca.mint(std::hint::black_box("sts.us-east-1.amazonaws.com"), day)
                .unwrap()
        })
    });

    let counter = || prometheus::IntCounter::new("c", "c").unwrap();
    let cache = LeafCache::new(ca, day, 10_000, counter(), counter());
    cache.get("sts.us-east-1.amazonaws.com").unwrap();
    c.bench_function("leaf_cache_hit", |b| {
        b.iter(|| {
            cache
                .get(std::hint::black_box("sts.us-east-1.amazonaws.com"))
                .unwrap()
        })
    });
}

criterion_group!(benches, leaves);
criterion_main!(benches);
