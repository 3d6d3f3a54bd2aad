//! Turning vendor responses into typed errors.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use cmdb_core::{Error, ErrorKind, Result, Vendor, VendorError};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

/// How much of a body `Debug` and error messages show.
const BODY_PREVIEW: usize = 512;
/// Characters of serde's reason kept in a decode error.
const MAX_DECODE_REASON: usize = 160;

/// Decodes `json` into `T` (which may borrow from it): a [`Decode`](ErrorKind::Decode)
/// error otherwise, naming the path of the field that does not fit (`Instances.Instance[3].Cpu`)
/// and serde's reason, bounded: the text is the vendor's (or a proxy's) and errors reach
/// API answers.
pub fn decode_json<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T> {
    let bounded = |reason: String, source: serde_json::Error| {
        let mut reason = reason;
        if let Some((at, _)) = reason.char_indices().nth(MAX_DECODE_REASON) {
            reason.truncate(at);
            reason.push('…');
        }
        Error::decode(reason).with_source(source)
    };
    let error = match serde_json::from_slice(json) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    // Only what fails is read again, with its path tracked (tracking every field of
    // every record costs about as much as decoding them).
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Err(e) if e.path().to_string() != "." => {
            let path = e.path().to_string();
            let source = e.into_inner();
            Err(bounded(format!("field `{path}`: {source}"), source))
        }
        _ => Err(bounded(error.to_string(), error)),
    }
}

/// Response headers whose values `Debug` never shows: session cookies (vSphere's
/// `vmware_soap_session`) and tokens (Huawei IAM's `X-Subject-Token`).
const REDACTED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-auth-token",
    "x-subject-token",
    "x-security-token",
    "x-tc-token",
];

/// A complete response: status, headers and the whole body, read before classification.
#[derive(Clone)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl RawResponse {
    /// A response from its parts (handy to test classifiers).
    pub fn new(status: StatusCode, headers: HeaderMap, body: impl Into<Bytes>) -> RawResponse {
        RawResponse {
            status,
            headers,
            body: body.into(),
        }
    }

    /// Whether the status is 2xx. A 2xx body may still carry an error (Tencent Cloud):
    /// ask the [`ErrorClassifier`].
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// A header's value, when present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// The body decoded as JSON; a [`Decode`](ErrorKind::Decode) error naming the path of
    /// the field that does not fit otherwise. `T` may borrow strings from the body.
    pub fn json<'a, T: Deserialize<'a>>(&'a self) -> Result<T> {
        decode_json(&self.body).map_err(|e| {
            Error::decode(format!(
                "invalid JSON in HTTP {} response: {}",
                self.status.as_u16(),
                e.message()
            ))
            .with_source(e)
        })
    }

    /// Whether the JSON body may have a member named `key`, at any depth: the body spells
    /// `"key"` followed by a colon, or it has a `\u` escape, the only escape that can
    /// spell a letter or a digit. `false` is certain, `true` only a maybe (a string
    /// value `"key"` is not taken for the key).
    ///
    /// Classifiers read a 2xx body for an error envelope; when the envelope's key cannot
    /// be there, they pass the body without parsing it, instead of a whole serde_json pass
    /// over every page before it is decoded. `key` is written as it is spelled in JSON,
    /// without escapes.
    ///
    /// ```
    /// use cmdb_http::RawResponse;
    /// use http::{HeaderMap, StatusCode};
    ///
    /// let page = RawResponse::new(StatusCode::OK, HeaderMap::new(), r#"{"Items":[]}"#);
    /// assert!(!page.may_have_key("Code"));
    /// let error = RawResponse::new(StatusCode::OK, HeaderMap::new(), r#"{"Code":"Throttling"}"#);
    /// assert!(error.may_have_key("Code"));
    /// let named = RawResponse::new(StatusCode::OK, HeaderMap::new(), r#"{"Name":"Code"}"#);
    /// assert!(!named.may_have_key("Code"));
    /// let escaped = RawResponse::new(StatusCode::OK, HeaderMap::new(), r#"{"\u0043ode":"x"}"#);
    /// assert!(escaped.may_have_key("Code"));
    /// ```
    pub fn may_have_key(&self, key: &str) -> bool {
        let body: &[u8] = &self.body;
        if memchr::memmem::find(body, b"\\u").is_some() {
            return true;
        }
        let quoted = [b"\"", key.as_bytes(), b"\""].concat();
        let finder = memchr::memmem::Finder::new(&quoted);
        finder.find_iter(body).any(|at| {
            body[at + quoted.len()..]
                .iter()
                .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
                == Some(&b':')
        })
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The start of the body as text, for debug logs only: at most 512 bytes,
    /// whitespace collapsed. Never put it in an error: a vendor's body may carry anything
    /// (a proxy's page, an echo of the request), and errors reach API answers and stored
    /// tasks.
    pub fn body_preview(&self) -> String {
        preview(&self.body)
    }

    /// What an error may say of a body that is not a vendor error envelope: its length
    /// and content type, never its text (see [`body_preview`](Self::body_preview)). The
    /// preview goes to the debug log, with the status.
    ///
    /// ```
    /// use cmdb_http::RawResponse;
    /// use http::{HeaderMap, StatusCode};
    ///
    /// let r = RawResponse::new(StatusCode::BAD_GATEWAY, HeaderMap::new(), "<html>token=abc</html>");
    /// assert_eq!(r.body_summary(), "an unexpected body of 22 bytes");
    /// ```
    pub fn body_summary(&self) -> String {
        if self.body.is_empty() {
            return "an empty body".to_owned();
        }
        tracing::debug!(
            status = self.status.as_u16(),
            body = %preview(&self.body),
            "vendor answer without an error envelope"
        );
        let content_type = self
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/.+-".contains(&b))
            });
        match content_type {
            Some(t) => format!("an unexpected {t} body of {} bytes", self.body.len()),
            None => format!("an unexpected body of {} bytes", self.body.len()),
        }
    }

    /// The status's reason, then [`body_summary`](Self::body_summary) when there is a
    /// body: the message of an error answer without a vendor envelope.
    ///
    /// ```
    /// use cmdb_http::RawResponse;
    /// use http::{HeaderMap, StatusCode};
    ///
    /// let empty = RawResponse::new(StatusCode::UNAUTHORIZED, HeaderMap::new(), "");
    /// assert_eq!(empty.status_summary(), "Unauthorized");
    /// let page = RawResponse::new(StatusCode::BAD_GATEWAY, HeaderMap::new(), "<html/>");
    /// assert_eq!(page.status_summary(), "Bad Gateway, an unexpected body of 7 bytes");
    /// ```
    pub fn status_summary(&self) -> String {
        let reason = self
            .status
            .canonical_reason()
            .unwrap_or("unexpected status");
        if self.body.is_empty() {
            reason.to_owned()
        } else {
            format!("{reason}, {}", self.body_summary())
        }
    }
}

