//! Errors shaped like Google's own, so client libraries and gcloud parse and print them:
//!
//! | protocol | response                                                                 |
//! |----------|--------------------------------------------------------------------------|
//! | REST     | the HTTP status, `{"error": {"code", "message", "status", "details": [ErrorInfo]}}` |
//! | gRPC     | trailers only: HTTP 200, `grpc-status`, `grpc-message` (percent-encoded), and `grpc-status-details-bin` (a `google.rpc.Status` carrying the same `ErrorInfo`) |
//!
//! The `ErrorInfo` (`reason`, `domain: airlock.dev`, `metadata`) is where a program reads
//! why Airlock refused, and which approval a pending call waits for.

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

/// The `ErrorInfo.domain` of every error Airlock writes.
pub const DOMAIN: &str = "airlock.dev";

/// One refusal, as Google clients should read it.
pub struct GoogleError<'a> {
    pub status: StatusCode,
    /// `ErrorInfo.reason`: UPPER_SNAKE_CASE, stable.
    pub reason: &'a str,
    pub message: &'a str,
    /// `ErrorInfo.metadata`, in this order.
    pub metadata: &'a [(&'a str, String)],
}

/// The canonical status for an HTTP status (google.rpc.Code, as Google's REST mapping has it).
pub fn canonical(status: StatusCode) -> (&'static str, u8) {
    match status.as_u16() {
        400 | 413 | 421 => ("INVALID_ARGUMENT", 3),
        401 => ("UNAUTHENTICATED", 16),
        403 => ("PERMISSION_DENIED", 7),
        404 => ("NOT_FOUND", 5),
        409 => ("ABORTED", 10),
        429 => ("RESOURCE_EXHAUSTED", 8),
        499 => ("CANCELLED", 1),
        501 => ("UNIMPLEMENTED", 12),
        502 | 503 => ("UNAVAILABLE", 14),
        504 => ("DEADLINE_EXCEEDED", 4),
        _ => ("INTERNAL", 13),
    }
}

/// A Google REST (JSON) error response.
pub fn rest_response(error: &GoogleError<'_>) -> Response<Bytes> {
    let (status_name, _) = canonical(error.status);
    let metadata: serde_json::Map<String, serde_json::Value> = error
        .metadata
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::Value::String(v.clone())))
        .collect();
    let body = serde_json::json!({
        "error": {
            "code": error.status.as_u16(),
            "message": error.message,
            "status": status_name,
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": error.reason,
                "domain": DOMAIN,
                "metadata": metadata,
            }],
        }
    });
    let mut response = Response::new(Bytes::from(body.to_string()));
    *response.status_mut() = error.status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

/// A gRPC trailers-only error response (HTTP 200 with the status in the headers and an
/// empty body, which HTTP/2 sends as one HEADERS frame with END_STREAM).
pub fn grpc_response(error: &GoogleError<'_>) -> Response<Bytes> {
    let (_, code) = canonical(error.status);
    let mut response = Response::new(Bytes::new());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    if let Ok(message) = HeaderValue::from_str(&grpc_percent_encode(error.message)) {
        headers.insert("grpc-message", message);
    }
    let details = status_proto(code, error);
    if let Ok(value) =
        HeaderValue::from_str(&base64::engine::general_purpose::STANDARD_NO_PAD.encode(details))
    {
        headers.insert("grpc-status-details-bin", value);
    }
    response
}

/// `grpc-message` is percent-encoded: every byte outside printable ASCII, and `%`.
fn grpc_percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `google.rpc.Status { code, message, details: [Any(ErrorInfo)] }` in protobuf wire format
/// (four message types with string, int and map fields: written by hand, not worth a codegen).
fn status_proto(code: u8, error: &GoogleError<'_>) -> Vec<u8> {
    let mut info = Vec::new();
    field_bytes(&mut info, 1, error.reason.as_bytes());
    field_bytes(&mut info, 2, DOMAIN.as_bytes());
    for (key, value) in error.metadata {
        let mut entry = Vec::new();
        field_bytes(&mut entry, 1, key.as_bytes());
        field_bytes(&mut entry, 2, value.as_bytes());
        field_bytes(&mut info, 3, &entry);
    }
    let mut any = Vec::new();
    field_bytes(&mut any, 1, b"type.googleapis.com/google.rpc.ErrorInfo");
    field_bytes(&mut any, 2, &info);
    let mut status = Vec::new();
    status.push(0x08); // field 1, varint
    varint(&mut status, u64::from(code));
    field_bytes(&mut status, 2, error.message.as_bytes());
    field_bytes(&mut status, 3, &any);
    status
}

fn field_bytes(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    out.push((field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(metadata: &'a [(&'a str, String)]) -> GoogleError<'a> {
        GoogleError {
            status: StatusCode::FORBIDDEN,
            reason: "APPROVAL_PENDING",
            message: "Approval ap-1 is pending (100% \"sure\")\nretry",
            metadata,
        }
    }

    #[test]
    fn rest_errors_are_google_json_with_an_error_info() {
        let metadata = [("approval_id", "ap-1".to_string())];
        let response = rest_response(&sample(&metadata));
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {
                "code": 403,
                "message": "Approval ap-1 is pending (100% \"sure\")\nretry",
                "status": "PERMISSION_DENIED",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "APPROVAL_PENDING",
                    "domain": "airlock.dev",
                    "metadata": {"approval_id": "ap-1"},
                }],
            }})
        );
    }

    #[test]
    fn grpc_errors_are_trailers_only_with_a_percent_encoded_message() {
        let metadata = [("approval_id", "ap-1".to_string())];
        let response = grpc_response(&sample(&metadata));
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.body().is_empty());
        let h = response.headers();
        assert_eq!(h["content-type"], "application/grpc");
        assert_eq!(h["grpc-status"], "7");
        assert_eq!(
            h["grpc-message"],
            "Approval ap-1 is pending (100%25 \"sure\")%0Aretry"
        );
        // The details decode as google.rpc.Status: code 7, then the message, then the
        // ErrorInfo carrying the approval id.
        let details = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(h["grpc-status-details-bin"].as_bytes())
            .unwrap();
        assert_eq!(&details[..2], &[0x08, 7]);
        let text = String::from_utf8_lossy(&details);
        assert!(text.contains("type.googleapis.com/google.rpc.ErrorInfo"));
        assert!(text.contains("APPROVAL_PENDING") && text.contains("airlock.dev"));
        assert!(text.contains("approval_id") && text.contains("ap-1"));
    }

    #[test]
    fn every_refusal_status_has_a_canonical_code() {
        assert_eq!(canonical(StatusCode::UNAUTHORIZED), ("UNAUTHENTICATED", 16));
        assert_eq!(
            canonical(StatusCode::SERVICE_UNAVAILABLE),
            ("UNAVAILABLE", 14)
        );
        assert_eq!(canonical(StatusCode::PAYLOAD_TOO_LARGE).1, 3);
        assert_eq!(canonical(StatusCode::INTERNAL_SERVER_ERROR).1, 13);
    }
}
