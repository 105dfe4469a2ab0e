//! What a cloud API call does, in cloud-neutral terms: the only description rules and
//! reviewers ever see. Each cloud module (`aws` now, `gcp` later) turns a raw request into
//! a [`Classification`]: a [`Call`], or an explicit unknown with the reason — never a
//! guess.

pub mod aws;

use serde::Serialize;

/// Which cloud a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    Aws,
    Gcp,
}

/// One IAM action a call needs, with its access level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// `service:Action`, e.g. `s3:PutObject`.
    pub name: &'static str,
    /// `Read`, `List`, `Write`, `Permissions management` or `Tagging`; `Unknown` when the
    /// IAM catalog does not list the action.
    pub access: &'static str,
}

/// A classified call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub cloud: Cloud,
    /// The IAM service prefix (`s3`, `iam`, `elasticloadbalancing`, …).
    pub service: &'static str,
    /// The API (botocore service id for AWS: `elbv2`, `s3control`, …), finer than `service`.
    pub api: &'static str,
    /// The API operation, e.g. `AttachRolePolicy`.
    pub operation: &'static str,
    /// IAM actions the call needs: more than one where the cloud requires it.
    pub actions: Vec<Action>,
    pub region: Option<String>,
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: &'static str,
    /// The account (or project) the call targets, where the request shows it.
    pub account: Option<String>,
    /// ARNs (or ARN patterns, `*` for what the request does not show) of what the call acts on.
    pub resources: Vec<String>,
    /// The decoded request parameters, whatever the wire format.
    pub params: serde_json::Value,
    /// Parameters the SDK fills with a fresh token on every call.
    pub idempotency_params: Vec<&'static str>,
    /// The wire protocol the request used.
    pub protocol: &'static str,
    /// The request was authenticated by a presigned URL rather than a header.
    pub presigned: bool,
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
