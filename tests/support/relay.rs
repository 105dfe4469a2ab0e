//! A TCP relay in front of an upstream that counts the connections it relays: proof of
//! what reached the upstream at all (a refused request must not even connect).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct CountingRelay {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl CountingRelay {
    pub async fn start(target: SocketAddr) -> CountingRelay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        CountingRelay { addr, connections }
    }

    /// Connections relayed so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// An Airlock (with `rules`; `None`: the shipped baseline) whose every AWS host goes
/// through a counting relay to the echo upstream, with `extra` config.
pub async fn airlock_behind_relay(
    extra: &str,
    rules: Option<&str>,
) -> (super::TestPki, CountingRelay, super::Airlock) {
    let pki = super::TestPki::new();
    let up = super::upstream::start_tls(&pki).await;
    let relay = CountingRelay::start(up).await;
    let airlock = super::Airlock::start_with_rules(
        &pki,
        &format!(
            "upstream:\n  routes:\n    - host: \"*.amazonaws.com\"\n      to: https://{}\n{extra}",
            relay.addr
        ),
        &super::BASE_ENV,
        rules,
    );
    (pki, relay, airlock)
}
