//! Google Cloud (REST): turn an intercepted request into a [`Call`] (or an explicit unknown).
//!
//! 1. **Host** ([`endpoint`]): the root, mTLS, regional or locational host names a group of
//!    discovery documents (every version of an API, and under `www.googleapis.com` every
//!    API with a service path).
//! 2. **Route** ([`rest`], [`catalog`]): the path is matched against each method's
//!    `<servicePath><flatPath>` (and the `/upload/…`, `/resumable/upload/…` and
//!    `/download/…` media paths); the most specific template wins. Methods that are
//!    identical on the wire are the same method id served by two documents
//!    (`compute:v1` and `compute:preview` both serve `compute/v1/`,
//!    `cloudresourcemanager:v2beta1` serves `v2/`): the document whose version is in the
//!    path wins, then the first document id in sorted order.
//! 3. **Media**: `uploadType=media|multipart|resumable` on an upload path; a resumable
//!    chunk (`upload_id=`, any HTTP method) is the upload's method; `alt=media` on a
//!    method's own path is a download.
//! 4. **Batch** ([`batch`]): a `multipart/mixed` POST to a document's batch path; every
//!    inner request is classified on its own, and one that cannot be makes the batch
//!    unknown.
//! 5. **Call**: the permissions from the catalog (iam-dataset plus reviewed overrides;
//!    body-conditional ones only when the JSON body has the path), the project and
//!    location from the path (`projects/P`, `locations|zones|regions/L`) or the host, full
//!    resource names (`//<api>.googleapis.com/<relative name>`; Cloud Storage as
//!    `//storage.googleapis.com/projects/_/buckets/B/objects/O`).
//!
//! gRPC (`content-type: application/grpc*`) is classified by [`grpc`]: the method from the
//! path (`/google.pubsub.v1.Publisher/Publish` → its REST twin's method id), the
//! parameters from the first length-prefixed message, decoded with descriptor sets built
//! from public `.proto` files (`data/gcp/grpc/`).

pub mod batch;
pub mod catalog;
pub mod endpoint;
pub mod errors;
pub mod fingerprint;
pub mod grpc;
pub mod rest;

use serde_json::{Map, Value};

use self::catalog::{Catalog, Method, Route, RouteKind, catalog};
use self::rest::{Captures, Template, decode, split_path};
use super::aws::rest::Query;
use super::{Action, Call, Classification, Cloud, RequestView};

/// The universe domain every call is in.
pub const PARTITION: &str = "googleapis.com";

/// JSON bodies larger than this are not decoded (the call is still classified; its
/// body-conditional permissions are then all assumed).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// Paths with more segments than this are not classified (an explicit unknown).
pub const MAX_PATH_SEGMENTS: usize = 64;

/// Query parameters that carry credentials: never copied into `params` (a resumable
/// upload's `upload_id` authorizes the session on its own).
const SECRET_QUERY: &[&str] = &["access_token", "oauth_token", "key", "upload_id"];

/// Classify one Google Cloud request.
pub fn classify(request: &RequestView<'_>) -> Classification {
    classify_at(None, request)
}

/// What a Google API host says (its API group, its location), worked out once per
/// connection; `None` for a host no discovery document names.
pub fn host_endpoint(host: &str) -> Option<endpoint::Endpoint> {
    endpoint::resolve(catalog(), host)
}

/// [`classify`] with the request's host already resolved ([`host_endpoint`]); `None`
/// resolves it here.
pub fn classify_at(
    endpoint: Option<&endpoint::Endpoint>,
    request: &RequestView<'_>,
) -> Classification {
    if is_grpc(request.headers) {
        // gRPC: the method from the path, the parameters from the first message.
        return match grpc::classify(request.uri.path(), request.body) {
            Ok(call) => Classification::Known(Box::new(grpc_call(call))),
            Err(reason) => Classification::unknown(Cloud::Gcp, reason),
        };
    }
    match classify_inner(catalog(), request, true, endpoint) {
        Ok(call) => Classification::Known(Box::new(call)),
        Err(reason) => Classification::unknown(Cloud::Gcp, reason),
    }
}