fn preview(body: &[u8]) -> String {
    let cut = &body[..body.len().min(BODY_PREVIEW)];
    let text = String::from_utf8_lossy(cut);
    let mut out = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > BODY_PREVIEW {
        out.push_str(&format!("… ({} bytes)", body.len()));
    }
    out
}

impl fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a HeaderMap);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut map = f.debug_map();
                for (name, value) in self.0 {
                    if value.is_sensitive() || REDACTED_HEADERS.contains(&name.as_str()) {
                        map.entry(&name.as_str(), &"<redacted>");
                    } else {
                        map.entry(&name.as_str(), &value);
                    }
                }
                map.finish()
            }
        }
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("headers", &Headers(&self.headers))
            .field("body", &preview(&self.body))
            .finish()
    }
}

/// Decides whether a response is a success and, if not, which error it is.
///
/// One implementation per vendor, in the provider crate, keyed on the vendor's error
/// code (with a link to the vendor's error-code page); fall back to [`classify_status`]
/// for bodies without a code. [`HttpClient`](crate::HttpClient) retries the errors that
/// are [`is_retryable`](Error::is_retryable), except authentication and permission errors.
pub trait ErrorClassifier: fmt::Debug + Send + Sync + 'static {
    /// `None` when `response` is a success, the error otherwise, including an error
    /// carried in a 2xx body (Tencent Cloud answers every error with HTTP 200).
    fn classify(&self, response: &RawResponse) -> Option<Error>;
}

impl<T: ErrorClassifier + ?Sized> ErrorClassifier for Arc<T> {
    fn classify(&self, response: &RawResponse) -> Option<Error> {
        (**self).classify(response)
    }
}

impl<T: ErrorClassifier + ?Sized> ErrorClassifier for Box<T> {
    fn classify(&self, response: &RawResponse) -> Option<Error> {
        (**self).classify(response)
    }
}

/// Classifies by HTTP status alone: 2xx is a success, anything else an error of the kind
/// [`classify_status`] gives, with the status, a preview of the body and the request id
/// from `x-acs-request-id`, `x-request-id` or `x-tc-requestid`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultClassifier {
    vendor: Option<Vendor>,
}

