//! The one error type every cmdb crate converts into.

use std::error::Error as StdError;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::Vendor;

/// A `Result` with [`Error`] as its default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarsely: callers branch on this, people read the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ErrorKind {
    /// The request or a configuration value is invalid.
    InvalidInput,
    /// A secret, host or other record does not exist.
    NotFound,
    /// The vendor rejected the credentials or the signature.
    Unauthenticated,
    /// The credentials are valid but not allowed to do this.
    PermissionDenied,
    /// The vendor throttled the requests.
    RateLimited,
    /// A request or the whole run took too long.
    Timeout,
    /// The vendor or the network is unavailable.
    Unavailable,
    /// Any other error the vendor reported.
    Vendor,
    /// A response could not be decoded.
    Decode,
    /// The store failed.
    Store,
    /// Encryption or decryption failed (wrong key, tampered data).
    Crypto,
    /// The operation conflicts with another one (duplicate key, a sync already running).
    Conflict,
}

impl ErrorKind {
    /// The snake_case name of the kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Vendor => "vendor",
            ErrorKind::Decode => "decode",
            ErrorKind::Store => "store",
            ErrorKind::Crypto => "crypto",
            ErrorKind::Conflict => "conflict",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What a vendor said about a failed request, kept as the vendor said it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VendorError {
    /// The vendor that answered.
    pub vendor: Option<Vendor>,
    /// HTTP status of the answer, when there was one.
    pub http_status: Option<u16>,
    /// The vendor's error code, e.g. `Throttling.User` or `APIGW.0301`.
    pub code: Option<String>,
    /// The vendor's message.
    pub message: Option<String>,
    /// The vendor's request id, for support tickets.
    pub request_id: Option<String>,
}

/// The error of every cmdb operation.
///
/// It carries a [`ErrorKind`], a message, the vendor's own details when a vendor
/// answered, whether retrying may help, and the underlying cause. Messages never contain
/// secret material.
pub struct Error {
    kind: ErrorKind,
    message: String,
    vendor: Option<Box<VendorError>>,
    retryable: bool,
    field: Option<&'static str>,
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

/// Characters of a vendor's error message kept in an [`Error`] (see [`Error::vendor`]).
pub const MAX_VENDOR_MESSAGE: usize = 512;
/// Characters of a vendor's error code or request id kept in an [`Error`].
pub const MAX_VENDOR_FIELD: usize = 128;

/// Cuts `text` to `max` characters, marking the cut with `…`.
fn bound(text: &mut Option<String>, max: usize) {
    if let Some(t) = text {
        if let Some((at, _)) = t.char_indices().nth(max) {
            t.truncate(at);
            t.push('…');
        }
    }
}

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            vendor: None,
            retryable: matches!(
                kind,
                ErrorKind::RateLimited | ErrorKind::Timeout | ErrorKind::Unavailable
            ),
            field: None,
            source: None,
        }
    }

    /// An invalid-input error about one named field.
    pub fn invalid_field(field: &'static str, message: impl Into<String>) -> Error {
        let mut e = Error::new(
            ErrorKind::InvalidInput,
            format!("{field}: {}", message.into()),
        );
        e.field = Some(field);
        e
    }

    /// A not-found error.
    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    /// A store error.
    pub fn store(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Store, message)
    }

    /// A decode error.
    pub fn decode(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Decode, message)
    }

    /// An error a vendor reported, classified by the caller.
    ///
    /// The vendor's text is bounded, since errors reach API answers and stored tasks:
    /// the message is cut to [`MAX_VENDOR_MESSAGE`] characters, the code and the
    /// request id to [`MAX_VENDOR_FIELD`], each marked with `…` when cut.
    pub fn vendor(kind: ErrorKind, retryable: bool, mut details: VendorError) -> Error {
        bound(&mut details.message, MAX_VENDOR_MESSAGE);
        bound(&mut details.code, MAX_VENDOR_FIELD);
        bound(&mut details.request_id, MAX_VENDOR_FIELD);
        let vendor = details.vendor.map(|v| v.as_str()).unwrap_or("vendor");
        let mut message = format!("{vendor} error");
        if let Some(code) = &details.code {
            message.push_str(&format!(" {code}"));
        }
        if let Some(status) = details.http_status {
            message.push_str(&format!(" (HTTP {status})"));
        }
        if let Some(msg) = &details.message {
            message.push_str(&format!(": {msg}"));
        }
        if let Some(id) = &details.request_id {
            message.push_str(&format!(" [request id {id}]"));
        }
        Error {
            kind,
            message,
            vendor: Some(Box::new(details)),
            retryable,
            field: None,
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// Overrides whether retrying may help.
    pub fn with_retryable(mut self, retryable: bool) -> Error {
        self.retryable = retryable;
        self
    }

    /// Prefixes the message with context, keeping everything else.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The vendor's details, when a vendor answered.
    pub fn vendor_error(&self) -> Option<&VendorError> {
        self.vendor.as_deref()
    }

    /// Whether retrying the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The invalid field, for [`ErrorKind::InvalidInput`] errors about one field.
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(v) = &self.vendor {
            d.field("vendor", v);
        }
        if let Some(field) = self.field {
            d.field("field", &field);
        }
        d.field("retryable", &self.retryable);
        if let Some(s) = &self.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// An [`Error`] as answers and stored runs carry it: the kind, the message and the
/// vendor's details, serializable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub struct ErrorReport {
    /// The kind of error.
    pub kind: ErrorKind,
    /// The full message.
    pub message: String,
    /// The vendor that answered, when one did.
    pub vendor: Option<Vendor>,
    /// The vendor's error code.
    pub code: Option<String>,
    /// The HTTP status of the vendor's answer.
    pub http_status: Option<u16>,
    /// The vendor's request id; for a store's or server's own failure whose text an API
    /// keeps to its log, the id it was logged under.
    pub request_id: Option<String>,
}

impl ErrorReport {
    /// A report of an error of `kind` that no vendor answered.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ErrorReport {
        ErrorReport {
            kind,
            message: message.into(),
            vendor: None,
            code: None,
            http_status: None,
            request_id: None,
        }
    }
}

