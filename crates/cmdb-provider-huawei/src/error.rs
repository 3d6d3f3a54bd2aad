//! Huawei Cloud error envelopes -> typed [`cmdb_core::Error`]s.
//!
//! Three shapes (see the API gateway's error codes,
//! <https://support.huaweicloud.com/devg-apisign/api-sign-errorcode.html>, and the
//! services' "Error Codes" pages):
//! - API gateway: `{"error_code": "APIGW.0301", "error_msg": "...", "request_id": "..."}`
//! - services such as ECS: `{"error": {"code": "Ecs.0000", "message": "..."}}`
//! - IAM (Keystone): `{"error": {"code": 401, "message": "...", "title": "Unauthorized"}}`
//!
//! The request id comes from the body, else from the `X-Request-Id` header.

use cmdb_core::{Error, ErrorKind, Vendor, VendorError};
use cmdb_http::{classify_status, request_id, ErrorClassifier, RawResponse};
use serde_json::Value;

/// Appended to every authentication error: why it was not retried.
pub(crate) const AUTH_NOT_RETRIED: &str = "not retried: Huawei Cloud locks an access key for \
     five minutes after five failed authentications; check the AK/SK, the project and that \
     the local clock is within 15 minutes of UTC";

/// The kind of a Huawei error and whether retrying may help, from the HTTP status and
/// the vendor's code.
///
/// - `APIGW.0308` (throttled) and HTTP 429: rate limited, retried.
/// - `APIGW.0301` (bad AK/SK or signature) and every other 401: unauthenticated, never
///   retried (five failures lock the key for five minutes).
/// - `APIGW.0302` / `APIGW.0306` and every other 403: permission denied, never retried.
/// - 5xx: unavailable, retried; other statuses as [`classify_status`].
pub(crate) fn classify(status: u16, code: Option<&str>) -> (ErrorKind, bool) {
    match code {
        Some("APIGW.0308") => (ErrorKind::RateLimited, true),
        Some("APIGW.0301") => (ErrorKind::Unauthenticated, false),
        Some("APIGW.0302" | "APIGW.0306") => (ErrorKind::PermissionDenied, false),
        _ => classify_status(Some(Vendor::Huawei), status),
    }
}

/// The [`ErrorClassifier`] of Huawei Cloud's APIs (IAM and ECS alike).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HuaweiClassifier;

impl ErrorClassifier for HuaweiClassifier {
    fn classify(&self, response: &RawResponse) -> Option<Error> {
        if response.is_success()
            && !response.may_have_key("error_code")
            && !response.may_have_key("error")
        {
            // No envelope can be there: a page, passed without building its tree.
            return None;
        }
        let body: Option<Value> = serde_json::from_slice(&response.body).ok();
        let envelope = body.as_ref().and_then(envelope);
        if response.is_success() && envelope.is_none() {
            return None;
        }
        let status = response.status.as_u16();
        let (code, message, body_request_id) = envelope.unwrap_or_default();
        let (kind, retryable) = classify(status, code.as_deref());
        let mut message = message.or_else(|| Some(response.status_summary()));
        if kind == ErrorKind::Unauthenticated {
            if let Some(m) = &mut message {
                m.push_str(&format!(" ({AUTH_NOT_RETRIED})"));
            }
        }
        Some(Error::vendor(
            kind,
            retryable,
            VendorError {
                vendor: Some(Vendor::Huawei),
                http_status: Some(status),
                code,
                message,
                request_id: body_request_id.or_else(|| request_id(&response.headers)),
            },
        ))
    }
}

/// `(code, message, request id)` of any of the three envelopes; `None` for a body that
/// is not an error envelope.
fn envelope(body: &Value) -> Option<(Option<String>, Option<String>, Option<String>)> {
    let text = |v: Option<&Value>| match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(code) = text(body.get("error_code")) {
        return Some((
            Some(code),
            text(body.get("error_msg")).or_else(|| text(body.get("error_message"))),
            text(body.get("request_id")),
        ));
    }
    let error = body.get("error").filter(|e| e.is_object())?;
    let message = text(error.get("message")).or_else(|| text(error.get("title")));
    Some((
        text(error.get("code")),
        message,
        text(body.get("request_id")),
    ))
}

