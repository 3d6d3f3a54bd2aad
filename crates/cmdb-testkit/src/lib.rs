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
mod fake;
mod gauge;
pub mod huawei;
pub mod tencent;
pub mod vsphere;

pub use fake::FakeProvider;
pub use gauge::{InstrumentedStore, PageGauge};