/// A gRPC call as a [`Call`]: its REST twin's method id, permissions with the catalog's
/// access levels, the project and location its message names, full resource names on the
/// API's host.
fn grpc_call(call: grpc::GrpcCall) -> Call {
    let catalog = catalog();
    let service = call.api.split(':').next().unwrap_or(call.api);
    Call {
        cloud: Cloud::Gcp,
        service,
        api: call.api,
        operation: call.method_id,
        actions: call
            .permissions
            .iter()
            .map(|name| Action {
                name,
                access: catalog.access(name),
            })
            .collect(),
        region: call.location().map(str::to_string),
        partition: PARTITION,
        account: call.project().map(str::to_string),
        resources: call
            .resource_names
            .iter()
            .map(|name| format!("//{}/{name}", call.host))
            .collect(),
        params: call.params,
        idempotency_params: Vec::new(),
        protocol: "grpc",
        presigned: false,
        parts: Vec::new(),
    }
}

/// `content-type: application/grpc…`.
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/grpc")
        })
}

fn content_type<'r>(request: &RequestView<'r>) -> &'r str {
    request
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn classify_inner(
    catalog: &'static Catalog,
    request: &RequestView<'_>,
    allow_batch: bool,
    known: Option<&endpoint::Endpoint>,
) -> Result<Call, String> {
    let resolved;
    let endpoint = match known {
        Some(endpoint) => endpoint,
        None => {
            resolved = endpoint::resolve(catalog, request.host).ok_or_else(|| {
                format!(
                    "`{}` is not a Google API host that the discovery documents name",
                    request.host
                )
            })?;
            &resolved
        }
    };
    let group = &catalog.groups[endpoint.group];
    let path = request.uri.path();
    let trimmed = path.trim_matches('/');
    if request.method == http::Method::POST
        && !request.headers.contains_key("x-http-method-override")
        && group.batch_paths.contains(&trimmed)
    {
        if !allow_batch {
            return Err("a batch request inside a batch".into());
        }
        return batch::classify(catalog, request, endpoint, trimmed);
    }
    let segments = split_path(path);
    // Greedy `{+name}` variables backtrack over segments: a bound keeps a crafted path
    // from costing more than any real one (the deepest Google paths have ~20 segments).
    if segments.len() > MAX_PATH_SEGMENTS {
        return Err(format!(
            "the path has {} segments; Airlock reads at most {MAX_PATH_SEGMENTS}",
            segments.len()
        ));
    }
    let effective = Effective::of(request)?;
    let query = Query::parse(effective.query.as_deref().or(request.uri.query()));
    let route = find_route(catalog, endpoint.group, effective.method, &segments, &query)?;
    let method = &catalog.methods[route.method];
    let api = catalog.api_of(method);

    let protocol = match route.kind {
        RouteKind::Rest if query.get("alt") == Some("media") => {
            if !method.meta.download {
                return Err(format!(
                    "`alt=media` on {}, which has no media download",
                    method.meta.id
                ));
            }
            "media"
        }
        RouteKind::Rest => "rest",
        RouteKind::Upload | RouteKind::ResumableUpload | RouteKind::Download => "media",
    };
    if matches!(route.kind, RouteKind::Upload)
        && !matches!(
            query.get("uploadType"),
            Some("media" | "multipart" | "resumable")
        )
    {
        return Err(format!(
            "upload to {} without uploadType=media|multipart|resumable",
            method.meta.id
        ));
    }

    let path_template = method.path(api);
    let template = route.params.as_ref().unwrap_or(&path_template);
    let flat_template;
    let routed = match &route.template {
        Some(t) => t,
        None => {
            flat_template = method.flat(api);
            &flat_template
        }
    };
    let captures = template
        .capture(&segments)
        .or_else(|| routed.capture(&segments))
        .ok_or_else(|| format!("{} matched but its parameters did not", method.meta.id))?;
    let body = if effective.body_is_query {
        Body::None
    } else {
        decode_body(request)?
    };
    let mut params = Map::new();
    for (name, value) in &captures.labels {
        params.insert((*name).to_string(), Value::String(value.clone()));
    }
    for (key, value) in &query.pairs {
        if SECRET_QUERY.contains(&key.as_ref()) {
            continue;
        }
        // A query parameter named like a path parameter would blur which resource the
        // call is for (`/b/b1?bucket=b2`): refuse to read it rather than pick one.
        if captures
            .labels
            .iter()
            .any(|(name, _)| *name == key.as_ref())
        {
            return Err(format!(
                "query parameter `{key}` repeats a path parameter of {}",
                method.meta.id
            ));
        }
        let value = Value::String(value.to_string());
        match params.get_mut(key.as_ref()) {
            Some(Value::Array(values)) => values.push(value),
            Some(existing) => *existing = Value::Array(vec![existing.take(), value]),
            None => {
                params.insert(key.to_string(), value);
            }
        }
    }
    let body_known = !matches!(body, Body::Unread);
    if let Body::Json(json) = body {
        params.insert("body".into(), json);
    }
    let params = Value::Object(params);
    let segments_after_root = segments
        .get(route.root.min(segments.len())..)
        .unwrap_or(&[]);
    let region = location_in(segments_after_root).or(endpoint.location.clone());
    let account = project_of(method, segments_after_root, &params);
    let resources = resources_of(api, method, route.root, &captures, &segments, &params);
    let actions = actions_of(catalog, method, params.get("body"), body_known);
    let idempotency_params =
        if params.get("requestId").is_some() || params.pointer("/body/requestId").is_some() {
            vec!["requestId"]
        } else {
            Vec::new()
        };
    Ok(Call {
        cloud: Cloud::Gcp,
        service: api.name,
        api: api.id,
        operation: method.meta.id,
        actions,
        region,
        partition: PARTITION,
        account,
        resources,
        params,
        idempotency_params,
        protocol,
        presigned: false,
        parts: Vec::new(),
    })
}

