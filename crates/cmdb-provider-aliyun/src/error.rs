//! Alibaba Cloud error answers -> typed [`cmdb_core::Error`]s, decided in one place.
//!
//! Error codes: the ECS API error center (api.aliyun.com/document/Ecs/2014-05-26/errorCode)
//! and the common OpenAPI gateway codes (throttling, signature, access key).

use cmdb_core::{Error, ErrorKind, Vendor, VendorError};
use cmdb_http::{classify_status, request_id, ErrorClassifier, RawResponse};

use crate::model::ErrorBody;

/// Classifies an answer by its HTTP status and error `code`: the kind, and whether
/// retrying may help.
///
/// Keyed on the code, never on the status alone: Alibaba answers throttling with 400
/// or 503 and signature errors with 400.
pub(crate) fn classify(status: u16, code: Option<&str>) -> (ErrorKind, bool) {
    let Some(code) = code else {
        return classify_status(Some(Vendor::Aliyun), status);
    };
    match code {
        c if c == "Throttling" || c.starts_with("Throttling.") => (ErrorKind::RateLimited, true),
        "ServiceUnavailable" | "InternalError" | "UnknownError" => (ErrorKind::Unavailable, true),
        c if c.starts_with("InvalidAccessKeyId")
            || c.starts_with("InvalidTimeStamp")
            || c.starts_with("InvalidSecurityToken")
            || matches!(
                c,
                "SignatureDoesNotMatch"
                    | "IncompleteSignature"
                    | "InvalidSignature"
                    | "SignatureNonceUsed"
            ) =>
        {
            (ErrorKind::Unauthenticated, false)
        }
        c if c.starts_with("Forbidden") || c.starts_with("NoPermission") => {
            (ErrorKind::PermissionDenied, false)
        }
        c if c.starts_with("InvalidRegionId") || c == "InvalidParameter.RegionId" => {
            (ErrorKind::InvalidInput, false)
        }
        _ => classify_status(Some(Vendor::Aliyun), status),
    }
}

/// What the user should check after an error `code`, if anything.
fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        c if c.starts_with("InvalidAccessKeyId") => {
            "check the secret's AccessKey ID: it must exist and be enabled"
        }
        "SignatureDoesNotMatch" | "IncompleteSignature" | "InvalidSignature" => {
            "check the secret's AccessKey secret (and any proxy that rewrites the request)"
        }
        c if c.starts_with("InvalidTimeStamp") => {
            "check this machine's clock: it must be within 15 minutes of UTC"
        }
        "SignatureNonceUsed" => "a request nonce was reused; check for a replaying proxy",
        c if c.starts_with("InvalidSecurityToken") => {
            "check the STS security token: it may have expired"
        }
        c if c.starts_with("Forbidden") || c.starts_with("NoPermission") => {
            "check the RAM policy of the AccessKey: it needs ecs:DescribeInstances (ecs:DescribeRegions is optional) for hosts, rds:DescribeDBInstances for databases"
        }
        c if c.starts_with("InvalidRegionId") || c == "InvalidParameter.RegionId" => {
            "check the region id"
        }
        _ => return None,
    })
}

/// The part of a `SignatureDoesNotMatch` message after "server string to sign is:".
pub(crate) fn server_string_to_sign(message: &str) -> Option<&str> {
    const MARK: &str = "string to sign is:";
    let at = message.find(MARK)?;
    Some(message[at + MARK.len()..].trim())
}

/// The [`ErrorClassifier`] of the ECS API: non-2xx answers and 2xx answers whose body
/// is the error envelope `{RequestId, HostId, Code, Message, Recommend}`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct AliyunClassifier;

impl ErrorClassifier for AliyunClassifier {
    fn classify(&self, response: &RawResponse) -> Option<Error> {
        if response.is_success() && !response.may_have_key("Code") {
            // No envelope can be there: a page, passed without a second parse.
            return None;
        }
        let body: Option<ErrorBody> = serde_json::from_slice(&response.body).ok();
        let code = body
            .as_ref()
            .and_then(|b| b.code.clone())
            .filter(|c| !c.is_empty());
        if response.is_success() && code.is_none() {
            return None;
        }
        let status = response.status.as_u16();
        let Some(code) = code else {
            // No envelope: judge by the status; the body is described, never echoed.
            let (kind, retryable) = classify_status(Some(Vendor::Aliyun), status);
            return Some(Error::vendor(
                kind,
                retryable,
                VendorError {
                    vendor: Some(Vendor::Aliyun),
                    http_status: Some(status),
                    code: None,
                    message: Some(response.status_summary()),
                    request_id: request_id(&response.headers),
                },
            ));
        };
        let body = body.unwrap_or_default();
        let (kind, retryable) = classify(status, Some(&code));
        let hint = hint(&code);
        if code == "SignatureDoesNotMatch" {
            if let Some(sts) = body.message.as_deref().and_then(server_string_to_sign) {
                // The server's string to sign holds hashes, never key material.
                tracing::debug!(server_string_to_sign = %sts, "aliyun rejected the signature");
            }
        }
        let mut message = body.message.clone();
        if let Some(recommend) = body.recommend.as_deref().filter(|r| !r.is_empty()) {
            message = Some(match message {
                Some(m) => format!("{m} (see {recommend})"),
                None => format!("see {recommend}"),
            });
        }
        if let Some(host) = body.host_id.as_deref().filter(|h| !h.is_empty()) {
            tracing::trace!(host_id = host, code = %code, "aliyun error");
        }
        let error = Error::vendor(
            kind,
            retryable,
            VendorError {
                vendor: Some(Vendor::Aliyun),
                http_status: Some(status),
                code: Some(code),
                message,
                request_id: body
                    .request_id
                    .filter(|r| !r.is_empty())
                    .or_else(|| request_id(&response.headers)),
            },
        );
        Some(match hint {
            Some(hint) => error.context(hint),
            None => error,
        })
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, StatusCode};

