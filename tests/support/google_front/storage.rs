//! `storage.googleapis.com` in front of gcp-storage-emulator, and what the front adds:
//!
//! - `/resumable/upload/storage/v1/…` (where gcloud's apitools starts resumable uploads; the
//!   real service takes both) is passed on as `/upload/storage/v1/…`, which the emulator
//!   serves.
//! - The emulator builds resumable session URIs (`Location`) and `mediaLink`s from the Host
//!   it was sent, with `http://`: the front makes them `https://` again, so a client keeps
//!   talking to the real host name through the proxy (a plain-HTTP session URI would leave
//!   the proxy's TLS). Object bytes (`alt=media`, `/download/…`) are never rewritten.
//! - The emulator answers errors (404, and 501 for what it does not implement) with an
//!   empty body; the front fills in the JSON API's documented error shape, so clients print
//!   a message and a test failure says what was missing.
//! - `buckets.getStorageLayout` and `managedFolders.list`, which gcloud calls (the emulator
//!   has neither), are answered by the front from the bucket the emulator holds: the
//!   layout of a bucket without hierarchical namespace, and no managed folders.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;

use super::{Body, Front, forward, full, json_response};

pub(crate) async fn handle(
    front: &Front,
    mut request: Request<Incoming>,
    addr: SocketAddr,
    authority: &str,
    index: usize,
) -> Response<Body> {
    let path = request.uri().path().to_string();
    if request.method() == Method::GET {
        if let Some(bucket) = bucket_sub_resource(&path, "storageLayout") {
            return storage_layout(front, addr, authority, &bucket, index).await;
        }
        if let Some(bucket) = bucket_sub_resource(&path, "managedFolders") {
            return managed_folders(front, addr, authority, &bucket, index).await;
        }
    }
    if let Some(rest) = path.strip_prefix("/resumable/upload/storage/v1/") {
        let query = request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        *request.uri_mut() = format!("/upload/storage/v1/{rest}{query}")
            .parse()
            .expect("rewritten URI");
    }
    unquote_boundary(request.headers_mut());
    let media = path.starts_with("/download/")
        || request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "alt=media"));
    let method = request.method().clone();
    let mut response = forward(front, request, addr, authority, None, index).await;

    let plain = format!("http://{authority}/");
    let secure = format!("https://{authority}/");
    if let Some(location) = response
        .headers()
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.strip_prefix(&plain))
        .map(|rest| format!("{secure}{rest}"))
    {
        response.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&location).expect("location"),
        );
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    let failed = response.status().is_client_error() || response.status().is_server_error();
    if !failed && (media || !json) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return super::google_error(
                StatusCode::BAD_GATEWAY,
                "UNAVAILABLE",
                &format!("the storage emulator's answer broke off: {e}"),
            );
        }
    };
    if failed && bytes.is_empty() {
        return storage_error(parts.status, &method, &path);
    }
    let bytes = if json {
        let text = String::from_utf8_lossy(&bytes).replace(&plain, &secure);
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(mut value) => {
                encode_media_links(&mut value);
                Bytes::from(value.to_string())
            }
            Err(_) => Bytes::from(text),
        }
    } else {
        bytes
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, full(bytes))
}

/// The emulator writes an object's `mediaLink` with its name raw (`o/dir/file`); Google
/// percent-encodes it (`o/dir%2Ffile`), and clients download from that link as given.
fn encode_media_links(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(link)) = map.get_mut("mediaLink")
                && let Some((head, rest)) = link.split_once("/o/")
            {
                let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
                let encoded: String = url_escape(name);
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{query}")
                };
                *link = format!("{head}/o/{encoded}{query}");
            }
            for child in map.values_mut() {
                encode_media_links(child);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(encode_media_links),
        _ => {}
    }
}

