//! gRPC requests to Google APIs (Pub/Sub, Firestore, BigQuery Storage, Bigtable): which
//! method a request calls, and what its first message says.
//!
//! A gRPC request is an HTTP/2 POST whose `:path` names the method
//! (`/google.pubsub.v1.Publisher/Publish`) and whose body is a stream of length-prefixed
//! protobuf messages (1 byte compressed flag, 4 bytes big-endian length, the message).
//! The method comes from `data/gcp/grpc/methods.jsonl` (its REST twin's discovery method
//! id, IAM permissions, streaming flags); the message is decoded with the descriptor set
//! `data/gcp/grpc/descriptors.binpb` (both made by `data/gcp/grpc/generate.py` from the
//! `.proto` files Google's client packages ship) into proto3 JSON.
//!
//! Methods whose REST twin depends on the request (Firestore `ListDocuments`; Google's IAM
//! mixin `google.iam.v1.IAMPolicy`, which the Pub/Sub client calls for topics,
//! subscriptions, snapshots and schemas) are told apart by matching the request's resource
//! fields against each HTTP binding; a request that matches none is refused, not guessed.
//!
//! Only the FIRST message is decoded: for unary and server-streaming calls it is the whole
//! request; for client-streaming calls (StreamingPull, AppendRows, Listen) it is the one
//! that opens the stream and names its target (subscription, write stream, database).
//! Later messages of a stream are not classified here.

use std::collections::HashMap;
use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions, Value};
use serde::Deserialize;

/// The descriptor set: every request message of the methods below, with its imports.
const DESCRIPTORS: &[u8] = include_bytes!("../../../data/gcp/grpc/descriptors.binpb");
/// One JSON line per gRPC method.
const METHODS: &str = include_str!("../../../data/gcp/grpc/methods.jsonl");

/// The largest message Airlock decodes (the gRPC default receive limit is 4 MiB too).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// How deep the resource-name walk descends into nested messages.
const MAX_WALK_DEPTH: usize = 16;

/// A classified gRPC request.
#[derive(Debug, Clone, PartialEq)]
pub struct GrpcCall {
    /// The gRPC path, `/google.pubsub.v1.Publisher/Publish`.
    pub path: &'static str,
    /// The discovery method id of the REST twin (`pubsub.projects.topics.publish`), or, for
    /// a method without one, Airlock's own `<api name>.<Service>.<Method>`
    /// (`pubsub.Subscriber.StreamingPull`); `rest_twin` says which.
    pub method_id: &'static str,
    /// `pubsub:v1` (the discovery document id where there is one).
    pub api: &'static str,
    /// The API's host, `pubsub.googleapis.com`.
    pub host: &'static str,
    /// IAM permissions the method needs, where known (empty when not: never guessed).
    pub permissions: Vec<&'static str>,
    pub client_streaming: bool,
    pub server_streaming: bool,
    /// Whether `method_id` is a discovery method id.
    pub rest_twin: bool,
    /// The request message type, `google.pubsub.v1.PublishRequest`.
    pub input: &'static str,
    /// The first message in the proto3 JSON mapping (lowerCamelCase names, bytes as
    /// base64, 64-bit integers as strings, default values omitted).
    pub params: serde_json::Value,
    /// Resource names found in the message (`projects/p/topics/t`), in the order found,
    /// without duplicates: string fields named like resources (`name`, `parent`, `topic`,
    /// `subscription`, `database`, `*_topic`, …) holding `projects/…` paths, at any depth
    /// except inside maps (attributes, labels and document fields are user data).
    pub resource_names: Vec<String>,
    /// The projects the message names: a top-level `project_id` (Datastore), then those of
    /// the resource names, in order, without duplicates.
    pub projects: Vec<String>,
    /// The locations (`projects/p/locations/{l}/…`) those names are in.
    pub locations: Vec<String>,
}

impl GrpcCall {
    /// The first project the message names.
    pub fn project(&self) -> Option<&str> {
        self.projects.first().map(String::as_str)
    }

    /// The first location the message names.
    pub fn location(&self) -> Option<&str> {
        self.locations.first().map(String::as_str)
    }
}

#[derive(Debug, Deserialize)]
struct MethodLine {
    path: String,
    api: String,
    host: String,
    input: String,
    client_streaming: bool,
    server_streaming: bool,
    method_id: String,
    permissions: Vec<String>,
    rest_twin: bool,
    binding_dependent: bool,
    #[serde(default)]
    bindings: Vec<BindingLine>,
}

#[derive(Debug, Deserialize)]
struct BindingLine {
    method_id: Option<String>,
    permissions: Vec<String>,
    variables: Vec<Variable>,
}

#[derive(Debug, Deserialize)]
struct Variable {
    /// A field path in the request message, `parent` or `read_session.table`.
    field: String,
    /// The segment pattern, `projects/*/topics/*`; `**` matches the rest.
    pattern: String,
}

