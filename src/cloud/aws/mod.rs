//! AWS: turn any intercepted request into a [`Call`] (or an explicit unknown).
//!
//! 1. **Service candidates**: the SigV4 credential scope's signing name first, then the
//!    host's endpoint prefix ([`endpoint`]). Several APIs may share one (RDS, DocDB and
//!    Neptune; ELB and ELBv2; S3 and S3 Control).
//! 2. **Protocol and operation**, read from the request itself, not from the model:
//!    `smithy-protocol: rpc-v2-cbor` + `/service/<T>/operation/<Op>`; `X-Amz-Target:
//!    <T>.<Op>` (json); `Action=<Op>&Version=<v>` (query, ec2 — the version tells ELB from
//!    ELBv2); else REST template matching ([`rest`]).
//! 3. **Params** decoded from wherever they travel ([`decode`]; compressed bodies through
//!    [`coding`]); **actions** and access levels from the catalog; **resources** from ARN
//!    templates ([`resources`]).
//!
//! Where the request alone does not say, the answer is an explicit unknown, never the
//! first candidate: an S3 host whose form is not understood ([`endpoint`]), APIs that share
//! a target, an Action+Version or a REST path when the host names none of them, a body in
//! a content coding Airlock does not read. APIs that share a request *and* a host (RDS,
//! DocumentDB, Neptune; greengrass and greengrassv2; …) answer with the one named like the
//! host: `tests/classify.rs` proves each such answer wire-identical to a request botocore
//! makes for it.

mod auth;
pub mod body;
pub mod catalog;
pub mod chunked;
pub mod coding;
pub mod decode;
pub mod endpoint;
pub mod errors;
pub mod fingerprint;
pub mod resources;
pub mod rest;
pub mod sigv4;

use serde_json::{Map, Value};

use self::catalog::{Catalog, Operation, Service, catalog};
use self::coding::CodedBody;
pub use self::endpoint::ApiHost;
use self::endpoint::{Endpoint, S3Addressing};
use self::rest::{Query, RestMatch};
use super::{Action, Call, Classification, Cloud, RequestView};

pub use auth::{Algorithm, Auth, is_auth_param};

/// Classify one AWS request, parsing its host first (`airlock explain`, tests).
pub fn classify(request: &RequestView<'_>) -> Classification {
    classify_at(&ApiHost::parse(request.host), request)
}

/// Classify one AWS request with its host's facts parsed beforehand (the proxy's, once
/// per connection). Facts for another host than the request's are not used: that
/// request's host is parsed afresh.
pub fn classify_at(host: &ApiHost, request: &RequestView<'_>) -> Classification {
    let host = host.for_host(request.host);
    let Some(endpoint) = host.endpoint() else {
        return Classification::unknown(
            Cloud::Aws,
            format!("`{}` is not an AWS API host", request.host),
        );
    };
    match classify_inner(catalog(), request, endpoint) {
        Ok(call) => Classification::Known(Box::new(call)),
        Err(reason) => Classification::unknown(Cloud::Aws, reason),
    }
}

/// What protocol detection found.
struct Identified<'c> {
    service: &'c Service,
    operation: &'c Operation,
    protocol: &'static str,
    params: Value,
}