    use super::*;

    fn answer(status: u16, body: &str) -> RawResponse {
        RawResponse::new(
            StatusCode::from_u16(status).unwrap(),
            HeaderMap::new(),
            body.to_owned(),
        )
    }

    #[test]
    fn codes_decide_kind_and_retry() {
        use ErrorKind::*;
        let cases = [
            (400, "Throttling.User", RateLimited, true),
            (503, "Throttling", RateLimited, true),
            (400, "Throttling.Api", RateLimited, true),
            (503, "ServiceUnavailable", Unavailable, true),
            (500, "InternalError", Unavailable, true),
            (404, "InvalidAccessKeyId.NotFound", Unauthenticated, false),
            (400, "InvalidAccessKeyId.Inactive", Unauthenticated, false),
            (400, "SignatureDoesNotMatch", Unauthenticated, false),
            (400, "IncompleteSignature", Unauthenticated, false),
            (400, "SignatureNonceUsed", Unauthenticated, false),
            (400, "InvalidTimeStamp.Expired", Unauthenticated, false),
            (403, "Forbidden.RAM", PermissionDenied, false),
            (403, "Forbidden", PermissionDenied, false),
            (404, "InvalidRegionId.NotFound", InvalidInput, false),
            (400, "InvalidParameter", InvalidInput, false),
            (502, "SomethingElse", Unavailable, true),
        ];
        for (status, code, kind, retryable) in cases {
            assert_eq!(classify(status, Some(code)), (kind, retryable), "{code}");
        }
    }

    #[test]
    fn envelope_is_parsed_with_code_request_id_and_hint() {
        let body = r#"{"RequestId":"RID-1","HostId":"ecs.aliyuncs.com","Code":"InvalidAccessKeyId.NotFound","Message":"Specified access key is not found.","Recommend":"https://api.aliyun.com/troubleshoot?q=x"}"#;
        let e = AliyunClassifier.classify(&answer(404, body)).unwrap();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(!e.is_retryable());
        let v = e.vendor_error().unwrap();
        assert_eq!(v.code.as_deref(), Some("InvalidAccessKeyId.NotFound"));
        assert_eq!(v.request_id.as_deref(), Some("RID-1"));
        assert_eq!(v.http_status, Some(404));
        assert!(v.message.as_deref().unwrap().contains("not found"));
        let shown = e.to_string();
        assert!(shown.contains("InvalidAccessKeyId.NotFound"), "{shown}");
        assert!(shown.contains("check the secret's AccessKey ID"), "{shown}");
    }

    #[test]
    fn successes_pass_and_bodies_without_envelope_use_the_status() {
        assert!(AliyunClassifier
            .classify(&answer(200, r#"{"RequestId":"x","Instances":{}}"#))
            .is_none());
        let e = AliyunClassifier
            .classify(&answer(
                200,
                r#"{"RequestId":"R2","Code":"Throttling.User","Message":"flow control"}"#,
            ))
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        // A key spelled with an escape is still the envelope's.
        let e = AliyunClassifier
            .classify(&answer(
                200,
                r#"{"RequestId":"R4","\u0043ode":"Throttling.User","Message":"m"}"#,
            ))
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        // "Code" as a value is not the key; as a nested key it makes the classifier look,
        // and find no code.
        let named = r#"{"RequestId":"x","Instances":{"Instance":[{"InstanceName":"Code"}]}}"#;
        assert!(!answer(200, named).may_have_key("Code"));
        assert!(AliyunClassifier.classify(&answer(200, named)).is_none());
        let nested = r#"{"RequestId":"x","Instances":{"Instance":[{"Tags":{"Code"	:""}}]}}"#;
        assert!(answer(200, nested).may_have_key("Code"));
        assert!(AliyunClassifier.classify(&answer(200, nested)).is_none());
        assert!(!answer(200, r#"{"RequestId":"x","Instances":{}}"#).may_have_key("Code"));
        let mut r = answer(502, "<html>bad gateway</html>");
        r.headers
            .insert("x-acs-request-id", HeaderValue::from_static("R3"));
        let e = AliyunClassifier.classify(&r).unwrap();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        assert_eq!(e.vendor_error().unwrap().request_id.as_deref(), Some("R3"));
    }

    #[test]
    fn server_string_to_sign_is_extracted() {
        let m = "Specified signature is not matched with our calculation. server string to sign is:ACS3-HMAC-SHA256\nabc";
        assert_eq!(server_string_to_sign(m), Some("ACS3-HMAC-SHA256\nabc"));
        assert_eq!(server_string_to_sign("other"), None);
    }
}
