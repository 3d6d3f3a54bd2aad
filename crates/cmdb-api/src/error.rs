//! How errors become HTTP answers: `{"code": "<error kind>", "message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use cmdb_core::{Error, ErrorKind};
use cmdb_sync::ErrorReport;

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error kind (`invalid_input`, `not_found`, `conflict`, ...).
    #[schema(value_type = ErrorKind)]
    pub code: String,
    /// What went wrong, for people; vendor errors carry the vendor's code and request id.
    pub message: String,
    /// For a 500: the id under which the details were logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The HTTP status of an error: errors a vendor reported are the gateway's (502, or 429 and
/// 504 for throttling and time-outs) so that a client never mistakes a cloud credential
/// problem for its own.
pub fn status_of(kind: ErrorKind, from_vendor: bool) -> StatusCode {
    match (kind, from_vendor) {
        (ErrorKind::RateLimited, _) => StatusCode::TOO_MANY_REQUESTS,
        (ErrorKind::Timeout, _) => StatusCode::GATEWAY_TIMEOUT,
        (_, true) => StatusCode::BAD_GATEWAY,
        (ErrorKind::InvalidInput, _) => StatusCode::BAD_REQUEST,
        (ErrorKind::NotFound, _) => StatusCode::NOT_FOUND,
        (ErrorKind::Unauthenticated, _) => StatusCode::UNAUTHORIZED,
        (ErrorKind::PermissionDenied, _) => StatusCode::FORBIDDEN,
        (ErrorKind::Conflict, _) => StatusCode::CONFLICT,
        (ErrorKind::Unavailable | ErrorKind::Vendor | ErrorKind::Decode, _) => {
            StatusCode::BAD_GATEWAY
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    /// Seconds for a `Retry-After` header.
    retry_after: Option<u64>,
}

impl ApiError {
    /// An answer with an explicit status.
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code: kind.as_str().to_owned(),
                message: message.into(),
                request_id: None,
            },
            retry_after: None,
        }
    }

    /// The answer with a `Retry-After` header of `seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// A 500 for a store's or the server's own failure: its text (SQL, paths, database
    /// messages) goes to the log only, under a new request id that the answer names.
    fn internal(kind: ErrorKind, details: &dyn std::fmt::Display) -> ApiError {
        let request_id = uuid::Uuid::new_v4().to_string();
        tracing::error!(%request_id, error = %details, "request failed");
        let mut answer = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            kind,
            format!("internal error (request id {request_id})"),
        );
        answer.body.request_id = Some(request_id);
        answer
    }

    /// The status of the answer.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let status = status_of(e.kind(), e.vendor_error().is_some());
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return ApiError::internal(e.kind(), &e);
        }
        ApiError::new(status, e.kind(), e.to_string())
    }
}

impl From<&ErrorReport> for ApiError {
    fn from(e: &ErrorReport) -> ApiError {
        let status = status_of(e.kind, e.vendor.is_some());
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return match &e.request_id {
                // Already logged under this id by `redact_internal`.
                Some(id) if e.vendor.is_none() => {
                    let mut answer = ApiError::new(status, e.kind, e.message.clone());
                    answer.body.request_id = Some(id.clone());
                    answer
                }
                _ => ApiError::internal(e.kind, &e.message),
            };
        }
        ApiError::new(status, e.kind, e.message.clone())
    }
}

/// Replaces the text of an error the API would answer with a 500 (a store's or the
/// server's own failure: SQL, paths, database messages) by `internal error (request id
/// <id>)`, and logs the text under that id, which `request_id` then holds. A task's
/// error and a sync answer's `error` go through here before anyone can read them.
pub(crate) fn redact_internal(report: &mut ErrorReport) {
    let from_vendor = report.vendor.is_some();
    if status_of(report.kind, from_vendor) != StatusCode::INTERNAL_SERVER_ERROR {
        return;
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    tracing::error!(%request_id, kind = %report.kind.as_str(), error = %report.message, "sync failed");
    report.message = format!("internal error (request id {request_id})");
    report.request_id = Some(request_id);
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_documented_table() {
        assert_eq!(
            status_of(ErrorKind::InvalidInput, false),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status_of(ErrorKind::NotFound, false), StatusCode::NOT_FOUND);
        assert_eq!(status_of(ErrorKind::Conflict, false), StatusCode::CONFLICT);
        assert_eq!(
            status_of(ErrorKind::PermissionDenied, false),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status_of(ErrorKind::Unauthenticated, false),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_of(ErrorKind::Unauthenticated, true),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            status_of(ErrorKind::RateLimited, true),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            status_of(ErrorKind::Timeout, true),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            status_of(ErrorKind::Store, false),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status_of(ErrorKind::Crypto, false),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