fn classify_inner(
    catalog: &'static Catalog,
    request: &RequestView<'_>,
    endpoint: &Endpoint,
) -> Result<Call, String> {
    if let Some(S3Addressing::Unsupported(why)) = &endpoint.s3 {
        return Err(format!("`{}`: {why}", request.host));
    }
    let query = Query::parse(request.uri.query());
    let auth = auth::parse(request.headers, request.uri.query());
    let candidates = candidates(catalog, auth.as_ref(), endpoint)?;

    let identified = identify(catalog, &candidates, request, endpoint, &query)?;
    let Identified {
        service,
        operation,
        protocol,
        mut params,
    } = identified;

    let region = auth
        .as_ref()
        .and_then(|a| a.region)
        .or_else(|| {
            request
                .headers
                .get("x-amz-region-set")
                .and_then(|v| v.to_str().ok())
        })
        .or(endpoint.region.as_deref())
        .map(str::to_string);
    let account = endpoint.account.clone().or_else(|| {
        params
            .get("AccountId")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    if let (
        Some(
            S3Addressing::AccessPoint { alias }
            | S3Addressing::MultiRegion { alias }
            | S3Addressing::ObjectLambda { alias },
        ),
        Value::Object(map),
    ) = (&endpoint.s3, &mut params)
        && service.meta.id == "s3"
        && operation.meta.host_prefix.is_none()
    {
        map.entry("Bucket")
            .or_insert_with(|| Value::String(alias.clone()));
    }

    let (action_names, actions) = actions_of(catalog, operation);
    let ctx = resources::ArnContext {
        partition: endpoint.partition,
        region: region.as_deref(),
        account: account.as_deref(),
    };
    let resources = resources::derive(catalog, &action_names, &params, &ctx);
    let idempotency_params = operation
        .meta
        .idempotency
        .iter()
        .filter(|name| params.get(name.as_str()).is_some())
        .map(String::as_str)
        .collect();

    Ok(Call {
        cloud: Cloud::Aws,
        service: service.iam_prefix(),
        api: &service.meta.id,
        operation: &operation.meta.name,
        actions,
        region,
        partition: endpoint.partition,
        account,
        resources,
        params,
        idempotency_params,
        protocol,
        presigned: auth.as_ref().is_some_and(|a| a.presigned),
        parts: Vec::new(),
    })
}

/// The IAM actions an operation needs, with their access levels.
fn actions_of(
    catalog: &'static Catalog,
    operation: &'static Operation,
) -> (Vec<&'static str>, Vec<Action>) {
    let names: Vec<&'static str> = operation.meta.actions.iter().map(String::as_str).collect();
    let actions = names
        .iter()
        .map(|name| Action {
            name,
            access: catalog
                .action(name)
                .map_or("Unknown", |a| a.access.as_str()),
        })
        .collect();
    (names, actions)
}

/// A call described rather than captured (rule tests, `rules explain`): `service` is an
/// IAM prefix (`s3`) or API id (`elbv2`), `operation` its API name; actions, access levels
/// and resources come from the catalog exactly as for a classified request.
pub fn describe(
    service: &str,
    operation: &str,
    params: Value,
    region: Option<&str>,
    account: Option<&str>,
) -> Result<Call, String> {
    let catalog = catalog();
    let (service, operation) = catalog
        .services
        .iter()
        .filter(|s| s.meta.id == service || s.iam_prefix() == service)
        .find_map(|s| s.operation(operation).map(|o| (s, o)))
        .ok_or_else(|| format!("no AWS operation `{operation}` in service `{service}`"))?;
    let (action_names, actions) = actions_of(catalog, operation);
    let ctx = resources::ArnContext {
        partition: "aws",
        region,
        account,
    };
    let resources = resources::derive(catalog, &action_names, &params, &ctx);
    Ok(Call {
        cloud: Cloud::Aws,
        service: service.iam_prefix(),
        api: &service.meta.id,
        operation: &operation.meta.name,
        actions,
        region: region.map(str::to_string),
        partition: "aws",
        account: account.map(str::to_string),
        resources,
        params,
        idempotency_params: Vec::new(),
        protocol: service.meta.protocols.first().map_or("", String::as_str),
        presigned: false,
        parts: Vec::new(),
    })
}

/// Signing names set per operation by endpoint rules rather than in service metadata.
const SIGNING_ALIASES: &[(&str, &str)] = &[("s3-object-lambda", "s3"), ("s3express", "s3")];

/// The services the request may be for: by signing name (scope), else by host.
fn candidates(
    catalog: &'static Catalog,
    auth: Option<&Auth<'_>>,
    endpoint: &Endpoint,
) -> Result<Vec<&'static Service>, String> {
    if let Some(service) = auth.and_then(|a| a.service) {
        let service = SIGNING_ALIASES
            .iter()
            .find(|(alias, _)| *alias == service)
            .map_or(service, |(_, real)| real);
        let by_scope = catalog.by_signing_name(service);
        if by_scope.is_empty() {
            // An unusual scope (e.g. legacy Import/Export): let the host decide.
            return by_host(catalog, endpoint).ok_or_else(|| {
                format!("no AWS API signs as `{service}` (the SigV4 scope's service), nor does the host name one")
            });
        }
        let mut services: Vec<&'static Service> =
            by_scope.iter().map(|&i| &catalog.services[i]).collect();
        // APIs sharing a signing name may share REST paths too (chime / chime-sdk-voice):
        // the one the host names is tried first.
        let prefixes = endpoint.prefix_candidates();
        // Then, among APIs on one host (rds, docdb, neptune), the one named like it.
        services.sort_by_key(|s| {
            let on_host = prefixes.contains(&s.meta.endpoint_prefix);
            (!on_host, s.meta.id != s.meta.endpoint_prefix)
        });
        return Ok(services);
    }
    by_host(catalog, endpoint).ok_or_else(|| {
        "the request carries no SigV4 scope and its host names no known AWS API".into()
    })
}

fn by_host(catalog: &'static Catalog, endpoint: &Endpoint) -> Option<Vec<&'static Service>> {
    endpoint.prefix_candidates().iter().find_map(|prefix| {
        let found = catalog.by_endpoint_prefix(prefix);
        (!found.is_empty()).then(|| {
            let mut services: Vec<&'static Service> =
                found.iter().map(|&i| &catalog.services[i]).collect();
            // As for a scope: among APIs on one host, the one named like it first.
            services.sort_by_key(|s| s.meta.id != s.meta.endpoint_prefix);
            services
        })
    })
}

fn identify<'c>(
    catalog: &'c Catalog,
    candidates: &[&'c Service],
    request: &RequestView<'_>,
    endpoint: &Endpoint,
    query: &Query<'_>,
) -> Result<Identified<'c>, String> {
    let headers = request.headers;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let path = request.uri.path();
    // Compressed bodies (`Content-Encoding: gzip`) are read decompressed; the raw bytes
    // stay as sent (they are what is signed and forwarded).
    let body = CodedBody::new(request.body, headers);

    // rpc-v2-cbor: POST /service/<ServiceShape>/operation/<Op>
    if header("smithy-protocol") == Some("rpc-v2-cbor") {
        let mut parts = path.trim_start_matches('/').split('/');
        let (Some("service"), Some(target), Some("operation"), Some(op)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "rpc-v2-cbor request with an unexpected path `{path}`"
            ));
        };
        let (service, operation) = pick(
            candidates,
            catalog.by_target_prefix(target),
            catalog,
            endpoint,
            target,
            op,
        )?;
        let params = if body.is_empty() {
            Value::Object(Map::new())
        } else {
            decode::cbor_to_json(&body.decoded()?).map_err(|e| e.to_string())?
        };
        return Ok(Identified {
            service,
            operation,
            protocol: "rpc-v2-cbor",
            params,
        });
    }

    // json: X-Amz-Target: <TargetPrefix>.<Op>
    if let Some(target) = header("x-amz-target") {
        let (prefix, op) = target
            .rsplit_once('.')
            .ok_or_else(|| format!("malformed X-Amz-Target `{target}`"))?;
        let (service, operation) = pick(
            candidates,
            catalog.by_target_prefix(prefix),
            catalog,
            endpoint,
            prefix,
            op,
        )?;
        let params = if body.is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(&body.decoded()?)
                .map_err(|e| format!("malformed JSON body: {e}"))?
        };
        return Ok(Identified {
            service,
            operation,
            protocol: "json",
            params,
        });
    }

    // query / ec2: Action=<Op>&Version=<v>, in a form body or (GET, presigned) the query.
    let is_form =
        header("content-type").is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    // A form body that cannot be decoded may still be an opaque REST payload (an S3
    // object uploaded with that Content-Type): the error is kept for when nothing matches.
    let (form_body, form_error) = match (is_form && !body.is_empty()).then(|| body.decoded()) {
        Some(Ok(bytes)) => (Some(bytes), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let form: Option<Vec<(std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)>> =
        if let Some(bytes) = &form_body {
            Some(form_urlencoded::parse(bytes).collect())
        } else if query.has("Action") {
            Some(query.pairs.clone())
        } else {
            None
        };
    if let Some(pairs) = form {
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_ref())
        };
        if let Some(action) = get("Action") {
            let version = get("Version");
            // Candidates are ordered host-first; RDS, DocDB and Neptune share host, version
            // and operation names (and the `rds:` IAM namespace), so the first that has
            // the operation is the answer.
            let speaking: Vec<&Service> = candidates
                .iter()
                .copied()
                // Not filtered by the model's protocol: SQS's model now lists only JSON,
                // yet older SDKs still send (and AWS accepts) its query form.
                .filter(|s| s.operation(action).is_some())
                .collect();
            let at_version: Vec<&Service> = speaking
                .iter()
                .copied()
                .filter(|s| Some(s.meta.api_version.as_str()) == version)
                .collect();
            if at_version.len() > 1 && !on_host(endpoint, at_version[0]) {
                return Err(format!(
                    "`{action}` at Version `{}` exists in [{}] and the host names none of them",
                    version.unwrap_or("-"),
                    ids(&at_version)
                ));
            }
            let service = at_version
                .first()
                .copied()
                .or_else(|| (speaking.len() == 1).then(|| speaking[0]))
                .ok_or_else(|| {
                    format!(
                        "no query API among [{}] has operation `{action}` at Version `{}`",
                        ids(candidates),
                        version.unwrap_or("-")
                    )
                })?;
            let operation = service
                .operation(action)
                .ok_or_else(|| format!("{} has no operation `{action}`", service.meta.id))?;
            let protocol = if service.speaks("ec2") {
                "ec2"
            } else {
                "query"
            };
            let params = decode::form_to_json(
                pairs
                    .iter()
                    .filter(|(k, _)| k != "Action" && k != "Version" && !auth::is_auth_param(k))
                    .cloned(),
            );
            return Ok(Identified {
                service,
                operation,
                protocol,
                params,
            });
        }
    }

    // REST: method + path template.
    let rest_path = s3_path(endpoint, path);
    let express_control = endpoint.s3 == Some(S3Addressing::ExpressControl);
    let method = request.method.as_str();
    let mut ambiguous = Vec::new();
    let mut not_s3_host = false;
    // Every API whose template matches (candidates are in host-first order).
    let mut found: Vec<(&Service, rest::Matched<'_>)> = Vec::new();
    for service in candidates
        .iter()
        .copied()
        .filter(|s| s.speaks("rest-json") || s.speaks("rest-xml"))
    {
        // S3 Control's operations live on `<account>.s3-control…` only, S3's never do.
        let control_host = matches!(
            endpoint.s3,
            Some(S3Addressing::Control | S3Addressing::ExpressControl)
        );
        if service.meta.id == "s3control" && endpoint.s3.is_some() && !control_host {
            continue;
        }
        if service.meta.id == "s3" && endpoint.s3 == Some(S3Addressing::Control) {
            continue;
        }
        // S3's paths mean nothing without knowing how the host names the bucket: a host
        // not understood as S3 is never read as path-style (that would be a guess).
        if service.meta.id == "s3" && endpoint.s3.is_none() {
            not_s3_host = true;
            continue;
        }
        match rest::find(service, method, &rest_path, query, headers, express_control) {
            RestMatch::One(matched) => found.push((service, matched)),
            // An Object Lambda host also serves WriteGetObjectResponse, whose host prefix
            // (`{RequestRoute}.`) is not an access point: its path is not bucket-relative.
            RestMatch::None if matches!(endpoint.s3, Some(S3Addressing::ObjectLambda { .. })) => {
                if let RestMatch::One(matched) =
                    rest::find(service, method, path, query, headers, express_control)
                    && matched.operation.meta.host_prefix.is_some()
                {
                    found.push((service, matched));
                }
            }
            RestMatch::Ambiguous(names) => ambiguous.extend(
                names
                    .into_iter()
                    .map(|n| format!("{}:{n}", service.meta.id)),
            ),
            RestMatch::None => {}
        }
    }
    // APIs sharing a signing name and a path (greengrass and greengrassv2; wisdom and
    // qconnect): the host's own API wins, and among several on the host the one named like
    // it (the corpus test proves such pairs wire-identical). A host naming none of them
    // does not say which: unknown, not the first in catalog order.
    if found.len() > 1 && !on_host(endpoint, found[0].0) {
        return Err(format!(
            "{method} {path} matches operations of [{}] and the host names none of those APIs",
            found
                .iter()
                .map(|(s, m)| format!("{}:{}", s.meta.id, m.operation.meta.name))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some((service, matched)) = found.first() {
        return from_rest(service, matched, query, request, &body, endpoint);
    }
    // botocore sends some long GETs as form-encoded POSTs (CloudSearch Search): read the
    // form as the query string it stands for.
    if method == "POST"
        && let Some(bytes) = &form_body
    {
        let as_query = Query {
            pairs: form_urlencoded::parse(bytes).collect(),
        };
        for service in candidates
            .iter()
            .copied()
            .filter(|s| s.speaks("rest-json") || s.speaks("rest-xml"))
            .filter(|s| s.meta.id != "s3" || endpoint.s3.is_some())
        {
            if let RestMatch::One(matched) = rest::find(
                service,
                "GET",
                &rest_path,
                &as_query,
                headers,
                express_control,
            ) {
                let no_body = CodedBody::new(&[], &http::HeaderMap::new());
                return from_rest(service, &matched, &as_query, request, &no_body, endpoint);
            }
        }
    }
    if !ambiguous.is_empty() {
        return Err(format!(
            "{method} {path} matches several operations equally: {}",
            ambiguous.join(", ")
        ));
    }
    if let Some(reason) = form_error {
        return Err(reason);
    }
    if not_s3_host {
        return Err(format!(
            "the request is signed for S3 but `{}` is not an S3 host form Airlock understands, so its path cannot be read",
            request.host
        ));
    }
    Err(format!(
        "no operation of [{}] matches {method} {path}",
        ids(candidates)
    ))
}

/// The candidate with target prefix `target` that has operation `op`. Timestream's write
/// and query APIs share one target prefix and several operations: there the host
/// (`ingest.timestream…` or `query.timestream…`, or their `-cellN` hosts) decides, and a
/// host that names neither leaves the call unknown rather than guessed.
fn pick<'c>(
    candidates: &[&'c Service],
    by_target: &[usize],
    catalog: &'c Catalog,
    endpoint: &Endpoint,
    target: &str,
    op: &str,
) -> Result<(&'c Service, &'c Operation), String> {
    // In candidate order: the APIs the host names come first.
    let with_target: Vec<&'c Service> = candidates
        .iter()
        .copied()
        .filter(|c| {
            by_target
                .iter()
                .any(|&i| std::ptr::eq(*c, &catalog.services[i]))
        })
        .collect();
    if with_target.is_empty() {
        return Err(format!(
            "target `{target}` belongs to none of [{}]",
            ids(candidates)
        ));
    }
    let having: Vec<(&'c Service, &'c Operation)> = with_target
        .iter()
        .filter_map(|s| s.operation(op).map(|o| (*s, o)))
        .collect();
    let prefixes = endpoint.prefix_candidates();
    let on_host: Vec<(&'c Service, &'c Operation)> = having
        .iter()
        .copied()
        .filter(|(s, _)| prefixes.contains(&s.meta.endpoint_prefix))
        .collect();
    match (having.as_slice(), on_host.as_slice()) {
        ([], _) => Err(format!(
            "no API with target `{target}` has operation `{op}`"
        )),
        ([one], _) | (_, [one]) => Ok(*one),
        _ => Err(format!(
            "operation `{op}` of target `{target}` exists in [{}] and the host names none of them",
            having
                .iter()
                .map(|(s, _)| s.meta.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Whether the host names this API's endpoint prefix.
fn on_host(endpoint: &Endpoint, service: &Service) -> bool {
    endpoint
        .prefix_candidates()
        .contains(&service.meta.endpoint_prefix)
}

fn ids(services: &[&Service]) -> String {
    services
        .iter()
        .map(|s| s.meta.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// S3 templates are path-style (`/{Bucket}/{Key+}`): put a host-named bucket back in front.
fn s3_path(endpoint: &Endpoint, path: &str) -> String {
    match &endpoint.s3 {
        Some(
            S3Addressing::VirtualHosted { bucket }
            | S3Addressing::Directory { bucket }
            | S3Addressing::AccessPoint { alias: bucket }
            | S3Addressing::MultiRegion { alias: bucket }
            | S3Addressing::ObjectLambda { alias: bucket },
        ) => format!("/{bucket}{path}"),
        _ => path.to_string(),
    }
}

/// A REST match as an identified call.
fn from_rest<'c>(
    service: &'c Service,
    matched: &rest::Matched<'c>,
    query: &Query<'_>,
    request: &RequestView<'_>,
    body: &CodedBody<'_>,
    endpoint: &Endpoint,
) -> Result<Identified<'c>, String> {
    let protocol = if service.speaks("rest-xml") {
        "rest-xml"
    } else {
        "rest-json"
    };
    let params = rest_params(
        matched.operation,
        &matched.labels,
        query,
        request,
        body,
        endpoint,
        protocol,
    )?;
    Ok(Identified {
        service,
        operation: matched.operation,
        protocol,
        params,
    })
}

/// REST params: path labels, query members, header members, and the body (the payload
/// member, or the body's members).
fn rest_params(
    operation: &Operation,
    labels: &[(&str, String)],
    query: &Query<'_>,
    request: &RequestView<'_>,
    body: &CodedBody<'_>,
    endpoint: &Endpoint,
    protocol: &str,
) -> Result<Value, String> {
    let meta = &operation.meta;
    let mut params = Map::new();
    for (label, value) in labels {
        let member = meta.labels.get(*label).map_or(*label, String::as_str);
        params.insert(member.to_string(), Value::String(value.clone()));
    }
    if let (Some(prefix), Some(account)) = (&meta.host_prefix, &endpoint.account)
        && prefix.contains("{AccountId}")
    {
        params.insert("AccountId".into(), Value::String(account.clone()));
    }
    for (key, value) in &query.pairs {
        if auth::is_auth_param(key) || key == "x-id" {
            continue;
        }
        if let Some(member) = meta.query.get(key.as_ref()) {
            params.insert(member.clone(), Value::String(value.to_string()));
        }
    }
    for (name, value) in request.headers {
        let Ok(value) = value.to_str() else { continue };
        if let Some(member) = meta.headers.get(name.as_str()) {
            params.insert(member.clone(), Value::String(value.to_string()));
        } else if let Some((prefix, member)) = meta
            .headers
            .iter()
            .find(|(k, _)| k.ends_with('*') && name.as_str().starts_with(k.trim_end_matches('*')))
        {
            let map = params
                .entry(member.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(map) = map {
                map.insert(
                    name.as_str()[prefix.len() - 1..].to_string(),
                    Value::String(value.to_string()),
                );
            }
        }
    }
    if !body.is_empty() {
        // A blob payload (an S3 object, a Lambda payload) is opaque: its Content-Encoding
        // describes the payload and is never decoded. Other bodies carry parameters.
        match &meta.payload {
            Some(payload) if payload.kind == "blob" => {}
            Some(payload) if payload.kind == "string" => {
                params.insert(
                    payload.member.clone(),
                    Value::String(String::from_utf8_lossy(&body.decoded()?).into_owned()),
                );
            }
            Some(payload) => {
                params.insert(
                    payload.member.clone(),
                    decode_body(&body.decoded()?, protocol)?,
                );
            }
            None => {
                if let Value::Object(members) = decode_body(&body.decoded()?, protocol)? {
                    params.extend(members);
                }
            }
        }
    }
    Ok(Value::Object(params))
}

fn decode_body(body: &[u8], protocol: &str) -> Result<Value, String> {
    if protocol == "rest-xml" {
        decode::xml_to_json(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(body).map_err(|e| format!("malformed JSON body: {e}"))
    }
}
