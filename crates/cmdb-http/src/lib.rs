//! Shared HTTP plumbing for cmdb's vendor providers, written once so that no provider
//! copies it (modelled on object_store's `client/` module):
//!
//! - [`HttpClient`]: a `reqwest` client (rustls) with timeouts, a cap on requests in
//!   flight, a shared [`RateLimiter`], bounded retries with jittered backoff that honour
//!   `Retry-After` and Alibaba's `x-acs-retry-after`, and one [`ErrorClassifier`] per
//!   vendor that turns responses, 2xx bodies included, into typed [`cmdb_core::Error`]s.
//!   Authentication errors are never retried.
//! - [`HttpConfig`] and [`RetryConfig`]: timeouts, retries, concurrency, TLS trust.
//! - [`Endpoint`]: the vendor's public host or a checked http(s) override, with the exact
//!   `Host` header that signers sign.
//! - Paging: [`token_pages`], [`token_pages_pipelined`], [`offset_pages`] and [`offset_pages_concurrent`] turn one
//!   request per page into a lazy `BoxStream` that stops on the last page, on a repeated
//!   token, and right after an error.
//! - [`ClientSettings`] and [`client_settings_methods!`]: what every provider builder
//!   holds (credentials, region, endpoint, rate, HTTP settings, clock), checked alike.
//! - [`sensitive_header_value`] for `Authorization` headers that must never be printed.
//! - [`telemetry`]: the metrics every vendor call records (duration by vendor, action,
//!   region and status class; retries; throttles) through the `metrics` facade, and its
//!   `vendor_call` tracing span.
//!
//! Time is tokio's (`tokio::time::Instant`, `sleep`), so tests can pause the clock; the
//! backoff's random source can be seeded ([`HttpClient::with_jitter_seed`]).
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use cmdb_core::{Result, Vendor};
//! use cmdb_http::{token_pages, DefaultClassifier, Endpoint, HttpClient, HttpConfig, RateLimiter};
//! use futures::TryStreamExt;
//!
//! # async fn demo() -> Result<()> {
//! let endpoint = Endpoint::https_host("ecs.cn-hangzhou.aliyuncs.com")?;
//! // One limiter per secret, shared by every client that uses it.
//! let limiter = Arc::new(RateLimiter::per_second(20));
//! let http = HttpClient::new(
//!     HttpConfig::default(),
//!     Some(Vendor::Aliyun),
//!     DefaultClassifier::new(Some(Vendor::Aliyun)), // a provider passes its own
//! )?
//! .with_limiter(limiter);
//!
//! let pages = token_pages(move |token: Option<String>| {
//!     let (http, endpoint) = (http.clone(), endpoint.clone());
//!     async move {
//!         let response = http
//!             .send("DescribeInstances", || {
//!                 // Called for every attempt: sign here, with a fresh nonce and date.
//!                 let mut url = endpoint.join("/");
//!                 url.query_pairs_mut()
//!                     .append_pair("Action", "DescribeInstances")
//!                     .append_pair("MaxResults", "100");
//!                 if let Some(token) = &token {
//!                     url.query_pairs_mut().append_pair("NextToken", token);
//!                 }
//!                 Ok(reqwest::Request::new(reqwest::Method::GET, url))
//!             })
//!             .await?;
//!         let body: serde_json::Value = response.json()?;
//!         let next = body["NextToken"].as_str().map(str::to_owned);
//!         Ok((body, next))
//!     }
//! });
//! let all: Vec<serde_json::Value> = pages.try_collect().await?;
//! # Ok(()) }
//! ```

mod address;
mod classify;
mod client;
mod clock;
mod config;
mod endpoint;
mod paging;
mod rate;
mod records;
mod retry;
mod settings;
pub mod telemetry;
mod text;
mod time;

pub use address::{AddressPolicy, RefusedAddress};
pub use classify::{
    classify_status, decode_json, request_id, DefaultClassifier, ErrorClassifier, RawResponse,
};
pub use client::{
    build_request, builtin_roots, sensitive_header_value, BuiltinRoots, ClientStats, HttpClient,
};
pub use clock::{clock_now, system_clock, Clock};
pub use config::HttpConfig;
pub use endpoint::Endpoint;
pub use paging::{
    id_batches, offset_pages, offset_pages_concurrent, token_pages, token_pages_pipelined, PageInfo,
};
pub use rate::RateLimiter;
pub use records::map_records;
pub use retry::{is_retryable, retry_after, Backoff, RetryConfig};
pub use settings::ClientSettings;
pub use text::{JsonText, RFC3986_UNRESERVED};
pub use time::TimeFormats;
