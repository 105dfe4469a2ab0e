//! The proxy listener. Per agent connection:
//!
//! ```text
//! accept ─► limit (max_connections) ─► HTTP/1.1 proxy request
//!   CONNECT host:443 ─► HostPolicy: intercept ─► intercept::serve (TLS, then pipeline)
//!                                    tunnel    ─► bytes relayed untouched
//!                                    refuse    ─► 403 saying why and how to allow it
//!   anything else   ─► 403 (plain-HTTP proxying) or 400 (not a proxy request)
//! ```
//!
//! Every connection task is tracked, so shutdown can stop accepting, ask connections to
//! finish their in-flight requests, and wait up to the drain deadline.

/// Run a hyper connection to completion; once `draining` is cancelled, ask it to finish
/// its in-flight requests and close (`graceful_shutdown`), and wait for that. (A macro:
/// hyper's connection types share the method but no trait covering all three.)
macro_rules! serve_until_drained {
    ($connection:expr, $draining:expr) => {{
        let connection = $connection;
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => result,
            _ = $draining.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        }
    }};
}

mod aws;
mod gcp;
mod intercept;
pub mod limits;
pub mod pipeline;
pub mod plug;
pub mod refusal;
pub mod upstream;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hosts::{HostPolicy, RefuseReason, Verdict};
use crate::metrics::Metrics;
pub use limits::Limits;
use pipeline::Pipeline;
use refusal::text_response;

/// Every response body the proxy sends: upstream bodies streamed through, or Airlock's own.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything a connection needs, shared by all of them.
pub struct Proxy {
    pub(crate) policy: HostPolicy,
    pub(crate) tls: Arc<ServerConfig>,
    pub(crate) pipeline: Pipeline,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Limits,
    connections: Arc<Semaphore>,
    next_id: AtomicU64,
    /// Connection tasks, so shutdown can wait for them.
    tasks: TaskTracker,
    /// Cancelled when shutdown begins: connections finish in-flight requests and close.
    draining: CancellationToken,
}

/// Holds one of `max_connections` and the open-connections gauge for as long as any part
/// of the agent's connection (proxy request, TLS session, tunnel) is alive.
struct ConnGuard {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.metrics.connections_open.dec();
    }
}

impl Proxy {
    pub fn new(
        policy: HostPolicy,
        tls: Arc<ServerConfig>,
        pipeline: Pipeline,
        metrics: Arc<Metrics>,
        limits: Limits,
    ) -> Self {
        Proxy {
            policy,
            tls,
            pipeline,
            metrics,
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            next_id: AtomicU64::new(1),
            tasks: TaskTracker::new(),
            draining: CancellationToken::new(),
        }
    }

