//! Test doubles for cmdb: a configurable fake [`HostProvider`](cmdb_core::HostProvider)
//! and a store wrapper that counts pages alive, slows down or fails on demand.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use futures::StreamExt;
//! use cmdb_core::{HostProvider, Vendor};
//! use cmdb_testkit::FakeProvider;
//!
//! let provider = FakeProvider::new(Vendor::Aliyun, "cn-hangzhou", 250, 100);
//! let pages: Vec<_> = provider.pages().collect().await;
//! assert_eq!(pages.len(), 3);
//! # });
//! ```

pub mod aliyun;
pub mod aliyun_rds;
mod fake;
mod gauge;
pub mod huawei;
pub mod huawei_rds;
pub mod tencent;
pub mod tencent_cdb;
pub mod vsphere;

pub use cmdb_core::testing::reference_host;
pub use fake::FakeProvider;
pub use gauge::{InstrumentedStore, PageGauge};

/// Holds `answer` back until `latency` has passed since `started` (when the simulator
/// began to handle the request): the time spent building an answer counts toward the
/// latency, as it does for a vendor's servers.
pub(crate) fn with_latency(
    answer: wiremock::ResponseTemplate,
    latency: Option<std::time::Duration>,
    started: std::time::Instant,
) -> wiremock::ResponseTemplate {
    match latency {
        Some(latency) => answer.set_delay(latency.saturating_sub(started.elapsed())),
        None => answer,
    }
}
