//! REST protocols (rest-json, rest-xml): find the operation from method + path + query +
//! headers. A template must match the path, its literal query (`?uploads`,
//! `?list-type=2`) must be present, and so must the operation's required query members
//! and headers; the most specific match wins. That is what tells S3's operations apart
//! (PUT `/{Bucket}/{Key+}` is PutObject, CopyObject with `x-amz-copy-source`, UploadPart
//! with `partNumber`+`uploadId`, UploadPartCopy with all three). Smithy SDKs add an
//! `x-id=<Operation>` hint, which settles any tie it names.

use std::borrow::Cow;

use http::HeaderMap;

use super::catalog::{Operation, Segment, Service, UriTemplate};

/// Deprecated operations that require a request checksum where their wire-identical
/// successor has no checksum trait (botocore 1.44 models: S3 `PutBucketNotification` vs
/// `PutBucketNotificationConfiguration`): a checksum header names the deprecated one.
const CHECKSUM_ONLY_WHEN_DEPRECATED: &[&str] = &["PutBucketNotification"];

/// A request's query, decoded once.
pub struct Query<'a> {
    pub pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Query<'a> {
    pub fn parse(query: Option<&'a str>) -> Self {
        Query {
            pairs: query
                .map(|q| form_urlencoded::parse(q.as_bytes()).collect())
                .unwrap_or_default(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }
}

/// A matched operation and its captured path labels (label name → decoded value).
pub struct Matched<'s> {
    pub operation: &'s Operation,
    pub labels: Vec<(&'s str, String)>,
    score: u32,
}

/// The outcome of matching one service's operations.
pub enum RestMatch<'s> {
    One(Matched<'s>),
    None,
    /// Several operations matched equally well: the request is ambiguous.
    Ambiguous(Vec<&'s str>),
}

/// Match `method path?query` (+ headers) against `service`'s operations.
pub fn find<'s>(
    service: &'s Service,
    method: &str,
    path: &str,
    query: &Query<'_>,
    headers: &HeaderMap,
    express_control_host: bool,
) -> RestMatch<'s> {
    let segments = split_path(path);
    let mut best: Vec<Matched<'s>> = Vec::new();
    for operation in &service.operations {
        let meta = &operation.meta;
        if meta.method != method || (express_control_host && !meta.express_control) {
            continue;
        }
        let Some(labels) = match_path(&operation.template, &segments) else {
            continue;
        };
        if !literal_query_present(&operation.template, query) {
            continue;
        }
        if !meta.required_query.iter().all(|q| query.has(q)) {
            continue;
        }
        if !meta
            .required_headers
            .iter()
            .all(|h| headers.contains_key(h.as_str()))
        {
            continue;
        }
        let score = operation.template.specificity()
            + 4 * (meta.required_query.len() + meta.required_headers.len()) as u32;
        let matched = Matched {
            operation,
            labels,
            score,
        };
        match best.first().map(|b| b.score) {
            Some(top) if score < top => {}
            Some(top) if score == top => best.push(matched),
            _ => best = vec![matched],
        }
    }
    if best.len() > 1 {
        // A deprecated operation is the same request as its successor, with one exception:
        // S3's deprecated `PutBucketNotification` is modeled `requestChecksumRequired`
        // while `PutBucketNotificationConfiguration` has no checksum trait, so every AWS
        // SDK sends a checksum header with the former and none with the latter.
        let checksummed = headers.contains_key("content-md5")
            || headers
                .keys()
                .any(|h| h.as_str().starts_with("x-amz-checksum-"));
        let deprecated_by_checksum = (checksummed && !query.has("x-id"))
            .then(|| {
                best.iter().position(|m| {
                    m.operation.meta.deprecated
                        && CHECKSUM_ONLY_WHEN_DEPRECATED.contains(&m.operation.meta.name.as_str())
                })
            })
            .flatten();
        if let Some(i) = deprecated_by_checksum {
            return RestMatch::One(best.swap_remove(i));
        }
        if best.iter().any(|m| !m.operation.meta.deprecated) {
            best.retain(|m| !m.operation.meta.deprecated);
        }
        // Off the express control host, `GET /` is ListBuckets, not ListDirectoryBuckets.
        if !express_control_host && best.iter().any(|m| !m.operation.meta.express_control) {
            best.retain(|m| !m.operation.meta.express_control);
        }
    }
    if best.len() > 1 {
        if let Some(hint) = query.get("x-id")
            && let Some(i) = best.iter().position(|m| m.operation.meta.name == hint)
        {
            return RestMatch::One(best.swap_remove(i));
        }
        return RestMatch::Ambiguous(
            best.iter()
                .map(|m| m.operation.meta.name.as_str())
                .collect(),
        );
    }
    best.pop().map_or(RestMatch::None, RestMatch::One)
}

