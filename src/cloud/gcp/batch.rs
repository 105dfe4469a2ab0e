//! Google batch requests: a `multipart/mixed` POST to a document's batch path (`/batch`,
//! `/batch/storage/v1`) whose parts are `application/http` requests, one inner call each.
//! Parsing is bounded (at most [`MAX_PARTS`] parts, [`MAX_BATCH_BYTES`] in all,
//! [`MAX_PART_HEADERS`] header lines a part); every part is classified like a request of
//! its own on the same host, and one that cannot be makes the whole batch unknown: a
//! reviewer must never approve a batch whose parts are not all understood.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde_json::json;

use super::catalog::Catalog;
use super::endpoint::Endpoint;
use super::{PARTITION, classify_part};
use crate::cloud::{Action, Call, Cloud, RequestView};

/// Most parts a batch may have (Google's own limit is 1000 calls; Cloud Storage 100).
pub const MAX_PARTS: usize = 1000;
/// Largest batch body that is parsed.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Most header lines in a part or its inner request.
pub const MAX_PART_HEADERS: usize = 100;

/// The `boundary` parameter of a multipart content type (case kept).
pub fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim().trim_matches('"');
        (!value.is_empty() && value.len() <= 200).then(|| value.to_string())
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The first line at or after `from` that starts with `delimiter`: its start. A delimiter
/// holds no line break, so each comparison stops at the next line at the latest and the
/// scan is linear in the body whatever the boundary (a naive substring search is not).
fn find_line(body: &[u8], from: usize, delimiter: &[u8]) -> Option<usize> {
    let mut at = from;
    loop {
        if body.get(at..)?.starts_with(delimiter) {
            return Some(at);
        }
        at += body.get(at..)?.iter().position(|&b| b == b'\n')? + 1;
    }
}

/// The parts of a multipart body, lazily (so reading the first part of an upload does not
/// scan its media).
pub struct Parts<'b> {
    body: &'b [u8],
    delimiter: Vec<u8>,
    /// Where the next delimiter line starts; `None` when done.
    pos: Option<usize>,
}

pub fn parts<'b>(body: &'b [u8], boundary: &str) -> Parts<'b> {
    let delimiter = format!("--{boundary}").into_bytes();
    let pos = find_line(body, 0, &delimiter);
    Parts {
        body,
        delimiter,
        pos,
    }
}

impl<'b> Iterator for Parts<'b> {
    type Item = Result<&'b [u8], String>;

    fn next(&mut self) -> Option<Self::Item> {
        let pos = self.pos.take()?;
        let after = pos + self.delimiter.len();
        let rest = self.body.get(after..)?;
        // Only exact delimiter lines count (RFC 2046: the boundary, `--` to close, then
        // optional padding): a reader laxer or stricter than Google's could otherwise see
        // other parts than Google runs, so anything else is refused, not skipped.
        let line = &rest[..rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())];
        let tail = line
            .iter()
            .rposition(|b| !matches!(b, b'\r' | b' ' | b'\t'))
            .map_or(&line[..0], |end| &line[..=end]);
        if tail == b"--" {
            let epilogue = &rest[line.len()..];
            if epilogue.iter().all(u8::is_ascii_whitespace) {
                return None;
            }
            return Some(Err(
                "data after the multipart body's closing delimiter".into()
            ));
        }
        if !tail.is_empty() {
            return Some(Err(
                "a line starts with the boundary but is not a delimiter".into(),
            ));
        }
        let Some(line_end) = rest.iter().position(|&b| b == b'\n').map(|i| after + i + 1) else {
            return Some(Err("truncated multipart body".into()));
        };
        let Some(next) = find_line(self.body, line_end, &self.delimiter) else {
            return Some(Err("multipart body without its closing delimiter".into()));
        };
        // The part ends before the line break that precedes the next delimiter.
        let mut content = &self.body[line_end..next.max(line_end)];
        content = content.strip_suffix(b"\n").unwrap_or(content);
        content = content.strip_suffix(b"\r").unwrap_or(content);
        self.pos = Some(next);
        Some(Ok(content))
    }
}

/// Split at the first blank line: (head, body). `None` if there is none.
pub fn split_head(data: &[u8]) -> Option<(&[u8], &[u8])> {
    if data.starts_with(b"\r\n") {
        return Some((&[], &data[2..]));
    }
    if data.starts_with(b"\n") {
        return Some((&[], &data[1..]));
    }
    let crlf = find(data, b"\r\n\r\n").map(|i| (i, i + 4));
    let lf = find(data, b"\n\n").map(|i| (i, i + 2));
    let (end, start) = match (crlf, lf) {
        (Some(a), Some(b)) => {
            if a.0 <= b.0 {
                a
            } else {
                b
            }
        }
        (a, b) => a.or(b)?,
    };
    Some((&data[..end], &data[start..]))
}

fn header_lines(head: &[u8]) -> Result<Vec<(&str, &str)>, String> {
    let text = std::str::from_utf8(head).map_err(|_| "batch part headers are not UTF-8")?;
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > MAX_PART_HEADERS {
        return Err(format!(
            "a batch part with more than {MAX_PART_HEADERS} header lines"
        ));
    }
    lines
        .into_iter()
        .map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("bad header line in a batch part: {l:?}"))
        })
        .collect()
}

/// One inner request.
struct Inner<'b> {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: &'b [u8],
}