/// Percent-encode everything but unreserved characters (what Google does to object names
/// in paths); an already-encoded name is left as it is.
fn url_escape(name: &str) -> String {
    if name.contains('%') {
        return name.to_string();
    }
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// gcloud (apitools) sends multipart uploads with `boundary='…'` in single quotes, which the
/// service accepts and the emulator's MIME parser does not (it keeps the quotes as part of
/// the boundary, finds no parts, and drops the connection): the quotes become double ones.
fn unquote_boundary(headers: &mut http::HeaderMap) {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let Some((before, after)) = value.split_once("boundary='") else {
        return;
    };
    let Some((boundary, rest)) = after.split_once('\'') else {
        return;
    };
    let fixed = format!("{before}boundary=\"{boundary}\"{rest}");
    if let Ok(fixed) = HeaderValue::from_str(&fixed) {
        headers.insert(header::CONTENT_TYPE, fixed);
    }
}

/// `/storage/v1/b/{bucket}/{sub}` → the bucket.
fn bucket_sub_resource(path: &str, sub: &str) -> Option<String> {
    let rest = path.strip_prefix("/storage/v1/b/")?;
    let (bucket, tail) = rest.split_once('/')?;
    (tail == sub && !bucket.is_empty())
        .then(|| percent_decode_str(bucket).decode_utf8_lossy().into_owned())
}

/// The bucket resource as the emulator holds it, or the error to answer when it has none.
async fn bucket(
    front: &Front,
    addr: SocketAddr,
    authority: &str,
    bucket: &str,
    index: usize,
) -> Result<serde_json::Value, Box<Response<Body>>> {
    if let Some(seen) = front.log.lock().expect("log").get_mut(index) {
        seen.forwarded = true;
    }
    // Bucket names are `[a-z0-9._-]`; anything else is encoded (and so not found).
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    let encoded = percent_encoding::utf8_percent_encode(bucket, KEEP).to_string();
    let request = Request::get(format!("http://{addr}/storage/v1/b/{encoded}"))
        .header(header::HOST, authority)
        .body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("bucket request");
    let path = format!("/storage/v1/b/{encoded}");
    let failed = |status| Err(Box::new(storage_error(status, &Method::GET, &path)));
    match front.h1.request(request).await {
        Ok(response) if response.status() == StatusCode::OK => {
            let bytes = response
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            serde_json::from_slice(&bytes).or_else(|_| failed(StatusCode::BAD_GATEWAY))
        }
        Ok(response) => failed(response.status()),
        Err(_) => failed(StatusCode::BAD_GATEWAY),
    }
}

/// `buckets.getStorageLayout`: the documented StorageLayout resource.
async fn storage_layout(
    front: &Front,
    addr: SocketAddr,
    authority: &str,
    name: &str,
    index: usize,
) -> Response<Body> {
    let bucket = match bucket(front, addr, authority, name, index).await {
        Ok(bucket) => bucket,
        Err(response) => return *response,
    };
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "kind": "storage#storageLayout",
            "bucket": name,
            "location": bucket["location"],
            "locationType": bucket["locationType"],
            "hierarchicalNamespace": {"enabled": false},
        }),
    )
}

/// `managedFolders.list`: a bucket without managed folders (the list has no `items`).
async fn managed_folders(
    front: &Front,
    addr: SocketAddr,
    authority: &str,
    name: &str,
    index: usize,
) -> Response<Body> {
    match bucket(front, addr, authority, name, index).await {
        Ok(_) => json_response(
            StatusCode::OK,
            &serde_json::json!({"kind": "storage#managedFolders"}),
        ),
        Err(response) => *response,
    }
}

/// The JSON API's error shape, `{"error": {"code", "message", "errors": [{message, domain,
/// reason}]}}`, with the message the service gives for a missing bucket or object.
fn storage_error(status: StatusCode, method: &Method, path: &str) -> Response<Body> {
    let target = [
        "/storage/v1/b/",
        "/upload/storage/v1/b/",
        "/download/storage/v1/b/",
    ]
    .iter()
    .find_map(|prefix| path.strip_prefix(prefix));
    let (bucket, object) = match target.map(|t| t.split_once("/o/")) {
        Some(Some((bucket, object))) => (Some(bucket), Some(object)),
        Some(None) => (target.map(|t| t.split('/').next().unwrap_or(t)), None),
        None => (None, None),
    };
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let (message, reason) = match (status.as_u16(), bucket, object) {
        (404, Some(bucket), Some(object)) => (
            format!("No such object: {}/{}", decode(bucket), decode(object)),
            "notFound",
        ),
        (404, Some(_), None) => (
            "The specified bucket does not exist.".to_string(),
            "notFound",
        ),
        (501, ..) => (
            format!("gcp-storage-emulator does not implement {method} {path}"),
            "notImplemented",
        ),
        (409, ..) => ("Conflict".to_string(), "conflict"),
        (412, ..) => ("Precondition Failed".to_string(), "conditionNotMet"),
        _ => (
            status.canonical_reason().unwrap_or("Error").to_string(),
            if status.is_client_error() {
                "invalid"
            } else {
                "backendError"
            },
        ),
    };
    super::google_error_body(
        status,
        serde_json::json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }}),
    )
}
