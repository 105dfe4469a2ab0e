//! What a cloud API call does, in cloud-neutral terms: the only description rules and
//! reviewers ever see. Each cloud module (`aws`, `gcp`) turns a raw request into
//! a [`Classification`]: a [`Call`], or an explicit unknown with the reason — never a
//! guess.

pub mod aws;
pub mod fingerprint;
pub mod gcp;
pub mod plane;

use serde::Serialize;

/// Which cloud a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    Aws,
    Gcp,
}

impl Cloud {
    /// The cloud an intercepted host belongs to: Google's API domain, else AWS (every
    /// other intercepted suffix is an AWS one).
    pub fn for_host(host: &str) -> Cloud {
        if host == "googleapis.com" || host.ends_with(".googleapis.com") {
            Cloud::Gcp
        } else {
            Cloud::Aws
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Aws => "aws",
            Cloud::Gcp => "gcp",
        }
    }

    /// Classify a request with this cloud's classifier.
    pub fn classify(self, request: &RequestView<'_>) -> Classification {
        match self {
            Cloud::Aws => aws::classify(request),
            Cloud::Gcp => gcp::classify(request),
        }
    }
}

/// The rows of a generated JSON Lines table embedded at build time (`data/*/`). A test
/// loads every line, so a bad line is a build defect: reported loudly, skipped here.
pub(crate) fn jsonl_rows<T: serde::Deserialize<'static>>(text: &'static str, file: &str) -> Vec<T> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .filter_map(|(i, line)| match serde_json::from_str(line) {
            Ok(row) => Some(row),
            Err(e) => {
                tracing::error!(file, line = i + 1, error = %e, "bad catalog line");
                None
            }
        })
        .collect()
}

/// What an approval binds to: one request, exactly. Each cloud computes it beside its
/// classifier (`aws::fingerprint`), since what varies between two sends of the same call
/// (dates, signatures, SDK bookkeeping headers) differs by cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hex SHA-256.
    pub hash: String,
    pub body: BodyBinding,
}

/// How the request body is bound into a fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyBinding {
    /// By the SHA-256 of its bytes (declared by the signature, or of the body read whole,
    /// idempotency tokens' values blanked).
    Sha256,
    /// By the decoded parameters only (a streamed body that carries idempotency tokens).
    Params,
    /// Not at all: the body streams unread and nothing declares its hash. Reviewers and
    /// the audit record are told.
    Unbound,
}

impl BodyBinding {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyBinding::Sha256 => "sha256",
            BodyBinding::Params => "params",
            BodyBinding::Unbound => "unbound",
        }
    }
}

/// One IAM action a call needs, with its access level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// AWS: `service:Action`, e.g. `s3:PutObject`. Google: the IAM permission, e.g.
    /// `storage.buckets.delete`.
    pub name: &'static str,
    /// `Read`, `List`, `Write`, `Permissions management` or `Tagging`; `Unknown` when the
    /// IAM catalog does not list the action. Google permissions use the same levels.
    pub access: &'static str,
}

/// A classified call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub cloud: Cloud,
    /// AWS: the IAM service prefix (`s3`, `iam`, `elasticloadbalancing`, …). Google: the
    /// API name (`storage`, `iam`, `pubsub`, …).
    pub service: &'static str,
    /// The API, finer than `service`: the botocore service id for AWS (`elbv2`,
    /// `s3control`, …), the discovery document id for Google (`storage:v1`).
    pub api: &'static str,
    /// The API operation: `AttachRolePolicy` (AWS), the discovery method id
    /// `storage.buckets.delete` (Google).
    pub operation: &'static str,
    /// IAM actions the call needs: more than one where the cloud requires it.
    pub actions: Vec<Action>,
    pub region: Option<String>,
    /// AWS: `aws`, `aws-cn`, `aws-us-gov`. Google: the universe domain (`googleapis.com`).
    pub partition: &'static str,
    /// The AWS account or Google project the call targets, where the request shows it.
    pub account: Option<String>,
    /// AWS: ARNs (or ARN patterns, `*` for what the request does not show). Google: full
    /// resource names (`//storage.googleapis.com/projects/_/buckets/b`).
    pub resources: Vec<String>,
    /// The decoded request parameters, whatever the wire format.
    pub params: serde_json::Value,
    /// Parameters the SDK fills with a fresh token on every call.
    pub idempotency_params: Vec<&'static str>,
    /// The wire protocol the request used (AWS: `json`, `query`, `rest-xml`, …; Google:
    /// `rest`, `grpc`, `batch`, `media`).
    pub protocol: &'static str,
    /// The request was authenticated by a presigned URL rather than a header.
    pub presigned: bool,
    /// A batch (Google `multipart/mixed`): every inner call, each decided on its own; the
    /// batch is decided by its strictest part. Empty for a single call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Call>,
}

/// The result of classifying one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Classification {
    Known(Box<Call>),
    Unknown(UnknownResult),
}

/// The serialized shape of an unknown result: `{"cloud": "aws", "unknown": true, "reason": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnknownResult {
    pub cloud: Cloud,
    pub unknown: bool,
    pub reason: String,
}

impl Classification {
    pub fn unknown(cloud: Cloud, reason: impl Into<String>) -> Self {
        Classification::Unknown(UnknownResult {
            cloud,
            unknown: true,
            reason: reason.into(),
        })
    }

    pub fn call(&self) -> Option<&Call> {
        match self {
            Classification::Known(call) => Some(call),
            Classification::Unknown(_) => None,
        }
    }
}

/// A request as the classifier sees it: head plus the body bytes it needs (the pipeline
/// buffers small bodies of non-streaming operations; streaming uploads pass `None`).
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a http::Method,
    pub uri: &'a http::Uri,
    pub headers: &'a http::HeaderMap,
    /// The `Host`/`:authority` the request is for (lower-case, no port).
    pub host: &'a str,
    pub body: &'a [u8],
}
