//! Tencent Cloud errors: the `Response.Error` envelope, classified once.
//!
//! Tencent Cloud API 3.0 answers errors with **HTTP 200** and
//! `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}` (the official Go SDK's
//! `tencentcloud/common/http/response.go` parses every body this way). Codes:
//! <https://www.tencentcloud.com/document/api/213/15694> (CVM error codes, "Common Error
//! Codes" section).

use cmdb_core::{Error, ErrorKind, Vendor, VendorError};
use cmdb_http::{classify_status, request_id, ErrorClassifier, RawResponse};

use crate::model::{Envelope, ErrorResponse};

/// Tencent Cloud's documented error codes, the first that matches a code deciding its
/// kind and whether retrying may help. `X.*` matches `X` and its sub-codes (`X.Y`); `X*`
/// matches every code starting with `X`.
///
/// Sources: the API 3.0 common error codes
/// (<https://www.tencentcloud.com/document/api/213/15694>) and CVM's own codes
/// (`DescribeInstances`, `DescribeRegions`), as listed in the official SDK's
/// `cvm/v20170312/errors.go`. The transient ones are the throttling codes and the
/// service's internal errors (`InternalError.TradeUnknownError` included). Anything not
/// listed (quotas such as `LimitExceeded.*`, `FailedOperation.*`) is a `Vendor` error,
/// not retried.
const CODES: &[(&str, ErrorKind, bool)] = &[
    ("RequestLimitExceeded.*", ErrorKind::RateLimited, true),
    ("InternalError.*", ErrorKind::Unavailable, true),
    ("InternalServerError", ErrorKind::Unavailable, true),
    ("ServiceUnavailable", ErrorKind::Unavailable, true),
    (
        "AuthFailure.UnauthorizedOperation",
        ErrorKind::PermissionDenied,
        false,
    ),
    (
        "UnauthorizedOperation.*",
        ErrorKind::PermissionDenied,
        false,
    ),
    ("IpInBlacklist", ErrorKind::PermissionDenied, false),
    ("IpNotInWhitelist", ErrorKind::PermissionDenied, false),
    (
        "AccountQualificationRestrictions",
        ErrorKind::PermissionDenied,
        false,
    ),
    // Signatures, keys, STS tokens (`AuthFailure.TokenFailure`), MFA, CAM roles.
    ("AuthFailure.*", ErrorKind::Unauthenticated, false),
    ("InvalidParameter*", ErrorKind::InvalidInput, false),
    ("MissingParameter", ErrorKind::InvalidInput, false),
    ("UnknownParameter", ErrorKind::InvalidInput, false),
    ("InvalidAction", ErrorKind::InvalidInput, false),
    ("InvalidRequest", ErrorKind::InvalidInput, false),
    ("InvalidFilter*", ErrorKind::InvalidInput, false),
    (
        "InvalidInstanceId.Malformed",
        ErrorKind::InvalidInput,
        false,
    ),
    ("InvalidZone.MismatchRegion", ErrorKind::InvalidInput, false),
    ("UnsupportedOperation*", ErrorKind::InvalidInput, false),
    ("UnsupportedRegion", ErrorKind::InvalidInput, false),
    ("UnsupportedProtocol", ErrorKind::InvalidInput, false),
    ("NoSuchProduct", ErrorKind::InvalidInput, false),
    ("NoSuchVersion", ErrorKind::InvalidInput, false),
    ("ActionOffline", ErrorKind::InvalidInput, false),
    ("RequestSizeLimitExceeded", ErrorKind::InvalidInput, false),
    ("ResourceNotFound*", ErrorKind::NotFound, false),
    ("InvalidInstanceId.NotFound", ErrorKind::NotFound, false),
];

/// Whether `code` matches `pattern` (see [`CODES`]).
fn matches(pattern: &str, code: &str) -> bool {
    if let Some(base) = pattern.strip_suffix(".*") {
        code == base
            || code
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('.'))
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        code.starts_with(prefix)
    } else {
        code == pattern
    }
}

/// The kind of a Tencent answer and whether retrying may help, from its HTTP status and
/// error code (see [`CODES`]; a body without a code is judged by its status).
pub(crate) fn classify(status: u16, code: Option<&str>) -> (ErrorKind, bool) {
    let Some(code) = code else {
        return classify_status(Some(Vendor::Tencent), status);
    };
    CODES
        .iter()
        .find(|(pattern, _, _)| matches(pattern, code))
        .map_or((ErrorKind::Vendor, false), |&(_, kind, retry)| {
            (kind, retry)
        })
}

