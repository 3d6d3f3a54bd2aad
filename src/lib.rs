//! # cmdb
//!
//! Keeps a CMDB's host inventory in step with the clouds it runs on. This facade
//! re-exports the member crates so that one dependency gives the whole library:
//!
//! - [`core`]: the normalized [`Host`](core::Host), the
//!   [`HostProvider`](core::HostProvider) and [`HostStore`](core::HostStore) traits, the
//!   error type and an in-memory store;
//! - [`sync`]: the [`Syncer`](sync::Syncer) that lists a region and stores its hosts;
//! - the providers: [`aliyun`], [`tencent`], [`huawei`], [`vsphere`];
//! - [`secret`]: credentials, and stored secrets encrypted with AES-256-GCM;
//! - [`http`]: the HTTP plumbing shared by the providers (retry, backoff, rate limits,
//!   paging, which addresses requests may reach);
//! - opt-in: [`store_sql`] (SQLite, PostgreSQL, MySQL), [`api`] (the HTTP API) and
//!   [`testkit`] (fakes and vendor simulators).
//!
//! With credentials in hand (from your own vault or configuration), no secret store is
//! needed: give an [`Account`](sync::Account) to
//! [`Syncer::sync_account`](sync::Syncer::sync_account). Here a simulated Alibaba Cloud
//! region is synced into the memory store:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cmdb::core::Result<()> {
//! use std::sync::Arc;
//!
//! use cmdb::core::{HostQuery, HostStore, MemoryHostStore, Vendor};
//! use cmdb::secret::Credentials;
//! use cmdb::sync::{Account, SyncOptions, SyncRequest, Syncer};
//! # use cmdb_testkit::aliyun::{SimulatedAliyun, DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET};
//! # let cloud = SimulatedAliyun::start("cn-hangzhou", 250).await;
//! # let (access_key_id, access_key_secret) = (DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET);
//!
//! let store = Arc::new(MemoryHostStore::new());
//! // The simulator listens on 127.0.0.1: vendor requests reach public addresses only
//! // unless allowed. For the real cloud, leave `with_endpoint` and this option out.
//! let syncer = Syncer::for_host_store(store.clone())
//!     .with_options(SyncOptions::default().with_private_addresses(true));
//! let account = Account::new(
//!     Vendor::Aliyun,
//!     Credentials::new(access_key_id, access_key_secret),
//! )
//! .with_endpoint(cloud.uri());
//! // Hosts are stored under the request's id: any stable name of the account.
//! let response = syncer
//!     .sync_account(SyncRequest::new("production", "cn-hangzhou"), account)
//!     .await?;
//! assert!(response.complete);
//! assert_eq!((response.created, response.total_failed), (250, 0));
//! assert_eq!(store.query(&HostQuery::default()).await?.total, 250);
//! # Ok(()) }
//! ```
//!
//! A provider built with one provider crate alone syncs the same way with
//! [`Syncer::sync_provider`](sync::Syncer::sync_provider); a server keeps encrypted
//! secrets in a [`SecretStore`](secret::SecretStore) and syncs them by id with
//! [`Syncer::sync`](sync::Syncer::sync).
//!
//! ## Features
#![doc = document_features::document_features!()]

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
#[cfg(all(doctest, feature = "sqlite", feature = "api"))]
pub struct ReadmeDoctests;