/// The method and query Google acts on. A POST may carry `X-HTTP-Method-Override`
/// (google-api-python-client turns a GET whose URL passes 2,000 characters into a POST
/// with the override and the query as a form body): the override is the method the
/// server runs — a POST overridden to DELETE is a delete, so it is honoured, never
/// ignored.
struct Effective<'r> {
    method: &'r str,
    /// The URL query joined with a form body that carries the query.
    query: Option<String>,
    body_is_query: bool,
}

impl<'r> Effective<'r> {
    fn of(request: &RequestView<'r>) -> Result<Self, String> {
        let mut overrides = request.headers.get_all("x-http-method-override").iter();
        let Some(value) = overrides.next() else {
            return Ok(Effective {
                method: request.method.as_str(),
                query: None,
                body_is_query: false,
            });
        };
        if overrides.next().is_some() {
            return Err("more than one X-HTTP-Method-Override header".into());
        }
        if request.method != http::Method::POST {
            return Err(format!(
                "X-HTTP-Method-Override on a {} request",
                request.method
            ));
        }
        let method = value
            .to_str()
            .ok()
            .map(str::trim)
            .and_then(|m| {
                ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
                    .into_iter()
                    .find(|known| known.eq_ignore_ascii_case(m))
            })
            .ok_or("an X-HTTP-Method-Override that is not an HTTP method")?;
        let form = content_type(request)
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded");
        if !form {
            return Ok(Effective {
                method,
                query: None,
                body_is_query: false,
            });
        }
        if request.body.len() > MAX_JSON_BODY {
            return Err("a form-encoded query body over the size limit".into());
        }
        let body = std::str::from_utf8(request.body)
            .map_err(|_| "a form-encoded body that is not UTF-8")?;
        let query = match request.uri.query().filter(|q| !q.is_empty()) {
            Some(url) => format!("{url}&{body}"),
            None => body.to_string(),
        };
        Ok(Effective {
            method,
            query: Some(query),
            body_is_query: true,
        })
    }
}