/// What to check, for the errors a person must fix.
fn hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "AuthFailure.SignatureExpire" => {
            "the request timestamp is more than 5 minutes from Tencent Cloud's time: check this machine's clock (NTP)"
        }
        "AuthFailure.SecretIdNotFound" => {
            "the SecretId does not exist or is disabled: check the secret's api_key (no spaces around it) in the CAM console"
        }
        "AuthFailure.InvalidSecretId" => {
            "the api_key is not a Tencent Cloud API SecretId: check the secret's api_key"
        }
        "AuthFailure.SignatureFailure" => {
            "the signature does not match: check the secret's api_secret (SecretKey) and that no proxy rewrites the request"
        }
        "AuthFailure.TokenFailure" => "the STS token is invalid or expired: check the token",
        "AuthFailure.InvalidAuthorization" => {
            "the Authorization header is malformed: check any proxy between cmdb and Tencent Cloud"
        }
        _ if code == "AuthFailure.UnauthorizedOperation" || code.starts_with("UnauthorizedOperation") => {
            "the key is valid but not allowed: grant the CAM policy for cvm:DescribeInstances (and region:DescribeRegions) for hosts, cdb:DescribeDBInstances for databases"
        }
        _ if code.starts_with("AuthFailure") => {
            "Tencent Cloud rejected the credentials: check the secret's api_key and api_secret"
        }
        _ => return None,
    })
}

/// Builds the typed error of one Tencent error code.
pub(crate) fn api_error(
    http_status: u16,
    code: String,
    message: Option<String>,
    request_id: Option<String>,
) -> Error {
    let (kind, retryable) = classify(http_status, Some(&code));
    let what = hint(&code);
    let error = Error::vendor(
        kind,
        retryable,
        VendorError {
            vendor: Some(Vendor::Tencent),
            http_status: Some(http_status),
            code: Some(code),
            message,
            request_id,
        },
    );
    match what {
        Some(what) => error.context(what),
        None => error,
    }
}

/// The [`ErrorClassifier`] of Tencent Cloud API 3.0.
///
/// Every body, 2xx included, is read for `Response.Error` (a 2xx body that cannot hold
/// the key, by [`RawResponse::may_have_key`], is passed unread); a body with a code is an error
/// of [`classify`]'s kind. A non-2xx body without one (a proxy's page) is classified
/// by its status. A 2xx body that is not JSON, or has no error, passes: decoding it is
/// the caller's job, which fails with a `Decode` error naming what is missing.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TencentClassifier;