impl DefaultClassifier {
    /// A classifier for `vendor`'s responses (`None` for a generic HTTP service).
    pub fn new(vendor: Option<Vendor>) -> DefaultClassifier {
        DefaultClassifier { vendor }
    }

    /// The vendor named in its errors.
    pub fn vendor(&self) -> Option<Vendor> {
        self.vendor
    }
}

impl ErrorClassifier for DefaultClassifier {
    fn classify(&self, response: &RawResponse) -> Option<Error> {
        if response.is_success() {
            return None;
        }
        let status = response.status.as_u16();
        let (kind, retryable) = classify_status(self.vendor, status);
        let message = response.status_summary();
        Some(Error::vendor(
            kind,
            retryable,
            VendorError {
                vendor: self.vendor,
                http_status: Some(status),
                code: None,
                message: Some(message),
                request_id: request_id(&response.headers),
            },
        ))
    }
}

/// The request id of the common vendor headers: `x-acs-request-id` (Alibaba),
/// `x-request-id` (Huawei), `x-tc-requestid` (Tencent).
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-acs-request-id", "x-request-id", "x-tc-requestid"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(str::to_owned)
}

/// The error kind of a non-2xx status, and whether retrying may help: the fallback for
/// responses without a vendor error code.
///
/// | status | kind | retryable |
/// |---|---|---|
/// | 400, 422 | `InvalidInput` | no |
/// | 401 | `Unauthenticated` | no |
/// | 403 | `PermissionDenied` | no |
/// | 404 | `NotFound` | no |
/// | 408, 504 | `Timeout` | yes |
/// | 409 | `Conflict` | no |
/// | 429 | `RateLimited` | yes |
/// | 501, 505 | `Vendor` | no (the server will never support it) |
/// | other 5xx | `Unavailable` | yes |
/// | other | `Vendor` | no |
///
/// For vSphere, 500 is `Vendor` and not retryable: vim25 answers every SOAP fault with
/// HTTP 500, `InvalidLogin` included, so only the fault in the body can tell a transient
/// error, and retrying a wrong password can lock the account.
pub fn classify_status(vendor: Option<Vendor>, status: u16) -> (ErrorKind, bool) {
    match status {
        400 | 422 => (ErrorKind::InvalidInput, false),
        401 => (ErrorKind::Unauthenticated, false),
        403 => (ErrorKind::PermissionDenied, false),
        404 => (ErrorKind::NotFound, false),
        408 | 504 => (ErrorKind::Timeout, true),
        409 => (ErrorKind::Conflict, false),
        429 => (ErrorKind::RateLimited, true),
        500 if vendor == Some(Vendor::Vsphere) => (ErrorKind::Vendor, false),
        501 | 505 => (ErrorKind::Vendor, false),
        500..=599 => (ErrorKind::Unavailable, true),
        _ => (ErrorKind::Vendor, false),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn response(status: u16, body: &str) -> RawResponse {
        RawResponse::new(
            StatusCode::from_u16(status).unwrap(),
            HeaderMap::new(),
            body.to_owned(),
        )
    }

    #[test]
    fn may_have_key_never_misses_a_member_that_is_there() {
        let has = |body: &str| response(200, body).may_have_key("error");
        for body in [
            r#"{"error":1}"#,
            r#"{"a":[{"b":{"error" :null}}]}"#,
            "{\"error\"\r\n\t :{}}",
            r#"{"\u0065rror":1}"#,
            r#"{"a":"\u00e9","b":1}"#,
        ] {
            assert!(has(body), "{body}");
        }
        for body in [
            "",
            r#"{"errors":1,"an_error":2,"Error":3}"#,
            r#"{"status":"error","list":["error"]}"#,
            r#"{"note":"the \"error\": here is text"}"#,
            r#"{"last":"error""#,
            "<html>error</html>",
        ] {
            assert!(!has(body), "{body}");
        }
    }

    #[test]
    fn json_borrows_from_the_body_and_reads_bytes_that_are_not_utf8_as_serde_json_does() {
        #[derive(Debug, serde::Deserialize)]
        struct Page<'a> {
            #[serde(borrow)]
            name: std::borrow::Cow<'a, str>,
        }
        let r = response(200, r#"{"name": "web-1", "other": 1}"#);
        let page: Page<'_> = r.json().unwrap();
        assert!(matches!(page.name, std::borrow::Cow::Borrowed("web-1")));
        // Not UTF-8 in a member that is skipped: read as before, as bytes.
        let mut body = br#"{"name": "web-1", "other": ""#.to_vec();
        body.extend([0xff, 0xfe]);
        body.extend(br#""}"#);
        let r = RawResponse::new(StatusCode::OK, HeaderMap::new(), body);
        assert_eq!(r.json::<Page<'_>>().unwrap().name, "web-1");
        // In a member that is read: a Decode error naming the status.
        let mut body = br#"{"name": ""#.to_vec();
        body.extend([0xff, 0xfe]);
        body.extend(br#""}"#);
        let r = RawResponse::new(StatusCode::OK, HeaderMap::new(), body);
        let e = r.json::<Page<'_>>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert!(
            e.message().starts_with("invalid JSON in HTTP 200 response"),
            "{e}"
        );
    }

    #[test]
    fn statuses_map_to_kinds() {
        use ErrorKind::*;
        let cases = [
            (400, InvalidInput, false),
            (401, Unauthenticated, false),
            (403, PermissionDenied, false),
            (404, NotFound, false),
            (405, Vendor, false),
            (408, Timeout, true),
            (409, Conflict, false),
            (429, RateLimited, true),
            (500, Unavailable, true),
            (501, Vendor, false),
            (502, Unavailable, true),
            (503, Unavailable, true),
            (504, Timeout, true),
            (302, Vendor, false),
        ];
        for (status, kind, retryable) in cases {
            assert_eq!(classify_status(None, status), (kind, retryable), "{status}");
        }
        assert_eq!(
            classify_status(Some(cmdb_core::Vendor::Vsphere), 500),
            (Vendor, false)
        );
        assert_eq!(
            classify_status(Some(cmdb_core::Vendor::Huawei), 500),
            (Unavailable, true)
        );
    }

    #[test]
    fn default_classifier_accepts_2xx_and_types_the_rest() {
        let c = DefaultClassifier::new(Some(Vendor::Huawei));
        assert!(c.classify(&response(200, "{}")).is_none());
        assert!(c.classify(&response(204, "")).is_none());
        let mut r = response(
            429,
            r#"{"error_code":"APIGW.0308","error_msg":"throttled"}"#,
        );
        r.headers
            .insert("x-request-id", HeaderValue::from_static("RID-9"));
        let e = c.classify(&r).unwrap();
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(e.is_retryable());
        let v = e.vendor_error().unwrap();
        assert_eq!(v.vendor, Some(Vendor::Huawei));
        assert_eq!(v.http_status, Some(429));
        assert_eq!(v.request_id.as_deref(), Some("RID-9"));
        // Not a body this classifier knows: described, never echoed.
        assert_eq!(
            v.message.as_deref(),
            Some("Too Many Requests, an unexpected body of 51 bytes")
        );
        let e = c.classify(&response(401, "")).unwrap();
        assert_eq!(e.kind(), ErrorKind::Unauthenticated);
        assert!(!e.is_retryable());
        assert_eq!(
            e.vendor_error().unwrap().message.as_deref(),
            Some("Unauthorized")
        );
    }

    #[test]
    fn classifiers_work_behind_arc_and_box() {
        let arc: Arc<dyn ErrorClassifier> = Arc::new(DefaultClassifier::default());
        assert!(arc.classify(&response(503, "")).is_some());
        let boxed: Box<dyn ErrorClassifier> = Box::new(DefaultClassifier::default());
        assert!(boxed.classify(&response(200, "")).is_none());
    }

    #[test]
    fn debug_truncates_the_body_and_redacts_secrets() {
        let mut r = response(200, &"x".repeat(10_000));
        r.headers.insert(
            "set-cookie",
            HeaderValue::from_static("vmware_soap_session=SECRET1"),
        );
        r.headers
            .insert("x-subject-token", HeaderValue::from_static("SECRET2"));
        r.headers
            .insert("x-request-id", HeaderValue::from_static("RID-1"));
        let shown = format!("{r:?}");
        assert!(shown.len() < 1000, "{}", shown.len());
        assert!(shown.contains("(10000 bytes)"), "{shown}");
        assert!(
            !shown.contains("SECRET1") && !shown.contains("SECRET2"),
            "{shown}"
        );
        assert!(shown.contains("RID-1"), "{shown}");
    }

    #[test]
    fn json_and_text_decode_the_body() {
        let r = response(200, r#"{"a": 1}"#);
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(r.text(), r#"{"a": 1}"#);
        let e = response(200, "<html>")
            .json::<serde_json::Value>()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Decode);
    }

    #[test]
    fn request_id_reads_vendor_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(request_id(&h), None);
        h.insert("x-acs-request-id", HeaderValue::from_static("A-1"));
        assert_eq!(request_id(&h).as_deref(), Some("A-1"));
    }
}
