//! # cmdb
//!
//! Keeps a CMDB's host inventory in step with the clouds it runs on. This facade
//! re-exports the member crates so that one dependency gives the whole library:
//!
//! - [`core`]: the normalized [`Host`](core::Host), the
//!   [`HostProvider`](core::HostProvider) and [`HostStore`](core::HostStore) traits, the
//!   error type and an in-memory store;
//! - [`secret`]: stored credentials encrypted with AES-256-GCM, and their store;
//! - [`http`]: the HTTP plumbing shared by the vendor providers (retry, backoff, rate
//!   limits, paging);
//! - [`sync`]: the [`Syncer`](sync::Syncer) behind `POST /secrets/:id/sync`.
//!
//! With the `testing` feature, [`testkit`] adds fakes for tests.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use cmdb::core::{MemoryHostStore, Vendor};
//! use cmdb::secret::{Cipher, MemorySecretStore};
//! use cmdb::sync::{ProviderRegistry, SyncRequest, Syncer};
//!
//! let syncer = Syncer::new(
//!     Arc::new(MemorySecretStore::new()),
//!     Arc::new(MemoryHostStore::new()),
//!     Arc::new(Cipher::new(Cipher::generate_key())),
//!     ProviderRegistry::new(),
//! );
//! let err = syncer.sync(SyncRequest::new("unknown", "cn-hangzhou")).await.unwrap_err();
//! assert_eq!(err.kind(), cmdb::core::ErrorKind::NotFound);
//! # });
//! ```

#[cfg(feature = "api")]
pub use cmdb_api as api;
pub use cmdb_core as core;
pub use cmdb_http as http;
#[cfg(feature = "aliyun")]
pub use cmdb_provider_aliyun as aliyun;
#[cfg(feature = "huawei")]
pub use cmdb_provider_huawei as huawei;
#[cfg(feature = "tencent")]
pub use cmdb_provider_tencent as tencent;
#[cfg(feature = "vsphere")]
pub use cmdb_provider_vsphere as vsphere;
pub use cmdb_secret as secret;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use cmdb_store_sql as store_sql;
pub use cmdb_sync as sync;
#[cfg(feature = "testing")]
pub use cmdb_testkit as testkit;

/// The README's Rust examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