struct Method {
    line: MethodLine,
    input: MessageDescriptor,
}

/// The loaded descriptor pool and method table.
pub struct Catalog {
    methods: HashMap<String, Method>,
}

static CATALOG: LazyLock<Result<Catalog, String>> = LazyLock::new(Catalog::load);

/// Classify a gRPC request by its `:path` and body (the raw HTTP/2 DATA bytes, at least the
/// first length-prefixed message). Errors say why the request cannot be classified.
pub fn classify(path: &str, body: &[u8]) -> Result<GrpcCall, String> {
    match &*CATALOG {
        Ok(catalog) => catalog.classify(path, body),
        Err(e) => Err(e.clone()),
    }
}

/// The shared catalog, loaded on first use.
pub fn catalog() -> Result<&'static Catalog, String> {
    CATALOG.as_ref().map_err(Clone::clone)
}

impl Catalog {
    /// Decode the embedded descriptor set and method table, checking that they agree
    /// (every method's input type exists and its streaming flags match the descriptor).
    pub fn load() -> Result<Catalog, String> {
        let pool = DescriptorPool::decode(DESCRIPTORS)
            .map_err(|e| format!("gRPC descriptor set does not decode: {e}"))?;
        let mut methods = HashMap::new();
        for (number, line) in METHODS.lines().enumerate() {
            let line: MethodLine = serde_json::from_str(line)
                .map_err(|e| format!("methods.jsonl line {}: {e}", number + 1))?;
            let input = pool.get_message_by_name(&line.input).ok_or_else(|| {
                format!(
                    "methods.jsonl: {} input {} is not in the descriptor set",
                    line.path, line.input
                )
            })?;
            let descriptor = method_descriptor(&pool, &line.path).ok_or_else(|| {
                format!("methods.jsonl: {} is not in the descriptor set", line.path)
            })?;
            if descriptor.is_client_streaming() != line.client_streaming
                || descriptor.is_server_streaming() != line.server_streaming
                || descriptor.input().full_name() != line.input
            {
                return Err(format!(
                    "methods.jsonl: {} disagrees with its descriptor",
                    line.path
                ));
            }
            if line.binding_dependent && line.bindings.is_empty() {
                return Err(format!(
                    "methods.jsonl: {} has no bindings to choose from",
                    line.path
                ));
            }
            methods.insert(line.path.clone(), Method { line, input });
        }
        Ok(Catalog { methods })
    }

    /// How many gRPC methods the catalog knows.
    /// Every method id a gRPC call can have (REST twins' and Airlock's own).
    pub fn method_ids(&self) -> impl Iterator<Item = &str> {
        self.methods.values().map(|m| m.line.method_id.as_str())
    }

    pub fn method_count(&self) -> usize {
        self.methods.len()
    }

    /// Classify one request against this catalog (see [`classify`]).
    pub fn classify(&'static self, path: &str, body: &[u8]) -> Result<GrpcCall, String> {
        let method = self.methods.get(path).ok_or_else(|| {
            format!(
                "unknown gRPC method {}: not in Airlock's descriptor set (data/gcp/grpc)",
                shorten(path)
            )
        })?;
        let line = &method.line;
        let bytes = first_message(body)?;
        let message = DynamicMessage::decode(method.input.clone(), bytes)
            .map_err(|e| format!("{} does not decode as {}: {e}", line.path, line.input))?;
        let params = message
            .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
            .map_err(|e| format!("{} cannot be shown as JSON: {e}", line.input))?;

        let (method_id, permissions) = if line.binding_dependent {
            let binding = line
                .bindings
                .iter()
                .find(|b| b.variables.iter().all(|v| variable_matches(&message, v)))
                .ok_or_else(|| {
                    format!(
                        "{}: the request's resource fields match none of the method's HTTP bindings, so its REST method and IAM permissions are unknown",
                        line.path
                    )
                })?;
            match &binding.method_id {
                Some(id) => (id.as_str(), &binding.permissions),
                None => (line.method_id.as_str(), &line.permissions),
            }
        } else {
            (line.method_id.as_str(), &line.permissions)
        };

        let mut resource_names = Vec::new();
        collect_resource_names(&message, 0, &mut resource_names);
        let mut projects = Vec::new();
        let mut locations = Vec::new();
        // Datastore names its project in a top-level `project_id`, not in a resource name.
        if let Some(id) = field_string(&message, "project_id").filter(|id| is_project_id(id)) {
            projects.push(id);
        }
        for name in &resource_names {
            let mut segments = name.split('/');
            while let Some(segment) = segments.next() {
                let list = match segment {
                    "projects" => &mut projects,
                    "locations" => &mut locations,
                    _ => continue,
                };
                if let Some(value) = segments.next().filter(|v| !v.is_empty())
                    && !list.iter().any(|known| known == value)
                {
                    list.push(value.to_string());
                }
            }
        }

        Ok(GrpcCall {
            path: &line.path,
            method_id,
            api: &line.api,
            host: &line.host,
            permissions: permissions.iter().map(String::as_str).collect(),
            client_streaming: line.client_streaming,
            server_streaming: line.server_streaming,
            rest_twin: line.rest_twin,
            input: &line.input,
            params,
            resource_names,
            projects,
            locations,
        })
    }
}

