//! The test upstream as a standalone server, for `benches/load.sh`:
//! `cargo run --release --example upstream -- DIR` writes DIR/upstream-ca.pem, listens on
//! 127.0.0.1 (ephemeral port), prints `listening <addr>` and serves until killed.

#![allow(clippy::expect_used)]

#[path = "../../tests/support/upstream.rs"]
mod upstream;

#[tokio::main]
async fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let pki = upstream::TestPki::new();
    std::fs::write(
        std::path::Path::new(&dir).join("upstream-ca.pem"),
        &pki.ca_pem,
    )
    .expect("write upstream-ca.pem");
    let addr = upstream::start_tls(&pki).await;
    println!("listening {addr}");
    std::future::pending::<()>().await;
}
