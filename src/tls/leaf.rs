//! Host certificates: minted on first use (P-256, ~40 µs), cached per host, re-minted
//! well before they expire. rustls asks [`LeafCache`] for a certificate by SNI.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use prometheus::IntCounter;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{CertificateAuthority, TlsError};

struct Cached {
    key: Arc<CertifiedKey>,
    refresh_at: Instant,
}

/// Minted host certificates, keyed by host name.
pub struct LeafCache {
    ca: CertificateAuthority,
    validity: Duration,
    capacity: usize,
    entries: DashMap<String, Cached>,
    hits: IntCounter,
    misses: IntCounter,
}

impl std::fmt::Debug for LeafCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafCache")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl LeafCache {
    /// `hits`/`misses` count cache lookups (see `metrics`).
    pub fn new(
        ca: CertificateAuthority,
        validity: Duration,
        capacity: usize,
        hits: IntCounter,
        misses: IntCounter,
    ) -> Self {
        LeafCache {
            ca,
            validity,
            capacity: capacity.max(1),
            entries: DashMap::new(),
            hits,
            misses,
        }
    }

    /// The certificate for `host`, minted if absent or due for renewal.
    pub fn get(&self, host: &str) -> Result<Arc<CertifiedKey>, TlsError> {
        let now = Instant::now();
        if let Some(cached) = self.entries.get(host)
            && now < cached.refresh_at
        {
            self.hits.inc();
            return Ok(Arc::clone(&cached.key));
        }
        self.misses.inc();
        let key = Arc::new(self.ca.mint(host, self.validity)?);
        if self.entries.len() >= self.capacity {
            self.evict(now);
        }
        // Renew at three quarters of the lifetime, so a cached leaf always has time left.
        let refresh_at = now + self.validity * 3 / 4;
        self.entries.insert(
            host.to_string(),
            Cached {
                key: Arc::clone(&key),
                refresh_at,
            },
        );
        Ok(key)
    }

    /// Make room: drop stale entries, then (if still full) any one entry.
    fn evict(&self, now: Instant) {
        self.entries.retain(|_, c| now < c.refresh_at);
        if self.entries.len() >= self.capacity {
            let victim = self.entries.iter().next().map(|e| e.key().clone());
            if let Some(victim) = victim {
                self.entries.remove(&victim);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl ResolvesServerCert for LeafCache {
    /// Called only after the acceptor has checked SNI against the CONNECT host.
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let host = hello.server_name()?;
        match self.get(host) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::error!(tls.host = host, error = %e, "cannot mint a host certificate");
                None
            }
        }
    }
}
