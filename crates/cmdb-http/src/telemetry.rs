//! The metrics [`HttpClient::send`](crate::HttpClient::send) records, through the
//! [`metrics`] facade: nothing is recorded, and nothing costs more than a check, until the
//! application installs a recorder (a Prometheus exporter, say).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | [`VENDOR_REQUEST_DURATION_SECONDS`] | histogram, one sample per attempt | `vendor`, `action`, `region`, `status_class` |
//! | [`VENDOR_RETRIES_TOTAL`] | counter | `vendor` |
//! | [`VENDOR_THROTTLED_TOTAL`] | counter | `vendor` |
//!
//! Label values are the vendor (`aliyun`, `tencent`, `huawei`, `vsphere`, or `other` for
//! a client without one), the API action the provider names (`DescribeInstances`,
//! `ListServersDetails`, `RetrievePropertiesEx`, ...), the client's region (vSphere: the
//! vCenter's host; empty when the client has none) and the class of the HTTP status
//! (`1xx` to `5xx`), or `error` when no answer came (connection failure, time-out).
//! Never a URL, a query string, a header, a key or a secret.

use cmdb_core::Vendor;

/// Histogram of the time one attempt took, from sending the request to the end of the
/// answer's body (waits for the rate limiter and for backoff excluded), in seconds.
pub const VENDOR_REQUEST_DURATION_SECONDS: &str = "cmdb_vendor_request_duration_seconds";

/// Counter of attempts that were retries of a failed one.
pub const VENDOR_RETRIES_TOTAL: &str = "cmdb_vendor_retries_total";

/// Counter of answers that were rate-limit errors (whatever their HTTP status: Tencent
/// Cloud throttles inside a 200).
pub const VENDOR_THROTTLED_TOTAL: &str = "cmdb_vendor_throttled_total";

/// Describes this crate's metrics (help text and unit) to the installed recorder: call
/// it once after installing one, so that an exporter can print their help lines.
pub fn describe_metrics() {
    metrics::describe_histogram!(
        VENDOR_REQUEST_DURATION_SECONDS,
        metrics::Unit::Seconds,
        "Time of one vendor API attempt, by vendor, action, region and HTTP status class"
    );
    metrics::describe_counter!(
        VENDOR_RETRIES_TOTAL,
        "Vendor API attempts that retried a failed one"
    );
    metrics::describe_counter!(
        VENDOR_THROTTLED_TOTAL,
        "Vendor API answers that were rate-limit errors"
    );
}

/// The `vendor` label of a client.
pub(crate) fn vendor_label(vendor: Option<Vendor>) -> &'static str {
    vendor.map_or("other", |v| v.as_str())
}

/// The `status_class` label of an HTTP status.
pub(crate) fn status_class(status: http::StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The `status_class` label of an attempt that got no answer.
pub(crate) const NO_ANSWER: &str = "error";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        for (code, class) in [
            (101, "1xx"),
            (200, "2xx"),
            (204, "2xx"),
            (302, "3xx"),
            (404, "4xx"),
            (429, "4xx"),
            (503, "5xx"),
        ] {
            assert_eq!(
                status_class(http::StatusCode::from_u16(code).unwrap()),
                class
            );
        }
        assert_eq!(vendor_label(None), "other");
        assert_eq!(vendor_label(Some(Vendor::Huawei)), "huawei");
    }
}
