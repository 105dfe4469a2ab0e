//! A local Slack that follows the documented Web API closely enough to test against:
//!
//! - `POST /api/{method}` with `Authorization: Bearer <token>`: `chat.postMessage`,
//!   `chat.update`, `views.open` (JSON bodies), `users.info` (form), and
//!   `apps.connections.open` (app-level token). Answers are HTTP 200 with
//!   `{"ok": true, …}` or `{"ok": false, "error": "invalid_auth" | "not_authed" |
//!   "not_allowed_token_type" | "channel_not_found" | "message_not_found" |
//!   "invalid_trigger_id" | "user_not_found" | "invalid_blocks"}`, as Slack does; it can
//!   also be made to fail (HTTP 500) or rate-limit (HTTP 429 with `Retry-After`).
//! - Messages are kept with every version (`chat.update`), views with their trigger.
//! - `POST /response/{n}`: the `response_url`s it hands out in click payloads.
//! - Socket Mode: `apps.connections.open` returns a `ws://` URL on a second listener that
//!   says `hello`, pushes the envelopes a test sends, and records the acks.
//!
//! Click payloads are built the way Slack builds them (`block_actions`,
//! `view_submission`), from the buttons of the message as it was last posted or updated.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

pub const BOT_TOKEN: &str = "xoxb-1111-2222-fakebottoken";
pub const APP_TOKEN: &str = "xapp-1-A111-2222-fakeapptoken";
pub const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub const TEAM: &str = "T0AIRLOCK";

/// One message and every version of it (the post, then each update).
#[derive(Debug, Clone)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
    /// `{text, blocks}` as posted, then as updated.
    pub versions: Vec<Value>,
}

impl Posted {
    pub fn latest(&self) -> &Value {
        self.versions.last().expect("a version")
    }

    /// Every text in the latest version, joined (for `contains` checks).
    pub fn text(&self) -> String {
        let mut out = Vec::new();
        collect_texts(self.latest(), &mut out);
        out.join("\n")
    }