fn method_descriptor(pool: &DescriptorPool, path: &str) -> Option<prost_reflect::MethodDescriptor> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    pool.get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)
}

/// The first length-prefixed message of a gRPC request body.
///
/// Compressed messages are refused rather than inflated: the algorithm is named only by
/// the `grpc-encoding` header, and inflating untrusted input needs its own limits. The
/// clients Airlock fronts send uncompressed requests unless told otherwise.
pub fn first_message(body: &[u8]) -> Result<&[u8], String> {
    if body.is_empty() {
        return Err("the gRPC request body holds no message".into());
    }
    let Some((prefix, rest)) = body.split_first_chunk::<5>() else {
        return Err(format!(
            "partial gRPC message: the body ends inside the 5-byte message prefix ({} bytes)",
            body.len()
        ));
    };
    match prefix[0] {
        0 => {}
        1 => {
            return Err(
                "compressed gRPC message: Airlock does not decompress gRPC requests; send them uncompressed (no grpc-encoding)"
                    .into(),
            );
        }
        flag => {
            return Err(format!(
                "malformed gRPC message prefix: compressed flag {flag:#04x}"
            ));
        }
    }
    let length = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if length > MAX_MESSAGE_BYTES {
        return Err(format!(
            "gRPC message of {length} bytes is over Airlock's limit of {MAX_MESSAGE_BYTES} bytes"
        ));
    }
    rest.get(..length).ok_or_else(|| {
        format!(
            "partial gRPC message: the prefix announces {length} bytes, the body holds {}",
            rest.len()
        )
    })
}

/// Whether a field of this name holds a resource name (when its value is `projects/…`).
fn is_resource_field(name: &str) -> bool {
    matches!(
        name,
        "name"
            | "names"
            | "parent"
            | "resource"
            | "topic"
            | "subscription"
            | "subscriptions"
            | "snapshot"
            | "schema"
            | "database"
            | "project"
            | "session"
            | "table"
            | "instance"
            | "cluster"
            | "backup"
            | "stream"
            | "documents"
            | "write_streams"
    ) || [
        "_name",
        "_topic",
        "_subscription",
        "_table",
        "_stream",
        "_backup",
        "_database",
    ]
    .iter()
    .any(|suffix| name.ends_with(suffix))
}

fn collect_resource_names(message: &DynamicMessage, depth: usize, out: &mut Vec<String>) {
    for (field, value) in message.fields() {
        match value {
            Value::String(s) => push_resource(field.name(), s, out),
            Value::List(items) => {
                for item in items {
                    match item {
                        Value::String(s) => push_resource(field.name(), s, out),
                        Value::Message(m) if depth < MAX_WALK_DEPTH => {
                            collect_resource_names(m, depth + 1, out)
                        }
                        _ => {}
                    }
                }
            }
            Value::Message(m) if depth < MAX_WALK_DEPTH => {
                collect_resource_names(m, depth + 1, out)
            }
            // Maps hold user data (message attributes, labels, document fields).
            _ => {}
        }
    }
}

fn push_resource(field: &str, value: &str, out: &mut Vec<String>) {
    if is_resource_field(field) && value.starts_with("projects/") && !out.iter().any(|v| v == value)
    {
        out.push(value.to_string());
    }
}

/// A bare project id (`my-project`, or a domain-scoped `example.com:my-project`).
fn is_project_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b))
}

/// Whether the request's value at `variable.field` matches the binding's pattern.
fn variable_matches(message: &DynamicMessage, variable: &Variable) -> bool {
    field_string(message, &variable.field).is_some_and(|s| glob_matches(&variable.pattern, &s))
}

/// The string at a dotted field path (`read_session.table`), if set.
fn field_string(message: &DynamicMessage, path: &str) -> Option<String> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let value = message.get_field_by_name(head)?;
    match rest {
        None => value.as_str().map(str::to_owned),
        Some(rest) => field_string(value.as_message()?, rest),
    }
}

/// `projects/*/topics/*` against `projects/p/topics/t`: `*` is one non-empty segment, `**`
/// the rest of the path (zero or more segments).
fn glob_matches(pattern: &str, value: &str) -> bool {
    let mut values = value.split('/');
    for segment in pattern.split('/') {
        if segment == "**" {
            return true;
        }
        match values.next() {
            Some(v) if segment == "*" && !v.is_empty() => {}
            Some(v) if segment == v => {}
            _ => return false,
        }
    }
    values.next().is_none()
}

fn shorten(s: &str) -> String {
    const MAX: usize = 200;
    match s.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests;