#[cfg(test)]
mod tests {
    use cmdb_http::RawResponse;
    use reqwest::header::{HeaderMap, HeaderValue};
    use reqwest::StatusCode;

    use super::*;

    fn classify_body(status: u16, body: &str, rid: Option<&'static str>) -> Option<Error> {
        let mut headers = HeaderMap::new();
        if let Some(rid) = rid {
            headers.insert("x-request-id", HeaderValue::from_static(rid));
        }
        HuaweiClassifier.classify(&RawResponse::new(
            StatusCode::from_u16(status).unwrap(),
            headers,
            body.to_owned(),
        ))
    }

    #[test]
    fn gateway_auth_errors_are_never_retried_and_say_why() {
        let e = classify_body(
            401,
            r#"{"error_code":"APIGW.0301","error_msg":"Incorrect IAM authentication information: verify aksk signature fail","request_id":"rid-body"}"#,
            Some("rid-header"),
        )
        .unwrap();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(!e.is_retryable());
        let v = e.vendor_error().unwrap();
        assert_eq!(v.code.as_deref(), Some("APIGW.0301"));
        assert_eq!(v.request_id.as_deref(), Some("rid-body"));
        assert_eq!(v.http_status, Some(401));
        assert!(e.message().contains("verify aksk signature fail"), "{e}");
        assert!(e.message().contains("five minutes"), "{e}");
    }

    #[test]
    fn throttling_and_server_errors_are_retried() {
        let e = classify_body(
            429,
            r#"{"error_code":"APIGW.0308","error_msg":"The throttling threshold has been reached"}"#,
            Some("rid-9"),
        )
        .unwrap();
        assert_eq!((e.kind(), e.is_retryable()), (ErrorKind::RateLimited, true));
        assert_eq!(
            e.vendor_error().unwrap().request_id.as_deref(),
            Some("rid-9")
        );
        let e = classify_body(503, "<html>busy</html>", None).unwrap();
        assert_eq!((e.kind(), e.is_retryable()), (ErrorKind::Unavailable, true));
        // A gateway's page is described, never echoed.
        assert!(!e.message().contains("busy"), "{e}");
        assert!(
            e.message().contains("an unexpected body of 17 bytes"),
            "{e}"
        );
    }

    #[test]
    fn service_and_iam_envelopes() {
        let e = classify_body(
            400,
            r#"{"error":{"code":"Ecs.0005","message":"Invalid parameter: limit"}}"#,
            Some("rid-ecs"),
        )
        .unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let v = e.vendor_error().unwrap();
        assert_eq!(v.code.as_deref(), Some("Ecs.0005"));
        assert_eq!(v.message.as_deref(), Some("Invalid parameter: limit"));
        assert_eq!(v.request_id.as_deref(), Some("rid-ecs"));

        let e = classify_body(
            401,
            r#"{"error":{"code":401,"message":"The request you have made requires authentication.","title":"Unauthorized"}}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            (e.kind(), e.is_retryable()),
            (ErrorKind::Unauthenticated, false)
        );
        assert_eq!(e.vendor_error().unwrap().code.as_deref(), Some("401"));
        assert!(e.message().contains("not retried"));

        let e =
            classify_body(403, r#"{"error":{"code":"Ecs.0319","message":"no"}}"#, None).unwrap();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }

    #[test]
    fn successes_unless_the_body_is_an_error() {
        assert!(classify_body(200, r#"{"count":0,"servers":[]}"#, None).is_none());
        assert!(classify_body(200, "not json", None).is_none());
        let e = classify_body(
            200,
            r#"{"error_code":"APIGW.0308","error_msg":"throttled"}"#,
            None,
        )
        .unwrap();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        // Keys spelled with escapes are still the envelope's.
        let e = classify_body(
            200,
            r#"{"\u0065rror_code":"APIGW.0308","error_msg":"throttled"}"#,
            None,
        )
        .unwrap();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        // "error" as a value makes the classifier look, and find no envelope.
        let page = r#"{"count":1,"servers":[{"name":"error","status":"ERROR"}]}"#;
        assert!(classify_body(200, page, None).is_none());
    }
}