    /// The buttons of the latest version: (action_id, value).
    pub fn buttons(&self) -> Vec<(String, String)> {
        self.latest()["blocks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["type"] == "button" && e["action_id"].is_string())
            .map(|e| {
                (
                    e["action_id"].as_str().unwrap().to_string(),
                    e["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }
}

fn collect_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(text)) = map.get("text") {
                out.push(text.clone());
            }
            map.values().for_each(|v| collect_texts(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_texts(v, out)),
        _ => {}
    }
}

#[derive(Default)]
struct State {
    channels: HashSet<String>,
    /// Slack user id → e-mail address.
    users: HashMap<String, String>,
    messages: Vec<Posted>,
    /// Views opened: the `views.open` body.
    views: Vec<Value>,
    /// Trigger ids handed out in click payloads and not yet used.
    triggers: HashSet<String>,
    /// Bodies POSTed to response URLs.
    responses: Vec<Value>,
    /// Every Web API call: (method, the `error` or "ok").
    calls: Vec<(String, String)>,
    /// Answer every Web API call with this HTTP status.
    failing: Option<u16>,
    /// Close every connection at once, answering nothing (as if Slack were unreachable).
    unreachable: bool,
    /// Answer this many calls with 429 and `Retry-After: 1`.
    rate_limited: u32,
    acks: Vec<Value>,
    /// Envelopes pushed, by id (to push one again, as Slack redelivers).
    pushed: HashMap<String, Value>,
    sockets_opened: u32,
    next: u64,
}

pub struct FakeSlack {
    pub addr: SocketAddr,
    pub socket_addr: SocketAddr,
    state: Arc<Mutex<State>>,
    envelopes: broadcast::Sender<Value>,
}

impl FakeSlack {
    /// A workspace with `channels` and `users` (id, e-mail).
    pub async fn start(channels: &[&str], users: &[(&str, &str)]) -> FakeSlack {
        let state = Arc::new(Mutex::new(State {
            channels: channels.iter().map(|c| c.to_string()).collect(),
            users: users
                .iter()
                .map(|(u, e)| (u.to_string(), e.to_string()))
                .collect(),
            next: 1,
            ..State::default()
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sockets = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket_addr = sockets.local_addr().unwrap();
        let (envelopes, _) = broadcast::channel(64);
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if shared.lock().unwrap().unreachable {
                    drop(stream);
                    continue;
                }
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move {
                            // A kept-alive connection is dropped too: no answer at all.
                            if state.lock().unwrap().unreachable {
                                return Err(std::io::Error::other("unreachable"));
                            }
                            Ok(handle(&state, addr, socket_addr, request).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let (shared, pushes) = (Arc::clone(&state), envelopes.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = sockets.accept().await {
                let (state, pushes) = (Arc::clone(&shared), pushes.subscribe());
                tokio::spawn(serve_socket(state, stream, pushes));
            }
        });
        FakeSlack {
            addr,
            socket_addr,
            state,
            envelopes,
        }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn messages(&self) -> Vec<Posted> {
        self.state.lock().unwrap().messages.clone()
    }

    pub fn views(&self) -> Vec<Value> {
        self.state.lock().unwrap().views.clone()
    }

    pub fn responses(&self) -> Vec<Value> {
        self.state.lock().unwrap().responses.clone()
    }

    pub fn calls(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn acks(&self) -> Vec<Value> {
        self.state.lock().unwrap().acks.clone()
    }

    pub fn sockets_opened(&self) -> u32 {
        self.state.lock().unwrap().sockets_opened
    }

    /// Answer every Web API call with HTTP `status` (Slack down), or normally (`None`).
    pub fn set_failing(&self, status: Option<u16>) {
        self.state.lock().unwrap().failing = status;
    }

    /// Close connections without an answer (true), or serve again (false).
    pub fn set_unreachable(&self, unreachable: bool) {
        self.state.lock().unwrap().unreachable = unreachable;
    }

    pub fn rate_limit(&self, calls: u32) {
        self.state.lock().unwrap().rate_limited = calls;
    }

    /// Wait until `check` finds something in the messages (or panic after `within`).
    pub async fn wait_for<T>(
        &self,
        within: Duration,
        what: &str,
        check: impl Fn(&[Posted]) -> Option<T>,
    ) -> T {
        eventually(
            within,
            || {
                format!(
                    "fake Slack: no {what}; messages: {:#?}; calls: {:?}",
                    self.messages(),
                    self.calls()
                )
            },
            async || check(&self.messages()),
        )
        .await
    }

    /// The first message whose latest version contains `text` (waits for it).
    pub async fn message_containing(&self, text: &str) -> Posted {
        self.wait_for(
            Duration::from_secs(20),
            &format!("message with {text:?}"),
            |all| all.iter().find(|m| m.text().contains(text)).cloned(),
        )
        .await
    }

    /// The `n`th view opened (1-based), once it is (waits for it).
    pub async fn view(&self, n: usize) -> Value {
        eventually(
            Duration::from_secs(20),
            || format!("no view {n}; calls: {:?}", self.calls()),
            async || self.views().get(n - 1).cloned(),
        )
        .await
    }

    fn next(&self) -> u64 {
        let mut state = self.state.lock().unwrap();
        state.next += 1;
        state.next
    }

    /// A `block_actions` payload: `user` clicked the button `action_id` of `message` (as
    /// it stands now), as Slack sends it.
    pub fn click(&self, message: &Posted, user: &str, action_id: &str) -> Value {
        let (_, value) = message
            .buttons()
            .into_iter()
            .find(|(a, _)| a == action_id)
            .unwrap_or_else(|| panic!("no button {action_id} in {:#?}", message.latest()));
        let n = self.next();
        let trigger = format!("{n}.4744562912.{n:032x}");
        self.state.lock().unwrap().triggers.insert(trigger.clone());
        json!({
            "type": "block_actions",
            "user": {"id": user, "username": user.to_lowercase(), "team_id": TEAM},
            "api_app_id": "A0AIRLOCK",
            "token": "legacy-verification-token",
            "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel, "is_ephemeral": false},
            "trigger_id": trigger,
            "team": {"id": TEAM, "domain": "example"},
            "enterprise": null,
            "is_enterprise_install": false,
            "channel": {"id": message.channel, "name": "approvals"},
            "message": message.latest(),
            "state": {"values": {}},
            "response_url": format!("http://{}/response/{n}", self.addr),
            "actions": [{
                "action_id": action_id,
                "block_id": "airlock_decide",
                "text": {"type": "plain_text", "text": action_id, "emoji": true},
                "value": value,
                "type": "button",
                "action_ts": format!("1767614400.{n:06}"),
            }],
        })
    }

    /// A `view_submission` payload: `user` submitted the view opened by `views.open`
    /// body `opened`, with `reason` typed into its input.
    pub fn submit(&self, opened: &Value, user: &str, reason: &str) -> Value {
        let view = &opened["view"];
        let n = self.next();
        let block = view["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "input")
            .expect("an input block");
        let (block_id, action_id) = (
            block["block_id"].as_str().unwrap(),
            block["element"]["action_id"].as_str().unwrap(),
        );
        json!({
            "type": "view_submission",
            "team": {"id": TEAM, "domain": "example"},
            "user": {"id": user, "username": user.to_lowercase(), "team_id": TEAM},
            "api_app_id": "A0AIRLOCK",
            "token": "legacy-verification-token",
            "trigger_id": format!("{n}.4744562912.{n:032x}"),
            "view": {
                "id": format!("V{n:08}"),
                "team_id": TEAM,
                "type": "modal",
                "blocks": view["blocks"],
                "private_metadata": view["private_metadata"],
                "callback_id": view["callback_id"],
                "state": {"values": {block_id: {action_id: {"type": "plain_text_input", "value": reason}}}},
                "hash": format!("{n}.abcdef"),
                "title": view["title"],
                "root_view_id": format!("V{n:08}"),
                "app_id": "A0AIRLOCK",
            },
            "response_urls": [],
        })
    }

    /// Push a Socket Mode envelope to connected clients; its id.
    pub fn push(&self, kind: &str, payload: Value) -> String {
        let id = format!("{:08x}-envelope", self.next());
        let envelope = json!({
            "envelope_id": id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind == "interactive",
        });
        self.state
            .lock()
            .unwrap()
            .pushed
            .insert(id.clone(), envelope.clone());
        self.envelopes.send(envelope).expect("a connected socket");
        id
    }

    /// Push envelope `id` again (Slack redelivers what it did not see acknowledged).
    pub fn push_again(&self, id: &str) {
        let mut envelope = self.state.lock().unwrap().pushed[id].clone();
        envelope["retry_attempt"] = json!(1);
        envelope["retry_reason"] = json!("timeout");
        self.envelopes.send(envelope).expect("a connected socket");
    }

    /// Ask connected clients to reconnect, as Slack does every few hours.
    pub fn disconnect(&self) {
        let message = json!({"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "fake"}});
        self.envelopes.send(message).expect("a connected socket");
    }

    pub fn connected(&self) -> usize {
        self.envelopes.receiver_count()
    }
}

/// Poll `check` until it finds something; after `within`, panic saying `what` (made
/// then, so it can show the state).
pub async fn eventually<T>(
    within: Duration,
    what: impl Fn() -> String,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "within {within:?}: {}", what());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The form body Slack POSTs: `payload=<JSON>`.
pub fn form(payload: &Value) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

/// Slack's request signature: `v0=<hex HMAC-SHA256(secret, "v0:{ts}:{body}")>`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn json_response(status: u16, value: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap()
}

async fn handle(
    state: &Mutex<State>,
    addr: SocketAddr,
    socket_addr: SocketAddr,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    let auth = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    if let Some(n) = path.strip_prefix("/response/") {
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        state
            .lock()
            .unwrap()
            .responses
            .push(json!({"n": n, "body": value}));
        return json_response(200, &json!({"ok": true}));
    }
    let Some(method) = path.strip_prefix("/api/") else {
        return json_response(404, &json!({"ok": false, "error": "unknown_method"}));
    };
    let mut state = state.lock().unwrap();
    if let Some(status) = state.failing {
        state.calls.push((method.into(), format!("http {status}")));
        return json_response(status, &json!({"ok": false, "error": "fatal_error"}));
    }
    if state.rate_limited > 0 {
        state.rate_limited -= 1;
        state.calls.push((method.into(), "http 429".into()));
        return Response::builder()
            .status(429)
            .header("retry-after", "1")
            .body(Full::new(Bytes::from_static(b"")))
            .unwrap();
    }
    let answer = answer(
        &mut state,
        method,
        auth.as_deref(),
        &content_type,
        &body,
        addr,
        socket_addr,
    );
    let result = answer["error"].as_str().unwrap_or("ok").to_string();
    state.calls.push((method.into(), result));
    json_response(200, &answer)
}

fn answer(
    state: &mut State,
    method: &str,
    auth: Option<&str>,
    content_type: &str,
    body: &[u8],
    _addr: SocketAddr,
    socket_addr: SocketAddr,
) -> Value {
    let fail = |error: &str| json!({"ok": false, "error": error});
    let Some(token) = auth.and_then(|a| a.strip_prefix("Bearer ")) else {
        return fail("not_authed");
    };
    let app_method = method == "apps.connections.open";
    match (token, app_method) {
        (BOT_TOKEN, false) | (APP_TOKEN, true) => {}
        (BOT_TOKEN, true) | (APP_TOKEN, false) => return fail("not_allowed_token_type"),
        _ => return fail("invalid_auth"),
    }
    let json_body = || -> Option<Value> {
        content_type
            .starts_with("application/json")
            .then(|| serde_json::from_slice(body).ok())
            .flatten()
    };
    let form_field = |name: &str| -> Option<String> {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    match method {
        "chat.postMessage" => {
            let Some(body) = json_body() else {
                return fail("invalid_arguments");
            };
            let channel = body["channel"].as_str().unwrap_or_default().to_string();
            if !state.channels.contains(&channel) {
                return fail("channel_not_found");
            }
            if !body["blocks"].is_array() || !body["text"].is_string() {
                return fail("invalid_blocks");
            }
            state.next += 1;
            let ts = format!("1767614400.{:06}", state.next);
            let version = json!({"text": body["text"], "blocks": body["blocks"]});
            state.messages.push(Posted {
                channel: channel.clone(),
                ts: ts.clone(),
                versions: vec![version.clone()],
            });
            json!({"ok": true, "channel": channel, "ts": ts, "message": version})
        }
        "chat.update" => {
            let Some(body) = json_body() else {
                return fail("invalid_arguments");
            };
            let (channel, ts) = (
                body["channel"].as_str().unwrap_or_default(),
                body["ts"].as_str().unwrap_or_default(),
            );
            if !state.channels.contains(channel) {
                return fail("channel_not_found");
            }
            if !body["blocks"].is_array() {
                return fail("invalid_blocks");
            }
            let Some(message) = state
                .messages
                .iter_mut()
                .find(|m| m.channel == channel && m.ts == ts)
            else {
                return fail("message_not_found");
            };
            let version = json!({"text": body["text"], "blocks": body["blocks"]});
            message.versions.push(version.clone());
            json!({"ok": true, "channel": channel, "ts": ts, "text": body["text"], "message": version})
        }
        "views.open" => {
            let Some(body) = json_body() else {
                return fail("invalid_arguments");
            };
            let trigger = body["trigger_id"].as_str().unwrap_or_default();
            if !state.triggers.remove(trigger) {
                return fail("invalid_trigger_id");
            }
            if body["view"]["type"] != "modal" || !body["view"]["blocks"].is_array() {
                return fail("invalid_arguments");
            }
            state.views.push(body.clone());
            state.next += 1;
            json!({"ok": true, "view": {"id": format!("V{:08}", state.next), "type": "modal"}})
        }
        "users.info" => {
            let user = form_field("user").unwrap_or_default();
            match state.users.get(&user) {
                Some(email) => json!({"ok": true, "user": {
                    "id": user, "team_id": TEAM, "name": user.to_lowercase(), "deleted": false,
                    "profile": {"email": email, "real_name": user},
                }}),
                None => fail("user_not_found"),
            }
        }
        "apps.connections.open" => {
            state.next += 1;
            json!({"ok": true, "url": format!("ws://{socket_addr}/link/?ticket=t{}&app_id=A0AIRLOCK", state.next)})
        }
        _ => fail("unknown_method"),
    }
}

async fn serve_socket(
    state: Arc<Mutex<State>>,
    stream: tokio::net::TcpStream,
    mut pushes: broadcast::Receiver<Value>,
) {
    let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    state.lock().unwrap().sockets_opened += 1;
    let hello = json!({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0AIRLOCK"}, "debug_info": {"host": "fake"}});
    if socket.send(Message::text(hello.to_string())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            pushed = pushes.recv() => match pushed {
                Ok(envelope) => {
                    if socket.send(Message::text(envelope.to_string())).await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
            read = socket.next() => match read {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(ack) = serde_json::from_str::<Value>(&text) {
                        state.lock().unwrap().acks.push(ack);
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}
