//! The gRPC classifier (Google APIs): a Pub/Sub Publish with 1 KiB of data (target
//! ≤ 10 µs), and the one-time load of the descriptor pool and method table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use airlock::cloud::gcp::grpc;
use criterion::{Criterion, criterion_group, criterion_main};

/// A protobuf varint.
fn varint(mut value: usize, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A length-delimited field.
fn field(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(((number << 3) | 2) as usize, out);
    varint(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// `PublishRequest { topic, messages: [{ data: 1 KiB, attributes: {origin: bench} }] }`,
/// framed as gRPC sends it.
fn publish_body() -> Vec<u8> {
    let mut entry = Vec::new();
    field(1, b"origin", &mut entry);
    field(2, b"bench", &mut entry);
    let mut message = Vec::new();
    field(1, &[0x5a; 1024], &mut message);
    field(2, &entry, &mut message);
    let mut request = Vec::new();
    field(1, b"projects/acme-prod/topics/orders", &mut request);
    field(2, &message, &mut request);
    let mut body = vec![0];
    body.extend_from_slice(&(request.len() as u32).to_be_bytes());
    body.extend_from_slice(&request);
    body
}

fn bench(c: &mut Criterion) {
    let body = publish_body();
    let path = "/google.pubsub.v1.Publisher/Publish";
    let call = grpc::classify(path, &body).unwrap();
    assert_eq!(call.method_id, "pubsub.projects.topics.publish");
    assert_eq!(call.resource_names, ["projects/acme-prod/topics/orders"]);
    c.bench_function("grpc_classify_pubsub_publish_1kib", |b| {
        b.iter(|| grpc::classify(black_box(path), black_box(&body)))
    });

    let mut group = c.benchmark_group("grpc_catalog");
    group.sample_size(20);
    group.bench_function("grpc_catalog_load", |b| b.iter(grpc::Catalog::load));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