fn inner_request<'b>(part: &'b [u8], host: &str) -> Result<Inner<'b>, String> {
    let (head, content) =
        split_head(part).ok_or("a batch part without a blank line after its headers")?;
    let part_type = header_lines(head)?
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.to_ascii_lowercase());
    if !part_type
        .as_deref()
        .is_some_and(|t| t.starts_with("application/http"))
    {
        return Err("a batch part that is not application/http".into());
    }
    let content = content.trim_ascii_start();
    let (request_head, body) = split_head(content).unwrap_or((content, &[]));
    let text =
        std::str::from_utf8(request_head).map_err(|_| "a batch part's request is not UTF-8")?;
    let (request_line, header_text) = text.split_once('\n').unwrap_or((text, ""));
    let mut words = request_line.trim_end_matches('\r').split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Err(format!(
            "bad request line in a batch part: {request_line:?}"
        ));
    };
    if words.next().is_some_and(|v| !v.starts_with("HTTP/")) || words.next().is_some() {
        return Err(format!(
            "bad request line in a batch part: {request_line:?}"
        ));
    }
    let method: Method = method
        .parse()
        .map_err(|_| format!("bad method in a batch part: {method:?}"))?;
    let uri: Uri = target
        .parse()
        .map_err(|e| format!("bad target in a batch part: {e}"))?;
    if let Some(inner_host) = uri.host()
        && !inner_host.eq_ignore_ascii_case(host)
    {
        return Err(format!(
            "a batch part addressed to `{inner_host}`, not the batch's host `{host}`"
        ));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in header_lines(header_text.as_bytes())? {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("bad header name in a batch part: {e}"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| format!("bad header value in a batch part: {e}"))?;
        headers.append(name, value);
    }
    Ok(Inner {
        method,
        uri,
        headers,
        body,
    })
}

/// Classify a batch request (already known to be a POST to one of the host's batch paths).
pub(super) fn classify(
    catalog: &'static Catalog,
    request: &RequestView<'_>,
    endpoint: &Endpoint,
    batch_path: &str,
) -> Result<Call, String> {
    let content_type = request
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("multipart/mixed")
    {
        return Err("a batch request that is not multipart/mixed".into());
    }
    let boundary = boundary(content_type).ok_or("a batch request without a boundary")?;
    if request.body.is_empty() {
        return Err("a batch request whose body was not read".into());
    }
    if request.body.len() > MAX_BATCH_BYTES {
        return Err(format!("a batch body over {MAX_BATCH_BYTES} bytes"));
    }
    let mut calls = Vec::new();
    for (i, part) in parts(request.body, &boundary).enumerate() {
        if i >= MAX_PARTS {
            return Err(format!("a batch of more than {MAX_PARTS} parts"));
        }
        let part = part?;
        let inner =
            inner_request(part, request.host).map_err(|e| format!("batch part {}: {e}", i + 1))?;
        let view = RequestView {
            method: &inner.method,
            uri: &inner.uri,
            headers: &inner.headers,
            host: request.host,
            body: inner.body,
        };
        if super::is_grpc(view.headers) {
            return Err(format!("batch part {}: gRPC inside a batch", i + 1));
        }
        let call =
            classify_part(catalog, &view).map_err(|e| format!("batch part {}: {e}", i + 1))?;
        calls.push(call);
    }
    if calls.is_empty() {
        return Err("a batch with no parts".into());
    }

    let group = &catalog.groups[endpoint.group];
    let own_api = (batch_path != "batch")
        .then(|| {
            group
                .apis
                .iter()
                .map(|&a| &catalog.apis[a])
                .find(|a| a.batch_path == batch_path)
        })
        .flatten();
    let common = |f: fn(&Call) -> &'static str| {
        let first = f(&calls[0]);
        calls.iter().all(|c| f(c) == first).then_some(first)
    };
    let service = own_api
        .map(|a| a.name)
        .or_else(|| common(|c| c.service))
        .unwrap_or("batch");
    let api = own_api
        .map(|a| a.id)
        .or_else(|| common(|c| c.api))
        .unwrap_or("batch");
    let same = |f: fn(&Call) -> &Option<String>| {
        let first = f(&calls[0]);
        calls
            .iter()
            .all(|c| f(c) == first)
            .then(|| first.clone())
            .flatten()
    };
    let region = same(|c| &c.region).or_else(|| endpoint.location.clone());
    let account = same(|c| &c.account);
    let mut actions: Vec<Action> = Vec::new();
    let mut resources: Vec<String> = Vec::new();
    for call in &calls {
        for action in &call.actions {
            if !actions.iter().any(|a| a.name == action.name) {
                actions.push(action.clone());
            }
        }
        for resource in &call.resources {
            if !resources.contains(resource) {
                resources.push(resource.clone());
            }
        }
    }
    Ok(Call {
        cloud: Cloud::Gcp,
        service,
        api,
        operation: "batch",
        actions,
        region,
        partition: PARTITION,
        account,
        resources,
        params: json!({ "parts": calls.len() }),
        idempotency_params: Vec::new(),
        protocol: "batch",
        presigned: false,
        parts: calls,
    })
}

#[cfg(test)]
mod delimiter_tests {
    use super::*;

    #[test]
    fn only_exact_delimiter_lines_count() {
        let ok = b"--b\r\npart one\r\n--b \r\npart two\r\n--b--\r\n";
        let got: Vec<_> = parts(ok, "b").collect::<Result<_, _>>().unwrap();
        assert_eq!(got, [b"part one".as_slice(), b"part two".as_slice()]);
        for bad in [
            b"--b\r\none\r\n--b--junk\r\nhidden\r\n--b--\r\n".as_slice(),
            b"--b\r\none\r\n--bx\r\ntwo\r\n--b--\r\n".as_slice(),
            b"--b\r\none\r\n--b--\r\n--b\r\nafter the end\r\n".as_slice(),
        ] {
            assert!(
                parts(bad, "b").any(|p| p.is_err()),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