/// The best route for a request, or why there is none.
fn find_route(
    catalog: &'static Catalog,
    group: usize,
    method: &str,
    segments: &[&str],
    query: &Query<'_>,
) -> Result<&'static Route, String> {
    let group = &catalog.groups[group];
    let is_upload = matches!(segments, ["upload", ..] | ["resumable", "upload", ..]);
    let mut best: Option<&'static Route> = None;
    // Another method (a different id) that ranks the same as `best`.
    let mut rival: Option<&'static Route> = None;
    let mut consider = |route: &'static Route| match best {
        None => best = Some(route),
        Some(b) => match rank(catalog, route).cmp(&rank(catalog, b)) {
            std::cmp::Ordering::Greater => {
                best = Some(route);
                rival = None;
            }
            std::cmp::Ordering::Equal
                if catalog.methods[route.method].meta.id != catalog.methods[b.method].meta.id =>
            {
                rival = Some(route);
            }
            _ => {}
        },
    };
    if is_upload && query.has("upload_id") {
        // A resumable session's chunks (PUT, or POST to query/cancel) go to the session
        // URI: the upload path plus `upload_id`, whatever the method's own HTTP method.
        for &r in &group.uploads {
            let route = &catalog.routes[r];
            if route.template.as_ref().is_some_and(|t| t.matches(segments)) {
                consider(route);
            }
        }
    } else {
        for r in group.candidates(method, segments) {
            let route = &catalog.routes[r];
            // Trie candidates fit already; greedy media routes are checked here.
            let fits = route.template.as_ref().is_none_or(|t| t.matches(segments));
            if catalog.methods[route.method].meta.http == method && fits {
                consider(route);
            }
        }
    }
    let best = best.ok_or_else(|| {
        format!(
            "no method of the APIs served by `{}` matches {method} {}",
            group.root,
            segments.join("/")
        )
    })?;
    if let Some(rival) = rival {
        // Two methods the request cannot tell apart (a resumable chunk of YouTube's
        // captions.insert and captions.update go to the same session URI): never guess.
        return Err(format!(
            "ambiguous: {method} {} may be {} or {}",
            segments.join("/"),
            catalog.methods[best.method].meta.id,
            catalog.methods[rival.method].meta.id
        ));
    }
    Ok(best)
}

/// Orders matching routes: most specific template, then the document's own version,
/// then not deprecated. A full tie between documents serving the same method id (the
/// displayvideo versions share `media/{+resourceName}`) keeps the first route — sorted by
/// document id — which makes the choice deterministic; a full tie between different
/// method ids is ambiguous, and unknown.
fn rank(catalog: &Catalog, route: &Route) -> (u32, bool, bool) {
    let deprecated = catalog.methods[route.method].meta.deprecated;
    (route.specificity, route.native, !deprecated)
}

/// A request body as far as the classifier reads it.
enum Body {
    None,
    Json(Value),
    /// Present but not decoded (too large, or not JSON).
    Unread,
}

fn decode_body(request: &RequestView<'_>) -> Result<Body, String> {
    if request.body.is_empty() {
        return Ok(Body::None);
    }
    let content_type = content_type(request);
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json_bytes: &[u8] = if essence == "application/json" || essence.ends_with("+json") {
        request.body
    } else if essence == "multipart/related" {
        // uploadType=multipart: the first part is the JSON metadata.
        match batch::boundary(content_type)
            .and_then(|b| batch::parts(request.body, &b).next())
            .and_then(Result::ok)
            .and_then(|part| batch::split_head(part).map(|(_, body)| body))
        {
            Some(metadata) => metadata,
            None => return Ok(Body::Unread),
        }
    } else if essence.is_empty() && request.body.first() == Some(&b'{') {
        request.body
    } else {
        return Ok(Body::Unread);
    };
    if json_bytes.len() > MAX_JSON_BODY {
        return Ok(Body::Unread);
    }
    let trimmed = json_bytes.trim_ascii();
    if trimmed.is_empty() {
        return Ok(Body::None);
    }
    serde_json::from_slice(trimmed)
        .map(Body::Json)
        .map_err(|e| format!("the JSON body does not parse: {e}"))
}