/// `/a/b/` → `[a, b]`; empty segments inside the path are kept (S3 keys may hold `//`).
pub fn split_path(path: &str) -> Vec<&str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

fn literal_query_present(template: &UriTemplate, query: &Query<'_>) -> bool {
    template
        .literal_query
        .iter()
        .all(|(key, value)| match value {
            None => query.has(key),
            Some(expected) => query.get(key) == Some(expected.as_str()),
        })
}

/// Match path segments to a template; the captured labels on success.
fn match_path<'t>(template: &'t UriTemplate, path: &[&str]) -> Option<Vec<(&'t str, String)>> {
    let segments = &template.segments;
    let mut labels = Vec::new();
    let greedy = segments
        .iter()
        .position(|s| matches!(s, Segment::Greedy(_)));
    let (head, tail) = match greedy {
        Some(g) => (&segments[..g], &segments[g + 1..]),
        None => (&segments[..], &segments[..0]),
    };
    if greedy.is_none() && head.len() != path.len() {
        return None;
    }
    if greedy.is_some() && path.len() < head.len() + tail.len() + 1 {
        return None;
    }
    for (segment, actual) in head.iter().zip(path) {
        match_segment(segment, actual, &mut labels)?;
    }
    for (segment, actual) in tail.iter().rev().zip(path.iter().rev()) {
        match_segment(segment, actual, &mut labels)?;
    }
    if let Some(Segment::Greedy(name)) = greedy.map(|g| &segments[g]) {
        let middle = &path[head.len()..path.len() - tail.len()];
        if middle.iter().all(|s| s.is_empty()) {
            return None;
        }
        labels.push((name.as_str(), decode(&middle.join("/"))));
    }
    Some(labels)
}

fn match_segment<'t>(
    segment: &'t Segment,
    actual: &str,
    labels: &mut Vec<(&'t str, String)>,
) -> Option<()> {
    match segment {
        Segment::Literal(literal) => (literal == actual).then_some(()),
        Segment::Label {
            prefix,
            name,
            suffix,
        } => {
            let value = actual
                .strip_prefix(prefix.as_str())?
                .strip_suffix(suffix.as_str())?;
            if value.is_empty() {
                return None;
            }
            labels.push((name.as_str(), decode(value)));
            Some(())
        }
        Segment::Greedy(_) => None,
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(template: &str, path: &str) -> Option<Vec<(String, String)>> {
        let t = UriTemplate::parse(template);
        match_path(&t, &split_path(path))
            .map(|v| v.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    #[test]
    fn templates_capture_labels_and_greedy_tails() {
        assert_eq!(
            labels("/{Bucket}/{Key+}", "/b/a/b%20c.txt"),
            Some(vec![
                ("Bucket".into(), "b".into()),
                ("Key".into(), "a/b c.txt".into())
            ])
        );
        assert_eq!(labels("/{Bucket}/{Key+}", "/b"), None);
        assert_eq!(
            labels("/{Bucket}", "/b/"),
            Some(vec![("Bucket".into(), "b".into())])
        );
        assert_eq!(
            labels(
                "/2015-03-31/functions/{FunctionName}/invocations",
                "/2015-03-31/functions/f/invocations"
            ),
            Some(vec![("FunctionName".into(), "f".into())])
        );
        assert_eq!(
            labels("/v1/{Arn+}/tags", "/v1/arn:aws:x/y/tags"),
            Some(vec![("Arn".into(), "arn:aws:x/y".into())])
        );
        assert_eq!(labels("/model/{modelId}/invoke", "/model/m/converse"), None);
    }
}
