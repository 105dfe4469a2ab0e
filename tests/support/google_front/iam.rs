//! `cloudresourcemanager.googleapis.com`: projects' IAM policies, in memory, as the v1 and
//! v3 APIs document them (`gcloud projects add-iam-policy-binding` reads with
//! `POST /v1/projects/{p}:getIamPolicy` and writes the modified policy back with
//! `:setIamPolicy`).
//!
//! - Every project exists; a new one's policy is empty, `{"version": 1, "etag": "ACAB"}`.
//! - setIamPolicy is a read-modify-write guarded by the etag: a policy carrying an etag
//!   other than the current one is refused with 409 `ABORTED`, as Google does; a policy
//!   without an etag overwrites. Each write makes a new etag.
//! - `updateMask` (default `bindings,etag`) chooses what is written: `bindings`,
//!   `auditConfigs`.
//! - Bindings are checked as Google checks them: a role is `roles/…` or a custom role's
//!   full name, members have a known type prefix; a binding with a condition needs policy
//!   version 3. Bindings without members are dropped. The answer's version is 3 when a
//!   binding has a condition, else 1.
//!
//! Not modelled: conditions' evaluation, the `_withcond_` rewriting of conditional bindings
//! for callers asking for version 1, organizations and folders.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::{Body, google_error, json_response, read_body};

#[derive(Clone, Default)]
pub struct Policies(Arc<Mutex<HashMap<String, Stored>>>);

#[derive(Clone)]
struct Stored {
    bindings: Vec<Value>,
    audit_configs: Vec<Value>,
    etag: String,
}

/// What the store refuses, with Google's status.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub canonical: &'static str,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        canonical: "INVALID_ARGUMENT",
        message: message.into(),
    }
}

const EMPTY_ETAG: &str = "ACAB";

const MEMBER_PREFIXES: &[&str] = &[
    "user:",
    "serviceAccount:",
    "group:",
    "domain:",
    "principal:",
    "principalSet:",
    "deleted:user:",
    "deleted:serviceAccount:",
    "deleted:group:",
    "projectOwner:",
    "projectEditor:",
    "projectViewer:",
];

impl Policies {
    /// The policy as getIamPolicy answers it.
    pub fn get(&self, project: &str) -> Value {
        let map = self.0.lock().expect("policies");
        render(map.get(project))
    }

