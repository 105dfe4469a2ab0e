//! Phases `tls` and `serve` of an intercepted connection: terminate the agent's TLS with
//! a certificate for exactly the CONNECT host, then serve HTTP/2 or HTTP/1.1 (by ALPN),
//! handing each request to the pipeline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderValue;
use http::uri::Authority;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::pipeline::ConnCtx;
use super::{ConnGuard, Proxy};
use crate::cloud::Cloud;
use crate::cloud::aws::ApiHost;

/// An idle HTTP/2 agent connection is PINGed this often, and dropped if the PING goes
/// unanswered for `H2_PING_TIMEOUT`. (Idle HTTP/1.1 connections close after
/// `limits.header_read_timeout`: hyper's head timer also runs between requests.)
const H2_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
const H2_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Why a TLS handshake with an agent failed; the `reason` label of
/// `airlock_tls_handshake_failures_total`.
#[derive(Debug, Clone, Copy)]
enum HandshakeFailure {
    Timeout,
    /// SNI absent or naming another host than the CONNECT target.
    SniMismatch,
    Handshake,
}

impl HandshakeFailure {
    fn label(self) -> &'static str {
        match self {
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::SniMismatch => "sni_mismatch",
            HandshakeFailure::Handshake => "handshake",
        }
    }
}

impl Proxy {
    pub(super) async fn intercept(
        self: Arc<Self>,
        upgraded: Upgraded,
        host: String,
        peer: SocketAddr,
        guard: Arc<ConnGuard>,
    ) {
        let _guard = guard;
        let tls = match self.handshake(upgraded, &host).await {
            Ok(tls) => tls,
            Err((failure, detail)) => {
                self.metrics
                    .tls_handshakes_total
                    .with_label_values(&["error"])
                    .inc();
                self.metrics
                    .tls_handshake_failures_total
                    .with_label_values(&[failure.label()])
                    .inc();
                tracing::info!(agent.addr = %peer, http.host = %host, reason = failure.label(), detail, "TLS handshake failed");
                return;
            }
        };
        self.metrics
            .tls_handshakes_total
            .with_label_values(&["ok"])
            .inc();

        let (Ok(authority), Ok(host_header)) = (
            Authority::try_from(host.as_str()),
            HeaderValue::from_str(&host),
        ) else {
            return; // unreachable: HostPolicy admitted only DNS names
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        // Everything the host says is worked out here, once for all its requests.
        let cloud = Cloud::for_host(&host);
        let conn = Arc::new(ConnCtx {
            id: self.next_id(),
            peer,
            scheme: self.pipeline.upstream().scheme_for(&host),
            cloud,
            metric_host: self.metrics.host_label(&host).to_string(),
            aws_host: (cloud == Cloud::Aws).then(|| ApiHost::parse(&host)),
            gcp_endpoint: match cloud {
                Cloud::Gcp => crate::cloud::gcp::host_endpoint(&host),
                Cloud::Aws => None,
            },
            host,
            authority,
            host_header,
            h2,
        });
        let proxy = Arc::clone(&self);
        let service = service_fn(move |request| {
            let proxy = Arc::clone(&proxy);
            let conn = Arc::clone(&conn);
            async move { Ok::<_, Infallible>(proxy.pipeline.handle(request, &conn).await) }
        });
        let io = TokioIo::new(tls);
        let limits = &self.limits;
        let result = if h2 {
            let mut builder = http2::Builder::new(TokioExecutor::new());
            // HTTP/2 has no header timer between requests: PINGs reap dead peers instead.
            builder
                .timer(TokioTimer::new())
                .keep_alive_interval(H2_PING_INTERVAL)
                .keep_alive_timeout(H2_PING_TIMEOUT)
                .max_concurrent_streams(limits.max_h2_streams)
                .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
            let connection = builder.serve_connection(io, service);
            serve_until_drained!(connection, self.draining)
        } else {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_headers(limits.max_header_count)
                .max_header_size(limits.max_header_bytes);
            let connection = builder.serve_connection(io, service);
            serve_until_drained!(connection, self.draining)
        };
        if let Err(e) = result {
            tracing::debug!(agent.addr = %peer, error = %e, "intercepted connection ended with an error");
        }
    }

    /// Read the ClientHello, insist that SNI names the CONNECT host, then complete the
    /// handshake with that host's certificate — all within `tls_handshake_timeout`.
    async fn handshake(
        &self,
        upgraded: Upgraded,
        host: &str,
    ) -> Result<TlsStream<TokioIo<Upgraded>>, (HandshakeFailure, String)> {
        let handshake = async {
            let acceptor = LazyConfigAcceptor::new(
                rustls::server::Acceptor::default(),
                TokioIo::new(upgraded),
            );
            let start = acceptor
                .await
                .map_err(|e| (HandshakeFailure::Handshake, e.to_string()))?;
            let sni = start
                .client_hello()
                .server_name()
                .map(str::to_ascii_lowercase);
            if sni.as_deref() != Some(host) {
                let got = sni.unwrap_or_else(|| "<none>".into());
                return Err((
                    HandshakeFailure::SniMismatch,
                    format!("SNI {got} ≠ CONNECT {host}"),
                ));
            }
            start
                .into_stream(Arc::clone(&self.tls))
                .await
                .map_err(|e| (HandshakeFailure::Handshake, e.to_string()))
        };
        tokio::time::timeout(self.limits.tls_handshake_timeout, handshake)
            .await
            .map_err(|_| {
                (
                    HandshakeFailure::Timeout,
                    "no complete handshake in time".to_string(),
                )
            })?
    }
}