/// The permissions a method needs: its own, plus each body-conditional one whose path the
/// body has (all of them when the body could not be read).
fn actions_of(
    catalog: &'static Catalog,
    method: &'static Method,
    body: Option<&Value>,
    body_known: bool,
) -> Vec<Action> {
    let conditional = method
        .meta
        .when_body
        .iter()
        .filter(|(_, path)| !body_known || body.is_some_and(|b| body_has(b, path)))
        .map(|(name, _)| name);
    let mut actions: Vec<Action> = Vec::new();
    for name in method.meta.perms.iter().chain(conditional) {
        if actions.iter().all(|a| a.name != *name) {
            actions.push(Action {
                name,
                access: catalog.access(name),
            });
        }
    }
    actions
}

/// Does the JSON value have `$.a.b[].c` (any element of an array)?
fn body_has(body: &Value, path: &str) -> bool {
    fn walk(value: &Value, parts: &[&str]) -> bool {
        let Some((first, rest)) = parts.split_first() else {
            return !value.is_null();
        };
        let (key, array) = match first.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (*first, false),
        };
        match value.get(key) {
            Some(Value::Array(items)) if array => items.iter().any(|v| walk(v, rest)),
            Some(child) if !array => walk(child, rest),
            _ => false,
        }
    }
    let Some(rest) = path.strip_prefix("$.") else {
        return false;
    };
    walk(body, &rest.split('.').collect::<Vec<_>>())
}

/// `locations/L`, `zones/Z` or `regions/R` in the resource path.
fn location_in(segments: &[&str]) -> Option<String> {
    segments.windows(2).find_map(|w| match w {
        [key, value] if matches!(*key, "locations" | "zones" | "regions") && *value != "-" => {
            Some(decode(value.split(':').next().unwrap_or(value)))
        }
        _ => None,
    })
}

/// `projects/P` in the resource path, else a `project`/`projectId` parameter.
fn project_of(method: &Method, segments: &[&str], params: &Value) -> Option<String> {
    segments
        .windows(2)
        .find_map(|w| match w {
            ["projects", value] if *value != "-" && *value != "_" => {
                Some(decode(value.split(':').next().unwrap_or(value)))
            }
            _ => None,
        })
        .or_else(|| {
            ["project", "projectId"].iter().find_map(|k| {
                method
                    .meta
                    .declares(k)
                    .then(|| params.get(*k))
                    .flatten()
                    .and_then(Value::as_str)
                    .map(|p| p.strip_prefix("projects/").unwrap_or(p).to_string())
            })
        })
        .filter(|p| !p.is_empty() && p != "-")
}

/// Full resource names the call touches.
fn resources_of(
    api: &catalog::Api,
    method: &Method,
    root: usize,
    captures: &Captures<'_>,
    segments: &[&str],
    params: &Value,
) -> Vec<String> {
    if api.name == "storage" {
        return storage_resources(method, params);
    }
    let Some((last, suffix_len)) = captures.last_var else {
        return Vec::new();
    };
    if last < root || last >= segments.len() {
        return Vec::new();
    }
    let mut relative: Vec<&str> = segments[root..=last].to_vec();
    if let Some(end) = relative.last_mut() {
        *end = &end[..end.len().saturating_sub(suffix_len)];
    }
    let relative = decode(&relative.join("/"));
    if relative.is_empty() {
        return Vec::new();
    }
    vec![format!("//{}.googleapis.com/{relative}", api.name)]
}