    /// setIamPolicy with request body `request` (`{"policy": …, "updateMask": …}`).
    pub fn set(&self, project: &str, request: &Value) -> Result<Value, Refusal> {
        let policy = request
            .get("policy")
            .filter(|p| p.is_object())
            .ok_or_else(|| invalid("Invalid JSON payload: the request has no policy."))?;
        let mask = request
            .get("updateMask")
            .and_then(Value::as_str)
            .unwrap_or("bindings,etag");
        let fields: Vec<&str> = mask.split(',').map(str::trim).collect();
        let bindings = checked_bindings(policy)?;
        let audit_configs = policy
            .get("auditConfigs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();

        let mut map = self.0.lock().expect("policies");
        let current = map.get(project);
        let current_etag = current.map_or(EMPTY_ETAG, |c| c.etag.as_str());
        if let Some(etag) = policy.get("etag").and_then(Value::as_str)
            && etag != current_etag
        {
            return Err(Refusal {
                status: StatusCode::CONFLICT,
                canonical: "ABORTED",
                message: "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.".into(),
            });
        }
        let mut next = current.cloned().unwrap_or(Stored {
            bindings: Vec::new(),
            audit_configs: Vec::new(),
            etag: EMPTY_ETAG.into(),
        });
        if fields.contains(&"bindings") {
            next.bindings = bindings;
        }
        if fields.contains(&"auditConfigs") {
            next.audit_configs = audit_configs;
        }
        next.etag = new_etag();
        map.insert(project.to_string(), next);
        Ok(render(map.get(project)))
    }
}

/// A fresh etag in Google's style (base64 of 8 bytes, starting `Bw`).
fn new_etag() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut bytes = [0u8; 8];
    bytes[..2].copy_from_slice(&[0x07, 0x06]);
    bytes[2..].copy_from_slice(&n.to_be_bytes()[2..]);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn render(stored: Option<&Stored>) -> Value {
    let Some(stored) = stored else {
        return json!({"version": 1, "etag": EMPTY_ETAG});
    };
    let conditional = stored.bindings.iter().any(|b| b.get("condition").is_some());
    let mut policy = json!({
        "version": if conditional { 3 } else { 1 },
        "etag": stored.etag,
    });
    if !stored.bindings.is_empty() {
        policy["bindings"] = Value::Array(stored.bindings.clone());
    }
    if !stored.audit_configs.is_empty() {
        policy["auditConfigs"] = Value::Array(stored.audit_configs.clone());
    }
    policy
}

/// The policy's bindings, checked; bindings without members dropped.
fn checked_bindings(policy: &Value) -> Result<Vec<Value>, Refusal> {
    let version = policy.get("version").and_then(Value::as_i64).unwrap_or(1);
    if ![0, 1, 3].contains(&version) {
        return Err(invalid(format!("Invalid policy version: {version}.")));
    }
    let mut out = Vec::new();
    for binding in policy
        .get("bindings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let role = binding.get("role").and_then(Value::as_str).unwrap_or("");
        let custom = role.contains("/roles/")
            && (role.starts_with("projects/") || role.starts_with("organizations/"));
        if !(role.starts_with("roles/") && role.len() > 6 || custom) {
            return Err(invalid(format!(
                "Role ({role}) does not exist in the resource's hierarchy."
            )));
        }
        let members: Vec<&str> = binding
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for member in &members {
            let known = ["allUsers", "allAuthenticatedUsers"].contains(member)
                || MEMBER_PREFIXES
                    .iter()
                    .any(|p| member.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
            if !known {
                return Err(invalid(format!(
                    "Invalid principal ({member}): it has no known type prefix (user:, serviceAccount:, group:, domain:, ...)."
                )));
            }
        }
        if binding.get("condition").is_some() && version != 3 {
            return Err(invalid(
                "Conditional bindings require policy version 3 (the policy's version field).",
            ));
        }
        if !members.is_empty() {
            out.push(binding.clone());
        }
    }
    Ok(out)
}

/// `POST /v1/projects/{p}:getIamPolicy|setIamPolicy`, and v3's same paths.
pub(crate) async fn handle(policies: &Policies, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_string();
    let target = path
        .strip_prefix("/v1/projects/")
        .or_else(|| path.strip_prefix("/v3/projects/"))
        .and_then(|rest| rest.split_once(':'))
        .filter(|(project, _)| !project.is_empty() && !project.contains('/'));
    let Some((project, verb)) = target.map(|(p, v)| (p.to_string(), v.to_string())) else {
        return not_found(&path);
    };
    if request.method() != Method::POST
        || !["getIamPolicy", "setIamPolicy"].contains(&verb.as_str())
    {
        return not_found(&path);
    }
    let body = match read_body(request.into_body(), 1 << 20).await {
        Ok(body) => body,
        Err(e) => return google_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &e),
    };
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return google_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    &format!("Invalid JSON payload received. {e}"),
                );
            }
        }
    };
    if verb == "getIamPolicy" {
        return json_response(StatusCode::OK, &policies.get(&project));
    }
    match policies.set(&project, &body) {
        Ok(policy) => json_response(StatusCode::OK, &policy),
        Err(refusal) => google_error(refusal.status, refusal.canonical, &refusal.message),
    }
}

fn not_found(path: &str) -> Response<Body> {
    google_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!(
            "The requested URL {path} was not found on this server (this fake serves only projects' getIamPolicy and setIamPolicy)."
        ),
    )
}
