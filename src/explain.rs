//! `airlock explain`: how Airlock reads a call. Input is one raw HTTP/1.1 request, or (with
//! `--jsonl`) a stream of `{"method","url","headers":{…},"body_b64"}` objects; output is
//! one JSON line per request: the classification, or `{"error": "…"}` for input that is
//! not a request at all.

use std::io::{BufRead, Write};

use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde::Deserialize;

use crate::cloud::{Classification, Cloud, RequestView};

/// Most headers a raw request may have.
const MAX_HEADERS: usize = 256;

/// A request as `explain` reads it.
pub struct OwnedRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub host: String,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            host: &self.host,
            body: &self.body,
        }
    }
}

#[derive(Deserialize)]
struct JsonRequest {
    method: String,
    url: String,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    body_b64: String,
}

/// Parse one raw HTTP/1.1 request (head and body; a chunked body is de-chunked).
pub fn parse_raw(bytes: &[u8]) -> Result<OwnedRequest, String> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut storage);
    let head_len = match parsed
        .parse(bytes)
        .map_err(|e| format!("not an HTTP request: {e}"))?
    {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Err("incomplete HTTP request head".into()),
    };
    let method: Method = parsed
        .method
        .unwrap_or("GET")
        .parse()
        .map_err(|_| "bad method".to_string())?;
    let target = parsed.path.unwrap_or("/");
    let mut headers = HeaderMap::new();
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|e| format!("bad header name {}: {e}", h.name))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|e| format!("bad header value for {}: {e}", h.name))?;
        headers.append(name, value);
    }
    let mut body = bytes[head_len..].to_vec();
    if headers
        .get(http::header::TRANSFER_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"))
    {
        body = dechunk(&body)?;
    }
    build(method, target, headers, body)
}

/// Parse one `--jsonl` line.
pub fn parse_json(line: &str) -> Result<OwnedRequest, String> {
    let request: JsonRequest =
        serde_json::from_str(line).map_err(|e| format!("not a request object: {e}"))?;
    let method: Method = request
        .method
        .parse()
        .map_err(|_| format!("bad method `{}`", request.method))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("bad header name {name}: {e}"))?;
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        let value = HeaderValue::from_str(&text)
            .map_err(|e| format!("bad header value for {name}: {e}"))?;
        headers.append(name, value);
    }
    let body = base64::engine::general_purpose::STANDARD
        .decode(request.body_b64.as_bytes())
        .map_err(|e| format!("body_b64: {e}"))?;
    build(method, &request.url, headers, body)
}

fn build(
    method: Method,
    target: &str,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<OwnedRequest, String> {
    let uri: Uri = target
        .parse()
        .map_err(|e| format!("bad request target `{target}`: {e}"))?;
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.host())
        .ok_or("the request names no host (no Host header, no absolute URL)")?;
    let host = host
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    Ok(OwnedRequest {
        method,
        host: host.to_ascii_lowercase(),
        uri,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunked body")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("truncated chunk")?;
    }
}

/// Classify with the cloud the host belongs to: Google APIs (`*.googleapis.com`), else AWS.
pub fn classify(request: &RequestView<'_>) -> Classification {
    Cloud::for_host(request.host).classify(request)
}

/// The JSON line `explain` prints for one input.
pub fn explain_line(parsed: Result<OwnedRequest, String>) -> String {
    match parsed {
        Ok(request) => serde_json::to_string(&classify(&request.view())),
        Err(error) => serde_json::to_string(&serde_json::json!({ "error": error })),
    }
    .unwrap_or_else(|e| format!("{{\"error\":\"cannot serialize: {e}\"}}"))
}

/// Run `explain` over `input`, writing one line per request to `output`.
pub fn run(input: &mut dyn BufRead, output: &mut dyn Write, jsonl: bool) -> std::io::Result<()> {
    if jsonl {
        for line in input.lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            writeln!(output, "{}", explain_line(parse_json(&line)))?;
        }
    } else {
        let mut bytes = Vec::new();
        input.read_to_end(&mut bytes)?;
        writeln!(output, "{}", explain_line(parse_raw(&bytes)))?;
    }
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_picks_the_cloud() {
        let gcp = explain_line(parse_raw(
            b"DELETE /storage/v1/b/b1 HTTP/1.1\r\nHost: storage.googleapis.com\r\n\r\n",
        ));
        let gcp: serde_json::Value = serde_json::from_str(&gcp).unwrap_or_default();
        assert_eq!(gcp["cloud"], "gcp");
        assert_eq!(gcp["operation"], "storage.buckets.delete");
        let aws = explain_line(parse_raw(
            b"GET /b1?list-type=2 HTTP/1.1\r\nHost: s3.us-east-1.amazonaws.com\r\n\r\n",
        ));
        let aws: serde_json::Value = serde_json::from_str(&aws).unwrap_or_default();
        assert_eq!(aws["cloud"], "aws");
    }
}
