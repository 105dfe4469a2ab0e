//! Socket Mode: clicks over a WebSocket Airlock opens to Slack, for deployments without a
//! public URL. `apps.connections.open` (with the app-level `xapp-` token, which is what
//! authenticates this path: there is no request signature) gives a `wss://` URL; Slack
//! sends `hello`, then envelopes `{envelope_id, type, payload, accepts_response_payload}`;
//! each is acknowledged with `{envelope_id[, payload]}` within 3 s, or Slack sends it
//! again. `disconnect` asks for a new connection. Interactive envelopes are handled
//! exactly like `POST /slack/interactivity`; an envelope is handled once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::Slack;
use super::api::Api;
use crate::approvals::unix_now;

/// Reconnect delays: 1 s, doubling, at most 30 s.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Opening the socket (TCP, TLS, WebSocket handshake) may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Keep a Socket Mode connection open until `stop`, reconnecting with backoff.
pub async fn run(slack: Arc<Slack>, app: Api, stop: CancellationToken) {
    let mut delay = FIRST_RETRY;
    loop {
        let session = tokio::select! {
            s = session(&slack, &app) => s,
            _ = stop.cancelled() => return,
        };
        match session {
            // Slack asked us to reconnect (or closed cleanly): at once.
            Ok(()) => delay = FIRST_RETRY,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "slack socket mode: connection failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled() => return,
                }
                delay = (delay * 2).min(MAX_RETRY);
            }
        }
    }
}

/// One connection: open, then answer envelopes until Slack says `disconnect` or the
/// socket closes.
async fn session(slack: &Slack, app: &Api) -> Result<(), String> {
    let answer = app
        .form("apps.connections.open", &[])
        .await
        .map_err(|e| e.message)?;
    let url = answer["url"]
        .as_str()
        .ok_or("apps.connections.open: no url in the answer")?;
    let mut socket = tokio::time::timeout(CONNECT_TIMEOUT, connect(url))
        .await
        .map_err(|_| "timed out opening the socket".to_string())??;
    tracing::info!("slack socket mode: connected");
    while let Some(message) = socket.next().await {
        let text = match message.map_err(|e| e.to_string())? {
            Message::Text(text) => text,
            Message::Close(_) => return Ok(()),
            // Pings are answered by the library as it reads.
            _ => continue,
        };
        let Ok(envelope) = serde_json::from_str::<Value>(&text) else {
            tracing::warn!("slack socket mode: unreadable message");
            continue;
        };
        match envelope["type"].as_str() {
            Some("hello") => continue,
            Some("disconnect") => return Ok(()),
            _ => {}
        }
        let Some(envelope_id) = envelope["envelope_id"].as_str() else {
            continue;
        };
        let mut ack = json!({ "envelope_id": envelope_id });
        // Slack redelivers an envelope it did not see acknowledged: handle it once.
        if envelope["type"] == "interactive"
            && slack
                .seen
                .first(&format!("envelope:{envelope_id}"), unix_now())
        {
            let answer = slack.interaction(&envelope["payload"]).await;
            if !answer.is_null() && envelope["accepts_response_payload"] == true {
                ack["payload"] = answer;
            }
        }
        socket
            .send(Message::text(ack.to_string()))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

type Socket = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

/// Open `ws://` or `wss://` (TLS with Airlock's client settings: public roots).
async fn connect(url: &str) -> Result<Socket, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("socket url: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => return Err("socket url: not ws:// or wss://".into()),
    };
    let host = uri.host().ok_or("socket url: no host")?.to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Io> = if tls {
        let config = crate::tls::client_config(&[]).map_err(|e| e.to_string())?;
        let name = rustls_pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("socket url host: {e}"))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS to {host}: {e}"))?;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let (socket, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    Ok(socket)
}
