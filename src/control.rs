//! The control listener: `/healthz` (the process is alive), `/readyz` (it should get
//! traffic; JSON detail), `/metrics` (Prometheus text), the approvals API (`/v1/`) and
//! the channels' routes (`/ui`, `/slack/interactivity`, `/teams/messages`).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::metrics::Metrics;

pub struct Control {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub approvals: Arc<crate::approvals::Approvals>,
    pub channels: Arc<crate::channels::Channels>,
}

impl Control {
    /// Serve until `stop` is cancelled.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, stop: CancellationToken) {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "control accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.cancelled() => return,
            };
            let _ = stream.set_nodelay(true);
            let control = Arc::clone(&self);
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let control = Arc::clone(&control);
                    async move { Ok::<_, Infallible>(control.route(request).await) }
                });
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(std::time::Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn route(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        if request.uri().path().starts_with("/v1/") {
            return crate::approvals::api::handle(&self.approvals, request).await;
        }
        let request = match self.channels.route(request).await {
            Ok(response) => return response,
            Err(request) => request,
        };
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "GET only\n".into(),
            );
        }
        match request.uri().path() {
            "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
            "/readyz" => {
                let (status, body) = self.health.report();
                respond(status, "application/json", body)
            }
            "/metrics" => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.encode(),
            ),
            _ => respond(
                StatusCode::NOT_FOUND,
                "text/plain",
                "not found; try /healthz, /readyz or /metrics\n".into(),
            ),
        }
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