impl From<&Error> for ErrorReport {
    fn from(e: &Error) -> ErrorReport {
        let v = e.vendor_error();
        ErrorReport {
            kind: e.kind(),
            message: e.to_string(),
            vendor: v.and_then(|v| v.vendor),
            code: v.and_then(|v| v.code.clone()),
            http_status: v.and_then(|v| v.http_status),
            request_id: v.and_then(|v| v.request_id.clone()),
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::decode(format!("invalid JSON: {e}")).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_errors_keep_every_detail() {
        let e = Error::vendor(
            ErrorKind::RateLimited,
            true,
            VendorError {
                vendor: Some(Vendor::Aliyun),
                http_status: Some(400),
                code: Some("Throttling.User".into()),
                message: Some("Request was denied due to user flow control.".into()),
                request_id: Some("RID-1".into()),
            },
        );
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(e.is_retryable());
        let v = e.vendor_error().unwrap();
        assert_eq!(v.code.as_deref(), Some("Throttling.User"));
        assert_eq!(v.request_id.as_deref(), Some("RID-1"));
        let shown = e.to_string();
        assert!(
            shown.starts_with("rate_limited: aliyun error Throttling.User (HTTP 400)"),
            "{shown}"
        );
        assert!(shown.contains("RID-1"));
    }

    #[test]
    fn vendor_text_is_bounded() {
        let long = "é".repeat(MAX_VENDOR_MESSAGE + 10);
        let e = Error::vendor(
            ErrorKind::Unavailable,
            true,
            VendorError {
                vendor: None,
                http_status: Some(502),
                code: Some("C".repeat(1000)),
                message: Some(long),
                request_id: Some("r".repeat(MAX_VENDOR_FIELD)),
            },
        );
        let v = e.vendor_error().unwrap();
        let message = v.message.as_deref().unwrap();
        assert_eq!(message.chars().count(), MAX_VENDOR_MESSAGE + 1);
        assert!(message.ends_with("é…"));
        assert_eq!(
            v.code.as_deref().unwrap().chars().count(),
            MAX_VENDOR_FIELD + 1
        );
        // At the bound exactly: kept whole.
        assert_eq!(
            v.request_id.as_deref(),
            Some("r".repeat(MAX_VENDOR_FIELD).as_str())
        );
        assert!(e.message().len() < 2 * (MAX_VENDOR_MESSAGE + 3 * MAX_VENDOR_FIELD));
    }

    #[test]
    fn retryable_defaults_follow_kind() {
        assert!(Error::new(ErrorKind::Timeout, "t").is_retryable());
        assert!(!Error::new(ErrorKind::Unauthenticated, "a").is_retryable());
        assert!(!Error::new(ErrorKind::Timeout, "t")
            .with_retryable(false)
            .is_retryable());
    }

    #[test]
    fn invalid_field_names_the_field() {
        let e = Error::invalid_field("region", "is required");
        assert_eq!(e.field(), Some("region"));
        assert_eq!(e.to_string(), "invalid_input: region: is required");
    }
}