    /// Accept agents until `shutdown` is cancelled, then drain for up to `drain_timeout`.
    /// Returns the number of connections that were still open at the deadline.
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: CancellationToken,
        drain_timeout: Duration,
    ) -> usize {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => self.accept(stream, peer),
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                _ = shutdown.cancelled() => break,
            }
        }
        drop(listener);
        self.draining.cancel();
        self.tasks.close();
        let open = self.tasks.len();
        tracing::info!(
            connections = open,
            deadline_s = drain_timeout.as_secs(),
            "draining"
        );
        match tokio::time::timeout(drain_timeout, self.tasks.wait()).await {
            Ok(()) => 0,
            Err(_) => {
                let left = self.tasks.len();
                tracing::warn!(
                    connections = left,
                    "drain deadline passed; closing the rest"
                );
                left
            }
        }
    }

    fn accept(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        // Nagle plus delayed ACK adds tens of milliseconds to small request/response pairs.
        let _ = stream.set_nodelay(true);
        self.metrics.connections_total.inc();
        let Ok(permit) = Arc::clone(&self.connections).try_acquire_owned() else {
            self.refuse(RefuseReason::TooManyConnections);
            self.tasks.spawn(reject_busy(stream));
            return;
        };
        self.metrics.connections_open.inc();
        let guard = Arc::new(ConnGuard {
            _permit: permit,
            metrics: Arc::clone(&self.metrics),
        });
        let proxy = Arc::clone(self);
        self.tasks
            .spawn(async move { proxy.serve_client(stream, peer, guard).await });
    }

    /// Serve the agent's plain HTTP/1.1 proxy requests (CONNECT, normally just one).
    async fn serve_client(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        guard: Arc<ConnGuard>,
    ) {
        let proxy = Arc::clone(&self);
        let service = service_fn(move |request| {
            let proxy = Arc::clone(&proxy);
            let guard = Arc::clone(&guard);
            async move { Ok::<_, Infallible>(proxy.on_proxy_request(request, peer, guard).await) }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .max_headers(self.limits.max_header_count)
            .max_header_size(self.limits.max_header_bytes);
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let result = serve_until_drained!(connection, self.draining);
        if let Err(e) = result {
            tracing::debug!(agent.addr = %peer, error = %e, "proxy connection ended with an error");
        }
    }

    async fn on_proxy_request(
        self: Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
        guard: Arc<ConnGuard>,
    ) -> Response<ProxyBody> {
        if request.method() != Method::CONNECT {
            return if request.uri().scheme().is_some() {
                self.refuse(RefuseReason::PlainHttp);
                refusal_response(
                    "Airlock does not proxy plain HTTP. Cloud APIs are reached over HTTPS: set \
                     HTTPS_PROXY (not HTTP_PROXY) and use https:// URLs."
                        .into(),
                )
            } else {
                self.refuse(RefuseReason::BadTarget);
                let mut response = text_response(
                    StatusCode::BAD_REQUEST,
                    "This is Airlock's proxy port. Set HTTPS_PROXY=http://<this address> in the \
                     agent's environment; health and metrics are on the control listener.\n"
                        .into(),
                );
                close(&mut response);
                response
            };
        }
        let Some((host, port)) = connect_target(request.uri()) else {
            self.refuse(RefuseReason::BadTarget);
            return refusal_response(format!(
                "`{}` is not a host:port CONNECT target.",
                request.uri()
            ));
        };
        match self.policy.decide(&host, port) {
            Verdict::Intercept => {
                let proxy = Arc::clone(&self);
                self.tasks.spawn(async move {
                    match hyper::upgrade::on(request).await {
                        Ok(upgraded) => proxy.intercept(upgraded, host, peer, guard).await,
                        Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
                    }
                });
                Response::new(empty())
            }
            Verdict::Tunnel => self.tunnel(request, host, guard).await,
            Verdict::Refuse(reason) => {
                self.refuse(reason);
                tracing::info!(agent.addr = %peer, http.host = %host, port, reason = reason.label(), "CONNECT refused");
                refusal_response(explain(reason, &host, port))
            }
        }
    }

    /// Relay bytes to a `tunnel` host without looking at them. The upstream connection
    /// is opened first, so a failure is a clear 502 rather than a dead tunnel.
    async fn tunnel(
        self: Arc<Self>,
        request: Request<Incoming>,
        host: String,
        guard: Arc<ConnGuard>,
    ) -> Response<ProxyBody> {
        let mut upstream = match self.pipeline.upstream().connect_tunnel(&host).await {
            Ok(stream) => stream,
            Err(e) => {
                return text_response(
                    StatusCode::BAD_GATEWAY,
                    format!("airlock: cannot reach tunnelled host {host}:443: {e}\n"),
                );
            }
        };
        self.metrics.tunnels_total.inc();
        self.tasks.spawn(async move {
            let _guard = guard;
            let Ok(upgraded) = hyper::upgrade::on(request).await else {
                return;
            };
            // A tunnel has no request boundaries to drain at: it lives until the agent or
            // the host closes it, or until the drain deadline cuts it.
            let mut agent = TokioIo::new(upgraded);
            if let Err(e) = tokio::io::copy_bidirectional(&mut agent, &mut upstream).await {
                tracing::debug!(http.host = %host, error = %e, "tunnel ended with an error");
            }
        });
        Response::new(empty())
    }

    fn refuse(&self, reason: RefuseReason) {
        self.metrics
            .connect_refused_total
            .with_label_values(&[reason.label()])
            .inc();
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// `host:port` of a CONNECT request line, host lower-cased.
fn connect_target(uri: &http::Uri) -> Option<(String, u16)> {
    let authority = uri.authority()?;
    if uri.scheme().is_some() || uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return None;
    }
    Some((authority.host().to_ascii_lowercase(), authority.port_u16()?))
}

/// What the agent's developer reads when a CONNECT is refused: why, and how to allow it.
fn explain(reason: RefuseReason, host: &str, port: u16) -> String {
    match reason {
        RefuseReason::NotIntercepted => format!(
            "Airlock refused CONNECT {host}:{port}: the host is neither intercepted nor \
             tunnelled. To pass it through untouched, add its domain to `tunnel:` in \
             airlock.yaml. To inspect it, add it to `intercept:` and re-create the CA with \
             `airlock init --force` so its name constraints cover it. Otherwise, exclude it \
             with NO_PROXY."
        ),
        RefuseReason::IpLiteral => format!(
            "Airlock refused CONNECT {host}:{port}: IP addresses are never proxied, because a \
             cloud API must be addressed by name for Airlock to know what it is. Use the \
             service's DNS name (for private endpoints, `upstream.routes` maps a name to an \
             address)."
        ),
        RefuseReason::Port => format!(
            "Airlock refused CONNECT {host}:{port}: only port 443 is proxied. Cloud APIs are \
             served on 443; use the service's standard endpoint."
        ),
        RefuseReason::BadTarget | RefuseReason::PlainHttp | RefuseReason::TooManyConnections => {
            format!("Airlock refused CONNECT {host}:{port}: not a valid target.")
        }
    }
}

/// A 403 answer to a proxy request; the connection is closed after it.
fn refusal_response(message: String) -> Response<ProxyBody> {
    let mut response = text_response(StatusCode::FORBIDDEN, format!("{message}\n"));
    close(&mut response);
    response
}

fn close(response: &mut Response<ProxyBody>) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

fn empty() -> ProxyBody {
    use http_body_util::BodyExt;
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Over `max_connections`: a short 503 and close, so the client fails fast instead of
/// waiting in the accept queue.
async fn reject_busy(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    const BODY: &str = "airlock: too many connections, retry later.\n";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: text/plain\r\n\
         content-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(response.as_bytes()),
    )
    .await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_targets_need_host_and_port() {
        let t = |s: &str| connect_target(&s.parse().unwrap());
        assert_eq!(
            t("STS.amazonaws.com:443"),
            Some(("sts.amazonaws.com".into(), 443))
        );
        assert_eq!(t("sts.amazonaws.com"), None);
        assert_eq!(t("https://sts.amazonaws.com:443/"), None);
    }
}