impl ErrorClassifier for TencentClassifier {
    fn classify(&self, response: &RawResponse) -> Option<Error> {
        if response.is_success() && !response.may_have_key("Error") {
            return None;
        }
        let status = response.status.as_u16();
        let parsed = serde_json::from_slice::<Envelope<ErrorResponse>>(&response.body)
            .ok()
            .map(|e| e.response);
        let header_id = request_id(&response.headers);
        if let Some(ErrorResponse {
            error: Some(api),
            request_id,
        }) = parsed
        {
            if let Some(code) = api.code.filter(|c| !c.is_empty()) {
                return Some(api_error(
                    status,
                    code,
                    api.message,
                    request_id.or(header_id),
                ));
            }
        }
        if response.is_success() {
            return None;
        }
        let (kind, retryable) = classify(status, None);
        Some(Error::vendor(
            kind,
            retryable,
            VendorError {
                vendor: Some(Vendor::Tencent),
                http_status: Some(status),
                code: None,
                message: Some(response.status_summary()),
                request_id: header_id,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use cmdb_http::is_retryable;
    use http::{HeaderMap, StatusCode};

    use super::*;

    fn response(status: u16, body: &str) -> RawResponse {
        RawResponse::new(
            StatusCode::from_u16(status).unwrap(),
            HeaderMap::new(),
            body.to_owned(),
        )
    }

    fn error_body(code: &str) -> String {
        format!(
            r#"{{"Response": {{"Error": {{"Code": "{code}", "Message": "said {code}"}}, "RequestId": "rid-{code}"}}}}"#
        )
    }

    #[test]
    fn codes_map_to_kinds_and_retries() {
        use ErrorKind::*;
        let cases = [
            ("RequestLimitExceeded", RateLimited, true),
            ("RequestLimitExceeded.UinLimitExceeded", RateLimited, true),
            ("RequestLimitExceeded.IPLimitExceeded", RateLimited, true),
            (
                "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
                RateLimited,
                true,
            ),
            ("InternalError", Unavailable, true),
            ("ServiceUnavailable", Unavailable, true),
            ("AuthFailure.SecretIdNotFound", Unauthenticated, false),
            ("AuthFailure.InvalidSecretId", Unauthenticated, false),
            ("AuthFailure.SignatureFailure", Unauthenticated, false),
            ("AuthFailure.SignatureExpire", Unauthenticated, false),
            ("AuthFailure.TokenFailure", Unauthenticated, false),
            ("AuthFailure.UnauthorizedOperation", PermissionDenied, false),
            ("UnauthorizedOperation", PermissionDenied, false),
            ("UnauthorizedOperation.CamNoAuth", PermissionDenied, false),
            ("InvalidParameterValue.LimitExceeded", InvalidInput, false),
            ("InvalidParameter", InvalidInput, false),
            ("MissingParameter", InvalidInput, false),
            ("ResourceNotFound.NoDefaultVpc", NotFound, false),
            ("LimitExceeded.CvmInstanceQuota", Vendor, false),
            ("RequestLimitExceededSoon", Vendor, false),
            ("InternalError.TradeUnknownError", Unavailable, true),
            ("InternalErrorSoon", Vendor, false),
            ("InternalServerError", Unavailable, true),
            ("IpNotInWhitelist", PermissionDenied, false),
            ("AuthFailure.MFAFailure", Unauthenticated, false),
            ("UnsupportedRegion", InvalidInput, false),
            ("InvalidFilter", InvalidInput, false),
            ("FailedOperation.TagKeyReserved", Vendor, false),
        ];
        for (code, kind, retryable) in cases {
            assert_eq!(classify(200, Some(code)), (kind, retryable), "{code}");
            let e = TencentClassifier
                .classify(&response(200, &error_body(code)))
                .unwrap_or_else(|| panic!("{code} is an error"));
            assert_eq!(e.kind(), kind, "{code}");
            assert_eq!(is_retryable(&e), retryable, "{code}");
            let v = e.vendor_error().unwrap();
            assert_eq!(v.code.as_deref(), Some(code));
            assert_eq!(v.message.as_deref(), Some(format!("said {code}").as_str()));
            assert_eq!(
                v.request_id.as_deref(),
                Some(format!("rid-{code}").as_str())
            );
            assert_eq!(v.http_status, Some(200));
            assert_eq!(v.vendor, Some(cmdb_core::Vendor::Tencent));
        }
    }

    #[test]
    fn auth_errors_say_what_to_check() {
        let e = TencentClassifier
            .classify(&response(200, &error_body("AuthFailure.SignatureExpire")))
            .unwrap();
        assert!(e.to_string().contains("clock"), "{e}");
        assert!(e.to_string().contains("AuthFailure.SignatureExpire"), "{e}");
        for (code, word) in [
            ("AuthFailure.SecretIdNotFound", "api_key"),
            ("AuthFailure.SignatureFailure", "api_secret"),
            ("UnauthorizedOperation", "CAM policy"),
        ] {
            let e = TencentClassifier
                .classify(&response(200, &error_body(code)))
                .unwrap();
            assert!(e.to_string().contains(word), "{code}: {e}");
        }
    }

    #[test]
    fn successes_pass_and_other_statuses_are_typed() {
        let ok = r#"{"Response": {"TotalCount": 0, "InstanceSet": [], "RequestId": "r"}}"#;
        assert!(TencentClassifier.classify(&response(200, ok)).is_none());
        // Not JSON at 200: left to the decoder.
        assert!(TencentClassifier
            .classify(&response(200, "<html>"))
            .is_none());
        let e = TencentClassifier
            .classify(&response(502, "<html>bad gateway</html>"))
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        // An error spelled with escapes at 200 is still an error.
        let escaped = r#"{"Response": {"\u0045rror": {"Code": "AuthFailure.SecretIdNotFound", "Message": "m"}, "RequestId": "r"}}"#;
        assert!(response(200, escaped).may_have_key("Error"));
        let e = TencentClassifier.classify(&response(200, escaped)).unwrap();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        // "Error" as a value is not the key; as a nested key it makes the classifier
        // look, and find no code.
        let named =
            r#"{"Response": {"InstanceSet": [{"InstanceName": "Error"}], "RequestId": "r"}}"#;
        assert!(!response(200, named).may_have_key("Error"));
        assert!(TencentClassifier.classify(&response(200, named)).is_none());
        let nested =
            r#"{"Response": {"InstanceSet": [{"Tags": [], "Error" : {}}], "RequestId": "r"}}"#;
        assert!(response(200, nested).may_have_key("Error"));
        assert!(TencentClassifier.classify(&response(200, nested)).is_none());
        assert!(!response(200, ok).may_have_key("Error"));
        // A code in a non-2xx body wins over the status.
        let e = TencentClassifier
            .classify(&response(503, &error_body("AuthFailure.SignatureFailure")))
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert_eq!(e.vendor_error().unwrap().http_status, Some(503));
    }
}
