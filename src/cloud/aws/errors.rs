//! Errors shaped like AWS's own, for the request's wire protocol, so SDKs and the CLI parse
//! and print them (`An error occurred (SignatureDoesNotMatch) when calling …: message`):
//!
//! | protocol  | body                                                                   |
//! |-----------|------------------------------------------------------------------------|
//! | query     | `<ErrorResponse><Error><Type>Sender</Type><Code/><Message/></Error><RequestId/></ErrorResponse>` |
//! | ec2       | `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>` |
//! | rest-xml  | `<Error><Code/><Message/><RequestId/></Error>` (S3 and friends)          |
//! | json      | `{"__type": code, "message": …}`, `x-amzn-ErrorType` header             |
//! | rest-json | the same JSON, `x-amzn-ErrorType` header                                |
//! | rpc-v2-cbor | the same map in CBOR, `smithy-protocol: rpc-v2-cbor`                  |

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::endpoint::ApiHost;
use crate::cloud::RequestView;

/// How an error must be shaped for a client to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    Query,
    Ec2,
    RestXml,
    Json,
    RestJson,
    Cbor,
}

impl ErrorShape {
    /// From a classified call's protocol.
    pub fn for_protocol(protocol: &str) -> ErrorShape {
        match protocol {
            "query" => ErrorShape::Query,
            "ec2" => ErrorShape::Ec2,
            "rest-xml" => ErrorShape::RestXml,
            "json" => ErrorShape::Json,
            "rpc-v2-cbor" => ErrorShape::Cbor,
            _ => ErrorShape::RestJson,
        }
    }

    /// From the request alone (when it could not be classified): the same markers the
    /// classifier reads, and S3 (the REST-XML API agents use most) by its host, whose
    /// facts the caller parsed (the proxy once per connection; another host than the
    /// request's is parsed afresh).
    pub fn guess(request: &RequestView<'_>, host: &ApiHost) -> ErrorShape {
        let host = host.for_host(request.host);
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        if header("smithy-protocol") == Some("rpc-v2-cbor") {
            ErrorShape::Cbor
        } else if header("x-amz-target").is_some() {
            ErrorShape::Json
        } else if header("content-type")
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
            || request
                .uri
                .query()
                .is_some_and(|q| q.starts_with("Action=") || q.contains("&Action="))
        {
            if host.name().starts_with("ec2.") || host.name().starts_with("ec2-") {
                ErrorShape::Ec2
            } else {
                ErrorShape::Query
            }
        } else if host.is_s3() {
            ErrorShape::RestXml
        } else {
            ErrorShape::RestJson
        }
    }
}

/// An AWS-shaped error response: `code` is what the SDK raises, `message` what it prints.
pub fn response(
    shape: ErrorShape,
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<Bytes> {
    let (content_type, body): (&'static str, Vec<u8>) = match shape {
        ErrorShape::Query => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                xml(code),
                xml(message),
                xml(request_id)
            )
            .into_bytes(),
        ),
        ErrorShape::Ec2 => (
            "text/xml",
            format!(
                "<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
                xml(code),
                xml(message),
                xml(request_id)
            )
            .into_bytes(),
        ),
        ErrorShape::RestXml => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>",
                xml(code),
                xml(message),
                xml(request_id)
            )
            .into_bytes(),
        ),
        ErrorShape::Json => (
            "application/x-amz-json-1.1",
            serde_json::json!({"__type": code, "message": message}).to_string().into_bytes(),
        ),
        ErrorShape::RestJson => {
            ("application/json", serde_json::json!({"__type": code, "message": message}).to_string().into_bytes())
        }
        ErrorShape::Cbor => {
            let map = ciborium::Value::Map(vec![
                (ciborium::Value::Text("__type".into()), ciborium::Value::Text(code.into())),
                (ciborium::Value::Text("message".into()), ciborium::Value::Text(message.into())),
            ]);
            let mut out = Vec::new();
            // Writing CBOR into a Vec cannot fail.
            let _ = ciborium::ser::into_writer(&map, &mut out);
            ("application/cbor", out)
        }
    };
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id.clone());
        headers.insert("x-amz-request-id", id);
    }
    match shape {
        ErrorShape::Json | ErrorShape::RestJson => {
            if let Ok(code) = HeaderValue::from_str(code) {
                headers.insert("x-amzn-errortype", code);
            }
        }
        ErrorShape::Cbor => {
            headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
        }
        _ => {}
    }
    response
}

/// Escape text for an XML element (agent-controlled text can never forge markup).
fn xml(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_text_is_escaped() {
        let r = response(
            ErrorShape::RestXml,
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "</Message><Code>Forged",
            "id",
        );
        let body = String::from_utf8(r.body().to_vec()).unwrap();
        assert!(
            body.contains("&lt;/Message&gt;&lt;Code&gt;Forged"),
            "{body}"
        );
        assert_eq!(body.matches("<Code>").count(), 1);
    }
}