/// Cloud Storage names: `//storage.googleapis.com/projects/_/buckets/B[/objects/O]`, for
/// the bucket/object, source and destination parameters, and for inserts the name in the
/// query or the metadata.
fn storage_resources(method: &Method, params: &Value) -> Vec<String> {
    let text = |key: &str| {
        method
            .meta
            .declares(key)
            .then(|| params.get(key).and_then(Value::as_str))
            .flatten()
    };
    let body_name = params.pointer("/body/name").and_then(Value::as_str);
    let id = method.meta.id;
    let mut pairs: Vec<(Option<&str>, Option<&str>)> = vec![
        (text("sourceBucket"), text("sourceObject")),
        (text("destinationBucket"), text("destinationObject")),
    ];
    match id {
        "storage.buckets.insert" => pairs.push((body_name, None)),
        "storage.objects.insert" => pairs.push((text("bucket"), text("name").or(body_name))),
        _ => pairs.push((text("bucket"), text("object"))),
    }
    let mut out = Vec::new();
    for (bucket, object) in pairs {
        let Some(bucket) = bucket.filter(|b| !b.is_empty()) else {
            continue;
        };
        let name = match object.filter(|o| !o.is_empty()) {
            Some(object) => {
                format!("//storage.googleapis.com/projects/_/buckets/{bucket}/objects/{object}")
            }
            None => format!("//storage.googleapis.com/projects/_/buckets/{bucket}"),
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// A call described rather than captured (rule tests, `rules check`): `service_or_api` is
/// an API name (`storage`) or discovery id (`storage:v1`), `method_id` the discovery method
/// id; `params` holds path parameters by name (and `body` for body-conditional
/// permissions). Where several versions define the method, a stable version (no
/// alpha/beta/preview) is preferred, then the first document id in sorted order.
pub fn describe(
    service_or_api: &str,
    method_id: &str,
    params: Value,
    location: Option<&str>,
    project: Option<&str>,
) -> Result<Call, String> {
    let catalog = catalog();
    let candidates: Vec<&'static Method> = catalog
        .methods_by_id(method_id)
        .iter()
        .map(|&i| &catalog.methods[i])
        .filter(|m| {
            let api = catalog.api_of(m);
            api.id == service_or_api || api.name == service_or_api
        })
        .collect();
    let unstable = |m: &&Method| {
        let v = &catalog.api_of(m).version;
        v.contains("alpha") || v.contains("beta") || v.contains("preview")
    };
    let method = candidates
        .iter()
        .find(|m| !unstable(m))
        .or(candidates.first())
        .copied()
        .ok_or_else(|| format!("no Google method `{method_id}` in `{service_or_api}`"))?;
    let api = catalog.api_of(method);
    let template = method.path(api);
    let path = fill(&template, &params);
    let segments = path.as_deref().map(split_path).unwrap_or_default();
    let resources = match template.capture(&segments) {
        Some(captures) => resources_of(api, method, method.root, &captures, &segments, &params),
        None if api.name == "storage" => storage_resources(method, &params),
        None => Vec::new(),
    };
    let body = params.get("body");
    let actions = actions_of(catalog, method, body, true);
    Ok(Call {
        cloud: Cloud::Gcp,
        service: api.name,
        api: api.id,
        operation: method.meta.id,
        actions,
        region: location.map(str::to_string),
        partition: PARTITION,
        account: project.map(str::to_string),
        resources,
        params,
        idempotency_params: Vec::new(),
        protocol: "rest",
        presigned: false,
        parts: Vec::new(),
    })
}

/// A template's path with `params` filled in, or `None` if one is missing.
fn fill(template: &Template, params: &Value) -> Option<String> {
    use self::rest::Segment;
    let mut out = String::new();
    for segment in template.segments.iter() {
        out.push('/');
        match segment {
            Segment::Literal(l) => out.push_str(l),
            Segment::Var {
                prefix,
                name,
                suffix,
            } => {
                let value = params.get(&**name)?.as_str()?;
                let encoded = percent_encoding::utf8_percent_encode(
                    value,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                out.push_str(&format!("{prefix}{encoded}{suffix}"));
            }
            Segment::Greedy {
                prefix,
                name,
                suffix,
            } => {
                let value = params.get(&**name)?.as_str()?;
                out.push_str(&format!("{prefix}{value}{suffix}"));
            }
        }
    }
    Some(out)
}

/// Every permission the catalog knows, with its access level (for `rules check`).
pub fn permissions() -> impl Iterator<Item = Action> {
    catalog()
        .permission_names()
        .map(|(name, access)| Action { name, access })
}

/// The call a batch part makes (used by [`batch`]).
fn classify_part(catalog: &'static Catalog, request: &RequestView<'_>) -> Result<Call, String> {
    classify_inner(catalog, request, false, None)
}

#[cfg(test)]
mod tests;
